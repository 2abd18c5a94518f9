//! [`Request`]: what a handler and every middleware layer sees of an incoming message —
//! route, headers, ids, connection, body and typed [`Extensions`].

use bytes::Bytes;
use netcore_core::metadata::Headers;
use netcore_core::{MessageHead, MessageId, Urgency};
use netcore_runtime::transport::{TransportInfo, TransportKind};
use netcore_runtime::{AbandonSignal, ConnectionId, IncomingBody, IncomingMessage, PipeError};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// One connection of an endpoint: its id and what the transport is.
///
/// ```
/// use netcore::ConnectionInfo;
/// use netcore_runtime::ConnectionId;
/// use netcore_runtime::transport::{TransportInfo, TransportKind};
/// let info = ConnectionInfo::new(ConnectionId(7), TransportInfo::new(TransportKind::Tcp));
/// assert_eq!(info.id, ConnectionId(7));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection id (unique in this process).
    pub id: ConnectionId,
    /// The transport: kind, peer and local addresses.
    pub transport: TransportInfo,
}

impl ConnectionInfo {
    /// Info for connection `id` over `transport`.
    ///
    /// ```
    /// # use netcore::ConnectionInfo; use netcore_runtime::ConnectionId;
    /// # use netcore_runtime::transport::{TransportInfo, TransportKind};
    /// let i = ConnectionInfo::new(ConnectionId(1), TransportInfo::new(TransportKind::Mem).with_peer("x"));
    /// assert_eq!(i.peer(), Some("x"));
    /// ```
    pub fn new(id: ConnectionId, transport: TransportInfo) -> ConnectionInfo {
        ConnectionInfo { id, transport }
    }

    /// The peer address in text form, when the transport knows it.
    ///
    /// ```
    /// # use netcore::ConnectionInfo; use netcore_runtime::ConnectionId;
    /// # use netcore_runtime::transport::{TransportInfo, TransportKind};
    /// assert_eq!(ConnectionInfo::new(ConnectionId(1), TransportInfo::new(TransportKind::Tcp)).peer(), None);
    /// ```
    pub fn peer(&self) -> Option<&str> {
        self.transport.peer.as_deref()
    }
}

/// A type map carried by a request: state registered on the endpoint or a router, and
/// values middleware attaches for handlers (e.g. the authenticated user).
///
/// ```
/// let mut ext = netcore::Extensions::new();
/// ext.insert(42u32);
/// assert_eq!(ext.get::<u32>(), Some(&42));
/// assert!(ext.get::<String>().is_none());
/// ```
#[derive(Clone, Default)]
pub struct Extensions {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extensions({} values)", self.map.len())
    }
}

impl Extensions {
    /// An empty map.
    ///
    /// ```
    /// assert!(netcore::Extensions::new().is_empty());
    /// ```
    pub fn new() -> Extensions {
        Extensions::default()
    }

    /// Inserts a value, replacing one of the same type.
    ///
    /// ```
    /// let mut ext = netcore::Extensions::new();
    /// ext.insert("a".to_string());
    /// ext.insert("b".to_string());
    /// assert_eq!(ext.get::<String>().unwrap(), "b");
    /// ```
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if any.
    ///
    /// ```
    /// let mut ext = netcore::Extensions::new();
    /// ext.insert(1u8);
    /// assert_eq!(ext.get::<u8>(), Some(&1));
    /// ```
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
    }

    /// Whether the map is empty.
    ///
    /// ```
    /// assert!(netcore::Extensions::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Copies every value of `other` in, replacing values of the same type.
    ///
    /// ```
    /// let (mut a, mut b) = (netcore::Extensions::new(), netcore::Extensions::new());
    /// a.insert(1u8);
    /// b.insert(2u8);
    /// b.insert(3u16);
    /// a.extend(&b);
    /// assert_eq!(a.get::<u8>(), Some(&2));
    /// assert_eq!(a.get::<u16>(), Some(&3));
    /// ```
    pub fn extend(&mut self, other: &Extensions) {
        for (k, v) in &other.map {
            self.map.insert(*k, v.clone());
        }
    }
}

/// The body of a [`Request`]: still streaming from the connection, already in memory
/// (requests built in-process), or taken by an extractor.
///
/// ```
/// let mut req = netcore::Request::new("x", "abc");
/// assert!(matches!(req.take_body(), netcore::RequestBody::Bytes(b) if b == "abc"));
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum RequestBody {
    /// Streaming from the peer.
    Incoming(IncomingBody),
    /// In memory.
    Bytes(Bytes),
    /// Already taken by an extractor or middleware.
    #[default]
    Taken,
}

impl RequestBody {
    /// Collects the body into memory up to `limit` bytes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let b = netcore::RequestBody::Bytes("hi".into());
    /// assert_eq!(b.collect(10).await.unwrap(), "hi");
    /// # }
    /// ```
    pub async fn collect(self, limit: u64) -> Result<Bytes, PipeError> {
        match self {
            RequestBody::Incoming(b) => b.collect(limit).await,
            RequestBody::Bytes(b) if b.len() as u64 > limit => Err(PipeError::TooLarge { limit }),
            RequestBody::Bytes(b) => Ok(b),
            RequestBody::Taken => Ok(Bytes::new()),
        }
    }
}

/// Reads and discards what is left of a request body in the background (up to `limit`
/// bytes, then stops it). Stopping a half-received request instead would make the
/// peer's runtime fail the request before our reply arrives: a handler that ignores
/// the body, or middleware that refuses the request, must still be able to answer.
pub(crate) fn discard_body(mut body: IncomingBody, limit: u64) {
    let (received, total) = body.progress();
    if total == Some(received) {
        return; // complete: dropping it costs nothing on the wire
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        let mut seen = 0u64;
        while let Ok(Some(chunk)) = body.chunk().await {
            seen += chunk.len() as u64;
            if seen > limit {
                break; // dropping the body now stops the rest
            }
        }
    });
}

/// An incoming request as handlers and middleware see it.
///
/// Build one by hand with [`Request::new`] to call a router in-process (tests):
///
/// ```
/// use netcore::Request;
/// let req = Request::new("user/list", "page=1");
/// assert_eq!(req.route(), "user/list");
/// assert!(!req.is_one_way());
/// ```
#[derive(Debug)]
pub struct Request {
    pub(crate) route: String,
    pub(crate) headers: Headers,
    pub(crate) id: MessageId,
    pub(crate) urgency: Urgency,
    pub(crate) connection: Arc<ConnectionInfo>,
    pub(crate) body: RequestBody,
    pub(crate) extensions: Extensions,
    pub(crate) one_way: bool,
    pub(crate) abandon: Option<AbandonSignal>,
}

impl Drop for Request {
    fn drop(&mut self) {
        if let RequestBody::Incoming(body) = std::mem::take(&mut self.body) {
            let limit = self
                .extensions
                .get::<crate::extract::BodyLimit>()
                .map_or(crate::extract::DEFAULT_BODY_LIMIT, |l| l.0);
            discard_body(body, limit);
        }
    }
}

impl Request {
    /// A request for `route` with an in-memory body, on a placeholder connection
    /// (`ConnectionId(0)`, memory transport). For tests and in-process calls.
    ///
    /// ```
    /// let req = netcore::Request::new("echo", "x");
    /// assert_eq!(req.connection().id.0, 0);
    /// ```
    pub fn new(route: impl Into<String>, body: impl Into<Bytes>) -> Request {
        Request {
            route: crate::routing::normalize(&route.into()),
            headers: Headers::new(),
            id: MessageId(0),
            urgency: Urgency::default(),
            connection: Arc::new(ConnectionInfo::new(
                ConnectionId(0),
                TransportInfo::new(TransportKind::Mem),
            )),
            body: RequestBody::Bytes(body.into()),
            extensions: Extensions::new(),
            one_way: false,
            abandon: None,
        }
    }

    pub(crate) fn from_incoming(msg: IncomingMessage, connection: Arc<ConnectionInfo>) -> Request {
        let headers = msg.headers();
        let one_way = headers.get(crate::error::ONE_WAY_HEADER).is_some();
        let abandon = Some(msg.abandon_signal());
        let IncomingMessage { id, head, body, .. } = msg;
        let MessageHead { route, urgency, .. } = head;
        Request {
            route: crate::routing::normalize(route.as_deref().unwrap_or("")),
            headers,
            id,
            urgency,
            connection,
            body: RequestBody::Incoming(body),
            extensions: Extensions::new(),
            one_way,
            abandon,
        }
    }

    /// Adds a header (builder style, for requests built by hand).
    ///
    /// ```
    /// let req = netcore::Request::new("x", "").with_header("token", "s3cret");
    /// assert_eq!(req.headers().get_str("token"), Some("s3cret"));
    /// ```
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Request {
        self.headers.set(key, value);
        self
    }

    /// The route, without a leading `/`.
    ///
    /// ```
    /// assert_eq!(netcore::Request::new("/user/list", "").route(), "user/list");
    /// ```
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The request's headers (metadata).
    ///
    /// ```
    /// assert!(netcore::Request::new("x", "").headers().is_empty());
    /// ```
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The headers, mutable (middleware may add or rewrite them).
    ///
    /// ```
    /// let mut req = netcore::Request::new("x", "");
    /// req.headers_mut().set("k", "v");
    /// assert_eq!(req.headers().get_str("k"), Some("v"));
    /// ```
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The peer's id of this message.
    ///
    /// ```
    /// assert_eq!(netcore::Request::new("x", "").id().0, 0);
    /// ```
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// The scheduling urgency the peer gave it (replies use the same).
    ///
    /// ```
    /// assert_eq!(netcore::Request::new("x", "").urgency(), netcore_core::Urgency::default());
    /// ```
    pub fn urgency(&self) -> Urgency {
        self.urgency
    }

    /// The connection it came on.
    ///
    /// ```
    /// assert_eq!(netcore::Request::new("x", "").connection().id.0, 0);
    /// ```
    pub fn connection(&self) -> &ConnectionInfo {
        &self.connection
    }

    /// Whether the sender expects no reply (sent with `send`, not `request`).
    ///
    /// ```
    /// assert!(!netcore::Request::new("x", "").is_one_way());
    /// ```
    pub fn is_one_way(&self) -> bool {
        self.one_way
    }

    /// Typed values attached to the request.
    ///
    /// ```
    /// assert!(netcore::Request::new("x", "").extensions().is_empty());
    /// ```
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Typed values, mutable: middleware attaches values for handlers here.
    ///
    /// ```
    /// let mut req = netcore::Request::new("x", "");
    /// req.extensions_mut().insert(5u64);
    /// assert_eq!(req.extensions().get::<u64>(), Some(&5));
    /// ```
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Takes the body out (later extractors then see an empty, taken body).
    ///
    /// ```
    /// let mut req = netcore::Request::new("x", "abc");
    /// assert!(matches!(req.take_body(), netcore::RequestBody::Bytes(_)));
    /// assert!(matches!(req.take_body(), netcore::RequestBody::Taken));
    /// ```
    pub fn take_body(&mut self) -> RequestBody {
        std::mem::take(&mut self.body)
    }

    /// A signal that resolves when the peer cancels this request (`None` for requests
    /// built in-process).
    ///
    /// ```
    /// assert!(netcore::Request::new("x", "").abandon_signal().is_none());
    /// ```
    pub fn abandon_signal(&self) -> Option<AbandonSignal> {
        self.abandon.clone()
    }
}
