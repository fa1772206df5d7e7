//! Signed checkpoints of the audit trail. The hash chain alone proves
//! nothing to someone who can rewrite the store: a truncated tail, or a
//! trail edited and re-sealed from the edit on, verifies as well as the
//! real one. A checkpoint is an audit entry (`audit.checkpoint`) holding an
//! ed25519 signature over a head of the trail (its `seq` and `hash`), made
//! with a key that lives outside the store. A head exported to somewhere
//! the gate cannot write (another machine, a WORM bucket) is an anchor: a
//! trail that does not contain that exact head, or an anchor whose
//! signature does not verify, is refused by [`verify_anchor`].
//!
//! Everything here but the key file and the [`Checkpointer`] is a pure
//! function over entries, so it runs outside the gate as well.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use recourse_client::AuditEntry;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::{self, AuditDraft};
use crate::store::{Store, StoreError};

/// The audit action of a checkpoint entry.
pub const CHECKPOINT_ACTION: &str = "audit.checkpoint";

/// A head of the trail and a signature over it: what `recourse audit
/// export-head` prints and `recourse audit verify --anchor` checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHead {
    pub seq: i64,
    pub hash: String,
    pub key_id: String,
    /// The ed25519 public key, hex.
    pub public_key: String,
    /// The ed25519 signature over [`head_message`], hex.
    pub signature: String,
}

/// What is signed: a fixed prefix, the sequence number and the hash.
pub fn head_message(seq: i64, hash: &str) -> Vec<u8> {
    format!("recourse audit head v1\n{seq}\n{hash}\n").into_bytes()
}

/// A short name for a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(public: &VerifyingKey) -> String {
    let mut h = Sha256::new();
    h.update(public.as_bytes());
    hex::encode(h.finalize())[..16].to_string()
}

impl SignedHead {
    /// The signature is the key's, over this seq and hash, and the key id
    /// names that key.
    pub fn check_signature(&self) -> Result<(), String> {
        let public: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the public key is not 32 bytes of hex")?;
        let public = VerifyingKey::from_bytes(&public)
            .map_err(|e| format!("the public key is not an ed25519 key: {e}"))?;
        if key_id(&public) != self.key_id {
            return Err(format!(
                "key id {} does not name the public key (its id is {})",
                self.key_id,
                key_id(&public)
            ));
        }
        let signature: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the signature is not 64 bytes of hex")?;
        public
            .verify_strict(
                &head_message(self.seq, &self.hash),
                &Signature::from_bytes(&signature),
            )
            .map_err(|_| {
                format!(
                    "the signature over head {} does not verify with key {}",
                    self.seq, self.key_id
                )
            })
    }

    /// The body of the checkpoint entry that records this head.
    pub fn entry_body(&self) -> Value {
        json!({"key_id": self.key_id, "public_key": self.public_key,
               "covers": {"seq": self.seq, "hash": self.hash},
               "signature": self.signature})
    }

    /// The head a checkpoint entry records, if it is one and parses.
    pub fn from_entry(e: &AuditEntry) -> Option<SignedHead> {
        if e.action != CHECKPOINT_ACTION {
            return None;
        }
        let b = &e.body;
        Some(SignedHead {
            seq: b.get("covers")?.get("seq")?.as_i64()?,
            hash: b.get("covers")?.get("hash")?.as_str()?.to_string(),
            key_id: b.get("key_id")?.as_str()?.to_string(),
            public_key: b.get("public_key")?.as_str()?.to_string(),
            signature: b.get("signature")?.as_str()?.to_string(),
        })
    }
}

/// The gate's signing key.
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.key_id())
    }
}

impl Signer {
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&secret),
        }
    }

    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    pub fn sign_head(&self, seq: i64, hash: &str) -> SignedHead {
        let signature = self.key.sign(&head_message(seq, hash));
        SignedHead {
            seq,
            hash: hash.to_string(),
            key_id: self.key_id(),
            public_key: self.public_key_hex(),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Reads the key at `path` (64 hex digits), or creates one there (mode
    /// 0600) when there is none; true when it was created. A key file that
    /// others may read is refused: whoever reads it can sign a rewritten
    /// trail.
    pub fn load_or_create(path: &Path) -> std::io::Result<(Self, bool)> {
        let (secret, created) = crate::key_file::load_or_create(path, "signing key", || {
            Self::generate().key.to_bytes()
        })?;
        Ok((Self::from_secret(secret), created))
    }
}

/// The newest checkpoint in `entries` whose signature verifies.
pub fn latest_signed_head(entries: &[AuditEntry]) -> Option<SignedHead> {
    entries
        .iter()
        .rev()
        .filter_map(SignedHead::from_entry)
        .find(|h| h.check_signature().is_ok())
}

/// What [`verify_anchor`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorVerification {
    pub ok: bool,
    pub entries: u64,
    pub anchor_seq: i64,
    pub anchor_key_id: String,
    pub problem: Option<String>,
}

/// Checks a trail against an anchor kept outside the gate: the anchor's
/// signature verifies; the chain verifies; the entry at the anchor's seq
/// exists and has the anchor's hash (and, the chain being intact, so does
/// everything before it); every checkpoint in the trail made with the
/// anchor's key verifies and covers an entry that is there, unchanged.
pub fn verify_anchor(entries: &[AuditEntry], anchor: &SignedHead) -> AnchorVerification {
    let result = check_anchor(entries, anchor);
    AnchorVerification {
        ok: result.is_ok(),
        entries: entries.len() as u64,
        anchor_seq: anchor.seq,
        anchor_key_id: anchor.key_id.clone(),
        problem: result.err(),
    }
}

fn check_anchor(entries: &[AuditEntry], anchor: &SignedHead) -> Result<(), String> {
    anchor
        .check_signature()
        .map_err(|e| format!("the anchor: {e}"))?;
    let chain = audit::verify(entries);
    if !chain.ok {
        return Err(chain
            .problem
            .unwrap_or_else(|| "the chain does not verify".into()));
    }
    // The chain verified: entry `seq` stands at index `seq - 1`.
    let Some(at) = usize::try_from(anchor.seq - 1)
        .ok()
        .and_then(|i| entries.get(i))
    else {
        return Err(format!(
            "the trail has {} entries and the anchor covers entry {}: its tail was cut",
            entries.len(),
            anchor.seq
        ));
    };
    if at.hash != anchor.hash {
        return Err(format!(
            "entry {} is not the one the anchor covers (hash {}, anchored {}): the trail was rewritten up to it",
            anchor.seq, at.hash, anchor.hash
        ));
    }
    for e in entries {
        let Some(head) = SignedHead::from_entry(e) else {
            continue;
        };
        if head.key_id != anchor.key_id {
            continue;
        }
        head.check_signature()
            .map_err(|p| format!("checkpoint entry {}: {p}", e.seq))?;
        let covered = usize::try_from(head.seq - 1)
            .ok()
            .and_then(|i| entries.get(i));
        if covered.map(|c| c.hash.as_str()) != Some(head.hash.as_str()) {
            return Err(format!(
                "checkpoint entry {} covers entry {} with a hash the trail does not have",
                e.seq, head.seq
            ));
        }
    }
    Ok(())
}

/// Writes signed checkpoints into a running gate's trail: every
/// `every_entries` entries, or every `every` when anything was added, and
/// once more at shutdown ([`Checkpointer::checkpoint`]). It signs only a
/// trail it has checked: the whole chain at start, then each stretch since
/// the head it signed last, linked to that head.
pub struct Checkpointer {
    store: Arc<dyn Store>,
    signer: Signer,
    every_entries: i64,
    every: Duration,
    state: tokio::sync::Mutex<State>,
}

struct State {
    /// The head checked last: (seq, hash).
    checked: (i64, String),
    at: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the audit trail does not verify, so it is not signed: {0}")]
    Broken(String),
}

/// The whole trail, oldest first.
pub async fn read_trail(store: &dyn Store) -> Result<Vec<AuditEntry>, StoreError> {
    read_after(store, 0).await
}

async fn read_after(store: &dyn Store, after: i64) -> Result<Vec<AuditEntry>, StoreError> {
    let mut out = Vec::new();
    let mut after = after;
    loop {
        let page = store.audit(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        out.extend(page);
    }
    Ok(out)
}

/// Checks that `entries` continue a verified chain whose last entry is
/// `(seq, hash)`.
pub fn verify_continuation(seq: i64, hash: &str, entries: &[AuditEntry]) -> Result<(), String> {
    let (mut seq, mut prev) = (seq, hash.to_string());
    for e in entries {
        if e.seq != seq + 1 || e.prev_hash != prev {
            return Err(format!(
                "entry {} does not follow entry {seq} as checked before",
                e.seq
            ));
        }
        let actual = audit::entry_hash(
            e.seq,
            e.at,
            &e.actor,
            &e.action,
            e.write_id.as_deref(),
            &e.body,
            &e.prev_hash,
        );
        if actual != e.hash {
            return Err(format!("entry {} was changed after it was written", e.seq));
        }
        seq = e.seq;
        prev = e.hash.clone();
    }
    Ok(())
}

impl Checkpointer {
    /// Checks the whole trail (the chain, and every checkpoint in it made
    /// with this key) before it signs anything.
    pub async fn start(
        store: Arc<dyn Store>,
        signer: Signer,
        every_entries: i64,
        every: Duration,
    ) -> Result<Self, CheckpointError> {
        let entries = read_after(store.as_ref(), 0).await?;
        let head = match latest_own_head(&entries, &signer) {
            Some(anchor) => {
                let v = verify_anchor(&entries, &anchor);
                if !v.ok {
                    return Err(CheckpointError::Broken(v.problem.unwrap_or_default()));
                }
                entries.last().map(|e| (e.seq, e.hash.clone()))
            }
            None => {
                let v = audit::verify(&entries);
                if !v.ok {
                    return Err(CheckpointError::Broken(v.problem.unwrap_or_default()));
                }
                entries.last().map(|e| (e.seq, e.hash.clone()))
            }
        };
        Ok(Self {
            store,
            signer,
            every_entries: every_entries.max(1),
            every,
            state: tokio::sync::Mutex::new(State {
                checked: head.unwrap_or((0, audit::GENESIS.to_string())),
                at: Instant::now(),
            }),
        })
    }

    pub fn key_id(&self) -> String {
        self.signer.key_id()
    }

    /// A checkpoint if one is due; the head it signed.
    pub async fn tick(&self) -> Result<Option<SignedHead>, CheckpointError> {
        let due = {
            let state = self.state.lock().await;
            let Some(newest) = self.store.audit_newest(None, 1).await?.pop() else {
                return Ok(None);
            };
            let added = newest.seq - state.checked.0;
            added >= self.every_entries || (added > 0 && state.at.elapsed() >= self.every)
        };
        if due {
            self.checkpoint().await
        } else {
            Ok(None)
        }
    }

    /// Signs the current head now, unless the newest entry is a checkpoint
    /// already.
    pub async fn checkpoint(&self) -> Result<Option<SignedHead>, CheckpointError> {
        let mut state = self.state.lock().await;
        let (seq, hash) = state.checked.clone();
        let entries = read_after(self.store.as_ref(), seq).await?;
        verify_continuation(seq, &hash, &entries).map_err(CheckpointError::Broken)?;
        state.at = Instant::now();
        if let Some(newest) = entries.last() {
            state.checked = (newest.seq, newest.hash.clone());
        }
        let newest = match entries.last() {
            Some(e) => e.clone(),
            None => match self.store.audit_newest(None, 1).await?.pop() {
                Some(e) => e,
                None => return Ok(None),
            },
        };
        if (newest.seq, newest.hash.as_str()) != (state.checked.0, state.checked.1.as_str()) {
            return Err(CheckpointError::Broken(format!(
                "entry {} is not the one checked before",
                newest.seq
            )));
        }
        // A checkpoint as the newest entry: everything before it is signed.
        if newest.action == CHECKPOINT_ACTION {
            return Ok(None);
        }
        let head = self.signer.sign_head(newest.seq, &newest.hash);
        self.store
            .append_audit(AuditDraft::new(
                "gate",
                CHECKPOINT_ACTION,
                None,
                head.entry_body(),
            ))
            .await?;
        Ok(Some(head))
    }
}

fn latest_own_head(entries: &[AuditEntry], signer: &Signer) -> Option<SignedHead> {
    let id = signer.key_id();
    entries
        .iter()
        .rev()
        .filter_map(SignedHead::from_entry)
        .find(|h| h.key_id == id)
}

#[cfg(test)]
mod tests;
