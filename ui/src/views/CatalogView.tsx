import { useEffect, useMemo, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { call, commands } from "../api";
import type { Catalog, ConsoleError, ResourceView } from "../api";
import { describeError, STATUS_TEXT } from "../logic/text";

export function CatalogView(props: { initial?: string; onOpenWrite: (id: string) => void; onError: (e: ConsoleError) => void }) {
  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [error, setError] = useState<ConsoleError | null>(null);
  const [q, setQ] = useState("");
  const [sel, setSel] = useState<string | null>(props.initial ?? null);
  const [view, setView] = useState<ResourceView | null>(null);
  const [viewError, setViewError] = useState<ConsoleError | null>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const { onError } = props;

  useEffect(() => {
    (async () => {
      const r = await call(commands.catalog());
      if (r.status === "ok") setCatalog(r.data);
      else {
        setError(r.error);
        onError(r.error);
      }
    })();
  }, [onError]);

  useEffect(() => {
    if (!sel) return;
    (async () => {
      const r = await call(commands.resource(sel));
      if (r.status === "ok") {
        setView(r.data);
        setViewError(null);
      } else {
        setView(null);
        setViewError(r.error);
        onError(r.error);
      }
    })();
  }, [sel, onError]);

  const list = useMemo(() => {
    const t = q.trim().toLowerCase();
    const rs = catalog?.resources ?? [];
    return t ? rs.filter((r) => [r.id, r.title ?? "", r.kind ?? "", r.bearer, r.reach].join(" ").toLowerCase().includes(t)) : rs;
  }, [catalog, q]);
  const virt = useVirtualizer({ count: list.length, getScrollElement: () => scrollRef.current, estimateSize: () => 44, overscan: 8 });

  return (
    <div className="split">
      <div className="pane">
        <input className="search" placeholder="Search resources" value={q} onChange={(e) => setQ(e.target.value)} data-testid="catalog-search" />
        <div className="muted small">
          {list.length} of {catalog?.resources?.length ?? 0} resources · {catalog?.edges?.length ?? 0} edges
        </div>
        {error && <div className="banner error">{describeError(error)}</div>}
        <div className="list" ref={scrollRef}>
          <div style={{ height: virt.getTotalSize(), position: "relative" }}>
            {virt.getVirtualItems().map((it) => {
              const r = list[it.index];
              return (
                <div
                  key={r.id}
                  className={r.id === sel ? "crow selected" : "crow"}
                  style={{ transform: `translateY(${it.start}px)`, height: 44 }}
                  onClick={() => setSel(r.id)}
                  data-testid="catalog-row"
                  data-resource-id={r.id}
                >
                  <div className="ellipsis">{r.title ? `${r.title} — ` : ""}{r.id}</div>
                  <div className="muted small">
                    {r.reach} · {r.bearer ?? "bearer of its container"}
                    {r.kind ? ` · ${r.kind}` : ""}
                  </div>
                </div>
              );
            })}
          </div>
        </div>
      </div>
      <div className="pane detail">
        {viewError && <div className="banner error">{describeError(viewError)}</div>}
        {!view && !viewError && <p className="muted">Pick a resource to see what reaches it, what it reaches and the writes that touched it.</p>}
        {view && (
          <>
            <h2 data-testid="catalog-title" data-resource-id={view.resource.id}>
              {view.resource.title ?? view.resource.id}
            </h2>
            <p className="muted">
              {view.resource.id} · {view.resource.reach} · borne by {view.resource.bearer ?? "its nearest catalogued container"}
            </p>
            <h3>Reaches</h3>
            <ul className="small" data-testid="catalog-reaches">
              {view.reaches.length === 0 && <li className="muted">nothing</li>}
              {view.reaches.map((n) => (
                <li key={n.resource.id}>
                  <button className="link" onClick={() => setSel(n.resource.id)}>{n.resource.id}</button> {n.contains ? "(contains)" : n.why ? `— ${n.why}` : ""}
                </li>
              ))}
            </ul>
            <h3>Reached by</h3>
            <ul className="small" data-testid="catalog-reached-by">
              {view.reached_by.length === 0 && <li className="muted">nothing</li>}
              {view.reached_by.map((n) => (
                <li key={n.resource.id}>
                  <button className="link" onClick={() => setSel(n.resource.id)}>{n.resource.id}</button> {n.contains ? "(contains)" : n.why ? `— ${n.why}` : ""}
                </li>
              ))}
            </ul>
            <h3>Writes that touched it</h3>
            <ul className="small">
              {view.writes.length === 0 && <li className="muted">none</li>}
              {view.writes.map((w) => (
                <li key={w.id}>
                  <button className="link" onClick={() => props.onOpenWrite(w.id)}>{w.intent || w.id}</button> — {STATUS_TEXT[w.status]} · {w.agent}
                </li>
              ))}
            </ul>
          </>
        )}
      </div>
    </div>
  );
}
