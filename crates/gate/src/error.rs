//! The gate's errors, each with the HTTP status it maps to.

use recourse_connector::ConnectorError;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// 400: the request is malformed; `field` names what is wrong.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// 401: no token, an unknown one, or an expired one.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the caller's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 409: the write is not in a state that allows this.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413
    #[error("{0}")]
    TooLarge(String),
    /// 502: a target system failed.
    #[error("{0}")]
    Target(String),
    /// 500: logged, never shown in detail.
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
}

impl GateError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        GateError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        GateError::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl From<recourse_core::InputError> for GateError {
    fn from(e: recourse_core::InputError) -> Self {
        GateError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<ConnectorError> for GateError {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::Invalid { field, message } => GateError::Invalid { field, message },
            ConnectorError::Refuse { message, .. } => GateError::Forbidden(message),
            ConnectorError::Io(m) => GateError::Target(m),
            ConnectorError::Drift(m) => GateError::conflict("drift", m),
        }
    }
}
