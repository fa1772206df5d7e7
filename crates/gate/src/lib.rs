//! The gate: the only path from an agent to a target system. It decides
//! each write with the core engine, captures before it runs, holds what a
//! person must decide, and keeps a hash-chained audit trail.

pub mod api;
pub mod audit;
pub mod auth;
pub mod checkpoint;
pub mod crash_points;
pub mod error;
pub mod feed;
pub mod key_file;
pub mod lifecycle;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod oidc;
pub mod openapi;
pub mod placement;
pub mod scope;
mod server;
pub mod store;
#[cfg(test)]
mod testing;
pub mod tokens;

use std::future::Future;
use std::sync::Arc;

use recourse_client::AuditVerification;

pub use error::GateError;
pub use lifecycle::{Clock, FixedClock, Gate, GateConfig, SystemClock, DEFAULT_QUOTA_BYTES};
pub use store::{MemoryStore, PostgresStore, SqliteStore, Store};
pub use tokens::{create_scoped_token, create_token, list_tokens, revoke_token};

use crate::store::StoreError;

/// Locks the data directory for one gate process (`gate.lock`, an OS file
/// lock released when the process ends, however it ends). The embedded store
/// belongs to one gate: recovery at start reads every claim it finds as
/// stale, which is only true when no other gate runs on the same store.
/// Keep the returned file for as long as the gate serves.
pub fn lock_data_dir(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    let path = dir.join("gate.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::other(format!(
            "another gate serves the data directory {} (it holds {}); one gate per embedded store",
            dir.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// This gate's stable id: read from `gate.id` in the data directory,
/// generated there once (`gate_` and 16 hex digits) when missing. It names
/// the vault a write's local capture is in, so it must outlive restarts;
/// `recourse serve --gate-id` gives one instead.
pub fn gate_id_in(dir: &std::path::Path) -> std::io::Result<String> {
    use std::io::Write as _;
    let path = dir.join("gate.id");
    match std::fs::read_to_string(&path) {
        Ok(id) => {
            let id = id.trim().to_string();
            check_gate_id(&id)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = [0u8; 8];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
            let id = format!("gate_{}", hex::encode(b));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            f.write_all(format!("{id}\n").as_bytes())?;
            f.sync_all()?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// A gate id: 1 to 64 letters, digits, `.`, `_` or `-`.
pub fn check_gate_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "gate id `{}` must be 1 to 64 letters, digits, `.`, `_` or `-`",
            id.chars().take(80).collect::<String>()
        ))
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
    serve_with_limits(
        listener,
        gate,
        extra,
        limits::ServeLimits::default(),
        shutdown,
    )
    .await
}

/// [`serve_with`] under `limits`: open connections, header-read time and
/// each token's requests per second.
pub async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    gate: Arc<Gate>,
    extra: axum::Router,
    limits: limits::ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_sign_in(listener, gate, extra, limits, None, shutdown).await
}

/// [`serve_with_limits`], accepting ID tokens from the identity provider
/// `oidc` checks beside bearer tokens, when given.
pub async fn serve_with_sign_in(
    listener: tokio::net::TcpListener,
    gate: Arc<Gate>,
    extra: axum::Router,
    limits: limits::ServeLimits,
    oidc: Option<Arc<oidc::OidcVerifier>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Before any request: settle what a crash left in flight. A write that
    // cannot be settled now (its target unreachable, its connector not
    // configured) stays in flight, visibly, and the sweep retries it.
    match gate.recover_at_start().await {
        Ok(settled) => {
            for (id, status) in settled {
                tracing::warn!(write = %id, status = status.as_str(), "settled after restart");
            }
        }
        Err(e) => tracing::error!(error = %e, "recovery at start; the sweep retries"),
    }
    let sweeper = {
        let gate = gate.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(gate.config().sweep_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = gate.sweep().await {
                    tracing::error!(error = %e, "sweeping in-flight and expired writes");
                }
            }
        })
    };
    let limiter = Arc::new(limits::RateLimiter::new(limits.rate_per_s, limits.burst));
    let mut app = api::with_rate_limit(api::router(gate).merge(extra), limiter);
    if let Some(verifier) = oidc {
        // The keys now, so the first person to sign in does not wait for
        // them; a provider that is down now is asked again on first use.
        if let Err(e) = verifier.prefetch().await {
            tracing::warn!(error = %e, "the identity provider's keys; asked again on first sign-in");
        }
        app = api::with_oidc(app, verifier);
    }
    let result = server::serve_limited(listener, app, limits, shutdown).await;
    sweeper.abort();
    result
}
