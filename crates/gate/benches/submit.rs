//! Submit -> decide -> durable record, at 64 concurrent clients, against
//! bare sqlx inserts of the same record with the same durability (SQLite,
//! WAL, synchronous=FULL, one commit per record), in one run.
//!
//!   cargo bench -p recourse-gate --bench submit
//!   BENCH_WRITES=4000 BENCH_CLIENTS=64 cargo bench -p recourse-gate --bench submit

// A benchmark harness: a failed setup should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use recourse_client::RollbackReport;
use recourse_connector::{Connector, ConnectorError, Plan};
use recourse_core::{Evidence, Observation, Proposal, Resource};
use recourse_gate::auth::Caller;
use recourse_gate::{Gate, GateConfig, SqliteStore, Store};
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Plans a touch on one account row borne by a customer: every write is
/// held, so the benchmark measures deciding and recording, not a target.
struct Accounts;

#[async_trait]
impl Connector for Accounts {
    fn name(&self) -> &'static str {
        "accounts"
    }
    async fn plan(&self, _: &str, action: &Value) -> Result<Plan, ConnectorError> {
        let id = format!("account:{}", action["n"]);
        Ok(Plan {
            touches: vec![id.clone()],
            resources: vec![Resource::new(id)],
            ..Plan::default()
        })
    }
    async fn observe(&self, _: &str, _: &Evidence) -> Option<Observation> {
        None
    }
    async fn capture(&self, _: &str, _: &Proposal) -> Result<Value, ConnectorError> {
        Ok(Value::Null)
    }
    async fn execute(&self, _: &str, _: &Proposal, _: &Value) -> Result<Value, ConnectorError> {
        Ok(Value::Null)
    }
    async fn applied(
        &self,
        _: &str,
        _: &Proposal,
        _: &Value,
    ) -> Result<Option<bool>, ConnectorError> {
        Ok(None)
    }
    async fn restore(
        &self,
        _: &str,
        _: &Proposal,
        _: &Value,
        _: Option<&Value>,
        _: bool,
    ) -> Result<RollbackReport, ConnectorError> {
        Err(ConnectorError::Io("not in the benchmark".into()))
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn through_gate(writes: usize, clients: usize) -> (Duration, Value) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    // A catalog where each account reaches its owner's history (a customer).
    let mut catalog = recourse_core::Catalog::default();
    for n in 0..writes {
        catalog
            .resources
            .push(Resource::new(format!("account:{n}")));
        let mut h = Resource::new(format!("history:{n}"));
        h.bearer = Some(recourse_core::Bearer::Customer);
        catalog.resources.push(h);
        catalog.edges.push(recourse_core::Edge {
            from: format!("account:{n}"),
            to: format!("history:{n}"),
            why: None,
        });
    }
    store.upsert_catalog(&catalog, true, None).await.unwrap();
    let gate = Arc::new(Gate::new(
        store,
        vec![Arc::new(Accounts)],
        GateConfig::default(),
    ));
    let caller = Caller::new("bench-agent", recourse_client::Role::Agent);
    let sample = gate
        .explain(
            &caller,
            json!({"intent": "close", "action": {"connector": "accounts", "n": 0}}),
        )
        .await
        .unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let gate = gate.clone();
        let caller = caller.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = c;
            while n < writes {
                let body = json!({"intent": "close", "action": {"connector": "accounts", "n": n}});
                let (rec, _) = gate.submit(&caller, body).await.unwrap();
                assert_eq!(rec.status, recourse_client::WriteStatus::Held);
                n += clients;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = start.elapsed();
    let held = gate.store().counts().await.unwrap();
    assert_eq!(
        held.iter().map(|(_, n)| *n).sum::<i64>() as usize,
        writes,
        "every write recorded"
    );
    (took, serde_json::to_value(sample).unwrap())
}

async fn bare_inserts(writes: usize, clients: usize, record: &Value) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteConnectOptions::from_str("sqlite:")
        .unwrap()
        .filename(dir.path().join("bare.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE writes (id TEXT PRIMARY KEY, status TEXT NOT NULL, record TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let body = record.to_string();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let pool = pool.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = c;
            while n < writes {
                sqlx::query("INSERT INTO writes (id, status, record) VALUES (?, 'held', ?)")
                    .bind(format!("w_{n}"))
                    .bind(&body)
                    .execute(&pool)
                    .await
                    .unwrap();
                n += clients;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn main() {
    let writes = env("BENCH_WRITES", 2000);
    let clients = env("BENCH_CLIENTS", 64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (gate, sample) = rt.block_on(through_gate(writes, clients));
    let bare = rt.block_on(bare_inserts(writes, clients, &sample));
    let rate = |d: Duration| writes as f64 / d.as_secs_f64();
    println!("submit -> decide -> durable record: {writes} writes, {clients} concurrent clients");
    println!("| path | time | writes/s | ratio to bare |");
    println!("|---|---|---|---|");
    println!(
        "| bare sqlx INSERT (WAL, synchronous=FULL) | {:.2?} | {:.0} | 1.00x |",
        bare,
        rate(bare)
    );
    println!(
        "| gate submit (decide + record + audit entry) | {:.2?} | {:.0} | {:.2}x |",
        gate,
        rate(gate),
        rate(gate) / rate(bare)
    );
}
