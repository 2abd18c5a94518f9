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

    /// Builds and emits one frame of message `id`: its START (head only if
    /// `head_only`), or a DATA/END frame. The message is updated in place; it leaves
    /// the map only when this frame ends it.
    /// Returns whether the message left the map (this frame ended it, or it was void).
    fn emit_message_frame(&mut self, id: u64, head_only: bool, buf: &mut Vec<u8>) -> bool {
        // Payload size: ours and the peer's limit, and what is left of the batch being
        // transmitted (less kind and length, at most 1 + 4 bytes).
        let frame_size = self
            .send_frame_size()
            .min(self.frame_room.saturating_sub(5));
        let send = &mut self.send;
        let window = send.peer_message_window;
        let conn_room = send.peer_max_data.saturating_sub(send.conn_sent);
        let Some(o) = send.messages.get_mut(id) else {
            return true;
        };
        if o.void {
            let urgency = o.urgency;
            send.messages.delete(id);
            remove_unstarted(&mut send.unstarted, id);
            let frame = Frame::Start(Start {
                id8: id as u8,
                urgency,
                fin: false,
                reply_to: None,
                route: Some(RouteField::Ref(0)),
                metadata: None,
                total_len: None,
                body: Bytes::new(),
            });
            let what = Sent::Message {
                id,
                body: 0,
                route_defined: 0,
            };
            self.emit(buf, &frame, what);
            self.maybe_finish_close();
            return true;
        }
        let send_buffer = self.config.send_buffer;
        if let Some(head) = o.head.as_mut() {
            // The START, encoded from the message's state by reference (no `Start` is
            // built, nothing of the head is moved): what it needs is read here, the
            // head itself goes with the state.
            remove_unstarted(&mut send.unstarted, id);
            let route = head.route.as_deref().map(|r| send.routes.field(r));
            let route_defined = match &route {
                Some(RouteField::Literal { intern_as, .. }) => *intern_as,
                _ => 0,
            };
            let metadata = (!head.metadata.is_empty()).then(|| core::mem::take(&mut head.metadata));
            let (urgency, reply_to) = (head.urgency, head.reply_to.map(|r| r.0));
            o.credit = window;
            // A body given whole has a known length even if none was announced.
            let total_len = o.total_len.or(o.finished.then_some(o.written));
            static EMPTY: Bytes = Bytes::new();
            let mut parts = StartParts {
                id8: id as u8,
                urgency,
                fin: false,
                reply_to,
                route: route.as_ref(),
                metadata: metadata.as_ref(),
                total_len,
                body: &EMPTY,
            };
            let mut n = 0;
            let mut head_len = None;
            if !head_only && o.queued > 0 {
                let len = parts.head_len();
                head_len = Some(len);
                let room = frame_size.saturating_sub(len);
                n = o
                    .queued
                    .min(room)
                    .min(o.credit as usize)
                    .min(conn_room as usize);
            }
            // The body: the whole front chunk (the usual case) is encoded where it lies
            // and let go afterwards; a part of it or of several is taken out first.
            let whole_chunk = n > 0 && o.queue.front().map(Bytes::len) == Some(n);
            let split = if n > 0 && !whole_chunk {
                o.queued -= n;
                Some(take_body_split(o, n))
            } else {
                None
            };
            let left = if whole_chunk { o.queued - n } else { o.queued };
            // The whole body in this frame (the usual small message): the frame's
            // length says it all, the length field is left out.
            let done = o.finished && left == 0;
            if done {
                if let (Some(len), Some(total)) = (head_len.as_mut(), parts.total_len) {
                    *len -= crate::varint::encoded_len(total);
                }
                parts.total_len = None;
            }
            parts.fin = done;
            if whole_chunk {
                if let Some(front) = o.queue.front() {
                    parts.body = front;
                }
            } else if let Some(b) = &split {
                parts.body = b;
            }
            let body_len = parts.body.len() as u64;
            let what = Sent::Message {
                id,
                body: body_len,
                route_defined,
            };
            let head_len = head_len.unwrap_or_else(|| parts.head_len());
            // `self.emitter()`, spelled out: the message state stays borrowed.
            let out = Emitter {
                splices: &mut self.splices,
                writer: &mut self.writer,
                history: &mut self.history,
                frames_sent: &mut self.frames_sent,
                tail_probe_at: &mut self.tail_probe_at,
                now: self.now,
                rtt: self.rtt,
            };
            out.emit(buf, &StartWithLen(&parts, head_len), what);
            drop(split);
            if whole_chunk {
                o.queued -= n;
                if !done {
                    o.queue.pop_front();
                }
            }
            let writable = SendState::book(o, body_len, done, send_buffer);
            if !done {
                o.head = None;
            }
            send.conn_sent += body_len;
            if done {
                // Drops the state with its body chunk.
                send.ended(id);
            }
            self.after_message_frame(id, done, writable);
            return done;
        }
        let head_len = Data::head_len(id, o.offset);
        let credit_room = (o.credit - o.offset.min(o.credit)) as usize;
        let n = o
            .queued
            .min(frame_size.saturating_sub(head_len))
            .min(credit_room)
            .min(conn_room as usize);
        let n = body_len_at_chunk_end(o, n);
        let offset = o.offset;
        let body = take_body(o, n);
        let data = Data {
            id,
            offset,
            end: o.finished && o.queued == 0,
            body,
        };
        let body_len = data.body.len() as u64;
        let done = data.end;
        let what = Sent::Message {
            id,
            body: body_len,
            route_defined: 0,
        };
        let writable = SendState::book(o, body_len, done, send_buffer);
        send.conn_sent += body_len;
        if done {
            send.ended(id);
        }
        self.emit(buf, &data, what);
        drop(data);
        self.after_message_frame(id, done, writable);
        done
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

    /// Reports message `id` fully sent.
    #[inline]
    fn report_sent(&mut self, id: u64) {
        if !self.send.sent_ranges {
            self.events.push_back(Event::Sent { id: MessageId(id) });
            return;
        }
        // Extends the range reported last if nothing came after it; events keep their
        // order either way.
        if let Some(Event::SentRange { first, count }) = self.events.back_mut() {
            if first.0 + *count == id {
                *count += 1;
                return;
            }
        }
        self.events.push_back(Event::SentRange {
            first: MessageId(id),
            count: 1,
        });
    }

    /// Events and close progress after a message frame went out.
    #[inline]
    fn after_message_frame(&mut self, id: u64, done: bool, writable: bool) {
        if done {
            self.report_sent(id);
            self.maybe_finish_close();
        } else if writable {
            self.events.push_back(Event::Writable { id: MessageId(id) });
        }
    }
}

impl SendState {
    /// Books a frame of `body_len` body bytes of message `id` (held in `o`) as sent;
    /// whether the message became writable again. If the frame ended it (`done`),
    /// the caller then calls [`ended`](Self::ended).
    #[inline]
    fn book(o: &mut Outgoing, body_len: u64, done: bool, send_buffer: usize) -> bool {
        o.offset += body_len;
        let writable = !done && o.blocked && o.queued <= send_buffer / 2;
        if writable {
            o.blocked = false;
        }
        writable
    }

    /// Whether a message frame may be ready: a message in an urgency ring, or
    /// connection credit left over while messages wait for it (`poll_message_frame`
    /// wakes them).
    #[inline]
    pub(super) fn has_scheduled(&self) -> bool {
        self.rings.iter().any(|r| !r.is_empty())
            || (self.conn_sent < self.peer_max_data
                && self.conn_blocked.iter().any(|q| !q.is_empty()))
    }

    /// Forgets fully sent message `id`, remembering it as recently sent.
    #[inline]
    fn ended(&mut self, id: u64) {
        self.messages.delete(id);
        if self.recently_sent.len() >= RECENTLY_SENT {
            self.recently_sent.pop_front();
        }
        self.recently_sent.push_back(id);
    }
}

/// Takes `n` body bytes off the front of a message's queue, without copying when they
/// lie in one chunk.
#[inline]
fn take_body(o: &mut Outgoing, n: usize) -> Bytes {
    if n == 0 {
        return Bytes::new();
    }
    o.queued -= n;
    let Some(front) = o.queue.front_mut() else {
        return Bytes::new();
    };
    if front.len() == n {
        // The common case, a whole chunk: moved, not split (and inlined, so that the
        // chunk moves through registers rather than a returned copy).
        return o.queue.pop_front().unwrap_or_default();
    }
    take_body_split(o, n)
}

/// Chunks at least this long end a DATA frame rather than be copied together with the
/// next one: past a few KiB, a copy costs more than the extra frame header.
const CHUNK_OWN_FRAME: usize = 4096;

/// The body length of a DATA frame allowed `n` bytes: `n`, or less so that the frame
/// ends where the front chunk ends, when it would otherwise copy a large chunk (the
/// front one or the next) into a buffer of its own. Streamed bodies arrive in large
/// pieces that frames rarely divide evenly; small pieces are still coalesced.
#[inline]
fn body_len_at_chunk_end(o: &Outgoing, n: usize) -> usize {
    let Some(front) = o.queue.front() else {
        return n;
    };
    if front.len() >= n {
        return n;
    }
    let next_is_large = o.queue.second().is_some_and(|c| c.len() >= CHUNK_OWN_FRAME);
    if front.len() >= CHUNK_OWN_FRAME || next_is_large {
        front.len()
    } else {
        n
    }
}

/// [`take_body`] when the frame takes part of a chunk or several.
#[cold]
fn take_body_split(o: &mut Outgoing, n: usize) -> Bytes {
    let Some(front) = o.queue.front_mut() else {
        return Bytes::new();
    };
    if front.len() > n {
        return front.split_to(n);
    }
    let mut out = BytesMut::with_capacity(n);
    while out.len() < n {
        let Some(front) = o.queue.front_mut() else {
            break;
        };
        let take = (n - out.len()).min(front.len());
        out.extend_from_slice(&front.split_to(take));
        if front.is_empty() {
            o.queue.pop_front();
        }
    }
    out.freeze()
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
