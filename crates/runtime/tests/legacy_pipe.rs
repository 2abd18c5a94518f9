//! Legacy mode between two netcore pipes (in memory): the Wire contract the app layer
//! relies on — streamed bodies and backpressure, unsized bodies, headers, replies,
//! cancellation, stop, close.

use bytes::Bytes;
use netcore_core::{MessageError, MessageHead};
use netcore_runtime::legacy::{
    pipe_with_monitor, LegacyOptions, APP_ONE_WAY_HEADER, EMPTY_BODY, HEADER_MESSAGE_ID,
    HEADER_MISSION, HEADER_RESPOND_TO, LEGACY_REFUSED, NOT_ANSWERABLE,
};
use netcore_runtime::transport::mem_pair;
use netcore_runtime::{Body, IncomingMessage, Pipe, PipeError};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .expect("deadline passed")
}

fn pair() -> (Pipe, Pipe) {
    let (a, b) = mem_pair(64 * 1024);
    (
        Pipe::legacy(a, LegacyOptions::default()),
        Pipe::legacy(b, LegacyOptions::default()),
    )
}

fn echo_server(server: Pipe) {
    tokio::spawn(async move {
        while let Some(msg) = server.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let id = msg.id;
                if let Ok(body) = msg.collect(64 << 20).await {
                    let _ = server.reply(id, body).await;
                }
            });
        }
    });
}

async fn next(p: &Pipe) -> IncomingMessage {
    within(p.accept()).await.expect("connection ended")
}

#[tokio::test]
async fn ten_megabytes_each_way_streamed_and_whole() {
    let (client, server) = pair();
    echo_server(server);
    let big: Vec<u8> = (0..10_000_000u32).map(|i| (i % 253) as u8).collect();

    // Whole body.
    let resp = within(client.request("echo", big.clone())).await.unwrap();
    assert_eq!(resp.head.total_len, Some(big.len() as u64));
    assert!(within(resp.collect(16 << 20)).await.unwrap() == big);

    // Streamed by hand with a known length: writes wait for buffer space.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut writer = client.start_writer(
        MessageHead::to_route("echo").with_len(big.len() as u64),
        Some(tx),
    );
    for piece in big.chunks(100_000) {
        within(writer.write(Bytes::copy_from_slice(piece)))
            .await
            .unwrap();
    }
    within(writer.finish()).await.unwrap();
    let resp = within(rx).await.unwrap().unwrap();
    let mut body = resp.body;
    let mut got = Vec::new();
    while let Some(chunk) = within(body.chunk()).await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert!(got == big);
}

#[tokio::test]
async fn unsized_bodies_are_buffered_up_to_a_limit() {
    let (a, b) = mem_pair(64 * 1024);
    let options = LegacyOptions {
        max_unsized_body: 100_000,
        ..LegacyOptions::default()
    };
    let client = Pipe::legacy(a, options);
    let server = Pipe::legacy(b, LegacyOptions::default());
    echo_server(server);

    let body = Body::stream(std::io::Cursor::new(vec![3u8; 90_000]), None);
    let resp = within(client.message("echo").request(body)).await.unwrap();
    assert_eq!(resp.head.total_len, Some(90_000));
    assert_eq!(resp.collect(1 << 20).await.unwrap().len(), 90_000);

    // Past the limit: a typed error instead of unbounded buffering.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut writer = client.start_writer(MessageHead::to_route("echo"), Some(tx));
    writer.write(vec![1u8; 60_000]).await.unwrap();
    let _ = writer.write(vec![1u8; 60_000]).await;
    let err = within(writer.finish()).await.unwrap_err();
    assert!(
        matches!(err, PipeError::Message(MessageError::Limit(ref l)) if l.limit == 100_000),
        "{err:?}"
    );
    assert!(within(rx).await.unwrap().is_err());
    // The connection is fine.
    let resp = within(client.request("echo", "ok")).await.unwrap();
    assert_eq!(resp.collect(10).await.unwrap(), "ok");
}

#[tokio::test]
async fn headers_and_python_ids_cross_the_wire() {
    let (client, server) = pair();
    let handle = client
        .message("note")
        .header("trace", "abc-123")
        .header("raw", Bytes::from_static(&[0xff, 0x00]))
        .header(HEADER_MESSAGE_ID, "forced01")
        .header("legacy.json.count", "5")
        .header("legacy.json.tags", r#"["a", {"b": null}]"#)
        .send("payload")
        .await
        .unwrap();
    within(handle.finished()).await.unwrap();
    let msg = next(&server).await;
    assert_eq!(msg.route(), "note");
    // Python-style route names lose their outer slashes, as netcore's router names them.
    client.send("/user/list/", "x").await.unwrap();
    assert_eq!(msg.head.reply_to, None);
    let h = msg.headers();
    assert_eq!(h.get_str("trace"), Some("abc-123"));
    // Non-UTF-8 values travel as a JSON list of byte values.
    assert_eq!(h.get_str("raw"), Some("[255, 0]"));
    assert_eq!(h.get_str(HEADER_MESSAGE_ID), Some("forced01"));
    // Typed info values arrive as their JSON text.
    assert_eq!(h.get_str("count"), Some("5"));
    assert_eq!(h.get_str("tags"), Some(r#"["a", {"b": null}]"#));
    assert_eq!(h.get_str(HEADER_MISSION).map(str::len), Some(6));
    assert_eq!(next(&server).await.route(), "user/list");

    // Answer a kept Python message_id later, as Python's send_response does.
    let (client2, server2) = pair();
    let c = client2.clone();
    let req = tokio::spawn(async move { c.request("ask", "?").await });
    let msg = next(&server2).await;
    let mid = msg.headers().get_str(HEADER_MESSAGE_ID).unwrap().to_owned();
    drop(msg);
    let h = server2
        .message("")
        .header(HEADER_RESPOND_TO, mid)
        .send("answered later")
        .await
        .unwrap();
    within(h.finished()).await.unwrap();
    let resp = within(req).await.unwrap().unwrap();
    assert!(resp.head.reply_to.is_some());
    assert_eq!(resp.collect(100).await.unwrap(), "answered later");
}

#[tokio::test]
async fn replies_that_python_cannot_receive_fail_with_typed_errors() {
    let (client, server) = pair();
    let c = client.clone();
    let req = tokio::spawn(async move { c.request("twice", "x").await });
    let msg = next(&server).await;
    let id = msg.id;
    drop(msg);

    // Empty body: Python never completes an empty message.
    let h = server.reply(id, "").await.unwrap();
    let err = within(h.finished()).await.unwrap_err();
    assert!(
        matches!(err, PipeError::Message(MessageError::CancelledLocally(c)) if c == EMPTY_BODY),
        "{err:?}"
    );
    // First real reply works, a second one has nothing left to answer.
    within(server.reply(id, "one").await.unwrap().finished())
        .await
        .unwrap();
    let err = within(server.reply(id, "two").await.unwrap().finished())
        .await
        .unwrap_err();
    assert!(
        matches!(err, PipeError::Message(MessageError::CancelledLocally(c)) if c == NOT_ANSWERABLE),
        "{err:?}"
    );
    let resp = within(req).await.unwrap().unwrap();
    assert_eq!(resp.collect(10).await.unwrap(), "one");
}

#[tokio::test]
async fn sender_cancel_resets_the_incoming_body() {
    let (client, server) = pair();
    let mut writer = client.start_writer(MessageHead::to_route("up").with_len(1_000_000), None);
    writer.write(vec![0u8; 50_000]).await.unwrap();
    let msg = next(&server).await;
    let mut body = msg.body;
    // Some bytes arrive, then the cancel.
    let first = within(body.chunk()).await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(writer);
    let err = loop {
        match within(body.chunk()).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a cancelled body must not end normally"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, PipeError::Message(MessageError::CancelledByPeer(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn receiver_stop_discards_the_rest_and_the_connection_goes_on() {
    let (a, b) = mem_pair(64 * 1024);
    let client = Pipe::legacy(a, LegacyOptions::default());
    let (server, monitor) = pipe_with_monitor(b, LegacyOptions::default());
    let sent = client.send("bulk", vec![1u8; 2_000_000]).await.unwrap();
    let msg = next(&server).await;
    drop(msg); // stops it: Python cannot be told, the data is dropped here
    within(sent.finished()).await.unwrap();
    let c = client.clone();
    tokio::spawn(async move {
        let resp = c.request("echo", "after stop").await.unwrap();
        assert_eq!(resp.collect(100).await.unwrap(), "after stop");
    });
    let msg = next(&server).await;
    assert_eq!(msg.route(), "echo");
    let id = msg.id;
    let body = msg.collect(100).await.unwrap();
    server.reply(id, body).await.unwrap();
    assert!(monitor.stats().codec.ignored_data_packets > 0);
    assert_eq!(monitor.stats().buffered_incoming, 0);
}

#[tokio::test]
async fn graceful_close_lets_messages_in_flight_finish_then_ends_the_transport() {
    let (client, server) = pair();
    let mut writer = client.start_writer(MessageHead::to_route("up").with_len(20_000), None);
    writer.write(vec![1u8; 10_000]).await.unwrap();
    let msg = next(&server).await;
    server.close();
    // Closing refuses new requests but lets the incoming message complete.
    let err = server.request("new", "x").await.unwrap_err();
    assert!(
        matches!(err, PipeError::Start(_) | PipeError::Closed(_)),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!server.is_closed());
    writer.write(vec![2u8; 10_000]).await.unwrap();
    within(writer.finish()).await.unwrap();
    assert_eq!(within(msg.collect(1 << 20)).await.unwrap().len(), 20_000);
    // Then the transport ends; for a legacy peer that is the normal end.
    assert_eq!(within(server.closed()).await, None);
    assert_eq!(within(client.closed()).await, None);
}

#[tokio::test]
async fn a_typed_header_that_is_not_json_is_a_typed_error() {
    let (client, _server) = pair();
    let h = client
        .message("x")
        .header("legacy.json.n", "not json")
        .send("body")
        .await
        .unwrap();
    let err = within(h.finished()).await.unwrap_err();
    assert!(
        matches!(err, PipeError::Message(MessageError::CancelledLocally(c)) if c == LEGACY_REFUSED),
        "{err:?}"
    );
}

#[tokio::test]
async fn answers_to_one_way_messages_do_not_reach_the_application() {
    let (a, b) = mem_pair(64 * 1024);
    let (client, monitor) = pipe_with_monitor(a, LegacyOptions::default());
    let server = Pipe::legacy(b, LegacyOptions::default());
    // One-way, as the app layer marks it; the peer answers anyway, as Python does.
    let h = client
        .message("log")
        .header(APP_ONE_WAY_HEADER, "1")
        .send("line")
        .await
        .unwrap();
    within(h.finished()).await.unwrap();
    let msg = next(&server).await;
    assert!(msg.headers().get_str(HEADER_MESSAGE_ID).is_some());
    let id = msg.id;
    within(server.reply(id, "ack").await.unwrap().finished())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while monitor.stats().unmatched_responses == 0 {
        assert!(tokio::time::Instant::now() < deadline, "answer never came");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Nothing reached the client's application.
    let got = tokio::time::timeout(Duration::from_millis(50), client.accept()).await;
    assert!(got.is_err(), "a stray answer reached accept()");
}
