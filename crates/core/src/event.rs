//! What the connection tells its driver, and the head of a message.

use crate::codes::{ErrorCode, Urgency};
use crate::error::{ConnectionError, MessageError};
use crate::route::Route;
use alloc::string::String;
use bytes::Bytes;
use core::fmt;

/// A message id. Each direction counts its own from 1, so an id names a message only
/// together with its direction: events about incoming messages carry the peer's ids,
/// events about outgoing messages carry ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Everything about a message except its body.
///
/// ```
/// use netcore_core::{MessageHead, Urgency};
/// let head = MessageHead::to_route("sensor/read").with_urgency(Urgency::HIGHEST);
/// assert_eq!(head.route.as_deref(), Some("sensor/read"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageHead {
    /// Route name, e.g. `user/list`. Responses usually have none.
    pub route: Option<Route>,
    /// Opaque metadata (the app layer keeps headers here). Empty means none.
    pub metadata: Bytes,
    /// Body length when known in advance.
    pub total_len: Option<u64>,
    /// The message this one answers (an id of the *receiver's* direction).
    pub reply_to: Option<MessageId>,
    /// Scheduling urgency.
    pub urgency: Urgency,
}

impl MessageHead {
    /// A head with just a route (a `&str`, a `String`, or a [`Route`], which a route
    /// known at compile time can be without allocating).
    pub fn to_route(route: impl Into<Route>) -> MessageHead {
        MessageHead {
            route: Some(route.into()),
            ..MessageHead::default()
        }
    }

    /// A head answering `request`.
    pub fn reply(request: MessageId) -> MessageHead {
        MessageHead {
            reply_to: Some(request),
            ..MessageHead::default()
        }
    }

    /// Sets the urgency.
    pub fn with_urgency(mut self, urgency: Urgency) -> MessageHead {
        self.urgency = urgency;
        self
    }

    /// Sets the metadata block.
    pub fn with_metadata(mut self, metadata: Bytes) -> MessageHead {
        self.metadata = metadata;
        self
    }

    /// Sets the announced body length.
    pub fn with_len(mut self, len: u64) -> MessageHead {
        self.total_len = Some(len);
        self
    }
}

/// The limits and capabilities the peer announced in its HELLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerParams {
    /// Its protocol version.
    pub version: u8,
    /// Its session number.
    pub session: u64,
    /// Largest frame payload it accepts.
    pub max_frame: u64,
    /// Largest message body it accepts (`None`: unlimited).
    pub max_message: Option<u64>,
    /// Largest route + metadata it accepts.
    pub max_metadata: u64,
    /// Concurrent incoming messages it accepts.
    pub max_incoming: u64,
}

/// Something the driver must act on. Take them with `Connection::poll_event` after
/// every input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed.
    Connected(PeerParams),
    /// The peer started a message; read its body with `Connection::read`.
    Incoming {
        /// The peer's id for it.
        id: MessageId,
        /// Route, metadata, length, correlation, urgency.
        head: MessageHead,
    },
    /// The peer sent a whole message in one frame, delivered with its body (only
    /// within the budget of `Connection::set_whole_delivery`; otherwise it comes as
    /// `Incoming` and `Readable`). The connection keeps nothing of it.
    Message {
        /// The peer's id for it.
        id: MessageId,
        /// Route, metadata, length, correlation, urgency.
        head: MessageHead,
        /// The whole body.
        body: Bytes,
    },
    /// Body bytes (or the end) became available on an incoming message that had none
    /// buffered. Read until `Blocked` or the end; no further event comes for data that
    /// is already buffered.
    Readable {
        /// The incoming message.
        id: MessageId,
    },
    /// An incoming message failed; its partial body is gone. Can also come after its
    /// body completed, when the peer abandons it (e.g. a request whose caller gave up).
    Reset {
        /// The incoming message.
        id: MessageId,
        /// Why.
        error: MessageError,
    },
    /// An incoming message was refused before the application saw it.
    Rejected {
        /// The peer's id for it.
        id: MessageId,
        /// Why.
        error: MessageError,
    },
    /// An outgoing message that reported `Blocked` can take more body.
    Writable {
        /// The outgoing message.
        id: MessageId,
    },
    /// An outgoing message was fully handed to the transmit buffer.
    Sent {
        /// The outgoing message.
        id: MessageId,
    },
    /// Outgoing messages `first`, `first + 1`, … `first + count - 1` were fully handed
    /// to the transmit buffer, in that order: what `count` consecutive [`Sent`]
    /// events would say, reported together. Only after
    /// `Connection::set_sent_ranges(true)`, which reports every message sent this way.
    ///
    /// [`Sent`]: Event::Sent
    SentRange {
        /// The first of them.
        first: MessageId,
        /// How many (at least 1).
        count: u64,
    },
    /// An outgoing message failed or was stopped by the peer. Also possible after
    /// `Sent`: the peer refused it (GOAWAY) or stopped it before reading it all, or, on
    /// the serial profile, a frame of it was lost on the line. At most once per message.
    Stopped {
        /// The outgoing message.
        id: MessageId,
        /// Why.
        error: MessageError,
    },
    /// The peer began a graceful close: it starts no new requests.
    GoingAway {
        /// Its code.
        code: ErrorCode,
        /// Its reason.
        reason: String,
    },
    /// The connection ended: `None` after a graceful close, the error otherwise.
    Closed {
        /// Why, unless graceful.
        error: Option<ConnectionError>,
    },
}
