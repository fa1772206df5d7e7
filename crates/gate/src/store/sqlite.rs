//! The embedded store: one SQLite file in the data directory.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use recourse_client::{
    AuditEntry, FreezeState, ModeState, Role, WriteRecord, WriteStatus, WriteSummary,
};
use recourse_connector::crash;
use recourse_core::{Catalog, Edge, Resource};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::{
    decode_freeze, decode_mode, frozen, why_not_stored, AuditStore, Cas, CatalogStore,
    CatalogUpsert, Claimed, GateStateStore, Inserted, StoreError, StoreFault, TokenRow, TokenStore,
    WriteFilter, WriteStore, DEFAULT_STORE_TIMEOUT,
};
use crate::audit::{self, AuditDraft};
use crate::crash_points;

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{s}`: {e}")))
}

fn json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The embedded store: one SQLite file in the data directory, WAL, full
/// synchronous commits (a write acknowledged is a write on disk).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// One connection: SQLite has one writer, and queueing here is cheaper
    /// and fairer than retrying on `SQLITE_BUSY`.
    writer: SqlitePool,
    reader: SqlitePool,
    /// Group commit for the hot path (new writes and their transitions):
    /// see [`committer`].
    commits: mpsc::Sender<Queued>,
    /// The files this store opened, checked before every commit.
    identity: Arc<Identity>,
    /// The store timeout (see [`super::DEFAULT_STORE_TIMEOUT`]).
    timeout: Duration,
}

/// The files the store opened (the database, its write-ahead log and its
/// shared-memory index), by device and inode. SQLite holds them open: a
/// file deleted under the running gate stays writable through those
/// handles, and a file moved over the path is never looked at, so without
/// this check the gate would go on "recording" into an inode nobody will
/// read again (and lose it all at the next start). The log and the index
/// stay in place while any connection is open (the reader pool keeps its
/// connections for the store's lifetime), so any change to them is
/// someone else's.
#[derive(Debug)]
struct Identity {
    files: Vec<(PathBuf, u64, u64)>,
}

impl Identity {
    /// The files as they are now; the log and the index only if present.
    fn record(db: &Path) -> Result<Self, StoreError> {
        let mut files = Vec::new();
        for path in [db.to_path_buf(), sibling(db, "-wal"), sibling(db, "-shm")] {
            match std::fs::metadata(&path) {
                Ok(md) => files.push((path, md.dev(), md.ino())),
                Err(e) if files.is_empty() => {
                    return Err(StoreError::Unavailable(
                        StoreFault::Replaced,
                        format!("{}: {e}", path.display()),
                    ))
                }
                Err(_) => {}
            }
        }
        Ok(Self { files })
    }

    /// Refuses unless each file at its path is the one recorded: two
    /// `stat`s and a comparison, cheap enough for every commit.
    fn check(&self) -> Result<(), StoreError> {
        for (path, dev, ino) in &self.files {
            let problem = match std::fs::metadata(path) {
                Ok(md) if md.dev() == *dev && md.ino() == *ino => continue,
                Ok(md) => format!(
                    "{} is now inode {} on device {}, not inode {ino} on device {dev} that the gate opened",
                    path.display(),
                    md.ino(),
                    md.dev()
                ),
                Err(e) => format!("{}: {e}", path.display()),
            };
            return Err(StoreError::Unavailable(StoreFault::Replaced, problem));
        }
        Ok(())
    }

    /// An I/O error, told apart: a write-ahead log that cannot be opened
    /// for writing (an immutable file, a read-only mount) makes a
    /// read-only store, which is what the 503 should say. Only the log is
    /// probed: SQLite holds no POSIX lock on it, so opening and closing it
    /// here cannot drop one of SQLite's (closing any descriptor of the
    /// database file or its index in this process would).
    fn diagnose(&self, e: StoreError) -> StoreError {
        if e.fault() != Some(StoreFault::Io) {
            return e;
        }
        let Some((wal, ..)) = self
            .files
            .iter()
            .find(|(p, ..)| p.as_os_str().to_string_lossy().ends_with("-wal"))
        else {
            return e;
        };
        match std::fs::OpenOptions::new().append(true).open(wal) {
            Err(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                StoreError::Unavailable(
                    StoreFault::ReadOnly,
                    format!("{}: {io} ({e})", wal.display()),
                )
            }
            _ => e,
        }
    }
}

/// The exit status of a gate stopped by a failed fsync of its store
/// (`EX_IOERR` in sysexits.h).
pub const EXIT_STORE_FSYNC: i32 = 74;

/// Stops the process: the store's fsync failed. Never retried and carried
/// on from (PostgreSQL's "fsyncgate"): after a failed fsync the kernel may
/// have dropped the dirty pages and cleared the error, so a later fsync
/// would succeed over writes that never reached the disk, and an audit
/// entry or a capture the gate went on to rely on could be gone. Nothing
/// is answered to the waiting requests (none of their changes was
/// acknowledged); the restart reads the store as the disk has it and
/// settles every write in flight from it and from the connectors' own
/// evidence, as after a crash. PostgreSQL does the same for its own files
/// (`data_sync_retry = off`, a PANIC).
pub fn stop_after_failed_fsync(e: &StoreError) -> ! {
    let msg = format!(
        "recourse: the store's fsync failed ({e}); stopping with status {EXIT_STORE_FSYNC} \
         (a failed fsync is never retried: writes the disk may have dropped would be taken \
         for durable). Check the disk, then start the gate again: the start settles every \
         write that was in flight."
    );
    tracing::error!("{msg}");
    eprintln!("{msg}");
    std::process::exit(EXIT_STORE_FSYNC);
}

/// `recourse.db` -> `recourse.db-wal`.
fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A write transaction on the one writer connection.
///
/// - `BEGIN IMMEDIATE`: the write lock is taken first, so a store another
///   process holds is found before anything is done, within the busy
///   timeout, instead of after reads whose snapshot then cannot be
///   upgraded.
/// - [`WriteTx::finish`] checks the store's [`Identity`] right before
///   `COMMIT`, so nothing commits into a deleted or replaced file.
/// - Plain SQL, not sqlx's `Transaction`: after SQLITE_FULL or an I/O
///   error SQLite may roll the transaction back by itself; sqlx's rollback
///   then fails and its count of open transactions stays one too high, so
///   it would send `SAVEPOINT` for every later `BEGIN` and `RELEASE` for
///   every later `COMMIT`, and after the next failure leave the connection
///   inside a transaction that never commits: writes answered "done" and
///   lost at the next start.
/// - A failure ends in `ROLLBACK`; when that fails too, or the transaction
///   is dropped unfinished (a cancelled request), the connection is closed
///   rather than returned to the pool (SQLite rolls back as it closes) and
///   the pool opens a fresh one.
struct WriteTx {
    conn: PoolConnection<Sqlite>,
    open: bool,
}

impl WriteTx {
    async fn begin(writer: &SqlitePool, identity: &Identity) -> Result<WriteTx, StoreError> {
        identity.check()?;
        let mut conn = writer.acquire().await?;
        if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
            let e = StoreError::from(e);
            if spoils_connection(&e) {
                // A connection opened while the file could not be written
                // (SQLite then opens it read-only, for good) fails here.
                conn.close_on_drop();
            }
            return Err(identity.diagnose(e));
        }
        Ok(WriteTx { conn, open: true })
    }

    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// Commits when `result` is `Ok` and the store is still in place,
    /// else rolls back; hands `result` on (or the commit's error).
    async fn finish<T>(
        mut self,
        identity: &Identity,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let committed = match result {
            Ok(v) => match identity.check() {
                Ok(()) => sqlx::query("COMMIT")
                    .execute(&mut *self.conn)
                    .await
                    .map(|_| v)
                    .map_err(StoreError::from),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match committed {
            Ok(v) => {
                self.open = false;
                Ok(v)
            }
            Err(e) => {
                if e.is_failed_fsync() {
                    stop_after_failed_fsync(&e);
                }
                self.rollback().await;
                let e = identity.diagnose(e);
                if spoils_connection(&e) {
                    self.conn.close_on_drop();
                }
                Err(e)
            }
        }
    }

    async fn rollback(&mut self) {
        if sqlx::query("ROLLBACK")
            .execute(&mut *self.conn)
            .await
            .is_ok()
        {
            self.open = false;
        }
        // Else SQLite rolled back already (SQLITE_FULL, an I/O error) or
        // the connection is in a state nobody can tell: `open` stays set
        // and the drop closes it.
    }
}

/// Whether the writer connection is not to be used again after `e`: one
/// opened while the file could not be written stays read-only (SQLite
/// falls back to opening it read-only, and keeps it so), and one that saw
/// an I/O error may hold a stale view. The pool opens a fresh one for the
/// next change, which works as soon as the fault is gone. (A busy store
/// leaves the connection as it was.)
fn spoils_connection(e: &StoreError) -> bool {
    matches!(
        e.fault(),
        Some(StoreFault::ReadOnly | StoreFault::Io | StoreFault::Full | StoreFault::Replaced)
    )
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// A write-path operation waiting for the next group commit.
enum Op {
    /// With the quota on the agent's pending bytes, if any.
    Insert(
        Box<WriteRecord>,
        AuditDraft,
        Option<u64>,
        oneshot::Sender<Result<Inserted, StoreError>>,
    ),
    /// With the fencing token of the claim it was made under, if any.
    Update(
        Box<WriteRecord>,
        i64,
        Option<i64>,
        AuditDraft,
        oneshot::Sender<Result<Cas, StoreError>>,
    ),
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Insert(r, ..) => write!(f, "Insert({})", r.id),
            Op::Update(r, v, fence, ..) => write!(f, "Update({}, {v}, {fence:?})", r.id),
        }
    }
}

impl Op {
    /// Whether the caller stopped waiting (its request ended): its
    /// operation is not run.
    fn abandoned(&self) -> bool {
        match self {
            Op::Insert(.., reply) => reply.is_closed(),
            Op::Update(.., reply) => reply.is_closed(),
        }
    }

    fn answer(self, result: Result<Reply, StoreError>) {
        match self {
            Op::Insert(.., reply) => {
                let _ = reply.send(result.and_then(|r| match r {
                    Reply::Inserted(i) => Ok(i),
                    Reply::Updated(_) => Err(StoreError::Commit("mismatched reply".into())),
                }));
            }
            Op::Update(.., reply) => {
                let _ = reply.send(result.and_then(|r| match r {
                    Reply::Updated(u) => Ok(u),
                    Reply::Inserted(_) => Err(StoreError::Commit("mismatched reply".into())),
                }));
            }
        }
    }
}

/// An operation and when it was queued.
struct Queued {
    op: Op,
    at: Instant,
}

enum Reply {
    Inserted(Inserted),
    Updated(Cas),
}

/// How many operations one commit may carry.
const GROUP_MAX: usize = 128;

/// Takes every operation that is waiting, runs each inside its own
/// savepoint of one transaction (so one failure does not undo the others),
/// commits once, then answers each. No caller hears "done" before the
/// commit that holds its record (synchronous=FULL) has returned: batching
/// gives up nothing of durability, and costs one fsync per batch instead of
/// one per record.
///
/// Bounded: an operation that waited longer than the store timeout behind
/// a batch that could not commit (the store locked by another process) is
/// answered at once with [`StoreFault::Timeout`] and never run, so a
/// request waits for at most the batch ahead of it and its own, each
/// bounded by the busy timeout, not for every batch queued before it.
async fn committer(
    writer: SqlitePool,
    identity: Arc<Identity>,
    timeout: Duration,
    mut rx: mpsc::Receiver<Queued>,
) {
    while let Some(first) = rx.recv().await {
        let mut waiting = vec![first];
        while waiting.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(q) => waiting.push(q),
                Err(_) => break,
            }
        }
        let mut batch = Vec::with_capacity(waiting.len());
        for q in waiting {
            if q.op.abandoned() {
                continue;
            }
            if q.at.elapsed() > timeout {
                q.op.answer(Err(StoreError::Unavailable(
                    StoreFault::Timeout,
                    format!(
                        "queued {} ms behind a commit that did not go through",
                        q.at.elapsed().as_millis()
                    ),
                )));
                continue;
            }
            batch.push(q.op);
        }
        if batch.is_empty() {
            continue;
        }
        let mut results = Vec::with_capacity(batch.len());
        let outcome: Result<(), StoreError> = async {
            let mut tx = WriteTx::begin(&writer, &identity).await?;
            let run = async {
                for op in &batch {
                    sqlx::query("SAVEPOINT op").execute(tx.conn()).await?;
                    let result = match op {
                        Op::Insert(record, draft, quota, _) => {
                            SqliteStore::insert_in(tx.conn(), record, draft.clone(), *quota)
                                .await
                                .map(Reply::Inserted)
                        }
                        Op::Update(record, expected, fence, draft, _) => SqliteStore::update_in(
                            tx.conn(),
                            record,
                            *expected,
                            *fence,
                            draft.clone(),
                        )
                        .await
                        .map(Reply::Updated),
                    };
                    let keep = matches!(
                        result,
                        Ok(Reply::Inserted(Inserted::New)) | Ok(Reply::Updated(Cas::Done))
                    );
                    if !keep {
                        if let Err(e) = sqlx::query("ROLLBACK TO op").execute(tx.conn()).await {
                            // SQLite ended the whole transaction itself (it
                            // does after SQLITE_FULL and some I/O errors):
                            // the batch fails with the cause, not with "no
                            // such savepoint".
                            return Err(match result {
                                Err(cause) if cause.fault().is_some() => cause,
                                _ => e.into(),
                            });
                        }
                    }
                    sqlx::query("RELEASE op").execute(tx.conn()).await?;
                    results.push(result);
                }
                Ok(())
            }
            .await;
            crash::pause_point(crash_points::STORE_COMMIT_BEFORE);
            let done = tx.finish(&identity, run).await;
            if done.is_ok() {
                crash::pause_point(crash_points::STORE_COMMIT_AFTER);
            }
            done
        }
        .await;
        let failed = outcome.err().map(|e| e.for_batch());
        let mut results = results.into_iter();
        for op in batch {
            let result = match (&failed, results.next()) {
                (Some(e), _) => Err(e.for_batch()),
                (None, Some(r)) => r,
                (None, None) => Err(StoreError::Commit("not run".into())),
            };
            op.answer(result.map_err(|e| identity.diagnose(e)));
        }
    }
}

impl SqliteStore {
    /// The store in `data_dir` (created if missing), with the default store
    /// timeout.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, DEFAULT_STORE_TIMEOUT).await
    }

    /// The store in `data_dir`, waiting at most `timeout` for its lock (the
    /// busy timeout) and for its connection: past it, a request is refused
    /// with [`StoreFault::Busy`] or [`StoreFault::Timeout`] (a 503), never
    /// left waiting on a store that does not answer.
    pub async fn open_with(data_dir: &Path, timeout: Duration) -> Result<Self, StoreError> {
        let path = data_dir.join("recourse.db");
        let wal = sibling(&path, "-wal");
        // A log without its database: the file was deleted (under a
        // running gate, say). Creating an empty database here would replay
        // the old log's pages onto it, a store that is neither.
        if !path.exists() && wal.exists() {
            return Err(StoreError::Missing(path));
        }
        let opts = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(timeout);
        // The file is created once, here. The pools never create it: a
        // connection reopened after the file was deleted fails instead of
        // starting an empty store at the path.
        SqliteConnection::connect_with(&opts.clone().create_if_missing(true))
            .await?
            .close()
            .await?;
        // Connections are kept for the store's lifetime (no idle timeout,
        // no maximum age): the write-ahead log stays the one file while a
        // connection is open, which the identity check relies on.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(timeout)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .acquire_timeout(timeout)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.read_only(true))
            .await?;
        // A read maps the log and its index, now, on a connection the pool
        // keeps: they exist from here on, and are recorded.
        sqlx::query("SELECT COUNT(*) FROM state")
            .fetch_one(&reader)
            .await?;
        let identity = Arc::new(Identity::record(&path)?);
        let (commits, rx) = mpsc::channel(4096);
        tokio::spawn(committer(writer.clone(), identity.clone(), timeout, rx));
        Ok(Self {
            writer,
            reader,
            commits,
            identity,
            timeout,
        })
    }

    /// Runs `sql` on the writer connection and reads one integer (a
    /// `PRAGMA`, for the tests that fill the store).
    #[cfg(test)]
    pub(crate) async fn writer_value(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_optional(&self.writer)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// A transaction on the writer, for the paths outside the group commit.
    async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        WriteTx::begin(&self.writer, &self.identity).await
    }

    /// Queues `op` for the group commit and waits for its answer: at most
    /// a few store timeouts (see [`committer`]), a backstop in case a
    /// commit itself hangs (a disk that does not answer).
    async fn queue<T>(
        &self,
        op: Op,
        rx: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.commits
            .send(Queued {
                op,
                at: Instant::now(),
            })
            .await
            .map_err(|_| StoreError::Commit("the committer stopped".into()))?;
        match tokio::time::timeout(self.timeout * 4, rx).await {
            Ok(answer) => {
                answer.map_err(|_| StoreError::Commit("the committer stopped".into()))?
            }
            Err(_) => Err(StoreError::Unavailable(
                StoreFault::Timeout,
                format!(
                    "no answer from the group commit within {} ms (whether this change was recorded shows in the record)",
                    (self.timeout * 4).as_millis()
                ),
            )),
        }
    }

    async fn append_in(
        tx: &mut sqlx::SqliteConnection,
        draft: AuditDraft,
    ) -> Result<AuditEntry, StoreError> {
        let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let (seq, prev) = match last {
            Some(row) => (row.try_get::<i64, _>(0)? + 1, row.try_get::<String, _>(1)?),
            None => (1, audit::GENESIS.to_string()),
        };
        let entry = audit::seal(draft, seq, Utc::now(), &prev);
        sqlx::query("INSERT INTO audit (seq, at, actor, action, write_id, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(entry.seq)
            .bind(ts(entry.at))
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.write_id)
            .bind(to_json(&entry.body)?)
            .bind(&entry.prev_hash)
            .bind(&entry.hash)
            .execute(&mut *tx)
            .await?;
        Ok(entry)
    }

    async fn insert_in(
        tx: &mut sqlx::SqliteConnection,
        record: &WriteRecord,
        audit: AuditDraft,
        quota: Option<u64>,
    ) -> Result<Inserted, StoreError> {
        if let Some(key) = &record.proposal.idempotency_key {
            let existing =
                sqlx::query("SELECT record FROM writes WHERE agent = ? AND idempotency_key = ?")
                    .bind(&record.agent)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(row) = existing {
                return Ok(Inserted::Existing(Box::new(Self::record_row(&row)?)));
            }
        }
        // A write that begins executing at once does not, once a freeze
        // is acknowledged (read here, in the insert's transaction).
        if record.status == WriteStatus::Executing
            && frozen(Self::state_in(&mut *tx, "freeze").await?.as_deref())
        {
            return Err(StoreError::Frozen);
        }
        let body = to_json(record)?;
        let bytes = body.len() as u64;
        if let Some(max) = quota {
            let pending = Self::pending_in(&mut *tx, &record.agent).await?;
            if pending.saturating_add(bytes) > max {
                return Err(StoreError::OverQuota {
                    pending_bytes: pending,
                });
            }
        }
        sqlx::query("INSERT INTO writes (id, agent, idempotency_key, status, version, created_at, updated_at, record, summary, bytes) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)")
            .bind(&record.id)
            .bind(&record.agent)
            .bind(&record.proposal.idempotency_key)
            .bind(record.status.as_str())
            .bind(ts(record.created_at))
            .bind(ts(record.updated_at))
            .bind(body)
            .bind(to_json(&record.summary())?)
            .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        Self::append_in(tx, audit).await?;
        Ok(Inserted::New)
    }

    /// The stored freeze state as is.
    async fn freeze_raw(&self) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM state WHERE key = 'freeze'")
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// A gate-wide setting's raw value, read inside the caller's
    /// transaction.
    async fn state_in(tx: &mut SqliteConnection, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM state WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn update_in(
        tx: &mut sqlx::SqliteConnection,
        record: &WriteRecord,
        expected: i64,
        fence: Option<i64>,
        audit: AuditDraft,
    ) -> Result<Cas, StoreError> {
        let body = to_json(record)?;
        let bytes = i64::try_from(body.len()).unwrap_or(i64::MAX);
        // Only a move into `executing` can begin an execution: the freeze is
        // read (inside this transaction, behind the one writer) only then.
        let frozen_now = record.status == WriteStatus::Executing
            && frozen(Self::state_in(&mut *tx, "freeze").await?.as_deref());
        // A claim lives only while the write is in flight (see the memory
        // store's `update_write`); the fencing token stays.
        let done = sqlx::query("UPDATE writes SET status = ?1, version = version + 1, updated_at = ?2, record = ?3, summary = ?4, bytes = ?5, claim_owner = CASE WHEN ?8 THEN claim_owner END, claim_until = CASE WHEN ?8 THEN claim_until END WHERE id = ?6 AND version = ?7 AND (?9 IS NULL OR fence = ?9) AND NOT (status = 'approved' AND ?10)")
            .bind(record.status.as_str())
            .bind(ts(record.updated_at))
            .bind(body)
            .bind(to_json(&record.summary())?)
            .bind(bytes)
            .bind(&record.id)
            .bind(expected)
            .bind(record.status.in_flight())
            .bind(fence)
            .bind(frozen_now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if done != 1 {
            let row = sqlx::query("SELECT version, fence, status FROM writes WHERE id = ?")
                .bind(&record.id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| {
                    Ok::<_, StoreError>((
                        r.try_get::<i64, _>(0)?,
                        r.try_get::<i64, _>(1)?,
                        WriteStatus::parse(&r.try_get::<String, _>(2)?),
                    ))
                })
                .transpose()?;
            return Ok(why_not_stored(
                row,
                expected,
                fence,
                frozen_now,
                record.status,
            ));
        }
        Self::append_in(tx, audit).await?;
        Ok(Cas::Done)
    }

    /// The agent's pending bytes. The `IN` list is the partial index's own
    /// condition, word for word, so SQLite reads that index: only the
    /// agent's pending rows, never the whole table.
    async fn pending_in(conn: &mut sqlx::SqliteConnection, agent: &str) -> Result<u64, StoreError> {
        let sum: i64 = sqlx::query(
            "SELECT COALESCE(SUM(bytes), 0) FROM writes WHERE agent = ? AND status IN ('held', 'approved', 'executing')",
        )
        .bind(agent)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
        Ok(u64::try_from(sum).unwrap_or(0))
    }

    fn token_row(row: &sqlx::sqlite::SqliteRow) -> Result<TokenRow, StoreError> {
        let role: String = row.try_get("role")?;
        let expires: Option<String> = row.try_get("expires_at")?;
        let revoked: Option<String> = row.try_get("revoked_at")?;
        let scope: Option<String> = row.try_get("scope")?;
        Ok(TokenRow {
            name: row.try_get("name")?,
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("role `{role}`")))?,
            hash: row.try_get("hash")?,
            expires_at: expires.as_deref().map(parse_ts).transpose()?,
            // A scope that does not decode fails closed: an error, never
            // "no scope" (which would mean everything).
            scope: scope.as_deref().map(json).transpose()?,
            revoked_at: revoked.as_deref().map(parse_ts).transpose()?,
        })
    }

    fn record_row(row: &sqlx::sqlite::SqliteRow) -> Result<WriteRecord, StoreError> {
        json(&row.try_get::<String, _>("record")?)
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(&self, row: &TokenRow, audit: AuditDraft) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = Self::create_token_in(tx.conn(), row, audit).await;
        tx.finish(&self.identity, done).await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(
            "SELECT name, role, hash, expires_at, scope, revoked_at FROM tokens WHERE hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(Self::token_row).transpose()
    }

    async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, role, hash, expires_at, scope, revoked_at FROM tokens ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(Self::token_row).collect()
    }

    async fn revoke_token(
        &self,
        name: &str,
        at: DateTime<Utc>,
        audit: AuditDraft,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = async {
            let n = sqlx::query(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            )
            .bind(ts(at))
            .bind(name)
            .execute(tx.conn())
            .await?
            .rows_affected();
            if n != 1 {
                return Ok(false);
            }
            Self::append_in(tx.conn(), audit).await?;
            Ok(true)
        }
        .await;
        tx.finish(&self.identity, done).await
    }
}

#[async_trait]
impl CatalogStore for SqliteStore {
    async fn catalog(&self) -> Result<(Catalog, i64), StoreError> {
        // One read transaction, so the version matches the content.
        let mut tx = self.reader.begin().await?;
        let version = sqlx::query("SELECT value FROM state WHERE key = 'catalog_version'")
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut resources = Vec::new();
        for row in sqlx::query("SELECT body FROM resources ORDER BY rowid")
            .fetch_all(&mut *tx)
            .await?
        {
            resources.push(json::<Resource>(&row.try_get::<String, _>(0)?)?);
        }
        let mut edges = Vec::new();
        for row in sqlx::query("SELECT body FROM edges ORDER BY rowid")
            .fetch_all(&mut *tx)
            .await?
        {
            edges.push(json::<Edge>(&row.try_get::<String, _>(0)?)?);
        }
        tx.commit().await?;
        Ok((Catalog { resources, edges }, version))
    }

    async fn catalog_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT value FROM state WHERE key = 'catalog_version'")
            .fetch_optional(&self.reader)
            .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn upsert_catalog(
        &self,
        add: &Catalog,
        replace: bool,
        audit: Option<AuditDraft>,
    ) -> Result<CatalogUpsert, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = Self::upsert_catalog_in(tx.conn(), add, replace, audit).await;
        tx.finish(&self.identity, done).await
    }

    async fn replace_catalog(
        &self,
        catalog: &Catalog,
        expected: i64,
        audit: AuditDraft,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = Self::replace_catalog_in(tx.conn(), catalog, expected, audit).await;
        tx.finish(&self.identity, done).await
    }
}

impl SqliteStore {
    async fn replace_catalog_in(
        tx: &mut SqliteConnection,
        catalog: &Catalog,
        expected: i64,
        audit: AuditDraft,
    ) -> Result<Option<i64>, StoreError> {
        if Self::version_in(&mut *tx).await? != expected {
            return Ok(None);
        }
        // Emptied tables give rowids from 1 again: the catalog reads back
        // in `catalog`'s order.
        sqlx::query("DELETE FROM edges").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM resources")
            .execute(&mut *tx)
            .await?;
        for r in &catalog.resources {
            sqlx::query("INSERT INTO resources (id, body) VALUES (?, ?)")
                .bind(&r.id)
                .bind(to_json(r)?)
                .execute(&mut *tx)
                .await?;
        }
        for e in &catalog.edges {
            sqlx::query("INSERT INTO edges (src, dst, body) VALUES (?, ?, ?)")
                .bind(&e.from)
                .bind(&e.to)
                .bind(to_json(e)?)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE state SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'catalog_version'")
            .execute(&mut *tx)
            .await?;
        Self::append_in(&mut *tx, audit).await?;
        Self::version_in(&mut *tx).await.map(Some)
    }

    async fn upsert_catalog_in(
        tx: &mut SqliteConnection,
        add: &Catalog,
        replace: bool,
        audit: Option<AuditDraft>,
    ) -> Result<CatalogUpsert, StoreError> {
        let before = Self::version_in(&mut *tx).await?;
        let mut applied = Catalog::default();
        let res_sql = if replace {
            "INSERT INTO resources (id, body) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body"
        } else {
            "INSERT INTO resources (id, body) VALUES (?, ?) ON CONFLICT(id) DO NOTHING"
        };
        for r in &add.resources {
            let n = sqlx::query(res_sql)
                .bind(&r.id)
                .bind(to_json(r)?)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                applied.resources.push(r.clone());
            }
        }
        let edge_sql = if replace {
            "INSERT INTO edges (src, dst, body) VALUES (?, ?, ?) ON CONFLICT(src, dst) DO UPDATE SET body = excluded.body"
        } else {
            "INSERT INTO edges (src, dst, body) VALUES (?, ?, ?) ON CONFLICT(src, dst) DO NOTHING"
        };
        for e in &add.edges {
            let n = sqlx::query(edge_sql)
                .bind(&e.from)
                .bind(&e.to)
                .bind(to_json(e)?)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                applied.edges.push(e.clone());
            }
        }
        let changed = !applied.resources.is_empty() || !applied.edges.is_empty();
        let after = if changed {
            sqlx::query("UPDATE state SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'catalog_version'")
                .execute(&mut *tx)
                .await?;
            if let Some(a) = audit {
                Self::append_in(&mut *tx, a).await?;
            }
            Self::version_in(&mut *tx).await?
        } else {
            before
        };
        Ok(CatalogUpsert {
            before,
            after,
            applied,
        })
    }
}

#[async_trait]
impl WriteStore for SqliteStore {
    async fn insert_write(
        &self,
        record: &WriteRecord,
        audit: AuditDraft,
    ) -> Result<Inserted, StoreError> {
        self.insert_queued(record, audit, None).await
    }

    async fn insert_write_within(
        &self,
        record: &WriteRecord,
        audit: AuditDraft,
        max_pending_bytes: u64,
    ) -> Result<Inserted, StoreError> {
        self.insert_queued(record, audit, Some(max_pending_bytes))
            .await
    }

    async fn pending_bytes(&self, agent: &str) -> Result<u64, StoreError> {
        let mut conn = self.reader.acquire().await?;
        Self::pending_in(&mut conn, agent).await
    }

    async fn write(&self, id: &str) -> Result<Option<(WriteRecord, i64)>, StoreError> {
        // Any committed version will do: the compare-and-set in `update_write`
        // refuses a stale one.
        let row = sqlx::query("SELECT record, version FROM writes WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| Ok((Self::record_row(&r)?, r.try_get::<i64, _>("version")?)))
            .transpose()
    }

    async fn write_by_key(
        &self,
        agent: &str,
        key: &str,
    ) -> Result<Option<WriteRecord>, StoreError> {
        let row = sqlx::query("SELECT record FROM writes WHERE agent = ? AND idempotency_key = ?")
            .bind(agent)
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| Self::record_row(&r)).transpose()
    }

    async fn summaries(&self, filter: &WriteFilter) -> Result<Vec<WriteSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT summary FROM writes WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR agent = ?2) ORDER BY created_at DESC LIMIT ?3",
        )
        .bind(filter.status.map(|s| s.as_str()))
        .bind(&filter.agent)
        .bind(filter.limit.unwrap_or(-1))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| json(&r.try_get::<String, _>(0)?))
            .collect()
    }

    async fn writes(&self, filter: &WriteFilter) -> Result<Vec<WriteRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT record FROM writes WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR agent = ?2) ORDER BY created_at DESC LIMIT ?3",
        )
        .bind(filter.status.map(|s| s.as_str()))
        .bind(&filter.agent)
        .bind(filter.limit.unwrap_or(-1))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(Self::record_row).collect()
    }

    async fn update_write_under(
        &self,
        record: &WriteRecord,
        expected: i64,
        fence: Option<i64>,
        audit: AuditDraft,
    ) -> Result<Cas, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue(
            Op::Update(Box::new(record.clone()), expected, fence, audit, tx),
            rx,
        )
        .await
    }

    async fn counts(&self) -> Result<Vec<(WriteStatus, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM writes GROUP BY status")
            .fetch_all(&self.reader)
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let s: String = r.try_get(0)?;
            if let Some(status) = WriteStatus::parse(&s) {
                out.push((status, r.try_get::<i64, _>(1)?));
            }
        }
        Ok(out)
    }

    async fn claim(
        &self,
        id: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claimed, StoreError> {
        // One writer: the freeze read here holds until the commit.
        let mut tx = self.begin_write().await?;
        let done = async {
            let frozen_now = frozen(Self::state_in(tx.conn(), "freeze").await?.as_deref());
            let taken = sqlx::query(
                "UPDATE writes SET claim_owner = ?1, claim_until = ?2, fence = fence + 1 WHERE id = ?3 AND status IN ('approved', 'executing', 'rolling_back') AND (claim_until IS NULL OR claim_until < ?4) AND NOT (status = 'approved' AND ?5) RETURNING fence",
            )
            .bind(owner)
            .bind(ts(until))
            .bind(id)
            .bind(ts(now))
            .bind(frozen_now)
            .fetch_optional(tx.conn())
            .await?;
            if let Some(row) = taken {
                return Ok(Claimed::Taken(row.try_get(0)?));
            }
            if !frozen_now {
                return Ok(Claimed::Refused);
            }
            let stopped = sqlx::query(
                "SELECT 1 FROM writes WHERE id = ?1 AND status = 'approved' AND (claim_until IS NULL OR claim_until < ?2)",
            )
            .bind(id)
            .bind(ts(now))
            .fetch_optional(tx.conn())
            .await?;
            Ok(if stopped.is_some() {
                Claimed::Frozen
            } else {
                Claimed::Refused
            })
        }
        .await;
        tx.finish(&self.identity, done).await
    }

    async fn renew(
        &self,
        id: &str,
        owner: &str,
        token: i64,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE writes SET claim_until = ?1 WHERE id = ?2 AND claim_owner = ?3 AND fence = ?4 AND status IN ('approved', 'executing', 'rolling_back')",
        )
        .bind(ts(until))
        .bind(id)
        .bind(owner)
        .bind(token)
        .execute(tx.conn())
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(StoreError::from);
        tx.finish(&self.identity, done).await
    }

    async fn release(
        &self,
        id: &str,
        owner: &str,
        token: i64,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE writes SET claim_owner = NULL, claim_until = ?1 WHERE id = ?2 AND claim_owner = ?3 AND fence = ?4",
        )
        .bind(retry_at.map(ts))
        .bind(id)
        .bind(owner)
        .bind(token)
        .execute(tx.conn())
        .await
        .map(|_| ())
        .map_err(StoreError::from);
        tx.finish(&self.identity, done).await
    }

    async fn claimable(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>, StoreError> {
        // While frozen, approved writes cannot be claimed: left out, so
        // they never fill the batch ahead of writes that can be settled.
        let frozen_now = frozen(self.freeze_raw().await?.as_deref());
        let rows = sqlx::query(
            "SELECT id FROM writes WHERE status IN ('approved', 'executing', 'rolling_back') AND (claim_until IS NULL OR claim_until < ?1) AND NOT (status = 'approved' AND ?3) ORDER BY updated_at LIMIT ?2",
        )
        .bind(ts(now))
        .bind(limit)
        .bind(frozen_now)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, audit: AuditDraft) -> Result<AuditEntry, StoreError> {
        let mut tx = self.begin_write().await?;
        let entry = Self::append_in(tx.conn(), audit).await;
        crash::pause_point(crash_points::STORE_AUDIT_BEFORE_COMMIT);
        tx.finish(&self.identity, entry).await
    }

    async fn audit(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT seq, at, actor, action, write_id, body, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        Self::audit_rows(&rows)
    }

    async fn audit_newest(
        &self,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT seq, at, actor, action, write_id, body, prev_hash, hash FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT ?")
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        Self::audit_rows(&rows)
    }

    async fn audit_entry_for(
        &self,
        write_id: &str,
        action: &str,
    ) -> Result<Option<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT seq, at, actor, action, write_id, body, prev_hash, hash FROM audit WHERE write_id = ? AND action = ? ORDER BY seq LIMIT 1")
            .bind(write_id)
            .bind(action)
            .fetch_all(&self.reader)
            .await?;
        Ok(Self::audit_rows(&rows)?.into_iter().next())
    }
}

#[async_trait]
impl GateStateStore for SqliteStore {
    async fn freeze(&self) -> Result<FreezeState, StoreError> {
        decode_freeze(self.freeze_raw().await?.as_deref())
    }

    async fn set_freeze(&self, state: &FreezeState, audit: AuditDraft) -> Result<(), StoreError> {
        let value = to_json(state)?;
        let mut tx = self.begin_write().await?;
        let done = Self::set_state_in(tx.conn(), "freeze", &value, audit).await;
        tx.finish(&self.identity, done).await
    }

    async fn mode(&self) -> Result<ModeState, StoreError> {
        let row = sqlx::query("SELECT value FROM state WHERE key = 'mode'")
            .fetch_optional(&self.reader)
            .await?;
        let raw: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
        decode_mode(raw.as_deref())
    }

    async fn set_mode(&self, state: &ModeState, audit: AuditDraft) -> Result<(), StoreError> {
        let value = to_json(state)?;
        let mut tx = self.begin_write().await?;
        let done = Self::set_state_in(tx.conn(), "mode", &value, audit).await;
        tx.finish(&self.identity, done).await
    }

    async fn in_place(&self) -> Result<(), StoreError> {
        self.identity.check()
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl SqliteStore {
    /// Hands an insert to the group commit: the quota check and the insert
    /// run in one transaction, behind the one writer, so two submissions
    /// racing each other cannot both pass the check.
    async fn insert_queued(
        &self,
        record: &WriteRecord,
        audit: AuditDraft,
        quota: Option<u64>,
    ) -> Result<Inserted, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue(Op::Insert(Box::new(record.clone()), audit, quota, tx), rx)
            .await
    }

    async fn create_token_in(
        tx: &mut SqliteConnection,
        row: &TokenRow,
        audit: AuditDraft,
    ) -> Result<(), StoreError> {
        let exists = sqlx::query("SELECT 1 FROM tokens WHERE name = ?")
            .bind(&row.name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::DuplicateToken(row.name.clone()));
        }
        sqlx::query(
            "INSERT INTO tokens (name, role, hash, created_at, expires_at, scope, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.name)
        .bind(row.role.as_str())
        .bind(&row.hash)
        .bind(ts(Utc::now()))
        .bind(row.expires_at.map(ts))
        .bind(row.scope.as_ref().map(to_json).transpose()?)
        .bind(row.revoked_at.map(ts))
        .execute(&mut *tx)
        .await?;
        Self::append_in(tx, audit).await?;
        Ok(())
    }

    /// A gate-wide setting (`freeze`, `mode`) and its audit entry.
    async fn set_state_in(
        tx: &mut SqliteConnection,
        key: &str,
        value: &str,
        audit: AuditDraft,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        Self::append_in(tx, audit).await?;
        Ok(())
    }

    async fn version_in(tx: &mut sqlx::SqliteConnection) -> Result<i64, StoreError> {
        let v: String = sqlx::query("SELECT value FROM state WHERE key = 'catalog_version'")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        v.parse()
            .map_err(|e| StoreError::Corrupt(format!("catalog version `{v}`: {e}")))
    }

    fn audit_rows(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<AuditEntry>, StoreError> {
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get("seq")?,
                    at: parse_ts(&r.try_get::<String, _>("at")?)?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    write_id: r.try_get("write_id")?,
                    body: json(&r.try_get::<String, _>("body")?)?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }
}
