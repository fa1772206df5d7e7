//! The introspected schema of one database: tables, columns, primary keys
//! and foreign keys. Every identifier an action names is checked against it,
//! so nothing the agent writes reaches SQL text except through a quoted name
//! that exists.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use sqlx::Row;

use crate::cell::Cell;
use crate::db::{Engine, Pool};

/// The marker table the connector keeps in each target database; agents
/// cannot name it.
pub const MARKER_TABLE: &str = "recourse_applied";

/// What values a column takes, as far as checking an agent's JSON goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    /// Any number (PostgreSQL float and numeric, SQLite REAL affinity).
    Real,
    /// SQLite NUMERIC affinity: numbers, booleans and strings (dates).
    Numeric,
    Text,
    Bool,
    /// PostgreSQL json/jsonb: any JSON value.
    Json,
    /// SQLite BLOB affinity (no declared type): any scalar.
    Any,
    /// Other PostgreSQL types (dates, uuid, bytea, arrays…): strings or
    /// numbers in the type's text form; PostgreSQL parses them.
    Other,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// The declared type (SQLite) or `format_type` (PostgreSQL), used in
    /// `CAST($n AS …)`.
    pub ty: String,
    pub kind: Kind,
    pub not_null: bool,
    /// SQLite's `rowid` of a table whose primary key is not an alias of
    /// it: captured so a restored row gets its old rowid back, but never
    /// addressable by an agent.
    pub hidden: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FkAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl FkAction {
    /// Whether the action changes the referencing rows.
    pub fn changes_rows(self) -> bool {
        matches!(
            self,
            FkAction::Cascade | FkAction::SetNull | FkAction::SetDefault
        )
    }

    pub fn as_sql(self) -> &'static str {
        match self {
            FkAction::NoAction => "NO ACTION",
            FkAction::Restrict => "RESTRICT",
            FkAction::Cascade => "CASCADE",
            FkAction::SetNull => "SET NULL",
            FkAction::SetDefault => "SET DEFAULT",
        }
    }

    fn from_sqlite(s: &str) -> FkAction {
        match s.to_ascii_uppercase().as_str() {
            "CASCADE" => FkAction::Cascade,
            "SET NULL" => FkAction::SetNull,
            "SET DEFAULT" => FkAction::SetDefault,
            "RESTRICT" => FkAction::Restrict,
            _ => FkAction::NoAction,
        }
    }

    fn from_pg(s: &str) -> FkAction {
        match s {
            "c" => FkAction::Cascade,
            "n" => FkAction::SetNull,
            "d" => FkAction::SetDefault,
            "r" => FkAction::Restrict,
            _ => FkAction::NoAction,
        }
    }
}

/// `child.columns` references `parent.ref_columns`.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    pub child: String,
    pub columns: Vec<String>,
    pub parent: String,
    pub ref_columns: Vec<String>,
    pub on_update: FkAction,
    pub on_delete: FkAction,
}

#[derive(Debug, Clone)]
pub struct Table {
    /// The name in resource ids and actions (`t`, or `schema.t` on
    /// PostgreSQL outside the current schema).
    pub name: String,
    /// Quoted, qualified, ready for SQL text.
    pub sql_name: String,
    /// The columns captured and restored, in order (a hidden rowid first).
    pub columns: Vec<Column>,
    /// Indexes into `columns` of the primary key (or the rowid).
    pub pk: Vec<usize>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<(usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| !c.hidden && c.name == name)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn pk_of(&self, row: &[Cell]) -> Vec<Cell> {
        self.pk
            .iter()
            .filter_map(|&i| row.get(i).cloned())
            .collect()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// By canonical name.
    pub tables: BTreeMap<String, Table>,
    /// Other names a table answers to (`schema.t` for `t`).
    pub aliases: HashMap<String, String>,
    pub foreign_keys: Vec<ForeignKey>,
    /// PostgreSQL tables without a primary key: their rows cannot be named,
    /// so writes to them are not modelled.
    pub keyless: Vec<String>,
}

impl Schema {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables
            .get(name)
            .or_else(|| self.aliases.get(name).and_then(|n| self.tables.get(n)))
    }

    /// Foreign keys that reference `table`.
    pub fn referencing<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a ForeignKey> + 'a {
        self.foreign_keys
            .iter()
            .filter(move |fk| fk.parent == table)
    }

    pub async fn load(pool: &Pool) -> Result<Schema, sqlx::Error> {
        match pool {
            Pool::Sqlite(p) => load_sqlite(p).await,
            Pool::Pg(p) => load_pg(p).await,
        }
    }
}

pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQL text of a column reference.
pub fn column_sql(c: &Column) -> String {
    if c.hidden {
        "rowid".into()
    } else {
        quote(&c.name)
    }
}

fn sqlite_kind(declared: &str) -> Kind {
    // SQLite's affinity rules, in their order (section 3.1 of its docs).
    let d = declared.to_ascii_uppercase();
    if d.contains("INT") {
        Kind::Integer
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        Kind::Text
    } else if d.contains("BLOB") || d.is_empty() {
        Kind::Any
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        Kind::Real
    } else {
        Kind::Numeric
    }
}

fn pg_kind(typname: &str, category: &str) -> Kind {
    match typname {
        "int2" | "int4" | "int8" => Kind::Integer,
        "float4" | "float8" | "numeric" => Kind::Real,
        "bool" => Kind::Bool,
        "json" | "jsonb" => Kind::Json,
        _ if category == "S" => Kind::Text,
        _ => Kind::Other,
    }
}

async fn load_sqlite(pool: &sqlx::SqlitePool) -> Result<Schema, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    let mut schema = Schema::default();
    for name in names {
        if name == MARKER_TABLE {
            continue;
        }
        let without_rowid: bool = sqlx::query_scalar(
            "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?",
        )
        .bind(&name)
        .fetch_optional(pool)
        .await
        .ok()
        .flatten()
        .unwrap_or(false);
        let rows = sqlx::query(
            r#"SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid"#,
        )
        .bind(&name)
        .fetch_all(pool)
        .await?;
        let mut columns = Vec::new();
        let mut pk_order: Vec<(i64, usize)> = Vec::new();
        for row in rows {
            let col: String = row.try_get(0)?;
            let ty: String = row.try_get::<Option<String>, _>(1)?.unwrap_or_default();
            let not_null: i64 = row.try_get(2)?;
            let pk: i64 = row.try_get(3)?;
            if pk > 0 {
                pk_order.push((pk, columns.len()));
            }
            columns.push(Column {
                kind: sqlite_kind(&ty),
                name: col,
                ty,
                not_null: not_null != 0,
                hidden: false,
            });
        }
        pk_order.sort();
        let mut pk: Vec<usize> = pk_order.into_iter().map(|(_, i)| i).collect();
        // A single INTEGER PRIMARY KEY is the rowid itself; otherwise a rowid
        // table keeps a rowid of its own, which a restore must put back too
        // (and which names rows of a table without a primary key).
        let rowid_alias = match pk.as_slice() {
            [i] => columns
                .get(*i)
                .is_some_and(|c| c.ty.eq_ignore_ascii_case("INTEGER")),
            _ => false,
        };
        if !without_rowid && !rowid_alias {
            columns.insert(
                0,
                Column {
                    name: "rowid".into(),
                    ty: "INTEGER".into(),
                    kind: Kind::Integer,
                    not_null: true,
                    hidden: true,
                },
            );
            pk = if pk.is_empty() {
                vec![0]
            } else {
                pk.into_iter().map(|i| i + 1).collect()
            };
        }
        let fks = sqlx::query(
            r#"SELECT id, "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq"#,
        )
        .bind(&name)
        .fetch_all(pool)
        .await?;
        let mut by_id: BTreeMap<i64, ForeignKey> = BTreeMap::new();
        for row in fks {
            let id: i64 = row.try_get(0)?;
            let parent: String = row.try_get(1)?;
            let from: String = row.try_get(2)?;
            let to: Option<String> = row.try_get(3)?;
            let on_update: String = row.try_get(4)?;
            let on_delete: String = row.try_get(5)?;
            let fk = by_id.entry(id).or_insert_with(|| ForeignKey {
                child: name.clone(),
                columns: Vec::new(),
                parent,
                ref_columns: Vec::new(),
                on_update: FkAction::from_sqlite(&on_update),
                on_delete: FkAction::from_sqlite(&on_delete),
            });
            fk.columns.push(from);
            // `to` is NULL when the key references the parent's primary key.
            fk.ref_columns.push(to.unwrap_or_default());
        }
        schema.foreign_keys.extend(by_id.into_values());
        schema.tables.insert(
            name.clone(),
            Table {
                sql_name: quote(&name),
                name,
                columns,
                pk,
            },
        );
    }
    // Resolve implicit references to the parent's primary key.
    let mut fks = std::mem::take(&mut schema.foreign_keys);
    for fk in &mut fks {
        if fk.ref_columns.iter().any(String::is_empty) {
            if let Some(parent) = schema.tables.get(&fk.parent) {
                let pk: Vec<String> = parent
                    .pk
                    .iter()
                    .filter_map(|&i| parent.columns.get(i))
                    .filter(|c| !c.hidden)
                    .map(|c| c.name.clone())
                    .collect();
                if pk.len() == fk.columns.len() {
                    fk.ref_columns = pk;
                }
            }
        }
    }
    // A key naming a table that does not exist constrains nothing.
    fks.retain(|fk| schema.tables.contains_key(&fk.parent));
    schema.foreign_keys = fks;
    Ok(schema)
}

async fn load_pg(pool: &sqlx::PgPool) -> Result<Schema, sqlx::Error> {
    let current: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(pool)
        .await?;
    let path: Vec<String> =
        sqlx::query_scalar("SELECT s::text FROM unnest(current_schemas(false)) AS s")
            .fetch_all(pool)
            .await?;
    let tables = sqlx::query(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' \
         ORDER BY n.nspname, c.relname",
    )
    .fetch_all(pool)
    .await?;
    let mut names: HashMap<i64, (String, String, String)> = HashMap::new();
    for row in tables {
        let oid: i64 = row.try_get(0)?;
        let nsp: String = row.try_get(1)?;
        let rel: String = row.try_get(2)?;
        if rel == MARKER_TABLE {
            continue;
        }
        let canonical = if nsp == current {
            rel.clone()
        } else {
            format!("{nsp}.{rel}")
        };
        names.insert(oid, (canonical, nsp, rel));
    }
    let mut columns: HashMap<i64, Vec<Column>> = HashMap::new();
    let rows = sqlx::query(
        "SELECT a.attrelid::int8, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                (a.attgenerated <> '')::bool, t.typname::text, t.typcategory::text \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') \
           AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' \
         ORDER BY a.attrelid, a.attnum",
    )
    .fetch_all(pool)
    .await?;
    for row in rows {
        let oid: i64 = row.try_get(0)?;
        let generated: bool = row.try_get(4)?;
        if generated {
            // Computed by the database; neither captured nor written.
            continue;
        }
        let typname: String = row.try_get(5)?;
        let category: String = row.try_get(6)?;
        columns.entry(oid).or_default().push(Column {
            name: row.try_get(1)?,
            ty: row.try_get(2)?,
            kind: pg_kind(&typname, &category),
            not_null: row.try_get(3)?,
            hidden: false,
        });
    }
    let mut pks: HashMap<i64, Vec<String>> = HashMap::new();
    let rows = sqlx::query(
        "SELECT i.indrelid::int8, a.attname::text FROM pg_index i \
         CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
         WHERE i.indisprimary ORDER BY i.indrelid, k.ord",
    )
    .fetch_all(pool)
    .await?;
    for row in rows {
        pks.entry(row.try_get(0)?)
            .or_default()
            .push(row.try_get(1)?);
    }
    let mut schema = Schema::default();
    for (oid, (canonical, nsp, rel)) in &names {
        let cols = columns.remove(oid).unwrap_or_default();
        let pk_names = pks.get(oid).cloned().unwrap_or_default();
        let pk: Vec<usize> = pk_names
            .iter()
            .filter_map(|n| cols.iter().position(|c| &c.name == n))
            .collect();
        if pk.is_empty() || pk.len() != pk_names.len() {
            schema.keyless.push(canonical.clone());
        }
        let qualified = format!("{nsp}.{rel}");
        if &qualified != canonical {
            schema.aliases.insert(qualified, canonical.clone());
        }
        schema.tables.insert(
            canonical.clone(),
            Table {
                name: canonical.clone(),
                sql_name: format!("{}.{}", quote(nsp), quote(rel)),
                columns: cols,
                pk,
            },
        );
    }
    // Bare names of tables on the search path, first schema first.
    for nsp in path.iter().rev() {
        for (canonical, n, rel) in names.values() {
            if n == nsp && canonical != rel && !schema.tables.contains_key(rel) {
                schema.aliases.insert(rel.clone(), canonical.clone());
            }
        }
    }
    let rows = sqlx::query(
        "SELECT con.conrelid::int8, con.confrelid::int8, con.confupdtype::text, con.confdeltype::text, \
           ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(n, o) \
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), \
           ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(n, o) \
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o) \
         FROM pg_constraint con WHERE con.contype = 'f' ORDER BY con.conrelid, con.conname",
    )
    .fetch_all(pool)
    .await?;
    for row in rows {
        let child_oid: i64 = row.try_get(0)?;
        let parent_oid: i64 = row.try_get(1)?;
        let (Some(child), Some(parent)) = (names.get(&child_oid), names.get(&parent_oid)) else {
            continue;
        };
        let on_update: String = row.try_get(2)?;
        let on_delete: String = row.try_get(3)?;
        schema.foreign_keys.push(ForeignKey {
            child: child.0.clone(),
            columns: row.try_get(4)?,
            parent: parent.0.clone(),
            ref_columns: row.try_get(5)?,
            on_update: FkAction::from_pg(&on_update),
            on_delete: FkAction::from_pg(&on_delete),
        });
    }
    Ok(schema)
}

/// Checks an agent's JSON value against a column and turns it into a cell
/// to bind. The error says what does not fit.
pub fn to_cell(engine: Engine, column: &Column, value: &Value) -> Result<Cell, String> {
    let mismatch = || format!("`{value}` does not fit column type `{}`", column.ty);
    let pg = engine == Engine::Postgres;
    let text_of_number = |n: &serde_json::Number| {
        if pg {
            Cell::Text(n.to_string())
        } else if let Some(i) = n.as_i64() {
            Cell::Int(i)
        } else {
            n.as_f64()
                .map(Cell::Real)
                .unwrap_or(Cell::Text(n.to_string()))
        }
    };
    if value.is_null() {
        return Ok(Cell::Null);
    }
    if column.kind == Kind::Json {
        return Ok(Cell::Text(value.to_string()));
    }
    match (column.kind, value) {
        (Kind::Integer, Value::Number(n)) => match n.as_i64() {
            Some(i) if pg => Ok(Cell::Text(i.to_string())),
            Some(i) => Ok(Cell::Int(i)),
            None => Err(mismatch()),
        },
        (Kind::Real | Kind::Numeric | Kind::Any | Kind::Other, Value::Number(n)) => {
            Ok(text_of_number(n))
        }
        (Kind::Bool, Value::Bool(b)) => Ok(Cell::Text(b.to_string())),
        (Kind::Numeric | Kind::Any, Value::Bool(b)) => Ok(Cell::Int(i64::from(*b))),
        (Kind::Text | Kind::Numeric | Kind::Any | Kind::Other, Value::String(s)) => {
            Ok(Cell::Text(s.clone()))
        }
        _ => Err(mismatch()),
    }
}
