//! Section 10 in the lifecycle: a write is stored, audited, logged and
//! returned in its masked form only (`recourse-secrets` knows what a secret
//! looks like); the raw proposal a connector needs is sealed
//! ([`super::seal`]) and opened only to plan, capture, run, settle or roll
//! back, and to check the submission hash.
//!
//! What survives, and why: the sealed proposal is kept while a connector
//! may still be called with it. That is until the write ran and can no
//! longer be rolled back: a rollback needs it too (the `fs` connector's
//! restore reads the action again, and an `http` compensation declared in
//! `proposal.rollback` may carry the credentials its request needs). It
//! is cleared, in the compare-and-set of the move itself, when the write is
//! rejected, expires, fails (nothing ran) or is rolled back; a refused write
//! is never sealed.

use recourse_client::{WriteRecord, WriteStatus};
use recourse_core::Proposal;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Gate, SealError};

/// Whether a write in `status` keeps its sealed proposal.
pub(crate) fn keeps_sealed(status: WriteStatus) -> Sealed {
    use WriteStatus as S;
    match status {
        // It may still run, or whether it ran is still to be asked (with
        // the proposal as submitted).
        S::Held | S::Approved | S::Executing | S::OutcomeUnknown => Sealed::Whole,
        // It ran: its action is not needed again (a connector restores from
        // its own capture, given the masked action); a rollback may still
        // send what the proposal's compensating steps declare.
        S::Executed | S::RollingBack | S::RollbackFailed => Sealed::RollbackOnly,
        // Nothing will call a connector for it again.
        S::Rejected | S::Expired | S::Refused | S::Failed | S::RolledBack => Sealed::Nothing,
    }
}

/// How much of the raw proposal a write in some status keeps sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sealed {
    Whole,
    /// The masked action with the raw rollback steps; nothing at all when
    /// those steps carry no secret.
    RollbackOnly,
    Nothing,
}

impl Gate {
    /// A typed value with its secrets masked. Masking by key can change a
    /// value's type (a number under `password` becomes a string), so when
    /// the masked form no longer decodes, only its strings are masked.
    pub(crate) fn masked<T: Serialize + DeserializeOwned + Clone>(&self, t: &T) -> T {
        let Ok(v) = serde_json::to_value(t) else {
            return t.clone();
        };
        serde_json::from_value(self.masker.value(&v))
            .or_else(|_| serde_json::from_value(self.masker.strings(&v)))
            .unwrap_or_else(|_| t.clone())
    }

    /// A connector's answer (a capture, an outcome) masked, and every value
    /// the raw proposal names a secret masked in it wherever it shows.
    pub(crate) fn masked_knowing(
        &self,
        v: &serde_json::Value,
        raw: &Proposal,
    ) -> serde_json::Value {
        let known = serde_json::to_value(raw)
            .map(|p| self.masker.named_secrets(&p))
            .unwrap_or_default();
        self.masker.value_knowing(v, &known)
    }

    /// The proposal as the store, the trail and the API keep it. The agent
    /// and the idempotency key stay as they are: writes are found by them.
    pub(crate) fn masked_proposal(&self, p: &Proposal) -> Proposal {
        let mut out = self.masked(p);
        out.agent.clone_from(&p.agent);
        out.idempotency_key.clone_from(&p.idempotency_key);
        out
    }

    /// Masks what a move may have added to a record: everything but the
    /// proposal, which is masked once, when the write is stored
    /// ([`Gate::seal_into`]), and never changes after (the submission check
    /// compares it with the one its `write.submitted` entry shows; and a
    /// write stored before proposals were sealed keeps its own, which is
    /// what it runs). Idempotent.
    pub(crate) fn mask_record(&self, rec: &mut WriteRecord) {
        rec.decision = self.masked(&rec.decision);
        rec.capture = rec.capture.as_ref().map(|c| self.redacted(c));
        rec.outcome = rec.outcome.as_ref().map(|o| self.redacted(o));
        rec.rollback = rec.rollback.as_ref().map(|r| self.masked(r));
        rec.waiting = rec.waiting.as_deref().map(|w| self.masked_text(w));
        for t in &mut rec.history {
            t.note = t.note.as_deref().map(|n| self.masked_text(n));
        }
        for a in &mut rec.approvals {
            a.comment = a.comment.as_deref().map(|c| self.masked_text(c));
        }
    }

    /// Seals `raw` into the new record `rec` (whose `proposal` is still
    /// raw), then masks the record. `seal` false: a write nothing will run
    /// (refused) is only masked.
    pub(crate) fn seal_into(
        &self,
        rec: &mut WriteRecord,
        raw: &Proposal,
        seal: bool,
    ) -> Result<(), SealError> {
        if seal {
            rec.sealed_proposal = Some(self.config.action_key.seal(&rec.id, raw)?);
        }
        rec.proposal = self.masked_proposal(raw);
        self.mask_record(rec);
        Ok(())
    }

    /// What `rec` (in its new status) keeps sealed, in the compare-and-set
    /// that moves it. Once a write has run, its raw action (file contents,
    /// the request's credentials, the intent's) goes: what stays is the
    /// masked proposal with its compensating steps as submitted, and only
    /// when those hold something masking would change. A seal this gate cannot open (another
    /// key) is kept as it is: it is not this gate's to drop.
    pub(crate) fn reseal(&self, rec: &mut WriteRecord) {
        match keeps_sealed(rec.status) {
            Sealed::Whole => {}
            Sealed::Nothing => rec.sealed_proposal = None,
            Sealed::RollbackOnly => {
                let Some(sealed) = &rec.sealed_proposal else {
                    return;
                };
                let Ok(raw) = self.config.action_key.open(&rec.id, sealed) else {
                    return;
                };
                let masked = self.masked_proposal(&raw);
                if masked.rollback == raw.rollback {
                    // Nothing in the steps needs sealing: the masked
                    // proposal the record holds is all a rollback gets.
                    rec.sealed_proposal = None;
                    return;
                }
                let kept = Proposal {
                    rollback: raw.rollback.clone(),
                    ..masked
                };
                if kept == raw {
                    return; // Already the reduced form.
                }
                // Never keep more than allowed: should sealing fail, the
                // rollback gets the masked steps.
                rec.sealed_proposal = self.config.action_key.seal(&rec.id, &kept).ok();
            }
        }
    }

    /// A record as a caller sees it: masked (a write stored before
    /// masking covered the proposal included), without its sealed proposal.
    pub(crate) fn shown(&self, rec: WriteRecord) -> WriteRecord {
        let mut rec = rec.without_sealed();
        rec.proposal = self.masked_proposal(&rec.proposal);
        self.mask_record(&mut rec);
        rec
    }

    /// The proposal as submitted, for a connector or the submission check:
    /// the sealed one, or for a record stored before proposals were sealed
    /// the stored one. An error when the sealed one does not open (tampered
    /// with, moved from another write, or another key).
    pub(crate) fn raw_proposal(&self, rec: &WriteRecord) -> Result<Proposal, SealError> {
        match &rec.sealed_proposal {
            Some(sealed) => self.config.action_key.open(&rec.id, sealed),
            None => Ok(rec.proposal.clone()),
        }
    }
}

/// What leaves the gate: records without their sealed proposal.
impl Gate {
    /// See [`Gate::submit_record`]; the record as a caller may see it.
    pub async fn submit(
        &self,
        caller: &crate::auth::Caller,
        body: serde_json::Value,
    ) -> Result<(WriteRecord, bool), crate::error::GateError> {
        let (rec, created) = self.submit_record(caller, body).await?;
        Ok((self.shown(rec), created))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use recourse_client::{Role, WriteStatus};
    use recourse_core::Catalog;
    use serde_json::{json, Value};

    use crate::store::{AuditStore, CatalogStore, WriteStore};
    use crate::testing::{resource, who, world, World};

    const SECRET: &str = "s3cr3t-abc123XYZ";
    const PASSWORD: &str = "pw-98765-hunter";

    fn body(target: &str, key: Option<&str>) -> Value {
        json!({"intent": format!("post with password: {PASSWORD}"), "idempotency_key": key,
               "action": {"connector": "fake", "target": target,
                          "headers": {"Authorization": format!("Bearer {SECRET}")},
                          "url": format!("https://api.test/x?api_key={SECRET}"),
                          "password": PASSWORD}})
    }

    impl World {
        async fn held(&self, target: &str) -> String {
            self.store
                .upsert_catalog(
                    &Catalog {
                        resources: vec![resource(&format!("fake:{target}"), "customer")],
                        edges: Vec::new(),
                    },
                    true,
                    None,
                )
                .await
                .unwrap();
            let (rec, _) = self
                .gate
                .submit(&who("bot", Role::Agent), body(target, None))
                .await
                .unwrap();
            assert_eq!(rec.status, WriteStatus::Held);
            rec.id
        }

        /// Everything the store and its trail hold, as text.
        async fn everything(&self) -> String {
            let writes = self.store.writes(&Default::default()).await.unwrap();
            let audit = self.store.audit(0, 100_000).await.unwrap();
            format!(
                "{}\n{}",
                serde_json::to_string(&writes).unwrap(),
                serde_json::to_string(&audit).unwrap()
            )
        }

        async fn sealed(&self, id: &str) -> bool {
            let (rec, _) = self.store.write(id).await.unwrap().unwrap();
            rec.sealed_proposal.is_some()
        }
    }

    fn in_clear(text: &str) -> bool {
        text.contains(SECRET) || text.contains(PASSWORD)
    }

    #[tokio::test]
    async fn the_connector_gets_the_raw_proposal_everything_else_the_masked_one() {
        let w = world();
        let (rec, _) = w
            .gate
            .submit(&who("bot", Role::Agent), body("a", Some("k1")))
            .await
            .unwrap();
        assert_eq!(rec.status, WriteStatus::Executed);
        let seen = serde_json::to_string(&*w.fake.proposals.lock().unwrap()).unwrap();
        assert!(seen.contains(SECRET) && seen.contains(PASSWORD), "{seen}");
        let returned = serde_json::to_string(&rec).unwrap();
        assert!(!in_clear(&returned), "{returned}");
        assert!(rec.sealed_proposal.is_none(), "never returned");
        assert_eq!(
            rec.proposal.action["headers"]["Authorization"],
            "[redacted]"
        );
        assert_eq!(
            rec.proposal.action["url"],
            "https://api.test/x?api_key=[redacted]"
        );
        assert!(!in_clear(&w.everything().await));
        let shown = w.gate.get(&who("bot", Role::Agent), &rec.id).await.unwrap();
        assert!(!in_clear(&serde_json::to_string(&shown).unwrap()));
        // It ran: its raw action goes (nothing in its rollback steps needs
        // sealing here), and a rollback restores from the capture with the
        // masked action.
        assert!(!w.sealed(&rec.id).await);
        let back = w
            .gate
            .rollback(
                &who("lead", Role::IncidentLead),
                &rec.id,
                "test".into(),
                false,
            )
            .await
            .unwrap();
        assert_eq!(back.status, WriteStatus::RolledBack);
        let last = w.fake.proposals.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.action["password"], "[redacted]");
        assert!(!w.sealed(&rec.id).await);

        // The same key and body: the first write, the comparison on the
        // raw submission; another body with the key: a conflict.
        let (again, created) = w
            .gate
            .submit(&who("bot", Role::Agent), body("a", Some("k1")))
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again.id, rec.id);
        let mut other = body("a", Some("k1"));
        other["action"]["password"] = json!("another-one");
        assert!(w
            .gate
            .submit(&who("bot", Role::Agent), other)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn rejected_expired_and_refused_writes_keep_no_sealed_proposal() {
        let w = world();
        let rejected = w.held("r").await;
        assert!(w.sealed(&rejected).await, "a held write keeps it, sealed");
        assert!(!in_clear(&w.everything().await), "not in clear while held");
        w.gate
            .reject(
                &who("rev1", Role::Reviewer),
                &rejected,
                format!("no: password={PASSWORD}"),
            )
            .await
            .unwrap();
        assert!(!w.sealed(&rejected).await);

        let expired = w.held("e").await;
        w.clock.advance(Duration::days(8));
        assert_eq!(w.gate.expire_due().await.unwrap(), 1);
        assert!(!w.sealed(&expired).await);

        let mut refused = body("x", None);
        refused["action"]["connector"] = json!("nothing");
        let (rec, _) = w
            .gate
            .submit(&who("bot", Role::Agent), refused)
            .await
            .unwrap();
        assert_eq!(rec.status, WriteStatus::Refused);
        assert!(!w.sealed(&rec.id).await);
        assert!(!in_clear(&w.everything().await));
    }

    #[tokio::test]
    async fn once_run_only_the_compensating_steps_stay_sealed() {
        let w = world();
        w.store
            .upsert_catalog(
                &Catalog {
                    resources: vec![resource("fake:c", "customer")],
                    edges: Vec::new(),
                },
                true,
                None,
            )
            .await
            .unwrap();
        let mut b = body("c", None);
        b["rollback"] = json!({"steps": [{"restores": ["fake:c"],
            "op": {"connector": "fake", "op": "undo", "token": SECRET}}]});
        let (rec, _) = w.gate.submit(&who("bot", Role::Agent), b).await.unwrap();
        assert_eq!(rec.status, WriteStatus::Held, "{:?}", rec.history);
        let rec = w
            .gate
            .approve(
                &who("rev1", Role::Reviewer),
                &rec.id,
                Some("checked".into()),
            )
            .await
            .unwrap();
        assert_eq!(rec.status, WriteStatus::Executed, "{:?}", rec.history);
        let (stored, _) = w.store.write(&rec.id).await.unwrap().unwrap();
        assert!(
            stored.sealed_proposal.is_some(),
            "the step's token is needed to roll back"
        );
        let kept = w.gate.raw_proposal(&stored).unwrap();
        assert_eq!(kept.action["password"], "[redacted]", "the raw action went");
        assert!(!kept.intent.contains(PASSWORD), "{}", kept.intent);
        assert_eq!(kept.action["headers"]["Authorization"], "[redacted]");
        assert_eq!(kept.rollback.steps[0].op["token"], SECRET);
        assert!(!in_clear(&w.everything().await));
        w.gate
            .rollback(
                &who("lead", Role::IncidentLead),
                &rec.id,
                "test".into(),
                false,
            )
            .await
            .unwrap();
        let last = w.fake.proposals.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.rollback.steps[0].op["token"], SECRET);
        assert!(!w.sealed(&rec.id).await);
    }

    #[tokio::test]
    async fn a_gate_holding_another_action_key_waits_and_names_the_key() {
        let w = world();
        let id = w.held("k").await;
        let other = crate::Gate::with_clock(
            w.store.clone(),
            vec![w.fake.clone()],
            crate::GateConfig {
                action_key: super::super::seal::ActionKey::generate(),
                ..Default::default()
            },
            w.clock.clone(),
        );
        let rec = other
            .approve(&who("rev1", Role::Reviewer), &id, Some("checked".into()))
            .await
            .unwrap();
        assert_eq!(rec.status, WriteStatus::Approved, "{:?}", rec.history);
        let waiting = rec.waiting.clone().unwrap_or_default();
        assert!(
            waiting.contains(&w.gate.config.action_key.key_id()),
            "names the key that sealed it: {waiting}"
        );
        assert_eq!(
            w.fake.executions.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        assert!(w.sealed(&id).await, "not dropped: not this gate's to drop");
        let audit = w.store.audit(0, 100_000).await.unwrap();
        assert!(!audit.iter().any(|e| e.action == "write.mismatch"));
        // A gate with the key runs it.
        w.clock.advance(Duration::hours(1));
        w.gate.sweep().await.unwrap();
        let (rec, _) = w.store.write(&id).await.unwrap().unwrap();
        assert_eq!(rec.status, WriteStatus::Executed, "{:?}", rec.history);
    }

    async fn refused_when(w: &World, id: &str) {
        let rec = w
            .gate
            .approve(&who("rev1", Role::Reviewer), id, Some("reviewed".into()))
            .await
            .unwrap();
        assert_eq!(rec.status, WriteStatus::Failed, "{:?}", rec.history);
        assert_eq!(
            w.fake.executions.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        let audit = w.store.audit(0, 100_000).await.unwrap();
        assert!(audit
            .iter()
            .any(|e| e.action == "write.mismatch" && e.write_id.as_deref() == Some(id)));
    }

    #[tokio::test]
    async fn a_tampered_sealed_proposal_refuses_the_write() {
        let w = world();
        let id = w.held("t").await;
        let (mut rec, _) = w.store.write(&id).await.unwrap().unwrap();
        let mut sealed = rec.sealed_proposal.take().unwrap();
        // The character replaced must change (a random nonce makes it any
        // base64 digit): compare with the one replaced, not the last one.
        let at = sealed.len() - 2;
        let flipped = if &sealed[at..at + 1] == "A" { "B" } else { "A" };
        sealed.replace_range(at..at + 1, flipped);
        rec.sealed_proposal = Some(sealed);
        w.store.put_write_raw(rec);
        refused_when(&w, &id).await;
    }

    #[tokio::test]
    async fn a_sealed_proposal_moved_to_another_write_does_not_open() {
        let w = world();
        let a = w.held("a").await;
        let b = w.held("b").await;
        let (from, _) = w.store.write(&a).await.unwrap().unwrap();
        let (mut to, _) = w.store.write(&b).await.unwrap().unwrap();
        to.sealed_proposal = from.sealed_proposal;
        w.store.put_write_raw(to);
        refused_when(&w, &b).await;
    }

    #[tokio::test]
    async fn an_edit_of_the_masked_proposal_reviewers_see_refuses_the_write() {
        let w = world();
        let id = w.held("m").await;
        let (mut rec, _) = w.store.write(&id).await.unwrap().unwrap();
        rec.proposal.intent = "a harmless clean-up".into();
        w.store.put_write_raw(rec);
        refused_when(&w, &id).await;
    }

    #[tokio::test]
    async fn a_write_stored_before_sealing_runs_its_stored_proposal() {
        let w = world();
        let id = w.held("old").await;
        let (mut rec, _) = w.store.write(&id).await.unwrap().unwrap();
        // As stored before: the raw proposal, nothing sealed.
        rec.proposal = w.gate.raw_proposal(&rec).unwrap();
        rec.sealed_proposal = None;
        w.store.put_write_raw(rec);
        let rec = w
            .gate
            .approve(&who("rev1", Role::Reviewer), &id, Some("reviewed".into()))
            .await
            .unwrap();
        assert_eq!(rec.status, WriteStatus::Executed, "{:?}", rec.history);
        let last = w.fake.proposals.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.action["password"], PASSWORD);
        // Shown masked all the same.
        assert!(!in_clear(&serde_json::to_string(&rec).unwrap()));
    }
}
