//! Errors, split as rustls does: what the *peer* did wrong (`ProtocolViolation`,
//! `FrameError`, `HandshakeError`), how a connection or message *ended*
//! (`ConnectionError`, `MessageError`), and what the *local application* asked for that
//! cannot be done (`StartError`, `WriteError`, `ReadError`). Every enum is
//! `#[non_exhaustive]` and every message says what happened and what to do.

use crate::codes::{ErrorCode, FrameKind};
use alloc::string::String;
use core::fmt;

/// A frame that could not be decoded. Always the peer's fault (or, on the serial
/// profile, damage that slipped past the CRC, which is not expected to happen).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A varint longer than 10 bytes or beyond 64 bits.
    BadVarint,
    /// A field runs past the end of the frame payload.
    Truncated {
        /// The frame kind being decoded.
        kind: FrameKind,
    },
    /// The frame payload is longer than the receiver allows.
    TooLarge {
        /// The frame kind.
        kind: FrameKind,
        /// Claimed payload length.
        len: u64,
        /// The receiver's maximum.
        max: u64,
    },
    /// A HELLO that does not start with `NCOR`.
    BadMagic([u8; 4]),
    /// A field holds a value the protocol forbids.
    Malformed {
        /// The frame kind.
        kind: FrameKind,
        /// What is wrong.
        what: &'static str,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadVarint => f.write_str("varint longer than 10 bytes or above 2^64"),
            FrameError::Truncated { kind } => write!(f, "{kind:?} frame ends inside a field"),
            FrameError::TooLarge { kind, len, max } => write!(
                f,
                "{kind:?} frame of {len} bytes exceeds the {max}-byte frame limit"
            ),
            FrameError::BadMagic(m) => write!(
                f,
                "handshake magic {m:02x?} is not \"NCOR\": the peer does not speak netcore, \
                 or the two sides use different link profiles (tcp vs serial)"
            ),
            FrameError::Malformed { kind, what } => write!(f, "malformed {kind:?} frame: {what}"),
        }
    }
}

/// Which configured limit was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitKind {
    /// Frame payload size.
    FrameSize,
    /// Total body size of one message.
    MessageSize,
    /// Route plus metadata size of one message.
    MetadataSize,
    /// Concurrent incoming messages.
    IncomingMessages,
    /// Interned route table size.
    Routes,
}

/// A limit a message or peer exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitExceeded {
    /// Which limit.
    pub kind: LimitKind,
    /// The configured limit.
    pub limit: u64,
    /// The value that exceeded it (at least; a length may be known only partly).
    pub actual: u64,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            LimitKind::FrameSize => "frame size",
            LimitKind::MessageSize => "message size",
            LimitKind::MetadataSize => "route + metadata size",
            LimitKind::IncomingMessages => "concurrent incoming messages",
            LimitKind::Routes => "interned routes",
        };
        write!(
            f,
            "{what} {} exceeds the limit of {}; raise the receiver's limit in its Config or send less",
            self.actual, self.limit
        )
    }
}

/// The handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The first frame was not a valid HELLO.
    Frame(FrameError),
    /// The peer's first frame was not HELLO.
    UnexpectedFrame(FrameKind),
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// Ours.
        ours: u8,
        /// Theirs.
        theirs: u8,
    },
    /// The peer uses another link profile.
    ProfileMismatch {
        /// Our profile code.
        ours: u8,
        /// Theirs.
        theirs: u8,
    },
    /// The peer announced a limit below the protocol minimum.
    BadLimits(&'static str),
    /// No HELLO arrived within the handshake timeout.
    Timeout,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Frame(e) => write!(f, "handshake failed: {e}"),
            HandshakeError::UnexpectedFrame(k) => write!(
                f,
                "handshake failed: peer sent {k:?} before HELLO; is it a netcore peer?"
            ),
            HandshakeError::VersionMismatch { ours, theirs } => write!(
                f,
                "handshake failed: peer speaks protocol version {theirs}, we speak {ours}; \
                 upgrade the older side"
            ),
            HandshakeError::ProfileMismatch { ours, theirs } => write!(
                f,
                "handshake failed: peer uses link profile {theirs}, we use {ours} \
                 (0 = tcp, 1 = serial); configure both sides alike"
            ),
            HandshakeError::BadLimits(what) => write!(f, "handshake failed: peer {what}"),
            HandshakeError::Timeout => f.write_str(
                "handshake timed out: no HELLO from the peer; check that it runs netcore \
                 with the same link profile and that the link carries data",
            ),
        }
    }
}

/// Something the peer did that the protocol forbids; the connection is closed with an
/// ERROR frame carrying [`ProtocolViolation::code`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// An undecodable frame.
    Frame(FrameError),
    /// A frame not allowed in the current state.
    UnexpectedFrame {
        /// Its kind.
        kind: FrameKind,
        /// Why not.
        why: &'static str,
    },
    /// Body bytes beyond the credit granted.
    FlowControl {
        /// Credit granted.
        allowed: u64,
        /// Offset the peer reached.
        sent: u64,
    },
    /// A limit exceeded in a way that cannot be confined to one message.
    Limit(LimitExceeded),
    /// A route name that is not UTF-8.
    InvalidRoute,
    /// A reference to a route number that was never interned.
    UnknownRoute(u64),
    /// A body longer or shorter than the length announced in its START.
    LengthMismatch {
        /// Announced length.
        announced: u64,
        /// Bytes received.
        received: u64,
    },
    /// A message id that is out of order or not allowed.
    BadMessageId {
        /// The id seen.
        id: u64,
        /// Why it is wrong.
        why: &'static str,
    },
}

impl ProtocolViolation {
    /// The error code sent to the peer for this violation.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolViolation::FlowControl { .. } => ErrorCode::FLOW_CONTROL_ERROR,
            ProtocolViolation::Limit(_) | ProtocolViolation::Frame(FrameError::TooLarge { .. }) => {
                ErrorCode::LIMIT_EXCEEDED
            }
            _ => ErrorCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolViolation::Frame(e) => write!(f, "{e}"),
            ProtocolViolation::UnexpectedFrame { kind, why } => {
                write!(f, "unexpected {kind:?} frame: {why}")
            }
            ProtocolViolation::FlowControl { allowed, sent } => write!(
                f,
                "peer sent body bytes up to {sent} with credit only up to {allowed}"
            ),
            ProtocolViolation::Limit(l) => write!(f, "{l}"),
            ProtocolViolation::InvalidRoute => f.write_str("route name is not valid UTF-8"),
            ProtocolViolation::UnknownRoute(n) => {
                write!(
                    f,
                    "START refers to interned route {n}, which was never sent"
                )
            }
            ProtocolViolation::LengthMismatch {
                announced,
                received,
            } => write!(
                f,
                "message body of {received} bytes disagrees with its announced length {announced}"
            ),
            ProtocolViolation::BadMessageId { id, why } => write!(f, "message id {id}: {why}"),
        }
    }
}

/// Why a connection ended. `Event::Closed` carries `None` for a graceful close.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The handshake failed.
    Handshake(HandshakeError),
    /// The peer broke the protocol; we sent it an ERROR frame.
    Protocol(ProtocolViolation),
    /// The peer sent an ERROR frame.
    PeerError {
        /// Its code.
        code: ErrorCode,
        /// Its reason text.
        reason: String,
    },
    /// We closed the connection with an error code (`Connection::abort`).
    LocallyAborted {
        /// The code we sent.
        code: ErrorCode,
    },
    /// Nothing was received for the idle timeout: the peer or the link is dead.
    TimedOut,
    /// A graceful close did not drain within the close timeout.
    DrainTimedOut,
    /// The peer restarted (serial profile: a HELLO with a new session number).
    PeerRestarted,
    /// The transport ended (reported by the runtime through `handle_transport_closed`).
    TransportClosed,
}

impl ConnectionError {
    /// The code sent to the peer, if this side ends the connection because of it.
    pub fn code(&self) -> ErrorCode {
        match self {
            ConnectionError::Handshake(HandshakeError::Timeout) => ErrorCode::TIMEOUT,
            ConnectionError::Handshake(_) => ErrorCode::INCOMPATIBLE,
            ConnectionError::Protocol(v) => v.code(),
            ConnectionError::PeerError { code, .. } | ConnectionError::LocallyAborted { code } => {
                *code
            }
            ConnectionError::TimedOut | ConnectionError::DrainTimedOut => ErrorCode::TIMEOUT,
            ConnectionError::PeerRestarted | ConnectionError::TransportClosed => {
                ErrorCode::INTERNAL_ERROR
            }
        }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Handshake(e) => write!(f, "{e}"),
            ConnectionError::Protocol(v) => write!(f, "peer violated the protocol: {v}"),
            ConnectionError::PeerError { code, reason } => {
                write!(f, "peer closed the connection with {code}: {reason}")
            }
            ConnectionError::LocallyAborted { code } => {
                write!(f, "connection aborted locally with {code}")
            }
            ConnectionError::TimedOut => {
                f.write_str("connection timed out: nothing received within the idle timeout")
            }
            ConnectionError::DrainTimedOut => {
                f.write_str("graceful close timed out with messages still in flight")
            }
            ConnectionError::PeerRestarted => {
                f.write_str("the peer restarted: its messages in flight are lost")
            }
            ConnectionError::TransportClosed => f.write_str("the transport closed"),
        }
    }
}

/// Why one message failed. The connection and other messages carry on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The peer cancelled it with this code.
    CancelledByPeer(ErrorCode),
    /// This side cancelled it.
    CancelledLocally(ErrorCode),
    /// A frame of it was corrupted or lost on the link (serial profile); nothing
    /// corrupted was delivered. Safe to send again.
    FrameLost,
    /// It exceeded a limit of the receiver.
    Limit(LimitExceeded),
    /// The receiver is going away and did not process it; safe to send again.
    Refused,
    /// The connection ended first.
    ConnectionClosed(ConnectionError),
}

impl MessageError {
    /// The code a CANCEL frame carries for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            MessageError::CancelledByPeer(c) | MessageError::CancelledLocally(c) => *c,
            MessageError::FrameLost => ErrorCode::FRAME_LOST,
            MessageError::Limit(_) => ErrorCode::LIMIT_EXCEEDED,
            MessageError::Refused => ErrorCode::REFUSED,
            MessageError::ConnectionClosed(e) => e.code(),
        }
    }

    /// Builds the error for a CANCEL received from the peer.
    pub fn from_peer_code(code: ErrorCode) -> MessageError {
        match code {
            ErrorCode::FRAME_LOST => MessageError::FrameLost,
            ErrorCode::REFUSED => MessageError::Refused,
            c => MessageError::CancelledByPeer(c),
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::CancelledByPeer(c) => write!(f, "message cancelled by the peer ({c})"),
            MessageError::CancelledLocally(c) => write!(f, "message cancelled locally ({c})"),
            MessageError::FrameLost => f.write_str(
                "a frame of the message was corrupted on the link; nothing corrupted was \
                 delivered, send it again",
            ),
            MessageError::Limit(l) => write!(f, "message rejected: {l}"),
            MessageError::Refused => {
                f.write_str("message refused unprocessed: the receiver is going away")
            }
            MessageError::ConnectionClosed(e) => write!(f, "connection closed: {e}"),
        }
    }
}

/// `Connection::start` could not queue a message (local misuse or state).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The connection is closing or closed; no new messages.
    Closing,
    /// Route plus metadata exceed the peer's metadata limit.
    MetadataTooLarge {
        /// Bytes the head would take.
        len: u64,
        /// The peer's limit.
        max: u64,
    },
    /// The announced body length exceeds the peer's message limit.
    MessageTooLarge {
        /// Announced length.
        len: u64,
        /// The peer's limit.
        max: u64,
    },
    /// Too many outgoing messages queued; wait for some to finish.
    TooManyQueued(usize),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Closing => f.write_str("connection is closing: no new messages"),
            StartError::MetadataTooLarge { len, max } => write!(
                f,
                "route + metadata of {len} bytes exceed the peer's limit of {max}"
            ),
            StartError::MessageTooLarge { len, max } => {
                write!(f, "body of {len} bytes exceeds the peer's limit of {max}")
            }
            StartError::TooManyQueued(n) => write!(
                f,
                "{n} outgoing messages already queued; wait for some to complete"
            ),
        }
    }
}

/// `Connection::write`/`finish` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// No such outgoing message (never started, or already completed and forgotten).
    UnknownMessage,
    /// `finish` was already called.
    AlreadyFinished,
    /// The message's send buffer is full; wait for `Event::Writable`.
    Blocked,
    /// More body than the length announced at start.
    LengthExceeded {
        /// Announced length.
        announced: u64,
    },
    /// `finish` before the announced length was written.
    LengthShort {
        /// Announced length.
        announced: u64,
        /// Bytes written.
        written: u64,
    },
    /// The message failed.
    Failed(MessageError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::UnknownMessage => f.write_str("no such outgoing message"),
            WriteError::AlreadyFinished => f.write_str("message already finished"),
            WriteError::Blocked => f.write_str("send buffer full; wait for Writable"),
            WriteError::LengthExceeded { announced } => {
                write!(f, "body exceeds the announced length of {announced} bytes")
            }
            WriteError::LengthShort { announced, written } => write!(
                f,
                "finished after {written} bytes but {announced} were announced"
            ),
            WriteError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// `Connection::read` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// No such incoming message.
    UnknownMessage,
    /// No data buffered yet; wait for `Event::Readable`.
    Blocked,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::UnknownMessage => f.write_str("no such incoming message"),
            ReadError::Blocked => f.write_str("no data buffered; wait for Readable"),
        }
    }
}

#[cfg(feature = "std")]
mod std_impls {
    extern crate std;
    use super::*;
    impl std::error::Error for FrameError {}
    impl std::error::Error for LimitExceeded {}
    impl std::error::Error for HandshakeError {}
    impl std::error::Error for ProtocolViolation {}
    impl std::error::Error for ConnectionError {}
    impl std::error::Error for MessageError {}
    impl std::error::Error for StartError {}
    impl std::error::Error for WriteError {}
    impl std::error::Error for ReadError {}
}
