//! A synthetic institution for the benchmarks: 1,000,000 resources and
//! 2,000,000 declared edges, and a write whose blast radius holds about
//! 100,000 of them. Shared by `benches/decide.rs` and
//! `examples/catalog_memory.rs`; deterministic, so every run measures the
//! same graph.

use recourse_core::catalog::{Bearer, Catalog, Edge, Reach, Resource};
use recourse_core::evidence::{EvidenceKind, Observation, Observations};
use recourse_core::proposal::{Evidence, Proposal, Rollback, Step};

pub const RESOURCES: usize = 1_000_000;
pub const EDGES: usize = 2_000_000;
/// Resources `0..REGION` are what the touched resource (0) reaches.
pub const REGION: usize = 100_000;

/// splitmix64: enough randomness for a graph, with no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

fn id(i: usize) -> String {
    // Ids shaped like the connectors' (`sql:db/table/pk`), spread over
    // a few databases and tables.
    format!("sql:db{}/t{}/{i}", i % 7, i % 53)
}

/// The mix: most resources controlled and institution-borne; about 3 %
/// observed, 0.5 % external, 1 % borne by a third party.
fn resource(i: usize, rng: &mut Rng) -> Resource {
    let roll = rng.below(1000);
    let reach = match roll {
        0..=4 => Reach::External,
        5..=34 => Reach::Observed,
        _ => Reach::Controlled,
    };
    let bearer = if rng.below(100) == 0 {
        Bearer::ALL[1 + rng.below(Bearer::ALL.len() - 1)]
    } else {
        Bearer::Institution
    };
    Resource {
        reach,
        bearer: Some(bearer),
        ..Resource::new(id(i))
    }
}

/// The catalog document. Edges inside the region form a random recursive
/// tree rooted at 0 (so all of it is reachable, at logarithmic depths) plus
/// as many random shortcuts; the other 900,000 resources link among
/// themselves and into the region, never out of it, so the blast radius of
/// resource 0 is exactly the region.
pub fn catalog() -> Catalog {
    let mut rng = Rng::new(0x5EED);
    let resources: Vec<Resource> = (0..RESOURCES).map(|i| resource(i, &mut rng)).collect();
    let mut edges = Vec::with_capacity(EDGES);
    let edge = |from: usize, to: usize, why: bool| Edge {
        from: id(from),
        to: id(to),
        why: why.then(|| format!("row {from} references row {to}")),
    };
    for i in 1..REGION {
        let parent = rng.below(i);
        edges.push(edge(parent, i, i % 10 == 0));
    }
    for _ in 0..REGION {
        let (a, b) = (rng.below(REGION), rng.below(REGION));
        edges.push(edge(a, b, false));
    }
    let outside = RESOURCES - REGION;
    while edges.len() < EDGES {
        let from = REGION + rng.below(outside);
        let to = if rng.below(10) == 0 {
            rng.below(REGION)
        } else {
            REGION + rng.below(outside)
        };
        edges.push(edge(from, to, false));
    }
    Catalog { resources, edges }
}

pub fn touched() -> String {
    id(0)
}

/// The write: touches resource 0, whose rollback step restores it from a
/// verified snapshot held outside the catalog's reach.
pub fn proposal() -> Proposal {
    Proposal {
        agent: "bench".into(),
        intent: "update one row whose foreign keys reach 100,000 more".into(),
        touches: vec![touched()],
        rollback: Rollback {
            steps: vec![Step {
                restores: vec![touched()],
                op: serde_json::json!({"connector": "sql", "op": "restore"}),
                requires: vec![Evidence {
                    id: "bi-0".into(),
                    kind: EvidenceKind::BeforeImage,
                    location: Some("vault:bench".into()),
                    until: None,
                    max_age_s: Some(3600),
                    check: None,
                }],
                modelled_by: None,
            }],
        },
        ..Proposal::default()
    }
}

pub fn observations() -> Observations {
    let mut o = Observations::new();
    o.insert(
        "bi-0".into(),
        Observation {
            present: true,
            captured_at: "2026-11-25T11:59:00Z".parse().ok(),
            detail: None,
        },
    );
    o
}
