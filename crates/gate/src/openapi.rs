//! The OpenAPI document at `/v1/openapi.json`, from the wire types.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::{OpenApi, OpenApiBuilder, PathsBuilder};
use utoipa::OpenApi as _;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Recourse gate",
        description = "Recoverability as a precondition of every write"
    ),
    components(schemas(
        recourse_core::Proposal,
        recourse_core::Step,
        recourse_core::Evidence,
        recourse_core::EvidenceKind,
        recourse_core::EvidenceStatus,
        recourse_core::Observation,
        recourse_core::Catalog,
        recourse_core::Resource,
        recourse_core::Edge,
        recourse_core::Reach,
        recourse_core::Bearer,
        recourse_core::ReasonCode,
        recourse_core::Verdict,
        recourse_client::WriteRecord,
        recourse_client::WriteSummary,
        recourse_client::Explained,
        recourse_client::WriteStatus,
        recourse_client::Role,
        recourse_client::Approval,
        recourse_client::Transition,
        recourse_client::RollbackReport,
        recourse_client::RestoreItem,
        recourse_client::RestoreStatus,
        recourse_client::ApproveRequest,
        recourse_client::RejectRequest,
        recourse_client::RollbackRequest,
        recourse_client::ResolveRequest,
        recourse_client::WriteAction,
        recourse_client::Permission,
        recourse_client::FreezeRequest,
        recourse_client::FreezeState,
        recourse_client::RewindRequest,
        recourse_client::RewindReport,
        recourse_client::RewindItem,
        recourse_client::AuditEntry,
        recourse_client::AuditVerification,
        recourse_client::GateEvent,
        recourse_client::WhoAmI,
        recourse_client::ResourceView,
        recourse_client::Neighbour,
        recourse_client::TokenRequest,
        recourse_client::TokenCreated,
        recourse_client::TokenScope,
        recourse_client::TokenInfo,
        recourse_client::ErrorBody,
        recourse_client::ErrorDetail,
    ))
)]
struct Doc;

/// The routes, each with a one-line summary; bodies are the schemas above.
const ROUTES: &[(&str, HttpMethod, &str)] = &[
    (
        "/v1/writes",
        HttpMethod::Post,
        "Submit a proposal (body: Proposal; returns WriteRecord)",
    ),
    (
        "/v1/writes",
        HttpMethod::Get,
        "List writes (?status=held&agent=&limit=; returns WriteSummary[])",
    ),
    (
        "/v1/explain",
        HttpMethod::Post,
        "The decision a proposal would get now; nothing stored or run (returns Explained)",
    ),
    (
        "/v1/writes/{id}",
        HttpMethod::Get,
        "A write: decision, blast radius, evidence, history",
    ),
    (
        "/v1/writes/{id}/approve",
        HttpMethod::Post,
        "Approve a held write (ApproveRequest); reviewer",
    ),
    (
        "/v1/writes/{id}/reject",
        HttpMethod::Post,
        "Reject a held write (RejectRequest); reviewer",
    ),
    (
        "/v1/writes/{id}/rollback",
        HttpMethod::Post,
        "Roll back an executed write, or one whose rollback did not verify (RollbackRequest); incident lead",
    ),
    (
        "/v1/writes/{id}/resolve",
        HttpMethod::Post,
        "Settle a write whose outcome is unknown: it ran or it did not (ResolveRequest); incident lead",
    ),
    ("/v1/catalog", HttpMethod::Get, "The catalog"),
    (
        "/v1/catalog",
        HttpMethod::Post,
        "Upsert resources and edges (Catalog); risk officer",
    ),
    (
        "/v1/catalog/resources/{id}",
        HttpMethod::Get,
        "A resource with its neighbours and the writes that touched it",
    ),
    (
        "/v1/audit",
        HttpMethod::Get,
        "The audit trail (?after=&limit=)",
    ),
    ("/v1/audit/verify", HttpMethod::Get, "Verify the hash chain"),
    (
        "/v1/events",
        HttpMethod::Get,
        "Server-sent events (GateEvent)",
    ),
    ("/v1/freeze", HttpMethod::Get, "Freeze state"),
    (
        "/v1/freeze",
        HttpMethod::Post,
        "Freeze the gate (FreezeRequest); incident lead",
    ),
    (
        "/v1/resume",
        HttpMethod::Post,
        "Resume the gate; incident lead",
    ),
    (
        "/v1/rewind",
        HttpMethod::Post,
        "Roll back every write since a time (RewindRequest); incident lead",
    ),
    (
        "/v1/tokens",
        HttpMethod::Post,
        "Create a token (TokenRequest, with an optional TokenScope); admin",
    ),
    (
        "/v1/tokens",
        HttpMethod::Get,
        "List tokens: names, roles, scopes, expiry, revocation, never hashes (TokenInfo[]); admin",
    ),
    (
        "/v1/tokens/{name}",
        HttpMethod::Delete,
        "Revoke a token at once (204); admin",
    ),
    ("/v1/whoami", HttpMethod::Get, "The caller's name and role"),
    ("/healthz", HttpMethod::Get, "Health"),
    ("/metrics", HttpMethod::Get, "Prometheus metrics"),
];

pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for (path, method, summary) in ROUTES {
        let op = OperationBuilder::new().summary(Some(*summary)).build();
        paths = paths.path(*path, PathItem::new(method.clone(), op));
    }
    let base = Doc::openapi();
    let mut doc = OpenApiBuilder::from(base).paths(paths.build()).build();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}
