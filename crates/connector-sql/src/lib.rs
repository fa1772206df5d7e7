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

mod cell;
mod db;
mod schema;
mod vault;

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

pub use cell::Cell;
pub use db::Engine;
use db::{lock_clause, order_by_pk, select_list, Pool, Stmt, Tx};
pub use schema::MARKER_TABLE;
use schema::{column_sql, to_cell, Column, FkAction, Schema, Table};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Update,
    Delete,
    Insert,
    Raw,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Insert => "insert",
            Op::Raw => "raw",
        }
    }
}

/// A change that foreign keys may carry on to referencing rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Change {
    Delete,
    /// Columns whose values changed.
    Update(Vec<String>),
}

/// An action checked against the schema.
struct Write<'a> {
    db: &'a Database,
    schema: Schema,
    op: Op,
    /// Canonical table name (none for a raw statement).
    table: String,
    /// Column index and value, for `where`.
    conds: Vec<(usize, Cell)>,
    set: Vec<(usize, Cell)>,
    values: Vec<Vec<(usize, Cell)>>,
    raw: String,
}

impl Write<'_> {
    fn engine(&self) -> Engine {
        self.db.pool.engine()
    }

    fn table(&self) -> Result<&Table, ConnectorError> {
        self.schema.table(&self.table).ok_or_else(|| {
            ConnectorError::invalid("action.table", format!("unknown table `{}`", self.table))
        })
    }
}

/// One row the write changes: where it was and what it was and became.
#[derive(Debug, Clone, serde::Serialize)]
struct Image {
    table: String,
    pk: Vec<Cell>,
    before: Option<Vec<Cell>>,
    after: Option<Vec<Cell>>,
}

impl Image {
    fn from_json(v: &Value) -> Option<Image> {
        let row = |key: &str| match v.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(r) => cell::row_from_json(r).map(Some),
        };
        Some(Image {
            table: v.get("table")?.as_str()?.to_string(),
            pk: cell::row_from_json(v.get("pk")?)?,
            before: row("before")?,
            after: row("after")?,
        })
    }
}

/// The vault record, written straight from the images.
#[derive(serde::Serialize)]
struct Record<'a> {
    format: &'static str,
    write_id: &'a str,
    database: &'a str,
    engine: &'static str,
    op: &'static str,
    table: &'a str,
    captured_at: String,
    rows_affected: u64,
    tables: BTreeMap<String, Value>,
    images: &'a [Image],
}

/// What `execute` did, for the outcome.
struct Done {
    database: String,
    op: String,
    table: String,
    rows_affected: u64,
    images: Vec<Image>,
    digest: String,
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

    /// Parses and checks an action against the live schema.
    async fn parse(&self, action: &Value) -> Result<Write<'_>, ConnectorError> {
        let obj = action
            .as_object()
            .ok_or_else(|| ConnectorError::invalid("action", "must be an object"))?;
        let name = obj
            .get("database")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::invalid("action.database", "must name a database"))?;
        let db = self.databases.get(name).ok_or_else(|| {
            ConnectorError::invalid("action.database", format!("unknown database `{name}`"))
        })?;
        let op = match obj.get("op").and_then(Value::as_str) {
            Some("update") => Op::Update,
            Some("delete") => Op::Delete,
            Some("insert") => Op::Insert,
            Some("raw") => Op::Raw,
            Some(other) => {
                return Err(ConnectorError::invalid(
                    "action.op",
                    format!("unknown op `{other}` (update, delete, insert, raw)"),
                ))
            }
            None => {
                return Err(ConnectorError::invalid(
                    "action.op",
                    "must be update, delete, insert or raw",
                ))
            }
        };
        let mut write = Write {
            db,
            schema: Schema::default(),
            op,
            table: String::new(),
            conds: Vec::new(),
            set: Vec::new(),
            values: Vec::new(),
            raw: String::new(),
        };
        if op == Op::Raw {
            write.raw = obj
                .get("sql")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| {
                    ConnectorError::invalid("action.sql", "a raw statement needs `sql`")
                })?
                .to_string();
            return Ok(write);
        }
        let engine = db.pool.engine();
        let schema = Schema::load(&db.pool)
            .await
            .map_err(io("reading the schema"))?;
        let table_name = obj
            .get("table")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::invalid("action.table", "must name a table"))?;
        let table = schema.table(table_name).ok_or_else(|| {
            ConnectorError::invalid("action.table", format!("unknown table `{table_name}`"))
        })?;
        if schema.keyless.contains(&table.name) {
            return Err(ConnectorError::refuse(
                ReasonCode::Unmodelled,
                format!(
                    "table `{}` has no primary key: its rows cannot be captured by key",
                    table.name
                ),
            ));
        }
        let object =
            |field: &str, v: Option<&Value>| -> Result<Map<String, Value>, ConnectorError> {
                match v {
                    None | Some(Value::Null) => Ok(Map::new()),
                    Some(Value::Object(m)) => Ok(m.clone()),
                    Some(_) => Err(ConnectorError::invalid(
                        field,
                        "must be an object of column: value",
                    )),
                }
            };
        let columns =
            |field: &str, m: &Map<String, Value>| -> Result<Vec<(usize, Cell)>, ConnectorError> {
                let mut out = Vec::new();
                for (col, v) in m {
                    let at = format!("{field}.{col}");
                    let (i, column) = table
                        .column(col)
                        .ok_or_else(|| ConnectorError::invalid(at.clone(), "unknown column"))?;
                    let c = to_cell(engine, column, v)
                        .map_err(|m| ConnectorError::invalid(at.clone(), m))?;
                    if field != "action.where" && c == Cell::Null && column.not_null {
                        return Err(ConnectorError::invalid(at, "column is NOT NULL"));
                    }
                    out.push((i, c));
                }
                Ok(out)
            };
        match op {
            Op::Update | Op::Delete => {
                let wh = object("action.where", obj.get("where"))?;
                let conds = columns("action.where", &wh)?;
                if conds.is_empty() {
                    return Err(ConnectorError::refuse(
                        ReasonCode::Unmodelled,
                        format!(
                            "an {} without `where` changes every row of `{}`: not modelled, a person decides",
                            op.as_str(),
                            table.name
                        ),
                    ));
                }
                write.conds = conds;
                if op == Op::Update {
                    let set = object("action.set", obj.get("set"))?;
                    if set.is_empty() {
                        return Err(ConnectorError::invalid(
                            "action.set",
                            "must set at least one column",
                        ));
                    }
                    write.set = columns("action.set", &set)?;
                    for (i, _) in &write.set {
                        if table.pk.contains(i) {
                            let col = table
                                .columns
                                .get(*i)
                                .map(|c| c.name.as_str())
                                .unwrap_or_default();
                            return Err(ConnectorError::refuse(
                                ReasonCode::Unmodelled,
                                format!("action.set.{col}: changing a primary key is not modelled"),
                            ));
                        }
                    }
                }
            }
            Op::Insert => {
                let rows: Vec<(String, Map<String, Value>)> = match obj.get("values") {
                    Some(Value::Object(m)) => vec![("action.values".into(), m.clone())],
                    Some(Value::Array(items)) if !items.is_empty() => items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| match v {
                            Value::Object(m) => Ok((format!("action.values[{i}]"), m.clone())),
                            _ => Err(ConnectorError::invalid(
                                format!("action.values[{i}]"),
                                "must be an object",
                            )),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => {
                        return Err(ConnectorError::invalid(
                            "action.values",
                            "must be an object or a non-empty array of objects",
                        ))
                    }
                };
                for (field, m) in rows {
                    write.values.push(columns(&field, &m)?);
                }
            }
            Op::Raw => {}
        }
        write.table = table.name.clone();
        // Cascades must keep rows nameable: a cascade that changes a
        // referencing row's primary key, or reaches a keyless table, is not
        // modelled.
        let first = match op {
            Op::Delete => Some(Change::Delete),
            Op::Update => Some(Change::Update(
                write
                    .set
                    .iter()
                    .filter_map(|(i, _)| table.columns.get(*i).map(|c| c.name.clone()))
                    .collect(),
            )),
            _ => None,
        };
        if let Some(first) = first {
            let mut queue = VecDeque::from([(table.name.clone(), first)]);
            let mut seen = HashSet::new();
            while let Some((t, change)) = queue.pop_front() {
                if !seen.insert((t.clone(), change.clone())) {
                    continue;
                }
                for (fk, next) in cascades(&schema, &t, &change) {
                    if schema.keyless.contains(&fk.child) {
                        return Err(ConnectorError::refuse(
                            ReasonCode::Unmodelled,
                            format!(
                                "a cascade from `{}` reaches `{}`, which has no primary key",
                                t, fk.child
                            ),
                        ));
                    }
                    if let (Change::Update(cols), Some(child)) = (&next, schema.table(&fk.child)) {
                        if child
                            .pk
                            .iter()
                            .filter_map(|&i| child.columns.get(i))
                            .any(|c| cols.contains(&c.name))
                        {
                            return Err(ConnectorError::refuse(
                                ReasonCode::Unmodelled,
                                format!("a cascade from `{}` changes primary keys of `{}`: not modelled", t, fk.child),
                            ));
                        }
                    }
                    queue.push_back((fk.child.clone(), next));
                }
            }
        }
        write.schema = schema;
        Ok(write)
    }

    /// The statement that reads the rows `where` matches.
    fn matched(
        &self,
        w: &Write<'_>,
        limit: Option<usize>,
        lock: bool,
    ) -> Result<Stmt, ConnectorError> {
        let table = w.table()?;
        let mut s = Stmt::new(w.engine());
        s.push(&format!(
            "SELECT {} FROM {} WHERE ",
            select_list(w.engine(), table),
            table.sql_name
        ));
        let conds: Vec<(&Column, Cell)> = w
            .conds
            .iter()
            .filter_map(|(i, c)| table.columns.get(*i).map(|col| (col, c.clone())))
            .collect();
        s.conditions(&conds);
        s.push(&order_by_pk(table));
        if let Some(n) = limit {
            s.push(&format!(" LIMIT {n}"));
        }
        if lock {
            s.push(lock_clause(w.engine()));
        }
        Ok(s)
    }

    /// Locks and reads the rows the write changes: the matched rows, then,
    /// breadth first, the rows foreign keys carry the change to.
    async fn before_images(
        &self,
        tx: &mut Tx,
        w: &Write<'_>,
    ) -> Result<(Vec<Image>, usize), ConnectorError> {
        let table = w.table()?;
        let engine = w.engine();
        let mut images = Vec::new();
        let mut seen_rows: HashSet<(String, String)> = HashSet::new();
        let first = match w.op {
            Op::Delete => Change::Delete,
            Op::Update => Change::Update(
                w.set
                    .iter()
                    .filter_map(|(i, _)| table.columns.get(*i).map(|c| c.name.clone()))
                    .collect(),
            ),
            Op::Insert | Op::Raw => return Ok((images, 0)),
        };
        let s = self.matched(w, None, true)?;
        let rows = tx
            .rows(&s.sql, &s.params)
            .await
            .map_err(|e| db_error("reading the matched rows", e))?;
        for r in &rows {
            let pk = table.pk_of(r);
            seen_rows.insert((table.name.clone(), cell::pk_text(&pk)));
            images.push(Image {
                table: table.name.clone(),
                pk,
                before: Some(r.clone()),
                after: None,
            });
        }
        let roots = images.len();
        let mut followed: HashSet<(String, String, bool)> = HashSet::new();
        let mut queue = VecDeque::from([(table.name.clone(), rows, first)]);
        while let Some((parent_name, rows, change)) = queue.pop_front() {
            let Some(parent) = w.schema.table(&parent_name) else {
                continue;
            };
            for (fk, next) in cascades(&w.schema, &parent_name, &change) {
                let Some(child) = w.schema.table(&fk.child) else {
                    continue;
                };
                let ref_idx: Vec<usize> = fk
                    .ref_columns
                    .iter()
                    .filter_map(|c| parent.index_of(c))
                    .collect();
                let fk_cols: Vec<&Column> = fk
                    .columns
                    .iter()
                    .filter_map(|c| child.index_of(c).and_then(|i| child.columns.get(i)))
                    .collect();
                if ref_idx.len() != fk.ref_columns.len() || fk_cols.len() != fk.columns.len() {
                    continue;
                }
                let mut reached = Vec::new();
                for row in &rows {
                    let vals: Vec<Cell> = ref_idx
                        .iter()
                        .filter_map(|&i| row.get(i).cloned())
                        .collect();
                    if vals.contains(&Cell::Null) {
                        continue;
                    }
                    let mut s = Stmt::new(engine);
                    s.push(&format!(
                        "SELECT {} FROM {} WHERE ",
                        select_list(engine, child),
                        child.sql_name
                    ));
                    let conds: Vec<(&Column, Cell)> = fk_cols.iter().copied().zip(vals).collect();
                    s.conditions(&conds);
                    s.push(&order_by_pk(child));
                    s.push(lock_clause(engine));
                    let found = tx
                        .rows(&s.sql, &s.params)
                        .await
                        .map_err(io("reading rows a cascade reaches"))?;
                    for r in found {
                        let pk = child.pk_of(&r);
                        let key = cell::pk_text(&pk);
                        if seen_rows.insert((child.name.clone(), key.clone())) {
                            images.push(Image {
                                table: child.name.clone(),
                                pk,
                                before: Some(r.clone()),
                                after: None,
                            });
                        }
                        if followed.insert((child.name.clone(), key, next == Change::Delete)) {
                            reached.push(r);
                        }
                    }
                }
                if !reached.is_empty() {
                    queue.push_back((child.name.clone(), reached, next));
                }
            }
        }
        Ok((images, roots))
    }

    async fn read_row(
        &self,
        tx: &mut Tx,
        engine: Engine,
        table: &Table,
        pk: &[Cell],
        lock: bool,
    ) -> Result<Option<Vec<Cell>>, ConnectorError> {
        let mut s = Stmt::new(engine);
        s.push(&format!(
            "SELECT {} FROM {} WHERE ",
            select_list(engine, table),
            table.sql_name
        ));
        s.conditions(&pk_conds(table, pk));
        if lock {
            s.push(lock_clause(engine));
        }
        let mut rows = tx
            .rows(&s.sql, &s.params)
            .await
            .map_err(io("reading a row"))?;
        Ok(rows.pop())
    }

    async fn marker(
        &self,
        tx: &mut Tx,
        engine: Engine,
        write_id: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let sql = match engine {
            Engine::Sqlite => format!("SELECT at FROM {MARKER_TABLE} WHERE write_id = ?"),
            Engine::Postgres => format!("SELECT at FROM {MARKER_TABLE} WHERE write_id = $1"),
        };
        let rows = tx
            .rows(&sql, &[Cell::Text(write_id.into())])
            .await
            .map_err(io("reading the applied marker"))?;
        Ok(rows.into_iter().next().map(|r| match r.into_iter().next() {
            Some(Cell::Text(at)) => at,
            _ => String::new(),
        }))
    }

    /// Compares every row with its before-image. `drift`: what the drift
    /// check found, which a forced restore went over (named in the row's
    /// item). `already`: the rows were put back by an earlier call.
    #[allow(clippy::too_many_arguments)]
    async fn verify_before(
        &self,
        tx: &mut Tx,
        engine: Engine,
        schema: &Schema,
        name: &str,
        images: &[Image],
        drift: Vec<RestoreItem>,
        already: bool,
    ) -> Result<(bool, Vec<RestoreItem>), ConnectorError> {
        let mut items = drift;
        let mut ok = true;
        for image in images {
            let table = schema.table(&image.table).ok_or_else(|| {
                ConnectorError::Io(format!(
                    "table `{}` vanished during the rollback",
                    image.table
                ))
            })?;
            let now = self.read_row(tx, engine, table, &image.pk, false).await?;
            let same = match (&now, &image.before) {
                (None, None) => true,
                (Some(a), Some(b)) => cell::same_row(a, b),
                _ => false,
            };
            let resource = row_id(name, &image.table, &image.pk);
            let overwritten: Vec<String> = items
                .iter()
                .filter(|i: &&RestoreItem| i.resource == resource)
                .filter_map(|i| i.detail.clone())
                .collect();
            items.retain(|i: &RestoreItem| i.resource != resource);
            if same {
                let mut detail = match (already, image.before.is_some()) {
                    (false, true) => "row put back",
                    (false, false) => "inserted row removed",
                    (true, true) => "already restored: the row is as before the write",
                    (true, false) => "already restored: the inserted row is gone",
                }
                .to_string();
                if !overwritten.is_empty() {
                    detail.push_str(&format!(" over drift (forced): {}", overwritten.join("; ")));
                }
                items.push(RestoreItem {
                    resource,
                    status: RestoreStatus::Restored,
                    detail: Some(detail),
                });
            } else {
                ok = false;
                let after = if already {
                    "it changed after the rollback committed"
                } else {
                    "the rollback was not committed"
                };
                items.push(RestoreItem {
                    resource,
                    status: RestoreStatus::Mismatch,
                    detail: Some(format!(
                        "expected {}, found {}; {after}",
                        describe_row(table, image.before.as_deref()),
                        describe_row(table, now.as_deref())
                    )),
                });
            }
        }
        Ok((ok, items))
    }

    /// Runs the write itself, after its before-images are read; returns
    /// the images completed with after-images, and the rows affected.
    async fn run(
        &self,
        tx: &mut Tx,
        w: &Write<'_>,
        mut images: Vec<Image>,
        roots: usize,
    ) -> Result<(Vec<Image>, u64), ConnectorError> {
        let engine = w.engine();
        if w.op == Op::Raw {
            let n = tx
                .exec_raw(&w.raw)
                .await
                .map_err(|e| db_error("running the raw statement", e))?;
            return Ok((images, n));
        }
        let table = w.table()?;
        let conds: Vec<(&Column, Cell)> = w
            .conds
            .iter()
            .filter_map(|(i, c)| table.columns.get(*i).map(|col| (col, c.clone())))
            .collect();
        let affected = match w.op {
            Op::Update => {
                let mut s = Stmt::new(engine);
                s.push(&format!("UPDATE {} SET ", table.sql_name));
                for (n, (i, v)) in w.set.iter().enumerate() {
                    let Some(col) = table.columns.get(*i) else {
                        continue;
                    };
                    if n > 0 {
                        s.push(", ");
                    }
                    s.push(&format!("{} = ", column_sql(col)));
                    s.param(col, v.clone());
                }
                s.push(" WHERE ");
                s.conditions(&conds);
                s.push(&format!(" RETURNING {}", select_list(engine, table)));
                let after = tx
                    .rows(&s.sql, &s.params)
                    .await
                    .map_err(|e| db_error("running the update", e))?;
                let n = after.len();
                let mut by_pk: HashMap<String, Vec<Cell>> = after
                    .into_iter()
                    .map(|r| (cell::pk_text(&table.pk_of(&r)), r))
                    .collect();
                for image in images.iter_mut().take(roots) {
                    image.after = by_pk.remove(&cell::pk_text(&image.pk));
                }
                if n != roots || !by_pk.is_empty() {
                    return Err(ConnectorError::Io(format!(
                        "the update changed {n} rows but {roots} were read before it; nothing was written"
                    )));
                }
                n as u64
            }
            Op::Delete => {
                let mut s = Stmt::new(engine);
                s.push(&format!("DELETE FROM {} WHERE ", table.sql_name));
                s.conditions(&conds);
                let n = tx
                    .exec(&s.sql, &s.params)
                    .await
                    .map_err(|e| db_error("running the delete", e))?;
                if n != roots as u64 {
                    return Err(ConnectorError::Io(format!(
                        "the delete removed {n} rows but {roots} were read before it; nothing was written"
                    )));
                }
                n
            }
            Op::Insert => {
                let mut n = 0;
                for values in &w.values {
                    let mut s = Stmt::new(engine);
                    if values.is_empty() {
                        s.push(&format!("INSERT INTO {} DEFAULT VALUES", table.sql_name));
                    } else {
                        let names: Vec<String> = values
                            .iter()
                            .filter_map(|(i, _)| table.columns.get(*i))
                            .map(column_sql)
                            .collect();
                        s.push(&format!(
                            "INSERT INTO {} ({}) VALUES (",
                            table.sql_name,
                            names.join(", ")
                        ));
                        for (k, (i, v)) in values.iter().enumerate() {
                            let Some(col) = table.columns.get(*i) else {
                                continue;
                            };
                            if k > 0 {
                                s.push(", ");
                            }
                            s.param(col, v.clone());
                        }
                        s.push(")");
                    }
                    s.push(&format!(" RETURNING {}", select_list(engine, table)));
                    let rows = tx
                        .rows(&s.sql, &s.params)
                        .await
                        .map_err(|e| db_error("running the insert", e))?;
                    for r in rows {
                        images.push(Image {
                            table: table.name.clone(),
                            pk: table.pk_of(&r),
                            before: None,
                            after: Some(r),
                        });
                        n += 1;
                    }
                }
                n
            }
            Op::Raw => 0,
        };
        // Rows a cascade reached: read them as the write left them.
        if matches!(w.op, Op::Update | Op::Delete) {
            for image in images.iter_mut().skip(roots) {
                if let Some(t) = w.schema.table(&image.table) {
                    image.after = self.read_row(tx, engine, t, &image.pk, false).await?;
                }
            }
        }
        Ok((images, affected))
    }

    /// Inside the write's transaction: before-images, the write, the
    /// vault record (durable), the applied marker. The caller commits.
    async fn capture_and_run(
        &self,
        tx: &mut Tx,
        w: &Write<'_>,
        write_id: &str,
    ) -> Result<Done, ConnectorError> {
        let (images, roots) = self.before_images(tx, w).await?;
        let (images, affected) = self.run(tx, w, images, roots).await?;
        let at = Utc::now();
        let mut tables = BTreeMap::new();
        for image in &images {
            if !tables.contains_key(&image.table) {
                if let Some(t) = w.schema.table(&image.table) {
                    tables.insert(image.table.clone(), json!({"columns": t.column_names()}));
                }
            }
        }
        let record = Record {
            format: FORMAT,
            write_id,
            database: &w.db.name,
            engine: w.engine().as_str(),
            op: w.op.as_str(),
            table: &w.table,
            captured_at: at.to_rfc3339(),
            rows_affected: affected,
            tables,
            images: &images,
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| ConnectorError::Io(format!("vault record: {e}")))?;
        let digest = vault::digest(&bytes);
        // Durable before the commit: the write cannot outlive its capture.
        let vault_dir = self.vault.clone();
        let id = write_id.to_string();
        tokio::task::spawn_blocking(move || vault::write(&vault_dir, &id, &bytes))
            .await
            .map_err(|e| ConnectorError::Io(format!("vault: {e}")))??;
        tx.exec(
            &marker_insert(w.engine()),
            &[Cell::Text(write_id.into()), Cell::Text(at.to_rfc3339())],
        )
        .await
        .map_err(io("recording the applied marker"))?;
        Ok(Done {
            database: w.db.name.clone(),
            op: w.op.as_str().into(),
            table: w.table.clone(),
            rows_affected: affected,
            images,
            digest,
        })
    }

    /// Rows affected, the vault record's digest, and the after-images of
    /// the changed rows (up to [`ROW_LIMIT`]; beyond that the vault holds
    /// them and the digest vouches for them).
    fn outcome(&self, write_id: &str, done: &Done, already_applied: bool) -> Value {
        let changed: Vec<&Image> = done.images.iter().filter(|i| i.after.is_some()).collect();
        let mut out = json!({
            "connector": "sql",
            "database": done.database,
            "op": done.op,
            "table": done.table,
            "rows_affected": done.rows_affected,
            "rows_captured": done.images.len(),
            "already_applied": already_applied,
            "vault": vault::path(&self.vault, write_id).display().to_string(),
            "vault_sha256": done.digest,
        });
        if let Some(obj) = out.as_object_mut() {
            if changed.len() <= ROW_LIMIT {
                let after: Vec<Value> = changed
                    .iter()
                    .map(|i| json!({"table": i.table, "pk": cell::row_to_json(&i.pk), "after": i.after.as_deref().map(cell::row_to_json)}))
                    .collect();
                obj.insert("after".into(), Value::Array(after));
            } else {
                obj.insert("after_in_vault".into(), json!(changed.len()));
            }
        }
        out
    }

    /// The record of a write already applied, read back from the vault.
    fn done_from_vault(&self, write_id: &str) -> Result<Done, ConnectorError> {
        let Some((bytes, record)) = vault::read(&self.vault, write_id)? else {
            return Err(ConnectorError::Io(format!(
                "write `{write_id}` is applied but its record is not in the vault `{}`",
                self.vault.display()
            )));
        };
        let text = |k: &str| {
            record
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(Done {
            database: text("database"),
            op: text("op"),
            table: text("table"),
            rows_affected: record
                .get("rows_affected")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            images: images_of(&record)?,
            digest: vault::digest(&bytes),
        })
    }
}

fn marker_insert(engine: Engine) -> String {
    match engine {
        Engine::Sqlite => format!("INSERT INTO {MARKER_TABLE} (write_id, at) VALUES (?, ?)"),
        Engine::Postgres => format!("INSERT INTO {MARKER_TABLE} (write_id, at) VALUES ($1, $2)"),
    }
}

/// The marker row a committed restore leaves, in the applied-marker table
/// (so no table is added to a deployed database). `:` is not in any write
/// id, so the key cannot be a write's own marker.
fn restored_key(write_id: &str) -> String {
    format!("restored:{write_id}")
}

fn images_of(record: &Value) -> Result<Vec<Image>, ConnectorError> {
    record
        .get("images")
        .and_then(Value::as_array)
        .ok_or_else(|| ConnectorError::Io("vault record has no images".into()))?
        .iter()
        .map(|v| {
            Image::from_json(v)
                .ok_or_else(|| ConnectorError::Io("vault record: unreadable image".into()))
        })
        .collect()
}

/// Foreign keys that carry `change` on from `table`, each with the change
/// it makes to the referencing rows.
fn cascades<'a>(
    schema: &'a Schema,
    table: &'a str,
    change: &Change,
) -> Vec<(&'a schema::ForeignKey, Change)> {
    schema
        .referencing(table)
        .filter_map(|fk| {
            let action = match change {
                Change::Delete => fk.on_delete,
                Change::Update(cols) if fk.ref_columns.iter().any(|c| cols.contains(c)) => {
                    fk.on_update
                }
                Change::Update(_) => return None,
            };
            if !action.changes_rows() {
                return None;
            }
            let next = if *change == Change::Delete && action == FkAction::Cascade {
                Change::Delete
            } else {
                Change::Update(fk.columns.clone())
            };
            Some((fk, next))
        })
        .collect()
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
        vault::check_write_id(write_id)?;
        let w = self.parse(action).await?;
        let db = &w.db.name;
        if let Ok(mut planned) = self.planned.lock() {
            // Only a hint for `observe`; bounded.
            if planned.len() >= 10_000 {
                planned.clear();
            }
            planned.insert(write_id.to_string(), db.clone());
        }
        let db_id = database_id(db);
        if w.op == Op::Raw {
            // Nothing to model: the gate holds it for a person.
            return Ok(Plan {
                touches: vec![db_id],
                resources: vec![database_resource(db)],
                edges: Vec::new(),
                step: None,
            });
        }
        let table = w.table()?;
        let t_id = table_id(db, &table.name);
        // Which rows: read now (the write reads them again, locked).
        let pks: Vec<Vec<Cell>> = match w.op {
            Op::Insert => {
                let given: Vec<Vec<Cell>> = w
                    .values
                    .iter()
                    .map(|vals| {
                        table
                            .pk
                            .iter()
                            .filter_map(|p| {
                                vals.iter().find(|(i, _)| i == p).map(|(_, c)| c.clone())
                            })
                            .collect()
                    })
                    .collect();
                if given
                    .iter()
                    .all(|pk: &Vec<Cell>| pk.len() == table.pk.len() && !pk.contains(&Cell::Null))
                {
                    // PostgreSQL values are text until cast; show them as given.
                    given
                } else {
                    Vec::new()
                }
            }
            _ => {
                let s = self.matched(&w, Some(ROW_LIMIT + 1), false)?;
                let rows =
                    w.db.pool
                        .rows(&s.sql, &s.params)
                        .await
                        .map_err(|e| db_error("reading the matched rows", e))?;
                rows.iter().map(|r| table.pk_of(r)).collect()
            }
        };
        let mut plan = Plan::default();
        plan.resources.push(database_resource(db));
        plan.resources.push(table_resource(db, &table.name));
        plan.edges.push(contains(&db_id, &t_id));
        if pks.is_empty() || pks.len() > ROW_LIMIT {
            plan.touches.push(t_id.clone());
        } else {
            for pk in &pks {
                let id = row_id(db, &table.name, pk);
                let mut r = Resource::new(id.clone());
                r.kind = Some("sql.row".into());
                plan.resources.push(r);
                plan.edges.push(contains(&t_id, &id));
                plan.touches.push(id);
            }
        }
        // Tables that reference the changed rows, transitively: a change to
        // a referenced row reaches them (explicitly so for the actions that
        // change their rows, which `execute` captures too).
        let mut restores: Vec<String> = plan.touches.clone();
        let mut known: BTreeSet<String> = BTreeSet::from([table.name.clone()]);
        let mut queue = VecDeque::from([table.name.clone()]);
        let mut edges = HashSet::new();
        while let Some(parent) = queue.pop_front() {
            for fk in w.schema.referencing(&parent) {
                let edge = fk_edge(db, fk);
                if !edges.insert((edge.from.clone(), edge.to.clone())) {
                    continue;
                }
                if parent == table.name {
                    for touched in plan.touches.clone() {
                        if touched != t_id {
                            plan.edges.push(Edge {
                                from: touched,
                                to: edge.to.clone(),
                                why: edge.why.clone(),
                            });
                        }
                    }
                }
                plan.edges.push(edge);
                if known.insert(fk.child.clone()) {
                    let c_id = table_id(db, &fk.child);
                    plan.resources.push(table_resource(db, &fk.child));
                    plan.edges.push(contains(&db_id, &c_id));
                    // Its rows change only through the actions `execute`
                    // captures; otherwise what it sees of this change is
                    // the referenced rows, which the step puts back.
                    restores.push(c_id);
                    queue.push_back(fk.child.clone());
                }
            }
        }
        plan.step = Some(Step {
            restores,
            op: json!({"connector": "sql", "op": "restore"}),
            requires: vec![Evidence {
                id: Self::evidence_id(write_id),
                kind: EvidenceKind::BeforeImage,
                location: Some(self.evidence_location(write_id)),
                until: None,
                max_age_s: None,
                check: None,
            }],
            modelled_by: Some("sql".into()),
        });
        Ok(plan)
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
        vault::check_write_id(write_id)?;
        let Some((bytes, record)) = vault::read(&self.vault, write_id)? else {
            return Err(ConnectorError::Io(format!(
                "the before-images of write `{write_id}` are not in the vault `{}`",
                self.vault.display()
            )));
        };
        // The outcome in the gate's audit trail vouches for the record.
        if let Some(expected) = outcome
            .and_then(|o| o.get("vault_sha256"))
            .and_then(Value::as_str)
        {
            let found = vault::digest(&bytes);
            if found != expected {
                return Err(ConnectorError::Io(format!(
                    "the vault record of write `{write_id}` changed since the write (sha256 {found}, recorded {expected}): nothing restored"
                )));
            }
        }
        let name = record
            .get("database")
            .and_then(Value::as_str)
            .or_else(|| proposal.action.get("database").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        let db = self.databases.get(&name).ok_or_else(|| {
            ConnectorError::invalid("action.database", format!("unknown database `{name}`"))
        })?;
        if record.get("op").and_then(Value::as_str) == Some("raw") {
            return Ok(RollbackReport {
                verified: false,
                items: vec![RestoreItem {
                    resource: database_id(&name),
                    status: RestoreStatus::Failed,
                    detail: Some("a raw statement has no captured rows; restore it by hand".into()),
                }],
                forced: force,
            });
        }
        let images = images_of(&record)?;
        let engine = db.pool.engine();
        let schema = Schema::load(&db.pool)
            .await
            .map_err(io("reading the schema"))?;
        let mut tx = db
            .pool
            .begin()
            .await
            .map_err(io("opening the rollback's transaction"))?;
        // A restore commits its rows and its restored marker in one
        // transaction: the marker says the rows were put back, by an earlier
        // call whose answer was lost (the gate crashed after the commit).
        // Then the rows are verified, not checked for drift (they are the
        // before-images, not the after-images) and not written again.
        let restored = match self.marker(&mut tx, engine, &restored_key(write_id)).await {
            Ok(at) => at.is_some(),
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        if restored {
            let result = self
                .verify_before(&mut tx, engine, &schema, &name, &images, Vec::new(), true)
                .await;
            let _ = tx.rollback().await;
            let (ok, items) = result?;
            return Ok(RollbackReport {
                verified: ok,
                items,
                forced: force,
            });
        }
        // The tables must still have the columns the images were taken with.
        let recorded = record
            .get("tables")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut failed = Vec::new();
        for (t, meta) in &recorded {
            let cols: Vec<String> = meta
                .get("columns")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            match schema.table(t) {
                Some(table) if table.column_names() == cols => {}
                Some(_) => {
                    failed.push((t.clone(), "its columns changed since the write".to_string()))
                }
                None => failed.push((t.clone(), "the table no longer exists".to_string())),
            }
        }
        if !failed.is_empty() {
            let _ = tx.rollback().await;
            return Ok(RollbackReport {
                verified: false,
                items: failed
                    .into_iter()
                    .map(|(t, why)| RestoreItem {
                        resource: table_id(&name, &t),
                        status: RestoreStatus::Failed,
                        detail: Some(format!("nothing restored: {why}")),
                    })
                    .collect(),
                forced: force,
            });
        }
        let table_of = |t: &str| {
            schema.table(t).ok_or_else(|| {
                ConnectorError::Io(format!("table `{t}` vanished during the rollback"))
            })
        };
        let result = async {
            // 1. Drift: each row must be as the write left it.
            let mut drift = Vec::new();
            let mut current = Vec::with_capacity(images.len());
            for image in &images {
                let table = table_of(&image.table)?;
                let now = self
                    .read_row(&mut tx, engine, table, &image.pk, true)
                    .await?;
                let same = match (&now, &image.after) {
                    (None, None) => true,
                    (Some(a), Some(b)) => cell::same_row(a, b),
                    _ => false,
                };
                if !same {
                    drift.push(RestoreItem {
                        resource: row_id(&name, &image.table, &image.pk),
                        status: RestoreStatus::Drift,
                        detail: Some(format!(
                            "changed since the write: expected {}, found {}",
                            describe_row(table, image.after.as_deref()),
                            describe_row(table, now.as_deref())
                        )),
                    });
                } else if image.before.is_none() && now.is_some() {
                    // An inserted row others now reference: deleting it
                    // would take (or orphan) rows the write never touched.
                    for fk in schema.referencing(&table.name) {
                        let Some(child) = schema.table(&fk.child) else {
                            continue;
                        };
                        let vals: Vec<Cell> = fk
                            .ref_columns
                            .iter()
                            .filter_map(|c| {
                                table
                                    .index_of(c)
                                    .and_then(|i| now.as_ref().and_then(|r| r.get(i).cloned()))
                            })
                            .collect();
                        let cols: Vec<&Column> = fk
                            .columns
                            .iter()
                            .filter_map(|c| child.index_of(c).and_then(|i| child.columns.get(i)))
                            .collect();
                        if vals.len() != cols.len() || vals.contains(&Cell::Null) {
                            continue;
                        }
                        let mut s = Stmt::new(engine);
                        s.push(&format!(
                            "SELECT {} FROM {} WHERE ",
                            select_list(engine, child),
                            child.sql_name
                        ));
                        s.conditions(&cols.into_iter().zip(vals).collect::<Vec<_>>());
                        s.push(" LIMIT 1");
                        if !tx
                            .rows(&s.sql, &s.params)
                            .await
                            .map_err(io("reading referencing rows"))?
                            .is_empty()
                        {
                            drift.push(RestoreItem {
                                resource: row_id(&name, &image.table, &image.pk),
                                status: RestoreStatus::Drift,
                                detail: Some(format!(
                                    "rows of `{}` added since the write reference it",
                                    child.name
                                )),
                            });
                        }
                    }
                }
                current.push(now);
            }
            if !drift.is_empty() && !force {
                return Ok((false, drift));
            }
            // 2. Remove rows the write added, referencing rows first.
            for (image, now) in images.iter().zip(&current).rev() {
                if image.before.is_none() && now.is_some() {
                    let table = table_of(&image.table)?;
                    let mut s = Stmt::new(engine);
                    s.push(&format!("DELETE FROM {} WHERE ", table.sql_name));
                    s.conditions(&pk_conds(table, &image.pk));
                    tx.exec(&s.sql, &s.params)
                        .await
                        .map_err(io("deleting an inserted row"))?;
                }
            }
            // 3. Put rows back, referenced rows first: update in place, or
            // insert when the row is gone.
            for image in &images {
                let Some(before) = &image.before else {
                    continue;
                };
                let table = table_of(&image.table)?;
                let mut affected = 0;
                let others: Vec<usize> = (0..table.columns.len())
                    .filter(|i| !table.pk.contains(i))
                    .collect();
                if !others.is_empty() {
                    let mut s = Stmt::new(engine);
                    s.push(&format!("UPDATE {} SET ", table.sql_name));
                    for (n, &i) in others.iter().enumerate() {
                        let (Some(col), Some(v)) = (table.columns.get(i), before.get(i)) else {
                            continue;
                        };
                        if n > 0 {
                            s.push(", ");
                        }
                        s.push(&format!("{} = ", column_sql(col)));
                        s.param(col, v.clone());
                    }
                    s.push(" WHERE ");
                    s.conditions(&pk_conds(table, &image.pk));
                    affected = tx
                        .exec(&s.sql, &s.params)
                        .await
                        .map_err(io("restoring a row"))?;
                } else if self
                    .read_row(&mut tx, engine, table, &image.pk, false)
                    .await?
                    .is_some()
                {
                    affected = 1;
                }
                if affected == 0 {
                    let mut s = Stmt::new(engine);
                    let names: Vec<String> = table.columns.iter().map(column_sql).collect();
                    s.push(&format!(
                        "INSERT INTO {} ({})",
                        table.sql_name,
                        names.join(", ")
                    ));
                    if engine == Engine::Postgres {
                        // Identity columns take the captured value back.
                        s.push(" OVERRIDING SYSTEM VALUE");
                    }
                    s.push(" VALUES (");
                    for (i, (col, v)) in table.columns.iter().zip(before).enumerate() {
                        if i > 0 {
                            s.push(", ");
                        }
                        s.param(col, v.clone());
                    }
                    s.push(")");
                    tx.exec(&s.sql, &s.params)
                        .await
                        .map_err(io("re-inserting a row"))?;
                }
            }
            // 4. Verify against the before-images; only a verified restore
            // commits, and with it the restored marker.
            let (ok, items) = self
                .verify_before(&mut tx, engine, &schema, &name, &images, drift, false)
                .await?;
            if ok {
                tx.exec(
                    &marker_insert(engine),
                    &[
                        Cell::Text(restored_key(write_id)),
                        Cell::Text(Utc::now().to_rfc3339()),
                    ],
                )
                .await
                .map_err(io("recording the restored marker"))?;
                crash_point!(BEFORE_COMMIT);
            }
            Ok::<_, ConnectorError>((ok, items))
        }
        .await;
        match result {
            Ok((true, items)) => {
                tx.commit()
                    .await
                    .map_err(|e| commit_error("committing the rollback", e))?;
                crash_point!(AFTER_COMMIT);
                Ok(RollbackReport {
                    verified: true,
                    items,
                    forced: force,
                })
            }
            Ok((false, items)) => {
                let _ = tx.rollback().await;
                Ok(RollbackReport {
                    verified: false,
                    items,
                    forced: force,
                })
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests;
