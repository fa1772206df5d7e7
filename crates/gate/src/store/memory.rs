//! The in-process store, for tests: the same semantics as [`SqliteStore`]
//! (idempotency, compare-and-set, claims, the audit chain, a freeze that
//! fails closed) over plain collections behind one mutex, so a test of the
//! lifecycle needs no file and can plant states a running gate never would.
//!
//! Every operation takes the lock, does its work and lets go without an
//! await in between: one operation is one transaction, and nothing here can
//! interleave with another.
//!
//! [`SqliteStore`]: super::SqliteStore

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use recourse_client::{AuditEntry, FreezeState, ModeState, WriteRecord, WriteStatus, WriteSummary};
use recourse_core::{Catalog, Edge, Resource};

use super::{
    begins_execution, decode_freeze, decode_mode, frozen, why_not_stored, AuditStore, Cas,
    CatalogStore, CatalogUpsert, Claimed, GateStateStore, Inserted, StoreError, TokenRow,
    TokenStore, WriteFilter, WriteStore,
};
use crate::audit::{self, AuditDraft};

/// The in-process store. Cheap to create; everything is lost with it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// How often the whole catalog was read (tests check it is not per write).
    catalog_reads: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, Default)]
struct Inner {
    tokens: Vec<TokenRow>,
    /// Resources and edges in the order they were first stored, as SQLite
    /// returns them (by rowid): an overwrite keeps the place.
    resources: Vec<Resource>,
    resource_at: HashMap<String, usize>,
    edges: Vec<Edge>,
    edge_at: HashMap<(String, String), usize>,
    catalog_version: i64,
    /// In insertion order, so ties in the orderings below break the same
    /// way every run.
    writes: Vec<StoredWrite>,
    write_at: HashMap<String, usize>,
    audit: Vec<AuditEntry>,
    /// Kept as the JSON text SQLite keeps, so that a test can plant one that
    /// does not decode and see the switch fail closed.
    freeze: Option<String>,
    mode: Option<String>,
}

/// A write as the `writes` table holds it: the columns set once at insert
/// (agent, idempotency key, creation time) are kept apart from the record,
/// as SQLite's `UPDATE` leaves them alone too.
#[derive(Debug, Clone)]
struct StoredWrite {
    agent: String,
    idempotency_key: Option<String>,
    created_at: DateTime<Utc>,
    record: WriteRecord,
    version: i64,
    claim_owner: Option<String>,
    claim_until: Option<DateTime<Utc>>,
    /// The fencing token of the last claim taken (0: never claimed).
    fence: i64,
}

impl StoredWrite {
    fn in_flight(&self) -> bool {
        matches!(
            self.record.status,
            WriteStatus::Approved | WriteStatus::Executing | WriteStatus::RollingBack
        )
    }

    /// Nobody holds it at `now`: no lease, or a lapsed one (or a backoff
    /// that has passed).
    fn free_at(&self, now: DateTime<Utc>) -> bool {
        self.claim_until
            .is_none_or(|until| micros(until) < micros(now))
    }
}

/// SQLite keeps timestamps as text with microseconds and compares that
/// text; comparing truncated times here gives the same answers at the edges.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// SQLite's `LIMIT`: a negative limit means none.
fn limited<T>(items: impl Iterator<Item = T>, limit: i64) -> Vec<T> {
    match usize::try_from(limit) {
        Ok(n) => items.take(n).collect(),
        Err(_) => items.collect(),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Inner {
    /// Seals the next entry of the chain; the caller has made its change in
    /// the same critical section, so the two are one transaction.
    fn append(&mut self, draft: AuditDraft) -> AuditEntry {
        let (seq, prev) = match self.audit.last() {
            Some(last) => (last.seq + 1, last.hash.clone()),
            None => (1, audit::GENESIS.to_string()),
        };
        let entry = audit::seal(draft, seq, Utc::now(), &prev);
        self.audit.push(entry.clone());
        entry
    }

    /// The agent's pending bytes, counted as SQLite counts them: each
    /// pending record's JSON as it was last stored.
    fn pending_bytes(&self, agent: &str) -> Result<u64, StoreError> {
        let mut sum = 0u64;
        for w in &self.writes {
            if w.agent == agent && super::PENDING.contains(&w.record.status) {
                sum = sum.saturating_add(super::stored_bytes(&w.record)?);
            }
        }
        Ok(sum)
    }

    fn write_mut(&mut self, id: &str) -> Option<&mut StoredWrite> {
        let i = *self.write_at.get(id)?;
        self.writes.get_mut(i)
    }

    /// The writes a filter selects, newest first (by creation time; ties in
    /// insertion order).
    fn filtered(&self, filter: &WriteFilter) -> Vec<&StoredWrite> {
        let mut out: Vec<&StoredWrite> = self
            .writes
            .iter()
            .filter(|w| filter.status.is_none_or(|s| w.record.status == s))
            .filter(|w| filter.agent.as_deref().is_none_or(|a| w.agent == a))
            .collect();
        out.sort_by_key(|w| std::cmp::Reverse(micros(w.created_at)));
        limited(out.into_iter(), filter.limit.unwrap_or(-1))
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How often [`CatalogStore::catalog`] read the whole catalog.
    pub fn catalog_reads(&self) -> usize {
        self.catalog_reads
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A panic while the lock was held may have left a change half made:
    /// refuse to go on rather than answer from it.
    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner.lock().map_err(|_| {
            StoreError::Corrupt("the in-memory store was poisoned by a panic mid-change".into())
        })
    }

    /// For tests of fail-closed behaviour: stores `raw` as the freeze state
    /// as-is, so that [`GateStateStore::freeze`] finds a value that may not
    /// decode. No audit entry.
    pub fn plant_raw_freeze(&self, raw: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.freeze = Some(raw.to_string());
    }

    /// For tests: inserts `record`, or replaces the stored write with its
    /// id, exactly as given, with no checks and no audit entry. The version
    /// moves (1 for a new write), so a compare-and-set from before fails as
    /// it would after any change; a claim on it is kept.
    pub fn put_write_raw(&self, record: WriteRecord) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let stored = |record: WriteRecord, version, claim_owner, claim_until, fence| StoredWrite {
            agent: record.agent.clone(),
            idempotency_key: record.proposal.idempotency_key.clone(),
            created_at: record.created_at,
            record,
            version,
            claim_owner,
            claim_until,
            fence,
        };
        match inner.write_mut(&record.id) {
            Some(w) => {
                *w = stored(
                    record,
                    w.version + 1,
                    w.claim_owner.take(),
                    w.claim_until,
                    w.fence,
                );
            }
            None => {
                let i = inner.writes.len();
                inner.write_at.insert(record.id.clone(), i);
                inner.writes.push(stored(record, 1, None, None, 0));
            }
        }
    }

    /// One insert, under `quota` when given: as SQLite's, in one critical
    /// section.
    fn insert(
        &self,
        record: &WriteRecord,
        audit: AuditDraft,
        quota: Option<u64>,
    ) -> Result<Inserted, StoreError> {
        let mut inner = self.lock()?;
        if let Some(key) = &record.proposal.idempotency_key {
            let existing = inner.writes.iter().find(|w| {
                w.agent == record.agent && w.idempotency_key.as_deref() == Some(key.as_str())
            });
            if let Some(w) = existing {
                return Ok(Inserted::Existing(Box::new(w.record.clone())));
            }
        }
        // `id` is the primary key: SQLite refuses a second one, and the
        // group commit answers that operation with an error.
        if inner.write_at.contains_key(&record.id) {
            return Err(StoreError::Commit(format!(
                "a write with id `{}` exists already",
                record.id
            )));
        }
        if record.status == WriteStatus::Executing && frozen(inner.freeze.as_deref()) {
            return Err(StoreError::Frozen);
        }
        if let Some(max) = quota {
            let pending = inner.pending_bytes(&record.agent)?;
            if pending.saturating_add(super::stored_bytes(record)?) > max {
                return Err(StoreError::OverQuota {
                    pending_bytes: pending,
                });
            }
        }
        let i = inner.writes.len();
        inner.write_at.insert(record.id.clone(), i);
        inner.writes.push(StoredWrite {
            agent: record.agent.clone(),
            idempotency_key: record.proposal.idempotency_key.clone(),
            created_at: record.created_at,
            record: record.clone(),
            version: 1,
            claim_owner: None,
            claim_until: None,
            fence: 0,
        });
        inner.append(audit);
        Ok(Inserted::New)
    }

    /// For tests: the fencing token of a write's last claim.
    pub fn fence_of(&self, id: &str) -> Option<i64> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let i = *inner.write_at.get(id)?;
        inner.writes.get(i).map(|w| w.fence)
    }

    /// For tests: the claim on a write as stored, `(owner, until)`; `None`
    /// when there is no such write. An owner of `None` with an `until` is a
    /// backoff.
    pub fn claim_of(&self, id: &str) -> Option<(Option<String>, Option<DateTime<Utc>>)> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let i = *inner.write_at.get(id)?;
        inner
            .writes
            .get(i)
            .map(|w| (w.claim_owner.clone(), w.claim_until))
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn create_token(&self, row: &TokenRow, audit: AuditDraft) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner.tokens.iter().any(|t| t.name == row.name) {
            return Err(StoreError::DuplicateToken(row.name.clone()));
        }
        // The `hash` column is UNIQUE: SQLite refuses the insert, and so
        // does this, storing nothing.
        if inner.tokens.iter().any(|t| t.hash == row.hash) {
            return Err(StoreError::Commit(format!(
                "a token with the hash of `{}` exists already",
                row.name
            )));
        }
        inner.tokens.push(row.clone());
        inner.append(audit);
        Ok(())
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let inner = self.lock()?;
        Ok(inner.tokens.iter().find(|t| t.hash == hash).cloned())
    }

    async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let inner = self.lock()?;
        let mut out = inner.tokens.clone();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn revoke_token(
        &self,
        name: &str,
        at: DateTime<Utc>,
        audit: AuditDraft,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let Some(t) = inner
            .tokens
            .iter_mut()
            .find(|t| t.name == name && t.revoked_at.is_none())
        else {
            return Ok(false);
        };
        t.revoked_at = Some(at);
        inner.append(audit);
        Ok(true)
    }
}

#[async_trait]
impl CatalogStore for MemoryStore {
    async fn catalog(&self) -> Result<(Catalog, i64), StoreError> {
        self.catalog_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let inner = self.lock()?;
        Ok((
            Catalog {
                resources: inner.resources.clone(),
                edges: inner.edges.clone(),
            },
            inner.catalog_version,
        ))
    }

    async fn catalog_version(&self) -> Result<i64, StoreError> {
        Ok(self.lock()?.catalog_version)
    }

    async fn upsert_catalog(
        &self,
        add: &Catalog,
        replace: bool,
        audit: Option<AuditDraft>,
    ) -> Result<CatalogUpsert, StoreError> {
        let mut inner = self.lock()?;
        let inner = &mut *inner;
        let before = inner.catalog_version;
        let mut applied = Catalog::default();
        // As `ON CONFLICT DO UPDATE` / `DO NOTHING`: an overwrite counts as
        // stored even when the value is the same, a kept one does not.
        for r in &add.resources {
            match inner.resource_at.get(&r.id) {
                Some(&i) if replace => {
                    if let Some(slot) = inner.resources.get_mut(i) {
                        *slot = r.clone();
                    }
                    applied.resources.push(r.clone());
                }
                Some(_) => {}
                None => {
                    inner
                        .resource_at
                        .insert(r.id.clone(), inner.resources.len());
                    inner.resources.push(r.clone());
                    applied.resources.push(r.clone());
                }
            }
        }
        for e in &add.edges {
            let key = (e.from.clone(), e.to.clone());
            match inner.edge_at.get(&key) {
                Some(&i) if replace => {
                    if let Some(slot) = inner.edges.get_mut(i) {
                        *slot = e.clone();
                    }
                    applied.edges.push(e.clone());
                }
                Some(_) => {}
                None => {
                    inner.edge_at.insert(key, inner.edges.len());
                    inner.edges.push(e.clone());
                    applied.edges.push(e.clone());
                }
            }
        }
        let changed = !applied.resources.is_empty() || !applied.edges.is_empty();
        if changed {
            inner.catalog_version += 1;
            if let Some(a) = audit {
                inner.append(a);
            }
        }
        Ok(CatalogUpsert {
            before,
            after: inner.catalog_version,
            applied,
        })
    }

    async fn replace_catalog(
        &self,
        catalog: &Catalog,
        expected: i64,
        audit: AuditDraft,
    ) -> Result<Option<i64>, StoreError> {
        let mut inner = self.lock()?;
        let inner = &mut *inner;
        if inner.catalog_version != expected {
            return Ok(None);
        }
        inner.resources = catalog.resources.clone();
        inner.edges = catalog.edges.clone();
        inner.resource_at = (inner.resources.iter().enumerate())
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        inner.edge_at = (inner.edges.iter().enumerate())
            .map(|(i, e)| ((e.from.clone(), e.to.clone()), i))
            .collect();
        inner.catalog_version += 1;
        inner.append(audit);
        Ok(Some(inner.catalog_version))
    }
}

#[async_trait]
impl WriteStore for MemoryStore {
    async fn insert_write(
        &self,
        record: &WriteRecord,
        audit: AuditDraft,
    ) -> Result<Inserted, StoreError> {
        self.insert(record, audit, None)
    }

    async fn insert_write_within(
        &self,
        record: &WriteRecord,
        audit: AuditDraft,
        max_pending_bytes: u64,
    ) -> Result<Inserted, StoreError> {
        self.insert(record, audit, Some(max_pending_bytes))
    }

    async fn pending_bytes(&self, agent: &str) -> Result<u64, StoreError> {
        self.lock()?.pending_bytes(agent)
    }

    async fn write(&self, id: &str) -> Result<Option<(WriteRecord, i64)>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .write_at
            .get(id)
            .and_then(|&i| inner.writes.get(i))
            .map(|w| (w.record.clone(), w.version)))
    }

    async fn write_by_key(
        &self,
        agent: &str,
        key: &str,
    ) -> Result<Option<WriteRecord>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .writes
            .iter()
            .find(|w| w.agent == agent && w.idempotency_key.as_deref() == Some(key))
            .map(|w| w.record.clone()))
    }

    async fn summaries(&self, filter: &WriteFilter) -> Result<Vec<WriteSummary>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .filtered(filter)
            .into_iter()
            .map(|w| w.record.summary())
            .collect())
    }

    async fn writes(&self, filter: &WriteFilter) -> Result<Vec<WriteRecord>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .filtered(filter)
            .into_iter()
            .map(|w| w.record.clone())
            .collect())
    }

    async fn update_write_under(
        &self,
        record: &WriteRecord,
        expected: i64,
        fence: Option<i64>,
        audit: AuditDraft,
    ) -> Result<Cas, StoreError> {
        let mut inner = self.lock()?;
        let frozen_now = frozen(inner.freeze.as_deref());
        let Some(w) = inner.write_mut(&record.id) else {
            return Ok(Cas::Moved);
        };
        let stops = frozen_now && begins_execution(w.record.status, record.status);
        if w.version != expected || fence.is_some_and(|f| f != w.fence) || stops {
            let row = Some((w.version, w.fence, Some(w.record.status)));
            return Ok(why_not_stored(
                row,
                expected,
                fence,
                frozen_now,
                record.status,
            ));
        }
        // Agent, key and creation time stay as inserted; the claim is not
        // part of the version and stays while the write is in flight. Out of
        // flight it goes with the move: a claim left on a settled write (its
        // gate died between the move and the release) would refuse the next
        // claim, a rollback's, until its lease ran out. The fencing token
        // stays for good.
        w.record = record.clone();
        w.version += 1;
        if !record.status.in_flight() {
            w.claim_owner = None;
            w.claim_until = None;
        }
        inner.append(audit);
        Ok(Cas::Done)
    }

    async fn counts(&self) -> Result<Vec<(WriteStatus, i64)>, StoreError> {
        let inner = self.lock()?;
        // Keyed by the stored text, as `GROUP BY status` orders its groups.
        let mut counts: BTreeMap<&'static str, (WriteStatus, i64)> = BTreeMap::new();
        for w in &inner.writes {
            let s = w.record.status;
            counts.entry(s.as_str()).or_insert((s, 0)).1 += 1;
        }
        Ok(counts.into_values().collect())
    }

    async fn claim(
        &self,
        id: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claimed, StoreError> {
        let mut inner = self.lock()?;
        let frozen_now = frozen(inner.freeze.as_deref());
        let Some(w) = inner.write_mut(id) else {
            return Ok(Claimed::Refused);
        };
        if !w.in_flight() || !w.free_at(now) {
            return Ok(Claimed::Refused);
        }
        if frozen_now && w.record.status == WriteStatus::Approved {
            return Ok(Claimed::Frozen);
        }
        w.claim_owner = Some(owner.to_string());
        w.claim_until = Some(micros(until));
        w.fence += 1;
        Ok(Claimed::Taken(w.fence))
    }

    async fn renew(
        &self,
        id: &str,
        owner: &str,
        token: i64,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let Some(w) = inner.write_mut(id) else {
            return Ok(false);
        };
        if !w.in_flight() || w.fence != token || w.claim_owner.as_deref() != Some(owner) {
            return Ok(false);
        }
        w.claim_until = Some(micros(until));
        Ok(true)
    }

    async fn release(
        &self,
        id: &str,
        owner: &str,
        token: i64,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if let Some(w) = inner.write_mut(id) {
            if w.claim_owner.as_deref() == Some(owner) && w.fence == token {
                w.claim_owner = None;
                w.claim_until = retry_at.map(micros);
            }
        }
        Ok(())
    }

    async fn claimable(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>, StoreError> {
        let inner = self.lock()?;
        // While frozen, approved writes cannot be claimed: left out.
        let frozen_now = frozen(inner.freeze.as_deref());
        let mut free: Vec<&StoredWrite> = inner
            .writes
            .iter()
            .filter(|w| w.in_flight() && w.free_at(now))
            .filter(|w| !(frozen_now && w.record.status == WriteStatus::Approved))
            .collect();
        free.sort_by_key(|w| micros(w.record.updated_at));
        Ok(limited(
            free.into_iter().map(|w| w.record.id.clone()),
            limit,
        ))
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, audit: AuditDraft) -> Result<AuditEntry, StoreError> {
        Ok(self.lock()?.append(audit))
    }

    async fn audit(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let inner = self.lock()?;
        Ok(limited(
            inner.audit.iter().filter(|e| e.seq > after_seq).cloned(),
            limit,
        ))
    }

    async fn audit_newest(
        &self,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let inner = self.lock()?;
        let before = before_seq.unwrap_or(i64::MAX);
        Ok(limited(
            inner.audit.iter().rev().filter(|e| e.seq < before).cloned(),
            limit,
        ))
    }

    async fn audit_entry_for(
        &self,
        write_id: &str,
        action: &str,
    ) -> Result<Option<AuditEntry>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .audit
            .iter()
            .find(|e| e.write_id.as_deref() == Some(write_id) && e.action == action)
            .cloned())
    }
}

#[async_trait]
impl GateStateStore for MemoryStore {
    async fn freeze(&self) -> Result<FreezeState, StoreError> {
        let inner = self.lock()?;
        decode_freeze(inner.freeze.as_deref())
    }

    async fn set_freeze(&self, state: &FreezeState, audit: AuditDraft) -> Result<(), StoreError> {
        let raw = to_json(state)?;
        let mut inner = self.lock()?;
        inner.freeze = Some(raw);
        inner.append(audit);
        Ok(())
    }

    async fn mode(&self) -> Result<ModeState, StoreError> {
        let inner = self.lock()?;
        decode_mode(inner.mode.as_deref())
    }

    async fn set_mode(&self, state: &ModeState, audit: AuditDraft) -> Result<(), StoreError> {
        let raw = to_json(state)?;
        let mut inner = self.lock()?;
        inner.mode = Some(raw);
        inner.append(audit);
        Ok(())
    }
}
