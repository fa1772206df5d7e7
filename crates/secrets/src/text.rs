//! Secrets inside text: wherever a string can carry one (a header value, a
//! URL, a form or JSON body sent as text, a SQL statement, an error message
//! that echoes its input, a note).
//!
//! Two kinds of rule. Shape rules find a value by what it looks like,
//! modelled on the gitleaks rule set: an AWS access key id, a GitHub token,
//! a JWT, a PEM private key. Context rules find a value by the name before
//! it: `?api_key=...`, `password=...`, `"client_secret": "..."`,
//! `Bearer ...`, `https://user:pass@host`. The name stays, so a reviewer
//! sees *that* a credential is sent; only the value becomes `[redacted]`.
//!
//! Every regex is compiled once, on first use.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::keys::is_secret_name;
use crate::REDACTED;

/// A regex from a literal. Every one is known to compile (the unit tests
/// check each); one that did not would match nothing rather than fail the
/// caller.
fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// Values found by their shape alone: (rule name, pattern). The whole match
/// is the secret.
static SHAPES: LazyLock<Vec<(&'static str, Option<Regex>)>> = LazyLock::new(|| {
    [
        (
            "pem-private-key",
            r"-----BEGIN[A-Z0-9 _-]{0,40}PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 _-]{0,40}PRIVATE KEY(?: BLOCK)?-----|\z)",
        ),
        (
            "jwt",
            r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        ),
        (
            "aws-access-key-id",
            r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b",
        ),
        ("github-pat", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),
        ("github-fine-grained-pat", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"),
        ("gitlab-pat", r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
        ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        (
            "slack-webhook",
            r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/_-]{20,}",
        ),
        ("stripe-key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,99}\b"),
        ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
        ("google-oauth-token", r"\bya29\.[0-9A-Za-z_-]{20,}"),
        ("google-client-secret", r"\bGOCSPX-[0-9A-Za-z_-]{20,}"),
        ("anthropic-key", r"\bsk-ant-[a-z]{3,6}\d{2}-[A-Za-z0-9_-]{20,}"),
        (
            "openai-key",
            r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}",
        ),
        ("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b"),
        (
            "sendgrid-key",
            r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}\b",
        ),
        ("twilio-api-key", r"\bSK[0-9a-fA-F]{32}\b"),
        ("shopify-token", r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b"),
        ("huggingface-token", r"\bhf_[A-Za-z]{34}\b"),
        ("databricks-token", r"\bdapi[a-f0-9]{32}(?:-\d)?\b"),
        ("digitalocean-token", r"\bdo[opr]_v1_[a-f0-9]{64}\b"),
        ("pypi-token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
        ("age-secret-key", r"\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\b"),
        ("mailgun-key", r"\bkey-[0-9a-f]{32}\b"),
        ("telegram-bot-token", r"\b\d{8,10}:AA[A-Za-z0-9_-]{33}\b"),
        ("square-token", r"\bsq0(?:atp|csp)-[0-9A-Za-z_-]{22,43}\b"),
        ("linear-key", r"\blin_api_[A-Za-z0-9]{40}\b"),
        ("doppler-token", r"\bdp\.pt\.[A-Za-z0-9]{43}\b"),
    ]
    .into_iter()
    .map(|(name, p)| (name, re(p)))
    .collect()
});

/// `scheme://user:password@host`: the password goes.
static USERINFO: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@?#]*):([^/\s@?#]+)@"));

/// An authorization scheme and its credentials.
static SCHEME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)\b(Bearer|Basic|Digest|Token|Negotiate|NTLM|AWS4-HMAC-SHA256|Bot)(\s+)([A-Za-z0-9._~+/=:,-]{6,})",
    )
});

/// `name=value` in a query string, a form body, a connection string.
static PARAM: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r#"(^|[?&;\s,])([A-Za-z0-9_.\[\]-]{2,64})=([^&#;\s,'"]*)"#));

/// `name: value`, `name = value`, `"name": "value"`: a credential word and
/// what follows it, in free text or JSON sent as text. A value may hold a
/// part already masked (`Cookie: sid=[redacted]`): it goes whole, rather
/// than stopping at the bracket and leaving `[redacted][redacted]`.
static ASSIGNED: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r#"([A-Za-z0-9_.-]{0,64}(?i:pass|pwd|secret|token|key|auth|credential|session|sess|signature|sig|cookie|sid|pin|otp)[A-Za-z0-9_.-]{0,64})(["']?\s*(?::|=|:=|=>)\s*["']?)((?:\[redacted\]|[^\s"',;&}{)\]\[])+)"#,
    )
});

/// Words a credential name may be followed by that are not the credential
/// (`Authorization: Bearer ...` is masked by [`SCHEME`]).
fn is_scheme_word(v: &str) -> bool {
    [
        "bearer",
        "basic",
        "digest",
        "token",
        "negotiate",
        "ntlm",
        "bot",
    ]
    .iter()
    .any(|w| v.eq_ignore_ascii_case(w))
}

/// Values that say nothing even under a credential name.
fn says_nothing(v: &str) -> bool {
    v.is_empty()
        || v.starts_with(REDACTED)
        || ["null", "true", "false", "none", "undefined"]
            .iter()
            .any(|w| v.eq_ignore_ascii_case(w))
}

/// Whether a value after an authorization scheme looks like a credential
/// rather than a word (`Basic research`, `the bearer patient`): it has a
/// digit, a symbol or a capital after its first letter (base64), or is
/// long.
fn token_like(v: &str) -> bool {
    v.len() >= 16
        || v.chars()
            .any(|c| c.is_ascii_digit() || "+/=_.-~:".contains(c))
        || v.chars().skip(1).any(|c| c.is_ascii_uppercase())
}

/// Masks the secrets in one string; `extra` are the operator's own names.
/// Borrowed when nothing was found.
pub fn mask_text<'a>(s: &'a str, extra: &[String]) -> Cow<'a, str> {
    // A quick way out for the common case: short plain words.
    if s.len() < 6 {
        return Cow::Borrowed(s);
    }
    let mut out = Cow::Borrowed(s);
    for (_, rule) in SHAPES.iter() {
        replace(&mut out, rule.as_ref(), |_| REDACTED.to_string());
    }
    replace(&mut out, USERINFO.as_ref(), |c| {
        format!("{}{}:{REDACTED}@", &c[1], &c[2])
    });
    replace(&mut out, SCHEME.as_ref(), |c| {
        if token_like(&c[3]) {
            format!("{}{}{REDACTED}", &c[1], &c[2])
        } else {
            c[0].to_string()
        }
    });
    replace(&mut out, PARAM.as_ref(), |c| {
        if is_secret_name(&c[2], extra) && !says_nothing(&c[3]) {
            format!("{}{}={REDACTED}", &c[1], &c[2])
        } else {
            c[0].to_string()
        }
    });
    replace(&mut out, ASSIGNED.as_ref(), |c| {
        let v = &c[3];
        if is_secret_name(&c[1], extra) && !says_nothing(v) && !is_scheme_word(v) {
            format!("{}{}{REDACTED}", &c[1], &c[2])
        } else {
            c[0].to_string()
        }
    });
    out
}

fn replace(s: &mut Cow<'_, str>, rule: Option<&Regex>, with: impl Fn(&Captures<'_>) -> String) {
    let Some(rule) = rule else { return };
    if !rule.is_match(s) {
        return;
    }
    let replaced = rule.replace_all(s, |c: &Captures<'_>| with(c)).into_owned();
    if replaced != **s {
        *s = Cow::Owned(replaced);
    }
}

/// The names of the shape rules, for documentation and tests.
pub fn shape_rules() -> Vec<&'static str> {
    SHAPES.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> String {
        mask_text(s, &[]).into_owned()
    }

    #[test]
    fn every_rule_compiles() {
        for (name, rule) in SHAPES.iter() {
            assert!(rule.is_some(), "{name} did not compile");
        }
        for r in [&*USERINFO, &*SCHEME, &*PARAM, &*ASSIGNED] {
            assert!(r.is_some());
        }
    }

    #[test]
    fn a_cookie_header_goes_whole_once() {
        assert_eq!(
            m("Cookie: sid=abc123; theme=dark"),
            "Cookie: [redacted]; theme=dark"
        );
        assert_eq!(
            m("Set-Cookie: session=abc; Path=/"),
            "Set-Cookie: [redacted]; Path=/"
        );
        assert_eq!(m("Cookie: x"), "Cookie: [redacted]");
    }

    #[test]
    fn userinfo_loses_its_password() {
        assert_eq!(
            m("postgres://app:hunter2@db:5432/x"),
            "postgres://app:[redacted]@db:5432/x"
        );
        assert_eq!(m("https://example.com/a@b"), "https://example.com/a@b");
    }

    #[test]
    fn query_and_form_parameters() {
        assert_eq!(
            m("https://api.example.com/v1/x?page=2&api_key=abcd1234&sort=asc"),
            "https://api.example.com/v1/x?page=2&api_key=[redacted]&sort=asc"
        );
        assert_eq!(m("a=1&password=x&b=2"), "a=1&password=[redacted]&b=2");
        assert_eq!(
            m("https://s3.example.com/o?X-Amz-Signature=0123abcd&X-Amz-Date=20250101"),
            "https://s3.example.com/o?X-Amz-Signature=[redacted]&X-Amz-Date=20250101"
        );
        assert_eq!(
            m("?token_type=bearer&max_tokens=5"),
            "?token_type=bearer&max_tokens=5"
        );
    }

    #[test]
    fn authorization_schemes() {
        assert_eq!(m("Bearer abc.def-123"), "Bearer [redacted]");
        assert_eq!(m("Basic dXNlcjpwYXNz"), "Basic [redacted]");
        assert_eq!(
            m("Authorization: Bearer abc123xyz"),
            "Authorization: Bearer [redacted]"
        );
        assert_eq!(
            m("Basic research on the bearer patient"),
            "Basic research on the bearer patient"
        );
    }

    #[test]
    fn credential_words_in_text() {
        assert_eq!(m("password: hunter2"), "password: [redacted]");
        assert_eq!(
            m(r#"{"client_secret":"s3cr3t-value"}"#),
            r#"{"client_secret":"[redacted]"}"#
        );
        assert_eq!(
            m("UPDATE users SET password='hunter2' WHERE id=4"),
            "UPDATE users SET password='[redacted]' WHERE id=4"
        );
        assert_eq!(m(r#"{"max_tokens": 512}"#), r#"{"max_tokens": 512}"#);
        assert_eq!(m("token: null"), "token: null");
        // A word before it does not hide it.
        assert_eq!(m("no: password: rj-5511"), "no: password: [redacted]");
    }

    #[test]
    fn shapes() {
        for s in [
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "xoxb-1234567890-abcdefghij",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ] {
            assert_eq!(m(&format!("x {s} y")), "x [redacted] y", "{s}");
        }
    }

    #[test]
    fn masking_twice_changes_nothing() {
        for s in [
            "a=1&password=x",
            "Bearer abc123xyz",
            "postgres://app:hunter2@db/x",
            "password: hunter2",
        ] {
            let once = m(s);
            assert_eq!(m(&once), once);
        }
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            mask_text("nothing to see here", &[]),
            Cow::Borrowed(_)
        ));
    }
}
