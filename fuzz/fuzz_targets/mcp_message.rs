//! MCP messages: arbitrary bytes, as lines of JSON-RPC on the stdio
//! transport, to the gate's MCP server (`recourse mcp`'s handler) over an
//! in-memory pipe. The server is served directly (rmcp's `serve_directly`:
//! no `initialize` handshake needed first), over a backend stub that answers
//! every call with an error, so nothing runs and no gate is needed.
//!
//! Asserted, besides "no panic" (a panic in any of the server's tasks
//! aborts: libFuzzer's panic hook):
//! - every line the server writes is a JSON-RPC 2.0 message;
//! - every request rmcp reads (by rmcp's own parse of the line) gets an
//!   answer with its id within 10 s, and no id more answers than it was
//!   sent;
//! - a response's id is one the client sent, or null (an invalid request);
//! - with every backend call failing, no `tools/call` result says it
//!   succeeded (`isError` is true): an agent is never told a write
//!   happened when it did not;
//! - every proposal a write tool builds is one the gate reads (the stub
//!   runs `recourse_gate::lifecycle::read_proposal`, what `POST
//!   /v1/writes` runs), unless the agent's own idempotency key is out of
//!   bounds.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use recourse_client::{Explained, WriteRecord};
use recourse_mcp::{Backend, BackendError, McpServer};
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, NumberOrString};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct Refusing;

/// What the gate would answer: its own reading of the proposal first (the
/// function `POST /v1/writes` runs); one it reads is then `unavailable`.
fn answer(proposal: Value) -> BackendError {
    match recourse_gate::lifecycle::read_proposal(proposal.clone()) {
        Ok(_) => BackendError::new("unavailable", "the fuzz stub runs nothing"),
        Err(e) => {
            assert_eq!(
                e.field(),
                Some("proposal.idempotency_key"),
                "a write tool built a proposal the gate cannot read: {e}\n{proposal}"
            );
            e.into()
        }
    }
}

#[async_trait::async_trait]
impl Backend for Refusing {
    async fn connectors(&self) -> Result<Vec<String>, BackendError> {
        Ok(vec!["fs".into(), "sql".into(), "http".into()])
    }

    async fn submit(&self, proposal: Value) -> Result<WriteRecord, BackendError> {
        Err(answer(proposal))
    }

    async fn get(&self, id: &str) -> Result<WriteRecord, BackendError> {
        Err(BackendError::new("not_found", format!("no write `{id}`")))
    }

    async fn explain(&self, proposal: Value) -> Result<Explained, BackendError> {
        Err(answer(proposal))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn id_key(id: &NumberOrString) -> Value {
    match id {
        NumberOrString::Number(n) => Value::from(*n),
        NumberOrString::String(s) => Value::from(s.as_ref()),
    }
}

/// The requests rmcp will read from `data`, as the transport splits and
/// parses it: id -> (how many, method).
fn requests(data: &[u8]) -> HashMap<String, (usize, String)> {
    let mut out: HashMap<String, (usize, String)> = HashMap::new();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if let Ok(JsonRpcMessage::Request(r)) = serde_json::from_slice::<ClientJsonRpcMessage>(line)
        {
            let method = serde_json::to_value(&r.request)
                .ok()
                .and_then(|v| v.get("method").and_then(Value::as_str).map(String::from))
                .unwrap_or_default();
            let e = out
                .entry(id_key(&r.id).to_string())
                .or_insert((0, method.clone()));
            e.0 += 1;
            if e.1 != method {
                // Which request an answer is for cannot be told.
                e.1 = "(mixed)".into();
            }
        }
    }
    out
}

async fn run(data: &[u8]) {
    let expected = requests(data);
    let server = McpServer::over(Arc::new(Refusing))
        .await
        .expect("the stub names its connectors");
    let (client, server_io) = tokio::io::duplex(1 << 16);
    let running = rmcp::service::serve_directly(server, server_io, None);
    let (rd, mut wr) = tokio::io::split(client);
    let mut input = data.to_vec();
    input.push(b'\n');
    // Written while the answers are read: a full pipe must not stall.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&input).await;
        let _ = wr.flush().await;
        wr
    });
    let mut lines = BufReader::new(rd).lines();
    let mut answered: HashMap<String, usize> = HashMap::new();
    // An id sent twice while the first is in flight breaks JSON-RPC's rule
    // (ids are unique among pending requests): rmcp answers it once or
    // twice; one answer is required.
    let waiting = |answered: &HashMap<String, usize>| {
        expected
            .keys()
            .any(|id| answered.get(id).copied().unwrap_or(0) == 0)
    };
    while waiting(&answered) {
        let line = match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => panic!("no answer within 10 s; waiting for {expected:?}, got {answered:?}"),
        };
        let msg: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the server wrote a line that is not JSON ({e}): {line}"));
        assert_eq!(msg["jsonrpc"], "2.0", "not JSON-RPC 2.0: {line}");
        let is_answer = msg.get("result").is_some() || msg.get("error").is_some();
        if !is_answer {
            // A request or notification of the server's own (progress).
            assert!(
                msg["method"].is_string(),
                "neither answer nor message: {line}"
            );
            continue;
        }
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        if id.is_null() {
            assert!(msg.get("error").is_some(), "a result without an id: {line}");
            continue;
        }
        let key = id.to_string();
        let Some((n, method)) = expected.get(&key) else {
            panic!("an answer to id {key}, which no request had: {line}");
        };
        let seen = answered.entry(key.clone()).or_insert(0);
        *seen += 1;
        assert!(
            *seen <= *n,
            "id {key} answered {seen} times for {n} requests"
        );
        if method == "tools/call" {
            if let Some(result) = msg.get("result") {
                assert_eq!(
                    result.get("isError"),
                    Some(&Value::Bool(true)),
                    "a tool call reported success though every gate call failed: {line}"
                );
            }
        }
    }
    assert!(
        !waiting(&answered),
        "the server closed without answering; expected {expected:?}, got {answered:?}"
    );
    if let Ok(mut wr) = writer.await {
        let _ = wr.shutdown().await;
    }
    drop(lines);
    let _ = running.cancel().await;
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(run(data));
});
