//! Byte vectors captured from real Python Netcore 0.1.3 peers on 127.0.0.1
//! (tests/python/netcore_peer.py capture): decoded, re-encoded byte for byte,
//! and reproduced by `LegacyConnection` given the same ids.

mod common;

use common::*;
use netcore_legacy::{
    ByteOrder, Config, Event, Info, LegacyConnection, MissionHead, OutgoingHead, Packet,
};
use std::collections::HashMap;

#[test]
fn every_vector_reencodes_byte_for_byte() {
    for name in VECTORS {
        let bytes = vector(name);
        let packets = decode_all(&bytes);
        assert!(!packets.is_empty(), "{name}: no packets");
        let mut out = Vec::new();
        for p in &packets {
            p.encode(ByteOrder::Little, &mut out);
        }
        assert_eq!(out, bytes, "{name}: re-encoding differs");
    }
}

#[test]
fn echo_request_decodes_to_the_expected_fields() {
    let packets = decode_all(&vector("echo.c2s"));
    let Packet::Mission(MissionHead {
        extension,
        length,
        info,
    }) = &packets[0]
    else {
        panic!("first packet is not a mission head: {:?}", packets[0]);
    };
    assert_eq!(extension, "cAefAZ");
    assert_eq!(*length, 5);
    assert_eq!(info, &Info::request("echo", "ujOeHwdF"));
    assert_eq!(
        packets[1],
        Packet::Data {
            extension: "cAefAZ".into(),
            payload: b"hello".to_vec()
        }
    );
    assert_eq!(packets.len(), 2);
    // Head bytes as documented in docs/LEGACY.md.
    let bytes = vector("echo.c2s");
    assert_eq!(&bytes[..4], &[0x13, 0, 0, 0]);
    assert_eq!(&bytes[4..23], br#"{"type": "mission"}"#);
    assert_eq!(&bytes[23..27], &[0x59, 0, 0, 0]);
}

#[test]
fn response_heads_carry_is_response_and_the_request_id() {
    let req = decode_all(&vector("echo.c2s"));
    let resp = decode_all(&vector("echo.s2c"));
    let (Packet::Mission(rq), Packet::Mission(rs)) = (&req[0], &resp[0]) else {
        panic!("not mission heads");
    };
    assert!(rs.info.is_response());
    assert_eq!(rs.info.message_id(), rq.info.message_id());
    assert_eq!(rs.info.route(), Some("echo"));
    // Endpoint.send_response writes no route.
    let unknown = decode_all(&vector("unknown_route.s2c"));
    let Packet::Mission(h) = &unknown[0] else {
        panic!("not a mission head")
    };
    assert_eq!(h.info.route(), None);
    assert_eq!(h.info.to_json().find("is_response"), Some(2));
}

#[test]
fn big_message_is_cut_in_4096_byte_chunks() {
    let packets = decode_all(&vector("big10000.c2s"));
    let sizes: Vec<usize> = packets
        .iter()
        .filter_map(|p| match p {
            Packet::Data { payload, .. } => Some(payload.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [4096, 4096, 1808]);
}

#[test]
fn empty_message_is_a_head_without_data() {
    let packets = decode_all(&vector("empty.c2s"));
    assert_eq!(packets.len(), 1);
    let Packet::Mission(h) = &packets[0] else {
        panic!("not a mission head")
    };
    assert_eq!(h.length, 0);
}

/// Rebuilds a stream of heads-then-chunks with `LegacyConnection`, reusing
/// the captured mission ids and message ids.
fn reproduce(packets: &[Packet]) -> Vec<u8> {
    let mut conn = LegacyConnection::new(Config::default());
    let mut bodies: HashMap<&str, Vec<u8>> = HashMap::new();
    for p in packets {
        if let Packet::Data { extension, payload } = p {
            bodies
                .entry(extension)
                .or_default()
                .extend_from_slice(payload);
        }
    }
    let mut ids = Vec::new();
    for p in packets {
        let Packet::Mission(h) = p else { continue };
        let mid = h.info.message_id().expect("message_id");
        let mut head = if h.info.is_response() {
            OutgoingHead::response_to_python_id(mid, h.length)
        } else {
            OutgoingHead::request(h.info.route().unwrap_or(""), h.length).with_message_id(mid)
        };
        if let (true, Some(route)) = (h.info.is_response(), h.info.route()) {
            head = head.with_route(route);
        }
        let id = conn
            .start_message(head.with_extension(&h.extension))
            .unwrap();
        ids.push((id, h.extension.as_str()));
    }
    for (id, ext) in &ids {
        let body = &bodies[ext];
        assert_eq!(conn.write(*id, body).unwrap(), body.len());
        conn.finish(*id).unwrap();
    }
    let out = drain(&mut conn);
    let complete: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
    assert_eq!(complete.len(), ids.len(), "one SendComplete per message");
    out
}

#[test]
fn connection_reproduces_python_streams_exactly() {
    for name in [
        "echo.c2s",
        "echo.s2c",
        "json.c2s",
        "json.s2c",
        "big10000.c2s",
        "big10000.s2c",
        "unknown_route.c2s",
        "unknown_route.s2c",
        "interleave.c2s",
    ] {
        let bytes = vector(name);
        assert_eq!(reproduce(&decode_all(&bytes)), bytes, "{name}");
    }
}

#[test]
fn connection_reproduces_python_cancel_stream() {
    // Python: head A, head B, cancel B, then A's five chunks.
    let bytes = vector("cancel.c2s");
    let packets = decode_all(&bytes);
    let heads: Vec<&MissionHead> = packets
        .iter()
        .filter_map(|p| match p {
            Packet::Mission(h) => Some(h),
            _ => None,
        })
        .collect();
    assert_eq!(heads.len(), 2);
    let mut conn = LegacyConnection::new(Config::default());
    let start = |conn: &mut LegacyConnection, h: &MissionHead| {
        let head = OutgoingHead::request(h.info.route().unwrap(), h.length)
            .with_message_id(h.info.message_id().unwrap())
            .with_extension(&h.extension);
        conn.start_message(head).unwrap()
    };
    let a = start(&mut conn, heads[0]);
    let b = start(&mut conn, heads[1]);
    let mut out = Vec::new();
    conn.poll_transmit(&mut out);
    conn.poll_transmit(&mut out);
    conn.cancel(b).unwrap();
    let body = vec![0u8; heads[0].length as usize];
    let mut written = 0;
    while written < body.len() {
        written += conn.write(a, &body[written..]).unwrap();
        while conn.poll_transmit(&mut out) > 0 {}
    }
    conn.finish(a).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn connection_decodes_every_vector_into_consistent_events() {
    for name in VECTORS {
        let bytes = vector(name);
        let mut conn = LegacyConnection::new(Config::default());
        let events = events_of(&mut conn, &[&bytes]);
        let mut started = HashMap::new();
        for e in &events {
            match e {
                Event::MessageStarted { id, head } => {
                    started.insert(*id, (head.length, 0u64));
                }
                Event::Data { id, data } => started.get_mut(id).unwrap().1 += data.len() as u64,
                Event::MessageFinished { id } => {
                    let (len, got) = started[id];
                    assert_eq!(len, got, "{name}");
                }
                Event::CancelledByPeer { .. } => {}
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
        assert!(!started.is_empty(), "{name}");
        assert_eq!(conn.stats().protocol_errors, 0);
    }
}
