//! The Tauri commands: one line each over [`Console`]. Their signatures are
//! what `ui/src/bindings.ts` is generated from.

use recourse_client::{
    AuditEntry, AuditVerification, CatalogPlan, CatalogReplaced, CatalogReplacement, FreezeState,
    GateMode, ModeState, ResourceView, RewindReport, RewindRequest, WriteRecord, WriteStatus,
    WriteSummary,
};
use recourse_core::Catalog;
use tauri::State;

use crate::console::{Connected, Console};
use crate::error::ConsoleResult;
use crate::sse::LinkState;

/// Connects from `RECOURSE_GATE_URL`/`RECOURSE_TOKEN` or the saved gate;
/// `null` when there is neither.
#[tauri::command]
#[specta::specta]
pub async fn auto_connect(console: State<'_, Console>) -> ConsoleResult<Option<Connected>> {
    console.auto_connect().await
}

/// Checks the token against the gate; `remember` saves it (keyring, else a
/// private file).
#[tauri::command]
#[specta::specta]
pub async fn connect(
    console: State<'_, Console>,
    url: String,
    token: String,
    remember: bool,
) -> ConsoleResult<Connected> {
    console.connect(&url, &token, remember).await
}

#[tauri::command]
#[specta::specta]
pub async fn disconnect(console: State<'_, Console>, forget: bool) -> ConsoleResult<()> {
    console.disconnect(forget).await;
    Ok(())
}

#[tauri::command]
#[specta::specta]
pub async fn session(console: State<'_, Console>) -> ConsoleResult<Option<Connected>> {
    Ok(console.session().await)
}

/// Whether live updates flow (the last `LinkChanged`, for late listeners).
#[tauri::command]
#[specta::specta]
pub async fn link_state(console: State<'_, Console>) -> ConsoleResult<Option<LinkState>> {
    Ok(console.link_state())
}

#[tauri::command]
#[specta::specta]
pub async fn list_writes(
    console: State<'_, Console>,
    status: Option<WriteStatus>,
) -> ConsoleResult<Vec<WriteSummary>> {
    console.list_writes(status).await
}

#[tauri::command]
#[specta::specta]
pub async fn get_write(console: State<'_, Console>, id: String) -> ConsoleResult<WriteRecord> {
    console.get_write(&id).await
}

#[tauri::command]
#[specta::specta]
pub async fn approve(
    console: State<'_, Console>,
    id: String,
    comment: Option<String>,
) -> ConsoleResult<WriteRecord> {
    console.approve(&id, comment).await
}

#[tauri::command]
#[specta::specta]
pub async fn reject(
    console: State<'_, Console>,
    id: String,
    reason: String,
) -> ConsoleResult<WriteRecord> {
    console.reject(&id, &reason).await
}

#[tauri::command]
#[specta::specta]
pub async fn rollback(
    console: State<'_, Console>,
    id: String,
    reason: String,
    force: bool,
) -> ConsoleResult<WriteRecord> {
    console.rollback(&id, &reason, force).await
}

/// Settles an `outcome_unknown` write (incident leads): `executed` says
/// whether it took effect; `reason` is what was checked.
#[tauri::command]
#[specta::specta]
pub async fn resolve(
    console: State<'_, Console>,
    id: String,
    executed: bool,
    reason: String,
) -> ConsoleResult<WriteRecord> {
    console.resolve(&id, executed, &reason).await
}

#[tauri::command]
#[specta::specta]
pub async fn freeze_state(console: State<'_, Console>) -> ConsoleResult<FreezeState> {
    console.freeze_state().await
}

#[tauri::command]
#[specta::specta]
pub async fn freeze(console: State<'_, Console>, reason: String) -> ConsoleResult<FreezeState> {
    console.freeze(&reason).await
}

#[tauri::command]
#[specta::specta]
pub async fn resume(console: State<'_, Console>) -> ConsoleResult<FreezeState> {
    console.resume().await
}

/// Enforce or observe, and who switched it when and why.
#[tauri::command]
#[specta::specta]
pub async fn mode(console: State<'_, Console>) -> ConsoleResult<ModeState> {
    console.mode().await
}

/// Admins only; `reason` is required.
#[tauri::command]
#[specta::specta]
pub async fn set_mode(
    console: State<'_, Console>,
    mode: GateMode,
    reason: String,
) -> ConsoleResult<ModeState> {
    console.set_mode(mode, &reason).await
}

/// `request.preview` lists what would be undone without undoing it.
#[tauri::command]
#[specta::specta]
pub async fn rewind(
    console: State<'_, Console>,
    request: RewindRequest,
) -> ConsoleResult<RewindReport> {
    console.rewind(request).await
}

/// What a held or approved write will change, read from its target now.
#[tauri::command]
#[specta::specta]
pub async fn write_effect(
    console: State<'_, Console>,
    id: String,
) -> ConsoleResult<recourse_client::Effect> {
    console.effect(&id).await
}

#[tauri::command]
#[specta::specta]
pub async fn catalog(console: State<'_, Console>) -> ConsoleResult<Catalog> {
    console.catalog().await
}

/// What `PUT /v1/catalog` with `replacement` would change, and the held and
/// recent writes it would decide differently. Stores nothing.
#[tauri::command]
#[specta::specta]
pub async fn catalog_plan(
    console: State<'_, Console>,
    replacement: CatalogReplacement,
) -> ConsoleResult<CatalogPlan> {
    console.catalog_plan(replacement).await
}

/// Makes the catalog exactly `replacement.catalog`; `reason` is required,
/// `expect_version` refuses with 409 `catalog_moved` when it moved.
#[tauri::command]
#[specta::specta]
pub async fn catalog_replace(
    console: State<'_, Console>,
    replacement: CatalogReplacement,
) -> ConsoleResult<CatalogReplaced> {
    console.catalog_replace(replacement).await
}

/// The Monday audit: rollback paths, their context, who bears the cost.
#[tauri::command]
#[specta::specta]
pub async fn report(console: State<'_, Console>) -> ConsoleResult<recourse_report::Report> {
    console.report().await
}

#[tauri::command]
#[specta::specta]
pub async fn resource(console: State<'_, Console>, id: String) -> ConsoleResult<ResourceView> {
    console.resource(&id).await
}

/// The audit trail newest first: the latest page, or the page before
/// `before` (the smallest `seq` shown so far). `limit` defaults to 500.
#[tauri::command]
#[specta::specta]
pub async fn audit(
    console: State<'_, Console>,
    before: Option<i64>,
    limit: Option<u32>,
) -> ConsoleResult<Vec<AuditEntry>> {
    console.audit(before, limit).await
}

#[tauri::command]
#[specta::specta]
pub async fn verify_audit(console: State<'_, Console>) -> ConsoleResult<AuditVerification> {
    console.verify_audit().await
}
