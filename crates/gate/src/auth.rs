//! Tokens and roles. A token is shown once; the store keeps its SHA-256.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use recourse_client::{Permission, Role, SignIn, TokenScope};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who is calling, as the gate knows it from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// When the caller's token stops working (from the token's row): a
    /// long-lived answer such as the event stream ends then.
    pub expires_at: Option<DateTime<Utc>>,
    /// What the caller's writes may reach (`crate::scope`); `None`:
    /// everything the gate serves.
    pub scope: Option<TokenScope>,
    /// With a bearer token or an ID token (`crate::oidc`).
    pub signed_in: SignIn,
}

impl Caller {
    /// A caller whose token does not expire (tests, benches, tools).
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            role,
            expires_at: None,
            scope: None,
            signed_in: SignIn::Token,
        }
    }

    /// This caller, its writes limited to `scope`.
    pub fn scoped(self, scope: TokenScope) -> Self {
        Self {
            scope: Some(scope),
            ..self
        }
    }

    /// The gate itself, for transitions no person caused.
    pub fn gate() -> Self {
        Self::new("gate", Role::Admin)
    }

    /// Whether the caller's role holds `p`, from the one matrix
    /// (`recourse_client::permissions::MATRIX`).
    pub fn can(&self, p: Permission) -> bool {
        self.role.may(p)
    }

    /// A 403 that names the caller, its role and who may do it
    /// ("`rita` is a reviewer: only incident leads roll back and settle
    /// writes").
    pub fn allow(&self, p: Permission) -> Result<(), crate::GateError> {
        if self.can(p) {
            Ok(())
        } else {
            Err(crate::GateError::Forbidden(format!(
                "`{}` is a {}: only {}",
                self.name,
                self.role.as_str(),
                p.who()
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
        let admin = Caller::new("a", Role::Admin);
        let rev = Caller::new("r", Role::Reviewer);
        assert!(admin.can(Permission::RollBack));
        assert!(rev.can(Permission::ApproveWrites));
        assert!(!rev.can(Permission::RollBack));
    }

    #[test]
    fn allow_agrees_with_the_matrix_for_every_role_and_permission() {
        for role in Role::ALL {
            let caller = Caller::new("c", role);
            let row = recourse_client::PERMISSIONS
                .iter()
                .find(|(r, _)| *r == role)
                .map(|(_, ps)| *ps)
                .unwrap_or(&[]);
            for p in Permission::ALL {
                let in_matrix = row.contains(&p);
                assert_eq!(caller.can(p), in_matrix, "{role:?} {p:?}");
                match caller.allow(p) {
                    Ok(()) => assert!(in_matrix, "{role:?} allowed {p:?}"),
                    Err(crate::GateError::Forbidden(m)) => {
                        assert!(!in_matrix, "{role:?} refused {p:?}");
                        // The refusal names the caller, its role and who may.
                        assert!(m.contains("`c`"), "{m}");
                        assert!(m.contains(role.as_str()), "{m}");
                        assert!(m.ends_with(p.who()), "{m}");
                    }
                    Err(e) => panic!("{role:?} {p:?}: {e}"),
                }
            }
        }
    }

    #[test]
    fn the_gate_itself_may_everything_and_never_expires() {
        let g = Caller::gate();
        assert!(Permission::ALL.into_iter().all(|p| g.can(p)));
        assert_eq!(g.expires_at, None);
    }
}
