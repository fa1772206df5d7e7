import { describe, expect, it } from "vitest";
import type { WriteSummary } from "../bindings";
import {
  observedOnly,
  approvalsText,
  compareQueue,
  countQueue,
  emptyFilter,
  facets,
  filterQueue,
  keepSelection,
  moveSelection,
  orderReasons,
  reasonChips,
  sortQueue,
  windowText,
} from "./queue";

function w(id: string, over: Partial<WriteSummary> = {}): WriteSummary {
  return {
    id,
    agent: "bot-a",
    intent: `intent ${id}`,
    status: "held",
    connector: "fs",
    verdict: "hold",
    reason_codes: ["uncovered"],
    bearers: ["institution"],
    touches: [`fs:/data/${id}`],
    blast_radius_size: 1,
    nearest_window: null,
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
    ...over,
  } as WriteSummary;
}

describe("sorting", () => {
  it("puts the nearest closing window first, writes without one last, then oldest first", () => {
    const list = [
      w("none-old", { created_at: "2025-01-01T00:00:00Z" }),
      w("late", { nearest_window: "2026-03-01T00:00:00Z" }),
      w("soon", { nearest_window: "2026-02-01T00:00:00Z" }),
      w("none-new", { created_at: "2026-06-01T00:00:00Z" }),
      w("soon-older", { nearest_window: "2026-02-01T00:00:00Z", created_at: "2025-06-01T00:00:00Z" }),
    ];
    expect(sortQueue(list).map((x) => x.id)).toEqual(["soon-older", "soon", "late", "none-old", "none-new"]);
  });

  it("is a total order (ties broken by id) and does not mutate its input", () => {
    const a = w("a");
    const b = w("b");
    const input = [b, a];
    expect(sortQueue(input).map((x) => x.id)).toEqual(["a", "b"]);
    expect(input.map((x) => x.id)).toEqual(["b", "a"]);
    expect(compareQueue(a, a)).toBe(0);
  });

  it("sorts 10,000 writes quickly", () => {
    const many = Array.from({ length: 10_000 }, (_, i) =>
      w(`w${i}`, { nearest_window: i % 3 ? new Date(Date.UTC(2026, 0, 1, 0, i % 997)).toISOString() : null }),
    );
    const t0 = performance.now();
    const sorted = sortQueue(many);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(sorted).toHaveLength(10_000);
    expect(sorted[sorted.length - 1].nearest_window ?? null).toBeNull();
  });
});

describe("filtering", () => {
  const list = [
    w("1", { bearers: ["customer", "institution"], agent: "integrity-bot", connector: "http" }),
    w("2", { agent: "cleanup-bot", connector: "fs", touches: ["fs:/srv/reports/q3"] }),
    w("3", { bearers: ["patient"], agent: "cleanup-bot", connector: "sql" }),
  ];
  it("filters by bearer, agent and connector together", () => {
    expect(filterQueue(list, { ...emptyFilter, bearer: "customer" }).map((x) => x.id)).toEqual(["1"]);
    expect(filterQueue(list, { ...emptyFilter, agent: "cleanup-bot" }).map((x) => x.id)).toEqual(["2", "3"]);
    expect(filterQueue(list, { ...emptyFilter, agent: "cleanup-bot", connector: "sql" }).map((x) => x.id)).toEqual(["3"]);
  });
  it("searches text in touched ids, case-insensitively", () => {
    expect(filterQueue(list, { ...emptyFilter, text: "REPORTS" }).map((x) => x.id)).toEqual(["2"]);
  });
  it("counts third parties and windows closing within the hour among the rows shown", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    const l = [...list, w("4", { nearest_window: "2026-01-01T00:30:00Z" })];
    expect(countQueue(l, l, now)).toMatchObject({ total: 4, shown: 4, thirdParty: 2, closingSoon: 1 });
    const c = countQueue(l, l.slice(0, 2), now);
    expect(c).toMatchObject({ total: 4, shown: 2, thirdParty: 1, closingSoon: 0 });
    // The bearer menu counts every write, whatever is filtered.
    expect(c.byBearer.customer).toBe(1);
    expect(c.byBearer.patient).toBe(1);
  });
  it("never counts a closed window as closing, and follows the filters", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    const l = [
      w("closed", { nearest_window: "2026-01-01T06:00:00Z", agent: "a" }),
      w("just-closed", { nearest_window: "2026-01-01T12:00:00Z", agent: "a" }),
      w("open-a", { nearest_window: "2026-01-01T12:20:00Z", agent: "a" }),
      w("open-b", { nearest_window: "2026-01-01T12:59:00Z", agent: "b" }),
      w("later", { nearest_window: "2026-01-01T14:00:00Z", agent: "b" }),
    ];
    expect(countQueue(l, l, now).closingSoon).toBe(2);
    const onlyB = filterQueue(l, { ...emptyFilter, agent: "b" });
    expect(countQueue(l, onlyB, now).closingSoon).toBe(1);
    const none = filterQueue(l, { ...emptyFilter, text: "closed" });
    expect(none.map((x) => x.id)).toEqual(["closed", "just-closed"]);
    expect(countQueue(l, none, now).closingSoon).toBe(0);
  });
  it("offers the distinct facet values", () => {
    expect(facets(list)).toEqual({
      agents: ["cleanup-bot", "integrity-bot"],
      connectors: ["fs", "http", "sql"],
      bearers: ["customer", "institution", "patient"],
    });
  });
});

describe("keyboard movement", () => {
  it("moves with j/k and clamps at the ends", () => {
    const ids = ["a", "b", "c"];
    expect(moveSelection(ids, null, 1)).toBe("a");
    expect(moveSelection(ids, "a", 1)).toBe("b");
    expect(moveSelection(ids, "c", 1)).toBe("c");
    expect(moveSelection(ids, "a", -1)).toBe("a");
    expect(moveSelection(ids, "gone", -1)).toBe("c");
    expect(moveSelection([], "a", 1)).toBeNull();
  });
  it("after the selected row left, continues from where it was, not from the top", () => {
    // b was decided and left: [a, b, c, d] became [a, c, d].
    const ids = ["a", "c", "d"];
    expect(moveSelection(ids, "b", 1, 1)).toBe("c");
    expect(moveSelection(ids, "b", -1, 1)).toBe("a");
    expect(moveSelection(ids, null, 1, 1)).toBe("c");
    // The last row left: j selects the new last one.
    expect(moveSelection(["a", "b"], null, 1, 2)).toBe("b");
    expect(moveSelection(["a"], null, -1, 0)).toBe("a");
  });
  it("drops a selection whose row left the list instead of shifting it onto another", () => {
    expect(keepSelection(["a", "b", "c"], "b", 0)).toEqual({ selected: "b", anchor: 1, lost: false });
    expect(keepSelection(["a", "c"], "b", 1)).toEqual({ selected: null, anchor: 1, lost: true });
    expect(keepSelection(["a", "c"], null, 1)).toEqual({ selected: null, anchor: 1, lost: false });
  });
});

describe("row wording", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  it("says a closed window closed, and an open one closes", () => {
    expect(windowText("2026-01-01T06:00:00Z", now)).toBe("window closed 6 h ago");
    expect(windowText("2026-01-01T12:40:00Z", now)).toBe("window closes in 40 min");
    expect(windowText("2026-01-01T12:00:00Z", now)).toBe("window closed 0 s ago");
    expect(windowText(null, now)).toBeNull();
  });
  it("shows partial approvals as 1 of 2", () => {
    expect(approvalsText({ status: "held", required_approvals: 2, approved_by: ["rev1"] })).toBe("1 of 2 approvals");
    expect(approvalsText({ status: "held", required_approvals: 2, approved_by: [] })).toBe("0 of 2 approvals");
    expect(approvalsText({ status: "held", required_approvals: 1, approved_by: [] })).toBeNull();
    expect(approvalsText({ status: "executed", required_approvals: 2, approved_by: ["a", "b"] })).toBeNull();
  });
  it("puts the decisive reason first and hides none in silence", () => {
    const codes = ["external", "uncovered", "third_party_bearer", "evidence_expired", "manual_step"] as const;
    expect(orderReasons([...codes])[0]).toBe("evidence_expired");
    const chips = reasonChips([...codes]);
    expect(chips.shown).toEqual(["evidence_expired", "external", "uncovered"]);
    expect(chips.more).toEqual(["manual_step", "third_party_bearer"]);
    expect([...chips.shown, ...chips.more].sort()).toEqual([...codes].sort());
    // Four fit: a "+1" would take the room of the chip it hides.
    expect(reasonChips(["external", "uncovered", "manual_step", "frozen"]).more).toEqual([]);
    expect(reasonChips(["uncovered", "uncovered"]).shown).toEqual(["uncovered"]);
  });
});

describe("observedOnly", () => {
  it("keeps what enforcement would have stopped, whatever its status", () => {
    const list = [w("a", { observed_hold: true, status: "executed" }), w("b"), w("c", { observed_hold: false }), w("d", { observed_hold: true, status: "rolled_back" })];
    expect(observedOnly(list).map((x) => x.id)).toEqual(["a", "d"]);
  });
});
