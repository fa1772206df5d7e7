//! The MCP server: lists the tools of the gate's connectors and turns each
//! call into a proposal, an explanation or a status, answered in plain
//! sentences (with the same facts as structured content).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::SecondsFormat;
use recourse_client::{Explained, WriteRecord, WriteStatus};
use recourse_core::{Decision, Reason, Verdict};
use recourse_gate::auth::Caller;
use recourse_gate::Gate;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Map, Value};

use crate::backend::{Backend, BackendError, GateBackend};
use crate::tools::{self, ArgError, MAX_WAIT_S};

/// How often a waiting `write_status` asks the gate again.
const POLL: Duration = Duration::from_millis(200);
/// How often it tells the client it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
enum Source {
    /// One agent over a fixed backend (stdio: the token given at start).
    Fixed {
        backend: Arc<dyn Backend>,
        connectors: Vec<String>,
    },
    /// Inside the gate: each request carries the caller its bearer token
    /// named (put there by the endpoint's authentication layer).
    Gate(Arc<Gate>),
}

/// One MCP session.
#[derive(Clone)]
pub struct McpServer {
    source: Source,
    /// The agent an HTTP session belongs to: the first caller that used it.
    /// Another token cannot take the session over.
    owner: Arc<OnceLock<String>>,
}

impl McpServer {
    /// A server acting through `backend`; asks it once which connectors the
    /// gate has.
    pub async fn over(backend: Arc<dyn Backend>) -> Result<Self, BackendError> {
        let connectors = backend.connectors().await?;
        Ok(Self {
            source: Source::Fixed {
                backend,
                connectors,
            },
            owner: Arc::new(OnceLock::new()),
        })
    }

    /// A server inside the gate; requests must carry a [`Caller`] in their
    /// HTTP extensions.
    pub fn in_gate(gate: Arc<Gate>) -> Self {
        Self {
            source: Source::Gate(gate),
            owner: Arc::new(OnceLock::new()),
        }
    }

    fn connectors(&self) -> Vec<String> {
        match &self.source {
            Source::Fixed { connectors, .. } => connectors.clone(),
            Source::Gate(gate) => gate
                .connector_names()
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }

    fn backend(&self, ctx: &RequestContext<RoleServer>) -> Result<Arc<dyn Backend>, McpError> {
        match &self.source {
            Source::Fixed { backend, .. } => Ok(backend.clone()),
            Source::Gate(gate) => {
                let caller = ctx
                    .extensions
                    .get::<axum::http::request::Parts>()
                    .and_then(|p| p.extensions.get::<Caller>())
                    .cloned()
                    .ok_or_else(|| {
                        McpError::invalid_request(
                            "no caller: send `Authorization: Bearer TOKEN`",
                            None,
                        )
                    })?;
                let owner = self.owner.get_or_init(|| caller.name.clone());
                if *owner != caller.name {
                    return Err(McpError::invalid_request(
                        format!("this MCP session belongs to `{owner}`, not `{}`: start a session of your own", caller.name),
                        None,
                    ));
                }
                Ok(Arc::new(GateBackend::new(gate.clone(), caller)))
            }
        }
    }

    async fn call(
        &self,
        name: &str,
        args: Map<String, Value>,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let connectors = self.connectors();
        let backend = self.backend(ctx)?;
        Ok(match name {
            "write_status" => write_status(backend.as_ref(), &args, ctx).await,
            "explain" => explain(backend.as_ref(), &connectors, &args).await,
            _ => match tools::write_tool(name)
                .filter(|t| connectors.iter().any(|c| c == t.connector))
            {
                Some(tool) => match tools::proposal(tool, &args) {
                    Ok(proposal) => match backend.submit(proposal).await {
                        Ok(rec) => render_write(&rec, None),
                        Err(e) => gate_error(&e, ""),
                    },
                    Err(e) => arg_error(&e),
                },
                None => {
                    let names: Vec<String> = tools::tools(&connectors)
                        .into_iter()
                        .map(|t| t.name.to_string())
                        .collect();
                    return Err(McpError::invalid_params(
                        format!(
                            "unknown tool `{name}` (this gate has: {})",
                            names.join(", ")
                        ),
                        None,
                    ));
                }
            },
        })
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("recourse", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Every write goes through the Recourse gate. It executes a write only when its rollback path \
                 is verified (capturing first), holds the rest for a person, and refuses what must never run. \
                 A held write has not run: wait for it with `write_status` (`wait_s`), or move on. Use `explain` \
                 to see the decision before you act.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::tools(
            &self.connectors(),
        )))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::tools(&self.connectors())
            .into_iter()
            .find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        self.call(&request.name, args, &context)
            .await
            .map(CallToolResponse::from)
    }
}

fn result(text: String, structured: Value, is_error: bool) -> CallToolResult {
    let mut r = if is_error {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    };
    r.structured_content = Some(structured);
    r
}

fn arg_error(e: &ArgError) -> CallToolResult {
    let text = format!(
        "Bad argument `{}`: {}. Nothing was sent to the gate.",
        e.arg, e.message
    );
    result(
        text,
        json!({"outcome": "bad_arguments", "argument": e.arg, "message": e.message}),
        true,
    )
}

/// An error the gate answered with; `prefix` names where the arguments sit
/// (`arguments.` for `explain`).
fn gate_error(e: &BackendError, prefix: &str) -> CallToolResult {
    if e.code == "invalid" {
        if let Some(field) = &e.field {
            let arg = format!("{prefix}{}", tools::arg_of_field(field));
            let text = format!(
                "Bad argument `{arg}`: {}. The gate changed nothing.",
                e.message
            );
            return result(
                text,
                json!({"outcome": "bad_arguments", "argument": arg, "field": field, "message": e.message}),
                true,
            );
        }
    }
    let text = match e.code.as_str() {
        "unreachable" => format!(
            "The gate could not be reached, so nothing was done: {}",
            e.message
        ),
        "forbidden" => format!("The gate refused the call: {}", e.message),
        "not_found" => format!("Not found: {}", e.message),
        _ => format!("The gate answered `{}`: {}", e.code, e.message),
    };
    result(
        text,
        json!({"outcome": "error", "code": e.code, "message": e.message, "field": e.field}),
        true,
    )
}

fn code_str(r: &Reason<'_>) -> String {
    serde_json::to_value(r.code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A reason's detail as a sentence: capitalised (unless it starts with a
/// field name such as `action.path:`) and ending in a full stop.
fn sentence(s: &str) -> String {
    let s = s.trim();
    let first_word = s.split_whitespace().next().unwrap_or_default();
    let mut out = if first_word.contains(['.', ':', '`']) {
        s.to_string()
    } else {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

fn reasons_json(d: &Decision<'_>) -> Value {
    d.reasons
        .iter()
        .map(|r| json!({"code": code_str(r), "subject": r.subject(), "sentence": sentence(&r.detail)}))
        .collect()
}

fn reasons_text(d: &Decision<'_>) -> String {
    d.reasons
        .iter()
        .map(|r| format!("\n- {}", sentence(&r.detail)))
        .collect()
}

fn bearers(d: &Decision<'_>) -> Vec<String> {
    d.bearers
        .iter()
        .filter_map(|b| {
            serde_json::to_value(b)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
        })
        .collect()
}

fn last_note(rec: &WriteRecord) -> Option<(String, Option<String>)> {
    rec.history
        .last()
        .map(|t| (t.actor.clone(), t.note.clone()))
}

/// Approvals that still count: for the current proposal and decision.
fn approvals_given(rec: &WriteRecord) -> usize {
    let mut by: Vec<&str> = rec
        .approvals
        .iter()
        .filter(|a| a.proposal_hash == rec.proposal_hash && a.decision_hash == rec.decision_hash)
        .map(|a| a.by.as_str())
        .collect();
    by.sort_unstable();
    by.dedup();
    by.len()
}

/// What happened to a write, in plain words: the first line says it.
pub fn render_write(rec: &WriteRecord, waited: Option<f64>) -> CallToolResult {
    let id = &rec.id;
    let status = rec.status.as_str();
    let reasons = reasons_text(&rec.decision);
    let given = approvals_given(rec);
    let needed = rec.required_approvals;
    let bearers = bearers(&rec.decision);
    let note = last_note(rec);
    let mut is_error = false;
    let mut text = match rec.status {
        WriteStatus::Executed => format!(
            "Executed: write `{id}` ran. The gate captured what it needs to undo it before it ran; \
             the rollback handle is `{id}` (an incident lead rolls it back)."
        ),
        WriteStatus::Held => {
            let bearer_line = if bearers.is_empty() {
                String::new()
            } else {
                format!(
                    " If its rollback failed, the cost would fall on: {}.",
                    bearers.join(", ")
                )
            };
            let expires = rec
                .expires_at
                .map(|t| {
                    format!(
                        " Without a decision it expires at {}.",
                        t.to_rfc3339_opts(SecondsFormat::Secs, true)
                    )
                })
                .unwrap_or_default();
            format!(
                "Held for review: write `{id}` did not run.\nWhy:{reasons}\n\
                 It needs {needed} approval{s} from reviewers ({given} given so far; its agent cannot approve it).{bearer_line}{expires}\n\
                 To wait for the decision, call `write_status` with {{\"id\": \"{id}\", \"wait_s\": {wait}}} \
                 (and again while it is still held).",
                 wait = tools::SUGGESTED_WAIT_S,
                s = if needed == 1 { "" } else { "s" }
            )
        }
        WriteStatus::Approved | WriteStatus::Executing => {
            let waiting = rec
                .waiting
                .as_deref()
                .map(|w| format!(" It is waiting: {w}."))
                .unwrap_or_default();
            format!("{}: write `{id}` was approved and is about to run or running; it has not finished yet.{waiting}", cap(status))
        }
        WriteStatus::Refused => {
            is_error = true;
            format!("Refused: write `{id}` will never run.\nWhy:{reasons}")
        }
        WriteStatus::Rejected => {
            is_error = true;
            let (by, why) = note.clone().unwrap_or_default();
            format!(
                "Rejected by `{by}`: write `{id}` did not run and will not. Their reason: {}",
                why.unwrap_or_default()
            )
        }
        WriteStatus::Expired => {
            is_error = true;
            format!("Expired: no one decided on write `{id}` before its hold ran out; nothing ran.")
        }
        WriteStatus::Failed => {
            is_error = true;
            let why = note
                .clone()
                .and_then(|n| n.1)
                .unwrap_or_else(|| "no detail".into());
            format!("Failed: write `{id}` did not run ({why}). Nothing changed.")
        }
        WriteStatus::OutcomeUnknown => {
            is_error = true;
            let why = note
                .clone()
                .and_then(|n| n.1)
                .unwrap_or_else(|| "no detail".into());
            format!(
                "Outcome unknown: whether write `{id}` took effect cannot be told ({why}). \
                 An incident lead checks the target and settles it; do not submit it again."
            )
        }
        WriteStatus::RollbackFailed => {
            is_error = true;
            format!("Rollback did not verify: write `{id}` ran, and undoing it did not check out against its capture. An incident lead looks and rolls back again.")
        }
        WriteStatus::RollingBack => {
            format!("Rolling back: write `{id}` ran and is being undone now.")
        }
        WriteStatus::RolledBack => {
            format!("Rolled back: write `{id}` ran and was undone, verified against its capture.")
        }
    };
    if let Some(w) = waited {
        if matches!(
            rec.status,
            WriteStatus::Held | WriteStatus::Approved | WriteStatus::Executing
        ) {
            text = format!("Still {status} after waiting {w:.0} s. {text}");
        }
    }
    let mut s = json!({
        "outcome": status,
        "id": id,
        "status": status,
        "intent": rec.proposal.intent,
        "connector": rec.connector,
        "touches": rec.proposal.touches,
        "verdict": rec.decision.decision,
        "reasons": reasons_json(&rec.decision),
        "bearers": bearers,
    });
    if let Value::Object(m) = &mut s {
        if matches!(
            rec.status,
            WriteStatus::Executed | WriteStatus::RollingBack | WriteStatus::RolledBack
        ) {
            m.insert("rollback_handle".into(), json!(id));
        }
        if matches!(rec.status, WriteStatus::Held | WriteStatus::Approved) {
            m.insert(
                "approvals".into(),
                json!({"required": needed, "given": given, "by": "reviewers"}),
            );
        }
        if let Some(t) = rec.expires_at {
            m.insert("expires_at".into(), json!(t));
        }
        if let Some(r) = &rec.rollback {
            m.insert("rollback".into(), json!(r));
        }
        if let Some(w) = waited {
            m.insert("waited_s".into(), json!(w));
        }
        m.insert(
            "summary".into(),
            json!(text.lines().next().unwrap_or_default()),
        );
    }
    result(text, s, is_error)
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn render_explained(tool: &str, ex: &Explained) -> CallToolResult {
    let d = &ex.decision;
    let reasons = reasons_text(d);
    let bearers = bearers(d);
    let text = match d.decision {
        Verdict::Proceed => format!(
            "Would proceed: `{tool}` would run now, the gate capturing its rollback first. Nothing was stored or run."
        ),
        Verdict::Hold => format!(
            "Would be held for review: `{tool}` would not run until reviewers approve it{}; nothing was stored or run.\nWhy:{reasons}",
            if bearers.is_empty() { String::new() } else { format!(" (a failed rollback would fall on: {})", bearers.join(", ")) }
        ),
        Verdict::Refuse => format!("Would be refused: `{tool}` would never run; nothing was stored or run.\nWhy:{reasons}"),
    };
    let s = json!({
        "outcome": "explained",
        "verdict": d.decision,
        "reasons": reasons_json(d),
        "bearers": bearers,
        "touches": ex.proposal.touches,
        "blast_radius": d.blast_radius.iter().map(|b| json!({"resource": b.resource, "bearer": b.bearer, "covered": b.covered})).collect::<Vec<_>>(),
        "rollback_steps": ex.proposal.rollback.steps.len(),
        "summary": text.lines().next().unwrap_or_default(),
    });
    result(text, s, false)
}

async fn explain(
    backend: &dyn Backend,
    connectors: &[String],
    args: &Map<String, Value>,
) -> CallToolResult {
    if let Err(e) = tools::check_args("explain", tools::EXPLAIN_ARGS, args) {
        return arg_error(&e);
    }
    let name = args.get("tool").and_then(Value::as_str).unwrap_or_default();
    let Some(tool) =
        tools::write_tool(name).filter(|t| connectors.iter().any(|c| c == t.connector))
    else {
        let names: Vec<&str> = tools::write_tools_for(connectors)
            .iter()
            .map(|t| t.name)
            .collect();
        return arg_error(&ArgError::new(
            "tool",
            format!(
                "`{name}` is not a write tool of this gate (one of: {})",
                names.join(", ")
            ),
        ));
    };
    let inner = args
        .get("arguments")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let proposal = match tools::proposal(tool, &inner) {
        Ok(p) => p,
        Err(e) => return arg_error(&ArgError::new(format!("arguments.{}", e.arg), e.message)),
    };
    match backend.explain(proposal).await {
        Ok(ex) => render_explained(name, &ex),
        Err(e) => gate_error(&e, "arguments."),
    }
}

fn pending(s: WriteStatus) -> bool {
    matches!(
        s,
        WriteStatus::Held | WriteStatus::Approved | WriteStatus::Executing
    )
}

async fn write_status(
    backend: &dyn Backend,
    args: &Map<String, Value>,
    ctx: &RequestContext<RoleServer>,
) -> CallToolResult {
    if let Err(e) = tools::check_args("write_status", tools::WRITE_STATUS_ARGS, args) {
        return arg_error(&e);
    }
    let id = args.get("id").and_then(Value::as_str).unwrap_or_default();
    let wait_s = args.get("wait_s").and_then(Value::as_f64).unwrap_or(0.0);
    if !(0.0..=MAX_WAIT_S).contains(&wait_s) {
        return arg_error(&ArgError::new(
            "wait_s",
            format!("must be between 0 and {MAX_WAIT_S} seconds, not {wait_s}"),
        ));
    }
    let mut rec = match backend.get(id).await {
        Ok(r) => r,
        Err(e) => return gate_error(&e, ""),
    };
    if wait_s <= 0.0 || !pending(rec.status) {
        return render_write(&rec, None);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(wait_s);
    let token = ctx.meta.get_progress_token();
    let mut last_progress: Option<Instant> = None;
    while pending(rec.status) && Instant::now() < deadline {
        if let Some(token) = &token {
            if last_progress.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                last_progress = Some(Instant::now());
                let message = match rec.status {
                    WriteStatus::Held => format!(
                        "write `{id}` is held: waiting for reviewers ({} of {} approvals)",
                        approvals_given(&rec),
                        rec.required_approvals
                    ),
                    s => format!("write `{id}` is {}", s.as_str()),
                };
                let param =
                    ProgressNotificationParam::new(token.clone(), started.elapsed().as_secs_f64())
                        .with_total(wait_s)
                        .with_message(message);
                if let Err(e) = ctx.peer.notify_progress(param).await {
                    tracing::debug!(error = %e, "progress notification not delivered");
                }
            }
        }
        tokio::select! {
            _ = ctx.ct.cancelled() => break,
            _ = tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))) => {}
        }
        rec = match backend.get(id).await {
            Ok(r) => r,
            Err(e) => return gate_error(&e, ""),
        };
    }
    render_write(&rec, Some(started.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        assert_eq!(
            sentence("if reversal fails, the customer pays"),
            "If reversal fails, the customer pays."
        );
        assert_eq!(
            sentence("action.path: `/etc` is outside the roots"),
            "action.path: `/etc` is outside the roots."
        );
        assert_eq!(sentence("Done."), "Done.");
    }
}
