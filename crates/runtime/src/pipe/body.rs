//! Message bodies: what a sender hands over ([`Body`]) and what a receiver reads
//! ([`IncomingBody`]).
//!
//! An incoming body is a small buffer shared between the connection driver and the
//! reader. The driver fills it from the protocol core up to a byte limit and then stops
//! reading that message, which makes the core withhold credit from the peer: a slow
//! reader slows its sender, never the connection.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::sync::Notify;

use super::driver::{Command, CommandSender};
use super::error::PipeError;
use netcore_core::{ErrorCode, MessageId};

/// The body of an outgoing message.
///
/// ```
/// use netcore_runtime::Body;
/// let b: Body = "hello".into();
/// assert_eq!(b.len(), Some(5));
/// let s = Body::stream(tokio::io::empty(), None);
/// assert_eq!(s.len(), None);
/// ```
pub enum Body {
    /// Bytes already in memory.
    Bytes(Bytes),
    /// A reader of known or unknown length, streamed in chunks.
    Stream {
        /// The source.
        reader: Pin<Box<dyn AsyncRead + Send>>,
        /// Its length, when known (announced to the peer and checked).
        len: Option<u64>,
    },
}

impl Body {
    /// An empty body.
    pub fn empty() -> Body {
        Body::Bytes(Bytes::new())
    }

    /// A streamed body.
    pub fn stream(reader: impl AsyncRead + Send + 'static, len: Option<u64>) -> Body {
        Body::Stream {
            reader: Box::pin(reader),
            len,
        }
    }

    /// A file's contents from `offset` on, streamed; its length is announced.
    pub async fn file(path: impl AsRef<Path>, offset: u64) -> Result<Body, PipeError> {
        use tokio::io::AsyncSeekExt;
        let path = path.as_ref();
        let mut f = tokio::fs::File::open(path)
            .await
            .map_err(|e| PipeError::io(format!("open {}", path.display()), e))?;
        let len = f
            .metadata()
            .await
            .map_err(|e| PipeError::io(format!("stat {}", path.display()), e))?
            .len();
        let offset = offset.min(len);
        f.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| PipeError::io(format!("seek {}", path.display()), e))?;
        Ok(Body::stream(f, Some(len - offset)))
    }

    /// The length, when known.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Bytes(b) => Some(b.len() as u64),
            Body::Stream { len, .. } => *len,
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Body::Stream { len, .. } => write!(f, "Body::Stream(len: {len:?})"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::Bytes(b)
    }
}
impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Body {
        Body::Bytes(Bytes::from(b))
    }
}
impl From<&'static [u8]> for Body {
    fn from(b: &'static [u8]) -> Body {
        Body::Bytes(Bytes::from_static(b))
    }
}
impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Bytes(Bytes::from_static(s.as_bytes()))
    }
}
impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Bytes(Bytes::from(s))
    }
}
impl From<()> for Body {
    fn from(_: ()) -> Body {
        Body::empty()
    }
}

/// Where a collected body ended up.
#[derive(Debug)]
pub enum Collected {
    /// In memory.
    Memory(Bytes),
    /// Spilled to a file, with its length.
    File(PathBuf, u64),
}

#[derive(Debug, Default)]
pub(crate) struct BodyState {
    chunks: VecDeque<Bytes>,
    pub(crate) buffered: usize,
    pub(crate) received: u64,
    pub(crate) ended: bool,
    pub(crate) error: Option<PipeError>,
    waker: Option<Waker>,
    /// The driver stopped reading this message because the buffer was full.
    pub(crate) driver_parked: bool,
}

/// State shared by the driver and an [`IncomingBody`].
#[derive(Debug)]
pub(crate) struct BodyShared {
    pub(crate) state: Mutex<BodyState>,
    pub(crate) total: Option<u64>,
    pub(crate) capacity: usize,
    consumed: AtomicU64,
    /// Driver only: queued with its body left in the core (`Driver::parked`).
    pub(crate) parked: AtomicBool,
}

impl BodyShared {
    pub(crate) fn new(total: Option<u64>, capacity: usize) -> Arc<BodyShared> {
        Arc::new(BodyShared {
            state: Mutex::new(BodyState::default()),
            total,
            capacity,
            consumed: AtomicU64::new(0),
            parked: AtomicBool::new(false),
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, BodyState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Driver side: appends a chunk without waking the reader (the driver wakes it once
    /// per batch with [`wake`](Self::wake)). Returns whether the buffer is now full.
    pub(crate) fn push(&self, chunk: Bytes) -> bool {
        let mut s = self.lock();
        s.buffered += chunk.len();
        s.received += chunk.len() as u64;
        s.chunks.push_back(chunk);
        s.buffered >= self.capacity
    }

    /// Driver side: wakes the reader if it waits.
    pub(crate) fn wake(&self) {
        let waker = self.lock().waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Driver side: is there room for more?
    pub(crate) fn has_room(&self) -> bool {
        self.lock().buffered < self.capacity
    }

    /// Driver side: if the buffer is full, records that the driver stopped reading
    /// (the reader then sends `Resume` once it has drained half) and returns true.
    pub(crate) fn park_if_full(&self) -> bool {
        let mut s = self.lock();
        s.driver_parked = s.buffered >= self.capacity;
        s.driver_parked
    }

    pub(crate) fn finish(&self, result: Result<(), PipeError>) {
        let mut s = self.lock();
        match result {
            Ok(()) => s.ended = true,
            Err(e) => {
                if !s.ended {
                    s.error = Some(e)
                }
            }
        }
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

/// Ids of incoming messages the peer abandoned (its caller cancelled or gave up),
/// while their bodies arrived or after: the driver notes each here and the messages'
/// abandon signals look their id up. One per connection, so a message keeps no state
/// of its own for it, and one that arrived whole none at all.
#[derive(Debug, Default)]
pub(crate) struct Abandons {
    ids: Mutex<VecDeque<u64>>,
    notify: Notify,
}

/// Ids remembered: a message abandoned longer ago than this many others is forgotten.
const ABANDONS_KEPT: usize = 1024;

impl Abandons {
    /// Driver side: the peer abandoned message `id`.
    pub(crate) fn mark(&self, id: u64) {
        {
            let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
            if ids.len() >= ABANDONS_KEPT {
                ids.pop_front();
            }
            ids.push_back(id);
        }
        self.notify.notify_waiters();
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.iter().rev().any(|&i| i == id)
    }

    pub(crate) async fn wait(&self, id: u64) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.contains(id) {
                return;
            }
            notified.await;
        }
    }
}

/// Resolves when the peer abandons a message (see
/// [`IncomingMessage::abandoned`](super::IncomingMessage::abandoned)).
#[derive(Debug, Clone)]
pub struct AbandonSignal {
    abandons: Arc<Abandons>,
    id: u64,
}

impl AbandonSignal {
    /// Waits until the peer abandons the message.
    pub async fn wait(&self) {
        self.abandons.wait(self.id).await
    }

    /// Whether it already has.
    pub fn is_abandoned(&self) -> bool {
        self.abandons.contains(self.id)
    }
}

/// How a body reaches its reader.
#[derive(Debug)]
enum Link {
    /// Still arriving: pumped by the driver into a buffer shared with it.
    Stream {
        shared: Arc<BodyShared>,
        /// To the driver (`Resume`, `Stop`).
        commands: CommandSender,
    },
    /// Arrived whole before its message was handed over: the bytes are in `ready`,
    /// nothing is shared with the driver, and reading takes no lock.
    Whole {
        total: Option<u64>,
        /// Bytes of the body.
        len: u64,
    },
}

/// The body of an incoming message, read as a stream of chunks or collected.
///
/// Dropping it before the end tells the peer to stop sending (CANCEL).
#[derive(Debug)]
pub struct IncomingBody {
    pub(crate) id: MessageId,
    link: Link,
    /// The connection's record of abandoned messages, attached by whoever hands the
    /// message to the application (the accept queue's receiving end, or the driver for
    /// a reply) rather than by the driver for every message: the reference count then
    /// stays in the cache of the application's CPU instead of moving between the
    /// driver's and the application's with every small message.
    abandons: Option<Arc<Abandons>>,
    done: bool,
    /// `Whole` only: the bytes not read yet.
    ready: Option<Bytes>,
}

impl IncomingBody {
    pub(crate) fn new(
        id: MessageId,
        shared: Arc<BodyShared>,
        commands: CommandSender,
    ) -> IncomingBody {
        IncomingBody {
            id,
            link: Link::Stream { shared, commands },
            abandons: None,
            done: false,
            ready: None,
        }
    }

    /// A body that arrived whole (`chunk`, or nothing for an empty body) before its
    /// message was handed over: no driver link, nothing shared to lock.
    pub(crate) fn whole(id: MessageId, total: Option<u64>, chunk: Option<Bytes>) -> IncomingBody {
        let len = chunk.as_ref().map_or(0, |c| c.len() as u64);
        IncomingBody {
            id,
            link: Link::Whole { total, len },
            abandons: None,
            done: false,
            ready: chunk.filter(|c| !c.is_empty()),
        }
    }

    /// Gives the body its connection's record of abandoned messages, on the side
    /// that hands the message to the application (see the `abandons` field).
    #[inline]
    pub(crate) fn attach_abandons(&mut self, abandons: &Arc<Abandons>) {
        if self.abandons.is_none() {
            self.abandons = Some(abandons.clone());
        }
    }

    /// The signal of the peer abandoning this message.
    pub(crate) fn abandon_signal(&self) -> AbandonSignal {
        AbandonSignal {
            // Always attached before the application sees the message; a detached
            // body (never handed over) has nobody to tell.
            abandons: self.abandons.clone().unwrap_or_default(),
            id: self.id.0,
        }
    }

    /// Announced total length, if the sender knew it.
    pub fn len_hint(&self) -> Option<u64> {
        match &self.link {
            Link::Stream { shared, .. } => shared.total,
            Link::Whole { total, .. } => *total,
        }
    }

    /// Bytes received so far and the announced total.
    pub fn progress(&self) -> (u64, Option<u64>) {
        match &self.link {
            Link::Stream { shared, .. } => (shared.lock().received, shared.total),
            Link::Whole { total, len, .. } => (*len, *total),
        }
    }

    /// Bytes handed to the reader so far.
    pub fn consumed(&self) -> u64 {
        match &self.link {
            Link::Stream { shared, .. } => shared.consumed.load(Ordering::Relaxed),
            Link::Whole { len, .. } => len - self.ready.as_ref().map_or(0, |c| c.len() as u64),
        }
    }

    /// Polls for the next chunk: `Ok(None)` at the end.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, PipeError>> {
        let (shared, commands) = match &self.link {
            Link::Stream { shared, commands } => (shared, commands),
            Link::Whole { .. } => {
                let chunk = self.ready.take();
                self.done = chunk.is_none();
                return Poll::Ready(Ok(chunk));
            }
        };
        let mut s = shared.lock();
        if let Some(chunk) = s.chunks.pop_front() {
            s.buffered -= chunk.len();
            shared
                .consumed
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if s.driver_parked && s.buffered <= shared.capacity / 2 {
                s.driver_parked = false;
                let _ = commands.send(Command::Resume { id: self.id });
            }
            return Poll::Ready(Ok(Some(chunk)));
        }
        if let Some(e) = &s.error {
            self.done = true;
            return Poll::Ready(Err(e.clone()));
        }
        if s.ended {
            self.done = true;
            return Poll::Ready(Ok(None));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The next chunk, `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, PipeError> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Collects the whole body into memory, failing with `TooLarge` past `limit` bytes
    /// (checked against the announced length first, so nothing is buffered in vain).
    pub async fn collect(mut self, limit: u64) -> Result<Bytes, PipeError> {
        if self.len_hint().is_some_and(|t| t > limit) {
            return Err(PipeError::TooLarge { limit });
        }
        if matches!(self.link, Link::Whole { .. }) {
            // Arrived whole: the bytes are here already (the usual small message).
            let body = self.ready.take().unwrap_or_default();
            self.done = true;
            if body.len() as u64 > limit {
                return Err(PipeError::TooLarge { limit });
            }
            return Ok(body);
        }
        let mut first: Option<Bytes> = None;
        let mut buf = BytesMut::new();
        let mut total = 0u64;
        while let Some(chunk) = self.chunk().await? {
            total += chunk.len() as u64;
            if total > limit {
                return Err(PipeError::TooLarge { limit });
            }
            match first.take() {
                None if buf.is_empty() => first = Some(chunk),
                None => buf.extend_from_slice(&chunk),
                Some(f) => {
                    buf.reserve(f.len() + chunk.len());
                    buf.extend_from_slice(&f);
                    buf.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| buf.freeze()))
    }

    /// Writes the body to `file` as it arrives; returns the bytes written.
    pub async fn write_to(mut self, file: &mut tokio::fs::File) -> Result<u64, PipeError> {
        let mut n = 0;
        while let Some(chunk) = self.chunk().await? {
            file.write_all(&chunk)
                .await
                .map_err(|e| PipeError::io("write body to file", e))?;
            n += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(|e| PipeError::io("flush body file", e))?;
        Ok(n)
    }

    /// Collects into memory up to `threshold` bytes; a larger body (announced or
    /// actual) is spilled to a new file in `dir`, so any size runs in bounded memory.
    pub async fn collect_or_spill(
        mut self,
        threshold: u64,
        dir: impl AsRef<Path>,
    ) -> Result<Collected, PipeError> {
        let announced_large = self.len_hint().is_some_and(|t| t > threshold);
        let mut mem = BytesMut::new();
        if !announced_large {
            loop {
                match self.chunk().await? {
                    None => return Ok(Collected::Memory(mem.freeze())),
                    Some(chunk) => {
                        mem.extend_from_slice(&chunk);
                        if mem.len() as u64 > threshold {
                            break;
                        }
                    }
                }
            }
        }
        let dir = dir.as_ref();
        let path = dir.join(format!(
            "netcore-body-{}-{}.part",
            std::process::id(),
            NEXT_SPILL.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| PipeError::io(format!("create {}", path.display()), e))?;
        file.write_all(&mem)
            .await
            .map_err(|e| PipeError::io(format!("write {}", path.display()), e))?;
        let n = mem.len() as u64 + self.write_to(&mut file).await?;
        Ok(Collected::File(path, n))
    }
}

static NEXT_SPILL: AtomicU64 = AtomicU64::new(0);

impl Drop for IncomingBody {
    fn drop(&mut self) {
        let Link::Stream { shared, commands } = &self.link else {
            // Whole: the peer has sent everything, nothing to stop.
            return;
        };
        if !self.done {
            let s = shared.lock();
            if !(s.ended && s.chunks.is_empty()) && s.error.is_none() {
                let _ = commands.send(Command::Stop {
                    id: self.id,
                    code: ErrorCode::CANCELLED,
                });
            }
        }
    }
}

impl AsyncRead for IncomingBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        // Serve from a chunk, putting back what does not fit.
        match self.as_mut().poll_chunk(cx) {
            Poll::Ready(Ok(Some(mut chunk))) => {
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                if n < chunk.len() {
                    let rest = chunk.split_off(n);
                    match &self.link {
                        Link::Whole { .. } => self.ready = Some(rest),
                        Link::Stream { shared, .. } => {
                            shared
                                .consumed
                                .fetch_sub(rest.len() as u64, Ordering::Relaxed);
                            let mut s = shared.lock();
                            s.buffered += rest.len();
                            s.chunks.push_front(rest);
                        }
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_marked_id_resolves_its_waiters_and_old_ids_are_forgotten() {
        let abandons = Arc::new(Abandons::default());
        let waiter = {
            let a = abandons.clone();
            tokio::spawn(async move { a.wait(7).await })
        };
        tokio::task::yield_now().await;
        abandons.mark(3); // another message: the waiter looks again and waits on
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished());
        abandons.mark(7);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("waiter woken")
            .unwrap();
        assert!(abandons.contains(7));
        for id in 100..100 + ABANDONS_KEPT as u64 {
            abandons.mark(id);
        }
        assert!(!abandons.contains(7));
        assert!(abandons.contains(100 + ABANDONS_KEPT as u64 - 1));
    }
}
