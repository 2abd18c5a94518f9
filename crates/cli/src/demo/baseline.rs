//! The baseline of a demo phase: a plain one-message-at-a-time protocol (each message a
//! length prefix, a kind byte and its payload, written whole before the next one) over an
//! identical link, with the same bulk message and small requests on the same schedule.
//! A small request sent during the bulk waits until the bulk is through: head-of-line
//! blocking, measured.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::stats::{Latency, Live, SideResult};
use crate::util::PatternReader;

const KIND_BULK: u8 = 0;
const KIND_ECHO: u8 = 1;

/// Serves the baseline protocol on `io`: answers each message after reading all of it.
pub fn serve<T>(io: T, live: Arc<Live>) -> tokio::task::JoinHandle<()>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    tokio::spawn(async move {
        let (mut r, mut w) = tokio::io::split(io);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut hdr = [0u8; 9];
            if r.read_exact(&mut hdr).await.is_err() {
                return;
            }
            let len = u64::from_be_bytes(hdr[..8].try_into().unwrap_or([0; 8]));
            let kind = hdr[8];
            let mut left = len;
            let mut echo = Vec::new();
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let k = match r.read(&mut buf[..want]).await {
                    Ok(0) | Err(_) => return,
                    Ok(k) => k,
                };
                if kind == KIND_BULK {
                    live.bulk_done.fetch_add(k as u64, Ordering::Relaxed);
                } else {
                    echo.extend_from_slice(&buf[..k]);
                }
                left -= k as u64;
            }
            let payload = if kind == KIND_BULK {
                len.to_be_bytes().to_vec()
            } else {
                echo
            };
            let mut out = Vec::with_capacity(9 + payload.len());
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
            out.push(kind);
            out.extend_from_slice(&payload);
            if w.write_all(&out).await.is_err() || w.flush().await.is_err() {
                return;
            }
        }
    })
}

enum Out {
    Bulk(u64),
    Echo(Vec<u8>),
}

/// Runs the client side: the bulk message first, then a small request every `interval`
/// until the bulk's answer is back; each request's latency is recorded into `live`.
pub async fn run<T>(
    io: T,
    bulk: u64,
    small: usize,
    interval: Duration,
    live: Arc<Live>,
) -> anyhow::Result<SideResult>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(io);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    // The writer: one message at a time, each written whole.
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let (len, kind) = match &m {
                Out::Bulk(n) => (*n, KIND_BULK),
                Out::Echo(v) => (v.len() as u64, KIND_ECHO),
            };
            let mut hdr = [0u8; 9];
            hdr[..8].copy_from_slice(&len.to_be_bytes());
            hdr[8] = kind;
            w.write_all(&hdr).await?;
            match m {
                Out::Bulk(n) => {
                    tokio::io::copy(&mut PatternReader::new(n, 64 * 1024), &mut w).await?;
                }
                Out::Echo(v) => w.write_all(&v).await?,
            }
            w.flush().await?;
        }
        Ok::<_, std::io::Error>(())
    });
    // The reader: answers come back in order.
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<u8>();
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        loop {
            let mut hdr = [0u8; 9];
            r.read_exact(&mut hdr).await?;
            let len = u64::from_be_bytes(hdr[..8].try_into().unwrap_or([0; 8]));
            buf.resize(len.min(1 << 20) as usize, 0);
            r.read_exact(&mut buf).await?;
            if ev_tx.send(hdr[8]).is_err() {
                return Ok::<_, std::io::Error>(());
            }
        }
    });
    let started = Instant::now();
    out_tx
        .send(Out::Bulk(bulk))
        .map_err(|_| anyhow::anyhow!("baseline writer stopped"))?;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent: VecDeque<Instant> = VecDeque::new();
    let mut bulk_seconds = None;
    let deadline = tokio::time::sleep(Duration::from_secs(600));
    tokio::pin!(deadline);
    while bulk_seconds.is_none() || !sent.is_empty() {
        tokio::select! {
            ev = ev_rx.recv() => match ev {
                Some(KIND_BULK) => bulk_seconds = Some(started.elapsed().as_secs_f64()),
                Some(_) => {
                    if let Some(t0) = sent.pop_front() {
                        live.record(t0.elapsed());
                    }
                    live.waiting.fetch_sub(1, Ordering::Relaxed);
                    live.set_oldest(sent.front().copied());
                }
                None => break,
            },
            _ = tick.tick(), if bulk_seconds.is_none() => {
                sent.push_back(Instant::now());
                live.waiting.fetch_add(1, Ordering::Relaxed);
                live.set_oldest(sent.front().copied());
                let _ = out_tx.send(Out::Echo(vec![0x42u8; small]));
            }
            _ = &mut deadline => break,
        }
    }
    drop(out_tx);
    reader.abort();
    let _ = writer.await;
    let Some(bulk_seconds) = bulk_seconds else {
        anyhow::bail!("the baseline exchange ended before the bulk message was answered");
    };
    Ok(SideResult {
        latency: Latency::of(&live.latencies()),
        failed: sent.len() as u64,
        retried: 0,
        resumed: 0,
        bulk_seconds,
        bulk_bytes_per_sec: bulk as f64 / bulk_seconds.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_requests_wait_behind_the_bulk() {
        use netcore_runtime::transport::{SimConfig, SimLink};
        // 20 kB at 100 kB/s: the bulk takes 0.2 s on the link.
        let pair = SimLink::pair(
            SimConfig::default()
                .with_rate(100_000)
                .with_buffer_limit(1024),
        );
        let server_live = Arc::new(Live::default());
        serve(pair.b, server_live.clone());
        let live = Arc::new(Live::default());
        let r = run(pair.a, 20_000, 16, Duration::from_millis(10), live.clone())
            .await
            .unwrap();
        assert_eq!(server_live.bulk_done.load(Ordering::Relaxed), 20_000);
        assert!(r.bulk_seconds >= 0.15, "{r:?}");
        assert!(r.latency.count >= 1);
        // The first request, sent with the bulk, was answered only after all of it.
        assert!(r.latency.max_ms >= 0.9 * r.bulk_seconds * 1e3, "{r:?}");
        assert_eq!(r.failed, 0);
    }
}
