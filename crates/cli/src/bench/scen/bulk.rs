//! Bulk throughput in one process: `bulk` (one 1 GiB message) and `bulk8` (8 × 128 MiB
//! at once) against raw TCP and yamux.

use super::*;

pub(super) async fn bulk(ctx: &mut Ctx) -> Result<()> {
    let size: u64 = ctx.qs(128 << 20, 1 << 30);
    let mut s: Vec<Samples> = vec![Samples::default(); 3];
    let limit = Duration::from_secs(ctx.q(30, 120));
    // How far apart the CPUs were just before each netcore and raw run (cpus.rs).
    let mut probed = cpus::Probed::default();
    for run in 0..ctx.runs {
        let mut tasks = Tasks::default();
        let c = connect(Proto::Netcore, &Link::Tcp, None, &mut tasks).await?;
        let ns = cpus::line_transfer_ns_async().await;
        let t = Instant::now();
        with_limit(limit, "bulk/netcore", c.bulk(size)).await?;
        s[0].push(size as f64 / MIB / t.elapsed().as_secs_f64());
        probed.netcore.push((s[0].0[run], ns));
        drop(tasks);
        let ns = cpus::line_transfer_ns_async().await;
        let t = with_limit(limit, "bulk/raw", raw_bulk(size, 1 << 20)).await?;
        s[1].push(size as f64 / MIB / t);
        probed.raw.push((s[1].0[run], ns));
        let mut tasks = Tasks::default();
        let c = connect(Proto::Yamux, &Link::Tcp, None, &mut tasks).await?;
        let t = Instant::now();
        with_limit(limit, "bulk/yamux", c.bulk(size)).await?;
        s[2].push(size as f64 / MIB / t.elapsed().as_secs_f64());
        progress(&format!(
            "bulk run {run}: netcore {:.0}, raw {:.0}, yamux {:.0} MiB/s (CPU to CPU {})",
            s[0].0[run],
            s[1].0[run],
            s[2].0[run],
            probed.netcore_text(run)
        ));
    }
    ctx.notes.extend(probed.notes());
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

pub(super) async fn bulk8(ctx: &mut Ctx) -> Result<()> {
    // Issue 3's figure: 8 concurrent 128 MiB messages (1 GiB aggregate).
    let each: u64 = ctx.qs(16 << 20, 128 << 20);
    let total = each * 8;
    let mut s: Vec<Samples> = vec![Samples::default(); 3];
    let limit = Duration::from_secs(ctx.q(30, 120));
    // A stalled attempt (no completion within `stall`) is counted, noted and retried.
    let stall = Duration::from_secs(ctx.q(15, 60));
    let mut stalls = 0usize;
    let mut attempts = 0usize;
    let mut probed = cpus::Probed::default();
    for run in 0..ctx.runs.max(3) {
        for (i, p) in [Proto::Netcore, Proto::Yamux].iter().enumerate() {
            let mut done = false;
            for _attempt in 0..3 {
                let mut tasks = Tasks::default();
                let c = connect(*p, &Link::Tcp, None, &mut tasks).await?;
                let ns = if i == 0 {
                    cpus::line_transfer_ns_async().await
                } else {
                    None
                };
                let t = Instant::now();
                let all = futures::future::join_all((0..8).map(|_| c.bulk(each)));
                attempts += usize::from(i == 0);
                match tokio::time::timeout(stall.min(limit), all).await {
                    Ok(rs) => {
                        for r in rs {
                            r?;
                        }
                        let mib_s = total as f64 / MIB / t.elapsed().as_secs_f64();
                        s[if i == 0 { 0 } else { 2 }].push(mib_s);
                        if i == 0 {
                            probed.netcore.push((mib_s, ns));
                        }
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
        let ns = cpus::line_transfer_ns_async().await;
        let t = with_limit(limit, "bulk8/raw", raw_bulk(total, 1 << 20)).await?;
        s[1].push(total as f64 / MIB / t);
        probed.raw.push((s[1].0[run], ns));
        progress(&format!(
            "bulk8 run {run}: netcore {:.0}, raw {:.0}, yamux {:.0} MiB/s (CPU to CPU {})",
            s[0].0[run],
            s[1].0[run],
            s[2].0[run],
            probed.netcore_text(run)
        ));
    }
    ctx.notes.extend(probed.notes());
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
