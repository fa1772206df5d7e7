// The audit page shows the trail newest first: the latest page on open,
// older pages on request, newer entries merged in as the gate reports them.
// Kept pure so the tests can check the order without a DOM.
import type { AuditEntry } from "../bindings";

/** Newest first, one entry per `seq`. */
export function newestFirst(entries: readonly AuditEntry[]): AuditEntry[] {
  const bySeq = new Map<number, AuditEntry>();
  for (const e of entries) bySeq.set(e.seq, e);
  return [...bySeq.values()].sort((a, b) => b.seq - a.seq);
}

/** Where the next older page starts: the smallest `seq` shown, or `null`
 * when nothing is shown yet (then the first page is the newest). */
export function olderThan(shown: readonly AuditEntry[]): number | null {
  if (shown.length === 0) return null;
  let min = shown[0].seq;
  for (const e of shown) if (e.seq < min) min = e.seq;
  return min;
}

/** Appends an older page. `more` says whether an older page may exist: a
 * short page, or one that reached the first entry, is the end. */
export function withOlder(shown: readonly AuditEntry[], page: readonly AuditEntry[], limit: number): { entries: AuditEntry[]; more: boolean } {
  const entries = newestFirst([...shown, ...page]);
  const oldest = olderThan(entries);
  return { entries, more: page.length >= limit && oldest !== null && oldest > 1 };
}

/** Merges a fresh newest page into what is shown. If the fresh page does
 * not reach what is shown (more entries came than one page holds), the
 * shown entries are dropped rather than left behind a silent gap; the
 * older ones can be paged to again. */
export function withNewest(shown: readonly AuditEntry[], page: readonly AuditEntry[]): { entries: AuditEntry[]; replaced: boolean } {
  if (shown.length === 0 || page.length === 0) return { entries: newestFirst([...shown, ...page]), replaced: false };
  let newestShown = shown[0].seq;
  for (const e of shown) if (e.seq > newestShown) newestShown = e.seq;
  const oldestFresh = olderThan(page) ?? 0;
  if (oldestFresh > newestShown + 1) return { entries: newestFirst(page), replaced: true };
  return { entries: newestFirst([...shown, ...page]), replaced: false };
}
