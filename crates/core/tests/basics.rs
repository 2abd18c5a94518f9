//! Handshake, single- and multi-frame messages, every frame kind, replies, close.

mod common;
use bytes::Bytes;
use common::*;
use core::time::Duration;
use netcore_core::*;

#[test]
fn handshake_connects_both_sides() {
    let mut p = Pair::tcp();
    p.drive();
    assert!(p.a.is_open() && p.b.is_open());
    assert!(matches!(p.a_events[0], Event::Connected(_)));
    assert!(matches!(p.b_events[0], Event::Connected(_)));
}

#[test]
fn small_message_arrives_with_route_and_body() {
    let mut p = Pair::tcp();
    p.connect();
    let (id, head, body) = transfer(&mut p, "user/list", Bytes::from_static(b"page=1"));
    assert_eq!(id, MessageId(1));
    assert_eq!(head.route.as_deref(), Some("user/list"));
    assert_eq!(body, b"page=1");
    assert!(p
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Sent { id } if *id == MessageId(1))));
}

#[test]
fn read_whole_takes_only_an_ended_body_in_one_piece() {
    let mut p = Pair::tcp();
    p.connect();
    let id = p.a.start(MessageHead::to_route("log")).unwrap();
    p.a.write(id, Bytes::from_static(b"first ")).unwrap();
    p.drive();
    let incoming = |p: &Pair| {
        p.b_events.iter().find_map(|e| match e {
            Event::Incoming { id, .. } => Some(*id),
            _ => None,
        })
    };
    let rid = incoming(&p).expect("START arrived");
    // Not ended: nothing taken, nothing changed.
    assert_eq!(p.b.read_whole(rid), None);
    p.a.write(id, Bytes::from_static(b"second")).unwrap();
    p.a.finish(id).unwrap();
    p.drive();
    // Ended, but in two pieces: still read piece by piece.
    assert_eq!(p.b.read_whole(rid), None);
    let mut got = Vec::new();
    while let Ok(Some(c)) = p.b.read(rid, 0) {
        got.extend_from_slice(&c);
    }
    assert_eq!(got, b"first second");
    // A whole small message: one call, and the message is gone.
    p.a.send(MessageHead::to_route("log"), Bytes::from_static(b"one"))
        .unwrap();
    p.drive();
    let last = p
        .b_events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Incoming { id, .. } => Some(*id),
            _ => None,
        })
        .unwrap();
    assert_ne!(last, rid);
    assert_eq!(p.b.read_whole(last).as_deref(), Some(&b"one"[..]));
    assert_eq!(p.b.read(last, 0), Err(ReadError::UnknownMessage));
}

#[test]
fn whole_delivery_hands_small_messages_over_within_its_budget() {
    let mut cfg = Config::tcp();
    cfg.max_incoming = 4;
    let mut p = Pair::new(Config::tcp(), cfg);
    p.connect();
    // Budget for three 100-byte messages at 50 bytes of overhead each.
    p.b.set_whole_delivery(3 * 150, 50);
    for i in 0..4u8 {
        p.a.send(MessageHead::to_route("t"), Bytes::from(vec![i; 100]))
            .unwrap();
    }
    p.drive();
    let whole: Vec<(MessageId, Bytes)> = p
        .b_events
        .iter()
        .filter_map(|e| match e {
            Event::Message { id, head, body } => {
                assert_eq!(head.route.as_deref(), Some("t"));
                assert_eq!(head.total_len, Some(100));
                Some((*id, body.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(whole.len(), 3, "the budget takes three");
    for (i, (id, body)) in whole.iter().enumerate() {
        assert_eq!(body[..], vec![i as u8; 100][..]);
        // Nothing kept: the message is done.
        assert_eq!(p.b.read(*id, 0), Err(ReadError::UnknownMessage));
    }
    // The fourth waits in the connection as usual, with its Readable.
    let fourth = p
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::Incoming { id, .. } => Some(*id),
            _ => None,
        })
        .expect("past the budget: Incoming");
    assert!(p.b_events.contains(&Event::Readable { id: fourth }));
    // The three handed over returned their message credit at once: with
    // max_incoming 4 and one message unread, three more fit, a fourth does not.
    p.b.set_whole_delivery(0, 0);
    let before = p.a_events.len();
    for _ in 0..4 {
        p.a.send(MessageHead::to_route("t"), Bytes::from_static(b"x"))
            .unwrap();
    }
    p.drive();
    let started = p
        .b_events
        .iter()
        .filter(|e| matches!(e, Event::Incoming { .. }))
        .count();
    assert_eq!(started, 1 + 3);
    assert!(p.a_events.len() > before);
    // A reply handed over whole keeps its correlation.
    p.b.set_whole_delivery(u64::MAX, 0);
    p.b.send(MessageHead::reply(fourth), Bytes::from_static(b"ok"))
        .unwrap();
    p.a.set_whole_delivery(u64::MAX, 0);
    p.drive();
    let reply = p.a_events.iter().find_map(|e| match e {
        Event::Message { head, body, .. } => Some((head.reply_to, body.clone())),
        _ => None,
    });
    assert_eq!(reply, Some((Some(fourth), Bytes::from_static(b"ok"))));
}

#[test]
fn large_message_is_chunked_and_reassembled() {
    let mut p = Pair::tcp();
    p.connect();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (_, _, got) = transfer(&mut p, "bulk", Bytes::from(body.clone()));
    assert_eq!(got.len(), body.len());
    assert!(got == body);
}

#[test]
fn reply_carries_correlation() {
    let mut p = Pair::tcp();
    p.connect();
    let (req, _, _) = transfer(&mut p, "ping", Bytes::from_static(b"?"));
    p.b.send(MessageHead::reply(req), Bytes::from_static(b"pong"))
        .unwrap();
    p.drive();
    let head = p
        .a_events
        .iter()
        .find_map(|e| match e {
            Event::Incoming { head, .. } => Some(head.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(head.reply_to, Some(req));
    assert_eq!(head.route, None);
}

#[test]
fn interned_routes_shrink_repeated_messages() {
    let mut p = Pair::tcp();
    p.connect();
    let before = p.a_wire.len();
    transfer(&mut p, "sensor/temperature", Bytes::from_static(b"1"));
    let first = p.a_wire.len() - before;
    let before = p.a_wire.len();
    let (_, head, _) = transfer(&mut p, "sensor/temperature", Bytes::from_static(b"2"));
    let second = p.a_wire.len() - before;
    assert_eq!(head.route.as_deref(), Some("sensor/temperature"));
    assert!(second < first, "{second} !< {first}");
    // kind, len, id8, flags, route ref, 1 body byte (+ credit frames may follow)
    assert!(second >= 6);
}

#[test]
fn metadata_headers_arrive() {
    let mut p = Pair::tcp();
    p.connect();
    let mut h = metadata::Headers::new();
    h.insert("authorization", "Bearer x");
    let head = MessageHead::to_route("r").with_metadata(h.encode());
    p.a.send(head, Bytes::new()).unwrap();
    p.drive();
    let got = p
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::Incoming { head, .. } => Some(head.clone()),
            _ => None,
        })
        .unwrap();
    let back = metadata::Headers::decode(&got.metadata).unwrap();
    assert_eq!(back.get_str("authorization"), Some("Bearer x"));
}

#[test]
fn keepalive_pings_and_dead_peer_times_out() {
    let mut p = Pair::tcp();
    p.connect();
    // Both alive: pings keep the connection open well past the idle timeout.
    let end = p.now + Duration::from_secs(200);
    p.run_timers_until(end);
    assert!(p.a.is_open() && p.b.is_open());
    // b goes silent: a times out within idle_timeout.
    let start = p.now;
    let mut timeout = None;
    for _ in 0..1000 {
        let Some(t) = p.a.poll_timeout() else { break };
        p.now = t;
        p.a.handle_timeout(t);
        let mut sink = Vec::new();
        p.a.poll_transmit(t, &mut sink, 1 << 20);
        if p.a.is_closed() {
            timeout = Some(t);
            break;
        }
    }
    let t = timeout.expect("a never timed out");
    assert!(t - start <= Duration::from_secs(60));
    let mut closed = None;
    while let Some(e) = p.a.poll_event() {
        if let Event::Closed { error } = e {
            closed = error;
        }
    }
    assert_eq!(closed, Some(ConnectionError::TimedOut));
}

#[test]
fn graceful_close_lets_in_flight_messages_finish() {
    let mut p = Pair::tcp();
    p.connect();
    let body = vec![7u8; 500_000];
    let id =
        p.a.start(MessageHead::to_route("upload").with_len(body.len() as u64))
            .unwrap();
    p.a.write(id, Bytes::from(body[..60_000].to_vec())).unwrap();
    p.step();
    p.a.close(ErrorCode::NO_ERROR, "bye");
    // New requests are refused locally once closing.
    assert_eq!(
        p.a.start(MessageHead::to_route("x")),
        Err(StartError::Closing)
    );
    let mut sent = 60_000;
    let mut got = Vec::new();
    let mut rid = None;
    for _ in 0..10_000 {
        if sent < body.len() {
            if let Ok(n) = p.a.write(id, Bytes::from(body[sent..].to_vec())) {
                sent += n;
            }
            if sent == body.len() {
                p.a.finish(id).unwrap();
            }
        }
        p.step();
        for e in p.b_events.drain(..) {
            match e {
                Event::Incoming { id, .. } => rid = Some(id),
                Event::GoingAway { .. } => p.b.close(ErrorCode::NO_ERROR, "ok"),
                _ => {}
            }
        }
        if let Some(r) = rid {
            read_available(&mut p.b, r, &mut got);
        }
        if p.a.is_closed() && p.b.is_closed() {
            break;
        }
    }
    assert_eq!(got.len(), body.len());
    assert!(p.a.is_closed() && p.b.is_closed());
    assert!(p
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Closed { error: None })));
}

#[test]
fn abort_sends_error_frame_and_peer_sees_code() {
    let mut p = Pair::tcp();
    p.connect();
    p.a.abort(ErrorCode(0x1234), "going down");
    p.drive();
    let err = p
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::Closed { error } => error.clone(),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        err,
        ConnectionError::PeerError {
            code: ErrorCode(0x1234),
            reason: "going down".into()
        }
    );
}

#[test]
fn version_mismatch_fails_handshake_clearly() {
    // A HELLO with version 9, hand-built.
    let mut b = Connection::new(Config::tcp(), Instant::ZERO);
    let mut hello = vec![];
    frame::Frame::Hello(frame::Hello {
        version: 9,
        profile: 0,
        seen_peer: false,
        session: 0,
        capabilities: frame::Capabilities(0),
        max_frame: 1024,
        max_message: 0,
        max_metadata: 100,
        max_incoming: 1,
        max_routes: 0,
        message_window: 100,
        connection_window: 100,
    })
    .encode(&mut hello);
    b.handle_input(Instant::ZERO, &hello);
    let mut err = None;
    while let Some(e) = b.poll_event() {
        if let Event::Closed { error } = e {
            err = error;
        }
    }
    let err = err.unwrap();
    assert_eq!(
        err,
        ConnectionError::Handshake(HandshakeError::VersionMismatch { ours: 1, theirs: 9 })
    );
    assert!(err.to_string().contains("version 9"));
}

#[test]
fn profile_mismatch_is_reported() {
    let mut p = Pair::new(Config::tcp(), Config::serial());
    p.drive();
    let a_err = p.a_events.iter().find_map(|e| match e {
        Event::Closed { error } => error.clone(),
        _ => None,
    });
    assert!(
        matches!(a_err, Some(ConnectionError::Handshake(_))),
        "{a_err:?}"
    );
}

/// The same exchange reported as `Sent` per message and as `SentRange`s: the ranges
/// name the same messages in the same order, and every other event is unchanged.
#[test]
fn sent_ranges_report_what_sent_events_would() {
    let run = |ranges: bool| {
        let mut p = Pair::tcp();
        p.a.set_sent_ranges(ranges);
        p.transmit_limit = 700;
        p.connect();
        let mut rng = Rng::new(7);
        let mut streamed = Vec::new();
        for i in 0..300u64 {
            if i % 37 == 5 {
                // A streamed message among the whole ones: its Writable events and
                // its late Sent break the runs of consecutive ids.
                let id = p.a.start(MessageHead::to_route("log")).unwrap();
                p.a.write(id, Bytes::from(body_for(i, 3000))).unwrap();
                streamed.push(id);
            } else {
                let len = rng.below(200) as usize;
                p.a.send(MessageHead::to_route("t"), Bytes::from(body_for(i, len)))
                    .unwrap();
            }
            if i % 50 == 0 {
                p.step();
            }
        }
        for id in streamed {
            p.a.finish(id).unwrap();
        }
        // b reads everything, so its credit keeps coming back.
        let mut inbox = Inbox::default();
        for _ in 0..10_000 {
            let moved = p.step();
            inbox.absorb(&mut p.b, &mut p.b_events, true);
            if !moved && !p.a.has_transmit() && !p.b.has_transmit() {
                break;
            }
        }
        assert_eq!(inbox.done.len(), 300);
        p.a_events.clone()
    };
    let expand = |events: Vec<Event>| -> Vec<Event> {
        let mut out = Vec::new();
        for e in events {
            match e {
                Event::SentRange { first, count } => {
                    assert!(count >= 1);
                    out.extend((0..count).map(|i| Event::Sent {
                        id: MessageId(first.0 + i),
                    }));
                }
                other => out.push(other),
            }
        }
        out
    };
    let each = run(false);
    let ranged = run(true);
    assert!(each.iter().all(|e| !matches!(e, Event::SentRange { .. })));
    let ranges = ranged
        .iter()
        .filter(|e| matches!(e, Event::SentRange { .. }))
        .count();
    let sents = each
        .iter()
        .filter(|e| matches!(e, Event::Sent { .. }))
        .count();
    assert_eq!(sents, 300);
    // Far fewer events than messages, yet more than one (other events split them).
    assert!(
        ranges > 1 && ranges < sents / 4,
        "{ranges} ranges for {sents} messages"
    );
    assert_eq!(expand(ranged), each);
}
