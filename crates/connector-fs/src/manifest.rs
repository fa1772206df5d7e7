//! The manifest: what the vault holds for one write, entry by entry, so a
//! restore can be verified against it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The type of one entry, as `lstat` saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
            Kind::CharDevice => "char_device",
            Kind::BlockDevice => "block_device",
            Kind::Unknown => "unknown",
        }
    }
}

/// A timestamp with nanoseconds, as the file system keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Time {
    pub s: i64,
    pub ns: u32,
}

/// One entry of a captured tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to the captured path (`""` is the path itself), `/`
    /// separated; bytes that are not UTF-8, and `%`, are `%XX`-escaped.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Permission bits, with set-id and sticky bits (`0o7777`).
    pub mode: u32,
    /// Bytes, for files and symbolic links; 0 for directories (their size
    /// depends on the file system).
    pub size: u64,
    pub mtime: Time,
    pub atime: Time,
    pub uid: u32,
    pub gid: u32,
    /// The inode when captured: a rename keeps it, so a restore by rename
    /// can be checked against it.
    pub ino: u64,
    /// A symbolic link's target, escaped like `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// SHA-256 of the contents, for files captured by copy. A capture by
    /// rename does not read them (it stays O(entries)); the seal, written
    /// in the background, holds their hashes (`seal.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// How the tree went into the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Rename,
    Copy,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Rename => "rename",
            Method::Copy => "copy",
        }
    }
}

/// The tree a `move` carries away: not captured (it is not destroyed), but
/// walked, so moving it back can be verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub from: String,
    pub to: String,
    pub entries: Vec<Entry>,
}

/// `<vault>/<write_id>/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub write_id: String,
    /// `delete`, `write` or `move`.
    pub op: String,
    /// The absolute path the captured tree came from and goes back to.
    pub path: String,
    /// `None` when nothing existed at `path` (a write of a new file, a move
    /// to a free name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    pub captured_at: DateTime<Utc>,
    /// Pre-order: a directory comes before what it holds.
    #[serde(default)]
    pub captured: Vec<Entry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved: Option<Moved>,
    /// For `write`: the hash of the content written, to see drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_sha256: Option<String>,
    /// For `write`: the mode the new file gets (the old file's, else 0644).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_mode: Option<u32>,
}

impl Manifest {
    pub fn existed(&self) -> bool {
        !self.captured.is_empty()
    }

    pub fn top(&self) -> Option<&Entry> {
        self.captured.first()
    }
}

/// Escapes a file name (or a relative path) for the manifest: reversible,
/// and the identity for UTF-8 without `%`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '%' {
                out.push_str("%25");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The differences between what was captured and what is there now, as
/// sentences; empty when they match. `same_inodes`: the tree was put back
/// by rename, so every inode must be the captured one.
pub fn compare(expected: &[Entry], actual: &[Entry], same_inodes: bool) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut now: BTreeMap<&str, &Entry> = actual.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut diffs = Vec::new();
    for want in expected {
        let shown = if want.path.is_empty() {
            "."
        } else {
            want.path.as_str()
        };
        let Some(got) = now.remove(want.path.as_str()) else {
            diffs.push(format!("`{shown}` is missing"));
            continue;
        };
        if got.kind != want.kind {
            diffs.push(format!(
                "`{shown}` is a {} (was a {})",
                got.kind.as_str(),
                want.kind.as_str()
            ));
            continue;
        }
        // A symbolic link's mode is not settable on Linux; ignore it.
        if want.kind != Kind::Symlink && got.mode != want.mode {
            diffs.push(format!(
                "`{shown}` has mode {:o} (was {:o})",
                got.mode, want.mode
            ));
        }
        if got.size != want.size {
            diffs.push(format!(
                "`{shown}` has {} bytes (was {})",
                got.size, want.size
            ));
        }
        if got.mtime != want.mtime {
            diffs.push(format!(
                "`{shown}` has mtime {}.{:09} (was {}.{:09})",
                got.mtime.s, got.mtime.ns, want.mtime.s, want.mtime.ns
            ));
        }
        if got.target != want.target {
            diffs.push(format!("`{shown}` links to a different target"));
        }
        if let (Some(w), Some(g)) = (&want.sha256, &got.sha256) {
            if w != g {
                diffs.push(format!(
                    "`{shown}` has different contents (sha256 {g}, was {w})"
                ));
            }
        }
        if same_inodes && got.ino != want.ino {
            diffs.push(format!("`{shown}` is a different inode"));
        }
    }
    for extra in now.keys() {
        diffs.push(format!("`{extra}` was not in the capture"));
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_identity_for_plain_names_and_escapes_the_rest() {
        assert_eq!(encode(b"hooks/pre-commit"), "hooks/pre-commit");
        assert_eq!(encode(b"100%"), "100%25");
        assert_eq!(encode(b"a\xffb"), "a%FFb");
    }
}
