//! CANCEL (0x04) and NACK (0x0c); the one-varint control frames (credit, ping) are
//! handled inline in `Frame::load`/`encode`.

use super::Reader;
use crate::codes::ErrorCode;
use crate::error::FrameError;
use crate::varint::{self, encoded_len as vl};
use alloc::vec::Vec;

/// Which side's message a CANCEL names: message ids are per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelSide {
    /// `0`: a message the CANCEL's sender was sending; it stops sending it.
    Sender,
    /// `1`: a message the CANCEL's sender was receiving; it asks the peer to stop.
    Receiver,
}

/// CANCEL payload: `id:varint side:u8 code:varint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancel {
    /// The message id, in the direction `side` names.
    pub id: u64,
    /// Whose message it is.
    pub side: CancelSide,
    /// Why.
    pub code: ErrorCode,
}

impl Cancel {
    pub(crate) fn load(r: &mut Reader<'_>) -> Result<Cancel, FrameError> {
        let id = r.varint()?;
        let side = match r.u8()? {
            0 => CancelSide::Sender,
            1 => CancelSide::Receiver,
            _ => {
                return Err(FrameError::Malformed {
                    kind: crate::FrameKind::CANCEL,
                    what: "side byte other than 0 or 1",
                })
            }
        };
        Ok(Cancel {
            id,
            side,
            code: ErrorCode(r.varint()?),
        })
    }

    pub(crate) fn payload_len(&self) -> usize {
        vl(self.id) + 1 + vl(self.code.0)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        varint::encode(self.id, out);
        out.push(match self.side {
            CancelSide::Sender => 0,
            CancelSide::Receiver => 1,
        });
        varint::encode(self.code.0, out);
    }
}

/// NACK payload: `first_seq:varint count:varint`: the receiver of link frames numbered
/// `first_seq .. first_seq + count` (mod 2^16) never got them intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack {
    /// First missing link sequence number.
    pub first_seq: u16,
    /// How many consecutive link frames are missing.
    pub count: u64,
}

impl Nack {
    pub(crate) fn load(r: &mut Reader<'_>) -> Result<Nack, FrameError> {
        let first = r.varint()?;
        let first_seq = u16::try_from(first).map_err(|_| FrameError::Malformed {
            kind: crate::FrameKind::NACK,
            what: "sequence number above 65535",
        })?;
        Ok(Nack {
            first_seq,
            count: r.varint()?,
        })
    }

    pub(crate) fn payload_len(&self) -> usize {
        vl(u64::from(self.first_seq)) + vl(self.count)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        varint::encode(u64::from(self.first_seq), out);
        varint::encode(self.count, out);
    }
}
