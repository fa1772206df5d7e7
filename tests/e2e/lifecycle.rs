//! The write lifecycle against the real binary: a SIGKILL at every crash
//! point of a rollback (fs delete, move, overwrite, forced over drift; SQL
//! update and delete) ends, after restart, with the rollback resumed,
//! finished and verified; the two-person rule survives a re-hold; an old
//! data directory migrates without losing a write or an audit entry.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use recourse_client::{WriteRecord, WriteStatus};
use serde_json::{json, Value};

use crate::harness::{make_project, token, tree_listing, TestGate};

/// A rollback of `rec` on a gate paused at `point`: SIGKILL when the point
/// is reached, then restart and let recovery finish it. Returns whether the
/// point was on this rollback's path.
async fn kill_rollback_at(
    gate: &mut TestGate,
    rec: &WriteRecord,
    point: &str,
    force: bool,
) -> bool {
    gate.kill();
    gate.spawn_paused_at(point);
    let lead = gate.client(&gate.tokens.incident);
    let id = rec.id.clone();
    let pending = tokio::spawn(async move { lead.rollback(&id, "crash sweep", force).await });
    // Whichever comes first: the gate says it reached the point (then it
    // is paused there), or the rollback answers (the point is not on its
    // path).
    let start = std::time::Instant::now();
    let hit = loop {
        if gate
            .wait_for_crash_point(point, Duration::from_millis(20))
            .await
        {
            break true;
        }
        if pending.is_finished() {
            break false;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{point}: neither reached nor finished"
        );
    };
    if hit {
        gate.kill();
        pending.abort();
    } else {
        let done = pending.await.unwrap().unwrap();
        assert_eq!(
            done.status,
            WriteStatus::RolledBack,
            "{point}: {:?}",
            done.rollback
        );
        gate.kill();
    }
    gate.spawn(&[]);
    hit
}

/// After the restart: rolled back, verified, started once, chain intact.
async fn assert_finished(gate: &TestGate, id: &str, point: &str) {
    let admin = gate.client(&gate.tokens.admin);
    let rec = admin.write(id).await.unwrap();
    assert_eq!(
        rec.status,
        WriteStatus::RolledBack,
        "{point}: {:?} {:?}",
        rec.rollback,
        rec.history
            .iter()
            .map(|t| (t.to, t.note.clone()))
            .collect::<Vec<_>>()
    );
    let report = rec.rollback.unwrap();
    assert!(report.verified, "{point}: {report:?}");
    let audit = admin.audit_after(0, 10_000).await.unwrap();
    let started = audit
        .iter()
        .filter(|e| e.write_id.as_deref() == Some(id) && e.action == "write.rolling_back")
        .count();
    assert_eq!(
        started, 1,
        "{point}: the rollback was resumed, not started again"
    );
    assert!(admin.verify_audit().await.unwrap().ok, "{point}");
}

fn fs_action(op: &str, path: &Path, to: Option<&Path>, content: Option<&str>) -> Value {
    let mut a = json!({"connector": "fs", "op": op, "path": path.to_str().unwrap()});
    if let Some(t) = to {
        a["to"] = json!(t.to_str().unwrap());
    }
    if let Some(c) = content {
        use base64::Engine;
        a["content_b64"] = json!(base64::engine::general_purpose::STANDARD.encode(c));
    }
    json!({"intent": format!("{op} for the crash sweep"), "action": a})
}

#[derive(Clone, Copy, Debug)]
enum FsCase {
    Delete,
    Move,
    Overwrite,
    /// A delete whose path was taken again after the write: a forced
    /// rollback moves the newcomer aside into the vault first.
    ForcedDelete,
}

async fn fs_sweep(case: FsCase) -> BTreeSet<&'static str> {
    fs_sweep_with(case, None).await
}

/// With `vault`, the gate's vault lies there (another file system: the
/// capture and the restore copy instead of renaming).
async fn fs_sweep_with(case: FsCase, vault: Option<&Path>) -> BTreeSet<&'static str> {
    let mut hits = BTreeSet::new();
    for point in recourse_connector_fs::RESTORE_CRASH_POINTS {
        let vault_dir = vault.map(|v| tempfile::tempdir_in(v).unwrap());
        let vault_arg = vault_dir.as_ref().map(|d| d.path().display().to_string());
        let extra: Vec<&str> = match &vault_arg {
            Some(v) => vec!["--vault", v.as_str()],
            None => vec![],
        };
        let mut gate = TestGate::start(&extra);
        let proj = gate.root.join("app");
        make_project(&proj);
        let file = proj.join("README");
        let before = tree_listing(&gate.root);
        let agent = gate.client(&gate.tokens.agent);
        let (proposal, force) = match case {
            FsCase::Delete | FsCase::ForcedDelete => {
                (fs_action("delete", &proj, None, None), false)
            }
            FsCase::Move => (
                fs_action("move", &proj, Some(&gate.root.join("moved")), None),
                false,
            ),
            FsCase::Overwrite => (
                fs_action("write", &file, None, Some("overwritten\n")),
                false,
            ),
        };
        let rec = agent.submit_json(&proposal).await.unwrap();
        assert_eq!(
            rec.status,
            WriteStatus::Executed,
            "{case:?}: {:?}",
            rec.decision.reasons
        );
        let force = if let FsCase::ForcedDelete = case {
            std::fs::create_dir_all(&proj).unwrap();
            std::fs::write(proj.join("newcomer"), "made after the delete").unwrap();
            true
        } else {
            force
        };
        if kill_rollback_at(&mut gate, &rec, point, force).await {
            hits.insert(*point);
        }
        assert_finished(&gate, &rec.id, point).await;
        assert_eq!(
            tree_listing(&gate.root),
            before,
            "{case:?} at {point}: the tree is back exactly"
        );
    }
    assert!(!hits.is_empty(), "{case:?}: no crash point was on its path");
    eprintln!("{case:?} (vault {vault:?}): killed at {hits:?}");
    hits
}

#[tokio::test]
async fn fs_delete_rollback_killed_at_every_point_resumes_and_verifies() {
    fs_sweep(FsCase::Delete).await;
}

/// The same with the vault on another file system (`/dev/shm`, a tmpfs):
/// captures and restores copy, and the copy's own steps are cut too.
#[tokio::test]
async fn fs_rollback_by_copy_killed_at_every_point_resumes_and_verifies() {
    use std::os::unix::fs::MetadataExt;
    let shm = Path::new("/dev/shm");
    let tmp = std::env::temp_dir();
    assert_ne!(
        std::fs::metadata(shm).unwrap().dev(),
        std::fs::metadata(&tmp).unwrap().dev(),
        "this test needs /dev/shm on another file system than {}",
        tmp.display()
    );
    let mut hits = fs_sweep_with(FsCase::ForcedDelete, Some(shm)).await;
    hits.extend(fs_sweep_with(FsCase::Move, Some(shm)).await);
    for point in recourse_connector_fs::RESTORE_COPY_CRASH_POINTS {
        if *point == "fs.restore.after_displace_to_copy" {
            // Only a forced move whose tree left `to` reaches it; the
            // connector's own tests cut there.
            continue;
        }
        assert!(
            hits.contains(point),
            "{point} was never reached by copy: {hits:?}"
        );
    }
}

#[tokio::test]
async fn fs_move_rollback_killed_at_every_point_resumes_and_verifies() {
    fs_sweep(FsCase::Move).await;
}

#[tokio::test]
async fn fs_overwrite_rollback_killed_at_every_point_resumes_and_verifies() {
    fs_sweep(FsCase::Overwrite).await;
}

#[tokio::test]
async fn fs_forced_rollback_over_drift_killed_at_every_point_resumes_and_verifies() {
    fs_sweep(FsCase::ForcedDelete).await;
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

/// The institution's rows, without the gate's applied markers.
fn rows(db: &Path) -> String {
    sqlite(db, ".dump")
        .lines()
        .filter(|l| !l.contains("recourse_applied"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn sql_sweep(op: &str) {
    let mut hits = BTreeSet::new();
    for point in recourse_connector_sql::RESTORE_CRASH_POINTS {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("shop.db");
        sqlite(
            &db,
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, state TEXT NOT NULL, total INTEGER);
             INSERT INTO orders VALUES (1, 'open', 10), (2, 'open', 20), (3, 'paid', 30);",
        );
        let before = rows(&db);
        let url = format!("shop=sqlite:{}", db.display());
        let mut gate = TestGate::start(&["--sql", &url]);
        let mut action = json!({"connector": "sql", "database": "shop", "op": op, "table": "orders",
                                "where": {"state": "open"}});
        if op == "update" {
            action["set"] = json!({"state": "cancelled", "total": 0});
        }
        let rec = gate
            .client(&gate.tokens.agent)
            .submit_json(&json!({"intent": "crash sweep", "action": action}))
            .await
            .unwrap();
        assert_eq!(
            rec.status,
            WriteStatus::Executed,
            "{op}: {:?}",
            rec.decision.reasons
        );
        assert_ne!(rows(&db), before);
        if kill_rollback_at(&mut gate, &rec, point, false).await {
            hits.insert(*point);
        }
        assert_finished(&gate, &rec.id, point).await;
        assert_eq!(
            rows(&db),
            before,
            "sql {op} at {point}: the rows are back exactly"
        );
    }
    assert_eq!(
        hits.len(),
        recourse_connector_sql::RESTORE_CRASH_POINTS.len(),
        "sql {op}: every point is on the path"
    );
}

#[tokio::test]
async fn sql_update_rollback_killed_at_every_point_resumes_and_verifies() {
    sql_sweep("update").await;
}

#[tokio::test]
async fn sql_delete_rollback_killed_at_every_point_resumes_and_verifies() {
    sql_sweep("delete").await;
}

/// Reproduced before the fix (through the real API): a customer-borne write
/// held for one approval; a risk officer links it to a patient's chart;
/// the first approval re-verifies and holds it again; one more approval ran
/// it. A patient needs two.
#[tokio::test]
async fn a_write_held_again_needs_the_approvals_its_new_decision_calls_for() {
    let gate = TestGate::start(&[]);
    let folder = gate.root.join("accounts");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("4411.json"), "{}").unwrap();
    let risk = gate.client(&gate.tokens.risk);
    let id = format!("fs:{}", folder.display());
    let cat = |body: Value| serde_json::from_value::<recourse_core::Catalog>(body).unwrap();
    risk.upsert_catalog(&cat(json!({"resources": [{"id": id, "bearer": "customer"},
        {"id": "chart:7", "reach": "external", "bearer": "patient"}], "edges": []})))
        .await
        .unwrap();
    let rec = gate
        .client(&gate.tokens.agent)
        .submit_json(&fs_action("delete", &folder, None, None))
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Held);
    assert_eq!(rec.required_approvals, 1);
    risk.upsert_catalog(&cat(
        json!({"resources": [], "edges": [{"from": id, "to": "chart:7",
        "why": "the chart cites these records"}]}),
    ))
    .await
    .unwrap();
    let r1 = gate
        .client(&gate.tokens.reviewer)
        .approve(&rec.id, Some("reviewed".into()))
        .await
        .unwrap();
    assert_eq!(r1.status, WriteStatus::Held, "held again");
    assert_eq!(r1.required_approvals, 2);
    let r2 = gate
        .client(&gate.tokens.reviewer2)
        .approve(&rec.id, Some("reviewed".into()))
        .await
        .unwrap();
    assert_eq!(
        r2.status,
        WriteStatus::Held,
        "one approval of two must not run it"
    );
    assert!(folder.exists());
    let rev3 = token(&gate.data_dir(), "rev-3", "reviewer");
    let r3 = gate
        .client(&rev3)
        .approve(&rec.id, Some("reviewed".into()))
        .await
        .unwrap();
    // Two approvals for the current decision: it runs, and stays held only
    // if the external chart keeps it uncovered: the decision holds for a
    // person, and the approvals are what let it run.
    assert_eq!(r3.status, WriteStatus::Executed, "{:?}", r3.history);
    assert!(!folder.exists());
}

/// An upgrade: a data directory from before the explicit lifecycle (its
/// catch-all `failed`, no claim columns) migrates on start, and nothing is
/// lost.
#[tokio::test]
async fn an_old_data_directory_migrates_without_losing_anything() {
    let mut gate = TestGate::start(&[]);
    let a = gate.root.join("a.txt");
    std::fs::write(&a, "a").unwrap();
    let agent = gate.client(&gate.tokens.agent);
    let rec = agent
        .submit_json(&fs_action("delete", &a, None, None))
        .await
        .unwrap();
    assert_eq!(rec.status, WriteStatus::Executed);
    let audit_before = gate
        .client(&gate.tokens.admin)
        .audit_after(0, 10_000)
        .await
        .unwrap();
    gate.kill();
    // Back to the old shape: the first schema only, and the write recorded
    // the old way for an outcome nobody could tell.
    let db = gate.data_dir().join("recourse.db");
    let note = "after restart: whether the write took effect cannot be known; a person must check";
    sqlite(
        &db,
        &format!(
            "DROP INDEX writes_by_claim;
             ALTER TABLE writes DROP COLUMN claim_owner;
             ALTER TABLE writes DROP COLUMN claim_until;
             DELETE FROM _sqlx_migrations WHERE version = 2;
             UPDATE writes SET status = 'failed',
               record = json_set(record, '$.status', 'failed', '$.history[#-1].to', 'failed', '$.history[#-1].note', '{note}'),
               summary = json_set(summary, '$.status', 'failed');"
        ),
    );
    gate.spawn(&[]);
    let admin = gate.client(&gate.tokens.admin);
    let after = admin.write(&rec.id).await.unwrap();
    assert_eq!(after.status, WriteStatus::OutcomeUnknown);
    let audit_after = admin.audit_after(0, 10_000).await.unwrap();
    assert_eq!(
        &audit_after[..audit_before.len()],
        &audit_before[..],
        "every audit entry kept"
    );
    assert!(admin.verify_audit().await.unwrap().ok);
    // And it has its way out: an incident lead settles it, and rolls back.
    let lead = gate.client(&gate.tokens.incident);
    let settled = lead
        .resolve(&rec.id, true, "the file is gone: it ran")
        .await
        .unwrap();
    assert_eq!(settled.status, WriteStatus::Executed);
    let back = lead.rollback(&rec.id, "undo", false).await.unwrap();
    assert_eq!(back.status, WriteStatus::RolledBack, "{:?}", back.rollback);
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "a");
}

/// Recovery at start reads every claim as stale: true only when no other
/// gate serves the same embedded store. A second one refuses to start.
#[tokio::test]
async fn a_second_gate_on_the_same_data_directory_refuses_to_start() {
    let gate = TestGate::start(&[]);
    let data = gate.data_dir();
    let out = Command::new(crate::harness::BIN)
        .args([
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another gate serves the data directory"),
        "{err}"
    );
    // The first one is untouched.
    assert!(
        gate.client(&gate.tokens.admin)
            .verify_audit()
            .await
            .unwrap()
            .ok
    );
}
