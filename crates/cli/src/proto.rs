//! The conventions `netcore serve` and its clients share: route names, header keys and
//! how an error reply looks.
//!
//! An error reply carries the header `error` (a short kind such as `not_found`) and a
//! UTF-8 message as its body; a reply without that header is a success.
//! (The app layer, `netcore::Endpoint`, will bring its own typed remote errors; the CLI
//! keeps this header form on the wire until then.)

use bytes::Bytes;
use netcore_core::metadata::Headers;
use netcore_core::{MessageHead, MessageId};
use netcore_runtime::{Body, IncomingMessage, Pipe, PipeError};
use std::fmt;

/// Route: replies with the request body.
pub const ECHO: &str = "echo";
/// Route: reads and drops the body, replies with its length in decimal.
pub const DISCARD: &str = "discard";
/// Route: replies with N pseudo-random bytes (N in the body or the `size` header).
pub const GENERATE: &str = "generate";
/// Route: replies with the server's clock as JSON.
pub const TIME: &str = "time";
/// Route: lists the built-in and typed routes as JSON.
pub const ROUTES: &str = "routes";
/// Route: lists the served directory as JSON.
pub const FILES_LIST: &str = "files/list";
/// Route: size and checksum of a file, and the size of a partial upload of it.
pub const FILES_STAT: &str = "files/stat";
/// Route: a file's bytes from the `offset` header on.
pub const FILES_GET: &str = "files/get";
/// Route: appends the body to the partial upload `name` at `offset`.
pub const FILES_PUT: &str = "files/put";

/// Header: error kind of an error reply.
pub const H_ERROR: &str = "error";
/// Header: file name.
pub const H_NAME: &str = "name";
/// Header: byte offset.
pub const H_OFFSET: &str = "offset";
/// Header: a size in bytes.
pub const H_SIZE: &str = "size";

/// Error kinds a server puts in the `error` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such route or file.
    NotFound,
    /// The request is malformed.
    BadRequest,
    /// The server failed.
    Internal,
}

impl ErrorKind {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error reply received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// The `error` header.
    pub kind: String,
    /// The body as text.
    pub message: String,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remote error {}: {}", self.kind, self.message)
    }
}

impl std::error::Error for RemoteError {}

/// A server-side handler failure: becomes an error reply.
#[derive(Debug)]
pub struct HandlerError {
    /// Its kind.
    pub kind: ErrorKind,
    /// Its message.
    pub message: String,
}

impl HandlerError {
    /// A `not_found` error.
    pub fn not_found(message: impl Into<String>) -> HandlerError {
        HandlerError {
            kind: ErrorKind::NotFound,
            message: message.into(),
        }
    }
    /// A `bad_request` error.
    pub fn bad_request(message: impl Into<String>) -> HandlerError {
        HandlerError {
            kind: ErrorKind::BadRequest,
            message: message.into(),
        }
    }
    /// An `internal` error.
    pub fn internal(message: impl Into<String>) -> HandlerError {
        HandlerError {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }
}

impl From<PipeError> for HandlerError {
    fn from(e: PipeError) -> Self {
        HandlerError::internal(e.to_string())
    }
}

/// Sends a reply to `to` with `headers` and `body`.
pub async fn reply_with(
    pipe: &Pipe,
    to: MessageId,
    headers: &Headers,
    body: Body,
) -> Result<(), PipeError> {
    let mut head = MessageHead::reply(to);
    if !headers.is_empty() {
        head.metadata = headers.encode();
    }
    pipe.send_head(head, body, None).await?;
    Ok(())
}

/// Sends an error reply to `to`.
pub async fn reply_error(pipe: &Pipe, to: MessageId, err: &HandlerError) -> Result<(), PipeError> {
    let mut h = Headers::new();
    h.insert(H_ERROR, err.kind.as_str());
    reply_with(pipe, to, &h, Body::from(err.message.clone())).await
}

/// Splits a reply into success or the remote error it carries (reading an error body
/// of at most 64 KiB).
pub async fn check_reply(reply: IncomingMessage) -> Result<IncomingMessage, anyhow::Error> {
    let headers = reply.headers();
    let Some(kind) = headers.get_str(H_ERROR).map(str::to_string) else {
        return Ok(reply);
    };
    let body: Bytes = reply.collect(64 * 1024).await.unwrap_or_default();
    Err(crate::exit::fail(
        crate::exit::ExitKind::Remote,
        RemoteError {
            kind,
            message: String::from_utf8_lossy(&body).into_owned(),
        },
    ))
}

/// Reads a numeric header.
pub fn header_u64(headers: &Headers, key: &str) -> Option<u64> {
    headers.get_str(key).and_then(|v| v.trim().parse().ok())
}
