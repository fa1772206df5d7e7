//! Rollback: an incident lead puts back what a write changed; the connector
//! restores from its capture and verifies. A rollback cut by a crash is
//! resumed by recovery with the same `force` (kept in the record), and the
//! connector's restore is resumable, so it finishes rather than reporting
//! its own partial work as drift. Also: settling a write whose outcome the
//! gate cannot know.

use recourse_client::{Permission, RestoreItem, RestoreStatus, RollbackReport, WriteRecord};
use recourse_connector::{crash_point, ConnectorError};
use serde_json::{json, Value};

use super::{Gate, Move, Step};
use crate::auth::Caller;
use crate::crash_points;
use crate::error::{classify, ErrorClass, GateError};

/// Every item went back and what could be checked matched, but some
/// contents could not be verified (`unverified`).
fn put_back_unverified(report: &RollbackReport) -> bool {
    !report.items.is_empty()
        && report.items.iter().all(|i| {
            matches!(
                i.status,
                RestoreStatus::Restored | RestoreStatus::Unverified
            )
        })
        && report
            .items
            .iter()
            .any(|i| i.status == RestoreStatus::Unverified)
}

impl Gate {
    pub async fn rollback(
        &self,
        caller: &Caller,
        id: &str,
        reason: String,
        force: bool,
    ) -> Result<WriteRecord, GateError> {
        caller.allow(Permission::RollBack)?;
        if reason.trim().is_empty() {
            return Err(GateError::invalid("reason", "must not be empty: say why"));
        }
        let (mut rec, version) = self.load(id).await?;
        if super::machine::next(rec.status, Step::Rollback).is_none() {
            return Err(Self::not_in(&rec, "executed"));
        }
        self.capture_here(&rec)?;
        // The force flag travels with the record: a rollback resumed after a
        // crash continues as it was asked.
        rec.rollback = Some(RollbackReport {
            verified: false,
            items: Vec::new(),
            forced: force,
        });
        let mv = Move::new(rec, version, Step::Rollback, &caller.name)
            .note(reason.clone())
            .body(json!({"reason": reason, "force": force}));
        let Some((rec, version)) = self.apply(mv).await? else {
            return Err(GateError::conflict(
                recourse_client::ErrorCode::WrongStatus,
                format!("write `{id}` is being rolled back by someone else"),
            ));
        };
        let name = caller.name.clone();
        self.with_claim(id, self.finish_rollback(rec, version, &name))
            .await
            .map(|rec| self.shown(rec))
    }

    /// Runs (or resumes) the restore of a `rolling_back` write and records
    /// what verification found.
    pub(crate) async fn finish_rollback(
        &self,
        rec: WriteRecord,
        version: i64,
        actor: &str,
    ) -> Result<WriteRecord, GateError> {
        let Some(connector) = self.connector(&rec.connector) else {
            let why = self.missing_connector(&rec.connector);
            return self.wait(rec, version, actor, why).await;
        };
        let force = rec.rollback.as_ref().is_some_and(|r| r.forced);
        // A restore that cannot be resumed is called at most once per
        // rollback: its sending is recorded first, and a rollback found
        // sending (a crash cut it) goes to a person, never sent again.
        let (rec, version) = if connector.restore_resumes() {
            (rec, version)
        } else if let Some(report) = Self::cut_while_sending(&rec) {
            let mut rec = rec;
            rec.rollback = Some(report.clone());
            let mv = Move::new(rec, version, Step::RollbackUnverified, actor)
                .note("the rollback was cut after its compensating requests may have been sent; they are not sent twice: check the target, then roll back again to send them again")
                .body(json!({"report": report}));
            return Ok(self.apply_won(mv).await?.0);
        } else {
            let mut rec = rec;
            let items = Self::compensations(&rec)
                .into_iter()
                .map(|resource| RestoreItem {
                    resource,
                    status: RestoreStatus::Sent,
                    detail: Some("being sent; its result is not recorded yet".into()),
                })
                .collect();
            rec.rollback = Some(RollbackReport {
                verified: false,
                items,
                forced: force,
            });
            let mv = Move::new(rec, version, Step::Compensate, actor)
                .note("sending the compensating requests");
            self.apply_won(mv).await?
        };
        let capture = rec.capture.clone().unwrap_or(Value::Null);
        self.confirm_claim(&rec.id).await?;
        let result = match self.raw_proposal(&rec) {
            Ok(raw) => {
                connector
                    .restore(&rec.id, &raw, &capture, rec.outcome.as_ref(), force)
                    .await
            }
            Err(e @ super::seal::SealError::OtherKey { .. }) => {
                return self.wait(rec, version, actor, e.to_string()).await;
            }
            // Nothing is sent with a proposal that is not the one submitted.
            Err(e) => Err(ConnectorError::Io(e.to_string())),
        };
        let mut rec = rec;
        let (step, note, report) = match result {
            Ok(report) if report.verified => (Step::RolledBack, "restored and verified".to_string(), report),
            // Put back, but not verified: not `rolled_back`, which only
            // verification earns. The write stays `rollback_failed` (a
            // rollback that did not verify) until a person checks it.
            Ok(report) if put_back_unverified(&report) => (
                Step::RollbackUnverified,
                "put back, but its contents could not be verified (no seal of them): check what was put back".to_string(),
                report,
            ),
            Ok(report) if report.items.iter().any(|i| i.status == RestoreStatus::Drift) => (
                Step::Drift,
                "drift: the target changed after the write; nothing was overwritten (use force to overwrite)".to_string(),
                report,
            ),
            Ok(report) => (Step::RollbackUnverified, "the rollback ran but did not verify".to_string(), report),
            Err(ConnectorError::Drift(m)) => (
                Step::Drift,
                format!("drift: {m}; nothing was overwritten (use force to overwrite)"),
                RollbackReport { verified: false, items: Vec::new(), forced: force },
            ),
            Err(e) => match classify(&e) {
                ErrorClass::Transient => {
                    let why = format!("the rollback could not reach its target ({e}); retried with backoff");
                    return self.wait(rec, version, actor, why).await;
                }
                class => {
                    if class == ErrorClass::Durability {
                        self.stop_for_durability(&rec.id, &e).await;
                    }
                    (
                        Step::RollbackUnverified,
                        format!("the rollback could not finish: {e}"),
                        RollbackReport { verified: false, items: Vec::new(), forced: force },
                    )
                }
            },
        };
        crash_point!(crash_points::ROLLBACK_BEFORE_RECORD);
        self.forget_retries(&rec.id);
        rec.rollback = Some(report.clone());
        let mv = Move::new(rec, version, step, actor)
            .note(note)
            .body(json!({"report": report}));
        Ok(self.apply_won(mv).await?.0)
    }

    /// The report of a rollback that recorded its sending and has no
    /// result: a crash cut it, and what it sent is not known.
    fn cut_while_sending(rec: &WriteRecord) -> Option<RollbackReport> {
        rec.rollback
            .as_ref()
            .filter(|r| r.items.iter().any(|i| i.status == RestoreStatus::Sent))
            .cloned()
    }

    /// What a rollback of `rec` will send: the resources its compensating
    /// steps restore (the write's own, when they name none).
    fn compensations(rec: &WriteRecord) -> Vec<String> {
        let mut out: Vec<String> = rec
            .proposal
            .rollback
            .steps
            .iter()
            .filter(|s| {
                s.op.get("connector").and_then(Value::as_str) == Some(rec.connector.as_str())
            })
            .flat_map(|s| s.restores.iter().take(1).cloned())
            .collect();
        if out.is_empty() {
            out.push(rec.id.clone());
        }
        out
    }

    /// An incident lead settles a write whose outcome the gate could not
    /// tell: it ran (it becomes `executed`, and can be rolled back) or it
    /// did not (`failed`). The reason goes into the audit trail.
    pub async fn resolve(
        &self,
        caller: &Caller,
        id: &str,
        executed: bool,
        reason: String,
    ) -> Result<WriteRecord, GateError> {
        caller.allow(Permission::RollBack)?;
        if reason.trim().is_empty() {
            return Err(GateError::invalid(
                "reason",
                "must not be empty: say what was checked",
            ));
        }
        let (mut rec, version) = self.load(id).await?;
        let step = if executed {
            Step::ResolveRan
        } else {
            Step::ResolveNotRun
        };
        if super::machine::next(rec.status, step).is_none() {
            return Err(Self::not_in(&rec, "outcome_unknown"));
        }
        if executed && rec.capture.is_none() {
            // So that it can be rolled back: the capture the vault holds.
            if let (Some(c), Ok(raw)) = (self.connector(&rec.connector), self.raw_proposal(&rec)) {
                if let Ok(Some(capture)) = c.captured(&rec.id, &raw).await {
                    rec.capture = Some(capture);
                    rec.vault_gate = self.vault_gate_for(&rec.connector);
                }
            }
        }
        let mv = Move::new(rec, version, step, &caller.name)
            .note(reason.clone())
            .body(json!({"executed": executed, "reason": reason}));
        Ok(self.shown(self.apply_won(mv).await?.0))
    }
}

#[cfg(test)]
mod tests {
    use recourse_client::{RestoreItem, RestoreStatus, RollbackReport};

    use super::put_back_unverified;

    fn report(statuses: &[RestoreStatus]) -> RollbackReport {
        RollbackReport {
            verified: statuses.iter().all(|s| *s == RestoreStatus::Restored),
            items: statuses
                .iter()
                .map(|s| RestoreItem {
                    resource: "fs:/r/a".into(),
                    status: *s,
                    detail: None,
                })
                .collect(),
            forced: false,
        }
    }

    #[test]
    fn unverified_contents_are_told_apart_from_failures() {
        use RestoreStatus::*;
        assert!(put_back_unverified(&report(&[Unverified])));
        assert!(put_back_unverified(&report(&[Restored, Unverified])));
        assert!(!put_back_unverified(&report(&[Restored])));
        assert!(!put_back_unverified(&report(&[])));
        assert!(!put_back_unverified(&report(&[Unverified, Failed])));
        assert!(!put_back_unverified(&report(&[Unverified, Mismatch])));
        assert!(!put_back_unverified(&report(&[Unverified, Drift])));
    }
}
