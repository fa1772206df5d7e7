//! Section 10 through the real gate: an agent cannot cover its own write.
//! Each test is an attack that worked before issue 11: a window-only step
//! with an op nothing runs, a compensation "verified" by a check the agent
//! chose, a spoofed `agent`, and a file seen before its folder was marked
//! customer-borne.

use std::sync::{Arc, Mutex};

use recourse_client::WriteStatus;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{codes, TestGate};

async fn catalog(gate: &TestGate, body: Value) {
    let (s, b) = gate
        .raw(
            Method::POST,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

/// A stand-in for the institution's systems that answers 200 to anything
/// and keeps every request it received.
#[derive(Clone, Default)]
struct Systems {
    calls: Arc<Mutex<Vec<String>>>,
}

impl Systems {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

async fn start_systems() -> (String, Systems) {
    use axum::extract::State;
    use axum::http::{Method as M, StatusCode, Uri};
    async fn answer(
        State(s): State<Systems>,
        method: M,
        uri: Uri,
    ) -> (StatusCode, axum::Json<Value>) {
        s.calls
            .lock()
            .unwrap()
            .push(format!("{method} {}", uri.path()));
        (StatusCode::OK, axum::Json(json!({"ok": true})))
    }
    let systems = Systems::default();
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(systems.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, systems)
}

#[tokio::test]
async fn a_window_only_step_with_a_noop_op_does_not_release_an_fs_delete_held_as_uncovered() {
    let gate = TestGate::start(&[]);
    let app = gate.root.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("config.toml"), "port = 8080\n").unwrap();
    let app_id = format!("fs:{}", app.display());
    catalog(
        &gate,
        json!({"resources": [{"id": app_id}, {"id": "svc:app-deploy", "title": "the running service"}],
               "edges": [{"from": app_id, "to": "svc:app-deploy",
                          "why": "the service reads its configuration from this folder"}]}),
    )
    .await;
    let agent = gate.client(&gate.tokens.agent);
    let delete = |key: &str| {
        json!({"intent": "delete the app folder", "idempotency_key": key,
               "action": {"connector": "fs", "op": "delete", "path": app.to_str().unwrap()}})
    };
    let held = agent.submit_json(&delete("plain")).await.unwrap();
    assert_eq!(held.status, WriteStatus::Held, "{:?}", codes(&held));
    assert!(
        codes(&held).contains(&("uncovered".into(), "svc:app-deploy".into())),
        "{:?}",
        codes(&held)
    );

    // The agent covers the service itself: a step nothing runs, "verified"
    // by a window it chose.
    let mut covered = delete("self-covered");
    covered["rollback"] = json!({"steps": [{
        "restores": ["svc:app-deploy"],
        "op": {"connector": "fs", "op": "noop"},
        "requires": [{"id": "forever", "kind": "window", "until": "2099-01-01T00:00:00Z"}]}]});
    let rec = agent.submit_json(&covered).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Held, "{:?}", codes(&rec));
    assert!(
        codes(&rec).contains(&("uncovered".into(), "svc:app-deploy".into())),
        "{:?}",
        codes(&rec)
    );
    let step = rec.decision.steps.iter().find(|s| s.step == 0).unwrap();
    assert!(!step.available, "{:?}", rec.decision.steps);
    assert!(app.join("config.toml").exists(), "nothing was deleted");

    // The same with an op the gate does run (`fs` `restore`) but only a
    // window: still nothing proves the service can be put back.
    covered["idempotency_key"] = json!("restore-op");
    covered["rollback"]["steps"][0]["op"] = json!({"connector": "fs", "op": "restore"});
    let rec = agent.submit_json(&covered).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Held, "{:?}", codes(&rec));
    assert!(
        codes(&rec).contains(&("uncovered".into(), "svc:app-deploy".into())),
        "{:?}",
        codes(&rec)
    );
    assert!(app.join("config.toml").exists(), "nothing was deleted");
}

fn refund(host: &str, key: &str, check_path: &str) -> Value {
    let url = |p: &str| format!("http://{host}{p}");
    json!({"intent": "refund order 9", "idempotency_key": key, "touches": ["pay:refund-9"],
        "action": {"connector": "http", "op": "request", "method": "POST", "url": url("/refunds/9")},
        "rollback": {"steps": [{"restores": ["pay:refund-9", format!("http:{host}/refunds/9")],
            "op": {"connector": "http", "op": "request", "method": "POST", "url": url("/refunds/9/reverse")},
            "requires": [{"id": "refund-record", "kind": "compensation", "location": "ledger:pay",
                          "check": {"url": url(check_path), "method": "GET"}}]}]}})
}

#[tokio::test]
async fn an_http_compensation_is_probed_only_under_the_risk_officers_probe_prefix() {
    let (host, systems) = start_systems().await;
    let gate = TestGate::start(&["--http-allow", &host]);
    catalog(
        &gate,
        json!({"resources": [{"id": "pay:refund-9", "title": "refund of order 9"},
                             {"id": "ledger:pay", "probe_prefix": format!("http://{host}/ledger/")}]}),
    )
    .await;
    let agent = gate.client(&gate.tokens.agent);

    // A check the agent points anywhere else is never probed.
    let rec = agent
        .submit_json(&refund(&host, "elsewhere", "/agent-says/ok"))
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Held, "{:?}", codes(&rec));
    assert!(
        codes(&rec).contains(&("evidence_unverifiable".into(), "refund-record".into())),
        "{:?}",
        codes(&rec)
    );
    assert_eq!(
        systems.calls(),
        Vec::<String>::new(),
        "neither the check nor the write was sent"
    );

    // A location with no probe_prefix: the same.
    let mut unlisted = refund(&host, "unlisted", "/ledger/refund-9");
    unlisted["rollback"]["steps"][0]["requires"][0]["location"] = json!("vault:nowhere");
    let rec = agent.submit_json(&unlisted).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Held, "{:?}", codes(&rec));
    assert!(
        codes(&rec).contains(&("evidence_unverifiable".into(), "refund-record".into())),
        "{:?}",
        codes(&rec)
    );
    assert_eq!(systems.calls(), Vec::<String>::new());

    // Under the prefix the risk officer declared, the gate probes it.
    let rec = agent
        .submit_json(&refund(&host, "ledger", "/ledger/refund-9"))
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Executed, "{:?}", codes(&rec));
    let calls = systems.calls();
    assert_eq!(
        calls.first().map(String::as_str),
        Some("GET /ledger/refund-9"),
        "probed before the write: {calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| *c == "POST /refunds/9").count(),
        1,
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .all(|c| c == "GET /ledger/refund-9" || c == "POST /refunds/9"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn the_agent_of_a_write_is_the_callers_token_name_whatever_the_body_says() {
    let gate = TestGate::start(&[]);
    let file = gate.root.join("notes.txt");
    std::fs::write(&file, "hello\n").unwrap();
    let agent = gate.client(&gate.tokens.agent);
    let rec = agent
        .submit_json(&json!({"agent": "rev-1", "intent": "tidy up",
            "action": {"connector": "fs", "op": "delete", "path": file.to_str().unwrap()}}))
        .await
        .unwrap();
    assert_eq!(rec.agent, "agent-1");
    assert_eq!(rec.proposal.agent, "agent-1", "the record's proposal");
    let stored = gate
        .client(&gate.tokens.admin)
        .write(&rec.id)
        .await
        .unwrap();
    assert_eq!(stored.proposal.agent, "agent-1", "the stored proposal");
    let audit = gate.client(&gate.tokens.admin).audit().await.unwrap();
    let submitted = audit
        .iter()
        .find(|e| e.action == "write.submitted" && e.write_id.as_deref() == Some(&rec.id))
        .expect("a submission entry");
    assert_eq!(submitted.actor, "agent-1");
    assert_eq!(
        submitted.body["proposal"]["agent"], "agent-1",
        "{}",
        submitted.body
    );
    assert!(
        !audit.iter().any(|e| e.body.to_string().contains("rev-1")
            && e.write_id.as_deref() == Some(&rec.id)),
        "the spoofed name reaches no audit entry of the write"
    );
}

#[tokio::test]
async fn a_folder_marked_customer_borne_covers_the_files_already_seen_under_it() {
    let gate = TestGate::start(&[]);
    let folder = gate.root.join("customers");
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join("acct-17.json");
    std::fs::write(&file, "{\"balance\": 12}\n").unwrap();
    let agent = gate.client(&gate.tokens.agent);

    // The gate sees the file: it joins the catalog with no bearer of its own.
    let first = agent
        .submit_json(
            &json!({"intent": "update the balance", "idempotency_key": "seen",
            "action": {"connector": "fs", "op": "write", "path": file.to_str().unwrap(),
                       "content_b64": "eyJiYWxhbmNlIjogMTN9Cg=="}}),
        )
        .await
        .unwrap();
    assert_eq!(first.status, WriteStatus::Executed, "{:?}", codes(&first));
    let file_id = format!("fs:{}", file.display());
    let seen = gate
        .raw(
            Method::GET,
            &format!("/v1/catalog/resources/{file_id}"),
            &gate.tokens.risk,
            None,
        )
        .await;
    assert_eq!(seen.0, 200, "{}", seen.1);
    assert_eq!(
        seen.1["resource"].get("bearer"),
        None,
        "stored with no bearer of its own: {}",
        seen.1
    );

    // Afterwards a risk officer marks the folder customer-borne.
    catalog(
        &gate,
        json!({"resources": [{"id": format!("fs:{}", folder.display()), "bearer": "customer"}]}),
    )
    .await;
    let rec = agent
        .submit_json(
            &json!({"intent": "delete the account file", "idempotency_key": "delete",
            "action": {"connector": "fs", "op": "delete", "path": file.to_str().unwrap()}}),
        )
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Held, "{:?}", codes(&rec));
    assert!(
        codes(&rec).contains(&("third_party_bearer".into(), file_id.clone())),
        "{:?}",
        codes(&rec)
    );
    assert!(file.exists(), "nothing was deleted");
}
