//! Events: typed lifecycle events of an endpoint plus custom named events, with
//! [`Events::on`], [`once`](Events::once), [`off`](Events::off) and
//! [`emit`](Events::emit).
//!
//! Events are delivered in emission order by one dispatcher task, so a slow listener
//! delays later events but never the endpoint. A listener that returns an error or
//! panics is logged and stays registered; nothing it does can crash the endpoint.

use futures::future::BoxFuture;
use futures::FutureExt;
use netcore_core::{ErrorCode, MessageId};
use netcore_runtime::ConnectionId;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

use crate::request::ConnectionInfo;

/// Something that happened. Lifecycle events are emitted by the endpoint; `Custom`
/// ones by [`Events::emit`].
///
/// ```
/// let ev = netcore::Event::Custom { name: "initialize".into(), data: serde_json::json!(1) };
/// assert_eq!(ev.name(), "initialize");
/// assert_eq!(netcore::Event::Started.name(), "start");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// The endpoint started (`"start"`).
    Started,
    /// The endpoint stopped (`"stop"`).
    Stopped,
    /// A connection was added (`"connection_opened"`).
    ConnectionOpened(ConnectionInfo),
    /// A connection ended (`"connection_closed"`); `error` is `None` after a graceful close.
    ConnectionClosed {
        /// The connection.
        id: ConnectionId,
        /// Why it ended, if not gracefully.
        error: Option<String>,
    },
    /// A request or one-way message arrived (`"request"`).
    RequestReceived {
        /// Its connection.
        connection: ConnectionId,
        /// The peer's message id.
        id: MessageId,
        /// The route.
        route: String,
    },
    /// A reply was handed to the connection (`"response"`).
    ResponseSent {
        /// Its connection.
        connection: ConnectionId,
        /// The request it answers.
        id: MessageId,
        /// The request's route.
        route: String,
        /// The error code, for error replies.
        error: Option<ErrorCode>,
    },
    /// The peer cancelled a request; its handler was dropped (`"cancelled"`).
    MessageCancelled {
        /// Its connection.
        connection: ConnectionId,
        /// The peer's message id.
        id: MessageId,
        /// The route.
        route: String,
    },
    /// A transport or protocol error (`"error"`).
    Error {
        /// The connection concerned, if any.
        connection: Option<ConnectionId>,
        /// What went wrong.
        message: String,
    },
    /// A custom event.
    Custom {
        /// Its name.
        name: String,
        /// Its payload.
        data: serde_json::Value,
    },
}

impl Event {
    /// The name listeners subscribe to.
    ///
    /// ```
    /// assert_eq!(netcore::Event::Stopped.name(), "stop");
    /// ```
    pub fn name(&self) -> &str {
        match self {
            Event::Started => "start",
            Event::Stopped => "stop",
            Event::ConnectionOpened(_) => "connection_opened",
            Event::ConnectionClosed { .. } => "connection_closed",
            Event::RequestReceived { .. } => "request",
            Event::ResponseSent { .. } => "response",
            Event::MessageCancelled { .. } => "cancelled",
            Event::Error { .. } => "error",
            Event::Custom { name, .. } => name,
        }
    }

    /// The payload of a custom event (`Null` for lifecycle events).
    ///
    /// ```
    /// assert!(netcore::Event::Started.data().is_null());
    /// ```
    pub fn data(&self) -> &serde_json::Value {
        static NULL: serde_json::Value = serde_json::Value::Null;
        match self {
            Event::Custom { data, .. } => data,
            _ => &NULL,
        }
    }
}

/// Name of the wildcard subscription that receives every event.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let events = netcore::Events::new();
/// events.on(netcore::events::ALL_EVENTS, |ev: &netcore::Event| println!("{}", ev.name()));
/// # }
/// ```
pub const ALL_EVENTS: &str = "*";

/// What a listener may return: `()` or a `Result` whose error is logged.
///
/// ```
/// use netcore::events::ListenerResult;
/// assert_eq!(().into_failure(), None);
/// assert_eq!(Err::<(), _>("bad").into_failure(), Some("bad".to_string()));
/// ```
pub trait ListenerResult {
    /// The error message, if the listener failed.
    fn into_failure(self) -> Option<String>;
}

impl ListenerResult for () {
    fn into_failure(self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Display> ListenerResult for Result<(), E> {
    fn into_failure(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

type ListenerFn = Arc<dyn Fn(Event) -> BoxFuture<'static, Option<String>> + Send + Sync>;

/// Identifies a listener, for [`Events::off_listener`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let events = netcore::Events::new();
/// let a: netcore::ListenerId = events.on("x", |_: &netcore::Event| {});
/// let b = events.on("x", |_: &netcore::Event| {});
/// assert_ne!(a, b);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

struct Listener {
    id: ListenerId,
    name: String,
    once: bool,
    f: ListenerFn,
}

enum Msg {
    Emit(Event),
    Flush(oneshot::Sender<()>),
}

/// The event bus of an endpoint ([`Endpoint::events`](crate::Endpoint::events)), or a
/// standalone one. Cheap to clone; create it inside a tokio runtime.
///
/// ```
/// use netcore::{Events, Event};
/// use std::sync::{Arc, Mutex};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let events = Events::new();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// events.on("greet", move |ev: &Event| s.lock().unwrap().push(ev.data().to_string()));
/// events.emit("greet", serde_json::json!("hi"));
/// events.flush().await;
/// assert_eq!(*seen.lock().unwrap(), vec!["\"hi\"".to_string()]);
/// # }
/// ```
#[derive(Clone)]
pub struct Events {
    listeners: Arc<Mutex<Vec<Listener>>>,
    /// Listeners registered (kept beside the list so that emitting with none is free).
    count: Arc<AtomicUsize>,
    tx: mpsc::UnboundedSender<Msg>,
    next: Arc<AtomicU64>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.listeners.lock().map(|l| l.len()).unwrap_or(0);
        write!(f, "Events({n} listeners)")
    }
}

impl Events {
    /// A new bus with its dispatcher task.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let events = netcore::Events::new();
    /// # }
    /// ```
    pub fn new() -> Events {
        let listeners: Arc<Mutex<Vec<Listener>>> = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let count = Arc::new(AtomicUsize::new(0));
        tokio::spawn(dispatch(listeners.clone(), count.clone(), rx));
        Events {
            listeners,
            count,
            tx,
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    fn add(&self, name: &str, once: bool, f: ListenerFn) -> ListenerId {
        let id = ListenerId(self.next.fetch_add(1, Ordering::Relaxed));
        let mut l = self.lock();
        l.push(Listener {
            id,
            name: name.to_string(),
            once,
            f,
        });
        self.count.store(l.len(), Ordering::SeqCst);
        id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Listener>> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls `listener` for every event named `name` (`"*"`: every event).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let events = netcore::Events::new();
    /// events.on("start", |_ev: &netcore::Event| println!("Service started"));
    /// // Failures are logged, never propagated:
    /// events.on("start", |_ev: &netcore::Event| -> Result<(), String> { Err("oops".into()) });
    /// # }
    /// ```
    pub fn on<F, R>(&self, name: &str, listener: F) -> ListenerId
    where
        F: Fn(&Event) -> R + Send + Sync + 'static,
        R: ListenerResult,
    {
        self.add(name, false, sync_listener(listener))
    }

    /// Like [`on`](Self::on) with an async listener.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let events = netcore::Events::new();
    /// events.on_async("request", |ev: netcore::Event| async move { tracing::info!(?ev); });
    /// # }
    /// ```
    pub fn on_async<F, Fut, R>(&self, name: &str, listener: F) -> ListenerId
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
        R: ListenerResult,
    {
        let f: ListenerFn = Arc::new(move |ev| {
            let fut = listener(ev);
            Box::pin(async move { fut.await.into_failure() })
        });
        self.add(name, false, f)
    }

    /// Calls `listener` for the next event named `name` only.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let events = netcore::Events::new();
    /// events.once("initialize", |_ev: &netcore::Event| println!("First-time initialization"));
    /// # }
    /// ```
    pub fn once<F, R>(&self, name: &str, listener: F) -> ListenerId
    where
        F: Fn(&Event) -> R + Send + Sync + 'static,
        R: ListenerResult,
    {
        self.add(name, true, sync_listener(listener))
    }

    /// Removes every listener of `name`; returns how many there were.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let events = netcore::Events::new();
    /// events.on("x", |_: &netcore::Event| {});
    /// assert_eq!(events.off("x"), 1);
    /// # }
    /// ```
    pub fn off(&self, name: &str) -> usize {
        let mut l = self.lock();
        let before = l.len();
        l.retain(|x| x.name != name);
        self.count.store(l.len(), Ordering::SeqCst);
        before - l.len()
    }

    /// Removes one listener; returns whether it was registered.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let events = netcore::Events::new();
    /// let id = events.on("x", |_: &netcore::Event| {});
    /// assert!(events.off_listener(id));
    /// assert!(!events.off_listener(id));
    /// # }
    /// ```
    pub fn off_listener(&self, id: ListenerId) -> bool {
        let mut l = self.lock();
        let before = l.len();
        l.retain(|x| x.id != id);
        self.count.store(l.len(), Ordering::SeqCst);
        before != l.len()
    }

    /// Emits a custom event with a JSON payload.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let events = netcore::Events::new();
    /// events.emit("custom_event", serde_json::json!({"type": "notification"}));
    /// # }
    /// ```
    pub fn emit(&self, name: &str, data: serde_json::Value) {
        self.emit_event(Event::Custom {
            name: name.to_string(),
            data,
        });
    }

    /// Emits any event (lifecycle events included).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// netcore::Events::new().emit_event(netcore::Event::Started);
    /// # }
    /// ```
    pub fn emit_event(&self, event: Event) {
        if self.count.load(Ordering::SeqCst) == 0 {
            return; // nobody listens
        }
        let _ = self.tx.send(Msg::Emit(event));
    }

    /// Waits until every event emitted before this call was delivered.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let events = netcore::Events::new();
    /// events.emit("x", serde_json::Value::Null);
    /// events.flush().await;
    /// # }
    /// ```
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn sync_listener<F, R>(listener: F) -> ListenerFn
where
    F: Fn(&Event) -> R + Send + Sync + 'static,
    R: ListenerResult,
{
    let listener = Arc::new(listener);
    Arc::new(move |ev: Event| {
        let r = listener(&ev).into_failure();
        Box::pin(async move { r })
    })
}

async fn dispatch(
    listeners: Arc<Mutex<Vec<Listener>>>,
    count: Arc<AtomicUsize>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    while let Some(msg) = rx.recv().await {
        let event = match msg {
            Msg::Emit(e) => e,
            Msg::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        // Take the matching listeners out of the lock before running them, so a
        // listener may subscribe or unsubscribe.
        let matching: Vec<(ListenerId, ListenerFn)> = {
            let mut l = listeners.lock().unwrap_or_else(|p| p.into_inner());
            let name = event.name();
            let hits: Vec<(ListenerId, ListenerFn, bool)> = l
                .iter()
                .filter(|x| x.name == name || x.name == ALL_EVENTS)
                .map(|x| (x.id, x.f.clone(), x.once))
                .collect();
            l.retain(|x| !(x.once && hits.iter().any(|h| h.0 == x.id)));
            count.store(l.len(), Ordering::SeqCst);
            hits.into_iter().map(|(id, f, _)| (id, f)).collect()
        };
        for (id, f) in matching {
            let fut = AssertUnwindSafe(async { f(event.clone()).await });
            match fut.catch_unwind().await {
                Ok(None) => {}
                Ok(Some(err)) => {
                    tracing::warn!(event = event.name(), listener = id.0, error = %err, "event listener failed")
                }
                Err(_) => {
                    tracing::error!(
                        event = event.name(),
                        listener = id.0,
                        "event listener panicked"
                    )
                }
            }
        }
    }
}

impl Default for Events {
    /// Same as [`Events::new`].
    fn default() -> Self {
        Events::new()
    }
}
