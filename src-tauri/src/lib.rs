//! The review console's Tauri host. It owns no logic of the gate: every
//! command is a call on [`console::Console`], which wraps
//! `recourse_client::GateClient`; the token never reaches the webview.

pub mod commands;
pub mod console;
pub mod error;
pub mod notify;
pub mod sse;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use recourse_client::{GateEvent, Permission, Role, WriteAction};
use serde::{Deserialize, Serialize};
use tauri::Manager;
use tauri_specta::Event;

use crate::console::Console;
use crate::sse::{EventSink, LinkState};
use crate::store::Tokens;

/// A write (or the gate) changed state: the queue refreshes.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct GateChanged(pub GateEvent);

/// The live event stream came up or went down.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct LinkChanged(pub LinkState);

/// The commands and events the webview sees, in one place: the app and the
/// bindings test both build from it.
pub fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(tauri_specta::collect_commands![
            commands::auto_connect,
            commands::connect,
            commands::disconnect,
            commands::session,
            commands::link_state,
            commands::list_writes,
            commands::get_write,
            commands::write_effect,
            commands::approve,
            commands::reject,
            commands::rollback,
            commands::resolve,
            commands::freeze_state,
            commands::freeze,
            commands::resume,
            commands::mode,
            commands::set_mode,
            commands::rewind,
            commands::catalog,
            commands::catalog_plan,
            commands::catalog_replace,
            commands::resource,
            commands::report,
            commands::audit,
            commands::verify_audit,
        ])
        .events(tauri_specta::collect_events![GateChanged, LinkChanged])
        // Not in any command's signature, but the webview names them.
        .typ::<Permission>()
        .typ::<WriteAction>()
        // Generated from the gate's own matrix, so the console offers
        // exactly what the gate will accept.
        .constant("PERMISSIONS", permission_matrix())
}

/// The role -> permission matrix (`recourse_client::PERMISSIONS`) as data:
/// `PERMISSIONS[role]` lists what the role may do.
pub fn permission_matrix() -> BTreeMap<Role, Vec<Permission>> {
    Role::ALL
        .into_iter()
        .map(|r| (r, r.permissions().to_vec()))
        .collect()
}

/// The TypeScript the webview imports (`ui/src/bindings.ts`).
pub fn typescript_bindings() -> Result<String, String> {
    let ts = specta_typescript::Typescript::default()
        .bigint(specta_typescript::BigIntExportBehavior::Number)
        .header("// Generated from src-tauri by `UPDATE_BINDINGS=1 cargo test -p recourse-console --test bindings`. Do not edit.\n// @ts-nocheck: the generator emits helpers this app does not use.\n");
    specta_builder().export_str(ts).map_err(|e| e.to_string())
}

struct TauriSink {
    app: tauri::AppHandle,
    notices: Arc<std::sync::Mutex<notify::HeldNotices>>,
}

/// Shows a desktop notification. Where none can be shown (no notification
/// server, as under Xvfb) the failure is logged and the console goes on.
fn show_notification(app: &tauri::AppHandle, (title, body): (String, String)) {
    use tauri_plugin_notification::NotificationExt;
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        eprintln!("recourse-console: could not show a notification: {e}");
    }
}

impl TauriSink {
    fn notice(&self, event: &GateEvent) {
        let decided = match self.notices.lock() {
            Ok(mut n) => n.on_event(event, std::time::Instant::now()),
            Err(_) => return,
        };
        match decided {
            None => {}
            Some(notify::Notice::Held { write_id }) => {
                let app = self.app.clone();
                tauri::async_runtime::spawn(async move {
                    // The intent makes the bubble worth reading; do not wait long for it.
                    let intent = match app.try_state::<Console>() {
                        Some(console) => tokio::time::timeout(
                            std::time::Duration::from_secs(2),
                            console.get_write(&write_id),
                        )
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .map(|w| w.proposal.intent),
                        None => None,
                    };
                    show_notification(&app, notify::held_text(&write_id, intent.as_deref()));
                });
            }
            Some(notify::Notice::SummaryAfter(wait)) => {
                let app = self.app.clone();
                let notices = self.notices.clone();
                tauri::async_runtime::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let n = match notices.lock() {
                        Ok(mut n) => n.summary(std::time::Instant::now()),
                        Err(_) => 0,
                    };
                    if n > 0 {
                        show_notification(&app, notify::summary_text(n));
                    }
                });
            }
        }
    }
}

impl EventSink for TauriSink {
    fn gate_event(&self, event: GateEvent) {
        self.notice(&event);
        let _ = GateChanged(event).emit(&self.app);
    }

    fn link(&self, state: LinkState) {
        let _ = LinkChanged(state).emit(&self.app);
    }
}

pub fn run() -> Result<(), tauri::Error> {
    let builder = specta_builder();
    tauri::Builder::default()
        // Shown from the Rust side only: the window gets no notification permission.
        .plugin(tauri_plugin_notification::init())
        .invoke_handler(builder.invoke_handler())
        .setup(move |app| {
            builder.mount_events(app);
            let dir = app.path().app_config_dir().ok();
            let sink: Arc<dyn EventSink> = Arc::new(TauriSink {
                app: app.handle().clone(),
                notices: Arc::default(),
            });
            app.manage(Console::new(Tokens::new(dir), Some(sink)));
            Ok(())
        })
        .run(tauri::generate_context!("../tauri.conf.json"))
}
