//! The catalog graph, cached by the store's catalog version and grown in
//! place by this gate's own additions.
//!
//! The staleness guard: before a decision the cache is made at least as new
//! as the store's version read then ([`Gate::refresh_catalog`]); it is read
//! afresh (the whole catalog) when the store has moved past it. The cached
//! graph is extended in memory after this gate's own addition only when the
//! store says the addition moved the version from exactly the cached one, by
//! one, and only with what the store actually applied: a graph missing
//! someone else's edge would shrink a blast radius. This gate's additions go
//! to the store and into the cache one at a time, in the store's order, so
//! concurrent submissions extend the cache instead of reading the whole
//! catalog again.
//!
//! Extending costs O(what was added) ([`CatalogGraph::extend`]), and the
//! graph is never copied: decisions read it under a read lock held only
//! while they run (no `await` in between), and an extension takes the write
//! lock for the few microseconds it needs.

use std::sync::RwLock;

use recourse_core::CatalogGraph;

use super::Gate;
use crate::audit::AuditDraft;
use crate::error::GateError;
use crate::store::{CatalogUpsert, StoreError, StoreFault};

/// The cached graph and the store's catalog version it matches.
struct Cached {
    version: i64,
    graph: CatalogGraph,
}

#[derive(Default)]
pub(crate) struct CatalogCache {
    cached: RwLock<Option<Cached>>,
    /// Held from this gate's catalog upsert to the extension of the cache,
    /// so that its additions reach the cache in the order of the store's
    /// versions.
    adding: tokio::sync::Mutex<()>,
}

impl CatalogCache {
    pub(super) fn version(&self) -> Option<i64> {
        self.cached.read().ok()?.as_ref().map(|c| c.version)
    }

    /// `f` over the cached graph; `None` when there is none.
    fn read<R>(&self, f: impl FnOnce(&CatalogGraph) -> R) -> Option<R> {
        let guard = self.cached.read().ok()?;
        guard.as_ref().map(|c| f(&c.graph))
    }

    /// Keeps the newer of what is cached and `graph`.
    fn install(&self, version: i64, graph: CatalogGraph) {
        let mut guard = match self.cached.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if guard.as_ref().is_none_or(|c| c.version < version) {
            *guard = Some(Cached { version, graph });
        }
    }

    /// Extends the cached graph with what `upsert` applied, when it moved
    /// the store from exactly the cached version by one. False when it did
    /// not (the caller reads the store afresh).
    fn extend(&self, upsert: &CatalogUpsert) -> bool {
        let mut guard = match self.cached.write() {
            Ok(g) => g,
            // A panic under the lock may have left a half-built graph.
            Err(poisoned) => {
                let mut g = poisoned.into_inner();
                *g = None;
                return false;
            }
        };
        let Some(cached) = guard.as_mut() else {
            return false;
        };
        if cached.version != upsert.before || upsert.after != upsert.before + 1 {
            return false;
        }
        match cached.graph.extend(upsert.applied.clone()) {
            Ok(()) => {
                cached.version = upsert.after;
                true
            }
            Err(e) => {
                // The store took something the graph cannot: read it afresh
                // (which reports the stored catalog as invalid).
                tracing::warn!("catalog addition does not fit the cached graph: {e}");
                *guard = None;
                false
            }
        }
    }
}

impl Gate {
    /// Makes the cached graph at least as new as the store's catalog now,
    /// reading the whole catalog only when the store has moved past it.
    pub(crate) async fn refresh_catalog(&self) -> Result<(), GateError> {
        let version = self.store.catalog_version().await?;
        if self.catalog.version().is_some_and(|v| v >= version) {
            return Ok(());
        }
        let (catalog, version) = self.store.catalog().await?;
        let graph = CatalogGraph::new(catalog).map_err(|e| {
            GateError::Store(StoreError::Corrupt(format!(
                "stored catalog is invalid: {e}"
            )))
        })?;
        self.catalog.install(version, graph);
        Ok(())
    }

    /// `f` over the catalog graph, made as new as the store's first.
    pub async fn with_catalog<R>(
        &self,
        f: impl FnOnce(&CatalogGraph) -> R,
    ) -> Result<R, GateError> {
        self.refresh_catalog().await?;
        self.read_catalog(f).await
    }

    /// `f` over the cached graph as it is (refreshed first only if there is
    /// none): for a decision whose caller refreshed the cache already.
    pub(crate) async fn read_catalog<R>(
        &self,
        f: impl FnOnce(&CatalogGraph) -> R,
    ) -> Result<R, GateError> {
        if self.catalog.version().is_none() {
            self.refresh_catalog().await?;
        }
        // Only a failed extension empties the cache after a refresh, and
        // that refresh then reports why.
        self.catalog.read(f).ok_or_else(|| {
            GateError::Store(StoreError::Corrupt(
                "the catalog cache was reset while being read; try again".into(),
            ))
        })
    }

    /// Adds what a connector discovered to the store (with its audit
    /// entry) and to the cached graph.
    pub(crate) async fn add_discovered(
        &self,
        additions: &recourse_core::Catalog,
        audit: AuditDraft,
    ) -> Result<(), GateError> {
        // Bounded like every wait on the store: while the store does not
        // answer, each addition holds this lock for up to the store
        // timeout, and without a bound the submissions queued behind it
        // would each wait for all those before them (sixteen at once: the
        // last one sixteen timeouts).
        let wait = self.store.timeout();
        let _in_order = tokio::time::timeout(wait, self.catalog.adding.lock())
            .await
            .map_err(|_| {
                GateError::from(StoreError::Unavailable(
                    StoreFault::Timeout,
                    format!(
                        "waited {} ms for this gate's catalog additions before this one",
                        wait.as_millis()
                    ),
                ))
            })?;
        let upsert = self
            .store
            .upsert_catalog(additions, false, Some(audit))
            .await?;
        self.graph_after(&upsert).await
    }

    /// Brings the cache up to date after an upsert this gate made: extended
    /// in place with what was applied when the upsert started from the
    /// cached version; else read afresh.
    pub(crate) async fn graph_after(&self, upsert: &CatalogUpsert) -> Result<(), GateError> {
        // When nothing changed in the store, the cache may still be older
        // than the store's current version: the refresh asks.
        if upsert.after != upsert.before && self.catalog.extend(upsert) {
            return Ok(());
        }
        self.refresh_catalog().await
    }
}
