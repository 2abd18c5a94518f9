//! On a slow TCP path the driver shrinks its write batch and `TCP_NOTSENT_LOWAT` to a
//! few milliseconds of the rate the socket drains (`PipeConfig::tcp_queue_target`), so
//! that an urgent message does not wait behind the configured sizes' worth of bulk.
//!
//! The slow path is real: a relay on 127.0.0.1 between two pipes forwards the
//! sender's bytes at ~1 MB/s, reading them in 4 KiB pieces from a socket with a small
//! receive buffer, so the sender's socket pushes back as behind a slow link. The driver
//! says what it chose in a debug event, which this test reads from a subscriber (its
//! own process: one test file, one global subscriber).

use bytes::Bytes;
use netcore_core::MessageHead;
use netcore_runtime::transport::{self, TransportAddr};
use netcore_runtime::{Pipe, PipeConfig};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Captured log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Forwards `from` to `to` at about `rate` bytes/s in pieces of `piece` bytes.
async fn forward_slowly(mut from: TcpStream, mut to: TcpStream, rate: u64, piece: usize) {
    let mut buf = vec![0u8; piece];
    let pause = Duration::from_secs_f64(piece as f64 / rate as f64);
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        tokio::time::sleep(pause).await;
    }
}

/// A relay: listens on 127.0.0.1, connects each client to `target`; client → target
/// at `rate` bytes/s, target → client at full speed.
async fn slow_relay(target: std::net::SocketAddr, rate: u64) -> std::net::SocketAddr {
    // A small receive buffer on the accepted socket: the client's sends back up soon.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(64 * 1024).unwrap();
    sock.set_reuse_address(true).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(8).unwrap();
    sock.set_nonblocking(true).unwrap();
    let listener = TcpListener::from_std(sock.into()).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(target).await.unwrap();
        let (cr, cw) = (client.into_std().unwrap(), server.into_std().unwrap());
        let (c2, s2) = (cr.try_clone().unwrap(), cw.try_clone().unwrap());
        let up = forward_slowly(
            TcpStream::from_std(cr).unwrap(),
            TcpStream::from_std(cw).unwrap(),
            rate,
            4096,
        );
        let down = forward_slowly(
            TcpStream::from_std(s2).unwrap(),
            TcpStream::from_std(c2).unwrap(),
            u64::MAX / 4,
            64 * 1024,
        );
        tokio::join!(up, down);
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_path_shrinks_the_send_queue() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("netcore_runtime=debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let addr: TransportAddr = "tcp://127.0.0.1:0".parse().unwrap();
    let mut listener = transport::listen(&addr).await.unwrap();
    let target = match listener.local_addr().unwrap() {
        TransportAddr::Tcp(t) => format!("{}:{}", t.host, t.port).parse().unwrap(),
        other => panic!("not tcp: {other}"),
    };
    let relay = slow_relay(target, 1_000_000).await;
    let server = tokio::spawn(async move {
        let server = Pipe::new(listener.accept().await.unwrap(), PipeConfig::default());
        while let Some(m) = server.accept().await {
            let mut body = m.body;
            while let Ok(Some(_)) = body.chunk().await {}
        }
    });
    let relay_addr: TransportAddr = format!("tcp://{relay}").parse().unwrap();
    let client = Pipe::new(
        transport::connect(&relay_addr).await.unwrap(),
        PipeConfig::default(),
    );
    tokio::time::timeout(Duration::from_secs(10), client.ready())
        .await
        .expect("handshake through the relay")
        .unwrap();
    let mut w = client.start_writer(MessageHead::to_route("sink"), None);
    let writer = tokio::spawn(async move {
        let piece = Bytes::from(vec![7u8; 64 * 1024]);
        for _ in 0..64 {
            if w.write(piece.clone()).await.is_err() {
                return;
            }
        }
        let _ = w.finish().await;
    });

    // At 1 MB/s the target of 4 ms is 4 000 bytes: the 4 KiB floor, or a little more
    // while the first bursts into the relay's buffer raise the measured rate.
    let resized = |log: &Captured| {
        let text = String::from_utf8_lossy(&log.0.lock().unwrap()).to_string();
        text.lines()
            .filter(|l| l.contains("send queue sized to the drain rate"))
            .filter_map(|l| {
                l.split("lowat=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect::<Vec<u32>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let small = |seen: &[u32]| seen.iter().any(|&l| l <= 8192);
    while !small(&resized(&log)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = resized(&log);
    writer.abort();
    server.abort();
    assert!(
        small(&seen),
        "the driver never sized its send queue to the slow path (4 ms of 1 MB/s, at most 8 KiB): {seen:?}"
    );
}
