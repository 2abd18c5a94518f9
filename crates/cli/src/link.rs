//! `netcore link LISTEN TARGET`: a proxy that puts a simulated bad link (rate, latency,
//! dropped, flipped and inserted bytes) between a client and a server, so applications
//! can be tried on a "bad serial line" without hardware.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netcore_runtime::transport::{
    connect, listen, sim_proxy, SimConfig, SimCounters, SimStats, TransportAddr, TransportError,
};
use std::time::{Duration, Instant};

use crate::conn::parse_addr;
use crate::exit::{fail, ExitKind};
use crate::util::{fmt_bytes, parse_duration, parse_prob, parse_size};

/// Arguments of `netcore link`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each accepted connection gets its own simulated link to a new connection to TARGET.
Errors are drawn per byte from the seed, so a run replays exactly. Over a link with errors
both netcore ends need the serial profile (`--profile serial` on serve/call/send/get).

Examples:
  # 115 200 baud with 5 ms latency between a client on :7001 and a server on :7000
  netcore link tcp://127.0.0.1:7001 tcp://127.0.0.1:7000 --baud 115200 --latency 5ms
  # a noisy line: one byte in 10 000 dropped, flipped or doubled
  netcore link tcp://127.0.0.1:7001 tcp://127.0.0.1:7000 --rate 11520 --drop 1e-4 --flip 1e-4 --insert 1e-4
  netcore serve tcp://127.0.0.1:7000 --profile serial &
  netcore call tcp://127.0.0.1:7001 echo hello --profile serial")]
pub struct LinkArgs {
    /// Address clients connect to.
    #[arg(value_parser = parse_addr)]
    pub listen: TransportAddr,
    /// Address every accepted connection is forwarded to.
    #[arg(value_parser = parse_addr)]
    pub target: TransportAddr,
    /// Link rate in bytes per second each way (0 = unlimited).
    #[arg(
        long,
        value_name = "BYTES_PER_S",
        default_value_t = 0,
        conflicts_with = "baud"
    )]
    pub rate: u64,
    /// Link rate as a serial baud rate (8N1: baud / 10 bytes per second).
    #[arg(long)]
    pub baud: Option<u64>,
    /// One-way latency (e.g. 1ms, 50ms).
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = parse_duration)]
    pub latency: Duration,
    /// Probability that a byte is dropped.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_prob)]
    pub drop: f64,
    /// Probability that one bit of a byte is flipped.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_prob)]
    pub flip: f64,
    /// Probability that a random byte is inserted before a byte.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_prob)]
    pub insert: f64,
    /// Seed of the error pattern.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Bytes in flight per direction before the sender waits (default: rate × latency + 1 KiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub buffer: Option<u64>,
    /// Exit after the first connection ends.
    #[arg(long)]
    pub once: bool,
    /// Print the final counters as one JSON line on stdout.
    #[arg(long)]
    pub json: bool,
    /// No live counters on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

impl LinkArgs {
    fn config(&self) -> SimConfig {
        let rate = self.baud.map_or(self.rate, |b| b / 10);
        let buffer = self.buffer.unwrap_or_else(|| {
            if rate == 0 {
                256 * 1024
            } else {
                (rate as f64 * (self.latency.as_secs_f64() + 0.002)) as u64 + 1024
            }
        });
        SimConfig::default()
            .with_rate(rate)
            .with_latency(self.latency)
            .with_errors(self.drop, self.flip, self.insert)
            .with_seed(self.seed)
            .with_buffer_limit(buffer.clamp(1, 64 << 20) as usize)
    }
}

fn counters_text(c: &SimCounters) -> String {
    format!(
        "{} sent, {} delivered, {} dropped, {} flipped, {} inserted",
        fmt_bytes(c.sent),
        fmt_bytes(c.delivered),
        c.dropped,
        c.flipped,
        c.inserted
    )
}

fn counters_json(c: &SimCounters) -> serde_json::Value {
    serde_json::json!({
        "sent": c.sent, "delivered": c.delivered, "dropped": c.dropped,
        "flipped": c.flipped, "inserted": c.inserted,
    })
}

/// Runs `netcore link`.
pub async fn run(args: LinkArgs) -> anyhow::Result<()> {
    let cfg = args.config();
    let mut listener = listen(&args.listen).await.map_err(|e| {
        fail(
            ExitKind::Connection,
            anyhow::Error::new(e).context("cannot listen"),
        )
    })?;
    let shown = listener
        .local_addr()
        .map_or_else(|| args.listen.to_string(), |a| a.to_string());
    eprintln!("netcore link: {shown} -> {} over [{cfg}]", args.target);
    let mut n = 0u64;
    loop {
        let a = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(TransportError::ListenerExhausted { .. }) => break,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        n += 1;
        let b = match connect(&args.target).await {
            Ok(b) => b,
            Err(e) => {
                let e = fail(
                    ExitKind::Connection,
                    anyhow::Error::new(e).context("cannot reach the target"),
                );
                if args.once {
                    return Err(e);
                }
                eprintln!("netcore link: connection {n}: {e:#}");
                continue;
            }
        };
        let proxy = sim_proxy(a, b, cfg.clone());
        let stats = proxy.stats();
        let started = Instant::now();
        let task = tokio::spawn(proxy.run());
        if args.once {
            let result = watch(&stats, task, args.quiet).await;
            let took = started.elapsed();
            report(n, &stats, took, args.json);
            return result;
        }
        let quiet = args.quiet;
        let json = args.json;
        tokio::spawn(async move {
            let r = watch(&stats, task, quiet).await;
            if let Err(e) = r {
                eprintln!("netcore link: connection {n}: {e:#}");
            }
            report(n, &stats, started.elapsed(), json);
        });
    }
    Ok(())
}

async fn watch(
    stats: &SimStats,
    mut task: tokio::task::JoinHandle<std::io::Result<(u64, u64)>>,
    quiet: bool,
) -> anyhow::Result<()> {
    let line = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if quiet {
        line.set_draw_target(ProgressDrawTarget::hidden());
    }
    line.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let result = loop {
        tokio::select! {
            r = &mut task => break r,
            _ = tick.tick() => {
                line.set_message(format!(
                    "→ {} | ← {}",
                    counters_text(&stats.a_to_b()),
                    counters_text(&stats.b_to_a())
                ));
                line.tick();
            }
        }
    };
    line.finish_and_clear();
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        Ok(Err(e)) => Err(anyhow::Error::new(e).context("forwarding failed")),
        Err(e) => Err(anyhow::anyhow!("proxy task failed: {e}")),
    }
}

fn report(n: u64, stats: &SimStats, took: Duration, json: bool) {
    let (ab, ba) = (stats.a_to_b(), stats.b_to_a());
    eprintln!(
        "netcore link: connection {n} done after {:.2} s\n  client → target: {}\n  target → client: {}",
        took.as_secs_f64(),
        counters_text(&ab),
        counters_text(&ba)
    );
    if json {
        let v = serde_json::json!({
            "connection": n,
            "seconds": took.as_secs_f64(),
            "client_to_target": counters_json(&ab),
            "target_to_client": counters_json(&ba),
        });
        let _ = crate::util::print_stdout(&format!("{v}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: LinkArgs,
    }

    #[test]
    fn baud_and_buffer_defaults() {
        let t = T::parse_from([
            "t",
            "tcp://127.0.0.1:1",
            "tcp://127.0.0.1:2",
            "--baud",
            "115200",
            "--latency",
            "10ms",
            "--drop",
            "1e-3",
        ]);
        let c = t.a.config();
        assert_eq!(c.rate_bytes_per_sec, 11_520);
        assert_eq!(c.drop_prob, 1e-3);
        assert_eq!(c.buffer_limit, (11_520.0 * 0.012) as usize + 1024);
        assert!(
            T::try_parse_from(["t", "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "--drop", "2"])
                .is_err()
        );
    }
}
