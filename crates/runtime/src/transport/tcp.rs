//! TCP transport: connect and accept with `TCP_NODELAY`, optional `TCP_NOTSENT_LOWAT`.

use tokio::net::TcpStream;

use super::{LinkHint, TcpAddr, Transport, TransportError, TransportInfo, TransportKind};

/// TCP socket options applied to every connected or accepted socket.
///
/// * `nodelay` (default `true`): disable Nagle's algorithm; the driver batches frames itself.
/// * `notsent_lowat` (default unset): Linux `TCP_NOTSENT_LOWAT` in bytes. It bounds the data
///   queued in the kernel but not yet sent, so bytes handed to the OS stay near the link's
///   bandwidth-delay product and urgent frames are not stuck behind a bulk backlog. The
///   driver can also change it later with [`Transport::set_tcp_notsent_lowat`].
///
/// ```
/// use netcore_runtime::transport::TcpOptions;
/// let o = TcpOptions::default().with_notsent_lowat(64 * 1024);
/// assert!(o.nodelay);
/// assert_eq!(o.notsent_lowat, Some(65536));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TcpOptions {
    /// Set `TCP_NODELAY`.
    pub nodelay: bool,
    /// Set `TCP_NOTSENT_LOWAT` to this many bytes (Linux only; ignored with a debug log
    /// elsewhere).
    pub notsent_lowat: Option<u32>,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            nodelay: true,
            notsent_lowat: None,
        }
    }
}

impl TcpOptions {
    /// Returns these options with `TCP_NOTSENT_LOWAT` set to `bytes`.
    ///
    /// ```
    /// use netcore_runtime::transport::TcpOptions;
    /// assert_eq!(TcpOptions::default().with_notsent_lowat(1).notsent_lowat, Some(1));
    /// ```
    pub fn with_notsent_lowat(mut self, bytes: u32) -> Self {
        self.notsent_lowat = Some(bytes);
        self
    }

    /// Returns these options with `TCP_NODELAY` set to `on`.
    ///
    /// ```
    /// use netcore_runtime::transport::TcpOptions;
    /// assert!(!TcpOptions::default().with_nodelay(false).nodelay);
    /// ```
    pub fn with_nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }
}

/// Connects to `addr` (trying each resolved address in turn) and applies its options.
///
/// ```
/// use netcore_runtime::transport::{connect_tcp, TcpAddr};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let port = l.local_addr()?.port();
/// let t = connect_tcp(&TcpAddr::new("127.0.0.1", port)).await?;
/// assert!(t.is_tcp());
/// # Ok(()) }
/// ```
pub async fn connect_tcp(addr: &TcpAddr) -> Result<Transport, TransportError> {
    let stream = connect_stream(addr).await?;
    wrap_stream(stream, &addr.options, TransportKind::Tcp)
}

/// Resolves and connects, returning the raw stream (also used by TLS).
pub(crate) async fn connect_stream(addr: &TcpAddr) -> Result<TcpStream, TransportError> {
    let target = addr.host_port();
    let action = || format!("connect to tcp://{target}");
    let addrs = tokio::net::lookup_host(&target)
        .await
        .map_err(|e| TransportError::io(format!("resolve {target}"), e))?;
    let mut last = None;
    for sa in addrs {
        match TcpStream::connect(sa).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(TransportError::io(
        action(),
        last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "host resolved to no address")
        }),
    ))
}

/// Applies options to a connected stream and returns the socket handle kept for tuning.
pub(crate) fn prepare_stream(
    stream: &TcpStream,
    options: &TcpOptions,
) -> Result<(TransportInfo, Option<socket2::Socket>), TransportError> {
    stream
        .set_nodelay(options.nodelay)
        .map_err(|e| TransportError::io("set TCP_NODELAY", e))?;
    let sock = socket2::SockRef::from(stream);
    if let Some(lowat) = options.notsent_lowat {
        set_notsent_lowat(&sock, lowat)?;
    }
    let mut info = TransportInfo::new(TransportKind::Tcp).with_link_hint(LinkHint::reliable());
    if let Ok(p) = stream.peer_addr() {
        info = info.with_peer(p.to_string());
    }
    if let Ok(l) = stream.local_addr() {
        info = info.with_local(l.to_string());
    }
    // A second descriptor on the same socket lets the driver tune it while the stream is
    // owned by the boxed transport; both close together when the transport is dropped.
    let handle = sock.try_clone().ok();
    Ok((info, handle))
}

/// Wraps a connected TCP stream as a transport of the given kind.
pub(crate) fn wrap_stream(
    stream: TcpStream,
    options: &TcpOptions,
    kind: TransportKind,
) -> Result<Transport, TransportError> {
    let (mut info, handle) = prepare_stream(&stream, options)?;
    info.kind = kind;
    Ok(Transport::new(stream, info).with_tcp_socket(handle))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn set_notsent_lowat(sock: &socket2::Socket, bytes: u32) -> Result<(), TransportError> {
    sock.set_tcp_notsent_lowat(bytes)
        .map_err(|e| TransportError::io("set TCP_NOTSENT_LOWAT", e))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn notsent_lowat(sock: &socket2::Socket) -> Result<u32, TransportError> {
    sock.tcp_notsent_lowat()
        .map_err(|e| TransportError::io("read TCP_NOTSENT_LOWAT", e))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn set_cork(sock: &socket2::Socket, on: bool) -> Result<(), TransportError> {
    sock.set_tcp_cork(on)
        .map_err(|e| TransportError::io("set TCP_CORK", e))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn cork(sock: &socket2::Socket) -> Result<bool, TransportError> {
    sock.tcp_cork()
        .map_err(|e| TransportError::io("read TCP_CORK", e))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn set_cork(_: &socket2::Socket, _: bool) -> Result<(), TransportError> {
    Err(TransportError::Unsupported {
        what: "TCP_CORK",
        kind: TransportKind::Tcp,
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn cork(_: &socket2::Socket) -> Result<bool, TransportError> {
    Err(TransportError::Unsupported {
        what: "TCP_CORK",
        kind: TransportKind::Tcp,
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn set_notsent_lowat(_: &socket2::Socket, _: u32) -> Result<(), TransportError> {
    Err(TransportError::Unsupported {
        what: "TCP_NOTSENT_LOWAT",
        kind: TransportKind::Tcp,
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn notsent_lowat(_: &socket2::Socket) -> Result<u32, TransportError> {
    Err(TransportError::Unsupported {
        what: "TCP_NOTSENT_LOWAT",
        kind: TransportKind::Tcp,
    })
}
