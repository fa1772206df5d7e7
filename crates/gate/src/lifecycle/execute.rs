//! Running a write: claim it, capture, record the capture, execute, record
//! the outcome; and settling it from the connector's own evidence when a
//! step fails.

use std::future::Future;

use recourse_client::{FreezeState, WriteRecord};
use recourse_connector::{crash_point, Connector, ConnectorError};
use recourse_core::Proposal;
use serde_json::{json, Value};

use super::seal::SealError;
use super::{sha256_json, Gate, Move, Step};
use crate::audit::{entry_hash, AuditDraft};
use crate::crash_points;
use crate::error::{classify, ErrorClass, GateError};
use crate::store::Claimed;

/// Why the proposal of a write about to run is not at hand.
#[derive(Debug)]
pub(crate) enum Unopened {
    /// Not the proposal submitted (or a seal that does not authenticate).
    Mismatch(String),
    /// Sealed under another gate's action key.
    OtherKey(String),
}

/// The connectors whose captures are files in the gate's vault directory,
/// on the gate's machine: `fs` (the captured tree) and `sql` (the
/// before-images, written by its execution). Another gate cannot restore
/// from them, so such a write records which gate's vault holds them. An
/// HTTP write's compensation needs nothing local.
pub(crate) const LOCAL_VAULT: [&str; 2] = ["fs", "sql"];

tokio::task_local! {
    /// The claim the running task works under: every move of that write the
    /// task makes is fenced with its token (see [`Gate::apply`]), so no path
    /// that records under a claim can forget it.
    static HELD: Held;
}

/// A claim this gate holds: the write and the fencing token it was taken
/// with.
#[derive(Debug, Clone)]
struct Held {
    id: String,
    token: i64,
}

/// The fencing token of the claim the running task holds on write `id`,
/// if it holds one.
pub(crate) fn held_token(id: &str) -> Option<i64> {
    HELD.try_with(|h| (h.id == id).then_some(h.token))
        .ok()
        .flatten()
}

/// What a gate whose record was fenced off hears: it stops, and leaves the
/// write to the claim taken since.
pub(crate) fn claim_lost(id: &str) -> GateError {
    GateError::conflict(
        recourse_client::ErrorCode::ClaimLost,
        format!("write `{id}`: this gate's claim on it lapsed and another gate claimed it since; that gate settles it (from the durable record and the target's own evidence), and this one records nothing more"),
    )
}

impl Gate {
    /// Claims the write for this gate for the length of `work` (the claim is
    /// renewed while it runs, so a sweep never takes up a write still in
    /// progress), then releases it, with a backoff when `work` left the
    /// write waiting.
    pub(crate) async fn with_claim<T>(
        &self,
        id: &str,
        work: impl Future<Output = Result<T, GateError>>,
    ) -> Result<T, GateError> {
        let lease = self.config.claim_lease;
        let now = self.now();
        match self
            .store
            .claim(id, &self.instance, now + lease, now)
            .await?
        {
            // Boxed: the work is a deep future, and a copy of it in each
            // frame that passes it on overflows a test thread's stack.
            Claimed::Taken(token) => self.holding(id, token, Box::pin(work)).await,
            Claimed::Refused => Err(GateError::conflict(
                recourse_client::ErrorCode::InProgress,
                format!("write `{id}` is being worked on; its outcome will show in its history"),
            )),
            Claimed::Frozen => Err(GateError::conflict(
                recourse_client::ErrorCode::Frozen,
                format!("write `{id}` is approved and waits: the gate is frozen, and nothing begins executing until an incident lead resumes it"),
            )),
        }
    }

    /// Runs `work` under the claim on `id` taken with `token`: renews it
    /// while `work` runs, fences every move `work` makes with the token,
    /// and releases it after.
    pub(crate) async fn holding<T>(
        &self,
        id: &str,
        token: i64,
        work: impl Future<Output = Result<T, GateError>>,
    ) -> Result<T, GateError> {
        let lease = self.config.claim_lease;
        let renew = {
            let store = self.store.clone();
            let clock = self.clock.clone();
            let (id, owner) = (id.to_string(), self.instance.clone());
            let every = (lease / 3)
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(10));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match store.renew(&id, &owner, token, clock.now() + lease).await {
                        Ok(true) => {}
                        // Settled (out of flight), or claimed again since
                        // its lease lapsed: then nothing made under this
                        // claim records any more. Either way, stop.
                        Ok(false) => {
                            tracing::info!(write = %id, token, "the claim ended: the write was settled or claimed again");
                            return;
                        }
                        Err(e) => tracing::warn!(write = %id, error = %e, "renewing a claim"),
                    }
                }
            })
        };
        let held = Held {
            id: id.to_string(),
            token,
        };
        let out = HELD.scope(held, work).await;
        renew.abort();
        let retry_at = self.pending_retry(id);
        if let Err(e) = self
            .store
            .release(id, &self.instance, token, retry_at)
            .await
        {
            // The lease lapses on its own; the sweep takes the write up then.
            tracing::warn!(write = %id, error = %e, "releasing a claim");
        }
        out
    }

    /// Right before a call that changes the target (an execution, a
    /// restore): the claim is renewed for a whole lease, under its token.
    /// A claim lost meanwhile (its lease lapsed and another gate took the
    /// write) stops here, before the call: the other gate settles it.
    pub(crate) async fn confirm_claim(&self, id: &str) -> Result<(), GateError> {
        let Some(token) = held_token(id) else {
            return Ok(());
        };
        let until = self.now() + self.config.claim_lease;
        if self.store.renew(id, &self.instance, token, until).await? {
            Ok(())
        } else {
            Err(claim_lost(id))
        }
    }

    /// This gate's id when `connector` keeps its captures in this gate's
    /// vault, on this machine (see [`LOCAL_VAULT`]).
    pub(crate) fn vault_gate_for(&self, connector: &str) -> Option<String> {
        LOCAL_VAULT
            .contains(&connector)
            .then(|| self.config.gate_id.clone())
    }

    /// Refuses to work on a write whose capture is in another gate's vault
    /// (this gate cannot restore or check it), naming the gate that can.
    pub(crate) fn capture_here(&self, rec: &WriteRecord) -> Result<(), GateError> {
        match &rec.vault_gate {
            Some(gate) if *gate != self.config.gate_id => Err(GateError::conflict(
                recourse_client::ErrorCode::OtherGate,
                format!(
                    "write `{}` keeps its capture in the vault of gate `{gate}` (this is gate `{}`): send this to gate `{gate}`, or to a gate on its machine that shares its vault and id",
                    rec.id, self.config.gate_id
                ),
            )),
            _ => Ok(()),
        }
    }

    /// [`Gate::run`] under a claim.
    pub(crate) async fn run_claimed(
        &self,
        rec: WriteRecord,
        version: i64,
        actor: &str,
    ) -> Result<WriteRecord, GateError> {
        let id = rec.id.clone();
        // Boxed: a run's state (capture, freeze check, execute, the error
        // paths) is large, and every caller's future would carry it inline
        // (a test's `block_on` overflowed its 2 MiB stack).
        self.with_claim(&id, Box::pin(self.run(rec, version, actor)))
            .await
    }

    /// Capture, record the capture, execute, record the outcome. The write
    /// must be `executing` at `version`.
    pub(crate) async fn run(
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
        let (rec, version) = if rec.capture.is_none() {
            match connector.capture(&rec.id, &raw).await {
                Ok(capture) => {
                    // The capture is durable in the vault, its record not
                    // yet in the store: recovery reads it back (`captured`).
                    crash_point!(crash_points::BEFORE_CAPTURE_RECORD);
                    let mut rec = rec;
                    let capture = self.masked_knowing(&capture, &raw);
                    rec.capture = Some(capture.clone());
                    rec.vault_gate = self.vault_gate_for(&rec.connector);
                    let body = json!({"capture": capture});
                    self.apply_won(
                        Move::new(rec, version, Step::Captured, actor)
                            .note("captured")
                            .body(body),
                    )
                    .await?
                }
                Err(e) => {
                    return self
                        .after_error(rec, version, actor, connector.as_ref(), &raw, "capture", e)
                        .await
                }
            }
        } else {
            (rec, version)
        };
        crash_point!(crash_points::AFTER_CAPTURE);
        // The freeze was read before this write was claimed, not since: one
        // acknowledged while it was being captured (by a lead, or by the
        // gate itself after another write's failed fsync) stops it here,
        // before it runs. It waits, captured, until a lead resumes.
        if let Some(why) = self.frozen_why().await {
            return self.wait(rec, version, actor, why).await;
        }
        self.confirm_claim(&rec.id).await?;
        let capture = rec.capture.clone().unwrap_or(Value::Null);
        match connector.execute(&rec.id, &raw, &capture).await {
            Ok(outcome) => {
                crash_point!(crash_points::AFTER_EXECUTE);
                self.forget_retries(&rec.id);
                let mut rec = rec;
                // A connector may echo a value without its name (a row of
                // values): what the proposal named a secret goes too.
                rec.outcome = Some(self.masked_knowing(&outcome, &raw));
                let body = json!({"outcome": rec.outcome});
                Ok(self
                    .apply_won(Move::new(rec, version, Step::Executed, actor).body(body))
                    .await?
                    .0)
            }
            Err(e) => {
                self.after_error(rec, version, actor, connector.as_ref(), &raw, "write", e)
                    .await
            }
        }
    }

    /// Why a write that has not run must not run now: the gate is frozen,
    /// or whether it is cannot be read (fail closed). `None`: it may run.
    /// A freeze stops every write, one waiting for a retry too, until a
    /// lead resumes.
    pub(crate) async fn frozen_why(&self) -> Option<String> {
        match self.freeze_state().await {
            Ok(freeze) if !freeze.frozen => None,
            Ok(freeze) => Some(format!(
                "the gate is frozen by `{}`: it runs when an incident lead resumes the gate",
                freeze.by.unwrap_or_default()
            )),
            Err(e) => Some(format!(
                "whether the gate is frozen cannot be read ({e}); it does not run until it can"
            )),
        }
    }

    /// The raw proposal of a write about to run, if it is the one
    /// submitted: opened from its seal and checked by
    /// [`Gate::submission_mismatch`]. `Err(why)` when the seal does not
    /// open or the check fails: the write must not run.
    pub(crate) async fn submitted_proposal(
        &self,
        rec: &WriteRecord,
    ) -> Result<Result<Proposal, Unopened>, GateError> {
        let raw = match self.raw_proposal(rec) {
            Ok(raw) => raw,
            Err(e @ SealError::OtherKey { .. }) => {
                return Ok(Err(Unopened::OtherKey(e.to_string())))
            }
            Err(e) => return Ok(Err(Unopened::Mismatch(e.to_string()))),
        };
        Ok(match self.submission_mismatch(rec, &raw).await? {
            Some(why) => Err(Unopened::Mismatch(why)),
            None => Ok(raw),
        })
    }

    /// A write whose proposal did not open: refused when it is not the one
    /// submitted, waiting when only another gate's key opens it (nothing
    /// says it was tampered with; the operator starts a gate with that key).
    pub(crate) async fn not_opened(
        &self,
        rec: WriteRecord,
        version: i64,
        actor: &str,
        why: Unopened,
    ) -> Result<WriteRecord, GateError> {
        match why {
            Unopened::Mismatch(why) => self.refuse_mismatch(rec, version, why).await,
            Unopened::OtherKey(why) => self.wait(rec, version, actor, why).await,
        }
    }

    /// Before a write runs: is the stored write the one submitted? Its
    /// `write.submitted` entry (sealed in the hash chain when the write was
    /// stored) carries the proposal hash; the raw proposal (opened from its
    /// seal: the stored `proposal` is masked) is hashed again the same way
    /// and compared, and so is the record's own `proposal_hash`.
    /// `Some(why)` when they differ, or the entry is missing or was edited
    /// in place. (An entry re-sealed with the whole chain after it is
    /// caught only against a signed head: see [`crate::checkpoint`].)
    pub(crate) async fn submission_mismatch(
        &self,
        rec: &WriteRecord,
        raw: &Proposal,
    ) -> Result<Option<String>, GateError> {
        let Some(entry) = self
            .store
            .audit_entry_for(&rec.id, "write.submitted")
            .await?
        else {
            return Ok(Some(
                "the audit trail has no submission entry for it".into(),
            ));
        };
        let sealed = entry_hash(
            entry.seq,
            entry.at,
            &entry.actor,
            &entry.action,
            entry.write_id.as_deref(),
            &entry.body,
            &entry.prev_hash,
        );
        if sealed != entry.hash {
            return Ok(Some(format!(
                "its submission entry (audit entry {}) was changed after it was written",
                entry.seq
            )));
        }
        let Some(submitted) = entry.body.get("proposal_hash").and_then(Value::as_str) else {
            return Ok(Some(format!(
                "its submission entry (audit entry {}) names no proposal hash",
                entry.seq
            )));
        };
        // The proposal reviewers see is the masked form the submission
        // entry shows: an edit of it (a benign-looking write over the one
        // that runs) is a mismatch too. (A write stored before proposals
        // were sealed runs its stored proposal, checked by hash below.)
        if rec.sealed_proposal.is_some()
            && entry.body.get("proposal")
                != serde_json::to_value(&rec.proposal)
                    .ok()
                    .map(|p| self.redacted(&p))
                    .as_ref()
        {
            return Ok(Some(format!(
                "the stored proposal is not the one its submission entry shows (audit entry {})",
                entry.seq
            )));
        }
        let stored = sha256_json(raw);
        if stored != submitted {
            return Ok(Some(format!(
                "the stored proposal hashes to {stored}, not to {submitted} as submitted (audit entry {})",
                entry.seq
            )));
        }
        if rec.proposal_hash != submitted {
            return Ok(Some(format!(
                "the stored proposal hash {} is not {submitted} as submitted (audit entry {})",
                rec.proposal_hash, entry.seq
            )));
        }
        Ok(None)
    }

    /// The stored write is not the one submitted: it does not run, and the
    /// trail says why.
    pub(crate) async fn refuse_mismatch(
        &self,
        rec: WriteRecord,
        version: i64,
        why: String,
    ) -> Result<WriteRecord, GateError> {
        let why = self.masked_text(&why);
        tracing::error!(write = %rec.id, problem = %why, "the stored write does not match its submission; refused");
        self.forget_retries(&rec.id);
        let stored = self
            .raw_proposal(&rec)
            .map(|raw| sha256_json(&raw))
            .unwrap_or_else(|_| "the sealed proposal does not open".into());
        let body = json!({"problem": why, "stored_proposal_hash": stored,
                          "record_proposal_hash": rec.proposal_hash});
        let note = format!("nothing ran: the stored write does not match its submission: {why}");
        Ok(self
            .apply_won(
                Move::new(rec, version, Step::Mismatch, "gate")
                    .note(note)
                    .body(body),
            )
            .await?
            .0)
    }

    /// A capture or a write failed. Errors are classified in one place
    /// ([`classify`]): a transient one leaves the write waiting for a retry;
    /// a failed fsync stops the gate; anything else is settled from the
    /// connector's own evidence of whether the write took effect.
    #[expect(clippy::too_many_arguments, reason = "a failed step is all of these")]
    async fn after_error(
        &self,
        rec: WriteRecord,
        version: i64,
        actor: &str,
        connector: &dyn Connector,
        raw: &Proposal,
        what: &str,
        e: ConnectorError,
    ) -> Result<WriteRecord, GateError> {
        match classify(&e) {
            ErrorClass::Transient => {
                let why =
                    format!("the {what} could not reach its target ({e}); retried with backoff");
                self.wait(rec, version, actor, why).await
            }
            ErrorClass::Durability => {
                self.stop_for_durability(&rec.id, &e).await;
                let note = format!("the {what} could not be made durable ({e}): whether it took effect is unknown; the gate froze itself");
                Ok(self
                    .apply_won(Move::new(rec, version, Step::Unknown, actor).note(note))
                    .await?
                    .0)
            }
            ErrorClass::Uncertain | ErrorClass::Permanent => {
                let capture = rec.capture.clone().unwrap_or(Value::Null);
                let (step, note) = match connector.applied(&rec.id, raw, &capture).await {
                    Ok(Some(false)) => (Step::NothingRan, format!("the {what} failed and nothing ran: {e}")),
                    Ok(Some(true)) => (
                        Step::Executed,
                        format!("the {what} reported an error ({e}), but the target shows it took effect"),
                    ),
                    Ok(None) | Err(_) => (
                        Step::Unknown,
                        format!("the {what} failed ({e}) and whether it took effect cannot be told: a person must check"),
                    ),
                };
                self.forget_retries(&rec.id);
                Ok(self
                    .apply_won(Move::new(rec, version, step, actor).note(note))
                    .await?
                    .0)
            }
        }
    }

    pub(crate) fn missing_connector(&self, name: &str) -> String {
        format!(
            "this gate has no `{name}` connector (it has: {}); the write waits for a gate that has it",
            self.connector_names().join(", ")
        )
    }

    /// Records once why an in-flight write is not moving, and schedules a
    /// retry with backoff. The write keeps its status.
    pub(crate) async fn wait(
        &self,
        rec: WriteRecord,
        version: i64,
        actor: &str,
        why: String,
    ) -> Result<WriteRecord, GateError> {
        self.schedule_retry(&rec.id);
        if rec.waiting.as_deref() == Some(why.as_str()) {
            return Ok(rec);
        }
        let mut rec = rec;
        rec.waiting = Some(why.clone());
        Ok(self
            .apply_won(Move::new(rec, version, Step::Wait, actor).note(why))
            .await?
            .0)
    }

    /// After a failed fsync the page cache may have dropped what it said it
    /// kept: the gate never retries, it freezes itself (audited) so nothing
    /// runs until an incident lead has looked.
    pub(crate) async fn stop_for_durability(&self, id: &str, e: &ConnectorError) {
        let state = FreezeState {
            frozen: true,
            by: Some("gate".into()),
            at: Some(self.now()),
            reason: Some(format!(
                "write `{id}`: {e}; nothing runs until an incident lead has checked the disk and resumes"
            )),
        };
        let body = serde_json::to_value(&state).unwrap_or_default();
        let draft = AuditDraft::new("gate", "gate.frozen", Some(id), body);
        if let Err(err) = self.store.set_freeze(&state, draft).await {
            tracing::error!(error = %err, "could not record the freeze after a failed fsync");
        }
        self.emit("gate.frozen", None);
    }

    fn schedule_retry(&self, id: &str) {
        if let Ok(mut a) = self.attempts.lock() {
            *a.entry(id.to_string()).or_insert(0) += 1;
        }
    }

    pub(crate) fn forget_retries(&self, id: &str) {
        if let Ok(mut a) = self.attempts.lock() {
            a.remove(id);
        }
    }

    /// When a waiting write may be tried again: 1 s, 2 s, 4 s, ... up to
    /// `max_backoff`. `None` when it is not waiting.
    fn pending_retry(&self, id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        let n = *self.attempts.lock().ok()?.get(id)?;
        let secs = 1i64
            .checked_shl(n.saturating_sub(1).min(30))
            .unwrap_or(i64::MAX)
            .min(self.config.max_backoff.num_seconds().max(1));
        Some(self.now() + chrono::Duration::seconds(secs))
    }
}
