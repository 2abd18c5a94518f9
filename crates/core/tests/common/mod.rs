//! A deterministic pair of connected cores with a simulated clock (quinn-proto's test
//! `Pair`): bytes move only when the test says so, time moves only when it says so.
#![allow(dead_code)]

use bytes::Bytes;
use core::time::Duration;
use netcore_core::{Config, Connection, Event, Instant, MessageHead, MessageId};

/// How bytes are cut on their way across.
#[derive(Clone, Copy, Debug)]
pub enum Split {
    /// As produced.
    Whole,
    /// In pieces of at most n bytes.
    Every(usize),
    /// In pieces of pseudo-random sizes 1..=max, drawn from `seed` (and the batch).
    Random { seed: u64, max: usize },
}

/// Rewrites bytes in flight (drop, flip, insert).
pub type Filter = Box<dyn FnMut(&[u8]) -> Vec<u8>>;

pub struct Pair {
    pub a: Connection,
    pub b: Connection,
    pub now: Instant,
    pub a_events: Vec<Event>,
    pub b_events: Vec<Event>,
    /// Bytes produced by a (towards b) and by b (towards a), all of them.
    pub a_wire: Vec<u8>,
    pub b_wire: Vec<u8>,
    pub split: Split,
    /// Bytes per poll_transmit call.
    pub transmit_limit: usize,
    /// Optional byte mangler applied to a→b traffic.
    pub a_to_b_filter: Option<Filter>,
    pub b_to_a_filter: Option<Filter>,
}

impl Pair {
    pub fn new(a: Config, b: Config) -> Pair {
        let now = Instant::from_micros(1_000_000);
        Pair {
            a: Connection::new(a, now),
            b: Connection::new(b, now),
            now,
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_wire: Vec::new(),
            b_wire: Vec::new(),
            split: Split::Whole,
            transmit_limit: 64 * 1024,
            a_to_b_filter: None,
            b_to_a_filter: None,
        }
    }

    pub fn tcp() -> Pair {
        Pair::new(Config::tcp(), Config::tcp())
    }

    /// Moves at most one transmit batch each way; returns whether any byte moved.
    pub fn step(&mut self) -> bool {
        let mut moved = false;
        let mut buf = Vec::new();
        // Every step checks `has_transmit` against what `poll_transmit` then does:
        // drivers skip the call when it says nothing is there.
        let expected = self.a.has_transmit();
        self.a
            .poll_transmit(self.now, &mut buf, self.transmit_limit);
        assert!(
            expected || buf.is_empty(),
            "a: has_transmit() was false, yet {} bytes came",
            buf.len()
        );
        if !buf.is_empty() {
            moved = true;
            self.a_wire.extend_from_slice(&buf);
            let data = match self.a_to_b_filter.as_mut() {
                Some(f) => f(&buf),
                None => buf.clone(),
            };
            feed(&mut self.b, self.now, &data, self.split);
        }
        buf.clear();
        let expected = self.b.has_transmit();
        self.b
            .poll_transmit(self.now, &mut buf, self.transmit_limit);
        assert!(
            expected || buf.is_empty(),
            "b: has_transmit() was false, yet {} bytes came",
            buf.len()
        );
        if !buf.is_empty() {
            moved = true;
            self.b_wire.extend_from_slice(&buf);
            let data = match self.b_to_a_filter.as_mut() {
                Some(f) => f(&buf),
                None => buf.clone(),
            };
            feed(&mut self.a, self.now, &data, self.split);
        }
        self.collect();
        moved
    }

    pub fn collect(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
    }

    /// Steps until nothing moves (bounded).
    pub fn drive(&mut self) {
        for _ in 0..1_000_000 {
            if !self.step() {
                return;
            }
        }
        panic!("pair did not go quiet");
    }

    /// Advances the clock, running timers on both sides, then drives.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.collect();
        self.drive();
    }

    /// Moves what is pending, then jumps to each side's next timer until `until` has
    /// passed.
    pub fn run_timers_until(&mut self, until: Instant) {
        self.drive();
        for _ in 0..100_000 {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                    self.collect();
                    self.drive();
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
    }

    /// Connects both sides.
    pub fn connect(&mut self) {
        self.drive();
        assert!(
            self.a.is_open() && self.b.is_open(),
            "handshake did not complete"
        );
        self.a_events.clear();
        self.b_events.clear();
    }
}

pub fn feed(conn: &mut Connection, now: Instant, data: &[u8], split: Split) {
    match split {
        Split::Whole => conn.handle_input(now, data),
        Split::Every(n) => {
            for chunk in data.chunks(n.max(1)) {
                conn.handle_input(now, chunk);
            }
        }
        Split::Random { seed, max } => {
            let mut rng = Rng::new(seed ^ (data.len() as u64).wrapping_mul(0x100_0000_01b3));
            let mut rest = data;
            while !rest.is_empty() {
                let n = (1 + rng.below(max.max(1) as u64) as usize).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                conn.handle_input(now, chunk);
                rest = tail;
            }
        }
    }
}

/// Reads everything buffered on an incoming message; `Some(true)` once it ended.
pub fn read_available(conn: &mut Connection, id: MessageId, out: &mut Vec<u8>) -> bool {
    loop {
        match conn.read(id, 0) {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk),
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// Sends `body` from a to b on `route` and returns b's view (id, head, body), driving
/// the pair and reading as data arrives.
pub fn transfer(pair: &mut Pair, route: &str, body: Bytes) -> (MessageId, MessageHead, Vec<u8>) {
    pair.a.send(MessageHead::to_route(route), body).unwrap();
    let mut got: Option<(MessageId, MessageHead)> = None;
    let mut data = Vec::new();
    for _ in 0..1_000_000 {
        let moved = pair.step();
        for e in pair.b_events.drain(..) {
            if let Event::Incoming { id, head } = e {
                got = Some((id, head));
            }
        }
        if let Some((id, _)) = &got {
            if read_available(&mut pair.b, *id, &mut data) {
                let (id, head) = got.unwrap();
                pair.drive();
                return (id, head, data);
            }
        }
        if !moved && got.is_none() {
            break;
        }
    }
    panic!("transfer did not complete");
}

impl Pair {
    pub fn serial() -> Pair {
        Pair::new(Config::serial(), Config::serial())
    }

    /// Moves at most one transmit batch each way with `limit`, like `step`, and returns
    /// (bytes a sent, bytes b sent).
    pub fn step_limited(&mut self, limit: usize) -> (usize, usize) {
        let saved = self.transmit_limit;
        self.transmit_limit = limit;
        let (a0, b0) = (self.a_wire.len(), self.b_wire.len());
        self.step();
        self.transmit_limit = saved;
        (self.a_wire.len() - a0, self.b_wire.len() - b0)
    }

    /// First `Closed` error seen by a / b.
    pub fn a_closed(&self) -> Option<Option<netcore_core::ConnectionError>> {
        closed_of(&self.a_events)
    }

    pub fn b_closed(&self) -> Option<Option<netcore_core::ConnectionError>> {
        closed_of(&self.b_events)
    }
}

pub fn closed_of(events: &[Event]) -> Option<Option<netcore_core::ConnectionError>> {
    events.iter().find_map(|e| match e {
        Event::Closed { error } => Some(error.clone()),
        _ => None,
    })
}

/// Splits a tcp-profile byte stream into frames (panics on a malformed stream).
pub fn parse_tcp_wire(mut wire: &[u8]) -> Vec<netcore_core::frame::Frame> {
    use netcore_core::frame::{Frame, Header};
    let mut out = Vec::new();
    while !wire.is_empty() {
        let h = Header::parse(wire, usize::MAX)
            .expect("bad header")
            .expect("truncated header");
        let end = h.header_len + h.payload_len;
        let payload = Bytes::copy_from_slice(&wire[h.header_len..end]);
        out.push(Frame::load(h.kind, payload).expect("bad frame"));
        wire = &wire[end..];
    }
    out
}

/// Splits a serial-profile byte stream into (seq, frame), skipping damaged blocks.
pub fn parse_serial_wire(wire: &[u8]) -> Vec<(u16, netcore_core::frame::Frame)> {
    use netcore_core::frame::{Frame, Header};
    use netcore_core::link::{cobs, crc32c};
    let mut out = Vec::new();
    for block in wire.split(|&b| b == 0) {
        if block.is_empty() {
            continue;
        }
        let mut dec = Vec::new();
        if !cobs::decode(block, &mut dec) || dec.len() < 8 {
            continue;
        }
        let (body, crc) = dec.split_at(dec.len() - 4);
        if crc32c(body).to_le_bytes() != crc {
            continue;
        }
        let seq = u16::from_le_bytes([body[0], body[1]]);
        let Ok(Some(h)) = Header::parse(&body[2..], usize::MAX) else {
            continue;
        };
        let payload = Bytes::copy_from_slice(&body[2 + h.header_len..]);
        if let Ok(f) = Frame::load(h.kind, payload) {
            out.push((seq, f));
        }
    }
    out
}

/// Small deterministic PRNG (xorshift64*), so tests need no extra dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability num/den.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// Body of length `len` derived from `seed`: any corruption shows as a mismatch.
pub fn body_for(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng::new(seed ^ 0xA5A5_5A5A);
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let x = r.next_u64().to_le_bytes();
        let n = (len - v.len()).min(8);
        v.extend_from_slice(&x[..n]);
    }
    v
}

/// A filter that flips, drops or inserts bytes at random with the given odds per byte
/// (in millionths), and can drop serial delimiters.
pub fn noisy_filter(seed: u64, flip_ppm: u64, drop_ppm: u64, insert_ppm: u64) -> Filter {
    let mut rng = Rng::new(seed);
    Box::new(move |data: &[u8]| {
        let mut out = Vec::with_capacity(data.len() + 8);
        for &b in data {
            if rng.chance(insert_ppm, 1_000_000) {
                out.push(rng.next_u64() as u8);
            }
            if rng.chance(drop_ppm, 1_000_000) {
                continue;
            }
            if rng.chance(flip_ppm, 1_000_000) {
                out.push(b ^ (1 << rng.below(8)));
            } else {
                out.push(b);
            }
        }
        out
    })
}

/// What one side received: bodies of incoming messages, read as they arrive.
#[derive(Default, Debug)]
pub struct Inbox {
    pub heads: std::collections::BTreeMap<MessageId, MessageHead>,
    pub partial: std::collections::BTreeMap<MessageId, Vec<u8>>,
    /// Completed messages in completion order.
    pub done: Vec<(MessageId, MessageHead, Vec<u8>)>,
    /// Incoming messages that failed (Reset) or were refused (Rejected).
    pub failed: Vec<(MessageId, netcore_core::MessageError)>,
    /// Outgoing messages that failed (Stopped), and those fully sent.
    pub stopped: Vec<(MessageId, netcore_core::MessageError)>,
    pub sent: Vec<MessageId>,
}

impl Inbox {
    /// Takes the events, and reads every incoming message if `read`.
    pub fn absorb(&mut self, conn: &mut Connection, events: &mut Vec<Event>, read: bool) {
        for e in events.drain(..) {
            match e {
                Event::Incoming { id, head } => {
                    self.heads.insert(id, head);
                    self.partial.insert(id, Vec::new());
                }
                Event::Reset { id, error } => {
                    self.heads.remove(&id);
                    self.partial.remove(&id);
                    self.failed.push((id, error));
                }
                Event::Rejected { id, error } => self.failed.push((id, error)),
                Event::Stopped { id, error } => self.stopped.push((id, error)),
                Event::Sent { id } => self.sent.push(id),
                _ => {}
            }
        }
        if read {
            self.read_all(conn);
        }
    }

    pub fn read_all(&mut self, conn: &mut Connection) {
        let ids: Vec<MessageId> = self.heads.keys().copied().collect();
        for id in ids {
            let buf = self.partial.entry(id).or_default();
            if read_available(conn, id, buf) {
                let head = self.heads.remove(&id).unwrap();
                let body = self.partial.remove(&id).unwrap();
                self.done.push((id, head, body));
            }
        }
    }

    pub fn body_of(&self, id: MessageId) -> Option<&[u8]> {
        self.done
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, _, b)| &b[..])
    }
}

/// Wraps an encoded frame in serial link framing with sequence number `seq`.
pub fn serial_link_frame(seq: u16, frame: &netcore_core::frame::Frame) -> Vec<u8> {
    use netcore_core::link::{cobs, crc32c};
    let mut inner = seq.to_le_bytes().to_vec();
    frame.encode(&mut inner);
    let crc = crc32c(&inner);
    inner.extend_from_slice(&crc.to_le_bytes());
    let mut out = Vec::new();
    cobs::encode(&inner, &mut out);
    out.push(0);
    out
}

/// A HELLO as `cfg`'s side would send it (a bare frame, no link framing).
pub fn hello_frame(cfg: &Config) -> netcore_core::frame::Frame {
    use netcore_core::frame::{Capabilities, Frame, Hello, VERSION};
    let mut caps = Capabilities::ROUTE_INTERNING;
    if cfg.profile == netcore_core::LinkProfile::Serial {
        caps = caps | Capabilities::LINK_RECOVERY;
    }
    Frame::Hello(Hello {
        version: VERSION,
        profile: cfg.profile.code(),
        seen_peer: true,
        session: cfg.session,
        capabilities: caps,
        max_frame: cfg.max_frame as u64,
        max_message: cfg.max_message.unwrap_or(0),
        max_metadata: cfg.max_metadata as u64,
        max_incoming: cfg.max_incoming,
        max_routes: cfg.max_routes,
        message_window: cfg.message_window,
        connection_window: cfg.connection_window,
    })
}

/// Everything `conn` wants to transmit right now.
pub fn drain_transmit(conn: &mut Connection, now: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    while conn.poll_transmit(now, &mut out, 1 << 20) > 0 {}
    out
}

pub fn drain_events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}
