//! Durable state, by concern: tokens, the catalog, writes, the audit trail
//! and the gate's own state (the freeze), each a trait. `SqliteStore` (one
//! file in the data directory) implements them all for the embedded gate;
//! `PostgresStore` for several gates on one PostgreSQL database
//! (`--database-url`, see [`open_url`]); `MemoryStore` for in-process
//! tests. Nothing the gate decides on lives only in process memory.

mod memory;
mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use recourse_client::{
    AuditEntry, FreezeState, ModeState, Role, TokenScope, WriteRecord, WriteStatus, WriteSummary,
};
use recourse_core::Catalog;

pub use memory::MemoryStore;
pub use postgres::{PostgresStore, AUDIT_LOCK};
pub use sqlite::SqliteStore;

use crate::audit::AuditDraft;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store holds a record that does not parse: {0}")]
    Corrupt(String),
    #[error("a token named `{0}` exists already")]
    DuplicateToken(String),
    /// Nothing stored: the agent's pending writes already hold
    /// `pending_bytes`, and the new one would take them above the quota
    /// given to [`WriteStore::insert_write_within`]. A refusal, not a
    /// failure: the gate answers it with a 429.
    #[error(
        "the agent's pending writes hold {pending_bytes} bytes; this one would pass the quota"
    )]
    OverQuota { pending_bytes: u64 },
    /// The group commit failed: nothing of the batch was stored.
    #[error("store commit: {0}")]
    Commit(String),
    /// The store could not be reached, or was busy, while a batch was
    /// committed: worth trying again (a lost answer to a commit that did
    /// take effect is found by the retry: the idempotency key returns the
    /// stored write, a compare-and-set on a moved version fails).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// `--database-url` names no store this build has.
    #[error("a database URL starting `{0}:` names no store this gate has (postgres://… or postgresql://…)")]
    UnsupportedUrl(String),
}

impl StoreError {
    /// Worth trying again: the store was busy or briefly unreachable, and
    /// nothing was stored. A corrupt record or a failed commit is not.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                ) || e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| transient_code(&c))
            }
            StoreError::Unavailable(_) => true,
            _ => false,
        }
    }
}

/// Database error codes that mean "busy or briefly unreachable", of
/// SQLite (numeric) and PostgreSQL (SQLSTATE).
fn transient_code(code: &str) -> bool {
    matches!(
        code,
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT
        "5" | "6" | "517"
        // serialization failure, deadlock, lock not available
        | "40001" | "40P01" | "55P03"
        // admin shutdown, crash shutdown, cannot connect now
        | "57P01" | "57P02" | "57P03"
        // too many connections
        | "53300"
    ) || code.starts_with("08") // connection exceptions
}

/// The shared store a `--database-url` names, picked by the URL's scheme.
/// Connects nothing yet (see [`PostgresStore::ready`]): a gate may start
/// while its database is down. Errors never repeat the URL, which may hold
/// a password.
pub fn open_url(url: &str) -> Result<PostgresStore, StoreError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "postgres" | "postgresql" => PostgresStore::new(url),
        other => {
            let shown: String = other.chars().take(20).collect();
            Err(StoreError::UnsupportedUrl(shown))
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub name: String,
    pub role: Role,
    pub hash: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// What the token's writes may reach; `None`: everything. Stored as
    /// JSON (a nullable column).
    pub scope: Option<TokenScope>,
    /// When it was revoked. A revoked token is kept (its name stays taken,
    /// so a new token cannot inherit the old one's writes and audit
    /// entries) and never authenticates again.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What inserting a write found.
#[derive(Debug)]
pub enum Inserted {
    New,
    /// The same agent already submitted this idempotency key.
    Existing(Box<WriteRecord>),
}

/// The statuses whose stored bytes count against an agent's quota: writes
/// still waiting on a person or on the gate (held, approved, executing).
/// A settled write (executed, rejected, refused, expired, failed, rolled
/// back, …) frees its room; one being rolled back or whose outcome is
/// unknown waits on an incident lead, not on the agent, so it does not
/// count against it either.
pub const PENDING: [WriteStatus; 3] = [
    WriteStatus::Held,
    WriteStatus::Approved,
    WriteStatus::Executing,
];

/// The bytes a write counts for against its agent's quota: its record as
/// the store keeps it (serialized JSON).
pub fn stored_bytes(record: &WriteRecord) -> Result<u64, StoreError> {
    serde_json::to_vec(record)
        .map(|b| b.len() as u64)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[derive(Debug, Clone, Default)]
pub struct WriteFilter {
    pub status: Option<WriteStatus>,
    pub agent: Option<String>,
    pub limit: Option<i64>,
}

/// What an upsert of the catalog did, read in its own transaction: the
/// version before and after, and what was actually stored (a connector's
/// discovery keeps what exists, so part of a batch may be dropped). A cached
/// graph may be extended in memory only from `before` and only with
/// `applied`.
#[derive(Debug, Clone, Default)]
pub struct CatalogUpsert {
    pub before: i64,
    pub after: i64,
    pub applied: Catalog,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(&self, row: &TokenRow, audit: AuditDraft) -> Result<(), StoreError>;
    /// The token with this hash, revoked or not (the caller refuses a
    /// revoked one, saying so).
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError>;
    /// Every token, revoked ones too, by name.
    async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError>;
    /// Marks the token `name` revoked at `at`, with its audit entry, in
    /// one transaction. False (and no audit entry) when there is no such
    /// token or it was revoked already.
    async fn revoke_token(
        &self,
        name: &str,
        at: DateTime<Utc>,
        audit: AuditDraft,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// The whole catalog and its version (bumped by every change).
    async fn catalog(&self) -> Result<(Catalog, i64), StoreError>;
    async fn catalog_version(&self) -> Result<i64, StoreError>;
    /// Adds resources and edges. With `replace`, existing ones take the new
    /// values (a risk officer's edit); without, existing ones are kept (a
    /// connector adding what it discovered). The version moves only when
    /// something changed; the audit entry is written only then.
    async fn upsert_catalog(
        &self,
        add: &Catalog,
        replace: bool,
        audit: Option<AuditDraft>,
    ) -> Result<CatalogUpsert, StoreError>;
}

#[async_trait]
pub trait WriteStore: Send + Sync {
    /// Inserts a new write, or returns the one with the same agent and
    /// idempotency key. One transaction with its audit entry.
    async fn insert_write(
        &self,
        record: &WriteRecord,
        audit: AuditDraft,
    ) -> Result<Inserted, StoreError>;
    /// [`WriteStore::insert_write`] under a quota, in the same transaction:
    /// when the agent's [`PENDING`] writes hold `pending_bytes` and
    /// `pending_bytes + stored_bytes(record)` is above `max_pending_bytes`,
    /// nothing is stored and the answer is [`StoreError::OverQuota`]. The
    /// idempotency check comes first (a repeat is never over quota).
    async fn insert_write_within(
        &self,
        record: &WriteRecord,
        audit: AuditDraft,
        max_pending_bytes: u64,
    ) -> Result<Inserted, StoreError>;
    /// The stored bytes of `agent`'s [`PENDING`] writes.
    async fn pending_bytes(&self, agent: &str) -> Result<u64, StoreError>;
    /// A write and its version, for compare-and-set updates.
    async fn write(&self, id: &str) -> Result<Option<(WriteRecord, i64)>, StoreError>;
    async fn write_by_key(&self, agent: &str, key: &str)
        -> Result<Option<WriteRecord>, StoreError>;
    async fn summaries(&self, filter: &WriteFilter) -> Result<Vec<WriteSummary>, StoreError>;
    async fn writes(&self, filter: &WriteFilter) -> Result<Vec<WriteRecord>, StoreError>;
    /// Replaces a write if its version is still `expected`, with its audit
    /// entry, in one transaction. False when someone else changed it first.
    async fn update_write(
        &self,
        record: &WriteRecord,
        expected: i64,
        audit: AuditDraft,
    ) -> Result<bool, StoreError>;
    async fn counts(&self) -> Result<Vec<(WriteStatus, i64)>, StoreError>;

    /// Takes (or renews) the claim on an in-flight write for `owner` until
    /// `until`: true when nobody else holds it at `now` (no claim, a lapsed
    /// one, or `owner`'s own). The claim is not part of the write's version:
    /// renewing it never fails the worker's next compare-and-set.
    async fn claim(
        &self,
        id: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Gives up `owner`'s claim; with `retry_at`, nobody takes the write up
    /// before then (a backoff).
    async fn release(
        &self,
        id: &str,
        owner: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// In-flight writes (approved, executing, rolling back) nobody holds at
    /// `now`, oldest first.
    async fn claimable(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>, StoreError>;

    /// Whether other gates may use this store at the same time. An embedded
    /// store belongs to one process (its data directory is locked), so a
    /// claim found at start is a dead process's; on a shared store it may be
    /// another gate's live one, honoured until its lease lapses.
    fn shared(&self) -> bool {
        false
    }
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, audit: AuditDraft) -> Result<AuditEntry, StoreError>;
    /// Oldest first, those after `after_seq`.
    async fn audit(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;
    /// The newest entries first, those before `before_seq` when given.
    async fn audit_newest(
        &self,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// The first entry with `action` for write `write_id` (its
    /// `write.submitted` entry, say), as stored: the caller checks it.
    async fn audit_entry_for(
        &self,
        write_id: &str,
        action: &str,
    ) -> Result<Option<AuditEntry>, StoreError>;
    /// A signal each time another process may have appended (PostgreSQL's
    /// `NOTIFY`), for the event feed; `None` where the store has no such
    /// signal (the feed then polls). A lost signal costs latency only.
    async fn audit_appended(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        None
    }
}

#[async_trait]
pub trait GateStateStore: Send + Sync {
    /// The freeze switch. A stored state that does not decode is an error,
    /// never "not frozen": the switch fails closed.
    async fn freeze(&self) -> Result<FreezeState, StoreError>;
    async fn set_freeze(&self, state: &FreezeState, audit: AuditDraft) -> Result<(), StoreError>;
    /// Enforce or observe: one mode for every gate on this store (the
    /// `state` table's `mode` key; `enforce` when nobody set one). A stored
    /// mode that does not decode is an error, never "observe".
    async fn mode(&self) -> Result<ModeState, StoreError>;
    /// Stores the mode with its audit entry, in one transaction.
    async fn set_mode(&self, state: &ModeState, audit: AuditDraft) -> Result<(), StoreError>;
}

/// Everything a gate keeps.
pub trait Store: TokenStore + CatalogStore + WriteStore + AuditStore + GateStateStore {}

impl<T: TokenStore + CatalogStore + WriteStore + AuditStore + GateStateStore> Store for T {}

/// Decodes the stored freeze state, failing closed.
pub(crate) fn decode_freeze(raw: Option<&str>) -> Result<FreezeState, StoreError> {
    match raw {
        None => Ok(FreezeState::default()),
        Some(s) => serde_json::from_str(s).map_err(|e| {
            StoreError::Corrupt(format!(
                "the stored freeze state does not decode ({e}): the gate treats it as frozen"
            ))
        }),
    }
}

/// Decodes the stored mode; a value that does not decode is an error (the
/// gate then enforces).
pub(crate) fn decode_mode(raw: Option<&str>) -> Result<ModeState, StoreError> {
    match raw {
        None => Ok(ModeState::default()),
        Some(s) => serde_json::from_str(s).map_err(|e| {
            StoreError::Corrupt(format!(
                "the stored mode does not decode ({e}): the gate enforces"
            ))
        }),
    }
}

#[cfg(test)]
mod tests;
