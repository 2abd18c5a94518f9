//! Batches (`send_batch`), batched accepts (`accept_many`) and bodies handed over
//! whole, over real loopback TCP.

use bytes::Bytes;
use netcore_runtime::core::{MessageError, MessageHead, Urgency};
use netcore_runtime::transport::{connect, listen, TransportAddr};
use netcore_runtime::{MessageBatch, Pipe, PipeConfig, PipeError};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::timeout;

async fn tcp_pair(client: PipeConfig, server: PipeConfig) -> (Pipe, Pipe) {
    let addr: TransportAddr = "tcp://127.0.0.1:0".parse().unwrap();
    let mut l = listen(&addr).await.unwrap();
    let bound = l.local_addr().unwrap();
    let (c, s) = tokio::join!(connect(&bound), l.accept());
    (Pipe::new(c.unwrap(), client), Pipe::new(s.unwrap(), server))
}

const LIMIT: Duration = Duration::from_secs(20);

/// Takes `n` messages with `accept_many`.
async fn take(server: &Pipe, n: usize) -> Vec<netcore_runtime::IncomingMessage> {
    let mut got = Vec::new();
    while got.len() < n {
        let k = timeout(LIMIT, server.accept_many(&mut got, 100))
            .await
            .expect("accept_many timed out");
        assert!(k > 0, "connection ended after {} messages", got.len());
        assert!(k <= 100);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_arrives_in_order_as_ordinary_messages() {
    let (client, server) = tcp_pair(PipeConfig::default(), PipeConfig::default()).await;
    let mut batch = MessageBatch::with_capacity(1000);
    for i in 0..1000u32 {
        let route = if i % 2 == 0 { "even" } else { "odd" };
        batch.push(route, i.to_be_bytes().to_vec());
    }
    let mut head = MessageHead::to_route("with-meta");
    head.metadata = Bytes::from_static(b"m");
    batch.push_head(head, Bytes::new());
    assert_eq!(batch.len(), 1001);
    assert_eq!(batch.body_bytes(), 4000);
    let handle = client.send_batch(batch);
    timeout(LIMIT, handle.finished()).await.unwrap().unwrap();
    assert!(handle.is_finished());
    assert_eq!(handle.progress(), (1001, 1001));
    // Cancelling a batch that has completed changes nothing.
    handle.cancel();
    client
        .send("sync", "")
        .await
        .unwrap()
        .finished()
        .await
        .unwrap();
    timeout(LIMIT, handle.finished()).await.unwrap().unwrap();

    let got = take(&server, 1002).await;
    for (i, m) in got.into_iter().enumerate() {
        if i == 1001 {
            assert_eq!(m.route(), "sync");
            continue;
        }
        if i == 1000 {
            assert_eq!(m.route(), "with-meta");
            assert_eq!(&m.head.metadata[..], b"m");
            assert_eq!(m.head.total_len, Some(0));
            assert_eq!(m.collect(10).await.unwrap().len(), 0);
            continue;
        }
        assert_eq!(m.route(), if i % 2 == 0 { "even" } else { "odd" });
        assert_eq!(m.head.total_len, Some(4));
        let mut body = m.body;
        assert_eq!(body.progress(), (4, Some(4)));
        assert_eq!(body.consumed(), 0);
        let chunk = body.chunk().await.unwrap().unwrap();
        assert_eq!(u32::from_be_bytes(chunk[..].try_into().unwrap()), i as u32);
        assert_eq!(body.consumed(), 4);
        assert!(body.chunk().await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_the_core_queue_waits_for_room() {
    let mut cfg = PipeConfig::default();
    cfg.core.max_queued_outgoing = 16;
    let (client, server) = tcp_pair(cfg, PipeConfig::default()).await;
    let mut batch = MessageBatch::new();
    for i in 0..500u32 {
        batch.push_urgent("q", vec![i as u8; 100], Urgency::default());
    }
    let handle = client.send_batch(batch);
    // 500 messages through a queue of 16: the batch is started piecewise as sent
    // messages make room, never refused, and all arrive in order.
    let got = take(&server, 500).await;
    for (i, m) in got.into_iter().enumerate() {
        let body = m.collect(1000).await.unwrap();
        assert_eq!(body, vec![i as u8; 100]);
    }
    timeout(LIMIT, handle.finished()).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_batch_stops_what_is_not_sent() {
    let (client, server) = tcp_pair(PipeConfig::default(), PipeConfig::default()).await;
    // Large bodies the server does not read: credit runs out long before all are sent.
    let mut batch = MessageBatch::new();
    for _ in 0..64 {
        batch.push("big", vec![7u8; 1 << 20]);
    }
    let handle = client.send_batch(batch);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!handle.is_finished());
    let (sent, total) = handle.progress();
    assert!(sent < total, "{sent} of {total} sent without a reader");
    handle.cancel();
    let r = timeout(LIMIT, handle.finished()).await.unwrap();
    assert!(
        matches!(
            r,
            Err(PipeError::Message(MessageError::CancelledLocally(_)))
        ),
        "{r:?}"
    );
    // Messages the server had begun to receive end with an error or complete; none
    // arrives cut short as a success.
    let mut whole = 0;
    while let Ok(Some(m)) = timeout(Duration::from_millis(500), server.accept()).await {
        if let Ok(body) = m.collect(2 << 20).await {
            assert_eq!(body.len(), 1 << 20);
            whole += 1;
        }
    }
    assert!(whole < 64);
    // The connection carries on.
    client.send("after", "x").await.unwrap();
    let m = timeout(LIMIT, server.accept()).await.unwrap().unwrap();
    assert_eq!(m.route(), "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_fail_with_closed_when_the_connection_ends() {
    let (client, server) = tcp_pair(PipeConfig::default(), PipeConfig::default()).await;
    let mut batch = MessageBatch::new();
    for _ in 0..64 {
        batch.push("big", vec![7u8; 1 << 20]);
    }
    let handle = client.send_batch(batch);
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.abort(netcore_runtime::core::ErrorCode::INTERNAL_ERROR, "test");
    let r = timeout(LIMIT, handle.finished()).await.unwrap();
    // The peer's abort ends each message in flight with its code (as for single
    // sends), or the connection's end reaches the batch first.
    assert!(
        matches!(
            r,
            Err(PipeError::Closed(_)) | Err(PipeError::Message(MessageError::ConnectionClosed(_)))
        ),
        "{r:?}"
    );
    // After the end: a new batch fails at once, accept_many returns 0.
    timeout(LIMIT, client.closed()).await.unwrap();
    let mut b = MessageBatch::new();
    b.push("late", "x");
    let r = timeout(LIMIT, client.send_batch(b).finished())
        .await
        .unwrap();
    assert!(matches!(r, Err(PipeError::Closed(_))), "{r:?}");
    let mut got = Vec::new();
    assert_eq!(
        timeout(LIMIT, client.accept_many(&mut got, 10))
            .await
            .unwrap(),
        0
    );
    // An empty batch is complete at once.
    assert!(client.send_batch(MessageBatch::new()).is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_body_reads_in_small_pieces() {
    let (client, server) = tcp_pair(PipeConfig::default(), PipeConfig::default()).await;
    let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    client.send("piece", data.clone()).await.unwrap();
    let m = timeout(LIMIT, server.accept()).await.unwrap().unwrap();
    let mut body = m.body;
    let mut got = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = body.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        assert_eq!(body.consumed(), got.len() as u64);
    }
    assert_eq!(got, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_messages_are_read_ahead_by_the_thousand() {
    // An application that takes nothing for a while: small messages still move off
    // the wire (up to `read_ahead`), so the sender's batch completes.
    let (client, server) = tcp_pair(PipeConfig::default(), PipeConfig::default()).await;
    let mut batch = MessageBatch::new();
    for _ in 0..5000 {
        batch.push("tiny", vec![1u8; 16]);
    }
    let handle = client.send_batch(batch);
    timeout(LIMIT, handle.finished()).await.unwrap().unwrap();
    let got = take(&server, 5000).await;
    assert_eq!(got.len(), 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_many_frames_keep_their_byte_order() {
    // A window larger than the body lets each message arrive whole, as several frames
    // in one read: the driver reads them all before handing the message over.
    let mut server_cfg = PipeConfig::default();
    server_cfg.core.message_window = 1 << 20;
    server_cfg.core.max_message_window = 1 << 20;
    let (client, server) = tcp_pair(PipeConfig::default(), server_cfg).await;
    let pattern = |m: usize, len: usize| -> Vec<u8> {
        (0..len).map(|i| ((i / 1000 + m * 7) % 251) as u8).collect()
    };
    for m in 0..10 {
        let h = client.send("frames", pattern(m, 300_000)).await.unwrap();
        timeout(LIMIT, h.finished()).await.unwrap().unwrap();
    }
    let got = take(&server, 10).await;
    for (m, msg) in got.into_iter().enumerate() {
        let body = timeout(LIMIT, msg.collect(1 << 20)).await.unwrap().unwrap();
        assert!(body == pattern(m, 300_000), "message {m} reordered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_takes_its_requests_urgency() {
    let (client, server) = tcp_pair(PipeConfig::default(), PipeConfig::default()).await;
    tokio::spawn(async move {
        while let Some(m) = server.accept().await {
            let id = m.id;
            let body = m.collect(100).await.unwrap();
            server.reply(id, body).await.unwrap();
        }
    });
    let urgent = timeout(
        LIMIT,
        client
            .message("echo")
            .urgency(Urgency::HIGHEST)
            .request("u"),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(urgent.head.urgency, Urgency::HIGHEST);
    let normal = timeout(LIMIT, client.request("echo", "n"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(normal.head.urgency, Urgency::DEFAULT);
}
