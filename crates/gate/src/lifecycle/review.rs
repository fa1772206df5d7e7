//! Review: approvals (as many as the decision calls for, each bound to the
//! proposal and decision it was given for), re-verification before an
//! approved write runs, rejection, expiry.

use std::collections::BTreeMap;

use recourse_client::{Approval, Permission, WriteRecord, WriteStatus};
use serde_json::json;

use super::evaluate::{decision_changes, targets_changed, targets_found};
use super::{Gate, Move, Step, CAS_RETRIES};
use crate::audit::AuditDraft;
use crate::auth::Caller;
use crate::error::GateError;
use crate::store::WriteFilter;

impl Gate {
    pub async fn approve(
        &self,
        caller: &Caller,
        id: &str,
        comment: Option<String>,
    ) -> Result<WriteRecord, GateError> {
        caller.allow(Permission::ApproveWrites)?;
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
            if rec.expires_at.is_some_and(|t| t <= self.now()) {
                self.expire_one(rec, version).await?;
                return Err(GateError::conflict(
                    recourse_client::ErrorCode::WrongStatus,
                    format!("write `{id}` expired before it was approved"),
                ));
            }
            // An undecodable freeze state is an error here: fail closed.
            let freeze = self.freeze_state().await?;
            if freeze.frozen {
                return Err(GateError::conflict(
                    recourse_client::ErrorCode::Frozen,
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
                    recourse_client::ErrorCode::AlreadyApproved,
                    format!("`{}` approved write `{id}` already", caller.name),
                ));
            }
            // Friction matches the stakes: checked here, so no client
            // (console, CLI, a script on the API) can approve without one.
            if let Some(why) = recourse_client::high_stakes(&rec.connector, &rec.decision) {
                if comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    return Err(GateError::ReasonRequired {
                        field: "comment".into(),
                        message: format!(
                            "approving write `{id}` needs a written reason ({why}): say why in `comment`"
                        ),
                    });
                }
            }
            rec.approvals.push(Approval {
                by: caller.name.clone(),
                at: self.now(),
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
            let (count, required) = (valid.len() as u32, rec.required_approvals);
            let body = json!({"by": caller.name, "comment": comment, "proposal_hash": rec.proposal_hash, "decision_hash": rec.decision_hash});
            if count < required {
                let mv = Move::new(rec, version, Step::Approval, &caller.name)
                    .note(format!("approval {count} of {required}"))
                    .body(body);
                match self.apply(mv).await? {
                    Some((rec, _)) => return Ok(self.shown(rec)),
                    None => continue,
                }
            }
            // Enough approvals: the write is ours to run if this move wins.
            let mut mv = Move::new(rec, version, Step::Approve, &caller.name).body(body);
            mv.note = comment.clone();
            let Some((rec, version)) = self.apply(mv).await? else {
                continue;
            };
            let name = caller.name.clone();
            let approved = rec.clone();
            return match self
                .with_claim(id, self.reverify_and_run(rec, version, &name))
                .await
            {
                Ok(rec) => Ok(self.shown(rec)),
                // The approval is recorded; running the write could not
                // begin or go on now (the store failed for the moment, the
                // gate froze, another gate holds it). The approval stands,
                // so it is not answered as an error, which would say that
                // nothing was recorded and invite a second approval; the
                // write is shown as it is, with why it waits. The running
                // gate's sweep takes it up.
                Err(e)
                    if e.status() == 503
                        || matches!(
                            e.code(),
                            recourse_client::ErrorCode::Frozen
                                | recourse_client::ErrorCode::InProgress
                        ) =>
                {
                    let mut rec = match self.load(id).await {
                        Ok((rec, _)) => rec,
                        Err(_) => approved,
                    };
                    if rec.status.in_flight() && rec.waiting.is_none() {
                        rec.waiting = Some(format!(
                            "approved; it has not run yet: {} The gate takes it up by itself.",
                            e.public_message()
                        ));
                    }
                    Ok(self.shown(rec))
                }
                Err(e) => Err(e),
            };
        }
        Err(GateError::conflict(
            recourse_client::ErrorCode::Busy,
            format!("write `{id}` kept changing; try again"),
        ))
    }

    /// Before an approved write runs, its evidence is verified again. If the
    /// decision changed, the new one is adopted with all that follows from
    /// it (reasons, approvals required, expiry) and the write is held again:
    /// approvals given for the old decision no longer count.
    pub(crate) async fn reverify_and_run(
        &self,
        rec: WriteRecord,
        version: i64,
        actor: &str,
    ) -> Result<WriteRecord, GateError> {
        let raw = match self.submitted_proposal(&rec).await? {
            Ok(raw) => raw,
            Err(why) => return self.not_opened(rec, version, actor, why).await,
        };
        let Some(connector) = self.connector(&rec.connector) else {
            let why = self.missing_connector(&rec.connector);
            return self.wait(rec, version, actor, why).await;
        };
        // What stands at the targets now, the connector planning the write
        // again: a target replaced while the write was held (a file swapped
        // for a link, a row newly matched) is not what was approved. A
        // write whose targets were not kept binds to its decision alone. A
        // plan that fails now (a parent swapped for a link, the target
        // gone) is left to the run, which refuses it with the connector's
        // own reason before anything changes.
        let targets = if rec.targets.is_empty() {
            BTreeMap::new()
        } else {
            match connector.plan(&rec.id, &raw.action).await {
                Ok(plan) => targets_found(&plan),
                Err(_) => rec.targets.clone(),
            }
        };
        self.refresh_catalog().await?;
        let (decision, _) = self
            .evaluate(None, &rec.id, &raw, connector.as_ref())
            .await?;
        let hash = super::binding_hash(&decision, &targets);
        if hash != rec.decision_hash {
            let mut rec = rec;
            let previous = std::mem::take(&mut rec.decision_hash);
            let changed = targets_changed(&rec.targets, &targets);
            let differs = decision_changes(&rec.decision, &decision);
            rec.targets = targets;
            // Held again whatever the new verdict: it waits, and expires.
            self.adopt(&mut rec, decision, true);
            let body = json!({"decision": rec.decision, "previous_decision_hash": previous,
                              "decision_hash": rec.decision_hash,
                              "required_approvals": rec.required_approvals,
                              "targets": rec.targets});
            let what = match &changed {
                Some(targets) => format!(
                    "a target changed since the decision ({targets}): held again, so that a person approves what would run now"
                ),
                None => match &differs {
                    Some(what) => format!("the context changed ({what}): held again"),
                    None => "the context changed: held again".to_string(),
                },
            };
            let note = format!(
                "re-verification found {what} ({} approval{} needed)",
                rec.required_approvals,
                if rec.required_approvals == 1 { "" } else { "s" }
            );
            return Ok(self
                .apply_won(
                    Move::new(rec, version, Step::Rehold, "gate")
                        .note(note)
                        .body(body),
                )
                .await?
                .0);
        }
        let (rec, version) = self
            .apply_won(Move::new(rec, version, Step::Start, actor).note("re-verified"))
            .await?;
        self.run(rec, version, actor).await
    }

    pub async fn reject(
        &self,
        caller: &Caller,
        id: &str,
        reason: String,
    ) -> Result<WriteRecord, GateError> {
        caller.allow(Permission::RejectWrites)?;
        if reason.trim().is_empty() {
            return Err(GateError::invalid("reason", "must not be empty: say why"));
        }
        for _ in 0..CAS_RETRIES {
            let (rec, version) = self.load(id).await?;
            if rec.status != WriteStatus::Held {
                return Err(Self::not_in(&rec, "held"));
            }
            let mv = Move::new(rec, version, Step::Reject, &caller.name)
                .note(reason.clone())
                .body(json!({"reason": reason}));
            if let Some((rec, _)) = self.apply(mv).await? {
                return Ok(self.shown(rec));
            }
        }
        Err(GateError::conflict(
            recourse_client::ErrorCode::Busy,
            format!("write `{id}` kept changing; try again"),
        ))
    }

    async fn expire_one(&self, rec: WriteRecord, version: i64) -> Result<(), GateError> {
        let mv = Move::new(rec, version, Step::Expire, "gate")
            .note("no decision before the hold expired");
        self.apply(mv).await?;
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
        let now = self.now();
        let lead = self.notifier.as_ref().map(|n| n.expiry_lead());
        let mut n = 0;
        for rec in held {
            if rec.expires_at.is_some_and(|t| t <= now) {
                if let Some((rec, version)) = self.store.write(&rec.id).await? {
                    if rec.status == WriteStatus::Held {
                        self.expire_one(rec, version).await?;
                        n += 1;
                    }
                }
            } else if lead.is_some_and(|lead| rec.expires_at.is_some_and(|t| t <= now + lead)) {
                self.expiring_soon(&rec).await?;
            }
        }
        Ok(n)
    }

    /// A hold expires within the notifier's lead and nobody has decided:
    /// once per hold (its expiry), an audit entry `write.expiring` and a
    /// message. The trail is asked so that a restart (or another gate on
    /// the store) does not announce it again; this process remembers what
    /// it announced so the trail is asked once.
    async fn expiring_soon(&self, rec: &WriteRecord) -> Result<(), GateError> {
        let Some(notifier) = &self.notifier else {
            return Ok(());
        };
        if !notifier.first_expiring(rec, self.now()) {
            return Ok(());
        }
        let expires_at = serde_json::json!(rec.expires_at);
        let announced = self
            .store
            .audit_entry_for(&rec.id, crate::notify::EXPIRING)
            .await?
            .is_some_and(|e| e.body.get("expires_at") == Some(&expires_at));
        if announced {
            return Ok(());
        }
        let body = serde_json::json!({"expires_at": expires_at});
        self.store
            .append_audit(AuditDraft::new(
                "gate",
                crate::notify::EXPIRING,
                Some(&rec.id),
                body,
            ))
            .await?;
        self.emit(crate::notify::EXPIRING, Some(rec));
        Ok(())
    }
}
