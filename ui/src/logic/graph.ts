// The blast radius as graph elements: one node per entry, one edge from each
// entry's `via` (its predecessor on the shortest path) to it.
import type { BlastEntry, Bearer, Decision, Proposal, Reach } from "../bindings";

/** Coverage decides colour and shape together, so it reads without colour. */
export type Coverage = "covered" | "uncovered" | "external";

export interface NodeData {
  id: string;
  label: string;
  depth: number;
  touched: boolean;
  coverage: Coverage;
  reach: Reach;
  bearer: Bearer;
  thirdParty: boolean;
  restoredBy: number[];
}

export interface EdgeData {
  id: string;
  source: string;
  target: string;
}

export interface GraphElements {
  nodes: { data: NodeData; classes: string }[];
  edges: { data: EdgeData }[];
}

export function coverageOf(e: Pick<BlastEntry, "reach" | "covered">): Coverage {
  if (e.reach === "external") return "external";
  return e.covered ? "covered" : "uncovered";
}

/** Shapes per coverage (cytoscape shape names). */
export const SHAPE: Record<Coverage, string> = {
  covered: "round-rectangle",
  uncovered: "diamond",
  external: "hexagon",
};

export const SYMBOL: Record<Coverage, string> = {
  covered: "✓",
  uncovered: "!",
  external: "⬡",
};

export function shortLabel(id: string, max = 28): string {
  if (id.length <= max) return id;
  return "…" + id.slice(id.length - max + 1);
}

export function buildElements(decision: Pick<Decision, "blast_radius">): GraphElements {
  const entries = decision.blast_radius;
  const present = new Set(entries.map((e) => e.resource));
  const nodes = entries.map((e) => {
    const coverage = coverageOf(e);
    const thirdParty = e.bearer !== "institution";
    const label = `${SYMBOL[coverage]} ${shortLabel(e.resource)}${thirdParty ? `\n⚑ ${e.bearer}` : ""}`;
    const classes = [coverage, e.depth === 0 ? "touched" : "reached", thirdParty ? "third-party" : ""]
      .filter(Boolean)
      .join(" ");
    return {
      data: {
        id: e.resource,
        label,
        depth: e.depth,
        touched: e.depth === 0,
        coverage,
        reach: e.reach,
        bearer: e.bearer,
        thirdParty,
        restoredBy: e.restored_by ?? [],
      },
      classes,
    };
  });
  const edges = entries
    .filter((e) => e.via && present.has(e.via))
    .map((e) => ({ data: { id: `${e.via}->${e.resource}`, source: e.via as string, target: e.resource } }));
  return { nodes, edges };
}

/** From the touched resource to `resource`, following `via`. Stops on a
 * cycle or a missing link rather than looping. */
export function pathTo(decision: Pick<Decision, "blast_radius">, resource: string): string[] {
  const byId = new Map(decision.blast_radius.map((e) => [e.resource, e]));
  const path: string[] = [];
  const seen = new Set<string>();
  let cur: string | null | undefined = resource;
  while (cur && byId.has(cur) && !seen.has(cur)) {
    seen.add(cur);
    path.unshift(cur);
    cur = byId.get(cur)?.via;
  }
  return path;
}

export interface StepView {
  index: number;
  restores: string[];
  op: string;
  manual: boolean;
  available: boolean;
  evidence: { id: string; status: string }[];
  modelledBy: string | null;
}

/** The rollback plan, step by step, joined with what the decision says of
 * each step and its evidence. */
export function planSteps(proposal: Pick<Proposal, "rollback">, decision: Pick<Decision, "steps" | "evidence">): StepView[] {
  const status = new Map(decision.evidence.map((e) => [e.id, e.status as string]));
  return (proposal.rollback?.steps ?? []).map((s, i) => {
    const report = (decision.steps ?? []).find((r) => r.step === i);
    return {
      index: i,
      restores: s.restores ?? [],
      op: describeOp(s.op),
      manual: report?.manual ?? false,
      available: report?.available ?? false,
      evidence: (s.requires ?? []).map((r) => ({ id: r.id, status: status.get(r.id) ?? "unverifiable" })),
      modelledBy: s.modelled_by ?? null,
    };
  });
}

/** A one-line account of a connector op or a manual step. */
export function describeOp(op: unknown): string {
  if (!op || typeof op !== "object") return String(op ?? "");
  const o = op as Record<string, unknown>;
  if (o.kind === "manual") return `Manual: ${String(o.note ?? "a person acts")}`;
  const parts = [o.connector, o.op, o.method, o.url ?? o.path ?? o.table].filter((p) => p !== undefined && p !== null);
  const rest = o.to ? ` → ${String(o.to)}` : "";
  return parts.map(String).join(" ") + rest;
}

/** Who pays if reversal fails: each third-party bearer with the resources
 * it bears. */
export function whoPays(decision: Pick<Decision, "blast_radius">): { bearer: Bearer; resources: string[] }[] {
  const by = new Map<Bearer, string[]>();
  for (const e of decision.blast_radius) {
    if (e.bearer === "institution") continue;
    const list = by.get(e.bearer) ?? [];
    list.push(e.resource);
    by.set(e.bearer, list);
  }
  return [...by.entries()].map(([bearer, resources]) => ({ bearer, resources })).sort((a, b) => a.bearer.localeCompare(b.bearer));
}
