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
mod error;
mod manifest;
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
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;
use serde_json::{json, Value};

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
    path.canonicalize()
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
            let meta = std::fs::metadata(&c).map_err(|source| FsError::Root {
                path: root.clone(),
                source,
            })?;
            if !meta.is_dir() {
                return Err(FsError::RootNotDir(root));
            }
            if c.to_str().is_none() {
                return Err(FsError::NotUtf8(root));
            }
            if !canon.contains(&c) {
                canon.push(c);
            }
        }
        std::fs::create_dir_all(&vault).map_err(|source| FsError::Vault {
            path: vault.clone(),
            source,
        })?;
        let v = canonical_utf8(&vault).map_err(|source| FsError::Vault {
            path: vault.clone(),
            source,
        })?;
        let meta = std::fs::metadata(&v).map_err(|source| FsError::Vault {
            path: vault.clone(),
            source,
        })?;
        if !meta.is_dir() {
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

impl Inner {
    // ---- paths -------------------------------------------------------------

    /// Lexical checks, then the root the path lies under. Malformed input is
    /// `Invalid`; anything that leaves the roots is refused.
    fn locate(&self, raw: &str, field: &str) -> Result<Target, ConnectorError> {
        let bad =
            |m: &str| ConnectorError::invalid(field, format!("`{}` {m}", raw.escape_default()));
        if raw.is_empty() {
            return Err(ConnectorError::invalid(field, "must not be empty"));
        }
        if raw.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        if raw.len() >= PATH_MAX {
            return Err(ConnectorError::invalid(
                field,
                format!(
                    "is {} bytes long; the limit is PATH_MAX ({PATH_MAX})",
                    raw.len()
                ),
            ));
        }
        if !raw.starts_with('/') {
            return Err(bad("is not an absolute path"));
        }
        if raw.len() > 1 && raw.ends_with('/') {
            return Err(bad("ends with `/`"));
        }
        for seg in raw.split('/').skip(1) {
            match seg {
                ".." => {
                    return Err(outside(format!(
                        "{field}: `{raw}` contains `..`: a path may not climb out of the roots"
                    )))
                }
                "." => return Err(bad("contains a `.` segment")),
                "" if raw != "/" => return Err(bad("contains an empty segment (`//`)")),
                s if s.len() > NAME_MAX => {
                    return Err(bad("has a component longer than NAME_MAX (255)"))
                }
                _ => {}
            }
        }
        let p = Path::new(raw);
        if p.starts_with(&self.vault) {
            return Err(outside(format!("{field}: `{raw}` is in the gate's vault")));
        }
        if self.vault.starts_with(p) {
            return Err(outside(format!("{field}: `{raw}` holds the gate's vault")));
        }
        let Some(root) = self
            .roots
            .iter()
            .filter(|r| p.starts_with(r))
            .max_by_key(|r| r.as_os_str().len())
        else {
            return Err(outside(format!(
                "{field}: `{raw}` is outside the gate's roots"
            )));
        };
        if p == root.as_path() {
            return Err(outside(format!(
                "{field}: `{raw}` is a root itself: the gate never deletes, replaces or moves a whole root"
            )));
        }
        if let Some(inner_root) = self.roots.iter().find(|r| r.starts_with(p)) {
            return Err(outside(format!(
                "{field}: `{raw}` holds the root `{}`",
                inner_root.display()
            )));
        }
        let mut parts: Vec<OsString> = Vec::new();
        for c in p
            .strip_prefix(root)
            .map_err(|_| bad("is not under its root"))?
            .components()
        {
            match c {
                Component::Normal(s) => parts.push(s.to_owned()),
                _ => return Err(bad("is not a plain path")),
            }
        }
        let Some(name) = parts.pop() else {
            return Err(bad("names no entry"));
        };
        Ok(Target {
            abs: raw.to_owned(),
            root: root.clone(),
            parents: parts,
            name,
        })
    }

    /// Opens the target's parent from the root, one component at a time,
    /// never following a link.
    fn open(&self, t: Target, field: &str) -> Result<Place, ConnectorError> {
        let mut fd = rfs::openat(
            rfs::CWD,
            t.root.as_path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ConnectorError::Io(format!("root `{}`: {e}", t.root.display())))?;
        let mut walked = t.root.clone();
        for c in &t.parents {
            walked.push(c);
            fd = match tree::open_dir(fd.as_fd(), c) {
                Ok(next) => next,
                Err(e) => {
                    let st = lstat(fd.as_fd(), c).ok().flatten();
                    let shown = walked.display();
                    return Err(match st.map(|s| tree::kind(&s)) {
                        Some(Kind::Symlink) => outside(format!(
                            "{field}: `{shown}` is a symbolic link: the gate never follows links out of a path"
                        )),
                        Some(Kind::Dir) => ConnectorError::Io(format!("`{shown}`: {e}")),
                        Some(_) => ConnectorError::invalid(field, format!("`{shown}` is not a directory")),
                        None => ConnectorError::invalid(field, format!("`{shown}` does not exist")),
                    });
                }
            };
        }
        Ok(Place {
            abs: t.abs,
            parent: fd,
            name: t.name,
        })
    }

    fn place(&self, raw: &str, field: &str) -> Result<Place, ConnectorError> {
        let t = self.locate(raw, field)?;
        self.open(t, field)
    }

    /// The rules for the entry itself: never through a link when writing,
    /// never a file another name shares (it could be a file outside).
    fn guard_entry(
        &self,
        st: &rfs::Stat,
        raw: &str,
        field: &str,
        writing: bool,
    ) -> Result<(), ConnectorError> {
        let k = tree::kind(st);
        if writing && k == Kind::Symlink {
            return Err(outside(format!(
                "{field}: `{raw}` is a symbolic link: the gate never writes through a link"
            )));
        }
        if writing && k == Kind::Dir {
            return Err(ConnectorError::invalid(
                field,
                format!("`{raw}` is a directory"),
            ));
        }
        if writing && k != Kind::File {
            return Err(ConnectorError::invalid(
                field,
                format!("`{raw}` is a {}, not a regular file", k.as_str()),
            ));
        }
        if k == Kind::File && tree::nlink(st) > 1 {
            return Err(outside(format!(
                "{field}: `{raw}` has {} hard links: another name (possibly outside the roots) shares it",
                tree::nlink(st)
            )));
        }
        Ok(())
    }

    fn vault_fd(&self) -> Result<OwnedFd, ConnectorError> {
        rfs::openat(
            rfs::CWD,
            self.vault.as_path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ConnectorError::Io(format!("vault `{}`: {e}", self.vault.display())))
    }

    fn write_dir(&self, write_id: &str) -> Result<Option<OwnedFd>, ConnectorError> {
        let vault = self.vault_fd()?;
        match tree::open_dir(vault.as_fd(), OsStr::new(write_id)) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(format!(
                "vault `{}`",
                self.vault.join(write_id).display()
            ))(e)),
        }
    }

    fn load_manifest(&self, write_id: &str) -> Result<Option<(Manifest, String)>, ConnectorError> {
        let Some(dir) = self.write_dir(write_id)? else {
            return Ok(None);
        };
        let bytes = match tree::read_small(dir.as_fd(), OsStr::new(MANIFEST)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("manifest")(e)),
        };
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            ConnectorError::Io(format!("manifest of write `{write_id}` is unreadable: {e}"))
        })?;
        Ok(Some((m, tree::sha256(&bytes))))
    }

    fn remember(&self, write_id: &str, dev: u64) {
        if let Ok(mut planned) = self.planned.lock() {
            if planned.len() > 10_000 {
                planned.clear();
            }
            planned.insert(write_id.to_owned(), dev);
        }
    }

    // ---- plan --------------------------------------------------------------

    fn describe(&self, place: &Place, st: Option<&rfs::Stat>, deep: bool) -> Vec<Resource> {
        let mut r = Resource::new(place.id());
        r.title = Some(place.abs.clone());
        let mut labels = serde_json::Map::new();
        let kind = st.map(tree::kind);
        let is_git = place.name() == OsStr::new(".git");
        r.kind = Some(match kind {
            None => "fs.absent".to_owned(),
            Some(Kind::Dir) if is_git => "git.repository".to_owned(),
            Some(k) => format!("fs.{}", k.as_str()),
        });
        if let Some(st) = st {
            labels.insert("type".into(), json!(tree::kind(st).as_str()));
            labels.insert("mode".into(), json!(format!("{:o}", st.st_mode & 0o7777)));
        }
        let mut out = Vec::new();
        if deep && kind == Some(Kind::Dir) {
            if let Ok(dir) = tree::open_dir(place.parent.as_fd(), place.name()) {
                if let Ok(names) = tree::list(dir.as_fd()) {
                    labels.insert("entries".into(), json!(names.len()));
                }
                for (name, kind, title) in NOTABLE {
                    if let Ok(Some(st)) = lstat(dir.as_fd(), OsStr::new(name)) {
                        let mut n = Resource::new(format!("{}/{name}", place.id()));
                        n.kind = Some((*kind).to_owned());
                        n.title = Some(format!(
                            "{title} ({}/{name}, a {})",
                            place.abs,
                            tree::kind(&st).as_str()
                        ));
                        out.push(n);
                    }
                }
            }
        }
        if !labels.is_empty() {
            r.labels = Some(labels);
        }
        out.insert(0, r);
        out
    }

    fn plan(&self, write_id: &str, action: &Value) -> Result<Plan, ConnectorError> {
        check_write_id(write_id)?;
        let act = action::parse(action)?;
        let mut plan = Plan::default();
        let dev;
        match &act {
            FsAction::Delete { path } => {
                let place = self.place(path, "action.path")?;
                let st = place.stat()?.ok_or_else(|| {
                    ConnectorError::invalid("action.path", format!("`{path}` does not exist"))
                })?;
                self.guard_entry(&st, path, "action.path", false)?;
                dev = fstat_dev(&place.parent)?;
                plan.touches.push(place.id());
                plan.resources
                    .extend(self.describe(&place, Some(&st), true));
            }
            FsAction::Write { path, .. } => {
                let place = self.place(path, "action.path")?;
                let st = place.stat()?;
                if let Some(st) = &st {
                    self.guard_entry(st, path, "action.path", true)?;
                }
                dev = fstat_dev(&place.parent)?;
                plan.touches.push(place.id());
                plan.resources
                    .extend(self.describe(&place, st.as_ref(), false));
            }
            FsAction::Move { path, to } => {
                if path == to {
                    return Err(ConnectorError::invalid(
                        "action.to",
                        "is the same path as `action.path`",
                    ));
                }
                let src = self.place(path, "action.path")?;
                let dst = self.place(to, "action.to")?;
                if Path::new(to).starts_with(path) {
                    return Err(ConnectorError::invalid(
                        "action.to",
                        format!("`{to}` lies inside `{path}`"),
                    ));
                }
                if Path::new(path).starts_with(to) {
                    return Err(ConnectorError::invalid(
                        "action.to",
                        format!("`{to}` holds `{path}`"),
                    ));
                }
                let s = src.stat()?.ok_or_else(|| {
                    ConnectorError::invalid("action.path", format!("`{path}` does not exist"))
                })?;
                self.guard_entry(&s, path, "action.path", false)?;
                let d = dst.stat()?;
                if let Some(d) = &d {
                    self.guard_entry(d, to, "action.to", false)?;
                }
                let (sd, dd) = (fstat_dev(&src.parent)?, fstat_dev(&dst.parent)?);
                if sd != dd {
                    return Err(ConnectorError::invalid(
                        "action.to",
                        format!("`{to}` is on another file system than `{path}`: a move must stay on one"),
                    ));
                }
                dev = dd;
                plan.touches.push(src.id());
                plan.touches.push(dst.id());
                plan.resources.extend(self.describe(&src, Some(&s), true));
                plan.resources.extend(self.describe(&dst, d.as_ref(), true));
            }
        }
        self.remember(write_id, dev);
        let vault_dir = self.vault.join(write_id);
        plan.step = Some(Step {
            restores: plan.touches.clone(),
            op: json!({"connector": "fs", "op": "restore"}),
            requires: vec![Evidence {
                id: FsConnector::evidence_id(write_id),
                kind: EvidenceKind::Snapshot,
                location: Some(format!("fs:{}", vault_dir.display())),
                until: None,
                max_age_s: None,
                check: None,
            }],
            modelled_by: Some("fs".into()),
        });
        Ok(plan)
    }

    // ---- observe -----------------------------------------------------------

    fn observe(&self, write_id: &str) -> Observation {
        if let Err(e) = check_write_id(write_id) {
            return absent(e.to_string());
        }
        match self.load_manifest(write_id) {
            Ok(Some((m, sha))) => self.observe_captured(write_id, &m, &sha),
            Ok(None) => self.observe_ready(write_id),
            Err(e) => absent(e.to_string()),
        }
    }

    fn observe_captured(&self, write_id: &str, m: &Manifest, sha: &str) -> Observation {
        let at = self.vault.join(write_id);
        let dir = match self.write_dir(write_id) {
            Ok(Some(d)) => d,
            Ok(None) => return absent(format!("`{}` is gone", at.display())),
            Err(e) => return absent(e.to_string()),
        };
        if let Ok(Some(_)) = lstat(dir.as_fd(), OsStr::new(RESTORED)) {
            return absent(format!(
                "the capture in `{}` was consumed by a rollback",
                at.display()
            ));
        }
        if let Ok(Some(_)) = lstat(dir.as_fd(), OsStr::new(restore::RESTORING)) {
            return absent(format!(
                "a rollback is putting the capture in `{}` back",
                at.display()
            ));
        }
        if m.existed() {
            match lstat(dir.as_fd(), OsStr::new(DATA)) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return absent(format!(
                        "the captured tree is missing from `{}`",
                        at.display()
                    ))
                }
                Err(e) => return absent(format!("`{}`: {e}", at.display())),
            }
        }
        // How a restore will verify the contents: a reviewer sees it here.
        let sealed = match seal::expected(dir.as_fd(), m, sha) {
            Ok(seal::Contents::Known { hashes, source }) => format!(
                "contents sealed: the sha256 of {} files, from {source}, checked before a restore puts anything back",
                hashes.len()
            ),
            Ok(seal::Contents::Unsealed(_)) if self.sealer.pending(write_id) => {
                "not sealed yet: its contents are being hashed in the background".to_owned()
            }
            Ok(seal::Contents::Unsealed(why)) => {
                let failed = self
                    .sealer
                    .failure(write_id)
                    .map(|f| format!(" (sealing failed: {f})"))
                    .unwrap_or_default();
                format!("not sealed: {why}{failed}; a restore cannot verify its contents")
            }
            Ok(seal::Contents::Bad(why)) => {
                return absent(format!(
                    "the seal of the capture in `{}` cannot be trusted: {why}; a restore puts nothing back from it",
                    at.display()
                ))
            }
            Err(e) => return absent(format!("`{}`: {e}", at.display())),
        };
        let detail = match m.method {
            Some(method) => format!(
                "`{}` captured by {} into `{}`: {} entries in the manifest; {sealed}",
                m.path,
                method.as_str(),
                at.display(),
                m.captured.len()
            ),
            None => format!(
                "nothing existed at `{}`; the manifest in `{}` records that",
                m.path,
                at.display()
            ),
        };
        Observation {
            present: true,
            captured_at: Some(m.captured_at),
            detail: Some(detail),
        }
    }

    fn observe_ready(&self, write_id: &str) -> Observation {
        let vault = match self.vault_fd() {
            Ok(v) => v,
            Err(e) => return absent(e.to_string()),
        };
        // The vault must still be where it was checked to be: outside the roots.
        match self.vault.canonicalize() {
            Ok(c) if c == self.vault && !self.roots.iter().any(|r| c.starts_with(r)) => {}
            _ => {
                return absent(format!(
                    "vault `{}` moved or now lies inside a root",
                    self.vault.display()
                ))
            }
        }
        let probe = format!(".probe-{write_id}");
        if let Err(e) = tree::create_file(vault.as_fd(), OsStr::new(&probe), b"", 0o600) {
            return absent(format!(
                "vault `{}` is not writable: {e}",
                self.vault.display()
            ));
        }
        let _ = rfs::unlinkat(vault.as_fd(), probe.as_str(), rfs::AtFlags::empty());
        let planned = self
            .planned
            .lock()
            .ok()
            .and_then(|p| p.get(write_id).copied());
        let how = if self.copy_mode {
            "a copy (copy mode is set)".to_owned()
        } else {
            match (planned, fstat_dev(&vault).ok()) {
                (Some(a), Some(b)) if a == b => {
                    "a rename (same file system as the vault)".to_owned()
                }
                (Some(_), Some(_)) => {
                    "a copy (the path is on another file system than the vault)".to_owned()
                }
                _ => "a rename where the path shares the vault's file system, a copy otherwise"
                    .to_owned(),
            }
        };
        Observation {
            present: true,
            captured_at: None,
            detail: Some(format!(
                "vault `{}` is writable and outside the roots; the capture will be {how}",
                self.vault.display()
            )),
        }
    }

    // ---- capture -----------------------------------------------------------

    fn capture(&self, write_id: &str, action: &Value) -> Result<Value, ConnectorError> {
        check_write_id(write_id)?;
        let act = action::parse(action)?;
        if let Some((m, sha)) = self.load_manifest(write_id)? {
            same_action(&m, &act, write_id)?;
            // A retry after a crash: finish what a copy left undone, and
            // the seal.
            self.finish_copy(&m)?;
            self.seal_after_capture(write_id, &m);
            return Ok(self.record(write_id, &m, &sha));
        }
        // A rename into the vault that a crash cut short leaves `data`
        // without a manifest (and without the `copying` mark a copy sets):
        // the original is gone, so the plan's checks cannot run again.
        let resumed = match self.write_dir(write_id)? {
            Some(w) => {
                let has = |n: &str| {
                    lstat(w.as_fd(), OsStr::new(n))
                        .map(|s| s.is_some())
                        .map_err(io("vault"))
                };
                has(DATA)? && !has(COPYING)?
            }
            None => false,
        };
        if !resumed {
            // Everything the plan checked is checked again, now.
            self.plan(write_id, action)?;
        }
        let (raw, field) = act.captured_path();
        let place = self.place(raw, field)?;
        let st = place.stat()?;
        if let Some(st) = &st {
            self.guard_entry(st, raw, field, matches!(act, FsAction::Write { .. }))?;
        }
        let vault = self.vault_fd()?;
        match rfs::mkdirat(vault.as_fd(), write_id, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                return Err(ConnectorError::Io(format!(
                    "vault `{}`: {e}",
                    self.vault.display()
                )))
            }
        }
        let wdir = tree::open_dir(vault.as_fd(), OsStr::new(write_id)).map_err(io("vault"))?;
        let w = wdir.as_fd();
        let data_there = lstat(w, OsStr::new(DATA)).map_err(io("vault"))?.is_some();
        let copying = lstat(w, OsStr::new(COPYING))
            .map_err(io("vault"))?
            .is_some();
        if copying {
            // A copy that did not finish: the original is whole (it goes only
            // after the manifest), so start again.
            if data_there {
                tree::remove(w, OsStr::new(DATA)).map_err(io("vault"))?;
            }
            let _ = rfs::unlinkat(w, COPYING, rfs::AtFlags::empty());
        }
        let (method, entries) = if data_there && !copying {
            // The rename happened before a crash; only the manifest is missing.
            let entries = tree::walk(w, OsStr::new(DATA), false).map_err(io("vault"))?;
            (Some(Method::Rename), entries)
        } else {
            match &st {
                None if matches!(act, FsAction::Delete { .. }) => {
                    return Err(ConnectorError::invalid(
                        field,
                        format!("`{raw}` does not exist"),
                    ));
                }
                None => (None, Vec::new()),
                Some(st) => self.take(&place, st, w)?,
            }
        };
        let mut moved = None;
        if let FsAction::Move { path, to } = &act {
            let src = self.place(path, "action.path")?;
            let entries = tree::walk(src.parent.as_fd(), src.name(), false)
                .map_err(io(format!("`{path}`")))?;
            moved = Some(manifest::Moved {
                from: path.clone(),
                to: to.clone(),
                entries,
            });
        }
        let (written_sha256, written_mode) = match &act {
            FsAction::Write { content, .. } => (
                Some(tree::sha256(content)),
                Some(
                    entries
                        .first()
                        .filter(|e| e.kind == Kind::File)
                        .map_or(0o644, |e| e.mode),
                ),
            ),
            _ => (None, None),
        };
        let m = Manifest {
            version: 1,
            write_id: write_id.to_owned(),
            op: act.op().to_owned(),
            path: raw.to_owned(),
            method,
            captured_at: Utc::now(),
            captured: entries,
            moved,
            written_sha256,
            written_mode,
        };
        let bytes =
            serde_json::to_vec(&m).map_err(|e| ConnectorError::Io(format!("manifest: {e}")))?;
        let _ = rfs::unlinkat(w, MANIFEST_TMP, rfs::AtFlags::empty());
        tree::create_file(w, OsStr::new(MANIFEST_TMP), &bytes, 0o600).map_err(io("manifest"))?;
        rfs::renameat(w, MANIFEST_TMP, w, MANIFEST)
            .map_err(|e| ConnectorError::Io(format!("manifest: {e}")))?;
        let _ = rfs::unlinkat(w, COPYING, rfs::AtFlags::empty());
        tree::fsync(w).map_err(io("vault"))?;
        tree::fsync(vault.as_fd()).map_err(io("vault"))?;
        self.finish_copy(&m)?;
        self.seal_after_capture(write_id, &m);
        Ok(self.record(write_id, &m, &tree::sha256(&bytes)))
    }

    /// A copy hashed every file: its seal is written now. A rename read no
    /// contents: its seal is computed in the background, so the capture
    /// stays O(entries). A seal that cannot be written now is retried by
    /// the sealer; the capture itself is complete either way.
    fn seal_after_capture(&self, write_id: &str, m: &Manifest) {
        match m.method {
            Some(Method::Copy) => {
                let held = self.sealer.hold(write_id);
                let done = seal::seal_write(&self.vault, write_id).is_ok();
                drop(held);
                if !done {
                    self.sealer.enqueue(write_id);
                }
            }
            Some(Method::Rename) => self.sealer.enqueue(write_id),
            None => {}
        }
    }

    /// Moves the entry at `place` into `<write dir>/data`: a rename when it
    /// can, else a copy (the original then goes in `finish_copy`, after the
    /// manifest is durable).
    fn take(
        &self,
        place: &Place,
        st: &rfs::Stat,
        w: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(Option<Method>, Vec<Entry>), ConnectorError> {
        let ctx = format!("capturing `{}`", place.abs);
        if !self.copy_mode
            && tree::rename_noreplace(place.parent.as_fd(), place.name(), w, OsStr::new(DATA))
                .map_err(io(&ctx))?
        {
            tree::fsync(w).map_err(io(&ctx))?;
            tree::fsync(place.parent.as_fd()).map_err(io(&ctx))?;
            let mut entries = tree::walk(w, OsStr::new(DATA), false).map_err(io(&ctx))?;
            // A rename may touch the directory's own times: keep the ones
            // it had where it stood.
            let before = tree::entry(st);
            if let Some(top) = entries.first_mut() {
                top.mtime = before.mtime;
                top.atime = before.atime;
            }
            return Ok((Some(Method::Rename), entries));
        }
        tree::create_file(w, OsStr::new(COPYING), b"", 0o600).map_err(io(&ctx))?;
        tree::fsync(w).map_err(io(&ctx))?;
        let entries = tree::copy(place.parent.as_fd(), place.name(), w, OsStr::new(DATA))
            .map_err(io(&ctx))?;
        tree::fsync(w).map_err(io(&ctx))?;
        Ok((Some(Method::Copy), entries))
    }

    /// After a copy: removes the original, once, and only if it is still the
    /// very tree that was copied.
    fn finish_copy(&self, m: &Manifest) -> Result<(), ConnectorError> {
        if m.method != Some(Method::Copy) {
            return Ok(());
        }
        let Some(top) = m.top() else { return Ok(()) };
        let field = if m.op == "move" {
            "action.to"
        } else {
            "action.path"
        };
        let place = self.place(&m.path, field)?;
        if let Some(st) = place.stat()? {
            // The same inode, and for a file the same size and mtime: after
            // the copy's original went, its number may be reused (by the
            // very file a write wrote there), and that is not ours to remove.
            let e = tree::entry(&st);
            let same = e.ino == top.ino
                && e.kind == top.kind
                && (e.kind == Kind::Dir || (e.size == top.size && e.mtime == top.mtime));
            if same {
                let ctx = format!("removing `{}` after copying it", m.path);
                tree::remove(place.parent.as_fd(), place.name()).map_err(io(&ctx))?;
                tree::fsync(place.parent.as_fd()).map_err(io(&ctx))?;
            }
        }
        Ok(())
    }

    /// The record `capture` returned, read back from the manifest (the
    /// gate lost it in a crash); `None` when nothing was captured.
    fn captured(&self, write_id: &str, action: &Value) -> Result<Option<Value>, ConnectorError> {
        check_write_id(write_id)?;
        let act = action::parse(action)?;
        let Some((m, sha)) = self.load_manifest(write_id)? else {
            return Ok(None);
        };
        same_action(&m, &act, write_id)?;
        Ok(Some(self.record(write_id, &m, &sha)))
    }

    fn record(&self, write_id: &str, m: &Manifest, sha: &str) -> Value {
        let dir = self.vault.join(write_id);
        json!({
            "vault": dir.display().to_string(),
            "manifest": dir.join(MANIFEST).display().to_string(),
            "manifest_sha256": sha,
            "path": m.path,
            "existed": m.existed(),
            "method": m.method.map(Method::as_str),
            "entries": m.captured.len(),
            "captured_at": m.captured_at,
        })
    }

    fn need_manifest(
        &self,
        write_id: &str,
        act: &FsAction,
    ) -> Result<(Manifest, String), ConnectorError> {
        check_write_id(write_id)?;
        let found = self.load_manifest(write_id)?.ok_or_else(|| {
            ConnectorError::Io(format!(
                "the vault holds no capture for write `{write_id}`: capture runs first"
            ))
        })?;
        same_action(&found.0, act, write_id)?;
        Ok(found)
    }

    // ---- execute -----------------------------------------------------------

    fn execute(&self, write_id: &str, action: &Value) -> Result<Value, ConnectorError> {
        let act = action::parse(action)?;
        let (m, _) = self.need_manifest(write_id, &act)?;
        // The capture took the tree away; a copy's original goes here if a
        // crash kept it (the gate may have taken the record from `captured`,
        // which changes nothing).
        self.finish_copy(&m)?;
        match &act {
            FsAction::Delete { path } => {
                Ok(json!({"op": "delete", "path": path, "method": m.method.map(Method::as_str)}))
            }
            FsAction::Write { path, content } => {
                let place = self.place(path, "action.path")?;
                let want = m
                    .written_sha256
                    .clone()
                    .unwrap_or_else(|| tree::sha256(content));
                if tree::sha256(content) != want {
                    return Err(ConnectorError::Io(format!(
                        "the content to write is not the content captured for write `{write_id}`"
                    )));
                }
                if let Some(st) = place.stat()? {
                    if self.is_written(&place, &st, &want)? {
                        return Ok(
                            json!({"op": "write", "path": path, "sha256": want, "already_applied": true}),
                        );
                    }
                    return Err(ConnectorError::Drift(format!(
                        "`{path}` was created by something else after the capture; it was not overwritten"
                    )));
                }
                let tmp = format!(".recourse-{write_id}.tmp");
                let dir = place.parent.as_fd();
                let _ = rfs::unlinkat(dir, tmp.as_str(), rfs::AtFlags::empty());
                let mode = m.written_mode.unwrap_or(0o644);
                let ctx = format!("writing `{path}`");
                tree::create_file(dir, OsStr::new(&tmp), content, mode).map_err(io(&ctx))?;
                match rfs::renameat_with(
                    dir,
                    tmp.as_str(),
                    dir,
                    place.name(),
                    rfs::RenameFlags::NOREPLACE,
                ) {
                    Ok(()) => {}
                    Err(e) => {
                        let _ = rfs::unlinkat(dir, tmp.as_str(), rfs::AtFlags::empty());
                        if e == Errno::EXIST {
                            return Err(ConnectorError::Drift(format!(
                                "`{path}` was created by something else after the capture; it was not overwritten"
                            )));
                        }
                        return Err(ConnectorError::Io(format!("{ctx}: {e}")));
                    }
                }
                tree::fsync(dir).map_err(io(&ctx))?;
                Ok(json!({"op": "write", "path": path, "bytes": content.len(), "sha256": want}))
            }
            FsAction::Move { path, to } => {
                let top = m
                    .moved
                    .as_ref()
                    .and_then(|mv| mv.entries.first())
                    .ok_or_else(|| {
                        ConnectorError::Io("the manifest lacks the moved tree".into())
                    })?;
                let src = self.place(path, "action.path")?;
                let dst = self.place(to, "action.to")?;
                let (s, d) = (src.stat()?, dst.stat()?);
                let ours =
                    |st: &Option<rfs::Stat>| st.as_ref().is_some_and(|st| tree::ino(st) == top.ino);
                if s.is_none() && ours(&d) {
                    return Ok(
                        json!({"op": "move", "path": path, "to": to, "already_applied": true}),
                    );
                }
                if !ours(&s) {
                    return Err(ConnectorError::Drift(format!(
                        "`{path}` is not the tree captured for the move"
                    )));
                }
                if d.is_some() {
                    return Err(ConnectorError::Drift(format!(
                        "`{to}` was created by something else after the capture; it was not overwritten"
                    )));
                }
                let ctx = format!("moving `{path}` to `{to}`");
                if !tree::rename_noreplace(
                    src.parent.as_fd(),
                    src.name(),
                    dst.parent.as_fd(),
                    dst.name(),
                )
                .map_err(io(&ctx))?
                {
                    return Err(ConnectorError::Io(format!(
                        "{ctx}: the two lie on different file systems"
                    )));
                }
                tree::fsync(dst.parent.as_fd()).map_err(io(&ctx))?;
                tree::fsync(src.parent.as_fd()).map_err(io(&ctx))?;
                Ok(json!({"op": "move", "path": path, "to": to}))
            }
        }
    }

    fn is_written(
        &self,
        place: &Place,
        st: &rfs::Stat,
        want: &str,
    ) -> Result<bool, ConnectorError> {
        if tree::kind(st) != Kind::File || tree::nlink(st) != 1 {
            return Ok(false);
        }
        let got = tree::hash_file(place.parent.as_fd(), place.name())
            .map_err(io(format!("`{}`", place.abs)))?;
        Ok(got == want)
    }

    // ---- applied -----------------------------------------------------------

    fn applied(&self, write_id: &str, action: &Value) -> Result<Option<bool>, ConnectorError> {
        let act = action::parse(action)?;
        check_write_id(write_id)?;
        let Some((m, _)) = self.load_manifest(write_id)? else {
            // Without a capture nothing ran.
            return Ok(Some(false));
        };
        match &act {
            FsAction::Delete { path } => {
                let place = self.place(path, "action.path")?;
                let still = match (place.stat()?, m.top()) {
                    (Some(st), Some(top)) => {
                        tree::ino(&st) == top.ino && m.method == Some(Method::Copy)
                    }
                    _ => false,
                };
                Ok(Some(!still))
            }
            FsAction::Write { path, .. } => {
                let place = self.place(path, "action.path")?;
                let want = m.written_sha256.clone().unwrap_or_default();
                match place.stat()? {
                    None => Ok(Some(false)),
                    Some(st) if self.is_written(&place, &st, &want)? => Ok(Some(true)),
                    Some(_) => Ok(None),
                }
            }
            FsAction::Move { path, to } => {
                let Some(top) = m.moved.as_ref().and_then(|mv| mv.entries.first()) else {
                    return Ok(None);
                };
                let (s, d) = (
                    self.place(path, "action.path")?.stat()?,
                    self.place(to, "action.to")?.stat()?,
                );
                let ours =
                    |st: &Option<rfs::Stat>| st.as_ref().is_some_and(|st| tree::ino(st) == top.ino);
                Ok(match (ours(&s), ours(&d), s.is_some(), d.is_some()) {
                    (false, true, false, _) => Some(true),
                    (true, false, _, false) => Some(false),
                    _ => None,
                })
            }
        }
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
    rfs::fstat(fd)
        .map(|st| tree::dev(&st))
        .map_err(|e| ConnectorError::Io(e.to_string()))
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
mod tests;
