//! The `sql` connector's planner: arbitrary bytes as the action JSON,
//! through `Connector::plan`, which reads the action against the live
//! schema (tables, columns, types, primary keys, foreign-key cascades) and
//! reads the rows a `where` matches. Two SQLite databases in a temporary
//! directory: `main`, the connector's own test schema (cascades, SET NULL,
//! a text key, a keyless table, a composite key, a key a cascade would
//! change), and `consult`, the demo's.
//!
//! Asserted:
//! - `plan` answers a plan, `Invalid` naming a field under `action.`, or a
//!   refusal: never an I/O failure for a bad action;
//! - planning changes nothing: no transaction commits in either database
//!   (`PRAGMA data_version`, read on a connection of our own);
//! - a plan's touches, resources and edge ends are valid resource ids of
//!   the database the action names; its rollback step restores at least
//!   what it touches (every op the connector takes has one: there is no
//!   raw statement).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use recourse_connector::{Connector, ConnectorError};
use recourse_connector_sql::SqlConnector;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::ConnectOptions;
use tokio::sync::Mutex;

const SHOP: &str = r#"
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, score REAL, avatar BLOB, bio TEXT, born DATE, flag BOOLEAN, n NUMERIC, anything);
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE ON UPDATE CASCADE, total INTEGER);
CREATE TABLE items (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders(id) ON DELETE CASCADE, sku TEXT);
CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) ON DELETE SET NULL, body TEXT);
CREATE TABLE audit (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), what TEXT);
CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT);
CREATE TABLE x (id INTEGER PRIMARY KEY);
CREATE TABLE loose (a INTEGER, b TEXT);
CREATE TABLE pairs (a INTEGER NOT NULL, b TEXT NOT NULL, v TEXT, PRIMARY KEY (a, b));
CREATE TABLE tagged (code TEXT PRIMARY KEY REFERENCES tags(code) ON UPDATE CASCADE, note TEXT);
CREATE TABLE loose_child (tag TEXT REFERENCES tags(code) ON DELETE CASCADE);
CREATE TABLE "odd name" ("a col" INTEGER PRIMARY KEY, "b""q" TEXT);
INSERT INTO users VALUES (1, 'ada', 'ada@example.com', 0.30000000000000004, x'00ff10', 'bio', '1815-12-10', 1, 3.5, 'x');
INSERT INTO users VALUES (2, 'bob', NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL);
INSERT INTO users VALUES (3, 'cy', 'cy@example.com', -1.5e300, NULL, 'short', NULL, NULL, 7, 1);
INSERT INTO orders VALUES (10, 1, 5), (11, 1, 7), (12, 2, 9);
INSERT INTO items VALUES (100, 10, 'pen'), (101, 10, 'ink'), (102, 11, 'pad'), (103, 12, 'cup');
INSERT INTO notes VALUES (20, 1, 'likes tea'), (21, 2, 'hm');
INSERT INTO audit VALUES (30, 1, 'signed up');
INSERT INTO tags VALUES ('b', 'second'), ('a', 'first'), ('c', 'third'), ('a/b', 'slash');
INSERT INTO x VALUES (1);
INSERT INTO loose VALUES (1, 'one');
INSERT INTO pairs VALUES (1, 'a', 'one'), (1, 'b', 'two');
INSERT INTO tagged VALUES ('a', 'n');
INSERT INTO "odd name" VALUES (1, 'q');
"#;

const CONSULT: &str = r#"
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, office TEXT);
CREATE TABLE system_prompts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL);
INSERT INTO users VALUES (1, 'Ada Byron', 'ada@consult.example', 'London'), (2, 'Grace Hopper', 'grace@consult.example', 'Arlington');
INSERT INTO system_prompts VALUES (1, 'answer-policy', 'Answer from the firm''s approved sources only; cite them.');
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    connector: SqlConnector,
    /// One connection of our own per database, for `PRAGMA data_version`.
    observers: Mutex<Vec<SqliteConnection>>,
    runtime: tokio::runtime::Runtime,
}

async fn create(path: &PathBuf, ddl: &str) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .expect("a database");
    sqlx::raw_sql(ddl)
        .execute(&mut conn)
        .await
        .expect("the schema");
    conn
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (shop, consult) = (dir.path().join("shop.db"), dir.path().join("consult.db"));
        let (connector, observers) = runtime.block_on(async {
            let a = create(&shop, SHOP).await;
            let b = create(&consult, CONSULT).await;
            let url = |p: &PathBuf| format!("sqlite:{}", p.display());
            let connector = SqlConnector::new(
                vec![
                    ("main".into(), url(&shop)),
                    ("consult".into(), url(&consult)),
                ],
                dir.path().join("vault"),
            )
            .await
            .expect("the connector");
            (connector, vec![a, b])
        });
        Fixture {
            _dir: dir,
            connector,
            observers: Mutex::new(observers),
            runtime,
        }
    })
}

async fn data_versions(f: &Fixture) -> Vec<i64> {
    let mut out = Vec::new();
    for conn in f.observers.lock().await.iter_mut() {
        let v: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut *conn)
            .await
            .expect("data_version");
        out.push(v);
    }
    out
}

fn check_id(id: &str, db: &str) {
    recourse_core::id::check(id).unwrap_or_else(|m| panic!("id `{id}`: {m}"));
    assert!(
        id == format!("sql:{db}") || id.starts_with(&format!("sql:{db}/")),
        "id `{id}` is not of database `{db}`"
    );
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Ok(action) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    f.runtime.block_on(async {
        let before = data_versions(f).await;
        let plan = f.connector.plan("w-fuzz", &action).await;
        assert_eq!(
            data_versions(f).await,
            before,
            "planning changed a database: {action}"
        );
        match plan {
            Ok(plan) => {
                let db = action["database"]
                    .as_str()
                    .expect("a plan names its database");
                assert!(!plan.touches.is_empty(), "a plan that touches nothing");
                for t in &plan.touches {
                    check_id(t, db);
                }
                for r in &plan.resources {
                    check_id(&r.id, db);
                }
                for e in &plan.edges {
                    check_id(&e.from, db);
                    check_id(&e.to, db);
                }
                let step = plan.step.expect("every sql plan models its rollback");
                for t in &plan.touches {
                    assert!(step.restores.contains(t), "touch `{t}` is not restored");
                }
                for r in &step.restores {
                    check_id(r, db);
                }
            }
            Err(ConnectorError::Invalid { field, .. }) => {
                assert!(field.starts_with("action"), "invalid field `{field}`");
            }
            Err(ConnectorError::Refuse { .. }) => {}
            Err(e) => panic!("a bad action is not an I/O failure: {e}\n{action}"),
        }
    });
});
