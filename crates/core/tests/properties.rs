//! Properties of the decision that must hold for every input, not just the
//! scenarios someone thought of: it never panics, it is deterministic, and
//! more reach or less evidence never makes a held write proceed.
//!
//! The generators draw ids from small pools so that collisions, cycles,
//! `fs:` containment and prefix siblings (`fs:/a` and `fs:/ab`) are common.
//! `PROPTEST_CASES` raises the case count for a longer run.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a broken fixture should fail the test loudly"
)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use recourse_core::catalog::{Bearer, Catalog, CatalogGraph, Edge, Reach, Resource};
use recourse_core::decision::{assess, decide, Policy, Verdict};
use recourse_core::evidence::{EvidenceKind, Observation, Observations};
use recourse_core::proposal::{Evidence, Proposal, Rollback, Step};
use recourse_core::scenario::{check_bytes, Scenario};

fn config() -> ProptestConfig {
    // Modest by default so `cargo test` stays fast; the fuzz target and
    // PROPTEST_CASES are there for long runs. The seed is fixed unless
    // PROPTEST_RNG_SEED says otherwise (`PROPTEST_RNG_SEED=random` for a
    // sweep), so CI runs the same cases every time and a red run is a
    // change, not luck. Failures found by sweeps go into the regressions
    // file beside this one, which is replayed first.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    let defaults = ProptestConfig::default();
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED").as_deref() {
        Ok("random") => RngSeed::Random,
        Ok(_) => defaults.rng_seed,
        Err(_) => RngSeed::Fixed(0x7265_636f_7572_7365),
    };
    ProptestConfig {
        cases,
        rng_seed,
        ..defaults
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-25T12:00:00Z".parse().unwrap()
}

/// Ids from a small pool: `fs:` paths over segments `a`, `ab`, `b` (so
/// `fs:/a` and `fs:/ab` are prefix siblings), and a few flat ids.
fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(vec!["a", "ab", "b"]), 0..4)
            .prop_map(|segs| format!("fs:/{}", segs.join("/"))),
        (prop::sample::select(vec!["db", "vault", "crm"]), 0u8..5)
            .prop_map(|(s, n)| format!("{s}:{n}")),
    ]
}

/// Mostly an id of the catalog at hand (so touches and restores hit it),
/// sometimes any id (unknown ones included).
fn some_id(ids: Vec<String>) -> BoxedStrategy<String> {
    if ids.is_empty() {
        any_id().boxed()
    } else {
        prop_oneof![9 => prop::sample::select(ids), 1 => any_id()].boxed()
    }
}

fn any_reach() -> impl Strategy<Value = Reach> {
    prop_oneof![12 => Just(Reach::Controlled), 3 => Just(Reach::Observed), 1 => Just(Reach::External)]
}

/// `None`: no bearer of its own (a discovered resource), resolved from its
/// containers at each decision.
fn any_bearer() -> impl Strategy<Value = Option<Bearer>> {
    prop_oneof![
        5 => Just(Some(Bearer::Institution)),
        5 => Just(None),
        1 => prop::sample::select(Bearer::ALL.to_vec()).prop_map(Some)
    ]
}

fn any_catalog() -> impl Strategy<Value = Catalog> {
    prop::collection::btree_map(any_id(), (any_reach(), any_bearer()), 0..10)
        .prop_flat_map(|resources| {
            let resources: Vec<Resource> = resources
                .into_iter()
                .map(|(id, (reach, bearer))| Resource {
                    reach,
                    bearer,
                    ..Resource::new(id)
                })
                .collect();
            let n = resources.len();
            let edges = if n == 0 {
                Just(Vec::new()).boxed()
            } else {
                prop::collection::vec((0..n, 0..n, any::<bool>()), 0..(n + 2)).boxed()
            };
            (Just(resources), edges)
        })
        .prop_map(|(resources, edges)| {
            let edges = edges
                .into_iter()
                .map(|(a, b, why)| Edge {
                    from: resources[a].id.clone(),
                    to: resources[b].id.clone(),
                    why: why.then(|| format!("{a} reaches {b}")),
                })
                .collect();
            Catalog { resources, edges }
        })
}

/// Times around `now()`, in minutes, so windows land on every side of the
/// margin and captures on every side of `max_age_s`.
fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        1 => (-3000i64..3000).prop_map(|m| now() + Duration::minutes(m)),
        2 => (-90i64..90).prop_map(|m| now() + Duration::minutes(m)),
    ]
}

fn any_evidence(id: String, ids: Vec<String>) -> impl Strategy<Value = Evidence> {
    (
        prop::sample::select(vec![
            EvidenceKind::Snapshot,
            EvidenceKind::BeforeImage,
            EvidenceKind::RetainedLog,
            EvidenceKind::AuditTrail,
            EvidenceKind::ExternalCopy,
            EvidenceKind::Compensation,
            EvidenceKind::Window,
        ]),
        // Mostly outside the catalog (a vault), sometimes anywhere.
        prop_oneof![4 => Just("vault:outside".to_string()), 1 => some_id(ids)],
        any_time(),
        prop::option::weighted(0.3, prop_oneof![0u64..7200, Just(u64::MAX)]),
    )
        .prop_map(move |(kind, location, until, max_age_s)| {
            let window = kind == EvidenceKind::Window;
            Evidence {
                id: id.clone(),
                kind,
                location: (!window).then_some(location),
                until: window.then_some(until),
                max_age_s,
                check: None,
            }
        })
}

/// A valid proposal: evidence items are drawn once by id, then shared by
/// the steps that require them, so no id names two different items.
fn any_proposal(ids: Vec<String>) -> impl Strategy<Value = Proposal> {
    let pool = (0..5)
        .map(|i| any_evidence(format!("e{i}"), ids.clone()))
        .collect::<Vec<_>>();
    // Sometimes one step restores every resource, so covered writes (and
    // so `proceed`) are common enough for the properties to bite.
    let restores = prop_oneof![
        1 => prop::collection::vec(some_id(ids.clone()), 0..3),
        1 => Just(ids.clone()),
    ];
    let step = (
        restores,
        prop::bool::weighted(0.15),
        prop::collection::vec(0usize..5, 0..3),
    );
    (
        prop::collection::vec(some_id(ids), 1..4),
        pool,
        prop::collection::vec(step, 0..4),
    )
        .prop_map(|(touches, pool, steps)| Proposal {
            touches,
            rollback: Rollback {
                steps: steps
                    .into_iter()
                    .map(|(restores, manual, requires)| Step {
                        restores,
                        op: if manual {
                            serde_json::json!({"kind": "manual", "note": "call someone"})
                        } else {
                            serde_json::json!({"connector": "test", "op": "restore"})
                        },
                        requires: requires
                            .into_iter()
                            .filter_map(|i| pool.get(i).cloned())
                            .collect(),
                        modelled_by: None,
                    })
                    .collect(),
            },
            ..Proposal::default()
        })
}

/// Most evidence observed and present, as on a healthy day.
fn any_observations() -> impl Strategy<Value = Observations> {
    let one = prop::option::weighted(
        0.85,
        (
            prop::bool::weighted(0.85),
            prop::option::weighted(0.8, any_time()),
        )
            .prop_map(|(present, captured_at)| Observation {
                present,
                captured_at,
                detail: None,
            }),
    );
    prop::collection::vec(one, 6).prop_map(|seen| {
        seen.into_iter()
            .enumerate()
            .filter_map(|(i, o)| o.map(|o| (format!("e{i}"), o)))
            .collect()
    })
}

fn any_case() -> impl Strategy<Value = (Catalog, Proposal, Observations, i64)> {
    any_catalog().prop_flat_map(|catalog| {
        let ids = catalog.resources.iter().map(|r| r.id.clone()).collect();
        (
            Just(catalog),
            any_proposal(ids),
            any_observations(),
            prop::sample::select(vec![0i64, 60, 3600, 86400]),
        )
    })
}

fn verdict(
    catalog: &Catalog,
    proposal: &Proposal,
    observations: &Observations,
    margin: i64,
) -> Verdict {
    let graph = CatalogGraph::new(catalog.clone()).unwrap();
    let policy = Policy {
        window_margin_s: margin,
    };
    decide(&graph, proposal, observations, now(), &policy).decision
}

fn scenario_bytes(
    catalog: &Catalog,
    proposal: &Proposal,
    observations: &Observations,
    margin: i64,
) -> Vec<u8> {
    let scenario = Scenario {
        about: None,
        catalog: catalog.clone(),
        proposal: proposal.clone(),
        observations: observations.clone(),
        now: Some(now()),
        window_margin_s: Some(margin),
    };
    serde_json::to_vec(&scenario).unwrap()
}

proptest! {
    #![proptest_config(config())]

    /// Structured inputs: the engine and the `check` path both answer,
    /// and the answer is well formed.
    #[test]
    fn structured_inputs_never_panic((catalog, proposal, observations, margin) in any_case()) {
        prop_assert!(proposal.validate().is_ok());
        let graph = CatalogGraph::new(catalog.clone()).unwrap();
        let policy = Policy { window_margin_s: margin };
        let decision = decide(&graph, &proposal, &observations, now(), &policy);
        prop_assert_eq!(decision.decision == Verdict::Proceed, decision.reasons.is_empty());
        prop_assert!(decision.decision != Verdict::Refuse);

        // The check path reads a scenario's catalog as a person wrote it:
        // a resource without a bearer is the institution's and does not
        // inherit (only discovered resources do). Compare like with like.
        let written = CatalogGraph::new(catalog.clone().with_default_bearers()).unwrap();
        let expected = decide(&written, &proposal, &observations, now(), &policy);
        let json = check_bytes(&scenario_bytes(&catalog, &proposal, &observations, margin), now()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let word = if expected.decision == Verdict::Proceed { "proceed" } else { "hold" };
        prop_assert_eq!(&value["decision"], word);
    }

    /// Any bytes at all: an error or a decision, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = check_bytes(&bytes, now());
    }

    /// Bytes that look like a scenario, with random damage.
    #[test]
    fn damaged_scenarios_never_panic(
        (catalog, proposal, observations, margin) in any_case(),
        cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = scenario_bytes(&catalog, &proposal, &observations, margin);
        for (at, byte) in cuts {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = check_bytes(&bytes, now());
    }

    /// The same input gives byte-identical output, even through separately
    /// built graphs (whose hash maps are seeded differently).
    #[test]
    fn same_input_same_bytes((catalog, proposal, observations, margin) in any_case()) {
        let bytes = scenario_bytes(&catalog, &proposal, &observations, margin);
        let first = check_bytes(&bytes, now());
        let second = check_bytes(&bytes, now());
        prop_assert_eq!(first, second);
    }

    /// More reach can only add reasons: an extra edge never turns a hold
    /// into a proceed.
    #[test]
    fn adding_an_edge_never_releases_a_hold(
        (catalog, proposal, observations, margin) in any_case(),
        from in any::<prop::sample::Index>(),
        to in any::<prop::sample::Index>(),
    ) {
        prop_assume!(!catalog.resources.is_empty());
        let before = verdict(&catalog, &proposal, &observations, margin);
        let mut wider = catalog.clone();
        wider.edges.push(Edge {
            from: catalog.resources[from.index(catalog.resources.len())].id.clone(),
            to: catalog.resources[to.index(catalog.resources.len())].id.clone(),
            why: None,
        });
        let after = verdict(&wider, &proposal, &observations, margin);
        prop_assert!(!(before == Verdict::Hold && after == Verdict::Proceed));
    }

    /// Evidence that was seen and is now gone can only add reasons.
    #[test]
    fn losing_evidence_never_releases_a_hold(
        (catalog, proposal, observations, margin) in any_case(),
        pick in any::<prop::sample::Index>(),
    ) {
        let present: Vec<&String> = observations.iter().filter(|(_, o)| o.present).map(|(id, _)| id).collect();
        prop_assume!(!present.is_empty());
        let id = present[pick.index(present.len())].clone();
        let before = verdict(&catalog, &proposal, &observations, margin);
        let mut lost: Observations = observations.clone();
        if let Some(o) = lost.get_mut(&id) {
            o.present = false;
        }
        let after = verdict(&catalog, &proposal, &lost, margin);
        prop_assert!(!(before == Verdict::Hold && after == Verdict::Proceed));
    }

    /// The unrendered decision serializes to the same bytes as the decision,
    /// and renders to the same decision.
    #[test]
    fn an_assessment_serializes_as_its_decision((catalog, proposal, observations, margin) in any_case()) {
        let graph = CatalogGraph::new(catalog).unwrap();
        let policy = Policy { window_margin_s: margin };
        let decision = decide(&graph, &proposal, &observations, now(), &policy);
        let assessment = assess(&graph, &proposal, &observations, now(), &policy);
        prop_assert_eq!(assessment.decision, decision.decision);
        prop_assert_eq!(assessment.reason_count(), decision.reasons.len());
        prop_assert_eq!(
            serde_json::to_string(&assessment).unwrap(),
            serde_json::to_string(&decision).unwrap()
        );
        prop_assert_eq!(assessment.render(), decision);
    }

    /// A graph grown in place (as the gate adds what its connectors
    /// discover) decides byte for byte as one built from the whole document.
    #[test]
    fn a_graph_grown_in_place_decides_as_one_built_whole(
        (catalog, proposal, observations, margin) in any_case(),
        split in any::<prop::sample::Index>(),
    ) {
        let k = split.index(catalog.resources.len() + 1);
        let (old, new) = catalog.resources.split_at(k);
        let known: std::collections::HashSet<&str> = old.iter().map(|r| r.id.as_str()).collect();
        let (old_edges, new_edges): (Vec<Edge>, Vec<Edge>) = catalog
            .edges
            .iter()
            .cloned()
            .partition(|e| known.contains(e.from.as_str()) && known.contains(e.to.as_str()));
        let base = Catalog { resources: old.to_vec(), edges: old_edges };
        let add = Catalog { resources: new.to_vec(), edges: new_edges };
        let mut whole = base.clone();
        whole.resources.extend(add.resources.clone());
        whole.edges.extend(add.edges.clone());
        let built = CatalogGraph::new(whole).unwrap();
        let mut grown = CatalogGraph::new(base).unwrap();
        grown.extend(add).unwrap();
        let policy = Policy { window_margin_s: margin };
        let a = serde_json::to_string(&decide(&built, &proposal, &observations, now(), &policy)).unwrap();
        let b = serde_json::to_string(&decide(&grown, &proposal, &observations, now(), &policy)).unwrap();
        prop_assert_eq!(a, b);
    }
}

/// The generators do reach both verdicts; otherwise the monotonicity
/// properties above would hold vacuously.
#[test]
fn generators_reach_both_verdicts() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..2000 {
        let (catalog, proposal, observations, margin) =
            any_case().new_tree(&mut runner).unwrap().current();
        let v = verdict(&catalog, &proposal, &observations, margin);
        *seen
            .entry(if v == Verdict::Proceed {
                "proceed"
            } else {
                "hold"
            })
            .or_default() += 1;
    }
    eprintln!("verdicts over 2000 generated cases: {seen:?}");
    assert!(seen.get("proceed").is_some_and(|&n| n >= 60), "{seen:?}");
    assert!(seen.get("hold").is_some_and(|&n| n > 0), "{seen:?}");
}
