//! The receiving half: incoming messages, reassembly, limits, and the credit this side
//! grants. Buffered body bytes are bounded: each message's by its own window (message
//! credit is granted only as the application reads), all of them by `max_incoming` ×
//! `max_message_window`; connection credit bounds the bytes in flight and comes back
//! as they arrive. Bytes past the credit granted are a protocol violation.
//!
//! This file holds the state and the credit it grants; `frames.rs` handles the
//! peer's START, DATA and END; `read.rs` the application's reads.

use super::idmap::{Chunks, IdMap};
use super::Connection;
use crate::codes::{ErrorCode, FrameKind};
use crate::config::Config;
use crate::error::{LimitExceeded, LimitKind, MessageError, ProtocolViolation, ReadError};
use crate::event::{Event, MessageHead, MessageId};
use crate::frame::{Cancel, CancelSide, Data, Frame, RouteField, Start, StartHead};
use crate::link::LinkProfile;
use crate::route::Route;
use crate::time::Instant;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;
use core::time::Duration;

mod frames;
mod read;

/// Slots remembering incoming ids read to their end (see `completed`).
const COMPLETED_SLOTS: usize = 1024;

#[derive(Debug)]
struct Incoming {
    queue: Chunks,
    /// Next expected body offset.
    received: u64,
    consumed: u64,
    granted: u64,
    window: u64,
    last_grant: Option<Instant>,
    total_len: Option<u64>,
    ended: bool,
}

impl Incoming {
    fn buffered(&self) -> u64 {
        self.received - self.consumed
    }

    /// Counts `n` body bytes the application read; whether new message credit is due.
    fn consumed(&mut self, n: u64, config: &Config, now: Instant, rtt: Duration) -> bool {
        self.consumed += n;
        if self.ended || self.granted - self.consumed >= self.window / 2 {
            return false;
        }
        if self
            .last_grant
            .is_some_and(|t| now.saturating_since(t) < rtt * 2)
        {
            self.window = (self.window * 2).min(config.max_message_window);
        }
        self.granted = self.consumed + self.window;
        self.last_grant = Some(now);
        true
    }
}

#[derive(Debug)]
pub(super) struct RecvState {
    /// Next START id expected.
    next_id: u64,
    messages: IdMap<Incoming>,
    max_incoming: u64,
    done_count: u64,
    sent_max_messages: u64,
    conn_received: u64,
    conn_consumed: u64,
    max_data_granted: u64,
    sent_max_data: u64,
    conn_window: u64,
    last_conn_grant: Option<Instant>,
    pending_message_credit: BTreeSet<u64>,
    routes: BTreeMap<u64, Route>,
    /// The route referenced last, with its number (0: none): consecutive messages
    /// nearly always share a route, and this spares the tree walk.
    last_route: (u64, Route),
    last_unknown_cancelled: u64,
    /// Recent incoming ids read to their end: a CANCEL from the sender arriving after
    /// that still reports them once (`Reset`: the sender gave up, e.g. a request whose
    /// caller left while its handler runs). Any other ended id is never reported
    /// again, however many messages later a CANCEL for it comes. Bounded by
    /// `COMPLETED_SLOTS`: id `n` lives in slot `n % COMPLETED_SLOTS` until a later id
    /// takes it, so a peer's CANCEL costs one lookup, not a scan. Allocated on first
    /// use (small devices that never complete a message pay nothing).
    completed: Vec<u64>,
    /// Body bytes buffered across incoming messages.
    pub(super) buffered: u64,
    /// Bytes of messages that may still be handed over whole in an
    /// [`Event::Message`], and what each costs beyond its body (see
    /// [`Connection::set_whole_delivery`]).
    whole_budget: u64,
    whole_overhead: u64,
}

impl RecvState {
    pub(super) fn new(config: &Config) -> Self {
        RecvState {
            next_id: 1,
            messages: IdMap::default(),
            max_incoming: config.max_incoming,
            done_count: 0,
            sent_max_messages: config.max_incoming,
            conn_received: 0,
            conn_consumed: 0,
            max_data_granted: config.connection_window,
            sent_max_data: config.connection_window,
            conn_window: config.connection_window,
            last_conn_grant: None,
            pending_message_credit: BTreeSet::new(),
            routes: BTreeMap::new(),
            last_route: (0, Route::default()),
            last_unknown_cancelled: 0,
            completed: Vec::new(),
            whole_budget: 0,
            whole_overhead: 0,
            buffered: 0,
        }
    }

    pub(super) fn is_idle(&self) -> bool {
        self.messages.is_empty()
    }

    /// Highest peer message id started so far (0 if none).
    pub(super) fn last_started(&self) -> u64 {
        self.next_id - 1
    }

    fn max_messages(&self) -> u64 {
        self.done_count + self.max_incoming
    }

    pub(super) fn fail_all(&mut self, err: &MessageError, events: &mut VecDeque<Event>) {
        for (id, _) in self.messages.drain() {
            events.push_back(Event::Reset {
                id: MessageId(id),
                error: err.clone(),
            });
        }
        self.buffered = 0;
    }

    /// Remembers that incoming message `id` was read to its end.
    #[inline]
    fn note_completed(&mut self, id: u64) {
        if self.completed.is_empty() {
            // Id 0 is never used, so it marks an empty slot.
            self.completed = alloc::vec![0; COMPLETED_SLOTS];
        }
        self.completed[(id % COMPLETED_SLOTS as u64) as usize] = id;
    }

    /// Forgets `id` as recently completed; whether it was.
    fn take_completed(&mut self, id: u64) -> bool {
        match self
            .completed
            .get_mut((id % COMPLETED_SLOTS as u64) as usize)
        {
            Some(slot) if id != 0 && *slot == id => {
                *slot = 0;
                true
            }
            _ => false,
        }
    }

    /// Marks every credit as needing to be sent again (a frame carrying one was lost).
    pub(super) fn resend_credit(&mut self) {
        self.sent_max_data = 0;
        self.sent_max_messages = 0;
        let live = self
            .messages
            .iter()
            .filter(|(_, m)| !m.ended)
            .map(|(id, _)| id);
        self.pending_message_credit.extend(live);
    }

    /// Returns credit for `n` body bytes the application consumed (or that were thrown
    /// away), growing the window toward the bandwidth-delay product: if a whole window
    /// went by in under two round trips, the window was the bottleneck, so it doubles
    /// up to the configured cap.
    #[inline]
    fn release_connection(&mut self, n: u64, config: &Config, now: Instant, rtt: Duration) {
        self.conn_consumed += n;
        if self.max_data_granted - self.conn_consumed < self.conn_window / 2 {
            if self
                .last_conn_grant
                .is_some_and(|t| now.saturating_since(t) < rtt * 2)
            {
                self.conn_window = (self.conn_window * 2).min(config.max_connection_window);
            }
            self.max_data_granted = self.conn_consumed + self.conn_window;
            self.last_conn_grant = Some(now);
        }
    }

    /// The next credit frame due, if any.
    #[inline]
    pub(super) fn poll_credit_frame(&mut self) -> Option<Frame> {
        if !self.credit_due() {
            // Asked before every frame sent: answer the usual "nothing" cheaply.
            return None;
        }
        self.next_credit_frame()
    }

    /// Whether a credit frame is due: what [`poll_credit_frame`](Self::poll_credit_frame)
    /// would find.
    #[inline]
    pub(super) fn credit_due(&self) -> bool {
        !self.pending_message_credit.is_empty()
            || self.max_data_granted > self.sent_max_data
            || self.message_count_credit_due()
    }

    /// Whether MAX_MESSAGES is due: more credit to give, and the peer has used half of
    /// what it was given.
    #[inline]
    fn message_count_credit_due(&self) -> bool {
        let unused = self.sent_max_messages.saturating_sub(self.last_started());
        self.max_messages() > self.sent_max_messages && unused <= self.max_incoming / 2
    }

    fn next_credit_frame(&mut self) -> Option<Frame> {
        if self.max_data_granted > self.sent_max_data {
            self.sent_max_data = self.max_data_granted;
            return Some(Frame::MaxData(self.max_data_granted));
        }
        // Message credit goes out once the peer has used half of what it was given,
        // not after every message: a standalone credit frame per message doubles the
        // writes (and the peer's wakeups) of a request/response exchange.
        if self.message_count_credit_due() {
            let max_messages = self.max_messages();
            self.sent_max_messages = max_messages;
            return Some(Frame::MaxMessages(max_messages));
        }
        while let Some(id) = self.pending_message_credit.pop_first() {
            if let Some(m) = self.messages.get(id).filter(|m| !m.ended) {
                return Some(Frame::MaxMessageData { id, max: m.granted });
            }
        }
        None
    }
}
