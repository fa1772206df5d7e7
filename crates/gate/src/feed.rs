//! The event feed: what `GET /v1/events` streams, read from the audit trail.
//!
//! Every change of a write and every freeze is an audit entry, appended in
//! the transaction that makes the change, and the entry's `seq` orders them
//! across every gate sharing the store. So the trail *is* the event log:
//! each gate tails it and turns its entries into [`GateEvent`]s whose id is
//! the entry's `seq`. A change made through one gate reaches the streams of
//! all of them, and a client that reconnects (to any gate) with
//! `Last-Event-ID: N` is sent every event after `N` before the live ones,
//! with no gap and no repeat.
//!
//! The tail wakes when this gate appends (it is told), when the store says
//! another process appended (PostgreSQL's `LISTEN`/`NOTIFY`), and otherwise
//! once a [`POLL`]: a notification lost with a connection costs at most
//! that much latency, never an event.

use std::sync::Arc;
use std::time::Duration;

use recourse_client::{AuditEntry, GateEvent, WriteStatus};
use serde_json::Value;
use tokio::sync::{broadcast, Notify, OnceCell};

use crate::store::{Store, StoreError};

/// The longest a change waits to be streamed when no notification came.
pub const POLL: Duration = Duration::from_secs(1);

/// Entries read per query, when tailing and when catching a client up.
pub const PAGE: i64 = 512;

/// Live events buffered per stream before a slow one catches up from the
/// trail instead.
const BUFFER: usize = 1024;

/// The event an audit entry stands for, if any: `write` for every entry
/// that moves a write (its new status in `to`, or `status` at submission;
/// a refusal is `refused`), and `gate.frozen` / `gate.resumed` /
/// `gate.mode` (observe or enforce).
pub fn event_of(entry: &AuditEntry) -> Option<GateEvent> {
    let kind = entry.action.as_str();
    let (kind, write_id, status) = match kind {
        "gate.frozen" | "gate.resumed" | "gate.mode" => (kind, None, None),
        "write.refused" => ("write", entry.write_id.clone(), Some(WriteStatus::Refused)),
        _ if kind.starts_with("write.") => {
            let status = entry
                .body
                .get("to")
                .or_else(|| entry.body.get("status"))
                .cloned()
                .and_then(|s: Value| serde_json::from_value::<WriteStatus>(s).ok())?;
            ("write", Some(entry.write_id.clone()?), Some(status))
        }
        _ => return None,
    };
    Some(GateEvent {
        seq: entry.seq,
        kind: kind.to_string(),
        write_id,
        status,
        at: entry.at,
    })
}

/// One gate's tail of the trail, started by the first subscriber.
pub struct Feed {
    events: broadcast::Sender<GateEvent>,
    wake: Arc<Notify>,
    started: OnceCell<()>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            events: broadcast::channel(BUFFER).0,
            wake: Arc::new(Notify::new()),
            started: OnceCell::new(),
        }
    }
}

impl Feed {
    /// Something was appended here: tail now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The live events from now on, tailing the trail of `store`. The
    /// first call reads the trail's head and starts the tail from there
    /// (inside the caller's runtime), before it returns: whatever head a
    /// subscriber reads after this is at or past the tail's start, so no
    /// event after it is left out.
    pub async fn subscribe(
        &self,
        store: &Arc<dyn Store>,
    ) -> Result<broadcast::Receiver<GateEvent>, StoreError> {
        let rx = self.events.subscribe();
        self.started
            .get_or_try_init(|| async {
                let head = head(store.as_ref()).await?;
                tokio::spawn(tail(
                    store.clone(),
                    head,
                    self.events.clone(),
                    self.wake.clone(),
                ));
                Ok::<(), StoreError>(())
            })
            .await?;
        Ok(rx)
    }
}

/// The `seq` of the trail's newest entry (0 for an empty trail).
pub async fn head(store: &dyn Store) -> Result<i64, StoreError> {
    Ok(store
        .audit_newest(None, 1)
        .await?
        .first()
        .map_or(0, |e| e.seq))
}

/// Tails the trail after `cursor`, forever.
async fn tail(
    store: Arc<dyn Store>,
    mut cursor: i64,
    events: broadcast::Sender<GateEvent>,
    wake: Arc<Notify>,
) {
    let mut notified = store.audit_appended().await;
    loop {
        tokio::select! {
            () = wake.notified() => {}
            Some(()) = async {
                match notified.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {}
            () = tokio::time::sleep(POLL) => {}
        }
        match read_after(store.as_ref(), cursor, |e| {
            let _ = events.send(e);
        })
        .await
        {
            Ok(last) => cursor = last,
            // Read again at the next wake; nothing after `cursor` is lost.
            Err(e) => tracing::warn!(error = %e, "reading the audit trail for events"),
        }
    }
}

/// Every event after `cursor`, page by page, handed to `each` in order;
/// the `seq` of the last entry read (events or not).
pub async fn read_after(
    store: &dyn Store,
    mut cursor: i64,
    mut each: impl FnMut(GateEvent),
) -> Result<i64, StoreError> {
    loop {
        let page = store.audit(cursor, PAGE).await?;
        for entry in &page {
            cursor = entry.seq;
            if let Some(e) = event_of(entry) {
                each(e);
            }
        }
        if (page.len() as i64) < PAGE {
            return Ok(cursor);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;

    fn entry(seq: i64, action: &str, write: Option<&str>, body: Value) -> AuditEntry {
        AuditEntry {
            seq,
            at: Utc::now(),
            actor: "a".into(),
            action: action.into(),
            write_id: write.map(str::to_string),
            body,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn entries_that_move_a_write_or_the_gate_are_events() {
        let e = event_of(&entry(
            7,
            "write.approved",
            Some("w_1"),
            json!({"from": "held", "to": "approved"}),
        ))
        .unwrap();
        assert_eq!(
            (e.seq, e.kind.as_str(), e.write_id.as_deref(), e.status),
            (7, "write", Some("w_1"), Some(WriteStatus::Approved))
        );
        let e = event_of(&entry(
            8,
            "write.submitted",
            Some("w_2"),
            json!({"status": "held"}),
        ))
        .unwrap();
        assert_eq!(e.status, Some(WriteStatus::Held));
        let e = event_of(&entry(9, "write.refused", Some("w_3"), json!({}))).unwrap();
        assert_eq!(e.status, Some(WriteStatus::Refused));
        // A freeze the gate set for a write is still the gate's event.
        let e = event_of(&entry(
            10,
            "gate.frozen",
            Some("w_4"),
            json!({"frozen": true}),
        ))
        .unwrap();
        assert_eq!((e.kind.as_str(), e.write_id), ("gate.frozen", None));
        assert_eq!(
            event_of(&entry(11, "gate.resumed", None, json!({})))
                .unwrap()
                .kind,
            "gate.resumed"
        );
    }

    #[test]
    fn other_entries_are_not() {
        for (action, write, body) in [
            ("write.out_of_scope", None, json!({})),
            ("write.mismatch", Some("w"), json!({"why": "x"})),
            ("audit.checkpoint", None, json!({})),
            ("token.created", None, json!({})),
            ("write.approved", Some("w"), json!({"to": "no-such-status"})),
            ("write.approved", None, json!({"to": "approved"})),
        ] {
            assert!(
                event_of(&entry(1, action, write, body)).is_none(),
                "{action}"
            );
        }
    }
}
