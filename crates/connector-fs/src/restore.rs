//! Restore, resumable: called again after a crash at any point of an
//! earlier call, it finishes what that call started and verifies. It never
//! applies a step twice, never takes its own partial work for drift, and
//! never moves what it put back into the vault.
//!
//! The first call checks for drift and decides, before it changes anything:
//! the steps, in order, and the `displaced-N` name each entry in the way
//! will get in the vault. That decision, the journal `restoring.json`, is
//! made durable in the write's vault directory first. From then on every
//! call follows the journal instead of checking drift again, and runs the
//! steps in order; each step first reads the disk to see whether an earlier
//! call did it. Because the steps run strictly in order, a step never has
//! to untangle two half-done steps: before it began, every earlier step was
//! complete, and no later step had started. `restored.json`, written last,
//! ends the restore; a later call only verifies.
//!
//! How each step recognizes that an earlier call did it:
//!
//! - displace (`path` or `to` into `displaced-N`): `displaced-N` exists
//!   (one atomic rename put it there); or a later step has begun (the put
//!   back took `data` out of the vault, or a move's tree stands at `path`
//!   again), so what is at the place now is ours; or nothing is in the way
//!   any more. Across file systems the entry is first renamed aside in its
//!   own directory (`.recourse-<id>.displaced-N`), copied to
//!   `displaced-N.partial` in the vault, renamed to `displaced-N`, and the
//!   aside removed: an aside left behind means "vacated, copy unfinished".
//! - remove the written file: the path no longer holds the content written
//!   (or the put back has begun).
//! - move back: `path` holds the moved tree (its inode, which stays in use
//!   as long as the tree exists, so it cannot be a reused number).
//! - put back: `data` has left the vault. By rename it is then at its place.
//!   By copy `data` is first renamed `data.copied` (the mark), copied beside
//!   its place to `.recourse-<id>.restore` (redone from the start if a crash
//!   cut it), renamed into place, verified; `data.copied` goes last.
//!
//! Something that appears in a place during an interrupted restore is
//! drift like any other: without `force` the restore stops there, with it
//! a displacement is added to the journal, durably, before it runs.

use std::cell::Cell;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};

use chrono::{DateTime, Utc};
use recourse_client::{RestoreItem, RestoreStatus, RollbackReport};
use recourse_connector::{crash_point, ConnectorError};
use rustix::fs as rfs;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::{Entry, Manifest, Method};
use crate::seal::{self, Contents};
use crate::tree::{self, lstat};
use crate::{
    action, drifted, io, item, report, summary, verdict, FsAction, Inner, Place, DATA, RESTORED,
};

pub(crate) const RESTORING: &str = "restoring.json";
const RESTORING_TMP: &str = "restoring.json.tmp";
const RESTORED_TMP: &str = "restored.json.tmp";
/// `data` once a restore by copy has begun: from the rename on, a copy of
/// it may stand at its place.
const DATA_COPIED: &str = "data.copied";

const AFTER_JOURNAL: &str = "fs.restore.after_journal";
const AFTER_DISPLACE_PATH: &str = "fs.restore.after_displace_path";
const AFTER_DISPLACE_PATH_COPY: &str = "fs.restore.after_displace_path_copy";
const AFTER_REMOVE_WRITTEN: &str = "fs.restore.after_remove_written";
const AFTER_MOVE_BACK: &str = "fs.restore.after_move_back";
const AFTER_DISPLACE_TO: &str = "fs.restore.after_displace_to";
const AFTER_DISPLACE_TO_COPY: &str = "fs.restore.after_displace_to_copy";
const AFTER_PUT_BACK_MARK: &str = "fs.restore.after_put_back_mark";
const AFTER_PUT_BACK_COPY: &str = "fs.restore.after_put_back_copy";
const AFTER_PUT_BACK: &str = "fs.restore.after_put_back";
const AFTER_DISCARD: &str = "fs.restore.after_discard";
const BEFORE_MARKER: &str = "fs.restore.before_marker";

/// Every crash point of `restore`, in the order a restore can reach them.
/// Which ones a restore reaches depends on the op, on `force` and on
/// whether it renames or copies (a vault on another file system than the
/// root, or `with_copy_restore`):
///
/// - `after_journal`: the decision is durable, nothing changed yet (all);
/// - `after_displace_path`: what stood in the way at `action.path` has left
///   it (forced restores that found drift there: delete, write, move);
/// - `after_displace_path_copy`: by copy, its copy is complete in the vault
///   and the aside not yet removed (the same, copying);
/// - `after_remove_written`: the written file is gone (write, no drift);
/// - `after_move_back`: the moved tree is back at `action.path` (move);
/// - `after_displace_to`, `after_displace_to_copy`: the same as for `path`,
///   at a move's `action.to` (a forced restore of a move whose tree is no
///   longer at `to`);
/// - `after_put_back_mark`: by copy, `data` renamed `data.copied`;
/// - `after_put_back_copy`: by copy, the copy complete beside its place;
/// - `after_put_back`: the captured tree is at its place (delete, write over
///   an existing file, move to an existing name);
/// - `after_discard`: by copy, the vault's copy removed after verification;
/// - `before_marker`: every step done, `restored.json` not yet written (all).
pub const RESTORE_CRASH_POINTS: &[&str] = &[
    AFTER_JOURNAL,
    AFTER_DISPLACE_PATH,
    AFTER_DISPLACE_PATH_COPY,
    AFTER_REMOVE_WRITTEN,
    AFTER_MOVE_BACK,
    AFTER_DISPLACE_TO,
    AFTER_DISPLACE_TO_COPY,
    AFTER_PUT_BACK_MARK,
    AFTER_PUT_BACK_COPY,
    AFTER_PUT_BACK,
    AFTER_DISCARD,
    BEFORE_MARKER,
];

/// The points of [`RESTORE_CRASH_POINTS`] only a restore by copy reaches:
/// with the vault on another file system than the root, or with
/// `with_copy_restore` (a restore by rename never passes them).
pub const RESTORE_COPY_CRASH_POINTS: &[&str] = &[
    AFTER_DISPLACE_PATH_COPY,
    AFTER_DISPLACE_TO_COPY,
    AFTER_PUT_BACK_MARK,
    AFTER_PUT_BACK_COPY,
    AFTER_DISCARD,
];

/// Which end of the action a step works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Side {
    /// `action.path`.
    Path,
    /// A move's `action.to`.
    To,
}

/// One step of a restore, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Step {
    /// Moves what stands at the place into `<vault>/<write_id>/<name>`.
    Displace { at: Side, name: String },
    /// Removes the file a write wrote.
    RemoveWritten,
    /// Renames a moved tree from `to` back to `path`.
    MoveBack,
    /// Puts the captured tree back at the place (or, when nothing was
    /// there before the write, checks that nothing is).
    PutBack { at: Side },
}

/// `restoring.json`: the decision a restore follows to its end.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    version: u32,
    op: String,
    /// The `force` the decision was made with. A later call follows it
    /// (what is half done is finished, not undone); a forced later call may
    /// add displacements for what appeared meanwhile.
    force: bool,
    /// The drift a forced restore went over, as found.
    #[serde(default)]
    overridden: Vec<String>,
    steps: Vec<Step>,
    decided_at: DateTime<Utc>,
}

/// A step that cannot go on without `force`: the item says why.
type Blocked = RestoreItem;

struct Run<'a> {
    inner: &'a Inner,
    write_id: &'a str,
    w: BorrowedFd<'a>,
    act: &'a FsAction,
    m: &'a Manifest,
    force: bool,
    /// What the captured tree's contents must be (the seal).
    contents: &'a Contents,
    /// The put back refused the vault's copy (it failed its seal): the
    /// restore stops there, without its marker, so it can be tried again.
    refused: Cell<bool>,
}

/// The item of a tree not put back because the vault's copy of it failed
/// verification.
fn not_restored(resource: String, why: &str) -> RestoreItem {
    item(
        resource,
        RestoreStatus::Failed,
        format!("not restored: {why}; nothing from it was put back, and the vault keeps its copy"),
    )
}

/// A verdict on a tree's metadata (`restored` or not), completed with what
/// is known of its contents: `now`, when given, is a walk with hashes of
/// the tree where it stands, checked here; without it the contents were
/// checked `when` the detail says. No seal: `unverified`, never `restored`.
fn judge(
    mut it: RestoreItem,
    contents: &Contents,
    now: Option<(&[Entry], &[Entry])>,
    when: &str,
) -> RestoreItem {
    if it.status != RestoreStatus::Restored {
        return it;
    }
    let detail = it.detail.take().unwrap_or_default();
    let (status, detail) = match contents {
        Contents::Known { hashes, .. } if hashes.is_empty() => (RestoreStatus::Restored, detail),
        Contents::Known { hashes, source } => {
            let diffs = now
                .map(|(captured, now)| seal::differences(hashes, captured, now))
                .unwrap_or_default();
            if diffs.is_empty() {
                (
                    RestoreStatus::Restored,
                    format!(
                        "{detail}; the contents of {} files match {source} ({when})",
                        hashes.len()
                    ),
                )
            } else {
                (
                    RestoreStatus::Mismatch,
                    format!(
                        "{detail}, but its contents differ from {source}: {}",
                        summary(&diffs)
                    ),
                )
            }
        }
        Contents::Unsealed(why) => (
            RestoreStatus::Unverified,
            format!("{detail}; contents not verified: {why}"),
        ),
        Contents::Bad(why) => (
            RestoreStatus::Mismatch,
            format!("{detail}; contents not verified: {why}"),
        ),
    };
    it.status = status;
    it.detail = Some(detail);
    it
}

fn has(dir: BorrowedFd<'_>, name: &str, ctx: &str) -> Result<bool, ConnectorError> {
    lstat(dir, OsStr::new(name))
        .map(|s| s.is_some())
        .map_err(io(ctx))
}

/// Writes `name` in `w` through a temporary name and a rename, fsynced: a
/// reader finds the old file or the whole new one.
fn write_atomic(
    w: BorrowedFd<'_>,
    name: &str,
    tmp: &str,
    bytes: &[u8],
) -> Result<(), ConnectorError> {
    let _ = tree::unlink(w, OsStr::new(tmp));
    tree::create_file(w, OsStr::new(tmp), bytes, 0o600).map_err(io("vault"))?;
    tree::rename(w, OsStr::new(tmp), w, OsStr::new(name)).map_err(io("vault"))?;
    tree::fsync(w).map_err(io("vault"))
}

fn read_journal(w: BorrowedFd<'_>) -> Result<Option<Journal>, ConnectorError> {
    let bytes = match tree::read_small(w, OsStr::new(RESTORING)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("restore journal")(e)),
    };
    // Written by rename only: unreadable means tampered with, not torn.
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ConnectorError::Io(format!("the restore journal is unreadable: {e}")))
}

fn write_journal(w: BorrowedFd<'_>, j: &Journal) -> Result<(), ConnectorError> {
    let bytes = serde_json::to_vec_pretty(j)
        .map_err(|e| ConnectorError::Io(format!("restore journal: {e}")))?;
    write_atomic(w, RESTORING, RESTORING_TMP, &bytes)
}

/// The names `displaced-N` in the vault directory: what restores of this
/// write moved out of the way.
fn displaced(w: BorrowedFd<'_>) -> Result<Vec<String>, ConnectorError> {
    let mut out: Vec<(u64, String)> = tree::list(w)
        .map_err(io("vault"))?
        .into_iter()
        .filter_map(|n| {
            let n = n.to_str().ok()?.to_owned();
            let k = n.strip_prefix("displaced-")?.parse().ok()?;
            Some((k, n))
        })
        .collect();
    out.sort();
    Ok(out.into_iter().map(|(_, n)| n).collect())
}

/// The first free `displaced-N` not already promised in `steps`.
fn free_name(w: BorrowedFd<'_>, steps: &[Step]) -> Result<String, ConnectorError> {
    let promised = |n: &str| {
        steps
            .iter()
            .any(|s| matches!(s, Step::Displace { name, .. } if name == n))
    };
    let mut k = 1;
    loop {
        let name = format!("displaced-{k}");
        if !promised(&name)
            && !has(w, &name, "vault")?
            && !has(w, &format!("{name}.partial"), "vault")?
        {
            return Ok(name);
        }
        k += 1;
    }
}

/// `forced` from the report `restored.json` holds (false if unreadable: it
/// is only shown).
fn forced_in(w: BorrowedFd<'_>) -> bool {
    tree::read_small(w, OsStr::new(RESTORED))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("forced").and_then(Value::as_bool))
        .unwrap_or(false)
}

impl Inner {
    pub(crate) fn restore(
        &self,
        write_id: &str,
        action: &Value,
        capture: &Value,
        force: bool,
    ) -> Result<RollbackReport, ConnectorError> {
        let act = action::parse_for_restore(action)?;
        let (m, sha) = self.need_manifest(write_id, &act)?;
        if let Some(recorded) = capture.get("manifest_sha256").and_then(Value::as_str) {
            if recorded != sha {
                return Err(ConnectorError::Io(format!(
                    "the manifest of write `{write_id}` is not the one recorded at capture; nothing was restored from it"
                )));
            }
        }
        // From here on no seal is computed over this write. A seal queued
        // and not begun is completed first: the tree is still the captured
        // one (no journal yet, else `seal_write` declines).
        let held = self.sealer.hold(write_id);
        if held.was_queued {
            // Failing, it leaves no seal, and the restore says so.
            let _ = seal::seal_write(&self.vault, write_id);
        }
        let wdir = self.write_dir(write_id)?.ok_or_else(|| {
            ConnectorError::Io(format!("the vault directory of write `{write_id}` is gone"))
        })?;
        let w = wdir.as_fd();
        let contents = seal::expected(w, &m, &sha)?;
        if m.method == Some(Method::Copy) {
            // An original a capture by copy could not finish removing: the
            // write took effect, and its rest goes before anything is put
            // back (else it would stay beside the restored tree).
            let place = self.captured_place(&m)?;
            self.discard_removed(&place, write_id)?;
        }
        if has(w, RESTORED, "vault")? {
            // Restored before: verify what is there now.
            return self.verify_only(&act, &m, &contents, forced_in(w));
        }
        if m.existed() && has(w, DATA, "vault")? {
            // Before anything is changed (a first call) or anything more (a
            // resumed one): the vault's copy against its seal.
            if let Some(why) = self.vault_copy_fault(w, DATA, &m, &contents)? {
                return Ok(RollbackReport {
                    verified: false,
                    items: vec![not_restored(format!("fs:{}", m.path), &why)],
                    forced: force,
                });
            }
        }
        let run = Run {
            inner: self,
            write_id,
            w,
            act: &act,
            m: &m,
            force,
            contents: &contents,
            refused: Cell::new(false),
        };
        if let Some(j) = read_journal(w)? {
            // An earlier call decided and may have done part of it: its
            // partial work is not drift, so no drift check now.
            return run.follow(j);
        }
        if m.existed() && !has(w, DATA, "vault")? && !has(w, DATA_COPIED, "vault")? {
            // A restore from before the journal existed put the tree back
            // and stopped before its marker.
            return self.verify_only(&act, &m, &contents, false);
        }
        let j = match run.decide()? {
            Ok(j) => j,
            Err(drift) => return Ok(drift),
        };
        write_journal(w, &j)?;
        crash_point!(AFTER_JOURNAL);
        run.follow(j)
    }

    /// Why the vault's copy `name` must not be put back, if it must not:
    /// its contents do not match the seal (or the manifest's hashes), or
    /// the seal cannot be trusted. Without a seal it goes back, unverified.
    fn vault_copy_fault(
        &self,
        w: BorrowedFd<'_>,
        name: &str,
        m: &Manifest,
        contents: &Contents,
    ) -> Result<Option<String>, ConnectorError> {
        match contents {
            Contents::Bad(why) => Ok(Some(why.clone())),
            Contents::Unsealed(_) => Ok(None),
            Contents::Known { hashes, .. } if hashes.is_empty() => Ok(None),
            Contents::Known { hashes, source } => {
                let now = tree::walk(w, OsStr::new(name), true).map_err(io("vault"))?;
                Ok(copy_fault(hashes, source, m, &now))
            }
        }
    }

    /// Verifies the tree standing at `place` against the capture: metadata
    /// against `want`, and for the captured tree its contents, hashed where
    /// it stands.
    fn verify_in_place(
        &self,
        place: &Place,
        want: &[Entry],
        captured: Option<(&Manifest, &Contents)>,
        same_inodes: bool,
        how: &str,
    ) -> Result<RestoreItem, ConnectorError> {
        let hash = captured.is_some_and(|(m, c)| {
            m.method == Some(Method::Copy)
                || matches!(c, Contents::Known { hashes, .. } if !hashes.is_empty())
        });
        let now = tree::walk(place.parent.as_fd(), place.name(), hash)
            .map_err(io(format!("`{}`", place.abs)))?;
        let it = verdict(place.id(), want, &now, same_inodes, how);
        Ok(match captured {
            Some((m, contents)) => judge(
                it,
                contents,
                Some((&m.captured, &now)),
                "hashed where it stands",
            ),
            None => it,
        })
    }

    pub(crate) fn verify_only(
        &self,
        act: &FsAction,
        m: &Manifest,
        contents: &Contents,
        forced: bool,
    ) -> Result<RollbackReport, ConnectorError> {
        let check = |raw: &str,
                     field: &str,
                     want: &[Entry],
                     captured: Option<(&Manifest, &Contents)>|
         -> Result<RestoreItem, ConnectorError> {
            let place = self.place(raw, field)?;
            Ok(match place.stat()? {
                None if want.is_empty() => item(
                    place.id(),
                    RestoreStatus::Restored,
                    "already restored: absent, as before the write",
                ),
                None => item(
                    place.id(),
                    RestoreStatus::Mismatch,
                    format!("`{raw}` is missing"),
                ),
                Some(_) => {
                    self.verify_in_place(&place, want, captured, false, "already restored")?
                }
            })
        };
        let items = match act {
            FsAction::Delete { path } | FsAction::Write { path, .. } => {
                vec![check(
                    path,
                    "action.path",
                    &m.captured,
                    Some((m, contents)),
                )?]
            }
            FsAction::Move { path, to } => {
                let moved = m
                    .moved
                    .as_ref()
                    .map(|mv| mv.entries.as_slice())
                    .unwrap_or_default();
                vec![
                    check(path, "action.path", moved, None)?,
                    check(to, "action.to", &m.captured, Some((m, contents)))?,
                ]
            }
        };
        Ok(report(items, forced))
    }
}

/// Why a copy of the captured tree (`now`, walked with hashes) must not be
/// put back: how it differs from the contents `hashes` records.
fn copy_fault(
    hashes: &std::collections::BTreeMap<String, String>,
    source: &str,
    m: &Manifest,
    now: &[Entry],
) -> Option<String> {
    let diffs = seal::differences(hashes, &m.captured, now);
    (!diffs.is_empty()).then(|| {
        format!(
            "the vault's copy does not match {source}: {}",
            summary(&diffs)
        )
    })
}

impl Run<'_> {
    fn place(&self, at: Side) -> Result<Place, ConnectorError> {
        match (at, self.act) {
            (Side::To, FsAction::Move { to, .. }) => self.inner.place(to, "action.to"),
            (Side::To, _) => Err(ConnectorError::Io(
                "the restore journal names `to` for an action without one".into(),
            )),
            (Side::Path, act) => self.inner.place(act.path(), "action.path"),
        }
    }

    /// The side the captured tree goes back to.
    fn captured_side(&self) -> Side {
        match self.act {
            FsAction::Move { .. } => Side::To,
            _ => Side::Path,
        }
    }

    fn moved_top(&self) -> Result<&Entry, ConnectorError> {
        self.m
            .moved
            .as_ref()
            .and_then(|mv| mv.entries.first())
            .ok_or_else(|| ConnectorError::Io("the manifest lacks the moved tree".into()))
    }

    /// Whether `st` is the moved tree (its inode: the tree is alive, so the
    /// number is not reused).
    fn is_moved_tree(&self, st: Option<&rfs::Stat>) -> Result<bool, ConnectorError> {
        let top = self.moved_top()?;
        Ok(st.is_some_and(|st| tree::ino(st) == top.ino && tree::kind(st) == top.kind))
    }

    /// The put back has begun: `data` has left the vault (renamed to its
    /// place, or marked for a copy). From then on what stands at the
    /// captured place may be ours.
    fn put_back_begun(&self) -> Result<bool, ConnectorError> {
        Ok(self.m.existed() && !has(self.w, DATA, "vault")?)
    }

    // ---- deciding ------------------------------------------------------------

    /// The drift check and the plan; `Err` is the drift report when drift
    /// stops a restore without `force` (nothing changed).
    fn decide(&self) -> Result<Result<Journal, RollbackReport>, ConnectorError> {
        let mut drift: Vec<(String, String)> = Vec::new();
        let mut in_way_path = false;
        let mut in_way_to = false;
        let mut remove_written = false;
        match self.act {
            FsAction::Delete { path } => {
                let place = self.place(Side::Path)?;
                if let Some(st) = place.stat()? {
                    drift.push((
                        place.id(),
                        format!(
                            "`{path}` exists again (a {}) since the delete",
                            tree::kind(&st).as_str()
                        ),
                    ));
                    in_way_path = true;
                }
            }
            FsAction::Write { path, .. } => {
                let place = self.place(Side::Path)?;
                let want = self.m.written_sha256.clone().unwrap_or_default();
                let now = place.stat()?;
                let ours = match &now {
                    Some(st) => self.inner.is_written(&place, st, &want)?,
                    None => false,
                };
                match &now {
                    None => drift.push((place.id(), format!("`{path}` no longer exists"))),
                    Some(st) if !ours => drift.push((
                        place.id(),
                        format!(
                            "`{path}` changed after the write (now a {} whose content is not what was written)",
                            tree::kind(st).as_str()
                        ),
                    )),
                    Some(_) => {}
                }
                remove_written = ours;
                in_way_path = now.is_some() && !ours;
            }
            FsAction::Move { path, to } => {
                let top = self.moved_top()?;
                let src = self.place(Side::Path)?;
                let dst = self.place(Side::To)?;
                if let Some(st) = src.stat()? {
                    drift.push((
                        src.id(),
                        format!(
                            "`{path}` exists again (a {}) since the move",
                            tree::kind(&st).as_str()
                        ),
                    ));
                    in_way_path = true;
                }
                match dst.stat()? {
                    None => {
                        drift.push((dst.id(), format!("the moved tree is no longer at `{to}`")))
                    }
                    Some(st) if tree::ino(&st) != top.ino => {
                        drift.push((dst.id(), format!("`{to}` is no longer the moved tree")));
                        in_way_to = true;
                    }
                    Some(st) => {
                        let e = tree::entry(&st);
                        if top.kind != crate::Kind::Dir
                            && (e.size != top.size || e.mtime != top.mtime)
                        {
                            drift.push((dst.id(), format!("`{to}` was modified after the move")));
                        }
                    }
                }
            }
        }
        if !drift.is_empty() && !self.force {
            return Ok(Err(drifted(drift)));
        }
        let mut steps = Vec::new();
        let displace = |at: Side, steps: &mut Vec<Step>| -> Result<(), ConnectorError> {
            let name = free_name(self.w, steps)?;
            steps.push(Step::Displace { at, name });
            Ok(())
        };
        if in_way_path {
            displace(Side::Path, &mut steps)?;
        }
        if remove_written {
            steps.push(Step::RemoveWritten);
        }
        if matches!(self.act, FsAction::Move { .. }) {
            steps.push(Step::MoveBack);
            if in_way_to {
                displace(Side::To, &mut steps)?;
            }
        }
        steps.push(Step::PutBack {
            at: self.captured_side(),
        });
        Ok(Ok(Journal {
            version: 1,
            op: self.act.op().to_owned(),
            force: self.force,
            overridden: drift.into_iter().map(|(_, why)| why).collect(),
            steps,
            decided_at: Utc::now(),
        }))
    }

    // ---- following -------------------------------------------------------------

    fn follow(&self, mut j: Journal) -> Result<RollbackReport, ConnectorError> {
        let force = j.force || self.force;
        let mut items: Vec<RestoreItem> = Vec::new();
        let mut i = 0;
        while let Some(step) = j.steps.get(i).cloned() {
            let done = match &step {
                Step::Displace { at, name } => self.displace(*at, name).map(|()| Ok(None)),
                Step::RemoveWritten => self.remove_written().map(|r| r.map(|()| None)),
                Step::MoveBack => self.move_back().map(|r| r.map(Some)),
                Step::PutBack { at } => self.put_back(*at).map(|r| r.map(Some)),
            }?;
            match done {
                Ok(Some(it)) => {
                    items.push(it);
                    if self.refused.get() {
                        // Nothing corrupted goes back, and the restore is not
                        // over: no marker, so a later call tries again.
                        return Ok(RollbackReport {
                            verified: false,
                            items,
                            forced: force,
                        });
                    }
                }
                Ok(None) => {}
                Err(blocked) if force => {
                    // Something appeared in the way during the restore:
                    // decide its displacement durably, run it, then this
                    // step again.
                    let at = match &step {
                        Step::MoveBack => Side::Path,
                        Step::PutBack { at } => *at,
                        _ => Side::Path,
                    };
                    let name = free_name(self.w, &j.steps)?;
                    if let Some(why) = blocked.detail {
                        j.overridden.push(why);
                    }
                    j.steps.insert(i, Step::Displace { at, name });
                    write_journal(self.w, &j)?;
                    continue;
                }
                Err(blocked) => {
                    return Ok(RollbackReport {
                        verified: false,
                        items: vec![blocked],
                        forced: false,
                    })
                }
            }
            i += 1;
        }
        let kept = displaced(self.w)?;
        if !kept.is_empty() {
            if let Some(first) = items.first_mut() {
                let dir = self.inner.vault.join(self.write_id);
                let at: Vec<String> = kept
                    .iter()
                    .map(|n| format!("`{}`", dir.join(n).display()))
                    .collect();
                let note = format!("forced: what stood in the way is kept at {}", at.join(", "));
                first.detail = Some(match first.detail.take() {
                    Some(d) => format!("{d}; {note}"),
                    None => note,
                });
            }
        }
        let out = report(items, force);
        crash_point!(BEFORE_MARKER);
        let bytes = serde_json::to_vec(&out)
            .map_err(|e| ConnectorError::Io(format!("restore report: {e}")))?;
        write_atomic(self.w, RESTORED, RESTORED_TMP, &bytes)?;
        Ok(out)
    }

    fn newcomer(&self, place: &Place, st: &rfs::Stat) -> Blocked {
        item(
            place.id(),
            RestoreStatus::Drift,
            format!(
                "`{}` appeared during the rollback (a {}); nothing was overwritten (force moves it into the vault)",
                place.abs,
                tree::kind(st).as_str()
            ),
        )
    }

    /// Moves what stands at `at` into the vault as `name`. Never destroys
    /// it: a rename into the vault, or, across file systems, a rename aside
    /// in its own directory, a copy into the vault, and only then the
    /// removal of the aside.
    fn displace(&self, at: Side, name: &str) -> Result<(), ConnectorError> {
        let place = self.place(at)?;
        let ctx = format!("moving `{}` aside", place.abs);
        // The crash points after each way of moving it aside.
        let (after, after_copy) = match at {
            Side::Path => (AFTER_DISPLACE_PATH, AFTER_DISPLACE_PATH_COPY),
            Side::To => (AFTER_DISPLACE_TO, AFTER_DISPLACE_TO_COPY),
        };
        let parent = place.parent.as_fd();
        let aside = format!(".recourse-{}.{name}", self.write_id);
        let partial = format!("{name}.partial");
        if has(self.w, name, &ctx)? {
            // Done; a copy may not have removed its aside yet.
            if has(parent, &aside, &ctx)? {
                tree::remove(parent, OsStr::new(&aside)).map_err(io(&ctx))?;
                tree::fsync(parent).map_err(io(&ctx))?;
            }
            return Ok(());
        }
        if !has(parent, &aside, &ctx)? {
            let Some(st) = place.stat()? else {
                // Nothing in the way any more.
                return Ok(());
            };
            let ours = match at {
                Side::Path if matches!(self.act, FsAction::Move { .. }) => {
                    self.is_moved_tree(Some(&st))?
                }
                _ => false,
            };
            if ours || (at == self.captured_side() && self.put_back_begun()?) {
                // A later step has begun: what stands there is ours.
                return Ok(());
            }
            if !self.inner.copy_restore
                && tree::rename_noreplace(parent, place.name(), self.w, OsStr::new(name))
                    .map_err(io(&ctx))?
            {
                tree::fsync(self.w).map_err(io(&ctx))?;
                tree::fsync(parent).map_err(io(&ctx))?;
                crash_point!(after);
                return Ok(());
            }
            // Across file systems: out of the way first, atomically, in
            // its own directory.
            if !tree::rename_noreplace(parent, place.name(), parent, OsStr::new(&aside))
                .map_err(io(&ctx))?
            {
                return Err(ConnectorError::Io(format!(
                    "{ctx}: a rename within one directory crossed file systems"
                )));
            }
            tree::fsync(parent).map_err(io(&ctx))?;
            crash_point!(after);
        }
        if has(self.w, &partial, &ctx)? {
            tree::remove(self.w, OsStr::new(&partial)).map_err(io(&ctx))?;
        }
        tree::copy(parent, OsStr::new(&aside), self.w, OsStr::new(&partial)).map_err(io(&ctx))?;
        tree::fsync(self.w).map_err(io(&ctx))?;
        tree::rename(self.w, OsStr::new(&partial), self.w, OsStr::new(name)).map_err(io(&ctx))?;
        tree::fsync(self.w).map_err(io(&ctx))?;
        crash_point!(after_copy);
        tree::remove(parent, OsStr::new(&aside)).map_err(io(&ctx))?;
        tree::fsync(parent).map_err(io(&ctx))?;
        Ok(())
    }

    fn remove_written(&self) -> Result<Result<(), Blocked>, ConnectorError> {
        if self.put_back_begun()? {
            return Ok(Ok(()));
        }
        let place = self.place(Side::Path)?;
        let Some(st) = place.stat()? else {
            return Ok(Ok(()));
        };
        let want = self.m.written_sha256.clone().unwrap_or_default();
        if !self.inner.is_written(&place, &st, &want)? {
            return Ok(Err(self.newcomer(&place, &st)));
        }
        let ctx = format!("removing the written `{}`", place.abs);
        tree::unlink(place.parent.as_fd(), place.name()).map_err(io(&ctx))?;
        tree::fsync(place.parent.as_fd()).map_err(io(&ctx))?;
        crash_point!(AFTER_REMOVE_WRITTEN);
        Ok(Ok(()))
    }

    fn move_back(&self) -> Result<Result<RestoreItem, Blocked>, ConnectorError> {
        let moved = self
            .m
            .moved
            .as_ref()
            .ok_or_else(|| ConnectorError::Io("the manifest lacks the moved tree".into()))?;
        let top = self.moved_top()?;
        let src = self.place(Side::Path)?;
        let dst = self.place(Side::To)?;
        let ctx = format!("moving `{}` back to `{}`", dst.abs, src.abs);
        let s = src.stat()?;
        if !self.is_moved_tree(s.as_ref())? {
            if !self.is_moved_tree(dst.stat()?.as_ref())? {
                return Ok(Ok(item(
                    src.id(),
                    RestoreStatus::Failed,
                    format!(
                        "the moved tree was not at `{}`: nothing to move back",
                        dst.abs
                    ),
                )));
            }
            if let Some(st) = &s {
                return Ok(Err(self.newcomer(&src, st)));
            }
            if !tree::rename_noreplace(
                dst.parent.as_fd(),
                dst.name(),
                src.parent.as_fd(),
                src.name(),
            )
            .map_err(io(&ctx))?
            {
                return Err(ConnectorError::Io(format!(
                    "{ctx}: the two lie on different file systems"
                )));
            }
            let _ = tree::set_times(src.parent.as_fd(), src.name(), top);
            tree::fsync(src.parent.as_fd()).map_err(io(&ctx))?;
            tree::fsync(dst.parent.as_fd()).map_err(io(&ctx))?;
            crash_point!(AFTER_MOVE_BACK);
        }
        let now = tree::walk(src.parent.as_fd(), src.name(), false).map_err(io(&ctx))?;
        Ok(Ok(verdict(
            src.id(),
            &moved.entries,
            &now,
            true,
            "moved back",
        )))
    }

    /// Puts the captured tree back at `at` and verifies it against the
    /// manifest; with nothing captured, checks that nothing is there.
    fn put_back(&self, at: Side) -> Result<Result<RestoreItem, Blocked>, ConnectorError> {
        let m = self.m;
        let place = self.place(at)?;
        let Some(top) = m.top() else {
            return Ok(match place.stat()? {
                None => Ok(item(
                    place.id(),
                    RestoreStatus::Restored,
                    format!(
                        "nothing existed at `{}` before the write; nothing is there now",
                        place.abs
                    ),
                )),
                Some(st) => Err(self.newcomer(&place, &st)),
            });
        };
        let w = self.w;
        let parent = place.parent.as_fd();
        let ctx = format!("restoring `{}`", place.abs);
        let hashed = m.method == Some(Method::Copy);
        let check = |same_inodes: bool, how: &str| -> Result<RestoreItem, ConnectorError> {
            let now = tree::walk(parent, place.name(), hashed).map_err(io(&ctx))?;
            Ok(verdict(place.id(), &m.captured, &now, same_inodes, how))
        };
        if has(w, DATA, &ctx)? {
            if let Some(st) = place.stat()? {
                return Ok(Err(self.newcomer(&place, &st)));
            }
            if !self.inner.copy_restore
                && tree::rename_noreplace(w, OsStr::new(DATA), parent, place.name())
                    .map_err(io(&ctx))?
            {
                // The rename may have moved the directory's own times.
                let _ = tree::set_times(parent, place.name(), top);
                tree::fsync(parent).map_err(io(&ctx))?;
                tree::fsync(w).map_err(io(&ctx))?;
                crash_point!(AFTER_PUT_BACK);
                // Its contents were checked against the seal in the vault,
                // at the start of this call; a rename does not change them.
                return check(m.method == Some(Method::Rename), "put back by rename").map(|it| {
                    Ok(judge(
                        it,
                        self.contents,
                        None,
                        "checked in the vault before the put back",
                    ))
                });
            }
            // By copy. The mark comes first: once `data` is gone, a copy of
            // it may stand at the place, and no earlier step touches it.
            tree::rename(w, OsStr::new(DATA), w, OsStr::new(DATA_COPIED)).map_err(io(&ctx))?;
            tree::fsync(w).map_err(io(&ctx))?;
            crash_point!(AFTER_PUT_BACK_MARK);
        }
        if !has(w, DATA_COPIED, &ctx)? {
            // Put back by an earlier call (by rename; or by copy, verified
            // and the vault's copy removed).
            let same_inodes = m.method == Some(Method::Rename) && !self.inner.copy_restore;
            return self
                .inner
                .verify_in_place(
                    &place,
                    &m.captured,
                    Some((m, self.contents)),
                    same_inodes,
                    "put back by an earlier, interrupted call",
                )
                .map(Ok);
        }
        let tmp = format!(".recourse-{}.restore", self.write_id);
        if has(parent, &tmp, &ctx)? {
            // A copy a crash cut: start it again.
            tree::remove(parent, OsStr::new(&tmp)).map_err(io(&ctx))?;
        }
        if place.stat()?.is_none() {
            if let Contents::Bad(why) = self.contents {
                self.refused.set(true);
                return Ok(Ok(not_restored(place.id(), why)));
            }
            let copied = tree::copy(w, OsStr::new(DATA_COPIED), parent, OsStr::new(&tmp))
                .map_err(io(&ctx))?;
            // The copy hashed what it read: checked against the seal before
            // it goes in place.
            let fault = match self.contents {
                Contents::Known { hashes, source } => copy_fault(hashes, source, m, &copied),
                _ => None,
            };
            if let Some(why) = fault {
                tree::remove(parent, OsStr::new(&tmp)).map_err(io(&ctx))?;
                tree::fsync(parent).map_err(io(&ctx))?;
                self.refused.set(true);
                return Ok(Ok(not_restored(place.id(), &why)));
            }
            tree::fsync(parent).map_err(io(&ctx))?;
            crash_point!(AFTER_PUT_BACK_COPY);
            if !tree::rename_noreplace(parent, OsStr::new(&tmp), parent, place.name())
                .map_err(io(&ctx))?
            {
                return Err(ConnectorError::Io(format!(
                    "{ctx}: a rename within one directory crossed file systems"
                )));
            }
            let _ = tree::set_times(parent, place.name(), top);
            tree::fsync(parent).map_err(io(&ctx))?;
            crash_point!(AFTER_PUT_BACK);
        }
        let it = self.inner.verify_in_place(
            &place,
            &m.captured,
            Some((m, self.contents)),
            false,
            "put back by copy",
        )?;
        // Unverified (no seal), the vault keeps its copy too.
        if it.status == RestoreStatus::Restored {
            // The vault's copy goes only once the restored tree is verified.
            tree::remove(w, OsStr::new(DATA_COPIED)).map_err(io(&ctx))?;
            tree::fsync(w).map_err(io(&ctx))?;
            crash_point!(AFTER_DISCARD);
        }
        Ok(Ok(it))
    }
}
