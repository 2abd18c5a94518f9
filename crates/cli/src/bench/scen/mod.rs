//! The scenarios. Each measures netcore and its baselines in the same process, run after
//! run interleaved, and turns the samples into [`Record`]s. This module has the list,
//! the dispatch and the shared helpers; one file per group of scenarios.

mod bulk;
mod hol;
mod latency;
mod messages;
mod realistic;

use bulk::{bulk, bulk8};
use hol::hol;
use latency::latency;
use messages::{fixed, pipelined, sizes};
use realistic::realistic;

use super::cpus;
use super::net::{self, connect, payload, tcp_pair, Client, Link, Proto, Tasks};
use super::report::{percentile, record, Better, Goal, Record, Samples, Series};
use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use netcore_runtime::transport::SimConfig;
use netcore_runtime::{MessageBatch, Pipe, PipeConfig, Route};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Scenario names and one-line descriptions, in run order.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("fixed", "16-byte request/response, 16 in flight on one connection: messages/s vs length-prefixed and yamux"),
    ("sizes", "one-way messages of 64 B .. 4 MiB (size sweep): MiB/s vs LengthDelimitedCodec and raw TCP"),
    ("realistic", "many clients (one connection each), random sizes 64 B..64 KiB, random think times: req/s, p50/p99"),
    ("bulk", "one 1 GiB message: MiB/s vs raw TCP and yamux (goal >= 0.9x raw TCP)"),
    ("bulk8", "8 concurrent 128 MiB messages (1 GiB aggregate): MiB/s vs raw TCP and yamux (goal >= 0.9x)"),
    ("bulk-procs", "one 1 GiB message with sender and receiver in separate processes: MiB/s vs raw TCP laid out the same way"),
    ("latency", "64-byte request/response round trip p50/p99 vs raw TCP ping-pong, LengthDelimitedCodec, yamux (goal p50 <= 1.5x raw)"),
    ("pipelined", "pipelined 64-byte one-way messages (batched, and one by one): msgs/s vs LengthDelimitedCodec frames/s (goal >= 0.5x)"),
    ("hol-tcp", "64-byte requests during a 1 GiB bulk on loopback TCP: p99 (goal <= 1 ms) and bulk >= 0.8x unloaded; vs yamux, length-prefixed"),
    ("hol-slow", "64-byte requests during a 4 MiB bulk on a simulated 1 MB/s, 1 ms link: p99 (goal <= 20 ms); vs yamux, length-prefixed"),
    ("hol-serial", "64-byte requests during a 64 KiB bulk on a simulated 115 200-baud serial link; vs yamux, length-prefixed"),
    ("memory", "4 GiB transfer between two processes: peak RSS of each side (goal <= 64 MiB) and MiB/s vs raw TCP"),
    ("python", "Python peers: netcore 0.1.3 and binary-protocol 0.2.2 doing the same work as the Rust code (goal >= 50x msgs/s)"),
];

/// What a scenario accumulates.
pub struct Ctx {
    /// Smaller sizes, fewer runs.
    pub quick: bool,
    /// Runs per measurement.
    pub runs: usize,
    /// Notes for the report.
    pub notes: Vec<String>,
    /// Records.
    pub records: Vec<Record>,
    /// Plot data.
    pub series: Vec<Series>,
    /// The out directory (scratch files for helper scripts).
    pub out: std::path::PathBuf,
}

impl Ctx {
    fn q<T>(&self, quick: T, full: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    /// A size or count: `quick` or `full`, divided by 8 when `NETCORE_BENCH_TINY` is set
    /// (the smoke test runs an unoptimized build).
    fn qs<T>(&self, quick: T, full: T) -> T
    where
        T: Copy + std::ops::Div<Output = T> + From<u8> + PartialOrd,
    {
        let v = self.q(quick, full);
        if std::env::var_os("NETCORE_BENCH_TINY").is_some() {
            let d = v / T::from(8u8);
            if d > T::from(0u8) {
                return d;
            }
        }
        v
    }

    /// Adds a record built from samples.
    #[allow(clippy::too_many_arguments)]
    pub fn add_record(
        &mut self,
        scenario: &str,
        metric: &str,
        unit: &str,
        better: Better,
        ours: &Samples,
        baseline: &str,
        theirs: &Samples,
        goal: Option<Goal>,
    ) {
        self.records.push(record(
            scenario, metric, unit, better, ours, baseline, theirs, goal,
        ));
    }
}

const MIB: f64 = 1024.0 * 1024.0;

fn progress(msg: &str) {
    eprintln!("    {msg}");
}

/// Runs one scenario by name.
pub async fn run(name: &str, ctx: &mut Ctx) -> Result<()> {
    match name {
        "fixed" => fixed(ctx).await,
        "sizes" => sizes(ctx).await,
        "realistic" => realistic(ctx).await,
        "bulk" => bulk(ctx).await,
        "bulk8" => bulk8(ctx).await,
        "latency" => latency(ctx).await,
        "pipelined" => pipelined(ctx).await,
        "hol-tcp" => {
            let size = ctx.qs(128u64 << 20, 1 << 30);
            hol(
                ctx,
                "hol-tcp",
                Link::Tcp,
                None,
                size,
                Duration::from_millis(1),
                1.0,
            )
            .await
        }
        "hol-slow" => {
            let link = SimConfig::default()
                .with_rate(1_000_000)
                .with_latency(Duration::from_millis(1))
                .with_buffer_limit(16 * 1024);
            let size = ctx.qs(1u64 << 20, 4 << 20);
            hol(
                ctx,
                "hol-slow",
                Link::Sim(link),
                None,
                size,
                Duration::from_millis(10),
                20.0,
            )
            .await
        }
        "hol-serial" => {
            let link = SimConfig::default()
                .with_rate(11_520)
                .with_latency(Duration::from_millis(1))
                .with_buffer_limit(1024);
            let size = ctx.qs(8u64 << 10, 64 << 10);
            hol(
                ctx,
                "hol-serial",
                Link::Sim(link),
                Some(PipeConfig::serial(11_520)),
                size,
                Duration::from_millis(50),
                f64::NAN,
            )
            .await
        }
        "bulk-procs" => super::procs::run(ctx).await,
        "memory" => super::memory::run(ctx).await,
        "python" => super::python::run(ctx).await,
        other => bail!("unknown scenario {other:?}"),
    }
}

// ------------------------------------------------------------------ helpers

/// xorshift64*, enough for sizes and think times.
pub struct Rng(u64);
impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs `conc` workers calling `op` until `dur` passed or `max` operations were done;
/// returns (operations, seconds, per-operation latencies in ms).
async fn closed_loop<F, Fut>(
    conc: usize,
    dur: Duration,
    max: u64,
    op: F,
) -> Result<(u64, f64, Vec<f64>)>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..conc {
        let op = op.clone();
        let done = done.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w as u64;
            while start.elapsed() < dur && done.load(Ordering::Relaxed) < max {
                let t = Instant::now();
                op(i).await?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                done.fetch_add(1, Ordering::Relaxed);
                i += conc as u64;
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((done.load(Ordering::Relaxed), secs, all))
}

/// Runs `f` up to three times: an attempt without a result within `stall` is a stall,
/// noted and retried (netcore has a flow-control stall; see BENCHMARKS.md).
async fn retrying<T, F, Fut>(
    notes: &mut Vec<String>,
    what: &str,
    stall: Duration,
    mut f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    for attempt in 1..=3 {
        match tokio::time::timeout(stall, f()).await {
            Ok(r) => return r,
            Err(_) => {
                progress(&format!(
                    "{what}: STALLED (attempt {attempt}, no result within {stall:?})"
                ));
                notes.push(format!(
                    "{what}: stalled (no result within {stall:?}) in attempt {attempt}; retried"
                ));
            }
        }
    }
    bail!("{what}: stalled in three attempts")
}

async fn with_limit<T>(
    limit: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(anyhow!("{what}: no result within {limit:?}")),
    }
}

/// "64B", "16KiB", "1MiB", "1GiB".
pub fn human(n: u64) -> String {
    if n >= 1 << 30 && n % (1 << 30) == 0 {
        format!("{}GiB", n >> 30)
    } else if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{}MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n}B")
    }
}

/// Seconds for `total` bytes written in `chunk`-sized writes over raw TCP to be read and
/// acknowledged.
async fn raw_bulk(total: u64, chunk: usize) -> Result<f64> {
    let (mut c, mut s) = tcp_pair().await?;
    let mut tasks = Tasks::default();
    tasks.add(tokio::spawn(async move {
        let _ = net::raw_count(&mut s, total).await;
    }));
    let start = Instant::now();
    net::raw_send(&mut c, total, chunk).await?;
    Ok(start.elapsed().as_secs_f64())
}

/// The codec of the LengthDelimitedCodec baselines: frames up to 64 MiB.
fn ldc() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(64 << 20)
        .new_codec()
}
