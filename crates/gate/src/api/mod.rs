//! The HTTP API (section 7): one router per resource, merged here, with
//! authentication from the bearer token and one JSON error shape.

mod audit;
mod catalog;
mod error;
mod gate;
mod writes;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
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
    Router::new()
        .merge(writes::router())
        .merge(catalog::router())
        .merge(audit::router())
        .merge(gate::router())
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(gate)
}

/// `router` with each token's requests per second limited by `limiter`
/// (checked where the caller is known: [`Auth`]); over it, a 429 with
/// `Retry-After` and nothing done.
pub fn with_rate_limit(router: Router, limiter: Arc<crate::limits::RateLimiter>) -> Router {
    router.layer(axum::Extension(limiter))
}

/// The caller, from `Authorization: Bearer TOKEN`.
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
        if let Some(limiter) = parts.extensions.get::<Arc<crate::limits::RateLimiter>>() {
            if let Err(retry_after_s) = limiter.check(&row.name) {
                return Err(GateError::TooMany {
                    message: format!(
                        "the token `{}` is over its rate limit; try again in {retry_after_s} s",
                        row.name
                    ),
                    retry_after_s,
                }
                .into());
            }
        }
        Ok(Auth(Caller {
            name: row.name,
            role: row.role,
            expires_at: row.expires_at,
            scope: row.scope,
        }))
    }
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

pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." || inner.is_syntax() || inner.is_eof() {
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
