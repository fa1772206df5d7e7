//! Stakes: which approvals need a written reason. Where someone other than
//! the institution pays if reversal fails, or the write reaches something
//! outside every system the institution runs, a reviewer must say why they
//! approve. The gate refuses such an approval without one, and shows the
//! answer on every write it returns, so no client decides this for itself.

use recourse_core::{Bearer, Decision, Reach};

/// The connector whose writes are requests to another system: what it sent
/// cannot be unsent.
pub const EXTERNAL_CONNECTOR: &str = "http";

/// Why an approval is high-stakes: the first thing found, in the order
/// listed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HighStakes {
    /// A third party bears a resource in the blast radius.
    ThirdParty(Bearer),
    /// The blast radius reaches a resource outside every system the
    /// institution runs.
    External(String),
    /// The write itself is a request to another system.
    ExternalWrite(String),
}

impl std::fmt::Display for HighStakes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HighStakes::ThirdParty(b) => write!(f, "a {} pays if its reversal fails", b.as_str()),
            HighStakes::External(r) => write!(f, "it reaches `{r}`, outside every system we run"),
            HighStakes::ExternalWrite(c) => {
                write!(f, "it is a `{c}` write: a request sent to another system")
            }
        }
    }
}

/// The one rule: is approving a write of `connector` with `decision`
/// high-stakes, and why. `None`: the quick approval is fine.
pub fn high_stakes(connector: &str, decision: &Decision<'_>) -> Option<HighStakes> {
    // `bearers` lists every bearer in the blast radius; the entries are
    // checked as well, so a decision that left the list out still counts.
    let third = decision
        .bearers
        .iter()
        .copied()
        .chain(decision.blast_radius.iter().map(|b| b.bearer))
        .find(|b| b.is_third_party());
    if let Some(b) = third {
        return Some(HighStakes::ThirdParty(b));
    }
    if let Some(e) = decision
        .blast_radius
        .iter()
        .find(|b| b.reach == Reach::External)
    {
        return Some(HighStakes::External(e.resource.to_string()));
    }
    if connector == EXTERNAL_CONNECTOR {
        return Some(HighStakes::ExternalWrite(connector.to_string()));
    }
    None
}

/// [`high_stakes`] as a yes or no, as the wire carries it.
pub fn approval_needs_reason(connector: &str, decision: &Decision<'_>) -> bool {
    high_stakes(connector, decision).is_some()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use recourse_core::decision::BlastEntry;
    use recourse_core::Verdict;

    use super::*;

    fn entry(resource: &'static str, reach: Reach, bearer: Bearer) -> BlastEntry<'static> {
        BlastEntry {
            resource: Cow::Borrowed(resource),
            depth: 0,
            reach,
            bearer,
            covered: false,
            via: None,
            restored_by: Vec::new(),
        }
    }

    fn decision(entries: Vec<BlastEntry<'static>>) -> Decision<'static> {
        let mut bearers: Vec<Bearer> = entries.iter().map(|e| e.bearer).collect();
        bearers.sort();
        bearers.dedup();
        Decision {
            decision: Verdict::Hold,
            reasons: Vec::new(),
            blast_radius: entries,
            bearers,
            evidence: Vec::new(),
            steps: Vec::new(),
        }
    }

    #[test]
    fn an_institution_borne_write_inside_our_systems_needs_no_reason() {
        let d = decision(vec![
            entry("fs:/srv/reports", Reach::Controlled, Bearer::Institution),
            entry("report:monthly", Reach::Observed, Bearer::Institution),
        ]);
        assert_eq!(high_stakes("fs", &d), None);
        assert!(!approval_needs_reason("sql", &d));
    }

    #[test]
    fn a_third_party_bearer_anywhere_in_the_blast_radius_needs_a_reason() {
        for b in Bearer::ALL.into_iter().filter(|b| b.is_third_party()) {
            let d = decision(vec![
                entry("fs:/srv/a", Reach::Controlled, Bearer::Institution),
                entry("crm:1", Reach::Observed, b),
            ]);
            assert_eq!(high_stakes("fs", &d), Some(HighStakes::ThirdParty(b)));
        }
        // Only on an entry, not in the list of bearers: still counts.
        let mut d = decision(vec![entry("crm:1", Reach::Controlled, Bearer::Customer)]);
        d.bearers = vec![Bearer::Institution];
        assert!(approval_needs_reason("fs", &d));
    }

    #[test]
    fn reaching_outside_our_systems_needs_a_reason_whoever_bears_it() {
        let d = decision(vec![
            entry("fs:/srv/a", Reach::Controlled, Bearer::Institution),
            entry("mail:letter", Reach::External, Bearer::Institution),
        ]);
        assert_eq!(
            high_stakes("fs", &d),
            Some(HighStakes::External("mail:letter".into()))
        );
        assert_eq!(
            high_stakes("fs", &d).map(|h| h.to_string()).as_deref(),
            Some("it reaches `mail:letter`, outside every system we run")
        );
    }

    #[test]
    fn an_http_write_needs_a_reason_even_with_nothing_else_at_stake() {
        let d = decision(vec![entry(
            "http:market.internal/a",
            Reach::Observed,
            Bearer::Institution,
        )]);
        assert_eq!(
            high_stakes("http", &d),
            Some(HighStakes::ExternalWrite("http".into()))
        );
        assert!(!approval_needs_reason("fs", &d));
    }

    #[test]
    fn the_bearer_is_named_first() {
        let d = decision(vec![
            entry("mail:letter", Reach::External, Bearer::Customer),
            entry("fs:/a", Reach::Controlled, Bearer::Institution),
        ]);
        assert_eq!(
            high_stakes("http", &d).map(|h| h.to_string()).as_deref(),
            Some("a customer pays if its reversal fails")
        );
    }
}
