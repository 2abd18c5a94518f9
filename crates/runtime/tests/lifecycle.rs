//! Lifecycle: handshake timeout, keepalive, peer close, transport errors. Every pending
//! send, receive and request resolves with a typed error within a bounded time, and no
//! task or thread outlives its connection (counted on a dedicated runtime).

use bytes::Bytes;
use netcore_runtime::core::{
    ConnectionError, ErrorCode, HandshakeError, MessageError, MessageHead,
};
use netcore_runtime::transport::{adapter_threads_alive, connect, listen, TransportAddr};
use netcore_runtime::{Pipe, PipeConfig, PipeError};
use std::future::Future;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Upper bound for anything that must "resolve within bounded time".
const BOUND: Duration = Duration::from_secs(10);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(BOUND, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not resolve within {BOUND:?}"),
    }
}

fn fast_config() -> PipeConfig {
    let mut c = PipeConfig::default();
    c.core.keepalive = Some(Duration::from_millis(100));
    c.core.idle_timeout = Duration::from_millis(600);
    c.core.handshake_timeout = Duration::from_millis(400);
    c.core.drain_timeout = Duration::from_millis(500);
    c
}

async fn tcp_pair(cfg: PipeConfig) -> (Pipe, Pipe) {
    let addr: TransportAddr = "tcp://127.0.0.1:0".parse().unwrap();
    let mut l = listen(&addr).await.unwrap();
    let bound = l.local_addr().unwrap();
    let (c, s) = tokio::join!(connect(&bound), l.accept());
    (
        Pipe::new(c.unwrap(), cfg.clone()),
        Pipe::new(s.unwrap(), cfg),
    )
}

/// A TCP relay between two pipes that a test can freeze (stop moving bytes, keep the
/// sockets open: a dead link) or kill (drop both sockets: a transport error).
struct Relay {
    frozen: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Relay {
    async fn pair(cfg: PipeConfig) -> (Pipe, Pipe, Relay) {
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let back = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (fa, ba) = (front.local_addr().unwrap(), back.local_addr().unwrap());
        let client = TcpStream::connect(fa);
        let server = TcpStream::connect(ba);
        let (c, s, f, b) = tokio::join!(client, server, front.accept(), back.accept());
        let (f, b) = (f.unwrap().0, b.unwrap().0);
        let frozen = Arc::new(AtomicBool::new(false));
        let (fr, fw) = f.into_split();
        let (br, bw) = b.into_split();
        let tasks = vec![
            tokio::spawn(Self::pump(fr, bw, frozen.clone())),
            tokio::spawn(Self::pump(br, fw, frozen.clone())),
        ];
        (
            Pipe::from_stream(c.unwrap(), cfg.clone()),
            Pipe::from_stream(s.unwrap(), cfg),
            Relay { frozen, tasks },
        )
    }

    async fn pump(
        mut r: tokio::net::tcp::OwnedReadHalf,
        mut w: tokio::net::tcp::OwnedWriteHalf,
        frozen: Arc<AtomicBool>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            match timeout(Duration::from_millis(20), r.read(&mut buf)).await {
                Err(_) => continue,
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => {
                    if w.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    fn kill(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Everything a test leaves pending on `client`: a request the server never answers, a
/// body being received, a body being sent into a full window.
struct Pending {
    request: JoinHandle<Result<netcore_runtime::IncomingMessage, PipeError>>,
    receive: JoinHandle<Result<u64, PipeError>>,
    send: JoinHandle<Result<(), PipeError>>,
}

async fn leave_pending(client: &Pipe, server: &Pipe) -> Pending {
    // A request the server accepts but never answers.
    let request = tokio::spawn({
        let c = client.clone();
        async move { c.request("never", "ping").await }
    });
    let held = bounded("accept of the request", server.accept())
        .await
        .unwrap();
    // The server streams a body that never ends; the client reads what comes.
    let mut w = server.start_writer(MessageHead::to_route("stream"), None);
    w.write(Bytes::from(vec![5u8; 10_000])).await.unwrap();
    let mut incoming = bounded("accept of the stream", client.accept())
        .await
        .unwrap();
    assert_eq!(incoming.route(), "stream");
    let receive = tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            match incoming.body.chunk().await? {
                Some(c) => n += c.len() as u64,
                None => return Ok(n),
            }
        }
    });
    // The client sends far more than the server's windows; the server never reads it.
    let mut big = client.start_writer(MessageHead::to_route("upload"), None);
    let send = tokio::spawn(async move {
        for _ in 0..1000 {
            big.write(Bytes::from(vec![1u8; 64 * 1024])).await?;
        }
        big.finish().await
    });
    let upload = bounded("accept of the upload", server.accept())
        .await
        .unwrap();
    // Keep the server's side of everything alive until the link goes.
    tokio::spawn(async move {
        let _keep = (held, w, upload);
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    Pending {
        request,
        receive,
        send,
    }
}

/// The connection-level cause of an error: `Closed(Some(e))`, or a message that failed
/// because its connection ended (`Message(ConnectionClosed(e))`).
fn closed_cause(e: &PipeError) -> Option<&ConnectionError> {
    match e {
        PipeError::Closed(Some(e)) => Some(e),
        PipeError::Message(MessageError::ConnectionClosed(e)) => Some(e),
        _ => None,
    }
}

fn failed_with<T: std::fmt::Debug>(
    r: &Result<T, PipeError>,
    check: impl Fn(&ConnectionError) -> bool,
) -> bool {
    match r {
        Err(e) => closed_cause(e).is_some_and(check),
        Ok(_) => false,
    }
}

/// Waits for every pending operation and checks each failed because the connection
/// ended with an error `e` where `check(e)` holds.
async fn all_fail(p: Pending, check: impl Fn(&ConnectionError) -> bool) {
    let r = bounded("pending request", p.request).await.unwrap();
    assert!(failed_with(&r, &check), "request: {r:?}");
    let r = bounded("pending receive", p.receive).await.unwrap();
    assert!(failed_with(&r, &check), "receive: {r:?}");
    let r = bounded("pending send", p.send).await.unwrap();
    assert!(failed_with(&r, &check), "send: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_timeout_fails_everything_pending() {
    // A peer that accepts the TCP connection and never says anything.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    });
    let client = Pipe::from_stream(TcpStream::connect(addr).await.unwrap(), fast_config());
    let t0 = Instant::now();
    let req = tokio::spawn({
        let c = client.clone();
        async move { c.request("r", "x").await }
    });
    let sent = client.send("s", "y").await.unwrap();
    let accepted = tokio::spawn({
        let c = client.clone();
        async move { c.accept().await.is_none() }
    });
    let r = bounded("ready", client.ready()).await;
    let is_timeout =
        |e: &ConnectionError| matches!(e, ConnectionError::Handshake(HandshakeError::Timeout));
    assert!(failed_with(&r, is_timeout), "{r:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(350),
        "{:?}",
        t0.elapsed()
    );
    let r = bounded("request", req).await.unwrap();
    assert!(failed_with(&r, is_timeout), "{r:?}");
    let r = bounded("send", sent.finished()).await;
    assert!(failed_with(&r, is_timeout), "{r:?}");
    assert!(bounded("accept", accepted).await.unwrap());
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_keeps_an_idle_connection_and_its_absence_times_it_out() {
    // With keepalive (100 ms) an idle connection outlives several idle timeouts (600 ms).
    let (a, b) = tcp_pair(fast_config()).await;
    bounded("handshake", a.ready()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(!a.is_closed() && !b.is_closed());
    let echo = tokio::spawn({
        let b = b.clone();
        async move {
            let m = b.accept().await.unwrap();
            let id = m.id;
            let body = m.collect(100).await.unwrap();
            b.reply(id, body).await.unwrap();
        }
    });
    let r = bounded("request", a.request("echo", "alive"))
        .await
        .unwrap();
    assert_eq!(r.collect(100).await.unwrap(), "alive");
    echo.await.unwrap();

    // Without keepalive on either side the same idle period ends it, typed.
    let mut cfg = fast_config();
    cfg.core.keepalive = None;
    let (a, b) = tcp_pair(cfg).await;
    bounded("handshake", a.ready()).await.unwrap();
    // Both sides time out at about the same moment: each ends with its own TimedOut,
    // the other's TIMEOUT error, or — when both close at once and the other's ERROR
    // frame is lost to the reset — the transport closing; at least one timed out itself.
    let mut own_timeouts = 0;
    for p in [&a, &b] {
        let e = bounded("idle timeout", p.closed()).await;
        match &e {
            Some(ConnectionError::TimedOut) => own_timeouts += 1,
            Some(ConnectionError::PeerError {
                code: ErrorCode::TIMEOUT,
                ..
            })
            | Some(ConnectionError::TransportClosed) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(own_timeouts >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_link_times_out_every_pending_operation() {
    let (client, server, relay) = Relay::pair(fast_config()).await;
    bounded("handshake", client.ready()).await.unwrap();
    let pending = leave_pending(&client, &server).await;
    let t0 = Instant::now();
    relay.freeze();
    all_fail(pending, |e| *e == ConnectionError::TimedOut).await;
    // Idle timeout 600 ms: well within a few of them.
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let e = bounded("server close", server.closed()).await;
    assert_eq!(e, Some(ConnectionError::TimedOut));
    relay.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_error_fails_every_pending_operation() {
    let (client, server, relay) = Relay::pair(PipeConfig::default()).await;
    bounded("handshake", client.ready()).await.unwrap();
    let pending = leave_pending(&client, &server).await;
    relay.kill();
    all_fail(pending, |e| *e == ConnectionError::TransportClosed).await;
    assert_eq!(
        bounded("server close", server.closed()).await,
        Some(ConnectionError::TransportClosed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_abort_fails_every_pending_operation_with_its_code() {
    let (client, server) = tcp_pair(PipeConfig::default()).await;
    let pending = leave_pending(&client, &server).await;
    server.abort(ErrorCode(0x1234), "maintenance");
    all_fail(pending, |e| {
        matches!(e, ConnectionError::PeerError { code, reason } if *code == ErrorCode(0x1234) && reason == "maintenance")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_peer_close_resolves_pending_requests_and_refuses_new_ones() {
    let (client, server) = tcp_pair(fast_config()).await;
    let r1 = tokio::spawn({
        let c = client.clone();
        async move { c.request("unanswered", "1").await }
    });
    let _m1 = bounded("accept", server.accept()).await.unwrap();
    server.close();
    // The unanswered request resolves (the connection closes; nothing waits for a reply
    // the server never sends).
    let r = bounded("unanswered", r1).await.unwrap();
    assert!(matches!(r, Err(PipeError::Closed(_))), "{r:?}");
    bounded("client closed", client.closed()).await;
    bounded("server closed", server.closed()).await;
    let late = bounded("late request", client.request("late", "3")).await;
    assert!(matches!(late, Err(PipeError::Closed(_))), "{late:?}");
    assert!(bounded("accept", client.accept()).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_close_with_nothing_in_flight_is_clean_on_both_sides() {
    let (client, server) = tcp_pair(PipeConfig::default()).await;
    bounded("handshake", client.ready()).await.unwrap();
    client.close();
    assert_eq!(bounded("client closed", client.closed()).await, None);
    assert_eq!(bounded("server closed", server.closed()).await, None);
    assert!(bounded("accept", server.accept()).await.is_none());
}

/// Runs `scenario` on a fresh runtime and checks that every task it spawned (drivers,
/// body streamers) has ended within a bound once the pipes are gone.
fn run_counting_tasks<F>(name: &str, scenario: impl FnOnce() -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(scenario());
    let t0 = Instant::now();
    loop {
        let alive = rt.metrics().num_alive_tasks();
        if alive == 0 {
            break;
        }
        assert!(
            t0.elapsed() < BOUND,
            "{name}: {alive} tasks still alive {BOUND:?} after the scenario"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn no_task_or_thread_outlives_its_connection() {
    let threads_before = adapter_threads_alive();
    // Many connections ended every way: graceful close, drop, abort, transport loss,
    // handshake timeout; with streamed bodies and requests in flight.
    run_counting_tasks("tcp", || async {
        let mut keep = Vec::new();
        for i in 0..12u32 {
            let (a, b) = tcp_pair(fast_config()).await;
            let echo = tokio::spawn({
                let b = b.clone();
                async move {
                    while let Some(m) = b.accept().await {
                        let id = m.id;
                        if let Ok(body) = m.collect(1 << 20).await {
                            let _ = b.reply(id, body).await;
                        }
                    }
                }
            });
            let body = netcore_runtime::Body::stream(
                std::io::Cursor::new(vec![i as u8; 300_000]),
                Some(300_000),
            );
            let r = bounded("echo", a.request("echo", body)).await.unwrap();
            assert_eq!(r.collect(1 << 20).await.unwrap().len(), 300_000);
            match i % 4 {
                0 => {
                    a.close();
                    bounded("close", a.closed()).await;
                }
                1 => drop(a),
                2 => a.abort(ErrorCode(0x10), "test"),
                _ => {
                    // Leave a request pending and then abort the other side.
                    let p = tokio::spawn({
                        let a = a.clone();
                        async move { a.request("echo", vec![0u8; 2_000_000]).await }
                    });
                    b.abort(ErrorCode(0x11), "test");
                    let _ = bounded("pending", p).await.unwrap();
                }
            }
            bounded("echo server end", echo).await.unwrap();
            keep.push(b);
        }
        for b in &keep {
            bounded("server close", b.closed()).await;
        }
        drop(keep);
        // A handshake that never completes.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (peer, _) = l.accept().await.unwrap();
        let p = Pipe::from_stream(s, fast_config());
        assert!(bounded("handshake timeout", p.ready()).await.is_err());
        drop((p, peer));
    });
    // The seed's fn-pair pipes: their adapter threads end with them.
    run_counting_tasks("from_fns", || async {
        for _ in 0..3 {
            let (x, y) = std::os::unix::net::UnixStream::pair().unwrap();
            let mk = |s: std::os::unix::net::UnixStream| {
                let mut r = s.try_clone().unwrap();
                let w = ShutOnDrop(s);
                let mut w = w;
                Pipe::from_fns(
                    move |buf: &mut [u8]| r.read(buf),
                    move |d: &[u8]| w.0.write_all(d),
                    PipeConfig::default(),
                )
                .unwrap()
            };
            let (a, b) = (mk(x), mk(y));
            a.send("hi", "there").await.unwrap();
            let m = bounded("accept", b.accept()).await.unwrap();
            assert_eq!(m.collect(10).await.unwrap(), "there");
            a.close();
            bounded("close", b.closed()).await;
            bounded("close", a.closed()).await;
        }
    });
    let t0 = Instant::now();
    while adapter_threads_alive() > threads_before {
        assert!(
            t0.elapsed() < BOUND,
            "{} adapter threads leaked",
            adapter_threads_alive() - threads_before
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Shuts the socket down when the send function is dropped, so the peer's blocking
/// `recv` returns (as closing a serial port does).
struct ShutOnDrop(std::os::unix::net::UnixStream);

impl Drop for ShutOnDrop {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Item 1 stress: one receiver reads one big message very slowly while many echo
/// streams flow in both directions; the slow one only holds back its own sender (by
/// credit), never the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_does_not_stall_other_streams() {
    let (a, b) = tcp_pair(PipeConfig::default()).await;
    let slow_read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // Each side echoes everything except the "slow" route, which it reads at ~1 MB/s.
    for p in [&a, &b] {
        let p = p.clone();
        let slow_read = slow_read.clone();
        tokio::spawn(async move {
            while let Some(mut m) = p.accept().await {
                let p = p.clone();
                let slow_read = slow_read.clone();
                tokio::spawn(async move {
                    if m.route() == "slow" {
                        while let Ok(Some(c)) = m.body.chunk().await {
                            slow_read.fetch_add(c.len() as u64, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(16)).await;
                        }
                        return;
                    }
                    let id = m.id;
                    if let Ok(body) = m.collect(8 << 20).await {
                        let _ = p.reply(id, body).await;
                    }
                });
            }
        });
    }
    // 64 MiB to the slow reader: it cannot finish during the test.
    let slow = a
        .send(
            "slow",
            netcore_runtime::Body::stream(tokio::io::repeat(9).take(64 << 20), Some(64 << 20)),
        )
        .await
        .unwrap();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..48u32 {
        let from = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for round in 0..4u32 {
                let len = [100usize, 40_000, 700_000][((i + round) % 3) as usize];
                let body: Vec<u8> = (0..len).map(|k| (k as u32 ^ i ^ round) as u8).collect();
                let r = from.request("echo", body.clone()).await.unwrap();
                assert!(
                    r.collect(8 << 20).await.unwrap() == body,
                    "echo {i} corrupted"
                );
            }
        }));
    }
    timeout(Duration::from_secs(60), async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "echo streams stalled behind a slow consumer (slow message: {:?} sent, {} read)",
            slow.progress(),
            slow_read.load(Ordering::SeqCst)
        )
    });
    let took = t0.elapsed();
    // The slow message is still going, and its sender ran ahead of the reader by at most
    // the receive windows plus buffers, not by the whole body.
    let (sent, _) = slow.progress();
    let read = slow_read.load(Ordering::SeqCst);
    assert!(read < 64 << 20, "the slow reader finished: test too weak");
    let cfg = PipeConfig::default();
    let bound = cfg.core.max_message_window
        + cfg.body_buffer as u64
        + cfg.core.send_buffer as u64
        + cfg.write_buffer as u64
        + (4 << 20); // socket buffers
    assert!(
        sent <= read + bound,
        "sender ran {} bytes ahead of a slow reader (bound {bound})",
        sent - read
    );
    eprintln!("echo streams done in {took:?}; slow message: {sent} sent, {read} read");
    slow.cancel();
}

/// An abort must reach the peer with its code even while the peer is still sending
/// (closing a socket with unread input resets it, which can destroy the ERROR frame).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_code_reaches_a_peer_that_is_still_sending() {
    for round in 0..10u16 {
        let (client, server) = tcp_pair(PipeConfig::default()).await;
        // The server takes everything the client floods it with.
        let sink = tokio::spawn({
            let server = server.clone();
            async move {
                while let Some(m) = server.accept().await {
                    let _ = m.collect(1 << 20).await;
                }
            }
        });
        let flood = tokio::spawn({
            let client = client.clone();
            async move {
                for _ in 0..100_000 {
                    if client.send("flood", vec![3u8; 32 * 1024]).await.is_err()
                        || client.is_closed()
                    {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let code = ErrorCode(0x4000 + u64::from(round));
        server.abort(code, "stop");
        let e = bounded("client close", client.closed()).await;
        assert!(
            matches!(&e, Some(ConnectionError::PeerError { code: c, .. }) if *c == code),
            "round {round}: {e:?}"
        );
        bounded("flood end", flood).await.unwrap();
        bounded("sink end", sink).await.unwrap();
    }
}

/// Item 1 stress: eight concurrent bulk messages in one direction, each written in
/// 1 MiB pieces, must all finish (the core once lost messages that were given data
/// after the connection credit ran out: they never came back when credit did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_bulk_messages_do_not_stall() {
    const EACH: u64 = 6 << 20;
    for round in 0..4 {
        let (a, b) = tcp_pair(PipeConfig::default()).await;
        tokio::spawn({
            let b = b.clone();
            async move {
                while let Some(m) = b.accept().await {
                    let b = b.clone();
                    tokio::spawn(async move {
                        let id = m.id;
                        let mut body = m.body;
                        let mut n = 0u64;
                        while let Ok(Some(c)) = body.chunk().await {
                            n += c.len() as u64;
                        }
                        let _ = b.reply(id, n.to_be_bytes().to_vec()).await;
                    });
                }
            }
        });
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let mut w = a.start_writer(MessageHead::to_route("sink").with_len(EACH), Some(tx));
                let mut left = EACH;
                while left > 0 {
                    let n = left.min(1 << 20) as usize;
                    w.write(Bytes::from(vec![7u8; n])).await.unwrap();
                    left -= n as u64;
                }
                w.finish().await.unwrap();
                let r = rx.await.unwrap().unwrap();
                let got = r.collect(8).await.unwrap();
                assert_eq!(u64::from_be_bytes(got[..].try_into().unwrap()), EACH);
            }));
        }
        timeout(Duration::from_secs(60), async {
            for t in tasks {
                t.await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: eight concurrent bulk messages stalled"));
    }
}
