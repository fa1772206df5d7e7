//! `decide` on a 1,000,000-resource catalog, against a bare petgraph BFS
//! over the same graph from the same start: the decision should cost little
//! more than the walk it cannot avoid (target: at most 1.5x).
//!
//! `cargo bench -p recourse-core --bench decide`
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark should fail loudly on a broken fixture"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use petgraph::visit::Bfs;
use recourse_core::catalog::CatalogGraph;
use recourse_core::decision::{decide, Policy};

#[path = "support/synthetic.rs"]
mod synthetic;

struct Fixture {
    graph: CatalogGraph,
    proposal: recourse_core::proposal::Proposal,
    observations: recourse_core::evidence::Observations,
}

fn fixture() -> Fixture {
    let started = Instant::now();
    let graph = CatalogGraph::new(synthetic::catalog()).unwrap();
    eprintln!(
        "catalog: {} resources, {} edges, built in {:.2?}",
        graph.len(),
        graph.graph().edge_count(),
        started.elapsed()
    );
    Fixture {
        graph,
        proposal: synthetic::proposal(),
        observations: synthetic::observations(),
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-25T12:00:00Z".parse().unwrap()
}

/// The baseline: what any answer to "what does this write reach" costs.
fn bfs(f: &Fixture) -> usize {
    let graph = f.graph.graph();
    let starts: Vec<_> = f
        .proposal
        .touches
        .iter()
        .filter_map(|t| f.graph.node(t))
        .collect();
    let mut bfs = Bfs::new(graph, starts[0]);
    for &s in &starts[1..] {
        if !bfs.discovered.put(s.index()) {
            bfs.stack.push_back(s);
        }
    }
    let mut n = 0;
    while let Some(node) = bfs.next(graph) {
        black_box(node);
        n += 1;
    }
    n
}

fn run_decide(f: &Fixture) -> usize {
    let d = decide(
        &f.graph,
        &f.proposal,
        &f.observations,
        now(),
        &Policy::default(),
    );
    black_box(&d);
    d.blast_radius.len()
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let reached = bfs(&f);
    let d = decide(
        &f.graph,
        &f.proposal,
        &f.observations,
        now(),
        &Policy::default(),
    );
    eprintln!(
        "blast radius: {} resources ({} by BFS), {} reasons, decision {:?}",
        d.blast_radius.len(),
        reached,
        d.reasons.len(),
        d.decision
    );
    assert_eq!(d.blast_radius.len(), reached);
    drop(d);

    let mut group = c.benchmark_group("blast_radius_100k_of_1m");
    group.sample_size(30);
    group.bench_function("petgraph_bfs", |b| b.iter(|| bfs(&f)));
    group.bench_function("recourse_decide", |b| b.iter(|| run_decide(&f)));
    group.finish();

    // The ratio, measured interleaved in this run so both see the same
    // machine state.
    let (mut t_bfs, mut t_decide) = (Vec::new(), Vec::new());
    for _ in 0..41 {
        let t = Instant::now();
        black_box(bfs(&f));
        t_bfs.push(t.elapsed());
        let t = Instant::now();
        black_box(run_decide(&f));
        t_decide.push(t.elapsed());
    }
    let (b, d) = (median(t_bfs), median(t_decide));
    println!(
        "worst case (one reason per resource): median of 41 interleaved runs: petgraph BFS {b:.2?}, decide {d:.2?}, ratio {:.2}x (target <= 1.5x)",
        d.as_secs_f64() / b.as_secs_f64()
    );

    // The common case: a step that restores what the write reaches (a
    // database snapshot of the region), so only the external and the
    // third-party resources give reasons.
    let ids: Vec<String> = decide(
        &f.graph,
        &f.proposal,
        &f.observations,
        now(),
        &Policy::default(),
    )
    .blast_radius
    .iter()
    .map(|e| e.resource.to_string())
    .collect();
    let mut covered = Fixture {
        graph: f.graph,
        proposal: f.proposal,
        observations: f.observations,
    };
    if let Some(step) = covered.proposal.rollback.steps.first_mut() {
        step.restores = ids;
    }
    let reasons = decide(
        &covered.graph,
        &covered.proposal,
        &covered.observations,
        now(),
        &Policy::default(),
    )
    .reasons
    .len();
    let (mut t_bfs, mut t_decide) = (Vec::new(), Vec::new());
    for _ in 0..41 {
        let t = Instant::now();
        black_box(bfs(&covered));
        t_bfs.push(t.elapsed());
        let t = Instant::now();
        black_box(run_decide(&covered));
        t_decide.push(t.elapsed());
    }
    let (b, d) = (median(t_bfs), median(t_decide));
    println!(
        "covered case ({reasons} reasons): median of 41 interleaved runs: petgraph BFS {b:.2?}, decide {d:.2?}, ratio {:.2}x (target <= 1.5x)",
        d.as_secs_f64() / b.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
