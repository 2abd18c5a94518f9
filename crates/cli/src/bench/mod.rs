//! `netcore bench`: benchmark scenarios with baselines measured in the same run.
//!
//! Owned by the benchmark author; `main.rs` only wires [`BenchArgs`] and [`run`].

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `netcore bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  netcore bench --quick\n  netcore bench latency hol-tcp --out bench-out\n  netcore bench --list")]
pub struct BenchArgs {
    /// Scenarios to run (default: all). See `--list`.
    pub scenarios: Vec<String>,
    /// Directory for results.json and the PNG plots.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
    /// Smaller sizes and fewer runs (CI smoke run, under two minutes).
    #[arg(long)]
    pub quick: bool,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// Runs per measurement (default: 3, or 1 with --quick).
    #[arg(long)]
    pub runs: Option<usize>,
    /// Internal: run one scenario in this process and print its records as JSON.
    #[arg(long, hide = true)]
    pub child: Option<String>,
}

/// Runs `netcore bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    Ok(ExitCode::SUCCESS)
}
