//! Pipe end to end over in-memory, TCP and simulated serial links.

use bytes::Bytes;
use netcore_runtime::transport::{connect, listen, mem_pair, SimConfig, SimLink, TransportAddr};
use netcore_runtime::{Body, Pipe, PipeConfig, PipeError};
use std::time::Duration;

fn echo_server(server: Pipe) {
    tokio::spawn(async move {
        while let Some(req) = server.accept().await {
            let s = server.clone();
            tokio::spawn(async move {
                let id = req.id;
                match req.collect(64 << 20).await {
                    Ok(body) => {
                        let _ = s.reply(id, body).await;
                    }
                    Err(e) => eprintln!("server: {e}"),
                }
            });
        }
    });
}

async fn tcp_pair() -> (Pipe, Pipe) {
    let addr: TransportAddr = "tcp://127.0.0.1:0".parse().unwrap();
    let mut l = listen(&addr).await.unwrap();
    let bound = l.local_addr().unwrap();
    let (c, s) = tokio::join!(connect(&bound), l.accept());
    (
        Pipe::new(c.unwrap(), PipeConfig::default()),
        Pipe::new(s.unwrap(), PipeConfig::default()),
    )
}

#[tokio::test]
async fn echo_over_memory() {
    let (a, b) = mem_pair(1 << 16);
    let client = Pipe::new(a, PipeConfig::default());
    echo_server(Pipe::new(b, PipeConfig::default()));
    let r = client.request("echo", "hello").await.unwrap();
    assert_eq!(r.collect(100).await.unwrap(), "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_echo_both_directions_does_not_deadlock() {
    let (a, b) = tcp_pair().await;
    echo_server(a.clone());
    echo_server(b.clone());
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let (from, _) = if i % 2 == 0 {
            (a.clone(), 0)
        } else {
            (b.clone(), 1)
        };
        tasks.push(tokio::spawn(async move {
            // Mixed sizes, some well beyond every window.
            let len = [10usize, 70_000, 1_500_000, 3_000_000][i as usize % 4];
            let body: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
            let r = from.request("echo", body.clone()).await.unwrap();
            let got = r.collect(64 << 20).await.unwrap();
            assert!(got == body, "body {i} corrupted");
        }));
    }
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("deadlock: concurrent echo streams did not finish");
}

#[tokio::test]
async fn streamed_body_from_reader_with_progress() {
    let (a, b) = mem_pair(1 << 16);
    let client = Pipe::new(a, PipeConfig::default());
    let server = Pipe::new(b, PipeConfig::default());
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7) as u8).collect();
    let handle = client
        .send(
            "upload",
            Body::stream(std::io::Cursor::new(data.clone()), Some(data.len() as u64)),
        )
        .await
        .unwrap();
    let mut msg = server.accept().await.unwrap();
    assert_eq!(msg.head.total_len, Some(data.len() as u64));
    let mut got = Vec::new();
    while let Some(c) = msg.body.chunk().await.unwrap() {
        got.extend_from_slice(&c);
    }
    handle.finished().await.unwrap();
    assert_eq!(
        handle.progress(),
        (data.len() as u64, Some(data.len() as u64))
    );
    assert!(got == data);
}

#[tokio::test]
async fn cancelled_send_reaches_receiver_as_error() {
    let (a, b) = mem_pair(1 << 16);
    let client = Pipe::new(a, PipeConfig::default());
    let server = Pipe::new(b, PipeConfig::default());
    let mut w = client.start_writer(netcore_runtime::core::MessageHead::to_route("big"), None);
    w.write(Bytes::from(vec![1u8; 100_000])).await.unwrap();
    let mut msg = server.accept().await.unwrap();
    let first = msg.body.chunk().await.unwrap();
    assert!(first.is_some());
    w.handle().cancel();
    let mut err = None;
    for _ in 0..1000 {
        match msg.body.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert!(matches!(err, Some(PipeError::Message(_))), "{err:?}");
}

#[tokio::test]
async fn request_timeout_returns_timed_out_and_peer_sees_abandon() {
    let (a, b) = mem_pair(1 << 16);
    let client = Pipe::new(a, PipeConfig::default());
    let server = Pipe::new(b, PipeConfig::default());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let msg = server.accept().await.unwrap();
        let signal = msg.abandon_signal();
        let _body = msg.collect(100).await.unwrap();
        // Handler "works" until the caller abandons.
        let abandoned = tokio::time::timeout(Duration::from_secs(10), signal.wait()).await;
        tx.send(abandoned.is_ok()).unwrap();
    });
    let r = client
        .message("slow")
        .timeout(Duration::from_millis(100))
        .request("x")
        .await;
    assert!(matches!(r, Err(PipeError::TimedOut)), "{r:?}");
    assert!(
        rx.await.unwrap(),
        "handler never learned the caller gave up"
    );
}

#[tokio::test]
async fn a_request_cancelled_while_its_body_streams_reaches_the_abandon_signal() {
    let (a, b) = mem_pair(1 << 16);
    let client = Pipe::new(a, PipeConfig::default());
    let server = Pipe::new(b, PipeConfig::default());
    let mut head = netcore_core::MessageHead::to_route("upload");
    head.total_len = Some(1 << 20);
    let mut writer = client.start_writer(head, None);
    writer.write(Bytes::from(vec![7u8; 4096])).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), server.accept())
        .await
        .unwrap()
        .unwrap();
    let signal = msg.abandon_signal();
    assert!(!signal.is_abandoned());
    // Still arriving (1 MiB announced, 4 KiB sent) when the sender gives up.
    writer.handle().cancel();
    tokio::time::timeout(Duration::from_secs(10), signal.wait())
        .await
        .expect("the handler learned the sender gave up");
    assert!(signal.is_abandoned());
    let body = msg.collect(1 << 21).await;
    assert!(matches!(body, Err(PipeError::Message(_))), "{body:?}");
}

#[tokio::test]
async fn serial_profile_over_simulated_line() {
    let cfg = SimConfig::default()
        .with_rate(11_520)
        .with_latency(Duration::from_millis(1));
    let pair = SimLink::pair(cfg);
    let (a, b) = (pair.a, pair.b);
    let client = Pipe::new(a, PipeConfig::serial(11_520));
    echo_server(Pipe::new(b, PipeConfig::serial(11_520)));
    let body: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        client.request("echo", body.clone()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(r.collect(1 << 20).await.unwrap() == body);
}

#[tokio::test]
async fn peer_close_fails_pending_requests() {
    let (a, b) = mem_pair(1 << 16);
    let client = Pipe::new(a, PipeConfig::default());
    let server = Pipe::new(b, PipeConfig::default());
    let req = tokio::spawn({
        let c = client.clone();
        async move { c.request("never", "x").await }
    });
    let _m = server.accept().await.unwrap();
    server.abort(netcore_runtime::core::ErrorCode(0x200), "bye");
    let r = tokio::time::timeout(Duration::from_secs(5), req)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, Err(PipeError::Closed(Some(_)))), "{r:?}");
}

#[tokio::test]
async fn reply_nobody_waits_for_is_not_delivered_as_a_request() {
    let (a, b) = mem_pair(1 << 16);
    let client = Pipe::new(a, PipeConfig::default());
    let server = Pipe::new(b, PipeConfig::default());
    // A one-way message, answered anyway: the answer must not surface as a request.
    client
        .send("note", "x")
        .await
        .unwrap()
        .finished()
        .await
        .unwrap();
    let note = server.accept().await.unwrap();
    server
        .reply(note.id, "unwanted")
        .await
        .unwrap()
        .finished()
        .await
        .unwrap();
    // A real request after it is what the client's accept sees next.
    server.send("real", "y").await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), client.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.route(), "real");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_messages_read_one_after_another_arrive_whole() {
    let (c, s) = tcp_pair().await;
    let size = 4 << 20;
    let count = 64;
    let reader = tokio::spawn(async move {
        let mut sizes = Vec::new();
        while let Some(m) = s.accept().await {
            let mut b = m.body;
            let mut n = 0usize;
            loop {
                match b.chunk().await {
                    Ok(Some(c)) => n += c.len(),
                    Ok(None) => break,
                    Err(e) => panic!("message {} failed after {n} bytes: {e}", sizes.len()),
                }
            }
            sizes.push(n);
            if sizes.len() == count {
                break;
            }
        }
        sizes
    });
    let body = Bytes::from(vec![5u8; size]);
    let mut handles = Vec::new();
    for _ in 0..count {
        handles.push(c.send("drop", body.clone()).await.unwrap());
    }
    for h in handles {
        h.finished().await.unwrap();
    }
    let sizes = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("stalled")
        .unwrap();
    assert!(sizes.iter().all(|&n| n == size), "{sizes:?}");
}
