import { useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError, WriteRecord } from "../api";
import type { Irreversible } from "../logic/stakes";
import { describeError, STATUS_TEXT } from "../logic/text";
import { Dialog } from "./Dialog";

export type DecideKind = "approve" | "reject";

/** Approve or reject. A reason is required to reject, and to approve where
 * the gate says the approval needs one (`approval_needs_reason`: a third
 * party pays, or something external is reached); then what cannot be
 * undone is listed above the reason. Says "done" only with the gate's
 * answer in hand, and shows the status the gate gave. */
export function DecideDialog(props: {
  kind: DecideKind;
  writeId: string;
  intent: string;
  /** The gate's `approval_needs_reason` for this write. */
  needsReason?: boolean;
  /** Shown when the approval needs a reason. */
  cannotUndo?: Irreversible[];
  sent?: string | null;
  onClose: () => void;
  onDone: (w: WriteRecord) => void;
  onError: (e: ConsoleError) => void;
}) {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ConsoleError | null>(null);
  const [done, setDone] = useState<WriteRecord | null>(null);
  const approve = props.kind === "approve";
  const reasonRequired = !approve || !!props.needsReason;
  const ready = !busy && (!reasonRequired || text.trim().length > 0);

  const submit = async () => {
    // Ctrl+Enter comes here too: never without what the button requires.
    if (!ready) return;
    setBusy(true);
    setError(null);
    const r = await call(approve ? commands.approve(props.writeId, text.trim() ? text : null) : commands.reject(props.writeId, text));
    setBusy(false);
    if (r.status === "ok") setDone(r.data);
    else {
      setError(r.error);
      props.onError(r.error);
    }
  };

  const undo = props.cannotUndo ?? [];
  return (
    <Dialog title={approve ? "Approve this write" : "Reject this write"} onClose={props.onClose} testid={`dialog-${props.kind}`}>
      <p className="ellipsis2">
        {props.intent} <span className="muted small">({props.writeId})</span>
      </p>
      {done ? (
        <>
          <div className="banner ok" data-testid="decide-result">
            The gate recorded it. Status now: <strong>{STATUS_TEXT[done.status]}</strong>
            {approve && done.status === "held"
              ? (done.approvals ?? []).length < done.required_approvals
                ? ` (${(done.approvals ?? []).length} of ${done.required_approvals} approvals)`
                : ` (${done.history?.at(-1)?.note ?? "held again: its decision changed"})`
              : ""}
          </div>
          <div className="row end">
            <button className="primary" onClick={() => props.onDone(done)} data-testid="decide-close">
              Close
            </button>
          </div>
        </>
      ) : (
        <>
          {approve && props.needsReason && (
            <div className="banner warnbox" data-testid="decide-stakes">
              <strong>What cannot be undone if this goes wrong:</strong>
              <ul className="small">
                {undo.map((u) => (
                  <li key={u.resource}>
                    {u.resource}
                    {u.bearer !== "institution" ? <span className="badge bearer">⚑ {u.bearer} pays</span> : null} — {u.why}
                  </li>
                ))}
                {props.sent ? <li>{props.sent}</li> : null}
                {undo.length === 0 && !props.sent ? <li>Someone other than the institution bears what it changes.</li> : null}
              </ul>
            </div>
          )}
          <textarea
            placeholder={
              approve
                ? props.needsReason
                  ? "Reason (required): why approve it, knowing the above"
                  : "Comment (optional)"
                : "Reason (required)"
            }
            value={text}
            onChange={(e) => setText(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
                e.preventDefault();
                submit();
              }
            }}
            data-testid="decide-text"
          />
          {approve && props.needsReason && !text.trim() && (
            <p className="small warn" data-testid="decide-reason-needed">
              A third party pays or something outside our systems is reached: the gate records an approval only with a written reason.
            </p>
          )}
          {approve && <p className="muted small">Before it runs, the gate checks its evidence again; if anything changed it is held again.</p>}
          {error && (
            <div className="banner error" role="alert" data-testid="decide-error">
              {describeError(error)}
            </div>
          )}
          <div className="row end">
            <button onClick={props.onClose} data-testid="decide-cancel">
              Cancel
            </button>
            <button className={approve ? "primary" : "danger"} disabled={!ready} onClick={submit} data-testid="decide-submit">
              {busy ? "Sending…" : approve ? "Approve" : "Reject"}
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}
