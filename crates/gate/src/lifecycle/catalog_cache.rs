//! The catalog graph, cached by the store's catalog version.
//!
//! The cache may be extended in memory after this gate's own addition only
//! when the store says the addition moved the version from exactly the
//! cached one, by one, and only with what the store actually applied: a
//! graph missing someone else's edge would shrink a blast radius.

use std::sync::Arc;

use recourse_core::{Catalog, CatalogGraph};

use super::Gate;
use crate::error::GateError;
use crate::store::{CatalogUpsert, StoreError};

impl Gate {
    /// The catalog as a graph, from cache while the store's version holds.
    pub async fn catalog_graph(&self) -> Result<Arc<CatalogGraph>, GateError> {
        let version = self.store.catalog_version().await?;
        if let Ok(guard) = self.catalog.lock() {
            if let Some((v, g)) = guard.as_ref() {
                if *v == version {
                    return Ok(g.clone());
                }
            }
        }
        let (catalog, version) = self.store.catalog().await?;
        let graph = Arc::new(CatalogGraph::new(catalog).map_err(|e| {
            GateError::Store(StoreError::Corrupt(format!(
                "stored catalog is invalid: {e}"
            )))
        })?);
        if let Ok(mut guard) = self.catalog.lock() {
            // Keep the newer of what is cached and what was read.
            if guard.as_ref().is_none_or(|(v, _)| *v < version) {
                *guard = Some((version, graph.clone()));
            }
        }
        Ok(graph)
    }

    /// The graph after an upsert this gate made: the cached graph plus what
    /// was applied, when the upsert started from the cached version; else
    /// read afresh.
    pub(crate) async fn graph_after(
        &self,
        base: &Arc<CatalogGraph>,
        upsert: &CatalogUpsert,
    ) -> Result<Arc<CatalogGraph>, GateError> {
        if upsert.after == upsert.before {
            // Nothing changed in the store; `base` may still be older than
            // the store's current version, so ask the cache.
            return self.catalog_graph().await;
        }
        if let Some(g) = self.extend_cached(base, upsert) {
            return Ok(g);
        }
        self.catalog_graph().await
    }

    fn extend_cached(
        &self,
        base: &Arc<CatalogGraph>,
        upsert: &CatalogUpsert,
    ) -> Option<Arc<CatalogGraph>> {
        let mut guard = self.catalog.lock().ok()?;
        let (v, cached) = guard.as_ref()?;
        if *v != upsert.before || upsert.after != upsert.before + 1 || !Arc::ptr_eq(cached, base) {
            return None;
        }
        let mut catalog: Catalog = base.catalog().clone();
        catalog
            .resources
            .extend(upsert.applied.resources.iter().cloned());
        catalog.edges.extend(upsert.applied.edges.iter().cloned());
        let graph = Arc::new(CatalogGraph::new(catalog).ok()?);
        *guard = Some((upsert.after, graph.clone()));
        Some(graph)
    }
}
