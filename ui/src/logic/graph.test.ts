import { describe, expect, it } from "vitest";
import type { Decision, Proposal } from "../bindings";
import { buildElements, coverageOf, describeOp, pathTo, planSteps, SHAPE, whoPays } from "./graph";

const decision = {
  decision: "hold",
  reasons: [],
  bearers: ["customer", "institution"],
  blast_radius: [
    { resource: "account:seller-4411", depth: 0, reach: "controlled", bearer: "customer", covered: true, restored_by: [0] },
    { resource: "orders:seller-4411", depth: 1, reach: "controlled", bearer: "institution", covered: false, via: "account:seller-4411" },
    { resource: "licenses:seller-4411", depth: 2, reach: "external", bearer: "customer", covered: false, via: "orders:seller-4411" },
  ],
  evidence: [
    { id: "snap-acct", status: "verified", kind: "snapshot", location: "vault:market", steps: [0] },
    { id: "notice", status: "window_closing", kind: "window", until: "2026-12-01T00:00:00Z", steps: [0] },
  ],
  steps: [{ step: 0, manual: false, available: false }, { step: 1, manual: true, available: false }],
} as unknown as Decision;

const proposal = {
  agent: "integrity-bot",
  intent: "close",
  action: {},
  touches: ["account:seller-4411"],
  rollback: {
    steps: [
      {
        restores: ["account:seller-4411"],
        op: { connector: "http", op: "request", method: "POST", url: "https://market.internal/accounts/4411/reopen" },
        requires: [{ id: "snap-acct", kind: "snapshot", location: "vault:market" }, { id: "notice", kind: "window", until: "2026-12-01T00:00:00Z" }],
      },
      { restores: ["licenses:seller-4411"], op: { kind: "manual", note: "contact support" }, requires: [] },
    ],
  },
} as unknown as Proposal;

describe("graph elements", () => {
  it("makes one node per blast-radius entry and an edge from each via", () => {
    const g = buildElements(decision);
    expect(g.nodes.map((n) => n.data.id)).toEqual(["account:seller-4411", "orders:seller-4411", "licenses:seller-4411"]);
    expect(g.edges.map((e) => [e.data.source, e.data.target])).toEqual([
      ["account:seller-4411", "orders:seller-4411"],
      ["orders:seller-4411", "licenses:seller-4411"],
    ]);
  });
  it("marks coverage by class (colour and shape), touched vs reached, and third-party bearers", () => {
    const [acct, orders, lic] = buildElements(decision).nodes;
    expect(acct.classes.split(" ")).toEqual(expect.arrayContaining(["covered", "touched", "third-party"]));
    expect(orders.classes.split(" ")).toEqual(expect.arrayContaining(["uncovered", "reached"]));
    expect(orders.classes).not.toContain("third-party");
    expect(lic.data.coverage).toBe("external");
    expect(lic.data.label).toContain("⚑ customer");
    expect(new Set(Object.values(SHAPE)).size).toBe(3);
    expect(coverageOf({ reach: "external", covered: true })).toBe("external");
  });
  it("drops an edge whose via is not in the radius instead of dangling", () => {
    const d = { blast_radius: [{ resource: "a:1", depth: 1, reach: "controlled", bearer: "institution", covered: true, via: "gone:1" }] } as unknown as Decision;
    expect(buildElements(d).edges).toEqual([]);
  });
});

describe("paths and plan", () => {
  it("follows via back to the touched resource", () => {
    expect(pathTo(decision, "licenses:seller-4411")).toEqual(["account:seller-4411", "orders:seller-4411", "licenses:seller-4411"]);
    expect(pathTo(decision, "account:seller-4411")).toEqual(["account:seller-4411"]);
  });
  it("stops on a cycle", () => {
    const d = { blast_radius: [
      { resource: "a:1", depth: 1, reach: "controlled", bearer: "institution", covered: true, via: "b:1" },
      { resource: "b:1", depth: 1, reach: "controlled", bearer: "institution", covered: true, via: "a:1" },
    ] } as unknown as Decision;
    expect(pathTo(d, "a:1")).toEqual(["b:1", "a:1"]);
  });
  it("joins steps with their evidence status", () => {
    const steps = planSteps(proposal, decision);
    expect(steps[0]).toMatchObject({ index: 0, manual: false, available: false, op: "http request POST https://market.internal/accounts/4411/reopen" });
    expect(steps[0].evidence).toEqual([{ id: "snap-acct", status: "verified" }, { id: "notice", status: "window_closing" }]);
    expect(steps[1]).toMatchObject({ manual: true, op: "Manual: contact support" });
  });
  it("describes fs ops", () => {
    expect(describeOp({ connector: "fs", op: "move", path: "/a", to: "/b" })).toBe("fs move /a → /b");
  });
  it("says who pays if reversal fails", () => {
    expect(whoPays(decision)).toEqual([{ bearer: "customer", resources: ["account:seller-4411", "licenses:seller-4411"] }]);
  });
});
