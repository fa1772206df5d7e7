//! Native desktop notifications for writes that wait for a person.
//!
//! [`HeldNotices`] is the decision, with no Tauri in it: the first time the
//! event stream says a write id is `held`, it is announced; the same id
//! again (a repeat, a reconnect, a later transition back to held) is not. A
//! burst (an agent submitting hundreds of writes) is not a flood of bubbles:
//! at most [`BURST`] notices per [`WINDOW`], then one summary of how many
//! more were held when the window closes.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use recourse_client::{GateEvent, WriteStatus};

/// Notices shown one by one per window.
pub const BURST: u32 = 3;
/// The window the burst limit counts in.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Ids remembered before the oldest memory is dropped (a long-running
/// console must not grow without bound).
const REMEMBER: usize = 100_000;

/// What to do about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Show "Write held for review" for this write.
    Held { write_id: String },
    /// Over the burst limit: say nothing now, and call
    /// [`HeldNotices::summary`] after this long (returned once per window).
    SummaryAfter(Duration),
}

#[derive(Debug, Default)]
pub struct HeldNotices {
    seen: HashSet<String>,
    window_start: Option<Instant>,
    shown: u32,
    suppressed: u32,
    summary_due: bool,
}

impl HeldNotices {
    /// Decides about one event from the gate; `None` means nothing to show.
    pub fn on_event(&mut self, event: &GateEvent, now: Instant) -> Option<Notice> {
        if event.kind != "write" || event.status != Some(WriteStatus::Held) {
            return None;
        }
        let id = event.write_id.as_deref()?;
        if self.seen.contains(id) {
            return None;
        }
        if self.seen.len() >= REMEMBER {
            self.seen.clear();
        }
        self.seen.insert(id.to_string());

        let start = match self.window_start {
            Some(s) if now.duration_since(s) < WINDOW => s,
            _ => {
                // A new window; a summary still pending is shown by its timer.
                self.window_start = Some(now);
                self.shown = 0;
                now
            }
        };
        if self.shown < BURST {
            self.shown += 1;
            return Some(Notice::Held {
                write_id: id.to_string(),
            });
        }
        self.suppressed += 1;
        if self.summary_due {
            return None;
        }
        self.summary_due = true;
        Some(Notice::SummaryAfter(
            WINDOW.saturating_sub(now.duration_since(start)),
        ))
    }

    /// How many held writes went unannounced since the last summary (zero:
    /// show nothing). Starts a new window: the summary counts as a notice.
    pub fn summary(&mut self, now: Instant) -> u32 {
        let n = std::mem::take(&mut self.suppressed);
        self.summary_due = false;
        self.window_start = Some(now);
        self.shown = u32::from(n > 0);
        n
    }
}

/// The notification's title and body for one held write; `intent` when the
/// gate answered for it in time.
pub fn held_text(write_id: &str, intent: Option<&str>) -> (String, String) {
    let body = match intent.map(str::trim).filter(|s| !s.is_empty()) {
        Some(intent) => format!("{intent}\n{write_id}"),
        None => write_id.to_string(),
    };
    ("Write held for review".to_string(), body)
}

/// The summary notification after a burst.
pub fn summary_text(n: u32) -> (String, String) {
    let title = if n == 1 {
        "1 more write held for review".to_string()
    } else {
        format!("{n} more writes held for review")
    };
    (
        title,
        "Open the console's queue to review them.".to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, id: Option<&str>, status: Option<WriteStatus>) -> GateEvent {
        GateEvent {
            seq: 1,
            kind: kind.to_string(),
            write_id: id.map(str::to_string),
            status,
            at: chrono::Utc::now(),
        }
    }

    fn held(id: &str) -> GateEvent {
        ev("write", Some(id), Some(WriteStatus::Held))
    }

    fn shown(id: &str) -> Option<Notice> {
        Some(Notice::Held {
            write_id: id.to_string(),
        })
    }

    #[test]
    fn first_time_held_only() {
        let mut n = HeldNotices::default();
        let t = Instant::now();
        assert_eq!(n.on_event(&held("w1"), t), shown("w1"));
        // The same id again: a repeat, or a reconnect.
        assert_eq!(n.on_event(&held("w1"), t), None);
        // Other statuses, other kinds, no id: nothing.
        assert_eq!(
            n.on_event(&ev("write", Some("w2"), Some(WriteStatus::Approved)), t),
            None
        );
        assert_eq!(n.on_event(&ev("gate.frozen", None, None), t), None);
        assert_eq!(
            n.on_event(&ev("write", None, Some(WriteStatus::Held)), t),
            None
        );
        assert_eq!(
            n.on_event(&ev("gate.frozen", Some("w3"), Some(WriteStatus::Held)), t),
            None
        );
        // A write seen first in another status is still new when held.
        assert_eq!(n.on_event(&held("w2"), t), shown("w2"));
        assert_eq!(n.on_event(&held("w2"), t + WINDOW * 3), None);
    }

    #[test]
    fn a_burst_is_summarised_once_per_window() {
        let mut n = HeldNotices::default();
        let t = Instant::now();
        for i in 0..BURST {
            assert_eq!(
                n.on_event(&held(&format!("w{i}")), t),
                shown(&format!("w{i}"))
            );
        }
        let later = t + Duration::from_secs(4);
        assert_eq!(
            n.on_event(&held("x1"), later),
            Some(Notice::SummaryAfter(WINDOW - Duration::from_secs(4)))
        );
        for i in 2..=50 {
            assert_eq!(n.on_event(&held(&format!("x{i}")), later), None);
        }
        assert_eq!(n.summary(t + WINDOW), 50);
        // Nothing pending: an empty summary says nothing.
        assert_eq!(n.summary(t + WINDOW), 0);
        // A quiet window later, single holds are shown again.
        assert_eq!(n.on_event(&held("y"), t + WINDOW * 3), shown("y"));
    }

    #[test]
    fn texts() {
        assert_eq!(
            held_text("w1", Some(" Delete a file ")),
            (
                "Write held for review".to_string(),
                "Delete a file\nw1".to_string()
            )
        );
        assert_eq!(held_text("w1", Some("")).1, "w1");
        assert_eq!(held_text("w1", None).1, "w1");
        assert_eq!(summary_text(1).0, "1 more write held for review");
        assert_eq!(summary_text(7).0, "7 more writes held for review");
    }
}
