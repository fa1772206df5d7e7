//! Least privilege through a real gate: a token scoped to one fs root, one
//! sql database and one host writes there and nowhere else (403
//! `out_of_scope`, audited, nothing changed), however it words the path or
//! the host; a revoked token is refused at once; a token's pending writes
//! are bounded by its quota of stored bytes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use recourse_client::WriteStatus;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{recourse, tree_listing, TestGate};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `recourse token create` with extra flags: Ok(token) or Err(stderr).
fn token_with(data_dir: &Path, name: &str, role: &str, extra: &[&str]) -> Result<String, String> {
    let mut args = vec![
        "token",
        "create",
        "--data-dir",
        s(data_dir),
        "--name",
        name,
        "--role",
        role,
    ];
    args.extend_from_slice(extra);
    let out = recourse(&args);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn write_file(path: &Path, content: &[u8]) -> Value {
    json!({"intent": "write a file", "action": {"connector": "fs", "op": "write", "path": s(path),
        "content_b64": base64::engine::general_purpose::STANDARD.encode(content)}})
}

fn http_post(url: &str) -> Value {
    json!({"intent": "call", "action": {"connector": "http", "op": "request", "method": "POST", "url": url}})
}

async fn submit(gate: &TestGate, token: &str, body: &Value) -> (u16, Value) {
    gate.raw(
        Method::POST,
        "/v1/writes",
        token,
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// Refused as out of scope: 403 `out_of_scope` naming `what` and what the
/// token may reach, one `write.out_of_scope` audit entry more, no write
/// stored.
async fn assert_out_of_scope(gate: &TestGate, token: &str, body: &Value, what: &str) {
    let audit = gate.audit_len().await;
    let writes = gate.write_count().await;
    // Nor may it have the gate explain that write (the answer maps the
    // catalog beyond its reach); an explanation stores nothing.
    let (status, b) = gate
        .raw(
            Method::POST,
            "/v1/explain",
            token,
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 403, "explain {what}: {b}");
    assert_eq!(b["error"]["code"], "out_of_scope", "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains(what),
        "{b}"
    );
    assert_eq!(
        gate.audit_len().await,
        audit,
        "an explanation stores nothing"
    );
    let (status, b) = submit(gate, token, body).await;
    assert_eq!(status, 403, "{what}: {b}");
    assert_eq!(b["error"]["code"], "out_of_scope", "{b}");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains(what), "{msg} should name {what}");
    assert!(msg.contains("may reach"), "{msg}");
    assert_eq!(gate.write_count().await, writes, "no write stored: {what}");
    let entries = gate.client(&gate.tokens.admin).audit().await.unwrap();
    assert_eq!(entries.len(), audit + 1, "one audit entry: {what}");
    let last = entries.last().unwrap();
    assert_eq!(last.action, "write.out_of_scope");
    assert_eq!(last.actor, "scoped");
    assert!(
        last.body["outside"].as_str().unwrap().contains(what),
        "{}",
        last.body
    );
}

#[tokio::test]
async fn a_scoped_token_writes_only_where_its_scope_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let other_root = base.join("other-root");
    std::fs::create_dir_all(&other_root).unwrap();
    std::fs::write(other_root.join("keep.txt"), "theirs").unwrap();
    let crm = base.join("crm.db");
    let billing = base.join("billing.db");
    for db in [&crm, &billing] {
        sqlite(
            db,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
        );
    }
    let gate = TestGate::start(&[
        "--fs-root",
        s(&other_root),
        "--sql",
        &format!("crm=sqlite:{}", crm.display()),
        "--sql",
        &format!("billing=sqlite:{}", billing.display()),
        "--http-allow",
        "a.test",
        "--http-allow",
        "b.test",
    ]);
    let mine = gate.root.join("mine");
    let theirs = gate.root.join("mine-not");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("keep.txt"), "theirs").unwrap();
    // A link inside the scope to a directory outside it.
    std::os::unix::fs::symlink(&other_root, mine.join("link")).unwrap();
    let token = token_with(
        &gate.data_dir(),
        "scoped",
        "agent",
        &[
            "--fs-root",
            s(&mine),
            "--sql",
            "crm",
            "--http-allow",
            "a.test",
        ],
    )
    .unwrap();
    let before_other = tree_listing(&other_root);
    let before_theirs = tree_listing(&theirs);
    let billing_before = sqlite(&billing, ".dump");

    // Within the scope: it runs.
    let (status, b) = submit(&gate, &token, &write_file(&mine.join("a.txt"), b"ok")).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["status"], "executed", "{b}");
    assert_eq!(std::fs::read(mine.join("a.txt")).unwrap(), b"ok");
    let sql = json!({"intent": "fix", "action": {"connector": "sql", "database": "crm",
        "op": "update", "table": "t", "where": {"id": 1}, "set": {"v": "b"}}});
    let (status, b) = submit(&gate, &token, &sql).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["status"], "executed", "{b}");
    assert_eq!(sqlite(&crm, "SELECT v FROM t").trim(), "b");
    // Its host, however cased (the URL parser lowercases it): decided as
    // any request is (held here: nothing declares how to undo it), never
    // refused for its scope.
    for url in ["http://a.test/x", "http://A.Test/x"] {
        let (status, b) = submit(&gate, &token, &http_post(url)).await;
        assert_eq!(status, 201, "{url}: {b}");
        assert_ne!(b["status"], "refused", "{b}");
    }

    // Another root of the gate; another directory of the same root whose
    // name starts with the scoped one's; a database and a host the gate
    // serves and the token lacks, the host shouted.
    assert_out_of_scope(
        &gate,
        &token,
        &write_file(&other_root.join("new.txt"), b"x"),
        &format!("the fs path `{}`", other_root.join("new.txt").display()),
    )
    .await;
    assert_out_of_scope(
        &gate,
        &token,
        &write_file(&theirs.join("keep.txt"), b"x"),
        &format!("the fs path `{}`", theirs.join("keep.txt").display()),
    )
    .await;
    let billing_write = json!({"intent": "fix", "action": {"connector": "sql", "database": "billing",
        "op": "update", "table": "t", "where": {"id": 1}, "set": {"v": "z"}}});
    assert_out_of_scope(&gate, &token, &billing_write, "the sql database `billing`").await;
    assert_out_of_scope(
        &gate,
        &token,
        &http_post("http://B.TEST/x"),
        "the http host `b.test`",
    )
    .await;
    // A write in scope whose declared rollback reaches outside it.
    let sneaky = json!({"intent": "fix", "action": {"connector": "sql", "database": "crm",
        "op": "update", "table": "t", "where": {"id": 1}, "set": {"v": "c"}},
        "rollback": {"steps": [{"restores": [], "requires": [],
            "op": {"connector": "http", "op": "request", "method": "POST", "url": "http://b.test/undo"}}]}});
    assert_out_of_scope(&gate, &token, &sneaky, "the http host `b.test`").await;

    // `..` and a link out of the scope: the connector refuses them before
    // any scope is asked (a refused write, stored truncated); nothing runs.
    for path in [
        format!("{}/../mine-not/keep.txt", mine.display()),
        format!("{}/link/keep.txt", mine.display()),
    ] {
        let body = json!({"intent": "escape", "action": {"connector": "fs", "op": "write",
            "path": path, "content_b64": "eA=="}});
        let (status, b) = submit(&gate, &token, &body).await;
        assert!(
            status == 403 || (status == 201 && b["status"] == "refused"),
            "{path}: {status} {b}"
        );
    }

    assert_eq!(
        tree_listing(&other_root),
        before_other,
        "the other root is untouched"
    );
    assert_eq!(
        tree_listing(&theirs),
        before_theirs,
        "the sibling directory is untouched"
    );
    assert_eq!(
        sqlite(&billing, ".dump"),
        billing_before,
        "billing is untouched"
    );
    assert_eq!(sqlite(&crm, "SELECT v FROM t").trim(), "b");

    // The unscoped agent of the same gate still reaches everything.
    let (status, b) = submit(
        &gate,
        &gate.tokens.agent,
        &write_file(&other_root.join("free.txt"), b"y"),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["status"], "executed", "{b}");
}

#[tokio::test]
async fn tokens_are_listed_without_hashes_and_a_revoked_one_stops_at_once() {
    let gate = TestGate::start(&[]);
    let data = gate.data_dir();
    let root = gate.root.join("scoped");
    std::fs::create_dir_all(&root).unwrap();
    let scoped = token_with(&data, "scoped", "agent", &["--fs-root", s(&root)]).unwrap();

    // Bad scopes name the flag.
    let e = token_with(&data, "bad1", "agent", &["--fs-root", "relative/dir"]).unwrap_err();
    assert!(e.contains("--fs-root") && e.contains("absolute"), "{e}");
    let e = token_with(&data, "bad2", "agent", &["--http-allow", "a.test/path"]).unwrap_err();
    assert!(e.contains("--http-allow"), "{e}");
    let e = token_with(&data, "bad3", "reviewer", &["--sql", "crm"]).unwrap_err();
    assert!(e.contains("submits no writes"), "{e}");

    let out = recourse(&["token", "list", "--data-dir", s(&data)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = rows.iter().find(|r| r["name"] == "scoped").unwrap();
    assert_eq!(row["role"], "agent");
    assert_eq!(row["scope"]["fs_roots"], json!([s(&root)]));
    let unscoped = rows.iter().find(|r| r["name"] == "agent-1").unwrap();
    assert!(unscoped.get("scope").is_none(), "{unscoped}");
    assert!(!listed.contains("hash"), "{listed}");
    assert!(!listed.contains(&scoped), "never the token itself");
    // Nor anything shaped like its SHA-256 (64 hex digits).
    let hexlike = listed
        .split(|c: char| !c.is_ascii_hexdigit())
        .any(|w| w.len() >= 64);
    assert!(!hexlike, "{listed}");

    // The admin API lists the same; other roles may not.
    let (status, b) = gate
        .raw(Method::GET, "/v1/tokens", &gate.tokens.admin, None)
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b.as_array().unwrap().len(), rows.len());
    let (status, _) = gate
        .raw(Method::GET, "/v1/tokens", &gate.tokens.incident, None)
        .await;
    assert_eq!(status, 403);

    // An open event stream of the token, then a revocation from the CLI
    // (another process): the next request is a 401 and the stream ends.
    let stream = gate.client(&scoped).events().await.unwrap();
    let (status, _) = gate.raw(Method::GET, "/v1/whoami", &scoped, None).await;
    assert_eq!(status, 200);
    let out = recourse(&[
        "token",
        "revoke",
        "--data-dir",
        s(&data),
        "--name",
        "scoped",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, b) = gate.raw(Method::GET, "/v1/whoami", &scoped, None).await;
    assert_eq!(status, 401, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("revoked"),
        "{b}"
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.bytes()).await;
    assert!(ended.is_ok(), "the stream outlived its revoked token");
    let (status, _) = submit(&gate, &scoped, &write_file(&root.join("a"), b"x")).await;
    assert_eq!(status, 401);
    let entries = gate.client(&gate.tokens.admin).audit().await.unwrap();
    let revoked = entries
        .iter()
        .find(|e| e.action == "token.revoked")
        .expect("audited");
    assert_eq!(revoked.body["name"], "scoped");
    assert_eq!(revoked.actor, "cli");
    // Revoking twice says so; the name stays taken.
    let out = recourse(&[
        "token",
        "revoke",
        "--data-dir",
        s(&data),
        "--name",
        "scoped",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked already"));
    assert!(token_with(&data, "scoped", "agent", &[]).is_err());

    // Through the API: 204, then 401; 404 for a name nobody has.
    let (status, _) = gate
        .raw(
            Method::DELETE,
            "/v1/tokens/agent-1",
            &gate.tokens.admin,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = gate
        .raw(Method::GET, "/v1/whoami", &gate.tokens.agent, None)
        .await;
    assert_eq!(status, 401);
    let (status, b) = gate
        .raw(
            Method::DELETE,
            "/v1/tokens/nobody",
            &gate.tokens.admin,
            None,
        )
        .await;
    assert_eq!(status, 404, "{b}");
    let (status, _) = gate
        .raw(
            Method::DELETE,
            "/v1/tokens/rev-1",
            &gate.tokens.reviewer2,
            None,
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_flood_of_held_writes_hits_the_quota_and_a_rejection_frees_room() {
    // Room for a few held writes of ~16 KiB content each.
    let gate = TestGate::start(&["--quota-bytes", "100000"]);
    let held_dir = gate.root.join("customers");
    std::fs::create_dir_all(&held_dir).unwrap();
    let (status, b) = gate
        .raw(
            Method::POST,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(
                json!({"resources": [{"id": format!("fs:{}", held_dir.display()), "bearer": "customer"}]})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let content = vec![b'x'; 16 * 1024];
    let mut held = Vec::new();
    let mut refusal = None;
    for i in 0..20 {
        let body = write_file(&held_dir.join(format!("f{i}.txt")), &content);
        let resp = gate
            .http()
            .post(format!("{}/v1/writes", gate.url))
            .bearer_auth(&gate.tokens.agent)
            .json(&body)
            .send()
            .await
            .unwrap();
        if resp.status() == 201 {
            let rec: recourse_client::WriteRecord = resp.json().await.unwrap();
            assert_eq!(rec.status, WriteStatus::Held);
            held.push(rec.id);
            continue;
        }
        refusal = Some(resp);
        break;
    }
    let resp = refusal.expect("the quota was never reached");
    assert!(held.len() >= 2, "{} held before the quota", held.len());
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The oldest held write expires in a week (the default hold time).
    assert!(retry > 6 * 24 * 3600, "Retry-After {retry}");
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error"]["code"], "over_quota");
    assert!(b["error"]["message"].as_str().unwrap().contains("agent-1"));
    let writes = gate.write_count().await;

    // Another token has its own room.
    let (status, b) = submit(
        &gate,
        &gate.tokens.admin,
        &write_file(&held_dir.join("admin.txt"), &content),
    )
    .await;
    assert_eq!(status, 201, "{b}");

    // A rejection frees room: the next one is held.
    gate.client(&gate.tokens.reviewer)
        .reject(&held[0], "no")
        .await
        .unwrap();
    let (status, b) = submit(
        &gate,
        &gate.tokens.agent,
        &write_file(&held_dir.join("after.txt"), &content),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["status"], "held");
    assert_eq!(gate.write_count().await, writes + 2);

    // A write larger than the whole quota: 413, and no Retry-After (waiting
    // would never help).
    let huge = write_file(&held_dir.join("huge.txt"), &vec![b'y'; 200 * 1024]);
    let resp = gate
        .http()
        .post(format!("{}/v1/writes", gate.url))
        .bearer_auth(&gate.tokens.agent)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(resp.headers().get("retry-after").is_none());
    let files: Vec<_> = std::fs::read_dir(&held_dir).unwrap().collect();
    assert!(files.is_empty(), "nothing held ran");
}
