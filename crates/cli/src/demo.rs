//! `recourse demo`: a gate on embedded SQLite with the seed's seven cases
//! (and their safe twins) as live writes against real files, a real SQLite
//! database and a local HTTP service standing in for the institution's
//! systems. Some writes end held, some executed and ready to roll back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use recourse_client::{GateClient, Role};
use recourse_gate::SqliteStore;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

/// The seed's cases that act over HTTP, as scenario files: their catalogs
/// and proposals are replayed against the local service.
const HTTP_CASES: &[(&str, &str)] = &[
    (
        "marketplace closure",
        include_str!("../../../assets/scenarios/seed_marketplace_closure.json"),
    ),
    (
        "marketplace closure, safe twin",
        include_str!("../../../assets/scenarios/seed_marketplace_closure_twin.json"),
    ),
    (
        "loan origination",
        include_str!("../../../assets/scenarios/seed_loan_origination.json"),
    ),
    (
        "loan origination, safe twin",
        include_str!("../../../assets/scenarios/seed_loan_origination_twin.json"),
    ),
    (
        "clinical pre-authorization",
        include_str!("../../../assets/scenarios/seed_clinical_preauth.json"),
    ),
    (
        "clinical pre-authorization, safe twin",
        include_str!("../../../assets/scenarios/seed_clinical_preauth_twin.json"),
    ),
    (
        "content moderation",
        include_str!("../../../assets/scenarios/seed_content_moderation.json"),
    ),
    (
        "content moderation, safe twin",
        include_str!("../../../assets/scenarios/seed_content_moderation_twin.json"),
    ),
    (
        "procurement auto-renewal",
        include_str!("../../../assets/scenarios/seed_procurement_auto_renewal.json"),
    ),
    (
        "procurement auto-renewal, safe twin",
        include_str!("../../../assets/scenarios/seed_procurement_auto_renewal_twin.json"),
    ),
];

pub struct DemoArgs {
    pub dir: PathBuf,
    pub listen: String,
}

/// The institution's systems, played by one local service: every request
/// succeeds, and evidence checks under `/missing/` fail.
async fn start_systems() -> anyhow::Result<String> {
    use axum::http::{StatusCode, Uri};
    async fn answer(uri: Uri) -> (StatusCode, axum::Json<Value>) {
        if uri.path().starts_with("/missing/") {
            (StatusCode::NOT_FOUND, axum::Json(json!({"present": false})))
        } else {
            (
                StatusCode::OK,
                axum::Json(json!({"ok": true, "path": uri.path()})),
            )
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().fallback(answer);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr.to_string())
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let ok = std::process::Command::new("git")
        .args([
            "-c",
            "user.email=dev@example.invalid",
            "-c",
            "user.name=dev",
        ])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("git {args:?}"))?
        .success();
    if !ok {
        bail!("git {args:?} failed in {}", dir.display());
    }
    Ok(())
}

/// A project folder with its git repository and an executable hook.
fn project(dir: &Path, what: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("src/main.rs"),
        format!("fn main() {{ println!(\"{what}\"); }}\n"),
    )?;
    std::fs::write(dir.join("README.md"), format!("# {what}\n"))?;
    git(dir, &["init", "-q"])?;
    git(dir, &["add", "."])?;
    git(dir, &["commit", "-qm", "initial"])?;
    let hook = dir.join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\ncargo fmt --check\n")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The consultancy's database: user data and the system prompt side by side.
async fn consult_db(path: &Path) -> anyhow::Result<()> {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await?;
    for stmt in [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, office TEXT)",
        "CREATE TABLE system_prompts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL)",
        "INSERT INTO users VALUES (1, 'Ada Byron', 'ada@consult.example', 'London'), (2, 'Grace Hopper', 'grace@consult.example', 'Arlington')",
        "INSERT INTO system_prompts VALUES (1, 'answer-policy', 'Answer from the firm''s approved sources only; cite them.')",
    ] {
        sqlx::query(stmt).execute(&mut conn).await?;
    }
    Ok(())
}

/// Rewrites a seed scenario into a live proposal: its hosts become paths on
/// the local service, evidence the scenario observed gets a `check` the gate
/// probes, and windows keep their distance from "now".
fn live(scenario: &Value, systems: &str) -> anyhow::Result<(Value, Value)> {
    let text = scenario.to_string();
    let text = text.replace("https://", &format!("http://{systems}/"));
    let mut s: Value = serde_json::from_str(&text)?;
    let then: chrono::DateTime<chrono::Utc> =
        s["now"].as_str().context("scenario without now")?.parse()?;
    let shift = chrono::Utc::now() - then;
    let observations = s["observations"].clone();
    let mut proposal = s["proposal"].take();
    // The http connector names the endpoint it calls `http:HOST/PATH`; the
    // compensating request puts back what that call changed.
    let endpoint = proposal["action"]["url"]
        .as_str()
        .and_then(|u| u.strip_prefix("http://"))
        .map(|u| format!("http:{u}"));
    let steps = proposal
        .get_mut("rollback")
        .and_then(|r| r.get_mut("steps"))
        .and_then(Value::as_array_mut);
    // Where the demo's local service answers checks: the risk officer
    // declares it as the `probe_prefix` of each evidence location, so the
    // gate may probe there (section 10).
    let mut probed = Vec::new();
    if let Some(steps) = steps {
        for step in steps {
            let compensates = step["op"]["connector"] == "http";
            if let (true, Some(e), Some(restores)) = (
                compensates,
                &endpoint,
                step.get_mut("restores").and_then(Value::as_array_mut),
            ) {
                restores.push(json!(e));
            }
            if let Some(reqs) = step.get_mut("requires").and_then(Value::as_array_mut) {
                for ev in reqs {
                    let id = ev["id"].as_str().unwrap_or("").to_string();
                    if ev["kind"] == "window" {
                        if let Some(until) = ev["until"]
                            .as_str()
                            .and_then(|u| u.parse::<chrono::DateTime<chrono::Utc>>().ok())
                        {
                            ev["until"] = json!((until + shift).to_rfc3339());
                        }
                    } else if let Some(o) = observations.get(&id) {
                        let present = o["present"].as_bool().unwrap_or(false);
                        let path = if present { "evidence" } else { "missing" };
                        ev["check"] = json!({"url": format!("http://{systems}/{path}/{id}"), "method": "GET"});
                        if let Some(loc) = ev["location"].as_str() {
                            probed.push(loc.to_string());
                        }
                    }
                }
            }
        }
    }
    let mut catalog = s["catalog"].take();
    if let Some(resources) = catalog["resources"].as_array_mut() {
        for loc in probed {
            let prefix = json!(format!("http://{systems}/"));
            match resources.iter_mut().find(|r| r["id"] == loc.as_str()) {
                Some(r) => r["probe_prefix"] = prefix,
                None => resources.push(json!({"id": loc, "probe_prefix": prefix})),
            }
        }
    }
    Ok((catalog, proposal))
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let data = dir.join("data");
    let root = dir.join("home");
    if data.exists() || root.exists() {
        bail!(
            "{} holds an earlier demo: give an empty --dir",
            dir.display()
        );
    }
    std::fs::create_dir_all(&data)?;
    let dev = root.join("dev");
    project(&dev.join("app"), "production service")?;
    project(&dev.join("projects/old-demo"), "old demo")?;
    let db = dir.join("consult.db");
    consult_db(&db).await?;
    let systems = start_systems().await?;

    let store = SqliteStore::open(&data).await?;
    let mut tokens = serde_json::Map::new();
    for (name, role) in [
        ("integrity-bot", Role::Agent),
        ("coding-agent", Role::Agent),
        ("platform-agent", Role::Agent),
        ("reviewer", Role::Reviewer),
        ("risk-officer", Role::RiskOfficer),
        ("incident-lead", Role::IncidentLead),
        ("demo-admin", Role::Admin),
    ] {
        let t = recourse_gate::create_token(&store, "demo", name, role, None).await?;
        tokens.insert(name.to_string(), json!(t));
    }
    drop(store);

    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args(["--listen", &args.listen, "--fs-root"])
        .arg(&root)
        .arg("--sql")
        .arg(format!("consult=sqlite:{}", db.display()))
        .args(["--http-allow", &systems])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("gate stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("the gate did not start in 30 s")??
        .context("the gate exited")?;
    let url = first
        .strip_prefix("recourse gate listening on ")
        .with_context(|| format!("unexpected line from the gate: {first}"))?
        .to_string();
    let token = |n: &str| {
        tokens
            .get(n)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let risk = GateClient::new(url.clone(), token("risk-officer"));

    // The catalog: the seed's institutional state, plus the local systems.
    let dev_id = format!("fs:{}", dev.display());
    let app_git = format!("fs:{}/app/.git", dev.display());
    let mut catalog = json!({"resources": [
        {"id": dev_id, "title": "a developer's home"},
        {"id": format!("{dev_id}/app"), "title": "the production service's working tree"},
        {"id": app_git, "title": "the production service's git history (local commits, stash, hooks)"},
        {"id": format!("{dev_id}/projects"), "title": "projects"},
        {"id": format!("{dev_id}/projects/old-demo"), "title": "the old demo the agent meant to delete"},
        {"id": "sql:consult/system_prompts", "title": "the assistant's behaviour", "kind": "sql.table"},
        {"id": "answers:consultants", "title": "answers already given to 40,000 consultants", "reach": "external", "bearer": "employee"}
    ], "edges": [
        {"from": "sql:consult/system_prompts", "to": "answers:consultants",
         "why": "every answer the platform gives 40,000 consultants follows this prompt; answers already given cannot be unsaid"}
    ]});
    let mut writes = Vec::new();
    for (name, text) in HTTP_CASES {
        let scenario: Value =
            serde_json::from_str(text).with_context(|| format!("scenario {name}"))?;
        let (cat, proposal) = live(&scenario, &systems)?;
        for key in ["resources", "edges"] {
            if let (Some(all), Some(more)) = (catalog[key].as_array_mut(), cat[key].as_array()) {
                all.extend(more.iter().cloned());
            }
        }
        writes.push((*name, "integrity-bot", proposal));
    }
    let mut cat: recourse_core::Catalog = serde_json::from_value(catalog)?;
    // The cases share some resources (a vault, a bureau): one entry each.
    let mut seen = std::collections::HashSet::new();
    cat.resources.reverse();
    cat.resources.retain(|r| seen.insert(r.id.clone()));
    cat.resources.reverse();
    let mut seen = std::collections::HashSet::new();
    cat.edges
        .retain(|e| seen.insert((e.from.clone(), e.to.clone())));
    risk.upsert_catalog(&cat)
        .await
        .context("loading the demo catalog")?;

    // The wrong directory: the agent meant projects/old-demo and deleted
    // its whole home, counting on git for the way back.
    writes.push((
        "wrong working directory",
        "coding-agent",
        json!({"intent": "delete the old demo project (run from the wrong directory)",
               "idempotency_key": "demo-wrong-dir",
               "action": {"connector": "fs", "op": "delete", "path": dev.display().to_string()},
               "rollback": {"steps": [{"restores": [dev_id],
                   "op": {"connector": "shell", "op": "exec", "cmd": "git checkout . && git stash pop"},
                   "requires": [{"id": "git-objects", "kind": "retained_log", "location": app_git}]}]}}),
    ));
    writes.push((
        "wrong working directory, safe twin",
        "coding-agent",
        json!({"intent": "delete the old demo project",
               "idempotency_key": "demo-old-demo",
               "action": {"connector": "fs", "op": "delete", "path": dev.join("projects/old-demo").display().to_string()}}),
    ));
    writes.push((
        "writable prompts",
        "platform-agent",
        json!({"intent": "tune the answer policy",
               "idempotency_key": "demo-prompt",
               "touches": ["sql:consult/system_prompts"],
               "action": {"connector": "sql", "database": "consult", "op": "update", "table": "system_prompts",
                          "where": {"id": 1}, "set": {"body": "Answer quickly; sources optional."}}}),
    ));
    writes.push((
        "writable prompts, safe twin",
        "platform-agent",
        json!({"intent": "fix a consultant's office",
               "idempotency_key": "demo-user",
               "action": {"connector": "sql", "database": "consult", "op": "update", "table": "users",
                          "where": {"id": 2}, "set": {"office": "Washington"}}}),
    ));

    let mut summary = Vec::new();
    for (name, agent, proposal) in writes {
        let client = GateClient::new(url.clone(), token(agent));
        match client.submit_json(&proposal).await {
            Ok(rec) => {
                println!("  {:<40} {:<10} {}", name, rec.status.as_str(), rec.id);
                summary.push(json!({"case": name, "write": rec.id, "status": rec.status}));
            }
            Err(e) => println!("  {name:<40} not submitted: {e}"),
        }
    }
    let info =
        json!({"gate": url, "tokens": tokens, "writes": summary, "fs_root": root, "database": db});
    std::fs::write(dir.join("demo.json"), serde_json::to_string_pretty(&info)?)?;
    println!("recourse demo ready: gate {url}");
    println!("  tokens and writes: {}", dir.join("demo.json").display());
    println!("  console token (admin): {}", token("demo-admin"));
    // Keep serving until interrupted or told to stop (scripts/demo.sh sends
    // SIGTERM when the console closes); the gate child goes with us
    // (`kill_on_drop`), so it never keeps the port after the demo.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        status = child.wait() => { bail!("the gate exited: {status:?}"); }
    }
    drop(child);
    Ok(())
}
