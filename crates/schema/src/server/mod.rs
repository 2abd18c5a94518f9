//! Typed server over TCP and UDP (tokio), speaking binary_protocol's wire format.
//!
//! This module owns dispatch (one handler per message type, a default handler that
//! answers NOT_FOUND, like Python's `BinaryServer`), the per-connection TCP loop and the
//! UDP datagram loop. Per-message errors (bad checksum, invalid UTF-8, failed
//! validation, oversized payload, handler failure) go to the configured error handler
//! and the connection keeps going; only errors that break framing (truncated stream,
//! timeout mid-message, I/O) close that one connection. Every connection is its own
//! task, so one peer never stalls another.
//!
//! Responses are buffered while more complete requests are already in the read buffer
//! and written in one batch, so pipelined clients cost one write per batch.

mod conn;

use crate::codec::{Codec, Frame, Reply};
use crate::config::{ErrorContext, ProtocolConfig};
use crate::error::{Result, SchemaError};
use crate::schema::Schema;
use crate::typed::TypedMessage;
use crate::value::Value;
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::{TcpListener, ToSocketAddrs, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

/// Error type handlers may return.
///
/// ```
/// let e: netcore_schema::server::BoxError = "bad request".into();
/// assert_eq!(e.to_string(), "bad request");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What a handler returns: an optional reply, or an error for the error handler.
///
/// ```
/// let r: netcore_schema::server::HandlerResult = Ok(Some(netcore_schema::Reply::not_found()));
/// assert!(r.is_ok());
/// ```
pub type HandlerResult = std::result::Result<Option<Reply>, BoxError>;
type BoxFut = Pin<Box<dyn Future<Output = Result<Option<Reply>>> + Send>>;
type Handler = Arc<dyn Fn(RawRequest<'_>) -> BoxFut + Send + Sync>;

/// A message borrowed from the read buffer while its handler future is created: typed
/// handlers decode straight from it, raw handlers copy it into a [`Request`].
struct RawRequest<'a> {
    type_id: u64,
    payload: &'a [u8],
    peer: SocketAddr,
    schema: &'a Arc<Schema>,
}

impl RawRequest<'_> {
    fn to_owned(&self) -> Request {
        Request {
            type_id: self.type_id,
            payload: Bytes::copy_from_slice(self.payload),
            peer: self.peer,
            schema: self.schema.clone(),
        }
    }
}

/// One received message handed to a handler.
///
/// ```
/// # async fn f(req: netcore_schema::Request) {
/// let id = req.type_id();
/// let values = req.values();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    type_id: u64,
    payload: Bytes,
    peer: SocketAddr,
    schema: Arc<Schema>,
}

impl Request {
    /// Message type id (for unknown types: the id received; the payload is empty).
    ///
    /// ```
    /// # fn f(req: &netcore_schema::Request) { if req.type_id() == 1 { /* ... */ } }
    /// ```
    pub fn type_id(&self) -> u64 {
        self.type_id
    }
    /// Raw payload.
    ///
    /// ```
    /// # fn f(req: &netcore_schema::Request) { let n = req.payload().len(); }
    /// ```
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }
    /// The peer's address.
    ///
    /// ```
    /// # fn f(req: &netcore_schema::Request) { println!("from {}", req.peer()); }
    /// ```
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
    /// Decodes as a typed message.
    ///
    /// ```
    /// netcore_schema::message! { pub struct P = 1 { pub n: u8 ["B"] } }
    /// # fn f(req: &netcore_schema::Request) -> netcore_schema::Result<()> {
    /// let p: P = req.decode()?;
    /// # Ok(()) }
    /// ```
    pub fn decode<T: TypedMessage>(&self) -> Result<T> {
        if self.type_id != T::TYPE_ID {
            return Err(SchemaError::UnknownType {
                type_id: self.type_id,
            });
        }
        T::decode(&self.payload)
    }
    /// Decodes into dynamic values with the schema.
    ///
    /// ```
    /// # fn f(req: &netcore_schema::Request) -> netcore_schema::Result<()> {
    /// for v in req.values()? { println!("{v:?}"); }
    /// # Ok(()) }
    /// ```
    pub fn values(&self) -> Result<Vec<Value>> {
        let t = self
            .schema
            .get(self.type_id)
            .ok_or(SchemaError::UnknownType {
                type_id: self.type_id,
            })?;
        t.layout().decode(&self.payload)
    }
}

struct Shared {
    codec: Codec,
    dense: Vec<Option<Handler>>,
    sparse: HashMap<u64, Handler>,
    default: Handler,
}

/// Builds a [`Server`].
///
/// ```
/// netcore_schema::message! { pub struct Ping = 1 { pub n: u32 [">I"] } }
/// use netcore_schema::{ProtocolConfig, Reply, Schema, Server};
/// let schema = Schema::builder().message::<Ping>().build().unwrap();
/// let server = Server::builder(schema, ProtocolConfig::default())
///     .on(|p: Ping, _peer| async move { Ok(Some(Reply::typed(&Ping { n: p.n + 1 })?)) })
///     .build()
///     .unwrap();
/// ```
#[must_use]
pub struct ServerBuilder {
    codec: Codec,
    handlers: Vec<(u64, Handler, Option<Option<usize>>)>,
    default: Handler,
}

fn not_found_handler() -> Handler {
    Arc::new(|_req| Box::pin(std::future::ready(Ok(Some(Reply::not_found())))))
}

fn handler_err(type_id: u64, e: BoxError) -> SchemaError {
    match e.downcast::<SchemaError>() {
        Ok(se) => *se,
        Err(e) => SchemaError::Handler {
            type_id,
            reason: e.to_string(),
        },
    }
}

impl ServerBuilder {
    /// Registers a handler for the typed message `T`; it gets the decoded message and
    /// the peer address. A payload that fails to decode goes to the error handler.
    ///
    /// ```
    /// netcore_schema::message! { pub struct Log = 3 { pub line: String [text] } }
    /// let s = netcore_schema::Schema::builder().message::<Log>().build().unwrap();
    /// let b = netcore_schema::Server::builder(s, Default::default())
    ///     .on(|l: Log, peer| async move { println!("{peer}: {}", l.line); Ok(None) });
    /// assert!(b.build().is_ok());
    /// ```
    pub fn on<T, F, Fut>(mut self, f: F) -> Self
    where
        T: TypedMessage,
        F: Fn(T, SocketAddr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let h: Handler = Arc::new(move |req: RawRequest<'_>| -> BoxFut {
            match T::decode(req.payload) {
                Ok(msg) => {
                    let fut = f(msg, req.peer);
                    Box::pin(async move { fut.await.map_err(|e| handler_err(T::TYPE_ID, e)) })
                }
                Err(e) => Box::pin(std::future::ready(Err(e))),
            }
        });
        self.handlers.push((T::TYPE_ID, h, Some(T::FIXED_SIZE)));
        self
    }

    /// Registers a handler for type `type_id` receiving the raw [`Request`] (dynamic
    /// schemas, or zero-copy access to the payload).
    ///
    /// ```
    /// use netcore_schema::{Field, FieldKind, Schema, Server};
    /// let s = Schema::builder().dynamic(1, "T", vec![Field::new("t", FieldKind::Text)]).build().unwrap();
    /// let b = Server::builder(s, Default::default())
    ///     .on_request(1, |req| async move { let _v = req.values()?; Ok(None) });
    /// assert!(b.build().is_ok());
    /// ```
    pub fn on_request<F, Fut>(mut self, type_id: u64, f: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let h: Handler = Arc::new(move |req: RawRequest<'_>| -> BoxFut {
            let fut = f(req.to_owned());
            Box::pin(async move { fut.await.map_err(|e| handler_err(type_id, e)) })
        });
        self.handlers.push((type_id, h, None));
        self
    }

    /// Replaces the default handler, called for unknown types (empty payload) and for
    /// known types without a handler. The default answers NOT_FOUND.
    ///
    /// ```
    /// let s = netcore_schema::Schema::builder().build().unwrap();
    /// let b = netcore_schema::Server::builder(s, Default::default()).default_handler(|_req| async { Ok(None) });
    /// assert!(b.build().is_ok());
    /// ```
    pub fn default_handler<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.default = Arc::new(move |req: RawRequest<'_>| -> BoxFut {
            let id = req.type_id;
            let fut = f(req.to_owned());
            Box::pin(async move { fut.await.map_err(|e| handler_err(id, e)) })
        });
        self
    }

    /// Checks that every handled type is in the schema (with the same layout kind).
    ///
    /// ```
    /// netcore_schema::message! { pub struct A = 1 {} }
    /// let s = netcore_schema::Schema::builder().build().unwrap();
    /// let b = netcore_schema::Server::builder(s, Default::default()).on(|_a: A, _| async { Ok(None) });
    /// assert!(b.build().is_err());
    /// ```
    pub fn build(self) -> Result<Server> {
        let schema = self.codec.schema().clone();
        let mut dense: Vec<Option<Handler>> = Vec::new();
        let mut sparse = HashMap::new();
        for (id, h, fixed) in self.handlers {
            let t = schema.get(id).ok_or_else(|| {
                SchemaError::InvalidSchema(format!(
                    "a handler is registered for type id {id}, which the schema does not define"
                ))
            })?;
            if let Some(fixed) = fixed {
                if t.layout().fixed_size() != fixed {
                    return Err(SchemaError::InvalidSchema(format!(
                        "type {} (id {id}) has a different layout in the schema than its Rust type",
                        t.name()
                    )));
                }
            }
            if id < 4096 {
                if dense.len() <= id as usize {
                    dense.resize(id as usize + 1, None);
                }
                dense[id as usize] = Some(h);
            } else {
                sparse.insert(id, h);
            }
        }
        Ok(Server {
            shared: Arc::new(Shared {
                codec: self.codec,
                dense,
                sparse,
                default: self.default,
            }),
        })
    }
}

/// A typed server; clone-free, serve it on any number of listeners/sockets.
///
/// ```no_run
/// # async fn run() -> netcore_schema::Result<()> {
/// netcore_schema::message! { pub struct Ping = 1 { pub n: u32 [">I"] } }
/// use netcore_schema::{Reply, Schema, Server};
/// let schema = Schema::builder().message::<Ping>().build()?;
/// let server = Server::builder(schema, Default::default())
///     .on(|p: Ping, _| async move { Ok(Some(Reply::typed(&p)?)) })
///     .build()?;
/// let handle = server.bind_tcp("127.0.0.1:0").await?;
/// println!("listening on {}", handle.local_addr());
/// handle.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

/// A running listener. [`shutdown`](Self::shutdown) stops it and its connections and
/// waits for the listener task; dropping the handle stops them too, without waiting.
///
/// ```no_run
/// # async fn f(server: netcore_schema::Server) -> netcore_schema::Result<()> {
/// let handle = server.bind_udp("127.0.0.1:0").await?;
/// let addr = handle.local_addr();
/// handle.shutdown().await;
/// # Ok(()) }
/// ```
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The bound address.
    ///
    /// ```no_run
    /// # fn f(h: &netcore_schema::ServerHandle) { println!("{}", h.local_addr()); }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    /// Stops accepting, closes connections and waits for the accept loop to end.
    ///
    /// ```no_run
    /// # async fn f(h: netcore_schema::ServerHandle) { h.shutdown().await; }
    /// ```
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Server {
    /// Starts a builder; the default handler answers NOT_FOUND.
    ///
    /// ```
    /// let s = netcore_schema::Schema::builder().build().unwrap();
    /// assert!(netcore_schema::Server::builder(s, Default::default()).build().is_ok());
    /// ```
    pub fn builder(schema: impl Into<Arc<Schema>>, config: ProtocolConfig) -> ServerBuilder {
        ServerBuilder {
            codec: Codec::new(schema, config),
            handlers: Vec::new(),
            default: not_found_handler(),
        }
    }

    /// Binds a TCP listener and serves it in a background task.
    ///
    /// ```no_run
    /// # async fn f(s: netcore_schema::Server) -> netcore_schema::Result<()> {
    /// let h = s.bind_tcp("127.0.0.1:0").await?;
    /// # Ok(()) }
    /// ```
    pub async fn bind_tcp(&self, addr: impl ToSocketAddrs) -> Result<ServerHandle> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_tcp(listener)
    }

    /// Serves an existing TCP listener in a background task (call inside a tokio runtime).
    ///
    /// ```no_run
    /// # async fn f(s: netcore_schema::Server) -> netcore_schema::Result<()> {
    /// let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let h = s.serve_tcp(l)?;
    /// # Ok(()) }
    /// ```
    pub fn serve_tcp(&self, listener: TcpListener) -> Result<ServerHandle> {
        let local_addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let shared = self.shared.clone();
        let limit = Arc::new(Semaphore::new(
            shared.codec.config().max_connections().max(1),
        ));
        let task = tokio::spawn(async move {
            let mut stop_rx = stop_rx;
            loop {
                let permit = tokio::select! {
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = stop_rx.changed() => return,
                };
                let accepted = tokio::select! {
                    r = listener.accept() => r,
                    _ = stop_rx.changed() => return,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        let shared = shared.clone();
                        let stop_rx = stop_rx.clone();
                        tokio::spawn(async move {
                            conn::serve_conn(&shared, stream, peer, stop_rx).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        });
        Ok(ServerHandle {
            local_addr,
            stop,
            task,
        })
    }

    /// Binds a UDP socket and serves it in a background task.
    ///
    /// ```no_run
    /// # async fn f(s: netcore_schema::Server) -> netcore_schema::Result<()> {
    /// let h = s.bind_udp("127.0.0.1:0").await?;
    /// # Ok(()) }
    /// ```
    pub async fn bind_udp(&self, addr: impl ToSocketAddrs) -> Result<ServerHandle> {
        let sock = UdpSocket::bind(addr).await?;
        self.serve_udp(sock)
    }

    /// Serves an existing UDP socket: one datagram is one message; replies go to the
    /// sender. Handlers run concurrently (bounded by `max_concurrent_datagrams`).
    ///
    /// ```no_run
    /// # async fn f(s: netcore_schema::Server) -> netcore_schema::Result<()> {
    /// let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    /// let h = s.serve_udp(sock)?;
    /// # Ok(()) }
    /// ```
    pub fn serve_udp(&self, sock: UdpSocket) -> Result<ServerHandle> {
        let local_addr = sock.local_addr()?;
        let (stop, mut stop_rx) = watch::channel(false);
        let shared = self.shared.clone();
        let sock = Arc::new(sock);
        let limit = Arc::new(Semaphore::new(
            shared.codec.config().max_concurrent_datagrams().max(1),
        ));
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let (n, peer) = tokio::select! {
                    r = sock.recv_from(&mut buf) => match r {
                        Ok(x) => x,
                        Err(e) => { tracing::debug!("udp recv error: {e}"); continue; }
                    },
                    _ = stop_rx.changed() => return,
                };
                let data = &buf[..n];
                let started = match shared.codec.decode_datagram(data) {
                    Ok(frame) => shared.start(frame, peer),
                    Err(e) => {
                        let mut out = Vec::new();
                        let id = shared.codec.schema().header().read(data);
                        shared.on_error(&e, Some(peer), id, &mut out);
                        if !out.is_empty() {
                            let _ = sock.send_to(&out, peer).await;
                        }
                        continue;
                    }
                };
                let Some((type_id, fut)) = started else {
                    continue;
                };
                let permit = tokio::select! {
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = stop_rx.changed() => return,
                };
                let shared = shared.clone();
                let sock = sock.clone();
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    let result = fut.await;
                    shared.finish(type_id, result, peer, &mut out);
                    if out.len() > 65507 {
                        let e = SchemaError::DatagramTooLarge { size: out.len() };
                        tracing::warn!("reply to {peer} dropped: {e}");
                    } else if !out.is_empty() {
                        if let Err(e) = sock.send_to(&out, peer).await {
                            tracing::debug!("udp send to {peer} failed: {e}");
                        }
                    }
                    drop(permit);
                });
            }
        });
        Ok(ServerHandle {
            local_addr,
            stop,
            task,
        })
    }
}

impl Shared {
    fn handler(&self, id: u64) -> &Handler {
        let h = if id < self.dense.len() as u64 {
            self.dense[id as usize].as_ref()
        } else {
            self.sparse.get(&id)
        };
        h.unwrap_or(&self.default)
    }

    /// Starts the handler of a frame whose payload is borrowed; `None` for NOT_FOUND.
    pub(crate) fn start(&self, frame: Frame<&[u8]>, peer: SocketAddr) -> Option<(u64, BoxFut)> {
        let (type_id, payload) = match frame {
            Frame::NotFound => return None,
            Frame::Unknown { type_id } => (type_id, &[][..]),
            Frame::Message { type_id, payload } => (type_id, payload),
        };
        let req = RawRequest {
            type_id,
            payload,
            peer,
            schema: self.codec.schema(),
        };
        Some((type_id, (self.handler(type_id))(req)))
    }

    /// Encodes a handler's outcome: its reply, or what the error handler answers.
    pub(crate) fn finish(
        &self,
        type_id: u64,
        result: Result<Option<Reply>>,
        peer: SocketAddr,
        out: &mut Vec<u8>,
    ) {
        match result {
            Ok(Some(reply)) => {
                if let Err(e) = self.codec.encode_reply(&reply, out) {
                    tracing::warn!("cannot encode reply to {peer}: {e}");
                }
            }
            Ok(None) => {}
            Err(e) => self.on_error(&e, Some(peer), Some(type_id), out),
        }
    }

    pub(crate) fn on_error(
        &self,
        e: &SchemaError,
        peer: Option<SocketAddr>,
        type_id: Option<u64>,
        out: &mut Vec<u8>,
    ) {
        tracing::debug!("message from {peer:?} dropped: {e}");
        if let Some(h) = self.codec.config().error_handler() {
            if let Some(reply) = h(e, &ErrorContext { peer, type_id }) {
                if let Err(e2) = self.codec.encode_reply(&reply, out) {
                    tracing::warn!("cannot encode error reply: {e2}");
                }
            }
        }
    }
}
