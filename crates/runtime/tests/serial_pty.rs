//! Pipes with the serial profile on real pseudo-terminal pairs made by socat.
//!
//! Needs the `socat` program (Debian/Ubuntu package `socat`: `apt-get install -y socat`).

use netcore_runtime::blocking::BlockingPipe;
use netcore_runtime::core::{ConnectionError, LinkProfile, Urgency};
use netcore_runtime::transport::connect;
use netcore_runtime::{Pipe, PipeConfig};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(60);
/// 115 200 baud, 10 bits a character.
const RATE: u64 = 11_520;

mod transport_support;
use transport_support::PtyPair;

/// Both ends of a pty pair as serial-profile pipes at 115 200 baud.
async fn pipes(pty: &PtyPair) -> (Pipe, Pipe) {
    let a = connect(&PtyPair::addr(&pty.a, 115_200)).await.unwrap();
    let b = connect(&PtyPair::addr(&pty.b, 115_200)).await.unwrap();
    (
        Pipe::new(a, PipeConfig::serial(RATE)),
        Pipe::new(b, PipeConfig::serial(RATE)),
    )
}

fn echo(server: Pipe) {
    tokio::spawn(async move {
        while let Some(m) = server.accept().await {
            let s = server.clone();
            tokio::spawn(async move {
                let id = m.id;
                if let Ok(body) = m.collect(1 << 20).await {
                    let _ = s.reply(id, body).await;
                }
            });
        }
    });
}

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_with_the_serial_profile() {
    let pty = PtyPair::new();
    let (client, server) = pipes(&pty).await;
    let params = timeout(LIMIT, client.ready()).await.unwrap().unwrap();
    assert!(
        params.max_frame <= 1024,
        "serial frames are small: {params:?}"
    );
    assert_eq!(PipeConfig::serial(RATE).core.profile, LinkProfile::Serial);
    echo(server);
    // Sizes around and across the frame size (230 bytes at 115 200 baud / 20 ms).
    for (i, len) in [0usize, 1, 229, 230, 231, 1000, 4000]
        .into_iter()
        .enumerate()
    {
        let b = body(len, i as u8);
        let r = timeout(LIMIT, client.request("echo", b.clone()))
            .await
            .unwrap()
            .unwrap();
        assert!(r.collect(1 << 20).await.unwrap() == b, "length {len}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_messages_both_directions_and_priority() {
    let pty = PtyPair::new();
    let (a, b) = pipes(&pty).await;
    echo(a.clone());
    echo(b.clone());
    // A bulk request (about 2.6 s each way at 11 520 B/s) and, during it, urgent ones
    // from both sides: they must not wait for the bulk transfer.
    let bulk_body = body(30_000, 7);
    let bulk = tokio::spawn({
        let a = a.clone();
        let bulk_body = bulk_body.clone();
        async move {
            let r = a.request("echo", bulk_body).await.unwrap();
            let got = r.collect(1 << 20).await.unwrap();
            (Instant::now(), got)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut urgent = Vec::new();
    for i in 0..6u8 {
        let from = if i % 2 == 0 { a.clone() } else { b.clone() };
        urgent.push(tokio::spawn(async move {
            let payload = body(40, i);
            let r = from
                .message("echo")
                .urgency(Urgency::HIGHEST)
                .request(payload.clone())
                .await
                .unwrap();
            assert!(r.collect(100).await.unwrap() == payload);
            Instant::now()
        }));
    }
    let mut last_urgent = None;
    for u in urgent {
        let t = timeout(LIMIT, u).await.unwrap().unwrap();
        last_urgent = Some(last_urgent.map_or(t, |l: Instant| l.max(t)));
    }
    let (bulk_done, got) = timeout(LIMIT, bulk).await.unwrap().unwrap();
    assert!(got == bulk_body, "bulk body corrupted");
    assert!(
        last_urgent.unwrap() < bulk_done,
        "urgent requests finished after the bulk transfer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_close_over_serial() {
    let pty = PtyPair::new();
    let (a, b) = pipes(&pty).await;
    timeout(LIMIT, a.ready()).await.unwrap().unwrap();
    a.send("bye", "see you").await.unwrap();
    let m = timeout(LIMIT, b.accept()).await.unwrap().unwrap();
    assert_eq!(m.collect(100).await.unwrap(), "see you");
    a.close();
    assert_eq!(timeout(LIMIT, a.closed()).await.unwrap(), None);
    assert_eq!(timeout(LIMIT, b.closed()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplugged_line_times_out_typed() {
    let mut pty = PtyPair::new();
    let (a, b) = pipes(&pty).await;
    timeout(LIMIT, a.ready()).await.unwrap().unwrap();
    let pending = tokio::spawn({
        let a = a.clone();
        async move { a.request("never", "x").await }
    });
    let _held = timeout(LIMIT, b.accept()).await.unwrap().unwrap();
    // The cable is pulled: socat goes away.
    pty.unplug();
    let r = timeout(LIMIT, pending).await.unwrap().unwrap();
    assert!(r.is_err(), "{r:?}");
    let e = timeout(LIMIT, a.closed()).await.unwrap();
    assert!(
        matches!(
            e,
            Some(ConnectionError::TransportClosed | ConnectionError::TimedOut)
        ),
        "{e:?}"
    );
}

/// The seed's `Pipe(recv_func, send_func)` on a serial device: blocking functions over
/// the pseudo-terminal's file, against an async pipe on the other end.
#[test]
fn blocking_fn_pair_on_a_pty() {
    let pty = PtyPair::new();
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pty.a)
        .unwrap();
    let mut r = dev.try_clone().unwrap();
    let mut w = dev;
    let client = BlockingPipe::from_fns(
        move |buf: &mut [u8]| r.read(buf),
        move |d: &[u8]| w.write_all(d),
        PipeConfig::serial(RATE),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let t = connect(&PtyPair::addr(&pty.b, 115_200)).await.unwrap();
        let p = Pipe::new(t, PipeConfig::serial(RATE));
        echo(p.clone());
        p
    });
    for len in [10usize, 500, 3000] {
        let b = body(len, 3);
        let reply = client.request_timeout("echo", b.clone(), LIMIT).unwrap();
        assert!(reply.collect(1 << 20).unwrap() == b, "length {len}");
    }
    client.close();
    client.wait_closed(LIMIT).unwrap();
    rt.block_on(async { timeout(LIMIT, server.closed()).await.unwrap() });
    drop(client);
    // Pulling the line ends the adapter's blocking reads.
    drop(pty);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumable_file_transfer_over_a_pty() {
    use netcore_runtime::transfer;
    let pty = PtyPair::new();
    let (client, server) = pipes(&pty).await;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = body(24_000, 9);
    std::fs::write(src.path().join("cfg.bin"), &data).unwrap();
    // The device already holds the first half from an earlier, interrupted attempt.
    std::fs::write(dst.path().join("cfg.bin"), &data[..12_000]).unwrap();
    let dir = src.path().to_path_buf();
    tokio::spawn(async move {
        while let Some(req) = server.accept().await {
            let _ = transfer::serve_file(&server, req, &dir).await;
        }
    });
    let done = timeout(
        LIMIT,
        transfer::fetch_file(&client, "files", "cfg.bin", dst.path().join("cfg.bin")),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((done.resumed_from, done.received), (12_000, 12_000));
    assert!(std::fs::read(dst.path().join("cfg.bin")).unwrap() == data);
}
