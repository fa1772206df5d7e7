//! Peak memory of the 1,000,000-resource benchmark catalog: VmHWM (the
//! resident high-water mark) from /proc/self/status before and after each
//! stage. Linux only; run it in release mode, alone:
//!
//! `cargo run --release -p recourse-core --example catalog_memory`

use std::time::Instant;

use recourse_core::catalog::CatalogGraph;
use recourse_core::decision::{decide, Policy};

#[path = "../benches/support/synthetic.rs"]
mod synthetic;

/// VmHWM in KiB, or 0 where /proc is not there.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let base = peak_kib();
    println!("start: VmHWM {:.1} MiB", mib(base));

    let t = Instant::now();
    let catalog = synthetic::catalog();
    let doc = peak_kib();
    println!(
        "catalog document ({} resources, {} edges) in {:.2?}: VmHWM {:.1} MiB",
        catalog.resources.len(),
        catalog.edges.len(),
        t.elapsed(),
        mib(doc)
    );

    let t = Instant::now();
    let graph = match CatalogGraph::new(catalog) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let built = peak_kib();
    println!(
        "CatalogGraph built in {:.2?}: VmHWM {:.1} MiB (+{:.1} MiB over the document)",
        t.elapsed(),
        mib(built),
        mib(built.saturating_sub(doc))
    );

    let now = "2026-11-25T12:00:00Z".parse().unwrap_or_default();
    let proposal = synthetic::proposal();
    let t = Instant::now();
    let d = decide(
        &graph,
        &proposal,
        &synthetic::observations(),
        now,
        &Policy::default(),
    );
    let decided = peak_kib();
    println!(
        "decide ({} in the blast radius, {} reasons) in {:.2?}: VmHWM {:.1} MiB",
        d.blast_radius.len(),
        d.reasons.len(),
        t.elapsed(),
        mib(decided)
    );
    println!(
        "peak for the 1M catalog and one decision: {:.1} MiB ({}; target < 1024 MiB)",
        mib(decided),
        if decided < 1024 * 1024 {
            "under"
        } else {
            "OVER"
        }
    );
}
