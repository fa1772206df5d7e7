//! UPDATE of 10,000 rows (of 100,000) three ways, in one transaction each:
//!
//! - `bare`: the UPDATE alone;
//! - `connector`: through `SqlConnector::execute` (lock and read the rows,
//!   UPDATE … RETURNING, write both images to the vault and fsync, marker
//!   row, commit);
//! - `dump+update`: `pg_dump -t table` (or `sqlite3 .dump table`) to a file,
//!   then the UPDATE: the usual "take a backup first".
//!
//! Runs on PostgreSQL at 127.0.0.1:5432 when reachable, and on SQLite.
//! `cargo bench -p recourse-connector-sql --bench update [-- ROUNDS]`.

use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use recourse_connector::Connector;
use recourse_connector_sql::SqlConnector;
use recourse_core::Proposal;
use serde_json::json;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const ROWS: i64 = 100_000;
const GROUPS: i64 = 10;

type Res<T> = Result<T, Box<dyn Error>>;
/// A bench row as text, the way the connector reads it.
type TextRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; a bare number sets the rounds.
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(7);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        println!(
            "UPDATE of {} rows of {ROWS}, median of {rounds} rounds\n",
            ROWS / GROUPS
        );
        match postgres(rounds).await {
            Ok(rows) => print_table("PostgreSQL 15 (127.0.0.1:5432)", &rows),
            Err(e) => println!("SKIPPED PostgreSQL: {e}\n"),
        }
        let rows = sqlite(rounds).await?;
        print_table("SQLite (file, rollback journal)", &rows);
        Ok(())
    })
}

fn print_table(title: &str, rows: &[(&str, Duration)]) {
    let bare = rows.first().map_or(Duration::ZERO, |r| r.1).as_secs_f64();
    println!("{title}");
    println!(
        "| {:<14} | {:>10} | {:>8} |",
        "variant", "median ms", "x bare"
    );
    println!("|{:-<16}|{:->12}|{:->10}|", "", "", "");
    for (name, d) in rows {
        let ratio = if bare > 0.0 {
            d.as_secs_f64() / bare
        } else {
            0.0
        };
        println!(
            "| {:<14} | {:>10.1} | {:>8.2} |",
            name,
            d.as_secs_f64() * 1000.0,
            ratio
        );
    }
    println!();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn vault_dir(tag: &str) -> Res<tempfile::TempDir> {
    // On disk, like a real vault: fsync must cost what it costs.
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base)?;
    Ok(tempfile::Builder::new().prefix(tag).tempdir_in(base)?)
}

fn proposal(table: &str, grp: i64, val: i64) -> Proposal {
    Proposal {
        action: json!({"connector": "sql", "database": "bench", "op": "update", "table": table,
                       "where": {"grp": grp}, "set": {"val": val}}),
        ..Proposal::default()
    }
}

fn run(cmd: &mut Command) -> Res<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{:?}: {}", cmd, String::from_utf8_lossy(&out.stderr)).into())
    }
}

async fn postgres(rounds: usize) -> Res<Vec<(&'static str, Duration)>> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(3))
        .connect(PG_URL)
        .await?;
    let schema = format!("rc_bench_{}", std::process::id());
    let table = format!("{schema}.bench");
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {table} (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, val INTEGER NOT NULL, payload TEXT);
         INSERT INTO {table} SELECT n, n % {GROUPS}, n, repeat('x', 84) FROM generate_series(1, {ROWS}) AS n;
         CREATE INDEX ON {table} (grp);"
    ))
    .execute(&pool)
    .await?;
    sqlx::raw_sql(&format!("VACUUM ANALYZE {table}"))
        .execute(&pool)
        .await?;
    let result = async {
        let vault = vault_dir("rc-bench-pg")?;
        let conn = SqlConnector::new(vec![("bench".into(), PG_URL.into())], vault.path().into()).await?;
        let dump = vault.path().join("dump.sql");
        let (mut bare, mut through, mut dumped, mut floor) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let grp = (round as i64) % GROUPS;
            let val = -(round as i64) - 1;

            // The capture's own floor: read the rows locked, update them
            // returning the after-images, in one transaction, nothing kept.
            let t = Instant::now();
            let mut tx = pool.begin().await?;
            let before: Vec<TextRow> = sqlx::query_as(&format!(
                "SELECT id::text, grp::text, val::text, payload::text FROM {table} WHERE grp = $1 ORDER BY id FOR UPDATE"
            ))
            .bind(grp as i32)
            .fetch_all(&mut *tx)
            .await?;
            let after: Vec<TextRow> = sqlx::query_as(&format!(
                "UPDATE {table} SET val = $1 WHERE grp = $2 RETURNING id::text, grp::text, val::text, payload::text"
            ))
            .bind(val as i32 - 3000)
            .bind(grp as i32)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            floor.push(t.elapsed());
            assert_eq!(before.len(), after.len());

            let t = Instant::now();
            let mut tx = pool.begin().await?;
            sqlx::query(&format!("UPDATE {table} SET val = $1 WHERE grp = $2"))
                .bind(val as i32)
                .bind(grp as i32)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            bare.push(t.elapsed());

            let p = proposal(&table, grp, val - 1000);
            let t = Instant::now();
            conn.execute(&format!("bench-{}-{round}", std::process::id()), &p, &serde_json::Value::Null).await?;
            through.push(t.elapsed());

            let t = Instant::now();
            run(Command::new("pg_dump")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-t", &table, "-f"])
                .arg(&dump)
                .arg("test"))?;
            let mut tx = pool.begin().await?;
            sqlx::query(&format!("UPDATE {table} SET val = $1 WHERE grp = $2"))
                .bind(val as i32 - 2000)
                .bind(grp as i32)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            dumped.push(t.elapsed());
        }
        Ok::<_, Box<dyn Error>>(vec![
            ("bare", median(bare)),
            ("read+update", median(floor)),
            ("connector", median(through)),
            ("pg_dump+update", median(dumped)),
        ])
    }
    .await;
    sqlx::raw_sql(&format!(
        "DROP SCHEMA {schema} CASCADE; DELETE FROM recourse_applied WHERE write_id LIKE 'bench-{}-%'",
        std::process::id()
    ))
        .execute(&pool)
        .await?;
    result
}

async fn sqlite(rounds: usize) -> Res<Vec<(&'static str, Duration)>> {
    let dir = vault_dir("rc-bench-sqlite")?;
    let db = dir.path().join("bench.db");
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true),
    )
    .await?;
    sqlx::raw_sql(&format!(
        "CREATE TABLE bench (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, val INTEGER NOT NULL, payload TEXT);
         WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {ROWS})
         INSERT INTO bench SELECT n, n % {GROUPS}, n, printf('%.84c', 'x') FROM c;
         CREATE INDEX bench_grp ON bench (grp);"
    ))
    .execute(&pool)
    .await?;
    let vault = dir.path().join("vault");
    let conn = SqlConnector::new(
        vec![("bench".into(), format!("sqlite:{}", db.display()))],
        vault,
    )
    .await?;
    let dump = dir.path().join("dump.sql");
    let (mut bare, mut through, mut dumped) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let grp = (round as i64) % GROUPS;
        let val = -(round as i64) - 1;

        let t = Instant::now();
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE bench SET val = ? WHERE grp = ?")
            .bind(val)
            .bind(grp)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        bare.push(t.elapsed());

        let p = proposal("bench", grp, val - 1000);
        let t = Instant::now();
        conn.execute(&format!("bench-{round}"), &p, &serde_json::Value::Null)
            .await?;
        through.push(t.elapsed());

        let t = Instant::now();
        run(Command::new("sqlite3")
            .arg(&db)
            .arg(format!(".output {}", dump.display()))
            .arg(".dump bench"))?;
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE bench SET val = ? WHERE grp = ?")
            .bind(val - 2000)
            .bind(grp)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        dumped.push(t.elapsed());
    }
    pool.close().await;
    Ok(vec![
        ("bare", median(bare)),
        ("connector", median(through)),
        ("sqlite3 .dump+update", median(dumped)),
    ])
}
