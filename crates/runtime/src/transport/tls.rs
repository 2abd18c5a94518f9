//! TLS over TCP with rustls (cargo feature `tls`, ring crypto provider).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::tcp::{connect_stream, prepare_stream};
use super::{TcpAddr, TcpOptions, TlsAddr, Transport, TransportError, TransportKind};

/// How long an accepted connection may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; further clients wait in the kernel's accept queue.
const MAX_PENDING_HANDSHAKES: usize = 64;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            TransportError::Tls(format!(
                "cannot read PEM certificates from {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TransportError::Tls(format!(
            "{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TransportError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        TransportError::Tls(format!(
            "cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1) from {}: {e}",
            path.display()
        ))
    })
}

fn roots(ca: &Path) -> Result<RootCertStore, TransportError> {
    let mut store = RootCertStore::empty();
    for cert in load_certs(ca)? {
        store.add(cert).map_err(|e| {
            TransportError::Tls(format!("bad CA certificate in {}: {e}", ca.display()))
        })?;
    }
    Ok(store)
}

/// Builds a client configuration trusting the CA certificates in the PEM file `ca`, with an
/// optional client certificate chain and key (PEM files) for mutual TLS.
///
/// ```no_run
/// use netcore_runtime::transport::client_config_from_files;
/// use std::path::Path;
/// let cfg = client_config_from_files(Path::new("ca.pem"), None)?;
/// # Ok::<(), netcore_runtime::transport::TransportError>(())
/// ```
pub fn client_config_from_files(
    ca: &Path,
    client_cert_and_key: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TransportError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .with_root_certificates(roots(ca)?);
    let config = match client_cert_and_key {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| TransportError::Tls(format!("client certificate/key: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Builds a server configuration from a PEM certificate chain and key; with `client_ca`,
/// clients must present a certificate signed by one of its CAs.
///
/// ```no_run
/// use netcore_runtime::transport::server_config_from_files;
/// use std::path::Path;
/// let cfg = server_config_from_files(Path::new("cert.pem"), Path::new("key.pem"), None)?;
/// # Ok::<(), netcore_runtime::transport::TransportError>(())
/// ```
pub fn server_config_from_files(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TransportError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(ca)?),
                provider(),
            )
            .build()
            .map_err(|e| TransportError::Tls(format!("client CA {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| TransportError::Tls(format!("server certificate/key: {e}")))?;
    Ok(Arc::new(config))
}

/// Connects over TCP to `addr`, then runs the TLS handshake verifying the server as
/// `server_name`.
///
/// ```no_run
/// use netcore_runtime::transport::{client_config_from_files, tls_connect, TcpAddr};
/// use std::path::Path;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cfg = client_config_from_files(Path::new("ca.pem"), None)?;
/// let t = tls_connect(&TcpAddr::new("localhost", 7443), cfg, "localhost").await?;
/// # Ok(()) }
/// ```
pub async fn tls_connect(
    addr: &TcpAddr,
    config: Arc<ClientConfig>,
    server_name: &str,
) -> Result<Transport, TransportError> {
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| {
        TransportError::Tls(format!(
            "{server_name:?} is not a valid server name ({e}); set server_name=NAME"
        ))
    })?;
    let stream = connect_stream(addr).await?;
    let (mut info, handle) = prepare_stream(&stream, &addr.options)?;
    info.kind = TransportKind::Tls;
    let tls = TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| TransportError::io(format!("TLS handshake with {}", addr.host_port()), e))?;
    Ok(Transport::new(tls, info).with_tcp_socket(handle))
}

pub(crate) async fn connect_addr(addr: &TlsAddr) -> Result<Transport, TransportError> {
    let ca = addr.ca.as_deref().ok_or_else(|| {
        TransportError::Tls(
            "connecting needs the CA file to trust: add ?ca=/path/ca.pem to the tls:// address"
                .into(),
        )
    })?;
    let client = match (&addr.cert, &addr.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        (None, None) => None,
        _ => {
            return Err(TransportError::Tls(
                "give both cert= and key= for a client certificate, or neither".into(),
            ))
        }
    };
    let config = client_config_from_files(ca, client)?;
    let name = addr.server_name.as_deref().unwrap_or(&addr.tcp.host);
    tls_connect(&addr.tcp, config, name).await
}

/// Accepts TCP connections and runs the server side of the TLS handshake on each.
///
/// Handshakes run concurrently in background tasks (at most 64 at a time, each limited to
/// 10 s), so a slow or silent client never holds up the others; clients that fail the
/// handshake are logged at debug level and skipped. `accept` is cancel-safe.
///
/// ```no_run
/// use netcore_runtime::transport::{server_config_from_files, TcpAddr, TlsListener};
/// use std::path::Path;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cfg = server_config_from_files(Path::new("cert.pem"), Path::new("key.pem"), None)?;
/// let mut l = TlsListener::bind(&TcpAddr::new("127.0.0.1", 7443), cfg).await?;
/// let t = l.accept().await?;
/// # Ok(()) }
/// ```
pub struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
    options: TcpOptions,
    handshakes: tokio::task::JoinSet<Option<Transport>>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Binds `addr` (port 0 picks a free port) with the given server configuration.
    ///
    /// ```no_run
    /// # use netcore_runtime::transport::{server_config_from_files, TcpAddr, TlsListener};
    /// # use std::path::Path;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cfg = server_config_from_files(Path::new("c.pem"), Path::new("k.pem"), None)?;
    /// let l = TlsListener::bind(&TcpAddr::new("127.0.0.1", 0), cfg).await?;
    /// println!("{:?}", l.local_addr()?);
    /// # Ok(()) }
    /// ```
    pub async fn bind(addr: &TcpAddr, config: Arc<ServerConfig>) -> Result<Self, TransportError> {
        let listener = tokio::net::TcpListener::bind(addr.host_port())
            .await
            .map_err(|e| TransportError::io(format!("listen on tls://{}", addr.host_port()), e))?;
        Ok(TlsListener {
            listener,
            acceptor: TlsAcceptor::from(config),
            options: addr.options,
            handshakes: tokio::task::JoinSet::new(),
        })
    }

    pub(crate) async fn bind_addr(addr: &TlsAddr) -> Result<Self, TransportError> {
        let (Some(cert), Some(key)) = (&addr.cert, &addr.key) else {
            return Err(TransportError::Tls(
                "listening needs cert= and key= (PEM files) in the tls:// address, e.g. \
                 tls://0.0.0.0:7443?cert=/etc/netcore/cert.pem&key=/etc/netcore/key.pem"
                    .into(),
            ));
        };
        let config = server_config_from_files(cert, key, addr.ca.as_deref())?;
        Self::bind(&addr.tcp, config).await
    }

    /// The bound socket address.
    ///
    /// ```no_run
    /// # use netcore_runtime::transport::TlsListener;
    /// # fn f(l: &TlsListener) -> std::io::Result<()> {
    /// let port = l.local_addr()?.port();
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    pub(crate) fn tcp_listener(&self) -> &tokio::net::TcpListener {
        &self.listener
    }

    /// Waits for the next client that completes the handshake.
    ///
    /// ```no_run
    /// # use netcore_runtime::transport::TlsListener;
    /// # async fn f(mut l: TlsListener) -> Result<(), netcore_runtime::transport::TransportError> {
    /// let t = l.accept().await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept(&mut self) -> Result<Transport, TransportError> {
        loop {
            let room = self.handshakes.len() < MAX_PENDING_HANDSHAKES;
            tokio::select! {
                done = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Some(Ok(Some(t))) = done {
                        return Ok(t);
                    }
                }
                accepted = self.listener.accept(), if room => {
                    let (stream, peer) =
                        accepted.map_err(|e| TransportError::io("accept TLS client", e))?;
                    let (mut info, handle) = match prepare_stream(&stream, &self.options) {
                        Ok(prepared) => prepared,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "dropping TLS client");
                            continue;
                        }
                    };
                    info.kind = TransportKind::Tls;
                    let acceptor = self.acceptor.clone();
                    self.handshakes.spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls)) => Some(Transport::new(tls, info).with_tcp_socket(handle)),
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                None
                            }
                        }
                    });
                }
            }
        }
    }
}
