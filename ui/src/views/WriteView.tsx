import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError, Role, WriteRecord } from "../api";
import { coverageOf, pathTo, planSteps, whoPays } from "../logic/graph";
import { moveSelection, relative } from "../logic/queue";
import { abilities, approveWithheld, buttonsFor } from "../logic/roles";
import { rollbackAccount, rollbackVerdict } from "../logic/rollback";
import { cannotUndo, sentText } from "../logic/stakes";
import { describeError, EVIDENCE_TEXT, heldForText, REASON_TITLE, STATUS_TEXT, statusNote, verifiedByText } from "../logic/text";
import { BlastGraph, Legend } from "./BlastGraph";
import { DecideDialog, type DecideKind } from "./DecideDialog";
import { EffectPanel } from "./EffectPanel";
import { ResolveDialog } from "./ResolveDialog";
import { RollbackDialog } from "./RollbackDialog";
import { RollbackAccountView } from "./RollbackReport";

function fmt(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function WriteView(props: {
  id: string;
  role: Role;
  /** The caller's token name: whether they approved it already. */
  me: string;
  /** The gate is frozen: approve is not offered. */
  frozen: boolean;
  tick: number;
  queueIds: string[];
  onBack: () => void;
  onOpen: (id: string) => void;
  onResource: (id: string) => void;
  onChanged: () => void;
  onError: (e: ConsoleError) => void;
}) {
  const [w, setW] = useState<WriteRecord | null>(null);
  const [error, setError] = useState<ConsoleError | null>(null);
  const [node, setNode] = useState<string | null>(null);
  const [dialog, setDialog] = useState<DecideKind | "rollback" | "resolve" | null>(null);
  const theme = document.documentElement.dataset.theme ?? "light";
  const { onError } = props;

  const load = useCallback(async () => {
    const r = await call(commands.getWrite(props.id));
    if (r.status === "ok") {
      setW(r.data);
      setError(null);
    } else {
      setError(r.error);
      onError(r.error);
    }
  }, [props.id, onError]);

  useEffect(() => {
    load();
  }, [load, props.tick]);

  // What the gate says this caller may do to it now (and the role agrees).
  const acts = buttonsFor(props.role, w?.actions, { frozen: props.frozen });
  const current = (w?.approvals ?? []).filter((a) => w && a.proposal_hash === w.proposal_hash && a.decision_hash === w.decision_hash);
  const givenNow = new Set(current.map((a) => a.by)).size;
  const withheld = w ? approveWithheld(props.role, w, current.some((a) => a.by === props.me), givenNow, props.frozen) : null;
  // Where this write sat in the queue, so j/k after it left the list (it
  // was decided) go to its neighbours, not to the top.
  const anchor = useRef<number | null>(null);
  const at = props.queueIds.indexOf(props.id);
  if (at !== -1) anchor.current = at;

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (dialog || e.ctrlKey || e.metaKey || e.altKey) return;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
      if (e.key === "Escape") props.onBack();
      else if (e.key === "j" || e.key === "k") {
        const next = moveSelection(props.queueIds, props.id, e.key === "j" ? 1 : -1, anchor.current);
        if (next && next !== props.id) props.onOpen(next);
      } else if (e.key === "a" && acts.approve) {
        setDialog("approve");
        e.preventDefault();
      } else if (e.key === "r" && acts.reject) {
        setDialog("reject");
        e.preventDefault();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [dialog, props, acts.approve, acts.reject]);

  const steps = useMemo(() => (w ? planSteps(w.proposal, w.decision) : []), [w]);
  const pays = useMemo(() => (w ? whoPays(w.decision) : []), [w]);
  const undo = useMemo(() => (w ? cannotUndo(w.decision) : []), [w]);
  const entry = w && node ? w.decision.blast_radius.find((e) => e.resource === node) : undefined;
  const onSelect = useCallback((id: string | null) => setNode(id), []);

  if (!w) {
    return (
      <div className="page">
        <button className="ghost" onClick={props.onBack}>
          ← Queue
        </button>
        {error ? <div className="banner error">{describeError(error)}</div> : <p className="muted">Loading…</p>}
      </div>
    );
  }

  const d = w.decision;
  return (
    <div className="page write" data-testid="write-page" data-status={w.status}>
      <div className="row">
        <button className="ghost" onClick={props.onBack} title="Back (Esc)">
          ← Queue
        </button>
        <span className="muted small">j/k previous/next · Esc back</span>
      </div>
      {error && <div className="banner error">Could not refresh: {describeError(error)}</div>}
      <div className="whead">
        <div>
          <h1 data-testid="write-intent">{w.proposal.intent || "(no intent given)"}</h1>
          <div className="muted">
            <span className={`status s-${w.status}`} data-testid="write-status">
              {STATUS_TEXT[w.status]}
            </span>{" "}
            · {w.id} · by <strong>{w.agent}</strong> · {w.connector} · submitted {relative(w.created_at)}
            {w.expires_at ? ` · expires ${relative(w.expires_at)}` : ""}
          </div>
          {statusNote(w.status) && (
            <p className="small warn" data-testid="status-note">
              {statusNote(w.status)}
            </p>
          )}
          {w.observed_hold && (
            <p className="small" data-testid="write-observed">
              <span className="badge observed">would have been held</span> Ran in observe mode {relative(w.observed_hold.at)} without a person;
              enforcement would have held it
              {heldForText(w.observed_hold.reason_codes, true) ? `: ${heldForText(w.observed_hold.reason_codes, true)}` : ""}.
            </p>
          )}
          {w.waiting && (
            <p className="small waiting" data-testid="write-waiting">
              Not moving: {w.waiting}
            </p>
          )}
        </div>
        <div className="actions">
          {acts.approve && (
            <button className="primary" onClick={() => setDialog("approve")} data-testid="approve">
              Approve <kbd>a</kbd>
            </button>
          )}
          {acts.reject && (
            <button className="danger" onClick={() => setDialog("reject")} data-testid="reject">
              Reject <kbd>r</kbd>
            </button>
          )}
          {acts.rollback && (
            <button className="danger" onClick={() => setDialog("rollback")} data-testid="rollback">
              {w.status === "rollback_failed" ? "Roll back again…" : "Roll back…"}
            </button>
          )}
          {acts.resolve && (
            <button className="danger" onClick={() => setDialog("resolve")} data-testid="resolve">
              Settle: did it run?…
            </button>
          )}
          {withheld && (
            <p className="small muted" data-testid="approve-withheld">
              {withheld}
            </p>
          )}
        </div>
      </div>
      {w.status === "held" && ((w.approval_needs_reason ?? true) || undo.length > 0) && (
        <section className="card warnbox" data-testid="cannot-undo">
          <h3>What cannot be undone if this goes wrong</h3>
          <ul className="small">
            {undo.map((u) => (
              <li key={u.resource}>
                <Named id={u.resource} titles={w.titles} strong />
                {u.bearer !== "institution" ? <span className="badge bearer">⚑ {u.bearer} pays</span> : null} — {u.why}
              </li>
            ))}
            {sentText(w.connector) ? <li>{sentText(w.connector)}</li> : null}
            {undo.length === 0 && !sentText(w.connector) ? <li>Every resource can be put back, but someone other than the institution bears what it changes.</li> : null}
          </ul>
          {(w.approval_needs_reason ?? true) && <p className="small">Approving it needs a written reason: the gate records the approval only with one.</p>}
        </section>
      )}

      <section className="grid2">
        <div className="card">
          <h3>Decision: <span className={`verdict v-${d.decision}`}>{d.decision}</span></h3>
          {d.reasons.length === 0 ? (
            <p className="muted">No reasons: everything it reaches can be put back, and only the institution bears it.</p>
          ) : (
            <ul className="reasons" data-testid="reasons">
              {d.reasons.map((r, i) => (
                <li key={i}>
                  <strong>{REASON_TITLE[r.code]}</strong>
                  <span className="muted small"> ({r.code})</span>
                  <div>{r.detail}</div>
                  {(r.resource || r.evidence || r.step != null) && (
                    <div className="muted small">
                      about {r.resource ? <button className="link" onClick={() => setNode(r.resource ?? null)}><Named id={r.resource} titles={w.titles} /></button> : r.evidence ? `evidence ${r.evidence}` : `step ${(r.step ?? 0) + 1}`}
                      {r.path && r.path.length > 1 ? ` · via ${r.path.join(" → ")}` : ""}
                    </div>
                  )}
                </li>
              ))}
            </ul>
          )}
          {w.required_approvals > 0 && (
            <p className="small">
              Approvals: {(w.approvals ?? []).length} of {w.required_approvals} needed
              {(w.approvals ?? []).map((a) => ` · ${a.by}${a.comment ? `: “${a.comment}”` : ""}`).join("")}
            </p>
          )}
        </div>
        <div className="card" data-testid="who-pays">
          <h3>Who pays if reversal fails</h3>
          {pays.length === 0 ? (
            <p>Only the institution. No third party bears any resource it reaches.</p>
          ) : (
            <ul>
              {pays.map((p) => (
                <li key={p.bearer}>
                  <span className="badge bearer">⚑ {p.bearer}</span> bears {p.resources.length === 1 ? "" : `${p.resources.length} resources: `}
                  {p.resources.map((id, i) => (
                    <span key={id}>
                      {i > 0 ? ", " : ""}
                      <Named id={id} titles={w.titles} />
                    </span>
                  ))}
                </li>
              ))}
            </ul>
          )}
          <details>
            <summary className="small">The action as the agent proposed it</summary>
            <pre className="json">{JSON.stringify(w.proposal.action, null, 2)}</pre>
          </details>
        </div>
      </section>

      {(w.status === "held" || w.status === "approved") && abilities(props.role).readAll && <EffectPanel id={w.id} tick={props.tick} />}

      <section className="card">
        <div className="row">
          <h3>
            Blast radius <span className="muted small">({d.blast_radius.length} resources)</span>
          </h3>
          <span className="spacer" />
          {d.bearers.map((b) => (
            <span key={b} className={b === "institution" ? "badge" : "badge bearer"}>
              {b === "institution" ? b : `⚑ ${b}`}
            </span>
          ))}
        </div>
        <Legend />
        <div className="graphwrap">
          <BlastGraph decision={d} selected={node} onSelect={onSelect} theme={theme} />
          <aside className="nodeinfo" data-testid="node-info">
            {entry ? (
              <>
                <h4 className="ellipsis" title={entry.resource}>
                  {w.titles?.[entry.resource] ?? entry.resource}
                </h4>
                {w.titles?.[entry.resource] ? <p className="muted small">{entry.resource}</p> : null}
                <p className="small">
                  <span className={`cov c-${coverageOf(entry)}`}>{coverageOf(entry)}</span> · {entry.reach} · depth {entry.depth} ·{" "}
                  {entry.depth === 0 ? "touched" : "reached"} · borne by {entry.bearer}
                </p>
                <h5>Path</h5>
                <ol className="path small" data-testid="node-path">
                  {pathTo(d, entry.resource).map((p) => (
                    <li key={p}>{p}</li>
                  ))}
                </ol>
                <h5>Restored by</h5>
                {entry.restored_by && entry.restored_by.length > 0 ? (
                  <ul className="small" data-testid="node-restored-by">
                    {entry.restored_by.map((s) => {
                      const st = steps[s];
                      return (
                        <li key={s}>
                          Step {s + 1}: {st ? st.op : "?"} — {st?.available ? "available" : st?.manual ? "manual" : "not available"}
                        </li>
                      );
                    })}
                  </ul>
                ) : (
                  <p className="small warn">No step restores it.</p>
                )}
                <button className="link small" onClick={() => props.onResource(entry.resource)}>
                  Open in catalog
                </button>
              </>
            ) : (
              <p className="muted small">Click a resource to see how the write reaches it and which step puts it back.</p>
            )}
          </aside>
        </div>
      </section>

      <section className="grid2">
        <div className="card">
          <h3>Evidence</h3>
          {d.evidence.length === 0 ? (
            <p className="muted">No evidence: no step can be verified.</p>
          ) : (
            <ul className="checklist" data-testid="evidence">
              {d.evidence.map((e) => (
                <li key={e.id} className={e.status === "verified" ? "ok" : "bad"}>
                  <span className="tick">{e.status === "verified" ? "✓" : "✗"}</span>
                  <div>
                    <strong>{e.id}</strong> <span className="muted small">{e.kind.replace(/_/g, " ")}</span> — {EVIDENCE_TEXT[e.status]}
                    <div className="muted small">
                      {e.location ? `held at ${e.location}` : ""}
                      {e.until ? `until ${fmt(e.until)} (${relative(e.until)})` : ""}
                      {e.captured_at ? ` · captured ${fmt(e.captured_at)}` : ""} · for step {e.steps.map((s) => s + 1).join(", ")}
                    </div>
                    <div className="small" data-testid="verified-by">
                      {e.verified_by ? "Checked by " : ""}
                      {verifiedByText(e)}
                    </div>
                  </div>
                </li>
              ))}
            </ul>
          )}
        </div>
        <div className="card">
          <h3>Rollback plan</h3>
          {steps.length === 0 ? (
            <p className="warn">No rollback step: nothing can put this back.</p>
          ) : (
            <ol className="plan" data-testid="plan">
              {steps.map((s) => (
                <li key={s.index}>
                  <div>
                    <strong>{s.op}</strong>{" "}
                    <span className={s.available ? "badge okb" : "badge warnb"}>{s.available ? "available" : s.manual ? "manual" : "not available"}</span>
                    {s.modelledBy ? <span className="muted small"> · modelled by {s.modelledBy}</span> : null}
                  </div>
                  <div className="muted small">restores {s.restores.join(", ") || "nothing"}</div>
                  {s.evidence.length > 0 && (
                    <div className="small">
                      needs {s.evidence.map((e) => `${e.id} (${EVIDENCE_TEXT[e.status as keyof typeof EVIDENCE_TEXT] ?? e.status})`).join(", ")}
                    </div>
                  )}
                </li>
              ))}
            </ol>
          )}
        </div>
      </section>

      {w.rollback && (
        <section className={w.rollback.verified ? "card okcard" : "card badcard"} data-testid="rollback-report">
          <h3>Rollback {w.rollback.verified ? "verified" : "NOT verified"}{w.rollback.forced ? " (forced)" : ""}</h3>
          {rollbackAccount(w) && <p data-testid="rollback-report-verdict">{rollbackVerdict(w.rollback.verified, rollbackAccount(w)!)}</p>}
          <RollbackAccountView write={w} />
        </section>
      )}

      <section className="card">
        <h3>History</h3>
        <ul className="history small">
          {(w.history ?? []).map((h, i) => (
            <li key={i}>
              {fmt(h.at)} — {h.from ? `${STATUS_TEXT[h.from]} → ` : ""}
              <strong>{STATUS_TEXT[h.to]}</strong> by {h.actor}
              {h.note ? `: ${h.note}` : ""}
            </li>
          ))}
        </ul>
        <p className="muted small">
          proposal {w.proposal_hash.slice(0, 16)}… · decision {w.decision_hash.slice(0, 16)}…
        </p>
      </section>

      {(dialog === "approve" || dialog === "reject") && (
        <DecideDialog
          kind={dialog}
          writeId={w.id}
          intent={w.proposal.intent ?? ""}
          needsReason={w.approval_needs_reason ?? true}
          cannotUndo={undo}
          sent={sentText(w.connector)}
          onClose={() => setDialog(null)}
          onDone={(rec) => {
            setW(rec);
            setDialog(null);
            props.onChanged();
          }}
          onError={props.onError}
        />
      )}
      {dialog === "resolve" && (
        <ResolveDialog
          write={w}
          onClose={() => setDialog(null)}
          onDone={(rec) => {
            setW(rec);
            setDialog(null);
            props.onChanged();
          }}
          onError={props.onError}
        />
      )}
      {dialog === "rollback" && (
        <RollbackDialog
          write={w}
          steps={steps}
          onClose={() => setDialog(null)}
          onDone={(rec) => {
            setW(rec);
            setDialog(null);
            props.onChanged();
          }}
          onError={props.onError}
        />
      )}
    </div>
  );
}


/** A resource by its catalog title, with its id beside it; the id alone
 * when the catalog gives it no title (or the caller may not read it). */
function Named(props: { id: string; titles?: Partial<Record<string, string>>; strong?: boolean }) {
  const title = props.titles?.[props.id];
  if (!title) return props.strong ? <strong>{props.id}</strong> : <>{props.id}</>;
  return (
    <>
      {props.strong ? <strong>{title}</strong> : title} <span className="muted small">({props.id})</span>
    </>
  );
}
