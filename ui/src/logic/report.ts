// The Monday audit's words: the gate computes the report (crates/report);
// the console only says it. One sentence per verdict, so the page, the
// HTML report and the CSV agree on what each means (docs/report.md).
import type { KindAudit, NeedsPerson, PathVerdict, ResourceVerdict } from "../bindings";

export const PATH_TEXT: Record<PathVerdict, string> = {
  no_path: "no rollback path: not reversible",
  manual_step: "resolves to a manual step: not reversible, a write with a cleanup team",
  leaves_unrestored: "leaves part of its blast radius with nothing to restore it",
  aspirational: "depends on context not verified outside its blast radius: aspirational",
  real: "every part restorable, its context verified",
};

export const NEEDS_TEXT: Record<NeedsPerson, string> = {
  always: "always needs a person: a third party bears every write seen",
  sometimes: "sometimes needs a person: a third party bore some writes",
  never: "the institution bears it",
};

export const RESOURCE_TEXT: Record<ResourceVerdict, string> = {
  external: "external: nothing the institution runs can put it back",
  not_restored: "reached, and no step restored it",
  aspirational: "restored, but not always with verified context",
  restorable: "restorable",
  not_reached: "no write has reached it yet",
};

/** Whether audit 1 says a kind is not reversible. */
export function notReversible(k: Pick<KindAudit, "rollback">): boolean {
  return k.rollback === "no_path" || k.rollback === "manual_step" || k.rollback === "leaves_unrestored";
}

/** A kind's one-line counts: "seen 3 · held 2 · ran 1". */
export function countsText(k: Pick<KindAudit, "counts">): string {
  const c = k.counts;
  const parts = [`seen ${c.seen}`, `held ${c.held}`, `ran ${c.ran}`];
  if (c.refused) parts.push(`refused ${c.refused}`);
  if (c.ran_unreviewed) parts.push(`ran unreviewed (observe mode) ${c.ran_unreviewed}`);
  if (c.rolled_back) parts.push(`rolled back ${c.rolled_back}`);
  return parts.join(" · ");
}
