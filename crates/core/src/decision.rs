//! The decision: blast radius, evidence, coverage, reasons (sections 4, 5).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use fixedbitset::FixedBitSet;
use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};

use crate::blast_radius::BlastRadius;
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
    let id_of = |n: NodeIndex<u32>| catalog.resource(n).map_or("", |r| r.id.as_str());
    // Ids by visit position, looked up once: paths, `via` and the sorting
    // of reasons all read them, and each lookup is a cache miss into the
    // catalog.
    let ids: Vec<&'a str> = radius.visits().iter().map(|v| id_of(v.node)).collect();
    let id_at = |pos: usize| ids.get(pos).copied().unwrap_or("");
    // INVARIANT (breadth-first order): a visit's parent is one level up, so
    // the path to it has `depth + 1` entries, filled from the end.
    let path_ids = |pos: usize| -> Vec<Cow<'a, str>> {
        let len = radius.visits().get(pos).map_or(0, |v| v.depth as usize + 1);
        let mut path = vec![Cow::Borrowed(""); len];
        let mut at = Some(pos);
        for slot in path.iter_mut().rev() {
            let Some(p) = at else { break };
            *slot = Cow::Borrowed(id_at(p));
            at = radius
                .visits()
                .get(p)
                .and_then(|v| v.parent)
                .map(|x| x as usize);
        }
        path
    };

    // Evidence, in order of first appearance.
    let items = proposal.evidence();
    let mut evidence = Vec::with_capacity(items.len());
    let mut evidence_paths = Vec::with_capacity(items.len());
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
        evidence_paths.push(held_at.map(|(pos, inside)| {
            let mut p = path_ids(pos);
            if let Some(loc) = inside {
                p.push(Cow::Borrowed(loc));
            }
            p
        }));
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
    let mut fs_restorers: HashMap<&str, Vec<usize>> = HashMap::new();
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
                if !entry.contains(&i) {
                    entry.push(i);
                }
            }
        }
        restores_node.push(set);
    }

    // Coverage and the resource reasons, over the blast radius.
    let mut blast_radius = Vec::with_capacity(radius.len());
    let mut bearer_seen = [false; Bearer::ALL.len()];
    let mut external = Vec::new();
    let mut uncovered = Vec::new();
    let mut third_party = Vec::new();
    for (pos, visit) in radius.visits().iter().enumerate() {
        let Some(res) = catalog.resource(visit.node) else {
            continue;
        };
        let mut restored_by = Vec::new();
        for (s, set) in restores_node.iter().enumerate() {
            if set.contains(visit.node.index()) {
                restored_by.push(s);
            }
        }
        if !fs_restorers.is_empty() && res.id.starts_with("fs:") {
            for up in id::fs_ancestors(&res.id) {
                for &s in fs_restorers.get(up).into_iter().flatten() {
                    if !restored_by.contains(&s) {
                        restored_by.push(s);
                    }
                }
            }
            restored_by.sort_unstable();
        }
        let bearer = catalog.bearer_of(res);
        let covered = res.reach != Reach::External
            && restored_by
                .iter()
                .any(|&s| steps.get(s).is_some_and(|st| st.available));
        if let Some(seen) = bearer_seen.get_mut(bearer as usize) {
            *seen = true;
        }
        if res.reach == Reach::External {
            external.push(pos);
        } else if !covered {
            uncovered.push(pos);
        }
        if bearer.is_third_party() {
            third_party.push(pos);
        }
        let via = visit.parent.map(|p| Cow::Borrowed(id_at(p as usize)));
        blast_radius.push(BlastEntry {
            resource: Cow::Borrowed(res.id.as_str()),
            depth: visit.depth,
            reach: res.reach,
            bearer,
            covered,
            via,
            restored_by,
        });
    }

    // Reasons are listed by code, then by subject: each code's subjects are
    // sorted here and the codes are pushed in enum order, so the output
    // does not depend on the order petgraph keeps edges in.
    for list in [&mut external, &mut uncovered, &mut third_party] {
        list.sort_unstable_by_key(|&pos| id_at(pos));
    }
    unknown.sort_unstable();
    let mut reasons =
        Vec::with_capacity(external.len() + uncovered.len() + third_party.len() + unknown.len());
    let resource_reason = |code: ReasonCode, pos: usize, say: &dyn Fn(&str) -> String| {
        let visit = radius.visits().get(pos);
        let id = id_at(pos);
        let why = visit.and_then(|v| v.link).and_then(|l| catalog.why(l));
        let detail = match (code, why) {
            (ReasonCode::ThirdPartyBearer, _) | (_, None) => say(id),
            (_, Some(why)) => why.to_string(),
        };
        let path = (visit.is_some_and(|v| v.depth > 0)).then(|| path_ids(pos));
        Reason {
            code,
            resource: Some(Cow::Borrowed(id)),
            evidence: None,
            step: None,
            path,
            detail,
        }
    };
    for &pos in &external {
        reasons.push(resource_reason(ReasonCode::External, pos, &|id| {
            format!("`{id}` is outside every system the institution runs: nothing can restore it")
        }));
    }
    for &pos in &uncovered {
        reasons.push(resource_reason(ReasonCode::Uncovered, pos, &|id| {
            format!("no available rollback step restores `{id}`")
        }));
    }
    for &pos in &third_party {
        let bearer = blast_radius
            .get(pos)
            .map_or("a third party", |b: &BlastEntry<'_>| b.bearer.as_str());
        reasons.push(resource_reason(ReasonCode::ThirdPartyBearer, pos, &|id| {
            format!("if reversal of `{id}` fails, the {bearer} bears the cost, not the institution")
        }));
    }
    let mut ordered: Vec<_> = evidence.iter().zip(evidence_paths).collect();
    ordered.sort_unstable_by(|a, b| {
        (ReasonCode::for_status(a.0.status), &a.0.id)
            .cmp(&(ReasonCode::for_status(b.0.status), &b.0.id))
    });
    for (report, path) in ordered {
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
        reasons.push(Reason {
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
            reasons.push(Reason {
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
    for t in unknown {
        reasons.push(Reason {
            code: ReasonCode::UnknownResource,
            resource: Some(Cow::Borrowed(t)),
            evidence: None,
            step: None,
            path: None,
            detail: format!("`{t}` is not in the catalog: what it reaches cannot be known"),
        });
    }

    debug_assert!(reasons.windows(2).all(|w| {
        let key = |r: &Reason<'a>| (r.code, r.resource.clone(), r.evidence.clone(), r.step);
        w.first().map(key) < w.get(1).map(key)
    }));

    let bearers = Bearer::ALL
        .iter()
        .zip(bearer_seen)
        .filter_map(|(b, seen)| seen.then_some(*b))
        .collect();
    Decision {
        decision: if reasons.is_empty() {
            Verdict::Proceed
        } else {
            Verdict::Hold
        },
        reasons,
        blast_radius,
        bearers,
        evidence,
        steps,
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
