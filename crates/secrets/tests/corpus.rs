//! The corpus (`corpus.json`, also read by the gate's end-to-end test):
//! every secret shape must be masked wherever it appears; every look-alike
//! must come through unchanged.

// Test code: a failed step should stop the test loudly, helpers included.
#![allow(clippy::unwrap_used)]

use recourse_secrets::{mask_text, mask_value};
use serde_json::{json, Value};

fn corpus() -> Value {
    let text = include_str!("corpus.json");
    serde_json::from_str(text).unwrap()
}

#[test]
fn the_corpus_is_large_enough() {
    let c = corpus();
    let secrets = c["secrets"].as_array().unwrap();
    let mut rules: Vec<&str> = secrets
        .iter()
        .map(|s| s["rule"].as_str().unwrap())
        .collect();
    rules.sort_unstable();
    rules.dedup();
    assert!(rules.len() >= 30, "only {} distinct shapes", rules.len());
    assert!(c["lookalikes"].as_array().unwrap().len() >= 10);
}

#[test]
fn every_secret_is_masked_in_text_and_in_json() {
    let c = corpus();
    let mut missed = Vec::new();
    for s in c["secrets"].as_array().unwrap() {
        let (rule, secret, text) = (
            s["rule"].as_str().unwrap(),
            s["secret"].as_str().unwrap(),
            s["text"].as_str().unwrap(),
        );
        assert!(
            text.contains(secret),
            "{rule}: the text must hold the secret"
        );
        let as_text = mask_text(text, &[]);
        if as_text.contains(secret) {
            missed.push(format!("{rule} (text): {as_text}"));
        }
        // In a JSON document, under a harmless key, nested, in a list.
        let doc = json!({"note": text, "nested": {"list": [text]}});
        let masked = mask_value(&doc, &[]).to_string();
        if masked.contains(secret) {
            missed.push(format!("{rule} (json): {masked}"));
        }
        // The bare value under a credential name.
        let named = mask_value(&json!({"X-Auth-Token": secret, "password": secret}), &[]);
        if named.to_string().contains(secret) {
            missed.push(format!("{rule} (named): {named}"));
        }
    }
    assert!(
        missed.is_empty(),
        "secrets left in clear:\n{}",
        missed.join("\n")
    );
}

#[test]
fn no_lookalike_is_masked() {
    let c = corpus();
    let mut changed = Vec::new();
    for l in c["lookalikes"].as_array().unwrap() {
        let l = l.as_str().unwrap();
        let out = mask_text(l, &[]);
        if out != l {
            changed.push(format!("{l} -> {out}"));
        }
        let doc = json!({"id": l, "sha256": l, "path": l});
        if mask_value(&doc, &[]) != doc {
            changed.push(format!("{l} (json)"));
        }
    }
    assert!(
        changed.is_empty(),
        "look-alikes masked:\n{}",
        changed.join("\n")
    );
}
