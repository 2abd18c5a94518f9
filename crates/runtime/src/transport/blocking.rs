//! Adapters from blocking I/O: a pair of user functions (the seed's
//! `Pipe(recv_func, send_func)`) or blocking `Read` + `Write` handles.
//!
//! Each adapter runs two background threads, one calling `recv` and one calling `send`,
//! connected to the async side by bounded buffers, so memory stays bounded whatever either
//! side does.
//!
//! Shutdown: when the [`Transport`] is dropped, the send thread writes what was already
//! accepted, then exits; the receive thread exits as soon as its current `recv` call
//! returns. A `recv` that blocks forever keeps its thread until it returns, so give blocking
//! handles a read timeout (`recv` returning [`io::ErrorKind::TimedOut`] or
//! [`io::ErrorKind::WouldBlock`] is retried after checking for shutdown) or close the
//! underlying handle. [`adapter_threads_alive`] counts the adapter threads still running.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{LinkHint, Transport, TransportError, TransportInfo, TransportKind};

static ALIVE: AtomicUsize = AtomicUsize::new(0);

/// Number of blocking-adapter threads currently running in this process (two per live
/// adapter, fewer once they wind down). Useful to check that nothing leaks.
///
/// ```
/// use netcore_runtime::transport::adapter_threads_alive;
/// let _n: usize = adapter_threads_alive();
/// ```
pub fn adapter_threads_alive() -> usize {
    ALIVE.load(Ordering::SeqCst)
}

/// Settings of a blocking adapter.
///
/// ```
/// use netcore_runtime::transport::{BlockingOptions, LinkHint};
/// let o = BlockingOptions::default()
///     .with_buffer(16 * 1024)
///     .with_link_hint(LinkHint::serial_baud(115_200));
/// assert_eq!(o.buffer, 16 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockingOptions {
    /// Bytes buffered per direction between the threads and the async side (at least 1).
    pub buffer: usize,
    /// Largest buffer handed to one `recv` call (at least 1).
    pub read_chunk: usize,
    /// Link hint for the driver (unknown by default).
    pub link_hint: Option<LinkHint>,
    /// Text for [`TransportInfo::peer`].
    pub peer: Option<String>,
}

impl Default for BlockingOptions {
    /// 64 KiB per direction, 16 KiB reads, no hint.
    fn default() -> Self {
        BlockingOptions {
            buffer: 64 * 1024,
            read_chunk: 16 * 1024,
            link_hint: None,
            peer: None,
        }
    }
}

impl BlockingOptions {
    /// Sets the per-direction buffer.
    ///
    /// ```
    /// use netcore_runtime::transport::BlockingOptions;
    /// assert_eq!(BlockingOptions::default().with_buffer(0).buffer, 1);
    /// ```
    pub fn with_buffer(mut self, bytes: usize) -> Self {
        self.buffer = bytes.max(1);
        self
    }

    /// Sets the largest `recv` buffer.
    ///
    /// ```
    /// use netcore_runtime::transport::BlockingOptions;
    /// assert_eq!(BlockingOptions::default().with_read_chunk(512).read_chunk, 512);
    /// ```
    pub fn with_read_chunk(mut self, bytes: usize) -> Self {
        self.read_chunk = bytes.max(1);
        self
    }

    /// Sets the link hint.
    ///
    /// ```
    /// use netcore_runtime::transport::{BlockingOptions, LinkHint};
    /// let o = BlockingOptions::default().with_link_hint(LinkHint::reliable());
    /// assert!(o.link_hint.is_some());
    /// ```
    pub fn with_link_hint(mut self, hint: LinkHint) -> Self {
        self.link_hint = Some(hint);
        self
    }

    /// Sets the peer description.
    ///
    /// ```
    /// use netcore_runtime::transport::BlockingOptions;
    /// assert_eq!(BlockingOptions::default().with_peer("uart0").peer.as_deref(), Some("uart0"));
    /// ```
    pub fn with_peer(mut self, peer: impl Into<String>) -> Self {
        self.peer = Some(peer.into());
        self
    }
}

/// A bounded byte buffer between a thread and the async side.
struct Pipe {
    state: Mutex<PipeState>,
    cv: Condvar,
}

struct PipeState {
    buf: VecDeque<u8>,
    cap: usize,
    /// The producer finished: end of stream once `buf` drains.
    producer_done: bool,
    /// The consumer is gone: producers stop.
    consumer_gone: bool,
    /// The thread is inside a `send` call (flush waits for it).
    busy: bool,
    /// An error of the thread, reported once to the async side.
    error: Option<io::Error>,
    /// The thread stopped after an error (reported already or not).
    failed: bool,
    waker: Option<Waker>,
}

impl Pipe {
    fn new(cap: usize) -> Arc<Self> {
        Arc::new(Pipe {
            state: Mutex::new(PipeState {
                buf: VecDeque::new(),
                cap: cap.max(1),
                producer_done: false,
                consumer_gone: false,
                busy: false,
                error: None,
                failed: false,
                waker: None,
            }),
            cv: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, PipeState>) -> MutexGuard<'a, PipeState> {
        self.cv.wait(g).unwrap_or_else(|p| p.into_inner())
    }
}

impl PipeState {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn take_error(&mut self) -> Option<io::Error> {
        if let Some(e) = self.error.take() {
            return Some(e);
        }
        self.failed.then(|| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "blocking adapter stopped after an earlier I/O error",
            )
        })
    }
}

/// Decrements the live-thread count when the thread ends, however it ends.
struct AliveGuard;

impl Drop for AliveGuard {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    ALIVE.fetch_add(1, Ordering::SeqCst);
    let guard = AliveGuard;
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _guard = guard;
            f();
        })
        .map(drop)
    // On spawn failure the closure (and its guard) is dropped, fixing the count.
}

fn recv_loop<R>(pipe: &Pipe, mut recv: R, chunk: usize)
where
    R: FnMut(&mut [u8]) -> io::Result<usize>,
{
    let mut local = vec![0u8; chunk];
    loop {
        let room = {
            let mut g = pipe.lock();
            while g.buf.len() >= g.cap && !g.consumer_gone {
                g = pipe.wait(g);
            }
            if g.consumer_gone {
                return;
            }
            g.cap - g.buf.len()
        };
        let want = room.min(local.len());
        let result = recv(&mut local[..want]);
        let mut g = pipe.lock();
        if g.consumer_gone {
            return;
        }
        match result {
            Ok(0) => {
                g.producer_done = true;
                g.wake();
                return;
            }
            Ok(n) => {
                g.buf.extend(&local[..n.min(want)]);
                g.wake();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                g.error = Some(e);
                g.failed = true;
                g.producer_done = true;
                g.wake();
                return;
            }
        }
    }
}

fn send_loop<S>(pipe: &Pipe, mut send: S, chunk: usize)
where
    S: FnMut(&[u8]) -> io::Result<()>,
{
    let mut local = Vec::with_capacity(chunk);
    loop {
        {
            let mut g = pipe.lock();
            while g.buf.is_empty() && !g.producer_done {
                g = pipe.wait(g);
            }
            if g.buf.is_empty() {
                return;
            }
            let n = g.buf.len().min(chunk);
            local.clear();
            let (front, back) = g.buf.as_slices();
            let from_front = n.min(front.len());
            local.extend_from_slice(&front[..from_front]);
            local.extend_from_slice(&back[..n - from_front]);
            g.buf.drain(..n);
            g.busy = true;
            g.wake();
        }
        let result = send(&local);
        let mut g = pipe.lock();
        g.busy = false;
        g.wake();
        if let Err(e) = result {
            g.error = Some(e);
            g.failed = true;
            g.consumer_gone = true;
            g.buf.clear();
            return;
        }
    }
}

/// The async side of an adapter.
struct Adapter {
    incoming: Arc<Pipe>,
    outgoing: Arc<Pipe>,
}

impl AsyncRead for Adapter {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut g = self.incoming.lock();
        if !g.buf.is_empty() {
            let n = g.buf.len().min(buf.remaining());
            let (a, b) = g.buf.as_slices();
            let from_a = n.min(a.len());
            buf.put_slice(&a[..from_a]);
            buf.put_slice(&b[..n - from_a]);
            g.buf.drain(..n);
            self.incoming.cv.notify_all();
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = g.error.take() {
            return Poll::Ready(Err(e));
        }
        if g.producer_done {
            return Poll::Ready(Ok(()));
        }
        g.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for Adapter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut g = self.outgoing.lock();
        if let Some(e) = g.take_error() {
            return Poll::Ready(Err(e));
        }
        if g.producer_done || g.consumer_gone {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "blocking adapter: write after shutdown",
            )));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let space = g.cap.saturating_sub(g.buf.len());
        if space == 0 {
            g.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = space.min(data.len());
        g.buf.extend(&data[..n]);
        self.outgoing.cv.notify_all();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut g = self.outgoing.lock();
        if let Some(e) = g.take_error() {
            return Poll::Ready(Err(e));
        }
        if g.buf.is_empty() && !g.busy {
            return Poll::Ready(Ok(()));
        }
        g.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = self.as_ref().get_ref().outgoing.clone();
        let mut g = flushed.lock();
        if g.producer_done {
            return Poll::Ready(Ok(()));
        }
        drop(g);
        match self.poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                g = flushed.lock();
                g.producer_done = true;
                flushed.cv.notify_all();
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        {
            let mut g = self.incoming.lock();
            g.consumer_gone = true;
            g.buf.clear();
        }
        self.incoming.cv.notify_all();
        self.outgoing.lock().producer_done = true;
        self.outgoing.cv.notify_all();
    }
}

/// Makes a transport from a pair of blocking functions, the seed's
/// `Pipe(recv_func, send_func)`.
///
/// * `recv(buf)` blocks until it has bytes, writes them to the start of `buf` and returns
///   how many; `Ok(0)` means end of stream. [`io::ErrorKind::TimedOut`],
///   [`io::ErrorKind::WouldBlock`] and [`io::ErrorKind::Interrupted`] mean "nothing yet" and
///   are retried; other errors end the stream and are reported to the reader.
/// * `send(data)` blocks until all of `data` is sent.
///
/// Two threads run `recv` and `send`. When the transport is dropped, the send thread
/// finishes what was already accepted and exits; the receive thread exits when its current
/// `recv` returns, so a `recv` that can block forever should time out now and then.
/// [`adapter_threads_alive`] counts the threads still running.
///
/// Fails only if a thread cannot be started.
///
/// ```
/// use netcore_runtime::transport::{from_fns, BlockingOptions};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use std::sync::mpsc;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A loopback "device": whatever is sent comes back.
/// let (tx, rx) = mpsc::channel::<Vec<u8>>();
/// let recv = move |buf: &mut [u8]| match rx.recv() {
///     Ok(chunk) => { let n = chunk.len().min(buf.len()); buf[..n].copy_from_slice(&chunk[..n]); Ok(n) }
///     Err(_) => Ok(0),
/// };
/// let send = move |data: &[u8]| tx.send(data.to_vec())
///     .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe));
/// let mut t = from_fns(recv, send, BlockingOptions::default())?;
/// t.write_all(b"echo").await?;
/// let mut buf = [0u8; 4];
/// t.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"echo");
/// # Ok(()) }
/// ```
pub fn from_fns<R, S>(
    recv: R,
    send: S,
    options: BlockingOptions,
) -> Result<Transport, TransportError>
where
    R: FnMut(&mut [u8]) -> io::Result<usize> + Send + 'static,
    S: FnMut(&[u8]) -> io::Result<()> + Send + 'static,
{
    let incoming = Pipe::new(options.buffer);
    let outgoing = Pipe::new(options.buffer);
    let chunk = options.read_chunk.max(1);
    let write_chunk = options.buffer.clamp(1, 64 * 1024);
    let adapter = Adapter {
        incoming: incoming.clone(),
        outgoing: outgoing.clone(),
    };
    spawn("netcore-recv", move || recv_loop(&incoming, recv, chunk))
        .map_err(|e| TransportError::io("start the blocking adapter's receive thread", e))?;
    // If this fails, dropping `adapter` stops the receive thread at its next wake-up.
    spawn("netcore-send", move || {
        send_loop(&outgoing, send, write_chunk)
    })
    .map_err(|e| TransportError::io("start the blocking adapter's send thread", e))?;
    let mut info = TransportInfo::new(TransportKind::Blocking);
    info.link_hint = options.link_hint;
    info.peer = options.peer;
    Ok(Transport::new(adapter, info))
}

/// Makes a transport from blocking `Read` and `Write` handles (for example two clones of a
/// serial port or socket handle, from `try_clone`).
///
/// Each chunk written to the transport ends in `write_all` + `flush` on `writer`. The
/// threads end as described for [`from_fns`]; give `reader` a read timeout so the receive
/// thread notices a dropped transport promptly.
///
/// `Write` has no half-close: shutting down the transport's write side flushes and stops
/// the send thread (dropping `writer`), but if `reader` is a clone of the same handle the
/// peer sees end of stream only once the receive thread has ended too.
///
/// ```
/// use netcore_runtime::transport::{from_blocking, BlockingOptions};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let stream = std::net::TcpStream::connect(server.local_addr()?)?;
/// let (mut peer, _) = server.accept()?;
/// let mut t = from_blocking(stream.try_clone()?, stream, BlockingOptions::default())?;
/// std::io::Write::write_all(&mut peer, b"hi")?;
/// let mut buf = [0u8; 2];
/// t.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"hi");
/// # Ok(()) }
/// ```
pub fn from_blocking<R, W>(
    mut reader: R,
    mut writer: W,
    options: BlockingOptions,
) -> Result<Transport, TransportError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    from_fns(
        move |buf: &mut [u8]| reader.read(buf),
        move |data: &[u8]| {
            writer.write_all(data)?;
            writer.flush()
        },
        options,
    )
}
