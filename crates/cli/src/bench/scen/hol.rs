//! Head-of-line blocking: 64-byte requests during a bulk transfer (`hol-tcp`,
//! `hol-slow`, `hol-serial`) against yamux and the length-prefixed protocol.

use super::*;

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

pub(super) async fn hol(
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
    // TCP: how far apart the CPUs were before each netcore run (cpus.rs).
    let mut probed = Vec::new();
    for run in 0..runs {
        for (i, p) in protos.iter().enumerate() {
            let probe = i == 0 && matches!(link, Link::Tcp);
            let ns = if probe {
                cpus::line_transfer_ns_async().await
            } else {
                None
            };
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
            if probe {
                probed.push((percentile(&lat, 99.0), ns));
            }
            progress(&format!(
                "{scen} run {run} {}: {} probes p50 {:.2} ms p99 {:.2} ms max {:.2} ms; bulk {:.2} {tunit}{}",
                p.name(),
                lat.len(),
                percentile(&lat, 50.0),
                percentile(&lat, 99.0),
                percentile(&lat, 100.0),
                mib,
                if probe {
                    format!(" (CPU to CPU {})", cpus::text(ns))
                } else {
                    String::new()
                }
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
    if !probed.is_empty() {
        ctx.notes
            .push(cpus::note("netcore's loaded p99", "ms", &probed));
    }
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
