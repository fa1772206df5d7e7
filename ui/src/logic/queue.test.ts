import { describe, expect, it } from "vitest";
import type { WriteSummary } from "../bindings";
import { compareQueue, countQueue, emptyFilter, facets, filterQueue, moveSelection, sortQueue } from "./queue";

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
  it("counts third parties and windows closing within the hour", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    const l = [...list, w("4", { nearest_window: "2026-01-01T00:30:00Z" })];
    const c = countQueue(l, l.slice(0, 2), now);
    expect(c).toMatchObject({ total: 4, shown: 2, thirdParty: 2, closingSoon: 1 });
    expect(c.byBearer.customer).toBe(1);
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
});
