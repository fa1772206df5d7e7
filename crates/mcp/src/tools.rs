//! The tools: one per connector operation the gate has, plus `write_status`
//! and `explain`.
//!
//! A write tool's arguments are its connector's action fields, as the
//! connector's own action type declares them (`FsAction`, `SqlAction`,
//! `HttpAction`: their JSON Schema is the tool's), plus the few the MCP side
//! adds (`intent`, `idempotency_key`, `fs_write`'s `content`, an HTTP
//! request's `compensation` and `check`). A call is checked by the
//! connector's own parser, so the schema an agent sees and the check its
//! call meets cannot drift apart. Every optional argument may be `null`,
//! meaning not given (OpenAI's strict mode sends every field).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use recourse_connector::action::{self, Action};
use recourse_connector::ConnectorError;
use recourse_connector_fs::FsAction;
use recourse_connector_http::HttpAction;
use recourse_connector_sql::SqlAction;
use rmcp::model::{Tool, ToolAnnotations};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The JSON type of an argument the MCP side adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    String,
    Object,
    Number,
    /// `http_request.compensation`: an HTTP request, as the http
    /// connector's action type declares it.
    Request,
    /// `http_request.check`: `{"url", "method"?}`.
    Check,
}

#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub name: &'static str,
    pub ty: ArgType,
    pub required: bool,
    pub doc: &'static str,
}

const fn req(name: &'static str, ty: ArgType, doc: &'static str) -> Arg {
    Arg {
        name,
        ty,
        required: true,
        doc,
    }
}

const fn opt(name: &'static str, ty: ArgType, doc: &'static str) -> Arg {
    Arg {
        name,
        ty,
        required: false,
        doc,
    }
}

const INTENT: Arg = req(
    "intent",
    ArgType::String,
    "Why, in one sentence: reviewers read it when the gate holds the write.",
);
const KEY: Arg = opt(
    "idempotency_key",
    ArgType::String,
    "Names this write: the same key with the same arguments is the same write, never a second one. \
     Omitted, the key is derived from the tool and its arguments, so repeating a call repeats nothing; \
     give a new key to do the same thing again on purpose.",
);

/// A tool that becomes a proposal to the gate.
#[derive(Debug, Clone, Copy)]
pub struct WriteTool {
    pub name: &'static str,
    pub connector: &'static str,
    pub op: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// What the gate knows of the operation: it can destroy what was there
    /// (a delete, an overwrite, an update) or only adds.
    pub destructive: bool,
    /// It reaches a system outside the gate's own control.
    pub open_world: bool,
    /// The arguments the MCP side adds to the action's fields.
    pub extra: &'static [Arg],
    /// Action fields the tool makes optional: an argument of its own may
    /// stand for them (`content` for `content_b64`).
    pub optional: &'static [&'static str],
}

const HOW_IT_ENDS: &str = "The gate decides from whether the write's rollback path is verified: it executes \
     (capturing first; the write id is the rollback handle), holds it for a person (call `write_status` \
     with `wait_s` to wait for the decision), or refuses it (with why).";

pub const WRITE_TOOLS: &[WriteTool] = &[
    WriteTool {
        name: "fs_delete",
        connector: "fs",
        op: "delete",
        title: "Delete a file or folder",
        description: "Delete a file or a whole folder under one of the gate's roots. The gate moves the old tree into its vault first.",
        destructive: true,
        open_world: false,
        extra: &[INTENT, KEY],
        optional: &[],
    },
    WriteTool {
        name: "fs_write",
        connector: "fs",
        op: "write",
        title: "Write a file",
        description: "Create or overwrite a file under one of the gate's roots. The gate keeps the old file first. \
             Give the content as text (`content`) or base64 (`content_b64`).",
        destructive: true,
        open_world: false,
        extra: &[
            opt("content", ArgType::String, "The new content as UTF-8 text (give this or `content_b64`)."),
            INTENT,
            KEY,
        ],
        optional: &["content_b64"],
    },
    WriteTool {
        name: "fs_move",
        connector: "fs",
        op: "move",
        title: "Move a file or folder",
        description: "Move or rename a file or folder within the gate's roots. The gate keeps whatever `to` held first.",
        destructive: true,
        open_world: false,
        extra: &[INTENT, KEY],
        optional: &[],
    },
    WriteTool {
        name: "sql_update",
        connector: "sql",
        op: "update",
        title: "Update rows",
        description: "Update the rows of a table that match `where` (equality on columns). The gate keeps before-images of every row it changes, cascades included.",
        destructive: true,
        open_world: false,
        extra: &[INTENT, KEY],
        optional: &[],
    },
    WriteTool {
        name: "sql_delete",
        connector: "sql",
        op: "delete",
        title: "Delete rows",
        description: "Delete the rows of a table that match `where` (equality on columns). The gate keeps before-images of every row it removes, cascades included.",
        destructive: true,
        open_world: false,
        extra: &[INTENT, KEY],
        optional: &[],
    },
    WriteTool {
        name: "sql_insert",
        connector: "sql",
        op: "insert",
        title: "Insert rows",
        description: "Insert one row or several into a table.",
        destructive: false,
        open_world: false,
        extra: &[INTENT, KEY],
        optional: &[],
    },
    WriteTool {
        name: "http_request",
        connector: "http",
        op: "request",
        title: "Send an HTTP request",
        description: "Send a request to a host the gate allows; the gate adds the credentials. A remote system cannot be captured: \
             its rollback is the compensating request you declare in `compensation`, with a `check` the gate probes.",
        destructive: true,
        open_world: true,
        extra: &[
            opt(
                "compensation",
                ArgType::Request,
                "The request that undoes this one: {\"method\", \"url\", \"headers\"?, \"body\"?}.",
            ),
            opt(
                "check",
                ArgType::Check,
                "How the gate verifies the compensation can work and did: {\"url\", \"method\"?}.",
            ),
            INTENT,
            KEY,
        ],
        optional: &[],
    },
];

/// The `wait_s` a tool result suggests: under the 60 s a request takes
/// before many MCP clients give up on it (the TypeScript SDK's default,
/// openai-agents' default session timeout is shorter still).
pub const SUGGESTED_WAIT_S: u32 = 50;

pub const WRITE_STATUS_ARGS: &[Arg] = &[
    req("id", ArgType::String, "The write's id, as a tool call returned it."),
    opt(
        "wait_s",
        ArgType::Number,
        "Wait up to this many seconds (at most 600) while the write is held, approved or executing; \
         progress notifications report the wait. Keep it under your client's request timeout (often 60 s; \
         50 is safe) and call again to wait longer.",
    ),
];

pub const EXPLAIN_ARGS: &[Arg] = &[
    req(
        "tool",
        ArgType::String,
        "The write tool to explain, e.g. `fs_delete`.",
    ),
    req("arguments", ArgType::Object, "That tool's arguments."),
];

/// The longest `write_status` wait.
pub const MAX_WAIT_S: f64 = 600.0;

pub fn write_tool(name: &str) -> Option<&'static WriteTool> {
    WRITE_TOOLS.iter().find(|t| t.name == name)
}

/// The write tools for the connectors the gate has, in table order.
pub fn write_tools_for(connectors: &[String]) -> Vec<&'static WriteTool> {
    WRITE_TOOLS
        .iter()
        .filter(|t| connectors.iter().any(|c| c == t.connector))
        .collect()
}

/// The schema of each op of a connector's action type, by connector name.
pub fn connector_ops(connector: &str) -> BTreeMap<String, Map<String, Value>> {
    match connector {
        FsAction::CONNECTOR => action::op_schemas::<FsAction>(),
        SqlAction::CONNECTOR => action::op_schemas::<SqlAction>(),
        HttpAction::CONNECTOR => action::op_schemas::<HttpAction>(),
        _ => BTreeMap::new(),
    }
}

/// Reads an action with its connector's own parser.
fn parse_action(connector: &str, at: &str, action: &Value) -> Result<(), ConnectorError> {
    match connector {
        FsAction::CONNECTOR => action::parse::<FsAction>(at, action).map(drop),
        SqlAction::CONNECTOR => action::parse::<SqlAction>(at, action).map(drop),
        HttpAction::CONNECTOR => action::parse::<HttpAction>(at, action).map(drop),
        other => Err(ConnectorError::invalid(
            "connector",
            format!("unknown connector `{other}`"),
        )),
    }
}

/// The schema of one op: the connector's, as it declares it.
fn op_schema(connector: &str, op: &str) -> Map<String, Value> {
    connector_ops(connector).remove(op).unwrap_or_default()
}

/// `schema` that also takes `null` (not given).
fn nullable(mut schema: Value) -> Value {
    let Value::Object(m) = &mut schema else {
        return schema;
    };
    match m.get_mut("type") {
        Some(Value::String(t)) => {
            let t = t.clone();
            m.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(types)) => {
            if !types.contains(&json!("null")) {
                types.push(json!("null"));
            }
        }
        _ => {
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(alts)) = m.get_mut(key) {
                    if !alts.iter().any(|a| a.get("type") == Some(&json!("null"))) {
                        alts.push(json!({"type": "null"}));
                    }
                }
            }
        }
    }
    schema
}

fn arg_schema(arg: &Arg) -> Value {
    let mut s = match arg.ty {
        ArgType::String if arg.required => json!({"type": "string", "minLength": 1}),
        ArgType::String => json!({"type": "string"}),
        ArgType::Object => json!({"type": "object"}),
        ArgType::Number => json!({"type": "number", "minimum": 0, "maximum": MAX_WAIT_S}),
        ArgType::Request => {
            let mut m = op_schema(HttpAction::CONNECTOR, "request");
            m.remove("description");
            m.insert("type".into(), json!("object"));
            Value::Object(m)
        }
        ArgType::Check => json!({
            "type": "object",
            "properties": {
                "url": {"type": "string", "description": "The URL the gate probes."},
                "method": {"type": ["string", "null"], "description": "Its method (default GET)."}
            },
            "required": ["url"],
            "additionalProperties": false
        }),
    };
    if let Value::Object(m) = &mut s {
        m.insert("description".into(), Value::String(arg.doc.into()));
    }
    if arg.required {
        s
    } else {
        nullable(s)
    }
}

/// The JSON schema of a tool's arguments that are all the MCP side's own.
pub fn schema(args: &[Arg]) -> Map<String, Value> {
    let mut props = Map::new();
    for a in args {
        props.insert(a.name.into(), arg_schema(a));
    }
    let required: Vec<&str> = args.iter().filter(|a| a.required).map(|a| a.name).collect();
    let mut m = Map::new();
    m.insert("type".into(), json!("object"));
    m.insert("properties".into(), Value::Object(props));
    m.insert("required".into(), json!(required));
    m.insert("additionalProperties".into(), json!(false));
    m
}

/// The JSON schema of a write tool's arguments: its connector op's fields,
/// as the connector's action type declares them, then the tool's own.
pub fn tool_schema(tool: &WriteTool) -> Map<String, Value> {
    let op = op_schema(tool.connector, tool.op);
    let mut props = op
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut required: Vec<Value> = op
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for name in tool.optional {
        required.retain(|r| r != name);
        if let Some(p) = props.remove(*name) {
            props.insert((*name).into(), nullable(p));
        }
    }
    for a in tool.extra {
        props.insert(a.name.into(), arg_schema(a));
        if a.required {
            required.push(json!(a.name));
        }
    }
    let mut m = Map::new();
    m.insert("type".into(), json!("object"));
    m.insert("properties".into(), Value::Object(props));
    m.insert("required".into(), Value::Array(required));
    m.insert("additionalProperties".into(), json!(false));
    m
}

/// The tool list for a gate with these connectors.
pub fn tools(connectors: &[String]) -> Vec<Tool> {
    let writes = write_tools_for(connectors);
    let mut out: Vec<Tool> = writes
        .iter()
        .map(|t| {
            let annotations = ToolAnnotations::with_title(t.title)
                .read_only(false)
                .destructive(t.destructive)
                // Every call carries an idempotency key (derived when not
                // given): the gate never runs the same write twice.
                .idempotent(true)
                .open_world(t.open_world);
            Tool::new(
                t.name,
                format!("{} {HOW_IT_ENDS}", t.description),
                Arc::new(tool_schema(t)),
            )
            .with_title(t.title)
            .annotate(annotations)
        })
        .collect();
    out.push(
        Tool::new(
            "write_status",
            "Where a write stands: executed (with its rollback handle), held (why, and who must decide), \
             refused, rejected, expired, failed or rolled back. With `wait_s`, waits while it is held, \
             approved or executing, and returns as soon as it leaves those.",
            Arc::new(schema(WRITE_STATUS_ARGS)),
        )
        .with_title("Status of a write")
        .annotate(
            ToolAnnotations::with_title("Status of a write")
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(false),
        ),
    );
    let names: Vec<&str> = writes.iter().map(|t| t.name).collect();
    let mut explain_schema = schema(EXPLAIN_ARGS);
    if let Some(Value::Object(props)) = explain_schema.get_mut("properties") {
        // Only the write tools this gate has.
        props.insert(
            "tool".into(),
            json!({"type": "string", "enum": names, "description": EXPLAIN_ARGS[0].doc}),
        );
    }
    out.push(
        Tool::new(
            "explain",
            "A dry run: the decision the gate would give a write tool's call now (proceed, hold or refuse, \
             with the reasons, the blast radius and who bears it), without storing or running anything.",
            Arc::new(explain_schema),
        )
        .with_title("Explain a write (dry run)")
        .annotate(
            ToolAnnotations::with_title("Explain a write (dry run)")
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(false),
        ),
    );
    out
}

/// A bad argument: which one, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument `{arg}`: {message}")]
pub struct ArgError {
    pub arg: String,
    pub message: String,
}

impl ArgError {
    pub fn new(arg: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            arg: arg.into(),
            message: message.into(),
        }
    }

    /// A connector's answer on the action built from the arguments, named
    /// by argument (`action.path` is `path`).
    fn from_connector(e: ConnectorError, prefix: &str) -> Self {
        match e {
            ConnectorError::Invalid { field, message } => {
                ArgError::new(format!("{prefix}{}", arg_of_field(&field)), message)
            }
            other => ArgError::new(prefix.trim_end_matches('.'), other.to_string()),
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The arguments as given, less those given as `null`: not given.
pub fn given(args: &Map<String, Value>) -> Map<String, Value> {
    args.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Checks `given` (nulls already dropped): keys outside `known`, and
/// missing and mistyped `args`, are named.
fn check_some(
    tool: &str,
    args: &[Arg],
    given: &Map<String, Value>,
    known: &[&str],
) -> Result<(), ArgError> {
    for key in given.keys() {
        if !known.contains(&key.as_str()) {
            return Err(ArgError::new(
                key,
                format!("unknown argument (`{tool}` takes: {})", known.join(", ")),
            ));
        }
    }
    for a in args {
        let Some(v) = given.get(a.name) else {
            if a.required {
                return Err(ArgError::new(a.name, format!("is required: {}", a.doc)));
            }
            continue;
        };
        let (ok, want) = match a.ty {
            ArgType::String => (v.is_string(), "a string"),
            ArgType::Object | ArgType::Request | ArgType::Check => (v.is_object(), "an object"),
            ArgType::Number => (v.is_number(), "a number"),
        };
        if !ok {
            return Err(ArgError::new(
                a.name,
                format!("must be {want}, not {}", type_name(v)),
            ));
        }
        if a.ty == ArgType::String && a.required && v.as_str().is_some_and(|s| s.trim().is_empty())
        {
            return Err(ArgError::new(a.name, "must not be empty"));
        }
    }
    Ok(())
}

/// Checks `given` against `args`: unknown, missing and mistyped arguments
/// are named; `null` is an argument not given.
pub fn check_args(
    tool: &str,
    args: &[Arg],
    given_args: &Map<String, Value>,
) -> Result<(), ArgError> {
    let known: Vec<&str> = args.iter().map(|a| a.name).collect();
    check_some(tool, args, &given(given_args), &known)
}

/// JSON with object keys sorted at every level, so equal arguments hash
/// equally whatever order the client sent them in.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(x) = m.get(k) {
                    out.insert(k.clone(), canonical(x));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The key for a call that gave none: the tool and its arguments, hashed.
pub fn derived_key(tool: &str, args: &Map<String, Value>) -> String {
    let mut h = Sha256::new();
    h.update(tool.as_bytes());
    h.update([0]);
    h.update(
        canonical(&Value::Object(args.clone()))
            .to_string()
            .as_bytes(),
    );
    let digest = hex::encode(h.finalize());
    format!("mcp-{tool}-{}", digest.get(..32).unwrap_or(&digest))
}

fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

/// What a URL reaches, as the http connector names it.
fn http_resource(arg: &str, url: &str) -> Result<String, ArgError> {
    let u = reqwest::Url::parse(url)
        .map_err(|e| ArgError::new(arg, format!("`{url}` is not a URL: {e}")))?;
    Ok(recourse_connector_http::resource_id(&u))
}

/// A write tool's call as a proposal: the action from the arguments, read
/// by its connector's own parser; the touches left to the gate's connector
/// to derive.
pub fn proposal(tool: &WriteTool, args: &Map<String, Value>) -> Result<Value, ArgError> {
    let args = given(args);
    let fields: Vec<String> = op_schema(tool.connector, tool.op)
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut known: Vec<&str> = fields.iter().map(String::as_str).collect();
    known.extend(tool.extra.iter().map(|a| a.name));
    check_some(tool.name, tool.extra, &args, &known)?;
    let mut action = Map::new();
    action.insert("connector".into(), json!(tool.connector));
    action.insert("op".into(), json!(tool.op));
    for f in &fields {
        if let Some(v) = args.get(f) {
            action.insert(f.clone(), v.clone());
        }
    }
    if tool.name == "fs_write" {
        if args.contains_key("content") == args.contains_key("content_b64") {
            let arg = if args.contains_key("content") {
                "content_b64"
            } else {
                "content"
            };
            return Err(ArgError::new(
                arg,
                "give exactly one of `content` (text) and `content_b64`",
            ));
        }
        if let Some(text) = str_arg(&args, "content") {
            action.insert(
                "content_b64".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(text.as_bytes())),
            );
        }
    }
    let action = Value::Object(action);
    parse_action(tool.connector, "action", &action).map_err(|e| ArgError::from_connector(e, ""))?;
    let mut rollback = None;
    if tool.name == "http_request" {
        if let Some(comp) = args.get("compensation").and_then(Value::as_object) {
            let mut op = given(comp);
            op.insert("connector".into(), json!(HttpAction::CONNECTOR));
            op.insert("op".into(), json!("request"));
            let op = Value::Object(op);
            parse_action(HttpAction::CONNECTOR, "compensation", &op)
                .map_err(|e| ArgError::from_connector(e, ""))?;
            let touched = http_resource("url", str_arg(&args, "url").unwrap_or_default())?;
            http_resource(
                "compensation.url",
                op.get("url").and_then(Value::as_str).unwrap_or_default(),
            )?;
            let mut requires = Vec::new();
            if let Some(check) = args.get("check").and_then(Value::as_object) {
                let check = given(check);
                let check_url = str_arg(&check, "url").ok_or_else(|| {
                    ArgError::new("check.url", "is required: the URL the gate probes")
                })?;
                for (k, v) in &check {
                    if !["method", "url"].contains(&k.as_str()) {
                        return Err(ArgError::new(
                            format!("check.{k}"),
                            "unknown field (a check takes: url, method)",
                        ));
                    }
                    if !v.is_string() {
                        return Err(ArgError::new(
                            format!("check.{k}"),
                            format!("must be a string, not {}", type_name(v)),
                        ));
                    }
                }
                requires.push(json!({
                    "id": "compensation-check",
                    "kind": "compensation",
                    "location": http_resource("check.url", check_url)?,
                    "check": check,
                }));
            }
            rollback =
                Some(json!({"steps": [{"restores": [touched], "op": op, "requires": requires}]}));
        } else if args.contains_key("check") {
            return Err(ArgError::new(
                "check",
                "only means something with a `compensation` to check",
            ));
        }
    }
    let key = match str_arg(&args, "idempotency_key") {
        Some(k) => k.to_string(),
        None => derived_key(tool.name, &args),
    };
    let mut p = json!({
        "intent": str_arg(&args, "intent").unwrap_or_default(),
        "idempotency_key": key,
        "action": action,
    });
    if let (Some(r), Value::Object(m)) = (rollback, &mut p) {
        m.insert("rollback".into(), r);
    }
    Ok(p)
}

/// The argument a gate error's field names: `proposal.action.path` is
/// `path`, `proposal.intent` is `intent`.
pub fn arg_of_field(field: &str) -> String {
    let f = field.strip_prefix("proposal.").unwrap_or(field);
    let f = f.strip_prefix("action.").unwrap_or(f);
    match f {
        "content_b64" => "content_b64".into(),
        "rollback" => "compensation".into(),
        other if other.starts_with("rollback.") => "compensation".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn tools_follow_the_connectors() {
        let names = |c: &[&str]| -> Vec<String> {
            let c: Vec<String> = c.iter().map(|s| s.to_string()).collect();
            tools(&c).into_iter().map(|t| t.name.to_string()).collect()
        };
        assert_eq!(
            names(&["fs"]),
            [
                "fs_delete",
                "fs_write",
                "fs_move",
                "write_status",
                "explain"
            ]
        );
        assert_eq!(names(&["fs", "sql", "http"]).len(), 9);
        assert_eq!(names(&[]), ["write_status", "explain"]);
    }

    #[test]
    fn annotations_say_what_the_gate_knows() {
        let all = tools(&["fs".into(), "sql".into(), "http".into()]);
        let get = |n: &str| {
            all.iter()
                .find(|t| t.name == n)
                .unwrap()
                .annotations
                .clone()
                .unwrap()
        };
        assert_eq!(get("fs_delete").destructive_hint, Some(true));
        assert_eq!(get("fs_delete").idempotent_hint, Some(true));
        assert_eq!(get("sql_insert").destructive_hint, Some(false));
        assert_eq!(get("write_status").read_only_hint, Some(true));
        assert_eq!(get("http_request").open_world_hint, Some(true));
    }

    #[test]
    fn bad_arguments_are_named() {
        let t = write_tool("fs_delete").unwrap();
        let e = proposal(t, &obj(json!({"intent": "x"}))).unwrap_err();
        assert_eq!(e.arg, "path");
        let e = proposal(t, &obj(json!({"path": 3, "intent": "x"}))).unwrap_err();
        assert_eq!(e.arg, "path");
        assert!(e.message.contains("expected a string"), "{}", e.message);
        let e = proposal(t, &obj(json!({"path": "/a", "intent": "x", "force": true}))).unwrap_err();
        assert_eq!(e.arg, "force");
        let w = write_tool("fs_write").unwrap();
        let e = proposal(w, &obj(json!({"path": "/a", "intent": "x"}))).unwrap_err();
        assert_eq!(e.arg, "content");
    }

    #[test]
    fn a_call_becomes_a_proposal_with_a_stable_key() {
        let t = write_tool("fs_write").unwrap();
        let a = obj(json!({"path": "/r/a.txt", "content": "hi", "intent": "greet"}));
        let b = obj(json!({"intent": "greet", "content": "hi", "path": "/r/a.txt"}));
        let p = proposal(t, &a).unwrap();
        assert_eq!(
            p["action"],
            json!({"connector": "fs", "op": "write", "path": "/r/a.txt", "content_b64": "aGk="})
        );
        assert_eq!(
            p["idempotency_key"],
            proposal(t, &b).unwrap()["idempotency_key"]
        );
        let c = obj(
            json!({"path": "/r/a.txt", "content": "hi", "intent": "greet", "idempotency_key": "k1"}),
        );
        assert_eq!(proposal(t, &c).unwrap()["idempotency_key"], "k1");
    }

    #[test]
    fn http_compensation_becomes_the_rollback_step() {
        let t = write_tool("http_request").unwrap();
        let p = proposal(
            t,
            &obj(
                json!({"method": "POST", "url": "http://h:8/a/close", "intent": "close",
                        "compensation": {"method": "POST", "url": "http://h:8/a/reopen"},
                        "check": {"url": "http://h:8/a/status"}}),
            ),
        )
        .unwrap();
        let step = &p["rollback"]["steps"][0];
        assert_eq!(step["restores"], json!(["http:h:8/a/close"]));
        assert_eq!(step["op"]["url"], "http://h:8/a/reopen");
        assert_eq!(step["requires"][0]["location"], "http:h:8/a/status");
        let e = proposal(
            t,
            &obj(json!({"url": "http://h/a", "intent": "x", "check": {"url": "http://h/b"}})),
        )
        .unwrap_err();
        assert_eq!(e.arg, "check");
    }

    #[test]
    fn a_tool_schema_is_its_connectors_schema() {
        for t in WRITE_TOOLS {
            let op = connector_ops(t.connector).remove(t.op).unwrap();
            let tool = tool_schema(t);
            let props = tool["properties"].as_object().unwrap();
            let required = tool["required"].as_array().unwrap();
            let op_props = op["properties"].as_object().unwrap();
            assert!(!op_props.is_empty(), "{}", t.name);
            for (name, schema) in op_props {
                let want = if t.optional.contains(&name.as_str()) {
                    nullable(schema.clone())
                } else {
                    schema.clone()
                };
                assert_eq!(props.get(name), Some(&want), "{}.{name}", t.name);
            }
            for r in op["required"].as_array().unwrap() {
                let optional = t.optional.iter().any(|o| r == o);
                assert_eq!(required.contains(r), !optional, "{}: {r}", t.name);
            }
            // Nothing but the action's fields and the tool's own.
            for name in props.keys() {
                assert!(
                    op_props.contains_key(name) || t.extra.iter().any(|a| a.name == name),
                    "{}.{name}",
                    t.name
                );
            }
            // Every optional argument takes null.
            for (name, schema) in props {
                if !required.iter().any(|r| r == name) {
                    let s = schema.to_string();
                    assert!(s.contains("\"null\""), "{}.{name}: {s}", t.name);
                }
            }
        }
        let body = &tool_schema(write_tool("http_request").unwrap())["properties"]["body"];
        assert!(body.get("anyOf").is_some(), "the body has a type: {body}");
    }

    #[test]
    fn strict_mode_calls_give_every_field_with_null_for_unused() {
        // OpenAI's strict mode: every field present, the unused ones null.
        let w = write_tool("fs_write").unwrap();
        let strict = obj(
            json!({"path": "/r/a.txt", "content": "hi", "content_b64": null,
                                "intent": "greet", "idempotency_key": null}),
        );
        let plain = obj(json!({"path": "/r/a.txt", "content": "hi", "intent": "greet"}));
        let p = proposal(w, &strict).unwrap();
        assert_eq!(
            p["action"],
            json!({"connector": "fs", "op": "write", "path": "/r/a.txt", "content_b64": "aGk="})
        );
        // The same write as the call that left them out.
        assert_eq!(p, proposal(w, &plain).unwrap());
        let h = write_tool("http_request").unwrap();
        let p = proposal(
            h,
            &obj(
                json!({"method": null, "url": "http://h/a", "headers": null, "body": null,
                        "compensation": null, "check": null, "intent": "ping",
                        "idempotency_key": null}),
            ),
        )
        .unwrap();
        assert_eq!(
            p["action"],
            json!({"connector": "http", "op": "request", "url": "http://h/a"})
        );
        assert!(p.get("rollback").is_none());
        let p = proposal(
            h,
            &obj(json!({"method": "POST", "url": "http://h/a", "headers": null, "body": {"a": 1},
                        "compensation": {"method": "DELETE", "url": "http://h/a/1", "headers": null, "body": null},
                        "check": {"url": "http://h/a/1", "method": null}, "intent": "create",
                        "idempotency_key": null})),
        )
        .unwrap();
        let step = &p["rollback"]["steps"][0];
        assert_eq!(
            step["op"],
            json!({"connector": "http", "op": "request", "method": "DELETE", "url": "http://h/a/1"})
        );
        assert_eq!(step["requires"][0]["check"], json!({"url": "http://h/a/1"}));
        // A required argument given as null is missing.
        let e = proposal(
            w,
            &obj(json!({"path": null, "content": "x", "intent": "x"})),
        )
        .unwrap_err();
        assert_eq!(
            (e.arg.as_str(), e.message.as_str()),
            ("path", "is required")
        );
        let status = obj(json!({"id": "w1", "wait_s": null}));
        assert!(check_args("write_status", WRITE_STATUS_ARGS, &status).is_ok());
    }

    #[test]
    fn the_connectors_parser_names_the_argument() {
        let u = write_tool("sql_update").unwrap();
        let e = proposal(
            u,
            &obj(json!({"database": "d", "table": "t", "where": [1], "set": {"a": 1}, "intent": "x"})),
        )
        .unwrap_err();
        assert_eq!(e.arg, "where");
        let i = write_tool("sql_insert").unwrap();
        let e = proposal(
            i,
            &obj(json!({"database": "d", "table": "t", "values": "x", "intent": "x"})),
        )
        .unwrap_err();
        assert_eq!(e.arg, "values");
        let h = write_tool("http_request").unwrap();
        let e = proposal(
            h,
            &obj(json!({"url": "http://h/a", "intent": "x", "compensation": {"url": 1}})),
        )
        .unwrap_err();
        assert_eq!(e.arg, "compensation.url");
        let e = proposal(
            h,
            &obj(json!({"url": "http://h/a", "intent": "x", "compensation": {"method": "POST"}})),
        )
        .unwrap_err();
        assert_eq!(e.arg, "compensation.url");
        let e = proposal(
            h,
            &obj(json!({"url": "http://h/a", "intent": "x", "body": 3})),
        )
        .unwrap_err();
        assert_eq!(e.arg, "body");
    }

    #[test]
    fn gate_fields_map_to_arguments() {
        assert_eq!(arg_of_field("proposal.action.path"), "path");
        assert_eq!(arg_of_field("proposal.intent"), "intent");
        assert_eq!(arg_of_field("action.where.id"), "where.id");
    }
}
