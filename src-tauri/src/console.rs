//! The console's state and every operation the commands expose, with no
//! Tauri in sight so it can be tested against a fake gate.

use std::sync::Arc;

use recourse_client::{
    AuditEntry, AuditVerification, CatalogPlan, CatalogReplaced, CatalogReplacement, FreezeState,
    GateClient, GateMode, ModeState, ResourceView, RewindReport, RewindRequest, WhoAmI,
    WriteRecord, WriteStatus, WriteSummary,
};
use recourse_core::Catalog;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::error::{ConsoleError, ConsoleResult};
use crate::sse::{self, EventSink, LinkState};
use crate::store::{TokenStore, Tokens};

/// The session as the webview may see it: never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct Connected {
    pub url: String,
    pub who: WhoAmI,
    pub store: TokenStore,
    /// Why the token is not where one would expect (keyring unavailable).
    pub store_note: Option<String>,
}

struct Session {
    client: GateClient,
    info: Connected,
    events: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(h) = self.events.take() {
            h.abort();
        }
    }
}

pub struct Console {
    session: RwLock<Option<Session>>,
    tokens: Tokens,
    sink: Option<Arc<dyn EventSink>>,
    /// The last state of the live stream, for a webview that subscribes
    /// after the first event went out.
    link: Arc<std::sync::Mutex<Option<LinkState>>>,
}

/// Keeps the last link state, then passes everything on.
struct Recording {
    inner: Arc<dyn EventSink>,
    link: Arc<std::sync::Mutex<Option<LinkState>>>,
}

impl EventSink for Recording {
    fn gate_event(&self, event: recourse_client::GateEvent) {
        self.inner.gate_event(event);
    }

    fn link(&self, state: LinkState) {
        if let Ok(mut l) = self.link.lock() {
            *l = Some(state.clone());
        }
        self.inner.link(state);
    }
}

/// Audit entries per page unless the webview asks otherwise.
pub const AUDIT_PAGE: u32 = 500;
/// The gate answers at most this many per page.
const AUDIT_PAGE_MAX: u32 = 10_000;

fn check_url(url: &str) -> ConsoleResult<String> {
    let url = url.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "http://".len()
    {
        return Err(ConsoleError::Invalid {
            field: "url".into(),
            message: "must start with http:// or https://".into(),
        });
    }
    Ok(url)
}

fn non_empty(field: &str, value: &str) -> ConsoleResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ConsoleError::Invalid {
            field: field.into(),
            message: "must not be empty".into(),
        });
    }
    Ok(v.to_string())
}

impl Console {
    pub fn new(tokens: Tokens, sink: Option<Arc<dyn EventSink>>) -> Self {
        let link = Arc::new(std::sync::Mutex::new(None));
        let sink = sink.map(|inner| {
            Arc::new(Recording {
                inner,
                link: link.clone(),
            }) as Arc<dyn EventSink>
        });
        Self {
            session: RwLock::new(None),
            tokens,
            sink,
            link,
        }
    }

    /// At start: `RECOURSE_GATE_URL` + `RECOURSE_TOKEN`, else what a
    /// previous run remembered, else nothing.
    pub async fn auto_connect(&self) -> ConsoleResult<Option<Connected>> {
        if let Some(info) = self.session().await {
            return Ok(Some(info));
        }
        let env_url = std::env::var("RECOURSE_GATE_URL")
            .ok()
            .filter(|s| !s.trim().is_empty());
        let env_token = std::env::var("RECOURSE_TOKEN")
            .ok()
            .filter(|s| !s.trim().is_empty());
        if let (Some(url), Some(token)) = (env_url, env_token) {
            return self
                .open(&url, &token, TokenStore::Environment, None)
                .await
                .map(Some);
        }
        match self.tokens.load().await {
            Some((url, token, store)) => self.open(&url, &token, store, None).await.map(Some),
            None => Ok(None),
        }
    }

    /// Connects with a token the person typed; `remember` keeps it.
    pub async fn connect(
        &self,
        url: &str,
        token: &str,
        remember: bool,
    ) -> ConsoleResult<Connected> {
        let url = check_url(url)?;
        let token = non_empty("token", token)?;
        // Check the token before saving it anywhere.
        let client = GateClient::new(url.clone(), token.clone());
        client.whoami().await?;
        let (store, note) = if remember {
            self.tokens.save(&url, &token).await?
        } else {
            (TokenStore::Memory, None)
        };
        self.open(&url, &token, store, note).await
    }

    async fn open(
        &self,
        url: &str,
        token: &str,
        store: TokenStore,
        store_note: Option<String>,
    ) -> ConsoleResult<Connected> {
        let url = check_url(url)?;
        let client = GateClient::new(url.clone(), token.to_string());
        let who = client.whoami().await?;
        let info = Connected {
            url,
            who,
            store,
            store_note,
        };
        if let Ok(mut l) = self.link.lock() {
            *l = None;
        }
        let events = self
            .sink
            .clone()
            .map(|sink| tokio::spawn(sse::follow(client.clone(), sink)));
        *self.session.write().await = Some(Session {
            client,
            info: info.clone(),
            events,
        });
        Ok(info)
    }

    pub async fn disconnect(&self, forget: bool) {
        let old = self.session.write().await.take();
        if let (true, Some(s)) = (forget, &old) {
            self.tokens.forget(&s.info.url).await;
        }
    }

    /// The live stream's last state; `None` before its first attempt.
    pub fn link_state(&self) -> Option<LinkState> {
        self.link.lock().ok().and_then(|l| l.clone())
    }

    pub async fn session(&self) -> Option<Connected> {
        self.session.read().await.as_ref().map(|s| s.info.clone())
    }

    async fn client(&self) -> ConsoleResult<GateClient> {
        self.session
            .read()
            .await
            .as_ref()
            .map(|s| s.client.clone())
            .ok_or(ConsoleError::NotConnected)
    }

    pub async fn list_writes(
        &self,
        status: Option<WriteStatus>,
    ) -> ConsoleResult<Vec<WriteSummary>> {
        Ok(self.client().await?.writes(status).await?)
    }

    pub async fn get_write(&self, id: &str) -> ConsoleResult<WriteRecord> {
        Ok(self.client().await?.write(id).await?)
    }

    pub async fn approve(&self, id: &str, comment: Option<String>) -> ConsoleResult<WriteRecord> {
        let comment = comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        Ok(self.client().await?.approve(id, comment).await?)
    }

    pub async fn reject(&self, id: &str, reason: &str) -> ConsoleResult<WriteRecord> {
        let reason = non_empty("reason", reason)?;
        Ok(self.client().await?.reject(id, reason).await?)
    }

    pub async fn rollback(
        &self,
        id: &str,
        reason: &str,
        force: bool,
    ) -> ConsoleResult<WriteRecord> {
        let reason = non_empty("reason", reason)?;
        Ok(self.client().await?.rollback(id, reason, force).await?)
    }

    /// Settles an `outcome_unknown` write: the person says whether it took
    /// effect and what they checked (required: it goes to the audit trail).
    pub async fn resolve(
        &self,
        id: &str,
        executed: bool,
        reason: &str,
    ) -> ConsoleResult<WriteRecord> {
        let reason = non_empty("reason", reason)?;
        Ok(self.client().await?.resolve(id, executed, reason).await?)
    }

    pub async fn freeze_state(&self) -> ConsoleResult<FreezeState> {
        Ok(self.client().await?.freeze_state().await?)
    }

    pub async fn freeze(&self, reason: &str) -> ConsoleResult<FreezeState> {
        let reason = non_empty("reason", reason)?;
        Ok(self.client().await?.freeze(reason).await?)
    }

    pub async fn resume(&self) -> ConsoleResult<FreezeState> {
        Ok(self.client().await?.resume().await?)
    }

    pub async fn mode(&self) -> ConsoleResult<ModeState> {
        Ok(self.client().await?.mode().await?)
    }

    /// Switches the gate's mode (admins only; the gate checks). A reason is
    /// required: it goes to the audit trail and onto every console's banner.
    pub async fn set_mode(&self, mode: GateMode, reason: &str) -> ConsoleResult<ModeState> {
        let reason = non_empty("reason", reason)?;
        Ok(self.client().await?.set_mode(mode, reason).await?)
    }

    pub async fn rewind(&self, req: RewindRequest) -> ConsoleResult<RewindReport> {
        non_empty("reason", &req.reason)?;
        Ok(self.client().await?.rewind(&req).await?)
    }

    pub async fn effect(&self, id: &str) -> ConsoleResult<recourse_client::Effect> {
        Ok(self.client().await?.effect(id).await?)
    }

    pub async fn catalog(&self) -> ConsoleResult<Catalog> {
        Ok(self.client().await?.catalog().await?)
    }

    /// What making the catalog exactly `req.catalog` would change, and the
    /// held and recent writes it would decide differently (the gate's one
    /// engine, the same plan `recourse catalog plan` prints).
    pub async fn catalog_plan(&self, req: CatalogReplacement) -> ConsoleResult<CatalogPlan> {
        Ok(self.client().await?.plan_catalog(&req).await?)
    }

    /// Makes the catalog exactly `req.catalog`, audited `catalog.replaced`
    /// with `req.reason`. The console requires the reason (the gate only
    /// refuses a blank one), as for every other change it makes.
    pub async fn catalog_replace(
        &self,
        mut req: CatalogReplacement,
    ) -> ConsoleResult<CatalogReplaced> {
        req.reason = Some(non_empty("reason", req.reason.as_deref().unwrap_or(""))?);
        Ok(self.client().await?.replace_catalog(&req).await?)
    }

    /// The seed's three Monday audits, as the gate computes them.
    pub async fn report(&self) -> ConsoleResult<recourse_report::Report> {
        Ok(self.client().await?.report().await?)
    }

    pub async fn resource(&self, id: &str) -> ConsoleResult<ResourceView> {
        Ok(self.client().await?.resource(id).await?)
    }

    /// One page of the audit trail, newest first: the latest entries, or
    /// those before `before` (the smallest `seq` already shown).
    pub async fn audit(
        &self,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> ConsoleResult<Vec<AuditEntry>> {
        let limit = i64::from(limit.unwrap_or(AUDIT_PAGE).clamp(1, AUDIT_PAGE_MAX));
        Ok(self.client().await?.audit_newest(before, limit).await?)
    }

    pub async fn verify_audit(&self) -> ConsoleResult<AuditVerification> {
        Ok(self.client().await?.verify_audit().await?)
    }
}
