//! The event stream as a console uses it: every event carries its audit
//! `seq` as its id, and a client that reconnects with `Last-Event-ID` gets
//! what it missed first, in order, nothing twice.

use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{SseEvent, SseReader, TestGate};

fn fs_write(path: &std::path::Path) -> Value {
    json!({"intent": format!("write {}", path.display()),
           "action": {"connector": "fs", "op": "write", "path": path.to_str().unwrap(),
                      "content_b64": base64::engine::general_purpose::STANDARD.encode("x")}})
}

async fn submit(gate: &TestGate, body: &Value) -> String {
    let (s, b) = gate
        .raw(
            Method::POST,
            "/v1/writes",
            &gate.tokens.agent,
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["status"], "executed", "{b}");
    b["id"].as_str().unwrap().to_string()
}

fn executed(id: &str) -> impl Fn(&SseEvent) -> bool + '_ {
    move |e| e.data["write_id"] == id && e.data["status"] == "executed"
}

fn ids(events: &[SseEvent]) -> Vec<i64> {
    events
        .iter()
        .map(|e| {
            let id: i64 = e.id.as_deref().unwrap().parse().unwrap();
            assert_eq!(e.data["seq"], id, "the id is the event's seq: {e:?}");
            assert_eq!(e.kind, e.data["kind"].as_str().unwrap(), "{e:?}");
            id
        })
        .collect()
}

#[tokio::test]
async fn a_client_that_reconnects_with_last_event_id_misses_nothing_and_sees_nothing_twice() {
    let gate = TestGate::start(&[]);
    let admin = gate.tokens.admin.clone();
    let mut stream = SseReader::open(&gate.url, &admin, None).await;
    let a = submit(&gate, &fs_write(&gate.root.join("a.txt"))).await;
    let first = stream.until(Duration::from_secs(10), executed(&a)).await;
    let first_ids = ids(&first);
    assert!(first_ids.windows(2).all(|w| w[0] < w[1]), "{first_ids:?}");
    let statuses: Vec<&str> = first
        .iter()
        .map(|e| e.data["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"executing"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"executed"), "{statuses:?}");
    let last = *first_ids.last().unwrap();
    drop(stream);

    // Two writes while nobody listens.
    let b = submit(&gate, &fs_write(&gate.root.join("b.txt"))).await;
    let c = submit(&gate, &fs_write(&gate.root.join("c.txt"))).await;

    let mut again = SseReader::open(&gate.url, &admin, Some(&last.to_string())).await;
    let missed = again.until(Duration::from_secs(10), executed(&c)).await;
    let missed_ids = ids(&missed);
    assert!(
        missed_ids.iter().all(|id| *id > last),
        "nothing before the resume point again: {missed_ids:?} after {last}"
    );
    assert!(missed_ids.windows(2).all(|w| w[0] < w[1]), "{missed_ids:?}");
    let writes: Vec<&str> = missed
        .iter()
        .map(|e| e.data["write_id"].as_str().unwrap())
        .collect();
    assert!(!writes.contains(&a.as_str()), "{writes:?}");
    assert!(
        missed.iter().any(executed(&b)),
        "the write made while disconnected: {writes:?}"
    );
    // The resumed stream goes on live.
    let d = submit(&gate, &fs_write(&gate.root.join("d.txt"))).await;
    let live = again.until(Duration::from_secs(10), executed(&d)).await;
    assert!(ids(&live)[0] > *missed_ids.last().unwrap());

    // The same events, from the trail itself: one per status change.
    let audit = gate.client(&admin).audit().await.unwrap();
    let from_trail: Vec<i64> = audit
        .iter()
        .filter(|e| e.write_id.as_deref() == Some(b.as_str()) && e.body.get("to").is_some())
        .map(|e| e.seq)
        .collect();
    let streamed: Vec<i64> = missed
        .iter()
        .filter(|e| e.data["write_id"] == b.as_str())
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .filter(|seq| from_trail.contains(seq))
        .collect();
    assert_eq!(streamed, from_trail, "every move of the write, once");
}

#[tokio::test]
async fn a_bad_last_event_id_is_a_clear_400() {
    let gate = TestGate::start(&[]);
    for bad in ["abc", "-1", "1.5"] {
        let resp = reqwest::Client::new()
            .get(format!("{}/v1/events", gate.url))
            .bearer_auth(&gate.tokens.admin)
            .header("Last-Event-ID", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["field"], "Last-Event-ID", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("event id"),
            "{body}"
        );
    }
}
