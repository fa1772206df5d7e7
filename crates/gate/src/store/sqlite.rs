//! The embedded store: one SQLite file in the data directory.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use recourse_client::{
    AuditEntry, FreezeState, ModeState, Role, WriteRecord, WriteStatus, WriteSummary,
};
use recourse_core::{Catalog, Edge, Resource};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::{
    decode_freeze, decode_mode, AuditStore, CatalogStore, CatalogUpsert, GateStateStore, Inserted,
    StoreError, TokenRow, TokenStore, WriteFilter, WriteStore,
};
use crate::audit::{self, AuditDraft};

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
    commits: mpsc::Sender<Op>,
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
    Update(
        Box<WriteRecord>,
        i64,
        AuditDraft,
        oneshot::Sender<Result<bool, StoreError>>,
    ),
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Insert(r, ..) => write!(f, "Insert({})", r.id),
            Op::Update(r, v, ..) => write!(f, "Update({}, {v})", r.id),
        }
    }
}

enum Reply {
    Inserted(Inserted),
    Updated(bool),
}

/// How many operations one commit may carry.
const GROUP_MAX: usize = 128;

/// Takes every operation that is waiting, runs each inside its own
/// savepoint of one transaction (so one failure does not undo the others),
/// commits once, then answers each. No caller hears "done" before the
/// commit that holds its record (synchronous=FULL) has returned: batching
/// gives up nothing of durability, and costs one fsync per batch instead of
/// one per record.
async fn committer(pool: SqlitePool, mut rx: mpsc::Receiver<Op>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut results = Vec::with_capacity(batch.len());
        let outcome: Result<(), StoreError> = async {
            let mut tx = pool.begin().await?;
            for op in &batch {
                sqlx::query("SAVEPOINT op").execute(&mut *tx).await?;
                let result = match op {
                    Op::Insert(record, draft, quota, _) => {
                        SqliteStore::insert_in(&mut tx, record, draft.clone(), *quota)
                            .await
                            .map(Reply::Inserted)
                    }
                    Op::Update(record, expected, draft, _) => {
                        SqliteStore::update_in(&mut tx, record, *expected, draft.clone())
                            .await
                            .map(Reply::Updated)
                    }
                };
                let keep = matches!(
                    result,
                    Ok(Reply::Inserted(Inserted::New)) | Ok(Reply::Updated(true))
                );
                if !keep {
                    sqlx::query("ROLLBACK TO op").execute(&mut *tx).await?;
                }
                sqlx::query("RELEASE op").execute(&mut *tx).await?;
                results.push(result);
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        let failed = outcome.err().map(|e| e.to_string());
        for (op, result) in batch.into_iter().zip(
            results
                .into_iter()
                .map(Some)
                .chain(std::iter::repeat_with(|| None)),
        ) {
            let result = match (&failed, result) {
                (Some(e), _) => Err(StoreError::Commit(e.clone())),
                (None, Some(r)) => r,
                (None, None) => Err(StoreError::Commit("not run".into())),
            };
            match op {
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
}

impl SqliteStore {
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("recourse.db");
        let opts = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(true))
            .await?;
        let (commits, rx) = mpsc::channel(4096);
        tokio::spawn(committer(writer.clone(), rx));
        Ok(Self {
            writer,
            reader,
            commits,
        })
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

    async fn update_in(
        tx: &mut sqlx::SqliteConnection,
        record: &WriteRecord,
        expected: i64,
        audit: AuditDraft,
    ) -> Result<bool, StoreError> {
        let body = to_json(record)?;
        let bytes = i64::try_from(body.len()).unwrap_or(i64::MAX);
        let done = sqlx::query("UPDATE writes SET status = ?, version = version + 1, updated_at = ?, record = ?, summary = ?, bytes = ? WHERE id = ? AND version = ?")
            .bind(record.status.as_str())
            .bind(ts(record.updated_at))
            .bind(body)
            .bind(to_json(&record.summary())?)
            .bind(bytes)
            .bind(&record.id)
            .bind(expected)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if done != 1 {
            return Ok(false);
        }
        Self::append_in(tx, audit).await?;
        Ok(true)
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
        let mut tx = self.writer.begin().await?;
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
        Self::append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
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
        let mut tx = self.writer.begin().await?;
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL")
                .bind(ts(at))
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
        let mut tx = self.writer.begin().await?;
        let before = Self::version_in(&mut tx).await?;
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

    async fn update_write(
        &self,
        record: &WriteRecord,
        expected: i64,
        audit: AuditDraft,
    ) -> Result<bool, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.commits
            .send(Op::Update(Box::new(record.clone()), expected, audit, tx))
            .await
            .map_err(|_| StoreError::Commit("the committer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Commit("the committer stopped".into()))?
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
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE writes SET claim_owner = ?1, claim_until = ?2 WHERE id = ?3 AND status IN ('approved', 'executing', 'rolling_back') AND (claim_owner = ?1 OR claim_until IS NULL OR claim_until < ?4)",
        )
        .bind(owner)
        .bind(ts(until))
        .bind(id)
        .bind(ts(now))
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    async fn release(
        &self,
        id: &str,
        owner: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE writes SET claim_owner = NULL, claim_until = ?1 WHERE id = ?2 AND claim_owner = ?3",
        )
        .bind(retry_at.map(ts))
        .bind(id)
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn claimable(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM writes WHERE status IN ('approved', 'executing', 'rolling_back') AND (claim_until IS NULL OR claim_until < ?1) ORDER BY updated_at LIMIT ?2",
        )
        .bind(ts(now))
        .bind(limit)
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
        let mut tx = self.writer.begin().await?;
        let entry = Self::append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(entry)
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
        let row = sqlx::query("SELECT value FROM state WHERE key = 'freeze'")
            .fetch_optional(&self.reader)
            .await?;
        let raw: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
        decode_freeze(raw.as_deref())
    }

    async fn set_freeze(&self, state: &FreezeState, audit: AuditDraft) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO state (key, value) VALUES ('freeze', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(to_json(state)?)
            .execute(&mut *tx)
            .await?;
        Self::append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mode(&self) -> Result<ModeState, StoreError> {
        let row = sqlx::query("SELECT value FROM state WHERE key = 'mode'")
            .fetch_optional(&self.reader)
            .await?;
        let raw: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
        decode_mode(raw.as_deref())
    }

    async fn set_mode(&self, state: &ModeState, audit: AuditDraft) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO state (key, value) VALUES ('mode', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(to_json(state)?)
            .execute(&mut *tx)
            .await?;
        Self::append_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
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
        self.commits
            .send(Op::Insert(Box::new(record.clone()), audit, quota, tx))
            .await
            .map_err(|_| StoreError::Commit("the committer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Commit("the committer stopped".into()))?
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
