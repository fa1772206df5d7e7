//! The engine: from the catalog and the writes' recorded proposals and
//! decisions to the [`Report`]. No I/O, no clock (`now` is given).
//!
//! It judges nothing anew: every status, bearer and coverage is the one the
//! gate recorded when it decided the write. The report only groups them
//! and says, for each group, where its rollback path resolves.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use recourse_client::{WriteRecord, WriteStatus};
use recourse_core::decision::{BlastEntry, EvidenceReport};
use recourse_core::{Bearer, Catalog, EvidenceKind, EvidenceStatus, Reach, Step, Verdict};
use serde_json::Value;

use crate::model::*;

/// At most this many writes are listed under a kind (all are counted).
pub const WRITES_PER_KIND: usize = 50;
/// At most this many items in the report's short lists (restored
/// resources, verifiers, kinds of a resource).
pub const LIST_CAP: usize = 20;
/// A step's line is cut to this many characters.
const LINE_CAP: usize = 240;

/// The report over `catalog` and `writes` (as stored: their proposals are
/// the masked forms; the sealed one is never read).
pub fn build(catalog: &Catalog, writes: &[WriteRecord], now: DateTime<Utc>) -> Report {
    let by_id: HashMap<&str, &recourse_core::Resource> = catalog
        .resources
        .iter()
        .map(|r| (r.id.as_str(), r))
        .collect();
    // Newest first, so a path's example and a kind's list show the latest.
    let mut ordered: Vec<&WriteRecord> = writes.iter().collect();
    ordered.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));

    let mut kinds: BTreeMap<String, KindAcc> = BTreeMap::new();
    let mut resources: HashMap<&str, ResourceAcc> = HashMap::new();
    for rec in ordered {
        let key = KindKey::of(rec, &by_id);
        let label = key.label();
        let acc = kinds
            .entry(label.clone())
            .or_insert_with(|| KindAcc::new(key));
        let judged = judge(rec);
        acc.add(rec, judged);
        if judged.is_some() {
            for_resources(rec, &label, &mut resources);
        }
    }

    let mut kinds: Vec<KindAudit> = kinds
        .into_iter()
        .map(|(key, acc)| acc.finish(key))
        .collect();
    kinds.sort_by(|a, b| {
        (
            a.rollback,
            a.needs_person,
            std::cmp::Reverse(a.counts.seen),
            &a.key,
        )
            .cmp(&(
                b.rollback,
                b.needs_person,
                std::cmp::Reverse(b.counts.seen),
                &b.key,
            ))
    });

    let mut audits: Vec<ResourceAudit> = catalog
        .resources
        .iter()
        .map(|r| resource_audit(r, resources.remove(r.id.as_str())))
        .collect();
    audits.sort_by(|a, b| {
        (a.verdict, !a.needs_person, &a.id).cmp(&(b.verdict, !b.needs_person, &b.id))
    });

    let summary = Summary {
        writes: count(writes.len()),
        kinds: count(kinds.len()),
        kinds_not_reversible: count(kinds.iter().filter(|k| !k.rollback.reversible()).count()),
        kinds_aspirational: count(kinds.iter().filter(|k| k.aspirational).count()),
        kinds_always_need_a_person: count(
            kinds
                .iter()
                .filter(|k| k.needs_person == NeedsPerson::Always)
                .count(),
        ),
        kinds_sometimes_need_a_person: count(
            kinds
                .iter()
                .filter(|k| k.needs_person == NeedsPerson::Sometimes)
                .count(),
        ),
        resources: count(audits.len()),
        resources_external: count(audits.iter().filter(|r| r.reach == Reach::External).count()),
        resources_third_party: count(audits.iter().filter(|r| r.needs_person).count()),
    };
    Report {
        generated_at: now,
        summary,
        kinds,
        resources: audits,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What makes two writes the same kind: the same connector and op, on
/// resources of the same catalog kinds, borne by the same parties. The
/// bearers of the touched resources are part of it because the seed's
/// third audit is about whose state a write changes: closing a customer's
/// account and closing a test account are not the same kind of write.
struct KindKey {
    connector: String,
    op: String,
    targets: Vec<String>,
    owners: Vec<Bearer>,
}

impl KindKey {
    fn of(rec: &WriteRecord, catalog: &HashMap<&str, &recourse_core::Resource>) -> KindKey {
        let action = &rec.proposal.action;
        let mut op = action
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        if let Some(m) = action.get("method").and_then(Value::as_str) {
            op = format!("{op} {}", m.to_ascii_uppercase());
        }
        // The http connector names the endpoint it calls (`http:HOST/PATH`)
        // among the touches; what the call changes is what the proposal
        // declares beside it, so the endpoint counts only when alone.
        let declared: Vec<&String> = rec
            .proposal
            .touches
            .iter()
            .filter(|t| !t.starts_with("http:"))
            .collect();
        let touched: Vec<&String> = if declared.is_empty() {
            rec.proposal.touches.iter().collect()
        } else {
            declared
        };
        let targets: BTreeSet<String> = touched
            .iter()
            .map(|t| {
                catalog
                    .get(t.as_str())
                    .and_then(|r| r.kind.clone())
                    .unwrap_or_else(|| derived_kind(t))
            })
            .collect();
        let mut owners: BTreeSet<Bearer> = rec
            .decision
            .blast_radius
            .iter()
            .filter(|b| b.depth == 0 && touched.iter().any(|t| **t == b.resource))
            .map(|b| b.bearer)
            .collect();
        // Whose state it is: a third party's when any touched part is
        // theirs (the institution's share of it changes nothing in audit 3).
        if owners.iter().any(|b| b.is_third_party()) {
            owners.remove(&Bearer::Institution);
        }
        KindKey {
            connector: rec.connector.clone(),
            op: clip(&mask(&op)),
            targets: targets.into_iter().map(|t| clip(&mask(&t))).collect(),
            owners: owners.into_iter().collect(),
        }
    }

    fn label(&self) -> String {
        let targets = if self.targets.is_empty() {
            "?".to_string()
        } else {
            self.targets.join(" + ")
        };
        let owners = if self.owners.is_empty() {
            "bearer unknown".to_string()
        } else {
            let o: Vec<&str> = self.owners.iter().map(|b| b.as_str()).collect();
            o.join(", ")
        };
        format!("{} {} → {targets} ({owners})", self.connector, self.op)
    }
}

/// A kind for an id the catalog gives none, from its shape.
pub(crate) fn derived_kind(id: &str) -> String {
    let (scheme, rest) = id.split_once(':').unwrap_or((id, ""));
    match scheme {
        "fs" => "fs.path".into(),
        "http" => "http.endpoint".into(),
        "sql" => match rest.split('/').count() {
            1 => "sql.database".into(),
            2 => "sql.table".into(),
            _ => "sql.row".into(),
        },
        other => other.into(),
    }
}

fn mask(s: &str) -> String {
    recourse_secrets::mask_text(s, &[]).into_owned()
}

fn clip(s: &str) -> String {
    if s.chars().count() <= LINE_CAP {
        return s.to_string();
    }
    let mut out: String = s.chars().take(LINE_CAP).collect();
    out.push('…');
    out
}

/// The write's own id as `{write}`, so that the connectors' per-write
/// locations (a vault directory named after the write) group together;
/// masked, as everything the report takes from a proposal.
fn template(s: &str, write_id: &str) -> String {
    if write_id.is_empty() {
        mask(s)
    } else {
        mask(&s.replace(write_id, "{write}"))
    }
}

/// A step's op in one line: its connector, op and target, or the manual
/// step's note. Headers and bodies are left out; what is kept is masked
/// again (it was masked when stored; masking is idempotent).
pub(crate) fn op_line(step: &Step) -> String {
    let op = &step.op;
    if step.is_manual() {
        let note = op
            .get("note")
            .and_then(Value::as_str)
            .unwrap_or("(no note)");
        return clip(&mask(&format!("manual: {note}")));
    }
    let parts: Vec<&str> = [
        "connector",
        "op",
        "method",
        "url",
        "database",
        "table",
        "path",
        "to",
        "from",
        "cmd",
    ]
    .iter()
    .filter_map(|k| op.get(*k).and_then(Value::as_str))
    .collect();
    if parts.is_empty() {
        return "(an op naming no connector)".into();
    }
    clip(&mask(&parts.join(" ")))
}

/// Where a write's rollback path resolves, from its recorded decision;
/// `None` for a refused write (the gate never judged a path for it).
pub(crate) fn judge(rec: &WriteRecord) -> Option<PathVerdict> {
    if rec.decision.decision == Verdict::Refuse {
        return None;
    }
    let steps = &rec.proposal.rollback.steps;
    if steps.is_empty() {
        return Some(PathVerdict::NoPath);
    }
    if steps.iter().any(Step::is_manual) {
        return Some(PathVerdict::ManualStep);
    }
    if rec.decision.blast_radius.iter().any(unrestorable) {
        return Some(PathVerdict::LeavesUnrestored);
    }
    let all_verified = rec
        .decision
        .evidence
        .iter()
        .all(|e| e.status == EvidenceStatus::Verified);
    let all_available = (0..steps.len()).all(|i| step_available(rec, i));
    if all_verified && all_available {
        Some(PathVerdict::Real)
    } else {
        Some(PathVerdict::Aspirational)
    }
}

/// A resource of the blast radius that resolves to nothing: external, or
/// no step restores it at all.
fn unrestorable(b: &BlastEntry<'_>) -> bool {
    !b.covered && (b.reach == Reach::External || b.restored_by.is_empty())
}

/// Whether step `i` was available, as the decision recorded it. A record
/// without step reports (older ones) is judged from its evidence, as the
/// contract's rule 4 does.
fn step_available(rec: &WriteRecord, i: usize) -> bool {
    if let Some(s) = rec.decision.steps.iter().find(|s| s.step == i) {
        return s.available;
    }
    let Some(step) = rec.proposal.rollback.steps.get(i) else {
        return false;
    };
    let statuses = evidence_of(rec);
    !step.is_manual()
        && step.requires.iter().any(|e| e.location.is_some())
        && step.requires.iter().all(|e| {
            statuses
                .get(e.id.as_str())
                .is_some_and(|r| r.status == EvidenceStatus::Verified)
        })
}

fn evidence_of(rec: &WriteRecord) -> HashMap<&str, &EvidenceReport<'static>> {
    rec.decision
        .evidence
        .iter()
        .map(|e| (e.id.as_ref(), e))
        .collect()
}

struct KindAcc {
    key: KindKey,
    counts: Counts,
    verdicts: BTreeMap<PathVerdict, u32>,
    /// Paths by their shape, in order of first appearance.
    paths: Vec<(Vec<String>, PathAcc)>,
    unrestored: BTreeMap<String, Unrestored>,
    bearers: BTreeMap<Bearer, u32>,
    judged: u32,
    third_party: u32,
    writes: Vec<WriteRef>,
}

struct PathAcc {
    writes: u32,
    example: String,
    verdict: PathVerdict,
    steps: Vec<StepAcc>,
}

struct StepAcc {
    source: StepSource,
    modelled_by: Option<String>,
    op: String,
    manual: bool,
    restores: BTreeSet<String>,
    available_in: u32,
    context: Vec<ContextAcc>,
}

struct ContextAcc {
    group: (EvidenceKind, String),
    audit: ContextAudit,
    statuses: BTreeMap<EvidenceStatus, u32>,
    verified_by: BTreeSet<String>,
}

impl KindAcc {
    fn new(key: KindKey) -> Self {
        KindAcc {
            key,
            counts: Counts::default(),
            verdicts: BTreeMap::new(),
            paths: Vec::new(),
            unrestored: BTreeMap::new(),
            bearers: BTreeMap::new(),
            judged: 0,
            third_party: 0,
            writes: Vec::new(),
        }
    }

    fn add(&mut self, rec: &WriteRecord, judged: Option<PathVerdict>) {
        let c = &mut self.counts;
        c.seen += 1;
        match rec.decision.decision {
            Verdict::Hold => c.held += 1,
            Verdict::Refuse => c.refused += 1,
            Verdict::Proceed => {}
        }
        if matches!(
            rec.status,
            WriteStatus::Executing
                | WriteStatus::Executed
                | WriteStatus::RollingBack
                | WriteStatus::RolledBack
                | WriteStatus::RollbackFailed
                | WriteStatus::OutcomeUnknown
        ) {
            c.ran += 1;
            if rec.observed_hold.is_some() {
                c.ran_unreviewed += 1;
            }
        }
        if rec.status == WriteStatus::RolledBack {
            c.rolled_back += 1;
        }
        if self.writes.len() < WRITES_PER_KIND {
            self.writes.push(WriteRef {
                id: rec.id.clone(),
                agent: rec.agent.clone(),
                intent: clip(&mask(&rec.proposal.intent)),
                status: rec.status,
                verdict: rec.decision.decision,
                path: judged,
                created_at: rec.created_at,
            });
        }
        let Some(verdict) = judged else { return };
        self.judged += 1;
        *self.verdicts.entry(verdict).or_default() += 1;
        let bearers: BTreeSet<Bearer> = rec.decision.bearers.iter().copied().collect();
        if bearers.iter().any(|b| b.is_third_party()) {
            self.third_party += 1;
        }
        for b in bearers {
            *self.bearers.entry(b).or_default() += 1;
        }
        for b in rec.decision.blast_radius.iter().filter(|b| unrestorable(b)) {
            let u = self
                .unrestored
                .entry(b.resource.to_string())
                .or_insert_with(|| Unrestored {
                    resource: b.resource.to_string(),
                    reach: b.reach,
                    bearer: b.bearer,
                    why: if b.reach == Reach::External {
                        "external".into()
                    } else {
                        "no_step".into()
                    },
                    writes: 0,
                });
            u.writes += 1;
        }
        self.add_path(rec, verdict);
    }

    fn add_path(&mut self, rec: &WriteRecord, verdict: PathVerdict) {
        let steps = &rec.proposal.rollback.steps;
        let lines: Vec<String> = steps
            .iter()
            .map(|s| template(&op_line(s), &rec.id))
            .collect();
        let shape: Vec<String> = steps
            .iter()
            .zip(&lines)
            .map(|(s, line)| format!("{}|{line}", source(s).as_str()))
            .collect();
        let at = match self.paths.iter().position(|(s, _)| *s == shape) {
            Some(at) => at,
            None => {
                let acc = PathAcc {
                    writes: 0,
                    example: rec.id.clone(),
                    verdict,
                    steps: steps
                        .iter()
                        .zip(lines)
                        .map(|(s, op)| StepAcc {
                            source: source(s),
                            modelled_by: s.modelled_by.clone(),
                            op,
                            manual: s.is_manual(),
                            restores: BTreeSet::new(),
                            available_in: 0,
                            context: Vec::new(),
                        })
                        .collect(),
                };
                self.paths.push((shape, acc));
                self.paths.len() - 1
            }
        };
        let Some((_, path)) = self.paths.get_mut(at) else {
            return;
        };
        path.writes += 1;
        path.verdict = path.verdict.min(verdict);
        let statuses = evidence_of(rec);
        for (i, (step, acc)) in steps.iter().zip(path.steps.iter_mut()).enumerate() {
            for r in &step.restores {
                if acc.restores.len() < LIST_CAP {
                    acc.restores.insert(template(r, &rec.id));
                }
            }
            if step_available(rec, i) {
                acc.available_in += 1;
            }
            for ev in &step.requires {
                let location = ev.location.as_deref().map(|l| template(l, &rec.id));
                let id = template(&ev.id, &rec.id);
                let group = (ev.kind, location.clone().unwrap_or_else(|| id.clone()));
                let c = match acc.context.iter().position(|c| c.group == group) {
                    Some(at) => at,
                    None => {
                        acc.context.push(ContextAcc {
                            group,
                            audit: ContextAudit {
                                kind: ev.kind,
                                id,
                                location,
                                writes: 0,
                                statuses: Vec::new(),
                                inside_blast_radius: 0,
                                missing_or_unverifiable: 0,
                                too_old: 0,
                                verified: 0,
                                max_age_s: ev.max_age_s,
                                oldest_capture: None,
                                max_age_at_submission_s: None,
                                verified_by: Vec::new(),
                            },
                            statuses: BTreeMap::new(),
                            verified_by: BTreeSet::new(),
                        });
                        acc.context.len() - 1
                    }
                };
                let Some(c) = acc.context.get_mut(c) else {
                    continue;
                };
                c.audit.writes += 1;
                // No report for it: the decision could not see it, which
                // is what `unverifiable` means.
                let report = statuses.get(ev.id.as_str());
                let status = report.map_or(EvidenceStatus::Unverifiable, |r| r.status);
                *c.statuses.entry(status).or_default() += 1;
                match status {
                    EvidenceStatus::InBlastRadius => c.audit.inside_blast_radius += 1,
                    EvidenceStatus::Missing | EvidenceStatus::Unverifiable => {
                        c.audit.missing_or_unverifiable += 1
                    }
                    EvidenceStatus::Expired
                    | EvidenceStatus::WindowClosing
                    | EvidenceStatus::Stale => c.audit.too_old += 1,
                    EvidenceStatus::Verified => c.audit.verified += 1,
                }
                if let Some(r) = report {
                    if let Some(by) = &r.verified_by {
                        if c.verified_by.len() < LIST_CAP {
                            c.verified_by.insert(clip(&mask(by)));
                        }
                    }
                    if let Some(at) = r.captured_at {
                        c.audit.oldest_capture =
                            Some(c.audit.oldest_capture.map_or(at, |o| o.min(at)));
                        let age = (rec.created_at - at).num_seconds().max(0);
                        c.audit.max_age_at_submission_s =
                            Some(c.audit.max_age_at_submission_s.map_or(age, |m| m.max(age)));
                    }
                }
            }
        }
    }

    fn finish(self, key: String) -> KindAudit {
        let rollback = self
            .verdicts
            .keys()
            .next()
            .copied()
            .unwrap_or(PathVerdict::Real);
        let needs_person = if self.third_party == 0 {
            NeedsPerson::Never
        } else if self.third_party == self.judged {
            NeedsPerson::Always
        } else {
            NeedsPerson::Sometimes
        };
        let mut paths: Vec<PathAudit> = self
            .paths
            .into_iter()
            .map(|(_, p)| PathAudit {
                writes: p.writes,
                example: p.example,
                verdict: p.verdict,
                steps: p
                    .steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| StepAudit {
                        position: count(i + 1),
                        source: s.source,
                        modelled_by: s.modelled_by,
                        op: s.op,
                        manual: s.manual,
                        restores: s.restores.into_iter().collect(),
                        available_in: s.available_in,
                        context: s
                            .context
                            .into_iter()
                            .map(|c| ContextAudit {
                                statuses: c
                                    .statuses
                                    .into_iter()
                                    .map(|(status, writes)| StatusCount { status, writes })
                                    .collect(),
                                verified_by: c.verified_by.into_iter().collect(),
                                ..c.audit
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        // Stable: ties keep the order of first appearance (newest first).
        paths.sort_by(|a, b| {
            (a.verdict, std::cmp::Reverse(a.writes)).cmp(&(b.verdict, std::cmp::Reverse(b.writes)))
        });
        let aspirational = paths
            .iter()
            .flat_map(|p| &p.steps)
            .flat_map(|s| &s.context)
            .any(|c| !c.retained())
            || self.verdicts.contains_key(&PathVerdict::Aspirational);
        let mut unrestored: Vec<Unrestored> = self.unrestored.into_values().collect();
        unrestored.sort_by(|a, b| (b.writes, &a.resource).cmp(&(a.writes, &b.resource)));
        KindAudit {
            key,
            connector: self.key.connector,
            op: self.key.op,
            targets: self.key.targets,
            owners: self.key.owners,
            counts: self.counts,
            rollback,
            verdicts: self
                .verdicts
                .into_iter()
                .map(|(verdict, writes)| VerdictCount { verdict, writes })
                .collect(),
            paths,
            unrestored,
            aspirational,
            bearers: self
                .bearers
                .into_iter()
                .map(|(bearer, writes)| BearerCount { bearer, writes })
                .collect(),
            needs_person,
            writes: self.writes,
        }
    }
}

fn source(step: &Step) -> StepSource {
    if step.modelled_by.is_some() {
        StepSource::Connector
    } else {
        StepSource::Agent
    }
}

#[derive(Default)]
struct ResourceAcc {
    touched_by: u32,
    reached_by: u32,
    restored_in: u32,
    not_restored: u32,
    aspirational: u32,
    bearers: BTreeSet<Bearer>,
    restored_by: BTreeSet<String>,
    context_held: u32,
    context_inside: u32,
    kinds: BTreeSet<String>,
}

/// What one judged write says about the catalog resources it reached.
fn for_resources<'a>(rec: &'a WriteRecord, kind: &str, out: &mut HashMap<&'a str, ResourceAcc>) {
    for t in &rec.proposal.touches {
        out.entry(t.as_str()).or_default().touched_by += 1;
    }
    for b in &rec.decision.blast_radius {
        let acc = out.entry(b.resource.as_ref()).or_default();
        acc.reached_by += 1;
        acc.bearers.insert(b.bearer);
        if acc.kinds.len() < LIST_CAP {
            acc.kinds.insert(kind.to_string());
        }
        if b.covered {
            acc.restored_in += 1;
        } else if unrestorable(b) {
            acc.not_restored += 1;
        } else {
            acc.aspirational += 1;
        }
        for i in &b.restored_by {
            if let Some(step) = rec.proposal.rollback.steps.get(*i) {
                if acc.restored_by.len() < LIST_CAP {
                    acc.restored_by.insert(template(&op_line(step), &rec.id));
                }
            }
        }
    }
    for e in &rec.decision.evidence {
        if let Some(loc) = &e.location {
            let acc = out.entry(loc.as_ref()).or_default();
            acc.context_held += 1;
            if e.status == EvidenceStatus::InBlastRadius {
                acc.context_inside += 1;
            }
        }
    }
}

fn resource_audit(r: &recourse_core::Resource, acc: Option<ResourceAcc>) -> ResourceAudit {
    let acc = acc.unwrap_or_default();
    let verdict = if r.reach == Reach::External {
        ResourceVerdict::External
    } else if acc.reached_by == 0 {
        ResourceVerdict::NotReached
    } else if acc.not_restored > 0 {
        ResourceVerdict::NotRestored
    } else if acc.aspirational > 0 {
        ResourceVerdict::Aspirational
    } else {
        ResourceVerdict::Restorable
    };
    let needs_person = r.bearer.is_some_and(Bearer::is_third_party)
        || acc.bearers.iter().any(|b| b.is_third_party());
    ResourceAudit {
        id: r.id.clone(),
        kind: r.kind.clone(),
        title: r.title.as_deref().map(|t| clip(&mask(t))),
        reach: r.reach,
        declared_bearer: r.bearer,
        bearers: acc.bearers.into_iter().collect(),
        verdict,
        needs_person,
        touched_by: acc.touched_by,
        reached_by: acc.reached_by,
        restored_in: acc.restored_in,
        restored_by: acc.restored_by.into_iter().collect(),
        context_held: acc.context_held,
        context_inside_blast_radius: acc.context_inside,
        kinds: acc.kinds.into_iter().collect(),
    }
}
