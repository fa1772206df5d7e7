//! Blast radius: the touched resources and everything a change to them
//! reaches, along declared and containment edges, each with its shortest
//! path (section 4, rule 2).

use fixedbitset::FixedBitSet;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use crate::catalog::{CatalogGraph, Link};

/// One resource in the blast radius, in breadth-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    pub node: NodeIndex<u32>,
    pub depth: u32,
    /// Position in [`BlastRadius::visits`] of the resource it was reached
    /// from; `None` for a touched resource.
    pub parent: Option<u32>,
    /// The edge it was reached by.
    pub link: Option<Link>,
}

#[derive(Debug, Clone)]
pub struct BlastRadius {
    members: FixedBitSet,
    visits: Vec<Visit>,
}

impl BlastRadius {
    /// Breadth-first from `touched`, so the first visit of a resource is by
    /// a shortest path. The visit list doubles as the queue: no second
    /// structure, no per-node map.
    pub fn compute(catalog: &CatalogGraph, touched: &[NodeIndex<u32>]) -> Self {
        let graph = catalog.graph();
        let mut members = FixedBitSet::with_capacity(graph.node_count());
        let mut visits = Vec::new();
        for &node in touched {
            if node.index() < graph.node_count() && !members.put(node.index()) {
                visits.push(Visit {
                    node,
                    depth: 0,
                    parent: None,
                    link: None,
                });
            }
        }
        let mut cursor = 0usize;
        while let Some(&Visit { node, depth, .. }) = visits.get(cursor) {
            let parent = u32::try_from(cursor).ok();
            for edge in graph.edges(node) {
                let next = edge.target();
                if !members.put(next.index()) {
                    visits.push(Visit {
                        node: next,
                        depth: depth.saturating_add(1),
                        parent,
                        link: Some(*edge.weight()),
                    });
                }
            }
            cursor += 1;
        }
        Self { members, visits }
    }

    pub fn visits(&self) -> &[Visit] {
        &self.visits
    }

    pub fn contains(&self, node: NodeIndex<u32>) -> bool {
        self.members.contains(node.index())
    }

    pub fn len(&self) -> usize {
        self.visits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.visits.is_empty()
    }

    /// Position of `node` in the visit list (a scan: used for a handful of
    /// evidence locations, not per resource).
    pub fn position(&self, node: NodeIndex<u32>) -> Option<usize> {
        if !self.contains(node) {
            return None;
        }
        self.visits.iter().position(|v| v.node == node)
    }

    /// The shortest path from a touched resource to the visit at `pos`.
    pub fn path(&self, pos: usize) -> Vec<NodeIndex<u32>> {
        let mut path = Vec::new();
        let mut at = self.visits.get(pos);
        while let Some(v) = at {
            path.push(v.node);
            at = v.parent.and_then(|p| self.visits.get(p as usize));
        }
        path.reverse();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn graph(json: serde_json::Value) -> CatalogGraph {
        CatalogGraph::new(serde_json::from_value::<Catalog>(json).unwrap()).unwrap()
    }

    fn ids(c: &CatalogGraph, b: &BlastRadius) -> Vec<(String, u32)> {
        b.visits()
            .iter()
            .map(|v| (c.resource(v.node).unwrap().id.clone(), v.depth))
            .collect()
    }

    #[test]
    fn cycles_terminate_with_shortest_depths() {
        let c = graph(serde_json::json!({
            "resources": [{"id": "a:1"}, {"id": "a:2"}, {"id": "a:3"}],
            "edges": [{"from": "a:1", "to": "a:2"}, {"from": "a:2", "to": "a:3"},
                      {"from": "a:3", "to": "a:1"}, {"from": "a:1", "to": "a:3"}]
        }));
        let b = BlastRadius::compute(&c, &[c.node("a:1").unwrap()]);
        let mut got = ids(&c, &b);
        got.sort();
        assert_eq!(
            got,
            vec![("a:1".into(), 0), ("a:2".into(), 1), ("a:3".into(), 1)]
        );
    }

    #[test]
    fn containment_reaches_descendants_but_not_prefix_siblings() {
        let c = graph(serde_json::json!({
            "resources": [{"id": "fs:/a"}, {"id": "fs:/a/b/c"}, {"id": "fs:/ab"}]
        }));
        let b = BlastRadius::compute(&c, &[c.node("fs:/a").unwrap()]);
        assert_eq!(
            ids(&c, &b),
            vec![("fs:/a".into(), 0), ("fs:/a/b/c".into(), 1)]
        );
    }

    #[test]
    fn path_leads_back_to_a_touched_resource() {
        let c = graph(serde_json::json!({
            "resources": [{"id": "a:1"}, {"id": "a:2"}, {"id": "a:3"}],
            "edges": [{"from": "a:1", "to": "a:2"}, {"from": "a:2", "to": "a:3"}]
        }));
        let b = BlastRadius::compute(&c, &[c.node("a:1").unwrap()]);
        let pos = b.position(c.node("a:3").unwrap()).unwrap();
        let path: Vec<_> = b
            .path(pos)
            .into_iter()
            .map(|n| c.resource(n).unwrap().id.clone())
            .collect();
        assert_eq!(path, vec!["a:1", "a:2", "a:3"]);
    }
}
