//! `recourse check` on arbitrary bytes: it must answer (a decision or an
//! input error), never panic, whatever the input. And where it reads a
//! scenario:
//! - the scenario round-trips: what it reads, written back as JSON, reads
//!   as the same scenario (so the gate's stored proposals and catalogs read
//!   back as they were);
//! - the decision is the same bytes twice (approvals bind to its hash);
//! - an assessment serializes as its rendered decision (the gate sends the
//!   one and hashes the other).
#![no_main]

use libfuzzer_sys::fuzz_target;
use recourse_core::scenario::{check_bytes, Scenario};

fuzz_target!(|data: &[u8]| {
    // A fixed clock keeps a crash reproducible from its input alone.
    let clock =
        chrono::DateTime::<chrono::Utc>::from_timestamp(1_795_000_000, 0).unwrap_or_default();
    let out = check_bytes(data, clock);
    let Ok(scenario) = Scenario::parse(data) else {
        assert!(out.is_err(), "check answered a scenario it cannot read");
        return;
    };
    let written = serde_json::to_vec(&scenario).expect("a scenario serializes");
    let again = Scenario::parse(&written).expect("a written scenario reads back");
    assert_eq!(again, scenario, "the scenario does not round-trip");

    let Ok(checked) = scenario.check() else {
        assert!(out.is_err(), "check answered an invalid scenario");
        return;
    };
    let first = out.expect("a checked scenario decides");
    assert_eq!(
        check_bytes(data, clock).expect("decides again"),
        first,
        "the same scenario decided twice differs"
    );
    let decision = checked.decide(clock);
    let now = checked.now.unwrap_or(clock);
    let assessment = recourse_core::assess(
        &checked.catalog,
        &checked.proposal,
        &checked.observations,
        now,
        &checked.policy,
    );
    assert_eq!(
        serde_json::to_string(&assessment).expect("serializes"),
        serde_json::to_string(&decision).expect("serializes"),
        "an assessment does not serialize as its decision"
    );
});
