//! Blocking adapters: user function pairs (the seed's `Pipe(recv, send)`) and blocking
//! `Read + Write` handles. Tests in this file share the process-wide thread counter, so they
//! run one at a time under a lock.

use std::io::{self, Read, Write};
use std::sync::mpsc;

use std::time::Duration;

use netcore_runtime::transport::{
    adapter_threads_alive, from_blocking, from_fns, BlockingOptions, LinkHint, LinkProfile,
    TransportKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const LIMIT: Duration = Duration::from_secs(20);

/// Waits (bounded) until all adapter threads have exited.
async fn threads_settle() -> usize {
    for _ in 0..200 {
        if adapter_threads_alive() == 0 {
            return 0;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    adapter_threads_alive()
}

/// A loopback device made of two channels: what is sent comes back.
#[allow(clippy::type_complexity)]
fn loopback() -> (
    impl FnMut(&mut [u8]) -> io::Result<usize> + Send + 'static,
    impl FnMut(&[u8]) -> io::Result<()> + Send + 'static,
) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut pending: Vec<u8> = Vec::new();
    let recv = move |buf: &mut [u8]| {
        if pending.is_empty() {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(chunk) => pending = chunk,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(io::Error::from(io::ErrorKind::TimedOut))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = pending.len().min(buf.len());
        buf[..n].copy_from_slice(&pending[..n]);
        pending.drain(..n);
        Ok(n)
    };
    let send = move |data: &[u8]| {
        tx.send(data.to_vec())
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    };
    (recv, send)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fn_pair_echoes_a_large_stream_and_threads_exit() {
    let _g = SERIAL.lock().await;
    timeout(LIMIT, async {
        assert_eq!(threads_settle().await, 0);
        let (recv, send) = loopback();
        let opts = BlockingOptions::default()
            .with_buffer(4096)
            .with_read_chunk(1000)
            .with_link_hint(LinkHint::serial_baud(115_200))
            .with_peer("loopback");
        let t = from_fns(recv, send, opts).unwrap();
        assert_eq!(t.info().kind, TransportKind::Blocking);
        assert_eq!(t.info().link_hint.unwrap().profile, LinkProfile::Serial);
        assert_eq!(t.info().peer.as_deref(), Some("loopback"));
        assert_eq!(adapter_threads_alive(), 2);
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
        let (mut r, mut w) = t.into_split();
        let d = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&d).await.unwrap();
            w.flush().await.unwrap();
            w
        });
        let mut got = vec![0u8; data.len()];
        r.read_exact(&mut got).await.unwrap();
        assert!(got == data);
        let w = writer.await.unwrap();
        drop(r.unsplit(w));
        assert_eq!(
            threads_settle().await,
            0,
            "adapter threads must exit after drop"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_end_of_stream_and_errors_reach_the_reader() {
    let _g = SERIAL.lock().await;
    timeout(LIMIT, async {
        // recv yields one chunk, then end of stream.
        let mut chunks = vec![b"tail".to_vec()];
        let recv = move |buf: &mut [u8]| {
            Ok(chunks.pop().map_or(0, |c| {
                buf[..c.len()].copy_from_slice(&c);
                c.len()
            }))
        };
        let mut t = from_fns(recv, |_: &[u8]| Ok(()), BlockingOptions::default()).unwrap();
        let mut got = Vec::new();
        t.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"tail");
        drop(t);

        // recv fails: the reader sees the error.
        let recv = |_: &mut [u8]| -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "uart unplugged",
            ))
        };
        let mut t = from_fns(recv, |_: &[u8]| Ok(()), BlockingOptions::default()).unwrap();
        let mut buf = [0u8; 8];
        let err = t.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert!(err.to_string().contains("unplugged"));
        drop(t);

        // send fails: a later write or flush reports it.
        let send = |_: &[u8]| -> io::Result<()> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "cable cut"))
        };
        let recv = |_: &mut [u8]| -> io::Result<usize> { Ok(0) };
        let mut t = from_fns(recv, send, BlockingOptions::default().with_buffer(16)).unwrap();
        let mut failed = None;
        for _ in 0..1000 {
            if let Err(e) = t.write_all(b"0123456789").await {
                failed = Some(e);
                break;
            }
            if let Err(e) = t.flush().await {
                failed = Some(e);
                break;
            }
        }
        let err = failed.expect("send errors must surface");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        drop(t);
        assert_eq!(threads_settle().await, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_bounded_by_the_buffer() {
    let _g = SERIAL.lock().await;
    timeout(LIMIT, async {
        // A device that accepts nothing until released.
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (seen_tx, seen_rx) = mpsc::channel::<usize>();
        let send = move |data: &[u8]| {
            let _ = release_rx.recv();
            let _ = seen_tx.send(data.len());
            Ok(())
        };
        let recv = |_: &mut [u8]| -> io::Result<usize> {
            std::thread::sleep(Duration::from_millis(10));
            Err(io::Error::from(io::ErrorKind::TimedOut))
        };
        let mut t = from_fns(recv, send, BlockingOptions::default().with_buffer(1024)).unwrap();
        // The send thread holds at most one chunk (≤ buffer) and the buffer holds 1024 more.
        let res = timeout(Duration::from_millis(300), t.write_all(&[0u8; 10_000])).await;
        assert!(
            res.is_err(),
            "writer must be held back by the bounded buffer"
        );
        drop(release_tx);
        drop(t);
        // The send thread drains what it had accepted, then exits and closes the channel.
        let total: usize = (0..100)
            .map_while(|_| seen_rx.recv_timeout(Duration::from_secs(5)).ok())
            .sum();
        assert!(
            total > 0 && total <= 2048,
            "at most two buffers were accepted, got {total}"
        );
        assert_eq!(threads_settle().await, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_tcp_stream_adapter() {
    let _g = SERIAL.lock().await;
    timeout(LIMIT, async {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let (mut peer, _) = server.accept().unwrap();
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut total = 0;
            loop {
                match peer.read(&mut buf) {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => {
                        total += n;
                        if peer.write_all(&buf[..n]).is_err() {
                            return total;
                        }
                    }
                }
            }
        });
        let t = from_blocking(
            stream.try_clone().unwrap(),
            stream,
            BlockingOptions::default(),
        )
        .unwrap();
        let (mut r, mut w) = t.into_split();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13) as u8).collect();
        let d = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&d).await.unwrap();
            w.flush().await.unwrap();
            w
        });
        let mut got = vec![0u8; data.len()];
        r.read_exact(&mut got).await.unwrap();
        assert!(got == data);
        let w = writer.await.unwrap();
        // Dropping the transport ends both threads (the read timeout lets recv notice); the
        // socket closes, and the echo thread sees end of stream.
        drop(r.unsplit(w));
        assert_eq!(threads_settle().await, 0);
        let echoed = tokio::task::spawn_blocking(move || echo.join().unwrap())
            .await
            .unwrap();
        assert_eq!(echoed, data.len());
    })
    .await
    .expect("test timed out");
}
