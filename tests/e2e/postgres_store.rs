//! Several gates on one PostgreSQL store, as real processes on a fresh
//! database of the shared server at 127.0.0.1:5432 (dropped at the end;
//! nothing else on that server is touched, and it is never stopped). When
//! nothing answers there the cases skip, saying so, unless
//! `RECOURSE_REQUIRE_PG=1`, and then they fail.
//!
//! Not covered here: the database going away while gates run (that needs a
//! private cluster the test can stop, a later step); the case of a database
//! unreachable from the start is.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use recourse_client::{WriteRecord, WriteStatus};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{codes, psql, recourse, SseReader, TestGate, Tokens};

/// A database of its own on the shared server, dropped with this.
pub(crate) struct FreshDb {
    name: String,
}

impl FreshDb {
    /// `None` (said on stderr) when PostgreSQL is not reachable and not
    /// required.
    pub(crate) fn create() -> Option<FreshDb> {
        let up = Command::new("pg_isready")
            .args(["-q", "-h", "127.0.0.1", "-p", "5432"])
            .status()
            .is_ok_and(|s| s.success());
        if !up {
            assert!(
                std::env::var("RECOURSE_REQUIRE_PG").as_deref() != Ok("1"),
                "PostgreSQL is required (RECOURSE_REQUIRE_PG=1) but not reachable at 127.0.0.1:5432"
            );
            eprintln!("SKIPPED: PostgreSQL not reachable at 127.0.0.1:5432");
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("recourse_t_e2e_{}_{nanos}", std::process::id());
        psql(&format!("CREATE DATABASE {name}"));
        Some(FreshDb { name })
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qAtc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// Generous limits: the cases below send hundreds of requests per token.
const LIMITS: [&str; 4] = ["--rate-limit", "10000", "--rate-burst", "10000"];

/// Two gates on one machine and one database, sharing tokens, one fs root
/// (whose `customer` folder a risk officer marked customer-borne, so every
/// write there is held) and one vault (so either can roll back what the
/// other ran). The vault's directory lives as long as the returned guard.
async fn two_gates(db: &FreshDb) -> (TestGate, TestGate, std::path::PathBuf, tempfile::TempDir) {
    let vault = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = LIMITS.to_vec();
    // One vault, so one id: either gate restores what the other captured.
    args.extend([
        "--vault",
        vault.path().to_str().unwrap(),
        "--gate-id",
        "host-1",
    ]);
    let a = TestGate::start_shared(&db.url(), None, &args);
    let b = TestGate::start_shared(&db.url(), Some(&a), &args);
    let dir = a.root.join("customer");
    std::fs::create_dir_all(&dir).unwrap();
    let catalog =
        json!({"resources": [{"id": format!("fs:{}", dir.display()), "bearer": "customer"}]});
    let (s, body) = a
        .raw(
            Method::POST,
            "/v1/catalog",
            &a.tokens.risk,
            Some(catalog.to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    (a, b, dir, vault)
}

fn fs_write(path: &Path, content: &str) -> Value {
    json!({"intent": format!("write {}", path.display()),
           "action": {"connector": "fs", "op": "write", "path": path.to_str().unwrap(),
                      "content_b64": base64::engine::general_purpose::STANDARD.encode(content)}})
}

/// How often the trail records `action` for write `id`, read through `gate`.
async fn entries_of(gate: &TestGate, id: &str, action: &str) -> usize {
    let client = gate.client(&gate.tokens.admin);
    let (mut after, mut n) = (0, 0);
    loop {
        let page = client.audit_after(after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        n += page
            .iter()
            .filter(|e| e.write_id.as_deref() == Some(id) && e.action == action)
            .count();
    }
    n
}

async fn assert_chain_verifies_on(gates: &[&TestGate], db: &FreshDb) {
    let mut heads = Vec::new();
    for g in gates {
        let v = g.client(&g.tokens.admin).verify_audit().await.unwrap();
        assert!(v.ok, "{v:?}");
        heads.push(v.head);
    }
    heads.dedup();
    assert_eq!(heads.len(), 1, "every gate reads one chain");
    // And from the database itself, no gate needed.
    let out = recourse(&["audit", "verify", "--database-url", &db.url()]);
    assert!(
        out.status.success(),
        "audit verify --database-url: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
}

#[tokio::test]
async fn a_write_held_on_one_gate_is_approved_on_another_and_runs_once() {
    let Some(db) = FreshDb::create() else { return };
    let (a, b, dir, _vault) = two_gates(&db).await;
    let file = dir.join("note.txt");

    let held = a
        .client(&a.tokens.agent)
        .submit_json(&fs_write(&file, "hello"))
        .await
        .unwrap();
    assert_eq!(held.status, WriteStatus::Held, "{:?}", codes(&held));
    assert!(!file.exists(), "a held write runs nothing");

    // Gate B lists it and approves it; it runs there, once.
    let listed = b
        .client(&b.tokens.reviewer)
        .writes(Some(WriteStatus::Held))
        .await
        .unwrap();
    assert!(listed.iter().any(|w| w.id == held.id), "{listed:?}");
    let done = b
        .client(&b.tokens.reviewer)
        .approve(&held.id, Some("fine".into()))
        .await
        .unwrap();
    assert_eq!(done.status, WriteStatus::Executed, "{:?}", done.history);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hello");

    // Gate A sees the outcome; a second approval there changes nothing.
    let seen = a.client(&a.tokens.admin).write(&held.id).await.unwrap();
    assert_eq!(seen.status, WriteStatus::Executed);
    let again = a
        .client(&a.tokens.reviewer2)
        .approve(&held.id, Some("me too".into()))
        .await
        .unwrap_err();
    assert_eq!(again.status(), Some(409), "{again}");
    assert_eq!(entries_of(&a, &held.id, "write.executing").await, 1);
    assert_eq!(entries_of(&a, &held.id, "write.executed").await, 1);

    // Gate A rolls back what gate B ran (the vault is shared).
    let back = a
        .client(&a.tokens.incident)
        .rollback(&held.id, "not wanted", false)
        .await
        .unwrap();
    assert_eq!(back.status, WriteStatus::RolledBack, "{:?}", back.rollback);
    assert!(
        !file.exists(),
        "the rollback removed the file the write made"
    );
    assert_chain_verifies_on(&[&a, &b], &db).await;
}

/// A console connected to one gate sees a write submitted on another, and
/// resumes on either gate where it left off: event ids are the one trail's.
#[tokio::test]
async fn a_change_on_one_gate_reaches_the_event_streams_of_every_gate() {
    let Some(db) = FreshDb::create() else { return };
    let (a, b, dir, _vault) = two_gates(&db).await;
    let mut on_b = SseReader::open(&b.url, &b.tokens.admin, None).await;
    let started = std::time::Instant::now();
    let held = a
        .client(&a.tokens.agent)
        .submit_json(&fs_write(&dir.join("seen.txt"), "x"))
        .await
        .unwrap();
    assert_eq!(held.status, WriteStatus::Held);
    // Well inside the feed's poll period when NOTIFY works; at worst one
    // poll (1 s) later when it does not. Either way it arrives.
    let seen = on_b
        .until(std::time::Duration::from_secs(10), |e| {
            e.data["write_id"] == held.id.as_str() && e.data["status"] == "held"
        })
        .await;
    eprintln!(
        "held on gate A, streamed by gate B after {:?}",
        started.elapsed()
    );
    let resume_at = seen.last().unwrap().id.clone().unwrap();
    drop(on_b);

    // Approved on gate B while nobody listens; resumed on gate A.
    b.client(&b.tokens.reviewer)
        .approve(&held.id, Some("fine".into()))
        .await
        .unwrap();
    let mut on_a = SseReader::open(&a.url, &a.tokens.admin, Some(&resume_at)).await;
    let missed = on_a
        .until(std::time::Duration::from_secs(10), |e| {
            e.data["write_id"] == held.id.as_str() && e.data["status"] == "executed"
        })
        .await;
    let statuses: Vec<&str> = missed
        .iter()
        .map(|e| e.data["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"approved"), "{statuses:?}");
    assert!(!statuses.contains(&"held"), "nothing twice: {statuses:?}");
}

#[tokio::test]
async fn a_hundred_held_writes_survive_killing_every_gate_and_each_runs_once() {
    let Some(db) = FreshDb::create() else { return };
    let (mut a, mut b, dir, _vault) = two_gates(&db).await;

    // 100 writes, submitted on both gates at once.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let gate = if i % 2 == 0 { &a } else { &b };
        let client = gate.client(&gate.tokens.agent);
        let proposal = fs_write(&dir.join(format!("f{i:03}.txt")), &format!("content {i}"));
        tasks.push(tokio::spawn(async move {
            client.submit_json(&proposal).await.unwrap()
        }));
    }
    let mut before: BTreeMap<String, (usize, Value)> = BTreeMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let rec: WriteRecord = t.await.unwrap();
        assert_eq!(rec.status, WriteStatus::Held, "{:?}", codes(&rec));
        before.insert(rec.id.clone(), (i, Value::Null));
    }
    for (id, (_, stored)) in before.iter_mut() {
        let (s, body) = a
            .raw(
                Method::GET,
                &format!("/v1/writes/{id}"),
                &a.tokens.admin,
                None,
            )
            .await;
        assert_eq!(s, 200, "{body}");
        *stored = body;
    }

    // Every gate dies at once, and comes back.
    a.kill();
    b.kill();
    a.spawn(&[]);
    b.spawn(&[]);

    // All 100 are back on either gate, exactly as they were, actions and
    // all.
    let held = b
        .client(&b.tokens.admin)
        .writes(Some(WriteStatus::Held))
        .await
        .unwrap();
    assert_eq!(held.len(), 100);
    for (id, (_, stored)) in &before {
        let (s, body) = b
            .raw(
                Method::GET,
                &format!("/v1/writes/{id}"),
                &b.tokens.admin,
                None,
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(&body, stored, "write {id} after the restart");
        // File contents are shown as a hash (docs/secrets.md); the full
        // action is sealed in the store, and the files written below, byte
        // for byte, show it came back whole.
        assert!(body["proposal"]["action"]["content_b64"]["sha256"].is_string());
    }

    // Each is approved on both gates at once: one approval wins, and the
    // write runs once.
    let mut tasks = Vec::new();
    for id in before.keys() {
        for (gate, token) in [(&a, &a.tokens.reviewer), (&b, &b.tokens.reviewer2)] {
            let client = gate.client(token);
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                client.approve(&id, Some("ok".into())).await
            }));
        }
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(rec) => {
                assert_eq!(rec.status, WriteStatus::Executed, "{:?}", rec.history);
                won += 1;
            }
            Err(e) => assert_eq!(e.status(), Some(409), "{e}"),
        }
    }
    assert_eq!(won, 100, "one approval per write wins");
    for (id, (i, _)) in &before {
        let rec = a.client(&a.tokens.admin).write(id).await.unwrap();
        assert_eq!(rec.status, WriteStatus::Executed);
        let path = dir.join(format!("f{i:03}.txt"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("content {i}")
        );
        assert_eq!(entries_of(&a, id, "write.executed").await, 1, "{id}");
        assert_eq!(entries_of(&a, id, "write.executing").await, 1, "{id}");
    }
    assert_chain_verifies_on(&[&a, &b], &db).await;
}

#[tokio::test]
async fn an_unreachable_database_answers_503_and_runs_nothing() {
    // A port where nothing listens (taken, then given back).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres:s3cret@127.0.0.1:{port}/nothing");

    // The commands that open the store directly fail, saying which flag,
    // never the password.
    for args in [
        vec![
            "token",
            "create",
            "--database-url",
            &url,
            "--name",
            "x",
            "--role",
            "agent",
        ],
        vec!["audit", "verify", "--database-url", &url],
    ] {
        let out = recourse(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains("--database-url postgres://…"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    // A gate started on it serves, and answers 503 to everything that
    // needs the store; nothing runs.
    let tokens = Tokens {
        agent: "rk_agent".into(),
        reviewer: "rk_reviewer".into(),
        reviewer2: "rk_reviewer2".into(),
        risk: "rk_risk".into(),
        incident: "rk_incident".into(),
        admin: "rk_admin".into(),
    };
    // A short store timeout: each request waits that long for a
    // connection that never comes.
    let gate = TestGate::start_shared_with(&url, tokens, &["--store-timeout-ms", "1000"]);
    let (s, body) = gate.raw(Method::GET, "/healthz", "", None).await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let file = gate.root.join("created.txt");
    let (s, body) = gate
        .raw(
            Method::POST,
            "/v1/writes",
            &gate.tokens.agent,
            Some(fs_write(&file, "x").to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("store is unavailable")),
        "{body}"
    );
    assert!(!body.to_string().contains("s3cret"), "{body}");
    assert!(!file.exists(), "nothing ran");
}

/// Observe mode is one mode for every gate on the store: switched by an
/// admin on one gate, it decides what the other does with a hold.
#[tokio::test]
async fn observe_mode_switched_on_one_gate_applies_on_the_other() {
    let Some(db) = FreshDb::create() else { return };
    let (a, b, dir, _vault) = two_gates(&db).await;
    let state = a
        .client(&a.tokens.admin)
        .set_mode(recourse_client::GateMode::Observe, "rollout")
        .await
        .unwrap();
    assert_eq!(state.mode, recourse_client::GateMode::Observe);
    assert_eq!(
        b.client(&b.tokens.reviewer).mode().await.unwrap().mode,
        recourse_client::GateMode::Observe
    );
    let file = dir.join("note.txt");
    let ran = b
        .client(&b.tokens.agent)
        .submit_json(&fs_write(&file, "hello"))
        .await
        .unwrap();
    assert_eq!(ran.status, WriteStatus::Executed, "{:?}", ran.history);
    assert!(ran.observed_hold.is_some(), "{:?}", codes(&ran));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hello");
    // Gate A rolls it back.
    let back = a
        .client(&a.tokens.incident)
        .rollback(&ran.id, "observed", false)
        .await
        .unwrap();
    assert_eq!(back.status, WriteStatus::RolledBack, "{:?}", back.rollback);
    assert!(!file.exists());
    assert_chain_verifies_on(&[&a, &b], &db).await;
}

/// A freeze acknowledged between a write's approval and its claim: gate B
/// records the approval and stops right there (a crash point, then
/// SIGKILL), gate A freezes. No gate begins the write: not B restarted, not
/// A's sweep once the write is theirs to take up (the store refuses the
/// claim of an approved write while frozen, in the claim's own
/// transaction). It waits approved, not held again, and runs once after
/// the resume.
#[tokio::test]
async fn a_freeze_between_approval_and_claim_stops_the_write_on_every_gate() {
    let Some(db) = FreshDb::create() else { return };
    let (a, mut b, dir, _vault) = two_gates(&db).await;
    let file = dir.join("frozen.txt");
    let held = a
        .client(&a.tokens.agent)
        .submit_json(&fs_write(&file, "not yet"))
        .await
        .unwrap();
    assert_eq!(held.status, WriteStatus::Held, "{:?}", codes(&held));

    b.kill();
    b.spawn_paused_at("gate.after.approve");
    let approving = {
        let client = b.client(&b.tokens.reviewer);
        let id = held.id.clone();
        tokio::spawn(async move { client.approve(&id, Some("fine".into())).await })
    };
    assert!(
        b.wait_for_crash_point("gate.after.approve", std::time::Duration::from_secs(20))
            .await,
        "gate B did not reach the point after the approval"
    );
    a.client(&a.tokens.incident)
        .freeze("incident on the file share")
        .await
        .unwrap();
    b.kill();
    let _ = approving.await;
    b.spawn(&[]);

    // Past the lease a write that just moved is left to its mover (30 s)
    // and a few sweeps of both gates (every 5 s).
    tokio::time::sleep(std::time::Duration::from_secs(42)).await;
    let waiting = a.client(&a.tokens.admin).write(&held.id).await.unwrap();
    assert_eq!(
        waiting.status,
        WriteStatus::Approved,
        "{:?}",
        waiting.history
    );
    assert!(!file.exists(), "nothing ran while frozen");
    assert_eq!(entries_of(&a, &held.id, "write.executing").await, 0);

    // Resumed: a sweep runs it, once.
    a.client(&a.tokens.incident).resume().await.unwrap();
    let start = std::time::Instant::now();
    loop {
        let rec = b.client(&b.tokens.admin).write(&held.id).await.unwrap();
        if rec.status == WriteStatus::Executed {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "not run after the resume: {:?}",
            rec.history
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not yet");
    assert_eq!(entries_of(&a, &held.id, "write.executing").await, 1);
    assert_eq!(entries_of(&a, &held.id, "write.executed").await, 1);
    assert_chain_verifies_on(&[&a, &b], &db).await;
}

/// An fs write's capture is in the vault of the gate that ran it, on its
/// machine: the write says which gate (`vault_gate`, the id `/healthz`
/// shows), and a gate with another vault and id refuses its rollback
/// naming that gate, changing nothing; the gate holding the vault rolls
/// it back.
#[tokio::test]
async fn an_fs_rollback_is_refused_by_a_gate_without_its_vault_and_names_the_gate_that_has_it() {
    let Some(db) = FreshDb::create() else { return };
    let (a, _b, dir, _vault) = two_gates(&db).await;
    // Gate C: same database and files, its own vault (a default one in its
    // data directory) and its own generated id.
    let c = TestGate::start_shared(&db.url(), Some(&a), &LIMITS);
    let (s, health) = c.raw(Method::GET, "/healthz", "", None).await;
    assert_eq!(s, 200, "{health}");
    let c_id = health["gate_id"].as_str().unwrap().to_string();
    assert!(c_id.starts_with("gate_"), "{health}");
    let (_, health) = a.raw(Method::GET, "/healthz", "", None).await;
    assert_eq!(health["gate_id"], "host-1", "{health}");

    let file = dir.join("local.txt");
    let held = a
        .client(&a.tokens.agent)
        .submit_json(&fs_write(&file, "here"))
        .await
        .unwrap();
    let ran = a
        .client(&a.tokens.reviewer)
        .approve(&held.id, Some("fine".into()))
        .await
        .unwrap();
    assert_eq!(ran.status, WriteStatus::Executed, "{:?}", ran.history);
    assert_eq!(ran.vault_gate.as_deref(), Some("host-1"));

    let refused = c
        .client(&c.tokens.incident)
        .rollback(&held.id, "not wanted", false)
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(409), "{refused}");
    let said = refused.to_string();
    assert!(said.contains("host-1") && said.contains(&c_id), "{said}");
    let still = c.client(&c.tokens.admin).write(&held.id).await.unwrap();
    assert_eq!(still.status, WriteStatus::Executed);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "here");
    assert_eq!(entries_of(&a, &held.id, "write.rolling_back").await, 0);

    let back = a
        .client(&a.tokens.incident)
        .rollback(&held.id, "not wanted", false)
        .await
        .unwrap();
    assert_eq!(back.status, WriteStatus::RolledBack, "{:?}", back.rollback);
    assert!(!file.exists());
}

/// A catalog replaced through one gate is the catalog every gate decides
/// with, removals included: gate B's cache held the customer-borne folder
/// (its write there was held); gate A replaces the catalog without it, and
/// B's next write there runs. B's plan, made before, said so.
#[tokio::test]
async fn a_catalog_replaced_on_one_gate_is_the_catalog_of_every_gate() {
    let Some(db) = FreshDb::create() else { return };
    let (a, b, dir, _vault) = two_gates(&db).await;
    let held = b
        .client(&b.tokens.agent)
        .submit_json(&fs_write(&dir.join("a.txt"), "a"))
        .await
        .unwrap();
    assert_eq!(held.status, WriteStatus::Held, "{:?}", codes(&held));
    let mut file = a.client(&a.tokens.risk).catalog().await.unwrap();
    let folder = format!("fs:{}", dir.display());
    file.resources.retain(|r| r.id != folder);
    let req = recourse_client::CatalogReplacement {
        catalog: file.clone(),
        expect_version: None,
        recent: None,
        reason: None,
    };
    let plan = b.client(&b.tokens.risk).plan_catalog(&req).await.unwrap();
    assert_eq!(plan.diff.resources_removed.len(), 1);
    assert_eq!(plan.writes.len(), 1, "{plan:?}");
    assert_eq!(plan.writes[0].id, held.id);
    assert_eq!(plan.writes[0].after, recourse_core::Verdict::Proceed);
    let done = a
        .client(&a.tokens.risk)
        .replace_catalog(&recourse_client::CatalogReplacement {
            expect_version: Some(plan.version),
            ..req
        })
        .await
        .unwrap();
    assert_eq!(done.version, plan.version + 1);
    let ran = b
        .client(&b.tokens.agent)
        .submit_json(&fs_write(&dir.join("b.txt"), "b"))
        .await
        .unwrap();
    assert_eq!(ran.status, WriteStatus::Executed, "{:?}", codes(&ran));
    let seen = b.client(&b.tokens.risk).catalog().await.unwrap();
    assert!(seen.resources.iter().all(|r| r.id != folder));
    assert_chain_verifies_on(&[&a, &b], &db).await;
}
