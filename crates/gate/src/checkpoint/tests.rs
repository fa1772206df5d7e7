//! Signing and checking heads; a trail tampered 1,000 ways (fixed seed),
//! each caught against an anchor; and the chain check alone shown to miss
//! the re-sealed ones, which is why the anchor exists.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recourse_client::AuditEntry;
use serde_json::json;

use super::*;
use crate::audit::{seal, AuditDraft, GENESIS};
use crate::store::{AuditStore, MemoryStore};

fn signer() -> Signer {
    Signer::from_secret([7; 32])
}

/// A trail of `n` entries, with a checkpoint (signed by `s`) after every
/// tenth.
fn trail(s: &Signer, n: usize) -> Vec<AuditEntry> {
    let mut out: Vec<AuditEntry> = Vec::new();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
    while out.len() < n {
        let seq = out.len() as i64 + 1;
        let prev = out.last().map(|e| e.hash.clone()).unwrap_or(GENESIS.into());
        let draft = if seq % 11 == 0 {
            let last = &out[out.len() - 1];
            AuditDraft::new(
                "gate",
                CHECKPOINT_ACTION,
                None,
                s.sign_head(last.seq, &last.hash).entry_body(),
            )
        } else {
            AuditDraft::new(
                "bot",
                "write.submitted",
                Some(&format!("w{seq}")),
                json!({"n": seq, "proposal_hash": format!("p{seq}")}),
            )
        };
        out.push(seal(draft, seq, t0 + chrono::Duration::seconds(seq), &prev));
    }
    out
}

/// Renumbers and re-hashes the whole chain: what someone who can write the
/// store, but holds no key, does to hide an edit.
fn reseal(entries: &mut [AuditEntry]) {
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.iter_mut().enumerate() {
        let draft = AuditDraft {
            actor: e.actor.clone(),
            action: e.action.clone(),
            write_id: e.write_id.clone(),
            body: e.body.clone(),
        };
        *e = seal(draft, i as i64 + 1, e.at, &prev);
        prev = e.hash.clone();
    }
}

#[test]
fn a_signed_head_verifies_and_names_its_key() {
    let s = signer();
    let head = s.sign_head(5, "abc");
    assert_eq!(head.key_id.len(), 16);
    assert_eq!(head.key_id, s.key_id());
    assert!(head.check_signature().is_ok());
    // Round-trips through a checkpoint entry.
    let e = seal(
        AuditDraft::new("gate", CHECKPOINT_ACTION, None, head.entry_body()),
        6,
        Utc::now(),
        "abc",
    );
    assert_eq!(SignedHead::from_entry(&e), Some(head.clone()));
    assert_eq!(latest_signed_head(&[e]), Some(head));
}

#[test]
fn a_forged_or_altered_head_does_not_verify() {
    let s = signer();
    let head = s.sign_head(5, "abc");
    let other = Signer::from_secret([9; 32]);

    let mut moved = head.clone();
    moved.seq = 4;
    assert!(moved.check_signature().is_err(), "another seq");
    let mut rehashed = head.clone();
    rehashed.hash = "abd".into();
    assert!(rehashed.check_signature().is_err(), "another hash");
    let mut flipped = head.clone();
    let mut sig = hex::decode(&flipped.signature).unwrap();
    sig[0] ^= 1;
    flipped.signature = hex::encode(sig);
    assert!(flipped.check_signature().is_err(), "a flipped bit");
    // Someone else's key, named as ours: the id does not match the key.
    let mut swapped = head.clone();
    swapped.public_key = other.public_key_hex();
    assert!(swapped
        .check_signature()
        .unwrap_err()
        .contains("does not name"));
    // Someone else's key, named as theirs: the signature is still ours.
    swapped.key_id = other.key_id();
    assert!(swapped.check_signature().is_err());
    let mut garbage = head;
    garbage.signature = "zz".into();
    assert!(garbage.check_signature().is_err());
}

#[test]
fn the_intact_trail_is_accepted_against_its_anchor() {
    let s = signer();
    let t = trail(&s, 60);
    let anchor = latest_signed_head(&t).unwrap();
    assert_eq!(anchor.seq, 54, "the checkpoint at 55 covers 54");
    let v = verify_anchor(&t, &anchor);
    assert!(v.ok, "{v:?}");
    // Entries after the anchor are fine too, and so is the trail cut just
    // after the head it covers.
    assert!(verify_anchor(&t[..54], &anchor).ok);
}

#[test]
fn cut_rewritten_and_unsigned_trails_are_refused() {
    let s = signer();
    let t = trail(&s, 60);
    let anchor = latest_signed_head(&t).unwrap();

    let cut = verify_anchor(&t[..53], &anchor);
    assert!(!cut.ok);
    assert!(cut.problem.unwrap().contains("tail was cut"));

    let mut resealed = t.clone();
    resealed[3].body = json!({"n": 4, "proposal_hash": "forged"});
    reseal(&mut resealed);
    assert!(audit::verify(&resealed).ok, "the chain alone is fooled");
    let v = verify_anchor(&resealed, &anchor);
    assert!(!v.ok);
    assert!(v.problem.unwrap().contains("rewritten"), "{anchor:?}");

    // A re-sealed trail with a freshly signed head from another key is
    // still refused against the anchor kept elsewhere.
    let thief = Signer::from_secret([1; 32]);
    let forged = thief.sign_head(anchor.seq, &resealed[53].hash);
    assert!(verify_anchor(&resealed, &forged).ok, "its own anchor fits");
    let mut mislabelled = forged;
    mislabelled.key_id = anchor.key_id.clone();
    mislabelled.public_key = anchor.public_key.clone();
    assert!(!verify_anchor(&resealed, &mislabelled).ok);
}

#[test]
fn a_checkpoint_in_the_trail_that_does_not_verify_is_refused() {
    let s = signer();
    let mut t = trail(&s, 40);
    let anchor = s.sign_head(40, &t[39].hash);
    assert!(verify_anchor(&t, &anchor).ok);
    // A checkpoint body edited in place: caught by the chain.
    t[10].body["covers"]["seq"] = json!(3);
    assert!(!verify_anchor(&t, &anchor).ok);
}

#[derive(Debug, Clone, Copy)]
enum Tamper {
    EditBody,
    Delete,
    Swap,
    Insert,
    Truncate,
    EditActor,
}

/// Applies one random tampering to the entries up to the anchored head
/// (index `< head`), and re-seals the whole chain after it half the time.
fn tamper(rng: &mut StdRng, t: &mut Vec<AuditEntry>, head: usize) -> (Tamper, bool) {
    let kinds = [
        Tamper::EditBody,
        Tamper::Delete,
        Tamper::Swap,
        Tamper::Insert,
        Tamper::Truncate,
        Tamper::EditActor,
    ];
    let kind = kinds[rng.gen_range(0..kinds.len())];
    let i = rng.gen_range(0..head);
    match kind {
        Tamper::EditBody => {
            t[i].body = json!({"tampered": rng.gen::<u64>()});
        }
        Tamper::EditActor => {
            t[i].actor.push('!');
        }
        Tamper::Delete => {
            t.remove(i);
        }
        Tamper::Swap => {
            let mut j = rng.gen_range(0..head);
            if j == i {
                j = (i + 1) % head;
            }
            t.swap(i, j);
        }
        Tamper::Insert => {
            let at = t[i].at;
            let forged = seal(
                AuditDraft::new("bot", "write.submitted", None, json!({"inserted": true})),
                i as i64 + 1,
                at,
                &t[i].prev_hash,
            );
            t.insert(i, forged);
        }
        Tamper::Truncate => {
            t.truncate(i);
        }
    }
    let resealed = rng.gen_bool(0.5);
    if resealed {
        reseal(t);
    }
    (kind, resealed)
}

/// A verifier that ignores the anchor: the hash chain alone. The planted
/// defect the tamper loop must expose.
fn chain_only(entries: &[AuditEntry], _anchor: &SignedHead) -> bool {
    audit::verify(entries).ok
}

fn tamper_loop(verifier: impl Fn(&[AuditEntry], &SignedHead) -> bool) -> (usize, Vec<String>) {
    let s = signer();
    let base = trail(&s, 80);
    let anchor = latest_signed_head(&base).unwrap();
    let head = anchor.seq as usize;
    assert!(verifier(&base, &anchor), "the untampered trail is accepted");
    let mut rng = StdRng::seed_from_u64(0x5eed_0011);
    let mut missed = Vec::new();
    for round in 0..1000 {
        let mut t = base.clone();
        let (kind, resealed) = tamper(&mut rng, &mut t, head);
        if verifier(&t, &anchor) {
            missed.push(format!("round {round}: {kind:?}, resealed: {resealed}"));
        }
    }
    (1000, missed)
}

#[test]
fn a_thousand_tamperings_up_to_the_anchor_are_all_caught() {
    let (rounds, missed) = tamper_loop(|t, a| verify_anchor(t, a).ok);
    assert_eq!(rounds, 1000);
    assert!(missed.is_empty(), "missed: {missed:#?}");
}

/// Why the anchor matters: the chain alone, run through the same loop,
/// accepts every re-sealed trail (and every cut one). If this test ever
/// fails, the loop no longer exercises what the anchor is for.
#[test]
fn the_chain_alone_misses_resealed_and_cut_trails() {
    let (_, missed) = tamper_loop(chain_only);
    assert!(missed.len() > 300, "only {} missed", missed.len());
    assert!(missed.iter().any(|m| m.contains("resealed: true")));
    assert!(missed.iter().any(|m| m.contains("Truncate")));
    assert!(missed
        .iter()
        .all(|m| m.contains("resealed: true") || m.contains("Truncate")));
}

#[test]
fn the_key_file_is_created_private_and_refused_when_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.key");
    let (a, created) = Signer::load_or_create(&path).unwrap();
    assert!(created);
    let (b, created) = Signer::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(a.key_id(), b.key_id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Signer::load_or_create(&path).unwrap_err();
        assert!(e.to_string().contains("readable by others"), "{e}");
    }
    std::fs::write(dir.path().join("bad.key"), "not hex").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("bad.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    assert!(Signer::load_or_create(&dir.path().join("bad.key")).is_err());
}

async fn append(store: &MemoryStore, n: usize) {
    for i in 0..n {
        store
            .append_audit(AuditDraft::new("bot", "test", None, json!({"i": i})))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_checkpointer_signs_every_n_entries_and_on_demand() {
    let store = Arc::new(MemoryStore::new());
    append(&store, 3).await;
    let cp = Checkpointer::start(
        store.clone(),
        signer(),
        5,
        std::time::Duration::from_secs(3600),
    )
    .await
    .unwrap();
    assert!(cp.tick().await.unwrap().is_none(), "nothing new yet");
    append(&store, 5).await;
    let head = cp.tick().await.unwrap().expect("due after 5 entries");
    assert_eq!(head.seq, 8);
    // Nothing but the checkpoint since: no second one.
    assert!(cp.checkpoint().await.unwrap().is_none());
    append(&store, 1).await;
    let head = cp.checkpoint().await.unwrap().expect("one at shutdown");
    assert_eq!(head.seq, 10);
    let all = store.audit(0, -1).await.unwrap();
    assert_eq!(latest_signed_head(&all), Some(head.clone()));
    assert!(verify_anchor(&all, &head).ok);

    // A restart checks the trail it finds, then carries on.
    let again = Checkpointer::start(
        store.clone(),
        signer(),
        5,
        std::time::Duration::from_secs(3600),
    )
    .await
    .unwrap();
    append(&store, 1).await;
    assert_eq!(again.checkpoint().await.unwrap().unwrap().seq, 12);
}

#[tokio::test]
async fn the_checkpointer_refuses_to_sign_a_trail_changed_under_it() {
    let store = Arc::new(MemoryStore::new());
    append(&store, 3).await;
    let cp = Checkpointer::start(
        store.clone(),
        signer(),
        100,
        std::time::Duration::from_secs(3600),
    )
    .await
    .unwrap();
    cp.checkpoint().await.unwrap().unwrap();
    // The memory store cannot be edited from outside; a fresh store with
    // another history stands in for a store rewritten under the gate.
    let other = Arc::new(MemoryStore::new());
    append(&other, 6).await;
    let moved = Checkpointer {
        store: other.clone(),
        signer: signer(),
        every_entries: 100,
        every: std::time::Duration::from_secs(3600),
        state: tokio::sync::Mutex::new(State {
            checked: cp.state.lock().await.checked.clone(),
            at: std::time::Instant::now(),
        }),
    };
    assert!(matches!(
        moved.checkpoint().await,
        Err(CheckpointError::Broken(_))
    ));
}
