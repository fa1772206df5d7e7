//! The audit trail: append-only, each entry holding the hash of the one
//! before, so an edited, removed or reordered entry breaks the chain. The
//! check needs nothing but the entries: it can run outside the store.

use chrono::{DateTime, SecondsFormat, Utc};
use recourse_client::{AuditEntry, AuditVerification};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry before the store gives it its place in the chain.
#[derive(Debug, Clone)]
pub struct AuditDraft {
    pub actor: String,
    pub action: String,
    pub write_id: Option<String>,
    pub body: Value,
}

impl AuditDraft {
    pub fn new(actor: &str, action: &str, write_id: Option<&str>, body: Value) -> Self {
        Self {
            actor: actor.to_string(),
            action: action.to_string(),
            write_id: write_id.map(str::to_string),
            body,
        }
    }
}

/// The hash of an entry: over its place, its content and the hash before it.
/// Timestamps are hashed in one fixed format so a store that round-trips
/// them cannot change the hash.
pub fn entry_hash(
    seq: i64,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    write_id: Option<&str>,
    body: &Value,
    prev_hash: &str,
) -> String {
    let canonical = serde_json::json!({
        "seq": seq,
        "at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "actor": actor,
        "action": action,
        "write_id": write_id,
        "body": body,
        "prev_hash": prev_hash,
    });
    // serde_json's map is ordered by key (no preserve_order feature), so this
    // serialization is canonical.
    let mut h = Sha256::new();
    h.update(canonical.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Seals a draft as entry `seq` after `prev_hash`.
pub fn seal(draft: AuditDraft, seq: i64, at: DateTime<Utc>, prev_hash: &str) -> AuditEntry {
    // Truncate to microseconds: what every store keeps.
    let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
    let hash = entry_hash(
        seq,
        at,
        &draft.actor,
        &draft.action,
        draft.write_id.as_deref(),
        &draft.body,
        prev_hash,
    );
    AuditEntry {
        seq,
        at,
        actor: draft.actor,
        action: draft.action,
        write_id: draft.write_id,
        body: draft.body,
        prev_hash: prev_hash.to_string(),
        hash,
    }
}

/// Checks the whole chain: sequence numbers 1, 2, 3 … without gaps, each
/// entry linked to the hash of the one before, each hash matching content.
pub fn verify(entries: &[AuditEntry]) -> AuditVerification {
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        let fail = |problem: String| AuditVerification {
            ok: false,
            entries: entries.len() as u64,
            first_bad_seq: Some(e.seq),
            problem: Some(problem),
            head: entries
                .last()
                .map(|l| l.hash.clone())
                .unwrap_or_else(|| GENESIS.into()),
        };
        if e.seq != expected_seq {
            return fail(format!(
                "entry {} stands where entry {expected_seq} should: an entry was removed or reordered",
                e.seq
            ));
        }
        if e.prev_hash != prev {
            return fail(format!(
                "entry {} does not link to the entry before it",
                e.seq
            ));
        }
        let actual = entry_hash(
            e.seq,
            e.at,
            &e.actor,
            &e.action,
            e.write_id.as_deref(),
            &e.body,
            &e.prev_hash,
        );
        if actual != e.hash {
            return fail(format!("entry {} was changed after it was written", e.seq));
        }
        prev = e.hash.clone();
    }
    AuditVerification {
        ok: true,
        entries: entries.len() as u64,
        first_bad_seq: None,
        problem: None,
        head: prev,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let prev = out
                .last()
                .map(|e| e.hash.clone())
                .unwrap_or_else(|| GENESIS.into());
            let draft = AuditDraft::new("gate", "test", None, serde_json::json!({"n": seq}));
            out.push(seal(draft, seq, Utc::now(), &prev));
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        let v = verify(&chain(5));
        assert!(v.ok, "{v:?}");
        assert_eq!(v.entries, 5);
    }

    #[test]
    fn edits_removals_and_reorders_are_found() {
        let mut edited = chain(5);
        edited[2].body = serde_json::json!({"n": 99});
        assert_eq!(verify(&edited).first_bad_seq, Some(3));

        let mut removed = chain(5);
        removed.remove(1);
        assert_eq!(verify(&removed).first_bad_seq, Some(3));

        let mut reordered = chain(5);
        reordered.swap(1, 2);
        assert!(!verify(&reordered).ok);

        // Renumbering after a removal still breaks the link.
        let mut renumbered = chain(5);
        renumbered.remove(1);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(verify(&renumbered).first_bad_seq, Some(2));
    }
}
