//! The effect preview: what a held or approved write will change, read by
//! its connector from the target when a person opens the write
//! (`GET /v1/writes/{id}/effect`).
//!
//! Only people who may read every write get it, never an agent: it reads
//! the target (rows, file contents), and an agent that could submit a
//! write and then read its preview would have a read path its own token
//! does not give it. It is masked like the audit trail (secret-named
//! columns and headers, credential-shaped text, and every value the
//! proposal names a secret), never stored, and does not bind the approval:
//! the write is re-planned before it runs, and held again if its targets
//! changed.

use chrono::Utc;
use recourse_client::{Effect, EffectChange, Permission, WriteStatus};
use recourse_core::Proposal;

use super::*;

impl Gate {
    pub async fn effect(&self, caller: &Caller, id: &str) -> Result<Effect, GateError> {
        caller.allow(Permission::ReadAllWrites)?;
        let (rec, _) = self.load(id).await?;
        if !matches!(rec.status, WriteStatus::Held | WriteStatus::Approved) {
            return Err(GateError::conflict(
                recourse_client::ErrorCode::EffectPast,
                format!(
                    "the write is {}: only a held or approved write has an effect to preview \
                     (what a write did is in its outcome)",
                    rec.status.as_str()
                ),
            ));
        }
        let raw = self.raw_proposal(&rec).map_err(|e| {
            GateError::conflict(
                recourse_client::ErrorCode::SealedUnreadable,
                format!("the write's sealed proposal cannot be opened here: {e}"),
            )
        })?;
        let name = rec.connector.clone();
        let connector = self.connector(&name).ok_or_else(|| {
            GateError::conflict(
                recourse_client::ErrorCode::UnknownConnector,
                self.missing_connector(&name),
            )
        })?;
        let change = connector
            .effect(&rec.id, &raw.action)
            .await?
            .ok_or_else(|| {
                GateError::conflict(
                    recourse_client::ErrorCode::NoEffect,
                    format!("the `{name}` connector cannot preview its writes"),
                )
            })?;
        let change = self.masked_change(change, &raw).ok_or_else(|| {
            // Never the unmasked reading: without its masked form, nothing.
            GateError::conflict(
                recourse_client::ErrorCode::EffectUnmaskable,
                "the effect could not be masked",
            )
        })?;
        Ok(Effect {
            read_at: Utc::now(),
            change,
        })
    }

    /// `change` as a person may see it: values of secret-named columns
    /// hidden, then masked as a connector's answer is.
    fn masked_change(&self, mut change: EffectChange, raw: &Proposal) -> Option<EffectChange> {
        if let EffectChange::Rows(rows) = &mut change {
            let secret: Vec<bool> = rows
                .columns
                .iter()
                .map(|c| self.masker.is_secret_name(c))
                .collect();
            for row in &mut rows.rows {
                for side in [&mut row.before, &mut row.after].into_iter().flatten() {
                    for (value, hide) in side.iter_mut().zip(&secret) {
                        if *hide && value.is_some() {
                            *value = Some(recourse_secrets::REDACTED.to_owned());
                        }
                    }
                }
            }
        }
        let v = serde_json::to_value(&change).ok()?;
        serde_json::from_value(self.masked_knowing(&v, raw))
            .or_else(|_| serde_json::from_value(self.masker.strings(&v)))
            .ok()
    }
}
