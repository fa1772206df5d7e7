//! `/v1/catalog`: the dependency graph, read by reviewers and edited by risk
//! officers.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use recourse_client::{Neighbour, Permission, ResourceView};
use recourse_core::catalog::Link;
use recourse_core::{Catalog, CatalogGraph};
use serde_json::json;

use super::{ApiError, AppState, Auth, Body};
use crate::audit::AuditDraft;
use crate::error::GateError;
use crate::store::WriteFilter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/catalog", get(show).post(upsert))
        .route("/v1/catalog/resources/{*id}", get(resource))
}

async fn show(State(gate): State<AppState>, Auth(caller): Auth) -> Result<Json<Catalog>, ApiError> {
    caller.allow(Permission::ReadCatalog)?;
    Ok(Json(gate.catalog_graph().await?.catalog().clone()))
}

/// Upserts resources and edges. The result must be a valid catalog as a
/// whole; if not, nothing is stored and the error names the field.
async fn upsert(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Body(add): Body<Catalog>,
) -> Result<Json<Catalog>, ApiError> {
    caller.allow(Permission::EditCatalog)?;
    // A risk officer's entry without a `bearer` is the institution's (the
    // contract's default); only discovered resources inherit theirs.
    let add = add.with_default_bearers();
    // Validate the batch on its own (duplicates, ids), then merged.
    let mut own = add.clone();
    let current = gate.catalog_graph().await?.catalog().clone();
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
    let draft = AuditDraft::new(
        &caller.name,
        "catalog.upserted",
        None,
        json!({"resources": add.resources.len(), "edges": add.edges.len(), "upsert": add}),
    );
    gate.store().upsert_catalog(&add, true, Some(draft)).await?;
    Ok(Json(gate.catalog_graph().await?.catalog().clone()))
}

async fn resource(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<ResourceView>, ApiError> {
    caller.allow(Permission::ReadCatalog)?;
    let graph = gate.catalog_graph().await?;
    let resource = graph
        .get(&id)
        .cloned()
        .ok_or_else(|| GateError::NotFound(format!("no resource `{id}` in the catalog")))?;
    let (out, inc) = graph.neighbours(&id);
    let to_n = |(r, l): (&recourse_core::Resource, Link)| Neighbour {
        resource: r.clone(),
        why: graph.why(l).map(str::to_string),
        contains: l == Link::Contains,
    };
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
    Ok(Json(ResourceView {
        resource,
        reaches: out.into_iter().map(to_n).collect(),
        reached_by: inc.into_iter().map(to_n).collect(),
        writes,
    }))
}
