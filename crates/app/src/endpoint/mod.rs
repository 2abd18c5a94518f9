//! [`Endpoint`]: the application over one or many connections — serves the router's
//! routes to every peer and sends requests to them (symmetric: both ends of a
//! connection can do both), with bounded handler concurrency, events, a scheduler and
//! a cache, and a graceful stop.
//!
//! ```
//! use netcore::{Endpoint, Router};
//! use netcore_runtime::transport::mem_pair;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), netcore::AppError> {
//! let server = Endpoint::new(Router::new().route("echo", |body: bytes::Bytes| async move { body }));
//! let client = Endpoint::new(Router::new());
//! let (a, b) = mem_pair(1 << 16);
//! server.add_transport(b);
//! client.add_transport(a);
//! let reply = client.request("echo", "hello").await?;
//! assert_eq!(reply.bytes().await?, "hello");
//! client.stop(std::time::Duration::from_secs(1)).await;
//! server.stop(std::time::Duration::from_secs(1)).await;
//! # Ok(()) }
//! ```

mod client;
mod serve;

pub use client::{Outgoing, PendingRequest, Reply, RequestCanceller};

use netcore_runtime::transport::{self, Listener, Transport, TransportAddr, TransportError};
use netcore_runtime::{ConnectionId, Pipe, PipeConfig, PipeError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::Cache;
use crate::error::AppError;
use crate::events::{Event, Events};
use crate::extract::DEFAULT_BODY_LIMIT;
use crate::request::{ConnectionInfo, Extensions};
use crate::routing::{Route, Router};
use crate::scheduler::Scheduler;
use serve::ConnShared;

/// Settings and parts of an [`Endpoint`]; finish with [`build`](Self::build).
///
/// ```
/// use netcore::{Endpoint, Router};
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ep = Endpoint::builder()
///     .router(Router::new())
///     .max_workers(4)                 // the seed's max_workers
///     .max_workers_per_connection(2)
///     .request_timeout(Some(Duration::from_secs(10)))
///     .state(String::from("shared"))
///     .build();
/// assert_eq!(ep.max_workers(), 4);
/// # }
/// ```
#[derive(Debug)]
pub struct EndpointBuilder {
    router: Router,
    max_workers: usize,
    max_workers_per_connection: usize,
    request_timeout: Option<Duration>,
    body_limit: u64,
    pipe_config: Option<PipeConfig>,
    cache_capacity: u64,
    cache_ttl: Option<Duration>,
    extensions: Extensions,
    events: Option<Events>,
}

impl Default for EndpointBuilder {
    fn default() -> Self {
        EndpointBuilder {
            router: Router::new(),
            max_workers: 256,
            max_workers_per_connection: 64,
            request_timeout: Some(Duration::from_secs(30)),
            body_limit: DEFAULT_BODY_LIMIT,
            pipe_config: None,
            cache_capacity: 100_000,
            cache_ttl: None,
            extensions: Extensions::new(),
            events: None,
        }
    }
}

impl EndpointBuilder {
    /// The routes served (default: none, every request gets `NO_ROUTE`).
    ///
    /// ```
    /// let b = netcore::Endpoint::builder().router(netcore::Router::new());
    /// ```
    pub fn router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// Handlers running at once on the whole endpoint (default 256; at least 1). Excess
    /// requests wait unread, so their connection's credit stops their senders.
    ///
    /// ```
    /// let b = netcore::Endpoint::builder().max_workers(8);
    /// ```
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = n.max(1);
        self
    }

    /// Handlers running at once per connection (default 64; at least 1).
    ///
    /// ```
    /// let b = netcore::Endpoint::builder().max_workers_per_connection(4);
    /// ```
    pub fn max_workers_per_connection(mut self, n: usize) -> Self {
        self.max_workers_per_connection = n.max(1);
        self
    }

    /// Default deadline of requests sent from this endpoint (default 30 s; `None`: wait
    /// forever). On expiry the request is cancelled on the peer.
    ///
    /// ```
    /// let b = netcore::Endpoint::builder().request_timeout(None);
    /// ```
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Largest body the body extractors and [`Reply::bytes`] collect into memory
    /// (default 16 MiB); stream larger ones.
    ///
    /// ```
    /// let b = netcore::Endpoint::builder().body_limit(1 << 20);
    /// ```
    pub fn body_limit(mut self, limit: u64) -> Self {
        self.body_limit = limit;
        self
    }

    /// Connection settings for transports the endpoint wraps itself (`connect`,
    /// `listen`, `add_transport`); default: what the transport's link hint calls for.
    ///
    /// ```
    /// let b = netcore::Endpoint::builder().pipe_config(netcore_runtime::PipeConfig::serial(11_520));
    /// ```
    pub fn pipe_config(mut self, config: PipeConfig) -> Self {
        self.pipe_config = Some(config);
        self
    }

    /// Cache size (entries) and default TTL (default 100 000 entries, no TTL).
    ///
    /// ```
    /// let b = netcore::Endpoint::builder().cache(1000, Some(std::time::Duration::from_secs(300)));
    /// ```
    pub fn cache(mut self, capacity: u64, default_ttl: Option<Duration>) -> Self {
        self.cache_capacity = capacity;
        self.cache_ttl = default_ttl;
        self
    }

    /// Shared state for every route, read with [`State`](crate::State).
    ///
    /// ```
    /// let b = netcore::Endpoint::builder().state(42u32);
    /// ```
    pub fn state<S: Clone + Send + Sync + 'static>(mut self, state: S) -> Self {
        self.extensions.insert(state);
        self
    }

    /// Uses an event bus made beforehand, so that listeners registered on it see
    /// [`Event::Started`] too (default: a new bus).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let events = netcore::Events::new();
    /// events.on("start", |_: &netcore::Event| println!("Service started"));
    /// let ep = netcore::Endpoint::builder().events(events).build();
    /// # }
    /// ```
    pub fn events(mut self, events: Events) -> Self {
        self.events = Some(events);
        self
    }

    /// Starts the endpoint (emits [`Event::Started`]). Call inside a tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::builder().build();
    /// assert!(!ep.is_stopped());
    /// # }
    /// ```
    pub fn build(self) -> Endpoint {
        let events = self.events.unwrap_or_default();
        let (stopped, _) = watch::channel(false);
        let ep = Endpoint {
            inner: Arc::new(Inner {
                service: Mutex::new(self.router.into_route()),
                workers: Arc::new(Semaphore::new(self.max_workers)),
                max_workers: self.max_workers,
                max_workers_per_connection: self.max_workers_per_connection,
                request_timeout: self.request_timeout,
                body_limit: self.body_limit,
                pipe_config: self.pipe_config,
                connections: Mutex::new(BTreeMap::new()),
                events: events.clone(),
                scheduler: Scheduler::new(),
                cache: Cache::new(self.cache_capacity, self.cache_ttl),
                extensions: self.extensions,
                stopping: CancellationToken::new(),
                hard_stop: CancellationToken::new(),
                handlers: TaskTracker::new(),
                background: TaskTracker::new(),
                stopped,
            }),
        };
        tracing::debug!("endpoint started");
        events.emit_event(Event::Started);
        ep
    }
}

fn parse_addr(addr: &str) -> Result<TransportAddr, AppError> {
    addr.parse::<TransportAddr>()
        .map_err(|e| AppError::Pipe(PipeError::from(TransportError::from(e))))
}

pub(crate) struct Inner {
    service: Mutex<Route>,
    workers: Arc<Semaphore>,
    max_workers: usize,
    max_workers_per_connection: usize,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) body_limit: u64,
    pipe_config: Option<PipeConfig>,
    connections: Mutex<BTreeMap<ConnectionId, Arc<ConnShared>>>,
    events: Events,
    scheduler: Scheduler,
    cache: Cache,
    extensions: Extensions,
    /// Stop taking new requests (they are refused with `SHUTTING_DOWN`).
    stopping: CancellationToken,
    /// Abandon running handlers (their callers get `SHUTTING_DOWN`).
    hard_stop: CancellationToken,
    handlers: TaskTracker,
    background: TaskTracker,
    stopped: watch::Sender<bool>,
}

/// The application endpoint. Cheap to clone (clones share everything); see the
/// [module docs](self).
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("connections", &self.connections().len())
            .field("stopped", &self.is_stopped())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A builder with the default settings.
    ///
    /// ```
    /// let b = netcore::Endpoint::builder();
    /// ```
    pub fn builder() -> EndpointBuilder {
        EndpointBuilder::default()
    }

    /// An endpoint serving `router` with the default settings (started at once).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// assert!(ep.connections().is_empty());
    /// # }
    /// ```
    pub fn new(router: Router) -> Endpoint {
        Endpoint::builder().router(router).build()
    }

    /// The endpoint-wide handler bound.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert_eq!(netcore::Endpoint::builder().max_workers(3).build().max_workers(), 3);
    /// # }
    /// ```
    pub fn max_workers(&self) -> usize {
        self.inner.max_workers
    }

    /// The event bus.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// ep.events().on("stop", |_: &netcore::Event| println!("stopped"));
    /// # }
    /// ```
    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    /// The scheduler; its tasks stop when the endpoint stops.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let h = ep.scheduler().schedule(|| async {}, netcore::Schedule::every(std::time::Duration::from_secs(60)));
    /// # }
    /// ```
    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.scheduler
    }

    /// The cache.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// ep.cache().set("k", 1u8);
    /// assert_eq!(ep.cache().get::<u8>("k"), Some(1));
    /// # }
    /// ```
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// Adds a connection the caller built. Set `manual_close` in its [`PipeConfig`] so
    /// that replies still in progress when the peer goes away are delivered (the
    /// endpoint then closes it after its handlers finish).
    ///
    /// ```
    /// use netcore_runtime::{Pipe, PipeConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let (a, _b) = netcore_runtime::transport::mem_pair(1024);
    /// let info = ep.add_pipe(Pipe::new(a, PipeConfig { manual_close: true, ..PipeConfig::default() }));
    /// assert_eq!(ep.connections()[0].id, info.id);
    /// # }
    /// ```
    pub fn add_pipe(&self, pipe: Pipe) -> ConnectionInfo {
        let info = Arc::new(ConnectionInfo::new(pipe.id(), pipe.info().clone()));
        let conn = Arc::new(ConnShared::new(pipe, info.clone()));
        if self.inner.stopping.is_cancelled() {
            conn.pipe.close();
            return (*info).clone();
        }
        self.lock_connections().insert(info.id, conn.clone());
        self.inner
            .events
            .emit_event(Event::ConnectionOpened((*info).clone()));
        let service = self
            .inner
            .service
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.inner
            .background
            .spawn(serve::serve_connection(self.clone(), conn, service));
        (*info).clone()
    }

    /// Adds a connection over `transport` with the endpoint's connection settings.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let (a, _b) = netcore_runtime::transport::mem_pair(1024);
    /// let info = ep.add_transport(a);
    /// # }
    /// ```
    pub fn add_transport(&self, transport: Transport) -> ConnectionInfo {
        let mut config = self
            .inner
            .pipe_config
            .clone()
            .unwrap_or_else(|| PipeConfig::for_transport(transport.info()));
        config.manual_close = true;
        self.add_pipe(Pipe::new(transport, config))
    }

    /// Connects to a text address (`tcp://127.0.0.1:7000`, `serial:///dev/ttyUSB0?baud=115200`,
    /// …), waits for the handshake and adds the connection.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), netcore::AppError> {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let conn = ep.connect("tcp://127.0.0.1:8080").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(&self, addr: &str) -> Result<ConnectionInfo, AppError> {
        let addr = parse_addr(addr)?;
        let t = transport::connect(&addr).await.map_err(PipeError::from)?;
        let info = self.add_transport(t);
        if let Some(pipe) = self.pipe(info.id) {
            pipe.ready().await?;
        }
        Ok(info)
    }

    /// Listens on a text address and accepts connections in the background until the
    /// endpoint stops; returns the bound address (port 0 resolved).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), netcore::AppError> {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let addr = ep.listen("tcp://127.0.0.1:0").await?;
    /// assert!(addr.to_string().starts_with("tcp://127.0.0.1:"));
    /// ep.stop(std::time::Duration::from_secs(1)).await;
    /// # Ok(()) }
    /// ```
    pub async fn listen(&self, addr: &str) -> Result<TransportAddr, AppError> {
        let addr = parse_addr(addr)?;
        let listener = transport::listen(&addr).await.map_err(PipeError::from)?;
        let bound = listener.local_addr().unwrap_or(addr);
        let ep = self.clone();
        self.inner
            .background
            .spawn(async move { ep.serve(listener).await });
        Ok(bound)
    }

    /// Accepts connections from `listener` until the endpoint stops or the listener
    /// is exhausted (the "block until stopped" form of [`listen`](Self::listen)).
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let listener = netcore_runtime::transport::listen(&"tcp://127.0.0.1:8080".parse()?).await?;
    /// ep.serve(listener).await;
    /// # Ok(()) }
    /// ```
    pub async fn serve(&self, mut listener: Listener) {
        loop {
            let accepted = tokio::select! {
                t = listener.accept() => t,
                _ = self.inner.stopping.cancelled() => return,
            };
            match accepted {
                Ok(t) => {
                    self.add_transport(t);
                }
                Err(TransportError::ListenerExhausted { .. }) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    self.inner.events.emit_event(Event::Error {
                        connection: None,
                        message: format!("accepting a connection failed: {e}"),
                    });
                    // Transient errors (e.g. out of file descriptors): back off a little.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn lock_connections(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<ConnectionId, Arc<ConnShared>>> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn conn(&self, id: Option<ConnectionId>) -> Result<Arc<ConnShared>, AppError> {
        let conns = self.lock_connections();
        match id {
            Some(id) => conns
                .get(&id)
                .cloned()
                .ok_or(AppError::UnknownConnection(id)),
            None => conns.values().next().cloned().ok_or(AppError::NoConnection),
        }
    }

    pub(crate) fn forget(&self, id: ConnectionId) {
        self.lock_connections().remove(&id);
    }

    /// The current connections, oldest first.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert!(netcore::Endpoint::new(netcore::Router::new()).connections().is_empty());
    /// # }
    /// ```
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.lock_connections()
            .values()
            .map(|c| (*c.info).clone())
            .collect()
    }

    /// One connection's info.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// assert!(ep.connection(netcore_runtime::ConnectionId(9999)).is_none());
    /// # }
    /// ```
    pub fn connection(&self, id: ConnectionId) -> Option<ConnectionInfo> {
        self.lock_connections().get(&id).map(|c| (*c.info).clone())
    }

    /// One connection's [`Pipe`] (for its state, progress, or raw messages).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let (a, _b) = netcore_runtime::transport::mem_pair(1024);
    /// let id = ep.add_transport(a).id;
    /// assert_eq!(ep.pipe(id).unwrap().id(), id);
    /// # }
    /// ```
    pub fn pipe(&self, id: ConnectionId) -> Option<Pipe> {
        self.lock_connections().get(&id).map(|c| c.pipe.clone())
    }

    /// Removes a connection gracefully: new requests on it are refused, running
    /// handlers finish (for at most `deadline`), then it closes. Returns whether it was
    /// a connection of this endpoint.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let (a, _b) = netcore_runtime::transport::mem_pair(1024);
    /// let id = ep.add_transport(a).id;
    /// assert!(ep.remove(id, std::time::Duration::from_secs(1)));
    /// # }
    /// ```
    pub fn remove(&self, id: ConnectionId, deadline: Duration) -> bool {
        let Some(conn) = self.lock_connections().get(&id).cloned() else {
            return false;
        };
        conn.draining.cancel();
        self.inner.background.spawn(async move {
            let _ = tokio::time::timeout(deadline, conn.wait_idle()).await;
            conn.pipe.close();
        });
        true
    }

    /// Stops the endpoint gracefully: new requests are refused with
    /// [`SHUTTING_DOWN`](crate::codes::SHUTTING_DOWN), running handlers get up to
    /// `deadline` to finish (then they are dropped and their callers get
    /// `SHUTTING_DOWN`), connections close, the scheduler stops, and
    /// [`Event::Stopped`] is emitted. Idempotent.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// ep.stop(std::time::Duration::from_secs(1)).await;
    /// assert!(ep.is_stopped());
    /// # }
    /// ```
    pub async fn stop(&self, deadline: Duration) {
        if self.inner.stopping.is_cancelled() {
            self.stopped().await;
            return;
        }
        let start = tokio::time::Instant::now();
        self.inner.stopping.cancel();
        self.inner.scheduler.shutdown();
        let conns: Vec<Arc<ConnShared>> = self.lock_connections().values().cloned().collect();
        for c in &conns {
            c.draining.cancel();
        }
        self.inner.handlers.close();
        if tokio::time::timeout(deadline, self.inner.handlers.wait())
            .await
            .is_err()
        {
            tracing::warn!("handlers still running at the stop deadline; dropping them");
            self.inner.hard_stop.cancel();
            self.inner.handlers.wait().await;
        }
        for c in &conns {
            c.pipe.close();
        }
        let linger = deadline
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(500));
        for c in &conns {
            if tokio::time::timeout(linger, c.pipe.closed()).await.is_err() {
                c.pipe
                    .abort(crate::codes::SHUTTING_DOWN, "endpoint stopped");
            }
        }
        self.inner.background.close();
        let _ = tokio::time::timeout(linger, self.inner.background.wait()).await;
        self.inner.events.emit_event(Event::Stopped);
        self.inner.events.flush().await;
        self.inner.stopped.send_replace(true);
        tracing::debug!("endpoint stopped");
    }

    /// Waits until the endpoint has stopped (run until stopped).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let e2 = ep.clone();
    /// tokio::spawn(async move { e2.stop(std::time::Duration::from_secs(1)).await });
    /// ep.stopped().await;
    /// # }
    /// ```
    pub async fn stopped(&self) {
        let mut rx = self.inner.stopped.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Whether [`stop`](Self::stop) has completed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert!(!netcore::Endpoint::new(netcore::Router::new()).is_stopped());
    /// # }
    /// ```
    pub fn is_stopped(&self) -> bool {
        *self.inner.stopped.borrow()
    }
}
