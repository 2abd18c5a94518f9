//! Incoming messages: handing them to a waiting request or the accept queue, parking
//! bodies while the application falls behind, and moving body bytes from the core into
//! each reader's buffer.
//!
//! Read-ahead is bounded in bytes: every message in the accept queue whose body the
//! driver reads ahead of the application is *charged* what its body can grow to (its
//! known length, at most `body_buffer`) plus a per-message overhead, and a new message
//! is parked (its body left in the core, where it counts against `max_incoming` and
//! the peer's credit) while the charges of queued messages would exceed
//! `PipeConfig::read_ahead`. A stream of small messages thus queues thousands before
//! parking, while large streamed bodies queue a few dozen.

use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::super::body::{BodyShared, IncomingBody};
use super::super::message::IncomingMessage;
use super::super::wire::Wire;
use super::Driver;
use netcore_core::{MessageHead, MessageId, ReadError, Urgency};

/// Non-default urgencies of requests remembered for their replies.
const URGENT_REQUESTS_KEPT: usize = 4096;

/// Most messages handed to the accept queue at once. Batches stay small allocations,
/// which the allocator reuses: batches of thousands (hundreds of KiB, allocated here
/// and freed by the application) were returned to the OS and faulted in again.
const ACCEPT_BATCH_MAX: usize = 256;

/// A hand-over of at least this many messages ends the driver's poll so that the
/// application's task can run on another worker meanwhile (see `poll_drive`). Below
/// it (single requests, a few in flight) the extra poll would cost more than it saves.
/// Measured with batched 64-byte messages on two workers: 1.5-1.8x the messages per
/// second for thresholds of 32-128, less from 1 (every hand-over) or 256.
const YIELD_AFTER_HANDING_OVER: usize = 32;

/// Charged per queued message beyond its body: the message's own memory.
const PER_MESSAGE_CHARGE: u64 = 512;

/// A parked message: its id, its place in the accept queue, its charge.
pub(crate) type Parked = (u64, u64, u64);

impl<W: Wire> Driver<W> {
    /// A new message from the peer: to the request waiting for it, or to the accept
    /// queue. Its body is read from the core before it is handed over, so a reader of
    /// a message that arrived whole finds it complete, with no lock to take.
    pub(super) fn incoming_message(&mut self, id: MessageId, head: MessageHead) {
        self.note_urgency(id, &head);
        if let Some(r) = head.reply_to {
            let msg = self.take_message(id, head);
            self.deliver_reply(id, r, msg);
            return;
        }
        // Parked messages come first (the application takes them first): while any
        // remain, a new one is parked behind them.
        if !self.parked.is_empty() {
            self.unpark();
        }
        let charge = self.charge(head.total_len);
        self.sync_taken();
        let park =
            self.accept_tx.is_some() && (!self.parked.is_empty() || !self.ahead_has_room(charge));
        let msg = if park {
            self.streaming_message(id, head).0
        } else {
            self.take_message(id, head)
        };
        if !self.accept(msg) {
            if park {
                self.pump(id.0);
            }
            return;
        }
        let index = self.queue_base + self.queue_charges.len() as u64;
        if park {
            if let Some(shared) = self.incoming.get(&id.0) {
                shared.parked.store(true, Ordering::Relaxed);
            }
            self.queue_charges.push_back(0);
            self.parked.push_back((id.0, index, charge));
            self.unpark();
        } else {
            self.queue_charges.push_back(charge);
            self.ahead_bytes += charge;
        }
    }

    /// A message the core handed over whole ([`Connection::set_whole_delivery`]): it
    /// kept nothing of it, so it is never parked; the core hands over whole only what
    /// fits in the read-ahead budget ([`Self::sync_whole_delivery`]).
    ///
    /// [`Connection::set_whole_delivery`]: netcore_core::Connection::set_whole_delivery
    pub(super) fn incoming_whole(&mut self, id: MessageId, head: MessageHead, body: Bytes) {
        self.note_urgency(id, &head);
        let (reply_to, total_len) = (head.reply_to, head.total_len);
        let msg = self.whole_message(id, head, Some(body));
        if let Some(r) = reply_to {
            self.deliver_reply(id, r, msg);
            return;
        }
        if !self.parked.is_empty() {
            self.unpark();
        }
        let charge = self.charge(total_len);
        self.sync_taken();
        if self.accept(msg) {
            self.queue_charges.push_back(charge);
            self.ahead_bytes += charge;
        }
    }

    /// Notes that an urgent message arrived, and a request's urgency for its reply.
    #[inline]
    fn note_urgency(&mut self, id: MessageId, head: &MessageHead) {
        self.urgent_in |= head.urgency < Urgency::DEFAULT;
        if head.urgency != Urgency::DEFAULT && head.reply_to.is_none() {
            if self.urgent_requests.len() >= URGENT_REQUESTS_KEPT {
                // Requests never answered: forget them rather than grow.
                self.urgent_requests.clear();
            }
            self.urgent_requests.insert(id.0, head.urgency);
        }
    }

    /// Hands reply `msg` to the request `request` waiting for it. The caller may have
    /// given up: a reply nobody waits for (or one answering a one-way message) is not
    /// a request, so it is dropped, which stops it.
    fn deliver_reply(&mut self, id: MessageId, request: MessageId, mut msg: IncomingMessage) {
        msg.body.attach_abandons(&self.abandons);
        match self.replies.remove(&request.0) {
            Some(tx) => drop(tx.send(Ok(msg))),
            None => {
                tracing::debug!(%id, "dropped a reply no request is waiting for");
                drop(msg)
            }
        }
    }

    /// Adds a message to this round's batch for the accept queue; `false` (the message
    /// dropped) if nobody accepts any more.
    fn accept(&mut self, msg: IncomingMessage) -> bool {
        if self.accept_tx.as_ref().is_none_or(|tx| tx.is_abandoned()) {
            drop(msg);
            return false;
        }
        // Handed over with the others of this dispatch round (`flush_accepted`).
        self.accept_batch.push_back(msg);
        if self.accept_batch.len() >= ACCEPT_BATCH_MAX {
            self.flush_accepted();
        }
        true
    }

    /// Gives the core the read-ahead budget left for messages it hands over whole:
    /// none while messages are parked (they are taken first), the room left otherwise.
    pub(super) fn sync_whole_delivery(&mut self) {
        self.sync_taken();
        let room = if self.parked.is_empty() {
            (self.config.read_ahead as u64).saturating_sub(self.ahead_bytes)
        } else {
            0
        };
        self.conn.set_whole_delivery(room, PER_MESSAGE_CHARGE);
    }

    /// Hands the messages of this dispatch round to the accept queue at once: one
    /// channel operation and one wake-up for the application per round.
    #[inline]
    pub(super) fn flush_accepted(&mut self) {
        // Checked inline: most dispatch rounds hand nothing over.
        if !self.accept_batch.is_empty() {
            self.hand_over_accepted();
        }
    }

    fn hand_over_accepted(&mut self) {
        self.handed_over_many |= self.accept_batch.len() >= YIELD_AFTER_HANDING_OVER;
        match &mut self.accept_tx {
            // The batch is swapped for a spare buffer of the queue.
            Some(tx) => tx.hand_over(&mut self.accept_batch),
            // Dropped: their bodies tell the peer if need be.
            None => self.accept_batch.clear(),
        }
    }

    /// What a queued message may come to hold: its body's announced length, at most
    /// `body_buffer`, plus its own memory.
    fn charge(&self, total_len: Option<u64>) -> u64 {
        let cap = self.config.body_buffer as u64;
        total_len.map_or(cap, |l| l.min(cap)) + PER_MESSAGE_CHARGE
    }

    /// Whether `charge` more fits in the read-ahead budget (one message always does).
    fn ahead_has_room(&self, charge: u64) -> bool {
        self.ahead_bytes == 0 || self.ahead_bytes + charge <= self.config.read_ahead as u64
    }

    /// Drops the charges of the messages the application has taken.
    fn sync_taken(&mut self) {
        let taken = self.accepted.taken.load(Ordering::SeqCst);
        while self.queue_base < taken {
            match self.queue_charges.pop_front() {
                Some(c) => self.ahead_bytes -= c,
                None => break,
            }
            self.queue_base += 1;
        }
    }

    /// A message with its body read from the core: handed over whole (no lock, no
    /// driver link) when it all arrived in one chunk, else as a stream.
    fn take_message(&mut self, id: MessageId, head: MessageHead) -> IncomingMessage {
        // The usual small message: complete, in one piece, taken in one call.
        if let Some(body) = self.conn.read_whole(id) {
            return self.whole_message(id, head, Some(body));
        }
        let first = match self.conn.read(id, 0) {
            Ok(None) => return self.whole_message(id, head, None),
            // A full buffer's worth is all a reader gets ahead (`pump_into`).
            Ok(Some(chunk)) if chunk.len() >= self.config.body_buffer => {
                return self.pumped_message(id, head, Some(chunk))
            }
            Ok(Some(chunk)) => chunk,
            Err(_) => return self.pumped_message(id, head, None),
        };
        match self.conn.read(id, 0) {
            Ok(None) => self.whole_message(id, head, Some(first)),
            Ok(Some(second)) => {
                let (msg, shared) = self.streaming_message(id, head);
                shared.push(first);
                shared.push(second);
                self.pump_into(id.0, &shared);
                msg
            }
            Err(_) => self.pumped_message(id, head, Some(first)),
        }
    }

    fn whole_message(
        &mut self,
        id: MessageId,
        head: MessageHead,
        body: Option<Bytes>,
    ) -> IncomingMessage {
        let total = head.total_len;
        IncomingMessage {
            id,
            head,
            connection: self.id,
            body: IncomingBody::whole(id, total, body),
        }
    }

    /// A message whose body is still arriving: `first` already read, the rest pumped.
    fn pumped_message(
        &mut self,
        id: MessageId,
        head: MessageHead,
        first: Option<Bytes>,
    ) -> IncomingMessage {
        let (msg, shared) = self.streaming_message(id, head);
        if let Some(c) = first {
            shared.push(c);
        }
        self.pump_into(id.0, &shared);
        msg
    }

    /// A message whose body the driver will pump into a shared buffer, and that buffer.
    fn streaming_message(
        &mut self,
        id: MessageId,
        head: MessageHead,
    ) -> (IncomingMessage, Arc<BodyShared>) {
        let shared = BodyShared::new(head.total_len, self.config.body_buffer);
        self.incoming.insert(id.0, shared.clone());
        let msg = IncomingMessage {
            id,
            head,
            connection: self.id,
            body: IncomingBody::new(id, shared.clone(), self.cmd_tx.clone()),
        };
        (msg, shared)
    }

    /// Resumes parked messages as the read-ahead budget allows (the queue is FIFO, so
    /// parked messages are its tail); while some stay parked, asks the application to
    /// report what it takes (`AcceptCount::waiting`).
    pub(super) fn unpark(&mut self) {
        loop {
            self.sync_taken();
            while let Some(&(id, index, charge)) = self.parked.front() {
                if !self.ahead_has_room(charge) {
                    break;
                }
                self.parked.pop_front();
                if index >= self.queue_base {
                    // Still queued: its body is read ahead from now on.
                    if let Some(c) = self
                        .queue_charges
                        .get_mut((index - self.queue_base) as usize)
                    {
                        *c = charge;
                        self.ahead_bytes += charge;
                    }
                }
                if let Some(shared) = self.incoming.get(&id) {
                    shared.parked.store(false, Ordering::Relaxed);
                }
                self.pump(id);
            }
            if self.parked.is_empty() {
                self.accepted.waiting.store(false, Ordering::Relaxed);
                return;
            }
            // Set since before the counts above were read: a later take reports itself.
            if self.accepted.waiting.swap(true, Ordering::SeqCst) {
                return;
            }
            // Newly set: takes in between did not see it; count again.
        }
    }

    /// Moves buffered body bytes of an incoming message from the core into its reader's
    /// buffer, as far as that buffer has room.
    pub(super) fn pump(&mut self, id: u64) {
        let Some(shared) = self.incoming.get(&id).cloned() else {
            return;
        };
        if shared.parked.load(Ordering::Relaxed) {
            return;
        }
        self.pump_into(id, &shared);
        shared.wake();
    }

    pub(super) fn pump_into(&mut self, id: u64, shared: &Arc<BodyShared>) {
        let mut full = !shared.has_room();
        loop {
            // Once full, the reader resumes us when it has drained half (`Resume`).
            if full && shared.park_if_full() {
                return;
            }
            match self.conn.read(MessageId(id), 0) {
                Ok(Some(chunk)) => full = shared.push(chunk),
                Ok(None) => {
                    shared.finish(Ok(()));
                    self.incoming.remove(&id);
                    return;
                }
                Err(ReadError::Blocked) | Err(_) => return,
            }
        }
    }
}
