//! `recourse report` against a gate holding the demo's cases (`recourse
//! demo`: the seed's seven cases and their safe twins, as live writes): the
//! report names each case's path, context and bearers as the seed's three
//! audits ask, from the gate and from its store alike, and carries no
//! secret.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use recourse_client::GateClient;
use serde_json::{json, Value};

use crate::harness::{recourse, BIN};

/// A running `recourse demo`; stopped with SIGINT, so that it stops its
/// gate too (the gate is its child, killed when the demo returns).
struct Demo {
    dir: tempfile::TempDir,
    child: Child,
    info: Value,
}

impl Demo {
    fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("demo.log")).unwrap();
        let child = Command::new(BIN)
            .args(["demo", "--dir"])
            .arg(dir.path().join("demo"))
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut demo = Demo {
            dir,
            child,
            info: Value::Null,
        };
        // demo.json is written once every case has been submitted.
        let info = demo.path().join("demo.json");
        let start = Instant::now();
        while !info.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "the demo did not finish: {}",
                std::fs::read_to_string(demo.dir.path().join("demo.log")).unwrap_or_default()
            );
            if let Ok(Some(status)) = demo.child.try_wait() {
                panic!(
                    "the demo exited ({status}): {}",
                    std::fs::read_to_string(demo.dir.path().join("demo.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // Written in one call, but read it until it parses.
        loop {
            if let Ok(v) =
                serde_json::from_str::<Value>(&std::fs::read_to_string(&info).unwrap_or_default())
            {
                demo.info = v;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        demo
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("demo")
    }

    fn gate(&self) -> String {
        self.info["gate"].as_str().unwrap().to_string()
    }

    fn token(&self, name: &str) -> String {
        self.info["tokens"][name].as_str().unwrap().to_string()
    }

    fn write_of(&self, case: &str) -> String {
        self.info["writes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["case"] == case)
            .unwrap_or_else(|| panic!("no case `{case}` in {}", self.info))["write"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn report(args: &[&str], out: &Path) -> (Value, String, String) {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let run = recourse(&all);
    assert!(
        run.status.success(),
        "recourse {all:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    (json, html, csv)
}

/// The kind whose listed writes include `write`.
fn kind_of<'a>(report: &'a Value, write: &str) -> &'a Value {
    report["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| {
            k["writes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["id"] == write)
        })
        .unwrap_or_else(|| panic!("no kind lists {write}"))
}

fn steps(kind: &Value) -> Vec<&Value> {
    kind["paths"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap())
        .collect()
}

const SECRETS: [&str; 3] = [
    "ghp_1234567890abcdefghijABCDEFGHIJ123456",
    "AKIAIOSFODNN7EXAMPLE",
    "hunter2-Secret-Pw",
];

#[tokio::test]
async fn the_monday_audit_names_the_seed_cases() {
    let demo = Demo::start();
    let gate = demo.gate();

    // One more write, carrying secrets in its body, a query string and its
    // proposed rollback: none may reach the report.
    let admin = GateClient::new(gate.clone(), demo.token("demo-admin"));
    let closure = demo.write_of("marketplace closure");
    let rec = admin.write(&closure).await.unwrap();
    let url = rec.proposal.action["url"].as_str().unwrap().to_string();
    let host = url.trim_start_matches("http://").split('/').next().unwrap();
    let agent = GateClient::new(gate.clone(), demo.token("integrity-bot"));
    let secret = agent
        .submit_json(&json!({
            "intent": "sync the partner feed",
            "touches": ["account:qa-seller-0001"],
            "action": {"connector": "http", "op": "request", "method": "POST",
                       "url": format!("http://{host}/feed?api_key={}", SECRETS[1]),
                       "body": {"partner": "acme", "token": SECRETS[0]}},
            "rollback": {"steps": [{"restores": ["account:qa-seller-0001"],
                "op": {"connector": "http", "op": "request", "method": "POST",
                       "url": format!("http://{host}/feed/undo?password={}", SECRETS[2])},
                "requires": [{"id": "feed-copy", "kind": "external_copy", "location": "vault:market"}]}]}
        }))
        .await
        .unwrap();

    let out = demo.dir.path().join("out");
    let (r, html, csv) = report(
        &["--gate", &gate, "--token", &demo.token("risk-officer")],
        &out,
    );

    // Audit 3: the seller account closure is the customer's, reaches their
    // external licences, and always needs a person.
    let k = kind_of(&r, &closure);
    assert_eq!(k["owners"], json!(["customer"]), "{k:#}");
    assert_eq!(k["needs_person"], "always");
    assert_eq!(k["counts"]["held"], 1);
    let unrestored = k["unrestored"].as_array().unwrap();
    assert!(
        unrestored
            .iter()
            .any(|u| u["resource"] == "licenses:seller-4411" && u["why"] == "external"),
        "{unrestored:?}"
    );
    assert_eq!(k["rollback"], "leaves_unrestored");
    // Its twin, the QA account, is the institution's: no person needed.
    let twin = kind_of(&r, &demo.write_of("marketplace closure, safe twin"));
    assert_eq!(twin["owners"], json!(["institution"]));
    assert_eq!(twin["needs_person"], "never");
    assert!(twin["key"]
        .as_str()
        .unwrap()
        .contains("marketplace.account"));

    // Audit 2: the folder delete counted on a .git inside its own blast
    // radius; the gate's own vault step is told apart from the agent's.
    let wrong = kind_of(&r, &demo.write_of("wrong working directory"));
    let all_steps = steps(wrong);
    let agent_step = all_steps
        .iter()
        .find(|s| s["source"] == "agent")
        .expect("the agent's git step");
    let git = agent_step["context"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["location"].as_str().unwrap().ends_with("/app/.git"))
        .expect("the .git context");
    assert!(git["inside_blast_radius"].as_u64().unwrap() >= 1, "{git:#}");
    assert!(all_steps
        .iter()
        .any(|s| s["source"] == "connector" && s["modelled_by"] == "fs"));
    assert_eq!(wrong["aspirational"], true);

    // Audit 1: the auto-renewal's cross-references resolve to manual
    // reconciliation: not reversible.
    let renewal = kind_of(&r, &demo.write_of("procurement auto-renewal"));
    assert_eq!(renewal["rollback"], "manual_step");
    assert!(steps(renewal).iter().any(|s| s["manual"] == true));
    assert_eq!(renewal["owners"], json!(["vendor"]));

    // Every catalog resource is there; the licences stand outside.
    let lic = r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "licenses:seller-4411")
        .unwrap();
    assert_eq!(lic["verdict"], "external");
    assert_eq!(lic["needs_person"], true);
    assert!(r["summary"]["kinds_not_reversible"].as_u64().unwrap() >= 3);
    let submitted = demo.info["writes"].as_array().unwrap().len();
    assert_eq!(submitted, 14, "the demo's seven cases and their twins");
    assert_eq!(r["summary"]["writes"], submitted + 1);

    // The page and the sheet.
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"));
    assert!(html.contains("licenses:seller-4411"));
    assert!(csv.starts_with("kind,connector,op,"));
    assert!(csv.lines().count() > 15, "{csv}");
    assert!(csv.contains("manual: manual reconciliation"));
    for text in [&html, &csv, &r.to_string()] {
        for s in SECRETS {
            assert!(!text.contains(s), "a secret in the report: {s}");
        }
    }
    assert!(r.to_string().contains(&secret.id));

    // The same report from the store, without the gate.
    let out2 = demo.dir.path().join("out-store");
    let data = demo.path().join("data");
    let (from_store, _, _) = report(&["--data-dir", data.to_str().unwrap()], &out2);
    let keys = |r: &Value| -> Vec<Value> {
        r["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| json!([k["key"], k["counts"], k["rollback"], k["needs_person"]]))
            .collect()
    };
    assert_eq!(keys(&from_store), keys(&r));
    assert_eq!(from_store["summary"], r["summary"]);

    // Agents do not read it.
    let refused = recourse(&[
        "report",
        "--gate",
        &gate,
        "--token",
        &demo.token("integrity-bot"),
        "--out",
        demo.dir.path().join("out-agent").to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("forbidden") || err.contains("403"), "{err}");
    assert!(!demo.dir.path().join("out-agent/report.json").exists());
}
