//! [`MessageBuilder`]: route, headers, urgency and deadline of one outgoing message.

use bytes::Bytes;
use std::time::Duration;
use tokio::sync::oneshot;

use super::{Body, IncomingMessage, Pipe, PipeError, SendHandle};
use netcore_core::metadata::Headers;
use netcore_core::{MessageHead, Urgency};

/// Builds one outgoing message: route, headers, urgency, then `send` or `request`.
///
/// ```
/// # use netcore_runtime::{Pipe, PipeConfig};
/// # use netcore_runtime::transport::mem_pair;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), netcore_runtime::PipeError> {
/// # let (a, b) = mem_pair(1 << 16);
/// # let client = Pipe::new(a, PipeConfig::default());
/// # let server = Pipe::new(b, PipeConfig::default());
/// # tokio::spawn(async move { while let Some(m) = server.accept().await {
/// #     let v = m.headers().get_str("unit").unwrap_or("").to_string(); server.reply(m.id, v).await.unwrap(); } });
/// use netcore_core::Urgency;
/// let reply = client
///     .message("sensor/read")
///     .header("unit", "celsius")
///     .urgency(Urgency::HIGHEST)
///     .timeout(std::time::Duration::from_secs(5))
///     .request("")
///     .await?;
/// assert_eq!(reply.collect(100).await?, "celsius");
/// # Ok(()) }
/// ```
pub struct MessageBuilder<'a> {
    pub(super) pipe: &'a Pipe,
    pub(super) head: MessageHead,
    pub(super) headers: Headers,
}

impl MessageBuilder<'_> {
    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.insert(key, value);
        self
    }

    /// Sets the urgency (0 most urgent … 7 bulk; default 3).
    pub fn urgency(mut self, urgency: Urgency) -> Self {
        self.head.urgency = urgency;
        self
    }

    /// Deadline for [`request`](Self::request) (default: none).
    pub fn timeout(self, timeout: Duration) -> TimedMessageBuilder<'static, Self> {
        TimedMessageBuilder {
            inner: self,
            timeout,
            _p: std::marker::PhantomData,
        }
    }

    fn finish_head(&mut self) -> MessageHead {
        // Taken, not cloned: the builder is consumed right after.
        let mut head = std::mem::take(&mut self.head);
        if !self.headers.is_empty() {
            head.metadata = self.headers.encode();
        }
        head
    }

    /// Sends it one-way.
    pub async fn send(mut self, body: impl Into<Body>) -> Result<SendHandle, PipeError> {
        let head = self.finish_head();
        Ok(self.pipe.start_message(head, body.into(), None))
    }

    /// Sends it and waits for the reply.
    pub async fn request(mut self, body: impl Into<Body>) -> Result<IncomingMessage, PipeError> {
        let (_, reply) = self.start_request(body.into());
        reply.await.unwrap_or(Err(PipeError::Closed(None)))
    }

    /// Starts it as a request: its handle and where the reply will come. Not itself a
    /// future, so a request's future holds the head once (moving it is part of each
    /// round trip's cost).
    fn start_request(&mut self, body: Body) -> (SendHandle, ReplyRx) {
        let head = self.finish_head();
        let (tx, rx) = oneshot::channel();
        (self.pipe.start_message(head, body, Some(tx)), rx)
    }
}

type ReplyRx = oneshot::Receiver<Result<IncomingMessage, PipeError>>;

/// A [`MessageBuilder`] with a deadline.
pub struct TimedMessageBuilder<'a, B> {
    inner: B,
    timeout: Duration,
    _p: std::marker::PhantomData<&'a ()>,
}

impl<'a> TimedMessageBuilder<'a, MessageBuilder<'a>> {
    /// Sends it and waits for the reply until the deadline; on expiry the request is
    /// cancelled on the peer and `PipeError::TimedOut` returned.
    pub async fn request(mut self, body: impl Into<Body>) -> Result<IncomingMessage, PipeError> {
        let (handle, reply) = self.inner.start_request(body.into());
        match tokio::time::timeout(self.timeout, reply).await {
            Ok(r) => r.unwrap_or(Err(PipeError::Closed(None))),
            Err(_) => {
                // Tell the peer so its handler stops, and stop waiting.
                handle.cancel();
                self.inner.pipe.forget_reply(&handle);
                Err(PipeError::TimedOut)
            }
        }
    }
}
