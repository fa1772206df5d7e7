import { useEffect, useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError } from "../api";
import type { KindAudit, Report } from "../bindings";
import { countsText, NEEDS_TEXT, notReversible, PATH_TEXT, RESOURCE_TEXT } from "../logic/report";
import { describeError } from "../logic/text";

/** The seed's three Monday audits, as the gate computes them: for every kind
 * of write, (1) its rollback path step by step, (2) the context each step
 * depends on, (3) who bears the cost; then every catalog resource. */
export function ReportView(props: { onError: (e: ConsoleError) => void; onOpenWrite: (id: string) => void }) {
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<ConsoleError | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const { onError } = props;

  useEffect(() => {
    let stale = false;
    (async () => {
      const r = await call(commands.report());
      if (stale) return;
      if (r.status === "ok") setReport(r.data);
      else {
        setError(r.error);
        onError(r.error);
      }
    })();
    return () => {
      stale = true;
    };
  }, [onError]);

  if (error) return <div className="banner error">{describeError(error)}</div>;
  if (!report) return <p className="muted">Computing the report…</p>;
  const s = report.summary;
  const attention = report.resources.filter((r) => r.verdict !== "restorable" && r.verdict !== "not_reached");
  return (
    <div data-testid="report">
      <section className="card" data-testid="report-summary">
        <h3>The Monday audit</h3>
        <p className="small muted">
          {plural(s.writes, "write")} in {plural(s.kinds, "kind")} · computed {new Date(report.generated_at).toLocaleString()} · also as HTML and CSV: <code>recourse report --out DIR</code>
        </p>
        <ol className="small">
          <li>
            <strong>Rollback paths:</strong> {s.kinds_not_reversible} of {s.kinds} kinds resolve to a manual step or to nothing.
          </li>
          <li>
            <strong>Context:</strong> {plural(s.kinds_aspirational, "kind")} depended on context not verified outside their blast radius.
          </li>
          <li>
            <strong>Who pays:</strong> {plural(s.kinds_always_need_a_person, "kind")} always need a person, {s.kinds_sometimes_need_a_person} sometimes.
          </li>
        </ol>
      </section>

      <section className="card">
        <h3>Kinds of write, the least recoverable first</h3>
        <ul className="report-kinds">
          {report.kinds.map((k) => (
            <li key={k.key} data-testid="report-kind" data-needs={k.needs_person} data-rollback={k.rollback}>
              <button className="link" onClick={() => setOpen(open === k.key ? null : k.key)}>
                <strong>{k.key}</strong>
              </button>
              <div className="small">
                <span className={notReversible(k) ? "warn" : ""}>{PATH_TEXT[k.rollback]}</span>
                {k.aspirational ? <span className="warn"> · context not always verified</span> : null}
                {" · "}
                <span className={k.needs_person === "never" ? "" : "badge bearer"}>{NEEDS_TEXT[k.needs_person]}</span>
              </div>
              <div className="small muted">{countsText(k)}</div>
              {open === k.key && <KindDetail kind={k} onOpenWrite={props.onOpenWrite} />}
            </li>
          ))}
        </ul>
      </section>

      <section className="card">
        <h3>Resources needing attention ({attention.length} of {s.resources})</h3>
        <ul className="small" data-testid="report-resources">
          {attention.slice(0, 100).map((r) => (
            <li key={r.id}>
              <strong>{r.title ?? r.id}</strong> {r.title ? <span className="muted">({r.id})</span> : null} — {RESOURCE_TEXT[r.verdict]}
              {r.needs_person ? <span className="badge bearer"> ⚑ {r.bearers.filter((b) => b !== "institution").join(", ") || r.declared_bearer}</span> : null}
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}

/** "1 kind", "3 kinds". */
function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** A kind's paths, steps and context, and its writes. */
function KindDetail(props: { kind: KindAudit; onOpenWrite: (id: string) => void }) {
  const k = props.kind;
  return (
    <div className="small" data-testid="report-kind-detail">
      {k.paths.map((p, i) => (
        <div key={i}>
          <h5>
            Path {i + 1} ({p.writes} write{p.writes === 1 ? "" : "s"}): {PATH_TEXT[p.verdict]}
          </h5>
          {p.steps.length === 0 ? (
            <p className="warn">No step: nothing puts it back.</p>
          ) : (
            <ol>
              {p.steps.map((st) => (
                <li key={st.position}>
                  <span className={st.manual ? "warn" : ""}>{st.op}</span>{" "}
                  <span className="muted">
                    ({st.source === "agent" ? "proposed by the agent" : `modelled by ${st.modelled_by ?? "the connector"}`}; available in {st.available_in} of{" "}
                    {p.writes})
                  </span>
                  {st.context.length > 0 && (
                    <ul>
                      {st.context.map((c) => (
                        <li key={c.id}>
                          {c.kind} <code>{c.id}</code>
                          {c.location ? ` at ${c.location}` : ""}:{" "}
                          {c.inside_blast_radius > 0 ? <span className="warn">inside its own blast radius in {c.inside_blast_radius} · </span> : null}
                          {c.missing_or_unverifiable > 0 ? <span className="warn">missing or unverifiable in {c.missing_or_unverifiable} · </span> : null}
                          {c.too_old > 0 ? <span className="warn">too old in {c.too_old} · </span> : null}
                          verified in {c.verified} of {c.writes}
                        </li>
                      ))}
                    </ul>
                  )}
                </li>
              ))}
            </ol>
          )}
        </div>
      ))}
      {k.unrestored.length > 0 && (
        <p className="warn">
          Nothing restores: {k.unrestored.map((u) => `${u.resource} (${u.why === "external" ? "external" : "no step"}, ${u.bearer})`).join(", ")}
        </p>
      )}
      <p>
        Writes:{" "}
        {k.writes.map((w, i) => (
          <span key={w.id}>
            {i > 0 ? ", " : ""}
            <button className="link" onClick={() => props.onOpenWrite(w.id)}>
              {w.intent || w.id}
            </button>
          </span>
        ))}
      </p>
    </div>
  );
}
