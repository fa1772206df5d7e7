//! The shared store: one PostgreSQL database behind several gates.
//!
//! What makes several gates safe on it, each in one place here:
//! - Every change of state and its audit entry are one transaction, and
//!   every such transaction first takes [`AUDIT_LOCK`] (a transaction-scoped
//!   advisory lock) before it touches a row: the audit chain's head is read
//!   and extended by one gate at a time, so the chain never forks, and no
//!   transaction waits for the lock while holding a row lock (no deadlock
//!   with another gate's batch).
//! - A claim on an in-flight write is one conditional `UPDATE`, under the
//!   audit lock: of gates racing for the same write exactly one succeeds,
//!   and it takes the write's next fencing token. Every record made under
//!   the claim checks that token in its compare-and-set, so a gate whose
//!   lease lapsed (and whose write was claimed again) records nothing.
//!   Lease times are the caller's clock, both when a lease is set and when
//!   it is compared (the trait hands in `until` and `now`): gates' clocks
//!   must agree to well within a lease (30 s by default, renewed every
//!   10 s), as NTP keeps them; the fencing token keeps a gate whose clock
//!   ran ahead from recording over another's claim all the same.
//! - An approved write is not claimed, and does not move into `executing`,
//!   while the freeze is on, read in the same transaction under the audit
//!   lock every freeze takes: once a freeze is acknowledged, no gate begins
//!   an execution.
//! - The sweep's scan for claimable writes skips rows another gate is
//!   changing at that moment (`FOR UPDATE SKIP LOCKED`) instead of queueing
//!   behind them.
//! - The freeze switch is a row of `state`, read on every decision and
//!   decoded fail-closed, so a freeze set through one gate holds on all.
//!
//! The pool connects lazily and the migrations run on first contact: a
//! gate started while the database is down serves, answers 503 until the
//! database is back, and recovers by itself.

use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use recourse_client::{
    AuditEntry, FreezeState, ModeState, Role, WriteRecord, WriteStatus, WriteSummary,
};
use recourse_core::{Catalog, Edge, Resource};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection as _, Row};
use tokio::sync::{mpsc, oneshot, OnceCell};

use super::{
    decode_freeze, decode_mode, frozen, why_not_stored, AuditStore, Cas, CatalogStore,
    CatalogUpsert, Claimed, GateStateStore, Inserted, StoreError, StoreFault, TokenRow, TokenStore,
    WriteFilter, WriteStore, DEFAULT_STORE_TIMEOUT,
};
use crate::audit::{self, AuditDraft};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock every appending transaction holds until it ends:
/// "recourse" in ASCII. (sqlx's migrator takes its own advisory lock, keyed
/// on a hash of the database name, only while migrating.)
pub const AUDIT_LOCK: i64 = 0x7265_636f_7572_7365;

/// Connections per gate: the group commit needs one, reads and claims the
/// rest.
const MAX_CONNECTIONS: u32 = 8;

/// The `NOTIFY` channel an append signals on (see [`crate::feed`]).
const AUDIT_CHANNEL: &str = "recourse_audit";

/// How many operations one commit may carry.
const GROUP_MAX: usize = 128;

/// The statuses of a write in flight, which alone can be claimed.
const IN_FLIGHT: &str = "('approved', 'executing', 'rolling_back')";

fn json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A limit as the API gives it (negative: none) as PostgreSQL takes it
/// (`LIMIT NULL`: none; a negative limit is an error there).
fn pg_limit(n: Option<i64>) -> Option<i64> {
    n.filter(|n| *n >= 0)
}

/// The shared store. Cloning shares the pool and the committer.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Set once the migrations have run on this database.
    migrated: std::sync::Arc<OnceCell<()>>,
    /// Group commit for the hot path, as in the SQLite store.
    commits: mpsc::Sender<Queued>,
    /// The store timeout (see [`super::DEFAULT_STORE_TIMEOUT`]).
    timeout: Duration,
}

impl std::fmt::Debug for PostgresStore {
    // Not derived: the connect options hold the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
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

enum Reply {
    Inserted(Inserted),
    Updated(Cas),
}

impl Op {
    /// Whether the caller stopped waiting: its operation is not run.
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

/// Takes every operation that is waiting, runs each in its own savepoint of
/// one transaction that holds the audit lock, commits once, then answers
/// each: one commit (and one turn of the lock) per batch, not per write. No
/// caller hears "done" before the commit that holds its record returned.
///
/// Bounded as the SQLite store's is: an operation that waited longer than
/// the store timeout (behind a batch stuck on a lock until `lock_timeout`)
/// is answered with [`StoreFault::Timeout`] and never run. Whether a
/// commit whose answer was lost took effect is for the caller's retry to
/// find: an idempotency key returns the write stored, a compare-and-set on
/// a moved version fails.
async fn committer(pool: PgPool, timeout: Duration, mut rx: mpsc::Receiver<Queued>) {
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
            let mut tx = begin_appending(&pool).await?;
            for op in &batch {
                sqlx::query("SAVEPOINT op").execute(&mut *tx).await?;
                let result = match op {
                    Op::Insert(record, draft, quota, _) => {
                        PostgresStore::insert_in(&mut tx, record, draft.clone(), *quota)
                            .await
                            .map(Reply::Inserted)
                    }
                    Op::Update(record, expected, fence, draft, _) => {
                        PostgresStore::update_in(&mut tx, record, *expected, *fence, draft.clone())
                            .await
                            .map(Reply::Updated)
                    }
                };
                let keep = matches!(
                    result,
                    Ok(Reply::Inserted(Inserted::New)) | Ok(Reply::Updated(Cas::Done))
                );
                if !keep {
                    sqlx::query("ROLLBACK TO SAVEPOINT op")
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("RELEASE SAVEPOINT op")
                    .execute(&mut *tx)
                    .await?;
                results.push(result);
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        let failed = outcome.err();
        let mut results = results.into_iter();
        for op in batch {
            let result = match (&failed, results.next()) {
                (Some(e), _) => Err(e.for_batch()),
                (None, Some(r)) => r,
                (None, None) => Err(StoreError::Commit("not run".into())),
            };
            op.answer(result);
        }
    }
}

/// Begins a transaction that will append to the audit trail, and takes the
/// audit lock first, before any row lock (see the module doc).
async fn begin_appending(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

impl PostgresStore {
    /// The store a `postgres://` (or `postgresql://`) URL names. Connects
    /// nothing yet: a malformed URL fails here, an unreachable database on
    /// first use (as a transient error), see [`PostgresStore::ready`].
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::new_with(url, DEFAULT_STORE_TIMEOUT)
    }

    /// [`PostgresStore::new`] with a store timeout: the longest wait for a
    /// pooled connection and each session's `lock_timeout` (its
    /// `statement_timeout` is twice it), so a table locked in another
    /// session (or a statement that does not return) is a 503 within it,
    /// not a request that waits forever. (The migrations run without them.)
    pub fn new_with(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        // A lock wait gives up first (the cause is then named: a lock held
        // elsewhere); any statement at twice that (a server too slow).
        let lock_ms = timeout.as_millis().max(1).to_string();
        let statement_ms = (timeout * 2).as_millis().max(1).to_string();
        let options = PgConnectOptions::from_str(url)?
            .application_name("recourse-gate")
            .options([
                ("lock_timeout", lock_ms.as_str()),
                ("statement_timeout", statement_ms.as_str()),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        let (commits, rx) = mpsc::channel(4096);
        tokio::spawn(committer(pool.clone(), timeout, rx));
        Ok(Self {
            pool,
            migrated: Default::default(),
            commits,
            timeout,
        })
    }

    /// Connects and brings the schema up to date, once; every operation
    /// calls it first, so a gate that started while the database was down
    /// migrates when it comes back. Several gates starting at once are
    /// serialised by the migrator's own advisory lock.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        self.migrated
            .get_or_try_init(|| async move {
                // Acquired here, so that "unreachable" is a pool error (a
                // transient one), not a migration error.
                // A connection of its own, closed after: a migration may
                // rewrite a large table and is not held to the store
                // timeout, and no pooled connection keeps its settings.
                let mut conn = pool.acquire().await?.detach();
                sqlx::query("SET lock_timeout = 0")
                    .execute(&mut conn)
                    .await?;
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut conn)
                    .await?;
                let migrated = MIGRATOR.run_direct(&mut conn).await;
                let _ = conn.close().await;
                migrated?;
                Ok::<(), StoreError>(())
            })
            .await
            .map(|_| ())
    }

    /// Closes the pool (the tests drop their database after).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Appends an entry after the chain's head. The transaction holds the
    /// audit lock ([`begin_appending`]), so the head read here is the head.
    async fn append_in(tx: &mut PgConnection, draft: AuditDraft) -> Result<AuditEntry, StoreError> {
        let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let (seq, prev) = match last {
            Some(row) => (row.try_get::<i64, _>(0)? + 1, row.try_get::<String, _>(1)?),
            None => (1, audit::GENESIS.to_string()),
        };
        let entry = audit::seal(draft, seq, Utc::now(), &prev);
        sqlx::query("INSERT INTO audit (seq, at, actor, action, write_id, body, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(entry.seq)
            .bind(entry.at)
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.write_id)
            .bind(to_json(&entry.body)?)
            .bind(&entry.prev_hash)
            .bind(&entry.hash)
            .execute(&mut *tx)
            .await?;
        // Delivered at commit, once per transaction (equal payloads fold):
        // every gate's event feed reads the trail now, not at its next poll.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(AUDIT_CHANNEL)
            .execute(&mut *tx)
            .await?;
        Ok(entry)
    }

    async fn insert_in(
        tx: &mut PgConnection,
        record: &WriteRecord,
        audit: AuditDraft,
        quota: Option<u64>,
    ) -> Result<Inserted, StoreError> {
        // Under the audit lock, a same-key insert of another gate has
        // committed or not begun: the check sees it.
        if let Some(key) = &record.proposal.idempotency_key {
            let existing =
                sqlx::query("SELECT record FROM writes WHERE agent = $1 AND idempotency_key = $2")
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
            // Under the audit lock too: another gate's insert for this
            // agent has committed or not begun.
            let pending = Self::pending_in(&mut *tx, &record.agent).await?;
            if pending.saturating_add(bytes) > max {
                return Err(StoreError::OverQuota {
                    pending_bytes: pending,
                });
            }
        }
        sqlx::query("INSERT INTO writes (id, agent, idempotency_key, status, version, created_at, updated_at, record, summary, bytes) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9)")
            .bind(&record.id)
            .bind(&record.agent)
            .bind(&record.proposal.idempotency_key)
            .bind(record.status.as_str())
            .bind(record.created_at)
            .bind(record.updated_at)
            .bind(body)
            .bind(to_json(&record.summary())?)
            .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        Self::append_in(tx, audit).await?;
        Ok(Inserted::New)
    }

    /// A gate-wide setting's raw value, read inside the caller's
    /// transaction (which holds the audit lock, so it stays as read).
    async fn state_in(tx: &mut PgConnection, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM state WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn update_in(
        tx: &mut PgConnection,
        record: &WriteRecord,
        expected: i64,
        fence: Option<i64>,
        audit: AuditDraft,
    ) -> Result<Cas, StoreError> {
        let body = to_json(record)?;
        let bytes = i64::try_from(body.len()).unwrap_or(i64::MAX);
        // Only a move into `executing` can begin an execution: the freeze is
        // read (under the audit lock every freeze takes, so it holds until
        // this commits) only then.
        let frozen_now = record.status == WriteStatus::Executing
            && frozen(Self::state_in(&mut *tx, "freeze").await?.as_deref());
        // A claim lives only while the write is in flight (see the memory
        // store's `update_write`); the fencing token stays.
        let done = sqlx::query("UPDATE writes SET status = $1, version = version + 1, updated_at = $2, record = $3, summary = $4, bytes = $7, claim_owner = CASE WHEN $8 THEN claim_owner END, claim_until = CASE WHEN $8 THEN claim_until END WHERE id = $5 AND version = $6 AND ($9::BIGINT IS NULL OR fence = $9) AND NOT (status = 'approved' AND $10)")
            .bind(record.status.as_str())
            .bind(record.updated_at)
            .bind(body)
            .bind(to_json(&record.summary())?)
            .bind(&record.id)
            .bind(expected)
            .bind(bytes)
            .bind(record.status.in_flight())
            .bind(fence)
            .bind(frozen_now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if done != 1 {
            let row = sqlx::query("SELECT version, fence, status FROM writes WHERE id = $1")
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

    /// The agent's pending bytes, through the partial index (its condition,
    /// word for word).
    async fn pending_in(conn: &mut PgConnection, agent: &str) -> Result<u64, StoreError> {
        let sum: i64 = sqlx::query(
            "SELECT COALESCE(SUM(bytes), 0)::BIGINT FROM writes WHERE agent = $1 AND status IN ('held', 'approved', 'executing')",
        )
        .bind(agent)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
        Ok(u64::try_from(sum).unwrap_or(0))
    }

    fn token_row(row: &PgRow) -> Result<TokenRow, StoreError> {
        let role: String = row.try_get("role")?;
        let scope: Option<String> = row.try_get("scope")?;
        Ok(TokenRow {
            name: row.try_get("name")?,
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("role `{role}`")))?,
            hash: row.try_get("hash")?,
            expires_at: row.try_get("expires_at")?,
            // A scope that does not decode fails closed: an error, never
            // "no scope" (which would mean everything).
            scope: scope.as_deref().map(json).transpose()?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }

    fn record_row(row: &PgRow) -> Result<WriteRecord, StoreError> {
        json(&row.try_get::<String, _>("record")?)
    }

    async fn version_in(tx: &mut PgConnection) -> Result<i64, StoreError> {
        let v: String = sqlx::query("SELECT value FROM state WHERE key = 'catalog_version'")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        v.parse()
            .map_err(|e| StoreError::Corrupt(format!("catalog version `{v}`: {e}")))
    }

    fn audit_rows(rows: &[PgRow]) -> Result<Vec<AuditEntry>, StoreError> {
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
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

    /// Hands an operation to the committer and waits for its commit.
    async fn commit_op<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Op,
    ) -> Result<T, StoreError> {
        self.ready().await?;
        let (tx, rx) = oneshot::channel();
        self.commits
            .send(Queued {
                op: op(tx),
                at: Instant::now(),
            })
            .await
            .map_err(|_| StoreError::Commit("the committer stopped".into()))?;
        // A backstop: the committer answers within a few store timeouts
        // (`lock_timeout`, `statement_timeout`); a server that stops
        // answering at all (a network that drops packets) does not hold
        // the request longer than this.
        let limit = self.timeout * 4;
        match tokio::time::timeout(limit, rx).await {
            Ok(answer) => {
                answer.map_err(|_| StoreError::Commit("the committer stopped".into()))?
            }
            Err(_) => Err(StoreError::Unavailable(
                StoreFault::Timeout,
                format!(
                    "no answer from the group commit within {} ms (whether this change was recorded shows in the record)",
                    limit.as_millis()
                ),
            )),
        }
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn create_token(&self, row: &TokenRow, audit: AuditDraft) -> Result<(), StoreError> {
        self.ready().await?;
        let mut tx = begin_appending(&self.pool).await?;
        let exists = sqlx::query("SELECT 1 FROM tokens WHERE name = $1")
            .bind(&row.name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::DuplicateToken(row.name.clone()));
        }
        sqlx::query(
            "INSERT INTO tokens (name, role, hash, created_at, expires_at, scope, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.name)
        .bind(row.role.as_str())
        .bind(&row.hash)
        .bind(Utc::now())
        .bind(row.expires_at)
        .bind(row.scope.as_ref().map(to_json).transpose()?)
        .bind(row.revoked_at)
        .execute(&mut *tx)
        .await?;
        Self::append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        self.ready().await?;
        let row = sqlx::query(
            "SELECT name, role, hash, expires_at, scope, revoked_at FROM tokens WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::token_row).transpose()
    }

    async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.ready().await?;
        let rows = sqlx::query(
            "SELECT name, role, hash, expires_at, scope, revoked_at FROM tokens ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::token_row).collect()
    }

    async fn revoke_token(
        &self,
        name: &str,
        at: DateTime<Utc>,
        audit: AuditDraft,
    ) -> Result<bool, StoreError> {
        self.ready().await?;
        let mut tx = begin_appending(&self.pool).await?;
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if done != 1 {
            return Ok(false);
        }
        Self::append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl CatalogStore for PostgresStore {
    async fn catalog(&self) -> Result<(Catalog, i64), StoreError> {
        self.ready().await?;
        // One snapshot, so the version matches the content.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let version = Self::version_in(&mut tx).await?;
        let mut resources = Vec::new();
        for row in sqlx::query("SELECT body FROM resources ORDER BY ord")
            .fetch_all(&mut *tx)
            .await?
        {
            resources.push(json::<Resource>(&row.try_get::<String, _>(0)?)?);
        }
        let mut edges = Vec::new();
        for row in sqlx::query("SELECT body FROM edges ORDER BY ord")
            .fetch_all(&mut *tx)
            .await?
        {
            edges.push(json::<Edge>(&row.try_get::<String, _>(0)?)?);
        }
        tx.commit().await?;
        Ok((Catalog { resources, edges }, version))
    }

    async fn catalog_version(&self) -> Result<i64, StoreError> {
        self.ready().await?;
        let mut conn = self.pool.acquire().await?;
        Self::version_in(&mut conn).await
    }

    async fn upsert_catalog(
        &self,
        add: &Catalog,
        replace: bool,
        audit: Option<AuditDraft>,
    ) -> Result<CatalogUpsert, StoreError> {
        self.ready().await?;
        // The audit lock also serialises catalog changes between gates, so
        // `before` is the version this change applies on.
        let mut tx = begin_appending(&self.pool).await?;
        let before = Self::version_in(&mut tx).await?;
        let mut applied = Catalog::default();
        let res_sql = if replace {
            "INSERT INTO resources (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body"
        } else {
            "INSERT INTO resources (id, body) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING"
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
            "INSERT INTO edges (src, dst, body) VALUES ($1, $2, $3) ON CONFLICT (src, dst) DO UPDATE SET body = excluded.body"
        } else {
            "INSERT INTO edges (src, dst, body) VALUES ($1, $2, $3) ON CONFLICT (src, dst) DO NOTHING"
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
            sqlx::query(
                "UPDATE state SET value = (value::bigint + 1)::text WHERE key = 'catalog_version'",
            )
            .execute(&mut *tx)
            .await?;
            if let Some(a) = audit {
                Self::append_in(&mut tx, a).await?;
            }
            Self::version_in(&mut tx).await?
        } else {
            before
        };
        tx.commit().await?;
        Ok(CatalogUpsert {
            before,
            after,
            applied,
        })
    }

    async fn replace_catalog(
        &self,
        catalog: &Catalog,
        expected: i64,
        audit: AuditDraft,
    ) -> Result<Option<i64>, StoreError> {
        self.ready().await?;
        // The audit lock serialises catalog changes between gates, as for
        // an upsert.
        let mut tx = begin_appending(&self.pool).await?;
        if Self::version_in(&mut tx).await? != expected {
            return Ok(None);
        }
        sqlx::query("DELETE FROM edges").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM resources")
            .execute(&mut *tx)
            .await?;
        // `ord` keeps counting up: the catalog reads back in this order.
        for r in &catalog.resources {
            sqlx::query("INSERT INTO resources (id, body) VALUES ($1, $2)")
                .bind(&r.id)
                .bind(to_json(r)?)
                .execute(&mut *tx)
                .await?;
        }
        for e in &catalog.edges {
            sqlx::query("INSERT INTO edges (src, dst, body) VALUES ($1, $2, $3)")
                .bind(&e.from)
                .bind(&e.to)
                .bind(to_json(e)?)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE state SET value = (value::bigint + 1)::text WHERE key = 'catalog_version'",
        )
        .execute(&mut *tx)
        .await?;
        Self::append_in(&mut tx, audit).await?;
        let after = Self::version_in(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(after))
    }
}

#[async_trait]
impl WriteStore for PostgresStore {
    async fn insert_write(
        &self,
        record: &WriteRecord,
        audit: AuditDraft,
    ) -> Result<Inserted, StoreError> {
        let record = Box::new(record.clone());
        self.commit_op(|tx| Op::Insert(record, audit, None, tx))
            .await
    }

    async fn insert_write_within(
        &self,
        record: &WriteRecord,
        audit: AuditDraft,
        max_pending_bytes: u64,
    ) -> Result<Inserted, StoreError> {
        let record = Box::new(record.clone());
        self.commit_op(|tx| Op::Insert(record, audit, Some(max_pending_bytes), tx))
            .await
    }

    async fn pending_bytes(&self, agent: &str) -> Result<u64, StoreError> {
        self.ready().await?;
        let mut conn = self.pool.acquire().await?;
        Self::pending_in(&mut conn, agent).await
    }

    async fn write(&self, id: &str) -> Result<Option<(WriteRecord, i64)>, StoreError> {
        self.ready().await?;
        // Any committed version will do: the compare-and-set in
        // `update_write` refuses a stale one.
        let row = sqlx::query("SELECT record, version FROM writes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((Self::record_row(&r)?, r.try_get::<i64, _>("version")?)))
            .transpose()
    }

    async fn write_by_key(
        &self,
        agent: &str,
        key: &str,
    ) -> Result<Option<WriteRecord>, StoreError> {
        self.ready().await?;
        let row =
            sqlx::query("SELECT record FROM writes WHERE agent = $1 AND idempotency_key = $2")
                .bind(agent)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| Self::record_row(&r)).transpose()
    }

    async fn summaries(&self, filter: &WriteFilter) -> Result<Vec<WriteSummary>, StoreError> {
        self.ready().await?;
        let rows = sqlx::query(
            "SELECT summary FROM writes WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR agent = $2) ORDER BY created_at DESC LIMIT $3",
        )
        .bind(filter.status.map(|s| s.as_str()))
        .bind(&filter.agent)
        .bind(pg_limit(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| json(&r.try_get::<String, _>(0)?))
            .collect()
    }

    async fn writes(&self, filter: &WriteFilter) -> Result<Vec<WriteRecord>, StoreError> {
        self.ready().await?;
        let rows = sqlx::query(
            "SELECT record FROM writes WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR agent = $2) ORDER BY created_at DESC LIMIT $3",
        )
        .bind(filter.status.map(|s| s.as_str()))
        .bind(&filter.agent)
        .bind(pg_limit(filter.limit))
        .fetch_all(&self.pool)
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
        let record = Box::new(record.clone());
        self.commit_op(|tx| Op::Update(record, expected, fence, audit, tx))
            .await
    }

    async fn counts(&self) -> Result<Vec<(WriteStatus, i64)>, StoreError> {
        self.ready().await?;
        let rows = sqlx::query("SELECT status, COUNT(*) FROM writes GROUP BY status")
            .fetch_all(&self.pool)
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
        self.ready().await?;
        // Under the audit lock, which every freeze takes too: the freeze
        // read here cannot change before this claim commits. Of two gates
        // claiming at once, the second runs after the first committed and
        // finds the claim taken.
        let mut tx = begin_appending(&self.pool).await?;
        let frozen_now = frozen(Self::state_in(&mut tx, "freeze").await?.as_deref());
        let taken = sqlx::query(&format!(
            "UPDATE writes SET claim_owner = $1, claim_until = $2, fence = fence + 1 WHERE id = $3 AND status IN {IN_FLIGHT} AND (claim_until IS NULL OR claim_until < $4) AND NOT (status = 'approved' AND $5) RETURNING fence"
        ))
        .bind(owner)
        .bind(until)
        .bind(id)
        .bind(now)
        .bind(frozen_now)
        .fetch_optional(&mut *tx)
        .await?;
        let claimed = match taken {
            Some(row) => Claimed::Taken(row.try_get(0)?),
            None if frozen_now => {
                let stopped = sqlx::query(
                    "SELECT 1 FROM writes WHERE id = $1 AND status = 'approved' AND (claim_until IS NULL OR claim_until < $2)",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if stopped.is_some() {
                    Claimed::Frozen
                } else {
                    Claimed::Refused
                }
            }
            None => Claimed::Refused,
        };
        tx.commit().await?;
        Ok(claimed)
    }

    async fn renew(
        &self,
        id: &str,
        owner: &str,
        token: i64,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.ready().await?;
        let done = sqlx::query(&format!(
            "UPDATE writes SET claim_until = $1 WHERE id = $2 AND claim_owner = $3 AND fence = $4 AND status IN {IN_FLIGHT}"
        ))
        .bind(until)
        .bind(id)
        .bind(owner)
        .bind(token)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    async fn release(
        &self,
        id: &str,
        owner: &str,
        token: i64,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.ready().await?;
        sqlx::query(
            "UPDATE writes SET claim_owner = NULL, claim_until = $1 WHERE id = $2 AND claim_owner = $3 AND fence = $4",
        )
        .bind(retry_at)
        .bind(id)
        .bind(owner)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claimable(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>, StoreError> {
        self.ready().await?;
        // While frozen, approved writes cannot be claimed: left out, so
        // they never fill the batch ahead of writes that can be settled.
        let frozen_now = frozen(self.state_value("freeze").await?.as_deref());
        // A row another gate is changing right now (its claim, its move) is
        // skipped, not waited for: that gate is working on it.
        let rows = sqlx::query(&format!(
            "SELECT id FROM writes WHERE status IN {IN_FLIGHT} AND (claim_until IS NULL OR claim_until < $1) AND NOT (status = 'approved' AND $3) ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED"
        ))
        .bind(now)
        .bind(pg_limit(Some(limit)))
        .bind(frozen_now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }

    fn shared(&self) -> bool {
        true
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, audit: AuditDraft) -> Result<AuditEntry, StoreError> {
        self.ready().await?;
        let mut tx = begin_appending(&self.pool).await?;
        let entry = Self::append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn audit_appended(&self) -> Option<mpsc::Receiver<()>> {
        let (tx, rx) = mpsc::channel(1);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            // Reconnects on its own; while it cannot, the feed polls.
            loop {
                let listening = async {
                    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                    listener.listen(AUDIT_CHANNEL).await?;
                    loop {
                        listener.recv().await?;
                        if tx.try_send(()).is_err() && tx.is_closed() {
                            return Ok::<(), sqlx::Error>(());
                        }
                    }
                };
                match listening.await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::debug!(error = %e, "listening for audit appends; retrying");
                        if tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Some(rx)
    }

    async fn audit(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        self.ready().await?;
        let rows = sqlx::query("SELECT seq, at, actor, action, write_id, body, prev_hash, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after_seq)
            .bind(pg_limit(Some(limit)))
            .fetch_all(&self.pool)
            .await?;
        Self::audit_rows(&rows)
    }

    async fn audit_newest(
        &self,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.ready().await?;
        let rows = sqlx::query("SELECT seq, at, actor, action, write_id, body, prev_hash, hash FROM audit WHERE seq < $1 ORDER BY seq DESC LIMIT $2")
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(pg_limit(Some(limit)))
            .fetch_all(&self.pool)
            .await?;
        Self::audit_rows(&rows)
    }

    async fn audit_entry_for(
        &self,
        write_id: &str,
        action: &str,
    ) -> Result<Option<AuditEntry>, StoreError> {
        self.ready().await?;
        let rows = sqlx::query("SELECT seq, at, actor, action, write_id, body, prev_hash, hash FROM audit WHERE write_id = $1 AND action = $2 ORDER BY seq LIMIT 1")
            .bind(write_id)
            .bind(action)
            .fetch_all(&self.pool)
            .await?;
        Ok(Self::audit_rows(&rows)?.into_iter().next())
    }
}

impl PostgresStore {
    /// The raw value of one gate-wide setting (`freeze`, `mode`).
    async fn state_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.ready().await?;
        let row = sqlx::query("SELECT value FROM state WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Sets one gate-wide setting and appends its audit entry, together.
    async fn set_state(
        &self,
        key: &str,
        value: String,
        audit: AuditDraft,
    ) -> Result<(), StoreError> {
        self.ready().await?;
        let mut tx = begin_appending(&self.pool).await?;
        sqlx::query("INSERT INTO state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        Self::append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl GateStateStore for PostgresStore {
    async fn freeze(&self) -> Result<FreezeState, StoreError> {
        decode_freeze(self.state_value("freeze").await?.as_deref())
    }

    async fn set_freeze(&self, state: &FreezeState, audit: AuditDraft) -> Result<(), StoreError> {
        self.set_state("freeze", to_json(state)?, audit).await
    }

    async fn mode(&self) -> Result<ModeState, StoreError> {
        decode_mode(self.state_value("mode").await?.as_deref())
    }

    async fn set_mode(&self, state: &ModeState, audit: AuditDraft) -> Result<(), StoreError> {
        self.set_state("mode", to_json(state)?, audit).await
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}
