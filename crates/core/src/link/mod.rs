//! Link profiles: how frames are laid on the byte channel.
//!
//! - `tcp`: frames back to back. The transport is reliable, so nothing is added.
//! - `serial`: each frame becomes `COBS(seq:u16le frame crc32c:u32le) 0x00`. The zero
//!   delimiter lets the receiver resynchronise after any damage; CRC32C rejects damaged
//!   frames; the per-direction sequence number reveals lost ones, which the connection
//!   then reports with NACK (docs/PROTOCOL.md §3).
//!
//! This module owns only the byte framing and the gap detection; what a lost frame means
//! is decided in `connection::recovery`.

pub mod cobs;

use crate::codes::FrameKind;
use crate::error::FrameError;
use crate::frame::{Header, PlainStart};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

/// How frames are carried on the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkProfile {
    /// Reliable byte stream (TCP, Unix socket, TLS, pipes): no checksum, large frames.
    Tcp,
    /// Lossy byte line (UART, RS-485, radio): COBS framing, CRC32C, sequence numbers.
    Serial,
}

impl LinkProfile {
    /// The profile's code in HELLO.
    pub fn code(self) -> u8 {
        match self {
            LinkProfile::Tcp => 0,
            LinkProfile::Serial => 1,
        }
    }
}

/// Bytes a serial link frame adds around a frame: sequence number 2, CRC 4, COBS code 1
/// (per started 254 bytes), delimiter 1.
pub const SERIAL_OVERHEAD: usize = 8;

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC32C (Castagnoli) of `data`, the serial profile's frame check.
///
/// ```
/// assert_eq!(netcore_core::link::crc32c(b"123456789"), 0xe306_9283);
/// ```
pub fn crc32c(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// Counters of what the link layer saw; useful to judge a noisy line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames received intact.
    pub frames_ok: u64,
    /// Serial: delimited blocks rejected (bad COBS, bad CRC, too short or too long).
    pub frames_corrupt: u64,
    /// Serial: frames known lost from sequence-number gaps.
    pub frames_missing: u64,
    /// Serial: bytes thrown away while resynchronising.
    pub bytes_discarded: u64,
}

/// Frames out: applies the profile's framing.
#[derive(Debug)]
pub(crate) struct LinkWriter {
    profile: LinkProfile,
    next_seq: u16,
    started: bool,
    scratch: Vec<u8>,
}

impl LinkWriter {
    pub(crate) fn new(profile: LinkProfile) -> Self {
        LinkWriter {
            profile,
            next_seq: 0,
            started: false,
            scratch: Vec::new(),
        }
    }

    /// Link bytes a frame of `frame_len` encoded bytes takes, at most.
    pub(crate) fn framed_len(&self, frame_len: usize) -> usize {
        match self.profile {
            LinkProfile::Tcp => frame_len,
            LinkProfile::Serial => cobs::max_encoded_len(frame_len + 6) + 2,
        }
    }

    /// Largest frame (kind, length and payload) whose link bytes fit in `room`.
    pub(crate) fn payload_room(&self, room: usize) -> usize {
        match self.profile {
            LinkProfile::Tcp => room,
            // COBS adds one byte per 254 and one more; seq, CRC and delimiter add 7.
            LinkProfile::Serial => room.saturating_sub(room / 254 + 2 + 8),
        }
    }

    /// Writes one encoded frame on a profile that adds no framing (tcp; a serial
    /// writer falls back to [`write`](Self::write)).
    #[inline]
    pub(crate) fn write_plain(&mut self, out: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>)) {
        if self.profile == LinkProfile::Tcp {
            encode(out);
        } else {
            self.write(out, encode);
        }
    }

    /// Writes one encoded frame to `out` via `encode`, returning its sequence number
    /// (serial) so the sender can remember what it carried.
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>)) -> u16 {
        match self.profile {
            LinkProfile::Tcp => {
                encode(out);
                0
            }
            LinkProfile::Serial => {
                if !self.started {
                    // Flush whatever line noise sits in the receiver's buffer.
                    out.push(0);
                    self.started = true;
                }
                let seq = self.next_seq;
                self.next_seq = seq.wrapping_add(1);
                self.scratch.clear();
                self.scratch.extend_from_slice(&seq.to_le_bytes());
                encode(&mut self.scratch);
                let crc = crc32c(&self.scratch);
                self.scratch.extend_from_slice(&crc.to_le_bytes());
                cobs::encode(&self.scratch, out);
                out.push(0);
                seq
            }
        }
    }
}

/// One frame taken off the link.
#[derive(Debug)]
pub(crate) struct LinkFrame {
    pub(crate) header: Header,
    pub(crate) payload: Bytes,
    /// Serial: link frames missing just before this one, as `(first_seq, count)`.
    pub(crate) gap: Option<(u16, u64)>,
    /// Serial: this frame's sequence number.
    pub(crate) seq: u16,
}

/// Smallest block of input buffer the TCP reader allocates at a time.
pub(crate) const INPUT_BLOCK: usize = 256 * 1024;

/// Frames in: undoes the profile's framing, resynchronising after damage (serial).
#[derive(Debug)]
pub(crate) struct LinkReader {
    profile: LinkProfile,
    max_payload: usize,
    buf: BytesMut,
    /// Serial: intact blocks (sequence number and frame, CRC removed) not yet parsed.
    blocks: VecDeque<Bytes>,
    /// Serial: raw bytes of the block being collected.
    raw: Vec<u8>,
    discarding: bool,
    expected_seq: u16,
    decoded: Vec<u8>,
    pub(crate) stats: LinkStats,
}

impl LinkReader {
    pub(crate) fn new(profile: LinkProfile, max_payload: usize) -> Self {
        LinkReader {
            profile,
            max_payload,
            buf: BytesMut::new(),
            blocks: VecDeque::new(),
            raw: Vec::new(),
            discarding: false,
            expected_seq: 0,
            decoded: Vec::new(),
            stats: LinkStats::default(),
        }
    }

    /// Bytes held waiting for the rest of a frame.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() + self.raw.len() + self.blocks.iter().map(Bytes::len).sum::<usize>()
    }

    fn max_block(&self) -> usize {
        cobs::max_encoded_len(self.max_payload + 1 + crate::varint::MAX_LEN + 6)
    }

    /// TCP: the frame buffer itself, with room for at least `spare` more bytes, for
    /// reading straight into it. Room is added in blocks of at least
    /// [`INPUT_BLOCK`]: the buffer's front is usually still shared with bodies handed
    /// out, so each reservation allocates, and many small reads must share one block.
    pub(crate) fn tcp_buffer(&mut self, spare: usize) -> Option<&mut BytesMut> {
        match self.profile {
            LinkProfile::Tcp => {
                self.make_room(spare);
                Some(&mut self.buf)
            }
            LinkProfile::Serial => None,
        }
    }

    /// TCP: room for `need` more bytes after the unparsed ones, never by growing a
    /// block in place (`BytesMut::reserve` would reallocate a block it owns alone,
    /// copying the bytes already parsed along with the rest, and double it). A block
    /// no longer shared with bodies handed out is reused from its start; otherwise the
    /// unparsed tail, at most one frame, moves to a fresh block of at least
    /// [`INPUT_BLOCK`] (`need` is bounded by the largest frame, so is the block).
    fn make_room(&mut self, need: usize) {
        if self.buf.capacity() - self.buf.len() >= need || self.buf.try_reclaim(need) {
            return;
        }
        let mut fresh = BytesMut::with_capacity((self.buf.len() + need).max(INPUT_BLOCK));
        fresh.extend_from_slice(&self.buf);
        self.buf = fresh;
    }

    /// Feeds received bytes. TCP: appended to the frame buffer. Serial: split at
    /// delimiters; intact frames are appended to the frame buffer.
    pub(crate) fn push(&mut self, input: &[u8]) {
        match self.profile {
            LinkProfile::Tcp => self.buf.extend_from_slice(input),
            LinkProfile::Serial => {
                let max_block = self.max_block();
                for chunk in input.split_inclusive(|&b| b == 0) {
                    let (body, delimited) = match chunk.split_last() {
                        Some((0, body)) => (body, true),
                        _ => (chunk, false),
                    };
                    if !self.discarding {
                        if self.raw.len() + body.len() > max_block {
                            // No delimiter where one must be: skip to the next one.
                            self.stats.bytes_discarded += (self.raw.len() + body.len()) as u64;
                            self.stats.frames_corrupt += 1;
                            self.raw.clear();
                            self.discarding = true;
                        } else {
                            self.raw.extend_from_slice(body);
                        }
                    } else {
                        self.stats.bytes_discarded += body.len() as u64;
                    }
                    if delimited {
                        if self.discarding {
                            self.discarding = false;
                        } else if !self.raw.is_empty() {
                            self.accept_block();
                        }
                        self.raw.clear();
                    }
                }
            }
        }
    }

    /// Checks one delimited serial block and queues its frame if intact.
    fn accept_block(&mut self) {
        self.decoded.clear();
        let ok = cobs::decode(&self.raw, &mut self.decoded) && self.decoded.len() >= 2 + 2 + 4 && {
            let (body, crc) = self.decoded.split_at(self.decoded.len() - 4);
            crc32c(body).to_le_bytes() == crc
        };
        if !ok {
            self.stats.frames_corrupt += 1;
            self.stats.bytes_discarded += self.raw.len() as u64 + 1;
            return;
        }
        let end = self.decoded.len() - 4;
        self.blocks
            .push_back(Bytes::copy_from_slice(&self.decoded[..end]));
    }

    /// TCP: if the next frame is complete and a START without route literal or
    /// metadata, takes it, its head parsed in place and its body split off (one
    /// split, no intermediate frame or payload). Anything else, errors included, is
    /// left for [`next_frame`](Self::next_frame).
    #[inline]
    pub(crate) fn next_plain_start(&mut self) -> Option<(PlainStart, Bytes)> {
        if self.profile != LinkProfile::Tcp || self.buf.first() != Some(&FrameKind::START.0) {
            return None;
        }
        let header = Header::parse(&self.buf, self.max_payload).ok()??;
        let total = header.header_len + header.payload_len;
        let payload = self.buf.get(header.header_len..total)?;
        let start = PlainStart::parse(payload)?;
        let mut body = self.buf.split_to(total).freeze();
        bytes::Buf::advance(&mut body, header.header_len + start.body_at);
        self.stats.frames_ok += 1;
        Some((start, body))
    }

    /// Takes the next complete frame, if any.
    pub(crate) fn next_frame(&mut self) -> Result<Option<LinkFrame>, FrameError> {
        match self.profile {
            LinkProfile::Tcp => {
                let Some(header) = Header::parse(&self.buf, self.max_payload)? else {
                    return Ok(None);
                };
                let total = header.header_len + header.payload_len;
                if self.buf.len() < total {
                    self.make_room(total - self.buf.len());
                    return Ok(None);
                }
                // One split; skipping the header then only moves the start.
                let mut payload = self.buf.split_to(total).freeze();
                bytes::Buf::advance(&mut payload, header.header_len);
                self.stats.frames_ok += 1;
                Ok(Some(LinkFrame {
                    header,
                    payload,
                    gap: None,
                    seq: 0,
                }))
            }
            LinkProfile::Serial => {
                let Some(mut block) = self.blocks.pop_front() else {
                    return Ok(None);
                };
                let seq = u16::from_le_bytes([block[0], block[1]]);
                let kind = crate::FrameKind(block[2]);
                let header =
                    Header::parse(&block[2..], self.max_payload)?.ok_or(FrameError::Malformed {
                        kind,
                        what: "frame header cut short inside an intact serial frame",
                    })?;
                if 2 + header.header_len + header.payload_len != block.len() {
                    return Err(FrameError::Malformed {
                        kind,
                        what: "frame length disagrees with its intact serial frame",
                    });
                }
                let payload = block.split_off(2 + header.header_len);
                let missing = seq.wrapping_sub(self.expected_seq);
                let gap = if missing != 0 && missing < 0x8000 {
                    self.stats.frames_missing += u64::from(missing);
                    Some((self.expected_seq, u64::from(missing)))
                } else {
                    None
                };
                self.expected_seq = seq.wrapping_add(1);
                self.stats.frames_ok += 1;
                Ok(Some(LinkFrame {
                    header,
                    payload,
                    gap,
                    seq,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    const ROOM: usize = 16 * 1024;

    /// A TCP reader whose block holds `filled` bytes of a pattern.
    fn filled(filled: usize) -> LinkReader {
        let mut r = LinkReader::new(LinkProfile::Tcp, 64 * 1024);
        let buf = r.tcp_buffer(ROOM).unwrap();
        assert_eq!(buf.capacity(), INPUT_BLOCK);
        for i in 0..filled {
            buf.put_u8(i as u8);
        }
        r
    }

    #[test]
    fn a_block_no_longer_shared_is_reused_from_its_start() {
        let mut r = filled(INPUT_BLOCK - 100);
        let start = r.buf.as_ptr();
        let parsed = r.buf.split_to(INPUT_BLOCK - 300).freeze();
        drop(parsed);
        let buf = r.tcp_buffer(ROOM).unwrap();
        assert_eq!(buf.as_ptr(), start, "the same block, from its start");
        assert_eq!(buf.len(), 200);
        assert_eq!(buf[0], (INPUT_BLOCK - 300) as u8);
        assert_eq!(buf.capacity(), INPUT_BLOCK);
    }

    #[test]
    fn a_shared_block_stays_and_only_the_unparsed_tail_moves() {
        let mut r = filled(INPUT_BLOCK - 100);
        let start = r.buf.as_ptr();
        let body = r.buf.split_to(INPUT_BLOCK - 300).freeze();
        let buf = r.tcp_buffer(ROOM).unwrap();
        assert_ne!(buf.as_ptr(), start);
        assert_eq!(buf.len(), 200);
        assert_eq!(buf[199], (INPUT_BLOCK - 101) as u8);
        assert_eq!(buf.capacity(), INPUT_BLOCK, "a block, not a doubled one");
        // The body handed out is untouched.
        assert_eq!(body.as_ptr(), start);
        assert_eq!(body[1], 1);
    }

    #[test]
    fn a_block_owned_alone_is_never_grown_in_place() {
        // Parsed bytes skipped without a split leave the block unshared with an
        // offset; `BytesMut::reserve` would reallocate it at twice the size, copying
        // the parsed bytes too.
        let mut r = filled(INPUT_BLOCK - 100);
        bytes::Buf::advance(&mut r.buf, 1000);
        let buf = r.tcp_buffer(ROOM).unwrap();
        assert_eq!(buf.len(), INPUT_BLOCK - 1100);
        assert_eq!(buf[0], 1000u32 as u8);
        // Exactly the room asked for past the unparsed bytes (a doubled block would
        // be 2 x INPUT_BLOCK).
        assert_eq!(buf.capacity(), (INPUT_BLOCK - 1100 + ROOM).max(INPUT_BLOCK));
    }
}
