//! Operating the gate, as a real process: observe mode (switched by an
//! admin or `--mode`, kept in the store, audited) and notifications to
//! webhooks (signed, retried, recorded), against a receiver the test runs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use recourse_client::{GateMode, WriteRecord, WriteStatus};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::{codes, TestGate};

/// A folder whose bearer is a customer: every delete in it is held when
/// the gate enforces.
async fn customer_folder(gate: &TestGate) -> std::path::PathBuf {
    let dir = gate.root.join("customer");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("history.csv"), "15 years of orders\n").unwrap();
    let catalog =
        json!({"resources": [{"id": format!("fs:{}", dir.display()), "bearer": "customer"}]});
    let (s, body) = gate
        .raw(
            Method::POST,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(catalog.to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    dir
}

fn delete(path: &std::path::Path, intent: &str) -> Value {
    json!({"intent": intent,
           "action": {"connector": "fs", "op": "delete", "path": path.to_str().unwrap()}})
}

async fn audit_actions(gate: &TestGate, action: &str) -> Vec<recourse_client::AuditEntry> {
    gate.client(&gate.tokens.admin)
        .audit()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

#[tokio::test]
async fn observe_mode_runs_a_customer_borne_delete_marks_it_and_a_rollback_restores_it() {
    let gate = TestGate::start(&["--mode", "observe"]);
    let admin = gate.client(&gate.tokens.admin);
    assert_eq!(admin.mode().await.unwrap().mode, GateMode::Observe);
    // The flag was written to the store, audited.
    let switched = audit_actions(&gate, "gate.mode").await;
    assert_eq!(switched.len(), 1, "{switched:?}");
    assert_eq!(switched[0].actor, "gate");
    assert_eq!(switched[0].body["mode"], "observe");

    let dir = customer_folder(&gate).await;
    let file = dir.join("history.csv");
    let agent = gate.client(&gate.tokens.agent);
    let ran = agent
        .submit_json(&delete(&file, "delete the customer's order history"))
        .await
        .unwrap();
    // Decided as enforcement would have (a hold, for the customer), and
    // run anyway: captured, then deleted.
    assert_eq!(ran.status, WriteStatus::Executed, "{:?}", ran.history);
    assert_eq!(ran.decision.decision, recourse_core::Verdict::Hold);
    assert!(
        codes(&ran).iter().any(|(c, _)| c == "third_party_bearer"),
        "{:?}",
        codes(&ran)
    );
    assert!(!file.exists(), "observe mode ran the delete");
    let observed = ran.observed_hold.clone().expect("marked observed_hold");
    assert!(observed
        .reason_codes
        .contains(&recourse_core::ReasonCode::ThirdPartyBearer));

    // Marked in the record and in the list, as the API returns them.
    let (s, one) = gate
        .raw(
            Method::GET,
            &format!("/v1/writes/{}", ran.id),
            &gate.tokens.reviewer,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        one["observed_hold"]["reason_codes"],
        json!(["third_party_bearer"])
    );
    let (s, list) = gate
        .raw(Method::GET, "/v1/writes", &gate.tokens.reviewer, None)
        .await;
    assert_eq!(s, 200);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == json!(ran.id))
        .unwrap();
    assert_eq!(listed["observed_hold"], true, "{listed}");

    // Rolled back like any other write: the file is back, byte for byte.
    let back = gate
        .client(&gate.tokens.incident)
        .rollback(&ran.id, "observe mode let it through", false)
        .await
        .unwrap();
    assert_eq!(back.status, WriteStatus::RolledBack, "{:?}", back.rollback);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "15 years of orders\n"
    );

    // A refusal is still a refusal: a path outside the roots.
    let outside = gate.dir.path().join("outside.txt");
    std::fs::write(&outside, "keep").unwrap();
    let refused = agent
        .submit_json(&delete(&outside, "delete outside the roots"))
        .await
        .unwrap();
    assert_eq!(
        refused.status,
        WriteStatus::Refused,
        "{:?}",
        codes(&refused)
    );
    assert!(refused.observed_hold.is_none());
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");

    // And a freeze still freezes.
    gate.client(&gate.tokens.incident)
        .freeze("incident 7")
        .await
        .unwrap();
    let other = gate.root.join("scratch.txt");
    std::fs::write(&other, "x").unwrap();
    let frozen = agent
        .submit_json(&delete(&other, "tidy scratch"))
        .await
        .unwrap();
    assert_eq!(frozen.status, WriteStatus::Held);
    assert!(other.exists());
    assert!(admin.verify_audit().await.unwrap().ok);
}

#[tokio::test]
async fn only_an_admin_switches_the_mode_each_switch_is_audited_and_the_store_keeps_it() {
    let mut gate = TestGate::start(&[]);
    let admin = gate.client(&gate.tokens.admin);
    assert_eq!(admin.mode().await.unwrap().mode, GateMode::Enforce);
    let body = json!({"mode": "observe", "reason": "adopt without stopping agents"})
        .to_string()
        .into_bytes();
    let before = gate.audit_len().await;
    for token in [
        &gate.tokens.agent,
        &gate.tokens.reviewer,
        &gate.tokens.risk,
        &gate.tokens.incident,
    ] {
        let (s, e) = gate
            .raw(Method::PUT, "/v1/mode", token, Some(body.clone()))
            .await;
        assert_eq!(s, 403, "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("admins switch"),
            "{e}"
        );
    }
    let (s, e) = gate
        .raw(
            Method::PUT,
            "/v1/mode",
            &gate.tokens.admin,
            Some(
                json!({"mode": "loose", "reason": "x"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"]["field"], "mode", "{e}");
    assert_eq!(gate.audit_len().await, before, "refusals change nothing");
    assert_eq!(admin.mode().await.unwrap().mode, GateMode::Enforce);

    let (s, state) = gate
        .raw(Method::PUT, "/v1/mode", &gate.tokens.admin, Some(body))
        .await;
    assert_eq!(s, 200, "{state}");
    assert_eq!(state["mode"], "observe");
    assert_eq!(state["by"], "admin-1");
    let switched = audit_actions(&gate, "gate.mode").await;
    assert_eq!(switched.len(), 1);
    assert_eq!(switched[0].actor, "admin-1");
    assert_eq!(switched[0].body["from"], "enforce");
    assert_eq!(switched[0].body["reason"], "adopt without stopping agents");

    // The mode lives in the store: a restart without the flag keeps it...
    gate.kill();
    gate.spawn(&[]);
    assert_eq!(
        gate.client(&gate.tokens.reviewer)
            .mode()
            .await
            .unwrap()
            .mode,
        GateMode::Observe
    );
    // ... and the flag, given, sets it (audited as the gate's).
    gate.respawn_with(&["--mode", "enforce"]);
    assert_eq!(
        gate.client(&gate.tokens.admin).mode().await.unwrap().mode,
        GateMode::Enforce
    );
    let switched = audit_actions(&gate, "gate.mode").await;
    assert_eq!(switched.len(), 2);
    assert_eq!(switched[1].actor, "gate");
    assert_eq!(switched[1].body["from"], "observe");
    assert!(
        gate.client(&gate.tokens.admin)
            .verify_audit()
            .await
            .unwrap()
            .ok
    );
}

/// A webhook receiver the test runs: it keeps what it was sent and
/// answers each request with the next scripted status (200 once the
/// script is used up).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

/// One request a receiver got: its headers and body.
type Received = (axum::http::HeaderMap, Vec<u8>);

async fn receiver(path: &'static str, answers: Vec<u16>) -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let app = axum::Router::new().route(
        path,
        axum::routing::post({
            let got = got.clone();
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                got.lock().unwrap().push((headers, body.to_vec()));
                let status = answers.lock().unwrap().pop_front().unwrap_or(200);
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url: format!("http://{addr}{path}"),
        got,
    }
}

impl Receiver {
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "the receiver got {} requests, not {n}",
            self.got.lock().unwrap().len()
        );
    }
}

/// The secret in a file only its owner reads, as the gate demands.
fn secret_file(dir: &tempfile::TempDir, secret: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join("webhook.secret");
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_string()
}

/// Checks a message's signature the way a receiver would, without the
/// gate's code: HMAC-SHA256 over `TIMESTAMP.BODY`, a recent timestamp.
fn verify(secret: &str, headers: &axum::http::HeaderMap, body: &[u8]) {
    let timestamp = headers["x-recourse-timestamp"].to_str().unwrap();
    let sent: i64 = timestamp.parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - sent).abs() < 300,
        "a stale timestamp: {sent} vs {now}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-recourse-signature"].to_str().unwrap(), want);
    // The same body under another timestamp does not verify: a replay
    // with a fresh timestamp needs the secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.", sent + 1).as_bytes());
    mac.update(body);
    assert_ne!(
        format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        want
    );
}

async fn wait_audit(gate: &TestGate, action: &str, write: &str, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let found: Vec<Value> = audit_actions(gate, action)
            .await
            .into_iter()
            .filter(|e| e.write_id.as_deref() == Some(write))
            .map(|e| e.body)
            .collect();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {n} `{action}` entries for {write}");
}

#[tokio::test]
async fn a_held_write_reaches_the_webhook_signed_without_its_secrets() {
    let hook = receiver("/hook", vec![]).await;
    let keys = tempfile::tempdir().unwrap();
    let secret = "whsec-8d7f6e5a4b3c";
    let file = secret_file(&keys, secret);
    let gate = TestGate::start(&["--webhook", &hook.url, "--webhook-secret-file", &file]);
    let dir = customer_folder(&gate).await;
    let target = dir.join("history.csv");
    let held: WriteRecord = gate
        .client(&gate.tokens.agent)
        .submit_json(&delete(
            &target,
            "purge history; db password=hunter2-s3cret, key AKIAQWERTYUIOPASDFGH",
        ))
        .await
        .unwrap();
    assert_eq!(held.status, WriteStatus::Held);

    let got = hook.wait_for(1).await;
    let (headers, body) = &got[0];
    verify(secret, headers, body);
    assert_eq!(headers["x-recourse-event"], "write.held");
    let text = String::from_utf8(body.clone()).unwrap();
    for leaked in ["hunter2-s3cret", "AKIAQWERTYUIOPASDFGH", secret] {
        assert!(
            !text.contains(leaked),
            "the message carries {leaked}: {text}"
        );
    }
    let msg: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(msg["event"], "write.held");
    assert_eq!(msg["write"]["id"], json!(held.id));
    assert_eq!(msg["write"]["status"], "held");
    assert_eq!(msg["write"]["bearers"], json!(["customer"]));
    assert!(
        msg["write"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "third_party_bearer"),
        "{msg}"
    );
    assert!(msg["write"]["intent"]
        .as_str()
        .unwrap()
        .starts_with("purge history"));
    assert_eq!(msg["link"], format!("recourse://writes/{}", held.id));
    // Nothing in it approves: no gate URL, no token.
    assert!(!text.contains(&gate.url), "{text}");
    assert!(!text.contains(&gate.tokens.reviewer));
    assert!(!text.contains("/approve"));
    let delivered = wait_audit(&gate, "notify.delivered", &held.id, 1).await;
    assert_eq!(delivered[0]["attempts"], 1);
    assert_eq!(delivered[0]["status"], 200);
    assert_eq!(delivered[0]["event"], "write.held");
    // Only what needs a person is announced: a proceed sends nothing.
    let plain = gate.root.join("plain.txt");
    std::fs::write(&plain, "x").unwrap();
    let ran = gate
        .client(&gate.tokens.agent)
        .submit_json(&delete(&plain, "tidy"))
        .await
        .unwrap();
    assert_eq!(ran.status, WriteStatus::Executed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_and_each_outcome_recorded() {
    let flaky = receiver("/flaky", vec![500, 500, 200]).await;
    let down = receiver("/down", vec![503; 10]).await;
    let keys = tempfile::tempdir().unwrap();
    let secret = "whsec-retry";
    let file = secret_file(&keys, secret);
    let gate = TestGate::start(&[
        "--webhook",
        &flaky.url,
        "--webhook",
        &down.url,
        "--webhook-secret-file",
        &file,
        "--webhook-attempts",
        "4",
        "--webhook-backoff-ms",
        "500",
    ]);
    let dir = customer_folder(&gate).await;
    let started = std::time::Instant::now();
    let held = gate
        .client(&gate.tokens.agent)
        .submit_json(&delete(&dir.join("history.csv"), "purge history"))
        .await
        .unwrap();
    assert_eq!(held.status, WriteStatus::Held);
    // The write path does not wait for webhooks: the answer came before
    // the failing receiver's last try (3.5 s of backoff after its first).
    assert!(
        down.got.lock().unwrap().len() < 4,
        "the submission waited for the deliveries ({:?})",
        started.elapsed()
    );

    let got = flaky.wait_for(3).await;
    // One message, three tries: the same delivery id and body, each
    // signed afresh.
    let delivery = got[0].0["x-recourse-delivery"].clone();
    for (headers, body) in &got {
        assert_eq!(headers["x-recourse-delivery"], delivery);
        assert_eq!(body, &got[0].1);
        verify(secret, headers, body);
    }
    let delivered = wait_audit(&gate, "notify.delivered", &held.id, 1).await;
    assert_eq!(delivered[0]["attempts"], 3, "{delivered:?}");
    assert_eq!(delivered[0]["status"], 200);
    assert_eq!(delivered[0]["webhook"], 0);

    // The receiver that keeps failing: every try, then given up.
    let gave_up = wait_audit(&gate, "notify.gave_up", &held.id, 1).await;
    assert_eq!(gave_up[0]["attempts"], 4, "{gave_up:?}");
    assert_eq!(gave_up[0]["status"], 503);
    assert_eq!(gave_up[0]["webhook"], 1);
    assert_eq!(gave_up[0]["host"], "127.0.0.1");
    assert_eq!(down.got.lock().unwrap().len(), 4);
    // Backoff: 500 ms, 1 s, 2 s between the four tries.
    assert!(started.elapsed() >= Duration::from_millis(3500));
    assert!(
        gate.client(&gate.tokens.admin)
            .verify_audit()
            .await
            .unwrap()
            .ok
    );
}
