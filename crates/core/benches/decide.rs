//! `decide` on a 1,000,000-resource catalog, against a bare petgraph BFS
//! over the same graph from the same start: the decision should cost little
//! more than the walk it cannot avoid (target: at most 1.5x).
//!
//! `cargo bench -p recourse-core --bench decide`
//! (`DECIDE_QUICK=1` skips criterion's runs; `DECIDE_RUNS` sets the
//! interleaved runs, 41 by default)
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark should fail loudly on a broken fixture"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use petgraph::visit::Bfs;
use recourse_core::catalog::CatalogGraph;
use recourse_core::decision::{assess, decide, Policy};

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

/// The decision unrendered: the verdict and every fact, with no path or
/// sentence built (what serializing it renders one reason at a time).
fn run_assess(f: &Fixture) -> usize {
    let a = assess(
        &f.graph,
        &f.proposal,
        &f.observations,
        now(),
        &Policy::default(),
    );
    black_box(&a);
    a.blast_radius_len()
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

/// (min, median, max).
fn spread(mut xs: Vec<Duration>) -> [Duration; 3] {
    xs.sort();
    [xs[0], xs[xs.len() / 2], xs[xs.len() - 1]]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the bare BFS, `decide` and `assess` interleaved, `DECIDE_RUNS` times (41 by
/// default), so both see the same machine state, and prints min / median /
/// max of each and the ratio of the medians, with the load average.
fn interleaved(label: &str, f: &Fixture) {
    let runs = std::env::var("DECIDE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(41usize);
    let load = loadavg();
    let (mut t_bfs, mut t_decide, mut t_assess) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        black_box(bfs(f));
        t_bfs.push(t.elapsed());
        let t = Instant::now();
        black_box(run_decide(f));
        t_decide.push(t.elapsed());
        let t = Instant::now();
        black_box(run_assess(f));
        t_assess.push(t.elapsed());
    }
    let [b0, b, b1] = spread(t_bfs);
    println!(
        "{label}: {runs} interleaved runs (load average {load} -> {})",
        loadavg()
    );
    println!("  petgraph BFS: min {b0:.2?} median {b:.2?} max {b1:.2?}");
    for (name, times) in [
        ("decide (rendered)", t_decide),
        ("assess (unrendered)", t_assess),
    ] {
        let [d0, d, d1] = spread(times);
        println!(
            "  {name}: min {d0:.2?} median {d:.2?} max {d1:.2?}; \
             x BFS: median {:.2}x, min {:.2}x (target <= 1.5x)",
            d.as_secs_f64() / b.as_secs_f64(),
            d0.as_secs_f64() / b0.as_secs_f64(),
        );
    }
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
    let reasons_worst = d.reasons.len();
    drop(d);

    // `DECIDE_QUICK=1` (scripts/bench.sh sets it) leaves out criterion's
    // own runs: the interleaved ratios below are what BENCHMARKS.md reports.
    let quick = std::env::var("DECIDE_QUICK").is_ok_and(|v| v != "0");
    if !quick {
        let mut group = c.benchmark_group("blast_radius_100k_of_1m");
        group.sample_size(30);
        group.bench_function("petgraph_bfs", |b| b.iter(|| bfs(&f)));
        group.bench_function("recourse_decide", |b| b.iter(|| run_decide(&f)));
        group.finish();
    }

    interleaved(
        &format!("worst case ({} reasons, one per resource)", reasons_worst),
        &f,
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
    interleaved(&format!("covered case ({reasons} reasons)"), &covered);
}

criterion_group!(benches, bench);
criterion_main!(benches);
