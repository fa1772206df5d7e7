//! Token management, for the CLI (`recourse token …` on the data
//! directory) and the admin API alike: create (optionally scoped), list
//! (never a hash), revoke. Each change is audited in the same transaction.

use chrono::{DateTime, Utc};
use recourse_client::{Role, TokenInfo, TokenScope};
use serde_json::json;

use crate::audit::AuditDraft;
use crate::auth;
use crate::error::GateError;
use crate::store::{Store, StoreError, TokenRow};

/// Creates a token for `name` with `role` and no scope; returns the token,
/// shown once.
pub async fn create_token(
    store: &dyn Store,
    actor: &str,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
) -> Result<String, GateError> {
    create_scoped_token(store, actor, name, role, expires_at, None).await
}

/// [`create_token`] whose writes may reach only `scope` (checked and
/// normalized by [`crate::scope::normalize`]); `None`: everything.
pub async fn create_scoped_token(
    store: &dyn Store,
    actor: &str,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    scope: Option<TokenScope>,
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
    let scope = scope
        .map(|s| crate::scope::normalize(role, s))
        .transpose()?;
    let token = auth::new_token();
    let row = TokenRow {
        name: name.to_string(),
        role,
        hash: auth::hash_token(&token),
        expires_at,
        scope: scope.clone(),
        revoked_at: None,
    };
    let draft = AuditDraft::new(
        actor,
        "token.created",
        None,
        json!({"name": name, "role": role, "expires_at": expires_at, "scope": scope}),
    );
    match store.create_token(&row, draft).await {
        Ok(()) => Ok(token),
        Err(StoreError::DuplicateToken(n)) => Err(GateError::conflict(
            recourse_client::ErrorCode::Duplicate,
            format!("a token named `{n}` exists already (revoked tokens keep their names)"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Every token, by name: its role, scope, expiry and revocation, never its
/// hash.
pub async fn list_tokens(store: &dyn Store) -> Result<Vec<TokenInfo>, GateError> {
    Ok(store
        .tokens()
        .await?
        .into_iter()
        .map(|t| TokenInfo {
            name: t.name,
            role: t.role,
            scope: t.scope,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        })
        .collect())
}

/// Revokes the token `name`: from now on it is refused (401) on every
/// request, and an open event stream of it ends. 404 when there is no such
/// token, 409 when it was revoked already.
pub async fn revoke_token(store: &dyn Store, actor: &str, name: &str) -> Result<(), GateError> {
    let draft = AuditDraft::new(actor, "token.revoked", None, json!({"name": name}));
    if store.revoke_token(name, Utc::now(), draft).await? {
        return Ok(());
    }
    match store.tokens().await?.into_iter().find(|t| t.name == name) {
        Some(_) => Err(GateError::conflict(
            recourse_client::ErrorCode::Revoked,
            format!("the token `{name}` was revoked already"),
        )),
        None => Err(GateError::NotFound(format!("no token named `{name}`"))),
    }
}
