//! Notifications: when a write waits for a person (it was held, or its hold
//! is about to expire) or went wrong (`failed`, `rollback_failed`,
//! `outcome_unknown`), the gate POSTs a message to each configured webhook.
//!
//! - Fed from the one place the gate announces changes (`Gate::emit`): a
//!   write that has just *entered* one of those statuses, or the sweep's
//!   notice that a hold expires soon.
//! - Never on the write path: [`Notifier::offer`] only puts the notice in
//!   a bounded queue; a background task delivers (a few at a time). When
//!   the queue is full the notice is dropped, and an audit entry
//!   (`notify.dropped`) says which.
//! - Signed: `X-Recourse-Signature: sha256=HEX`, the HMAC-SHA256 of
//!   `TIMESTAMP.BODY` with the operator's secret, `TIMESTAMP` being the
//!   `X-Recourse-Timestamp` header (Unix seconds): a receiver recomputes it
//!   and refuses an old timestamp, so a captured message cannot be
//!   replayed later. `X-Recourse-Delivery` stays the same across retries.
//! - Retried with exponential backoff while the receiver is unreachable or
//!   answers 408, 429 or 5xx, a bounded number of times; the outcome
//!   (`notify.delivered` or `notify.gave_up`, with the attempts) goes into
//!   the audit trail.
//! - Masked: built from the record as the gate stores it (masked), with
//!   intent, notes and reasons masked again; never the raw proposal. A
//!   message links into the console (`recourse://writes/ID`) and carries no
//!   link or token that approves anything: deciding takes a signed-in
//!   person in the console or the API.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use recourse_client::{WriteRecord, WriteStatus};
use recourse_secrets::Masker;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Semaphore};

use crate::audit::AuditDraft;
use crate::store::Store;

pub const SIGNATURE_HEADER: &str = "x-recourse-signature";
pub const TIMESTAMP_HEADER: &str = "x-recourse-timestamp";
pub const EVENT_HEADER: &str = "x-recourse-event";
pub const DELIVERY_HEADER: &str = "x-recourse-delivery";

/// The `Gate::emit` kind of the sweep's "this hold expires soon".
pub(crate) const EXPIRING: &str = "write.expiring";

/// Notices dropped while the queue was full, listed one by one in their
/// audit entry up to this many (the count is always exact).
const DROPPED_LISTED: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the webhook client could not be built: {0}")]
    Client(String),
    #[error("webhook {index} (`{host}`): only http:// and https:// URLs are posted to")]
    Scheme { index: usize, host: String },
}

/// What a message looks like on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The gate's own JSON (see [`payload`]).
    #[default]
    Json,
    /// `{"text": ..., "blocks": [...]}`, what a Slack incoming webhook
    /// (and the many services that accept its format) posts.
    Slack,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "json" => Some(Format::Json),
            "slack" => Some(Format::Slack),
            _ => None,
        }
    }
}

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Held,
    Expiring,
    Failed,
    RollbackFailed,
    OutcomeUnknown,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Held => "write.held",
            Event::Expiring => "write.expiring",
            Event::Failed => "write.failed",
            Event::RollbackFailed => "write.rollback_failed",
            Event::OutcomeUnknown => "write.outcome_unknown",
        }
    }

    fn headline(self) -> &'static str {
        match self {
            Event::Held => "is held for review",
            Event::Expiring => "expires soon and nobody has decided",
            Event::Failed => "failed; nothing ran",
            Event::RollbackFailed => "was rolled back and the rollback did not verify",
            Event::OutcomeUnknown => "failed and whether it took effect is unknown",
        }
    }

    /// The message an event of `kind` (as `Gate::emit` names it) about
    /// `rec` calls for: a write that has just entered a status that needs
    /// a person (a second approval short of the count, or a retry that
    /// keeps its status, enters nothing), or a hold that expires soon.
    pub fn of(kind: &str, rec: &WriteRecord) -> Option<Event> {
        if kind == EXPIRING {
            return (rec.status == WriteStatus::Held).then_some(Event::Expiring);
        }
        if kind != "write" {
            return None;
        }
        let entered = rec
            .history
            .last()
            .is_some_and(|t| t.to == rec.status && t.from != Some(rec.status));
        if !entered {
            return None;
        }
        match rec.status {
            WriteStatus::Held => Some(Event::Held),
            WriteStatus::Failed => Some(Event::Failed),
            WriteStatus::RollbackFailed => Some(Event::RollbackFailed),
            WriteStatus::OutcomeUnknown => Some(Event::OutcomeUnknown),
            _ => None,
        }
    }
}

/// Where and how the gate notifies.
#[derive(Clone)]
pub struct NotifyConfig {
    pub webhooks: Vec<reqwest::Url>,
    /// The HMAC key; without one messages go unsigned.
    pub secret: Option<Vec<u8>>,
    pub format: Format,
    /// A held write whose hold expires within this gets a message (once).
    pub expiry_lead: chrono::Duration,
    /// Notices waiting for delivery at most; beyond, dropped (audited).
    pub queue: usize,
    /// Tries per webhook and message, the first included.
    pub attempts: u32,
    /// The wait after the first failed try, doubled after each next one...
    pub first_backoff: Duration,
    /// ... up to this.
    pub max_backoff: Duration,
    /// One try's time limit.
    pub timeout: Duration,
    /// Deliveries in flight at once.
    pub parallel: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            secret: None,
            format: Format::Json,
            expiry_lead: chrono::Duration::hours(1),
            queue: 1024,
            attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            parallel: 4,
        }
    }
}

impl std::fmt::Debug for NotifyConfig {
    // A webhook URL can be a credential (a Slack webhook's path is), and
    // the secret is one: neither is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field(
                "webhooks",
                &self.webhooks.iter().map(shown_host).collect::<Vec<_>>(),
            )
            .field("signed", &self.secret.is_some())
            .field("format", &self.format)
            .field("expiry_lead", &self.expiry_lead)
            .field("queue", &self.queue)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// A webhook as logs and the audit trail name it: its host only (the path
/// of a Slack webhook is its credential).
fn shown_host(url: &reqwest::Url) -> String {
    url.host_str().unwrap_or("?").to_string()
}

/// The console's page for a write (the console's deep link).
pub fn console_link(id: &str) -> String {
    format!("recourse://writes/{id}")
}

/// `sha256=HEX`: the HMAC-SHA256 of `TIMESTAMP.BODY` under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait after try `attempt` (1 for the first) failed: `first`,
/// doubled each time, never above `max`.
pub fn backoff(attempt: u32, first: Duration, max: Duration) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1).min(31))
        .unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(max)
}

/// What a receiver's answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Delivered,
    /// Busy or broken for now: try again.
    Retry,
    /// It refused the message: trying again would not help.
    Refused,
}

fn judge(status: u16) -> Answer {
    match status {
        200..=299 => Answer::Delivered,
        408 | 429 | 500..=599 => Answer::Retry,
        _ => Answer::Refused,
    }
}

/// The reasons a message names, masked.
fn reasons(rec: &WriteRecord, masker: &Masker) -> Vec<Value> {
    rec.decision
        .reasons
        .iter()
        .map(|r| {
            json!({"code": r.code, "subject": masker.text(&r.subject()),
                   "detail": masker.text(&r.detail)})
        })
        .collect()
}

fn bearers(rec: &WriteRecord) -> Vec<String> {
    rec.decision
        .bearers
        .iter()
        .filter_map(|b| serde_json::to_value(b).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// The last note of the write's history (why it failed), masked.
fn last_note(rec: &WriteRecord, masker: &Masker) -> Option<String> {
    rec.history
        .last()
        .and_then(|t| t.note.as_deref())
        .map(|n| masker.text(n))
}

/// One sentence for people: what happened, to what, who pays, why, and
/// where to decide.
pub fn summary(event: Event, rec: &WriteRecord, masker: &Masker) -> String {
    let mut out = format!(
        "Recourse: write {} {} ({} by `{}`): \"{}\".",
        rec.id,
        event.headline(),
        rec.connector,
        rec.agent,
        masker.text(&rec.proposal.intent)
    );
    let who = bearers(rec);
    if !who.is_empty() {
        out.push_str(&format!(
            " If its rollback fails, the cost falls on: {}.",
            who.join(", ")
        ));
    }
    let why: Vec<String> = rec
        .decision
        .reasons
        .iter()
        .map(|r| {
            let code = r.code.as_str();
            match r.subject() {
                s if s.is_empty() => code.to_string(),
                s => format!("{code} ({})", masker.text(&s)),
            }
        })
        .collect();
    if matches!(event, Event::Held | Event::Expiring) && !why.is_empty() {
        out.push_str(&format!(" Why: {}.", why.join("; ")));
    }
    if matches!(
        event,
        Event::Failed | Event::RollbackFailed | Event::OutcomeUnknown
    ) {
        if let Some(note) = last_note(rec, masker) {
            out.push_str(&format!(" {note}."));
        }
    }
    if let (Event::Expiring, Some(at)) = (event, rec.expires_at) {
        out.push_str(&format!(" It expires at {}.", at.to_rfc3339()));
    }
    out.push_str(&format!(
        " Open it in the console and decide there, signed in: {}",
        console_link(&rec.id)
    ));
    out
}

/// The gate's own message format.
pub fn payload(
    event: Event,
    rec: &WriteRecord,
    masker: &Masker,
    delivery: &str,
    at: DateTime<Utc>,
) -> Value {
    json!({
        "event": event.as_str(),
        "delivery": delivery,
        "at": at,
        "write": {
            "id": rec.id,
            "status": rec.status,
            "agent": rec.agent,
            "connector": rec.connector,
            "intent": masker.text(&rec.proposal.intent),
            "verdict": rec.decision.decision,
            "bearers": bearers(rec),
            "reasons": reasons(rec, masker),
            "required_approvals": rec.required_approvals,
            "expires_at": rec.expires_at,
            "note": last_note(rec, masker),
        },
        "link": console_link(&rec.id),
        "summary": summary(event, rec, masker),
    })
}

/// Slack's mrkdwn gives `&`, `<` and `>` meaning (`<!channel>` pings
/// everyone): text from an agent is escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Slack-compatible format: the summary as `text`, and as one block.
pub fn slack(event: Event, rec: &WriteRecord, masker: &Masker) -> Value {
    let text = slack_escape(&summary(event, rec, masker));
    json!({
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    })
}

/// The body of one message in `format`.
pub fn render(
    format: Format,
    event: Event,
    rec: &WriteRecord,
    masker: &Masker,
    delivery: &str,
    at: DateTime<Utc>,
) -> Vec<u8> {
    let v = match format {
        Format::Json => payload(event, rec, masker, delivery, at),
        Format::Slack => slack(event, rec, masker),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

struct Notice {
    event: Event,
    write: WriteRecord,
}

/// Notices the full queue turned away, waiting for their audit entry.
#[derive(Default)]
struct Dropped {
    listed: Mutex<(u64, Vec<Value>)>,
    flushing: AtomicBool,
}

/// The sending side, kept by the gate. Cheap to call from anywhere:
/// nothing here waits on the network or the store.
pub struct Notifier {
    tx: mpsc::Sender<Notice>,
    store: Arc<dyn Store>,
    dropped: Arc<Dropped>,
    expiry_lead: chrono::Duration,
    /// Holds (write, expiry) this process already announced as expiring,
    /// before it asks the trail.
    expiring_sent: Mutex<HashSet<(String, i64)>>,
}

impl Notifier {
    /// Starts the delivery task (inside a Tokio runtime).
    pub fn start(
        config: NotifyConfig,
        store: Arc<dyn Store>,
        masker: Masker,
    ) -> Result<Notifier, NotifyError> {
        for (index, url) in config.webhooks.iter().enumerate() {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(NotifyError::Scheme {
                    index,
                    host: shown_host(url),
                });
            }
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            // A signed message goes where it was configured to, never on.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("recourse-gate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Client(e.to_string()))?;
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let expiry_lead = config.expiry_lead;
        tokio::spawn(deliver_all(
            rx,
            Arc::new(config),
            store.clone(),
            masker,
            client,
        ));
        Ok(Notifier {
            tx,
            store,
            dropped: Arc::default(),
            expiry_lead,
            expiring_sent: Mutex::default(),
        })
    }

    pub fn expiry_lead(&self) -> chrono::Duration {
        self.expiry_lead
    }

    /// Queues the message an event calls for, if any; never waits.
    pub(crate) fn offer(&self, kind: &str, rec: &WriteRecord) {
        let Some(event) = Event::of(kind, rec) else {
            return;
        };
        let notice = Notice {
            event,
            write: rec.clone().without_sealed(),
        };
        match self.tx.try_send(notice) {
            Ok(()) => {}
            Err(TrySendError::Full(n) | TrySendError::Closed(n)) => self.dropped(n),
        }
    }

    /// Whether this process should announce that `rec`'s hold expires
    /// soon, remembering that it did.
    pub(crate) fn first_expiring(&self, rec: &WriteRecord, now: DateTime<Utc>) -> bool {
        let Some(at) = rec.expires_at else {
            return false;
        };
        let Ok(mut sent) = self.expiring_sent.lock() else {
            return false;
        };
        sent.retain(|(_, t)| *t > now.timestamp());
        sent.insert((rec.id.clone(), at.timestamp()))
    }

    /// Counts a notice the queue had no room for, and makes sure one audit
    /// entry will list it (one task at a time writes them).
    fn dropped(&self, notice: Notice) {
        tracing::warn!(write = %notice.write.id, event = notice.event.as_str(),
            "the notification queue is full; dropped");
        if let Ok(mut listed) = self.dropped.listed.lock() {
            listed.0 += 1;
            if listed.1.len() < DROPPED_LISTED {
                listed
                    .1
                    .push(json!({"write": notice.write.id, "event": notice.event.as_str()}));
            }
        }
        if self.dropped.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.dropped.flushing.store(false, Ordering::Release);
            return;
        };
        let (dropped, store) = (self.dropped.clone(), self.store.clone());
        rt.spawn(async move {
            // Let a burst gather into one entry.
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Cleared before the list is taken: a drop after this point
            // starts a flush of its own.
            dropped.flushing.store(false, Ordering::Release);
            let (count, writes) = match dropped.listed.lock() {
                Ok(mut l) => std::mem::take(&mut *l),
                Err(_) => return,
            };
            if count == 0 {
                return;
            }
            let body = json!({"count": count, "writes": writes,
                "why": "the notification queue was full"});
            if let Err(e) = store
                .append_audit(AuditDraft::new("gate", "notify.dropped", None, body))
                .await
            {
                tracing::error!(error = %e, count, "recording dropped notifications");
            }
        });
    }
}

/// How one message to one webhook went.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivery {
    delivered: bool,
    attempts: u32,
    status: Option<u16>,
    error: Option<String>,
}

/// The delivery task: one message at a time off the queue, each to every
/// webhook, at most `parallel` deliveries in flight (so a slow receiver
/// fills the queue rather than the gate's memory).
async fn deliver_all(
    mut rx: mpsc::Receiver<Notice>,
    config: Arc<NotifyConfig>,
    store: Arc<dyn Store>,
    masker: Masker,
    client: reqwest::Client,
) {
    let slots = Arc::new(Semaphore::new(config.parallel.max(1)));
    while let Some(notice) = rx.recv().await {
        let delivery = delivery_id();
        let body = Arc::new(render(
            config.format,
            notice.event,
            &notice.write,
            &masker,
            &delivery,
            Utc::now(),
        ));
        for (index, url) in config.webhooks.iter().enumerate() {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (client, config, store) = (client.clone(), config.clone(), store.clone());
            let (url, body, delivery) = (url.clone(), body.clone(), delivery.clone());
            let (event, id) = (notice.event, notice.write.id.clone());
            tokio::spawn(async move {
                let done = deliver(&client, &config, &url, &body, event, &delivery).await;
                let action = if done.delivered {
                    "notify.delivered"
                } else {
                    "notify.gave_up"
                };
                let entry = json!({"event": event.as_str(), "delivery": delivery,
                    "webhook": index, "host": shown_host(&url), "attempts": done.attempts,
                    "status": done.status, "error": done.error});
                if !done.delivered {
                    tracing::warn!(write = %id, host = %shown_host(&url), attempts = done.attempts,
                        "a notification was not delivered");
                }
                if let Err(e) = store
                    .append_audit(AuditDraft::new("gate", action, Some(&id), entry))
                    .await
                {
                    tracing::error!(write = %id, error = %e, "recording a notification's delivery");
                }
                drop(slot);
            });
        }
    }
}

fn delivery_id() -> String {
    let mut b = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut b);
    format!("d_{}", hex::encode(b))
}

/// Posts `body` to `url` until it is taken, refused, or the tries run out.
async fn deliver(
    client: &reqwest::Client,
    config: &NotifyConfig,
    url: &reqwest::Url,
    body: &[u8],
    event: Event,
    delivery: &str,
) -> Delivery {
    let tries = config.attempts.max(1);
    let mut last = Delivery {
        delivered: false,
        attempts: 0,
        status: None,
        error: None,
    };
    for attempt in 1..=tries {
        last.attempts = attempt;
        let timestamp = Utc::now().timestamp();
        let mut req = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event.as_str())
            .header(DELIVERY_HEADER, delivery)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .body(body.to_vec());
        if let Some(secret) = &config.secret {
            req = req.header(SIGNATURE_HEADER, signature(secret, timestamp, body));
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                last.status = Some(status);
                last.error = None;
                match judge(status) {
                    Answer::Delivered => {
                        last.delivered = true;
                        return last;
                    }
                    Answer::Refused => return last,
                    Answer::Retry => {}
                }
            }
            // Without the URL: it may be a credential.
            Err(e) => {
                last.status = None;
                last.error = Some(e.without_url().to_string());
            }
        }
        if attempt < tries {
            tokio::time::sleep(backoff(attempt, config.first_backoff, config.max_backoff)).await;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: WriteStatus, from: Option<WriteStatus>) -> WriteRecord {
        serde_json::from_value(json!({
            "id": "w_1", "agent": "agent-1", "status": status, "connector": "fs",
            "proposal": {"agent": "agent-1",
                "intent": "delete the archive; password=hunter2-s3cret and key AKIAQWERTYUIOPASDFGH",
                "action": {"connector": "fs", "op": "delete", "path": "/srv/c/history.csv",
                           "headers": {"Authorization": "Bearer raw-token-123"}},
                "touches": ["fs:/srv/c/history.csv"]},
            "decision": {"decision": "hold", "reasons": [
                {"code": "third_party_bearer", "resource": "fs:/srv/c", "detail": "a customer pays"}],
                "blast_radius": [], "bearers": ["customer"], "evidence": [], "steps": []},
            "proposal_hash": "p", "decision_hash": "d", "submitted_hash": "s",
            "created_at": "2030-01-01T00:00:00Z", "updated_at": "2030-01-01T00:00:00Z",
            "expires_at": "2030-01-08T00:00:00Z",
            "required_approvals": 1,
            "history": [{"at": "2030-01-01T00:00:00Z", "from": from, "to": status,
                         "actor": "gate", "note": "the write failed: token=abc123secretvalue"}],
        }))
        .unwrap()
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2030-01-01T00:00:05Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 ("Jefe"), with the message split as the
        // gate signs it: "what do ya want" + "." + " for nothing?" is not
        // it, so the reference value is computed over the joined message.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let sig = signature(b"s3cret", 1_700_000_000, br#"{"a":1}"#);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(br#"1700000000.{"a":1}"#);
        assert_eq!(
            sig,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
        // The timestamp is signed: another one gives another signature.
        assert_ne!(sig, signature(b"s3cret", 1_700_000_001, br#"{"a":1}"#));
        assert_ne!(sig, signature(b"other", 1_700_000_000, br#"{"a":1}"#));
    }

    #[test]
    fn backoff_doubles_from_the_first_wait_up_to_the_cap() {
        let s = Duration::from_secs;
        let waits: Vec<_> = (1..=8).map(|n| backoff(n, s(1), s(30))).collect();
        assert_eq!(waits, [s(1), s(2), s(4), s(8), s(16), s(30), s(30), s(30)]);
        assert_eq!(backoff(u32::MAX, s(1), s(30)), s(30));
        assert_eq!(
            backoff(3, Duration::from_millis(100), s(60)),
            Duration::from_millis(400)
        );
    }

    #[test]
    fn answers_are_judged_retry_or_final() {
        assert_eq!(judge(200), Answer::Delivered);
        assert_eq!(judge(204), Answer::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert_eq!(judge(s), Answer::Retry, "{s}");
        }
        for s in [301, 400, 401, 403, 404, 410] {
            assert_eq!(judge(s), Answer::Refused, "{s}");
        }
    }

    #[test]
    fn a_write_that_enters_a_status_needing_a_person_is_announced_once() {
        use WriteStatus as S;
        assert_eq!(
            Event::of("write", &record(S::Held, None)),
            Some(Event::Held)
        );
        // Approved, then re-held: announced again.
        assert_eq!(
            Event::of("write", &record(S::Held, Some(S::Approved))),
            Some(Event::Held)
        );
        // An approval short of the count keeps it held: nothing new.
        assert_eq!(Event::of("write", &record(S::Held, Some(S::Held))), None);
        assert_eq!(
            Event::of("write", &record(S::Failed, Some(S::Executing))),
            Some(Event::Failed)
        );
        assert_eq!(
            Event::of("write", &record(S::RollbackFailed, Some(S::RollingBack))),
            Some(Event::RollbackFailed)
        );
        assert_eq!(
            Event::of("write", &record(S::OutcomeUnknown, Some(S::Executing))),
            Some(Event::OutcomeUnknown)
        );
        for quiet in [
            S::Executing,
            S::Executed,
            S::RolledBack,
            S::Refused,
            S::Expired,
        ] {
            assert_eq!(Event::of("write", &record(quiet, None)), None, "{quiet:?}");
        }
        assert_eq!(
            Event::of(EXPIRING, &record(S::Held, Some(S::Held))),
            Some(Event::Expiring)
        );
        assert_eq!(Event::of(EXPIRING, &record(S::Approved, None)), None);
        assert_eq!(Event::of("gate.frozen", &record(S::Held, None)), None);
    }

    #[test]
    fn the_json_message_names_the_write_who_pays_why_and_the_console_link() {
        let rec = record(WriteStatus::Held, None);
        let v = payload(Event::Held, &rec, &Masker::default(), "d_1", at());
        assert_eq!(v["event"], "write.held");
        assert_eq!(v["delivery"], "d_1");
        assert_eq!(v["write"]["id"], "w_1");
        assert_eq!(v["write"]["status"], "held");
        assert_eq!(v["write"]["bearers"], json!(["customer"]));
        assert_eq!(v["write"]["reasons"][0]["code"], "third_party_bearer");
        assert_eq!(v["write"]["reasons"][0]["subject"], "fs:/srv/c");
        assert_eq!(v["link"], "recourse://writes/w_1");
        let summary = v["summary"].as_str().unwrap();
        assert!(summary.contains("falls on: customer"), "{summary}");
        assert!(
            summary.contains("third_party_bearer (fs:/srv/c)"),
            "{summary}"
        );
        assert!(summary.ends_with("recourse://writes/w_1"), "{summary}");
    }

    #[test]
    fn no_secret_and_no_raw_proposal_reaches_a_message() {
        let rec = record(WriteStatus::Failed, Some(WriteStatus::Executing));
        for format in [Format::Json, Format::Slack] {
            let body = render(format, Event::Failed, &rec, &Masker::default(), "d", at());
            let text = String::from_utf8(body).unwrap();
            for secret in [
                "hunter2-s3cret",
                "AKIAQWERTYUIOPASDFGH",
                "abc123secretvalue",
                "raw-token-123",
            ] {
                assert!(!text.contains(secret), "{format:?} leaks {secret}: {text}");
            }
            // Neither the action nor anything that approves.
            assert!(!text.contains("\"action\""), "{text}");
            assert!(!text.to_lowercase().contains("/approve"), "{text}");
            assert!(!text.contains("http"), "{text}");
        }
    }

    #[test]
    fn the_slack_format_is_text_and_a_block_with_agent_text_escaped() {
        let mut rec = record(WriteStatus::Held, None);
        rec.proposal.intent = "tidy up <!channel> & <https://evil|click>".into();
        let v = slack(Event::Held, &rec, &Masker::default());
        let text = v["text"].as_str().unwrap();
        assert!(
            text.starts_with("Recourse: write w_1 is held for review"),
            "{text}"
        );
        assert!(
            text.contains("&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"),
            "{text}"
        );
        assert!(!text.contains("<!channel>"));
        assert_eq!(v["blocks"][0]["type"], "section");
        assert_eq!(v["blocks"][0]["text"]["type"], "mrkdwn");
        assert_eq!(v["blocks"][0]["text"]["text"], text);
        assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    }

    /// A webhook nothing listens on: every try fails at once.
    fn nowhere() -> reqwest::Url {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        reqwest::Url::parse(&format!("http://127.0.0.1:{port}/hook")).unwrap()
    }

    async fn trail_until(
        store: &crate::store::MemoryStore,
        action: &str,
    ) -> Vec<recourse_client::AuditEntry> {
        use crate::store::AuditStore;
        for _ in 0..200 {
            let found: Vec<_> = store
                .audit(0, 10_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == action)
                .collect();
            if !found.is_empty() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no `{action}` entry");
    }

    #[tokio::test]
    async fn a_full_queue_drops_without_waiting_and_the_trail_says_which() {
        let store = Arc::new(crate::store::MemoryStore::new());
        let config = NotifyConfig {
            webhooks: vec![nowhere()],
            queue: 1,
            parallel: 1,
            attempts: 2,
            // The one delivery in flight waits this long between tries:
            // the queue stays full meanwhile.
            first_backoff: Duration::from_secs(30),
            ..NotifyConfig::default()
        };
        let notifier = Notifier::start(config, store.clone(), Masker::default()).unwrap();
        let started = std::time::Instant::now();
        for i in 0..20 {
            let mut rec = record(WriteStatus::Held, None);
            rec.id = format!("w_{i}");
            notifier.offer("write", &rec);
            // Let the task take the first one off the queue.
            tokio::task::yield_now().await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "offering must not wait"
        );
        let dropped = trail_until(&store, "notify.dropped").await;
        let count: u64 = dropped
            .iter()
            .map(|e| e.body["count"].as_u64().unwrap())
            .sum();
        // One in flight, one waiting for a delivery slot and one in the
        // queue at most: the rest were dropped, each one listed.
        assert!((17..=19).contains(&count), "{count}");
        let listed: usize = dropped
            .iter()
            .map(|e| e.body["writes"].as_array().unwrap().len())
            .sum();
        assert_eq!(listed as u64, count);
        assert_eq!(dropped[0].body["writes"][0]["event"], "write.held");
    }

    #[tokio::test]
    async fn a_hold_about_to_expire_is_announced_once() {
        use crate::store::{AuditStore, CatalogStore};
        let w = crate::testing::world();
        let add = recourse_core::Catalog {
            resources: vec![crate::testing::resource("fake:cust", "customer")],
            edges: Vec::new(),
        };
        w.store.upsert_catalog(&add, true, None).await.unwrap();
        let config = NotifyConfig {
            webhooks: vec![nowhere()],
            attempts: 1,
            expiry_lead: chrono::Duration::hours(1),
            ..NotifyConfig::default()
        };
        let gate = crate::Gate::with_clock(
            w.store.clone(),
            vec![w.fake.clone()],
            crate::GateConfig::default(),
            w.clock.clone(),
        )
        .with_notifications(config)
        .unwrap();
        let body = json!({"intent": "x", "action": {"connector": "fake", "target": "cust"}});
        let agent = crate::testing::who("bot", recourse_client::Role::Agent);
        let held = gate.submit(&agent, body).await.unwrap().0;
        assert_eq!(held.status, WriteStatus::Held);
        async fn expiring(store: &crate::store::MemoryStore) -> usize {
            store
                .audit(0, 10_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == EXPIRING)
                .count()
        }
        gate.sweep().await.unwrap();
        assert_eq!(expiring(&w.store).await, 0, "a week away");
        w.clock
            .advance(chrono::Duration::days(7) - chrono::Duration::minutes(30));
        gate.sweep().await.unwrap();
        gate.sweep().await.unwrap();
        assert_eq!(expiring(&w.store).await, 1);
        // Both messages were tried, and their failure recorded.
        let gave_up = trail_until(&w.store, "notify.gave_up").await;
        let mut events: Vec<_> = Vec::new();
        for _ in 0..100 {
            events = w
                .store
                .audit(0, 10_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == "notify.gave_up")
                .map(|e| e.body["event"].as_str().unwrap().to_string())
                .collect();
            if events.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        events.sort();
        assert_eq!(events, ["write.expiring", "write.held"], "{gave_up:?}");
        assert_eq!(gave_up[0].body["attempts"], 1);
        assert_eq!(gave_up[0].write_id.as_deref(), Some(held.id.as_str()));
    }

    #[test]
    fn a_config_prints_no_webhook_path_and_no_secret() {
        let config = NotifyConfig {
            webhooks: vec![reqwest::Url::parse(
                "https://hooks.slack.com/services/T000/B000/XXXXSECRETPATH",
            )
            .unwrap()],
            secret: Some(b"topsecret".to_vec()),
            ..NotifyConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("hooks.slack.com"), "{shown}");
        assert!(
            !shown.contains("XXXXSECRETPATH") && !shown.contains("topsecret"),
            "{shown}"
        );
    }
}
