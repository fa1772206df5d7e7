use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use recourse_core::Step;

use super::*;

/// A small account service: close, reopen, status; plus endpoints that
/// echo, fail, redirect and answer large bodies.
#[derive(Default)]
struct Service {
    closed: bool,
    /// Headers seen by the last request, lowercase name -> value.
    seen: Vec<(String, String)>,
    requests: u32,
}

type Shared = Arc<Mutex<Service>>;

fn remember(state: &Shared, headers: &AxumHeaders) {
    let mut s = state.lock().unwrap();
    s.requests += 1;
    s.seen = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
}

async fn close(State(state): State<Shared>, headers: AxumHeaders) -> impl IntoResponse {
    remember(&state, &headers);
    state.lock().unwrap().closed = true;
    (
        StatusCode::OK,
        [("x-api-key", "sekret-123"), ("x-plain", "visible")],
        "closed with sekret-123 in the body",
    )
}

async fn reopen(State(state): State<Shared>, headers: AxumHeaders) -> impl IntoResponse {
    remember(&state, &headers);
    state.lock().unwrap().closed = false;
    (StatusCode::OK, "reopened")
}

async fn status(State(state): State<Shared>) -> impl IntoResponse {
    if state.lock().unwrap().closed {
        (StatusCode::CONFLICT, "closed")
    } else {
        (StatusCode::OK, "open")
    }
}

async fn big() -> impl IntoResponse {
    "x".repeat(100 * 1024)
}

async fn fail(State(state): State<Shared>, headers: AxumHeaders) -> impl IntoResponse {
    remember(&state, &headers);
    (StatusCode::INTERNAL_SERVER_ERROR, "boom")
}

async fn redirect() -> impl IntoResponse {
    (
        StatusCode::FOUND,
        [("location", "http://example.invalid/")],
        "",
    )
}

async fn server() -> (String, Shared) {
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/accounts/4411/close", post(close))
        .route("/accounts/4411/reopen", post(reopen))
        .route("/accounts/4411/reopen-broken", post(fail))
        .route("/accounts/4411/status", get(status))
        .route("/big", get(big))
        .route("/redirect", post(redirect))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("127.0.0.1:{}", addr.port()), state)
}

fn connector(host: &str) -> HttpConnector {
    let mut secrets = HashMap::new();
    secrets.insert(
        host.to_string(),
        vec![("X-Api-Key".to_string(), "sekret-123".to_string())],
    );
    HttpConnector::new(vec![host.to_string()], secrets, Duration::from_secs(5)).unwrap()
}

fn proposal(host: &str, reopen: &str) -> Proposal {
    serde_json::from_value(json!({
        "agent": "integrity-bot",
        "action": {"connector": "http", "op": "request", "method": "POST",
                   "url": format!("http://{host}/accounts/4411/close"), "body": {"reason": "fraud"}},
        "touches": [format!("http:{host}/accounts/4411/close")],
        "rollback": {"steps": [{
            "restores": [format!("http:{host}/accounts/4411/close")],
            "op": {"connector": "http", "op": "request", "method": "POST",
                   "url": format!("http://{host}/accounts/4411/{reopen}")},
            "requires": [{"id": "open-again", "kind": "compensation", "location": format!("http:{host}/accounts/4411/status"),
                          "check": {"url": format!("http://{host}/accounts/4411/status"), "method": "GET"}}]
        }]}
    }))
    .unwrap()
}

#[tokio::test]
async fn plan_touches_the_endpoint_and_models_no_step() {
    let (host, _) = server().await;
    let c = connector(&host);
    let p = proposal(&host, "reopen");
    let plan = c.plan("w1", &p.action).await.unwrap();
    assert_eq!(
        plan.touches,
        vec![format!("http:{host}/accounts/4411/close")]
    );
    assert!(plan.step.is_none());
    assert_eq!(plan.resources.len(), 1);
}

#[tokio::test]
async fn hosts_outside_the_allow_list_are_refused() {
    let c = connector("127.0.0.1:1");
    let err = c
        .plan("w1", &json!({"connector": "http", "op": "request", "method": "POST", "url": "http://evil.example/x"}))
        .await
        .unwrap_err();
    match err {
        ConnectorError::Refuse { code, message } => {
            assert_eq!(code, ReasonCode::UnknownConnector);
            assert!(message.contains("evil.example"), "{message}");
        }
        other => panic!("expected refuse, got {other:?}"),
    }
    // Same host, other port: refused too.
    let err = c
        .plan(
            "w1",
            &json!({"connector": "http", "op": "request", "url": "http://127.0.0.1:2/x"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Refuse { .. }));
    // A bare host entry allows every port.
    let any = HttpConnector::new(
        vec!["localhost".into()],
        HashMap::new(),
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(any
        .plan(
            "w",
            &json!({"connector": "http", "op": "request", "url": "http://localhost:9/x"})
        )
        .await
        .is_ok());
    assert!(any
        .plan(
            "w",
            &json!({"connector": "http", "op": "request", "url": "https://localhost/x"})
        )
        .await
        .is_ok());
}

#[tokio::test]
async fn agent_credentials_are_invalid() {
    let c = connector("127.0.0.1:1");
    for name in ["Authorization", "cookie", "X-API-KEY"] {
        let err = c
            .plan(
                "w1",
                &json!({"connector": "http", "op": "request", "url": "http://127.0.0.1:1/x", "headers": {name: "Bearer abc"}}),
            )
            .await
            .unwrap_err();
        match err {
            ConnectorError::Invalid { field, .. } => {
                assert_eq!(field, format!("action.headers.{name}"))
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }
    let err = c
        .plan(
            "w1",
            &json!({"connector": "http", "op": "request", "url": "http://user:pw@127.0.0.1:1/x"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::Invalid { ref field, .. } if field == "action.url"),
        "{err:?}"
    );
    let err = c
        .plan(
            "w1",
            &json!({"connector": "http", "op": "request", "url": "ftp://127.0.0.1:1/x"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Invalid { .. }));
    let err = c
        .plan(
            "w1",
            &json!({"connector": "http", "op": "delete", "url": "http://127.0.0.1:1/x"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Invalid { ref field, .. } if field == "action.op"));
    let err = c
        .plan(
            "w1",
            &json!({"connector": "http", "op": "request", "method": "NOT A METHOD", "url": "http://127.0.0.1:1/x"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Invalid { ref field, .. } if field == "action.method"));
}

#[tokio::test]
async fn execute_adds_secrets_redacts_them_and_rollback_compensates() {
    let (host, state) = server().await;
    let c = connector(&host);
    let p = proposal(&host, "reopen");
    let ev = &p.rollback.steps[0].requires[0];

    // Before the write the account is open: the check passes.
    let before = c.observe("w1", ev).await.unwrap();
    assert!(before.present, "{before:?}");
    assert!(before.captured_at.is_some());

    let capture = c.capture("w1", &p).await.unwrap();
    let outcome = c.execute("w1", &p, &capture).await.unwrap();
    assert_eq!(outcome["status"], 200);
    assert_eq!(outcome["headers"]["x-api-key"], REDACTED);
    assert_eq!(outcome["headers"]["x-plain"], "visible");
    assert_eq!(outcome["body"], "closed with [redacted] in the body");
    {
        let s = state.lock().unwrap();
        assert!(s.closed);
        let seen: HashMap<_, _> = s.seen.iter().cloned().collect();
        assert_eq!(
            seen.get("x-api-key").map(String::as_str),
            Some("sekret-123")
        );
        assert_eq!(seen.get("idempotency-key").map(String::as_str), Some("w1"));
        assert_eq!(
            seen.get("content-type").map(String::as_str),
            Some("application/json")
        );
    }
    assert_eq!(c.applied("w1", &p, &capture).await.unwrap(), None);

    // Closed now: the check fails.
    let after = c.observe("w1", ev).await.unwrap();
    assert!(!after.present);
    assert!(after.detail.unwrap().contains("409"));

    let report = c
        .restore("w1", &p, &capture, Some(&outcome), false)
        .await
        .unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(report.items.len(), 1);
    assert_eq!(report.items[0].status, RestoreStatus::Restored);
    assert!(!state.lock().unwrap().closed);
}

#[tokio::test]
async fn failed_compensation_is_not_restored() {
    let (host, state) = server().await;
    let c = connector(&host);
    let p = proposal(&host, "reopen-broken");
    let capture = c.capture("w2", &p).await.unwrap();
    c.execute("w2", &p, &capture).await.unwrap();
    let report = c.restore("w2", &p, &capture, None, false).await.unwrap();
    assert!(!report.verified);
    assert_eq!(report.items[0].status, RestoreStatus::Failed);
    assert!(report.items[0].detail.as_deref().unwrap().contains("500"));
    assert!(state.lock().unwrap().closed);
}

#[tokio::test]
async fn compensation_that_does_not_pass_its_check_is_a_mismatch() {
    let (host, _) = server().await;
    let c = connector(&host);
    let mut p = proposal(&host, "reopen");
    // The compensation answers 2xx but the declared check still fails.
    let action = p.action.clone();
    p.rollback.steps[0].op = action;
    let capture = c.capture("w3", &p).await.unwrap();
    c.execute("w3", &p, &capture).await.unwrap();
    let report = c.restore("w3", &p, &capture, None, false).await.unwrap();
    assert!(!report.verified);
    assert_eq!(report.items[0].status, RestoreStatus::Mismatch);
}

#[tokio::test]
async fn compensation_to_a_host_outside_the_list_sends_nothing() {
    let (host, state) = server().await;
    let c = connector(&host);
    let mut p = proposal(&host, "reopen");
    p.rollback.steps.push(Step {
        restores: vec!["http:evil.example/x".into()],
        op: json!({"connector": "http", "op": "request", "method": "POST", "url": "http://evil.example/x"}),
        requires: vec![],
        modelled_by: None,
    });
    let before = state.lock().unwrap().requests;
    let err = c
        .restore("w4", &p, &Value::Null, None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Refuse { .. }));
    assert_eq!(state.lock().unwrap().requests, before);
}

#[tokio::test]
async fn non_2xx_fails_large_bodies_truncate_redirects_are_not_followed() {
    let (host, _) = server().await;
    let c = connector(&host);
    let mut p = proposal(&host, "reopen");
    p.action = json!({"connector": "http", "op": "request", "method": "POST", "url": format!("http://{host}/accounts/4411/reopen-broken")});
    let err = c.execute("w5", &p, &Value::Null).await.unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");

    p.action = json!({"connector": "http", "op": "request", "method": "GET", "url": format!("http://{host}/big")});
    let outcome = c.execute("w6", &p, &Value::Null).await.unwrap();
    assert_eq!(outcome["body"].as_str().unwrap().len(), BODY_LIMIT);
    assert_eq!(outcome["body_truncated"], true);

    p.action = json!({"connector": "http", "op": "request", "method": "POST", "url": format!("http://{host}/redirect")});
    let err = c.execute("w7", &p, &Value::Null).await.unwrap_err();
    assert!(err.to_string().contains("302"), "{err}");
}

#[tokio::test]
async fn evidence_without_check_is_not_observed_and_unreachable_is_absent() {
    let c = connector("127.0.0.1:1");
    let ev: Evidence =
        serde_json::from_value(json!({"id": "s", "kind": "snapshot", "location": "vault:x"}))
            .unwrap();
    assert!(c.observe("w", &ev).await.is_none());
    let ev: Evidence = serde_json::from_value(
        json!({"id": "c", "kind": "compensation", "location": "http:127.0.0.1:1/x", "check": {"url": "http://127.0.0.1:1/x"}}),
    )
    .unwrap();
    let seen = c.observe("w", &ev).await.unwrap();
    assert!(!seen.present);
    let ev: Evidence = serde_json::from_value(
        json!({"id": "c", "kind": "compensation", "location": "http:evil.example/x", "check": {"url": "http://evil.example/x"}}),
    )
    .unwrap();
    let seen = c.observe("w", &ev).await.unwrap();
    assert!(!seen.present);
    assert!(seen.detail.unwrap().contains("not allowed"));
}

#[test]
fn allow_entries_parse() {
    assert_eq!(
        HostRule::parse("Host.Example"),
        Some(HostRule {
            host: "host.example".into(),
            port: None
        })
    );
    assert_eq!(
        HostRule::parse("a:8080"),
        Some(HostRule {
            host: "a".into(),
            port: Some(8080)
        })
    );
    assert_eq!(
        HostRule::parse("[::1]:80"),
        Some(HostRule {
            host: "[::1]".into(),
            port: Some(80)
        })
    );
    assert_eq!(HostRule::parse("a:b"), None);
    assert_eq!(HostRule::parse("a/b"), None);
    assert_eq!(HostRule::parse(""), None);
    assert!(HttpConnector::new(
        vec!["bad/entry".into()],
        HashMap::new(),
        Duration::from_secs(1)
    )
    .is_err());
}

#[test]
fn debug_hides_secret_values() {
    let c = connector("h:1");
    let shown = format!("{c:?}");
    assert!(!shown.contains("sekret-123"));
    assert!(shown.contains("x-api-key"));
}

#[tokio::test]
async fn no_connection_is_unavailable_and_no_answer_is_uncertain() {
    // A port nobody listens on: the request never left.
    let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("127.0.0.1:{}", free.local_addr().unwrap().port());
    drop(free);
    let c = HttpConnector::new(vec![host.clone()], HashMap::new(), Duration::from_secs(2)).unwrap();
    let p = proposal(&host, "reopen");
    let err = c.execute("w-refused", &p, &Value::Null).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Unavailable(_)), "{err:?}");

    // A server that takes the request and never answers: it may have acted.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("127.0.0.1:{}", silent.local_addr().unwrap().port());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = silent.accept().await {
            // Kept open, never answered.
            let _ = tx.send(sock);
        }
    });
    let c = HttpConnector::new(
        vec![host.clone()],
        HashMap::new(),
        Duration::from_millis(500),
    )
    .unwrap();
    let p = proposal(&host, "reopen");
    let err = c.execute("w-silent", &p, &Value::Null).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Uncertain(_)), "{err:?}");
    assert!(rx.try_recv().is_ok(), "the request reached the server");
}

#[test]
fn accepts_a_compensating_request_to_an_allowed_host_only() {
    let c = connector("127.0.0.1:9");
    assert!(c.accepts_step(
        &json!({"connector": "http", "op": "request", "method": "POST",
                                   "url": "http://127.0.0.1:9/reopen"})
    ));
    for op in [
        json!({"connector": "http", "op": "request", "method": "POST", "url": "http://elsewhere:9/x"}),
        json!({"connector": "http", "op": "noop"}),
        json!({"connector": "http", "op": "request", "url": "http://127.0.0.1:9/x",
               "headers": {"Authorization": "Bearer mine"}}),
        json!({"connector": "fs", "op": "request", "url": "http://127.0.0.1:9/x"}),
    ] {
        assert!(!c.accepts_step(&op), "{op}");
    }
}
