//! The vault: one JSON file per write, `<vault>/<write_id>`, holding the
//! before- and after-images. It is written to a temporary name, fsynced,
//! renamed and the directory fsynced, all before the write's transaction
//! commits.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use recourse_connector::ConnectorError;

/// A write id names a file in the vault: it must not leave it.
pub fn check_write_id(write_id: &str) -> Result<(), ConnectorError> {
    let ok = !write_id.is_empty()
        && write_id.len() <= 128
        && !write_id.starts_with('.')
        && write_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ConnectorError::invalid(
            "write_id",
            format!(
                "`{}` is not a write id (letters, digits, `-`, `_`, `.`)",
                write_id.escape_default()
            ),
        ))
    }
}

pub fn path(vault: &Path, write_id: &str) -> PathBuf {
    vault.join(write_id)
}

/// Writes the record durably; returns once it is on disk.
pub fn write(vault: &Path, write_id: &str, bytes: &[u8]) -> Result<PathBuf, ConnectorError> {
    let tmp = vault.join(format!(".{write_id}.tmp"));
    let target = path(vault, write_id);
    let io = |what: &str, e: std::io::Error| {
        ConnectorError::Io(format!("vault `{}`: {what}: {e}", vault.display()))
    };
    // After a failed fsync the page cache's state is unknown: never retried.
    let durability = |what: &str, e: std::io::Error| {
        ConnectorError::Durability(format!("vault `{}`: {what}: {e}", vault.display()))
    };
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io("create", e))?;
        file.write_all(bytes).map_err(|e| io("write", e))?;
        file.sync_all().map_err(|e| durability("fsync", e))?;
    }
    fs::rename(&tmp, &target).map_err(|e| io("rename", e))?;
    let dir = File::open(vault).map_err(|e| io("open directory", e))?;
    dir.sync_all()
        .map_err(|e| durability("fsync directory", e))?;
    Ok(target)
}

/// The record's bytes (for its digest) and its JSON.
pub fn read(vault: &Path, write_id: &str) -> Result<Option<(Vec<u8>, Value)>, ConnectorError> {
    let p = path(vault, write_id);
    match fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(|v| Some((bytes, v)))
            .map_err(|e| ConnectorError::Io(format!("vault record `{}`: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConnectorError::Io(format!(
            "vault record `{}`: {e}",
            p.display()
        ))),
    }
}

/// Whether a file can be created and synced in the vault now.
/// The SHA-256 of a record, kept in the outcome so a rollback can tell that
/// the vault still holds what the write captured.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

pub fn writable(vault: &Path) -> Result<(), String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let probe = vault.join(format!(".probe-{}-{n}", std::process::id()));
    let result = File::create(&probe).and_then(|f| f.sync_all());
    let _ = fs::remove_file(&probe);
    result.map_err(|e| format!("vault `{}` is not writable: {e}", vault.display()))
}
