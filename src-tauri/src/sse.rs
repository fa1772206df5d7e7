//! The gate's `/v1/events` stream, read on the Rust side and handed to an
//! [`EventSink`] (the Tauri host re-emits each as a typed event).

use std::time::Duration;

use futures::StreamExt;
use recourse_client::{GateClient, GateEvent};
use serde::{Deserialize, Serialize};

use crate::error::ConsoleError;

/// Whether the live stream of gate events is flowing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkState {
    Live,
    /// Lost; the console retries on its own.
    Down {
        message: String,
    },
}

/// Where events go: the Tauri app in the product, a vector in tests.
pub trait EventSink: Send + Sync + 'static {
    fn gate_event(&self, event: GateEvent);
    fn link(&self, state: LinkState);
}

/// Splits an SSE byte stream into `data` payloads. Keeps the partial event
/// between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: String,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds a chunk; returns the payloads of the events it completed.
    pub fn push(&mut self, chunk: &str) -> Vec<String> {
        self.buf.push_str(chunk);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=nl).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data
                    .push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
            }
            // `event:`, `id:`, `retry:` and `:` comments carry nothing we use.
        }
        out
    }
}

/// Reads the stream until it ends or fails, then retries with backoff, for
/// as long as the task lives (it is aborted on disconnect).
pub async fn follow(client: GateClient, sink: std::sync::Arc<dyn EventSink>) {
    let mut backoff = Duration::from_millis(500);
    // Where a reconnect resumes: the gate sends what was missed first.
    let mut last: Option<i64> = None;
    loop {
        match client.events_after(last).await.map_err(ConsoleError::from) {
            Ok(resp) => {
                sink.link(LinkState::Live);
                backoff = Duration::from_millis(500);
                let mut parser = SseParser::default();
                let mut stream = resp.bytes_stream();
                let mut ended = "the gate closed the event stream".to_string();
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(bytes) => {
                            for data in parser.push(&String::from_utf8_lossy(&bytes)) {
                                if let Ok(ev) = serde_json::from_str::<GateEvent>(&data) {
                                    if ev.seq > 0 {
                                        last = Some(ev.seq);
                                    }
                                    sink.gate_event(ev);
                                }
                            }
                        }
                        Err(e) => {
                            ended = format!("event stream broke: {e}");
                            break;
                        }
                    }
                }
                sink.link(LinkState::Down { message: ended });
            }
            Err(e) => sink.link(LinkState::Down {
                message: e.to_string(),
            }),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.push(": keep-alive\n\nevent: write\nda").is_empty());
        let got = p.push("ta: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\n");
        assert_eq!(got, vec!["{\"a\":1}".to_string(), "x\ny".to_string()]);
    }
}
