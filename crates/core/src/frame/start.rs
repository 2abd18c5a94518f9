//! START (0x01): begins a message, and when its FIN flag is set also ends it, so a small
//! request or response is exactly one frame.
//!
//! Payload: `id8:u8 flags:u8 [reply_to:varint] [route] [metadata] [total_len:varint] body`.
//! `id8` is the low 8 bits of the message id; the receiver knows the next id it expects
//! and reconstructs the full id (docs/PROTOCOL.md §5.1), which keeps a small message at 4
//! bytes of framing however long the connection has run.

use super::Reader;
use crate::codes::Urgency;
use crate::error::FrameError;
use crate::varint::{self, encoded_len as vl};
use alloc::vec::Vec;
use bytes::{Buf, Bytes};

/// Flag bits of a START frame. Bits 0–2 hold the urgency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartFlags;

impl StartFlags {
    /// Mask of the urgency bits.
    pub const URGENCY_MASK: u8 = 0x07;
    /// This frame also ends the message.
    pub const FIN: u8 = 0x08;
    /// A route field is present.
    pub const ROUTE: u8 = 0x10;
    /// A metadata field is present.
    pub const METADATA: u8 = 0x20;
    /// A total body length is present.
    pub const LENGTH: u8 = 0x40;
    /// A reply-to correlation id is present: this message answers the receiver's message.
    pub const REPLY: u8 = 0x80;
}

/// The route field of a START frame: one varint `code`, then a literal if `code` is odd.
///
/// - odd `code`: a UTF-8 literal follows (`len:varint bytes`); if `code >> 1` is not
///   zero the receiver stores it as interned route number `code >> 1`;
/// - even `code`: a reference to interned route `code >> 1`; code 0 marks a void
///   message (cancelled before it began; its id is used up, nothing is delivered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteField {
    /// A route name sent in full, optionally interned under a number.
    Literal {
        /// Interned number to store it under (0 = don't intern).
        intern_as: u64,
        /// The route's bytes (validated as UTF-8 by the connection).
        name: Bytes,
    },
    /// A previously interned route. `Ref(0)` (code 0) marks a *void* message: the
    /// sender cancelled it before it began and only uses up its id.
    Ref(u64),
}

impl RouteField {
    fn encoded_len(&self) -> usize {
        match self {
            RouteField::Literal { intern_as, name } => {
                vl((intern_as << 1) | 1) + vl(name.len() as u64) + name.len()
            }
            RouteField::Ref(n) => vl(n << 1),
        }
    }
}

/// A decoded START frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// Low 8 bits of the message id.
    pub id8: u8,
    /// Scheduling class chosen by the sender.
    pub urgency: Urgency,
    /// The frame ends the message.
    pub fin: bool,
    /// The receiver's message this one answers.
    pub reply_to: Option<u64>,
    /// The route.
    pub route: Option<RouteField>,
    /// Opaque metadata block (the app layer stores headers here; docs/PROTOCOL.md §9).
    pub metadata: Option<Bytes>,
    /// Total body length when known in advance.
    pub total_len: Option<u64>,
    /// First body bytes.
    pub body: Bytes,
}

impl Start {
    /// Decodes a START payload. Takes the payload so that the body is the payload
    /// itself, advanced past the head (no reference count traffic for it).
    #[inline]
    pub(crate) fn load_owned(mut payload: Bytes) -> Result<Start, FrameError> {
        let mut r = Reader::new(&payload, crate::codes::FrameKind::START);
        let mut start = Start::load_head(&mut r, &payload)?;
        let body_at = r.rest().start;
        payload.advance(body_at);
        start.body = payload;
        Ok(start)
    }

    /// Decodes everything but the body (left empty).
    #[inline]
    fn load_head(r: &mut Reader<'_>, payload: &Bytes) -> Result<Start, FrameError> {
        let id8 = r.u8()?;
        let flags = r.u8()?;
        let reply_to = if flags & StartFlags::REPLY != 0 {
            Some(r.varint()?)
        } else {
            None
        };
        let route = if flags & StartFlags::ROUTE != 0 {
            let code = r.varint()?;
            if code & 1 == 1 {
                let len = r.varint()?;
                let range = r.take(len)?;
                Some(RouteField::Literal {
                    intern_as: code >> 1,
                    name: payload.slice(range),
                })
            } else {
                Some(RouteField::Ref(code >> 1))
            }
        } else {
            None
        };
        let metadata = if flags & StartFlags::METADATA != 0 {
            let len = r.varint()?;
            Some(payload.slice(r.take(len)?))
        } else {
            None
        };
        let total_len = if flags & StartFlags::LENGTH != 0 {
            Some(r.varint()?)
        } else {
            None
        };
        Ok(Start {
            id8,
            urgency: Urgency::new(flags & StartFlags::URGENCY_MASK),
            fin: flags & StartFlags::FIN != 0,
            reply_to,
            route,
            metadata,
            total_len,
            body: Bytes::new(),
        })
    }

    /// The flags byte this frame encodes to.
    pub fn flags(&self) -> u8 {
        self.parts().flags()
    }

    /// Bytes of the payload before the body.
    pub fn head_len(&self) -> usize {
        self.parts().head_len()
    }

    /// The fields by reference.
    #[inline]
    pub(crate) fn parts(&self) -> StartParts<'_> {
        StartParts {
            id8: self.id8,
            urgency: self.urgency,
            fin: self.fin,
            reply_to: self.reply_to,
            route: self.route.as_ref(),
            metadata: self.metadata.as_ref(),
            total_len: self.total_len,
            body: &self.body,
        }
    }

    pub(crate) fn payload_len(&self) -> usize {
        self.head_len() + self.body.len()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        self.encode_head(out);
        out.extend_from_slice(&self.body);
    }

    /// The payload up to (not including) the body.
    pub(crate) fn encode_head(&self, out: &mut Vec<u8>) {
        self.parts().encode_head(out)
    }
}

/// A START's fields by reference: what the sender encodes from its message state
/// without building a [`Start`] (the one encoder of both).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StartParts<'a> {
    pub(crate) id8: u8,
    pub(crate) urgency: Urgency,
    pub(crate) fin: bool,
    pub(crate) reply_to: Option<u64>,
    pub(crate) route: Option<&'a RouteField>,
    pub(crate) metadata: Option<&'a Bytes>,
    pub(crate) total_len: Option<u64>,
    pub(crate) body: &'a Bytes,
}

impl StartParts<'_> {
    /// The flags byte.
    #[inline]
    pub(crate) fn flags(&self) -> u8 {
        let mut f = self.urgency.get();
        if self.fin {
            f |= StartFlags::FIN;
        }
        if self.route.is_some() {
            f |= StartFlags::ROUTE;
        }
        if self.metadata.is_some() {
            f |= StartFlags::METADATA;
        }
        if self.total_len.is_some() {
            f |= StartFlags::LENGTH;
        }
        if self.reply_to.is_some() {
            f |= StartFlags::REPLY;
        }
        f
    }

    /// Bytes of the payload before the body.
    #[inline]
    pub(crate) fn head_len(&self) -> usize {
        2 + self.reply_to.map_or(0, vl)
            + self.route.map_or(0, RouteField::encoded_len)
            + self.metadata.map_or(0, |m| vl(m.len() as u64) + m.len())
            + self.total_len.map_or(0, vl)
    }

    /// The payload up to (not including) the body.
    #[inline]
    pub(crate) fn encode_head(&self, out: &mut Vec<u8>) {
        out.push(self.id8);
        out.push(self.flags());
        if let Some(r) = self.reply_to {
            varint::encode(r, out);
        }
        match self.route {
            Some(RouteField::Literal { intern_as, name }) => {
                varint::encode((intern_as << 1) | 1, out);
                varint::encode(name.len() as u64, out);
                out.extend_from_slice(name);
            }
            Some(RouteField::Ref(n)) => varint::encode(n << 1, out),
            None => {}
        }
        if let Some(m) = self.metadata {
            varint::encode(m.len() as u64, out);
            out.extend_from_slice(m);
        }
        if let Some(t) = self.total_len {
            varint::encode(t, out);
        }
    }
}

/// A START's fixed fields (all but route, metadata and body).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StartHead {
    pub(crate) id8: u8,
    pub(crate) urgency: Urgency,
    pub(crate) fin: bool,
    pub(crate) reply_to: Option<u64>,
    pub(crate) total_len: Option<u64>,
}

/// A START without route literal or metadata (the usual one), parsed in place.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlainStart {
    pub(crate) head: StartHead,
    /// Interned route number (0: a void message), if a route field is present.
    pub(crate) route: Option<u64>,
    /// Offset of the body in the payload.
    pub(crate) body_at: usize,
}

impl PlainStart {
    /// Parses `payload` if it is a well-formed START without route literal and
    /// metadata; `None` for anything else (which [`Start::load_owned`] then handles,
    /// errors included).
    #[inline]
    pub(crate) fn parse(payload: &[u8]) -> Option<PlainStart> {
        let mut r = Reader::new(payload, crate::codes::FrameKind::START);
        let id8 = r.u8().ok()?;
        let flags = r.u8().ok()?;
        if flags & StartFlags::METADATA != 0 {
            return None;
        }
        let reply_to = if flags & StartFlags::REPLY != 0 {
            Some(r.varint().ok()?)
        } else {
            None
        };
        let route = if flags & StartFlags::ROUTE != 0 {
            let code = r.varint().ok()?;
            if code & 1 == 1 {
                return None;
            }
            Some(code >> 1)
        } else {
            None
        };
        let total_len = if flags & StartFlags::LENGTH != 0 {
            Some(r.varint().ok()?)
        } else {
            None
        };
        Some(PlainStart {
            head: StartHead {
                id8,
                urgency: Urgency::new(flags & StartFlags::URGENCY_MASK),
                fin: flags & StartFlags::FIN != 0,
                reply_to,
                total_len,
            },
            route,
            body_at: r.rest().start,
        })
    }
}
