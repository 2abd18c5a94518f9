//! The sending half: outgoing messages, their buffers and credit, and the scheduler
//! that picks which message's frame goes next.
//!
//! Scheduling: eight urgency rings; the most urgent non-empty ring is served, one frame
//! per turn, its message going to the back of the ring if it has more to send. A message
//! whose credit ran out leaves the ring and comes back when credit arrives, so a
//! blocked message never stalls others; of those waiting for connection credit, a
//! MAX_DATA brings back (most urgent, longest waiting first) only as many as it can
//! feed. START frames go out in id order (the receiver
//! reconstructs ids from their low byte): before a message's first frame, the STARTs of
//! lower ids still waiting are sent head-only, a few bytes each.
//!
//! `schedule.rs` picks the message whose frame goes next and wakes those waiting for
//! credit; `emit.rs` builds that frame and books what it sent.

mod emit;
mod schedule;

use super::idmap::{Chunks, IdMap};
use super::io::Emitter;
use super::recovery::Sent;
use super::routes::RouteTable;
use super::Connection;
use crate::codes::{ErrorCode, Urgency};
use crate::error::{MessageError, StartError, WriteError};
use crate::event::{Event, MessageHead, MessageId};
use crate::frame::{
    Cancel, CancelSide, Capabilities, Data, Frame, Hello, RouteField, Start, StartParts,
    StartWithLen,
};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

/// How many fully sent messages are remembered for a late receiver CANCEL.
const RECENTLY_SENT: usize = 256;

#[derive(Debug)]
pub(super) struct Outgoing {
    /// Present until the START is sent.
    head: Option<MessageHead>,
    /// Cancelled before its START went out: sent as a void START so ids stay dense.
    void: bool,
    urgency: Urgency,
    queue: Chunks,
    queued: usize,
    written: u64,
    /// Body bytes sent so far (the next frame's offset).
    offset: u64,
    total_len: Option<u64>,
    finished: bool,
    /// Peer's credit: body offset this message may reach.
    credit: u64,
    scheduled: bool,
    blocked: bool,
    /// Listed in `SendState::conn_blocked`: a flag, not a search of the list, which
    /// holds every message waiting for connection credit (thousands when many large
    /// messages are queued; the search made each MAX_DATA quadratic in them).
    in_conn_blocked: bool,
}

#[derive(Debug)]
pub(super) struct SendState {
    next_id: u64,
    messages: IdMap<Outgoing>,
    rings: [VecDeque<u64>; Urgency::CLASSES],
    /// Ids whose START is not sent yet, ascending.
    unstarted: VecDeque<u64>,
    conn_sent: u64,
    peer_max_data: u64,
    peer_max_messages: u64,
    peer_message_window: u64,
    /// Messages that can send as soon as connection credit comes back (MAX_DATA, or a
    /// refund after a loss), by urgency, longest waiting first. See `wake_conn_blocked`.
    conn_blocked: [VecDeque<u64>; Urgency::CLASSES],
    /// Recently completed outgoing messages (all frames sent), oldest first, so that a
    /// receiver's CANCEL arriving after `Sent` (refused by GOAWAY, stopped unread) is
    /// still reported as `Stopped`. Bounded by `RECENTLY_SENT`.
    recently_sent: VecDeque<u64>,
    routes: RouteTable,
    /// Sent messages are reported as `Event::SentRange` (see `set_sent_ranges`).
    sent_ranges: bool,
}

impl SendState {
    pub(super) fn new() -> Self {
        SendState {
            next_id: 1,
            messages: IdMap::default(),
            rings: Default::default(),
            unstarted: VecDeque::new(),
            conn_sent: 0,
            peer_max_data: 0,
            peer_max_messages: 0,
            peer_message_window: 0,
            conn_blocked: Default::default(),
            recently_sent: VecDeque::new(),
            sent_ranges: false,
            routes: RouteTable::new(),
        }
    }

    pub(super) fn on_handshake(&mut self, h: &Hello) {
        self.peer_max_data = h.connection_window;
        self.peer_max_messages = h.max_incoming;
        self.peer_message_window = h.message_window;
        self.routes
            .set_peer_max(if h.capabilities.contains(Capabilities::ROUTE_INTERNING) {
                h.max_routes
            } else {
                0
            });
    }

    pub(super) fn is_idle(&self) -> bool {
        self.messages.is_empty()
    }

    pub(super) fn queued_total(&self) -> u64 {
        self.messages.values().map(|o| o.queued as u64).sum()
    }

    pub(super) fn fail_all(&mut self, err: &MessageError, events: &mut VecDeque<Event>) {
        for (id, o) in self.messages.drain() {
            if !o.void {
                events.push_back(Event::Stopped {
                    id: MessageId(id),
                    error: err.clone(),
                });
            }
        }
        self.unstarted.clear();
        for ring in self.rings.iter_mut().chain(&mut self.conn_blocked) {
            ring.clear();
        }
    }

    /// Refunds credit for body bytes the peer never received (lost link frames).
    pub(super) fn refund(&mut self, bytes: u64) {
        self.conn_sent = self.conn_sent.saturating_sub(bytes);
    }

    /// Forgets every interned route (a loss too old to attribute may have taken the
    /// START that defined any of them); they are sent as literals again.
    pub(super) fn forget_all_routes(&mut self) {
        self.routes.forget_all();
    }

    /// Forgets an interned route whose defining START was lost.
    pub(super) fn forget_route(&mut self, number: u64) {
        self.routes.forget(number);
    }

    /// Removes `id` from the recently sent messages; whether it was there.
    pub(super) fn forget_recently_sent(&mut self, id: u64) -> bool {
        match self.recently_sent.iter().rposition(|&i| i == id) {
            Some(k) => {
                self.recently_sent.remove(k);
                true
            }
            None => false,
        }
    }

    pub(super) fn outgoing_ids(&self) -> Vec<u64> {
        self.messages.iter().map(|(id, _)| id).collect()
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        self.messages.contains(id)
    }

    fn sendable(&self, id: u64, o: &Outgoing) -> bool {
        o.sendable(
            id,
            self.peer_max_messages,
            self.conn_sent < self.peer_max_data,
        )
    }
}

impl Outgoing {
    /// Whether a frame of this message can go now. Takes the connection-wide limits
    /// as values so callers can hold the message mutably meanwhile.
    fn sendable(&self, id: u64, peer_max_messages: u64, conn_credit: bool) -> bool {
        if self.head.is_some() || self.void {
            return id <= peer_max_messages;
        }
        let has_credit = self.offset < self.credit && conn_credit;
        (self.queued > 0 && has_credit) || (self.finished && self.queued == 0)
    }

    /// Can send once MAX_DATA arrives: only connection credit is missing.
    fn conn_blocked(&self) -> bool {
        self.queued > 0 && self.offset < self.credit && self.head.is_none() && !self.void
    }
}

/// Removes `id` from the ids whose START is not sent yet. STARTs leave in id order, so
/// it is nearly always the front: O(1) instead of a scan per START.
fn remove_unstarted(unstarted: &mut VecDeque<u64>, id: u64) {
    if unstarted.front() == Some(&id) {
        unstarted.pop_front();
    } else {
        unstarted.retain(|&u| u != id);
    }
}

impl Connection {
    /// Queues a new outgoing message and returns its id; write its body with
    /// [`write`](Self::write) and end it with [`finish`](Self::finish).
    ///
    /// While a graceful close is under way only replies (`head.reply_to`) may start.
    pub fn start(&mut self, head: MessageHead) -> Result<MessageId, StartError> {
        self.open_outgoing(head, None)
    }

    /// Starts a message with its whole body and finishes it. The body is taken as is,
    /// beyond the send-buffer size: the caller already holds it in memory.
    pub fn send(&mut self, head: MessageHead, body: Bytes) -> Result<MessageId, StartError> {
        self.open_outgoing(head, Some(body))
    }

    /// `start`, and with `body` also the whole body and `finish`, in one step.
    fn open_outgoing(
        &mut self,
        head: MessageHead,
        body: Option<Bytes>,
    ) -> Result<MessageId, StartError> {
        if self.is_closed() || (self.is_closing() && head.reply_to.is_none()) {
            return Err(StartError::Closing);
        }
        if self.send.messages.len() >= self.config.max_queued_outgoing {
            return Err(StartError::TooManyQueued(self.send.messages.len()));
        }
        if let Some(peer) = &self.peer {
            let head_len =
                (head.route.as_ref().map_or(0, |r| r.len()) + head.metadata.len()) as u64;
            if head_len > peer.max_metadata {
                return Err(StartError::MetadataTooLarge {
                    len: head_len,
                    max: peer.max_metadata,
                });
            }
            if let (Some(len), Some(max)) = (head.total_len, peer.max_message) {
                if len > max {
                    return Err(StartError::MessageTooLarge { len, max });
                }
            }
        }
        let id = self.send.next_id;
        self.send.next_id += 1;
        // `schedule`, without looking the message up again: a new message can send
        // once the handshake is done and the peer's message credit covers its id.
        let scheduled = self.peer.is_some() && id <= self.send.peer_max_messages;
        if scheduled {
            self.send.rings[head.urgency.get() as usize].push_back(id);
        }
        let (finished, len, queue) = match body {
            Some(body) => (true, body.len(), Chunks::one(body)),
            None => (false, 0, Chunks::default()),
        };
        // Built in place in its slot (no copy of the whole state).
        self.send.messages.insert(
            id,
            Outgoing {
                urgency: head.urgency,
                total_len: head.total_len,
                head: Some(head),
                void: false,
                queue,
                queued: len,
                written: len as u64,
                offset: 0,
                finished,
                credit: 0,
                scheduled,
                blocked: false,
                in_conn_blocked: false,
            },
        );
        self.send.unstarted.push_back(id);
        Ok(MessageId(id))
    }

    /// Queues body bytes; returns how many were taken (fewer than offered when the
    /// message's send buffer fills; `Blocked` when none fit — wait for `Writable`).
    pub fn write(&mut self, id: MessageId, data: Bytes) -> Result<usize, WriteError> {
        let limit = self.config.send_buffer;
        let o = self
            .send
            .messages
            .get_mut(id.0)
            .ok_or(WriteError::UnknownMessage)?;
        if o.finished {
            return Err(WriteError::AlreadyFinished);
        }
        if let Some(announced) = o.total_len {
            if o.written + data.len() as u64 > announced {
                return Err(WriteError::LengthExceeded { announced });
            }
        }
        let room = limit.saturating_sub(o.queued);
        if room == 0 && !data.is_empty() {
            o.blocked = true;
            return Err(WriteError::Blocked);
        }
        let n = room.min(data.len());
        if n < data.len() {
            // Partly taken: the caller will wait for Writable to offer the rest.
            o.blocked = true;
        }
        if n > 0 {
            o.queue.push_back(data.slice(..n));
            o.queued += n;
            o.written += n as u64;
        }
        self.schedule(id.0);
        Ok(n)
    }

    /// Marks the end of an outgoing message's body.
    pub fn finish(&mut self, id: MessageId) -> Result<(), WriteError> {
        let o = self
            .send
            .messages
            .get_mut(id.0)
            .ok_or(WriteError::UnknownMessage)?;
        if o.finished {
            return Err(WriteError::AlreadyFinished);
        }
        if let Some(announced) = o.total_len {
            if o.written != announced {
                return Err(WriteError::LengthShort {
                    announced,
                    written: o.written,
                });
            }
        }
        o.finished = true;
        self.schedule(id.0);
        Ok(())
    }

    /// Abandons an outgoing message; the peer is told with CANCEL. No event follows.
    /// Also valid after `Sent`: the peer then learns that its work on the message
    /// (e.g. a request's handler) is no longer wanted.
    pub fn cancel(&mut self, id: MessageId, code: ErrorCode) {
        self.drop_outgoing(id.0, code);
    }

    /// Removes an outgoing message, telling the peer if it knew of it.
    pub(super) fn drop_outgoing(&mut self, id: u64, code: ErrorCode) {
        let Some(o) = self.send.messages.get_mut(id) else {
            if id < self.send.next_id && !self.is_closed() {
                // Fully sent already: the peer may still be working on it (a request
                // whose caller gave up), so tell it.
                self.control.push_back(Frame::Cancel(Cancel {
                    id,
                    side: CancelSide::Sender,
                    code,
                }));
            }
            return;
        };
        if o.head.is_some() {
            // Never announced: keep the id as a void START so ids stay dense.
            o.head = None;
            o.void = true;
            o.queue.clear();
            o.queued = 0;
            o.scheduled = false;
            self.schedule(id);
        } else {
            self.send.messages.delete(id);
            self.control.push_back(Frame::Cancel(Cancel {
                id,
                side: CancelSide::Sender,
                code,
            }));
            self.maybe_finish_close();
        }
    }

    /// Fails outgoing messages the peer will not process (it sent GOAWAY).
    pub(super) fn refuse_beyond(&mut self, last_id: u64) {
        let refused: Vec<u64> = self
            .send
            .messages
            .iter()
            .filter(|&(id, o)| {
                id > last_id && o.head.as_ref().is_some_and(|h| h.reply_to.is_none())
            })
            .map(|(id, _)| id)
            .collect();
        for id in refused {
            self.events.push_back(Event::Stopped {
                id: MessageId(id),
                error: MessageError::Refused,
            });
            self.drop_outgoing(id, ErrorCode::REFUSED);
        }
    }

    pub(super) fn handle_cancel(&mut self, c: Cancel) {
        match c.side {
            // The peer abandons a message it was sending us.
            CancelSide::Sender => self.peer_abandoned(c.id, MessageError::from_peer_code(c.code)),
            // The peer wants no more of a message we are sending.
            CancelSide::Receiver => {
                let known = if self.send.messages.delete(c.id) {
                    true
                } else {
                    // Fully sent already, but the peer did not process it.
                    self.send.forget_recently_sent(c.id)
                };
                if known {
                    self.send.unstarted.retain(|&u| u != c.id);
                    self.events.push_back(Event::Stopped {
                        id: MessageId(c.id),
                        error: MessageError::from_peer_code(c.code),
                    });
                    self.maybe_finish_close();
                }
            }
        }
    }

    /// Reports sent messages as [`Event::SentRange`]s instead of one [`Event::Sent`]
    /// each: a message sent right after the last one reported extends that range
    /// when nothing else was reported between them. A driver starting thousands of
    /// small messages then takes a few events instead of one per message.
    ///
    /// ```
    /// # use netcore_core::{Config, Connection, Event, Instant, MessageHead, MessageId};
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
    /// a.set_sent_ranges(true);
    /// for _ in 0..3 {
    ///     a.send(MessageHead::to_route("temp"), "21.5".into()).unwrap();
    /// }
    /// # step(&mut a, &mut b);
    /// let sent: Vec<Event> = std::iter::from_fn(|| a.poll_event())
    ///     .filter(|e| matches!(e, Event::Sent { .. } | Event::SentRange { .. }))
    ///     .collect();
    /// assert_eq!(sent, [Event::SentRange { first: MessageId(1), count: 3 }]);
    /// ```
    pub fn set_sent_ranges(&mut self, on: bool) {
        self.send.sent_ranges = on;
    }
}

impl SendState {
    /// Whether a message frame may be ready: a message in an urgency ring, or
    /// connection credit left over while messages wait for it (`poll_message_frame`
    /// wakes them).
    #[inline]
    pub(super) fn has_scheduled(&self) -> bool {
        self.rings.iter().any(|r| !r.is_empty())
            || (self.conn_sent < self.peer_max_data
                && self.conn_blocked.iter().any(|q| !q.is_empty()))
    }
}

impl Connection {
    /// How many more messages [`send`](Self::send) or [`start`](Self::start) accept
    /// before they fail with `TooManyQueued` (`Config::max_queued_outgoing`).
    ///
    /// ```
    /// use netcore_core::{Config, Connection, Instant, MessageHead};
    /// let mut c = Connection::new(Config { max_queued_outgoing: 2, ..Config::tcp() }, Instant::ZERO);
    /// c.send(MessageHead::to_route("a"), "x".into()).unwrap();
    /// assert_eq!(c.outgoing_room(), 1);
    /// ```
    pub fn outgoing_room(&self) -> usize {
        self.config
            .max_queued_outgoing
            .saturating_sub(self.send.messages.len())
    }
}
