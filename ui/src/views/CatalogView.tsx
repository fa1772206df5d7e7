import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { call, commands } from "../api";
import type { Bearer, Catalog, ConsoleError, Reach, Resource, ResourceView, Role, WriteSummary } from "../api";
import { addEdge, addResource, BEARERS, REACHES, changeCount, draftChanges, draftSummary, neighbourhood, removeEdge, setField } from "../logic/catalogEdit";
import type { Edited, EditableField } from "../logic/catalogEdit";
import { abilities } from "../logic/roles";
import { describeError, STATUS_TEXT } from "../logic/text";
import { CatalogGraph, CatalogLegend } from "./CatalogGraph";
import { CatalogPlanDialog } from "./CatalogPlanDialog";

/** The catalog: search, a selected resource's neighbourhood as a graph, and
 * for roles that may edit it, a draft they change, preview and apply. */
export function CatalogView(props: { initial?: string; role: Role; theme: string; onOpenWrite: (id: string) => void; onError: (e: ConsoleError) => void }) {
  const canEdit = abilities(props.role).editCatalog;
  // `base` is the catalog as the gate gave it; `draft` is it with this
  // person's edits. Reads show the draft, so an edit shows at once.
  const [base, setBase] = useState<Catalog | null>(null);
  const [draft, setDraft] = useState<Catalog | null>(null);
  const [error, setError] = useState<ConsoleError | null>(null);
  const [q, setQ] = useState("");
  const [sel, setSel] = useState<string | null>(props.initial ?? null);
  const [view, setView] = useState<ResourceView | null>(null);
  const [viewError, setViewError] = useState<ConsoleError | null>(null);
  const [previewing, setPreviewing] = useState(false);
  const [applied, setApplied] = useState<string | null>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const { onError } = props;

  const load = useCallback(async () => {
    const r = await call(commands.catalog());
    if (r.status === "ok") {
      setBase(r.data);
      setDraft(r.data);
      setError(null);
    } else {
      setError(r.error);
      onError(r.error);
    }
  }, [onError]);
  useEffect(() => {
    load();
  }, [load]);

  const loadView = useCallback(
    async (id: string) => {
      const r = await call(commands.resource(id));
      if (r.status === "ok") {
        setView(r.data);
        setViewError(null);
      } else {
        setView(null);
        // A resource only in the draft is not the gate's yet: no error.
        if (r.error.kind === "api" && r.error.status === 404) setViewError(null);
        else {
          setViewError(r.error);
          onError(r.error);
        }
      }
    },
    [onError],
  );
  useEffect(() => {
    if (sel) loadView(sel);
  }, [sel, loadView, base]);

  const changes = useMemo(() => (base && draft ? draftChanges(base, draft) : null), [base, draft]);
  const changed = useMemo(() => new Set([...(changes?.resourcesChanged.map((c) => c.id) ?? []), ...(changes?.resourcesAdded ?? [])]), [changes]);
  const list = useMemo(() => {
    const t = q.trim().toLowerCase();
    const rs = draft?.resources ?? [];
    return t ? rs.filter((r) => [r.id, r.title ?? "", r.kind ?? "", r.bearer ?? "", r.reach ?? ""].join(" ").toLowerCase().includes(t)) : rs;
  }, [draft, q]);
  const virt = useVirtualizer({ count: list.length, getScrollElement: () => scrollRef.current, estimateSize: () => 44, overscan: 8 });
  const resource = useMemo(() => draft?.resources?.find((r) => r.id === sel) ?? null, [draft, sel]);
  // Containment is the gate's to compute (`fs:` paths): taken from its view
  // of the selected resource, as it reported it.
  const contains = useMemo(
    () =>
      view && view.resource.id === sel
        ? [
            ...view.reaches.filter((n) => n.contains).map((n) => ({ from: view.resource.id, to: n.resource.id })),
            ...view.reached_by.filter((n) => n.contains).map((n) => ({ from: n.resource.id, to: view.resource.id })),
          ]
        : [],
    [view, sel],
  );
  const graph = useMemo(() => (draft && sel ? neighbourhood(draft, sel, 2, 40, contains) : null), [draft, sel, contains]);
  const select = useCallback((id: string) => setSel(id), []);
  const edit = (r: Edited): string | null => {
    if (!r.ok) return r.error;
    setDraft(r.catalog);
    setApplied(null);
    return null;
  };
  const n = changes ? changeCount(changes) : 0;

  return (
    <div className="split">
      <div className="pane">
        <input className="search" placeholder="Search resources" value={q} onChange={(e) => setQ(e.target.value)} data-testid="catalog-search" />
        <div className="muted small">
          {list.length} of {draft?.resources?.length ?? 0} resources · {draft?.edges?.length ?? 0} edges
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
                  <div className="ellipsis">
                    {changed.has(r.id) && <span className="badge" title="changed in your draft">edited</span>} {r.title ? `${r.title} — ` : ""}
                    {r.id}
                  </div>
                  <div className="muted small">
                    {r.reach ?? "controlled"} · {r.bearer ?? "bearer of its container"}
                    {r.kind ? ` · ${r.kind}` : ""}
                  </div>
                </div>
              );
            })}
          </div>
        </div>
      </div>
      <div className="pane detail">
        {canEdit && changes && (n > 0 || applied) && (
          <div className="banner notice draftbar" data-testid="catalog-draft">
            {n > 0 ? (
              <div className="row">
                <span>
                  Your draft: <strong data-testid="catalog-draft-summary">{draftSummary(changes)}</strong>. Nothing changes at the gate until you apply it.
                </span>
                <span className="spacer" />
                <button onClick={() => setDraft(base)} data-testid="catalog-discard">
                  Discard
                </button>
                <button className="primary" onClick={() => setPreviewing(true)} data-testid="catalog-preview">
                  Preview…
                </button>
              </div>
            ) : (
              <span data-testid="catalog-applied">{applied}</span>
            )}
          </div>
        )}
        {viewError && <div className="banner error">{describeError(viewError)}</div>}
        {!resource && (
          <p className="muted">
            Pick a resource to see what reaches it, what it reaches and the writes it concerns
            {canEdit ? ", and to edit it." : "."}
          </p>
        )}
        {resource && graph && (
          <>
            <h2 data-testid="catalog-title" data-resource-id={resource.id}>
              {resource.title ?? resource.id}
            </h2>
            <p className="muted">
              {resource.id} · {resource.reach ?? "controlled"} · borne by {resource.bearer ?? "its nearest catalogued container"}
              {resource.probe_prefix ? ` · probes under ${resource.probe_prefix}` : ""}
            </p>
            <CatalogLegend />
            <CatalogGraph graph={graph} selected={resource.id} onSelect={select} theme={props.theme} />
            {graph.truncated && <p className="small muted">More resources lie within two hops than are drawn; the lists below are complete.</p>}
            <div className={canEdit ? "catalog-cols" : ""}>
              <div>
                <Neighbours title="Reaches" testid="catalog-reaches" view={view} which="reaches" onSelect={select} />
                <Neighbours title="Reached by" testid="catalog-reached-by" view={view} which="reached_by" onSelect={select} />
                <Writes
                  title="Held writes whose blast radius reaches this"
                  note="As each write's current decision computed it (the gate's catalog, not your draft)."
                  testid="catalog-held-reaching"
                  writes={view?.held_reaching ?? []}
                  onOpen={props.onOpenWrite}
                />
                <Writes title="Writes that touched it" testid="catalog-writes" writes={view?.writes ?? []} onOpen={props.onOpenWrite} />
              </div>
              {canEdit && draft && (
                <EditPanel key={resource.id + JSON.stringify(resource)} resource={resource} draft={draft} edit={edit} onAdded={select} />
              )}
            </div>
          </>
        )}
        {previewing && draft && changes && (
          <CatalogPlanDialog
            draft={draft}
            changes={changes}
            onClose={() => setPreviewing(false)}
            onReload={async () => {
              setPreviewing(false);
              await load();
            }}
            onApplied={async (text) => {
              setPreviewing(false);
              await load();
              setApplied(text);
            }}
            onError={onError}
          />
        )}
      </div>
    </div>
  );
}

function Neighbours(props: { title: string; testid: string; view: ResourceView | null; which: "reaches" | "reached_by"; onSelect: (id: string) => void }) {
  const ns = props.view?.[props.which] ?? [];
  return (
    <>
      <h3>{props.title}</h3>
      <ul className="small" data-testid={props.testid}>
        {!props.view && <li className="muted">not in the gate's catalog yet</li>}
        {props.view && ns.length === 0 && <li className="muted">nothing</li>}
        {ns.map((n) => (
          <li key={n.resource.id}>
            <button className="link" onClick={() => props.onSelect(n.resource.id)}>
              {n.resource.id}
            </button>{" "}
            {n.contains ? "(contains)" : n.why ? `— ${n.why}` : ""}
          </li>
        ))}
      </ul>
    </>
  );
}

function Writes(props: { title: string; note?: string; testid: string; writes: WriteSummary[]; onOpen: (id: string) => void }) {
  return (
    <>
      <h3>{props.title}</h3>
      {props.note && <p className="small muted">{props.note}</p>}
      <ul className="small" data-testid={props.testid}>
        {props.writes.length === 0 && <li className="muted">none</li>}
        {props.writes.map((w) => (
          <li key={w.id} data-write-id={w.id}>
            <button className="link" onClick={() => props.onOpen(w.id)}>
              {w.intent || w.id}
            </button>{" "}
            — {STATUS_TEXT[w.status]} · {w.agent}
          </li>
        ))}
      </ul>
    </>
  );
}

const FIELDS: { field: EditableField; label: string }[] = [
  { field: "title", label: "Title" },
  { field: "kind", label: "Kind" },
  { field: "reach", label: "Reach" },
  { field: "bearer", label: "Bearer" },
  { field: "probe_prefix", label: "Probe prefix" },
];

/** Edits to one resource go into the draft; nothing is sent until Apply. */
function EditPanel(props: { resource: Resource; draft: Catalog; edit: (r: Edited) => string | null; onAdded: (id: string) => void }) {
  const r = props.resource;
  const [form, setForm] = useState<Record<EditableField, string>>({
    title: r.title ?? "",
    kind: r.kind ?? "",
    reach: r.reach ?? "controlled",
    bearer: r.bearer ?? "",
    probe_prefix: r.probe_prefix ?? "",
  });
  const [to, setTo] = useState("");
  const [why, setWhy] = useState("");
  const [fresh, setFresh] = useState<{ id: string; title: string; reach: Reach; bearer: Bearer }>({ id: "", title: "", reach: "controlled", bearer: "institution" });
  const [problem, setProblem] = useState<string | null>(null);
  const out = (props.draft.edges ?? []).filter((e) => e.from === r.id);
  const dirty = FIELDS.some(({ field }) => form[field] !== ((r as Record<string, unknown>)[field] ?? (field === "reach" ? "controlled" : "")));

  const putFields = () => {
    let cat: Catalog = props.draft;
    for (const { field } of FIELDS) {
      const res = setField(cat, r.id, field, form[field]);
      if (!res.ok) return setProblem(res.error);
      cat = res.catalog;
    }
    setProblem(props.edit({ ok: true, catalog: cat }));
  };
  const text = (field: EditableField, placeholder = "") => (
    <input value={form[field]} placeholder={placeholder} onChange={(e) => setForm({ ...form, [field]: e.target.value })} data-testid={`catalog-edit-${field}`} />
  );

  return (
    <div className="card editpanel" data-testid="catalog-edit">
      <h3>Edit this resource</h3>
      <div className="fields">
        <label>Title{text("title", "what a reviewer reads")}</label>
        <label>Kind{text("kind", "optional")}</label>
        <label>
          Reach
          <select value={form.reach} onChange={(e) => setForm({ ...form, reach: e.target.value })} data-testid="catalog-edit-reach">
            {REACHES.map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </label>
        <label>
          Bearer
          <select value={form.bearer} onChange={(e) => setForm({ ...form, bearer: e.target.value })} data-testid="catalog-edit-bearer">
            <option value="">none: its container's</option>
            {BEARERS.map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </label>
        <label>Probe prefix{text("probe_prefix", "https://host/path/")}</label>
      </div>
      <div className="row end">
        <button className="primary" disabled={!dirty} onClick={putFields} data-testid="catalog-edit-put">
          Put in draft
        </button>
      </div>

      <h4>Edges from it</h4>
      <ul className="small" data-testid="catalog-edit-edges">
        {out.length === 0 && <li className="muted">none declared</li>}
        {out.map((e) => (
          <li key={e.to}>
            → {e.to} {e.why ? <span className="muted">— {e.why}</span> : null}{" "}
            <button className="link" onClick={() => setProblem(props.edit(removeEdge(props.draft, e.from, e.to)))} data-testid="catalog-edge-remove">
              remove
            </button>
          </li>
        ))}
      </ul>
      <div className="fields">
        <label>
          Reaches
          <input list="catalog-ids" value={to} onChange={(e) => setTo(e.target.value)} placeholder="a resource id" data-testid="catalog-edge-to" />
        </label>
        <label>
          Why
          <input value={why} onChange={(e) => setWhy(e.target.value)} placeholder="a change to it reaches that because…" data-testid="catalog-edge-why" />
        </label>
      </div>
      <datalist id="catalog-ids">
        {(props.draft.resources ?? []).slice(0, 2000).map((x) => (
          <option key={x.id} value={x.id} />
        ))}
      </datalist>
      <div className="row end">
        <button
          onClick={() => {
            const p = props.edit(addEdge(props.draft, r.id, to, why));
            setProblem(p);
            if (!p) {
              setTo("");
              setWhy("");
            }
          }}
          data-testid="catalog-edge-add"
        >
          Add edge
        </button>
      </div>

      <h4>A new resource</h4>
      <div className="fields">
        <label>
          Id
          <input value={fresh.id} onChange={(e) => setFresh({ ...fresh, id: e.target.value })} placeholder="crm:acct-9" data-testid="catalog-new-id" />
        </label>
        <label>
          Title
          <input value={fresh.title} onChange={(e) => setFresh({ ...fresh, title: e.target.value })} />
        </label>
        <label>
          Reach
          <select value={fresh.reach} onChange={(e) => setFresh({ ...fresh, reach: e.target.value as Reach })}>
            {REACHES.map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </label>
        <label>
          Bearer
          <select value={fresh.bearer} onChange={(e) => setFresh({ ...fresh, bearer: e.target.value as Bearer })}>
            {BEARERS.map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div className="row end">
        <button
          onClick={() => {
            const p = props.edit(addResource(props.draft, fresh));
            setProblem(p);
            if (!p) {
              props.onAdded(fresh.id.trim());
              setFresh({ id: "", title: "", reach: "controlled", bearer: "institution" });
            }
          }}
          data-testid="catalog-new-add"
        >
          Add resource
        </button>
      </div>
      {problem && (
        <div className="banner error" role="alert" data-testid="catalog-edit-problem">
          {problem}
        </div>
      )}
    </div>
  );
}
