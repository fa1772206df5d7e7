import { useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError, WriteRecord } from "../api";
import { describeError, STATUS_TEXT } from "../logic/text";
import { Dialog } from "./Dialog";

/** Settles a write whose outcome the gate cannot know. The person says what
 * they found on the target (it ran, or it did not) and what they checked;
 * neither has a default, so nothing is settled by a stray click. */
export function ResolveDialog(props: {
  write: WriteRecord;
  onClose: () => void;
  onDone: (w: WriteRecord) => void;
  onError: (e: ConsoleError) => void;
}) {
  const [ran, setRan] = useState<boolean | null>(null);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ConsoleError | null>(null);
  const [done, setDone] = useState<WriteRecord | null>(null);

  const submit = async () => {
    if (ran === null) return;
    setBusy(true);
    setError(null);
    const r = await call(commands.resolve(props.write.id, ran, reason));
    setBusy(false);
    if (r.status === "ok") setDone(r.data);
    else {
      setError(r.error);
      props.onError(r.error);
    }
  };

  if (done) {
    return (
      <Dialog title="Settled" onClose={() => props.onDone(done)} testid="resolve-result">
        <div className="banner ok" data-testid="resolve-status">
          The gate recorded it. Status now: <strong>{STATUS_TEXT[done.status]}</strong>
        </div>
        {done.status === "executed" && <p className="small">It can be rolled back like any executed write.</p>}
        <div className="row end">
          <button className="primary" onClick={() => props.onDone(done)} data-testid="resolve-close">
            Close
          </button>
        </div>
      </Dialog>
    );
  }

  return (
    <Dialog title="Settle a write whose outcome is unknown" onClose={props.onClose} testid="dialog-resolve">
      <p className="ellipsis2">{props.write.proposal.intent}</p>
      <p className="small">
        The gate cannot tell from the target whether this write took effect. Check the target, then say what you found.
      </p>
      <div role="radiogroup" aria-label="What you found">
        <label className="check">
          <input type="radio" name="ran" checked={ran === true} onChange={() => setRan(true)} data-testid="resolve-ran" /> It ran: the change is
          there (it becomes executed, and can be rolled back)
        </label>
        <label className="check">
          <input type="radio" name="ran" checked={ran === false} onChange={() => setRan(false)} data-testid="resolve-not-ran" /> It did not run:
          the target is as it was (it becomes failed)
        </label>
      </div>
      <textarea placeholder="What you checked (required)" value={reason} onChange={(e) => setReason(e.target.value)} data-testid="resolve-reason" />
      {error && (
        <div className="banner error" role="alert" data-testid="resolve-error">
          {describeError(error)}
        </div>
      )}
      <div className="row end">
        <button onClick={props.onClose}>Cancel</button>
        <button className="danger" disabled={busy || ran === null || !reason.trim()} onClick={submit} data-testid="resolve-submit">
          {busy ? "Sending…" : "Settle"}
        </button>
      </div>
    </Dialog>
  );
}
