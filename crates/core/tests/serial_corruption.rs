//! Serial profile under line noise: random byte flips, drops, insertions and dropped
//! delimiters on both paths, with fixed seeds. Every delivered body is checked against
//! the body derived from its id (route `m/<seed>`): nothing corrupted is ever delivered,
//! every message the noise did not hit arrives, every message it hit fails with a typed
//! error on both sides, and the connection stays open.
//!
//! Serial has no end-to-end acknowledgement, so after a graceful close completes a
//! side lingers a few round trips, still open, to hear of a loss of its last frames
//! (tail probe, late CANCEL). A residual corner remains (pinned by
//! `close_with_messages_in_flight_on_a_noisy_line`): when the repair itself is lost and
//! takes longer than the linger, the receiver fails the message but the sender closes
//! with `Closed { error: None }` having seen only `Sent` (1 message in 4000 in that test's
//! worst-case scenario).

mod common;
use bytes::Bytes;
use common::*;
use core::time::Duration;
use netcore_core::*;
use std::collections::{BTreeMap, BTreeSet};

struct Outcome {
    delivered: usize,
    lost: usize,
    corrupt_frames: u64,
}

/// The seed a message carries: in its route `m/<seed>`, or with shared routes
/// `r/<seed % 5>` and the seed in its metadata (the route must then match the seed, so a
/// mixed-up interned route shows as corruption).
fn seed_of(head: &MessageHead) -> u64 {
    let route = head.route.as_deref().expect("route");
    if let Some(s) = route.strip_prefix("m/") {
        return s.parse().expect("seed in route");
    }
    let seed = u64::from_le_bytes(head.metadata[..].try_into().expect("seed in metadata"));
    assert_eq!(route, shared_route(seed), "wrong route delivered");
    seed
}

fn shared_route(seed: u64) -> String {
    format!("r/{}", seed % 5)
}

/// Whether `noisy_run_with` uses a few shared (interned) routes.
#[derive(Clone, Copy, PartialEq)]
enum Routes {
    Unique,
    Shared,
}

/// One direction's bookkeeping: what was sent (id → (seed, len)) and what arrived.
#[derive(Default)]
struct Flow {
    sent: BTreeMap<MessageId, (u64, usize)>,
    inbox: Inbox,
    sender: Inbox,
    /// Cancelled by the sender / stopped by the receiver during the run.
    cancelled: BTreeSet<MessageId>,
    stopped_by_rx: BTreeSet<MessageId>,
    /// How the sending side's connection ended, if it did.
    sender_closed: Option<Option<ConnectionError>>,
}

/// Runs `rounds` rounds of traffic both ways under noise from `a_to_b` / `b_to_a`
/// (per-byte odds in millionths: flip, drop, insert) and checks the guarantees.
fn noisy_run(
    seed: u64,
    rounds: usize,
    a_to_b: (u64, u64, u64),
    b_to_a: (u64, u64, u64),
) -> Outcome {
    noisy_run_with(seed, rounds, a_to_b, b_to_a, false, Routes::Unique)
}

/// As `noisy_run`; with `churn`, the sender also cancels and the receiver stops random
/// messages while the noise goes on.
fn noisy_run_with(
    seed: u64,
    rounds: usize,
    a_to_b: (u64, u64, u64),
    b_to_a: (u64, u64, u64),
    churn: bool,
    routes: Routes,
) -> Outcome {
    let mut cfg = Config::serial();
    cfg.session = seed;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.connect();
    p.a_to_b_filter = Some(noisy_filter(seed, a_to_b.0, a_to_b.1, a_to_b.2));
    p.b_to_a_filter = Some(noisy_filter(seed ^ 0xffff, b_to_a.0, b_to_a.1, b_to_a.2));
    // Deliver in small pieces, as a UART would.
    p.split = Split::Every(64);
    let mut rng = Rng::new(seed);
    let mut ab = Flow::default();
    let mut ba = Flow::default();
    let mut next_seed = seed * 1_000_000;
    for _ in 0..rounds {
        for _ in 0..4 {
            next_seed += 1;
            let len = match rng.below(4) {
                0 => 0,
                1 => rng.below(40) as usize,
                2 => rng.below(1000) as usize,
                _ => rng.below(6000) as usize,
            };
            let urgency = Urgency::new(rng.below(8) as u8);
            let (conn, flow) = if rng.chance(2, 3) {
                (&mut p.a, &mut ab)
            } else {
                (&mut p.b, &mut ba)
            };
            let head = match routes {
                Routes::Unique => MessageHead::to_route(format!("m/{next_seed}")),
                Routes::Shared => MessageHead::to_route(shared_route(next_seed))
                    .with_metadata(Bytes::copy_from_slice(&next_seed.to_le_bytes())),
            }
            .with_urgency(urgency);
            let id = conn
                .send(head, Bytes::from(body_for(next_seed, len)))
                .expect("send");
            flow.sent.insert(id, (next_seed, len));
        }
        if churn {
            churn_once(&mut rng, &mut p, &mut ab);
        }
        // Bounded shuttling, reading as data arrives, and timers for probes/NACKs.
        for _ in 0..200 {
            let moved = p.step();
            route_events(&mut p, &mut ab, &mut ba);
            if !moved {
                break;
            }
        }
        let t = p.now + Duration::from_millis(5 + rng.below(50));
        p.run_timers_until(t);
        route_events(&mut p, &mut ab, &mut ba);
        ab.inbox.read_all(&mut p.b);
        ba.inbox.read_all(&mut p.a);
        assert!(
            p.a.is_open() && p.b.is_open(),
            "seed {seed}: connection died"
        );
    }
    // Let recovery finish under the same noise, then on a clean line.
    for quiet in [false, true] {
        if quiet {
            p.a_to_b_filter = None;
            p.b_to_a_filter = None;
        }
        for _ in 0..40 {
            let t = p.now + Duration::from_millis(100);
            p.run_timers_until(t);
            route_events(&mut p, &mut ab, &mut ba);
            ab.inbox.read_all(&mut p.b);
            ba.inbox.read_all(&mut p.a);
        }
    }
    assert!(
        p.a.is_open() && p.b.is_open(),
        "seed {seed}: connection died"
    );
    let mut out = Outcome {
        delivered: 0,
        lost: 0,
        corrupt_frames: p.a.stats().link.frames_corrupt + p.b.stats().link.frames_corrupt,
    };
    for (name, flow) in [("a→b", &ab), ("b→a", &ba)] {
        check_flow(seed, name, flow, &mut out);
    }
    out
}

/// Splits the pair's collected events between the two flows: incoming-side events go
/// to the receiver's inbox, sender-side events (Sent/Stopped) to the sender's.
fn route_events(p: &mut Pair, ab: &mut Flow, ba: &mut Flow) {
    p.collect();
    let (a_out, a_in): (Vec<Event>, Vec<Event>) = p.a_events.drain(..).partition(is_sender_event);
    let (b_out, b_in): (Vec<Event>, Vec<Event>) = p.b_events.drain(..).partition(is_sender_event);
    for (flow, events) in [(&mut *ab, &a_out), (&mut *ba, &b_out)] {
        if let Some(c) = closed_of(events) {
            flow.sender_closed = Some(c);
        }
    }
    ab.sender.absorb(&mut p.a, &mut { a_out }, false);
    ba.sender.absorb(&mut p.b, &mut { b_out }, false);
    ba.inbox.absorb(&mut p.a, &mut { a_in }, true);
    ab.inbox.absorb(&mut p.b, &mut { b_in }, true);
}

fn is_sender_event(e: &Event) -> bool {
    matches!(
        e,
        Event::Sent { .. } | Event::Stopped { .. } | Event::Writable { .. } | Event::Closed { .. }
    )
}

fn check_flow(seed: u64, name: &str, flow: &Flow, out: &mut Outcome) {
    let stopped: BTreeMap<MessageId, MessageError> = flow.sender.stopped.iter().cloned().collect();
    assert_eq!(
        stopped.len(),
        flow.sender.stopped.len(),
        "seed {seed} {name}: a message was reported Stopped twice"
    );
    let delivered: BTreeSet<MessageId> = flow.inbox.done.iter().map(|(id, _, _)| *id).collect();
    // Nothing corrupted is ever delivered.
    for (id, head, body) in &flow.inbox.done {
        let s = seed_of(head);
        let (sent_seed, len) = flow.sent[id];
        assert_eq!(
            s, sent_seed,
            "seed {seed} {name}: message {id} has another's route"
        );
        assert_eq!(body.len(), len, "seed {seed} {name}: {id} wrong length");
        assert!(
            *body == body_for(s, len),
            "seed {seed} {name}: corrupted body delivered for {id}"
        );
    }
    for id in flow.sent.keys() {
        if flow.cancelled.contains(id) {
            // Cancelled by its sender: delivered (if the cancel came too late), failed,
            // or never seen; only never corrupted (checked above).
            continue;
        }
        if flow.stopped_by_rx.contains(id) {
            let err = stopped.get(id);
            assert!(
                matches!(
                    err,
                    Some(
                        MessageError::CancelledByPeer(ErrorCode::CANCELLED)
                            | MessageError::FrameLost
                    )
                ),
                "seed {seed} {name}: {id} stopped by the receiver, sender saw {err:?}"
            );
            continue;
        }
        match stopped.get(id) {
            Some(err) => {
                // Hit: typed error at the sender, never delivered.
                assert_eq!(*err, MessageError::FrameLost, "seed {seed} {name}: {id}");
                assert!(
                    !delivered.contains(id),
                    "seed {seed} {name}: {id} delivered and also reported lost"
                );
                out.lost += 1;
            }
            None => {
                assert!(
                    delivered.contains(id),
                    "seed {seed} {name}: {id} neither delivered nor failed"
                );
                out.delivered += 1;
            }
        }
    }
    // At most one failure event per incoming message.
    let failed_ids: BTreeSet<MessageId> = flow.inbox.failed.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        failed_ids.len(),
        flow.inbox.failed.len(),
        "seed {seed} {name}: an incoming message failed twice: {:?}",
        flow.inbox.failed
    );
    // Every failure the receiver saw is a FrameLost the sender saw too.
    for (id, err) in &flow.inbox.failed {
        if flow.cancelled.contains(id) {
            assert!(
                matches!(
                    err,
                    MessageError::CancelledByPeer(ErrorCode::CANCELLED) | MessageError::FrameLost
                ),
                "seed {seed} {name}: {id}: {err:?}"
            );
            continue;
        }
        assert_eq!(*err, MessageError::FrameLost, "seed {seed} {name}: {id}");
        assert!(
            stopped.contains_key(id),
            "seed {seed} {name}: receiver failed {id} but the sender thinks it arrived"
        );
    }
    // Nothing is left half-received.
    assert!(
        flow.inbox.heads.is_empty(),
        "seed {seed} {name}: incoming messages never completed: {:?}",
        flow.inbox.heads.keys().collect::<Vec<_>>()
    );
}

#[test]
fn random_flips_both_directions() {
    let mut total = Outcome {
        delivered: 0,
        lost: 0,
        corrupt_frames: 0,
    };
    for seed in 1..=6 {
        let o = noisy_run(seed, 30, (300, 0, 0), (300, 0, 0));
        total.delivered += o.delivered;
        total.lost += o.lost;
        total.corrupt_frames += o.corrupt_frames;
    }
    eprintln!(
        "flips: {} delivered, {} lost, {} corrupt frames",
        total.delivered, total.lost, total.corrupt_frames
    );
    assert!(total.lost > 0, "noise never hit anything");
    assert!(
        total.delivered > total.lost * 2,
        "{} delivered, {} lost",
        total.delivered,
        total.lost
    );
    assert!(total.corrupt_frames > 0);
}

#[test]
fn random_drops_and_insertions() {
    let mut lost = 0;
    for seed in 11..=16 {
        let o = noisy_run(seed, 30, (0, 200, 200), (0, 200, 200));
        lost += o.lost;
    }
    assert!(lost > 0);
}

#[test]
fn everything_at_once_including_dropped_delimiters() {
    // At these odds about one 256-byte frame in ten is damaged, and since every frame
    // ends with a zero delimiter, drops regularly remove delimiters and merge frames.
    for seed in 21..=26 {
        noisy_run(seed, 25, (150, 150, 150), (150, 150, 150));
    }
}

#[test]
fn dropped_delimiters_only() {
    for seed in 31..=34 {
        let mut cfg = Config::serial();
        cfg.session = seed;
        let mut p = Pair::new(cfg.clone(), cfg);
        p.connect();
        let mut rng = Rng::new(seed);
        p.a_to_b_filter = Some(Box::new(move |d: &[u8]| {
            d.iter()
                .copied()
                .filter(|&b| b != 0 || !rng.chance(1, 8))
                .collect()
        }));
        let mut inbox = Inbox::default();
        let mut sender = Inbox::default();
        let mut sent = BTreeMap::new();
        for k in 0..60u64 {
            let s = seed * 1000 + k;
            let len = (k as usize * 97) % 2000;
            let id =
                p.a.send(
                    MessageHead::to_route(format!("m/{s}")),
                    Bytes::from(body_for(s, len)),
                )
                .unwrap();
            sent.insert(id, (s, len));
            for _ in 0..50 {
                if !p.step() {
                    break;
                }
            }
            p.run_timers_until(p.now + Duration::from_millis(30));
            sender.absorb(&mut p.a, &mut p.a_events, false);
            inbox.absorb(&mut p.b, &mut p.b_events, true);
        }
        p.a_to_b_filter = None;
        p.run_timers_until(p.now + Duration::from_secs(3));
        sender.absorb(&mut p.a, &mut p.a_events, false);
        inbox.absorb(&mut p.b, &mut p.b_events, true);
        let flow = Flow {
            sent,
            inbox,
            sender,
            ..Flow::default()
        };
        let mut out = Outcome {
            delivered: 0,
            lost: 0,
            corrupt_frames: 0,
        };
        check_flow(seed, "a→b", &flow, &mut out);
        assert!(
            out.lost > 0 && out.delivered > 0,
            "seed {seed}: {} / {}",
            out.delivered,
            out.lost
        );
        assert!(p.a.is_open() && p.b.is_open());
    }
}

#[test]
fn lost_starts_do_not_leak_message_credit() {
    // Drop every START-bearing frame of many messages: with max_incoming 32, leaking one
    // unit of message-count credit per lost START would wedge the connection.
    let mut cfg = Config::serial();
    cfg.max_incoming = 4;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.connect();
    // The test decides per batch whether a→b bytes vanish.
    let dropping = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = dropping.clone();
    p.a_to_b_filter = Some(Box::new(
        move |d: &[u8]| {
            if flag.get() {
                Vec::new()
            } else {
                d.to_vec()
            }
        },
    ));
    let mut sender = Inbox::default();
    let mut inbox = Inbox::default();
    let mut sent = BTreeMap::new();
    for k in 0..100u64 {
        let id =
            p.a.send(
                MessageHead::to_route(format!("m/{k}")),
                Bytes::from(body_for(k, 10)),
            )
            .unwrap();
        sent.insert(id, (k, 10usize));
        // Every other message's START (its only frame) is lost.
        dropping.set(k % 2 == 0);
        p.step();
        dropping.set(false);
        p.run_timers_until(p.now + Duration::from_millis(50));
        sender.absorb(&mut p.a, &mut p.a_events, false);
        inbox.absorb(&mut p.b, &mut p.b_events, true);
    }
    p.a_to_b_filter = None;
    p.run_timers_until(p.now + Duration::from_secs(3));
    sender.absorb(&mut p.a, &mut p.a_events, false);
    inbox.absorb(&mut p.b, &mut p.b_events, true);
    let flow = Flow {
        sent,
        inbox,
        sender,
        ..Flow::default()
    };
    let mut out = Outcome {
        delivered: 0,
        lost: 0,
        corrupt_frames: 0,
    };
    check_flow(0, "a→b", &flow, &mut out);
    assert!(
        out.lost > 10 && out.delivered > 10,
        "{} / {}",
        out.delivered,
        out.lost
    );
    // Still works afterwards.
    let (_, _, body) = transfer(&mut p, "m/after", Bytes::from_static(b"fine"));
    assert_eq!(body, b"fine");
}

#[test]
fn garbage_on_an_open_serial_line_is_survived() {
    let mut p = Pair::serial();
    p.connect();
    let mut rng = Rng::new(99);
    for _ in 0..200 {
        let junk: Vec<u8> = (0..rng.below(3000)).map(|_| rng.next_u64() as u8).collect();
        p.b.handle_input(p.now, &junk);
        assert!(p.b.stats().buffered_input < 4096);
    }
    // The line goes idle: a break/delimiter ends the last junk block.
    p.b.handle_input(p.now, &[0]);
    // The garbage contained delimiters and random blocks; none passed the CRC, so the
    // line resynchronises and the connection lives on.
    assert!(p.b.is_open(), "{:?}", drain_events(&mut p.b));
    let (_, _, body) = transfer(&mut p, "m/1", Bytes::from(body_for(1, 3000)));
    assert!(body == body_for(1, 3000));
    assert!(p.b.stats().link.frames_corrupt > 0);
}

#[test]
fn handshake_survives_a_lost_hello_either_way() {
    for lose_a in [true, false] {
        let mut p = Pair::serial();
        let mut first = true;
        let drop_first: Filter = Box::new(move |d: &[u8]| {
            if first {
                first = false;
                Vec::new()
            } else {
                d.to_vec()
            }
        });
        if lose_a {
            p.a_to_b_filter = Some(drop_first);
        } else {
            p.b_to_a_filter = Some(drop_first);
        }
        p.drive();
        let until = p.now + Duration::from_secs(2);
        p.run_timers_until(until);
        assert!(p.a.is_open() && p.b.is_open(), "lose_a={lose_a}");
        let (_, _, body) = transfer(&mut p, "m/1", Bytes::from(body_for(1, 700)));
        assert!(body == body_for(1, 700));
    }
}

#[test]
fn noisy_handshake_then_traffic() {
    for seed in 41..=44 {
        let mut cfg = Config::serial();
        cfg.session = seed;
        let mut p = Pair::new(cfg.clone(), cfg);
        p.a_to_b_filter = Some(noisy_filter(seed, 2000, 500, 500));
        p.b_to_a_filter = Some(noisy_filter(!seed, 2000, 500, 500));
        p.drive();
        p.run_timers_until(p.now + Duration::from_secs(3));
        assert!(p.a.is_open() && p.b.is_open(), "seed {seed}");
    }
}

#[test]
fn peer_restart_is_detected_by_session() {
    let mut cfg = Config::serial();
    cfg.session = 1;
    let mut p = Pair::new(cfg.clone(), cfg.clone());
    p.connect();
    // b's process restarts: a new connection with a new session on the same line.
    cfg.session = 2;
    p.b = Connection::new(cfg, p.now);
    p.drive();
    assert_eq!(p.a_closed(), Some(Some(ConnectionError::PeerRestarted)));
}

#[test]
#[ignore = "long sweep; run with --ignored"]
fn sweep_many_seeds() {
    let n: u64 = std::env::var("SWEEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for seed in 1000..1000 + n {
        let odds = match seed % 4 {
            0 => (300, 0, 0),
            1 => (0, 200, 200),
            2 => (150, 150, 150),
            _ => (1000, 300, 300),
        };
        let routes = if seed % 2 == 0 {
            Routes::Shared
        } else {
            Routes::Unique
        };
        noisy_run_with(seed, 30, odds, odds, seed % 3 == 0, routes);
    }
}

/// The sender cancels a random live message, or the receiver stops a random incoming one.
fn churn_once(rng: &mut Rng, p: &mut Pair, ab: &mut Flow) {
    if rng.chance(1, 3) {
        let live: Vec<MessageId> = ab
            .sent
            .keys()
            .filter(|id| !ab.sender.sent.contains(id) && !ab.cancelled.contains(id))
            .copied()
            .collect();
        if !live.is_empty() {
            let id = live[rng.below(live.len() as u64) as usize];
            p.a.cancel(id, ErrorCode::CANCELLED);
            ab.cancelled.insert(id);
        }
    }
    if rng.chance(1, 3) {
        let heads: Vec<MessageId> = ab.inbox.heads.keys().copied().collect();
        if !heads.is_empty() {
            let id = heads[rng.below(heads.len() as u64) as usize];
            p.b.stop(id, ErrorCode::CANCELLED);
            ab.inbox.heads.remove(&id);
            ab.inbox.partial.remove(&id);
            ab.stopped_by_rx.insert(id);
        }
    }
}

#[test]
fn cancels_and_stops_under_noise_keep_ids_consistent() {
    for seed in 51..=58 {
        noisy_run_with(
            seed,
            30,
            (200, 100, 100),
            (200, 100, 100),
            true,
            Routes::Unique,
        );
    }
}

#[test]
fn interned_routes_survive_lost_defining_starts() {
    for seed in 61..=68 {
        noisy_run_with(
            seed,
            30,
            (300, 100, 100),
            (300, 100, 100),
            seed % 2 == 0,
            Routes::Shared,
        );
    }
}

#[test]
fn routes_recover_after_a_loss_too_long_to_attribute() {
    let mut cfg = Config::serial();
    cfg.link_history = 16;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.connect();
    // A long outage on a→b swallows more link frames than a remembers, including the
    // START that interned route "x".
    p.a_to_b_filter = Some(Box::new(|_| Vec::new()));
    p.a.send(MessageHead::to_route("x"), Bytes::from(vec![1u8; 40 * 256]))
        .unwrap();
    p.drive();
    p.a_to_b_filter = None;
    p.run_timers_until(p.now + Duration::from_secs(3));
    // Later messages on the same route must get through again.
    let mut inbox = Inbox::default();
    let mut delivered = 0;
    for k in 0..5u8 {
        p.a.send(MessageHead::to_route("x"), Bytes::from(vec![k; 10]))
            .unwrap();
        p.run_timers_until(p.now + Duration::from_millis(500));
        inbox.absorb(&mut p.b, &mut p.b_events, true);
        delivered = inbox.done.len();
    }
    let mut sender = Inbox::default();
    sender.absorb(&mut p.a, &mut p.a_events, false);
    assert!(
        delivered >= 4,
        "only {delivered} of 5 arrived: {:?} {:?} {:?} done {:?} sent {:?}",
        inbox.failed,
        sender.stopped,
        inbox.heads,
        inbox.done.iter().map(|d| d.0).collect::<Vec<_>>(),
        sender.sent
    );
    for (_, head, _) in &inbox.done {
        assert_eq!(head.route.as_deref(), Some("x"));
    }
}

#[test]
fn long_noisy_run_crosses_the_message_id_wraparound() {
    // 4 messages per round, two thirds a→b: ~270 ids each way past 255.
    for seed in 71..=72 {
        noisy_run_with(
            seed,
            100,
            (200, 100, 100),
            (200, 100, 100),
            seed % 2 == 0,
            Routes::Shared,
        );
    }
}

#[test]
fn link_sequence_numbers_wrap_under_noise() {
    // More than 65 536 link frames a→b, with noise on the way: gap detection, NACK
    // attribution and the history ring must keep working across the u16 wrap.
    let mut cfg = Config::serial();
    cfg.session = 7;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.connect();
    p.a_to_b_filter = Some(noisy_filter(7, 30, 10, 10));
    let mut sender = Inbox::default();
    let mut inbox = Inbox::default();
    let mut sent = BTreeMap::new();
    let mut k = 0u64;
    let frames_before = p.a.stats().frames_sent;
    while p.a.stats().frames_sent - frames_before < 70_000 {
        for _ in 0..32 {
            k += 1;
            let len = (k % 7) as usize;
            let id =
                p.a.send(
                    MessageHead::to_route(format!("m/{k}")),
                    Bytes::from(body_for(k, len)),
                )
                .unwrap();
            sent.insert(id, (k, len));
        }
        for _ in 0..50 {
            let moved = p.step();
            sender.absorb(&mut p.a, &mut p.a_events, false);
            inbox.absorb(&mut p.b, &mut p.b_events, true);
            if !moved {
                break;
            }
        }
        p.run_timers_until(p.now + Duration::from_millis(30));
        sender.absorb(&mut p.a, &mut p.a_events, false);
        inbox.absorb(&mut p.b, &mut p.b_events, true);
        assert!(p.a.is_open() && p.b.is_open());
    }
    p.a_to_b_filter = None;
    p.run_timers_until(p.now + Duration::from_secs(3));
    sender.absorb(&mut p.a, &mut p.a_events, false);
    inbox.absorb(&mut p.b, &mut p.b_events, true);
    let flow = Flow {
        sent,
        inbox,
        sender,
        ..Flow::default()
    };
    let mut out = Outcome {
        delivered: 0,
        lost: 0,
        corrupt_frames: 0,
    };
    check_flow(7, "a→b", &flow, &mut out);
    assert!(
        out.lost > 0 && out.delivered > 60_000,
        "{} / {}",
        out.delivered,
        out.lost
    );
}

#[test]
fn graceful_close_on_a_noisy_line() {
    for lose_last in [false, true] {
        let mut p = Pair::serial();
        p.connect();
        p.a.close(ErrorCode::NO_ERROR, "bye");
        p.drive();
        let dropping = std::rc::Rc::new(std::cell::Cell::new(lose_last));
        let flag = dropping.clone();
        p.b_to_a_filter = Some(Box::new(move |d: &[u8]| {
            if flag.get() {
                flag.set(false);
                Vec::new()
            } else {
                d.to_vec()
            }
        }));
        // b answers with its own GOAWAY; with lose_last that frame is lost.
        p.b.close(ErrorCode::NO_ERROR, "");
        p.drive();
        let idle = p.a.config().idle_timeout;
        p.run_timers_until(p.now + idle + Duration::from_secs(1));
        assert_eq!(p.b_closed(), Some(None), "lose_last={lose_last}");
        if lose_last {
            // Known limitation: b completed its close (after its linger) and ignores
            // further input, so its lost final GOAWAY is never repeated; a, with nothing
            // in flight, ends by its idle timeout instead of gracefully. It does end,
            // and nothing was lost.
            assert_eq!(p.a_closed(), Some(Some(ConnectionError::TimedOut)));
        } else {
            assert_eq!(p.a_closed(), Some(None));
        }
    }
}

#[test]
fn messages_sent_while_the_peer_still_handshakes() {
    // b's HELLO to a is lost; b (already open, having a's HELLO) sends at once. a is
    // still handshaking: those frames count as lost, b hears FrameLost, and after the
    // HELLO retry everything flows.
    let mut p = Pair::serial();
    let mut first = true;
    p.b_to_a_filter = Some(Box::new(move |d: &[u8]| {
        if first {
            first = false;
            Vec::new()
        } else {
            d.to_vec()
        }
    }));
    p.step();
    assert!(p.b.is_open() && !p.a.is_open());
    let mut sent = BTreeMap::new();
    for k in 0..3u64 {
        let id =
            p.b.send(
                MessageHead::to_route(format!("m/{k}")),
                Bytes::from(body_for(k, 300)),
            )
            .unwrap();
        sent.insert(id, (k, 300usize));
    }
    p.run_timers_until(p.now + Duration::from_secs(2));
    assert!(p.a.is_open() && p.b.is_open());
    for k in 3..6u64 {
        let id =
            p.b.send(
                MessageHead::to_route(format!("m/{k}")),
                Bytes::from(body_for(k, 300)),
            )
            .unwrap();
        sent.insert(id, (k, 300usize));
    }
    p.run_timers_until(p.now + Duration::from_secs(2));
    let mut inbox = Inbox::default();
    let mut sender = Inbox::default();
    inbox.absorb(&mut p.a, &mut p.a_events, true);
    sender.absorb(&mut p.b, &mut p.b_events, false);
    let flow = Flow {
        sent,
        inbox,
        sender,
        ..Flow::default()
    };
    let mut out = Outcome {
        delivered: 0,
        lost: 0,
        corrupt_frames: 0,
    };
    check_flow(0, "b→a", &flow, &mut out);
    assert!(out.delivered >= 3, "{} delivered", out.delivered);
}

#[test]
fn traffic_queued_before_a_noisy_handshake() {
    for seed in 81..=96 {
        let mut cfg = Config::serial();
        cfg.session = seed;
        let mut p = Pair::new(cfg.clone(), cfg);
        p.a_to_b_filter = Some(noisy_filter(seed, 3000, 1000, 1000));
        p.b_to_a_filter = Some(noisy_filter(!seed, 3000, 1000, 1000));
        let mut ab = Flow::default();
        let mut ba = Flow::default();
        for k in 0..6u64 {
            let s = seed * 100 + k;
            let len = (k as usize * 211) % 900;
            let (conn, flow) = if k % 2 == 0 {
                (&mut p.a, &mut ab)
            } else {
                (&mut p.b, &mut ba)
            };
            let id = conn
                .send(
                    MessageHead::to_route(format!("m/{s}")),
                    Bytes::from(body_for(s, len)),
                )
                .unwrap();
            flow.sent.insert(id, (s, len));
        }
        p.run_timers_until(p.now + Duration::from_secs(4));
        route_events(&mut p, &mut ab, &mut ba);
        p.a_to_b_filter = None;
        p.b_to_a_filter = None;
        p.run_timers_until(p.now + Duration::from_secs(3));
        route_events(&mut p, &mut ab, &mut ba);
        assert!(p.a.is_open() && p.b.is_open(), "seed {seed}");
        let mut out = Outcome {
            delivered: 0,
            lost: 0,
            corrupt_frames: 0,
        };
        check_flow(seed, "a→b", &ab, &mut out);
        check_flow(seed, "b→a", &ba, &mut out);
    }
}

#[test]
fn close_with_messages_in_flight_on_a_noisy_line() {
    let mut residual = 0;
    for seed in 101..=300 {
        let mut cfg = Config::serial();
        cfg.session = seed;
        let mut p = Pair::new(cfg.clone(), cfg);
        p.connect();
        p.a_to_b_filter = Some(noisy_filter(seed, 300, 100, 100));
        p.b_to_a_filter = Some(noisy_filter(!seed, 300, 100, 100));
        let mut ab = Flow::default();
        let mut ba = Flow::default();
        for k in 0..8u64 {
            let s = seed * 100 + k;
            let len = (k as usize * 1311) % 9000;
            let id =
                p.a.send(
                    MessageHead::to_route(format!("m/{s}")),
                    Bytes::from(body_for(s, len)),
                )
                .unwrap();
            ab.sent.insert(id, (s, len));
        }
        p.step();
        p.a.close(ErrorCode::NO_ERROR, "bye");
        let mut b_closing = false;
        let (mut a_closed_at, mut b_closed_at) = (false, false);
        for _ in 0..400 {
            p.run_timers_until(p.now + Duration::from_millis(100));
            if !b_closing
                && p.b_events
                    .iter()
                    .any(|e| matches!(e, Event::GoingAway { .. }))
            {
                p.b.close(ErrorCode::NO_ERROR, "");
                b_closing = true;
            }
            p.collect();
            for (events, seen) in [
                (&p.a_events, &mut a_closed_at),
                (&p.b_events, &mut b_closed_at),
            ] {
                // Closed is the last event a connection reports.
                if let Some(k) = events
                    .iter()
                    .position(|e| matches!(e, Event::Closed { .. }))
                {
                    assert_eq!(
                        k,
                        events.len() - 1,
                        "seed {seed}: events after Closed: {events:?}"
                    );
                    *seen = true;
                } else {
                    assert!(
                        !*seen || events.is_empty(),
                        "seed {seed}: events after Closed"
                    );
                }
            }
            route_events(&mut p, &mut ab, &mut ba);
            if p.a.is_closed() && p.b.is_closed() {
                break;
            }
        }
        assert!(
            p.a.is_closed() && p.b.is_closed(),
            "seed {seed}: never closed"
        );
        let a_err = ab.sender_closed.clone();
        // Every message a sent is accounted for: delivered intact, or failed on the line,
        // or failed because the connection ended.
        let stopped: BTreeMap<MessageId, MessageError> =
            ab.sender.stopped.iter().cloned().collect();
        let failed_at_b: BTreeSet<MessageId> = ab.inbox.failed.iter().map(|(i, _)| *i).collect();
        for (id, (s, len)) in &ab.sent {
            let delivered = ab.inbox.done.iter().find(|(i, _, _)| i == id);
            match (delivered, stopped.get(id)) {
                (Some((_, _, body)), None) => assert!(*body == body_for(*s, *len)),
                (None, Some(_)) => {}
                // Residual corner (see the module docs): the receiver failed it, but
                // the repair did not reach the sender before its close linger ended.
                (None, None) if failed_at_b.contains(id) && a_err == Some(None) => {
                    residual += 1;
                }
                other => panic!(
                    "seed {seed}: {id}: {other:?} (a closed with {a_err:?}); b failed {:?}; a sent {:?}; b heads {:?}",
                    ab.inbox.failed, ab.sender.sent, ab.inbox.heads.keys().collect::<Vec<_>>()
                ),
            }
        }
    }
    // This scenario maximises the exposure (every message is still in flight when the
    // close begins). Without the close linger it was 4 in 128 messages; with it, 1 in
    // 4000 over seeds 101..=600.
    assert!(residual <= 1, "{residual} messages lost silently at close");
}
