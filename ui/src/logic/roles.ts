// What each role may do, as the gate enforces it (contract section 7). The
// console offers only these; the gate still decides.
import type { Role } from "../bindings";

export interface Abilities {
  approve: boolean;
  reject: boolean;
  rollback: boolean;
  freeze: boolean;
  rewind: boolean;
  audit: boolean;
  catalog: boolean;
  /** Sees every write, not only its own. */
  readAll: boolean;
}

export function abilities(role: Role | null | undefined): Abilities {
  const none: Abilities = {
    approve: false, reject: false, rollback: false, freeze: false,
    rewind: false, audit: false, catalog: false, readAll: false,
  };
  switch (role) {
    case "admin":
      return { approve: true, reject: true, rollback: true, freeze: true, rewind: true, audit: true, catalog: true, readAll: true };
    case "reviewer":
      return { ...none, approve: true, reject: true, audit: true, catalog: true, readAll: true };
    case "risk_officer":
      return { ...none, audit: true, catalog: true, readAll: true };
    case "incident_lead":
      return { ...none, rollback: true, freeze: true, rewind: true, audit: true, catalog: true, readAll: true };
    case "agent":
      return { ...none, catalog: true };
    default:
      return none;
  }
}

export function roleLabel(role: Role): string {
  return {
    agent: "Agent",
    reviewer: "Reviewer",
    risk_officer: "Risk officer",
    incident_lead: "Incident lead",
    admin: "Admin",
  }[role];
}

import type { WriteStatus } from "../bindings";

/** The actions to offer on one write: what the role may do and what the
 * write's status allows. */
export function actionsFor(role: Role | null | undefined, status: WriteStatus): { approve: boolean; reject: boolean; rollback: boolean } {
  const a = abilities(role);
  return {
    approve: a.approve && status === "held",
    reject: a.reject && status === "held",
    rollback: a.rollback && status === "executed",
  };
}
