//! A whole catalog from a risk officer's file: the preview of what making
//! it the gate's catalog would change (the diff, and the held and recent
//! writes it would decide differently), and the replacement itself, with
//! its removals, as one audited change.

use recourse_client::{
    CatalogPlan, CatalogReplaced, CatalogReplacement, Permission, Redecided, WriteRecord,
    WriteStatus,
};
use recourse_core::catalog_diff;
use recourse_core::{Catalog, CatalogGraph};
use serde_json::json;

use super::Gate;
use crate::audit::AuditDraft;
use crate::auth::Caller;
use crate::error::GateError;
use crate::store::{StoreError, WriteFilter};

/// Recent writes a plan decides again when the request names no number,
/// and the most it may name (each is observed again: a probe per item).
const RECENT: u32 = 50;
const RECENT_MAX: u32 = 500;
/// Held writes a plan decides again, newest first.
const HELD_MAX: i64 = 1_000;
/// Tries of a replacement whose base version moved under it, when the
/// caller did not pin one.
const REPLACE_TRIES: usize = 3;

/// `catalog` checked as a whole catalog (errors name the field as
/// `POST /v1/catalog` does: `edges[1].to`), in canonical order.
fn checked(catalog: Catalog) -> Result<Catalog, GateError> {
    catalog_diff::check_document(&catalog)
        .map_err(|e| GateError::invalid(e.field.trim_start_matches("catalog."), e.message))?;
    Ok(catalog_diff::canonical(catalog))
}

fn graph(catalog: Catalog) -> Result<CatalogGraph, GateError> {
    CatalogGraph::new(catalog).map_err(|e| {
        GateError::Store(StoreError::Corrupt(format!(
            "stored catalog is invalid: {e}"
        )))
    })
}

impl Gate {
    /// What making the catalog exactly `req.catalog` would change: the
    /// diff against the stored catalog, and each held or recent write whose
    /// decision would differ (both decisions made now by the one engine,
    /// with the same observations). Stores and audits nothing.
    pub async fn plan_catalog(
        &self,
        caller: &Caller,
        req: CatalogReplacement,
    ) -> Result<CatalogPlan, GateError> {
        caller.allow(Permission::EditCatalog)?;
        let proposed = checked(req.catalog)?;
        let recent = req.recent.unwrap_or(RECENT).min(RECENT_MAX);
        let (current, version) = self.store.catalog().await?;
        let diff = catalog_diff::diff(&current, &proposed);
        let before = graph(current)?;
        let after = CatalogGraph::new(proposed)
            .map_err(|e| GateError::invalid(e.field.trim_start_matches("catalog."), e.message))?;

        let mut writes = self
            .store
            .writes(&WriteFilter {
                status: Some(WriteStatus::Held),
                limit: Some(HELD_MAX),
                ..Default::default()
            })
            .await?;
        // Refused writes were refused by the gate, whatever the catalog.
        writes.extend(
            self.store
                .writes(&WriteFilter {
                    limit: Some(i64::from(recent) * 2 + 20),
                    ..Default::default()
                })
                .await?
                .into_iter()
                .filter(|w| !matches!(w.status, WriteStatus::Held | WriteStatus::Refused))
                .take(recent as usize),
        );
        let mut plan = CatalogPlan {
            version,
            diff,
            examined: 0,
            writes: Vec::new(),
            skipped: Vec::new(),
        };
        for rec in writes {
            match self.redecide(&rec, &before, &after).await? {
                Ok(Some(changed)) => plan.writes.push(changed),
                Ok(None) => {}
                Err(why) => {
                    plan.skipped.push(format!("write `{}`: {why}", rec.id));
                    continue;
                }
            }
            plan.examined += 1;
        }
        Ok(plan)
    }

    /// `rec` decided now under both catalogs: `Some` when the verdict or
    /// the reasons differ; `Err` (a sentence) when it cannot be decided.
    async fn redecide(
        &self,
        rec: &WriteRecord,
        before: &CatalogGraph,
        after: &CatalogGraph,
    ) -> Result<Result<Option<Redecided>, String>, GateError> {
        let Some(connector) = self.connector(&rec.connector) else {
            return Ok(Err(format!(
                "this gate has no `{}` connector",
                rec.connector
            )));
        };
        let proposal = match self.raw_proposal(rec) {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("its proposal does not open ({e})"))),
        };
        let (b, a) = self
            .evaluate_under(before, after, &rec.id, &proposal, connector.as_ref())
            .await?;
        let (added, removed) = catalog_diff::reasons_changed(&b, &a);
        if b.decision == a.decision && added.is_empty() && removed.is_empty() {
            return Ok(Ok(None));
        }
        Ok(Ok(Some(Redecided {
            id: rec.id.clone(),
            agent: rec.agent.clone(),
            intent: self.masked_text(&rec.proposal.intent),
            status: rec.status,
            touches: rec.proposal.touches.clone(),
            before: b.decision,
            after: a.decision,
            reasons_added: added.iter().map(|r| self.masked(r)).collect(),
            reasons_removed: removed.iter().map(|r| self.masked(r)).collect(),
        })))
    }

    /// Makes the catalog exactly `req.catalog`: additions, changes and
    /// removals, in one transaction with one `catalog.replaced` audit entry
    /// that names them (its diff). Refused whole when the catalog is
    /// invalid (400 naming the field) or, with `expect_version`, when the
    /// catalog moved since (409 `catalog_moved`). No change: nothing stored
    /// or audited. Every gate's cache reads the new catalog afresh.
    pub async fn replace_catalog(
        &self,
        caller: &Caller,
        req: CatalogReplacement,
    ) -> Result<CatalogReplaced, GateError> {
        caller.allow(Permission::EditCatalog)?;
        let reason = match req.reason.as_deref().map(str::trim) {
            Some("") => return Err(GateError::invalid("reason", "must not be blank")),
            r => r.map(str::to_string),
        };
        let proposed = checked(req.catalog)?;
        for _ in 0..REPLACE_TRIES {
            let (current, version) = self.store.catalog().await?;
            if let Some(expected) = req.expect_version {
                if expected != version {
                    return Err(moved(expected, version));
                }
            }
            let diff = catalog_diff::diff(&current, &proposed);
            if diff.is_empty() {
                return Ok(CatalogReplaced {
                    version_before: version,
                    version,
                    diff,
                });
            }
            let mut body = json!({"summary": diff.summary(), "version_before": version,
                       "resources": proposed.resources.len(), "edges": proposed.edges.len(),
                       "diff": diff});
            if let Some(r) = &reason {
                body["reason"] = json!(r);
            }
            let draft = AuditDraft::new(&caller.name, "catalog.replaced", None, body);
            match self
                .store
                .replace_catalog(&proposed, version, draft)
                .await?
            {
                Some(after) => {
                    // Never extended in place: a removal must reach the cache.
                    self.refresh_catalog().await?;
                    return Ok(CatalogReplaced {
                        version_before: version,
                        version: after,
                        diff,
                    });
                }
                None if req.expect_version.is_some() => {
                    let now = self.store.catalog_version().await?;
                    return Err(moved(version, now));
                }
                None => continue,
            }
        }
        Err(GateError::conflict(
            recourse_client::ErrorCode::CatalogMoved,
            "the catalog kept changing while it was being replaced; plan again and retry",
        ))
    }
}

fn moved(expected: i64, now: i64) -> GateError {
    GateError::conflict(
        recourse_client::ErrorCode::CatalogMoved,
        format!(
            "the catalog is at version {now}, not {expected}: it changed since the plan; plan again"
        ),
    )
}

#[cfg(test)]
mod tests {
    use recourse_client::{CatalogReplacement, Role, WriteStatus};
    use recourse_core::{Catalog, Verdict};
    use serde_json::json;

    use crate::error::GateError;
    use crate::store::{AuditStore, CatalogStore};
    use crate::testing::{who, world, World};
    use crate::{Gate, GateConfig};

    fn doc(v: serde_json::Value) -> Catalog {
        serde_json::from_value(v).unwrap()
    }

    /// `fake:a` (the institution's) reaches `ext:b` (a customer's): a
    /// write on `fake:a` is held for the customer.
    fn with_edge() -> Catalog {
        doc(json!({
            "resources": [{"id": "ext:b", "bearer": "customer"}, {"id": "fake:a", "bearer": "institution"}],
            "edges": [{"from": "fake:a", "to": "ext:b", "why": "a feeds b"}]
        }))
    }

    fn without_edge() -> Catalog {
        Catalog {
            edges: vec![],
            ..with_edge()
        }
    }

    fn req(catalog: Catalog) -> CatalogReplacement {
        CatalogReplacement {
            catalog,
            expect_version: None,
            recent: None,
            reason: None,
        }
    }

    async fn held_write(w: &World) -> String {
        w.store
            .upsert_catalog(&with_edge(), true, None)
            .await
            .unwrap();
        let body = json!({"intent": "test", "action": {"connector": "fake", "target": "a"}});
        let rec = w
            .gate
            .submit(&who("bot", Role::Agent), body)
            .await
            .unwrap()
            .0;
        assert_eq!(rec.status, WriteStatus::Held);
        rec.id
    }

    #[tokio::test]
    async fn a_plan_shows_the_held_write_that_would_proceed_and_stores_nothing() {
        let w = world();
        let id = held_write(&w).await;
        let officer = who("ro", Role::RiskOfficer);
        let (entries, version) = (
            w.store.audit(0, 1000).await.unwrap().len(),
            w.store.catalog_version().await.unwrap(),
        );
        let plan = w
            .gate
            .plan_catalog(&officer, req(without_edge()))
            .await
            .unwrap();
        assert_eq!(plan.version, version);
        assert_eq!(plan.diff.edges_removed.len(), 1);
        assert_eq!(plan.diff.summary(), "1 edge removed");
        assert_eq!(plan.examined, 1);
        assert_eq!(plan.writes.len(), 1);
        let changed = &plan.writes[0];
        assert_eq!(changed.id, id);
        assert_eq!(
            (changed.before, changed.after),
            (Verdict::Hold, Verdict::Proceed)
        );
        let gone: Vec<_> = changed
            .reasons_removed
            .iter()
            .map(|r| (r.code, r.subject()))
            .collect();
        use recourse_core::ReasonCode::{ThirdPartyBearer, Uncovered};
        assert_eq!(
            gone,
            vec![
                (Uncovered, "ext:b".into()),
                (ThirdPartyBearer, "ext:b".into())
            ]
        );
        assert!(changed.reasons_added.is_empty());
        // The same catalog: no change, and no write decided differently.
        let same = w
            .gate
            .plan_catalog(&officer, req(with_edge()))
            .await
            .unwrap();
        assert!(same.diff.is_empty() && same.writes.is_empty(), "{same:?}");
        assert_eq!(w.store.audit(0, 1000).await.unwrap().len(), entries);
        assert_eq!(w.store.catalog_version().await.unwrap(), version);
    }

    /// The cache's in-place growth must never keep what a replacement
    /// removed: another gate on the same store replaces the catalog, and
    /// this gate (whose cache holds the edge) decides without it, also
    /// after an addition of its own.
    #[tokio::test]
    async fn a_removed_edge_reaches_another_gates_cache() {
        let w = world();
        let _held = held_write(&w).await;
        assert!(w
            .gate
            .with_catalog(|g| g.catalog().edges.len() == 1)
            .await
            .unwrap());
        let other = Gate::with_clock(
            w.store.clone(),
            vec![w.fake.clone()],
            GateConfig::default(),
            w.clock.clone(),
        );
        let mut file = without_edge();
        // The file keeps what the write discovered, as an export does.
        let (stored, _) = w.store.catalog().await.unwrap();
        file.resources = stored.resources;
        let done = other
            .replace_catalog(&who("ro", Role::RiskOfficer), req(file))
            .await
            .unwrap();
        assert_eq!(done.version, done.version_before + 1);
        // This gate adds what it discovered, its cache not refreshed first
        // (the in-place path: the store moves on from the replacement's
        // version, which the cache must not adopt with the old graph) ...
        let mine = doc(json!({"resources": [{"id": "fake:new"}]}));
        let draft = crate::audit::AuditDraft::new("bot", "catalog.discovered", None, json!({}));
        w.gate.add_discovered(&mine, draft).await.unwrap();
        // ... and still has no edge, and a new write on `fake:a` runs.
        assert_eq!(
            w.gate
                .read_catalog(|g| g.catalog().edges.len())
                .await
                .unwrap(),
            0
        );
        let body = json!({"intent": "again", "action": {"connector": "fake", "target": "a"}});
        let rec = w
            .gate
            .submit(&who("bot", Role::Agent), body)
            .await
            .unwrap()
            .0;
        assert_eq!(rec.status, WriteStatus::Executed);
    }

    #[tokio::test]
    async fn a_replacement_is_one_audited_change_or_nothing() {
        let w = world();
        held_write(&w).await;
        let officer = who("ro", Role::RiskOfficer);
        let (before, version) = w.store.catalog().await.unwrap();
        let entries = w.store.audit(0, 1000).await.unwrap().len();

        // An agent may not; a dangling edge and a duplicate id are refused
        // whole, naming the field; a stale version is a conflict.
        let err = w
            .gate
            .replace_catalog(&who("bot", Role::Agent), req(without_edge()))
            .await
            .unwrap_err();
        assert!(matches!(err, GateError::Forbidden(_)), "{err:?}");
        let dangling =
            doc(json!({"resources": [{"id": "a:1"}], "edges": [{"from": "a:1", "to": "a:2"}]}));
        let err = w
            .gate
            .replace_catalog(&officer, req(dangling))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.field()), (400, Some("edges[0].to")));
        let twice = doc(json!({"resources": [{"id": "a:1"}, {"id": "a:1"}]}));
        let err = w
            .gate
            .replace_catalog(&officer, req(twice))
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("resources[1].id"));
        let stale = CatalogReplacement {
            expect_version: Some(version - 1),
            ..req(without_edge())
        };
        let err = w.gate.replace_catalog(&officer, stale).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (409, recourse_client::ErrorCode::CatalogMoved)
        );
        assert_eq!(w.store.catalog().await.unwrap(), (before.clone(), version));
        assert_eq!(w.store.audit(0, 1000).await.unwrap().len(), entries);

        // The file: the edge and the discovered `fake:a`'s entry go.
        let blank = CatalogReplacement {
            reason: Some("  ".into()),
            ..req(without_edge())
        };
        let err = w.gate.replace_catalog(&officer, blank).await.unwrap_err();
        assert_eq!((err.status(), err.field()), (400, Some("reason")));
        assert_eq!(w.store.catalog().await.unwrap(), (before.clone(), version));
        let pinned = CatalogReplacement {
            expect_version: Some(version),
            reason: Some("the ledger moved to the new bucket".into()),
            ..req(doc(
                json!({"resources": [{"id": "ext:b", "bearer": "customer"}]}),
            ))
        };
        let done = w.gate.replace_catalog(&officer, pinned).await.unwrap();
        assert_eq!(done.diff.resources_removed.len(), 1);
        assert_eq!(done.diff.edges_removed.len(), 1);
        let (after, v) = w.store.catalog().await.unwrap();
        assert_eq!(v, version + 1);
        assert_eq!(
            after,
            doc(json!({"resources": [{"id": "ext:b", "bearer": "customer"}]}))
        );
        let trail = w.store.audit(0, 1000).await.unwrap();
        assert_eq!(trail.len(), entries + 1);
        let last = trail.last().unwrap();
        assert_eq!(last.action, "catalog.replaced");
        assert_eq!(last.actor, "ro");
        assert_eq!(last.body["diff"]["edges_removed"][0]["to"], "ext:b");
        assert_eq!(last.body["summary"], "1 resource removed, 1 edge removed");
        assert_eq!(last.body["reason"], "the ledger moved to the new bucket");
        // Applying it again changes nothing and audits nothing.
        let again = w
            .gate
            .replace_catalog(&officer, req(after.clone()))
            .await
            .unwrap();
        assert_eq!((again.version_before, again.version), (v, v));
        assert_eq!(w.store.audit(0, 1000).await.unwrap().len(), entries + 1);
    }
}
