//! Evaluation: observe the evidence now and decide; and adopting a decision
//! into a write, with everything that follows from it.

use recourse_client::WriteRecord;
use recourse_connector::{Connector, Plan};
use recourse_core::{
    decide_with, CatalogGraph, Decision, Evidence, EvidenceKind, Observations, Proposal, Reason,
    ReasonCode, Step, Verdict,
};
use std::collections::BTreeMap;

use serde_json::Value;

use super::{sha256_json, Gate};
use crate::error::GateError;

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

/// What approvals bind to and re-verification compares: the decision's
/// hash, and what the connector found at the write's targets
/// ([`WriteRecord::targets`]). With no targets kept (a connector that
/// describes nothing, a write decided before they were kept) it is the
/// decision's hash alone, so such writes bind as they always did.
pub fn binding_hash(d: &Decision<'_>, targets: &BTreeMap<String, String>) -> String {
    let decided = decision_hash(d);
    if targets.is_empty() {
        decided
    } else {
        sha256_json(&(decided, targets))
    }
}

/// What a connector's plan found at each resource the write touches (see
/// [`WriteRecord::targets`]): the kind it describes each as.
pub(crate) fn targets_found(plan: &Plan) -> BTreeMap<String, String> {
    plan.resources
        .iter()
        .filter(|r| plan.touches.contains(&r.id))
        .filter_map(|r| r.kind.clone().map(|kind| (r.id.clone(), kind)))
        .collect()
}

/// The targets that differ between two findings, as a sentence part:
/// "`fs:/a` was fs.file, now fs.symlink".
pub(crate) fn targets_changed(
    before: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Option<String> {
    let ids: std::collections::BTreeSet<&String> = before.keys().chain(now.keys()).collect();
    let changed: Vec<String> = ids
        .into_iter()
        .filter(|id| before.get(*id) != now.get(*id))
        .map(|id| {
            let kind = |m: &BTreeMap<String, String>| {
                m.get(id).cloned().unwrap_or_else(|| "not described".into())
            };
            format!("`{id}` was {}, now {}", kind(before), kind(now))
        })
        .collect();
    (!changed.is_empty()).then(|| changed.join("; "))
}

/// What differs between two decisions, in words for the note of a write
/// held again: reasons that appeared and went (code and subject), the
/// blast radius's size, and evidence whose status moved. `None` when only
/// what the hash leaves out (times, wording) differs. At most 5 of each.
pub(crate) fn decision_changes(before: &Decision<'_>, after: &Decision<'_>) -> Option<String> {
    // The wire's own word for a verdict (`hold`).
    fn word(v: impl serde::Serialize) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
    fn named(r: &Reason<'_>) -> String {
        format!("{} on `{}`", r.code.as_str(), r.subject())
    }
    fn listed(items: Vec<String>) -> String {
        let more = items.len().saturating_sub(5);
        let mut out = items.into_iter().take(5).collect::<Vec<_>>().join(", ");
        if more > 0 {
            out.push_str(&format!(" and {more} more"));
        }
        out
    }
    let keys = |d: &Decision<'_>| -> std::collections::BTreeSet<String> {
        d.reasons.iter().map(named).collect()
    };
    let (was, now) = (keys(before), keys(after));
    let mut parts = Vec::new();
    let added: Vec<String> = now.difference(&was).cloned().collect();
    if !added.is_empty() {
        parts.push(format!("new: {}", listed(added)));
    }
    let gone: Vec<String> = was.difference(&now).cloned().collect();
    if !gone.is_empty() {
        parts.push(format!("gone: {}", listed(gone)));
    }
    if before.blast_radius.len() != after.blast_radius.len() {
        parts.push(format!(
            "blast radius {} → {} resources",
            before.blast_radius.len(),
            after.blast_radius.len()
        ));
    }
    let old: BTreeMap<&str, _> = before
        .evidence
        .iter()
        .map(|e| (e.id.as_ref(), e.status))
        .collect();
    let moved: Vec<String> = after
        .evidence
        .iter()
        .filter_map(|e| {
            let was = old.get(e.id.as_ref())?;
            (*was != e.status).then(|| {
                format!(
                    "evidence `{}` {} → {}",
                    e.id,
                    was.as_str(),
                    e.status.as_str()
                )
            })
        })
        .collect();
    if !moved.is_empty() {
        parts.push(listed(moved));
    }
    if before.decision != after.decision {
        parts.push(format!(
            "verdict {} → {}",
            word(before.decision),
            word(after.decision)
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Whether the gate may probe `item`'s `check` (section 10): the catalog
/// resource named by its `location` declares a `probe_prefix`, and the
/// check's URL starts with it.
pub(crate) fn probe_cleared(graph: &CatalogGraph, item: &Evidence) -> bool {
    let Some(url) = item
        .check
        .as_ref()
        .and_then(|c| c.get("url"))
        .and_then(Value::as_str)
    else {
        return false;
    };
    item.location
        .as_deref()
        .and_then(|loc| graph.get(loc))
        .and_then(|r| r.probe_prefix.as_deref())
        .is_some_and(|prefix| url.starts_with(prefix))
}

/// Who observed `item` and how, in a sentence for the reviewer: the
/// connector that answered, and whether it looked at its own capture or
/// probed the item's `check` (only ever under the catalog's `probe_prefix`,
/// since uncleared checks are stripped before any connector sees them).
fn observed_by(connector: &str, item: &Evidence) -> String {
    match &item.check {
        Some(check) => format!(
            "the gate probed {} {} (under the probe prefix the catalog declares for `{}`)",
            check.get("method").and_then(Value::as_str).unwrap_or("GET"),
            shown_url(check.get("url").and_then(Value::as_str).unwrap_or("?")),
            item.location.as_deref().unwrap_or("?"),
        ),
        None => format!("the `{connector}` connector, from its own capture"),
    }
}

/// A probe URL as a reviewer sees it: without its query and any
/// `user:password@`, which may carry credentials.
fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

/// What the gate observed of a proposal's evidence: the observations, and
/// who made each (for the reviewer).
struct Seen {
    observations: Observations,
    observers: BTreeMap<String, String>,
}

/// Which of a proposal's evidence items the catalog clears for a probe.
fn cleared(graph: &CatalogGraph, proposal: &Proposal) -> Vec<bool> {
    proposal
        .evidence()
        .iter()
        .map(|(item, _)| probe_cleared(graph, item))
        .collect()
}

impl Gate {
    /// Observes the evidence now and decides, adding the gate's own reasons.
    /// Returns the decision and whether the gate is frozen. The decision is
    /// made with `graph`, or else with the cached catalog graph as it is
    /// (the caller refreshed it), read under its lock only while deciding.
    pub(crate) async fn evaluate(
        &self,
        graph: Option<&CatalogGraph>,
        id: &str,
        proposal: &Proposal,
        connector: &dyn Connector,
    ) -> Result<(Decision<'static>, bool), GateError> {
        let clear = match graph {
            Some(g) => cleared(g, proposal),
            None => self.read_catalog(|g| cleared(g, proposal)).await?,
        };
        let seen = self.observe(id, proposal, connector, &clear).await;
        let now = self.now();
        let decision = match graph {
            Some(g) => self.decide_on(g, proposal, connector, &seen, now),
            None => {
                self.read_catalog(|g| self.decide_on(g, proposal, connector, &seen, now))
                    .await?
            }
        };
        self.finish(decision, &seen).await
    }

    /// The decisions a proposal gets now under two catalogs, with the same
    /// observations (made once, unless the two catalogs clear different
    /// probes), so the two differ only by what the catalogs say: the
    /// preview of a catalog edit ([`Gate::plan_catalog`]).
    pub(crate) async fn evaluate_under(
        &self,
        before: &CatalogGraph,
        after: &CatalogGraph,
        id: &str,
        proposal: &Proposal,
        connector: &dyn Connector,
    ) -> Result<(Decision<'static>, Decision<'static>), GateError> {
        let (clear_before, clear_after) = (cleared(before, proposal), cleared(after, proposal));
        let seen_before = self.observe(id, proposal, connector, &clear_before).await;
        let seen_after = if clear_after == clear_before {
            None
        } else {
            Some(self.observe(id, proposal, connector, &clear_after).await)
        };
        let seen_after = seen_after.as_ref().unwrap_or(&seen_before);
        let now = self.now();
        let b = self.decide_on(before, proposal, connector, &seen_before, now);
        let a = self.decide_on(after, proposal, connector, seen_after, now);
        let (b, _) = self.finish(b, &seen_before).await?;
        let (a, _) = self.finish(a, seen_after).await?;
        Ok((b, a))
    }

    /// Section 10: observations come from the gate. Each connector sees
    /// the item with its `check` only when the catalog cleared it
    /// (`cleared`, one per item), so a probe runs only where a risk officer
    /// said evidence can be verified; otherwise only a connector's own
    /// capture (its own evidence ids) can observe it, and anything else
    /// stays `unverifiable`.
    async fn observe(
        &self,
        id: &str,
        proposal: &Proposal,
        connector: &dyn Connector,
        cleared: &[bool],
    ) -> Seen {
        let mut observations = Observations::new();
        let mut observers: BTreeMap<String, String> = BTreeMap::new();
        let items = proposal.evidence();
        for ((item, _), &cleared) in items.iter().zip(cleared) {
            let item: &Evidence = item;
            if item.kind == EvidenceKind::Window && !cleared {
                continue;
            }
            let shown;
            let item = if cleared || item.check.is_none() {
                item
            } else {
                shown = Evidence {
                    check: None,
                    ..item.clone()
                };
                &shown
            };
            let mut seen = connector
                .observe(id, item)
                .await
                .map(|o| (connector.name(), o));
            if seen.is_none() {
                for other in self.connectors.values() {
                    if other.name() != connector.name() {
                        seen = other.observe(id, item).await.map(|o| (other.name(), o));
                        if seen.is_some() {
                            break;
                        }
                    }
                }
            }
            if let Some((by, o)) = seen {
                observers.insert(item.id.clone(), observed_by(by, item));
                observations.insert(item.id.clone(), o);
            }
        }
        Seen {
            observations,
            observers,
        }
    }

    /// The one engine's decision under `graph`, with what the gate can run.
    fn decide_on(
        &self,
        graph: &CatalogGraph,
        proposal: &Proposal,
        connector: &dyn Connector,
        seen: &Seen,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Decision<'static> {
        // Rule 4: a step is available only if this gate can run it: its
        // `op` names a connector the gate has, which accepts the op. A
        // rollback runs the write's own connector's `restore` and nothing
        // else, so a step naming another connector (an `http` compensation
        // declared on an `fs` delete) would never run: it is not runnable
        // either.
        let runnable = |_: usize, step: &Step| {
            step.op
                .get("connector")
                .and_then(Value::as_str)
                .filter(|name| *name == connector.name())
                .and_then(|name| self.connectors.get(name))
                .is_some_and(|c| c.accepts_step(&step.op))
        };
        decide_with(
            graph,
            proposal,
            &seen.observations,
            now,
            &self.config.policy,
            &runnable,
        )
        .into_owned()
    }

    /// Who verified each item, and the gate's own hold while frozen.
    async fn finish(
        &self,
        mut decision: Decision<'static>,
        seen: &Seen,
    ) -> Result<(Decision<'static>, bool), GateError> {
        for e in &mut decision.evidence {
            e.verified_by = seen.observers.get(e.id.as_ref()).cloned();
        }
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
        Ok((decision, freeze.frozen))
    }

    /// Distinct approvals a decision calls for: the largest over the bearers
    /// in its blast radius; none for a refusal.
    pub(crate) fn required_approvals(&self, decision: &Decision<'_>) -> u32 {
        if decision.decision == Verdict::Refuse {
            return 0;
        }
        decision
            .bearers
            .iter()
            .map(|b| self.config.approvals.get(b).copied().unwrap_or(1))
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// Makes `decision` the write's decision, and recomputes everything that
    /// follows from it: its hash (what approvals bind to, with the targets
    /// the record holds: set them first), the approvals it
    /// calls for, whether an approval needs a reason, and the expiry of a
    /// hold. The only place any of these is
    /// set, at submit and whenever re-verification adopts a new decision.
    ///
    /// `held` says whether the write waits for a person after this
    /// decision, which is what the expiry follows, not the verdict: a write
    /// held again because its decision changed may now be decided
    /// `proceed` (held only for a freeze since lifted), and a held write
    /// always expires; a `hold` that observe mode runs does not wait.
    pub(crate) fn adopt(&self, rec: &mut WriteRecord, decision: Decision<'static>, held: bool) {
        let now = self.now();
        rec.decision_hash = binding_hash(&decision, &rec.targets);
        rec.required_approvals = self.required_approvals(&decision);
        rec.approval_needs_reason =
            recourse_client::approval_needs_reason(&rec.connector, &decision);
        rec.expires_at = held.then(|| now + self.config.hold_ttl);
        rec.decision = decision;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_shown_without_its_credentials() {
        assert_eq!(
            shown_url("https://u:p@snap.internal/s/1?api_key=x#f"),
            "https://snap.internal/s/1"
        );
        assert_eq!(shown_url("http://host"), "http://host");
        let item: Evidence = serde_json::from_value(serde_json::json!({
            "id": "e", "kind": "external_copy", "location": "snap:1",
            "check": {"url": "https://snap.internal/s/1?token=t", "method": "HEAD"}}))
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            observed_by("http", &item),
            "the gate probed HEAD https://snap.internal/s/1 (under the probe prefix the catalog declares for `snap:1`)"
        );
    }
}
