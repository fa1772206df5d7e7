//! Paths: resolving an action's path under the roots, one component at a
//! time from the root's descriptor, and the vault's own places.

use super::*;

impl Inner {
    /// Lexical checks, then the root the path lies under. Malformed input is
    /// `Invalid`; anything that leaves the roots is refused.
    pub(crate) fn locate(&self, raw: &str, field: &str) -> Result<Target, ConnectorError> {
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
    pub(crate) fn open(&self, t: Target, field: &str) -> Result<Place, ConnectorError> {
        let mut fd = tree::open_path(&t.root)
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

    pub(crate) fn place(&self, raw: &str, field: &str) -> Result<Place, ConnectorError> {
        let t = self.locate(raw, field)?;
        self.open(t, field)
    }

    /// The rules for the entry itself: never through a link when writing,
    /// never a file another name shares (it could be a file outside).
    pub(crate) fn guard_entry(
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

    pub(crate) fn vault_fd(&self) -> Result<OwnedFd, ConnectorError> {
        tree::open_path(&self.vault).map_err(io(format!("vault `{}`", self.vault.display())))
    }

    pub(crate) fn write_dir(&self, write_id: &str) -> Result<Option<OwnedFd>, ConnectorError> {
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

    pub(crate) fn load_manifest(
        &self,
        write_id: &str,
    ) -> Result<Option<(Manifest, String)>, ConnectorError> {
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

    pub(crate) fn remember(&self, write_id: &str, dev: u64) {
        if let Ok(mut planned) = self.planned.lock() {
            if planned.len() > 10_000 {
                planned.clear();
            }
            planned.insert(write_id.to_owned(), dev);
        }
    }
}
