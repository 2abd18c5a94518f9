//! Unix domain stream sockets.

use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use super::{LinkHint, Transport, TransportError, TransportInfo, TransportKind, UnixAddr};

/// Connects to the Unix socket at `addr.path`.
///
/// ```
/// use netcore_runtime::transport::{connect_unix, UnixAddr};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("u.sock");
/// let _l = tokio::net::UnixListener::bind(&path)?;
/// let t = connect_unix(&UnixAddr::new(&path)).await?;
/// assert_eq!(t.info().peer.as_deref(), Some(path.to_str().unwrap()));
/// # Ok(()) }
/// ```
pub async fn connect_unix(addr: &UnixAddr) -> Result<Transport, TransportError> {
    let stream = UnixStream::connect(&addr.path)
        .await
        .map_err(|e| TransportError::io(format!("connect to unix://{}", addr.path.display()), e))?;
    let info = TransportInfo::new(TransportKind::Unix)
        .with_peer(addr.path.to_string_lossy())
        .with_link_hint(LinkHint::reliable());
    Ok(Transport::new(stream, info))
}

/// A bound Unix listener that removes its socket file when dropped.
pub(crate) struct UnixServer {
    listener: UnixListener,
    path: PathBuf,
}

impl UnixServer {
    /// Binds `path`. A socket file left behind by a process that died (nobody accepts on it)
    /// is replaced; a live one is an `AddrInUse` error.
    pub(crate) fn bind(path: &Path) -> Result<Self, TransportError> {
        let action = || format!("listen on unix://{}", path.display());
        let listener = match UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && is_stale_socket(path) => {
                tracing::debug!(path = %path.display(), "replacing stale unix socket file");
                std::fs::remove_file(path).map_err(|e| TransportError::io(action(), e))?;
                UnixListener::bind(path).map_err(|e| TransportError::io(action(), e))?
            }
            Err(e) => return Err(TransportError::io(action(), e)),
        };
        Ok(UnixServer {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub(crate) async fn accept(&self) -> Result<Transport, TransportError> {
        let (stream, _) = self.listener.accept().await.map_err(|e| {
            TransportError::io(format!("accept on unix://{}", self.path.display()), e)
        })?;
        let info = TransportInfo::new(TransportKind::Unix)
            .with_local(self.path.to_string_lossy())
            .with_link_hint(LinkHint::reliable());
        Ok(Transport::new(stream, info))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// True if `path` is a socket file that refuses connections (its server is gone).
fn is_stale_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    is_socket
        && std::os::unix::net::UnixStream::connect(path)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
}

impl Drop for UnixServer {
    fn drop(&mut self) {
        // Only our own socket file; ignore failure (already removed, or replaced).
        let _ = std::fs::remove_file(&self.path);
    }
}
