//! Message-rate scenarios: `fixed` (16-byte requests, 16 in flight), `sizes` (one-way
//! streams by message size), `pipelined` (64-byte one-way messages), against
//! LengthDelimitedCodec, raw TCP, yamux and the length-prefixed protocol.

use super::*;

pub(super) async fn fixed(ctx: &mut Ctx) -> Result<()> {
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

pub(super) async fn sizes(ctx: &mut Ctx) -> Result<()> {
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

// ------------------------------------------------------------------ pipelined

pub(super) async fn pipelined(ctx: &mut Ctx) -> Result<()> {
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
