import { useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError, WriteRecord } from "../api";
import { describeError, STATUS_TEXT } from "../logic/text";
import { Dialog } from "./Dialog";

export type DecideKind = "approve" | "reject";

/** Approve (optional comment) or reject (reason required). Says "done" only
 * with the gate's answer in hand, and shows the status the gate gave. */
export function DecideDialog(props: {
  kind: DecideKind;
  writeId: string;
  intent: string;
  onClose: () => void;
  onDone: (w: WriteRecord) => void;
  onError: (e: ConsoleError) => void;
}) {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ConsoleError | null>(null);
  const [done, setDone] = useState<WriteRecord | null>(null);
  const approve = props.kind === "approve";

  const submit = async () => {
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

  return (
    <Dialog title={approve ? "Approve this write" : "Reject this write"} onClose={props.onClose} testid={`dialog-${props.kind}`}>
      <p className="ellipsis2">{props.intent}</p>
      {done ? (
        <>
          <div className="banner ok" data-testid="decide-result">
            The gate recorded it. Status now: <strong>{STATUS_TEXT[done.status]}</strong>
            {approve && done.status === "held"
              ? (done.approvals ?? []).length < done.required_approvals
                ? ` (${(done.approvals ?? []).length} of ${done.required_approvals} approvals)`
                : " (held again: its evidence changed; see the new reasons)"
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
          <textarea
            placeholder={approve ? "Comment (optional)" : "Reason (required)"}
            value={text}
            onChange={(e) => setText(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) submit();
            }}
            data-testid="decide-text"
          />
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
            <button
              className={approve ? "primary" : "danger"}
              disabled={busy || (!approve && !text.trim())}
              onClick={submit}
              data-testid="decide-submit"
            >
              {busy ? "Sending…" : approve ? "Approve" : "Reject"}
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}
