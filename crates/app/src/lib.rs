//! # netcore
//!
//! Many conversations over one wire — the application layer. An [`Endpoint`] serves the
//! routes of a [`Router`] to every connection it has and sends requests over them;
//! both ends of a connection can do both.
//!
//! - [`routing`]: [`Router`] with `route`, `nest`/`register` (blueprints), `merge`,
//!   `fallback`, scoped `layer`/`before`/`after`/`on_error`/`state`;
//! - [`handler`] and [`extract`]: async (or [`blocking()`]) functions whose arguments are
//!   extractors and whose results implement [`IntoResponse`];
//! - [`middleware`]: tower layers and [`middleware::from_fn`];
//! - [`endpoint`]: connections, requests with deadlines, callbacks, one-way sends,
//!   cancellation, bounded concurrency, graceful stop;
//! - [`events`], [`scheduler`], [`cache`]: the seed's event bus, task scheduler and
//!   TTL cache; [`blocking`](mod@blocking): a blocking client for code without async;
//!   [`typed`] (feature `schema`): typed binary messages as bodies;
//! - [`error`]: remote errors (code + message, also on the wire) and [`AppError`].
//!
//! ```
//! use netcore::{Endpoint, Json, Router};
//! use netcore_runtime::transport::mem_pair;
//! use serde_json::{json, Value};
//!
//! async fn user_list(Json(q): Json<Value>) -> Json<Value> {
//!     Json(json!({"page": q["page"], "users": ["user1", "user2"]}))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), netcore::AppError> {
//! let users = Router::blueprint("users", "/user").route("/list", user_list);
//! let server = Endpoint::new(Router::new().register(users));
//! let client = Endpoint::new(Router::new());
//! let (a, b) = mem_pair(1 << 16);
//! server.add_transport(b);
//! client.add_transport(a);
//! let reply: Value = client.message("user/list").json(&json!({"page": 1})).await?.json().await?;
//! assert_eq!(reply["users"][1], "user2");
//! # Ok(()) }
//! ```

pub mod blocking;
pub mod cache;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod extract;
pub mod handler;
pub mod middleware;
mod request;
mod response;
pub mod routing;
pub mod scheduler;
#[cfg(feature = "schema")]
pub mod typed;

pub use cache::Cache;
pub use endpoint::{Endpoint, EndpointBuilder, Outgoing, PendingRequest, Reply, RequestCanceller};
pub use error::{codes, AppError, BoxError, RemoteError, ERROR_HEADER, ONE_WAY_HEADER};
pub use events::{Event, Events, ListenerId};
pub use extract::{Extension, FromRequest, State};
pub use handler::{blocking, Handler};
pub use request::{ConnectionInfo, Extensions, Request, RequestBody};
pub use response::{HandlerError, IntoResponse, Json, Response};
pub use routing::{Route, Router};
pub use scheduler::{Schedule, Scheduler, TaskHandle};
#[cfg(feature = "schema")]
pub use typed::{Typed, TYPE_HEADER};

pub use netcore_core::metadata::Headers;
pub use netcore_core::{ErrorCode, MessageId, Urgency};
pub use netcore_runtime::{Body, ConnectionId, Pipe, PipeConfig};
