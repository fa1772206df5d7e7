//! Connectors: the only way a write reaches a system (section 8).
//!
//! A connector turns an action into the resources it touches, models its own
//! rollback step, captures what that step needs before the write runs,
//! runs the write, and restores from the capture with verification. Adding a
//! connector is one crate implementing [`Connector`]; nothing else changes.

pub mod action;
pub mod crash;
pub mod host;

use async_trait::async_trait;
use recourse_client::RollbackReport;
use recourse_core::{Edge, Evidence, Observation, Proposal, ReasonCode, Resource, Step};
use serde_json::Value;

/// What a connector knows of an action before anything runs.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Resource ids the action changes directly.
    pub touches: Vec<String>,
    /// Resources the connector knows and the catalog may lack (a file under
    /// a root, a row). The gate adds the missing ones as `controlled`, with
    /// no bearer of their own: each decision resolves it to that of their
    /// nearest catalogued container with one.
    pub resources: Vec<Resource>,
    /// Edges the connector knows (foreign keys, containment it models).
    pub edges: Vec<Edge>,
    /// The rollback step the connector models and will capture for.
    pub step: Option<Step>,
}

/// Why a connector will not take an action. `Refuse` is final; `Invalid`
/// is the caller's mistake and names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// Bad input: which field of the action, and what is wrong.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A write the gate must never run (a path outside the roots, …).
    #[error("{message}")]
    Refuse { code: ReasonCode, message: String },
    /// The target system failed and nothing changed (a permanent failure:
    /// trying again will not help).
    #[error("{0}")]
    Io(String),
    /// The target could not be reached or was busy (connection refused, a
    /// pool timeout, a lock): nothing changed, and trying again later may
    /// work. The gate retries with backoff instead of failing the write.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A step cut short after it changed the target in a way that calling
    /// it again finishes (the fs connector's capture, its tree already in
    /// the vault; a vault record that could not be read, so "nothing
    /// changed" cannot be said). "Nothing ran" would be false: the gate
    /// calls again, with backoff, and never settles the write as not run.
    #[error("cut short, to be called again: {0}")]
    Resumable(String),
    /// The action may or may not have taken effect (a request sent whose
    /// answer never came). The gate asks `applied`, and a person decides
    /// when that cannot tell.
    #[error("outcome unknown: {0}")]
    Uncertain(String),
    /// Making something durable failed (an `fsync`). After a failed fsync
    /// the state of the page cache is unknown (PostgreSQL's "fsyncgate"):
    /// the gate never retries it, it stops running writes.
    #[error("durability: {0}")]
    Durability(String),
    /// The target changed after the write: rollback stops and shows it.
    #[error("drift: {0}")]
    Drift(String),
}

impl ConnectorError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConnectorError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn refuse(code: ReasonCode, message: impl Into<String>) -> Self {
        ConnectorError::Refuse {
            code,
            message: message.into(),
        }
    }
}

impl From<std::io::Error> for ConnectorError {
    fn from(e: std::io::Error) -> Self {
        ConnectorError::Io(e.to_string())
    }
}

/// One connector. Every method gets the write's id, which names its place in
/// the vault, and the proposal as planned (`proposal.action` is the action;
/// the steps are there for connectors that run declared compensations).
///
/// Durability contract: nothing may change the target before what its
/// rollback needs is durable. Connectors that can capture ahead (`fs`: the
/// tree goes into the vault) do it in `capture`, which returns only once the
/// capture is fsynced; the gate records the capture, then calls `execute`.
/// Connectors that must read in the write's own transaction (`sql`) capture
/// inside `execute`, and make the before-images durable before they commit.
/// `execute` must never apply its change twice: after a crash the gate asks
/// `applied` first, and re-runs `execute` only when it says `Some(false)`.
#[async_trait]
pub trait Connector: Send + Sync {
    /// `fs`, `sql`, `http`: the `connector` field of an action.
    fn name(&self) -> &'static str;

    /// Validates `action` and models touches and the connector's own step.
    async fn plan(&self, write_id: &str, action: &Value) -> Result<Plan, ConnectorError>;

    /// Whether this connector can run `op` as a rollback step (section 4,
    /// rule 4): the op it models for its own step, or a compensation it
    /// would send. A step the gate's connectors cannot run covers nothing,
    /// whatever its evidence. `op` names this connector; the default runs
    /// nothing.
    fn accepts_step(&self, _op: &Value) -> bool {
        false
    }

    /// What the write will change, read from the target now and bounded
    /// as [`recourse_client::effect`] says; `None` when this connector
    /// cannot say. Only reads: neither the target nor the vault changes.
    /// Not masked: the gate masks it before anyone sees it.
    async fn effect(
        &self,
        _write_id: &str,
        _action: &Value,
    ) -> Result<Option<recourse_client::EffectChange>, ConnectorError> {
        Ok(None)
    }

    /// Observes one evidence item now (is the vault ready or does it hold
    /// the capture; does the `check` URL answer). `None` if the item is not
    /// this connector's to observe.
    async fn observe(&self, write_id: &str, evidence: &Evidence) -> Option<Observation>;

    /// Captures what the modelled step needs, durably, before the write.
    /// Returns the record the gate stores with the write.
    async fn capture(&self, write_id: &str, proposal: &Proposal) -> Result<Value, ConnectorError>;

    /// Runs the write; returns what it did (kept in the audit trail).
    async fn execute(
        &self,
        write_id: &str,
        proposal: &Proposal,
        capture: &Value,
    ) -> Result<Value, ConnectorError>;

    /// After a crash: did the write take effect? `None` when it cannot be
    /// known (then a person decides).
    async fn applied(
        &self,
        write_id: &str,
        proposal: &Proposal,
        capture: &Value,
    ) -> Result<Option<bool>, ConnectorError>;

    /// After a crash between `capture` and the gate recording it: the
    /// capture record the vault holds for this write, the same value
    /// `capture` returned (with its bindings, such as a manifest hash), or
    /// `None` when there is none.
    async fn captured(
        &self,
        _write_id: &str,
        _proposal: &Proposal,
    ) -> Result<Option<Value>, ConnectorError> {
        Ok(None)
    }

    /// Whether [`Connector::restore`] is resumable as its contract says.
    /// `false` for a connector whose restore sends requests it cannot ask
    /// about afterwards (an HTTP compensation): the gate then records that
    /// the rollback is sending before it calls `restore`, calls it at most
    /// once per rollback, and leaves a rollback cut by a crash to a person
    /// (its items `sent`), rather than send anything twice.
    fn restore_resumes(&self) -> bool {
        true
    }

    /// Puts back what was captured and verifies it against the capture.
    /// Without `force`, stops at drift (the target changed after the write)
    /// and overwrites nothing.
    ///
    /// Resumable: called again after a crash at any point of an earlier
    /// call (with the same `force`), it finishes what that call started and
    /// verifies. It never applies a step twice and never mistakes its own
    /// partial work for drift; once restored, a further call only verifies.
    async fn restore(
        &self,
        write_id: &str,
        proposal: &Proposal,
        capture: &Value,
        outcome: Option<&Value>,
        force: bool,
    ) -> Result<RollbackReport, ConnectorError>;
}
