//! GOAWAY (0x0a) and ERROR (0x0b): the two ways a connection ends.

use super::Reader;
use crate::codes::ErrorCode;
use crate::error::FrameError;
use crate::varint::{self, encoded_len as vl};
use alloc::vec::Vec;
use bytes::Bytes;

/// GOAWAY payload: `last_id:varint code:varint reason`. The sender starts no new
/// messages and will process the receiver's messages up to `last_id`; later ones are
/// refused. The connection closes once both sides have sent GOAWAY and nothing is in
/// flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoAway {
    /// Highest message id of the receiver's direction that will still be processed.
    pub last_id: u64,
    /// Why (NO_ERROR for an ordinary close).
    pub code: ErrorCode,
    /// Human-readable reason, UTF-8 (shown lossily if not).
    pub reason: Bytes,
}

impl GoAway {
    pub(crate) fn load(r: &mut Reader<'_>, payload: &Bytes) -> Result<GoAway, FrameError> {
        let last_id = r.varint()?;
        let code = ErrorCode(r.varint()?);
        Ok(GoAway {
            last_id,
            code,
            reason: payload.slice(r.rest()),
        })
    }

    pub(crate) fn payload_len(&self) -> usize {
        vl(self.last_id) + vl(self.code.0) + self.reason.len()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        varint::encode(self.last_id, out);
        varint::encode(self.code.0, out);
        out.extend_from_slice(&self.reason);
    }
}

/// ERROR payload: `code:varint reason`. The sender considers the connection dead after
/// sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    /// What went wrong.
    pub code: ErrorCode,
    /// Human-readable reason, UTF-8 (shown lossily if not).
    pub reason: Bytes,
}

impl ErrorFrame {
    pub(crate) fn load(r: &mut Reader<'_>, payload: &Bytes) -> Result<ErrorFrame, FrameError> {
        let code = ErrorCode(r.varint()?);
        Ok(ErrorFrame {
            code,
            reason: payload.slice(r.rest()),
        })
    }

    pub(crate) fn payload_len(&self) -> usize {
        vl(self.code.0) + self.reason.len()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        varint::encode(self.code.0, out);
        out.extend_from_slice(&self.reason);
    }
}
