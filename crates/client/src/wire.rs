//! Requests and responses of the gate's HTTP API (section 7 of the contract).

use chrono::{DateTime, Utc};
use recourse_core::{Bearer, Decision, Proposal, Resource, Verdict};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// What a caller may do; the gate derives it from the caller's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Submit writes, read its own.
    Agent,
    /// Approve and reject held writes.
    Reviewer,
    /// Read everything, edit the catalog.
    RiskOfficer,
    /// Roll back, freeze and resume, rewind.
    IncidentLead,
    /// Manage tokens; can do everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Agent,
        Role::Reviewer,
        Role::RiskOfficer,
        Role::IncidentLead,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Reviewer => "reviewer",
            Role::RiskOfficer => "risk_officer",
            Role::IncidentLead => "incident_lead",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The life of a write. `held -> approved -> executing -> executed ->
/// rolling_back -> rolled_back`, with `rejected`, `refused`, `expired` and
/// `failed` (nothing ran) as ends. Two statuses wait for a person:
/// `outcome_unknown` (whether the write took effect cannot be told from the
/// target; an incident lead settles it) and `rollback_failed` (a rollback
/// ran and did not verify; an incident lead rolls back again). The legal
/// moves between them are one table in the gate (`lifecycle::machine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum WriteStatus {
    Held,
    Approved,
    Executing,
    Executed,
    Rejected,
    Refused,
    Expired,
    /// Nothing ran: the capture or the write failed before it changed
    /// anything (the connector's own evidence says so).
    Failed,
    RollingBack,
    RolledBack,
    /// Whether the write took effect cannot be known from the target; a
    /// person must check and settle it.
    OutcomeUnknown,
    /// A rollback ran and did not verify.
    RollbackFailed,
}

impl WriteStatus {
    pub const ALL: [WriteStatus; 12] = [
        WriteStatus::Held,
        WriteStatus::Approved,
        WriteStatus::Executing,
        WriteStatus::Executed,
        WriteStatus::Rejected,
        WriteStatus::Refused,
        WriteStatus::Expired,
        WriteStatus::Failed,
        WriteStatus::RollingBack,
        WriteStatus::RolledBack,
        WriteStatus::OutcomeUnknown,
        WriteStatus::RollbackFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WriteStatus::Held => "held",
            WriteStatus::Approved => "approved",
            WriteStatus::Executing => "executing",
            WriteStatus::Executed => "executed",
            WriteStatus::Rejected => "rejected",
            WriteStatus::Refused => "refused",
            WriteStatus::Expired => "expired",
            WriteStatus::Failed => "failed",
            WriteStatus::RollingBack => "rolling_back",
            WriteStatus::RolledBack => "rolled_back",
            WriteStatus::OutcomeUnknown => "outcome_unknown",
            WriteStatus::RollbackFailed => "rollback_failed",
        }
    }

    pub fn parse(s: &str) -> Option<WriteStatus> {
        WriteStatus::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// A gate is working on it (or was, when it crashed): recovery settles
    /// these from the durable record and the connector's evidence.
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            WriteStatus::Approved | WriteStatus::Executing | WriteStatus::RollingBack
        )
    }
}

/// What a person may do to a write. Each write's summary lists the ones the
/// caller may take now (role, status and separation of duties), so a client
/// shows only what the gate will accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum WriteAction {
    Approve,
    Reject,
    Rollback,
    /// Settle an `outcome_unknown` write: it ran, or it did not.
    Resolve,
}

/// An incident lead settles a write whose outcome the gate cannot know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// True: the write took effect (it becomes `executed` and can be rolled
    /// back). False: it did not (it becomes `failed`).
    pub executed: bool,
    /// What the person checked, for the audit trail.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = r"\S"))]
    pub reason: String,
}

/// One change of a write's status, as the history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Transition {
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<WriteStatus>,
    pub to: WriteStatus,
    /// The token name that caused it, or `gate`.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An approval counts only for the exact proposal and decision it was given
/// for: both hashes are kept with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Approval {
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub proposal_hash: String,
    pub decision_hash: String,
}

/// What one resource came back as after a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct RestoreItem {
    pub resource: String,
    /// `restored` only where verification against the capture passed.
    pub status: RestoreStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum RestoreStatus {
    Restored,
    /// The target changed after the write; nothing was overwritten.
    Drift,
    /// Put back, but verification found a difference.
    Mismatch,
    Failed,
    /// Put back, and its metadata matches the capture, but its contents
    /// could not be verified (the fs vault holds no seal of them): not
    /// `restored`, which only verification earns.
    Unverified,
    /// A compensating request that a rollback cut short by a crash had sent,
    /// or was about to send: whether it took effect is not known here, and
    /// it is not sent twice. A person checks the target.
    Sent,
}

/// The outcome of a rollback, verified against what was captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct RollbackReport {
    /// True only when every item is `restored`.
    pub verified: bool,
    pub items: Vec<RestoreItem>,
    pub forced: bool,
}

/// A write as the gate records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct WriteRecord {
    pub id: String,
    /// The name of the token that submitted it.
    pub agent: String,
    pub status: WriteStatus,
    pub connector: String,
    /// The proposal as planned: with the touches and steps the connector
    /// added.
    pub proposal: Proposal,
    pub decision: Decision<'static>,
    /// Hash of the planned proposal: approvals bind to it.
    pub proposal_hash: String,
    /// Hash of what the decision found (verdict, reasons, evidence statuses,
    /// coverage): approvals bind to it, and re-verification compares it.
    pub decision_hash: String,
    /// Hash of the proposal as submitted: the same idempotency key with a
    /// different proposal is a conflict, not a repeat.
    pub submitted_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Distinct approvals needed before it runs (by bearer).
    pub required_approvals: u32,
    /// Whether an approval must carry a written reason (`comment`): a third
    /// party bears the cost, or something external is reached (the rule is
    /// [`crate::stakes::high_stakes`]). Set with the decision; a record
    /// without it is taken as needing one.
    #[serde(default = "needs_reason_unless_told")]
    pub approval_needs_reason: bool,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    #[serde(default)]
    pub history: Vec<Transition>,
    /// The connector's record of what it captured (vault paths, rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub capture: Option<serde_json::Value>,
    /// What the write returned when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub outcome: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
    /// Why an in-flight write is not moving (its connector is missing from
    /// this gate, its target is unreachable and is retried): shown so that
    /// nothing waits silently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// The id of the gate whose vault holds this write's capture, for
    /// connectors that keep it in files on the gate's machine (`fs`, and
    /// the before-images of `sql`): only that gate (or one sharing its
    /// vault and id) can roll it back or settle it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_gate: Option<String>,
    /// Set when the gate ran this write in observe mode although its
    /// decision (`decision`, verdict `hold`) would have held it for a
    /// person: what enforcement would have stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_hold: Option<ObservedHold>,
    /// What the connector found at each resource the write touches when
    /// it was decided (a kind: `fs.file`, `fs.dir`, `fs.symlink`,
    /// `fs.absent`, …). Approvals bind to it with the decision, and
    /// re-verification plans the write again and compares: a target
    /// replaced while the write was held (a file swapped for a link, a
    /// file created where none was) holds it again, since what a reviewer
    /// approved is no longer what would run. Empty for connectors that
    /// describe nothing, and for writes decided before it was kept.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub targets: std::collections::BTreeMap<String, String>,
    /// What the caller may do to it now (role, status, separation of
    /// duties). Filled per caller by the gate when it answers; empty in
    /// what the store keeps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<WriteAction>,
    /// The catalog's titles of the resources its decision names (what it
    /// touches and its blast radius, the first 1,000), for a
    /// caller who may read the catalog: "Fifteen years of purchase
    /// history" is what makes a reviewer stop, not `history:seller-4411`.
    /// Filled per caller when the gate answers; empty in what the store
    /// keeps.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub titles: std::collections::BTreeMap<String, String>,
    /// The proposal as submitted (secrets in clear), encrypted with the
    /// gate's action key and bound to this write's id; `proposal` is the
    /// masked form. Kept only while a connector may still need it, and
    /// never returned by the API (the gate strips it at the edge: see
    /// [`WriteRecord::without_sealed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub sealed_proposal: Option<String>,
}

/// A write in a list: enough to triage without its graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct WriteSummary {
    pub id: String,
    pub agent: String,
    pub intent: String,
    pub status: WriteStatus,
    pub connector: String,
    pub verdict: Verdict,
    pub reason_codes: Vec<recourse_core::ReasonCode>,
    pub bearers: Vec<Bearer>,
    pub touches: Vec<String>,
    pub blast_radius_size: usize,
    /// The soonest `until` among its windows, for sorting the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nearest_window: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Why an in-flight write is not moving (see [`WriteRecord::waiting`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// The gate ran it in observe mode although its decision would have
    /// held it (see [`WriteRecord::observed_hold`]; `reason_codes` say why).
    #[serde(default)]
    pub observed_hold: bool,
    /// Distinct approvals its current decision calls for.
    #[serde(default)]
    pub required_approvals: u32,
    /// Who approved its current proposal and decision (approvals given for
    /// an earlier decision no longer count and are not listed).
    #[serde(default)]
    pub approved_by: Vec<String>,
    /// Whether an approval must carry a written reason (see
    /// [`WriteRecord::approval_needs_reason`]): the console's quick keys do
    /// not approve these from the queue.
    #[serde(default = "needs_reason_unless_told")]
    pub approval_needs_reason: bool,
    /// What the caller may do to it now. Filled per caller by the gate when
    /// it answers; empty in what the store keeps.
    #[serde(default)]
    pub actions: Vec<WriteAction>,
}

/// A record or summary stored before the gate said whether its approval
/// needs a reason is taken as needing one: the safe side.
fn needs_reason_unless_told() -> bool {
    true
}

impl WriteRecord {
    /// The record as the API shows it: without the sealed proposal.
    pub fn without_sealed(mut self) -> Self {
        self.sealed_proposal = None;
        self
    }

    pub fn summary(&self) -> WriteSummary {
        let mut reason_codes: Vec<_> = self.decision.reasons.iter().map(|r| r.code).collect();
        reason_codes.dedup();
        WriteSummary {
            id: self.id.clone(),
            agent: self.agent.clone(),
            intent: self.proposal.intent.clone(),
            status: self.status,
            connector: self.connector.clone(),
            verdict: self.decision.decision,
            reason_codes,
            bearers: self.decision.bearers.clone(),
            touches: self.proposal.touches.clone(),
            blast_radius_size: self.decision.blast_radius.len(),
            nearest_window: self.decision.evidence.iter().filter_map(|e| e.until).min(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            waiting: self.waiting.clone(),
            observed_hold: self.observed_hold.is_some(),
            required_approvals: self.required_approvals,
            approved_by: self.current_approvers(),
            approval_needs_reason: crate::stakes::approval_needs_reason(
                &self.connector,
                &self.decision,
            ),
            actions: Vec::new(),
        }
    }

    /// The distinct approvers whose approval binds to the current proposal
    /// and decision.
    pub fn current_approvers(&self) -> Vec<String> {
        let mut by: Vec<String> = self
            .approvals
            .iter()
            .filter(|a| {
                a.proposal_hash == self.proposal_hash && a.decision_hash == self.decision_hash
            })
            .map(|a| a.by.clone())
            .collect();
        by.sort();
        by.dedup();
        by
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// Why the reviewer approves. Required (not blank) where the write's
    /// `approval_needs_reason` is true; `reason` is accepted as its name too.
    #[serde(default, alias = "reason")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why, for the audit trail: required, and not blank.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = r"\S"))]
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Why, for the audit trail: required, and not blank.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = r"\S"))]
    pub reason: String,
    /// Overwrite a target that changed after the write.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    /// Why, for the audit trail: required, and not blank.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = r"\S"))]
    pub reason: String,
}

/// The kill switch: while frozen, nothing runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct FreezeState {
    pub frozen: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How the gate treats a write its decision holds. One mode for every gate
/// on a store; only an admin switches it, and each switch is audited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum GateMode {
    /// A write the decision holds waits for a person.
    #[default]
    Enforce,
    /// A write the decision holds is captured and run like a `proceed`,
    /// and marked (`observed_hold`): nobody looks at it before it runs.
    /// Refusals still refuse and a freeze still holds everything.
    Observe,
}

impl GateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            GateMode::Enforce => "enforce",
            GateMode::Observe => "observe",
        }
    }

    pub fn parse(s: &str) -> Option<GateMode> {
        [GateMode::Enforce, GateMode::Observe]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// The gate's mode as stored: which, set by whom, when and why (none of
/// these for a store nobody switched).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct ModeState {
    pub mode: GateMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An admin switches the mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct ModeRequest {
    pub mode: GateMode,
    /// Why: kept in the audit trail.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = r"\S"))]
    pub reason: String,
}

/// A write observe mode ran although its decision would have held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct ObservedHold {
    /// When it was let through.
    pub at: DateTime<Utc>,
    /// The reasons enforcement would have held it for (the decision's,
    /// with their subjects and sentences, are in `decision.reasons`).
    pub reason_codes: Vec<recourse_core::ReasonCode>,
}

/// Rewind: roll back every write executed since a time (or by one agent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct RewindRequest {
    pub since: DateTime<Utc>,
    #[serde(default)]
    pub agent: Option<String>,
    pub reason: String,
    /// Only list what would be undone.
    #[serde(default)]
    pub preview: bool,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct RewindItem {
    pub write: WriteSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What its rollback puts back: the resources of its blast radius that
    /// an available step restores (the first 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comes_back: Vec<String>,
    /// What no rollback puts back: the resources of its blast radius that
    /// are external or that no available step restores (the first 100), so
    /// a preview says what a rewind leaves as it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stays: Vec<String>,
}

/// How many resources of a write's decision the gate gives titles for (the
/// field's doc says 1,000: keep them in step).
pub const TITLES_LISTED: usize = 1000;

/// How many resources a rewind item names in `comes_back` and in `stays`
/// (its field docs say 100: keep them in step).
pub const REWIND_LISTED: usize = 100;

impl RewindItem {
    /// An item for `rec`, with what its rollback puts back and what it
    /// cannot, read off its decision's blast radius.
    pub fn of(rec: &WriteRecord, rollback: Option<RollbackReport>, error: Option<String>) -> Self {
        let (mut comes_back, mut stays) = (Vec::new(), Vec::new());
        for e in &rec.decision.blast_radius {
            let list = if e.covered && e.reach != recourse_core::Reach::External {
                &mut comes_back
            } else {
                &mut stays
            };
            if list.len() < REWIND_LISTED {
                list.push(e.resource.to_string());
            }
        }
        RewindItem {
            write: rec.summary(),
            rollback,
            error,
            comes_back,
            stays,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct RewindReport {
    pub preview: bool,
    /// Newest first: the order they are (or would be) undone in.
    pub items: Vec<RewindItem>,
}

/// One entry of the hash-chained audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub body: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct AuditVerification {
    pub ok: bool,
    pub entries: u64,
    /// The first entry whose hash or link does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The hash of the last entry: the chain's head, to keep elsewhere.
    pub head: String,
}

/// A server-sent event: a write (or the gate) changed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct GateEvent {
    /// The `seq` of the audit entry the event stands for: its order across
    /// every gate sharing the store, and the server-sent event's `id` (send
    /// it back as `Last-Event-ID` to resume after it).
    #[serde(default)]
    pub seq: i64,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<WriteStatus>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct WhoAmI {
    pub name: String,
    pub role: Role,
    /// How the caller signed in; absent from gates before sign-in with
    /// OpenID Connect (read as `token`).
    #[serde(default)]
    pub signed_in: SignIn,
    /// When the caller's token stops working (`exp` of an ID token, the
    /// expiry of a bearer token); absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// How a caller signed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum SignIn {
    /// A bearer token the gate issued (`recourse token create`): agents,
    /// automation, small teams.
    #[default]
    Token,
    /// An ID token from the institution's identity provider (OpenID
    /// Connect); the name is `oidc:` and the claim that names the person.
    Oidc,
}

/// A catalog resource with what reaches it, what it reaches, the writes
/// that touched it, and the held writes whose blast radius reaches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct ResourceView {
    pub resource: Resource,
    pub reaches: Vec<Neighbour>,
    pub reached_by: Vec<Neighbour>,
    pub writes: Vec<WriteSummary>,
    /// Held writes whose blast radius, as their current decision computed
    /// it, includes this resource (touched or reached): what a change to it
    /// may decide differently. The newest 1,000 held writes are looked at.
    #[serde(default)]
    pub held_reaching: Vec<WriteSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Neighbour {
    pub resource: Resource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// True for `fs:` containment rather than a declared edge.
    pub contains: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    pub role: Role,
    /// What the token's writes may reach; absent: everything the gate
    /// serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<TokenScope>,
}

/// What a token's writes may reach. A token without a scope reaches
/// everything the gate serves; with one, only what is listed: a scope
/// that lists only `sql` databases writes no file and calls no host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct TokenScope {
    /// Absolute directories the token's `fs` writes must lie under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fs_roots: Vec<String>,
    /// `sql` databases (the gate's `--sql NAME`) the token may write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sql: Vec<String>,
    /// Hosts (`host` or `host:port`, as `--http-allow`) the token may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_allow: Vec<String>,
}

/// A token as `GET /v1/tokens` lists it: never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    /// Absent: the token reaches everything the gate serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<TokenScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Set once the token is revoked: it no longer works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct TokenCreated {
    pub name: String,
    pub role: Role,
    /// Shown once; the gate keeps only its hash.
    pub token: String,
}

/// The body of every error: `{"error": {"code", "message", "field"?}}`.
/// Every code the gate answers an error with (`{"error": {"code"}}`): one
/// closed list, with its HTTP status and meaning, generated into the
/// console's bindings, the OpenAPI document and docs/errors.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Invalid,
    Unauthorized,
    Forbidden,
    OutOfScope,
    NotFound,
    TooLarge,
    ReasonRequired,
    RateLimited,
    OverQuota,
    Target,
    Unavailable,
    Internal,
    WrongStatus,
    AlreadyApproved,
    Frozen,
    InProgress,
    Busy,
    Conflict,
    ClaimLost,
    OtherGate,
    Drift,
    IdempotencyConflict,
    CatalogMoved,
    Duplicate,
    Revoked,
    UnknownConnector,
    SealedUnreadable,
    EffectPast,
    NoEffect,
    EffectUnmaskable,
    /// Client side only: the answer was not the gate's error body (a
    /// proxy's page, say); the gate never sends it.
    Http,
    /// Client side only: a code this client does not know (a newer gate).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 32] = [
        ErrorCode::Invalid,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::OutOfScope,
        ErrorCode::NotFound,
        ErrorCode::TooLarge,
        ErrorCode::ReasonRequired,
        ErrorCode::RateLimited,
        ErrorCode::OverQuota,
        ErrorCode::Target,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::WrongStatus,
        ErrorCode::AlreadyApproved,
        ErrorCode::Frozen,
        ErrorCode::InProgress,
        ErrorCode::Busy,
        ErrorCode::Conflict,
        ErrorCode::ClaimLost,
        ErrorCode::OtherGate,
        ErrorCode::Drift,
        ErrorCode::IdempotencyConflict,
        ErrorCode::CatalogMoved,
        ErrorCode::Duplicate,
        ErrorCode::Revoked,
        ErrorCode::UnknownConnector,
        ErrorCode::SealedUnreadable,
        ErrorCode::EffectPast,
        ErrorCode::NoEffect,
        ErrorCode::EffectUnmaskable,
        ErrorCode::Http,
        ErrorCode::Unknown,
    ];

    /// The code as it is on the wire (serde's spelling; a test keeps them
    /// the same).
    pub fn as_str(self) -> &'static str {
        self.about().0
    }

    /// The HTTP status the gate answers this code with (0 for the
    /// client-side codes).
    pub fn status(self) -> u16 {
        self.about().1
    }

    /// What the code means for a caller, and what to do about it.
    pub fn meaning(self) -> &'static str {
        self.about().2
    }

    fn about(self) -> (&'static str, u16, &'static str) {
        match self {
            ErrorCode::Invalid => ("invalid", 400, "The request is malformed; `field` names what is wrong. Nothing changed."),
            ErrorCode::Unauthorized => ("unauthorized", 401, "No token, or an unknown, revoked or expired one."),
            ErrorCode::Forbidden => ("forbidden", 403, "The caller's role may not do this (the message names who may), or the connector refuses the action."),
            ErrorCode::OutOfScope => ("out_of_scope", 403, "The write reaches something outside its token's scope; the message names what."),
            ErrorCode::NotFound => ("not_found", 404, "No such write, resource or token (an agent sees only its own writes)."),
            ErrorCode::TooLarge => ("too_large", 413, "The body is larger than the gate accepts."),
            ErrorCode::ReasonRequired => ("reason_required", 422, "A high-stakes approval without a written reason; `field` names where it goes. Nothing was recorded."),
            ErrorCode::RateLimited => ("rate_limited", 429, "The token is over its requests per second; wait `Retry-After` seconds."),
            ErrorCode::OverQuota => ("over_quota", 429, "The token's pending writes hold as many stored bytes as its quota allows; room frees as they are decided."),
            ErrorCode::Target => ("target", 502, "The target system failed or could not be read."),
            ErrorCode::Unavailable => ("unavailable", 503, "The gate's store cannot record now (the message names why); what it could not record was not done. Try again."),
            ErrorCode::Internal => ("internal", 500, "A fault of the gate itself, logged there."),
            ErrorCode::WrongStatus => ("wrong_status", 409, "The write is not in a status that allows this (approving a write that ran, rolling back a held one)."),
            ErrorCode::AlreadyApproved => ("already_approved", 409, "This person approved the write already; another reviewer's approval is needed."),
            ErrorCode::Frozen => ("frozen", 409, "The gate is frozen: nothing begins executing until an incident lead resumes it."),
            ErrorCode::InProgress => ("in_progress", 409, "The write is being worked on; its outcome will show in its history."),
            ErrorCode::Busy => ("busy", 409, "The write kept changing under concurrent requests; try again."),
            ErrorCode::Conflict => ("conflict", 409, "The write moved between reading it and recording this (another request changed it); reload it and try again."),
            ErrorCode::ClaimLost => ("claim_lost", 409, "This gate's claim on the write lapsed and another gate took it; that gate settles it."),
            ErrorCode::OtherGate => ("other_gate", 409, "The write's capture is in another gate's vault; that gate rolls it back."),
            ErrorCode::Drift => ("drift", 409, "The target changed after the write; a rollback without `force` overwrites nothing."),
            ErrorCode::IdempotencyConflict => ("idempotency_conflict", 409, "The idempotency key was used for a different proposal."),
            ErrorCode::CatalogMoved => ("catalog_moved", 409, "The catalog is not at the version the request expected; plan again."),
            ErrorCode::Duplicate => ("duplicate", 409, "A token with that name exists (revoked tokens keep their names)."),
            ErrorCode::Revoked => ("revoked", 409, "The token was revoked already."),
            ErrorCode::UnknownConnector => ("unknown_connector", 409, "This gate has no connector for the write, so it cannot read or run it."),
            ErrorCode::SealedUnreadable => ("sealed_unreadable", 409, "The write's sealed proposal cannot be opened with this gate's action key."),
            ErrorCode::EffectPast => ("effect_past", 409, "Only a held or approved write has an effect to preview; what a write did is in its outcome."),
            ErrorCode::NoEffect => ("no_effect", 409, "The write's connector cannot preview its writes."),
            ErrorCode::EffectUnmaskable => ("effect_unmaskable", 409, "The effect could not be masked, so it is not shown."),
            ErrorCode::Http => ("http", 0, "Client side: the answer was not the gate's error body."),
            ErrorCode::Unknown => ("unknown", 0, "Client side: a code this client does not know."),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The table of docs/errors.md: every code the gate sends, its status and
/// what it means.
pub fn error_codes_markdown() -> String {
    let mut out = String::from("| code | HTTP | meaning |\n|---|---|---|\n");
    for c in ErrorCode::ALL.into_iter().filter(|c| c.status() != 0) {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.as_str(),
            c.status(),
            c.meaning()
        ));
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// What `POST /v1/explain` returns: the proposal as its connector planned it
/// and the decision it would get now. Nothing is stored or run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Explained {
    pub proposal: Proposal,
    pub decision: Decision<'static>,
}

/// `POST /v1/catalog/plan` and `PUT /v1/catalog`: a whole catalog to
/// become the gate's, as a risk officer keeps it in a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct CatalogReplacement {
    pub catalog: recourse_core::Catalog,
    /// Refuse with 409 `catalog_moved` unless the catalog's version is
    /// still this one (the `version` a plan showed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_version: Option<i64>,
    /// How many recent writes that are not held (newest first) a plan
    /// decides again besides the held ones; default 50, at most 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent: Option<u32>,
    /// Why the catalog is being changed (`PUT` only): kept in the
    /// `catalog.replaced` audit entry. The console asks for one; when
    /// given it must not be blank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A write that would be decided differently under a proposed catalog:
/// both decisions are made now, with the same observations, so only the
/// catalog differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Redecided {
    pub id: String,
    pub agent: String,
    pub intent: String,
    pub status: WriteStatus,
    pub touches: Vec<String>,
    /// Under the catalog the gate has.
    pub before: Verdict,
    /// Under the proposed catalog.
    pub after: Verdict,
    /// Reasons the proposed catalog adds (by code and subject).
    pub reasons_added: Vec<recourse_core::Reason<'static>>,
    /// Reasons it takes away.
    pub reasons_removed: Vec<recourse_core::Reason<'static>>,
}

/// What `POST /v1/catalog/plan` answers: what applying the catalog would
/// change, and which writes it would decide differently. Nothing is stored
/// or audited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct CatalogPlan {
    /// The version of the catalog compared with (give it as
    /// `expect_version` to apply only onto this one).
    pub version: i64,
    pub diff: recourse_core::catalog_diff::CatalogDiff,
    /// Writes decided again: the held ones and the recent ones.
    pub examined: u32,
    /// Those whose verdict or reasons change.
    pub writes: Vec<Redecided>,
    /// Writes that could not be decided again, each with why (no such
    /// connector on this gate, a proposal that does not open).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// What `PUT /v1/catalog` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct CatalogReplaced {
    /// The catalog's version before and after (the same when nothing
    /// changed: then nothing was stored or audited).
    pub version_before: i64,
    pub version: i64,
    pub diff: recourse_core::catalog_diff::CatalogDiff,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_listed_once_and_spelled_as_serde_spells_it() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c), "{c:?} listed twice");
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::json!(c.as_str()))
            );
            let back: ErrorCode =
                serde_json::from_value(serde_json::json!(c.as_str())).unwrap_or(ErrorCode::Http);
            assert_eq!(back, c);
            assert!(!c.meaning().is_empty());
        }
        // A newer gate's code still reads.
        let later: ErrorCode =
            serde_json::from_value(serde_json::json!("from_the_future")).unwrap_or(ErrorCode::Http);
        assert_eq!(later, ErrorCode::Unknown);
    }

    /// A rewind item names what its rollback puts back and what it leaves:
    /// the external resource and the uncovered one stay, the covered one
    /// comes back.
    #[test]
    fn a_rewind_item_says_what_comes_back_and_what_stays() {
        let rec: WriteRecord = serde_json::from_value(serde_json::json!({
            "id": "w-1", "agent": "bot", "status": "executed", "connector": "fs",
            "proposal": {"agent": "bot", "intent": "close", "action": {"connector": "fs", "op": "delete", "path": "/srv/a"},
                         "touches": ["fs:/srv/a"]},
            "decision": {"decision": "hold", "reasons": [], "bearers": ["customer"], "evidence": [],
                "blast_radius": [
                    {"resource": "fs:/srv/a", "depth": 0, "reach": "controlled", "bearer": "institution", "covered": true},
                    {"resource": "licenses:4411", "depth": 1, "reach": "external", "bearer": "customer", "covered": false},
                    {"resource": "report:m", "depth": 1, "reach": "observed", "bearer": "institution", "covered": false}
                ]},
            "proposal_hash": "p", "decision_hash": "d", "submitted_hash": "s",
            "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
            "required_approvals": 1
        }))
        .unwrap_or_else(|e| unreachable!("{e}"));
        let item = RewindItem::of(&rec, None, None);
        assert_eq!(item.comes_back, vec!["fs:/srv/a"]);
        assert_eq!(item.stays, vec!["licenses:4411", "report:m"]);
    }
}
