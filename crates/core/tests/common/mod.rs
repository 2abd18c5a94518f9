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
        self.a
            .poll_transmit(self.now, &mut buf, self.transmit_limit);
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
        self.b
            .poll_transmit(self.now, &mut buf, self.transmit_limit);
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

    /// Jumps to each side's next timer until `until` has passed.
    pub fn run_timers_until(&mut self, until: Instant) {
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
