// A risk officer's edit of the catalog, as pure functions: the edits made
// to a draft (a whole catalog, as `PUT /v1/catalog` takes it), what the
// draft changes against the catalog it started from, the neighbourhood of a
// resource to draw, and the wording of the gate's plan. The plan itself (which
// writes would be decided differently) is the gate's: one engine, shared with
// `recourse catalog plan`; nothing here decides a write.
import type { Bearer, Catalog, CatalogDiff, CatalogPlan, Edge, Reach, Reason, Redecided, Resource, Verdict } from "../bindings";
import { REASON_CHIP, STATUS_TEXT } from "./text";

// The values the editor offers. A `Record` over the generated union: tsc
// fails when a bearer or reach is added in Rust and not here. (Not a
// generated constant: tauri-specta writes several constants in no fixed
// order, which made the bindings check flaky.)
const BEARER_SET: Record<Bearer, true> = { institution: true, customer: true, patient: true, borrower: true, creator: true, vendor: true, employee: true, public: true };
const REACH_SET: Record<Reach, true> = { controlled: true, observed: true, external: true };
export const BEARERS = Object.keys(BEARER_SET) as Bearer[];
export const REACHES = Object.keys(REACH_SET) as Reach[];

/** The fields of a resource the edit panel offers. */
export type EditableField = "title" | "kind" | "reach" | "bearer" | "probe_prefix";

export type Edited = { ok: true; catalog: Catalog } | { ok: false; error: string };

const resourcesOf = (c: Catalog): Resource[] => c.resources ?? [];
const edgesOf = (c: Catalog): Edge[] => c.edges ?? [];
const edgeKey = (e: Pick<Edge, "from" | "to">) => `${e.from}\u0000${e.to}`;

function fail(error: string): Edited {
  return { ok: false, error };
}

/** Sets one field of resource `id`. A blank text (or an empty bearer) takes
 * the field out: a resource without `bearer` is borne by its nearest
 * catalogued container, as the gate reads the file. */
export function setField(catalog: Catalog, id: string, field: EditableField, value: string): Edited {
  const rs = resourcesOf(catalog);
  const i = rs.findIndex((r) => r.id === id);
  if (i < 0) return fail(`no resource \`${id}\` in the draft`);
  const v = value.trim();
  if (field === "probe_prefix" && v && !/^https?:\/\/[^/\s]+/.test(v)) return fail("a probe prefix is an http:// or https:// URL prefix with a host");
  if (field === "reach" && !["controlled", "observed", "external"].includes(v)) return fail(`\`${v}\` is not a reach`);
  const next: Resource = { ...rs[i] };
  const out = next as Record<string, unknown>;
  if (v === "" && field !== "reach") delete out[field];
  else out[field] = v;
  const resources = rs.slice();
  resources[i] = next;
  return { ok: true, catalog: { ...catalog, resources } };
}

/** Adds an edge `from -> to`: a change to `from` reaches `to`. The `why` is
 * what a reviewer reads on every write the edge holds, so it is required. */
export function addEdge(catalog: Catalog, from: string, to: string, why: string): Edited {
  const ids = new Set(resourcesOf(catalog).map((r) => r.id));
  const t = to.trim();
  if (!ids.has(from)) return fail(`no resource \`${from}\` in the draft`);
  if (!t) return fail("name the resource the edge reaches");
  if (!ids.has(t)) return fail(`no resource \`${t}\` in the draft: add it first`);
  if (t === from) return fail("an edge from a resource to itself reaches nothing new");
  if (!why.trim()) return fail("say why a change to one reaches the other");
  if (edgesOf(catalog).some((e) => e.from === from && e.to === t)) return fail(`there is already an edge \`${from}\` -> \`${t}\``);
  return { ok: true, catalog: { ...catalog, edges: [...edgesOf(catalog), { from, to: t, why: why.trim() }] } };
}

export function removeEdge(catalog: Catalog, from: string, to: string): Edited {
  const edges = edgesOf(catalog);
  const kept = edges.filter((e) => !(e.from === from && e.to === to));
  if (kept.length === edges.length) return fail(`no edge \`${from}\` -> \`${to}\` in the draft`);
  return { ok: true, catalog: { ...catalog, edges: kept } };
}

/** Adds a resource a person catalogues: its bearer is explicit (the form
 * offers `institution` first), never inherited by accident. */
export function addResource(catalog: Catalog, r: { id: string; title?: string; reach: Reach; bearer: Bearer }): Edited {
  const id = r.id.trim();
  if (!id) return fail("a resource needs an id, such as `crm:acct-9`");
  if (!/^[a-z][a-z0-9+.-]*:.+/.test(id)) return fail(`\`${id}\` is not an id: a scheme, a colon, then the name (\`crm:acct-9\`)`);
  if (resourcesOf(catalog).some((x) => x.id === id)) return fail(`\`${id}\` is already in the catalog`);
  const res: Resource = { id, reach: r.reach, bearer: r.bearer };
  if (r.title?.trim()) res.title = r.title.trim();
  return { ok: true, catalog: { ...catalog, resources: [...resourcesOf(catalog), res] } };
}

/** What turns `base` into `draft`, matched as the gate matches them:
 * resources by id (with the names of the fields that differ), edges by their
 * two ends. */
export interface DraftChanges {
  resourcesAdded: string[];
  resourcesRemoved: string[];
  resourcesChanged: { id: string; fields: string[] }[];
  edgesAdded: string[];
  edgesRemoved: string[];
  edgesChanged: string[];
}

function fieldsOf(x: object): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of Object.entries(x)) if (v !== undefined && v !== null) m.set(k, JSON.stringify(v));
  return m;
}

function changedFields(a: object, b: object): string[] {
  const fa = fieldsOf(a);
  const fb = fieldsOf(b);
  return [...new Set([...fa.keys(), ...fb.keys()])].filter((k) => fa.get(k) !== fb.get(k)).sort();
}

export const edgeName = (e: Pick<Edge, "from" | "to">) => `${e.from} -> ${e.to}`;

export function draftChanges(base: Catalog, draft: Catalog): DraftChanges {
  const before = new Map(resourcesOf(base).map((r) => [r.id, r]));
  const after = new Map(resourcesOf(draft).map((r) => [r.id, r]));
  const eBefore = new Map(edgesOf(base).map((e) => [edgeKey(e), e]));
  const eAfter = new Map(edgesOf(draft).map((e) => [edgeKey(e), e]));
  const sorted = (xs: string[]) => xs.sort();
  return {
    resourcesAdded: sorted([...after.keys()].filter((id) => !before.has(id))),
    resourcesRemoved: sorted([...before.keys()].filter((id) => !after.has(id))),
    resourcesChanged: [...after.entries()]
      .filter(([id]) => before.has(id))
      .map(([id, r]) => ({ id, fields: changedFields(before.get(id) as Resource, r) }))
      .filter((c) => c.fields.length > 0)
      .sort((a, b) => a.id.localeCompare(b.id)),
    edgesAdded: sorted([...eAfter.entries()].filter(([k]) => !eBefore.has(k)).map(([, e]) => edgeName(e))),
    edgesRemoved: sorted([...eBefore.entries()].filter(([k]) => !eAfter.has(k)).map(([, e]) => edgeName(e))),
    edgesChanged: sorted(
      [...eAfter.entries()]
        .filter(([k, e]) => eBefore.has(k) && changedFields(eBefore.get(k) as Edge, e).length > 0)
        .map(([, e]) => edgeName(e)),
    ),
  };
}

export function changeCount(c: DraftChanges): number {
  return (
    c.resourcesAdded.length + c.resourcesRemoved.length + c.resourcesChanged.length + c.edgesAdded.length + c.edgesRemoved.length + c.edgesChanged.length
  );
}

/** "2 resources added, 1 edge removed", or "no change": the same words as
 * the gate's `CatalogDiff::summary` and the command line. */
export function changesSummary(counts: { resourcesAdded: number; resourcesRemoved: number; resourcesChanged: number; edgesAdded: number; edgesRemoved: number; edgesChanged: number }): string {
  const parts = (
    [
      [counts.resourcesAdded, "resource", "added"],
      [counts.resourcesRemoved, "resource", "removed"],
      [counts.resourcesChanged, "resource", "changed"],
      [counts.edgesAdded, "edge", "added"],
      [counts.edgesRemoved, "edge", "removed"],
      [counts.edgesChanged, "edge", "changed"],
    ] as const
  )
    .filter(([n]) => n > 0)
    .map(([n, what, how]) => `${n} ${what}${n === 1 ? "" : "s"} ${how}`);
  return parts.length ? parts.join(", ") : "no change";
}

export function draftSummary(c: DraftChanges): string {
  return changesSummary({
    resourcesAdded: c.resourcesAdded.length,
    resourcesRemoved: c.resourcesRemoved.length,
    resourcesChanged: c.resourcesChanged.length,
    edgesAdded: c.edgesAdded.length,
    edgesRemoved: c.edgesRemoved.length,
    edgesChanged: c.edgesChanged.length,
  });
}

export function diffSummary(d: CatalogDiff): string {
  return changesSummary({
    resourcesAdded: d.resources_added.length,
    resourcesRemoved: d.resources_removed.length,
    resourcesChanged: d.resources_changed.length,
    edgesAdded: d.edges_added.length,
    edgesRemoved: d.edges_removed.length,
    edgesChanged: d.edges_changed.length,
  });
}

/** Whether the gate's plan is exactly the draft's own changes. When it is
 * not, the gate's catalog is no longer the one the draft started from
 * (someone applied a change, or a connector discovered a file), and
 * applying the draft would also undo that: the person must reload. */
export function planIsTheDraft(plan: Pick<CatalogPlan, "diff">, mine: DraftChanges): boolean {
  const d = plan.diff;
  const same = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
  return (
    same(d.resources_added.map((r) => r.id), mine.resourcesAdded) &&
    same(d.resources_removed.map((r) => r.id), mine.resourcesRemoved) &&
    same(d.resources_changed.map((r) => r.id), mine.resourcesChanged.map((c) => c.id)) &&
    same(d.edges_added.map(edgeName), mine.edgesAdded) &&
    same(d.edges_removed.map(edgeName), mine.edgesRemoved) &&
    same(d.edges_changed.map(edgeName), mine.edgesChanged)
  );
}

export const MOVED_TEXT = "The catalog changed since you opened it: reload to start from the catalog as it is now (your draft is not applied).";

const VERB: Record<Verdict, string> = { proceed: "would run", hold: "held", refuse: "refused" };

/** "held → would run", "would run → held", or "still held" when only the
 * reasons change. */
export function verdictChange(w: Pick<Redecided, "before" | "after">): string {
  return w.before === w.after ? `still ${VERB[w.after]}` : `${VERB[w.before]} → ${VERB[w.after]}`;
}

/** One sentence per redecided write: where it is now and what the draft
 * would make of it. Both decisions are the gate's, made now. */
export function redecidedText(w: Pick<Redecided, "status" | "before" | "after">): string {
  const NOW: Record<Verdict, string> = { proceed: "it would run", hold: "it would be held", refuse: "it would be refused" };
  const now = w.status === "held" ? "Held now" : `${STATUS_TEXT[w.status].replace(/^./, (c) => c.toUpperCase())}; decided now ${NOW[w.before]}`;
  if (w.before === w.after) return `${now}; under the draft it is still ${VERB[w.after]}, for other reasons.`;
  if (w.after === "proceed") return `${now}; under the draft it would run without a person.`;
  if (w.after === "hold") return `${now}; under the draft it would be held for a person.`;
  return `${now}; under the draft it would be refused.`;
}

function subject(r: Pick<Reason, "resource" | "evidence" | "step">): string {
  if (r.resource) return r.resource;
  if (r.evidence) return r.evidence;
  return r.step !== undefined && r.step !== null ? `step ${r.step}` : "";
}

/** The reasons that go (`−`) and those that appear (`+`), as the command
 * line's plan lists them. */
export function reasonLines(w: Pick<Redecided, "reasons_added" | "reasons_removed">): string[] {
  const line = (sign: string, r: Reason) => `${sign} ${REASON_CHIP[r.code]}${subject(r) ? ` · ${subject(r)}` : ""}`;
  return [...w.reasons_removed.map((r) => line("−", r)), ...w.reasons_added.map((r) => line("+", r))];
}

/** The plan in one line: the changes, and how many of the writes examined
 * would be decided differently. */
export function planSummary(plan: Pick<CatalogPlan, "diff" | "examined" | "writes" | "skipped">): string {
  const n = plan.writes.length;
  const writes =
    n === 0
      ? `no write would be decided differently (${plan.examined} held or recent examined)`
      : `${n} of ${plan.examined} held or recent write${plan.examined === 1 ? "" : "s"} would be decided differently`;
  const skipped = (plan.skipped ?? []).length;
  return `${diffSummary(plan.diff)}; ${writes}${skipped ? `; ${skipped} could not be decided again` : ""}.`;
}

/** `id` shortened from the middle, so its scheme and its last part (the
 * file, the record) both stay readable. */
export function shortMiddle(id: string, max = 30): string {
  if (id.length <= max) return id;
  const head = Math.ceil((max - 1) * 0.4);
  const tail = max - 1 - head;
  return `${id.slice(0, head)}…${id.slice(id.length - tail)}`;
}

/** A node's label: the title first, then the id shortened from the middle. */
export function nodeLabel(r: Pick<Resource, "id" | "title">): string {
  return r.title ? `${r.title}\n${shortMiddle(r.id)}` : shortMiddle(r.id);
}

export interface Neighbourhood {
  nodes: { id: string; label: string; side: "selected" | "reaches" | "reached_by"; hops: number; reach: Reach; bearer: Bearer | null }[];
  /** `contains`: a folder's containment as the gate reported it, not a declared edge. */
  edges: { id: string; source: string; target: string; why: string | null; contains: boolean }[];
  /** More resources lie within the hops than are drawn. */
  truncated: boolean;
}

/** What `id` reaches and what reaches it, up to `hops` edges away, over
 * the draft's declared edges (so an edit shows at once), with every edge
 * among the resources drawn. `contains` adds the selected resource's
 * containment links the gate computed (`fs:` folders and their files),
 * one hop. At most `max` resources. */
export function neighbourhood(catalog: Catalog, id: string, hops = 2, max = 40, contains: readonly { from: string; to: string }[] = []): Neighbourhood {
  const byId = new Map(resourcesOf(catalog).map((r) => [r.id, r]));
  const out = new Map<string, string[]>();
  const inc = new Map<string, string[]>();
  const links = contains.filter((c) => (c.from === id || c.to === id) && byId.has(c.from) && byId.has(c.to));
  for (const c of links) {
    out.set(c.from, [...(out.get(c.from) ?? []), c.to]);
    inc.set(c.to, [...(inc.get(c.to) ?? []), c.from]);
  }
  for (const e of edgesOf(catalog)) {
    out.set(e.from, [...(out.get(e.from) ?? []), e.to]);
    inc.set(e.to, [...(inc.get(e.to) ?? []), e.from]);
  }
  const seen = new Map<string, { side: Neighbourhood["nodes"][number]["side"]; hops: number }>();
  if (!byId.has(id)) return { nodes: [], edges: [], truncated: false };
  seen.set(id, { side: "selected", hops: 0 });
  let truncated = false;
  for (const [side, next] of [
    ["reaches", out],
    ["reached_by", inc],
  ] as const) {
    let frontier = [id];
    for (let h = 1; h <= hops; h++) {
      const nextFrontier: string[] = [];
      for (const f of frontier)
        for (const n of next.get(f) ?? []) {
          if (seen.has(n)) continue;
          if (seen.size >= max) {
            truncated = true;
            continue;
          }
          seen.set(n, { side, hops: h });
          nextFrontier.push(n);
        }
      frontier = nextFrontier;
    }
  }
  const nodes = [...seen.entries()].map(([nid, s]) => {
    const r = byId.get(nid) as Resource;
    return { id: nid, label: nodeLabel(r), side: s.side, hops: s.hops, reach: r.reach ?? "controlled", bearer: r.bearer ?? null };
  });
  const declared = edgesOf(catalog)
    .filter((e) => seen.has(e.from) && seen.has(e.to))
    .map((e) => ({ id: `${e.from}->${e.to}`, source: e.from, target: e.to, why: e.why ?? null, contains: false }));
  const ids = new Set(declared.map((e) => e.id));
  const contained = links
    .filter((c) => seen.has(c.from) && seen.has(c.to) && !ids.has(`${c.from}->${c.to}`))
    .map((c) => ({ id: `${c.from}->${c.to}`, source: c.from, target: c.to, why: null, contains: true }));
  return { nodes, edges: [...declared, ...contained], truncated };
}
