//! Token scopes: what one token's writes may reach. A token without a
//! scope reaches everything the gate serves; a scoped one only the `fs`
//! roots, `sql` databases and `http` hosts it lists.
//!
//! The check runs on the proposal as its connector planned it, never on
//! the agent's words alone: the `fs` paths are the touches the connector
//! resolved (after its own refusal of `..`, links and paths outside the
//! gate's roots), the `sql` database is the one the connector found
//! configured, the `http` host is the parsed URL's, matched by the same
//! rule as the connector's `--http-allow` ([`recourse_connector::host`]).
//! Every rollback step the proposal declares is checked too: a step is a
//! write the gate may run later on the token's behalf.

use std::path::{Component, Path};

use recourse_client::{Permission, Role, TokenScope};
use recourse_connector::host::{self, HostRule};
use recourse_core::Proposal;
use serde_json::Value;

use crate::error::GateError;

/// The one thing of a write that lies outside its token's scope, as a
/// phrase ("the fs path `/srv/b/x`").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside(pub String);

/// A scope as given (CLI flags or `POST /v1/tokens`), checked and put in
/// the one form the check compares: `fs` roots absolute and lexically
/// clean (and canonical where they exist, as the gate's own roots are),
/// hosts lowercase as `--http-allow` parses them. 400 naming the field for
/// anything else.
pub fn normalize(role: Role, scope: TokenScope) -> Result<TokenScope, GateError> {
    if !role.may(Permission::SubmitWrites) {
        return Err(GateError::invalid(
            "scope",
            format!(
                "a {} token submits no writes: a scope would limit nothing",
                role.as_str()
            ),
        ));
    }
    if scope.fs_roots.is_empty() && scope.sql.is_empty() && scope.http_allow.is_empty() {
        return Err(GateError::invalid(
            "scope",
            "an empty scope reaches nothing: list what the token may reach, or give no scope",
        ));
    }
    let mut out = TokenScope::default();
    for raw in &scope.fs_roots {
        let root = fs_root(raw)?;
        if !out.fs_roots.contains(&root) {
            out.fs_roots.push(root);
        }
    }
    for name in &scope.sql {
        let ok = !name.is_empty()
            && name.len() <= 100
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(GateError::invalid(
                "scope.sql",
                format!("`{name}`: a database name is letters, digits, `-`, `_` or `.`"),
            ));
        }
        if !out.sql.contains(name) {
            out.sql.push(name.clone());
        }
    }
    for entry in &scope.http_allow {
        let rule = HostRule::parse(entry).ok_or_else(|| {
            GateError::invalid(
                "scope.http_allow",
                format!("`{entry}`: expected `host` or `host:port`, as --http-allow"),
            )
        })?;
        let rule = rule.to_string();
        if !out.http_allow.contains(&rule) {
            out.http_allow.push(rule);
        }
    }
    Ok(out)
}

/// An `fs` root of a scope: absolute, no `.`, `..` or empty segment, and
/// canonical when it exists (so `/tmp/x` on a system where `/tmp` is a
/// link compares with the paths the connector resolves under its own,
/// canonical roots).
fn fs_root(raw: &str) -> Result<String, GateError> {
    let bad = |m: &str| GateError::invalid("scope.fs_roots", format!("`{raw}` {m}"));
    if !raw.starts_with('/') {
        return Err(bad("is not an absolute path"));
    }
    if !lexically_clean(raw) {
        return Err(bad("has a `.`, `..` or empty segment"));
    }
    let trimmed = if raw.len() > 1 {
        raw.trim_end_matches('/')
    } else {
        raw
    };
    match Path::new(trimmed).canonicalize() {
        Ok(c) => c
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| bad("is not UTF-8 once resolved")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(trimmed.to_string()),
        Err(e) => Err(bad(&format!("cannot be resolved: {e}"))),
    }
}

/// No `.`, `..` or empty segment (a trailing `/` aside).
fn lexically_clean(path: &str) -> bool {
    let body = path.strip_suffix('/').unwrap_or(path);
    body.is_empty()
        || body
            .split('/')
            .skip(1)
            .all(|s| !matches!(s, "" | "." | ".."))
}

/// Whether `path` lies under one of `roots`, by whole components: `/a/bc`
/// is not under `/a/b`, and a path with `..` is under nothing.
fn under_roots(path: &str, roots: &[String]) -> bool {
    let p = Path::new(path);
    if !lexically_clean(path)
        || p.components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return false;
    }
    roots.iter().any(|r| p.starts_with(r))
}

/// The database a `sql:` resource id names (`sql:crm/customers/7` ->
/// `crm`), as the sql connector builds them.
fn sql_database(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("sql:")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

fn check_resource(scope: &TokenScope, id: &str) -> Result<(), Outside> {
    if let Some(path) = id.strip_prefix("fs:") {
        if !under_roots(path, &scope.fs_roots) {
            return Err(Outside(format!("the fs path `{path}`")));
        }
    } else if let Some(db) = sql_database(id) {
        if !scope.sql.iter().any(|s| s == db) {
            return Err(Outside(format!("the sql database `{db}`")));
        }
    }
    Ok(())
}

fn check_url(scope: &TokenScope, url: Option<&Value>) -> Result<(), Outside> {
    let raw = url.and_then(Value::as_str).unwrap_or_default();
    let rules: Vec<HostRule> = scope
        .http_allow
        .iter()
        .filter_map(|e| HostRule::parse(e))
        .collect();
    // The parser the http connector uses; a URL it would not parse reaches
    // nothing it could name, and is outside.
    let parsed = reqwest::Url::parse(raw).ok();
    let reached = parsed.as_ref().and_then(|u| {
        let h = u.host_str()?;
        let port = u.port_or_known_default()?;
        host::admitted(&rules, h, port).then_some(())
    });
    match reached {
        Some(()) => Ok(()),
        None => {
            let shown = parsed
                .as_ref()
                .and_then(|u| {
                    let h = u.host_str()?;
                    Some(match u.port() {
                        Some(p) => format!("{h}:{p}"),
                        None => h.to_string(),
                    })
                })
                .unwrap_or_else(|| raw.chars().take(200).collect());
            Err(Outside(format!("the http host `{shown}`")))
        }
    }
}

/// One connector's op (the action, or a rollback step's op) against the
/// scope: whether the token may use that connector at all, and for `sql`
/// and `http` the database or host it names.
fn check_op(scope: &TokenScope, connector: &str, op: &Value) -> Result<(), Outside> {
    match connector {
        "fs" if scope.fs_roots.is_empty() => Err(Outside("fs writes".into())),
        "fs" => Ok(()), // the paths are its touches and restores
        "sql" if scope.sql.is_empty() => Err(Outside("sql writes".into())),
        "sql" => match op.get("database").and_then(Value::as_str) {
            Some(db) if !scope.sql.iter().any(|s| s == db) => {
                Err(Outside(format!("the sql database `{db}`")))
            }
            _ => Ok(()),
        },
        "http" if scope.http_allow.is_empty() => Err(Outside("http requests".into())),
        "http" => check_url(scope, op.get("url")),
        other => Err(Outside(format!("the `{other}` connector"))),
    }
}

/// Whether a planned proposal stays within `scope`: its action, every
/// `fs:` and `sql:` resource it touches, and every rollback step's op and
/// the resources the step restores. The first thing outside, if any.
pub fn check(scope: &TokenScope, connector: &str, proposal: &Proposal) -> Result<(), Outside> {
    check_op(scope, connector, &proposal.action)?;
    for t in &proposal.touches {
        check_resource(scope, t)?;
    }
    for step in &proposal.rollback.steps {
        if let Some(c) = step.op.get("connector").and_then(Value::as_str) {
            check_op(scope, c, &step.op)?;
        }
        for r in &step.restores {
            check_resource(scope, r)?;
        }
    }
    Ok(())
}

/// What a scope reaches, in words, for a refusal.
pub fn describe(scope: &TokenScope) -> String {
    let mut parts = Vec::new();
    if !scope.fs_roots.is_empty() {
        parts.push(format!("fs under {}", scope.fs_roots.join(", ")));
    }
    if !scope.sql.is_empty() {
        parts.push(format!("sql database {}", scope.sql.join(", ")));
    }
    if !scope.http_allow.is_empty() {
        parts.push(format!("http host {}", scope.http_allow.join(", ")));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn scope(fs: &[&str], sql: &[&str], http: &[&str]) -> TokenScope {
        TokenScope {
            fs_roots: fs.iter().map(|s| s.to_string()).collect(),
            sql: sql.iter().map(|s| s.to_string()).collect(),
            http_allow: http.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn proposal(action: Value, touches: &[&str], steps: Value) -> Proposal {
        serde_json::from_value(json!({
            "intent": "t", "action": action, "touches": touches,
            "rollback": {"steps": steps}
        }))
        .unwrap()
    }

    #[test]
    fn fs_paths_must_lie_under_a_scoped_root_by_whole_components() {
        let s = scope(&["/srv/a"], &[], &[]);
        let w = |p: &str| {
            proposal(
                json!({"connector": "fs", "op": "write", "path": p}),
                &[&format!("fs:{p}")],
                json!([]),
            )
        };
        assert_eq!(check(&s, "fs", &w("/srv/a/x")), Ok(()));
        assert_eq!(check(&s, "fs", &w("/srv/a/deep/y")), Ok(()));
        for out in [
            "/srv/b/x",
            "/srv/ab/x",
            "/srv/a/../b/x",
            "/srv/a/./x",
            "/srv",
        ] {
            let e = check(&s, "fs", &w(out)).unwrap_err();
            assert!(e.0.contains("fs path"), "{out}: {e:?}");
        }
        // No fs root at all: no fs write, whatever the path.
        let sql_only = scope(&[], &["crm"], &[]);
        assert_eq!(
            check(&sql_only, "fs", &w("/srv/a/x")),
            Err(Outside("fs writes".into()))
        );
    }

    #[test]
    fn sql_databases_and_http_hosts_match_exactly() {
        let s = scope(&[], &["crm"], &["api.test", "pay.test:8443"]);
        let sql = |db: &str| {
            proposal(
                json!({"connector": "sql", "op": "delete", "database": db}),
                &[&format!("sql:{db}/t/1")],
                json!([]),
            )
        };
        assert_eq!(check(&s, "sql", &sql("crm")), Ok(()));
        assert!(check(&s, "sql", &sql("billing")).is_err());
        assert!(check(&s, "sql", &sql("CRM")).is_err());
        let http = |url: &str| {
            proposal(
                json!({"connector": "http", "op": "request", "method": "POST", "url": url}),
                &[],
                json!([]),
            )
        };
        assert_eq!(check(&s, "http", &http("https://api.test/x")), Ok(()));
        // The same host, differently cased: the URL parser lowercases it.
        assert_eq!(check(&s, "http", &http("https://API.Test/x")), Ok(()));
        assert_eq!(check(&s, "http", &http("https://pay.test:8443/x")), Ok(()));
        for out in [
            "https://pay.test/x",
            "https://evil.api.test/x",
            "https://api.test.evil/x",
            "https://OTHER.test/x",
            "not a url",
        ] {
            assert!(check(&s, "http", &http(out)).is_err(), "{out}");
        }
        // The fs connector is not in this scope.
        assert!(check(
            &s,
            "fs",
            &proposal(json!({"connector": "fs"}), &["fs:/x"], json!([]))
        )
        .is_err());
    }

    #[test]
    fn declared_rollback_steps_must_stay_within_the_scope() {
        let s = scope(&[], &["crm"], &["api.test"]);
        let action = json!({"connector": "sql", "op": "delete", "database": "crm"});
        let step = |op: Value, restores: &[&str]| {
            proposal(
                action.clone(),
                &["sql:crm/t/1"],
                json!([{"restores": restores, "op": op, "requires": []}]),
            )
        };
        let ok = step(
            json!({"connector": "http", "op": "request", "method": "POST", "url": "https://api.test/undo"}),
            &["sql:crm/t/1"],
        );
        assert_eq!(check(&s, "sql", &ok), Ok(()));
        let other_host = step(
            json!({"connector": "http", "op": "request", "method": "POST", "url": "https://evil.test/undo"}),
            &[],
        );
        assert_eq!(
            check(&s, "sql", &other_host),
            Err(Outside("the http host `evil.test`".into()))
        );
        let other_db = step(
            json!({"connector": "sql", "op": "restore"}),
            &["sql:billing/t/1"],
        );
        assert_eq!(
            check(&s, "sql", &other_db),
            Err(Outside("the sql database `billing`".into()))
        );
        let fs_step = step(json!({"connector": "fs", "op": "restore"}), &[]);
        assert!(check(&s, "sql", &fs_step).is_err());
        let unknown = step(json!({"connector": "shell", "op": "run"}), &[]);
        assert!(check(&s, "sql", &unknown).is_err());
    }

    #[test]
    fn normalize_cleans_and_refuses_what_would_mislead() {
        let n = normalize(
            Role::Agent,
            scope(
                &["/nonexistent-root-x/"],
                &["crm", "crm"],
                &["API.Test:443"],
            ),
        )
        .unwrap();
        assert_eq!(n.fs_roots, vec!["/nonexistent-root-x".to_string()]);
        assert_eq!(n.sql, vec!["crm".to_string()]);
        assert_eq!(n.http_allow, vec!["api.test:443".to_string()]);
        let dir = tempfile::tempdir().unwrap();
        let canon = dir.path().canonicalize().unwrap();
        let n = normalize(
            Role::Agent,
            scope(&[dir.path().to_str().unwrap()], &[], &[]),
        )
        .unwrap();
        assert_eq!(n.fs_roots, vec![canon.to_str().unwrap().to_string()]);

        let field = |r: Result<TokenScope, GateError>| match r {
            Err(GateError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(normalize(Role::Agent, scope(&["rel"], &[], &[]))),
            "scope.fs_roots"
        );
        assert_eq!(
            field(normalize(Role::Agent, scope(&["/a/../b"], &[], &[]))),
            "scope.fs_roots"
        );
        assert_eq!(
            field(normalize(Role::Agent, scope(&[], &["a b"], &[]))),
            "scope.sql"
        );
        assert_eq!(
            field(normalize(Role::Agent, scope(&[], &[], &["a/b"]))),
            "scope.http_allow"
        );
        assert_eq!(field(normalize(Role::Agent, scope(&[], &[], &[]))), "scope");
        assert_eq!(
            field(normalize(Role::Reviewer, scope(&[], &["crm"], &[]))),
            "scope"
        );
    }
}
