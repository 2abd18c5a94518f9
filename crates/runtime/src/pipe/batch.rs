//! Batches: many whole-body messages handed to the connection in one step.
//!
//! A [`Pipe::send`](super::Pipe::send) costs one command to the driver, one shared
//! state and one completion per message, which is most of the runtime's cost for small
//! messages. A [`MessageBatch`] carries any number of messages in one command and
//! reports their completion once, through one [`BatchHandle`]; on the wire and at the
//! receiver they are ordinary, independent messages.

use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::completion::Completion;
use super::driver::{Command, CommandSender};
use super::error::PipeError;
use netcore_core::{MessageHead, Route, Urgency};

/// Whole-body messages to send together: one command to the connection's driver and
/// one completion for all of them (see [`Pipe::send_batch`](super::Pipe::send_batch)).
///
/// Messages keep their order within a batch and, at equal urgency, with the messages
/// sent before and after it; each arrives at the peer as an ordinary message.
///
/// A route given as `&str` or `String` is copied once per message; a [`Route`] made
/// with [`Route::from_static`] is not allocated at all, and other `Route`s are shared.
///
/// ```
/// use netcore_runtime::{MessageBatch, Route};
/// use netcore_core::Urgency;
/// const TEMP: Route = Route::from_static("telemetry/temp");
/// let mut batch = MessageBatch::with_capacity(3);
/// batch.push(TEMP.clone(), &b"21.5"[..]);
/// batch.push(TEMP.clone(), &b"21.6"[..]);
/// batch.push_urgent("alarm", &b"overheat"[..], Urgency::HIGHEST);
/// assert_eq!(batch.len(), 3);
/// assert_eq!(batch.body_bytes(), 16);
/// ```
#[derive(Debug, Default)]
pub struct MessageBatch {
    pub(crate) items: Vec<(MessageHead, Bytes)>,
    body_bytes: u64,
}

impl MessageBatch {
    /// An empty batch.
    pub fn new() -> MessageBatch {
        MessageBatch::default()
    }

    /// An empty batch with room for `n` messages.
    pub fn with_capacity(n: usize) -> MessageBatch {
        MessageBatch {
            items: Vec::with_capacity(n),
            body_bytes: 0,
        }
    }

    /// Adds a one-way message to `route` with the default urgency.
    pub fn push(&mut self, route: impl Into<Route>, body: impl Into<Bytes>) {
        self.push_urgent(route, body, Urgency::default());
    }

    /// Adds a one-way message to `route` with `urgency`.
    pub fn push_urgent(
        &mut self,
        route: impl Into<Route>,
        body: impl Into<Bytes>,
        urgency: Urgency,
    ) {
        let head = MessageHead {
            route: Some(route.into()),
            urgency,
            ..MessageHead::default()
        };
        self.push_head(head, body);
    }

    /// Adds a message with any head (metadata, urgency, `reply_to`); its `total_len`
    /// is set from the body.
    pub fn push_head(&mut self, mut head: MessageHead, body: impl Into<Bytes>) {
        let body = body.into();
        head.total_len = Some(body.len() as u64);
        self.body_bytes += body.len() as u64;
        self.items.push((head, body));
    }

    /// Messages in the batch.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch has no messages.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Body bytes of all its messages.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Empties the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.items.clear();
        self.body_bytes = 0;
    }
}

/// State of a batch shared by its handle and the driver.
#[derive(Debug)]
pub(crate) struct BatchShared {
    pub(crate) total: u64,
    /// Messages fully sent so far.
    pub(crate) sent: AtomicU64,
    outcome: Completion,
}

impl BatchShared {
    pub(crate) fn new(total: u64) -> Arc<BatchShared> {
        let s = Arc::new(BatchShared {
            total,
            sent: AtomicU64::new(0),
            outcome: Completion::new(),
        });
        if total == 0 {
            s.complete(Ok(()));
        }
        s
    }

    /// Driver side: `n` more messages fully sent; completes the batch with the last.
    pub(crate) fn messages_sent(&self, n: u64) {
        if self.sent.fetch_add(n, Ordering::AcqRel) + n == self.total {
            self.complete(Ok(()));
        }
    }

    /// The first error wins; success only while nothing failed (see
    /// [`Completion::complete`]).
    pub(crate) fn complete(&self, result: Result<(), PipeError>) {
        self.outcome.complete(result);
    }

    pub(crate) fn result(&self) -> Option<Result<(), PipeError>> {
        self.outcome.result()
    }
}

/// Follows a sent [`MessageBatch`]: progress, completion, cancellation.
///
/// ```
/// # use netcore_runtime::{MessageBatch, Pipe, PipeConfig};
/// # use netcore_runtime::transport::mem_pair;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), netcore_runtime::PipeError> {
/// # let (a, b) = mem_pair(1 << 16);
/// # let client = Pipe::new(a, PipeConfig::default());
/// # let server = Pipe::new(b, PipeConfig::default());
/// let mut batch = MessageBatch::new();
/// for i in 0..100u32 {
///     batch.push("counter", i.to_be_bytes().to_vec());
/// }
/// let handle = client.send_batch(batch);
/// handle.finished().await?;
/// assert_eq!(handle.progress(), (100, 100));
/// let mut got = Vec::new();
/// while got.len() < 100 {
///     server.accept_many(&mut got, 100).await;
/// }
/// assert_eq!(got[99].route(), "counter");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BatchHandle {
    pub(crate) shared: Arc<BatchShared>,
    pub(crate) commands: CommandSender,
}

impl BatchHandle {
    /// Messages fully handed to the protocol so far, and the batch's size.
    pub fn progress(&self) -> (u64, u64) {
        (self.shared.sent.load(Ordering::Acquire), self.shared.total)
    }

    /// Waits until every message was fully sent (`Ok`) or one failed (the first
    /// error; the others carry on unless the batch is cancelled).
    pub async fn finished(&self) -> Result<(), PipeError> {
        self.shared.outcome.wait().await
    }

    /// Whether the batch has completed (all sent, or failed).
    pub fn is_finished(&self) -> bool {
        self.shared.result().is_some()
    }

    /// Cancels the messages of the batch not yet fully sent; the peer is told about
    /// those it has begun to receive. Messages already sent stay delivered.
    pub fn cancel(&self) {
        let _ = self.commands.send(Command::CancelBatch {
            shared: self.shared.clone(),
        });
    }
}
