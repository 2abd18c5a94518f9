//! `realistic`: many clients, one connection each, random sizes and think times.

use super::*;

pub(super) async fn realistic(ctx: &mut Ctx) -> Result<()> {
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
