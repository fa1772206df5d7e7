import { describe, expect, it } from "vitest";
import type { EffectChange, TreeSummary } from "../bindings";
import { bytes, headline, treeSize } from "./effect";

const tree = (over: Partial<TreeSummary> = {}): TreeSummary => ({
  type: "dir",
  files: 3,
  dirs: 4,
  others: 0,
  bytes: 5031,
  complete: true,
  notable: [],
  entries: [],
  more_entries: 0,
  ...over,
});

describe("the effect in words", () => {
  it("says sizes a person reads", () => {
    expect(bytes(1)).toBe("1 byte");
    expect(bytes(1023)).toBe("1023 bytes");
    expect(bytes(5031)).toBe("4.9 KB");
    expect(bytes(300 * 1024 * 1024)).toBe("300 MB");
  });

  it("names what a delete takes, with what weighs more than its size", () => {
    const c: EffectChange = {
      kind: "removes",
      path: "/srv/shop",
      tree: tree({ notable: [{ path: ".git", what: "git repository: history, branches, stash and hooks" }] }),
    };
    expect(headline(c)).toBe("Deletes 3 files in 4 folders, 4.9 KB, including .git (git repository: history, branches, stash and hooks).");
  });

  it("says counts are lower bounds when the walk stopped", () => {
    expect(treeSize(tree({ complete: false, files: 200000 }))).toBe("at least 200,000 files in 4 folders, at least 4.9 KB");
  });

  it("describes a single file or link as such", () => {
    expect(treeSize(tree({ type: "file", files: 1, dirs: 0, bytes: 10 }))).toBe("a file of 10 bytes");
    expect(treeSize(tree({ type: "symlink", files: 0, dirs: 0, others: 1 }))).toBe("a symbolic link");
  });

  it("counts a file write's lines, and says when there is no diff to show", () => {
    const facts = (size: number, text = true, sha256: string | null = "a") => ({ size, sha256, text });
    expect(headline({ kind: "writes", path: "/f", before: facts(120), after: facts(140, true, "b"), diff: { added: 2, removed: 1, lines: [], truncated: false } })).toBe(
      "Changes the file: 2 lines added, 1 line removed (120 bytes → 140 bytes).",
    );
    expect(headline({ kind: "writes", path: "/f", before: null, after: facts(8), diff: null })).toBe("Creates a new file of 8 bytes.");
    expect(headline({ kind: "writes", path: "/f", before: facts(5 << 20, false, "x"), after: facts(6 << 20, false, "y"), diff: null })).toBe(
      "Replaces a binary file of 5.0 MB with 6.0 MB (too large or not text to show line by line).",
    );
    expect(headline({ kind: "writes", path: "/f", before: facts(9, false, "x"), after: facts(9, false, "x"), diff: null })).toBe(
      "Writes the file with the same contents it has now.",
    );
  });

  it("counts rows, says when only the first are shown, and when nothing matches", () => {
    const rows = (total: number, shown: number): EffectChange => ({
      kind: "rows",
      database: "shop",
      table: "customers",
      op: "update",
      columns: ["id"],
      total,
      rows: Array.from({ length: shown }, () => ({ before: [null], after: [null], changed: [] })),
      reaches: [],
    });
    expect(headline(rows(2, 2))).toBe("Updates 2 rows of customers in shop.");
    expect(headline(rows(120, 50))).toBe("Updates 120 rows of customers in shop (the first 50 shown).");
    expect(headline(rows(0, 0))).toBe("Updates no rows of customers: nothing matches now.");
  });

  it("says a request cannot be read back", () => {
    expect(headline({ kind: "request", method: "POST", url: "https://x/renew", headers: [], body: "{}", body_bytes: 2 })).toBe(
      "Sends POST https://x/renew with a body of 2 bytes. What the other system does with it cannot be read back.",
    );
  });
});
