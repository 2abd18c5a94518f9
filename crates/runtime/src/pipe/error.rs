//! Errors of the runtime: one enum for everything a pipe operation can end with.

use netcore_core::{ConnectionError, MessageError, StartError};
use std::io;

use crate::transport::TransportError;

/// Why a pipe operation failed. Kept apart: the connection ended, one message failed,
/// the local call was invalid, a deadline passed, or local I/O (files) failed.
///
/// ```
/// use netcore_runtime::PipeError;
/// let e = PipeError::TimedOut;
/// assert!(e.to_string().contains("deadline"));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PipeError {
    /// The connection is closed; `None` after a graceful close.
    #[error("connection closed{}", match .0 { Some(e) => format!(": {e}"), None => String::new() })]
    Closed(Option<ConnectionError>),
    /// This message failed; the connection carries on.
    #[error("{0}")]
    Message(MessageError),
    /// The message could not be started.
    #[error("cannot start message: {0}")]
    Start(StartError),
    /// A deadline passed before the operation completed.
    #[error("deadline passed before the operation completed")]
    TimedOut,
    /// A body was larger than the limit it was collected with.
    #[error("body exceeds the {limit}-byte limit; raise the limit or stream it (IncomingBody::chunk / spill to a file)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Opening the transport failed.
    #[error("{0}")]
    Transport(std::sync::Arc<TransportError>),
    /// Local I/O (reading a body source, writing a file) failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The error.
        #[source]
        source: std::sync::Arc<io::Error>,
    },
}

impl PipeError {
    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> PipeError {
        PipeError::Io {
            action: action.into(),
            source: std::sync::Arc::new(source),
        }
    }
}

impl From<TransportError> for PipeError {
    fn from(e: TransportError) -> Self {
        PipeError::Transport(std::sync::Arc::new(e))
    }
}

impl From<PipeError> for io::Error {
    fn from(e: PipeError) -> io::Error {
        let kind = match &e {
            PipeError::TimedOut => io::ErrorKind::TimedOut,
            PipeError::Closed(_) => io::ErrorKind::ConnectionAborted,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
