//! The one error type every command returns; the webview gets it as a
//! tagged union (`kind`), never as a bare string.

use recourse_client::ClientError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConsoleError {
    /// No gate is connected yet: nothing was sent.
    #[error("not connected to a gate")]
    NotConnected,
    /// The gate could not be reached: nothing was done.
    #[error("the gate at `{url}` could not be reached: {message}")]
    Unreachable { url: String, message: String },
    /// The gate answered with an error (a refusal, a conflict, a bad request).
    #[error("the gate said {status} {code}: {message}")]
    Api {
        status: u16,
        code: recourse_client::ErrorCode,
        message: String,
        field: Option<String>,
    },
    /// The gate answered something this console does not understand.
    #[error("unexpected answer from the gate: {message}")]
    Protocol { message: String },
    /// A request the console refused before sending it.
    #[error("`{field}`: {message}")]
    Invalid { field: String, message: String },
    /// The token could not be saved or read.
    #[error("token store: {message}")]
    TokenStore { message: String },
}

impl From<ClientError> for ConsoleError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Unreachable { url, source } => ConsoleError::Unreachable {
                url,
                message: source_chain(&source),
            },
            ClientError::Api { status, body } => ConsoleError::Api {
                status,
                code: body.error.code,
                message: body.error.message,
                field: body.error.field,
            },
            ClientError::Protocol(message) => ConsoleError::Protocol { message },
        }
    }
}

/// reqwest's top-level message ("error sending request") hides the cause
/// ("connection refused"): join the chain.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = s.source();
    }
    out
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;
