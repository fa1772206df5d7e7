import { useEffect, useState } from "react";
import { call, commands } from "../api";
import type { Catalog, CatalogPlan, ConsoleError } from "../api";
import { diffSummary, edgeName, MOVED_TEXT, planIsTheDraft, planSummary, reasonLines, redecidedText, verdictChange } from "../logic/catalogEdit";
import type { DraftChanges } from "../logic/catalogEdit";
import { describeError } from "../logic/text";
import { Dialog } from "./Dialog";

/** The gate's plan for the draft: its changes, and the held and recent
 * writes it would decide differently (the same engine and plan as
 * `recourse catalog plan`). Apply sends the draft with the version the plan
 * was made against and a reason; a catalog that moved is said plainly. */
export function CatalogPlanDialog(props: {
  draft: Catalog;
  changes: DraftChanges;
  onClose: () => void;
  onReload: () => void;
  onApplied: (text: string) => void;
  onError: (e: ConsoleError) => void;
}) {
  const [plan, setPlan] = useState<CatalogPlan | null>(null);
  const [error, setError] = useState<ConsoleError | null>(null);
  const [moved, setMoved] = useState(false);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const { draft, changes, onError } = props;

  useEffect(() => {
    (async () => {
      const r = await call(commands.catalogPlan({ catalog: draft, expect_version: null, recent: null, reason: null }));
      if (r.status === "ok") {
        setPlan(r.data);
        // The plan compares the draft with the gate's catalog now: anything
        // beyond the draft's own edits is a change made since it was opened.
        setMoved(!planIsTheDraft(r.data, changes));
      } else {
        setError(r.error);
        onError(r.error);
      }
    })();
  }, [draft, changes, onError]);

  const apply = async () => {
    if (!plan) return;
    setBusy(true);
    setError(null);
    const r = await call(commands.catalogReplace({ catalog: draft, expect_version: plan.version, recent: null, reason }));
    setBusy(false);
    if (r.status === "ok") {
      props.onApplied(`Applied: ${diffSummary(r.data.diff)} (catalog version ${r.data.version_before} → ${r.data.version}), audited as catalog.replaced.`);
    } else if (r.error.kind === "api" && r.error.status === 409 && r.error.code === "catalog_moved") {
      setMoved(true);
    } else {
      setError(r.error);
      onError(r.error);
    }
  };

  return (
    <Dialog title="Preview the catalog change" onClose={props.onClose} testid="catalog-plan">
      {!plan && !error && <p className="muted">Asking the gate to decide the held and recent writes under your draft…</p>}
      {error && (
        <div className="banner error" role="alert" data-testid="catalog-plan-error">
          {describeError(error)}
        </div>
      )}
      {moved && (
        <div className="banner error" role="alert" data-testid="catalog-moved">
          {MOVED_TEXT}
          <button onClick={props.onReload} data-testid="catalog-reload">
            Reload
          </button>
        </div>
      )}
      {plan && (
        <>
          <p data-testid="catalog-plan-summary">
            <strong>{planSummary(plan)}</strong> <span className="muted small">Against catalog version {plan.version}.</span>
          </p>
          <ul className="small plan-changes">
            {plan.diff.resources_removed.map((r) => (
              <li key={`rr${r.id}`} className="warn">
                removed: {r.id} (what it reached leaves blast radii)
              </li>
            ))}
            {plan.diff.edges_removed.map((e) => (
              <li key={`er${edgeName(e)}`} className="warn">
                edge removed: {edgeName(e)}
                {e.why ? ` (${e.why})` : ""}
              </li>
            ))}
            {plan.diff.resources_changed.map((c) => (
              <li key={`rc${c.id}`}>
                {c.id}:{" "}
                {c.fields.map((f) => `${f.field} ${JSON.stringify(f.before ?? null)} → ${JSON.stringify(f.after ?? null)}`).join(", ")}
              </li>
            ))}
            {plan.diff.resources_added.map((r) => (
              <li key={`ra${r.id}`}>added: {r.id}</li>
            ))}
            {plan.diff.edges_added.map((e) => (
              <li key={`ea${edgeName(e)}`}>
                edge added: {edgeName(e)}
                {e.why ? ` (${e.why})` : ""}
              </li>
            ))}
            {plan.diff.edges_changed.map((e) => (
              <li key={`ec${edgeName(e)}`}>edge changed: {edgeName(e)}</li>
            ))}
          </ul>
          <h4>Writes decided differently</h4>
          <table className="small plan-writes" data-testid="catalog-plan-writes">
            <tbody>
              {plan.writes.length === 0 && (
                <tr>
                  <td className="muted">none: every held and recent write examined would be decided as it is now</td>
                </tr>
              )}
              {plan.writes.map((w) => (
                <tr key={w.id} data-testid="catalog-plan-write" data-write-id={w.id}>
                  <td>
                    <strong className={w.after === "proceed" ? "v-proceed" : "v-hold"}>{verdictChange(w)}</strong>
                  </td>
                  <td>
                    <div>{w.intent || w.id}</div>
                    <div className="muted">{redecidedText(w)}</div>
                    {reasonLines(w).map((l) => (
                      <div key={l} className="mono">
                        {l}
                      </div>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {(plan.skipped ?? []).length > 0 && (
            <ul className="small muted">
              {(plan.skipped ?? []).map((s) => (
                <li key={s}>not decided again: {s}</li>
              ))}
            </ul>
          )}
          <textarea placeholder="Reason (required; kept in the audit trail)" value={reason} onChange={(e) => setReason(e.target.value)} data-testid="catalog-reason" />
        </>
      )}
      <div className="row end">
        <button onClick={props.onClose}>Keep editing</button>
        <button className="primary" disabled={!plan || moved || busy || !reason.trim()} onClick={apply} data-testid="catalog-apply">
          {busy ? "Applying…" : "Apply"}
        </button>
      </div>
    </Dialog>
  );
}
