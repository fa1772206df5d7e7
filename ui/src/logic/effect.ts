// The effect preview in words: one headline per write ("Deletes 3 files in
// 4 folders, 5.0 KB, including a git repository"), and the helpers the
// write page's effect panel shows its parts with. The gate computes the
// effect (GET /v1/writes/{id}/effect); nothing here guesses it.
import type { EffectChange, RowChange, TreeSummary } from "../bindings";

/** 5000 -> "4.9 KB"; exact bytes below a kilobyte. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} byte${n === 1 ? "" : "s"}`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

function plural(n: number, one: string, many: string): string {
  return `${n.toLocaleString("en")} ${n === 1 ? one : many}`;
}

/** "3 files in 4 folders, 4.9 KB" (lower bounds said as such). */
export function treeSize(t: TreeSummary): string {
  if (t.type !== "dir") {
    return t.type === "file" ? `a file of ${bytes(t.bytes)}` : `a ${t.type === "symlink" ? "symbolic link" : t.type}`;
  }
  const atLeast = t.complete ? "" : "at least ";
  const parts = [plural(t.files, "file", "files"), `in ${plural(t.dirs, "folder", "folders")}`];
  if (t.others > 0) parts.push(`and ${plural(t.others, "other entry", "other entries")}`);
  return `${atLeast}${parts.join(" ")}, ${atLeast}${bytes(t.bytes)}`;
}

/** What a tree holds that weighs more than its size: "including a git repository". */
export function notableText(t: TreeSummary): string {
  if (t.notable.length === 0) return "";
  const names = t.notable.map((n) => `${n.path} (${n.what})`);
  return `including ${names.join(", ")}`;
}

/** The columns whose values differ between a row's two sides. */
export function changedColumns(columns: string[], row: RowChange): Set<string> {
  return new Set(row.changed.filter((c) => columns.includes(c)));
}

/** One sentence: what the write does to its target. */
export function headline(c: EffectChange): string {
  switch (c.kind) {
    case "removes": {
      const n = notableText(c.tree);
      return `Deletes ${treeSize(c.tree)}${n ? `, ${n}` : ""}.`;
    }
    case "moves": {
      const r = c.replaces ? ` It replaces what is there now: ${treeSize(c.replaces)}${notableText(c.replaces) ? `, ${notableText(c.replaces)}` : ""}.` : "";
      return `Moves ${treeSize(c.tree)} to ${c.to}.${r}`;
    }
    case "writes": {
      if (!c.before) return `Creates a new file of ${bytes(c.after.size)}.`;
      if (c.diff) {
        if (c.diff.added === 0 && c.diff.removed === 0) return "Writes the file with the same contents it has now.";
        return `Changes the file: ${plural(c.diff.added, "line", "lines")} added, ${plural(c.diff.removed, "line", "lines")} removed (${bytes(c.before.size)} → ${bytes(c.after.size)}).`;
      }
      const same = c.before.sha256 !== null && c.before.sha256 === c.after.sha256;
      if (same) return "Writes the file with the same contents it has now.";
      return `Replaces a ${c.before.text ? "text" : "binary"} file of ${bytes(c.before.size)} with ${bytes(c.after.size)}${c.after.text ? " of text" : ""} (too large or not text to show line by line).`;
    }
    case "rows": {
      const what = c.op === "insert" ? "Inserts" : c.op === "delete" ? "Deletes" : "Updates";
      const more = c.total > c.rows.length ? ` (the first ${c.rows.length} shown)` : "";
      const reach = c.reaches.length > 0 ? ` Foreign keys carry it further: ${c.reaches.length === 1 ? "1 table" : `${c.reaches.length} links`}.` : "";
      if (c.total === 0) return `${what} no rows of ${c.table}: nothing matches now.`;
      return `${what} ${plural(c.total, "row", "rows")} of ${c.table} in ${c.database}${more}.${reach}`;
    }
    case "request":
      return `Sends ${c.method} ${c.url}${c.body_bytes > 0 ? ` with a body of ${bytes(c.body_bytes)}` : ""}. What the other system does with it cannot be read back.`;
  }
}
