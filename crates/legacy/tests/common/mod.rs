//! Helpers shared by the integration tests.
#![allow(dead_code)]

use netcore_legacy::{DecodeError, Event, LegacyConnection, Limits, Packet, PacketDecoder};
use std::path::PathBuf;

/// Every captured stream: `<scenario>.<c2s|s2c>.bin` in tests/vectors.
pub const VECTORS: &[&str] = &[
    "echo.c2s",
    "echo.s2c",
    "json.c2s",
    "json.s2c",
    "big10000.c2s",
    "big10000.s2c",
    "unknown_route.c2s",
    "unknown_route.s2c",
    "cancel.c2s",
    "cancel.s2c",
    "interleave.c2s",
    "interleave.s2c",
    "empty.c2s",
];

pub fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(format!("{name}.bin"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Decodes a whole stream fed in one piece; fails on any error or leftover.
pub fn decode_all(bytes: &[u8]) -> Vec<Packet> {
    let mut decoder = PacketDecoder::new(Limits::default());
    let mut input = bytes;
    let mut packets = Vec::new();
    while !input.is_empty() {
        match decoder.decode(&mut input) {
            Ok(Some(p)) => packets.push(p),
            Ok(None) => break,
            Err(e) => panic!("decode error: {e}"),
        }
    }
    assert!(decoder.is_idle(), "stream ends mid-packet");
    packets
}

/// Decodes a stream fed in pieces cut at `cuts`, collecting packets and errors.
pub fn decode_split(bytes: &[u8], cuts: &[usize]) -> Vec<Result<Packet, DecodeError>> {
    let mut decoder = PacketDecoder::new(Limits::default());
    let mut out = Vec::new();
    for piece in pieces(bytes, cuts) {
        let mut input = piece;
        while !input.is_empty() {
            match decoder.decode(&mut input) {
                Ok(Some(p)) => out.push(Ok(p)),
                Ok(None) => break,
                Err(e) => {
                    let fatal = e.is_fatal();
                    out.push(Err(e));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }
    out
}

/// `bytes` cut at the given positions (taken modulo the length, in any order).
pub fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// Feeds pieces to a connection and returns all events.
pub fn events_of(conn: &mut LegacyConnection, pieces: &[&[u8]]) -> Vec<Event> {
    for piece in pieces {
        if conn.handle_input(piece).is_err() {
            break;
        }
    }
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Drains everything a connection wants to send.
pub fn drain(conn: &mut LegacyConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while conn.poll_transmit(&mut out) > 0 {}
    out
}

/// Little-endian i32.
pub fn le(n: i32) -> [u8; 4] {
    n.to_le_bytes()
}

/// A raw packet: `i32 ext_len | ext | i32 meta_len | meta`.
pub fn raw(ext: &[u8], meta: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&le(ext.len() as i32));
    v.extend_from_slice(ext);
    v.extend_from_slice(&le(meta.len() as i32));
    v.extend_from_slice(meta);
    v
}
