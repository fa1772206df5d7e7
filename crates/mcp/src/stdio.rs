//! `recourse mcp`: an MCP server on stdin/stdout acting as the agent whose
//! token it was given, over the gate's HTTP API.

use std::sync::Arc;

use recourse_client::Role;
use rmcp::ServiceExt;

use crate::backend::HttpBackend;
use crate::server::McpServer;

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("{message}")]
    Gate { gate: String, message: String },
    #[error("mcp: {0}")]
    Mcp(String),
}

/// Runs until the client closes stdin. Checks the token first, so a wrong
/// one fails at start with a clear message rather than on every call.
pub async fn serve_stdio(gate_url: &str, token: &str) -> Result<(), StdioError> {
    let backend = HttpBackend::new(gate_url, token);
    let gate_err = |message: String| StdioError::Gate {
        gate: gate_url.to_string(),
        message,
    };
    let me = backend
        .client()
        .whoami()
        .await
        .map_err(|e| gate_err(e.to_string()))?;
    if me.role != Role::Agent && me.role != Role::Admin {
        // Every write tool would be refused; say so once, up front.
        eprintln!(
            "recourse mcp: `{}` is a {}, not an agent: the gate will refuse its writes",
            me.name,
            me.role.as_str()
        );
    }
    let server = McpServer::over(Arc::new(backend)).await.map_err(|e| {
        gate_err(format!(
            "asking the gate at {gate_url} for its connectors: {}",
            e.message
        ))
    })?;
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
