//! The blocking message types: a request being built, a received message read as
//! `io::Read`, a send's handle, and a streaming writer.

use super::*;

/// Builds one outgoing message for a [`BlockingPipe`]: route, headers, urgency, timeout.
///
/// ```
/// # use netcore_runtime::blocking::BlockingPipe;
/// # use netcore_runtime::transport::mem_pair;
/// # use netcore_runtime::PipeConfig;
/// # use std::time::Duration;
/// # let (a, b) = mem_pair(4096);
/// # let (client, _server) = (BlockingPipe::new(a, PipeConfig::default())?, BlockingPipe::new(b, PipeConfig::default())?);
/// // Nobody answers: the deadline passes.
/// let r = client.message("slow").urgency(netcore_core::Urgency::HIGHEST)
///     .timeout(Duration::from_millis(50)).request("x");
/// assert!(matches!(r, Err(netcore_runtime::PipeError::TimedOut)));
/// # Ok::<(), netcore_runtime::PipeError>(())
/// ```
pub struct BlockingMessageBuilder<'a> {
    pub(super) pipe: &'a BlockingPipe,
    pub(super) route: Route,
    pub(super) headers: Headers,
    pub(super) urgency: Urgency,
    pub(super) timeout: Option<Duration>,
}

impl BlockingMessageBuilder<'_> {
    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.insert(key, value);
        self
    }

    /// Sets the urgency (0 most urgent … 7 bulk).
    pub fn urgency(mut self, urgency: Urgency) -> Self {
        self.urgency = urgency;
        self
    }

    /// Deadline for [`request`](Self::request) and for handing the message over in
    /// [`send`](Self::send).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn async_builder<'p>(
        route: Route,
        headers: Headers,
        urgency: Urgency,
        pipe: &'p Pipe,
    ) -> crate::MessageBuilder<'p> {
        let mut b = pipe.message(route).urgency(urgency);
        for (k, v) in headers.iter() {
            b = b.header(k.to_string(), v.clone());
        }
        b
    }

    /// Sends it one-way.
    pub fn send(self, body: impl Into<Body>) -> Result<BlockingSendHandle, PipeError> {
        let p = self.pipe.inner.pipe();
        let b = Self::async_builder(self.route, self.headers, self.urgency, p);
        let body = body.into();
        let fut = b.send(body);
        let h = match self.timeout {
            Some(t) => self.pipe.rt().block_on_timeout(t, fut)?,
            None => self.pipe.rt().block_on(fut)??,
        };
        Ok(self.pipe.wrap_handle(h))
    }

    /// Sends it and waits for the reply (until the deadline, if one was set).
    pub fn request(self, body: impl Into<Body>) -> Result<BlockingMessage, PipeError> {
        let p = self.pipe.inner.pipe();
        let b = Self::async_builder(self.route, self.headers, self.urgency, p);
        let body = body.into();
        let msg = match self.timeout {
            Some(t) => self.pipe.rt().block_on(b.timeout(t).request(body))??,
            None => self.pipe.rt().block_on(b.request(body))??,
        };
        Ok(self.pipe.wrap(msg))
    }
}

/// A message received on a [`BlockingPipe`]: head, and a body read with blocking calls
/// (or as a [`std::io::Read`]).
pub struct BlockingMessage {
    pub(super) msg: IncomingMessage,
    pub(super) rt: Arc<Rt>,
}

impl std::fmt::Debug for BlockingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BlockingMessage").field(&self.msg).finish()
    }
}

impl BlockingMessage {
    /// The peer's id for it (what [`BlockingPipe::reply`] takes).
    pub fn id(&self) -> MessageId {
        self.msg.id
    }

    /// Route, metadata, length, correlation, urgency.
    pub fn head(&self) -> &MessageHead {
        &self.msg.head
    }

    /// The route (`""` for replies).
    pub fn route(&self) -> &str {
        self.msg.route()
    }

    /// The metadata as headers.
    pub fn headers(&self) -> Headers {
        self.msg.headers()
    }

    /// The connection it came on.
    pub fn connection(&self) -> ConnectionId {
        self.msg.connection
    }

    /// Bytes received so far and the announced total.
    pub fn progress(&self) -> (u64, Option<u64>) {
        self.msg.body.progress()
    }

    /// Whether the peer abandoned it (for a request: its caller gave up).
    pub fn is_abandoned(&self) -> bool {
        self.msg.abandon_signal().is_abandoned()
    }

    /// The next body chunk, `None` at the end.
    pub fn chunk(&mut self) -> Result<Option<Bytes>, PipeError> {
        self.rt.block_on(self.msg.body.chunk())?
    }

    /// Like [`chunk`](Self::chunk), waiting at most `timeout`.
    pub fn chunk_timeout(&mut self, timeout: Duration) -> Result<Option<Bytes>, PipeError> {
        let body = &mut self.msg.body;
        self.rt.block_on_timeout(timeout, body.chunk())
    }

    /// Collects the body into memory, failing with `TooLarge` past `limit` bytes.
    pub fn collect(self, limit: u64) -> Result<Bytes, PipeError> {
        let rt = self.rt;
        rt.block_on(self.msg.body.collect(limit))?
    }

    /// Collects in memory up to `threshold` bytes, spilling larger bodies to a file in
    /// `dir`.
    pub fn collect_or_spill(
        self,
        threshold: u64,
        dir: impl AsRef<Path>,
    ) -> Result<Collected, PipeError> {
        let rt = self.rt;
        let dir = dir.as_ref().to_path_buf();
        rt.block_on(self.msg.body.collect_or_spill(threshold, dir))?
    }

    /// The async message underneath.
    pub fn into_async(self) -> IncomingMessage {
        self.msg
    }
}

impl io::Read for BlockingMessage {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
        let body = &mut self.msg.body;
        self.rt.block_on(body.read(buf)).map_err(io::Error::from)?
    }
}

/// Follows an outgoing message of a [`BlockingPipe`]: progress, completion, cancel.
#[derive(Clone)]
pub struct BlockingSendHandle {
    pub(super) handle: SendHandle,
    pub(super) rt: Arc<Rt>,
}

impl std::fmt::Debug for BlockingSendHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BlockingSendHandle")
            .field(&self.handle)
            .finish()
    }
}

impl BlockingSendHandle {
    /// The message id, once the connection started it.
    pub fn id(&self) -> Option<MessageId> {
        self.handle.id()
    }

    /// Body bytes handed to the protocol so far, and the total if known.
    pub fn progress(&self) -> (u64, Option<u64>) {
        self.handle.progress()
    }

    /// Waits until the message was fully sent or failed.
    pub fn wait(&self) -> Result<(), PipeError> {
        self.rt.block_on(self.handle.finished())?
    }

    /// Like [`wait`](Self::wait), at most `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), PipeError> {
        self.rt.block_on_timeout(timeout, self.handle.finished())
    }

    /// Cancels the message; the peer is told.
    pub fn cancel(&self) {
        self.handle.cancel()
    }
}

/// Streams the body of an outgoing message from blocking code. Dropping it without
/// [`finish`](Self::finish) cancels the message.
pub struct BlockingWriter {
    pub(super) writer: Option<MessageWriter>,
    pub(super) rt: Arc<Rt>,
}

impl std::fmt::Debug for BlockingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BlockingWriter").field(&self.writer).finish()
    }
}

impl BlockingWriter {
    fn writer(&mut self) -> Result<&mut MessageWriter, PipeError> {
        self.writer.as_mut().ok_or(PipeError::Closed(None))
    }

    /// Progress of the message so far.
    pub fn progress(&self) -> (u64, Option<u64>) {
        self.writer
            .as_ref()
            .map_or((0, None), |w| w.handle().progress())
    }

    /// Queues `data`, waiting while the message's buffer is full (the peer's credit).
    pub fn write(&mut self, data: impl Into<Bytes>) -> Result<(), PipeError> {
        let rt = self.rt.clone();
        let w = self.writer()?;
        rt.block_on(w.write(data))?
    }

    /// Ends the body and waits until it is fully sent.
    pub fn finish(mut self) -> Result<(), PipeError> {
        let w = self.writer.take().ok_or(PipeError::Closed(None))?;
        self.rt.block_on(w.finish())?
    }

    /// Cancels the message; the peer is told.
    pub fn cancel(mut self) {
        if let Some(w) = self.writer.take() {
            w.handle().cancel();
        }
    }
}

impl Drop for BlockingWriter {
    fn drop(&mut self) {
        // MessageWriter's own drop cancels an unfinished message; it needs no runtime.
        self.writer.take();
    }
}
