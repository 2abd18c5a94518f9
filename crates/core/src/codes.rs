//! Wire codes as open newtypes: frame kinds, error codes and urgency.
//!
//! Like h2's `Reason`, a code received from the wire is kept as its number even when this
//! version has no name for it, so unknown values survive a round trip and show up in
//! errors instead of being folded into a catch-all.

use core::fmt;

/// The kind byte that starts every frame. Unknown kinds are skipped by length (see
/// docs/PROTOCOL.md §4), so new kinds can be added without breaking old peers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameKind(pub u8);

impl FrameKind {
    /// Handshake: magic, version, capabilities and limits.
    pub const HELLO: FrameKind = FrameKind(0x00);
    /// Begins a message: route, correlation, metadata, length, first body bytes.
    pub const START: FrameKind = FrameKind(0x01);
    /// Body bytes of a message at an offset.
    pub const DATA: FrameKind = FrameKind(0x02);
    /// Last body bytes of a message; ends it.
    pub const END: FrameKind = FrameKind(0x03);
    /// Aborts a message, from its sender or its receiver.
    pub const CANCEL: FrameKind = FrameKind(0x04);
    /// Connection-level credit: total body bytes the peer may send.
    pub const MAX_DATA: FrameKind = FrameKind(0x05);
    /// Message-level credit: body offset up to which the peer may send one message.
    pub const MAX_MESSAGE_DATA: FrameKind = FrameKind(0x06);
    /// Message-count credit: highest message id the peer may start.
    pub const MAX_MESSAGES: FrameKind = FrameKind(0x07);
    /// Keepalive probe.
    pub const PING: FrameKind = FrameKind(0x08);
    /// Keepalive answer.
    pub const PONG: FrameKind = FrameKind(0x09);
    /// Graceful close: no new messages, in-flight ones finish.
    pub const GOAWAY: FrameKind = FrameKind(0x0a);
    /// Fatal connection error with a code and reason.
    pub const ERROR: FrameKind = FrameKind(0x0b);
    /// Serial profile: link frames that arrived corrupted or not at all.
    pub const NACK: FrameKind = FrameKind(0x0c);

    /// The name of a known kind, `None` for kinds this version does not know.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::HELLO => "HELLO",
            Self::START => "START",
            Self::DATA => "DATA",
            Self::END => "END",
            Self::CANCEL => "CANCEL",
            Self::MAX_DATA => "MAX_DATA",
            Self::MAX_MESSAGE_DATA => "MAX_MESSAGE_DATA",
            Self::MAX_MESSAGES => "MAX_MESSAGES",
            Self::PING => "PING",
            Self::PONG => "PONG",
            Self::GOAWAY => "GOAWAY",
            Self::ERROR => "ERROR",
            Self::NACK => "NACK",
            _ => return None,
        })
    }
}

impl fmt::Debug for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "FrameKind({:#04x})", self.0),
        }
    }
}

/// An error or cancellation code carried by CANCEL, GOAWAY and ERROR frames.
///
/// Codes below `0x100` are defined by the protocol; `0x100` and above belong to the
/// application (the netcore app layer uses them for remote handler errors).
///
/// ```
/// use netcore_core::ErrorCode;
/// assert_eq!(ErrorCode::CANCELLED.to_string(), "CANCELLED");
/// assert_eq!(ErrorCode(0x1234).to_string(), "ErrorCode(0x1234)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u64);

impl ErrorCode {
    /// No error: a graceful close.
    pub const NO_ERROR: ErrorCode = ErrorCode(0x00);
    /// The peer broke a protocol rule (bad frame, wrong state).
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x01);
    /// The sender hit an internal failure.
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x02);
    /// The peer sent more than the credit it was given.
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x03);
    /// A configured limit was exceeded (frame, message, metadata, concurrency, routes).
    pub const LIMIT_EXCEEDED: ErrorCode = ErrorCode(0x04);
    /// Handshake failed: wrong magic, unsupported version or profile.
    pub const INCOMPATIBLE: ErrorCode = ErrorCode(0x05);
    /// The application cancelled the message.
    pub const CANCELLED: ErrorCode = ErrorCode(0x06);
    /// The message was refused unprocessed (receiver going away); safe to retry.
    pub const REFUSED: ErrorCode = ErrorCode(0x07);
    /// Serial profile: a frame of the message was corrupted or lost on the link.
    pub const FRAME_LOST: ErrorCode = ErrorCode(0x08);
    /// A timeout expired (handshake, keepalive, drain).
    pub const TIMEOUT: ErrorCode = ErrorCode(0x09);
    /// First code of the application-defined range.
    pub const APPLICATION_MIN: ErrorCode = ErrorCode(0x100);

    /// The name of a protocol-defined code, `None` otherwise.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::NO_ERROR => "NO_ERROR",
            Self::PROTOCOL_ERROR => "PROTOCOL_ERROR",
            Self::INTERNAL_ERROR => "INTERNAL_ERROR",
            Self::FLOW_CONTROL_ERROR => "FLOW_CONTROL_ERROR",
            Self::LIMIT_EXCEEDED => "LIMIT_EXCEEDED",
            Self::INCOMPATIBLE => "INCOMPATIBLE",
            Self::CANCELLED => "CANCELLED",
            Self::REFUSED => "REFUSED",
            Self::FRAME_LOST => "FRAME_LOST",
            Self::TIMEOUT => "TIMEOUT",
            _ => return None,
        })
    }

    /// Whether the code is in the application-defined range.
    pub fn is_application(self) -> bool {
        self >= Self::APPLICATION_MIN
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

/// Scheduling urgency of a message, 0 (most urgent) to 7 (least), default 3, as in
/// RFC 9218. Frames of a more urgent message always go before those of a less urgent
/// one; messages of equal urgency share the link round robin, one frame each.
///
/// ```
/// use netcore_core::Urgency;
/// assert!(Urgency::HIGHEST < Urgency::DEFAULT);
/// assert_eq!(Urgency::new(9), Urgency::LOWEST); // clamped
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Urgency(u8);

impl Urgency {
    /// Most urgent class.
    pub const HIGHEST: Urgency = Urgency(0);
    /// The class of messages that do not choose one.
    pub const DEFAULT: Urgency = Urgency(3);
    /// Least urgent class, for bulk transfers.
    pub const LOWEST: Urgency = Urgency(7);
    /// Number of urgency classes.
    pub const CLASSES: usize = 8;

    /// An urgency, clamped to 0..=7.
    pub const fn new(value: u8) -> Urgency {
        if value > 7 {
            Urgency(7)
        } else {
            Urgency(value)
        }
    }

    /// The class number, 0..=7.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl Default for Urgency {
    fn default() -> Self {
        Self::DEFAULT
    }
}
