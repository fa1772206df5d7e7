//! Capture: taking the old tree into the vault before the write runs, by
//! rename or by copy, with its manifest and seal.

use super::*;

impl Inner {
    pub(crate) fn capture(&self, write_id: &str, action: &Value) -> Result<Value, ConnectorError> {
        check_write_id(write_id)?;
        let act = action::parse(action)?;
        if let Some((m, sha)) = self.load_manifest(write_id).map_err(unreadable)? {
            same_action(&m, &act, write_id)?;
            // A retry after a crash: finish what a copy left undone, and
            // the seal.
            self.finish_copy(&m)?;
            self.seal_after_capture(write_id, &m)?;
            return Ok(self.record(write_id, &m, &sha));
        }
        // A rename into the vault that a crash cut short leaves `data`
        // without a manifest (and without the `copying` mark a copy sets):
        // the original is gone, so the plan's checks cannot run again.
        let resumed = match self.write_dir(write_id).map_err(unreadable)? {
            Some(w) => {
                let has = |n: &str| {
                    lstat(w.as_fd(), OsStr::new(n))
                        .map(|s| s.is_some())
                        .map_err(|e| unreadable(io("vault")(e)))
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
        match tree::mkdir(vault.as_fd(), OsStr::new(write_id), 0o700) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(format!("vault `{}`", self.vault.display()))(e)),
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
            let _ = tree::unlink(w, OsStr::new(COPYING));
        }
        let renamed_before = data_there && !copying;
        if st.is_none() && !renamed_before && matches!(act, FsAction::Delete { .. }) {
            return Err(ConnectorError::invalid(
                field,
                format!("`{raw}` does not exist"),
            ));
        }
        // From the rename into the vault until the manifest is in place, the
        // tree is gone from its place and nothing but `data` says where it
        // is: a failure in that window puts it back (`untake`).
        let mut in_vault = renamed_before;
        let recorded = self.record_capture(write_id, &act, &place, st.as_ref(), w, &mut in_vault);
        let (m, bytes) = match recorded {
            Ok(done) => done,
            Err(e) if in_vault => return Err(self.untake(write_id, &place, st.as_ref(), w, e)),
            Err(e) => return Err(e),
        };
        let finished = (|| {
            let _ = tree::unlink(w, OsStr::new(COPYING));
            tree::fsync(w).map_err(io("vault"))?;
            tree::fsync(vault.as_fd()).map_err(io("vault"))?;
            self.finish_copy(&m)
        })();
        if let Err(e) = finished {
            // The manifest is in place: whatever failed after it, the
            // capture is one a rollback may restore from, so it is sealed
            // (else that rollback could not verify what it puts back).
            if m.method.is_some() {
                self.sealer.enqueue(write_id);
            }
            return Err(e);
        }
        self.seal_after_capture(write_id, &m)?;
        Ok(self.record(write_id, &m, &tree::sha256(&bytes)))
    }

    /// Takes the tree into `w` (unless an earlier call renamed it there
    /// already: `in_vault` on entry) and writes the manifest, renamed into
    /// place last. `in_vault` says, on return, whether the tree has left
    /// its place for the vault.
    pub(crate) fn record_capture(
        &self,
        write_id: &str,
        act: &FsAction,
        place: &Place,
        st: Option<&rfs::Stat>,
        w: std::os::fd::BorrowedFd<'_>,
        in_vault: &mut bool,
    ) -> Result<(Manifest, Vec<u8>), ConnectorError> {
        let (method, entries) = if *in_vault {
            // The rename happened before a crash; only the manifest is missing.
            let entries = tree::walk(w, OsStr::new(DATA), false).map_err(io("vault"))?;
            (Some(Method::Rename), entries)
        } else {
            match st {
                None => (None, Vec::new()),
                Some(st) => self.take(place, st, w, in_vault)?,
            }
        };
        let raw = act.captured_path().0;
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
        let (written_sha256, written_mode) = match act {
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
        let _ = tree::unlink(w, OsStr::new(MANIFEST_TMP));
        tree::create_file(w, OsStr::new(MANIFEST_TMP), &bytes, 0o600).map_err(io("manifest"))?;
        tree::rename(w, OsStr::new(MANIFEST_TMP), w, OsStr::new(MANIFEST))
            .map_err(io("manifest"))?;
        Ok((m, bytes))
    }

    /// A capture that renamed the tree into the vault and cannot finish
    /// (its manifest is not in place): puts the tree back. Without this the
    /// tree would sit in the vault with no manifest while the gate, told
    /// the capture failed, asks `applied`, hears "nothing ran" and settles
    /// the write as failed, for good: the path gone, nothing to restore it
    /// from (found by the I/O fault suite, `tests/io_faults.rs`). Returns
    /// the error for the gate: `e` itself once the tree is back (nothing
    /// changed); when it cannot go back, a failed fsync stays a durability
    /// failure, and anything else has the gate retry, since calling the
    /// capture again finishes it from the vault.
    pub(crate) fn untake(
        &self,
        write_id: &str,
        place: &Place,
        st: Option<&rfs::Stat>,
        w: std::os::fd::BorrowedFd<'_>,
        e: ConnectorError,
    ) -> ConnectorError {
        let parent = place.parent.as_fd();
        let back = (|| -> std::io::Result<()> {
            if !tree::rename_noreplace(w, OsStr::new(DATA), parent, place.name())? {
                return Err(std::io::Error::other("the vault is on another file system"));
            }
            // Its own times, as where it stood (a rename may move them).
            if let Some(st) = st {
                let _ = tree::set_times(parent, place.name(), &tree::entry(st));
            }
            tree::fsync(parent)?;
            tree::fsync(w)
        })();
        let at = self.vault.join(write_id).join(DATA);
        match back {
            Ok(()) => e,
            Err(b) if tree::is_fsync_failure(&b) || matches!(e, ConnectorError::Durability(_)) => {
                ConnectorError::Durability(format!(
                    "{e}; putting `{}` back from the vault then failed: {b}",
                    place.abs
                ))
            }
            Err(b) => ConnectorError::Resumable(format!(
                "{e}; `{}` is in the vault at `{}` and could not be put back ({b}): calling the capture again finishes it",
                place.abs,
                at.display()
            )),
        }
    }

    /// A copy hashed every file: its seal is written now. A rename read no
    /// contents: its seal is computed in the background, so the capture
    /// stays O(entries). A seal that cannot be written now is retried by
    /// the sealer; the capture itself is complete either way. Only a failed
    /// fsync is not passed over: the gate must stop (a failure the I/O
    /// fault suite saw swallowed).
    pub(crate) fn seal_after_capture(
        &self,
        write_id: &str,
        m: &Manifest,
    ) -> Result<(), ConnectorError> {
        match m.method {
            Some(Method::Copy) => {
                let held = self.sealer.hold(write_id);
                let done = seal::seal_write(&self.vault, write_id);
                drop(held);
                if let Err(e) = done {
                    self.sealer.enqueue(write_id);
                    if matches!(e, ConnectorError::Durability(_)) {
                        return Err(e);
                    }
                }
            }
            Some(Method::Rename) => self.sealer.enqueue(write_id),
            None => {}
        }
        Ok(())
    }

    /// Moves the entry at `place` into `<write dir>/data`: a rename when it
    /// can, else a copy (the original then goes in `finish_copy`, after the
    /// manifest is durable).
    pub(crate) fn take(
        &self,
        place: &Place,
        st: &rfs::Stat,
        w: std::os::fd::BorrowedFd<'_>,
        in_vault: &mut bool,
    ) -> Result<(Option<Method>, Vec<Entry>), ConnectorError> {
        let ctx = format!("capturing `{}`", place.abs);
        if !self.copy_mode
            && tree::rename_noreplace(place.parent.as_fd(), place.name(), w, OsStr::new(DATA))
                .map_err(io(&ctx))?
        {
            *in_vault = true;
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
        let copied = (|| {
            tree::create_file(w, OsStr::new(COPYING), b"", 0o600)?;
            tree::fsync(w)?;
            let entries = tree::copy(place.parent.as_fd(), place.name(), w, OsStr::new(DATA))?;
            tree::fsync(w)?;
            Ok(entries)
        })();
        match copied {
            Ok(entries) => Ok((Some(Method::Copy), entries)),
            Err(e) => {
                // The original is whole (it goes only after the manifest):
                // the partial copy goes, so the vault holds nothing for the
                // write. Left behind (the disk failing still, or after a
                // failed fsync, when the gate stops and nothing more is
                // done), the `copying` mark has the next call remove it.
                if !tree::is_fsync_failure(&e) {
                    let gone = match tree::remove(w, OsStr::new(DATA)) {
                        Ok(()) => true,
                        Err(x) => x.kind() == std::io::ErrorKind::NotFound,
                    };
                    if gone {
                        let _ = tree::unlink(w, OsStr::new(COPYING));
                    }
                }
                Err(io(&ctx)(e))
            }
        }
    }

    /// After a copy: removes the original, once, and only if it is still the
    /// very tree that was copied. It is renamed aside first, in its own
    /// directory, and removed from there: a removal cut short (the disk
    /// failing half way through a tree) then leaves the path wholly gone
    /// and the rest aside, never a half-deleted tree at the path (found by
    /// the I/O fault suite). The aside, `.recourse-<write id>.removing`,
    /// goes on the next call, or when the write is rolled back.
    pub(crate) fn finish_copy(&self, m: &Manifest) -> Result<(), ConnectorError> {
        if m.method != Some(Method::Copy) {
            return Ok(());
        }
        let Some(top) = m.top() else { return Ok(()) };
        let place = self.captured_place(m)?;
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
                if !tree::rename_noreplace(
                    place.parent.as_fd(),
                    place.name(),
                    place.parent.as_fd(),
                    OsStr::new(&removing(&m.write_id)),
                )
                .map_err(io(&ctx))?
                {
                    return Err(ConnectorError::Io(format!(
                        "{ctx}: a rename within one directory crossed file systems"
                    )));
                }
                tree::fsync(place.parent.as_fd()).map_err(io(&ctx))?;
            }
        }
        self.discard_removed(&place, &m.write_id)
    }

    /// Where the capture took its tree from.
    pub(crate) fn captured_place(&self, m: &Manifest) -> Result<Place, ConnectorError> {
        let field = if m.op == "move" {
            "action.to"
        } else {
            "action.path"
        };
        self.place(&m.path, field)
    }

    /// Removes what `finish_copy` renamed aside, if it is there. The path
    /// is already gone: a failure here is not "nothing changed" but a
    /// step to finish, so the gate is told to retry.
    pub(crate) fn discard_removed(
        &self,
        place: &Place,
        write_id: &str,
    ) -> Result<(), ConnectorError> {
        let aside = removing(write_id);
        let parent = place.parent.as_fd();
        let ctx = format!("removing `{}` after copying it", place.abs);
        let gone = (|| {
            if lstat(parent, OsStr::new(&aside))?.is_some() {
                tree::remove(parent, OsStr::new(&aside))?;
                tree::fsync(parent)?;
            }
            Ok(())
        })();
        gone.map_err(|e| {
            resumable(
                io(&ctx)(e),
                &format!("the rest of it is at `{aside}` beside it; calling again removes it"),
            )
        })
    }

    /// The record `capture` returned, read back from the manifest (the
    /// gate lost it in a crash); `None` when nothing was captured.
    pub(crate) fn captured(
        &self,
        write_id: &str,
        action: &Value,
    ) -> Result<Option<Value>, ConnectorError> {
        check_write_id(write_id)?;
        let act = action::parse(action)?;
        let Some((m, sha)) = self.load_manifest(write_id)? else {
            return Ok(None);
        };
        same_action(&m, &act, write_id)?;
        Ok(Some(self.record(write_id, &m, &sha)))
    }

    pub(crate) fn record(&self, write_id: &str, m: &Manifest, sha: &str) -> Value {
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

    pub(crate) fn need_manifest(
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
}
