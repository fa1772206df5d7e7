//! The router in process (`tower::ServiceExt::oneshot`) over the memory
//! store and a scripted connector: status codes, the error shape, and the
//! actions each caller is offered.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use recourse_client::{Role, WriteAction, WriteRecord, WriteStatus, WriteSummary};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::store::{CatalogStore, MemoryStore, Store, WriteStore};
use crate::testing::{push, resource, Fake};
use crate::{Gate, GateConfig};

struct Api {
    router: axum::Router,
    tokens: std::collections::HashMap<String, String>,
    fake: Arc<Fake>,
    store: Arc<MemoryStore>,
}

async fn api() -> Api {
    api_with(GateConfig::default()).await
}

async fn api_with(config: GateConfig) -> Api {
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
        ("admin", Role::Admin),
    ] {
        let t = crate::create_token(dyn_store.as_ref(), "test", name, role, None)
            .await
            .unwrap();
        tokens.insert(name.to_string(), t);
    }
    let gate = Arc::new(Gate::new(dyn_store, vec![fake.clone()], config));
    Api {
        router: super::router(gate),
        tokens,
        fake,
        store,
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
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.tokens[who]));
        self.send(req, body).await
    }

    async fn send(
        &self,
        req: axum::http::request::Builder,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = req;
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
            Some(json!({"comment": "the customer asked for it"})),
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

/// A write is answered with the catalog's titles of what its decision
/// names, to those who may read the catalog; an agent, which may not, gets
/// none (the titles are the catalog's, not the write's).
#[tokio::test]
async fn titles_come_with_a_write_for_those_who_may_read_the_catalog() {
    let api = api().await;
    let mut titled = resource("fake:cust", "customer");
    titled.title = Some("Fifteen years of purchase history".into());
    let add = recourse_core::Catalog {
        resources: vec![titled],
        edges: vec![],
    };
    api.store.upsert_catalog(&add, true, None).await.unwrap();
    let held = api.submit("cust").await;
    assert!(
        held.titles.is_empty(),
        "an agent gets no titles: {:?}",
        held.titles
    );
    for who in ["rev", "lead", "risk"] {
        let (_, rec) = api
            .call(who, "GET", &format!("/v1/writes/{}", held.id), None)
            .await;
        let rec: WriteRecord = serde_json::from_value(rec).unwrap();
        assert_eq!(
            rec.titles.get("fake:cust").map(String::as_str),
            Some("Fifteen years of purchase history"),
            "{who}"
        );
    }
    let (_, rec) = api
        .call("bot", "GET", &format!("/v1/writes/{}", held.id), None)
        .await;
    let rec: WriteRecord = serde_json::from_value(rec).unwrap();
    assert!(rec.titles.is_empty());
}

/// Friction matches the stakes, at the gate: a customer bears this write,
/// so an approval without a written reason is a 422 naming the field, and
/// nothing is recorded; the write says so itself, in the list and alone.
#[tokio::test]
async fn a_customer_borne_approval_without_a_reason_is_a_422_that_changes_nothing() {
    let api = api().await;
    let held = api.submit("cust").await;
    assert!(held.approval_needs_reason);
    let (_, list) = api.call("rev", "GET", "/v1/writes?status=held", None).await;
    let list: Vec<WriteSummary> = serde_json::from_value(list).unwrap();
    assert!(list[0].approval_needs_reason);
    let (_, shown) = api
        .call("rev", "GET", &format!("/v1/writes/{}", held.id), None)
        .await;
    assert_eq!(shown["approval_needs_reason"], json!(true));
    let audit_before = api.call("admin", "GET", "/v1/audit", None).await.1;
    for body in [
        json!({}),
        json!({"comment": "  "}),
        json!({"comment": null}),
    ] {
        let (s, b) = api
            .call(
                "rev",
                "POST",
                &format!("/v1/writes/{}/approve", held.id),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert_eq!(b["error"]["code"], "reason_required", "{b}");
        assert_eq!(b["error"]["field"], "comment", "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("a customer pays")),
            "{b}"
        );
    }
    let (rec, _) = api.store.write(&held.id).await.unwrap().unwrap();
    assert_eq!(rec.status, WriteStatus::Held);
    assert!(rec.approvals.is_empty());
    assert_eq!(rec.history.len(), held.history.len());
    assert_eq!(
        api.call("admin", "GET", "/v1/audit", None).await.1,
        audit_before
    );
    assert_eq!(
        api.fake
            .executions
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // `reason` is the same field by another name.
    let (s, b) = api
        .call(
            "rev",
            "POST",
            &format!("/v1/writes/{}/approve", held.id),
            Some(json!({"reason": "the customer asked for it in ticket 88"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rec: WriteRecord = serde_json::from_value(b).unwrap();
    assert_eq!(rec.status, WriteStatus::Executed);
    assert_eq!(
        rec.approvals[0].comment.as_deref(),
        Some("the customer asked for it in ticket 88")
    );
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

impl Api {
    /// Makes a token through the admin API and remembers it as `name`.
    async fn make_token(&mut self, name: &str, body: Value) -> (StatusCode, Value) {
        let (s, b) = self.call("admin", "POST", "/v1/tokens", Some(body)).await;
        if s == StatusCode::OK {
            self.tokens
                .insert(name.to_string(), b["token"].as_str().unwrap().to_string());
        }
        (s, b)
    }

    async fn audit_actions(&self) -> Vec<String> {
        let (_, b) = self
            .call("admin", "GET", "/v1/audit?order=asc&limit=1000", None)
            .await;
        b.as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    }
}

#[tokio::test]
async fn a_write_outside_its_tokens_scope_is_a_403_audited_and_nothing_stored() {
    let mut api = api().await;
    let (s, b) = api
        .make_token(
            "crm-bot",
            json!({"name": "crm-bot", "role": "agent", "scope": {"sql": ["crm"]}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let before = api.audit_actions().await;
    let (s, b) = api
        .call(
            "crm-bot",
            "POST",
            "/v1/writes",
            Some(json!({"intent": "t", "action": {"connector": "fake", "target": "cust"}})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "out_of_scope");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains("`crm-bot`"), "{msg}");
    assert!(msg.contains("the `fake` connector"), "{msg}");
    assert!(msg.contains("sql database crm"), "{msg}");
    let after = api.audit_actions().await;
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after.last().unwrap(), "write.out_of_scope");
    let (_, list) = api.call("admin", "GET", "/v1/writes", None).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "no write stored");
    assert_eq!(
        api.fake
            .executions
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing ran"
    );
    // The unscoped agent is not limited.
    let rec = api.submit("cust").await;
    assert_eq!(rec.status, WriteStatus::Held);
}

#[tokio::test]
async fn a_bad_scope_is_a_400_naming_the_field() {
    let mut api = api().await;
    for (scope, field) in [
        (json!({"fs_roots": ["rel"]}), "scope.fs_roots"),
        (json!({"http_allow": ["a/b"]}), "scope.http_allow"),
        (json!({"sql": ["a b"]}), "scope.sql"),
        (json!({}), "scope"),
    ] {
        let (s, b) = api
            .make_token("x", json!({"name": "x", "role": "agent", "scope": scope}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["error"]["field"], field, "{b}");
    }
    let (s, b) = api
        .make_token(
            "x",
            json!({"name": "x", "role": "agent", "scope": {"ftp": ["x"]}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
}

#[tokio::test]
async fn tokens_are_listed_without_hashes_and_revoked_at_once() {
    let mut api = api().await;
    api.make_token(
        "web-bot",
        json!({"name": "web-bot", "role": "agent", "scope": {"http_allow": ["API.test"]}}),
    )
    .await;
    let (s, b) = api.call("admin", "GET", "/v1/tokens", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rows = b.as_array().unwrap();
    let names: Vec<_> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "bot", "lead", "rev", "risk", "web-bot"]);
    let web = rows.iter().find(|r| r["name"] == "web-bot").unwrap();
    assert_eq!(web["scope"], json!({"http_allow": ["api.test"]}));
    assert!(!b.to_string().contains("hash"), "{b}");
    let (s, _) = api.call("lead", "GET", "/v1/tokens", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api.call("bot", "DELETE", "/v1/tokens/rev", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, _) = api.call("web-bot", "GET", "/v1/whoami", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = api
        .call("admin", "DELETE", "/v1/tokens/web-bot", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, b) = api.call("web-bot", "GET", "/v1/whoami", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("revoked"));
    assert_eq!(api.audit_actions().await.last().unwrap(), "token.revoked");
    let (s, b) = api
        .call("admin", "DELETE", "/v1/tokens/web-bot", None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = api.call("admin", "DELETE", "/v1/tokens/nobody", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (_, b) = api.call("admin", "GET", "/v1/tokens", None).await;
    let web = b
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "web-bot")
        .cloned()
        .unwrap();
    assert!(web["revoked_at"].is_string(), "{web}");
}

#[tokio::test]
async fn a_revoked_tokens_event_stream_ends() {
    let api = api().await;
    let req = Request::builder()
        .uri("/v1/events")
        .header("authorization", format!("Bearer {}", api.tokens["rev"]));
    let resp = api
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (s, _) = api.call("admin", "DELETE", "/v1/tokens/rev", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        axum::body::to_bytes(resp.into_body(), usize::MAX),
    )
    .await;
    assert!(ended.is_ok(), "the stream outlived its revoked token");
}

#[tokio::test]
async fn over_its_quota_a_token_gets_429_until_a_rejection_frees_room() {
    // What the store keeps of one held write (its sealed proposal included,
    // which the API never shows), not what the API answers.
    let probe = api().await;
    let shown = probe.submit("cust").await;
    let (stored, _) = probe.store.write(&shown.id).await.unwrap().unwrap();
    let one = crate::store::stored_bytes(&stored).unwrap();
    // Room for two held writes (and a little), not three.
    let api = api_with(GateConfig {
        quota_bytes: one * 2 + one / 2,
        ..GateConfig::default()
    })
    .await;
    let first = api.submit("cust").await;
    api.submit("cust").await;
    let req = Request::builder()
        .method("POST")
        .uri("/v1/writes")
        .header("authorization", format!("Bearer {}", api.tokens["bot"]))
        .header("content-type", "application/json");
    let resp = api
        .router
        .clone()
        .oneshot(
            req.body(Body::from(
                json!({"intent": "t", "action": {"connector": "fake", "target": "cust"}})
                    .to_string(),
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The oldest held write expires after the hold time.
    let ttl = GateConfig::default().hold_ttl.num_seconds();
    assert!(retry > ttl - 60 && retry <= ttl + 60, "{retry}");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let b: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(b["error"]["code"], "over_quota");
    // Another token has its own room.
    let (s, b) = api
        .call(
            "admin",
            "POST",
            "/v1/writes",
            Some(json!({"intent": "t", "action": {"connector": "fake", "target": "cust"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = api
        .call(
            "rev",
            "POST",
            &format!("/v1/writes/{}/reject", first.id),
            Some(json!({"reason": "no"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let third = api.submit("cust").await;
    assert_eq!(third.status, WriteStatus::Held);
}

#[tokio::test]
async fn a_write_larger_than_the_whole_quota_is_a_413_without_retry_after() {
    let api = api_with(GateConfig {
        quota_bytes: 100,
        ..GateConfig::default()
    })
    .await;
    let req = Request::builder()
        .method("POST")
        .uri("/v1/writes")
        .header("authorization", format!("Bearer {}", api.tokens["bot"]))
        .header("content-type", "application/json");
    let resp = api
        .router
        .clone()
        .oneshot(
            req.body(Body::from(
                json!({"intent": "t", "action": {"connector": "fake", "target": "cust"}})
                    .to_string(),
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(resp.headers().get("retry-after").is_none());
}

/// Found by the fuzz target `catalog_body`: an unknown key that is the
/// empty string was a 400 whose `field` was "", naming nothing.
#[tokio::test]
async fn an_unknown_empty_key_is_a_400_naming_the_body() {
    let api = api().await;
    let (s, b) = api
        .call("risk", "POST", "/v1/catalog", Some(json!({"": 1})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["field"], "body", "{b}");
    let (s, b) = api
        .call("bot", "POST", "/v1/writes", Some(json!({"": 1})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["field"], "proposal", "{b}");
    assert!(api
        .store
        .summaries(&Default::default())
        .await
        .unwrap()
        .is_empty());
}

/// `PUT /v1/catalog` and `POST /v1/catalog/plan`: risk officers and admins
/// only; a body that is not a whole catalog, or an invalid one, is a 400
/// naming the field, and changes nothing.
#[tokio::test]
async fn replacing_and_planning_the_catalog_is_a_risk_officers_and_checked_whole() {
    let api = api().await;
    let whole = json!({"catalog": {"resources": [{"id": "fake:cust", "bearer": "customer"}, {"id": "a:1"}]}});
    for who in ["bot", "rev", "lead"] {
        for (method, path) in [("PUT", "/v1/catalog"), ("POST", "/v1/catalog/plan")] {
            let (s, b) = api.call(who, method, path, Some(whole.clone())).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{who} {method} {path}: {b}");
        }
    }
    let before = api.store.catalog().await.unwrap();
    for (body, field) in [
        (json!({"resources": []}), "resources"),
        (
            json!({"catalog": {"resources": [{"id": "a:1", "reach": "far"}]}}),
            "catalog.resources[0].reach",
        ),
        (
            json!({"catalog": {"resources": [{"id": "a:1"}], "edges": [{"from": "a:1", "to": "a:2"}]}}),
            "edges[0].to",
        ),
    ] {
        for (method, path) in [("PUT", "/v1/catalog"), ("POST", "/v1/catalog/plan")] {
            let (s, b) = api.call("risk", method, path, Some(body.clone())).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path}: {b}");
            assert_eq!(b["error"]["field"], field, "{b}");
        }
    }
    assert_eq!(api.store.catalog().await.unwrap(), before);
    let (s, b) = api
        .call("risk", "POST", "/v1/catalog/plan", Some(whole.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["diff"]["resources_added"][0]["id"], "a:1");
    let (s, b) = api.call("admin", "PUT", "/v1/catalog", Some(whole)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], before.1 + 1);
}

/// A resource's view names the held writes whose blast radius reaches it
/// (here through an edge), not only those that touched it; a resource no
/// held write reaches lists none.
#[tokio::test]
async fn a_resource_names_the_held_writes_whose_blast_radius_reaches_it() {
    let api = api().await;
    let add = recourse_core::Catalog {
        resources: vec![
            resource("crm:cust", "customer"),
            resource("mail:far", "customer"),
        ],
        edges: vec![recourse_core::Edge {
            from: "fake:cust".into(),
            to: "crm:cust".into(),
            why: Some("the CRM syncs it".into()),
        }],
    };
    api.store.upsert_catalog(&add, true, None).await.unwrap();
    let held = api.submit("cust").await;
    assert_eq!(held.status, WriteStatus::Held);
    let (s, b) = api
        .call("rev", "GET", "/v1/catalog/resources/crm:cust", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let view: recourse_client::ResourceView = serde_json::from_value(b).unwrap();
    assert!(view.writes.is_empty(), "the write did not touch it");
    let ids: Vec<&str> = view.held_reaching.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, vec![held.id.as_str()]);
    let (_, b) = api
        .call("rev", "GET", "/v1/catalog/resources/mail:far", None)
        .await;
    assert_eq!(b["held_reaching"], json!([]), "{b}");
}

/// The Monday audit is read by the roles the matrix grants it to, never by
/// agents; it names the held customer-borne write's kind as needing a
/// person.
#[tokio::test]
async fn the_report_is_for_reviewers_risk_officers_incident_leads_and_admins() {
    let api = api().await;
    let held = api.submit("cust").await;
    let (s, body) = api.call("bot", "GET", "/v1/report", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    for who in ["rev", "risk", "lead", "admin"] {
        let (s, body) = api.call(who, "GET", "/v1/report", None).await;
        assert_eq!(s, StatusCode::OK, "{who}: {body}");
        let report: recourse_report::Report = serde_json::from_value(body).unwrap();
        assert_eq!(report.summary.writes, 1);
        let kind = &report.kinds[0];
        assert_eq!(kind.writes[0].id, held.id);
        assert_eq!(kind.needs_person, recourse_report::NeedsPerson::Always);
        assert!(report.resources.iter().any(|r| r.id == "fake:cust"));
    }
}
