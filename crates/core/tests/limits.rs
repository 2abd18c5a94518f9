//! Limits and hostile input: every violation gives a typed local error and an ERROR or
//! CANCEL frame to the peer; nothing panics and nothing is buffered past a limit.

mod common;
use bytes::Bytes;
use common::*;
use netcore_core::frame::{CancelSide, Data, Frame, RouteField, Start};
use netcore_core::*;

/// A hand-driven peer that writes frames in a profile's link framing.
struct FakePeer {
    profile: LinkProfile,
    seq: u16,
}

impl FakePeer {
    fn new(profile: LinkProfile) -> FakePeer {
        FakePeer { profile, seq: 0 }
    }

    fn bytes(&mut self, frame: &Frame) -> Vec<u8> {
        match self.profile {
            LinkProfile::Tcp => {
                let mut v = Vec::new();
                frame.encode(&mut v);
                v
            }
            LinkProfile::Serial => {
                self.seq = self.seq.wrapping_add(1);
                serial_link_frame(self.seq - 1, frame)
            }
        }
    }
}

/// A victim connection that completed its handshake with a fake peer.
fn open_victim(cfg: Config) -> (Connection, FakePeer) {
    let now = Instant::from_micros(1);
    let mut victim = Connection::new(cfg.clone(), now);
    let mut peer = FakePeer::new(cfg.profile);
    let hello = peer.bytes(&hello_frame(&Config::for_profile(cfg.profile)));
    victim.handle_input(now, &hello);
    assert!(victim.is_open());
    drain_transmit(&mut victim, now);
    drain_events(&mut victim);
    (victim, peer)
}

fn start(id8: u8, route: Option<RouteField>, fin: bool, body: &[u8]) -> Frame {
    Frame::Start(Start {
        id8,
        urgency: Urgency::DEFAULT,
        fin,
        reply_to: None,
        route,
        metadata: None,
        total_len: None,
        body: Bytes::copy_from_slice(body),
    })
}

fn literal(name: &str) -> Option<RouteField> {
    Some(RouteField::Literal {
        intern_as: 0,
        name: Bytes::copy_from_slice(name.as_bytes()),
    })
}

fn frames_out(conn: &mut Connection) -> Vec<Frame> {
    let wire = drain_transmit(conn, Instant::from_micros(1));
    match conn.config().profile {
        LinkProfile::Tcp => parse_tcp_wire(&wire),
        LinkProfile::Serial => parse_serial_wire(&wire)
            .into_iter()
            .map(|(_, f)| f)
            .collect(),
    }
}

fn error_frame_code(frames: &[Frame]) -> Option<ErrorCode> {
    frames.iter().find_map(|f| match f {
        Frame::Error(e) => Some(e.code),
        _ => None,
    })
}

fn closed_error(conn: &mut Connection) -> Option<ConnectionError> {
    closed_of(&drain_events(conn)).expect("connection did not close")
}

// ----- frame size ------------------------------------------------------------------

#[test]
fn frame_too_large_closes_with_typed_error_and_error_frame() {
    let cfg = Config::tcp();
    let (mut v, _) = open_victim(cfg.clone());
    // DATA header claiming max_frame + 1 bytes; only the header is sent.
    let mut bytes = vec![FrameKind::DATA.0];
    varint::encode(cfg.max_frame as u64 + 1, &mut bytes);
    v.handle_input(Instant::from_micros(1), &bytes);
    let err = closed_error(&mut v);
    assert!(
        matches!(
            err,
            Some(ConnectionError::Protocol(ProtocolViolation::Frame(FrameError::TooLarge { len, max, .. })))
                if len == cfg.max_frame as u64 + 1 && max == cfg.max_frame as u64
        ),
        "{err:?}"
    );
    assert_eq!(
        error_frame_code(&frames_out(&mut v)),
        Some(ErrorCode::LIMIT_EXCEEDED)
    );
}

#[test]
fn two_gib_length_is_rejected_before_buffering_it() {
    for handshaken in [false, true] {
        let (mut v, _) = if handshaken {
            open_victim(Config::tcp())
        } else {
            (
                Connection::new(Config::tcp(), Instant::ZERO),
                FakePeer::new(LinkProfile::Tcp),
            )
        };
        let mut bytes = vec![FrameKind::DATA.0];
        varint::encode(2 << 30, &mut bytes);
        // A few payload bytes follow, as a hostile peer would start streaming them.
        bytes.extend_from_slice(&[0xAB; 1000]);
        v.handle_input(Instant::from_micros(1), &bytes);
        // Rejected as soon as the varint completed; nothing of the claimed 2 GiB held.
        assert!(v.is_closed());
        assert!(v.stats().buffered_input <= bytes.len() as u64);
        let err = closed_error(&mut v).unwrap();
        let frame_err = match err {
            ConnectionError::Protocol(ProtocolViolation::Frame(e)) => e,
            ConnectionError::Handshake(HandshakeError::Frame(e)) => e,
            other => panic!("{other:?}"),
        };
        assert!(matches!(frame_err, FrameError::TooLarge { len, .. } if len == 2 << 30));
        assert!(error_frame_code(&frames_out(&mut v)).is_some());
        // Further input is ignored.
        v.handle_input(Instant::from_micros(2), &[0u8; 100_000]);
        assert!(v.stats().buffered_input <= bytes.len() as u64);
    }
    // Serial: an over-long block is line damage, skipped to the next delimiter.
    let (mut v, _) = open_victim(Config::serial());
    v.handle_input(Instant::from_micros(1), &vec![0x11; 100_000]);
    assert!(v.stats().buffered_input < 4096);
    v.handle_input(Instant::from_micros(1), &[0]);
    assert!(v.is_open());
    assert!(v.stats().link.frames_corrupt >= 1);
}

// ----- metadata and message size ---------------------------------------------------

#[test]
fn metadata_too_large_is_refused_locally_and_by_the_receiver() {
    let mut p = Pair::tcp();
    let max = p.b.config().max_metadata;
    // Started before the handshake: the sender cannot check yet, the receiver refuses.
    let big = MessageHead::to_route("r").with_metadata(Bytes::from(vec![b'm'; max + 10]));
    let id = p.a.send(big.clone(), Bytes::from_static(b"body")).unwrap();
    p.drive();
    let mut a_in = Inbox::default();
    let mut b_in = Inbox::default();
    a_in.absorb(&mut p.a, &mut p.a_events, true);
    b_in.absorb(&mut p.b, &mut p.b_events, true);
    assert_eq!(b_in.done.len(), 0);
    let limit = LimitExceeded {
        kind: LimitKind::MetadataSize,
        limit: max as u64,
        actual: max as u64 + 11,
    };
    assert_eq!(b_in.failed, vec![(id, MessageError::Limit(limit))]);
    assert_eq!(
        a_in.stopped,
        vec![(id, MessageError::CancelledByPeer(ErrorCode::LIMIT_EXCEEDED))]
    );
    assert!(parse_tcp_wire(&p.b_wire).iter().any(|f| matches!(
        f,
        Frame::Cancel(c) if c.side == CancelSide::Receiver && c.code == ErrorCode::LIMIT_EXCEEDED
    )));
    // After the handshake the sender knows the limit and refuses locally.
    assert_eq!(
        p.a.start(big),
        Err(StartError::MetadataTooLarge {
            len: max as u64 + 11,
            max: max as u64
        })
    );
    assert!(p.a.is_open() && p.b.is_open());
    let (_, _, body) = transfer(&mut p, "ok", Bytes::from_static(b"fine"));
    assert_eq!(body, b"fine");
}

#[test]
fn message_too_large_fails_typed_on_both_sides() {
    let mut cfg = Config::tcp();
    cfg.max_message = Some(1000);
    let mut p = Pair::new(Config::tcp(), cfg);
    // Announced length, before the handshake: refused by the receiver at START.
    let announced =
        p.a.start(MessageHead::to_route("a").with_len(5000))
            .unwrap();
    p.connect_keep_events();
    // After the handshake: refused locally.
    assert_eq!(
        p.a.start(MessageHead::to_route("b").with_len(5000)),
        Err(StartError::MessageTooLarge {
            len: 5000,
            max: 1000
        })
    );
    // Unannounced, streamed past the limit: the receiver fails it mid-way.
    let streamed = p.a.start(MessageHead::to_route("c")).unwrap();
    p.a.write(streamed, Bytes::from(vec![1u8; 3000])).unwrap();
    p.a.finish(streamed).unwrap();
    p.drive();
    let mut a_in = Inbox::default();
    let mut b_in = Inbox::default();
    a_in.absorb(&mut p.a, &mut p.a_events, true);
    b_in.absorb(&mut p.b, &mut p.b_events, true);
    assert!(b_in.done.is_empty());
    let failed: Vec<MessageId> = b_in.failed.iter().map(|(id, _)| *id).collect();
    assert_eq!(failed, vec![announced, streamed]);
    for (_, e) in &b_in.failed {
        assert!(
            matches!(e, MessageError::Limit(l) if l.kind == LimitKind::MessageSize && l.limit == 1000),
            "{e:?}"
        );
    }
    // The announced one is still unwritten on the sender: it stops on the CANCEL.
    let stopped: Vec<MessageId> = a_in.stopped.iter().map(|(id, _)| *id).collect();
    assert!(
        stopped.contains(&announced) && stopped.contains(&streamed),
        "{stopped:?}"
    );
    assert!(a_in
        .stopped
        .iter()
        .all(|(_, e)| *e == MessageError::CancelledByPeer(ErrorCode::LIMIT_EXCEEDED)));
    assert_eq!(p.b.stats().buffered_incoming, 0);
    assert!(p.a.is_open() && p.b.is_open());
}

trait KeepEvents {
    fn connect_keep_events(&mut self);
}

impl KeepEvents for Pair {
    fn connect_keep_events(&mut self) {
        self.drive();
        assert!(self.a.is_open() && self.b.is_open());
    }
}

// ----- concurrency -----------------------------------------------------------------

#[test]
fn real_sender_respects_the_concurrency_limit() {
    let mut cfg = Config::tcp();
    cfg.max_incoming = 2;
    let mut p = Pair::new(Config::tcp(), cfg);
    p.connect();
    let ids: Vec<MessageId> = (0..5)
        .map(|i| {
            let id = p.a.start(MessageHead::to_route(format!("c{i}"))).unwrap();
            p.a.write(id, Bytes::from_static(b"part")).unwrap();
            id
        })
        .collect();
    p.drive();
    let mut b_in = Inbox::default();
    b_in.absorb(&mut p.b, &mut p.b_events, true);
    assert_eq!(b_in.heads.len(), 2, "only two may be open at once");
    for id in &ids {
        p.a.finish(*id).unwrap();
        p.drive();
        b_in.absorb(&mut p.b, &mut p.b_events, true);
        assert!(b_in.heads.len() <= 2);
    }
    p.drive();
    b_in.absorb(&mut p.b, &mut p.b_events, true);
    assert_eq!(b_in.done.len(), 5);
    assert!(b_in.failed.is_empty());
}

#[test]
fn too_many_concurrent_incoming_closes_with_limit_exceeded() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        let mut cfg = Config::for_profile(profile);
        cfg.max_incoming = 3;
        let (mut v, mut peer) = open_victim(cfg);
        let mut bytes = Vec::new();
        for id in 1..=4u8 {
            bytes.extend(peer.bytes(&start(id, literal("x"), false, b"")));
        }
        v.handle_input(Instant::from_micros(1), &bytes);
        let events = drain_events(&mut v);
        let incoming = events
            .iter()
            .filter(|e| matches!(e, Event::Incoming { .. }))
            .count();
        assert_eq!(incoming, 3, "{profile:?}");
        let err = closed_of(&events).unwrap();
        assert!(
            matches!(
                err,
                Some(ConnectionError::Protocol(ProtocolViolation::Limit(
                    LimitExceeded {
                        kind: LimitKind::IncomingMessages,
                        limit: 3,
                        ..
                    }
                )))
            ),
            "{profile:?}: {err:?}"
        );
        // The three accepted messages fail with the connection.
        let resets = events
            .iter()
            .filter(|e| matches!(e, Event::Reset { .. }))
            .count();
        assert_eq!(resets, 3);
        assert_eq!(
            error_frame_code(&frames_out(&mut v)),
            Some(ErrorCode::LIMIT_EXCEEDED)
        );
    }
}

#[test]
fn ten_thousand_starts_beyond_credit_are_cut_off_at_the_limit() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        let cfg = Config::for_profile(profile);
        let limit = cfg.max_incoming;
        let (mut v, mut peer) = open_victim(cfg);
        let mut bytes = Vec::new();
        for id in 1..=10_000u32 {
            bytes.extend(peer.bytes(&start(id as u8, literal("flood"), true, b"x")));
        }
        v.handle_input(Instant::from_micros(1), &bytes);
        assert!(v.is_closed());
        let events = drain_events(&mut v);
        let incoming = events
            .iter()
            .filter(|e| matches!(e, Event::Incoming { .. }))
            .count();
        assert_eq!(incoming as u64, limit, "{profile:?}");
        assert!(v.stats().buffered_incoming == 0);
        assert_eq!(
            error_frame_code(&frames_out(&mut v)),
            Some(ErrorCode::LIMIT_EXCEEDED)
        );
        // More of the same after the close is ignored.
        v.handle_input(Instant::from_micros(2), &bytes);
        assert!(drain_events(&mut v).is_empty());
    }
}

// ----- routes, ids, credit ---------------------------------------------------------

#[test]
fn unknown_route_reference() {
    // tcp: a protocol violation that closes the connection.
    let (mut v, mut peer) = open_victim(Config::tcp());
    let b = peer.bytes(&start(1, Some(RouteField::Ref(5)), true, b"hi"));
    v.handle_input(Instant::from_micros(1), &b);
    assert_eq!(
        closed_error(&mut v),
        Some(ConnectionError::Protocol(ProtocolViolation::UnknownRoute(
            5
        )))
    );
    assert_eq!(
        error_frame_code(&frames_out(&mut v)),
        Some(ErrorCode::PROTOCOL_ERROR)
    );

    // serial: the START that defined it was lost; only that message fails.
    let (mut v, mut peer) = open_victim(Config::serial());
    let b = peer.bytes(&start(1, Some(RouteField::Ref(5)), true, b"hi"));
    v.handle_input(Instant::from_micros(1), &b);
    assert!(v.is_open());
    let events = drain_events(&mut v);
    assert_eq!(
        events,
        vec![Event::Rejected {
            id: MessageId(1),
            error: MessageError::FrameLost
        }]
    );
    assert!(frames_out(&mut v).iter().any(|f| matches!(
        f,
        Frame::Cancel(c) if c.id == 1 && c.side == CancelSide::Receiver && c.code == ErrorCode::FRAME_LOST
    )));
}

#[test]
fn body_beyond_credit_is_a_flow_control_error() {
    let mut cfg = Config::tcp();
    cfg.message_window = 1000;
    cfg.max_frame = 4096;
    let (mut v, mut peer) = open_victim(cfg);
    let mut b = peer.bytes(&start(1, literal("x"), false, &[1u8; 800]));
    b.extend(peer.bytes(&Frame::Data(Data {
        id: 1,
        offset: 800,
        end: false,
        body: Bytes::from(vec![2u8; 800]),
    })));
    v.handle_input(Instant::from_micros(1), &b);
    let err = closed_error(&mut v);
    assert!(
        matches!(
            err,
            Some(ConnectionError::Protocol(ProtocolViolation::FlowControl {
                allowed: 1000,
                sent: 1600
            }))
        ),
        "{err:?}"
    );
    assert_eq!(
        error_frame_code(&frames_out(&mut v)),
        Some(ErrorCode::FLOW_CONTROL_ERROR)
    );
}

#[test]
fn out_of_order_ids_and_repeated_hello_on_tcp() {
    let (mut v, mut peer) = open_victim(Config::tcp());
    let b = peer.bytes(&Frame::Data(Data {
        id: 7,
        offset: 0,
        end: true,
        body: Bytes::new(),
    }));
    v.handle_input(Instant::from_micros(1), &b);
    assert!(matches!(
        closed_error(&mut v),
        Some(ConnectionError::Protocol(ProtocolViolation::BadMessageId {
            id: 7,
            ..
        }))
    ));
    let (mut v, mut peer) = open_victim(Config::tcp());
    let b = peer.bytes(&start(5, literal("x"), true, b""));
    v.handle_input(Instant::from_micros(1), &b);
    assert!(matches!(
        closed_error(&mut v),
        Some(ConnectionError::Protocol(ProtocolViolation::BadMessageId {
            id: 5,
            ..
        }))
    ));
    let (mut v, mut peer) = open_victim(Config::tcp());
    let b = peer.bytes(&hello_frame(&Config::tcp()));
    v.handle_input(Instant::from_micros(1), &b);
    assert!(matches!(
        closed_error(&mut v),
        Some(ConnectionError::Protocol(
            ProtocolViolation::UnexpectedFrame { .. }
        ))
    ));
}

// ----- garbage ---------------------------------------------------------------------

#[test]
fn random_garbage_never_panics_in_any_state() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        for seed in 0..300u64 {
            let mut rng = Rng::new(seed);
            let cfg = Config::for_profile(profile);
            let (mut v, _) = if seed % 2 == 0 {
                open_victim(cfg.clone())
            } else {
                (
                    Connection::new(cfg.clone(), Instant::ZERO),
                    FakePeer::new(profile),
                )
            };
            if seed % 3 == 0 {
                v.send(MessageHead::to_route("out"), Bytes::from(vec![1u8; 5000]))
                    .unwrap();
            }
            let mut now = Instant::from_micros(1);
            for _ in 0..20 {
                let len = rng.below(if seed % 5 == 0 { 20 } else { 2000 });
                let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                v.handle_input(now, &junk);
                let s = v.stats();
                assert!(s.buffered_incoming <= cfg.max_connection_window);
                assert!(s.buffered_input <= (cfg.max_frame * 2 + 4096) as u64);
                drain_events(&mut v);
                drain_transmit(&mut v, now);
                now = now + core::time::Duration::from_millis(rng.below(3000));
                v.handle_timeout(now);
            }
        }
    }
}

/// Regression (fuzz run 1, conn_tcp): after a bad frame closes the connection, the
/// rest of that input chunk is all it holds; later input is not buffered at all.
#[test]
fn input_after_close_is_not_buffered() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        let (mut v, mut peer) = open_victim(Config::for_profile(profile));
        let mut chunk = peer.bytes(&start(9, literal("x"), true, b""));
        if profile == LinkProfile::Serial {
            // Out of order is fine on serial; an over-limit id closes it instead.
            chunk = peer.bytes(&start(200, literal("x"), true, b""));
        }
        chunk.extend(std::iter::repeat_n(0x42u8, 10_000));
        v.handle_input(Instant::from_micros(1), &chunk);
        assert!(v.is_closed(), "{profile:?}");
        let held = v.stats().buffered_input;
        assert!(held <= chunk.len() as u64);
        for _ in 0..100 {
            v.handle_input(Instant::from_micros(2), &[0x42; 10_000]);
        }
        assert_eq!(v.stats().buffered_input, held);
    }
}

/// Virtual memory size of this process in bytes (Linux), which a reservation of the
/// claimed length would grow even if never touched.
#[cfg(target_os = "linux")]
fn vm_size() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    pages * 4096
}

#[cfg(target_os = "linux")]
#[test]
fn huge_length_claims_reserve_no_memory() {
    let before = vm_size();
    let mut victims = Vec::new();
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        for claim in [2u64 << 30, u64::MAX >> 1, (1 << 40) + 5] {
            let (mut v, _) = open_victim(Config::for_profile(profile));
            let mut bytes = vec![FrameKind::DATA.0];
            varint::encode(claim, &mut bytes);
            bytes.extend_from_slice(&[0x5a; 4096]);
            // Byte by byte, so a reader that reserved on a partial header would show it.
            for b in &bytes {
                v.handle_input(Instant::from_micros(1), std::slice::from_ref(b));
            }
            victims.push(v);
        }
    }
    let grown = vm_size().saturating_sub(before);
    assert!(grown < 256 << 20, "virtual size grew by {grown} bytes");
    for v in &victims {
        assert!(v.stats().buffered_input < 8192);
    }
}

// ----- STARTs read in place ----------------------------------------------------------

/// A START is parsed in place in the input buffer when it has no route literal or
/// metadata; a malformed or incomplete one must still give exactly the general
/// parser's error, and one arriving in pieces must still be delivered.
#[test]
fn malformed_and_split_starts_in_place() {
    let flags = |f: u8| Urgency::DEFAULT.get() | f;
    let cases: [(Vec<u8>, FrameError); 3] = [
        // REPLY flagged, no reply-to varint.
        (
            vec![0x01, 2, 1, flags(frame::StartFlags::REPLY)],
            FrameError::Truncated {
                kind: FrameKind::START,
            },
        ),
        // Route reference varint cut short.
        (
            vec![0x01, 3, 1, flags(frame::StartFlags::ROUTE), 0x80],
            FrameError::Truncated {
                kind: FrameKind::START,
            },
        ),
        // An 11-byte total length.
        (
            [
                &[0x01, 13, 1, flags(frame::StartFlags::LENGTH)][..],
                &[0xff; 10],
                &[0x01],
            ]
            .concat(),
            FrameError::BadVarint,
        ),
    ];
    for (wire, want) in cases {
        let (mut v, _) = open_victim(Config::tcp());
        v.handle_input(Instant::from_micros(1), &wire);
        assert_eq!(
            closed_error(&mut v),
            Some(ConnectionError::Protocol(ProtocolViolation::Frame(want)))
        );
    }

    // Byte by byte: every prefix is incomplete until the last byte.
    let (mut v, mut peer) = open_victim(Config::tcp());
    let mut wire = peer.bytes(&start(1, literal("r"), false, b""));
    wire.extend(peer.bytes(&start(2, None, true, b"whole")));
    let mut intern = start(3, None, true, b"xy");
    if let Frame::Start(s) = &mut intern {
        s.route = Some(RouteField::Ref(0));
    }
    wire.extend(peer.bytes(&intern));
    for b in &wire {
        v.handle_input(Instant::from_micros(1), &[*b]);
    }
    let events = drain_events(&mut v);
    assert!(matches!(
        events[0],
        Event::Incoming {
            id: MessageId(1),
            ..
        }
    ));
    assert!(
        matches!(&events[1], Event::Incoming { id: MessageId(2), head } if head.route.is_none())
    );
    assert_eq!(events[2], Event::Readable { id: MessageId(2) });
    assert_eq!(events.len(), 3, "void START 3 delivers nothing: {events:?}");
    assert_eq!(
        v.read(MessageId(2), 0).unwrap().as_deref(),
        Some(&b"whole"[..])
    );
    assert!(v.is_open());
}
