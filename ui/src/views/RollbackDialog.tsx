import { useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError, WriteRecord } from "../api";
import type { StepView } from "../logic/graph";
import { describeError, STATUS_TEXT } from "../logic/text";
import { rollbackAccount, rollbackVerdict } from "../logic/rollback";
import { Dialog } from "./Dialog";
import { RollbackAccountView } from "./RollbackReport";

/** Shows the plan, asks for a reason and a confirmation, then shows what the
 * gate verified: restored only where the check against the capture passed. */
export function RollbackDialog(props: {
  write: WriteRecord;
  steps: StepView[];
  onClose: () => void;
  onDone: (w: WriteRecord) => void;
  onError: (e: ConsoleError) => void;
}) {
  const [reason, setReason] = useState("");
  const [confirm, setConfirm] = useState(false);
  const [force, setForce] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ConsoleError | null>(null);
  const [result, setResult] = useState<WriteRecord | null>(null);

  const run = async () => {
    setBusy(true);
    setError(null);
    const r = await call(commands.rollback(props.write.id, reason, force));
    setBusy(false);
    if (r.status === "ok") setResult(r.data);
    else {
      setError(r.error);
      props.onError(r.error);
    }
  };

  if (result) {
    const rep = result.rollback;
    const account = rollbackAccount(result);
    return (
      <Dialog title="Rollback result" onClose={() => props.onDone(result)} testid="rollback-result">
        <div className={rep?.verified ? "banner ok" : "banner error"} data-testid="rollback-verdict">
          {rep && account
            ? rollbackVerdict(rep.verified, account)
            : `The gate answered without a report. Status: ${STATUS_TEXT[result.status]}.`}
        </div>
        <RollbackAccountView write={result} />
        <p className="small">Status now: {STATUS_TEXT[result.status]}</p>
        <div className="row end">
          <button className="primary" onClick={() => props.onDone(result)} data-testid="rollback-close">
            Close
          </button>
        </div>
      </Dialog>
    );
  }

  return (
    <Dialog title="Roll back this write" onClose={props.onClose} testid="dialog-rollback">
      <p className="ellipsis2">{props.write.proposal.intent}</p>
      <h4>The plan</h4>
      <ol className="plan small">
        {props.steps.map((s) => (
          <li key={s.index}>
            {s.op} — restores {s.restores.join(", ")} {s.available ? "" : <span className="warn">(not available)</span>}
          </li>
        ))}
      </ol>
      <textarea placeholder="Reason (required)" value={reason} onChange={(e) => setReason(e.target.value)} data-testid="rollback-reason" />
      <label className="check">
        <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} /> Force: overwrite targets that changed after the write
        (drift)
      </label>
      <label className="check">
        <input type="checkbox" checked={confirm} onChange={(e) => setConfirm(e.target.checked)} data-testid="rollback-confirm" /> I have read the plan;
        run it now
      </label>
      {error && (
        <div className="banner error" role="alert" data-testid="rollback-error">
          {describeError(error)}
        </div>
      )}
      <div className="row end">
        <button onClick={props.onClose}>Cancel</button>
        <button className="danger" disabled={busy || !confirm || !reason.trim()} onClick={run} data-testid="rollback-submit">
          {busy ? "Rolling back…" : "Roll back"}
        </button>
      </div>
    </Dialog>
  );
}
