import { useEffect, useRef } from "react";
import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";
import type { Neighbourhood } from "../logic/catalogEdit";

cytoscape.use(dagre);

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

/** A resource's neighbourhood, left to right along the edges: what reaches
 * it on the left, what it reaches on the right. Reach is colour and shape
 * (as on a write's blast radius); a third-party bearer is a dashed border.
 * Clicking a node selects that resource. */
export function CatalogGraph(props: { graph: Neighbourhood; selected: string; onSelect: (id: string) => void; theme: string }) {
  const host = useRef<HTMLDivElement>(null);
  const { onSelect } = props;

  useEffect(() => {
    if (!host.current) return;
    const instance = cytoscape({
      container: host.current,
      elements: [
        ...props.graph.nodes.map((n) => ({
          data: { id: n.id, label: n.label },
          classes: [n.reach, n.side, n.bearer && n.bearer !== "institution" ? "third-party" : "", n.id === props.selected ? "current" : ""].filter(Boolean).join(" "),
        })),
        ...props.graph.edges.map((e) => ({ data: { id: e.id, source: e.source, target: e.target }, classes: e.contains ? "contains" : "" })),
      ],
      autoungrabify: true,
      boxSelectionEnabled: false,
      wheelSensitivity: 0.3,
      minZoom: 0.2,
      maxZoom: 1.2,
      style: [
        {
          selector: "node",
          style: {
            label: "data(label)",
            "text-wrap": "wrap",
            "text-max-width": "160px",
            "text-valign": "center",
            "text-halign": "center",
            "font-size": 11,
            color: cssVar("--fg"),
            "text-background-color": cssVar("--bg"),
            "text-background-opacity": 0.85,
            "text-background-padding": "2px",
            width: 176,
            height: 50,
            shape: "round-rectangle",
            "background-color": cssVar("--covered"),
            "border-width": 2,
            "border-color": cssVar("--border-strong"),
          },
        },
        { selector: "node.observed", style: { shape: "diamond", "background-color": cssVar("--uncovered"), width: 190, height: 64 } },
        { selector: "node.external", style: { shape: "hexagon", "background-color": cssVar("--external"), width: 190, height: 60 } },
        { selector: "node.third-party", style: { "border-style": "dashed" } },
        { selector: "node.current", style: { "border-width": 5, "border-color": cssVar("--accent") } },
        {
          selector: "edge",
          style: {
            width: 2,
            "curve-style": "bezier",
            "target-arrow-shape": "triangle",
            "line-color": cssVar("--border-strong"),
            "target-arrow-color": cssVar("--border-strong"),
          },
        },
        { selector: "edge.contains", style: { "line-style": "dashed", "target-arrow-shape": "none" } },
      ],
    });
    const layout = instance.layout({ name: "dagre", rankDir: "LR", nodeSep: 18, rankSep: 60, padding: 14 } as cytoscape.LayoutOptions);
    const el = host.current;
    delete el.dataset.drawnAt;
    layout.one("layoutstop", () => {
      el.dataset.nodes = String(instance.nodes().length);
      el.dataset.drawnAt = String(performance.now());
    });
    layout.run();
    instance.on("tap", "node", (e) => onSelect(e.target.id()));
    return () => instance.destroy();
  }, [props.graph, props.selected, props.theme, onSelect]);

  return <div className="graph catalog-graph" ref={host} data-testid="catalog-graph" />;
}

export function CatalogLegend() {
  return (
    <div className="legend small">
      <span>
        <svg width="22" height="14"><rect x="1" y="1" width="20" height="12" rx="4" fill="var(--covered)" stroke="var(--border-strong)" /></svg> controlled
      </span>
      <span>
        <svg width="22" height="16"><polygon points="11,1 21,8 11,15 1,8" fill="var(--uncovered)" stroke="var(--border-strong)" /></svg> observed
      </span>
      <span>
        <svg width="22" height="16"><polygon points="6,1 16,1 21,8 16,15 6,15 1,8" fill="var(--external)" stroke="var(--border-strong)" /></svg> external
      </span>
      <span>
        <svg width="22" height="14"><rect x="1" y="1" width="20" height="12" rx="3" fill="none" stroke="var(--fg)" strokeDasharray="3 2" /></svg> a third party bears it
      </span>
      <span>
        <svg width="26" height="10"><line x1="1" y1="5" x2="25" y2="5" stroke="var(--border-strong)" strokeWidth="2" strokeDasharray="4 3" /></svg> contains (a folder's files)
      </span>
      <span className="muted">Declared edges of the draft, two hops each way: what reaches it on the left, what it reaches on the right.</span>
    </div>
  );
}
