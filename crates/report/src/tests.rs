//! The engine on small hand-built inputs: each write is decided by the core
//! engine itself, as the gate would record it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, TimeZone, Utc};
use recourse_client::{WriteRecord, WriteStatus};
use recourse_core::{
    decide, Catalog, CatalogGraph, EvidenceStatus, Observations, Policy, Proposal,
};
use serde_json::{json, Value};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
}

fn catalog(v: Value) -> Catalog {
    let c: Catalog = serde_json::from_value(v).unwrap();
    c.with_default_bearers()
}

/// A write as the gate stores it, decided by the core engine.
fn write(id: &str, catalog: &Catalog, proposal: Value, observations: Value) -> WriteRecord {
    let graph = CatalogGraph::new(catalog.clone()).unwrap();
    let proposal: Proposal = serde_json::from_value(proposal).unwrap();
    let obs: Observations = serde_json::from_value(observations).unwrap();
    let decision = decide(&graph, &proposal, &obs, now(), &Policy::default()).into_owned();
    let status = match decision.decision {
        recourse_core::Verdict::Proceed => WriteStatus::Executed,
        recourse_core::Verdict::Hold => WriteStatus::Held,
        recourse_core::Verdict::Refuse => WriteStatus::Refused,
    };
    WriteRecord {
        id: id.into(),
        agent: "bot".into(),
        status,
        connector: proposal.action["connector"].as_str().unwrap_or("?").into(),
        proposal,
        decision,
        proposal_hash: String::new(),
        decision_hash: String::new(),
        submitted_hash: String::new(),
        created_at: now(),
        updated_at: now(),
        expires_at: None,
        required_approvals: 0,
        approval_needs_reason: true,
        approvals: vec![],
        history: vec![],
        capture: None,
        outcome: None,
        rollback: None,
        waiting: None,
        vault_gate: None,
        observed_hold: None,
        targets: Default::default(),
        actions: vec![],
        titles: Default::default(),
        sealed_proposal: None,
    }
}

fn verified(id: &str) -> Value {
    json!({id: {"present": true, "captured_at": "2026-11-30T08:00:00Z"}})
}

fn only_kind(r: &Report) -> &KindAudit {
    assert_eq!(r.kinds.len(), 1, "{:#?}", r.kinds);
    &r.kinds[0]
}

#[test]
fn a_manual_step_is_flagged_not_reversible() {
    let cat = catalog(json!({"resources": [
        {"id": "contract:acme", "kind": "contract"},
        {"id": "msa:acme", "kind": "contract.msa"},
        {"id": "vault:p"}
    ], "edges": [{"from": "contract:acme", "to": "msa:acme"}]}));
    let w = write(
        "w_1",
        &cat,
        json!({"intent": "renew", "touches": ["contract:acme"],
        "action": {"connector": "http", "op": "request", "method": "post", "url": "https://p.internal/renew"},
        "rollback": {"steps": [
            {"restores": ["contract:acme"], "op": {"connector": "http", "op": "request", "method": "POST", "url": "https://p.internal/cancel"},
             "requires": [{"id": "bi", "kind": "before_image", "location": "vault:p"}]},
            {"restores": ["msa:acme"], "op": {"kind": "manual", "note": "manual reconciliation by legal"}}
        ]}}),
        verified("bi"),
    );
    let r = build(&cat, &[w], now());
    let k = only_kind(&r);
    assert_eq!(k.key, "http request POST → contract (institution)");
    assert_eq!(k.rollback, PathVerdict::ManualStep);
    assert!(!k.rollback.reversible());
    let steps = &k.paths[0].steps;
    assert!(!steps[0].manual && steps[1].manual);
    assert_eq!(steps[1].op, "manual: manual reconciliation by legal");
    assert_eq!(steps[0].source, StepSource::Agent);
    assert_eq!(r.summary.kinds_not_reversible, 1);
}

#[test]
fn a_path_with_no_step_is_flagged() {
    let cat = catalog(json!({"resources": [{"id": "account:1", "kind": "account"}]}));
    let w = write(
        "w_1",
        &cat,
        json!({"touches": ["account:1"], "action": {"connector": "http", "op": "request", "url": "https://m.internal/x"}}),
        json!({}),
    );
    let r = build(&cat, &[w], now());
    let k = only_kind(&r);
    assert_eq!(k.rollback, PathVerdict::NoPath);
    assert!(k.paths[0].steps.is_empty());
    assert_eq!(k.unrestored[0].resource, "account:1");
    assert_eq!(k.unrestored[0].why, "no_step");
    assert_eq!(r.resources[0].verdict, ResourceVerdict::NotRestored);
    // The CSV still has its row, with the step columns empty.
    let csv = csv::render(&r);
    let row = csv.lines().nth(1).unwrap();
    assert!(row.contains(",no_path,"), "{row}");
    assert!(html::render(&r).contains("no step: resolves to nothing"));
}

#[test]
fn evidence_in_its_own_blast_radius_is_flagged() {
    let cat = catalog(json!({"resources": [
        {"id": "fs:/home/dev", "kind": "fs.dir"},
        {"id": "fs:/home/dev/app/.git", "kind": "git.repository"}
    ]}));
    let w = write(
        "w_1",
        &cat,
        json!({"touches": ["fs:/home/dev"], "action": {"connector": "fs", "op": "delete", "path": "/home/dev"},
               "rollback": {"steps": [{"restores": ["fs:/home/dev"], "op": {"connector": "shell", "op": "exec", "cmd": "git checkout ."},
                   "requires": [{"id": "git", "kind": "retained_log", "location": "fs:/home/dev/app/.git"}]}]}}),
        verified("git"),
    );
    let r = build(&cat, &[w], now());
    let k = only_kind(&r);
    let c = &k.paths[0].steps[0].context[0];
    assert_eq!(c.location.as_deref(), Some("fs:/home/dev/app/.git"));
    assert_eq!(c.inside_blast_radius, 1);
    assert_eq!(c.statuses[0].status, EvidenceStatus::InBlastRadius);
    assert!(!c.retained());
    assert!(k.aspirational);
    assert_eq!(k.rollback, PathVerdict::Aspirational);
    let git = r
        .resources
        .iter()
        .find(|r| r.id == "fs:/home/dev/app/.git")
        .unwrap();
    assert_eq!(git.context_inside_blast_radius, 1);
}

#[test]
fn a_customer_bearer_makes_the_kind_always_need_a_person() {
    let cat = catalog(json!({"resources": [
        {"id": "account:4411", "kind": "marketplace.account", "bearer": "customer"},
        {"id": "licenses:4411", "reach": "external", "bearer": "customer"},
        {"id": "account:qa", "kind": "marketplace.account"},
        {"id": "http:m.internal/close"},
        {"id": "vault:m"}
    ], "edges": [{"from": "account:4411", "to": "licenses:4411"}]}));
    let close = |id: &str, acct: &str| {
        write(
            id,
            &cat,
            // The http connector adds the endpoint it calls to the touches;
            // the kind is named after what the proposal says it changes.
            json!({"intent": format!("close {acct}"), "touches": [acct, "http:m.internal/close"],
                   "action": {"connector": "http", "op": "request", "method": "POST", "url": "https://m.internal/close"},
                   "rollback": {"steps": [{"restores": [acct, "http:m.internal/close"], "op": {"connector": "http", "op": "request", "method": "POST", "url": "https://m.internal/reopen"},
                       "requires": [{"id": format!("snap-{id}"), "kind": "snapshot", "location": "vault:m"}]}]}}),
            verified(&format!("snap-{id}")),
        )
    };
    let r = build(
        &cat,
        &[close("w_1", "account:4411"), close("w_2", "account:qa")],
        now(),
    );
    assert_eq!(r.kinds.len(), 2);
    let customer = r
        .kinds
        .iter()
        .find(|k| k.owners == [recourse_core::Bearer::Customer])
        .unwrap();
    assert_eq!(customer.needs_person, NeedsPerson::Always);
    assert_eq!(
        customer.key,
        "http request POST → marketplace.account (customer)"
    );
    assert_eq!(customer.unrestored[0].resource, "licenses:4411");
    assert_eq!(customer.unrestored[0].why, "external");
    assert_eq!(customer.counts.held, 1);
    let qa = r
        .kinds
        .iter()
        .find(|k| k.owners == [recourse_core::Bearer::Institution])
        .unwrap();
    assert_eq!(qa.needs_person, NeedsPerson::Never);
    assert_eq!(qa.rollback, PathVerdict::Real);
    assert_eq!((qa.counts.held, qa.counts.ran), (0, 1));
    assert_eq!(r.summary.kinds_always_need_a_person, 1);
    // The least recoverable kind comes first.
    assert_eq!(r.kinds[0].key, customer.key);
    let lic = r
        .resources
        .iter()
        .find(|r| r.id == "licenses:4411")
        .unwrap();
    assert!(lic.needs_person);
    assert_eq!(lic.verdict, ResourceVerdict::External);
}

#[test]
fn html_escapes_what_agents_and_editors_wrote() {
    let cat = catalog(json!({"resources": [
        {"id": "a:1", "title": "<script>alert(1)</script>", "kind": "<b>k</b>"}
    ]}));
    let w = write(
        "w_1",
        &cat,
        json!({"intent": "x\"><script>alert(2)</script>", "touches": ["a:1"],
               "action": {"connector": "http", "op": "request", "url": "https://h.internal/<img src=x>"}}),
        json!({}),
    );
    let page = html::render(&build(&cat, &[w], now()));
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"));
    assert!(!page.contains("<b>k"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn connector_steps_group_by_template_and_are_told_from_agent_steps() {
    let cat = catalog(json!({"resources": [{"id": "fs:/srv/p", "kind": "fs.dir"}]}));
    let del = |id: &str| {
        write(
            id,
            &cat,
            json!({"touches": ["fs:/srv/p"], "action": {"connector": "fs", "op": "delete", "path": "/srv/p"},
                   "rollback": {"steps": [{"restores": ["fs:/srv/p"], "op": {"connector": "fs", "op": "restore"},
                       "modelled_by": "fs",
                       "requires": [{"id": format!("vault-{id}"), "kind": "snapshot", "location": format!("fs:/var/vault/{id}")}]}]}}),
            verified(&format!("vault-{id}")),
        )
    };
    let r = build(&cat, &[del("w_a"), del("w_b")], now());
    let k = only_kind(&r);
    assert_eq!(k.paths.len(), 1, "one path for both writes");
    let s = &k.paths[0].steps[0];
    assert_eq!(s.source, StepSource::Connector);
    assert_eq!(s.modelled_by.as_deref(), Some("fs"));
    assert_eq!(s.available_in, 2);
    assert_eq!(s.context.len(), 1);
    assert_eq!(
        s.context[0].location.as_deref(),
        Some("fs:/var/vault/{write}")
    );
    assert_eq!(s.context[0].verified, 2);
    assert_eq!(k.rollback, PathVerdict::Real);
    assert_eq!(k.counts.seen, 2);
}

#[test]
fn a_secret_in_a_step_never_reaches_the_report() {
    let cat = catalog(json!({"resources": [{"id": "a:1"}, {"id": "vault:v"}]}));
    let w = write(
        "w_1",
        &cat,
        json!({"touches": ["a:1"], "action": {"connector": "http", "op": "request", "url": "https://h.internal/x"},
               "rollback": {"steps": [{"restores": ["a:1"],
                   "op": {"connector": "http", "op": "request", "url": "https://h.internal/undo?api_key=AKIAIOSFODNN7EXAMPLE",
                          "headers": {"Authorization": "Bearer s3cr3t-value"}},
                   "requires": [{"id": "s", "kind": "snapshot", "location": "vault:v"}]}]}}),
        verified("s"),
    );
    let r = build(&cat, &[w], now());
    let all = format!(
        "{}{}{}",
        serde_json::to_string(&r).unwrap(),
        html::render(&r),
        csv::render(&r)
    );
    assert!(!all.contains("AKIAIOSFODNN7EXAMPLE"));
    assert!(!all.contains("s3cr3t"));
}

#[test]
fn refused_writes_are_counted_not_judged() {
    let cat = catalog(json!({"resources": [{"id": "a:1"}]}));
    let mut w = write(
        "w_1",
        &cat,
        json!({"touches": ["a:1"], "action": {"connector": "fs", "op": "delete", "path": "/etc"}}),
        json!({}),
    );
    w.decision.decision = recourse_core::Verdict::Refuse;
    w.status = WriteStatus::Refused;
    let r = build(&cat, &[w], now());
    let k = only_kind(&r);
    assert_eq!(k.counts.refused, 1);
    assert!(k.paths.is_empty());
    assert_eq!(k.writes[0].path, None);
    assert_eq!(r.resources[0].verdict, ResourceVerdict::NotReached);
}

#[test]
fn csv_cells_are_quoted_and_formulas_defused() {
    assert_eq!(csv::cell("plain"), "plain");
    assert_eq!(csv::cell("a,b"), "\"a,b\"");
    assert_eq!(csv::cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv::cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    assert_eq!(csv::cell("@SUM"), "'@SUM");
    let header = csv::render(&build(&Catalog::default(), &[], now()));
    assert_eq!(header.trim_end(), csv::COLUMNS.join(","));
}
