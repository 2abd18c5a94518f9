//! Byte transports: everything a connection driver can run over.
//!
//! A [`Transport`] is a boxed, owned duplex byte channel (`AsyncRead + AsyncWrite`) plus
//! [`TransportInfo`] describing it (kind, peer, local address, and a [`LinkHint`] that tells
//! the driver which link profile to use and how fast the link is).
//!
//! Transports come from:
//!
//! * text addresses ([`TransportAddr`]) with [`connect`] and [`listen`]: `tcp://`, `tls://`
//!   (feature `tls`), `unix://`, `serial://`, `stdio:`, `mem://` and `sim://`;
//! * any tokio stream: [`Transport::from_stream`];
//! * blocking `Read`/`Write` handles or a pair of user functions (the seed's
//!   `Pipe(recv_func, send_func)`): [`from_blocking`], [`from_fns`];
//! * an in-memory pair: [`mem_pair`];
//! * a simulated link with rate, latency and byte errors: [`SimLink::pair`], [`sim_proxy`].
//!
//! ```
//! use netcore_runtime::transport::{connect, listen, TransportAddr};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let addr: TransportAddr = "tcp://127.0.0.1:0".parse()?;
//! let mut listener = listen(&addr).await?;
//! let bound = listener.local_addr().expect("tcp listeners know their address");
//! let client = tokio::spawn(async move {
//!     let mut t = connect(&bound).await?;
//!     t.write_all(b"ping").await?;
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//! });
//! let mut server_side = listener.accept().await?;
//! let mut buf = [0u8; 4];
//! server_side.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//! client.await?.map_err(|e| e.to_string())?;
//! # Ok(()) }
//! ```

mod addr;
mod blocking;
mod error;
mod listener;
mod mem;
mod serial;
mod sim;
mod stdio;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
mod unix;

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use addr::{
    AddrParseError, DataBits, FlowControl, MemAddr, Parity, SerialConfig, SimAddr, StopBits,
    TcpAddr, TlsAddr, TransportAddr, UnixAddr,
};
pub use blocking::{adapter_threads_alive, from_blocking, from_fns, BlockingOptions};
pub use error::TransportError;
pub use listener::{connect, listen, Listener};
pub use mem::mem_pair;
pub use serial::open_serial;
pub use sim::{sim_proxy, SimConfig, SimCounters, SimLink, SimPair, SimProxy, SimStats};
pub use stdio::stdio;
pub use tcp::{connect_tcp, TcpOptions};
#[cfg(feature = "tls")]
pub use tls::{client_config_from_files, server_config_from_files, tls_connect, TlsListener};
/// The rustls crate used by the `tls` feature (for building custom configurations).
#[cfg(feature = "tls")]
pub use tokio_rustls::rustls;
pub use unix::connect_unix;

/// What kind of channel a [`Transport`] runs over.
///
/// ```
/// use netcore_runtime::transport::{mem_pair, TransportKind};
/// let (a, _b) = mem_pair(1024);
/// assert_eq!(a.info().kind, TransportKind::Mem);
/// assert_eq!(TransportKind::Serial.to_string(), "serial");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// TCP socket.
    Tcp,
    /// TLS over TCP (feature `tls`).
    Tls,
    /// Unix domain stream socket.
    Unix,
    /// Serial port (UART, USB-CDC, pseudo-terminal).
    Serial,
    /// The process's stdin/stdout.
    Stdio,
    /// In-memory duplex pipe.
    Mem,
    /// Simulated link (rate, latency, byte errors).
    Sim,
    /// Blocking `Read`/`Write` handles or user functions run on adapter threads.
    Blocking,
    /// Any other `AsyncRead + AsyncWrite` stream given by the user.
    Stream,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
            TransportKind::Unix => "unix",
            TransportKind::Serial => "serial",
            TransportKind::Stdio => "stdio",
            TransportKind::Mem => "mem",
            TransportKind::Sim => "sim",
            TransportKind::Blocking => "blocking",
            TransportKind::Stream => "stream",
        })
    }
}

/// Which link profile the connection driver should use (see DESIGN.md, "Link profiles").
///
/// ```
/// use netcore_runtime::transport::LinkProfile;
/// assert_ne!(LinkProfile::Tcp, LinkProfile::Serial);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkProfile {
    /// Reliable byte stream: no checksum, large frames.
    Tcp,
    /// Lossy byte stream: self-delimiting frames with CRC, small frames.
    Serial,
}

/// What the driver should assume about the link under a transport.
///
/// ```
/// use netcore_runtime::transport::{LinkHint, LinkProfile};
/// let hint = LinkHint::serial_baud(115_200);
/// assert_eq!(hint.profile, LinkProfile::Serial);
/// assert_eq!(hint.rate_bytes_per_sec, Some(11_520));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkHint {
    /// Profile to use.
    pub profile: LinkProfile,
    /// Link rate in bytes per second when known (a serial port's baud / 10).
    pub rate_bytes_per_sec: Option<u64>,
}

impl LinkHint {
    /// Reliable stream of unknown rate (TCP, Unix, TLS, in-memory).
    ///
    /// ```
    /// use netcore_runtime::transport::{LinkHint, LinkProfile};
    /// assert_eq!(LinkHint::reliable().profile, LinkProfile::Tcp);
    /// ```
    pub fn reliable() -> Self {
        LinkHint {
            profile: LinkProfile::Tcp,
            rate_bytes_per_sec: None,
        }
    }

    /// Serial link at `baud` symbols per second with 8N1-style framing (10 bits a byte).
    ///
    /// ```
    /// use netcore_runtime::transport::LinkHint;
    /// assert_eq!(LinkHint::serial_baud(9600).rate_bytes_per_sec, Some(960));
    /// ```
    pub fn serial_baud(baud: u32) -> Self {
        LinkHint {
            profile: LinkProfile::Serial,
            rate_bytes_per_sec: Some(u64::from(baud) / 10),
        }
    }
}

/// Description of a [`Transport`].
///
/// ```
/// use netcore_runtime::transport::{TransportInfo, TransportKind};
/// let info = TransportInfo::new(TransportKind::Stream);
/// assert!(info.peer.is_none() && info.link_hint.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportInfo {
    /// Kind of channel.
    pub kind: TransportKind,
    /// Peer address in text form (e.g. `127.0.0.1:7000`, a socket path, a device path).
    pub peer: Option<String>,
    /// Local address in text form.
    pub local: Option<String>,
    /// Link profile and rate hint for the driver; `None` means "decide yourself".
    pub link_hint: Option<LinkHint>,
}

impl TransportInfo {
    /// Info of the given kind with nothing else known.
    ///
    /// ```
    /// use netcore_runtime::transport::{TransportInfo, TransportKind};
    /// assert_eq!(TransportInfo::new(TransportKind::Tcp).kind, TransportKind::Tcp);
    /// ```
    pub fn new(kind: TransportKind) -> Self {
        TransportInfo {
            kind,
            peer: None,
            local: None,
            link_hint: None,
        }
    }

    /// Sets the peer address text.
    ///
    /// ```
    /// use netcore_runtime::transport::{TransportInfo, TransportKind};
    /// let i = TransportInfo::new(TransportKind::Tcp).with_peer("10.0.0.1:7");
    /// assert_eq!(i.peer.as_deref(), Some("10.0.0.1:7"));
    /// ```
    pub fn with_peer(mut self, peer: impl Into<String>) -> Self {
        self.peer = Some(peer.into());
        self
    }

    /// Sets the local address text.
    ///
    /// ```
    /// use netcore_runtime::transport::{TransportInfo, TransportKind};
    /// let i = TransportInfo::new(TransportKind::Unix).with_local("/tmp/x.sock");
    /// assert_eq!(i.local.as_deref(), Some("/tmp/x.sock"));
    /// ```
    pub fn with_local(mut self, local: impl Into<String>) -> Self {
        self.local = Some(local.into());
        self
    }

    /// Sets the link hint.
    ///
    /// ```
    /// use netcore_runtime::transport::{LinkHint, TransportInfo, TransportKind};
    /// let i = TransportInfo::new(TransportKind::Stream).with_link_hint(LinkHint::reliable());
    /// assert!(i.link_hint.is_some());
    /// ```
    pub fn with_link_hint(mut self, hint: LinkHint) -> Self {
        self.link_hint = Some(hint);
        self
    }
}

/// Object-safe union of the tokio I/O traits a transport needs.
trait Io: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send + ?Sized> Io for T {}

/// An owned duplex byte channel with its description.
///
/// `Transport` implements [`AsyncRead`] and [`AsyncWrite`]; use [`Transport::into_split`] to
/// read and write from different tasks.
///
/// ```
/// use netcore_runtime::transport::Transport;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (x, y) = tokio::io::duplex(64);
/// let (mut a, mut b) = (Transport::from_stream(x), Transport::from_stream(y));
/// a.write_all(b"hi").await?;
/// let mut buf = [0; 2];
/// b.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"hi");
/// # Ok(()) }
/// ```
pub struct Transport {
    io: Pin<Box<dyn Io>>,
    info: TransportInfo,
    tcp: Option<Arc<socket2::Socket>>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Wraps any tokio stream with the given description.
    ///
    /// ```
    /// use netcore_runtime::transport::{Transport, TransportInfo, TransportKind};
    /// let (x, _y) = tokio::io::duplex(64);
    /// let t = Transport::new(x, TransportInfo::new(TransportKind::Mem));
    /// assert_eq!(t.info().kind, TransportKind::Mem);
    /// ```
    pub fn new<T>(io: T, info: TransportInfo) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        Transport {
            io: Box::pin(io),
            info,
            tcp: None,
        }
    }

    /// Wraps any tokio stream as kind [`TransportKind::Stream`] with no hint.
    ///
    /// ```
    /// use netcore_runtime::transport::{Transport, TransportKind};
    /// let (x, _y) = tokio::io::duplex(64);
    /// assert_eq!(Transport::from_stream(x).info().kind, TransportKind::Stream);
    /// ```
    pub fn from_stream<T>(io: T) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        Transport::new(io, TransportInfo::new(TransportKind::Stream))
    }

    /// Keeps a handle on the TCP socket under this transport for tuning it later.
    pub(crate) fn with_tcp_socket(mut self, socket: Option<socket2::Socket>) -> Self {
        self.tcp = socket.map(Arc::new);
        self
    }

    /// The description of this transport.
    ///
    /// ```
    /// use netcore_runtime::transport::{mem_pair, LinkProfile};
    /// let (a, _b) = mem_pair(64);
    /// assert_eq!(a.info().link_hint.map(|h| h.profile), Some(LinkProfile::Tcp));
    /// ```
    pub fn info(&self) -> &TransportInfo {
        &self.info
    }

    /// Mutable access to the description (e.g. to override the link hint).
    ///
    /// ```
    /// use netcore_runtime::transport::{mem_pair, LinkHint};
    /// let (mut a, _b) = mem_pair(64);
    /// a.info_mut().link_hint = Some(LinkHint::serial_baud(115_200));
    /// ```
    pub fn info_mut(&mut self) -> &mut TransportInfo {
        &mut self.info
    }

    /// Whether this transport runs over a TCP socket whose options can be tuned
    /// ([`Transport::set_tcp_notsent_lowat`]). True for `tcp` and `tls` transports.
    ///
    /// ```
    /// use netcore_runtime::transport::mem_pair;
    /// assert!(!mem_pair(64).0.is_tcp());
    /// ```
    pub fn is_tcp(&self) -> bool {
        self.tcp.is_some()
    }

    /// Limits the bytes the kernel keeps *queued but not yet sent* on the TCP socket under
    /// this transport (Linux `TCP_NOTSENT_LOWAT`).
    ///
    /// With the limit set, the socket reports itself writable only while fewer than `bytes`
    /// unsent bytes are queued, so whatever the driver hands to the OS stays close to the
    /// link's bandwidth-delay product and a small urgent message written now is not stuck
    /// behind megabytes of bulk data already in the socket buffer (latency under load).
    /// A good value is the estimated bandwidth-delay product, with a floor of about 16 KiB.
    ///
    /// Fails with [`TransportError::Unsupported`] on non-TCP transports and non-Linux systems.
    ///
    /// ```
    /// use netcore_runtime::transport::{connect, listen, TransportAddr};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut l = listen(&"tcp://127.0.0.1:0".parse()?).await?;
    /// let t = connect(&l.local_addr().unwrap()).await?;
    /// t.set_tcp_notsent_lowat(32 * 1024)?;
    /// assert_eq!(t.tcp_notsent_lowat()?, 32 * 1024);
    /// # Ok(()) }
    /// ```
    pub fn set_tcp_notsent_lowat(&self, bytes: u32) -> Result<(), TransportError> {
        let sock = self.tcp_socket("TCP_NOTSENT_LOWAT")?;
        tcp::set_notsent_lowat(sock, bytes)
    }

    /// Reads back the `TCP_NOTSENT_LOWAT` value (see [`Transport::set_tcp_notsent_lowat`]).
    ///
    /// ```
    /// use netcore_runtime::transport::mem_pair;
    /// assert!(mem_pair(8).0.tcp_notsent_lowat().is_err());
    /// ```
    pub fn tcp_notsent_lowat(&self) -> Result<u32, TransportError> {
        let sock = self.tcp_socket("TCP_NOTSENT_LOWAT")?;
        tcp::notsent_lowat(sock)
    }

    /// Holds back a partly filled TCP segment until more data fills it or the cork is
    /// removed (Linux `TCP_CORK`), even with `TCP_NODELAY` set. Removing the cork
    /// sends what is held at once.
    ///
    /// A sender with more bytes coming right behind a write corks the socket, so that
    /// the tail of each write is not sent as a small segment of its own (each one is a
    /// trip through both ends' TCP stacks and a wake-up of the receiver; on loopback,
    /// where a segment holds up to 64 KiB, that doubled the segments of a bulk
    /// transfer). The [`Pipe`](crate::Pipe) driver does this by itself.
    ///
    /// Fails with [`TransportError::Unsupported`] on non-TCP transports and non-Linux
    /// systems.
    ///
    /// ```
    /// use netcore_runtime::transport::{connect, listen, TransportAddr};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut l = listen(&"tcp://127.0.0.1:0".parse()?).await?;
    /// let t = connect(&l.local_addr().unwrap()).await?;
    /// t.set_tcp_cork(true)?;
    /// assert!(t.tcp_cork()?);
    /// t.set_tcp_cork(false)?;
    /// # Ok(()) }
    /// ```
    pub fn set_tcp_cork(&self, on: bool) -> Result<(), TransportError> {
        let sock = self.tcp_socket("TCP_CORK")?;
        tcp::set_cork(sock, on)
    }

    /// Reads back `TCP_CORK` (see [`Transport::set_tcp_cork`]).
    ///
    /// ```
    /// use netcore_runtime::transport::mem_pair;
    /// assert!(mem_pair(8).0.tcp_cork().is_err());
    /// ```
    pub fn tcp_cork(&self) -> Result<bool, TransportError> {
        let sock = self.tcp_socket("TCP_CORK")?;
        tcp::cork(sock)
    }

    fn tcp_socket(&self, what: &'static str) -> Result<&socket2::Socket, TransportError> {
        self.tcp.as_deref().ok_or(TransportError::Unsupported {
            what,
            kind: self.info.kind,
        })
    }

    /// Splits into independently owned read and write halves.
    ///
    /// ```
    /// use netcore_runtime::transport::mem_pair;
    /// let (a, _b) = mem_pair(64);
    /// let (_reader, _writer) = a.into_split();
    /// ```
    pub fn into_split(
        self,
    ) -> (
        tokio::io::ReadHalf<Transport>,
        tokio::io::WriteHalf<Transport>,
    ) {
        tokio::io::split(self)
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
