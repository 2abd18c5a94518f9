//! Errors of the application layer: [`RemoteError`] (what a handler's failure looks like
//! to the caller, and on the wire), the application error [`codes`], and [`AppError`]
//! (everything a request from this side can end with).
//!
//! # Remote errors on the wire
//!
//! A reply that reports a failure carries the metadata header
//! [`ERROR_HEADER`] (`netcore-error`) whose value is the error code in decimal ASCII,
//! and a UTF-8 body with the human-readable message. A reply without that header is a
//! success. See docs/APP.md.
//!
//! ```
//! use netcore::{codes, RemoteError};
//! let e = RemoteError::new(codes::NO_ROUTE, "no route 'user/lst'");
//! assert_eq!(e.to_string(), "remote error NO_ROUTE (0x100): no route 'user/lst'");
//! ```

use netcore_core::metadata::Headers;
use netcore_core::ErrorCode;
use netcore_runtime::{ConnectionId, PipeError};
use std::time::Duration;

/// A boxed error, as tower middleware returns them.
///
/// ```
/// let e: netcore::BoxError = "boom".into();
/// assert_eq!(netcore::RemoteError::from_box(e).code, netcore::codes::HANDLER_ERROR);
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Metadata header of a reply that reports an error; its value is the decimal code.
///
/// ```
/// assert_eq!(netcore::ERROR_HEADER, "netcore-error");
/// ```
pub const ERROR_HEADER: &str = "netcore-error";

/// Metadata header marking a one-way message: the receiver sends no reply.
///
/// ```
/// assert_eq!(netcore::ONE_WAY_HEADER, "netcore-oneway");
/// ```
pub const ONE_WAY_HEADER: &str = "netcore-oneway";

/// Application error codes (≥ `0x100`, the application range of [`ErrorCode`]).
///
/// ```
/// use netcore::codes;
/// assert!(codes::HANDLER_PANIC.is_application());
/// assert_eq!(codes::name(codes::NO_ROUTE), Some("NO_ROUTE"));
/// ```
pub mod codes {
    use netcore_core::ErrorCode;

    /// No handler for the route and no fallback.
    pub const NO_ROUTE: ErrorCode = ErrorCode(0x100);
    /// The handler returned an error.
    pub const HANDLER_ERROR: ErrorCode = ErrorCode(0x101);
    /// The handler panicked.
    pub const HANDLER_PANIC: ErrorCode = ErrorCode(0x102);
    /// A deadline passed on the serving side (e.g. a tower `Timeout` layer).
    pub const TIMEOUT: ErrorCode = ErrorCode(0x103);
    /// The request could not be decoded (bad UTF-8, bad JSON, body too large, …).
    pub const BAD_REQUEST: ErrorCode = ErrorCode(0x104);
    /// The server refused the request for load (e.g. a concurrency or rate limit).
    pub const OVERLOADED: ErrorCode = ErrorCode(0x105);
    /// The caller is not allowed to use the route.
    pub const UNAUTHORIZED: ErrorCode = ErrorCode(0x106);
    /// The endpoint stopped before the handler finished.
    pub const SHUTTING_DOWN: ErrorCode = ErrorCode(0x107);
    /// The server could not serve the request for an internal reason.
    pub const INTERNAL: ErrorCode = ErrorCode(0x108);

    /// The name of an application code defined here, or of a protocol code.
    ///
    /// ```
    /// use netcore::codes;
    /// assert_eq!(codes::name(codes::TIMEOUT), Some("TIMEOUT"));
    /// assert_eq!(codes::name(netcore_core::ErrorCode(0x9999)), None);
    /// ```
    pub fn name(code: ErrorCode) -> Option<&'static str> {
        Some(match code {
            NO_ROUTE => "NO_ROUTE",
            HANDLER_ERROR => "HANDLER_ERROR",
            HANDLER_PANIC => "HANDLER_PANIC",
            TIMEOUT => "TIMEOUT",
            BAD_REQUEST => "BAD_REQUEST",
            OVERLOADED => "OVERLOADED",
            UNAUTHORIZED => "UNAUTHORIZED",
            SHUTTING_DOWN => "SHUTTING_DOWN",
            INTERNAL => "INTERNAL",
            other => return other.name(),
        })
    }
}

/// A failure reported by the peer's handler (or its middleware): a code and a message.
///
/// Handlers return it (or any error type converting into it) to fail a request; the
/// caller's [`AppError::Remote`] carries it.
///
/// ```
/// use netcore::{codes, RemoteError};
/// let e = RemoteError::new(codes::UNAUTHORIZED, "missing token");
/// assert_eq!(e.code, codes::UNAUTHORIZED);
/// assert_eq!(e.message, "missing token");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("remote error {} ({:#x}): {message}", codes::name(*.code).unwrap_or("application error"), .code.0)]
pub struct RemoteError {
    /// The code (see [`codes`]; any value ≥ `0x100` is allowed).
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
}

impl RemoteError {
    /// An error with a code and message.
    ///
    /// ```
    /// let e = netcore::RemoteError::new(netcore_core::ErrorCode(0x200), "quota");
    /// assert_eq!(e.code.0, 0x200);
    /// ```
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RemoteError {
        RemoteError {
            code,
            message: message.into(),
        }
    }

    /// A [`codes::HANDLER_ERROR`] with `message`.
    ///
    /// ```
    /// assert_eq!(netcore::RemoteError::handler("boom").code, netcore::codes::HANDLER_ERROR);
    /// ```
    pub fn handler(message: impl Into<String>) -> RemoteError {
        RemoteError::new(codes::HANDLER_ERROR, message)
    }

    /// Maps an error coming out of tower middleware to a remote error: tower's
    /// `Elapsed` becomes [`codes::TIMEOUT`], `Overloaded` [`codes::OVERLOADED`], a
    /// `RemoteError` stays itself, anything else is a [`codes::HANDLER_ERROR`].
    ///
    /// ```
    /// let e = netcore::RemoteError::from_box(Box::new(tower::timeout::error::Elapsed::new()));
    /// assert_eq!(e.code, netcore::codes::TIMEOUT);
    /// ```
    pub fn from_box(err: BoxError) -> RemoteError {
        if err.is::<tower::timeout::error::Elapsed>() {
            return RemoteError::new(codes::TIMEOUT, "the handler's deadline passed");
        }
        if err.is::<tower::load_shed::error::Overloaded>() {
            return RemoteError::new(codes::OVERLOADED, "the service is overloaded");
        }
        match err.downcast::<RemoteError>() {
            Ok(e) => *e,
            Err(other) => RemoteError::handler(other.to_string()),
        }
    }

    /// Writes the error header into `headers` (the wire form, with the message as body).
    ///
    /// ```
    /// let mut h = netcore_core::metadata::Headers::new();
    /// netcore::RemoteError::handler("x").write_header(&mut h);
    /// assert_eq!(h.get_str(netcore::ERROR_HEADER), Some("257"));
    /// ```
    pub fn write_header(&self, headers: &mut Headers) {
        headers.set(ERROR_HEADER, self.code.0.to_string());
    }

    /// Reads a remote error from a reply's headers and body; `None` if the reply does
    /// not carry the error header.
    ///
    /// ```
    /// let mut h = netcore_core::metadata::Headers::new();
    /// h.set(netcore::ERROR_HEADER, "260");
    /// let e = netcore::RemoteError::from_wire(&h, b"bad json").unwrap();
    /// assert_eq!(e.code, netcore::codes::BAD_REQUEST);
    /// assert_eq!(e.message, "bad json");
    /// ```
    pub fn from_wire(headers: &Headers, body: &[u8]) -> Option<RemoteError> {
        let raw = headers.get_str(ERROR_HEADER)?;
        let code = raw
            .trim()
            .parse::<u64>()
            .map(ErrorCode)
            .unwrap_or(codes::INTERNAL);
        Some(RemoteError::new(code, String::from_utf8_lossy(body)))
    }
}

impl From<std::convert::Infallible> for RemoteError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

/// Why a request (or send) made from this endpoint failed.
///
/// ```
/// use netcore::{AppError, codes, RemoteError};
/// let e = AppError::Remote(RemoteError::new(codes::NO_ROUTE, "no route 'x'"));
/// assert_eq!(e.remote_code(), Some(codes::NO_ROUTE));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The peer's handler (or its middleware) reported an error.
    #[error(transparent)]
    Remote(RemoteError),
    /// No reply within the deadline; the request was cancelled on the peer.
    #[error("no reply to '{route}' within {after:?}; the request was cancelled on the peer")]
    TimedOut {
        /// The route.
        route: String,
        /// The deadline.
        after: Duration,
    },
    /// The request was cancelled on this side before its reply came.
    #[error("the request to '{route}' was cancelled before its reply came")]
    Cancelled {
        /// The route.
        route: String,
    },
    /// The endpoint has no connection to send on.
    #[error("the endpoint has no connection; add one with Endpoint::connect, add_pipe or listen")]
    NoConnection,
    /// The connection named is not (or no longer) part of the endpoint.
    #[error("{0} is not a connection of this endpoint (closed or never added)")]
    UnknownConnection(ConnectionId),
    /// The endpoint was stopped.
    #[error("the endpoint is stopped")]
    Stopped,
    /// A body could not be encoded or decoded (JSON, UTF-8).
    #[error("could not {action}: {message}")]
    Codec {
        /// What was being done, e.g. "decode the reply as JSON".
        action: &'static str,
        /// Why it failed.
        message: String,
    },
    /// The connection or the message failed below the application layer.
    #[error(transparent)]
    Pipe(#[from] PipeError),
}

impl AppError {
    /// The code of a remote error, `None` for local failures.
    ///
    /// ```
    /// assert_eq!(netcore::AppError::NoConnection.remote_code(), None);
    /// ```
    pub fn remote_code(&self) -> Option<ErrorCode> {
        match self {
            AppError::Remote(e) => Some(e.code),
            _ => None,
        }
    }
}

impl From<RemoteError> for AppError {
    fn from(e: RemoteError) -> Self {
        AppError::Remote(e)
    }
}
