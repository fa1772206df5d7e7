import { useEffect, useState } from "react";
import { call, commands } from "../api";
import type { ConsoleError, Effect, EffectChange, TreeSummary } from "../api";
import { bytes, changedColumns, headline, notableText, treeSize } from "../logic/effect";
import { describeError } from "../logic/text";

/** What a held or approved write will change, read from its target when
 * the write is opened (and again on each refresh of the page). */
export function EffectPanel(props: { id: string; tick: number }) {
  const [effect, setEffect] = useState<Effect | null>(null);
  const [error, setError] = useState<ConsoleError | null>(null);

  useEffect(() => {
    let live = true;
    (async () => {
      const r = await call(commands.writeEffect(props.id));
      if (!live) return;
      if (r.status === "ok") {
        setEffect(r.data);
        setError(null);
      } else {
        setError(r.error);
      }
    })();
    return () => {
      live = false;
    };
  }, [props.id, props.tick]);

  return (
    <section className="card" data-testid="effect">
      <h3>
        What it will change{" "}
        {effect && <span className="muted small">read from the target at {new Date(effect.read_at).toLocaleTimeString()}; checked again before it runs</span>}
      </h3>
      {error && <p className="muted" data-testid="effect-error">The gate could not read the target: {describeError(error)}</p>}
      {!effect && !error && <p className="muted">Reading the target…</p>}
      {effect && (
        <>
          <p data-testid="effect-headline">
            <strong>{headline(effect.change)}</strong>
          </p>
          <ChangeDetail change={effect.change} />
        </>
      )}
    </section>
  );
}

function ChangeDetail(props: { change: EffectChange }) {
  const c = props.change;
  switch (c.kind) {
    case "removes":
      return <Tree path={c.path} tree={c.tree} />;
    case "moves":
      return (
        <>
          <Tree path={c.path} tree={c.tree} />
          {c.replaces && (
            <>
              <p className="small">
                <strong>Replaced at {c.to}:</strong> {treeSize(c.replaces)} {notableText(c.replaces)}
              </p>
              <Tree path={c.to} tree={c.replaces} />
            </>
          )}
        </>
      );
    case "writes":
      return (
        <>
          <p className="small muted">
            {c.path} · {c.before ? `${bytes(c.before.size)} now` : "new file"} → {bytes(c.after.size)}
          </p>
          {c.diff && c.diff.lines.length > 0 && (
            <pre className="diff" data-testid="effect-diff">
              {c.diff.lines.map((l, i) => (
                <div key={i} className={`d-${l.tag}`}>
                  {l.tag === "added" ? "+ " : l.tag === "removed" ? "- " : l.tag === "skip" ? "⋯ " : "  "}
                  {l.text}
                </div>
              ))}
              {c.diff.truncated && <div className="d-skip">⋯ the rest of the diff is not shown</div>}
            </pre>
          )}
        </>
      );
    case "rows":
      return (
        <>
          <div className="table-scroll">
            <table className="rows small" data-testid="effect-rows">
              <thead>
                <tr>
                  <th></th>
                  {c.columns.map((col) => (
                    <th key={col}>{col}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {c.rows.map((r, i) => {
                  const changed = changedColumns(c.columns, r);
                  return (
                    <tr key={i}>
                      <td className="muted">{r.before && r.after ? "before → after" : r.before ? "deleted" : "inserted"}</td>
                      {c.columns.map((col, j) => {
                        const b = r.before?.[j];
                        const a = r.after?.[j];
                        const cell = (v: string | null | undefined) => (v === null || v === undefined ? <span className="muted">NULL</span> : v);
                        return (
                          <td key={col} className={changed.has(col) ? "changed" : r.after ? "" : "gone"}>
                            {r.before && r.after && changed.has(col) ? (
                              <>
                                <s>{cell(b)}</s> → <strong>{cell(a)}</strong>
                              </>
                            ) : (
                              cell(r.after ? a : b)
                            )}
                          </td>
                        );
                      })}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {c.reaches.length > 0 && (
            <ul className="small" data-testid="effect-reaches">
              {c.reaches.map((s, i) => (
                <li key={i}>{s}</li>
              ))}
            </ul>
          )}
        </>
      );
    case "request":
      return (
        <pre className="json small" data-testid="effect-request">
          {`${c.method} ${c.url}\n`}
          {c.headers.map((h) => `${h.name}: ${h.value}${h.by_gate ? "   (added by the gate)" : ""}\n`).join("")}
          {c.body !== null ? `\n${c.body}${c.body_bytes > c.body.length ? "\n⋯" : ""}` : ""}
        </pre>
      );
  }
}

function Tree(props: { path: string; tree: TreeSummary }) {
  const t = props.tree;
  if (t.type !== "dir") return <p className="small muted">{props.path}</p>;
  return (
    <table className="rows small" data-testid="effect-tree">
      <thead>
        <tr>
          <th>in {props.path}</th>
          <th>files</th>
          <th>size</th>
        </tr>
      </thead>
      <tbody>
        {t.entries.map((e) => (
          <tr key={e.name} className={t.notable.some((n) => n.path === e.name) ? "changed" : ""}>
            <td>
              {e.name}
              {e.type === "dir" ? "/" : ""}
            </td>
            <td>{e.type === "dir" ? e.files.toLocaleString("en") : ""}</td>
            <td>{bytes(e.bytes)}</td>
          </tr>
        ))}
        {t.more_entries > 0 && (
          <tr>
            <td className="muted" colSpan={3}>
              and {t.more_entries.toLocaleString("en")} more
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}
