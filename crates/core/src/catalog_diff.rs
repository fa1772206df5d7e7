//! A whole catalog as a document kept under version control ("catalog as
//! code"): its canonical order, the checks a replacement must pass, and what
//! changes between two catalogs, field by field. Also which reasons appear
//! and go between two decisions of one write, for the preview of an edit.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{Catalog, CatalogGraph, Edge, Resource};
use crate::decision::{Decision, Reason};
use crate::error::InputError;

/// `catalog` in its canonical order: resources by id, edges by their ends.
/// Two catalogs with the same content are then the same document, and a
/// file written from one changes by as few lines as the catalog does.
pub fn canonical(mut catalog: Catalog) -> Catalog {
    catalog.resources.sort_by(|a, b| a.id.cmp(&b.id));
    // Labels keep their insertion order when serde_json preserves it.
    for labels in catalog
        .resources
        .iter_mut()
        .filter_map(|r| r.labels.as_mut())
    {
        let mut sorted: Vec<_> = std::mem::take(labels).into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        *labels = sorted.into_iter().collect();
    }
    catalog
        .edges
        .sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    catalog
}

/// Checks a catalog that is to become the whole catalog: what
/// [`CatalogGraph::new`] checks (ids, duplicate resources, edges naming
/// unknown resources, probe prefixes), and one edge per pair of ends (the
/// store keeps one edge from `a` to `b`; a second would silently replace the
/// first). Errors name the field: `catalog.edges[3].to`.
pub fn check_document(catalog: &Catalog) -> Result<(), InputError> {
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, e) in catalog.edges.iter().enumerate() {
        if let Some(first) = seen.insert((e.from.as_str(), e.to.as_str()), i) {
            return Err(InputError::new(
                format!("catalog.edges[{i}]"),
                format!(
                    "duplicate edge `{}` -> `{}` (also catalog.edges[{first}])",
                    e.from, e.to
                ),
            ));
        }
    }
    CatalogGraph::new(catalog.clone()).map(|_| ())
}

/// One field of a resource or an edge that differs; `None` where the field
/// is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct FieldChange {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub after: Option<Value>,
}

/// A resource in both catalogs whose fields differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct ResourceChange {
    pub id: String,
    pub fields: Vec<FieldChange>,
}

/// An edge in both catalogs whose `why` differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct EdgeChange {
    pub from: String,
    pub to: String,
    pub fields: Vec<FieldChange>,
}

/// What turns one catalog into another. Resources are matched by id, edges
/// by their two ends; every list is sorted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct CatalogDiff {
    pub resources_added: Vec<Resource>,
    pub resources_removed: Vec<Resource>,
    pub resources_changed: Vec<ResourceChange>,
    pub edges_added: Vec<Edge>,
    pub edges_removed: Vec<Edge>,
    pub edges_changed: Vec<EdgeChange>,
}

impl CatalogDiff {
    pub fn is_empty(&self) -> bool {
        self.resources_added.is_empty()
            && self.resources_removed.is_empty()
            && self.resources_changed.is_empty()
            && self.edges_added.is_empty()
            && self.edges_removed.is_empty()
            && self.edges_changed.is_empty()
    }

    /// "2 resources added, 1 edge removed", or "no change".
    pub fn summary(&self) -> String {
        let parts: Vec<String> = [
            (self.resources_added.len(), "resource", "added"),
            (self.resources_removed.len(), "resource", "removed"),
            (self.resources_changed.len(), "resource", "changed"),
            (self.edges_added.len(), "edge", "added"),
            (self.edges_removed.len(), "edge", "removed"),
            (self.edges_changed.len(), "edge", "changed"),
        ]
        .into_iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, what, how)| format!("{n} {what}{} {how}", if n == 1 { "" } else { "s" }))
        .collect();
        if parts.is_empty() {
            "no change".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The fields of a serialized resource or edge, absent ones left out (as
/// the contract's JSON leaves them out), so a field added to [`Resource`]
/// later is compared without a change here.
fn fields<T: Serialize>(t: &T) -> BTreeMap<String, Value> {
    match serde_json::to_value(t) {
        Ok(Value::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

fn field_changes<T: Serialize>(before: &T, after: &T, skip: &[&str]) -> Vec<FieldChange> {
    let (b, a) = (fields(before), fields(after));
    let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    names
        .into_iter()
        .filter(|n| !skip.contains(&n.as_str()))
        .filter_map(|n| {
            let (x, y) = (b.get(n), a.get(n));
            (x != y).then(|| FieldChange {
                field: n.clone(),
                before: x.cloned(),
                after: y.cloned(),
            })
        })
        .collect()
}

/// What changes from `before` to `after`.
pub fn diff(before: &Catalog, after: &Catalog) -> CatalogDiff {
    let old: BTreeMap<&str, &Resource> = before
        .resources
        .iter()
        .map(|r| (r.id.as_str(), r))
        .collect();
    let new: BTreeMap<&str, &Resource> =
        after.resources.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut d = CatalogDiff::default();
    for (id, r) in &new {
        match old.get(id) {
            None => d.resources_added.push((*r).clone()),
            Some(o) => {
                let fields = field_changes(*o, *r, &["id"]);
                if !fields.is_empty() {
                    d.resources_changed.push(ResourceChange {
                        id: (*id).to_string(),
                        fields,
                    });
                }
            }
        }
    }
    d.resources_removed = old
        .iter()
        .filter(|(id, _)| !new.contains_key(*id))
        .map(|(_, r)| (*r).clone())
        .collect();
    let ends = |e: &'_ Edge| (e.from.clone(), e.to.clone());
    let old_e: BTreeMap<(String, String), &Edge> =
        before.edges.iter().map(|e| (ends(e), e)).collect();
    let new_e: BTreeMap<(String, String), &Edge> =
        after.edges.iter().map(|e| (ends(e), e)).collect();
    for (key, e) in &new_e {
        match old_e.get(key) {
            None => d.edges_added.push((*e).clone()),
            Some(o) => {
                let fields = field_changes(*o, *e, &["from", "to"]);
                if !fields.is_empty() {
                    d.edges_changed.push(EdgeChange {
                        from: key.0.clone(),
                        to: key.1.clone(),
                        fields,
                    });
                }
            }
        }
    }
    d.edges_removed = old_e
        .iter()
        .filter(|(k, _)| !new_e.contains_key(*k))
        .map(|(_, e)| (*e).clone())
        .collect();
    d
}

/// The reasons of `after` that `before` lacks, and those of `before` that
/// `after` lacks, matched by code and subject (as the decision hash
/// matches them: wording and paths may differ without a change).
pub fn reasons_changed<'a>(
    before: &'a Decision<'_>,
    after: &'a Decision<'_>,
) -> (Vec<Reason<'static>>, Vec<Reason<'static>>) {
    let key = |r: &Reason<'_>| (r.code, r.subject());
    let b: BTreeSet<_> = before.reasons.iter().map(key).collect();
    let a: BTreeSet<_> = after.reasons.iter().map(key).collect();
    let appear = after
        .reasons
        .iter()
        .filter(|r| !b.contains(&key(r)))
        .map(|r| r.clone().into_owned())
        .collect();
    let gone = before
        .reasons
        .iter()
        .filter(|r| !a.contains(&key(r)))
        .map(|r| r.clone().into_owned())
        .collect();
    (appear, gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Bearer, Reach};

    fn doc(json: Value) -> Catalog {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn canonical_sorts_resources_and_edges() {
        let c = canonical(doc(serde_json::json!({
            "resources": [{"id": "b:1"}, {"id": "a:2"}, {"id": "a:1"}],
            "edges": [{"from": "b:1", "to": "a:1"}, {"from": "a:2", "to": "b:1"}, {"from": "a:2", "to": "a:1"}]
        })));
        let ids: Vec<_> = c.resources.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a:1", "a:2", "b:1"]);
        let ends: Vec<_> = c
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        assert_eq!(ends, [("a:2", "a:1"), ("a:2", "b:1"), ("b:1", "a:1")]);
    }

    #[test]
    fn a_document_with_a_duplicate_or_a_dangling_edge_names_the_field() {
        let dup = doc(serde_json::json!({
            "resources": [{"id": "a:1"}, {"id": "a:2"}],
            "edges": [{"from": "a:1", "to": "a:2"}, {"from": "a:2", "to": "a:1"}, {"from": "a:1", "to": "a:2", "why": "again"}]
        }));
        let err = check_document(&dup).unwrap_err();
        assert_eq!(err.field, "catalog.edges[2]");
        assert!(err.message.contains("also catalog.edges[0]"), "{err}");
        let dangling = doc(serde_json::json!({
            "resources": [{"id": "a:1"}], "edges": [{"from": "a:1", "to": "a:9"}]
        }));
        assert_eq!(
            check_document(&dangling).unwrap_err().to_string(),
            "catalog.edges[0].to: unknown resource `a:9`"
        );
        let twice = doc(serde_json::json!({"resources": [{"id": "a:1"}, {"id": "a:1"}]}));
        assert_eq!(
            check_document(&twice).unwrap_err().field,
            "catalog.resources[1].id"
        );
        assert!(check_document(&doc(serde_json::json!({}))).is_ok());
    }

    #[test]
    fn diff_names_additions_removals_and_each_changed_field() {
        let before = doc(serde_json::json!({
            "resources": [
                {"id": "acct:1", "bearer": "customer", "title": "Account"},
                {"id": "lic:1", "reach": "external", "bearer": "customer"},
                {"id": "gone:1"}
            ],
            "edges": [
                {"from": "acct:1", "to": "lic:1", "why": "revokes licences"},
                {"from": "acct:1", "to": "gone:1"}
            ]
        }));
        let after = doc(serde_json::json!({
            "resources": [
                {"id": "new:1"},
                {"id": "lic:1", "reach": "external", "bearer": "customer"},
                {"id": "acct:1", "bearer": "institution", "kind": "account"}
            ],
            "edges": [
                {"from": "acct:1", "to": "lic:1", "why": "closing revokes licences"},
                {"from": "new:1", "to": "acct:1"}
            ]
        }));
        let d = diff(&before, &after);
        assert_eq!(d.resources_added, vec![Resource::new("new:1")]);
        assert_eq!(d.resources_removed, vec![Resource::new("gone:1")]);
        assert_eq!(d.resources_changed.len(), 1);
        let change = &d.resources_changed[0];
        assert_eq!(change.id, "acct:1");
        let fields: Vec<_> = change
            .fields
            .iter()
            .map(|f| (f.field.as_str(), f.before.clone(), f.after.clone()))
            .collect();
        assert_eq!(
            fields,
            vec![
                (
                    "bearer",
                    Some("customer".into()),
                    Some("institution".into())
                ),
                ("kind", None, Some("account".into())),
                ("title", Some("Account".into()), None),
            ]
        );
        assert_eq!(d.edges_added.len(), 1);
        assert_eq!(d.edges_added[0].from, "new:1");
        assert_eq!(d.edges_removed.len(), 1);
        assert_eq!(d.edges_removed[0].to, "gone:1");
        assert_eq!(d.edges_changed.len(), 1);
        assert_eq!(d.edges_changed[0].fields[0].field, "why");
        assert_eq!(
            d.summary(),
            "1 resource added, 1 resource removed, 1 resource changed, 1 edge added, 1 edge removed, 1 edge changed"
        );
        // The same content in another order is no change at all.
        assert!(diff(&before, &canonical(before.clone())).is_empty());
        assert_eq!(diff(&after, &after).summary(), "no change");
    }

    #[test]
    fn a_bearer_left_out_differs_from_the_institution() {
        // Left out, a resource inherits its container's bearer (a
        // discovered file under a customer-borne folder): not the same.
        let before = Catalog {
            resources: vec![Resource::new("fs:/a/b")],
            edges: vec![],
        };
        let after = Catalog {
            resources: vec![Resource {
                bearer: Some(Bearer::Institution),
                reach: Reach::Controlled,
                ..Resource::new("fs:/a/b")
            }],
            edges: vec![],
        };
        let d = diff(&before, &after);
        assert_eq!(d.resources_changed[0].fields[0].field, "bearer");
        assert_eq!(d.resources_changed[0].fields[0].before, None);
    }

    #[test]
    fn reasons_changed_matches_by_code_and_subject() {
        let catalog = |edges: Value| {
            CatalogGraph::new(doc(serde_json::json!({
                "resources": [{"id": "acct:1"}, {"id": "lic:1", "reach": "external"}],
                "edges": edges
            })))
            .unwrap()
        };
        let proposal: crate::Proposal = serde_json::from_value(serde_json::json!({
            "agent": "a", "intent": "i", "action": {"connector": "http"},
            "touches": ["acct:1"], "rollback": {"steps": []}
        }))
        .unwrap();
        let now = "2026-11-25T00:00:00Z".parse().unwrap();
        let with = catalog(serde_json::json!([{"from": "acct:1", "to": "lic:1"}]));
        let without = catalog(serde_json::json!([]));
        let obs = crate::Observations::new();
        let policy = crate::Policy::default();
        let before = crate::decide(&with, &proposal, &obs, now, &policy);
        let after = crate::decide(&without, &proposal, &obs, now, &policy);
        let (appear, gone) = reasons_changed(&before, &after);
        assert!(appear.is_empty());
        let gone: Vec<_> = gone.iter().map(|r| (r.code, r.subject())).collect();
        assert_eq!(gone, vec![(crate::ReasonCode::External, "lic:1".into())]);
        let (appear, _) = reasons_changed(&after, &before);
        assert_eq!(appear.len(), 1);
    }
}
