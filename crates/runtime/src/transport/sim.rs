//! Simulated link: rate, one-way latency, and byte drops, bit flips and insertions drawn
//! deterministically from a seed. Runs on tokio time, so it also works under a paused clock
//! (`#[tokio::test(start_paused = true)]`), where a 10-second transfer takes milliseconds.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::{LinkHint, LinkProfile, Transport, TransportInfo, TransportKind};

/// Parameters of a simulated link (the same in both directions).
///
/// Probabilities apply per byte written: a byte is dropped with `drop_prob`; a random byte
/// is inserted before it with `insert_prob`; one of its bits is flipped with `flip_prob`.
/// `buffer_limit` bounds the bytes in flight per direction (written but not yet read by the
/// other side): a writer beyond it waits, as on a real link with a full transmit buffer.
/// To model latency under load faithfully, keep it near the bandwidth-delay product
/// (`rate × latency`) plus a small transmit FIFO, as a UART or a TCP socket with
/// `TCP_NOTSENT_LOWAT` would; a large buffer models a bloated queue.
///
/// Tokio timers tick every millisecond, so one direction carries at most about
/// `buffer_limit` bytes per millisecond: for rates above `buffer_limit × 1000` bytes/s,
/// raise `buffer_limit` to at least `rate × (latency + 1 ms)`.
///
/// The error pattern depends only on the seed and the byte sequence, not on how writes are
/// split or timed, so a failing test replays exactly.
///
/// ```
/// use netcore_runtime::transport::SimConfig;
/// use std::time::Duration;
/// let cfg = SimConfig::default()
///     .with_rate(11_520)
///     .with_latency(Duration::from_millis(5))
///     .with_errors(1e-4, 1e-4, 1e-4)
///     .with_seed(42)
///     .with_buffer_limit(4096);
/// assert_eq!(cfg.rate_bytes_per_sec, 11_520);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SimConfig {
    /// Link rate in bytes per second; 0 means unlimited.
    pub rate_bytes_per_sec: u64,
    /// Delay from the end of a byte's transmission to its arrival.
    pub one_way_latency: Duration,
    /// Probability that a byte is dropped.
    pub drop_prob: f64,
    /// Probability that one bit of a byte is flipped.
    pub flip_prob: f64,
    /// Probability that a random byte is inserted before a byte.
    pub insert_prob: f64,
    /// Seed of the error generator (direction b→a uses a seed derived from it).
    pub seed: u64,
    /// Maximum bytes in flight per direction before writers wait (at least 1).
    pub buffer_limit: usize,
}

impl Default for SimConfig {
    /// Unlimited rate, no latency, no errors, seed 0, 64 KiB buffer.
    fn default() -> Self {
        SimConfig {
            rate_bytes_per_sec: 0,
            one_way_latency: Duration::ZERO,
            drop_prob: 0.0,
            flip_prob: 0.0,
            insert_prob: 0.0,
            seed: 0,
            buffer_limit: 64 * 1024,
        }
    }
}

impl SimConfig {
    /// Sets the rate in bytes/s (0 = unlimited).
    ///
    /// ```
    /// use netcore_runtime::transport::SimConfig;
    /// assert_eq!(SimConfig::default().with_rate(10).rate_bytes_per_sec, 10);
    /// ```
    pub fn with_rate(mut self, bytes_per_sec: u64) -> Self {
        self.rate_bytes_per_sec = bytes_per_sec;
        self
    }

    /// Sets the one-way latency.
    ///
    /// ```
    /// use netcore_runtime::transport::SimConfig;
    /// use std::time::Duration;
    /// let c = SimConfig::default().with_latency(Duration::from_millis(1));
    /// assert_eq!(c.one_way_latency, Duration::from_millis(1));
    /// ```
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.one_way_latency = latency;
        self
    }

    /// Sets drop, flip and insert probabilities (each clamped to `0..=1`; NaN counts as 0).
    ///
    /// ```
    /// use netcore_runtime::transport::SimConfig;
    /// let c = SimConfig::default().with_errors(0.1, 0.2, 0.3);
    /// assert_eq!((c.drop_prob, c.flip_prob, c.insert_prob), (0.1, 0.2, 0.3));
    /// ```
    pub fn with_errors(mut self, drop: f64, flip: f64, insert: f64) -> Self {
        let clamp = |p: f64| if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.drop_prob = clamp(drop);
        self.flip_prob = clamp(flip);
        self.insert_prob = clamp(insert);
        self
    }

    /// Sets the seed.
    ///
    /// ```
    /// use netcore_runtime::transport::SimConfig;
    /// assert_eq!(SimConfig::default().with_seed(9).seed, 9);
    /// ```
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the in-flight buffer limit per direction (at least 1 byte).
    ///
    /// ```
    /// use netcore_runtime::transport::SimConfig;
    /// assert_eq!(SimConfig::default().with_buffer_limit(0).buffer_limit, 1);
    /// ```
    pub fn with_buffer_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes.max(1);
        self
    }

    fn has_errors(&self) -> bool {
        self.drop_prob > 0.0 || self.flip_prob > 0.0 || self.insert_prob > 0.0
    }

    /// The link hint transports over this link carry: serial profile when errors are
    /// configured, TCP profile otherwise; the rate when limited.
    ///
    /// ```
    /// use netcore_runtime::transport::{LinkProfile, SimConfig};
    /// let h = SimConfig::default().with_errors(0.01, 0.0, 0.0).link_hint();
    /// assert_eq!(h.profile, LinkProfile::Serial);
    /// ```
    pub fn link_hint(&self) -> LinkHint {
        LinkHint {
            profile: if self.has_errors() {
                LinkProfile::Serial
            } else {
                LinkProfile::Tcp
            },
            rate_bytes_per_sec: (self.rate_bytes_per_sec > 0).then_some(self.rate_bytes_per_sec),
        }
    }
}

/// Byte counts of one direction of a simulated link.
///
/// ```
/// use netcore_runtime::transport::SimCounters;
/// let c = SimCounters::default();
/// assert_eq!(c.sent + c.dropped, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimCounters {
    /// Bytes accepted from the writer.
    pub sent: u64,
    /// Bytes handed to the reader (including inserted and corrupted ones).
    pub delivered: u64,
    /// Bytes dropped.
    pub dropped: u64,
    /// Bytes with a flipped bit.
    pub flipped: u64,
    /// Random bytes inserted.
    pub inserted: u64,
}

/// SplitMix64: small, fast, and stable across versions, so a seed always means the same
/// error pattern.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `threshold / 2^64` (`u64::MAX` means always).
    fn hit(&mut self, threshold: u64) -> bool {
        threshold != 0 && (threshold == u64::MAX || self.next() < threshold)
    }
}

fn threshold(p: f64) -> u64 {
    if p.is_nan() || p <= 0.0 {
        0
    } else if p >= 1.0 {
        u64::MAX
    } else {
        // `as` saturates; p < 1 keeps this below 2^64.
        (p * 18_446_744_073_709_551_616.0) as u64
    }
}

struct Segment {
    at: Instant,
    data: Bytes,
}

/// State of one direction.
struct Dir {
    queue: VecDeque<Segment>,
    in_flight: usize,
    link_free_at: Instant,
    rng: Rng,
    counters: SimCounters,
    writer_closed: bool,
    reader_closed: bool,
    reader_waker: Option<Waker>,
    writer_waker: Option<Waker>,
    // Configuration.
    rate: u64,
    latency: Duration,
    limit: usize,
    drop_t: u64,
    flip_t: u64,
    insert_t: u64,
}

impl Dir {
    fn new(cfg: &SimConfig, seed: u64) -> Self {
        Dir {
            queue: VecDeque::new(),
            in_flight: 0,
            link_free_at: Instant::now(),
            rng: Rng(seed),
            counters: SimCounters::default(),
            writer_closed: false,
            reader_closed: false,
            reader_waker: None,
            writer_waker: None,
            rate: cfg.rate_bytes_per_sec,
            // Capped so that deadlines never overflow the clock, whatever the input.
            latency: cfg.one_way_latency.min(MAX_LATENCY),
            limit: cfg.buffer_limit.max(1),
            drop_t: threshold(cfg.drop_prob),
            flip_t: threshold(cfg.flip_prob),
            insert_t: threshold(cfg.insert_prob),
        }
    }

    /// Applies the impairments to `input`.
    fn impair(&mut self, input: &[u8]) -> Vec<u8> {
        if self.drop_t == 0 && self.flip_t == 0 && self.insert_t == 0 {
            return input.to_vec();
        }
        let mut out = Vec::with_capacity(input.len() + 8);
        for &byte in input {
            if self.rng.hit(self.drop_t) {
                self.counters.dropped += 1;
                continue;
            }
            if self.rng.hit(self.insert_t) {
                out.push(self.rng.next() as u8);
                self.counters.inserted += 1;
            }
            let mut b = byte;
            if self.rng.hit(self.flip_t) {
                b ^= 1 << (self.rng.next() % 8);
                self.counters.flipped += 1;
            }
            out.push(b);
        }
        out
    }

    /// Queues `data`, paced by the rate and delayed by the latency.
    fn enqueue(&mut self, data: Vec<u8>) {
        let now = Instant::now();
        let mut data = Bytes::from(data);
        if self.rate == 0 {
            if !data.is_empty() {
                self.queue.push_back(Segment {
                    at: now + self.latency,
                    data,
                });
            }
            return;
        }
        // About one millisecond of link time per segment, so readers see bytes trickle in.
        let seg = usize::try_from(self.rate / 1000)
            .unwrap_or(usize::MAX)
            .clamp(1, 16 * 1024);
        let mut start = self.link_free_at.max(now);
        while !data.is_empty() {
            let chunk = data.split_to(seg.min(data.len()));
            let nanos = (chunk.len() as u128 * 1_000_000_000) / u128::from(self.rate);
            let end = start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            self.queue.push_back(Segment {
                at: end + self.latency,
                data: chunk,
            });
            start = end;
        }
        self.link_free_at = start;
    }
}

fn lock(m: &Mutex<Dir>) -> MutexGuard<'_, Dir> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

/// Longest one-way latency simulated (a year); larger values are treated as this.
const MAX_LATENCY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Largest write accepted in one call (bounds the per-call impairment work).
const MAX_WRITE: usize = 64 * 1024;

/// One end of a simulated link.
struct SimEnd {
    tx: Arc<Mutex<Dir>>,
    rx: Arc<Mutex<Dir>>,
    /// Timer for the next segment's arrival, created on first use (inside the runtime).
    sleep: Option<Pin<Box<Sleep>>>,
}

impl AsyncRead for SimEnd {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let mut d = lock(&this.rx);
        loop {
            let now = Instant::now();
            let mut copied = 0;
            while buf.remaining() > 0 {
                let Some(front) = d.queue.front_mut() else {
                    break;
                };
                if front.at > now {
                    break;
                }
                let n = front.data.len().min(buf.remaining());
                buf.put_slice(&front.data[..n]);
                front.data.advance(n);
                if front.data.is_empty() {
                    d.queue.pop_front();
                }
                copied += n;
            }
            if copied > 0 || buf.remaining() == 0 {
                d.in_flight = d.in_flight.saturating_sub(copied);
                d.counters.delivered += copied as u64;
                wake(&mut d.writer_waker);
                return Poll::Ready(Ok(()));
            }
            match d.queue.front() {
                None if d.writer_closed => return Poll::Ready(Ok(())),
                None => {
                    d.reader_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Some(front) => {
                    let at = front.at;
                    let sleep = this
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                    if sleep.deadline() != at {
                        sleep.as_mut().reset(at);
                    }
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // The deadline passed: deliver in the next round.
                }
            }
        }
    }
}

impl AsyncWrite for SimEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut d = lock(&self.tx);
        if d.reader_closed || d.writer_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "simulated link closed: the other end was dropped or this end shut down",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let space = d.limit.saturating_sub(d.in_flight);
        if space == 0 {
            d.writer_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(space).min(MAX_WRITE);
        let out = d.impair(&buf[..n]);
        d.counters.sent += n as u64;
        d.in_flight += out.len();
        d.enqueue(out);
        wake(&mut d.reader_waker);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut d = lock(&self.tx);
        d.writer_closed = true;
        wake(&mut d.reader_waker);
        Poll::Ready(Ok(()))
    }
}

impl Drop for SimEnd {
    fn drop(&mut self) {
        {
            let mut d = lock(&self.tx);
            d.writer_closed = true;
            wake(&mut d.reader_waker);
        }
        let mut d = lock(&self.rx);
        d.reader_closed = true;
        d.queue.clear();
        d.in_flight = 0;
        wake(&mut d.writer_waker);
    }
}

/// Live byte counters of both directions of a simulated link.
///
/// ```
/// use netcore_runtime::transport::{SimConfig, SimLink};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pair = SimLink::pair(SimConfig::default());
/// assert_eq!(pair.stats.a_to_b().sent, 0);
/// # }
/// ```
#[derive(Clone)]
pub struct SimStats {
    ab: Arc<Mutex<Dir>>,
    ba: Arc<Mutex<Dir>>,
}

impl std::fmt::Debug for SimStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimStats")
            .field("a_to_b", &self.a_to_b())
            .field("b_to_a", &self.b_to_a())
            .finish()
    }
}

impl SimStats {
    /// Counters of the direction from end `a` to end `b`.
    ///
    /// ```
    /// # use netcore_runtime::transport::{SimConfig, SimLink};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let s = SimLink::pair(SimConfig::default()).stats;
    /// assert_eq!(s.a_to_b().delivered, 0);
    /// # }
    /// ```
    pub fn a_to_b(&self) -> SimCounters {
        lock(&self.ab).counters
    }

    /// Counters of the direction from end `b` to end `a`.
    ///
    /// ```
    /// # use netcore_runtime::transport::{SimConfig, SimLink};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let s = SimLink::pair(SimConfig::default()).stats;
    /// assert_eq!(s.b_to_a().dropped, 0);
    /// # }
    /// ```
    pub fn b_to_a(&self) -> SimCounters {
        lock(&self.ba).counters
    }

    /// Bytes in flight (written, not yet read) per direction: `(a→b, b→a)`.
    ///
    /// ```
    /// # use netcore_runtime::transport::{SimConfig, SimLink};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let s = SimLink::pair(SimConfig::default()).stats;
    /// assert_eq!(s.in_flight(), (0, 0));
    /// # }
    /// ```
    pub fn in_flight(&self) -> (usize, usize) {
        (lock(&self.ab).in_flight, lock(&self.ba).in_flight)
    }
}

/// Two transports connected by a simulated link, and its counters.
///
/// ```
/// use netcore_runtime::transport::{SimConfig, SimLink, SimPair};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let SimPair { a, b, stats, .. } = SimLink::pair(SimConfig::default());
/// # let _ = (a, b, stats);
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct SimPair {
    /// End `a`.
    pub a: Transport,
    /// End `b`.
    pub b: Transport,
    /// Counters of both directions.
    pub stats: SimStats,
}

/// Constructor of simulated links.
///
/// ```
/// use netcore_runtime::transport::{SimConfig, SimLink};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> std::io::Result<()> {
/// let cfg = SimConfig::default().with_rate(1000).with_latency(Duration::from_millis(50));
/// let mut pair = SimLink::pair(cfg);
/// let start = tokio::time::Instant::now();
/// pair.a.write_all(&[7u8; 100]).await?;
/// let mut buf = [0u8; 100];
/// pair.b.read_exact(&mut buf).await?;
/// // 100 bytes at 1000 B/s take 100 ms, plus 50 ms latency.
/// assert!(start.elapsed() >= Duration::from_millis(150));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SimLink;

impl SimLink {
    /// Creates two transports connected by a link with the given parameters. The transports
    /// must be used inside a tokio runtime with the time driver enabled (they use tokio
    /// timers, so they follow a paused test clock).
    ///
    /// ```
    /// use netcore_runtime::transport::{SimConfig, SimLink, TransportKind};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pair = SimLink::pair(SimConfig::default());
    /// assert_eq!(pair.a.info().kind, TransportKind::Sim);
    /// # }
    /// ```
    pub fn pair(config: SimConfig) -> SimPair {
        let ab = Arc::new(Mutex::new(Dir::new(&config, config.seed)));
        let ba_seed = Rng(config.seed ^ 0x5851_F42D_4C95_7F2D).next();
        let ba = Arc::new(Mutex::new(Dir::new(&config, ba_seed)));
        let hint = config.link_hint();
        let end = |tx: &Arc<Mutex<Dir>>, rx: &Arc<Mutex<Dir>>, me: &str, peer: &str| {
            let io = SimEnd {
                tx: tx.clone(),
                rx: rx.clone(),
                sleep: None,
            };
            let info = TransportInfo::new(TransportKind::Sim)
                .with_local(me)
                .with_peer(peer)
                .with_link_hint(hint);
            Transport::new(io, info)
        };
        SimPair {
            a: end(&ab, &ba, "sim:a", "sim:b"),
            b: end(&ba, &ab, "sim:b", "sim:a"),
            stats: SimStats { ab, ba },
        }
    }
}

/// Forwards bytes between two transports through a simulated link (both directions).
///
/// Build it with [`sim_proxy`], read counters with [`SimProxy::stats`] while it runs, and
/// drive it with [`SimProxy::run`].
///
/// ```
/// use netcore_runtime::transport::{mem_pair, sim_proxy, SimConfig, SimProxy};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let proxy: SimProxy = sim_proxy(mem_pair(64).1, mem_pair(64).0, SimConfig::default());
/// let _task = tokio::spawn(proxy.run());
/// # }
/// ```
#[derive(Debug)]
pub struct SimProxy {
    a: Transport,
    b: Transport,
    pair: SimPair,
}

/// Puts a simulated link between `a` and `b`: bytes read from `a` go through the link's
/// a→b direction and are written to `b`, and the other way round. `netcore link` uses this
/// to put an impaired link between two real programs.
///
/// ```
/// use netcore_runtime::transport::{mem_pair, sim_proxy, SimConfig};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (mut client, proxy_a) = mem_pair(1024);
/// let (proxy_b, mut server) = mem_pair(1024);
/// let proxy = sim_proxy(proxy_a, proxy_b, SimConfig::default());
/// let stats = proxy.stats();
/// let task = tokio::spawn(proxy.run());
/// client.write_all(b"hello").await?;
/// client.shutdown().await?;
/// let mut got = Vec::new();
/// server.read_to_end(&mut got).await?;
/// assert_eq!(got, b"hello");
/// drop(server);
/// task.await??;
/// assert_eq!(stats.a_to_b().delivered, 5);
/// # Ok(()) }
/// ```
pub fn sim_proxy(a: Transport, b: Transport, config: SimConfig) -> SimProxy {
    SimProxy {
        a,
        b,
        pair: SimLink::pair(config),
    }
}

impl SimProxy {
    /// Counters of the simulated link (a→b is from `a` to `b`).
    ///
    /// ```
    /// # use netcore_runtime::transport::{mem_pair, sim_proxy, SimConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let p = sim_proxy(mem_pair(8).0, mem_pair(8).0, SimConfig::default());
    /// assert_eq!(p.stats().b_to_a().sent, 0);
    /// # }
    /// ```
    pub fn stats(&self) -> SimStats {
        self.pair.stats.clone()
    }

    /// Forwards until both directions reached end-of-stream (each end's shutdown is passed
    /// on), or fails with the first I/O error. Returns the bytes read from `a` and from `b`.
    ///
    /// ```
    /// # use netcore_runtime::transport::{mem_pair, sim_proxy, SimConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let (c, pa) = mem_pair(8);
    /// let (pb, s) = mem_pair(8);
    /// drop((c, s));
    /// assert_eq!(sim_proxy(pa, pb, SimConfig::default()).run().await?, (0, 0));
    /// # Ok(()) }
    /// ```
    pub async fn run(self) -> io::Result<(u64, u64)> {
        let SimProxy { mut a, mut b, pair } = self;
        let (mut x, mut y) = (pair.a, pair.b);
        let left = tokio::io::copy_bidirectional(&mut a, &mut x);
        let right = tokio::io::copy_bidirectional(&mut y, &mut b);
        let ((from_a, _), (_, from_b)) = tokio::try_join!(left, right)?;
        Ok((from_a, from_b))
    }
}
