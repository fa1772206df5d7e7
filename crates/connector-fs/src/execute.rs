//! Running the write once its capture is durable, and telling after a
//! crash whether it ran (`applied`).

use super::*;

impl Inner {
    pub(crate) fn execute(&self, write_id: &str, action: &Value) -> Result<Value, ConnectorError> {
        let act = action::parse(action)?;
        check_write_id(write_id)?;
        let (m, _) = self
            .load_manifest(write_id)
            .map_err(unreadable)?
            .ok_or_else(|| {
                ConnectorError::Io(format!(
                    "the vault holds no capture for write `{write_id}`: capture runs first"
                ))
            })?;
        same_action(&m, &act, write_id)?;
        // Once the capture took what stood at the path (the file a write
        // replaces, the tree a move replaces, a copy's original), the target
        // is not as before: an error from here on is not "nothing changed",
        // which would have the gate settle the write as not run, for good,
        // the path empty and its old contents in the vault (found by the
        // I/O fault suite). Calling again finishes the write: the gate is
        // told to retry.
        self.apply(write_id, &act, &m).map_err(|e| {
            if m.existed() {
                resumable(
                    e,
                    &format!(
                        "the capture took `{}` into the vault; calling again finishes the write",
                        m.path
                    ),
                )
            } else {
                e
            }
        })
    }

    pub(crate) fn apply(
        &self,
        write_id: &str,
        act: &FsAction,
        m: &Manifest,
    ) -> Result<Value, ConnectorError> {
        // The capture took the tree away; a copy's original goes here if a
        // crash kept it (the gate may have taken the record from `captured`,
        // which changes nothing).
        self.finish_copy(m)?;
        match act {
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
                let _ = tree::unlink(dir, OsStr::new(&tmp));
                let mode = m.written_mode.unwrap_or(0o644);
                let ctx = format!("writing `{path}`");
                // A temporary file that cannot be removed is a change to
                // the target: the error then says to call again (which
                // removes it first), not that nothing changed.
                let scrap = |e: ConnectorError| -> ConnectorError {
                    match tree::unlink(dir, OsStr::new(&tmp)) {
                        Ok(()) => e,
                        Err(x) if x.kind() == std::io::ErrorKind::NotFound => e,
                        Err(_) => resumable(
                            e,
                            &format!("`{tmp}` is left beside it; calling again removes it"),
                        ),
                    }
                };
                tree::create_file(dir, OsStr::new(&tmp), content, mode)
                    .map_err(|e| scrap(io(&ctx)(e)))?;
                match tree::rename_noreplace(dir, OsStr::new(&tmp), dir, place.name()) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(scrap(ConnectorError::Io(format!(
                            "{ctx}: a rename within one directory crossed file systems"
                        ))));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let _ = tree::unlink(dir, OsStr::new(&tmp));
                        return Err(ConnectorError::Drift(format!(
                            "`{path}` was created by something else after the capture; it was not overwritten"
                        )));
                    }
                    Err(e) => return Err(scrap(io(&ctx)(e))),
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

    pub(crate) fn is_written(
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

    pub(crate) fn applied(
        &self,
        write_id: &str,
        action: &Value,
    ) -> Result<Option<bool>, ConnectorError> {
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
