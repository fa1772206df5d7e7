//! The `http` connector (section 8): requests to allow-listed hosts only,
//! with the credentials the gate holds, never the agent's.
//!
//! The gate cannot capture a remote system's state, so this connector models
//! no rollback step of its own. The rollback is the compensating request the
//! proposal declares, and its evidence carries a `check` (`{"url",
//! "method"}`) that this connector probes: before the write (is the
//! compensation possible now?) and after a rollback (did it work?).

mod action;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use recourse_client::{RestoreItem, RestoreStatus, RollbackReport};
use recourse_connector::host::HostRule;
use recourse_connector::{Connector, ConnectorError, Plan};
use recourse_core::{Evidence, Observation, Proposal, Reach, ReasonCode, Resource};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{json, Map, Value};

/// The most of a response body kept in an outcome.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Header names an agent may never set: credentials come from the gate.
const FORBIDDEN_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

pub use action::{parse as parse_action, Body, HttpAction};

const REDACTED: &str = "[redacted]";

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// An allow-list entry that is not `host` or `host:port`.
    #[error("http allow entry `{0}`: expected `host` or `host:port`")]
    Allow(String),
    /// A configured secret header that is not a valid header.
    #[error("secret header `{name}` for `{host}`: {message}")]
    SecretHeader {
        host: String,
        name: String,
        message: String,
    },
    #[error("http client: {0}")]
    Client(String),
}

/// A validated request, ready to send.
#[derive(Debug, Clone)]
struct Request {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

pub struct HttpConnector {
    allow: Vec<HostRule>,
    /// By `host` or `host:port`, lowercase.
    secret_headers: HashMap<String, HeaderMap>,
    /// Every configured secret header name, lowercase: agents may not set
    /// them, and responses show them redacted.
    secret_names: Vec<String>,
    /// Every configured secret value, redacted wherever it shows up.
    secret_values: Vec<String>,
    client: reqwest::Client,
}

impl std::fmt::Debug for HttpConnector {
    // Hides the secret values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnector")
            .field("allow", &self.allow)
            .field("secret_names", &self.secret_names)
            .finish_non_exhaustive()
    }
}

impl HttpConnector {
    /// `allow`: hosts (`host`, any port) or `host:port` (that port only).
    /// `secret_headers`: by `host` or `host:port`, headers the gate adds to
    /// every request to that host. Redirects are not followed: a redirect to
    /// a host outside the list would leave it.
    pub fn new(
        allow: Vec<String>,
        secret_headers: HashMap<String, Vec<(String, String)>>,
        timeout: Duration,
    ) -> Result<HttpConnector, HttpError> {
        let allow = allow
            .iter()
            .map(|entry| HostRule::parse(entry).ok_or_else(|| HttpError::Allow(entry.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut secrets = HashMap::new();
        let mut secret_names = Vec::new();
        let mut secret_values = Vec::new();
        for (host, headers) in secret_headers {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                let bad = |message: String| HttpError::SecretHeader {
                    host: host.clone(),
                    name: name.clone(),
                    message,
                };
                let header_name =
                    HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
                let mut header_value =
                    HeaderValue::from_str(&value).map_err(|e| bad(e.to_string()))?;
                header_value.set_sensitive(true);
                let lower = header_name.as_str().to_string();
                if !secret_names.contains(&lower) {
                    secret_names.push(lower);
                }
                if !value.is_empty() {
                    secret_values.push(value.clone());
                }
                map.append(header_name, header_value);
            }
            secrets.insert(host.to_ascii_lowercase(), map);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpError::Client(e.to_string()))?;
        Ok(HttpConnector {
            allow,
            secret_headers: secrets,
            secret_names,
            secret_values,
            client,
        })
    }

    fn allowed(&self, url: &Url) -> bool {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        recourse_connector::host::admitted(&self.allow, host, port)
    }

    /// Validates a request (an action, or a compensating step's `op`);
    /// `at` names it in errors (`action`, `proposal.rollback.steps[0].op`).
    fn request(&self, at: &str, action: &Value) -> Result<Request, ConnectorError> {
        let HttpAction::Request {
            method,
            url,
            headers: given,
            body,
        } = action::parse(at, action)?;
        let method = match method {
            None => Method::GET,
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| {
                ConnectorError::invalid(
                    format!("{at}.method"),
                    format!("`{m}` is not an HTTP method"),
                )
            })?,
        };
        let url = self.url(&format!("{at}.url"), Some(&Value::String(url)))?;
        let mut headers = HeaderMap::new();
        for (name, value) in given.unwrap_or_default() {
            let field = format!("{at}.headers.{name}");
            let lower = name.to_ascii_lowercase();
            if FORBIDDEN_HEADERS.contains(&lower.as_str()) || self.secret_names.contains(&lower) {
                return Err(ConnectorError::invalid(
                    field,
                    "credentials come from the gate's configuration, never from the action",
                ));
            }
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ConnectorError::invalid(field.clone(), "not a valid header name"))?;
            let header_value = HeaderValue::from_str(&value)
                .map_err(|_| ConnectorError::invalid(field, "not a valid header value"))?;
            headers.append(header_name, header_value);
        }
        let body = match body {
            None => None,
            Some(Body::Text(s)) => Some(s.into_bytes()),
            Some(json) => {
                if !headers.contains_key(reqwest::header::CONTENT_TYPE) {
                    headers.insert(
                        reqwest::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
                Some(serde_json::to_vec(&json).unwrap_or_default())
            }
        };
        Ok(Request {
            method,
            url,
            headers,
            body,
        })
    }

    /// Parses a URL and refuses hosts outside the allow list.
    fn url(&self, field: &str, value: Option<&Value>) -> Result<Url, ConnectorError> {
        let Some(Value::String(raw)) = value else {
            return Err(ConnectorError::invalid(field, "must be a URL string"));
        };
        let url = Url::parse(raw)
            .map_err(|e| ConnectorError::invalid(field, format!("`{raw}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConnectorError::invalid(
                field,
                format!("scheme `{}` is not http or https", url.scheme()),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConnectorError::invalid(
                field,
                "credentials come from the gate's configuration, never from the URL",
            ));
        }
        if !self.allowed(&url) {
            return Err(ConnectorError::refuse(
                ReasonCode::UnknownConnector,
                format!(
                    "host `{}` is not allowed: the gate has no http connector for it (allow it with --http-allow)",
                    host_port(&url)
                ),
            ));
        }
        Ok(url)
    }

    fn secrets_for(&self, url: &Url) -> Option<&HeaderMap> {
        let host = url.host_str()?.to_ascii_lowercase();
        if let Some(port) = url.port_or_known_default() {
            if let Some(h) = self.secret_headers.get(&format!("{host}:{port}")) {
                return Some(h);
            }
        }
        self.secret_headers.get(&host)
    }

    async fn send(
        &self,
        request: &Request,
        idempotency_key: &str,
    ) -> Result<reqwest::Response, ConnectorError> {
        let mut headers = request.headers.clone();
        if !headers.contains_key("idempotency-key") {
            if let Ok(v) = HeaderValue::from_str(idempotency_key) {
                headers.insert("idempotency-key", v);
            }
        }
        if let Some(secrets) = self.secrets_for(&request.url) {
            for (name, value) in secrets {
                headers.insert(name.clone(), value.clone());
            }
        }
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone())
            .headers(headers);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        builder.send().await.map_err(|e| {
            let what = format!(
                "{} {}: {}",
                request.method,
                request.url,
                self.redact(&e.to_string())
            );
            if e.is_connect() {
                // No connection (refused, unresolvable, a connect timeout,
                // a failed handshake): nothing was sent, so nothing changed.
                ConnectorError::Unavailable(what)
            } else if e.is_builder() {
                ConnectorError::Io(what)
            } else {
                // Connected, and the request sent or on its way when it
                // failed (no answer in time, the connection dropped): the
                // server may have acted on it.
                ConnectorError::Uncertain(what)
            }
        })
    }

    /// The request [`Self::send`] would send for `action`: the agent's
    /// headers, the idempotency key, and the gate's own headers for the
    /// host by name with their values hidden.
    fn effect_of(
        &self,
        write_id: &str,
        action: &Value,
    ) -> Result<recourse_client::EffectChange, ConnectorError> {
        use recourse_client::{effect::EFFECT_BODY_BYTES, HeaderLine, RequestEffect};
        let request = self.request("action", action)?;
        let mut headers: Vec<HeaderLine> = request
            .headers
            .iter()
            .map(|(name, value)| HeaderLine {
                name: name.as_str().to_owned(),
                value: self.redact(&String::from_utf8_lossy(value.as_bytes())),
                by_gate: false,
            })
            .collect();
        if !request.headers.contains_key("idempotency-key") {
            headers.push(HeaderLine {
                name: "idempotency-key".into(),
                value: write_id.to_owned(),
                by_gate: true,
            });
        }
        for (name, _) in self.secrets_for(&request.url).into_iter().flatten() {
            headers.push(HeaderLine {
                name: name.as_str().to_owned(),
                value: REDACTED.to_owned(),
                by_gate: true,
            });
        }
        let body = request.body.as_ref().map(|b| {
            let cut = b.get(..EFFECT_BODY_BYTES.min(b.len())).unwrap_or_default();
            self.redact(&String::from_utf8_lossy(cut))
        });
        Ok(recourse_client::EffectChange::Request(RequestEffect {
            method: request.method.to_string(),
            url: request.url.to_string(),
            headers,
            body_bytes: request.body.as_ref().map_or(0, |b| b.len() as u64),
            body,
        }))
    }

    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secret_values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    /// Status, headers (secrets redacted) and body (at most [`BODY_LIMIT`]
    /// bytes, secrets redacted) of a response.
    async fn describe(&self, mut response: reqwest::Response) -> Value {
        let status = response.status().as_u16();
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            let lower = name.as_str();
            let shown = if FORBIDDEN_HEADERS.contains(&lower)
                || self.secret_names.iter().any(|s| s == lower)
            {
                REDACTED.to_string()
            } else {
                self.redact(&String::from_utf8_lossy(value.as_bytes()))
            };
            headers.insert(lower.to_string(), Value::String(shown));
        }
        let mut body = Vec::new();
        let mut truncated = false;
        let mut read_error = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = BODY_LIMIT.saturating_sub(body.len());
                    if chunk.len() > room {
                        body.extend_from_slice(chunk.get(..room).unwrap_or_default());
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(e.to_string());
                    break;
                }
            }
        }
        let mut out = json!({
            "status": status,
            "headers": headers,
            "body": self.redact(&String::from_utf8_lossy(&body)),
            "body_truncated": truncated,
        });
        if let (Some(e), Some(obj)) = (read_error, out.as_object_mut()) {
            obj.insert("body_error".into(), Value::String(e));
        }
        out
    }

    /// Probes an evidence `check`: 2xx means present.
    async fn probe(&self, check: &Value, key: &str) -> Observation {
        let absent = |detail: String| Observation {
            present: false,
            captured_at: None,
            detail: Some(detail),
        };
        let method = match check.get("method") {
            None | Some(Value::Null) => Method::GET,
            Some(Value::String(m)) => match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(m) => m,
                Err(_) => return absent(format!("check.method: `{m}` is not an HTTP method")),
            },
            Some(_) => return absent("check.method: must be a string".into()),
        };
        let url = match self.url("check.url", check.get("url")) {
            Ok(url) => url,
            Err(e) => return absent(e.to_string()),
        };
        let request = Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
        };
        match self.send(&request, key).await {
            Ok(response) if response.status().is_success() => Observation {
                present: true,
                captured_at: Some(Utc::now()),
                detail: Some(format!(
                    "{} {} answered {}",
                    request.method,
                    request.url,
                    response.status().as_u16()
                )),
            },
            Ok(response) => absent(format!(
                "{} {} answered {}",
                request.method,
                request.url,
                response.status().as_u16()
            )),
            Err(e) => absent(e.to_string()),
        }
    }
}

fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// `http:HOST/PATH`: the resource a request reaches (the query is not part
/// of it).
pub fn resource_id(url: &Url) -> String {
    format!("http:{}{}", host_port(url), url.path())
}

#[async_trait]
impl Connector for HttpConnector {
    fn name(&self) -> &'static str {
        "http"
    }

    /// A compensating `request` it would send in `restore`: a valid request
    /// to an allowed host (no credentials of the agent's).
    fn accepts_step(&self, op: &Value) -> bool {
        self.request("op", op).is_ok()
    }

    async fn effect(
        &self,
        write_id: &str,
        action: &Value,
    ) -> Result<Option<recourse_client::EffectChange>, ConnectorError> {
        self.effect_of(write_id, action).map(Some)
    }

    async fn plan(&self, _write_id: &str, action: &Value) -> Result<Plan, ConnectorError> {
        let request = self.request("action", action)?;
        let id = resource_id(&request.url);
        let mut resource = Resource::new(id.clone());
        resource.kind = Some("http.endpoint".into());
        // The gate can probe it; the remote system restores it.
        resource.reach = Reach::Observed;
        // No step: the gate cannot capture a remote system; the rollback is
        // the compensating request the proposal declares.
        Ok(Plan {
            touches: vec![id],
            resources: vec![resource],
            edges: Vec::new(),
            step: None,
        })
    }

    /// Probes the item's `check`. The gate hands it a `check` only when
    /// the catalog cleared it (section 10: the evidence's location declares
    /// a `probe_prefix` the URL starts with); it never probes on its own
    /// anything else, and an item without a `check` is not its to observe.
    async fn observe(&self, write_id: &str, evidence: &Evidence) -> Option<Observation> {
        let check = evidence.check.as_ref()?;
        Some(
            self.probe(check, &format!("{write_id}-check-{}", evidence.id))
                .await,
        )
    }

    async fn capture(&self, _write_id: &str, proposal: &Proposal) -> Result<Value, ConnectorError> {
        self.request("action", &proposal.action)?;
        Ok(json!({
            "connector": "http",
            "captured": false,
            "note": "a remote system's state cannot be captured; the rollback is the declared compensating request",
        }))
    }

    async fn execute(
        &self,
        write_id: &str,
        proposal: &Proposal,
        _capture: &Value,
    ) -> Result<Value, ConnectorError> {
        let request = self.request("action", &proposal.action)?;
        let response = self.send(&request, write_id).await?;
        let success = response.status().is_success();
        let outcome = self.describe(response).await;
        if success {
            Ok(outcome)
        } else {
            let status = outcome.get("status").cloned().unwrap_or(Value::Null);
            let body: String = outcome
                .get("body")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(1024)
                .collect();
            Err(ConnectorError::Io(format!(
                "{} {} answered {status}: {body}",
                request.method, request.url
            )))
        }
    }

    async fn applied(
        &self,
        _write_id: &str,
        _proposal: &Proposal,
        _capture: &Value,
    ) -> Result<Option<bool>, ConnectorError> {
        // A remote system's state cannot be known from here.
        Ok(None)
    }

    /// A compensation sent is not something this connector can ask the
    /// target about afterwards.
    fn restore_resumes(&self) -> bool {
        false
    }

    async fn restore(
        &self,
        write_id: &str,
        proposal: &Proposal,
        _capture: &Value,
        _outcome: Option<&Value>,
        force: bool,
    ) -> Result<RollbackReport, ConnectorError> {
        let mut items = Vec::new();
        let steps: Vec<_> = proposal
            .rollback
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.op.get("connector").and_then(Value::as_str) == Some("http"))
            .collect();
        if steps.is_empty() {
            for touched in &proposal.touches {
                items.push(RestoreItem {
                    resource: touched.clone(),
                    status: RestoreStatus::Failed,
                    detail: Some("the proposal declares no compensating http request".into()),
                });
            }
        }
        // Validate every step first, so a bad one sends nothing.
        let mut requests = Vec::new();
        for (i, step) in &steps {
            requests.push(self.request(&format!("proposal.rollback.steps[{i}].op"), &step.op)?);
        }
        for ((i, step), request) in steps.iter().zip(&requests) {
            let (status, detail) = match self
                .send(request, &format!("{write_id}-rollback-{i}"))
                .await
            {
                Err(e) => (RestoreStatus::Failed, e.to_string()),
                Ok(response) if !response.status().is_success() => (
                    RestoreStatus::Failed,
                    format!(
                        "{} {} answered {}",
                        request.method,
                        request.url,
                        response.status().as_u16()
                    ),
                ),
                Ok(response) => {
                    let sent = format!(
                        "{} {} answered {}",
                        request.method,
                        request.url,
                        response.status().as_u16()
                    );
                    let mut failed_checks = Vec::new();
                    let mut checks = 0;
                    for ev in &step.requires {
                        if let Some(check) = &ev.check {
                            checks += 1;
                            let seen = self
                                .probe(check, &format!("{write_id}-recheck-{}", ev.id))
                                .await;
                            if !seen.present {
                                failed_checks.push(format!(
                                    "{}: {}",
                                    ev.id,
                                    seen.detail.unwrap_or_default()
                                ));
                            }
                        }
                    }
                    if checks == 0 {
                        (
                            RestoreStatus::Mismatch,
                            format!("{sent}; no check to verify the result"),
                        )
                    } else if failed_checks.is_empty() {
                        (
                            RestoreStatus::Restored,
                            format!("{sent}; {checks} check(s) passed"),
                        )
                    } else {
                        (
                            RestoreStatus::Mismatch,
                            format!("{sent}; check failed: {}", failed_checks.join("; ")),
                        )
                    }
                }
            };
            let resources = if step.restores.is_empty() {
                vec![resource_id(&request.url)]
            } else {
                step.restores.clone()
            };
            for resource in resources {
                items.push(RestoreItem {
                    resource,
                    status,
                    detail: Some(detail.clone()),
                });
            }
        }
        let verified =
            !items.is_empty() && items.iter().all(|i| i.status == RestoreStatus::Restored);
        Ok(RollbackReport {
            verified,
            items,
            forced: force,
        })
    }
}

#[cfg(test)]
mod tests;
