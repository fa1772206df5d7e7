//! Test support: a connector whose answers a test scripts (unscripted
//! calls succeed), for the lifecycle and the API in process.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use async_trait::async_trait;
use recourse_client::{RestoreItem, RestoreStatus, Role, RollbackReport};
use recourse_connector::{Connector, ConnectorError, Plan};
use recourse_core::{Evidence, EvidenceKind, Observation, Proposal, Resource, Step as PlanStep};
use serde_json::{json, Value};

use crate::auth::Caller;

#[derive(Default)]
pub(crate) struct Script {
    pub capture: VecDeque<Result<Value, ConnectorError>>,
    pub execute: VecDeque<Result<Value, ConnectorError>>,
    pub applied: VecDeque<Result<Option<bool>, ConnectorError>>,
    pub restore: VecDeque<Result<RollbackReport, ConnectorError>>,
}

/// A connector whose answers a test scripts; unscripted calls succeed.
#[derive(Default)]
pub(crate) struct Fake {
    pub script: Mutex<Script>,
    pub applied: Mutex<HashSet<String>>,
    pub executions: AtomicUsize,
    pub restores: AtomicUsize,
    /// The `force` of each restore it was asked for, in order.
    pub forces: Mutex<Vec<bool>>,
    /// Its restore sends requests it cannot ask about afterwards (as an
    /// HTTP compensation does): not resumable.
    pub sends: std::sync::atomic::AtomicBool,
    /// The proposals it was called with (capture, execute, restore).
    pub proposals: Mutex<Vec<Proposal>>,
    /// When set, the next execution, once it has taken effect, stalls
    /// before it answers: it notifies `.0` and goes on when `.1` is
    /// notified (a gate stuck past its lease mid-execution).
    pub stall: Mutex<Option<(Arc<Notify>, Arc<Notify>)>>,
    /// A store to freeze (as a lead on another gate would) while the next
    /// capture runs: a freeze that lands between a write's claim and its
    /// execution.
    pub freeze_during_capture: Mutex<Option<std::sync::Arc<crate::store::MemoryStore>>>,
    /// What its plan finds at the target, as a kind (`fs.file`): none
    /// describes nothing, as an HTTP connector does.
    pub found: Mutex<Option<String>>,
}

impl Fake {
    fn saw(&self, p: &Proposal) {
        if let Ok(mut seen) = self.proposals.lock() {
            seen.push(p.clone());
        }
    }
}

pub(crate) fn pop<T>(q: &Mutex<Script>, f: impl FnOnce(&mut Script) -> Option<T>) -> Option<T> {
    q.lock().ok().and_then(|mut s| f(&mut s))
}

pub(crate) fn verified() -> RollbackReport {
    RollbackReport {
        verified: true,
        items: vec![RestoreItem {
            resource: "fake:x".into(),
            status: RestoreStatus::Restored,
            detail: None,
        }],
        forced: false,
    }
}

#[async_trait]
impl Connector for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn plan(&self, write_id: &str, action: &Value) -> Result<Plan, ConnectorError> {
        let target = action
            .get("target")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::invalid("action.target", "required"))?;
        let id = format!("fake:{target}");
        let mut described = resource(&id, "institution");
        described.kind = self.found.lock().ok().and_then(|f| f.clone());
        Ok(Plan {
            touches: vec![id.clone()],
            resources: vec![described],
            edges: Vec::new(),
            step: Some(PlanStep {
                restores: vec![id],
                op: json!({"connector": "fake", "op": "restore"}),
                requires: vec![Evidence {
                    id: format!("fake-snap-{write_id}"),
                    kind: EvidenceKind::Snapshot,
                    location: Some("vault:fake".into()),
                    until: None,
                    max_age_s: None,
                    check: None,
                }],
                modelled_by: Some("fake".into()),
            }),
        })
    }

    fn accepts_step(&self, op: &Value) -> bool {
        *op == json!({"connector": "fake", "op": "restore"})
    }

    fn restore_resumes(&self) -> bool {
        !self.sends.load(Ordering::SeqCst)
    }

    async fn observe(&self, _write_id: &str, evidence: &Evidence) -> Option<Observation> {
        evidence
            .id
            .starts_with("fake-snap-")
            .then_some(Observation {
                present: true,
                captured_at: None,
                detail: None,
            })
    }

    async fn capture(&self, _: &str, p: &Proposal) -> Result<Value, ConnectorError> {
        self.saw(p);
        let store = self
            .freeze_during_capture
            .lock()
            .ok()
            .and_then(|mut s| s.take());
        if let Some(store) = store {
            use crate::store::GateStateStore;
            let state = recourse_client::FreezeState {
                frozen: true,
                by: Some("lead-2".into()),
                at: None,
                reason: Some("incident".into()),
            };
            let draft = crate::audit::AuditDraft::new("lead-2", "gate.frozen", None, json!({}));
            store
                .set_freeze(&state, draft)
                .await
                .map_err(|e| ConnectorError::Io(e.to_string()))?;
        }
        pop(&self.script, |s| s.capture.pop_front()).unwrap_or(Ok(json!({"fake": true})))
    }

    async fn execute(&self, id: &str, p: &Proposal, _: &Value) -> Result<Value, ConnectorError> {
        self.saw(p);
        let r = pop(&self.script, |s| s.execute.pop_front()).unwrap_or(Ok(json!({"ok": true})));
        if r.is_ok() {
            self.executions.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut a) = self.applied.lock() {
                a.insert(id.to_string());
            }
        }
        let stall = self.stall.lock().ok().and_then(|mut s| s.take());
        if let Some((stalled, go_on)) = stall {
            stalled.notify_one();
            go_on.notified().await;
        }
        r
    }

    async fn applied(
        &self,
        id: &str,
        _: &Proposal,
        _: &Value,
    ) -> Result<Option<bool>, ConnectorError> {
        pop(&self.script, |s| s.applied.pop_front()).unwrap_or_else(|| {
            Ok(Some(
                self.applied.lock().map(|a| a.contains(id)).unwrap_or(false),
            ))
        })
    }

    async fn restore(
        &self,
        _: &str,
        p: &Proposal,
        _: &Value,
        _: Option<&Value>,
        force: bool,
    ) -> Result<RollbackReport, ConnectorError> {
        self.saw(p);
        self.restores.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut f) = self.forces.lock() {
            f.push(force);
        }
        pop(&self.script, |s| s.restore.pop_front()).unwrap_or(Ok(verified()))
    }
}

pub(crate) fn resource(id: &str, bearer: &str) -> Resource {
    serde_json::from_value(json!({"id": id, "bearer": bearer})).unwrap()
}

pub(crate) fn who(name: &str, role: Role) -> Caller {
    Caller {
        name: name.into(),
        role,
        expires_at: None,
        scope: None,
        signed_in: recourse_client::SignIn::Token,
    }
}

pub(crate) fn push(fake: &Fake, f: impl FnOnce(&mut Script)) {
    if let Ok(mut s) = fake.script.lock() {
        f(&mut s);
    }
}

/// A gate on a memory store with one [`Fake`] connector and a clock the
/// test moves: the world the lifecycle's tests share.
pub(crate) struct World {
    pub store: std::sync::Arc<crate::store::MemoryStore>,
    pub fake: std::sync::Arc<Fake>,
    pub clock: std::sync::Arc<crate::FixedClock>,
    pub gate: crate::Gate,
}

pub(crate) fn world() -> World {
    use chrono::TimeZone;
    let store = std::sync::Arc::new(crate::store::MemoryStore::new());
    let fake = std::sync::Arc::new(Fake::default());
    let clock = std::sync::Arc::new(crate::FixedClock::at(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
            .single()
            .unwrap_or_default(),
    ));
    let gate = crate::Gate::with_clock(
        store.clone(),
        vec![fake.clone()],
        crate::GateConfig::default(),
        clock.clone(),
    );
    World {
        store,
        fake,
        clock,
        gate,
    }
}
