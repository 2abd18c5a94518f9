//! `LegacyWire` without I/O: the `Wire` contract on real Python captures at every split,
//! and random garbage (no panic, bounded memory, one `Closed` at most).

use bytes::Bytes;
use netcore_core::metadata::Headers;
use netcore_core::{Event, Instant, MessageHead, MessageId, ReadError};
use netcore_runtime::legacy::{LegacyOptions, LegacyWire, Wire, HEADER_MESSAGE_ID};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

fn capture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../legacy/tests/vectors")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// What a lazy driver sees: heads, bodies, ends, resets, and how many `Readable`s came
/// while data was already buffered and unread (must be 0).
#[derive(Default, Debug, PartialEq)]
struct Seen {
    heads: Vec<(MessageId, MessageHead)>,
    bodies: HashMap<MessageId, Vec<u8>>,
    ended: BTreeSet<MessageId>,
    resets: BTreeSet<MessageId>,
    closed: usize,
}

/// Feeds `input` in pieces cut at `cuts`, reading bodies only every other event batch
/// (so data piles up between reads), and checks the Readable contract.
fn run(input: &[u8], cuts: &[usize]) -> Seen {
    let mut wire = LegacyWire::new(&LegacyOptions::default());
    let mut seen = Seen::default();
    let mut unread_signalled: HashMap<MessageId, bool> = HashMap::new();
    let mut pieces = Vec::new();
    let mut at = 0;
    for &c in cuts {
        let c = c.min(input.len());
        if c > at {
            pieces.push(&input[at..c]);
            at = c;
        }
    }
    pieces.push(&input[at..]);
    for (turn, piece) in pieces.iter().enumerate() {
        wire.handle_input(Instant::ZERO, piece);
        while let Some(ev) = wire.poll_event() {
            match ev {
                Event::Connected(_) => {}
                Event::Incoming { id, head } => {
                    seen.heads.push((id, head));
                    seen.bodies.insert(id, Vec::new());
                    unread_signalled.insert(id, false);
                }
                Event::Readable { id } => {
                    let flag = unread_signalled
                        .get_mut(&id)
                        .expect("Readable for a known id");
                    assert!(!*flag, "Readable while data was still buffered");
                    *flag = true;
                }
                Event::Reset { id, .. } => {
                    seen.resets.insert(id);
                }
                Event::Closed { .. } => seen.closed += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        if turn % 2 == 1 || turn == pieces.len() - 1 {
            drain(&mut wire, &mut seen, &mut unread_signalled);
        }
    }
    drain(&mut wire, &mut seen, &mut unread_signalled);
    seen
}

fn drain(wire: &mut LegacyWire, seen: &mut Seen, signalled: &mut HashMap<MessageId, bool>) {
    for (id, flag) in signalled.iter_mut() {
        if !*flag {
            continue;
        }
        loop {
            match wire.read(*id, 3000) {
                Ok(Some(b)) => seen.bodies.entry(*id).or_default().extend_from_slice(&b),
                Ok(None) => {
                    seen.ended.insert(*id);
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        *flag = false;
    }
    signalled.retain(|id, _| !seen.ended.contains(id));
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn python_captures_decode_the_same_at_every_split() {
    for name in [
        "echo.c2s.bin",
        "json.c2s.bin",
        "big10000.c2s.bin",
        "interleave.c2s.bin",
        "cancel.c2s.bin",
        "unknown_route.c2s.bin",
        "empty.c2s.bin",
    ] {
        let input = capture(name);
        let whole = run(&input, &[]);
        assert!(!whole.heads.is_empty(), "{name}: no message");
        assert_eq!(whole.closed, 0);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ input.len() as u64);
        for round in 0..40 {
            let mut cuts: Vec<usize> = (0..1 + round % 12)
                .map(|_| (rng.next() % input.len() as u64) as usize)
                .collect();
            cuts.sort_unstable();
            assert!(run(&input, &cuts) == whole, "{name} cut at {cuts:?}");
        }
        // Byte at a time.
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert!(run(&input, &cuts) == whole, "{name} byte at a time");
    }
}

#[test]
fn captures_become_the_expected_messages() {
    let echo = run(&capture("echo.c2s.bin"), &[]);
    let (id, head) = &echo.heads[0];
    assert_eq!(head.route.as_deref(), Some("echo"));
    assert_eq!(head.total_len, Some(5));
    assert_eq!(head.reply_to, None);
    let h = Headers::decode(&head.metadata).unwrap();
    assert_eq!(h.get_str(HEADER_MESSAGE_ID), Some("ujOeHwdF"));
    assert_eq!(echo.bodies[id], b"hello");
    assert_eq!(echo.ended, BTreeSet::from([*id]));

    let big = run(&capture("big10000.c2s.bin"), &[]);
    let expected: Vec<u8> = (0..10_000u32).map(|i| ((i * 7 + 3) % 251) as u8).collect();
    assert!(big.bodies[&big.heads[0].0] == expected);

    let inter = run(&capture("interleave.c2s.bin"), &[]);
    assert_eq!(inter.ended.len(), 2);
    let mut bodies: Vec<&Vec<u8>> = inter.bodies.values().collect();
    bodies.sort();
    assert!(*bodies[0] == vec![b'a'; 9000]);
    assert!(*bodies[1] == vec![b'b'; 9000]);

    // The cancelled message is reset; the other one completes.
    let cancel = run(&capture("cancel.c2s.bin"), &[]);
    assert_eq!(cancel.resets.len(), 1);
    assert_eq!(cancel.heads.len(), 2);

    // Python's empty message is delivered at once, empty.
    let empty = run(&capture("empty.c2s.bin"), &[]);
    assert_eq!(empty.ended.len(), 1);
    assert!(empty.bodies[&empty.heads[0].0].is_empty());
}

#[test]
fn replies_to_python_requests_match_the_python_bytes() {
    // A request from the capture, answered through the Wire: the answer carries the
    // request's message_id and is_response, as Python's Response does.
    let mut wire = LegacyWire::new(&LegacyOptions::default());
    wire.handle_input(Instant::ZERO, &capture("echo.c2s.bin"));
    let id = std::iter::from_fn(|| wire.poll_event())
        .find_map(|e| match e {
            Event::Incoming { id, .. } => Some(id),
            _ => None,
        })
        .unwrap();
    let mut head = MessageHead::reply(id);
    head.route = Some("echo".into());
    let out_id = wire.send(head, Bytes::from_static(b"hello")).unwrap();
    let mut out = Vec::new();
    wire.poll_transmit(Instant::ZERO, &mut out, 1 << 16);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains(
            r#""info": {"route": "echo", "is_response": true, "message_id": "ujOeHwdF"}"#
        ),
        "{text}"
    );
    assert!(out.ends_with(b"hello"));
    assert!(std::iter::from_fn(|| wire.poll_event()).any(|e| e == Event::Sent { id: out_id }));
}

#[test]
fn random_garbage_never_panics_and_stays_bounded() {
    let limits = LegacyOptions::default().codec.limits;
    let bound = (limits.max_header_len.max(limits.max_packet_len) + limits.max_early_data) as u64;
    let echo = capture("echo.c2s.bin");
    for seed in 1..200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let options = LegacyOptions::default();
        let mut wire = LegacyWire::new(&options);
        let monitor = wire.monitor();
        let mut closed = 0;
        for _ in 0..50 {
            // Mix valid packets, mutated packets and plain noise.
            let mut piece = echo.clone();
            match rng.next() % 3 {
                0 => {}
                1 => {
                    for _ in 0..1 + rng.next() % 4 {
                        let i = (rng.next() % piece.len() as u64) as usize;
                        piece[i] = rng.next() as u8;
                    }
                }
                _ => {
                    piece = (0..rng.next() % 300).map(|_| rng.next() as u8).collect();
                }
            }
            wire.handle_input(Instant::ZERO, &piece);
            while let Some(ev) = wire.poll_event() {
                match ev {
                    Event::Closed { error } => {
                        closed += 1;
                        assert!(error.is_some());
                    }
                    Event::Incoming { id, .. } | Event::Readable { id } => {
                        while let Ok(Some(_)) = wire.read(id, 0) {}
                    }
                    _ => {}
                }
            }
            let s = monitor.stats();
            assert!(s.codec_buffered_input <= bound, "seed {seed}: {s:?}");
            assert!(s.buffered_incoming <= options.max_buffered_incoming as u64);
            let mut out = Vec::new();
            wire.poll_transmit(Instant::ZERO, &mut out, 1 << 16);
        }
        assert!(closed <= 1, "seed {seed}: Closed reported {closed} times");
        assert_eq!(wire.is_closed(), closed == 1);
    }
}

#[test]
fn empty_bodies_are_refused_unless_allowed_then_sent_as_python_does() {
    let mut wire = LegacyWire::new(&LegacyOptions::default());
    let _ = wire.poll_event();
    let id = wire
        .send(MessageHead::to_route("echo"), Bytes::new())
        .unwrap();
    let mut out = Vec::new();
    wire.poll_transmit(Instant::ZERO, &mut out, 1 << 16);
    assert!(out.is_empty());
    assert!(matches!(
        wire.poll_event(),
        Some(Event::Stopped { id: s, .. }) if s == id
    ));

    // Allowed: the same bytes Python writes for `Endpoint.send("echo", b"")`.
    let mut options = LegacyOptions::default();
    options.codec.allow_empty_bodies = true;
    let mut wire = LegacyWire::new(&options);
    let _ = wire.poll_event();
    let mut head = MessageHead::to_route("echo");
    let mut h = Headers::new();
    h.insert(HEADER_MESSAGE_ID, "ujOeHwdF");
    head.metadata = h.encode();
    let id = wire.send(head, Bytes::new()).unwrap();
    let mut out = Vec::new();
    wire.poll_transmit(Instant::ZERO, &mut out, 1 << 16);
    assert_eq!(wire.poll_event(), Some(Event::Sent { id }));
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.ends_with(r#""length": 0, "info": {"route": "echo", "message_id": "ujOeHwdF"}}"#),
        "{text}"
    );
    // A netcore receiver delivers it.
    let mut rx = LegacyWire::new(&LegacyOptions::default());
    rx.handle_input(Instant::ZERO, &out);
    let evs: Vec<Event> = std::iter::from_fn(|| rx.poll_event()).collect();
    let rid = evs
        .iter()
        .find_map(|e| match e {
            Event::Incoming { id, head } if head.total_len == Some(0) => Some(*id),
            _ => None,
        })
        .expect("incoming empty message");
    assert_eq!(rx.read(rid, 0), Ok(None));
}

#[test]
fn the_oldest_pending_request_fails_past_the_limit() {
    let options = LegacyOptions {
        max_pending_requests: 2,
        ..LegacyOptions::default()
    };
    let mut wire = LegacyWire::new(&options);
    let _ = wire.poll_event();
    let mut out = Vec::new();
    let ids: Vec<MessageId> = (0..3)
        .map(|_| {
            let id = wire
                .send(MessageHead::to_route("r"), Bytes::from_static(b"x"))
                .unwrap();
            wire.poll_transmit(Instant::ZERO, &mut out, 1 << 16);
            id
        })
        .collect();
    let evs: Vec<Event> = std::iter::from_fn(|| wire.poll_event()).collect();
    let stopped: Vec<MessageId> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Stopped { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(stopped, vec![ids[0]], "{evs:?}");
    assert!(evs.contains(&Event::Sent { id: ids[2] }));
}
