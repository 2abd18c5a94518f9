//! Typed errors of the legacy codec.
//!
//! This module owns every error the crate reports, split by who caused it:
//!
//! - [`DecodeError`]: the bytes the peer sent. Fatal variants (a length field
//!   that is negative or past a limit) mean the packet framing can no longer be
//!   trusted; the others concern one packet that was skipped, and the stream
//!   goes on ([`DecodeError::is_fatal`]).
//! - [`MessageError`]: why one incoming or outgoing message was refused or
//!   aborted, while the connection lives on.
//! - [`SendError`]: a local API call that cannot be honoured.
//!
//! Every message says what happened and what to do about it.

use std::fmt;

/// Which of the two length fields of an LSO packet a framing error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LengthField {
    /// The first `i32`: length of the JSON extension (the packet's type header).
    Extension,
    /// The second `i32`: length of the meta (payload or JSON head) that follows.
    Meta,
}

impl fmt::Display for LengthField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LengthField::Extension => "extension",
            LengthField::Meta => "meta",
        })
    }
}

/// Which JSON document of a packet a parsing error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonPart {
    /// The extension of any packet (`{"type": ..., "extension": ...}`).
    Extension,
    /// The meta of a `mission` packet (`{"extension", "length", "info"}`).
    MissionHead,
}

impl fmt::Display for JsonPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonPart::Extension => "packet extension",
            JsonPart::MissionHead => "mission head",
        })
    }
}

/// An error in the bytes received from a Python Netcore peer.
///
/// ```
/// use netcore_legacy::{DecodeError, Limits, PacketDecoder};
///
/// let mut decoder = PacketDecoder::new(Limits::default());
/// // An extension length of 0x7fff_ffff (2 GiB) is refused before any allocation.
/// let mut input: &[u8] = &[0xff, 0xff, 0xff, 0x7f, b'{'];
/// let err = decoder.decode(&mut input).unwrap_err();
/// assert!(matches!(err, DecodeError::LengthTooLarge { .. }));
/// assert!(err.is_fatal());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A length field is negative. Python would crash its receive thread.
    #[error(
        "LSO {field} length is negative ({len}): the peer does not speak Netcore 0.1.3 LSO \
         (or uses the other byte order) or the stream is corrupted; close the connection"
    )]
    NegativeLength {
        /// Which length field.
        field: LengthField,
        /// The value read.
        len: i32,
    },
    /// A length field is larger than the configured limit.
    #[error(
        "LSO {field} length {len} exceeds the limit of {limit} bytes: close the connection, \
         or raise the matching `Limits` field if this peer legitimately sends such packets"
    )]
    LengthTooLarge {
        /// Which length field.
        field: LengthField,
        /// The value read.
        len: u32,
        /// The limit in force.
        limit: usize,
    },
    /// A JSON document of the packet is not valid JSON (or not UTF-8).
    #[error(
        "{part} is not valid JSON ({reason}); the packet was skipped, \
         the peer is buggy or not a Netcore 0.1.3 peer"
    )]
    InvalidJson {
        /// Which JSON document.
        part: JsonPart,
        /// The parser's explanation.
        reason: String,
    },
    /// The extension names a packet type other than `mission`, `data`, `cancel`.
    #[error(
        "unknown LSO packet type {type_name:?} (Netcore 0.1.3 only sends \"mission\", \"data\" \
         and \"cancel\"); the packet was skipped"
    )]
    UnknownPacketType {
        /// The type found (truncated to 64 characters).
        type_name: String,
    },
    /// A required field is missing or has the wrong JSON type.
    #[error("{part} field `{field}` is missing or not {expected}; the packet was skipped")]
    InvalidField {
        /// Which JSON document.
        part: JsonPart,
        /// The field name.
        field: &'static str,
        /// What was expected, e.g. "a string".
        expected: &'static str,
    },
}

impl DecodeError {
    /// True when the packet framing is lost: nothing after this error can be
    /// decoded and the connection must be closed. Other errors skipped one
    /// packet and decoding goes on.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            DecodeError::NegativeLength { .. } | DecodeError::LengthTooLarge { .. }
        )
    }
}

/// Why one message was refused or aborted.
///
/// ```
/// use netcore_legacy::MessageError;
///
/// let e = MessageError::TooLarge { declared: 1 << 40, limit: 1 << 26 };
/// assert!(e.to_string().contains("max_message_len"));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The peer announced a message longer than `Limits::max_message_len`.
    #[error(
        "the peer announced a {declared}-byte message, over the limit of {limit} bytes \
         (`Limits::max_message_len`); its data is discarded, answer with an error or \
         raise the limit"
    )]
    TooLarge {
        /// Length from the mission head.
        declared: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The peer has too many incomplete messages in flight.
    #[error(
        "the peer has {limit} incomplete messages in flight already \
         (`Limits::max_incoming_messages`); this one is discarded"
    )]
    TooManyIncoming {
        /// The limit in force.
        limit: usize,
    },
    /// The peer sent more bytes than it announced (Python raises and stops reading).
    #[error(
        "the peer sent {received} bytes for a message it announced as {declared} bytes; \
         the message is discarded"
    )]
    Overflow {
        /// Length from the mission head.
        declared: u64,
        /// Bytes received including the offending chunk.
        received: u64,
    },
    /// The peer announced a message under an extension that is still in flight.
    #[error(
        "the peer reused mission id {extension:?} while that message is still incomplete; \
         both are discarded"
    )]
    DuplicateMission {
        /// The reused extension.
        extension: String,
    },
    /// The connection failed before the message was complete.
    #[error("the connection failed before the message was complete: {0}")]
    Connection(DecodeError),
    /// The transport closed before the message was complete.
    #[error("the connection closed before the message was complete")]
    Closed,
}

/// A local call on [`LegacyConnection`](crate::LegacyConnection) that cannot be honoured.
///
/// ```
/// use netcore_legacy::{Config, LegacyConnection, MessageId, SendError};
///
/// let mut conn = LegacyConnection::new(Config::default());
/// assert_eq!(conn.finish(MessageId(42)), Err(SendError::UnknownMessage(MessageId(42))));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No message in progress has this id (never started, already sent, or cancelled).
    #[error("no message in progress has id {0}")]
    UnknownMessage(crate::MessageId),
    /// Python Netcore 0.1.3 never delivers a zero-length message.
    #[error(
        "Python Netcore 0.1.3 never delivers an empty message (no data chunk ever completes \
         it, and its Endpoint stops on empty data): send at least one byte, or set \
         `Config::allow_empty_bodies` to send it anyway as Python does"
    )]
    EmptyBody,
    /// The encoded mission head is longer than a Python reader can take.
    #[error(
        "the mission head is {len} bytes of JSON; Python Netcore 0.1.3 misreads packets \
         over {limit} bytes: shorten the route or the headers"
    )]
    HeadTooLarge {
        /// Encoded head length.
        len: usize,
        /// Largest head a Python peer reads correctly.
        limit: usize,
    },
    /// More data was written than the length announced in the head.
    #[error("message {id} was announced as {declared} bytes; writing more is not possible")]
    TooLong {
        /// The message.
        id: crate::MessageId,
        /// Length announced in the head.
        declared: u64,
    },
    /// `finish` was called before all announced bytes were written.
    #[error(
        "message {id} was announced as {declared} bytes but only {written} were written: \
         write the rest or cancel it (the Python peer waits for exactly {declared} bytes)"
    )]
    Incomplete {
        /// The message.
        id: crate::MessageId,
        /// Length announced in the head.
        declared: u64,
        /// Bytes written so far.
        written: u64,
    },
    /// The whole message is on the wire already: the peer has it, a cancel would be ignored.
    #[error("message {0} was sent completely; it can no longer be cancelled")]
    AlreadySent(crate::MessageId),
    /// The mission id chosen with `with_extension` belongs to a message still being sent.
    #[error("mission id {0:?} is used by a message still being sent; choose another one")]
    DuplicateExtension(String),
    /// The transport was closed with `handle_close`.
    #[error("the connection is closed")]
    Closed,
    /// The message to answer is unknown, already answered, or not a request.
    #[error(
        "message {0} cannot be answered: it is unknown, was already answered, carried no \
         message_id, or was evicted (`Config::max_answerable`); reply with \
         `OutgoingHead::response_to_python_id` if you kept its message_id"
    )]
    NotAnswerable(crate::MessageId),
    /// The connection failed; nothing more can be sent on it.
    #[error("the connection failed: {0}")]
    ConnectionFailed(DecodeError),
    /// A header meant as a typed JSON value (the runtime's `legacy.json.` headers)
    /// does not hold valid JSON.
    #[error("header {key:?} must hold JSON text to become a typed info value: {reason}")]
    InvalidHeader {
        /// The header name.
        key: String,
        /// The parser's explanation.
        reason: String,
    },
}
