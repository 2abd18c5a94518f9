//! What `netcore serve` and its clients share: route names, header keys, and remote
//! errors in the app layer's wire form (`netcore-error: <code>` header, message as
//! body; see docs/APP.md).

use netcore::{codes, ErrorCode, RemoteError};
use netcore_runtime::IncomingMessage;

/// Route: replies with the request body.
pub const ECHO: &str = "echo";
/// Route: reads and drops the body, replies with its length in decimal.
pub const DISCARD: &str = "discard";
/// Route: replies with N pseudo-random bytes (N in the body or the `size` header).
pub const GENERATE: &str = "generate";
/// Route: replies with the server's clock as JSON.
pub const TIME: &str = "time";
/// Route: lists the routes as JSON.
pub const ROUTES: &str = "routes";
/// Route: size and checksum of a file, and the size of a partial upload of it.
pub const FILES_STAT: &str = "files/stat";
/// Route: a file's bytes from the `offset` header on.
pub const FILES_GET: &str = "files/get";
/// Route: appends the body to the partial upload `name` at `offset`.
pub const FILES_PUT: &str = "files/put";

/// Header: file name.
pub const H_NAME: &str = "name";
/// Header: byte offset.
pub const H_OFFSET: &str = "offset";
/// Header: a size in bytes.
pub const H_SIZE: &str = "size";

/// Application error code of `netcore serve`: no such file.
pub const NOT_FOUND: ErrorCode = ErrorCode(0x110);

/// A short name for an error code.
pub fn code_name(code: ErrorCode) -> String {
    match code {
        NOT_FOUND => "NOT_FOUND".to_string(),
        c => codes::name(c).map_or_else(|| format!("{:#x}", c.0), str::to_string),
    }
}

/// Splits a reply into success or the remote error it carries (reading an error body
/// of at most 64 KiB); the error exits with code 5.
pub async fn check_reply(reply: IncomingMessage) -> Result<IncomingMessage, anyhow::Error> {
    let headers = reply.headers();
    if headers.get_str(netcore::ERROR_HEADER).is_none() {
        return Ok(reply);
    }
    let body = reply.collect(64 * 1024).await.unwrap_or_default();
    let e = RemoteError::from_wire(&headers, &body)
        .unwrap_or_else(|| RemoteError::new(codes::INTERNAL, "unreadable error reply"));
    Err(crate::exit::fail(
        crate::exit::ExitKind::Remote,
        anyhow::anyhow!("remote error {}: {}", code_name(e.code), e.message),
    ))
}

/// Reads a numeric header.
pub fn header_u64(headers: &netcore::Headers, key: &str) -> Option<u64> {
    headers.get_str(key).and_then(|v| v.trim().parse().ok())
}

/// A `BAD_REQUEST` remote error.
pub fn bad_request(message: impl Into<String>) -> RemoteError {
    RemoteError::new(codes::BAD_REQUEST, message)
}

/// An `INTERNAL` remote error.
pub fn internal(message: impl Into<String>) -> RemoteError {
    RemoteError::new(codes::INTERNAL, message)
}

/// A `NOT_FOUND` remote error.
pub fn not_found(message: impl Into<String>) -> RemoteError {
    RemoteError::new(NOT_FOUND, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names() {
        assert_eq!(code_name(NOT_FOUND), "NOT_FOUND");
        assert_eq!(code_name(codes::NO_ROUTE), "NO_ROUTE");
        assert_eq!(code_name(ErrorCode(0x999)), "0x999");
    }
}
