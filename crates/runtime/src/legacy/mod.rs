//! Legacy wire mode: serve and call Python Netcore 0.1.3 peers with the same [`Pipe`]
//! (and so the same app-layer routes and handlers) as on the native protocol.
//!
//! [`LegacyWire`] implements [`Wire`] over the sans-IO codec
//! [`netcore_legacy::LegacyConnection`], translating its events into the native
//! [`netcore_core::Event`]s the driver expects. Choose legacy mode when a connection is
//! set up:
//!
//! - [`Pipe::legacy`] (or [`pipe_with_monitor`]) over any [`Transport`];
//! - a text address with the `legacy+` prefix: `legacy+tcp://127.0.0.1:7000`,
//!   `legacy+unix:///tmp/x.sock`, `legacy+serial:///dev/ttyUSB0?baud=115200` — parsed by
//!   [`WireAddr`], used by [`connect`] and [`listen`] (which also take plain native
//!   addresses, so a CLI can pass any address text straight through).
//!
//! ```
//! use netcore_runtime::legacy::{LegacyOptions, WireAddr, WireMode};
//! use netcore_runtime::Pipe;
//! use netcore_runtime::transport::mem_pair;
//!
//! let addr: WireAddr = "legacy+tcp://127.0.0.1:7000".parse().unwrap();
//! assert_eq!(addr.mode, WireMode::Legacy);
//! assert_eq!(addr.transport.to_string(), "tcp://127.0.0.1:7000");
//! assert_eq!(addr.to_string(), "legacy+tcp://127.0.0.1:7000");
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), netcore_runtime::PipeError> {
//! // Two netcore peers speaking the Python wire format to each other.
//! let (a, b) = mem_pair(1 << 16);
//! let client = Pipe::legacy(a, LegacyOptions::default());
//! let server = Pipe::legacy(b, LegacyOptions::default());
//! tokio::spawn(async move {
//!     while let Some(req) = server.accept().await {
//!         let id = req.id;
//!         let body = req.collect(1 << 20).await.unwrap();
//!         server.reply(id, body).await.unwrap();
//!     }
//! });
//! let resp = client.request("echo", "hello").await?;
//! assert_eq!(resp.collect(1024).await?, "hello");
//! # Ok(()) }
//! ```
//!
//! # How the Python wire format maps onto the native events
//!
//! | Python Netcore 0.1.3 | native event / call |
//! |---|---|
//! | (no handshake) | `Connected` at once, with the Python limits as [`PeerParams`] |
//! | `mission` head, not a response | `Incoming` with `route`, `total_len`, headers |
//! | `mission` head, `is_response` + `message_id` of our request | `Incoming` with `reply_to` = our request |
//! | `data` packets | buffered here, `Readable` when the buffer turns non-empty |
//! | last byte of the announced length | the end (`read` → `Ok(None)`) |
//! | `cancel` packet | `Reset { CancelledByPeer(CANCELLED) }` |
//! | all chunks handed to the transport | `Sent` |
//! | transport EOF | `Closed { None }` if nothing was in flight, else `TransportClosed` |
//! | broken framing (negative or huge length) | `Closed` with a typed [`ConnectionError`] |
//!
//! Headers: the Python `info` dict becomes the metadata [`Headers`] block — `route` goes
//! to [`MessageHead::route`]; every other key is a header whose value is the string
//! itself for JSON strings, the JSON text otherwise. Two extra headers carry Python's
//! ids: [`HEADER_MESSAGE_ID`] and [`HEADER_MISSION`]. Outgoing headers become `info`
//! keys (UTF-8 values as JSON strings, other bytes as a JSON list of numbers, and
//! [`HEADER_JSON_PREFIX`]` + key` headers as the typed JSON value they hold); setting
//! [`HEADER_MESSAGE_ID`] forces a request's `message_id`, and [`HEADER_RESPOND_TO`]
//! sends a message as a response to a Python `message_id` kept by the application
//! (Python's `send_response(data, {"message_id": ...})`).
//!
//! # Limits and buffering
//!
//! Python has no flow control: a Python sender pushes every chunk as fast as its socket
//! takes it. The driver cannot pause a legacy peer, so incoming body bytes the
//! application has not read yet are buffered here, at most
//! [`LegacyOptions::max_buffered_incoming`] bytes per connection. When data would push
//! the buffer past it, the message holding the most unread bytes is reset with
//! [`MessageError::Limit`] and the rest of it discarded (the connection and the other
//! messages live on): read bodies promptly or spill them to files. A single
//! message is at most `Limits::max_message_len` (64 MiB by default); larger heads are
//! rejected and, when they are requests, answered with a JSON error so the Python caller
//! stops waiting.
//!
//! Python needs a body's length up front. A message started without a length (a
//! stream of unknown size) is buffered here until it is finished, at most
//! [`LegacyOptions::max_unsized_body`] bytes; past that it fails with
//! `MessageError::Limit`. Python cannot receive an empty body (it never completes one):
//! sending one fails with `Stopped { CancelledLocally(EMPTY_BODY) }` ([`EMPTY_BODY`])
//! unless `codec.allow_empty_bodies` asks for Python's own bytes (a head alone).
//! Python answers every message its handler returns something for; answers nobody waits
//! for (after a timeout, or to a one-way message: [`APP_ONE_WAY_HEADER`]) are dropped.
//! Every refused or malformed thing is also recorded, with the codec's precise error, in
//! the [`LegacyMonitor`].
//!
//! Layout: this file holds the options, errors, headers and monitor; `wire/` the
//! [`LegacyWire`] adapter (state in `wire/mod.rs`, codec events in `incoming.rs`,
//! messages handed to the codec in `outgoing.rs`, the [`Wire`] calls in `api.rs`);
//! `addr.rs` the pipes, addresses, [`connect`] and [`listen`].

use bytes::Bytes;
use netcore_core::metadata::Headers;
use netcore_core::{
    ConnectionError, ErrorCode, Event, FrameError, FrameKind, Instant, LimitExceeded, LimitKind,
    MessageError, MessageHead, MessageId, PeerParams, ProtocolViolation, ReadError, StartError,
    WriteError,
};
use netcore_legacy::serde_json::{self, Value};
use netcore_legacy::{
    Config as LegacyConfig, DecodeError, Event as LEvent, IncomingHead, LegacyConnection,
    MessageError as LMessageError, MessageId as LId, OutgoingHead, SendError,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::pipe::Wire;
use crate::pipe::{Pipe, PipeConfig, PipeError};
use crate::transport::{self, AddrParseError, Listener, Transport, TransportAddr, TransportError};

mod addr;
mod wire;

pub use addr::{
    connect, connect_addr, from_fns, listen, pipe_with_monitor, WireAddr, WireListener, WireMode,
    LEGACY_PREFIX,
};
pub use wire::LegacyWire;

/// Header carrying the Python `message_id` of an incoming message; on an outgoing
/// request it forces the `message_id` to use.
pub const HEADER_MESSAGE_ID: &str = "legacy.message_id";
/// Header carrying the Python mission id (`extension`) of an incoming message.
pub const HEADER_MISSION: &str = "legacy.mission";
/// Prefix of outgoing headers whose value is JSON text, sent as a typed `info` value:
/// `legacy.json.count` = `5` becomes `"count": 5` (a plain header would be `"5"`).
pub const HEADER_JSON_PREFIX: &str = "legacy.json.";
/// Header on an outgoing message: send it as a response to this Python `message_id`.
pub const HEADER_RESPOND_TO: &str = "legacy.respond_to";

/// The app layer's one-way marker (`netcore::ONE_WAY_HEADER`): such a message waits for
/// no response, so a Python answer to it is dropped (and counted) here.
pub const APP_ONE_WAY_HEADER: &str = "netcore-oneway";

/// Application error code (see [`ErrorCode::APPLICATION_MIN`]) of an outgoing message
/// refused because Python cannot receive an empty body.
pub const EMPTY_BODY: ErrorCode = ErrorCode(0x4c_0001);
/// Code of an outgoing reply whose request cannot be answered in legacy mode (it carried
/// no `message_id`, was answered already, or was forgotten past `max_answerable`).
pub const NOT_ANSWERABLE: ErrorCode = ErrorCode(0x4c_0002);
/// Code of an outgoing message the codec refused for another reason (see the monitor).
pub const LEGACY_REFUSED: ErrorCode = ErrorCode(0x4c_0003);

/// Data packets below this size are coalesced before they are buffered.
const SMALL_CHUNK: usize = 1024;
/// Size at which coalesced small packets become one buffered chunk.
const COALESCED_CHUNK: usize = 8 * 1024;

/// Frame kind reported in errors about LSO packets (there are no native frames here).
const LSO: FrameKind = FrameKind(0x4c);

/// Settings of a legacy-mode connection.
///
/// ```
/// use netcore_runtime::legacy::LegacyOptions;
/// let mut options = LegacyOptions::default();
/// options.codec.limits.max_message_len = 16 << 20;
/// options.max_buffered_incoming = 32 << 20;
/// assert!(options.answer_rejected);
/// ```
#[derive(Clone, Debug)]
pub struct LegacyOptions {
    /// The codec's settings: [`netcore_legacy::Limits`], byte order, chunk size, how
    /// many incoming requests stay answerable. `id_seed` 0 means "pick one at random".
    pub codec: LegacyConfig,
    /// Runtime settings of the pipe (buffers, pacing); `pipe.core` is not used.
    pub pipe: PipeConfig,
    /// Incoming body bytes buffered per connection while the application has not read
    /// them (Python has no flow control). Default 64 MiB.
    pub max_buffered_incoming: usize,
    /// Largest body of a message started without a length, buffered until it is
    /// finished because Python needs the length in the head. Default 16 MiB.
    pub max_unsized_body: usize,
    /// Body bytes queued per outgoing message before `write` reports `Blocked`.
    pub max_queued_per_message: usize,
    /// Requests of ours whose response is still matched; past this the oldest is
    /// forgotten: it fails with `Stopped { CancelledLocally(LIMIT_EXCEEDED) }` and its
    /// late response is dropped. Default 4096.
    pub max_pending_requests: usize,
    /// Answer a refused incoming request (too large, too many in flight) with a JSON
    /// error body so the Python caller stops waiting. Default true.
    pub answer_rejected: bool,
    /// How long a graceful close waits for messages in flight.
    pub drain_timeout: Duration,
    /// Strip leading and trailing `/` from incoming routes (default true). Python
    /// routes are often written `/user/list` (a `Blueprint("users", "/user")` with
    /// `@bp.request("/list")`); netcore's router names the same route `user/list`.
    pub trim_route_slashes: bool,
}

impl Default for LegacyOptions {
    fn default() -> Self {
        LegacyOptions {
            codec: LegacyConfig::default(),
            pipe: PipeConfig::default(),
            max_buffered_incoming: 64 << 20,
            max_unsized_body: 16 << 20,
            max_queued_per_message: 256 * 1024,
            max_pending_requests: 4096,
            answer_rejected: true,
            drain_timeout: Duration::from_secs(5),
            trim_route_slashes: true,
        }
    }
}

/// Something the legacy peer or the local application did that legacy mode refused,
/// with the codec's precise error.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// Bytes from the peer could not be decoded (fatal ones closed the connection).
    #[error("legacy peer sent bad data: {0}")]
    Decode(DecodeError),
    /// An incoming message was refused or failed.
    #[error("legacy message refused: {0}")]
    Message(LMessageError),
    /// An outgoing message could not be sent to a Python peer.
    #[error("cannot send to a Python Netcore 0.1.3 peer: {0}")]
    Send(SendError),
    /// An incoming message was dropped because the bodies buffered for the application
    /// reached [`LegacyOptions::max_buffered_incoming`].
    #[error(
        "{buffered} bytes of incoming bodies are waiting to be read (limit {limit}, \
         `LegacyOptions::max_buffered_incoming`); Python has no flow control, so a message \
         was dropped: read bodies faster or raise the limit"
    )]
    BufferFull {
        /// Bytes buffered including the offending chunk.
        buffered: u64,
        /// The limit.
        limit: u64,
    },
    /// A response arrived that matches no pending request of ours; it was dropped.
    #[error("dropped a response to unknown message_id {message_id:?} (timed out or never sent)")]
    UnmatchedResponse {
        /// Its Python `message_id`.
        message_id: Option<String>,
    },
}

/// Counters of a legacy connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegacyStats {
    /// The codec's packet counters.
    pub codec: netcore_legacy::Stats,
    /// Malformed packets skipped (invalid JSON, unknown type, bad field).
    pub protocol_errors: u64,
    /// Incoming messages refused (limits, duplicates).
    pub rejected: u64,
    /// Refused requests answered with a JSON error.
    pub answered_rejected: u64,
    /// Responses matching no pending request, dropped.
    pub unmatched_responses: u64,
    /// Outgoing messages refused (empty, too large a head, not answerable).
    pub refused_sends: u64,
    /// Incoming messages dropped because the buffer limit was reached.
    pub buffer_overflows: u64,
    /// Incoming body bytes buffered now.
    pub buffered_incoming: u64,
    /// Highest `buffered_incoming` seen.
    pub peak_buffered_incoming: u64,
    /// Received bytes held by the codec (partial packet, early data).
    pub codec_buffered_input: u64,
}

#[derive(Default, Debug)]
struct MonitorState {
    stats: LegacyStats,
    errors: VecDeque<LegacyError>,
}

/// Observes a legacy connection from outside the driver: counters and recent errors.
///
/// ```
/// use netcore_runtime::legacy::{pipe_with_monitor, LegacyOptions};
/// use netcore_runtime::transport::mem_pair;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (a, _b) = mem_pair(1024);
/// let (_pipe, monitor) = pipe_with_monitor(a, LegacyOptions::default());
/// assert_eq!(monitor.stats().protocol_errors, 0);
/// assert!(monitor.errors().is_empty());
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct LegacyMonitor {
    inner: Arc<Mutex<MonitorState>>,
}

impl LegacyMonitor {
    fn lock(&self) -> std::sync::MutexGuard<'_, MonitorState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Current counters.
    pub fn stats(&self) -> LegacyStats {
        self.lock().stats
    }

    /// The most recent errors (up to 32), oldest first.
    pub fn errors(&self) -> Vec<LegacyError> {
        self.lock().errors.iter().cloned().collect()
    }

    fn record(&self, e: LegacyError) {
        tracing::debug!(error = %e, "legacy");
        let mut s = self.lock();
        if s.errors.len() >= 32 {
            s.errors.pop_front();
        }
        s.errors.push_back(e);
    }

    fn update(&self, f: impl FnOnce(&mut LegacyStats)) {
        f(&mut self.lock().stats);
    }
}
