//! Durable state, by concern: tokens, the catalog, writes, the audit trail
//! and the gate's own state (the freeze), each a trait. `SqliteStore` (one
//! file in the data directory) implements them all for the embedded gate;
//! `PostgresStore` for several gates on one PostgreSQL database
//! (`--database-url`, see [`open_url`]); `MemoryStore` for in-process
//! tests. Nothing the gate decides on lives only in process memory.

mod memory;
mod postgres;
mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use recourse_client::{
    AuditEntry, FreezeState, ModeState, Role, TokenScope, WriteRecord, WriteStatus, WriteSummary,
};
use recourse_core::Catalog;

pub use memory::MemoryStore;
pub use postgres::{PostgresStore, AUDIT_LOCK};
pub use sqlite::{SqliteStore, EXIT_STORE_FSYNC};

use crate::audit::AuditDraft;

/// How long the gate waits on its store before it refuses a request with a
/// 503 naming the cause, unless `--store-timeout-ms` says otherwise: the
/// SQLite busy timeout, the PostgreSQL `lock_timeout` and
/// `statement_timeout`, and the wait for a pooled connection. A store that
/// stops answering (another process holding its lock, a table locked in
/// another session) is refused within a few of these, never waited on
/// forever: Vault was found answering requests its audit device no longer
/// recorded; a gate that cannot record does not act.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the store cannot record now. Each is a 503 whose message names it:
/// nothing that needed the record was done, and trying later may work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    /// Another process or session holds the lock the change needs, past
    /// the store timeout (SQLITE_BUSY, PostgreSQL `lock_timeout`).
    Busy,
    /// The store did not answer within the store timeout (no pooled
    /// connection came free, `statement_timeout`, a queued commit).
    Timeout,
    /// The store's files (or database) cannot be written.
    ReadOnly,
    /// No room left for the store (SQLITE_FULL, a full disk).
    Full,
    /// The store's file could not be read or written (an I/O error).
    Io,
    /// The file at the store's path is no longer the one the gate opened:
    /// deleted (SQLite would go on writing into the unlinked inode, an
    /// audit trail nobody will ever read) or replaced by another file.
    Replaced,
    /// The database cannot be reached (PostgreSQL down, connection lost).
    Unreachable,
}

impl StoreFault {
    /// The cause, as the 503's message names it.
    pub fn cause(self) -> &'static str {
        match self {
            StoreFault::Busy => "another process or session holds a lock the store needs, and did not free it within the store timeout",
            StoreFault::Timeout => "the store did not answer within the store timeout",
            StoreFault::ReadOnly => "the store cannot be written (it is read-only)",
            StoreFault::Full => "the store is full (no room left on its disk or in its database)",
            StoreFault::Io => "the store's file gave an I/O error",
            StoreFault::Replaced => "the store's file was deleted or replaced under the running gate (the file at its path is not the one the gate opened); restart the gate once the file is back",
            StoreFault::Unreachable => "the store's database cannot be reached",
        }
    }

    /// The fault a SQLite (extended) result code names; `None`: not a
    /// fault of the store (a constraint, a syntax error: a bug, a 500).
    pub fn of_sqlite(code: i64) -> Option<StoreFault> {
        // The primary code is the low byte of the extended one.
        match (code & 0xff, code) {
            // SQLITE_READONLY_DBMOVED: SQLite's own check that the file was
            // unlinked or renamed (made in rollback-journal mode only).
            (8, 1032) => Some(StoreFault::Replaced),
            // SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
            (5 | 6, _) => Some(StoreFault::Busy),
            (8, _) => Some(StoreFault::ReadOnly),
            // SQLITE_IOERR*, SQLITE_CANTOPEN*, SQLITE_PROTOCOL
            (10 | 14 | 15, _) => Some(StoreFault::Io),
            (13, _) => Some(StoreFault::Full),
            _ => None,
        }
    }

    /// The fault a PostgreSQL SQLSTATE names; `None`: not a fault of the
    /// store.
    pub fn of_sqlstate(code: &str) -> Option<StoreFault> {
        match code {
            // lock not available (`lock_timeout`), serialization failure,
            // deadlock
            "55P03" | "40001" | "40P01" => Some(StoreFault::Busy),
            // query canceled (`statement_timeout`)
            "57014" => Some(StoreFault::Timeout),
            // read-only transaction (a standby, `default_transaction_read_only`)
            "25006" => Some(StoreFault::ReadOnly),
            // disk full, insufficient resources, out of memory
            "53100" | "53000" | "53200" => Some(StoreFault::Full),
            // I/O error
            "58030" => Some(StoreFault::Io),
            // admin shutdown, crash shutdown, cannot connect now, too many
            // connections, and connection exceptions
            "57P01" | "57P02" | "57P03" | "53300" => Some(StoreFault::Unreachable),
            c if c.starts_with("08") => Some(StoreFault::Unreachable),
            _ => None,
        }
    }

    /// The fault a database error names, by the database that raised it
    /// (a SQLite code and a SQLSTATE may both be digits: 57014 is a
    /// cancelled PostgreSQL statement, and no SQLite code).
    fn of_database(e: &dyn sqlx::error::DatabaseError) -> Option<StoreFault> {
        let code = e.code()?;
        if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            code.parse().ok().and_then(StoreFault::of_sqlite)
        } else {
            StoreFault::of_sqlstate(&code)
        }
    }
}

impl std::fmt::Display for StoreFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.cause())
    }
}

/// SQLite's extended result codes for a failed fsync of a file and of
/// its directory (`SQLITE_IOERR | 4 << 8`, `SQLITE_IOERR | 5 << 8`).
const SQLITE_IOERR_FSYNC: i64 = 1034;
const SQLITE_IOERR_DIR_FSYNC: i64 = 1290;

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
    /// Nothing stored: the write would begin executing at once, and the
    /// gate-wide freeze is on (read in the insert's own transaction). A
    /// refusal: the gate decides the write again, and holds it.
    #[error("the gate is frozen: a new write does not begin executing")]
    Frozen,
    /// The group commit failed: nothing of the batch was stored.
    #[error("store commit: {0}")]
    Commit(String),
    /// The store could not record the change (it was busy, full,
    /// read-only, replaced, unreachable, or did not answer in time), and
    /// nothing of it was stored: worth trying again (a lost answer to a
    /// commit that did take effect is found by the retry: the idempotency
    /// key returns the stored write, a compare-and-set on a moved version
    /// fails).
    #[error("store unavailable ({0}): {1}")]
    Unavailable(StoreFault, String),
    /// The store's file is missing while its write-ahead log is there:
    /// it was deleted (under a running gate, say), and starting an empty
    /// store over the old log would mix the two.
    #[error("the store's file {} is missing but its write-ahead log is there (was it deleted under a running gate?): restore the file (a gate still running holds it open: copy it from /proc/PID/fd/), or move the `-wal` file away to start an empty store", .0.display())]
    Missing(std::path::PathBuf),
    /// `--database-url` names no store this build has.
    #[error("a database URL starting `{0}:` names no store this gate has (postgres://… or postgresql://…)")]
    UnsupportedUrl(String),
}

impl StoreError {
    /// Why the store cannot record now, when that is the trouble (see
    /// [`StoreFault`]); `None` for a corrupt record, a refusal or a bug.
    pub fn fault(&self) -> Option<StoreFault> {
        match self {
            StoreError::Db(e) => match e {
                sqlx::Error::PoolTimedOut => Some(StoreFault::Timeout),
                sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                    Some(StoreFault::Unreachable)
                }
                _ => e.as_database_error().and_then(StoreFault::of_database),
            },
            StoreError::Unavailable(fault, _) => Some(*fault),
            _ => None,
        }
    }

    /// Whether SQLite said its fsync failed (`SQLITE_IOERR_FSYNC`,
    /// `SQLITE_IOERR_DIR_FSYNC`): the store's writes may be lost whatever
    /// a later fsync says: the gate stops (see `sqlite::stop_after_failed_fsync`).
    pub fn is_failed_fsync(&self) -> bool {
        let StoreError::Db(e) = self else {
            return false;
        };
        let Some(db) = e.as_database_error() else {
            return false;
        };
        db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
            && matches!(
                db.code().and_then(|c| c.parse::<i64>().ok()),
                Some(SQLITE_IOERR_FSYNC | SQLITE_IOERR_DIR_FSYNC)
            )
    }

    /// Worth trying again: the store could not record now (see
    /// [`StoreError::fault`]), and nothing was stored. A corrupt record or
    /// a failed commit is not.
    pub fn is_transient(&self) -> bool {
        self.fault().is_some()
    }

    /// This error as each caller of a failed batch hears it: a fault keeps
    /// its cause (the caller answers 503 naming it); anything else is a
    /// failed commit.
    pub(crate) fn for_batch(&self) -> StoreError {
        match (self, self.fault()) {
            (StoreError::Unavailable(fault, detail), _) => {
                StoreError::Unavailable(*fault, detail.clone())
            }
            (StoreError::Commit(detail), _) => StoreError::Commit(detail.clone()),
            (_, Some(fault)) => StoreError::Unavailable(fault, self.to_string()),
            (_, None) => StoreError::Commit(self.to_string()),
        }
    }
}

/// The shared store a `--database-url` names, picked by the URL's scheme.
/// Connects nothing yet (see [`PostgresStore::ready`]): a gate may start
/// while its database is down. Errors never repeat the URL, which may hold
/// a password.
pub fn open_url(url: &str) -> Result<PostgresStore, StoreError> {
    open_url_with(url, DEFAULT_STORE_TIMEOUT)
}

/// [`open_url`] with a store timeout (see [`DEFAULT_STORE_TIMEOUT`]).
pub fn open_url_with(url: &str, timeout: Duration) -> Result<PostgresStore, StoreError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "postgres" | "postgresql" => PostgresStore::new_with(url, timeout),
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

/// What a claim found (see [`WriteStore::claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// Taken, with this fencing token.
    Taken(i64),
    /// Someone holds it, it is not in flight, or there is no such write.
    Refused,
    /// An approved write, and the gate is frozen: it does not begin.
    Frozen,
}

/// What a compare-and-set of a write found (see
/// [`WriteStore::update_write_under`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cas {
    /// Stored, with its audit entry.
    Done,
    /// Nothing stored: the version moved (another move got there first),
    /// or there is no such write.
    Moved,
    /// Nothing stored: the write was claimed again since the claim this
    /// record was made under (that claim's lease lapsed): the new owner
    /// settles the write.
    Fenced,
    /// Nothing stored: the move would begin an execution while frozen.
    Frozen,
}

/// Whether a move from `from` to `to` begins an execution (approved ->
/// executing): the one move a freeze stops in the store itself.
pub(crate) fn begins_execution(from: WriteStatus, to: WriteStatus) -> bool {
    from == WriteStatus::Approved && to == WriteStatus::Executing
}

/// Whether the stored freeze state stops executions: frozen, or a state
/// that does not decode (fail closed).
pub(crate) fn frozen(raw: Option<&str>) -> bool {
    decode_freeze(raw).map_or(true, |f| f.frozen)
}

/// What a compare-and-set that stored nothing found, from the row as it
/// is now (in the same transaction): `row` is its version, fencing token
/// and status, `None` for no such write.
pub(crate) fn why_not_stored(
    row: Option<(i64, i64, Option<WriteStatus>)>,
    expected: i64,
    fence: Option<i64>,
    frozen_now: bool,
    to: WriteStatus,
) -> Cas {
    let Some((version, token, status)) = row else {
        return Cas::Moved;
    };
    if fence.is_some_and(|f| f != token) {
        return Cas::Fenced;
    }
    if version != expected {
        return Cas::Moved;
    }
    if frozen_now && status.is_some_and(|s| begins_execution(s, to)) {
        return Cas::Frozen;
    }
    Cas::Moved
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
    /// Makes the catalog exactly `catalog`, removals included, if its
    /// version is still `expected` (a risk officer's `catalog apply`): in
    /// one transaction with its audit entry, stored in `catalog`'s order,
    /// the version moved by one. `None`: the version had moved, and nothing
    /// was stored. The caller checked `catalog` as a whole
    /// (`catalog_diff::check_document`).
    ///
    /// INVARIANT (cache): this never answers with a [`CatalogUpsert`], so no
    /// gate extends its cached graph with it in place; every gate sees the
    /// new version and reads the whole catalog afresh, removals included.
    async fn replace_catalog(
        &self,
        catalog: &Catalog,
        expected: i64,
        audit: AuditDraft,
    ) -> Result<Option<i64>, StoreError>;
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
    /// Either insert refuses a write that starts `executing` while the
    /// gate-wide freeze is on, read in the same transaction
    /// ([`StoreError::Frozen`]).
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
    /// entry, in one transaction. False when someone else changed it first
    /// (or the move would begin an execution while frozen, see
    /// [`WriteStore::update_write_under`]).
    async fn update_write(
        &self,
        record: &WriteRecord,
        expected: i64,
        audit: AuditDraft,
    ) -> Result<bool, StoreError> {
        Ok(self
            .update_write_under(record, expected, None, audit)
            .await?
            == Cas::Done)
    }
    /// [`WriteStore::update_write`], and with `fence`, a record made under
    /// a claim: it is also refused ([`Cas::Fenced`]) unless the write's
    /// fencing token is still `fence`, the one its claim was taken with.
    /// A move from `approved` into `executing` is refused ([`Cas::Frozen`])
    /// while the gate-wide freeze is on, read in the same transaction: no
    /// write begins executing once a freeze is acknowledged.
    async fn update_write_under(
        &self,
        record: &WriteRecord,
        expected: i64,
        fence: Option<i64>,
        audit: AuditDraft,
    ) -> Result<Cas, StoreError>;
    async fn counts(&self) -> Result<Vec<(WriteStatus, i64)>, StoreError>;

    /// Takes the claim on an in-flight write for `owner` until `until`,
    /// when nobody holds it at `now` (no claim, a lapsed one, or a backoff
    /// that has passed): [`Claimed::Taken`] with the write's next fencing
    /// token, one more than any it was claimed with before. An `approved`
    /// write is not claimed while the gate-wide freeze is on, read in the
    /// same transaction ([`Claimed::Frozen`]). The claim is not part of the
    /// write's version: taking or renewing it never fails a compare-and-set.
    async fn claim(
        &self,
        id: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claimed, StoreError>;
    /// Extends `owner`'s claim taken with `token` to `until`. False when
    /// the write was claimed since (its token moved: the lease had lapsed
    /// and another gate took it), or it left flight: the claim is lost, and
    /// nothing made under it can be recorded any more.
    async fn renew(
        &self,
        id: &str,
        owner: &str,
        token: i64,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Gives up `owner`'s claim taken with `token` (a claim taken since,
    /// by anyone, stays); with `retry_at`, nobody takes the write up before
    /// then (a backoff).
    async fn release(
        &self,
        id: &str,
        owner: &str,
        token: i64,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// In-flight writes (approved, executing, rolling back) nobody holds at
    /// `now`, oldest first; approved ones only while the gate is not
    /// frozen (their claim would be refused).
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
    /// Whether the store this gate opened is still the one it would record
    /// into: for SQLite, that the files at the store's paths are the ones
    /// it opened ([`StoreFault::Replaced`] otherwise). Every commit checks
    /// it as well; `/healthz` asks it so a load balancer stops sending
    /// requests the gate would refuse.
    async fn in_place(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// How long this store waits before it gives up (see
    /// [`DEFAULT_STORE_TIMEOUT`]); the gate bounds its own waits in front
    /// of the store by it too.
    fn timeout(&self) -> Duration {
        DEFAULT_STORE_TIMEOUT
    }
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
