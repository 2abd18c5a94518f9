//! Serial-profile loss recovery.
//!
//! The link layer numbers every frame and reports gaps; this side answers a gap with
//! NACK. The sender keeps a short history of what each recent link frame carried, so a
//! NACK tells it exactly what was lost:
//!
//! - a frame of a message (START/DATA/END): that message fails on both sides with
//!   `FRAME_LOST` (CANCEL tells the receiver to drop its partial copy), and the lost body
//!   bytes are refunded to the connection credit, which the receiver never counted;
//! - a CANCEL, GOAWAY, ERROR or NACK: sent again;
//! - a credit frame: all current credit is sent again (credit values are absolute, so
//!   repeating them is harmless);
//! - PING, PONG, HELLO: nothing (keepalive and the HELLO retry cover them).
//!
//! Other messages are untouched: a damaged byte costs the frames it hit.

use super::Connection;
use crate::codes::ErrorCode;
use crate::error::MessageError;
use crate::event::{Event, MessageId};
use crate::frame::{Cancel, CancelSide, Frame, Nack};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

/// What a sent link frame carried, as far as recovery cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// A START, DATA or END of outgoing message `id` with `body` body bytes; a START
    /// that defined interned route `route_defined` (0: none).
    Message {
        id: u64,
        body: u64,
        route_defined: u64,
    },
    /// A frame to repeat as is if lost.
    Repeat(RepeatKind),
    /// A credit frame.
    Credit,
    /// Nothing to do if lost.
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RepeatKind {
    Cancel(Cancel),
    Nack(Nack),
    /// GOAWAY and ERROR are rebuilt from connection state.
    GoAway,
}

impl Sent {
    pub(crate) fn of_control(frame: &Frame) -> Sent {
        match frame {
            Frame::Cancel(c) => Sent::Repeat(RepeatKind::Cancel(*c)),
            Frame::Nack(n) => Sent::Repeat(RepeatKind::Nack(*n)),
            Frame::GoAway(_) | Frame::Error(_) => Sent::Repeat(RepeatKind::GoAway),
            Frame::MaxData(_) | Frame::MaxMessages(_) | Frame::MaxMessageData { .. } => {
                Sent::Credit
            }
            _ => Sent::Nothing,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u16,
    what: Sent,
}

/// A ring of the last N link frames sent, indexed by sequence number.
#[derive(Debug)]
pub(crate) struct History {
    entries: Vec<Option<Entry>>,
}

impl History {
    pub(crate) fn new(capacity: usize) -> History {
        // At most 2^15 so an index never aliases two live sequence numbers.
        let capacity = capacity.clamp(16, 1 << 15);
        History {
            entries: alloc::vec![None; capacity],
        }
    }

    pub(crate) fn record(&mut self, seq: u16, what: Sent) {
        let i = usize::from(seq) % self.entries.len();
        self.entries[i] = Some(Entry { seq, what });
    }

    fn lookup(&self, seq: u16) -> Option<Sent> {
        let i = usize::from(seq) % self.entries.len();
        self.entries[i].filter(|e| e.seq == seq).map(|e| e.what)
    }

    fn capacity(&self) -> u64 {
        self.entries.len() as u64
    }
}

impl Connection {
    pub(super) fn queue_nack(&mut self, first_seq: u16, count: u64) {
        if self.history.is_some() {
            self.control
                .push_back(Frame::Nack(Nack { first_seq, count }));
        }
    }

    pub(super) fn handle_nack(&mut self, nack: Nack) {
        let Some(history) = self.history.as_ref() else {
            return;
        };
        self.frames_nacked += nack.count;
        let count = nack.count.min(history.capacity());
        let mut lost_messages = BTreeSet::new();
        let mut forgotten = nack.count > count;
        let mut repeat = Vec::new();
        let mut credit = false;
        for k in 0..count {
            let seq = nack.first_seq.wrapping_add(k as u16);
            match history.lookup(seq) {
                Some(Sent::Message {
                    id,
                    body,
                    route_defined,
                }) => {
                    self.send.refund(body);
                    if route_defined != 0 {
                        self.send.forget_route(route_defined);
                    }
                    lost_messages.insert(id);
                }
                Some(Sent::Repeat(r)) => repeat.push(r),
                Some(Sent::Credit) => credit = true,
                Some(Sent::Nothing) => {}
                None => forgotten = true,
            }
        }
        if forgotten {
            // Too old to attribute: fail every outgoing message rather than guess, and
            // define every route afresh (the lost frames may have interned one).
            lost_messages.extend(self.send.outgoing_ids());
            self.send.forget_all_routes();
            credit = true;
        }
        for r in repeat {
            match r {
                RepeatKind::Cancel(c) => self.control.push_back(Frame::Cancel(c)),
                RepeatKind::Nack(n) => self.control.push_back(Frame::Nack(n)),
                RepeatKind::GoAway => self.repeat_close_frame(),
            }
        }
        if credit {
            self.recv.resend_credit();
        }
        for id in lost_messages {
            // One Stopped per message: not again if an earlier NACK or the receiver's
            // CANCEL already reported it.
            let in_flight = self.send.contains(id);
            if in_flight || self.send.forget_recently_sent(id) {
                // The event first: dropping the message may complete a graceful close,
                // and Closed must be the last event.
                self.events.push_back(Event::Stopped {
                    id: MessageId(id),
                    error: MessageError::FrameLost,
                });
            }
            if in_flight {
                self.drop_outgoing(id, ErrorCode::FRAME_LOST);
            } else {
                // Already fully sent: the receiver may still hold a partial copy.
                self.control.push_back(Frame::Cancel(Cancel {
                    id,
                    side: CancelSide::Sender,
                    code: ErrorCode::FRAME_LOST,
                }));
            }
        }
    }

    fn repeat_close_frame(&mut self) {
        if let Some(last_id) = self.goaway_sent {
            self.control.push_back(Frame::GoAway(crate::frame::GoAway {
                last_id,
                code: ErrorCode::NO_ERROR,
                reason: bytes::Bytes::new(),
            }));
        }
    }
}
