//! `recourse mcp`: an MCP server on stdin/stdout acting as the agent whose
//! token it was given, over the gate's HTTP API.

use std::sync::Arc;

use recourse_client::{ClientError, Role};
use rmcp::ServiceExt;

use crate::backend::HttpBackend;
use crate::server::McpServer;

/// Why `recourse mcp` cannot start. The host shows it (stderr) to the
/// person who configured the server, so each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error(
        "no token: set RECOURSE_TOKEN (or pass --token) to an agent token from `recourse token create`"
    )]
    NoToken,
    #[error(
        "the gate at {gate} could not be reached ({message}): is `recourse serve` running there? \
         Set RECOURSE_GATE (or --gate) to its URL"
    )]
    Unreachable { gate: String, message: String },
    #[error(
        "the gate at {gate} does not know this token (RECOURSE_TOKEN): create one with \
         `recourse token create --name NAME --role agent` and set RECOURSE_TOKEN to it"
    )]
    UnknownToken { gate: String },
    #[error("the gate at {gate}: {message}")]
    Gate { gate: String, message: String },
    #[error("mcp: {0}")]
    Mcp(String),
}

/// An error and every cause under it, on one line (`connection refused`
/// sits a few sources down a request error).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Runs until the client closes stdin. Checks the token first, so a wrong
/// one fails at start with a clear message rather than on every call.
pub async fn serve_stdio(gate_url: &str, token: &str) -> Result<(), StdioError> {
    if token.trim().is_empty() {
        return Err(StdioError::NoToken);
    }
    let backend = HttpBackend::new(gate_url, token);
    let gate = gate_url.to_string();
    let gate_err = |message: String| StdioError::Gate {
        gate: gate.clone(),
        message,
    };
    let me = backend.client().whoami().await.map_err(|e| match &e {
        ClientError::Unreachable { source, .. } => StdioError::Unreachable {
            gate: gate.clone(),
            message: chain(source),
        },
        ClientError::Api { status: 401, .. } => StdioError::UnknownToken { gate: gate.clone() },
        _ => gate_err(e.to_string()),
    })?;
    if me.role != Role::Agent && me.role != Role::Admin {
        // Every write tool would be refused; say so once, up front.
        eprintln!(
            "recourse mcp: `{}` is a {}, not an agent: the gate will refuse its writes",
            me.name,
            me.role.as_str()
        );
    }
    let server = McpServer::over(Arc::new(backend))
        .await
        .map_err(|e| gate_err(format!("asking for its connectors: {}", e.message)))?;
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| StdioError::Mcp(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| StdioError::Mcp(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn says_why_it_cannot_start() {
        let e = serve_stdio("http://127.0.0.1:9", "").await.unwrap_err();
        assert!(matches!(e, StdioError::NoToken));
        assert!(e.to_string().contains("RECOURSE_TOKEN"), "{e}");
        // Nothing listens there: the connection is refused.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}");
        let e = serve_stdio(&url, "rk_x").await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, StdioError::Unreachable { .. }), "{text}");
        assert!(text.contains(&url) && text.contains("refused"), "{text}");
        assert!(text.contains("RECOURSE_GATE"), "{text}");
        // A gate that does not know the token answers 401.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/v1/whoami",
            axum::routing::get(|| async {
                (
                    axum::http::StatusCode::UNAUTHORIZED,
                    axum::Json(serde_json::json!({"error": {"code": "unauthorized", "message": "unknown token"}})),
                )
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let e = serve_stdio(&url, "rk_unknown").await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, StdioError::UnknownToken { .. }), "{text}");
        assert!(
            text.contains("does not know this token (RECOURSE_TOKEN)"),
            "{text}"
        );
    }
}
