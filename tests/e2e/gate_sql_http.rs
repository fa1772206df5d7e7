//! The seed's row and API cases live, through a real gate: writable prompts
//! on SQLite, loan origination and procurement renewal over HTTP against a
//! small service started here, and an update and a cascading delete on
//! PostgreSQL rolled back to an identical `pg_dump`.

use std::process::Command;
use std::sync::{Arc, Mutex};

use recourse_client::WriteStatus;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestGate;
use crate::harness::{codes, psql};

pub(crate) async fn catalog(gate: &TestGate, body: Value) {
    let (s, b) = gate
        .raw(
            Method::POST,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

pub(crate) fn sqlite(db: &std::path::Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn writable_prompts_user_rows_roll_back_exactly_the_system_prompt_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("consult.db");
    sqlite(
        &db,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, office TEXT, notes BLOB);
         CREATE TABLE prompts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL);
         INSERT INTO users VALUES (1, 'Ada', 'London', NULL), (2, 'Grace', NULL, x'00ff10');
         INSERT INTO prompts VALUES (1, 'system', 'Answer from approved sources only.');",
    );
    let url = format!("consult=sqlite:{}", db.display());
    let gate = TestGate::start(&["--sql", &url]);
    let before = sqlite(&db, ".dump");

    let agent = gate.client(&gate.tokens.agent);
    let user = agent
        .submit_json(&json!({"intent": "fix an office", "action": {"connector": "sql", "database": "consult",
            "op": "update", "table": "users", "where": {"id": 2}, "set": {"office": "Arlington", "notes": null}}}))
        .await
        .unwrap();
    assert_eq!(user.status, WriteStatus::Executed, "{:?}", codes(&user));
    assert_eq!(
        sqlite(&db, "SELECT office FROM users WHERE id = 2").trim(),
        "Arlington"
    );
    let back = gate
        .client(&gate.tokens.incident)
        .rollback(&user.id, "test", false)
        .await
        .unwrap();
    assert_eq!(back.status, WriteStatus::RolledBack, "{:?}", back.rollback);
    // The applied-marker row stays (it is what makes a repeat impossible);
    // every row of the institution's tables is back exactly.
    let tables = |dump: String| {
        dump.lines()
            .filter(|l| !l.starts_with("INSERT INTO recourse_applied"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        tables(sqlite(&db, ".dump")),
        tables(before.clone()),
        "the rows came back exactly"
    );

    // The prompt row shapes every answer 40,000 consultants get.
    catalog(
        &gate,
        json!({"resources": [
        {"id": "sql:consult/prompts/1", "title": "the system prompt"},
        {"id": "answers:consultants", "reach": "external", "bearer": "employee"}],
        "edges": [{"from": "sql:consult/prompts/1", "to": "answers:consultants",
                   "why": "answers already given follow the old prompt and cannot be unsaid"}]}),
    )
    .await;
    let prompt = agent
        .submit_json(&json!({"intent": "tune the prompt", "action": {"connector": "sql", "database": "consult",
            "op": "update", "table": "prompts", "where": {"id": 1}, "set": {"body": "Answer quickly."}}}))
        .await
        .unwrap();
    assert_eq!(prompt.status, WriteStatus::Held);
    let c = codes(&prompt);
    assert!(
        c.contains(&("external".into(), "answers:consultants".into())),
        "{c:?}"
    );
    assert!(
        c.contains(&("third_party_bearer".into(), "answers:consultants".into())),
        "{c:?}"
    );
    assert_eq!(
        sqlite(&db, "SELECT body FROM prompts").trim(),
        "Answer from approved sources only."
    );

    // Bad input: clear errors, nothing written.
    let writes = gate.write_count().await;
    for (action, field) in [
        (
            json!({"connector": "sql", "database": "nope", "op": "update", "table": "users", "where": {"id": 1}, "set": {"name": "x"}}),
            "database",
        ),
        (
            json!({"connector": "sql", "database": "consult", "op": "update", "table": "users; DROP TABLE users", "where": {"id": 1}, "set": {"name": "x"}}),
            "table",
        ),
        (
            json!({"connector": "sql", "database": "consult", "op": "update", "table": "users", "where": {"idd": 1}, "set": {"name": "x"}}),
            "where",
        ),
        (
            json!({"connector": "sql", "database": "consult", "op": "update", "table": "users", "where": {"id": "one"}, "set": {"name": "x"}}),
            "where",
        ),
    ] {
        let err = agent
            .submit_json(&json!({"intent": "bad", "action": action}))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400), "{err}");
        match &err {
            recourse_client::ClientError::Api { body, .. } => {
                let f = body.error.field.clone().unwrap_or_default();
                assert!(f.contains(field), "{field}: {f} ({})", body.error.message);
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(gate.write_count().await, writes);
    // An unbounded delete is never run without a person.
    let all = agent
        .submit_json(&json!({"intent": "purge", "action": {"connector": "sql", "database": "consult", "op": "delete", "table": "users", "where": {}}}))
        .await;
    match all {
        Ok(rec) => assert_ne!(rec.status, WriteStatus::Executed),
        Err(e) => assert!(matches!(e.status(), Some(400 | 403)), "{e}"),
    }
    assert_eq!(sqlite(&db, "SELECT COUNT(*) FROM users").trim(), "2");
}

/// The institution's systems: every call recorded, evidence checks answer
/// from a list of what exists.
#[derive(Clone, Default)]
pub(crate) struct Systems {
    pub(crate) calls: Arc<Mutex<Vec<String>>>,
}

pub(crate) async fn start_systems() -> (String, Systems) {
    use axum::extract::State;
    use axum::http::{Method as M, StatusCode, Uri};
    async fn answer(
        State(s): State<Systems>,
        method: M,
        uri: Uri,
    ) -> (StatusCode, axum::Json<Value>) {
        s.calls
            .lock()
            .unwrap()
            .push(format!("{method} {}", uri.path()));
        if uri.path().starts_with("/missing") {
            (StatusCode::NOT_FOUND, axum::Json(json!({})))
        } else {
            (StatusCode::OK, axum::Json(json!({"ok": true})))
        }
    }
    let systems = Systems::default();
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(systems.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, systems)
}

#[tokio::test]
async fn loan_approval_reaching_the_credit_file_is_held_renewal_proceeds_in_its_window_and_is_held_after(
) {
    let (host, systems) = start_systems().await;
    let gate = TestGate::start(&["--http-allow", &host]);
    let url = |p: &str| format!("http://{host}{p}");
    catalog(&gate, json!({"resources": [
        {"id": "loan:app-7781", "bearer": "borrower"},
        {"id": "bureau:credit-file/7781", "reach": "external", "bearer": "borrower", "title": "the borrower's credit file"},
        {"id": "contract:seats-2026", "title": "internal seat allocation"},
        // The risk officer says where the procurement API's evidence can be
        // verified: the gate probes only checks under it (section 10).
        {"id": "procure:api", "probe_prefix": url("/procure/")}],
        "edges": [{"from": "loan:app-7781", "to": "bureau:credit-file/7781",
                   "why": "a conditional approval is reported to the bureau as a hard inquiry"}]}))
    .await;
    let agent = gate.client(&gate.tokens.agent);

    let loan = agent
        .submit_json(&json!({"intent": "push conditional approval", "touches": ["loan:app-7781"],
            "action": {"connector": "http", "op": "request", "method": "POST", "url": url("/los/apps/7781/approve")},
            "rollback": {"steps": [{"restores": ["loan:app-7781", format!("http:{host}/los/apps/7781/approve")],
                "op": {"connector": "http", "op": "request", "method": "POST", "url": url("/los/apps/7781/withdraw")},
                "requires": [{"id": "los-snap", "kind": "snapshot", "location": "vault:los",
                              "check": {"url": url("/los/snapshots/7781"), "method": "GET"}}]}]}}))
        .await
        .unwrap();
    assert_eq!(loan.status, WriteStatus::Held, "{:?}", codes(&loan));
    let c = codes(&loan);
    assert!(
        c.contains(&("external".into(), "bureau:credit-file/7781".into())),
        "{c:?}"
    );
    assert!(
        c.contains(&(
            "third_party_bearer".into(),
            "bureau:credit-file/7781".into()
        )),
        "{c:?}"
    );
    assert!(
        !systems
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.contains("approve")),
        "nothing was sent"
    );

    let renew = |until: chrono::DateTime<chrono::Utc>, key: &str| {
        json!({"intent": "renew seats", "idempotency_key": key, "touches": ["contract:seats-2026"],
            "action": {"connector": "http", "op": "request", "method": "POST", "url": url("/procure/seats-2026/renew")},
            "rollback": {"steps": [{"restores": ["contract:seats-2026", format!("http:{host}/procure/seats-2026/renew")],
                "op": {"connector": "http", "op": "request", "method": "POST", "url": url("/procure/seats-2026/cancel")},
                "requires": [{"id": "cancel-ok", "kind": "compensation", "location": "procure:api",
                              "check": {"url": url("/procure/seats-2026/cancellable"), "method": "GET"}},
                             {"id": "notice", "kind": "window", "until": until.to_rfc3339()}]}]}})
    };
    let now = chrono::Utc::now();
    let inside = agent
        .submit_json(&renew(now + chrono::Duration::days(20), "in-window"))
        .await
        .unwrap();
    assert_eq!(inside.status, WriteStatus::Executed, "{:?}", codes(&inside));
    assert_eq!(
        inside.outcome.as_ref().unwrap()["status"],
        200,
        "{:?}",
        inside.outcome
    );
    let after = agent
        .submit_json(&renew(now - chrono::Duration::days(1), "after-window"))
        .await
        .unwrap();
    assert_eq!(after.status, WriteStatus::Held);
    assert!(
        codes(&after).contains(&("evidence_expired".into(), "notice".into())),
        "{:?}",
        codes(&after)
    );
    let renewals = systems
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.ends_with("/renew"))
        .count();
    assert_eq!(renewals, 1, "the renewal after the window did not run");

    // Rolling back runs the compensation and re-probes its check.
    let back = gate
        .client(&gate.tokens.incident)
        .rollback(&inside.id, "renewed by mistake", false)
        .await
        .unwrap();
    assert_eq!(back.status, WriteStatus::RolledBack, "{:?}", back.rollback);
    assert!(systems
        .calls
        .lock()
        .unwrap()
        .iter()
        .any(|c| c == "POST /procure/seats-2026/cancel"));

    // A host the gate was not given is refused; agents cannot bring secrets.
    let other = agent
        .submit_json(&json!({"intent": "x", "action": {"connector": "http", "op": "request", "method": "POST", "url": "http://127.0.0.1:1/x"}}))
        .await;
    match other {
        Ok(rec) => assert_eq!(rec.status, WriteStatus::Refused),
        Err(e) => assert!(matches!(e.status(), Some(400 | 403)), "{e}"),
    }
    let err = agent
        .submit_json(&json!({"intent": "x", "action": {"connector": "http", "op": "request", "method": "POST",
            "url": url("/x"), "headers": {"Authorization": "Bearer mine"}}}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
}

pub(crate) fn pg_reachable() -> bool {
    Command::new("pg_isready")
        .args(["-q", "-h", "127.0.0.1", "-p", "5432"])
        .status()
        .is_ok_and(|s| s.success())
}

/// `pg_dump --data-only` of some tables, with rows sorted inside each COPY
/// block (PostgreSQL may store re-inserted rows in another physical order)
/// and its random `\restrict` lines removed.
fn pg_dump(tables: &[&str]) -> String {
    let mut cmd = Command::new("pg_dump");
    cmd.args(["-h", "127.0.0.1", "-U", "postgres", "--data-only", "test"]);
    for t in tables {
        cmd.args(["-t", t]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut result = Vec::new();
    let mut block: Vec<String> = Vec::new();
    let mut in_copy = false;
    for line in text
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
    {
        if in_copy {
            if line == "\\." {
                block.sort();
                result.append(&mut block);
                result.push(line.to_string());
                in_copy = false;
            } else {
                block.push(line.to_string());
            }
        } else {
            in_copy = line.starts_with("COPY ");
            result.push(line.to_string());
        }
    }
    result.join("\n")
}

#[tokio::test]
async fn postgres_update_and_cascading_delete_roll_back_to_an_identical_dump() {
    if !pg_reachable() {
        assert!(
            std::env::var("RECOURSE_REQUIRE_PG").is_err(),
            "PostgreSQL is required (RECOURSE_REQUIRE_PG) but not reachable"
        );
        eprintln!("SKIPPED: PostgreSQL not reachable at 127.0.0.1:5432");
        return;
    }
    let p = format!("e2e_{}_{}", std::process::id(), rand_suffix());
    let (authors, posts) = (format!("{p}_authors"), format!("{p}_posts"));
    psql(&format!(
        "CREATE TABLE {authors} (id INT PRIMARY KEY, name TEXT NOT NULL, bio TEXT);
         CREATE TABLE {posts} (id INT PRIMARY KEY, author_id INT NOT NULL REFERENCES {authors}(id) ON DELETE CASCADE, body TEXT, score NUMERIC(10,2));
         INSERT INTO {authors} VALUES (1, 'ann', NULL), (2, 'bob', repeat('x', 100000));
         INSERT INTO {posts} VALUES (10, 1, 'first', 1.50), (11, 1, NULL, NULL), (12, 2, 'other', 3.00);"
    ));
    let gate = TestGate::start(&["--sql", "pg=postgres://postgres@127.0.0.1:5432/test"]);
    let before = pg_dump(&[&authors, &posts]);
    let agent = gate.client(&gate.tokens.agent);
    let lead = gate.client(&gate.tokens.incident);

    let update = agent
        .submit_json(&json!({"intent": "rename", "action": {"connector": "sql", "database": "pg", "op": "update",
            "table": authors, "where": {"id": 2}, "set": {"name": "robert", "bio": null}}}))
        .await
        .unwrap();
    assert_eq!(update.status, WriteStatus::Executed, "{:?}", codes(&update));
    let delete = agent
        .submit_json(&json!({"intent": "remove ann", "action": {"connector": "sql", "database": "pg", "op": "delete",
            "table": authors, "where": {"id": 1}}}))
        .await
        .unwrap();
    assert_eq!(delete.status, WriteStatus::Executed, "{:?}", codes(&delete));
    assert_eq!(
        psql(&format!("SELECT count(*) FROM {posts}")).trim(),
        "1",
        "the cascade ran"
    );

    // Drift: a row changed after the write stops the rollback.
    psql(&format!("UPDATE {authors} SET name = 'rob' WHERE id = 2"));
    let drift = lead.rollback(&update.id, "undo", false).await.unwrap();
    assert_eq!(drift.status, WriteStatus::Executed, "{:?}", drift.rollback);
    assert!(drift
        .rollback
        .as_ref()
        .unwrap()
        .items
        .iter()
        .any(|i| i.status == recourse_client::RestoreStatus::Drift));
    assert_eq!(
        psql(&format!("SELECT name FROM {authors} WHERE id = 2")).trim(),
        "rob",
        "nothing overwritten"
    );

    let d = lead.rollback(&delete.id, "undo", false).await.unwrap();
    assert_eq!(d.status, WriteStatus::RolledBack, "{:?}", d.rollback);
    let u = lead
        .rollback(&update.id, "undo, over the drift", true)
        .await
        .unwrap();
    assert_eq!(u.status, WriteStatus::RolledBack, "{:?}", u.rollback);
    assert_eq!(pg_dump(&[&authors, &posts]), before);
    psql(&format!("DROP TABLE {posts}; DROP TABLE {authors};"));
}

pub(crate) fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    format!(
        "{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

#[tokio::test]
async fn import_sql_shows_foreign_keys_as_edges_and_loads_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    sqlite(
        &db,
        "CREATE TABLE sellers (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE listings (id INTEGER PRIMARY KEY, seller_id INTEGER REFERENCES sellers(id) ON DELETE CASCADE);",
    );
    let gate = TestGate::start(&[]);
    let url = format!("sqlite:{}", db.display());
    let out = Command::new(crate::harness::BIN)
        .args([
            "catalog",
            "import-sql",
            "shop",
            "--url",
            &url,
            "--gate",
            &gate.url,
            "--token",
            &gate.tokens.risk,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let edges = shown["edges"].as_array().unwrap();
    assert!(
        edges
            .iter()
            .any(|e| e["from"] == "sql:shop/sellers" && e["to"] == "sql:shop/listings"),
        "{edges:?}"
    );
    let loaded = gate.client(&gate.tokens.risk).catalog().await.unwrap();
    assert!(loaded.resources.iter().any(|r| r.id == "sql:shop/listings"));
}
