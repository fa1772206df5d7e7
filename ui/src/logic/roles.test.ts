import { describe, expect, it } from "vitest";
import type { Role } from "../bindings";
import { abilities, actionsFor } from "./roles";

describe("role gating", () => {
  it("offers approve and reject to reviewers only on held writes", () => {
    expect(actionsFor("reviewer", "held")).toEqual({ approve: true, reject: true, rollback: false });
    expect(actionsFor("reviewer", "executed")).toEqual({ approve: false, reject: false, rollback: false });
  });
  it("offers rollback to incident leads only on executed writes", () => {
    expect(actionsFor("incident_lead", "executed")).toEqual({ approve: false, reject: false, rollback: true });
    expect(actionsFor("incident_lead", "held").rollback).toBe(false);
  });
  it("never offers a risk officer or an agent a write action", () => {
    for (const role of ["risk_officer", "agent"] as Role[]) {
      for (const status of ["held", "executed"] as const) {
        expect(actionsFor(role, status)).toEqual({ approve: false, reject: false, rollback: false });
      }
      expect(abilities(role).freeze).toBe(false);
    }
  });
  it("gives the freeze switch to incident leads and admins only", () => {
    const who = (["agent", "reviewer", "risk_officer", "incident_lead", "admin"] as Role[]).filter((r) => abilities(r).freeze);
    expect(who).toEqual(["incident_lead", "admin"]);
  });
  it("offers nothing without a role", () => {
    expect(Object.values(abilities(null)).some(Boolean)).toBe(false);
  });
});
