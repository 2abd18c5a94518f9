//! The scenarios. Each measures netcore and its baselines in the same process, run after
//! run interleaved, and turns the samples into [`Record`]s.

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

// ------------------------------------------------------------------ fixed

async fn fixed(ctx: &mut Ctx) -> Result<()> {
    let dur = ctx.q(Duration::from_millis(400), Duration::from_secs(3));
    let protos = [Proto::Netcore, Proto::Plain, Proto::Yamux];
    let mut s: Vec<Samples> = vec![Samples::default(); protos.len()];
    for run in 0..ctx.runs {
        for (i, p) in protos.iter().enumerate() {
            let mut tasks = Tasks::default();
            let c = connect(*p, &Link::Tcp, None, &mut tasks).await?;
            let (n, secs, _) = with_limit(
                dur * 4 + Duration::from_secs(10),
                "fixed",
                closed_loop(16, dur, 5_000_000, move |_| {
                    let c = c.clone();
                    async move { c.echo(16, false).await }
                }),
            )
            .await?;
            s[i].push(n as f64 / secs);
            progress(&format!(
                "fixed run {run} {}: {:.0} msg/s",
                p.name(),
                n as f64 / secs
            ));
        }
    }
    for i in 1..protos.len() {
        ctx.add_record(
            "fixed",
            "16B_req_resp_16_in_flight",
            "msg/s",
            Better::Higher,
            &s[0],
            protos[i].name(),
            &s[i],
            None,
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ sizes

async fn sizes(ctx: &mut Ctx) -> Result<()> {
    let sizes: Vec<usize> = ctx.q(
        vec![64, 1024, 16 << 10, 256 << 10, 1 << 20],
        vec![64, 1024, 16 << 10, 256 << 10, 1 << 20, 4 << 20],
    );
    let total: u64 = ctx.qs(16 << 20, 256 << 20);
    let max_msgs: u64 = ctx.qs(20_000, 200_000);
    let names = ["netcore", "LengthDelimitedCodec", "raw TCP"];
    let mut points: Vec<Vec<(f64, f64)>> = vec![Vec::new(); 3];
    let mut stalled: Vec<usize> = Vec::new();
    'sizes: for &size in &sizes {
        let count = (total / size as u64).clamp(4, max_msgs);
        let mut s: Vec<Samples> = vec![Samples::default(); 3];
        for _ in 0..ctx.runs {
            let limit = Duration::from_secs(ctx.q(20, 60));
            // Stalls are noted; a size that stalls three times is left out (the scenario
            // then reports failure after measuring the other sizes).
            let stall = Duration::from_secs(ctx.q(10, 20));
            let t = match retrying(
                &mut ctx.notes,
                &format!("sizes/netcore {size} B"),
                stall,
                || oneway_netcore(size, count),
            )
            .await
            {
                Ok(t) => t,
                Err(e) => {
                    ctx.notes.push(format!("{e:#}; size left out"));
                    stalled.push(size);
                    continue 'sizes;
                }
            };
            s[0].push(count as f64 * size as f64 / MIB / t);
            let t = with_limit(limit, "sizes/ldc", oneway_ldc(size, count)).await?;
            s[1].push(count as f64 * size as f64 / MIB / t);
            let t = with_limit(limit, "sizes/raw", raw_bulk(size as u64 * count, size)).await?;
            s[2].push(count as f64 * size as f64 / MIB / t);
        }
        progress(&format!(
            "sizes {size} B x {count}: netcore {:.1}, ldc {:.1}, raw {:.1} MiB/s",
            s[0].median(),
            s[1].median(),
            s[2].median()
        ));
        let metric = format!("oneway_{}", human(size as u64));
        ctx.add_record(
            "sizes",
            &metric,
            "MiB/s",
            Better::Higher,
            &s[0],
            names[1],
            &s[1],
            None,
        );
        ctx.add_record(
            "sizes",
            &metric,
            "MiB/s",
            Better::Higher,
            &s[0],
            names[2],
            &s[2],
            None,
        );
        for i in 0..3 {
            points[i].push((size as f64, s[i].median()));
        }
    }
    for (i, p) in points.into_iter().enumerate() {
        ctx.series.push(Series {
            plot: "sizes".into(),
            name: names[i].into(),
            points: p,
        });
    }
    if !stalled.is_empty() {
        bail!("netcore stalled at sizes {stalled:?} (see notes)");
    }
    Ok(())
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

/// Seconds for `count` one-way netcore messages of `size` bytes to arrive.
/// The one-way messages' route: known at compile time, so it is never allocated (as
/// an application names its routes).
const DROP: Route = Route::from_static("drop");

async fn oneway_netcore(size: usize, count: u64) -> Result<f64> {
    let mut tasks = Tasks::default();
    let (c, s) = net::link_pair(&Link::Tcp).await?;
    let client = Pipe::new(c, net::tcp_config());
    let server = Pipe::new(s, net::tcp_config());
    client.ready().await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tasks.add(tokio::spawn(async move {
        let mut n = 0u64;
        let mut bytes = 0u64;
        while let Some(m) = server.accept().await {
            let mut b = m.body;
            while let Ok(Some(c)) = b.chunk().await {
                bytes += c.len() as u64;
            }
            n += 1;
            if n == count {
                let _ = tx.send(bytes);
                break;
            }
        }
        drop(server);
    }));
    let start = Instant::now();
    let body = payload(size);
    // At most WINDOW messages queued below the application (the core refuses more than
    // `max_queued_outgoing`): wait for the oldest to be handed to the protocol.
    const WINDOW: usize = 8192;
    let mut queued = std::collections::VecDeque::with_capacity(WINDOW + 1);
    for _ in 0..count {
        queued.push_back(client.send(DROP.clone(), body.clone()).await?);
        if queued.len() > WINDOW {
            if let Some(h) = queued.pop_front() {
                h.finished().await?;
            }
        }
    }
    for h in queued {
        h.finished().await?;
    }
    let bytes = rx.await.map_err(|_| anyhow!("receiver ended early"))?;
    let t = start.elapsed().as_secs_f64();
    if bytes != size as u64 * count {
        bail!(
            "netcore delivered {bytes} bytes, expected {}",
            size as u64 * count
        );
    }
    Ok(t)
}

/// Seconds for `count` one-way messages of `size` bytes sent in [`MessageBatch`]es of
/// `batch` and taken with `accept_many`, the API made for streams of small messages.
async fn oneway_netcore_batched(size: usize, count: u64, batch: usize) -> Result<f64> {
    let mut tasks = Tasks::default();
    let (c, s) = net::link_pair(&Link::Tcp).await?;
    let client = Pipe::new(c, net::tcp_config());
    let server = Pipe::new(s, net::tcp_config());
    client.ready().await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tasks.add(tokio::spawn(async move {
        let mut n = 0u64;
        let mut bytes = 0u64;
        let mut got = Vec::with_capacity(1024);
        'outer: loop {
            got.clear();
            if server.accept_many(&mut got, 1024).await == 0 {
                break;
            }
            for m in got.drain(..) {
                let mut b = m.body;
                while let Ok(Some(c)) = b.chunk().await {
                    bytes += c.len() as u64;
                }
                n += 1;
                if n == count {
                    break 'outer;
                }
            }
        }
        let _ = tx.send(bytes);
        drop(server);
    }));
    let start = Instant::now();
    let body = payload(size);
    // As with single sends, at most ~8192 messages queued below the application.
    let window = (8192 / batch.max(1)).max(2);
    let mut queued = std::collections::VecDeque::with_capacity(window + 1);
    let mut left = count;
    while left > 0 {
        let n = left.min(batch as u64);
        let mut b = MessageBatch::with_capacity(n as usize);
        for _ in 0..n {
            b.push(DROP.clone(), body.clone());
        }
        left -= n;
        queued.push_back(client.send_batch(b));
        if queued.len() > window {
            if let Some(h) = queued.pop_front() {
                h.finished().await?;
            }
        }
    }
    for h in queued {
        h.finished().await?;
    }
    let bytes = rx.await.map_err(|_| anyhow!("receiver ended early"))?;
    let t = start.elapsed().as_secs_f64();
    if bytes != size as u64 * count {
        bail!(
            "netcore delivered {bytes} bytes, expected {}",
            size as u64 * count
        );
    }
    Ok(t)
}

fn ldc() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(64 << 20)
        .new_codec()
}

/// Seconds for `count` LengthDelimitedCodec frames of `size` bytes to arrive.
async fn oneway_ldc(size: usize, count: u64) -> Result<f64> {
    let (c, s) = tcp_pair().await?;
    let mut tasks = Tasks::default();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tasks.add(tokio::spawn(async move {
        let mut r = Framed::new(s, ldc());
        let mut n = 0u64;
        let mut bytes = 0u64;
        while let Some(Ok(f)) = r.next().await {
            bytes += f.len() as u64;
            n += 1;
            if n == count {
                break;
            }
        }
        let _ = tx.send(bytes);
    }));
    let start = Instant::now();
    let mut w = Framed::new(c, ldc());
    let body = payload(size);
    for _ in 0..count {
        w.feed(body.clone()).await?;
    }
    SinkExt::<Bytes>::flush(&mut w).await?;
    let bytes = rx.await.map_err(|_| anyhow!("receiver ended early"))?;
    let t = start.elapsed().as_secs_f64();
    if bytes != size as u64 * count {
        bail!("ldc delivered {bytes} bytes");
    }
    Ok(t)
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

// ------------------------------------------------------------------ realistic

async fn realistic(ctx: &mut Ctx) -> Result<()> {
    let clients = ctx.q(16usize, 64);
    let dur = ctx.q(Duration::from_millis(800), Duration::from_secs(4));
    let protos = [Proto::Netcore, Proto::Plain, Proto::Yamux];
    let mut rate: Vec<Samples> = vec![Samples::default(); 3];
    let mut p50: Vec<Samples> = vec![Samples::default(); 3];
    let mut p99: Vec<Samples> = vec![Samples::default(); 3];
    for run in 0..ctx.runs {
        for (i, p) in protos.iter().enumerate() {
            let mut tasks = Tasks::default();
            let mut conns = Vec::new();
            for _ in 0..clients {
                conns.push(connect(*p, &Link::Tcp, None, &mut tasks).await?);
            }
            let conns = Arc::new(conns);
            let seed = 0x5eed ^ run as u64;
            let (n, secs, lat) = with_limit(
                dur * 4 + Duration::from_secs(20),
                "realistic",
                closed_loop(clients, dur, 10_000_000, move |i| {
                    let conns = conns.clone();
                    async move {
                        let mut rng =
                            Rng::new(seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
                        // Think time: exponential, mean 2 ms; size: log-uniform 64 B .. 64 KiB.
                        let think = -2.0 * (1.0 - rng.unit()).ln();
                        tokio::time::sleep(Duration::from_secs_f64(think.min(20.0) / 1e3)).await;
                        let size = (64.0 * 1024f64.powf(rng.unit())) as usize;
                        conns[(i as usize) % conns.len()].echo(size, false).await
                    }
                }),
            )
            .await?;
            rate[i].push(n as f64 / secs);
            p50[i].push(percentile(&lat, 50.0));
            p99[i].push(percentile(&lat, 99.0));
            progress(&format!(
                "realistic run {run} {}: {:.0} req/s p50 {:.3} ms p99 {:.3} ms (incl. think time)",
                p.name(),
                n as f64 / secs,
                percentile(&lat, 50.0),
                percentile(&lat, 99.0)
            ));
        }
    }
    for i in 1..3 {
        let b = protos[i].name();
        ctx.add_record(
            "realistic",
            "requests_per_s",
            "req/s",
            Better::Higher,
            &rate[0],
            b,
            &rate[i],
            None,
        );
        ctx.add_record(
            "realistic",
            "p50_incl_think",
            "ms",
            Better::Lower,
            &p50[0],
            b,
            &p50[i],
            None,
        );
        ctx.add_record(
            "realistic",
            "p99_incl_think",
            "ms",
            Better::Lower,
            &p99[0],
            b,
            &p99[i],
            None,
        );
    }
    ctx.notes.push(format!(
        "{clients} clients, one connection each, closed loop; latency includes the exponential think time (mean 2 ms) before each request"
    ));
    Ok(())
}

// ------------------------------------------------------------------ bulk

async fn bulk(ctx: &mut Ctx) -> Result<()> {
    let size: u64 = ctx.qs(128 << 20, 1 << 30);
    let mut s: Vec<Samples> = vec![Samples::default(); 3];
    let limit = Duration::from_secs(ctx.q(30, 120));
    for run in 0..ctx.runs {
        let mut tasks = Tasks::default();
        let c = connect(Proto::Netcore, &Link::Tcp, None, &mut tasks).await?;
        let t = Instant::now();
        with_limit(limit, "bulk/netcore", c.bulk(size)).await?;
        s[0].push(size as f64 / MIB / t.elapsed().as_secs_f64());
        drop(tasks);
        let t = with_limit(limit, "bulk/raw", raw_bulk(size, 1 << 20)).await?;
        s[1].push(size as f64 / MIB / t);
        let mut tasks = Tasks::default();
        let c = connect(Proto::Yamux, &Link::Tcp, None, &mut tasks).await?;
        let t = Instant::now();
        with_limit(limit, "bulk/yamux", c.bulk(size)).await?;
        s[2].push(size as f64 / MIB / t.elapsed().as_secs_f64());
        progress(&format!(
            "bulk run {run}: netcore {:.0}, raw {:.0}, yamux {:.0} MiB/s",
            s[0].0[run], s[1].0[run], s[2].0[run]
        ));
    }
    let m = format!("one_{}_message", human(size));
    ctx.add_record(
        "bulk",
        &m,
        "MiB/s",
        Better::Higher,
        &s[0],
        "raw TCP",
        &s[1],
        Some(Goal::RatioAtLeast(0.9)),
    );
    ctx.add_record(
        "bulk",
        &m,
        "MiB/s",
        Better::Higher,
        &s[0],
        "yamux",
        &s[2],
        None,
    );
    Ok(())
}

async fn bulk8(ctx: &mut Ctx) -> Result<()> {
    // Issue 3's figure: 8 concurrent 128 MiB messages (1 GiB aggregate).
    let each: u64 = ctx.qs(16 << 20, 128 << 20);
    let total = each * 8;
    let mut s: Vec<Samples> = vec![Samples::default(); 3];
    let limit = Duration::from_secs(ctx.q(30, 120));
    // A stalled attempt (no completion within `stall`) is counted, noted and retried.
    let stall = Duration::from_secs(ctx.q(15, 60));
    let mut stalls = 0usize;
    let mut attempts = 0usize;
    for run in 0..ctx.runs.max(3) {
        for (i, p) in [Proto::Netcore, Proto::Yamux].iter().enumerate() {
            let mut done = false;
            for _attempt in 0..3 {
                let mut tasks = Tasks::default();
                let c = connect(*p, &Link::Tcp, None, &mut tasks).await?;
                let t = Instant::now();
                let all = futures::future::join_all((0..8).map(|_| c.bulk(each)));
                attempts += usize::from(i == 0);
                match tokio::time::timeout(stall.min(limit), all).await {
                    Ok(rs) => {
                        for r in rs {
                            r?;
                        }
                        s[if i == 0 { 0 } else { 2 }]
                            .push(total as f64 / MIB / t.elapsed().as_secs_f64());
                        done = true;
                        break;
                    }
                    Err(_) => {
                        stalls += 1;
                        progress(&format!("bulk8 run {run} {}: STALLED (no completion within {stall:?}); retrying", p.name()));
                        ctx.notes.push(format!("{}: 8 concurrent messages stalled in run {run} (no completion within {stall:?}); retried", p.name()));
                    }
                }
            }
            if !done {
                bail!("bulk8/{}: stalled three times in a row", p.name());
            }
        }
        let t = with_limit(limit, "bulk8/raw", raw_bulk(total, 1 << 20)).await?;
        s[1].push(total as f64 / MIB / t);
        progress(&format!(
            "bulk8 run {run}: netcore {:.0}, raw {:.0}, yamux {:.0} MiB/s",
            s[0].0[run], s[1].0[run], s[2].0[run]
        ));
    }
    if stalls > 0 {
        ctx.notes.push(format!(
            "netcore stalled in {stalls} of {attempts} attempts (a flow-control bug: report it)"
        ));
    }
    let m = format!("8x{}_aggregate", human(each));
    ctx.add_record(
        "bulk8",
        &m,
        "MiB/s",
        Better::Higher,
        &s[0],
        "raw TCP",
        &s[1],
        Some(Goal::RatioAtLeast(0.9)),
    );
    ctx.add_record(
        "bulk8",
        &m,
        "MiB/s",
        Better::Higher,
        &s[0],
        "yamux",
        &s[2],
        None,
    );
    ctx.notes.push(format!(
        "raw TCP carries the same {} aggregate on one connection (the wire's capacity)",
        human(total)
    ));
    Ok(())
}

// ------------------------------------------------------------------ latency

async fn latency(ctx: &mut Ctx) -> Result<()> {
    let n: usize = ctx.qs(2_000, 20_000);
    let limit = Duration::from_secs(ctx.q(20, 60));
    let names = [
        "netcore",
        "raw TCP ping-pong",
        "LengthDelimitedCodec",
        "yamux",
    ];
    let mut p50: Vec<Samples> = vec![Samples::default(); 4];
    let mut p99: Vec<Samples> = vec![Samples::default(); 4];
    let mut last: Vec<Vec<f64>> = vec![Vec::new(); 4];
    for run in 0..ctx.runs {
        let lats = with_limit(limit * 4, "latency", interleaved_round_trips(n)).await?;
        for (i, lat) in lats.into_iter().enumerate() {
            p50[i].push(percentile(&lat, 50.0));
            p99[i].push(percentile(&lat, 99.0));
            last[i] = lat;
        }
        progress(&format!(
            "latency run {run}: p50 netcore {:.1} us, raw {:.1} us, ldc {:.1} us, yamux {:.1} us",
            p50[0].0[run], p50[1].0[run], p50[2].0[run], p50[3].0[run]
        ));
    }
    for i in 1..4 {
        let goal = (i == 1).then_some(Goal::RatioAtMost(1.5));
        ctx.add_record(
            "latency",
            "64B_rtt_p50",
            "us",
            Better::Lower,
            &p50[0],
            names[i],
            &p50[i],
            goal,
        );
        ctx.add_record(
            "latency",
            "64B_rtt_p99",
            "us",
            Better::Lower,
            &p99[0],
            names[i],
            &p99[i],
            None,
        );
    }
    for (i, lat) in last.into_iter().enumerate() {
        let mut v = lat;
        v.sort_by(|a, b| a.total_cmp(b));
        let pts = (0..=100)
            .map(|k| {
                let idx = ((k as f64 / 100.0) * (v.len().saturating_sub(1)) as f64) as usize;
                (v.get(idx).copied().unwrap_or(0.0), k as f64)
            })
            .collect();
        ctx.series.push(Series {
            plot: "latency_cdf".into(),
            name: names[i].into(),
            points: pts,
        });
    }
    Ok(())
}

/// One client of each protocol, each with an echo server on its own loopback
/// connection.
struct RoundTrippers {
    netcore: Client,
    yamux: Client,
    raw: tokio::net::TcpStream,
    ldc: Framed<tokio::net::TcpStream, LengthDelimitedCodec>,
    _tasks: Tasks,
}

impl RoundTrippers {
    async fn new() -> Result<RoundTrippers> {
        let mut tasks = Tasks::default();
        let netcore = connect(Proto::Netcore, &Link::Tcp, None, &mut tasks).await?;
        let yamux = connect(Proto::Yamux, &Link::Tcp, None, &mut tasks).await?;
        let (raw, mut s) = tcp_pair().await?;
        tasks.add(tokio::spawn(async move {
            let mut b = [0u8; 64];
            while s.read_exact(&mut b).await.is_ok() {
                if s.write_all(&b).await.is_err() {
                    return;
                }
            }
        }));
        let (c, s) = tcp_pair().await?;
        tasks.add(tokio::spawn(async move {
            let mut f = Framed::new(s, ldc());
            while let Some(Ok(m)) = f.next().await {
                if f.send(m.freeze()).await.is_err() {
                    return;
                }
            }
        }));
        Ok(RoundTrippers {
            netcore,
            yamux,
            raw,
            ldc: Framed::new(c, ldc()),
            _tasks: tasks,
        })
    }

    /// One 64-byte round trip with protocol `i` (the order of `latency`'s names).
    async fn once(&mut self, i: usize) -> Result<()> {
        match i {
            0 => self.netcore.echo(64, false).await,
            1 => {
                self.raw.write_all(&payload(64)).await?;
                let mut b = [0u8; 64];
                self.raw.read_exact(&mut b).await?;
                Ok(())
            }
            2 => {
                self.ldc.send(payload(64)).await?;
                match self.ldc.next().await {
                    Some(Ok(m)) if m.len() == 64 => Ok(()),
                    _ => Err(anyhow!("ldc echo failed")),
                }
            }
            _ => self.yamux.echo(64, false).await,
        }
    }
}

/// `n` sequential round trips per protocol, interleaved in blocks of 100 (rotating
/// which goes first) so that every protocol sees the same machine state: on a VM an
/// idle CPU wakes up tens of microseconds slower than a busy one, which would otherwise
/// swing a ratio measured minutes apart by 4x. Blocks rather than single round trips
/// keep each protocol in its steady state (its tasks warm, on the worker that runs
/// them). Latencies in microseconds, after 100 warm-up round trips each.
async fn interleaved_round_trips(n: usize) -> Result<Vec<Vec<f64>>> {
    const BLOCK: usize = 100;
    let mut rt = RoundTrippers::new().await?;
    for i in 0..4 {
        for _ in 0..100 {
            rt.once(i).await?;
        }
    }
    let mut lat: Vec<Vec<f64>> = (0..4).map(|_| Vec::with_capacity(n)).collect();
    for block in 0..n.div_ceil(BLOCK) {
        for j in 0..4 {
            let i = (block + j) % 4;
            for _ in 0..BLOCK.min(n - block * BLOCK) {
                let t = Instant::now();
                rt.once(i).await?;
                lat[i].push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    Ok(lat)
}

// ------------------------------------------------------------------ pipelined

async fn pipelined(ctx: &mut Ctx) -> Result<()> {
    // 2 M messages: LengthDelimitedCodec moves 500 k in 40-50 ms here, too short a
    // time for a steady figure.
    let n: u64 = ctx.qs(50_000, 2_000_000);
    let limit = Duration::from_secs(ctx.q(20, 60));
    // 0: batches of 256 (send_batch + accept_many); 1: one send/accept per message;
    // 2: the baseline.
    let mut s: Vec<Samples> = vec![Samples::default(); 3];
    for run in 0..ctx.runs {
        let t = with_limit(
            limit,
            "pipelined/netcore batched",
            oneway_netcore_batched(64, n, 256),
        )
        .await?;
        s[0].push(n as f64 / t);
        let t = with_limit(limit, "pipelined/netcore", oneway_netcore(64, n)).await?;
        s[1].push(n as f64 / t);
        let t = with_limit(limit, "pipelined/ldc", oneway_ldc(64, n)).await?;
        s[2].push(n as f64 / t);
        progress(&format!(
            "pipelined run {run}: netcore batched {:.0}, one by one {:.0}, ldc {:.0} msg/s",
            s[0].0[run], s[1].0[run], s[2].0[run]
        ));
    }
    ctx.add_record(
        "pipelined",
        "64B_oneway",
        "msg/s",
        Better::Higher,
        &s[0],
        "LengthDelimitedCodec",
        &s[2],
        Some(Goal::RatioAtLeast(0.5)),
    );
    ctx.add_record(
        "pipelined",
        "64B_oneway_send_each",
        "msg/s",
        Better::Higher,
        &s[1],
        "LengthDelimitedCodec",
        &s[2],
        None,
    );
    Ok(())
}

// ------------------------------------------------------------------ head-of-line

/// Probe latencies (ms) during a bulk upload of `size` bytes, and the bulk's MiB/s.
/// Throughput unit of a HOL scenario: MiB/s on TCP, KiB/s on slow links.
fn hol_unit(link: &Link) -> (&'static str, f64) {
    match link {
        Link::Tcp => ("MiB/s", MIB),
        Link::Sim(_) => ("KiB/s", 1024.0),
    }
}

async fn hol_loaded(
    c: &Client,
    size: u64,
    interval: Duration,
    limit: Duration,
    unit: f64,
) -> Result<(Vec<f64>, f64)> {
    let bulk_client = c.clone();
    let start = Instant::now();
    let bulk = tokio::spawn(async move { bulk_client.bulk(size).await.map(|_| start.elapsed()) });
    let mut lat = Vec::new();
    tokio::time::sleep(interval.max(Duration::from_millis(5))).await;
    while !bulk.is_finished() && lat.len() < 100_000 && start.elapsed() < limit {
        let t = Instant::now();
        with_limit(limit, "probe", c.echo(64, true)).await?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(interval).await;
    }
    let took = with_limit(limit, "bulk", async { bulk.await? }).await?;
    Ok((lat, size as f64 / unit / took.as_secs_f64()))
}

async fn hol(
    ctx: &mut Ctx,
    scen: &str,
    link: Link,
    cfg: Option<PipeConfig>,
    size: u64,
    interval: Duration,
    p99_goal_ms: f64,
) -> Result<()> {
    let protos = [Proto::Netcore, Proto::Yamux, Proto::Plain];
    let (tunit, unit) = hol_unit(&link);
    // Expected duration at the link's rate (TCP: assume >= 200 MiB/s).
    let rate = match &link {
        Link::Tcp => 200.0 * MIB,
        Link::Sim(c) => c.rate_bytes_per_sec as f64,
    };
    let limit = Duration::from_secs_f64(size as f64 / rate * 4.0 + 20.0);
    let runs = if matches!(link, Link::Tcp) {
        ctx.runs
    } else {
        ctx.runs.min(2)
    };
    let mut p50: Vec<Samples> = vec![Samples::default(); 3];
    let mut p99: Vec<Samples> = vec![Samples::default(); 3];
    let mut tput: Vec<Samples> = vec![Samples::default(); 3];
    let mut un_tput = Samples::default();
    let mut un_p50 = Samples::default();
    let mut un_p99 = Samples::default();
    // Every probe of every run: one run has only a few hundred probes, so its p99 is
    // its second- or third-worst probe; pooling the runs steadies it.
    let mut pooled: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for run in 0..runs {
        for (i, p) in protos.iter().enumerate() {
            let what = format!("{scen}/{} loaded run {run}", p.name());
            let (lat, mib) = retrying(&mut ctx.notes, &what, limit, || {
                let (p, link, cfg) = (*p, link.clone(), cfg.clone());
                async move {
                    let mut tasks = Tasks::default();
                    let c = connect(p, &link, cfg, &mut tasks).await?;
                    hol_loaded(&c, size, interval, limit, unit).await
                }
            })
            .await?;
            p50[i].push(percentile(&lat, 50.0));
            p99[i].push(percentile(&lat, 99.0));
            pooled[i].extend_from_slice(&lat);
            tput[i].push(mib);
            progress(&format!(
                "{scen} run {run} {}: {} probes p50 {:.2} ms p99 {:.2} ms max {:.2} ms; bulk {:.2} {tunit}",
                p.name(),
                lat.len(),
                percentile(&lat, 50.0),
                percentile(&lat, 99.0),
                percentile(&lat, 100.0),
                mib
            ));
        }
        // netcore unloaded: the bulk alone, then probes alone, on fresh connections.
        let mut tasks = Tasks::default();
        let what = format!("{scen}/netcore unloaded bulk run {run}");
        let secs = retrying(&mut ctx.notes, &what, limit, || {
            let (link, cfg) = (link.clone(), cfg.clone());
            async move {
                let mut tasks = Tasks::default();
                let c = connect(Proto::Netcore, &link, cfg, &mut tasks).await?;
                let t = Instant::now();
                c.bulk(size).await?;
                Ok(t.elapsed().as_secs_f64())
            }
        })
        .await?;
        un_tput.push(size as f64 / unit / secs);
        let c = connect(Proto::Netcore, &link, cfg.clone(), &mut tasks).await?;
        let mut lat = Vec::new();
        let probe_deadline = Instant::now() + Duration::from_secs(5);
        while lat.len() < 200 && Instant::now() < probe_deadline {
            let t = Instant::now();
            with_limit(limit, "probe", c.echo(64, true)).await?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            tokio::time::sleep(interval).await;
        }
        un_p50.push(percentile(&lat, 50.0));
        un_p99.push(percentile(&lat, 99.0));
        progress(&format!(
            "{scen} run {run} netcore unloaded: bulk {:.2} {tunit}, probe p50 {:.2} ms p99 {:.2} ms",
            un_tput.0[run], un_p50.0[run], un_p99.0[run]
        ));
    }
    let goal = p99_goal_ms
        .is_finite()
        .then_some(Goal::ValueAtMost(p99_goal_ms));
    ctx.notes.push(format!(
        "probe_p99_all_probes: p99 over every probe of the {runs} run(s) ({} netcore probes); probe_p99_under_load: median of the runs' p99s",
        pooled[0].len()
    ));
    let all_runs = |v: &Vec<f64>| Samples(vec![percentile(v, 99.0)]);
    for i in 1..3 {
        let b = protos[i].name();
        ctx.add_record(
            scen,
            "probe_p99_all_probes",
            "ms",
            Better::Lower,
            &all_runs(&pooled[0]),
            b,
            &all_runs(&pooled[i]),
            goal,
        );
        ctx.add_record(
            scen,
            "probe_p99_under_load",
            "ms",
            Better::Lower,
            &p99[0],
            b,
            &p99[i],
            None,
        );
        ctx.add_record(
            scen,
            "probe_p50_under_load",
            "ms",
            Better::Lower,
            &p50[0],
            b,
            &p50[i],
            None,
        );
        ctx.add_record(
            scen,
            "bulk_under_load",
            tunit,
            Better::Higher,
            &tput[0],
            b,
            &tput[i],
            None,
        );
    }
    ctx.add_record(
        scen,
        "probe_p99_under_load",
        "ms",
        Better::Lower,
        &p99[0],
        "netcore unloaded",
        &un_p99,
        None,
    );
    let tgoal = matches!(link, Link::Tcp).then_some(Goal::RatioAtLeast(0.8));
    ctx.add_record(
        scen,
        "bulk_under_load",
        tunit,
        Better::Higher,
        &tput[0],
        "netcore unloaded",
        &un_tput,
        tgoal,
    );
    for (i, p) in protos.iter().enumerate() {
        ctx.series.push(Series {
            plot: "hol".into(),
            name: format!("{scen}/{}", p.name()),
            points: vec![(p50[i].median(), p99[i].median())],
        });
    }
    ctx.notes.push(format!(
        "bulk {} as one message; 64-byte requests (netcore: urgency 0) every {:?}, each awaited; length-prefixed sends one whole message per frame",
        human(size),
        interval
    ));
    Ok(())
}
