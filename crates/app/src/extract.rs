//! Extractors: the typed arguments of handlers, taken from the [`Request`].
//!
//! Each argument of a handler implements [`FromRequest`]. Extractors that read the body
//! (`Bytes`, `String`, [`Json`], [`BodyStream`]) take it, so a handler has at most one
//! of them; the others (headers, route, ids, connection, state) only look.
//!
//! | extractor | gives |
//! |---|---|
//! | `Bytes` / `String` / `Json<T>` | the body: raw, UTF-8, serde JSON |
//! | [`BodyStream`] | the body as it arrives (large uploads) |
//! | [`Headers`] | the metadata headers |
//! | [`RoutePath`] | the route as received |
//! | `MessageId` / `ConnectionId` / [`ConnectionInfo`] | ids and transport info |
//! | [`State<S>`] / [`Extension<T>`] | shared state, middleware-provided values |
//! | [`Endpoint`] | the endpoint itself (cache, events, requests back to the peer) |
//! | `Option<T>` | `None` instead of a rejection |
//! | [`Request`] | everything (must be the only or last argument) |

use bytes::Bytes;
use netcore_core::metadata::Headers;
use netcore_core::MessageId;
use netcore_runtime::{ConnectionId, IncomingBody, PipeError};
use serde::de::DeserializeOwned;
use std::future::Future;

use crate::error::codes;
use crate::request::{ConnectionInfo, Request, RequestBody};
use crate::response::{Json, Response};
use crate::Endpoint;

/// Default largest body the body extractors collect into memory (16 MiB); set another
/// with [`EndpointBuilder::body_limit`](crate::EndpointBuilder::body_limit).
///
/// ```
/// assert_eq!(netcore::extract::DEFAULT_BODY_LIMIT, 16 << 20);
/// ```
pub const DEFAULT_BODY_LIMIT: u64 = 16 << 20;

/// The body limit in force for a request (an extension the endpoint inserts).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyLimit(pub(crate) u64);

/// A handler argument built from the request. A failure is the response sent instead
/// (usually a [`codes::BAD_REQUEST`] error).
///
/// ```
/// use netcore::{FromRequest, Request, Response, codes};
/// struct ApiKey(String);
/// impl FromRequest for ApiKey {
///     async fn from_request(req: &mut Request) -> Result<Self, Response> {
///         match req.headers().get_str("api-key") {
///             Some(k) => Ok(ApiKey(k.to_string())),
///             None => Err(Response::error(codes::UNAUTHORIZED, "missing api-key header")),
///         }
///     }
/// }
/// ```
pub trait FromRequest: Sized + Send {
    /// Builds the value, or returns the response to send instead.
    fn from_request(req: &mut Request) -> impl Future<Output = Result<Self, Response>> + Send;
}

fn limit_of(req: &Request) -> u64 {
    req.extensions()
        .get::<BodyLimit>()
        .map_or(DEFAULT_BODY_LIMIT, |l| l.0)
}

fn body_error(e: PipeError) -> Response {
    match e {
        PipeError::TooLarge { limit } => Response::error(
            codes::BAD_REQUEST,
            format!("request body exceeds the {limit}-byte limit of this endpoint"),
        ),
        other => Response::error(
            codes::BAD_REQUEST,
            format!("could not read the request body: {other}"),
        ),
    }
}

impl FromRequest for Bytes {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        let limit = limit_of(req);
        req.take_body().collect(limit).await.map_err(body_error)
    }
}

impl FromRequest for String {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        let bytes = Bytes::from_request(req).await?;
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            Response::error(
                codes::BAD_REQUEST,
                format!("request body is not UTF-8 text: {e}"),
            )
        })
    }
}

impl<T: DeserializeOwned + Send> FromRequest for Json<T> {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        let bytes = Bytes::from_request(req).await?;
        serde_json::from_slice(&bytes).map(Json).map_err(|e| {
            Response::error(
                codes::BAD_REQUEST,
                format!("request body is not the expected JSON: {e}"),
            )
        })
    }
}

impl FromRequest for Headers {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        Ok(req.headers().clone())
    }
}

impl FromRequest for MessageId {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        Ok(req.id())
    }
}

impl FromRequest for ConnectionId {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        Ok(req.connection().id)
    }
}

impl FromRequest for ConnectionInfo {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        Ok(req.connection().clone())
    }
}

impl FromRequest for Request {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        let taken = Request {
            route: req.route.clone(),
            headers: req.headers.clone(),
            id: req.id,
            urgency: req.urgency,
            connection: req.connection.clone(),
            body: req.take_body(),
            extensions: req.extensions.clone(),
            one_way: req.one_way,
            abandon: req.abandon.clone(),
        };
        Ok(taken)
    }
}

impl<T: FromRequest> FromRequest for Option<T> {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        Ok(T::from_request(req).await.ok())
    }
}

impl FromRequest for Endpoint {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        req.extensions().get::<Endpoint>().cloned().ok_or_else(|| {
            Response::error(
                codes::INTERNAL,
                "the Endpoint extractor only works in requests served by an Endpoint",
            )
        })
    }
}

/// The route as received (normalized: no leading `/`).
///
/// ```
/// use netcore::extract::RoutePath;
/// async fn handler(RoutePath(route): RoutePath) -> String { route }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePath(pub String);

impl FromRequest for RoutePath {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        Ok(RoutePath(req.route().to_string()))
    }
}

/// Shared state registered with [`EndpointBuilder::state`](crate::EndpointBuilder::state)
/// or [`Router::state`](crate::Router::state) (the latter only for that router's routes).
///
/// ```
/// use netcore::{State, Router};
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
/// #[derive(Clone, Default)]
/// struct Counter(Arc<AtomicU64>);
/// async fn hit(State(c): State<Counter>) -> String {
///     c.0.fetch_add(1, Ordering::Relaxed).to_string()
/// }
/// let app = Router::new().route("hit", hit).state(Counter::default());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct State<S>(pub S);

impl<S: Clone + Send + Sync + 'static> FromRequest for State<S> {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        match req.extensions().get::<S>() {
            Some(s) => Ok(State(s.clone())),
            None => Err(Response::error(
                codes::INTERNAL,
                format!(
                    "no state of type {} is registered for route '{}'; add it with EndpointBuilder::state or Router::state",
                    std::any::type_name::<S>(),
                    req.route()
                ),
            )),
        }
    }
}

/// A value middleware put in the request's extensions (e.g. the authenticated user).
/// Same lookup as [`State`], named for values that vary per request.
///
/// ```
/// use netcore::Extension;
/// #[derive(Clone)]
/// struct User(String);
/// async fn whoami(Extension(user): Extension<User>) -> String { user.0 }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromRequest for Extension<T> {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        match req.extensions().get::<T>() {
            Some(v) => Ok(Extension(v.clone())),
            None => Err(Response::error(
                codes::INTERNAL,
                format!(
                    "no extension of type {} on the request to '{}'; is the middleware that inserts it installed?",
                    std::any::type_name::<T>(),
                    req.route()
                ),
            )),
        }
    }
}

/// The request body as it arrives, for uploads too large for memory. Reading it slowly
/// slows the sender (credit), never the connection.
///
/// ```
/// use netcore::extract::BodyStream;
/// async fn upload(mut body: BodyStream) -> Result<String, netcore::RemoteError> {
///     let mut n = 0;
///     while let Some(chunk) = body.chunk().await? {
///         n += chunk.len();
///     }
///     Ok(n.to_string())
/// }
/// ```
#[derive(Debug)]
pub struct BodyStream {
    body: RequestBody,
}

impl BodyStream {
    /// The next chunk; `None` at the end. A failure (peer cancelled, connection lost)
    /// converts into a remote error with `?`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use netcore::FromRequest;
    /// let mut req = netcore::Request::new("up", "abc");
    /// let mut body = netcore::extract::BodyStream::from_request(&mut req).await.unwrap();
    /// assert_eq!(body.chunk().await.unwrap().unwrap(), "abc");
    /// assert!(body.chunk().await.unwrap().is_none());
    /// # }
    /// ```
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        match &mut self.body {
            RequestBody::Incoming(b) => b.chunk().await.map_err(BodyError),
            RequestBody::Bytes(b) => {
                let b = std::mem::take(b);
                self.body = RequestBody::Taken;
                Ok(Some(b))
            }
            RequestBody::Taken => Ok(None),
        }
    }

    /// Announced total length, if the sender gave one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use netcore::FromRequest;
    /// let mut req = netcore::Request::new("up", "abc");
    /// let body = netcore::extract::BodyStream::from_request(&mut req).await.unwrap();
    /// assert_eq!(body.len_hint(), Some(3));
    /// # }
    /// ```
    pub fn len_hint(&self) -> Option<u64> {
        match &self.body {
            RequestBody::Incoming(b) => b.len_hint(),
            RequestBody::Bytes(b) => Some(b.len() as u64),
            RequestBody::Taken => Some(0),
        }
    }

    /// The underlying incoming body (to spill it to a file, or read it as `AsyncRead`);
    /// `None` for in-memory bodies.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use netcore::FromRequest;
    /// let mut req = netcore::Request::new("up", "abc");
    /// let body = netcore::extract::BodyStream::from_request(&mut req).await.unwrap();
    /// assert!(body.into_incoming().is_none());
    /// # }
    /// ```
    pub fn into_incoming(self) -> Option<IncomingBody> {
        match self.body {
            RequestBody::Incoming(b) => Some(b),
            _ => None,
        }
    }
}

impl FromRequest for BodyStream {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        Ok(BodyStream {
            body: req.take_body(),
        })
    }
}

/// Reading a [`BodyStream`] failed; converts into a [`codes::BAD_REQUEST`] remote error.
///
/// ```
/// let e = netcore::extract::BodyError(netcore_runtime::PipeError::TimedOut);
/// let r: netcore::RemoteError = e.into();
/// assert_eq!(r.code, netcore::codes::BAD_REQUEST);
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("reading the request body failed: {0}")]
pub struct BodyError(pub PipeError);

impl From<BodyError> for crate::RemoteError {
    fn from(e: BodyError) -> Self {
        crate::RemoteError::new(codes::BAD_REQUEST, e.to_string())
    }
}
