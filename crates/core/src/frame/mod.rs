//! Frames: the unit of the wire protocol, one file per kind family with `load`/`encode`.
//!
//! Every frame is `kind: u8 | payload_len: varint | payload`. The length prefix lets a
//! receiver skip kinds it does not know, and lets it reject an oversized frame before
//! buffering it. This module owns the byte layout only; what a frame *means* for a
//! connection lives in `connection`.

mod close;
mod control;
mod data;
mod hello;
mod start;

pub use close::{ErrorFrame, GoAway};
pub use control::{Cancel, CancelSide, Nack};
pub use data::Data;
pub use hello::{Capabilities, Hello, MAGIC, VERSION};
pub(crate) use start::{PlainStart, StartHead, StartParts};
pub use start::{RouteField, Start, StartFlags};

use crate::codes::FrameKind;
use crate::error::FrameError;
use crate::varint;
use alloc::vec::Vec;
use bytes::Bytes;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Handshake.
    Hello(Hello),
    /// Message start.
    Start(Start),
    /// Body bytes (DATA, or END when `data.end`).
    Data(Data),
    /// Abort of one message.
    Cancel(Cancel),
    /// Connection credit: the peer may send body bytes up to this total.
    MaxData(u64),
    /// Message credit: the peer may send message `id`'s body up to offset `max`.
    MaxMessageData {
        /// The message, an id of the credit receiver's direction.
        id: u64,
        /// Highest body offset (exclusive) allowed.
        max: u64,
    },
    /// Message-count credit: the peer may start messages with ids up to this value.
    MaxMessages(u64),
    /// Keepalive probe with an opaque value echoed by PONG.
    Ping(u64),
    /// Keepalive answer.
    Pong(u64),
    /// Graceful close.
    GoAway(GoAway),
    /// Fatal connection error.
    Error(ErrorFrame),
    /// Serial profile: lost link frames.
    Nack(Nack),
    /// A kind this version does not know; skipped.
    Unknown {
        /// Its kind byte.
        kind: FrameKind,
        /// Its payload length.
        len: usize,
    },
}

/// A parsed frame header: kind, payload length, and header length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Frame kind.
    pub kind: FrameKind,
    /// Length of the payload after the header.
    pub payload_len: usize,
    /// Length of the header itself (1 + varint).
    pub header_len: usize,
}

impl Header {
    /// Parses a header from the front of `input`; `Ok(None)` if more bytes are needed.
    ///
    /// `max_payload` is checked before anything is buffered, so a length claiming
    /// gigabytes is rejected as soon as its varint is complete.
    pub fn parse(input: &[u8], max_payload: usize) -> Result<Option<Header>, FrameError> {
        let Some(&kind) = input.first() else {
            return Ok(None);
        };
        let (len, n) = match varint::decode(&input[1..]) {
            Ok(v) => v,
            Err(varint::VarintError::Incomplete) => return Ok(None),
            Err(varint::VarintError::Overflow) => return Err(FrameError::BadVarint),
        };
        let kind = FrameKind(kind);
        if len > max_payload as u64 {
            return Err(FrameError::TooLarge {
                kind,
                len,
                max: max_payload as u64,
            });
        }
        Ok(Some(Header {
            kind,
            payload_len: len as usize,
            header_len: 1 + n,
        }))
    }
}

impl Frame {
    /// Decodes a frame's payload given its kind. `payload` is exactly the frame payload.
    pub fn load(kind: FrameKind, payload: Bytes) -> Result<Frame, FrameError> {
        match kind {
            FrameKind::START => return Ok(Frame::Start(Start::load_owned(payload)?)),
            FrameKind::DATA | FrameKind::END => {
                return Ok(Frame::Data(Data::load_owned(
                    payload,
                    kind == FrameKind::END,
                )?))
            }
            _ => {}
        }
        let mut r = Reader::new(&payload, kind);
        let frame = match kind {
            FrameKind::HELLO => Frame::Hello(Hello::load(&mut r)?),
            FrameKind::CANCEL => Frame::Cancel(Cancel::load(&mut r)?),
            FrameKind::MAX_DATA => Frame::MaxData(r.varint()?),
            FrameKind::MAX_MESSAGE_DATA => Frame::MaxMessageData {
                id: r.varint()?,
                max: r.varint()?,
            },
            FrameKind::MAX_MESSAGES => Frame::MaxMessages(r.varint()?),
            FrameKind::PING => Frame::Ping(r.varint()?),
            FrameKind::PONG => Frame::Pong(r.varint()?),
            FrameKind::GOAWAY => Frame::GoAway(GoAway::load(&mut r, &payload)?),
            FrameKind::ERROR => Frame::Error(ErrorFrame::load(&mut r, &payload)?),
            FrameKind::NACK => Frame::Nack(Nack::load(&mut r)?),
            _ => {
                return Ok(Frame::Unknown {
                    kind,
                    len: payload.len(),
                })
            }
        };
        Ok(frame)
    }

    /// The frame's kind byte.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Hello(_) => FrameKind::HELLO,
            Frame::Start(_) => FrameKind::START,
            Frame::Data(d) => Data::kind_for(d.end),
            Frame::Cancel(_) => FrameKind::CANCEL,
            Frame::MaxData(_) => FrameKind::MAX_DATA,
            Frame::MaxMessageData { .. } => FrameKind::MAX_MESSAGE_DATA,
            Frame::MaxMessages(_) => FrameKind::MAX_MESSAGES,
            Frame::Ping(_) => FrameKind::PING,
            Frame::Pong(_) => FrameKind::PONG,
            Frame::GoAway(_) => FrameKind::GOAWAY,
            Frame::Error(_) => FrameKind::ERROR,
            Frame::Nack(_) => FrameKind::NACK,
            Frame::Unknown { kind, .. } => *kind,
        }
    }

    /// Length of the payload `encode` writes.
    pub fn payload_len(&self) -> usize {
        use varint::encoded_len as vl;
        match self {
            Frame::Hello(h) => h.payload_len(),
            Frame::Start(s) => s.payload_len(),
            Frame::Data(d) => d.payload_len(),
            Frame::Cancel(c) => c.payload_len(),
            Frame::MaxData(v) | Frame::MaxMessages(v) | Frame::Ping(v) | Frame::Pong(v) => vl(*v),
            Frame::MaxMessageData { id, max } => vl(*id) + vl(*max),
            Frame::GoAway(g) => g.payload_len(),
            Frame::Error(e) => e.payload_len(),
            Frame::Nack(n) => n.payload_len(),
            Frame::Unknown { len, .. } => *len,
        }
    }

    /// Appends the whole frame (header and payload) to `out`. An `Unknown` frame is
    /// written with a zero-filled payload of its length (used only by tests).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = self.payload_len();
        out.push(self.kind().0);
        varint::encode(len as u64, out);
        let start = out.len();
        match self {
            Frame::Hello(h) => h.encode(out),
            Frame::Start(s) => s.encode(out),
            Frame::Data(d) => d.encode(out),
            Frame::Cancel(c) => c.encode(out),
            Frame::MaxData(v) | Frame::MaxMessages(v) | Frame::Ping(v) | Frame::Pong(v) => {
                varint::encode(*v, out)
            }
            Frame::MaxMessageData { id, max } => {
                varint::encode(*id, out);
                varint::encode(*max, out);
            }
            Frame::GoAway(g) => g.encode(out),
            Frame::Error(e) => e.encode(out),
            Frame::Nack(n) => n.encode(out),
            Frame::Unknown { len, .. } => out.resize(out.len() + len, 0),
        }
        debug_assert_eq!(out.len() - start, len, "payload_len disagrees with encode");
    }

    /// Like [`encode`](Self::encode), but a START or DATA/END body of at least
    /// `min_split` bytes is not copied: only the bytes before it are appended and the
    /// body is returned, to be written right after them (vectored I/O).
    pub fn encode_split(&self, out: &mut Vec<u8>, min_split: usize) -> Option<Bytes> {
        let body = match self {
            Frame::Start(s) if s.body.len() >= min_split => &s.body,
            Frame::Data(d) if d.body.len() >= min_split => &d.body,
            _ => {
                self.encode(out);
                return None;
            }
        };
        out.push(self.kind().0);
        varint::encode(self.payload_len() as u64, out);
        match self {
            Frame::Start(s) => s.encode_head(out),
            Frame::Data(d) => d.encode_head(out),
            _ => {}
        }
        Some(body.clone())
    }

    /// Encoded size of the whole frame.
    pub fn encoded_len(&self) -> usize {
        let len = self.payload_len();
        1 + varint::encoded_len(len as u64) + len
    }
}

/// A whole frame that can be written out: a [`Frame`], or a message frame given
/// directly (so the sender's hot path does not build a `Frame` for each).
pub(crate) trait Encode {
    /// Appends the whole frame (header and payload).
    fn encode_frame(&self, out: &mut Vec<u8>);
    /// Like [`Frame::encode_split`].
    fn encode_frame_split(&self, out: &mut Vec<u8>, min_split: usize) -> Option<Bytes>;
}

impl Encode for Frame {
    #[inline]
    fn encode_frame(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }

    #[inline]
    fn encode_frame_split(&self, out: &mut Vec<u8>, min_split: usize) -> Option<Bytes> {
        self.encode_split(out, min_split)
    }
}

impl Encode for Start {
    #[inline]
    fn encode_frame(&self, out: &mut Vec<u8>) {
        StartWithLen(&self.parts(), self.head_len()).encode_frame(out)
    }

    fn encode_frame_split(&self, out: &mut Vec<u8>, min_split: usize) -> Option<Bytes> {
        StartWithLen(&self.parts(), self.head_len()).encode_frame_split(out, min_split)
    }
}

/// A START by its parts, and its [`head_len`](Start::head_len), already known to
/// the sender.
pub(crate) struct StartWithLen<'a, 'b>(pub(crate) &'b StartParts<'a>, pub(crate) usize);

impl Encode for StartWithLen<'_, '_> {
    #[inline]
    fn encode_frame(&self, out: &mut Vec<u8>) {
        let (start, head_len) = (self.0, self.1);
        debug_assert_eq!(head_len, start.head_len());
        out.reserve(1 + varint::MAX_LEN + head_len + start.body.len());
        out.push(FrameKind::START.0);
        varint::encode((head_len + start.body.len()) as u64, out);
        start.encode_head(out);
        out.extend_from_slice(start.body);
    }

    fn encode_frame_split(&self, out: &mut Vec<u8>, min_split: usize) -> Option<Bytes> {
        let (start, head_len) = (self.0, self.1);
        if start.body.len() < min_split {
            self.encode_frame(out);
            return None;
        }
        out.push(FrameKind::START.0);
        varint::encode((head_len + start.body.len()) as u64, out);
        start.encode_head(out);
        Some(start.body.clone())
    }
}

impl Encode for Data {
    #[inline]
    fn encode_frame(&self, out: &mut Vec<u8>) {
        let len = self.payload_len();
        out.reserve(1 + varint::MAX_LEN + len);
        out.push(Data::kind_for(self.end).0);
        varint::encode(len as u64, out);
        self.encode(out);
    }

    fn encode_frame_split(&self, out: &mut Vec<u8>, min_split: usize) -> Option<Bytes> {
        if self.body.len() < min_split {
            self.encode_frame(out);
            return None;
        }
        out.push(Data::kind_for(self.end).0);
        varint::encode(self.payload_len() as u64, out);
        self.encode_head(out);
        Some(self.body.clone())
    }
}

/// Bounds-checked cursor over a frame payload; every read reports truncation as an error.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    kind: FrameKind,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], kind: FrameKind) -> Self {
        Reader { buf, pos: 0, kind }
    }

    fn truncated(&self) -> FrameError {
        FrameError::Truncated { kind: self.kind }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FrameError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.truncated())?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn varint(&mut self) -> Result<u64, FrameError> {
        match varint::decode(&self.buf[self.pos..]) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(varint::VarintError::Incomplete) => Err(self.truncated()),
            Err(varint::VarintError::Overflow) => Err(FrameError::BadVarint),
        }
    }

    /// Reads `n` bytes and returns their range within the payload.
    pub(crate) fn take(&mut self, n: u64) -> Result<core::ops::Range<usize>, FrameError> {
        let remaining = (self.buf.len() - self.pos) as u64;
        if n > remaining {
            return Err(self.truncated());
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(start..self.pos)
    }

    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let range = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[range]);
        Ok(out)
    }

    /// The unread rest of the payload.
    pub(crate) fn rest(&mut self) -> core::ops::Range<usize> {
        let start = self.pos;
        self.pos = self.buf.len();
        start..self.pos
    }
}
