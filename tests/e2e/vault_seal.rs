//! The fs vault's seal, through a real `recourse serve`: a byte flipped in
//! the vault (size and mtime kept) is not restored, and the write is not
//! `rolled_back`; a capture left unsealed goes back as "contents not
//! verified"; a seal a crash cut short is completed when the gate starts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use recourse_client::{RestoreStatus, WriteRecord, WriteStatus};
use serde_json::{json, Value};

use crate::harness::{make_project, tree_listing, TestGate};

const SEAL_POINT: &str = "fs.seal.before_rename";

fn delete(path: &Path) -> Value {
    json!({
        "intent": "delete the scratch project folder",
        "action": {"connector": "fs", "op": "delete", "path": path.to_str().unwrap()},
    })
}

/// `<data>/vault/fs/<write id>`: where the gate's fs connector keeps it.
fn vault_dir(gate: &TestGate, id: &str) -> PathBuf {
    gate.data_dir().join("vault/fs").join(id)
}

async fn wait_for(p: &Path) {
    let start = Instant::now();
    while !p.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "`{}` never appeared",
            p.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sha256sum(p: &Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Flips one bit of the first byte of `p` in place and puts its times back:
/// size, mtime and inode are what they were.
fn flip_byte(p: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::symlink_metadata(p).unwrap();
    let first = std::fs::read(p).unwrap()[0];
    let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&[first ^ 0x01]).unwrap();
    let times = std::fs::FileTimes::new()
        .set_accessed(before.accessed().unwrap())
        .set_modified(before.modified().unwrap());
    f.set_times(times).unwrap();
    drop(f);
    let after = std::fs::symlink_metadata(p).unwrap();
    assert_eq!(
        (after.len(), after.mtime(), after.mtime_nsec(), after.ino()),
        (
            before.len(),
            before.mtime(),
            before.mtime_nsec(),
            before.ino()
        ),
        "the flip keeps size, mtime and inode"
    );
}

async fn executed_delete(gate: &TestGate, proj: &Path) -> WriteRecord {
    let done = gate
        .client(&gate.tokens.agent)
        .submit_json(&delete(proj))
        .await
        .unwrap();
    assert_eq!(done.status, WriteStatus::Executed, "{:?}", done.history);
    assert!(!proj.exists(), "the delete ran");
    done
}

#[tokio::test]
async fn a_byte_flipped_in_the_sealed_vault_is_not_restored() {
    let gate = TestGate::start(&[]);
    let proj = gate.root.join("app");
    make_project(&proj);
    let done = executed_delete(&gate, &proj).await;
    let w = vault_dir(&gate, &done.id);
    assert_eq!(
        done.capture.as_ref().unwrap()["method"],
        "rename",
        "the capture read no contents"
    );
    wait_for(&w.join("seal.json")).await;

    let victim = w.join("data/src/main.rs");
    let sealed = sha256sum(&victim);
    let seal: Value = serde_json::from_slice(&std::fs::read(w.join("seal.json")).unwrap()).unwrap();
    assert!(
        seal["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "src/main.rs" && f["sha256"] == sealed.as_str()),
        "{seal}"
    );
    flip_byte(&victim);
    let flipped = sha256sum(&victim);

    let lead = gate.client(&gate.tokens.incident);
    let back = lead
        .rollback(&done.id, "wrong directory", false)
        .await
        .unwrap();
    assert_ne!(back.status, WriteStatus::RolledBack, "{:?}", back.rollback);
    assert_eq!(back.status, WriteStatus::RollbackFailed);
    let report = back.rollback.as_ref().unwrap();
    assert!(!report.verified, "{report:?}");
    let item = &report.items[0];
    assert_eq!(item.status, RestoreStatus::Failed, "{report:?}");
    let detail = item.detail.as_deref().unwrap();
    assert!(detail.starts_with("not restored"), "{detail}");
    assert!(detail.contains("`src/main.rs`"), "{detail}");
    assert!(
        detail.contains(&sealed) && detail.contains(&flipped),
        "both hashes: {detail}"
    );
    assert!(!proj.exists(), "nothing corrupted was put back");
    assert!(victim.exists(), "the vault keeps its copy");

    // What the API says later is the same.
    let rec = gate
        .client(&gate.tokens.admin)
        .write(&done.id)
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::RollbackFailed);
    assert_eq!(
        rec.rollback.as_ref().unwrap().items[0].status,
        RestoreStatus::Failed
    );
}

#[tokio::test]
async fn an_unsealed_capture_rolls_back_as_contents_not_verified() {
    let mut gate = TestGate::start(&[]);
    let proj = gate.root.join("app");
    make_project(&proj);
    let before = tree_listing(&proj);
    // Sealing is cut before its rename, every time: no seal is written.
    gate.kill();
    let spec = format!("{SEAL_POINT}=return");
    gate.spawn(&[("FAILPOINTS", spec.as_str())]);
    let done = executed_delete(&gate, &proj).await;
    let w = vault_dir(&gate, &done.id);
    wait_for(&w.join("seal.json.tmp")).await;
    assert!(!w.join("seal.json").exists());

    let lead = gate.client(&gate.tokens.incident);
    let back = lead
        .rollback(&done.id, "wrong directory", false)
        .await
        .unwrap();
    let report = back.rollback.as_ref().unwrap();
    assert_eq!(back.status, WriteStatus::RollbackFailed, "{report:?}");
    assert!(!report.verified, "{report:?}");
    assert_eq!(report.items[0].status, RestoreStatus::Unverified);
    let detail = report.items[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("contents not verified: the vault holds no seal"),
        "{detail}"
    );
    assert_eq!(tree_listing(&proj), before, "put back all the same");
    let note = back
        .history
        .last()
        .unwrap()
        .note
        .clone()
        .unwrap_or_default();
    assert!(note.contains("could not be verified"), "{note}");
}

#[tokio::test]
async fn a_seal_cut_by_a_crash_is_completed_when_the_gate_starts() {
    let mut gate = TestGate::start(&[]);
    let proj = gate.root.join("app");
    make_project(&proj);
    let before = tree_listing(&proj);
    gate.kill();
    let spec = format!("{SEAL_POINT}=return");
    gate.spawn(&[("FAILPOINTS", spec.as_str())]);
    let done = executed_delete(&gate, &proj).await;
    let w = vault_dir(&gate, &done.id);
    wait_for(&w.join("seal.json.tmp")).await;
    gate.kill();

    gate.spawn(&[]);
    wait_for(&w.join("seal.json")).await;
    let back = gate
        .client(&gate.tokens.incident)
        .rollback(&done.id, "wrong directory", false)
        .await
        .unwrap();
    assert_eq!(back.status, WriteStatus::RolledBack, "{:?}", back.rollback);
    let report = back.rollback.as_ref().unwrap();
    assert!(report.verified, "{report:?}");
    assert!(
        report.items[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("match the seal"),
        "{report:?}"
    );
    assert_eq!(tree_listing(&proj), before);
}
