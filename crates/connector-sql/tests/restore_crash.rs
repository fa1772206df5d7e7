//! The crash points of `restore`, cut in-process, on SQLite and (when it is
//! reachable at 127.0.0.1:5432; `RECOURSE_REQUIRE_PG=1` makes that a
//! requirement) PostgreSQL: an update and a cascading delete are rolled
//! back with the restore cut at each point, then called again. Cut before
//! the commit, nothing is applied and the next call restores; cut after
//! it, the next call only verifies. Either way it ends verified, with the
//! rows as before the write, and a third call only verifies.
//!
//! fail-rs's registry is global to the process: these tests live in a
//! binary of their own and hold `FailScenario`, a global lock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};

use recourse_client::{RestoreStatus, RollbackReport};
use recourse_connector::{Connector, ConnectorError};
use recourse_connector_sql::{SqlConnector, RESTORE_CRASH_POINTS};
use recourse_core::Proposal;
use serde_json::{json, Value};
use sqlx::sqlite::SqliteConnectOptions;
use tempfile::TempDir;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

static NEXT: AtomicU32 = AtomicU32::new(0);

enum Db {
    Lite {
        pool: sqlx::SqlitePool,
        _dir: TempDir,
    },
    Pg {
        pool: sqlx::PgPool,
        schema: String,
    },
}

struct Env {
    db: Db,
    conn: SqlConnector,
    _vault: TempDir,
}

const DDL: &str = "CREATE TABLE {s}users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE {s}orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES {s}users(id) ON DELETE CASCADE, total INTEGER);
INSERT INTO {s}users VALUES (1, 'ada'), (2, 'bob');
INSERT INTO {s}orders VALUES (10, 1, 5), (11, 1, 7), (12, 2, 9);";

impl Env {
    async fn sqlite() -> Env {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("main.db");
        let pool = sqlx::SqlitePool::connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .foreign_keys(true),
        )
        .await
        .unwrap();
        sqlx::raw_sql(&DDL.replace("{s}", ""))
            .execute(&pool)
            .await
            .unwrap();
        let vault = TempDir::new().unwrap();
        let conn = SqlConnector::new(
            vec![("main".into(), format!("sqlite:{}", path.display()))],
            vault.path().to_path_buf(),
        )
        .await
        .unwrap();
        Env {
            db: Db::Lite { pool, _dir: dir },
            conn,
            _vault: vault,
        }
    }

    async fn postgres() -> Option<Env> {
        let pool = match sqlx::postgres::PgPoolOptions::new()
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
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: PostgreSQL not reachable at {PG_URL}: {e}"
                );
                return None;
            }
        };
        let schema = format!(
            "rc_crash_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::raw_sql(&format!(
            "CREATE SCHEMA {schema}; {}",
            DDL.replace("{s}", &format!("{schema}."))
        ))
        .execute(&pool)
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
            db: Db::Pg { pool, schema },
            conn,
            _vault: vault,
        })
    }

    fn table(&self, t: &str) -> String {
        match &self.db {
            Db::Lite { .. } => t.to_owned(),
            Db::Pg { schema, .. } => format!("{schema}.{t}"),
        }
    }

    /// Unique per run: PostgreSQL's marker table outlives the schema.
    fn id(&self, id: &str) -> String {
        match &self.db {
            Db::Lite { .. } => id.to_owned(),
            Db::Pg { schema, .. } => format!("{id}-{schema}"),
        }
    }

    /// Every row of both tables, as text.
    async fn rows(&self) -> Vec<String> {
        let sql = format!(
            "SELECT 'u' || CAST(id AS TEXT) || '|' || name FROM {} UNION ALL
             SELECT 'o' || CAST(id AS TEXT) || '|' || CAST(user_id AS TEXT) || '|' || CAST(total AS TEXT) FROM {}
             ORDER BY 1",
            self.table("users"),
            self.table("orders")
        );
        match &self.db {
            Db::Lite { pool, .. } => sqlx::query_scalar(&sql).fetch_all(pool).await.unwrap(),
            Db::Pg { pool, .. } => sqlx::query_scalar(&sql).fetch_all(pool).await.unwrap(),
        }
    }

    async fn drop_pg(&self) {
        if let Db::Pg { pool, schema } = &self.db {
            let _ = sqlx::raw_sql(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; DELETE FROM recourse_applied WHERE write_id LIKE '%-{schema}'"
            ))
            .execute(pool)
            .await;
        }
    }
}

fn proposal(action: Value) -> Proposal {
    Proposal {
        action,
        ..Proposal::default()
    }
}

fn verified(r: &RollbackReport, already: bool, what: &str) {
    assert!(r.verified, "{what}: {r:?}");
    assert!(!r.items.is_empty(), "{what}: {r:?}");
    for i in &r.items {
        assert_eq!(i.status, RestoreStatus::Restored, "{what}: {r:?}");
        let detail = i.detail.as_deref().unwrap_or_default();
        assert_eq!(
            detail.contains("already restored"),
            already,
            "{what}: {r:?}"
        );
    }
}

fn is_cut(e: &ConnectorError, point: &str) -> bool {
    matches!(e, ConnectorError::Io(m) if m.contains(&format!("crash point `{point}`")))
}

/// One write cut at `point` while rolled back; returns whether the point
/// was reached.
async fn cut_and_resume(env: &Env, op: &str, point: &str) -> bool {
    let what = format!("{op} cut at {point}");
    let before = env.rows().await;
    let action = match op {
        "update" => json!({"connector": "sql", "database": "main", "op": "update",
            "table": env.table("users"), "where": {"id": 1}, "set": {"name": "ada lovelace"}}),
        _ => json!({"connector": "sql", "database": "main", "op": "delete",
            "table": env.table("users"), "where": {"id": 1}}),
    };
    let id = env.id(&format!("w-{op}-{}", point.replace('.', "-")));
    let p = proposal(action);
    let outcome = env.conn.execute(&id, &p, &Value::Null).await.unwrap();
    let written = env.rows().await;
    assert_ne!(written, before, "{what}: the write changed rows");

    fail::cfg(point, "return").unwrap();
    let first = env
        .conn
        .restore(&id, &p, &Value::Null, Some(&outcome), false)
        .await;
    fail::remove(point);
    let hit = match first {
        Err(e) if is_cut(&e, point) => true,
        Err(e) => panic!("{what}: {e}"),
        Ok(r) => {
            verified(&r, false, &what);
            false
        }
    };
    let committed = env.rows().await == before;
    if hit {
        match point {
            "sql.restore.before_commit" => {
                assert_eq!(env.rows().await, written, "{what}: nothing applied")
            }
            _ => assert!(committed, "{what}: the restore committed"),
        }
    }
    let again = env
        .conn
        .restore(&id, &p, &Value::Null, Some(&outcome), false)
        .await
        .unwrap();
    verified(&again, committed, &format!("{what}, resumed"));
    assert_eq!(env.rows().await, before, "{what}: rows as before the write");
    let third = env
        .conn
        .restore(&id, &p, &Value::Null, Some(&outcome), false)
        .await
        .unwrap();
    verified(&third, true, &format!("{what}, called a third time"));
    assert_eq!(env.rows().await, before, "{what}: verify only");
    hit
}

async fn every_point(pg: bool) {
    let mut hit = BTreeSet::new();
    for op in ["update", "delete"] {
        for &point in RESTORE_CRASH_POINTS {
            let env = if pg {
                match Env::postgres().await {
                    Some(env) => env,
                    None => return,
                }
            } else {
                Env::sqlite().await
            };
            if cut_and_resume(&env, op, point).await {
                hit.insert(point);
            }
            env.drop_pg().await;
        }
    }
    let all: BTreeSet<&str> = RESTORE_CRASH_POINTS.iter().copied().collect();
    assert_eq!(hit, all, "every crash point must be reached");
}

#[tokio::test]
async fn sqlite_restore_cut_at_every_point_resumes() {
    let _scenario = fail::FailScenario::setup();
    every_point(false).await;
}

#[tokio::test]
async fn postgres_restore_cut_at_every_point_resumes() {
    let _scenario = fail::FailScenario::setup();
    every_point(true).await;
}
