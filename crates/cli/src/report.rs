//! `recourse report`: the seed's Monday audit written as `report.html`,
//! `report.csv` and `report.json`, from a running gate (`GET /v1/report`)
//! or from the gate's store itself (no gate needed, as `audit verify`).
//! The engine and the renderers are `recourse-report`; this only fetches
//! and writes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use recourse_client::GateClient;
use recourse_gate::store::WriteFilter;
use recourse_report::Report;

use crate::{open_store, StoreAtOptional};

#[derive(Args)]
pub struct ReportArgs {
    /// Read the gate's store directly (the data directory, or the shared
    /// database): no gate needed.
    #[command(flatten)]
    store: StoreAtOptional,
    /// Ask this running gate (`GET /v1/report`; needs a reviewer's, risk
    /// officer's, incident lead's or admin's token).
    #[arg(long, conflicts_with_all = ["data_dir", "database_url"])]
    gate: Option<String>,
    #[arg(long, env = "RECOURSE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The directory to write report.html, report.csv and report.json in
    /// (made if missing; the three files are replaced).
    #[arg(long)]
    out: PathBuf,
}

pub async fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let report: Report = match (args.store.given(), args.gate) {
        (Some(at), _) => {
            let store = open_store(&at, false).await?;
            let (catalog, _) = store.catalog().await?;
            let writes = store.writes(&WriteFilter::default()).await?;
            recourse_report::build(&catalog, &writes, chrono::Utc::now())
        }
        (None, Some(url)) => {
            let token = args
                .token
                .context("--token (or RECOURSE_TOKEN) is needed with --gate")?;
            GateClient::new(url, token).report().await?
        }
        (None, None) => bail!("give --gate URL, --data-dir DIR or --database-url URL"),
    };
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("--out {}", out.display()))?;
    let files = [
        ("report.html", recourse_report::html::render(&report)),
        ("report.csv", recourse_report::csv::render(&report)),
        ("report.json", serde_json::to_string_pretty(&report)?),
    ];
    for (name, text) in &files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let s = &report.summary;
    println!(
        "{}: {} writes in {} kinds; {} not reversible, {} aspirational, {} always need a person",
        out.display(),
        s.writes,
        s.kinds,
        s.kinds_not_reversible,
        s.kinds_aspirational,
        s.kinds_always_need_a_person
    );
    Ok(ExitCode::SUCCESS)
}
