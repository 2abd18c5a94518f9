//! # netcore-runtime
//!
//! The tokio runtime of netcore: it drives the sans-IO protocol core
//! ([`netcore_core`]) over real transports.
//!
//! - [`transport`]: byte channels — TCP, TLS, Unix sockets, serial ports, stdio,
//!   in-memory pipes, a simulated lossy link, blocking handles and user functions —
//!   with one text address form (`tcp://127.0.0.1:7000`, `serial:///dev/ttyUSB0?baud=115200`);
//! - [`Pipe`]: one connection — a driver task per connection, concurrent messages with
//!   streamed bodies, request/reply, progress, cancellation;
//! - [`blocking`]: the same for code without async.
//!
//! ## Performance notes
//!
//! Each connection is a driver task; a message crosses a few task hand-offs between
//! your code, the driver and the peer's handler. Inside runtime tasks these stay on one
//! worker thread and cost a few microseconds per round trip. Awaited directly on the
//! thread that called `Runtime::block_on` (e.g. the body of `#[tokio::main]`), every
//! hand-off crosses threads and a loopback round trip takes about three times as long:
//! for latency-sensitive loops, `tokio::spawn` them. Figures: `BENCHMARKS.md`.
//!
//! For streams of small messages (telemetry, events), send them in a
//! [`MessageBatch`] with [`Pipe::send_batch`] and take them with
//! [`Pipe::accept_many`]: one command, one completion and one queue operation per
//! batch instead of per message (about 2× the messages per second of one
//! [`Pipe::send`] each). A connection allocates on its driver's thread what your
//! tasks free, and the reverse; glibc's allocator handles that slowly, and a
//! thread-caching allocator such as mimalloc (`#[global_allocator]`, as the
//! `netcore` binary does) gave ~1.6× on small messages. Building your release
//! binary with `lto = "fat"` and `codegen-units = 1` (as this workspace does) let
//! calls between your code, this crate and `netcore-core` inline: ~1.1× more small
//! messages per second in `netcore bench pipelined`.
//!
//! An urgent message overtakes a bulk transfer within a driver poll (under a
//! millisecond on loopback), unless the operating system deschedules the worker
//! running that poll. On a small machine kept busy by the bulk, kernel threads do:
//! on the two-CPU VM of `BENCHMARKS.md` a memory-monitoring daemon took a worker's
//! CPU for 1–9 ms every half second, which set the p99 of requests made during a
//! 1 GiB transfer: 1.9 ms at normal priority, 0.64 ms under SCHED_FIFO (medians of
//! five and seven measurements). Where that
//! tail matters, run the process under a real-time policy (`chrt --fifo 10 your-app`,
//! needs CAP_SYS_NICE) or keep the runtime's workers on CPUs that such threads avoid.
//!
//! Over a slow TCP path the bytes already below the scheduler set the wait instead.
//! The driver measures the rate at which the socket drains and keeps its write batch
//! and `TCP_NOTSENT_LOWAT` to [`PipeConfig::tcp_queue_target`] (4 ms) of it: through a
//! 1 MB/s bottleneck a 64-byte request during a bulk upload waited 133–140 ms at p99
//! instead of 194–275 ms (p50 57–125 ms instead of 143–261). What is left is mostly
//! the kernel's: it held 25–65 KB of unsent data past that limit, plus what TCP had in
//! flight in the bottleneck's queue. The 20 ms p99 of the benchmarks' 1 MB/s link is
//! the simulated link's, whose rate the driver knows and paces to.
//!
//! ```
//! use netcore_runtime::{Pipe, PipeConfig};
//! use netcore_runtime::transport::mem_pair;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), netcore_runtime::PipeError> {
//! let (a, b) = mem_pair(1 << 16);
//! let (client, server) = (Pipe::new(a, PipeConfig::default()), Pipe::new(b, PipeConfig::default()));
//! client.send("log", "started").await?.finished().await?;
//! let msg = server.accept().await.unwrap();
//! assert_eq!(msg.route(), "log");
//! # Ok(()) }
//! ```

pub mod blocking;
pub mod legacy;
mod pipe;
pub mod transfer;
pub mod transport;

pub use netcore_core as core;
pub use netcore_core::Route;
pub use pipe::{
    AbandonSignal, BatchHandle, Body, Collected, ConnectionId, IncomingBody, IncomingMessage,
    MessageBatch, MessageBuilder, MessageWriter, Pipe, PipeConfig, PipeError, PipeState,
    SendHandle, TimedMessageBuilder,
};
