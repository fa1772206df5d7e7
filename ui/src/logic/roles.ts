// What the signed-in role may do comes from the gate's own matrix
// (`PERMISSIONS`, generated into bindings.ts from
// crates/client/src/permissions.rs); what may be done to one write now comes
// from the gate's `actions` on it (role, status and separation of duties).
// The console offers only these; the gate still decides.
import { PERMISSIONS } from "../bindings";
import type { Permission, Role, WriteAction } from "../bindings";

/** Widened from the generated literal so a lookup takes any permission; the
 * assignment also checks that every role has a row. */
const MATRIX: Readonly<Record<Role, readonly Permission[]>> = PERMISSIONS;

export function can(role: Role | null | undefined, p: Permission): boolean {
  if (!role) return false;
  return (MATRIX[role] ?? []).includes(p);
}

export interface Abilities {
  /** Freeze and resume the gate. */
  freeze: boolean;
  /** Rewind: roll back everything since a time. */
  rewind: boolean;
  audit: boolean;
  catalog: boolean;
  /** Sees every write, not only its own. */
  readAll: boolean;
  /** Approve or reject held writes (for the keyboard hints). */
  decide: boolean;
  /** Switch the gate between enforce and observe mode. */
  switchMode: boolean;
  /** Read the Monday audit (the report). */
  report: boolean;
  /** Edit the catalog: preview a draft and apply it. */
  editCatalog: boolean;
}

export function abilities(role: Role | null | undefined): Abilities {
  return {
    freeze: can(role, "freeze"),
    rewind: can(role, "freeze"),
    audit: can(role, "read_audit"),
    catalog: can(role, "read_catalog"),
    readAll: can(role, "read_all_writes"),
    decide: can(role, "approve_writes") || can(role, "reject_writes"),
    switchMode: can(role, "switch_mode"),
    report: can(role, "read_report"),
    editCatalog: can(role, "edit_catalog"),
  };
}

/** The top bar's pages, in order. */
export type Tab = "queue" | "catalog" | "report" | "audit" | "incident";

export function tabsFor(role: Role | null | undefined): Tab[] {
  if (!role) return [];
  const a = abilities(role);
  const tabs: Tab[] = ["queue"];
  if (a.catalog) tabs.push("catalog");
  if (a.report) tabs.push("report");
  if (a.audit) tabs.push("audit");
  if (a.rewind) tabs.push("incident");
  return tabs;
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

export interface Buttons {
  approve: boolean;
  reject: boolean;
  rollback: boolean;
  /** Settle an `outcome_unknown` write. */
  resolve: boolean;
}

/** The permission each write action needs. */
const NEEDS: Record<WriteAction, Permission> = {
  approve: "approve_writes",
  reject: "reject_writes",
  rollback: "roll_back",
  resolve: "roll_back",
};

/** The buttons to show on one write: what the gate lists in its `actions`
 * for this caller, and only where the role's permissions agree (a gate that
 * sends no `actions` gets no buttons, never a guess from the status). */
export function buttonsFor(
  role: Role | null | undefined,
  actions: readonly WriteAction[] | null | undefined,
  gate: { frozen?: boolean } = {},
): Buttons {
  const has = (a: WriteAction) => (actions ?? []).includes(a) && can(role, NEEDS[a]);
  // A frozen gate refuses every approval: not offered where it cannot succeed.
  return { approve: has("approve") && !gate.frozen, reject: has("reject"), rollback: has("rollback"), resolve: has("resolve") };
}

/** Why Approve is not offered to a reviewer who could otherwise approve
 * this held write, as a sentence; `null` where it is offered or where the
 * role never approves. */
export function approveWithheld(
  role: Role | null | undefined,
  w: { status: string; required_approvals: number; actions?: readonly WriteAction[] | null },
  approvedByMe: boolean,
  givenNow: number,
  frozen: boolean,
): string | null {
  if (!can(role, "approve_writes") || w.status !== "held") return null;
  if (approvedByMe) {
    const left = Math.max(0, w.required_approvals - givenNow);
    return `You approved it (${givenNow} of ${w.required_approvals}). ${left === 1 ? "One more reviewer" : `${left} more reviewers`} must approve it before it runs.`;
  }
  // The gate itself leaves approve out of a write's actions while frozen,
  // so the freeze alone says why it is missing.
  if (frozen) return "Approve is not offered: the gate is frozen, and nothing can be approved until an incident lead resumes it.";
  return null;
}
