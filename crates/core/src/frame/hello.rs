//! HELLO (0x00): the handshake frame each side sends first.

use super::Reader;
use crate::codes::FrameKind;
use crate::error::FrameError;
use crate::varint::{self, encoded_len as vl};
use alloc::vec::Vec;

/// The four magic bytes that open every HELLO payload: `NCOR`.
pub const MAGIC: [u8; 4] = *b"NCOR";
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;

/// Capability bits announced in HELLO.
///
/// ```
/// use netcore_core::frame::Capabilities;
/// let caps = Capabilities::ROUTE_INTERNING | Capabilities::LINK_RECOVERY;
/// assert!(caps.contains(Capabilities::LINK_RECOVERY));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u64);

impl Capabilities {
    /// The sender accepts interned route references in START frames.
    pub const ROUTE_INTERNING: Capabilities = Capabilities(1 << 0);
    /// The sender handles NACK frames (serial profile loss recovery).
    pub const LINK_RECOVERY: Capabilities = Capabilities(1 << 1);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for Capabilities {
    type Output = Capabilities;
    fn bitor(self, rhs: Self) -> Self {
        Capabilities(self.0 | rhs.0)
    }
}

/// HELLO payload: `magic[4] version:u8 profile:u8 flags:u8` then varints
/// `session capabilities max_frame max_message max_metadata max_incoming max_routes
/// message_window connection_window`. Trailing bytes are reserved for extensions and
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version of the sender.
    pub version: u8,
    /// Link profile code of the sender (0 = tcp, 1 = serial).
    pub profile: u8,
    /// Serial profile: the sender has already received the receiver's HELLO.
    pub seen_peer: bool,
    /// The sender's session number; a different value later means the peer restarted.
    pub session: u64,
    /// Capability bits.
    pub capabilities: Capabilities,
    /// Largest frame payload the sender accepts.
    pub max_frame: u64,
    /// Largest message body the sender accepts, 0 for no limit.
    pub max_message: u64,
    /// Largest route + metadata the sender accepts in one START.
    pub max_metadata: u64,
    /// Concurrent incoming messages the sender accepts (initial message-count credit).
    pub max_incoming: u64,
    /// Interned routes the sender keeps per connection.
    pub max_routes: u64,
    /// Initial per-message credit the sender grants, in body bytes.
    pub message_window: u64,
    /// Initial connection credit the sender grants, in body bytes.
    pub connection_window: u64,
}

const FLAG_SEEN_PEER: u8 = 0x01;

impl Hello {
    pub(crate) fn load(r: &mut Reader<'_>) -> Result<Hello, FrameError> {
        let magic: [u8; 4] = r.fixed()?;
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        let version = r.u8()?;
        let profile = r.u8()?;
        let flags = r.u8()?;
        let hello = Hello {
            version,
            profile,
            seen_peer: flags & FLAG_SEEN_PEER != 0,
            session: r.varint()?,
            capabilities: Capabilities(r.varint()?),
            max_frame: r.varint()?,
            max_message: r.varint()?,
            max_metadata: r.varint()?,
            max_incoming: r.varint()?,
            max_routes: r.varint()?,
            message_window: r.varint()?,
            connection_window: r.varint()?,
        };
        let _extensions = r.rest();
        Ok(hello)
    }

    pub(crate) fn payload_len(&self) -> usize {
        7 + vl(self.session)
            + vl(self.capabilities.0)
            + vl(self.max_frame)
            + vl(self.max_message)
            + vl(self.max_metadata)
            + vl(self.max_incoming)
            + vl(self.max_routes)
            + vl(self.message_window)
            + vl(self.connection_window)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.push(self.version);
        out.push(self.profile);
        out.push(if self.seen_peer { FLAG_SEEN_PEER } else { 0 });
        for v in [
            self.session,
            self.capabilities.0,
            self.max_frame,
            self.max_message,
            self.max_metadata,
            self.max_incoming,
            self.max_routes,
            self.message_window,
            self.connection_window,
        ] {
            varint::encode(v, out);
        }
    }
}

const _: FrameKind = FrameKind::HELLO;
