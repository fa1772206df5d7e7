//! `/v1/catalog`: the dependency graph, read by reviewers and edited by risk
//! officers.

use axum::extract::{Path, State};
use axum::Json;
use recourse_client::{
    CatalogPlan, CatalogReplaced, CatalogReplacement, ErrorBody, Neighbour, Permission,
    ResourceView, WriteRecord, WriteStatus,
};
use recourse_core::catalog::Link;
use recourse_core::{Catalog, CatalogGraph};
use serde_json::json;

use super::{ApiError, AppState, Auth, Body, Routes};
use crate::audit::AuditDraft;
use crate::error::GateError;
use crate::store::WriteFilter;

pub(crate) fn routes(r: Routes) -> Routes {
    r.get("/v1/catalog", show)
        .post("/v1/catalog", upsert)
        .put("/v1/catalog", replace)
        .post("/v1/catalog/plan", plan)
        // A catch-all: resource ids contain `/` (`fs:/srv/a`, `sql:shop/t`).
        .get("/v1/catalog/resources/{*id}", resource)
}

/// The operations of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(show, upsert, replace, plan, resource))]
pub(crate) struct Api;

/// The catalog: every resource and edge.
#[utoipa::path(
    get,
    path = "/v1/catalog",
    operation_id = "get_catalog",
    tag = "catalog",
    responses(
        (status = 200, description = "The whole catalog.", body = Catalog),
        (status = 403, description = "The caller's role may not read the catalog.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn show(State(gate): State<AppState>, Auth(caller): Auth) -> Result<Json<Catalog>, ApiError> {
    caller.allow(Permission::ReadCatalog)?;
    Ok(Json(gate.with_catalog(|g| g.catalog().clone()).await?))
}

/// Upserts resources and edges. The result must be a valid catalog as a
/// whole; if not, nothing is stored and the error names the field.
#[utoipa::path(
    post,
    path = "/v1/catalog",
    operation_id = "upsert_catalog",
    tag = "catalog",
    request_body(content = Catalog, description = "Resources and edges to add or replace (by id)."),
    responses(
        (status = 200, description = "The catalog after the upsert.", body = Catalog),
        (status = 403, description = "Not a risk officer.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn upsert(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(add): Body<Catalog>,
) -> Result<Json<Catalog>, ApiError> {
    caller.allow(Permission::EditCatalog)?;
    let current = gate.with_catalog(|g| g.catalog().clone()).await?;
    let add = check_upsert(add, &current)?;
    let draft = AuditDraft::new(
        &caller.name,
        "catalog.upserted",
        None,
        json!({"resources": add.resources.len(), "edges": add.edges.len(), "upsert": add}),
    );
    gate.store().upsert_catalog(&add, true, Some(draft)).await?;
    Ok(Json(gate.with_catalog(|g| g.catalog().clone()).await?))
}

/// Makes the catalog exactly the one sent: resources and edges it lacks
/// are removed (discovered ones too), others added or changed. One audit
/// entry, `catalog.replaced`, names every change. Nothing changes when the
/// catalog is invalid (the error names the field) or, with
/// `expect_version`, when the catalog moved since.
#[utoipa::path(
    put,
    path = "/v1/catalog",
    operation_id = "replace_catalog",
    tag = "catalog",
    request_body(content = CatalogReplacement, description = "The whole catalog to have, as `recourse catalog export` writes it."),
    responses(
        (status = 200, description = "What changed, and the catalog's version before and after.", body = CatalogReplaced),
        (status = 400, description = "The catalog is invalid (duplicate ids or edges, an edge naming an unknown resource); `field` names where.", body = ErrorBody),
        (status = 403, description = "Not a risk officer.", body = ErrorBody),
        (status = 409, description = "`catalog_moved`: the catalog is not at `expect_version`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn replace(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<CatalogReplacement>,
) -> Result<Json<CatalogReplaced>, ApiError> {
    Ok(Json(gate.replace_catalog(&caller, req).await?))
}

/// What `PUT /v1/catalog` with this catalog would change: resources and
/// edges added, removed and changed (field by field), and the held and
/// recent writes it would decide differently (each decided now under both
/// catalogs by the same engine, with the same observations). Stores and
/// audits nothing.
#[utoipa::path(
    post,
    path = "/v1/catalog/plan",
    operation_id = "plan_catalog",
    tag = "catalog",
    request_body(content = CatalogReplacement, description = "The whole catalog to compare with the gate's."),
    responses(
        (status = 200, description = "The changes and the writes they would decide differently.", body = CatalogPlan),
        (status = 400, description = "The catalog is invalid; `field` names where.", body = ErrorBody),
        (status = 403, description = "Not a risk officer.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn plan(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<CatalogReplacement>,
) -> Result<Json<CatalogPlan>, ApiError> {
    Ok(Json(gate.plan_catalog(&caller, req).await?))
}

/// What `POST /v1/catalog` checks before it stores anything: the batch
/// with the contract's default bearer on each resource that has none, if
/// it is valid on its own (duplicates, ids, probe prefixes) and its edges
/// reach only resources it or `current` has. The error names the field
/// (`resources[0].id`). Public for the fuzz target `catalog_body`
/// ([`super::read_catalog_body`]).
pub fn check_upsert(add: Catalog, current: &Catalog) -> Result<Catalog, GateError> {
    // A risk officer's entry without a `bearer` is the institution's (the
    // contract's default); only discovered resources inherit theirs.
    let add = add.with_default_bearers();
    // Validate the batch on its own (duplicates, ids), then merged.
    let mut own = add.clone();
    let known: std::collections::HashSet<String> =
        own.resources.iter().map(|r| r.id.clone()).collect();
    own.resources.extend(
        current
            .resources
            .iter()
            .filter(|r| !known.contains(&r.id))
            .cloned(),
    );
    CatalogGraph::new(own)
        .map_err(|e| GateError::invalid(e.field.trim_start_matches("catalog."), e.message))?;
    Ok(add)
}

/// Held writes (newest first) a resource's view looks through for those
/// whose blast radius reaches it.
const HELD_REACHING_MAX: i64 = 1_000;

/// A resource with what it reaches, what reaches it, the writes that
/// touched it, and the held writes whose blast radius reaches it.
#[utoipa::path(
    get,
    path = "/v1/catalog/resources/{id}",
    operation_id = "get_resource",
    tag = "catalog",
    params(("id" = String, Path, description = "The resource id, e.g. `fs:/srv/customers` (its `/` may be sent as they are or as `%2F`).")),
    responses(
        (status = 200, description = "The resource and its neighbours.", body = ResourceView),
        (status = 403, description = "The caller's role may not read the catalog.", body = ErrorBody),
        (status = 404, description = "No such resource in the catalog.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn resource(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<ResourceView>, ApiError> {
    caller.allow(Permission::ReadCatalog)?;
    let found = gate
        .with_catalog(|graph| {
            let resource = graph.get(&id).cloned()?;
            let (out, inc) = graph.neighbours(&id);
            let to_n = |(r, l): (&recourse_core::Resource, Link)| Neighbour {
                resource: r.clone(),
                why: graph.why(l).map(str::to_string),
                contains: l == Link::Contains,
            };
            let reaches: Vec<Neighbour> = out.into_iter().map(to_n).collect();
            let reached_by: Vec<Neighbour> = inc.into_iter().map(to_n).collect();
            Some((resource, reaches, reached_by))
        })
        .await?;
    let (resource, reaches, reached_by) =
        found.ok_or_else(|| GateError::NotFound(format!("no resource `{id}` in the catalog")))?;
    let writes = gate
        .store()
        .summaries(&WriteFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await?
        .into_iter()
        .filter(|w| w.touches.iter().any(|t| t == &id))
        .collect();
    // From each held write's recorded decision, not decided again: this is
    // what the reviewers see on those writes now.
    let held_reaching = gate
        .store()
        .writes(&WriteFilter {
            status: Some(WriteStatus::Held),
            limit: Some(HELD_REACHING_MAX),
            ..Default::default()
        })
        .await?
        .iter()
        .filter(|w| w.decision.blast_radius.iter().any(|e| e.resource == id))
        .map(WriteRecord::summary)
        .collect();
    Ok(Json(ResourceView {
        resource,
        reaches,
        reached_by,
        writes,
        held_reaching,
    }))
}
