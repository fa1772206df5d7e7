//! The crash sweep (RELIABILITY.md): the real gate, SIGKILLed at a named
//! crash point of a write's life, for each connector (fs write, delete and
//! move; SQL update, delete and insert; HTTP with a compensation), for a
//! write held for two approvals and one allowed at once. The gate is then
//! restarted armed at the same point (a crash during recovery), killed
//! again if recovery passes it, and restarted clean. Then:
//!
//! - after recovery nothing is left in flight, and the target is wholly as
//!   before (a write that did not run, or was rolled back) or wholly as
//!   after (a write that ran), as its status says;
//! - the flow is driven to its end (approve, roll back; a person settles a
//!   write whose outcome the gate cannot know, as they would: by looking);
//! - no acknowledged write is lost and none is stored twice (the agent
//!   submits again with its idempotency key, as a client retrying would);
//! - no write ran twice and no rollback ran twice (the target's own
//!   evidence: rows, calls received; and the audit trail's moves);
//! - the audit chain verifies and the target is back exactly.
//!
//! CI runs each point once, on a connector and flow picked by a fixed seed
//! (`RECOURSE_CRASH_SEED`, default 1) among those that reach it; the full
//! sweep (every point, every connector, both flows) is
//! `RECOURSE_CRASH_SWEEP=full cargo nextest run --workspace -E
//! 'test(crash_sweep)' --run-ignored all`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use recourse_client::{ClientError, GateClient, WriteRecord, WriteStatus};
use recourse_gate::crash_points as cp;
use recourse_gate::lifecycle::Step;
use serde_json::{json, Value};

use crate::gate_sql_http::{catalog, sqlite, start_systems, Systems};
use crate::harness::{make_project, tree_listing, TestGate};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    FsWrite,
    FsDelete,
    FsMove,
    SqlUpdate,
    SqlDelete,
    SqlInsert,
    Http,
}

pub(crate) const TARGETS: [Target; 7] = [
    Target::FsWrite,
    Target::FsDelete,
    Target::FsMove,
    Target::SqlUpdate,
    Target::SqlDelete,
    Target::SqlInsert,
    Target::Http,
];

/// How the write goes: allowed at once, held for two approvals, or held
/// and rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Allowed,
    Held,
    Rejected,
}

pub(crate) const FLOWS: [Flow; 3] = [Flow::Held, Flow::Allowed, Flow::Rejected];

const NEW_README: &str = "rewritten by the agent\n";
const ITEMS_BEFORE: &str = "1|bolts|5\n2|nuts|6\n";

/// The points this sweep crashes at: the gate's own, on the paths its
/// flows take, and the connectors' capture and restore points.
fn swept_points() -> Vec<&'static str> {
    let mut points: Vec<&'static str> = cp::NAMED
        .iter()
        .copied()
        // Reached by their own tests below (a freeze, a rewind, a refusal)
        // or only
        // during recovery (see `RECOVERY_PAIRS`).
        .filter(|p| {
            ![
                cp::FREEZE_AFTER_RECORD,
                cp::REWIND_AFTER_ITEM,
                cp::RECOVERY_AFTER_CLAIM,
                cp::STORE_AUDIT_BEFORE_COMMIT,
            ]
            .contains(p)
        })
        .collect();
    points.extend(
        [
            Step::Approval,
            Step::Approve,
            Step::Reject,
            Step::Start,
            Step::Captured,
            Step::Executed,
            Step::Rollback,
            Step::Compensate,
            Step::RolledBack,
        ]
        .map(Step::crash_point),
    );
    points.extend(recourse_connector_fs::SEAL_CRASH_POINTS);
    points.extend(recourse_connector_sql::RESTORE_CRASH_POINTS);
    points
}

/// A gate with one of each target, and what they held before the write.
pub(crate) struct World {
    pub(crate) gate: TestGate,
    _db_dir: tempfile::TempDir,
    db: PathBuf,
    systems: Systems,
    host: String,
    target: Target,
    flow: Flow,
    /// The fs root's listing before the write; the project's, for a move.
    before: Vec<String>,
    before_app: Vec<String>,
    /// The HTTP renewal's notice window, fixed once: the agent's retry
    /// must send the very same proposal with its key.
    until: String,
}

impl World {
    pub(crate) async fn new(target: Target, flow: Flow) -> World {
        Self::new_with(target, flow, &[]).await
    }

    /// [`World::new`] with more flags for the gate.
    pub(crate) async fn new_with(target: Target, flow: Flow, extra: &[&str]) -> World {
        let (host, systems) = start_systems().await;
        let db_dir = tempfile::tempdir().unwrap();
        let db = db_dir.path().join("shop.db");
        sqlite(
            &db,
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);
             INSERT INTO items VALUES (1, 'bolts', 5), (2, 'nuts', 6);",
        );
        let sql = format!("shop=sqlite:{}", db.display());
        let mut args = vec!["--sql", sql.as_str(), "--http-allow", host.as_str()];
        args.extend_from_slice(extra);
        let gate = TestGate::start(&args);
        let app = gate.root.join("app");
        make_project(&app);
        // The seed also sizes the project: more files, more restore items.
        for i in 0..seed() % 5 {
            let dir = app.join("data");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("part-{i}")), "x".repeat(1 << (8 + i))).unwrap();
        }
        let url = |p: &str| format!("http://{host}{p}");
        let mut resources = vec![json!({"id": "procure:api", "probe_prefix": url("/procure/")})];
        if flow != Flow::Allowed {
            // A patient bears the cost: two distinct approvals.
            for id in [
                format!("fs:{}", gate.root.display()),
                "sql:shop/items".to_string(),
                "contract:seats".to_string(),
            ] {
                resources
                    .push(json!({"id": id, "bearer": "patient", "title": "a patient's record"}));
            }
        }
        catalog(&gate, json!({"resources": resources, "edges": []})).await;
        let before = tree_listing(&gate.root);
        let before_app = tree_listing(&app);
        World {
            gate,
            _db_dir: db_dir,
            db,
            systems,
            host,
            target,
            flow,
            before,
            before_app,
            until: (chrono::Utc::now() + chrono::Duration::days(20)).to_rfc3339(),
        }
    }

    fn proposal(&self) -> Value {
        let root = &self.gate.root;
        let url = |p: &str| format!("http://{}{p}", self.host);
        let action = match self.target {
            Target::FsWrite => {
                use base64::Engine;
                json!({"connector": "fs", "op": "write", "path": root.join("app/README"),
                       "content_b64": base64::engine::general_purpose::STANDARD.encode(NEW_README)})
            }
            Target::FsDelete => {
                json!({"connector": "fs", "op": "delete", "path": root.join("app")})
            }
            Target::FsMove => json!({"connector": "fs", "op": "move", "path": root.join("app"),
                                     "to": root.join("app2")}),
            Target::SqlUpdate => json!({"connector": "sql", "database": "shop", "op": "update",
                                        "table": "items", "where": {"id": 1}, "set": {"qty": 7}}),
            Target::SqlDelete => json!({"connector": "sql", "database": "shop", "op": "delete",
                                        "table": "items", "where": {"id": 2}}),
            Target::SqlInsert => json!({"connector": "sql", "database": "shop", "op": "insert",
                                        "table": "items", "values": {"id": 3, "name": "washers", "qty": 1}}),
            Target::Http => {
                let until = &self.until;
                return json!({"intent": "renew seats", "idempotency_key": "sweep",
                    "touches": ["contract:seats"],
                    "action": {"connector": "http", "op": "request", "method": "POST", "url": url("/procure/seats/renew")},
                    "rollback": {"steps": [{"restores": ["contract:seats", format!("http:{}/procure/seats/renew", self.host)],
                        "op": {"connector": "http", "op": "request", "method": "POST", "url": url("/procure/seats/cancel")},
                        "requires": [{"id": "cancel-ok", "kind": "compensation", "location": "procure:api",
                                      "check": {"url": url("/procure/seats/cancellable"), "method": "GET"}},
                                     {"id": "notice", "kind": "window", "until": until}]}]}});
            }
        };
        json!({"intent": format!("{:?} for the crash sweep", self.target),
               "idempotency_key": "sweep", "action": action})
    }

    fn calls(&self, path: &str) -> usize {
        let want = format!("POST /procure/seats/{path}");
        self.systems
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| **c == want)
            .count()
    }

    fn items(&self) -> String {
        sqlite(&self.db, "SELECT id, name, qty FROM items ORDER BY id")
    }

    /// The target untouched (or put back exactly).
    fn is_before(&self) -> bool {
        match self.target {
            Target::FsWrite | Target::FsDelete | Target::FsMove => {
                tree_listing(&self.gate.root) == self.before
            }
            Target::SqlUpdate | Target::SqlDelete | Target::SqlInsert => {
                self.items() == ITEMS_BEFORE
            }
            // A renewal not sent, or sent once and cancelled once.
            Target::Http => self.calls("renew") == self.calls("cancel"),
        }
    }

    /// The write wholly done, once.
    fn is_after(&self) -> bool {
        let app = self.gate.root.join("app");
        match self.target {
            Target::FsWrite => {
                std::fs::read_to_string(app.join("README")).ok().as_deref() == Some(NEW_README)
            }
            Target::FsDelete => std::fs::symlink_metadata(&app).is_err(),
            Target::FsMove => {
                let to = self.gate.root.join("app2");
                std::fs::symlink_metadata(&app).is_err()
                    && to.is_dir()
                    && tree_listing(&to) == self.before_app
            }
            Target::SqlUpdate => self.items() == "1|bolts|7\n2|nuts|6\n",
            Target::SqlDelete => self.items() == "1|bolts|5\n",
            Target::SqlInsert => self.items() == "1|bolts|5\n2|nuts|6\n3|washers|1\n",
            Target::Http => self.calls("renew") == 1 && self.calls("cancel") == 0,
        }
    }

    fn describe(&self) -> String {
        match self.target {
            Target::FsWrite | Target::FsDelete | Target::FsMove => {
                format!("{:#?}", tree_listing(&self.gate.root))
            }
            Target::Http => format!(
                "renew sent {} times, cancel {}",
                self.calls("renew"),
                self.calls("cancel")
            ),
            _ => self.items(),
        }
    }
}

/// What the person (or agent) in the flow does next to a write in `rec`'s
/// state, or `None` when the flow is over.
pub(crate) fn next_request(
    w: &World,
    rec: Option<&WriteRecord>,
) -> Option<tokio::task::JoinHandle<Result<WriteRecord, ClientError>>> {
    let gate = &w.gate;
    let Some(rec) = rec else {
        let agent = gate.client(&gate.tokens.agent);
        let body = w.proposal();
        return Some(tokio::spawn(async move { agent.submit_json(&body).await }));
    };
    let id = rec.id.clone();
    match rec.status {
        WriteStatus::Held if w.flow == Flow::Rejected => {
            let rev = gate.client(&gate.tokens.reviewer);
            Some(tokio::spawn(async move {
                rev.reject(&id, "not this one").await
            }))
        }
        WriteStatus::Held => {
            let current: BTreeSet<&str> = rec
                .approvals
                .iter()
                .filter(|a| a.decision_hash == rec.decision_hash)
                .map(|a| a.by.as_str())
                .collect();
            let token = if current.contains("rev-1") {
                &gate.tokens.reviewer2
            } else {
                &gate.tokens.reviewer
            };
            let rev = gate.client(token);
            Some(tokio::spawn(async move {
                rev.approve(&id, Some("checked the record".into())).await
            }))
        }
        WriteStatus::Executed => {
            let lead = gate.client(&gate.tokens.incident);
            Some(tokio::spawn(async move {
                lead.rollback(&id, "crash sweep", false).await
            }))
        }
        // A rollback cut while it sent its compensation: a person looks,
        // and rolls back again only if the target did not take it.
        WriteStatus::RollbackFailed if !w.is_before() => {
            let lead = gate.client(&gate.tokens.incident);
            Some(tokio::spawn(async move {
                lead.rollback(&id, "the cancel did not arrive", false).await
            }))
        }
        // A person looks at the target and says whether it ran.
        WriteStatus::OutcomeUnknown => {
            let ran = w.is_after();
            let lead = gate.client(&gate.tokens.incident);
            Some(tokio::spawn(async move {
                lead.resolve(&id, ran, "looked at the target").await
            }))
        }
        _ => None,
    }
}

/// The one write of this world, if stored.
pub(crate) async fn the_write(w: &World, id: Option<&str>) -> Option<WriteRecord> {
    let admin = w.gate.client(&w.gate.tokens.admin);
    let all = admin.writes(None).await.unwrap();
    assert!(
        all.len() <= 1,
        "{:?}: more than one write stored: {:?}",
        w.target,
        all.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    if let Some(id) = id {
        assert!(
            all.iter().any(|r| r.id == id),
            "{:?}: the acknowledged write `{id}` was lost",
            w.target
        );
    }
    match all.first() {
        Some(r) => Some(admin.write(&r.id).await.unwrap()),
        None => None,
    }
}

/// After a restart: nothing in flight, and the target as the status says.
pub(crate) fn assert_settled(w: &World, rec: Option<&WriteRecord>, at: &str) {
    let Some(rec) = rec else {
        assert!(
            w.is_before(),
            "{at}: no write stored, yet the target changed: {}",
            w.describe()
        );
        return;
    };
    let ctx = format!(
        "{at} {:?}/{:?}: {} ({:?}); {:?}",
        w.target,
        w.flow,
        rec.status.as_str(),
        rec.waiting,
        rec.history
            .iter()
            .map(|t| (t.to.as_str(), t.note.clone()))
            .collect::<Vec<_>>()
    );
    match rec.status {
        WriteStatus::Approved | WriteStatus::Executing | WriteStatus::RollingBack => {
            panic!("{ctx}: left in flight after recovery")
        }
        WriteStatus::Executed => assert!(w.is_after(), "{ctx}: {}", w.describe()),
        WriteStatus::OutcomeUnknown => {
            // Only a write whose target keeps no evidence of it (an HTTP
            // call) may be unknown; and it is one or the other.
            assert_eq!(w.target, Target::Http, "{ctx}");
            assert!(w.is_before() || w.is_after(), "{ctx}: {}", w.describe());
        }
        // A compensation cut by the crash: sent or not, never twice.
        WriteStatus::RollbackFailed => {
            assert_eq!(w.target, Target::Http, "{ctx}");
            assert!(w.is_before() || w.is_after(), "{ctx}: {}", w.describe());
        }
        _ => assert!(w.is_before(), "{ctx}: {}", w.describe()),
    }
}

/// One run: crash at `point`, restart armed at `again` (a crash during
/// recovery), restart clean, finish the flow, check. Whether `point` was
/// reached.
async fn run_once(target: Target, flow: Flow, point: &str, again: &str) -> bool {
    let mut w = World::new(target, flow).await;
    w.gate.kill();
    w.gate.spawn_paused_at(point);
    let mut id: Option<String> = None;
    let mut hit = false;
    let start = Instant::now();
    for _ in 0..12 {
        let rec = the_write(&w, id.as_deref()).await;
        // An acknowledged write is known by id; one stored while its
        // answer was lost is found by the agent's retry (same key).
        let known = if id.is_some() { rec.as_ref() } else { None };
        let Some(request) = next_request(&w, known) else {
            break;
        };
        let reached = loop {
            if !hit
                && w.gate
                    .wait_for_crash_point(point, Duration::from_millis(20))
                    .await
            {
                break true;
            }
            if request.is_finished() {
                break false;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{point} {target:?}/{flow:?}: neither reached nor answered"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if reached {
            hit = true;
            request.abort();
            w.gate.kill();
            // Crash again if recovery passes `again` (the process is then
            // paused there; otherwise it came up, armed); then start clean.
            let _paused_in_recovery = w.gate.spawn_armed(again).await;
            w.gate.kill();
            w.gate.spawn(&[]);
            let rec = the_write(&w, id.as_deref()).await;
            assert_settled(&w, rec.as_ref(), point);
            continue;
        }
        let answered = request.await.unwrap().unwrap_or_else(|e| {
            panic!(
                "{point} {target:?}/{flow:?}: {e}; {}",
                w.gate
                    .log()
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        id = Some(answered.id);
    }
    assert_flow_ended(&w, id.as_deref(), point).await;
    hit
}

/// The end of a run: the write stored once and its flow ended (rejected,
/// or rolled back and verified, or settled by a person), the target back
/// exactly, nothing run or rolled back twice, the audit chain intact.
pub(crate) async fn assert_flow_ended(w: &World, id: Option<&str>, point: &str) {
    let (target, flow) = (w.target, w.flow);
    let rec = the_write(w, id)
        .await
        .unwrap_or_else(|| panic!("{point} {target:?}/{flow:?}: the write is gone"));
    let ctx = format!(
        "{point} {target:?}/{flow:?}: {} {:?}",
        rec.status.as_str(),
        rec.history
            .iter()
            .map(|t| (t.to.as_str(), t.note.clone()))
            .collect::<Vec<_>>()
    );
    match (flow, rec.status) {
        (Flow::Rejected, s) => assert_eq!(s, WriteStatus::Rejected, "{ctx}"),
        (_, WriteStatus::RolledBack) => {
            assert!(rec.rollback.as_ref().is_some_and(|r| r.verified), "{ctx}")
        }
        // Settled by a person as not run: nothing to roll back; or a
        // compensation a crash cut, which arrived (see `next_request`).
        (_, WriteStatus::Failed | WriteStatus::RollbackFailed) => {
            assert_eq!(target, Target::Http, "{ctx}")
        }
        _ => panic!("{ctx}: the flow did not end"),
    }
    assert!(w.is_before(), "{ctx}: not back: {}", w.describe());
    if target == Target::Http {
        assert!(w.calls("renew") <= 1, "{ctx}: the renewal was sent twice");
        assert!(w.calls("cancel") <= 1, "{ctx}: the cancel was sent twice");
    }
    let admin = w.gate.client(&w.gate.tokens.admin);
    let audit = admin.audit_after(0, 10_000).await.unwrap();
    let moves = |action: &str| {
        audit
            .iter()
            .filter(|e| e.write_id.as_deref() == Some(rec.id.as_str()) && e.action == action)
            .count()
    };
    assert_eq!(moves("write.submitted"), 1, "{ctx}");
    assert!(moves("write.executing") <= 1, "{ctx}: started twice");
    assert!(moves("write.executed") <= 1, "{ctx}: ran twice");
    // Only a compensation a crash cut is rolled back a second time, by a
    // person who saw it had not arrived.
    let rollbacks = if target == Target::Http { 2 } else { 1 };
    assert!(
        moves("write.rolling_back") <= rollbacks,
        "{ctx}: rollback started twice"
    );
    assert!(
        moves("write.rollback_result") <= rollbacks,
        "{ctx}: rollback ended twice"
    );
    assert!(admin.verify_audit().await.unwrap().ok, "{ctx}");
}

fn seed() -> usize {
    std::env::var("RECOURSE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Each swept point once (CI), on the first connector and flow, in an order
/// the seed turns, that reaches it; or every point on every connector and
/// flow (`full`). Returns the points reached.
async fn sweep(points: &[&'static str], full: bool) -> BTreeSet<&'static str> {
    let pairs: Vec<(Target, Flow)> = FLOWS
        .iter()
        .flat_map(|f| TARGETS.iter().map(move |t| (*t, *f)))
        .collect();
    let mut hits = BTreeSet::new();
    for (i, point) in points.iter().enumerate() {
        let turn = i + seed();
        for k in 0..pairs.len() {
            let (target, flow) = pairs[(turn + k) % pairs.len()];
            // A point of a connector is only on that connector's paths.
            let fs_only = recourse_connector_fs::SEAL_CRASH_POINTS.contains(point);
            let sql_only = recourse_connector_sql::RESTORE_CRASH_POINTS.contains(point);
            let is_fs = matches!(target, Target::FsWrite | Target::FsDelete | Target::FsMove);
            let is_sql = matches!(
                target,
                Target::SqlUpdate | Target::SqlDelete | Target::SqlInsert
            );
            if (fs_only && !is_fs) || (sql_only && !is_sql) {
                continue;
            }
            if run_once(target, flow, point, point).await {
                hits.insert(*point);
                if !full {
                    break;
                }
            }
        }
    }
    hits
}

#[tokio::test]
async fn a_sigkill_at_each_crash_point_loses_nothing_and_runs_nothing_twice() {
    let points = swept_points();
    let hits = sweep(&points, false).await;
    let missed: Vec<_> = points.iter().filter(|p| !hits.contains(*p)).collect();
    assert!(missed.is_empty(), "never reached: {missed:?}");
}

/// Every point, every connector, both flows: minutes. By hand, or with
/// `RECOURSE_CRASH_SWEEP=full` (scripts/crash-sweep.sh).
#[tokio::test]
#[ignore = "the full sweep: scripts/crash-sweep.sh"]
async fn full_crash_sweep() {
    if std::env::var("RECOURSE_CRASH_SWEEP").as_deref() != Ok("full") {
        return;
    }
    let points = swept_points();
    let started = Instant::now();
    let hits = sweep(&points, true).await;
    eprintln!(
        "crash sweep (seed {}): {} points reached of {} in {:?}",
        seed(),
        hits.len(),
        points.len(),
        started.elapsed()
    );
    let missed: Vec<_> = points.iter().filter(|p| !hits.contains(*p)).collect();
    assert!(missed.is_empty(), "never reached: {missed:?}");
}

/// Recovery itself crashed: a write left mid-run (killed after the connector
/// ran, before its outcome was recorded), and the restarted gate killed
/// again right after claiming it. Every connector.
#[tokio::test]
async fn a_crash_during_recovery_is_recovered_from() {
    for target in TARGETS {
        assert!(
            run_once(
                target,
                Flow::Held,
                cp::AFTER_EXECUTE,
                cp::RECOVERY_AFTER_CLAIM
            )
            .await,
            "{target:?}"
        );
    }
}

/// A freeze is durable once recorded, whether or not its caller heard: after
/// a SIGKILL there, nothing runs.
#[tokio::test]
async fn a_freeze_cut_before_its_answer_still_holds() {
    let mut w = World::new(Target::SqlUpdate, Flow::Allowed).await;
    w.gate.kill();
    w.gate.spawn_paused_at(cp::FREEZE_AFTER_RECORD);
    let lead = w.gate.client(&w.gate.tokens.incident);
    let pending = tokio::spawn(async move { lead.freeze("incident 7").await });
    assert!(
        w.gate
            .wait_for_crash_point(cp::FREEZE_AFTER_RECORD, Duration::from_secs(20))
            .await
    );
    pending.abort();
    w.gate.kill();
    w.gate.spawn(&[]);
    let agent = w.gate.client(&w.gate.tokens.agent);
    let rec = agent.submit_json(&w.proposal()).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Held, "frozen: nothing runs");
    assert!(w.is_before(), "{}", w.describe());
}

/// A rewind cut between two rollbacks: the first is rolled back once, the
/// second still executed; a second rewind finishes, rolling back nothing
/// twice.
#[tokio::test]
async fn a_rewind_cut_between_items_finishes_without_repeating_one() {
    let mut w = World::new(Target::SqlUpdate, Flow::Allowed).await;
    let agent: GateClient = w.gate.client(&w.gate.tokens.agent);
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let first = agent.submit_json(&w.proposal()).await.unwrap();
    let second = agent
        .submit_json(
            &json!({"intent": "second", "action": {"connector": "sql", "database": "shop",
            "op": "update", "table": "items", "where": {"id": 2}, "set": {"qty": 9}}}),
        )
        .await
        .unwrap();
    assert_eq!(first.status, WriteStatus::Executed);
    assert_eq!(second.status, WriteStatus::Executed);
    w.gate.kill();
    w.gate.spawn_paused_at(cp::REWIND_AFTER_ITEM);
    let lead = w.gate.client(&w.gate.tokens.incident);
    let req = recourse_client::RewindRequest {
        since,
        agent: None,
        preview: false,
        reason: "incident 8".into(),
        force: false,
    };
    let body = req.clone();
    let pending = tokio::spawn(async move { lead.rewind(&body).await });
    assert!(
        w.gate
            .wait_for_crash_point(cp::REWIND_AFTER_ITEM, Duration::from_secs(20))
            .await
    );
    pending.abort();
    w.gate.kill();
    w.gate.spawn(&[]);
    let admin = w.gate.client(&w.gate.tokens.admin);
    // Newest first: the second write went back, the first did not yet.
    assert_eq!(
        admin.write(&second.id).await.unwrap().status,
        WriteStatus::RolledBack
    );
    assert_eq!(
        admin.write(&first.id).await.unwrap().status,
        WriteStatus::Executed
    );
    let lead = w.gate.client(&w.gate.tokens.incident);
    let report = lead.rewind(&req).await.unwrap();
    assert_eq!(report.items.len(), 1, "{report:?}");
    assert!(w.is_before(), "{}", w.describe());
    let audit = admin.audit_after(0, 10_000).await.unwrap();
    for id in [&first.id, &second.id] {
        let started = audit
            .iter()
            .filter(|e| {
                e.write_id.as_deref() == Some(id.as_str()) && e.action == "write.rolling_back"
            })
            .count();
        assert_eq!(started, 1, "{id}");
    }
}

/// A refusal is one lone audit entry: cut inside its transaction, it leaves
/// no entry and no write; the agent's retry is refused with exactly one.
#[tokio::test]
async fn a_refusal_cut_before_its_entry_commits_leaves_nothing_half_done() {
    let mut w = World::new(Target::FsWrite, Flow::Allowed).await;
    let out = crate::harness::recourse(&[
        "token",
        "create",
        "--data-dir",
        w.gate.data_dir().to_str().unwrap(),
        "--name",
        "scoped",
        "--role",
        "agent",
        "--sql",
        "shop",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scoped = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let entries = w.gate.audit_len().await;
    w.gate.kill();
    w.gate.spawn_paused_at(cp::STORE_AUDIT_BEFORE_COMMIT);
    let client = w.gate.client(&scoped);
    let body = w.proposal();
    let pending = tokio::spawn(async move { client.submit_json(&body).await });
    assert!(
        w.gate
            .wait_for_crash_point(cp::STORE_AUDIT_BEFORE_COMMIT, Duration::from_secs(20))
            .await
    );
    pending.abort();
    w.gate.kill();
    w.gate.spawn(&[]);
    assert_eq!(
        w.gate.audit_len().await,
        entries,
        "no entry survived the cut"
    );
    assert_eq!(w.gate.write_count().await, 0);
    let again = w.gate.client(&scoped).submit_json(&w.proposal()).await;
    assert_eq!(again.unwrap_err().status(), Some(403));
    let audit = w.gate.client(&w.gate.tokens.admin).audit().await.unwrap();
    assert_eq!(audit.len(), entries + 1);
    assert_eq!(audit.last().unwrap().action, "write.out_of_scope");
    assert!(w.is_before(), "{}", w.describe());
    assert!(
        w.gate
            .client(&w.gate.tokens.admin)
            .verify_audit()
            .await
            .unwrap()
            .ok
    );
}
