//! Observing evidence: is the vault ready for a capture, or does it hold
//! the write's capture (and how a restore will verify it).

use super::*;

impl Inner {
    pub(crate) fn observe(&self, write_id: &str) -> Observation {
        if let Err(e) = check_write_id(write_id) {
            return absent(e.to_string());
        }
        match self.load_manifest(write_id) {
            Ok(Some((m, sha))) => self.observe_captured(write_id, &m, &sha),
            Ok(None) => self.observe_ready(write_id),
            Err(e) => absent(e.to_string()),
        }
    }

    pub(crate) fn observe_captured(&self, write_id: &str, m: &Manifest, sha: &str) -> Observation {
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

    pub(crate) fn observe_ready(&self, write_id: &str) -> Observation {
        let vault = match self.vault_fd() {
            Ok(v) => v,
            Err(e) => return absent(e.to_string()),
        };
        // The vault must still be where it was checked to be: outside the roots.
        match tree::canonicalize(&self.vault) {
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
        let _ = tree::unlink(vault.as_fd(), OsStr::new(&probe));
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
}
