//! Legacy pipes and addresses: [`Pipe::legacy`], [`from_fns`], [`pipe_with_monitor`],
//! the `legacy+` address form ([`WireAddr`]), [`connect`] and [`listen`].

use super::*;

impl Pipe {
    /// Starts a legacy-mode connection (Python Netcore 0.1.3 wire format) over
    /// `transport`. It is ready at once: Python has no handshake.
    ///
    /// ```
    /// use netcore_runtime::legacy::LegacyOptions;
    /// use netcore_runtime::Pipe;
    /// use netcore_runtime::transport::mem_pair;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), netcore_runtime::PipeError> {
    /// let (a, _b) = mem_pair(1 << 16);
    /// let pipe = Pipe::legacy(a, LegacyOptions::default());
    /// pipe.ready().await?;
    /// # Ok(()) }
    /// ```
    pub fn legacy(transport: Transport, options: LegacyOptions) -> Pipe {
        pipe_with_monitor(transport, options).0
    }
}

/// The seed's `Pipe(recv_func, send_func)` in legacy mode: blocking functions (a socket's
/// `recv`/`sendall`, a serial port's read/write) run on adapter threads, and the pipe
/// speaks the Python wire format over them.
///
/// ```
/// use netcore_runtime::legacy::{from_fns, LegacyOptions};
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), netcore_runtime::PipeError> {
/// // Any blocking byte channel; here one end of a socket pair stands in for a Python peer.
/// let (ours, mut theirs) = UnixStream::pair().unwrap();
/// let (mut r, mut w) = (ours.try_clone().unwrap(), ours);
/// let pipe = from_fns(move |buf| r.read(buf), move |data| w.write_all(data), LegacyOptions::default())?;
/// pipe.send("log", "started").await?.finished().await?;
/// let mut head = [0u8; 23];
/// theirs.read_exact(&mut head).unwrap();
/// assert_eq!(&head, b"\x13\0\0\0{\"type\": \"mission\"}");
/// # Ok(()) }
/// ```
pub fn from_fns<R, S>(recv: R, send: S, options: LegacyOptions) -> Result<Pipe, PipeError>
where
    R: FnMut(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
    S: FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
{
    let t = transport::from_fns(recv, send, transport::BlockingOptions::default())?;
    Ok(Pipe::legacy(t, options))
}

/// Starts a legacy-mode connection and returns its [`LegacyMonitor`] too.
pub fn pipe_with_monitor(transport: Transport, options: LegacyOptions) -> (Pipe, LegacyMonitor) {
    let wire = LegacyWire::new(&options);
    let monitor = wire.monitor();
    (Pipe::with_wire(wire, transport, options.pipe), monitor)
}

/// Which wire format a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum WireMode {
    /// The netcore protocol (docs/PROTOCOL.md).
    #[default]
    Native,
    /// Python Netcore 0.1.3 (docs/LEGACY.md).
    Legacy,
}

/// A transport address with its wire mode: `legacy+tcp://127.0.0.1:7000` is legacy mode
/// over TCP, `tcp://127.0.0.1:7000` native mode. Any transport scheme takes the
/// `legacy+` prefix. [`FromStr`] and [`Display`](fmt::Display) round-trip.
///
/// ```
/// use netcore_runtime::legacy::{WireAddr, WireMode};
/// let a: WireAddr = "tcp://127.0.0.1:7000".parse().unwrap();
/// assert_eq!(a.mode, WireMode::Native);
/// let b: WireAddr = "LEGACY+unix:///tmp/x.sock".parse().unwrap();
/// assert_eq!((b.mode, b.to_string().as_str()), (WireMode::Legacy, "legacy+unix:///tmp/x.sock"));
/// assert!("legacy+nope://x".parse::<WireAddr>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct WireAddr {
    /// The wire format.
    pub mode: WireMode,
    /// The transport address.
    pub transport: TransportAddr,
}

/// The address prefix selecting legacy mode.
pub const LEGACY_PREFIX: &str = "legacy+";

impl FromStr for WireAddr {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, AddrParseError> {
        let s = s.trim();
        let lower = s.get(..LEGACY_PREFIX.len()).map(str::to_ascii_lowercase);
        match lower {
            Some(p) if p == LEGACY_PREFIX => Ok(WireAddr {
                mode: WireMode::Legacy,
                transport: s[LEGACY_PREFIX.len()..].parse()?,
            }),
            _ => Ok(WireAddr {
                mode: WireMode::Native,
                transport: s.parse()?,
            }),
        }
    }
}

impl fmt::Display for WireAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mode == WireMode::Legacy {
            f.write_str(LEGACY_PREFIX)?;
        }
        write!(f, "{}", self.transport)
    }
}

/// Connects to an address in either mode (`legacy+tcp://…` or `tcp://…`) and returns a
/// ready [`Pipe`]; `options` apply to legacy mode (native mode uses the transport's
/// defaults, as [`Pipe::connect`]).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), netcore_runtime::PipeError> {
/// use netcore_runtime::legacy::{connect, LegacyOptions};
/// let pipe = connect("legacy+tcp://127.0.0.1:7000", LegacyOptions::default()).await?;
/// let reply = pipe.request("echo", "hello").await?;
/// # Ok(()) }
/// ```
pub async fn connect(addr: &str, options: LegacyOptions) -> Result<Pipe, PipeError> {
    let addr: WireAddr = addr.parse().map_err(TransportError::from)?;
    connect_addr(&addr, options).await
}

/// [`connect`] with a parsed address.
pub async fn connect_addr(addr: &WireAddr, options: LegacyOptions) -> Result<Pipe, PipeError> {
    match addr.mode {
        WireMode::Native => Pipe::connect(&addr.transport).await,
        WireMode::Legacy => {
            let t = transport::connect(&addr.transport).await?;
            let pipe = Pipe::legacy(t, options);
            pipe.ready().await?;
            Ok(pipe)
        }
    }
}

/// Accepts connections in one wire mode (from [`listen`]).
#[derive(Debug)]
pub struct WireListener {
    listener: Listener,
    mode: WireMode,
    options: LegacyOptions,
}

impl WireListener {
    /// Waits for the next connection and starts its [`Pipe`] in this listener's mode.
    pub async fn accept(&mut self) -> Result<Pipe, PipeError> {
        let t = self.listener.accept().await?;
        Ok(match self.mode {
            WireMode::Native => Pipe::with_defaults(t),
            WireMode::Legacy => Pipe::legacy(t, self.options.clone()),
        })
    }

    /// The address clients can connect to (with the `legacy+` prefix in legacy mode).
    pub fn local_addr(&self) -> Option<WireAddr> {
        self.listener.local_addr().map(|transport| WireAddr {
            mode: self.mode,
            transport,
        })
    }

    /// The wire mode of accepted connections.
    pub fn mode(&self) -> WireMode {
        self.mode
    }
}

/// Listens on an address in either mode (`legacy+tcp://127.0.0.1:7000`, `tcp://…`).
///
/// ```
/// use netcore_runtime::legacy::{connect, listen, LegacyOptions, WireMode};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), netcore_runtime::PipeError> {
/// let mut l = listen("legacy+tcp://127.0.0.1:0", LegacyOptions::default()).await?;
/// let addr = l.local_addr().unwrap().to_string();
/// assert!(addr.starts_with("legacy+tcp://127.0.0.1:"));
/// let client = connect(&addr, LegacyOptions::default()).await?;
/// let server = l.accept().await?;
/// client.send("log", "hi").await?.finished().await?;
/// assert_eq!(server.accept().await.unwrap().route(), "log");
/// # Ok(()) }
/// ```
pub async fn listen(addr: &str, options: LegacyOptions) -> Result<WireListener, PipeError> {
    let addr: WireAddr = addr.parse().map_err(TransportError::from)?;
    let listener = transport::listen(&addr.transport).await?;
    Ok(WireListener {
        listener,
        mode: addr.mode,
        options,
    })
}
