//! The effect preview (`GET /v1/writes/{id}/effect`) against a real gate:
//! what a held write will change, read from its target now: the tree a
//! delete takes away, a file write's diff, the rows an SQL write matches
//! before and after, the request an HTTP write sends. Only people who read
//! every write get it; secrets stay masked; a link planted after the
//! submission is not followed; a write that has left review has none.

use recourse_client::WriteStatus;
use reqwest::Method;
use serde_json::{json, Value};

use crate::gate_sql_http::{catalog, sqlite};
use crate::harness::TestGate;

async fn effect(gate: &TestGate, token: &str, id: &str) -> (u16, Value) {
    gate.raw(Method::GET, &format!("/v1/writes/{id}/effect"), token, None)
        .await
}

/// `root/customer`, borne by a customer: every write in it is held.
async fn customer_dir(gate: &TestGate) -> std::path::PathBuf {
    let dir = gate.root.join("customer");
    std::fs::create_dir_all(&dir).unwrap();
    catalog(
        gate,
        json!({"resources": [{"id": format!("fs:{}", dir.display()), "bearer": "customer"}]}),
    )
    .await;
    dir
}

async fn held(gate: &TestGate, action: Value) -> String {
    let rec = gate
        .client(&gate.tokens.agent)
        .submit_json(&json!({"intent": "preview me", "action": action}))
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Held, "{:?}", rec.decision.reasons);
    rec.id
}

#[tokio::test]
async fn a_reviewer_sees_the_tree_a_held_delete_takes_away_and_an_agent_does_not() {
    let gate = TestGate::start(&[]);
    let dir = customer_dir(&gate).await;
    let proj = dir.join("shop");
    std::fs::create_dir_all(proj.join(".git/objects")).unwrap();
    std::fs::write(proj.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::create_dir_all(proj.join("src")).unwrap();
    std::fs::write(proj.join("src/a.txt"), "0123456789").unwrap();
    std::fs::write(proj.join("orders.db"), vec![7u8; 5000]).unwrap();
    let id = held(
        &gate,
        json!({"connector": "fs", "op": "delete", "path": proj.to_str().unwrap()}),
    )
    .await;

    let (s, e) = effect(&gate, &gate.tokens.reviewer, &id).await;
    assert_eq!(s, 200, "{e}");
    let c = &e["change"];
    assert_eq!(c["kind"], "removes", "{e}");
    assert_eq!(c["path"], proj.to_str().unwrap());
    let t = &c["tree"];
    assert_eq!(t["type"], "dir");
    assert_eq!(
        (t["files"].as_u64(), t["dirs"].as_u64()),
        (Some(3), Some(4)),
        "{t}"
    );
    assert_eq!(t["bytes"], 5000 + 10 + 21);
    assert_eq!(t["complete"], true);
    assert_eq!(t["notable"][0]["path"], ".git", "{t}");
    assert!(t["notable"][0]["what"]
        .as_str()
        .unwrap()
        .contains("git repository"));
    // Largest first: the reviewer sees what weighs most.
    let names: Vec<&str> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders.db", ".git", "src"]);
    // Reading it changed nothing.
    assert!(proj.join(".git/HEAD").exists());

    // Agents never: a preview reads the target, which their token does not.
    let (s, b) = effect(&gate, &gate.tokens.agent, &id).await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = effect(&gate, &gate.tokens.reviewer, "w_nope").await;
    assert_eq!(s, 404, "{b}");

    // Once the write has left review, there is nothing to preview.
    gate.client(&gate.tokens.reviewer)
        .reject(&id, "not this one")
        .await
        .unwrap();
    let (s, b) = effect(&gate, &gate.tokens.reviewer, &id).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "effect_past", "{b}");
}

#[tokio::test]
async fn a_link_planted_after_the_submission_is_not_followed() {
    let gate = TestGate::start(&[]);
    let dir = customer_dir(&gate).await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside the root").unwrap();

    // The target itself swapped for a link: shown as the link, not what it
    // points at.
    let victim = dir.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let id = held(
        &gate,
        json!({"connector": "fs", "op": "delete", "path": victim.to_str().unwrap()}),
    )
    .await;
    std::fs::remove_dir(&victim).unwrap();
    std::os::unix::fs::symlink(outside.path(), &victim).unwrap();
    let (s, e) = effect(&gate, &gate.tokens.reviewer, &id).await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(e["change"]["tree"]["type"], "symlink", "{e}");
    assert_eq!(e["change"]["tree"]["files"], 0, "{e}");

    // A parent swapped for a link: refused by name, never followed.
    let sub = dir.join("sub");
    std::fs::create_dir_all(sub.join("x")).unwrap();
    let id = held(
        &gate,
        json!({"connector": "fs", "op": "delete", "path": sub.join("x").to_str().unwrap()}),
    )
    .await;
    std::fs::remove_dir_all(&sub).unwrap();
    std::fs::create_dir_all(outside.path().join("x")).unwrap();
    std::os::unix::fs::symlink(outside.path(), &sub).unwrap();
    let (s, e) = effect(&gate, &gate.tokens.reviewer, &id).await;
    assert!((400..500).contains(&s), "{s} {e}");
    assert!(!e.to_string().contains("outside the root"), "{e}");
}

#[tokio::test]
async fn a_file_write_shows_its_diff_with_credentials_masked() {
    let gate = TestGate::start(&[]);
    let dir = customer_dir(&gate).await;
    let file = dir.join("settings.conf");
    let old: String = (1..=12).map(|i| format!("option{i} = {i}\n")).collect();
    std::fs::write(&file, &old).unwrap();
    let new = old.replace(
        "option6 = 6\n",
        "option6 = six\naws_key = AKIAIOSFODNN7EXAMPLE\n",
    );
    let id = held(
        &gate,
        json!({"connector": "fs", "op": "write", "path": file.to_str().unwrap(),
               "content_b64": base64_of(new.as_bytes())}),
    )
    .await;
    let (s, e) = effect(&gate, &gate.tokens.reviewer, &id).await;
    assert_eq!(s, 200, "{e}");
    let c = &e["change"];
    assert_eq!(c["kind"], "writes", "{e}");
    assert_eq!(c["before"]["size"], old.len());
    assert_eq!(c["after"]["size"], new.len());
    assert_eq!(c["before"]["text"], true);
    let d = &c["diff"];
    assert_eq!(
        (d["added"].as_u64(), d["removed"].as_u64()),
        (Some(2), Some(1)),
        "{d}"
    );
    let lines: Vec<(String, String)> = d["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["tag"].as_str().unwrap().into(),
                l["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        lines.first().unwrap(),
        &("skip".into(), "2 unchanged lines".into()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("removed".into(), "option6 = 6".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("added".into(), "option6 = six".into())),
        "{lines:?}"
    );
    assert!(!e.to_string().contains("AKIAIOSFODNN7EXAMPLE"), "{e}");
    assert!(
        lines
            .iter()
            .any(|(t, l)| t == "added" && l.contains("[redacted]")),
        "{lines:?}"
    );

    // A new file: nothing before, every line added.
    let id = held(
        &gate,
        json!({"connector": "fs", "op": "write", "path": dir.join("new.txt").to_str().unwrap(),
               "content_b64": base64_of(b"one\ntwo\n")}),
    )
    .await;
    let (s, e) = effect(&gate, &gate.tokens.reviewer, &id).await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(e["change"]["before"], Value::Null, "{e}");
    assert_eq!(e["change"]["diff"]["added"], 2, "{e}");
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn an_sql_write_shows_the_rows_it_matches_before_and_after_and_where_it_cascades() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    sqlite(
        &db,
        "PRAGMA foreign_keys = ON;
         CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, tier TEXT, api_token TEXT);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id) ON DELETE CASCADE, total INTEGER);
         INSERT INTO customers VALUES (1, 'Ada', 'gold', 'tok-ada-1'), (2, 'Grace', 'gold', 'tok-grace-2'), (3, 'Alan', 'silver', NULL);
         INSERT INTO orders VALUES (10, 1, 99), (11, 2, 15);",
    );
    let url = format!("shop=sqlite:{}", db.display());
    let gate = TestGate::start(&["--sql", &url]);
    catalog(
        &gate,
        json!({"resources": [{"id": "sql:shop/customers", "bearer": "customer"}]}),
    )
    .await;
    let before = sqlite(&db, ".dump");

    let id = held(
        &gate,
        json!({"connector": "sql", "database": "shop", "op": "update", "table": "customers",
               "where": {"tier": "gold"}, "set": {"tier": "bronze"}}),
    )
    .await;
    let (s, e) = effect(&gate, &gate.tokens.reviewer, &id).await;
    assert_eq!(s, 200, "{e}");
    let r = &e["change"];
    assert_eq!(r["kind"], "rows", "{e}");
    assert_eq!(r["op"], "update");
    assert_eq!(r["columns"], json!(["id", "name", "tier", "api_token"]));
    assert_eq!(r["total"], 2);
    assert_eq!(
        r["rows"][0]["before"],
        json!(["1", "Ada", "gold", "[redacted]"]),
        "{e}"
    );
    assert_eq!(
        r["rows"][0]["after"],
        json!(["1", "Ada", "bronze", "[redacted]"]),
        "{e}"
    );
    assert_eq!(r["rows"][0]["changed"], json!(["tier"]));
    assert_eq!(r["rows"][1]["before"][1], "Grace");
    assert!(!e.to_string().contains("tok-"), "{e}");
    // The update does not touch the key orders reference: it reaches nothing.
    assert_eq!(r["reaches"], json!([]), "{e}");

    let id = held(
        &gate,
        json!({"connector": "sql", "database": "shop", "op": "delete", "table": "customers",
               "where": {"id": 1}}),
    )
    .await;
    let (s, e) = effect(&gate, &gate.tokens.reviewer, &id).await;
    assert_eq!(s, 200, "{e}");
    let r = &e["change"];
    assert_eq!(r["total"], 1);
    assert_eq!(r["rows"][0]["after"], Value::Null);
    let reaches = r["reaches"].to_string();
    assert!(
        reaches.contains("`orders`") && reaches.contains("are deleted too"),
        "{reaches}"
    );
    // A preview reads; it never writes.
    assert_eq!(sqlite(&db, ".dump"), before);
}

#[tokio::test]
async fn an_sql_preview_on_postgresql_counts_and_shows_rows_as_text() {
    if !crate::gate_sql_http::pg_reachable() {
        assert!(
            std::env::var("RECOURSE_REQUIRE_PG").is_err(),
            "PostgreSQL is required (RECOURSE_REQUIRE_PG) but not reachable"
        );
        eprintln!("SKIPPED: PostgreSQL not reachable at 127.0.0.1:5432");
        return;
    }
    let table = format!(
        "effect_{}_{}",
        std::process::id(),
        crate::gate_sql_http::rand_suffix()
    );
    crate::harness::psql(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY, plan text, amount numeric);
         INSERT INTO {table} SELECT g, 'basic', g * 1.5 FROM generate_series(1, 120) g;"
    ));
    let url = "pg=postgres://postgres@127.0.0.1:5432/test";
    let gate = TestGate::start(&["--sql", url]);
    catalog(
        &gate,
        json!({"resources": [{"id": format!("sql:pg/{table}"), "bearer": "customer"}]}),
    )
    .await;
    let id = held(
        &gate,
        json!({"connector": "sql", "database": "pg", "op": "update", "table": table,
               "where": {"plan": "basic"}, "set": {"plan": "pro"}}),
    )
    .await;
    let (s, e) = effect(&gate, &gate.tokens.reviewer, &id).await;
    crate::harness::psql(&format!("DROP TABLE {table}"));
    assert_eq!(s, 200, "{e}");
    let r = &e["change"];
    assert_eq!(r["total"], 120, "{e}");
    assert_eq!(
        r["rows"].as_array().unwrap().len(),
        recourse_client::effect::EFFECT_ROWS
    );
    assert_eq!(r["rows"][0]["before"], json!(["1", "basic", "1.5"]), "{e}");
    assert_eq!(r["rows"][0]["after"], json!(["1", "pro", "1.5"]), "{e}");
}

#[tokio::test]
async fn an_http_write_shows_the_request_with_the_gates_credentials_hidden() {
    let gate = TestGate::start(&[
        "--http-allow",
        "127.0.0.1:9",
        "--http-secret",
        "127.0.0.1:9=Authorization:Bearer s3cret-value",
    ]);
    let rec = gate
        .client(&gate.tokens.agent)
        .submit_json(
            &json!({"intent": "renew", "action": {"connector": "http", "op": "request",
            "method": "post", "url": "http://127.0.0.1:9/contracts/7/renew",
            "headers": {"X-Trace": "abc"}, "body": {"years": 3, "password": "hunter2"}}}),
        )
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Held, "{:?}", rec.decision.reasons);
    let (s, e) = effect(&gate, &gate.tokens.reviewer, &rec.id).await;
    assert_eq!(s, 200, "{e}");
    let r = &e["change"];
    assert_eq!(r["kind"], "request", "{e}");
    assert_eq!(r["method"], "POST");
    assert_eq!(r["url"], "http://127.0.0.1:9/contracts/7/renew");
    let headers = r["headers"].as_array().unwrap();
    let auth = headers
        .iter()
        .find(|h| h["name"] == "authorization")
        .unwrap();
    assert_eq!(auth["by_gate"], true);
    assert_eq!(auth["value"], "[redacted]");
    assert!(headers
        .iter()
        .any(|h| h["name"] == "x-trace" && h["value"] == "abc"));
    assert!(headers
        .iter()
        .any(|h| h["name"] == "idempotency-key" && h["value"] == rec.id.as_str()));
    let body = r["body"].as_str().unwrap();
    assert!(body.contains("\"years\":3"), "{body}");
    assert!(
        !e.to_string().contains("s3cret") && !e.to_string().contains("hunter2"),
        "{e}"
    );
}
