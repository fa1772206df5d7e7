//! Audit fails closed: a gate whose store cannot record refuses, with a
//! 503 naming the cause, within a bounded time, and does nothing it could
//! not record. Vault promises to refuse what it cannot audit and was found
//! serving requests after its audit file was deleted; here each fault is
//! made for real under a running `recourse serve` (the embedded SQLite
//! store in its data directory; PostgreSQL where the case says so):
//!
//! - read-only: `chattr +i` on the store's files (root on ext4/xfs; the
//!   case skips, saying so, where that is refused);
//! - full: the data directory is a small tmpfs, filled up (skips where
//!   mounting is refused);
//! - deleted: the store's file unlinked (SQLite would go on writing into the
//!   deleted inode);
//! - replaced: another file (a copy with the same bytes) moved to the path;
//! - locked: another process's connection holds `BEGIN EXCLUSIVE`;
//! - hanging: the lock held while many requests arrive at once; and on
//!   PostgreSQL, `LOCK TABLE audit IN ACCESS EXCLUSIVE MODE` held in
//!   another session.
//!
//! Each case then clears the fault (or restarts the gate, where only that
//! can help) and checks that nothing was half done: no entry, no write, no
//! file from a refused request; the chain verifies; the same requests
//! succeed. The gate runs with `--store-timeout-ms 1000` so that the
//! bounded waits are short.
//!
//! And while the store works: every state-changing request (and every
//! refusal the gate decides) leaves exactly its audit entries, one of them
//! the request's own; reads, health checks and requests refused before
//! anything is decided (a bad token, a role that may not, a bad body, a
//! wrong status) leave none.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection as _;

use crate::harness::TestGate;
use crate::postgres_store::FreshDb;

/// The store timeout the gates here run with.
const STORE_TIMEOUT: Duration = Duration::from_millis(1000);

/// The longest a refused request may take: the batch ahead of it and its
/// own, each bounded by the store timeout, and some slack for a loaded
/// machine.
const BOUND: Duration = Duration::from_millis(4000);

fn flags() -> Vec<String> {
    vec![
        "--store-timeout-ms".into(),
        STORE_TIMEOUT.as_millis().to_string(),
        "--rate-limit".into(),
        "10000".into(),
        "--rate-burst".into(),
        "10000".into(),
    ]
}

fn fs_write(path: &Path, content: &str) -> Value {
    json!({"intent": format!("write {}", path.display()),
           "action": {"connector": "fs", "op": "write", "path": path.to_str().unwrap(),
                      "content_b64": base64::engine::general_purpose::STANDARD.encode(content)}})
}

/// One answer: status, body, `Retry-After`, and how long it took.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<String>,
    took: Duration,
}

/// Longer than any bound here: a gate that waits on its store for good
/// fails the case instead of hanging it.
const GIVE_UP: Duration = Duration::from_secs(30);

async fn send(
    gate: &TestGate,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Answer {
    let started = Instant::now();
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{}", gate.url, path))
        .timeout(GIVE_UP)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: no answer within {GIVE_UP:?}: {e}"));
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = resp.bytes().await.unwrap();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        retry_after,
        took: started.elapsed(),
    }
}

/// A gate, a folder whose writes are held (customer-borne), and one write
/// held there.
struct Scene {
    gate: TestGate,
    held: String,
    held_file: PathBuf,
}

async fn scene(gate: TestGate) -> Scene {
    let customer = gate.root.join("customer");
    std::fs::create_dir_all(&customer).unwrap();
    let catalog =
        json!({"resources": [{"id": format!("fs:{}", customer.display()), "bearer": "customer"}]});
    let a = send(
        &gate,
        Method::POST,
        "/v1/catalog",
        &gate.tokens.risk,
        Some(catalog),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let held_file = customer.join("held.txt");
    let a = send(
        &gate,
        Method::POST,
        "/v1/writes",
        &gate.tokens.agent,
        Some(fs_write(&held_file, "held")),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["status"], "held", "{}", a.body);
    let held = a.body["id"].as_str().unwrap().to_string();
    Scene {
        gate,
        held,
        held_file,
    }
}

/// What a refused request must not have changed.
struct Before {
    audit: usize,
    writes: usize,
    tokens: usize,
}

async fn before(s: &Scene) -> Before {
    let g = &s.gate;
    let tokens = send(g, Method::GET, "/v1/tokens", &g.tokens.admin, None).await;
    Before {
        audit: g.audit_len().await,
        writes: g.write_count().await,
        tokens: tokens.body.as_array().unwrap().len(),
    }
}

/// The files the refused requests would have made.
fn would_run(s: &Scene) -> PathBuf {
    s.gate.root.join("runs.txt")
}

fn outside(s: &Scene) -> PathBuf {
    s.gate.dir.path().join("outside.txt")
}

/// Every kind of state-changing request, tried while the store is at
/// fault: each a 503 `unavailable` whose message names `cause`, with
/// `Retry-After`, within [`BOUND`].
async fn each_change_refused(s: &Scene, cause: &str) {
    let g = &s.gate;
    let t = &g.tokens;
    let held = s.held.as_str();
    let tries: Vec<(&str, Method, String, &str, Option<Value>)> = vec![
        (
            "a write that would run",
            Method::POST,
            "/v1/writes".into(),
            &t.agent,
            Some(fs_write(&would_run(s), "ran")),
        ),
        (
            "a write the gate refuses (outside the roots)",
            Method::POST,
            "/v1/writes".into(),
            &t.agent,
            Some(fs_write(&outside(s), "outside")),
        ),
        (
            "approving the held write",
            Method::POST,
            format!("/v1/writes/{held}/approve"),
            &t.reviewer,
            Some(json!({"comment": "fine"})),
        ),
        (
            "rejecting the held write",
            Method::POST,
            format!("/v1/writes/{held}/reject"),
            &t.reviewer,
            Some(json!({"reason": "no"})),
        ),
        (
            "freezing the gate",
            Method::POST,
            "/v1/freeze".into(),
            &t.incident,
            Some(json!({"reason": "incident"})),
        ),
        (
            "creating a token",
            Method::POST,
            "/v1/tokens".into(),
            &t.admin,
            Some(json!({"name": "new-bot", "role": "agent"})),
        ),
    ];
    for (what, method, path, token, body) in tries {
        let a = send(g, method, &path, token, body).await;
        assert_eq!(a.status, 503, "{what}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "unavailable", "{what}: {}", a.body);
        let message = a.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(cause),
            "{what}: the message names the cause `{cause}`: {message}"
        );
        assert!(a.retry_after.is_some(), "{what}: Retry-After");
        assert!(a.took < BOUND, "{what}: answered in {:?}", a.took);
    }
    assert!(!would_run(s).exists(), "no write ran");
    assert!(!s.held_file.exists(), "the held write did not run");
}

/// After the fault: nothing of the refused requests is anywhere, the chain
/// verifies, and the same requests now succeed.
async fn nothing_half_done_and_answers_again(s: &Scene, b: &Before) {
    let g = &s.gate;
    assert_eq!(
        g.audit_len().await,
        b.audit,
        "no entry from a refused request"
    );
    assert_eq!(
        g.write_count().await,
        b.writes,
        "no write from a refused request"
    );
    let tokens = send(g, Method::GET, "/v1/tokens", &g.tokens.admin, None).await;
    assert_eq!(tokens.body.as_array().unwrap().len(), b.tokens);
    assert!(!would_run(s).exists());
    assert!(!outside(s).exists());
    let held = g.client(&g.tokens.admin).write(&s.held).await.unwrap();
    assert_eq!(held.status, recourse_client::WriteStatus::Held);
    assert!(held.approvals.is_empty(), "{:?}", held.approvals);
    assert!(
        !g.client(&g.tokens.admin)
            .freeze_state()
            .await
            .unwrap()
            .frozen
    );
    let v = g.client(&g.tokens.admin).verify_audit().await.unwrap();
    assert!(v.ok, "{v:?}");

    let a = send(
        g,
        Method::POST,
        "/v1/writes",
        &g.tokens.agent,
        Some(fs_write(&would_run(s), "ran")),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["status"], "executed", "{}", a.body);
    assert_eq!(std::fs::read_to_string(would_run(s)).unwrap(), "ran");
    let a = send(
        g,
        Method::POST,
        &format!("/v1/writes/{}/approve", s.held),
        &g.tokens.reviewer,
        Some(json!({"comment": "fine"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "executed", "{}", a.body);
    assert_eq!(std::fs::read_to_string(&s.held_file).unwrap(), "held");
    assert!(g.audit_len().await > b.audit);
    let v = g.client(&g.tokens.admin).verify_audit().await.unwrap();
    assert!(v.ok, "{v:?}");
}

/// Reads go on while the store cannot record (they change nothing).
async fn reads_answer(s: &Scene) {
    let g = &s.gate;
    for path in ["/v1/writes", "/v1/audit?limit=5"] {
        let a = send(g, Method::GET, path, &g.tokens.admin, None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        assert!(a.took < BOUND, "{path}: {:?}", a.took);
    }
}

async fn health(g: &TestGate) -> Answer {
    send(g, Method::GET, "/healthz", "", None).await
}

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd).args(args).output().unwrap()
}

/// The store's files that exist now.
fn store_files(data: &Path) -> Vec<PathBuf> {
    ["recourse.db", "recourse.db-wal", "recourse.db-shm"]
        .iter()
        .map(|f| data.join(f))
        .filter(|p| p.exists())
        .collect()
}

/// `chattr +i` on files, undone on drop (an immutable file cannot be
/// removed, not even by the temporary directory's cleanup).
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(files: Vec<PathBuf>) -> Option<Immutable> {
        let mut done = Immutable(Vec::new());
        for f in files {
            let out = run("chattr", &["+i", f.to_str().unwrap()]);
            if !out.status.success() {
                eprintln!(
                    "SKIPPED: `chattr +i` refused here ({}): the read-only case needs root on a file system with the immutable flag",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return None;
            }
            done.0.push(f);
        }
        Some(done)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = run("chattr", &["-i", f.to_str().unwrap()]);
        }
        self.0.clear();
    }
}

#[tokio::test]
async fn read_only_store_refuses_every_change_and_recovers() {
    let s = scene(TestGate::start(
        &flags().iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    let b = before(&s).await;
    let Some(lock) = Immutable::set(store_files(&s.gate.data_dir())) else {
        return;
    };
    each_change_refused(&s, "read-only").await;
    reads_answer(&s).await;
    drop(lock);
    nothing_half_done_and_answers_again(&s, &b).await;
}

/// A small tmpfs mounted on a directory, unmounted (and the directory
/// removed) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let out = run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                dir.to_str().unwrap(),
            ],
        );
        if !out.status.success() {
            eprintln!(
                "SKIPPED: mounting a tmpfs is refused here ({}): the full-store case needs it",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", self.0.to_str().unwrap()]);
    }
}

/// Fills the file system holding `dir` with one file; the file.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // The last bytes a chunk could not take.
    while f.write_all(&[0u8]).is_ok() {}
    path
}

#[tokio::test]
async fn full_store_refuses_every_change_and_recovers() {
    let vault = tempfile::tempdir().unwrap();
    let mut mounted = None;
    let mut args = flags();
    args.extend(["--vault".to_string(), vault.path().display().to_string()]);
    let gate = TestGate::start_prepared(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        |data| mounted = Some(Tmpfs::mount(data, "8m")),
    );
    let Some(Some(_mount)) = mounted else {
        return;
    };
    let s = scene(gate).await;
    let b = before(&s).await;
    let filler = fill(&s.gate.data_dir());
    each_change_refused(&s, "full").await;
    reads_answer(&s).await;
    std::fs::remove_file(&filler).unwrap();
    nothing_half_done_and_answers_again(&s, &b).await;
}

/// The descriptor through which the gate still holds its deleted store.
fn deleted_store_fd(pid: u32) -> PathBuf {
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let fd = entry.unwrap().path();
        if let Ok(target) = std::fs::read_link(&fd) {
            if target.to_string_lossy().ends_with("recourse.db (deleted)") {
                return fd;
            }
        }
    }
    panic!("the gate holds no deleted recourse.db");
}

#[tokio::test]
async fn deleted_store_refuses_every_change_until_restored_and_restarted() {
    let mut s = scene(TestGate::start(
        &flags().iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    let b = before(&s).await;
    let db = s.gate.data_dir().join("recourse.db");
    assert_eq!(health(&s.gate).await.status, 200);
    std::fs::remove_file(&db).unwrap();

    each_change_refused(&s, "deleted or replaced").await;
    let h = health(&s.gate).await;
    assert_eq!(h.status, 503, "health says so: {}", h.body);
    assert!(
        h.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("deleted or replaced")),
        "{}",
        h.body
    );

    // What an operator does: the file back from the running gate's own
    // descriptor, then a restart (the gate stays bound to the inode it
    // opened, so the copy is not taken up by the running process).
    let fd = deleted_store_fd(s.gate.pid().unwrap());
    std::fs::copy(&fd, &db).unwrap();
    assert_eq!(health(&s.gate).await.status, 503, "a copy is another file");
    s.gate.kill();
    s.gate.spawn(&[]);
    assert_eq!(health(&s.gate).await.status, 200);
    nothing_half_done_and_answers_again(&s, &b).await;
}

#[tokio::test]
async fn replaced_store_refuses_every_change_until_the_original_is_back() {
    let s = scene(TestGate::start(
        &flags().iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    let b = before(&s).await;
    let db = s.gate.data_dir().join("recourse.db");
    let aside = s.gate.dir.path().join("recourse.db.aside");
    // Same bytes, another file: a restore from a copy, or a copy someone
    // edited, put where the store was.
    std::fs::rename(&db, &aside).unwrap();
    std::fs::copy(&aside, &db).unwrap();

    each_change_refused(&s, "deleted or replaced").await;
    assert_eq!(health(&s.gate).await.status, 503);
    reads_answer(&s).await;

    std::fs::rename(&aside, &db).unwrap();
    assert_eq!(health(&s.gate).await.status, 200);
    nothing_half_done_and_answers_again(&s, &b).await;
}

/// Another process's connection to the store holding `BEGIN EXCLUSIVE`
/// (the test process is another process than the gate).
async fn lock_store(data: &Path) -> sqlx::SqliteConnection {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(data.join("recourse.db"));
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

async fn unlock_store(mut conn: sqlx::SqliteConnection) {
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn locked_store_refuses_every_change_within_the_timeout_and_recovers() {
    let s = scene(TestGate::start(
        &flags().iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    let b = before(&s).await;
    let lock = lock_store(&s.gate.data_dir()).await;
    each_change_refused(&s, "holds a lock").await;
    reads_answer(&s).await;
    unlock_store(lock).await;
    nothing_half_done_and_answers_again(&s, &b).await;
}

#[tokio::test]
async fn hanging_store_refuses_every_request_within_a_bound_never_waits_forever() {
    let s = scene(TestGate::start(
        &flags().iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    let b = before(&s).await;
    let lock = lock_store(&s.gate.data_dir()).await;
    // Many at once: each is answered within the bound, not one timeout
    // after every request queued before it.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (url, token) = (s.gate.url.clone(), s.gate.tokens.agent.clone());
        let body = fs_write(&s.gate.root.join(format!("hang-{i}.txt")), "x");
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let resp = reqwest::Client::new()
                .post(format!("{url}/v1/writes"))
                .timeout(GIVE_UP)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, body, t.elapsed())
        }));
    }
    // Meanwhile reads and health answer at once.
    reads_answer(&s).await;
    assert_eq!(health(&s.gate).await.status, 200);
    for t in tasks {
        let (status, body, took) = t.await.unwrap();
        assert_eq!(status, 503, "{body}");
        let m = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            m.contains("holds a lock") || m.contains("did not answer within"),
            "{m}"
        );
        assert!(took < BOUND, "answered in {took:?}");
    }
    assert!(started.elapsed() < BOUND, "all in {:?}", started.elapsed());
    for i in 0..16 {
        assert!(!s.gate.root.join(format!("hang-{i}.txt")).exists());
    }
    unlock_store(lock).await;
    nothing_half_done_and_answers_again(&s, &b).await;
}

/// The store locked between a write's capture and the record of it: the
/// write does not run (the target is untouched) while its record cannot be
/// written, and the durable record takes it up after a restart.
#[tokio::test]
async fn locked_store_between_capture_and_its_record_leaves_the_target_untouched() {
    let mut gate = TestGate::start(&flags().iter().map(String::as_str).collect::<Vec<_>>());
    gate.spawn_logged(&[("FAILPOINTS", "gate.before_capture_record=sleep(1500)")]);
    let target = gate.root.join("late.txt");
    let (url, token) = (gate.url.clone(), gate.tokens.agent.clone());
    let body = fs_write(&target, "late");
    let submit = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(format!("{url}/v1/writes"))
            .timeout(GIVE_UP)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json::<Value>().await.unwrap_or(Value::Null),
        )
    });
    // The write is stored (with its submission entry) and captured; the
    // store is locked before the capture's record.
    let deadline = Instant::now() + Duration::from_secs(5);
    let id = loop {
        let list = send(&gate, Method::GET, "/v1/writes", &gate.tokens.admin, None).await;
        if let Some(w) = list.body.as_array().and_then(|l| l.first()) {
            break w["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the write was never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let lock = lock_store(&gate.data_dir()).await;
    let (status, body) = submit.await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(!target.exists(), "the write did not run without its record");
    unlock_store(lock).await;
    let rec = gate.client(&gate.tokens.admin).write(&id).await.unwrap();
    assert_eq!(rec.status, recourse_client::WriteStatus::Executing);
    assert!(
        rec.capture.is_none(),
        "the capture's record was not written"
    );
    assert!(!target.exists());

    // A restart takes the durable record up: captured, run, recorded.
    gate.kill();
    gate.spawn(&[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let rec = loop {
        let rec = gate.client(&gate.tokens.admin).write(&id).await.unwrap();
        if rec.status != recourse_client::WriteStatus::Executing {
            break rec;
        }
        assert!(
            Instant::now() < deadline,
            "never settled: {:?}",
            rec.history
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        rec.status,
        recourse_client::WriteStatus::Executed,
        "{:?}",
        rec.history
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "late");
    let entries = gate.client(&gate.tokens.admin).audit().await.unwrap();
    let mine: Vec<&str> = entries
        .iter()
        .filter(|e| e.write_id.as_deref() == Some(id.as_str()))
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        mine.iter().filter(|a| **a == "write.executed").count(),
        1,
        "{mine:?}"
    );
    let v = gate
        .client(&gate.tokens.admin)
        .verify_audit()
        .await
        .unwrap();
    assert!(v.ok, "{v:?}");
}

#[tokio::test]
async fn hanging_postgres_store_refuses_within_the_timeout_and_recovers() {
    let Some(db) = FreshDb::create() else { return };
    let gate = TestGate::start_shared(
        &db.url(),
        None,
        &flags().iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let s = scene(gate).await;
    let b = before(&s).await;
    // Another session holds the audit table: every change needs it.
    let mut other = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("LOCK TABLE audit IN ACCESS EXCLUSIVE MODE")
        .execute(&mut other)
        .await
        .unwrap();
    each_change_refused(&s, "holds a lock").await;
    // A read of the locked table is refused in time too, not left waiting.
    let a = send(
        &s.gate,
        Method::GET,
        "/v1/audit?limit=5",
        &s.gate.tokens.admin,
        None,
    )
    .await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.took < BOUND, "{:?}", a.took);
    let a = send(
        &s.gate,
        Method::GET,
        "/v1/writes",
        &s.gate.tokens.admin,
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    nothing_half_done_and_answers_again(&s, &b).await;
}

/// The entries a request added: read after it, from `after` on.
async fn new_entries(g: &TestGate, after: usize) -> Vec<(String, String)> {
    let all = g.client(&g.tokens.admin).audit().await.unwrap();
    all.into_iter()
        .skip(after)
        .map(|e| (e.action, e.actor))
        .collect()
}

#[tokio::test]
async fn every_change_and_refusal_leaves_exactly_its_audit_entries_and_reads_leave_none() {
    exact_entries(TestGate::start(
        &flags().iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
}

#[tokio::test]
async fn every_change_and_refusal_leaves_exactly_its_audit_entries_on_postgres() {
    let Some(db) = FreshDb::create() else { return };
    exact_entries(TestGate::start_shared(
        &db.url(),
        None,
        &flags().iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
}

/// A mixed sequence of the state-changing requests, each followed by every
/// kind of read: each change adds exactly the entries listed for it, one of
/// them its own (so the changes' own entries number the changes), and the
/// reads add none.
async fn exact_entries(g: TestGate) {
    let t = g.tokens.clone();
    let root = g.root.clone();
    let customer = root.join("customer");
    std::fs::create_dir_all(&customer).unwrap();
    std::fs::create_dir_all(root.join("scoped")).unwrap();
    std::fs::write(root.join("old.txt"), "old").unwrap();
    let catalog =
        json!({"resources": [{"id": format!("fs:{}", customer.display()), "bearer": "customer"}]});
    // The whole catalog as a risk officer's file would have it: the
    // customer folder and one resource more.
    let whole = json!({"catalog": {"resources": [
        {"id": format!("fs:{}", customer.display()), "bearer": "customer"},
        {"id": "letters:sent", "reach": "external", "bearer": "customer"}]}});

    // The writes the sequence refers to, found as it goes.
    let mut ids: std::collections::HashMap<&str, String> = Default::default();
    let mut scoped_token = String::new();
    let mut seen = g.audit_len().await;
    let mut requests = 0;
    let mut request_entries = 0;

    // (name, method, path, token, body, expected status, the request's own
    // entry, every entry it adds in order). `{x}` in a path is the id of
    // write `x`.
    type Step = (
        &'static str,
        Method,
        String,
        String,
        Option<Value>,
        u16,
        &'static str,
        Vec<&'static str>,
    );
    let steps: Vec<Step> = vec![
        (
            "catalog edit",
            Method::POST,
            "/v1/catalog".into(),
            t.risk.clone(),
            Some(catalog),
            200,
            "catalog.upserted",
            vec!["catalog.upserted"],
        ),
        (
            "catalog replaced",
            Method::PUT,
            "/v1/catalog".into(),
            t.risk.clone(),
            Some(whole.clone()),
            200,
            "catalog.replaced",
            vec!["catalog.replaced"],
        ),
        (
            "submit, runs",
            Method::POST,
            "/v1/writes".into(),
            t.agent.clone(),
            Some(
                json!({"intent": "overwrite old", "idempotency_key": "k-old",
                     "action": {"connector": "fs", "op": "write", "path": root.join("old.txt").to_str().unwrap(),
                                "content_b64": base64::engine::general_purpose::STANDARD.encode("new")}}),
            ),
            201,
            "write.submitted",
            vec![
                "catalog.discovered",
                "write.submitted",
                "write.captured",
                "write.executed",
            ],
        ),
        (
            "submit, held",
            Method::POST,
            "/v1/writes".into(),
            t.agent.clone(),
            Some(fs_write(&customer.join("h1.txt"), "h1")),
            201,
            "write.submitted",
            vec!["catalog.discovered", "write.submitted"],
        ),
        (
            "submit, held again",
            Method::POST,
            "/v1/writes".into(),
            t.agent.clone(),
            Some(fs_write(&customer.join("h2.txt"), "h2")),
            201,
            "write.submitted",
            vec!["catalog.discovered", "write.submitted"],
        ),
        (
            "approve",
            Method::POST,
            "/v1/writes/{h1}/approve".into(),
            t.reviewer.clone(),
            Some(json!({"comment": "checked"})),
            200,
            "write.approved",
            vec![
                "write.approved",
                "write.executing",
                "write.captured",
                "write.executed",
            ],
        ),
        (
            "reject",
            Method::POST,
            "/v1/writes/{h2}/reject".into(),
            t.reviewer.clone(),
            Some(json!({"reason": "not now"})),
            200,
            "write.rejected",
            vec!["write.rejected"],
        ),
        (
            "refusal: outside the roots",
            Method::POST,
            "/v1/writes".into(),
            t.agent.clone(),
            Some(fs_write(&g.dir.path().join("outside.txt"), "x")),
            201,
            "write.refused",
            vec!["write.refused"],
        ),
        (
            "token create",
            Method::POST,
            "/v1/tokens".into(),
            t.admin.clone(),
            Some(json!({"name": "scoped-bot", "role": "agent",
                     "scope": {"fs_roots": [root.join("scoped").to_str().unwrap()]}})),
            200,
            "token.created",
            vec!["token.created"],
        ),
        (
            "refusal: out of scope",
            Method::POST,
            "/v1/writes".into(),
            "{scoped}".into(),
            Some(fs_write(&root.join("not-mine.txt"), "x")),
            403,
            "write.out_of_scope",
            vec!["write.out_of_scope"],
        ),
        (
            "rollback",
            Method::POST,
            "/v1/writes/{old}/rollback".into(),
            t.incident.clone(),
            Some(json!({"reason": "wrong file"})),
            200,
            "write.rolling_back",
            vec!["write.rolling_back", "write.rollback_result"],
        ),
        (
            "freeze",
            Method::POST,
            "/v1/freeze".into(),
            t.incident.clone(),
            Some(json!({"reason": "drill"})),
            200,
            "gate.frozen",
            vec!["gate.frozen"],
        ),
        (
            "submit while frozen",
            Method::POST,
            "/v1/writes".into(),
            t.agent.clone(),
            Some(fs_write(&root.join("frozen.txt"), "f")),
            201,
            "write.submitted",
            vec!["catalog.discovered", "write.submitted"],
        ),
        (
            "unfreeze",
            Method::POST,
            "/v1/resume".into(),
            t.incident.clone(),
            None,
            200,
            "gate.resumed",
            vec!["gate.resumed"],
        ),
        (
            "mode observe",
            Method::PUT,
            "/v1/mode".into(),
            t.admin.clone(),
            Some(json!({"mode": "observe", "reason": "drill"})),
            200,
            "gate.mode",
            vec!["gate.mode"],
        ),
        (
            "mode enforce",
            Method::PUT,
            "/v1/mode".into(),
            t.admin.clone(),
            Some(json!({"mode": "enforce", "reason": "drill over"})),
            200,
            "gate.mode",
            vec!["gate.mode"],
        ),
        (
            "token revoke",
            Method::DELETE,
            "/v1/tokens/scoped-bot".into(),
            t.admin.clone(),
            None,
            204,
            "token.revoked",
            vec!["token.revoked"],
        ),
    ];
    // (name, the change after which it applies, method, path, token, body,
    // expected status): none of them may add an entry.
    type Read = (
        &'static str,
        &'static str,
        Method,
        String,
        String,
        Option<Value>,
        u16,
    );
    let repeat = json!({"intent": "overwrite old", "idempotency_key": "k-old",
                        "action": {"connector": "fs", "op": "write", "path": root.join("old.txt").to_str().unwrap(),
                                   "content_b64": base64::engine::general_purpose::STANDARD.encode("new")}});
    let reads: Vec<Read> = vec![
        (
            "list writes",
            "",
            Method::GET,
            "/v1/writes".into(),
            t.admin.clone(),
            None,
            200,
        ),
        (
            "audit",
            "",
            Method::GET,
            "/v1/audit?limit=10".into(),
            t.admin.clone(),
            None,
            200,
        ),
        (
            "audit verify",
            "",
            Method::GET,
            "/v1/audit/verify".into(),
            t.admin.clone(),
            None,
            200,
        ),
        (
            "health",
            "",
            Method::GET,
            "/healthz".into(),
            String::new(),
            None,
            200,
        ),
        (
            "metrics",
            "",
            Method::GET,
            "/metrics".into(),
            String::new(),
            None,
            200,
        ),
        (
            "catalog",
            "",
            Method::GET,
            "/v1/catalog".into(),
            t.admin.clone(),
            None,
            200,
        ),
        (
            "freeze state",
            "",
            Method::GET,
            "/v1/freeze".into(),
            t.admin.clone(),
            None,
            200,
        ),
        (
            "mode",
            "",
            Method::GET,
            "/v1/mode".into(),
            t.admin.clone(),
            None,
            200,
        ),
        (
            "tokens",
            "",
            Method::GET,
            "/v1/tokens".into(),
            t.admin.clone(),
            None,
            200,
        ),
        (
            "whoami",
            "",
            Method::GET,
            "/v1/whoami".into(),
            t.agent.clone(),
            None,
            200,
        ),
        (
            "catalog plan (a preview)",
            "",
            Method::POST,
            "/v1/catalog/plan".into(),
            t.risk.clone(),
            Some(whole),
            200,
        ),
        (
            "report",
            "",
            Method::GET,
            "/v1/report".into(),
            t.admin.clone(),
            None,
            200,
        ),
        (
            "explain (a dry run)",
            "",
            Method::POST,
            "/v1/explain".into(),
            t.agent.clone(),
            Some(fs_write(&root.join("dry.txt"), "x")),
            200,
        ),
        // Refused before anything is decided: they change nothing, and an
        // unauthenticated caller must not be able to fill the trail.
        (
            "a bad token",
            "",
            Method::POST,
            "/v1/writes".into(),
            "rk_not-a-token".into(),
            Some(fs_write(&root.join("x.txt"), "x")),
            401,
        ),
        (
            "a bad body",
            "",
            Method::POST,
            "/v1/writes".into(),
            t.agent.clone(),
            Some(json!({"intent": 5})),
            400,
        ),
        (
            "a repeated submission (same key, same body)",
            "submit, runs",
            Method::POST,
            "/v1/writes".into(),
            t.agent.clone(),
            Some(repeat),
            200,
        ),
        (
            "one write",
            "submit, held",
            Method::GET,
            "/v1/writes/{h1}".into(),
            t.admin.clone(),
            None,
            200,
        ),
        (
            "a role that may not",
            "submit, held",
            Method::POST,
            "/v1/writes/{h1}/approve".into(),
            t.agent.clone(),
            Some(json!({"comment": "me"})),
            403,
        ),
        (
            "a wrong status",
            "reject",
            Method::POST,
            "/v1/writes/{h2}/approve".into(),
            t.reviewer2.clone(),
            Some(json!({"comment": "late"})),
            409,
        ),
    ];

    let fill = |path: &str, ids: &std::collections::HashMap<&str, String>| {
        let mut p = path.to_string();
        for (k, v) in ids {
            p = p.replace(&format!("{{{k}}}"), v);
        }
        p
    };
    let mut done: Vec<&str> = vec![""];
    let mut reads_done = 0;
    let mut expected_total = 0;
    let start = seen;
    for (name, method, path, token, body, status, own, expected) in steps {
        let token = if token == "{scoped}" {
            scoped_token.clone()
        } else {
            token
        };
        let a = send(&g, method, &fill(&path, &ids), &token, body).await;
        assert_eq!(a.status, status, "{name}: {}", a.body);
        match name {
            "submit, runs" => ids.insert("old", a.body["id"].as_str().unwrap().into()),
            "submit, held" => ids.insert("h1", a.body["id"].as_str().unwrap().into()),
            "submit, held again" => ids.insert("h2", a.body["id"].as_str().unwrap().into()),
            _ => None,
        };
        if name == "token create" {
            scoped_token = a.body["token"].as_str().unwrap().to_string();
        }
        done.push(name);
        let added = new_entries(&g, seen).await;
        let actions: Vec<&str> = added.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(actions, expected, "{name}: the entries it added");
        assert_eq!(
            actions.iter().filter(|a| **a == own).count(),
            1,
            "{name}: exactly one `{own}` entry, the request's own"
        );
        seen += added.len();
        expected_total += expected.len();
        requests += 1;
        request_entries += actions.iter().filter(|a| **a == own).count();

        // Between any two changes, every read adds nothing.
        for (rname, after, rmethod, rpath, rtoken, rbody, rstatus) in &reads {
            if !done.contains(after) {
                continue;
            }
            let r = send(
                &g,
                rmethod.clone(),
                &fill(rpath, &ids),
                rtoken,
                rbody.clone(),
            )
            .await;
            assert_eq!(r.status, *rstatus, "{rname} after {name}: {}", r.body);
            reads_done += 1;
        }
        assert_eq!(
            g.audit_len().await,
            seen,
            "the reads after `{name}` added no entry"
        );
    }
    assert_eq!(
        seen - start,
        expected_total,
        "every entry is one a change made"
    );
    assert_eq!(expected_total, 27);
    assert_eq!(reads_done, 309);
    assert_eq!(requests, 17);
    assert_eq!(request_entries, requests, "one request entry per change");
    let v = g.client(&t.admin).verify_audit().await.unwrap();
    assert!(v.ok, "{v:?}");
}
