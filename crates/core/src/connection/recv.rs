//! The receiving half: incoming messages, reassembly, limits, and the credit this side
//! grants. A receiver's buffered body bytes never exceed its connection window: the
//! peer may only send up to the credit granted, credit is granted only as the
//! application reads, and anything past it is a protocol violation.

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

impl Connection {
    fn is_serial(&self) -> bool {
        self.config.profile == LinkProfile::Serial
    }

    /// Refuses an incoming message before the application sees it.
    fn reject(&mut self, id: u64, error: MessageError) {
        self.recv.done_count += 1;
        self.control.push_back(Frame::Cancel(Cancel {
            id,
            side: CancelSide::Receiver,
            code: error.code(),
        }));
        self.events.push_back(Event::Rejected {
            id: MessageId(id),
            error,
        });
    }

    pub(super) fn handle_start(&mut self, s: Start) -> Result<(), ProtocolViolation> {
        let Start {
            id8,
            urgency,
            fin,
            reply_to,
            route,
            metadata,
            total_len,
            body,
        } = s;
        let head = StartHead {
            id8,
            urgency,
            fin,
            reply_to,
            total_len,
        };
        self.handle_start_fields(head, route, metadata, body)
    }

    /// [`handle_start`](Self::handle_start) on a START's fields: from a parsed
    /// [`Start`], or from a START read in place (`LinkReader::next_plain_start`).
    #[inline(always)]
    pub(super) fn handle_start_fields(
        &mut self,
        s: StartHead,
        route_field: Option<RouteField>,
        metadata: Option<Bytes>,
        body: Bytes,
    ) -> Result<(), ProtocolViolation> {
        let expected = self.recv.next_id;
        let id = expected + u64::from(s.id8.wrapping_sub(expected as u8));
        if id != expected && !self.is_serial() {
            return Err(ProtocolViolation::BadMessageId {
                id,
                why: "START out of order (expected the next id)",
            });
        }
        if id > self.recv.max_messages() {
            return Err(ProtocolViolation::Limit(LimitExceeded {
                kind: LimitKind::IncomingMessages,
                limit: self.recv.max_incoming,
                actual: id - self.recv.done_count,
            }));
        }
        // Serial: the STARTs of the ids in between were lost on the line (at most 255,
        // as ids are reconstructed from their low byte). Those messages are gone: count
        // them as done so their message credit comes back, and say so.
        for lost in expected..id {
            self.recv.done_count += 1;
            self.events.push_back(Event::Rejected {
                id: MessageId(lost),
                error: MessageError::FrameLost,
            });
        }
        self.recv.next_id = id + 1;
        let body_len = body.len() as u64;
        self.charge_connection(body_len)?;
        if body_len > self.config.message_window {
            return Err(ProtocolViolation::FlowControl {
                allowed: self.config.message_window,
                sent: body_len,
            });
        }
        if route_field == Some(RouteField::Ref(0)) {
            // Void message: its id is used up, nothing else.
            self.recv.done_count += 1;
            return Ok(());
        }
        if let Some(last) = self.goaway_sent {
            if id > last && s.reply_to.is_none() {
                self.reject(id, MessageError::Refused);
                return Ok(());
            }
        }
        let route = match route_field {
            None => None,
            Some(RouteField::Literal { intern_as, name }) => {
                let route = Route::from(
                    core::str::from_utf8(&name).map_err(|_| ProtocolViolation::InvalidRoute)?,
                );
                if intern_as > self.config.max_routes {
                    return Err(ProtocolViolation::Limit(LimitExceeded {
                        kind: LimitKind::Routes,
                        limit: self.config.max_routes,
                        actual: intern_as,
                    }));
                }
                if intern_as > 0 {
                    if self.recv.last_route.0 == intern_as {
                        self.recv.last_route.0 = 0;
                    }
                    self.recv.routes.insert(intern_as, route.clone());
                }
                Some(route)
            }
            Some(RouteField::Ref(n)) if n == self.recv.last_route.0 => {
                Some(self.recv.last_route.1.clone())
            }
            Some(RouteField::Ref(n)) => match self.recv.routes.get(&n) {
                Some(r) => {
                    self.recv.last_route = (n, r.clone());
                    Some(r.clone())
                }
                // Serial: the START that defined it was lost; only this message suffers.
                None if self.is_serial() => {
                    self.reject(id, MessageError::FrameLost);
                    return Ok(());
                }
                None => return Err(ProtocolViolation::UnknownRoute(n)),
            },
        };
        let metadata = metadata.unwrap_or_default();
        let head_len = (route.as_ref().map_or(0, |r| r.len()) + metadata.len()) as u64;
        let limit = if head_len > self.config.max_metadata as u64 {
            Some(LimitExceeded {
                kind: LimitKind::MetadataSize,
                limit: self.config.max_metadata as u64,
                actual: head_len,
            })
        } else {
            self.config.max_message.and_then(|max| {
                let len = s.total_len.unwrap_or(0).max(body_len);
                (len > max).then_some(LimitExceeded {
                    kind: LimitKind::MessageSize,
                    limit: max,
                    actual: len,
                })
            })
        };
        if let Some(l) = limit {
            self.reject(id, MessageError::Limit(l));
            return Ok(());
        }
        if let (true, Some(t)) = (s.fin, s.total_len) {
            if t != body_len {
                return Err(ProtocolViolation::LengthMismatch {
                    announced: t,
                    received: body_len,
                });
            }
        }
        // A START that ends its message carries the whole body: its length is known
        // even when the sender did not announce it.
        let head = MessageHead {
            route,
            metadata,
            total_len: s.total_len.or(s.fin.then_some(body_len)),
            reply_to: s.reply_to.map(MessageId),
            urgency: s.urgency,
        };
        let whole_cost = body_len.saturating_add(self.recv.whole_overhead);
        if s.fin && self.recv.whole_budget != 0 && whole_cost <= self.recv.whole_budget {
            // Done on arrival: no state kept, its message credit comes back at once.
            self.recv.whole_budget -= whole_cost;
            self.recv.done_count += 1;
            self.recv.note_completed(id);
            self.events.push_back(Event::Message {
                id: MessageId(id),
                head,
                body,
            });
            self.maybe_finish_close();
            return Ok(());
        }
        let window = self.config.message_window;
        let readable = !body.is_empty() || s.fin;
        if !body.is_empty() {
            self.recv.buffered += body_len;
        }
        let m = Incoming {
            // A message's first chunk sits inline: no queue to push onto.
            queue: Chunks::one(body),
            received: body_len,
            consumed: 0,
            granted: window,
            window,
            last_grant: None,
            total_len: s.total_len,
            ended: s.fin,
        };
        self.recv.messages.insert(id, m);
        self.events.push_back(Event::Incoming {
            id: MessageId(id),
            head,
        });
        if readable {
            self.events.push_back(Event::Readable { id: MessageId(id) });
        }
        Ok(())
    }

    fn charge_connection(&mut self, len: u64) -> Result<(), ProtocolViolation> {
        let total = self.recv.conn_received + len;
        if total > self.recv.max_data_granted {
            return Err(ProtocolViolation::FlowControl {
                allowed: self.recv.max_data_granted,
                sent: total,
            });
        }
        self.recv.conn_received = total;
        // Connection credit bounds bytes in flight and comes back on arrival: bytes a
        // message holds are bounded by its own window, and holding them must never
        // starve the other messages (a reader taking messages one at a time would
        // otherwise deadlock once unread messages fill the connection window).
        let (now, rtt) = (self.now, self.window_rtt());
        self.recv.release_connection(len, &self.config, now, rtt);
        Ok(())
    }

    pub(super) fn handle_data(&mut self, d: Data) -> Result<(), ProtocolViolation> {
        let len = d.body.len() as u64;
        self.charge_connection(len)?;
        if d.id >= self.recv.next_id {
            if !self.is_serial() {
                return Err(ProtocolViolation::BadMessageId {
                    id: d.id,
                    why: "DATA before its START",
                });
            }
            // Serial: its START was lost; have the sender give up on it.
            if self.recv.last_unknown_cancelled != d.id {
                self.recv.last_unknown_cancelled = d.id;
                self.control.push_back(Frame::Cancel(Cancel {
                    id: d.id,
                    side: CancelSide::Receiver,
                    code: ErrorCode::FRAME_LOST,
                }));
            }
            return Ok(());
        }
        let max_message = self.config.max_message;
        let Some(m) = self.recv.messages.get_mut(d.id) else {
            // A message already finished, cancelled or refused: drop, return credit.
            return Ok(());
        };
        if d.offset != m.received {
            if !self.is_serial() {
                return Err(ProtocolViolation::BadMessageId {
                    id: d.id,
                    why: "DATA at an offset other than the next byte",
                });
            }
            // Serial: a frame of this message was lost. Never deliver past the hole.
            self.fail_incoming(d.id, MessageError::FrameLost);
            return Ok(());
        }
        if m.ended {
            return Err(ProtocolViolation::UnexpectedFrame {
                kind: if d.end {
                    FrameKind::END
                } else {
                    FrameKind::DATA
                },
                why: "body bytes after the end of the message",
            });
        }
        let end_offset = m.received + len;
        if end_offset > m.granted {
            return Err(ProtocolViolation::FlowControl {
                allowed: m.granted,
                sent: end_offset,
            });
        }
        if let Some(t) = m.total_len {
            if end_offset > t || (d.end && end_offset != t) {
                return Err(ProtocolViolation::LengthMismatch {
                    announced: t,
                    received: end_offset,
                });
            }
        }
        if let Some(max) = max_message.filter(|&max| end_offset > max) {
            let err = MessageError::Limit(LimitExceeded {
                kind: LimitKind::MessageSize,
                limit: max,
                actual: end_offset,
            });
            self.fail_incoming(d.id, err);
            return Ok(());
        }
        let was_empty = m.queue.is_empty();
        m.received = end_offset;
        if !d.body.is_empty() {
            m.queue.push_back(d.body);
            self.recv.buffered += len;
        }
        m.ended |= d.end;
        if was_empty && (len > 0 || d.end) {
            self.events.push_back(Event::Readable {
                id: MessageId(d.id),
            });
        }
        Ok(())
    }

    /// Fails an incoming message on this side and tells the sender to stop.
    fn fail_incoming(&mut self, id: u64, error: MessageError) {
        self.control.push_back(Frame::Cancel(Cancel {
            id,
            side: CancelSide::Receiver,
            code: error.code(),
        }));
        self.reset_incoming(id, error);
    }

    /// Drops an incoming message, returns its credit, and reports `Reset`.
    pub(super) fn reset_incoming(&mut self, id: u64, error: MessageError) {
        if self.remove_incoming(id) {
            self.events.push_back(Event::Reset {
                id: MessageId(id),
                error,
            });
            // After the event: a close it completes must not report Closed first.
            self.maybe_finish_close();
        }
    }

    /// The peer cancelled one of its messages (CANCEL from the sender side). If the body
    /// was already complete the message is gone here, but the application may still be
    /// working on it (a request's handler), so it hears of it too.
    ///
    /// Reported once: not for a message that already failed, was refused or stopped
    /// here (it was reported then, or the application gave up on it itself), nor for a
    /// serial FRAME_LOST of a message no longer held (a message that lost a frame was
    /// never delivered, so its end was already reported).
    pub(super) fn peer_abandoned(&mut self, id: u64, error: MessageError) {
        let known = self.remove_incoming(id)
            || (error != MessageError::FrameLost && self.recv.take_completed(id));
        if known {
            self.events.push_back(Event::Reset {
                id: MessageId(id),
                error,
            });
        }
        self.maybe_finish_close();
    }

    fn remove_incoming(&mut self, id: u64) -> bool {
        let Some(m) = self.recv.messages.remove(id) else {
            return false;
        };
        let buffered = m.buffered();
        self.recv.buffered -= buffered;
        self.recv.done_count += 1;
        true
    }

    /// Takes up to `max` buffered body bytes of an incoming message (`max` 0 means no
    /// limit). `Ok(None)` means the body is complete and the message is now forgotten;
    /// `Blocked` means nothing is buffered yet. Reading returns credit to the peer.
    #[inline]
    pub fn read(&mut self, id: MessageId, max: usize) -> Result<Option<Bytes>, ReadError> {
        // Inlined for the usual calls on a message whose body is complete (a small
        // message always is): the chunk then reaches the caller without a returned
        // copy. An ended message's credit is settled, so reading only hands out.
        let Some(m) = self.recv.messages.get_mut(id.0) else {
            return Err(ReadError::UnknownMessage);
        };
        if m.ended {
            let Some(front) = m.queue.front_mut() else {
                self.read_to_end(id.0);
                return Ok(None);
            };
            if max == 0 || front.len() <= max {
                let chunk = m.queue.pop_front().unwrap_or_default();
                let n = chunk.len() as u64;
                m.consumed += n;
                self.recv.buffered -= n;
                return Ok(Some(chunk));
            }
        }
        self.read_general(id, max)
    }

    /// Takes the whole body of incoming message `id` in one call when it has ended and
    /// its body is buffered in one piece (as a small message's always is), and forgets
    /// the message, as reading it to its end with [`read`](Self::read) would. `None`,
    /// changing nothing, otherwise: then read it piece by piece.
    ///
    /// ```
    /// # use netcore_core::{Config, Connection, Event, Instant, MessageHead};
    /// # let now = Instant::ZERO;
    /// # let (mut a, mut b) = (Connection::new(Config::tcp(), now), Connection::new(Config::tcp(), now));
    /// # let mut step = |a: &mut Connection, b: &mut Connection| {
    /// #     for _ in 0..4 {
    /// #         let mut buf = Vec::new();
    /// #         a.poll_transmit(now, &mut buf, 1 << 16);
    /// #         b.handle_input(now, &buf);
    /// #         buf.clear();
    /// #         b.poll_transmit(now, &mut buf, 1 << 16);
    /// #         a.handle_input(now, &buf);
    /// #     }
    /// # };
    /// # step(&mut a, &mut b);
    /// a.send(MessageHead::to_route("temp"), "21.5".into()).unwrap();
    /// # step(&mut a, &mut b);
    /// let id = loop {
    ///     match b.poll_event() {
    ///         Some(Event::Incoming { id, .. }) => break id,
    ///         Some(_) => continue,
    ///         None => panic!("no message"),
    ///     }
    /// };
    /// assert_eq!(b.read_whole(id).as_deref(), Some(&b"21.5"[..]));
    /// assert!(b.read(id, 0).is_err()); // read to its end, forgotten
    /// ```
    pub fn read_whole(&mut self, id: MessageId) -> Option<Bytes> {
        let m = self.recv.messages.get_mut(id.0)?;
        if !m.ended || m.queue.second().is_some() {
            return None;
        }
        let chunk = m.queue.pop_front().unwrap_or_default();
        let n = chunk.len() as u64;
        m.consumed += n;
        self.recv.buffered -= n;
        self.read_to_end(id.0);
        Some(chunk)
    }

    /// Lets messages whose START carries the whole body (every small message) be
    /// handed over in one [`Event::Message`] with their body, instead of
    /// [`Event::Incoming`] and [`Event::Readable`] followed by reads, until `budget`
    /// bytes are used up, each message counting its body length plus `per_message`.
    /// Such a message is done on arrival: the connection keeps nothing of it and its
    /// message credit goes back to the peer at once, so the budget is how the driver
    /// bounds what it queues itself; past it, messages wait in the connection again,
    /// where they hold back the peer's credit. Each call replaces the budget; 0 (the
    /// default) turns this off.
    ///
    /// ```
    /// # use netcore_core::{Config, Connection, Event, Instant, MessageHead};
    /// # let now = Instant::ZERO;
    /// # let (mut a, mut b) = (Connection::new(Config::tcp(), now), Connection::new(Config::tcp(), now));
    /// # let mut step = |a: &mut Connection, b: &mut Connection| {
    /// #     for _ in 0..4 {
    /// #         let mut buf = Vec::new();
    /// #         a.poll_transmit(now, &mut buf, 1 << 16);
    /// #         b.handle_input(now, &buf);
    /// #         buf.clear();
    /// #         b.poll_transmit(now, &mut buf, 1 << 16);
    /// #         a.handle_input(now, &buf);
    /// #     }
    /// # };
    /// # step(&mut a, &mut b);
    /// // Room for one small message: the second waits in the connection.
    /// b.set_whole_delivery(600, 512);
    /// a.send(MessageHead::to_route("temp"), "21.5".into()).unwrap();
    /// a.send(MessageHead::to_route("temp"), "21.6".into()).unwrap();
    /// # step(&mut a, &mut b);
    /// let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    /// let body = events.iter().find_map(|e| match e {
    ///     Event::Message { body, .. } => Some(body.clone()),
    ///     _ => None,
    /// });
    /// assert_eq!(body.as_deref(), Some(&b"21.5"[..]));
    /// let second = events.iter().find_map(|e| match e {
    ///     Event::Incoming { id, .. } => Some(*id),
    ///     _ => None,
    /// });
    /// let second = second.expect("the second message waits in the connection");
    /// assert_eq!(b.read_whole(second).as_deref(), Some(&b"21.6"[..]));
    /// ```
    pub fn set_whole_delivery(&mut self, budget: u64, per_message: u64) {
        self.recv.whole_budget = budget;
        self.recv.whole_overhead = per_message;
    }

    /// Forgets incoming message `id`, read to its end.
    fn read_to_end(&mut self, id: u64) {
        self.recv.messages.delete(id);
        self.recv.done_count += 1;
        self.recv.note_completed(id);
        self.maybe_finish_close();
    }

    /// [`read`](Self::read) in general.
    fn read_general(&mut self, id: MessageId, max: usize) -> Result<Option<Bytes>, ReadError> {
        let max = if max == 0 { usize::MAX } else { max };
        // A message window bounds what waits for the application, not what queues on
        // the path (connection credit does that), so it grows on the smoothed RTT.
        let rtt = self.rtt;
        let m = self
            .recv
            .messages
            .get_mut(id.0)
            .ok_or(ReadError::UnknownMessage)?;
        if let Some(front) = m.queue.front_mut() {
            let chunk = if front.len() <= max {
                m.queue.pop_front().unwrap_or_default()
            } else {
                front.split_to(max)
            };
            let n = chunk.len() as u64;
            if m.consumed(n, &self.config, self.now, rtt) {
                self.recv.pending_message_credit.insert(id.0);
            }
            self.recv.buffered -= n;
            return Ok(Some(chunk));
        }
        if m.ended {
            self.read_to_end(id.0);
            return Ok(None);
        }
        Err(ReadError::Blocked)
    }

    /// Body bytes buffered for an incoming message.
    pub fn readable_bytes(&self, id: MessageId) -> u64 {
        self.recv.messages.get(id.0).map_or(0, Incoming::buffered)
    }

    /// Abandons an incoming message: its buffer is dropped, its credit returned, and
    /// the peer asked with CANCEL to stop sending it. No event follows.
    pub fn stop(&mut self, id: MessageId, code: ErrorCode) {
        if self.remove_incoming(id.0) {
            self.control.push_back(Frame::Cancel(Cancel {
                id: id.0,
                side: CancelSide::Receiver,
                code,
            }));
            self.maybe_finish_close();
        }
    }
}
