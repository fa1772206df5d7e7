//! The raw proposal at rest: what the store keeps of it is the masked form
//! (`WriteRecord::proposal`) plus this, the proposal as submitted, encrypted
//! with XChaCha20-Poly1305 under a key the store never holds, a random
//! nonce per record, and the write's id as associated data (so a sealed
//! proposal moved to another record does not open).
//!
//! The key is a file beside the audit signing key (`DATA_DIR/action.key`
//! by default): 32 random bytes as hex, mode 0600. Anyone with the store
//! and not the key reads masked writes only; anyone with both reads the
//! secrets of writes that have not finished (see `docs/secrets.md`).

use std::path::Path;
use std::sync::LazyLock;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use recourse_core::Proposal;
use sha2::{Digest, Sha256};

/// The format tag of a sealed proposal: a future scheme gets a new one.
/// `xc20p2:KEYID:BASE64` names the key that sealed it, so a gate started
/// with another key says which key a write needs (and waits for it)
/// instead of taking the write for tampered; `xc20p1:BASE64`, written
/// before, is still opened.
const TAG: &str = "xc20p2:";
const TAG_V1: &str = "xc20p1:";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the proposal could not be encoded for sealing: {0}")]
    Encode(String),
    #[error("the proposal could not be encrypted")]
    Encrypt,
    /// Tampered with, or sealed for another write.
    #[error("the sealed proposal does not open with this gate's action key ({0})")]
    Open(&'static str),
    /// Sealed under another action key: not tampered with as far as this
    /// gate can tell, but only a gate holding that key can open it.
    #[error("the proposal was sealed under action key {sealed_with}, and this gate holds key {this}: start the gate with the key that sealed it (`--action-key`)")]
    OtherKey { sealed_with: String, this: String },
}

/// The key that seals raw proposals.
#[derive(Clone)]
pub struct ActionKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for ActionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ActionKey({})", self.key_id())
    }
}

/// One key per process for gates built without one (tests, embedding):
/// every gate in the process opens what another sealed. A gate that must
/// open after a restart what it sealed before loads its key from a file.
static PROCESS_KEY: LazyLock<ActionKey> = LazyLock::new(ActionKey::generate);

impl Default for ActionKey {
    fn default() -> Self {
        PROCESS_KEY.clone()
    }
}

impl ActionKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self { bytes }
    }

    /// A short public name of the key (the first 16 hex digits of its
    /// SHA-256), for logs: which key, never the key.
    pub fn key_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"recourse action key");
        h.update(self.bytes);
        hex::encode(h.finalize())[..16].to_string()
    }

    /// Reads the key at `path`, or creates it (mode 0600) when missing.
    /// True when it was created. A key others may read is refused.
    pub fn load_or_create(path: &Path) -> std::io::Result<(Self, bool)> {
        let (bytes, created) =
            crate::key_file::load_or_create(path, "action key", || Self::generate().bytes)?;
        Ok((Self::from_bytes(bytes), created))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.bytes))
    }

    /// The proposal of write `write_id`, encrypted.
    pub fn seal(&self, write_id: &str, proposal: &Proposal) -> Result<String, SealError> {
        let msg = serde_json::to_vec(proposal).map_err(|e| SealError::Encode(e.to_string()))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &msg,
                    aad: write_id.as_bytes(),
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!(
            "{TAG}{}:{}",
            self.key_id(),
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// The proposal sealed for write `write_id`.
    pub fn open(&self, write_id: &str, sealed: &str) -> Result<Proposal, SealError> {
        let body = if let Some(rest) = sealed.strip_prefix(TAG) {
            let (key_id, body) = rest.split_once(':').ok_or(SealError::Open("no key id"))?;
            let this = self.key_id();
            if key_id != this {
                return Err(SealError::OtherKey {
                    sealed_with: key_id.to_string(),
                    this,
                });
            }
            body
        } else {
            sealed
                .strip_prefix(TAG_V1)
                .ok_or(SealError::Open("unknown format"))?
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| SealError::Open("not base64"))?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Open("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Open("too short"))?;
        let msg = self
            .cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: write_id.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open("authentication failed"))?;
        serde_json::from_slice(&msg).map_err(|_| SealError::Open("not a proposal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn proposal() -> Proposal {
        serde_json::from_value(json!({"intent": "t", "action": {"connector": "http",
            "headers": {"Authorization": "Bearer s3cr3t-t0ken"}}}))
        .unwrap()
    }

    #[test]
    fn sealed_opens_only_for_its_write_and_key() {
        let key = ActionKey::generate();
        let sealed = key.seal("w_1", &proposal()).unwrap();
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(key.open("w_1", &sealed).unwrap(), proposal());
        assert!(key.open("w_2", &sealed).is_err(), "moved to another write");
        let other = ActionKey::generate();
        match other.open("w_1", &sealed) {
            Err(SealError::OtherKey { sealed_with, this }) => {
                assert_eq!(sealed_with, key.key_id());
                assert_eq!(this, other.key_id());
            }
            r => panic!("another key must be named, got {r:?}"),
        }
        // One flipped bit anywhere fails authentication.
        let (key_id, b64) = sealed.strip_prefix(TAG).unwrap().split_once(':').unwrap();
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!(
            "{TAG}{key_id}:{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        );
        assert!(matches!(
            key.open("w_1", &tampered),
            Err(SealError::Open(_))
        ));
        // A key id edited to this gate's own does not help a foreign seal.
        let relabelled =
            other
                .seal("w_1", &proposal())
                .unwrap()
                .replacen(&other.key_id(), &key.key_id(), 1);
        assert!(matches!(
            key.open("w_1", &relabelled),
            Err(SealError::Open(_))
        ));
        assert!(key.open("w_1", "garbage").is_err());
    }

    #[test]
    fn a_seal_written_before_key_ids_still_opens() {
        let key = ActionKey::generate();
        let v2 = key.seal("w_1", &proposal()).unwrap();
        let v1 = v2.replacen(&format!("{TAG}{}:", key.key_id()), TAG_V1, 1);
        assert!(v1.starts_with(TAG_V1));
        assert_eq!(key.open("w_1", &v1).unwrap(), proposal());
        assert!(matches!(
            ActionKey::generate().open("w_1", &v1),
            Err(SealError::Open(_))
        ));
    }

    #[test]
    fn two_seals_differ() {
        let key = ActionKey::generate();
        assert_ne!(
            key.seal("w", &proposal()).unwrap(),
            key.seal("w", &proposal()).unwrap()
        );
    }

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("action.key");
        let (k1, created) = ActionKey::load_or_create(&path).unwrap();
        assert!(created);
        let (k2, created) = ActionKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.key_id(), k2.key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(ActionKey::load_or_create(&path).is_err());
        }
    }
}
