//! The gate itself: health, metrics, who am I, freeze, rewind, tokens,
//! events, the OpenAPI document.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use recourse_client::{
    FreezeRequest, FreezeState, RewindReport, RewindRequest, TokenCreated, TokenRequest, WhoAmI,
};
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use super::{ApiError, AppState, Auth, Body};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/whoami", get(whoami))
        .route("/v1/freeze", get(freeze_state).post(freeze))
        .route("/v1/resume", post(resume))
        .route("/v1/rewind", post(rewind))
        .route("/v1/tokens", post(create_token))
        .route("/v1/events", get(events))
}

async fn healthz(State(gate): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    // Healthy means the store answers.
    let frozen = gate.freeze_state().await?.frozen;
    Ok(Json(
        json!({"ok": true, "frozen": frozen, "connectors": gate.connector_names()}),
    ))
}

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

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}

async fn whoami(Auth(caller): Auth) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: caller.name,
        role: caller.role,
    })
}

async fn freeze_state(
    State(gate): State<AppState>,
    Auth(_): Auth,
) -> Result<Json<FreezeState>, ApiError> {
    Ok(Json(gate.freeze_state().await?))
}

async fn freeze(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<FreezeRequest>,
) -> Result<Json<FreezeState>, ApiError> {
    Ok(Json(
        gate.set_freeze(&caller, true, Some(req.reason)).await?,
    ))
}

async fn resume(
    State(gate): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<FreezeState>, ApiError> {
    Ok(Json(gate.set_freeze(&caller, false, None).await?))
}

async fn rewind(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<RewindRequest>,
) -> Result<Json<RewindReport>, ApiError> {
    Ok(Json(gate.rewind(&caller, req).await?))
}

async fn create_token(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<TokenRequest>,
) -> Result<Json<TokenCreated>, ApiError> {
    caller.require(&[], "admins create tokens")?;
    let token = crate::create_token(
        gate.store().as_ref(),
        &caller.name,
        &req.name,
        req.role,
        None,
    )
    .await?;
    Ok(Json(TokenCreated {
        name: req.name,
        role: req.role,
        token,
    }))
}

/// Server-sent events: one `write` event per change of a write's status,
/// `gate.frozen` / `gate.resumed`. Agents may listen too (they see ids only).
async fn events(
    State(gate): State<AppState>,
    Auth(_): Auth,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(gate.subscribe()).filter_map(|e| {
        let e = e.ok()?;
        let data = serde_json::to_string(&e).ok()?;
        Some(Ok(Event::default().event(e.kind.clone()).data(data)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
