//! Every crash point of `restore`, cut in-process: for each op (delete,
//! write of a new file, write over a file, move to a taken and to a free
//! name), with `force` over drift where drift applies, by rename, by copy,
//! and from a vault on another file system (`/dev/shm`, when it is one), a
//! restore is cut at the point (the point makes it return there,
//! which is what a crash there leaves on disk), then run again. It must
//! finish and verify, leave the tree byte-identical to before the write,
//! keep nothing of its own displaced, and a third call must only verify.
//! The points hit, over all cases, must be exactly `RESTORE_CRASH_POINTS`:
//! a point added without a case here fails.
//!
//! fail-rs's registry is global to the process: these tests live in a
//! binary of their own (a restore in a parallel unit test would run into a
//! configured point) and hold `FailScenario`, a global lock, while they run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use recourse_client::{RestoreStatus, RollbackReport};
use recourse_connector::{Connector, ConnectorError};
use recourse_connector_fs::{
    FsConnector, RESTORE_COPY_CRASH_POINTS, RESTORE_CRASH_POINTS, SEAL_CRASH_POINTS,
};
use recourse_core::Proposal;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

struct Env {
    _tmp: TempDir,
    _elsewhere: Option<TempDir>,
    root: PathBuf,
    vault: PathBuf,
    fs: FsConnector,
}

/// How the capture and the restore move trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// By rename (the vault shares the root's file system).
    Rename,
    /// By copy, forced (`with_copy_mode`, `with_copy_restore`).
    Copy,
    /// By copy because the vault is on another file system (`/dev/shm`).
    OtherFs,
}

/// The vault's parent on another file system than the temp dir, if the
/// machine has one.
fn elsewhere() -> Option<PathBuf> {
    let shm = Path::new("/dev/shm");
    let a = shm.metadata().ok()?;
    let b = std::env::temp_dir().metadata().ok()?;
    (a.is_dir() && a.dev() != b.dev()).then(|| shm.to_path_buf())
}

fn modes() -> Vec<Mode> {
    let mut m = vec![Mode::Rename, Mode::Copy];
    if elsewhere().is_some() {
        m.push(Mode::OtherFs);
    } else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: no /dev/shm on another file system for a vault elsewhere"
        );
    }
    m
}

fn env(mode: Mode) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("root");
    fs::create_dir(&root).unwrap();
    let other = match (mode, elsewhere()) {
        (Mode::OtherFs, Some(dir)) => Some(tempfile::tempdir_in(dir).unwrap()),
        _ => None,
    };
    let vault = match &other {
        Some(o) => o.path().canonicalize().unwrap().join("vault"),
        None => base.join("vault"),
    };
    let copy = mode == Mode::Copy;
    let fs = FsConnector::new(vec![root.clone()], vault.clone())
        .unwrap()
        .with_copy_mode(copy)
        .with_copy_restore(copy);
    Env {
        _tmp: tmp,
        _elsewhere: other,
        root,
        vault,
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

/// A small project: a git directory with an executable hook, a link, an
/// empty directory, odd modes, old times.
fn project(dir: &Path) {
    fs::create_dir_all(dir.join(".git/hooks")).unwrap();
    fs::write(dir.join(".git/HEAD"), b"ref: refs/heads/main\n").unwrap();
    fs::write(dir.join(".git/hooks/pre-commit"), b"#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(
        dir.join(".git/hooks/pre-commit"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir_all(dir.join("src/empty")).unwrap();
    fs::write(dir.join("src/main.rs"), vec![b'x'; 10_000]).unwrap();
    fs::write(dir.join("src/key.pem"), b"private").unwrap();
    fs::set_permissions(dir.join("src/key.pem"), fs::Permissions::from_mode(0o600)).unwrap();
    symlink("src/main.rs", dir.join("main-link")).unwrap();
    let mut all: Vec<PathBuf> = Vec::new();
    collect(dir, &mut all);
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in all.iter().enumerate() {
        set_time(p, 1_000_000_000 + i as i64 * 1000);
    }
    set_time(dir, 999_000_000);
}

/// An independent listing (std only): type, mode, size, mtime, link
/// target, content hash, per relative path; the directory itself left out
/// (its mtime moves as entries come and go).
fn below(p: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut all = Vec::new();
    collect(p, &mut all);
    for e in all {
        out.insert(
            e.strip_prefix(p).unwrap().display().to_string(),
            describe(&e),
        );
    }
    out
}

fn describe(e: &Path) -> String {
    let m = e.symlink_metadata().unwrap();
    let ft = m.file_type();
    let extra = if ft.is_symlink() {
        format!("-> {}", fs::read_link(e).unwrap().display())
    } else if ft.is_file() {
        hex::encode(Sha256::digest(fs::read(e).unwrap()))
    } else {
        String::new()
    };
    let size = if ft.is_dir() { 0 } else { m.size() };
    let mode = if ft.is_symlink() { 0 } else { m.mode() };
    format!("{mode:o} {size} {}.{} {extra}", m.mtime(), m.mtime_nsec())
}

/// The entry at `p` and everything below it. A directory's own mtime is
/// left out: a rename into another directory may move it.
fn whole(p: &Path) -> BTreeMap<String, String> {
    let mut out = below(p);
    let m = p.symlink_metadata().unwrap();
    let top = if m.is_dir() {
        format!("dir {:o}", m.mode())
    } else {
        describe(p)
    };
    out.insert(String::new(), top);
    out
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Delete,
    /// Forced over a newcomer at the deleted path.
    DeleteDrift,
    WriteNew,
    /// Forced over the written file, changed since.
    WriteNewDrift,
    WriteOver,
    /// Forced over the written file, changed since.
    WriteOverDrift,
    /// To a name that held a tree (captured).
    Move,
    /// To a free name (nothing captured).
    MoveFree,
    /// Forced over a newcomer at the moved-from path.
    MoveDrift,
    /// Forced: the moved tree was taken from `to` and something new put
    /// there; it cannot be moved back, the captured tree still can.
    MoveLost,
}

const CASES: [Case; 10] = [
    Case::Delete,
    Case::DeleteDrift,
    Case::WriteNew,
    Case::WriteNewDrift,
    Case::WriteOver,
    Case::WriteOverDrift,
    Case::Move,
    Case::MoveFree,
    Case::MoveDrift,
    Case::MoveLost,
];

impl Case {
    /// Something stood at the captured path: the vault holds it, sealed.
    fn captures(self) -> bool {
        !matches!(self, Case::WriteNew | Case::WriteNewDrift | Case::MoveFree)
    }

    fn forced(self) -> bool {
        matches!(
            self,
            Case::DeleteDrift
                | Case::WriteNewDrift
                | Case::WriteOverDrift
                | Case::MoveDrift
                | Case::MoveLost
        )
    }

    /// Builds the tree and returns the action.
    fn setup(self, root: &Path) -> Value {
        let s = |p: PathBuf| p.to_str().unwrap().to_owned();
        match self {
            Case::Delete | Case::DeleteDrift => {
                project(&root.join("proj"));
                json!({"connector": "fs", "op": "delete", "path": s(root.join("proj"))})
            }
            Case::WriteNew | Case::WriteNewDrift => {
                json!({"connector": "fs", "op": "write", "path": s(root.join("fresh.txt")), "content_b64": b64(b"hi")})
            }
            Case::WriteOver | Case::WriteOverDrift => {
                let f = root.join("config.toml");
                fs::write(&f, b"old = true\n").unwrap();
                fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
                set_time(&f, 1_100_000_000);
                json!({"connector": "fs", "op": "write", "path": s(f), "content_b64": b64(b"new = true\n")})
            }
            Case::Move | Case::MoveDrift | Case::MoveLost => {
                project(&root.join("proj"));
                let dest = root.join("dest");
                fs::create_dir(&dest).unwrap();
                fs::write(dest.join("old-notes.txt"), b"keep me").unwrap();
                set_time(&dest.join("old-notes.txt"), 1_200_000_000);
                set_time(&dest, 1_200_000_000);
                json!({"connector": "fs", "op": "move", "path": s(root.join("proj")), "to": s(dest)})
            }
            Case::MoveFree => {
                project(&root.join("proj"));
                json!({"connector": "fs", "op": "move", "path": s(root.join("proj")), "to": s(root.join("elsewhere"))})
            }
        }
    }

    /// After the write: the drift a forced restore goes over. Returns the
    /// newcomer's path, whose entries must end up displaced.
    fn drift(self, root: &Path) -> Option<PathBuf> {
        match self {
            Case::DeleteDrift => {
                let p = root.join("proj");
                fs::create_dir(&p).unwrap();
                fs::write(p.join("new.txt"), b"written after the delete").unwrap();
                Some(p)
            }
            Case::WriteNewDrift => {
                let p = root.join("fresh.txt");
                fs::write(&p, b"by a human").unwrap();
                Some(p)
            }
            Case::WriteOverDrift => {
                let p = root.join("config.toml");
                fs::write(&p, b"by a human").unwrap();
                Some(p)
            }
            Case::MoveDrift => {
                let p = root.join("proj");
                fs::write(&p, b"a new proj").unwrap();
                Some(p)
            }
            Case::MoveLost => {
                fs::rename(root.join("dest"), root.join("stolen")).unwrap();
                let p = root.join("dest");
                fs::write(&p, b"a new dest").unwrap();
                Some(p)
            }
            _ => None,
        }
    }

    /// The tree the restore must leave, from the tree before the write.
    fn expected(self, before: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        if self != Case::MoveLost {
            return before.clone();
        }
        // The moved tree is where the drift put it; `dest` is back.
        before
            .iter()
            .map(|(k, v)| match k.strip_prefix("proj") {
                Some(rest) => (format!("stolen{rest}"), v.clone()),
                None => (k.clone(), v.clone()),
            })
            .collect()
    }

    fn check_report(self, r: &RollbackReport, what: &str) {
        if self == Case::MoveLost {
            assert!(!r.verified, "{what}: {r:?}");
            assert_eq!(r.items.len(), 2, "{what}: {r:?}");
            assert_ne!(r.items[0].status, RestoreStatus::Restored, "{what}: {r:?}");
            assert_eq!(r.items[1].status, RestoreStatus::Restored, "{what}: {r:?}");
        } else {
            assert!(r.verified, "{what}: {r:?}");
            assert!(
                r.items.iter().all(|i| i.status == RestoreStatus::Restored),
                "{what}: {r:?}"
            );
        }
        assert_eq!(r.forced, self.forced(), "{what}: {r:?}");
    }
}

fn is_cut(e: &ConnectorError, point: &str) -> bool {
    matches!(e, ConnectorError::Io(m) if m.contains(&format!("crash point `{point}`")))
}

struct Prepared {
    e: Env,
    id: String,
    p: Proposal,
    cap: Value,
    before: BTreeMap<String, String>,
    newcomer: Option<BTreeMap<String, String>>,
}

/// capture + execute, then the drift, as the gate would see it.
async fn prepare(case: Case, mode: Mode) -> Prepared {
    let e = env(mode);
    let id = "w1".to_owned();
    let action = case.setup(&e.root);
    let before = below(&e.root);
    let p = proposal(action);
    e.fs.plan(&id, &p.action).await.unwrap();
    let cap = e.fs.capture(&id, &p).await.unwrap();
    // The record the gate would read back after a crash is the same.
    assert_eq!(e.fs.captured(&id, &p).await.unwrap(), Some(cap.clone()));
    e.fs.execute(&id, &p, &cap).await.unwrap();
    let newcomer = case.drift(&e.root).map(|n| whole(&n));
    if case.forced() {
        // Without force the drift stops the restore, and nothing changes.
        let now = below(&e.root);
        let r = e.fs.restore(&id, &p, &cap, None, false).await.unwrap();
        assert!(
            r.items.iter().any(|i| i.status == RestoreStatus::Drift),
            "{case:?}: {r:?}"
        );
        assert_eq!(
            below(&e.root),
            now,
            "{case:?}: a drift report changes nothing"
        );
    }
    Prepared {
        e,
        id,
        p,
        cap,
        before,
        newcomer,
    }
}

/// The state a finished restore must leave, and a further call that only
/// verifies.
async fn check_finished(case: Case, x: &Prepared, r: &RollbackReport, what: &str) {
    let e = &x.e;
    case.check_report(r, what);
    assert_eq!(below(&e.root), case.expected(&x.before), "{what}: the tree");
    let w = e.vault.join(&x.id);
    let mut want: BTreeSet<String> = ["manifest.json", "restoring.json", "restored.json"]
        .into_iter()
        .map(String::from)
        .collect();
    if case.captures() {
        // The restore verified against it, and keeps it.
        want.insert("seal.json".into());
    }
    if let Some(n) = &x.newcomer {
        want.insert("displaced-1".into());
        assert_eq!(
            &whole(&w.join("displaced-1")),
            n,
            "{what}: the newcomer, kept whole"
        );
    }
    assert_eq!(
        names(&w),
        want,
        "{what}: the vault keeps no capture and no partial work, and displaced only the newcomer"
    );
    let again =
        e.fs.restore(&x.id, &x.p, &x.cap, None, case.forced())
            .await
            .unwrap();
    case.check_report(&again, &format!("{what}, called again"));
    assert!(
        again
            .items
            .iter()
            .filter(|i| i.status == RestoreStatus::Restored)
            .all(|i| i
                .detail
                .as_deref()
                .unwrap_or_default()
                .contains("already restored")),
        "{what}: a finished restore only verifies: {again:?}"
    );
    assert_eq!(
        below(&e.root),
        case.expected(&x.before),
        "{what}: verify only"
    );
    assert_eq!(names(&w), want, "{what}: verify only");
}

#[tokio::test]
async fn every_restore_crash_point_is_resumed() {
    let _scenario = fail::FailScenario::setup();
    let mut hit: BTreeSet<&str> = BTreeSet::new();
    for mode in modes() {
        for case in CASES {
            // The uncut restore, for reference.
            let x = prepare(case, mode).await;
            let r =
                x.e.fs
                    .restore(&x.id, &x.p, &x.cap, None, case.forced())
                    .await
                    .unwrap();
            check_finished(case, &x, &r, &format!("{case:?} {mode:?} uncut")).await;

            let mut on_path = Vec::new();
            for &point in RESTORE_CRASH_POINTS {
                let what = format!("{case:?} {mode:?} cut at {point}");
                let x = prepare(case, mode).await;
                fail::cfg(point, "return").unwrap();
                let first =
                    x.e.fs
                        .restore(&x.id, &x.p, &x.cap, None, case.forced())
                        .await;
                fail::remove(point);
                let r = match first {
                    Err(err) if is_cut(&err, point) => {
                        hit.insert(point);
                        assert!(
                            mode != Mode::Rename || !RESTORE_COPY_CRASH_POINTS.contains(&point),
                            "{what}: a restore by rename passes no copy point"
                        );
                        on_path.push(point);
                        x.e.fs
                            .restore(&x.id, &x.p, &x.cap, None, case.forced())
                            .await
                            .unwrap_or_else(|err| panic!("{what}: the resumed restore: {err}"))
                    }
                    Err(err) => panic!("{what}: {err}"),
                    // Not on this case's path: it ran to the end.
                    Ok(r) => r,
                };
                check_finished(case, &x, &r, &what).await;
            }
            assert!(
                on_path.contains(&"fs.restore.after_journal")
                    && on_path.contains(&"fs.restore.before_marker"),
                "{case:?} {mode:?}: {on_path:?}"
            );

            // A crash at every point of the path, one after the other: each
            // call resumes the one before and is cut at the next point.
            let what = format!("{case:?} {mode:?} cut at every point in turn");
            let x = prepare(case, mode).await;
            for point in &on_path {
                fail::cfg(*point, "return").unwrap();
            }
            let mut cuts = Vec::new();
            let r = loop {
                match x
                    .e
                    .fs
                    .restore(&x.id, &x.p, &x.cap, None, case.forced())
                    .await
                {
                    Ok(r) => break r,
                    Err(err) => {
                        let Some(point) = on_path.iter().find(|p| is_cut(&err, p)) else {
                            panic!("{what}: {err}");
                        };
                        fail::remove(point);
                        cuts.push(*point);
                    }
                }
            };
            assert_eq!(cuts, on_path, "{what}: each point is passed once");
            check_finished(case, &x, &r, &what).await;
        }
    }
    let all: BTreeSet<&str> = RESTORE_CRASH_POINTS.iter().copied().collect();
    assert_eq!(
        hit, all,
        "every crash point must be reached by some case (add a case for a new point)"
    );
}

#[tokio::test]
async fn a_forced_restore_cut_short_is_finished_as_decided() {
    let _scenario = fail::FailScenario::setup();
    for mode in modes() {
        let x = prepare(Case::DeleteDrift, mode).await;
        fail::cfg("fs.restore.after_journal", "return").unwrap();
        let err =
            x.e.fs
                .restore(&x.id, &x.p, &x.cap, None, true)
                .await
                .unwrap_err();
        fail::remove("fs.restore.after_journal");
        assert!(is_cut(&err, "fs.restore.after_journal"), "{err}");
        // The decision is durable: a call without force finishes it rather
        // than taking the newcomer for drift again.
        let r =
            x.e.fs
                .restore(&x.id, &x.p, &x.cap, None, false)
                .await
                .unwrap();
        check_finished(Case::DeleteDrift, &x, &r, "resumed without force").await;
    }
}

/// Cuts a restore at `point`; panics if it is not reached.
async fn cut(x: &Prepared, point: &str, force: bool) {
    fail::cfg(point, "return").unwrap();
    let r = x.e.fs.restore(&x.id, &x.p, &x.cap, None, force).await;
    fail::remove(point);
    match r {
        Err(err) if is_cut(&err, point) => {}
        other => panic!("{point}: {other:?}"),
    }
}

#[tokio::test]
async fn what_the_restore_put_back_is_never_displaced() {
    let _scenario = fail::FailScenario::setup();
    for mode in modes() {
        // A forced restore decides to displace the newcomer, and is cut.
        let x = prepare(Case::DeleteDrift, mode).await;
        cut(&x, "fs.restore.after_journal", true).await;
        // The newcomer goes away on its own; the next call puts the tree
        // back (nothing to displace) and is cut before its marker.
        fs::remove_dir_all(x.e.root.join("proj")).unwrap();
        cut(&x, "fs.restore.before_marker", true).await;
        // The displacement in the journal must not take the restored tree.
        let r =
            x.e.fs
                .restore(&x.id, &x.p, &x.cap, None, true)
                .await
                .unwrap();
        assert!(r.verified, "{mode:?}: {r:?}");
        assert_eq!(below(&x.e.root), x.before, "{mode:?}");
        assert!(
            !x.e.vault.join(&x.id).join("displaced-1").exists(),
            "{mode:?}: nothing was displaced"
        );
    }
}

#[tokio::test]
async fn what_appears_during_an_interrupted_restore_is_drift() {
    let _scenario = fail::FailScenario::setup();
    for mode in modes() {
        let x = prepare(Case::WriteOver, mode).await;
        cut(&x, "fs.restore.after_remove_written", false).await;
        let f = x.e.root.join("config.toml");
        fs::write(&f, b"written by someone meanwhile").unwrap();
        let r =
            x.e.fs
                .restore(&x.id, &x.p, &x.cap, None, false)
                .await
                .unwrap();
        assert!(!r.verified, "{mode:?}: {r:?}");
        assert_eq!(r.items[0].status, RestoreStatus::Drift, "{mode:?}: {r:?}");
        assert_eq!(fs::read(&f).unwrap(), b"written by someone meanwhile");
        // Forced, the newcomer is kept in the vault and the restore ends.
        let r =
            x.e.fs
                .restore(&x.id, &x.p, &x.cap, None, true)
                .await
                .unwrap();
        assert!(r.verified && r.forced, "{mode:?}: {r:?}");
        assert_eq!(below(&x.e.root), x.before, "{mode:?}");
        assert_eq!(
            fs::read(x.e.vault.join(&x.id).join("displaced-1")).unwrap(),
            b"written by someone meanwhile"
        );
    }
}

const SETTLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Flips one bit of the first byte of `p`, keeping its size and times.
fn flip_byte(p: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let before = fs::symlink_metadata(p).unwrap();
    let first = fs::read(p).unwrap()[0];
    let mut f = fs::OpenOptions::new().write(true).open(p).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&[first ^ 0x01]).unwrap();
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
        (after.len(), after.mtime(), after.mtime_nsec()),
        (before.len(), before.mtime(), before.mtime_nsec())
    );
}

/// A seal cut before its rename (a crash during the background hashing)
/// leaves no seal: a restore puts back and says the contents are not
/// verified. A connector started on the vault completes the seal, and the
/// restore then verifies.
#[tokio::test]
async fn a_seal_cut_by_a_crash_is_completed_when_the_connector_starts() {
    let _scenario = fail::FailScenario::setup();
    for &point in SEAL_CRASH_POINTS {
        // Restored without a seal.
        fail::cfg(point, "return").unwrap();
        let x = prepare(Case::Delete, Mode::Rename).await;
        assert!(x.e.fs.settle_seals(SETTLE));
        let w = x.e.vault.join(&x.id);
        assert!(!w.join("seal.json").exists(), "{point}");
        let r =
            x.e.fs
                .restore(&x.id, &x.p, &x.cap, None, false)
                .await
                .unwrap();
        fail::remove(point);
        assert!(!r.verified, "{point}: {r:?}");
        assert_eq!(r.items[0].status, RestoreStatus::Unverified, "{r:?}");
        assert_eq!(below(&x.e.root), x.before, "{point}: put back all the same");

        // Completed at start.
        fail::cfg(point, "return").unwrap();
        let x = prepare(Case::Delete, Mode::Rename).await;
        assert!(x.e.fs.settle_seals(SETTLE));
        fail::remove(point);
        let w = x.e.vault.join(&x.id);
        assert!(!w.join("seal.json").exists(), "{point}");
        assert!(
            x.e.vault.join(&x.id).join("seal.json.tmp").exists(),
            "{point}: the cut left the temporary seal"
        );
        let started = FsConnector::new(vec![x.e.root.clone()], x.e.vault.clone()).unwrap();
        assert!(started.settle_seals(SETTLE));
        assert!(x.e.vault.join(&x.id).join("seal.json").exists(), "{point}");
        assert!(!x.e.vault.join(&x.id).join("seal.json.tmp").exists());
        let r = started
            .restore(&x.id, &x.p, &x.cap, None, false)
            .await
            .unwrap();
        check_finished(
            Case::Delete,
            &x,
            &r,
            &format!("sealed at start after {point}"),
        )
        .await;
    }
}

/// A restore by copy cut after its mark, then a byte flipped in the vault's
/// copy: the resumed restore refuses to put it back, and leaves no marker.
#[tokio::test]
async fn a_resumed_restore_still_checks_the_seal() {
    let _scenario = fail::FailScenario::setup();
    for (mode, point, name) in [
        (Mode::Copy, "fs.restore.after_put_back_mark", "data.copied"),
        (Mode::Rename, "fs.restore.after_journal", "data"),
        (Mode::Copy, "fs.restore.after_journal", "data"),
    ] {
        let what = format!("{mode:?} cut at {point}");
        let x = prepare(Case::Delete, mode).await;
        assert!(x.e.fs.settle_seals(SETTLE));
        cut(&x, point, false).await;
        let w = x.e.vault.join(&x.id);
        flip_byte(&w.join(name).join("src/main.rs"));
        let r =
            x.e.fs
                .restore(&x.id, &x.p, &x.cap, None, false)
                .await
                .unwrap();
        assert!(!r.verified, "{what}: {r:?}");
        assert_eq!(r.items[0].status, RestoreStatus::Failed, "{what}: {r:?}");
        assert!(
            r.items[0]
                .detail
                .as_deref()
                .unwrap()
                .contains("`src/main.rs` has sha256"),
            "{what}: {r:?}"
        );
        assert!(
            x.e.root.join("proj").symlink_metadata().is_err(),
            "{what}: nothing was put back"
        );
        assert!(!w.join("restored.json").exists(), "{what}");
        assert!(w.join(name).exists(), "{what}: the vault keeps its copy");
        let parent: Vec<String> = names(&x.e.root).into_iter().collect();
        assert!(
            parent.iter().all(|n| !n.starts_with(".recourse-")),
            "{what}: no partial copy is left: {parent:?}"
        );
    }
}
