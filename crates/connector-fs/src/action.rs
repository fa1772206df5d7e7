//! The `fs` actions, read strictly: an unknown op or field, or a field of
//! the wrong type, is the caller's mistake and is named.

use base64::Engine;
use recourse_connector::ConnectorError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsAction {
    Delete { path: String },
    Write { path: String, content: Vec<u8> },
    Move { path: String, to: String },
}

impl FsAction {
    pub fn op(&self) -> &'static str {
        match self {
            FsAction::Delete { .. } => "delete",
            FsAction::Write { .. } => "write",
            FsAction::Move { .. } => "move",
        }
    }

    pub fn path(&self) -> &str {
        match self {
            FsAction::Delete { path }
            | FsAction::Write { path, .. }
            | FsAction::Move { path, .. } => path,
        }
    }

    /// The path whose old tree the capture takes: the deleted or
    /// overwritten path, or a move's destination.
    pub fn captured_path(&self) -> (&str, &'static str) {
        match self {
            FsAction::Delete { path } | FsAction::Write { path, .. } => (path, "action.path"),
            FsAction::Move { to, .. } => (to, "action.to"),
        }
    }
}

fn string(obj: &Map<String, Value>, key: &str) -> Result<String, ConnectorError> {
    let field = format!("action.{key}");
    match obj.get(key) {
        None => Err(ConnectorError::invalid(field, "is required")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ConnectorError::invalid(field, "must be a string")),
    }
}

pub fn parse(action: &Value) -> Result<FsAction, ConnectorError> {
    let Some(obj) = action.as_object() else {
        return Err(ConnectorError::invalid("action", "must be an object"));
    };
    match obj.get("connector") {
        Some(Value::String(c)) if c == "fs" => {}
        Some(Value::String(c)) => {
            return Err(ConnectorError::invalid(
                "action.connector",
                format!("`{c}` is not `fs`"),
            ))
        }
        Some(_) => {
            return Err(ConnectorError::invalid(
                "action.connector",
                "must be a string",
            ))
        }
        None => return Err(ConnectorError::invalid("action.connector", "is required")),
    }
    let op = string(obj, "op")?;
    let allowed: &[&str] = match op.as_str() {
        "delete" => &["connector", "op", "path"],
        "write" => &["connector", "op", "path", "content_b64"],
        "move" => &["connector", "op", "path", "to"],
        other => {
            return Err(ConnectorError::invalid(
                "action.op",
                format!("unknown op `{other}` (expected `delete`, `write` or `move`)"),
            ))
        }
    };
    if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ConnectorError::invalid(
            format!("action.{extra}"),
            format!("unknown field for op `{op}`"),
        ));
    }
    let path = string(obj, "path")?;
    Ok(match op.as_str() {
        "delete" => FsAction::Delete { path },
        "write" => {
            let b64 = string(obj, "content_b64")?;
            let content = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| {
                    ConnectorError::invalid("action.content_b64", format!("is not base64: {e}"))
                })?;
            FsAction::Write { path, content }
        }
        _ => FsAction::Move {
            path,
            to: string(obj, "to")?,
        },
    })
}

/// The action as a restore reads it. Once a write has run the gate keeps
/// only its masked action, where a write's `content_b64` is a digest of
/// the contents (`{"redacted": true, "sha256": ..., "bytes": ...}`); a
/// restore never needs the contents (it puts back what the capture holds
/// and tells drift by the manifest's hash of what was written).
pub fn parse_for_restore(action: &Value) -> Result<FsAction, ConnectorError> {
    if let Some(Value::Object(digest)) = action.get("content_b64") {
        if digest.get("redacted") == Some(&Value::Bool(true)) {
            let mut action = action.clone();
            action["content_b64"] = Value::String(String::new());
            return parse(&action);
        }
    }
    parse(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(v: Value) -> String {
        match parse(&v).unwrap_err() {
            ConnectorError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_restore_reads_a_write_whose_contents_were_masked() {
        let masked = json!({"connector": "fs", "op": "write", "path": "/r/a",
                            "content_b64": {"redacted": true, "sha256": "ab", "bytes": 2}});
        assert_eq!(
            parse_for_restore(&masked).unwrap(),
            FsAction::Write {
                path: "/r/a".into(),
                content: Vec::new()
            }
        );
        // Only for a restore, and only the masked form.
        assert_eq!(field(masked), "action.content_b64");
        let other =
            json!({"connector": "fs", "op": "write", "path": "/r/a", "content_b64": {"x": 1}});
        assert!(parse_for_restore(&other).is_err());
    }

    #[test]
    fn reads_the_three_ops() {
        assert_eq!(
            parse(&json!({"connector": "fs", "op": "delete", "path": "/r/a"})).unwrap(),
            FsAction::Delete {
                path: "/r/a".into()
            }
        );
        assert_eq!(
            parse(
                &json!({"connector": "fs", "op": "write", "path": "/r/a", "content_b64": "aGk="})
            )
            .unwrap(),
            FsAction::Write {
                path: "/r/a".into(),
                content: b"hi".to_vec()
            }
        );
        assert_eq!(
            parse(&json!({"connector": "fs", "op": "move", "path": "/r/a", "to": "/r/b"})).unwrap(),
            FsAction::Move {
                path: "/r/a".into(),
                to: "/r/b".into()
            }
        );
    }

    #[test]
    fn names_the_bad_field() {
        assert_eq!(field(json!([])), "action");
        assert_eq!(
            field(json!({"connector": "sql", "op": "delete", "path": "/a"})),
            "action.connector"
        );
        assert_eq!(
            field(json!({"connector": "fs", "op": "chmod", "path": "/a"})),
            "action.op"
        );
        assert_eq!(
            field(json!({"connector": "fs", "op": "delete", "path": 3})),
            "action.path"
        );
        assert_eq!(
            field(json!({"connector": "fs", "op": "delete"})),
            "action.path"
        );
        assert_eq!(
            field(json!({"connector": "fs", "op": "delete", "path": "/a", "recursive": true})),
            "action.recursive"
        );
        assert_eq!(
            field(json!({"connector": "fs", "op": "write", "path": "/a", "content_b64": "%%"})),
            "action.content_b64"
        );
        assert_eq!(
            field(json!({"connector": "fs", "op": "move", "path": "/a"})),
            "action.to"
        );
        assert_eq!(
            field(json!({"connector": "fs", "op": "delete", "path": "/a", "to": "/b"})),
            "action.to"
        );
    }
}
