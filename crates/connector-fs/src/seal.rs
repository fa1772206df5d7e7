//! The seal: the contents of a capture, hashed, so a restore can tell a
//! vault copy that changed since from one that did not.
//!
//! A capture by rename reads no contents (that is what keeps it O(entries)),
//! so its manifest holds no hashes: metadata alone cannot see one byte
//! flipped with the size and mtime kept. After such a capture the
//! connector's sealer thread hashes the captured tree in the background and
//! writes `seal.json` beside the manifest: every file entry's SHA-256, and
//! the SHA-256 of the manifest it seals. A capture by copy hashed every file
//! on the way, so its seal is written at once from the manifest.
//!
//! A seal is only ever computed over a tree that is still the one captured:
//! never once a restore has begun (`restoring.json`) or ended
//! (`restored.json`), and never when the tree's metadata (types, modes,
//! sizes, mtimes, inodes, link targets) no longer matches the manifest; a
//! seal of a changed tree would bless the change, so the sealer then writes
//! `unsealed.json` with the reason instead, and the restore says it could
//! not verify contents. Seals a crash left unwritten are completed when the
//! connector starts (a scan of the vault, in the background).
//!
//! What a seal proves: the vault copy's contents are the ones it had when it
//! was sealed. What it does not: that nothing changed between the capture
//! and the sealing (a window of the hashing's length, in which only the
//! metadata is checked), nor anything against someone who can write the
//! vault (they can rewrite the seal as well; it is not signed).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use recourse_connector::{crash_point, ConnectorError};
use serde::{Deserialize, Serialize};

use crate::manifest::{self, Entry, Kind, Manifest, Method};
use crate::restore::RESTORING;
use crate::tree;
use crate::{io, DATA, MANIFEST, RESTORED};

pub(crate) const SEAL: &str = "seal.json";
const SEAL_TMP: &str = "seal.json.tmp";
/// Why the sealer would not seal a capture (its tree had changed).
pub(crate) const UNSEALED: &str = "unsealed.json";
const UNSEALED_TMP: &str = "unsealed.json.tmp";

const BEFORE_SEAL_RENAME: &str = "fs.seal.before_rename";

/// The crash points of sealing: `before_rename`, the seal hashed and
/// written to its temporary name, durable, not yet renamed into place (what
/// a crash during the background hashing leaves: no seal).
pub const SEAL_CRASH_POINTS: &[&str] = &[BEFORE_SEAL_RENAME];

/// `<vault>/<write_id>/seal.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub version: u32,
    pub write_id: String,
    /// The SHA-256 of the `manifest.json` this seal belongs to.
    pub manifest_sha256: String,
    /// How the capture went into the vault: after a `rename` the tree was
    /// read back and hashed; a `copy` hashed it on the way.
    pub method: Method,
    pub sealed_at: DateTime<Utc>,
    /// Every file entry of the manifest, in its order.
    pub files: Vec<SealedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedFile {
    /// As in the manifest.
    pub path: String,
    pub sha256: String,
}

/// `unsealed.json`: the sealer's refusal, kept so a restart does not hash
/// the tree again and a restore can say why it has no seal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Unsealed {
    reason: String,
    at: DateTime<Utc>,
}

/// What a restore knows of the contents a capture must have.
#[derive(Debug, Clone)]
pub(crate) enum Contents {
    /// Every file entry's SHA-256, and where they come from.
    Known {
        hashes: BTreeMap<String, String>,
        source: &'static str,
    },
    /// No seal: contents cannot be verified (why, for the report).
    Unsealed(String),
    /// A seal that cannot be trusted (it seals another manifest, or
    /// contradicts it): nothing is restored from it.
    Bad(String),
}

/// What one attempt to seal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Sealed,
    /// Already sealed, or refused before: nothing to do.
    Done,
    /// Not sealed, and not to be (`unsealed.json` says why).
    Refused,
    /// Nothing to seal now: no capture, nothing captured, or a rollback
    /// has begun.
    Skipped,
}

fn has(w: BorrowedFd<'_>, name: &str) -> Result<bool, ConnectorError> {
    tree::lstat(w, OsStr::new(name))
        .map(|s| s.is_some())
        .map_err(io("vault"))
}

fn open_vault(vault: &Path) -> Result<OwnedFd, ConnectorError> {
    tree::open_path(vault).map_err(io(format!("vault `{}`", vault.display())))
}

/// Writes `name` through `tmp`, fsynced, renamed, the folder fsynced; the
/// crash point sits between the durable temporary file and the rename.
fn write_atomic(
    w: BorrowedFd<'_>,
    name: &str,
    tmp: &str,
    bytes: &[u8],
    point: Option<&str>,
) -> Result<(), ConnectorError> {
    let _ = tree::unlink(w, OsStr::new(tmp));
    tree::create_file(w, OsStr::new(tmp), bytes, 0o600).map_err(io("vault"))?;
    if let Some(point) = point {
        crash_point!(point);
    }
    tree::rename(w, OsStr::new(tmp), w, OsStr::new(name)).map_err(io("vault"))?;
    tree::fsync(w).map_err(io("vault"))
}

/// The seal in `w`, if there is one; `Err` with why when it is unreadable.
pub(crate) fn read(w: BorrowedFd<'_>) -> Result<Option<Result<Seal, String>>, ConnectorError> {
    match tree::read_small(w, OsStr::new(SEAL)) {
        Ok(b) => Ok(Some(
            serde_json::from_slice(&b).map_err(|e| format!("the seal is unreadable: {e}")),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("seal")(e)),
    }
}

/// Why the sealer refused, if it did.
pub(crate) fn refusal(w: BorrowedFd<'_>) -> Option<String> {
    let b = tree::read_small(w, OsStr::new(UNSEALED)).ok()?;
    serde_json::from_slice::<Unsealed>(&b)
        .ok()
        .map(|u| u.reason)
}

fn files(m: &Manifest) -> impl Iterator<Item = &Entry> {
    m.captured.iter().filter(|e| e.kind == Kind::File)
}

/// The contents the capture in `w` must have, from its manifest (a copy
/// hashed them) and its seal.
pub(crate) fn expected(
    w: BorrowedFd<'_>,
    m: &Manifest,
    manifest_sha: &str,
) -> Result<Contents, ConnectorError> {
    if files(m).next().is_none() {
        return Ok(Contents::Known {
            hashes: BTreeMap::new(),
            source: "the manifest (no regular files were captured)",
        });
    }
    let seal = match read(w)? {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(why)) => return Ok(Contents::Bad(why)),
    };
    let sealed: HashMap<&str, &str> = match &seal {
        Some(s) if s.manifest_sha256 != manifest_sha => {
            return Ok(Contents::Bad(format!(
                "the seal is not this capture's: it seals a manifest with sha256 {}, this one has {manifest_sha}",
                s.manifest_sha256
            )))
        }
        Some(s) => s
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.sha256.as_str()))
            .collect(),
        None => HashMap::new(),
    };
    let mut hashes = BTreeMap::new();
    let mut from_seal = false;
    for e in files(m) {
        let shown = if e.path.is_empty() { "." } else { &e.path };
        let hash = match (e.sha256.as_deref(), sealed.get(e.path.as_str()).copied()) {
            (Some(a), Some(b)) if a != b => {
                return Ok(Contents::Bad(format!(
                    "the seal contradicts the manifest on `{shown}` (sha256 {b} sealed, {a} in the manifest)"
                )))
            }
            (Some(a), _) => a,
            (None, Some(b)) => {
                from_seal = true;
                b
            }
            (None, None) if seal.is_some() => {
                return Ok(Contents::Bad(format!("the seal lacks `{shown}`")))
            }
            (None, None) => {
                let why = match refusal(w) {
                    Some(r) => format!("the vault holds no seal (the sealer refused: {r})"),
                    None => "the vault holds no seal".to_owned(),
                };
                return Ok(Contents::Unsealed(why));
            }
        };
        hashes.insert(e.path.clone(), hash.to_owned());
    }
    Ok(Contents::Known {
        hashes,
        source: if from_seal {
            "the seal"
        } else {
            "the manifest (hashed while copying)"
        },
    })
}

/// How `now` (a walk with hashes of a tree that should be the capture)
/// differs from the captured contents, as sentences: files missing, of
/// another type, with other contents (both hashes named), and entries the
/// capture did not have.
pub(crate) fn differences(
    hashes: &BTreeMap<String, String>,
    captured: &[Entry],
    now: &[Entry],
) -> Vec<String> {
    let by_path: HashMap<&str, &Entry> = now.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut diffs = Vec::new();
    for (path, want) in hashes {
        let shown = if path.is_empty() { "." } else { path.as_str() };
        match by_path.get(path.as_str()) {
            None => diffs.push(format!("`{shown}` is missing")),
            Some(e) if e.kind != Kind::File => {
                diffs.push(format!("`{shown}` is a {}, not a file", e.kind.as_str()))
            }
            Some(e) => match e.sha256.as_deref() {
                Some(got) if got == want => {}
                Some(got) => diffs.push(format!("`{shown}` has sha256 {got}, sealed {want}")),
                None => diffs.push(format!("`{shown}` was not hashed")),
            },
        }
    }
    let known: HashSet<&str> = captured.iter().map(|e| e.path.as_str()).collect();
    for e in now {
        if !known.contains(e.path.as_str()) {
            diffs.push(format!("`{}` was not in the capture", e.path));
        }
    }
    diffs
}

/// Seals the capture of `write_id` if it may be: see the module's rules.
pub(crate) fn seal_write(vault: &Path, write_id: &str) -> Result<Outcome, ConnectorError> {
    let vfd = open_vault(vault)?;
    let wdir = match tree::open_dir(vfd.as_fd(), OsStr::new(write_id)) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Outcome::Skipped),
        Err(e) => return Err(io("vault")(e)),
    };
    let w = wdir.as_fd();
    if has(w, SEAL)? || has(w, UNSEALED)? {
        return Ok(Outcome::Done);
    }
    let bytes = match tree::read_small(w, OsStr::new(MANIFEST)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Outcome::Skipped),
        Err(e) => return Err(io("manifest")(e)),
    };
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| ConnectorError::Io(format!("manifest of `{write_id}` is unreadable: {e}")))?;
    let manifest_sha = tree::sha256(&bytes);
    // INVARIANT (no seal over a restored tree): a restore of this write in
    // this process holds it in the sealer's book while it runs, so neither
    // marker can appear between this check and the rename below.
    if has(w, RESTORING)? || has(w, RESTORED)? {
        return Ok(Outcome::Skipped);
    }
    let Some(method) = m.method.filter(|_| m.existed()) else {
        return Ok(Outcome::Skipped);
    };
    if !has(w, DATA)? {
        return Ok(Outcome::Skipped);
    }
    let sealed: Vec<SealedFile> = match method {
        Method::Copy => {
            let mut out = Vec::new();
            for e in files(&m) {
                let Some(h) = &e.sha256 else {
                    return refuse(w, format!("the manifest lacks the hash of `{}`", e.path));
                };
                out.push(SealedFile {
                    path: e.path.clone(),
                    sha256: h.clone(),
                });
            }
            out
        }
        Method::Rename => {
            let mut now = tree::walk(w, OsStr::new(DATA), true).map_err(io("vault"))?;
            // The capture kept the times the top had where it stood.
            if let (Some(top), Some(was)) = (now.first_mut(), m.top()) {
                top.mtime = was.mtime;
                top.atime = was.atime;
            }
            let mut bare = now.clone();
            for e in &mut bare {
                e.sha256 = None;
            }
            let diffs = manifest::compare(&m.captured, &bare, true);
            if !diffs.is_empty() {
                return refuse(
                    w,
                    format!(
                        "the vault's tree no longer matches its manifest ({})",
                        crate::summary(&diffs)
                    ),
                );
            }
            now.into_iter()
                .filter(|e| e.kind == Kind::File)
                .filter_map(|e| {
                    e.sha256.map(|sha256| SealedFile {
                        path: e.path,
                        sha256,
                    })
                })
                .collect()
        }
    };
    let seal = Seal {
        version: 1,
        write_id: write_id.to_owned(),
        manifest_sha256: manifest_sha,
        method,
        sealed_at: Utc::now(),
        files: sealed,
    };
    let bytes =
        serde_json::to_vec_pretty(&seal).map_err(|e| ConnectorError::Io(format!("seal: {e}")))?;
    write_atomic(w, SEAL, SEAL_TMP, &bytes, Some(BEFORE_SEAL_RENAME))?;
    Ok(Outcome::Sealed)
}

fn refuse(w: BorrowedFd<'_>, reason: String) -> Result<Outcome, ConnectorError> {
    let note = Unsealed {
        reason,
        at: Utc::now(),
    };
    let bytes = serde_json::to_vec_pretty(&note)
        .map_err(|e| ConnectorError::Io(format!("unsealed note: {e}")))?;
    write_atomic(w, UNSEALED, UNSEALED_TMP, &bytes, None)?;
    Ok(Outcome::Refused)
}

/// The write ids in the vault whose capture may still need a seal.
fn unsealed_captures(vault: &Path) -> Result<Vec<String>, ConnectorError> {
    let vfd = open_vault(vault)?;
    let mut out = Vec::new();
    for name in tree::list(vfd.as_fd()).map_err(io("vault"))? {
        let Ok(id) = name.to_str() else { continue };
        if crate::check_write_id(id).is_err() {
            continue;
        }
        let Ok(w) = tree::open_dir(vfd.as_fd(), OsStr::new(id)) else {
            continue;
        };
        let w = w.as_fd();
        let wanted = has(w, MANIFEST)?
            && has(w, DATA)?
            && !has(w, SEAL)?
            && !has(w, UNSEALED)?
            && !has(w, RESTORING)?
            && !has(w, RESTORED)?;
        if wanted {
            out.push(id.to_owned());
        }
    }
    Ok(out)
}

// ---- the sealer --------------------------------------------------------------

enum Job {
    Seal(String),
    /// Complete what a crash left unsealed.
    Scan,
}

/// Which writes wait for a seal and which are being worked on, shared by
/// the sealer thread and restores.
#[derive(Default)]
struct State {
    queued: HashSet<String>,
    /// Being sealed, or being restored: one at a time per write.
    busy: HashSet<String>,
    /// Jobs sent and not yet finished.
    outstanding: usize,
    /// The last failure per write, for `observe`.
    failed: HashMap<String, String>,
}

#[derive(Default)]
struct Book {
    state: Mutex<State>,
    changed: Condvar,
}

impl Book {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(g).unwrap_or_else(PoisonError::into_inner)
    }
}

/// The connector's own sealing thread, with its queue. The thread ends when
/// the connector is dropped (the queue's sender goes with it).
pub(crate) struct Sealer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    book: Arc<Book>,
}

/// A write held for a restore: no seal is computed over it meanwhile.
pub(crate) struct Held<'a> {
    sealer: &'a Sealer,
    write_id: String,
    /// A seal was queued for it and not begun: the restore completes it.
    pub(crate) was_queued: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut g = self.sealer.book.lock();
        g.busy.remove(&self.write_id);
        drop(g);
        self.sealer.book.changed.notify_all();
    }
}

impl Sealer {
    /// Starts the thread. If it cannot start, nothing is sealed in the
    /// background and restores say their contents are not verified.
    pub(crate) fn start(vault: PathBuf) -> Sealer {
        let book = Arc::new(Book::default());
        let (tx, rx) = mpsc::channel::<Job>();
        let b = book.clone();
        let started = std::thread::Builder::new()
            .name("recourse-fs-seal".into())
            .spawn(move || work(&vault, &b, &rx))
            .is_ok();
        Sealer {
            tx: Mutex::new(started.then_some(tx)),
            book,
        }
    }

    fn send(&self, job: Job, id: Option<&str>) {
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = tx.as_ref() else { return };
        let mut g = self.book.lock();
        g.outstanding += 1;
        if let Some(id) = id {
            g.queued.insert(id.to_owned());
        }
        if tx.send(job).is_err() {
            g.outstanding -= 1;
            if let Some(id) = id {
                g.queued.remove(id);
            }
        }
    }

    /// Queues the seal of one capture.
    pub(crate) fn enqueue(&self, write_id: &str) {
        self.send(Job::Seal(write_id.to_owned()), Some(write_id));
    }

    /// Queues a scan of the vault for captures a crash left unsealed.
    pub(crate) fn scan(&self) {
        self.send(Job::Scan, None);
    }

    /// Holds `write_id` for a restore: waits while it is being sealed, and
    /// takes over a seal queued and not begun (`was_queued`).
    pub(crate) fn hold(&self, write_id: &str) -> Held<'_> {
        let mut g = self.book.lock();
        while g.busy.contains(write_id) {
            g = self.book.wait(g);
        }
        let was_queued = g.queued.remove(write_id);
        g.busy.insert(write_id.to_owned());
        Held {
            sealer: self,
            write_id: write_id.to_owned(),
            was_queued,
        }
    }

    /// Whether a seal of `write_id` is queued or being computed.
    pub(crate) fn pending(&self, write_id: &str) -> bool {
        let g = self.book.lock();
        g.queued.contains(write_id) || g.busy.contains(write_id)
    }

    /// The last failure to seal `write_id`, if any.
    pub(crate) fn failure(&self, write_id: &str) -> Option<String> {
        self.book.lock().failed.get(write_id).cloned()
    }

    /// Waits until every queued seal and scan is done; false if `within`
    /// passed first.
    pub(crate) fn settle(&self, within: Duration) -> bool {
        let end = Instant::now() + within;
        let mut g = self.book.lock();
        while g.outstanding > 0 {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .book
                .changed
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

fn work(vault: &Path, book: &Book, rx: &mpsc::Receiver<Job>) {
    // Its I/O has fail points of its own (see `fault`).
    crate::fault::background();
    while let Ok(job) = rx.recv() {
        match job {
            Job::Seal(id) => one(vault, book, &id),
            Job::Scan => {
                let ids = match unsealed_captures(vault) {
                    Ok(ids) => ids,
                    Err(e) => {
                        let mut g = book.lock();
                        g.failed
                            .insert(String::new(), format!("scanning the vault: {e}"));
                        Vec::new()
                    }
                };
                {
                    let mut g = book.lock();
                    g.queued.extend(ids.iter().cloned());
                }
                for id in &ids {
                    one(vault, book, id);
                }
            }
        }
        let mut g = book.lock();
        g.outstanding = g.outstanding.saturating_sub(1);
        drop(g);
        book.changed.notify_all();
    }
}

/// Seals one queued capture, unless a restore took it over or holds it.
fn one(vault: &Path, book: &Book, id: &str) {
    {
        let mut g = book.lock();
        if !g.queued.remove(id) || g.busy.contains(id) {
            return;
        }
        g.busy.insert(id.to_owned());
    }
    let result = seal_write(vault, id);
    let mut g = book.lock();
    g.busy.remove(id);
    match result {
        Ok(_) => {
            g.failed.remove(id);
        }
        Err(e) => {
            g.failed.insert(id.to_owned(), e.to_string());
        }
    }
    drop(g);
    book.changed.notify_all();
}
