//! The catalog as a file, with a real gate: export, edit (the edge that
//! made a write hold goes), plan (that write would now proceed), apply (the
//! catalog is the file, one `catalog.replaced` entry), refusals that change
//! nothing, and `catalog test` offline.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{codes, recourse, TestGate};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = recourse(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn export_edit_plan_apply_with_a_real_gate() {
    let gate = TestGate::start(&[]);
    let app = gate.root.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("README"), "production code\n").unwrap();
    let app_id = format!("fs:{}", app.display());
    let risk = gate.client(&gate.tokens.risk);
    risk.upsert_catalog(
        &serde_json::from_value(json!({
            "resources": [
                {"id": app_id, "bearer": "institution"},
                {"id": "report:monthly", "reach": "external", "bearer": "institution"}
            ],
            "edges": [{"from": app_id, "to": "report:monthly", "why": "feeds the monthly report"}]
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let agent = gate.client(&gate.tokens.agent);
    let delete = |key: &str| {
        json!({"intent": "delete the app folder", "idempotency_key": key,
               "action": {"connector": "fs", "op": "delete", "path": app.to_str().unwrap()}})
    };
    let held = agent.submit_json(&delete("first")).await.unwrap();
    assert_eq!(held.status, recourse_client::WriteStatus::Held);
    assert!(
        codes(&held).contains(&("external".into(), "report:monthly".into())),
        "{:?}",
        codes(&held)
    );

    // Export, and take out the edge that made it hold.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.json");
    let f = file.to_str().unwrap();
    let (code, _, err) = run(&[
        "catalog",
        "export",
        "--gate",
        &gate.url,
        "--token",
        &gate.tokens.risk,
        "--out",
        f,
    ]);
    assert_eq!(code, 0, "{err}");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let exported = doc.clone();
    doc["edges"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["to"] != "report:monthly");
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    // TOML holds the same catalog.
    let toml_file = dir.path().join("catalog.toml");
    let (code, _, err) = run(&[
        "catalog",
        "export",
        "--gate",
        &gate.url,
        "--token",
        &gate.tokens.risk,
        "--out",
        toml_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&toml_file)
        .unwrap()
        .contains("[[edges]]"));

    // The plan: the edge goes, and the held write would now proceed.
    let (entries, catalog_before) = (gate.audit_len().await, risk.catalog().await.unwrap());
    let (code, out, err) = run(&[
        "catalog",
        "plan",
        f,
        "--gate",
        &gate.url,
        "--token",
        &gate.tokens.risk,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("REMOVED edges (1)"), "{out}");
    assert!(
        out.lines().any(|l| l.contains(&held.id)
            && l.contains("hold -> proceed")
            && l.contains("- external report:monthly")),
        "{out}"
    );
    let (code, out, err) = run(&[
        "catalog",
        "plan",
        f,
        "--gate",
        &gate.url,
        "--token",
        &gate.tokens.risk,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let plan: recourse_client::CatalogPlan = serde_json::from_str(&out).unwrap();
    assert_eq!(plan.writes.len(), 1, "{out}");
    assert_eq!(plan.writes[0].id, held.id);
    assert_eq!(plan.writes[0].after, recourse_core::Verdict::Proceed);
    let version = plan.version.to_string();

    let before = risk.catalog().await.unwrap();
    assert_eq!(before, catalog_before, "a plan changes nothing");
    assert_eq!(gate.audit_len().await, entries, "a plan audits nothing");
    // An agent may neither plan nor apply.
    for cmd in ["plan", "apply"] {
        let (code, _, err) = run(&[
            "catalog",
            cmd,
            f,
            "--gate",
            &gate.url,
            "--token",
            &gate.tokens.agent,
        ]);
        assert_eq!(code, 2, "{cmd}");
        assert!(err.contains("403"), "{cmd}: {err}");
    }
    // An invalid file is refused whole, naming the field: by the CLI
    // before it sends anything, and by the gate.
    let mut bad = doc.clone();
    bad["edges"]
        .as_array_mut()
        .unwrap()
        .push(json!({"from": app_id, "to": "report:nowhere"}));
    let bad_file = dir.path().join("bad.json");
    std::fs::write(&bad_file, bad.to_string()).unwrap();
    let (code, _, err) = run(&[
        "catalog",
        "apply",
        bad_file.to_str().unwrap(),
        "--gate",
        &gate.url,
        "--token",
        &gate.tokens.risk,
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("to: unknown resource `report:nowhere`"),
        "{err}"
    );
    let (status, body) = gate
        .raw(
            Method::PUT,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(json!({"catalog": bad}).to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["field"].as_str().unwrap().ends_with("].to"),
        "{body}"
    );
    // A stale version is refused.
    let (code, _, err) = run(&[
        "catalog",
        "apply",
        f,
        "--gate",
        &gate.url,
        "--token",
        &gate.tokens.risk,
        "--expect-version",
        "0",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("catalog_moved"), "{err}");
    assert_eq!(risk.catalog().await.unwrap(), before, "nothing changed");
    assert_eq!(gate.audit_len().await, entries, "nothing audited");

    // Apply: the catalog is the file, with one audit entry naming the change.
    let (code, out, err) = run(&[
        "catalog",
        "apply",
        f,
        "--gate",
        &gate.url,
        "--token",
        &gate.tokens.risk,
        "--expect-version",
        &version,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("applied: 1 edge removed"), "{out}");
    let now = risk.catalog().await.unwrap();
    assert_eq!(serde_json::to_value(&now).unwrap(), doc);
    assert_ne!(doc, exported);
    let trail = risk.audit().await.unwrap();
    let replaced: Vec<_> = trail
        .iter()
        .filter(|e| e.action == "catalog.replaced")
        .collect();
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].actor, "risk-1");
    assert_eq!(
        replaced[0].body["diff"]["edges_removed"][0]["to"],
        "report:monthly"
    );
    assert_eq!(gate.audit_len().await, entries + 1);
    // Applying it again changes nothing.
    let (code, out, _) = run(&[
        "catalog",
        "apply",
        f,
        "--gate",
        &gate.url,
        "--token",
        &gate.tokens.risk,
    ]);
    assert_eq!(code, 0);
    assert!(out.starts_with("no change"), "{out}");

    // The same delete, asked again, now runs.
    let again = agent.submit_json(&delete("second")).await.unwrap();
    assert_eq!(
        again.status,
        recourse_client::WriteStatus::Executed,
        "{:?}",
        codes(&again)
    );

    // `catalog test`, offline, against the file.
    let case = |expect: &str| {
        json!({"proposal": {"agent": "a", "intent": "i", "action": {},
                            "touches": ["report:monthly"], "rollback": {"steps": []}},
               "expect": expect, "expect_reasons": ["external"]})
        .to_string()
    };
    let ok = dir.path().join("ok.json");
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&ok, case("hold")).unwrap();
    std::fs::write(&wrong, case("proceed")).unwrap();
    let (code, out, err) = run(&["catalog", "test", "--catalog", f, ok.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&[
        "catalog",
        "test",
        "--catalog",
        f,
        ok.to_str().unwrap(),
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL") && out.contains("wrong.json: expected proceed, got hold"),
        "{out}"
    );

    // From the store directly, once the gate is stopped: the same file.
    let mut gate = gate;
    gate.kill();
    let (code, out, err) = run(&[
        "catalog",
        "export",
        "--data-dir",
        gate.data_dir().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let from_store: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(from_store["edges"], doc["edges"]);
}
