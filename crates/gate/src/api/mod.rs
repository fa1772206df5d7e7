//! The HTTP API (section 7): one router per resource, merged here, with
//! authentication from the bearer token and one JSON error shape.

pub(crate) mod audit;
pub(crate) mod catalog;
mod error;
pub(crate) mod gate;
pub(crate) mod report;
pub(crate) mod writes;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::Method;
use axum::Router;
use chrono::Utc;

pub use error::ApiError;

use crate::auth::{self, Caller};
use crate::error::GateError;
use crate::lifecycle::Gate;

/// Bodies larger than this are refused with 413 before they are parsed.
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

pub type AppState = Arc<Gate>;

pub fn router(gate: AppState) -> Router {
    routes()
        .router
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(gate)
}

/// Every route the gate serves, each module adding its own.
fn routes() -> Routes {
    let r = Routes::default();
    let r = writes::routes(r);
    let r = catalog::routes(r);
    let r = audit::routes(r);
    let r = report::routes(r);
    gate::routes(r)
}

/// The method and path of every route the router serves, as axum spells
/// the path (`{*id}` for a catch-all): the OpenAPI test holds the document
/// to it, since an axum `Router` cannot list its routes.
pub fn served() -> Vec<(Method, &'static str)> {
    routes().served
}

/// A router that records what it serves. Each route is added with the one
/// method it answers, so the record cannot disagree with the router.
#[derive(Default)]
pub(crate) struct Routes {
    router: Router<AppState>,
    served: Vec<(Method, &'static str)>,
}

impl Routes {
    pub(crate) fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::GET, path, axum::routing::get(handler))
    }

    pub(crate) fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::POST, path, axum::routing::post(handler))
    }

    pub(crate) fn put<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::PUT, path, axum::routing::put(handler))
    }

    pub(crate) fn delete<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::DELETE, path, axum::routing::delete(handler))
    }

    /// axum merges the method routers of one path, so a path may be added
    /// once per method.
    fn add(
        mut self,
        method: Method,
        path: &'static str,
        route: axum::routing::MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, route);
        self.served.push((method, path));
        self
    }
}

/// `router` with each token's requests per second limited by `limiter`
/// (checked where the caller is known: [`Auth`]); over it, a 429 with
/// `Retry-After` and nothing done.
pub fn with_rate_limit(router: Router, limiter: Arc<crate::limits::RateLimiter>) -> Router {
    router.layer(axum::Extension(limiter))
}

/// The caller, from `Authorization: Bearer TOKEN`: a token the gate issued,
/// or an ID token when the gate accepts them ([`with_oidc`]).
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| {
                GateError::Unauthorized("missing `Authorization: Bearer TOKEN`".into())
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| {
                GateError::Unauthorized("the Authorization header must be `Bearer TOKEN`".into())
            })?
            .trim();
        if crate::oidc::looks_like_jwt(token) {
            // An ID token: a person signing in through the identity
            // provider (`crate::oidc`), never a row in the token table.
            let verifier = parts
                .extensions
                .get::<Arc<crate::oidc::OidcVerifier>>()
                .cloned()
                .ok_or_else(|| {
                    GateError::Unauthorized(
                        "this gate does not accept ID tokens (it has no `--oidc-issuer`); use a bearer token".into(),
                    )
                })?;
            let caller = verifier.verify(token).await.map_err(GateError::from)?;
            within_rate(parts, &caller.name, "the sign-in")?;
            return Ok(Auth(caller));
        }
        let hash = auth::hash_token(token);
        let row = State::<AppState>::from_request_parts(parts, state)
            .await
            .map_err(|_| GateError::Unauthorized("no gate".into()))?
            .0
            .store()
            .token_by_hash(&hash)
            .await
            .map_err(GateError::from)?;
        let Some(row) = row.filter(|r| auth::same_hash(&r.hash, &hash)) else {
            return Err(GateError::Unauthorized("unknown token".into()).into());
        };
        if row.revoked_at.is_some() {
            return Err(
                GateError::Unauthorized(format!("the token `{}` was revoked", row.name)).into(),
            );
        }
        if row.expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(
                GateError::Unauthorized(format!("the token `{}` has expired", row.name)).into(),
            );
        }
        within_rate(parts, &row.name, "the token")?;
        Ok(Auth(Caller {
            name: row.name,
            role: row.role,
            expires_at: row.expires_at,
            scope: row.scope,
            signed_in: recourse_client::SignIn::Token,
        }))
    }
}

/// `router` accepting ID tokens checked by `verifier` beside bearer tokens
/// (checked in [`Auth`]).
pub fn with_oidc(router: Router, verifier: Arc<crate::oidc::OidcVerifier>) -> Router {
    router.layer(axum::Extension(verifier))
}

/// A 429 when the caller `name` is over its rate (`what` says whose rate:
/// "the token `x`", "the sign-in `oidc:x`").
fn within_rate(parts: &Parts, name: &str, what: &str) -> Result<(), GateError> {
    if let Some(limiter) = parts.extensions.get::<Arc<crate::limits::RateLimiter>>() {
        if let Err(retry_after_s) = limiter.check(name) {
            return Err(GateError::TooMany {
                message: format!(
                    "{what} `{name}` is over its rate limit; try again in {retry_after_s} s"
                ),
                retry_after_s,
            });
        }
    }
    Ok(())
}

/// JSON bodies with errors that name the field, as 400s (axum's own
/// rejection would be a 422 or 415 in plain text).
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    GateError::TooLarge(format!("the body is larger than {BODY_LIMIT} bytes"))
                } else {
                    GateError::invalid("body", e.body_text())
                }
            })?;
        parse_json(&bytes).map(Body)
    }
}

/// The body of `POST /v1/writes` as the gate reads it before a connector
/// or the store is asked: JSON (as [`Body`] reads it), then a proposal
/// ([`crate::lifecycle::read_proposal`], which [`Gate::submit`] runs). For
/// the fuzz target `write_body`: the same two steps as the handler.
pub fn read_write_body(bytes: &[u8]) -> Result<recourse_core::Proposal, GateError> {
    let body: serde_json::Value = parse_json(bytes).map_err(|e| e.0)?;
    crate::lifecycle::read_proposal(body)
}

/// The body of `POST /v1/catalog` as the gate checks it against the
/// catalog it has (`current`) before storing anything: JSON, a catalog,
/// then [`catalog::check_upsert`]. For the fuzz target `catalog_body`.
pub fn read_catalog_body(
    bytes: &[u8],
    current: &recourse_core::Catalog,
) -> Result<recourse_core::Catalog, GateError> {
    let add: recourse_core::Catalog = parse_json(bytes).map_err(|e| e.0)?;
    catalog::check_upsert(add, current)
}

pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // An unknown key that is the empty string (`{"": 1}`) has the empty
        // path: the field would be "", which names nothing (found by the
        // fuzz target `catalog_body`). `Scenario::parse` does the same.
        let field = if path == "." || path.is_empty() || inner.is_syntax() || inner.is_eof() {
            "body".to_string()
        } else {
            path
        };
        GateError::invalid(field, inner.to_string())
    })?;
    de.end()
        .map_err(|e| GateError::invalid("body", e.to_string()))?;
    Ok(v)
}
