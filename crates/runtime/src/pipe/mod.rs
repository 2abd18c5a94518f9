//! [`Pipe`]: one netcore connection over any transport, driven by a background task.
//!
//! The seed's `Pipe(recv_func, send_func)`: give it a way to read and write bytes and it
//! carries any number of concurrent messages. Create one from a [`Transport`]
//! ([`Pipe::new`]), an address ([`Pipe::connect`]), any tokio stream
//! ([`Pipe::from_stream`]) or a pair of blocking functions ([`Pipe::from_fns`]).
//!
//! ```
//! use netcore_runtime::{Pipe, PipeConfig};
//! use netcore_runtime::transport::mem_pair;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), netcore_runtime::PipeError> {
//! let (a, b) = mem_pair(64 * 1024);
//! let client = Pipe::new(a, PipeConfig::default());
//! let server = Pipe::new(b, PipeConfig::default());
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

mod accept;
mod batch;
mod body;
mod builder;
mod completion;
mod driver;
mod error;
mod idhash;
mod message;
#[cfg(test)]
mod test_waker;
mod wire;
mod write_budget;

pub use batch::{BatchHandle, MessageBatch};
pub use body::{AbandonSignal, Body, Collected, IncomingBody};
pub use builder::{MessageBuilder, TimedMessageBuilder};
pub use error::PipeError;
pub use message::{IncomingMessage, MessageWriter, SendHandle};
pub use wire::Wire;

use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::{oneshot, watch};

use crate::transport::{self, Transport, TransportAddr, TransportInfo};
use accept::AcceptReceiver;
use driver::{Command, CommandSender, Driver};
use message::OutShared;
use netcore_core::metadata::Headers;
use netcore_core::{Config, ConnectionError, ErrorCode, MessageHead, MessageId, PeerParams, Route};
use std::future::poll_fn;

/// Identifies a connection within this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Settings of a [`Pipe`]: the protocol core's [`Config`] plus runtime buffers and pacing.
///
/// ```
/// use netcore_runtime::PipeConfig;
/// use netcore_runtime::transport::{LinkHint, TransportInfo, TransportKind};
/// let info = TransportInfo::new(TransportKind::Serial).with_link_hint(LinkHint::serial_baud(115_200));
/// let cfg = PipeConfig::for_transport(&info);
/// assert_eq!(cfg.core.profile, netcore_core::LinkProfile::Serial);
/// assert_eq!(cfg.pace_bytes_per_sec, Some(11_520));
/// ```
#[derive(Clone, Debug)]
pub struct PipeConfig {
    /// Protocol settings (link profile, limits, windows, timers).
    pub core: Config,
    /// Bytes buffered per incoming message on the reader's side before the driver stops
    /// pulling it from the core (and the peer's credit stops growing).
    pub body_buffer: usize,
    /// Bytes a [`MessageWriter`] may queue ahead of the core per message. A writer
    /// that fills it waits until half is free again (one wake-up per half buffer, or
    /// per write if its writes are larger); a single larger write is queued whole.
    pub write_buffer: usize,
    /// Bytes of messages in the accept queue whose bodies the driver reads ahead of
    /// the application. Each queued message counts what its body can grow to (its
    /// length, at most `body_buffer`) plus 512 bytes for itself; past this, new
    /// messages wait in the core, where they count against `core.max_incoming` and
    /// withhold the peer's credit. Small messages queue by the thousand, large
    /// streamed ones by the dozen.
    pub read_ahead: usize,
    /// Largest batch of frames handed to the transport at once. When the transport
    /// takes only part of a batch and less than a quarter of it is left, the driver
    /// adds the next frames to the remainder rather than writing it alone.
    pub transmit_batch: usize,
    /// Read buffer size.
    pub read_buffer: usize,
    /// Pace writes to this rate (links of known speed), keeping queues short.
    pub pace_bytes_per_sec: Option<u64>,
    /// TCP: limit of unsent bytes in the kernel (`TCP_NOTSENT_LOWAT`).
    pub tcp_notsent_lowat: Option<u32>,
    /// TCP with `tcp_notsent_lowat`: keep about this much time of data below the
    /// scheduler. The driver measures the rate at which the socket drains while it
    /// pushes back and lowers the batch and the unsent limit to this time of it
    /// (never below 4 KiB, never above the configured sizes), so that on a slow path an
    /// urgent message does not wait behind the configured sizes' worth of bulk data
    /// (~190 ms at 1 MB/s). `None`: the configured sizes, always.
    pub tcp_queue_target: Option<Duration>,
    /// If false (default), a GOAWAY from the peer is answered with our own at once;
    /// set it when the application closes by itself after finishing its replies.
    pub manual_close: bool,
}

impl Default for PipeConfig {
    /// Reliable-stream settings: [`Config::tcp`] with 4 096 concurrent incoming
    /// messages of 16 KiB initial window (instead of 128 of 256 KiB).
    ///
    /// A sender may start only `max_incoming` messages per round trip of count
    /// credit: 128 capped pipelined small messages far below what the driver moves,
    /// and 4 096 measured best for 64-byte messages on loopback (BENCHMARKS.md,
    /// "pipelined"). Connection credit returns as bytes arrive, so what a peer can
    /// make us buffer is bounded per message by its window: the small initial window
    /// keeps that at `max_incoming` × `message_window` = 64 MiB. Windows grow toward
    /// `max_message_window` only while the application reads a message fast, so a
    /// large body costs a couple of extra round trips at its start, nothing more.
    /// Add `read_ahead` (32 MiB) for messages in the accept queue.
    ///
    /// Each streamed message may have 1 MiB of its body in the core (`send_buffer`,
    /// 256 KiB in [`Config::tcp`]): the core takes a writer's bytes in the room left
    /// when it reports the message writable again (half the buffer), and a frame
    /// never spans two of those pieces, so each refill ended in a frame of a few
    /// bytes. With 1 MiB, a bulk sender's refills are 512 KiB (a quarter of the small
    /// frames) and the sending CPU per GiB fell from 0.38 to 0.27 s between two
    /// processes. The bytes are the writer's own `Bytes`, shared, not copied.
    fn default() -> Self {
        PipeConfig {
            core: Config {
                max_incoming: 4096,
                message_window: 16 * 1024,
                send_buffer: 1024 * 1024,
                ..Config::tcp()
            },
            body_buffer: 512 * 1024,
            write_buffer: 512 * 1024,
            read_ahead: 32 << 20,
            // Batches of 64 KiB keep syscalls per byte low while an urgent frame waits
            // behind at most one batch in the driver; below it, what sits in socket
            // buffers is bounded by the connection credit in flight (512 KiB to start).
            transmit_batch: 64 * 1024,
            read_buffer: 256 * 1024,
            pace_bytes_per_sec: None,
            tcp_notsent_lowat: Some(128 * 1024),
            tcp_queue_target: Some(Duration::from_millis(4)),
            manual_close: false,
        }
    }
}

impl PipeConfig {
    /// Settings for a serial line of `bytes_per_sec`: serial profile, frames sized for
    /// a 20 ms latency budget, paced writes.
    pub fn serial(bytes_per_sec: u64) -> PipeConfig {
        let core = Config::serial_for_link(bytes_per_sec, Duration::from_millis(20));
        PipeConfig {
            transmit_batch: core.send_frame * 2 + 64,
            body_buffer: 16 * 1024,
            write_buffer: 16 * 1024,
            read_ahead: 1 << 20,
            read_buffer: 4096,
            pace_bytes_per_sec: Some(bytes_per_sec),
            tcp_notsent_lowat: None,
            tcp_queue_target: None,
            core,
            manual_close: false,
        }
    }

    /// The settings a transport's link hint calls for.
    pub fn for_transport(info: &TransportInfo) -> PipeConfig {
        match info.link_hint {
            Some(h) if h.profile == transport::LinkProfile::Serial => {
                PipeConfig::serial(h.rate_bytes_per_sec.unwrap_or(11_520))
            }
            Some(h) => {
                let mut cfg = PipeConfig {
                    pace_bytes_per_sec: h.rate_bytes_per_sec,
                    ..PipeConfig::default()
                };
                if let Some(rate) = h.rate_bytes_per_sec {
                    // A reliable link of known speed: frames of ~2 ms keep an urgent
                    // message's wait short; batches of ~4 ms keep queues short.
                    cfg.core.send_frame = ((rate / 500) as usize).clamp(512, 64 * 1024);
                    cfg.transmit_batch = ((rate / 250) as usize).clamp(1024, 256 * 1024);
                }
                cfg
            }
            None => PipeConfig::default(),
        }
    }
}

/// Connection state as the driver last reported it.
#[derive(Clone, Debug, Default)]
pub struct PipeState {
    /// The peer's parameters once the handshake is done.
    pub connected: Option<PeerParams>,
    /// The peer began a graceful close.
    pub going_away: bool,
    /// Set when the connection ended: `Some(None)` graceful, `Some(Some(e))` error.
    pub closed: Option<Option<ConnectionError>>,
}

struct Inner {
    id: ConnectionId,
    info: TransportInfo,
    commands: CommandSender,
    state: watch::Receiver<PipeState>,
    accept: AcceptReceiver,
    accepted: Arc<AcceptCount>,
    write_buffer: usize,
}

/// How many messages the application took from the accept queue, shared with the
/// driver so that taking one costs no command and no driver wake-up unless the driver
/// waits for it (it has parked messages, see `Driver::parked`).
#[derive(Debug, Default)]
pub(crate) struct AcceptCount {
    pub(crate) taken: AtomicU64,
    /// Set by the driver while it has parked messages: the next take sends
    /// `Command::Accepted`.
    pub(crate) waiting: std::sync::atomic::AtomicBool,
}

impl AcceptCount {
    /// Application side: counts one taken message; whether to wake the driver.
    fn take(&self) -> bool {
        self.take_many(1)
    }

    /// Application side: counts `n` taken messages; whether to wake the driver.
    fn take_many(&self, n: u64) -> bool {
        // SeqCst pairs with the driver's store of `waiting` then load of `taken`:
        // either it sees this increment or this sees its flag.
        self.taken.fetch_add(n, Ordering::SeqCst);
        self.waiting.load(Ordering::SeqCst) && self.waiting.swap(false, Ordering::SeqCst)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close {
            code: ErrorCode::NO_ERROR,
            reason: String::from("pipe dropped"),
        });
    }
}

/// A handle on one connection. Cheap to clone; the connection closes gracefully when
/// the last handle is dropped.
#[derive(Clone)]
pub struct Pipe {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipe")
            .field("id", &self.inner.id)
            .field("info", &self.inner.info)
            .finish()
    }
}

impl Pipe {
    /// Starts a connection over `transport`; the driver task is spawned on the current
    /// tokio runtime.
    pub fn new(transport: Transport, config: PipeConfig) -> Pipe {
        let mut core_config = config.core.clone();
        if core_config.session == 0 {
            // A per-connection session number lets a serial peer notice a restart.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            core_config.session = t ^ u64::from(std::process::id()) << 40 | 1;
        }
        let conn = netcore_core::Connection::new(core_config, netcore_core::Instant::ZERO);
        Pipe::with_wire(conn, transport, config)
    }

    /// Starts a connection running any [`Wire`] (e.g. a legacy-protocol adapter) over
    /// `transport`; `config.core` is used only for its runtime-relevant sizes.
    pub fn with_wire<W: Wire>(conn: W, transport: Transport, config: PipeConfig) -> Pipe {
        if let Some(lowat) = config.tcp_notsent_lowat {
            if transport.is_tcp() {
                if let Err(e) = transport.set_tcp_notsent_lowat(lowat) {
                    tracing::debug!(error = %e, "TCP_NOTSENT_LOWAT not applied");
                }
            }
        }
        let id = ConnectionId(NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed));
        let info = transport.info().clone();
        let (cmd_tx, cmd_rx) = driver::command_queue();
        let (accept_tx, accept_rx) = accept::accept_queue();
        let (state_tx, state_rx) = watch::channel(PipeState::default());
        let write_buffer = config.write_buffer;
        let accepted = Arc::new(AcceptCount::default());
        let driver = Driver::new(
            conn,
            transport,
            config,
            id,
            cmd_rx,
            cmd_tx.clone(),
            accept_tx,
            accepted.clone(),
            state_tx,
        );
        tokio::spawn(driver.run());
        Pipe {
            inner: Arc::new(Inner {
                id,
                info,
                commands: cmd_tx,
                state: state_rx,
                accept: accept_rx,
                accepted,
                write_buffer,
            }),
        }
    }

    /// Starts a connection with the settings the transport's link hint calls for.
    pub fn with_defaults(transport: Transport) -> Pipe {
        let config = PipeConfig::for_transport(transport.info());
        Pipe::new(transport, config)
    }

    /// Connects to a text address (`tcp://…`, `unix://…`, `serial://…`, `stdio:`, …)
    /// and waits for the handshake.
    pub async fn connect(addr: &TransportAddr) -> Result<Pipe, PipeError> {
        let t = transport::connect(addr).await?;
        let pipe = Pipe::with_defaults(t);
        pipe.ready().await?;
        Ok(pipe)
    }

    /// Starts a connection over any tokio byte stream, tcp profile.
    pub fn from_stream<T>(io: T, config: PipeConfig) -> Pipe
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        Pipe::new(Transport::from_stream(io), config)
    }

    /// The seed's `Pipe(recv_func, send_func)`: blocking functions run on adapter
    /// threads. Use `PipeConfig::serial` for a serial device.
    pub fn from_fns<R, S>(recv: R, send: S, config: PipeConfig) -> Result<Pipe, PipeError>
    where
        R: FnMut(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
        S: FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
    {
        let t = transport::from_fns(recv, send, transport::BlockingOptions::default())?;
        Ok(Pipe::new(t, config))
    }

    /// This connection's id.
    pub fn id(&self) -> ConnectionId {
        self.inner.id
    }

    /// What the transport is.
    pub fn info(&self) -> &TransportInfo {
        &self.inner.info
    }

    /// The latest state.
    pub fn state(&self) -> PipeState {
        self.inner.state.borrow().clone()
    }

    /// A receiver of every state change (handshake, the peer going away, close), e.g.
    /// to close by hand after a peer's GOAWAY when `manual_close` is set.
    pub fn state_changes(&self) -> watch::Receiver<PipeState> {
        self.inner.state.clone()
    }

    /// Waits for the handshake; fails if the connection ends first.
    pub async fn ready(&self) -> Result<PeerParams, PipeError> {
        let mut rx = self.inner.state.clone();
        let state = rx
            .wait_for(|s| s.connected.is_some() || s.closed.is_some())
            .await
            .map_err(|_| PipeError::Closed(None))?;
        match (&state.connected, &state.closed) {
            (_, Some(e)) => Err(PipeError::Closed(e.clone())),
            (Some(p), None) => Ok(p.clone()),
            (None, None) => Err(PipeError::Closed(None)),
        }
    }

    /// Waits until the connection has ended and returns why (`None`: graceful).
    pub async fn closed(&self) -> Option<ConnectionError> {
        let mut rx = self.inner.state.clone();
        let result = match rx.wait_for(|s| s.closed.is_some()).await {
            Ok(s) => s.closed.clone().flatten(),
            Err(_) => Some(ConnectionError::TransportClosed),
        };
        result
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.state.borrow().closed.is_some()
    }

    /// The next message from the peer that is not a reply to one of our requests;
    /// `None` once the connection has ended.
    pub async fn accept(&self) -> Option<IncomingMessage> {
        let msg = poll_fn(|cx| self.inner.accept.poll_next(cx)).await?;
        // Lets the driver read further queued messages ahead (see `Driver::parked`).
        if self.inner.accepted.take() {
            let _ = self.inner.commands.send(Command::Accepted);
        }
        Some(msg)
    }

    /// Takes messages waiting in the accept queue, up to `max`, into `out`; waits for
    /// the first if none is there. Returns how many were added: 0 once the
    /// connection has ended and the queue is empty.
    ///
    /// One call instead of one [`accept`](Self::accept) per message: for many small
    /// messages it saves most of the per-message cost of taking them. Into an empty
    /// `out`, a call takes the messages the driver handed over together (at most 256)
    /// by swapping buffers, without copying them, and leaves later ones for the next
    /// call; into an `out` that holds messages, it appends everything waiting up to
    /// `max`.
    ///
    /// ```
    /// # use netcore_runtime::{MessageBatch, Pipe, PipeConfig};
    /// # use netcore_runtime::transport::mem_pair;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), netcore_runtime::PipeError> {
    /// # let (a, b) = mem_pair(1 << 16);
    /// # let client = Pipe::new(a, PipeConfig::default());
    /// # let server = Pipe::new(b, PipeConfig::default());
    /// client.send("a", "1").await?;
    /// client.send("b", "2").await?;
    /// let mut got = Vec::new();
    /// while got.len() < 2 {
    ///     server.accept_many(&mut got, 64).await;
    /// }
    /// assert_eq!((got[0].route(), got[1].route()), ("a", "b"));
    /// # Ok(()) }
    /// ```
    pub async fn accept_many(&self, out: &mut Vec<IncomingMessage>, max: usize) -> usize {
        if max == 0 {
            return 0;
        }
        let n = poll_fn(|cx| self.inner.accept.poll_many(cx, out, max)).await;
        if n == 0 {
            return 0;
        }
        if self.inner.accepted.take_many(n as u64) {
            let _ = self.inner.commands.send(Command::Accepted);
        }
        n
    }

    /// Sends every message of `batch` with one command to the connection; the handle
    /// completes once all are fully sent, or with the first error.
    ///
    /// Use it for many small messages (telemetry, events): a [`send`](Self::send) per
    /// message costs a command, a shared state and a completion each.
    ///
    /// ```
    /// # use netcore_runtime::{MessageBatch, Pipe, PipeConfig};
    /// # use netcore_runtime::transport::mem_pair;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), netcore_runtime::PipeError> {
    /// # let (a, b) = mem_pair(1 << 16);
    /// # let client = Pipe::new(a, PipeConfig::default());
    /// # let _server = Pipe::new(b, PipeConfig::default());
    /// let mut batch = MessageBatch::with_capacity(2);
    /// batch.push("telemetry", &b"t=21.5"[..]);
    /// batch.push("telemetry", &b"t=21.6"[..]);
    /// client.send_batch(batch).finished().await?;
    /// # Ok(()) }
    /// ```
    pub fn send_batch(&self, batch: MessageBatch) -> BatchHandle {
        let shared = batch::BatchShared::new(batch.len() as u64);
        let handle = BatchHandle {
            shared: shared.clone(),
            commands: self.inner.commands.clone(),
        };
        if !batch.is_empty() {
            let cmd = Command::Batch {
                items: batch.items,
                shared: shared.clone(),
            };
            if self.inner.commands.send(cmd).is_err() {
                shared.complete(Err(PipeError::Closed(None)));
            }
        }
        handle
    }

    /// A builder for a message to `route`.
    pub fn message(&self, route: impl Into<Route>) -> MessageBuilder<'_> {
        MessageBuilder {
            pipe: self,
            head: MessageHead::to_route(route),
            headers: Headers::new(),
        }
    }

    /// Sends a one-way message (fire and forget); the handle reports completion.
    pub async fn send(
        &self,
        route: impl Into<Route>,
        body: impl Into<Body>,
    ) -> Result<SendHandle, PipeError> {
        self.message(route).send(body).await
    }

    /// Sends a request and waits for the reply.
    pub async fn request(
        &self,
        route: impl Into<Route>,
        body: impl Into<Body>,
    ) -> Result<IncomingMessage, PipeError> {
        self.message(route).request(body).await
    }

    /// Sends the reply to incoming message `to`. It goes at the request's urgency: a
    /// caller waiting urgently gets its answer as urgently.
    pub async fn reply(
        &self,
        to: MessageId,
        body: impl Into<Body>,
    ) -> Result<SendHandle, PipeError> {
        Ok(self.start_message(MessageHead::reply(to), body.into(), None))
    }

    /// Sends any head with any body.
    pub async fn send_head(
        &self,
        head: MessageHead,
        body: Body,
        reply: Option<oneshot::Sender<Result<IncomingMessage, PipeError>>>,
    ) -> Result<SendHandle, PipeError> {
        Ok(self.start_message(head, body, reply))
    }

    /// [`send_head`](Self::send_head) without a future of its own: starting a message
    /// never waits (a streamed body is read by a task of its own), and the callers'
    /// futures stay small, which matters to a round trip's cost.
    pub(crate) fn start_message(
        &self,
        head: MessageHead,
        body: Body,
        reply: Option<oneshot::Sender<Result<IncomingMessage, PipeError>>>,
    ) -> SendHandle {
        let mut head = head;
        if head.total_len.is_none() {
            head.total_len = body.len();
        }
        match body {
            Body::Bytes(b) => self.start_raw(head, Some(b), reply),
            Body::Stream { mut reader, len } => {
                let mut writer = self.start_writer(head, reply);
                let handle = writer.handle.clone();
                tokio::spawn(async move {
                    let mut sent = 0u64;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match reader.read(&mut buf).await {
                            Ok(0) => break,
                            Ok(n) => {
                                sent += n as u64;
                                if len.is_some_and(|l| sent > l) {
                                    tracing::warn!("body stream longer than announced; cancelled");
                                    return;
                                }
                                if writer
                                    .write(Bytes::copy_from_slice(&buf[..n]))
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "reading the body stream failed; message cancelled");
                                return;
                            }
                        }
                    }
                    let _ = writer.finish().await;
                });
                handle
            }
        }
    }

    fn start_raw(
        &self,
        head: MessageHead,
        body: Option<Bytes>,
        reply: Option<oneshot::Sender<Result<IncomingMessage, PipeError>>>,
    ) -> SendHandle {
        let (total, buffer) = match &body {
            Some(b) => (Some(b.len() as u64), None),
            None => (head.total_len, Some(self.inner.write_buffer)),
        };
        let shared = OutShared::new(total, buffer);
        let handle = SendHandle {
            shared: shared.clone(),
            commands: self.inner.commands.clone(),
        };
        let cmd = Command::Start {
            head,
            body,
            shared: shared.clone(),
            reply,
        };
        if self.inner.commands.send(cmd).is_err() {
            shared.complete(Err(PipeError::Closed(None)));
        }
        handle
    }

    /// Starts a message whose body is written by hand with a [`MessageWriter`].
    pub fn start_writer(
        &self,
        head: MessageHead,
        reply: Option<oneshot::Sender<Result<IncomingMessage, PipeError>>>,
    ) -> MessageWriter {
        MessageWriter {
            handle: self.start_raw(head, None, reply),
            finished: false,
        }
    }

    /// Begins a graceful close: no new requests; messages in flight finish.
    pub fn close(&self) {
        let _ = self.inner.commands.send(Command::Close {
            code: ErrorCode::NO_ERROR,
            reason: String::new(),
        });
    }

    /// Ends the connection at once with an error code; everything in flight fails.
    pub fn abort(&self, code: ErrorCode, reason: &str) {
        let _ = self.inner.commands.send(Command::Abort {
            code,
            reason: reason.to_string(),
        });
    }

    /// Asks the peer to stop sending incoming message `id` and drops it here.
    pub fn stop(&self, id: MessageId, code: ErrorCode) {
        let _ = self.inner.commands.send(Command::Stop { id, code });
    }

    pub(crate) fn forget_reply(&self, handle: &SendHandle) {
        let _ = self.inner.commands.send(Command::ForgetReply {
            shared: handle.shared.clone(),
        });
    }
}
