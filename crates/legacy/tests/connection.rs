//! `LegacyConnection` API behaviour between two in-memory peers.

mod common;

use common::*;
use netcore_legacy::{
    Config, Event, LegacyConnection, MessageError, MessageId, OutgoingHead, Packet, SendError,
    CHUNK_SIZE,
};

fn events(conn: &mut LegacyConnection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

fn data_packets(wire: &[u8]) -> Vec<(String, usize)> {
    decode_all(wire)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Data { extension, payload } => Some((extension, payload.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn concurrent_messages_interleave_round_robin() {
    let mut conn = LegacyConnection::new(Config::default());
    let big = vec![7u8; 3 * CHUNK_SIZE];
    let a = conn
        .start_message(OutgoingHead::request("a", big.len() as u64).with_extension("A"))
        .unwrap();
    let b = conn
        .start_message(OutgoingHead::request("b", big.len() as u64).with_extension("B"))
        .unwrap();
    let c = conn
        .start_message(OutgoingHead::request("c", 10).with_extension("C"))
        .unwrap();
    conn.write(a, &big).unwrap();
    conn.write(b, &big).unwrap();
    conn.write(c, &[1; 10]).unwrap();
    let wire = drain(&mut conn);
    let order: Vec<String> = data_packets(&wire).into_iter().map(|(e, _)| e).collect();
    assert_eq!(order, ["A", "B", "C", "A", "B", "A", "B"]);
}

#[test]
fn small_message_waits_at_most_one_chunk_behind_a_bulk_transfer() {
    let mut conn = LegacyConnection::new(Config::default());
    let bulk = vec![0u8; 40 * CHUNK_SIZE];
    let a = conn
        .start_message(OutgoingHead::request("bulk", bulk.len() as u64))
        .unwrap();
    let mut written = 0;
    let mut out = Vec::new();
    written += conn.write(a, &bulk).unwrap();
    conn.poll_transmit(&mut out); // head
    conn.poll_transmit(&mut out); // first bulk chunk
    let small = conn
        .start_message(OutgoingHead::request("ping", 1))
        .unwrap();
    conn.write(small, b"!").unwrap();
    out.clear();
    conn.poll_transmit(&mut out); // small's head (control first)
    conn.poll_transmit(&mut out); // at most one bulk chunk ...
    conn.poll_transmit(&mut out); // ... then the small body
    let packets = decode_all(&out);
    assert!(matches!(&packets[0], Packet::Mission(h) if h.info.route() == Some("ping")));
    assert!(matches!(&packets[1], Packet::Data { payload, .. } if payload.len() == CHUNK_SIZE));
    assert!(matches!(&packets[2], Packet::Data { payload, .. } if payload == b"!"));
    assert!(written < bulk.len(), "send buffer is bounded");
}

#[test]
fn writes_are_bounded_and_checked_against_the_announced_length() {
    let mut conn = LegacyConnection::new(Config {
        max_send_buffer: 8192,
        ..Config::default()
    });
    let id = conn
        .start_message(OutgoingHead::request("r", 20_000))
        .unwrap();
    let body = vec![1u8; 20_000];
    assert_eq!(conn.write(id, &body).unwrap(), 8192);
    assert_eq!(conn.write(id, &body[8192..]).unwrap(), 0, "buffer full");
    assert_eq!(
        conn.write(id, &body),
        Err(SendError::TooLong {
            id,
            declared: 20_000
        })
    );
    assert_eq!(
        conn.finish(id),
        Err(SendError::Incomplete {
            id,
            declared: 20_000,
            written: 8192
        })
    );
    let mut written = 8192;
    let mut wire = Vec::new();
    while written < body.len() {
        while conn.poll_transmit(&mut wire) > 0 {}
        written += conn.write(id, &body[written..]).unwrap();
    }
    conn.finish(id).unwrap();
    wire.extend(drain(&mut conn));
    let sizes: Vec<usize> = data_packets(&wire).into_iter().map(|(_, n)| n).collect();
    assert_eq!(
        sizes,
        [4096, 4096, 4096, 4096, 3616],
        "Python's chunk boundaries"
    );
    assert_eq!(events(&mut conn), [Event::SendComplete { id }]);
}

#[test]
fn empty_bodies_and_oversized_heads_are_refused() {
    let mut conn = LegacyConnection::new(Config::default());
    assert_eq!(
        conn.start_message(OutgoingHead::request("r", 0)),
        Err(SendError::EmptyBody)
    );
    let long_route = "x".repeat(5000);
    assert!(matches!(
        conn.start_message(OutgoingHead::request(long_route, 1)),
        Err(SendError::HeadTooLarge { limit: 4096, .. })
    ));
    conn.start_message(OutgoingHead::request("r", 1).with_extension("SAME"))
        .unwrap();
    assert_eq!(
        conn.start_message(OutgoingHead::request("r", 1).with_extension("SAME")),
        Err(SendError::DuplicateExtension("SAME".into()))
    );
    assert!(!drain(&mut conn).is_empty());
}

#[test]
fn cancel_before_the_head_went_out_sends_nothing() {
    let mut conn = LegacyConnection::new(Config::default());
    let id = conn.start_message(OutgoingHead::request("r", 10)).unwrap();
    conn.write(id, &[0; 5]).unwrap();
    conn.cancel(id).unwrap();
    assert!(drain(&mut conn).is_empty());
    assert_eq!(conn.cancel(id), Err(SendError::UnknownMessage(id)));
    assert_eq!(conn.write(id, b"x"), Err(SendError::UnknownMessage(id)));
}

#[test]
fn cancel_reaches_the_peer_and_stops_the_message() {
    let mut a = LegacyConnection::new(Config::default());
    let mut b = LegacyConnection::new(Config::default());
    let id = a.start_message(OutgoingHead::request("r", 10_000)).unwrap();
    a.write(id, &[0; 5000]).unwrap();
    let mut wire = Vec::new();
    a.poll_transmit(&mut wire);
    a.poll_transmit(&mut wire);
    a.cancel(id).unwrap();
    wire.extend(drain(&mut a));
    b.handle_input(&wire).unwrap();
    let ev = events(&mut b);
    let Event::MessageStarted { id: rid, .. } = ev[0] else {
        panic!("{ev:?}")
    };
    assert!(matches!(&ev[1], Event::Data { data, .. } if data.len() == 4096));
    assert_eq!(ev[2], Event::CancelledByPeer { id: rid });
    assert_eq!(b.incoming_in_flight(), 0);
    // Completely sent messages cannot be cancelled any more.
    let done = a.start_message(OutgoingHead::request("r", 1)).unwrap();
    a.write(done, b"x").unwrap();
    drain(&mut a);
    assert_eq!(a.cancel(done), Err(SendError::AlreadySent(done)));
}

#[test]
fn cancelling_an_incoming_message_discards_its_data_locally() {
    let mut a = LegacyConnection::new(Config::default());
    let mut b = LegacyConnection::new(Config::default());
    let id = a.start_message(OutgoingHead::request("r", 8192)).unwrap();
    a.write(id, &[0; 8192]).unwrap();
    let mut wire = Vec::new();
    a.poll_transmit(&mut wire);
    a.poll_transmit(&mut wire);
    b.handle_input(&wire).unwrap();
    let ev = events(&mut b);
    let Event::MessageStarted { id: rid, .. } = ev[0] else {
        panic!("{ev:?}")
    };
    b.cancel(rid).unwrap();
    b.handle_input(&drain(&mut a)).unwrap();
    assert!(events(&mut b).is_empty());
    assert_eq!(b.stats().ignored_data_packets, 1);
    assert!(
        drain(&mut b).is_empty(),
        "Python has no way to stop a sender"
    );
}

#[test]
fn responses_match_requests_only_once_and_only_when_is_response() {
    let mut client = LegacyConnection::new(Config::default());
    let mut server = LegacyConnection::new(Config {
        id_seed: 99,
        ..Config::default()
    });
    let req = client
        .start_message(OutgoingHead::request("echo", 2))
        .unwrap();
    client.write(req, b"hi").unwrap();
    client.finish(req).unwrap();
    let python_id = client.request_python_id(req).unwrap().to_owned();
    assert_eq!(python_id.len(), 8);
    server.handle_input(&drain(&mut client)).unwrap();
    let ev = events(&mut server);
    let Event::MessageStarted { id: sreq, head } = &ev[0] else {
        panic!()
    };
    assert_eq!(head.message_id.as_deref(), Some(python_id.as_str()));
    assert!(!head.is_response);

    // A request that reuses the id is not taken for the response.
    let fake = server
        .start_message(OutgoingHead::request("echo", 1).with_message_id(&python_id))
        .unwrap();
    server.write(fake, b"?").unwrap();
    let resp = server
        .start_message(OutgoingHead::response(*sreq, 2).with_route("echo"))
        .unwrap();
    server.write(resp, b"hi").unwrap();
    assert_eq!(
        server.start_message(OutgoingHead::response(*sreq, 1)),
        Err(SendError::NotAnswerable(*sreq)),
        "one response per request"
    );
    client.handle_input(&drain(&mut server)).unwrap();
    let heads: Vec<_> = events(&mut client)
        .into_iter()
        .filter_map(|e| match e {
            Event::MessageStarted { head, .. } => Some(head),
            _ => None,
        })
        .collect();
    assert_eq!(heads[0].in_reply_to, None);
    assert_eq!(heads[1].in_reply_to, Some(req));
    assert!(heads[1].is_response);
    assert_eq!(heads[1].route.as_deref(), Some("echo"));
    assert_eq!(client.request_python_id(req), None);
}

#[test]
fn forgotten_requests_and_evicted_answerables() {
    let mut client = LegacyConnection::new(Config::default());
    let mut server = LegacyConnection::new(Config {
        max_answerable: 2,
        ..Config::default()
    });
    let mut reqs = Vec::new();
    for _ in 0..3 {
        let r = client.start_message(OutgoingHead::request("r", 1)).unwrap();
        client.write(r, b"x").unwrap();
        reqs.push(r);
    }
    assert!(client.forget_request(reqs[0]));
    assert!(!client.forget_request(reqs[0]));
    server.handle_input(&drain(&mut client)).unwrap();
    let ids: Vec<MessageId> = events(&mut server)
        .into_iter()
        .filter_map(|e| match e {
            Event::MessageStarted { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(
        server.start_message(OutgoingHead::response(ids[0], 1)),
        Err(SendError::NotAnswerable(ids[0])),
        "oldest evicted"
    );
    for id in &ids[1..] {
        let r = server
            .start_message(OutgoingHead::response(*id, 1))
            .unwrap();
        server.write(r, b"y").unwrap();
    }
    client.handle_input(&drain(&mut server)).unwrap();
    let replies: Vec<Option<MessageId>> = events(&mut client)
        .into_iter()
        .filter_map(|e| match e {
            Event::MessageStarted { head, .. } => Some(head.in_reply_to),
            _ => None,
        })
        .collect();
    assert_eq!(replies, [Some(reqs[1]), Some(reqs[2])]);
}

#[test]
fn close_fails_everything_in_flight() {
    let mut a = LegacyConnection::new(Config::default());
    let mut b = LegacyConnection::new(Config::default());
    let out = a.start_message(OutgoingHead::request("r", 10)).unwrap();
    a.write(out, &[0; 4]).unwrap();
    let wire = drain(&mut a);
    b.handle_input(&wire).unwrap();
    let Some(Event::MessageStarted { id: inc, .. }) = b.poll_event() else {
        panic!()
    };
    b.handle_close();
    assert_eq!(
        events(&mut b),
        [Event::MessageFailed {
            id: inc,
            error: MessageError::Closed
        }]
    );
    a.handle_close();
    assert_eq!(
        events(&mut a),
        [Event::MessageFailed {
            id: out,
            error: MessageError::Closed
        }]
    );
    assert_eq!(
        a.start_message(OutgoingHead::request("r", 1)),
        Err(SendError::Closed)
    );
    assert!(a.is_dead());
}

#[test]
fn application_headers_round_trip_in_order() {
    let mut a = LegacyConnection::new(Config::default());
    let mut b = LegacyConnection::new(Config::default());
    let id = a
        .start_message(
            OutgoingHead::request("r", 1)
                .with_header("z-trace", "é".into())
                .with_header("a-num", 2.5.into()),
        )
        .unwrap();
    a.write(id, b"x").unwrap();
    let wire = drain(&mut a);
    let needle = br#""message_id": "#;
    assert!(wire.windows(needle.len()).any(|w| w == needle));
    let needle = br#", "z-trace": "\u00e9", "a-num": 2.5}}"#;
    assert!(wire.windows(needle.len()).any(|w| w == needle));
    b.handle_input(&wire).unwrap();
    let Some(Event::MessageStarted { head, .. }) = b.poll_event() else {
        panic!()
    };
    let headers: Vec<&str> = head.info.headers().map(|(k, _)| k).collect();
    assert_eq!(headers, ["z-trace", "a-num"]);
}

#[test]
fn empty_bodies_are_sent_only_when_allowed_and_then_as_python_writes_them() {
    let mut conn = LegacyConnection::new(Config::default());
    assert_eq!(
        conn.start_message(OutgoingHead::request("echo", 0)),
        Err(SendError::EmptyBody)
    );

    let mut conn = LegacyConnection::new(Config {
        allow_empty_bodies: true,
        ..Config::default()
    });
    let id = conn
        .start_message(
            OutgoingHead::request("echo", 0)
                .with_extension("cAefAZ")
                .with_message_id("ujOeHwdF"),
        )
        .unwrap();
    // Finished before its head went out: complete only once the head is sent.
    conn.finish(id).unwrap();
    assert!(events(&mut conn).is_empty());
    let mut wire = Vec::new();
    while conn.poll_transmit(&mut wire) > 0 {}
    let capture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/empty.c2s.bin"
    ))
    .unwrap();
    assert_eq!(
        wire, capture,
        "Python's bytes for Endpoint.send(\"echo\", b\"\")"
    );
    assert_eq!(events(&mut conn), vec![Event::SendComplete { id }]);
}
