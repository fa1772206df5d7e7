//! Issue 11: the stored write is bound to its audit entry, and the trail to
//! a signed head kept elsewhere. Someone with write access to the store (the
//! sqlite3 CLI here), but not to the gate's key, edits a held write's path,
//! cuts the trail's tail, re-seals it: each is refused.

use std::path::Path;
use std::process::Command;

use recourse_gate::audit::{seal, AuditDraft, GENESIS};
use serde_json::{json, Value};

use crate::harness::{recourse, TestGate};

fn sqlite(db: &Path, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("run sqlite3");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn verify_anchor(data: &Path, anchor: &Path) -> (bool, String) {
    let out = recourse(&[
        "audit",
        "verify",
        "--data-dir",
        data.to_str().unwrap(),
        "--anchor",
        anchor.to_str().unwrap(),
    ]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn an_edited_stored_write_is_refused_and_a_cut_or_resealed_trail_fails_its_anchor() {
    let mut gate = TestGate::start(&["--checkpoint-every", "1", "--checkpoint-secs", "1"]);
    let db = gate.data_dir().join("recourse.db");

    // A held delete in a customer folder.
    let dir = gate.root.join("customer");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("history.csv"), "15 years\n").unwrap();
    let precious = gate.root.join("precious.txt");
    std::fs::write(&precious, "keep me\n").unwrap();
    let catalog = json!({"resources": [{"id": format!("fs:{}", dir.display()), "bearer": "customer", "title": "customer files"}]});
    let (s, body) = gate
        .raw(
            reqwest::Method::POST,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(catalog.to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let held = gate
        .client(&gate.tokens.agent)
        .submit_json(&json!({
            "intent": "delete the customer's history",
            "action": {"connector": "fs", "op": "delete", "path": dir.join("history.csv").to_str().unwrap()},
        }))
        .await
        .unwrap();
    assert_eq!(held.status, recourse_client::WriteStatus::Held);

    // The store is edited behind the gate: the held write now deletes
    // another file.
    sqlite(
        &db,
        &format!(
            "UPDATE writes SET record = json_set(record, '$.proposal.action.path', '{}') WHERE id = '{}'",
            precious.display(),
            held.id
        ),
    );
    let rec = gate
        .client(&gate.tokens.reviewer)
        .approve(&held.id, Some("looks fine".into()))
        .await
        .unwrap();
    assert_eq!(rec.status, recourse_client::WriteStatus::Failed, "{rec:?}");
    assert!(precious.exists(), "the edited path was not deleted");
    assert!(dir.join("history.csv").exists(), "nothing ran at all");
    let trail = gate.client(&gate.tokens.admin).audit().await.unwrap();
    let refused = trail
        .iter()
        .find(|e| e.write_id.as_deref() == Some(&held.id) && e.action == "write.mismatch")
        .expect("the mismatch is in the audit trail");
    assert!(
        refused.body["note"]
            .as_str()
            .unwrap()
            .contains("does not match its submission"),
        "{}",
        refused.body
    );

    // Wait for a checkpoint covering all that, then stop the gate.
    let data = gate.data_dir();
    let mut head: Option<Value> = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let out = recourse(&["audit", "export-head", "--data-dir", data.to_str().unwrap()]);
        if out.status.success() {
            let h: Value = serde_json::from_slice(&out.stdout).unwrap();
            if h["seq"].as_i64().unwrap() >= refused.seq {
                head = Some(h);
                break;
            }
        }
    }
    let head = head.expect("a signed head covering the mismatch");
    for k in ["seq", "hash", "key_id", "public_key", "signature"] {
        assert!(!head[k].is_null(), "export-head names {k}: {head}");
    }
    gate.kill();
    let seq = head["seq"].as_i64().unwrap();
    let anchor = gate.dir.path().join("head.json");
    std::fs::write(&anchor, head.to_string()).unwrap();

    // Intact: accepted.
    let (ok, out) = verify_anchor(&data, &anchor);
    assert!(ok, "{out}");

    // The tail cut below the head: the chain alone still verifies, the
    // anchor does not.
    let cut = gate.dir.path().join("cut");
    copy_dir(&data, &cut);
    sqlite(
        &cut.join("recourse.db"),
        &format!("DELETE FROM audit WHERE seq >= {seq}"),
    );
    let plain = recourse(&["audit", "verify", "--data-dir", cut.to_str().unwrap()]);
    assert!(plain.status.success(), "a cut trail fools the chain alone");
    let (ok, out) = verify_anchor(&cut, &anchor);
    assert!(!ok, "a cut trail must fail its anchor: {out}");

    // An entry before the head edited in place: refused.
    let edited = gate.dir.path().join("edited");
    copy_dir(&data, &edited);
    sqlite(
        &edited.join("recourse.db"),
        "UPDATE audit SET actor = 'someone else' WHERE seq = 2",
    );
    let (ok, out) = verify_anchor(&edited, &anchor);
    assert!(!ok, "an edited trail must fail its anchor: {out}");

    // Edited and re-sealed from the start (no key needed for that): the
    // chain verifies, the anchor does not.
    let resealed = gate.dir.path().join("resealed");
    copy_dir(&data, &resealed);
    let rows = {
        let store = recourse_gate::SqliteStore::open(&resealed).await.unwrap();
        recourse_gate::checkpoint::read_trail(&store).await.unwrap()
    };
    let mut prev = GENESIS.to_string();
    let mut sql = String::from("BEGIN;\n");
    for (i, e) in rows.iter().enumerate() {
        let mut body = e.body.clone();
        if e.write_id.as_deref() == Some(&held.id) && e.action == "write.mismatch" {
            body["note"] = json!("approved and run");
        }
        let draft = AuditDraft::new(&e.actor, &e.action, e.write_id.as_deref(), body);
        let sealed = seal(draft, i as i64 + 1, e.at, &prev);
        sql.push_str(&format!(
            "UPDATE audit SET body = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {};\n",
            sealed.body.to_string().replace('\'', "''"),
            sealed.prev_hash,
            sealed.hash,
            sealed.seq
        ));
        prev = sealed.hash;
    }
    sql.push_str("COMMIT;\n");
    sqlite(&resealed.join("recourse.db"), &sql);
    let plain = recourse(&["audit", "verify", "--data-dir", resealed.to_str().unwrap()]);
    assert!(
        plain.status.success(),
        "a re-sealed trail fools the chain alone: {}",
        String::from_utf8_lossy(&plain.stdout)
    );
    let (ok, out) = verify_anchor(&resealed, &anchor);
    assert!(!ok, "a re-sealed trail must fail its anchor: {out}");

    // A forged anchor (the signature of another head) is refused too.
    let mut forged = head.clone();
    forged["seq"] = json!(seq - 1);
    let forged_path = gate.dir.path().join("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let (ok, out) = verify_anchor(&data, &forged_path);
    assert!(!ok, "a forged anchor must be refused: {out}");
}
