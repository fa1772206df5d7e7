//! `recourse`: the command line (section 9 of the contract).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "recourse", version, about = "Recoverability as a precondition of every write")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide one scenario file and print the decision as JSON.
    Check {
        /// `{"catalog", "proposal", "observations"?, "now"?, "window_margin_s"?}`
        scenario: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Command::Check { scenario } => check(&scenario),
    }
}

/// Exit 0 with the decision on stdout, or 2 with one line on stderr.
fn check(path: &std::path::Path) -> ExitCode {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match recourse_core::scenario::check_bytes(&bytes, chrono::Utc::now()) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line, whatever the message holds.
            eprintln!("{}", e.to_string().replace('\n', " "));
            ExitCode::from(2)
        }
    }
}
