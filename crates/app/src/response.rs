//! [`Response`] and [`IntoResponse`]: what handlers return — bytes, text, JSON, a
//! streamed body, nothing, or an error — and how it becomes a reply on the wire.

use bytes::Bytes;
use netcore_core::metadata::Headers;
use netcore_core::ErrorCode;
use netcore_runtime::Body;
use serde::Serialize;

use crate::error::{codes, RemoteError};

/// A handler's answer: headers plus a body, or an error.
///
/// ```
/// use netcore::{Response, codes};
/// let ok = Response::new("done").with_header("kind", "text");
/// assert!(ok.as_error().is_none());
/// let err = Response::error(codes::UNAUTHORIZED, "no token");
/// assert_eq!(err.as_error().unwrap().code, codes::UNAUTHORIZED);
/// ```
#[derive(Debug)]
pub struct Response {
    pub(crate) headers: Headers,
    pub(crate) body: Body,
    pub(crate) error: Option<RemoteError>,
}

impl Response {
    /// A successful response with `body`.
    ///
    /// ```
    /// assert_eq!(netcore::Response::new("x").body_len(), Some(1));
    /// ```
    pub fn new(body: impl Into<Body>) -> Response {
        Response {
            headers: Headers::new(),
            body: body.into(),
            error: None,
        }
    }

    /// An empty successful response.
    ///
    /// ```
    /// assert_eq!(netcore::Response::empty().body_len(), Some(0));
    /// ```
    pub fn empty() -> Response {
        Response::new(Body::empty())
    }

    /// An error response with `code` and `message`.
    ///
    /// ```
    /// let r = netcore::Response::error(netcore_core::ErrorCode(0x300), "quota exceeded");
    /// assert_eq!(r.as_error().unwrap().message, "quota exceeded");
    /// ```
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::from_error(RemoteError::new(code, message))
    }

    /// An error response from a [`RemoteError`].
    ///
    /// ```
    /// let r = netcore::Response::from_error(netcore::RemoteError::handler("x"));
    /// assert!(r.is_error());
    /// ```
    pub fn from_error(error: RemoteError) -> Response {
        Response {
            headers: Headers::new(),
            body: Body::empty(),
            error: Some(error),
        }
    }

    /// A streamed body (large downloads): `reader` is sent in chunks as the peer takes
    /// them; `len`, when known, is announced.
    ///
    /// ```
    /// let r = netcore::Response::stream(tokio::io::empty(), Some(0));
    /// assert_eq!(r.body_len(), Some(0));
    /// ```
    pub fn stream(
        reader: impl tokio::io::AsyncRead + Send + 'static,
        len: Option<u64>,
    ) -> Response {
        Response::new(Body::stream(reader, len))
    }

    /// Adds a header.
    ///
    /// ```
    /// let r = netcore::Response::new("x").with_header("a", "b");
    /// assert_eq!(r.headers().get_str("a"), Some("b"));
    /// ```
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Response {
        self.headers.set(key, value);
        self
    }

    /// The headers.
    ///
    /// ```
    /// assert!(netcore::Response::empty().headers().is_empty());
    /// ```
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The headers, mutable.
    ///
    /// ```
    /// let mut r = netcore::Response::empty();
    /// r.headers_mut().set("x", "1");
    /// assert_eq!(r.headers().len(), 1);
    /// ```
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The error, if this is an error response.
    ///
    /// ```
    /// assert!(netcore::Response::empty().as_error().is_none());
    /// ```
    pub fn as_error(&self) -> Option<&RemoteError> {
        self.error.as_ref()
    }

    /// Whether this is an error response.
    ///
    /// ```
    /// assert!(!netcore::Response::empty().is_error());
    /// ```
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }

    /// Takes the error out, leaving a successful (empty) response behind.
    ///
    /// ```
    /// let mut r = netcore::Response::from_error(netcore::RemoteError::handler("x"));
    /// assert!(r.take_error().is_some());
    /// assert!(!r.is_error());
    /// ```
    pub fn take_error(&mut self) -> Option<RemoteError> {
        self.error.take()
    }

    /// The body length when known (an error's message is not counted).
    ///
    /// ```
    /// assert_eq!(netcore::Response::new(vec![0u8; 3]).body_len(), Some(3));
    /// ```
    pub fn body_len(&self) -> Option<u64> {
        self.body.len()
    }

    /// The body, if it is in memory.
    ///
    /// ```
    /// assert_eq!(netcore::Response::new("ab").body_bytes().unwrap(), "ab");
    /// ```
    pub fn body_bytes(&self) -> Option<&Bytes> {
        match &self.body {
            Body::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Splits into the wire form: headers (with the error header for errors) and body
    /// (the error message for errors).
    pub(crate) fn into_wire(self) -> (Headers, Body) {
        let Response {
            mut headers,
            body,
            error,
        } = self;
        match error {
            Some(e) => {
                e.write_header(&mut headers);
                (headers, Body::from(e.message))
            }
            None => (headers, body),
        }
    }
}

/// Anything a handler may return.
///
/// Implemented for `Response`, `()`, bytes, strings, [`Json`], [`RemoteError`] and
/// `Result<T, E>` where `T: IntoResponse` and `E: Into<RemoteError>` — so a handler's
/// `Err` reaches the caller as a typed remote error.
///
/// ```
/// use netcore::IntoResponse;
/// let r = Ok::<_, netcore::RemoteError>("fine").into_response();
/// assert!(!r.is_error());
/// let r = Err::<&str, _>(netcore::RemoteError::handler("bad")).into_response();
/// assert!(r.is_error());
/// ```
pub trait IntoResponse {
    /// Converts into a response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::empty()
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for &'static [u8] {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for Body {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for RemoteError {
    fn into_response(self) -> Response {
        Response::from_error(self)
    }
}

impl<T: IntoResponse, E: Into<RemoteError>> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(v) => v.into_response(),
            Err(e) => Response::from_error(e.into()),
        }
    }
}

/// A JSON body: as an extractor it decodes the request with serde_json; as a response
/// it encodes the value.
///
/// ```
/// use netcore::{Json, IntoResponse};
/// let r = Json(serde_json::json!({"users": ["a", "b"]})).into_response();
/// assert_eq!(r.body_bytes().unwrap(), r#"{"users":["a","b"]}"#);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(v) => Response::new(v).with_header("content-type", "application/json"),
            Err(e) => Response::error(
                codes::INTERNAL,
                format!("could not encode the JSON response: {e}"),
            ),
        }
    }
}

/// Anyhow-style error for handlers: any `std::error::Error` converts into a
/// [`codes::HANDLER_ERROR`] remote error with the error's message (`?` works on it).
///
/// ```
/// fn parse(s: &str) -> Result<u32, netcore::HandlerError> {
///     Ok(s.parse::<u32>()?)
/// }
/// let e: netcore::RemoteError = parse("x").unwrap_err().into();
/// assert_eq!(e.code, netcore::codes::HANDLER_ERROR);
/// assert!(e.message.contains("invalid digit"));
/// ```
#[derive(Debug)]
pub struct HandlerError(pub RemoteError);

impl<E: std::error::Error> From<E> for HandlerError {
    fn from(e: E) -> Self {
        HandlerError(RemoteError::handler(e.to_string()))
    }
}

impl From<HandlerError> for RemoteError {
    fn from(e: HandlerError) -> RemoteError {
        e.0
    }
}
