//! I/O faults, SQLite's method: for each operation of the fs connector —
//! capture + execute of a delete, a move (to a taken and to a free name),
//! a write (of a new file and over one), and the restore (rollback) of
//! each — I/O operation k is failed, k = 1, 2, ... until the operation
//! completes without reaching the fault, once (`k-1` operations pass,
//! the k-th fails, the rest pass) and for good (every operation from the
//! k-th on fails), with EIO and with ENOSPC, by rename and by copy.
//!
//! After each failure it checks that nothing is half done: the target is
//! wholly as before, or in a state the write's protocol allows (captured
//! and not yet executed, executed), with the vault holding nothing for the
//! write, or a complete capture (byte-identical to what it took, its seal
//! matching), or — only where the error says "try again" — a rename into
//! the vault whose manifest is not written yet; that the error says what
//! the gate must do about it (a failed fsync is a durability failure; an
//! error that lets the gate settle the write as "nothing ran" comes with
//! the target as before; a restore that failed is not "restored"); then,
//! the fault cleared, that the same operation called again with the same
//! write id, as the gate would, finishes with exactly the right tree.
//!
//! The faults come from the crate's fault layer (`fault`, the `fs.io`
//! point); the sealer's background I/O has points of its own, so each
//! sweep is deterministic. Run with `--nocapture` (or nextest's
//! `--no-capture`) to see how many k each sweep tried.

#![cfg(feature = "failpoints")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use recourse_client::RestoreStatus;
use recourse_connector::{Connector, ConnectorError};
use recourse_connector_fs::{fault, FsConnector};
use recourse_core::Proposal;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const ID: &str = "w1";
const SETTLE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Rename,
    /// Capture and restore by copy, as with a vault on another file system.
    Copy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Operation k fails, the others pass.
    Once,
    /// Operation k and every later one fail.
    Forever,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Delete,
    /// To a name that holds a tree (the capture takes it).
    Move,
    /// To a free name (nothing is captured).
    MoveFree,
    WriteNew,
    WriteOver,
}

const CASES: [Case; 5] = [
    Case::Delete,
    Case::Move,
    Case::MoveFree,
    Case::WriteNew,
    Case::WriteOver,
];
const MODES: [Mode; 2] = [Mode::Once, Mode::Forever];
const ERRNOS: [&str; 2] = ["EIO", "ENOSPC"];

struct Env {
    _tmp: TempDir,
    root: PathBuf,
    vault: PathBuf,
    fs: FsConnector,
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

/// A few files with odd modes, a subdirectory, a symbolic link, old
/// times; a taken destination; a file to write over.
fn build(root: &Path) {
    let proj = root.join("proj");
    fs::create_dir_all(proj.join("sub")).unwrap();
    fs::write(proj.join("a.txt"), b"alpha\n").unwrap();
    fs::write(proj.join("sub/b.txt"), vec![b'b'; 3000]).unwrap();
    fs::write(proj.join("sub/run.sh"), b"#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(proj.join("sub/run.sh"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::set_permissions(proj.join("a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    symlink("sub/b.txt", proj.join("link")).unwrap();
    fs::create_dir(root.join("dest")).unwrap();
    fs::write(root.join("dest/old.txt"), b"keep me").unwrap();
    fs::write(root.join("notes.txt"), b"old = true\n").unwrap();
    fs::set_permissions(root.join("notes.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    for (i, p) in [
        "proj/a.txt",
        "proj/sub/b.txt",
        "proj/sub/run.sh",
        "proj/link",
        "proj/sub",
        "proj",
        "dest/old.txt",
        "dest",
        "notes.txt",
    ]
    .iter()
    .enumerate()
    {
        set_time(&root.join(p), 1_000_000_000 + i as i64 * 1000);
    }
}

/// Where the trees go: tmpfs when there is one, where an fsync costs
/// nothing (the thousands of runs would spend most of their time in
/// fsyncs of a real disk; what the faults test is the code's handling of
/// them, not the disk).
fn scratch_dir() -> TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(t) = tempfile::tempdir_in(shm) {
            return t;
        }
    }
    tempfile::tempdir().unwrap()
}

fn env(method: Method) -> Env {
    let tmp = scratch_dir();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("root");
    fs::create_dir(&root).unwrap();
    build(&root);
    let vault = base.join("vault");
    let copy = method == Method::Copy;
    let fs = FsConnector::new(vec![root.clone()], vault.clone())
        .unwrap()
        .with_copy_mode(copy)
        .with_copy_restore(copy);
    Env {
        _tmp: tmp,
        root,
        vault,
        fs,
    }
}

fn s(p: PathBuf) -> String {
    p.to_str().unwrap().to_owned()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const NEW: &[u8] = b"written by the agent\n";

impl Case {
    fn action(self, root: &Path) -> Value {
        match self {
            Case::Delete => {
                json!({"connector": "fs", "op": "delete", "path": s(root.join("proj"))})
            }
            Case::Move => {
                json!({"connector": "fs", "op": "move", "path": s(root.join("proj")), "to": s(root.join("dest"))})
            }
            Case::MoveFree => {
                json!({"connector": "fs", "op": "move", "path": s(root.join("proj")), "to": s(root.join("moved"))})
            }
            Case::WriteNew => {
                json!({"connector": "fs", "op": "write", "path": s(root.join("new.txt")), "content_b64": b64(NEW)})
            }
            Case::WriteOver => {
                json!({"connector": "fs", "op": "write", "path": s(root.join("notes.txt")), "content_b64": b64(NEW)})
            }
        }
    }

    /// The name under the root the capture takes (if anything is there).
    fn captured(self) -> &'static str {
        match self {
            Case::Delete => "proj",
            Case::Move => "dest",
            Case::MoveFree => "moved",
            Case::WriteNew => "new.txt",
            Case::WriteOver => "notes.txt",
        }
    }

    /// The file the write writes: its mtime is the time of the write.
    fn written(self) -> Option<&'static str> {
        match self {
            Case::WriteNew => Some("new.txt"),
            Case::WriteOver => Some("notes.txt"),
            _ => None,
        }
    }

    /// The tree once the capture took what it captures, before the write.
    fn after_capture(self, before: &Listing) -> Listing {
        without(before, self.captured())
    }

    /// The tree once the write ran.
    fn after(self, before: &Listing) -> Listing {
        match self {
            Case::Delete => without(before, "proj"),
            Case::Move => renamed(&without(before, "dest"), "proj", "dest"),
            Case::MoveFree => renamed(before, "proj", "moved"),
            Case::WriteNew | Case::WriteOver => {
                let mut out = before.clone();
                let name = self.written().unwrap();
                let mode = if self == Case::WriteOver {
                    0o640
                } else {
                    0o644
                };
                out.insert(
                    name.to_owned(),
                    format!(
                        "file {:o} {} * {}",
                        0o100000 | mode,
                        NEW.len(),
                        hex::encode(Sha256::digest(NEW))
                    ),
                );
                out
            }
        }
    }
}

/// Relative path -> type, mode, size, mtime, link target or content hash:
/// every entry below the root (the root's own mtime moves with its
/// entries, and is left out).
type Listing = BTreeMap<String, String>;

fn describe(p: &Path) -> String {
    let m = p.symlink_metadata().unwrap();
    let ft = m.file_type();
    let (kind, extra) = if ft.is_symlink() {
        (
            "link",
            format!("-> {}", fs::read_link(p).unwrap().display()),
        )
    } else if ft.is_file() {
        ("file", hex::encode(Sha256::digest(fs::read(p).unwrap())))
    } else if ft.is_dir() {
        ("dir", String::new())
    } else {
        ("other", String::new())
    };
    let size = if ft.is_dir() { 0 } else { m.size() };
    let mode = if ft.is_symlink() { 0 } else { m.mode() };
    format!(
        "{kind} {mode:o} {size} {}.{} {extra}",
        m.mtime(),
        m.mtime_nsec()
    )
}

fn walk(dir: &Path, base: &Path, out: &mut Listing) {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        out.insert(
            p.strip_prefix(base).unwrap().display().to_string(),
            describe(&p),
        );
        if p.symlink_metadata().unwrap().is_dir() {
            walk(&p, base, out);
        }
    }
}

/// The tree below `root`; the mtime of the file the write wrote (at
/// `written`, with the written contents) masked: it is the time of the
/// write.
fn listing(root: &Path, written: Option<&str>) -> Listing {
    let mut out = Listing::new();
    walk(root, root, &mut out);
    let new = hex::encode(Sha256::digest(NEW));
    if let Some(w) = written {
        if let Some(v) = out.get_mut(w).filter(|v| v.ends_with(&new)) {
            let mut parts: Vec<&str> = v.split(' ').collect();
            parts[3] = "*";
            *v = parts.join(" ");
        }
    }
    out
}

fn under(key: &str, top: &str) -> bool {
    top.is_empty() || key == top || key.starts_with(&format!("{top}/"))
}

fn without(l: &Listing, top: &str) -> Listing {
    l.iter()
        .filter(|(k, _)| !under(k, top))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn renamed(l: &Listing, from: &str, to: &str) -> Listing {
    l.iter()
        .map(|(k, v)| match k.strip_prefix(from) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                (format!("{to}{rest}"), v.clone())
            }
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// The part of `l` at `top`, keyed relative to it (`""` is `top`); a
/// directory's own mtime left out (a rename into the vault may move it).
fn subtree(l: &Listing, top: &str) -> Listing {
    l.iter()
        .filter(|(k, _)| under(k, top))
        .map(|(k, v)| {
            let rel = k
                .strip_prefix(top)
                .unwrap()
                .trim_start_matches('/')
                .to_owned();
            let v = if rel.is_empty() && v.starts_with("dir ") {
                let parts: Vec<&str> = v.split(' ').collect();
                format!("dir {}", parts[1])
            } else {
                v.clone()
            };
            (rel, v)
        })
        .collect()
}

/// What the vault holds for the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Vault {
    /// Nothing, or scratch without a manifest (an empty write directory,
    /// a copy cut short with its `copying` mark).
    Nothing,
    /// The captured tree renamed in, its manifest not written yet.
    CutRename,
    /// A manifest, the tree byte-identical to what was taken, the seal
    /// matching both.
    Complete,
}

fn sha_file(p: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(p).unwrap()))
}

/// Reads what the vault holds for the write and checks a capture whole:
/// its tree is the one `before` had at the captured path, and its seal
/// (once the sealer settled) seals this manifest and these contents, also
/// when the capture failed after its manifest was in place.
fn vault_state(e: &Env, case: Case, before: &Listing, what: &str) -> Vault {
    let w = e.vault.join(ID);
    if !w.exists() {
        return Vault::Nothing;
    }
    let data = w.join("data");
    let manifest = w.join("manifest.json");
    if !manifest.exists() {
        if data.symlink_metadata().is_ok() && !w.join("copying").exists() {
            let mut l = Listing::new();
            l.insert(String::new(), describe(&data));
            if data.symlink_metadata().unwrap().is_dir() {
                walk(&data, &data, &mut l);
            }
            assert_eq!(
                subtree(&l, ""),
                subtree(before, case.captured()),
                "{what}: the tree renamed into the vault"
            );
            return Vault::CutRename;
        }
        return Vault::Nothing;
    }
    let bytes = fs::read(&manifest).unwrap();
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    let existed = before.contains_key(case.captured());
    assert_eq!(
        m["method"].is_null(),
        !existed,
        "{what}: the manifest's method: {m}"
    );
    if !existed {
        assert!(
            data.symlink_metadata().is_err(),
            "{what}: nothing was captured"
        );
        return Vault::Complete;
    }
    let mut l = Listing::new();
    l.insert(String::new(), describe(&data));
    if data.symlink_metadata().unwrap().is_dir() {
        walk(&data, &data, &mut l);
    }
    assert_eq!(
        subtree(&l, ""),
        subtree(before, case.captured()),
        "{what}: the vault's copy is the tree taken"
    );
    assert!(e.fs.settle_seals(SETTLE), "{what}: the sealer settles");
    let seal: Value = serde_json::from_slice(
        &fs::read(w.join("seal.json"))
            .unwrap_or_else(|err| panic!("{what}: no seal ({err}): {:?}", names(&w))),
    )
    .unwrap();
    assert_eq!(
        seal["manifest_sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(&bytes)),
        "{what}: the seal seals this manifest"
    );
    let sealed: BTreeMap<String, String> = seal["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let files: BTreeMap<String, String> = l
        .iter()
        .filter(|(_, v)| v.starts_with("file "))
        .map(|(k, _)| {
            let p = if k.is_empty() {
                data.clone()
            } else {
                data.join(k)
            };
            (k.clone(), sha_file(&p))
        })
        .collect();
    assert_eq!(sealed, files, "{what}: the seal matches the contents");
    Vault::Complete
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn proposal(action: Value) -> Proposal {
    Proposal {
        action,
        ..Proposal::default()
    }
}

fn spec(k: u64, mode: Mode, errno: &str) -> String {
    match mode {
        Mode::Once => format!("{}*off->1*return({errno})->off", k - 1),
        Mode::Forever => format!("{}*off->return({errno})", k - 1),
    }
}

/// Arms the fault for operation k of what follows.
fn arm(k: u64, mode: Mode, errno: &str) {
    let _ = fault::take_injected();
    fail::cfg("fs.io", &spec(k, mode, errno)).unwrap();
}

/// Clears the fault; returns the foreground operations it failed.
fn disarm() -> Vec<&'static str> {
    fail::remove("fs.io");
    fault::take_injected()
        .into_iter()
        .filter(|(_, bg)| !bg)
        .map(|(op, _)| op)
        .collect()
}

/// What the tests saw, for the figures.
#[derive(Default)]
struct Tally {
    lines: Vec<String>,
    /// Outcome -> how many times.
    outcomes: BTreeMap<String, u64>,
    faults: u64,
    ops: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn saw(&mut self, outcome: impl Into<String>) {
        *self.outcomes.entry(outcome.into()).or_default() += 1;
    }

    fn print(&self, title: &str) {
        let mut out = format!("{title}: {} faults injected\n", self.faults);
        for l in &self.lines {
            out.push_str(&format!("  {l}\n"));
        }
        out.push_str(&format!("  outcomes: {:?}\n", self.outcomes));
        out.push_str(&format!("  failed operations by kind: {:?}\n", self.ops));
        print!("{out}");
    }
}

/// A sweep has to reach its operation's fsyncs, renames, reads and
/// writes: a fault layer disconnected from a helper would show here.
fn check_reach(t: &Tally, want: &[&str], title: &str) {
    for op in want {
        assert!(
            t.ops.get(op).copied().unwrap_or(0) > 0,
            "{title}: no `{op}` was ever failed: {:?}",
            t.ops
        );
    }
}

/// The error says what the gate must do, and the state agrees with it.
/// Returns the outcome's name.
#[expect(clippy::too_many_arguments, reason = "what the gate sees of a failure")]
async fn judge_error(
    e: &Env,
    case: Case,
    p: &Proposal,
    cap: &Value,
    err: &ConnectorError,
    failed: &[&str],
    before: &Listing,
    what: &str,
) -> String {
    let written = case.written();
    let now = listing(&e.root, written);
    match err {
        ConnectorError::Durability(_) => {
            assert!(
                failed.contains(&"fsync"),
                "{what}: a durability error without a failed fsync: {err}"
            );
            "durability (the gate freezes)".into()
        }
        ConnectorError::Resumable(_) => "resumable (the gate calls again)".into(),
        ConnectorError::Unavailable(_) => "unavailable (the gate retries)".into(),
        ConnectorError::Drift(_)
        | ConnectorError::Invalid { .. }
        | ConnectorError::Refuse { .. } => {
            panic!("{what}: an I/O fault reported as {err:?}")
        }
        ConnectorError::Io(_) | ConnectorError::Uncertain(_) => {
            // The gate asks the connector's evidence, at once (the fault
            // still on when it is for good).
            assert!(
                !failed.contains(&"fsync"),
                "{what}: a failed fsync reported as plain I/O: {err}"
            );
            let applied = e.fs.applied(ID, p, cap).await;
            match applied {
                Ok(Some(false)) => {
                    assert_eq!(
                        now, *before,
                        "{what}: `{err}`, and `applied` says nothing ran: the target must be as before"
                    );
                    "nothing ran (as before)".into()
                }
                Ok(Some(true)) => {
                    assert_eq!(
                        now,
                        case.after(before),
                        "{what}: `{err}`, and `applied` says it ran: the target must be as after"
                    );
                    "took effect (as after)".into()
                }
                Ok(None) | Err(_) => "unknown (a person checks)".into(),
            }
        }
    }
}

/// Capture + execute of `case`, operation k failed: see the module.
async fn run_once(
    case: Case,
    method: Method,
    mode: Mode,
    errno: &str,
    k: u64,
    t: &mut Tally,
) -> bool {
    let what = format!("{case:?} by {method:?}, {errno} {mode:?} at k={k}");
    let e = env(method);
    let before = listing(&e.root, None);
    let p = proposal(case.action(&e.root));
    let written = case.written();
    e.fs.plan(ID, &p.action).await.unwrap();
    arm(k, mode, errno);
    let cap = e.fs.capture(ID, &p).await;
    let exec = match &cap {
        Ok(c) => Some(e.fs.execute(ID, &p, c).await),
        Err(_) => None,
    };
    // The gate's look at a failure happens with the fault still on.
    let outcome = match (&cap, &exec) {
        (Ok(_), Some(Ok(_))) => None,
        (Err(err), _) => Some((err.clone(), Value::Null, "capture")),
        (Ok(c), Some(Err(err))) => Some((err.clone(), c.clone(), "execute")),
        (Ok(_), None) => unreachable!(),
    };
    let judged = match &outcome {
        Some((err, c, _)) => {
            // `applied` runs under the fault; the log is read after it.
            let failed_so_far: Vec<&str> = fault::take_injected()
                .into_iter()
                .filter(|(_, bg)| !bg)
                .map(|(op, _)| op)
                .collect();
            let j = judge_error(&e, case, &p, c, err, &failed_so_far, &before, &what).await;
            Some((j, failed_so_far))
        }
        None => None,
    };
    let mut failed = disarm();
    if let Some((_, f)) = &judged {
        let mut all = f.clone();
        all.append(&mut failed);
        failed = all;
    }
    let reached = !failed.is_empty();
    t.faults += failed.len() as u64;
    for op in &failed {
        *t.ops.entry(op).or_default() += 1;
    }
    let after = case.after(&before);
    let Some((err, _, step)) = outcome else {
        // It completed: exactly right, whatever it met on the way; a
        // failed fsync is never passed over.
        assert!(
            !failed.contains(&"fsync"),
            "{what}: it reported success over a failed fsync ({failed:?})"
        );
        assert_eq!(listing(&e.root, written), after, "{what}: completed");
        assert_eq!(
            vault_state(&e, case, &before, &what),
            Vault::Complete,
            "{what}: completed"
        );
        if reached {
            t.saw("completed over a fault it could pass over");
        }
        check_restore(&e, &p, cap.as_ref().unwrap(), &before, &what).await;
        return !reached;
    };
    let (judged, _) = judged.unwrap();
    assert!(reached, "{what}: an error without a fault: {err}");
    // Never half done. Scratch of the write's own beside the target
    // (`.recourse-w1.*`: a temporary file, what a copy's original left)
    // only with an error that has the gate call again, which removes it.
    let mut now = listing(&e.root, written);
    let scratch: Vec<String> = now
        .keys()
        .filter(|k| k.starts_with(&format!(".recourse-{ID}.")))
        .cloned()
        .collect();
    if !scratch.is_empty() {
        assert!(
            matches!(err, ConnectorError::Resumable(_) | ConnectorError::Durability(_)),
            "{what}: {step} failed ({err:?}) and left {scratch:?} beside the target without saying to call again"
        );
        now.retain(|k, _| !scratch.iter().any(|s| under(k, s)));
        t.saw(format!("{step}: scratch left, to be removed by the retry"));
    }
    let vault = vault_state(&e, case, &before, &what);
    let state = if now == before {
        "target as before"
    } else if now == case.after_capture(&before) {
        "target captured, not yet written"
    } else if now == after {
        "target as after"
    } else {
        panic!(
            "{what}: {step} failed ({err}) and left the target half done:\n now {now:#?}\n before {before:#?}"
        )
    };
    match vault {
        Vault::Nothing => assert_eq!(
            state, "target as before",
            "{what}: {step} failed ({err}); nothing in the vault, so the target must be as before"
        ),
        Vault::CutRename => assert!(
            matches!(err, ConnectorError::Resumable(_) | ConnectorError::Durability(_)),
            "{what}: a capture cut after its rename must say it is to be called again (or that durability failed): {err:?}"
        ),
        Vault::Complete => {}
    }
    t.saw(format!("{step}: {judged}; {state}; vault {vault:?}"));
    // The fault cleared, the gate calls again with the same write id:
    // the capture if it has no record of one, then the write.
    let cap = match cap {
        Ok(c) => c,
        Err(_) => {
            e.fs.capture(ID, &p)
                .await
                .unwrap_or_else(|err| panic!("{what}: the capture called again: {err}"))
        }
    };
    e.fs.execute(ID, &p, &cap)
        .await
        .unwrap_or_else(|err| panic!("{what}: the write called again: {err}"));
    assert_eq!(listing(&e.root, written), after, "{what}: after the retry");
    assert_eq!(
        vault_state(&e, case, &before, &what),
        Vault::Complete,
        "{what}: after the retry"
    );
    assert_eq!(
        e.fs.applied(ID, &p, &cap).await.unwrap(),
        Some(true),
        "{what}: after the retry"
    );
    check_restore(&e, &p, &cap, &before, &what).await;
    false
}

/// The capture is a real one: the rollback puts the tree back exactly.
async fn check_restore(e: &Env, p: &Proposal, cap: &Value, before: &Listing, what: &str) {
    let r =
        e.fs.restore(ID, p, cap, None, false)
            .await
            .unwrap_or_else(|err| panic!("{what}: the restore: {err}"));
    assert!(r.verified, "{what}: the restore: {r:?}");
    assert_eq!(listing(&e.root, None), *before, "{what}: restored");
}

async fn sweep_runs(method: Method) {
    let _scenario = fail::FailScenario::setup();
    let mut t = Tally::default();
    for case in CASES {
        for mode in MODES {
            for errno in ERRNOS {
                let mut k = 1;
                while !run_once(case, method, mode, errno, k, &mut t).await {
                    k += 1;
                    assert!(k < 2000, "{case:?} {method:?}: no end in sight");
                }
                t.lines.push(format!(
                    "capture+execute {case:?} by {method:?}, {errno} {mode:?}: k = 1..{k} ({} faults)",
                    k - 1
                ));
            }
        }
    }
    let title = format!("I/O faults in capture+execute by {method:?}");
    t.print(&title);
    check_reach(
        &t,
        &["fsync", "rename", "open", "stat", "create", "write"],
        &title,
    );
    if method == Method::Copy {
        check_reach(
            &t,
            &["read", "chmod", "utimens", "mkdir", "symlink", "unlink"],
            &title,
        );
    }
}

#[tokio::test]
async fn every_io_fault_in_capture_and_execute_by_rename() {
    sweep_runs(Method::Rename).await;
}

#[tokio::test]
async fn every_io_fault_in_capture_and_execute_by_copy() {
    sweep_runs(Method::Copy).await;
}

/// The restore of `case`, operation k failed: see the module.
async fn restore_once(
    case: Case,
    method: Method,
    mode: Mode,
    errno: &str,
    k: u64,
    t: &mut Tally,
) -> bool {
    let what = format!("restore of {case:?} by {method:?}, {errno} {mode:?} at k={k}");
    let e = env(method);
    let before = listing(&e.root, None);
    let p = proposal(case.action(&e.root));
    e.fs.plan(ID, &p.action).await.unwrap();
    let cap = e.fs.capture(ID, &p).await.unwrap();
    e.fs.execute(ID, &p, &cap).await.unwrap();
    assert!(e.fs.settle_seals(SETTLE));
    let after = listing(&e.root, case.written());
    arm(k, mode, errno);
    let r = e.fs.restore(ID, &p, &cap, None, false).await;
    let failed = disarm();
    let reached = !failed.is_empty();
    t.faults += failed.len() as u64;
    for op in &failed {
        *t.ops.entry(op).or_default() += 1;
    }
    let journal = e.vault.join(ID).join("restoring.json").exists();
    match &r {
        Ok(report) if report.verified => {
            // "Restored" only when it is.
            assert_eq!(
                listing(&e.root, None),
                before,
                "{what}: reported verified: {report:?}"
            );
            assert!(
                !failed.contains(&"fsync"),
                "{what}: it reported success over a failed fsync ({failed:?})"
            );
            if reached {
                t.saw("completed over a fault it could pass over");
            }
        }
        Ok(report) => {
            assert!(reached, "{what}: not verified without a fault: {report:?}");
            assert!(
                report
                    .items
                    .iter()
                    .any(|i| i.status != RestoreStatus::Restored),
                "{what}: not verified, yet every item restored: {report:?}"
            );
            t.saw(format!(
                "reported not verified ({:?})",
                report.items.iter().map(|i| i.status).collect::<Vec<_>>()
            ));
        }
        Err(err) => {
            assert!(reached, "{what}: an error without a fault: {err}");
            let class = match err {
                ConnectorError::Durability(_) => {
                    assert!(
                        failed.contains(&"fsync"),
                        "{what}: a durability error without a failed fsync: {err}"
                    );
                    "durability"
                }
                ConnectorError::Io(_) => {
                    assert!(
                        !failed.contains(&"fsync"),
                        "{what}: a failed fsync reported as plain I/O: {err}"
                    );
                    "io"
                }
                ConnectorError::Resumable(_) => "resumable",
                ConnectorError::Unavailable(_) => "unavailable",
                other => panic!("{what}: an I/O fault reported as {other:?}"),
            };
            // Did not start (the tree as the write left it, no journal), or
            // started and resumable (below).
            let started = if !journal {
                assert_eq!(
                    listing(&e.root, case.written()),
                    after,
                    "{what}: failed ({err}) before its journal, yet the target changed"
                );
                "did not start"
            } else {
                "started, journal kept"
            };
            t.saw(format!("{class}: {started}"));
        }
    }
    // The fault cleared, the rollback is tried again: it finishes, and a
    // third call only verifies.
    let again =
        e.fs.restore(ID, &p, &cap, None, false)
            .await
            .unwrap_or_else(|err| panic!("{what}: called again: {err}"));
    assert!(again.verified, "{what}: called again: {again:?}");
    assert_eq!(listing(&e.root, None), before, "{what}: called again");
    let third = e.fs.restore(ID, &p, &cap, None, false).await.unwrap();
    assert!(third.verified, "{what}: a third call: {third:?}");
    let mut want = vec!["manifest.json", "restored.json", "restoring.json"];
    if before.contains_key(case.captured()) {
        want.push("seal.json");
    }
    want.sort();
    assert_eq!(
        names(&e.vault.join(ID)),
        want,
        "{what}: the vault keeps no partial work"
    );
    let parent: Vec<String> = names(&e.root);
    assert!(
        parent.iter().all(|n| !n.starts_with(".recourse-")),
        "{what}: no scratch left under the root: {parent:?}"
    );
    !reached
}

async fn sweep_restores(method: Method) {
    let _scenario = fail::FailScenario::setup();
    let mut t = Tally::default();
    for case in CASES {
        for mode in MODES {
            for errno in ERRNOS {
                let mut k = 1;
                while !restore_once(case, method, mode, errno, k, &mut t).await {
                    k += 1;
                    assert!(k < 2000, "{case:?} {method:?}: no end in sight");
                }
                t.lines.push(format!(
                    "restore of {case:?} by {method:?}, {errno} {mode:?}: k = 1..{k} ({} faults)",
                    k - 1
                ));
            }
        }
    }
    let title = format!("I/O faults in restore by {method:?}");
    t.print(&title);
    check_reach(
        &t,
        &["fsync", "rename", "open", "stat", "create", "write", "read"],
        &title,
    );
    if method == Method::Copy {
        check_reach(
            &t,
            &["chmod", "utimens", "mkdir", "symlink", "unlink"],
            &title,
        );
    }
}

#[tokio::test]
async fn every_io_fault_in_restore_by_rename() {
    sweep_restores(Method::Rename).await;
}

#[tokio::test]
async fn every_io_fault_in_restore_by_copy() {
    sweep_restores(Method::Copy).await;
}
