// The queue of writes: sorting, filtering and counting, kept pure so the
// view can stay a thin list and the tests can run without a DOM.
import type { Bearer, WriteSummary } from "../bindings";

export interface QueueFilter {
  bearer: Bearer | "";
  agent: string;
  connector: string;
  /** Free text over id, intent, agent and touched ids. */
  text: string;
}

export const emptyFilter: QueueFilter = { bearer: "", agent: "", connector: "", text: "" };

function time(s: string | null | undefined): number | null {
  if (!s) return null;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}

/** Nearest closing window first (writes with none after), then oldest first,
 * then id, so the order is total and stable. */
export function compareQueue(a: WriteSummary, b: WriteSummary): number {
  const wa = time(a.nearest_window);
  const wb = time(b.nearest_window);
  if (wa !== wb) {
    if (wa === null) return 1;
    if (wb === null) return -1;
    return wa - wb;
  }
  const ca = time(a.created_at) ?? 0;
  const cb = time(b.created_at) ?? 0;
  if (ca !== cb) return ca - cb;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function sortQueue(writes: readonly WriteSummary[]): WriteSummary[] {
  return [...writes].sort(compareQueue);
}

export function matches(w: WriteSummary, f: QueueFilter): boolean {
  if (f.bearer && !w.bearers.includes(f.bearer)) return false;
  if (f.agent && w.agent !== f.agent) return false;
  if (f.connector && w.connector !== f.connector) return false;
  const text = f.text.trim().toLowerCase();
  if (text) {
    const hay = [w.id, w.intent, w.agent, w.connector, ...w.touches].join("\n").toLowerCase();
    if (!hay.includes(text)) return false;
  }
  return true;
}

export function filterQueue(writes: readonly WriteSummary[], f: QueueFilter): WriteSummary[] {
  return writes.filter((w) => matches(w, f));
}

export interface QueueCounts {
  total: number;
  shown: number;
  thirdParty: number;
  closingSoon: number;
  byBearer: Partial<Record<Bearer, number>>;
}

/** `closingSoon`: a window closes within `soonMs` of `now`. */
export function countQueue(
  all: readonly WriteSummary[],
  shown: readonly WriteSummary[],
  now: number = Date.now(),
  soonMs = 3600_000,
): QueueCounts {
  const byBearer: Partial<Record<Bearer, number>> = {};
  let thirdParty = 0;
  let closingSoon = 0;
  for (const w of all) {
    for (const b of w.bearers) byBearer[b] = (byBearer[b] ?? 0) + 1;
    if (w.bearers.some((b) => b !== "institution")) thirdParty++;
    const t = time(w.nearest_window);
    if (t !== null && t - now < soonMs) closingSoon++;
  }
  return { total: all.length, shown: shown.length, thirdParty, closingSoon, byBearer };
}

/** The distinct values the filter menus offer. */
export function facets(writes: readonly WriteSummary[]): { agents: string[]; connectors: string[]; bearers: Bearer[] } {
  const agents = new Set<string>();
  const connectors = new Set<string>();
  const bearers = new Set<Bearer>();
  for (const w of writes) {
    agents.add(w.agent);
    connectors.add(w.connector);
    for (const b of w.bearers) bearers.add(b);
  }
  return { agents: [...agents].sort(), connectors: [...connectors].sort(), bearers: [...bearers].sort() };
}

/** j/k movement over the visible list, clamped. */
export function moveSelection(ids: readonly string[], current: string | null, delta: number): string | null {
  if (ids.length === 0) return null;
  const at = current === null ? -1 : ids.indexOf(current);
  if (at === -1) return delta >= 0 ? ids[0] : ids[ids.length - 1];
  const next = Math.min(ids.length - 1, Math.max(0, at + delta));
  return ids[next];
}

/** "in 42 min", "3 h ago": for windows and ages. */
export function relative(iso: string | null | undefined, now: number = Date.now()): string {
  const t = time(iso);
  if (t === null) return "";
  const d = t - now;
  const abs = Math.abs(d);
  const unit =
    abs < 60_000 ? `${Math.round(abs / 1000)} s` :
    abs < 3600_000 ? `${Math.round(abs / 60_000)} min` :
    abs < 86400_000 ? `${Math.round(abs / 3600_000)} h` :
    `${Math.round(abs / 86400_000)} d`;
  return d >= 0 ? `in ${unit}` : `${unit} ago`;
}
