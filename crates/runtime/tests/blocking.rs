//! The blocking facade: every capability without async, over TCP, in-memory pairs and the
//! seed's `Pipe(recv_func, send_func)` style. Every wait is bounded.

use netcore_runtime::blocking::{BlockingListener, BlockingPipe};
use netcore_runtime::core::{ConnectionError, ErrorCode};
use netcore_runtime::transport::{adapter_threads_alive, mem_pair, TransportAddr};
use netcore_runtime::{PipeConfig, PipeError};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

/// Tests count threads, so they run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Threads of this process whose name starts with `prefix` (Linux keeps 15 bytes of a
/// thread name).
fn threads_named(prefix: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(name) = std::fs::read_to_string(e.path().join("comm")) {
            if name.trim_end().starts_with(prefix) {
                n += 1;
            }
        }
    }
    n
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// An echo server on its own thread; returns when the connection ends.
fn echo_thread(server: BlockingPipe) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut served = 0;
        while let Ok(Some(req)) = server.accept_timeout(LIMIT) {
            let id = req.id();
            let body = req.collect(16 << 20).unwrap();
            server.reply(id, body).unwrap();
            served += 1;
        }
        served
    })
}

/// The send half of a socket that shuts the socket down when the send function is
/// dropped, so the peer's blocking `recv` returns (as closing a serial port does).
struct ShutOnDrop(UnixStream);

impl Drop for ShutOnDrop {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

fn tcp_pair() -> (BlockingPipe, BlockingPipe) {
    let l = BlockingListener::bind(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = l.local_addr().unwrap();
    let t = thread::spawn(move || BlockingPipe::connect(&addr).unwrap());
    let server = l.accept_timeout(LIMIT).unwrap();
    (t.join().unwrap(), server)
}

#[test]
fn connect_over_tcp_and_request_reply() {
    let _g = serial();
    let (client, server) = tcp_pair();
    assert!(
        client.state().connected.is_some(),
        "connect waits for the handshake"
    );
    let echo = echo_thread(server);
    for i in 0..20u32 {
        let body = vec![i as u8; (i as usize) * 1000];
        let r = client.request_timeout("echo", body.clone(), LIMIT).unwrap();
        assert_eq!(r.route(), "");
        assert!(r.collect(1 << 20).unwrap() == body);
    }
    client.close();
    assert_eq!(client.wait_closed(LIMIT).unwrap(), None);
    assert_eq!(echo.join().unwrap(), 20);
}

#[test]
fn from_fns_seed_style_pipe() {
    let _g = serial();
    let before = adapter_threads_alive();
    let (a, b) = UnixStream::pair().unwrap();
    let mk = |s: UnixStream| {
        let (mut r, mut w) = (s.try_clone().unwrap(), ShutOnDrop(s));
        BlockingPipe::from_fns(
            move |buf: &mut [u8]| r.read(buf),
            move |d: &[u8]| w.0.write_all(d),
            PipeConfig::default(),
        )
        .unwrap()
    };
    let (client, server) = (mk(a), mk(b));
    assert_eq!(adapter_threads_alive(), before + 4);
    let echo = echo_thread(server);
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let r = client.request_timeout("echo", body.clone(), LIMIT).unwrap();
    assert!(r.collect(1 << 20).unwrap() == body);
    client.close();
    client.wait_closed(LIMIT).unwrap();
    echo.join().unwrap();
    drop(client);
    // Both sockets closed: every adapter thread ends.
    wait_until("adapter threads to exit", || {
        adapter_threads_alive() == before
    });
}

#[test]
fn request_timeout_expires_and_peer_sees_abandon() {
    let _g = serial();
    let (a, b) = mem_pair(1 << 16);
    let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
    let server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
    let t0 = Instant::now();
    let r = client
        .message("slow")
        .timeout(Duration::from_millis(200))
        .request("x");
    assert!(matches!(r, Err(PipeError::TimedOut)), "{r:?}");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let req = server.accept_timeout(LIMIT).unwrap().unwrap();
    assert_eq!(req.route(), "slow");
    wait_until("the server to learn the caller gave up", || {
        req.is_abandoned()
    });
}

#[test]
fn send_with_headers_urgency_and_progress() {
    let _g = serial();
    let (a, b) = mem_pair(1 << 16);
    let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
    let server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
    let data = vec![7u8; 2_000_000];
    let h = client
        .message("upload")
        .header("name", "blob")
        .urgency(netcore_runtime::core::Urgency::new(6))
        .send(data.clone())
        .unwrap();
    let mut msg = server.accept_timeout(LIMIT).unwrap().unwrap();
    assert_eq!(msg.route(), "upload");
    assert_eq!(msg.headers().get_str("name"), Some("blob"));
    assert_eq!(msg.head().urgency.get(), 6);
    let mut got = Vec::new();
    while let Some(c) = msg.chunk_timeout(LIMIT).unwrap() {
        got.extend_from_slice(&c);
    }
    h.wait_timeout(LIMIT).unwrap();
    assert_eq!(h.progress(), (2_000_000, Some(2_000_000)));
    assert_eq!(msg.progress().0, 2_000_000);
    assert!(got == data);
}

#[test]
fn accept_returns_none_after_close_and_times_out_when_idle() {
    let _g = serial();
    let (a, b) = mem_pair(1 << 16);
    let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
    let server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
    let r = server.accept_timeout(Duration::from_millis(100));
    assert!(matches!(r, Err(PipeError::TimedOut)), "{r:?}");
    client
        .send("one", "1")
        .unwrap()
        .wait_timeout(LIMIT)
        .unwrap();
    let m = server.accept_timeout(LIMIT).unwrap().unwrap();
    assert_eq!(m.collect(10).unwrap(), "1");
    client.close();
    assert!(server.accept_timeout(LIMIT).unwrap().is_none());
    assert!(server.accept().is_none());
}

#[test]
fn reply_with_headers_and_streamed_writer_and_read_trait() {
    let _g = serial();
    let (a, b) = mem_pair(1 << 16);
    let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
    let server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
    let srv = thread::spawn(move || {
        // A body streamed by hand, read through std::io::Read.
        let mut m = server.accept_timeout(LIMIT).unwrap().unwrap();
        assert_eq!(m.route(), "count");
        let mut all = Vec::new();
        m.read_to_end(&mut all).unwrap();
        assert!(all.iter().all(|&b| b == 1));
        // Then a request answered with headers.
        let req = server.accept_timeout(LIMIT).unwrap().unwrap();
        let mut h = netcore_runtime::core::metadata::Headers::new();
        h.insert("status", "ok");
        server
            .reply_with_headers(req.id(), &h, format!("{}", all.len()))
            .unwrap()
            .wait_timeout(LIMIT)
            .unwrap();
        server
    });
    let mut w = client.start_writer("count");
    for _ in 0..10 {
        w.write(vec![1u8; 100_000]).unwrap();
    }
    w.finish().unwrap();
    let r = client.request_timeout("how-many", "", LIMIT).unwrap();
    assert_eq!(r.headers().get_str("status"), Some("ok"));
    assert_eq!(r.collect(100).unwrap(), "1000000");
    let _server = srv.join().unwrap();
}

#[test]
fn dropped_writer_cancels_its_message() {
    let _g = serial();
    let (a, b) = mem_pair(1 << 16);
    let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
    let server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
    let mut w = client.start_writer("partial");
    w.write(vec![2u8; 10_000]).unwrap();
    let mut m = server.accept_timeout(LIMIT).unwrap().unwrap();
    drop(w);
    let mut result = Ok(None);
    for _ in 0..100 {
        result = m.chunk_timeout(LIMIT);
        if !matches!(result, Ok(Some(_))) {
            break;
        }
    }
    assert!(matches!(result, Err(PipeError::Message(_))), "{result:?}");
}

#[test]
fn close_fails_pending_request_of_peer_and_abort_is_typed() {
    let _g = serial();
    let (a, b) = mem_pair(1 << 16);
    let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
    let server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
    let c2 = client.clone();
    let pending = thread::spawn(move || c2.request("never", "x"));
    let _req = server.accept_timeout(LIMIT).unwrap().unwrap();
    server.abort(ErrorCode(0x200), "going down");
    let r = pending.join().unwrap();
    assert!(
        matches!(&r, Err(PipeError::Closed(Some(ConnectionError::PeerError { code, .. }))) if *code == ErrorCode(0x200)),
        "{r:?}"
    );
    assert!(matches!(
        client.wait_closed(LIMIT).unwrap(),
        Some(ConnectionError::PeerError { .. })
    ));
    assert!(client.is_closed());
    let r = client.send("late", "x").and_then(|h| h.wait_timeout(LIMIT));
    assert!(matches!(r, Err(PipeError::Closed(_))), "{r:?}");
}

#[test]
fn file_body_and_spill() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 13) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let (a, b) = mem_pair(1 << 16);
    let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
    let server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
    let body = client.file_body(&src, 1000).unwrap();
    assert_eq!(body.len(), Some(999_000));
    client.send("file", body).unwrap();
    let m = server.accept_timeout(LIMIT).unwrap().unwrap();
    match m.collect_or_spill(10_000, dir.path()).unwrap() {
        netcore_runtime::Collected::File(p, n) => {
            assert_eq!(n, 999_000);
            assert!(std::fs::read(p).unwrap() == data[1000..]);
        }
        other => panic!("expected a spilled file, got {other:?}"),
    }
}

#[test]
fn calling_from_async_code_is_refused_not_a_panic() {
    let _g = serial();
    let (a, b) = mem_pair(1 << 16);
    let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
    let _server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = rt.block_on(async { client.send("x", "y").map(|_| ()) });
    assert!(
        matches!(&r, Err(PipeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::Unsupported),
        "{r:?}"
    );
}

#[test]
fn dropping_every_handle_stops_the_background_runtime() {
    let _g = serial();
    wait_until("earlier runtimes to stop", || {
        threads_named("netcore-blockin") == 0
    });
    let (a, b) = mem_pair(1 << 16);
    let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
    let server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
    let echo = echo_thread(server);
    let clone = client.clone();
    assert_eq!(
        clone
            .request_timeout("echo", "x", LIMIT)
            .unwrap()
            .collect(10)
            .unwrap(),
        "x"
    );
    assert!(threads_named("netcore-blockin") >= 2);
    drop(client);
    drop(clone);
    echo.join().unwrap();
    wait_until("background runtimes to stop", || {
        threads_named("netcore-blockin") == 0
    });
}

#[test]
fn listener_serves_several_connections_concurrently() {
    let _g = serial();
    let l = BlockingListener::bind(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let addr: TransportAddr = l.local_addr().unwrap();
    let clients: Vec<_> = (0..4u8)
        .map(|i| {
            let addr = addr.clone();
            thread::spawn(move || {
                let c = BlockingPipe::connect(&addr).unwrap();
                for k in 0..10u8 {
                    let r = c.request_timeout("echo", vec![i, k], LIMIT).unwrap();
                    assert_eq!(&r.collect(10).unwrap()[..], &[i, k]);
                }
            })
        })
        .collect();
    let servers: Vec<_> = (0..4)
        .map(|_| echo_thread(l.accept_timeout(LIMIT).unwrap()))
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    for s in servers {
        assert_eq!(s.join().unwrap(), 10);
    }
}

#[test]
fn whole_body_message_announces_its_length() {
    let _g = serial();
    let (a, b) = mem_pair(1 << 16);
    let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
    let server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
    client.send("big", vec![0u8; 1_000_000]).unwrap();
    let msg = server.accept_timeout(LIMIT).unwrap().unwrap();
    assert_eq!(msg.head().total_len, Some(1_000_000));
}

#[test]
fn resumable_file_transfer_without_async() {
    let _g = serial();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(src.path().join("fw.bin"), &data).unwrap();
    std::fs::write(dst.path().join("fw.bin"), &data[..250_000]).unwrap();
    let (client, server) = tcp_pair();
    let dir = src.path().to_path_buf();
    let srv = thread::spawn(move || {
        let req = server.accept_timeout(LIMIT).unwrap().unwrap();
        server.serve_file(req, &dir).unwrap()
    });
    let done = client
        .fetch_file("files", "fw.bin", dst.path().join("fw.bin"))
        .unwrap();
    assert_eq!(done.resumed_from, 250_000);
    assert_eq!(done.received, 450_000);
    assert_eq!(srv.join().unwrap(), 250_000);
    assert!(std::fs::read(dst.path().join("fw.bin")).unwrap() == data);
}
