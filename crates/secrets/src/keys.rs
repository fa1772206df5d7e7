//! Which names carry credentials: JSON keys, header names, query and form
//! parameters, the word before `password: ...` in free text.
//!
//! A name is compared in a normal form (lowercase, without `-`, `_`, `.`,
//! spaces), so `X-Auth-Token`, `x_auth_token` and `XAuthToken` are one name.
//!
//! The choice: a name is a credential when it is one of [`EXACT`] or holds
//! one of [`PARTS`] (`*token*`, `*secret*`, `*password*`, ...), unless it
//! ends in one of [`HARMLESS_ENDINGS`]. Those endings name something *about*
//! a credential, not the credential: `max_tokens` and `total_tokens` (counts
//! of language-model tokens), `token_type` (`"Bearer"`), `token_url`,
//! `password_policy`, `secret_name` (a reference to a secret store entry),
//! `signature_version`. Their values still go through the text rules, so a
//! key-shaped value under a harmless name is masked all the same. A bare
//! `key` is not a credential name (S3 object keys, map keys): a key-shaped
//! value under it is caught by the value rules.

/// Names that are credentials as a whole.
const EXACT: &[&str] = &[
    "auth",
    "pwd",
    "passwd",
    "pass",
    "passphrase",
    "pin",
    "otp",
    "sig",
    "sid",
    "sessid",
    "phpsessid",
    "jsessionid",
    "aspnetsessionid",
    "connectsid",
    "session",
    "accountkey",
    "sharedaccesskey",
    "masterkey",
    "encryptionkey",
    "signingkey",
    "licensekey",
    "xamzcredential",
    "xgoogcredential",
];

/// Parts that make any name holding them a credential.
const PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "clientsecret",
    "credential",
    "authorization",
    "cookie",
    "sessionid",
    "sessionkey",
    "signature",
];

/// Endings that name something about a credential, not the credential.
const HARMLESS_ENDINGS: &[&str] = &[
    "tokens",
    "type",
    "types",
    "tokenizer",
    "count",
    "limit",
    "length",
    "policy",
    "endpoint",
    "url",
    "uri",
    "expiry",
    "expiresat",
    "expiresin",
    "ttl",
    "lifetime",
    "required",
    "name",
    "ref",
    "arn",
    "version",
    "method",
    "algorithm",
    "enabled",
    "path",
    "file",
];

/// The normal form names are compared in.
pub fn normal(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' ' | '[' | ']'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `name` (a JSON key, a header, a parameter) names a credential,
/// by the built-in rules or one of the operator's `extra` names.
pub fn is_secret_name(name: &str, extra: &[String]) -> bool {
    let n = normal(name);
    if n.is_empty() {
        return false;
    }
    if extra.iter().any(|x| normal(x) == n) {
        return true;
    }
    if EXACT.contains(&n.as_str()) {
        return true;
    }
    if !PARTS.iter().any(|p| n.contains(p)) {
        return false;
    }
    // `secret`, `token` alone end in nothing harmless; `token_type` does.
    !HARMLESS_ENDINGS
        .iter()
        .any(|end| n.ends_with(end) && !PARTS.contains(&n.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_in_any_case_and_separator() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "Set-Cookie",
            "X-Api-Key",
            "x_api_key",
            "X-Auth-Token",
            "X-Amz-Security-Token",
            "access_token",
            "refreshToken",
            "client_secret",
            "Password",
            "db.password",
            "passwd",
            "pwd",
            "api_key",
            "apikey",
            "private_key",
            "credentials",
            "session_id",
            "JSESSIONID",
            "signature",
            "X-Amz-Signature",
            "aws_secret_access_key",
            "AccountKey",
            "csrf_token",
            "token",
            "secret",
        ] {
            assert!(is_secret_name(name, &[]), "{name} should be a credential");
        }
    }

    #[test]
    fn harmless_names_stay() {
        for name in [
            "token_type",
            "max_tokens",
            "total_tokens",
            "prompt_tokens",
            "tokenizer",
            "token_url",
            "secret_name",
            "password_policy",
            "SignatureVersion",
            "author",
            "monkey",
            "key",
            "keyboard",
            "path",
            "id",
            "sha256",
            "content_b64",
        ] {
            assert!(!is_secret_name(name, &[]), "{name} should not be masked");
        }
    }

    #[test]
    fn operator_names_count() {
        let extra = vec!["X-Tenant-Pin".to_string()];
        assert!(is_secret_name("x_tenant_pin", &extra));
        assert!(!is_secret_name("x_tenant", &extra));
    }
}
