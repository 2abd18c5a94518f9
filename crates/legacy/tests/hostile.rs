//! Hostile and broken input: typed errors, bounded memory, never a panic.

mod common;

use common::*;
use netcore_legacy::{
    Config, DecodeError, Event, JsonPart, LegacyConnection, LengthField, Limits, MessageError,
    PacketDecoder,
};
use proptest::prelude::*;

fn mission(ext: &str, len: u64, info: &str) -> Vec<u8> {
    let meta = format!(r#"{{"extension": "{ext}", "length": {len}, "info": {info}}}"#);
    raw(br#"{"type": "mission"}"#, meta.as_bytes())
}

fn data(ext: &str, payload: &[u8]) -> Vec<u8> {
    raw(
        format!(r#"{{"type": "data", "extension": "{ext}"}}"#).as_bytes(),
        payload,
    )
}

fn cancel(ext: &str) -> Vec<u8> {
    raw(
        format!(r#"{{"type": "cancel", "extension": "{ext}"}}"#).as_bytes(),
        format!(r#"{{"extension": "{ext}"}}"#).as_bytes(),
    )
}

fn events(conn: &mut LegacyConnection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

#[test]
fn two_gib_extension_length_is_refused_before_buffering() {
    let mut conn = LegacyConnection::new(Config::default());
    let mut input = le(i32::MAX).to_vec();
    input.extend_from_slice(&[b'{'; 1000]);
    let err = conn.handle_input(&input).unwrap_err();
    assert_eq!(
        err,
        DecodeError::LengthTooLarge {
            field: LengthField::Extension,
            len: i32::MAX as u32,
            limit: Limits::default().max_header_len
        }
    );
    assert_eq!(conn.buffered_input(), 0);
    assert!(err.to_string().contains("close the connection"));
    assert_eq!(events(&mut conn), [Event::ConnectionFailed(err.clone())]);
    // Sticky: later input gets the same error, nothing is sent any more.
    assert_eq!(conn.handle_input(&data("x", b"1")), Err(err));
    assert_eq!(conn.poll_transmit(&mut Vec::new()), 0);
}

#[test]
fn two_gib_data_length_is_refused_and_fails_messages_in_flight() {
    let mut conn = LegacyConnection::new(Config::default());
    let mut input = mission("AAAAAA", 10, r#"{"route": "r", "message_id": "m"}"#);
    input.extend_from_slice(br#"'"#);
    let ext = br#"{"type": "data", "extension": "AAAAAA"}"#;
    let mut bad = le(ext.len() as i32).to_vec();
    bad.extend_from_slice(ext);
    bad.extend_from_slice(&le(0x7fff_fff0));
    conn.handle_input(&input[..input.len() - 1]).unwrap();
    let err = conn.handle_input(&bad).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::LengthTooLarge {
            field: LengthField::Meta,
            ..
        }
    ));
    let ev = events(&mut conn);
    assert!(matches!(ev[0], Event::MessageStarted { .. }));
    assert!(matches!(
        ev[1],
        Event::MessageFailed {
            error: MessageError::Connection(_),
            ..
        }
    ));
    assert!(matches!(ev[2], Event::ConnectionFailed(_)));
    assert!(conn.buffered_input() < 64);
}

#[test]
fn negative_lengths_are_typed_errors() {
    let mut d = PacketDecoder::new(Limits::default());
    let bytes = le(-5);
    let mut input = &bytes[..];
    assert_eq!(
        d.decode(&mut input),
        Err(DecodeError::NegativeLength {
            field: LengthField::Extension,
            len: -5
        })
    );
    let mut d = PacketDecoder::new(Limits::default());
    let mut bytes = le(2).to_vec();
    bytes.extend_from_slice(b"{}");
    bytes.extend_from_slice(&le(i32::MIN));
    let mut input = &bytes[..];
    assert!(matches!(
        d.decode(&mut input),
        Err(DecodeError::NegativeLength {
            field: LengthField::Meta,
            len: i32::MIN
        })
    ));
}

#[test]
fn invalid_json_and_unknown_types_skip_one_packet_only() {
    let mut conn = LegacyConnection::new(Config::default());
    let mut input = raw(b"{not json", b"whatever");
    input.extend(raw(br#"{"type": "ping"}"#, b"x"));
    input.extend(raw(br#"{"kind": "data"}"#, b""));
    input.extend(raw(br#"{"type": "mission"}"#, b"{\"extension\": "));
    input.extend(raw(
        br#"{"type": "mission"}"#,
        br#"{"extension": "E", "length": -1}"#,
    ));
    input.extend(raw(
        br#"{"type": "mission"}"#,
        br#"{"extension": "E", "length": 1, "info": {"route": 5}}"#,
    ));
    input.extend(raw(b"\xff\xfe", b""));
    input.extend(mission("E", 2, r#"{"route": "ok", "message_id": "M"}"#));
    input.extend(data("E", b"hi"));
    conn.handle_input(&input).unwrap();
    let ev = events(&mut conn);
    let errors: Vec<&DecodeError> = ev
        .iter()
        .filter_map(|e| match e {
            Event::ProtocolError(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 7, "{ev:?}");
    assert!(matches!(
        errors[0],
        DecodeError::InvalidJson {
            part: JsonPart::Extension,
            ..
        }
    ));
    assert_eq!(
        errors[1],
        &DecodeError::UnknownPacketType {
            type_name: "ping".into()
        }
    );
    assert!(matches!(
        errors[2],
        DecodeError::InvalidField { field: "type", .. }
    ));
    assert!(matches!(
        errors[3],
        DecodeError::InvalidJson {
            part: JsonPart::MissionHead,
            ..
        }
    ));
    assert!(matches!(
        errors[4],
        DecodeError::InvalidField {
            field: "length",
            ..
        }
    ));
    assert!(matches!(
        errors[5],
        DecodeError::InvalidField { field: "route", .. }
    ));
    assert!(matches!(errors[6], DecodeError::InvalidJson { .. }));
    assert!(errors.iter().all(|e| !e.is_fatal()));
    // The stream goes on: the valid message after the garbage is delivered.
    let tail = &ev[7..];
    assert!(
        matches!(&tail[0], Event::MessageStarted { head, .. } if head.route.as_deref() == Some("ok"))
    );
    assert!(matches!(&tail[1], Event::Data { data, .. } if data == b"hi"));
    assert!(matches!(&tail[2], Event::MessageFinished { .. }));
    assert_eq!(conn.stats().protocol_errors, 7);
}

#[test]
fn oversized_and_excess_messages_are_rejected_and_their_data_ignored() {
    let limits = Limits {
        max_message_len: 100,
        max_incoming_messages: 1,
        ..Limits::default()
    };
    let mut conn = LegacyConnection::new(Config {
        limits,
        ..Config::default()
    });
    let mut input = mission("BIG", 1 << 40, r#"{"route": "r", "message_id": "m1"}"#);
    input.extend(data("BIG", &[0; 50]));
    input.extend(mission("A", 10, r#"{"route": "r", "message_id": "m2"}"#));
    input.extend(mission("B", 10, r#"{"route": "r", "message_id": "m3"}"#));
    input.extend(data("B", &[0; 10]));
    conn.handle_input(&input).unwrap();
    let ev = events(&mut conn);
    assert!(matches!(
        &ev[0],
        Event::MessageRejected { head, error: MessageError::TooLarge { declared, limit: 100 } }
            if *declared == 1 << 40 && head.message_id.as_deref() == Some("m1")
    ));
    assert!(matches!(ev[1], Event::MessageStarted { .. }));
    assert!(matches!(
        ev[2],
        Event::MessageRejected {
            error: MessageError::TooManyIncoming { limit: 1 },
            ..
        }
    ));
    assert_eq!(ev.len(), 3);
    assert_eq!(conn.stats().ignored_data_packets, 2);
    assert_eq!(conn.incoming_in_flight(), 1);
}

#[test]
fn overflow_duplicate_cancel_and_empty_messages() {
    let mut conn = LegacyConnection::new(Config::default());
    let mut input = mission("O", 3, r#"{"message_id": "a"}"#);
    input.extend(data("O", b"1234"));
    input.extend(mission("D", 3, "{}"));
    input.extend(mission("D", 3, "{}"));
    input.extend(mission("C", 3, "{}"));
    input.extend(data("C", b"1"));
    input.extend(cancel("C"));
    input.extend(cancel("C"));
    input.extend(mission("Z", 0, r#"{"route": "z"}"#));
    conn.handle_input(&input).unwrap();
    let ev = events(&mut conn);
    let kinds: Vec<String> = ev
        .iter()
        .map(|e| {
            format!("{e:?}")
                .split([' ', '('])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "MessageStarted",
            "MessageFailed",
            "MessageStarted",
            "MessageFailed",
            "MessageRejected",
            "MessageStarted",
            "Data",
            "CancelledByPeer",
            "MessageStarted",
            "MessageFinished",
        ]
    );
    assert!(matches!(
        ev[1],
        Event::MessageFailed {
            error: MessageError::Overflow {
                declared: 3,
                received: 4
            },
            ..
        }
    ));
    assert!(matches!(
        ev[3],
        Event::MessageFailed {
            error: MessageError::DuplicateMission { .. },
            ..
        }
    ));
    assert_eq!(conn.stats().ignored_cancels, 1);
    assert_eq!(conn.incoming_in_flight(), 0);
}

#[test]
fn data_before_its_head_is_replayed_within_bounds() {
    // Python's send thread can emit a chunk before the mission head.
    // Each kept packet counts payload + mission id + 64 bytes of bookkeeping.
    let limits = Limits {
        max_early_data: 80,
        ..Limits::default()
    };
    let mut conn = LegacyConnection::new(Config {
        limits,
        ..Config::default()
    });
    let mut input = data("E", b"abc");
    input.extend(data("NEVER", b"0123456789"));
    conn.handle_input(&input).unwrap();
    assert_eq!(
        conn.buffered_input(),
        10 + 5 + 64,
        "oldest early data evicted"
    );
    assert_eq!(conn.stats().ignored_data_packets, 1);
    let mut input = data("E2", b"xy");
    input.extend(mission("E2", 4, r#"{"route": "r"}"#));
    input.extend(data("E2", b"zw"));
    conn.handle_input(&input).unwrap();
    let ev = events(&mut conn);
    let Event::MessageStarted { id, .. } = ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        ev[1..],
        [
            Event::Data {
                id,
                data: b"xy".to_vec()
            },
            Event::Data {
                id,
                data: b"zw".to_vec()
            },
            Event::MessageFinished { id },
        ]
    );
    assert_eq!(conn.stats().early_data_packets, 1);
    // "NEVER" was evicted to make room for "xy"; late data for an ended
    // mission is dropped at once, not kept.
    assert_eq!(conn.stats().ignored_data_packets, 2);
    conn.handle_input(&data("E2", b"late")).unwrap();
    assert_eq!(conn.buffered_input(), 0);
    assert_eq!(conn.stats().ignored_data_packets, 3);
    assert!(events(&mut conn).is_empty());
}

#[test]
fn big_endian_peers_are_supported() {
    use netcore_legacy::{ByteOrder, Packet};
    let p = Packet::Data {
        extension: "e".into(),
        payload: vec![1, 2, 3],
    };
    let mut wire = Vec::new();
    p.encode(ByteOrder::Big, &mut wire);
    assert_eq!(&wire[..4], &[0, 0, 0, 34]);
    let mut d = PacketDecoder::with_byte_order(Limits::default(), ByteOrder::Big);
    let mut input = &wire[..];
    assert_eq!(d.decode(&mut input), Ok(Some(p)));
    // The same bytes read as little endian claim a 544 MiB extension.
    let mut d = PacketDecoder::new(Limits::default());
    let mut input = &wire[..];
    assert!(matches!(
        d.decode(&mut input),
        Err(DecodeError::LengthTooLarge { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn garbage_never_panics_and_stays_bounded(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20)
    ) {
        let limits = Limits {
            max_header_len: 256,
            max_packet_len: 1024,
            max_early_data: 512,
            ..Limits::default()
        };
        let mut conn = LegacyConnection::new(Config { limits, ..Config::default() });
        let mut failed = None;
        for c in &chunks {
            match conn.handle_input(c) {
                Ok(()) => prop_assert!(failed.is_none()),
                Err(e) => {
                    prop_assert!(e.is_fatal());
                    if let Some(f) = &failed { prop_assert_eq!(f, &e); }
                    failed = Some(e);
                }
            }
            prop_assert!(conn.buffered_input() <= 1024 + 4 + 512);
            while conn.poll_event().is_some() {}
        }
    }

    #[test]
    fn garbage_after_valid_packets_keeps_earlier_events(
        garbage in prop::collection::vec(any::<u8>(), 0..200)
    ) {
        let mut conn = LegacyConnection::new(Config::default());
        let mut input = vector("echo.c2s");
        input.extend_from_slice(&garbage);
        let _ = conn.handle_input(&input);
        let ev = events(&mut conn);
        let started = matches!(ev[0], Event::MessageStarted { .. });
        let data_ok = matches!(&ev[1], Event::Data { data, .. } if data == b"hello");
        let finished = matches!(ev[2], Event::MessageFinished { .. });
        prop_assert!(started && data_ok && finished, "{:?}", ev);
    }
}

/// Applies (position, byte, kind) edits: 0 replaces, 1 inserts, 2 deletes.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, byte, kind) in edits {
        let at = pos % (bytes.len() + 1);
        match kind % 3 {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Corrupted real captures: no panic, bounded memory, and never more data
    /// delivered for a message than its head announced.
    #[test]
    fn mutated_captures_stay_safe(
        idx in 0usize..13,
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let name = common::VECTORS[idx % common::VECTORS.len()];
        let bytes = mutate(vector(name), &edits);
        let limits = Limits::default();
        let bound = limits.max_header_len.max(limits.max_packet_len) + 4 + limits.max_early_data;
        let mut conn = LegacyConnection::new(Config::default());
        let mut announced = std::collections::HashMap::new();
        for piece in pieces(&bytes, &cuts) {
            let _ = conn.handle_input(piece);
            prop_assert!(conn.buffered_input() <= bound);
            while let Some(e) = conn.poll_event() {
                match e {
                    Event::MessageStarted { id, head } => {
                        announced.insert(id, (head.length, 0u64));
                    }
                    Event::Data { id, data } => {
                        let entry = announced.get_mut(&id).expect("data after start");
                        entry.1 += data.len() as u64;
                        prop_assert!(entry.1 <= entry.0);
                    }
                    Event::MessageFinished { id } => {
                        let (len, got) = announced[&id];
                        prop_assert_eq!(len, got);
                    }
                    _ => {}
                }
            }
        }
    }
}
