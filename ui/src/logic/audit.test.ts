import { describe, expect, it } from "vitest";
import type { AuditEntry } from "../bindings";
import { newestFirst, olderThan, withNewest, withOlder } from "./audit";

function e(seq: number): AuditEntry {
  return { seq, at: "2026-01-01T00:00:00Z", actor: "gate", action: "write.held", body: {}, prev_hash: `h${seq - 1}`, hash: `h${seq}` };
}
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => e(from + i));
const seqs = (l: AuditEntry[]) => l.map((x) => x.seq);

describe("audit newest first", () => {
  it("orders newest first whatever order the page came in, once per seq", () => {
    expect(seqs(newestFirst([e(1), e(3), e(2), e(3)]))).toEqual([3, 2, 1]);
  });

  it("pages to older entries from the smallest seq shown", () => {
    // The gate's newest page of 3 out of 7 entries, then the next older page.
    const first = newestFirst(range(5, 7));
    expect(seqs(first)).toEqual([7, 6, 5]);
    expect(olderThan(first)).toBe(5);
    const second = withOlder(first, range(2, 4).reverse(), 3);
    expect(seqs(second.entries)).toEqual([7, 6, 5, 4, 3, 2]);
    expect(second.more).toBe(true);
    const last = withOlder(second.entries, [e(1)], 3);
    expect(seqs(last.entries)).toEqual([7, 6, 5, 4, 3, 2, 1]);
    expect(last.more).toBe(false);
    expect(olderThan([])).toBeNull();
  });

  it("says there is nothing older once the first entry is shown", () => {
    expect(withOlder([], range(1, 3).reverse(), 3).more).toBe(false);
    expect(withOlder([], range(2, 4).reverse(), 3).more).toBe(true);
  });

  it("merges newer entries on top, and drops the shown ones rather than leave a gap", () => {
    const shown = newestFirst(range(1, 5));
    const fresh = withNewest(shown, range(4, 8).reverse());
    expect(seqs(fresh.entries)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    expect(fresh.replaced).toBe(false);
    const far = withNewest(shown, range(10, 12).reverse());
    expect(seqs(far.entries)).toEqual([12, 11, 10]);
    expect(far.replaced).toBe(true);
    expect(seqs(withNewest([], range(1, 2)).entries)).toEqual([2, 1]);
  });
});
