//! Who may do what: one role -> permission matrix, used by the gate to
//! refuse (403) and by clients (generated into the console's bindings) to
//! show only what the gate will accept.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::wire::Role;

/// One thing a token may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Submit writes (and read one's own).
    SubmitWrites,
    /// Ask for a decision without storing anything.
    Explain,
    /// Read every write, not only one's own.
    ReadAllWrites,
    ApproveWrites,
    RejectWrites,
    /// Roll back an executed write, and settle one whose outcome is unknown.
    RollBack,
    /// Freeze and resume the gate; rewind.
    Freeze,
    ReadCatalog,
    EditCatalog,
    ReadAudit,
    ManageTokens,
    /// Switch the gate between enforce and observe mode.
    SwitchMode,
    /// Read the Monday audit (`GET /v1/report`): every kind of write's
    /// rollback path, its context and its bearers.
    ReadReport,
}

impl Permission {
    pub const ALL: [Permission; 13] = [
        Permission::SubmitWrites,
        Permission::Explain,
        Permission::ReadAllWrites,
        Permission::ApproveWrites,
        Permission::RejectWrites,
        Permission::RollBack,
        Permission::Freeze,
        Permission::ReadCatalog,
        Permission::EditCatalog,
        Permission::ReadAudit,
        Permission::ManageTokens,
        Permission::SwitchMode,
        Permission::ReadReport,
    ];

    /// How a refusal names who may: "only reviewers approve writes".
    pub fn who(self) -> &'static str {
        match self {
            Permission::SubmitWrites => "agents submit writes",
            Permission::Explain => {
                "agents, reviewers, risk officers and incident leads ask for decisions"
            }
            Permission::ReadAllWrites => {
                "reviewers, risk officers and incident leads read every write"
            }
            Permission::ApproveWrites => "reviewers approve writes",
            Permission::RejectWrites => "reviewers reject writes",
            Permission::RollBack => "incident leads roll back and settle writes",
            Permission::Freeze => "incident leads freeze, resume and rewind the gate",
            Permission::ReadCatalog => {
                "reviewers, risk officers and incident leads read the catalog"
            }
            Permission::EditCatalog => "risk officers edit the catalog",
            Permission::ReadAudit => {
                "reviewers, risk officers and incident leads read the audit trail"
            }
            Permission::ManageTokens => "admins manage tokens",
            Permission::SwitchMode => "admins switch the gate between enforce and observe mode",
            Permission::ReadReport => "reviewers, risk officers and incident leads read the report",
        }
    }
}

use Permission as P;

/// The matrix. Admins hold every permission (they run the gate); every
/// other role holds exactly what its row lists.
pub const MATRIX: &[(Role, &[Permission])] = &[
    (Role::Agent, &[P::SubmitWrites, P::Explain]),
    (
        Role::Reviewer,
        &[
            P::Explain,
            P::ReadAllWrites,
            P::ApproveWrites,
            P::RejectWrites,
            P::ReadCatalog,
            P::ReadAudit,
            P::ReadReport,
        ],
    ),
    (
        Role::RiskOfficer,
        &[
            P::Explain,
            P::ReadAllWrites,
            P::ReadCatalog,
            P::EditCatalog,
            P::ReadAudit,
            P::ReadReport,
        ],
    ),
    (
        Role::IncidentLead,
        &[
            P::Explain,
            P::ReadAllWrites,
            P::RollBack,
            P::Freeze,
            P::ReadCatalog,
            P::ReadAudit,
            P::ReadReport,
        ],
    ),
    (Role::Admin, &Permission::ALL),
];

impl Role {
    /// The permissions of this role, from [`MATRIX`].
    pub fn permissions(self) -> &'static [Permission] {
        MATRIX
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, p)| *p)
            .unwrap_or(&[])
    }

    pub fn may(self, p: Permission) -> bool {
        self.permissions().contains(&p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_one_row() {
        for role in Role::ALL {
            assert_eq!(
                MATRIX.iter().filter(|(r, _)| *r == role).count(),
                1,
                "{role:?}"
            );
        }
    }

    #[test]
    fn duties_are_separated() {
        // Whoever submits cannot approve, and approving is not rolling back.
        assert!(Role::Agent.may(P::SubmitWrites));
        assert!(!Role::Agent.may(P::ApproveWrites));
        assert!(!Role::Agent.may(P::ReadCatalog));
        assert!(!Role::Reviewer.may(P::SubmitWrites));
        assert!(!Role::Reviewer.may(P::RollBack));
        assert!(!Role::IncidentLead.may(P::ApproveWrites));
        assert!(!Role::RiskOfficer.may(P::ApproveWrites));
        assert!(Role::Admin.may(P::ManageTokens));
        // The report names every write's path and bearers: not for agents.
        assert!(!Role::Agent.may(P::ReadReport));
        for role in [
            Role::Reviewer,
            Role::RiskOfficer,
            Role::IncidentLead,
            Role::Admin,
        ] {
            assert!(role.may(P::ReadReport), "{role:?}");
        }
        assert!(!Role::IncidentLead.may(P::ManageTokens));
        // Observe mode lets held writes run without a person: only admins.
        for role in Role::ALL {
            assert_eq!(role.may(P::SwitchMode), role == Role::Admin, "{role:?}");
        }
    }
}
