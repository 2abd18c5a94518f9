//! A blocking facade of an endpoint's client side, for code without async (as
//! `reqwest::blocking`): a background tokio runtime runs the [`Endpoint`], and each call
//! blocks the calling thread until its answer comes.
//!
//! The client can serve routes too (give it a router): the peer may call it back.
//!
//! Do not call these methods from inside an async runtime (they block the thread;
//! tokio refuses to nest runtimes).
//!
//! ```no_run
//! use netcore::blocking::Client;
//! let client = Client::connect("tcp://127.0.0.1:8080")?;
//! let reply = client.request("message1", r#"{"data": "First message"}"#)?;
//! println!("{}", reply.text()?);
//! client.send("message2", "fire and forget")?;
//! # Ok::<(), netcore::AppError>(())
//! ```

use bytes::Bytes;
use netcore_core::metadata::Headers;
use netcore_runtime::transport::Transport;
use netcore_runtime::{Body, ConnectionId, PipeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

use crate::endpoint::{Endpoint, EndpointBuilder};
use crate::error::AppError;
use crate::routing::Router;

/// Options of a blocking [`Client`].
///
/// ```no_run
/// use netcore::blocking::Client;
/// use netcore::Router;
/// let client = Client::builder()
///     .router(Router::new().route("ping", || async { "pong" }))
///     .request_timeout(Some(std::time::Duration::from_secs(5)))
///     .connect("tcp://127.0.0.1:8080")?;
/// # Ok::<(), netcore::AppError>(())
/// ```
#[derive(Debug, Default)]
pub struct ClientBuilder {
    endpoint: EndpointBuilder,
}

impl ClientBuilder {
    /// Routes the client serves to its peer (default: none).
    ///
    /// ```
    /// let b = netcore::blocking::Client::builder().router(netcore::Router::new());
    /// ```
    pub fn router(mut self, router: Router) -> Self {
        self.endpoint = self.endpoint.router(router);
        self
    }

    /// Default request deadline (default 30 s).
    ///
    /// ```
    /// let b = netcore::blocking::Client::builder().request_timeout(None);
    /// ```
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.endpoint = self.endpoint.request_timeout(timeout);
        self
    }

    /// Connection settings (default: what the transport calls for).
    ///
    /// ```
    /// let b = netcore::blocking::Client::builder().pipe_config(netcore_runtime::PipeConfig::serial(11_520));
    /// ```
    pub fn pipe_config(mut self, config: PipeConfig) -> Self {
        self.endpoint = self.endpoint.pipe_config(config);
        self
    }

    fn start(self) -> Result<(tokio::runtime::Runtime, Endpoint), AppError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("netcore-blocking")
            .enable_all()
            .build()
            .map_err(|e| {
                AppError::Pipe(netcore_runtime::PipeError::Io {
                    action: "start the blocking client's runtime".into(),
                    source: std::sync::Arc::new(e),
                })
            })?;
        let ep = {
            let _guard = rt.enter();
            self.endpoint.build()
        };
        Ok((rt, ep))
    }

    /// Connects to a text address (`tcp://…`, `serial://…`, `unix://…`, …).
    ///
    /// ```no_run
    /// let c = netcore::blocking::Client::builder().connect("serial:///dev/ttyUSB0?baud=115200")?;
    /// # Ok::<(), netcore::AppError>(())
    /// ```
    pub fn connect(self, addr: &str) -> Result<Client, AppError> {
        let (rt, ep) = self.start()?;
        let info = rt.block_on(ep.connect(addr))?;
        Ok(Client::new(rt, ep, info.id))
    }

    /// The seed's `Pipe(recv_func, send_func)`: a connection over two blocking
    /// functions (e.g. a serial device's read and write).
    ///
    /// ```no_run
    /// use std::io::{Read, Write};
    /// let stream = std::net::TcpStream::connect("127.0.0.1:8080").unwrap();
    /// let (mut r, mut w) = (stream.try_clone().unwrap(), stream);
    /// let client = netcore::blocking::Client::builder()
    ///     .from_fns(move |buf| r.read(buf), move |data| w.write_all(data))?;
    /// # Ok::<(), netcore::AppError>(())
    /// ```
    pub fn from_fns<R, S>(self, recv: R, send: S) -> Result<Client, AppError>
    where
        R: FnMut(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
        S: FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
    {
        let (rt, ep) = self.start()?;
        let t = {
            let _guard = rt.enter();
            netcore_runtime::transport::from_fns(recv, send, Default::default())
                .map_err(netcore_runtime::PipeError::from)?
        };
        Client::over(rt, ep, t)
    }

    /// A connection over a transport made by `make` inside the client's runtime (for
    /// transports that need one, like `mem_pair` or `SimLink`).
    ///
    /// ```
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let client = netcore::blocking::Client::builder().transport(move || {
    ///     let (a, b) = netcore_runtime::transport::mem_pair(1024);
    ///     tx.send(b).unwrap();
    ///     a
    /// });
    /// assert!(client.is_ok());
    /// ```
    pub fn transport<F: FnOnce() -> Transport>(self, make: F) -> Result<Client, AppError> {
        let (rt, ep) = self.start()?;
        let t = {
            let _guard = rt.enter();
            make()
        };
        Client::over(rt, ep, t)
    }
}

/// A blocking client: requests and sends from non-async code.
///
/// ```
/// use netcore::blocking::Client;
/// // Against a server that does not exist: a typed error, at once.
/// assert!(Client::connect("tcp://127.0.0.1:1").is_err());
/// ```
#[derive(Debug)]
pub struct Client {
    rt: Option<tokio::runtime::Runtime>,
    ep: Endpoint,
    conn: ConnectionId,
}

impl Client {
    fn new(rt: tokio::runtime::Runtime, ep: Endpoint, conn: ConnectionId) -> Client {
        Client {
            rt: Some(rt),
            ep,
            conn,
        }
    }

    fn over(rt: tokio::runtime::Runtime, ep: Endpoint, t: Transport) -> Result<Client, AppError> {
        let info = {
            let _guard = rt.enter();
            ep.add_transport(t)
        };
        Ok(Client::new(rt, ep, info.id))
    }

    /// A builder for options.
    ///
    /// ```
    /// let b = netcore::blocking::Client::builder();
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Connects with the default options.
    ///
    /// ```no_run
    /// let c = netcore::blocking::Client::connect("tcp://127.0.0.1:8080")?;
    /// # Ok::<(), netcore::AppError>(())
    /// ```
    pub fn connect(addr: &str) -> Result<Client, AppError> {
        Client::builder().connect(addr)
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            None => unreachable!("the runtime is only taken in Drop"),
        }
    }

    /// The endpoint behind the client (its events, cache, scheduler, async API).
    ///
    /// ```no_run
    /// # fn f(c: netcore::blocking::Client) {
    /// c.endpoint().cache().set("k", 1u8);
    /// # }
    /// ```
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// The connection's id.
    ///
    /// ```no_run
    /// # fn f(c: netcore::blocking::Client) {
    /// println!("{}", c.connection());
    /// # }
    /// ```
    pub fn connection(&self) -> ConnectionId {
        self.conn
    }

    /// Sends a request and blocks until its reply (default deadline). A handler error
    /// or panic on the peer is an [`AppError::Remote`] — never a silent wait.
    ///
    /// ```no_run
    /// # fn f(c: netcore::blocking::Client) -> Result<(), netcore::AppError> {
    /// let reply = c.request("user/list", "")?;
    /// # Ok(()) }
    /// ```
    pub fn request(&self, route: &str, body: impl Into<Body>) -> Result<BlockingReply, AppError> {
        let out = self.ep.message(route).to(self.conn);
        self.finish(out, body.into())
    }

    /// Like [`request`](Self::request) with its own deadline.
    ///
    /// ```no_run
    /// # fn f(c: netcore::blocking::Client) -> Result<(), netcore::AppError> {
    /// let reply = c.request_timeout("slow", "", std::time::Duration::from_millis(100));
    /// # Ok(()) }
    /// ```
    pub fn request_timeout(
        &self,
        route: &str,
        body: impl Into<Body>,
        timeout: Duration,
    ) -> Result<BlockingReply, AppError> {
        let out = self.ep.message(route).to(self.conn).timeout(timeout);
        self.finish(out, body.into())
    }

    fn finish(&self, out: crate::Outgoing, body: Body) -> Result<BlockingReply, AppError> {
        self.block_on(async move {
            let reply = out.request(body).await?;
            let headers = reply.headers().clone();
            let body = reply.bytes().await?;
            Ok(BlockingReply { headers, body })
        })
    }

    /// Sends `value` as JSON and decodes the JSON reply.
    ///
    /// ```no_run
    /// # fn f(c: netcore::blocking::Client) -> Result<(), netcore::AppError> {
    /// let users: serde_json::Value = c.request_json("user/list", &serde_json::json!({"page": 1}))?;
    /// # Ok(()) }
    /// ```
    pub fn request_json<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        route: &str,
        value: &T,
    ) -> Result<R, AppError> {
        let out = self.ep.message(route).to(self.conn);
        self.block_on(async move { out.json(value).await?.json().await })
    }

    /// Sends a one-way message and blocks until it is fully sent.
    ///
    /// ```no_run
    /// # fn f(c: netcore::blocking::Client) -> Result<(), netcore::AppError> {
    /// c.send("log", "started")?;
    /// # Ok(()) }
    /// ```
    pub fn send(&self, route: &str, body: impl Into<Body>) -> Result<(), AppError> {
        let out = self.ep.message(route).to(self.conn);
        let body = body.into();
        self.block_on(async move {
            let handle = out.send(body).await?;
            handle.finished().await?;
            Ok(())
        })
    }

    /// Stops the endpoint gracefully (at most `deadline`) and shuts the runtime down.
    ///
    /// ```no_run
    /// # fn f(c: netcore::blocking::Client) {
    /// c.close(std::time::Duration::from_secs(1));
    /// # }
    /// ```
    pub fn close(mut self, deadline: Duration) {
        if let Some(rt) = self.rt.take() {
            rt.block_on(self.ep.stop(deadline));
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                rt.block_on(self.ep.stop(Duration::from_secs(1)));
            }
            rt.shutdown_background();
        }
    }
}

/// A reply received by the blocking client, in memory.
///
/// ```
/// let r = netcore::blocking::BlockingReply::new(Default::default(), "hi".into());
/// assert_eq!(r.text().unwrap(), "hi");
/// ```
#[derive(Debug, Clone)]
pub struct BlockingReply {
    headers: Headers,
    body: Bytes,
}

impl BlockingReply {
    /// A reply from parts.
    ///
    /// ```
    /// let r = netcore::blocking::BlockingReply::new(Default::default(), bytes::Bytes::new());
    /// ```
    pub fn new(headers: Headers, body: Bytes) -> BlockingReply {
        BlockingReply { headers, body }
    }

    /// The headers.
    ///
    /// ```
    /// # let r = netcore::blocking::BlockingReply::new(Default::default(), "x".into());
    /// assert!(r.headers().is_empty());
    /// ```
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body.
    ///
    /// ```
    /// # let r = netcore::blocking::BlockingReply::new(Default::default(), "x".into());
    /// assert_eq!(r.bytes(), "x");
    /// ```
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as UTF-8 text.
    ///
    /// ```
    /// # let r = netcore::blocking::BlockingReply::new(Default::default(), "x".into());
    /// assert_eq!(r.text().unwrap(), "x");
    /// ```
    pub fn text(&self) -> Result<String, AppError> {
        String::from_utf8(self.body.to_vec()).map_err(|e| AppError::Codec {
            action: "decode the reply as UTF-8",
            message: e.to_string(),
        })
    }

    /// The body decoded from JSON.
    ///
    /// ```
    /// # let r = netcore::blocking::BlockingReply::new(Default::default(), "[1]".into());
    /// let v: Vec<u8> = r.json().unwrap();
    /// assert_eq!(v, vec![1]);
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AppError> {
        serde_json::from_slice(&self.body).map_err(|e| AppError::Codec {
            action: "decode the reply as JSON",
            message: e.to_string(),
        })
    }
}
