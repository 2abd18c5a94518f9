//! Blocking facade: the [`Pipe`] for code without async, as `reqwest::blocking` does it.
//!
//! Each [`BlockingPipe`] (or [`BlockingListener`] and the pipes it accepts) owns a small
//! background tokio runtime (one worker thread, named `netcore-blocking`) that runs the
//! connection driver; every blocking call hands its work to that runtime and waits for
//! the answer on the calling thread. The runtime stops when the last handle made from it
//! is dropped, so nothing is left running.
//!
//! Every call that waits has a bounded variant (`*_timeout`) returning
//! [`PipeError::TimedOut`]; the plain variants wait as long as the connection lives,
//! which the core's idle timeout bounds when the peer disappears.
//!
//! Calling these methods from inside an async runtime is refused with
//! [`PipeError::Io`] (kind `Unsupported`) instead of panicking: use [`Pipe`] there.
//!
//! ```
//! use netcore_runtime::blocking::BlockingPipe;
//! use netcore_runtime::transport::mem_pair;
//! use netcore_runtime::PipeConfig;
//! use std::time::Duration;
//!
//! let (a, b) = mem_pair(1 << 16);
//! let client = BlockingPipe::new(a, PipeConfig::default()).unwrap();
//! let server = BlockingPipe::new(b, PipeConfig::default()).unwrap();
//! let t = std::thread::spawn(move || {
//!     let req = server.accept().unwrap();
//!     let id = req.id();
//!     let body = req.collect(1024).unwrap();
//!     server.reply(id, body).unwrap().wait().unwrap();
//!     server
//! });
//! let reply = client.request_timeout("echo", "hi", Duration::from_secs(5)).unwrap();
//! assert_eq!(reply.collect(1024).unwrap(), "hi");
//! drop(t.join().unwrap());
//! ```

use bytes::Bytes;
use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod listener;
mod message;

pub use listener::BlockingListener;
pub use message::{BlockingMessage, BlockingMessageBuilder, BlockingSendHandle, BlockingWriter};

use crate::transport::{self, Transport, TransportAddr, TransportInfo};
use crate::{
    Body, Collected, ConnectionId, IncomingMessage, MessageWriter, Pipe, PipeConfig, PipeError,
    PipeState, SendHandle,
};
use netcore_core::metadata::Headers;
use netcore_core::{
    ConnectionError, ErrorCode, MessageHead, MessageId, PeerParams, Route, Urgency,
};

/// How long dropping the last handle waits for a graceful close before stopping the
/// background runtime anyway.
const DROP_LINGER: Duration = Duration::from_secs(2);

/// The background runtime shared by the handles made from one constructor.
struct Rt {
    rt: Option<tokio::runtime::Runtime>,
}

impl Rt {
    fn new() -> Result<Arc<Rt>, PipeError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("netcore-blocking")
            .enable_all()
            .build()
            .map_err(|e| PipeError::io("start the background runtime", e))?;
        Ok(Arc::new(Rt { rt: Some(rt) }))
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        // Only `Drop` takes it out.
        self.rt
            .as_ref()
            .unwrap_or_else(|| unreachable!("runtime used after drop"))
    }

    /// Runs `fut` on the background runtime and waits for it on this thread.
    fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, PipeError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(PipeError::io(
                "blocking netcore call",
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "called from inside an async runtime; use netcore_runtime::Pipe there",
                ),
            ));
        }
        Ok(self.runtime().block_on(fut))
    }

    fn block_on_timeout<T, F>(&self, timeout: Duration, fut: F) -> Result<T, PipeError>
    where
        F: Future<Output = Result<T, PipeError>>,
    {
        self.block_on(async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(PipeError::TimedOut),
            }
        })?
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Dropped inside an async context, where waiting is not allowed.
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_millis(500));
            }
        }
    }
}

/// The connection plus the runtime that drives it; closes gracefully on drop.
struct PipeInner {
    pipe: Option<Pipe>,
    rt: Arc<Rt>,
}

impl PipeInner {
    fn pipe(&self) -> &Pipe {
        self.pipe
            .as_ref()
            .unwrap_or_else(|| unreachable!("pipe used after drop"))
    }
}

impl Drop for PipeInner {
    fn drop(&mut self) {
        if let Some(pipe) = self.pipe.take() {
            pipe.close();
            // Give the driver a moment to send its GOAWAY and finish; bounded.
            let _ = self
                .rt
                .block_on(async move { tokio::time::timeout(DROP_LINGER, pipe.closed()).await });
        }
    }
}

/// A blocking handle on one connection: the [`Pipe`] API without async.
///
/// Cheap to clone and usable from many threads at once (e.g. one thread accepting
/// requests while others send). The connection closes gracefully when the last clone is
/// dropped, and the background runtime stops with it.
///
/// ```no_run
/// use netcore_runtime::blocking::BlockingPipe;
/// use std::time::Duration;
/// let pipe = BlockingPipe::connect(&"tcp://127.0.0.1:7000".parse().unwrap())?;
/// let reply = pipe.request_timeout("sensor/read", "", Duration::from_secs(2))?;
/// println!("{:?}", reply.collect(1 << 20)?);
/// # Ok::<(), netcore_runtime::PipeError>(())
/// ```
#[derive(Clone)]
pub struct BlockingPipe {
    inner: Arc<PipeInner>,
}

impl std::fmt::Debug for BlockingPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BlockingPipe")
            .field(self.inner.pipe())
            .finish()
    }
}

impl BlockingPipe {
    fn with_rt(rt: Arc<Rt>, pipe: Pipe) -> BlockingPipe {
        BlockingPipe {
            inner: Arc::new(PipeInner {
                pipe: Some(pipe),
                rt,
            }),
        }
    }

    fn rt(&self) -> &Rt {
        &self.inner.rt
    }

    /// Starts a connection over `transport` (e.g. from [`transport::mem_pair`] or
    /// [`transport::from_blocking`]); does not wait for the handshake (see
    /// [`ready`](Self::ready)).
    ///
    /// ```
    /// use netcore_runtime::blocking::BlockingPipe;
    /// use netcore_runtime::transport::mem_pair;
    /// use netcore_runtime::PipeConfig;
    /// let (a, b) = mem_pair(4096);
    /// let (x, y) = (BlockingPipe::new(a, PipeConfig::default())?, BlockingPipe::new(b, PipeConfig::default())?);
    /// x.ready(std::time::Duration::from_secs(5))?;
    /// # drop(y);
    /// # Ok::<(), netcore_runtime::PipeError>(())
    /// ```
    pub fn new(transport: Transport, config: PipeConfig) -> Result<BlockingPipe, PipeError> {
        let rt = Rt::new()?;
        let pipe = {
            let _guard = rt.runtime().enter();
            Pipe::new(transport, config)
        };
        Ok(BlockingPipe::with_rt(rt, pipe))
    }

    /// Connects to a text address (`tcp://…`, `unix://…`, `serial://…`, …) and waits for
    /// the handshake (bounded by the core's handshake timeout).
    pub fn connect(addr: &TransportAddr) -> Result<BlockingPipe, PipeError> {
        let rt = Rt::new()?;
        let pipe = rt.block_on(Pipe::connect(addr))??;
        Ok(BlockingPipe::with_rt(rt, pipe))
    }

    /// The seed's `Pipe(recv_func, send_func)`: netcore over a pair of blocking functions
    /// (`recv` fills a buffer and returns the count, `0` at the end; `send` writes all).
    /// Use [`PipeConfig::serial`] for a serial device.
    ///
    /// ```
    /// use netcore_runtime::blocking::BlockingPipe;
    /// use netcore_runtime::PipeConfig;
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// let (a, b) = UnixStream::pair().unwrap();
    /// let (mut ra, mut wa) = (a.try_clone().unwrap(), a);
    /// let (mut rb, mut wb) = (b.try_clone().unwrap(), b);
    /// let x = BlockingPipe::from_fns(move |buf: &mut [u8]| ra.read(buf), move |d: &[u8]| wa.write_all(d), PipeConfig::default())?;
    /// let y = BlockingPipe::from_fns(move |buf: &mut [u8]| rb.read(buf), move |d: &[u8]| wb.write_all(d), PipeConfig::default())?;
    /// x.send("log", "hello")?.wait()?;
    /// assert_eq!(y.accept().unwrap().collect(100)?, "hello");
    /// # Ok::<(), netcore_runtime::PipeError>(())
    /// ```
    pub fn from_fns<R, S>(recv: R, send: S, config: PipeConfig) -> Result<BlockingPipe, PipeError>
    where
        R: FnMut(&mut [u8]) -> io::Result<usize> + Send + 'static,
        S: FnMut(&[u8]) -> io::Result<()> + Send + 'static,
    {
        let rt = Rt::new()?;
        let pipe = {
            let _guard = rt.runtime().enter();
            Pipe::from_fns(recv, send, config)?
        };
        Ok(BlockingPipe::with_rt(rt, pipe))
    }

    /// The async [`Pipe`] underneath (for code that mixes both styles).
    pub fn as_async(&self) -> &Pipe {
        self.inner.pipe()
    }

    /// This connection's id.
    pub fn id(&self) -> ConnectionId {
        self.inner.pipe().id()
    }

    /// What the transport is.
    pub fn info(&self) -> &TransportInfo {
        self.inner.pipe().info()
    }

    /// The latest connection state.
    pub fn state(&self) -> PipeState {
        self.inner.pipe().state()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.pipe().is_closed()
    }

    /// Waits up to `timeout` for the handshake.
    pub fn ready(&self, timeout: Duration) -> Result<PeerParams, PipeError> {
        let pipe = self.inner.pipe();
        self.rt().block_on_timeout(timeout, pipe.ready())
    }

    /// A builder for a message to `route` (headers, urgency, timeout).
    ///
    /// ```
    /// # use netcore_runtime::blocking::BlockingPipe;
    /// # use netcore_runtime::transport::mem_pair;
    /// # use netcore_runtime::PipeConfig;
    /// # let (a, b) = mem_pair(4096);
    /// # let (client, server) = (BlockingPipe::new(a, PipeConfig::default())?, BlockingPipe::new(b, PipeConfig::default())?);
    /// client.message("log").header("level", "info").send("started")?.wait()?;
    /// let m = server.accept().unwrap();
    /// assert_eq!(m.headers().get_str("level"), Some("info"));
    /// # Ok::<(), netcore_runtime::PipeError>(())
    /// ```
    pub fn message(&self, route: impl Into<Route>) -> BlockingMessageBuilder<'_> {
        BlockingMessageBuilder {
            pipe: self,
            route: route.into(),
            headers: Headers::new(),
            urgency: Urgency::DEFAULT,
            timeout: None,
        }
    }

    /// Sends a one-way message; the handle reports progress and completion.
    pub fn send(
        &self,
        route: impl Into<Route>,
        body: impl Into<Body>,
    ) -> Result<BlockingSendHandle, PipeError> {
        self.message(route).send(body)
    }

    /// Sends a request and waits for the reply (as long as the connection lives).
    pub fn request(
        &self,
        route: impl Into<Route>,
        body: impl Into<Body>,
    ) -> Result<BlockingMessage, PipeError> {
        self.message(route).request(body)
    }

    /// Sends a request and waits at most `timeout` for the reply; on expiry the request
    /// is cancelled on the peer and [`PipeError::TimedOut`] returned.
    pub fn request_timeout(
        &self,
        route: impl Into<Route>,
        body: impl Into<Body>,
        timeout: Duration,
    ) -> Result<BlockingMessage, PipeError> {
        self.message(route).timeout(timeout).request(body)
    }

    /// The next message from the peer that is not a reply to our requests; `None` once
    /// the connection has ended (and when called from async code, which is refused;
    /// [`accept_timeout`](Self::accept_timeout) reports that as an error).
    pub fn accept(&self) -> Option<BlockingMessage> {
        let pipe = self.inner.pipe();
        let msg = self.rt().block_on(pipe.accept()).ok().flatten()?;
        Some(self.wrap(msg))
    }

    /// Like [`accept`](Self::accept) but waits at most `timeout`: `Ok(None)` once the
    /// connection has ended, `Err(TimedOut)` if nothing came.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Option<BlockingMessage>, PipeError> {
        let pipe = self.inner.pipe();
        let msg = self
            .rt()
            .block_on_timeout(timeout, async move { Ok(pipe.accept().await) })?;
        Ok(msg.map(|m| self.wrap(m)))
    }

    /// Sends the reply to incoming message `to`.
    pub fn reply(
        &self,
        to: MessageId,
        body: impl Into<Body>,
    ) -> Result<BlockingSendHandle, PipeError> {
        let pipe = self.inner.pipe();
        let body = body.into();
        let h = self.rt().block_on(pipe.reply(to, body))??;
        Ok(self.wrap_handle(h))
    }

    /// Sends a reply with headers (e.g. a status) to incoming message `to`.
    pub fn reply_with_headers(
        &self,
        to: MessageId,
        headers: &Headers,
        body: impl Into<Body>,
    ) -> Result<BlockingSendHandle, PipeError> {
        let pipe = self.inner.pipe();
        let mut head = MessageHead::reply(to);
        if !headers.is_empty() {
            head.metadata = headers.encode();
        }
        let body = body.into();
        let h = self.rt().block_on(pipe.send_head(head, body, None))??;
        Ok(self.wrap_handle(h))
    }

    /// Starts a message whose body is written piece by piece with
    /// [`BlockingWriter::write`].
    pub fn start_writer(&self, route: impl Into<Route>) -> BlockingWriter {
        let pipe = self.inner.pipe();
        let writer = pipe.start_writer(MessageHead::to_route(route), None);
        BlockingWriter {
            writer: Some(writer),
            rt: self.inner.rt.clone(),
        }
    }

    /// A body streamed from a file from `offset` on (length announced).
    pub fn file_body(&self, path: impl AsRef<Path>, offset: u64) -> Result<Body, PipeError> {
        let path = path.as_ref().to_path_buf();
        self.rt().block_on(Body::file(path, offset))?
    }

    /// Fetches file `name` from the peer's `route` into `dest`, resuming after what
    /// `dest` already holds (see [`crate::transfer::fetch_file`]).
    ///
    /// ```
    /// # use netcore_runtime::blocking::BlockingPipe;
    /// # use netcore_runtime::transport::mem_pair;
    /// # use netcore_runtime::PipeConfig;
    /// let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    /// std::fs::write(src.path().join("log.txt"), b"0123456789").unwrap();
    /// std::fs::write(dst.path().join("log.txt"), b"01234").unwrap();
    /// # let (a, b) = mem_pair(4096);
    /// # let (client, server) = (BlockingPipe::new(a, PipeConfig::default())?, BlockingPipe::new(b, PipeConfig::default())?);
    /// let dir = src.path().to_path_buf();
    /// std::thread::spawn(move || {
    ///     while let Some(req) = server.accept() {
    ///         let _ = server.serve_file(req, &dir);
    ///     }
    /// });
    /// let done = client.fetch_file("files", "log.txt", dst.path().join("log.txt")).unwrap();
    /// assert_eq!((done.resumed_from, done.received), (5, 5));
    /// # Ok::<(), netcore_runtime::PipeError>(())
    /// ```
    pub fn fetch_file(
        &self,
        route: &str,
        name: &str,
        dest: impl AsRef<Path>,
    ) -> Result<crate::transfer::FetchOutcome, crate::transfer::TransferError> {
        let pipe = self.inner.pipe();
        let dest = dest.as_ref().to_path_buf();
        self.rt()
            .block_on(crate::transfer::fetch_file(pipe, route, name, dest))?
    }

    /// Answers a file request (see [`crate::transfer::serve_file`]) and waits until the
    /// file was sent; returns the offset it was sent from.
    pub fn serve_file(
        &self,
        request: BlockingMessage,
        dir: impl AsRef<Path>,
    ) -> Result<u64, crate::transfer::TransferError> {
        let pipe = self.inner.pipe();
        let dir = dir.as_ref().to_path_buf();
        let msg = request.into_async();
        self.rt().block_on(async move {
            let out = crate::transfer::serve_file(pipe, msg, dir).await?;
            out.handle.finished().await?;
            Ok(out.offset)
        })?
    }

    /// Asks the peer to stop sending incoming message `id` and drops it here.
    pub fn stop(&self, id: MessageId, code: ErrorCode) {
        self.inner.pipe().stop(id, code)
    }

    /// Begins a graceful close (messages in flight finish) without waiting; see
    /// [`wait_closed`](Self::wait_closed).
    pub fn close(&self) {
        self.inner.pipe().close()
    }

    /// Ends the connection at once with an error code; everything in flight fails.
    pub fn abort(&self, code: ErrorCode, reason: &str) {
        self.inner.pipe().abort(code, reason)
    }

    /// Waits at most `timeout` until the connection has ended; returns why (`None`:
    /// graceful).
    pub fn wait_closed(&self, timeout: Duration) -> Result<Option<ConnectionError>, PipeError> {
        let pipe = self.inner.pipe();
        self.rt()
            .block_on_timeout(timeout, async move { Ok(pipe.closed().await) })
    }

    fn wrap(&self, msg: IncomingMessage) -> BlockingMessage {
        BlockingMessage {
            msg,
            rt: self.inner.rt.clone(),
        }
    }

    fn wrap_handle(&self, handle: SendHandle) -> BlockingSendHandle {
        BlockingSendHandle {
            handle,
            rt: self.inner.rt.clone(),
        }
    }
}
