#![expect(
    clippy::unwrap_used,
    reason = "the fake gate is test scaffolding: a failure there should fail the test"
)]

//! The commands' logic (`Console`) against a fake gate on a local port: no
//! window, no Tauri runtime. Checks what reaches the webview: typed errors,
//! never the token.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use recourse_console::console::Console;
use recourse_console::error::ConsoleError;
use recourse_console::sse::{EventSink, LinkState};
use recourse_console::store::{TokenStore, Tokens};

/// Answers: whoami for `good`, 401 otherwise; approve -> 403 with the
/// gate's error body; events -> one SSE event then close.
fn fake_gate() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let authed = head.contains("Bearer good");
            let (status, ctype, payload) = if !authed {
                (
                    "401 Unauthorized",
                    "application/json",
                    r#"{"error":{"code":"unauthorized","message":"unknown token"}}"#.to_string(),
                )
            } else if head.starts_with("GET /v1/whoami") {
                (
                    "200 OK",
                    "application/json",
                    r#"{"name":"rita","role":"reviewer"}"#.to_string(),
                )
            } else if head.starts_with("POST /v1/writes/w1/rollback") {
                ("403 Forbidden", "application/json", r#"{"error":{"code":"forbidden","message":"the reviewer role may not roll back"}}"#.to_string())
            } else if head.starts_with("POST /v1/writes/w1/resolve") {
                // Echoes the body, so the test sees what went on the wire.
                let echoed = serde_json::to_string(&String::from_utf8_lossy(&body)).unwrap();
                (
                    "409 Conflict",
                    "application/json",
                    format!(r#"{{"error":{{"code":"conflict","message":{echoed}}}}}"#),
                )
            } else if head.starts_with("PUT /v1/catalog ") {
                // The catalog moved: a 409 whose message echoes the body sent.
                let echoed = serde_json::to_string(&String::from_utf8_lossy(&body)).unwrap();
                (
                    "409 Conflict",
                    "application/json",
                    format!(r#"{{"error":{{"code":"catalog_moved","message":{echoed}}}}}"#),
                )
            } else if head.starts_with("GET /v1/audit?order=desc&before=5&limit=500 ")
                || head.starts_with("GET /v1/audit?order=desc&limit=2 ")
            {
                ("200 OK", "application/json", "[]".to_string())
            } else if head.starts_with("GET /v1/events") {
                ("200 OK", "text/event-stream", "data: {\"kind\":\"write\",\"write_id\":\"w1\",\"status\":\"held\",\"at\":\"2026-01-01T00:00:00Z\"}\n\n".to_string())
            } else {
                (
                    "404 Not Found",
                    "application/json",
                    r#"{"error":{"code":"not_found","message":"no route"}}"#.to_string(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                payload.len()
            );
        }
    });
    format!("http://{addr}")
}

#[derive(Default)]
struct Sink(Mutex<Vec<String>>);

impl EventSink for Sink {
    fn gate_event(&self, event: recourse_client::GateEvent) {
        self.0
            .lock()
            .unwrap()
            .push(format!("event {}", event.write_id.unwrap_or_default()));
    }
    fn link(&self, state: LinkState) {
        self.0.lock().unwrap().push(format!("link {state:?}"));
    }
}

#[tokio::test]
async fn connect_checks_the_token_and_never_returns_it() {
    let url = fake_gate();
    let console = Console::new(Tokens::without_keyring(None), None);
    let bad = console.connect(&url, "nope", false).await.unwrap_err();
    assert!(
        matches!(bad, ConsoleError::Api { status: 401, .. }),
        "{bad:?}"
    );
    assert!(console.session().await.is_none());

    let ok = console.connect(&url, " good ", false).await.unwrap();
    assert_eq!(ok.who.name, "rita");
    assert_eq!(ok.store, TokenStore::Memory);
    let json = serde_json::to_string(&ok).unwrap();
    assert!(
        !json.contains("good"),
        "the token leaked to the webview: {json}"
    );
}

#[tokio::test]
async fn a_refusal_arrives_as_a_typed_api_error() {
    let url = fake_gate();
    let console = Console::new(Tokens::without_keyring(None), None);
    assert_eq!(
        console.list_writes(None).await.unwrap_err(),
        ConsoleError::NotConnected
    );
    console.connect(&url, "good", false).await.unwrap();
    let err = console.rollback("w1", "because", false).await.unwrap_err();
    assert_eq!(
        err,
        ConsoleError::Api {
            status: 403,
            code: recourse_client::ErrorCode::Forbidden,
            message: "the reviewer role may not roll back".into(),
            field: None
        }
    );
    let v = serde_json::to_value(&err).unwrap();
    assert_eq!(v["kind"], "api");
    // Nothing is sent when the reason is empty.
    assert!(matches!(
        console.reject("w1", "  ").await.unwrap_err(),
        ConsoleError::Invalid { .. }
    ));
}

#[tokio::test]
async fn resolve_sends_the_verdict_and_requires_a_reason() {
    let url = fake_gate();
    let console = Console::new(Tokens::without_keyring(None), None);
    console.connect(&url, "good", false).await.unwrap();
    assert!(matches!(
        console.resolve("w1", true, " ").await.unwrap_err(),
        ConsoleError::Invalid { field, .. } if field == "reason"
    ));
    let err = console
        .resolve("w1", false, "checked the target: unchanged")
        .await
        .unwrap_err();
    let ConsoleError::Api {
        status, message, ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(status, 409);
    let sent: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"executed": false, "reason": "checked the target: unchanged"})
    );
}

#[tokio::test]
async fn a_catalog_replacement_needs_a_reason_and_sends_it_with_the_version() {
    let url = fake_gate();
    let console = Console::new(Tokens::without_keyring(None), None);
    console.connect(&url, "good", false).await.unwrap();
    let req = |reason: Option<&str>| recourse_client::CatalogReplacement {
        catalog: recourse_core::Catalog::default(),
        expect_version: Some(7),
        recent: None,
        reason: reason.map(str::to_string),
    };
    for blank in [None, Some("  ")] {
        assert!(matches!(
            console.catalog_replace(req(blank)).await.unwrap_err(),
            ConsoleError::Invalid { field, .. } if field == "reason"
        ));
    }
    let err = console
        .catalog_replace(req(Some(" the folder is the institution's ")))
        .await
        .unwrap_err();
    let ConsoleError::Api {
        status,
        code,
        message,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!((status, code.as_str()), (409, "catalog_moved"));
    let sent: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert_eq!(sent["expect_version"], 7);
    assert_eq!(sent["reason"], "the folder is the institution's");
}

#[tokio::test]
async fn the_audit_trail_is_asked_for_newest_first() {
    let url = fake_gate();
    let console = Console::new(Tokens::without_keyring(None), None);
    console.connect(&url, "good", false).await.unwrap();
    // The fake gate answers only these exact queries; anything else is a 404.
    assert_eq!(console.audit(Some(5), None).await.unwrap(), vec![]);
    assert_eq!(console.audit(None, Some(2)).await.unwrap(), vec![]);
}

#[tokio::test]
async fn an_unreachable_gate_is_said_so() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let console = Console::new(Tokens::without_keyring(None), None);
    let err = console
        .connect(&format!("http://127.0.0.1:{port}"), "good", false)
        .await
        .unwrap_err();
    assert!(matches!(err, ConsoleError::Unreachable { .. }), "{err:?}");
    assert!(matches!(
        console.connect("ftp://x", "t", false).await.unwrap_err(),
        ConsoleError::Invalid { .. }
    ));
}

#[tokio::test]
async fn gate_events_are_forwarded_and_the_link_state_is_kept() {
    let url = fake_gate();
    let sink = Arc::new(Sink::default());
    let console = Console::new(Tokens::without_keyring(None), Some(sink.clone()));
    console.connect(&url, "good", false).await.unwrap();
    for _ in 0..50 {
        if sink.0.lock().unwrap().iter().any(|e| e == "event w1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let seen = sink.0.lock().unwrap().clone();
    assert!(seen.contains(&"link Live".to_string()), "{seen:?}");
    assert!(seen.contains(&"event w1".to_string()), "{seen:?}");
    assert!(console.link_state().is_some());
    console.disconnect(false).await;
    assert!(console.session().await.is_none());
}
