//! Incremental, bounded LSO packet decoder.
//!
//! This module owns turning a byte stream, cut at arbitrary points, into
//! [`Packet`]s. It keeps at most one partial packet: four length bytes, then
//! the extension (at most [`Limits::max_header_len`]), then the meta (at most
//! `max_header_len` for JSON heads, [`Limits::max_packet_len`] for data). A
//! length is checked against its limit before a single byte of the field is
//! buffered, and buffers grow only with bytes actually received, so a peer
//! claiming a 2 GiB packet costs nothing.
//!
//! A packet whose JSON is broken or whose type is unknown is skipped whole
//! (its meta is discarded without buffering) and reported as a non-fatal
//! [`DecodeError`]; the next packet decodes normally. A bad length field is
//! fatal: the decoder stays failed and reports the same error again.

use crate::error::{DecodeError, LengthField};
use crate::packet::{self, ByteOrder, Kind, Packet};

/// Limits on what a peer may make us buffer or track.
///
/// ```
/// use netcore_legacy::Limits;
/// let limits = Limits { max_message_len: 10 << 20, ..Limits::default() };
/// assert_eq!(limits.max_header_len, 16 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest JSON document (a packet extension, a mission head or a cancel
    /// meta). Python writes ~40-byte extensions and ~100-byte heads.
    pub max_header_len: usize,
    /// Largest data packet payload. Python sends at most 4096 bytes.
    pub max_packet_len: usize,
    /// Largest message a mission head may announce.
    pub max_message_len: u64,
    /// Most incomplete incoming messages at once.
    pub max_incoming_messages: usize,
    /// Data bytes kept for a mission whose head has not arrived yet. Python's
    /// `create_mission` registers a mission before queueing its head, so its
    /// send thread can put a chunk on the wire first; Python's receiver drops
    /// it (and the message never completes), we replay it when the head
    /// comes. Each kept packet counts its payload, its mission id and 64 bytes
    /// of bookkeeping. 0 disables this.
    pub max_early_data: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_len: 16 * 1024,
            max_packet_len: 64 * 1024,
            max_message_len: 64 * 1024 * 1024,
            max_incoming_messages: 256,
            max_early_data: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    /// Reading the extension length.
    ExtLen,
    /// Reading `len` extension bytes into `buf`.
    Ext { len: usize },
    /// Reading the meta length of a packet of this kind (`Err`: skip it).
    MetaLen { kind: Result<Kind, DecodeError> },
    /// Reading (or skipping) `len` meta bytes.
    Meta {
        kind: Result<Kind, DecodeError>,
        len: usize,
    },
    /// Framing lost.
    Failed(DecodeError),
}

/// Decodes LSO packets from bytes fed in pieces of any size.
///
/// ```
/// use netcore_legacy::{ByteOrder, Limits, Packet, PacketDecoder};
///
/// let mut wire = Vec::new();
/// let packet = Packet::Data { extension: "cAefAZ".into(), payload: b"hello".to_vec() };
/// packet.encode(ByteOrder::Little, &mut wire);
///
/// let mut decoder = PacketDecoder::new(Limits::default());
/// let (first, second) = wire.split_at(7);
/// let mut input = first;
/// assert_eq!(decoder.decode(&mut input), Ok(None)); // needs more bytes
/// let mut input = second;
/// assert_eq!(decoder.decode(&mut input), Ok(Some(packet)));
/// assert!(input.is_empty() && decoder.is_idle());
/// ```
#[derive(Debug, Clone)]
pub struct PacketDecoder {
    limits: Limits,
    order: ByteOrder,
    state: State,
    len_buf: [u8; 4],
    len_filled: usize,
    buf: Vec<u8>,
    skipped: usize,
}

impl PacketDecoder {
    /// A decoder for little-endian peers (every common Python host).
    pub fn new(limits: Limits) -> Self {
        Self::with_byte_order(limits, ByteOrder::Little)
    }

    /// A decoder for peers whose native `i32` has the given byte order.
    pub fn with_byte_order(limits: Limits, order: ByteOrder) -> Self {
        PacketDecoder {
            limits,
            order,
            state: State::ExtLen,
            len_buf: [0; 4],
            len_filled: 0,
            buf: Vec::new(),
            skipped: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// True between packets: no partial packet is buffered.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::ExtLen) && self.len_filled == 0
    }

    /// Bytes of the current partial packet held in memory.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.len_filled
    }

    /// Consumes bytes from the front of `input` until one packet is complete.
    ///
    /// Returns `Ok(Some(packet))` with `input` advanced past it, `Ok(None)`
    /// when all of `input` was consumed without completing a packet, or an
    /// error. After a non-fatal error `input` is advanced past the skipped
    /// packet and decoding may continue; after a fatal one
    /// ([`DecodeError::is_fatal`]) every call returns the same error.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Packet>, DecodeError> {
        loop {
            // The state is taken out and put back unless the packet completes.
            let state = std::mem::replace(&mut self.state, State::ExtLen);
            match state {
                State::Failed(e) => {
                    self.state = State::Failed(e.clone());
                    return Err(e);
                }
                State::ExtLen => {
                    let Some(len) = self.read_len(input) else {
                        return Ok(None);
                    };
                    let len =
                        self.check_len(LengthField::Extension, len, self.limits.max_header_len)?;
                    self.state = State::Ext { len };
                }
                State::Ext { len } => {
                    if !self.fill(input, len) {
                        self.state = State::Ext { len };
                        return Ok(None);
                    }
                    let kind = packet::parse_ext(&self.buf);
                    self.buf.clear();
                    self.state = State::MetaLen { kind };
                }
                State::MetaLen { kind } => {
                    let Some(len) = self.read_len(input) else {
                        self.state = State::MetaLen { kind };
                        return Ok(None);
                    };
                    let limit = match &kind {
                        Ok(Kind::Data(_)) => self.limits.max_packet_len,
                        Ok(_) => self.limits.max_header_len,
                        Err(_) => self.limits.max_packet_len.max(self.limits.max_header_len),
                    };
                    let len = self.check_len(LengthField::Meta, len, limit)?;
                    self.state = State::Meta { kind, len };
                }
                State::Meta { kind, len } => {
                    let done = if kind.is_err() {
                        let take = len.saturating_sub(self.skipped).min(input.len());
                        *input = input.get(take..).unwrap_or_default();
                        self.skipped += take;
                        self.skipped >= len
                    } else {
                        self.fill(input, len)
                    };
                    if !done {
                        self.state = State::Meta { kind, len };
                        return Ok(None);
                    }
                    self.skipped = 0;
                    let meta = std::mem::take(&mut self.buf);
                    return match kind? {
                        Kind::Mission => {
                            packet::parse_mission(&meta).map(|h| Some(Packet::Mission(h)))
                        }
                        Kind::Data(extension) => Ok(Some(Packet::Data {
                            extension,
                            payload: meta,
                        })),
                        // Python reads the id from the extension and ignores this meta.
                        Kind::Cancel(extension) => Ok(Some(Packet::Cancel { extension })),
                    };
                }
            }
        }
    }

    /// Accumulates the 4 bytes of a length field; `None` if input ran out.
    fn read_len(&mut self, input: &mut &[u8]) -> Option<i32> {
        while self.len_filled < 4 {
            let (&b, rest) = input.split_first()?;
            *input = rest;
            if let Some(slot) = self.len_buf.get_mut(self.len_filled) {
                *slot = b;
            }
            self.len_filled += 1;
        }
        self.len_filled = 0;
        Some(self.order.read_i32(self.len_buf))
    }

    fn check_len(
        &mut self,
        field: LengthField,
        len: i32,
        limit: usize,
    ) -> Result<usize, DecodeError> {
        let err = match u32::try_from(len) {
            Err(_) => DecodeError::NegativeLength { field, len },
            Ok(n) => match usize::try_from(n) {
                Ok(n) if n <= limit => return Ok(n),
                _ => DecodeError::LengthTooLarge {
                    field,
                    len: n,
                    limit,
                },
            },
        };
        self.buf = Vec::new();
        self.state = State::Failed(err.clone());
        Err(err)
    }

    /// Moves bytes from `input` into `buf` until it holds `len`; true when it does.
    fn fill(&mut self, input: &mut &[u8], len: usize) -> bool {
        let take = len.saturating_sub(self.buf.len()).min(input.len());
        let (head, rest) = input.split_at(take);
        self.buf.extend_from_slice(head);
        *input = rest;
        self.buf.len() >= len
    }
}
