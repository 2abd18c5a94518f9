//! Errors of the transport layer.

use std::io;

use super::{AddrParseError, TransportKind};

/// Error opening, accepting or tuning a transport.
///
/// Every message says what failed and, where possible, what to do about it.
///
/// ```
/// use netcore_runtime::transport::{TransportError, TransportKind};
/// let e = TransportError::Unsupported { what: "TCP_NOTSENT_LOWAT", kind: TransportKind::Mem };
/// assert!(e.to_string().contains("TCP_NOTSENT_LOWAT"));
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The address text could not be parsed.
    #[error(transparent)]
    Addr(#[from] AddrParseError),

    /// An I/O operation failed; `action` says which (e.g. "connect to tcp://1.2.3.4:5").
    #[error("{action}: {source}{}", hint_for(.source))]
    Io {
        /// What was being done.
        action: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Opening or configuring a serial port failed.
    #[error("serial port {path}: {message} (check the device exists, you may access it — e.g. membership of the `dialout` group — and no other program holds it open)")]
    Serial {
        /// Device path.
        path: String,
        /// What the serial library reported.
        message: String,
    },

    /// TLS configuration or handshake failed.
    #[error("tls: {0}")]
    Tls(String),

    /// The operation does not apply to this kind of transport.
    #[error("{what} is not supported on {kind} transports (it needs a TCP socket on Linux)")]
    Unsupported {
        /// The operation.
        what: &'static str,
        /// The transport kind it was tried on.
        kind: TransportKind,
    },

    /// The address needs a cargo feature this build was compiled without.
    #[error("{scheme}:// addresses need netcore-runtime built with the `{feature}` cargo feature; rebuild with `--features {feature}`")]
    FeatureDisabled {
        /// Address scheme.
        scheme: &'static str,
        /// Missing cargo feature.
        feature: &'static str,
    },

    /// No in-process listener (`mem://` or `sim://`) has this name.
    #[error("no in-process listener named {name:?}; call listen(\"{scheme}://{name}\") first, in the same process")]
    NoSuchListener {
        /// Scheme (`mem` or `sim`).
        scheme: &'static str,
        /// Name that was looked up.
        name: String,
    },

    /// An in-process listener of this name already exists.
    #[error("an in-process listener named {name:?} already exists; drop it or pick another name")]
    NameInUse {
        /// Name that was taken.
        name: String,
    },

    /// A single-connection listener (`serial://`, `stdio:`) already handed out its transport,
    /// or a listener was closed.
    #[error(
        "listener for {addr} has no more connections: serial and stdio listeners yield exactly one"
    )]
    ListenerExhausted {
        /// Address of the listener.
        addr: String,
    },
}

fn hint_for(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => " (is a server listening at that address?)",
        io::ErrorKind::AddrInUse => {
            " (something else is bound there: another server, or a file that is not a socket; \
             pick another port or path)"
        }
        io::ErrorKind::PermissionDenied => " (check file permissions or use a port above 1024)",
        io::ErrorKind::NotFound => " (check that the path exists)",
        io::ErrorKind::TimedOut => " (the peer did not answer in time; check host and firewall)",
        _ => "",
    }
}

impl TransportError {
    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> Self {
        TransportError::Io {
            action: action.into(),
            source,
        }
    }
}

impl From<TransportError> for io::Error {
    /// Converts to an [`io::Error`], keeping the I/O kind where there is one.
    fn from(e: TransportError) -> Self {
        let kind = match &e {
            TransportError::Io { source, .. } => source.kind(),
            TransportError::Addr(_) => io::ErrorKind::InvalidInput,
            TransportError::Unsupported { .. } | TransportError::FeatureDisabled { .. } => {
                io::ErrorKind::Unsupported
            }
            TransportError::NoSuchListener { .. } => io::ErrorKind::ConnectionRefused,
            TransportError::NameInUse { .. } => io::ErrorKind::AddrInUse,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
