//! Hostile peers against a real TCP server: raw sockets writing crafted bytes. Each gets
//! a clear error or a bounded wait, the server's memory stays within its limits, and a
//! well-behaved client keeps getting answers meanwhile. Every test is bounded in time.

use bytes::Bytes;
use netcore_runtime::core::frame::{Frame, RouteField, Start};
use netcore_runtime::core::{
    varint, Config, Connection, ConnectionError, FrameKind, HandshakeError, Instant as CoreInstant,
    ProtocolViolation, Urgency,
};
use netcore_runtime::transport::{listen, TransportAddr};
use netcore_runtime::{Pipe, PipeConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const BOUND: Duration = Duration::from_secs(15);

/// Tests measure process memory, so they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Resident set size of this process in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Server limits: what a hostile peer may make it hold.
fn server_config() -> PipeConfig {
    let mut c = PipeConfig::default();
    c.core.max_incoming = 64;
    c.core.max_message = Some(1 << 20);
    c.core.message_window = 128 * 1024;
    c.core.max_message_window = 256 * 1024;
    c.core.connection_window = 512 * 1024;
    c.core.max_connection_window = 1 << 20;
    c.core.handshake_timeout = Duration::from_millis(1000);
    c.core.keepalive = Some(Duration::from_millis(300));
    c.core.idle_timeout = Duration::from_millis(2500);
    c.body_buffer = 64 * 1024;
    c
}

/// A TCP echo server with bounded handler concurrency per connection; remembers every
/// connection so tests can see how each ended.
struct Server {
    addr: std::net::SocketAddr,
    conns: Arc<Mutex<Vec<Pipe>>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start() -> Server {
        let addr: TransportAddr = "tcp://127.0.0.1:0".parse().unwrap();
        let mut l = listen(&addr).await.unwrap();
        let bound = match l.local_addr().unwrap() {
            TransportAddr::Tcp(t) => format!("{}:{}", t.host, t.port).parse().unwrap(),
            other => panic!("{other}"),
        };
        let conns = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let conns = conns.clone();
            async move {
                while let Ok(t) = l.accept().await {
                    let pipe = Pipe::new(t, server_config());
                    conns.lock().unwrap().push(pipe.clone());
                    tokio::spawn(Self::serve(pipe));
                }
            }
        });
        Server {
            addr: bound,
            conns,
            task,
        }
    }

    async fn serve(pipe: Pipe) {
        let limit = Arc::new(tokio::sync::Semaphore::new(16));
        while let Some(m) = pipe.accept().await {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            let pipe = pipe.clone();
            tokio::spawn(async move {
                let id = m.id;
                if m.route() == "blob" {
                    // Downloads: a streamed body of the requested size (at most 32 MiB).
                    let n: u64 = match m.collect(32).await {
                        Ok(b) => std::str::from_utf8(&b)
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0),
                        Err(_) => 0,
                    };
                    let n = n.min(32 << 20);
                    let body = netcore_runtime::Body::stream(
                        tokio::io::AsyncReadExt::take(tokio::io::repeat(0x42), n),
                        Some(n),
                    );
                    if let Ok(h) = pipe.reply(id, body).await {
                        let _ = h.finished().await;
                    }
                    drop(permit);
                    return;
                }
                if let Ok(body) = m.collect(1 << 20).await {
                    if let Ok(h) = pipe.reply(id, body).await {
                        let _ = h.finished().await;
                    }
                }
                drop(permit);
            });
        }
    }

    /// The server side of the connection whose client port is `port`.
    fn conn_of(&self, port: u16) -> Option<Pipe> {
        let suffix = format!(":{port}");
        self.conns
            .lock()
            .unwrap()
            .iter()
            .find(|p| {
                p.info()
                    .peer
                    .as_deref()
                    .is_some_and(|s| s.ends_with(&suffix))
            })
            .cloned()
    }

    async fn wait_conn_of(&self, port: u16) -> Pipe {
        let t0 = Instant::now();
        loop {
            if let Some(p) = self.conn_of(port) {
                return p;
            }
            assert!(t0.elapsed() < BOUND, "server never accepted port {port}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        for p in self.conns.lock().unwrap().iter() {
            p.abort(netcore_runtime::core::ErrorCode::NO_ERROR, "test over");
        }
    }
}

/// A well-behaved client echoing requests in a loop with a deadline each; counts
/// answers and failures.
struct Prober {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    task: JoinHandle<Vec<String>>,
}

impl Prober {
    async fn start(server: &Server) -> Prober {
        let s = TcpStream::connect(server.addr).await.unwrap();
        let pipe = Pipe::from_stream(s, PipeConfig::default());
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, ok) = (stop.clone(), ok.clone());
            async move {
                let mut failures = Vec::new();
                let mut i = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let body = Bytes::from(vec![(i % 251) as u8; 1 + (i as usize % 5000)]);
                    let r = pipe
                        .message("echo")
                        .timeout(Duration::from_secs(3))
                        .request(body.clone())
                        .await;
                    match r {
                        Ok(m) => match m.collect(1 << 20).await {
                            Ok(b) if b == body => {
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            other => failures.push(format!("bad answer {i}: {other:?}")),
                        },
                        Err(e) => failures.push(format!("request {i}: {e}")),
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                failures
            }
        });
        // It works before the attack begins.
        let t0 = Instant::now();
        while ok.load(Ordering::SeqCst) < 3 {
            assert!(t0.elapsed() < BOUND, "prober never got an answer");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Prober { stop, ok, task }
    }

    /// Checks it was served throughout and still is: at least `min_more` answers since
    /// `since` (waiting for them, bounded), and no failure.
    async fn finish(self, since: u64, min_more: u64) {
        let t0 = Instant::now();
        while self.answered() < since + min_more && t0.elapsed() < BOUND {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.stop.store(true, Ordering::SeqCst);
        let failures = timeout(BOUND, self.task).await.unwrap().unwrap();
        let ok = self.ok.load(Ordering::SeqCst);
        assert!(
            failures.is_empty(),
            "well-behaved client failed: {failures:?}"
        );
        assert!(
            ok >= since + min_more,
            "well-behaved client got only {} answers during the attack",
            ok - since
        );
    }

    fn answered(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }
}

/// A raw TCP peer that completed the netcore handshake with the server.
async fn raw_handshaken(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let mut cfg = Config::tcp();
    cfg.session = 7;
    let mut c = Connection::new(cfg, CoreInstant::ZERO);
    let mut hello = Vec::new();
    c.poll_transmit(CoreInstant::ZERO, &mut hello, 4096);
    assert!(!hello.is_empty());
    s.write_all(&hello).await.unwrap();
    // Read the server's HELLO (and whatever follows) until it stops for a moment.
    let mut buf = [0u8; 4096];
    let n = timeout(BOUND, s.read(&mut buf)).await.unwrap().unwrap();
    assert!(n > 0, "server closed before its HELLO");
    s
}

/// Waits until the server's side of `port` has closed and returns why.
async fn server_close_reason(server: &Server, port: u16) -> Option<ConnectionError> {
    let p = server.wait_conn_of(port).await;
    timeout(BOUND, p.closed())
        .await
        .expect("server kept the hostile connection open")
}

/// Reads until the server closes the socket (EOF or reset); bounded.
async fn until_closed(s: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    timeout(BOUND, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("server did not close the socket");
}

fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_garbage_gets_a_clear_error() {
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let prober = Prober::start(&server).await;
    let base = prober.answered();
    for seed in 1..=8u64 {
        // Garbage instead of a HELLO.
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let port = s.local_addr().unwrap().port();
        let _ = s.write_all(&garbage(64 * 1024, seed)).await;
        let why = server_close_reason(&server, port).await;
        assert!(
            matches!(why, Some(ConnectionError::Handshake(_))),
            "seed {seed}: {why:?}"
        );
        until_closed(&mut s).await;
        // Garbage after a valid handshake.
        let mut s = raw_handshaken(&server).await;
        let port = s.local_addr().unwrap().port();
        let _ = s.write_all(&garbage(64 * 1024, seed + 100)).await;
        // Either a frame breaks the protocol, or a frame header promises bytes that
        // never come and the idle timeout (2.5 s) ends it.
        let why = server_close_reason(&server, port).await;
        assert!(
            matches!(
                why,
                Some(ConnectionError::Protocol(_) | ConnectionError::TimedOut)
            ),
            "seed {seed}: {why:?}"
        );
        until_closed(&mut s).await;
    }
    prober.finish(base, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gib_frame_length_is_refused_without_allocating() {
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let prober = Prober::start(&server).await;
    let base = prober.answered();
    let before = rss();
    for handshaken in [false, true] {
        let mut s = if handshaken {
            raw_handshaken(&server).await
        } else {
            TcpStream::connect(server.addr).await.unwrap()
        };
        let port = s.local_addr().unwrap().port();
        let mut bytes = vec![FrameKind::DATA.0];
        varint::encode(2 << 30, &mut bytes);
        bytes.extend_from_slice(&[0xAB; 4096]);
        let _ = s.write_all(&bytes).await;
        // Keep streaming as a hostile peer would; the server must not be buffering it.
        for _ in 0..64 {
            if s.write_all(&[0xCD; 16 * 1024]).await.is_err() {
                break;
            }
        }
        let why = server_close_reason(&server, port).await;
        let too_large = match &why {
            Some(ConnectionError::Protocol(ProtocolViolation::Frame(e))) => e,
            Some(ConnectionError::Handshake(HandshakeError::Frame(e))) => e,
            other => panic!("{other:?}"),
        };
        assert!(
            matches!(too_large, netcore_runtime::core::FrameError::TooLarge { len, .. } if *len == 2 << 30),
            "{why:?}"
        );
        until_closed(&mut s).await;
    }
    let grown = rss().saturating_sub(before);
    assert!(grown < 64 << 20, "server memory grew by {grown} bytes");
    prober.finish(base, 5).await;
}

fn start_frame(id: u64, fin: bool, body: &[u8]) -> Vec<u8> {
    start_frame_to("echo", id, fin, body)
}

fn start_frame_to(route: &'static str, id: u64, fin: bool, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    Frame::Start(Start {
        id8: id as u8,
        urgency: Urgency::DEFAULT,
        fin,
        reply_to: None,
        route: Some(RouteField::Literal {
            intern_as: 0,
            name: Bytes::from_static(route.as_bytes()),
        }),
        metadata: None,
        total_len: None,
        body: Bytes::copy_from_slice(body),
    })
    .encode(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_message_starts() {
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let prober = Prober::start(&server).await;
    let base = prober.answered();
    let before = rss();
    let mut s = raw_handshaken(&server).await;
    let port = s.local_addr().unwrap().port();
    let mut flood = Vec::new();
    for id in 1..=10_000u64 {
        flood.extend_from_slice(&start_frame(id, false, &[0x55; 100]));
    }
    let _ = timeout(BOUND, s.write_all(&flood)).await;
    // The server allows 64 concurrent incoming messages: the 65th start without credit
    // breaks the protocol and ends the connection with a typed error.
    let why = server_close_reason(&server, port).await;
    assert!(matches!(why, Some(ConnectionError::Protocol(_))), "{why:?}");
    until_closed(&mut s).await;
    let grown = rss().saturating_sub(before);
    assert!(grown < 64 << 20, "server memory grew by {grown} bytes");
    prober.finish(base, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_stops_reading_is_bounded_and_timed_out() {
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let prober = Prober::start(&server).await;
    let base = prober.answered();
    let before = rss();
    // A peer announcing huge windows asks for 16 downloads of 32 MiB and never reads:
    // the server's writes block on the full socket, and what it holds must stay bounded
    // by its own buffers, not by the 512 MiB asked for.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let port = s.local_addr().unwrap().port();
    let mut cfg = Config::tcp();
    cfg.session = 8;
    cfg.message_window = 64 << 20;
    cfg.max_message_window = 64 << 20;
    cfg.connection_window = 1 << 30;
    cfg.max_connection_window = 1 << 30;
    let mut hello = Vec::new();
    Connection::new(cfg, CoreInstant::ZERO).poll_transmit(CoreInstant::ZERO, &mut hello, 4096);
    s.write_all(&hello).await.unwrap();
    let mut requests = Vec::new();
    for id in 1..=16u64 {
        requests.extend_from_slice(&start_frame_to("blob", id, true, b"33554432"));
    }
    s.write_all(&requests).await.unwrap();
    let conn = server.wait_conn_of(port).await;
    // Meanwhile: served. The peer is silent from now on (it does not even read).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!conn.is_closed());
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 96 << 20,
        "server memory grew by {grown} bytes for a peer that does not read"
    );
    // It says nothing more: the server's idle timeout (2.5 s) ends it.
    let why = server_close_reason(&server, port).await;
    assert!(matches!(why, Some(ConnectionError::TimedOut)), "{why:?}");
    prober.finish(base, 20).await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_sending_one_byte_per_second() {
    let _g = SERIAL.lock().await;
    let server = Server::start().await;
    let prober = Prober::start(&server).await;
    let base = prober.answered();
    // During the handshake: the handshake timeout (1 s) ends it.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let port = s.local_addr().unwrap().port();
    let mut cfg = Config::tcp();
    cfg.session = 9;
    let mut hello = Vec::new();
    Connection::new(cfg, CoreInstant::ZERO).poll_transmit(CoreInstant::ZERO, &mut hello, 4096);
    let dripper = tokio::spawn(async move {
        for b in hello {
            if s.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        s
    });
    let t0 = Instant::now();
    let why = server_close_reason(&server, port).await;
    assert!(
        matches!(
            why,
            Some(ConnectionError::Handshake(HandshakeError::Timeout))
        ),
        "{why:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    dripper.abort();

    // After the handshake: a frame dribbled a byte a second never completes, and only
    // complete frames count as life, so the idle timeout (2.5 s) ends it although bytes
    // keep arriving; meanwhile the server holds just that partial frame.
    let mut s = raw_handshaken(&server).await;
    let port = s.local_addr().unwrap().port();
    let frame = start_frame(1, true, &[1u8; 2000]);
    let conn = server.wait_conn_of(port).await;
    let t0 = Instant::now();
    let mut dripped = 0;
    for b in frame.iter().take(10) {
        if conn.is_closed() || s.write_all(&[*b]).await.is_err() {
            break;
        }
        dripped += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let why = server_close_reason(&server, port).await;
    assert!(matches!(why, Some(ConnectionError::TimedOut)), "{why:?}");
    assert!(
        dripped < 10 && t0.elapsed() < Duration::from_secs(6),
        "a dripping peer held the server {:?} ({dripped} bytes)",
        t0.elapsed()
    );
    prober.finish(base, 20).await;
}
