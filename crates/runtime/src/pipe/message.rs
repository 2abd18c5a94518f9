//! Message handles: an [`IncomingMessage`] as received, a [`SendHandle`] to follow or
//! cancel an outgoing one, and a [`MessageWriter`] to stream a body by hand.

use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::body::{AbandonSignal, IncomingBody};
use super::completion::Completion;
use super::driver::{Command, CommandSender};
use super::error::PipeError;
use super::write_budget::WriteBudget;
use super::ConnectionId;
use netcore_core::metadata::Headers;
use netcore_core::{ErrorCode, MessageHead, MessageId};

/// A message received from the peer: its head and its body.
#[derive(Debug)]
pub struct IncomingMessage {
    /// The peer's id for it.
    pub id: MessageId,
    /// Route, metadata, length, correlation, urgency.
    pub head: MessageHead,
    /// The connection it came on.
    pub connection: ConnectionId,
    /// The body.
    pub body: IncomingBody,
}

impl IncomingMessage {
    /// The route, or `""` for messages without one (replies).
    pub fn route(&self) -> &str {
        self.head.route.as_deref().unwrap_or("")
    }

    /// The metadata parsed as headers (empty if absent or not in header layout).
    pub fn headers(&self) -> Headers {
        Headers::decode(&self.head.metadata).unwrap_or_default()
    }

    /// Collects the body into memory up to `limit` bytes.
    ///
    /// Not an `async fn`: the future holds the body alone, not the whole message (a
    /// move of the message into the future was a measurable part of a round trip).
    pub fn collect(
        self,
        limit: u64,
    ) -> impl std::future::Future<Output = Result<Bytes, PipeError>> + Send {
        self.body.collect(limit)
    }

    /// Resolves when the peer abandons this message after sending it (for a request:
    /// its caller cancelled or gave up). Handlers race their work against this.
    pub async fn abandoned(&self) {
        self.body.abandon_signal().wait().await
    }

    /// A handle that resolves like [`abandoned`](Self::abandoned) but can be moved
    /// elsewhere, e.g. into a handler task while the body is consumed.
    pub fn abandon_signal(&self) -> AbandonSignal {
        self.body.abandon_signal()
    }
}

/// Shared state of an outgoing message, updated by the driver.
#[derive(Debug)]
pub(crate) struct OutShared {
    /// Core id, 0 until the driver started it.
    pub(crate) id: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) total: Option<u64>,
    pub(crate) outcome: Completion,
    /// Bytes a writer may hand the driver ahead of the core; only streamed bodies
    /// (a whole body is handed over at once) have it.
    pub(crate) budget: Option<WriteBudget>,
}

impl OutShared {
    /// State of a message; `buffer` is the writer's buffer, `None` for a whole body.
    pub(crate) fn new(total: Option<u64>, buffer: Option<usize>) -> Arc<OutShared> {
        Arc::new(OutShared {
            id: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            total,
            outcome: Completion::new(),
            budget: buffer.map(WriteBudget::new),
        })
    }

    /// Records the outcome (see [`Completion::complete`]); a writer waiting for buffer
    /// space then fails instead of waiting for a driver that no longer frees any.
    pub(crate) fn complete(&self, result: Result<(), PipeError>) {
        if self.outcome.complete(result) {
            if let Some(b) = &self.budget {
                b.close();
            }
        }
    }

    pub(crate) fn result(&self) -> Option<Result<(), PipeError>> {
        self.outcome.result()
    }
}

/// Follows an outgoing message: its id, progress, completion; can cancel it.
#[derive(Debug, Clone)]
pub struct SendHandle {
    pub(crate) shared: Arc<OutShared>,
    pub(crate) commands: CommandSender,
}

impl SendHandle {
    /// The message id, once the connection has started it.
    pub fn id(&self) -> Option<MessageId> {
        match self.shared.id.load(Ordering::Acquire) {
            0 => None,
            id => Some(MessageId(id)),
        }
    }

    /// Body bytes handed to the protocol so far, and the total if known.
    pub fn progress(&self) -> (u64, Option<u64>) {
        (self.shared.sent.load(Ordering::Relaxed), self.shared.total)
    }

    /// Waits until the message was fully sent (`Ok`) or failed.
    pub async fn finished(&self) -> Result<(), PipeError> {
        self.shared.outcome.wait().await
    }

    /// Cancels the message; the peer is told (the seed's `cancel_mission`).
    pub fn cancel(&self) {
        let _ = self.commands.send(Command::Cancel {
            shared: self.shared.clone(),
            code: ErrorCode::CANCELLED,
        });
    }
}

/// Streams the body of an outgoing message by hand. Writes wait while the message's
/// buffer is full (backpressure from the peer's credit); [`finish`](Self::finish) ends
/// the body. Dropping the writer without finishing cancels the message.
#[derive(Debug)]
pub struct MessageWriter {
    pub(crate) handle: SendHandle,
    pub(crate) finished: bool,
}

impl MessageWriter {
    /// The handle following this message.
    pub fn handle(&self) -> &SendHandle {
        &self.handle
    }

    /// Queues `data`, waiting for buffer space.
    ///
    /// The bytes are shared with the driver, not copied. A write waits while the
    /// message's buffer (`PipeConfig::write_buffer`) is full, and then until half of
    /// it is free; a write larger than the buffer is queued whole once half is free.
    pub async fn write(&mut self, data: impl Into<Bytes>) -> Result<(), PipeError> {
        let data: Bytes = data.into();
        if data.is_empty() {
            return Ok(());
        }
        let Some(budget) = &self.handle.shared.budget else {
            return Err(self.failure());
        };
        if !budget.admit(data.len()).await {
            return Err(self.failure());
        }
        let sent = self.handle.commands.send(Command::Write {
            shared: self.handle.shared.clone(),
            data,
        });
        if sent.is_err() {
            return Err(PipeError::Closed(None));
        }
        Ok(())
    }

    fn failure(&self) -> PipeError {
        match self.handle.shared.result() {
            Some(Err(e)) => e,
            _ => PipeError::Closed(None),
        }
    }

    /// Ends the body and waits until the message is fully sent.
    pub async fn finish(mut self) -> Result<(), PipeError> {
        self.finished = true;
        let _ = self.handle.commands.send(Command::Finish {
            shared: self.handle.shared.clone(),
        });
        self.handle.finished().await
    }
}

impl Drop for MessageWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.handle.cancel();
        }
    }
}
