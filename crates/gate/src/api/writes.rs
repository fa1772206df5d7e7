//! `/v1/writes`: submit, list, show, approve, reject, roll back.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use recourse_client::{
    ApproveRequest, Permission, RejectRequest, ResolveRequest, RollbackRequest, WriteRecord,
    WriteStatus, WriteSummary,
};
use serde::Deserialize;

use super::{ApiError, AppState, Auth, Body};
use crate::error::GateError;
use crate::store::WriteFilter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/writes", post(submit).get(list))
        .route("/v1/explain", post(explain))
        .route("/v1/writes/{id}", get(show))
        .route("/v1/writes/{id}/approve", post(approve))
        .route("/v1/writes/{id}/reject", post(reject))
        .route("/v1/writes/{id}/rollback", post(rollback))
        .route("/v1/writes/{id}/resolve", post(resolve))
}

/// 201 with the new write; 200 with the first one for a repeated key.
async fn submit(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<serde_json::Value>,
) -> Result<(StatusCode, Json<WriteRecord>), ApiError> {
    let (mut record, created) = gate.submit(&caller, body).await?;
    record.actions = gate.actions_for(&caller, &record);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(record)))
}

/// The decision without storing or running anything.
async fn explain(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<serde_json::Value>,
) -> Result<Json<recourse_client::Explained>, ApiError> {
    Ok(Json(gate.explain(&caller, body).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    agent: Option<String>,
    limit: Option<i64>,
}

async fn list(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<WriteSummary>>, ApiError> {
    let Query(q) = query.map_err(|e| GateError::invalid("query", e.body_text()))?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(WriteStatus::parse(s).ok_or_else(|| {
            let all: Vec<_> = WriteStatus::ALL.iter().map(|w| w.as_str()).collect();
            GateError::invalid(
                "status",
                format!("unknown status `{s}` (one of: {})", all.join(", ")),
            )
        })?),
    };
    if q.limit.is_some_and(|l| l < 1) {
        return Err(GateError::invalid("limit", "must be at least 1").into());
    }
    // Agents see their own writes only.
    let agent = if !caller.can(Permission::ReadAllWrites) {
        Some(caller.name.clone())
    } else {
        q.agent
    };
    let filter = WriteFilter {
        status,
        agent,
        limit: q.limit,
    };
    // Expiry is settled by the gate's sweeper (every 30 s) and checked again
    // on every approval, not on each list: a queue of 10,000 held writes is
    // read often.
    let mut list = gate.store().summaries(&filter).await?;
    for s in &mut list {
        s.actions = crate::lifecycle::summary_actions(&caller, s);
    }
    Ok(Json(list))
}

async fn show(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<WriteRecord>, ApiError> {
    Ok(Json(gate.get(&caller, &id).await?))
}

async fn approve(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<ApproveRequest>,
) -> Result<Json<WriteRecord>, ApiError> {
    let mut rec = gate.approve(&caller, &id, req.comment).await?;
    rec.actions = gate.actions_for(&caller, &rec);
    Ok(Json(rec))
}

async fn reject(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<RejectRequest>,
) -> Result<Json<WriteRecord>, ApiError> {
    let mut rec = gate.reject(&caller, &id, req.reason).await?;
    rec.actions = gate.actions_for(&caller, &rec);
    Ok(Json(rec))
}

async fn rollback(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<RollbackRequest>,
) -> Result<Json<WriteRecord>, ApiError> {
    let mut rec = gate.rollback(&caller, &id, req.reason, req.force).await?;
    rec.actions = gate.actions_for(&caller, &rec);
    Ok(Json(rec))
}

/// An incident lead settles a write whose outcome the gate cannot know.
async fn resolve(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<ResolveRequest>,
) -> Result<Json<WriteRecord>, ApiError> {
    let mut rec = gate.resolve(&caller, &id, req.executed, req.reason).await?;
    rec.actions = gate.actions_for(&caller, &rec);
    Ok(Json(rec))
}
