//! The report's shape: what `GET /v1/report` returns and what the
//! renderers read. Every field is documented in plain words in
//! `docs/report.md`.

use chrono::{DateTime, Utc};
use recourse_client::WriteStatus;
use recourse_core::{Bearer, EvidenceKind, EvidenceStatus, Reach, Verdict};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The seed's three Monday audits, over every kind of write the gate has
/// seen and every resource its catalog declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Report {
    /// When the report was computed (the caller's clock).
    pub generated_at: DateTime<Utc>,
    pub summary: Summary,
    /// Kinds of write, the least recoverable first.
    pub kinds: Vec<KindAudit>,
    /// Every catalog resource, the ones needing attention first.
    pub resources: Vec<ResourceAudit>,
}

/// The report in a few numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Summary {
    pub writes: u32,
    pub kinds: u32,
    /// Audit 1: kinds with at least one write whose rollback path resolves
    /// to a manual step or to nothing.
    pub kinds_not_reversible: u32,
    /// Audit 2: kinds with at least one write whose rollback depended on
    /// context that was not verified outside its blast radius.
    pub kinds_aspirational: u32,
    /// Audit 3: kinds where a third party bore the cost of every write seen.
    pub kinds_always_need_a_person: u32,
    /// Audit 3: kinds where a third party bore the cost of some writes.
    pub kinds_sometimes_need_a_person: u32,
    pub resources: u32,
    /// Catalog resources outside every system the institution runs.
    pub resources_external: u32,
    /// Catalog resources borne by a third party.
    pub resources_third_party: u32,
}

/// Where a rollback path resolves, for one write (and, for a kind or a
/// path, the worst of its writes). Ordered from worst to best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum PathVerdict {
    /// No rollback step at all: not reversible.
    NoPath,
    /// A step is manual ("contact support", "manual reconciliation"): not
    /// reversible, a write that happens to have a cleanup team.
    ManualStep,
    /// Something in the blast radius is external, or no step restores it:
    /// that part resolves to nothing.
    LeavesUnrestored,
    /// Every part has a modelled step, but a step depends on context not
    /// verified outside the blast radius (or cannot run): aspirational.
    Aspirational,
    /// Every part has a step that is available, with its context verified.
    Real,
}

impl PathVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            PathVerdict::NoPath => "no_path",
            PathVerdict::ManualStep => "manual_step",
            PathVerdict::LeavesUnrestored => "leaves_unrestored",
            PathVerdict::Aspirational => "aspirational",
            PathVerdict::Real => "real",
        }
    }

    /// Audit 1: a path that resolves to a manual step or to nothing.
    pub fn reversible(self) -> bool {
        self >= PathVerdict::Aspirational
    }

    /// A sentence for a reader.
    pub fn sentence(self) -> &'static str {
        match self {
            PathVerdict::NoPath => "no rollback path: not reversible",
            PathVerdict::ManualStep => {
                "resolves to a manual step: not reversible, a write with a cleanup team"
            }
            PathVerdict::LeavesUnrestored => {
                "leaves part of its blast radius with nothing to restore it"
            }
            PathVerdict::Aspirational => {
                "depends on context not verified outside its blast radius: aspirational"
            }
            PathVerdict::Real => "every part restorable, its context verified",
        }
    }
}

/// Audit 3 for a kind: whether a third party bears the cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum NeedsPerson {
    /// Every write of the kind seen had a third-party bearer in its blast
    /// radius.
    Always,
    /// Some did.
    Sometimes,
    /// None did (or none was judged: every write was refused).
    Never,
}

impl NeedsPerson {
    pub fn as_str(self) -> &'static str {
        match self {
            NeedsPerson::Always => "always",
            NeedsPerson::Sometimes => "sometimes",
            NeedsPerson::Never => "never",
        }
    }
}

/// One kind of write: what it does (connector and op), to what (the catalog
/// kinds of the resources it touches) and whose those are (their bearers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct KindAudit {
    /// `connector op → target kinds (owners)`, e.g.
    /// `http request POST → marketplace.account (customer)`.
    pub key: String,
    pub connector: String,
    /// The action's `op`, with the HTTP method when there is one.
    pub op: String,
    /// The catalog `kind` of each touched resource (else one derived from
    /// its id: `fs.path`, `sql.table`, ...), distinct and sorted.
    pub targets: Vec<String>,
    /// The bearers of the touched resources themselves.
    pub owners: Vec<Bearer>,
    pub counts: Counts,
    /// Audit 1: the worst path of its judged writes.
    pub rollback: PathVerdict,
    /// Audit 1: how many judged writes resolved where (worst first).
    pub verdicts: Vec<VerdictCount>,
    /// The distinct rollback paths its writes had, most frequent first.
    pub paths: Vec<PathAudit>,
    /// Resources its writes reached that no step restores (or that are
    /// external), with how often.
    pub unrestored: Vec<Unrestored>,
    /// Audit 2: at least one rollback depended on context that was not
    /// verified outside the blast radius.
    pub aspirational: bool,
    /// Audit 3: every bearer in its writes' blast radii, with how often.
    pub bearers: Vec<BearerCount>,
    pub needs_person: NeedsPerson,
    /// Its writes, newest first (at most [`crate::WRITES_PER_KIND`]).
    pub writes: Vec<WriteRef>,
}

/// How many writes of a kind were seen, and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Counts {
    pub seen: u32,
    /// Decided `hold`: a person had to decide (or, in observe mode, would
    /// have).
    pub held: u32,
    /// Refused by the gate: never run, and left out of the three audits.
    pub refused: u32,
    /// Began executing (executing, executed, rolling back, rolled back,
    /// rollback failed, outcome unknown).
    pub ran: u32,
    /// Ran although held, in observe mode.
    pub ran_unreviewed: u32,
    pub rolled_back: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct VerdictCount {
    pub verdict: PathVerdict,
    pub writes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct BearerCount {
    pub bearer: Bearer,
    /// Writes whose blast radius held something this bearer bears.
    pub writes: u32,
}

/// A write, as the report names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct WriteRef {
    pub id: String,
    pub agent: String,
    /// As stored: masked.
    pub intent: String,
    pub status: WriteStatus,
    pub verdict: Verdict,
    /// None for a refused write (not judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathVerdict>,
    pub created_at: DateTime<Utc>,
}

/// One distinct rollback path (the same steps, in order) and its writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct PathAudit {
    pub writes: u32,
    /// The newest write with this path.
    pub example: String,
    /// The worst of its writes.
    pub verdict: PathVerdict,
    /// Empty: the path resolves to nothing.
    pub steps: Vec<StepAudit>,
}

/// Who modelled a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum StepSource {
    /// A connector of the gate modelled and captured it itself.
    Connector,
    /// The agent proposed it: judged like the rest, never trusted.
    Agent,
}

impl StepSource {
    pub fn as_str(self) -> &'static str {
        match self {
            StepSource::Connector => "connector",
            StepSource::Agent => "agent",
        }
    }
}

/// One step of a rollback path, over the writes that had it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct StepAudit {
    /// 1-based, in the order the path runs.
    pub position: u32,
    pub source: StepSource,
    /// The connector that modelled it, for a connector's step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modelled_by: Option<String>,
    /// What runs, in a line (`http request POST https://…/reopen`,
    /// `fs restore`, `manual: contact support`); masked, with the write's
    /// own id shown as `{write}`.
    pub op: String,
    pub manual: bool,
    /// What it puts back (distinct, at most [`crate::LIST_CAP`]).
    pub restores: Vec<String>,
    /// Of the writes with this path, in how many this step was available
    /// (not manual, runnable, its located context verified).
    pub available_in: u32,
    /// Audit 2: the context it depends on.
    pub context: Vec<ContextAudit>,
}

/// One piece of context a step depends on (grouped by kind and location),
/// with what the gate found at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct ContextAudit {
    pub kind: EvidenceKind,
    /// The evidence id (the write's own id shown as `{write}`).
    pub id: String,
    /// The resource id where it is held (none for a `window`), the write's
    /// own id shown as `{write}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// How many writes depended on it.
    pub writes: u32,
    /// Its statuses, by how many writes (worst first).
    pub statuses: Vec<StatusCount>,
    /// Held inside the write's own blast radius: the write may take it.
    pub inside_blast_radius: u32,
    /// Observed absent, or no observation could be made.
    pub missing_or_unverifiable: u32,
    /// Too old (`stale`), or a window that closed or was closing.
    pub too_old: u32,
    pub verified: u32,
    /// The age the proposal demanded, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_s: Option<u64>,
    /// The oldest capture time observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_capture: Option<DateTime<Utc>>,
    /// The greatest age of a capture when its write was submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_at_submission_s: Option<i64>,
    /// Who verified it and how (distinct, at most [`crate::LIST_CAP`]).
    pub verified_by: Vec<String>,
}

impl ContextAudit {
    /// Audit 2: the context was retained outside the blast radius in every
    /// write that depended on it.
    pub fn retained(&self) -> bool {
        self.verified == self.writes
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct StatusCount {
    pub status: EvidenceStatus,
    pub writes: u32,
}

/// A resource in a blast radius that no available step restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Unrestored {
    pub resource: String,
    pub reach: Reach,
    pub bearer: Bearer,
    /// `external` (outside every system: nothing can restore it) or
    /// `no_step` (no step of the path restores it).
    pub why: String,
    pub writes: u32,
}

/// Where a catalog resource stands, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum ResourceVerdict {
    /// External: no system the institution runs can put it back.
    External,
    /// A write reached it and no step of its path restored it.
    NotRestored,
    /// A step restored it, but not always with verified context.
    Aspirational,
    /// Every write that reached it had an available step restoring it.
    Restorable,
    /// No write has reached it yet: no path is known.
    NotReached,
}

impl ResourceVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceVerdict::External => "external",
            ResourceVerdict::NotRestored => "not_restored",
            ResourceVerdict::Aspirational => "aspirational",
            ResourceVerdict::Restorable => "restorable",
            ResourceVerdict::NotReached => "not_reached",
        }
    }
}

/// The three audits for one catalog resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct ResourceAudit {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub reach: Reach,
    /// As the catalog declares it; none for a resource a connector
    /// discovered (it is borne by its nearest container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_bearer: Option<Bearer>,
    /// The bearers the gate's decisions gave it (inheritance applied).
    pub bearers: Vec<Bearer>,
    pub verdict: ResourceVerdict,
    /// Audit 3: a third party bears it (declared, or as decided).
    pub needs_person: bool,
    /// Writes that touched it directly.
    pub touched_by: u32,
    /// Writes whose blast radius held it (touched ones included).
    pub reached_by: u32,
    /// Of those, writes where an available step restored it.
    pub restored_in: u32,
    /// Audit 1: how its rollbacks ran (step lines, distinct, at most
    /// [`crate::LIST_CAP`]).
    pub restored_by: Vec<String>,
    /// Audit 2: evidence items held here that rollbacks depended on.
    pub context_held: u32,
    /// Of those, how many lay inside their own write's blast radius.
    pub context_inside_blast_radius: u32,
    /// Keys of the kinds of write that reached it (at most
    /// [`crate::LIST_CAP`]).
    pub kinds: Vec<String>,
}
