//! `recourse writes list` for a person: one line per write, the columns a
//! reviewer triages by (`--json` keeps the gate's JSON for scripts).

use recourse_client::WriteSummary;

/// Reason codes shown per row before "+N".
const CODES: usize = 3;
/// Intent characters shown per row.
const INTENT: usize = 60;

/// The writes as an aligned table, newest first as the gate listed them.
pub(crate) fn render(writes: &[WriteSummary]) -> String {
    if writes.is_empty() {
        return "no writes".to_owned();
    }
    let rows: Vec<[String; 7]> = writes
        .iter()
        .map(|w| {
            let mut codes: Vec<String> = w
                .reason_codes
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect();
            codes.dedup();
            let more = codes.len().saturating_sub(CODES);
            codes.truncate(CODES);
            if more > 0 {
                codes.push(format!("+{more}"));
            }
            let approvals = if w.required_approvals > 0 {
                format!("{}/{}", w.approved_by.len(), w.required_approvals)
            } else {
                "-".to_owned()
            };
            [
                w.id.clone(),
                w.status.as_str().to_owned(),
                w.agent.clone(),
                approvals,
                w.bearers
                    .iter()
                    .map(|b| b.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                codes.join(","),
                short(&w.intent),
            ]
        })
        .collect();
    let head = [
        "ID",
        "STATUS",
        "AGENT",
        "APPROVALS",
        "BEARERS",
        "REASONS",
        "INTENT",
    ];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(&head.map(str::to_owned))];
    out.extend(rows.iter().map(|r| line(r)));
    out.join("\n")
}

fn short(s: &str) -> String {
    let one_line = s.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= INTENT {
        one_line
    } else {
        let cut: String = one_line.chars().take(INTENT - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(over: serde_json::Value) -> WriteSummary {
        let mut v = serde_json::json!({
            "id": "w_1", "agent": "integrity-bot", "intent": "close seller account 4411",
            "status": "held", "connector": "http", "verdict": "hold",
            "reason_codes": ["external", "third_party_bearer", "uncovered", "manual_step", "evidence_missing"],
            "bearers": ["customer"], "touches": ["account:seller-4411"], "blast_radius_size": 3,
            "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
            "required_approvals": 2, "approved_by": ["rev-1"]
        });
        if let (Some(base), Some(more)) = (v.as_object_mut(), over.as_object()) {
            for (k, x) in more {
                base.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(v).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn a_table_names_status_approvals_bearers_and_the_first_reasons() {
        let long = "x".repeat(100);
        let t = render(&[
            summary(serde_json::json!({})),
            summary(
                serde_json::json!({"id": "w_22", "status": "executed", "intent": long,
                                        "reason_codes": [], "bearers": ["institution"], "required_approvals": 0, "approved_by": []}),
            ),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("ID    STATUS"), "{t}");
        assert!(
            lines[1].contains("held") && lines[1].contains("1/2") && lines[1].contains("customer"),
            "{t}"
        );
        assert!(
            lines[1].contains("external,third_party_bearer,uncovered,+2"),
            "three codes, then how many more: {t}"
        );
        let intent = lines[2].split_whitespace().last().unwrap_or_default();
        assert!(intent.ends_with('…'), "a long intent is cut: {t}");
        assert_eq!(intent.chars().count(), INTENT, "{t}");
        // Columns line up: STATUS starts at the same place on every line.
        let at = lines[0].find("STATUS").unwrap();
        assert_eq!(&lines[1][at..at + 4], "held");
        assert_eq!(&lines[2][at..at + 8], "executed");
    }

    #[test]
    fn no_writes_says_so() {
        assert_eq!(render(&[]), "no writes");
    }
}
