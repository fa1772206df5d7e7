//! The `http` action: one type, [`HttpAction`], read strictly by
//! [`recourse_connector::action::parse`]. The same type is a compensating
//! step's `op`. What the gate's configuration says of it (allowed hosts,
//! credentials) is checked when it is planned.

use std::collections::BTreeMap;

use recourse_connector::action::Action;
use recourse_connector::ConnectorError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A request to a host the gate allows; the gate adds the credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAction {
    /// Send one request.
    Request {
        /// GET, POST, PUT, PATCH, DELETE, … (default GET).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
        /// The URL, on a host the gate allows.
        url: String,
        /// Header: value pairs (never credentials: the gate adds those).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        headers: Option<BTreeMap<String, String>>,
        /// A string, sent as it is, or a JSON object or array, sent as
        /// application/json.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Body>,
    },
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged, expecting = "a string, a JSON object or a JSON array")]
pub enum Body {
    Text(String),
    Object(Map<String, Value>),
    Array(Vec<Value>),
}

impl Action for HttpAction {
    const CONNECTOR: &'static str = "http";
}

impl HttpAction {
    /// The action as JSON, as [`parse`] reads it.
    pub fn to_value(&self) -> Value {
        recourse_connector::action::to_value(self)
    }
}

/// Reads a request; `at` names it in errors (`action`,
/// `proposal.rollback.steps[0].op`).
pub fn parse(at: &str, action: &Value) -> Result<HttpAction, ConnectorError> {
    recourse_connector::action::parse(at, action)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_request_and_writes_it_back() {
        let v = json!({"connector": "http", "op": "request", "method": "POST", "url": "http://h/a",
                       "headers": {"x-a": "1"}, "body": {"k": [1, 2]}});
        let a = parse("action", &v).unwrap();
        assert_eq!(a.to_value(), v);
        // Every optional field may be given as null (not given).
        let v = json!({"connector": "http", "op": "request", "method": null, "url": "http://h/a",
                       "headers": null, "body": null});
        assert_eq!(
            parse("action", &v).unwrap().to_value(),
            json!({"connector": "http", "op": "request", "url": "http://h/a"})
        );
    }

    #[test]
    fn names_the_bad_field() {
        let field = |v: Value| match parse("op", &v).unwrap_err() {
            ConnectorError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(json!({"connector": "http", "op": "request", "url": 1})),
            "op.url"
        );
        assert_eq!(
            field(json!({"connector": "http", "op": "request", "url": "http://h", "body": 1})),
            "op.body"
        );
        assert_eq!(
            field(
                json!({"connector": "http", "op": "request", "url": "http://h", "headers": {"a": 1}})
            ),
            "op.headers"
        );
        assert_eq!(
            field(json!({"connector": "http", "op": "request", "url": "http://h", "timeout": 1})),
            "op.timeout"
        );
    }
}
