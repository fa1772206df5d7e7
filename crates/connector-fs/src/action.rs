//! The `fs` actions: one type, [`FsAction`], read strictly by
//! [`recourse_connector::action::parse`]: an unknown op or field, or a field
//! of the wrong type, is the caller's mistake and is named.

use recourse_connector::action::Action;
use recourse_connector::ConnectorError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A write under one of the gate's roots. Paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum FsAction {
    /// Delete a file or a whole folder; the old tree goes into the vault.
    Delete {
        /// Absolute path of the file or folder to delete.
        path: String,
    },
    /// Create or overwrite a file; the old file goes into the vault.
    Write {
        /// Absolute path of the file to write.
        path: String,
        /// The new content, base64.
        #[serde(rename = "content_b64", with = "b64")]
        #[schemars(with = "String")]
        content: Vec<u8>,
    },
    /// Move or rename a file or folder; whatever `to` held goes into the
    /// vault.
    Move {
        /// Absolute path to move.
        path: String,
        /// Absolute destination path.
        to: String,
    },
}

impl Action for FsAction {
    const CONNECTOR: &'static str = "fs";
}

/// `content_b64`: standard base64 on the wire, bytes in the action.
mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("is not base64: {e}")))
    }
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

    /// The action as JSON, as [`parse`] reads it.
    pub fn to_value(&self) -> Value {
        recourse_connector::action::to_value(self)
    }
}

pub fn parse(action: &Value) -> Result<FsAction, ConnectorError> {
    recourse_connector::action::parse("action", action)
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
