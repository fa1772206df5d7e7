//! Evidence: the context a rollback step depends on, and its status now
//! (sections 2 to 4).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::proposal::Evidence;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    Snapshot,
    BeforeImage,
    RetainedLog,
    AuditTrail,
    ExternalCopy,
    Compensation,
    Window,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Snapshot => "snapshot",
            EvidenceKind::BeforeImage => "before_image",
            EvidenceKind::RetainedLog => "retained_log",
            EvidenceKind::AuditTrail => "audit_trail",
            EvidenceKind::ExternalCopy => "external_copy",
            EvidenceKind::Compensation => "compensation",
            EvidenceKind::Window => "window",
        }
    }
}

/// What a probe found for one evidence id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct Observation {
    pub present: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<DateTime<Utc>>,
    /// What the probe saw, for the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Observations by evidence id. An id with none could not be checked.
pub type Observations = BTreeMap<String, Observation>;

/// The status of one evidence item; the order of the variants is the order
/// in which the contract tries them (the first that applies wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum EvidenceStatus {
    /// Held inside the write's own blast radius: the write may take it.
    InBlastRadius,
    /// Observed absent.
    Missing,
    /// No observation, and not a window.
    Unverifiable,
    /// A window that has closed.
    Expired,
    /// A window closing within the margin.
    WindowClosing,
    /// Captured longer ago than `max_age_s`, or capture time unknown.
    Stale,
    Verified,
}

impl EvidenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceStatus::InBlastRadius => "in_blast_radius",
            EvidenceStatus::Missing => "missing",
            EvidenceStatus::Unverifiable => "unverifiable",
            EvidenceStatus::Expired => "expired",
            EvidenceStatus::WindowClosing => "window_closing",
            EvidenceStatus::Stale => "stale",
            EvidenceStatus::Verified => "verified",
        }
    }
}

/// Section 4, rule 3, for one item. `in_blast_radius` is decided by the
/// caller, which knows the blast radius.
pub fn status(
    evidence: &Evidence,
    in_blast_radius: bool,
    observation: Option<&Observation>,
    now: DateTime<Utc>,
    window_margin_s: i64,
) -> EvidenceStatus {
    let is_window = evidence.kind == EvidenceKind::Window;
    if in_blast_radius {
        return EvidenceStatus::InBlastRadius;
    }
    if observation.is_some_and(|o| !o.present) {
        return EvidenceStatus::Missing;
    }
    if observation.is_none() && !is_window {
        return EvidenceStatus::Unverifiable;
    }
    if is_window {
        if let Some(until) = evidence.until {
            if until <= now {
                return EvidenceStatus::Expired;
            }
            if (until - now).num_milliseconds() < window_margin_s.saturating_mul(1000) {
                return EvidenceStatus::WindowClosing;
            }
        }
    }
    if let Some(max_age) = evidence.max_age_s {
        // `as i64` would wrap a huge `max_age_s` to a negative age and make
        // fresh evidence stale; saturate instead.
        let max_age_ms = i64::try_from(max_age)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let fresh = observation
            .and_then(|o| o.captured_at)
            .is_some_and(|at| (now - at).num_milliseconds() <= max_age_ms);
        if !fresh {
            return EvidenceStatus::Stale;
        }
    }
    EvidenceStatus::Verified
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn ev(kind: EvidenceKind) -> Evidence {
        Evidence {
            id: "e".into(),
            kind,
            location: Some("vault:x".into()),
            until: None,
            max_age_s: None,
            check: None,
        }
    }

    fn seen(captured_at: Option<&str>) -> Observation {
        Observation {
            present: true,
            captured_at: captured_at.map(at),
            detail: None,
        }
    }

    #[test]
    fn first_status_that_applies_wins() {
        let now = at("2026-11-25T00:00:00Z");
        let snap = ev(EvidenceKind::Snapshot);
        let absent = Observation {
            present: false,
            captured_at: None,
            detail: None,
        };
        assert_eq!(
            status(&snap, true, Some(&absent), now, 3600),
            EvidenceStatus::InBlastRadius
        );
        assert_eq!(
            status(&snap, false, Some(&absent), now, 3600),
            EvidenceStatus::Missing
        );
        assert_eq!(
            status(&snap, false, None, now, 3600),
            EvidenceStatus::Unverifiable
        );
        assert_eq!(
            status(&snap, false, Some(&seen(None)), now, 3600),
            EvidenceStatus::Verified
        );
    }

    #[test]
    fn windows_expire_and_close() {
        let now = at("2026-11-25T00:00:00Z");
        let mut w = ev(EvidenceKind::Window);
        w.location = None;
        w.until = Some(now);
        assert_eq!(status(&w, false, None, now, 3600), EvidenceStatus::Expired);
        w.until = Some(at("2026-11-25T00:59:59Z"));
        assert_eq!(
            status(&w, false, None, now, 3600),
            EvidenceStatus::WindowClosing
        );
        w.until = Some(at("2026-11-25T01:00:00Z"));
        assert_eq!(status(&w, false, None, now, 3600), EvidenceStatus::Verified);
    }

    #[test]
    fn max_age_needs_a_recent_capture() {
        let now = at("2026-11-25T00:00:00Z");
        let mut snap = ev(EvidenceKind::Snapshot);
        snap.max_age_s = Some(60);
        assert_eq!(
            status(&snap, false, Some(&seen(None)), now, 0),
            EvidenceStatus::Stale
        );
        let old = seen(Some("2026-11-24T23:58:59Z"));
        assert_eq!(
            status(&snap, false, Some(&old), now, 0),
            EvidenceStatus::Stale
        );
        let edge = seen(Some("2026-11-24T23:59:00Z"));
        assert_eq!(
            status(&snap, false, Some(&edge), now, 0),
            EvidenceStatus::Verified
        );
    }
}
