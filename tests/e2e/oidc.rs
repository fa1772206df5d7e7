//! Sign-in for people with OpenID Connect, against a real gate and a
//! provider the suite runs itself (`oidc_provider`): a reviewer from a
//! group claim approves a held write and the audit names them; forged,
//! expired, foreign and unmapped tokens are refused naming why and change
//! nothing; a rotated key is picked up; a flood of unknown key ids makes
//! the gate fetch the provider's keys once, not once per token.

use std::time::Duration;

use recourse_client::{GateClient, Role, SignIn, WriteStatus};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestGate;
use crate::oidc_provider::{hs256, unsigned, Key, Provider};

/// A gate accepting `provider`'s tokens, with `extra` flags.
fn gate_for(provider: &Provider, extra: &[&str]) -> TestGate {
    let mut flags = provider.flags();
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    TestGate::start(&flags)
}

/// A write a customer bears, held for a reviewer.
async fn held_write(gate: &TestGate) -> String {
    let dir = gate.root.join("acct-7");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("profile.json"), "{}").unwrap();
    let (s, b) = gate
        .raw(
            Method::POST,
            "/v1/catalog",
            &gate.tokens.risk,
            Some(
                json!({"resources": [{"id": format!("fs:{}", dir.display()), "bearer": "customer"}]})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let held = gate
        .client(&gate.tokens.agent)
        .submit_json(&json!({"intent": "close the account", "action": {"connector": "fs", "op": "delete", "path": dir.to_str().unwrap()}}))
        .await
        .unwrap();
    assert_eq!(held.status, WriteStatus::Held);
    held.id
}

#[tokio::test]
async fn a_reviewer_from_a_group_claim_approves_a_held_write_and_the_audit_names_them() {
    let key = Key::generate("k1");
    let provider = Provider::start(&[&key]).await;
    let gate = gate_for(&provider, &[]);
    let claims = provider.claims("alice@example.org", &["staff", "staff-reviewers"]);
    let id_token = key.sign(&claims);

    let alice = GateClient::new(gate.url.clone(), id_token.clone());
    let who = alice.whoami().await.unwrap();
    assert_eq!(who.name, "oidc:alice@example.org");
    assert_eq!(who.role, Role::Reviewer);
    assert_eq!(who.signed_in, SignIn::Oidc);
    assert_eq!(
        who.expires_at.map(|t| t.timestamp()),
        claims["exp"].as_i64()
    );
    // Bearer tokens stay: the agent's write is submitted with one, and a
    // token's whoami says so.
    let id = held_write(&gate).await;
    let agent = gate.client(&gate.tokens.agent).whoami().await.unwrap();
    assert_eq!(agent.signed_in, SignIn::Token);

    let rec = alice
        .approve(&id, Some("the customer asked in writing".into()))
        .await
        .unwrap();
    assert_ne!(rec.status, WriteStatus::Held, "{:?}", rec.history);
    let audit = gate.client(&gate.tokens.admin).audit().await.unwrap();
    let approved = audit
        .iter()
        .find(|e| e.write_id.as_deref() == Some(id.as_str()) && e.action == "write.approved")
        .expect("an approval in the audit trail");
    assert_eq!(approved.actor, "oidc:alice@example.org");

    // A person in `ops` is an incident lead: may not approve, and the 403
    // names them.
    let bob = key.sign(&provider.claims("bob@example.org", &["ops"]));
    let (s, b) = gate.raw(Method::GET, "/v1/whoami", &bob, None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["role"], "incident_lead");
    assert_eq!(b["signed_in"], "oidc");
    let (s, b) = gate
        .raw(
            Method::POST,
            &format!("/v1/writes/{id}/approve"),
            &bob,
            Some(json!({"comment": "me too"}).to_string().into_bytes()),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let message = b["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`oidc:bob@example.org`"), "{message}");
}

#[tokio::test]
async fn forged_expired_foreign_and_unmapped_tokens_are_refused_naming_why() {
    let key = Key::generate("k1");
    let other = Key::generate("k1");
    let provider = Provider::start(&[&key]).await;
    let gate = gate_for(&provider, &[]);
    let id = held_write(&gate).await;
    let audit = gate.audit_len().await;
    let good = provider.claims("mallory@example.org", &["staff-reviewers"]);
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "expired",
            key.sign(&with(json!({"iat": now - 4000, "exp": now - 600}))),
            401,
            "expired",
        ),
        (
            "foreign issuer",
            key.sign(&with(json!({"iss": "http://127.0.0.1:9/realms/evil"}))),
            401,
            "issuer",
        ),
        (
            "wrong audience",
            key.sign(&with(json!({"aud": "another-app"}))),
            401,
            "audience",
        ),
        (
            "another audience beside ours",
            key.sign(&with(json!({"aud": ["recourse-console", "another-app"]}))),
            401,
            "audience",
        ),
        (
            "signed by another key under the published kid",
            other.sign(&good),
            401,
            "signature",
        ),
        ("alg none", unsigned(&good), 401, "refused"),
        (
            "HS256 keyed with the public key",
            hs256("k1", key.public_pem().as_bytes(), &good),
            401,
            "refused",
        ),
        (
            "not yet valid",
            key.sign(&with(json!({"nbf": now + 3600}))),
            401,
            "not valid before",
        ),
        (
            "issued in the future",
            key.sign(&with(json!({"iat": now + 3600, "exp": now + 7200}))),
            401,
            "future",
        ),
        (
            "groups that map to no role",
            key.sign(&with(json!({"groups": ["staff", "Staff-Reviewers"]}))),
            403,
            "matches no `--oidc-role`",
        ),
        (
            "no groups at all",
            key.sign(&with(json!({"groups": null}))),
            403,
            "absent or empty",
        ),
        (
            "garbage",
            "eyJhbGciOi.eyJzdWIi.c2ln".to_string(),
            401,
            "well-formed",
        ),
    ];
    for (what, token, status, says) in &cases {
        let (s, b) = gate.raw(Method::GET, "/v1/whoami", token, None).await;
        assert_eq!(s, *status, "{what}: {b}");
        let message = b["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{what}: {message}");
        let (s, b) = gate
            .raw(
                Method::POST,
                &format!("/v1/writes/{id}/approve"),
                token,
                Some(json!({"comment": "looks fine"}).to_string().into_bytes()),
            )
            .await;
        assert_eq!(s, *status, "{what}: {b}");
    }
    // Nothing changed: the write waits, the trail is as it was.
    let rec = gate.client(&gate.tokens.admin).write(&id).await.unwrap();
    assert_eq!(rec.status, WriteStatus::Held);
    assert_eq!(gate.audit_len().await, audit);
    // The good token works on the same gate (the refusals were the token's).
    let (s, b) = gate
        .raw(Method::GET, "/v1/whoami", &key.sign(&good), None)
        .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn a_gate_without_an_issuer_refuses_id_tokens_and_keeps_bearer_tokens() {
    let key = Key::generate("k1");
    let provider = Provider::start(&[&key]).await;
    let gate = TestGate::start(&[]);
    let token = key.sign(&provider.claims("alice@example.org", &["staff-reviewers"]));
    let (s, b) = gate.raw(Method::GET, "/v1/whoami", &token, None).await;
    assert_eq!(s, 401, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not accept ID tokens"),
        "{b}"
    );
    assert_eq!(provider.jwks_fetches(), 0);
    let (s, _) = gate
        .raw(Method::GET, "/v1/whoami", &gate.tokens.reviewer, None)
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_a_flood_of_unknown_kids_fetches_once() {
    let old = Key::generate("2026-11");
    let new = Key::generate("2026-12");
    let forger = Key::generate("x");
    let provider = Provider::start(&[&old]).await;
    let gate = gate_for(&provider, &["--oidc-key-refresh-s", "2"]);
    let claims = provider.claims("carol@example.org", &["staff-reviewers"]);
    let whoami = |token: String| {
        let gate = &gate;
        async move { gate.raw(Method::GET, "/v1/whoami", &token, None).await.0 }
    };
    assert_eq!(whoami(old.sign(&claims)).await, 200);

    // The provider rotates: tokens signed with the new key, under its new
    // kid, are accepted once the gate has looked again.
    provider.publish(&[&new]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let before = provider.jwks_fetches();
    assert_eq!(whoami(new.sign(&claims)).await, 200);
    assert_eq!(
        provider.jwks_fetches(),
        before + 1,
        "one fetch for the new kid"
    );
    assert_eq!(whoami(new.sign(&claims)).await, 200);
    assert_eq!(provider.jwks_fetches(), before + 1, "the new key is cached");

    // A flood of made-up kids, after the floor has passed: one fetch, not
    // one per token, and every token refused.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let before = provider.jwks_fetches();
    let flood = (0..60).map(|i| whoami(forger.named(&format!("forged-{i}")).sign(&claims)));
    let statuses = futures::future::join_all(flood).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(
        provider.jwks_fetches(),
        before + 1,
        "a flood of unknown kids fetches the keys once within the floor"
    );
    // And the good key still works, from the cache.
    assert_eq!(whoami(new.sign(&claims)).await, 200);
    assert_eq!(provider.jwks_fetches(), before + 1);
}
