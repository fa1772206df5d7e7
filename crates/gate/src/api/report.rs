//! `/v1/report`: the seed's Monday audit over the catalog and every write
//! the gate has recorded. The engine is `recourse-report`; this only reads
//! the store and hands it over.

use axum::extract::State;
use axum::Json;
use recourse_client::{ErrorBody, Permission};
use recourse_report::Report;

use super::{ApiError, AppState, Auth, Routes};
use crate::store::WriteFilter;

pub(crate) fn routes(r: Routes) -> Routes {
    r.get("/v1/report", show)
}

/// The operations of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(show))]
pub(crate) struct Api;

/// The Monday audit: for every kind of write the gate has seen and every
/// catalog resource, the rollback path step by step, the context it
/// depends on (and whether it lay outside the blast radius, present and
/// fresh), and who bears the cost. Computed from the recorded decisions
/// and the masked proposals; `docs/report.md` explains how to read it.
#[utoipa::path(
    get,
    path = "/v1/report",
    operation_id = "get_report",
    tag = "audit",
    responses(
        (status = 200, description = "The report.", body = Report),
        (status = 403, description = "The caller's role may not read the report (agents).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn show(State(gate): State<AppState>, Auth(caller): Auth) -> Result<Json<Report>, ApiError> {
    caller.allow(Permission::ReadReport)?;
    let writes = gate.store().writes(&WriteFilter::default()).await?;
    let now = chrono::Utc::now();
    let report = gate
        .with_catalog(|g| recourse_report::build(g.catalog(), &writes, now))
        .await?;
    Ok(Json(report))
}
