//! `/v1/audit`: the hash-chained trail and its verification.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use recourse_client::{AuditEntry, AuditVerification, Role};
use serde::Deserialize;

use super::{ApiError, AppState, Auth};
use crate::error::GateError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit", get(list))
        .route("/v1/audit/verify", get(verify))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<i64>,
    limit: Option<i64>,
}

fn may_read(caller: &crate::auth::Caller) -> Result<(), GateError> {
    caller.require(
        &[Role::Reviewer, Role::RiskOfficer, Role::IncidentLead],
        "reviewers, risk officers and incident leads read the audit trail",
    )
}

async fn list(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    may_read(&caller)?;
    let Query(p) = page.map_err(|e| GateError::invalid("query", e.body_text()))?;
    let limit = p.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(GateError::invalid("limit", "must be between 1 and 10000").into());
    }
    Ok(Json(gate.store().audit(p.after.unwrap_or(0), limit).await?))
}

async fn verify(
    State(gate): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<AuditVerification>, ApiError> {
    may_read(&caller)?;
    Ok(Json(
        crate::verify_store_audit(gate.store().as_ref()).await?,
    ))
}
