//! The gate: the only path from an agent to a target system. It decides
//! each write with the core engine, captures before it runs, holds what a
//! person must decide, and keeps a hash-chained audit trail.

pub mod api;
pub mod audit;
pub mod auth;
pub mod error;
pub mod lifecycle;
pub mod metrics;
pub mod openapi;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use recourse_client::{AuditVerification, Role};
use serde_json::json;

pub use error::GateError;
pub use lifecycle::{Gate, GateConfig};
pub use store::{SqliteStore, Store};

use crate::audit::AuditDraft;
use crate::store::{StoreError, TokenRow};

/// Creates a token for `name` with `role`; returns the token, shown once.
pub async fn create_token(
    store: &dyn Store,
    actor: &str,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
) -> Result<String, GateError> {
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(GateError::invalid(
            "name",
            "1 to 100 characters: letters, digits, `-`, `_`, `.`, `@`",
        ));
    }
    let token = auth::new_token();
    let row = TokenRow {
        name: name.to_string(),
        role,
        hash: auth::hash_token(&token),
        expires_at,
    };
    let draft = AuditDraft::new(
        actor,
        "token.created",
        None,
        json!({"name": name, "role": role, "expires_at": expires_at}),
    );
    match store.create_token(&row, draft).await {
        Ok(()) => Ok(token),
        Err(StoreError::DuplicateToken(n)) => Err(GateError::conflict(
            "duplicate",
            format!("a token named `{n}` exists already"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Reads the whole trail from the store and checks the chain.
pub async fn verify_store_audit(store: &dyn Store) -> Result<AuditVerification, StoreError> {
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let page = store.audit(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        entries.extend(page);
    }
    Ok(audit::verify(&entries))
}

/// Serves the API on `listener` until `shutdown` resolves. Settles writes a
/// crash left mid-way before it accepts requests, and expires held writes
/// in the background.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gate: Arc<Gate>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, gate, axum::Router::new(), shutdown).await
}

/// [`serve`], with `extra` routes merged beside the API (the MCP endpoint,
/// which depends on this crate and so is built by the caller).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    gate: Arc<Gate>,
    extra: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match gate.reconcile().await {
        Ok(settled) => {
            for (id, status) in settled {
                tracing::warn!(write = %id, status = status.as_str(), "settled after restart");
            }
        }
        Err(e) => {
            return Err(std::io::Error::other(format!(
                "reconcile after restart: {e}"
            )))
        }
    }
    let sweeper = {
        let gate = gate.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
            loop {
                tick.tick().await;
                if let Err(e) = gate.expire_due().await {
                    tracing::error!(error = %e, "expiring held writes");
                }
            }
        })
    };
    let app = api::router(gate).merge(extra);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    result
}
