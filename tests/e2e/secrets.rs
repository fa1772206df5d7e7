//! Section 10 through the real gate: secrets are never stored, logged or
//! returned in clear. Writes carry every shape of the corpus
//! (`crates/secrets/tests/corpus.json`) in http headers, query strings, JSON
//! and form bodies, fs file contents and sql values; some run, one is
//! rejected, one expires, one is refused, one stays held; then no secret may
//! appear in the gate's log, in `GET /v1/audit`, `GET /v1/writes`,
//! `GET /v1/writes/{id}`, in error answers, or in any byte of any file of
//! the data directory (the SQLite database, its -wal and -shm). A write
//! still held keeps its raw proposal, encrypted: not in clear either.
//!
//! The connectors' vaults (before-images, captured files) hold what the
//! target held; they are the connectors' to protect and live outside the
//! data directory here (`--vault`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use recourse_client::WriteStatus;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestGate;

struct Corpus {
    /// (rule, secret, text holding it)
    items: Vec<(String, String, String)>,
}

impl Corpus {
    fn load() -> Corpus {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../secrets/tests/corpus.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let items = v["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["rule"].as_str().unwrap().to_string(),
                    s["secret"].as_str().unwrap().to_string(),
                    s["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        Corpus { items }
    }

    fn texts(&self) -> Vec<String> {
        self.items.iter().map(|(_, _, t)| t.clone()).collect()
    }

    /// Texts that fit in one header value.
    fn one_line(&self) -> impl Iterator<Item = &(String, String, String)> {
        self.items.iter().filter(|(_, _, t)| !t.contains('\n'))
    }
}

/// A stand-in for the institution's systems: answers 200 to anything.
async fn start_systems() -> (String, Arc<Mutex<usize>>) {
    let calls = Arc::new(Mutex::new(0usize));
    let c = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let c = c.clone();
        async move {
            *c.lock().unwrap() += 1;
            axum::Json(json!({"ok": true}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, calls)
}

fn sqlite(db: &Path, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every secret of `secrets` found in `haystack`, by name.
fn found(secrets: &[(String, String)], haystack: &[u8]) -> Vec<String> {
    secrets
        .iter()
        .filter(|(_, s)| haystack.windows(s.len()).any(|w| w == s.as_bytes()))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Where the first of `names` shows in `text`, for the failure message.
fn context(secrets: &[(String, String)], names: &[String], text: &str) -> String {
    let Some((_, s)) = secrets.iter().find(|(n, _)| names.first() == Some(n)) else {
        return String::new();
    };
    let at = text.find(s.as_str()).unwrap_or(0);
    let (from, to) = (at.saturating_sub(300), (at + 100).min(text.len()));
    String::from_utf8_lossy(&text.as_bytes()[from..to]).into_owned()
}

/// Every byte of every file under `dir`: which secrets show in clear.
fn on_disk(secrets: &[(String, String)], dir: &Path) -> Vec<String> {
    let files = files_under(dir);
    assert!(
        files.iter().any(|f| f.to_string_lossy().ends_with("-wal")),
        "{files:?}"
    );
    let mut bytes = Vec::new();
    for f in &files {
        bytes.extend(std::fs::read(f).unwrap());
    }
    found(secrets, &bytes)
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else {
            out.push(p);
        }
    }
    out
}

/// The http action of one write: every one-line text in a header, the
/// credential headers, query parameters and a JSON body with all texts.
fn http_action(host: &str, path: &str, c: &Corpus, extra: &[(String, String)]) -> Value {
    let mut headers = serde_json::Map::new();
    for (i, (_, _, text)) in c.one_line().enumerate() {
        headers.insert(format!("X-Note-{i}"), json!(text));
    }
    for (name, value) in extra {
        headers.insert(name.clone(), json!(value));
    }
    json!({"connector": "http", "op": "request", "method": "POST",
           "url": format!("http://{host}{path}?page=1&api_key=qk-{path}-7781aa&access_token=qt-{path}-99bcc1"),
           "headers": headers,
           "body": {"user": "ada", "password": format!("bp-{path}-hunter22"), "notes": c.texts()}})
}

#[tokio::test]
async fn no_secret_is_stored_logged_or_returned_in_clear() {
    let corpus = Corpus::load();
    let (host, _calls) = start_systems().await;
    let outside = tempfile::tempdir().unwrap();
    let db = outside.path().join("accounts.db");
    sqlite(
        &db,
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, note TEXT, password TEXT);
         INSERT INTO accounts VALUES (1, 'old', 'old');",
    );
    let vault = outside.path().join("vault");
    let mut gate = TestGate::start(&[
        "--http-allow",
        &host,
        "--sql",
        &format!("acct=sqlite:{}", db.display()),
        "--vault",
        vault.to_str().unwrap(),
        "--hold-ttl-s",
        "3",
        "--redact",
        "X-Tenant-Pin",
    ]);
    // Everything the gate logs, at every level of its own crates.
    gate.spawn_logged(&[("RUST_LOG", "debug,hyper=info,h2=info,reqwest=info")]);

    // The secrets to look for: the corpus, and those the test adds.
    let mut secrets: Vec<(String, String)> = corpus
        .items
        .iter()
        .map(|(rule, s, _)| (rule.clone(), s.clone()))
        .collect();
    let agent = gate.client(&gate.tokens.agent);
    let mut ids = Vec::new();
    // Everything the event stream sends while the writes go through.
    let mut stream = gate.client(&gate.tokens.admin).events().await.unwrap();
    let streamed = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = streamed.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(chunk)) = stream.chunk().await {
            sink.lock().unwrap().extend_from_slice(&chunk);
        }
    });

    // The http endpoint a person must approve: an external bearer.
    let fates = ["run", "reject", "expire", "held"];
    let mut resources: Vec<Value> = fates
        .iter()
        .map(|p| json!({"id": format!("http:{host}/{p}")}))
        .collect();
    resources.push(
        json!({"id": "svc:ledger", "reach": "external", "bearer": "customer",
                          "title": "the customer ledger"}),
    );
    let edges: Vec<Value> = fates
        .iter()
        .map(|p| {
            json!({"from": format!("http:{host}/{p}"), "to": "svc:ledger",
                        "why": "the endpoint posts to the customer ledger"})
        })
        .collect();
    let (s, b) = gate
        .raw(
            Method::POST,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(
                json!({"resources": resources, "edges": edges})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // One http write per fate.
    let mut held = std::collections::BTreeMap::new();
    for fate in ["run", "reject", "expire", "held"] {
        let extra = vec![
            ("X-Auth-Token".to_string(), format!("xat-{fate}-5cc0ffee77")),
            (
                "X-Amz-Security-Token".to_string(),
                format!("FwoGZXIvYXdzE{fate}AAAAB3NzaC1yc2E"),
            ),
            ("X-Api-Key".to_string(), format!("xak-{fate}-0a1b2c3d4e")),
            ("X-Tenant-Pin".to_string(), format!("pin-{fate}-448812")),
        ];
        for (name, value) in &extra {
            secrets.push((format!("{name} ({fate})"), value.clone()));
        }
        secrets.push((format!("api_key ({fate})"), format!("qk-/{fate}-7781aa")));
        secrets.push((
            format!("access_token ({fate})"),
            format!("qt-/{fate}-99bcc1"),
        ));
        secrets.push((
            format!("body password ({fate})"),
            format!("bp-/{fate}-hunter22"),
        ));
        let rec = agent
            .submit_json(&json!({"intent": format!("post {fate}; the token: itk-{fate}-9f8e7d6c"),
                                 "action": http_action(&host, &format!("/{fate}"), &corpus, &extra)}))
            .await
            .unwrap();
        secrets.push((format!("intent ({fate})"), format!("itk-{fate}-9f8e7d6c")));
        assert_eq!(
            rec.status,
            WriteStatus::Held,
            "{fate}: {:?}",
            rec.decision.reasons
        );
        ids.push(rec.id.clone());
        held.insert(fate, rec.id);
    }

    // A form body, held then run.
    let form_secret = "fs-Ze7Q2xW9pL".to_string();
    secrets.push(("form body".into(), form_secret.clone()));
    let form = agent
        .submit_json(&json!({"intent": "form post", "action": {"connector": "http", "op": "request",
            "method": "POST", "url": format!("http://{host}/run"),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "body": format!("grant_type=password&username=ada&password={form_secret}&client_secret=cs-{form_secret}")}}))
        .await
        .unwrap();
    ids.push(form.id.clone());

    // An fs write whose content holds every text: it runs at once.
    let content = corpus.texts().join("\n");
    let b64 = base64::engine::general_purpose::STANDARD.encode(content.as_bytes());
    secrets.push(("content_b64".into(), b64[..64].to_string()));
    let file = gate.root.join("secrets.txt");
    let fs = agent
        .submit_json(
            &json!({"intent": "write a file", "action": {"connector": "fs", "op": "write",
            "path": file.to_str().unwrap(), "content_b64": b64}}),
        )
        .await
        .unwrap();
    assert_eq!(
        fs.status,
        WriteStatus::Executed,
        "{:?}",
        fs.decision.reasons
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        content,
        "the raw content was written"
    );
    ids.push(fs.id.clone());

    // A sql update with secrets as values: it runs at once.
    let sql_secret = "sq-Pw0rd-8d7c6b5a".to_string();
    secrets.push(("sql value".into(), sql_secret.clone()));
    let sql = agent
        .submit_json(
            &json!({"intent": "update an account", "action": {"connector": "sql",
            "database": "acct", "op": "update", "table": "accounts", "where": {"id": 1},
            "set": {"password": sql_secret, "note": corpus.texts().join(" | ")}}}),
        )
        .await
        .unwrap();
    assert_eq!(
        sql.status,
        WriteStatus::Executed,
        "{:?}",
        sql.decision.reasons
    );
    assert_eq!(
        sqlite(&db, "SELECT password FROM accounts WHERE id = 1").trim(),
        sql_secret,
        "the raw value was written"
    );
    ids.push(sql.id.clone());

    // Refused: a host the gate does not allow.
    let refused = agent
        .submit_json(&json!({"intent": "post elsewhere",
                             "action": http_action("unknown.invalid", "/refused", &corpus, &[])}))
        .await
        .unwrap();
    assert_eq!(refused.status, WriteStatus::Refused);
    secrets.push(("api_key (refused)".into(), "qk-/refused-7781aa".into()));
    ids.push(refused.id.clone());

    // Bad input echoing a secret: a clear 400 that does not repeat it.
    let mut answers = Vec::new();
    for bad in [
        json!({"intent": "x", "touches": "AKIAQWERTYUIOPASDFGH",
               "action": {"connector": "fs", "op": "delete", "path": "/nowhere"}}),
        json!({"intent": "x", "action": {"connector": "http", "method": "POST",
               "url": format!("http://{host}/run"), "headers": {"Authorization": "Bearer ab12-cd34-ef56-7890"}}}),
    ] {
        let (s, b) = gate
            .raw(
                Method::POST,
                "/v1/writes",
                &gate.tokens.agent,
                Some(bad.to_string().into_bytes()),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        answers.push(b.to_string());
    }
    secrets.push(("echoed aws key".into(), "AKIAQWERTYUIOPASDFGH".into()));
    secrets.push(("echoed bearer".into(), "ab12-cd34-ef56-7890".into()));

    // Fates: one approved and run, one rejected, one left to expire, one
    // left held; the form post approved.
    let reviewer = gate.client(&gate.tokens.reviewer);
    let ran = reviewer
        .approve(&held["run"], Some("reviewed".into()))
        .await
        .unwrap();
    assert_eq!(ran.status, WriteStatus::Executed, "{:?}", ran.history);
    if form.status == WriteStatus::Held {
        reviewer
            .approve(&form.id, Some("reviewed".into()))
            .await
            .unwrap();
    }
    let rejected = reviewer
        .reject(&held["reject"], "no: password: rj-Secret-5511")
        .await
        .unwrap();
    assert_eq!(rejected.status, WriteStatus::Rejected);
    secrets.push(("reject reason".into(), "rj-Secret-5511".into()));
    // The hold expires after 3 s; the sweep settles it.
    let mut expired = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if agent.write(&held["expire"]).await.unwrap().status == WriteStatus::Expired {
            expired = true;
            break;
        }
    }
    assert!(expired, "the held write expired");
    // The last held one expired meanwhile too: submit one more to stay held.
    let still = agent
        .submit_json(&json!({"intent": "post held",
                             "action": http_action(&host, "/held", &corpus,
                                 &[("X-Auth-Token".to_string(), "xat-still-5cc0ffee77".to_string())])}))
        .await
        .unwrap();
    assert_eq!(still.status, WriteStatus::Held);
    secrets.push((
        "X-Auth-Token (still held)".into(),
        "xat-still-5cc0ffee77".into(),
    ));
    ids.push(still.id.clone());
    // While it is held (3 s): its raw proposal is in the store, sealed,
    // and no secret is in any file in clear.
    let data = gate.data_dir();
    let store = data.join("recourse.db");
    let sealed = |id: &str| {
        sqlite(
            &store,
            &format!("SELECT json_extract(record, '$.sealed_proposal') IS NOT NULL FROM writes WHERE id = '{id}'"),
        )
        .trim()
        .to_string()
    };
    assert_eq!(
        sealed(&still.id),
        "1",
        "a held write keeps its sealed proposal"
    );
    let held_now = on_disk(&secrets, &data);
    assert!(
        held_now.is_empty(),
        "secrets in clear while held: {held_now:?}"
    );

    // Everything the API returns.
    let admin = gate.client(&gate.tokens.admin);
    let mut returned = Vec::new();
    returned.push(serde_json::to_string(&admin.audit().await.unwrap()).unwrap());
    returned.push(serde_json::to_string(&admin.writes(None).await.unwrap()).unwrap());
    for id in &ids {
        let (s, b) = gate
            .raw(
                Method::GET,
                &format!("/v1/writes/{id}"),
                &gate.tokens.admin,
                None,
            )
            .await;
        assert_eq!(s, 200);
        assert!(
            b.get("sealed_proposal").is_none(),
            "the API never returns the sealed proposal"
        );
        returned.push(b.to_string());
        let (_, b) = gate
            .raw(
                Method::GET,
                &format!("/v1/writes/{id}"),
                &gate.tokens.agent,
                None,
            )
            .await;
        returned.push(b.to_string());
    }
    returned.extend(answers);
    let api = returned.join("\n");
    let in_api = found(&secrets, api.as_bytes());
    assert!(
        in_api.is_empty(),
        "secrets returned by the API: {in_api:?}\n{}",
        context(&secrets, &in_api, &api)
    );
    // The masked forms show *that* a credential was sent.
    assert!(
        api.contains("\"X-Auth-Token\":\"[redacted]\""),
        "names stay visible"
    );
    assert!(api.contains("api_key=[redacted]"));
    assert!(api.contains("\"sha256\""), "file contents as a hash");

    // The event stream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    reader.abort();
    let events = streamed.lock().unwrap().clone();
    assert!(
        String::from_utf8_lossy(&events).contains("event: write"),
        "the stream carried the writes' events"
    );
    let in_events = found(&secrets, &events);
    assert!(
        in_events.is_empty(),
        "secrets in the event stream: {in_events:?}"
    );

    // The gate's log.
    let log = gate.log();
    assert!(!log.is_empty(), "the log was captured");
    let in_log = found(&secrets, log.as_bytes());
    assert!(in_log.is_empty(), "secrets in the gate's log: {in_log:?}");

    // Every byte of every file in the data directory, the database's
    // write-ahead log included, once every write has run, expired or was
    // rejected.
    let later = on_disk(&secrets, &data);
    assert!(
        later.is_empty(),
        "secrets in the data directory in clear: {later:?}"
    );

    // The rejected, expired and refused writes keep no sealed proposal,
    // nor do those that ran (nothing in their rollback needs a secret).
    for (what, id) in [("http", &held["run"]), ("fs", &fs.id), ("sql", &sql.id)] {
        assert_eq!(
            sealed(id),
            "0",
            "the {what} write ran: its raw action is gone"
        );
    }
    assert_eq!(sealed(&held["reject"]), "0");
    assert_eq!(sealed(&held["expire"]), "0");
    assert_eq!(sealed(&refused.id), "0");
}
