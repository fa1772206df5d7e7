//! What one caller, or one peer, may take from the gate: open connections,
//! time to send a request's headers, requests per second per token, and the
//! bytes a refused proposal may keep in the store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use recourse_core::Proposal;
use serde_json::json;

/// The limits `recourse serve` applies (its flags, with these defaults).
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Open connections above this are refused with a 503 at once, after
    /// closing the oldest connection that has not sent a byte yet, if any.
    pub max_connections: usize,
    /// Time to send a request's headers, counted from the connection's
    /// start or the end of its previous response (so also the idle timeout
    /// of a kept-alive connection).
    pub header_timeout: Duration,
    /// Requests per second per token, refilled continuously.
    pub rate_per_s: f64,
    /// Requests one token may make at once before the rate applies.
    pub burst: u32,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            rate_per_s: 50.0,
            burst: 100,
        }
    }
}

/// A token bucket per key (a token's name): `burst` requests at once, then
/// `rate_per_s`. Keys are few (one per token), so one map behind a lock.
#[derive(Debug)]
pub struct RateLimiter {
    rate_per_s: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate_per_s: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            rate_per_s: rate_per_s.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request for `key` at `now`; when none is left, the whole
    /// seconds until one is (at least 1).
    pub fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate_per_s).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) / self.rate_per_s;
            // Whole seconds, rounded up, for `Retry-After`.
            Err((wait.ceil() as u64).max(1))
        }
    }

    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }
}

/// Bytes of a refused proposal's action kept in the store; the rest is
/// summarised (its size and hash).
pub const REFUSED_ACTION_KEEP: usize = 4096;
/// Items of `touches` and of rollback steps a refused proposal keeps.
pub const REFUSED_LIST_KEEP: usize = 32;

/// A refused proposal as the store keeps it: nothing ever runs it, so only
/// what a person needs to see why it was refused is kept. Small proposals
/// stay whole; a large action keeps its `connector`, `op`, `path`,
/// `database`, `table`, `method` and `url` (each cut to 1 KiB), its size,
/// its SHA-256 and its first bytes, and says it was truncated.
pub fn bound_refused(mut proposal: Proposal) -> Proposal {
    let action_bytes = serde_json::to_vec(&proposal.action).unwrap_or_default();
    if action_bytes.len() > REFUSED_ACTION_KEEP {
        let mut kept = serde_json::Map::new();
        if let Some(obj) = proposal.action.as_object() {
            for key in [
                "connector",
                "op",
                "path",
                "to",
                "database",
                "table",
                "method",
                "url",
            ] {
                if let Some(v) = obj.get(key) {
                    let v = match v {
                        serde_json::Value::String(s) => json!(cut(s, 1024)),
                        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => v.clone(),
                        _ => continue,
                    };
                    kept.insert(key.to_string(), v);
                }
            }
        }
        let head = String::from_utf8_lossy(&action_bytes[..REFUSED_ACTION_KEEP / 4]).into_owned();
        kept.insert(
            "truncated".to_string(),
            json!({
                "original_bytes": action_bytes.len(),
                "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&action_bytes)),
                "head": cut(&head, REFUSED_ACTION_KEEP / 4),
                "note": "the gate keeps a refused proposal's action truncated",
            }),
        );
        proposal.action = serde_json::Value::Object(kept);
    }
    proposal.touches.truncate(REFUSED_LIST_KEEP);
    for t in &mut proposal.touches {
        *t = cut(t, 1024);
    }
    proposal.rollback.steps.truncate(REFUSED_LIST_KEEP);
    let steps_bytes = serde_json::to_vec(&proposal.rollback.steps)
        .map(|b| b.len())
        .unwrap_or(0);
    if steps_bytes > REFUSED_ACTION_KEEP {
        proposal.rollback.steps.clear();
    }
    proposal.intent = cut(&proposal.intent, REFUSED_ACTION_KEEP);
    proposal.agent = cut(&proposal.agent, 1024);
    proposal.idempotency_key = proposal.idempotency_key.map(|k| cut(&k, 1024));
    proposal
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_token_gets_its_burst_then_the_rate_with_a_retry_after() {
        let l = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at("a", t0).is_ok());
        }
        assert_eq!(l.check_at("a", t0), Err(1));
        // Another token has its own bucket.
        assert!(l.check_at("b", t0).is_ok());
        // Half a second refills one request at 2 per second.
        assert!(l.check_at("a", t0 + Duration::from_millis(500)).is_ok());
        assert!(l.check_at("a", t0 + Duration::from_millis(500)).is_err());
        // Never more than the burst, however long it waited.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(l.check_at("a", later).is_ok());
        }
        assert!(l.check_at("a", later).is_err());
        let slow = RateLimiter::new(0.1, 1);
        assert!(slow.check_at("a", t0).is_ok());
        assert_eq!(slow.check_at("a", t0), Err(10));
    }

    fn proposal(action: serde_json::Value) -> Proposal {
        serde_json::from_value(json!({"intent": "x", "action": action, "touches": ["fs:/r/a"]}))
            .unwrap()
    }

    #[test]
    fn a_small_refused_proposal_is_kept_whole() {
        let p = proposal(json!({"connector": "fs", "op": "delete", "path": "/r/a"}));
        assert_eq!(bound_refused(p.clone()), p);
    }

    #[test]
    fn a_huge_refused_proposal_keeps_its_action_names_size_and_hash() {
        let big = "A".repeat(7 * 1024 * 1024);
        let p =
            proposal(json!({"connector": "fs", "op": "write", "path": "/r/a", "content_b64": big}));
        let b = bound_refused(p);
        let stored = serde_json::to_vec(&b).unwrap().len();
        assert!(stored < 2 * REFUSED_ACTION_KEEP, "{stored} bytes");
        assert_eq!(b.action["connector"], "fs");
        assert_eq!(b.action["op"], "write");
        assert_eq!(b.action["path"], "/r/a");
        assert!(b.action.get("content_b64").is_none());
        let t = &b.action["truncated"];
        assert!(t["original_bytes"].as_u64().unwrap() > 7 * 1024 * 1024);
        assert_eq!(t["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(b.touches, vec!["fs:/r/a".to_string()]);
    }

    #[test]
    fn cutting_respects_characters() {
        assert_eq!(cut("héllo", 2), "h…");
        assert_eq!(cut("abc", 3), "abc");
    }
}
