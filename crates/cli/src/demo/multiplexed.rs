//! The netcore side of a demo phase: one connection carrying a bulk message and a stream
//! of small requests at the same time, the bulk at a lower urgency.

use netcore_core::{MessageHead, Urgency};
use netcore_runtime::{Body, IncomingMessage, Pipe, PipeError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stats::{Latency, Live, SideResult};
use crate::util::PatternReader;

/// Route of the bulk message.
pub const BULK_ROUTE: &str = "demo/bulk";
/// Route of the small requests.
pub const SMALL_ROUTE: &str = "demo/echo";
/// Urgency of the bulk message (lower than the default 3 of the small requests).
pub const BULK_URGENCY: Urgency = Urgency::new(6);

/// Serves the demo's two routes on `pipe`, counting bulk bytes into `live`.
pub fn serve(pipe: Pipe, live: Arc<Live>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(msg) = pipe.accept().await {
            let (pipe, live) = (pipe.clone(), live.clone());
            tokio::spawn(async move {
                if let Err(e) = handle(&pipe, msg, &live).await {
                    tracing::debug!(error = %e, "demo handler");
                }
            });
        }
    })
}

async fn handle(pipe: &Pipe, msg: IncomingMessage, live: &Live) -> Result<(), PipeError> {
    let id = msg.id;
    if msg.route() == BULK_ROUTE {
        let mut body = msg.body;
        let mut n = 0u64;
        while let Some(c) = body.chunk().await? {
            n += c.len() as u64;
            live.bulk_done.fetch_add(c.len() as u64, Ordering::Relaxed);
        }
        pipe.reply(id, n.to_string()).await?;
    } else {
        let body = msg.collect(64 * 1024).await?;
        pipe.reply(id, body).await?;
    }
    Ok(())
}

/// Sends a `bulk`-byte message and, every `interval` until it is through, a small request
/// of `small` bytes; returns the figures. `live` is the receiver-side counter the server
/// (see [`serve`]) updates; request latencies are recorded into it too.
pub async fn run(
    pipe: Pipe,
    bulk: u64,
    small: usize,
    interval: Duration,
    read_cap: usize,
    live: Arc<Live>,
) -> anyhow::Result<SideResult> {
    let started = Instant::now();
    let mut head = MessageHead::to_route(BULK_ROUTE).with_urgency(BULK_URGENCY);
    head.total_len = Some(bulk);
    let (tx, mut bulk_reply) = tokio::sync::oneshot::channel();
    pipe.send_head(
        head,
        Body::stream(PatternReader::new(bulk, read_cap), Some(bulk)),
        Some(tx),
    )
    .await?;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut requests = tokio::task::JoinSet::new();
    let payload = bytes::Bytes::from(vec![0x42u8; small]);
    let bulk_result = loop {
        tokio::select! {
            r = &mut bulk_reply => break r.unwrap_or(Err(PipeError::Closed(None))),
            _ = tick.tick() => {
                let (pipe, live, payload) = (pipe.clone(), live.clone(), payload.clone());
                live.waiting.fetch_add(1, Ordering::Relaxed);
                requests.spawn(async move {
                    let t0 = Instant::now();
                    let r = async {
                        let reply = pipe.message(SMALL_ROUTE).timeout(Duration::from_secs(60)).request(payload).await?;
                        reply.collect(64 * 1024).await
                    }.await;
                    live.waiting.fetch_sub(1, Ordering::Relaxed);
                    match r {
                        Ok(_) => live.record(t0.elapsed()),
                        Err(e) => {
                            tracing::debug!(error = %e, "small request failed");
                            live.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        }
    };
    let bulk_seconds = started.elapsed().as_secs_f64();
    let reply = bulk_result.map_err(|e| anyhow::anyhow!("the bulk message failed: {e}"))?;
    let got = reply.collect(64).await?;
    if got != bulk.to_string().as_bytes() {
        anyhow::bail!(
            "the server received {} bulk bytes, not {bulk}",
            String::from_utf8_lossy(&got)
        );
    }
    while requests.join_next().await.is_some() {}
    Ok(SideResult {
        latency: Latency::of(&live.latencies()),
        failed: live.failed.load(Ordering::Relaxed),
        bulk_seconds,
        bulk_bytes_per_sec: bulk as f64 / bulk_seconds.max(1e-9),
    })
}
