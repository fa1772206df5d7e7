//! A typed client for the gate: one method per endpoint.

use recourse_core::{Catalog, Proposal};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::wire::*;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gate could not be reached: nothing was done.
    #[error("the gate at {url} could not be reached: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The gate answered with an error.
    #[error("{status}: {} ({})", body.error.message, body.error.code)]
    Api { status: u16, body: ErrorBody },
    #[error("unexpected answer from the gate: {0}")]
    Protocol(String),
}

impl ClientError {
    pub fn code(&self) -> Option<crate::ErrorCode> {
        match self {
            ClientError::Api { body, .. } => Some(body.error.code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The gate's error body, or the raw text as one when it sent something else.
fn error_body(bytes: &[u8]) -> ErrorBody {
    serde_json::from_slice(bytes).unwrap_or_else(|_| ErrorBody {
        error: ErrorDetail {
            code: crate::ErrorCode::Http,
            message: String::from_utf8_lossy(bytes).into_owned(),
            field: None,
        },
    })
}

#[derive(Debug, Clone)]
pub struct GateClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl GateClient {
    /// `base` like `http://127.0.0.1:7420`.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            // The gate closes a connection idle for its header timeout
            // (10 s by default): never reuse one that old, or a request
            // can race the close.
            .pool_idle_timeout(std::time::Duration::from_secs(4))
            .build()
            .unwrap_or_default();
        Self {
            base: base.into().trim_end_matches('/').to_string(),
            token: token.into(),
            http,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
        } else {
            Err(ClientError::Api {
                status: status.as_u16(),
                body: error_body(&bytes),
            })
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.http.get(self.url(path))).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.get("/v1/whoami").await
    }

    pub async fn submit(&self, proposal: &Proposal) -> Result<WriteRecord, ClientError> {
        self.post("/v1/writes", proposal).await
    }

    /// Submits raw JSON (for callers that build proposals by hand).
    pub async fn submit_json(
        &self,
        proposal: &serde_json::Value,
    ) -> Result<WriteRecord, ClientError> {
        self.post("/v1/writes", proposal).await
    }

    /// The decision a proposal would get now; nothing is stored or run.
    pub async fn explain(&self, proposal: &serde_json::Value) -> Result<Explained, ClientError> {
        self.post("/v1/explain", proposal).await
    }

    pub async fn writes(
        &self,
        status: Option<WriteStatus>,
    ) -> Result<Vec<WriteSummary>, ClientError> {
        match status {
            Some(s) => self.get(&format!("/v1/writes?status={}", s.as_str())).await,
            None => self.get("/v1/writes").await,
        }
    }

    pub async fn write(&self, id: &str) -> Result<WriteRecord, ClientError> {
        self.get(&format!("/v1/writes/{id}")).await
    }

    /// What a held or approved write will change, read from its target now
    /// (never stored; see [`crate::effect`]).
    pub async fn effect(&self, id: &str) -> Result<crate::Effect, ClientError> {
        self.get(&format!("/v1/writes/{id}/effect")).await
    }

    pub async fn approve(
        &self,
        id: &str,
        comment: Option<String>,
    ) -> Result<WriteRecord, ClientError> {
        self.post(
            &format!("/v1/writes/{id}/approve"),
            &ApproveRequest { comment },
        )
        .await
    }

    pub async fn reject(
        &self,
        id: &str,
        reason: impl Into<String>,
    ) -> Result<WriteRecord, ClientError> {
        self.post(
            &format!("/v1/writes/{id}/reject"),
            &RejectRequest {
                reason: reason.into(),
            },
        )
        .await
    }

    pub async fn rollback(
        &self,
        id: &str,
        reason: impl Into<String>,
        force: bool,
    ) -> Result<WriteRecord, ClientError> {
        let body = RollbackRequest {
            reason: reason.into(),
            force,
        };
        self.post(&format!("/v1/writes/{id}/rollback"), &body).await
    }

    /// Settles a write whose outcome the gate cannot know: `executed` says
    /// whether the person found that it took effect; `reason` is what they
    /// checked, for the audit trail.
    pub async fn resolve(
        &self,
        id: &str,
        executed: bool,
        reason: impl Into<String>,
    ) -> Result<WriteRecord, ClientError> {
        let body = ResolveRequest {
            executed,
            reason: reason.into(),
        };
        self.post(&format!("/v1/writes/{id}/resolve"), &body).await
    }

    pub async fn catalog(&self) -> Result<Catalog, ClientError> {
        self.get("/v1/catalog").await
    }

    pub async fn upsert_catalog(&self, catalog: &Catalog) -> Result<Catalog, ClientError> {
        self.post("/v1/catalog", catalog).await
    }

    /// What making the gate's catalog exactly `req.catalog` would change.
    pub async fn plan_catalog(&self, req: &CatalogReplacement) -> Result<CatalogPlan, ClientError> {
        self.post("/v1/catalog/plan", req).await
    }

    /// Makes the gate's catalog exactly `req.catalog` (removals included).
    pub async fn replace_catalog(
        &self,
        req: &CatalogReplacement,
    ) -> Result<CatalogReplaced, ClientError> {
        self.send(self.http.put(self.url("/v1/catalog")).json(req))
            .await
    }

    pub async fn resource(&self, id: &str) -> Result<ResourceView, ClientError> {
        let enc: String = id
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        self.get(&format!("/v1/catalog/resources/{enc}")).await
    }

    /// The oldest entries, oldest first (up to 1,000).
    pub async fn audit(&self) -> Result<Vec<AuditEntry>, ClientError> {
        self.audit_after(0, 1000).await
    }

    /// Oldest first: the entries after `after_seq`, to read the trail from
    /// its start.
    pub async fn audit_after(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, ClientError> {
        self.get(&format!(
            "/v1/audit?order=asc&after={after_seq}&limit={limit}"
        ))
        .await
    }

    /// Newest first: the latest entries, or those before `before_seq` (the
    /// smallest `seq` of the previous page) to page back in time.
    pub async fn audit_newest(
        &self,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, ClientError> {
        let path = match before_seq {
            Some(b) => format!("/v1/audit?order=desc&before={b}&limit={limit}"),
            None => format!("/v1/audit?order=desc&limit={limit}"),
        };
        self.get(&path).await
    }

    pub async fn verify_audit(&self) -> Result<AuditVerification, ClientError> {
        self.get("/v1/audit/verify").await
    }

    /// `GET /v1/report`. Generic because the report's type lives in
    /// `recourse-report`, which builds on this crate: callers ask for
    /// `recourse_report::Report` (or a `serde_json::Value`).
    pub async fn report<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        self.get("/v1/report").await
    }

    pub async fn freeze_state(&self) -> Result<FreezeState, ClientError> {
        self.get("/v1/freeze").await
    }

    pub async fn freeze(&self, reason: impl Into<String>) -> Result<FreezeState, ClientError> {
        self.post(
            "/v1/freeze",
            &FreezeRequest {
                reason: reason.into(),
            },
        )
        .await
    }

    pub async fn resume(&self) -> Result<FreezeState, ClientError> {
        self.post("/v1/resume", &serde_json::json!({})).await
    }

    pub async fn mode(&self) -> Result<ModeState, ClientError> {
        self.get("/v1/mode").await
    }

    /// Switches the gate's mode (admins only).
    pub async fn set_mode(
        &self,
        mode: GateMode,
        reason: impl Into<String>,
    ) -> Result<ModeState, ClientError> {
        let body = ModeRequest {
            mode,
            reason: reason.into(),
        };
        self.send(self.http.put(self.url("/v1/mode")).json(&body))
            .await
    }

    pub async fn rewind(&self, req: &RewindRequest) -> Result<RewindReport, ClientError> {
        self.post("/v1/rewind", req).await
    }

    pub async fn create_token(&self, name: &str, role: Role) -> Result<TokenCreated, ClientError> {
        self.post(
            "/v1/tokens",
            &TokenRequest {
                name: name.into(),
                role,
                scope: None,
            },
        )
        .await
    }

    /// The raw SSE response, for callers that read the event stream.
    pub async fn events(&self) -> Result<reqwest::Response, ClientError> {
        self.events_after(None).await
    }

    /// The event stream resumed after event `last` (an event's `seq`, sent
    /// as `Last-Event-ID`): the events after it come first, none twice.
    pub async fn events_after(&self, last: Option<i64>) -> Result<reqwest::Response, ClientError> {
        let mut req = self
            .http
            .get(self.url("/v1/events"))
            .bearer_auth(&self.token);
        if let Some(last) = last {
            req = req.header("Last-Event-ID", last.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            // The gate's own words (an expired token says so), as for
            // every other call.
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            Err(ClientError::Api {
                status,
                body: error_body(&bytes),
            })
        }
    }
}
