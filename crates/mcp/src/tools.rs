//! The tools: one per connector operation the gate has, plus `write_status`
//! and `explain`. Each has a JSON schema of its arguments, generated from
//! one table that the argument check reads too, so the schema an agent sees
//! and the check its call meets cannot drift apart.

use std::sync::Arc;

use base64::Engine;
use rmcp::model::{Tool, ToolAnnotations};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The JSON type an argument must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    String,
    Object,
    /// One object or a non-empty array of objects (`sql_insert` values).
    Rows,
    Number,
    /// Any JSON value (an HTTP body).
    Any,
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
    pub args: &'static [Arg],
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
        args: &[req("path", ArgType::String, "Absolute path of the file or folder to delete."), INTENT, KEY],
    },
    WriteTool {
        name: "fs_write",
        connector: "fs",
        op: "write",
        title: "Write a file",
        description: "Create or overwrite a file under one of the gate's roots. The gate keeps the old file first.",
        destructive: true,
        open_world: false,
        args: &[
            req("path", ArgType::String, "Absolute path of the file to write."),
            opt("content", ArgType::String, "The new content as UTF-8 text (give this or `content_b64`)."),
            opt("content_b64", ArgType::String, "The new content, base64 (give this or `content`)."),
            INTENT,
            KEY,
        ],
    },
    WriteTool {
        name: "fs_move",
        connector: "fs",
        op: "move",
        title: "Move a file or folder",
        description: "Move or rename a file or folder within the gate's roots. The gate keeps whatever `to` held first.",
        destructive: true,
        open_world: false,
        args: &[
            req("path", ArgType::String, "Absolute path to move."),
            req("to", ArgType::String, "Absolute destination path."),
            INTENT,
            KEY,
        ],
    },
    WriteTool {
        name: "sql_update",
        connector: "sql",
        op: "update",
        title: "Update rows",
        description: "Update the rows of a table that match `where` (equality on columns). The gate keeps before-images of every row it changes, cascades included.",
        destructive: true,
        open_world: false,
        args: &[
            req("database", ArgType::String, "The database's name in the gate's configuration."),
            req("table", ArgType::String, "The table."),
            req("where", ArgType::Object, "Column: value pairs the rows must equal (at least one)."),
            req("set", ArgType::Object, "Column: new value pairs."),
            INTENT,
            KEY,
        ],
    },
    WriteTool {
        name: "sql_delete",
        connector: "sql",
        op: "delete",
        title: "Delete rows",
        description: "Delete the rows of a table that match `where` (equality on columns). The gate keeps before-images of every row it removes, cascades included.",
        destructive: true,
        open_world: false,
        args: &[
            req("database", ArgType::String, "The database's name in the gate's configuration."),
            req("table", ArgType::String, "The table."),
            req("where", ArgType::Object, "Column: value pairs the rows must equal (at least one)."),
            INTENT,
            KEY,
        ],
    },
    WriteTool {
        name: "sql_insert",
        connector: "sql",
        op: "insert",
        title: "Insert rows",
        description: "Insert one row or several into a table.",
        destructive: false,
        open_world: false,
        args: &[
            req("database", ArgType::String, "The database's name in the gate's configuration."),
            req("table", ArgType::String, "The table."),
            req("values", ArgType::Rows, "One row (column: value) or a non-empty array of rows."),
            INTENT,
            KEY,
        ],
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
        args: &[
            opt("method", ArgType::String, "GET, POST, PUT, PATCH, DELETE, … (default GET)."),
            req("url", ArgType::String, "The URL, on a host the gate allows."),
            opt("headers", ArgType::Object, "Header: value pairs (never credentials: the gate adds those)."),
            opt("body", ArgType::Any, "A string, or JSON sent as application/json."),
            opt(
                "compensation",
                ArgType::Object,
                "The request that undoes this one: {\"method\", \"url\", \"headers\"?, \"body\"?}.",
            ),
            opt(
                "check",
                ArgType::Object,
                "How the gate verifies the compensation can work and did: {\"url\", \"method\"?}.",
            ),
            INTENT,
            KEY,
        ],
    },
];

pub const WRITE_STATUS_ARGS: &[Arg] = &[
    req("id", ArgType::String, "The write's id, as a tool call returned it."),
    opt(
        "wait_s",
        ArgType::Number,
        "Wait up to this many seconds (at most 600) while the write is held, approved or executing; \
         progress notifications report the wait.",
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

fn arg_schema(arg: &Arg) -> Value {
    let mut s = match arg.ty {
        ArgType::String => json!({"type": "string"}),
        ArgType::Object => json!({"type": "object"}),
        ArgType::Rows => json!({"anyOf": [
            {"type": "object"},
            {"type": "array", "items": {"type": "object"}, "minItems": 1}
        ]}),
        ArgType::Number => json!({"type": "number", "minimum": 0, "maximum": MAX_WAIT_S}),
        ArgType::Any => json!({}),
    };
    if let Value::Object(m) = &mut s {
        m.insert("description".into(), Value::String(arg.doc.into()));
        if arg.ty == ArgType::String && arg.required {
            m.insert("minLength".into(), json!(1));
        }
    }
    s
}

/// The JSON schema of a tool's arguments.
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
                Arc::new(schema(t.args)),
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

/// Checks `given` against `args`: unknown, missing and mistyped arguments
/// are named.
pub fn check_args(tool: &str, args: &[Arg], given: &Map<String, Value>) -> Result<(), ArgError> {
    for key in given.keys() {
        if !args.iter().any(|a| a.name == key) {
            let known: Vec<&str> = args.iter().map(|a| a.name).collect();
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
        let ok = match a.ty {
            ArgType::String => v.is_string(),
            ArgType::Object => v.is_object(),
            ArgType::Rows => {
                v.is_object()
                    || v.as_array().is_some_and(|items| {
                        !items.is_empty() && items.iter().all(Value::is_object)
                    })
            }
            ArgType::Number => v.is_number(),
            ArgType::Any => true,
        };
        if !ok {
            let want = match a.ty {
                ArgType::String => "a string",
                ArgType::Object => "an object",
                ArgType::Rows => "an object or a non-empty array of objects",
                ArgType::Number => "a number",
                ArgType::Any => "any value",
            };
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

/// `http:HOST[:PORT]/PATH`, as the http connector names what a URL reaches.
fn http_resource(arg: &str, url: &str) -> Result<String, ArgError> {
    let u = reqwest::Url::parse(url)
        .map_err(|e| ArgError::new(arg, format!("`{url}` is not a URL: {e}")))?;
    let host = u.host_str().unwrap_or_default();
    Ok(match u.port() {
        Some(p) => format!("http:{host}:{p}{}", u.path()),
        None => format!("http:{host}{}", u.path()),
    })
}

/// A write tool's call as a proposal: the action from the arguments, the
/// touches left to the gate's connector to derive. Checks the arguments
/// first.
pub fn proposal(tool: &WriteTool, args: &Map<String, Value>) -> Result<Value, ArgError> {
    check_args(tool.name, tool.args, args)?;
    let mut action = Map::new();
    action.insert("connector".into(), json!(tool.connector));
    action.insert("op".into(), json!(tool.op));
    let mut rollback = None;
    for (k, v) in args {
        match k.as_str() {
            "intent" | "idempotency_key" | "compensation" | "check" => {}
            "content" => {
                let text = v.as_str().unwrap_or_default();
                action.insert(
                    "content_b64".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(text.as_bytes())),
                );
            }
            _ => {
                action.insert(k.clone(), v.clone());
            }
        }
    }
    if tool.name == "fs_write" && args.contains_key("content") == args.contains_key("content_b64") {
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
    if tool.name == "http_request" {
        if let Some(comp) = args.get("compensation").and_then(Value::as_object) {
            let url = str_arg(comp, "url").ok_or_else(|| {
                ArgError::new(
                    "compensation.url",
                    "is required: the URL of the undoing request",
                )
            })?;
            let touched = http_resource("url", str_arg(args, "url").unwrap_or_default())?;
            http_resource("compensation.url", url)?;
            let mut op = Map::new();
            op.insert("connector".into(), json!("http"));
            op.insert("op".into(), json!("request"));
            for (k, v) in comp {
                if !["method", "url", "headers", "body"].contains(&k.as_str()) {
                    return Err(ArgError::new(
                        format!("compensation.{k}"),
                        "unknown field (a compensation takes: method, url, headers, body)",
                    ));
                }
                op.insert(k.clone(), v.clone());
            }
            let mut requires = Vec::new();
            if let Some(check) = args.get("check").and_then(Value::as_object) {
                let check_url = str_arg(check, "url").ok_or_else(|| {
                    ArgError::new("check.url", "is required: the URL the gate probes")
                })?;
                for k in check.keys() {
                    if !["method", "url"].contains(&k.as_str()) {
                        return Err(ArgError::new(
                            format!("check.{k}"),
                            "unknown field (a check takes: url, method)",
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
    let key = match str_arg(args, "idempotency_key") {
        Some(k) => k.to_string(),
        None => derived_key(tool.name, args),
    };
    let mut p = json!({
        "intent": str_arg(args, "intent").unwrap_or_default(),
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
        assert_eq!(
            (e.arg.as_str(), e.message.as_str()),
            ("path", "must be a string, not a number")
        );
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
    fn gate_fields_map_to_arguments() {
        assert_eq!(arg_of_field("proposal.action.path"), "path");
        assert_eq!(arg_of_field("proposal.intent"), "intent");
        assert_eq!(arg_of_field("action.where.id"), "where.id");
    }
}
