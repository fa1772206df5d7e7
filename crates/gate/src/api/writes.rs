//! `/v1/writes`: submit, list, show, approve, reject, roll back.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use recourse_client::{
    ApproveRequest, Effect, ErrorBody, Explained, Permission, RejectRequest, ResolveRequest,
    RollbackRequest, WriteRecord, WriteStatus, WriteSummary,
};
use recourse_core::Proposal;
use serde::Deserialize;

use super::{ApiError, AppState, Auth, Body, Routes};
use crate::error::GateError;
use crate::store::WriteFilter;

pub(crate) fn routes(r: Routes) -> Routes {
    r.post("/v1/writes", submit)
        .get("/v1/writes", list)
        .post("/v1/explain", explain)
        .get("/v1/writes/{id}", show)
        .get("/v1/writes/{id}/effect", effect)
        .post("/v1/writes/{id}/approve", approve)
        .post("/v1/writes/{id}/reject", reject)
        .post("/v1/writes/{id}/rollback", rollback)
        .post("/v1/writes/{id}/resolve", resolve)
}

/// The operations of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    submit, list, explain, show, effect, approve, reject, rollback, resolve
))]
pub(crate) struct Api;

/// 201 with the new write; 200 with the first one for a repeated key.
#[utoipa::path(
    post,
    path = "/v1/writes",
    operation_id = "submit_write",
    tag = "writes",
    request_body(content = Proposal, description = "The write: its intent and the connector's action (`{\"connector\": \"fs\", \"op\": \"delete\", \"path\": ...}`); `touches` and rollback steps the connector derives where it can."),
    responses(
        (status = 201, description = "Stored and decided: executed, held for a person, or refused (the record says which and why).", body = WriteRecord),
        (status = 200, description = "The idempotency key was seen before with the same proposal: the first write.", body = WriteRecord),
        (status = 403, description = "The caller's role may not submit, or the connector refuses the action.", body = ErrorBody),
        (status = 409, description = "The idempotency key was used for a different proposal.", body = ErrorBody),
        (status = 502, description = "The target system failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn submit(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<serde_json::Value>,
) -> Result<(StatusCode, Json<WriteRecord>), ApiError> {
    let (record, created) = gate.submit(&caller, body).await?;
    let record = gate.for_caller(&caller, record).await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(record)))
}

/// The decision without storing or running anything.
#[utoipa::path(
    post,
    path = "/v1/explain",
    operation_id = "explain_write",
    tag = "writes",
    request_body(content = Proposal, description = "A proposal as it would be submitted."),
    responses(
        (status = 200, description = "The proposal as its connector plans it and the decision it would get now.", body = Explained),
        (status = 403, description = "The caller's role may not submit, or the connector refuses the action.", body = ErrorBody),
        (status = 502, description = "The target system failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn explain(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<serde_json::Value>,
) -> Result<Json<recourse_client::Explained>, ApiError> {
    Ok(Json(gate.explain(&caller, body).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only writes in this status (`held`: the review queue).
    #[param(value_type = Option<WriteStatus>)]
    status: Option<String>,
    /// Only this agent's writes (ignored for an agent, which sees its own).
    agent: Option<String>,
    /// At most this many.
    #[param(minimum = 1)]
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/v1/writes",
    operation_id = "list_writes",
    tag = "writes",
    params(ListQuery),
    responses(
        (status = 200, description = "Newest first; an agent sees its own writes only.", body = Vec<WriteSummary>),
    ),
    security(("bearer" = []))
)]
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
    let frozen = gate.approvals_stopped().await;
    for s in &mut list {
        s.actions = crate::lifecycle::summary_actions(&caller, s, frozen);
    }
    Ok(Json(list))
}

#[utoipa::path(
    get,
    path = "/v1/writes/{id}",
    operation_id = "get_write",
    tag = "writes",
    params(("id" = String, Path, description = "The write's id, as `submit_write` returned it.")),
    responses(
        (status = 200, description = "The write: decision, blast radius, evidence, history.", body = WriteRecord),
        (status = 404, description = "No such write (or, for an agent, not its own).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn show(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<WriteRecord>, ApiError> {
    Ok(Json(gate.get(&caller, &id).await?))
}

#[utoipa::path(
    get,
    path = "/v1/writes/{id}/effect",
    operation_id = "get_write_effect",
    tag = "writes",
    params(("id" = String, Path, description = "The write's id.")),
    responses(
        (status = 200, description = "What the held or approved write will change, read from its target now by its connector: the rows it matches before and after, a file diff, the tree a delete or move takes away, the request it sends. Bounded and masked; never stored.", body = Effect),
        (status = 403, description = "Only people who read every write (reviewers, risk officers, incident leads) preview effects; never an agent.", body = ErrorBody),
        (status = 404, description = "No such write.", body = ErrorBody),
        (status = 409, description = "`effect_past`: the write is no longer held or approved; `unknown_connector`: this gate cannot read the target.", body = ErrorBody),
        (status = 502, description = "The target could not be read.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn effect(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Effect>, ApiError> {
    Ok(Json(gate.effect(&caller, &id).await?))
}

#[utoipa::path(
    post,
    path = "/v1/writes/{id}/approve",
    operation_id = "approve_write",
    tag = "writes",
    params(("id" = String, Path, description = "The write's id, as `submit_write` returned it.")),
    request_body = ApproveRequest,
    responses(
        (status = 200, description = "The write after the approval: executed once enough approvals bind to its current proposal and decision.", body = WriteRecord),
        (status = 403, description = "Not a reviewer, or separation of duties forbids it.", body = ErrorBody),
        (status = 404, description = "No such write.", body = ErrorBody),
        (status = 409, description = "The write's status does not allow this now.", body = ErrorBody),
        (status = 422, description = "`reason_required`: a third party pays or something external is reached (the write's `approval_needs_reason`), and `comment` is missing or blank. Nothing was recorded.", body = ErrorBody),
        (status = 502, description = "The target system failed when the write ran.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn approve(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<ApproveRequest>,
) -> Result<Json<WriteRecord>, ApiError> {
    let rec = gate.approve(&caller, &id, req.comment).await?;
    let rec = gate.for_caller(&caller, rec).await;
    Ok(Json(rec))
}

#[utoipa::path(
    post,
    path = "/v1/writes/{id}/reject",
    operation_id = "reject_write",
    tag = "writes",
    params(("id" = String, Path, description = "The write's id, as `submit_write` returned it.")),
    request_body = RejectRequest,
    responses(
        (status = 200, description = "The rejected write; nothing ran.", body = WriteRecord),
        (status = 403, description = "Not a reviewer, or separation of duties forbids it.", body = ErrorBody),
        (status = 404, description = "No such write.", body = ErrorBody),
        (status = 409, description = "The write's status does not allow this now.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn reject(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<RejectRequest>,
) -> Result<Json<WriteRecord>, ApiError> {
    let rec = gate.reject(&caller, &id, req.reason).await?;
    let rec = gate.for_caller(&caller, rec).await;
    Ok(Json(rec))
}

#[utoipa::path(
    post,
    path = "/v1/writes/{id}/rollback",
    operation_id = "rollback_write",
    tag = "writes",
    params(("id" = String, Path, description = "The write's id, as `submit_write` returned it.")),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "The write after its rollback, with the verified report.", body = WriteRecord),
        (status = 403, description = "Not an incident lead, or separation of duties forbids it.", body = ErrorBody),
        (status = 404, description = "No such write.", body = ErrorBody),
        (status = 409, description = "The write's status does not allow this now.", body = ErrorBody),
        (status = 502, description = "The target system failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn rollback(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<RollbackRequest>,
) -> Result<Json<WriteRecord>, ApiError> {
    let rec = gate.rollback(&caller, &id, req.reason, req.force).await?;
    let rec = gate.for_caller(&caller, rec).await;
    Ok(Json(rec))
}

/// An incident lead settles a write whose outcome the gate cannot know.
#[utoipa::path(
    post,
    path = "/v1/writes/{id}/resolve",
    operation_id = "resolve_write",
    tag = "writes",
    params(("id" = String, Path, description = "The write's id, as `submit_write` returned it.")),
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "The settled write: executed or failed.", body = WriteRecord),
        (status = 403, description = "Not an incident lead, or separation of duties forbids it.", body = ErrorBody),
        (status = 404, description = "No such write.", body = ErrorBody),
        (status = 409, description = "The write's status does not allow this now.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn resolve(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(req): Body<ResolveRequest>,
) -> Result<Json<WriteRecord>, ApiError> {
    let rec = gate.resolve(&caller, &id, req.executed, req.reason).await?;
    let rec = gate.for_caller(&caller, rec).await;
    Ok(Json(rec))
}
