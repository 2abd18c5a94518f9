//! A peer flooding complete messages at an application that does not accept them: the
//! server must not queue more than its configured concurrent-message limit.

use netcore_runtime::transport::mem_pair;
use netcore_runtime::{Pipe, PipeConfig};
use std::time::Duration;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unaccepted_messages_are_bounded_by_max_incoming() {
    let mut cfg = PipeConfig::default();
    cfg.core.max_incoming = 32;
    // Room for 10 queued messages of 1000 bytes (each also counts 512 for itself).
    cfg.read_ahead = 10 * 1512;
    let (a, b) = mem_pair(1 << 16);
    let client = Pipe::new(a, PipeConfig::default());
    let server = Pipe::new(b, cfg);
    // The server application is busy and accepts nothing while the client floods.
    let mut handles = Vec::new();
    for i in 0..2000u32 {
        handles.push(client.send("flood", vec![i as u8; 1000]).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Messages the client could put on the wire: the server grants credit for new
    // messages only as its application takes them.
    let mut sent = 0;
    for h in &handles {
        if let Ok(r) = timeout(Duration::from_millis(1), h.finished()).await {
            r.unwrap();
            sent += 1;
        }
    }
    // At most max_incoming unfinished messages in the core plus the read-ahead.
    assert!(
        sent <= 32 + 10 + 1,
        "the server took {sent} messages for an application that accepted none"
    );
    let queued = 0;
    // Once the application accepts again, everything arrives intact and in order.
    let mut rest = 0;
    while let Ok(Some(m)) = timeout(Duration::from_secs(5), server.accept()).await {
        let body = m.collect(2000).await.unwrap();
        assert_eq!(body.len(), 1000);
        rest += 1;
        if queued + rest == 2000 {
            break;
        }
    }
    assert_eq!(queued + rest, 2000);
    for h in handles {
        timeout(Duration::from_secs(10), h.finished())
            .await
            .unwrap()
            .unwrap();
    }
}
