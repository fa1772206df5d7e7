//! Three gates on one PostgreSQL database, under load and SIGKILL (issue
//! 13): concurrent clients submit fs writes (idempotency keys repeated),
//! approve held ones on two gates at once, roll executed ones back; an
//! incident lead freezes and resumes in the middle; a random gate is
//! SIGKILLed and restarted every few seconds. At the end every gate is
//! restarted and left to settle, and a checker reading the audit trail,
//! the writes and the files fails the run on: an acknowledged write lost,
//! a write begun or executed twice, a rollback applied twice, a broken or
//! forked chain, an execution begun while frozen, a write left in flight.
//! The checker is shown to fail on a seeded duplicate execution.
//!
//! `multi_gate_soak_ci` is the short fixed-seed run CI does (about a
//! minute); `multi_gate_soak` is the long one (`#[ignore]`,
//! `bash scripts/multi_gate_soak.sh [SECONDS] [SEED]`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use recourse_client::{AuditEntry, GateClient, WriteStatus, WriteSummary};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestGate;
use crate::postgres_store::FreshDb;

/// xorshift64*: the run is replayable from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What a client was told, and what it asked for.
#[derive(Default)]
struct Told {
    /// Write ids a submission was acknowledged with (a 2xx answer).
    acknowledged: BTreeSet<String>,
    /// The file each write writes, and its content.
    files: BTreeMap<String, (PathBuf, String)>,
    /// Requests sent (submissions, approvals, rollbacks), answered or not.
    ops: u64,
}

/// The checker: every violation of the invariants found in the
/// trail (oldest first), the writes as stored and what clients were told.
pub(crate) fn check(
    trail: &[AuditEntry],
    writes: &[WriteSummary],
    acknowledged: &BTreeSet<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    // The chain: contiguous, each entry after the one before it.
    for pair in trail.windows(2) {
        if pair[1].seq != pair[0].seq + 1 || pair[1].prev_hash != pair[0].hash {
            out.push(format!(
                "broken or forked chain between entries {} and {}",
                pair[0].seq, pair[1].seq
            ));
        }
    }
    let stored: BTreeMap<&str, WriteStatus> =
        writes.iter().map(|w| (w.id.as_str(), w.status)).collect();
    for id in acknowledged {
        if !stored.contains_key(id.as_str()) {
            out.push(format!("acknowledged write {id} lost"));
        }
    }
    let mut begun: BTreeMap<&str, usize> = BTreeMap::new();
    let mut executed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rolled_back: BTreeMap<&str, usize> = BTreeMap::new();
    let mut frozen = false;
    for e in trail {
        let id = e.write_id.as_deref().unwrap_or_default();
        let to = e.body.get("to").and_then(Value::as_str);
        let starts = match e.action.as_str() {
            "write.submitted" => e.body.get("status").and_then(Value::as_str) == Some("executing"),
            "write.executing" => true,
            _ => false,
        };
        match e.action.as_str() {
            "gate.frozen" => frozen = true,
            "gate.resumed" => frozen = false,
            "write.executed" if e.body.get("from").and_then(Value::as_str) == Some("executing") => {
                *executed.entry(id).or_default() += 1;
            }
            "write.rollback_result" if to == Some("rolled_back") => {
                *rolled_back.entry(id).or_default() += 1;
            }
            _ => {}
        }
        if starts {
            *begun.entry(id).or_default() += 1;
            if frozen {
                out.push(format!(
                    "write {id} began executing while frozen (entry {})",
                    e.seq
                ));
            }
        }
    }
    for (what, counts) in [
        ("began executing", &begun),
        ("executed", &executed),
        ("rolled back", &rolled_back),
    ] {
        for (id, n) in counts {
            if *n > 1 {
                out.push(format!("write {id} {what} {n} times"));
            }
        }
    }
    for w in writes {
        if w.status.in_flight() {
            out.push(format!("write {} left {}", w.id, w.status.as_str()));
        }
    }
    out
}

fn fs_write(path: &std::path::Path, content: &str, key: &str) -> Value {
    json!({"intent": format!("write {}", path.display()), "idempotency_key": key,
           "action": {"connector": "fs", "op": "write", "path": path.to_str().unwrap(),
                      "content_b64": base64::engine::general_purpose::STANDARD.encode(content)}})
}

/// One run: `secs` of load from `seed`; returns the operations sent.
async fn run(secs: u64, seed: u64) -> u64 {
    let Some(db) = FreshDb::create() else {
        return 0;
    };
    let vault = tempfile::tempdir().unwrap();
    let args = [
        "--rate-limit",
        "100000",
        "--rate-burst",
        "100000",
        "--vault",
        vault.path().to_str().unwrap(),
        "--gate-id",
        "host-1",
    ];
    let first = TestGate::start_shared(&db.url(), None, &args);
    let mut gates = vec![first];
    for _ in 0..2 {
        let g = TestGate::start_shared(&db.url(), Some(&gates[0]), &args);
        gates.push(g);
    }
    let tokens = gates[0].tokens.clone();
    let root = gates[0].root.clone();
    let held_dir = root.join("customer");
    let plain_dir = root.join("plain");
    std::fs::create_dir_all(&held_dir).unwrap();
    std::fs::create_dir_all(&plain_dir).unwrap();
    let catalog =
        json!({"resources": [{"id": format!("fs:{}", held_dir.display()), "bearer": "customer"}]});
    let (s, body) = gates[0]
        .raw(
            Method::POST,
            "/v1/catalog",
            &tokens.risk,
            Some(catalog.to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 200, "{body}");

    let urls = Arc::new(Mutex::new(
        gates.iter().map(|g| g.url.clone()).collect::<Vec<_>>(),
    ));
    let told = Arc::new(Mutex::new(Told::default()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let url_of = |urls: &Arc<Mutex<Vec<String>>>, i: u64| {
        let u = urls.lock().unwrap();
        u[(i as usize) % u.len()].clone()
    };

    let mut clients = Vec::new();
    for c in 0..6u64 {
        let (urls, told, tokens) = (urls.clone(), told.clone(), tokens.clone());
        let (held_dir, plain_dir) = (held_dir.clone(), plain_dir.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed ^ (c + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut held: Vec<String> = Vec::new();
            let mut executed: Vec<String> = Vec::new();
            // Keys repeat (a submission retried) but the pool grows with
            // the run, so a long run keeps making new writes.
            let keys = (secs * 40).max(400);
            let sent = |n: u64| told.lock().unwrap().ops += n;
            while Instant::now() < deadline {
                match rng.below(10) {
                    // Submit, from a small pool of keys: repeats return the
                    // write stored.
                    0..=5 => {
                        let k = rng.below(keys);
                        sent(1);
                        let is_held = k.is_multiple_of(2);
                        let dir = if is_held { &held_dir } else { &plain_dir };
                        let path = dir.join(format!("c{c}-k{k}.txt"));
                        let content = format!("client {c} key {k}");
                        let client =
                            GateClient::new(url_of(&urls, rng.next()), tokens.agent.clone());
                        let key = format!("c{c}-k{k}");
                        if let Ok(rec) = client.submit_json(&fs_write(&path, &content, &key)).await
                        {
                            let mut t = told.lock().unwrap();
                            t.acknowledged.insert(rec.id.clone());
                            t.files.insert(rec.id.clone(), (path, content));
                            drop(t);
                            match rec.status {
                                WriteStatus::Held => held.push(rec.id),
                                WriteStatus::Executed => executed.push(rec.id),
                                _ => {}
                            }
                        }
                    }
                    // Approve on two gates at once.
                    6..=7 if !held.is_empty() => {
                        let id = held.swap_remove(rng.below(held.len() as u64) as usize);
                        let one =
                            GateClient::new(url_of(&urls, rng.next()), tokens.reviewer.clone());
                        let two =
                            GateClient::new(url_of(&urls, rng.next()), tokens.reviewer2.clone());
                        sent(2);
                        let (a, b) = tokio::join!(
                            one.approve(&id, Some("ok".into())),
                            two.approve(&id, Some("ok".into()))
                        );
                        if [a, b]
                            .into_iter()
                            .flatten()
                            .any(|r| r.status == WriteStatus::Executed)
                        {
                            executed.push(id);
                        }
                    }
                    // Roll back.
                    8 if !executed.is_empty() => {
                        let id = executed.swap_remove(rng.below(executed.len() as u64) as usize);
                        let client =
                            GateClient::new(url_of(&urls, rng.next()), tokens.incident.clone());
                        sent(1);
                        let _ = client.rollback(&id, "soak", false).await;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }

    // SIGKILL a random gate every 2-4 s; freeze for 2 s in the middle.
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let (mut froze, mut kills) = (false, 0);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2000 + rng.below(2000))).await;
        if !froze && started.elapsed() >= Duration::from_secs(secs / 2) {
            froze = true;
            let lead = GateClient::new(url_of(&urls, rng.next()), tokens.incident.clone());
            if lead.freeze("soak: freeze in the middle").await.is_ok() {
                tokio::time::sleep(Duration::from_secs(2)).await;
                // A resume must get through: another gate if one is down.
                for i in 0..20u64 {
                    let lead = GateClient::new(url_of(&urls, i), tokens.incident.clone());
                    if lead.resume().await.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            continue;
        }
        let i = rng.below(gates.len() as u64) as usize;
        gates[i].kill();
        gates[i].spawn(&[]);
        urls.lock().unwrap()[i] = gates[i].url.clone();
        kills += 1;
    }
    for c in clients {
        c.await.unwrap();
    }

    // Every gate restarted, then left to settle: a lapsed claim is taken
    // up after its lease (30 s) by a sweep (every 5 s).
    for g in gates.iter_mut() {
        g.kill();
        g.spawn(&[]);
    }
    let admin = gates[0].client(&gates[0].tokens.admin);
    let settle_by = Instant::now() + Duration::from_secs(50);
    let writes = loop {
        let writes = admin.writes(None).await.unwrap();
        if !writes.iter().any(|w| w.status.in_flight()) || Instant::now() > settle_by {
            break writes;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut trail = Vec::new();
    loop {
        let after = trail.last().map_or(0, |e: &AuditEntry| e.seq);
        let page = admin.audit_after(after, 1000).await.unwrap();
        if page.is_empty() {
            break;
        }
        trail.extend(page);
    }
    let told = told.lock().unwrap();
    let mut violations = check(&trail, &writes, &told.acknowledged);
    // The files: an executed write's content is there; a rolled-back one
    // (each wrote a new file) left nothing.
    for w in &writes {
        let Some((path, content)) = told.files.get(&w.id) else {
            continue;
        };
        let on_disk = std::fs::read_to_string(path).ok();
        match w.status {
            WriteStatus::Executed if on_disk.as_deref() != Some(content.as_str()) => {
                violations.push(format!("executed write {} not on disk", w.id));
            }
            WriteStatus::RolledBack if on_disk.is_some() => {
                violations.push(format!("rolled-back write {} still on disk", w.id));
            }
            _ => {}
        }
    }
    let counts = writes.iter().fold(BTreeMap::new(), |mut m, w| {
        *m.entry(w.status.as_str()).or_insert(0) += 1;
        m
    });
    eprintln!(
        "multi-gate soak: seed {seed}, {secs} s, {} requests, {kills} gates killed, frozen: {froze}, {} writes {counts:?}, {} audit entries",
        told.ops,
        writes.len(),
        trail.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(
        froze && kills > 0,
        "the run was too short to kill and freeze"
    );
    let out = crate::harness::recourse(&["audit", "verify", "--database-url", &db.url()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The checker fails on a seeded duplicate execution.
    let ran = trail
        .iter()
        .find(|e| {
            e.action == "write.executed"
                && e.body.get("from").and_then(Value::as_str) == Some("executing")
        })
        .cloned();
    if let Some(mut again) = ran {
        let last = trail.last().unwrap();
        again.seq = last.seq + 1;
        again.prev_hash = last.hash.clone();
        trail.push(again);
        let found = check(&trail, &writes, &told.acknowledged);
        assert!(
            found.iter().any(|v| v.contains("executed 2 times")),
            "{found:?}"
        );
    } else {
        panic!("nothing executed: the soak did no work");
    }
    told.ops
}

/// The short fixed-seed run of CI: about a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_gate_soak_ci() {
    run(10, 0x5eed).await;
}

/// The long run: `RECOURSE_MULTI_SOAK_SECS` (default 600) and
/// `RECOURSE_MULTI_SOAK_SEED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the long multi-gate soak: scripts/multi_gate_soak.sh"]
async fn multi_gate_soak() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let ops = run(
        env("RECOURSE_MULTI_SOAK_SECS", 600),
        env("RECOURSE_MULTI_SOAK_SEED", 1),
    )
    .await;
    eprintln!("{ops} operations");
}

#[test]
fn the_checker_finds_each_kind_of_violation() {
    let entry = |seq: i64, prev: &str, action: &str, id: &str, body: Value| AuditEntry {
        seq,
        at: chrono::Utc::now(),
        actor: "t".into(),
        action: action.into(),
        write_id: Some(id.into()),
        body,
        prev_hash: prev.into(),
        hash: format!("h{seq}"),
    };
    let trail = vec![
        entry(1, "g", "write.submitted", "w1", json!({"status": "held"})),
        entry(2, "h1", "gate.frozen", "", json!({})),
        entry(
            3,
            "h2",
            "write.executing",
            "w1",
            json!({"from": "approved", "to": "executing"}),
        ),
        entry(4, "h3", "gate.resumed", "", json!({})),
        entry(
            5,
            "h4",
            "write.executed",
            "w1",
            json!({"from": "executing", "to": "executed"}),
        ),
        entry(
            6,
            "hX",
            "write.executed",
            "w1",
            json!({"from": "executing", "to": "executed"}),
        ),
    ];
    let writes: Vec<WriteSummary> = serde_json::from_value(json!([])).unwrap();
    let acknowledged: BTreeSet<String> = ["w1".to_string()].into();
    let found = check(&trail, &writes, &acknowledged);
    for needle in [
        "broken or forked chain between entries 5 and 6",
        "acknowledged write w1 lost",
        "w1 began executing while frozen",
        "w1 executed 2 times",
    ] {
        assert!(
            found.iter().any(|v| v.contains(needle)),
            "{needle}: {found:#?}"
        );
    }
}
