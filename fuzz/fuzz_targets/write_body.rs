//! The body of `POST /v1/writes` (and of `/v1/explain`, and what the MCP
//! tools submit): arbitrary bytes through the gate's own reading of it,
//! `recourse_gate::api::read_write_body` (JSON as the handler's `Body`
//! extractor reads it, then `lifecycle::read_proposal`, which
//! `Gate::submit` runs), then `Proposal::validate`, which the gate runs
//! once the connector has planned.
//!
//! Asserted:
//! - bad input is a 400 naming what is wrong (`body` or a field under
//!   `proposal.`), never another status;
//! - an accepted proposal round-trips: written as JSON and read again by
//!   the same function, it is the same proposal (the gate stores it as JSON
//!   and hashes it for approvals);
//! - `validate` names a field under `proposal.` when it refuses;
//! - masking (what the gate stores, audits and returns) is idempotent on
//!   it, as `recourse-secrets` promises: masked again, a masked proposal is
//!   unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recourse_gate::api::read_write_body;

fuzz_target!(|data: &[u8]| {
    let proposal = match read_write_body(data) {
        Ok(p) => p,
        Err(e) => {
            assert_eq!(e.status(), 400, "not a 400: {e}");
            let field = e.field().expect("a 400 names its field");
            assert!(
                field == "body" || field.starts_with("proposal"),
                "field `{field}` is neither the body nor under `proposal`: {e}"
            );
            return;
        }
    };
    let written = serde_json::to_vec(&proposal).expect("a proposal serializes");
    let again = read_write_body(&written).expect("a written proposal reads back");
    assert_eq!(again, proposal, "the proposal does not round-trip");

    if let Err(e) = proposal.validate() {
        assert!(e.field.starts_with("proposal"), "{e}");
    }

    let masker = recourse_secrets::Masker::default();
    let value = serde_json::to_value(&proposal).expect("a proposal is JSON");
    let masked = masker.value(&value);
    assert_eq!(
        masker.value(&masked),
        masked,
        "masking is not idempotent on {value}"
    );
});
