//! Enforce or observe: how the gate treats a write its decision holds. One
//! mode for every gate on a store (kept in the store's `state`, read when a
//! write is submitted); only an admin switches it, and every switch is an
//! audit entry (`gate.mode`). What each mode does to a new write is the
//! machine's [`super::machine::INITIAL`] table; this module only keeps the
//! switch.

use recourse_client::{GateMode, ModeRequest, ModeState, Permission};
use serde_json::json;

use super::Gate;
use crate::audit::AuditDraft;
use crate::auth::Caller;
use crate::error::GateError;

/// The reason recorded when `recourse serve --mode` sets the mode.
pub const AT_START: &str = "set by `recourse serve --mode` at start";

impl Gate {
    /// The mode as stored.
    pub async fn mode(&self) -> Result<ModeState, GateError> {
        Ok(self.store.mode().await?)
    }

    /// An admin switches the mode (audited, even when it does not change:
    /// the trail keeps who confirmed it and why).
    pub async fn set_mode(
        &self,
        caller: &Caller,
        req: ModeRequest,
    ) -> Result<ModeState, GateError> {
        caller.allow(Permission::SwitchMode)?;
        if req.reason.trim().is_empty() {
            return Err(GateError::invalid(
                "reason",
                "must not be empty: say why the mode changes",
            ));
        }
        self.switch_mode(&caller.name, req.mode, &req.reason).await
    }

    /// `recourse serve --mode MODE`: the flag given is written to the store
    /// (audited, actor `gate`) when the store holds another mode, or one
    /// that does not decode; `None` when it held this one already.
    pub async fn set_mode_at_start(&self, mode: GateMode) -> Result<Option<ModeState>, GateError> {
        if let Ok(current) = self.store.mode().await {
            if current.mode == mode {
                return Ok(None);
            }
        }
        self.switch_mode("gate", mode, AT_START).await.map(Some)
    }

    async fn switch_mode(
        &self,
        actor: &str,
        mode: GateMode,
        reason: &str,
    ) -> Result<ModeState, GateError> {
        // What it was, for the trail; a stored mode that does not decode
        // is replaced and named as such.
        let from = match self.store.mode().await {
            Ok(m) => json!(m.mode),
            Err(_) => json!("undecodable"),
        };
        let reason = self.masked_text(reason);
        let state = ModeState {
            mode,
            by: Some(actor.to_string()),
            at: Some(self.now()),
            reason: Some(reason.clone()),
        };
        let body = json!({"mode": mode, "from": from, "reason": reason});
        self.store
            .set_mode(&state, AuditDraft::new(actor, "gate.mode", None, body))
            .await?;
        tracing::warn!(mode = mode.as_str(), by = actor, "gate mode switched");
        self.emit("gate.mode", None);
        Ok(state)
    }

    /// The mode a new write whose decision holds it is started in. Fails
    /// closed: a mode that cannot be read is `enforce` (the write waits
    /// for a person).
    pub(crate) async fn submission_mode(&self) -> GateMode {
        match self.store.mode().await {
            Ok(m) => m.mode,
            Err(e) => {
                tracing::error!(error = %e, "reading the gate's mode; enforcing");
                GateMode::Enforce
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use recourse_client::{GateMode, ModeRequest, Role, WriteStatus};
    use recourse_core::{Catalog, ReasonCode, Verdict};
    use serde_json::json;

    use crate::error::GateError;
    use crate::store::{AuditStore, CatalogStore};
    use crate::testing::{resource, who, world, World};

    async fn customer_borne(w: &World) {
        let add = Catalog {
            resources: vec![resource("fake:cust", "customer")],
            edges: Vec::new(),
        };
        w.store.upsert_catalog(&add, true, None).await.unwrap();
    }

    fn observe() -> ModeRequest {
        ModeRequest {
            mode: GateMode::Observe,
            reason: "adopting the gate".into(),
        }
    }

    async fn submit(w: &World, target: &str) -> recourse_client::WriteRecord {
        let body = json!({"intent": "test", "action": {"connector": "fake", "target": target}});
        w.gate
            .submit(&who("bot", Role::Agent), body)
            .await
            .unwrap()
            .0
    }

    #[tokio::test]
    async fn observe_mode_runs_a_hold_marks_it_and_it_rolls_back() {
        let w = world();
        customer_borne(&w).await;
        // Enforced: held.
        assert_eq!(submit(&w, "cust").await.status, WriteStatus::Held);

        let admin = who("root", Role::Admin);
        let state = w.gate.set_mode(&admin, observe()).await.unwrap();
        assert_eq!(state.mode, GateMode::Observe);
        assert_eq!(state.by.as_deref(), Some("root"));
        let ran = submit(&w, "cust").await;
        assert_eq!(ran.status, WriteStatus::Executed, "{:?}", ran.history);
        // Decided exactly as usual: the verdict and reasons are a hold's.
        assert_eq!(ran.decision.decision, Verdict::Hold);
        let observed = ran.observed_hold.clone().expect("marked");
        assert_eq!(observed.reason_codes, vec![ReasonCode::ThirdPartyBearer]);
        assert!(ran.expires_at.is_none());
        assert!(ran.capture.is_some(), "captured before it ran");
        assert!(ran.summary().observed_hold);
        assert!(ran.history[0]
            .note
            .as_deref()
            .is_some_and(|n| n.starts_with("observe mode: enforcement would have held it")));
        let submitted = w
            .store
            .audit_entry_for(&ran.id, "write.submitted")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            submitted.body["observed_hold"]["reason_codes"],
            json!(["third_party_bearer"])
        );

        // Rolled back like any other.
        let back = w
            .gate
            .rollback(
                &who("lead", Role::IncidentLead),
                &ran.id,
                "test".into(),
                false,
            )
            .await
            .unwrap();
        assert_eq!(back.status, WriteStatus::RolledBack);

        // A proceed is not marked.
        let plain = submit(&w, "plain").await;
        assert_eq!(plain.status, WriteStatus::Executed);
        assert!(plain.observed_hold.is_none());
    }

    #[tokio::test]
    async fn observe_mode_still_refuses_and_a_freeze_still_holds() {
        let w = world();
        customer_borne(&w).await;
        w.gate
            .set_mode(&who("root", Role::Admin), observe())
            .await
            .unwrap();
        let body = json!({"intent": "x", "action": {"connector": "nope", "target": "cust"}});
        let refused = w
            .gate
            .submit(&who("bot", Role::Agent), body)
            .await
            .unwrap()
            .0;
        assert_eq!(refused.status, WriteStatus::Refused);
        assert!(refused.observed_hold.is_none());

        w.gate
            .set_freeze(
                &who("lead", Role::IncidentLead),
                true,
                Some("incident".into()),
            )
            .await
            .unwrap();
        for target in ["cust", "plain"] {
            let held = submit(&w, target).await;
            assert_eq!(held.status, WriteStatus::Held, "{target}");
            assert!(held.observed_hold.is_none());
        }
        assert_eq!(
            w.fake.executions.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
    }

    #[tokio::test]
    async fn only_an_admin_switches_and_every_switch_is_audited() {
        let w = world();
        for role in [
            Role::Agent,
            Role::Reviewer,
            Role::RiskOfficer,
            Role::IncidentLead,
        ] {
            let e = w
                .gate
                .set_mode(&who("x", role), observe())
                .await
                .unwrap_err();
            assert!(matches!(e, GateError::Forbidden(_)), "{role:?}: {e:?}");
        }
        let e = w
            .gate
            .set_mode(
                &who("root", Role::Admin),
                ModeRequest {
                    mode: GateMode::Observe,
                    reason: " ".into(),
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, GateError::Invalid { .. }), "{e:?}");
        assert_eq!(w.gate.mode().await.unwrap().mode, GateMode::Enforce);
        assert!(w.store.audit(0, 100).await.unwrap().is_empty());

        w.gate
            .set_mode(&who("root", Role::Admin), observe())
            .await
            .unwrap();
        let trail = w.store.audit(0, 100).await.unwrap();
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].action, "gate.mode");
        assert_eq!(trail[0].actor, "root");
        assert_eq!(trail[0].body["mode"], "observe");
        assert_eq!(trail[0].body["from"], "enforce");
        assert_eq!(trail[0].body["reason"], "adopting the gate");
    }

    #[tokio::test]
    async fn the_flag_at_start_writes_the_mode_only_when_it_changes_it() {
        let w = world();
        assert!(w
            .gate
            .set_mode_at_start(GateMode::Enforce)
            .await
            .unwrap()
            .is_none());
        assert!(w.store.audit(0, 100).await.unwrap().is_empty());
        let set = w
            .gate
            .set_mode_at_start(GateMode::Observe)
            .await
            .unwrap()
            .expect("changed");
        assert_eq!(set.by.as_deref(), Some("gate"));
        assert_eq!(set.reason.as_deref(), Some(super::AT_START));
        assert!(w
            .gate
            .set_mode_at_start(GateMode::Observe)
            .await
            .unwrap()
            .is_none());
        let trail = w.store.audit(0, 100).await.unwrap();
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].actor, "gate");
    }
}
