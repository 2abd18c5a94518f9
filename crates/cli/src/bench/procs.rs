//! Bulk between two processes: the receiver runs in the scenario's process, the sender
//! in a second one (`bench --child bulk-sender`), for netcore and for raw TCP alike.
//!
//! In `bulk` both ends share one tokio runtime, and its scheduler may run a whole
//! exchange on one worker (the woken task goes into the waking worker's LIFO slot),
//! which makes the figures depend on how the ends' tasks happen to be placed. Here
//! each end has its own runtime and its own two workers, as in a deployment where a
//! client and a server share a host.

use super::cpus;
use super::net::{self, Tasks};
use super::report::{Better, Samples};
use super::scen::{human, Ctx};
use super::sys;
use anyhow::{anyhow, bail, Context, Result};
use netcore_runtime::transport::{self, TransportAddr};
use netcore_runtime::Pipe;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

/// What the sender process prints before its result.
const RESULT_PREFIX: &str = "BULK-SENDER ";

/// The protocols moving the bytes.
const PROTOS: [&str; 2] = ["netcore", "raw"];

/// The `bulk-procs` scenario (receiver side).
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let mut size: u64 = if ctx.quick { 128 << 20 } else { 1 << 30 };
    if std::env::var_os("NETCORE_BENCH_TINY").is_some() {
        size /= 8;
    }
    let limit = Duration::from_secs(if ctx.quick { 60 } else { 120 });
    let mut mib_s = [Samples::default(), Samples::default()];
    let mut probed = cpus::Probed::default();
    for run in 0..ctx.runs {
        let runs = [&mut probed.netcore, &mut probed.raw];
        for ((samples, probed), proto) in mib_s.iter_mut().zip(runs).zip(PROTOS) {
            let ns = cpus::line_transfer_ns_async().await;
            let secs = tokio::time::timeout(limit, transfer(proto, size))
                .await
                .map_err(|_| anyhow!("bulk-procs/{proto}: no result within {limit:?}"))??;
            samples.push(size as f64 / MIB / secs);
            probed.push((size as f64 / MIB / secs, ns));
        }
        eprintln!(
            "    bulk-procs run {run}: netcore {:.0}, raw {:.0} MiB/s (CPU to CPU {})",
            mib_s[0].0[run],
            mib_s[1].0[run],
            probed.netcore_text(run)
        );
    }
    ctx.notes.extend(probed.notes());
    ctx.add_record(
        "bulk-procs",
        &format!("one_{}_message_two_processes", human(size)),
        "MiB/s",
        Better::Higher,
        &mib_s[0],
        "raw TCP (two processes)",
        &mib_s[1],
        None,
    );
    ctx.notes.push(
        "sender and receiver in separate processes, each with its own tokio runtime \
         (2 workers); time from the first byte sent to the receiver's 8-byte count"
            .into(),
    );
    Ok(())
}

/// Seconds for one transfer of `size` bytes from a new sender process.
async fn transfer(proto: &str, size: u64) -> Result<f64> {
    let mut tasks = Tasks::default();
    let (bound, accepted) = match proto {
        "netcore" => {
            let addr: TransportAddr = "tcp://127.0.0.1:0".parse().map_err(|e| anyhow!("{e}"))?;
            let mut listener = transport::listen(&addr).await?;
            let bound = listener.local_addr().context("listener address")?;
            let accept = tokio::spawn(async move {
                let t = listener.accept().await?;
                net::serve_netcore(Pipe::new(t, net::tcp_config())).await;
                anyhow::Ok(())
            });
            (bound.to_string(), accept)
        }
        _ => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let bound = listener.local_addr()?;
            let accept = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await?;
                s.set_nodelay(true)?;
                net::raw_count(&mut s, size).await?;
                // Until the sender has read the count and closed.
                let _ = tokio::io::AsyncReadExt::read(&mut s, &mut [0u8; 1]).await;
                anyhow::Ok(())
            });
            (format!("tcp://{bound}"), accept)
        }
    };
    tasks.add(tokio::spawn(async move {
        if let Ok(Err(e)) = accepted.await {
            eprintln!("    bulk-procs receiver: {e:#}");
        }
    }));
    let child = sys::spawn_helper("bulk-sender", &format!("{proto} {bound} {size}"))?;
    let secs = sys::helper_result(child, RESULT_PREFIX).await?;
    Ok(secs.trim().parse()?)
}

/// The sender process: `PROTO ADDR BYTES` in `--child-arg`; prints `BULK-SENDER secs`.
pub async fn sender(arg: &str) -> Result<()> {
    let mut it = arg.split_whitespace();
    let proto = it.next().context("protocol")?;
    let addr: TransportAddr = it
        .next()
        .context("address")?
        .parse()
        .map_err(|e| anyhow!("{e}"))?;
    let size: u64 = it.next().context("size")?.parse()?;
    let secs = match proto {
        "netcore" => {
            let pipe = Pipe::new(transport::connect(&addr).await?, net::tcp_config());
            pipe.ready().await?;
            let client = net::Client::Netcore(pipe);
            let start = Instant::now();
            client.bulk(size).await?;
            start.elapsed().as_secs_f64()
        }
        "raw" => {
            let host = addr.to_string();
            let host = host.trim_start_matches("tcp://");
            let mut c = tokio::net::TcpStream::connect(host).await?;
            c.set_nodelay(true)?;
            let start = Instant::now();
            net::raw_send(&mut c, size, 1 << 20).await?;
            start.elapsed().as_secs_f64()
        }
        other => bail!("unknown protocol {other:?}"),
    };
    println!("{RESULT_PREFIX}{secs}");
    Ok(())
}
