import { describe, expect, it } from "vitest";
import type { Catalog, CatalogPlan, Redecided } from "../bindings";
import {
  addEdge,
  addResource,
  changeCount,
  draftChanges,
  draftSummary,
  neighbourhood,
  nodeLabel,
  planIsTheDraft,
  planSummary,
  reasonLines,
  redecidedText,
  removeEdge,
  setField,
  shortMiddle,
  verdictChange,
} from "./catalogEdit";

const base: Catalog = {
  resources: [
    { id: "fs:/srv/customers", bearer: "customer", title: "Customer files" },
    { id: "fs:/srv/customers/acct-1.json", bearer: "customer", title: "Account acct-1" },
    { id: "crm:acct-1", reach: "observed", bearer: "customer", title: "CRM record" },
    { id: "mail:acct-1-closure", reach: "external", bearer: "customer" },
    { id: "report:monthly", reach: "observed", bearer: "institution" },
  ],
  edges: [
    { from: "fs:/srv/customers/acct-1.json", to: "crm:acct-1", why: "the CRM syncs it" },
    { from: "crm:acct-1", to: "mail:acct-1-closure", why: "a closed record sends a letter" },
  ],
};

function ok(r: ReturnType<typeof setField>): Catalog {
  if (!r.ok) throw new Error(r.error);
  return r.catalog;
}

describe("edits to the draft", () => {
  it("sets a field, takes a blank one out, and leaves the base untouched", () => {
    const d = ok(setField(base, "crm:acct-1", "bearer", "institution"));
    expect(d.resources?.find((r) => r.id === "crm:acct-1")?.bearer).toBe("institution");
    expect(base.resources?.find((r) => r.id === "crm:acct-1")?.bearer).toBe("customer");
    const untitled = ok(setField(d, "crm:acct-1", "title", "  "));
    expect("title" in (untitled.resources?.find((r) => r.id === "crm:acct-1") ?? {})).toBe(false);
    // An empty bearer: borne by its container again.
    const inherits = ok(setField(base, "fs:/srv/customers/acct-1.json", "bearer", ""));
    expect(inherits.resources?.find((r) => r.id === "fs:/srv/customers/acct-1.json")?.bearer).toBeUndefined();
  });

  it("refuses what the gate would refuse, saying what is wrong", () => {
    expect(setField(base, "nope:1", "title", "x")).toEqual({ ok: false, error: "no resource `nope:1` in the draft" });
    expect(setField(base, "crm:acct-1", "probe_prefix", "ftp://x")).toMatchObject({ ok: false, error: expect.stringMatching(/http/) });
    expect(ok(setField(base, "crm:acct-1", "probe_prefix", "https://crm.internal/")).resources?.[2].probe_prefix).toBe("https://crm.internal/");
    expect(addEdge(base, "crm:acct-1", "report:monthly", " ")).toMatchObject({ ok: false, error: expect.stringMatching(/why/) });
    expect(addEdge(base, "crm:acct-1", "mail:acct-1-closure", "again")).toMatchObject({ ok: false, error: expect.stringMatching(/already/) });
    expect(addEdge(base, "crm:acct-1", "crm:acct-9", "x")).toMatchObject({ ok: false, error: expect.stringMatching(/add it first/) });
    expect(addEdge(base, "crm:acct-1", "crm:acct-1", "x")).toMatchObject({ ok: false });
    expect(removeEdge(base, "crm:acct-1", "report:monthly")).toMatchObject({ ok: false });
    expect(addResource(base, { id: "crm:acct-1", reach: "controlled", bearer: "institution" })).toMatchObject({ ok: false, error: expect.stringMatching(/already/) });
    expect(addResource(base, { id: "no scheme", reach: "controlled", bearer: "institution" })).toMatchObject({ ok: false, error: expect.stringMatching(/not an id/) });
  });

  it("adds and removes edges and resources", () => {
    let d = ok(addResource(base, { id: "ledger:q3", title: " Q3 ledger ", reach: "observed", bearer: "institution" }));
    expect(d.resources?.at(-1)).toEqual({ id: "ledger:q3", title: "Q3 ledger", reach: "observed", bearer: "institution" });
    d = ok(addEdge(d, "crm:acct-1", "ledger:q3", " the ledger reads the CRM "));
    expect(d.edges?.at(-1)).toEqual({ from: "crm:acct-1", to: "ledger:q3", why: "the ledger reads the CRM" });
    d = ok(removeEdge(d, "crm:acct-1", "mail:acct-1-closure"));
    expect(d.edges?.map((e) => e.to)).toEqual(["crm:acct-1", "ledger:q3"]);
  });
});

describe("counting a draft's changes", () => {
  it("counts as the gate does and words it the same way", () => {
    expect(draftSummary(draftChanges(base, base))).toBe("no change");
    let d = ok(setField(base, "crm:acct-1", "bearer", "institution"));
    d = ok(setField(d, "crm:acct-1", "title", "CRM"));
    d = ok(removeEdge(d, "crm:acct-1", "mail:acct-1-closure"));
    d = ok(addResource(d, { id: "a:1", reach: "controlled", bearer: "institution" }));
    d = ok(addResource(d, { id: "a:2", reach: "controlled", bearer: "institution" }));
    const c = draftChanges(base, d);
    expect(c.resourcesChanged).toEqual([{ id: "crm:acct-1", fields: ["bearer", "title"] }]);
    expect(c.edgesRemoved).toEqual(["crm:acct-1 -> mail:acct-1-closure"]);
    expect(changeCount(c)).toBe(4);
    expect(draftSummary(c)).toBe("2 resources added, 1 resource changed, 1 edge removed");
  });

  it("a field set back to what it was is no change", () => {
    const there = ok(setField(base, "crm:acct-1", "reach", "external"));
    const back = ok(setField(there, "crm:acct-1", "reach", "observed"));
    expect(changeCount(draftChanges(base, back))).toBe(0);
  });

  it("a plan with more than the draft's changes means the catalog moved", () => {
    const d = ok(setField(base, "crm:acct-1", "bearer", "institution"));
    const mine = draftChanges(base, d);
    const diff = { resources_added: [], resources_removed: [], resources_changed: [{ id: "crm:acct-1", fields: [] }], edges_added: [], edges_removed: [], edges_changed: [] };
    expect(planIsTheDraft({ diff }, mine)).toBe(true);
    // Someone else added a file since: the draft would remove it.
    const moved = { ...diff, resources_removed: [{ id: "fs:/srv/customers/acct-9.json" }] } as unknown as CatalogPlan["diff"];
    expect(planIsTheDraft({ diff: moved }, mine)).toBe(false);
  });
});

describe("wording the gate's plan", () => {
  const held: Redecided = {
    id: "w-1",
    agent: "bot",
    intent: "Delete acct-2",
    status: "held",
    touches: ["fs:/srv/customers/acct-2.json"],
    before: "hold",
    after: "proceed",
    reasons_added: [],
    reasons_removed: [{ code: "third_party_bearer", resource: "fs:/srv/customers/acct-2.json", detail: "" }],
  };

  it("says how each write would be decided differently", () => {
    expect(verdictChange(held)).toBe("held → would run");
    expect(redecidedText(held)).toBe("Held now; under the draft it would run without a person.");
    const ran = { ...held, status: "executed" as const, before: "proceed" as const, after: "hold" as const };
    expect(verdictChange(ran)).toBe("would run → held");
    expect(redecidedText(ran)).toBe("Executed; decided now it would run; under the draft it would be held for a person.");
    expect(verdictChange({ before: "hold", after: "hold" })).toBe("still held");
    expect(redecidedText({ status: "held", before: "hold", after: "hold" })).toBe("Held now; under the draft it is still held, for other reasons.");
    expect(reasonLines({ ...held, reasons_added: [{ code: "external", resource: "mail:x", detail: "" }] })).toEqual([
      "− third party pays · fs:/srv/customers/acct-2.json",
      "+ external · mail:x",
    ]);
  });

  it("counts the writes examined and changed", () => {
    const diff = { resources_added: [], resources_removed: [], resources_changed: [{ id: "x:1", fields: [] }], edges_added: [], edges_removed: [], edges_changed: [] };
    expect(planSummary({ diff, examined: 7, writes: [held], skipped: [] })).toBe("1 resource changed; 1 of 7 held or recent writes would be decided differently.");
    expect(planSummary({ diff, examined: 1, writes: [], skipped: ["write `w-9`: no connector"] })).toBe(
      "1 resource changed; no write would be decided differently (1 held or recent examined); 1 could not be decided again.",
    );
  });
});

describe("the neighbourhood graph", () => {
  it("draws two hops each way, titles first, ids shortened from the middle", () => {
    const n = neighbourhood(base, "crm:acct-1");
    expect(n.nodes.map((x) => [x.id, x.side, x.hops])).toEqual([
      ["crm:acct-1", "selected", 0],
      ["mail:acct-1-closure", "reaches", 1],
      ["fs:/srv/customers/acct-1.json", "reached_by", 1],
    ]);
    expect(n.edges.map((e) => e.id).sort()).toEqual(["crm:acct-1->mail:acct-1-closure", "fs:/srv/customers/acct-1.json->crm:acct-1"]);
    expect(neighbourhood(base, "mail:acct-1-closure", 1).nodes.map((x) => x.id)).toEqual(["mail:acct-1-closure", "crm:acct-1"]);
    expect(neighbourhood(base, "mail:acct-1-closure", 2).nodes.map((x) => x.id)).toContain("fs:/srv/customers/acct-1.json");
    expect(neighbourhood(base, "nope:1").nodes).toEqual([]);
    const long = "fs:/var/lib/institution/customers/2026/acct-0001.json";
    expect(shortMiddle(long)).toBe("fs:/var/lib/…26/acct-0001.json");
    expect(shortMiddle(long).length).toBe(30);
    expect(shortMiddle(long).endsWith("acct-0001.json")).toBe(true);
    expect(nodeLabel({ id: "crm:acct-1", title: "CRM record" })).toBe("CRM record\ncrm:acct-1");
  });

  it("draws the selected folder's containment the gate reported, dashed, but no one else's", () => {
    const contains = [
      { from: "fs:/srv/customers", to: "fs:/srv/customers/acct-1.json" },
      { from: "fs:/srv/other", to: "fs:/srv/other/x" },
    ];
    const n = neighbourhood(base, "fs:/srv/customers", 2, 40, contains);
    expect(n.nodes.map((x) => [x.id, x.side, x.hops])).toEqual([
      ["fs:/srv/customers", "selected", 0],
      ["fs:/srv/customers/acct-1.json", "reaches", 1],
      ["crm:acct-1", "reaches", 2],
    ]);
    expect(n.edges.map((e) => [e.id, e.contains])).toEqual([
      ["fs:/srv/customers/acct-1.json->crm:acct-1", false],
      ["fs:/srv/customers->fs:/srv/customers/acct-1.json", true],
    ]);
  });

  it("stops at the limit and says so", () => {
    const many: Catalog = {
      resources: [{ id: "hub:0" }, ...Array.from({ length: 10 }, (_, i) => ({ id: `leaf:${i}` }))],
      edges: Array.from({ length: 10 }, (_, i) => ({ from: "hub:0", to: `leaf:${i}` })),
    };
    const n = neighbourhood(many, "hub:0", 2, 5);
    expect(n.nodes.length).toBe(5);
    expect(n.truncated).toBe(true);
  });
});
