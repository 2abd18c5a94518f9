//! The netcore side of a demo phase: one connection carrying a bulk message and a stream
//! of small requests at the same time, the bulk at a lower urgency.

use netcore_core::{MessageError, MessageHead, Urgency};
use netcore_runtime::{Body, IncomingMessage, Pipe, PipeError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stats::{Latency, Live, SideResult};
use crate::util::PatternReader;

/// Route of the bulk message.
pub const BULK_ROUTE: &str = "demo/bulk";
/// Route asking how many bulk bytes the receiver holds (to resume after a lost frame).
pub const STATUS_ROUTE: &str = "demo/status";
/// Route of the small requests.
pub const SMALL_ROUTE: &str = "demo/echo";
/// Urgency of the bulk message (lower than the default 3 of the small requests).
pub const BULK_URGENCY: Urgency = Urgency::new(6);

/// Serves the demo's routes on `pipe`, counting bulk bytes into `live`.
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
    match msg.route() {
        BULK_ROUTE => {
            // Bytes delivered are intact (a lost frame fails the message, never corrupts
            // it), so the running total is the prefix the sender can resume after.
            let mut body = msg.body;
            while let Some(c) = body.chunk().await? {
                live.bulk_done.fetch_add(c.len() as u64, Ordering::Relaxed);
            }
            let total = live.bulk_done.load(Ordering::Relaxed);
            pipe.reply(id, total.to_string()).await?;
        }
        STATUS_ROUTE => {
            drop(msg);
            let total = live.bulk_done.load(Ordering::Relaxed);
            pipe.reply(id, total.to_string()).await?;
        }
        _ => {
            let body = msg.collect(64 * 1024).await?;
            pipe.reply(id, body).await?;
        }
    }
    Ok(())
}

fn frame_lost(e: &PipeError) -> bool {
    matches!(e, PipeError::Message(MessageError::FrameLost))
}

/// Asks `route` for a number, again when line noise costs the exchange a frame.
async fn ask_number(pipe: &Pipe, route: &str) -> Result<u64, PipeError> {
    let mut last = PipeError::TimedOut;
    for _ in 0..20 {
        let r = async {
            let reply = pipe
                .message(route)
                .timeout(Duration::from_secs(30))
                .request(())
                .await?;
            reply.collect(64).await
        }
        .await;
        match r {
            Ok(b) => return Ok(String::from_utf8_lossy(&b).trim().parse().unwrap_or(0)),
            Err(e) if frame_lost(&e) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// One small request, sent again if line noise cost it a frame.
async fn small_request(pipe: Pipe, live: Arc<Live>, payload: bytes::Bytes) {
    let t0 = Instant::now();
    let mut result = Err(PipeError::TimedOut);
    for attempt in 0..5 {
        if attempt > 0 {
            live.retried.fetch_add(1, Ordering::Relaxed);
        }
        result = async {
            let reply = pipe
                .message(SMALL_ROUTE)
                .timeout(Duration::from_secs(60))
                .request(payload.clone())
                .await?;
            reply.collect(64 * 1024).await
        }
        .await;
        match &result {
            Err(e) if frame_lost(e) => continue,
            _ => break,
        }
    }
    live.waiting.fetch_sub(1, Ordering::Relaxed);
    match result {
        Ok(_) => live.record(t0.elapsed()),
        Err(e) => {
            tracing::debug!(error = %e, "small request failed");
            live.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends a `bulk`-byte message and, every `interval` until it is through, a small request
/// of `small` bytes; returns the figures. Request latencies are recorded into `live`.
/// When line noise costs the bulk message a frame, the rest is sent as a new message
/// from the offset the receiver reports (`STATUS_ROUTE`).
pub async fn run(
    pipe: Pipe,
    bulk: u64,
    small: usize,
    interval: Duration,
    read_cap: usize,
    live: Arc<Live>,
) -> anyhow::Result<SideResult> {
    let started = Instant::now();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut requests = tokio::task::JoinSet::new();
    let payload = bytes::Bytes::from(vec![0x42u8; small]);
    let mut held = 0u64;
    let mut resumed = 0u32;
    while held < bulk {
        let left = bulk - held;
        let mut head = MessageHead::to_route(BULK_ROUTE).with_urgency(BULK_URGENCY);
        head.total_len = Some(left);
        let (tx, mut bulk_reply) = tokio::sync::oneshot::channel();
        pipe.send_head(
            head,
            Body::stream(PatternReader::new(left, read_cap), Some(left)),
            Some(tx),
        )
        .await?;
        let result = loop {
            tokio::select! {
                r = &mut bulk_reply => break r.unwrap_or(Err(PipeError::Closed(None))),
                _ = tick.tick() => {
                    live.waiting.fetch_add(1, Ordering::Relaxed);
                    requests.spawn(small_request(pipe.clone(), live.clone(), payload.clone()));
                }
            }
        };
        let result = match result {
            Ok(reply) => reply.collect(64).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(b) => {
                held = String::from_utf8_lossy(&b).trim().parse().unwrap_or(0);
                if held < bulk {
                    anyhow::bail!("the receiver holds {held} of {bulk} bulk bytes after the end");
                }
            }
            Err(e) if frame_lost(&e) && resumed < 1000 => {
                resumed += 1;
                held = ask_number(&pipe, STATUS_ROUTE).await?;
                tracing::debug!(held, "bulk message lost a frame; resuming");
            }
            Err(e) => anyhow::bail!("the bulk message failed: {e}"),
        }
    }
    let bulk_seconds = started.elapsed().as_secs_f64();
    while requests.join_next().await.is_some() {}
    Ok(SideResult {
        latency: Latency::of(&live.latencies()),
        failed: live.failed.load(Ordering::Relaxed),
        retried: live.retried.load(Ordering::Relaxed),
        resumed,
        bulk_seconds,
        bulk_bytes_per_sec: bulk as f64 / bulk_seconds.max(1e-9),
    })
}
