//! What a token may put through the gate beyond its role: its scope (what
//! its writes may reach, `crate::scope`) and its quota (the stored bytes of
//! its writes still pending). Both are checked at submission, before
//! anything runs or is captured.

use recourse_client::{WriteRecord, WriteStatus};
use recourse_core::Proposal;
use serde_json::json;

use super::Gate;
use crate::audit::AuditDraft;
use crate::auth::Caller;
use crate::error::GateError;
use crate::store::{stored_bytes, Inserted, StoreError, WriteFilter};

impl Gate {
    /// Refuses a planned proposal that reaches outside its caller's scope:
    /// a 403 `out_of_scope` naming what is outside and what the token may
    /// reach, and an audit entry `write.out_of_scope` with the proposal
    /// (redacted, and bounded as a refused proposal is stored). Nothing is
    /// stored as a write, captured or run.
    pub(super) async fn admit_scope(
        &self,
        caller: &Caller,
        id: &str,
        connector: &str,
        proposal: &Proposal,
    ) -> Result<(), GateError> {
        let Some(scope) = &caller.scope else {
            return Ok(());
        };
        let Err(outside) = crate::scope::check(scope, connector, proposal) else {
            return Ok(());
        };
        let kept = crate::limits::bound_refused(proposal.clone());
        let draft = AuditDraft::new(
            &caller.name,
            "write.out_of_scope",
            Some(id),
            json!({"connector": connector, "outside": outside.0, "scope": scope,
                   "proposal": self.redacted(&serde_json::to_value(&kept).unwrap_or_default())}),
        );
        self.store.append_audit(draft).await?;
        Err(out_of_scope(caller, scope, &outside.0))
    }

    /// The same question for an explanation, which stores nothing: what a
    /// token may not write it may not have the gate reason about either
    /// (the answer would map the catalog beyond its reach).
    pub(super) fn explain_scope(
        &self,
        caller: &Caller,
        connector: &str,
        proposal: &Proposal,
    ) -> Result<(), GateError> {
        let Some(scope) = &caller.scope else {
            return Ok(());
        };
        match crate::scope::check(scope, connector, proposal) {
            Ok(()) => Ok(()),
            Err(outside) => Err(out_of_scope(caller, scope, &outside.0)),
        }
    }

    /// Stores a new write under its agent's quota (`GateConfig::quota_bytes`,
    /// 0 for none): a write that alone is larger than the quota is a 413
    /// (waiting would never help); one that would take the agent's pending
    /// bytes above it is a 429 whose `Retry-After` is when the oldest held
    /// write expires (or the next sweep, when only approved or running
    /// writes are pending: they settle on their own).
    pub(super) async fn insert_pending(
        &self,
        record: &WriteRecord,
        draft: AuditDraft,
    ) -> Result<Inserted, GateError> {
        let quota = self.config.quota_bytes;
        if quota == 0 {
            return Ok(self.store.insert_write(record, draft).await?);
        }
        let size = stored_bytes(record)?;
        if size > quota {
            return Err(GateError::TooLarge(format!(
                "this write is {size} bytes as stored, more than the {quota} bytes of pending writes a token may have: it can never be accepted"
            )));
        }
        match self.store.insert_write_within(record, draft, quota).await {
            Ok(inserted) => Ok(inserted),
            Err(StoreError::OverQuota { pending_bytes }) => {
                let retry_after_s = self.quota_frees_in(&record.agent).await?;
                Err(GateError::OverQuota {
                    message: format!(
                        "the token `{}` has {pending_bytes} bytes of pending writes (held, approved or running) and this one is {size} bytes: the quota is {quota}; room frees as they are decided, run or expire",
                        record.agent
                    ),
                    retry_after_s,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Seconds until room may free for `agent`: its oldest held write
    /// expires then (a held write's expiry is its creation plus the hold
    /// time), or the sweep runs.
    async fn quota_frees_in(&self, agent: &str) -> Result<u64, GateError> {
        let sweep = self.config.sweep_every.as_secs().max(1);
        let held = self
            .store
            .summaries(&WriteFilter {
                status: Some(WriteStatus::Held),
                agent: Some(agent.to_string()),
                limit: None,
            })
            .await?;
        // Newest first: the last is the oldest.
        let Some(oldest) = held.last() else {
            return Ok(sweep);
        };
        let left = (oldest.created_at + self.config.hold_ttl - self.now()).num_seconds();
        Ok(u64::try_from(left).unwrap_or(0).saturating_add(sweep))
    }
}

fn out_of_scope(caller: &Caller, scope: &recourse_client::TokenScope, outside: &str) -> GateError {
    GateError::OutOfScope(format!(
        "the token `{}` may not reach {outside}: it may reach {}",
        caller.name,
        crate::scope::describe(scope)
    ))
}
