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

mod builder;
mod client;
mod serve;

pub use builder::EndpointBuilder;
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
use crate::request::{ConnectionInfo, Extensions};
use crate::routing::{Route, Router};
use crate::scheduler::Scheduler;
use serve::ConnShared;

fn parse_addr(addr: &str) -> Result<TransportAddr, AppError> {
    addr.parse::<TransportAddr>()
        .map_err(|e| AppError::Pipe(PipeError::from(TransportError::from(e))))
}

pub(crate) struct Inner {
    service: Mutex<Route>,
    workers: Arc<Semaphore>,
    max_workers: usize,
    max_workers_per_connection: usize,
    max_pending_per_connection: usize,
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
