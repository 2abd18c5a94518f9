//! Shared fuzz harness: drives a real `netcore_core::Connection` with arbitrary bytes.
//!
//! Two modes, chosen by the first input byte:
//!
//! - **raw**: the rest of the input is fed to a connection as received bytes, in chunks
//!   whose size comes from the input, optionally after a valid peer HELLO so the fuzzer
//!   reaches the open state at once. Between chunks the victim transmits, reads, and its
//!   timers run.
//! - **script**: the input is a program for a real peer connection (start, write,
//!   finish, cancel, stop, advance time, flip/drop/insert a byte on the wire). The two
//!   connections talk through the mangled wire. On the serial profile every body that
//!   is delivered complete must equal what was sent (CRC + sequence numbers must catch
//!   every damaged byte).
//!
//! Invariants checked in both modes: no panic, buffered incoming body bytes never
//! exceed the configured maximum connection window, and held input stays bounded.

use bytes::Bytes;
use core::time::Duration;
use netcore_core::{
    Config, Connection, ConnectionError, ErrorCode, Event, HandshakeError, Instant, LinkProfile,
    MessageHead, MessageId, Urgency,
};
use std::collections::{BTreeMap, BTreeSet};

/// The profile under test.
pub fn config(profile: LinkProfile) -> Config {
    let mut c = Config::for_profile(profile);
    // Small limits so the fuzzer reaches them.
    c.max_metadata = 256;
    c.max_incoming = 8;
    c.max_routes = 8;
    c.max_message = Some(200_000);
    if profile == LinkProfile::Tcp {
        c.max_frame = 4096;
        c.send_frame = 1024;
        c.message_window = 8 * 1024;
        c.connection_window = 16 * 1024;
        c.max_message_window = 32 * 1024;
        c.max_connection_window = 64 * 1024;
    }
    c
}

/// Body byte `i` of the message whose route is `m/<seed>`.
pub fn pattern(seed: u64, i: usize) -> u8 {
    (seed.wrapping_mul(31) as usize)
        .wrapping_add(i.wrapping_mul(7))
        .wrapping_add(i >> 8) as u8
}

fn check_bounds(c: &Connection, chunk: usize) {
    let s = c.stats();
    let cfg = c.config();
    assert!(
        s.buffered_incoming <= cfg.max_connection_window,
        "buffered_incoming {} above max_connection_window {}",
        s.buffered_incoming,
        cfg.max_connection_window
    );
    if c.is_closed() {
        // A closed connection ignores input; what was left of the chunk that closed it
        // stays until the connection is dropped (bounded by that chunk).
        return;
    }
    // One partial frame (plus its link framing) and the last chunk at most.
    let frame_bound = cfg.max_frame * 2 + 64 + chunk;
    assert!(
        s.buffered_input as usize <= frame_bound,
        "buffered_input {} above {}",
        s.buffered_input,
        frame_bound
    );
}

/// Reads every incoming message that has data; returns completed bodies.
fn drain_events(
    c: &mut Connection,
    read: bool,
    heads: &mut BTreeMap<MessageId, MessageHead>,
    bodies: &mut BTreeMap<MessageId, Vec<u8>>,
    done: &mut Vec<(MessageHead, Vec<u8>)>,
) {
    while let Some(ev) = c.poll_event() {
        match ev {
            Event::Incoming { id, head } => {
                heads.insert(id, head);
                bodies.insert(id, Vec::new());
            }
            Event::Reset { id, .. } => {
                heads.remove(&id);
                bodies.remove(&id);
            }
            _ => {}
        }
    }
    if !read {
        return;
    }
    let ids: Vec<MessageId> = heads.keys().copied().collect();
    for id in ids {
        loop {
            match c.read(id, 0) {
                Ok(Some(chunk)) => {
                    if let Some(b) = bodies.get_mut(&id) {
                        // Bounded: messages are capped by max_message.
                        b.extend_from_slice(&chunk);
                    }
                }
                Ok(None) => {
                    let head = heads.remove(&id).unwrap_or_default();
                    let body = bodies.remove(&id).unwrap_or_default();
                    done.push((head, body));
                    break;
                }
                Err(_) => break,
            }
        }
    }
}

/// Raw mode.
pub fn run_raw(profile: LinkProfile, data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let flags = data[0];
    let chunk = usize::from(data[1]) + 1;
    let data = &data[2..];
    let mut now = Instant::from_micros(1_000_000);
    let mut victim = Connection::new(config(profile), now);
    if flags & 1 != 0 {
        // A valid peer HELLO first.
        let mut peer = Connection::new(config(profile), now);
        let mut hello = Vec::new();
        peer.poll_transmit(now, &mut hello, 1 << 16);
        victim.handle_input(now, &hello);
    }
    if flags & 2 != 0 {
        // Something of our own in flight so credit/cancel/NACK frames have targets.
        let _ = victim.send(
            MessageHead::to_route("out"),
            Bytes::from(vec![0x5a; 3000]),
        );
    }
    let read = flags & 4 != 0;
    let mut heads = BTreeMap::new();
    let mut bodies = BTreeMap::new();
    let mut done = Vec::new();
    let mut out = Vec::new();
    // Flag 0x10: the zero-copy paths a driver uses (read in place, vectored transmit).
    let in_place = flags & 0x10 != 0;
    let mut vectored = netcore_core::Transmit::new();
    for piece in data.chunks(chunk) {
        let buf = if in_place {
            victim.input_buffer(piece.len())
        } else {
            None
        };
        match buf {
            Some(buf) => {
                buf.extend_from_slice(piece);
                victim.handle_received(now);
            }
            None => victim.handle_input(now, piece),
        }
        check_bounds(&victim, piece.len());
        drain_events(&mut victim, read, &mut heads, &mut bodies, &mut done);
        out.clear();
        if in_place {
            vectored.clear();
            let n = victim.poll_transmit_vectored(now, &mut vectored, 8192);
            assert_eq!(n, vectored.len(), "vectored transmit miscounted its bytes");
        } else {
            victim.poll_transmit(now, &mut out, 8192);
        }
        now = now + Duration::from_millis(u64::from(piece[0] & 0x3f));
        if victim.poll_timeout().is_some_and(|t| t <= now) {
            victim.handle_timeout(now);
        }
        if flags & 8 != 0 && piece[0] == 0xee {
            victim.close(ErrorCode::NO_ERROR, "fuzz");
        }
    }
    drain_events(&mut victim, read, &mut heads, &mut bodies, &mut done);
    check_bounds(&victim, 0);
}

struct Side {
    conn: Connection,
    heads: BTreeMap<MessageId, MessageHead>,
    bodies: BTreeMap<MessageId, Vec<u8>>,
    /// End events per incoming id (completion, Reset, Rejected): at most one each.
    ended: BTreeMap<MessageId, u32>,
    /// Incoming ids read to the end (a late Reset is allowed once for them).
    completed: BTreeSet<MessageId>,
    /// Outgoing ids reported Stopped: at most once each.
    stopped: BTreeSet<MessageId>,
    closed: Option<Option<ConnectionError>>,
}

impl Side {
    fn new(profile: LinkProfile, now: Instant) -> Side {
        Side {
            conn: Connection::new(config(profile), now),
            heads: BTreeMap::new(),
            bodies: BTreeMap::new(),
            ended: BTreeMap::new(),
            completed: BTreeSet::new(),
            stopped: BTreeSet::new(),
            closed: None,
        }
    }

    fn end(&mut self, id: MessageId) {
        let n = self.ended.entry(id).or_default();
        *n += 1;
        assert!(*n <= 1, "incoming message {id} ended twice");
    }

    /// Takes events, reads everything, checks completed bodies.
    fn absorb(&mut self, verify_bodies: bool) {
        while let Some(ev) = self.conn.poll_event() {
            assert!(self.closed.is_none(), "event after Closed: {ev:?}");
            match ev {
                Event::Incoming { id, head } => {
                    assert!(!self.heads.contains_key(&id), "{id} started twice");
                    self.heads.insert(id, head);
                    self.bodies.insert(id, Vec::new());
                }
                Event::Reset { id, .. } => {
                    // A late Reset of a completed message is allowed (the sender gave up
                    // on it after it arrived); of a failed one it is not.
                    if self.heads.remove(&id).is_some() {
                        self.bodies.remove(&id);
                        self.end(id);
                    } else {
                        assert!(
                            self.completed.remove(&id),
                            "Reset of {id}, which already failed or was never seen"
                        );
                    }
                }
                Event::Rejected { id, .. } => {
                    assert!(!self.heads.contains_key(&id), "{id} rejected after Incoming");
                    self.end(id);
                }
                Event::Stopped { id, .. } => {
                    assert!(self.stopped.insert(id), "outgoing {id} stopped twice");
                }
                Event::Closed { error } => {
                    assert!(self.closed.is_none(), "closed twice");
                    self.closed = Some(error);
                }
                _ => {}
            }
        }
        let ids: Vec<MessageId> = self.heads.keys().copied().collect();
        for id in ids {
            loop {
                match self.conn.read(id, 0) {
                    Ok(Some(chunk)) => {
                        if let Some(b) = self.bodies.get_mut(&id) {
                            b.extend_from_slice(&chunk);
                        }
                    }
                    Ok(None) => {
                        let head = self.heads.remove(&id).unwrap_or_default();
                        let body = self.bodies.remove(&id).unwrap_or_default();
                        self.end(id);
                        self.completed.insert(id);
                        if verify_bodies {
                            verify(&head, &body);
                        }
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }

    /// The connection may only end gracefully or by timeout unless the test tampered
    /// with a reliable link.
    fn check_closed(&self, profile: LinkProfile) {
        let Some(Some(err)) = &self.closed else {
            return;
        };
        let ok = matches!(
            err,
            ConnectionError::TimedOut
                | ConnectionError::DrainTimedOut
                | ConnectionError::Handshake(HandshakeError::Timeout)
        ) || matches!(err, ConnectionError::PeerError { code, .. } if *code == ErrorCode::TIMEOUT);
        assert!(ok, "{profile:?} connection failed on clean input: {err}");
    }
}

/// Checks a completed body against its route's pattern.
fn verify(head: &MessageHead, body: &[u8]) {
    let Some(route) = head.route.as_deref() else {
        return;
    };
    let mut parts = route.split('/');
    let (Some("m"), Some(seed), Some(len)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let (Ok(seed), Ok(len)) = (seed.parse::<u64>(), len.parse::<usize>()) else {
        return;
    };
    assert_eq!(body.len(), len, "delivered a body of the wrong length");
    for (i, &b) in body.iter().enumerate() {
        assert_eq!(b, pattern(seed, i), "delivered a corrupted byte");
    }
}

/// Script mode.
pub fn run_script(profile: LinkProfile, data: &[u8]) {
    let mut now = Instant::from_micros(1_000_000);
    let mut a = Side::new(profile, now);
    let mut b = Side::new(profile, now);
    let mut outgoing: Vec<(MessageId, u64, usize, usize)> = Vec::new(); // id, seed, len, written
    let mut seed = 0u64;
    let mut mangle: Vec<(u8, u8, u8)> = Vec::new(); // (op, pos, val) for the next a→b batch
    let mut wire = Vec::new();
    // Raw bytes injected into b (either profile) or line damage on tcp void the
    // integrity and liveness oracles; serial must survive line damage.
    let mut tainted = false;
    let mut ops = data.chunks_exact(3);
    for op in &mut ops {
        let (code, x, y) = (op[0], op[1], op[2]);
        match code % 12 {
            0 => {
                seed += 1;
                let len = usize::from(x) * 37 + usize::from(y);
                let head = MessageHead::to_route(format!("m/{seed}/{len}"))
                    .with_urgency(Urgency::new(y & 7));
                let head = if x & 1 == 1 {
                    head.with_len(len as u64)
                } else {
                    head
                };
                if let Ok(id) = a.conn.start(head) {
                    outgoing.push((id, seed, len, 0));
                }
            }
            1 => {
                // Write the next piece of an outgoing message (and finish it when done).
                if !outgoing.is_empty() {
                    let k = usize::from(x) % outgoing.len();
                    let (id, s, len, written) = outgoing[k];
                    let n = (usize::from(y) * 16 + 1).min(len - written);
                    let piece: Vec<u8> = (written..written + n).map(|i| pattern(s, i)).collect();
                    if let Ok(took) = a.conn.write(id, Bytes::from(piece)) {
                        outgoing[k].3 += took;
                    }
                    if outgoing[k].3 == len && a.conn.finish(id).is_ok() {
                        outgoing.swap_remove(k);
                    }
                }
            }
            2 => {
                if !outgoing.is_empty() {
                    let k = usize::from(x) % outgoing.len();
                    a.conn.cancel(outgoing[k].0, ErrorCode::CANCELLED);
                    outgoing.swap_remove(k);
                }
            }
            3 => {
                if let Some(&id) = b.heads.keys().nth(usize::from(x) % b.heads.len().max(1)) {
                    b.conn.stop(id, ErrorCode::CANCELLED);
                    b.heads.remove(&id);
                    b.bodies.remove(&id);
                    b.end(id);
                }
            }
            4 => now = now + Duration::from_millis(u64::from(x) * 4 + u64::from(y)),
            5..=7 => {
                if profile == LinkProfile::Tcp {
                    tainted = true;
                }
                mangle.push((code % 12, x, y));
            }
            8 => {
                seed += 1;
                let len = usize::from(x) * 4;
                let body: Vec<u8> = (0..len).map(|i| pattern(seed, i)).collect();
                let _ = b.conn.send(
                    MessageHead::to_route(format!("m/{seed}/{len}")),
                    Bytes::from(body),
                );
            }
            9 => a.conn.close(ErrorCode::NO_ERROR, "bye"),
            10 => {
                // A batch of transfers both ways.
                for _ in 0..(x % 8 + 1) {
                    exchange(&mut a, &mut b, now, &mut mangle, &mut wire, y, tainted);
                }
            }
            _ => {
                // Raw bytes straight into b.
                tainted = true;
                b.conn.handle_input(now, &[x, y]);
            }
        }
        for s in [&mut a, &mut b] {
            if s.conn.poll_timeout().is_some_and(|t| t <= now) {
                s.conn.handle_timeout(now);
            }
        }
        exchange(&mut a, &mut b, now, &mut mangle, &mut wire, 0xff, tainted);
    }
    for _ in 0..64 {
        exchange(&mut a, &mut b, now, &mut mangle, &mut wire, 0xff, tainted);
    }
    if !tainted {
        a.check_closed(profile);
        b.check_closed(profile);
    }
}

fn exchange(
    a: &mut Side,
    b: &mut Side,
    now: Instant,
    mangle: &mut Vec<(u8, u8, u8)>,
    wire: &mut Vec<u8>,
    limit: u8,
    tainted: bool,
) {
    let limit = usize::from(limit) * 64 + 64;
    wire.clear();
    a.conn.poll_transmit(now, wire, limit);
    for (op, pos, val) in mangle.drain(..) {
        if wire.is_empty() {
            break;
        }
        let i = usize::from(pos) % wire.len();
        match op {
            5 => wire[i] ^= val | 1,
            6 => {
                wire.remove(i);
            }
            _ => wire.insert(i, val),
        }
    }
    b.conn.handle_input(now, wire);
    check_bounds(&b.conn, wire.len());
    wire.clear();
    b.conn.poll_transmit(now, wire, limit);
    a.conn.handle_input(now, wire);
    check_bounds(&a.conn, wire.len());
    for s in [&mut *a, &mut *b] {
        s.absorb(!tainted);
    }
}

/// Entry point for the connection targets.
pub fn run(profile: LinkProfile, data: &[u8]) {
    match data.split_first() {
        Some((m, rest)) if m & 0x80 != 0 => run_script(profile, rest),
        Some((_, _)) => run_raw(profile, data),
        None => {}
    }
}
