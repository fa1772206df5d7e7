//! The gate's named crash points: every durable step of a write's life
//! where a crash leaves state that recovery must settle. RELIABILITY.md
//! lists them with the connectors' own (`recourse_connector_fs::
//! RESTORE_CRASH_POINTS`, `SEAL_CRASH_POINTS`, `recourse_connector_sql::
//! RESTORE_CRASH_POINTS`), and the end-to-end sweep (`tests/e2e/
//! crash_sweep.rs`) SIGKILLs the real process at each.
//!
//! They do something only in builds with the `failpoints` feature (see
//! `recourse_connector::crash`); the names are here in every build so that
//! the list the tests sweep and the places that mark them cannot drift:
//! the sweep asserts each listed point is reached.

use crate::lifecycle::Step;

/// Submit: what the connector discovered joined the catalog; the write
/// itself is not stored yet.
pub const SUBMIT_AFTER_DISCOVERED: &str = "gate.submit.after_discovered";
/// Submit: the write and its `write.submitted` entry are durable; the
/// agent has had no answer yet, and an allowed write has not started.
pub const SUBMIT_AFTER_INSERT: &str = "gate.submit.after_insert";
/// The vault holds the capture; the store does not know of it yet.
pub const BEFORE_CAPTURE_RECORD: &str = "gate.before_capture_record";
/// The capture is recorded; the connector has not been called.
pub const AFTER_CAPTURE: &str = "gate.after_capture";
/// The connector ran the write; its outcome is not recorded.
pub const AFTER_EXECUTE: &str = "gate.after_execute";
/// The connector restored (or failed to); its report is not recorded.
pub const ROLLBACK_BEFORE_RECORD: &str = "gate.rollback.before_record";
/// A freeze or a resume is durable; the caller has had no answer.
pub const FREEZE_AFTER_RECORD: &str = "gate.freeze.after_record";
/// A rewind rolled back one write and is about to take the next.
pub const REWIND_AFTER_ITEM: &str = "gate.rewind.after_item";
/// Recovery claimed an in-flight write and has not settled it.
pub const RECOVERY_AFTER_CLAIM: &str = "gate.recovery.after_claim";
/// The embedded store's group commit: the batch is written inside its
/// transaction, not committed.
pub const STORE_COMMIT_BEFORE: &str = "store.commit.before";
/// The batch is committed; no caller has heard.
pub const STORE_COMMIT_AFTER: &str = "store.commit.after";
/// A lone audit entry (a refusal, a catalog change, a freeze) is appended
/// inside its transaction, not committed.
pub const STORE_AUDIT_BEFORE_COMMIT: &str = "store.audit.before_commit";

/// The points marked outside the one transition function.
pub const NAMED: &[&str] = &[
    SUBMIT_AFTER_DISCOVERED,
    SUBMIT_AFTER_INSERT,
    BEFORE_CAPTURE_RECORD,
    AFTER_CAPTURE,
    AFTER_EXECUTE,
    ROLLBACK_BEFORE_RECORD,
    FREEZE_AFTER_RECORD,
    REWIND_AFTER_ITEM,
    RECOVERY_AFTER_CLAIM,
    STORE_COMMIT_BEFORE,
    STORE_COMMIT_AFTER,
    STORE_AUDIT_BEFORE_COMMIT,
];

/// Every gate crash point: [`NAMED`], then one after each move of the
/// state machine is durable (`gate.after.<step>`, marked in
/// `Gate::apply`).
pub fn all() -> Vec<&'static str> {
    NAMED
        .iter()
        .copied()
        .chain(Step::ALL.iter().map(|s| s.crash_point()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_has_its_own_name() {
        let all = all();
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "{all:?}");
        assert!(all.len() >= 24, "{}", all.len());
    }
}
