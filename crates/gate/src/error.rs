//! The gate's errors: one enum, each variant with its HTTP status and its
//! code, used by the HTTP API and by MCP alike; and the one classification
//! of connector errors the lifecycle acts on.

pub use recourse_client::ErrorCode;
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
    /// 403: the write reaches something outside its token's scope; the
    /// message names what, and what the token may reach.
    #[error("{0}")]
    OutOfScope(String),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 409: the write is not in a state that allows this.
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// 413
    #[error("{0}")]
    TooLarge(String),
    /// 422: a high-stakes approval (a third party pays, or something
    /// external is reached) without a written reason; `field` names where
    /// the reason goes. Nothing was recorded.
    #[error("{field}: {message}")]
    ReasonRequired { field: String, message: String },
    /// 429: over a limit (requests per second for the token); answered
    /// with `Retry-After: retry_after_s`.
    #[error("{message}")]
    TooMany { message: String, retry_after_s: u64 },
    /// 429: the token's pending writes hold as many stored bytes as its
    /// quota allows; room frees as they are decided, run or expire, so
    /// waiting helps (`Retry-After`).
    #[error("{message}")]
    OverQuota { message: String, retry_after_s: u64 },
    /// 502: a target system failed.
    #[error("{0}")]
    Target(String),
    /// 503: the store cannot record now (busy, full, read-only, replaced,
    /// unreachable, too slow: [`crate::store::StoreFault`], named in the
    /// message). A change the gate could not record was not made: no write
    /// runs, and no refusal or approval counts, without its audit entry.
    #[error("the gate's store is unavailable: {}. What it could not record was not done; try again", .0.fault().map_or("it did not answer", |f| f.cause()))]
    Unavailable(StoreError),
    /// 500: logged, never shown in detail.
    #[error("internal error: {0}")]
    Store(StoreError),
}

impl From<StoreError> for GateError {
    fn from(e: StoreError) -> Self {
        // Any fault of the store is a 503 naming its cause, not a 500: a
        // full disk or a read-only file is the operator's to fix, and the
        // caller's to try again after.
        if e.is_transient() {
            GateError::Unavailable(e)
        } else {
            GateError::Store(e)
        }
    }
}

impl GateError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        GateError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        GateError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status: the code's own (`ErrorCode::status`).
    pub fn status(&self) -> u16 {
        self.code().status()
    }

    /// The machine-readable code in `{"error": {"code"}}`.
    pub fn code(&self) -> ErrorCode {
        match self {
            GateError::Invalid { .. } => ErrorCode::Invalid,
            GateError::Unauthorized(_) => ErrorCode::Unauthorized,
            GateError::Forbidden(_) => ErrorCode::Forbidden,
            GateError::OutOfScope(_) => ErrorCode::OutOfScope,
            GateError::NotFound(_) => ErrorCode::NotFound,
            GateError::Conflict { code, .. } => *code,
            GateError::TooLarge(_) => ErrorCode::TooLarge,
            GateError::ReasonRequired { .. } => ErrorCode::ReasonRequired,
            GateError::TooMany { .. } => ErrorCode::RateLimited,
            GateError::OverQuota { .. } => ErrorCode::OverQuota,
            GateError::Target(_) => ErrorCode::Target,
            GateError::Unavailable(_) => ErrorCode::Unavailable,
            GateError::Store(_) => ErrorCode::Internal,
        }
    }

    /// The message a caller sees: internal errors are logged here and
    /// shown as a plain sentence, never with their text.
    pub fn public_message(&self) -> String {
        // Section 10: a message may echo its input (a parse error names the
        // value it could not read).
        recourse_secrets::mask_text(&self.message_in_clear(), &[]).into_owned()
    }

    fn message_in_clear(&self) -> String {
        match self {
            GateError::Invalid { message, .. } | GateError::ReasonRequired { message, .. } => {
                message.clone()
            }
            GateError::Store(e) => {
                tracing::error!(error = %e, "store error");
                "internal error; the gate logged it".to_string()
            }
            GateError::Unavailable(e) => {
                tracing::warn!(error = %e, "store unavailable");
                self.to_string()
            }
            other => other.to_string(),
        }
    }

    /// Seconds a caller should wait before trying again (`Retry-After`),
    /// for a 429 or a 503.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            GateError::TooMany { retry_after_s, .. }
            | GateError::OverQuota { retry_after_s, .. } => Some(*retry_after_s),
            GateError::Unavailable(_) => Some(1),
            _ => None,
        }
    }

    /// The field a 400 or a 422 is about.
    pub fn field(&self) -> Option<&str> {
        match self {
            GateError::Invalid { field, .. } | GateError::ReasonRequired { field, .. } => {
                Some(field)
            }
            _ => None,
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
            ConnectorError::Drift(m) => GateError::conflict(ErrorCode::Drift, m),
            e @ (ConnectorError::Io(_)
            | ConnectorError::Unavailable(_)
            | ConnectorError::Resumable(_)
            | ConnectorError::Uncertain(_)
            | ConnectorError::Durability(_)) => GateError::Target(e.to_string()),
        }
    }
}

/// What the lifecycle does about a connector's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Nothing changed and trying later may work, or a step was cut short
    /// and calling again finishes it: retry with backoff.
    Transient,
    /// The step may or may not have taken effect: ask the connector's
    /// evidence, and a person when that cannot tell.
    Uncertain,
    /// An fsync failed: never retried; the gate stops running writes.
    Durability,
    /// It failed for good.
    Permanent,
}

/// The one place connector errors are classified.
pub fn classify(e: &ConnectorError) -> ErrorClass {
    match e {
        // Both are called again: nothing changed yet, or what changed is
        // finished by the next call.
        ConnectorError::Unavailable(_) | ConnectorError::Resumable(_) => ErrorClass::Transient,
        ConnectorError::Uncertain(_) => ErrorClass::Uncertain,
        ConnectorError::Durability(_) => ErrorClass::Durability,
        ConnectorError::Io(_)
        | ConnectorError::Invalid { .. }
        | ConnectorError::Refuse { .. }
        | ConnectorError::Drift(_) => ErrorClass::Permanent,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    /// docs/errors.md shows the table generated from `ErrorCode`; set
    /// UPDATE_DOCS=1 to rewrite it.
    #[test]
    fn the_documented_error_codes_are_the_codes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        let (begin, end) = (
            "<!-- BEGIN GENERATED: error codes -->\n",
            "<!-- END GENERATED: error codes -->",
        );
        let (Some(a), Some(b)) = (doc.find(begin), doc.find(end)) else {
            panic!("docs/errors.md lacks its generated block");
        };
        let a = a + begin.len();
        let want = recourse_client::error_codes_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, format!("{}{want}{}", &doc[..a], &doc[b..])).unwrap_or_default();
            return;
        }
        assert_eq!(
            &doc[a..b],
            want,
            "docs/errors.md is stale: UPDATE_DOCS=1 cargo nextest run -p recourse-gate -E 'test(documented)'"
        );
    }

    /// Every variant answers with its code's own status, and never with a
    /// client-side code.
    #[test]
    fn every_error_answers_with_its_codes_status() {
        let all = [
            GateError::invalid("f", "m"),
            GateError::Unauthorized("m".into()),
            GateError::Forbidden("m".into()),
            GateError::OutOfScope("m".into()),
            GateError::NotFound("m".into()),
            GateError::conflict(ErrorCode::Frozen, "m"),
            GateError::TooLarge("m".into()),
            GateError::ReasonRequired {
                field: "f".into(),
                message: "m".into(),
            },
            GateError::TooMany {
                message: "m".into(),
                retry_after_s: 1,
            },
            GateError::OverQuota {
                message: "m".into(),
                retry_after_s: 1,
            },
            GateError::Target("m".into()),
        ];
        let want = [400, 401, 403, 403, 404, 409, 413, 422, 429, 429, 502];
        for (e, status) in all.iter().zip(want) {
            assert_eq!(e.status(), status, "{e:?}");
            assert_ne!(e.code().status(), 0, "{e:?}");
        }
    }
    use crate::store::StoreFault;

    #[test]
    fn a_store_that_cannot_record_is_a_503_naming_the_cause() {
        for (fault, words) in [
            (StoreFault::Busy, "holds a lock"),
            (StoreFault::Timeout, "did not answer within"),
            (StoreFault::ReadOnly, "read-only"),
            (StoreFault::Full, "full"),
            (StoreFault::Io, "I/O error"),
            (StoreFault::Replaced, "deleted or replaced"),
            (StoreFault::Unreachable, "cannot be reached"),
        ] {
            let e = GateError::from(StoreError::Unavailable(fault, "detail".into()));
            assert_eq!(e.status(), 503, "{fault:?}");
            assert_eq!(e.code(), ErrorCode::Unavailable);
            assert_eq!(e.retry_after_s(), Some(1));
            let m = e.public_message();
            assert!(m.contains(words), "{fault:?}: {m}");
            assert!(m.contains("was not done"), "{m}");
            assert!(
                !m.contains("detail"),
                "the store's own text stays in the log: {m}"
            );
        }
        // A record that does not parse is not the store's fault: a 500.
        let e = GateError::from(StoreError::Corrupt("x".into()));
        assert_eq!(e.status(), 500);
    }
}
