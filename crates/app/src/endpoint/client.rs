//! The client side of an endpoint: requests with deadlines, callbacks, one-way sends
//! and cancellation, on any of its connections.

use bytes::Bytes;
use netcore_core::metadata::Headers;
use netcore_core::{MessageError, MessageHead, MessageId, Urgency};
use netcore_runtime::{Body, ConnectionId, IncomingBody, IncomingMessage, PipeError, SendHandle};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::oneshot;

use super::Endpoint;
use crate::error::{AppError, RemoteError, ONE_WAY_HEADER};

/// Largest error message collected from an error reply.
const ERROR_MESSAGE_LIMIT: u64 = 64 * 1024;

/// An outgoing message being built: connection, headers, urgency, deadline; then
/// [`request`](Self::request), [`start`](Self::start), [`callback`](Self::callback) or
/// [`send`](Self::send).
///
/// ```
/// # use netcore::{Endpoint, Router};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), netcore::AppError> {
/// # let server = Endpoint::new(Router::new().route("sensor/read", |h: netcore_core::metadata::Headers| async move {
/// #     h.get_str("unit").unwrap_or("").to_string() }));
/// # let client = Endpoint::new(Router::new());
/// # let (a, b) = netcore_runtime::transport::mem_pair(1 << 16);
/// # server.add_transport(b); client.add_transport(a);
/// use std::time::Duration;
/// let reply = client
///     .message("sensor/read")
///     .header("unit", "celsius")
///     .urgency(netcore_core::Urgency::HIGHEST)
///     .timeout(Duration::from_secs(5))
///     .request("")
///     .await?;
/// assert_eq!(reply.text().await?, "celsius");
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "an Outgoing does nothing until request, start, callback or send is called"]
pub struct Outgoing {
    ep: Endpoint,
    route: String,
    headers: Headers,
    urgency: Urgency,
    timeout: Option<Duration>,
    connection: Option<ConnectionId>,
}

impl Endpoint {
    /// Builds a message to `route` (on the oldest connection unless [`Outgoing::to`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let out = ep.message("user/list").header("page", "1");
    /// # }
    /// ```
    pub fn message(&self, route: impl Into<String>) -> Outgoing {
        Outgoing {
            ep: self.clone(),
            route: route.into(),
            headers: Headers::new(),
            urgency: Urgency::default(),
            timeout: self.inner.request_timeout,
            connection: None,
        }
    }

    /// Sends a request and waits for its reply (default deadline).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let err = ep.request("x", "").await.unwrap_err();
    /// assert!(matches!(err, netcore::AppError::NoConnection));
    /// # }
    /// ```
    pub async fn request(
        &self,
        route: impl Into<String>,
        body: impl Into<Body>,
    ) -> Result<Reply, AppError> {
        self.message(route).request(body).await
    }

    /// Sends a one-way message (no reply; the handler's result stays on the peer).
    /// Resolves once the message is handed to the connection.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// assert!(ep.send("log", "started").await.is_err()); // no connection yet
    /// # }
    /// ```
    pub async fn send(
        &self,
        route: impl Into<String>,
        body: impl Into<Body>,
    ) -> Result<SendHandle, AppError> {
        self.message(route).send(body).await
    }
}

impl Outgoing {
    /// Sends on connection `id` (default: the oldest connection).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let out = ep.message("x").to(netcore_runtime::ConnectionId(3));
    /// # }
    /// ```
    pub fn to(mut self, id: ConnectionId) -> Self {
        self.connection = Some(id);
        self
    }

    /// Adds a header.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let out = ep.message("x").header("token", "s3cret");
    /// # }
    /// ```
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.set(key, value);
        self
    }

    /// Sets the scheduling urgency (the reply uses the same).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let out = ep.message("x").urgency(netcore_core::Urgency::HIGHEST);
    /// # }
    /// ```
    pub fn urgency(mut self, urgency: Urgency) -> Self {
        self.urgency = urgency;
        self
    }

    /// Deadline for this request (overrides the endpoint's default). On expiry the
    /// request is cancelled on the peer (its handler is dropped).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let out = ep.message("x").timeout(std::time::Duration::from_millis(250));
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No deadline for this request.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let out = ep.message("x").no_timeout();
    /// # }
    /// ```
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    fn head(&self, one_way: bool) -> MessageHead {
        let mut headers = self.headers.clone();
        if one_way {
            headers.set(ONE_WAY_HEADER, "1");
        }
        let mut head = MessageHead::to_route(self.route.clone()).with_urgency(self.urgency);
        if !headers.is_empty() {
            head.metadata = headers.encode();
        }
        head
    }

    /// Sends the request and returns at once with a [`PendingRequest`] to await or
    /// cancel.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// assert!(ep.message("x").start("").await.is_err()); // no connection
    /// # }
    /// ```
    pub async fn start(self, body: impl Into<Body>) -> Result<PendingRequest, AppError> {
        if self.ep.inner.stopping.is_cancelled() {
            return Err(AppError::Stopped);
        }
        let conn = self.ep.conn(self.connection)?;
        let head = self.head(false);
        let (tx, rx) = oneshot::channel();
        let handle = conn.pipe.send_head(head, body.into(), Some(tx)).await?;
        Ok(PendingRequest {
            route: self.route,
            handle,
            rx: Some(rx),
            timeout: self.timeout,
            body_limit: self.ep.inner.body_limit,
        })
    }

    /// Sends the request and waits for its reply.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// assert!(ep.message("x").request("").await.is_err()); // no connection
    /// # }
    /// ```
    pub async fn request(self, body: impl Into<Body>) -> Result<Reply, AppError> {
        self.start(body).await?.response().await
    }

    /// Sends `value` as a JSON request and waits for the reply.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let r = ep.message("user/list").json(&serde_json::json!({"page": 1})).await;
    /// # }
    /// ```
    pub fn json<T: Serialize + ?Sized>(
        self,
        value: &T,
    ) -> impl std::future::Future<Output = Result<Reply, AppError>> + Send + 'static {
        // Encoded before the future starts, so the future does not borrow `value`.
        let body = serde_json::to_vec(value).map_err(|e| AppError::Codec {
            action: "encode the request as JSON",
            message: e.to_string(),
        });
        async move {
            self.header("content-type", "application/json")
                .request(body?)
                .await
        }
    }

    /// Sends the request and calls `callback` with the outcome from a background task
    /// (the seed's `send(route, data, callback)`); returns a handle to cancel it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let r = ep.message("x").callback("", |result| println!("{:?}", result.is_ok())).await;
    /// assert!(r.is_err()); // no connection: reported at once, callback not called
    /// # }
    /// ```
    pub async fn callback<F>(
        self,
        body: impl Into<Body>,
        callback: F,
    ) -> Result<RequestCanceller, AppError>
    where
        F: FnOnce(Result<Reply, AppError>) + Send + 'static,
    {
        let pending = self.start(body).await?;
        let canceller = pending.canceller();
        tokio::spawn(async move { callback(pending.response().await) });
        Ok(canceller)
    }

    /// Sends a one-way message (fire and forget); the peer sends no reply. The handle
    /// follows its progress and can cancel it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// assert!(ep.message("log").send("x").await.is_err()); // no connection
    /// # }
    /// ```
    pub async fn send(self, body: impl Into<Body>) -> Result<SendHandle, AppError> {
        if self.ep.inner.stopping.is_cancelled() {
            return Err(AppError::Stopped);
        }
        let conn = self.ep.conn(self.connection)?;
        let head = self.head(true);
        Ok(conn.pipe.send_head(head, body.into(), None).await?)
    }
}

/// A request on its way; await it with [`response`](Self::response). Dropping it
/// before the reply cancels the request on the peer.
#[derive(Debug)]
#[must_use = "dropping a PendingRequest cancels the request"]
pub struct PendingRequest {
    route: String,
    handle: SendHandle,
    rx: Option<oneshot::Receiver<Result<IncomingMessage, PipeError>>>,
    timeout: Option<Duration>,
    body_limit: u64,
}

/// Cancels a request from anywhere (clone it freely).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # let server = netcore::Endpoint::new(netcore::Router::new().route("slow", || async {
/// #     tokio::time::sleep(std::time::Duration::from_secs(60)).await }));
/// # let client = netcore::Endpoint::new(netcore::Router::new());
/// # let (a, b) = netcore_runtime::transport::mem_pair(1 << 16);
/// # server.add_transport(b); client.add_transport(a);
/// let pending = client.message("slow").start("").await.unwrap();
/// pending.canceller().cancel();
/// assert!(matches!(pending.response().await, Err(netcore::AppError::Cancelled { .. })));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RequestCanceller {
    handle: SendHandle,
}

impl RequestCanceller {
    /// Cancels the request: the peer drops its handler and the caller gets
    /// [`AppError::Cancelled`].
    ///
    /// ```no_run
    /// # fn f(c: netcore::RequestCanceller) {
    /// c.cancel();
    /// # }
    /// ```
    pub fn cancel(&self) {
        self.handle.cancel();
    }
}

impl PendingRequest {
    /// The request's message id, once the connection started it.
    ///
    /// ```no_run
    /// # fn f(p: netcore::PendingRequest) {
    /// let id = p.id();
    /// # }
    /// ```
    pub fn id(&self) -> Option<MessageId> {
        self.handle.id()
    }

    /// A handle to cancel the request from elsewhere.
    ///
    /// ```no_run
    /// # fn f(p: netcore::PendingRequest) {
    /// let c = p.canceller();
    /// # }
    /// ```
    pub fn canceller(&self) -> RequestCanceller {
        RequestCanceller {
            handle: self.handle.clone(),
        }
    }

    /// Cancels the request (the peer drops its handler).
    ///
    /// ```no_run
    /// # fn f(p: netcore::PendingRequest) {
    /// p.cancel();
    /// # }
    /// ```
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Waits for the reply, within the deadline.
    ///
    /// ```no_run
    /// # async fn f(p: netcore::PendingRequest) -> Result<(), netcore::AppError> {
    /// let reply = p.response().await?;
    /// # Ok(()) }
    /// ```
    pub async fn response(mut self) -> Result<Reply, AppError> {
        let Some(rx) = self.rx.take() else {
            return Err(AppError::Cancelled {
                route: self.route.clone(),
            });
        };
        let waited = match self.timeout {
            None => Ok(rx.await),
            Some(t) => tokio::time::timeout(t, rx).await,
        };
        let outcome = match waited {
            Ok(o) => o,
            Err(_) => {
                self.handle.cancel();
                return Err(AppError::TimedOut {
                    route: std::mem::take(&mut self.route),
                    after: self.timeout.unwrap_or_default(),
                });
            }
        };
        match outcome {
            Ok(Ok(msg)) => Reply::from_message(msg, self.body_limit).await,
            Ok(Err(PipeError::Message(MessageError::CancelledLocally(_)))) => {
                Err(AppError::Cancelled {
                    route: std::mem::take(&mut self.route),
                })
            }
            Ok(Err(e)) => Err(AppError::Pipe(e)),
            Err(_) => Err(AppError::Pipe(PipeError::Closed(None))),
        }
    }
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        if self.rx.is_some() {
            // Never awaited, or dropped while waiting: nobody wants the answer.
            self.handle.cancel();
        }
    }
}

/// A successful reply. Its body is read on demand: [`bytes`](Self::bytes),
/// [`text`](Self::text), [`json`](Self::json), or streamed with
/// [`into_body`](Self::into_body).
#[derive(Debug)]
pub struct Reply {
    msg: IncomingMessage,
    headers: Headers,
    limit: u64,
}

impl Reply {
    async fn from_message(msg: IncomingMessage, limit: u64) -> Result<Reply, AppError> {
        let headers = msg.headers();
        if headers.get(crate::error::ERROR_HEADER).is_some() {
            let body = msg.collect(ERROR_MESSAGE_LIMIT).await.unwrap_or_default();
            let e = RemoteError::from_wire(&headers, &body).unwrap_or_else(|| {
                RemoteError::new(crate::codes::INTERNAL, "malformed error reply")
            });
            return Err(AppError::Remote(e));
        }
        Ok(Reply {
            msg,
            headers,
            limit,
        })
    }

    /// The reply's headers.
    ///
    /// ```no_run
    /// # fn f(r: netcore::Reply) {
    /// let kind = r.headers().get_str("content-type");
    /// # }
    /// ```
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The connection the reply came on.
    ///
    /// ```no_run
    /// # fn f(r: netcore::Reply) {
    /// let conn = r.connection();
    /// # }
    /// ```
    pub fn connection(&self) -> ConnectionId {
        self.msg.connection
    }

    /// The body in memory (up to the endpoint's body limit).
    ///
    /// ```no_run
    /// # async fn f(r: netcore::Reply) -> Result<(), netcore::AppError> {
    /// let data = r.bytes().await?;
    /// # Ok(()) }
    /// ```
    pub async fn bytes(self) -> Result<Bytes, AppError> {
        Ok(self.msg.collect(self.limit).await?)
    }

    /// The body as UTF-8 text.
    ///
    /// ```no_run
    /// # async fn f(r: netcore::Reply) -> Result<(), netcore::AppError> {
    /// let text = r.text().await?;
    /// # Ok(()) }
    /// ```
    pub async fn text(self) -> Result<String, AppError> {
        let b = self.bytes().await?;
        String::from_utf8(b.to_vec()).map_err(|e| AppError::Codec {
            action: "decode the reply as UTF-8",
            message: e.to_string(),
        })
    }

    /// The body decoded from JSON.
    ///
    /// ```no_run
    /// # async fn f(r: netcore::Reply) -> Result<(), netcore::AppError> {
    /// let v: serde_json::Value = r.json().await?;
    /// # Ok(()) }
    /// ```
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, AppError> {
        let b = self.bytes().await?;
        serde_json::from_slice(&b).map_err(|e| AppError::Codec {
            action: "decode the reply as JSON",
            message: e.to_string(),
        })
    }

    /// The body as a stream (large downloads: chunks, `AsyncRead`, spill to a file).
    ///
    /// ```no_run
    /// # async fn f(r: netcore::Reply) -> Result<(), netcore::AppError> {
    /// let mut body = r.into_body();
    /// while let Some(chunk) = body.chunk().await? { /* … */ }
    /// # Ok(()) }
    /// ```
    pub fn into_body(self) -> IncomingBody {
        self.msg.body
    }
}
