//! Every case runs on a SQLite file in a temp dir, and on PostgreSQL at
//! 127.0.0.1:5432 when it is reachable (each case in a schema of its own,
//! dropped at the end). `RECOURSE_REQUIRE_PG=1` turns "not reachable" into a
//! failure.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use recourse_core::Proposal;
use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use tempfile::TempDir;

use super::*;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    format!(
        "rc_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

const SQLITE_DDL: &str = r#"
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, score REAL, avatar BLOB, bio TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, total INTEGER);
CREATE TABLE items (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders(id) ON DELETE CASCADE, sku TEXT);
CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) ON DELETE SET NULL, body TEXT);
CREATE TABLE audit (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), what TEXT);
CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT);
CREATE TABLE x (id INTEGER PRIMARY KEY);
"#;

const PG_DDL: &str = r#"
CREATE TABLE {s}.users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, score DOUBLE PRECISION, avatar BYTEA, bio TEXT,
                        born DATE, meta JSONB, active BOOLEAN);
CREATE TABLE {s}.orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES {s}.users(id) ON DELETE CASCADE, total NUMERIC(12,2));
CREATE TABLE {s}.items (id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_id INTEGER REFERENCES {s}.orders(id) ON DELETE CASCADE, sku TEXT);
CREATE TABLE {s}.notes (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES {s}.users(id) ON DELETE SET NULL, body TEXT);
CREATE TABLE {s}.audit (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES {s}.users(id), what TEXT);
CREATE TABLE {s}.tags (code TEXT PRIMARY KEY, label TEXT);
CREATE TABLE {s}.x (id INTEGER PRIMARY KEY);
CREATE TABLE {s}.loose (a INTEGER, b TEXT);
"#;

fn big() -> String {
    "é0123456789".repeat(100_000)
}

fn seed_sql(engine: Engine, s: &str) -> String {
    let p = if s.is_empty() {
        String::new()
    } else {
        format!("{s}.")
    };
    let blob = match engine {
        Engine::Sqlite => "x'00ff10'",
        Engine::Postgres => "'\\x00ff10'::bytea",
    };
    let big = big();
    let users = match engine {
        Engine::Sqlite => format!(
            "INSERT INTO {p}users VALUES (1, 'ada', 'ada@example.com', 0.30000000000000004, {blob}, '{big}');
             INSERT INTO {p}users VALUES (2, 'bob', NULL, NULL, NULL, NULL);
             INSERT INTO {p}users VALUES (3, 'cy', 'cy@example.com', -1.5e300, NULL, 'short');"
        ),
        Engine::Postgres => format!(
            "INSERT INTO {p}users VALUES (1, 'ada', 'ada@example.com', 0.30000000000000004, {blob}, '{big}', '1815-12-10', '{{\"a\": [1, 2]}}', true);
             INSERT INTO {p}users VALUES (2, 'bob', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO {p}users VALUES (3, 'cy', 'cy@example.com', -1.5e300, NULL, 'short', NULL, NULL, false);"
        ),
    };
    let items = match engine {
        Engine::Sqlite => format!(
            "INSERT INTO {p}items VALUES (100, 10, 'pen'), (101, 10, 'ink'), (102, 11, 'pad'), (103, 12, 'cup');"
        ),
        Engine::Postgres => format!(
            "INSERT INTO {p}items OVERRIDING SYSTEM VALUE VALUES (100, 10, 'pen'), (101, 10, 'ink'), (102, 11, 'pad'), (103, 12, 'cup');"
        ),
    };
    format!(
        "{users}
         INSERT INTO {p}orders VALUES (10, 1, 5), (11, 1, 7), (12, 2, 9);
         {items}
         INSERT INTO {p}notes VALUES (20, 1, 'likes tea'), (21, 2, 'hm');
         INSERT INTO {p}tags VALUES ('b', 'second'), ('a', 'first'), ('c', 'third');
         INSERT INTO {p}x VALUES (1);"
    )
}

enum Backend {
    Sqlite { path: PathBuf, _dir: TempDir },
    Pg { schema: String, admin: sqlx::PgPool },
}

struct Env {
    conn: SqlConnector,
    backend: Backend,
    vault: TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Backend::Pg { schema, .. } = &self.backend {
            let _ = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "test",
                    "-q",
                    "-c",
                ])
                .arg(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE; DELETE FROM {MARKER_TABLE} WHERE write_id LIKE '%-{schema}'"
                ))
                .output();
        }
    }
}

impl Env {
    fn engine(&self) -> Engine {
        match self.backend {
            Backend::Sqlite { .. } => Engine::Sqlite,
            Backend::Pg { .. } => Engine::Postgres,
        }
    }

    /// A write id unique to this run: PostgreSQL's marker table outlives
    /// the test's schema.
    fn w(&self, id: &str) -> String {
        match &self.backend {
            Backend::Sqlite { .. } => id.to_string(),
            Backend::Pg { schema, .. } => format!("{id}-{schema}"),
        }
    }

    /// The table's name in actions and resource ids.
    fn t(&self, table: &str) -> String {
        match &self.backend {
            Backend::Sqlite { .. } => table.to_string(),
            Backend::Pg { schema, .. } => format!("{schema}.{table}"),
        }
    }

    /// Runs SQL behind the connector's back (`{s}.` is the table prefix).
    async fn sql(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let pool =
                    sqlx::SqlitePool::connect_with(SqliteConnectOptions::new().filename(path))
                        .await
                        .unwrap();
                sqlx::raw_sql(&sql.replace("{s}.", ""))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            Backend::Pg { schema, admin } => {
                sqlx::raw_sql(&sql.replace("{s}", schema))
                    .execute(admin)
                    .await
                    .unwrap();
            }
        }
    }

    /// The data of the fixture's tables, as the engine's own dump tool
    /// prints it. PostgreSQL's COPY order is the heap's, which a re-inserted
    /// row changes: rows are sorted within each COPY block.
    fn dump(&self) -> String {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let out = Command::new("sqlite3")
                    .arg(path)
                    .arg(".dump")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8(out.stdout)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.contains(MARKER_TABLE))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            Backend::Pg { schema, .. } => {
                let out = Command::new("pg_dump")
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "--data-only",
                        "-n",
                        schema,
                        "test",
                    ])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                normalize_pg_dump(&String::from_utf8(out.stdout).unwrap())
            }
        }
    }

    fn action(&self, v: Value) -> Value {
        let mut v = v;
        if let Some(t) = v.get("table").and_then(Value::as_str).map(String::from) {
            v["table"] = json!(self.t(&t));
        }
        v
    }
}

/// Compares two dumps and shows the first difference, not megabytes.
#[track_caller]
fn same_dump(a: &str, b: &str) {
    if a != b {
        let (n, (x, y)) = a
            .lines()
            .zip(b.lines())
            .enumerate()
            .find(|(_, (x, y))| x != y)
            .unwrap_or((0, ("(length differs)", "")));
        let cut = |s: &str| s.chars().take(300).collect::<String>();
        panic!("dumps differ at line {n}:\n  {}\n  {}", cut(x), cut(y));
    }
}

#[track_caller]
fn other_dump(a: &str, b: &str) {
    assert!(a != b, "the dump did not change");
}

fn normalize_pg_dump(dump: &str) -> String {
    let mut out = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let mut in_copy = false;
    for line in dump.lines() {
        // pg_dump 15.14+ guards its output with a random key per run.
        if line.starts_with("\\restrict ") || line.starts_with("\\unrestrict ") {
            continue;
        }
        if in_copy {
            if line == "\\." {
                block.sort_unstable();
                out.append(&mut block);
                out.push(line);
                in_copy = false;
            } else {
                block.push(line);
            }
        } else {
            if line.starts_with("COPY ") {
                in_copy = true;
            }
            out.push(line);
        }
    }
    out.join("\n")
}

async fn sqlite_env() -> Env {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("main.db");
    let pool = sqlx::SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql(SQLITE_DDL).execute(&pool).await.unwrap();
    sqlx::raw_sql(&seed_sql(Engine::Sqlite, ""))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let vault = TempDir::new().unwrap();
    let conn = SqlConnector::new(
        vec![("main".into(), format!("sqlite:{}", path.display()))],
        vault.path().to_path_buf(),
    )
    .await
    .unwrap();
    Env {
        conn,
        backend: Backend::Sqlite { path, _dir: dir },
        vault,
    }
}

async fn pg_env(tag: &str) -> Option<Env> {
    let admin = match sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect(PG_URL)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            if std::env::var("RECOURSE_REQUIRE_PG").as_deref() == Ok("1") {
                panic!("PostgreSQL not reachable at {PG_URL} and RECOURSE_REQUIRE_PG=1: {e}");
            }
            // Straight to stderr: the harness captures `println!`.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: PostgreSQL not reachable at {PG_URL}: {e}"
            );
            return None;
        }
    };
    let schema = unique(tag);
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA {schema}; {}",
        PG_DDL.replace("{s}", &schema)
    ))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::raw_sql(&seed_sql(Engine::Postgres, &schema))
        .execute(&admin)
        .await
        .unwrap();
    let vault = TempDir::new().unwrap();
    let conn = SqlConnector::new(
        vec![("main".into(), PG_URL.into())],
        vault.path().to_path_buf(),
    )
    .await
    .unwrap();
    Some(Env {
        conn,
        backend: Backend::Pg { schema, admin },
        vault,
    })
}

fn proposal(action: Value) -> Proposal {
    Proposal {
        action,
        ..Proposal::default()
    }
}

/// Runs a case on SQLite, then on PostgreSQL when reachable.
macro_rules! both {
    ($name:ident, $case:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                $case(&sqlite_env().await).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(env) = pg_env(stringify!($name)).await {
                    $case(&env).await;
                }
            }
        }
    };
}

both!(update_then_restore, case_update_then_restore);
both!(
    cascading_delete_then_restore,
    case_cascading_delete_then_restore
);
both!(insert_then_restore, case_insert_then_restore);
both!(
    drift_stops_force_overwrites,
    case_drift_stops_force_overwrites
);
both!(execute_twice_applies_once, case_execute_twice_applies_once);
both!(bad_input_writes_nothing, case_bad_input_writes_nothing);
both!(text_keys_and_hidden_rowids, case_text_keys);
both!(catalog_from_foreign_keys, case_catalog);
both!(many_rows_touch_the_table, case_many_rows);
both!(
    restore_again_only_verifies,
    case_restore_again_only_verifies
);

async fn case_update_then_restore(env: &Env) {
    let before = env.dump();
    let action = env.action(
        json!({"connector": "sql", "database": "main", "op": "update", "table": "users",
        "where": {"id": 1}, "set": {"name": "ada lovelace", "score": 1.25, "bio": null}}),
    );
    let plan = env.conn.plan(&env.w("w-upd"), &action).await.unwrap();
    let users = env.t("users");
    assert_eq!(plan.touches, vec![format!("sql:main/{users}/1")]);
    let step = plan.step.clone().unwrap();
    assert_eq!(step.modelled_by.as_deref(), Some("sql"));
    assert_eq!(step.op, json!({"connector": "sql", "op": "restore"}));
    let ev = &step.requires[0];
    assert_eq!(ev.id, format!("before-{}", env.w("w-upd")));
    assert_eq!(ev.kind, EvidenceKind::BeforeImage);
    let location = format!(
        "fs:{}/{}",
        std::fs::canonicalize(env.vault.path()).unwrap().display(),
        env.w("w-upd")
    );
    assert_eq!(ev.location.as_deref(), Some(location.as_str()));
    // Referencing tables are reached, the cascading ones say so.
    let to_orders = plan
        .edges
        .iter()
        .find(|e| {
            e.from == format!("sql:main/{users}") && e.to == format!("sql:main/{}", env.t("orders"))
        })
        .unwrap();
    assert!(to_orders
        .why
        .as_deref()
        .unwrap()
        .contains("ON DELETE CASCADE"));
    assert!(plan
        .edges
        .iter()
        .any(|e| e.from == format!("sql:main/{users}/1") && e.to.ends_with("orders")));
    assert!(plan
        .edges
        .iter()
        .any(|e| e.from == "sql:main" && e.to == format!("sql:main/{users}")));
    // Every edge names a resource of the plan.
    for e in &plan.edges {
        assert!(plan.resources.iter().any(|r| r.id == e.from), "{e:?}");
        assert!(plan.resources.iter().any(|r| r.id == e.to), "{e:?}");
    }

    let seen = env.conn.observe(&env.w("w-upd"), ev).await.unwrap();
    assert!(seen.present, "{seen:?}");
    let p = proposal(action);
    assert_eq!(
        env.conn
            .applied(&env.w("w-upd"), &p, &Value::Null)
            .await
            .unwrap(),
        Some(false)
    );
    let capture = env.conn.capture(&env.w("w-upd"), &p).await.unwrap();
    let outcome = env
        .conn
        .execute(&env.w("w-upd"), &p, &capture)
        .await
        .unwrap();
    assert_eq!(outcome["rows_affected"], 1);
    assert_eq!(outcome["after"].as_array().unwrap().len(), 1);
    assert_eq!(
        env.conn
            .applied(&env.w("w-upd"), &p, &capture)
            .await
            .unwrap(),
        Some(true)
    );
    let seen = env.conn.observe(&env.w("w-upd"), ev).await.unwrap();
    assert!(seen.present && seen.captured_at.is_some(), "{seen:?}");
    other_dump(&env.dump(), &before);

    // An outcome that does not vouch for the vault record stops the rollback.
    let mut forged = outcome.clone();
    forged["vault_sha256"] = json!("00");
    let err = env
        .conn
        .restore(&env.w("w-upd"), &p, &capture, Some(&forged), true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("changed since the write"), "{err}");

    let report = env
        .conn
        .restore(&env.w("w-upd"), &p, &capture, Some(&outcome), false)
        .await
        .unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(report.items.len(), 1);
    assert_eq!(report.items[0].resource, format!("sql:main/{users}/1"));
    same_dump(&env.dump(), &before);
}

async fn case_cascading_delete_then_restore(env: &Env) {
    let before = env.dump();
    let action = env.action(json!({"connector": "sql", "database": "main", "op": "delete", "table": "users", "where": {"id": 1}}));
    let plan = env.conn.plan(&env.w("w-del"), &action).await.unwrap();
    let step = plan.step.unwrap();
    // The step restores the row and the tables the delete reaches.
    for t in ["orders", "items", "notes", "audit"] {
        assert!(
            step.restores.contains(&format!("sql:main/{}", env.t(t))),
            "{t}: {:?}",
            step.restores
        );
    }
    let p = proposal(action);
    let outcome = env
        .conn
        .execute(&env.w("w-del"), &p, &Value::Null)
        .await
        .unwrap();
    assert_eq!(outcome["rows_affected"], 1);
    // users 1, orders 10 and 11, items 100-102, note 20 (set null).
    assert_eq!(outcome["rows_captured"], 7, "{outcome}");
    let after = env.dump();
    other_dump(&after, &before);
    assert!(
        !after.contains("likes tea\t1") && !after.contains("'pen'") && !after.contains("\tpen")
    );

    let report = env
        .conn
        .restore(&env.w("w-del"), &p, &Value::Null, Some(&outcome), false)
        .await
        .unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(report.items.len(), 7);
    assert!(report
        .items
        .iter()
        .all(|i| i.status == RestoreStatus::Restored));
    same_dump(&env.dump(), &before);
}

async fn case_insert_then_restore(env: &Env) {
    let before = env.dump();
    let action = env.action(json!({"connector": "sql", "database": "main", "op": "insert", "table": "users",
        "values": [{"id": 7, "name": "eve", "score": 2.5}, {"id": 8, "name": "mal", "bio": big()}]}));
    let plan = env.conn.plan(&env.w("w-ins"), &action).await.unwrap();
    let users = env.t("users");
    assert_eq!(
        plan.touches,
        vec![format!("sql:main/{users}/7"), format!("sql:main/{users}/8")]
    );
    let p = proposal(action);
    let outcome = env
        .conn
        .execute(&env.w("w-ins"), &p, &Value::Null)
        .await
        .unwrap();
    assert_eq!(outcome["rows_affected"], 2);
    // A row without its key: the table is touched, the database assigns it.
    let action = env.action(
        json!({"connector": "sql", "database": "main", "op": "insert", "table": "notes",
        "values": {"body": "new", "user_id": 2}}),
    );
    if env.engine() == Engine::Sqlite {
        let plan = env.conn.plan(&env.w("w-ins2"), &action).await.unwrap();
        assert_eq!(plan.touches, vec![format!("sql:main/{}", env.t("notes"))]);
        let p2 = proposal(action);
        env.conn
            .execute(&env.w("w-ins2"), &p2, &Value::Null)
            .await
            .unwrap();
        let report = env
            .conn
            .restore(&env.w("w-ins2"), &p2, &Value::Null, None, false)
            .await
            .unwrap();
        assert!(report.verified, "{report:?}");
    }
    let report = env
        .conn
        .restore(&env.w("w-ins"), &p, &Value::Null, Some(&outcome), false)
        .await
        .unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(report.items.len(), 2);
    same_dump(&env.dump(), &before);
}

async fn case_drift_stops_force_overwrites(env: &Env) {
    let before = env.dump();
    let action = env.action(
        json!({"connector": "sql", "database": "main", "op": "update", "table": "users",
        "where": {"name": "bob"}, "set": {"email": "bob@example.com"}}),
    );
    let p = proposal(action);
    env.conn
        .execute(&env.w("w-drift"), &p, &Value::Null)
        .await
        .unwrap();
    env.sql("UPDATE {s}.users SET email = 'someone-else@example.com' WHERE id = 2")
        .await;
    let drifted = env.dump();

    let report = env
        .conn
        .restore(&env.w("w-drift"), &p, &Value::Null, None, false)
        .await
        .unwrap();
    assert!(!report.verified);
    assert!(!report.forced);
    assert_eq!(report.items.len(), 1);
    assert_eq!(report.items[0].status, RestoreStatus::Drift);
    let detail = report.items[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("bob@example.com") && detail.contains("someone-else@example.com"),
        "{detail}"
    );
    same_dump(&env.dump(), &drifted);

    let report = env
        .conn
        .restore(&env.w("w-drift"), &p, &Value::Null, None, true)
        .await
        .unwrap();
    assert!(report.verified && report.forced, "{report:?}");
    assert!(report.items[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("forced"));
    same_dump(&env.dump(), &before);

    // A row inserted by the write and referenced since: deleting it would
    // take rows the write never touched.
    let ins = proposal(env.action(
        json!({"connector": "sql", "database": "main", "op": "insert", "table": "users",
        "values": {"id": 9, "name": "zed"}}),
    ));
    env.conn
        .execute(&env.w("w-drift2"), &ins, &Value::Null)
        .await
        .unwrap();
    env.sql("INSERT INTO {s}.orders VALUES (99, 9, 1)").await;
    let report = env
        .conn
        .restore(&env.w("w-drift2"), &ins, &Value::Null, None, false)
        .await
        .unwrap();
    assert!(!report.verified);
    assert_eq!(report.items[0].status, RestoreStatus::Drift);
    assert!(report.items[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("orders"));
}

async fn case_execute_twice_applies_once(env: &Env) {
    let action = env.action(
        json!({"connector": "sql", "database": "main", "op": "insert", "table": "audit",
        "values": {"id": 50, "what": "xyzzy"}}),
    );
    let p = proposal(action);
    let first = env
        .conn
        .execute(&env.w("w-once"), &p, &Value::Null)
        .await
        .unwrap();
    assert_eq!(first["already_applied"], false);
    let second = env
        .conn
        .execute(&env.w("w-once"), &p, &Value::Null)
        .await
        .unwrap();
    assert_eq!(second["already_applied"], true);
    assert_eq!(second["rows_affected"], 1);
    assert_eq!(
        env.conn
            .applied(&env.w("w-once"), &p, &Value::Null)
            .await
            .unwrap(),
        Some(true)
    );
    assert_eq!(
        env.conn
            .applied(&env.w("w-never"), &p, &Value::Null)
            .await
            .unwrap(),
        Some(false)
    );
    let dump = env.dump();
    let rows = dump.lines().filter(|l| l.contains("xyzzy")).count();
    assert_eq!(rows, 1);

    // An update run twice under one id changes the row once.
    let upd = proposal(env.action(
        json!({"connector": "sql", "database": "main", "op": "update", "table": "orders",
        "where": {"id": 12}, "set": {"total": 1}}),
    ));
    env.conn
        .execute(&env.w("w-once2"), &upd, &Value::Null)
        .await
        .unwrap();
    env.sql("UPDATE {s}.orders SET total = 2 WHERE id = 12")
        .await;
    env.conn
        .execute(&env.w("w-once2"), &upd, &Value::Null)
        .await
        .unwrap();
    let dump = env.dump();
    assert!(dump.contains("(12,2,2)") || dump.contains("12\t2\t2"));
}

async fn case_bad_input_writes_nothing(env: &Env) {
    let before = env.dump();
    let invalid = |field: &str, e: ConnectorError| match e {
        ConnectorError::Invalid { field: f, message } => {
            assert_eq!(f, field, "{message}");
            message
        }
        other => panic!("expected invalid {field}, got {other:?}"),
    };
    let base = |extra: Value| {
        let mut a = json!({"connector": "sql", "database": "main", "op": "update", "table": env.t("users"),
            "where": {"id": 1}, "set": {"name": "x"}});
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        a
    };
    let insert = |values: Value| {
        json!({"connector": "sql", "database": "main", "op": "insert", "table": env.t("users"),
            "values": values})
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            base(json!({"database": "nope"})),
            "action.database",
            "unknown database",
        ),
        (
            base(json!({"table": "nope"})),
            "action.table",
            "unknown table",
        ),
        (
            base(json!({"table": "users; DROP TABLE x"})),
            "action.table",
            "unknown table",
        ),
        (
            base(json!({"table": "recourse_applied"})),
            "action.table",
            "unknown table",
        ),
        (
            base(json!({"where": {"nope": 1}})),
            "action.where.nope",
            "unknown column",
        ),
        (
            base(json!({"where": {"id = 1 OR 1=1 --": 1}})),
            "action.where.id = 1 OR 1=1 --",
            "unknown column",
        ),
        (
            base(json!({"set": {"name\"; DROP TABLE x; --": "y"}})),
            "action.set.name\"; DROP TABLE x; --",
            "unknown column",
        ),
        (
            base(json!({"where": {"id": "one"}})),
            "action.where.id",
            "does not fit",
        ),
        (
            base(json!({"where": {"id": 1.5}})),
            "action.where.id",
            "does not fit",
        ),
        (
            base(json!({"set": {"name": 5}})),
            "action.set.name",
            "does not fit",
        ),
        (
            base(json!({"set": {"name": null}})),
            "action.set.name",
            "NOT NULL",
        ),
        (base(json!({"set": {}})), "action.set", "at least one"),
        (base(json!({"op": "merge"})), "action.op", "unknown op"),
        (
            base(json!({"op": "delete"})),
            "action.set",
            "unknown field for op `delete`",
        ),
        (
            insert(json!([1])),
            "action.values",
            "non-empty array of objects",
        ),
        (
            base(json!({"where": [1]})),
            "action.where",
            "expected a map",
        ),
        (insert(json!([])), "action.values", "non-empty"),
        (
            insert(json!([{"id": 5, "name": "a"}, {"nick": "b"}])),
            "action.values[1].nick",
            "unknown column",
        ),
    ];
    for (action, field, words) in cases {
        let msg = invalid(
            field,
            env.conn.plan(&env.w("w-bad"), &action).await.unwrap_err(),
        );
        assert!(msg.contains(words), "{field}: {msg}");
        let p = proposal(action);
        invalid(
            field,
            env.conn
                .execute(&env.w("w-bad"), &p, &Value::Null)
                .await
                .unwrap_err(),
        );
    }
    // Unbounded and unmodelled changes are refused.
    for action in [
        base(json!({"where": {}})),
        base(json!({"where": null})),
        json!({"connector": "sql", "database": "main", "op": "delete", "table": env.t("users"),
            "where": {}}),
    ] {
        match env.conn.plan(&env.w("w-bad"), &action).await.unwrap_err() {
            ConnectorError::Refuse { code, .. } => assert_eq!(code, ReasonCode::Unmodelled),
            other => panic!("expected refuse, got {other:?}"),
        }
        assert!(env
            .conn
            .execute(&env.w("w-bad"), &proposal(action), &Value::Null)
            .await
            .is_err());
    }
    match env
        .conn
        .plan(&env.w("w-bad"), &base(json!({"set": {"id": 9}})))
        .await
        .unwrap_err()
    {
        ConnectorError::Refuse { code, message } => {
            assert_eq!(code, ReasonCode::Unmodelled);
            assert!(message.contains("primary key"), "{message}");
        }
        other => panic!("expected refuse, got {other:?}"),
    }
    // A value is data, never SQL.
    let action = base(json!({"where": {"name": "ada' OR '1'='1"}}));
    let plan = env.conn.plan(&env.w("w-bad"), &action).await.unwrap();
    assert_eq!(plan.touches, vec![format!("sql:main/{}", env.t("users"))]);
    let outcome = env
        .conn
        .execute(&env.w("w-bad-value"), &proposal(action), &Value::Null)
        .await
        .unwrap();
    assert_eq!(outcome["rows_affected"], 0);
    // A constraint violation is the caller's mistake, and rolls back.
    let dup = insert(json!([{"id": 60, "name": "new"}, {"id": 1, "name": "dup"}]));
    invalid(
        "action",
        env.conn
            .execute(&env.w("w-dup"), &proposal(dup.clone()), &Value::Null)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        env.conn
            .applied(&env.w("w-dup"), &proposal(dup), &Value::Null)
            .await
            .unwrap(),
        Some(false)
    );
    // There is no raw statement: nothing could capture what it changes.
    let raw =
        json!({"connector": "sql", "database": "main", "op": "raw", "sql": "DELETE FROM users"});
    let e = env.conn.plan(&env.w("w-raw"), &raw).await.unwrap_err();
    assert!(invalid("action.op", e).contains("unknown op `raw`"));
    // Bad write ids never reach the vault.
    invalid(
        "write_id",
        env.conn
            .plan("../escape", &base(json!({})))
            .await
            .unwrap_err(),
    );

    same_dump(&env.dump(), &before);
    let left: Vec<_> = std::fs::read_dir(env.vault.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| *n != env.w("w-bad-value"))
        .collect();
    assert!(left.is_empty(), "vault holds {left:?}");
    if env.engine() == Engine::Postgres {
        match env
            .conn
            .plan(&env.w("w-bad"), &base(json!({"table": env.t("loose")})))
            .await
            .unwrap_err()
        {
            ConnectorError::Refuse { code, .. } => assert_eq!(code, ReasonCode::Unmodelled),
            other => panic!("expected refuse, got {other:?}"),
        }
        // PostgreSQL parses typed text: a bad date is the caller's mistake.
        let err = env
            .conn
            .plan(
                &env.w("w-bad"),
                &base(json!({"where": {"born": "not a date"}})),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectorError::Invalid { .. }), "{err:?}");
    }
}

async fn case_text_keys(env: &Env) {
    // Tags have a text key (and, on SQLite, a rowid of their own, which the
    // restore must give back for the dump to match).
    let before = env.dump();
    let p = proposal(env.action(
        json!({"connector": "sql", "database": "main", "op": "delete", "table": "tags",
        "where": {"code": "b"}}),
    ));
    let plan = env.conn.plan(&env.w("w-tag"), &p.action).await.unwrap();
    let tags = env.t("tags");
    assert_eq!(plan.touches, vec![format!("sql:main/{tags}/b")]);
    env.conn
        .execute(&env.w("w-tag"), &p, &Value::Null)
        .await
        .unwrap();
    let report = env
        .conn
        .restore(&env.w("w-tag"), &p, &Value::Null, None, false)
        .await
        .unwrap();
    assert!(report.verified, "{report:?}");
    same_dump(&env.dump(), &before);
}

async fn case_catalog(env: &Env) {
    let catalog = env.conn.catalog("main").await.unwrap();
    let users = format!("sql:main/{}", env.t("users"));
    let orders = format!("sql:main/{}", env.t("orders"));
    let items = format!("sql:main/{}", env.t("items"));
    for id in ["sql:main", users.as_str(), orders.as_str(), items.as_str()] {
        assert!(catalog.resources.iter().any(|r| r.id == id), "{id}");
    }
    assert!(!catalog
        .resources
        .iter()
        .any(|r| r.id.contains(MARKER_TABLE)));
    let e = catalog
        .edges
        .iter()
        .find(|e| e.from == users && e.to == orders)
        .unwrap();
    assert!(e.why.as_deref().unwrap().contains("ON DELETE CASCADE"));
    assert!(catalog
        .edges
        .iter()
        .any(|e| e.from == orders && e.to == items));
    assert!(catalog
        .edges
        .iter()
        .any(|e| e.from == "sql:main" && e.to == users));
    if let Backend::Sqlite { path, .. } = &env.backend {
        let imported = import_catalog("main", &format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        assert_eq!(imported, catalog);
    }
    assert!(env.conn.catalog("nope").await.is_err());
}

async fn case_many_rows(env: &Env) {
    let before = env.dump();
    env.sql(
        "CREATE TABLE {s}.bulk (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, val INTEGER);
         INSERT INTO {s}.bulk (id, grp, val) SELECT n, n % 3, n FROM (WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 600) SELECT n FROM c) AS t;",
    )
    .await;
    let before_bulk = env.dump();
    other_dump(&before, &before_bulk);
    let p = proposal(env.action(
        json!({"connector": "sql", "database": "main", "op": "update", "table": "bulk",
        "where": {"grp": 1}, "set": {"val": 0}}),
    ));
    let plan = env.conn.plan(&env.w("w-bulk"), &p.action).await.unwrap();
    assert_eq!(plan.touches, vec![format!("sql:main/{}", env.t("bulk"))]);
    let outcome = env
        .conn
        .execute(&env.w("w-bulk"), &p, &Value::Null)
        .await
        .unwrap();
    assert_eq!(outcome["rows_affected"], 200);
    let report = env
        .conn
        .restore(&env.w("w-bulk"), &p, &Value::Null, None, false)
        .await
        .unwrap();
    assert!(report.verified);
    assert_eq!(report.items.len(), 200);
    same_dump(&env.dump(), &before_bulk);
}

#[tokio::test]
async fn pgbench_tables_round_trip() {
    let Some(env) = pg_env("pgbench").await else {
        return;
    };
    let Backend::Pg { schema, .. } = &env.backend else {
        return;
    };
    let out = Command::new("pgbench")
        .args([
            "-i",
            "-q",
            "-s",
            "1",
            "--foreign-keys",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "test",
        ])
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = env.dump();
    let tellers = format!("{schema}.pgbench_tellers");
    let p = proposal(
        json!({"connector": "sql", "database": "main", "op": "update", "table": tellers,
        "where": {"bid": 1}, "set": {"tbalance": 42, "filler": "changed"}}),
    );
    let plan = env.conn.plan(&env.w("w-pgb"), &p.action).await.unwrap();
    assert_eq!(plan.touches.len(), 10);
    // pgbench's foreign keys: accounts and history reference branches.
    let accounts = format!("sql:main/{schema}.pgbench_history");
    assert!(
        plan.step.unwrap().restores.contains(&accounts),
        "history references tellers"
    );
    env.conn
        .execute(&env.w("w-pgb"), &p, &Value::Null)
        .await
        .unwrap();
    other_dump(&env.dump(), &before);
    let report = env
        .conn
        .restore(&env.w("w-pgb"), &p, &Value::Null, None, false)
        .await
        .unwrap();
    assert!(report.verified, "{report:?}");
    same_dump(&env.dump(), &before);
    // Deleting a branch that accounts reference (no cascade) fails and
    // leaves nothing behind.
    let del = proposal(
        json!({"connector": "sql", "database": "main", "op": "delete",
        "table": format!("{schema}.pgbench_branches"), "where": {"bid": 1}}),
    );
    let err = env
        .conn
        .execute(&env.w("w-pgb-del"), &del, &Value::Null)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Invalid { .. }), "{err:?}");
    assert_eq!(
        env.conn
            .applied(&env.w("w-pgb-del"), &del, &Value::Null)
            .await
            .unwrap(),
        Some(false)
    );
    assert!(!env.vault.path().join(env.w("w-pgb-del")).exists());
    same_dump(&env.dump(), &before);
}

#[tokio::test]
async fn new_refuses_bad_names_and_unreachable_databases() {
    let vault = TempDir::new().unwrap();
    let err = SqlConnector::new(
        vec![("a/b".into(), "sqlite::memory:".into())],
        vault.path().into(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SqlError::Name(_)));
    let err = SqlConnector::new(vec![("a".into(), "mysql://x".into())], vault.path().into())
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Connect { .. }), "{err}");
    let missing = vault.path().join("missing.db");
    let err = SqlConnector::new(
        vec![("a".into(), format!("sqlite:{}", missing.display()))],
        vault.path().into(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SqlError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn observe_ignores_other_evidence_and_reports_missing_vault_files() {
    let env = sqlite_env().await;
    let other: Evidence =
        serde_json::from_value(json!({"id": "snap", "kind": "snapshot", "location": "vault:x"}))
            .unwrap();
    assert!(env.conn.observe("w1", &other).await.is_none());
    let restore = env
        .conn
        .restore(
            "w1",
            &proposal(json!({"database": "main"})),
            &Value::Null,
            None,
            false,
        )
        .await;
    assert!(
        matches!(restore, Err(ConnectorError::Io(ref m)) if m.contains("not in the vault")),
        "{restore:?}"
    );
}

/// What the gate does after a crash between the rollback's commit and its
/// record: it calls `restore` again. The rows are the before-images now,
/// not the after-images: that is no drift, and nothing is written again.
async fn case_restore_again_only_verifies(env: &Env) {
    let before = env.dump();
    let update = json!({"connector": "sql", "database": "main", "op": "update", "table": "users",
                        "where": {"id": 1}, "set": {"name": "ada lovelace", "bio": null}});
    let writes = [
        ("w-again-upd", update.clone(), 1),
        (
            "w-again-del",
            json!({"connector": "sql", "database": "main", "op": "delete", "table": "users",
                   "where": {"id": 1}}),
            7,
        ),
    ];
    for (id, action, rows) in writes {
        let id = env.w(id);
        let p = proposal(env.action(action));
        let outcome = env.conn.execute(&id, &p, &Value::Null).await.unwrap();
        let first = env
            .conn
            .restore(&id, &p, &Value::Null, Some(&outcome), false)
            .await
            .unwrap();
        assert!(first.verified, "{first:?}");
        same_dump(&env.dump(), &before);
        for _ in 0..2 {
            let again = env
                .conn
                .restore(&id, &p, &Value::Null, Some(&outcome), false)
                .await
                .unwrap();
            assert!(again.verified && !again.forced, "{again:?}");
            assert_eq!(again.items.len(), rows, "{again:?}");
            for item in &again.items {
                assert_eq!(item.status, RestoreStatus::Restored, "{again:?}");
                assert!(
                    item.detail.as_deref().unwrap().contains("already restored"),
                    "{again:?}"
                );
            }
            same_dump(&env.dump(), &before);
        }
    }
    // A row changed after the rollback: verification says so, and writes
    // nothing (the rollback is done; this is not its drift to overwrite).
    env.sql("UPDATE {s}.users SET name = 'changed later' WHERE id = 1")
        .await;
    let changed = env.dump();
    let id = env.w("w-again-upd");
    let p = proposal(env.action(update));
    let report = env
        .conn
        .restore(&id, &p, &Value::Null, None, true)
        .await
        .unwrap();
    assert!(!report.verified, "{report:?}");
    assert_eq!(
        report.items[0].status,
        RestoreStatus::Mismatch,
        "{report:?}"
    );
    same_dump(&env.dump(), &changed);
}

#[tokio::test]
async fn transient_failures_are_unavailable_and_a_lost_commit_is_uncertain() {
    // A real SQLITE_BUSY: another connection holds the write lock.
    let dir = TempDir::new().unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("busy.db"))
        .create_if_missing(true);
    let holder = sqlx::SqlitePool::connect_with(options.clone())
        .await
        .unwrap();
    let mut held = holder.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        .execute(&mut *held)
        .await
        .unwrap();
    let other = sqlx::SqlitePool::connect_with(options.busy_timeout(std::time::Duration::ZERO))
        .await
        .unwrap();
    let busy = other.begin_with("BEGIN IMMEDIATE").await.unwrap_err();
    let mapped = sql_error("opening a transaction", busy);
    assert!(
        matches!(mapped, ConnectorError::Unavailable(_)),
        "{mapped:?}"
    );
    held.rollback().await.unwrap();

    // Nothing listens on port 1.
    let refused = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect("postgres://postgres@127.0.0.1:1/test")
        .await
        .unwrap_err();
    let mapped = sql_error("connecting", refused);
    assert!(
        matches!(mapped, ConnectorError::Unavailable(_)),
        "{mapped:?}"
    );
    for e in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
        assert!(matches!(sql_error("x", e), ConnectorError::Unavailable(_)));
    }

    // A statement the database refuses is not worth retrying.
    let bad = sqlx::raw_sql("SELEC 1").execute(&other).await.unwrap_err();
    assert!(matches!(sql_error("x", bad), ConnectorError::Io(_)));

    // A commit whose answer was lost may have committed.
    let lost = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
    assert!(matches!(
        commit_error("committing", lost),
        ConnectorError::Uncertain(_)
    ));
    assert!(matches!(
        commit_error("committing", sqlx::Error::PoolTimedOut),
        ConnectorError::Unavailable(_)
    ));
}

#[tokio::test]
async fn accepts_only_its_own_restore_step() {
    let env = sqlite_env().await;
    assert!(env
        .conn
        .accepts_step(&json!({"connector": "sql", "op": "restore"})));
    for op in [
        json!({"connector": "sql", "op": "raw", "sql": "DELETE FROM users"}),
        json!({"connector": "sql", "op": "restore", "database": "main"}),
        json!({"connector": "fs", "op": "restore"}),
    ] {
        assert!(!env.conn.accepts_step(&op), "{op}");
    }
}
