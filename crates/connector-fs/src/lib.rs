//! The `fs` connector (section 8 of the contract): deletes, writes and moves
//! under the gate's roots, each captured into the vault before it runs.
//!
//! Capture moves the old tree into `<vault>/<write_id>/data` with one
//! `rename` when the vault is on the same file system (O(entries): the tree
//! is walked once for the manifest, no content is read), else with a copy
//! that keeps modes, owners, times, links, empty directories and FIFOs and
//! hashes every file. `manifest.json` beside it lists every entry; restore
//! puts the tree back and verifies it against that list. `seal.json` holds
//! the captured files' hashes (computed in the background after a rename):
//! a restore checks the vault's copy against it before it puts anything
//! back, and without one says the contents are not verified (`seal`).
//!
//! Every path is resolved from the root's directory descriptor, one
//! component at a time with `O_NOFOLLOW`, and every change is an `*at` call
//! on those descriptors: a symbolic link swapped into a parent after the
//! plan is refused, never followed.

mod action;
mod capture;
mod effect;
mod error;
mod execute;
pub mod fault;
mod manifest;
mod observe;
mod paths;
mod plan;
mod restore;
mod seal;
mod tree;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use recourse_client::{RestoreItem, RestoreStatus, RollbackReport};
use recourse_connector::{Connector, ConnectorError, Plan};
use recourse_core::{Evidence, EvidenceKind, Observation, Proposal, ReasonCode, Resource, Step};
use rustix::fs as rfs;
use serde_json::{json, Value};

/// An `fs` action read strictly, as `plan` reads it first (public for the
/// fuzz target `fs_plan`, which checks it round-trips).
pub use action::parse as parse_action;
pub use action::FsAction;
pub use error::FsError;
pub use manifest::{Entry, Kind, Manifest, Method};
pub use restore::{RESTORE_COPY_CRASH_POINTS, RESTORE_CRASH_POINTS};
pub use seal::{Seal, SealedFile, SEAL_CRASH_POINTS};

use tree::lstat;

/// Linux's `PATH_MAX`, with its terminating NUL.
const PATH_MAX: usize = 4096;
/// Linux's `NAME_MAX`.
const NAME_MAX: usize = 255;

const DATA: &str = "data";
const MANIFEST: &str = "manifest.json";
const MANIFEST_TMP: &str = "manifest.json.tmp";
const COPYING: &str = "copying";
const RESTORED: &str = "restored.json";

/// Names inside a directory that a reviewer should see in the blast radius.
const NOTABLE: &[(&str, &str, &str)] = &[
    (
        ".git",
        "git.repository",
        "git repository: history, branches, stash and hooks",
    ),
    (".hg", "hg.repository", "Mercurial repository"),
    (
        ".svn",
        "svn.working_copy",
        "Subversion working copy metadata",
    ),
    (".jj", "jj.repository", "Jujutsu repository"),
    (
        ".env",
        "fs.secrets",
        "environment file (often holds secrets)",
    ),
];

/// The `fs` connector. Cheap to clone; the work runs on blocking threads so
/// a large copy never stalls the gate's runtime.
#[derive(Clone)]
pub struct FsConnector {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsConnector")
            .field("roots", &self.inner.roots)
            .field("vault", &self.inner.vault)
            .field("copy_mode", &self.inner.copy_mode)
            .field("copy_restore", &self.inner.copy_restore)
            .finish()
    }
}

struct Inner {
    /// Canonical, UTF-8.
    roots: Vec<PathBuf>,
    /// Canonical, UTF-8, outside every root.
    vault: PathBuf,
    /// Copy even where a rename would do (tests; a vault meant to survive
    /// the disk the roots are on).
    copy_mode: bool,
    /// Restore (and move what is in the way into the vault) by copy even
    /// where a rename would do: what a vault on another file system than
    /// the root makes it do (tests).
    copy_restore: bool,
    /// Write id -> device of the captured path's parent, from `plan`, so
    /// `observe` can say whether the capture will be a rename.
    planned: Mutex<HashMap<String, u64>>,
    /// Hashes captures in the background (shared by the `with_*` copies).
    sealer: Arc<seal::Sealer>,
}

fn canonical_utf8(path: &Path) -> Result<PathBuf, std::io::Error> {
    tree::canonicalize(path)
}

impl FsConnector {
    /// Roots must exist and be directories; the vault is created if missing.
    /// Refuses a vault inside a root or a root inside the vault.
    pub fn new(roots: Vec<PathBuf>, vault: PathBuf) -> Result<FsConnector, FsError> {
        if roots.is_empty() {
            return Err(FsError::NoRoots);
        }
        let mut canon = Vec::with_capacity(roots.len());
        for root in roots {
            let c = canonical_utf8(&root).map_err(|source| FsError::Root {
                path: root.clone(),
                source,
            })?;
            let is_dir = tree::is_dir(&c).map_err(|source| FsError::Root {
                path: root.clone(),
                source,
            })?;
            if !is_dir {
                return Err(FsError::RootNotDir(root));
            }
            if c.to_str().is_none() {
                return Err(FsError::NotUtf8(root));
            }
            if !canon.contains(&c) {
                canon.push(c);
            }
        }
        tree::create_dir_all(&vault).map_err(|source| FsError::Vault {
            path: vault.clone(),
            source,
        })?;
        let v = canonical_utf8(&vault).map_err(|source| FsError::Vault {
            path: vault.clone(),
            source,
        })?;
        let is_dir = tree::is_dir(&v).map_err(|source| FsError::Vault {
            path: vault.clone(),
            source,
        })?;
        if !is_dir {
            return Err(FsError::VaultNotDir(vault));
        }
        if v.to_str().is_none() {
            return Err(FsError::NotUtf8(vault));
        }
        for root in &canon {
            if v.starts_with(root) {
                return Err(FsError::VaultInRoot {
                    vault: v,
                    root: root.clone(),
                });
            }
            if root.starts_with(&v) {
                return Err(FsError::RootInVault {
                    root: root.clone(),
                    vault: v,
                });
            }
        }
        // Starting is when seals a crash left unwritten are completed.
        let sealer = Arc::new(seal::Sealer::start(v.clone()));
        sealer.scan();
        Ok(FsConnector {
            inner: Arc::new(Inner {
                roots: canon,
                vault: v,
                copy_mode: false,
                copy_restore: false,
                planned: Mutex::new(HashMap::new()),
                sealer,
            }),
        })
    }

    /// Captures by copy even on the vault's own file system.
    pub fn with_copy_mode(self, copy: bool) -> FsConnector {
        let inner = Inner {
            roots: self.inner.roots.clone(),
            vault: self.inner.vault.clone(),
            copy_mode: copy,
            copy_restore: self.inner.copy_restore,
            planned: Mutex::new(HashMap::new()),
            sealer: self.inner.sealer.clone(),
        };
        FsConnector {
            inner: Arc::new(inner),
        }
    }

    /// Restores by copy even on the vault's own file system, as it must
    /// from a vault on another one (tests of that path; a rename is used
    /// wherever it works otherwise, in copy mode too).
    pub fn with_copy_restore(self, copy: bool) -> FsConnector {
        let inner = Inner {
            roots: self.inner.roots.clone(),
            vault: self.inner.vault.clone(),
            copy_mode: self.inner.copy_mode,
            copy_restore: copy,
            planned: Mutex::new(HashMap::new()),
            sealer: self.inner.sealer.clone(),
        };
        FsConnector {
            inner: Arc::new(inner),
        }
    }

    /// The canonical roots.
    pub fn roots(&self) -> &[PathBuf] {
        &self.inner.roots
    }

    /// The canonical vault directory.
    pub fn vault(&self) -> &Path {
        &self.inner.vault
    }

    /// `<vault>/<write_id>`: where a write's capture lives.
    pub fn vault_dir(&self, write_id: &str) -> PathBuf {
        self.inner.vault.join(write_id)
    }

    /// The evidence id of a write's vault snapshot.
    pub fn evidence_id(write_id: &str) -> String {
        format!("vault-{write_id}")
    }

    /// Waits until the background sealer has finished every seal and scan
    /// queued so far; false if `within` passed first (tests, benchmarks).
    pub fn settle_seals(&self, within: std::time::Duration) -> bool {
        self.inner.sealer.settle(within)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ConnectorError> + Send + 'static,
) -> Result<T, ConnectorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ConnectorError::Io(format!("fs task failed: {e}")))?
}

#[async_trait]
impl Connector for FsConnector {
    fn name(&self) -> &'static str {
        "fs"
    }

    /// The one op this connector runs in a rollback: its own `restore`, as
    /// `plan` models it (`{"connector": "fs", "op": "restore"}`, nothing
    /// else). It restores from what it captured for the write.
    fn accepts_step(&self, op: &Value) -> bool {
        op.as_object().is_some_and(|o| {
            o.len() == 2
                && o.get("connector").and_then(Value::as_str) == Some("fs")
                && o.get("op").and_then(Value::as_str) == Some("restore")
        })
    }

    async fn plan(&self, write_id: &str, action: &Value) -> Result<Plan, ConnectorError> {
        let (inner, id, action) = (self.inner.clone(), write_id.to_owned(), action.clone());
        blocking(move || inner.plan(&id, &action)).await
    }

    async fn effect(
        &self,
        _write_id: &str,
        action: &Value,
    ) -> Result<Option<recourse_client::EffectChange>, ConnectorError> {
        let (inner, action) = (self.inner.clone(), action.clone());
        blocking(move || inner.effect(&action).map(Some)).await
    }

    async fn observe(&self, write_id: &str, evidence: &Evidence) -> Option<Observation> {
        if evidence.id != FsConnector::evidence_id(write_id) {
            return None;
        }
        let (inner, id) = (self.inner.clone(), write_id.to_owned());
        match blocking(move || Ok(inner.observe(&id))).await {
            Ok(o) => Some(o),
            Err(e) => Some(absent(e.to_string())),
        }
    }

    async fn capture(&self, write_id: &str, proposal: &Proposal) -> Result<Value, ConnectorError> {
        let (inner, id, action) = (
            self.inner.clone(),
            write_id.to_owned(),
            proposal.action.clone(),
        );
        blocking(move || inner.capture(&id, &action)).await
    }

    async fn captured(
        &self,
        write_id: &str,
        proposal: &Proposal,
    ) -> Result<Option<Value>, ConnectorError> {
        let (inner, id, action) = (
            self.inner.clone(),
            write_id.to_owned(),
            proposal.action.clone(),
        );
        blocking(move || inner.captured(&id, &action)).await
    }

    async fn execute(
        &self,
        write_id: &str,
        proposal: &Proposal,
        _capture: &Value,
    ) -> Result<Value, ConnectorError> {
        let (inner, id, action) = (
            self.inner.clone(),
            write_id.to_owned(),
            proposal.action.clone(),
        );
        blocking(move || inner.execute(&id, &action)).await
    }

    async fn applied(
        &self,
        write_id: &str,
        proposal: &Proposal,
        _capture: &Value,
    ) -> Result<Option<bool>, ConnectorError> {
        let (inner, id, action) = (
            self.inner.clone(),
            write_id.to_owned(),
            proposal.action.clone(),
        );
        blocking(move || inner.applied(&id, &action)).await
    }

    async fn restore(
        &self,
        write_id: &str,
        proposal: &Proposal,
        capture: &Value,
        _outcome: Option<&Value>,
        force: bool,
    ) -> Result<RollbackReport, ConnectorError> {
        let (inner, id, action, capture) = (
            self.inner.clone(),
            write_id.to_owned(),
            proposal.action.clone(),
            capture.clone(),
        );
        blocking(move || inner.restore(&id, &action, &capture, force)).await
    }
}

fn absent(detail: impl Into<String>) -> Observation {
    Observation {
        present: false,
        captured_at: None,
        detail: Some(detail.into()),
    }
}

/// Maps an I/O error with its context. A failed fsync is a durability
/// failure, never plain I/O: after one the page cache's state is unknown,
/// and retrying could report success for data that never reached the disk.
fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ConnectorError {
    move |e| {
        if tree::is_fsync_failure(&e) {
            ConnectorError::Durability(format!("{context}: {e}"))
        } else {
            ConnectorError::Io(format!("{context}: {e}"))
        }
    }
}

/// An error after the step changed the target (took its tree, left
/// scratch beside it) and that calling the step again finishes: never
/// `Io`, which says nothing changed and would let the gate settle the
/// write as not run with the target half done; `Resumable`, so the gate
/// calls again. A failed fsync stays a durability failure.
fn resumable(e: ConnectorError, note: &str) -> ConnectorError {
    match e {
        ConnectorError::Io(m) => ConnectorError::Resumable(format!("{m}; {note}")),
        other => other,
    }
}

/// A failure to read the vault's record of a write (its manifest, its
/// directory). That record is what says whether the capture already took
/// the target: without it, "nothing changed" cannot be said, and an `Io`
/// error would let the gate settle the write as not run while the vault
/// may hold what was at the path (found by the I/O fault suite). Calling
/// again reads it: the gate is told to retry.
fn unreadable(e: ConnectorError) -> ConnectorError {
    resumable(
        e,
        "the vault's record of this write could not be read; calling again reads it",
    )
}

/// The name `finish_copy` gives the original beside it while removing it.
fn removing(write_id: &str) -> String {
    format!(".recourse-{write_id}.removing")
}

fn outside(message: impl Into<String>) -> ConnectorError {
    ConnectorError::refuse(ReasonCode::OutsideRoots, message)
}

fn check_write_id(write_id: &str) -> Result<(), ConnectorError> {
    let ok = !write_id.is_empty()
        && write_id.len() <= 128
        && !write_id.starts_with('.')
        && write_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ConnectorError::invalid(
            "write_id",
            format!(
                "`{}` is not a vault name (1-128 of A-Z a-z 0-9 . _ -, not starting with `.`)",
                write_id.escape_default()
            ),
        ))
    }
}

/// A path under a root, checked lexically.
#[derive(Debug)]
struct Target {
    abs: String,
    root: PathBuf,
    parents: Vec<OsString>,
    name: OsString,
}

/// A target whose parent directory is open (reached without following any
/// link): every change to it goes through `parent`.
struct Place {
    abs: String,
    parent: OwnedFd,
    name: OsString,
}

impl Place {
    fn id(&self) -> String {
        format!("fs:{}", self.abs)
    }

    fn stat(&self) -> Result<Option<rfs::Stat>, ConnectorError> {
        lstat(self.parent.as_fd(), &self.name).map_err(io(format!("`{}`", self.abs)))
    }

    fn name(&self) -> &OsStr {
        &self.name
    }
}

fn item(resource: String, status: RestoreStatus, detail: impl Into<String>) -> RestoreItem {
    RestoreItem {
        resource,
        status,
        detail: Some(detail.into()),
    }
}

fn report(items: Vec<RestoreItem>, forced: bool) -> RollbackReport {
    let verified = !items.is_empty() && items.iter().all(|i| i.status == RestoreStatus::Restored);
    RollbackReport {
        verified,
        items,
        forced,
    }
}

fn summary(diffs: &[String]) -> String {
    let shown: Vec<&str> = diffs.iter().take(5).map(String::as_str).collect();
    let more = diffs.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} (and {more} more)", shown.join("; "))
    } else {
        shown.join("; ")
    }
}

/// A write id names one action: its capture serves no other.
fn same_action(m: &Manifest, act: &FsAction, write_id: &str) -> Result<(), ConnectorError> {
    if m.op == act.op() && m.path == act.captured_path().0 {
        Ok(())
    } else {
        Err(ConnectorError::invalid(
            "write_id",
            format!(
                "write `{write_id}` captured a {} of `{}`, not this action",
                m.op, m.path
            ),
        ))
    }
}

fn fstat_dev(fd: &OwnedFd) -> Result<u64, ConnectorError> {
    tree::fstat(fd)
        .map(|st| tree::dev(&st))
        .map_err(io("fstat"))
}

fn verdict(
    resource: String,
    want: &[Entry],
    now: &[Entry],
    same_inodes: bool,
    how: &str,
) -> RestoreItem {
    let diffs = manifest::compare(want, now, same_inodes);
    if diffs.is_empty() {
        let checked = if want.iter().any(|e| e.sha256.is_some()) {
            "contents (sha256), types, modes, sizes, mtimes and link targets"
        } else if same_inodes {
            "inodes, types, modes, sizes, mtimes and link targets"
        } else {
            "types, modes, sizes, mtimes and link targets"
        };
        item(
            resource,
            RestoreStatus::Restored,
            format!(
                "{how}; {} entries verified against the manifest: {checked}",
                want.len()
            ),
        )
    } else {
        item(
            resource,
            RestoreStatus::Mismatch,
            format!(
                "{how}, but verification found {} differences: {}",
                diffs.len(),
                summary(&diffs)
            ),
        )
    }
}

fn drifted(drift: Vec<(String, String)>) -> RollbackReport {
    let items = drift
        .into_iter()
        .map(|(id, why)| {
            item(
                id,
                RestoreStatus::Drift,
                format!("{why}; nothing was changed (force overwrites)"),
            )
        })
        .collect();
    RollbackReport {
        verified: false,
        items,
        forced: false,
    }
}

#[cfg(test)]
mod path_model;
#[cfg(test)]
mod tests;
