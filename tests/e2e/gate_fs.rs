//! The gate with the `fs` connector, as a real process: the seed's
//! wrong-directory case, concurrency, idempotency, crashes, freeze, audit,
//! bad input.

use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::codes;
use crate::harness::{make_project, recourse, tree_listing, TestGate};

fn delete(path: &std::path::Path, key: Option<&str>) -> Value {
    let mut p = json!({
        "intent": "delete the scratch project folder",
        "action": {"connector": "fs", "op": "delete", "path": path.to_str().unwrap()},
    });
    if let Some(k) = key {
        p["idempotency_key"] = json!(k);
    }
    p
}

#[tokio::test]
async fn wrong_directory_delete_is_held_when_its_rollback_lives_inside_and_restored_by_the_vault() {
    let gate = TestGate::start(&[]);
    let proj = gate.root.join("app");
    make_project(&proj);
    let before = tree_listing(&proj);
    let copy = gate.dir.path().join("copy-before");
    assert!(Command::new("cp")
        .args(["-a", proj.to_str().unwrap(), copy.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    let agent = gate.client(&gate.tokens.agent);

    // The agent's own plan: "git checkout" from the repository it deletes.
    let mut declared = delete(&proj, Some("declared"));
    declared["rollback"] = json!({"steps": [{
        "restores": [format!("fs:{}", proj.display())],
        "op": {"connector": "shell", "op": "exec", "cmd": "git checkout ."},
        "requires": [{"id": "git-history", "kind": "retained_log", "location": format!("fs:{}/.git", proj.display())}]
    }]});
    let held = agent.submit_json(&declared).await.unwrap();
    assert_eq!(
        held.status,
        recourse_client::WriteStatus::Held,
        "{:?}",
        codes(&held)
    );
    assert!(
        codes(&held).contains(&("evidence_in_blast_radius".into(), "git-history".into())),
        "{:?}",
        codes(&held)
    );
    assert_eq!(
        tree_listing(&proj),
        before,
        "a held write must not touch the tree"
    );

    // The gate-modelled capture alone: proceeds, the tree goes to the vault.
    let done = agent
        .submit_json(&delete(&proj, Some("vault")))
        .await
        .unwrap();
    assert_eq!(
        done.status,
        recourse_client::WriteStatus::Executed,
        "{:?} {:?}",
        codes(&done),
        done.history
    );
    assert!(!proj.exists(), "the delete ran");

    let lead = gate.client(&gate.tokens.incident);
    let back = lead
        .rollback(&done.id, "wrong directory", false)
        .await
        .unwrap();
    assert_eq!(
        back.status,
        recourse_client::WriteStatus::RolledBack,
        "{:?}",
        back.rollback
    );
    assert!(back.rollback.as_ref().unwrap().verified);
    let diff = Command::new("diff")
        .args([
            "-r",
            "--no-dereference",
            copy.to_str().unwrap(),
            proj.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "diff -r: {}",
        String::from_utf8_lossy(&diff.stdout)
    );
    assert_eq!(
        tree_listing(&proj),
        before,
        "modes, mtimes and links come back too"
    );

    // A second rollback is a conflict, and changes nothing.
    let n = gate.audit_len().await;
    let err = lead.rollback(&done.id, "again", false).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert_eq!(gate.audit_len().await, n);
    assert!(
        gate.client(&gate.tokens.admin)
            .verify_audit()
            .await
            .unwrap()
            .ok
    );
}

/// A folder whose bearer is a customer: every delete in it is held.
async fn customer_folder(gate: &TestGate) -> std::path::PathBuf {
    let dir = gate.root.join("customer");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("history.csv"), "15 years\n").unwrap();
    let catalog = json!({"resources": [{"id": format!("fs:{}", dir.display()), "bearer": "customer", "title": "customer files"}]});
    let (s, body) = gate
        .raw(
            Method::POST,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(catalog.to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    dir
}

#[tokio::test]
async fn fifty_concurrent_approvals_execute_once() {
    let gate = TestGate::start(&[]);
    let dir = customer_folder(&gate).await;
    let file = dir.join("history.csv");
    let held = gate
        .client(&gate.tokens.agent)
        .submit_json(&delete(&file, None))
        .await
        .unwrap();
    assert_eq!(held.status, recourse_client::WriteStatus::Held);
    assert!(
        codes(&held).iter().any(|(c, _)| c == "third_party_bearer"),
        "{:?}",
        codes(&held)
    );

    let mut tasks = Vec::new();
    for i in 0..50 {
        let token = if i % 2 == 0 {
            gate.tokens.reviewer.clone()
        } else {
            gate.tokens.reviewer2.clone()
        };
        let c = gate.client(&token);
        let id = held.id.clone();
        tasks.push(tokio::spawn(async move {
            c.approve(&id, Some("ok".into())).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.status(), Some(409), "{e}"),
        }
    }
    assert!(ok >= 1);
    let audit = gate.client(&gate.tokens.admin).audit().await.unwrap();
    let executed = audit
        .iter()
        .filter(|e| e.write_id.as_deref() == Some(&held.id) && e.action == "write.executed")
        .count();
    assert_eq!(executed, 1, "exactly one execution");
    let rec = gate
        .client(&gate.tokens.admin)
        .write(&held.id)
        .await
        .unwrap();
    assert_eq!(rec.status, recourse_client::WriteStatus::Executed);
    assert!(!file.exists());
}

#[tokio::test]
async fn the_same_idempotency_key_fifty_times_at_once_is_one_write() {
    let gate = TestGate::start(&[]);
    let file = gate.root.join("once.txt");
    std::fs::write(&file, "x").unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = gate.client(&gate.tokens.agent);
        let p = delete(&file, Some("same-key"));
        tasks.push(tokio::spawn(async move { c.submit_json(&p).await }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap().id);
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(gate.write_count().await, 1);
    // The same key with another proposal is a conflict, not a repeat.
    let other = delete(&gate.root.join("other.txt"), Some("same-key"));
    let err = gate
        .client(&gate.tokens.agent)
        .submit_json(&other)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(recourse_client::ErrorCode::IdempotencyConflict)
    );
    assert_eq!(gate.write_count().await, 1);
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_and_change_nothing() {
    let gate = TestGate::start(&[]);
    let file = gate.root.join("f.txt");
    std::fs::write(&file, "x").unwrap();
    let t = &gate.tokens;
    let customer = customer_folder(&gate).await;
    let held = gate
        .client(&t.agent)
        .submit_json(&delete(&customer.join("history.csv"), None))
        .await
        .unwrap();
    let rejected = gate
        .client(&t.agent)
        .submit_json(&delete(&customer, None))
        .await
        .unwrap();
    gate.client(&t.reviewer)
        .reject(&rejected.id, "no")
        .await
        .unwrap();
    let executed = gate
        .client(&t.agent)
        .submit_json(&delete(&file, None))
        .await
        .unwrap();
    assert_eq!(executed.status, recourse_client::WriteStatus::Executed);

    let audit = gate.audit_len().await;
    let writes = gate.write_count().await;
    let big = vec![b' '; 9 * 1024 * 1024];
    // (method, path, token, body, expected status, expected field)
    type Case<'a> = (
        Method,
        String,
        &'a str,
        Option<Vec<u8>>,
        u16,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/v1/writes".into(),
            &t.agent,
            Some(b"{not json".to_vec()),
            400,
            Some("body"),
        ),
        (
            Method::POST,
            "/v1/writes".into(),
            &t.agent,
            Some(br#"{"touches": "fs:/x", "action": {"connector": "fs"}}"#.to_vec()),
            400,
            Some("proposal.touches"),
        ),
        (
            Method::POST,
            "/v1/writes".into(),
            &t.agent,
            Some(br#"{"actoin": {}}"#.to_vec()),
            400,
            Some("proposal.actoin"),
        ),
        (
            Method::POST,
            "/v1/writes".into(),
            &t.agent,
            Some(br#"{"intent": "x"}"#.to_vec()),
            400,
            Some("proposal.action.connector"),
        ),
        (
            Method::POST,
            "/v1/writes".into(),
            &t.agent,
            Some(big),
            413,
            None,
        ),
        (
            Method::GET,
            "/v1/writes/w_nope".into(),
            &t.admin,
            None,
            404,
            None,
        ),
        (
            Method::GET,
            "/v1/writes?status=sideways".into(),
            &t.admin,
            None,
            400,
            Some("status"),
        ),
        (
            Method::POST,
            "/v1/writes".into(),
            &t.reviewer,
            Some(delete(&file, None).to_string().into_bytes()),
            403,
            None,
        ),
        (
            Method::POST,
            format!("/v1/writes/{}/approve", held.id),
            &t.agent,
            Some(b"{}".to_vec()),
            403,
            None,
        ),
        (
            Method::POST,
            format!("/v1/writes/{}/rollback", executed.id),
            &t.reviewer,
            Some(br#"{"reason": "r"}"#.to_vec()),
            403,
            None,
        ),
        (
            Method::POST,
            format!("/v1/writes/{}/approve", rejected.id),
            &t.reviewer,
            Some(b"{}".to_vec()),
            409,
            None,
        ),
        (
            Method::POST,
            format!("/v1/writes/{}/rollback", held.id),
            &t.incident,
            Some(br#"{"reason": "r"}"#.to_vec()),
            409,
            None,
        ),
        (
            Method::POST,
            format!("/v1/writes/{}/reject", held.id),
            &t.reviewer,
            Some(br#"{"reason": 5}"#.to_vec()),
            400,
            Some("reason"),
        ),
        (
            Method::POST,
            format!("/v1/writes/{}/reject", held.id),
            &t.reviewer,
            Some(br#"{"reason": "x", "extra": 1}"#.to_vec()),
            400,
            None,
        ),
        (
            Method::POST,
            "/v1/catalog".into(),
            &t.risk,
            Some(br#"{"edges": [{"from": "a:1", "to": "a:2"}]}"#.to_vec()),
            400,
            Some("edges[0].from"),
        ),
        (
            Method::POST,
            "/v1/catalog".into(),
            &t.reviewer,
            Some(br#"{"resources": []}"#.to_vec()),
            403,
            None,
        ),
        (
            Method::GET,
            "/v1/writes".into(),
            "rk_not_a_token",
            None,
            401,
            None,
        ),
    ];
    for (method, path, token, body, want, field) in cases {
        let (status, body) = gate.raw(method.clone(), &path, token, body).await;
        assert_eq!(status, want, "{method} {path}: {body}");
        let err = &body["error"];
        assert!(
            err["code"].is_string() && err["message"].is_string(),
            "{method} {path}: {body}"
        );
        if let Some(f) = field {
            assert_eq!(err["field"], f, "{method} {path}: {body}");
        }
    }
    assert_eq!(
        gate.audit_len().await,
        audit,
        "bad requests wrote nothing to the trail"
    );
    assert_eq!(
        gate.write_count().await,
        writes,
        "bad requests stored no write"
    );

    // An expired token.
    let data = gate.data_dir();
    let out = recourse(&[
        "token",
        "create",
        "--data-dir",
        data.to_str().unwrap(),
        "--name",
        "brief",
        "--role",
        "admin",
        "--ttl-s",
        "0",
    ]);
    let brief = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let (status, body) = gate.raw(Method::GET, "/v1/writes", &brief, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

#[tokio::test]
async fn path_tricks_are_refused_and_touch_nothing_outside() {
    let gate = TestGate::start(&[]);
    let outside = gate.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "keep").unwrap();
    std::os::unix::fs::symlink(&outside, gate.root.join("link")).unwrap();
    let root = gate.root.display().to_string();
    let paths = [
        format!("{root}/../outside/secret"),
        outside.join("secret").display().to_string(),
        format!("{root}/link/secret"),
        gate.data_dir().join("vault").display().to_string(),
    ];
    for p in paths {
        let rec = gate
            .client(&gate.tokens.agent)
            .submit_json(&json!({"intent": "escape", "action": {"connector": "fs", "op": "delete", "path": p}}))
            .await;
        match rec {
            Ok(rec) => assert_eq!(
                rec.status,
                recourse_client::WriteStatus::Refused,
                "{p}: {:?}",
                rec.decision.reasons
            ),
            Err(e) => assert!(matches!(e.status(), Some(400 | 403)), "{p}: {e}"),
        }
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("secret")).unwrap(),
        "keep"
    );
}

#[tokio::test]
async fn a_crash_between_capture_and_write_or_before_the_audit_entry_runs_the_write_once() {
    for point in ["before_capture_record", "after_capture", "after_execute"] {
        let mut gate = TestGate::start(&[]);
        let proj = gate.root.join("app");
        make_project(&proj);
        let before = tree_listing(&proj);
        gate.kill();
        let spec = format!("gate.{point}=return(abort)");
        gate.spawn(&[("FAILPOINTS", spec.as_str())]);
        let c = gate.client(&gate.tokens.agent);
        let p = delete(&proj, Some("crash"));
        let err = c.submit_json(&p).await.unwrap_err();
        assert!(
            err.status().is_none(),
            "{point}: the gate died mid-request: {err}"
        );
        let status = gate.wait_exit();
        assert!(!status.success(), "{point}: aborted");

        gate.spawn(&[]);
        let admin = gate.client(&gate.tokens.admin);
        let writes = admin.writes(None).await.unwrap();
        assert_eq!(writes.len(), 1, "{point}");
        let rec = admin.write(&writes[0].id).await.unwrap();
        assert_eq!(
            rec.status,
            recourse_client::WriteStatus::Executed,
            "{point}: {:?}",
            rec.history
        );
        assert!(!proj.exists(), "{point}");
        // The capture recovered from the vault keeps its binding to the
        // manifest (a restore checks it).
        assert!(
            rec.capture
                .as_ref()
                .and_then(|c| c.get("manifest_sha256"))
                .is_some(),
            "{point}: {:?}",
            rec.capture
        );
        // Submitting again (to the new process) is the same write, not a
        // second one.
        let again = gate
            .client(&gate.tokens.agent)
            .submit_json(&p)
            .await
            .unwrap();
        assert_eq!(again.id, rec.id);
        let executed = admin
            .audit()
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "write.executed")
            .count();
        assert_eq!(executed, 1, "{point}");
        assert!(admin.verify_audit().await.unwrap().ok, "{point}");
        let back = gate
            .client(&gate.tokens.incident)
            .rollback(&rec.id, "crash test", false)
            .await
            .unwrap();
        assert_eq!(
            back.status,
            recourse_client::WriteStatus::RolledBack,
            "{point}: {:?}",
            back.rollback
        );
        assert_eq!(tree_listing(&proj), before, "{point}");
    }
}

#[tokio::test]
async fn freeze_holds_everything_and_survives_a_restart() {
    let mut gate = TestGate::start(&[]);
    let file = gate.root.join("f.txt");
    std::fs::write(&file, "x").unwrap();
    let lead = gate.client(&gate.tokens.incident);
    let err = gate
        .client(&gate.tokens.reviewer)
        .freeze("r")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    lead.freeze("incident 42").await.unwrap();
    gate.kill();
    gate.spawn(&[]);
    let state = gate
        .client(&gate.tokens.incident)
        .freeze_state()
        .await
        .unwrap();
    assert!(state.frozen);
    assert_eq!(state.by.as_deref(), Some("lead-1"));
    let rec = gate
        .client(&gate.tokens.agent)
        .submit_json(&delete(&file, None))
        .await
        .unwrap();
    assert_eq!(rec.status, recourse_client::WriteStatus::Held);
    assert!(codes(&rec).iter().any(|(c, _)| c == "frozen"));
    let err = gate
        .client(&gate.tokens.reviewer)
        .approve(&rec.id, Some("reviewed".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(recourse_client::ErrorCode::Frozen));
    assert!(file.exists());
    gate.client(&gate.tokens.incident).resume().await.unwrap();
    // The held write's decision included the freeze; re-verification finds
    // it gone and holds it again with the new reasons: a person looks again.
    let again = gate
        .client(&gate.tokens.reviewer)
        .approve(&rec.id, Some("reviewed".into()))
        .await
        .unwrap();
    assert_eq!(again.status, recourse_client::WriteStatus::Held);
    let run = gate
        .client(&gate.tokens.reviewer)
        .approve(&rec.id, Some("reviewed".into()))
        .await
        .unwrap();
    assert_eq!(
        run.status,
        recourse_client::WriteStatus::Executed,
        "{:?}",
        run.history
    );
    assert!(!file.exists());
}

#[tokio::test]
async fn audit_verify_finds_an_edited_entry() {
    let mut gate = TestGate::start(&[]);
    let file = gate.root.join("f.txt");
    std::fs::write(&file, "x").unwrap();
    gate.client(&gate.tokens.agent)
        .submit_json(&delete(&file, None))
        .await
        .unwrap();
    gate.kill();
    let data = gate.data_dir();
    let out = recourse(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let db = data.join("recourse.db");
    let edit = Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE audit SET actor = 'someone-else' WHERE seq = 3;")
        .status()
        .unwrap();
    assert!(edit.success());
    let out = recourse(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["first_bad_seq"], 3, "{v}");
}

#[tokio::test]
async fn separation_of_duties_and_two_approvals_where_a_patient_pays() {
    let gate = TestGate::start(&[]);
    let dir = gate.root.join("patient");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("preauth.json"), "{}").unwrap();
    let catalog =
        json!({"resources": [{"id": format!("fs:{}", dir.display()), "bearer": "patient"}]});
    let (s, _) = gate
        .raw(
            Method::POST,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(catalog.to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 200);
    let admin = gate.client(&gate.tokens.admin);
    let own = admin
        .submit_json(&delete(&dir.join("preauth.json"), None))
        .await
        .unwrap();
    let err = admin
        .approve(&own.id, Some("reviewed".into()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(own.required_approvals, 2);
    let first = gate
        .client(&gate.tokens.reviewer)
        .approve(&own.id, Some("reviewed".into()))
        .await
        .unwrap();
    assert_eq!(
        first.status,
        recourse_client::WriteStatus::Held,
        "one of two"
    );
    let err = gate
        .client(&gate.tokens.reviewer)
        .approve(&own.id, Some("reviewed".into()))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(recourse_client::ErrorCode::AlreadyApproved)
    );
    let second = gate
        .client(&gate.tokens.reviewer2)
        .approve(&own.id, Some("reviewed".into()))
        .await
        .unwrap();
    assert_eq!(
        second.status,
        recourse_client::WriteStatus::Executed,
        "{:?}",
        second.history
    );
}
