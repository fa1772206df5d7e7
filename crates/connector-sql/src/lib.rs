//! The `sql` connector (section 8): updates, deletes and inserts on SQLite
//! and PostgreSQL databases, each captured and run in one transaction.
//!
//! `execute` locks and reads the rows the write matches and the rows that
//! foreign keys with `ON DELETE/UPDATE CASCADE` (or `SET NULL/DEFAULT`)
//! reach from them, runs the write, reads the after-images, writes both to
//! the vault and fsyncs them, records an applied-marker row in the target
//! database, and only then commits. `restore` compares the rows with the
//! after-images (drift), puts the before-images back and verifies them, in
//! one transaction that also records a restored marker: called again after
//! a crash, it finds the marker and only verifies (see
//! [`RESTORE_CRASH_POINTS`]).

mod action;
mod cell;
mod db;
mod effect;
mod plan;
mod restore;
mod run;
mod schema;
mod vault;
mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use recourse_client::{RestoreItem, RestoreStatus, RollbackReport};
use recourse_connector::{crash_point, Connector, ConnectorError, Plan};
use recourse_core::{
    Catalog, Edge, Evidence, EvidenceKind, Observation, Proposal, ReasonCode, Resource, Step,
};
use serde_json::{json, Map, Value};

pub use action::{parse as parse_action, Row, Rows, SqlAction};
pub use cell::Cell;
pub use db::Engine;
use db::{lock_clause, order_by_pk, select_list, Pool, Stmt, Tx};
use restore::images_of;
use run::{marker_insert, Image};
pub use schema::MARKER_TABLE;
use schema::{column_sql, to_cell, Column, FkAction, Schema, Table};
use write::{cascades, Change, Op, Write};

/// Above this many matched rows, a write touches the table, not each row.
pub const ROW_LIMIT: usize = 100;

/// The vault record's format tag.
const FORMAT: &str = "recourse.sql.v1";

const BEFORE_COMMIT: &str = "sql.restore.before_commit";
const AFTER_COMMIT: &str = "sql.restore.after_commit";

/// The crash points of `restore`. A restore is one transaction: the rows
/// put back, verified, and the restored marker, committed together. A
/// crash before the commit leaves nothing applied (the next call starts
/// over); after it, the marker makes the next call verify only.
///
/// - `before_commit`: rows put back and verified, marker written, not
///   committed;
/// - `after_commit`: committed, the answer not yet returned.
pub const RESTORE_CRASH_POINTS: &[&str] = &[BEFORE_COMMIT, AFTER_COMMIT];

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("database name `{0}`: use letters, digits, `-`, `_` or `.`")]
    Name(String),
    #[error("database `{0}` is given twice")]
    Duplicate(String),
    #[error("database `{name}`: {message}")]
    Connect { name: String, message: String },
    #[error("vault `{path}`: {message}")]
    Vault { path: String, message: String },
}

struct Database {
    name: String,
    pool: Pool,
}

pub struct SqlConnector {
    databases: BTreeMap<String, Database>,
    /// Absolute, canonical: it appears in evidence locations (`fs:…`).
    vault: PathBuf,
    /// The database each planned write targets, for `observe`.
    planned: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for SqlConnector {
    // Database URLs may carry passwords: only names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlConnector")
            .field("databases", &self.databases.keys().collect::<Vec<_>>())
            .field("vault", &self.vault)
            .finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), SqlError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(SqlError::Name(name.to_string()))
    }
}

/// Connects to a database and makes sure the marker table exists.
async fn open(name: &str, url: &str) -> Result<Pool, SqlError> {
    let connect = |e: sqlx::Error| SqlError::Connect {
        name: name.to_string(),
        message: e.to_string(),
    };
    let pool = Pool::connect(url).await.map_err(connect)?;
    let create =
        format!("CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (write_id TEXT PRIMARY KEY, at TEXT)");
    // Two gates starting at once may race on PostgreSQL's catalog; the
    // second attempt sees the table.
    if pool.exec(&create, &[]).await.is_err() {
        pool.exec(&create, &[]).await.map_err(connect)?;
    }
    Ok(pool)
}

/// The catalog a database describes: the database, its tables, containment
/// edges and one edge per foreign key (`recourse catalog import-sql NAME`).
pub async fn import_catalog(name: &str, url: &str) -> Result<Catalog, SqlError> {
    check_name(name)?;
    let pool = Pool::connect(url).await.map_err(|e| SqlError::Connect {
        name: name.to_string(),
        message: e.to_string(),
    })?;
    let schema = Schema::load(&pool).await.map_err(|e| SqlError::Connect {
        name: name.to_string(),
        message: e.to_string(),
    })?;
    Ok(catalog_of(name, &schema))
}

fn catalog_of(name: &str, schema: &Schema) -> Catalog {
    let mut catalog = Catalog {
        resources: vec![database_resource(name)],
        edges: Vec::new(),
    };
    for table in schema.tables.keys() {
        catalog.resources.push(table_resource(name, table));
        catalog
            .edges
            .push(contains(&database_id(name), &table_id(name, table)));
    }
    let mut seen = HashSet::new();
    for fk in &schema.foreign_keys {
        let edge = fk_edge(name, fk);
        if seen.insert((edge.from.clone(), edge.to.clone())) {
            catalog.edges.push(edge);
        }
    }
    catalog
}

fn database_id(db: &str) -> String {
    format!("sql:{db}")
}

fn table_id(db: &str, table: &str) -> String {
    format!("sql:{db}/{table}")
}

fn row_id(db: &str, table: &str, pk: &[Cell]) -> String {
    format!("sql:{db}/{table}/{}", cell::pk_text(pk))
}

fn database_resource(db: &str) -> Resource {
    let mut r = Resource::new(database_id(db));
    r.kind = Some("sql.database".into());
    r
}

fn table_resource(db: &str, table: &str) -> Resource {
    let mut r = Resource::new(table_id(db, table));
    r.kind = Some("sql.table".into());
    r
}

fn contains(from: &str, to: &str) -> Edge {
    Edge {
        from: from.to_string(),
        to: to.to_string(),
        why: Some("contains".into()),
    }
}

fn fk_edge(db: &str, fk: &schema::ForeignKey) -> Edge {
    let mut why = format!(
        "`{}`({}) references `{}`({})",
        fk.child,
        fk.columns.join(", "),
        fk.parent,
        fk.ref_columns.join(", ")
    );
    if fk.on_delete.changes_rows() {
        why.push_str(&format!(
            ": ON DELETE {} changes its rows",
            fk.on_delete.as_sql()
        ));
    }
    if fk.on_update.changes_rows() {
        why.push_str(&format!(
            ": ON UPDATE {} changes its rows",
            fk.on_update.as_sql()
        ));
    }
    Edge {
        from: table_id(db, &fk.parent),
        to: table_id(db, &fk.child),
        why: Some(why),
    }
}

/// Whether a database failure left nothing changed and may pass if tried
/// again later: the database could not be reached, the pool had no
/// connection to give, or the database was busy or locked (SQLite's
/// `SQLITE_BUSY`/`SQLITE_LOCKED`; PostgreSQL's connection errors, shutdowns,
/// too many connections, serialization failures, deadlocks, lock timeouts:
/// each aborts the transaction).
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => {
            if let Some(lite) = d.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                use sqlx::error::DatabaseError as _;
                // The extended code; its low byte is the primary code.
                lite.code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .is_some_and(|c| matches!(c & 0xff, 5 | 6))
            } else if let Some(pg) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                let code = pg.code();
                code.starts_with("08")
                    || matches!(
                        code,
                        "40001" | "40P01" | "55P03" | "53300" | "57P01" | "57P02" | "57P03"
                    )
            } else {
                false
            }
        }
        _ => false,
    }
}

/// The one mapping of a database failure that is not the action's fault:
/// transient ones are `Unavailable` (the gate retries later), the rest
/// `Io`.
fn sql_error(what: &str, e: sqlx::Error) -> ConnectorError {
    if transient(&e) {
        ConnectorError::Unavailable(format!("{what}: {e}"))
    } else {
        ConnectorError::Io(format!("{what}: {e}"))
    }
}

fn io(what: &str) -> impl Fn(sqlx::Error) -> ConnectorError + '_ {
    move |e| sql_error(what, e)
}

/// A commit that failed: an answer from the database means it did not
/// commit; a connection lost on the way means it may have (the outcome is
/// unknown, and `applied` or the restored marker tells).
fn commit_error(what: &str, e: sqlx::Error) -> ConnectorError {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_) => {
            ConnectorError::Uncertain(format!("{what}: {e}"))
        }
        e => sql_error(what, e),
    }
}

/// A database error caused by the action's values (a constraint, a value
/// PostgreSQL cannot parse) is the caller's mistake; anything else is I/O.
fn db_error(what: &str, e: sqlx::Error) -> ConnectorError {
    if let Some(d) = e.as_database_error() {
        use sqlx::error::ErrorKind;
        let constraint = matches!(
            d.kind(),
            ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation
        );
        let code = d.code().map(|c| c.to_string()).unwrap_or_default();
        // 22xxx: PostgreSQL data exceptions; 20: SQLite's datatype mismatch.
        if constraint || code.starts_with("22") || code == "20" {
            return ConnectorError::invalid("action", format!("{what}: {}", d.message()));
        }
    }
    sql_error(what, e)
}

fn pk_conds<'t>(table: &'t Table, pk: &[Cell]) -> Vec<(&'t Column, Cell)> {
    table
        .pk
        .iter()
        .zip(pk)
        .filter_map(|(&i, v)| table.columns.get(i).map(|c| (c, v.clone())))
        .collect()
}

fn describe_row(table: &Table, row: Option<&[Cell]>) -> String {
    match row {
        None => "absent".into(),
        Some(cells) => {
            let parts: Vec<String> = table
                .columns
                .iter()
                .zip(cells)
                .map(|(c, v)| {
                    let mut shown = v.display();
                    if shown.len() > 64 {
                        let cut = (0..=64)
                            .rev()
                            .find(|&i| shown.is_char_boundary(i))
                            .unwrap_or(0);
                        shown.truncate(cut);
                        shown.push('…');
                    }
                    format!("{}={shown}", c.name)
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

impl SqlConnector {
    /// `databases`: name and URL (`sqlite:/path` or `postgres://…`). Each is
    /// connected now, and gets the marker table `recourse_applied` if it
    /// lacks it. `vault` is created if missing; it must lie outside the
    /// databases' own files (the gate checks its roots).
    pub async fn new(
        databases: Vec<(String, String)>,
        vault: PathBuf,
    ) -> Result<SqlConnector, SqlError> {
        let vault_err = |e: std::io::Error| SqlError::Vault {
            path: vault.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&vault).map_err(vault_err)?;
        let canonical = std::fs::canonicalize(&vault).map_err(vault_err)?;
        vault::writable(&canonical).map_err(|m| SqlError::Vault {
            path: canonical.display().to_string(),
            message: m,
        })?;
        let mut map = BTreeMap::new();
        for (name, url) in databases {
            check_name(&name)?;
            if map.contains_key(&name) {
                return Err(SqlError::Duplicate(name));
            }
            let pool = open(&name, &url).await?;
            map.insert(name.clone(), Database { name, pool });
        }
        Ok(SqlConnector {
            databases: map,
            vault: canonical,
            planned: Mutex::new(HashMap::new()),
        })
    }

    pub fn vault(&self) -> &Path {
        &self.vault
    }

    /// The engine behind a configured database.
    pub fn engine(&self, database: &str) -> Option<Engine> {
        self.databases.get(database).map(|d| d.pool.engine())
    }

    /// The catalog of one configured database (see [`import_catalog`]).
    pub async fn catalog(&self, database: &str) -> Result<Catalog, ConnectorError> {
        let db = self.databases.get(database).ok_or_else(|| {
            ConnectorError::invalid("database", format!("unknown database `{database}`"))
        })?;
        let schema = Schema::load(&db.pool)
            .await
            .map_err(io("reading the schema"))?;
        Ok(catalog_of(&db.name, &schema))
    }

    fn evidence_id(write_id: &str) -> String {
        format!("before-{write_id}")
    }

    fn evidence_location(&self, write_id: &str) -> String {
        format!("fs:{}", vault::path(&self.vault, write_id).display())
    }
}

#[async_trait]
impl Connector for SqlConnector {
    fn name(&self) -> &'static str {
        "sql"
    }

    /// The one op this connector runs in a rollback: its own `restore`, as
    /// `plan` models it (`{"connector": "sql", "op": "restore"}`, nothing
    /// else). It restores from what it captured for the write.
    fn accepts_step(&self, op: &Value) -> bool {
        op.as_object().is_some_and(|o| {
            o.len() == 2
                && o.get("connector").and_then(Value::as_str) == Some("sql")
                && o.get("op").and_then(Value::as_str) == Some("restore")
        })
    }

    async fn plan(&self, write_id: &str, action: &Value) -> Result<Plan, ConnectorError> {
        self.plan_write(write_id, action).await
    }

    async fn effect(
        &self,
        _write_id: &str,
        action: &Value,
    ) -> Result<Option<recourse_client::EffectChange>, ConnectorError> {
        self.effect_of(action).await.map(Some)
    }

    async fn observe(&self, write_id: &str, evidence: &Evidence) -> Option<Observation> {
        if evidence.id != Self::evidence_id(write_id) || evidence.kind != EvidenceKind::BeforeImage
        {
            return None;
        }
        if evidence.location.as_deref() != Some(self.evidence_location(write_id).as_str()) {
            return None;
        }
        // After the write: the images are in the vault.
        match vault::read(&self.vault, write_id) {
            Ok(Some((_, record))) => {
                let at = record
                    .get("captured_at")
                    .and_then(Value::as_str)
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|d| d.with_timezone(&Utc));
                let n = record
                    .get("images")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                return Some(Observation {
                    present: true,
                    captured_at: at,
                    detail: Some(format!("{n} row image(s) in the vault")),
                });
            }
            Ok(None) => {}
            Err(e) => {
                return Some(Observation {
                    present: false,
                    captured_at: None,
                    detail: Some(e.to_string()),
                })
            }
        }
        // Before the write: the images will be taken in its transaction, so
        // what must hold now is a writable vault and a reachable database.
        if let Err(m) = vault::writable(&self.vault) {
            return Some(Observation {
                present: false,
                captured_at: None,
                detail: Some(m),
            });
        }
        let planned = self
            .planned
            .lock()
            .ok()
            .and_then(|p| p.get(write_id).cloned());
        let targets: Vec<&Database> = match planned.as_deref().and_then(|n| self.databases.get(n)) {
            Some(db) => vec![db],
            None => self.databases.values().collect(),
        };
        for db in &targets {
            if let Err(e) = db.pool.ping().await {
                return Some(Observation {
                    present: false,
                    captured_at: None,
                    detail: Some(format!("database `{}` is not reachable: {e}", db.name)),
                });
            }
        }
        Some(Observation {
            present: true,
            captured_at: Some(Utc::now()),
            detail: Some("vault writable and database reachable; before-images are taken in the write's own transaction".into()),
        })
    }

    async fn capture(&self, write_id: &str, proposal: &Proposal) -> Result<Value, ConnectorError> {
        vault::check_write_id(write_id)?;
        let w = self.parse(&proposal.action).await?;
        vault::writable(&self.vault).map_err(ConnectorError::Io)?;
        Ok(json!({
            "connector": "sql",
            "database": w.db.name,
            "vault": vault::path(&self.vault, write_id).display().to_string(),
            "note": "before-images are taken inside execute's transaction and are durable before it commits",
        }))
    }

    async fn execute(
        &self,
        write_id: &str,
        proposal: &Proposal,
        _capture: &Value,
    ) -> Result<Value, ConnectorError> {
        vault::check_write_id(write_id)?;
        let w = self.parse(&proposal.action).await?;
        let engine = w.engine();
        let mut tx =
            w.db.pool
                .begin()
                .await
                .map_err(io("opening the write's transaction"))?;
        if self.marker(&mut tx, engine, write_id).await?.is_some() {
            let _ = tx.rollback().await;
            return Ok(self.outcome(write_id, &self.done_from_vault(write_id)?, true));
        }
        let result = self.capture_and_run(&mut tx, &w, write_id).await;
        match result {
            Ok(done) => {
                tx.commit()
                    .await
                    .map_err(|e| commit_error("committing the write", e))?;
                Ok(self.outcome(write_id, &done, false))
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn applied(
        &self,
        write_id: &str,
        proposal: &Proposal,
        _capture: &Value,
    ) -> Result<Option<bool>, ConnectorError> {
        vault::check_write_id(write_id)?;
        let name = proposal
            .action
            .get("database")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::invalid("action.database", "must name a database"))?;
        let db = self.databases.get(name).ok_or_else(|| {
            ConnectorError::invalid("action.database", format!("unknown database `{name}`"))
        })?;
        let sql = match db.pool.engine() {
            Engine::Sqlite => format!("SELECT count(*) FROM {MARKER_TABLE} WHERE write_id = ?"),
            Engine::Postgres => {
                format!("SELECT count(*)::text FROM {MARKER_TABLE} WHERE write_id = $1")
            }
        };
        let rows = db
            .pool
            .rows(&sql, &[Cell::Text(write_id.into())])
            .await
            .map_err(io("reading the applied marker"))?;
        let n = rows.first().and_then(|r| r.first()).cloned();
        Ok(Some(
            matches!(n, Some(Cell::Int(n)) if n > 0)
                || matches!(n, Some(Cell::Text(ref t)) if t != "0"),
        ))
    }

    async fn restore(
        &self,
        write_id: &str,
        proposal: &Proposal,
        _capture: &Value,
        outcome: Option<&Value>,
        force: bool,
    ) -> Result<RollbackReport, ConnectorError> {
        self.restore_write(write_id, proposal, _capture, outcome, force)
            .await
    }
}

#[cfg(test)]
mod tests;
