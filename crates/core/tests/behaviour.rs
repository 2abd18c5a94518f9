//! Behaviour of the real core through the deterministic `Pair`: every frame kind on the
//! wire, scheduling (urgency, round robin, the one-frame waiting bound), flow control,
//! cancellation from both sides, keepalive and close.

mod common;
use bytes::Bytes;
use common::*;
use core::time::Duration;
use netcore_core::frame::{CancelSide, Frame};
use netcore_core::*;
use std::collections::BTreeSet;

fn kinds_of(frames: &[Frame]) -> BTreeSet<u8> {
    frames.iter().map(|f| f.kind().0).collect()
}

/// Ids of the message frames (START/DATA/END) in `frames`, START ids resolved by order.
fn message_frame_ids(frames: &[Frame], next_start_id: &mut u64) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Start(_) => {
                *next_start_id += 1;
                Some(*next_start_id - 1)
            }
            Frame::Data(d) => Some(d.id),
            _ => None,
        })
        .collect()
}

// ----- every frame kind ------------------------------------------------------------

#[test]
fn every_frame_kind_appears_on_the_tcp_wire() {
    let mut p = Pair::tcp();
    p.connect();
    let mut inbox = Inbox::default();
    // START with FIN (single frame); enough of them that b returns message credit
    // (MAX_MESSAGES goes out once half of it is used).
    for _ in 0..=netcore_core::Config::tcp().max_incoming / 2 {
        transfer(&mut p, "small", Bytes::from_static(b"x"));
    }
    // START, DATA..., END, and message credit (MAX_MESSAGE_DATA) as b reads 1.5 MiB.
    let big = body_for(1, 1_500_000);
    let (_, _, got) = transfer(&mut p, "big", Bytes::from(big.clone()));
    assert!(got == big);
    // CANCEL (sender side), then a receiver-side CANCEL via stop.
    let id = p.a.start(MessageHead::to_route("c")).unwrap();
    p.a.write(id, Bytes::from(vec![1u8; 100])).unwrap();
    p.drive();
    p.a.cancel(id, ErrorCode::CANCELLED);
    p.drive();
    let id = p.a.start(MessageHead::to_route("s")).unwrap();
    p.a.write(id, Bytes::from(vec![1u8; 100])).unwrap();
    p.drive();
    inbox.absorb(&mut p.b, &mut p.b_events, false);
    let rid = *inbox.heads.keys().last().unwrap();
    p.b.stop(rid, ErrorCode::CANCELLED);
    p.drive();
    // PING/PONG from keepalive.
    p.advance(Duration::from_secs(16));
    // GOAWAY, then an ERROR frame.
    p.a.close(ErrorCode::NO_ERROR, "bye");
    p.drive();
    p.b.abort(ErrorCode(0x101), "done");
    p.drive();

    let a = parse_tcp_wire(&p.a_wire);
    let b = parse_tcp_wire(&p.b_wire);
    let mut all = kinds_of(&a);
    all.extend(kinds_of(&b));
    for k in [
        FrameKind::HELLO,
        FrameKind::START,
        FrameKind::DATA,
        FrameKind::END,
        FrameKind::CANCEL,
        FrameKind::MAX_DATA,
        FrameKind::MAX_MESSAGE_DATA,
        FrameKind::MAX_MESSAGES,
        FrameKind::PING,
        FrameKind::PONG,
        FrameKind::GOAWAY,
        FrameKind::ERROR,
    ] {
        assert!(all.contains(&k.0), "{k:?} never sent; saw {all:x?}");
    }
    // Both CANCEL sides were used.
    let sides: BTreeSet<bool> = a
        .iter()
        .chain(b.iter())
        .filter_map(|f| match f {
            Frame::Cancel(c) => Some(c.side == CancelSide::Sender),
            _ => None,
        })
        .collect();
    assert_eq!(sides.len(), 2);
    assert!(matches!(
        p.b_closed(),
        Some(Some(ConnectionError::LocallyAborted { .. }))
    ));
}

#[test]
fn nack_appears_on_the_serial_wire_and_unknown_kinds_are_skipped() {
    let mut p = Pair::serial();
    p.connect();
    // Damage the next a→b batch once.
    let mut hit = false;
    p.a_to_b_filter = Some(Box::new(move |d: &[u8]| {
        let mut v = d.to_vec();
        if !hit && v.len() > 20 {
            v[10] ^= 0x40;
            hit = true;
        }
        v
    }));
    p.a.send(MessageHead::to_route("one"), Bytes::from(vec![3u8; 600]))
        .unwrap();
    p.drive();
    p.a.send(MessageHead::to_route("two"), Bytes::from(vec![4u8; 10]))
        .unwrap();
    p.drive();
    let b = parse_serial_wire(&p.b_wire);
    assert!(b.iter().any(|(_, f)| matches!(f, Frame::Nack(_))));

    // An unknown frame kind is skipped on both profiles.
    let unknown = Frame::Unknown {
        kind: FrameKind(0x3f),
        len: 5,
    };
    let seq = p.a_wire_seq_next();
    p.b.handle_input(p.now, &serial_link_frame(seq, &unknown));
    assert!(p.b.is_open());
    let mut t = Pair::tcp();
    t.connect();
    let mut raw = Vec::new();
    unknown.encode(&mut raw);
    t.b.handle_input(t.now, &raw);
    let (_, _, body) = transfer(&mut t, "after", Bytes::from_static(b"ok"));
    assert_eq!(body, b"ok");
    assert!(t.b.is_open());
}

trait NextSeq {
    fn a_wire_seq_next(&self) -> u16;
}

impl NextSeq for Pair {
    fn a_wire_seq_next(&self) -> u16 {
        parse_serial_wire(&self.a_wire)
            .last()
            .map_or(0, |(s, _)| s.wrapping_add(1))
    }
}

// ----- scheduling ------------------------------------------------------------------

/// Polls a one frame at a time; returns the frames a sent.
fn one_frame(p: &mut Pair) -> Vec<Frame> {
    let before = p.a_wire.len();
    p.step_limited(1);
    parse_tcp_wire(&p.a_wire[before..])
}

#[test]
fn urgent_message_overtakes_bulk() {
    let mut p = Pair::tcp();
    p.connect();
    let bulk =
        p.a.send(
            MessageHead::to_route("bulk").with_urgency(Urgency::LOWEST),
            Bytes::from(vec![0u8; 400_000]),
        )
        .unwrap();
    for _ in 0..3 {
        one_frame(&mut p);
    }
    let urgent =
        p.a.send(
            MessageHead::to_route("urgent").with_urgency(Urgency::HIGHEST),
            Bytes::from(vec![1u8; 40_000]),
        )
        .unwrap();
    // Every frame of the urgent message goes before any further bulk frame.
    let mut seen = Vec::new();
    let mut start_ids = 2;
    for _ in 0..8 {
        let frames = one_frame(&mut p);
        seen.extend(message_frame_ids(&frames, &mut start_ids));
    }
    let last_urgent = seen.iter().rposition(|&i| i == urgent.0).unwrap();
    let first_bulk = seen.iter().position(|&i| i == bulk.0).unwrap();
    assert!(last_urgent < first_bulk, "order: {seen:?}");
    assert_eq!(seen[0], urgent.0);
}

#[test]
fn equal_urgency_shares_round_robin_and_lower_urgency_waits() {
    // 16 KiB frames so each 150 kB message needs ~10 of them.
    let mut cfg = Config::tcp();
    cfg.send_frame = 16 * 1024;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.connect();
    let ids: Vec<u64> = (0..3)
        .map(|i| {
            p.a.send(
                MessageHead::to_route(format!("rr{i}")),
                Bytes::from(vec![i as u8; 150_000]),
            )
            .unwrap()
            .0
        })
        .collect();
    let low =
        p.a.send(
            MessageHead::to_route("low").with_urgency(Urgency::new(6)),
            Bytes::from(vec![9u8; 50_000]),
        )
        .unwrap();
    let mut seq = Vec::new();
    let mut next = 1;
    for _ in 0..24 {
        let frames = one_frame(&mut p);
        seq.extend(message_frame_ids(&frames, &mut next));
    }
    // The low-urgency message has not been served (its START only, if any, comes when
    // its turn comes — not here).
    assert!(!seq.contains(&low.0), "{seq:?}");
    // Strict rotation 1,2,3,1,2,3,...
    for (k, id) in seq.iter().enumerate() {
        assert_eq!(*id, ids[k % 3], "rotation broken at {k}: {seq:?}");
    }
}

/// Runs the one-frame bound scenario: a bulk transfer in progress, a small message
/// started between two polls; returns how many bulk frames went out after the start
/// and before the small message's single frame.
fn bulk_frames_before_small(profile: LinkProfile, bulk_urgency: Urgency, warmup: usize) -> usize {
    let mut p = Pair::new(Config::for_profile(profile), Config::for_profile(profile));
    p.connect();
    let bulk =
        p.a.send(
            MessageHead::to_route("bulk").with_urgency(bulk_urgency),
            Bytes::from(vec![0x55u8; 300_000]),
        )
        .unwrap();
    for _ in 0..warmup {
        p.step_limited(1);
    }
    let before = p.a_wire.len();
    let small =
        p.a.send(MessageHead::to_route("small"), Bytes::from_static(b"hello"))
            .unwrap();
    // Let a emit frames one at a time until the small message's START is out.
    for _ in 0..16 {
        p.step_limited(1);
        if p.a_events
            .iter()
            .any(|e| matches!(e, Event::Sent { id } if *id == small))
        {
            break;
        }
    }
    let frames: Vec<Frame> = match profile {
        LinkProfile::Tcp => parse_tcp_wire(&p.a_wire[before..]),
        LinkProfile::Serial => parse_serial_wire(&p.a_wire[before..])
            .into_iter()
            .map(|(_, f)| f)
            .collect(),
    };
    let pos = frames
        .iter()
        .position(|f| matches!(f, Frame::Start(s) if s.id8 == small.0 as u8))
        .expect("small message never sent");
    let bulk_frames = frames[..pos]
        .iter()
        .filter(|f| matches!(f, Frame::Data(d) if d.id == bulk.0))
        .count();
    // And the whole small message fits in that one frame.
    assert!(matches!(&frames[pos], Frame::Start(s) if s.fin && &s.body[..] == b"hello"));
    bulk_frames
}

#[test]
fn small_message_waits_at_most_one_bulk_frame() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        for urgency in [Urgency::DEFAULT, Urgency::LOWEST] {
            for warmup in [1, 2, 5, 13] {
                let n = bulk_frames_before_small(profile, urgency, warmup);
                assert!(
                    n <= 1,
                    "{profile:?} bulk urgency {urgency:?} warmup {warmup}: waited {n} frames"
                );
            }
        }
    }
}

// ----- flow control ----------------------------------------------------------------

#[test]
fn receiver_that_never_reads_buffers_at_most_its_window() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        let cfg = Config::for_profile(profile);
        // Each open message may hold at most its window; 7 messages are open.
        let window = 7 * cfg.message_window;
        let mut p = Pair::new(cfg.clone(), cfg.clone());
        p.connect();
        // Far more than the windows, over several messages, in streaming writes too.
        for i in 0..6u64 {
            p.a.send(
                MessageHead::to_route(format!("m{i}")),
                Bytes::from(body_for(i, 3 * cfg.message_window as usize / 2)),
            )
            .unwrap();
        }
        let stream = p.a.start(MessageHead::to_route("stream")).unwrap();
        for _ in 0..10_000 {
            let _ = p.a.write(stream, Bytes::from(vec![7u8; 4096]));
            let moved = p.step();
            let s = p.b.stats();
            assert!(
                s.buffered_incoming <= window,
                "{profile:?}: buffered {} > window {window}",
                s.buffered_incoming
            );
            if !moved {
                break;
            }
        }
        // Saturated exactly at the message windows, the sender is blocked, not failed.
        assert_eq!(p.b.stats().buffered_incoming, window, "{profile:?}");
        assert!(p.a.stats().queued_outgoing > 0);
        assert!(p.b_closed().is_none() && p.a_closed().is_none());

        // Reading returns credit: everything then arrives intact.
        p.a.finish(stream).unwrap();
        let mut inbox = Inbox::default();
        for _ in 0..100_000 {
            inbox.absorb(&mut p.b, &mut p.b_events, true);
            let moved = p.step();
            assert!(p.b.stats().buffered_incoming <= 7 * cfg.max_message_window);
            if !moved && inbox.heads.is_empty() && inbox.done.len() == 7 {
                break;
            }
        }
        assert_eq!(inbox.done.len(), 7, "{profile:?}");
        for (_, head, body) in &inbox.done {
            let r = head.route.as_deref().unwrap();
            if let Some(i) = r.strip_prefix('m') {
                let i: u64 = i.parse().unwrap();
                assert!(*body == body_for(i, 3 * cfg.message_window as usize / 2));
            }
        }
        let credit = parse_wire(profile, &p.b_wire)
            .iter()
            .filter(|f| matches!(f, Frame::MaxMessageData { .. }))
            .count();
        assert!(
            credit > 3,
            "{profile:?}: only {credit} MAX_MESSAGE_DATA frames"
        );
    }
}

fn parse_wire(profile: LinkProfile, wire: &[u8]) -> Vec<Frame> {
    match profile {
        LinkProfile::Tcp => parse_tcp_wire(wire),
        LinkProfile::Serial => parse_serial_wire(wire)
            .into_iter()
            .map(|(_, f)| f)
            .collect(),
    }
}

#[test]
fn per_message_window_bounds_one_unread_message() {
    let mut p = Pair::tcp();
    p.connect();
    let window = p.b.config().message_window;
    p.a.send(
        MessageHead::to_route("m"),
        Bytes::from(vec![1u8; 3 * window as usize]),
    )
    .unwrap();
    p.drive();
    assert_eq!(p.b.stats().buffered_incoming, window);
}

#[test]
fn windows_autotune_upward_but_never_past_the_cap() {
    let mut cfg = Config::tcp();
    // The message window is what a reader buffers; it grows with an eager reader.
    cfg.message_window = 8 * 1024;
    cfg.max_message_window = 128 * 1024;
    cfg.connection_window = 8 * 1024;
    cfg.max_connection_window = 128 * 1024;
    let mut p = Pair::new(cfg.clone(), cfg.clone());
    p.connect();
    let total = 8 * 1024 * 1024;
    let id = p.a.start(MessageHead::to_route("grow")).unwrap();
    let mut written = 0;
    let mut inbox = Inbox::default();
    // Phase 1: an eager reader; the clock does not move, so every window goes by in
    // well under two round trips and the window doubles each time, up to the cap.
    for _ in 0..20_000 {
        if written < total / 2 {
            if let Ok(n) = p.a.write(id, Bytes::from(vec![2u8; 16 * 1024])) {
                written += n;
            }
        }
        p.step();
        inbox.absorb(&mut p.b, &mut p.b_events, true);
        assert!(p.b.stats().buffered_incoming <= cfg.max_message_window);
        if written >= total / 2 && p.a.stats().queued_outgoing == 0 {
            break;
        }
    }
    // Phase 2: the reader stops; what it buffers now is its current window.
    for _ in 0..20_000 {
        if written < total {
            if let Ok(n) = p.a.write(id, Bytes::from(vec![2u8; 16 * 1024])) {
                written += n;
            }
        }
        let moved = p.step();
        p.b_events.clear();
        assert!(p.b.stats().buffered_incoming <= cfg.max_message_window);
        if !moved {
            break;
        }
    }
    let buffered = p.b.stats().buffered_incoming;
    assert!(
        buffered > cfg.message_window && buffered <= cfg.max_message_window,
        "window after growth: {buffered}"
    );
    // MAX_DATA never grants more than the cap beyond what was consumed.
    let mut prev = 0;
    for f in parse_tcp_wire(&p.b_wire) {
        if let Frame::MaxData(v) = f {
            assert!(v >= prev);
            assert!(v - prev <= cfg.max_connection_window, "jump {}", v - prev);
            prev = v;
        }
    }
}

// ----- cancellation ----------------------------------------------------------------

#[test]
fn sender_cancel_resets_the_receiver_and_ids_continue() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        let cfg = Config::for_profile(profile);
        let mut p = Pair::new(cfg.clone(), cfg);
        p.connect();
        let id = p.a.start(MessageHead::to_route("up")).unwrap();
        p.a.write(id, Bytes::from(vec![1u8; 2000])).unwrap();
        p.drive();
        let mut inbox = Inbox::default();
        inbox.absorb(&mut p.b, &mut p.b_events, true);
        assert!(inbox.heads.contains_key(&id));
        p.a.cancel(id, ErrorCode(0x200));
        p.drive();
        inbox.absorb(&mut p.b, &mut p.b_events, true);
        assert_eq!(
            inbox.failed,
            vec![(id, MessageError::CancelledByPeer(ErrorCode(0x200)))]
        );
        assert!(p.b.stats().buffered_incoming == 0);
        // The sender gets no event for its own cancel; the id is gone.
        assert!(!p
            .a_events
            .iter()
            .any(|e| matches!(e, Event::Stopped { .. })));
        assert_eq!(
            p.a.write(id, Bytes::from_static(b"x")),
            Err(WriteError::UnknownMessage)
        );
        // The next message gets the next id on both sides.
        let next =
            p.a.send(MessageHead::to_route("n"), Bytes::from_static(b"ok"))
                .unwrap();
        assert_eq!(next.0, id.0 + 1);
        p.drive();
        inbox.absorb(&mut p.b, &mut p.b_events, true);
        assert_eq!(inbox.body_of(next), Some(&b"ok"[..]), "{profile:?}");
    }
}

#[test]
fn receiver_stop_stops_the_sender_and_returns_credit() {
    let mut p = Pair::tcp();
    p.connect();
    let id = p.a.start(MessageHead::to_route("big")).unwrap();
    let mut inbox = Inbox::default();
    let mut stopped = false;
    for _ in 0..1000 {
        let _ = p.a.write(id, Bytes::from(vec![5u8; 32 * 1024]));
        p.step();
        inbox.absorb(&mut p.b, &mut p.b_events, false);
        if !stopped && p.b.stats().buffered_incoming > 100_000 {
            p.b.stop(id, ErrorCode(0x321));
            stopped = true;
        }
        if p.a_events
            .iter()
            .any(|e| matches!(e, Event::Stopped { .. }))
        {
            break;
        }
    }
    assert!(stopped);
    let err = p
        .a_events
        .iter()
        .find_map(|e| match e {
            Event::Stopped { id: s, error } if *s == id => Some(error.clone()),
            _ => None,
        })
        .expect("sender never saw Stopped");
    assert_eq!(err, MessageError::CancelledByPeer(ErrorCode(0x321)));
    assert_eq!(
        p.a.write(id, Bytes::from_static(b"x")),
        Err(WriteError::UnknownMessage)
    );
    p.drive();
    assert_eq!(p.b.stats().buffered_incoming, 0);
    assert_eq!(p.b.read(id, 0), Err(ReadError::UnknownMessage));
    // The whole connection window is available again: a window-sized message flows.
    let w = p.b.config().connection_window as usize;
    let (nid, _, body) = transfer(&mut p, "after", Bytes::from(body_for(9, w)));
    assert_eq!(nid.0, id.0 + 1);
    assert!(body == body_for(9, w));
}

#[test]
fn cancel_before_start_sends_a_void_message_and_ids_stay_dense() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        let cfg = Config::for_profile(profile);
        let mut p = Pair::new(cfg.clone(), cfg);
        // Before the handshake even completes.
        let void1 = p.a.start(MessageHead::to_route("never")).unwrap();
        p.a.cancel(void1, ErrorCode::CANCELLED);
        p.connect();
        // After the handshake, before the START went out.
        let void2 = p.a.start(MessageHead::to_route("never2")).unwrap();
        p.a.write(void2, Bytes::from_static(b"lost")).unwrap();
        p.a.cancel(void2, ErrorCode::CANCELLED);
        let real =
            p.a.send(MessageHead::to_route("real"), Bytes::from_static(b"R"))
                .unwrap();
        p.drive();
        let mut inbox = Inbox::default();
        inbox.absorb(&mut p.b, &mut p.b_events, true);
        assert_eq!((void1.0, void2.0, real.0), (1, 2, 3));
        // b never hears of the void messages but numbers the real one correctly.
        assert_eq!(inbox.done.len(), 1, "{profile:?}");
        assert_eq!(inbox.done[0].0, real);
        assert!(inbox.failed.is_empty(), "{:?}", inbox.failed);
        assert!(p
            .a_events
            .iter()
            .all(|e| !matches!(e, Event::Stopped { .. })));
        // The void STARTs used up ids and message credit but nothing else: many more
        // void messages than the peer's concurrency limit do not wedge the connection.
        let limit = p.b.config().max_incoming;
        for _ in 0..limit * 3 {
            let v = p.a.start(MessageHead::to_route("v")).unwrap();
            p.a.cancel(v, ErrorCode::CANCELLED);
        }
        p.drive();
        let last =
            p.a.send(MessageHead::to_route("last"), Bytes::from_static(b"L"))
                .unwrap();
        p.drive();
        inbox.absorb(&mut p.b, &mut p.b_events, true);
        assert_eq!(inbox.body_of(last), Some(&b"L"[..]), "{profile:?}");
        assert_eq!(last.0, 4 + limit * 3);
        assert!(p.a.is_open() && p.b.is_open());
    }
}

// ----- keepalive and close ---------------------------------------------------------

#[test]
fn cut_link_times_out_both_sides_with_timed_out() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        let cfg = Config::for_profile(profile);
        let idle = cfg.idle_timeout;
        let mut p = Pair::new(cfg.clone(), cfg);
        p.connect();
        p.run_timers_until(p.now + idle * 3);
        assert!(
            p.a.is_open() && p.b.is_open(),
            "{profile:?}: keepalive failed"
        );
        let pings = parse_wire(profile, &p.a_wire)
            .iter()
            .filter(|f| matches!(f, Frame::Ping(_)))
            .count();
        assert!(pings >= 2);
        p.a_to_b_filter = Some(Box::new(|_| Vec::new()));
        p.b_to_a_filter = Some(Box::new(|_| Vec::new()));
        let cut = p.now;
        p.run_timers_until(cut + idle * 2);
        assert_eq!(p.a_closed(), Some(Some(ConnectionError::TimedOut)));
        assert_eq!(p.b_closed(), Some(Some(ConnectionError::TimedOut)));
        assert!(p.a.poll_timeout().is_none());
    }
}

#[test]
fn handshake_timeout_when_peer_is_silent() {
    let mut c = Connection::new(Config::tcp(), Instant::ZERO);
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    let ev = drain_events(&mut c);
    assert_eq!(
        closed_of(&ev),
        Some(Some(ConnectionError::Handshake(HandshakeError::Timeout)))
    );
}

#[test]
fn close_with_nothing_in_flight_is_graceful_on_both_sides() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        let cfg = Config::for_profile(profile);
        let mut p = Pair::new(cfg.clone(), cfg);
        p.connect();
        p.a.close(ErrorCode::NO_ERROR, "bye");
        p.drive();
        assert!(p
            .b_events
            .iter()
            .any(|e| matches!(e, Event::GoingAway { code, reason } if *code == ErrorCode::NO_ERROR && reason == "bye")));
        assert!(!p.a.is_closed());
        p.b.close(ErrorCode::NO_ERROR, "");
        p.drive();
        if profile == LinkProfile::Serial {
            // Serial lingers a few round trips (nothing acknowledges the last frames),
            // still open and answering, then closes by itself.
            assert!(p.a.is_open() && p.b.is_open());
            let linger_end = [p.a.poll_timeout(), p.b.poll_timeout()]
                .into_iter()
                .flatten()
                .max()
                .unwrap();
            assert!(linger_end - p.now <= Duration::from_secs(1));
            p.run_timers_until(p.now + Duration::from_secs(1));
        }
        assert_eq!(p.a_closed(), Some(None), "{profile:?}");
        assert_eq!(p.b_closed(), Some(None), "{profile:?}");
        assert!(p.a.is_drained() && p.b.is_drained());
    }
}

#[test]
fn requests_crossing_a_goaway_are_refused_and_replies_still_flow() {
    let mut p = Pair::tcp();
    p.connect();
    let (req, _, _) = transfer(&mut p, "q", Bytes::from_static(b"?"));
    // a closes; before its GOAWAY arrives, b starts a new request, which reaches a
    // after a's GOAWAY went out.
    p.a.close(ErrorCode::NO_ERROR, "");
    let crossing =
        p.b.send(MessageHead::to_route("late"), Bytes::from_static(b"x"))
            .unwrap();
    let from_b = drain_transmit(&mut p.b, p.now);
    let from_a = drain_transmit(&mut p.a, p.now);
    p.a.handle_input(p.now, &from_b);
    p.b.handle_input(p.now, &from_a);
    p.collect();
    p.drive();
    let mut a_in = Inbox::default();
    let mut b_in = Inbox::default();
    a_in.absorb(&mut p.a, &mut p.a_events, true);
    b_in.absorb(&mut p.b, &mut p.b_events, true);
    assert_eq!(a_in.failed, vec![(crossing, MessageError::Refused)]);
    assert_eq!(b_in.stopped, vec![(crossing, MessageError::Refused)]);
    // b may still answer a's request while closing; new requests fail locally.
    assert_eq!(
        p.b.start(MessageHead::to_route("new")),
        Err(StartError::Closing)
    );
    let reply =
        p.b.send(MessageHead::reply(req), Bytes::from_static(b"!"))
            .unwrap();
    p.drive();
    a_in.absorb(&mut p.a, &mut p.a_events, true);
    assert_eq!(a_in.body_of(reply), Some(&b"!"[..]));
    p.b.close(ErrorCode::NO_ERROR, "");
    p.drive();
    assert_eq!(p.a_closed(), Some(None));
    assert_eq!(p.b_closed(), Some(None));
}

#[test]
fn drain_timeout_aborts_a_close_that_never_finishes() {
    let mut p = Pair::tcp();
    p.connect();
    let id = p.a.start(MessageHead::to_route("forever")).unwrap();
    p.a.write(id, Bytes::from_static(b"partial")).unwrap();
    p.drive();
    p.a.close(ErrorCode::NO_ERROR, "");
    p.drive();
    p.b.close(ErrorCode::NO_ERROR, "");
    p.drive();
    assert!(p.a.is_open());
    let drain = p.a.config().drain_timeout;
    p.run_timers_until(p.now + drain + Duration::from_secs(1));
    assert_eq!(p.a_closed(), Some(Some(ConnectionError::DrainTimedOut)));
    // The unfinished message fails on both sides.
    assert!(p
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Stopped { id: s, .. } if *s == id)));
    assert!(p
        .b_events
        .iter()
        .any(|e| matches!(e, Event::Reset { id: s, .. } if *s == id)));
}

#[test]
fn transport_closed_fails_messages_in_flight() {
    let mut p = Pair::tcp();
    p.connect();
    let id = p.a.start(MessageHead::to_route("x")).unwrap();
    p.a.handle_transport_closed(p.now);
    let ev = drain_events(&mut p.a);
    assert!(ev.iter().any(|e| matches!(e, Event::Stopped { id: s, error: MessageError::ConnectionClosed(ConnectionError::TransportClosed) } if *s == id)));
    assert_eq!(closed_of(&ev), Some(Some(ConnectionError::TransportClosed)));
}

#[test]
fn cancel_after_sent_resets_the_receiver_once_and_not_after_its_own_stop() {
    let mut p = Pair::tcp();
    p.connect();
    // Fully sent and read: the peer's handler may still be working; it hears once.
    let (id, _, _) = transfer(&mut p, "req", Bytes::from_static(b"q"));
    p.a.cancel(id, ErrorCode::CANCELLED);
    p.a.cancel(id, ErrorCode::CANCELLED);
    p.drive();
    let resets: Vec<_> = p
        .b_events
        .drain(..)
        .filter(|e| matches!(e, Event::Reset { .. }))
        .collect();
    assert_eq!(
        resets,
        vec![Event::Reset {
            id,
            error: MessageError::CancelledByPeer(ErrorCode::CANCELLED)
        }]
    );
    // b stops a message while a cancels it: b asked for no event and gets none.
    let id = p.a.start(MessageHead::to_route("up")).unwrap();
    p.a.write(id, Bytes::from_static(b"part")).unwrap();
    p.drive();
    p.b_events.clear();
    p.b.stop(id, ErrorCode::CANCELLED);
    p.a.cancel(id, ErrorCode::CANCELLED);
    p.drive();
    assert!(
        !p.b_events.iter().any(|e| matches!(e, Event::Reset { .. })),
        "{:?}",
        p.b_events
    );
    assert!(p.a.is_open() && p.b.is_open());
}

#[test]
fn blocked_writer_gets_writable_and_finishes() {
    let mut p = Pair::tcp();
    p.connect();
    let id = p.a.start(MessageHead::to_route("stream")).unwrap();
    let buffer = p.a.config().send_buffer;
    let total = buffer * 20;
    let body = Bytes::from(body_for(5, total));
    let mut written = 0;
    let mut inbox = Inbox::default();
    let mut writable_events = 0;
    for _ in 0..10_000 {
        // Write until Blocked, then only again after Writable.
        loop {
            if written == total {
                break;
            }
            match p.a.write(id, body.slice(written..)) {
                Ok(n) => written += n,
                Err(WriteError::Blocked) => break,
                Err(e) => panic!("{e}"),
            }
        }
        if written == total {
            p.a.finish(id).unwrap();
            break;
        }
        assert!(p.a.stats().queued_outgoing <= buffer as u64);
        // Drive until a says Writable.
        let mut got = false;
        for _ in 0..1000 {
            p.step();
            inbox.absorb(&mut p.b, &mut p.b_events, true);
            if let Some(k) = p
                .a_events
                .iter()
                .position(|e| matches!(e, Event::Writable { id: w } if *w == id))
            {
                p.a_events.remove(k);
                got = true;
                break;
            }
        }
        assert!(got, "no Writable after Blocked");
        writable_events += 1;
    }
    p.drive();
    inbox.absorb(&mut p.b, &mut p.b_events, true);
    assert!(writable_events >= 10);
    assert!(inbox.body_of(id).unwrap() == &body[..]);
}

#[test]
fn control_frames_go_before_queued_message_frames() {
    let mut p = Pair::tcp();
    p.connect();
    // b has a bulk transfer queued towards a.
    p.b.send(
        MessageHead::to_route("bulk"),
        Bytes::from(vec![0u8; 500_000]),
    )
    .unwrap();
    p.step_limited(1);
    // a sends b a request, b's application stops it at once, and a keepalive ping is
    // due on b: b's CANCEL and PING must precede its next bulk frame.
    let req = p.a.start(MessageHead::to_route("req")).unwrap();
    p.a.write(req, Bytes::from_static(b"x")).unwrap();
    p.step_limited(1);
    let mut inbox = Inbox::default();
    inbox.absorb(&mut p.b, &mut p.b_events, false);
    p.b.stop(req, ErrorCode::CANCELLED);
    let keepalive = p.b.config().keepalive.unwrap();
    p.now = p.now + keepalive;
    p.b.handle_timeout(p.now);
    let mut out = Vec::new();
    p.b.poll_transmit(p.now, &mut out, 1);
    p.b.poll_transmit(p.now, &mut out, 1);
    let frames = parse_tcp_wire(&out);
    assert!(
        matches!(frames[0], Frame::Cancel(_)),
        "{:?}",
        kinds_of(&frames)
    );
    assert!(
        matches!(frames[1], Frame::Ping(_)),
        "{:?}",
        kinds_of(&frames)
    );
}

#[test]
fn message_window_autotunes_under_its_cap_in_both_profiles() {
    for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
        let mut cfg = Config::for_profile(profile);
        cfg.message_window = 2 * 1024;
        cfg.max_message_window = 16 * 1024;
        cfg.connection_window = 1024 * 1024;
        cfg.max_connection_window = 1024 * 1024;
        let mut p = Pair::new(cfg.clone(), cfg.clone());
        p.connect();
        let id = p.a.start(MessageHead::to_route("grow")).unwrap();
        let chunk = Bytes::from(vec![3u8; 1024]);
        let mut inbox = Inbox::default();
        for phase in [true, false] {
            for _ in 0..3000 {
                let _ = p.a.write(id, chunk.clone());
                let moved = p.step();
                if phase {
                    inbox.absorb(&mut p.b, &mut p.b_events, true);
                } else {
                    p.b_events.clear();
                }
                assert!(p.b.readable_bytes(id) <= cfg.max_message_window);
                if !phase && !moved {
                    break;
                }
            }
        }
        let buffered = p.b.readable_bytes(id);
        assert!(
            buffered > cfg.message_window && buffered <= cfg.max_message_window,
            "{profile:?}: {buffered}"
        );
    }
}

/// Steps `p` (at most `steps` times) while B reads every message it is told about,
/// until `n` have ended: the bytes read per message, and the ids that ended.
fn receive_until_ended(
    p: &mut Pair,
    n: usize,
    steps: usize,
) -> (
    std::collections::HashMap<MessageId, Vec<u8>>,
    std::collections::HashSet<MessageId>,
) {
    let mut got = std::collections::HashMap::<MessageId, Vec<u8>>::new();
    let mut ended = std::collections::HashSet::new();
    for _ in 0..steps {
        p.step();
        let ids: Vec<MessageId> = p
            .b_events
            .drain(..)
            .filter_map(|e| match e {
                Event::Incoming { id, .. } | Event::Readable { id } => Some(id),
                _ => None,
            })
            .collect();
        for id in ids
            .into_iter()
            .chain(got.keys().copied().collect::<Vec<_>>())
        {
            if !ended.contains(&id) {
                let buf = got.entry(id).or_default();
                if read_available(&mut p.b, id, buf) {
                    ended.insert(id);
                }
            }
        }
        if ended.len() == n {
            break;
        }
    }
    (got, ended)
}

/// Regression (found by `netcore bench bulk8`): a message whose data was written while
/// the connection credit was spent was never rescheduled by MAX_DATA, stalling it.
#[test]
fn data_written_while_connection_credit_is_spent_resumes_with_max_data() {
    let mut cfg = Config::tcp();
    cfg.connection_window = 64 * 1024;
    cfg.max_connection_window = 64 * 1024;
    cfg.message_window = 64 * 1024;
    cfg.max_message_window = 64 * 1024;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.connect();
    // Message 1 spends the whole connection credit.
    let first =
        p.a.send(
            MessageHead::to_route("a"),
            Bytes::from(vec![1u8; 64 * 1024]),
        )
        .unwrap();
    // Message 2 starts and gets its data only after the credit is gone.
    let second = p.a.start(MessageHead::to_route("b")).unwrap();
    p.drive();
    p.a.write(second, Bytes::from(vec![2u8; 100_000])).unwrap();
    p.a.finish(second).unwrap();
    let (got, ended) = receive_until_ended(&mut p, 2, 10_000);
    assert_eq!(
        ended.len(),
        2,
        "stalled: {:?}",
        got.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
    );
    assert_eq!(got[&first].len(), 64 * 1024);
    assert_eq!(got[&MessageId(2)].len(), 100_000);
}

/// Hundreds of messages waiting for connection credit at once (bench `sizes`, 16 KiB
/// messages: each MAX_DATA used to search the list of waiting messages once per
/// waiting message). Every one completes with its own bytes; it stalls if a message
/// taken off the waiting list by MAX_DATA is not listed again while still blocked.
#[test]
fn hundreds_of_messages_waiting_for_connection_credit_all_complete() {
    let mut cfg = Config::tcp();
    cfg.connection_window = 32 * 1024;
    cfg.max_connection_window = 32 * 1024;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.connect();
    const N: usize = 300;
    const LEN: usize = 3000;
    let mut ids = Vec::new();
    for i in 0..N {
        let id = p.a.start(MessageHead::to_route("m")).unwrap();
        ids.push((id, i));
    }
    // STARTs go out first; the bodies, written afterwards, wait for credit together.
    p.drive();
    for &(id, i) in &ids {
        p.a.write(id, Bytes::from(vec![i as u8; LEN])).unwrap();
        p.a.finish(id).unwrap();
    }
    let (got, ended) = receive_until_ended(&mut p, N, 100_000);
    assert_eq!(
        ended.len(),
        N,
        "stalled with {} of {N} complete",
        ended.len()
    );
    for (k, v) in &got {
        let i = (k.0 - 1) as u8;
        assert_eq!(v.len(), LEN);
        assert!(
            v.iter().all(|&b| b == i),
            "message {k} carried another's bytes"
        );
    }
}

/// A connection window of 64 KiB, fixed, so the credit runs out.
fn tight_credit_pair(send_frame: usize) -> Pair {
    let mut cfg = Config::tcp();
    cfg.send_frame = send_frame;
    cfg.connection_window = 64 * 1024;
    cfg.max_connection_window = 64 * 1024;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.connect();
    p
}

/// Delivers `in_flight` (bytes a sent and held back, so they kept its connection
/// credit spent) to b, and b's MAX_DATA back to a, without letting a transmit.
fn return_credit(p: &mut Pair, in_flight: &[u8]) {
    feed(&mut p.b, p.now, in_flight, p.split);
    let mut max_data = Vec::new();
    p.b.poll_transmit(p.now, &mut max_data, usize::MAX);
    assert!(
        parse_tcp_wire(&max_data)
            .iter()
            .any(|f| matches!(f, Frame::MaxData(_))),
        "b returned no credit"
    );
    feed(&mut p.a, p.now, &max_data, p.split);
}

/// Ids of the DATA/END frames on `wire` that carry body bytes, in order.
fn data_frame_ids(wire: &[u8]) -> Vec<u64> {
    parse_tcp_wire(wire)
        .iter()
        .filter_map(|f| match f {
            Frame::Data(d) if !d.body.is_empty() => Some(d.id),
            _ => None,
        })
        .collect()
}

/// Credit comes back to the messages waiting for it most urgent first, and those of
/// one urgency share it, though each MAX_DATA wakes only as many as it covers.
#[test]
fn connection_credit_goes_to_the_most_urgent_waiting_messages_first() {
    // 32 KiB frames: the 64 KiB of credit returned covers two of them.
    let mut p = tight_credit_pair(32 * 1024);
    let first = p.a.start(MessageHead::to_route("first")).unwrap();
    let low =
        p.a.start(MessageHead::to_route("low").with_urgency(Urgency::new(6)))
            .unwrap();
    let high: Vec<MessageId> = (0..2)
        .map(|_| {
            p.a.start(MessageHead::to_route("high").with_urgency(Urgency::new(1)))
                .unwrap()
        })
        .collect();
    p.drive();
    // The first message's bytes, held in flight, spend the credit (b returns it as
    // bytes arrive).
    p.a.write(first, Bytes::from(vec![0u8; 64 * 1024])).unwrap();
    let mut in_flight = Vec::new();
    p.a.poll_transmit(p.now, &mut in_flight, usize::MAX);
    // The low-urgency message waits longest.
    for id in [low, high[0], high[1]] {
        p.a.write(id, Bytes::from(vec![7u8; 48 * 1024])).unwrap();
        p.a.finish(id).unwrap();
    }
    return_credit(&mut p, &in_flight);
    // The credit goes to the two urgent messages, a frame each.
    let mut out = Vec::new();
    p.a.poll_transmit(p.now, &mut out, usize::MAX);
    let mut sent = data_frame_ids(&out);
    sent.sort_unstable();
    assert_eq!(sent, vec![high[0].0, high[1].0]);
    feed(&mut p.b, p.now, &out, p.split);
    // The rest, driven as usual: every urgent frame before the first low one.
    p.a.finish(first).unwrap();
    let mark = p.a_wire.len();
    let (got, ended) = receive_until_ended(&mut p, 4, 10_000);
    assert_eq!(ended.len(), 4, "stalled");
    assert_eq!(got[&low].len(), 48 * 1024);
    let rest = data_frame_ids(&p.a_wire[mark..]);
    let is_high = |id: &u64| high.iter().any(|h| h.0 == *id);
    if let Some(last_high) = rest.iter().rposition(is_high) {
        let first_low = rest.iter().position(|&id| id == low.0).unwrap();
        assert!(last_high < first_low, "order: {rest:?}");
    }
}

/// Credit the messages woken for it leave unused (one of them was cancelled) goes at
/// once to those still waiting, not at the next MAX_DATA.
#[test]
fn credit_left_by_a_cancelled_message_goes_to_the_others_waiting() {
    // 64 KiB frames: each waiting message's 16 KiB is one frame.
    let mut p = tight_credit_pair(64 * 1024);
    let first = p.a.start(MessageHead::to_route("first")).unwrap();
    let waiting: Vec<MessageId> = (0..5)
        .map(|_| p.a.start(MessageHead::to_route("w")).unwrap())
        .collect();
    p.drive();
    // b returns connection credit as bytes arrive, so hold the first message's bytes
    // back: in flight, they spend the credit.
    p.a.write(first, Bytes::from(vec![0u8; 64 * 1024])).unwrap();
    let mut in_flight = Vec::new();
    p.a.poll_transmit(p.now, &mut in_flight, usize::MAX);
    for &id in &waiting {
        p.a.write(id, Bytes::from(vec![3u8; 16 * 1024])).unwrap();
        p.a.finish(id).unwrap();
    }
    let mut nothing = Vec::new();
    p.a.poll_transmit(p.now, &mut nothing, usize::MAX);
    assert!(nothing.is_empty(), "sent without credit");
    // They arrive; b's MAX_DATA gives 64 KiB: enough for four of the five waiting.
    return_credit(&mut p, &in_flight);
    p.a.cancel(waiting[0], ErrorCode::CANCELLED);
    let mut out = Vec::new();
    p.a.poll_transmit(p.now, &mut out, usize::MAX);
    let sent: BTreeSet<u64> = data_frame_ids(&out).into_iter().collect();
    assert!(!sent.contains(&waiting[0].0), "{sent:?}");
    for id in &waiting[1..] {
        assert!(sent.contains(&id.0), "{id:?} still waits: {sent:?}");
    }
}

/// Regression (found by `netcore bench sizes`): a reader that takes messages strictly one
/// after another deadlocked once the unread messages' bytes filled the connection window.
#[test]
fn reading_messages_one_at_a_time_never_deadlocks() {
    let mut cfg = Config::tcp();
    cfg.connection_window = 256 * 1024;
    cfg.max_connection_window = 256 * 1024;
    cfg.message_window = 128 * 1024;
    cfg.max_message_window = 128 * 1024;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.connect();
    let n = 20u64;
    for i in 0..n {
        p.a.send(
            MessageHead::to_route(format!("m{i}")),
            Bytes::from(body_for(i, 300_000)),
        )
        .unwrap();
    }
    let mut ids = Vec::new();
    let mut current = 0usize;
    let mut body = Vec::new();
    let mut done = 0u64;
    for _ in 0..200_000 {
        p.step();
        for e in p.b_events.drain(..) {
            if let Event::Incoming { id, .. } = e {
                ids.push(id);
            }
        }
        // Only ever read the oldest unfinished message.
        if let Some(&id) = ids.get(current) {
            if read_available(&mut p.b, id, &mut body) {
                assert!(body == body_for(done, 300_000), "message {done} corrupted");
                body.clear();
                done += 1;
                current += 1;
                if done == n {
                    break;
                }
            }
        }
    }
    assert_eq!(done, n, "sequential reader stalled after {done} messages");
}

// ----- late cancels ----------------------------------------------------------------

#[test]
fn a_cancel_for_a_message_stopped_long_ago_is_not_reported_again() {
    // Found by fuzzing: the receiver remembered only 256 early-ended ids, so a sender's
    // CANCEL for a message the receiver had stopped ~300 messages earlier surfaced as a
    // second end event (Reset) for it.
    let mut p = Pair::tcp();
    p.connect();
    let mut inbox = Inbox::default();
    let id = p.a.start(MessageHead::to_route("long")).unwrap();
    p.a.write(id, Bytes::from(vec![1u8; 100])).unwrap();
    p.drive();
    inbox.absorb(&mut p.b, &mut p.b_events, false);
    let rid = *inbox.heads.keys().last().unwrap();
    p.b.stop(rid, ErrorCode::CANCELLED);
    p.drive();
    // 300 more messages that also end early (their sender gives up midway).
    for i in 0..300 {
        let f = p.a.start(MessageHead::to_route("filler")).unwrap();
        p.a.write(f, Bytes::from(vec![i as u8; 8])).unwrap();
        p.drive();
        p.a.cancel(f, ErrorCode::CANCELLED);
        p.drive();
    }
    p.b_events.clear();
    p.a.cancel(id, ErrorCode::CANCELLED);
    p.drive();
    let resets: Vec<_> = p
        .b_events
        .iter()
        .filter(|e| matches!(e, Event::Reset { id, .. } if *id == rid))
        .collect();
    assert!(resets.is_empty(), "second end event: {resets:?}");
}

#[test]
fn a_cancel_after_a_message_was_read_whole_is_reported_once() {
    let mut p = Pair::tcp();
    p.connect();
    // Ids of one direction are the same number on both sides.
    let (rid, _, _) = transfer(&mut p, "req", Bytes::from_static(b"work"));
    p.b_events.clear();
    // The sender gives up after the receiver has the whole message (a request whose
    // caller left): the receiver hears of it once, however often it is cancelled.
    for _ in 0..2 {
        p.a.cancel(rid, ErrorCode::CANCELLED);
        p.drive();
    }
    let resets = p
        .b_events
        .iter()
        .filter(|e| matches!(e, Event::Reset { id, .. } if *id == rid))
        .count();
    assert_eq!(resets, 1);
}
