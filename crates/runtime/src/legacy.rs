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

#[derive(Debug)]
struct InState {
    legacy: LId,
    chunks: VecDeque<Bytes>,
    /// Small data packets coalesced here, so that a peer sending one-byte packets
    /// cannot make bookkeeping outgrow the bytes counted against the limit.
    tail: Vec<u8>,
    buffered: usize,
    ended: bool,
}

#[derive(Debug)]
enum OutState {
    /// Started without a length: the body is collected until `finish`.
    Unsized {
        head: MessageHead,
        chunks: Vec<Bytes>,
        len: usize,
    },
    /// Announced to the codec.
    Started {
        legacy: LId,
        total: u64,
        written: u64,
        pending: VecDeque<Bytes>,
        pending_bytes: usize,
        finish_pending: bool,
        finished: bool,
        blocked: bool,
    },
}

/// A [`Wire`] speaking the Python Netcore 0.1.3 wire format. See the
/// [module docs](self) for the mapping.
///
/// ```
/// use netcore_runtime::legacy::{LegacyOptions, LegacyWire};
/// use netcore_runtime::legacy::Wire;
/// use netcore_core::{Event, Instant, MessageHead};
/// use bytes::Bytes;
///
/// let mut wire = LegacyWire::new(&LegacyOptions::default());
/// assert!(matches!(wire.poll_event(), Some(Event::Connected(_))));
/// let id = wire.send(MessageHead::to_route("echo"), Bytes::from_static(b"hi")).unwrap();
/// let mut out = Vec::new();
/// wire.poll_transmit(Instant::ZERO, &mut out, 64 * 1024);
/// assert!(out.starts_with(b"\x13\0\0\0{\"type\": \"mission\"}"));
/// assert!(out.ends_with(b"hi"));
/// assert_eq!(wire.poll_event(), Some(Event::Sent { id }));
/// ```
#[derive(Debug)]
pub struct LegacyWire {
    conn: LegacyConnection,
    options: LegacyOptions,
    monitor: LegacyMonitor,
    events: VecDeque<Event>,
    now: Instant,
    next_core: u64,
    /// Incoming: legacy id → core id while the codec may still report on it.
    in_map: HashMap<LId, u64>,
    incoming: HashMap<u64, InState>,
    buffered: usize,
    /// Incoming requests we may answer: core id → legacy id, oldest first.
    answerable: HashMap<u64, LId>,
    answerable_order: VecDeque<u64>,
    /// Outgoing: core id → state; legacy id → core id while in the codec.
    outgoing: HashMap<u64, OutState>,
    out_map: HashMap<LId, u64>,
    /// Our requests awaiting a response: legacy id → core id, oldest first.
    requests: HashMap<LId, u64>,
    requests_order: VecDeque<LId>,
    /// Codec messages sent on our own (answers to refused requests).
    internal: HashSet<LId>,
    closing_since: Option<Instant>,
    closed: bool,
}

static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let c = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    (t ^ c ^ u64::from(std::process::id()).rotate_left(32)).wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

impl LegacyWire {
    /// A connection with nothing in flight; `Connected` is its first event.
    pub fn new(options: &LegacyOptions) -> LegacyWire {
        let mut codec = options.codec.clone();
        if codec.id_seed == 0 {
            codec.id_seed = random_seed();
        }
        let params = PeerParams {
            version: 0,
            session: 0,
            max_frame: codec.chunk_size.clamp(1, netcore_legacy::CHUNK_SIZE) as u64,
            max_message: None,
            max_metadata: netcore_legacy::PYTHON_MAX_META as u64,
            max_incoming: u64::from(u32::MAX),
        };
        let mut events = VecDeque::new();
        events.push_back(Event::Connected(params));
        LegacyWire {
            conn: LegacyConnection::new(codec),
            options: options.clone(),
            monitor: LegacyMonitor::default(),
            events,
            now: Instant::ZERO,
            next_core: 1,
            in_map: HashMap::new(),
            incoming: HashMap::new(),
            buffered: 0,
            answerable: HashMap::new(),
            answerable_order: VecDeque::new(),
            outgoing: HashMap::new(),
            out_map: HashMap::new(),
            requests: HashMap::new(),
            requests_order: VecDeque::new(),
            internal: HashSet::new(),
            closing_since: None,
            closed: false,
        }
    }

    /// A handle on this connection's counters and errors, usable after the wire moved
    /// into a [`Pipe`].
    pub fn monitor(&self) -> LegacyMonitor {
        self.monitor.clone()
    }

    fn alloc(&mut self) -> u64 {
        let id = self.next_core;
        self.next_core += 1;
        id
    }

    fn sync_stats(&self) {
        let codec = self.conn.stats();
        let buffered = self.buffered as u64;
        let input = self.conn.buffered_input() as u64;
        self.monitor.update(|s| {
            s.codec = codec;
            s.buffered_incoming = buffered;
            s.peak_buffered_incoming = s.peak_buffered_incoming.max(buffered);
            s.codec_buffered_input = input;
        });
    }

    // ----- incoming ------------------------------------------------------------------

    /// Translates everything the codec reported.
    fn drain_codec(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            self.on_codec_event(ev);
        }
    }

    fn on_codec_event(&mut self, ev: LEvent) {
        match ev {
            LEvent::MessageStarted { id, head } => self.on_started(id, head),
            LEvent::Data { id, data } => self.on_data(id, data),
            LEvent::MessageFinished { id } => {
                if let Some(core) = self.in_map.remove(&id) {
                    if let Some(s) = self.incoming.get_mut(&core) {
                        s.ended = true;
                        if s.buffered == 0 {
                            self.events.push_back(Event::Readable {
                                id: MessageId(core),
                            });
                        }
                    }
                }
            }
            LEvent::CancelledByPeer { id } => {
                if let Some(core) = self.in_map.remove(&id) {
                    self.drop_incoming(core);
                    self.forget_answerable(core);
                    self.events.push_back(Event::Reset {
                        id: MessageId(core),
                        error: MessageError::CancelledByPeer(ErrorCode::CANCELLED),
                    });
                }
            }
            LEvent::MessageRejected { head, error } => self.on_rejected(head, error),
            LEvent::MessageFailed { id, error } => {
                let mapped = map_message_error(&error);
                if let Some(core) = self.in_map.remove(&id) {
                    self.drop_incoming(core);
                    self.forget_answerable(core);
                    self.events.push_back(Event::Reset {
                        id: MessageId(core),
                        error: mapped,
                    });
                } else if let Some(core) = self.out_map.remove(&id) {
                    self.outgoing.remove(&core);
                    self.forget_request_legacy(id);
                    self.events.push_back(Event::Stopped {
                        id: MessageId(core),
                        error: mapped,
                    });
                } else {
                    self.internal.remove(&id);
                }
                if !matches!(error, LMessageError::Connection(_) | LMessageError::Closed) {
                    self.monitor.record(LegacyError::Message(error));
                }
            }
            LEvent::SendComplete { id } => {
                if self.internal.remove(&id) {
                    return;
                }
                if let Some(core) = self.out_map.remove(&id) {
                    self.outgoing.remove(&core);
                    self.events.push_back(Event::Sent {
                        id: MessageId(core),
                    });
                }
            }
            LEvent::ProtocolError(e) => {
                self.monitor.update(|s| s.protocol_errors += 1);
                self.monitor.record(LegacyError::Decode(e));
            }
            LEvent::ConnectionFailed(e) => {
                let err = map_decode_error(&e);
                self.monitor.record(LegacyError::Decode(e));
                self.enter_closed(Some(err));
            }
            other => tracing::debug!(event = ?other, "unhandled legacy event"),
        }
    }

    fn on_started(&mut self, id: LId, head: IncomingHead) {
        // (`requests_order` keeps the stale entry; it is skipped or compacted later.)
        let reply_to = head.in_reply_to.and_then(|req| self.requests.remove(&req));
        if head.is_response && reply_to.is_none() {
            // A response to nothing we wait for: Python would route it as a request.
            let _ = self.conn.cancel(id);
            self.monitor.update(|s| s.unmatched_responses += 1);
            self.monitor.record(LegacyError::UnmatchedResponse {
                message_id: head.message_id,
            });
            return;
        }
        let core = self.alloc();
        let mut headers = Headers::new();
        for (k, v) in head.info.headers() {
            headers.insert(k, header_value(v));
        }
        if let Some(mid) = &head.message_id {
            headers.insert(HEADER_MESSAGE_ID, mid.clone());
        }
        headers.insert(HEADER_MISSION, head.extension.clone());
        if !head.is_response && head.message_id.is_some() {
            self.remember_answerable(core, id);
        }
        self.in_map.insert(id, core);
        self.incoming.insert(
            core,
            InState {
                legacy: id,
                chunks: VecDeque::new(),
                tail: Vec::new(),
                buffered: 0,
                ended: false,
            },
        );
        self.events.push_back(Event::Incoming {
            id: MessageId(core),
            head: MessageHead {
                route: Some(match head.route {
                    Some(r) if self.options.trim_route_slashes => r.trim_matches('/').into(),
                    r => r.unwrap_or_default().into(),
                }),
                metadata: headers.encode(),
                total_len: Some(head.length),
                reply_to: reply_to.map(MessageId),
                urgency: Default::default(),
            },
        });
    }

    fn on_data(&mut self, id: LId, data: Vec<u8>) {
        let Some(&core) = self.in_map.get(&id) else {
            return;
        };
        let limit = self.options.max_buffered_incoming;
        while self.buffered + data.len() > limit {
            // Python cannot be slowed down: drop the message holding the most unread
            // bytes (counting this chunk), so one hog does not starve the others.
            let total = (self.buffered + data.len()) as u64;
            let victim = self
                .incoming
                .iter()
                .map(|(&c, s)| (s.buffered + if c == core { data.len() } else { 0 }, c))
                .max()
                .map_or(core, |(_, c)| c);
            self.overflow(victim, total, limit as u64);
            if victim == core || !self.incoming.contains_key(&core) {
                return;
            }
        }
        let Some(s) = self.incoming.get_mut(&core) else {
            return;
        };
        let was_empty = s.buffered == 0;
        s.buffered += data.len();
        self.buffered += data.len();
        if data.len() < SMALL_CHUNK {
            s.tail.extend_from_slice(&data);
            if s.tail.len() >= COALESCED_CHUNK {
                s.chunks.push_back(Bytes::from(std::mem::take(&mut s.tail)));
            }
        } else {
            if !s.tail.is_empty() {
                s.chunks.push_back(Bytes::from(std::mem::take(&mut s.tail)));
            }
            s.chunks.push_back(Bytes::from(data));
        }
        if was_empty {
            self.events.push_back(Event::Readable {
                id: MessageId(core),
            });
        }
    }

    /// Resets incoming message `core` because unread bodies reached the limit.
    fn overflow(&mut self, core: u64, buffered: u64, limit: u64) {
        if let Some(s) = self.incoming.get(&core) {
            let legacy = s.legacy;
            if self.in_map.remove(&legacy).is_some() {
                let _ = self.conn.cancel(legacy);
            }
        }
        self.drop_incoming(core);
        self.forget_answerable(core);
        self.monitor.update(|s| s.buffer_overflows += 1);
        self.monitor
            .record(LegacyError::BufferFull { buffered, limit });
        self.events.push_back(Event::Reset {
            id: MessageId(core),
            error: MessageError::Limit(LimitExceeded {
                kind: LimitKind::MessageSize,
                limit,
                actual: buffered,
            }),
        });
    }

    fn on_rejected(&mut self, head: IncomingHead, error: LMessageError) {
        self.monitor.update(|s| s.rejected += 1);
        let mapped = map_message_error(&error);
        if let Some(req) = head.in_reply_to {
            // The response to a request of ours was refused: fail that request.
            if let Some(core) = self.requests.remove(&req) {
                self.events.push_back(Event::Stopped {
                    id: MessageId(core),
                    error: mapped.clone(),
                });
            }
        } else if !head.is_response && self.options.answer_rejected {
            if let Some(mid) = &head.message_id {
                self.answer_error(mid, &mapped);
            }
        }
        self.monitor.record(LegacyError::Message(error));
    }

    /// Answers a refused Python request with `{"error": ..., "code": ...}`.
    fn answer_error(&mut self, message_id: &str, error: &MessageError) {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), Value::from(error.to_string()));
        body.insert("code".into(), Value::from(error.code().to_string()));
        let text = netcore_legacy::json::dumps(&Value::Object(body));
        let head = OutgoingHead::response_to_python_id(message_id, text.len() as u64);
        let Ok(id) = self.conn.start_message(head) else {
            return;
        };
        // The JSON is far below `max_send_buffer`, so one write takes it all.
        if self.conn.write(id, text.as_bytes()) == Ok(text.len()) && self.conn.finish(id).is_ok() {
            self.internal.insert(id);
            self.monitor.update(|s| s.answered_rejected += 1);
        } else {
            let _ = self.conn.cancel(id);
        }
    }

    fn drop_incoming(&mut self, core: u64) {
        if let Some(s) = self.incoming.remove(&core) {
            self.buffered -= s.buffered;
        }
    }

    fn remember_answerable(&mut self, core: u64, legacy: LId) {
        let max = self.options.codec.max_answerable.max(1);
        while self.answerable.len() >= max {
            match self.answerable_order.pop_front() {
                Some(old) => {
                    self.answerable.remove(&old);
                }
                None => break,
            }
        }
        if self.answerable_order.len() >= 2 * max {
            let live = &self.answerable;
            self.answerable_order.retain(|i| live.contains_key(i));
        }
        self.answerable.insert(core, legacy);
        self.answerable_order.push_back(core);
    }

    fn forget_answerable(&mut self, core: u64) {
        self.answerable.remove(&core);
    }

    fn remember_request(&mut self, legacy: LId, core: u64) {
        let max = self.options.max_pending_requests.max(1);
        while self.requests.len() >= max {
            let Some(old) = self.requests_order.pop_front() else {
                break;
            };
            let Some(core) = self.requests.remove(&old) else {
                continue; // answered already
            };
            // The oldest request stops waiting; its caller learns it now.
            self.conn.forget_request(old);
            if self.out_map.remove(&old).is_some() {
                self.outgoing.remove(&core);
                let _ = self.conn.cancel(old);
            }
            self.events.push_back(Event::Stopped {
                id: MessageId(core),
                error: MessageError::CancelledLocally(ErrorCode::LIMIT_EXCEEDED),
            });
        }
        if self.requests_order.len() >= 2 * max {
            let live = &self.requests;
            self.requests_order.retain(|i| live.contains_key(i));
        }
        self.requests.insert(legacy, core);
        self.requests_order.push_back(legacy);
    }

    fn forget_request_legacy(&mut self, legacy: LId) {
        if self.requests.remove(&legacy).is_some() {
            self.conn.forget_request(legacy);
        }
    }

    // ----- outgoing ------------------------------------------------------------------

    /// The codec head for a native head with a known body length.
    fn outgoing_head(&self, head: &MessageHead, len: u64) -> Result<OutgoingHead, SendError> {
        let headers = Headers::decode(&head.metadata).unwrap_or_else(|_| {
            // Not in header layout: pass the block as one opaque header.
            let mut h = Headers::new();
            if !head.metadata.is_empty() {
                h.insert("metadata", head.metadata.clone());
            }
            h
        });
        let mut out = match head.reply_to {
            Some(to) => {
                let legacy = self
                    .answerable
                    .get(&to.0)
                    .copied()
                    .ok_or(SendError::NotAnswerable(LId(to.0)))?;
                let mut h = OutgoingHead::response(legacy, len);
                if let Some(r) = &head.route {
                    h = h.with_route(r.clone());
                }
                h
            }
            None => match headers.get_str(HEADER_RESPOND_TO) {
                Some(mid) => {
                    let mut h = OutgoingHead::response_to_python_id(mid, len);
                    if let Some(r) = &head.route {
                        h = h.with_route(r.clone());
                    }
                    h
                }
                None => {
                    let mut h = OutgoingHead::request(head.route.clone().unwrap_or_default(), len);
                    if let Some(mid) = headers.get_str(HEADER_MESSAGE_ID) {
                        h = h.with_message_id(mid);
                    }
                    h
                }
            },
        };
        for (k, v) in headers.iter() {
            let (key, value) = match k.strip_prefix(HEADER_JSON_PREFIX) {
                // A typed `info` value: the header holds its JSON text.
                Some(key) => match serde_json::from_slice::<Value>(v) {
                    Ok(value) => (key, value),
                    Err(e) => {
                        return Err(SendError::InvalidHeader {
                            key: k.to_owned(),
                            reason: e.to_string(),
                        })
                    }
                },
                None => {
                    let value = match std::str::from_utf8(v) {
                        Ok(s) => Value::from(s),
                        Err(_) => Value::Array(v.iter().map(|b| Value::from(*b)).collect()),
                    };
                    (k, value)
                }
            };
            if key.starts_with("legacy.") || matches!(key, "route" | "message_id" | "is_response") {
                continue;
            }
            out = out.with_header(key, value);
        }
        Ok(out)
    }

    /// Announces a message to the codec; `Err` carries the reason for the monitor.
    fn start_codec(&mut self, core: u64, head: &MessageHead, len: u64) -> Result<LId, SendError> {
        if len == 0 && !self.options.codec.allow_empty_bodies {
            // The request stays answerable: a non-empty reply may follow.
            return Err(SendError::EmptyBody);
        }
        let og = self.outgoing_head(head, len)?;
        let is_request = head.reply_to.is_none() && head_is_request(head);
        let legacy = self.conn.start_message(og)?;
        if let Some(to) = head.reply_to {
            self.forget_answerable(to.0);
        }
        if is_request {
            self.remember_request(legacy, core);
        } else {
            // One-way: the codec must not keep waiting for an answer either.
            self.conn.forget_request(legacy);
        }
        self.out_map.insert(legacy, core);
        Ok(legacy)
    }

    fn refuse(&mut self, core: u64, e: SendError) {
        let code = match e {
            SendError::EmptyBody => EMPTY_BODY,
            SendError::NotAnswerable(_) => NOT_ANSWERABLE,
            _ => LEGACY_REFUSED,
        };
        self.monitor.update(|s| s.refused_sends += 1);
        self.monitor.record(LegacyError::Send(e));
        self.events.push_back(Event::Stopped {
            id: MessageId(core),
            error: MessageError::CancelledLocally(code),
        });
    }

    /// Moves queued body bytes into the codec as far as it takes them; finishes bodies.
    fn refill(&mut self) {
        let mut done = Vec::new();
        for (&core, st) in self.outgoing.iter_mut() {
            let OutState::Started {
                legacy,
                pending,
                pending_bytes,
                finish_pending,
                finished,
                ..
            } = st
            else {
                continue;
            };
            while let Some(chunk) = pending.front_mut() {
                match self.conn.write(*legacy, &chunk[..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        *pending_bytes -= n;
                        if n == chunk.len() {
                            pending.pop_front();
                        } else {
                            let _ = chunk.split_to(n);
                            break;
                        }
                    }
                    Err(e) => {
                        done.push((core, Some(e)));
                        break;
                    }
                }
            }
            if pending.is_empty() && *finish_pending && !*finished {
                *finish_pending = false;
                *finished = true;
                if let Err(e) = self.conn.finish(*legacy) {
                    done.push((core, Some(e)));
                }
            }
        }
        for (core, err) in done {
            if let Some(OutState::Started { legacy, .. }) = self.outgoing.remove(&core) {
                self.out_map.remove(&legacy);
                let _ = self.conn.cancel(legacy);
                self.forget_request_legacy(legacy);
            }
            if let Some(e) = err {
                self.refuse(core, e);
            }
        }
    }

    fn writable_events(&mut self) {
        let half = self.options.max_queued_per_message / 2;
        for (&core, st) in self.outgoing.iter_mut() {
            if let OutState::Started {
                blocked,
                pending_bytes,
                ..
            } = st
            {
                if *blocked && *pending_bytes <= half {
                    *blocked = false;
                    self.events.push_back(Event::Writable {
                        id: MessageId(core),
                    });
                }
            }
        }
    }

    // ----- closing -------------------------------------------------------------------

    fn in_flight(&self) -> bool {
        !self.outgoing.is_empty() || self.incoming.values().any(|s| !s.ended)
    }

    fn maybe_finish_close(&mut self) {
        if self.closed || self.closing_since.is_none() {
            return;
        }
        // As on the native protocol, replies the application still owes do not hold the
        // close open: an Endpoint finishes its handlers before closing.
        if !self.in_flight() && !self.conn.wants_transmit() {
            self.enter_closed(None);
        }
    }

    fn enter_closed(&mut self, error: Option<ConnectionError>) {
        if self.closed {
            return;
        }
        self.closed = true;
        // Everything in flight fails with this connection's error, below; the codec's
        // own failure events then find no mapping and are dropped.
        self.in_map.clear();
        self.out_map.clear();
        self.conn.handle_close();
        self.drain_codec();
        let msg_err = MessageError::ConnectionClosed(
            error.clone().unwrap_or(ConnectionError::TransportClosed),
        );
        let mut outs: Vec<u64> = self.outgoing.drain().map(|(k, _)| k).collect();
        outs.sort_unstable();
        for id in outs {
            self.events.push_back(Event::Stopped {
                id: MessageId(id),
                error: msg_err.clone(),
            });
        }
        let mut ins: Vec<u64> = self
            .incoming
            .iter()
            .filter(|(_, s)| !s.ended)
            .map(|(k, _)| *k)
            .collect();
        ins.sort_unstable();
        for id in ins {
            self.drop_incoming(id);
            self.events.push_back(Event::Reset {
                id: MessageId(id),
                error: msg_err.clone(),
            });
        }
        self.requests.clear();
        self.answerable.clear();
        self.events.push_back(Event::Closed { error });
        self.sync_stats();
    }
}

/// Whether a message of ours waits for a response: not a response itself, and not
/// one-way (the app layer's `netcore-oneway` header). Python answers every message its
/// handler returns something for; answers to one-way messages are then dropped here
/// instead of reaching the application as stray replies.
fn head_is_request(head: &MessageHead) -> bool {
    match Headers::decode(&head.metadata) {
        Ok(h) => h.get(HEADER_RESPOND_TO).is_none() && h.get(APP_ONE_WAY_HEADER).is_none(),
        Err(_) => true,
    }
}

/// An `info` value as a header value: strings as themselves, anything else as JSON.
fn header_value(v: &Value) -> Bytes {
    match v {
        Value::String(s) => Bytes::from(s.clone().into_bytes()),
        other => Bytes::from(netcore_legacy::json::dumps(other).into_bytes()),
    }
}

fn map_decode_error(e: &DecodeError) -> ConnectionError {
    let v = match e {
        DecodeError::LengthTooLarge { len, limit, .. } => ProtocolViolation::Limit(LimitExceeded {
            kind: LimitKind::FrameSize,
            limit: *limit as u64,
            actual: u64::from(*len),
        }),
        DecodeError::NegativeLength { .. } => ProtocolViolation::Frame(FrameError::Malformed {
            kind: LSO,
            what: "negative LSO length: not a Netcore 0.1.3 peer, or the other byte order",
        }),
        _ => ProtocolViolation::Frame(FrameError::Malformed {
            kind: LSO,
            what: "undecodable LSO packet",
        }),
    };
    ConnectionError::Protocol(v)
}

fn map_message_error(e: &LMessageError) -> MessageError {
    match e {
        LMessageError::TooLarge { declared, limit } => MessageError::Limit(LimitExceeded {
            kind: LimitKind::MessageSize,
            limit: *limit,
            actual: *declared,
        }),
        LMessageError::TooManyIncoming { limit } => MessageError::Limit(LimitExceeded {
            kind: LimitKind::IncomingMessages,
            limit: *limit as u64,
            actual: *limit as u64 + 1,
        }),
        LMessageError::Overflow { declared, received } => MessageError::Limit(LimitExceeded {
            kind: LimitKind::MessageSize,
            limit: *declared,
            actual: *received,
        }),
        LMessageError::Connection(d) => MessageError::ConnectionClosed(map_decode_error(d)),
        LMessageError::Closed => MessageError::ConnectionClosed(ConnectionError::TransportClosed),
        _ => MessageError::CancelledByPeer(ErrorCode::PROTOCOL_ERROR),
    }
}

fn map_send_start(e: SendError) -> StartError {
    match e {
        SendError::HeadTooLarge { len, limit } => StartError::MetadataTooLarge {
            len: len as u64,
            max: limit as u64,
        },
        _ => StartError::Closing,
    }
}

impl Wire for LegacyWire {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.now = now;
        if self.closed {
            return;
        }
        // A fatal error is reported as ConnectionFailed too; handled there.
        let _ = self.conn.handle_input(data);
        self.drain_codec();
        self.maybe_finish_close();
        self.sync_stats();
    }

    fn handle_transport_closed(&mut self, now: Instant) {
        self.now = now;
        if self.closed {
            return;
        }
        // Python ends a connection by closing its socket: graceful unless cut mid-message.
        let error = self.in_flight().then_some(ConnectionError::TransportClosed);
        self.enter_closed(error);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some(t) = self.closing_since {
            if !self.closed && now >= t + self.options.drain_timeout {
                // Replies still owed to the peer are abandoned; messages cut short
                // make the close an error.
                let error = self.in_flight().then_some(ConnectionError::DrainTimedOut);
                self.enter_closed(error);
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.closing_since {
            Some(t) if !self.closed => Some(t + self.options.drain_timeout),
            _ => None,
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>, limit: usize) -> usize {
        self.now = now;
        let start = buf.len();
        if self.closed {
            return 0;
        }
        loop {
            let written = buf.len() - start;
            if written > 0 && written >= limit {
                break;
            }
            self.refill();
            if self.conn.poll_transmit(buf) == 0 {
                break;
            }
        }
        self.drain_codec();
        self.writable_events();
        self.maybe_finish_close();
        self.sync_stats();
        buf.len() - start
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn send(&mut self, head: MessageHead, body: Bytes) -> Result<MessageId, StartError> {
        let mut head = head;
        head.total_len = Some(body.len() as u64);
        let id = self.start(head)?;
        if let Some(OutState::Started {
            pending,
            pending_bytes,
            written,
            finish_pending,
            ..
        }) = self.outgoing.get_mut(&id.0)
        {
            *written = body.len() as u64;
            *pending_bytes = body.len();
            if !body.is_empty() {
                pending.push_back(body);
            }
            *finish_pending = true;
        }
        self.refill();
        self.drain_codec();
        Ok(id)
    }

    fn start(&mut self, head: MessageHead) -> Result<MessageId, StartError> {
        if self.closed || (self.closing_since.is_some() && head.reply_to.is_none()) {
            return Err(StartError::Closing);
        }
        let core = self.alloc();
        let Some(total) = head.total_len else {
            self.outgoing.insert(
                core,
                OutState::Unsized {
                    head,
                    chunks: Vec::new(),
                    len: 0,
                },
            );
            return Ok(MessageId(core));
        };
        match self.start_codec(core, &head, total) {
            Ok(legacy) => {
                self.outgoing.insert(
                    core,
                    OutState::Started {
                        legacy,
                        total,
                        written: 0,
                        pending: VecDeque::new(),
                        pending_bytes: 0,
                        finish_pending: false,
                        finished: false,
                        blocked: false,
                    },
                );
                Ok(MessageId(core))
            }
            Err(e @ SendError::HeadTooLarge { .. }) => {
                self.monitor.update(|s| s.refused_sends += 1);
                self.monitor.record(LegacyError::Send(e.clone()));
                Err(map_send_start(e))
            }
            Err(e @ (SendError::Closed | SendError::ConnectionFailed(_))) => Err(map_send_start(e)),
            Err(e) => {
                // Reported as Stopped, with the precise reason in the monitor.
                self.refuse(core, e);
                Ok(MessageId(core))
            }
        }
    }

    fn write(&mut self, id: MessageId, data: Bytes) -> Result<usize, WriteError> {
        let cap = self.options.max_unsized_body;
        let queue_cap = self.options.max_queued_per_message.max(1);
        let st = self
            .outgoing
            .get_mut(&id.0)
            .ok_or(WriteError::UnknownMessage)?;
        match st {
            OutState::Unsized { chunks, len, .. } => {
                if *len + data.len() > cap {
                    let actual = (*len + data.len()) as u64;
                    self.outgoing.remove(&id.0);
                    let error = MessageError::Limit(LimitExceeded {
                        kind: LimitKind::MessageSize,
                        limit: cap as u64,
                        actual,
                    });
                    // The message is over: a request's caller learns it from Stopped.
                    self.events.push_back(Event::Stopped {
                        id,
                        error: error.clone(),
                    });
                    return Err(WriteError::Failed(error));
                }
                *len += data.len();
                if !data.is_empty() {
                    chunks.push(data.clone());
                }
                Ok(data.len())
            }
            OutState::Started {
                total,
                written,
                pending,
                pending_bytes,
                finish_pending,
                finished,
                blocked,
                ..
            } => {
                if *finish_pending || *finished {
                    return Err(WriteError::AlreadyFinished);
                }
                if *written + data.len() as u64 > *total {
                    return Err(WriteError::LengthExceeded { announced: *total });
                }
                if data.is_empty() {
                    return Ok(0);
                }
                if *pending_bytes >= queue_cap {
                    *blocked = true;
                    return Err(WriteError::Blocked);
                }
                let n = data.len();
                *written += n as u64;
                *pending_bytes += n;
                pending.push_back(data);
                self.refill();
                self.drain_codec();
                Ok(n)
            }
        }
    }

    fn finish(&mut self, id: MessageId) -> Result<(), WriteError> {
        let st = self
            .outgoing
            .get_mut(&id.0)
            .ok_or(WriteError::UnknownMessage)?;
        match st {
            OutState::Unsized { .. } => {
                let Some(OutState::Unsized {
                    mut head,
                    chunks,
                    len,
                }) = self.outgoing.remove(&id.0)
                else {
                    return Err(WriteError::UnknownMessage);
                };
                head.total_len = Some(len as u64);
                match self.start_codec(id.0, &head, len as u64) {
                    Ok(legacy) => {
                        self.outgoing.insert(
                            id.0,
                            OutState::Started {
                                legacy,
                                total: len as u64,
                                written: len as u64,
                                pending: chunks.into(),
                                pending_bytes: len,
                                finish_pending: true,
                                finished: false,
                                blocked: false,
                            },
                        );
                        self.refill();
                        self.drain_codec();
                        Ok(())
                    }
                    Err(e) => {
                        self.refuse(id.0, e);
                        Ok(())
                    }
                }
            }
            OutState::Started {
                total,
                written,
                finish_pending,
                finished,
                ..
            } => {
                if *finish_pending || *finished {
                    return Err(WriteError::AlreadyFinished);
                }
                if *written != *total {
                    return Err(WriteError::LengthShort {
                        announced: *total,
                        written: *written,
                    });
                }
                *finish_pending = true;
                self.refill();
                self.drain_codec();
                Ok(())
            }
        }
    }

    fn cancel(&mut self, id: MessageId, _code: ErrorCode) {
        match self.outgoing.remove(&id.0) {
            Some(OutState::Started { legacy, .. }) => {
                self.out_map.remove(&legacy);
                let _ = self.conn.cancel(legacy);
                self.forget_request_legacy(legacy);
            }
            Some(OutState::Unsized { .. }) => {}
            None => {
                // Fully sent: Python cannot be told; stop matching its response.
                let legacy = self
                    .requests
                    .iter()
                    .find(|(_, c)| **c == id.0)
                    .map(|(l, _)| *l);
                if let Some(l) = legacy {
                    self.forget_request_legacy(l);
                }
            }
        }
        self.drain_codec();
        self.maybe_finish_close();
    }

    fn read(&mut self, id: MessageId, max: usize) -> Result<Option<Bytes>, ReadError> {
        let max = if max == 0 { usize::MAX } else { max };
        let s = self
            .incoming
            .get_mut(&id.0)
            .ok_or(ReadError::UnknownMessage)?;
        if s.chunks.is_empty() && !s.tail.is_empty() {
            s.chunks.push_back(Bytes::from(std::mem::take(&mut s.tail)));
        }
        if let Some(front) = s.chunks.front_mut() {
            let chunk = if front.len() <= max {
                s.chunks.pop_front().unwrap_or_default()
            } else {
                front.split_to(max)
            };
            s.buffered -= chunk.len();
            self.buffered -= chunk.len();
            return Ok(Some(chunk));
        }
        if s.ended {
            self.incoming.remove(&id.0);
            self.maybe_finish_close();
            return Ok(None);
        }
        Err(ReadError::Blocked)
    }

    fn stop(&mut self, id: MessageId, _code: ErrorCode) {
        // Python cannot be asked to stop sending: its further data is discarded here.
        if let Some(s) = self.incoming.get(&id.0) {
            let legacy = s.legacy;
            if self.in_map.remove(&legacy).is_some() {
                let _ = self.conn.cancel(legacy);
            }
            self.drop_incoming(id.0);
        }
        self.forget_answerable(id.0);
        self.drain_codec();
        self.maybe_finish_close();
    }

    fn close(&mut self, _code: ErrorCode, _reason: &str) {
        // Python has no close message: stop starting requests, let the messages in
        // flight finish (replies may still start), then end the transport.
        if self.closed || self.closing_since.is_some() {
            return;
        }
        self.closing_since = Some(self.now);
        self.maybe_finish_close();
    }

    fn abort(&mut self, code: ErrorCode, _reason: &str) {
        self.enter_closed(Some(ConnectionError::LocallyAborted { code }));
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn is_open(&self) -> bool {
        !self.closed
    }

    fn is_drained(&self) -> bool {
        self.closed
    }
}

// ----- pipes and addresses -----------------------------------------------------------

impl Pipe {
    /// Starts a legacy-mode connection (Python Netcore 0.1.3 wire format) over
    /// `transport`. It is ready at once: Python has no handshake.
    ///
    /// ```
    /// use netcore_runtime::legacy::LegacyOptions;
    /// use netcore_runtime::Pipe;
    /// use netcore_runtime::transport::mem_pair;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), netcore_runtime::PipeError> {
    /// let (a, _b) = mem_pair(1 << 16);
    /// let pipe = Pipe::legacy(a, LegacyOptions::default());
    /// pipe.ready().await?;
    /// # Ok(()) }
    /// ```
    pub fn legacy(transport: Transport, options: LegacyOptions) -> Pipe {
        pipe_with_monitor(transport, options).0
    }
}

/// The seed's `Pipe(recv_func, send_func)` in legacy mode: blocking functions (a socket's
/// `recv`/`sendall`, a serial port's read/write) run on adapter threads, and the pipe
/// speaks the Python wire format over them.
///
/// ```
/// use netcore_runtime::legacy::{from_fns, LegacyOptions};
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), netcore_runtime::PipeError> {
/// // Any blocking byte channel; here one end of a socket pair stands in for a Python peer.
/// let (ours, mut theirs) = UnixStream::pair().unwrap();
/// let (mut r, mut w) = (ours.try_clone().unwrap(), ours);
/// let pipe = from_fns(move |buf| r.read(buf), move |data| w.write_all(data), LegacyOptions::default())?;
/// pipe.send("log", "started").await?.finished().await?;
/// let mut head = [0u8; 23];
/// theirs.read_exact(&mut head).unwrap();
/// assert_eq!(&head, b"\x13\0\0\0{\"type\": \"mission\"}");
/// # Ok(()) }
/// ```
pub fn from_fns<R, S>(recv: R, send: S, options: LegacyOptions) -> Result<Pipe, PipeError>
where
    R: FnMut(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
    S: FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
{
    let t = transport::from_fns(recv, send, transport::BlockingOptions::default())?;
    Ok(Pipe::legacy(t, options))
}

/// Starts a legacy-mode connection and returns its [`LegacyMonitor`] too.
pub fn pipe_with_monitor(transport: Transport, options: LegacyOptions) -> (Pipe, LegacyMonitor) {
    let wire = LegacyWire::new(&options);
    let monitor = wire.monitor();
    (Pipe::with_wire(wire, transport, options.pipe), monitor)
}

/// Which wire format a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum WireMode {
    /// The netcore protocol (docs/PROTOCOL.md).
    #[default]
    Native,
    /// Python Netcore 0.1.3 (docs/LEGACY.md).
    Legacy,
}

/// A transport address with its wire mode: `legacy+tcp://127.0.0.1:7000` is legacy mode
/// over TCP, `tcp://127.0.0.1:7000` native mode. Any transport scheme takes the
/// `legacy+` prefix. [`FromStr`] and [`Display`](fmt::Display) round-trip.
///
/// ```
/// use netcore_runtime::legacy::{WireAddr, WireMode};
/// let a: WireAddr = "tcp://127.0.0.1:7000".parse().unwrap();
/// assert_eq!(a.mode, WireMode::Native);
/// let b: WireAddr = "LEGACY+unix:///tmp/x.sock".parse().unwrap();
/// assert_eq!((b.mode, b.to_string().as_str()), (WireMode::Legacy, "legacy+unix:///tmp/x.sock"));
/// assert!("legacy+nope://x".parse::<WireAddr>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct WireAddr {
    /// The wire format.
    pub mode: WireMode,
    /// The transport address.
    pub transport: TransportAddr,
}

/// The address prefix selecting legacy mode.
pub const LEGACY_PREFIX: &str = "legacy+";

impl FromStr for WireAddr {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, AddrParseError> {
        let s = s.trim();
        let lower = s.get(..LEGACY_PREFIX.len()).map(str::to_ascii_lowercase);
        match lower {
            Some(p) if p == LEGACY_PREFIX => Ok(WireAddr {
                mode: WireMode::Legacy,
                transport: s[LEGACY_PREFIX.len()..].parse()?,
            }),
            _ => Ok(WireAddr {
                mode: WireMode::Native,
                transport: s.parse()?,
            }),
        }
    }
}

impl fmt::Display for WireAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mode == WireMode::Legacy {
            f.write_str(LEGACY_PREFIX)?;
        }
        write!(f, "{}", self.transport)
    }
}

/// Connects to an address in either mode (`legacy+tcp://…` or `tcp://…`) and returns a
/// ready [`Pipe`]; `options` apply to legacy mode (native mode uses the transport's
/// defaults, as [`Pipe::connect`]).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), netcore_runtime::PipeError> {
/// use netcore_runtime::legacy::{connect, LegacyOptions};
/// let pipe = connect("legacy+tcp://127.0.0.1:7000", LegacyOptions::default()).await?;
/// let reply = pipe.request("echo", "hello").await?;
/// # Ok(()) }
/// ```
pub async fn connect(addr: &str, options: LegacyOptions) -> Result<Pipe, PipeError> {
    let addr: WireAddr = addr.parse().map_err(TransportError::from)?;
    connect_addr(&addr, options).await
}

/// [`connect`] with a parsed address.
pub async fn connect_addr(addr: &WireAddr, options: LegacyOptions) -> Result<Pipe, PipeError> {
    match addr.mode {
        WireMode::Native => Pipe::connect(&addr.transport).await,
        WireMode::Legacy => {
            let t = transport::connect(&addr.transport).await?;
            let pipe = Pipe::legacy(t, options);
            pipe.ready().await?;
            Ok(pipe)
        }
    }
}

/// Accepts connections in one wire mode (from [`listen`]).
#[derive(Debug)]
pub struct WireListener {
    listener: Listener,
    mode: WireMode,
    options: LegacyOptions,
}

impl WireListener {
    /// Waits for the next connection and starts its [`Pipe`] in this listener's mode.
    pub async fn accept(&mut self) -> Result<Pipe, PipeError> {
        let t = self.listener.accept().await?;
        Ok(match self.mode {
            WireMode::Native => Pipe::with_defaults(t),
            WireMode::Legacy => Pipe::legacy(t, self.options.clone()),
        })
    }

    /// The address clients can connect to (with the `legacy+` prefix in legacy mode).
    pub fn local_addr(&self) -> Option<WireAddr> {
        self.listener.local_addr().map(|transport| WireAddr {
            mode: self.mode,
            transport,
        })
    }

    /// The wire mode of accepted connections.
    pub fn mode(&self) -> WireMode {
        self.mode
    }
}

/// Listens on an address in either mode (`legacy+tcp://127.0.0.1:7000`, `tcp://…`).
///
/// ```
/// use netcore_runtime::legacy::{connect, listen, LegacyOptions, WireMode};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), netcore_runtime::PipeError> {
/// let mut l = listen("legacy+tcp://127.0.0.1:0", LegacyOptions::default()).await?;
/// let addr = l.local_addr().unwrap().to_string();
/// assert!(addr.starts_with("legacy+tcp://127.0.0.1:"));
/// let client = connect(&addr, LegacyOptions::default()).await?;
/// let server = l.accept().await?;
/// client.send("log", "hi").await?.finished().await?;
/// assert_eq!(server.accept().await.unwrap().route(), "log");
/// # Ok(()) }
/// ```
pub async fn listen(addr: &str, options: LegacyOptions) -> Result<WireListener, PipeError> {
    let addr: WireAddr = addr.parse().map_err(TransportError::from)?;
    let listener = transport::listen(&addr.transport).await?;
    Ok(WireListener {
        listener,
        mode: addr.mode,
        options,
    })
}
