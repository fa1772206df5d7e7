// Plain-language wording for codes and statuses, and for errors.
import type { ConsoleError, ErrorCode, EvidenceReport, EvidenceStatus, ReasonCode, RestoreStatus, WriteStatus } from "../bindings";

export const REASON_TITLE: Record<ReasonCode, string> = {
  external: "Reaches something outside every system we run",
  uncovered: "No verified way to put it back",
  third_party_bearer: "Someone outside the institution pays if this goes wrong",
  evidence_in_blast_radius: "The rollback depends on something this write changes",
  evidence_missing: "Rollback evidence is missing",
  evidence_unverifiable: "Rollback evidence could not be checked",
  evidence_expired: "A time window for undoing it has closed",
  evidence_window_closing: "A time window for undoing it closes soon",
  evidence_stale: "Rollback evidence is too old",
  manual_step: "Undoing it needs a person",
  unknown_resource: "Touches something not in the catalog",
  outside_roots: "Outside the paths the gate may write",
  unknown_connector: "The gate has no such connector",
  invalid_action: "The action is malformed",
  frozen: "The gate is frozen",
  unmodelled: "A change the connector cannot model",
};

/** A reason code on a queue row, short. */
export const REASON_CHIP: Record<ReasonCode, string> = {
  external: "external",
  uncovered: "uncovered",
  third_party_bearer: "third party pays",
  evidence_in_blast_radius: "evidence in blast radius",
  evidence_missing: "evidence missing",
  evidence_unverifiable: "evidence unverifiable",
  evidence_expired: "window closed",
  evidence_window_closing: "window closing",
  evidence_stale: "evidence stale",
  manual_step: "manual step",
  unknown_resource: "unknown resource",
  outside_roots: "outside roots",
  unknown_connector: "unknown connector",
  invalid_action: "invalid action",
  frozen: "frozen",
  unmodelled: "unmodelled",
};

export const EVIDENCE_TEXT: Record<EvidenceStatus, string> = {
  verified: "verified",
  in_blast_radius: "inside the blast radius",
  missing: "missing",
  unverifiable: "not checked",
  expired: "expired",
  window_closing: "closing soon",
  stale: "stale",
};

export const STATUS_TEXT: Record<WriteStatus, string> = {
  held: "held",
  approved: "approved",
  executing: "executing",
  executed: "executed",
  rejected: "rejected",
  refused: "refused",
  expired: "expired",
  failed: "failed",
  rolling_back: "rolling back",
  rolled_back: "rolled back",
  outcome_unknown: "outcome unknown — an incident lead must check",
  rollback_failed: "rollback did not verify",
};

/** What a rollback did to one resource, in plain words. Only `restored` was
 * verified; `unverified` went back but its contents could not be checked. */
export const RESTORE_TEXT: Record<RestoreStatus, string> = {
  restored: "restored and verified",
  drift: "not restored: it changed after the write (drift); nothing was overwritten",
  mismatch: "put back, but verification found differences",
  failed: "not restored",
  unverified: "put back; contents not verified (no seal)",
  sent: "a compensating request may have been sent before a crash; not sent twice: check the target",
};

/** A sentence for the statuses that wait for a person, shown on the write's
 * page under its status; `null` for the others. */
export function statusNote(s: WriteStatus): string | null {
  switch (s) {
    case "outcome_unknown":
      return "Whether this write took effect cannot be told from the target. An incident lead must check the target and settle it: it ran, or it did not.";
    case "rollback_failed":
      return "A rollback ran and did not verify against what was captured. An incident lead must look at the items below and roll back again.";
    case "failed":
      return "Nothing ran: it failed before it changed anything.";
    default:
      return null;
  }
}

/** A gate's message as part of a sentence: no code quoting, a capital
 * first letter and a final period. */
export function sentence(message: string): string {
  const m = message.replace(/`/g, "").trim();
  if (!m) return "";
  const s = m.charAt(0).toUpperCase() + m.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** Why a gate could not be reached, in words, from the HTTP client's
 * error chain (which is never shown as is). */
export function unreachableCause(message: string): string {
  const m = message.toLowerCase();
  if (/connection refused|actively refused/.test(m)) return "nothing answers at that address; is the gate running?";
  if (/timed out|timeout/.test(m)) return "it did not answer in time.";
  if (/dns|resolve|lookup|name or service not known|no such host/.test(m)) return "its name could not be found.";
  if (/certificate|tls|ssl|handshake/.test(m)) return "its certificate was not accepted.";
  if (/reset|broken pipe|closed/.test(m)) return "the connection was cut.";
  return "the connection failed.";
}

/** A refusal by the gate, as a sentence a reviewer can act on; the code
 * picks the sentence, never appears in it. */
export function refusalText(e: { status: number; code: ErrorCode; message: string; field?: string | null }): string {
  switch (e.code) {
    case "already_approved":
      return "You have already approved this write. It now needs an approval from another reviewer.";
    case "frozen":
      return "The gate is frozen: nothing can be approved or run until an incident lead resumes it.";
    case "reason_required":
      return "This write needs a written reason to be approved: someone other than the institution pays, or it reaches outside our systems. Nothing was recorded.";
    case "wrong_status":
      return `This write cannot be decided any more. ${sentence(e.message)}`;
    case "busy":
    case "conflict":
      return "The write changed while you were deciding. Reload it, look again, and try again.";
    case "drift":
      return `The target changed since the write was checked. ${sentence(e.message)}`;
  }
  if (e.status === 401) return `The gate did not accept this token. ${sentence(e.message)}`;
  if (e.status === 403) return `Your role may not do this. ${sentence(e.message)}`;
  if (e.status === 404) return `The gate does not know it. ${sentence(e.message)}`;
  if (e.status === 400) return `The gate could not accept the request: ${sentence(`${e.field ? `${e.field}: ` : ""}${e.message}`)}`;
  if (e.status === 429) return "The gate is busy; wait a moment and try again.";
  if (e.status === 502) return `The target system failed. ${sentence(e.message)}`;
  if (e.status === 503) return "The gate's store is unavailable; nothing was changed. Try again shortly.";
  if (e.status >= 500) return "The gate failed on its side and logged why; nothing shown here was changed by it.";
  return `The gate refused. ${sentence(e.message)}`;
}

/** What to tell a person about a failed command. Says plainly whether the
 * gate got the request at all. */
export function describeError(e: ConsoleError): string {
  switch (e.kind) {
    case "not_connected":
      return "Not connected to a gate. Nothing was sent.";
    case "unreachable":
      return `The gate at ${e.url} cannot be reached: ${unreachableCause(e.message)} Nothing was done.`;
    case "api":
      return refusalText(e);
    case "protocol":
      return `The gate's answer could not be read (${e.message}). It may or may not have acted; reload to see.`;
    case "invalid":
      return `${sentence(`${e.field}: ${e.message}`)} Nothing was sent.`;
    case "token_store":
      return `The token could not be stored. ${sentence(e.message)}`;
  }
}

/** Why live updates stopped, in words (the host's message may carry the
 * HTTP client's error chain). */
export function linkDownText(message: string): string {
  if (/could not be reached|error sending request|connect/i.test(message)) return `Live updates stopped: ${unreachableCause(message)}`;
  return `Live updates stopped. ${sentence(message)}`;
}

export function isUnreachable(e: ConsoleError): boolean {
  return e.kind === "unreachable";
}

/** The frozen banner's line: who froze the gate, when, and why. */
export function frozenText(s: { by?: string | null; at?: string | null; reason?: string | null }, now: number = Date.now()): string {
  return whoWhenWhy("Frozen by", s, now);
}

function whoWhenWhy(lead: string, s: { by?: string | null; at?: string | null; reason?: string | null }, now: number): string {
  const who = s.by?.trim() ? s.by.trim() : "an unknown user";
  const t = s.at ? Date.parse(s.at) : NaN;
  const when = Number.isNaN(t) ? "" : ` at ${new Date(t).toLocaleString()} (${relativeAgo(t, now)})`;
  const why = s.reason?.trim() ? `: “${s.reason.trim()}”` : "";
  return `${lead} ${who}${when}${why}`;
}

function relativeAgo(t: number, now: number): string {
  const abs = Math.max(0, now - t);
  const unit =
    abs < 60_000 ? `${Math.round(abs / 1000)} s` : abs < 3600_000 ? `${Math.round(abs / 60_000)} min` : abs < 86400_000 ? `${Math.round(abs / 3600_000)} h` : `${Math.round(abs / 86400_000)} d`;
  return `${unit} ago`;
}

/**
 * Who verified one evidence item and how, as the reviewer reads it. The
 * gate names the observer (`verified_by`); where it names none, the status
 * and kind say why nobody could: a window is the agent's own claim, checked
 * only against the clock, and anything else had no connector capture and
 * no probe the catalog allows.
 */
export function verifiedByText(e: Pick<EvidenceReport, "kind" | "status" | "verified_by" | "detail">): string {
  if (e.verified_by) return e.detail ? `${e.verified_by}: ${e.detail}` : e.verified_by;
  if (e.status === "in_blast_radius") return "not observed: it lies inside what this write reaches";
  if (e.kind === "window") return "declared by the proposal; only checked against the clock (a window alone covers nothing)";
  return "nobody verified it: no connector of the gate captured it, and its location declares no probe prefix a risk officer set";
}

/** The observe banner's line: who switched the gate to observe mode, when,
 * and why (the same shape as the frozen banner). */
export function observeText(s: { by?: string | null; at?: string | null; reason?: string | null }, now: number = Date.now()): string {
  return whoWhenWhy("Switched by", s, now);
}

/** The reasons enforcement would have held a write for, in words (short
 * chips for a row, the full titles on the write page); "" for none. */
export function heldForText(codes: readonly ReasonCode[] | null | undefined, long = false): string {
  return (codes ?? []).map((c) => (long ? REASON_TITLE[c] : REASON_CHIP[c]) ?? c).join(long ? "; " : ", ");
}

/** The badge on a write observe mode ran although enforcement would have
 * held it, with the reasons it would have been held for. */
export function observedHoldText(codes: readonly ReasonCode[] | null | undefined, long = false): string {
  const words = heldForText(codes, long);
  return words ? `would have been held: ${words}` : "would have been held";
}
