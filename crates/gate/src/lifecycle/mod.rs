//! The life of a write: submit -> decide -> capture -> execute, or hold ->
//! approve (re-verify) -> run; reject; expire; roll back; freeze; rewind;
//! and recovery of what a crash or an error left in flight.
//!
//! The legal moves are one table ([`machine::TABLE`]); every move goes
//! through [`Gate::apply`], which checks the table and does one
//! compare-and-set on the write's version plus one audit entry, in one store
//! transaction: two gates (or fifty concurrent approvals) cannot both win,
//! and a move whose audit entry cannot be written does not happen (fail
//! closed).

mod admission;
mod catalog_cache;
mod catalog_edit;
pub mod clock;
mod effect;
mod evaluate;
mod execute;
mod freeze;
pub mod machine;
pub mod mode;
mod recovery;
mod review;
mod rollback;
mod seal;
mod secrets;
mod submit;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::Duration;
use rand::RngCore;
use recourse_client::{
    FreezeState, GateEvent, Permission, Transition, WriteAction, WriteRecord, WriteStatus,
    WriteSummary,
};
use recourse_connector::{crash_point, Connector};
use recourse_core::{Bearer, Policy};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

pub use clock::{Clock, FixedClock, SystemClock};
pub use evaluate::{binding_hash, decision_hash};
pub use machine::Step;
pub use seal::{ActionKey, SealError};
pub use submit::read_proposal;

use recourse_secrets::Masker;

use crate::audit::AuditDraft;
use crate::auth::Caller;
use crate::error::GateError;
use crate::metrics::Metrics;
use crate::notify::{Notifier, NotifyConfig, NotifyError};
use crate::store::{Cas, Store};

/// What a deployment decides about its gate.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// How long a held write waits for a person before it expires.
    pub hold_ttl: Duration,
    /// Distinct approvals a write needs, by the bearers in its blast radius
    /// (the largest applies); 1 where none is given.
    pub approvals: HashMap<Bearer, u32>,
    pub policy: Policy,
    /// Extra names (keys, headers, parameters) whose values are masked
    /// before anything is stored, logged, audited or returned, on top of
    /// what `recourse-secrets` knows.
    pub redact_keys: Vec<String>,
    /// Seals the raw proposal at rest. The default is one key per process:
    /// a gate that restarts over its store loads its key from a file.
    pub action_key: ActionKey,
    /// How long a claim on an in-flight write lasts without renewal; a write
    /// nobody renewed for this long is taken up by the sweep.
    pub claim_lease: Duration,
    /// How often the running gate looks for in-flight writes nobody holds,
    /// retries waiting ones and expires holds.
    pub sweep_every: std::time::Duration,
    /// The longest wait between retries of a write whose target is
    /// unreachable.
    pub max_backoff: Duration,
    /// The stored bytes one token's pending writes (held, approved,
    /// running) may hold; 0 for no quota.
    pub quota_bytes: u64,
    /// This gate's stable id (see [`crate::gate_id_in`]): it names the
    /// vault a write's local capture is in ([`WriteRecord::vault_gate`]).
    pub gate_id: String,
}

/// The default quota: room for thousands of ordinary held writes, and a
/// bound on what one token can make the store keep.
pub const DEFAULT_QUOTA_BYTES: u64 = 64 * 1024 * 1024;

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
            action_key: ActionKey::default(),
            claim_lease: Duration::seconds(30),
            sweep_every: std::time::Duration::from_secs(5),
            max_backoff: Duration::seconds(60),
            quota_bytes: DEFAULT_QUOTA_BYTES,
            // One per process unless the deployment names it (the server
            // reads it from the data directory).
            gate_id: random_id("gate"),
        }
    }
}

pub struct Gate {
    store: Arc<dyn Store>,
    connectors: BTreeMap<&'static str, Arc<dyn Connector>>,
    config: GateConfig,
    /// What `GET /v1/events` streams: the audit trail, tailed.
    feed: crate::feed::Feed,
    /// The catalog graph, read afresh when the store's catalog version
    /// moves past it, grown in place by this gate's own additions.
    catalog: catalog_cache::CatalogCache,
    clock: Arc<dyn Clock>,
    /// This process's name in claims on in-flight writes.
    instance: String,
    /// Retries so far of writes waiting on an unreachable target, for the
    /// backoff (process-local: only the pace of retries depends on it).
    attempts: Mutex<HashMap<String, u32>>,
    /// Section 10: what a secret looks like, with the operator's names.
    masker: Masker,
    /// Webhooks told about writes that need a person (see
    /// [`crate::notify`]); none unless configured.
    notifier: Option<Notifier>,
    pub metrics: Metrics,
}

/// How often a lost compare-and-set is retried against a fresh read.
const CAS_RETRIES: usize = 16;

pub(crate) fn sha256_json(v: &impl serde::Serialize) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_string(v).unwrap_or_default().as_bytes());
    hex::encode(h.finalize())
}

fn random_id(prefix: &str) -> String {
    let mut b = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}

/// One move of one write: the record as it should be after the move (its
/// fields already edited), the version it was read at, the step, who, why,
/// and what the audit entry adds.
pub(crate) struct Move<'a> {
    pub record: WriteRecord,
    pub version: i64,
    pub step: Step,
    pub actor: &'a str,
    pub note: Option<String>,
    pub body: Value,
}

impl<'a> Move<'a> {
    pub fn new(record: WriteRecord, version: i64, step: Step, actor: &'a str) -> Self {
        Self {
            record,
            version,
            step,
            actor,
            note: None,
            body: json!({}),
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn body(mut self, body: Value) -> Self {
        self.body = body;
        self
    }
}

impl Gate {
    pub fn new(
        store: Arc<dyn Store>,
        connectors: Vec<Arc<dyn Connector>>,
        config: GateConfig,
    ) -> Self {
        Self::with_clock(store, connectors, config, Arc::new(SystemClock))
    }

    pub fn with_clock(
        store: Arc<dyn Store>,
        connectors: Vec<Arc<dyn Connector>>,
        config: GateConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let masker = Masker::new(config.redact_keys.iter().cloned());
        Self {
            store,
            connectors: connectors.into_iter().map(|c| (c.name(), c)).collect(),
            config,
            feed: crate::feed::Feed::default(),
            catalog: catalog_cache::CatalogCache::default(),
            clock,
            instance: random_id("gate"),
            attempts: Mutex::new(HashMap::new()),
            masker,
            notifier: None,
            metrics: Metrics::new(),
        }
    }

    /// Starts notifying `config`'s webhooks (inside a Tokio runtime): the
    /// delivery task masks with this gate's masker and audits in its store.
    pub fn with_notifications(mut self, config: NotifyConfig) -> Result<Self, NotifyError> {
        self.notifier = Some(Notifier::start(
            config,
            self.store.clone(),
            self.masker.clone(),
        )?);
        Ok(self)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// The live events from now on, of every gate sharing the store (see
    /// [`crate::feed`]).
    pub async fn subscribe(
        &self,
    ) -> Result<broadcast::Receiver<GateEvent>, crate::error::GateError> {
        Ok(self.feed.subscribe(&self.store).await?)
    }

    pub fn connector_names(&self) -> Vec<&'static str> {
        self.connectors.keys().copied().collect()
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    fn connector(&self, name: &str) -> Option<Arc<dyn Connector>> {
        self.connectors.get(name).cloned()
    }

    /// Announces a change just appended to the audit trail: the event
    /// feed reads it now (the event itself comes from the entry, see
    /// [`crate::feed`]), and the notifier picks what calls for a message
    /// (and only queues it).
    fn emit(&self, kind: &str, write: Option<&WriteRecord>) {
        if let (Some(notifier), Some(rec)) = (&self.notifier, write) {
            notifier.offer(kind, rec);
        }
        self.feed.wake();
    }

    /// The freeze switch as stored; an undecodable state is an error (the
    /// gate then runs nothing), never "not frozen".
    pub async fn freeze_state(&self) -> Result<FreezeState, GateError> {
        Ok(self.store.freeze().await?)
    }

    fn redacted(&self, v: &Value) -> Value {
        self.masker.value(v)
    }

    /// A string as it may be logged, stored or returned.
    pub(crate) fn masked_text(&self, s: &str) -> String {
        self.masker.text(s)
    }

    /// The one transition function: checks the move against the table,
    /// stamps the history, and stores record and audit entry together if
    /// the version still holds. `None` when another move got there first.
    pub(crate) async fn apply(
        &self,
        mv: Move<'_>,
    ) -> Result<Option<(WriteRecord, i64)>, GateError> {
        let Move {
            mut record,
            version,
            step,
            actor,
            note,
            body,
        } = mv;
        let from = record.status;
        let to = machine::next(from, step).ok_or_else(|| {
            GateError::conflict(
                recourse_client::ErrorCode::WrongStatus,
                format!(
                    "write `{}` is {}: `{}` is not a move from there",
                    record.id,
                    from.as_str(),
                    step.action()
                ),
            )
        })?;
        let now = self.now();
        record.status = to;
        record.updated_at = now;
        record.actions.clear();
        if step != Step::Wait {
            // Moving again: whatever it waited for is over.
            record.waiting = None;
        }
        let note = note.map(|n| self.masked_text(&n));
        record.history.push(Transition {
            at: now,
            from: Some(from),
            to,
            actor: actor.to_string(),
            note: note.clone(),
        });
        // In the same compare-and-set as the move: what no connector call
        // that may follow needs goes now.
        self.reseal(&mut record);
        self.mask_record(&mut record);
        let mut body = self.redacted(&body);
        if let Value::Object(map) = &mut body {
            map.insert("from".into(), json!(from));
            map.insert("to".into(), json!(to));
            if let Some(n) = note {
                map.insert("note".into(), json!(n));
            }
        }
        let draft = AuditDraft::new(actor, step.action(), Some(&record.id), body);
        // Made under this task's claim on the write: fenced with its token.
        let fence = execute::held_token(&record.id);
        match self
            .store
            .update_write_under(&record, version, fence, draft)
            .await?
        {
            Cas::Done => {
                crash_point!(step.crash_point());
                self.emit("write", Some(&record));
                Ok(Some((record, version + 1)))
            }
            Cas::Moved => Ok(None),
            Cas::Fenced => {
                tracing::warn!(write = %record.id, step = step.action(), "a record under a lapsed claim was refused");
                Err(execute::claim_lost(&record.id))
            }
            Cas::Frozen => Err(GateError::conflict(
                recourse_client::ErrorCode::Frozen,
                format!(
                    "write `{}` is approved and waits: the gate is frozen, and nothing begins executing until an incident lead resumes it",
                    record.id
                ),
            )),
        }
    }

    /// [`Gate::apply`] where losing the race is the caller's conflict.
    pub(crate) async fn apply_won(&self, mv: Move<'_>) -> Result<(WriteRecord, i64), GateError> {
        let what = format!("write `{}` changed meanwhile; try again", mv.record.id);
        self.apply(mv)
            .await?
            .ok_or_else(|| GateError::conflict(recourse_client::ErrorCode::Conflict, what))
    }

    async fn load(&self, id: &str) -> Result<(WriteRecord, i64), GateError> {
        self.store
            .write(id)
            .await?
            .ok_or_else(|| GateError::NotFound(format!("no write `{id}`")))
    }

    /// A write, if the caller may see it (agents see their own), with the
    /// actions the caller may take on it now.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<WriteRecord, GateError> {
        let (rec, _) = self.load(id).await?;
        if !caller.role.may(Permission::ReadAllWrites) && rec.agent != caller.name {
            return Err(GateError::NotFound(format!("no write `{id}`")));
        }
        Ok(self.shown(self.for_caller(caller, rec).await))
    }

    /// A write as `caller` is answered it: what they may do to it now, and
    /// the catalog's titles of what its decision names if they may read
    /// the catalog (an agent may not).
    pub async fn for_caller(&self, caller: &Caller, mut rec: WriteRecord) -> WriteRecord {
        rec.actions = self.actions_for(caller, &rec).await;
        rec.titles = if caller.can(Permission::ReadCatalog) {
            let ids: Vec<String> = rec
                .proposal
                .touches
                .iter()
                .cloned()
                .chain(
                    rec.decision
                        .blast_radius
                        .iter()
                        .map(|e| e.resource.to_string()),
                )
                .take(recourse_client::TITLES_LISTED)
                .collect();
            // Titles help; a catalog that cannot be read now leaves them out
            // rather than failing the answer. Made as new as the store's
            // first, so every gate sharing it answers with the same titles
            // (another gate's discovered resources included).
            self.with_catalog(move |g| {
                ids.into_iter()
                    .filter_map(|id| {
                        let title = g.get(&id)?.title.clone()?;
                        Some((id, title))
                    })
                    .collect()
            })
            .await
            .unwrap_or_default()
        } else {
            Default::default()
        };
        rec
    }

    /// What `caller` may do to `rec` now: the role's permissions, the
    /// machine's moves from its status, separation of duties, and the
    /// freeze (an approval is refused while frozen, so it is not offered).
    pub async fn actions_for(&self, caller: &Caller, rec: &WriteRecord) -> Vec<WriteAction> {
        actions_for(caller, rec, self.approvals_stopped().await)
    }

    /// Whether an approval would be refused for the freeze now: frozen, or
    /// a freeze state that cannot be read (the approval fails closed too).
    pub async fn approvals_stopped(&self) -> bool {
        self.freeze_state().await.map_or(true, |f| f.frozen)
    }

    fn not_in(rec: &WriteRecord, wanted: &str) -> GateError {
        let why = match rec.status {
            WriteStatus::Held => "nothing ran, so there is nothing to roll back".to_string(),
            WriteStatus::RolledBack => "it was rolled back already".to_string(),
            WriteStatus::Rejected => "it was rejected".to_string(),
            s => format!("it is {}", s.as_str()),
        };
        GateError::conflict(
            recourse_client::ErrorCode::WrongStatus,
            format!(
                "write `{}` is {}, not {wanted}: {why}",
                rec.id,
                rec.status.as_str()
            ),
        )
    }
}

/// See [`Gate::actions_for`]; a free function so the API can fill summaries.
pub fn actions_for(caller: &Caller, rec: &WriteRecord, frozen: bool) -> Vec<WriteAction> {
    let approved = rec.current_approvers().contains(&caller.name);
    actions_for_parts(caller, rec.status, &rec.agent, approved, frozen)
}

/// The same, for a write in a list.
pub fn summary_actions(caller: &Caller, s: &WriteSummary, frozen: bool) -> Vec<WriteAction> {
    actions_for_parts(
        caller,
        s.status,
        &s.agent,
        s.approved_by.contains(&caller.name),
        frozen,
    )
}

/// The same, from the parts both have.
pub fn actions_for_parts(
    caller: &Caller,
    status: WriteStatus,
    agent: &str,
    approved_already: bool,
    frozen: bool,
) -> Vec<WriteAction> {
    let role = caller.role;
    let own = agent == caller.name;
    let mut out = Vec::new();
    let can = |step: Step| machine::next(status, step).is_some();
    if role.may(Permission::ApproveWrites)
        && !own
        && !approved_already
        && !frozen
        && (can(Step::Approve) || can(Step::Approval))
    {
        out.push(WriteAction::Approve);
    }
    if role.may(Permission::RejectWrites) && can(Step::Reject) {
        out.push(WriteAction::Reject);
    }
    if role.may(Permission::RollBack) && can(Step::Rollback) {
        out.push(WriteAction::Rollback);
    }
    if role.may(Permission::RollBack) && can(Step::ResolveRan) {
        out.push(WriteAction::Resolve);
    }
    out
}
