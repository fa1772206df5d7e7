//! The report as CSV: one row per kind x path x step x context item, for a
//! spreadsheet. The columns are [`COLUMNS`], documented in `docs/report.md`.
//! A kind with no judged path, a path with no step and a step with no
//! context each still get one row, with the columns they lack left empty.

use crate::model::{ContextAudit, KindAudit, PathAudit, Report, StepAudit};

/// The header row, in order.
pub const COLUMNS: [&str; 29] = [
    "kind",
    "connector",
    "op",
    "targets",
    "owners",
    "seen",
    "held",
    "ran",
    "refused",
    "rollback",
    "needs_person",
    "bearers",
    "path",
    "path_writes",
    "path_verdict",
    "step",
    "step_source",
    "step_op",
    "manual",
    "available_in",
    "context_kind",
    "context_id",
    "context_location",
    "context_writes",
    "context_statuses",
    "inside_blast_radius",
    "missing_or_unverifiable",
    "too_old",
    "verified",
];

/// The whole CSV text, header first, lines ending in CRLF (RFC 4180).
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    line(&mut out, COLUMNS.iter().map(|c| c.to_string()).collect());
    for kind in &report.kinds {
        if kind.paths.is_empty() {
            line(&mut out, row(kind, None, None, None));
        }
        for (i, path) in kind.paths.iter().enumerate() {
            let p = Some((i + 1, path));
            if path.steps.is_empty() {
                line(&mut out, row(kind, p, None, None));
            }
            for step in &path.steps {
                if step.context.is_empty() {
                    line(&mut out, row(kind, p, Some(step), None));
                }
                for c in &step.context {
                    line(&mut out, row(kind, p, Some(step), Some(c)));
                }
            }
        }
    }
    out
}

fn row(
    kind: &KindAudit,
    path: Option<(usize, &PathAudit)>,
    step: Option<&StepAudit>,
    c: Option<&ContextAudit>,
) -> Vec<String> {
    let owners: Vec<&str> = kind.owners.iter().map(|b| b.as_str()).collect();
    let bearers: Vec<String> = kind
        .bearers
        .iter()
        .map(|b| format!("{}:{}", b.bearer.as_str(), b.writes))
        .collect();
    let mut r = vec![
        kind.key.clone(),
        kind.connector.clone(),
        kind.op.clone(),
        kind.targets.join(" + "),
        owners.join(" "),
        kind.counts.seen.to_string(),
        kind.counts.held.to_string(),
        kind.counts.ran.to_string(),
        kind.counts.refused.to_string(),
        kind.rollback.as_str().into(),
        kind.needs_person.as_str().into(),
        bearers.join(" "),
    ];
    match path {
        Some((i, p)) => r.extend([
            i.to_string(),
            p.writes.to_string(),
            p.verdict.as_str().into(),
        ]),
        None => r.extend(empty(3)),
    }
    match step {
        Some(s) => r.extend([
            s.position.to_string(),
            s.source.as_str().into(),
            s.op.clone(),
            s.manual.to_string(),
            s.available_in.to_string(),
        ]),
        None => r.extend(empty(5)),
    }
    match c {
        Some(c) => {
            let statuses: Vec<String> = c
                .statuses
                .iter()
                .map(|s| format!("{}:{}", s.status.as_str(), s.writes))
                .collect();
            r.extend([
                c.kind.as_str().into(),
                c.id.clone(),
                c.location.clone().unwrap_or_default(),
                c.writes.to_string(),
                statuses.join(" "),
                c.inside_blast_radius.to_string(),
                c.missing_or_unverifiable.to_string(),
                c.too_old.to_string(),
                c.verified.to_string(),
            ])
        }
        None => r.extend(empty(9)),
    }
    r
}

fn empty(n: usize) -> impl Iterator<Item = String> {
    std::iter::repeat_n(String::new(), n)
}

fn line(out: &mut String, fields: Vec<String>) {
    let cells: Vec<String> = fields.iter().map(|f| cell(f)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// One field: quoted when it holds a comma, a quote or a line break; and a
/// leading `=`, `+`, `-`, `@`, tab or CR is prefixed with `'` so that a
/// spreadsheet shows an agent's text rather than run it as a formula.
pub(crate) fn cell(f: &str) -> String {
    let guarded = if f.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{f}")
    } else {
        f.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}
