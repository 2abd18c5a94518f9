//! `latency`: 64-byte round trips, the protocols interleaved in blocks.

use super::*;

pub(super) async fn latency(ctx: &mut Ctx) -> Result<()> {
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
