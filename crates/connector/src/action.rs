//! A connector's action grammar as one Rust type.
//!
//! Each connector writes its actions as an enum tagged by `op`
//! (`#[serde(tag = "op", deny_unknown_fields)]`, with a JSON Schema derive).
//! That type is the grammar: [`parse`] reads an action into it, [`to_value`]
//! writes one back, and [`op_schemas`] gives each op's schema (the MCP tool
//! schemas are built from it). Nothing else spells out an action's fields.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::ConnectorError;

/// One connector's actions: an enum tagged by `op`.
pub trait Action: DeserializeOwned + Serialize + JsonSchema {
    /// The value of an action's `connector` field.
    const CONNECTOR: &'static str;
}

type Read<A> = Result<A, serde_path_to_error::Error<serde_json::Error>>;

fn read<A: Action>(fields: &Map<String, Value>) -> Read<A> {
    serde_path_to_error::deserialize(Value::Object(fields.clone()))
}

/// The name between the first pair of backticks of a serde message.
fn quoted(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Reads `value` as `A`; `at` names it in errors (`action`,
/// `proposal.rollback.steps[0].op`). An unknown op or field, a missing one,
/// or one of the wrong type is named (`action.path`).
pub fn parse<A: Action>(at: &str, value: &Value) -> Result<A, ConnectorError> {
    let field = |name: &str| format!("{at}.{name}");
    let Some(obj) = value.as_object() else {
        return Err(ConnectorError::invalid(at, "must be an object"));
    };
    match obj.get("connector") {
        Some(Value::String(c)) if c == A::CONNECTOR => {}
        Some(Value::String(c)) => {
            return Err(ConnectorError::invalid(
                field("connector"),
                format!("`{c}` is not `{}`", A::CONNECTOR),
            ))
        }
        Some(_) => {
            return Err(ConnectorError::invalid(
                field("connector"),
                "must be a string",
            ))
        }
        None => return Err(ConnectorError::invalid(field("connector"), "is required")),
    }
    let ops = || {
        let names: Vec<String> = op_schemas::<A>()
            .into_keys()
            .map(|op| format!("`{op}`"))
            .collect();
        names.join(", ")
    };
    let op = match obj.get("op") {
        Some(Value::String(op)) => op.clone(),
        Some(_) => return Err(ConnectorError::invalid(field("op"), "must be a string")),
        None => {
            return Err(ConnectorError::invalid(
                field("op"),
                format!("is required (one of {})", ops()),
            ))
        }
    };
    let mut fields = obj.clone();
    fields.remove("connector");
    let e = match read::<A>(&fields) {
        Ok(a) => return Ok(a),
        Err(e) => e,
    };
    let message = e.inner().to_string();
    let path = e.path().to_string();
    if message.starts_with("unknown variant") {
        return Err(ConnectorError::invalid(
            field("op"),
            format!("unknown op `{op}` (expected one of {})", ops()),
        ));
    }
    if path != "." && !path.is_empty() {
        return Err(ConnectorError::invalid(field(&path), message));
    }
    if message.starts_with("missing field") {
        if let Some(name) = quoted(&message) {
            return Err(ConnectorError::invalid(field(name), "is required"));
        }
    }
    // INVARIANT (serde): an enum tagged by `op` is read through serde's own
    // buffer, which loses the path to a bad field (path-to-error issue 1).
    // The first bad field is the one whose absence changes the error: the
    // fields are read in order and the first bad one stops the read, while
    // a missing field is only noticed after every present one was read.
    let culprit = fields.keys().filter(|k| *k != "op").find(|k| {
        let mut without = fields.clone();
        without.remove(k.as_str());
        match read::<A>(&without) {
            Ok(_) => true,
            Err(other) => other.inner().to_string() != message,
        }
    });
    match culprit {
        Some(name) if message.starts_with("unknown field") => Err(ConnectorError::invalid(
            field(name),
            format!("unknown field for op `{op}`"),
        )),
        Some(name) => Err(ConnectorError::invalid(field(name), message)),
        None => Err(ConnectorError::invalid(at, message)),
    }
}

/// `action` written back as the JSON [`parse`] reads: its fields, its `op`
/// and its `connector`.
pub fn to_value<A: Action>(action: &A) -> Value {
    let mut v = serde_json::to_value(action).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("connector".into(), Value::String(A::CONNECTOR.into()));
    }
    v
}

/// The JSON Schema of `A`, with every subschema inline (no `$ref`): what a
/// tool schema can carry as it is.
pub fn schema<A: Action>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    generator.into_root_schema_for::<A>().to_value()
}

/// Each op of `A` and the schema of its object, less the `op` tag itself:
/// `properties`, `required`, `additionalProperties` and the op's doc as
/// `description`.
pub fn op_schemas<A: Action>() -> BTreeMap<String, Map<String, Value>> {
    let root = schema::<A>();
    let variants = root
        .get("oneOf")
        .or_else(|| root.get("anyOf"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for v in variants {
        let Value::Object(mut v) = v else { continue };
        let Some(Value::Object(props)) = v.get_mut("properties") else {
            continue;
        };
        let Some(tag) = props.remove("op") else {
            continue;
        };
        let op = tag
            .get("const")
            .or_else(|| tag.get("enum").and_then(|e| e.get(0)))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(Value::Array(required)) = v.get_mut("required") {
            required.retain(|r| r != "op");
        }
        if let Some(op) = op {
            out.insert(op, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
    enum Toy {
        /// Drops it.
        Drop { path: String },
        Copy {
            path: String,
            to: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            mode: Option<u32>,
        },
    }

    impl Action for Toy {
        const CONNECTOR: &'static str = "toy";
    }

    fn field(v: Value) -> (String, String) {
        match parse::<Toy>("action", &v).unwrap_err() {
            ConnectorError::Invalid { field, message } => (field, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_and_writes_back() {
        let v = json!({"connector": "toy", "op": "copy", "path": "a", "to": "b", "mode": null});
        let t: Toy = parse("action", &v).unwrap();
        assert_eq!(
            t,
            Toy::Copy {
                path: "a".into(),
                to: "b".into(),
                mode: None
            }
        );
        assert_eq!(
            to_value(&t),
            json!({"connector": "toy", "op": "copy", "path": "a", "to": "b"})
        );
        assert_eq!(parse::<Toy>("action", &to_value(&t)).unwrap(), t);
    }

    #[test]
    fn names_the_bad_field_whatever_serde_loses() {
        assert_eq!(field(json!([])).0, "action");
        assert_eq!(
            field(json!({"op": "drop", "path": "a"})).0,
            "action.connector"
        );
        assert_eq!(
            field(json!({"connector": "fs", "op": "drop", "path": "a"})).0,
            "action.connector"
        );
        let (f, m) = field(json!({"connector": "toy", "op": "chmod"}));
        assert_eq!(f, "action.op");
        assert_eq!(m, "unknown op `chmod` (expected one of `copy`, `drop`)");
        assert_eq!(field(json!({"connector": "toy"})).0, "action.op");
        assert_eq!(field(json!({"connector": "toy", "op": 1})).0, "action.op");
        assert_eq!(
            field(json!({"connector": "toy", "op": "drop"})),
            ("action.path".into(), "is required".into())
        );
        // Wrong types inside the tagged enum: serde's path is lost, the
        // field is still named.
        let (f, m) = field(json!({"connector": "toy", "op": "drop", "path": 3}));
        assert_eq!(f, "action.path");
        assert!(m.contains("expected a string"), "{m}");
        assert_eq!(
            field(json!({"connector": "toy", "op": "copy", "path": "a", "to": "b", "mode": "x"})).0,
            "action.mode"
        );
        assert_eq!(
            field(json!({"connector": "toy", "op": "copy", "path": 1, "to": 2})).0,
            "action.path"
        );
        assert_eq!(
            field(json!({"connector": "toy", "op": "drop", "path": "a", "zz": 1})),
            ("action.zz".into(), "unknown field for op `drop`".into())
        );
        // A field of another op is unknown for this one.
        assert_eq!(
            field(json!({"connector": "toy", "op": "drop", "path": "a", "to": "b"})).0,
            "action.to"
        );
    }

    #[test]
    fn each_op_has_its_schema() {
        let ops = op_schemas::<Toy>();
        assert_eq!(ops.keys().collect::<Vec<_>>(), ["copy", "drop"]);
        let copy = &ops["copy"];
        assert_eq!(copy["required"], json!(["path", "to"]));
        assert_eq!(copy["additionalProperties"], json!(false));
        assert!(copy["properties"].get("op").is_none());
        assert!(copy["properties"].get("mode").is_some());
        assert_eq!(ops["drop"]["description"], "Drops it.");
    }
}
