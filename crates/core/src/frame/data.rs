//! DATA (0x02) and END (0x03): body bytes of a message at an explicit offset.
//!
//! Payload: `id:varint offset:varint body`. The offset lets a receiver prove that no
//! frame of the message went missing (serial profile) and costs 1–4 bytes per frame.

use super::Reader;
use crate::error::FrameError;
use crate::varint::{self, encoded_len as vl};
use alloc::vec::Vec;
use bytes::{Buf, Bytes};

/// A DATA or END frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// Message id (of the frame sender's direction).
    pub id: u64,
    /// Offset of `body` within the message body.
    pub offset: u64,
    /// True for END: the message ends after `body`.
    pub end: bool,
    /// Body bytes.
    pub body: Bytes,
}

impl Data {
    /// Decodes a DATA/END payload; the body is the payload itself, advanced past the
    /// head.
    pub(crate) fn load_owned(mut payload: Bytes, end: bool) -> Result<Data, FrameError> {
        let mut r = Reader::new(&payload, Self::kind_for(end));
        let id = r.varint()?;
        let offset = r.varint()?;
        let body_at = r.rest().start;
        payload.advance(body_at);
        Ok(Data {
            id,
            offset,
            end,
            body: payload,
        })
    }

    /// The frame kind carrying a body piece: END for the last, DATA otherwise.
    #[inline]
    pub(crate) fn kind_for(end: bool) -> crate::codes::FrameKind {
        if end {
            crate::codes::FrameKind::END
        } else {
            crate::codes::FrameKind::DATA
        }
    }

    /// Bytes of the payload before the body.
    pub fn head_len(id: u64, offset: u64) -> usize {
        vl(id) + vl(offset)
    }

    pub(crate) fn payload_len(&self) -> usize {
        Self::head_len(self.id, self.offset) + self.body.len()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        self.encode_head(out);
        out.extend_from_slice(&self.body);
    }

    /// The payload up to (not including) the body.
    pub(crate) fn encode_head(&self, out: &mut Vec<u8>) {
        varint::encode(self.id, out);
        varint::encode(self.offset, out);
    }
}
