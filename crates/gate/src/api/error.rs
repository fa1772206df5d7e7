//! One error shape for every endpoint: `{"error": {"code", "message", "field"?}}`,
//! from [`GateError`]'s own status and code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use recourse_client::{ErrorBody, ErrorDetail};

use crate::error::GateError;

pub struct ApiError(pub GateError);

impl From<GateError> for ApiError {
    fn from(e: GateError) -> Self {
        ApiError(e)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.0.code(),
                message: self.0.public_message(),
                field: self.0.field().map(str::to_string),
            },
        };
        let retry_after = self.0.retry_after_s().or_else(|| {
            (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS)
                .then_some(1)
        });
        let mut resp = (status, Json(body)).into_response();
        if let Some(s) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(s),
            );
        }
        resp
    }
}
