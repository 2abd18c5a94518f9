//! [`EndpointBuilder`]: the settings and parts of an [`Endpoint`].

use netcore_runtime::PipeConfig;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Endpoint, Inner};
use crate::cache::Cache;
use crate::events::{Event, Events};
use crate::extract::DEFAULT_BODY_LIMIT;
use crate::request::Extensions;
use crate::routing::Router;
use crate::scheduler::Scheduler;

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
    max_pending_per_connection: usize,
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
            max_pending_per_connection: 1024,
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
    /// requests wait (see [`max_pending_per_connection`](Self::max_pending_per_connection));
    /// their bodies are read only up to the connection's per-message buffer, so the
    /// senders of large bodies are held back by credit.
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

    /// Requests that may wait for a handler slot per connection (default 1024). Beyond
    /// that a request is answered at once with [`OVERLOADED`](crate::codes::OVERLOADED),
    /// so a flood cannot grow memory without bound: a waiting request holds at most
    /// `PipeConfig::body_buffer` bytes of its body (a larger body holds its sender's
    /// credit instead), so waiting requests take at most `n × body_buffer` per connection.
    ///
    /// ```
    /// let b = netcore::Endpoint::builder().max_pending_per_connection(1024);
    /// ```
    pub fn max_pending_per_connection(mut self, n: usize) -> Self {
        self.max_pending_per_connection = n;
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

    /// Largest body the body extractors and [`Reply::bytes`](crate::Reply::bytes) collect into memory
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
                max_pending_per_connection: self.max_pending_per_connection,
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
