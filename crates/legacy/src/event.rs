//! The types a [`LegacyConnection`](crate::LegacyConnection) takes and reports.
//!
//! This module owns the connection's vocabulary: [`MessageId`], its
//! [`Config`], the [`IncomingHead`] of a received message, the [`Event`]s it
//! emits and its diagnostic [`Stats`]. The state machine itself lives in
//! [`crate::connection`].

use crate::decoder::Limits;
use crate::error::{DecodeError, MessageError};
use crate::packet::{ByteOrder, Info, CHUNK_SIZE};
use std::fmt;

/// Our id for one message, incoming or outgoing, unique on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Settings of a [`LegacyConnection`](crate::LegacyConnection).
///
/// ```
/// use netcore_legacy::{Config, Limits};
/// let config = Config { id_seed: 0x5eed, limits: Limits::default(), ..Config::default() };
/// assert_eq!(config.chunk_size, 4096);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Limits on what the peer may make us buffer or track.
    pub limits: Limits,
    /// Byte order of the peer's `i32` length fields.
    pub byte_order: ByteOrder,
    /// Data chunk size, clamped to `1..=4096` (Python readers break above 4096).
    pub chunk_size: usize,
    /// Body bytes buffered per outgoing message before `write` accepts fewer.
    pub max_send_buffer: usize,
    /// Incoming requests remembered for [`OutgoingHead::response`](crate::OutgoingHead::response); the oldest
    /// unanswered one is forgotten past this.
    pub max_answerable: usize,
    /// Mixed into generated ids, so that two connections use different ones
    /// (pass something random; the codec has no random source).
    pub id_seed: u64,
    /// Send empty bodies as Python does: a head announcing `length: 0` and no data.
    /// A Python receiver never completes such a message (netcore receivers deliver
    /// it), so by default `start_message` refuses them with `SendError::EmptyBody`.
    pub allow_empty_bodies: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            byte_order: ByteOrder::Little,
            chunk_size: CHUNK_SIZE,
            max_send_buffer: 64 * 1024,
            max_answerable: 4096,
            id_seed: 0,
            allow_empty_bodies: false,
        }
    }
}

/// The head of an incoming message.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingHead {
    /// `info["route"]` (Python treats a missing route as `""`).
    pub route: Option<String>,
    /// `info["message_id"]`: keep it to answer with
    /// [`OutgoingHead::response_to_python_id`](crate::OutgoingHead::response_to_python_id).
    pub message_id: Option<String>,
    /// `info["is_response"]`.
    pub is_response: bool,
    /// The request of ours this answers: set when `is_response` is true and
    /// `message_id` is one of our pending requests.
    pub in_reply_to: Option<MessageId>,
    /// Announced body length.
    pub length: u64,
    /// The sender's mission id.
    pub extension: String,
    /// All of `info`, including application headers, in wire order.
    pub info: Info,
}

/// Something that happened on the connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The peer announced a message; `Data` and then `MessageFinished` follow.
    MessageStarted {
        /// Our id for it.
        id: MessageId,
        /// Its head.
        head: IncomingHead,
    },
    /// A piece of an incoming body, in order.
    Data {
        /// The message.
        id: MessageId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// All announced bytes of an incoming message arrived.
    MessageFinished {
        /// The message.
        id: MessageId,
    },
    /// The peer cancelled an incoming message before it was complete.
    CancelledByPeer {
        /// The message.
        id: MessageId,
    },
    /// An announced message was refused (limits, duplicate id); its data is ignored.
    /// If it is a request, answer `head.message_id` so the Python side stops waiting;
    /// if `head.in_reply_to` is set, the response to that request of ours was refused.
    MessageRejected {
        /// Its head.
        head: IncomingHead,
        /// Why.
        error: MessageError,
    },
    /// A started message (either direction) was aborted.
    MessageFailed {
        /// The message.
        id: MessageId,
        /// Why.
        error: MessageError,
    },
    /// Every byte of an outgoing message was handed to `poll_transmit` and
    /// `finish` was called (Python's `mission_complete_handler`).
    SendComplete {
        /// The message.
        id: MessageId,
    },
    /// A malformed packet was skipped; the connection goes on.
    ProtocolError(DecodeError),
    /// The byte stream is unusable; the connection is dead.
    ConnectionFailed(DecodeError),
}

/// Counters for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets decoded.
    pub packets_received: u64,
    /// Packets produced by `poll_transmit`.
    pub packets_sent: u64,
    /// Data packets for unknown, rejected or cancelled missions (Python ignores them too).
    pub ignored_data_packets: u64,
    /// Cancels for missions not in progress.
    pub ignored_cancels: u64,
    /// Packets skipped as malformed.
    pub protocol_errors: u64,
    /// Data packets that arrived before their mission head and were replayed.
    pub early_data_packets: u64,
}
