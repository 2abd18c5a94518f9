//! The process's stdin/stdout as one transport.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Transport, TransportInfo, TransportKind};

struct Stdio {
    stdin: tokio::io::Stdin,
    stdout: tokio::io::Stdout,
}

impl AsyncRead for Stdio {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stdio {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdout).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_shutdown(cx)
    }
}

/// The process's stdin (read side) and stdout (write side) as a transport.
///
/// Nothing else in the process may print to stdout while it is in use. The link hint is
/// left unset: stdin/stdout is often a pipe to another process (reliable), but can be a
/// terminal or a serial console, so the driver or user chooses the profile.
///
/// ```no_run
/// use netcore_runtime::transport::{stdio, TransportKind};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let t = stdio();
/// assert_eq!(t.info().kind, TransportKind::Stdio);
/// # }
/// ```
pub fn stdio() -> Transport {
    let io = Stdio {
        stdin: tokio::io::stdin(),
        stdout: tokio::io::stdout(),
    };
    let info = TransportInfo::new(TransportKind::Stdio)
        .with_local("stdin/stdout")
        .with_peer("stdio");
    Transport::new(io, info)
}
