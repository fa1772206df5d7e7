//! One self-contained decision problem: what `recourse check` reads
//! (section 6).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, CatalogGraph};
use crate::decision::{decide, Decision, Policy, ReasonCode, Verdict};
use crate::error::InputError;
use crate::evidence::Observations;
use crate::proposal::Proposal;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Free text for people reading the file; ignored by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    pub catalog: Catalog,
    pub proposal: Proposal,
    #[serde(default)]
    pub observations: Observations,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_margin_s: Option<i64>,
}

/// A scenario whose catalog is built and whose proposal is valid.
#[derive(Debug, Clone)]
pub struct Checked {
    pub catalog: CatalogGraph,
    pub proposal: Proposal,
    pub observations: Observations,
    pub now: Option<DateTime<Utc>>,
    pub policy: Policy,
}

impl Checked {
    /// Decides, with `clock` standing in for `now` when the file gives none.
    pub fn decide(&self, clock: DateTime<Utc>) -> Decision<'_> {
        decide(
            &self.catalog,
            &self.proposal,
            &self.observations,
            self.now.unwrap_or(clock),
            &self.policy,
        )
    }
}

impl Scenario {
    /// Parses any bytes; the error names the field (`proposal.touches[0]`)
    /// or, for broken JSON, the place.
    pub fn parse(bytes: &[u8]) -> Result<Self, InputError> {
        // serde also reads a struct from a JSON array (by position), which
        // would name a field `[1]`; a scenario is an object, so say that.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|&b| b != b'{') {
            return Err(InputError::new("scenario", "must be a JSON object"));
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed: Result<Scenario, _> = serde_path_to_error::deserialize(&mut de);
        let scenario = parsed.map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." || path.is_empty() || inner.is_syntax() || inner.is_eof() {
                "scenario".to_string()
            } else {
                path
            };
            InputError::new(field, inner.to_string())
        })?;
        de.end()
            .map_err(|e| InputError::new("scenario", e.to_string()))?;
        Ok(scenario)
    }

    pub fn check(self) -> Result<Checked, InputError> {
        // A scenario's catalog is written by a person: a resource without a
        // `bearer` is the institution's, it does not inherit.
        let catalog = CatalogGraph::new(self.catalog.with_default_bearers())?;
        self.proposal.validate()?;
        let policy = match self.window_margin_s {
            Some(m) if m < 0 => {
                return Err(InputError::new("window_margin_s", "must not be negative"))
            }
            Some(m) => Policy { window_margin_s: m },
            None => Policy::default(),
        };
        Ok(Checked {
            catalog,
            proposal: self.proposal,
            observations: self.observations,
            now: self.now,
            policy,
        })
    }
}

/// `recourse check` as a function: bytes in, decision JSON or an error out.
pub fn check_bytes(bytes: &[u8], clock: DateTime<Utc>) -> Result<String, InputError> {
    let checked = Scenario::parse(bytes)?.check()?;
    let decision = checked.decide(clock);
    serde_json::to_string_pretty(&decision).map_err(|e| InputError::new("decision", e.to_string()))
}

/// One case of `recourse catalog test`: a proposal (with what was observed
/// and when) and the decision a catalog must give it. The catalog comes
/// from the catalog file under test, so the case has none of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogCase {
    /// Free text for people reading the file; ignored by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    pub proposal: Proposal,
    #[serde(default)]
    pub observations: Observations,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_margin_s: Option<i64>,
    /// `proceed` or `hold`.
    pub expect: Verdict,
    /// When given, exactly these reason codes (in any order, each once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_reasons: Option<Vec<ReasonCode>>,
}

impl CatalogCase {
    /// Parses any bytes, naming the field as [`Scenario::parse`] does.
    pub fn parse(bytes: &[u8]) -> Result<Self, InputError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed: Result<CatalogCase, _> = serde_path_to_error::deserialize(&mut de);
        let case = parsed.map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." || path.is_empty() || inner.is_syntax() || inner.is_eof() {
                "case".to_string()
            } else {
                path
            };
            InputError::new(field, inner.to_string())
        })?;
        de.end()
            .map_err(|e| InputError::new("case", e.to_string()))?;
        if case.expect == Verdict::Refuse {
            return Err(InputError::new(
                "expect",
                "must be `proceed` or `hold` (only a gate refuses)",
            ));
        }
        Ok(case)
    }

    /// Decides the case under `catalog` (the file as the gate would hold
    /// it) with the one engine; `Ok(None)` when the decision is the one
    /// expected, else a sentence saying what came instead.
    pub fn run(
        &self,
        catalog: &CatalogGraph,
        clock: DateTime<Utc>,
    ) -> Result<Option<String>, InputError> {
        self.proposal.validate()?;
        let policy = match self.window_margin_s {
            Some(m) if m < 0 => {
                return Err(InputError::new("window_margin_s", "must not be negative"))
            }
            Some(m) => Policy { window_margin_s: m },
            None => Policy::default(),
        };
        let d = decide(
            catalog,
            &self.proposal,
            &self.observations,
            self.now.unwrap_or(clock),
            &policy,
        );
        let mut got: Vec<ReasonCode> = d.reasons.iter().map(|r| r.code).collect();
        got.sort();
        got.dedup();
        let codes = |c: &[ReasonCode]| {
            let names: Vec<String> = c.iter().map(|c| c.as_str().to_string()).collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        let verdict = |v: Verdict| match v {
            Verdict::Proceed => "proceed",
            Verdict::Hold => "hold",
            Verdict::Refuse => "refuse",
        };
        if d.decision != self.expect {
            return Ok(Some(format!(
                "expected {}, got {} (reasons: {})",
                verdict(self.expect),
                verdict(d.decision),
                codes(&got)
            )));
        }
        if let Some(expected) = &self.expect_reasons {
            let mut want = expected.clone();
            want.sort();
            want.dedup();
            if want != got {
                return Ok(Some(format!(
                    "{} as expected, but with reasons {} instead of {}",
                    verdict(d.decision),
                    codes(&got),
                    codes(&want)
                )));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> DateTime<Utc> {
        "2026-11-25T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn errors_name_the_field() {
        let err =
            check_bytes(br#"{"catalog": {}, "proposal": {"touches": [1]}}"#, clock()).unwrap_err();
        assert_eq!(err.field, "proposal.touches[0]");
        let err = check_bytes(
            br#"{"catalog": {"resources": [{"id": "a:1", "reach": "far"}]}, "proposal": {}}"#,
            clock(),
        )
        .unwrap_err();
        assert_eq!(err.field, "catalog.resources[0].reach");
        let err = check_bytes(b"\xff\x00", clock()).unwrap_err();
        assert_eq!(err.field, "scenario");
        let err =
            check_bytes(br#"{"catalog": {}, "proposal": {"touches": []}}"#, clock()).unwrap_err();
        assert_eq!(err.to_string(), "proposal.touches: must not be empty");
        let err = check_bytes(br#"{"catalog": {}}"#, clock()).unwrap_err();
        assert!(err.message.contains("proposal"), "{err}");
    }

    #[test]
    fn seed_example_holds_for_the_external_licenses() {
        let json = br#"{
          "catalog": {"resources": [
              {"id": "account:seller-4411", "reach": "controlled", "bearer": "customer"},
              {"id": "licenses:seller-4411", "reach": "external", "bearer": "customer"}],
            "edges": [{"from": "account:seller-4411", "to": "licenses:seller-4411",
                       "why": "closing the account revokes licensed digital goods"}]},
          "proposal": {"agent": "integrity-bot", "intent": "close", "action": {},
            "touches": ["account:seller-4411"],
            "rollback": {"steps": [{"restores": ["account:seller-4411"], "op": {"connector": "http"},
              "requires": [{"id": "snap-acct", "kind": "snapshot", "location": "vault:market"},
                           {"id": "notice", "kind": "window", "until": "2026-12-01T00:00:00Z"}]}]}},
          "observations": {"snap-acct": {"present": true, "captured_at": "2026-11-23T09:00:00Z"}},
          "now": "2026-11-24T00:00:00Z"
        }"#;
        let out: serde_json::Value =
            serde_json::from_str(&check_bytes(json, clock()).unwrap()).unwrap();
        assert_eq!(out["decision"], "hold");
        let codes: Vec<_> = out["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["code"].as_str().unwrap(), r["resource"].as_str().unwrap()))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("external", "licenses:seller-4411"),
                ("third_party_bearer", "account:seller-4411"),
                ("third_party_bearer", "licenses:seller-4411"),
            ]
        );
        assert_eq!(
            out["reasons"][0]["detail"],
            "closing the account revokes licensed digital goods"
        );
        assert_eq!(
            out["reasons"][0]["path"],
            serde_json::json!(["account:seller-4411", "licenses:seller-4411"])
        );
        assert_eq!(out["blast_radius"][0]["covered"], true);
        assert_eq!(out["bearers"], serde_json::json!(["customer"]));
        assert_eq!(out["evidence"][0]["status"], "verified");
    }

    #[test]
    fn a_catalog_case_reports_an_unexpected_verdict_or_reason_set() {
        let catalog = CatalogGraph::new(
            serde_json::from_value(serde_json::json!({"resources": [
                {"id": "acct:1", "bearer": "customer"}, {"id": "acct:2"}]}))
            .unwrap(),
        )
        .unwrap();
        let case = |touch: &str, expect: &str, reasons: serde_json::Value| {
            CatalogCase::parse(
                serde_json::json!({
                    "proposal": {"agent": "a", "intent": "i", "action": {},
                        "touches": [touch], "rollback": {"steps": []}},
                    "expect": expect, "expect_reasons": reasons})
                .to_string()
                .as_bytes(),
            )
            .unwrap()
        };
        let run = |c: CatalogCase| c.run(&catalog, clock()).unwrap();
        assert_eq!(
            run(case(
                "acct:1",
                "hold",
                serde_json::json!(["third_party_bearer", "uncovered"])
            )),
            None
        );
        assert_eq!(
            run(case("acct:1", "proceed", serde_json::Value::Null)).unwrap(),
            "expected proceed, got hold (reasons: uncovered, third_party_bearer)"
        );
        assert_eq!(
            run(case(
                "acct:2",
                "hold",
                serde_json::json!(["third_party_bearer"])
            ))
            .unwrap(),
            "hold as expected, but with reasons uncovered instead of third_party_bearer"
        );
        let err = CatalogCase::parse(br#"{"proposal": {}, "expect": "maybe"}"#).unwrap_err();
        assert_eq!(err.field, "expect");
        let err = CatalogCase::parse(br#"{"proposal": {}, "expect": "refuse"}"#).unwrap_err();
        assert_eq!(err.field, "expect");
        let err = CatalogCase::parse(br#"{"catalog": {}, "proposal": {}, "expect": "hold"}"#)
            .unwrap_err();
        assert!(err.message.contains("unknown field `catalog`"), "{err}");
    }
}
