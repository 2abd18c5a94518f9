//! `netcore bench`: benchmark scenarios with baselines measured in the same run.
//!
//! Each scenario runs in its own child process (`netcore bench --child NAME`, hidden) so
//! its peak RSS and CPU time are its own; the parent collects the records, prints the
//! tables and writes `results.json` and PNG plots. Owned by the benchmark author;
//! `main.rs` only wires [`BenchArgs`] and [`run`].

mod cpus;
mod memory;
mod net;
mod plot;
mod procs;
mod python;
mod report;
mod scen;
mod sys;

use anyhow::{bail, Context, Result};
use report::ScenarioResult;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `netcore bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  netcore bench --quick                 # every scenario, small sizes (CI smoke, < 2 min)\n  netcore bench                         # the full run BENCHMARKS.md reports\n  netcore bench latency hol-tcp --out bench-out\n  sudo netcore bench hol-tcp --realtime   # scenarios under SCHED_FIFO (chrt)\n  netcore bench --list\n\nWrites DIR/results.json (one record per figure and baseline: scenario, metric, unit, value,\nbaseline, baseline_value, ratio, runs, min, median, max) and DIR/*.png."
)]
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
    /// Run each scenario's process under the real-time policy SCHED_FIFO through
    /// `chrt` (util-linux), so that the machine's other threads, kernel daemons
    /// included, cannot preempt its runtime workers. Baselines share the process and so
    /// the policy. Not `python`: its Python peers stay busy on both CPUs, and at one
    /// real-time priority they starve each other (no time slices). Needs root or
    /// CAP_SYS_NICE.
    #[arg(long)]
    pub realtime: bool,
    /// The SCHED_FIFO priority of `--realtime` (1-99).
    #[arg(long, value_name = "PRIO", default_value_t = 10, requires = "realtime",
          value_parser = clap::value_parser!(u8).range(1..=99))]
    pub realtime_priority: u8,
    /// Internal: run one scenario in this process and print its result as JSON.
    #[arg(long, hide = true)]
    pub child: Option<String>,
    /// Internal: argument of a child role.
    #[arg(long, hide = true)]
    pub child_arg: Option<String>,
}

const RESULT_PREFIX: &str = "NETCORE-BENCH-RESULT ";

/// Runs `netcore bench`.
pub async fn run(args: BenchArgs) -> Result<ExitCode> {
    if args.list {
        for (name, what) in scen::SCENARIOS {
            println!("{name:<11} {what}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(role) = &args.child {
        return child(role, &args).await;
    }
    let names: Vec<String> = if args.scenarios.is_empty() {
        scen::SCENARIOS.iter().map(|s| s.0.to_string()).collect()
    } else {
        for s in &args.scenarios {
            if !scen::SCENARIOS.iter().any(|x| x.0 == s) {
                let all: Vec<&str> = scen::SCENARIOS.iter().map(|x| x.0).collect();
                bail!("unknown scenario {s:?}; scenarios: {}", all.join(", "));
            }
        }
        args.scenarios.clone()
    };
    if args.realtime {
        check_realtime(args.realtime_priority).await?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let runs = args
        .runs
        .unwrap_or(if args.quick { 1 } else { 3 })
        .clamp(1, 100);
    let started = Instant::now();
    let start_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!(
        "netcore bench: {} scenario(s), {} run(s) each{}, results in {}",
        names.len(),
        runs,
        if args.quick { ", quick" } else { "" },
        args.out.display()
    );
    let mut results = Vec::new();
    for name in &names {
        eprintln!("--> {name}");
        let r = run_child(name, &args, scenario_runs(name, &args, runs)).await;
        report::print_table(&r);
        results.push(r);
    }
    let (plots, plot_notes) = plot::draw_all(&args.out, &results);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let json = serde_json::json!({
        "tool": "netcore bench",
        "version": env!("CARGO_PKG_VERSION"),
        "quick": args.quick,
        "runs": runs,
        "command": command,
        "started_unix": start_time,
        "wall_s": started.elapsed().as_secs_f64(),
        "machine": sys::machine(),
        "pipe_config_override": std::env::var("NETCORE_BENCH_PIPE").ok(),
        "realtime_priority": args.realtime.then_some(args.realtime_priority),
        "scenarios": results,
        "records": results.iter().flat_map(|r| r.records.iter()).collect::<Vec<_>>(),
        "plots": plots.iter().map(|p| p.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default()).collect::<Vec<_>>(),
        "plot_notes": plot_notes,
    });
    let path = args.out.join("results.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::write(args.out.join("results.md"), report::markdown(&results))?;
    for n in &plot_notes {
        println!("note: {n}");
    }
    println!(
        "\nwrote {} ({} records), results.md and {} plot(s) in {:.0} s",
        path.display(),
        results.iter().map(|r| r.records.len()).sum::<usize>(),
        plots.len(),
        started.elapsed().as_secs_f64()
    );
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.status != "ok" && r.status != "skipped")
        .map(|r| r.name.as_str())
        .collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("failed scenarios: {}", failed.join(", "));
        Ok(ExitCode::from(1))
    }
}

/// Fails early, with what to do, when `chrt` cannot start a process under SCHED_FIFO at
/// `prio` (not installed, or no permission).
async fn check_realtime(prio: u8) -> Result<()> {
    let out = tokio::process::Command::new("chrt")
        .args(["--fifo", &prio.to_string(), "true"])
        .output()
        .await
        .context("--realtime runs scenarios through `chrt` (util-linux), which did not start")?;
    if !out.status.success() {
        bail!(
            "--realtime: `chrt --fifo {prio}` failed ({}): {}; run as root or with CAP_SYS_NICE, or without --realtime",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs for one scenario: `runs`, except that the loopback throughput scenarios take
/// at least 7 in a full run unless `--runs` was given. Raw TCP over loopback is bimodal
/// here (the two ends share a core or not, 3.3–7.9 GiB/s for the same code), and a
/// median of 3 runs of each side often compared one mode with the other. `pipelined`
/// too: whether the sender's and the receiver's tasks spread over both workers decides
/// much of a run's figure, for netcore and LengthDelimitedCodec alike.
fn scenario_runs(name: &str, args: &BenchArgs, runs: usize) -> usize {
    match (name, args.runs, args.quick) {
        ("bulk" | "bulk8" | "bulk-procs" | "pipelined", None, false) => runs.max(7),
        _ => runs,
    }
}

fn time_limit(name: &str, quick: bool, runs: usize) -> Duration {
    let per_run = match (name, quick) {
        ("memory", true) => 60,
        ("memory", false) => 300,
        ("python", _) => 200,
        (_, true) => 60,
        (_, false) => 150,
    };
    Duration::from_secs(per_run * runs.max(1) as u64 + 30)
}

/// Runs a scenario in a child process and collects its result.
async fn run_child(name: &str, args: &BenchArgs, runs: usize) -> ScenarioResult {
    let failed = |status: &str, note: String| ScenarioResult {
        name: name.to_string(),
        status: status.to_string(),
        notes: vec![note],
        ..Default::default()
    };
    let exe = match sys::self_exe() {
        Ok(e) => e,
        Err(e) => return failed("failed", format!("cannot find this executable: {e}")),
    };
    let realtime = args.realtime && name != "python";
    let mut cmd = match realtime.then_some(args.realtime_priority) {
        None => tokio::process::Command::new(exe),
        Some(prio) => {
            // chrt execs the path it is given: /proc/self/exe would name chrt itself.
            let exe = match std::fs::read_link(&exe) {
                Ok(real) => real,
                Err(_) => exe,
            };
            let mut c = tokio::process::Command::new("chrt");
            c.args(["--fifo", &prio.to_string()]).arg(exe);
            c
        }
    };
    cmd.args([
        "bench",
        "--child",
        name,
        "--runs",
        &runs.to_string(),
        "--out",
    ])
    .arg(&args.out)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::inherit())
    .kill_on_drop(true);
    if args.quick {
        cmd.arg("--quick");
    }
    let start = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed("failed", format!("cannot start the scenario process: {e}")),
    };
    let limit = time_limit(name, args.quick, runs);
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return failed("failed", format!("scenario process: {e}")),
        Err(_) => {
            return failed(
                "timeout",
                format!("no result within {limit:?}; process killed"),
            )
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    match text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
    {
        Some(j) => match serde_json::from_str::<ScenarioResult>(j) {
            Ok(mut r) => {
                r.usage.wall_s = start.elapsed().as_secs_f64();
                r
            }
            Err(e) => failed("failed", format!("unreadable result: {e}")),
        },
        None => failed(
            "failed",
            format!("scenario process exited with {} and no result", out.status),
        ),
    }
}

/// The child side: runs one scenario (or a helper role) and prints its result.
async fn child(role: &str, args: &BenchArgs) -> Result<ExitCode> {
    if role == "memory-sender" {
        memory::sender(args.child_arg.as_deref().unwrap_or_default()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if role == "bulk-sender" {
        procs::sender(args.child_arg.as_deref().unwrap_or_default()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let runs = args
        .runs
        .unwrap_or(if args.quick { 1 } else { 3 })
        .clamp(1, 100);
    let mut ctx = scen::Ctx {
        quick: args.quick,
        runs,
        notes: Vec::new(),
        records: Vec::new(),
        series: Vec::new(),
        out: args.out.clone(),
    };
    let start = Instant::now();
    // The scenario runs as a task on the runtime's workers, as application code does:
    // on the `block_on` thread every wakeup between it and the tasks it talks to would
    // cross threads (a futex round trip each), which swamps what is being measured.
    let name = role.to_string();
    let (outcome, ctx) = tokio::spawn(async move {
        let outcome = scen::run(&name, &mut ctx).await;
        (outcome, ctx)
    })
    .await?;
    let (user, system) = sys::cpu_seconds();
    let mut result = ScenarioResult {
        name: role.to_string(),
        status: "ok".into(),
        notes: ctx.notes,
        usage: report::Usage {
            wall_s: start.elapsed().as_secs_f64(),
            cpu_user_s: user,
            cpu_sys_s: system,
            peak_rss_mib: sys::peak_rss_kib() as f64 / 1024.0,
            scheduling: sys::scheduling(),
        },
        records: ctx.records,
        series: ctx.series,
    };
    for s in &mut result.series {
        s.points.retain(|p| p.0.is_finite() && p.1.is_finite());
    }
    if let Err(e) = outcome {
        result.status = "failed".into();
        result.notes.push(format!("{e:#}"));
    } else if result.records.is_empty() {
        result.status = "skipped".into();
    }
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&result)?);
    Ok(ExitCode::SUCCESS)
}

/// Used by tests: the scenario names.
#[allow(dead_code)]
pub fn scenario_names() -> Vec<&'static str> {
    scen::SCENARIOS.iter().map(|s| s.0).collect()
}
