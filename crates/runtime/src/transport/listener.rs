//! `connect` and `listen` for text addresses.

use super::mem::{self, InProcListener};
use super::tcp::{self, TcpOptions};
use super::unix::UnixServer;
use super::{
    connect_tcp, connect_unix, mem_pair, open_serial, stdio, MemAddr, SimAddr, SimLink, TcpAddr,
    Transport, TransportAddr, TransportError, TransportKind, UnixAddr,
};

/// Opens a transport to `addr`.
///
/// * `tcp`, `tls`, `unix`: connects to a listening server.
/// * `serial`: opens the port; `stdio`: takes stdin/stdout.
/// * `mem://NAME`, `sim://NAME`: connects to an in-process [`listen`]er of that name; for
///   `sim` the connection runs over a simulated link with the parameters of `addr`.
///
/// ```
/// use netcore_runtime::transport::{connect, listen, TransportAddr};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let addr: TransportAddr = "mem://doc-connect".parse()?;
/// let mut l = listen(&addr).await?;
/// let _client = connect(&addr).await?;
/// let _server = l.accept().await?;
/// # Ok(()) }
/// ```
pub async fn connect(addr: &TransportAddr) -> Result<Transport, TransportError> {
    match addr {
        TransportAddr::Tcp(a) => connect_tcp(a).await,
        TransportAddr::Unix(a) => connect_unix(a).await,
        TransportAddr::Serial(c) => open_serial(c),
        TransportAddr::Stdio => Ok(stdio()),
        TransportAddr::Mem(m) => {
            let (client, server) = mem_pair(m.buffer);
            mem::deliver("mem", &m.name, server).await?;
            Ok(client)
        }
        TransportAddr::Sim(s) => {
            let pair = SimLink::pair(s.config.clone());
            mem::deliver("sim", &s.name, pair.b).await?;
            Ok(pair.a)
        }
        #[cfg(feature = "tls")]
        TransportAddr::Tls(t) => super::tls::connect_addr(t).await,
        #[cfg(not(feature = "tls"))]
        TransportAddr::Tls(_) => Err(TransportError::FeatureDisabled {
            scheme: "tls",
            feature: "tls",
        }),
    }
}

/// Starts accepting transports at `addr`; see [`Listener`].
///
/// `tcp://HOST:0` binds an OS-chosen port ([`Listener::local_addr`] tells which). `serial`
/// and `stdio` open the device now and yield exactly one transport.
///
/// ```
/// use netcore_runtime::transport::{listen, TransportAddr};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let l = listen(&"tcp://127.0.0.1:0".parse()?).await?;
/// let TransportAddr::Tcp(bound) = l.local_addr().unwrap() else { unreachable!() };
/// assert_ne!(bound.port, 0);
/// # Ok(()) }
/// ```
pub async fn listen(addr: &TransportAddr) -> Result<Listener, TransportError> {
    let inner = match addr {
        TransportAddr::Tcp(a) => {
            let l = tokio::net::TcpListener::bind(a.host_port())
                .await
                .map_err(|e| TransportError::io(format!("listen on {addr}"), e))?;
            Inner::Tcp(l, a.options)
        }
        TransportAddr::Unix(a) => Inner::Unix(UnixServer::bind(&a.path)?),
        TransportAddr::Serial(c) => Inner::Once(Some(open_serial(c)?)),
        TransportAddr::Stdio => Inner::Once(Some(stdio())),
        TransportAddr::Mem(m) => Inner::InProc(InProcListener::bind("mem", &m.name)?),
        TransportAddr::Sim(s) => Inner::InProc(InProcListener::bind("sim", &s.name)?),
        #[cfg(feature = "tls")]
        TransportAddr::Tls(t) => Inner::Tls(super::tls::TlsListener::bind_addr(t).await?),
        #[cfg(not(feature = "tls"))]
        TransportAddr::Tls(_) => {
            return Err(TransportError::FeatureDisabled {
                scheme: "tls",
                feature: "tls",
            })
        }
    };
    Ok(Listener {
        addr: addr.clone(),
        inner,
    })
}

enum Inner {
    Tcp(tokio::net::TcpListener, TcpOptions),
    Unix(UnixServer),
    #[cfg(feature = "tls")]
    Tls(super::tls::TlsListener),
    Once(Option<Transport>),
    InProc(InProcListener),
}

/// Accepts transports for one address (from [`listen`]).
///
/// Dropping a Unix listener removes its socket file; dropping a `mem`/`sim` listener frees
/// its name.
///
/// ```
/// use netcore_runtime::transport::{listen, TransportAddr};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let l = listen(&"mem://doc-listener".parse()?).await?;
/// assert_eq!(l.addr().to_string(), "mem://doc-listener");
/// # Ok(()) }
/// ```
pub struct Listener {
    addr: TransportAddr,
    inner: Inner,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Waits for the next transport.
    ///
    /// Serial and stdio listeners return their one transport, then
    /// [`TransportError::ListenerExhausted`].
    ///
    /// ```
    /// use netcore_runtime::transport::{connect, listen, TransportAddr};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let addr: TransportAddr = "sim://doc-accept?rate=1000".parse()?;
    /// let mut l = listen(&addr).await?;
    /// let _c = connect(&addr).await?;
    /// let s = l.accept().await?;
    /// assert_eq!(s.info().link_hint.unwrap().rate_bytes_per_sec, Some(1000));
    /// # Ok(()) }
    /// ```
    pub async fn accept(&mut self) -> Result<Transport, TransportError> {
        match &mut self.inner {
            Inner::Tcp(l, opts) => loop {
                let (stream, peer) = l
                    .accept()
                    .await
                    .map_err(|e| TransportError::io(format!("accept on {}", self.addr), e))?;
                // A client that vanished before its socket could be set up is skipped.
                match tcp::wrap_stream(stream, opts, TransportKind::Tcp) {
                    Ok(t) => return Ok(t),
                    Err(e) => tracing::debug!(%peer, error = %e, "dropping TCP client"),
                }
            },
            Inner::Unix(u) => u.accept().await,
            #[cfg(feature = "tls")]
            Inner::Tls(t) => t.accept().await,
            Inner::Once(t) => t.take().ok_or_else(|| TransportError::ListenerExhausted {
                addr: self.addr.to_string(),
            }),
            Inner::InProc(l) => l.accept().await,
        }
    }

    /// The address this listener was created with.
    ///
    /// ```
    /// use netcore_runtime::transport::{listen, TransportAddr};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let l = listen(&"tcp://127.0.0.1:0".parse()?).await?;
    /// assert_eq!(l.addr().to_string(), "tcp://127.0.0.1:0");
    /// # Ok(()) }
    /// ```
    pub fn addr(&self) -> &TransportAddr {
        &self.addr
    }

    /// The address clients can connect to: for TCP and TLS the actually bound port, for the
    /// others the address given. `None` for serial and stdio, which cannot be connected to.
    ///
    /// ```
    /// use netcore_runtime::transport::{listen, TransportAddr};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let l = listen(&"mem://doc-local".parse()?).await?;
    /// assert_eq!(l.local_addr().unwrap().to_string(), "mem://doc-local");
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> Option<TransportAddr> {
        let bound = |l: &tokio::net::TcpListener, a: &TcpAddr| {
            let sa = l.local_addr().ok()?;
            let mut t = TcpAddr::new(sa.ip().to_string(), sa.port());
            t.options = a.options;
            Some(t)
        };
        match (&self.inner, &self.addr) {
            (Inner::Tcp(l, _), TransportAddr::Tcp(a)) => bound(l, a).map(TransportAddr::Tcp),
            #[cfg(feature = "tls")]
            (Inner::Tls(l), TransportAddr::Tls(a)) => {
                let mut a = a.clone();
                a.tcp = bound(l.tcp_listener(), &a.tcp)?;
                Some(TransportAddr::Tls(a))
            }
            (Inner::Unix(u), _) => Some(TransportAddr::Unix(UnixAddr::new(u.path()))),
            (Inner::Once(_), _) => None,
            (_, TransportAddr::Mem(m)) => Some(TransportAddr::Mem(MemAddr {
                name: m.name.clone(),
                buffer: m.buffer,
            })),
            (_, TransportAddr::Sim(s)) => Some(TransportAddr::Sim(SimAddr::new(
                s.name.clone(),
                s.config.clone(),
            ))),
            _ => Some(self.addr.clone()),
        }
    }
}
