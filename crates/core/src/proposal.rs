//! The write an agent asks for, with its modelled rollback path (section 2).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::evidence::EvidenceKind;
use crate::id;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub intent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// What the connector runs; opaque to the engine.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub action: serde_json::Value,
    /// Resource ids the write changes directly. The gate's connectors may
    /// derive them; for the engine they must not be empty.
    #[serde(default)]
    pub touches: Vec<String>,
    #[serde(default)]
    pub rollback: Rollback,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    #[serde(default)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Ids this step puts back. For `fs:` ids, a step that restores a tree
    /// restores everything inside it.
    #[serde(default)]
    pub restores: Vec<String>,
    /// What runs: a connector op, or `{"kind": "manual", "note": …}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub op: serde_json::Value,
    /// The context this step depends on.
    #[serde(default)]
    pub requires: Vec<Evidence>,
    /// Set by the gate on the steps its connectors model themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modelled_by: Option<String>,
}

impl Step {
    /// A manual step ("contact support") can never make a write recoverable
    /// on its own.
    pub fn is_manual(&self) -> bool {
        self.op.get("kind").and_then(|k| k.as_str()) == Some("manual")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub id: String,
    pub kind: EvidenceKind,
    /// The resource id where the evidence is held (all kinds but `window`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The end of a `window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// The evidence must have been captured no longer ago than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_s: Option<u64>,
    /// For the gate's `http` probe: `{"url", "method"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub check: Option<serde_json::Value>,
}

impl Proposal {
    /// Checks what the engine needs to judge the proposal; the first problem
    /// is returned, named by its path under `proposal`.
    pub fn validate(&self) -> Result<(), InputError> {
        if self.touches.is_empty() {
            return Err(InputError::new("proposal.touches", "must not be empty"));
        }
        for (i, t) in self.touches.iter().enumerate() {
            id::check(t).map_err(|m| InputError::new(format!("proposal.touches[{i}]"), m))?;
        }
        let mut seen: HashMap<&str, &Evidence> = HashMap::new();
        for (s, step) in self.rollback.steps.iter().enumerate() {
            let at = format!("proposal.rollback.steps[{s}]");
            if !step.op.is_object() {
                return Err(InputError::new(format!("{at}.op"), "must be an object"));
            }
            for (r, restored) in step.restores.iter().enumerate() {
                id::check(restored)
                    .map_err(|m| InputError::new(format!("{at}.restores[{r}]"), m))?;
            }
            for (e, ev) in step.requires.iter().enumerate() {
                let at = format!("{at}.requires[{e}]");
                if ev.id.is_empty() {
                    return Err(InputError::new(format!("{at}.id"), "must not be empty"));
                }
                match ev.kind {
                    EvidenceKind::Window => {
                        if ev.until.is_none() {
                            return Err(InputError::new(
                                format!("{at}.until"),
                                "a `window` needs `until` (RFC 3339)",
                            ));
                        }
                    }
                    _ => match &ev.location {
                        None => {
                            return Err(InputError::new(
                                format!("{at}.location"),
                                format!("a `{}` needs a `location`", ev.kind.as_str()),
                            ))
                        }
                        Some(loc) => id::check(loc)
                            .map_err(|m| InputError::new(format!("{at}.location"), m))?,
                    },
                }
                // The same context may back two steps; two different things
                // under one id would make its status ambiguous.
                if let Some(prev) = seen.insert(&ev.id, ev) {
                    if prev != ev {
                        return Err(InputError::new(
                            format!("{at}.id"),
                            format!("evidence id `{}` is used for two different items", ev.id),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every distinct evidence item, in order of first appearance, with the
    /// steps that require it.
    pub fn evidence(&self) -> Vec<(&Evidence, Vec<usize>)> {
        let mut out: Vec<(&Evidence, Vec<usize>)> = Vec::new();
        let mut at: HashMap<&str, usize> = HashMap::new();
        for (s, step) in self.rollback.steps.iter().enumerate() {
            for ev in &step.requires {
                match at.get(ev.id.as_str()) {
                    Some(&i) => {
                        if let Some(entry) = out.get_mut(i) {
                            if !entry.1.contains(&s) {
                                entry.1.push(s);
                            }
                        }
                    }
                    None => {
                        at.insert(&ev.id, out.len());
                        out.push((ev, vec![s]));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(json: serde_json::Value) -> Proposal {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn empty_touches_is_invalid() {
        let err = proposal(serde_json::json!({"touches": []}))
            .validate()
            .unwrap_err();
        assert_eq!(err.to_string(), "proposal.touches: must not be empty");
    }

    #[test]
    fn window_needs_until_and_others_need_location() {
        let p = proposal(
            serde_json::json!({"touches": ["a:1"], "rollback": {"steps": [
                {"restores": ["a:1"], "op": {"connector": "x"}, "requires": [{"id": "w", "kind": "window"}]}
            ]}}),
        );
        assert_eq!(
            p.validate().unwrap_err().field,
            "proposal.rollback.steps[0].requires[0].until"
        );
        let p = proposal(
            serde_json::json!({"touches": ["a:1"], "rollback": {"steps": [
                {"restores": ["a:1"], "op": {"connector": "x"}, "requires": [{"id": "s", "kind": "snapshot"}]}
            ]}}),
        );
        assert_eq!(
            p.validate().unwrap_err().field,
            "proposal.rollback.steps[0].requires[0].location"
        );
    }

    #[test]
    fn manual_steps_are_recognised() {
        let p = proposal(
            serde_json::json!({"touches": ["a:1"], "rollback": {"steps": [
                {"restores": ["a:1"], "op": {"kind": "manual", "note": "contact support"}}
            ]}}),
        );
        assert!(p.rollback.steps[0].is_manual());
    }
}
