//! The kill switch and the undo of many: freeze (nothing runs until an
//! incident lead resumes), and rewind (roll back everything executed since a
//! time, newest first).

use chrono::{DateTime, Utc};
use recourse_client::{
    FreezeState, Permission, RewindItem, RewindReport, RewindRequest, WriteRecord, WriteStatus,
};

use recourse_connector::crash_point;

use super::Gate;
use crate::audit::AuditDraft;
use crate::auth::Caller;
use crate::crash_points;
use crate::error::GateError;
use crate::store::WriteFilter;

impl Gate {
    pub async fn set_freeze(
        &self,
        caller: &Caller,
        frozen: bool,
        reason: Option<String>,
    ) -> Result<FreezeState, GateError> {
        caller.allow(Permission::Freeze)?;
        if frozen && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(GateError::invalid(
                "reason",
                "must not be empty: say why the gate is frozen",
            ));
        }
        let state = FreezeState {
            frozen,
            by: Some(caller.name.clone()),
            at: Some(self.now()),
            reason,
        };
        let action = if frozen {
            "gate.frozen"
        } else {
            "gate.resumed"
        };
        let value = serde_json::to_value(&state).unwrap_or_default();
        self.store
            .set_freeze(&state, AuditDraft::new(&caller.name, action, None, value))
            .await?;
        crash_point!(crash_points::FREEZE_AFTER_RECORD);
        self.emit(action, None);
        Ok(state)
    }

    /// Every write executed since `since` (by one agent, if given), newest
    /// first; rolled back one by one unless `preview`.
    pub async fn rewind(
        &self,
        caller: &Caller,
        req: RewindRequest,
    ) -> Result<RewindReport, GateError> {
        caller.allow(Permission::Freeze)?;
        if !req.preview && req.reason.trim().is_empty() {
            return Err(GateError::invalid("reason", "must not be empty: say why"));
        }
        let filter = WriteFilter {
            status: Some(WriteStatus::Executed),
            agent: req.agent.clone(),
            limit: None,
        };
        let executed_at = |r: &WriteRecord| {
            r.history
                .iter()
                .rev()
                .find(|t| t.to == WriteStatus::Executed && t.from != Some(WriteStatus::RollingBack))
                .map(|t| t.at)
                .unwrap_or(r.updated_at)
        };
        let mut due: Vec<(DateTime<Utc>, WriteRecord)> = self
            .store
            .writes(&filter)
            .await?
            .into_iter()
            .map(|r| (executed_at(&r), r))
            .filter(|(at, _)| *at >= req.since)
            .collect();
        due.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.id.cmp(&a.1.id)));
        let mut items = Vec::new();
        for (_, rec) in due {
            if req.preview {
                items.push(RewindItem::of(&rec, None, None));
                continue;
            }
            match self
                .rollback(caller, &rec.id, req.reason.clone(), req.force)
                .await
            {
                Ok(after) => {
                    let report = after.rollback.clone();
                    items.push(RewindItem::of(&after, report, None))
                }
                Err(e) => items.push(RewindItem::of(&rec, None, Some(e.public_message()))),
            }
            crash_point!(crash_points::REWIND_AFTER_ITEM);
        }
        Ok(RewindReport {
            preview: req.preview,
            items,
        })
    }
}
