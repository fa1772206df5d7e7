//! The connector end to end on temporary directories: capture, execute and
//! restore compared with an independent listing of the original tree, and
//! the path tricks that must be refused with nothing outside touched.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use recourse_client::RestoreStatus;
use recourse_connector::{Connector, ConnectorError};
use recourse_core::{Evidence, EvidenceKind, Proposal, ReasonCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::*;

struct Env {
    _tmp: TempDir,
    root: PathBuf,
    vault: PathBuf,
    outside: PathBuf,
    fs: FsConnector,
}

fn env(copy: bool) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("root");
    let vault = base.join("vault");
    let outside = base.join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"outside secret").unwrap();
    let fs = FsConnector::new(vec![root.clone()], vault.clone())
        .unwrap()
        .with_copy_mode(copy);
    Env {
        _tmp: tmp,
        root,
        vault,
        outside,
        fs,
    }
}

fn set_time(p: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 123_456_789,
    };
    let ts = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &ts,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// A project as an agent would find it: a git repository with an
/// executable hook, links (one dangling), an empty directory, odd modes,
/// and times from long ago.
fn project(dir: &Path) {
    fs::create_dir_all(dir.join(".git/hooks")).unwrap();
    fs::create_dir_all(dir.join(".git/objects/ab")).unwrap();
    fs::create_dir_all(dir.join(".git/refs/heads")).unwrap();
    fs::write(dir.join(".git/HEAD"), b"ref: refs/heads/main\n").unwrap();
    fs::write(dir.join(".git/refs/heads/main"), b"0123456789abcdef\n").unwrap();
    fs::write(dir.join(".git/objects/ab/cdef01"), vec![7u8; 70_000]).unwrap();
    fs::write(dir.join(".git/hooks/pre-commit"), b"#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(
        dir.join(".git/hooks/pre-commit"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir_all(dir.join("src/empty")).unwrap();
    fs::write(dir.join("src/main.rs"), b"fn main() {}\n").unwrap();
    fs::write(dir.join("src/key.pem"), b"private").unwrap();
    fs::set_permissions(dir.join("src/key.pem"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(dir.join("100% weird name"), b"x").unwrap();
    symlink("src/main.rs", dir.join("main-link")).unwrap();
    symlink("../nowhere", dir.join("dangling")).unwrap();
    fs::set_permissions(dir.join("src/empty"), fs::Permissions::from_mode(0o750)).unwrap();
    // Oldest last, bottom-up, so setting a child does not move its parent.
    let mut all: Vec<PathBuf> = Vec::new();
    collect(dir, &mut all);
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in all.iter().enumerate() {
        set_time(p, 1_000_000_000 + i as i64 * 1000);
    }
    set_time(dir, 999_000_000);
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.symlink_metadata().unwrap().is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for n in names {
            out.push(n.clone());
            collect(&n, out);
        }
    }
}

/// An independent listing (std, not the crate's walker): type, mode,
/// size, mtime, link target, content hash, per relative path.
fn listing(p: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut all = vec![p.to_path_buf()];
    collect(p, &mut all);
    for e in all {
        let m = e.symlink_metadata().unwrap();
        let rel = e.strip_prefix(p).unwrap().display().to_string();
        let ft = m.file_type();
        let extra = if ft.is_symlink() {
            format!("-> {}", fs::read_link(&e).unwrap().display())
        } else if ft.is_file() {
            hex::encode(Sha256::digest(fs::read(&e).unwrap()))
        } else {
            String::new()
        };
        let size = if ft.is_dir() { 0 } else { m.size() };
        let mode = if ft.is_symlink() { 0 } else { m.mode() };
        out.insert(
            rel,
            format!("{mode:o} {size} {}.{} {extra}", m.mtime(), m.mtime_nsec()),
        );
    }
    out
}

/// The listing without the directory itself (its mtime moves when entries
/// come and go).
fn below(p: &Path) -> BTreeMap<String, String> {
    let mut l = listing(p);
    l.remove("");
    l
}

fn proposal(action: Value) -> Proposal {
    Proposal {
        action,
        ..Proposal::default()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn evidence(id: &str, location: &str) -> Evidence {
    Evidence {
        id: id.into(),
        kind: EvidenceKind::Snapshot,
        location: Some(location.into()),
        until: None,
        max_age_s: None,
        check: None,
    }
}

/// plan, observe, capture, observe, execute twice: what the gate does.
async fn run(fs: &FsConnector, id: &str, action: Value) -> (Plan, Value) {
    let plan = fs.plan(id, &action).await.unwrap();
    let step = plan.step.clone().unwrap();
    let ev = step.requires.first().unwrap().clone();
    let before = fs.observe(id, &ev).await.unwrap();
    assert!(before.present, "{before:?}");
    assert!(before.captured_at.is_none());
    let p = proposal(action);
    assert_eq!(fs.applied(id, &p, &Value::Null).await.unwrap(), Some(false));
    let cap = fs.capture(id, &p).await.unwrap();
    let after = fs.observe(id, &ev).await.unwrap();
    assert!(after.present && after.captured_at.is_some(), "{after:?}");
    fs.execute(id, &p, &cap).await.unwrap();
    // A retry after a crash must neither fail nor apply twice.
    fs.execute(id, &p, &cap).await.unwrap();
    assert_eq!(fs.applied(id, &p, &cap).await.unwrap(), Some(true));
    (plan, cap)
}

async fn delete_and_restore(copy: bool) {
    let e = env(copy);
    let proj = e.root.join("proj");
    project(&proj);
    let original = listing(&proj);
    let action = json!({"connector": "fs", "op": "delete", "path": proj.to_str().unwrap()});
    let (plan, cap) = run(&e.fs, "w1", action.clone()).await;

    let id = format!("fs:{}", proj.display());
    assert_eq!(plan.touches, vec![id.clone()]);
    let git = plan
        .resources
        .iter()
        .find(|r| r.id == format!("{id}/.git"))
        .unwrap();
    assert_eq!(git.kind.as_deref(), Some("git.repository"));
    let step = plan.step.unwrap();
    assert_eq!(step.restores, vec![id.clone()]);
    assert_eq!(step.op, json!({"connector": "fs", "op": "restore"}));
    assert_eq!(step.modelled_by.as_deref(), Some("fs"));
    let ev = step.requires.first().unwrap();
    assert_eq!(ev.id, "vault-w1");
    assert_eq!(
        ev.location.as_deref(),
        Some(format!("fs:{}/w1", e.vault.display()).as_str())
    );
    assert_eq!(cap["method"], if copy { "copy" } else { "rename" });

    assert!(proj.symlink_metadata().is_err(), "the delete took effect");
    let p = proposal(action);
    let report = e.fs.restore("w1", &p, &cap, None, false).await.unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(report.items.len(), 1);
    assert_eq!(report.items[0].status, RestoreStatus::Restored);
    assert_eq!(listing(&proj), original);
    let hook = fs::metadata(proj.join(".git/hooks/pre-commit")).unwrap();
    assert_eq!(hook.permissions().mode() & 0o7777, 0o755);
    // The capture is consumed: the evidence no longer holds.
    assert!(!e.fs.observe("w1", ev).await.unwrap().present);
    // Restoring again changes nothing and still verifies.
    let again = e.fs.restore("w1", &p, &cap, None, false).await.unwrap();
    assert!(again.verified, "{again:?}");
    assert_eq!(listing(&proj), original);
}

#[tokio::test]
async fn delete_restores_a_git_project_byte_exact_by_rename() {
    delete_and_restore(false).await;
}

#[tokio::test]
async fn delete_restores_a_git_project_byte_exact_by_copy() {
    delete_and_restore(true).await;
}

#[tokio::test]
async fn rename_capture_reads_no_contents_and_copy_capture_hashes_them() {
    for copy in [false, true] {
        let e = env(copy);
        let proj = e.root.join("proj");
        project(&proj);
        let action = json!({"connector": "fs", "op": "delete", "path": proj.to_str().unwrap()});
        run(&e.fs, "w", action).await;
        let m: Manifest =
            serde_json::from_slice(&fs::read(e.vault.join("w/manifest.json")).unwrap()).unwrap();
        let hashed = m.captured.iter().filter(|x| x.sha256.is_some()).count();
        let files = m.captured.iter().filter(|x| x.kind == Kind::File).count();
        assert_eq!(hashed, if copy { files } else { 0 });
        assert!(m
            .captured
            .iter()
            .any(|x| x.path == ".git/hooks/pre-commit" && x.mode == 0o755));
        assert!(m
            .captured
            .iter()
            .any(|x| x.path == "src/empty" && x.kind == Kind::Dir));
        assert!(m.captured.iter().any(|x| x.path == "100%25 weird name"));
        assert!(m
            .captured
            .iter()
            .any(|x| x.path == "dangling" && x.target.as_deref() == Some("../nowhere")));
    }
}

async fn write_and_restore(copy: bool) {
    let e = env(copy);
    let file = e.root.join("config.toml");
    fs::write(&file, b"old = true\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    set_time(&file, 1_100_000_000);
    let below_original = below(&e.root);
    let action = json!({"connector": "fs", "op": "write", "path": file.to_str().unwrap(),
                        "content_b64": b64(b"new = true\n")});
    let (plan, cap) = run(&e.fs, "w2", action.clone()).await;
    assert_eq!(plan.touches, vec![format!("fs:{}", file.display())]);
    assert_eq!(fs::read(&file).unwrap(), b"new = true\n");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640,
        "the new file keeps the old mode"
    );
    let report =
        e.fs.restore("w2", &proposal(action), &cap, None, false)
            .await
            .unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(below(&e.root), below_original);

    // A new file: rollback removes it.
    let fresh = e.root.join("fresh.txt");
    let action = json!({"connector": "fs", "op": "write", "path": fresh.to_str().unwrap(), "content_b64": b64(b"hi")});
    let (_, cap) = run(&e.fs, "w3", action.clone()).await;
    assert_eq!(fs::read(&fresh).unwrap(), b"hi");
    let report =
        e.fs.restore("w3", &proposal(action), &cap, None, false)
            .await
            .unwrap();
    assert!(report.verified, "{report:?}");
    assert!(fresh.symlink_metadata().is_err());
    assert_eq!(below(&e.root), below_original);
}

#[tokio::test]
async fn write_restores_the_old_file_by_rename() {
    write_and_restore(false).await;
}

#[tokio::test]
async fn write_restores_the_old_file_by_copy() {
    write_and_restore(true).await;
}

async fn move_and_restore(copy: bool) {
    let e = env(copy);
    let proj = e.root.join("proj");
    project(&proj);
    fs::create_dir(e.root.join("archive")).unwrap();
    let target = e.root.join("archive/proj");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("old-notes.txt"), b"keep me").unwrap();
    set_time(&target.join("old-notes.txt"), 1_200_000_000);
    set_time(&target, 1_200_000_000);
    set_time(&e.root.join("archive"), 1_200_000_000);
    let original = listing(&e.root);
    let action = json!({"connector": "fs", "op": "move", "path": proj.to_str().unwrap(), "to": target.to_str().unwrap()});
    let (plan, cap) = run(&e.fs, "w4", action.clone()).await;
    assert_eq!(plan.touches.len(), 2);
    assert!(plan
        .resources
        .iter()
        .any(|r| r.id == format!("fs:{}/.git", proj.display())));
    assert!(target.join(".git/HEAD").exists() && !proj.exists());
    let report =
        e.fs.restore("w4", &proposal(action), &cap, None, false)
            .await
            .unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(report.items.len(), 2);
    let mut now = listing(&e.root);
    let mut was = original;
    // The parents' own mtimes move when entries come and go.
    now.remove("");
    was.remove("");
    now.remove("archive");
    was.remove("archive");
    assert_eq!(now, was);
}

#[tokio::test]
async fn move_restores_both_ends_by_rename() {
    move_and_restore(false).await;
}

#[tokio::test]
async fn move_restores_both_ends_by_copy() {
    move_and_restore(true).await;
}

#[tokio::test]
async fn drift_after_a_delete_stops_the_restore_and_force_keeps_the_newcomer() {
    for copy in [false, true] {
        let e = env(copy);
        let proj = e.root.join("proj");
        project(&proj);
        let original = listing(&proj);
        let action = json!({"connector": "fs", "op": "delete", "path": proj.to_str().unwrap()});
        let (_, cap) = run(&e.fs, "w5", action.clone()).await;
        fs::create_dir(&proj).unwrap();
        fs::write(proj.join("new.txt"), b"written after the delete").unwrap();
        let p = proposal(action);
        let report = e.fs.restore("w5", &p, &cap, None, false).await.unwrap();
        assert!(!report.verified && !report.forced);
        assert_eq!(report.items[0].status, RestoreStatus::Drift);
        assert_eq!(
            fs::read(proj.join("new.txt")).unwrap(),
            b"written after the delete",
            "nothing changed"
        );
        assert!(
            e.vault.join("w5/data").exists(),
            "the capture is still there"
        );
        let forced = e.fs.restore("w5", &p, &cap, None, true).await.unwrap();
        assert!(forced.verified && forced.forced, "{forced:?}");
        assert_eq!(listing(&proj), original);
        assert_eq!(
            fs::read(e.vault.join("w5/displaced-1/new.txt")).unwrap(),
            b"written after the delete"
        );
    }
}

#[tokio::test]
async fn drift_after_a_write_stops_the_restore() {
    let e = env(false);
    let file = e.root.join("notes.txt");
    fs::write(&file, b"v1").unwrap();
    let original = listing(&e.root);
    let action = json!({"connector": "fs", "op": "write", "path": file.to_str().unwrap(), "content_b64": b64(b"v2")});
    let (_, cap) = run(&e.fs, "w6", action.clone()).await;
    fs::write(&file, b"v3 by a human").unwrap();
    let p = proposal(action);
    assert_eq!(e.fs.applied("w6", &p, &cap).await.unwrap(), None);
    let report = e.fs.restore("w6", &p, &cap, None, false).await.unwrap();
    assert_eq!(report.items[0].status, RestoreStatus::Drift);
    assert_eq!(fs::read(&file).unwrap(), b"v3 by a human");
    let report = e.fs.restore("w6", &p, &cap, None, true).await.unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(listing(&e.root).get("notes.txt"), original.get("notes.txt"));
    assert_eq!(
        fs::read(e.vault.join("w6/displaced-1")).unwrap(),
        b"v3 by a human"
    );
}

#[tokio::test]
async fn drift_after_a_move_stops_the_restore() {
    let e = env(false);
    let (a, b) = (e.root.join("a.txt"), e.root.join("b.txt"));
    fs::write(&a, b"moved").unwrap();
    let action = json!({"connector": "fs", "op": "move", "path": a.to_str().unwrap(), "to": b.to_str().unwrap()});
    let (_, cap) = run(&e.fs, "w7", action.clone()).await;
    fs::write(&a, b"a new a").unwrap();
    let report =
        e.fs.restore("w7", &proposal(action), &cap, None, false)
            .await
            .unwrap();
    assert_eq!(report.items[0].status, RestoreStatus::Drift);
    assert_eq!(fs::read(&a).unwrap(), b"a new a");
    assert_eq!(fs::read(&b).unwrap(), b"moved");
}

#[tokio::test]
async fn a_tampered_manifest_is_not_restored_from() {
    let e = env(false);
    let f = e.root.join("f");
    fs::write(&f, b"x").unwrap();
    let action = json!({"connector": "fs", "op": "delete", "path": f.to_str().unwrap()});
    let (_, cap) = run(&e.fs, "w8", action.clone()).await;
    let m = e.vault.join("w8/manifest.json");
    let text = fs::read_to_string(&m)
        .unwrap()
        .replace("\"op\":\"delete\"", "\"op\":\"delete\" ");
    fs::write(&m, text).unwrap();
    let err =
        e.fs.restore("w8", &proposal(action), &cap, None, false)
            .await
            .unwrap_err();
    assert!(matches!(err, ConnectorError::Io(_)), "{err:?}");
    assert!(f.symlink_metadata().is_err());
}

#[tokio::test]
async fn capture_is_idempotent() {
    let e = env(false);
    let proj = e.root.join("proj");
    project(&proj);
    let action = json!({"connector": "fs", "op": "delete", "path": proj.to_str().unwrap()});
    let p = proposal(action);
    e.fs.plan("w9", &p.action).await.unwrap();
    let first = e.fs.capture("w9", &p).await.unwrap();
    let second = e.fs.capture("w9", &p).await.unwrap();
    assert_eq!(first, second);
    // The same write id for another action is a mistake, not a capture.
    let other = proposal(
        json!({"connector": "fs", "op": "delete", "path": format!("{}/other", e.root.display())}),
    );
    fs::write(e.root.join("other"), b"x").unwrap();
    let err = e.fs.capture("w9", &other).await.unwrap_err();
    assert!(
        matches!(err, ConnectorError::Invalid { ref field, .. } if field == "write_id"),
        "{err:?}"
    );
    assert!(e.root.join("other").exists());
}

#[tokio::test]
async fn observe_ignores_other_evidence_and_reports_a_missing_capture() {
    let e = env(false);
    let other = evidence("snap-acct", "vault:market");
    assert!(e.fs.observe("w1", &other).await.is_none());
    let f = e.root.join("f");
    fs::write(&f, b"x").unwrap();
    let action = json!({"connector": "fs", "op": "delete", "path": f.to_str().unwrap()});
    let (_, _cap) = run(&e.fs, "w10", action).await;
    fs::remove_dir_all(e.vault.join("w10/data")).ok();
    fs::remove_file(e.vault.join("w10/data")).ok();
    let ev = evidence("vault-w10", "fs:/v");
    let o = e.fs.observe("w10", &ev).await.unwrap();
    assert!(!o.present, "{o:?}");
}

#[test]
fn setup_refuses_a_vault_inside_a_root_and_a_root_inside_the_vault() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("root");
    fs::create_dir(&root).unwrap();
    let err = FsConnector::new(vec![root.clone()], root.join("vault")).unwrap_err();
    assert!(matches!(err, FsError::VaultInRoot { .. }), "{err}");
    assert!(err.to_string().contains(&root.display().to_string()));
    let err = FsConnector::new(vec![root.clone()], root.clone()).unwrap_err();
    assert!(matches!(err, FsError::VaultInRoot { .. }), "{err}");
    let err = FsConnector::new(vec![root.clone()], base.clone()).unwrap_err();
    assert!(matches!(err, FsError::RootInVault { .. }), "{err}");
    let err = FsConnector::new(vec![base.join("missing")], base.join("v")).unwrap_err();
    assert!(matches!(err, FsError::Root { .. }), "{err}");
    fs::write(base.join("file"), b"").unwrap();
    let err = FsConnector::new(vec![base.join("file")], base.join("v")).unwrap_err();
    assert!(matches!(err, FsError::RootNotDir(_)), "{err}");
    assert!(matches!(
        FsConnector::new(vec![], base.join("v")).unwrap_err(),
        FsError::NoRoots
    ));
    let fs = FsConnector::new(vec![root.clone()], base.join("v")).unwrap();
    assert_eq!(fs.vault(), base.join("v"));
    assert_eq!(fs.name(), "fs");
}

// ---- path tricks -----------------------------------------------------------

enum Expect {
    Refused,
    Invalid(&'static str),
}

async fn refused(fs: &FsConnector, action: Value, expect: Expect) {
    let err = fs.plan("trick", &action).await.unwrap_err();
    match (&err, &expect) {
        (
            ConnectorError::Refuse {
                code: ReasonCode::OutsideRoots,
                ..
            },
            Expect::Refused,
        ) => {}
        (ConnectorError::Invalid { field, .. }, Expect::Invalid(f)) if field == f => {}
        _ => panic!("{action}: got {err:?}"),
    }
    // Capture re-checks everything on its own.
    let cap = fs.capture("trick", &proposal(action.clone())).await;
    assert!(cap.is_err(), "{action}: capture must refuse too");
}

#[tokio::test]
async fn path_tricks_are_refused_and_nothing_outside_changes() {
    let e = env(false);
    let r = e.root.display().to_string();
    let o = e.outside.display().to_string();
    fs::create_dir(e.root.join("d")).unwrap();
    fs::write(e.root.join("d/f"), b"inside").unwrap();
    symlink(&e.outside, e.root.join("to-outside")).unwrap();
    symlink(e.outside.join("secret"), e.root.join("secret-link")).unwrap();
    fs::hard_link(e.outside.join("secret"), e.root.join("hard")).unwrap();
    let before_outside = listing(&e.outside);
    let before_root = listing(&e.root);
    let del = |p: String| json!({"connector": "fs", "op": "delete", "path": p});
    let write = |p: String| json!({"connector": "fs", "op": "write", "path": p, "content_b64": b64(b"pwned")});

    // 1. relative
    refused(
        &e.fs,
        del("root/d/f".into()),
        Expect::Invalid("action.path"),
    )
    .await;
    // 2. `..` out of the root
    refused(
        &e.fs,
        del(format!("{r}/../outside/secret")),
        Expect::Refused,
    )
    .await;
    // 3. `..` that would stay inside is still refused
    refused(&e.fs, del(format!("{r}/d/../d/f")), Expect::Refused).await;
    // 4. NUL byte
    refused(
        &e.fs,
        del(format!("{r}/d/f\0/etc/passwd")),
        Expect::Invalid("action.path"),
    )
    .await;
    // 5. longer than PATH_MAX
    refused(
        &e.fs,
        del(format!("{r}/{}", "a/".repeat(2100) + "f")),
        Expect::Invalid("action.path"),
    )
    .await;
    // 6. trailing slash
    refused(
        &e.fs,
        del(format!("{r}/d/")),
        Expect::Invalid("action.path"),
    )
    .await;
    // 7. `//` and `.`
    refused(
        &e.fs,
        del(format!("{r}//d/f")),
        Expect::Invalid("action.path"),
    )
    .await;
    refused(
        &e.fs,
        del(format!("{r}/./d/f")),
        Expect::Invalid("action.path"),
    )
    .await;
    // 8. absolute, outside every root
    refused(&e.fs, del(format!("{o}/secret")), Expect::Refused).await;
    refused(&e.fs, del("/etc/passwd".into()), Expect::Refused).await;
    // 9. the vault and what is in it
    refused(&e.fs, del(e.vault.display().to_string()), Expect::Refused).await;
    refused(
        &e.fs,
        del(format!("{}/trick", e.vault.display())),
        Expect::Refused,
    )
    .await;
    // 10. a root itself, and what holds it
    refused(&e.fs, del(r.clone()), Expect::Refused).await;
    refused(
        &e.fs,
        del(e.root.parent().unwrap().display().to_string()),
        Expect::Refused,
    )
    .await;
    // 11. a link in a parent component
    refused(
        &e.fs,
        del(format!("{r}/to-outside/secret")),
        Expect::Refused,
    )
    .await;
    refused(
        &e.fs,
        write(format!("{r}/to-outside/secret")),
        Expect::Refused,
    )
    .await;
    // 12. writing through a final link
    refused(&e.fs, write(format!("{r}/secret-link")), Expect::Refused).await;
    // 13. a file with another hard link (here: one outside)
    refused(&e.fs, del(format!("{r}/hard")), Expect::Refused).await;
    refused(&e.fs, write(format!("{r}/hard")), Expect::Refused).await;
    // 14. a move out of the roots, or through a link
    let mv = |p: String, to: String| json!({"connector": "fs", "op": "move", "path": p, "to": to});
    refused(
        &e.fs,
        mv(format!("{r}/d/f"), format!("{o}/stolen")),
        Expect::Refused,
    )
    .await;
    refused(
        &e.fs,
        mv(format!("{r}/d/f"), format!("{r}/to-outside/stolen")),
        Expect::Refused,
    )
    .await;
    refused(
        &e.fs,
        mv(format!("{o}/secret"), format!("{r}/d/got")),
        Expect::Refused,
    )
    .await;
    // 15. a move into itself
    refused(
        &e.fs,
        mv(format!("{r}/d"), format!("{r}/d/inner")),
        Expect::Invalid("action.to"),
    )
    .await;
    // 16. a bad write id (it names the vault directory)
    let err =
        e.fs.plan("../x", &del(format!("{r}/d/f")))
            .await
            .unwrap_err();
    assert!(
        matches!(err, ConnectorError::Invalid { ref field, .. } if field == "write_id"),
        "{err:?}"
    );

    assert_eq!(
        listing(&e.outside),
        before_outside,
        "nothing outside the roots changed"
    );
    assert_eq!(
        listing(&e.root),
        before_root,
        "nothing inside changed either"
    );
}

#[tokio::test]
async fn a_link_swapped_into_a_parent_after_the_plan_is_refused() {
    let e = env(false);
    fs::create_dir(e.root.join("d")).unwrap();
    fs::write(e.root.join("d/secret"), b"inside").unwrap();
    let before_outside = listing(&e.outside);
    let action = json!({"connector": "fs", "op": "delete", "path": format!("{}/d/secret", e.root.display())});
    e.fs.plan("swap", &action).await.unwrap();
    // The attacker swaps `d` for a link to the outside, which has a `secret` too.
    fs::rename(e.root.join("d"), e.root.join("d.orig")).unwrap();
    symlink(&e.outside, e.root.join("d")).unwrap();
    let err =
        e.fs.capture("swap", &proposal(action.clone()))
            .await
            .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectorError::Refuse {
                code: ReasonCode::OutsideRoots,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(listing(&e.outside), before_outside);

    // And after a capture, before the restore: the restore refuses too.
    fs::remove_file(e.root.join("d")).unwrap();
    fs::rename(e.root.join("d.orig"), e.root.join("d")).unwrap();
    let (_, cap) = run(&e.fs, "swap2", action.clone()).await;
    fs::rename(e.root.join("d"), e.root.join("d.orig")).unwrap();
    symlink(&e.outside, e.root.join("d")).unwrap();
    fs::remove_file(e.outside.join("secret")).unwrap();
    let err =
        e.fs.restore("swap2", &proposal(action), &cap, None, true)
            .await
            .unwrap_err();
    assert!(matches!(err, ConnectorError::Refuse { .. }), "{err:?}");
    assert!(
        e.outside.join("secret").symlink_metadata().is_err(),
        "nothing was written outside"
    );
}

#[tokio::test]
async fn deleting_a_link_to_the_outside_removes_only_the_link() {
    let e = env(false);
    let link = e.root.join("secret-link");
    symlink(e.outside.join("secret"), &link).unwrap();
    let before_outside = listing(&e.outside);
    let action = json!({"connector": "fs", "op": "delete", "path": link.to_str().unwrap()});
    let (_, cap) = run(&e.fs, "lnk", action.clone()).await;
    assert!(link.symlink_metadata().is_err());
    assert_eq!(listing(&e.outside), before_outside);
    let report =
        e.fs.restore("lnk", &proposal(action), &cap, None, false)
            .await
            .unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(fs::read_link(&link).unwrap(), e.outside.join("secret"));
}

#[tokio::test]
async fn execute_without_a_capture_does_nothing() {
    let e = env(false);
    let f = e.root.join("f");
    fs::write(&f, b"x").unwrap();
    let p = proposal(
        json!({"connector": "fs", "op": "write", "path": f.to_str().unwrap(), "content_b64": b64(b"y")}),
    );
    assert!(e.fs.execute("nocap", &p, &Value::Null).await.is_err());
    assert_eq!(fs::read(&f).unwrap(), b"x");
}

#[tokio::test]
async fn captured_reads_back_the_record_capture_returned() {
    for copy in [false, true] {
        let e = env(copy);
        let f = e.root.join("notes.txt");
        fs::write(&f, b"v1").unwrap();
        let p = proposal(
            json!({"connector": "fs", "op": "write", "path": f.to_str().unwrap(), "content_b64": b64(b"v2")}),
        );
        assert_eq!(e.fs.captured("wc", &p).await.unwrap(), None);
        let cap = e.fs.capture("wc", &p).await.unwrap();
        assert!(cap["manifest_sha256"].is_string(), "{cap}");
        assert_eq!(e.fs.captured("wc", &p).await.unwrap(), Some(cap.clone()));
        // The record read back serves the rest of the write as the one
        // returned would.
        e.fs.execute("wc", &p, &cap).await.unwrap();
        let r = e.fs.restore("wc", &p, &cap, None, false).await.unwrap();
        assert!(r.verified, "{r:?}");
        assert_eq!(fs::read(&f).unwrap(), b"v1");
        // Another action under the same id is a mistake, not a capture.
        let other =
            proposal(json!({"connector": "fs", "op": "delete", "path": f.to_str().unwrap()}));
        let err = e.fs.captured("wc", &other).await.unwrap_err();
        assert!(
            matches!(err, ConnectorError::Invalid { ref field, .. } if field == "write_id"),
            "{err:?}"
        );
    }
}

#[test]
fn a_failed_fsync_is_a_durability_failure_and_nothing_else_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = rustix::fs::openat(
        rustix::fs::CWD,
        tmp.path(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    // fsync of a FIFO fails (EINVAL): a real failed fsync, no mock.
    rustix::fs::mkfifoat(&dir, "fifo", rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
    let fifo = rustix::fs::openat(
        &dir,
        "fifo",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let err = tree::fsync(&fifo).unwrap_err();
    assert!(tree::is_fsync_failure(&err), "{err}");
    let mapped = io("syncing the vault")(err);
    assert!(
        matches!(mapped, ConnectorError::Durability(_)),
        "{mapped:?}"
    );
    let other = io("reading")(std::io::Error::from(std::io::ErrorKind::NotFound));
    assert!(matches!(other, ConnectorError::Io(_)), "{other:?}");
}

#[tokio::test]
async fn a_restore_in_progress_is_not_a_capture_to_rely_on() {
    let e = env(false);
    let f = e.root.join("f");
    fs::write(&f, b"x").unwrap();
    let action = json!({"connector": "fs", "op": "delete", "path": f.to_str().unwrap()});
    let (plan, cap) = run(&e.fs, "wj", action.clone()).await;
    let ev = plan.step.unwrap().requires.first().unwrap().clone();
    // A restore completes the seal before its journal.
    assert!(e.fs.settle_seals(SETTLE));
    // What a crash right after the journal leaves: the decision, nothing done.
    fs::write(
        e.vault.join("wj/restoring.json"),
        serde_json::to_vec(&json!({"version": 1, "op": "delete", "force": false,
            "steps": [{"put_back": {"at": "path"}}], "decided_at": "2024-01-01T00:00:00Z"}))
        .unwrap(),
    )
    .unwrap();
    let seen = e.fs.observe("wj", &ev).await.unwrap();
    assert!(!seen.present, "{seen:?}");
    let r =
        e.fs.restore("wj", &proposal(action), &cap, None, false)
            .await
            .unwrap();
    assert!(r.verified, "{r:?}");
    assert_eq!(fs::read(&f).unwrap(), b"x");
}

#[tokio::test]
async fn restores_by_copy_as_from_a_vault_on_another_file_system() {
    for capture_by_copy in [false, true] {
        let e = env(capture_by_copy);
        let fs = e.fs.clone().with_copy_restore(true);
        let proj = e.root.join("proj");
        project(&proj);
        let original = listing(&proj);
        let action = json!({"connector": "fs", "op": "delete", "path": proj.to_str().unwrap()});
        let (_, cap) = run(&fs, "wcopy", action.clone()).await;
        let p = proposal(action);
        let r = fs.restore("wcopy", &p, &cap, None, false).await.unwrap();
        assert!(r.verified, "{r:?}");
        assert!(
            r.items[0].detail.as_deref().unwrap().contains("by copy"),
            "{r:?}"
        );
        assert_eq!(listing(&proj), original);
        // The vault's copy goes once the restored tree is verified.
        assert!(!e.vault.join("wcopy/data").exists());
        assert!(!e.vault.join("wcopy/data.copied").exists());
        let again = fs.restore("wcopy", &p, &cap, None, false).await.unwrap();
        assert!(again.verified, "{again:?}");
    }
}

#[test]
fn accepts_only_its_own_restore_step() {
    let e = env(false);
    assert!(e
        .fs
        .accepts_step(&json!({"connector": "fs", "op": "restore"})));
    for op in [
        json!({"connector": "fs", "op": "noop"}),
        json!({"connector": "fs", "op": "restore", "from": "/tmp"}),
        json!({"connector": "sql", "op": "restore"}),
        json!("restore"),
    ] {
        assert!(!e.fs.accepts_step(&op), "{op}");
    }
}

// ---- the seal -----------------------------------------------------------------

const SETTLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Flips one bit of the first byte of `p` in place, then puts its times
/// back: size, mtime and inode stay what they were, so only contents tell.
fn flip_byte(p: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let before = fs::symlink_metadata(p).unwrap();
    let first = fs::read(p).unwrap()[0];
    let mut f = fs::OpenOptions::new().write(true).open(p).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&[first ^ 0x01]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let ts = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: before.atime(),
            tv_nsec: before.atime_nsec(),
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: before.mtime(),
            tv_nsec: before.mtime_nsec(),
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &ts,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    let after = fs::symlink_metadata(p).unwrap();
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
    assert_ne!(fs::read(p).unwrap()[0], first);
}

fn sha_of(p: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(p).unwrap()))
}

fn read_seal(vault: &Path, id: &str) -> Seal {
    serde_json::from_slice(&fs::read(vault.join(id).join("seal.json")).unwrap()).unwrap()
}

/// Deletes `proj` (a project) through the connector; returns the proposal
/// and the capture record.
async fn delete_project(e: &Env, id: &str) -> (Proposal, Value, BTreeMap<String, String>) {
    let proj = e.root.join("proj");
    project(&proj);
    let original = listing(&proj);
    let action = json!({"connector": "fs", "op": "delete", "path": proj.to_str().unwrap()});
    let (_, cap) = run(&e.fs, id, action.clone()).await;
    (proposal(action), cap, original)
}

#[tokio::test]
async fn a_rename_capture_is_sealed_in_the_background() {
    let e = env(false);
    let (_, cap, original) = delete_project(&e, "ws1").await;
    assert_eq!(cap["method"], "rename");
    assert!(e.fs.settle_seals(SETTLE));
    let seal = read_seal(&e.vault, "ws1");
    let manifest = fs::read(e.vault.join("ws1/manifest.json")).unwrap();
    assert_eq!(seal.manifest_sha256, hex::encode(Sha256::digest(&manifest)));
    assert_eq!(cap["manifest_sha256"], seal.manifest_sha256);
    assert_eq!(seal.method, Method::Rename);
    let m: Manifest = serde_json::from_slice(&manifest).unwrap();
    let files: Vec<&str> = m
        .captured
        .iter()
        .filter(|x| x.kind == Kind::File)
        .map(|x| x.path.as_str())
        .collect();
    let sealed: Vec<&str> = seal.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(sealed, files, "every file entry, in the manifest's order");
    // Each hash is the file's, computed independently of the crate.
    for f in &seal.files {
        let rel = f.path.replace("%25", "%");
        let want = sha_of(&e.vault.join("ws1/data").join(&rel));
        assert_eq!(f.sha256, want, "{}", f.path);
    }
    assert!(original.contains_key("src/main.rs"));
    // The reviewer sees how the evidence is verified.
    let ev = evidence("vault-ws1", "fs:/v");
    let o = e.fs.observe("ws1", &ev).await.unwrap();
    assert!(o.present, "{o:?}");
    assert!(
        o.detail.as_deref().unwrap().contains("contents sealed"),
        "{o:?}"
    );
}

#[tokio::test]
async fn a_copy_capture_is_sealed_at_once_from_its_hashes() {
    let e = env(true);
    let (_, cap, _) = delete_project(&e, "ws2").await;
    assert_eq!(cap["method"], "copy");
    // No waiting: the capture wrote it.
    let seal = read_seal(&e.vault, "ws2");
    assert_eq!(seal.method, Method::Copy);
    let m: Manifest =
        serde_json::from_slice(&fs::read(e.vault.join("ws2/manifest.json")).unwrap()).unwrap();
    for f in &seal.files {
        let entry = m.captured.iter().find(|x| x.path == f.path).unwrap();
        assert_eq!(entry.sha256.as_deref(), Some(f.sha256.as_str()));
    }
}

/// A byte flipped in the vault (size and mtime kept): the restore refuses
/// the item, names the file and both hashes, and changes nothing.
async fn a_flipped_byte_in_the_vault_is_not_restored(copy: bool, copy_restore: bool) {
    let e = env(copy);
    let fs_ = e.fs.clone().with_copy_restore(copy_restore);
    let (p, cap, _) = delete_project(&e, "ws3").await;
    assert!(fs_.settle_seals(SETTLE));
    let victim = e.vault.join("ws3/data/src/main.rs");
    let sealed = sha_of(&victim);
    flip_byte(&victim);
    let flipped = sha_of(&victim);
    let vault_before = listing(&e.vault.join("ws3"));
    let r = fs_.restore("ws3", &p, &cap, None, false).await.unwrap();
    assert!(!r.verified, "{r:?}");
    assert_eq!(r.items.len(), 1, "{r:?}");
    let it = &r.items[0];
    assert_eq!(it.status, RestoreStatus::Failed, "{r:?}");
    let detail = it.detail.as_deref().unwrap();
    assert!(detail.contains("`src/main.rs`"), "{detail}");
    assert!(
        detail.contains(&sealed) && detail.contains(&flipped),
        "{detail}"
    );
    assert!(
        e.root.join("proj").symlink_metadata().is_err(),
        "nothing was put back"
    );
    assert_eq!(
        listing(&e.vault.join("ws3")),
        vault_before,
        "the vault keeps its copy, untouched"
    );
    assert!(!e.vault.join("ws3/restored.json").exists());
    // Asked again, it refuses again: the refusal is not an end.
    let again = fs_.restore("ws3", &p, &cap, None, true).await.unwrap();
    assert_eq!(again.items[0].status, RestoreStatus::Failed, "{again:?}");
    assert!(e.root.join("proj").symlink_metadata().is_err());
}

#[tokio::test]
async fn a_flipped_byte_in_a_renamed_capture_is_refused() {
    a_flipped_byte_in_the_vault_is_not_restored(false, false).await;
}

#[tokio::test]
async fn a_flipped_byte_in_a_copied_capture_is_refused() {
    a_flipped_byte_in_the_vault_is_not_restored(true, false).await;
}

#[tokio::test]
async fn a_flipped_byte_is_refused_when_restoring_by_copy() {
    a_flipped_byte_in_the_vault_is_not_restored(false, true).await;
}

#[tokio::test]
async fn a_flipped_byte_under_a_write_leaves_the_written_file() {
    let e = env(false);
    let file = e.root.join("config.toml");
    fs::write(&file, b"old = true\n").unwrap();
    let action = json!({"connector": "fs", "op": "write", "path": file.to_str().unwrap(),
                        "content_b64": b64(b"new = true\n")});
    let (_, cap) = run(&e.fs, "ws4", action.clone()).await;
    assert!(e.fs.settle_seals(SETTLE));
    flip_byte(&e.vault.join("ws4/data"));
    let r =
        e.fs.restore("ws4", &proposal(action), &cap, None, false)
            .await
            .unwrap();
    assert_eq!(r.items[0].status, RestoreStatus::Failed, "{r:?}");
    assert_eq!(
        fs::read(&file).unwrap(),
        b"new = true\n",
        "the target is as it was: the written file was not removed"
    );
}

#[tokio::test]
async fn without_a_seal_the_restore_puts_back_and_says_it_did_not_verify() {
    let e = env(false);
    let (p, cap, original) = delete_project(&e, "ws5").await;
    assert!(e.fs.settle_seals(SETTLE));
    // What a vault from before seals, or a crash before sealing, holds.
    fs::remove_file(e.vault.join("ws5/seal.json")).unwrap();
    let ev = evidence("vault-ws5", "fs:/v");
    let o = e.fs.observe("ws5", &ev).await.unwrap();
    assert!(
        o.present && o.detail.as_deref().unwrap().contains("not sealed"),
        "{o:?}"
    );
    let r = e.fs.restore("ws5", &p, &cap, None, false).await.unwrap();
    assert!(!r.verified, "{r:?}");
    assert_eq!(r.items[0].status, RestoreStatus::Unverified, "{r:?}");
    let detail = r.items[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("contents not verified: the vault holds no seal"),
        "{detail}"
    );
    assert_eq!(listing(&e.root.join("proj")), original, "it was put back");
    // Asked again it verifies what is there, and still cannot vouch for
    // the contents.
    let again = e.fs.restore("ws5", &p, &cap, None, false).await.unwrap();
    assert_eq!(
        again.items[0].status,
        RestoreStatus::Unverified,
        "{again:?}"
    );
}

#[tokio::test]
async fn a_seal_a_crash_left_unwritten_is_completed_at_start() {
    let e = env(false);
    let (p, cap, original) = delete_project(&e, "ws6").await;
    assert!(e.fs.settle_seals(SETTLE));
    let w = e.vault.join("ws6");
    let sealed = read_seal(&e.vault, "ws6");
    // What a crash during sealing leaves: no seal, a torn temporary one.
    fs::remove_file(w.join("seal.json")).unwrap();
    fs::write(w.join("seal.json.tmp"), b"{\"torn").unwrap();
    // Another write whose restore had begun: never sealed.
    let f = e.root.join("f");
    fs::write(&f, b"x").unwrap();
    let action = json!({"connector": "fs", "op": "delete", "path": f.to_str().unwrap()});
    run(&e.fs, "ws7", action).await;
    assert!(e.fs.settle_seals(SETTLE));
    fs::remove_file(e.vault.join("ws7/seal.json")).unwrap();
    fs::write(e.vault.join("ws7/restoring.json"), b"{}").unwrap();
    // A third whose tree changed in the vault after the capture: a seal
    // would bless the change, so none is written, and it says why.
    let g = e.root.join("g");
    fs::write(&g, b"12345").unwrap();
    let action = json!({"connector": "fs", "op": "delete", "path": g.to_str().unwrap()});
    run(&e.fs, "ws8", action).await;
    assert!(e.fs.settle_seals(SETTLE));
    fs::remove_file(e.vault.join("ws8/seal.json")).unwrap();
    fs::write(e.vault.join("ws8/data"), b"123456").unwrap();

    // A restart: the connector starts on the same vault.
    let started = FsConnector::new(vec![e.root.clone()], e.vault.clone()).unwrap();
    assert!(started.settle_seals(SETTLE));
    let again = read_seal(&e.vault, "ws6");
    assert_eq!(again.files, sealed.files);
    assert_eq!(again.manifest_sha256, sealed.manifest_sha256);
    assert!(!w.join("seal.json.tmp").exists());
    assert!(
        !e.vault.join("ws7/seal.json").exists(),
        "no seal once a restore began"
    );
    assert!(
        !e.vault.join("ws8/seal.json").exists(),
        "no seal of a changed tree"
    );
    let why = fs::read_to_string(e.vault.join("ws8/unsealed.json")).unwrap();
    assert!(why.contains("no longer matches its manifest"), "{why}");
    let r = started.restore("ws6", &p, &cap, None, false).await.unwrap();
    assert!(r.verified, "{r:?}");
    assert!(
        r.items[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("match the seal"),
        "{r:?}"
    );
    assert_eq!(listing(&e.root.join("proj")), original);
}

#[tokio::test]
async fn a_restore_right_after_the_capture_completes_the_seal_first() {
    // However the race with the sealer goes, the restore verifies.
    for i in 0..5 {
        let e = env(false);
        let id = format!("ws9-{i}");
        let (p, cap, original) = delete_project(&e, &id).await;
        let r = e.fs.restore(&id, &p, &cap, None, false).await.unwrap();
        assert!(r.verified, "{r:?}");
        assert_eq!(listing(&e.root.join("proj")), original);
        assert!(e.vault.join(&id).join("seal.json").exists());
    }
}

#[tokio::test]
async fn a_restored_tree_changed_in_place_no_longer_verifies() {
    let e = env(false);
    let (p, cap, _) = delete_project(&e, "ws10").await;
    let r = e.fs.restore("ws10", &p, &cap, None, false).await.unwrap();
    assert!(r.verified, "{r:?}");
    flip_byte(&e.root.join("proj/src/main.rs"));
    let again = e.fs.restore("ws10", &p, &cap, None, false).await.unwrap();
    assert_eq!(again.items[0].status, RestoreStatus::Mismatch, "{again:?}");
    assert!(
        again.items[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("`src/main.rs` has sha256"),
        "{again:?}"
    );
}
