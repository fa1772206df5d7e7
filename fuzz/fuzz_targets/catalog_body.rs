//! The body of `POST /v1/catalog`: arbitrary bytes through the gate's own
//! check of an upsert, `recourse_gate::api::read_catalog_body` (JSON as the
//! handler's `Body` extractor reads it, then `check_upsert`, which the
//! handler runs), against a catalog the gate already has: the seed cases'
//! catalogs merged (`assets/scenarios/seed_*.json`).
//!
//! Asserted:
//! - bad input is a 400 that names its field, never another status;
//! - an accepted batch has a bearer on every resource (the contract's
//!   default for what a person writes) and round-trips through the same
//!   check;
//! - what the store makes of it (`upsert_catalog` with replace, as the
//!   handler calls it) is a catalog the gate can load: an accepted upsert
//!   never leaves a stored catalog that every later request would fail on.
#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use recourse_core::{Catalog, CatalogGraph, Scenario};
use recourse_gate::api::read_catalog_body;
use recourse_gate::store::CatalogStore;
use recourse_gate::MemoryStore;

const SEEDS: &[&str] = &[
    include_str!("../../assets/scenarios/seed_marketplace_closure.json"),
    include_str!("../../assets/scenarios/seed_wrong_directory.json"),
    include_str!("../../assets/scenarios/seed_writable_prompts.json"),
    include_str!("../../assets/scenarios/seed_loan_origination.json"),
];

/// The catalog the gate has: the seeds' catalogs, one entry per id.
fn current() -> &'static Catalog {
    static CURRENT: OnceLock<Catalog> = OnceLock::new();
    CURRENT.get_or_init(|| {
        let mut all = Catalog::default();
        let (mut ids, mut ends) = (HashSet::new(), HashSet::new());
        for seed in SEEDS {
            let s = Scenario::parse(seed.as_bytes()).expect("a seed scenario reads");
            let c = s.catalog.with_default_bearers();
            for r in c.resources {
                if ids.insert(r.id.clone()) {
                    all.resources.push(r);
                }
            }
            for e in c.edges {
                if ends.insert((e.from.clone(), e.to.clone())) {
                    all.edges.push(e);
                }
            }
        }
        CatalogGraph::new(all.clone()).expect("the seeds' catalog is valid");
        all
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let current = current();
    let add = match read_catalog_body(data, current) {
        Ok(add) => add,
        Err(e) => {
            assert_eq!(e.status(), 400, "not a 400: {e}");
            assert!(e.field().is_some_and(|f| !f.is_empty()), "no field: {e}");
            return;
        }
    };
    assert!(
        add.resources.iter().all(|r| r.bearer.is_some()),
        "an accepted resource without a bearer"
    );
    let written = serde_json::to_vec(&add).expect("a catalog serializes");
    let again = read_catalog_body(&written, current).expect("an accepted batch is accepted again");
    assert_eq!(again, add, "the batch does not round-trip");

    let stored = runtime().block_on(async {
        let store = MemoryStore::new();
        store
            .upsert_catalog(current, true, None)
            .await
            .expect("the seeds store");
        store
            .upsert_catalog(&add, true, None)
            .await
            .expect("an accepted batch stores");
        store.catalog().await.expect("the catalog reads").0
    });
    if let Err(e) = CatalogGraph::new(stored) {
        panic!("an accepted upsert left a catalog the gate cannot load: {e}");
    }
});
