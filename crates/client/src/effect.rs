//! What a write will change, as its connector reads it from the target
//! when a person opens the write (`GET /v1/writes/{id}/effect`): the rows an
//! SQL write matches with their values before and after, a file write as a
//! diff, a delete or a move as the tree it takes away, an HTTP call as the
//! request the gate will send.
//!
//! Computed on demand and never stored: it is a reading of the target at
//! one moment, bounded (the first rows, lines and entries, with totals) and
//! masked (secrets as the audit trail masks them). It does not bind the
//! approval: the gate re-plans the write before it runs and holds it again
//! if what it touches changed since.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Rows of an SQL write shown at most.
pub const EFFECT_ROWS: usize = 50;
/// Lines of a file diff shown at most.
pub const EFFECT_DIFF_LINES: usize = 400;
/// Entries of a tree listed at most (its top level, largest first).
pub const EFFECT_TREE_ENTRIES: usize = 50;
/// Bytes of an HTTP body shown at most.
pub const EFFECT_BODY_BYTES: usize = 4096;

/// A write's effect, read from its target now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Effect {
    /// When the target was read. It may change after; the gate checks
    /// again before the write runs.
    pub read_at: DateTime<Utc>,
    pub change: EffectChange,
}

/// What the write does, by connector and operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EffectChange {
    /// A file or folder deleted: the tree that goes.
    Removes { path: String, tree: TreeSummary },
    /// A file created or overwritten.
    Writes {
        path: String,
        /// The file as it is now; `None`: a new file.
        before: Option<FileFacts>,
        after: FileFacts,
        /// Line by line, when both sides are text and small enough.
        diff: Option<TextDiff>,
    },
    /// A file or folder moved.
    Moves {
        path: String,
        to: String,
        tree: TreeSummary,
        /// What `to` holds now and the move replaces.
        replaces: Option<TreeSummary>,
    },
    /// Rows of one table.
    Rows(RowsEffect),
    /// A request to another system.
    Request(RequestEffect),
}

/// A tree as a reviewer weighs it: how much, and what notable is inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct TreeSummary {
    /// `file`, `dir`, `symlink`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub files: u64,
    pub dirs: u64,
    /// Symbolic links, FIFOs, sockets, devices.
    pub others: u64,
    /// Bytes of the files and links.
    pub bytes: u64,
    /// `false`: the walk stopped at its bound (200,000 entries) and the
    /// counts are lower bounds.
    pub complete: bool,
    /// Things inside whose loss weighs more than their size says (a
    /// repository's `.git`), with what they are.
    pub notable: Vec<Notable>,
    /// The top level (a folder's entries), largest first, at most
    /// [`EFFECT_TREE_ENTRIES`].
    pub entries: Vec<TreeEntry>,
    /// Top-level entries not listed.
    pub more_entries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct Notable {
    /// Relative to the tree's root.
    pub path: String,
    pub what: String,
}

/// One top-level entry of a tree, with what lies under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct TreeEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Files under it (1 for a file).
    pub files: u64,
    pub bytes: u64,
}

/// A file's size and content hash, and whether it reads as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct FileFacts {
    pub size: u64,
    /// `None` for a file too large to hash while a person waits.
    pub sha256: Option<String>,
    /// UTF-8 without NUL bytes.
    pub text: bool,
}

/// A line diff, with unchanged stretches shortened to their edges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct TextDiff {
    pub added: u64,
    pub removed: u64,
    /// At most [`EFFECT_DIFF_LINES`].
    pub lines: Vec<DiffLine>,
    /// Lines left out after the last one shown.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct DiffLine {
    pub tag: DiffTag,
    /// For `skip`: how many unchanged lines were left out, in words.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum DiffTag {
    Same,
    Added,
    Removed,
    /// Unchanged lines left out.
    Skip,
}

/// The rows an SQL write matches, before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct RowsEffect {
    pub database: String,
    pub table: String,
    /// `update`, `delete`, `insert`.
    pub op: String,
    pub columns: Vec<String>,
    /// Rows the write matches now (for an insert, the rows it adds).
    pub total: u64,
    /// The first [`EFFECT_ROWS`].
    pub rows: Vec<RowChange>,
    /// Other tables the change reaches through foreign keys, in words
    /// ("rows of `orders` whose `customer_id` names a deleted row are
    /// deleted too (ON DELETE CASCADE)").
    pub reaches: Vec<String>,
}

/// One row: its values in `columns` order (`None`: NULL), before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct RowChange {
    /// `None` for an inserted row.
    pub before: Option<Vec<Option<String>>>,
    /// `None` for a deleted row.
    pub after: Option<Vec<Option<String>>>,
    /// The columns whose value changes.
    pub changed: Vec<String>,
}

/// The request an HTTP write sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct RequestEffect {
    pub method: String,
    pub url: String,
    pub headers: Vec<HeaderLine>,
    /// At most [`EFFECT_BODY_BYTES`], masked.
    pub body: Option<String>,
    pub body_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
pub struct HeaderLine {
    pub name: String,
    /// Masked where it is a credential.
    pub value: String,
    /// Added by the gate from its configuration; the agent never saw it.
    pub by_gate: bool,
}
