//! The life of a write: submit -> decide -> capture -> execute, or hold ->
//! approve (re-verify) -> run; reject; expire; roll back; freeze; rewind;
//! and reconciliation after a crash.
//!
//! Every transition is one compare-and-set on the write's version plus one
//! audit entry, in one store transaction: two gates (or fifty concurrent
//! approvals) cannot both win, and a transition whose audit entry cannot be
//! written does not happen (fail closed).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use recourse_client::{
    Approval, Explained, FreezeState, GateEvent, RewindItem, RewindReport, RewindRequest, Role,
    RollbackReport, Transition, WriteRecord, WriteStatus,
};
use recourse_connector::{Connector, ConnectorError};
use recourse_core::{
    decide, Bearer, Catalog, CatalogGraph, Decision, EvidenceKind, Observations, Policy, Proposal,
    Reach, Reason, ReasonCode, Resource, Verdict,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use crate::audit::{redact, AuditDraft};
use crate::auth::Caller;
use crate::error::GateError;
use crate::metrics::Metrics;
use crate::store::{Inserted, Store, WriteFilter};

/// What a deployment decides about its gate.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// How long a held write waits for a person before it expires.
    pub hold_ttl: Duration,
    /// Distinct approvals a write needs, by the bearers in its blast radius
    /// (the largest applies); 1 where none is given.
    pub approvals: HashMap<Bearer, u32>,
    pub policy: Policy,
    /// Extra keys whose values are redacted before the audit trail and logs.
    pub redact_keys: Vec<String>,
}

impl Default for GateConfig {
    fn default() -> Self {
        let mut approvals = HashMap::new();
        // Where a patient or a borrower pays for a failed reversal, two
        // people decide.
        approvals.insert(Bearer::Patient, 2);
        approvals.insert(Bearer::Borrower, 2);
        Self {
            hold_ttl: Duration::days(7),
            approvals,
            policy: Policy::default(),
            redact_keys: Vec::new(),
        }
    }
}

pub struct Gate {
    store: Arc<dyn Store>,
    connectors: BTreeMap<&'static str, Arc<dyn Connector>>,
    config: GateConfig,
    events: broadcast::Sender<GateEvent>,
    /// The catalog graph, rebuilt when the store's catalog version moves.
    catalog: Mutex<Option<(i64, Arc<CatalogGraph>)>>,
    pub metrics: Metrics,
}

const FREEZE_KEY: &str = "freeze";
const CAS_RETRIES: usize = 16;

fn sha256_json(v: &impl serde::Serialize) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_string(v).unwrap_or_default().as_bytes());
    hex::encode(h.finalize())
}

/// What an approval binds to and re-verification compares: the verdict, the
/// reasons (code and subject), each evidence item's status and each
/// resource's coverage. Times and wording are left out, so re-observing the
/// same facts gives the same hash.
pub fn decision_hash(d: &Decision<'_>) -> String {
    let mut reasons: Vec<(ReasonCode, String)> =
        d.reasons.iter().map(|r| (r.code, r.subject())).collect();
    reasons.sort();
    let evidence: Vec<(&str, _)> = d
        .evidence
        .iter()
        .map(|e| (e.id.as_ref(), e.status))
        .collect();
    let radius: Vec<(&str, bool)> = d
        .blast_radius
        .iter()
        .map(|b| (b.resource.as_ref(), b.covered))
        .collect();
    sha256_json(&(d.decision, reasons, evidence, radius))
}

/// Crash injection for the end-to-end tests: when `RECOURSE_FAILPOINT`
/// names this point, the process aborts here, as a power cut would.
fn failpoint(name: &str) {
    if std::env::var("RECOURSE_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("recourse: failpoint `{name}`: aborting");
        std::process::abort();
    }
}

fn parse_proposal(body: Value) -> Result<Proposal, GateError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "proposal".to_string()
        } else {
            format!("proposal.{path}")
        };
        GateError::invalid(field, e.into_inner().to_string())
    })
}

/// A proposal as its connector sees it.
enum Planned {
    Ready {
        name: String,
        connector: Arc<dyn Connector>,
        proposal: Proposal,
        additions: Catalog,
        graph: Arc<CatalogGraph>,
    },
    Refused {
        name: String,
        proposal: Proposal,
        reason: Reason<'static>,
    },
}

/// The record a transition produced, or a conflict when another transition
/// of the same write got there first.
fn won(next: Option<(WriteRecord, i64)>, what: &str) -> Result<WriteRecord, GateError> {
    next.map(|(rec, _)| rec)
        .ok_or_else(|| GateError::conflict("conflict", what.to_string()))
}

fn new_write_id() -> String {
    let mut b = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut b);
    format!("w_{}", hex::encode(b))
}

/// The ids that contain `id`, nearest first: `fs:` parents, then
/// `scheme:a/b/c` -> `scheme:a/b` -> `scheme:a`.
fn containers(id: &str) -> Vec<String> {
    if id.starts_with("fs:") {
        return recourse_core::id::fs_ancestors(id)
            .map(str::to_string)
            .collect();
    }
    let mut out = Vec::new();
    let mut cur = id;
    while let Some(cut) = cur.rfind('/') {
        cur = &cur[..cut];
        if cur.contains(':') && !cur.ends_with(':') {
            out.push(cur.to_string());
        }
    }
    out
}

impl Gate {
    pub fn new(
        store: Arc<dyn Store>,
        connectors: Vec<Arc<dyn Connector>>,
        config: GateConfig,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            store,
            connectors: connectors.into_iter().map(|c| (c.name(), c)).collect(),
            config,
            events,
            catalog: Mutex::new(None),
            metrics: Metrics::new(),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    pub fn subscribe(&self) -> broadcast::Receiver<GateEvent> {
        self.events.subscribe()
    }

    pub fn connector_names(&self) -> Vec<&'static str> {
        self.connectors.keys().copied().collect()
    }

    fn emit(&self, kind: &str, write: Option<&WriteRecord>) {
        let _ = self.events.send(GateEvent {
            kind: kind.to_string(),
            write_id: write.map(|w| w.id.clone()),
            status: write.map(|w| w.status),
            at: Utc::now(),
        });
    }

    /// The catalog as a graph, from cache while the store's version holds.
    pub async fn catalog_graph(&self) -> Result<Arc<CatalogGraph>, GateError> {
        let version = self.store.catalog_version().await?;
        if let Ok(guard) = self.catalog.lock() {
            if let Some((v, g)) = guard.as_ref() {
                if *v == version {
                    return Ok(g.clone());
                }
            }
        }
        let (catalog, version) = self.store.catalog().await?;
        let graph = Arc::new(CatalogGraph::new(catalog).map_err(|e| {
            GateError::Store(crate::store::StoreError::Corrupt(format!(
                "stored catalog is invalid: {e}"
            )))
        })?);
        if let Ok(mut guard) = self.catalog.lock() {
            *guard = Some((version, graph.clone()));
        }
        Ok(graph)
    }

    /// After this gate's own catalog addition moved the store from the
    /// cached version to `new_version` (and nobody else's change came in
    /// between), the new graph is the cached one plus `additions`: built in
    /// memory instead of re-reading the whole catalog from the store.
    fn extend_cached(
        &self,
        base: &Arc<CatalogGraph>,
        new_version: i64,
        additions: &Catalog,
    ) -> Option<Arc<CatalogGraph>> {
        let mut guard = self.catalog.lock().ok()?;
        let (v, cached) = guard.as_ref()?;
        if *v + 1 != new_version || !Arc::ptr_eq(cached, base) {
            return None;
        }
        let mut catalog = base.catalog().clone();
        catalog
            .resources
            .extend(additions.resources.iter().cloned());
        catalog.edges.extend(additions.edges.iter().cloned());
        let graph = Arc::new(CatalogGraph::new(catalog).ok()?);
        *guard = Some((new_version, graph.clone()));
        Some(graph)
    }

    pub async fn freeze_state(&self) -> Result<FreezeState, GateError> {
        Ok(self
            .store
            .state(FREEZE_KEY)
            .await?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default())
    }

    fn redacted(&self, v: &Value) -> Value {
        redact(v, &self.config.redact_keys)
    }

    // ---------------------------------------------------------------- submit

    /// Submits a proposal: decides, runs a `proceed` at once (capture first),
    /// holds a `hold`, records a `refuse`. The same idempotency key from the
    /// same agent returns the first write, never a second one.
    pub async fn submit(
        &self,
        caller: &Caller,
        body: Value,
    ) -> Result<(WriteRecord, bool), GateError> {
        caller.require(&[Role::Agent], "agents submit writes")?;
        let submitted_hash = sha256_json(&body);
        let mut proposal = parse_proposal(body)?;
        if proposal.agent.is_empty() {
            proposal.agent = caller.name.clone();
        }
        if let Some(key) = proposal.idempotency_key.clone() {
            if key.is_empty() || key.len() > 200 {
                return Err(GateError::invalid(
                    "proposal.idempotency_key",
                    "must be 1 to 200 characters",
                ));
            }
            if let Some(existing) = self.store.write_by_key(&caller.name, &key).await? {
                return self.repeat(existing, &submitted_hash).map(|w| (w, false));
            }
        }
        let id = new_write_id();
        let started = Instant::now();
        let (name, connector, proposal, additions, graph) =
            match self.plan_write(&id, proposal).await? {
                Planned::Ready {
                    name,
                    connector,
                    proposal,
                    additions,
                    graph,
                } => (name, connector, proposal, additions, graph),
                Planned::Refused {
                    name,
                    proposal,
                    reason,
                } => {
                    return self
                        .record_refusal(caller, id, name, proposal, submitted_hash, reason)
                        .await;
                }
            };
        // What the connector knows and the catalog lacks joins it.
        let graph = if additions.resources.is_empty() && additions.edges.is_empty() {
            graph
        } else {
            let draft = AuditDraft::new(
                &caller.name,
                "catalog.discovered",
                Some(&id),
                json!({"connector": name, "added": additions}),
            );
            let version = self
                .store
                .upsert_catalog(&additions, false, Some(draft))
                .await?;
            match self.extend_cached(&graph, version, &additions) {
                Some(graph) => graph,
                None => self.catalog_graph().await?,
            }
        };

        let (decision, frozen) = self
            .evaluate(&graph, &id, &proposal, connector.as_ref())
            .await?;
        self.metrics
            .observe_decision(decision.decision, started.elapsed());
        let now = Utc::now();
        let status = match decision.decision {
            Verdict::Proceed => WriteStatus::Executing,
            Verdict::Hold => WriteStatus::Held,
            Verdict::Refuse => WriteStatus::Refused,
        };
        let required_approvals = decision
            .bearers
            .iter()
            .map(|b| self.config.approvals.get(b).copied().unwrap_or(1))
            .max()
            .unwrap_or(1)
            .max(1);
        let record = WriteRecord {
            id: id.clone(),
            agent: caller.name.clone(),
            status,
            connector: name,
            proposal_hash: sha256_json(&proposal),
            decision_hash: decision_hash(&decision),
            submitted_hash,
            proposal,
            decision,
            created_at: now,
            updated_at: now,
            expires_at: (status == WriteStatus::Held).then(|| now + self.config.hold_ttl),
            required_approvals,
            approvals: Vec::new(),
            history: vec![Transition {
                at: now,
                from: None,
                to: status,
                actor: caller.name.clone(),
                note: frozen.then(|| "the gate is frozen".to_string()),
            }],
            capture: None,
            outcome: None,
            rollback: None,
        };
        let draft = AuditDraft::new(
            &caller.name,
            "write.submitted",
            Some(&id),
            json!({"status": status, "proposal": self.redacted(&serde_json::to_value(&record.proposal).unwrap_or_default()),
                   "decision": record.decision, "proposal_hash": record.proposal_hash,
                   "decision_hash": record.decision_hash}),
        );
        match self.store.insert_write(&record, draft).await? {
            Inserted::Existing(existing) => {
                // Another request with the same key won the race.
                return self
                    .repeat(*existing, &record.submitted_hash)
                    .map(|w| (w, false));
            }
            Inserted::New => {}
        }
        self.emit("write", Some(&record));
        if status == WriteStatus::Executing {
            let record = self.run(record, 1, &caller.name).await?;
            return Ok((record, true));
        }
        Ok((record, true))
    }

    /// The decision a proposal would get now, without storing or running
    /// anything (the catalog additions it would make are only simulated).
    pub async fn explain(&self, caller: &Caller, body: Value) -> Result<Explained, GateError> {
        if !caller.may(&[
            Role::Agent,
            Role::Reviewer,
            Role::RiskOfficer,
            Role::IncidentLead,
        ]) {
            return Err(GateError::Forbidden(format!(
                "`{}` may not ask for decisions",
                caller.name
            )));
        }
        let mut proposal = parse_proposal(body)?;
        if proposal.agent.is_empty() {
            proposal.agent = caller.name.clone();
        }
        let id = new_write_id();
        match self.plan_write(&id, proposal).await? {
            Planned::Refused {
                proposal, reason, ..
            } => Ok(Explained {
                proposal,
                decision: Decision {
                    decision: Verdict::Refuse,
                    reasons: vec![reason],
                    blast_radius: Vec::new(),
                    bearers: Vec::new(),
                    evidence: Vec::new(),
                    steps: Vec::new(),
                },
            }),
            Planned::Ready {
                connector,
                proposal,
                additions,
                graph: current,
                ..
            } => {
                let graph = if additions.resources.is_empty() && additions.edges.is_empty() {
                    current
                } else {
                    let mut catalog = current.catalog().clone();
                    catalog.resources.extend(additions.resources);
                    catalog.edges.extend(additions.edges);
                    Arc::new(CatalogGraph::new(catalog)?)
                };
                let (decision, _) = self
                    .evaluate(&graph, &id, &proposal, connector.as_ref())
                    .await?;
                Ok(Explained { proposal, decision })
            }
        }
    }

    /// The connector's view of a proposal: touches and its own step merged
    /// in, validated, and what the catalog would gain. Nothing is stored.
    async fn plan_write(&self, id: &str, mut proposal: Proposal) -> Result<Planned, GateError> {
        let name = proposal
            .action
            .get("connector")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                GateError::invalid(
                    "proposal.action.connector",
                    "required: which connector runs the write",
                )
            })?
            .to_string();
        let Some(connector) = self.connectors.get(name.as_str()).cloned() else {
            let reason = Reason {
                code: ReasonCode::UnknownConnector,
                resource: None,
                evidence: None,
                step: None,
                path: None,
                detail: format!(
                    "this gate has no `{name}` connector (it has: {})",
                    self.connector_names().join(", ")
                ),
            };
            return Ok(Planned::Refused {
                name,
                proposal,
                reason,
            });
        };
        let plan = match connector.plan(id, &proposal.action).await {
            Ok(plan) => plan,
            Err(ConnectorError::Refuse { code, message }) => {
                let reason = Reason {
                    code,
                    resource: None,
                    evidence: None,
                    step: None,
                    path: None,
                    detail: message,
                };
                return Ok(Planned::Refused {
                    name,
                    proposal,
                    reason,
                });
            }
            Err(ConnectorError::Invalid { field, message }) => {
                let field = if field.starts_with("proposal.") {
                    field
                } else {
                    format!("proposal.{field}")
                };
                return Err(GateError::Invalid { field, message });
            }
            Err(e) => return Err(e.into()),
        };
        for t in plan.touches {
            if !proposal.touches.contains(&t) {
                proposal.touches.push(t);
            }
        }
        if let Some(step) = plan.step {
            proposal.rollback.steps.push(step);
        }
        // Validate before anything is stored: a bad request changes nothing.
        proposal.validate()?;

        // A resource the connector knows and the catalog lacks joins it as
        // `controlled`, borne by whoever bears its nearest known container.
        let graph = self.catalog_graph().await?;
        let mut additions = Catalog::default();
        let mut known: HashMap<String, Bearer> = HashMap::new();
        let mut resources = plan.resources;
        // Containers first, so a child finds its parent's bearer.
        resources.sort_by_key(|r| r.id.len());
        for r in resources {
            if graph.get(&r.id).is_some() || known.contains_key(&r.id) {
                continue;
            }
            let bearer = containers(&r.id)
                .iter()
                .find_map(|c| {
                    graph
                        .get(c)
                        .map(|p| p.bearer)
                        .or_else(|| known.get(c).copied())
                })
                .unwrap_or(Bearer::Institution);
            known.insert(r.id.clone(), bearer);
            additions.resources.push(Resource {
                reach: Reach::Controlled,
                bearer,
                ..r
            });
        }
        for e in plan.edges {
            let ok = |id: &str| graph.get(id).is_some() || known.contains_key(id);
            if ok(&e.from) && ok(&e.to) {
                additions.edges.push(e);
            }
        }
        Ok(Planned::Ready {
            name,
            connector,
            proposal,
            additions,
            graph,
        })
    }

    fn repeat(
        &self,
        existing: WriteRecord,
        submitted_hash: &str,
    ) -> Result<WriteRecord, GateError> {
        if existing.submitted_hash == submitted_hash {
            Ok(existing)
        } else {
            Err(GateError::conflict(
                "idempotency_conflict",
                format!(
                    "idempotency_key `{}` was used for write `{}` with a different proposal",
                    existing.proposal.idempotency_key.as_deref().unwrap_or(""),
                    existing.id
                ),
            ))
        }
    }

    async fn record_refusal(
        &self,
        caller: &Caller,
        id: String,
        connector: String,
        proposal: Proposal,
        submitted_hash: String,
        reason: Reason<'static>,
    ) -> Result<(WriteRecord, bool), GateError> {
        let now = Utc::now();
        let decision = Decision {
            decision: Verdict::Refuse,
            reasons: vec![reason],
            blast_radius: Vec::new(),
            bearers: Vec::new(),
            evidence: Vec::new(),
            steps: Vec::new(),
        };
        self.metrics
            .observe_decision(Verdict::Refuse, std::time::Duration::ZERO);
        let record = WriteRecord {
            id: id.clone(),
            agent: caller.name.clone(),
            status: WriteStatus::Refused,
            connector,
            proposal_hash: sha256_json(&proposal),
            decision_hash: decision_hash(&decision),
            submitted_hash,
            proposal,
            decision,
            created_at: now,
            updated_at: now,
            expires_at: None,
            required_approvals: 0,
            approvals: Vec::new(),
            history: vec![Transition {
                at: now,
                from: None,
                to: WriteStatus::Refused,
                actor: caller.name.clone(),
                note: None,
            }],
            capture: None,
            outcome: None,
            rollback: None,
        };
        let draft = AuditDraft::new(
            &caller.name,
            "write.refused",
            Some(&id),
            json!({"proposal": self.redacted(&serde_json::to_value(&record.proposal).unwrap_or_default()),
                   "decision": record.decision}),
        );
        if let Inserted::Existing(existing) = self.store.insert_write(&record, draft).await? {
            return self
                .repeat(*existing, &record.submitted_hash)
                .map(|w| (w, false));
        }
        self.emit("write", Some(&record));
        Ok((record, true))
    }

    /// Observes the evidence now and decides, adding the gate's own reasons.
    async fn evaluate(
        &self,
        graph: &CatalogGraph,
        id: &str,
        proposal: &Proposal,
        connector: &dyn Connector,
    ) -> Result<(Decision<'static>, bool), GateError> {
        let mut observations = Observations::new();
        for (item, _) in proposal.evidence() {
            if item.kind == EvidenceKind::Window && item.check.is_none() {
                continue;
            }
            let mut seen = connector.observe(id, item).await;
            if seen.is_none() {
                for other in self.connectors.values() {
                    if other.name() != connector.name() {
                        seen = other.observe(id, item).await;
                        if seen.is_some() {
                            break;
                        }
                    }
                }
            }
            if let Some(o) = seen {
                observations.insert(item.id.clone(), o);
            }
        }
        let mut decision = decide(
            graph,
            proposal,
            &observations,
            Utc::now(),
            &self.config.policy,
        )
        .into_owned();
        let freeze = self.freeze_state().await?;
        if freeze.frozen {
            decision.add_reason(
                Reason {
                    code: ReasonCode::Frozen,
                    resource: None,
                    evidence: None,
                    step: None,
                    path: None,
                    detail: format!(
                        "the gate was frozen by `{}`{}: nothing runs until an incident lead resumes it",
                        freeze.by.as_deref().unwrap_or("?"),
                        freeze.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                    ),
                },
                Verdict::Hold,
            );
        }
        // A proposal with no step of any connector's or the agent's is
        // uncovered by the engine already; nothing more to add here.
        Ok((decision, freeze.frozen))
    }

    /// Moves a write to `to` with a compare-and-set; the closure edits the
    /// record. Returns the new record and version, or `None` when another
    /// transition got there first.
    #[expect(
        clippy::too_many_arguments,
        reason = "one transition is: the write, its version, where it goes, who, why, and what the trail says"
    )]
    async fn transition(
        &self,
        mut record: WriteRecord,
        version: i64,
        to: WriteStatus,
        actor: &str,
        note: Option<String>,
        action: &str,
        body: Value,
    ) -> Result<Option<(WriteRecord, i64)>, GateError> {
        let now = Utc::now();
        let from = record.status;
        record.status = to;
        record.updated_at = now;
        record.history.push(Transition {
            at: now,
            from: Some(from),
            to,
            actor: actor.to_string(),
            note: note.clone(),
        });
        let mut body = body;
        if let Value::Object(map) = &mut body {
            map.insert("from".into(), json!(from));
            map.insert("to".into(), json!(to));
            if let Some(n) = note {
                map.insert("note".into(), json!(n));
            }
        }
        let draft = AuditDraft::new(actor, action, Some(&record.id), body);
        if self.store.update_write(&record, version, draft).await? {
            self.emit("write", Some(&record));
            Ok(Some((record, version + 1)))
        } else {
            Ok(None)
        }
    }

    /// Capture, record the capture, execute, record the outcome. The write
    /// must be `executing` at `version`.
    async fn run(
        &self,
        record: WriteRecord,
        version: i64,
        actor: &str,
    ) -> Result<WriteRecord, GateError> {
        let Some(connector) = self.connectors.get(record.connector.as_str()).cloned() else {
            return Err(GateError::Target(format!(
                "connector `{}` is gone",
                record.connector
            )));
        };
        let (record, version) = if record.capture.is_none() {
            match connector.capture(&record.id, &record.proposal).await {
                Ok(capture) => {
                    let mut rec = record;
                    rec.capture = Some(capture.clone());
                    let body = json!({"capture": self.redacted(&capture)});
                    // Same status: this records that the capture is durable.
                    match self
                        .transition(
                            rec,
                            version,
                            WriteStatus::Executing,
                            actor,
                            Some("captured".into()),
                            "write.captured",
                            body,
                        )
                        .await?
                    {
                        Some(next) => next,
                        None => {
                            return Err(GateError::conflict(
                                "conflict",
                                "the write changed while it was captured",
                            ))
                        }
                    }
                }
                Err(e) => {
                    let note = format!("capture failed, nothing ran: {e}");
                    return self.fail(record, version, actor, note).await;
                }
            }
        } else {
            (record, version)
        };
        failpoint("after_capture");
        let capture = record.capture.clone().unwrap_or(Value::Null);
        match connector
            .execute(&record.id, &record.proposal, &capture)
            .await
        {
            Ok(outcome) => {
                failpoint("after_execute");
                let mut rec = record;
                rec.outcome = Some(self.redacted(&outcome));
                let body = json!({"outcome": rec.outcome});
                won(
                    self.transition(
                        rec,
                        version,
                        WriteStatus::Executed,
                        actor,
                        None,
                        "write.executed",
                        body,
                    )
                    .await?,
                    "the write changed while it ran",
                )
            }
            Err(e) => {
                let note = format!("the write failed: {e}");
                self.fail(record, version, actor, note).await
            }
        }
    }

    async fn fail(
        &self,
        record: WriteRecord,
        version: i64,
        actor: &str,
        note: String,
    ) -> Result<WriteRecord, GateError> {
        let next = self
            .transition(
                record,
                version,
                WriteStatus::Failed,
                actor,
                Some(note),
                "write.failed",
                json!({}),
            )
            .await?;
        won(next, "the write changed while it failed")
    }

    async fn load(&self, id: &str) -> Result<(WriteRecord, i64), GateError> {
        self.store
            .write(id)
            .await?
            .ok_or_else(|| GateError::NotFound(format!("no write `{id}`")))
    }

    /// A write, if the caller may see it (agents see their own).
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<WriteRecord, GateError> {
        let (rec, _) = self.load(id).await?;
        if caller.role == Role::Agent && rec.agent != caller.name {
            return Err(GateError::NotFound(format!("no write `{id}`")));
        }
        Ok(rec)
    }

    fn not_in(rec: &WriteRecord, wanted: &str) -> GateError {
        let why = match rec.status {
            WriteStatus::Held => "nothing ran, so there is nothing to roll back".to_string(),
            WriteStatus::RolledBack => "it was rolled back already".to_string(),
            WriteStatus::Rejected => "it was rejected".to_string(),
            s => format!("it is {}", s.as_str()),
        };
        GateError::conflict(
            "wrong_status",
            format!(
                "write `{}` is {}, not {wanted}: {why}",
                rec.id,
                rec.status.as_str()
            ),
        )
    }

    // --------------------------------------------------------------- review

    pub async fn approve(
        &self,
        caller: &Caller,
        id: &str,
        comment: Option<String>,
    ) -> Result<WriteRecord, GateError> {
        caller.require(&[Role::Reviewer], "reviewers approve")?;
        for _ in 0..CAS_RETRIES {
            let (mut rec, version) = self.load(id).await?;
            if rec.agent == caller.name {
                return Err(GateError::Forbidden(format!(
                    "separation of duties: `{}` submitted write `{id}` and cannot approve it",
                    caller.name
                )));
            }
            if rec.status != WriteStatus::Held {
                return Err(Self::not_in(&rec, "held"));
            }
            if rec.expires_at.is_some_and(|t| t <= Utc::now()) {
                self.expire_one(rec, version).await?;
                return Err(GateError::conflict(
                    "wrong_status",
                    format!("write `{id}` expired before it was approved"),
                ));
            }
            let freeze = self.freeze_state().await?;
            if freeze.frozen {
                return Err(GateError::conflict(
                    "frozen",
                    format!("the gate is frozen by `{}`: nothing runs until an incident lead resumes it", freeze.by.unwrap_or_default()),
                ));
            }
            let current = |a: &Approval| {
                a.proposal_hash == rec.proposal_hash && a.decision_hash == rec.decision_hash
            };
            if rec
                .approvals
                .iter()
                .any(|a| a.by == caller.name && current(a))
            {
                return Err(GateError::conflict(
                    "already_approved",
                    format!("`{}` approved write `{id}` already", caller.name),
                ));
            }
            rec.approvals.push(Approval {
                by: caller.name.clone(),
                at: Utc::now(),
                comment: comment.clone(),
                proposal_hash: rec.proposal_hash.clone(),
                decision_hash: rec.decision_hash.clone(),
            });
            let mut valid: Vec<&str> = rec
                .approvals
                .iter()
                .filter(|a| current(a))
                .map(|a| a.by.as_str())
                .collect();
            valid.sort_unstable();
            valid.dedup();
            let body = json!({"by": caller.name, "comment": comment, "proposal_hash": rec.proposal_hash, "decision_hash": rec.decision_hash});
            if (valid.len() as u32) < rec.required_approvals {
                let note = format!("approval {} of {}", valid.len(), rec.required_approvals);
                match self
                    .transition(
                        rec,
                        version,
                        WriteStatus::Held,
                        &caller.name,
                        Some(note),
                        "write.approval",
                        body,
                    )
                    .await?
                {
                    Some((rec, _)) => return Ok(rec),
                    None => continue,
                }
            }
            // Enough approvals: the write is ours to run if this CAS wins.
            let Some((rec, version)) = self
                .transition(
                    rec,
                    version,
                    WriteStatus::Approved,
                    &caller.name,
                    comment.clone(),
                    "write.approved",
                    body,
                )
                .await?
            else {
                continue;
            };
            return self.reverify_and_run(rec, version, &caller.name).await;
        }
        Err(GateError::conflict(
            "busy",
            format!("write `{id}` kept changing; try again"),
        ))
    }

    /// Before an approved write runs, its evidence is verified again; if the
    /// decision changed, it is held again with the new reasons (and the
    /// approvals, bound to the old decision, no longer count).
    async fn reverify_and_run(
        &self,
        rec: WriteRecord,
        version: i64,
        actor: &str,
    ) -> Result<WriteRecord, GateError> {
        let Some(connector) = self.connectors.get(rec.connector.as_str()).cloned() else {
            let note = format!("connector `{}` is gone", rec.connector);
            return self.fail(rec, version, actor, note).await;
        };
        let graph = self.catalog_graph().await?;
        let (decision, _) = self
            .evaluate(&graph, &rec.id, &rec.proposal, connector.as_ref())
            .await?;
        let hash = decision_hash(&decision);
        if hash != rec.decision_hash {
            let mut rec = rec;
            let body = json!({"decision": decision, "previous_decision_hash": rec.decision_hash, "decision_hash": hash});
            rec.decision = decision;
            rec.decision_hash = hash;
            rec.expires_at = Some(Utc::now() + self.config.hold_ttl);
            let note = "re-verification found the context changed: held again with the new reasons"
                .to_string();
            return won(
                self.transition(
                    rec,
                    version,
                    WriteStatus::Held,
                    "gate",
                    Some(note),
                    "write.reheld",
                    body,
                )
                .await?,
                "the write changed during re-verification",
            );
        }
        let Some((rec, version)) = self
            .transition(
                rec,
                version,
                WriteStatus::Executing,
                actor,
                Some("re-verified".into()),
                "write.executing",
                json!({}),
            )
            .await?
        else {
            return Err(GateError::conflict(
                "conflict",
                "the write changed during re-verification",
            ));
        };
        self.run(rec, version, actor).await
    }

    pub async fn reject(
        &self,
        caller: &Caller,
        id: &str,
        reason: String,
    ) -> Result<WriteRecord, GateError> {
        caller.require(&[Role::Reviewer], "reviewers reject")?;
        if reason.trim().is_empty() {
            return Err(GateError::invalid("reason", "must not be empty: say why"));
        }
        for _ in 0..CAS_RETRIES {
            let (rec, version) = self.load(id).await?;
            if rec.status != WriteStatus::Held {
                return Err(Self::not_in(&rec, "held"));
            }
            let body = json!({"reason": reason});
            if let Some((rec, _)) = self
                .transition(
                    rec,
                    version,
                    WriteStatus::Rejected,
                    &caller.name,
                    Some(reason.clone()),
                    "write.rejected",
                    body,
                )
                .await?
            {
                return Ok(rec);
            }
        }
        Err(GateError::conflict(
            "busy",
            format!("write `{id}` kept changing; try again"),
        ))
    }

    async fn expire_one(&self, rec: WriteRecord, version: i64) -> Result<(), GateError> {
        let note = Some("no decision before the hold expired".to_string());
        self.transition(
            rec,
            version,
            WriteStatus::Expired,
            "gate",
            note,
            "write.expired",
            json!({}),
        )
        .await?;
        Ok(())
    }

    /// Expires held writes whose time is up; returns how many.
    pub async fn expire_due(&self) -> Result<usize, GateError> {
        let held = self
            .store
            .writes(&WriteFilter {
                status: Some(WriteStatus::Held),
                ..Default::default()
            })
            .await?;
        let now = Utc::now();
        let mut n = 0;
        for rec in held {
            if rec.expires_at.is_some_and(|t| t <= now) {
                if let Some((rec, version)) = self.store.write(&rec.id).await? {
                    if rec.status == WriteStatus::Held {
                        self.expire_one(rec, version).await?;
                        n += 1;
                    }
                }
            }
        }
        Ok(n)
    }

    // -------------------------------------------------------------- rollback

    pub async fn rollback(
        &self,
        caller: &Caller,
        id: &str,
        reason: String,
        force: bool,
    ) -> Result<WriteRecord, GateError> {
        caller.require(&[Role::IncidentLead], "incident leads roll back")?;
        if reason.trim().is_empty() {
            return Err(GateError::invalid("reason", "must not be empty: say why"));
        }
        let (rec, version) = self.load(id).await?;
        if rec.status != WriteStatus::Executed {
            return Err(Self::not_in(&rec, "executed"));
        }
        let body = json!({"reason": reason, "force": force});
        let Some((rec, version)) = self
            .transition(
                rec,
                version,
                WriteStatus::RollingBack,
                &caller.name,
                Some(reason.clone()),
                "write.rolling_back",
                body,
            )
            .await?
        else {
            return Err(GateError::conflict(
                "wrong_status",
                format!("write `{id}` is being rolled back by someone else"),
            ));
        };
        self.finish_rollback(rec, version, &caller.name, force)
            .await
    }

    async fn finish_rollback(
        &self,
        rec: WriteRecord,
        version: i64,
        actor: &str,
        force: bool,
    ) -> Result<WriteRecord, GateError> {
        let Some(connector) = self.connectors.get(rec.connector.as_str()).cloned() else {
            let note = format!("connector `{}` is gone", rec.connector);
            return self.fail(rec, version, actor, note).await;
        };
        let capture = rec.capture.clone().unwrap_or(Value::Null);
        let result = connector
            .restore(
                &rec.id,
                &rec.proposal,
                &capture,
                rec.outcome.as_ref(),
                force,
            )
            .await;
        let mut rec = rec;
        let (to, note, report) = match result {
            Ok(report) if report.verified => (WriteStatus::RolledBack, "restored and verified".to_string(), Some(report)),
            Ok(report) if report.items.iter().any(|i| i.status == recourse_client::RestoreStatus::Drift) => (
                WriteStatus::Executed,
                "drift: the target changed after the write; nothing was overwritten (use force to overwrite)".to_string(),
                Some(report),
            ),
            Ok(report) => (WriteStatus::Failed, "rollback ran but verification failed".to_string(), Some(report)),
            Err(ConnectorError::Drift(m)) => (
                WriteStatus::Executed,
                format!("drift: {m}; nothing was overwritten (use force to overwrite)"),
                Some(RollbackReport { verified: false, items: Vec::new(), forced: force }),
            ),
            Err(e) => (WriteStatus::Executed, format!("rollback could not run: {e}"), None),
        };
        rec.rollback = report.clone();
        let body = json!({"report": report});
        won(
            self.transition(
                rec,
                version,
                to,
                actor,
                Some(note),
                "write.rollback_result",
                body,
            )
            .await?,
            "the write changed during rollback",
        )
    }

    // ---------------------------------------------------- freeze and rewind

    pub async fn set_freeze(
        &self,
        caller: &Caller,
        frozen: bool,
        reason: Option<String>,
    ) -> Result<FreezeState, GateError> {
        caller.require(
            &[Role::IncidentLead],
            "incident leads freeze and resume the gate",
        )?;
        if frozen && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(GateError::invalid(
                "reason",
                "must not be empty: say why the gate is frozen",
            ));
        }
        let state = FreezeState {
            frozen,
            by: Some(caller.name.clone()),
            at: Some(Utc::now()),
            reason,
        };
        let action = if frozen {
            "gate.frozen"
        } else {
            "gate.resumed"
        };
        let value = serde_json::to_value(&state).unwrap_or_default();
        self.store
            .set_state(
                FREEZE_KEY,
                &value,
                AuditDraft::new(&caller.name, action, None, value.clone()),
            )
            .await?;
        self.emit(action, None);
        Ok(state)
    }

    /// Every write executed since `since` (by one agent, if given), newest
    /// first; rolled back one by one unless `preview`.
    pub async fn rewind(
        &self,
        caller: &Caller,
        req: RewindRequest,
    ) -> Result<RewindReport, GateError> {
        caller.require(&[Role::IncidentLead], "incident leads rewind")?;
        if !req.preview && req.reason.trim().is_empty() {
            return Err(GateError::invalid("reason", "must not be empty: say why"));
        }
        let filter = WriteFilter {
            status: Some(WriteStatus::Executed),
            agent: req.agent.clone(),
            limit: None,
        };
        let executed_at = |r: &WriteRecord| {
            r.history
                .iter()
                .rev()
                .find(|t| t.to == WriteStatus::Executed && t.from != Some(WriteStatus::RollingBack))
                .map(|t| t.at)
                .unwrap_or(r.updated_at)
        };
        let mut due: Vec<(DateTime<Utc>, WriteRecord)> = self
            .store
            .writes(&filter)
            .await?
            .into_iter()
            .map(|r| (executed_at(&r), r))
            .filter(|(at, _)| *at >= req.since)
            .collect();
        due.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.id.cmp(&a.1.id)));
        let mut items = Vec::new();
        for (_, rec) in due {
            if req.preview {
                items.push(RewindItem {
                    write: rec.summary(),
                    rollback: None,
                    error: None,
                });
                continue;
            }
            match self
                .rollback(caller, &rec.id, req.reason.clone(), req.force)
                .await
            {
                Ok(after) => items.push(RewindItem {
                    write: after.summary(),
                    rollback: after.rollback,
                    error: None,
                }),
                Err(e) => items.push(RewindItem {
                    write: rec.summary(),
                    rollback: None,
                    error: Some(e.to_string()),
                }),
            }
        }
        Ok(RewindReport {
            preview: req.preview,
            items,
        })
    }

    // -------------------------------------------------------- after a crash

    /// Settles writes a crash left `approved`, `executing` or `rolling_back`,
    /// from the durable record and the connector's view of the target:
    /// never runs a write twice.
    pub async fn reconcile(&self) -> Result<Vec<(String, WriteStatus)>, GateError> {
        let mut settled = Vec::new();
        for status in [
            WriteStatus::Approved,
            WriteStatus::Executing,
            WriteStatus::RollingBack,
        ] {
            let stuck = self
                .store
                .writes(&WriteFilter {
                    status: Some(status),
                    ..Default::default()
                })
                .await?;
            for rec in stuck {
                let Some((rec, version)) = self.store.write(&rec.id).await? else {
                    continue;
                };
                if rec.status != status {
                    continue;
                }
                let id = rec.id.clone();
                let after = self.reconcile_one(rec, version).await?;
                settled.push((id, after.status));
            }
        }
        Ok(settled)
    }

    async fn reconcile_one(
        &self,
        rec: WriteRecord,
        version: i64,
    ) -> Result<WriteRecord, GateError> {
        let actor = "gate";
        let Some(connector) = self.connectors.get(rec.connector.as_str()).cloned() else {
            return self
                .fail(
                    rec,
                    version,
                    actor,
                    "after restart: the connector is gone".into(),
                )
                .await;
        };
        match rec.status {
            WriteStatus::Approved => {
                // Approved but not yet started: re-verify as if just approved.
                self.reverify_and_run(rec, version, actor).await
            }
            WriteStatus::Executing => {
                let capture = rec.capture.clone().unwrap_or(Value::Null);
                match connector.applied(&rec.id, &rec.proposal, &capture).await {
                    Ok(Some(true)) => {
                        let mut rec = rec;
                        if rec.capture.is_none() {
                            rec.capture = Some(json!({"recovered": true}));
                        }
                        let note = Some("after restart: the write had taken effect".to_string());
                        let next = self.transition(rec, version, WriteStatus::Executed, actor, note, "write.executed", json!({})).await?;
                        won(next, "changed during reconcile")
                    }
                    Ok(Some(false)) => self.run(rec, version, actor).await,
                    Ok(None) | Err(_) => {
                        self.fail(rec, version, actor, "after restart: whether the write took effect cannot be known; a person must check".into())
                            .await
                    }
                }
            }
            WriteStatus::RollingBack => self.finish_rollback(rec, version, actor, false).await,
            _ => Ok(rec),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_walk_up() {
        assert_eq!(containers("sql:db/t/5"), vec!["sql:db/t", "sql:db"]);
        assert_eq!(containers("fs:/a/b"), vec!["fs:/a", "fs:/"]);
        assert!(containers("account:1").is_empty());
    }
}
