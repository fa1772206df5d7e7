// What a reviewer must see before a high-stakes approval: what cannot be
// undone if it goes wrong. Whether an approval is high-stakes is the gate's
// rule (`approval_needs_reason` on the write); this only says what is at stake.
import type { BlastEntry, Decision } from "../bindings";

export interface Irreversible {
  resource: string;
  bearer: BlastEntry["bearer"];
  /** Why it cannot be put back, in words. */
  why: string;
}

/** The resources in the blast radius that no verified step puts back:
 * third parties' first, then external ones, then the rest, each group in
 * the order the gate listed them. */
export function cannotUndo(decision: Pick<Decision, "blast_radius"> & Partial<Pick<Decision, "reasons">>): Irreversible[] {
  const out: (Irreversible & { rank: number; at: number })[] = [];
  decision.blast_radius.forEach((e, at) => {
    if (e.covered && e.reach !== "external") return;
    const why =
      e.reach === "external"
        ? "outside every system we run: nothing of ours can put it back"
        : e.reach === "observed"
          ? "another system restores it, and no verified step here does"
          : "no verified rollback step puts it back";
    const rank = e.bearer !== "institution" ? 0 : e.reach === "external" ? 1 : 2;
    out.push({ resource: e.resource, bearer: e.bearer, why, rank, at });
  });
  // A rollback whose own context this write changes puts nothing back:
  // what it needs is gone with the write (the delete that takes the .git
  // its recovery needed), however covered the blast radius looks.
  (decision.reasons ?? []).forEach((r, i) => {
    if (r.code !== "evidence_in_blast_radius") return;
    const resource = r.resource ?? r.path?.[r.path.length - 1] ?? r.evidence ?? "its rollback context";
    if (out.some((o) => o.resource === resource)) return;
    const bearer = decision.blast_radius.find((e) => e.resource === resource)?.bearer ?? "institution";
    out.push({ resource, bearer, why: "its rollback needs this, and this write changes it: if the write goes wrong, there is nothing to restore from", rank: bearer !== "institution" ? 0 : 1, at: -1 - i });
  });
  out.sort((a, b) => a.rank - b.rank || a.at - b.at);
  return out.map(({ resource, bearer, why }) => ({ resource, bearer, why }));
}

/** A request another system received cannot be unsent: said for `http`
 * writes on top of what their blast radius shows. */
export function sentText(connector: string): string | null {
  return connector === "http" ? "The request itself: once the other system has it, it cannot be unsent." : null;
}
