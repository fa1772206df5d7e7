//! After a crash, and while running: every write left `approved`,
//! `executing` or `rolling_back` is settled from the durable record and the
//! connector's own evidence, never by running a step twice.
//!
//! A write in flight is held by a claim (owner and lease, renewed while the
//! work runs, and a fencing token every record made under it is checked
//! against: a gate whose lease lapsed and whose write was claimed again
//! records nothing, and stops). The running gate sweeps for in-flight writes nobody holds:
//! one whose task met a transient error (after its backoff), or whose gate
//! died. At start the embedded store belongs to this process alone (the
//! data directory is locked), so every claim found is stale; a shared store
//! (several gates on PostgreSQL) is swept at start as while running: a live
//! claim is another gate's, and its lease is honoured.

use chrono::{DateTime, TimeZone, Utc};
use recourse_client::{WriteRecord, WriteStatus};
use recourse_connector::crash_point;
use serde_json::{json, Value};

use super::{Gate, Move, Step};
use crate::crash_points;
use crate::error::{classify, ErrorClass, GateError};
use crate::store::Claimed;

const SWEEP_BATCH: i64 = 256;

fn end_of_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Gate {
    /// Settles everything a crash left in flight; returns each write and
    /// where it ended up. Called before the gate accepts requests.
    pub async fn recover_at_start(&self) -> Result<Vec<(String, WriteStatus)>, GateError> {
        self.sweep_in_flight(true).await
    }

    /// One pass of the running gate's background work: expire holds whose
    /// time is up and take up in-flight writes nobody holds. Returns how
    /// many in-flight writes it settled or retried.
    pub async fn sweep(&self) -> Result<usize, GateError> {
        // An expiry that fails (the store busy for a moment, a record that
        // does not read) must not keep stranded writes from being taken
        // up: the two are independent, and the next pass expires again.
        if let Err(e) = self.expire_due().await {
            let e = self.masked_text(&e.to_string());
            tracing::warn!(error = %e, "expiring held writes");
        }
        Ok(self.sweep_in_flight(false).await?.len())
    }

    async fn sweep_in_flight(
        &self,
        at_start: bool,
    ) -> Result<Vec<(String, WriteStatus)>, GateError> {
        let now = self.now();
        // At start on a store of our own, no claim is live: read every lease
        // as lapsed. (Year 9999, not `DateTime::MAX_UTC`: stores compare
        // RFC 3339 text, and a six-digit year with a sign sorts before every
        // real time.) On a shared store another gate may hold one.
        let at_start = at_start && !self.store.shared();
        let horizon = if at_start { end_of_time() } else { now };
        let mut settled = Vec::new();
        for id in self.store.claimable(horizon, SWEEP_BATCH).await? {
            let Some((rec, version)) = self.store.write(&id).await? else {
                continue;
            };
            if !rec.status.in_flight() {
                continue;
            }
            // A capture in another gate's vault: that gate (or one sharing
            // its vault) settles it; the write shows which (`vault_gate`).
            if self.capture_here(&rec).is_err() {
                continue;
            }
            // A write moved into flight moments ago is with the task that
            // moved it, which claims it right after its move.
            if !at_start && rec.updated_at > now - self.config.claim_lease {
                continue;
            }
            // An approved write is not claimed while frozen: it waits,
            // approved, for the resume (it is not held again).
            let Claimed::Taken(token) = self
                .store
                .claim(&id, &self.instance, now + self.config.claim_lease, horizon)
                .await?
            else {
                continue;
            };
            crash_point!(crash_points::RECOVERY_AFTER_CLAIM);
            match self
                .holding(&id, token, Box::pin(self.settle(rec, version)))
                .await
            {
                Ok(after) => settled.push((id, after.status)),
                Err(e) => {
                    // Left in flight; the next sweep tries again.
                    let e = self.masked_text(&e.to_string());
                    tracing::warn!(write = %id, error = %e, "settling an in-flight write");
                }
            }
        }
        Ok(settled)
    }

    /// Settles one in-flight write this gate has claimed.
    pub(crate) async fn settle(
        &self,
        rec: WriteRecord,
        version: i64,
    ) -> Result<WriteRecord, GateError> {
        match rec.status {
            // Approved but not started: re-verify as if just approved.
            WriteStatus::Approved => self.reverify_and_run(rec, version, "gate").await,
            WriteStatus::Executing => self.settle_executing(rec, version).await,
            WriteStatus::RollingBack => self.finish_rollback(rec, version, "gate").await,
            _ => Ok(rec),
        }
    }

    /// An `executing` write: did it take effect? Ask the connector, which
    /// reads the target and its own markers; run it only on a clear "no".
    async fn settle_executing(
        &self,
        rec: WriteRecord,
        version: i64,
    ) -> Result<WriteRecord, GateError> {
        let actor = "gate";
        let Some(connector) = self.connector(&rec.connector) else {
            let why = self.missing_connector(&rec.connector);
            return self.wait(rec, version, actor, why).await;
        };
        let raw = match self.raw_proposal(&rec) {
            Ok(raw) => raw,
            // Not tampered with as far as this gate can tell: a gate with
            // that key can ask; this one waits.
            Err(e @ super::seal::SealError::OtherKey { .. }) => {
                return self.wait(rec, version, actor, e.to_string()).await;
            }
            Err(e) => {
                // Whether it ran cannot be asked without the proposal as
                // submitted: a person decides, and nothing runs.
                self.forget_retries(&rec.id);
                let note = format!("after restart: {e}; whether the write took effect cannot be asked, and it does not run: a person must check");
                let mv = Move::new(rec, version, Step::Unknown, actor).note(note);
                return Ok(self.apply_won(mv).await?.0);
            }
        };
        let (rec, version) = if rec.capture.is_none() {
            // A crash between the capture and its record: the vault's own
            // record keeps its bindings (the manifest hash).
            match connector.captured(&rec.id, &raw).await {
                Ok(Some(capture)) => {
                    let mut rec = rec;
                    let body = json!({"capture": self.redacted(&capture)});
                    rec.capture = Some(capture);
                    rec.vault_gate = self.vault_gate_for(&rec.connector);
                    self.apply_won(
                        Move::new(rec, version, Step::Captured, actor)
                            .note("after restart: the capture the vault holds")
                            .body(body),
                    )
                    .await?
                }
                Ok(None) => (rec, version),
                Err(e) if classify(&e) == ErrorClass::Transient => {
                    let why = format!(
                        "after restart: the vault could not be read ({e}); retried with backoff"
                    );
                    return self.wait(rec, version, actor, why).await;
                }
                Err(_) => (rec, version),
            }
        } else {
            (rec, version)
        };
        let capture = rec.capture.clone().unwrap_or(Value::Null);
        match connector.applied(&rec.id, &raw, &capture).await {
            Ok(Some(true)) => {
                self.forget_retries(&rec.id);
                let mv = Move::new(rec, version, Step::Executed, actor)
                    .note("after restart: the write had taken effect");
                Ok(self.apply_won(mv).await?.0)
            }
            // Not run yet: it runs now, unless the gate is frozen (by an
            // incident lead, or by itself after a failed fsync): a freeze
            // stops every write, one waiting for a retry too, until a lead
            // resumes (the sweep ran it regardless before).
            Ok(Some(false)) => match self.frozen_why().await {
                None => self.run(rec, version, actor).await,
                Some(why) => self.wait(rec, version, actor, why).await,
            },
            Ok(None) => {
                self.forget_retries(&rec.id);
                let mv = Move::new(rec, version, Step::Unknown, actor).note(
                    "after restart: whether the write took effect cannot be known; a person must check",
                );
                Ok(self.apply_won(mv).await?.0)
            }
            Err(e) => {
                match classify(&e) {
                    ErrorClass::Transient => {
                        let why = format!("after restart: the target could not be read ({e}); retried with backoff");
                        self.wait(rec, version, actor, why).await
                    }
                    _ => {
                        self.forget_retries(&rec.id);
                        let note = format!("after restart: whether the write took effect cannot be told ({e}); a person must check");
                        let mv = Move::new(rec, version, Step::Unknown, actor).note(note);
                        Ok(self.apply_won(mv).await?.0)
                    }
                }
            }
        }
    }
}
