//! What a secret looks like, in one place: the gate masks every value with
//! this crate before it stores, logs, audits or returns it (contract,
//! section 10). Pure: no I/O, no clock.
//!
//! - A JSON value: the value of a key named like a credential
//!   ([`is_secret_name`]) becomes `"[redacted]"`; a `{"name": "Cookie",
//!   "value": "..."}` pair (headers as a list) loses its value; every string
//!   goes through the text rules; `content_b64` (file contents) becomes
//!   `{"redacted": true, "sha256": ..., "bytes": N}`, the hash of the decoded
//!   content, so the trail still proves what was written.
//! - Text ([`mask_text`]): URL userinfo, credential parameters in query
//!   strings and form bodies, authorization schemes, credential words
//!   followed by a value, and key-shaped values anywhere (AWS, GitHub,
//!   Slack, Stripe, Google, OpenAI, Anthropic, JWTs, PEM private keys, ...).
//!
//! Masking is idempotent: a masked value masked again is unchanged, so a
//! stored record can be masked at every edge without drift.

mod keys;
mod text;

use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use keys::{is_secret_name, normal};
pub use text::{mask_text, shape_rules};

/// What a masked value becomes.
pub const REDACTED: &str = "[redacted]";

/// The key whose value is a file's content, base64: kept as a hash.
pub const CONTENT_KEY: &str = "content_b64";

/// Keys of a `{name, value}` pair (headers or parameters as a list).
const PAIR_NAMES: [&str; 3] = ["name", "key", "header"];

/// A masker with the operator's own credential names (`--redact`).
#[derive(Debug, Clone, Default)]
pub struct Masker {
    extra: Vec<String>,
}

impl Masker {
    pub fn new(extra: impl IntoIterator<Item = String>) -> Self {
        Self {
            extra: extra.into_iter().collect(),
        }
    }

    /// The masked form of a JSON value.
    pub fn value(&self, v: &Value) -> Value {
        mask_value(v, &self.extra)
    }

    /// The masked form of a string.
    pub fn text(&self, s: &str) -> String {
        mask_text(s, &self.extra).into_owned()
    }

    /// Whether `name` names a credential here.
    pub fn is_secret_name(&self, name: &str) -> bool {
        is_secret_name(name, &self.extra)
    }

    /// The values a masked form of `v` hides by their name (under a
    /// credential key, a credential header pair): what a connector may
    /// echo without the name, in a row of values, say. Short ones (under 4
    /// characters) are left out: they would mask ordinary text.
    pub fn named_secrets(&self, v: &Value) -> Vec<String> {
        fn all(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) if s.len() >= 4 && s != REDACTED => out.push(s.clone()),
                Value::Number(n) if n.to_string().len() >= 4 => out.push(n.to_string()),
                Value::Array(items) => items.iter().for_each(|i| all(i, out)),
                Value::Object(map) => map.values().for_each(|i| all(i, out)),
                _ => {}
            }
        }
        fn walk(m: &Masker, v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Array(items) => {
                    if let [Value::String(name), value] = items.as_slice() {
                        if m.is_secret_name(name) {
                            all(value, out);
                            return;
                        }
                    }
                    items.iter().for_each(|i| walk(m, i, out));
                }
                Value::Object(map) => {
                    let pair = PAIR_NAMES.iter().any(|n| {
                        map.get(*n)
                            .and_then(Value::as_str)
                            .is_some_and(|name| m.is_secret_name(name))
                    });
                    for (k, v) in map {
                        if m.is_secret_name(k) || (pair && k == "value") {
                            all(v, out);
                        } else {
                            walk(m, v, out);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(self, v, &mut out);
        // Longest first, so a secret holding another is replaced whole.
        out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        out.dedup();
        out
    }

    /// `v` masked, with every occurrence of one of `known` (from
    /// [`Masker::named_secrets`] of the proposal) masked too, wherever it
    /// shows and under whatever name.
    pub fn value_knowing(&self, v: &Value, known: &[String]) -> Value {
        fn replace(v: &Value, known: &[String]) -> Value {
            match v {
                Value::String(s) => {
                    let mut s = s.clone();
                    for k in known {
                        if s.contains(k.as_str()) {
                            s = s.replace(k.as_str(), REDACTED);
                        }
                    }
                    Value::String(s)
                }
                Value::Number(n) if known.contains(&n.to_string()) => {
                    Value::String(REDACTED.into())
                }
                Value::Array(items) => {
                    Value::Array(items.iter().map(|i| replace(i, known)).collect())
                }
                Value::Object(map) => Value::Object(
                    map.iter()
                        .map(|(k, v)| (k.clone(), replace(v, known)))
                        .collect(),
                ),
                other => other.clone(),
            }
        }
        self.value(&replace(v, known))
    }

    /// The same value with only its strings masked: keys, shapes and types
    /// stay (for typed records that must still decode after masking).
    pub fn strings(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.strings(i)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.strings(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// The masked form of a JSON value; `extra` are the operator's own
/// credential names.
pub fn mask_value(v: &Value, extra: &[String]) -> Value {
    match v {
        Value::String(s) => Value::String(mask_text(s, extra).into_owned()),
        Value::Array(items) => {
            // `["Authorization", "Bearer x"]`: a header as a pair.
            if let [Value::String(name), value] = items.as_slice() {
                if is_secret_name(name, extra) {
                    return Value::Array(vec![Value::String(name.clone()), masked_secret(value)]);
                }
            }
            Value::Array(items.iter().map(|i| mask_value(i, extra)).collect())
        }
        Value::Object(map) => Value::Object(mask_object(map, extra)),
        other => other.clone(),
    }
}

fn mask_object(map: &Map<String, Value>, extra: &[String]) -> Map<String, Value> {
    // `{"name": "X-Api-Key", "value": "..."}`: the value is the secret.
    let pair_secret = PAIR_NAMES.iter().any(|n| {
        map.get(*n)
            .and_then(Value::as_str)
            .is_some_and(|name| is_secret_name(name, extra))
    });
    // `{"columns": ["id", "password"], "after": [1, "..."]}`: rows as lists
    // (a SQL connector's before- and after-images) lose the values of
    // credential columns.
    let secret_columns: Vec<bool> = map
        .get("columns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|c| c.as_str().is_some_and(|c| is_secret_name(c, extra)))
                .collect()
        })
        .unwrap_or_default();
    map.iter()
        .map(|(k, v)| {
            let masked = if k == CONTENT_KEY {
                content(v, extra)
            } else if is_secret_name(k, extra) || (pair_secret && k == "value") {
                masked_secret(v)
            } else if secret_columns.contains(&true) && k != "columns" {
                mask_value(&by_column(v, &secret_columns), extra)
            } else {
                mask_value(v, extra)
            };
            (k.clone(), masked)
        })
        .collect()
}

/// A row (or a list of rows) with the values of secret columns masked.
fn by_column(v: &Value, secret: &[bool]) -> Value {
    match v {
        Value::Array(items)
            if items.len() == secret.len() && !items.iter().all(Value::is_array) =>
        {
            Value::Array(
                items
                    .iter()
                    .zip(secret)
                    .map(|(item, s)| {
                        if *s {
                            masked_secret(item)
                        } else {
                            item.clone()
                        }
                    })
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| by_column(i, secret)).collect()),
        other => other.clone(),
    }
}

/// The value of a credential: strings and numbers go; `true`, `false` and
/// `null` say nothing and stay (`"password_set": true` is not a secret, but
/// a key named so is masked by name anyway); a whole object or list under a
/// credential name goes.
fn masked_secret(v: &Value) -> Value {
    match v {
        Value::Bool(_) | Value::Null => v.clone(),
        Value::String(s) if s == REDACTED => v.clone(),
        _ => Value::String(REDACTED.into()),
    }
}

/// File contents: a hash and a size. The hash is of the decoded bytes when
/// the text is base64 (what the file holds), else of the text itself.
fn content(v: &Value, extra: &[String]) -> Value {
    let Value::String(b64) = v else {
        // Masked already, or not contents at all.
        return mask_value(v, extra);
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes());
    let (bytes, is_b64) = match &decoded {
        Ok(d) => (d.as_slice(), true),
        Err(_) => (b64.as_bytes(), false),
    };
    let mut out = Map::new();
    out.insert("redacted".into(), Value::Bool(true));
    out.insert("sha256".into(), Value::String(sha256_hex(bytes)));
    out.insert("bytes".into(), Value::from(bytes.len()));
    if !is_b64 {
        out.insert("base64".into(), Value::Bool(false));
    }
    Value::Object(out)
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Value {
        mask_value(&v, &[])
    }

    #[test]
    fn credential_keys_lose_their_values() {
        let r = m(
            json!({"headers": {"Authorization": "Bearer x", "Accept": "a",
                                     "X-Auth-Token": "t0k", "X-Amz-Security-Token": "FQo"},
                         "nested": [{"password": "p"}], "max_tokens": 512,
                         "token_type": "Bearer", "password_set": true}),
        );
        assert_eq!(r["headers"]["Authorization"], REDACTED);
        assert_eq!(r["headers"]["X-Auth-Token"], REDACTED);
        assert_eq!(r["headers"]["X-Amz-Security-Token"], REDACTED);
        assert_eq!(r["headers"]["Accept"], "a");
        assert_eq!(r["nested"][0]["password"], REDACTED);
        assert_eq!(r["max_tokens"], 512);
        assert_eq!(r["token_type"], "Bearer");
        assert_eq!(r["password_set"], true);
    }

    #[test]
    fn headers_as_pairs() {
        let r = m(json!({"headers": [["Cookie", "sid=1"], ["Accept", "x"],
                                     {"name": "X-Api-Key", "value": "k1"},
                                     {"name": "Accept", "value": "y"}]}));
        assert_eq!(r["headers"][0][1], REDACTED);
        assert_eq!(r["headers"][1][1], "x");
        assert_eq!(r["headers"][2]["value"], REDACTED);
        assert_eq!(r["headers"][3]["value"], "y");
    }

    #[test]
    fn file_contents_become_a_hash_of_what_was_written() {
        let r = m(json!({"content_b64": "aGk="}));
        assert_eq!(r["content_b64"]["redacted"], true);
        assert_eq!(r["content_b64"]["bytes"], 2);
        assert_eq!(r["content_b64"]["sha256"], sha256_hex(b"hi"));
        let r = m(json!({"content_b64": "%%"}));
        assert_eq!(r["content_b64"]["base64"], false);
        assert_eq!(r["content_b64"]["sha256"], sha256_hex(b"%%"));
    }

    #[test]
    fn strings_anywhere_are_masked() {
        let r = m(
            json!({"url": "https://x.test/a?api_key=abcd1234", "body": "a=1&password=x",
                         "list": ["AKIAIOSFODNN7EXAMPLE"]}),
        );
        assert_eq!(r["url"], "https://x.test/a?api_key=[redacted]");
        assert_eq!(r["body"], "a=1&password=[redacted]");
        assert_eq!(r["list"][0], REDACTED);
    }

    #[test]
    fn masking_is_idempotent() {
        let v = json!({"content_b64": "aGk=", "password": "p", "u": "https://a:b@h/",
                       "h": [["Cookie", "c=1"]], "n": 5, "key": "AKIAIOSFODNN7EXAMPLE"});
        let once = m(v);
        assert_eq!(m(once.clone()), once);
    }

    #[test]
    fn rows_as_lists_lose_credential_columns() {
        let r = m(json!({"columns": ["id", "password", "note"],
                         "after": [1, "pw-1", "x"], "rows": [[2, "pw-2", "y"]]}));
        assert_eq!(r["after"], json!([1, REDACTED, "x"]));
        assert_eq!(r["rows"], json!([[2, REDACTED, "y"]]));
    }

    #[test]
    fn values_named_secret_in_the_proposal_are_masked_wherever_they_show() {
        let masker = Masker::default();
        let proposal = json!({"set": {"password": "pw-12345", "note": "hi"},
                              "headers": [["Cookie", "c-77777"]]});
        let known = masker.named_secrets(&proposal);
        // Longest first, so a secret holding another is replaced whole.
        assert_eq!(known, vec!["pw-12345".to_string(), "c-77777".to_string()]);
        let outcome = json!({"after": [[1, "pw-12345", "hi"]], "echo": "sent c-77777"});
        let r = masker.value_knowing(&outcome, &known);
        assert_eq!(r["after"], json!([[1, REDACTED, "hi"]]));
        assert_eq!(r["echo"], "sent [redacted]");
    }

    #[test]
    fn operator_keys() {
        let masker = Masker::new(["tenant_pin".to_string()]);
        let r = masker.value(&json!({"Tenant-Pin": "1234", "tenant": "acme"}));
        assert_eq!(r["Tenant-Pin"], REDACTED);
        assert_eq!(r["tenant"], "acme");
    }

    #[test]
    fn strings_only_keeps_shapes() {
        let masker = Masker::default();
        let r = masker.strings(&json!({"password": 5, "note": "password: hunter2"}));
        assert_eq!(r["password"], 5);
        assert_eq!(r["note"], "password: [redacted]");
    }
}
