//! The scenario suite: every `assets/scenarios/NAME.json` goes through the
//! real `recourse check`, and the decision and the exact set of
//! `(code, subject)` pairs must match `NAME.expect.json`. The files under
//! `assets/scenarios/invalid/` must be refused with exit code 2 and one
//! stderr line naming the field.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a broken fixture should fail the test loudly"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The engine's reason codes in the order reasons are listed (the order of
/// `ReasonCode` in `crates/core/src/decision.rs`).
const CODES: [&str; 11] = [
    "external",
    "uncovered",
    "third_party_bearer",
    "evidence_in_blast_radius",
    "evidence_missing",
    "evidence_unverifiable",
    "evidence_expired",
    "evidence_window_closing",
    "evidence_stale",
    "manual_step",
    "unknown_resource",
];

/// What a reason is about; the ordering (resource, evidence, step) only
/// matters within one code, which always has one kind of subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    Resource(String),
    Evidence(String),
    Step(u64),
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/scenarios")
}

fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recourse"))
        .arg("check")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run recourse check {}: {e}", path.display()))
}

/// `NAME.json` files directly in `dir`, sorted, without the `.expect.json`.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.is_file() && name.ends_with(".json") && !name.ends_with(".expect.json")
        })
        .collect();
    out.sort();
    out
}

fn expect_path(input: &Path) -> PathBuf {
    let stem = input.file_stem().and_then(|s| s.to_str()).unwrap();
    input.with_file_name(format!("{stem}.expect.json"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: bad JSON: {e}", path.display()))
}

/// `(code, subject)` of one reason, or why it is malformed.
fn reason_key(reason: &Value) -> Result<(String, Subject), String> {
    let code = reason["code"]
        .as_str()
        .ok_or_else(|| format!("reason without a code: {reason}"))?
        .to_string();
    let mut subjects = Vec::new();
    if let Some(r) = reason.get("resource") {
        subjects.push(Subject::Resource(
            r.as_str().ok_or("`resource` not a string")?.into(),
        ));
    }
    if let Some(e) = reason.get("evidence") {
        subjects.push(Subject::Evidence(
            e.as_str().ok_or("`evidence` not a string")?.into(),
        ));
    }
    if let Some(s) = reason.get("step") {
        subjects.push(Subject::Step(s.as_u64().ok_or("`step` not an integer")?));
    }
    match subjects.as_slice() {
        [one] => Ok((code, one.clone())),
        _ => Err(format!("reason must name exactly one subject: {reason}")),
    }
}

/// Compares one scenario's output with its expectation; every problem found
/// is returned, so one run shows them all.
fn judge(input: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let expect = read_json(&expect_path(input));
    let out = check(input);
    if out.status.code() != Some(0) {
        return vec![format!(
            "exit {:?}, stderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )];
    }
    let got: Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => return vec![format!("stdout is not JSON: {e}")],
    };

    let want_decision = expect["decision"].as_str().unwrap();
    if got["decision"] != want_decision {
        problems.push(format!(
            "decision {} where {want_decision} was expected",
            got["decision"]
        ));
    }

    let want: BTreeSet<_> = expect["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| reason_key(r).unwrap())
        .collect();
    let mut listed = Vec::new();
    for reason in got["reasons"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        match reason_key(reason) {
            Ok(key) => listed.push(key),
            Err(e) => problems.push(e),
        }
        if reason["detail"]
            .as_str()
            .is_none_or(|d| d.trim().is_empty())
        {
            problems.push(format!("reason without a readable detail: {reason}"));
        }
    }
    let have: BTreeSet<_> = listed.iter().cloned().collect();
    if have.len() != listed.len() {
        problems.push("a (code, subject) pair is listed twice: one reason per subject".into());
    }
    for extra in have.difference(&want) {
        problems.push(format!("unexpected reason {extra:?}"));
    }
    for missing in want.difference(&have) {
        problems.push(format!("missing reason {missing:?}"));
    }

    // Reasons come ordered by code (the enum's order), then by subject.
    let rank = |code: &str| CODES.iter().position(|c| *c == code).unwrap_or(usize::MAX);
    let ordered = listed
        .windows(2)
        .all(|w| (rank(&w[0].0), &w[0].1) <= (rank(&w[1].0), &w[1].1));
    if !ordered {
        problems.push(format!(
            "reasons are not ordered by code, then subject: {listed:?}"
        ));
    }
    if (got["decision"] == "proceed") != listed.is_empty() {
        problems.push("`proceed` exactly when there is no reason".into());
    }
    problems
}

#[test]
fn every_scenario_gives_the_expected_decision_and_reasons() {
    let inputs = inputs(&scenarios_dir());
    // The suite must not pass by finding nothing.
    assert!(
        inputs.len() >= 30,
        "only {} scenarios found in {}",
        inputs.len(),
        scenarios_dir().display()
    );

    let mut failures = Vec::new();
    let mut codes_seen = BTreeSet::new();
    for input in &inputs {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        for problem in judge(input) {
            failures.push(format!("{name}: {problem}"));
        }
        for reason in read_json(&expect_path(input))["reasons"]
            .as_array()
            .unwrap()
        {
            codes_seen.insert(reason["code"].as_str().unwrap().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The suite exercises every reason code the engine can give.
    let missing: Vec<_> = CODES.iter().filter(|c| !codes_seen.contains(**c)).collect();
    assert!(missing.is_empty(), "no scenario expects {missing:?}");
}

#[test]
fn every_seed_case_has_a_safe_twin_that_proceeds() {
    let dir = scenarios_dir();
    let seeds: Vec<_> = inputs(&dir)
        .into_iter()
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            (stem.starts_with("seed_") && !stem.ends_with("_twin")).then_some(stem)
        })
        .collect();
    assert_eq!(seeds.len(), 7, "the seed has seven cases: {seeds:?}");
    for seed in seeds {
        let case = read_json(&dir.join(format!("{seed}.expect.json")));
        let twin = read_json(&dir.join(format!("{seed}_twin.expect.json")));
        assert_eq!(case["decision"], "hold", "{seed}");
        assert_eq!(twin["decision"], "proceed", "{seed}_twin");
    }
}

#[test]
fn invalid_inputs_exit_2_with_one_line_naming_the_field() {
    let inputs = inputs(&scenarios_dir().join("invalid"));
    assert!(
        inputs.len() >= 8,
        "only {} invalid inputs found",
        inputs.len()
    );

    let mut failures = Vec::new();
    for input in &inputs {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let field = read_json(&expect_path(input))["field"]
            .as_str()
            .unwrap()
            .to_string();
        let out = check(input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) {
            failures.push(format!(
                "{name}: exit {:?} where 2 was expected",
                out.status.code()
            ));
        }
        if !out.stdout.is_empty() {
            failures.push(format!("{name}: printed a decision for invalid input"));
        }
        let lines: Vec<_> = stderr.lines().collect();
        match lines.as_slice() {
            [line] if line.starts_with(&format!("{field}: ")) => {}
            _ => failures.push(format!(
                "{name}: stderr should be one line starting with `{field}: `, got {stderr:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
