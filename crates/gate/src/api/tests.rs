//! The router in process (`tower::ServiceExt::oneshot`) over the memory
//! store and a scripted connector: status codes, the error shape, and the
//! actions each caller is offered.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use recourse_client::{Role, WriteAction, WriteRecord, WriteStatus, WriteSummary};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::store::{CatalogStore, MemoryStore, Store};
use crate::testing::{push, resource, Fake};
use crate::{Gate, GateConfig};

struct Api {
    router: axum::Router,
    tokens: std::collections::HashMap<&'static str, String>,
    fake: Arc<Fake>,
}

async fn api() -> Api {
    let store = Arc::new(MemoryStore::new());
    let add = recourse_core::Catalog {
        resources: vec![resource("fake:cust", "customer")],
        edges: vec![],
    };
    store.upsert_catalog(&add, true, None).await.unwrap();
    let fake = Arc::new(Fake::default());
    let dyn_store: Arc<dyn Store> = store.clone();
    let mut tokens = std::collections::HashMap::new();
    for (name, role) in [
        ("bot", Role::Agent),
        ("rev", Role::Reviewer),
        ("lead", Role::IncidentLead),
        ("risk", Role::RiskOfficer),
    ] {
        let t = crate::create_token(dyn_store.as_ref(), "test", name, role, None)
            .await
            .unwrap();
        tokens.insert(name, t);
    }
    let gate = Arc::new(Gate::new(
        dyn_store,
        vec![fake.clone()],
        GateConfig::default(),
    ));
    Api {
        router: super::router(gate),
        tokens,
        fake,
    }
}

impl Api {
    async fn call(
        &self,
        who: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.tokens[who]));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn submit(&self, target: &str) -> WriteRecord {
        let (s, b) = self
            .call(
                "bot",
                "POST",
                "/v1/writes",
                Some(json!({"intent": "t", "action": {"connector": "fake", "target": target}})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        serde_json::from_value(b).unwrap()
    }
}

#[tokio::test]
async fn each_caller_is_offered_what_the_gate_will_accept() {
    let api = api().await;
    let held = api.submit("cust").await;
    assert_eq!(held.status, WriteStatus::Held);
    assert!(
        held.actions.is_empty(),
        "the agent may do nothing to its own write"
    );
    let (_, list) = api.call("rev", "GET", "/v1/writes?status=held", None).await;
    let list: Vec<WriteSummary> = serde_json::from_value(list).unwrap();
    assert_eq!(
        list[0].actions,
        vec![WriteAction::Approve, WriteAction::Reject]
    );
    let (_, list) = api
        .call("lead", "GET", "/v1/writes?status=held", None)
        .await;
    let list: Vec<WriteSummary> = serde_json::from_value(list).unwrap();
    assert!(list[0].actions.is_empty());
    let (s, rec) = api
        .call(
            "rev",
            "POST",
            &format!("/v1/writes/{}/approve", held.id),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    let rec: WriteRecord = serde_json::from_value(rec).unwrap();
    assert_eq!(rec.status, WriteStatus::Executed);
    assert!(rec.actions.is_empty(), "a reviewer does not roll back");
    let (_, rec) = api
        .call("lead", "GET", &format!("/v1/writes/{}", held.id), None)
        .await;
    let rec: WriteRecord = serde_json::from_value(rec).unwrap();
    assert_eq!(rec.actions, vec![WriteAction::Rollback]);
}

#[tokio::test]
async fn a_move_the_table_lacks_is_a_409_that_changes_nothing() {
    let api = api().await;
    let held = api.submit("cust").await;
    let (s, b) = api
        .call(
            "lead",
            "POST",
            &format!("/v1/writes/{}/rollback", held.id),
            Some(json!({"reason": "r"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "wrong_status");
    let (s, b) = api
        .call(
            "lead",
            "POST",
            &format!("/v1/writes/{}/resolve", held.id),
            Some(json!({"executed": true, "reason": "r"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = api
        .call(
            "rev",
            "POST",
            &format!("/v1/writes/{}/resolve", held.id),
            Some(json!({"executed": true, "reason": "r"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("incident leads"),
        "{b}"
    );
    let (s, b) = api
        .call(
            "lead",
            "POST",
            &format!("/v1/writes/{}/resolve", held.id),
            Some(json!({"executed": "yes", "reason": "r"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (_, rec) = api
        .call("rev", "GET", &format!("/v1/writes/{}", held.id), None)
        .await;
    assert_eq!(rec["status"], "held");
    assert_eq!(rec["history"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unknown_outcome_is_settled_over_the_api() {
    let api = api().await;
    push(&api.fake, |s| {
        s.execute
            .push_back(Err(recourse_connector::ConnectorError::Uncertain(
                "timeout".into(),
            )));
        s.applied.push_back(Ok(None));
    });
    let rec = api.submit("x").await;
    assert_eq!(rec.status, WriteStatus::OutcomeUnknown);
    let (_, list) = api
        .call("lead", "GET", "/v1/writes?status=outcome_unknown", None)
        .await;
    let list: Vec<WriteSummary> = serde_json::from_value(list).unwrap();
    assert_eq!(list[0].actions, vec![WriteAction::Resolve]);
    let (s, b) = api
        .call(
            "lead",
            "POST",
            &format!("/v1/writes/{}/resolve", rec.id),
            Some(json!({"executed": false, "reason": "the row is unchanged"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "failed");
}

#[tokio::test]
async fn over_its_rate_a_token_gets_429_with_retry_after_and_others_do_not() {
    let api = api().await;
    let limited = super::with_rate_limit(
        api.router.clone(),
        Arc::new(crate::limits::RateLimiter::new(0.5, 2)),
    );
    let get = |who: &str| {
        Request::builder()
            .uri("/v1/writes")
            .header("authorization", format!("Bearer {}", api.tokens[who]))
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..2 {
        let r = limited.clone().oneshot(get("bot")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = limited.clone().oneshot(get("bot")).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "2");
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["message"].as_str().unwrap().contains("`bot`"));
    // Another token has its own budget; an unknown one is a 401, not a 429.
    let r = limited.clone().oneshot(get("rev")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
