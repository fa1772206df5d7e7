//! MCP overhead (issue 6): the round-trip of an `explain` call and of an
//! executed `fs_write`, through the plain HTTP API and over MCP, in one run
//! against one in-process gate (SQLite store, fs connector) on 127.0.0.1.
//!
//! - `HTTP API`: `GateClient` → `POST /v1/explain`, `POST /v1/writes`.
//! - `MCP streamable HTTP`: an rmcp client → `/mcp` on the same listener
//!   (in-process backend: no second HTTP hop).
//! - `MCP stdio path`: an rmcp client over an in-memory pipe to the server
//!   `recourse mcp` runs (line-delimited JSON-RPC), which calls the HTTP API:
//!   what `recourse mcp` adds, less process start-up.
//!
//! `cargo bench -p recourse-mcp --bench mcp_overhead` (N=200 by default,
//! `MCP_BENCH_N` to change).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use recourse_client::{GateClient, Role};
use recourse_connector::Connector;
use recourse_gate::{Gate, GateConfig, SqliteStore, Store};
use recourse_mcp::{HttpBackend, McpServer};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Map, Value};

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

struct Stats {
    p50: Duration,
    p95: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let total: Duration = samples.iter().sum();
    Stats {
        p50: at(0.5),
        p95: at(0.95),
        mean: total / samples.len().max(1) as u32,
    }
}

async fn mcp_call(
    client: &RunningService<RoleClient, ()>,
    name: &'static str,
    a: Map<String, Value>,
) -> anyhow::Result<Value> {
    let r = client
        .call_tool(CallToolRequestParams::new(name).with_arguments(a))
        .await?;
    anyhow::ensure!(r.is_error != Some(true), "{name}: {:?}", r.content);
    r.structured_content.context("no structured content")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("MCP_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(&data)?;
    let root = root.canonicalize()?;

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data).await?);
    let token =
        recourse_gate::create_token(store.as_ref(), "bench", "agent-1", Role::Agent, None).await?;
    let fs: Arc<dyn Connector> = Arc::new(recourse_connector_fs::FsConnector::new(
        vec![root.clone()],
        data.join("vault"),
    )?);
    let gate = Arc::new(Gate::new(store, vec![fs], GateConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(recourse_mcp::serve_gate(listener, gate, async move {
        let _ = stop_rx.await;
    }));

    let api = GateClient::new(url.clone(), token.clone());
    let http_mcp = ()
        .serve(StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("{url}/mcp"))
                .auth_header(token.clone()),
        ))
        .await?;
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let stdio_server = McpServer::over(Arc::new(HttpBackend::new(&url, &token))).await?;
    let stdio_task = tokio::spawn(async move {
        if let Ok(running) = stdio_server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let stdio_mcp = ().serve(client_io).await?;

    let explained = root.join("explained.txt");
    let explain_args = || json!({"path": explained.to_str(), "content": "x", "intent": "bench"});
    let write_args = |path: &str, i: usize| json!({"path": root.join(format!("{path}-{i}.txt")).to_str(), "content": format!("{i}"), "intent": "bench"});
    let proposal = |a: Value| -> Value {
        json!({"intent": "bench", "idempotency_key": a["path"], "action": {
            "connector": "fs", "op": "write", "path": a["path"],
            "content_b64": "eA==",
        }})
    };

    // Warm up each path (connections, caches, the catalog).
    for i in 0..10 {
        api.explain(&proposal(explain_args())).await?;
        api.submit_json(&proposal(write_args("warm-api", i)))
            .await?;
        mcp_call(
            &http_mcp,
            "explain",
            args(json!({"tool": "fs_write", "arguments": explain_args()})),
        )
        .await?;
        mcp_call(
            &stdio_mcp,
            "explain",
            args(json!({"tool": "fs_write", "arguments": explain_args()})),
        )
        .await?;
        mcp_call(&http_mcp, "fs_write", args(write_args("warm-http", i))).await?;
        mcp_call(&stdio_mcp, "fs_write", args(write_args("warm-stdio", i))).await?;
    }

    let mut rows: Vec<(&str, &str, Stats)> = Vec::new();
    // Interleave the paths so drift in the machine's load hits all alike.
    let (mut a_ex, mut h_ex, mut s_ex, mut a_wr, mut h_wr, mut s_wr) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for i in 0..n {
        let t = Instant::now();
        let e = api.explain(&proposal(explain_args())).await?;
        a_ex.push(t.elapsed());
        anyhow::ensure!(
            e.decision.decision == recourse_core::Verdict::Proceed,
            "explain: {:?}",
            e.decision.reasons
        );

        let t = Instant::now();
        mcp_call(
            &http_mcp,
            "explain",
            args(json!({"tool": "fs_write", "arguments": explain_args()})),
        )
        .await?;
        h_ex.push(t.elapsed());

        let t = Instant::now();
        mcp_call(
            &stdio_mcp,
            "explain",
            args(json!({"tool": "fs_write", "arguments": explain_args()})),
        )
        .await?;
        s_ex.push(t.elapsed());

        let t = Instant::now();
        let rec = api.submit_json(&proposal(write_args("api", i))).await?;
        a_wr.push(t.elapsed());
        anyhow::ensure!(
            rec.status == recourse_client::WriteStatus::Executed,
            "write: {:?}",
            rec.status
        );

        let t = Instant::now();
        let out = mcp_call(&http_mcp, "fs_write", args(write_args("http", i))).await?;
        h_wr.push(t.elapsed());
        anyhow::ensure!(out["outcome"] == "executed", "{out}");

        let t = Instant::now();
        let out = mcp_call(&stdio_mcp, "fs_write", args(write_args("stdio", i))).await?;
        s_wr.push(t.elapsed());
        anyhow::ensure!(out["outcome"] == "executed", "{out}");
    }
    rows.push(("explain", "HTTP API", stats(a_ex)));
    rows.push(("explain", "MCP streamable HTTP", stats(h_ex)));
    rows.push(("explain", "MCP stdio path", stats(s_ex)));
    rows.push(("fs_write (executed)", "HTTP API", stats(a_wr)));
    rows.push(("fs_write (executed)", "MCP streamable HTTP", stats(h_wr)));
    rows.push(("fs_write (executed)", "MCP stdio path", stats(s_wr)));

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("MCP overhead, N={n} per row, one in-process gate on 127.0.0.1 (SQLite store, fs connector)");
    println!("| call | path | p50 ms | p95 ms | mean ms | overhead vs API (p50) |");
    println!("|---|---|---:|---:|---:|---:|");
    for (call, path, s) in &rows {
        let base = rows
            .iter()
            .find(|(c, p, _)| c == call && *p == "HTTP API")
            .map(|(_, _, b)| b.p50)
            .unwrap_or_default();
        let over = if *path == "HTTP API" {
            "—".to_string()
        } else {
            format!("{:+.2} ms", ms(s.p50) - ms(base))
        };
        println!(
            "| {call} | {path} | {:.2} | {:.2} | {:.2} | {over} |",
            ms(s.p50),
            ms(s.p95),
            ms(s.mean)
        );
    }

    http_mcp.cancel().await?;
    stdio_mcp.cancel().await?;
    stdio_task.abort();
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}
