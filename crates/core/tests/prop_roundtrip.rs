//! Property tests: random sets of messages (0 B to 1 MiB), urgencies, whole or streamed
//! bodies, random split points of the byte stream and random transmit limits; every
//! message arrives intact and complete, in both link profiles and both directions.

mod common;
use bytes::Bytes;
use common::*;
use netcore_core::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct Msg {
    len: usize,
    urgency: u8,
    /// Streamed with write() in pieces of this size (None: one `send`).
    stream: Option<usize>,
    /// Sent by b instead of a.
    from_b: bool,
    /// Announce the length in START.
    announce: bool,
}

fn msg() -> impl Strategy<Value = Msg> {
    let len = prop_oneof![
        4 => 0usize..64,
        3 => 0usize..5_000,
        2 => 0usize..70_000,
        1 => 900_000usize..=1_048_576,
    ];
    (
        len,
        0u8..8,
        prop::option::of(1usize..40_000),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(len, urgency, stream, from_b, announce)| Msg {
            len,
            urgency,
            stream,
            from_b,
            announce,
        })
}

struct Pending {
    id: MessageId,
    body: Bytes,
    written: usize,
    len: usize,
    chunk: usize,
    from_b: bool,
    /// Saw `Blocked`: writes again only after `Writable`, as an application would.
    blocked: bool,
}

fn run(profile: LinkProfile, msgs: &[Msg], split_seed: u64, split_max: usize, limit: usize) {
    run_with(
        Config::for_profile(profile),
        msgs,
        split_seed,
        split_max,
        limit,
    );
}

/// Windows and buffers so small that every transfer keeps running out of connection
/// and message credit, and writers keep hitting `Blocked`.
fn tiny(profile: LinkProfile) -> Config {
    let mut cfg = Config::for_profile(profile);
    cfg.connection_window = 3000;
    cfg.max_connection_window = 6000;
    cfg.message_window = 1500;
    cfg.max_message_window = 3000;
    cfg.send_buffer = 700;
    cfg.max_incoming = 3;
    cfg
}

fn run_with(cfg: Config, msgs: &[Msg], split_seed: u64, split_max: usize, limit: usize) {
    let profile = cfg.profile;
    let mut p = Pair::new(cfg.clone(), cfg);
    p.split = Split::Random {
        seed: split_seed,
        max: split_max,
    };
    p.transmit_limit = limit;
    p.connect();
    let mut expect: BTreeMap<(bool, MessageId), (u64, usize)> = BTreeMap::new();
    let mut pending = Vec::new();
    for (k, m) in msgs.iter().enumerate() {
        let seed = split_seed.wrapping_mul(1000) + k as u64;
        let mut head =
            MessageHead::to_route(format!("m/{seed}")).with_urgency(Urgency::new(m.urgency));
        if m.announce {
            head = head.with_len(m.len as u64);
        }
        let conn = if m.from_b { &mut p.b } else { &mut p.a };
        let id = match m.stream {
            None => conn.send(head, Bytes::from(body_for(seed, m.len))).unwrap(),
            Some(chunk) => {
                let id = conn.start(head).unwrap();
                pending.push(Pending {
                    id,
                    body: Bytes::from(body_for(seed, m.len)),
                    written: 0,
                    len: m.len,
                    chunk,
                    from_b: m.from_b,
                    blocked: false,
                });
                id
            }
        };
        expect.insert((m.from_b, id), (seed, m.len));
    }
    let mut at_b = Inbox::default(); // messages from a
    let mut at_a = Inbox::default(); // messages from b
    for _ in 0..2_000_000 {
        // Feed streamed bodies as the send buffers allow, event-driven (a blocked writer
        // waits for Writable, collected after each step).
        pending.retain_mut(|s| {
            if s.blocked {
                return true;
            }
            let conn = if s.from_b { &mut p.b } else { &mut p.a };
            while s.written < s.len {
                let end = (s.written + s.chunk).min(s.len);
                let piece = s.body.slice(s.written..end);
                match conn.write(s.id, piece) {
                    Ok(0) | Err(WriteError::Blocked) => {
                        s.blocked = true;
                        return true;
                    }
                    Ok(n) => s.written += n,
                    Err(e) => panic!("write: {e}"),
                }
            }
            conn.finish(s.id).unwrap();
            false
        });
        let moved = p.step();
        for s in pending.iter_mut() {
            let events = if s.from_b { &p.b_events } else { &p.a_events };
            if events
                .iter()
                .any(|e| matches!(e, Event::Writable { id } if *id == s.id))
            {
                s.blocked = false;
            }
        }
        at_b.absorb(&mut p.b, &mut p.b_events, true);
        at_a.absorb(&mut p.a, &mut p.a_events, true);
        if !moved && pending.is_empty() && at_a.heads.is_empty() && at_b.heads.is_empty() {
            break;
        }
    }
    let mut got = 0;
    for (from_b, inbox) in [(false, &at_b), (true, &at_a)] {
        assert!(inbox.failed.is_empty(), "{profile:?}: {:?}", inbox.failed);
        for (id, head, body) in &inbox.done {
            let (seed, len) = expect[&(from_b, *id)];
            assert_eq!(head.route.as_deref(), Some(&*format!("m/{seed}")));
            assert_eq!(body.len(), len, "{profile:?} {id}: length");
            assert!(
                *body == body_for(seed, len),
                "{profile:?} {id}: content differs"
            );
            got += 1;
        }
    }
    assert_eq!(got, msgs.len(), "{profile:?}: not every message arrived");
    assert!(p.a.is_open() && p.b.is_open());
    assert_eq!(
        p.a.stats().buffered_incoming + p.b.stats().buffered_incoming,
        0
    );
}

fn limit() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), 1usize..2_000, 2_000usize..70_000]
}

fn small_msg() -> impl Strategy<Value = Msg> {
    msg().prop_map(|mut m| {
        m.len %= 60_000;
        m
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn tiny_windows_round_trip(
        msgs in prop::collection::vec(small_msg(), 1..8),
        serial in any::<bool>(),
        split_seed in any::<u64>(),
        split_max in prop_oneof![1usize..8, 8usize..2_000],
        limit in limit(),
    ) {
        let profile = if serial { LinkProfile::Serial } else { LinkProfile::Tcp };
        run_with(tiny(profile), &msgs, split_seed, split_max, limit);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn tcp_round_trip(
        msgs in prop::collection::vec(msg(), 1..8),
        split_seed in any::<u64>(),
        split_max in prop_oneof![1usize..8, 8usize..2_000, 2_000usize..100_000],
        limit in limit(),
    ) {
        run(LinkProfile::Tcp, &msgs, split_seed, split_max, limit);
    }

    #[test]
    fn serial_round_trip(
        msgs in prop::collection::vec(msg(), 1..6),
        split_seed in any::<u64>(),
        split_max in prop_oneof![1usize..8, 8usize..600, 600usize..20_000],
        limit in limit(),
    ) {
        run(LinkProfile::Serial, &msgs, split_seed, split_max, limit);
    }
}
