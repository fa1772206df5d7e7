//! One suite, run against every store: the in-memory one stands in for
//! SQLite in the lifecycle tests, so each behaviour the gate leans on is
//! checked on all three, from the same test body. The PostgreSQL cases each
//! get a fresh database on 127.0.0.1:5432 (dropped at the end); when nothing
//! answers there they skip, saying so, unless `RECOURSE_REQUIRE_PG=1`
//! (scripts/test.sh sets it when PostgreSQL is up), and then they fail.

use chrono::{DateTime, Duration, Utc};
use recourse_client::{
    FreezeState, GateMode, ModeState, Role, TokenScope, WriteRecord, WriteStatus,
};
use recourse_core::{Catalog, Edge, Resource};
use serde_json::json;
use tempfile::TempDir;

use super::{
    stored_bytes, Cas, Claimed, Inserted, MemoryStore, PostgresStore, SqliteStore, Store,
    StoreError, TokenRow, WriteFilter, WriteStore,
};
use crate::audit::{self, AuditDraft};

/// A store under test, and what it needs kept alive.
enum Backend {
    Memory(Box<MemoryStore>),
    Sqlite(SqliteStore, TempDir),
    Postgres(PostgresStore, TestDb),
}

/// The server the PostgreSQL cases use (the shared one: each case makes a
/// database of its own on it and drops it, nothing else is touched).
const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh database for one case, dropped when this is.
pub(crate) struct TestDb {
    name: String,
}

impl TestDb {
    /// A new empty database, or `None` (said on stderr) when PostgreSQL is
    /// not reachable and not required.
    pub(crate) async fn create() -> Option<TestDb> {
        let admin = match sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(3))
            .connect(PG_ADMIN_URL)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                if std::env::var("RECOURSE_REQUIRE_PG").as_deref() == Ok("1") {
                    panic!(
                        "PostgreSQL not reachable at {PG_ADMIN_URL} and RECOURSE_REQUIRE_PG=1: {e}"
                    );
                }
                // Straight to stderr: the harness captures `println!`.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: PostgreSQL not reachable at {PG_ADMIN_URL}: {e}"
                );
                return None;
            }
        };
        let name = format!("recourse_t_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create the test database");
        admin.close().await;
        Some(TestDb { name })
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime (or while a failed case
        // unwinds): a thread of its own with a runtime of its own drops the
        // database, forcing out connections a pool still holds.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let admin = sqlx::PgPool::connect(PG_ADMIN_URL).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                Ok::<(), sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

impl Backend {
    async fn memory() -> Self {
        Backend::Memory(Box::new(MemoryStore::new()))
    }

    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).await.expect("open sqlite");
        Backend::Sqlite(store, dir)
    }

    async fn postgres() -> Option<Self> {
        let db = TestDb::create().await?;
        let store = PostgresStore::new(&db.url()).expect("a store");
        store.ready().await.expect("migrate");
        Some(Backend::Postgres(store, db))
    }

    fn store(&self) -> &dyn Store {
        match self {
            Backend::Memory(s) => &**s,
            Backend::Sqlite(s, _) => s,
            Backend::Postgres(s, _) => s,
        }
    }

    /// Stores a freeze state that may not decode, behind the store's back.
    async fn plant_raw_freeze(&self, raw: &str) {
        match self {
            Backend::Memory(s) => s.plant_raw_freeze(raw),
            Backend::Sqlite(_, dir) => {
                // The store's own pools are private to its module: a second
                // connection to the same file does what an operator's
                // `sqlite3` session (or a bad migration) could.
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(dir.path().join("recourse.db"))
                    .busy_timeout(std::time::Duration::from_secs(30));
                let pool = sqlx::SqlitePool::connect_with(opts).await.expect("connect");
                sqlx::query("INSERT INTO state (key, value) VALUES ('freeze', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
                    .bind(raw)
                    .execute(&pool)
                    .await
                    .expect("plant freeze");
                pool.close().await;
            }
            Backend::Postgres(_, db) => {
                let pool = sqlx::PgPool::connect(&db.url()).await.expect("connect");
                sqlx::query("INSERT INTO state (key, value) VALUES ('freeze', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                    .bind(raw)
                    .execute(&pool)
                    .await
                    .expect("plant freeze");
                pool.close().await;
            }
        }
    }
}

/// Runs each named test body against a fresh store of every kind:
/// `store::tests::memory::<name>`, `store::tests::sqlite::<name>` and
/// `store::tests::postgres::<name>`.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&super::Backend::memory().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&super::Backend::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(backend) = super::Backend::postgres().await else { return };
                    super::$name(&backend).await;
                }
            )*
        }
    };
}

on_every_store!(
    idempotent_insert,
    cas_update_wins_once,
    lost_cas_writes_no_audit_entry,
    listing_filters_orders_and_limits,
    claim_renew_release_and_backoff,
    a_stale_fencing_token_records_nothing,
    a_freeze_stops_the_claim_and_the_start_of_an_approved_write,
    claimable_lists_free_in_flight_writes_oldest_first,
    a_move_out_of_flight_drops_the_claim,
    catalog_upsert_reports_before_after_and_applied,
    catalog_replace_removes_what_the_new_catalog_lacks,
    freeze_round_trips,
    freeze_fails_closed_on_a_corrupt_value,
    mode_round_trips_and_is_audited,
    tokens_are_unique_by_name,
    audit_chain_verifies_after_a_mix_of_operations,
    audit_newest_is_newest_first,
    audit_entry_for_finds_a_writes_first_entry_of_an_action,
    token_scopes_round_trip,
    revoking_marks_once_and_audits_once,
    pending_bytes_count_held_approved_and_executing_writes,
    the_quota_refuses_an_insert_that_would_pass_it_and_stores_nothing,
);

fn t0() -> DateTime<Utc> {
    // A fixed instant, so ordering by time does not depend on the clock.
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

/// A minimal write, built from its JSON form so that fields added to the
/// record later with defaults do not break the suite.
fn record(
    id: &str,
    agent: &str,
    key: Option<&str>,
    status: WriteStatus,
    at: DateTime<Utc>,
) -> WriteRecord {
    serde_json::from_value(json!({
        "id": id,
        "agent": agent,
        "status": status,
        "connector": "test",
        "proposal": {"agent": agent, "intent": format!("intent of {id}"), "idempotency_key": key,
                     "action": {"op": "noop"}, "touches": ["res:a"]},
        "decision": {"decision": "hold", "reasons": [], "blast_radius": [], "bearers": [],
                     "evidence": [], "steps": []},
        "proposal_hash": "p",
        "decision_hash": "d",
        "submitted_hash": "s",
        "created_at": at,
        "updated_at": at,
        "required_approvals": 1,
    }))
    .expect("a write record")
}

fn draft(action: &str, write_id: Option<&str>) -> AuditDraft {
    AuditDraft::new("tester", action, write_id, json!({"action": action}))
}

async fn audit_len(store: &dyn Store) -> usize {
    store.audit(0, -1).await.expect("audit").len()
}

async fn insert(store: &dyn Store, r: &WriteRecord) {
    let got = store
        .insert_write(r, draft("write.submitted", Some(&r.id)))
        .await
        .expect("insert");
    assert!(matches!(got, Inserted::New), "{} was not new", r.id);
}

async fn idempotent_insert(b: &Backend) {
    let store = b.store();
    let first = record("w1", "bot", Some("k1"), WriteStatus::Held, t0());
    insert(store, &first).await;

    // The same agent and key: the first write comes back, nothing stored.
    let again = record("w2", "bot", Some("k1"), WriteStatus::Held, t0());
    match store
        .insert_write(&again, draft("write.submitted", Some("w2")))
        .await
    {
        Ok(Inserted::Existing(existing)) => assert_eq!(*existing, first),
        other => panic!("expected the existing write, got {other:?}"),
    }
    assert!(store.write("w2").await.expect("read").is_none());
    assert_eq!(audit_len(store).await, 1, "a repeat writes no audit entry");

    // Keys are per agent; a write without a key is never a repeat.
    insert(
        store,
        &record("w3", "other", Some("k1"), WriteStatus::Held, t0()),
    )
    .await;
    insert(store, &record("w4", "bot", None, WriteStatus::Held, t0())).await;
    insert(store, &record("w5", "bot", None, WriteStatus::Held, t0())).await;

    let by_key = store.write_by_key("bot", "k1").await.expect("by key");
    assert_eq!(by_key.map(|r| r.id), Some("w1".to_string()));
    assert_eq!(
        store
            .write_by_key("other", "k1")
            .await
            .expect("by key")
            .map(|r| r.id),
        Some("w3".to_string())
    );
    assert!(store
        .write_by_key("bot", "nope")
        .await
        .expect("by key")
        .is_none());

    let (stored, version) = store.write("w1").await.expect("read").expect("w1 stored");
    assert_eq!(stored, first);
    assert_eq!(version, 1, "a new write starts at version 1");
    assert_eq!(audit_len(store).await, 4);
}

async fn cas_update_wins_once(b: &Backend) {
    let store = b.store();
    insert(store, &record("w1", "bot", None, WriteStatus::Held, t0())).await;
    let (current, v) = store.write("w1").await.expect("read").expect("stored");

    let mut approved = current.clone();
    approved.status = WriteStatus::Approved;
    approved.updated_at = t0() + Duration::seconds(1);
    let mut rejected = current.clone();
    rejected.status = WriteStatus::Rejected;
    rejected.updated_at = t0() + Duration::seconds(2);

    // Both from the same version, at once: exactly one may win.
    let (a, r) = tokio::join!(
        store.update_write(&approved, v, draft("write.approved", Some("w1"))),
        store.update_write(&rejected, v, draft("write.rejected", Some("w1"))),
    );
    let (a, r) = (a.expect("update"), r.expect("update"));
    assert!(
        a ^ r,
        "exactly one compare-and-set wins (approved {a}, rejected {r})"
    );

    let (stored, v2) = store.write("w1").await.expect("read").expect("stored");
    assert_eq!(v2, v + 1);
    assert_eq!(stored, if a { approved } else { rejected });
}

async fn lost_cas_writes_no_audit_entry(b: &Backend) {
    let store = b.store();
    insert(store, &record("w1", "bot", None, WriteStatus::Held, t0())).await;
    let (current, v) = store.write("w1").await.expect("read").expect("stored");
    let mut approved = current.clone();
    approved.status = WriteStatus::Approved;
    assert!(store
        .update_write(&approved, v, draft("write.approved", Some("w1")))
        .await
        .expect("update"));
    let entries = audit_len(store).await;

    let mut stale = current;
    stale.status = WriteStatus::Rejected;
    assert!(!store
        .update_write(&stale, v, draft("write.rejected", Some("w1")))
        .await
        .expect("update"));
    assert_eq!(
        audit_len(store).await,
        entries,
        "a lost CAS writes no audit entry"
    );
    let (stored, v2) = store.write("w1").await.expect("read").expect("stored");
    assert_eq!(
        stored.status,
        WriteStatus::Approved,
        "a lost CAS stores nothing"
    );
    assert_eq!(v2, v + 1);

    // An unknown write is a lost CAS too, not an error.
    let mut ghost = stored;
    ghost.id = "ghost".into();
    assert!(!store
        .update_write(&ghost, 1, draft("write.approved", Some("ghost")))
        .await
        .expect("update"));
    assert_eq!(audit_len(store).await, entries);
}

async fn listing_filters_orders_and_limits(b: &Backend) {
    let store = b.store();
    let s = Duration::seconds;
    insert(
        store,
        &record("a", "bot", None, WriteStatus::Held, t0() + s(2)),
    )
    .await;
    insert(
        store,
        &record("b", "bot", None, WriteStatus::Approved, t0() + s(1)),
    )
    .await;
    insert(
        store,
        &record("c", "other", None, WriteStatus::Held, t0() + s(3)),
    )
    .await;

    let ids = |v: Vec<WriteRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let all = WriteFilter::default();
    assert_eq!(
        ids(store.writes(&all).await.expect("list")),
        ["c", "a", "b"]
    );
    let unlimited = WriteFilter {
        limit: Some(-1),
        ..Default::default()
    };
    assert_eq!(
        ids(store.writes(&unlimited).await.expect("list")),
        ["c", "a", "b"]
    );
    let two = WriteFilter {
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(ids(store.writes(&two).await.expect("list")), ["c", "a"]);
    let held = WriteFilter {
        status: Some(WriteStatus::Held),
        ..Default::default()
    };
    assert_eq!(ids(store.writes(&held).await.expect("list")), ["c", "a"]);
    let bots_held = WriteFilter {
        status: Some(WriteStatus::Held),
        agent: Some("bot".into()),
        limit: None,
    };
    assert_eq!(ids(store.writes(&bots_held).await.expect("list")), ["a"]);

    let summaries = store.summaries(&held).await.expect("summaries");
    let expected: Vec<_> = store
        .writes(&held)
        .await
        .expect("list")
        .iter()
        .map(WriteRecord::summary)
        .collect();
    assert_eq!(summaries, expected);

    let mut counts = store.counts().await.expect("counts");
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(counts, [(WriteStatus::Approved, 1), (WriteStatus::Held, 2)]);
}

/// A gate that died between a move out of flight and its release left a
/// claim on a settled write; the next claim (a rollback's, by another gate
/// or the restarted one) must not wait for that lease.
async fn a_move_out_of_flight_drops_the_claim(b: &Backend) {
    let store = b.store();
    let s = Duration::seconds;
    let now = t0();
    insert(
        store,
        &record("w1", "bot", None, WriteStatus::Executing, now),
    )
    .await;
    taken(
        store
            .claim("w1", "dead-gate", now + s(30), now)
            .await
            .expect("claim"),
    );
    let (mut rec, v) = store.write("w1").await.expect("read").expect("stored");
    rec.status = WriteStatus::Executed;
    assert!(store
        .update_write(&rec, v, draft("write.executed", Some("w1")))
        .await
        .expect("update"));
    rec.status = WriteStatus::RollingBack;
    assert!(store
        .update_write(&rec, v + 1, draft("write.rolling_back", Some("w1")))
        .await
        .expect("update"));
    assert!(
        matches!(
            store
                .claim("w1", "next-gate", now + s(30), now + s(1))
                .await
                .expect("claim"),
            Claimed::Taken(_)
        ),
        "the dead gate's lease does not outlive its move out of flight"
    );
    // In flight, a claim stays with its moves.
    rec.status = WriteStatus::RollingBack;
    assert!(store
        .update_write(&rec, v + 2, draft("write.waiting", Some("w1")))
        .await
        .expect("update"));
    assert_eq!(
        store
            .claim("w1", "third-gate", now + s(30), now + s(2))
            .await
            .expect("claim"),
        Claimed::Refused
    );
}

/// The fencing token a claim was taken with; panics when it was not taken.
fn taken(c: Claimed) -> i64 {
    match c {
        Claimed::Taken(token) => token,
        other => panic!("the claim was not taken: {other:?}"),
    }
}

async fn claim_renew_release_and_backoff(b: &Backend) {
    let store = b.store();
    let s = Duration::seconds;
    let now = t0();
    insert(store, &record("w1", "bot", None, WriteStatus::Held, now)).await;

    // Only an in-flight write can be claimed.
    assert_eq!(
        store
            .claim("w1", "a", now + s(30), now)
            .await
            .expect("claim"),
        Claimed::Refused
    );
    assert_eq!(
        store
            .claim("nope", "a", now + s(30), now)
            .await
            .expect("claim"),
        Claimed::Refused
    );
    let (held, v) = store.write("w1").await.expect("read").expect("stored");
    let mut approved = held;
    approved.status = WriteStatus::Approved;
    assert!(store
        .update_write(&approved, v, draft("write.approved", Some("w1")))
        .await
        .expect("update"));

    let a = taken(
        store
            .claim("w1", "a", now + s(30), now)
            .await
            .expect("claim"),
    );
    // Held by `a`: nobody else takes it before the lease lapses, and a
    // second claim by `a` itself is refused too (a claim is renewed under
    // its token, never taken twice).
    for (who, at) in [("b", 0), ("b", 29), ("a", 10)] {
        assert_eq!(
            store
                .claim("w1", who, now + s(40), now + s(at))
                .await
                .expect("claim"),
            Claimed::Refused,
            "{who} at +{at}"
        );
    }
    assert!(store
        .claimable(now + s(29), 10)
        .await
        .expect("claimable")
        .is_empty());

    // The owner renews under its token; renewing is not a change of the
    // write. Another owner, or another token, renews nothing.
    let (_, before_renew) = store.write("w1").await.expect("read").expect("stored");
    assert!(!store.renew("w1", "b", a, now + s(60)).await.expect("renew"));
    assert!(!store
        .renew("w1", "a", a + 1, now + s(60))
        .await
        .expect("renew"));
    assert!(store.renew("w1", "a", a, now + s(60)).await.expect("renew"));
    let (current, after_renew) = store.write("w1").await.expect("read").expect("stored");
    assert_eq!(
        before_renew, after_renew,
        "a claim is not part of the version"
    );
    assert_eq!(
        store
            .claim("w1", "b", now + s(90), now + s(45))
            .await
            .expect("claim"),
        Claimed::Refused
    );

    // The worker's next compare-and-set, fenced with its token, is not
    // failed by its renewal.
    let mut executing = current;
    executing.status = WriteStatus::Executing;
    assert_eq!(
        store
            .update_write_under(
                &executing,
                after_renew,
                Some(a),
                draft("write.executing", Some("w1"))
            )
            .await
            .expect("update"),
        Cas::Done
    );

    // After the lease lapses, someone else can, with a greater token; the
    // old owner can no longer renew.
    let b_token = taken(
        store
            .claim("w1", "b", now + s(120), now + s(61))
            .await
            .expect("claim"),
    );
    assert!(b_token > a, "tokens grow: {a} then {b_token}");
    assert!(!store
        .renew("w1", "a", a, now + s(200))
        .await
        .expect("renew"));
    assert_eq!(
        store
            .claim("w1", "a", now + s(120), now + s(62))
            .await
            .expect("claim"),
        Claimed::Refused
    );

    // Only the owner, under its token, can release: `a`'s release changes
    // nothing, nor does `b`'s under an old token.
    store.release("w1", "a", a, None).await.expect("release");
    store.release("w1", "b", a, None).await.expect("release");
    assert_eq!(
        store
            .claim("w1", "c", now + s(120), now + s(63))
            .await
            .expect("claim"),
        Claimed::Refused
    );

    // `b` backs off until +200: nobody takes it up before then.
    store
        .release("w1", "b", b_token, Some(now + s(200)))
        .await
        .expect("release");
    assert!(store
        .claimable(now + s(199), 10)
        .await
        .expect("claimable")
        .is_empty());
    for who in ["b", "c"] {
        assert_eq!(
            store
                .claim("w1", who, now + s(300), now + s(199))
                .await
                .expect("claim"),
            Claimed::Refused
        );
    }
    assert_eq!(
        store.claimable(now + s(201), 10).await.expect("claimable"),
        ["w1"]
    );
    let c = taken(
        store
            .claim("w1", "c", now + s(300), now + s(201))
            .await
            .expect("claim"),
    );
    assert!(c > b_token);

    // A release without a backoff frees it at once.
    store.release("w1", "c", c, None).await.expect("release");
    assert_eq!(
        store.claimable(now + s(202), 10).await.expect("claimable"),
        ["w1"]
    );
    let d = taken(
        store
            .claim("w1", "d", now + s(300), now + s(202))
            .await
            .expect("claim"),
    );

    // A write that leaves flight cannot be claimed, even by its owner, nor
    // its claim renewed.
    let (cur, v) = store.write("w1").await.expect("read").expect("stored");
    let mut executed = cur;
    executed.status = WriteStatus::Executed;
    assert!(store
        .update_write(&executed, v, draft("write.executed", Some("w1")))
        .await
        .expect("update"));
    assert_eq!(
        store
            .claim("w1", "d", now + s(300), now + s(203))
            .await
            .expect("claim"),
        Claimed::Refused
    );
    assert!(!store
        .renew("w1", "d", d, now + s(300))
        .await
        .expect("renew"));
    assert!(store
        .claimable(now + s(400), 10)
        .await
        .expect("claimable")
        .is_empty());
}

/// Gate A's lease lapses mid-execution and gate B claims the write: A's
/// record (fenced with its old token) is refused and stores nothing, not
/// even an audit entry; B settles the write, once; a record with no fence
/// (a move not made under a claim) is not affected by the token.
async fn a_stale_fencing_token_records_nothing(b: &Backend) {
    let store = b.store();
    let s = Duration::seconds;
    let now = t0();
    insert(
        store,
        &record("w1", "bot", None, WriteStatus::Executing, now),
    )
    .await;
    let a = taken(
        store
            .claim("w1", "gate-a", now + s(30), now)
            .await
            .expect("claim"),
    );
    let (rec, v) = store.write("w1").await.expect("read").expect("stored");
    // A records its capture under its claim.
    let mut captured = rec.clone();
    captured.capture = Some(json!({"by": "a"}));
    assert_eq!(
        store
            .update_write_under(&captured, v, Some(a), draft("write.captured", Some("w1")))
            .await
            .expect("update"),
        Cas::Done
    );
    // A stalls past its lease; B takes the write up.
    let b_token = taken(
        store
            .claim("w1", "gate-b", now + s(90), now + s(31))
            .await
            .expect("claim"),
    );
    assert!(b_token > a);
    let entries = audit_len(store).await;
    // A comes back and records its result: refused, though the version it
    // read is still the write's.
    let mut by_a = captured.clone();
    by_a.status = WriteStatus::Executed;
    by_a.outcome = Some(json!({"by": "a"}));
    assert_eq!(
        store
            .update_write_under(&by_a, v + 1, Some(a), draft("write.executed", Some("w1")))
            .await
            .expect("update"),
        Cas::Fenced
    );
    assert_eq!(
        audit_len(store).await,
        entries,
        "a refused record audits nothing"
    );
    let (now_stored, v_now) = store.write("w1").await.expect("read").expect("stored");
    assert_eq!(now_stored.status, WriteStatus::Executing);
    assert_eq!(v_now, v + 1);
    // B settles it, once.
    let mut by_b = now_stored;
    by_b.status = WriteStatus::Executed;
    by_b.outcome = Some(json!({"by": "b"}));
    assert_eq!(
        store
            .update_write_under(
                &by_b,
                v_now,
                Some(b_token),
                draft("write.executed", Some("w1"))
            )
            .await
            .expect("update"),
        Cas::Done
    );
    // A tries again on the new version: still fenced off (the token is
    // checked before the version).
    assert_eq!(
        store
            .update_write_under(
                &by_a,
                v_now + 1,
                Some(a),
                draft("write.executed", Some("w1"))
            )
            .await
            .expect("update"),
        Cas::Fenced
    );
    let (done, _) = store.write("w1").await.expect("read").expect("stored");
    assert_eq!(done.outcome, Some(json!({"by": "b"})), "settled once, by b");
    let executed = store
        .audit(0, -1)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "write.executed")
        .count();
    assert_eq!(executed, 1);
    // A stale version with the right token is a plain lost race.
    let mut rolling = done.clone();
    rolling.status = WriteStatus::RollingBack;
    assert_eq!(
        store
            .update_write_under(
                &rolling,
                v_now,
                None,
                draft("write.rolling_back", Some("w1"))
            )
            .await
            .expect("update"),
        Cas::Moved
    );
}

/// A freeze acknowledged between a write's approval and its claim: the
/// claim refuses (in its own transaction), and so does the move into
/// `executing` of a write claimed before the freeze; a resume lets both
/// through. Moves that begin nothing go on while frozen.
async fn a_freeze_stops_the_claim_and_the_start_of_an_approved_write(b: &Backend) {
    let store = b.store();
    let s = Duration::seconds;
    let now = t0();
    insert(
        store,
        &record("w1", "bot", None, WriteStatus::Approved, now),
    )
    .await;
    insert(
        store,
        &record("w2", "bot", None, WriteStatus::Approved, now),
    )
    .await;
    insert(
        store,
        &record("w3", "bot", None, WriteStatus::Executing, now),
    )
    .await;
    // w2 is claimed before the freeze.
    let w2 = taken(
        store
            .claim("w2", "g", now + s(30), now)
            .await
            .expect("claim"),
    );
    let frozen = FreezeState {
        frozen: true,
        by: Some("lead".into()),
        at: Some(now),
        reason: Some("incident".into()),
    };
    store
        .set_freeze(&frozen, draft("gate.frozen", None))
        .await
        .expect("freeze");
    assert_eq!(
        store
            .claim("w1", "g", now + s(30), now)
            .await
            .expect("claim"),
        Claimed::Frozen
    );
    // Nor is it listed for the sweep (w2 is claimed, w3 is executing), so
    // approved writes waiting out a freeze never crowd out writes that can
    // be settled.
    assert_eq!(
        store.claimable(now + s(60), 10).await.expect("claimable"),
        ["w3"]
    );
    // Not approved: a write already executing (begun before the freeze) is
    // claimed to be settled; so is one being rolled back.
    let w3 = taken(
        store
            .claim("w3", "g", now + s(30), now)
            .await
            .expect("claim"),
    );
    let (rec2, v2) = store.write("w2").await.expect("read").expect("stored");
    let mut start = rec2.clone();
    start.status = WriteStatus::Executing;
    let entries = audit_len(store).await;
    assert_eq!(
        store
            .update_write_under(&start, v2, Some(w2), draft("write.executing", Some("w2")))
            .await
            .expect("update"),
        Cas::Frozen
    );
    // Unfenced, the same.
    assert!(!store
        .update_write(&start, v2, draft("write.executing", Some("w2")))
        .await
        .expect("update"));
    assert_eq!(audit_len(store).await, entries);
    assert_eq!(
        store
            .write("w2")
            .await
            .expect("read")
            .expect("stored")
            .0
            .status,
        WriteStatus::Approved
    );
    // Waiting (approved -> approved) and moves of an executing write go on.
    let mut waiting = rec2;
    waiting.waiting = Some("frozen".into());
    assert_eq!(
        store
            .update_write_under(&waiting, v2, Some(w2), draft("write.waiting", Some("w2")))
            .await
            .expect("update"),
        Cas::Done
    );
    let (rec3, v3) = store.write("w3").await.expect("read").expect("stored");
    let mut captured = rec3;
    captured.capture = Some(json!({}));
    assert_eq!(
        store
            .update_write_under(&captured, v3, Some(w3), draft("write.captured", Some("w3")))
            .await
            .expect("update"),
        Cas::Done
    );
    // A new write that would begin executing at once is not stored; a held
    // one is.
    let entries = audit_len(store).await;
    match store
        .insert_write(
            &record("w4", "bot", None, WriteStatus::Executing, now),
            draft("write.submitted", Some("w4")),
        )
        .await
    {
        Err(StoreError::Frozen) => {}
        other => panic!("expected a refusal for the freeze, got {other:?}"),
    }
    assert!(store.write("w4").await.expect("read").is_none());
    assert_eq!(audit_len(store).await, entries);
    insert(store, &record("w5", "bot", None, WriteStatus::Held, now)).await;
    // A freeze state that does not decode stops them too (fails closed).
    b.plant_raw_freeze("{not json").await;
    assert_eq!(
        store
            .claim("w1", "g", now + s(30), now)
            .await
            .expect("claim"),
        Claimed::Frozen
    );
    // Resumed: the claim and the start go through.
    let resumed = FreezeState {
        frozen: false,
        by: Some("lead".into()),
        at: Some(now),
        reason: None,
    };
    store
        .set_freeze(&resumed, draft("gate.resumed", None))
        .await
        .expect("resume");
    taken(
        store
            .claim("w1", "g", now + s(30), now)
            .await
            .expect("claim"),
    );
    let (rec2, v2) = store.write("w2").await.expect("read").expect("stored");
    let mut start = rec2;
    start.status = WriteStatus::Executing;
    assert_eq!(
        store
            .update_write_under(&start, v2, Some(w2), draft("write.executing", Some("w2")))
            .await
            .expect("update"),
        Cas::Done
    );
}

async fn claimable_lists_free_in_flight_writes_oldest_first(b: &Backend) {
    let store = b.store();
    let s = Duration::seconds;
    let now = t0() + s(100);
    let in_flight = |id: &str, status, updated: i64| {
        let mut r = record(id, "bot", None, status, t0());
        r.updated_at = t0() + s(updated);
        r
    };
    let writes = [
        in_flight("late", WriteStatus::Approved, 30),
        in_flight("early", WriteStatus::Executing, 10),
        in_flight("middle", WriteStatus::RollingBack, 20),
        in_flight("held", WriteStatus::Held, 1),
        in_flight("done", WriteStatus::Executed, 2),
        in_flight("taken", WriteStatus::Approved, 3),
    ];
    for w in &writes {
        insert(store, w).await;
    }
    taken(
        store
            .claim("taken", "x", now + s(60), now)
            .await
            .expect("claim"),
    );

    assert_eq!(
        store.claimable(now, 10).await.expect("claimable"),
        ["early", "middle", "late"]
    );
    assert_eq!(
        store.claimable(now, 2).await.expect("claimable"),
        ["early", "middle"]
    );
    // The lease on `taken` lapses.
    assert_eq!(
        store.claimable(now + s(61), 10).await.expect("claimable"),
        ["taken", "early", "middle", "late"]
    );
}

async fn catalog_upsert_reports_before_after_and_applied(b: &Backend) {
    let store = b.store();
    let titled = |id: &str, title: &str| Resource {
        title: Some(title.into()),
        ..Resource::new(id)
    };
    let edge = |from: &str, to: &str, why: &str| Edge {
        from: from.into(),
        to: to.into(),
        why: Some(why.into()),
    };
    assert_eq!(
        store.catalog().await.expect("catalog"),
        (Catalog::default(), 0)
    );

    // A connector discovers two resources and an edge.
    let first = Catalog {
        resources: vec![titled("r1", "one"), titled("r2", "two")],
        edges: vec![edge("r1", "r2", "feeds")],
    };
    let up = store
        .upsert_catalog(&first, false, Some(draft("catalog.discovered", None)))
        .await
        .expect("upsert");
    assert_eq!((up.before, up.after), (0, 1));
    assert_eq!(up.applied, first);

    // Discovery keeps what exists: only the new resource is stored.
    let second = Catalog {
        resources: vec![titled("r1", "renamed"), titled("r3", "three")],
        edges: vec![edge("r1", "r2", "other")],
    };
    let up = store
        .upsert_catalog(&second, false, Some(draft("catalog.discovered", None)))
        .await
        .expect("upsert");
    assert_eq!((up.before, up.after), (1, 2));
    assert_eq!(
        up.applied,
        Catalog {
            resources: vec![titled("r3", "three")],
            edges: vec![],
        }
    );

    // Discovering only what exists changes nothing: no bump, no entry.
    let entries = audit_len(store).await;
    let up = store
        .upsert_catalog(
            &second_only_existing(),
            false,
            Some(draft("catalog.discovered", None)),
        )
        .await
        .expect("upsert");
    assert_eq!((up.before, up.after), (2, 2));
    assert_eq!(up.applied, Catalog::default());
    assert_eq!(audit_len(store).await, entries, "no change, no audit entry");
    assert_eq!(store.catalog_version().await.expect("version"), 2);

    // A replace overwrites in place and bumps the version.
    let edit = Catalog {
        resources: vec![titled("r1", "renamed")],
        edges: vec![edge("r1", "r2", "other")],
    };
    let up = store
        .upsert_catalog(&edit, true, Some(draft("catalog.edited", None)))
        .await
        .expect("upsert");
    assert_eq!((up.before, up.after), (2, 3));
    assert_eq!(up.applied, edit);
    assert_eq!(audit_len(store).await, entries + 1);

    let (catalog, version) = store.catalog().await.expect("catalog");
    assert_eq!(version, 3);
    assert_eq!(
        catalog,
        Catalog {
            resources: vec![
                titled("r1", "renamed"),
                titled("r2", "two"),
                titled("r3", "three")
            ],
            edges: vec![edge("r1", "r2", "other")],
        },
        "resources and edges keep their first place"
    );

    // Without an audit draft the change is still stored and counted.
    let up = store
        .upsert_catalog(
            &Catalog {
                resources: vec![titled("r4", "four")],
                edges: vec![],
            },
            false,
            None,
        )
        .await
        .expect("upsert");
    assert_eq!((up.before, up.after), (3, 4));
    assert_eq!(audit_len(store).await, entries + 1);
}

async fn catalog_replace_removes_what_the_new_catalog_lacks(b: &Backend) {
    let store = b.store();
    let edge = |from: &str, to: &str| Edge {
        from: from.into(),
        to: to.into(),
        why: None,
    };
    let first = Catalog {
        resources: vec![
            Resource::new("r1"),
            Resource::new("r2"),
            Resource::new("r3"),
        ],
        edges: vec![edge("r1", "r2"), edge("r2", "r3")],
    };
    let up = store
        .upsert_catalog(&first, true, Some(draft("catalog.upserted", None)))
        .await
        .expect("upsert");
    assert_eq!(up.after, 1);
    let entries = audit_len(store).await;

    // The file drops r3 and the edge to it, changes r1, adds r0 first.
    let file = Catalog {
        resources: vec![
            Resource::new("r0"),
            Resource {
                title: Some("one".into()),
                ..Resource::new("r1")
            },
            Resource::new("r2"),
        ],
        edges: vec![edge("r0", "r1"), edge("r1", "r2")],
    };
    // A stale expected version stores nothing and writes no entry.
    assert_eq!(
        store
            .replace_catalog(&file, 0, draft("catalog.replaced", None))
            .await
            .expect("replace"),
        None
    );
    assert_eq!(store.catalog().await.expect("catalog"), (first, 1));
    assert_eq!(audit_len(store).await, entries);

    assert_eq!(
        store
            .replace_catalog(&file, 1, draft("catalog.replaced", None))
            .await
            .expect("replace"),
        Some(2)
    );
    assert_eq!(
        store.catalog().await.expect("catalog"),
        (file.clone(), 2),
        "exactly the file, in its order"
    );
    assert_eq!(store.catalog_version().await.expect("version"), 2);
    assert_eq!(audit_len(store).await, entries + 1, "one audit entry");

    // What was removed can be added again, and appends after the rest.
    let up = store
        .upsert_catalog(
            &Catalog {
                resources: vec![Resource::new("r3")],
                edges: vec![edge("r2", "r3")],
            },
            false,
            None,
        )
        .await
        .expect("upsert");
    assert_eq!((up.before, up.after), (2, 3));
    let (catalog, _) = store.catalog().await.expect("catalog");
    assert_eq!(catalog.resources.last(), Some(&Resource::new("r3")));
    assert_eq!(catalog.edges.len(), 3);

    // Replacing with nothing empties the catalog.
    assert_eq!(
        store
            .replace_catalog(&Catalog::default(), 3, draft("catalog.replaced", None))
            .await
            .expect("replace"),
        Some(4)
    );
    assert_eq!(
        store.catalog().await.expect("catalog"),
        (Catalog::default(), 4)
    );
}

fn second_only_existing() -> Catalog {
    Catalog {
        resources: vec![Resource {
            title: Some("yet another name".into()),
            ..Resource::new("r1")
        }],
        edges: vec![Edge {
            from: "r1".into(),
            to: "r2".into(),
            why: None,
        }],
    }
}

async fn freeze_round_trips(b: &Backend) {
    let store = b.store();
    assert_eq!(
        store.freeze().await.expect("freeze"),
        FreezeState::default()
    );
    let frozen = FreezeState {
        frozen: true,
        by: Some("lead".into()),
        at: Some(t0()),
        reason: Some("incident 42".into()),
    };
    store
        .set_freeze(&frozen, draft("gate.frozen", None))
        .await
        .expect("set");
    assert_eq!(store.freeze().await.expect("freeze"), frozen);
    let thawed = FreezeState::default();
    store
        .set_freeze(&thawed, draft("gate.resumed", None))
        .await
        .expect("set");
    assert_eq!(store.freeze().await.expect("freeze"), thawed);
    assert_eq!(audit_len(store).await, 2);
}

async fn freeze_fails_closed_on_a_corrupt_value(b: &Backend) {
    for raw in ["not json", r#"{"frozen": "yes"}"#, ""] {
        b.plant_raw_freeze(raw).await;
        match b.store().freeze().await {
            Err(StoreError::Corrupt(_)) => {}
            other => panic!("freeze on {raw:?} must fail closed, got {other:?}"),
        }
    }
    // Setting a good state again heals it.
    b.store()
        .set_freeze(&FreezeState::default(), draft("gate.resumed", None))
        .await
        .expect("set");
    assert!(!b.store().freeze().await.expect("freeze").frozen);
}

async fn mode_round_trips_and_is_audited(b: &Backend) {
    let store = b.store();
    // A store nobody switched enforces.
    assert_eq!(store.mode().await.expect("mode").mode, GateMode::Enforce);
    let observe = ModeState {
        mode: GateMode::Observe,
        by: Some("admin".into()),
        at: Some(t0()),
        reason: Some("rollout week 1".into()),
    };
    store
        .set_mode(&observe, draft("gate.mode", None))
        .await
        .expect("set");
    assert_eq!(store.mode().await.expect("mode"), observe);
    // The freeze is its own key: switching the mode leaves it alone.
    assert!(!store.freeze().await.expect("freeze").frozen);
    let enforce = ModeState {
        mode: GateMode::Enforce,
        ..observe.clone()
    };
    store
        .set_mode(&enforce, draft("gate.mode", None))
        .await
        .expect("set");
    assert_eq!(store.mode().await.expect("mode"), enforce);
    assert_eq!(audit_len(store).await, 2);
}

async fn tokens_are_unique_by_name(b: &Backend) {
    let store = b.store();
    let row = TokenRow {
        name: "ci".into(),
        role: Role::Agent,
        hash: "h1".into(),
        expires_at: Some(t0()),
        scope: None,
        revoked_at: None,
    };
    store
        .create_token(&row, draft("token.created", None))
        .await
        .expect("create");
    let again = TokenRow {
        hash: "h2".into(),
        ..row.clone()
    };
    match store
        .create_token(&again, draft("token.created", None))
        .await
    {
        Err(StoreError::DuplicateToken(name)) => assert_eq!(name, "ci"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(audit_len(store).await, 1);

    let found = store
        .token_by_hash("h1")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(
        (found.name, found.role, found.hash, found.expires_at),
        (row.name, row.role, row.hash, row.expires_at)
    );
    assert!(store.token_by_hash("h2").await.expect("lookup").is_none());
}

async fn audit_chain_verifies_after_a_mix_of_operations(b: &Backend) {
    let store = b.store();
    let token = TokenRow {
        name: "ci".into(),
        role: Role::Agent,
        hash: "h".into(),
        expires_at: None,
        scope: None,
        revoked_at: None,
    };
    store
        .create_token(&token, draft("token.created", None))
        .await
        .expect("token");
    insert(
        store,
        &record("w1", "ci", Some("k"), WriteStatus::Held, t0()),
    )
    .await;
    // A repeat and a lost CAS: neither may leave a gap or an entry.
    let _ = store
        .insert_write(
            &record("w2", "ci", Some("k"), WriteStatus::Held, t0()),
            draft("write.submitted", Some("w2")),
        )
        .await
        .expect("repeat");
    let (r, v) = store.write("w1").await.expect("read").expect("stored");
    let mut approved = r.clone();
    approved.status = WriteStatus::Approved;
    assert!(store
        .update_write(&approved, v, draft("write.approved", Some("w1")))
        .await
        .expect("update"));
    assert!(!store
        .update_write(&r, v, draft("write.rejected", Some("w1")))
        .await
        .expect("update"));
    store
        .upsert_catalog(
            &Catalog {
                resources: vec![Resource::new("r1")],
                edges: vec![],
            },
            false,
            Some(draft("catalog.discovered", None)),
        )
        .await
        .expect("catalog");
    store
        .set_freeze(
            &FreezeState {
                frozen: true,
                ..Default::default()
            },
            draft("gate.frozen", None),
        )
        .await
        .expect("freeze");
    let appended = store
        .append_audit(AuditDraft::new(
            "gate",
            "note",
            None,
            json!({"nested": {"b": 1, "a": [2]}}),
        ))
        .await
        .expect("append");
    assert_eq!(appended.seq, 6);

    let entries = store.audit(0, 1000).await.expect("audit");
    let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "token.created",
            "write.submitted",
            "write.approved",
            "catalog.discovered",
            "gate.frozen",
            "note"
        ]
    );
    assert_eq!(
        entries.last(),
        Some(&appended),
        "what append returns is what is stored"
    );
    assert_eq!(entries[0].prev_hash, audit::GENESIS);
    let verified = audit::verify(&entries);
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.entries, 6);
    assert_eq!(verified.head, appended.hash);

    // Paging forward: after a sequence number, with a limit.
    let page = store.audit(2, 2).await.expect("audit");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    assert!(store.audit(6, 10).await.expect("audit").is_empty());
}

async fn audit_newest_is_newest_first(b: &Backend) {
    let store = b.store();
    assert!(store
        .audit_newest(None, 10)
        .await
        .expect("audit")
        .is_empty());
    for i in 1..=5 {
        store
            .append_audit(draft(&format!("a{i}"), None))
            .await
            .expect("append");
    }
    let seqs = |v: Vec<recourse_client::AuditEntry>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.audit_newest(None, 3).await.expect("audit")),
        [5, 4, 3]
    );
    assert_eq!(
        seqs(store.audit_newest(Some(3), 10).await.expect("audit")),
        [2, 1]
    );
    assert_eq!(
        seqs(store.audit_newest(Some(1), 10).await.expect("audit")),
        Vec::<i64>::new()
    );
    assert_eq!(
        seqs(store.audit_newest(None, -1).await.expect("audit")),
        [5, 4, 3, 2, 1]
    );
}

async fn audit_entry_for_finds_a_writes_first_entry_of_an_action(b: &Backend) {
    let store = b.store();
    assert!(store
        .audit_entry_for("w1", "write.submitted")
        .await
        .expect("audit")
        .is_none());
    store
        .append_audit(draft("write.submitted", Some("w0")))
        .await
        .expect("append");
    insert(store, &record("w1", "bot", None, WriteStatus::Held, t0())).await;
    store
        .append_audit(draft("write.submitted", Some("w1")))
        .await
        .expect("append");
    store
        .append_audit(draft("write.approved", Some("w1")))
        .await
        .expect("append");
    let got = store
        .audit_entry_for("w1", "write.submitted")
        .await
        .expect("audit")
        .expect("an entry");
    // The first one, as stored (hash and all).
    assert_eq!((got.seq, got.write_id.as_deref()), (2, Some("w1")));
    let all = store.audit(0, -1).await.expect("audit");
    assert_eq!(got.hash, all[1].hash);
    let approved = store
        .audit_entry_for("w1", "write.approved")
        .await
        .expect("audit")
        .expect("an entry");
    assert_eq!(approved.seq, 4);
    assert!(store
        .audit_entry_for("w1", "write.rejected")
        .await
        .expect("audit")
        .is_none());
}

fn token(name: &str, hash: &str, scope: Option<TokenScope>) -> TokenRow {
    TokenRow {
        name: name.into(),
        role: Role::Agent,
        hash: hash.into(),
        expires_at: None,
        scope,
        revoked_at: None,
    }
}

async fn token_scopes_round_trip(b: &Backend) {
    let store = b.store();
    let scope = TokenScope {
        fs_roots: vec!["/srv/a".into(), "/srv/b".into()],
        sql: vec!["crm".into()],
        http_allow: vec!["api.test".into(), "pay.test:8443".into()],
    };
    store
        .create_token(
            &token("scoped", "h1", Some(scope.clone())),
            draft("token.created", None),
        )
        .await
        .expect("create");
    store
        .create_token(&token("free", "h2", None), draft("token.created", None))
        .await
        .expect("create");
    let found = store
        .token_by_hash("h1")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.scope, Some(scope.clone()));
    let free = store
        .token_by_hash("h2")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(free.scope, None, "no scope stays no scope (everything)");
    let all = store.tokens().await.expect("list");
    let names: Vec<_> = all.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["free", "scoped"], "by name");
    assert_eq!(all[1].scope, Some(scope));
}

async fn revoking_marks_once_and_audits_once(b: &Backend) {
    let store = b.store();
    store
        .create_token(&token("bot", "h1", None), draft("token.created", None))
        .await
        .expect("create");
    assert!(store
        .revoke_token("bot", t0(), draft("token.revoked", None))
        .await
        .expect("revoke"));
    assert_eq!(audit_len(store).await, 2);
    let row = store
        .token_by_hash("h1")
        .await
        .expect("lookup")
        .expect("kept");
    assert_eq!(row.revoked_at, Some(t0()));
    // Again, or a name nobody has: false, and no audit entry.
    assert!(!store
        .revoke_token("bot", t0(), draft("token.revoked", None))
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_token("nobody", t0(), draft("token.revoked", None))
        .await
        .expect("revoke"));
    assert_eq!(audit_len(store).await, 2);
    // The name stays taken.
    match store
        .create_token(&token("bot", "h9", None), draft("token.created", None))
        .await
    {
        Err(StoreError::DuplicateToken(n)) => assert_eq!(n, "bot"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

async fn pending_bytes_count_held_approved_and_executing_writes(b: &Backend) {
    let store = b.store();
    assert_eq!(store.pending_bytes("bot").await.expect("sum"), 0);
    let held = record("w1", "bot", None, WriteStatus::Held, t0());
    let approved = record("w2", "bot", None, WriteStatus::Approved, t0());
    let executing = record("w3", "bot", None, WriteStatus::Executing, t0());
    let refused = record("w4", "bot", None, WriteStatus::Refused, t0());
    let other = record("w5", "other", None, WriteStatus::Held, t0());
    for r in [&held, &approved, &executing, &refused, &other] {
        insert(store, r).await;
    }
    let size = |r: &WriteRecord| stored_bytes(r).expect("size");
    let expected = size(&held) + size(&approved) + size(&executing);
    assert_eq!(store.pending_bytes("bot").await.expect("sum"), expected);
    assert_eq!(
        store.pending_bytes("other").await.expect("sum"),
        size(&other)
    );

    // A held write that is rejected frees its room; one that grows (its
    // history, its capture) counts at its new size.
    let (mut w1, v) = store.write("w1").await.expect("read").expect("w1");
    w1.status = WriteStatus::Rejected;
    assert!(store
        .update_write(&w1, v, draft("write.rejected", Some("w1")))
        .await
        .expect("update"));
    let (mut w2, v) = store.write("w2").await.expect("read").expect("w2");
    w2.proposal.intent.push_str(&"x".repeat(1000));
    assert!(store
        .update_write(&w2, v, draft("write.noted", Some("w2")))
        .await
        .expect("update"));
    assert_eq!(
        store.pending_bytes("bot").await.expect("sum"),
        size(&w2) + size(&executing)
    );
}

async fn the_quota_refuses_an_insert_that_would_pass_it_and_stores_nothing(b: &Backend) {
    let store = b.store();
    let first = record("w1", "bot", Some("k1"), WriteStatus::Held, t0());
    let second = record("w2", "bot", Some("k2"), WriteStatus::Held, t0());
    let one = stored_bytes(&first).expect("size");
    let quota = one + stored_bytes(&second).expect("size") - 1;
    let got = store
        .insert_write_within(&first, draft("write.submitted", Some("w1")), quota)
        .await
        .expect("first fits");
    assert!(matches!(got, Inserted::New));
    let before = audit_len(store).await;
    match store
        .insert_write_within(&second, draft("write.submitted", Some("w2")), quota)
        .await
    {
        Err(StoreError::OverQuota { pending_bytes }) => assert_eq!(pending_bytes, one),
        other => panic!("expected over quota, got {other:?}"),
    }
    assert!(
        store.write("w2").await.expect("read").is_none(),
        "nothing stored"
    );
    assert_eq!(audit_len(store).await, before, "no audit entry");
    // A repeat of a stored key is its write, whatever the quota.
    let again = record("w9", "bot", Some("k1"), WriteStatus::Held, t0());
    let got = store
        .insert_write_within(&again, draft("write.submitted", Some("w9")), 1)
        .await
        .expect("repeat");
    assert!(matches!(got, Inserted::Existing(_)));
    // Another agent has its own room.
    let theirs = record("w3", "other", None, WriteStatus::Held, t0());
    assert!(matches!(
        store
            .insert_write_within(&theirs, draft("write.submitted", Some("w3")), quota)
            .await
            .expect("other agent"),
        Inserted::New
    ));
    // Once the first is settled, the second fits.
    let (mut w1, v) = store.write("w1").await.expect("read").expect("w1");
    w1.status = WriteStatus::Expired;
    assert!(store
        .update_write(&w1, v, draft("write.expired", Some("w1")))
        .await
        .expect("update"));
    assert!(matches!(
        store
            .insert_write_within(&second, draft("write.submitted", Some("w2")), quota)
            .await
            .expect("fits now"),
        Inserted::New
    ));
}

/// The test-only helpers of the in-memory store.
mod memory_helpers {
    use super::*;

    #[tokio::test]
    async fn put_write_raw_bumps_the_version_without_an_audit_entry() {
        let store = MemoryStore::new();
        let r = record("w1", "bot", Some("k"), WriteStatus::Approved, t0());
        store.put_write_raw(r.clone());
        assert_eq!(store.write("w1").await.expect("read"), Some((r.clone(), 1)));
        assert_eq!(
            store.write_by_key("bot", "k").await.expect("by key"),
            Some(r.clone())
        );

        let token = taken(
            store
                .claim("w1", "a", t0() + Duration::seconds(30), t0())
                .await
                .expect("claim"),
        );
        let mut planted = r;
        planted.status = WriteStatus::Executing;
        store.put_write_raw(planted.clone());
        assert_eq!(store.write("w1").await.expect("read"), Some((planted, 2)));
        assert_eq!(
            store.claim_of("w1"),
            Some((Some("a".to_string()), Some(t0() + Duration::seconds(30)))),
            "the claim survives"
        );
        assert_eq!(store.fence_of("w1"), Some(token), "and its token");
        assert_eq!(audit_len(&store).await, 0);
    }

    #[tokio::test]
    async fn release_with_a_backoff_is_visible() {
        let store = MemoryStore::new();
        store.put_write_raw(record("w1", "bot", None, WriteStatus::Approved, t0()));
        let token = taken(
            store
                .claim("w1", "a", t0() + Duration::seconds(30), t0())
                .await
                .expect("claim"),
        );
        let retry = t0() + Duration::seconds(90);
        store
            .release("w1", "a", token, Some(retry))
            .await
            .expect("release");
        assert_eq!(store.claim_of("w1"), Some((None, Some(retry))));
        assert_eq!(store.claim_of("nope"), None);
    }
}

/// Several gates on one PostgreSQL database: two stores (two pools, as two
/// gate processes have) racing on the same rows.
mod shared_postgres {
    use std::sync::Arc;

    use super::*;
    use crate::store::{AuditStore, GateStateStore};

    /// Two stores on one fresh database, or `None` when PostgreSQL is not
    /// reachable (and not required).
    async fn two_gates() -> Option<(Arc<PostgresStore>, Arc<PostgresStore>, TestDb)> {
        let db = TestDb::create().await?;
        let a = PostgresStore::new(&db.url()).expect("store a");
        let b = PostgresStore::new(&db.url()).expect("store b");
        // Both migrate at once: the migrator's lock lets one do it.
        let (ra, rb) = tokio::join!(a.ready(), b.ready());
        ra.expect("migrate a");
        rb.expect("migrate b");
        Some((Arc::new(a), Arc::new(b), db))
    }

    #[tokio::test]
    async fn racing_claims_on_two_gates_have_exactly_one_winner() {
        let Some((a, b, _db)) = two_gates().await else {
            return;
        };
        insert(&*a, &record("w1", "bot", None, WriteStatus::Approved, t0())).await;
        let s = Duration::seconds;
        // Three rounds: free, then after each winner's lease lapsed.
        for round in 0..3i64 {
            let now = t0() + s(100 * round);
            let mut tasks = Vec::new();
            for i in 0..16 {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                tasks.push(tokio::spawn(async move {
                    let owner = format!("gate-{round}-{i}");
                    let won = store
                        .claim("w1", &owner, now + s(30), now)
                        .await
                        .expect("claim");
                    (owner, won)
                }));
            }
            let mut winners = Vec::new();
            for t in tasks {
                let (owner, won) = t.await.expect("task");
                if let Claimed::Taken(token) = won {
                    winners.push((owner, token));
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
            // Each round's winner holds the next token.
            assert_eq!(winners[0].1, round + 1, "round {round}");
            // Nobody else takes it while the lease holds, from either gate.
            assert_eq!(
                a.claim("w1", "late", now + s(60), now + s(29))
                    .await
                    .expect("claim"),
                Claimed::Refused
            );
            assert!(b
                .claimable(now + s(29), 10)
                .await
                .expect("claimable")
                .is_empty());
        }
    }

    /// A freeze set through one gate while the other starts approved writes
    /// it claimed before: every start is either before the freeze in the
    /// audit lock's order or refused; no write moves into `executing` once
    /// the freeze returned.
    #[tokio::test]
    async fn a_freeze_on_one_gate_stops_the_claims_and_starts_of_the_other() {
        let Some((a, b, _db)) = two_gates().await else {
            return;
        };
        let s = Duration::seconds;
        let now = t0();
        const N: usize = 200;
        for i in 0..N {
            insert(
                &*a,
                &record(&format!("w{i}"), "bot", None, WriteStatus::Approved, now),
            )
            .await;
        }
        // Gate b claims every write first (before the freeze), then starts
        // them one by one while gate a freezes: only the start's own
        // transaction can stop those after the freeze.
        let mut tokens = Vec::new();
        for i in 0..N {
            let id = format!("w{i}");
            let token = match b
                .claim(&id, "gate-b", now + s(30), now)
                .await
                .expect("claim")
            {
                Claimed::Taken(token) => token,
                other => panic!("{id}: {other:?}"),
            };
            tokens.push((id, token));
        }
        let starts = {
            let b = b.clone();
            tokio::spawn(async move {
                let mut started = Vec::new();
                for (id, token) in tokens {
                    let (rec, v) = b.write(&id).await.expect("read").expect("stored");
                    let mut start = rec;
                    start.status = WriteStatus::Executing;
                    let cas = b
                        .update_write_under(
                            &start,
                            v,
                            Some(token),
                            draft("write.executing", Some(&id)),
                        )
                        .await
                        .expect("start");
                    if cas == Cas::Done {
                        started.push(id);
                    }
                }
                started
            })
        };
        // Once the other gate has begun starting writes.
        let filter = WriteFilter {
            status: Some(WriteStatus::Executing),
            ..Default::default()
        };
        let executing = || a.writes(&filter);
        while executing().await.expect("list").is_empty() {
            tokio::task::yield_now().await;
        }
        let frozen = FreezeState {
            frozen: true,
            by: Some("lead".into()),
            at: Some(now),
            reason: Some("incident".into()),
        };
        a.set_freeze(&frozen, draft("gate.frozen", None))
            .await
            .expect("freeze");
        // The freeze is acknowledged: from here on, nothing starts.
        let started = starts.await.expect("task");
        let trail = a.audit(0, -1).await.expect("audit");
        let freeze_seq = trail
            .iter()
            .find(|e| e.action == "gate.frozen")
            .expect("frozen entry")
            .seq;
        let late: Vec<_> = trail
            .iter()
            .filter(|e| e.action == "write.executing" && e.seq > freeze_seq)
            .collect();
        assert!(late.is_empty(), "started after the freeze: {late:?}");
        assert_eq!(executing().await.expect("list").len(), started.len());
        assert!(started.len() < N, "the freeze came before the end");
    }

    #[tokio::test]
    async fn two_gates_appending_at_once_keep_one_chain() {
        let Some((a, b, _db)) = two_gates().await else {
            return;
        };
        let mut tasks = Vec::new();
        for i in 0..60 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                // A mix of the paths that append: the group commit (new
                // writes), plain appends, and the freeze.
                match i % 3 {
                    0 => {
                        let r = record(
                            &format!("w{i}"),
                            "bot",
                            Some(&format!("k{i}")),
                            WriteStatus::Held,
                            t0(),
                        );
                        let got = store
                            .insert_write(&r, draft("write.submitted", Some(&r.id)))
                            .await
                            .expect("insert");
                        assert!(matches!(got, Inserted::New));
                    }
                    1 => {
                        store
                            .append_audit(draft(&format!("note.{i}"), None))
                            .await
                            .expect("append");
                    }
                    _ => {
                        let state = FreezeState {
                            frozen: i % 2 == 0,
                            ..Default::default()
                        };
                        store
                            .set_freeze(&state, draft("gate.frozen", None))
                            .await
                            .expect("freeze");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let entries = a.audit(0, -1).await.expect("audit");
        assert_eq!(entries.len(), 60);
        let verified = audit::verify(&entries);
        assert!(verified.ok, "{verified:?}");
        // Either gate reads the same chain.
        assert_eq!(b.audit(0, -1).await.expect("audit"), entries);
    }

    #[tokio::test]
    async fn one_idempotency_key_submitted_on_two_gates_at_once_stores_one_write() {
        let Some((a, b, _db)) = two_gates().await else {
            return;
        };
        let mut tasks = Vec::new();
        for i in 0..10 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                let r = record(&format!("w{i}"), "bot", Some("k"), WriteStatus::Held, t0());
                store
                    .insert_write(&r, draft("write.submitted", Some(&r.id)))
                    .await
                    .expect("insert")
            }));
        }
        let mut new = 0;
        for t in tasks {
            if matches!(t.await.expect("task"), Inserted::New) {
                new += 1;
            }
        }
        assert_eq!(new, 1, "one write per agent and key");
        assert_eq!(
            a.writes(&WriteFilter::default()).await.expect("list").len(),
            1
        );
        assert_eq!(audit_len(&*b).await, 1, "repeats write no audit entry");
    }

    #[tokio::test]
    async fn the_sweep_scan_skips_a_row_another_gate_is_changing() {
        let Some((a, _b, db)) = two_gates().await else {
            return;
        };
        for (id, at) in [("busy", 1), ("free", 2)] {
            let mut r = record(id, "bot", None, WriteStatus::Approved, t0());
            r.updated_at = t0() + Duration::seconds(at);
            insert(&*a, &r).await;
        }
        // Another gate's transaction holds `busy`'s row.
        let other = sqlx::PgPool::connect(&db.url()).await.expect("connect");
        let mut tx = other.begin().await.expect("begin");
        sqlx::query("SELECT id FROM writes WHERE id = 'busy' FOR UPDATE")
            .execute(&mut *tx)
            .await
            .expect("lock");
        let scan = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            a.claimable(t0() + Duration::seconds(100), 10),
        )
        .await
        .expect("the scan waits for nobody")
        .expect("claimable");
        assert_eq!(scan, ["free"]);
        tx.rollback().await.expect("rollback");
        assert_eq!(
            a.claimable(t0() + Duration::seconds(100), 10)
                .await
                .expect("claimable"),
            ["busy", "free"]
        );
        other.close().await;
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_transient_error_and_opening_does_not_wait_for_it() {
        // Nothing listens on port 1; opening connects nothing.
        let store = PostgresStore::new("postgres://postgres@127.0.0.1:1/none").expect("store");
        let e = store.freeze().await.expect_err("unreachable");
        assert!(e.is_transient(), "{e:?}");
        let e = store
            .insert_write(
                &record("w1", "bot", None, WriteStatus::Held, t0()),
                draft("write.submitted", Some("w1")),
            )
            .await
            .expect_err("unreachable");
        assert!(e.is_transient(), "{e:?}");
    }

    #[test]
    fn a_url_scheme_picks_the_store_and_an_error_never_repeats_the_url() {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let _guard = rt.enter();
        assert!(super::super::open_url("postgres://u@h/db").is_ok());
        assert!(super::super::open_url("postgresql://u@h/db").is_ok());
        let e = super::super::open_url("mysql://user:s3cret@h/db").expect_err("mysql");
        assert!(matches!(e, StoreError::UnsupportedUrl(_)), "{e:?}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(e.to_string().contains("`mysql:`"), "{e}");
    }
}

/// The embedded store when its files or its lock are taken from under it
/// (see `StoreFault`): each fault is refused with its cause, bounded in
/// time, and the store records again once the fault is gone.
mod faults {
    use std::time::{Duration as StdDuration, Instant};

    use super::*;
    use crate::store::{AuditStore, CatalogStore, GateStateStore, StoreFault, TokenStore};

    const SHORT: StdDuration = StdDuration::from_millis(300);

    async fn open(dir: &TempDir) -> SqliteStore {
        SqliteStore::open_with(dir.path(), SHORT)
            .await
            .expect("open sqlite")
    }

    fn fault_of(e: &StoreError) -> Option<StoreFault> {
        e.fault()
    }

    async fn try_insert(store: &SqliteStore, id: &str) -> Result<Inserted, StoreError> {
        store
            .insert_write(
                &record(id, "bot", None, WriteStatus::Held, t0()),
                draft("write.submitted", Some(id)),
            )
            .await
    }

    /// Every way of changing the store, each expected to fail with
    /// `fault`. (Reads are not asked here: after a deletion SQLite fails
    /// them too, which is as it should be.)
    async fn assert_every_change_refused(store: &SqliteStore, fault: StoreFault) {
        let e = try_insert(store, "refused").await.expect_err("insert");
        assert_eq!(fault_of(&e), Some(fault), "insert: {e}");
        let e = store
            .set_freeze(
                &FreezeState {
                    frozen: true,
                    by: Some("lead".into()),
                    at: Some(t0()),
                    reason: Some("r".into()),
                },
                draft("gate.frozen", None),
            )
            .await
            .expect_err("freeze");
        assert_eq!(fault_of(&e), Some(fault), "freeze: {e}");
        let e = store
            .append_audit(draft("write.out_of_scope", None))
            .await
            .expect_err("append");
        assert_eq!(fault_of(&e), Some(fault), "append: {e}");
        let e = store
            .upsert_catalog(
                &Catalog {
                    resources: vec![
                        serde_json::from_value(json!({"id": "res:new"})).expect("resource")
                    ],
                    edges: Vec::new(),
                },
                true,
                Some(draft("catalog.upserted", None)),
            )
            .await
            .expect_err("catalog");
        assert_eq!(fault_of(&e), Some(fault), "catalog: {e}");
    }

    #[test]
    fn error_codes_name_their_fault() {
        use StoreFault::*;
        for (code, want) in [
            (5, Some(Busy)),
            (517, Some(Busy)),
            (6, Some(Busy)),
            (8, Some(ReadOnly)),
            (264, Some(ReadOnly)),
            (1032, Some(Replaced)),
            (13, Some(Full)),
            (10, Some(Io)),
            (778, Some(Io)),
            (522, Some(Io)),
            (14, Some(Io)),
            (1, None),
            (19, None),
            (2067, None),
        ] {
            assert_eq!(StoreFault::of_sqlite(code), want, "SQLite code {code}");
        }
        for (code, want) in [
            ("55P03", Some(Busy)),
            ("57014", Some(Timeout)),
            ("53100", Some(Full)),
            ("25006", Some(ReadOnly)),
            ("08006", Some(Unreachable)),
            ("57P01", Some(Unreachable)),
            ("23505", None),
            ("42P01", None),
        ] {
            assert_eq!(StoreFault::of_sqlstate(code), want, "SQLSTATE {code}");
        }
        let e = StoreError::Unavailable(Full, "x".into());
        assert!(e.is_transient());
        assert!(!StoreError::Corrupt("x".into()).is_transient());
    }

    #[tokio::test]
    async fn a_deleted_store_file_refuses_every_change_and_health_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir).await;
        insert(&store, &record("w1", "bot", None, WriteStatus::Held, t0())).await;
        store.in_place().await.expect("in place");
        std::fs::remove_file(dir.path().join("recourse.db")).expect("rm");
        assert_every_change_refused(&store, StoreFault::Replaced).await;
        let e = store.in_place().await.expect_err("not in place");
        assert_eq!(fault_of(&e), Some(StoreFault::Replaced), "{e}");
    }

    #[tokio::test]
    async fn a_replaced_store_file_refuses_until_the_original_is_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir).await;
        insert(&store, &record("w1", "bot", None, WriteStatus::Held, t0())).await;
        let db = dir.path().join("recourse.db");
        let aside = dir.path().join("aside.db");
        std::fs::rename(&db, &aside).expect("move aside");
        // The same bytes under another inode: what a restore from a copy
        // (or an attacker's edited copy) puts at the path.
        std::fs::copy(&aside, &db).expect("copy");
        assert_every_change_refused(&store, StoreFault::Replaced).await;
        std::fs::rename(&aside, &db).expect("move back");
        store.in_place().await.expect("in place again");
        assert_eq!(audit_len(&store).await, 1, "nothing was appended");
        assert_eq!(store.write("refused").await.expect("read"), None);
        insert(&store, &record("w2", "bot", None, WriteStatus::Held, t0())).await;
        let v = audit::verify(&store.audit(0, -1).await.expect("audit"));
        assert!(v.ok, "{v:?}");
        assert_eq!(v.entries, 2);
    }

    #[tokio::test]
    async fn a_deleted_write_ahead_log_refuses_every_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir).await;
        insert(&store, &record("w1", "bot", None, WriteStatus::Held, t0())).await;
        std::fs::remove_file(dir.path().join("recourse.db-wal")).expect("rm wal");
        assert_every_change_refused(&store, StoreFault::Replaced).await;
    }

    #[tokio::test]
    async fn a_store_file_missing_beside_its_log_is_not_opened_as_an_empty_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir).await;
        insert(&store, &record("w1", "bot", None, WriteStatus::Held, t0())).await;
        std::fs::remove_file(dir.path().join("recourse.db")).expect("rm");
        let e = SqliteStore::open_with(dir.path(), SHORT)
            .await
            .expect_err("refused");
        assert!(matches!(e, StoreError::Missing(_)), "{e:?}");
        assert!(!dir.path().join("recourse.db").exists(), "nothing created");
        drop(store);
    }

    #[tokio::test]
    async fn a_store_locked_by_another_connection_refuses_every_request_within_its_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir).await;
        insert(&store, &record("w0", "bot", None, WriteStatus::Held, t0())).await;
        let opts =
            sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("recourse.db"));
        let mut other = sqlx::SqliteConnection::connect_with(&opts)
            .await
            .expect("connect");
        use sqlx::Connection as _;
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut other)
            .await
            .expect("lock");
        // Many at once: each is answered within a few timeouts, not one
        // timeout per request queued before it.
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let r = try_insert(&s, &format!("w{}", i + 1)).await;
                (r, t.elapsed())
            }));
        }
        for t in tasks {
            let (r, took) = t.await.expect("task");
            let e = r.expect_err("refused while locked");
            assert!(
                matches!(fault_of(&e), Some(StoreFault::Busy | StoreFault::Timeout)),
                "{e}"
            );
            assert!(took < SHORT * 4, "answered in {took:?}");
        }
        assert!(started.elapsed() < SHORT * 5, "{:?}", started.elapsed());
        // The reads go on (WAL: a writer's lock does not stop readers).
        assert_eq!(audit_len(&store).await, 1);
        sqlx::query("ROLLBACK")
            .execute(&mut other)
            .await
            .expect("unlock");
        other.close().await.expect("close");
        insert(&store, &record("w99", "bot", None, WriteStatus::Held, t0())).await;
        let v = audit::verify(&store.audit(0, -1).await.expect("audit"));
        assert!(v.ok, "{v:?}");
        assert_eq!(v.entries, 2, "the refused ones left nothing");
    }

    #[tokio::test]
    async fn after_the_store_was_full_a_commit_is_a_real_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir).await;
        insert(&store, &record("w0", "bot", None, WriteStatus::Held, t0())).await;
        // No room for one more page on the writer's connection: SQLITE_FULL.
        let pages: i64 = store.writer_value("PRAGMA page_count").await;
        let _: i64 = store
            .writer_value(&format!("PRAGMA max_page_count = {pages}"))
            .await;
        let mut big = record("big", "bot", None, WriteStatus::Held, t0());
        big.proposal.intent = "x".repeat(64 * 1024);
        let e = store
            .insert_write(&big, draft("write.submitted", Some("big")))
            .await
            .expect_err("full");
        assert_eq!(fault_of(&e), Some(StoreFault::Full), "{e}");
        // Room again (the limit is the connection's; a reopened connection
        // has none either way).
        let _: i64 = store
            .writer_value("PRAGMA max_page_count = 1073741823")
            .await;
        // A transaction that fails of its own (a duplicate name) after
        // SQLite rolled one back by itself: with sqlx's own transactions
        // this is where the connection was left inside a transaction that
        // never commits, and every later "commit" was lost.
        let token = |name: &str| TokenRow {
            name: name.into(),
            role: Role::Agent,
            hash: format!("h-{name}"),
            expires_at: None,
            scope: None,
            revoked_at: None,
        };
        store
            .create_token(&token("t1"), draft("token.created", None))
            .await
            .expect("token");
        let e = store
            .create_token(&token("t1"), draft("token.created", None))
            .await
            .expect_err("a duplicate");
        assert!(matches!(e, StoreError::DuplicateToken(_)), "{e:?}");
        insert(&store, &big).await;
        store
            .set_freeze(
                &FreezeState {
                    frozen: true,
                    by: Some("lead".into()),
                    at: Some(t0()),
                    reason: Some("r".into()),
                },
                draft("gate.frozen", None),
            )
            .await
            .expect("freeze");
        // Committed for real: a store opened afresh on the same files (as
        // the next start would) sees both.
        let again = SqliteStore::open_with(dir.path(), SHORT)
            .await
            .expect("reopen");
        assert!(again.write("big").await.expect("read").is_some());
        assert!(again.freeze().await.expect("freeze").frozen);
        assert_eq!(again.tokens().await.expect("tokens").len(), 1);
        let v = audit::verify(&again.audit(0, -1).await.expect("audit"));
        assert!(v.ok, "{v:?}");
        assert_eq!(v.entries, 4);
    }
}
