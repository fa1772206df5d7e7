import { useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError, RewindReport } from "../api";
import type { RewindItem } from "../bindings";
import { describeError, STATUS_TEXT } from "../logic/text";

/** Rewind: preview what would be undone since a time (optionally one
 * agent's writes), then run it. */
export function IncidentView(props: { onError: (e: ConsoleError) => void; onChanged: () => void }) {
  const hourAgo = new Date(Date.now() - 3600_000);
  const local = new Date(hourAgo.getTime() - hourAgo.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const [since, setSince] = useState(local);
  const [agent, setAgent] = useState("");
  const [reason, setReason] = useState("");
  const [preview, setPreview] = useState<RewindReport | null>(null);
  const [result, setResult] = useState<RewindReport | null>(null);
  const [confirm, setConfirm] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ConsoleError | null>(null);

  const send = async (isPreview: boolean) => {
    const t = new Date(since);
    if (Number.isNaN(t.getTime())) {
      setError({ kind: "invalid", field: "since", message: "not a time" });
      return;
    }
    setBusy(true);
    setError(null);
    const r = await call(
      commands.rewind({ since: t.toISOString(), agent: agent.trim() || null, reason: reason || "preview", preview: isPreview, force: false }),
    );
    setBusy(false);
    if (r.status === "ok") {
      if (isPreview) {
        setPreview(r.data);
        setResult(null);
      } else {
        setResult(r.data);
        props.onChanged();
      }
    } else {
      setError(r.error);
      props.onError(r.error);
    }
  };

  const report = result ?? preview;
  return (
    <div className="page">
      <h2>Rewind</h2>
      <p className="muted">Roll back every write executed since a time, newest first. Preview first: nothing is undone until you run it.</p>
      <div className="card form">
        <label>
          Since <input type="datetime-local" value={since} onChange={(e) => setSince(e.target.value)} />
        </label>
        <label>
          Agent (optional) <input value={agent} onChange={(e) => setAgent(e.target.value)} placeholder="all agents" />
        </label>
        <label>
          Reason <input value={reason} onChange={(e) => setReason(e.target.value)} placeholder="required to run" />
        </label>
        <div className="row">
          <button onClick={() => send(true)} disabled={busy}>
            Preview
          </button>
          <label className="check">
            <input type="checkbox" checked={confirm} onChange={(e) => setConfirm(e.target.checked)} disabled={!preview} /> I have read the preview
          </label>
          <button className="danger" disabled={busy || !preview || !confirm || !reason.trim()} onClick={() => send(false)}>
            Rewind now
          </button>
        </div>
      </div>
      {error && <div className="banner error">{describeError(error)}</div>}
      {report && (
        <div className="card">
          <h3>{report.preview ? `Would undo ${report.items.length} writes` : `Undid ${report.items.length} writes`}</h3>
          <ol className="small">
            {report.items.map((i) => (
              <li key={i.write.id}>
                {i.write.intent || i.write.id} — {i.write.agent} · {STATUS_TEXT[i.write.status]}
                {i.rollback ? ` · ${i.rollback.verified ? "verified" : "NOT verified"}` : ""}
                {i.error ? <span className="warn"> · {i.error}</span> : null}
                <RewindAccount item={i} />
              </li>
            ))}
          </ol>
        </div>
      )}
    </div>
  );
}

/** Per write of a rewind: what comes back, and what stays as the write left
 * it (external, or no available step restores it). */
function RewindAccount(props: { item: RewindItem }) {
  const back = props.item.comes_back ?? [];
  const stays = props.item.stays ?? [];
  const few = (xs: string[]) => xs.slice(0, 3).join(", ") + (xs.length > 3 ? ` and ${xs.length - 3} more` : "");
  return (
    <div className="small" data-testid="rewind-account">
      {back.length > 0 && <div>Comes back: {few(back)}</div>}
      {stays.length > 0 ? (
        <div className="warn" data-testid="rewind-stays">
          Stays as the write left it (no rollback reaches it): {few(stays)}
        </div>
      ) : (
        <div>Nothing in its blast radius lies beyond its rollback.</div>
      )}
    </div>
  );
}
