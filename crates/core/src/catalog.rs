//! The institution's state as a directed graph: resources, and edges that say
//! a change to one reaches another (section 1 of the contract).

use rustc_hash::FxHashMap as HashMap;

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
#[derive(Debug, Clone)]
pub struct CatalogGraph {
    catalog: Catalog,
    graph: DiGraph<(), Link, u32>,
    index: HashMap<String, NodeIndex<u32>>,
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
        for resource in &catalog.resources {
            let Some(&node) = index.get(&resource.id) else {
                continue;
            };
            for ancestor in id::fs_ancestors(&resource.id) {
                if let Some(&up) = index.get(ancestor) {
                    graph.add_edge(up, node, Link::Contains);
                }
            }
        }
        Ok(Self {
            catalog,
            graph,
            index,
        })
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
