//! Tokens and roles. A token is shown once; the store keeps its SHA-256.

use base64::Engine;
use rand::RngCore;
use recourse_client::Role;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who is calling, as the gate knows it from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// The gate itself, for transitions no person caused.
    pub fn gate() -> Self {
        Self {
            name: "gate".into(),
            role: Role::Admin,
        }
    }

    /// Admins may do everything; everyone else only what their role names.
    pub fn may(&self, roles: &[Role]) -> bool {
        self.role == Role::Admin || roles.contains(&self.role)
    }

    /// A 403 that says who the caller is and who may do `what`
    /// ("only reviewers approve").
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), crate::GateError> {
        if self.may(roles) {
            Ok(())
        } else {
            Err(crate::GateError::Forbidden(format!(
                "`{}` is a {}: only {what}",
                self.name,
                self.role.as_str()
            )))
        }
    }
}

/// A new random token: 256 bits, URL-safe.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "rk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn hash_token(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

/// Compares two hashes in constant time.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(same_hash(&hash_token(&a), &hash_token(&a)));
        assert!(!same_hash(&hash_token(&a), &hash_token(&b)));
    }

    #[test]
    fn admin_may_everything_others_only_their_role() {
        let admin = Caller {
            name: "a".into(),
            role: Role::Admin,
        };
        let rev = Caller {
            name: "r".into(),
            role: Role::Reviewer,
        };
        assert!(admin.may(&[Role::IncidentLead]));
        assert!(rev.may(&[Role::Reviewer]));
        assert!(!rev.may(&[Role::IncidentLead]));
    }
}
