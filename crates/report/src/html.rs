//! The report as one self-contained HTML page: no script, no external
//! asset, every piece of text escaped (titles, intents and ops come from
//! agents and catalog editors).

use std::fmt::Write;

use crate::model::*;

/// Escapes text for an HTML element's content or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:74rem;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.7rem}h2{margin-top:2.5rem;border-bottom:2px solid #ddd}
h3{margin:0 0 .3rem;font-size:1.1rem}code{font:13px ui-monospace,monospace;word-break:break-all}
.kind{border:1px solid #ccc;border-radius:6px;padding:.8rem 1rem;margin:1rem 0}
.bad{border-left:6px solid #b3261e}.warn{border-left:6px solid #b26a00}.ok{border-left:6px solid #2e7d32}
.tag{display:inline-block;padding:0 .45rem;border-radius:4px;font-size:.85em;background:#eee;margin-right:.3rem}
.t-bad{background:#f9dedc;color:#8c1d18}.t-warn{background:#ffe8c2;color:#6b3f00}.t-ok{background:#d7efd9;color:#1b5e20}
table{border-collapse:collapse;margin:.4rem 0;width:100%}th,td{border:1px solid #ddd;padding:.25rem .45rem;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f5f5f5}ol{padding-left:1.4rem}li{margin:.4rem 0}.muted{color:#666}
dl.sum{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dl.sum dt{font-weight:600}
";

fn verdict_class(v: PathVerdict) -> &'static str {
    match v {
        PathVerdict::NoPath | PathVerdict::ManualStep | PathVerdict::LeavesUnrestored => "bad",
        PathVerdict::Aspirational => "warn",
        PathVerdict::Real => "ok",
    }
}

fn tag(class: &str, text: &str) -> String {
    format!("<span class=\"tag t-{class}\">{}</span>", esc(text))
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut h = String::new();
    let s = &report.summary;
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Recourse: the Monday audit</title><style>{STYLE}</style></head><body>\
         <h1>The Monday audit</h1>\
         <p class=\"muted\">Computed {} by Recourse from the gate's catalog and its recorded \
         decisions: {} writes in {} kinds, {} catalog resources.</p>",
        esc(&report.generated_at.to_rfc3339()),
        s.writes,
        s.kinds,
        s.resources
    );
    let _ = write!(
        h,
        "<dl class=\"sum\">\
         <dt>Kinds not reversible</dt><dd>{} (a path resolves to a manual step or to nothing)</dd>\
         <dt>Kinds with aspirational rollbacks</dt><dd>{} (context not verified outside the blast radius)</dd>\
         <dt>Kinds that always need a person</dt><dd>{} (a third party bears every one); {} sometimes</dd>\
         <dt>External resources</dt><dd>{} of {}</dd>\
         <dt>Third-party resources</dt><dd>{}</dd></dl>",
        s.kinds_not_reversible,
        s.kinds_aspirational,
        s.kinds_always_need_a_person,
        s.kinds_sometimes_need_a_person,
        s.resources_external,
        s.resources,
        s.resources_third_party
    );

    h.push_str(
        "<h2>1. The rollback path of every kind of write</h2>\
         <p>The actual sequence of operations the gate modelled, connector steps (captured by the \
         gate itself) and agent-proposed steps told apart. A path that resolves to a manual step \
         or to nothing means the write is not reversible.</p>",
    );
    for k in &report.kinds {
        kind(&mut h, k);
    }
    if report.kinds.is_empty() {
        h.push_str("<p class=\"muted\">The gate has seen no write yet.</p>");
    }

    h.push_str(
        "<h2>2. The context each rollback depends on</h2>\
         <p>Every piece of evidence a step required, where it lives, and what the gate found when \
         it decided: inside the write's own blast radius, missing or unverifiable, too old, or \
         verified. A rollback that depends on context not retained is aspirational.</p>",
    );
    context_table(&mut h, report);

    h.push_str(
        "<h2>3. Who bears the cost when reversal fails</h2>\
         <p>The bearers in each kind's blast radius. Where a third party (customer, patient, \
         borrower, creator, vendor, employee, the public) bears it, the write needs a human \
         checkpoint.</p><table><tr><th>Kind of write</th><th>Bearers (writes)</th>\
         <th>Needs a person</th><th>Seen</th><th>Held</th><th>Ran</th></tr>",
    );
    for k in &report.kinds {
        let bearers: Vec<String> = k
            .bearers
            .iter()
            .map(|b| format!("{} ({})", b.bearer.as_str(), b.writes))
            .collect();
        let np = match k.needs_person {
            NeedsPerson::Always => tag("bad", "always"),
            NeedsPerson::Sometimes => tag("warn", "sometimes"),
            NeedsPerson::Never => tag("ok", "never"),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{np}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&k.key),
            esc(&bearers.join(", ")),
            k.counts.seen,
            k.counts.held,
            k.counts.ran
        );
    }
    h.push_str("</table>");

    h.push_str(
        "<h2>Every catalog resource</h2><p>Each resource the catalog declares, with how the \
         writes that reached it could put it back.</p><table><tr><th>Resource</th><th>Kind</th>\
         <th>Reach</th><th>Bearer</th><th>Where it stands</th><th>Reached by</th>\
         <th>Restored in</th><th>Restored by</th><th>Context held here (inside its write's \
         radius)</th></tr>",
    );
    for r in &report.resources {
        resource_row(&mut h, r);
    }
    h.push_str("</table></body></html>\n");
    h
}

fn kind(h: &mut String, k: &KindAudit) {
    let c = &k.counts;
    let _ = write!(
        h,
        "<article class=\"kind {}\"><h3>{}</h3><p>{} {} seen {}, held {}, ran {}, refused {}, \
         rolled back {}{}</p>",
        verdict_class(k.rollback),
        esc(&k.key),
        tag(verdict_class(k.rollback), k.rollback.as_str()),
        esc(k.rollback.sentence()),
        c.seen,
        c.held,
        c.ran,
        c.refused,
        c.rolled_back,
        if c.ran_unreviewed > 0 {
            format!(", ran unreviewed in observe mode {}", c.ran_unreviewed)
        } else {
            String::new()
        }
    );
    for (i, p) in k.paths.iter().enumerate() {
        let _ = write!(
            h,
            "<h4>Path {} {} in {} write(s), e.g. <code>{}</code></h4>",
            i + 1,
            tag(verdict_class(p.verdict), p.verdict.as_str()),
            p.writes,
            esc(&p.example)
        );
        if p.steps.is_empty() {
            h.push_str(&format!(
                "<p>{}</p>",
                tag("bad", "no step: resolves to nothing")
            ));
            continue;
        }
        h.push_str("<ol>");
        for s in &p.steps {
            step(h, s, p.writes);
        }
        h.push_str("</ol>");
    }
    if !k.unrestored.is_empty() {
        h.push_str("<p>Nothing puts these back:</p><ul>");
        for u in &k.unrestored {
            let why = if u.why == "external" {
                "external: outside every system the institution runs"
            } else {
                "no step of the path restores it"
            };
            let _ = write!(
                h,
                "<li><code>{}</code> ({}, borne by {}): {} (in {} write(s))</li>",
                esc(&u.resource),
                u.reach.as_str(),
                u.bearer.as_str(),
                why,
                u.writes
            );
        }
        h.push_str("</ul>");
    }
    let bearers: Vec<String> = k.bearers.iter().map(|b| b.bearer.as_str().into()).collect();
    let _ = write!(
        h,
        "<p>Bears the cost: {}. Needs a person: {}.</p>",
        esc(&bearers.join(", ")),
        k.needs_person.as_str()
    );
    h.push_str(
        "<details><summary>Writes</summary><table><tr><th>Write</th><th>Agent</th>\
         <th>Intent</th><th>Status</th><th>Decision</th><th>Path</th></tr>",
    );
    for w in &k.writes {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&w.id),
            esc(&w.agent),
            esc(&w.intent),
            w.status.as_str(),
            verdict_word(w.verdict),
            w.path.map_or("not judged (refused)", PathVerdict::as_str)
        );
    }
    h.push_str("</table></details></article>");
}

fn verdict_word(v: recourse_core::Verdict) -> &'static str {
    match v {
        recourse_core::Verdict::Proceed => "proceed",
        recourse_core::Verdict::Hold => "hold",
        recourse_core::Verdict::Refuse => "refuse",
    }
}

fn step(h: &mut String, s: &StepAudit, writes: u32) {
    let by = match (&s.source, &s.modelled_by) {
        (StepSource::Connector, Some(c)) => tag("ok", &format!("modelled by the {c} connector")),
        _ => tag("warn", "proposed by the agent"),
    };
    let manual = if s.manual {
        tag("bad", "manual step: not reversible")
    } else {
        String::new()
    };
    let _ = write!(
        h,
        "<li>{by}{manual}<code>{}</code><br>restores {}; available in {} of {} write(s)",
        esc(&s.op),
        if s.restores.is_empty() {
            "nothing".to_string()
        } else {
            s.restores
                .iter()
                .map(|r| format!("<code>{}</code>", esc(r)))
                .collect::<Vec<_>>()
                .join(", ")
        },
        s.available_in,
        writes
    );
    if s.context.is_empty() {
        if !s.manual {
            h.push_str(&format!(
                "<br>{}",
                tag("bad", "depends on no context the gate could verify")
            ));
        }
    } else {
        h.push_str(
            "<table><tr><th>Context</th><th>Where it lives</th><th>What the gate found</th>\
             <th>Verified by</th></tr>",
        );
        for c in &s.context {
            context_row(h, c);
        }
        h.push_str("</table>");
    }
    h.push_str("</li>");
}

fn found(c: &ContextAudit) -> String {
    let mut parts = Vec::new();
    if c.inside_blast_radius > 0 {
        parts.push(tag(
            "bad",
            &format!("inside its own blast radius in {}", c.inside_blast_radius),
        ));
    }
    if c.missing_or_unverifiable > 0 {
        parts.push(tag(
            "bad",
            &format!("missing or unverifiable in {}", c.missing_or_unverifiable),
        ));
    }
    if c.too_old > 0 {
        parts.push(tag("warn", &format!("too old in {}", c.too_old)));
    }
    if c.verified > 0 {
        parts.push(tag("ok", &format!("verified in {}", c.verified)));
    }
    let statuses: Vec<String> = c
        .statuses
        .iter()
        .map(|s| format!("{} {}", s.status.as_str(), s.writes))
        .collect();
    let mut text = format!(
        "{} <span class=\"muted\">({})</span>",
        parts.join(""),
        esc(&statuses.join(", "))
    );
    if let Some(age) = c.max_age_at_submission_s {
        let _ = write!(text, "<br>oldest capture {age} s old at submission");
    }
    if let Some(max) = c.max_age_s {
        let _ = write!(text, "; required at most {max} s");
    }
    text
}

fn context_row(h: &mut String, c: &ContextAudit) {
    let _ = write!(
        h,
        "<tr><td>{} <code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
        c.kind.as_str(),
        esc(&c.id),
        c.location.as_deref().map_or(
            "(a time window: bounds when, holds nothing)".to_string(),
            |l| { format!("<code>{}</code>", esc(l)) }
        ),
        found(c),
        esc(&c.verified_by.join("; "))
    );
}

fn context_table(h: &mut String, report: &Report) {
    h.push_str(
        "<table><tr><th>Kind of write</th><th>Step</th><th>Context</th><th>Where it lives</th>\
         <th>What the gate found</th><th>Retained?</th></tr>",
    );
    let mut any = false;
    for k in &report.kinds {
        for (i, p) in k.paths.iter().enumerate() {
            for s in &p.steps {
                for c in &s.context {
                    any = true;
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td>path {} step {} ({})</td><td>{} <code>{}</code></td>\
                         <td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&k.key),
                        i + 1,
                        s.position,
                        s.source.as_str(),
                        c.kind.as_str(),
                        esc(&c.id),
                        esc(c.location.as_deref().unwrap_or("(window)")),
                        found(c),
                        if c.retained() {
                            tag("ok", "yes")
                        } else {
                            tag("bad", "aspirational")
                        }
                    );
                }
            }
        }
    }
    if !any {
        h.push_str(
            "<tr><td colspan=\"6\" class=\"muted\">No rollback depended on any context.</td></tr>",
        );
    }
    h.push_str("</table>");
}

fn resource_row(h: &mut String, r: &ResourceAudit) {
    let class = match r.verdict {
        ResourceVerdict::External | ResourceVerdict::NotRestored => "bad",
        ResourceVerdict::Aspirational => "warn",
        ResourceVerdict::Restorable => "ok",
        ResourceVerdict::NotReached => "none",
    };
    let bearer = match (r.declared_bearer, r.bearers.as_slice()) {
        (Some(b), _) => b.as_str().to_string(),
        (None, []) => "inherited".to_string(),
        (None, seen) => seen
            .iter()
            .map(|b| b.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let _ = write!(
        h,
        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{} ({})</td></tr>",
        esc(&r.id),
        r.title.as_deref().map_or(String::new(), |t| format!(
            "<br><span class=\"muted\">{}</span>",
            esc(t)
        )),
        esc(r.kind.as_deref().unwrap_or("")),
        r.reach.as_str(),
        esc(&bearer),
        if r.needs_person {
            format!(" {}", tag("bad", "needs a person"))
        } else {
            String::new()
        },
        tag(class, r.verdict.as_str()),
        r.reached_by,
        r.restored_in,
        r.restored_by
            .iter()
            .map(|l| format!("<code>{}</code>", esc(l)))
            .collect::<Vec<_>>()
            .join("<br>"),
        r.context_held,
        r.context_inside_blast_radius
    );
}
