//! One error shape for every endpoint: `{"error": {"code", "message", "field"?}}`.

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
        ApiError(GateError::Store(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = match &self.0 {
            GateError::Invalid { field, .. } => {
                (StatusCode::BAD_REQUEST, "invalid", Some(field.clone()))
            }
            GateError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            GateError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", None),
            GateError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            GateError::Conflict { code, .. } => (StatusCode::CONFLICT, *code, None),
            GateError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", None),
            GateError::Target(_) => (StatusCode::BAD_GATEWAY, "target", None),
            GateError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        };
        let message = match &self.0 {
            GateError::Invalid { message, .. } => message.clone(),
            GateError::Store(e) => {
                tracing::error!(error = %e, "store error");
                "internal error; the gate logged it".to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
                field,
            },
        };
        (status, Json(body)).into_response()
    }
}
