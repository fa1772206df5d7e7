//! The write lifecycle as data: one table of `(status, step) -> status`.
//! Every change of a write's status goes through [`next`], inside the one
//! transition function (`Gate::apply`); a move the table lacks is refused
//! there, whoever asks for it.

use recourse_client::{GateMode, WriteStatus};
use recourse_core::Verdict;

use WriteStatus as S;

/// What happens to a write. The audit trail names each by [`Step::action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// A reviewer's approval, not yet enough of them.
    Approval,
    /// The approval that completes the count: the write is claimed to run.
    Approve,
    Reject,
    /// Nobody decided before the hold expired.
    Expire,
    /// Re-verification before running found the decision changed.
    Rehold,
    /// Re-verified: capture and run.
    Start,
    /// The capture is durable (same status; the record gains it).
    Captured,
    Executed,
    /// The capture or the write failed, and the connector's evidence says
    /// nothing changed.
    NothingRan,
    /// Whether the write took effect cannot be told.
    Unknown,
    /// An in-flight write cannot move now (its connector is missing, its
    /// target unreachable): recorded once, retried later.
    Wait,
    /// A person checked: the write took effect.
    ResolveRan,
    /// A person checked: it did not.
    ResolveNotRun,
    Rollback,
    /// A rollback whose restore cannot be resumed (it sends compensating
    /// requests) is about to call it: recorded first, so a crash after it
    /// is never followed by a second send.
    Compensate,
    RolledBack,
    /// The target changed after the write: nothing was overwritten.
    Drift,
    /// The rollback ran and did not verify.
    RollbackUnverified,
    /// Before running, the stored write did not match the proposal hash of
    /// its hash-chained submission entry: refused, nothing ran.
    Mismatch,
}

impl Step {
    pub const ALL: [Step; 19] = [
        Step::Approval,
        Step::Approve,
        Step::Reject,
        Step::Expire,
        Step::Rehold,
        Step::Start,
        Step::Captured,
        Step::Executed,
        Step::NothingRan,
        Step::Unknown,
        Step::Wait,
        Step::ResolveRan,
        Step::ResolveNotRun,
        Step::Rollback,
        Step::Compensate,
        Step::RolledBack,
        Step::Drift,
        Step::RollbackUnverified,
        Step::Mismatch,
    ];

    /// The crash point right after this move is durable (marked in
    /// `Gate::apply`; see [`crate::crash_points`]).
    pub fn crash_point(self) -> &'static str {
        match self {
            Step::Approval => "gate.after.approval",
            Step::Approve => "gate.after.approve",
            Step::Reject => "gate.after.reject",
            Step::Expire => "gate.after.expire",
            Step::Rehold => "gate.after.rehold",
            Step::Start => "gate.after.start",
            Step::Captured => "gate.after.captured",
            Step::Executed => "gate.after.executed",
            Step::NothingRan => "gate.after.nothing_ran",
            Step::Unknown => "gate.after.unknown",
            Step::Wait => "gate.after.wait",
            Step::ResolveRan => "gate.after.resolve_ran",
            Step::ResolveNotRun => "gate.after.resolve_not_run",
            Step::Rollback => "gate.after.rollback",
            Step::Compensate => "gate.after.compensate",
            Step::RolledBack => "gate.after.rolled_back",
            Step::Drift => "gate.after.drift",
            Step::RollbackUnverified => "gate.after.rollback_unverified",
            Step::Mismatch => "gate.after.mismatch",
        }
    }

    /// The audit trail's name for it.
    pub fn action(self) -> &'static str {
        match self {
            Step::Approval => "write.approval",
            Step::Approve => "write.approved",
            Step::Reject => "write.rejected",
            Step::Expire => "write.expired",
            Step::Rehold => "write.reheld",
            Step::Start => "write.executing",
            Step::Captured => "write.captured",
            Step::Executed => "write.executed",
            Step::NothingRan => "write.failed",
            Step::Unknown => "write.outcome_unknown",
            Step::Wait => "write.waiting",
            Step::ResolveRan => "write.resolved",
            Step::ResolveNotRun => "write.resolved",
            Step::Rollback => "write.rolling_back",
            Step::Compensate => "write.compensating",
            Step::RolledBack => "write.rollback_result",
            Step::Drift => "write.rollback_result",
            Step::RollbackUnverified => "write.rollback_result",
            Step::Mismatch => "write.mismatch",
        }
    }
}

/// Every legal move. Anything not here is refused.
pub const TABLE: &[(WriteStatus, Step, WriteStatus)] = &[
    // review
    (S::Held, Step::Approval, S::Held),
    (S::Held, Step::Approve, S::Approved),
    (S::Held, Step::Reject, S::Rejected),
    (S::Held, Step::Expire, S::Expired),
    // re-verification before running
    (S::Approved, Step::Rehold, S::Held),
    (S::Approved, Step::Start, S::Executing),
    (S::Approved, Step::Wait, S::Approved),
    // the stored write is not the one submitted: it must not run
    (S::Approved, Step::Mismatch, S::Failed),
    // running
    (S::Executing, Step::Captured, S::Executing),
    (S::Executing, Step::Executed, S::Executed),
    (S::Executing, Step::NothingRan, S::Failed),
    (S::Executing, Step::Unknown, S::OutcomeUnknown),
    (S::Executing, Step::Wait, S::Executing),
    (S::Executing, Step::Mismatch, S::Failed),
    // a person settles what the gate cannot know
    (S::OutcomeUnknown, Step::ResolveRan, S::Executed),
    (S::OutcomeUnknown, Step::ResolveNotRun, S::Failed),
    // rollback, and again after one that did not verify
    (S::Executed, Step::Rollback, S::RollingBack),
    (S::RollbackFailed, Step::Rollback, S::RollingBack),
    (S::RollingBack, Step::Compensate, S::RollingBack),
    (S::RollingBack, Step::RolledBack, S::RolledBack),
    (S::RollingBack, Step::Drift, S::Executed),
    (S::RollingBack, Step::RollbackUnverified, S::RollbackFailed),
    (S::RollingBack, Step::Wait, S::RollingBack),
];

/// Where `step` takes a write in `from`, or `None` when the table has no
/// such move.
pub fn next(from: WriteStatus, step: Step) -> Option<WriteStatus> {
    TABLE
        .iter()
        .find(|(f, s, _)| *f == from && *s == step)
        .map(|(_, _, to)| *to)
}

/// The status a new write starts in, by its verdict and the gate's mode.
/// Observe mode starts a `hold` running, as a `proceed` (capture first),
/// and nothing else: a refusal is refused in either mode. (A frozen gate
/// decides in enforce mode: a freeze holds everything.)
pub const INITIAL: &[(Verdict, GateMode, WriteStatus)] = &[
    (Verdict::Proceed, GateMode::Enforce, S::Executing),
    (Verdict::Hold, GateMode::Enforce, S::Held),
    (Verdict::Refuse, GateMode::Enforce, S::Refused),
    (Verdict::Proceed, GateMode::Observe, S::Executing),
    (Verdict::Hold, GateMode::Observe, S::Executing),
    (Verdict::Refuse, GateMode::Observe, S::Refused),
];

/// The status a new write starts in (see [`INITIAL`]).
pub fn initial(verdict: Verdict, mode: GateMode) -> WriteStatus {
    INITIAL
        .iter()
        .find(|(v, m, _)| *v == verdict && *m == mode)
        .map(|(_, _, to)| *to)
        // Unreachable (the table covers every pair, see the tests); the
        // safe answer is to run nothing.
        .unwrap_or(S::Held)
}

/// Whether a write decided `verdict` starts running only because of the
/// mode: what observe mode lets through that enforcement would hold.
pub fn observed_hold(verdict: Verdict, mode: GateMode) -> bool {
    initial(verdict, mode) != initial(verdict, GateMode::Enforce)
}

/// [`INITIAL`] as the Markdown docs/lifecycle.md carries it.
pub fn initial_markdown() -> String {
    let mut out = String::from("| verdict | mode | starts as |\n|---|---|---|\n");
    for (verdict, mode, to) in INITIAL {
        let verdict = match verdict {
            Verdict::Proceed => "proceed",
            Verdict::Hold => "hold",
            Verdict::Refuse => "refuse",
        };
        out.push_str(&format!(
            "| `{verdict}` | `{}` | `{}` |\n",
            mode.as_str(),
            to.as_str()
        ));
    }
    out
}

/// The table as the Markdown docs/lifecycle.md carries it.
pub fn markdown() -> String {
    let mut out = String::from("| from | step | to | audit action |\n|---|---|---|---|\n");
    for (from, step, to) in TABLE {
        out.push_str(&format!(
            "| `{}` | {step:?} | `{}` | `{}` |\n",
            from.as_str(),
            to.as_str(),
            step.action()
        ));
    }
    out
}

/// Statuses no step leaves.
pub fn is_final(status: WriteStatus) -> bool {
    !TABLE.iter().any(|(f, _, to)| *f == status && *to != status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_a_function() {
        for (i, (f, s, _)) in TABLE.iter().enumerate() {
            assert!(
                !TABLE[i + 1..].iter().any(|(g, t, _)| g == f && t == s),
                "{f:?} x {s:?} appears twice"
            );
        }
    }

    #[test]
    fn every_status_is_reachable_and_every_step_used() {
        for status in WriteStatus::ALL {
            let reached = TABLE.iter().any(|(_, _, to)| *to == status)
                || INITIAL.iter().any(|(_, _, to)| *to == status);
            assert!(reached, "{status:?} cannot be reached");
        }
        for step in Step::ALL {
            assert!(TABLE.iter().any(|(_, s, _)| *s == step), "{step:?} unused");
        }
    }

    #[test]
    fn ends_and_exits() {
        let ends: Vec<_> = WriteStatus::ALL
            .into_iter()
            .filter(|s| is_final(*s))
            .collect();
        assert_eq!(
            ends,
            vec![
                S::Rejected,
                S::Refused,
                S::Expired,
                S::Failed,
                S::RolledBack
            ]
        );
        // The two statuses that wait for a person each have a way out.
        assert_eq!(next(S::OutcomeUnknown, Step::ResolveRan), Some(S::Executed));
        assert_eq!(
            next(S::OutcomeUnknown, Step::ResolveNotRun),
            Some(S::Failed)
        );
        assert_eq!(
            next(S::RollbackFailed, Step::Rollback),
            Some(S::RollingBack)
        );
        // Nothing runs from a status a person has not approved.
        assert_eq!(next(S::Held, Step::Start), None);
        assert_eq!(next(S::Rejected, Step::Approve), None);
        assert_eq!(next(S::Expired, Step::Approve), None);
    }

    #[test]
    fn the_initial_table_covers_every_pair_and_observe_runs_only_holds() {
        for verdict in [Verdict::Proceed, Verdict::Hold, Verdict::Refuse] {
            for mode in [GateMode::Enforce, GateMode::Observe] {
                let rows = INITIAL
                    .iter()
                    .filter(|(v, m, _)| *v == verdict && *m == mode)
                    .count();
                assert_eq!(rows, 1, "{verdict:?} in {mode:?}");
            }
            // Enforcement never runs a hold or a refusal; observe mode
            // never runs a refusal.
            assert_eq!(
                observed_hold(verdict, GateMode::Observe),
                verdict == Verdict::Hold
            );
            assert!(!observed_hold(verdict, GateMode::Enforce));
        }
        assert_eq!(initial(Verdict::Hold, GateMode::Enforce), S::Held);
        assert_eq!(initial(Verdict::Hold, GateMode::Observe), S::Executing);
        assert_eq!(initial(Verdict::Refuse, GateMode::Observe), S::Refused);
    }

    /// docs/lifecycle.md shows the tables generated from the code; set
    /// UPDATE_DOCS=1 to rewrite them.
    #[test]
    fn the_documented_table_is_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/lifecycle.md");
        let mut doc = std::fs::read_to_string(path).unwrap();
        for (name, want) in [
            ("lifecycle table", markdown()),
            ("initial statuses", initial_markdown()),
        ] {
            let begin = format!("<!-- BEGIN GENERATED: {name} -->\n");
            let end = format!("<!-- END GENERATED: {name} -->");
            let a = doc.find(&begin).unwrap() + begin.len();
            let b = doc.find(&end).unwrap();
            if std::env::var_os("UPDATE_DOCS").is_some() {
                doc = format!("{}{want}{}", &doc[..a], &doc[b..]);
                continue;
            }
            assert_eq!(
                &doc[a..b],
                want,
                "docs/lifecycle.md is stale ({name}): UPDATE_DOCS=1 cargo test -p recourse-gate machine"
            );
        }
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, doc).unwrap();
        }
    }

    /// Every (status, step) pair, legal or refused, answered by the table:
    /// the count of answers equals the table's size plus the refusals.
    #[test]
    fn every_pair_is_answered() {
        let mut legal = 0;
        let mut refused = 0;
        for from in WriteStatus::ALL {
            for step in Step::ALL {
                match next(from, step) {
                    Some(_) => legal += 1,
                    None => refused += 1,
                }
            }
        }
        assert_eq!(legal, TABLE.len());
        assert_eq!(legal + refused, WriteStatus::ALL.len() * Step::ALL.len());
    }
}
