import { useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError, GateMode, ModeState } from "../api";
import { describeError } from "../logic/text";
import { Dialog } from "./Dialog";

/** Enforce or observe. Shown in the top bar only to roles that may switch
 * it (admins); everyone sees the observe banner. Switching always asks why:
 * the reason goes to the audit trail and onto every console's banner. */
export function ModeSwitch(props: { state: ModeState | null; onChanged: (s: ModeState) => void; onError: (e: ConsoleError) => void }) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ConsoleError | null>(null);
  const observing = props.state?.mode === "observe";
  const target: GateMode = observing ? "enforce" : "observe";

  const submit = async () => {
    setBusy(true);
    const r = await call(commands.setMode(target, reason));
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
        className={observing ? "switch observe" : "switch"}
        onClick={() => setOpen(true)}
        disabled={props.state === null}
        title={observing ? "Observe mode: held writes run without a person" : "Enforce mode: held writes wait for a person"}
        data-testid="mode-switch"
      >
        <span className="knob" /> {props.state === null ? "Mode: unknown" : observing ? "Observing" : "Enforcing"}
      </button>
      {open && (
        <Dialog title={observing ? "Enforce again" : "Switch to observe mode"} onClose={() => setOpen(false)}>
          {observing ? (
            <p>Writes the gate holds will wait for a person again. Writes that already ran in observe mode stay as they are.</p>
          ) : (
            <p>
              In observe mode, a write the gate would hold <strong>runs without a person</strong>; it is only marked “would have been held”. Every
              console shows a banner while it lasts.
            </p>
          )}
          <textarea placeholder="Why (required)" value={reason} onChange={(e) => setReason(e.target.value)} data-testid="mode-reason" />
          {error && (
            <div className="banner error" data-testid="mode-error">
              {describeError(error)}
            </div>
          )}
          <div className="row end">
            <button onClick={() => setOpen(false)}>Cancel</button>
            <button className={observing ? "primary" : "danger"} disabled={busy || !reason.trim()} onClick={submit} data-testid="mode-submit">
              {busy ? "Sending…" : observing ? "Enforce" : "Observe only"}
            </button>
          </div>
        </Dialog>
      )}
    </>
  );
}
