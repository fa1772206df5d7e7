//! What the MCP tools need of the gate, behind one small trait: over HTTP
//! with the typed client (for `recourse mcp` on stdio), or in-process over
//! the gate itself with the caller its bearer token named (for `/mcp` inside
//! `recourse serve`).

use std::sync::Arc;

use async_trait::async_trait;
use recourse_client::{ClientError, Explained, GateClient, WriteRecord};
use recourse_gate::auth::Caller;
use recourse_gate::{Gate, GateError};
use serde_json::Value;

/// An error from the gate, in the shape of its HTTP error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    /// `invalid`, `forbidden`, `not_found`, `conflict` codes, …, or
    /// `unreachable` when the gate could not be asked.
    pub code: String,
    pub message: String,
    /// For `invalid`: the field of the proposal that is wrong.
    pub field: Option<String>,
}

impl BackendError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            field: None,
        }
    }
}

impl From<ClientError> for BackendError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api { body, .. } => BackendError {
                code: body.error.code.to_string(),
                message: body.error.message,
                field: body.error.field,
            },
            ClientError::Unreachable { .. } => BackendError::new("unreachable", e.to_string()),
            ClientError::Protocol(m) => BackendError::new("protocol", m),
        }
    }
}

impl From<GateError> for BackendError {
    /// The same code, message and field the HTTP API gives (one mapping,
    /// [`GateError::code`] and [`GateError::public_message`]).
    fn from(e: GateError) -> Self {
        BackendError {
            code: e.code().to_string(),
            message: e.public_message(),
            field: e.field().map(str::to_string),
        }
    }
}

/// The gate as the MCP tools see it. Every call acts as one agent.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The connectors the gate has (`fs`, `sql`, `http`): they decide which
    /// tools the session lists.
    async fn connectors(&self) -> Result<Vec<String>, BackendError>;
    /// `POST /v1/writes`: decide, run a `proceed`, hold a `hold`.
    async fn submit(&self, proposal: Value) -> Result<WriteRecord, BackendError>;
    /// `GET /v1/writes/{id}`.
    async fn get(&self, id: &str) -> Result<WriteRecord, BackendError>;
    /// `POST /v1/explain`: the decision, with nothing stored or run.
    async fn explain(&self, proposal: Value) -> Result<Explained, BackendError>;
}

/// Over the gate's HTTP API, as the token's agent.
pub struct HttpBackend {
    client: GateClient,
    http: reqwest::Client,
}

impl HttpBackend {
    pub fn new(gate_url: &str, token: &str) -> Self {
        Self {
            client: GateClient::new(gate_url, token),
            // See `GateClient::new`: idle connections are dropped before the
            // gate's header timeout closes them.
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(4))
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn client(&self) -> &GateClient {
        &self.client
    }
}

#[derive(serde::Deserialize)]
struct Health {
    #[serde(default)]
    connectors: Vec<String>,
}

#[async_trait]
impl Backend for HttpBackend {
    async fn connectors(&self) -> Result<Vec<String>, BackendError> {
        let url = format!("{}/healthz", self.client.base());
        let resp = self.http.get(&url).send().await.map_err(|e| {
            BackendError::new(
                "unreachable",
                format!("the gate at {url} could not be reached: {e}"),
            )
        })?;
        let health: Health = resp.json().await.map_err(|e| {
            BackendError::new("protocol", format!("unexpected answer from {url}: {e}"))
        })?;
        Ok(health.connectors)
    }

    async fn submit(&self, proposal: Value) -> Result<WriteRecord, BackendError> {
        Ok(self.client.submit_json(&proposal).await?)
    }

    async fn get(&self, id: &str) -> Result<WriteRecord, BackendError> {
        Ok(self.client.write(id).await?)
    }

    async fn explain(&self, proposal: Value) -> Result<Explained, BackendError> {
        Ok(self.client.explain(&proposal).await?)
    }
}

/// In-process, over the gate itself, as `caller`.
pub struct GateBackend {
    gate: Arc<Gate>,
    caller: Caller,
}

impl GateBackend {
    pub fn new(gate: Arc<Gate>, caller: Caller) -> Self {
        Self { gate, caller }
    }
}

#[async_trait]
impl Backend for GateBackend {
    async fn connectors(&self) -> Result<Vec<String>, BackendError> {
        Ok(self
            .gate
            .connector_names()
            .into_iter()
            .map(str::to_string)
            .collect())
    }

    async fn submit(&self, proposal: Value) -> Result<WriteRecord, BackendError> {
        Ok(self.gate.submit(&self.caller, proposal).await?.0)
    }

    async fn get(&self, id: &str) -> Result<WriteRecord, BackendError> {
        Ok(self.gate.get(&self.caller, id).await?)
    }

    async fn explain(&self, proposal: Value) -> Result<Explained, BackendError> {
        Ok(self.gate.explain(&self.caller, proposal).await?)
    }
}
