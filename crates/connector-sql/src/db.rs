//! The two engines behind one small surface: a pool, a transaction, and
//! statements built with the right placeholders and casts.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, TypeInfo, ValueRef};

use crate::cell::Cell;
use crate::schema::{column_sql, Column, Table};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Pool {
    /// Connects lazily-checked: the first connection is made here so a bad
    /// URL or an unreachable server fails at start-up.
    pub async fn connect(url: &str) -> Result<Pool, sqlx::Error> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            Ok(Pool::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Ok(Pool::Pg(pool))
        } else {
            Err(sqlx::Error::Configuration(
                "expected a `sqlite:` or `postgres://` URL".into(),
            ))
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Pool::Sqlite(_) => Engine::Sqlite,
            Pool::Pg(_) => Engine::Postgres,
        }
    }

    /// A write transaction: SQLite takes the write lock at once (`BEGIN
    /// IMMEDIATE`); PostgreSQL reads one snapshot (`REPEATABLE READ`), so the
    /// rows the write changes are exactly the rows read before it.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Pg(p) => Tx::Pg(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
                    .await?,
            ),
        })
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
            Pool::Pg(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
        }
    }

    /// Runs a statement outside any transaction of ours.
    pub async fn exec(&self, sql: &str, params: &[Cell]) -> Result<u64, sqlx::Error> {
        match self {
            Pool::Sqlite(p) => bind_sqlite(sqlx::query(sql), params)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Pool::Pg(p) => bind_pg(sqlx::query(sql), params)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        }
    }

    pub async fn rows(&self, sql: &str, params: &[Cell]) -> Result<Vec<Vec<Cell>>, sqlx::Error> {
        match self {
            Pool::Sqlite(p) => {
                let rows = bind_sqlite(sqlx::query(sql), params).fetch_all(p).await?;
                rows.iter().map(sqlite_row).collect()
            }
            Pool::Pg(p) => {
                let rows = bind_pg(sqlx::query(sql), params).fetch_all(p).await?;
                rows.iter().map(pg_row).collect()
            }
        }
    }
}

impl Tx {
    pub async fn exec(&mut self, sql: &str, params: &[Cell]) -> Result<u64, sqlx::Error> {
        match self {
            Tx::Sqlite(t) => bind_sqlite(sqlx::query(sql), params)
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected()),
            Tx::Pg(t) => bind_pg(sqlx::query(sql), params)
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected()),
        }
    }

    pub async fn rows(
        &mut self,
        sql: &str,
        params: &[Cell],
    ) -> Result<Vec<Vec<Cell>>, sqlx::Error> {
        match self {
            Tx::Sqlite(t) => {
                let rows = bind_sqlite(sqlx::query(sql), params)
                    .fetch_all(&mut **t)
                    .await?;
                rows.iter().map(sqlite_row).collect()
            }
            Tx::Pg(t) => {
                let rows = bind_pg(sqlx::query(sql), params)
                    .fetch_all(&mut **t)
                    .await?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Pg(t) => t.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.rollback().await,
            Tx::Pg(t) => t.rollback().await,
        }
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;
type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_sqlite<'q>(mut q: SqliteQuery<'q>, params: &[Cell]) -> SqliteQuery<'q> {
    for p in params {
        q = match p {
            Cell::Null => q.bind(None::<i64>),
            Cell::Int(i) => q.bind(*i),
            Cell::Real(f) => q.bind(*f),
            Cell::Text(s) => q.bind(s.clone()),
            Cell::Blob(b) => q.bind(b.clone()),
        };
    }
    q
}

/// Every PostgreSQL parameter is text; the statement casts it to the
/// column's type.
fn bind_pg<'q>(mut q: PgQuery<'q>, params: &[Cell]) -> PgQuery<'q> {
    for p in params {
        q = q.bind(p.pg_text());
    }
    q
}

fn sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Result<Vec<Cell>, sqlx::Error> {
    let mut out = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        #[derive(Clone, Copy)]
        enum Class {
            Null,
            Int,
            Real,
            Blob,
            Text,
        }
        // The storage class of this value, not the column's declared type.
        let class = {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                Class::Null
            } else {
                match raw.type_info().name() {
                    "INTEGER" => Class::Int,
                    "REAL" => Class::Real,
                    "BLOB" => Class::Blob,
                    _ => Class::Text,
                }
            }
        };
        out.push(match class {
            Class::Null => Cell::Null,
            Class::Int => Cell::Int(row.try_get_unchecked(i)?),
            Class::Real => Cell::Real(row.try_get_unchecked(i)?),
            Class::Blob => Cell::Blob(row.try_get_unchecked(i)?),
            Class::Text => Cell::Text(row.try_get_unchecked(i)?),
        });
    }
    Ok(out)
}

fn pg_row(row: &sqlx::postgres::PgRow) -> Result<Vec<Cell>, sqlx::Error> {
    let mut out = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let v: Option<String> = row.try_get(i)?;
        out.push(v.map_or(Cell::Null, Cell::Text));
    }
    Ok(out)
}

/// Builds one statement: SQL text plus its parameters, with `?` on SQLite
/// and `CAST($n AS type)` on PostgreSQL.
pub struct Stmt {
    pub engine: Engine,
    pub sql: String,
    pub params: Vec<Cell>,
}

impl Stmt {
    pub fn new(engine: Engine) -> Stmt {
        Stmt {
            engine,
            sql: String::new(),
            params: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Stmt {
        self.sql.push_str(text);
        self
    }

    /// A parameter for a value of `column`.
    pub fn param(&mut self, column: &Column, value: Cell) -> &mut Stmt {
        self.params.push(value);
        match self.engine {
            Engine::Sqlite => self.sql.push('?'),
            Engine::Postgres => {
                let n = self.params.len();
                self.sql.push_str(&format!("CAST(${n} AS {})", column.ty));
            }
        }
        self
    }

    /// `col = ?` (or `col IS NULL`) for each pair, joined by AND.
    pub fn conditions(&mut self, conds: &[(&Column, Cell)]) -> &mut Stmt {
        for (i, (column, value)) in conds.iter().enumerate() {
            if i > 0 {
                self.push(" AND ");
            }
            self.push(&column_sql(column));
            if *value == Cell::Null {
                self.push(" IS NULL");
            } else {
                self.push(" = ");
                self.param(column, value.clone());
            }
        }
        self
    }
}

/// The select list that reads a table's captured columns as cells.
pub fn select_list(engine: Engine, table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|c| match engine {
            Engine::Sqlite => column_sql(c),
            Engine::Postgres => format!("{}::text", column_sql(c)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ORDER BY` the primary key, so reads come back in a stable order.
pub fn order_by_pk(table: &Table) -> String {
    let cols: Vec<String> = table
        .pk
        .iter()
        .filter_map(|&i| table.columns.get(i))
        .map(column_sql)
        .collect();
    if cols.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", cols.join(", "))
    }
}

/// `FOR UPDATE` where the engine has row locks (SQLite's whole-database
/// write lock is already held).
pub fn lock_clause(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "",
        Engine::Postgres => " FOR UPDATE",
    }
}
