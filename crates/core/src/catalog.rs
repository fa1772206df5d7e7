//! The institution's state as a directed graph: resources, and edges that say
//! a change to one reaches another (section 1 of the contract).

use std::hash::BuildHasher;

use rustc_hash::{FxBuildHasher, FxHashMap as HashMap, FxHashSet as HashSet};

use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::id;

/// Who can put a resource back.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// A connector of the gate can capture and restore it.
    #[default]
    Controlled,
    /// The gate can read it; another system restores it.
    Observed,
    /// Outside every system the institution runs.
    External,
}

/// Who pays when a wrong change to a resource cannot be undone.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Bearer {
    #[default]
    Institution,
    Customer,
    Patient,
    Borrower,
    Creator,
    Vendor,
    Employee,
    Public,
}

impl Bearer {
    pub const ALL: [Bearer; 8] = [
        Bearer::Institution,
        Bearer::Customer,
        Bearer::Patient,
        Bearer::Borrower,
        Bearer::Creator,
        Bearer::Vendor,
        Bearer::Employee,
        Bearer::Public,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Bearer::Institution => "institution",
            Bearer::Customer => "customer",
            Bearer::Patient => "patient",
            Bearer::Borrower => "borrower",
            Bearer::Creator => "creator",
            Bearer::Vendor => "vendor",
            Bearer::Employee => "employee",
            Bearer::Public => "public",
        }
    }

    pub fn is_third_party(self) -> bool {
        self != Bearer::Institution
    }
}

impl Reach {
    pub const ALL: [Reach; 3] = [Reach::Controlled, Reach::Observed, Reach::External];

    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Controlled => "controlled",
            Reach::Observed => "observed",
            Reach::External => "external",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub labels: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub reach: Reach,
    // Why an `Option` on the resource and not a value resolved when the
    // resource joins the catalog: the contract's JSON is kept (`bearer` is
    // optional on input; entries a connector discovered are stored without
    // it), and a copy taken when a file was first seen would go stale when
    // a risk officer later marks its folder customer-borne. Entries a person
    // writes (a scenario's catalog, `POST /v1/catalog`) get the contract's
    // default, `institution`, at that boundary
    // (`Catalog::with_default_bearers`), so they never inherit.
    /// Who bears it; none: a resource a connector discovered, borne by its
    /// nearest catalogued container with a bearer, else the institution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<Bearer>,
    /// Where evidence held at this resource may be probed: a proposal's
    /// `check` URL is probed by the gate only when it starts with this
    /// (section 10). An `http://` or `https://` URL prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_prefix: Option<String>,
}

impl Resource {
    /// A resource with the defaults: controlled, with no bearer of its own
    /// (as a connector discovers it).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            kind: None,
            title: None,
            labels: None,
            reach: Reach::default(),
            bearer: None,
            probe_prefix: None,
        }
    }
}

/// Checks a `probe_prefix`: an `http://` or `https://` URL prefix with a host.
fn check_probe_prefix(prefix: &str) -> Result<(), String> {
    let rest = prefix
        .strip_prefix("https://")
        .or_else(|| prefix.strip_prefix("http://"))
        .ok_or_else(|| format!("`{prefix}` must start with `http://` or `https://`"))?;
    // A path is required: `https://market.internal` would also be a prefix
    // of `https://market.internal.example.com/`.
    let Some((host, _path)) = rest.split_once('/') else {
        return Err(format!(
            "`{prefix}` must name a host and a path (at least `/` after the host)"
        ));
    };
    if host.is_empty()
        || host.contains(['@', '?', '#'])
        || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "`{prefix}` must name a host (no user info, no spaces)"
        ));
    }
    Ok(())
}

impl Catalog {
    /// The contract's default for entries a person writes: a resource with
    /// no `bearer` is borne by the institution (it does not inherit, which
    /// only discovered resources do).
    pub fn with_default_bearers(mut self) -> Self {
        for r in &mut self.resources {
            r.bearer.get_or_insert(Bearer::Institution);
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct Edge {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The catalog document, as it is written and sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default)]
    pub edges: Vec<Edge>,
}

/// Why an edge of the graph exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `catalog.edges[i]`.
    Declared(u32),
    /// `fs:` containment: the source is an ancestor of the target.
    Contains,
}

/// Resources one step from another, each with the edge between them.
pub type Neighbours<'a> = Vec<(&'a Resource, Link)>;

/// A validated catalog, indexed as a petgraph graph. Node `i` is
/// `resources()[i]`.
///
/// INVARIANT (edge order): in each node's adjacency list (petgraph lists a
/// node's edges newest first) its `Contains` edges come before its
/// `Declared` ones, each group newest first. A breadth-first walk takes the
/// first edge that reaches a resource as its `via`, so this order is part of
/// the decision's output; [`CatalogGraph::extend`] keeps it, so a graph
/// grown in place decides exactly as one built from the whole document.
#[derive(Debug, Clone)]
pub struct CatalogGraph {
    catalog: Catalog,
    graph: DiGraph<(), Link, u32>,
    index: HashMap<String, NodeIndex<u32>>,
    /// Each node's reach and own bearer, packed: a decision reads these for
    /// every resource it reaches, without touching the resource itself.
    traits: Vec<(Reach, Option<Bearer>)>,
    /// Hashes of every `fs:` ancestor of a catalogued `fs:` id, catalogued
    /// or not: a new `fs:` resource found here contains resources already
    /// in the catalog. A hash collision only costs a rebuild.
    fs_dirs: HashSet<u64>,
}

fn fs_dir_key(id: &str) -> u64 {
    FxBuildHasher.hash_one(id)
}

impl CatalogGraph {
    /// Validates `catalog` and builds its graph, with one implicit edge from
    /// each `fs:` ancestor in the catalog to each of its descendants (so the
    /// shortest path from `fs:/` to `fs:/a/b` is one step, as the contract's
    /// "reached by a change to any ancestor" says).
    pub fn new(catalog: Catalog) -> Result<Self, InputError> {
        let mut index =
            HashMap::with_capacity_and_hasher(catalog.resources.len(), Default::default());
        let mut graph = DiGraph::with_capacity(catalog.resources.len(), catalog.edges.len());
        for (i, resource) in catalog.resources.iter().enumerate() {
            let field = || format!("catalog.resources[{i}].id");
            id::check(&resource.id).map_err(|m| InputError::new(field(), m))?;
            if let Some(prefix) = &resource.probe_prefix {
                check_probe_prefix(prefix).map_err(|m| {
                    InputError::new(format!("catalog.resources[{i}].probe_prefix"), m)
                })?;
            }
            let node = graph.add_node(());
            if index.insert(resource.id.clone(), node).is_some() {
                return Err(InputError::new(
                    field(),
                    format!("duplicate resource `{}`", resource.id),
                ));
            }
        }
        for (i, edge) in catalog.edges.iter().enumerate() {
            let lookup = |end: &str, side: &str| {
                index.get(end).copied().ok_or_else(|| {
                    InputError::new(
                        format!("catalog.edges[{i}].{side}"),
                        format!("unknown resource `{end}`"),
                    )
                })
            };
            let from = lookup(&edge.from, "from")?;
            let to = lookup(&edge.to, "to")?;
            let n =
                u32::try_from(i).map_err(|_| InputError::new("catalog.edges", "too many edges"))?;
            graph.add_edge(from, to, Link::Declared(n));
        }
        let traits = catalog
            .resources
            .iter()
            .map(|r| (r.reach, r.bearer))
            .collect();
        let mut fs_dirs = HashSet::default();
        for resource in &catalog.resources {
            let Some(&node) = index.get(&resource.id) else {
                continue;
            };
            for ancestor in id::fs_ancestors(&resource.id) {
                fs_dirs.insert(fs_dir_key(ancestor));
                if let Some(&up) = index.get(ancestor) {
                    graph.add_edge(up, node, Link::Contains);
                }
            }
        }
        Ok(Self {
            catalog,
            graph,
            index,
            traits,
            fs_dirs,
        })
    }

    /// Adds `add`'s resources and edges after the catalog's own, as if the
    /// graph were built anew from the concatenated document (same checks,
    /// same errors naming the same fields, same edge order, hence the same
    /// decisions), in time proportional to `add`: only the new ids are
    /// checked and indexed. On an error nothing changes.
    ///
    /// Two additions cannot keep the edge order without touching what is
    /// there, and rebuild the graph from the document instead (no copy):
    /// an `fs:` resource that contains resources already catalogued (a
    /// folder catalogued after its files), and a declared edge from an
    /// `fs:` resource that already contains others.
    pub fn extend(&mut self, add: Catalog) -> Result<(), InputError> {
        let base_nodes = self.catalog.resources.len();
        let base_edges = self.catalog.edges.len();
        let mut rebuild = false;
        // Validate everything before changing anything.
        let mut fresh: HashMap<&str, NodeIndex<u32>> =
            HashMap::with_capacity_and_hasher(add.resources.len(), Default::default());
        for (j, resource) in add.resources.iter().enumerate() {
            let i = base_nodes + j;
            let field = || format!("catalog.resources[{i}].id");
            id::check(&resource.id).map_err(|m| InputError::new(field(), m))?;
            if let Some(prefix) = &resource.probe_prefix {
                check_probe_prefix(prefix).map_err(|m| {
                    InputError::new(format!("catalog.resources[{i}].probe_prefix"), m)
                })?;
            }
            let node = u32::try_from(i)
                .map(|_| NodeIndex::new(i))
                .map_err(|_| InputError::new("catalog.resources", "too many resources"))?;
            if self.index.contains_key(&resource.id)
                || fresh.insert(resource.id.as_str(), node).is_some()
            {
                return Err(InputError::new(
                    field(),
                    format!("duplicate resource `{}`", resource.id),
                ));
            }
            rebuild |=
                resource.id.starts_with("fs:") && self.fs_dirs.contains(&fs_dir_key(&resource.id));
        }
        let mut ends = Vec::with_capacity(add.edges.len());
        for (j, edge) in add.edges.iter().enumerate() {
            let i = base_edges + j;
            let lookup = |end: &str, side: &str| {
                self.index
                    .get(end)
                    .or_else(|| fresh.get(end))
                    .copied()
                    .ok_or_else(|| {
                        InputError::new(
                            format!("catalog.edges[{i}].{side}"),
                            format!("unknown resource `{end}`"),
                        )
                    })
            };
            let from = lookup(&edge.from, "from")?;
            let to = lookup(&edge.to, "to")?;
            let n =
                u32::try_from(i).map_err(|_| InputError::new("catalog.edges", "too many edges"))?;
            // By the invariant, a node's `Contains` edges lead its list.
            rebuild |= from.index() < base_nodes
                && self
                    .graph
                    .edges(from)
                    .next()
                    .is_some_and(|e| *e.weight() == Link::Contains);
            ends.push((from, to, Link::Declared(n)));
        }
        drop(fresh);
        if rebuild {
            let mut catalog = std::mem::take(&mut self.catalog);
            catalog.resources.extend(add.resources);
            catalog.edges.extend(add.edges);
            // Everything `new` checks was checked above, so this cannot
            // fail; if it did, the error is returned and the graph is empty.
            *self = Self::new(catalog)?;
            return Ok(());
        }
        // The order `new` adds them in: nodes, declared edges, then the
        // containment of each new resource, nearest ancestor first.
        self.graph.reserve_nodes(add.resources.len());
        self.index.reserve(add.resources.len());
        self.traits.reserve(add.resources.len());
        for resource in &add.resources {
            let node = self.graph.add_node(());
            self.index.insert(resource.id.clone(), node);
            self.traits.push((resource.reach, resource.bearer));
        }
        for (from, to, link) in ends {
            self.graph.add_edge(from, to, link);
        }
        for (j, resource) in add.resources.iter().enumerate() {
            let node = NodeIndex::new(base_nodes + j);
            for ancestor in id::fs_ancestors(&resource.id) {
                self.fs_dirs.insert(fs_dir_key(ancestor));
                if let Some(&up) = self.index.get(ancestor) {
                    self.graph.add_edge(up, node, Link::Contains);
                }
            }
        }
        self.catalog.resources.extend(add.resources);
        self.catalog.edges.extend(add.edges);
        Ok(())
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn into_catalog(self) -> Catalog {
        self.catalog
    }

    pub fn graph(&self) -> &DiGraph<(), Link, u32> {
        &self.graph
    }

    pub fn len(&self) -> usize {
        self.catalog.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.catalog.resources.is_empty()
    }

    pub fn node(&self, id: &str) -> Option<NodeIndex<u32>> {
        self.index.get(id).copied()
    }

    pub fn get(&self, id: &str) -> Option<&Resource> {
        self.node(id).and_then(|n| self.resource(n))
    }

    pub fn resource(&self, node: NodeIndex<u32>) -> Option<&Resource> {
        self.catalog.resources.get(node.index())
    }

    /// The reach and the own bearer (none: resolved from its containers,
    /// [`CatalogGraph::bearer_of`]) of the resource at `node`.
    pub fn traits(&self, node: NodeIndex<u32>) -> (Reach, Option<Bearer>) {
        self.traits
            .get(node.index())
            .copied()
            .unwrap_or((Reach::Controlled, None))
    }

    /// Who bears `resource`: its own bearer, else that of its nearest
    /// catalogued container that has one ([`id::containers`]), else the
    /// institution. A few hash lookups per resource, no catalog scan.
    pub fn bearer_of(&self, resource: &Resource) -> Bearer {
        resource.bearer.unwrap_or_else(|| {
            id::containers(&resource.id)
                .find_map(|c| self.get(c).and_then(|r| r.bearer))
                .unwrap_or(Bearer::Institution)
        })
    }

    /// The sentence an edge carries: its `why`, or the containment it stands for.
    pub fn why(&self, link: Link) -> Option<&str> {
        match link {
            Link::Declared(i) => self
                .catalog
                .edges
                .get(i as usize)
                .and_then(|e| e.why.as_deref()),
            Link::Contains => None,
        }
    }

    /// Resources one step away: `(resource, link)` for what a change to `id`
    /// reaches, and for what reaches `id`.
    pub fn neighbours(&self, id: &str) -> (Neighbours<'_>, Neighbours<'_>) {
        use petgraph::visit::EdgeRef;
        use petgraph::Direction;
        let Some(node) = self.node(id) else {
            return (Vec::new(), Vec::new());
        };
        let side = |dir| {
            self.graph
                .edges_directed(node, dir)
                .filter_map(|e| {
                    let other = if dir == Direction::Outgoing {
                        e.target()
                    } else {
                        e.source()
                    };
                    self.resource(other).map(|r| (r, *e.weight()))
                })
                .collect()
        };
        (side(Direction::Outgoing), side(Direction::Incoming))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(json: serde_json::Value) -> Result<CatalogGraph, InputError> {
        CatalogGraph::new(serde_json::from_value(json).unwrap())
    }

    #[test]
    fn defaults_are_controlled_and_institution() {
        let c = catalog(serde_json::json!({"resources": [{"id": "a:1"}]})).unwrap();
        let r = c.get("a:1").unwrap();
        assert_eq!(
            (r.reach, c.bearer_of(r)),
            (Reach::Controlled, Bearer::Institution)
        );
    }

    #[test]
    fn no_bearer_of_its_own_resolves_to_the_nearest_container_with_one() {
        let c = catalog(serde_json::json!({"resources": [
            {"id": "fs:/", "bearer": "institution"},
            {"id": "fs:/a", "bearer": "customer"},
            {"id": "fs:/a/b"}, {"id": "fs:/a/b/c"}, {"id": "fs:/x"},
            {"id": "sql:db", "bearer": "patient"}, {"id": "sql:db/t/1"},
            {"id": "sql:db/u", "bearer": "institution"}, {"id": "sql:db/u/1"},
            {"id": "acct:9"}
        ]}))
        .unwrap();
        let b = |id: &str| c.bearer_of(c.get(id).unwrap());
        assert_eq!(b("fs:/a/b/c"), Bearer::Customer);
        assert_eq!(b("fs:/x"), Bearer::Institution);
        assert_eq!(b("sql:db/t/1"), Bearer::Patient);
        assert_eq!(b("sql:db/u/1"), Bearer::Institution);
        assert_eq!(b("acct:9"), Bearer::Institution);
        let explicit = Catalog {
            resources: vec![Resource::new("fs:/a/b")],
            edges: vec![],
        }
        .with_default_bearers();
        assert_eq!(explicit.resources[0].bearer, Some(Bearer::Institution));
    }

    #[test]
    fn probe_prefix_must_be_an_http_url() {
        let ok = catalog(serde_json::json!({"resources": [
            {"id": "vault:m", "probe_prefix": "https://market.internal/snapshots/"}]}));
        assert!(ok.is_ok());
        for bad in [
            "ftp://x/",
            "https://",
            "https:///",
            "market.internal/",
            "https://u@h/",
            "https://market.internal",
        ] {
            let err = catalog(serde_json::json!({"resources": [
                {"id": "vault:m", "probe_prefix": bad}]}))
            .unwrap_err();
            assert_eq!(err.field, "catalog.resources[0].probe_prefix", "{bad}");
        }
    }

    #[test]
    fn unknown_edge_end_names_the_field() {
        let err = catalog(serde_json::json!({
            "resources": [{"id": "a:1"}],
            "edges": [{"from": "a:1", "to": "a:1"}, {"from": "a:1", "to": "a:nope"}]
        }))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "catalog.edges[1].to: unknown resource `a:nope`"
        );
    }

    #[test]
    fn duplicate_ids_are_invalid() {
        let err =
            catalog(serde_json::json!({"resources": [{"id": "a:1"}, {"id": "a:1"}]})).unwrap_err();
        assert_eq!(err.field, "catalog.resources[1].id");
    }

    /// Each node's edges, in the order a walk takes them.
    fn adjacency(c: &CatalogGraph) -> Vec<Vec<(usize, Link)>> {
        use petgraph::visit::EdgeRef;
        c.graph()
            .node_indices()
            .map(|n| {
                c.graph()
                    .edges(n)
                    .map(|e| (e.target().index(), *e.weight()))
                    .collect()
            })
            .collect()
    }

    fn doc(json: serde_json::Value) -> Catalog {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn extending_in_place_equals_building_the_whole_document() {
        let base = doc(serde_json::json!({
            "resources": [{"id": "fs:/"}, {"id": "fs:/a"}, {"id": "fs:/a/x"}, {"id": "db:1"}, {"id": "db:2"}],
            "edges": [{"from": "db:1", "to": "db:2", "why": "fk"}, {"from": "fs:/a", "to": "db:1"}]
        }));
        let cases = [
            // New files under catalogued folders, with edges among old and new.
            serde_json::json!({"resources": [{"id": "fs:/a/y"}, {"id": "fs:/b/z"}, {"id": "db:3"},
                                             {"id": "fs:/q"}, {"id": "fs:/q/r"}],
                "edges": [{"from": "db:2", "to": "db:3"}, {"from": "db:3", "to": "fs:/a/y"},
                          {"from": "fs:/q", "to": "db:1"}]}),
            // A folder catalogued after a file in it (rebuilds).
            serde_json::json!({"resources": [{"id": "fs:/a/x/in"}, {"id": "fs:/b"}, {"id": "fs:/b/c"}]}),
            serde_json::json!({"resources": [{"id": "fs:/c/d"}, {"id": "fs:/c"}]}),
            // A declared edge out of a folder that contains others (rebuilds).
            serde_json::json!({"edges": [{"from": "fs:/a", "to": "db:2"}]}),
            serde_json::json!({}),
        ];
        for add in cases {
            let add = doc(add);
            let mut whole = base.clone();
            whole.resources.extend(add.resources.clone());
            whole.edges.extend(add.edges.clone());
            let expected = CatalogGraph::new(whole.clone()).unwrap();
            let mut grown = CatalogGraph::new(base.clone()).unwrap();
            grown.extend(add.clone()).unwrap();
            assert_eq!(grown.catalog(), &whole, "{add:?}");
            assert_eq!(adjacency(&grown), adjacency(&expected), "{add:?}");
            for r in &whole.resources {
                assert_eq!(grown.node(&r.id), expected.node(&r.id));
            }
        }
    }

    #[test]
    fn a_bad_extension_names_the_field_and_changes_nothing() {
        let base = doc(serde_json::json!({"resources": [{"id": "a:1"}]}));
        for (add, field) in [
            (
                serde_json::json!({"resources": [{"id": "a:2"}, {"id": "a:1"}]}),
                "catalog.resources[2].id",
            ),
            (
                serde_json::json!({"resources": [{"id": "a:2"}, {"id": "a:2"}]}),
                "catalog.resources[2].id",
            ),
            (
                serde_json::json!({"resources": [{"id": "nope"}]}),
                "catalog.resources[1].id",
            ),
            (
                serde_json::json!({"resources": [{"id": "a:2"}], "edges": [{"from": "a:2", "to": "a:3"}]}),
                "catalog.edges[0].to",
            ),
        ] {
            let add = doc(add);
            let mut whole = base.clone();
            whole.resources.extend(add.resources.clone());
            whole.edges.extend(add.edges.clone());
            let expected = CatalogGraph::new(whole).unwrap_err();
            let mut g = CatalogGraph::new(base.clone()).unwrap();
            let err = g.extend(add).unwrap_err();
            assert_eq!(err, expected);
            assert_eq!(err.field, field);
            assert_eq!(g.catalog(), &base);
            assert_eq!(g.graph().node_count(), 1);
            assert_eq!(g.node("a:2"), None);
        }
    }

    #[test]
    fn containment_edges_link_every_ancestor() {
        let c = catalog(serde_json::json!({"resources": [
            {"id": "fs:/"}, {"id": "fs:/a"}, {"id": "fs:/a/b"}, {"id": "fs:/ab"}
        ]}))
        .unwrap();
        let (out, _) = c.neighbours("fs:/a");
        let ids: Vec<_> = out.iter().map(|(r, _)| r.id.as_str()).collect();
        assert_eq!(ids, vec!["fs:/a/b"]);
        let (out, _) = c.neighbours("fs:/");
        assert_eq!(out.len(), 3);
    }
}
