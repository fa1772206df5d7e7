//! The rest of the gate's API as a real process: explain, re-verification
//! on approval, expiry, rewind, events, secrets, health, metrics, OpenAPI.

use std::time::Duration;

use futures::StreamExt;
use recourse_client::{RewindRequest, WriteStatus};
use reqwest::Method;
use serde_json::json;

use crate::harness::TestGate;

fn delete(path: &std::path::Path) -> serde_json::Value {
    json!({"intent": "tidy up", "action": {"connector": "fs", "op": "delete", "path": path.to_str().unwrap()}})
}

#[tokio::test]
async fn explain_decides_without_storing_or_running() {
    let gate = TestGate::start(&[]);
    let file = gate.root.join("f.txt");
    std::fs::write(&file, "x").unwrap();
    let audit = gate.audit_len().await;
    let e = gate
        .client(&gate.tokens.agent)
        .explain(&delete(&file))
        .await
        .unwrap();
    assert_eq!(
        e.decision.decision,
        recourse_core::Verdict::Proceed,
        "{:?}",
        e.decision.reasons
    );
    assert_eq!(e.proposal.touches, vec![format!("fs:{}", file.display())]);
    assert!(e
        .proposal
        .rollback
        .steps
        .iter()
        .any(|s| s.modelled_by.as_deref() == Some("fs")));
    assert!(file.exists(), "nothing ran");
    assert_eq!(gate.write_count().await, 0);
    assert_eq!(gate.audit_len().await, audit);
}

/// Friction matches the stakes, through a real process: a customer bears
/// the folder, so an approval without a reason is a 422 naming `comment`;
/// nothing ran, nothing was recorded; with a reason it runs.
#[tokio::test]
async fn a_customer_borne_approval_needs_a_written_reason() {
    let gate = TestGate::start(&[]);
    let dir = gate.root.join("acct-9");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("profile.json"), "{}").unwrap();
    let (s, b) = gate
        .raw(
            Method::POST,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(
                json!({"resources": [{"id": format!("fs:{}", dir.display()), "bearer": "customer"}]})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let agent = gate.client(&gate.tokens.agent);
    let held = agent.submit_json(&delete(&dir)).await.unwrap();
    assert_eq!(held.status, WriteStatus::Held);
    assert!(held.approval_needs_reason);
    let audit = gate.audit_len().await;
    let reviewer = gate.client(&gate.tokens.reviewer);
    for comment in [None, Some("   ".to_string())] {
        let err = reviewer.approve(&held.id, comment).await.unwrap_err();
        assert_eq!(err.status(), Some(422), "{err}");
        assert_eq!(
            err.code(),
            Some(recourse_client::ErrorCode::ReasonRequired),
            "{err}"
        );
    }
    let (s, b) = gate
        .raw(
            Method::POST,
            &format!("/v1/writes/{}/approve", held.id),
            &gate.tokens.reviewer,
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["field"], "comment", "{b}");
    assert!(dir.exists(), "nothing ran");
    assert_eq!(gate.audit_len().await, audit, "nothing was recorded");
    let rec = gate
        .client(&gate.tokens.admin)
        .write(&held.id)
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Held);
    assert!(rec.approvals.is_empty());
    let run = reviewer
        .approve(&held.id, Some("the customer closed the account".into()))
        .await
        .unwrap();
    assert_eq!(run.status, WriteStatus::Executed, "{:?}", run.history);
    assert!(!dir.exists());
}

#[tokio::test]
async fn approval_reverifies_and_holds_again_when_the_context_changed() {
    let gate = TestGate::start(&[]);
    let dir = gate.root.join("shop");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("listing"), "x").unwrap();
    let risk = |body: serde_json::Value| {
        let gate = &gate;
        async move {
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
    };
    let shop = format!("fs:{}", dir.display());
    risk(json!({"resources": [{"id": shop, "bearer": "creator"}]})).await;
    let held = gate
        .client(&gate.tokens.agent)
        .submit_json(&delete(&dir))
        .await
        .unwrap();
    assert_eq!(held.status, WriteStatus::Held);
    // Meanwhile a risk officer learns the shop feeds a story elsewhere.
    risk(json!({"resources": [{"id": "story:trending", "reach": "external", "bearer": "public"}],
                "edges": [{"from": shop, "to": "story:trending", "why": "the takedown trends on another platform"}]}))
    .await;
    let after = gate
        .client(&gate.tokens.reviewer)
        .approve(&held.id, Some("fine".into()))
        .await
        .unwrap();
    assert_eq!(after.status, WriteStatus::Held, "{:?}", after.history);
    assert!(after
        .decision
        .reasons
        .iter()
        .any(|r| r.resource.as_deref() == Some("story:trending")));
    assert_ne!(after.decision_hash, held.decision_hash);
    assert!(dir.exists(), "nothing ran");
    // The old approval no longer counts: a fresh one runs it.
    let run = gate
        .client(&gate.tokens.reviewer)
        .approve(&after.id, Some("seen the story".into()))
        .await
        .unwrap();
    assert_eq!(run.status, WriteStatus::Executed, "{:?}", run.history);
    assert!(!dir.exists());
}

#[tokio::test]
async fn held_writes_expire() {
    let gate = TestGate::start(&["--hold-ttl-s", "1"]);
    let dir = gate.root.join("c");
    std::fs::create_dir_all(&dir).unwrap();
    let (s, _) = gate
        .raw(Method::POST, "/v1/catalog", &gate.tokens.risk, Some(json!({"resources": [{"id": format!("fs:{}", dir.display()), "bearer": "customer"}]}).to_string().into_bytes()))
        .await;
    assert_eq!(s, 200);
    let held = gate
        .client(&gate.tokens.agent)
        .submit_json(&delete(&dir))
        .await
        .unwrap();
    assert_eq!(held.status, WriteStatus::Held);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = gate
        .client(&gate.tokens.reviewer)
        .approve(&held.id, Some("reviewed".into()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    let rec = gate
        .client(&gate.tokens.admin)
        .write(&held.id)
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Expired);
    assert!(dir.exists());
}

#[tokio::test]
async fn rewind_previews_then_undoes_newest_first() {
    let gate = TestGate::start(&[]);
    let since = chrono::Utc::now();
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let f = gate.root.join(name);
        std::fs::write(&f, name).unwrap();
        let rec = gate
            .client(&gate.tokens.agent)
            .submit_json(&delete(&f))
            .await
            .unwrap();
        assert_eq!(rec.status, WriteStatus::Executed);
        ids.push(rec.id);
    }
    let lead = gate.client(&gate.tokens.incident);
    let req = |preview| RewindRequest {
        since,
        agent: Some("agent-1".into()),
        reason: "bad agent".into(),
        preview,
        force: false,
    };
    let preview = lead.rewind(&req(true)).await.unwrap();
    let order: Vec<_> = preview.items.iter().map(|i| i.write.id.clone()).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(order, newest_first);
    for name in ["a", "b", "c"] {
        assert!(!gate.root.join(name).exists(), "preview undoes nothing");
    }
    // Each item says what comes back (the deleted file, which the vault's
    // snapshot restores) and that nothing stays beyond its rollback.
    for item in &preview.items {
        assert_eq!(item.comes_back, item.write.touches, "{item:?}");
        assert!(item.stays.is_empty(), "{item:?}");
    }
    let done = lead.rewind(&req(false)).await.unwrap();
    assert!(
        done.items
            .iter()
            .all(|i| i.rollback.as_ref().is_some_and(|r| r.verified)),
        "{:?}",
        done.items
    );
    for name in ["a", "b", "c"] {
        assert_eq!(std::fs::read_to_string(gate.root.join(name)).unwrap(), name);
    }
    let err = gate
        .client(&gate.tokens.reviewer)
        .rewind(&req(true))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
}

#[tokio::test]
async fn every_state_change_is_an_event() {
    let gate = TestGate::start(&[]);
    let resp = gate.client(&gate.tokens.reviewer).events().await.unwrap();
    let mut stream = resp.bytes_stream();
    let f = gate.root.join("e");
    std::fs::write(&f, "x").unwrap();
    let rec = gate
        .client(&gate.tokens.agent)
        .submit_json(&delete(&f))
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains("\"status\":\"executed\"") {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains(&rec.id));
    assert!(seen.contains("\"status\":\"executing\""), "{seen}");
}

#[tokio::test]
async fn file_contents_and_secrets_never_reach_the_audit_trail() {
    let gate = TestGate::start(&[]);
    let secret = "AKIAIOSFODNN7EXAMPLE-wJalrXUtnFEMI";
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let p = json!({"intent": "write creds", "action": {"connector": "fs", "op": "write",
                   "path": gate.root.join("creds").to_str().unwrap(), "content_b64": b64}});
    let rec = gate
        .client(&gate.tokens.agent)
        .submit_json(&p)
        .await
        .unwrap();
    assert_eq!(
        rec.status,
        WriteStatus::Executed,
        "{:?}",
        rec.decision.reasons
    );
    assert_eq!(
        std::fs::read_to_string(gate.root.join("creds")).unwrap(),
        secret
    );
    let trail =
        serde_json::to_string(&gate.client(&gate.tokens.admin).audit().await.unwrap()).unwrap();
    assert!(
        !trail.contains(&b64) && !trail.contains(secret),
        "content leaked into the audit trail"
    );
}

#[tokio::test]
async fn health_metrics_and_openapi_answer() {
    let gate = TestGate::start(&[]);
    let f = gate.root.join("m");
    std::fs::write(&f, "x").unwrap();
    gate.client(&gate.tokens.agent)
        .submit_json(&delete(&f))
        .await
        .unwrap();
    let http = gate.http();
    let health: serde_json::Value = http
        .get(format!("{}/healthz", gate.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["ok"], true);
    let metrics = http
        .get(format!("{}/metrics", gate.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("recourse_decisions_total{outcome=\"proceed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("recourse_decision_latency_seconds_bucket"));
    assert!(
        metrics.contains("recourse_writes{status=\"held\"} 0"),
        "{metrics}"
    );
    let doc: serde_json::Value = http
        .get(format!("{}/v1/openapi.json", gate.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["paths"]["/v1/writes"]["post"].is_object(),
        "{}",
        doc["paths"]
    );
    assert!(doc["paths"]["/v1/writes"]["get"].is_object());
    assert!(doc["components"]["schemas"]["WriteRecord"].is_object());
}
