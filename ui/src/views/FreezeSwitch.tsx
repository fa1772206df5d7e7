import { useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError, FreezeState } from "../api";
import { describeError } from "../logic/text";
import { Dialog } from "./Dialog";

/** The kill switch. Always in the top bar for those who may use it; others
 * see only whether the gate is frozen. */
export function FreezeSwitch(props: {
  state: FreezeState | null;
  canToggle: boolean;
  onChanged: (s: FreezeState) => void;
  onError: (e: ConsoleError) => void;
}) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ConsoleError | null>(null);
  const frozen = props.state?.frozen ?? false;

  if (!props.canToggle) {
    return frozen ? (
      <span className="badge danger" title={props.state?.reason ?? ""} data-testid="frozen">
        FROZEN
      </span>
    ) : null;
  }

  const submit = async () => {
    setBusy(true);
    const r = await call(frozen ? commands.resume() : commands.freeze(reason));
    setBusy(false);
    if (r.status === "ok") {
      props.onChanged(r.data);
      setOpen(false);
      setReason("");
      setError(null);
    } else {
      setError(r.error);
      props.onError(r.error);
    }
  };

  return (
    <>
      <button
        className={frozen ? "switch on" : "switch"}
        onClick={() => setOpen(true)}
        title={frozen ? `Frozen by ${props.state?.by ?? "?"}: ${props.state?.reason ?? ""}` : "Nothing is frozen"}
        data-testid="freeze-switch"
        disabled={props.state === null}
      >
        <span className="knob" /> {props.state === null ? "Freeze: unknown" : frozen ? "FROZEN" : "Freeze"}
      </button>
      {open && (
        <Dialog title={frozen ? "Resume the gate" : "Freeze the gate"} onClose={() => setOpen(false)}>
          {frozen ? (
            <p>
              Frozen by {props.state?.by} {props.state?.reason ? `: “${props.state.reason}”` : ""}. Resuming lets approved and proceeding writes run
              again.
            </p>
          ) : (
            <>
              <p>While frozen, nothing runs: new writes are held and approved ones wait.</p>
              <textarea placeholder="Why (required)" value={reason} onChange={(e) => setReason(e.target.value)} data-testid="freeze-reason" />
            </>
          )}
          {error && (
            <div className="banner error" data-testid="freeze-error">
              {describeError(error)}
            </div>
          )}
          <div className="row end">
            <button onClick={() => setOpen(false)}>Cancel</button>
            <button className={frozen ? "primary" : "danger"} disabled={busy || (!frozen && !reason.trim())} onClick={submit} data-testid="freeze-submit">
              {busy ? "Sending…" : frozen ? "Resume" : "Freeze everything"}
            </button>
          </div>
        </Dialog>
      )}
    </>
  );
}
