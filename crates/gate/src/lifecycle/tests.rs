//! The lifecycle in process: a memory store, a scripted connector and a
//! clock that moves only when told. Every legal move of the table is
//! exercised, every refused one is shown to change nothing, and each bug
//! the state-machine issue found has its regression test.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use chrono::Duration;
use recourse_client::{RestoreItem, RestoreStatus, Role, RollbackReport, WriteRecord, WriteStatus};
use recourse_connector::ConnectorError;
use recourse_core::{Catalog, Edge, EvidenceStatus};
use serde_json::json;

use super::machine::{Step, TABLE};
use super::{Gate, GateConfig};
use crate::auth::Caller;
use crate::error::GateError;
use crate::store::{AuditStore, CatalogStore, Claimed, MemoryStore, WriteStore};
use crate::testing::{push, resource, who, world, World};

impl World {
    /// The same store and clock, with other connectors (none: a gate that
    /// lacks the write's connector).
    fn gate_without_connector(&self) -> Gate {
        Gate::with_clock(
            self.store.clone(),
            Vec::new(),
            GateConfig::default(),
            self.clock.clone(),
        )
    }

    async fn catalog(&self, resources: &[(&str, &str)], edges: &[(&str, &str)]) {
        let add = Catalog {
            resources: resources.iter().map(|(id, b)| resource(id, b)).collect(),
            edges: edges
                .iter()
                .map(|(f, t)| serde_json::from_value::<Edge>(json!({"from": f, "to": t})).unwrap())
                .collect(),
        };
        self.store.upsert_catalog(&add, true, None).await.unwrap();
    }

    async fn submit(&self, target: &str) -> WriteRecord {
        let body = json!({"intent": "test", "action": {"connector": "fake", "target": target}});
        self.gate.submit(&agent(), body).await.unwrap().0
    }

    async fn status(&self, id: &str) -> WriteStatus {
        self.store.write(id).await.unwrap().unwrap().0.status
    }

    /// Past every lease and backoff.
    /// What someone with write access to the store (not to the gate) does:
    /// points a stored write elsewhere, re-hashing the record's own
    /// proposal hash too when `rehash`.
    async fn edit_stored_target(&self, id: &str, target: &str, rehash: bool) {
        let (mut rec, _) = self.store.write(id).await.unwrap().unwrap();
        rec.proposal.action["target"] = json!(target);
        if rehash {
            rec.proposal_hash = super::sha256_json(&rec.proposal);
        }
        self.store.put_write_raw(rec);
    }

    fn later(&self) {
        self.clock.advance(Duration::minutes(5));
    }
}

fn agent() -> Caller {
    who("bot", Role::Agent)
}
fn reviewer(n: u8) -> Caller {
    who(&format!("rev{n}"), Role::Reviewer)
}
fn lead() -> Caller {
    who("lead", Role::IncidentLead)
}
/// A reviewer's written reason: the writes here are mostly borne by a
/// customer or a patient, where the gate refuses an approval without one.
fn why() -> Option<String> {
    Some("checked with the team".into())
}

/// The moves the audit trail recorded: (from, action, to).
async fn moves(store: &MemoryStore) -> BTreeSet<(String, String, String)> {
    let entries = store.audit(0, 100_000).await.unwrap();
    entries
        .into_iter()
        .filter_map(|e| {
            let from = e.body.get("from")?.as_str()?.to_string();
            let to = e.body.get("to")?.as_str()?.to_string();
            Some((from, e.action, to))
        })
        .collect()
}

#[tokio::test]
async fn every_legal_move_is_exercised() {
    // On the heap: in a debug build this one future, with every write it
    // keeps, outgrew the test thread's 2 MiB stack (a stack overflow, not
    // a failure, under `cargo nextest run --workspace`).
    Box::pin(every_legal_move()).await;
}

async fn every_legal_move() {
    let w = world();
    w.catalog(
        &[
            ("fake:cust", "customer"),
            ("fake:pat", "patient"),
            ("other:p", "patient"),
        ],
        &[],
    )
    .await;

    // Proceed: executing -> captured -> executed; rollback -> rolled back.
    let a = w.submit("a").await;
    assert_eq!(a.status, WriteStatus::Executed);
    let a = w
        .gate
        .rollback(&lead(), &a.id, "test".into(), false)
        .await
        .unwrap();
    assert_eq!(a.status, WriteStatus::RolledBack);

    // Two approvals (a patient bears it): approval, approve, start, run.
    let b = w.submit("pat").await;
    assert_eq!(b.status, WriteStatus::Held);
    assert_eq!(b.required_approvals, 2);
    let b1 = w.gate.approve(&reviewer(1), &b.id, why()).await.unwrap();
    assert_eq!(b1.status, WriteStatus::Held);
    let b2 = w.gate.approve(&reviewer(2), &b.id, why()).await.unwrap();
    assert_eq!(b2.status, WriteStatus::Executed);

    // Reject; expire.
    let c = w.submit("cust").await;
    w.gate
        .reject(&reviewer(1), &c.id, "no".into())
        .await
        .unwrap();
    let d = w.submit("cust").await;
    w.clock.advance(Duration::days(8));
    assert_eq!(w.gate.expire_due().await.unwrap(), 1);
    assert_eq!(w.status(&d.id).await, WriteStatus::Expired);

    // Re-hold: the context changes between hold and approval.
    let e = w.submit("cust").await;
    w.catalog(&[], &[("fake:cust", "other:p")]).await;
    let e = w.gate.approve(&reviewer(1), &e.id, why()).await.unwrap();
    assert_eq!(e.status, WriteStatus::Held);

    // Approved on a gate without the connector: waits, approved.
    w.catalog(&[("fake:cust2", "customer")], &[]).await;
    let f = w.submit("cust2").await;
    assert_eq!(f.status, WriteStatus::Held, "{f:?}");
    let other = w.gate_without_connector();
    let f2 = other.approve(&reviewer(1), &f.id, why()).await.unwrap();
    assert_eq!(f2.status, WriteStatus::Approved);
    assert!(f2.waiting.is_some());
    w.later();
    w.gate.sweep().await.unwrap();
    assert_eq!(w.status(&f.id).await, WriteStatus::Executed);

    // Executing waits on an unreachable target, then the sweep runs it.
    push(&w.fake, |s| {
        s.execute
            .push_back(Err(ConnectorError::Unavailable("down".into())))
    });
    let g = w.submit("g").await;
    assert_eq!(g.status, WriteStatus::Executing);
    assert!(g.waiting.is_some());
    w.later();
    w.gate.sweep().await.unwrap();
    assert_eq!(w.status(&g.id).await, WriteStatus::Executed);

    // Nothing ran.
    push(&w.fake, |s| {
        s.execute
            .push_back(Err(ConnectorError::Io("refused".into())))
    });
    let h = w.submit("h").await;
    assert_eq!(h.status, WriteStatus::Failed);

    // Outcome unknown: resolved both ways.
    for ran in [true, false] {
        push(&w.fake, |s| {
            s.execute
                .push_back(Err(ConnectorError::Uncertain("timeout".into())));
            s.applied.push_back(Ok(None));
        });
        let i = w.submit("i").await;
        assert_eq!(i.status, WriteStatus::OutcomeUnknown);
        let i = w
            .gate
            .resolve(&lead(), &i.id, ran, "checked".into())
            .await
            .unwrap();
        assert_eq!(
            i.status,
            if ran {
                WriteStatus::Executed
            } else {
                WriteStatus::Failed
            }
        );
    }

    // Rollback: drift; did not verify, then again; waits, then finishes.
    let j = w.submit("j").await;
    push(&w.fake, |s| {
        s.restore.push_back(Ok(RollbackReport {
            verified: false,
            items: vec![RestoreItem {
                resource: "fake:j".into(),
                status: RestoreStatus::Drift,
                detail: None,
            }],
            forced: false,
        }))
    });
    let j = w
        .gate
        .rollback(&lead(), &j.id, "t".into(), false)
        .await
        .unwrap();
    assert_eq!(j.status, WriteStatus::Executed);
    push(&w.fake, |s| {
        s.restore.push_back(Err(ConnectorError::Io("cut".into())))
    });
    let j = w
        .gate
        .rollback(&lead(), &j.id, "t".into(), false)
        .await
        .unwrap();
    assert_eq!(j.status, WriteStatus::RollbackFailed);
    push(&w.fake, |s| {
        s.restore
            .push_back(Err(ConnectorError::Unavailable("down".into())))
    });
    let j = w
        .gate
        .rollback(&lead(), &j.id, "t".into(), false)
        .await
        .unwrap();
    assert_eq!(j.status, WriteStatus::RollingBack);
    w.later();
    w.gate.sweep().await.unwrap();
    assert_eq!(w.status(&j.id).await, WriteStatus::RolledBack);

    // A restore that sends (not resumable): its sending is recorded first.
    w.fake
        .sends
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let m = w.submit("m").await;
    let m = w
        .gate
        .rollback(&lead(), &m.id, "t".into(), false)
        .await
        .unwrap();
    assert_eq!(m.status, WriteStatus::RolledBack);
    w.fake
        .sends
        .store(false, std::sync::atomic::Ordering::SeqCst);

    // The stored write edited after it was submitted: refused before it
    // runs, from approved (the approve path) and from executing (a sweep).
    w.catalog(&[("fake:cust3", "customer")], &[]).await;
    let k = w.submit("cust3").await;
    assert_eq!(k.status, WriteStatus::Held);
    w.edit_stored_target(&k.id, "elsewhere", false).await;
    let k = w.gate.approve(&reviewer(1), &k.id, why()).await.unwrap();
    assert_eq!(k.status, WriteStatus::Failed);
    push(&w.fake, |s| {
        s.execute
            .push_back(Err(ConnectorError::Unavailable("down".into())))
    });
    let l = w.submit("l").await;
    assert_eq!(l.status, WriteStatus::Executing);
    w.edit_stored_target(&l.id, "elsewhere", true).await;
    w.later();
    w.gate.sweep().await.unwrap();
    assert_eq!(w.status(&l.id).await, WriteStatus::Failed);

    let expected: BTreeSet<(String, String, String)> = TABLE
        .iter()
        .map(|(f, s, t)| {
            (
                f.as_str().to_string(),
                s.action().to_string(),
                t.as_str().to_string(),
            )
        })
        .collect();
    let seen = moves(&w.store).await;
    let missing: Vec<_> = expected.difference(&seen).collect();
    assert!(missing.is_empty(), "moves never exercised: {missing:?}");
    let illegal: Vec<_> = seen.difference(&expected).collect();
    assert!(illegal.is_empty(), "moves outside the table: {illegal:?}");
    assert_eq!(seen.len(), TABLE.len());
}

/// A rollback whose restore sends what cannot be asked about afterwards is
/// never sent twice: cut after it may have sent (here a timeout; a crash
/// leaves the same record), the sweep does not call it again, and a person
/// is told what may have been sent.
#[tokio::test]
async fn a_compensation_that_may_have_been_sent_is_not_sent_again() {
    let w = world();
    w.fake
        .sends
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let a = w.submit("a").await;
    assert_eq!(a.status, WriteStatus::Executed);
    push(&w.fake, |s| {
        s.restore.push_back(Err(ConnectorError::Unavailable(
            "timed out after sending".into(),
        )))
    });
    let a = w
        .gate
        .rollback(&lead(), &a.id, "t".into(), false)
        .await
        .unwrap();
    assert_eq!(a.status, WriteStatus::RollingBack);
    let sent = a.rollback.as_ref().unwrap();
    assert!(
        sent.items.iter().all(|i| i.status == RestoreStatus::Sent) && !sent.items.is_empty(),
        "{sent:?}"
    );
    w.later();
    w.gate.sweep().await.unwrap();
    let (after, _) = w.store.write(&a.id).await.unwrap().unwrap();
    assert_eq!(after.status, WriteStatus::RollbackFailed);
    assert_eq!(
        w.fake.restores.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "restore was called once"
    );
    assert!(after
        .rollback
        .as_ref()
        .unwrap()
        .items
        .iter()
        .any(|i| i.status == RestoreStatus::Sent));
    // A person who checked sends it again, deliberately: a new rollback.
    let again = w
        .gate
        .rollback(&lead(), &a.id, "the cancel did not arrive".into(), false)
        .await
        .unwrap();
    assert_eq!(again.status, WriteStatus::RolledBack);
    assert_eq!(w.fake.restores.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A person's commands against a write in every status: legal where the
/// table has the move, refused (409, nothing stored, nothing audited)
/// everywhere else.
#[tokio::test]
async fn refused_moves_change_nothing() {
    let commands = [
        Step::Approve,
        Step::Reject,
        Step::Rollback,
        Step::ResolveRan,
        Step::ResolveNotRun,
    ];
    let mut refused = 0;
    let mut legal = 0;
    for status in WriteStatus::ALL {
        for step in commands {
            let w = world();
            w.catalog(&[("fake:cust", "customer")], &[]).await;
            let mut rec = w.submit("cust").await;
            rec.status = status;
            w.store.put_write_raw(rec.clone());
            let (_, version) = w.store.write(&rec.id).await.unwrap().unwrap();
            let audit_before = w.store.audit(0, 100_000).await.unwrap().len();
            let result = match step {
                Step::Approve => w.gate.approve(&reviewer(1), &rec.id, why()).await,
                Step::Reject => w.gate.reject(&reviewer(1), &rec.id, "r".into()).await,
                Step::Rollback => w.gate.rollback(&lead(), &rec.id, "r".into(), false).await,
                Step::ResolveRan => w.gate.resolve(&lead(), &rec.id, true, "r".into()).await,
                _ => w.gate.resolve(&lead(), &rec.id, false, "r".into()).await,
            };
            let allowed = super::machine::next(status, step).is_some()
                || (step == Step::Approve
                    && super::machine::next(status, Step::Approval).is_some());
            if allowed {
                legal += 1;
                assert!(result.is_ok(), "{status:?} x {step:?}: {result:?}");
            } else {
                refused += 1;
                match result {
                    Err(GateError::Conflict {
                        code: recourse_client::ErrorCode::WrongStatus,
                        ..
                    }) => {}
                    other => panic!("{status:?} x {step:?} should be refused: {other:?}"),
                }
                let (after, v) = w.store.write(&rec.id).await.unwrap().unwrap();
                assert_eq!(v, version, "{status:?} x {step:?} changed the write");
                assert_eq!(after.status, status);
                let audit_after = w.store.audit(0, 100_000).await.unwrap().len();
                assert_eq!(
                    audit_before, audit_after,
                    "{status:?} x {step:?} left an audit entry"
                );
            }
        }
    }
    assert_eq!(legal + refused, WriteStatus::ALL.len() * commands.len());
    assert_eq!(legal, 6, "held x approve/reject, executed and rollback_failed x rollback, outcome_unknown x resolve both ways");
}

/// Reproduced before the fix: a customer-borne write held (one approval
/// needed); a patient's record joins its blast radius; the first approval
/// re-verifies and holds it again, and ONE more approval ran it, though a
/// patient needs two.
#[tokio::test]
async fn a_rehold_needs_the_approvals_its_new_decision_calls_for() {
    let w = world();
    w.catalog(&[("fake:acct", "customer"), ("chart:7", "patient")], &[])
        .await;
    let rec = w.submit("acct").await;
    assert_eq!(rec.required_approvals, 1);
    w.catalog(&[], &[("fake:acct", "chart:7")]).await;
    let rec = w.gate.approve(&reviewer(1), &rec.id, why()).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Held);
    assert_eq!(rec.required_approvals, 2, "the new decision's approvals");
    // The note says what changed, not only that something did.
    let note = rec
        .history
        .last()
        .and_then(|t| t.note.clone())
        .unwrap_or_default();
    assert!(
        note.contains("new: third_party_bearer on `chart:7`")
            && note.contains("blast radius 1 → 2 resources"),
        "{note}"
    );
    let rec = w.gate.approve(&reviewer(2), &rec.id, why()).await.unwrap();
    assert_eq!(
        rec.status,
        WriteStatus::Held,
        "one approval of two must not run it"
    );
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 0);
    let rec = w.gate.approve(&reviewer(3), &rec.id, why()).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Executed);
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 1);
}

/// Found by the path attacks (issue 14): a held delete whose file was
/// swapped for a link before the approval ran, removing the link: not what
/// the reviewer approved. What the connector finds at the target now binds
/// the approval with the decision: re-verification plans the write again,
/// holds it when a target changed, and the approval given for the file
/// does not count for the link.
#[tokio::test]
async fn a_target_replaced_while_held_holds_the_write_again() {
    let w = world();
    w.catalog(&[("fake:acct", "customer")], &[]).await;
    *w.fake.found.lock().unwrap() = Some("fs.file".into());
    let rec = w.submit("acct").await;
    assert_eq!(rec.status, WriteStatus::Held);
    assert_eq!(
        rec.targets.get("fake:acct").map(String::as_str),
        Some("fs.file")
    );

    *w.fake.found.lock().unwrap() = Some("fs.symlink".into());
    let rec = w.gate.approve(&reviewer(1), &rec.id, why()).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Held, "a target changed: {rec:?}");
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 0);
    let note = rec
        .history
        .last()
        .and_then(|t| t.note.clone())
        .unwrap_or_default();
    assert!(
        note.contains("`fake:acct` was fs.file, now fs.symlink"),
        "the note names the change: {note}"
    );
    assert_eq!(
        rec.targets.get("fake:acct").map(String::as_str),
        Some("fs.symlink")
    );

    // Approved again, for what stands there now: it runs.
    let rec = w.gate.approve(&reviewer(2), &rec.id, why()).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Executed, "{rec:?}");
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 1);
}

/// A target as it was when the write was decided runs on the first
/// approval (the binding is not a re-hold on every approval).
#[tokio::test]
async fn an_unchanged_target_runs_on_its_approval() {
    let w = world();
    w.catalog(&[("fake:acct", "customer")], &[]).await;
    *w.fake.found.lock().unwrap() = Some("fs.file".into());
    let rec = w.submit("acct").await;
    let rec = w.gate.approve(&reviewer(1), &rec.id, why()).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Executed, "{rec:?}");
}

/// Found in the audit of issue 10: a write held only because the gate was
/// frozen, approved after the resume, is re-verified, and its new decision
/// (`proceed`, the freeze gone) differs, so it is held again. The expiry of
/// a hold followed the verdict (`hold` only), so this held write had none
/// and waited for a person for ever. A write that is held again keeps
/// expiring like any hold.
#[tokio::test]
async fn a_write_held_again_expires_like_any_hold() {
    let w = world();
    w.gate
        .set_freeze(&lead(), true, Some("incident".into()))
        .await
        .unwrap();
    let rec = w.submit("x").await;
    assert_eq!(rec.status, WriteStatus::Held);
    w.gate.set_freeze(&lead(), false, None).await.unwrap();
    let rec = w.gate.approve(&reviewer(1), &rec.id, why()).await.unwrap();
    assert_eq!(
        rec.status,
        WriteStatus::Held,
        "held again: its decision changed"
    );
    assert!(rec.expires_at.is_some(), "a held write expires: {rec:?}");
    w.clock.advance(Duration::days(8));
    assert_eq!(w.gate.expire_due().await.unwrap(), 1);
    assert_eq!(w.status(&rec.id).await, WriteStatus::Expired);
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 0);
}

/// Reproduced before the fix: a freeze state that does not decode was read
/// as "not frozen". Now nothing runs and nothing is approved.
#[tokio::test]
async fn an_undecodable_freeze_fails_closed() {
    let w = world();
    w.catalog(&[("fake:cust", "customer")], &[]).await;
    let held = w.submit("cust").await;
    w.store.plant_raw_freeze("{not json");
    let body = json!({"intent": "t", "action": {"connector": "fake", "target": "x"}});
    assert!(w.gate.submit(&agent(), body).await.is_err());
    assert!(w.gate.approve(&reviewer(1), &held.id, why()).await.is_err());
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 0);
    assert_eq!(w.status(&held.id).await, WriteStatus::Held);
}

/// A freeze acknowledged between a write's approval and its claim: the
/// write does not begin executing, and is not held again either (its
/// approvals stand); once an incident lead resumes, the sweep runs it,
/// once. (Before, the sweep re-verified it under the freeze and held it
/// again, to be approved anew.)
#[tokio::test]
async fn a_write_approved_before_a_freeze_waits_approved_and_runs_after_the_resume() {
    let w = world();
    w.catalog(&[("fake:cust", "customer")], &[]).await;
    let mut rec = w.submit("cust").await;
    assert_eq!(rec.status, WriteStatus::Held);
    // Approved (by the reviewers it needed), and not yet claimed.
    rec.status = WriteStatus::Approved;
    w.store.put_write_raw(rec.clone());
    w.gate
        .set_freeze(&lead(), true, Some("incident".into()))
        .await
        .unwrap();
    w.later();
    assert_eq!(w.gate.sweep().await.unwrap(), 0);
    w.gate.recover_at_start().await.unwrap();
    assert_eq!(w.status(&rec.id).await, WriteStatus::Approved);
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 0);
    w.gate.set_freeze(&lead(), false, None).await.unwrap();
    w.later();
    assert_eq!(w.gate.sweep().await.unwrap(), 1);
    assert_eq!(w.status(&rec.id).await, WriteStatus::Executed);
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 1);
}

/// Reproduced before the fix: an upsert that changed nothing returned the
/// store's current version, and the cache adopted another request's bump
/// with only its own additions (a missing edge shrinks a blast radius).
#[tokio::test]
async fn the_catalog_cache_never_misses_anothers_change() {
    let w = world();
    w.catalog(&[("fake:a", "institution"), ("ext:b", "customer")], &[])
        .await;
    w.gate.refresh_catalog().await.unwrap();
    // Someone else adds an edge behind this gate's cache.
    w.catalog(&[], &[("fake:a", "ext:b")]).await;
    // This gate's own discovery of something that exists changes nothing.
    let upsert = w
        .store
        .upsert_catalog(
            &Catalog {
                resources: vec![resource("fake:a", "institution")],
                edges: vec![],
            },
            false,
            None,
        )
        .await
        .unwrap();
    assert_eq!(upsert.before, upsert.after);
    assert!(upsert.applied.resources.is_empty());
    w.gate.graph_after(&upsert).await.unwrap();
    assert!(
        w.gate
            .read_catalog(|g| g.catalog().edges.iter().any(|e| e.to == "ext:b"))
            .await
            .unwrap(),
        "the other request's edge"
    );
    // An edge the store already has is not added twice to the graph.
    let again = w
        .store
        .upsert_catalog(
            &Catalog {
                resources: vec![],
                edges: vec![serde_json::from_value(
                    json!({"from": "fake:a", "to": "ext:b", "why": "dup"}),
                )
                .unwrap()],
            },
            false,
            None,
        )
        .await
        .unwrap();
    w.gate.graph_after(&again).await.unwrap();
    assert_eq!(
        w.gate
            .read_catalog(|g| g.catalog().edges.len())
            .await
            .unwrap(),
        1
    );
    // A write on fake:a is held: the edge reaches a customer's resource.
    let rec = w.submit("a").await;
    assert_eq!(rec.status, WriteStatus::Held);
}

/// Found in the audit of issue 10: with the guard that extends the cache
/// only from exactly the cached version removed, every test still passed.
/// The case it guards: this gate's cache is read, someone else adds an
/// edge, then this gate adds a resource; its upsert moves the store on from
/// the other change's version, and the cache must not take that version
/// with only its own addition (the other edge would be missing, and a
/// missing edge shrinks a blast radius).
#[tokio::test]
async fn an_addition_after_anothers_change_does_not_adopt_its_version() {
    let w = world();
    w.catalog(&[("fake:a", "institution"), ("ext:b", "customer")], &[])
        .await;
    w.gate.refresh_catalog().await.unwrap();
    w.catalog(&[], &[("fake:a", "ext:b")]).await;
    let mine = Catalog {
        resources: vec![resource("fake:new", "institution")],
        edges: vec![],
    };
    let draft = crate::audit::AuditDraft::new("bot", "catalog.discovered", None, json!({}));
    w.gate.add_discovered(&mine, draft).await.unwrap();
    assert!(
        w.gate
            .read_catalog(|g| g.catalog().edges.iter().any(|e| e.to == "ext:b"))
            .await
            .unwrap(),
        "the other request's edge"
    );
    let rec = w.submit("a").await;
    assert_eq!(rec.status, WriteStatus::Held, "the edge reaches a customer");
}

/// Issue 15: each write that adds a resource used to copy the whole catalog
/// and rebuild the graph, and a write whose addition raced another's read
/// the whole catalog again. Now this gate's additions extend the cached
/// graph in place, in the store's order, and the catalog is read once.
#[tokio::test]
async fn this_gates_additions_extend_the_cache_without_reading_the_catalog() {
    let w = world();
    w.catalog(&[("fake:seed", "institution")], &[]).await;
    w.submit("first").await;
    let reads = w.store.catalog_reads();
    assert_eq!(reads, 1);
    // Concurrent submissions, each adding its own resource.
    let targets: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
    let records = futures::future::join_all(targets.iter().map(|t| w.submit(t))).await;
    assert_eq!(records.len(), 12);
    assert_eq!(
        w.store.catalog_reads(),
        reads,
        "no full read of the catalog"
    );
    let (stored, version) = w.store.catalog().await.unwrap();
    let (cached, cached_len) = w
        .gate
        .read_catalog(|g| (g.catalog().clone(), g.len()))
        .await
        .unwrap();
    assert_eq!(
        cached, stored,
        "the cache holds what the store holds, in its order"
    );
    assert_eq!(cached_len, 14);
    assert_eq!(w.gate.catalog.version(), Some(version));
    // Someone else's change (behind this gate's back) is still seen: the
    // next write reads the catalog afresh.
    w.catalog(&[("ext:z", "customer")], &[("fake:seed", "ext:z")])
        .await;
    let rec = w.submit("seed").await;
    assert_eq!(rec.status, WriteStatus::Held);
}

/// Reproduced before the fix: a transient error after an approval won its
/// compare-and-set left the write `approved`/`executing` until a restart.
#[tokio::test]
async fn a_stranded_write_is_taken_up_by_the_running_gate_once() {
    let w = world();
    w.catalog(&[("fake:cust", "customer")], &[]).await;
    let rec = w.submit("cust").await;
    push(&w.fake, |s| {
        s.execute
            .push_back(Err(ConnectorError::Unavailable("db restarting".into())))
    });
    let rec = w.gate.approve(&reviewer(1), &rec.id, why()).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Executing);
    assert!(rec
        .waiting
        .as_deref()
        .unwrap_or("")
        .contains("db restarting"));
    // Within the backoff nothing is retried.
    assert_eq!(w.gate.sweep().await.unwrap(), 0);
    w.later();
    assert_eq!(w.gate.sweep().await.unwrap(), 1);
    let (after, _) = w.store.write(&rec.id).await.unwrap().unwrap();
    assert_eq!(after.status, WriteStatus::Executed);
    assert!(after.waiting.is_none());
    w.later();
    assert_eq!(w.gate.sweep().await.unwrap(), 0);
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 1);
}

/// Approve is offered only where it can succeed: not while the gate is
/// frozen (the approval would be a 409 `frozen`); reject still is.
#[tokio::test]
async fn approve_is_not_offered_on_a_frozen_gate() {
    let w = world();
    w.catalog(&[("fake:f", "customer")], &[]).await;
    let rec = w.submit("f").await;
    assert_eq!(rec.status, WriteStatus::Held);
    let offered = |r: &WriteRecord| r.actions.clone();
    let shown = w.gate.get(&reviewer(1), &rec.id).await.unwrap();
    assert!(offered(&shown).contains(&recourse_client::WriteAction::Approve));
    w.gate
        .set_freeze(&lead(), true, Some("incident".into()))
        .await
        .unwrap();
    let shown = w.gate.get(&reviewer(1), &rec.id).await.unwrap();
    assert!(
        !offered(&shown).contains(&recourse_client::WriteAction::Approve),
        "{:?}",
        shown.actions
    );
    assert!(offered(&shown).contains(&recourse_client::WriteAction::Reject));
    let summary = w.store.summaries(&Default::default()).await.unwrap();
    let s = summary.iter().find(|s| s.id == rec.id).unwrap();
    assert!(
        !super::summary_actions(&reviewer(1), s, w.gate.approvals_stopped().await)
            .contains(&recourse_client::WriteAction::Approve)
    );
    w.gate.set_freeze(&lead(), false, None).await.unwrap();
    let shown = w.gate.get(&reviewer(1), &rec.id).await.unwrap();
    assert!(offered(&shown).contains(&recourse_client::WriteAction::Approve));
}

/// A claimed write is left alone by the sweep of another gate until its
/// lease lapses.
#[tokio::test]
async fn a_claimed_write_is_not_swept() {
    let w = world();
    let rec = w.submit("x").await;
    let mut rec = rec;
    rec.status = WriteStatus::Executing;
    rec.capture = None;
    w.store.put_write_raw(rec.clone());
    w.fake.applied.lock().unwrap().clear();
    let now = w.clock.now_for_test();
    assert!(matches!(
        w.store
            .claim(&rec.id, "other-gate", now + Duration::minutes(1), now)
            .await
            .unwrap(),
        Claimed::Taken(_)
    ));
    w.clock.advance(Duration::seconds(45));
    assert_eq!(w.gate.sweep().await.unwrap(), 0, "the lease still holds");
    w.clock.advance(Duration::seconds(30));
    assert_eq!(w.gate.sweep().await.unwrap(), 1);
    assert_eq!(w.status(&rec.id).await, WriteStatus::Executed);
}

/// Gate A's lease lapses mid-execution (the write took effect, and A is
/// stuck before recording it); gate B claims the write with the next
/// fencing token. A's record, when it comes back, is refused although the
/// write's version has not moved; B settles the write from the connector's
/// evidence: settled once, by B, and never run twice.
#[tokio::test]
async fn a_gate_whose_lease_lapsed_cannot_record_a_result() {
    use std::sync::Arc;
    use tokio::sync::Notify;

    let w = world();
    let gate = |w: &World| {
        Arc::new(Gate::with_clock(
            w.store.clone(),
            vec![w.fake.clone()],
            GateConfig::default(),
            w.clock.clone(),
        ))
    };
    let (a, b) = (gate(&w), gate(&w));
    let (stalled, go_on) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    *w.fake.stall.lock().unwrap() = Some((stalled.clone(), go_on.clone()));
    let running = {
        let a = a.clone();
        tokio::spawn(async move {
            let body = json!({"intent": "test", "action": {"connector": "fake", "target": "x"}});
            a.submit(&agent(), body).await
        })
    };
    stalled.notified().await;
    let id = w.store.writes(&Default::default()).await.unwrap()[0]
        .id
        .clone();
    let a_token = w.store.fence_of(&id).unwrap();
    assert_eq!(w.status(&id).await, WriteStatus::Executing);

    // A's lease lapses; gate B claims the write (and, say, is asking the
    // connector whether it took effect).
    w.later();
    let now = w.clock.now_for_test();
    let lease = GateConfig::default().claim_lease;
    let Claimed::Taken(b_token) = w
        .store
        .claim(&id, "gate-b", now + lease, now)
        .await
        .unwrap()
    else {
        panic!("B could not claim the write");
    };
    assert!(b_token > a_token);
    let (before, version) = w.store.write(&id).await.unwrap().unwrap();

    // A comes back with its result: refused, though the version it holds
    // is still the write's; nothing recorded.
    go_on.notify_one();
    match running.await.unwrap() {
        Err(GateError::Conflict { code, .. }) => {
            assert_eq!(code, recourse_client::ErrorCode::ClaimLost)
        }
        other => panic!("A's record went through: {other:?}"),
    }
    let (after, after_version) = w.store.write(&id).await.unwrap().unwrap();
    assert_eq!((after.status, after_version), (before.status, version));
    assert_eq!(after.status, WriteStatus::Executing);

    // B settles it from the connector's evidence (B's claim handed to its
    // sweep), once.
    w.store.release(&id, "gate-b", b_token, None).await.unwrap();
    assert_eq!(b.sweep().await.unwrap(), 1);
    let (settled, _) = w.store.write(&id).await.unwrap().unwrap();
    assert_eq!(settled.status, WriteStatus::Executed);
    assert_eq!(
        settled.history.last().unwrap().note.as_deref(),
        Some("after restart: the write had taken effect"),
        "settled by B from the connector's evidence"
    );
    let entries = w.store.audit(0, 10_000).await.unwrap();
    let executed = entries
        .iter()
        .filter(|e| e.write_id.as_deref() == Some(&id) && e.action == "write.executed")
        .count();
    assert_eq!(executed, 1, "settled once");
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 1, "run once");
}

/// A write whose capture is in another gate's vault: this gate refuses its
/// rollback, naming the gate that holds it, and changes nothing; its sweep
/// leaves such a write in flight to that gate; the gate with that id rolls
/// it back.
#[tokio::test]
async fn a_capture_in_another_gates_vault_is_left_to_that_gate() {
    let w = world();
    let mut rec = w.submit("x").await;
    assert_eq!(rec.status, WriteStatus::Executed);
    rec.vault_gate = Some("gate-on-host-b".into());
    w.store.put_write_raw(rec.clone());
    match w
        .gate
        .rollback(&lead(), &rec.id, "undo".into(), false)
        .await
    {
        Err(GateError::Conflict { code, message }) => {
            assert_eq!(code, recourse_client::ErrorCode::OtherGate);
            assert!(message.contains("gate-on-host-b"), "{message}");
        }
        other => panic!("expected other_gate, got {other:?}"),
    }
    assert_eq!(w.status(&rec.id).await, WriteStatus::Executed);
    assert_eq!(w.fake.restores.load(Ordering::SeqCst), 0);

    // Cut mid-rollback on host b: this gate's sweep leaves it.
    rec.status = WriteStatus::RollingBack;
    w.store.put_write_raw(rec.clone());
    w.later();
    assert_eq!(w.gate.sweep().await.unwrap(), 0);
    assert_eq!(w.status(&rec.id).await, WriteStatus::RollingBack);

    // The gate holding that vault finishes it.
    let host_b = Gate::with_clock(
        w.store.clone(),
        vec![w.fake.clone()],
        GateConfig {
            gate_id: "gate-on-host-b".into(),
            ..GateConfig::default()
        },
        w.clock.clone(),
    );
    assert_eq!(host_b.sweep().await.unwrap(), 1);
    assert_eq!(w.status(&rec.id).await, WriteStatus::RolledBack);
    assert_eq!(w.fake.restores.load(Ordering::SeqCst), 1);
}

/// Reproduced before the fix: at restart a missing connector (a `--sql`
/// forgotten) or an unreachable target marked applied writes `failed` for
/// good. Now they wait, visibly, and finish when it is back.
#[tokio::test]
async fn recovery_waits_for_a_missing_connector_instead_of_failing() {
    let w = world();
    let mut rec = w.submit("x").await;
    rec.status = WriteStatus::Executing;
    w.store.put_write_raw(rec.clone());
    let bare = w.gate_without_connector();
    bare.recover_at_start().await.unwrap();
    let (after, _) = w.store.write(&rec.id).await.unwrap().unwrap();
    assert_eq!(after.status, WriteStatus::Executing);
    assert!(after
        .waiting
        .as_deref()
        .unwrap_or("")
        .contains("no `fake` connector"));
    // Unreachable target at restart: waits too.
    push(&w.fake, |s| {
        s.applied
            .push_back(Err(ConnectorError::Unavailable("refused".into())))
    });
    w.gate.recover_at_start().await.unwrap();
    assert_eq!(w.status(&rec.id).await, WriteStatus::Executing);
    w.later();
    w.gate.recover_at_start().await.unwrap();
    assert_eq!(w.status(&rec.id).await, WriteStatus::Executed);
    assert_eq!(
        w.fake.executions.load(Ordering::SeqCst),
        1,
        "taken effect once, never re-run"
    );
}

/// An unknown outcome: an incident lead says it ran, and rolls it back.
#[tokio::test]
async fn an_unknown_outcome_is_settled_and_rolled_back() {
    let w = world();
    push(&w.fake, |s| {
        s.execute
            .push_back(Err(ConnectorError::Uncertain("timeout".into())));
        s.applied.push_back(Ok(None));
    });
    let rec = w.submit("x").await;
    assert_eq!(rec.status, WriteStatus::OutcomeUnknown);
    assert!(
        w.gate
            .resolve(&reviewer(1), &rec.id, true, "x".into())
            .await
            .is_err(),
        "reviewers do not settle"
    );
    assert!(matches!(
        w.gate.resolve(&lead(), &rec.id, true, " ".into()).await,
        Err(GateError::Invalid { .. })
    ));
    let rec = w
        .gate
        .resolve(&lead(), &rec.id, true, "the row shows it".into())
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Executed);
    let rec = w
        .gate
        .rollback(&lead(), &rec.id, "undo".into(), false)
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::RolledBack);
}

/// A rollback cut part-way (the connector's restore stopped) is resumed
/// with the force it was asked with, at restart.
#[tokio::test]
async fn a_rollback_cut_by_a_crash_resumes_with_its_force() {
    let w = world();
    let rec = w.submit("x").await;
    // The crash: the write is recorded rolling back, forced; nothing else.
    let (mut r, _) = w.store.write(&rec.id).await.unwrap().unwrap();
    r.status = WriteStatus::RollingBack;
    r.rollback = Some(RollbackReport {
        verified: false,
        items: vec![],
        forced: true,
    });
    w.store.put_write_raw(r);
    let settled = w.gate.recover_at_start().await.unwrap();
    assert_eq!(settled, vec![(rec.id.clone(), WriteStatus::RolledBack)]);
    let (after, _) = w.store.write(&rec.id).await.unwrap().unwrap();
    assert!(after.rollback.unwrap().verified);
    assert_eq!(w.fake.restores.load(Ordering::SeqCst), 1);
    // Resumed as it was asked: forced (a restore resumed without force
    // would stop at the drift the lead chose to overwrite).
    assert_eq!(*w.fake.forces.lock().unwrap(), vec![true]);
}

#[tokio::test]
async fn actions_follow_role_status_and_duties() {
    use recourse_client::WriteAction as A;
    let w = world();
    w.catalog(&[("fake:cust", "customer")], &[]).await;
    let held = w.submit("cust").await;
    assert_eq!(
        w.gate.get(&reviewer(1), &held.id).await.unwrap().actions,
        vec![A::Approve, A::Reject]
    );
    assert!(w
        .gate
        .get(&agent(), &held.id)
        .await
        .unwrap()
        .actions
        .is_empty());
    assert!(w
        .gate
        .get(&lead(), &held.id)
        .await
        .unwrap()
        .actions
        .is_empty());
    let done = w.submit("y").await;
    assert_eq!(
        w.gate.get(&lead(), &done.id).await.unwrap().actions,
        vec![A::Rollback]
    );
    assert!(w
        .gate
        .get(&reviewer(1), &done.id)
        .await
        .unwrap()
        .actions
        .is_empty());
    // Another agent does not see it at all.
    assert!(matches!(
        w.gate.get(&who("other", Role::Agent), &held.id).await,
        Err(GateError::NotFound(_))
    ));
}

// ---- issue 11: an agent cannot cover its own write -------------------------

#[tokio::test]
async fn the_agent_of_a_write_is_the_callers_name_whatever_the_body_says() {
    let w = world();
    let body = json!({"agent": "rev1", "intent": "spoof",
                      "action": {"connector": "fake", "target": "a"}});
    let rec = w.gate.submit(&agent(), body).await.unwrap().0;
    assert_eq!(
        (rec.agent.as_str(), rec.proposal.agent.as_str()),
        ("bot", "bot")
    );
    let stored = w.store.write(&rec.id).await.unwrap().unwrap().0;
    assert_eq!(stored.proposal.agent, "bot");
    let entries = w.store.audit(0, 100).await.unwrap();
    let submitted = entries
        .iter()
        .find(|e| e.action == "write.submitted")
        .unwrap();
    assert_eq!(submitted.body["proposal"]["agent"], "bot");
}

#[tokio::test]
async fn a_declared_step_covers_only_when_a_connector_of_the_gate_runs_its_op() {
    let w = world();
    w.catalog(
        &[("fake:a", "institution"), ("svc:a", "institution")],
        &[("fake:a", "svc:a")],
    )
    .await;
    // Evidence the fake connector observes as present: only the op differs.
    let body = |op: serde_json::Value| {
        json!({"intent": "cover the service", "action": {"connector": "fake", "target": "a"},
               "rollback": {"steps": [{"restores": ["svc:a"], "op": op,
                   "requires": [{"id": "fake-snap-declared", "kind": "snapshot", "location": "vault:fake"}]}]}})
    };
    let noop = w
        .gate
        .submit(&agent(), body(json!({"connector": "fake", "op": "noop"})))
        .await
        .unwrap()
        .0;
    assert_eq!(noop.status, WriteStatus::Held);
    assert!(noop.decision.reasons.iter().any(|r| r.subject() == "svc:a"));
    let elsewhere = w
        .gate
        .submit(
            &agent(),
            body(json!({"connector": "shell", "op": "restore"})),
        )
        .await
        .unwrap()
        .0;
    assert_eq!(elsewhere.status, WriteStatus::Held);
    let runs = w
        .gate
        .submit(
            &agent(),
            body(json!({"connector": "fake", "op": "restore"})),
        )
        .await
        .unwrap()
        .0;
    assert_eq!(runs.status, WriteStatus::Executed, "{:?}", runs.decision);
}

#[test]
fn a_check_is_cleared_only_under_its_locations_probe_prefix() {
    let graph = recourse_core::CatalogGraph::new(
        serde_json::from_value(json!({"resources": [
            {"id": "vault:m", "probe_prefix": "https://m.internal/snap/"}, {"id": "vault:n"}]}))
        .unwrap(),
    )
    .unwrap();
    let item = |location: &str, url: &str| -> recourse_core::Evidence {
        serde_json::from_value(json!({"id": "e", "kind": "snapshot", "location": location,
                                      "check": {"url": url}}))
        .unwrap()
    };
    use super::evaluate::probe_cleared;
    assert!(probe_cleared(
        &graph,
        &item("vault:m", "https://m.internal/snap/7")
    ));
    assert!(!probe_cleared(
        &graph,
        &item("vault:m", "https://m.internal/other/7")
    ));
    assert!(!probe_cleared(
        &graph,
        &item("vault:n", "https://m.internal/snap/7")
    ));
    assert!(!probe_cleared(
        &graph,
        &item("vault:z", "https://m.internal/snap/7")
    ));
}

/// Issue 11: a held write whose stored path was edited, then approved: it
/// does not run (no capture, no execution), it fails with the mismatch in
/// the audit trail, whether or not the record's own hash was redone.
#[tokio::test]
async fn an_edited_stored_write_is_refused_before_it_runs() {
    for rehash in [false, true] {
        let w = world();
        w.catalog(&[("fake:cust", "customer")], &[]).await;
        let held = w.submit("cust").await;
        assert_eq!(held.status, WriteStatus::Held);
        w.edit_stored_target(&held.id, "other", rehash).await;
        let runs = w.fake.executions.load(Ordering::SeqCst);
        let rec = w.gate.approve(&reviewer(1), &held.id, why()).await.unwrap();
        assert_eq!(rec.status, WriteStatus::Failed, "rehash: {rehash}");
        assert!(rec.capture.is_none(), "nothing was captured");
        assert_eq!(
            w.fake.executions.load(Ordering::SeqCst),
            runs,
            "nothing ran"
        );
        let entries = w.store.audit(0, 100_000).await.unwrap();
        let last = entries.last().unwrap();
        assert_eq!(last.action, "write.mismatch");
        assert_eq!(last.body["from"], "approved");
        assert_eq!(last.body["to"], "failed");
        let note = last.body["note"].as_str().unwrap();
        assert!(note.contains("does not match its submission"), "{note}");
        assert!(crate::audit::verify(&entries).ok);
    }
    // The untouched write runs as before.
    let w = world();
    w.catalog(&[("fake:cust", "customer")], &[]).await;
    let held = w.submit("cust").await;
    let rec = w.gate.approve(&reviewer(1), &held.id, why()).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Executed);
}

#[tokio::test]
async fn each_evidence_item_says_who_verified_it_and_how() {
    let w = world();
    // The connector's own snapshot, and an item the agent declares at a
    // location no risk officer cleared for probing.
    let body = json!({"intent": "test", "action": {"connector": "fake", "target": "a"},
        "rollback": {"steps": [{"restores": ["fake:a"],
            "op": {"connector": "fake", "op": "restore"},
            "requires": [{"id": "agent-says", "kind": "external_copy",
                          "location": "vault:elsewhere",
                          "check": {"url": "https://u:p@evil.example/ok?key=s3cret"}}]}]}});
    let rec = w.gate.submit(&agent(), body).await.unwrap().0;
    let by = |id: &str| {
        rec.decision
            .evidence
            .iter()
            .find(|e| e.id.starts_with(id))
            .map(|e| (e.status, e.verified_by.clone()))
            .unwrap()
    };
    assert_eq!(
        by("fake-snap-"),
        (
            EvidenceStatus::Verified,
            Some("the `fake` connector, from its own capture".into())
        )
    );
    assert_eq!(by("agent-says"), (EvidenceStatus::Unverifiable, None));
}

/// Friction matches the stakes: a write a customer bears is not approved
/// without a written reason; the refusal is a 422 naming `comment`, and
/// leaves the write, its approvals and the audit trail as they were.
#[tokio::test]
async fn a_third_party_approval_without_a_reason_is_refused_and_changes_nothing() {
    let w = world();
    w.catalog(&[("fake:cust", "customer")], &[]).await;
    let held = w.submit("cust").await;
    assert_eq!(held.status, WriteStatus::Held);
    assert!(held.approval_needs_reason);
    assert!(held.summary().approval_needs_reason);
    let audit = w.store.audit(0, 100_000).await.unwrap().len();
    for comment in [None, Some(String::new()), Some(" \n\t".into())] {
        let err = w
            .gate
            .approve(&reviewer(1), &held.id, comment.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, GateError::ReasonRequired { field, .. } if field == "comment"),
            "{comment:?}: {err:?}"
        );
        assert_eq!(
            (err.status(), err.code()),
            (422, recourse_client::ErrorCode::ReasonRequired)
        );
        assert_eq!(err.field(), Some("comment"));
        assert!(err.public_message().contains("a customer pays"), "{err}");
    }
    let (rec, _) = w.store.write(&held.id).await.unwrap().unwrap();
    assert_eq!(rec.status, WriteStatus::Held);
    assert!(rec.approvals.is_empty());
    assert_eq!(w.store.audit(0, 100_000).await.unwrap().len(), audit);
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 0);

    let rec = w
        .gate
        .approve(
            &reviewer(1),
            &held.id,
            Some("the customer asked in ticket 88".into()),
        )
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Executed);
    assert_eq!(
        rec.approvals[0].comment.as_deref(),
        Some("the customer asked in ticket 88")
    );
}

/// Reaching something external needs a reason too, whoever bears it; an
/// institution-borne write inside our systems keeps the quick approval.
#[tokio::test]
async fn an_external_reach_needs_a_reason_and_an_institution_write_does_not() {
    let w = world();
    let add = Catalog {
        resources: vec![
            resource("fake:letter", "institution"),
            serde_json::from_value(json!({"id": "mail:out", "reach": "external"})).unwrap(),
            resource("fake:ledger", "institution"),
            serde_json::from_value(json!({"id": "report:monthly", "reach": "observed"})).unwrap(),
        ],
        edges: [
            ("fake:letter", "mail:out"),
            ("fake:ledger", "report:monthly"),
        ]
        .iter()
        .map(|(f, t)| serde_json::from_value::<Edge>(json!({"from": f, "to": t})).unwrap())
        .collect(),
    };
    w.store.upsert_catalog(&add, true, None).await.unwrap();

    let letter = w.submit("letter").await;
    assert_eq!(letter.status, WriteStatus::Held);
    assert!(letter.approval_needs_reason);
    let err = w
        .gate
        .approve(&reviewer(1), &letter.id, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        recourse_client::ErrorCode::ReasonRequired,
        "{err}"
    );
    assert!(err.public_message().contains("`mail:out`"), "{err}");

    let ledger = w.submit("ledger").await;
    assert_eq!(
        ledger.status,
        WriteStatus::Held,
        "report:monthly is uncovered"
    );
    assert!(!ledger.approval_needs_reason);
    assert!(!ledger.summary().approval_needs_reason);
    let rec = w
        .gate
        .approve(&reviewer(1), &ledger.id, None)
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Executed);
}

/// A failed fsync, in a capture or in a write, freezes the gate (audited,
/// with the write and the failure as its reason) and leaves the write's
/// outcome unknown, never `executed`; nothing else runs until an incident
/// lead resumes: not a new write, and not a write that was waiting for a
/// retry when the gate froze (the sweep used to run that one anyway).
#[tokio::test]
async fn a_failed_fsync_freezes_the_gate_and_nothing_runs_until_a_lead_resumes() {
    for failing in ["capture", "execute"] {
        let w = world();
        // Waiting for a retry: its target was unreachable.
        push(&w.fake, |s| {
            s.execute
                .push_back(Err(ConnectorError::Unavailable("db restarting".into())))
        });
        let waiting = w.submit("waiting").await;
        assert_eq!(waiting.status, WriteStatus::Executing, "{failing}");
        assert!(waiting.waiting.is_some(), "{failing}");

        let fsync = ConnectorError::Durability("writing `x`: fsync failed: EIO".into());
        push(&w.fake, |s| match failing {
            "capture" => s.capture.push_back(Err(fsync.clone())),
            _ => s.execute.push_back(Err(fsync.clone())),
        });
        let hit = w.submit("hit").await;
        assert_eq!(hit.status, WriteStatus::OutcomeUnknown, "{failing}");
        let freeze = w.gate.freeze_state().await.unwrap();
        assert!(freeze.frozen, "{failing}");
        assert_eq!(freeze.by.as_deref(), Some("gate"), "{failing}");
        let reason = freeze.reason.unwrap_or_default();
        assert!(
            reason.contains(&hit.id) && reason.contains("fsync failed"),
            "{failing}: {reason}"
        );
        let audit = w.store.audit(0, 100_000).await.unwrap();
        assert!(
            audit.iter().any(|e| e.action == "gate.frozen"
                && e.actor == "gate"
                && e.write_id.as_deref() == Some(hit.id.as_str())),
            "{failing}: the freeze is audited"
        );
        assert_eq!(w.fake.executions.load(Ordering::SeqCst), 0, "{failing}");

        // Nothing else runs: not the waiting write once its backoff is
        // over, not a new write.
        w.later();
        w.gate.sweep().await.unwrap();
        let (after, _) = w.store.write(&waiting.id).await.unwrap().unwrap();
        assert_eq!(after.status, WriteStatus::Executing, "{failing}");
        assert!(
            after.waiting.as_deref().unwrap_or("").contains("frozen"),
            "{failing}: {:?}",
            after.waiting
        );
        let new = w.submit("new").await;
        assert_eq!(new.status, WriteStatus::Held, "{failing}");
        assert_eq!(w.fake.executions.load(Ordering::SeqCst), 0, "{failing}");
        assert_eq!(w.status(&hit.id).await, WriteStatus::OutcomeUnknown);

        // An incident lead settles the write and resumes: the waiting write
        // runs at the next sweep.
        let settled = w
            .gate
            .resolve(&lead(), &hit.id, false, "checked the disk".into())
            .await
            .unwrap();
        assert_eq!(settled.status, WriteStatus::Failed, "{failing}");
        w.gate.set_freeze(&lead(), false, None).await.unwrap();
        w.later();
        w.gate.sweep().await.unwrap();
        assert_eq!(w.status(&waiting.id).await, WriteStatus::Executed);
        assert_eq!(w.fake.executions.load(Ordering::SeqCst), 1, "{failing}");
    }
}

/// A freeze that lands while a write is being captured (a lead on another
/// gate, or this gate freezing itself after another write's failed fsync)
/// stops it before it runs: the freeze was read before the claim, and is
/// read again between capture and execute. It waits, captured, and runs
/// once a lead resumes.
#[tokio::test]
async fn a_freeze_during_a_capture_stops_the_write_before_it_runs() {
    let w = world();
    if let Ok(mut f) = w.fake.freeze_during_capture.lock() {
        *f = Some(w.store.clone());
    }
    let rec = w.submit("caught").await;
    assert_eq!(rec.status, WriteStatus::Executing);
    assert!(rec.capture.is_some(), "captured before the freeze was read");
    assert!(
        rec.waiting
            .as_deref()
            .unwrap_or("")
            .contains("frozen by `lead-2`"),
        "{:?}",
        rec.waiting
    );
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 0);
    // The sweep does not run it while the gate is frozen.
    w.later();
    w.gate.sweep().await.unwrap();
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 0);
    assert_eq!(w.status(&rec.id).await, WriteStatus::Executing);
    w.gate.set_freeze(&lead(), false, None).await.unwrap();
    w.later();
    w.gate.sweep().await.unwrap();
    assert_eq!(w.status(&rec.id).await, WriteStatus::Executed);
    assert_eq!(w.fake.executions.load(Ordering::SeqCst), 1);
}
