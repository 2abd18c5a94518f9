//! Typed errors of the schema layer.
//!
//! This module owns [`SchemaError`], the single error type returned by every fallible
//! function of the crate: schema definition, encoding, decoding, framing and I/O.
//! [`SchemaError::is_fatal_for_stream`] tells whether a TCP connection can keep going
//! after the error (the framing is intact) or must be closed.

use std::time::Duration;

/// Everything that can go wrong while defining, encoding, decoding or exchanging
/// typed messages.
///
/// Each message says what happened and what to do about it.
///
/// ```
/// use netcore_schema::SchemaError;
/// let err = SchemaError::UnknownType { type_id: 7 };
/// assert!(err.to_string().contains("7"));
/// assert!(!err.is_fatal_for_stream());
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A struct format string (field or header) is not one binary_protocol accepts.
    #[error("invalid format string {format:?}: {reason}; use an optional byte-order prefix (< > ! = @) followed by one of b B h H i I l L q Q e f d ?")]
    InvalidFormat {
        /// The rejected format string.
        format: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A schema definition (Rust builder or schema file) is inconsistent.
    #[error("invalid schema: {0}; fix the schema definition")]
    InvalidSchema(String),
    /// A message type id that the schema does not define.
    #[error("unknown message type {type_id}: the schema defines no such type; register it or check the peer's schema")]
    UnknownType {
        /// The id found in the header (unsigned reading of the header bytes).
        type_id: u64,
    },
    /// A payload whose length does not match what the layout requires.
    #[error("wrong payload length for message type {type_id}: expected {expected} bytes, got {actual}; the peer uses a different layout for this type")]
    WrongLength {
        /// Message type id.
        type_id: u64,
        /// Length the layout requires.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// A payload larger than `max_payload_size` (sent or announced by a peer).
    #[error("payload of {size} bytes exceeds max_payload_size {max}; raise ProtocolConfig::max_payload_size on both ends or send smaller messages")]
    PayloadTooLarge {
        /// Payload size (announced by the peer or produced by the encoder).
        size: u64,
        /// Configured limit.
        max: usize,
    },
    /// The checksum trailer does not match the message bytes.
    #[error("checksum mismatch on message type {type_id}: the message was corrupted or the peer uses another checksum function/size; the message was dropped")]
    BadChecksum {
        /// Message type id.
        type_id: u64,
    },
    /// A text field holds bytes that are not UTF-8.
    #[error("field {field:?} is not valid UTF-8; the peer must send UTF-8 text or declare the field as bytes")]
    InvalidUtf8 {
        /// Field name.
        field: String,
    },
    /// Input ended inside a message (payload field, datagram or stream).
    #[error("truncated input: needed {needed} more bytes, {available} available; the peer sent an incomplete message or closed the connection mid-message")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A value cannot be encoded in its field (out of range, wrong kind, NUL in fixed text).
    #[error("field {field:?}: {reason}")]
    InvalidValue {
        /// Field name.
        field: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A value is longer than its fixed-length field (binary_protocol would corrupt the message).
    #[error("field {field:?}: {len} bytes do not fit in fixed length {max}; shorten the value or enlarge the field (values are never truncated)")]
    TooLong {
        /// Field name.
        field: String,
        /// Encoded length of the value.
        len: usize,
        /// Fixed length of the field.
        max: usize,
    },
    /// A dynamic message misses a field or has the wrong number of values.
    #[error("message type {type_id}: {reason}")]
    FieldMismatch {
        /// Message type id.
        type_id: u64,
        /// Which field is missing or extra.
        reason: String,
    },
    /// A validation hook rejected a message.
    #[error("message type {type_id} failed validation: {reason}")]
    ValidationFailed {
        /// Message type id.
        type_id: u64,
        /// The hook's reason.
        reason: String,
    },
    /// A handler returned an error.
    #[error("handler for message type {type_id} failed: {reason}")]
    Handler {
        /// Message type id.
        type_id: u64,
        /// The handler's error, rendered.
        reason: String,
    },
    /// A datagram larger than UDP allows (65507 bytes).
    #[error("datagram of {size} bytes exceeds the UDP limit of 65507; use TCP for large messages")]
    DatagramTooLarge {
        /// Encoded message size.
        size: usize,
    },
    /// An I/O operation did not finish in time.
    #[error(
        "{op} timed out after {after:?}; check the peer or raise the timeout in ProtocolConfig"
    )]
    Timeout {
        /// Which operation.
        op: &'static str,
        /// The configured timeout.
        after: Duration,
    },
    /// The peer closed the connection.
    #[error("connection closed by peer; reconnect to continue")]
    ConnectionClosed,
    /// The connection was broken by an earlier fatal error.
    #[error("connection is broken by an earlier error; reconnect to continue")]
    Broken,
    /// Operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A schema file could not be parsed.
    #[error("cannot parse schema file: {0}")]
    Parse(String),
}

impl SchemaError {
    /// Whether a byte stream cannot continue after this error.
    ///
    /// Non-fatal errors (bad checksum, invalid UTF-8, failed validation, oversized payload
    /// that was skipped, ...) concern one message whose bytes were fully consumed, so the
    /// next message starts at a known offset.
    ///
    /// ```
    /// use netcore_schema::SchemaError;
    /// assert!(SchemaError::ConnectionClosed.is_fatal_for_stream());
    /// assert!(!SchemaError::BadChecksum { type_id: 1 }.is_fatal_for_stream());
    /// ```
    pub fn is_fatal_for_stream(&self) -> bool {
        matches!(
            self,
            SchemaError::Truncated { .. }
                | SchemaError::Timeout { .. }
                | SchemaError::ConnectionClosed
                | SchemaError::Broken
                | SchemaError::Io(_)
        )
    }

    pub(crate) fn invalid_value(field: &str, reason: impl Into<String>) -> Self {
        SchemaError::InvalidValue {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Result alias of this crate.
///
/// ```
/// fn f() -> netcore_schema::Result<u8> { Ok(1) }
/// assert_eq!(f().unwrap(), 1);
/// ```
pub type Result<T, E = SchemaError> = std::result::Result<T, E>;
