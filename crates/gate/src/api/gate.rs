//! The gate itself: health, metrics, who am I, freeze, mode, rewind,
//! tokens, events, the OpenAPI document.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use recourse_client::{
    ErrorBody, FreezeRequest, FreezeState, GateEvent, ModeRequest, ModeState, Permission,
    RewindReport, RewindRequest, TokenCreated, TokenInfo, TokenRequest, WhoAmI,
};
use serde_json::json;

use super::{ApiError, AppState, Auth, Body, Routes};

pub(crate) fn routes(r: Routes) -> Routes {
    r.get("/healthz", healthz)
        .get("/metrics", metrics)
        .get("/v1/openapi.json", openapi)
        .get("/v1/whoami", whoami)
        .get("/v1/freeze", freeze_state)
        .post("/v1/freeze", freeze)
        .post("/v1/resume", resume)
        .get("/v1/mode", mode_state)
        .put("/v1/mode", set_mode)
        .post("/v1/rewind", rewind)
        .post("/v1/tokens", create_token)
        .get("/v1/tokens", list_tokens)
        .delete("/v1/tokens/{name}", revoke_token)
        .get("/v1/events", events)
}

/// The operations of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    healthz,
    metrics,
    openapi,
    whoami,
    freeze_state,
    freeze,
    resume,
    mode_state,
    set_mode,
    rewind,
    create_token,
    list_tokens,
    revoke_token,
    events
))]
pub(crate) struct Api;

/// Healthy means the store answers; no token needed.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health",
    tag = "gate",
    responses(
        (status = 200, description = "`{\"ok\": true, \"frozen\": bool, \"connectors\": [name], \"gate_id\": id}`: `gate_id` names the gate whose vault a write's local capture is in (`vault_gate`)", body = Object),
    )
)]
async fn healthz(State(gate): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    // Healthy means the store answers, and is still the store the gate
    // opened: a deleted or replaced SQLite file still answers reads (from
    // the handle the gate holds) while every change is refused, so a load
    // balancer asking here stops sending requests this gate would refuse.
    gate.store().in_place().await?;
    let frozen = gate.freeze_state().await?.frozen;
    Ok(Json(
        json!({"ok": true, "frozen": frozen, "connectors": gate.connector_names(),
               "gate_id": gate.config().gate_id}),
    ))
}

/// Prometheus / OpenMetrics counters; no token needed.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "gate",
    responses(
        (status = 200, description = "The metrics in the OpenMetrics text format.", body = String, content_type = "application/openmetrics-text"),
    )
)]
async fn metrics(State(gate): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    gate.metrics.set_counts(&gate.store().counts().await?);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gate.metrics.render(),
    ))
}

/// This document; no token needed.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "gate",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object),
    )
)]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}

/// Who the caller is: its name (`oidc:` and the person's name when signed
/// in with an ID token), role, how it signed in and when that stops working;
/// the console shows who is signed in from it.
#[utoipa::path(
    get,
    path = "/v1/whoami",
    operation_id = "whoami",
    tag = "gate",
    responses(
        (status = 200, description = "Who the caller is, how it signed in, until when.", body = WhoAmI),
    ),
    security(("bearer" = []))
)]
async fn whoami(Auth(caller): Auth) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: caller.name,
        role: caller.role,
        signed_in: caller.signed_in,
        expires_at: caller.expires_at,
    })
}

/// Whether the gate is frozen (nothing runs while it is), by whom and why.
#[utoipa::path(
    get,
    path = "/v1/freeze",
    operation_id = "get_freeze",
    tag = "gate",
    responses(
        (status = 200, description = "The freeze state.", body = FreezeState),
    ),
    security(("bearer" = []))
)]
async fn freeze_state(
    State(gate): State<AppState>,
    Auth(_): Auth,
) -> Result<Json<FreezeState>, ApiError> {
    Ok(Json(gate.freeze_state().await?))
}

/// The kill switch: nothing runs until an incident lead resumes.
#[utoipa::path(
    post,
    path = "/v1/freeze",
    operation_id = "freeze_gate",
    tag = "gate",
    request_body = FreezeRequest,
    responses(
        (status = 200, description = "The gate is frozen.", body = FreezeState),
        (status = 403, description = "Not an incident lead.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn freeze(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<FreezeRequest>,
) -> Result<Json<FreezeState>, ApiError> {
    Ok(Json(
        gate.set_freeze(&caller, true, Some(req.reason)).await?,
    ))
}

/// Lifts a freeze.
#[utoipa::path(
    post,
    path = "/v1/resume",
    operation_id = "resume_gate",
    tag = "gate",
    responses(
        (status = 200, description = "The gate runs writes again.", body = FreezeState),
        (status = 403, description = "Not an incident lead.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn resume(
    State(gate): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<FreezeState>, ApiError> {
    Ok(Json(gate.set_freeze(&caller, false, None).await?))
}

/// Enforce or observe: how the gate treats a write its decision holds (one
/// mode for every gate on the store).
#[utoipa::path(
    get,
    path = "/v1/mode",
    operation_id = "get_mode",
    tag = "gate",
    responses(
        (status = 200, description = "The mode, and who set it when and why.", body = ModeState),
    ),
    security(("bearer" = []))
)]
async fn mode_state(
    State(gate): State<AppState>,
    Auth(_): Auth,
) -> Result<Json<ModeState>, ApiError> {
    Ok(Json(gate.mode().await?))
}

/// Switches the mode (admins only; audited as `gate.mode`). In `observe`
/// a write its decision holds is captured and run without a person, and
/// marked `observed_hold`; refusals still refuse and a freeze still holds
/// everything.
#[utoipa::path(
    put,
    path = "/v1/mode",
    operation_id = "set_mode",
    tag = "gate",
    request_body = ModeRequest,
    responses(
        (status = 200, description = "The mode now in force for every gate on the store.", body = ModeState),
        (status = 403, description = "Not an admin.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn set_mode(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<ModeRequest>,
) -> Result<Json<ModeState>, ApiError> {
    Ok(Json(gate.set_mode(&caller, req).await?))
}

/// Rolls back every write executed since a time (or one agent's), newest
/// first; `preview` only lists them.
#[utoipa::path(
    post,
    path = "/v1/rewind",
    operation_id = "rewind",
    tag = "gate",
    request_body = RewindRequest,
    responses(
        (status = 200, description = "What was (or would be) rolled back, each with its report or error.", body = RewindReport),
        (status = 403, description = "Not an incident lead.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn rewind(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<RewindRequest>,
) -> Result<Json<RewindReport>, ApiError> {
    Ok(Json(gate.rewind(&caller, req).await?))
}

/// Creates a token; its secret is shown once.
#[utoipa::path(
    post,
    path = "/v1/tokens",
    operation_id = "create_token",
    tag = "gate",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "The new token.", body = TokenCreated),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 409, description = "A token of that name exists.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn create_token(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<TokenRequest>,
) -> Result<Json<TokenCreated>, ApiError> {
    caller.allow(Permission::ManageTokens)?;
    let token = crate::create_scoped_token(
        gate.store().as_ref(),
        &caller.name,
        &req.name,
        req.role,
        None,
        req.scope,
    )
    .await?;
    Ok(Json(TokenCreated {
        name: req.name,
        role: req.role,
        token,
    }))
}

/// Every token: names, roles, scopes, expiry, revocation; never a hash.
#[utoipa::path(
    get,
    path = "/v1/tokens",
    operation_id = "list_tokens",
    tag = "gate",
    responses(
        (status = 200, description = "Every token, revoked ones included, by name.", body = Vec<TokenInfo>),
        (status = 403, description = "Not an admin.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_tokens(
    State(gate): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    caller.allow(Permission::ManageTokens)?;
    Ok(Json(crate::list_tokens(gate.store().as_ref()).await?))
}

/// Revokes a token at once (204): its next request is a 401, and its open
/// event streams end within [`REVOCATION_POLL`].
#[utoipa::path(
    delete,
    path = "/v1/tokens/{name}",
    operation_id = "revoke_token",
    tag = "gate",
    params(("name" = String, Path, description = "The token's name.")),
    responses(
        (status = 204, description = "Revoked: its next request is a 401."),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No token of that name.", body = ErrorBody),
        (status = 409, description = "The token was revoked already.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn revoke_token(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    caller.allow(Permission::ManageTokens)?;
    crate::revoke_token(gate.store().as_ref(), &caller.name, &name).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Server-sent events: one `write` event per change of a write's status,
/// `gate.frozen` / `gate.resumed`, from every gate sharing the store. Each
/// event's `id` is the `seq` of its audit entry: a client that reconnects
/// (to any gate) with `Last-Event-ID: N` gets every event after `N` first,
/// then the live ones, with no gap and no repeat. Whoever may read every
/// write gets every event; an agent gets its own writes' events only (and
/// the gate's own, which `GET /v1/freeze` tells it anyway). Every stream
/// ends when the caller's token expires or is revoked: such a token must
/// not go on listening.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "events",
    tag = "gate",
    params(
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id (an audit `seq`): the events after it are sent first."),
    ),
    responses(
        (status = 200, description = "A stream of server-sent events; each `data:` is a GateEvent in JSON, its `event:` the kind, its `id:` the audit seq.", body = GateEvent, content_type = "text/event-stream"),
    ),
    security(("bearer" = []))
)]
async fn events(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    headers: axum::http::HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    crate::error::GateError::invalid(
                        "Last-Event-ID",
                        "must be an event id this gate sent (a whole number, 0 or more)",
                    )
                })?,
        ),
    };
    // `Auth` accepted this header; its hash finds the token's row again.
    let hash = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| crate::auth::hash_token(t.trim()))
        .unwrap_or_default();
    let audience = Audience::of(&caller, gate.clone());
    // Subscribed before the catch-up reads the trail: an event appended
    // meanwhile is in one or the other (or both: `Resume` drops repeats).
    let live = gate.subscribe().await?;
    let cursor = match resume {
        Some(n) => n,
        // From now on: should the stream fall behind, it catches up from
        // here, not from the trail's beginning.
        None => crate::feed::head(gate.store().as_ref())
            .await
            .map_err(crate::error::GateError::from)?,
    };
    let state = Resume {
        gate: gate.clone(),
        live,
        cursor,
        catching_up: resume.is_some(),
        pending: std::collections::VecDeque::new(),
    };
    let stream = futures::stream::unfold(state, Resume::next)
        .filter_map(move |e| {
            let audience = audience.clone();
            async move {
                if !audience.sees(&e).await {
                    return None;
                }
                let data = serde_json::to_string(&e).ok()?;
                Some(Ok(Event::default()
                    .id(e.seq.to_string())
                    .event(e.kind.clone())
                    .data(data)))
            }
        })
        .take_until(ended(gate.clone(), hash, caller.expires_at));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One stream's place in the trail: events after `cursor` from the store
/// while catching up (on resume, or after falling behind the live feed),
/// then live ones, each once and in order.
struct Resume {
    gate: AppState,
    live: tokio::sync::broadcast::Receiver<GateEvent>,
    cursor: i64,
    catching_up: bool,
    pending: std::collections::VecDeque<GateEvent>,
}

impl Resume {
    async fn next(mut self) -> Option<(GateEvent, Self)> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some((e, self));
            }
            if self.catching_up {
                let mut page = Vec::new();
                match self
                    .gate
                    .store()
                    .audit(self.cursor, crate::feed::PAGE)
                    .await
                {
                    Ok(entries) => {
                        if (entries.len() as i64) < crate::feed::PAGE {
                            self.catching_up = false;
                        }
                        for entry in &entries {
                            self.cursor = entry.seq;
                            page.extend(crate::feed::event_of(entry));
                        }
                    }
                    // The store is away: the stream ends, and the client
                    // resumes from its last id.
                    Err(_) => return None,
                }
                self.pending.extend(page);
                continue;
            }
            match self.live.recv().await {
                Ok(e) if e.seq > self.cursor => {
                    self.cursor = e.seq;
                    return Some((e, self));
                }
                Ok(_) => {}
                // Fell behind the feed: read what was missed from the trail.
                Err(RecvError::Lagged(_)) => self.catching_up = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// How often an open stream asks the store whether its token was revoked.
/// Polling rather than a signal inside this process: `recourse token
/// revoke` changes the store from another process.
const REVOCATION_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Resolves when the token whose hash is `hash` stops working: it
/// expires, it is revoked, or it is no longer in the store (or the store
/// cannot say: a stream fails closed). One indexed look-up per poll, the
/// one every request makes, not a listing of every token.
async fn ended(gate: AppState, hash: String, expires_at: Option<DateTime<Utc>>) {
    let revoked = async {
        loop {
            tokio::time::sleep(REVOCATION_POLL).await;
            let live = matches!(
                gate.store().token_by_hash(&hash).await,
                Ok(Some(t)) if t.revoked_at.is_none()
            );
            if !live {
                return;
            }
        }
    };
    tokio::select! {
        () = until(expires_at) => {}
        () = revoked => {}
    }
}

/// Resolves when a token that expires at `at` stops working; never for
/// one that does not expire.
async fn until(at: Option<DateTime<Utc>>) {
    match at {
        Some(t) => tokio::time::sleep((t - Utc::now()).to_std().unwrap_or_default()).await,
        None => std::future::pending().await,
    }
}

/// Who a stream is for: everything, or one agent's writes.
#[derive(Clone)]
struct Audience {
    gate: AppState,
    /// `None`: the caller reads every write.
    agent: Option<Arc<str>>,
    /// Write id -> whether it is the agent's. A write's agent never
    /// changes, so one lookup per write serves every later event of it.
    owned: Arc<Mutex<HashMap<String, bool>>>,
}

/// Bounds the memory of a long-lived agent stream.
const OWNED_CACHE: usize = 4096;

impl Audience {
    fn of(caller: &crate::auth::Caller, gate: AppState) -> Self {
        Self {
            gate,
            agent: (!caller.can(Permission::ReadAllWrites))
                .then(|| Arc::from(caller.name.as_str())),
            owned: Arc::default(),
        }
    }

    async fn sees(&self, e: &GateEvent) -> bool {
        let Some(agent) = &self.agent else {
            return true;
        };
        let Some(id) = &e.write_id else {
            return true;
        };
        if let Some(known) = self.owned.lock().ok().and_then(|m| m.get(id).copied()) {
            return known;
        }
        // Fail closed: a write that cannot be looked up is not shown. Only
        // an answer is remembered, so a store hiccup hides one event, not
        // the write's later ones.
        let mine = match self.gate.store().write(id).await {
            Ok(Some((w, _))) => w.agent == **agent,
            Ok(None) | Err(_) => return false,
        };
        if let Ok(mut m) = self.owned.lock() {
            if m.len() >= OWNED_CACHE {
                m.clear();
            }
            m.insert(id.clone(), mine);
        }
        mine
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body as HttpBody;
    use axum::http::{Request, StatusCode};
    use recourse_client::{Role, WriteRecord};
    use tower::ServiceExt;

    use super::*;
    use crate::auth::Caller;
    use crate::store::MemoryStore;
    use crate::{Gate, GateConfig};

    fn gate_over(store: Arc<MemoryStore>) -> AppState {
        Arc::new(Gate::new(store, Vec::new(), GateConfig::default()))
    }

    fn record(id: &str, agent: &str) -> WriteRecord {
        serde_json::from_value(json!({
            "id": id, "agent": agent, "status": "held", "connector": "fake",
            "proposal": {"intent": "test", "action": {}},
            "decision": {"decision": "hold", "reasons": [], "blast_radius": [], "bearers": [],
                         "evidence": [], "steps": []},
            "proposal_hash": "p", "decision_hash": "d", "submitted_hash": "s",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "required_approvals": 1
        }))
        .unwrap()
    }

    fn event(write_id: Option<&str>) -> GateEvent {
        GateEvent {
            seq: 1,
            kind: "write".into(),
            write_id: write_id.map(str::to_string),
            status: None,
            at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn an_agent_hears_only_its_own_writes() {
        let store = Arc::new(MemoryStore::new());
        store.put_write_raw(record("w-own", "bot"));
        store.put_write_raw(record("w-other", "other-bot"));
        let gate = gate_over(store);

        let agent = Audience::of(&Caller::new("bot", Role::Agent), gate.clone());
        assert!(agent.sees(&event(Some("w-own"))).await);
        assert!(!agent.sees(&event(Some("w-other"))).await);
        assert!(!agent.sees(&event(Some("w-missing"))).await);
        // The gate's own events (freeze, resume) carry no write.
        assert!(agent.sees(&event(None)).await);
        // Answered from what it already looked up.
        assert!(agent.sees(&event(Some("w-own"))).await);
        assert!(!agent.sees(&event(Some("w-other"))).await);

        for role in [
            Role::Reviewer,
            Role::RiskOfficer,
            Role::IncidentLead,
            Role::Admin,
        ] {
            let reader = Audience::of(&Caller::new("r", role), gate.clone());
            assert!(reader.sees(&event(Some("w-other"))).await, "{role:?}");
            assert!(reader.sees(&event(Some("w-missing"))).await, "{role:?}");
        }
    }

    async fn open_events(gate: AppState, token: &str) -> axum::response::Response {
        super::super::router(gate)
            .oneshot(
                Request::get("/v1/events")
                    .header("authorization", format!("Bearer {token}"))
                    .body(HttpBody::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_stream_ends_when_its_token_expires() {
        let store = Arc::new(MemoryStore::new());
        let gate = gate_over(store.clone());
        let soon = Utc::now() + chrono::Duration::milliseconds(400);
        let short =
            crate::create_token(store.as_ref(), "test", "short", Role::Reviewer, Some(soon))
                .await
                .unwrap();
        let long = crate::create_token(store.as_ref(), "test", "long", Role::Reviewer, None)
            .await
            .unwrap();

        let resp = open_events(gate.clone(), &short).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let ended = tokio::time::timeout(
            Duration::from_secs(10),
            axum::body::to_bytes(resp.into_body(), usize::MAX),
        )
        .await;
        assert!(ended.is_ok(), "the stream outlived its token");

        let resp = open_events(gate, &long).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let open = tokio::time::timeout(
            Duration::from_millis(800),
            axum::body::to_bytes(resp.into_body(), usize::MAX),
        )
        .await;
        assert!(open.is_err(), "a stream without expiry ended on its own");
    }
}
