import { useEffect, useRef } from "react";
import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";
import type { Decision } from "../api";
import { buildElements, SHAPE } from "../logic/graph";

cytoscape.use(dagre);

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

/** The blast radius, left to right by depth. Coverage is colour and shape;
 * touched resources have a heavy border; third-party bearers a dashed one. */
export function BlastGraph(props: { decision: Decision; selected: string | null; onSelect: (id: string | null) => void; theme: string }) {
  const host = useRef<HTMLDivElement>(null);
  const cy = useRef<cytoscape.Core | null>(null);
  const { onSelect } = props;

  useEffect(() => {
    if (!host.current) return;
    const els = buildElements(props.decision);
    const instance = cytoscape({
      container: host.current,
      elements: [...els.nodes, ...els.edges],
      autoungrabify: true,
      boxSelectionEnabled: false,
      wheelSensitivity: 0.3,
      // A one-node radius must not fill the panel.
      minZoom: 0.15,
      maxZoom: 1.3,
      style: [
        {
          selector: "node",
          style: {
            label: "data(label)",
            "text-wrap": "wrap",
            "text-valign": "center",
            "text-halign": "center",
            "font-size": 11,
            color: cssVar("--fg"),
            "text-background-color": cssVar("--bg"),
            "text-background-opacity": 0.85,
            "text-background-padding": "2px",
            width: 150,
            height: 54,
            "border-width": 2,
            "border-color": cssVar("--border-strong"),
          },
        },
        { selector: "node.covered", style: { shape: SHAPE.covered as cytoscape.Css.NodeShape, "background-color": cssVar("--covered") } },
        { selector: "node.uncovered", style: { shape: SHAPE.uncovered as cytoscape.Css.NodeShape, "background-color": cssVar("--uncovered"), width: 170, height: 70 } },
        { selector: "node.external", style: { shape: SHAPE.external as cytoscape.Css.NodeShape, "background-color": cssVar("--external"), width: 170, height: 64 } },
        { selector: "node.touched", style: { "border-width": 5, "border-color": cssVar("--fg") } },
        { selector: "node.third-party", style: { "border-style": "dashed" } },
        { selector: "node:selected", style: { "overlay-color": cssVar("--accent"), "overlay-opacity": 0.25, "overlay-padding": 6 } },
        { selector: "node.onpath", style: { "border-color": cssVar("--accent"), "border-width": 5 } },
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
        { selector: "edge.onpath", style: { "line-color": cssVar("--accent"), "target-arrow-color": cssVar("--accent"), width: 4 } },
      ],
    });
    // For the E2E harness's timing: when the layout has stopped and the next
    // frame is drawn, the container says so (`data-drawn-at`, on the page's
    // performance clock) and a `blast-drawn` performance mark is set.
    const el = host.current;
    delete el.dataset.drawnAt;
    const started = performance.now();
    const layout = instance.layout({ name: "dagre", rankDir: "LR", nodeSep: 24, rankSep: 70, padding: 16 } as cytoscape.LayoutOptions);
    layout.one("layoutstop", () => {
      const laidOut = performance.now();
      requestAnimationFrame(() =>
        requestAnimationFrame(() => {
          if (instance.destroyed()) return;
          el.dataset.layoutMs = String(Math.round(laidOut - started));
          el.dataset.nodes = String(instance.nodes().length);
          el.dataset.drawnAt = String(performance.now());
          performance.mark("blast-drawn");
        }),
      );
    });
    layout.run();
    instance.on("tap", "node", (e) => onSelect(e.target.id()));
    instance.on("tap", (e) => {
      if (e.target === instance) onSelect(null);
    });
    cy.current = instance;
    return () => {
      instance.destroy();
      cy.current = null;
    };
  }, [props.decision, props.theme, onSelect]);

  // Highlight the path (via chain) to the selected node.
  useEffect(() => {
    const c = cy.current;
    if (!c) return;
    c.elements().removeClass("onpath");
    c.nodes().unselect();
    if (!props.selected) return;
    const n = c.getElementById(props.selected);
    if (n.empty()) return;
    n.select();
    let cur: cytoscape.NodeSingular = n;
    for (let i = 0; i < 1000; i++) {
      cur.addClass("onpath");
      const inc = cur.incomers("edge");
      if (inc.empty()) break;
      inc.addClass("onpath");
      cur = inc.sources().first() as cytoscape.NodeSingular;
    }
  }, [props.selected, props.decision, props.theme]);

  return <div className="graph" ref={host} data-testid="blast-graph" />;
}

export function Legend() {
  return (
    <div className="legend small">
      <span>
        <svg width="22" height="14"><rect x="1" y="1" width="20" height="12" rx="4" fill="var(--covered)" stroke="var(--border-strong)" /></svg> covered
      </span>
      <span>
        <svg width="22" height="16"><polygon points="11,1 21,8 11,15 1,8" fill="var(--uncovered)" stroke="var(--border-strong)" /></svg> uncovered
      </span>
      <span>
        <svg width="22" height="16"><polygon points="6,1 16,1 21,8 16,15 6,15 1,8" fill="var(--external)" stroke="var(--border-strong)" /></svg> external
      </span>
      <span>
        <svg width="22" height="14"><rect x="2" y="2" width="18" height="10" rx="3" fill="none" stroke="var(--fg)" strokeWidth="3" /></svg> touched (depth 0)
      </span>
      <span>
        <svg width="22" height="14"><rect x="1" y="1" width="20" height="12" rx="3" fill="none" stroke="var(--fg)" strokeDasharray="3 2" /></svg> third party bears it
      </span>
      <span className="muted">Columns are depth: how many links from what the write touches.</span>
    </div>
  );
}
