// The queue of writes: sorting, filtering and counting, kept pure so the
// view can stay a thin list and the tests can run without a DOM.
import type { Bearer, ReasonCode, WriteSummary } from "../bindings";

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

/** What enforcement would have stopped: the writes observe mode ran
 * although the gate's decision would have held them. */
export function observedOnly(writes: readonly WriteSummary[]): WriteSummary[] {
  return writes.filter((w) => w.observed_hold === true);
}

export function filterQueue(writes: readonly WriteSummary[], f: QueueFilter): WriteSummary[] {
  return writes.filter((w) => matches(w, f));
}

export interface QueueCounts {
  total: number;
  shown: number;
  /** Among the shown: a third party pays if reversal fails. */
  thirdParty: number;
  /** Among the shown: a window still open that closes within the hour. */
  closingSoon: number;
  /** Over all writes: the bearer menu's counts. */
  byBearer: Partial<Record<Bearer, number>>;
}

/** A window still open and closing within `soonMs` of `now`: a closed one
 * is past saving, and is said so on its row ("window closed … ago"). */
export function closingSoon(w: Pick<WriteSummary, "nearest_window">, now: number = Date.now(), soonMs = 3600_000): boolean {
  const t = time(w.nearest_window);
  return t !== null && t > now && t - now < soonMs;
}

/** The counts over the list as filtered (`shown`), so they agree with the
 * rows on screen; the bearer menu counts every write (`all`). */
export function countQueue(
  all: readonly WriteSummary[],
  shown: readonly WriteSummary[],
  now: number = Date.now(),
  soonMs = 3600_000,
): QueueCounts {
  const byBearer: Partial<Record<Bearer, number>> = {};
  for (const w of all) for (const b of w.bearers) byBearer[b] = (byBearer[b] ?? 0) + 1;
  let thirdParty = 0;
  let soon = 0;
  for (const w of shown) {
    if (w.bearers.some((b) => b !== "institution")) thirdParty++;
    if (closingSoon(w, now, soonMs)) soon++;
  }
  return { total: all.length, shown: shown.length, thirdParty, closingSoon: soon, byBearer };
}

/** A row's window: "window closed 6 h ago" once it has closed, "window
 * closes in 40 min" while open; `null` without one. */
export function windowText(iso: string | null | undefined, now: number = Date.now()): string | null {
  const t = time(iso);
  if (t === null) return null;
  return t <= now ? `window closed ${relative(iso, now)}` : `window closes ${relative(iso, now)}`;
}

/** "1 of 2 approvals" while a held write has some of what it needs, or
 * needs more than one; `null` where there is nothing to count. */
export function approvalsText(w: Pick<WriteSummary, "status" | "required_approvals" | "approved_by">): string | null {
  const need = w.required_approvals ?? 0;
  const given = (w.approved_by ?? []).length;
  if (w.status !== "held" || need === 0 || (need === 1 && given === 0)) return null;
  return `${given} of ${need} approval${need === 1 ? "" : "s"}`;
}

/** Reason codes by weight, the decisive first: what makes the write
 * impossible to run or to undo (a refusal, a closed window, something
 * external, rollback evidence the write itself destroys) before what a
 * person can still arrange. Codes not listed keep their order, last. */
export const REASON_WEIGHT: readonly ReasonCode[] = [
  "outside_roots",
  "unknown_connector",
  "invalid_action",
  "evidence_expired",
  "external",
  "evidence_in_blast_radius",
  "unmodelled",
  "evidence_window_closing",
  "evidence_missing",
  "uncovered",
  "manual_step",
  "third_party_bearer",
  "evidence_unverifiable",
  "evidence_stale",
  "unknown_resource",
  "frozen",
];

export function orderReasons(codes: readonly ReasonCode[]): ReasonCode[] {
  const rank = (c: ReasonCode) => {
    const i = REASON_WEIGHT.indexOf(c);
    return i === -1 ? REASON_WEIGHT.length : i;
  };
  return [...new Set(codes)].sort((a, b) => rank(a) - rank(b));
}

/** The chips a row shows: the decisive `max` first, and how many more
 * (shown as a visible "+N", never dropped in silence). */
export function reasonChips(codes: readonly ReasonCode[], max = 3): { shown: ReasonCode[]; more: ReasonCode[] } {
  const all = orderReasons(codes);
  // "+1" would take the room of the chip it hides: show that one instead.
  const cut = all.length <= max + 1 ? all.length : max;
  return { shown: all.slice(0, cut), more: all.slice(cut) };
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

/** j/k movement over the visible list, clamped. When the current row has
 * left the list (decided, or filtered out), `anchor` is where it was: j
 * selects the row now in its place and k the one above, never a jump to
 * the top. */
export function moveSelection(ids: readonly string[], current: string | null, delta: number, anchor: number | null = null): string | null {
  if (ids.length === 0) return null;
  const at = current === null ? -1 : ids.indexOf(current);
  if (at === -1) {
    if (anchor !== null && anchor >= 0) {
      const to = delta >= 0 ? Math.min(anchor, ids.length - 1) : Math.min(Math.max(anchor - 1, 0), ids.length - 1);
      return ids[to];
    }
    return delta >= 0 ? ids[0] : ids[ids.length - 1];
  }
  const next = Math.min(ids.length - 1, Math.max(0, at + delta));
  return ids[next];
}

/** What the queue's selection becomes when the list changes: kept where the
 * selected write is still listed; otherwise nothing is selected (a key must
 * never act on a row the reviewer did not see selected), with the position
 * it had as the anchor for the next j/k. */
export function keepSelection(
  ids: readonly string[],
  selected: string | null,
  anchor: number | null,
): { selected: string | null; anchor: number | null; lost: boolean } {
  if (selected === null) return { selected, anchor, lost: false };
  const at = ids.indexOf(selected);
  if (at === -1) return { selected: null, anchor, lost: true };
  return { selected, anchor: at, lost: false };
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
  return d > 0 ? `in ${unit}` : `${unit} ago`;
}
