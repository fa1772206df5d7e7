//! The decision: blast radius, evidence, coverage, reasons (sections 4, 5).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use fixedbitset::FixedBitSet;
use serde::{Deserialize, Serialize};

use crate::blast_radius::{BlastRadius, Visit};
use crate::catalog::{Bearer, CatalogGraph, Reach};
use crate::evidence::{self, EvidenceKind, EvidenceStatus, Observations};
use crate::id;
use crate::proposal::{Proposal, Step};

/// What the decision may depend on besides its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Policy {
    /// A window closing sooner than this is `window_closing`.
    pub window_margin_s: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            window_margin_s: 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Covered and institution-borne: capture, then run.
    Proceed,
    /// A person decides.
    Hold,
    /// The gate must never run it (added by the gate, never by the engine).
    Refuse,
}

/// Every reason code, in the order reasons are listed. The engine's codes
/// come first; the gate's own (refusals and its extra holds) follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    External,
    Uncovered,
    ThirdPartyBearer,
    EvidenceInBlastRadius,
    EvidenceMissing,
    EvidenceUnverifiable,
    EvidenceExpired,
    EvidenceWindowClosing,
    EvidenceStale,
    ManualStep,
    UnknownResource,
    // The gate's codes.
    /// A path outside the gate's roots, or one that leaves them.
    OutsideRoots,
    /// A connector (or database, or host) the gate does not have.
    UnknownConnector,
    /// The action itself is malformed for its connector.
    InvalidAction,
    /// The gate is frozen: nothing runs until an incident lead resumes it.
    Frozen,
    /// A raw statement or an unbounded change the connector cannot model.
    Unmodelled,
}

impl ReasonCode {
    /// The code as the wire spells it (`third_party_bearer`), for notes,
    /// tables and messages: one place instead of a serde round trip each.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::External => "external",
            ReasonCode::Uncovered => "uncovered",
            ReasonCode::ThirdPartyBearer => "third_party_bearer",
            ReasonCode::EvidenceInBlastRadius => "evidence_in_blast_radius",
            ReasonCode::EvidenceMissing => "evidence_missing",
            ReasonCode::EvidenceUnverifiable => "evidence_unverifiable",
            ReasonCode::EvidenceExpired => "evidence_expired",
            ReasonCode::EvidenceWindowClosing => "evidence_window_closing",
            ReasonCode::EvidenceStale => "evidence_stale",
            ReasonCode::ManualStep => "manual_step",
            ReasonCode::UnknownResource => "unknown_resource",
            ReasonCode::OutsideRoots => "outside_roots",
            ReasonCode::UnknownConnector => "unknown_connector",
            ReasonCode::InvalidAction => "invalid_action",
            ReasonCode::Frozen => "frozen",
            ReasonCode::Unmodelled => "unmodelled",
        }
    }

    pub fn for_status(status: EvidenceStatus) -> Option<Self> {
        Some(match status {
            EvidenceStatus::InBlastRadius => ReasonCode::EvidenceInBlastRadius,
            EvidenceStatus::Missing => ReasonCode::EvidenceMissing,
            EvidenceStatus::Unverifiable => ReasonCode::EvidenceUnverifiable,
            EvidenceStatus::Expired => ReasonCode::EvidenceExpired,
            EvidenceStatus::WindowClosing => ReasonCode::EvidenceWindowClosing,
            EvidenceStatus::Stale => ReasonCode::EvidenceStale,
            EvidenceStatus::Verified => return None,
        })
    }
}

/// Why a write is held or refused, about one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Reason<'a> {
    pub code: ReasonCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub resource: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub evidence: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// From a touched resource to the subject, for reasons about what the
    /// write reaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    pub path: Option<Vec<Cow<'a, str>>>,
    /// A sentence a reviewer can read: the reaching edge's `why` when it has
    /// one, else what the code means for this subject.
    pub detail: String,
}

impl Reason<'_> {
    pub fn into_owned(self) -> Reason<'static> {
        Reason {
            code: self.code,
            resource: self.resource.map(|c| Cow::Owned(c.into_owned())),
            evidence: self.evidence.map(|c| Cow::Owned(c.into_owned())),
            step: self.step,
            path: self
                .path
                .map(|p| p.into_iter().map(|c| Cow::Owned(c.into_owned())).collect()),
            detail: self.detail,
        }
    }

    /// The subject as one string, for sorting and display.
    pub fn subject(&self) -> String {
        if let Some(r) = &self.resource {
            return r.to_string();
        }
        if let Some(e) = &self.evidence {
            return e.to_string();
        }
        self.step.map(|s| format!("step {s}")).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct BlastEntry<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub resource: Cow<'a, str>,
    pub depth: u32,
    pub reach: Reach,
    pub bearer: Bearer,
    pub covered: bool,
    /// The resource it was reached from (none for a touched one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub via: Option<Cow<'a, str>>,
    /// Steps that would restore it, available or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored_by: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct EvidenceReport<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: Cow<'a, str>,
    pub status: EvidenceStatus,
    pub kind: EvidenceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub location: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<DateTime<Utc>>,
    /// The steps that require it.
    pub steps: Vec<usize>,
    /// What the observation saw, in the observer's words (a vault manifest
    /// and its seal, the probe's answer), for the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Who verified it and how ("the `fs` connector's own capture", "the
    /// gate's probe of GET https://…"). The engine cannot know who observed
    /// what it is given, so the gate fills this in; `recourse check` leaves
    /// it out (its observations are the scenario's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct StepReport {
    pub step: usize,
    pub manual: bool,
    /// Not manual, with at least one located evidence item (windows alone
    /// cover nothing), all of its evidence verified, and runnable.
    pub available: bool,
}

/// The decision and everything it was made from (section 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Decision<'a> {
    pub decision: Verdict,
    pub reasons: Vec<Reason<'a>>,
    pub blast_radius: Vec<BlastEntry<'a>>,
    /// Every bearer of a resource in the blast radius, third parties and
    /// the institution alike.
    pub bearers: Vec<Bearer>,
    pub evidence: Vec<EvidenceReport<'a>>,
    #[serde(default)]
    pub steps: Vec<StepReport>,
}

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

impl Decision<'_> {
    pub fn into_owned(self) -> Decision<'static> {
        Decision {
            decision: self.decision,
            reasons: self.reasons.into_iter().map(Reason::into_owned).collect(),
            blast_radius: self
                .blast_radius
                .into_iter()
                .map(|b| BlastEntry {
                    resource: owned(b.resource),
                    depth: b.depth,
                    reach: b.reach,
                    bearer: b.bearer,
                    covered: b.covered,
                    via: b.via.map(owned),
                    restored_by: b.restored_by,
                })
                .collect(),
            bearers: self.bearers,
            evidence: self
                .evidence
                .into_iter()
                .map(|e| EvidenceReport {
                    id: owned(e.id),
                    status: e.status,
                    kind: e.kind,
                    location: e.location.map(owned),
                    until: e.until,
                    captured_at: e.captured_at,
                    steps: e.steps,
                    detail: e.detail,
                    verified_by: e.verified_by,
                })
                .collect(),
            steps: self.steps,
        }
    }

    /// Adds a reason and makes the verdict at least `hold`. Reasons stay in
    /// code order, so the gate's additions sort after the engine's.
    pub fn add_reason(&mut self, reason: Reason<'_>, verdict: Verdict) {
        let reason = reason.into_owned();
        let at = self.reasons.partition_point(|r| r.code <= reason.code);
        self.reasons.insert(at, reason);
        self.decision = match (self.decision, verdict) {
            (Verdict::Refuse, _) | (_, Verdict::Refuse) => Verdict::Refuse,
            _ => Verdict::Hold,
        };
    }
}

/// Section 4: decides whether `proposal` may run on its own.
///
/// The proposal must have passed [`Proposal::validate`]; the catalog is
/// valid by construction. Nothing here fails: every problem with the write
/// becomes a reason.
pub fn decide<'a>(
    catalog: &'a CatalogGraph,
    proposal: &'a Proposal,
    observations: &Observations,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Decision<'a> {
    decide_with(catalog, proposal, observations, now, policy, &|_, _| true)
}

/// [`decide`], where `runnable(i, step)` says whether whoever runs the
/// rollback can run step `i` at all (rule 4: in the gate, its `op` must name
/// a connector the gate has, with an action that connector accepts). A step
/// that is not runnable is not available. `recourse check` runs none, so it
/// takes every step as runnable.
pub fn decide_with<'a>(
    catalog: &'a CatalogGraph,
    proposal: &'a Proposal,
    observations: &Observations,
    now: DateTime<Utc>,
    policy: &Policy,
    runnable: &dyn Fn(usize, &Step) -> bool,
) -> Decision<'a> {
    assess_with(catalog, proposal, observations, now, policy, runnable).render()
}

/// What the decision found about one resource of the blast radius.
#[derive(Debug, Clone, Copy)]
struct Facts {
    reach: Reach,
    bearer: Bearer,
    covered: bool,
}

/// A decision before its sentences: the verdict and every fact of the
/// [`Decision`], with the reasons about resources kept as positions in the
/// blast radius, unsorted, and no path, sentence or entry built.
/// [`Assessment::render`] builds the [`Decision`]; serializing an
/// `Assessment` writes the same JSON as serializing its rendering, one
/// reason and one entry at a time, so a caller that only sends the decision
/// never holds all of it. The verdict is known without rendering anything.
#[derive(Debug, Clone)]
pub struct Assessment<'a> {
    catalog: &'a CatalogGraph,
    radius: BlastRadius,
    /// The verdict ([`Decision::decision`]).
    pub decision: Verdict,
    /// By visit position.
    facts: Vec<Facts>,
    /// The steps that restore the resource at visit `pos` are
    /// `restored[restored_at[pos]..restored_at[pos + 1]]` (one list for
    /// all, not one allocation per resource).
    restored_at: Vec<u32>,
    restored: Vec<u32>,
    external: Vec<u32>,
    uncovered: Vec<u32>,
    third_party: Vec<u32>,
    /// The reasons not about a resource in the blast radius (evidence,
    /// manual steps, unknown resources), in order: few, built here.
    other_reasons: Vec<Reason<'a>>,
    bearers: Vec<Bearer>,
    evidence: Vec<EvidenceReport<'a>>,
    steps: Vec<StepReport>,
}

/// [`decide`], unrendered.
pub fn assess<'a>(
    catalog: &'a CatalogGraph,
    proposal: &'a Proposal,
    observations: &Observations,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Assessment<'a> {
    assess_with(catalog, proposal, observations, now, policy, &|_, _| true)
}

/// [`decide_with`], unrendered.
pub fn assess_with<'a>(
    catalog: &'a CatalogGraph,
    proposal: &'a Proposal,
    observations: &Observations,
    now: DateTime<Utc>,
    policy: &Policy,
    runnable: &dyn Fn(usize, &Step) -> bool,
) -> Assessment<'a> {
    let mut unknown = Vec::new();
    let mut roots = Vec::with_capacity(proposal.touches.len());
    for t in &proposal.touches {
        match catalog.node(t) {
            Some(n) => roots.push(n),
            None if !unknown.contains(&t.as_str()) => unknown.push(t.as_str()),
            None => {}
        }
    }
    let radius = BlastRadius::compute(catalog, &roots);

    // Evidence, in order of first appearance.
    let items = proposal.evidence();
    let mut evidence = Vec::with_capacity(items.len());
    let mut evidence_held = Vec::with_capacity(items.len());
    let mut verified: HashSet<&str> = HashSet::new();
    for (item, steps) in &items {
        let held_at = item
            .location
            .as_deref()
            .filter(|_| item.kind != EvidenceKind::Window)
            .and_then(|loc| locate(catalog, &radius, loc));
        let observation = observations.get(&item.id);
        let status = evidence::status(
            item,
            held_at.is_some(),
            observation,
            now,
            policy.window_margin_s,
        );
        if status == EvidenceStatus::Verified {
            verified.insert(&item.id);
        }
        evidence_held.push(held_at);
        evidence.push(EvidenceReport {
            id: Cow::Borrowed(item.id.as_str()),
            status,
            kind: item.kind,
            location: item.location.as_deref().map(Cow::Borrowed),
            until: item.until,
            captured_at: observation.and_then(|o| o.captured_at),
            steps: steps.clone(),
            detail: observation.and_then(|o| o.detail.clone()),
            verified_by: None,
        });
    }

    // Steps, and what they restore: one bitset over the catalog per step
    // (steps are few, resources many), so coverage costs a bit test per
    // resource and no hashing. `fs:` ids also restore what they contain,
    // catalogued or not, so those are kept by id as well.
    let mut steps = Vec::with_capacity(proposal.rollback.steps.len());
    let mut restores_node: Vec<FixedBitSet> = Vec::with_capacity(proposal.rollback.steps.len());
    let mut fs_restorers: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, step) in proposal.rollback.steps.iter().enumerate() {
        let manual = step.is_manual();
        // Rule 4: a window bounds when a step may run but proves nothing
        // exists, so a step needs at least one located item.
        let available = !manual
            && step
                .requires
                .iter()
                .any(|e| e.kind != EvidenceKind::Window && e.location.is_some())
            && step
                .requires
                .iter()
                .all(|e| verified.contains(e.id.as_str()))
            && runnable(i, step);
        steps.push(StepReport {
            step: i,
            manual,
            available,
        });
        let mut set = FixedBitSet::new();
        for r in &step.restores {
            if let Some(n) = catalog.node(r) {
                if set.is_empty() {
                    set.grow(catalog.len());
                }
                set.insert(n.index());
            }
            if r.starts_with("fs:") {
                let entry = fs_restorers.entry(r.as_str()).or_default();
                let s = i as u32;
                if !entry.contains(&s) {
                    entry.push(s);
                }
            }
        }
        restores_node.push(set);
    }
    // Only steps that restore some catalogued resource are tested per
    // resource.
    let restoring: Vec<(u32, &FixedBitSet)> = restores_node
        .iter()
        .enumerate()
        .filter(|(_, set)| !set.is_empty())
        .map(|(s, set)| (s as u32, set))
        .collect();

    // Coverage, over the blast radius.
    let n = radius.len();
    let mut facts = Vec::with_capacity(n);
    let mut restored_at = Vec::with_capacity(n + 1);
    let mut restored: Vec<u32> = Vec::new();
    let mut bearer_seen = [false; Bearer::ALL.len()];
    let mut external = Vec::new();
    let mut uncovered = Vec::new();
    let mut third_party = Vec::new();
    for (pos, visit) in radius.visits().iter().enumerate() {
        let pos = pos as u32;
        restored_at.push(restored.len() as u32);
        let (reach, own_bearer) = catalog.traits(visit.node);
        let start = restored.len();
        for &(s, set) in &restoring {
            if set.contains(visit.node.index()) {
                restored.push(s);
            }
        }
        let mut res = None;
        if !fs_restorers.is_empty() {
            let r = catalog.resource(visit.node);
            if let Some(r) = r.filter(|r| r.id.starts_with("fs:")) {
                for up in id::fs_ancestors(&r.id) {
                    for &s in fs_restorers.get(up).into_iter().flatten() {
                        if !restored[start..].contains(&s) {
                            restored.push(s);
                        }
                    }
                }
                if let Some(mine) = restored.get_mut(start..) {
                    mine.sort_unstable();
                }
            }
            res = r;
        }
        let bearer = match own_bearer {
            Some(b) => b,
            None => match res.or_else(|| catalog.resource(visit.node)) {
                Some(r) => catalog.bearer_of(r),
                None => Bearer::Institution,
            },
        };
        let covered = reach != Reach::External
            && restored[start..]
                .iter()
                .any(|&s| steps.get(s as usize).is_some_and(|st| st.available));
        if let Some(seen) = bearer_seen.get_mut(bearer as usize) {
            *seen = true;
        }
        if reach == Reach::External {
            external.push(pos);
        } else if !covered {
            uncovered.push(pos);
        }
        if bearer.is_third_party() {
            third_party.push(pos);
        }
        facts.push(Facts {
            reach,
            bearer,
            covered,
        });
    }
    restored_at.push(restored.len() as u32);

    let mut assessment = Assessment {
        catalog,
        radius,
        decision: Verdict::Proceed,
        facts,
        restored_at,
        restored,
        external,
        uncovered,
        third_party,
        other_reasons: Vec::new(),
        bearers: Bearer::ALL
            .iter()
            .zip(bearer_seen)
            .filter_map(|(b, seen)| seen.then_some(*b))
            .collect(),
        evidence: Vec::new(),
        steps,
    };

    // The reasons about evidence, steps and unknown resources, in order:
    // by code, then by subject.
    let mut other = Vec::new();
    let mut ordered: Vec<_> = evidence.iter().zip(evidence_held).collect();
    ordered.sort_unstable_by(|a, b| {
        (ReasonCode::for_status(a.0.status), &a.0.id)
            .cmp(&(ReasonCode::for_status(b.0.status), &b.0.id))
    });
    for (report, held_at) in ordered {
        let Some(code) = ReasonCode::for_status(report.status) else {
            continue;
        };
        let id = &report.id;
        let loc = report.location.as_deref().unwrap_or("");
        let detail = match report.status {
            EvidenceStatus::InBlastRadius => format!(
                "`{id}` is held at `{loc}`, inside what this write changes: the write would take its own rollback context"
            ),
            EvidenceStatus::Missing => format!("`{id}` was looked for at `{loc}` and is not there"),
            EvidenceStatus::Unverifiable => {
                format!("`{id}` could not be checked: nothing observed it at run time")
            }
            EvidenceStatus::Expired => format!(
                "the window `{id}` closed at {}",
                report.until.map(|u| u.to_rfc3339()).unwrap_or_default()
            ),
            EvidenceStatus::WindowClosing => format!(
                "the window `{id}` closes at {}, within the {} s margin",
                report.until.map(|u| u.to_rfc3339()).unwrap_or_default(),
                policy.window_margin_s
            ),
            EvidenceStatus::Stale => match report.captured_at {
                Some(at) => format!("`{id}` was captured at {}, longer ago than allowed", at.to_rfc3339()),
                None => format!("`{id}` must be recent, and its capture time is unknown"),
            },
            EvidenceStatus::Verified => continue,
        };
        let path = held_at.map(|(pos, inside)| {
            let mut p = assessment.path(pos);
            if let Some(loc) = inside {
                p.push(Cow::Borrowed(loc));
            }
            p
        });
        other.push(Reason {
            code,
            resource: None,
            evidence: Some(id.clone()),
            step: None,
            path,
            detail,
        });
    }
    for (i, step) in proposal.rollback.steps.iter().enumerate() {
        if step.is_manual() {
            let note = step
                .op
                .get("note")
                .and_then(|n| n.as_str())
                .unwrap_or("no note");
            other.push(Reason {
                code: ReasonCode::ManualStep,
                resource: None,
                evidence: None,
                step: Some(i),
                path: None,
                detail: format!(
                    "step {i} is manual ({note}): a write with a cleanup team is not reversible"
                ),
            });
        }
    }
    unknown.sort_unstable();
    for t in unknown {
        other.push(Reason {
            code: ReasonCode::UnknownResource,
            resource: Some(Cow::Borrowed(t)),
            evidence: None,
            step: None,
            path: None,
            detail: format!("`{t}` is not in the catalog: what it reaches cannot be known"),
        });
    }
    assessment.other_reasons = other;
    assessment.evidence = evidence;
    assessment.decision = if assessment.reason_count() == 0 {
        Verdict::Proceed
    } else {
        Verdict::Hold
    };
    assessment
}

impl<'a> Assessment<'a> {
    /// How many reasons the rendered decision lists.
    pub fn reason_count(&self) -> usize {
        self.external.len()
            + self.uncovered.len()
            + self.third_party.len()
            + self.other_reasons.len()
    }

    /// How many resources the blast radius holds.
    pub fn blast_radius_len(&self) -> usize {
        self.radius.len()
    }

    fn id_at(&self, pos: usize) -> &'a str {
        let catalog: &'a CatalogGraph = self.catalog;
        self.radius
            .visits()
            .get(pos)
            .and_then(|v| catalog.resource(v.node))
            .map_or("", |r| r.id.as_str())
    }

    /// The path from a touched resource to the visit at `pos`.
    // INVARIANT (breadth-first order): a visit's parent is one level up, so
    // the path to it has `depth + 1` entries, filled from the end.
    fn path(&self, pos: usize) -> Vec<Cow<'a, str>> {
        let visits = self.radius.visits();
        let len = visits.get(pos).map_or(0, |v| v.depth as usize + 1);
        let mut path = vec![Cow::Borrowed(""); len];
        let mut at = Some(pos);
        for slot in path.iter_mut().rev() {
            let Some(p) = at else { break };
            *slot = Cow::Borrowed(self.id_at(p));
            at = visits.get(p).and_then(|v| v.parent).map(|x| x as usize);
        }
        path
    }

    /// `list` ordered by the id at each position. The sort compares the
    /// ids' first 16 bytes as one integer, gathered once per position (ids
    /// hold no NUL, so zero padding orders a shorter id first as `str`
    /// does), and compares whole ids only within runs that share them.
    fn by_id(&self, list: &[u32]) -> Vec<u32> {
        let mut keyed: Vec<(u128, u32)> = list
            .iter()
            .map(|&pos| {
                let id = self.id_at(pos as usize).as_bytes();
                let mut head = [0u8; 16];
                let n = id.len().min(16);
                if let (Some(dst), Some(src)) = (head.get_mut(..n), id.get(..n)) {
                    dst.copy_from_slice(src);
                }
                (u128::from_be_bytes(head), pos)
            })
            .collect();
        keyed.sort_unstable_by_key(|&(key, _)| key);
        for run in keyed.chunk_by_mut(|a, b| a.0 == b.0) {
            if run.len() > 1 {
                run.sort_unstable_by_key(|&(_, pos)| self.id_at(pos as usize));
            }
        }
        keyed.into_iter().map(|(_, pos)| pos).collect()
    }

    fn resource_reason(&self, code: ReasonCode, pos: usize) -> Reason<'a> {
        let visit = self.radius.visits().get(pos);
        let id = self.id_at(pos);
        let why = visit.and_then(|v| v.link).and_then(|l| self.catalog.why(l));
        let detail = match (code, why) {
            (ReasonCode::ThirdPartyBearer, _) | (_, None) => match code {
                ReasonCode::External => format!(
                    "`{id}` is outside every system the institution runs: nothing can restore it"
                ),
                ReasonCode::ThirdPartyBearer => {
                    let bearer = self
                        .facts
                        .get(pos)
                        .map_or("a third party", |f| f.bearer.as_str());
                    format!(
                        "if reversal of `{id}` fails, the {bearer} bears the cost, not the institution"
                    )
                }
                _ => format!("no available rollback step restores `{id}`"),
            },
            (_, Some(why)) => why.to_string(),
        };
        let path = visit.is_some_and(|v| v.depth > 0).then(|| self.path(pos));
        Reason {
            code,
            resource: Some(Cow::Borrowed(id)),
            evidence: None,
            step: None,
            path,
            detail,
        }
    }

    /// The reasons about resources, by code then by subject: each code's
    /// subjects are sorted here and the codes come in enum order, so the
    /// output does not depend on the order petgraph keeps edges in.
    fn resource_reasons(&self) -> impl Iterator<Item = Reason<'a>> + '_ {
        [
            (ReasonCode::External, &self.external),
            (ReasonCode::Uncovered, &self.uncovered),
            (ReasonCode::ThirdPartyBearer, &self.third_party),
        ]
        .into_iter()
        .flat_map(move |(code, list)| {
            self.by_id(list)
                .into_iter()
                .map(move |pos| self.resource_reason(code, pos as usize))
        })
    }

    fn entry(&self, pos: usize, visit: &Visit) -> BlastEntry<'a> {
        let facts = self.facts.get(pos).copied().unwrap_or(Facts {
            reach: Reach::Controlled,
            bearer: Bearer::Institution,
            covered: false,
        });
        let from = self.restored_at.get(pos).copied().unwrap_or(0) as usize;
        let to = self.restored_at.get(pos + 1).copied().unwrap_or(0) as usize;
        BlastEntry {
            resource: Cow::Borrowed(self.id_at(pos)),
            depth: visit.depth,
            reach: facts.reach,
            bearer: facts.bearer,
            covered: facts.covered,
            via: visit.parent.map(|p| Cow::Borrowed(self.id_at(p as usize))),
            restored_by: self
                .restored
                .get(from..to)
                .unwrap_or_default()
                .iter()
                .map(|&s| s as usize)
                .collect(),
        }
    }

    fn entries(&self) -> impl Iterator<Item = BlastEntry<'a>> + '_ {
        self.radius
            .visits()
            .iter()
            .enumerate()
            .map(|(pos, v)| self.entry(pos, v))
    }

    /// The decision, with every reason's path and sentence.
    pub fn render(self) -> Decision<'a> {
        let mut reasons = Vec::with_capacity(self.reason_count());
        reasons.extend(self.resource_reasons());
        let blast_radius = self.entries().collect();
        reasons.extend(self.other_reasons);
        debug_assert!(reasons.windows(2).all(|w| {
            let key = |r: &Reason<'a>| (r.code, r.resource.clone(), r.evidence.clone(), r.step);
            w.first().map(key) < w.get(1).map(key)
        }));
        Decision {
            decision: self.decision,
            reasons,
            blast_radius,
            bearers: self.bearers,
            evidence: self.evidence,
            steps: self.steps,
        }
    }
}

/// A sequence serialized one item at a time from an iterator.
struct Items<F>(F);

impl<F, I, T> Serialize for Items<F>
where
    F: Fn() -> I,
    I: ExactSizeIterator<Item = T>,
    T: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let items = (self.0)();
        let mut seq = s.serialize_seq(Some(items.len()))?;
        for item in items {
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

/// An iterator of known length.
struct Counted<I>(I, usize);

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.0.next()?;
        self.1 = self.1.saturating_sub(1);
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}

/// The JSON of [`Assessment::render`]'s [`Decision`], field for field.
impl Serialize for Assessment<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Decision", 6)?;
        st.serialize_field("decision", &self.decision)?;
        st.serialize_field(
            "reasons",
            &Items(|| {
                Counted(
                    self.resource_reasons()
                        .chain(self.other_reasons.iter().cloned()),
                    self.reason_count(),
                )
            }),
        )?;
        st.serialize_field(
            "blast_radius",
            &Items(|| Counted(self.entries(), self.radius.len())),
        )?;
        st.serialize_field("bearers", &self.bearers)?;
        st.serialize_field("evidence", &self.evidence)?;
        st.serialize_field("steps", &self.steps)?;
        st.end()
    }
}

/// Where `location` sits in the blast radius: its own visit, or the visit of
/// the nearest `fs:` ancestor in it (then the location itself is returned
/// too, since it is not a catalog resource on the path).
fn locate<'a>(
    catalog: &CatalogGraph,
    radius: &BlastRadius,
    location: &'a str,
) -> Option<(usize, Option<&'a str>)> {
    if let Some(node) = catalog.node(location) {
        if let Some(pos) = radius.position(node) {
            return Some((pos, None));
        }
    }
    // Containment holds whether or not the location is itself catalogued: a
    // `.git` inside a deleted folder goes with it.
    id::fs_ancestors(location).find_map(|up| {
        let pos = radius.position(catalog.node(up)?)?;
        let inner = (catalog.node(location).is_none()).then_some(location);
        Some((pos, inner))
    })
}

#[cfg(test)]
mod tests {

    /// `as_str` spells each code exactly as serde puts it on the wire.
    #[test]
    fn a_code_as_str_is_its_wire_spelling() {
        use ReasonCode::*;
        for c in [
            External,
            Uncovered,
            ThirdPartyBearer,
            EvidenceInBlastRadius,
            EvidenceMissing,
            EvidenceUnverifiable,
            EvidenceExpired,
            EvidenceWindowClosing,
            EvidenceStale,
            ManualStep,
            UnknownResource,
            OutsideRoots,
            UnknownConnector,
            InvalidAction,
            Frozen,
            Unmodelled,
        ] {
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::json!(c.as_str()))
            );
        }
    }

    use super::*;
    use crate::catalog::Catalog;

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn graph() -> CatalogGraph {
        CatalogGraph::new(
            serde_json::from_value::<Catalog>(serde_json::json!({"resources": [
                {"id": "pay:1"}, {"id": "ledger:pay"},
                {"id": "fs:/c", "bearer": "customer"}, {"id": "fs:/c/f"}]}))
            .unwrap(),
        )
        .unwrap()
    }

    fn proposal(touches: &str, requires: serde_json::Value) -> Proposal {
        serde_json::from_value(serde_json::json!({"touches": [touches],
            "rollback": {"steps": [{"restores": [touches], "op": {"connector": "x", "op": "undo"},
                                    "requires": requires}]}}))
        .unwrap()
    }

    fn observed(ids: &[&str]) -> Observations {
        serde_json::from_value(
            ids.iter()
                .map(|id| (id.to_string(), serde_json::json!({"present": true})))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        )
        .unwrap()
    }

    #[test]
    fn a_window_alone_covers_nothing_with_located_evidence_it_does() {
        let g = graph();
        let window =
            serde_json::json!({"id": "w", "kind": "window", "until": "2099-01-01T00:00:00Z"});
        let located =
            serde_json::json!({"id": "rec", "kind": "compensation", "location": "ledger:pay"});
        let p = proposal("pay:1", serde_json::json!([window]));
        let d = decide(&g, &p, &Observations::new(), now(), &Policy::default());
        assert_eq!(d.decision, Verdict::Hold);
        assert!(!d.steps[0].available);
        assert_eq!(d.reasons[0].code, ReasonCode::Uncovered);
        let p = proposal("pay:1", serde_json::json!([window, located]));
        let d = decide(&g, &p, &observed(&["rec"]), now(), &Policy::default());
        assert_eq!(d.decision, Verdict::Proceed, "{:?}", d.reasons);
    }

    #[test]
    fn a_step_that_is_not_runnable_is_not_available() {
        let g = graph();
        let located =
            serde_json::json!({"id": "rec", "kind": "compensation", "location": "ledger:pay"});
        let p = proposal("pay:1", serde_json::json!([located]));
        let obs = observed(&["rec"]);
        let d = decide_with(&g, &p, &obs, now(), &Policy::default(), &|_, s| {
            s.op.get("connector").and_then(|c| c.as_str()) == Some("http")
        });
        assert_eq!(d.decision, Verdict::Hold);
        assert!(!d.steps[0].available);
        let d = decide_with(&g, &p, &obs, now(), &Policy::default(), &|i, _| i == 0);
        assert_eq!(d.decision, Verdict::Proceed, "{:?}", d.reasons);
    }

    #[test]
    fn a_resource_with_no_bearer_of_its_own_is_borne_by_its_container() {
        let g = graph();
        let located =
            serde_json::json!({"id": "rec", "kind": "compensation", "location": "ledger:pay"});
        let p = proposal("fs:/c/f", serde_json::json!([located]));
        let d = decide(&g, &p, &observed(&["rec"]), now(), &Policy::default());
        assert_eq!(d.decision, Verdict::Hold);
        assert_eq!(d.reasons[0].code, ReasonCode::ThirdPartyBearer);
        assert_eq!(d.blast_radius[0].bearer, Bearer::Customer);
        assert_eq!(d.bearers, vec![Bearer::Customer]);
    }
}
