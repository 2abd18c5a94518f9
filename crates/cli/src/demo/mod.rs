//! `netcore demo` (the default command): many conversations over one slow wire.
//!
//! Two phases, each run twice at the same time on two identical links:
//!
//! 1. a simulated 115 200-baud serial line (11 520 B/s, 1 ms latency), netcore speaking its
//!    serial profile (COBS + CRC-32C frames of ~230 bytes);
//! 2. loopback TCP.
//!
//! The serial line of netcore has light line noise by default (`--noise`): a lost frame
//! costs only the message it belonged to, so the bulk resumes from the receiver's offset
//! and a hit request is sent again.
//!
//! On each link a bulk message is sent while a small request goes out every interval.
//! netcore interleaves them on one connection, the bulk at a lower urgency; the baseline
//! (see [`baseline`]) sends one message at a time, so its small requests wait behind the
//! bulk. The summary puts the two latencies side by side.

mod baseline;
mod multiplexed;
mod render;
mod stats;

use netcore_runtime::transport::{self, SimConfig, SimLink, TransportAddr};
use netcore_runtime::{Pipe, PipeConfig};
use std::sync::Arc;
use std::time::Duration;

use crate::util::{parse_duration, parse_size};
use render::Screen;
use stats::{Live, PhaseResult};

/// Arguments of `netcore demo` (also accepted by `netcore` alone).
#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(after_help = "\
Examples:
  netcore                       # the same as `netcore demo`
  netcore demo --quiet          # the summary only
  netcore demo --json | jq '.phases[] | {name, p50: .netcore.latency.p50_ms}'
  netcore demo --serial-bulk 256K --serial-interval 50ms --skip-tcp")]
pub struct DemoArgs {
    /// Print only the summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print only the results, as JSON on stdout.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Bulk message size on the serial link.
    #[arg(long, value_name = "SIZE", default_value = "64K", value_parser = parse_size)]
    pub serial_bulk: u64,
    /// Bulk message size on loopback TCP.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub tcp_bulk: u64,
    /// Time between small requests on the serial link.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub serial_interval: Duration,
    /// Time between small requests on loopback TCP.
    #[arg(long, value_name = "DURATION", default_value = "2ms", value_parser = parse_duration)]
    pub tcp_interval: Duration,
    /// Size of each small request (echoed back).
    #[arg(long, value_name = "BYTES", default_value_t = 16)]
    pub small: usize,
    /// Line noise on netcore's serial link: probability per byte of each of a dropped, a
    /// flipped and an inserted byte (the baseline's link stays clean: a plain
    /// length-prefixed stream cannot resynchronise after an error).
    #[arg(long, value_name = "P", default_value = "1e-5", value_parser = crate::util::parse_prob)]
    pub noise: f64,
    /// Seed of the line noise.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Run only the serial phase.
    #[arg(long)]
    pub skip_tcp: bool,
}

/// Serial line of the demo: 115 200 baud, 8N1.
pub const SERIAL_RATE: u64 = 11_520;

fn sim_config() -> SimConfig {
    // A UART-sized transmit buffer: the bytes in flight stay near rate × latency.
    SimConfig::default()
        .with_rate(SERIAL_RATE)
        .with_latency(Duration::from_millis(1))
        .with_buffer_limit(512)
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.serial_interval.is_zero() || args.tcp_interval.is_zero() {
        anyhow::bail!("intervals must be above zero");
    }
    let screen = Screen::new(args.quiet || args.json);
    screen.intro();
    let mut phases = vec![serial_phase(&args, &screen).await?];
    if !args.skip_tcp {
        phases.push(tcp_phase(&args, &screen).await?);
    }
    if args.json {
        let v = serde_json::json!({
            "demo": "small requests during a bulk transfer: netcore vs one message at a time",
            "phases": phases,
        });
        crate::util::print_stdout(&(serde_json::to_string_pretty(&v)? + "\n"))?;
    } else {
        crate::util::print_stdout(&render::summary(&phases, &args))?;
    }
    Ok(())
}

async fn serial_phase(args: &DemoArgs, screen: &Screen) -> anyhow::Result<PhaseResult> {
    let cfg = sim_config();
    let link = if args.noise > 0.0 {
        format!(
            "serial 115200 baud, simulated ({SERIAL_RATE} B/s, 1 ms, noise {:e} per byte)",
            args.noise
        )
    } else {
        format!("serial 115200 baud, simulated ({SERIAL_RATE} B/s, 1 ms)")
    };
    let noise = if args.noise > 0.0 {
        format!(", line noise {:e} per byte", args.noise)
    } else {
        String::new()
    };
    screen.phase(
        1,
        &format!(
            "a simulated 115 200-baud serial line\n      ({SERIAL_RATE} B/s each way, 1 ms latency{noise})"
        ),
        args.serial_bulk,
        args.serial_interval,
        args.small,
    );
    let noisy = cfg
        .clone()
        .with_errors(args.noise, args.noise, args.noise)
        .with_seed(args.seed);
    let nc = SimLink::pair(noisy);
    let nc_stats = nc.stats.clone();
    let client = Pipe::new(nc.a, PipeConfig::serial(SERIAL_RATE));
    let server = Pipe::new(nc.b, PipeConfig::serial(SERIAL_RATE));
    let base = SimLink::pair(cfg);
    let phase = Phase {
        read_cap: 8 * 1024,
        bulk: args.serial_bulk,
        small: args.small,
        interval: args.serial_interval,
    };
    let (netcore, one) = phase.run(screen, client, server, base.a, base.b).await?;
    Ok(PhaseResult {
        name: "serial".into(),
        link,
        link_bytes_per_sec: Some(SERIAL_RATE),
        bulk_bytes: args.serial_bulk,
        small_bytes: args.small,
        interval_ms: args.serial_interval.as_secs_f64() * 1e3,
        netcore,
        one_at_a_time: one,
        noise: args.noise,
        injected_errors: [nc_stats.a_to_b(), nc_stats.b_to_a()]
            .iter()
            .map(|c| c.dropped + c.flipped + c.inserted)
            .sum(),
        computed_wait_seconds: Some(args.serial_bulk as f64 / SERIAL_RATE as f64),
    })
}

async fn tcp_phase(args: &DemoArgs, screen: &Screen) -> anyhow::Result<PhaseResult> {
    screen.phase(
        2,
        "loopback TCP (127.0.0.1)",
        args.tcp_bulk,
        args.tcp_interval,
        args.small,
    );
    let addr: TransportAddr = "tcp://127.0.0.1:0".parse()?;
    let mut listener = transport::listen(&addr).await?;
    let bound = listener
        .local_addr()
        .ok_or_else(|| anyhow::anyhow!("no local address"))?;
    let (c, s) = tokio::join!(transport::connect(&bound), listener.accept());
    let client = Pipe::new(c?, PipeConfig::default());
    let server = Pipe::new(s?, PipeConfig::default());
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let plain_addr = plain.local_addr()?;
    let (bc, bs) = tokio::join!(tokio::net::TcpStream::connect(plain_addr), plain.accept());
    let (bc, (bs, _)) = (bc?, bs?);
    bc.set_nodelay(true)?;
    bs.set_nodelay(true)?;
    let phase = Phase {
        read_cap: 64 * 1024,
        bulk: args.tcp_bulk,
        small: args.small,
        interval: args.tcp_interval,
    };
    let (netcore, one) = phase.run(screen, client, server, bc, bs).await?;
    Ok(PhaseResult {
        name: "tcp".into(),
        link: "loopback TCP".into(),
        link_bytes_per_sec: None,
        bulk_bytes: args.tcp_bulk,
        small_bytes: args.small,
        interval_ms: args.tcp_interval.as_secs_f64() * 1e3,
        netcore,
        one_at_a_time: one,
        noise: 0.0,
        injected_errors: 0,
        computed_wait_seconds: None,
    })
}

struct Phase {
    /// Largest piece handed to the pipe at once (below its per-message write buffer).
    read_cap: usize,
    bulk: u64,
    small: usize,
    interval: Duration,
}

impl Phase {
    /// Runs netcore over (`client`, `server`) and the baseline over (`bc`, `bs`) at once.
    async fn run<T>(
        &self,
        screen: &Screen,
        client: Pipe,
        server: Pipe,
        bc: T,
        bs: T,
    ) -> anyhow::Result<(stats::SideResult, stats::SideResult)>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let (nc_live, nc_rx) = (Arc::new(Live::default()), Arc::new(Live::default()));
        let (b_live, b_rx) = (Arc::new(Live::default()), Arc::new(Live::default()));
        let serving = multiplexed::serve(server.clone(), nc_rx.clone());
        let baseline_server = baseline::serve(bs, b_rx.clone());
        let ready = tokio::time::timeout(Duration::from_secs(10), client.ready()).await;
        match ready {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => anyhow::bail!("demo connection failed: {e}"),
            Err(_) => anyhow::bail!("demo connection: no handshake within 10 s"),
        }
        let bars = screen.bars(self.bulk, &nc_live, &nc_rx, &b_live, &b_rx);
        let (a, b) = tokio::join!(
            multiplexed::run(
                client.clone(),
                self.bulk,
                self.small,
                self.interval,
                self.read_cap,
                nc_live
            ),
            baseline::run(bc, self.bulk, self.small, self.interval, b_live),
        );
        bars.finish().await;
        client.close();
        serving.abort();
        baseline_server.abort();
        drop(server);
        Ok((a?, b?))
    }
}
