//! After a failed fsync the gate does not carry on. The real `recourse`
//! binary (built for the tests with the fs connector's I/O fault layer) is
//! started with `FAILPOINTS="fs.io.fsync={k-1}*off->1*return(EIO)->off"`:
//! the k-th fsync of the fs connector fails, for k = 1, 2, ... until a
//! write over a file runs without meeting it. Each fsync of the write's
//! capture and of the write itself is hit in turn; each must freeze the
//! gate (by `gate`, audited, the write and the failure as the reason),
//! leave the write's outcome unknown rather than `executed`, and stop
//! everything else until an incident lead has settled the write and
//! resumed the gate.

use std::path::Path;

use base64::Engine;
use recourse_client::WriteStatus;
use serde_json::{json, Value};

use crate::harness::{codes, TestGate};

const OLD: &[u8] = b"old = true\n";
const NEW: &[u8] = b"new = true\n";

fn write(path: &Path, content: &[u8], key: &str) -> Value {
    json!({
        "intent": "update the settings file",
        "idempotency_key": key,
        "action": {
            "connector": "fs",
            "op": "write",
            "path": path.to_str().unwrap(),
            "content_b64": base64::engine::general_purpose::STANDARD.encode(content),
        },
    })
}

#[tokio::test]
async fn a_failed_fsync_in_a_capture_or_a_write_freezes_the_gate_until_a_lead_resumes() {
    let mut frozen = Vec::new();
    let mut probes = Vec::new();
    let mut last = None;
    for k in 1..=40u32 {
        let mut gate = TestGate::start(&[]);
        let notes = gate.root.join("notes.txt");
        let other = gate.root.join("other.txt");
        std::fs::write(&notes, OLD).unwrap();
        gate.kill();
        let spec = format!("fs.io.fsync={}*off->1*return(EIO)->off", k - 1);
        gate.spawn(&[("FAILPOINTS", spec.as_str())]);
        let agent = gate.client(&gate.tokens.agent);
        let lead = gate.client(&gate.tokens.incident);
        let admin = gate.client(&gate.tokens.admin);

        let rec = agent.submit_json(&write(&notes, NEW, "hit")).await.unwrap();
        let freeze = lead.freeze_state().await.unwrap();
        if !freeze.frozen {
            if rec.status == WriteStatus::Executed {
                // Past the last fsync of the write: it ran untouched.
                assert_eq!(std::fs::read(&notes).unwrap(), NEW, "k={k}");
                last = Some(k);
                break;
            }
            // The vault's writability probe, while the write is decided:
            // its evidence is absent, the write held, nothing ran.
            let decision = serde_json::to_string(&rec.decision).unwrap();
            assert_eq!(rec.status, WriteStatus::Held, "k={k}: {decision}");
            assert!(decision.contains("fsync failed"), "k={k}: {decision}");
            assert_eq!(std::fs::read(&notes).unwrap(), OLD, "k={k}");
            probes.push(k);
            continue;
        }

        // Frozen by the gate itself, with the write and the failure.
        assert_eq!(freeze.by.as_deref(), Some("gate"), "k={k}");
        let reason = freeze.reason.clone().unwrap_or_default();
        assert!(
            reason.contains(&rec.id) && reason.contains("fsync failed"),
            "k={k}: {reason}"
        );
        let audit = admin.audit().await.unwrap();
        assert!(
            audit.iter().any(|e| e.action == "gate.frozen"
                && e.actor == "gate"
                && e.write_id.as_deref() == Some(rec.id.as_str())),
            "k={k}: the freeze is in the audit trail"
        );
        assert!(admin.verify_audit().await.unwrap().ok, "k={k}");

        // Not reported executed: whether it took effect is for a person.
        let rec = admin.write(&rec.id).await.unwrap();
        assert_eq!(rec.status, WriteStatus::OutcomeUnknown, "k={k}");
        assert!(
            !audit
                .iter()
                .any(|e| e.action == "write.executed" && e.write_id.as_deref() == Some(&rec.id)),
            "k={k}"
        );
        // The target is as before, as after, or captured and not yet
        // written (the vault holds the old file): never anything else.
        let captured = gate.data_dir().join("vault/fs").join(&rec.id).join("data");
        let now = std::fs::read(&notes).ok();
        let state = match now.as_deref() {
            Some(b) if b == OLD => "as before",
            Some(b) if b == NEW => "as after",
            None => {
                let held = std::fs::read(&captured).unwrap_or_else(|e| {
                    panic!(
                        "k={k}: the target is gone and `{}` ({e}); the history: {:?}",
                        captured.display(),
                        rec.history
                    )
                });
                assert_eq!(held, OLD, "k={k}");
                "captured"
            }
            Some(b) => panic!("k={k}: the target holds {b:?}"),
        };
        frozen.push((k, state));

        // Nothing else runs: a new write is held for the freeze, and an
        // approval of it is refused.
        let second = agent
            .submit_json(&write(&other, b"second", "second"))
            .await
            .unwrap();
        assert_eq!(second.status, WriteStatus::Held, "k={k}");
        assert!(
            codes(&second).iter().any(|(c, _)| c == "frozen"),
            "k={k}: {:?}",
            codes(&second)
        );
        let err = gate
            .client(&gate.tokens.reviewer)
            .approve(&second.id, Some("looks fine".into()))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(recourse_client::ErrorCode::Frozen),
            "k={k}"
        );
        assert!(!other.exists(), "k={k}");

        // The lead checks the disk and settles the write: what took effect
        // (or was captured) is `executed`, and can be rolled back.
        let settled = lead
            .resolve(
                &rec.id,
                state != "as before",
                format!("checked the disk: {state}"),
            )
            .await
            .unwrap();
        if state == "captured" {
            // The old file is in the vault, the new one never written: the
            // rollback (forced: the path is empty) puts it back.
            let back = lead
                .rollback(&rec.id, "the write never landed", true)
                .await
                .unwrap();
            assert_eq!(
                back.status,
                WriteStatus::RolledBack,
                "k={k}: {:?}",
                back.rollback
            );
            assert_eq!(std::fs::read(&notes).unwrap(), OLD, "k={k}");
        } else {
            let want = if state == "as after" {
                WriteStatus::Executed
            } else {
                WriteStatus::Failed
            };
            assert_eq!(settled.status, want, "k={k}");
        }
        assert!(lead.freeze_state().await.unwrap().frozen, "k={k}");

        // Resumed, writes run again.
        lead.resume().await.unwrap();
        let third = agent
            .submit_json(&write(&other, b"third", "third"))
            .await
            .unwrap();
        assert_eq!(
            third.status,
            WriteStatus::Executed,
            "k={k}: {:?}",
            third.history
        );
        assert_eq!(std::fs::read(&other).unwrap(), b"third", "k={k}");
    }
    let last = last.expect("the write ran once no fsync of it failed");
    println!(
        "fsyncs failed one at a time: k = 1..{last}; the gate froze at (k, target) = {frozen:?}; the vault probe held the write at k = {probes:?}"
    );
    // Every fsync of the capture (after the rename into the vault, of the
    // manifest, of the vault) and of the write (the temporary file, the
    // directory) froze the gate.
    assert!(frozen.len() >= 7, "{frozen:?}");
}
