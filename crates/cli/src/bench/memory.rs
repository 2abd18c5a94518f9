//! Memory during a large transfer: the receiver runs in the scenario's process, the
//! sender in a second process (`bench --child memory-sender`), so each side's peak RSS
//! (VmHWM) is its own.

use super::net::{self, Link, Tasks};
use super::report::{Better, Goal, Samples};
use super::scen::{human, Ctx};
use super::sys;
use anyhow::{anyhow, Context, Result};
use netcore_runtime::transport::{self, TransportAddr};
use netcore_runtime::Pipe;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;
const GOAL_MIB: f64 = 64.0;

/// The memory scenario (receiver side).
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let mut size: u64 = if ctx.quick { 256 << 20 } else { 4 << 30 };
    if std::env::var_os("NETCORE_BENCH_TINY").is_some() {
        size /= 8;
    }
    let limit = Duration::from_secs(if ctx.quick { 60 } else { 300 });
    let rss_before = sys::rss_kib() as f64 / 1024.0;

    let addr: TransportAddr = "tcp://127.0.0.1:0".parse().map_err(|e| anyhow!("{e}"))?;
    let mut listener = transport::listen(&addr).await?;
    let bound = listener.local_addr().context("listener address")?;
    let child = sys::spawn_helper("memory-sender", &format!("{bound} {size}"))?;
    let t = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .map_err(|_| anyhow!("sender did not connect"))??;
    let server = Pipe::new(t, net::tcp_config());
    let start = Instant::now();
    let serve = tokio::spawn(net::serve_netcore(server));
    let line = tokio::time::timeout(limit, sys::helper_result(child, "MEMORY-SENDER "))
        .await
        .map_err(|_| anyhow!("4 GiB transfer did not finish within {limit:?}"))??;
    let secs = start.elapsed().as_secs_f64();
    serve.abort();
    let v: serde_json::Value = serde_json::from_str(&line)?;
    let sender_rss = v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN);
    let sender_secs = v["seconds"].as_f64().unwrap_or(secs);
    let receiver_rss = sys::peak_rss_kib() as f64 / 1024.0;

    // Raw TCP moving the same bytes in this process (throughput baseline).
    let mut raw = Samples::default();
    let t = raw_transfer(size).await?;
    raw.push(size as f64 / MIB / t);
    let ours = Samples(vec![size as f64 / MIB / sender_secs]);
    let goal = Samples(vec![GOAL_MIB]);
    eprintln!(
        "    memory {}: receiver peak RSS {receiver_rss:.1} MiB (before: {rss_before:.1}), sender {sender_rss:.1} MiB; {:.0} MiB/s (raw TCP {:.0})",
        human(size),
        ours.median(),
        raw.median()
    );
    let m = human(size);
    ctx.add_record(
        "memory",
        &format!("receiver_peak_rss_{m}"),
        "MiB",
        Better::Lower,
        &Samples(vec![receiver_rss]),
        "goal (issue 3)",
        &goal,
        Some(Goal::ValueAtMost(GOAL_MIB)),
    );
    ctx.add_record(
        "memory",
        &format!("sender_peak_rss_{m}"),
        "MiB",
        Better::Lower,
        &Samples(vec![sender_rss]),
        "goal (issue 3)",
        &goal,
        Some(Goal::ValueAtMost(GOAL_MIB)),
    );
    ctx.add_record(
        "memory",
        &format!("throughput_{m}"),
        "MiB/s",
        Better::Higher,
        &ours,
        "raw TCP",
        &raw,
        None,
    );
    ctx.notes.push(format!(
        "peak RSS is the whole process (VmHWM): runtime, buffers and code; receiver process RSS before the transfer was {rss_before:.1} MiB; the receiver's VmHWM is read before its raw TCP baseline runs"
    ));
    Ok(())
}

async fn raw_transfer(size: u64) -> Result<f64> {
    let (mut c, mut s) = net::tcp_pair().await?;
    let mut tasks = Tasks::default();
    tasks.add(tokio::spawn(async move {
        let _ = net::raw_count(&mut s, size).await;
    }));
    let start = Instant::now();
    net::raw_send(&mut c, size, 1 << 20).await?;
    Ok(start.elapsed().as_secs_f64())
}

/// The sender process: `ADDR BYTES` in `--child-arg`; prints `MEMORY-SENDER {json}`.
pub async fn sender(arg: &str) -> Result<()> {
    let mut it = arg.split_whitespace();
    let addr: TransportAddr = it
        .next()
        .context("address")?
        .parse()
        .map_err(|e| anyhow!("{e}"))?;
    let size: u64 = it.next().context("size")?.parse()?;
    let t = transport::connect(&addr).await?;
    let pipe = Pipe::new(t, net::tcp_config());
    pipe.ready().await?;
    let client = net::Client::Netcore(pipe);
    let start = Instant::now();
    client.bulk(size).await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "MEMORY-SENDER {}",
        serde_json::json!({"peak_rss_mib": sys::peak_rss_kib() as f64 / 1024.0, "seconds": secs})
    );
    let _ = Link::Tcp;
    Ok(())
}
