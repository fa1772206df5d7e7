//! Submission: a proposal is planned by its connector, decided, and then
//! run at once (capture first), held for a person, or refused and recorded.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use recourse_client::{
    Explained, GateMode, ObservedHold, Permission, Transition, WriteRecord, WriteStatus,
};
use recourse_connector::{crash_point, Connector, ConnectorError};
use recourse_core::{
    Catalog, CatalogGraph, Decision, Proposal, Reach, Reason, ReasonCode, Resource, Verdict,
};
use serde_json::{json, Value};

use super::evaluate::targets_found;
use super::{machine, random_id, sha256_json, Gate};
use crate::audit::AuditDraft;
use crate::auth::Caller;
use crate::crash_points;
use crate::error::GateError;
use crate::store::{Inserted, StoreError};

/// A submitted body as a proposal, checked as far as it can be without a
/// connector or the store: its fields (errors name them under `proposal.`)
/// and its idempotency key. `POST /v1/writes` and the MCP tools both submit
/// through [`Gate::submit`], which reads the body with this first; the fuzz
/// target `write_body` runs it on arbitrary bytes
/// ([`crate::api::read_write_body`]).
pub fn read_proposal(body: Value) -> Result<Proposal, GateError> {
    let proposal = parse_proposal(body)?;
    if let Some(key) = &proposal.idempotency_key {
        if key.is_empty() || key.len() > 200 {
            return Err(GateError::invalid(
                "proposal.idempotency_key",
                "must be 1 to 200 characters",
            ));
        }
    }
    Ok(proposal)
}

fn parse_proposal(body: Value) -> Result<Proposal, GateError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        // `{"": 1}` has the empty path: `proposal.` would name nothing.
        let field = if path == "." || path.is_empty() {
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
        /// What the connector found at each touched resource.
        targets: BTreeMap<String, String>,
    },
    Refused {
        name: String,
        proposal: Proposal,
        reason: Reason<'static>,
    },
}

impl Gate {
    /// Submits a proposal: decides, runs a `proceed` at once (capture first),
    /// holds a `hold`, records a `refuse`. The same idempotency key from the
    /// same agent returns the first write, never a second one. The record
    /// returned still carries its sealed proposal: [`Gate::submit`] strips it.
    pub(crate) async fn submit_record(
        &self,
        caller: &Caller,
        body: Value,
    ) -> Result<(WriteRecord, bool), GateError> {
        caller.allow(Permission::SubmitWrites)?;
        let submitted_hash = sha256_json(&body);
        let mut proposal = read_proposal(body)?;
        // Section 10: the agent of a write is the caller's token name,
        // whatever the body says. An agent naming another one in `agent`
        // would otherwise be recorded, stored and audited under that name.
        // (`submitted_hash` is of the body as sent, for idempotency.)
        proposal.agent = caller.name.clone();
        if let Some(key) = proposal.idempotency_key.clone() {
            if let Some(existing) = self.store.write_by_key(&caller.name, &key).await? {
                return self.repeat(existing, &submitted_hash).map(|w| (w, false));
            }
        }
        let id = random_id("w");
        let started = Instant::now();
        let (name, connector, proposal, additions, targets) =
            match self.plan_write(&id, proposal).await? {
                Planned::Ready {
                    name,
                    connector,
                    proposal,
                    additions,
                    targets,
                } => {
                    self.admit_scope(caller, &id, &name, &proposal).await?;
                    (name, connector, proposal, additions, targets)
                }
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
        // What the connector knows and the catalog lacks joins it (the
        // store, then the cached graph, in place).
        if !(additions.resources.is_empty() && additions.edges.is_empty()) {
            let draft = AuditDraft::new(
                &caller.name,
                "catalog.discovered",
                Some(&id),
                json!({"connector": name, "added": additions}),
            );
            self.add_discovered(&additions, draft).await?;
            crash_point!(crash_points::SUBMIT_AFTER_DISCOVERED);
        }

        // The cache is at least as new as the store was when the write was
        // planned, and holds this write's additions. A write decided to run
        // at once is refused by the store when a freeze was acknowledged
        // after the decision read it (the store reads it again in the
        // insert's own transaction): it is decided again, and held.
        let mut decided_frozen_once = false;
        let (record, status) = loop {
            let (decision, frozen) = self
                .evaluate(None, &id, &proposal, connector.as_ref())
                .await?;
            self.metrics
                .observe_decision(decision.decision, started.elapsed());
            // The mode matters only to a hold, and not while frozen (a freeze
            // holds everything): the store is asked only then.
            let mode = if decision.decision == Verdict::Hold && !frozen {
                self.submission_mode().await
            } else {
                GateMode::Enforce
            };
            let note = frozen.then(|| "the gate is frozen".to_string());
            let record = self.new_record(
                id.clone(),
                caller,
                name.clone(),
                proposal.clone(),
                submitted_hash.clone(),
                (decision, targets.clone()),
                note,
                mode,
            )?;
            let status = record.status;
            let draft = AuditDraft::new(
                &caller.name,
                "write.submitted",
                Some(&id),
                json!({"status": status, "proposal": self.redacted(&serde_json::to_value(&record.proposal).unwrap_or_default()),
                       "decision": record.decision, "proposal_hash": record.proposal_hash,
                       "decision_hash": record.decision_hash, "observed_hold": record.observed_hold}),
            );
            match self.insert_pending(&record, draft).await {
                Err(GateError::Store(StoreError::Frozen)) if !decided_frozen_once => {
                    decided_frozen_once = true;
                    continue;
                }
                Err(e) => return Err(e),
                Ok(Inserted::Existing(existing)) => {
                    // Another request with the same key won the race.
                    return self
                        .repeat(*existing, &record.submitted_hash)
                        .map(|w| (w, false));
                }
                Ok(Inserted::New) => break (record, status),
            }
        };
        crash_point!(crash_points::SUBMIT_AFTER_INSERT);
        self.emit("write", Some(&record));
        if status == WriteStatus::Executing {
            let record = self.run_claimed(record, 1, &caller.name).await?;
            return Ok((record, true));
        }
        Ok((record, true))
    }

    /// The decision a proposal would get now, without storing or running
    /// anything (the catalog additions it would make are only simulated).
    pub async fn explain(&self, caller: &Caller, body: Value) -> Result<Explained, GateError> {
        caller.allow(Permission::Explain)?;
        let mut proposal = parse_proposal(body)?;
        proposal.agent = caller.name.clone();
        let id = random_id("w");
        match self.plan_write(&id, proposal).await? {
            Planned::Refused {
                proposal, reason, ..
            } => Ok(Explained {
                proposal: self.masked_proposal(&proposal),
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
                name,
                connector,
                proposal,
                additions,
                ..
            } => {
                self.explain_scope(caller, &name, &proposal)?;
                // The additions are simulated on a copy of the graph
                // (O(catalog), but nothing is stored).
                let own = if additions.resources.is_empty() && additions.edges.is_empty() {
                    None
                } else {
                    let mut g = self.read_catalog(CatalogGraph::clone).await?;
                    g.extend(additions)?;
                    Some(g)
                };
                let (decision, _) = self
                    .evaluate(own.as_ref(), &id, &proposal, connector.as_ref())
                    .await?;
                Ok(Explained {
                    proposal: self.masked_proposal(&proposal),
                    decision: self.masked(&decision),
                })
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
        let targets = targets_found(&plan);
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
        // `controlled` with no bearer of its own: each decision resolves it
        // to the bearer of its nearest catalogued container with one
        // (`CatalogGraph::bearer_of`), so marking a folder customer-borne
        // later covers the files already seen under it.
        self.refresh_catalog().await?;
        let (resources, edges) = (plan.resources, plan.edges);
        let additions = self
            .read_catalog(move |graph| {
                let mut additions = Catalog::default();
                let mut known: HashSet<String> = HashSet::new();
                for r in resources {
                    if graph.get(&r.id).is_some() || !known.insert(r.id.clone()) {
                        continue;
                    }
                    additions.resources.push(Resource {
                        reach: Reach::Controlled,
                        bearer: None,
                        ..r
                    });
                }
                for e in edges {
                    let ok = |id: &str| graph.get(id).is_some() || known.contains(id);
                    if ok(&e.from) && ok(&e.to) {
                        additions.edges.push(e);
                    }
                }
                additions
            })
            .await?;
        Ok(Planned::Ready {
            name,
            connector,
            proposal,
            additions,
            targets,
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
                recourse_client::ErrorCode::IdempotencyConflict,
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
        let record = self.new_record(
            id.clone(),
            caller,
            connector,
            proposal,
            submitted_hash,
            (decision, BTreeMap::new()),
            None,
            GateMode::Enforce,
        )?;
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

    /// A new write as decided: its status from the verdict and the mode
    /// ([`machine::initial`]), and what follows from the decision set by
    /// [`Gate::adopt`]. A hold that observe mode lets run is marked so.
    #[expect(clippy::too_many_arguments, reason = "a new write is all of these")]
    fn new_record(
        &self,
        id: String,
        caller: &Caller,
        connector: String,
        proposal: Proposal,
        submitted_hash: String,
        (decision, targets): (Decision<'static>, BTreeMap<String, String>),
        note: Option<String>,
        mode: GateMode,
    ) -> Result<WriteRecord, GateError> {
        let now = self.now();
        let status = machine::initial(decision.decision, mode);
        let observed = machine::observed_hold(decision.decision, mode).then(|| {
            let mut reason_codes: Vec<_> = decision.reasons.iter().map(|r| r.code).collect();
            reason_codes.sort();
            reason_codes.dedup();
            ObservedHold {
                at: now,
                reason_codes,
            }
        });
        let note = match &observed {
            Some(o) => Some(format!(
                "observe mode: enforcement would have held it ({}); it runs without a person",
                o.reason_codes
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => note,
        };
        // Nothing ever runs a refused proposal: the store keeps it bounded.
        let proposal = if decision.decision == Verdict::Refuse {
            crate::limits::bound_refused(proposal)
        } else {
            proposal
        };
        let mut record = WriteRecord {
            id,
            agent: caller.name.clone(),
            status,
            connector,
            proposal_hash: sha256_json(&proposal),
            decision_hash: String::new(),
            submitted_hash,
            proposal,
            decision: Decision {
                decision: Verdict::Refuse,
                reasons: Vec::new(),
                blast_radius: Vec::new(),
                bearers: Vec::new(),
                evidence: Vec::new(),
                steps: Vec::new(),
            },
            created_at: now,
            updated_at: now,
            expires_at: None,
            required_approvals: 0,
            approval_needs_reason: true,
            approvals: Vec::new(),
            history: vec![Transition {
                at: now,
                from: None,
                to: status,
                actor: caller.name.clone(),
                note,
            }],
            capture: None,
            outcome: None,
            rollback: None,
            waiting: None,
            vault_gate: None,
            observed_hold: None,
            targets,
            actions: Vec::new(),
            titles: BTreeMap::new(),
            sealed_proposal: None,
        };
        self.adopt(&mut record, decision, status == WriteStatus::Held);
        record.observed_hold = observed;
        // Section 10: from here on the record is masked; the raw proposal
        // is kept sealed while something may still run it.
        let raw = record.proposal.clone();
        self.seal_into(&mut record, &raw, status != WriteStatus::Refused)
            .map_err(|e| GateError::Store(crate::store::StoreError::Corrupt(e.to_string())))?;
        Ok(record)
    }
}
