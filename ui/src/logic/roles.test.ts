import { describe, expect, it } from "vitest";
import { PERMISSIONS } from "../bindings";
import type { Role, WriteAction } from "../bindings";
import { abilities, approveWithheld, buttonsFor, can, tabsFor } from "./roles";

const ROLES: Role[] = ["agent", "reviewer", "risk_officer", "incident_lead", "admin"];

describe("tabs by role", () => {
  it("gives an agent the queue only: no catalog, audit or rewind", () => {
    expect(tabsFor("agent")).toEqual(["queue"]);
  });
  it("gives reviewers and risk officers the catalog, the report and the audit trail, not rewind", () => {
    expect(tabsFor("reviewer")).toEqual(["queue", "catalog", "report", "audit"]);
    expect(tabsFor("risk_officer")).toEqual(["queue", "catalog", "report", "audit"]);
  });
  it("gives incident leads and admins rewind too", () => {
    expect(tabsFor("incident_lead")).toEqual(["queue", "catalog", "report", "audit", "incident"]);
    expect(tabsFor("admin")).toEqual(["queue", "catalog", "report", "audit", "incident"]);
  });
  it("gives nothing without a role", () => {
    expect(tabsFor(null)).toEqual([]);
    expect(Object.values(abilities(null)).some(Boolean)).toBe(false);
  });
  it("gives the freeze switch to incident leads and admins only", () => {
    expect(ROLES.filter((r) => abilities(r).freeze)).toEqual(["incident_lead", "admin"]);
  });
  it("gives catalog editing to the roles the matrix grants edit_catalog: risk officers and admins", () => {
    expect(ROLES.filter((r) => abilities(r).editCatalog)).toEqual(["risk_officer", "admin"]);
    expect(ROLES.filter((r) => abilities(r).editCatalog)).toEqual(ROLES.filter((r) => (PERMISSIONS[r] as readonly string[]).includes("edit_catalog")));
  });
  it("gives the mode switch to admins only", () => {
    expect(ROLES.filter((r) => abilities(r).switchMode)).toEqual(["admin"]);
  });
  it("reads the generated matrix, not a copy of it", () => {
    for (const role of ROLES) {
      for (const p of PERMISSIONS.admin) {
        expect(can(role, p)).toBe((PERMISSIONS[role] as readonly string[]).includes(p));
      }
    }
  });
});

describe("buttons by actions", () => {
  const all: WriteAction[] = ["approve", "reject", "rollback", "resolve"];
  it("shows approve and reject only when the gate lists them", () => {
    expect(buttonsFor("reviewer", ["approve", "reject"])).toEqual({ approve: true, reject: true, rollback: false, resolve: false });
    expect(buttonsFor("reviewer", ["reject"])).toEqual({ approve: false, reject: true, rollback: false, resolve: false });
    expect(buttonsFor("reviewer", [])).toEqual({ approve: false, reject: false, rollback: false, resolve: false });
  });
  it("never shows a reviewer a rollback button, even if the gate listed one", () => {
    expect(buttonsFor("reviewer", all).rollback).toBe(false);
    expect(buttonsFor("reviewer", all).resolve).toBe(false);
  });
  it("shows an incident lead rollback and resolve as listed, never approve", () => {
    expect(buttonsFor("incident_lead", ["rollback"])).toEqual({ approve: false, reject: false, rollback: true, resolve: false });
    expect(buttonsFor("incident_lead", ["resolve"])).toEqual({ approve: false, reject: false, rollback: false, resolve: true });
    expect(buttonsFor("incident_lead", all).approve).toBe(false);
  });
  it("shows nothing when the gate sent no actions", () => {
    for (const role of ROLES) {
      expect(Object.values(buttonsFor(role, undefined)).some(Boolean)).toBe(false);
    }
  });
  it("never offers a risk officer or an agent a write action", () => {
    for (const role of ["risk_officer", "agent"] as Role[]) {
      expect(Object.values(buttonsFor(role, all)).some(Boolean)).toBe(false);
    }
  });
});

describe("approve offered only where it can succeed", () => {
  it("is not offered on a frozen gate, whatever the write's actions say", () => {
    expect(buttonsFor("reviewer", ["approve", "reject"], { frozen: true })).toMatchObject({ approve: false, reject: true });
    expect(buttonsFor("reviewer", ["approve", "reject"], { frozen: false }).approve).toBe(true);
  });
  it("says why it is withheld: approved already, or frozen", () => {
    const held = { status: "held", required_approvals: 2, actions: ["reject"] as WriteAction[] };
    expect(approveWithheld("reviewer", held, true, 1, false)).toBe("You approved it (1 of 2). One more reviewer must approve it before it runs.");
    const frozen = { ...held, actions: ["approve", "reject"] as WriteAction[] };
    expect(approveWithheld("reviewer", frozen, false, 0, true)).toMatch(/^Approve is not offered: the gate is frozen/);
    // As the gate answers while frozen: approve left out of the actions.
    const asServed = { ...held, actions: ["reject"] as WriteAction[] };
    expect(approveWithheld("reviewer", asServed, false, 0, true)).toMatch(/^Approve is not offered: the gate is frozen/);
    expect(approveWithheld("reviewer", frozen, false, 0, false)).toBeNull();
    expect(approveWithheld("incident_lead", frozen, false, 0, true)).toBeNull();
    expect(approveWithheld("reviewer", { ...frozen, status: "executed" }, true, 1, true)).toBeNull();
  });
});
