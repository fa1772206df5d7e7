// What a rollback put back, and what it did not: an incident lead reads
// "verified" as "all is well" unless the report also says what no rollback
// could reach (a revoked licence, a letter already sent, anything external
// in the blast radius). Three groups, in that order: restored and verified;
// tried and not verified; never restorable.
import type { RestoreItem, WriteRecord } from "../bindings";
import { RESTORE_TEXT } from "./text";
import { cannotUndo, type Irreversible, sentText } from "./stakes";

export interface RollbackAccount {
  /** Put back, and verification against the capture passed. */
  restored: RestoreItem[];
  /** Tried, and not verified (drift, mismatch, failed, unverified, sent). */
  notRestored: RestoreItem[];
  /** In the blast radius, and no rollback step puts it back. */
  never: Irreversible[];
}

/** The account of a write's rollback report, or `null` when it has none. */
export function rollbackAccount(w: Pick<WriteRecord, "rollback" | "decision" | "connector">): RollbackAccount | null {
  const rep = w.rollback;
  if (!rep) return null;
  const reported = new Set(rep.items.map((i) => i.resource));
  const never = cannotUndo(w.decision).filter((x) => !reported.has(x.resource));
  const sent = sentText(w.connector);
  if (sent) never.unshift({ resource: "the request", bearer: "institution", why: sent });
  return {
    restored: rep.items.filter((i) => i.status === "restored"),
    notRestored: rep.items.filter((i) => i.status !== "restored"),
    never,
  };
}

/** The verdict's sentence: "verified" only for what the rollback restores,
 * and never without saying that something stays as the write left it. */
export function rollbackVerdict(verified: boolean, a: RollbackAccount): string {
  if (!verified) {
    return `The rollback did NOT verify: ${a.notRestored.length} of ${a.restored.length + a.notRestored.length} item${
      a.restored.length + a.notRestored.length === 1 ? "" : "s"
    } not restored. See below.`;
  }
  if (a.never.length === 0) return "Rolled back and verified: every item matches what was captured before the write.";
  return `Rolled back and verified: every item the rollback restores matches what was captured before the write. ${a.never.length} thing${
    a.never.length === 1 ? "" : "s"
  } in its blast radius could not be put back by any rollback: see below.`;
}

/** One line per item, for the lists. */
export function itemText(i: RestoreItem): string {
  return `${i.resource}: ${RESTORE_TEXT[i.status] ?? i.status}${i.detail ? ` (${i.detail})` : ""}`;
}
