//! Submit rate and gate memory as the catalog grows: every write adds the
//! file it creates to the catalog (as the `fs` connector's discovery does),
//! over a catalog pre-filled with 1,000, 10,000 or 100,000 resources. The
//! rate should not depend on the size (target: the rate at 100,000 within
//! 10 % of the rate at 1,000), and memory should grow linearly with a small
//! constant.
//!
//!   cargo bench -p recourse-gate --bench catalog_growth
//!   GROWTH_WRITES=500 GROWTH_CLIENTS=16 GROWTH_ROUNDS=3 GROWTH_SIZES=1000,10000,100000 \
//!     cargo bench -p recourse-gate --bench catalog_growth
//!
//! Each (size, round) runs in a child process of its own, so its memory
//! figures are its own; the sizes are interleaved round by round, so a
//! change in the machine's load falls on all of them alike.

// A benchmark harness: a failed setup should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use recourse_client::RollbackReport;
use recourse_connector::{Connector, ConnectorError, Plan};
use recourse_core::{Bearer, Catalog, Evidence, Observation, Proposal, Resource};
use recourse_gate::auth::Caller;
use recourse_gate::{Gate, GateConfig, SqliteStore, Store};
use serde_json::{json, Value};

/// Plans the creation of a new file in a customer's folder: the file joins
/// the catalog (one resource, reached from its folders by containment) and
/// the write is held (a customer bears it), so the benchmark measures
/// planning, the catalog addition, the decision and the record, not a disk.
struct NewFiles;

#[async_trait]
impl Connector for NewFiles {
    fn name(&self) -> &'static str {
        "files"
    }
    async fn plan(&self, _: &str, action: &Value) -> Result<Plan, ConnectorError> {
        let id = format!(
            "fs:/bench/new/d{}/f{}",
            action["n"].as_u64().unwrap_or(0) % 64,
            action["n"]
        );
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

/// `size` resources: the folders the new files go to (customer-borne), and
/// existing files spread over 100 folders, some linked by declared edges.
fn prefilled(size: usize) -> Catalog {
    let mut c = Catalog::default();
    let folder = |id: &str, bearer: Option<Bearer>| {
        let mut r = Resource::new(id);
        r.bearer = bearer;
        r
    };
    c.resources
        .push(folder("fs:/bench", Some(Bearer::Institution)));
    c.resources
        .push(folder("fs:/bench/new", Some(Bearer::Customer)));
    for d in 0..100 {
        c.resources.push(folder(
            &format!("fs:/bench/old/d{d}"),
            Some(Bearer::Institution),
        ));
    }
    let mut i = 0;
    while c.resources.len() < size {
        c.resources
            .push(Resource::new(format!("fs:/bench/old/d{}/f{i}", i % 100)));
        if i % 10 == 1 {
            c.edges.push(recourse_core::Edge {
                from: format!("fs:/bench/old/d{}/f{}", (i - 1) % 100, i - 1),
                to: format!("fs:/bench/old/d{}/f{i}", i % 100),
                why: Some("generated from it".into()),
            });
        }
        i += 1;
    }
    c
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One stage, in this (child) process: prints `rate rss_kib hwm_kib`.
async fn stage(size: usize, writes: usize, clients: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    store
        .upsert_catalog(&prefilled(size), true, None)
        .await
        .unwrap();
    let gate = Arc::new(Gate::new(
        store,
        vec![Arc::new(NewFiles)],
        GateConfig::default(),
    ));
    let caller = Caller::new("bench-agent", recourse_client::Role::Agent);
    // Warm up: the gate loads the catalog once, and a first write.
    let body = json!({"intent": "create", "action": {"connector": "files", "n": writes}});
    gate.submit(&caller, body).await.unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let gate = gate.clone();
        let caller = caller.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = c;
            while n < writes {
                let body = json!({"intent": "create", "action": {"connector": "files", "n": n}});
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
    // Memory before anything else reads the catalog.
    let (rss, hwm) = (status_kib("VmRSS:"), status_kib("VmHWM:"));
    let (catalog, _) = gate.store().catalog().await.unwrap();
    assert_eq!(
        catalog.resources.len(),
        size.max(102) + writes + 1,
        "every file joined the catalog"
    );
    drop(catalog);
    println!("{} {rss} {hwm}", writes as f64 / took.as_secs_f64());
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn stats(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(|a, b| a.total_cmp(b));
    (xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

fn main() {
    let writes = env("GROWTH_WRITES", 500);
    let clients = env("GROWTH_CLIENTS", 16);
    if let Some(size) = std::env::var("GROWTH_STAGE")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(stage(size, writes, clients));
        return;
    }
    let rounds = env("GROWTH_ROUNDS", 3);
    let sizes: Vec<usize> = std::env::var("GROWTH_SIZES")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let exe = std::env::current_exe().unwrap();
    println!(
        "catalog growth: {writes} new-file writes per stage, {clients} concurrent clients, {rounds} rounds; load average before: {}",
        loadavg()
    );
    let mut results: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); sizes.len()];
    for round in 0..rounds {
        for (i, &size) in sizes.iter().enumerate() {
            let out = Command::new(&exe)
                .env("GROWTH_STAGE", size.to_string())
                .env("GROWTH_WRITES", writes.to_string())
                .env("GROWTH_CLIENTS", clients.to_string())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let v: Vec<f64> = text
                .lines()
                .last()
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            eprintln!(
                "round {round} size {size}: {:.0} writes/s, RSS {:.1} MiB (load {})",
                v[0],
                v[1] / 1024.0,
                loadavg()
            );
            results[i].push((v[0], v[1], v[2]));
        }
    }
    println!("| catalogued resources | writes/s min | median | max | x rate at first size (median) | VmRSS MiB (median) | VmHWM MiB (median) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let base = stats(results[0].iter().map(|r| r.0).collect()).1;
    let mut rss_med = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let (lo, med, hi) = stats(results[i].iter().map(|r| r.0).collect());
        let rss = stats(results[i].iter().map(|r| r.1).collect()).1 / 1024.0;
        let hwm = stats(results[i].iter().map(|r| r.2).collect()).1 / 1024.0;
        rss_med.push(rss);
        println!(
            "| {size} | {lo:.0} | {med:.0} | {hi:.0} | {:.2}x | {rss:.1} | {hwm:.1} |",
            med / base
        );
    }
    if let (Some(first), Some(last)) = (rss_med.first(), rss_med.last()) {
        let (a, b) = (sizes[0] as f64, sizes[sizes.len() - 1] as f64);
        if b > a {
            println!(
                "memory: {:.0} bytes per catalogued resource (VmRSS, first to last size)",
                (last - first) * 1024.0 * 1024.0 / (b - a)
            );
        }
    }
    println!("load average after: {}", loadavg());
}
