//! Arrangement A of `shared/notes/tauri.md`: the config lives at the
//! repository root, and each app command gets its own permission so the
//! capability file can name exactly the ones the window may call.

const COMMANDS: &[&str] = &[
    "auto_connect",
    "connect",
    "disconnect",
    "session",
    "link_state",
    "list_writes",
    "get_write",
    "write_effect",
    "approve",
    "reject",
    "rollback",
    "resolve",
    "freeze_state",
    "freeze",
    "resume",
    "mode",
    "set_mode",
    "rewind",
    "catalog",
    "catalog_plan",
    "catalog_replace",
    "resource",
    "report",
    "audit",
    "verify_audit",
];

fn main() {
    let attrs = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        println!("cargo::error=tauri-build failed: {e:#}");
    }
}
