//! The OpenAPI document at `/v1/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations (each API module's `Api`) and the wire
//! types. A copy is committed as `docs/openapi.json`; the tests below fail
//! when a served route is missing from the document or the copy drifts.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr};
use utoipa::{Modify, OpenApi as _};

use crate::api;

/// The name of the security scheme every authenticated operation names.
pub const BEARER: &str = "bearer";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Recourse gate",
        description = "Recoverability as a precondition of every write. Every call but `/healthz`, \
                       `/metrics` and this document needs `Authorization: Bearer TOKEN` (tokens come \
                       from `recourse token create`). Every error is an `ErrorBody`."
    ),
    tags(
        (name = "writes", description = "Submit writes, read them, and decide on held ones"),
        (name = "catalog", description = "The dependency catalog the blast radius is computed over"),
        (name = "audit", description = "The hash-chained audit trail"),
        (name = "gate", description = "The gate itself: health, identity, freeze, mode, rewind, tokens, events"),
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
        recourse_core::Decision,
        recourse_core::Reason,
        recourse_core::decision::BlastEntry,
        recourse_core::decision::EvidenceReport,
        recourse_core::decision::StepReport,
        recourse_client::WriteRecord,
        recourse_client::Effect,
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
        recourse_client::GateMode,
        recourse_client::ModeState,
        recourse_client::ModeRequest,
        recourse_client::ObservedHold,
        recourse_client::RewindRequest,
        recourse_client::RewindReport,
        recourse_client::RewindItem,
        recourse_client::AuditEntry,
        recourse_client::AuditVerification,
        recourse_client::GateEvent,
        recourse_client::WhoAmI,
        recourse_client::ResourceView,
        recourse_client::CatalogReplacement,
        recourse_client::CatalogPlan,
        recourse_client::CatalogReplaced,
        recourse_client::Redecided,
        recourse_core::catalog_diff::CatalogDiff,
        recourse_core::catalog_diff::ResourceChange,
        recourse_core::catalog_diff::EdgeChange,
        recourse_core::catalog_diff::FieldChange,
        recourse_client::Neighbour,
        recourse_client::TokenRequest,
        recourse_client::TokenCreated,
        recourse_client::TokenScope,
        recourse_client::TokenInfo,
        recourse_client::ErrorBody,
        recourse_client::ErrorDetail,
    )),
    modifiers(&BearerScheme)
)]
struct Doc;

/// Declares the `bearer` scheme the operations' `security` names.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `recourse token create` or `POST /v1/tokens`; its role \
                         decides what it may do.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The error answers every operation of a kind can give, added here once
/// rather than on each handler: they come from the extractors and layers
/// all handlers share, not from the handlers.
///
/// - a token ([`api::Auth`]): 401 unknown, missing or expired; 429 over the
///   token's rate limit;
/// - a body ([`api::Body`]): 400 naming the bad field, 413 too large;
/// - query parameters: 400 naming the bad one;
/// - the store (all but the document itself): 503 while it is unavailable.
fn shared_errors(path: &str, op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let has_query = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
    });
    let mut add = |status: &str, description: &str, retry: bool| {
        if op.responses.responses.contains_key(status) {
            return;
        }
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        );
        if retry {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::Integer))
                    .description(Some("Seconds to wait before trying again."))
                    .build(),
            );
        }
        op.responses
            .responses
            .insert(status.to_string(), RefOr::T(response.build()));
    };
    if has_body || has_query {
        add(
            "400",
            "The request is malformed; `error.field` names what is wrong.",
            false,
        );
    }
    if secured {
        add(
            "401",
            "No `Authorization: Bearer TOKEN`, or the token is unknown or expired.",
            false,
        );
    }
    if has_body {
        add("413", "The body is larger than the gate accepts.", false);
    }
    if secured {
        add("429", "The token is over its rate limit.", true);
    }
    if path != "/v1/openapi.json" {
        add(
            "503",
            "The gate's store cannot record now (busy, full, read-only, replaced, unreachable, or it did not answer within the store timeout; the message names which): what it could not record was not done.",
            true,
        );
    }
}

pub fn document() -> OpenApi {
    let mut doc = Doc::openapi()
        .merge_from(api::writes::Api::openapi())
        .merge_from(api::catalog::Api::openapi())
        .merge_from(api::audit::Api::openapi())
        .merge_from(api::report::Api::openapi())
        .merge_from(api::gate::Api::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            shared_errors(path, op);
        }
    }
    open_free_form_objects(doc)
}

/// A free-form object (a connector's action, a capture, labels) says so
/// with `additionalProperties: true`: `{"type": "object"}` alone is read by
/// some generators (openapi-typescript) as an object with no keys at all,
/// which no client could send.
fn open_free_form_objects(doc: OpenApi) -> OpenApi {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                let is_object = match map.get("type") {
                    Some(serde_json::Value::String(t)) => t == "object",
                    Some(serde_json::Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                    _ => false,
                };
                if is_object
                    && !map.contains_key("properties")
                    && !map.contains_key("additionalProperties")
                {
                    map.insert("additionalProperties".into(), serde_json::Value::Bool(true));
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::to_value(&doc) else {
        return doc;
    };
    walk(&mut value);
    serde_json::from_value(value).unwrap_or(doc)
}

/// The document as committed in `docs/openapi.json`.
pub fn document_json() -> String {
    let mut text = document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    /// Every (method, path) in the document, paths as the document spells
    /// them.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = document();
        let mut out = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ] {
                if op.is_some() {
                    out.insert((method.to_string(), path.clone()));
                }
            }
        }
        out
    }

    /// axum's catch-all `{*id}` is the document's `{id}`.
    fn as_documented(path: &str) -> String {
        path.replace("{*", "{")
    }

    #[test]
    fn every_served_route_is_documented_and_every_documented_one_served() {
        let served: BTreeSet<(String, String)> = api::served()
            .into_iter()
            .map(|(m, p)| (m.to_string(), as_documented(p)))
            .collect();
        let documented = documented();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "served but missing from the OpenAPI document (add #[utoipa::path] and list it in its module's `Api`): {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "in the OpenAPI document but not served: {unserved:?}"
        );
    }

    #[test]
    fn every_operation_is_complete() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for op in [&item.get, &item.post, &item.put, &item.delete, &item.patch]
                .into_iter()
                .flatten()
            {
                let id = op.operation_id.clone().unwrap_or_default();
                assert!(!id.is_empty(), "{path}: no operationId");
                assert!(
                    id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{path}: operationId `{id}` is not a snake_case method name"
                );
                assert!(ids.insert(id.clone()), "operationId `{id}` twice");
                let ok: Vec<_> = op
                    .responses
                    .responses
                    .keys()
                    .filter(|s| s.starts_with('2'))
                    .collect();
                assert!(!ok.is_empty(), "{id}: no success response");
                for status in op.responses.responses.keys() {
                    let RefOr::T(r) = &op.responses.responses[status] else {
                        continue;
                    };
                    // 204 No Content is the one answer without a body.
                    assert!(
                        status == "204" || !r.content.is_empty(),
                        "{id} {status}: no body described"
                    );
                    if !status.starts_with('2') {
                        let json = serde_json::to_value(r).unwrap();
                        assert_eq!(
                            json["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{id} {status}: errors are ErrorBody"
                        );
                    }
                }
                // Every `{name}` in the path is a declared path parameter.
                let declared: BTreeSet<String> = op
                    .parameters
                    .iter()
                    .flatten()
                    .filter(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path))
                    .map(|p| p.name.clone())
                    .collect();
                let in_path: BTreeSet<String> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .map(str::to_string)
                    .collect();
                assert_eq!(declared, in_path, "{id}: path parameters");
            }
        }
        let schemes = doc.components.as_ref().map(|c| &c.security_schemes);
        assert!(
            schemes.is_some_and(|s| s.contains_key(BEARER)),
            "no bearer scheme"
        );
    }

    /// The document's `security` is what the router enforces: every
    /// operation that names the bearer scheme answers 401 without a token,
    /// and every other one does not.
    #[tokio::test]
    async fn security_is_documented_as_enforced() {
        let store = std::sync::Arc::new(crate::store::MemoryStore::new());
        let gate: api::AppState = std::sync::Arc::new(crate::Gate::new(
            store,
            Vec::new(),
            crate::GateConfig::default(),
        ));
        let doc = document();
        let mut checked = 0;
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
            ] {
                let Some(op) = op else { continue };
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let uri = path.replace("{id}", "w-1");
                let resp = api::router(gate.clone())
                    .oneshot(
                        Request::builder()
                            .method(method.clone())
                            .uri(&uri)
                            .body(Body::from("{}"))
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let id = op.operation_id.clone().unwrap_or_default();
                if secured {
                    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{id}");
                } else {
                    assert_ne!(resp.status(), StatusCode::UNAUTHORIZED, "{id}");
                    assert_ne!(resp.status(), StatusCode::NOT_FOUND, "{id}");
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} operations");
    }

    /// `docs/openapi.json` is the document the gate serves;
    /// `UPDATE_DOCS=1 cargo test -p recourse-gate openapi` rewrites it.
    #[test]
    fn the_committed_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let text = document_json();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &text).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == text,
            "docs/openapi.json is not the document the gate serves; run \
             `UPDATE_DOCS=1 cargo test -p recourse-gate openapi` and commit it"
        );
    }
}
