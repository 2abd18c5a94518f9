//! Routing: [`Router`] (axum-shaped, by value) maps route names to handlers, nests
//! blueprints under a prefix, merges routers, and scopes middleware, hooks, error
//! handlers, fallbacks and state to the routes they were declared with.
//!
//! Route names are compared without a leading `/`, so the seed's `"/user/list"` and
//! `"user/list"` are the same route. Nesting joins with `/`: `nest("user", r)` serves
//! `r`'s `"list"` as `"user/list"`.

mod route;
mod table;

pub use route::Route;

use std::sync::{Arc, Mutex};
use tower::{Layer, Service, ServiceExt};

use crate::error::{codes, BoxError, RemoteError};
use crate::handler::Handler;
use crate::middleware::{AfterFn, BeforeFn, ErrorFn, HookLayer};
use crate::request::{Extensions, Request};
use crate::response::{IntoResponse, Response};

/// Removes leading and trailing `/` (route names are compared in this form).
pub(crate) fn normalize(route: &str) -> String {
    route.trim_matches('/').to_string()
}

fn join(prefix: &str, route: &str) -> String {
    match (prefix.is_empty(), route.is_empty()) {
        (true, _) => route.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}/{route}"),
    }
}

type LayerFn = Arc<dyn Fn(Route) -> Route + Send + Sync>;

/// Routes, nested routers and the middleware that applies to them.
///
/// A `Router` is built by value and handed to an [`Endpoint`](crate::Endpoint). Its
/// [`layer`](Router::layer)s, [`before`](Router::before)/[`after`](Router::after) hooks,
/// [`on_error`](Router::on_error) handler, [`fallback`](Router::fallback) and
/// [`state`](Router::state) apply to **its own routes and those nested in it** — never to
/// routes of a parent or sibling router — whatever the order of the calls.
///
/// ```
/// use netcore::{Router, Json, Request};
/// use serde_json::json;
/// async fn list() -> Json<serde_json::Value> { Json(json!({"users": ["user1", "user2"]})) }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let users = Router::blueprint("users", "/user").route("/list", list);
/// let app = Router::new().route("ping", || async { "pong" }).register(users);
/// let resp = app.call(Request::new("user/list", "")).await;
/// assert_eq!(resp.body_bytes().unwrap(), r#"{"users":["user1","user2"]}"#);
/// # }
/// ```
#[derive(Default)]
pub struct Router {
    name: Option<String>,
    prefix: String,
    routes: Vec<(String, Route)>,
    nested: Vec<(String, Router)>,
    fallback: Option<Route>,
    layers: Vec<LayerFn>,
    before: Vec<BeforeFn>,
    after: Vec<AfterFn>,
    on_error: Option<ErrorFn>,
    state: Extensions,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field(
                "routes",
                &self.routes.iter().map(|(r, _)| r).collect::<Vec<_>>(),
            )
            .field(
                "nested",
                &self.nested.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Router {
    /// An empty router.
    ///
    /// ```
    /// let r = netcore::Router::new();
    /// assert!(r.route_names().is_empty());
    /// ```
    pub fn new() -> Router {
        Router::default()
    }

    /// A blueprint: a router with a name (shown in logs) and the prefix it is
    /// [`register`](Router::register)ed under (the seed's `Blueprint(name, prefix)`).
    ///
    /// ```
    /// let bp = netcore::Router::blueprint("users", "/user");
    /// assert_eq!(bp.name(), Some("users"));
    /// assert_eq!(bp.prefix(), "user");
    /// ```
    pub fn blueprint(name: impl Into<String>, prefix: &str) -> Router {
        Router {
            name: Some(name.into()),
            prefix: normalize(prefix),
            ..Router::default()
        }
    }

    /// The blueprint's name.
    ///
    /// ```
    /// assert_eq!(netcore::Router::new().name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The blueprint's prefix (`""` for plain routers).
    ///
    /// ```
    /// assert_eq!(netcore::Router::new().prefix(), "");
    /// ```
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Serves `route` with `handler` (an async fn, a [`blocking`](crate::blocking()) sync
    /// fn, or a [`Route`]).
    ///
    /// # Panics
    ///
    /// If `route` is already served by this router (a configuration error).
    ///
    /// ```
    /// async fn list() -> &'static str { "[]" }
    /// let r = netcore::Router::new().route("user/list", list);
    /// assert_eq!(r.route_names(), vec!["user/list".to_string()]);
    /// ```
    pub fn route<H: Handler<T>, T: 'static>(self, route: &str, handler: H) -> Router {
        self.route_service(route, Route::from_handler(handler))
    }

    /// Serves `route` with any tower service (`Service<Request>` whose response
    /// implements [`IntoResponse`]).
    ///
    /// # Panics
    ///
    /// If `route` is already served by this router.
    ///
    /// ```
    /// use netcore::{Request, Response};
    /// let svc = tower::service_fn(|_req: Request| async { Ok::<_, std::convert::Infallible>(Response::new("hi")) });
    /// let r = netcore::Router::new().route_service("hi", svc);
    /// ```
    pub fn route_service<S>(mut self, route: &str, service: S) -> Router
    where
        S: Service<Request> + Clone + Send + 'static,
        S::Response: IntoResponse,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        let route = normalize(route);
        assert!(
            !self.routes.iter().any(|(r, _)| *r == route),
            "route '{route}' is registered twice on the same router"
        );
        self.routes.push((route, Route::new(service)));
        self
    }

    /// Nests `router` under `prefix`: its route `"list"` is served as `"prefix/list"`.
    /// Its middleware, hooks, error handler, fallback and state stay scoped to it.
    ///
    /// ```
    /// async fn list() {}
    /// let users = netcore::Router::new().route("list", list);
    /// let app = netcore::Router::new().nest("user", users);
    /// assert_eq!(app.route_names(), vec!["user/list".to_string()]);
    /// ```
    pub fn nest(mut self, prefix: &str, router: Router) -> Router {
        self.nested.push((normalize(prefix), router));
        self
    }

    /// Nests a [`blueprint`](Router::blueprint) under its own prefix (the seed's
    /// `register_blueprint`).
    ///
    /// ```
    /// async fn list() {}
    /// let bp = netcore::Router::blueprint("users", "/user").route("/list", list);
    /// let app = netcore::Router::new().register(bp);
    /// assert_eq!(app.route_names(), vec!["user/list".to_string()]);
    /// ```
    pub fn register(self, blueprint: Router) -> Router {
        let prefix = blueprint.prefix.clone();
        self.nest(&prefix, blueprint)
    }

    /// Merges `other`'s routes into this router at the same level; `other` keeps its own
    /// middleware scoped to its routes.
    ///
    /// ```
    /// async fn a() {}
    /// async fn b() {}
    /// let r = netcore::Router::new().route("a", a).merge(netcore::Router::new().route("b", b));
    /// assert_eq!(r.route_names(), vec!["a".to_string(), "b".to_string()]);
    /// ```
    pub fn merge(self, other: Router) -> Router {
        self.nest("", other)
    }

    /// Serves routes of this router's prefix that match no route (the seed's `default`
    /// handler). Without any fallback the caller gets a [`codes::NO_ROUTE`] error.
    ///
    /// ```
    /// use netcore::extract::RoutePath;
    /// async fn unknown(RoutePath(r): RoutePath) -> String { format!("nothing at {r}") }
    /// let app = netcore::Router::new().fallback(unknown);
    /// ```
    pub fn fallback<H: Handler<T>, T: 'static>(mut self, handler: H) -> Router {
        self.fallback = Some(Route::from_handler(handler));
        self
    }

    /// Adds a tower layer around every route of this router (and the routers nested in
    /// it). Layers added later wrap those added earlier. Errors the layer's service
    /// returns become error responses ([`RemoteError::from_box`]).
    ///
    /// Services that are not `Clone` (tower's `RateLimit`) go behind a `BufferLayer`.
    ///
    /// ```
    /// use std::time::Duration;
    /// async fn h() {}
    /// let app = netcore::Router::new()
    ///     .route("h", h)
    ///     .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)));
    /// ```
    pub fn layer<L>(mut self, layer: L) -> Router
    where
        L: Layer<Route> + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse,
        <L::Service as Service<Request>>::Error: Into<BoxError>,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.layers
            .push(Arc::new(move |route: Route| route.layer(&layer)));
        self
    }

    /// A before-request hook: runs before the handler; returning `Err(response)`
    /// short-circuits with that response.
    ///
    /// ```
    /// use netcore::{Request, Response, codes};
    /// let app = netcore::Router::new().before(|req: Request| async move {
    ///     if req.headers().get("token").is_none() {
    ///         return Err(Response::error(codes::UNAUTHORIZED, "missing token"));
    ///     }
    ///     Ok(req)
    /// });
    /// ```
    pub fn before<F, Fut>(mut self, hook: F) -> Router
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Request, Response>> + Send + 'static,
    {
        self.before.push(Arc::new(move |req| Box::pin(hook(req))));
        self
    }

    /// An after-request hook: sees every response of this router's routes and may
    /// replace it.
    ///
    /// ```
    /// let app = netcore::Router::new().after(|resp: netcore::Response| async move {
    ///     resp.with_header("served-by", "netcore")
    /// });
    /// ```
    pub fn after<F, Fut>(mut self, hook: F) -> Router
    where
        F: Fn(Response) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Response> + Send + 'static,
    {
        self.after.push(Arc::new(move |resp| Box::pin(hook(resp))));
        self
    }

    /// The error handler: maps every error response of this router's routes (handler
    /// errors, panics, rejections, middleware errors) to the response sent instead.
    ///
    /// ```
    /// use netcore::{Json, IntoResponse, RemoteError};
    /// let app = netcore::Router::new().on_error(|e: RemoteError| async move {
    ///     Json(serde_json::json!({"error": e.message})).into_response()
    /// });
    /// ```
    pub fn on_error<F, Fut>(mut self, handler: F) -> Router
    where
        F: Fn(RemoteError) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Response> + Send + 'static,
    {
        self.on_error = Some(Arc::new(move |e| Box::pin(handler(e))));
        self
    }

    /// Shared state for this router's routes, read with [`State`](crate::State). State
    /// of an inner router wins over an outer one of the same type.
    ///
    /// ```
    /// use netcore::State;
    /// async fn name(State(n): State<&'static str>) -> &'static str { n }
    /// let app = netcore::Router::new().route("name", name).state("users");
    /// ```
    pub fn state<S: Clone + Send + Sync + 'static>(mut self, state: S) -> Router {
        self.state.insert(state);
        self
    }

    /// Every route this router serves, nested ones with their full names.
    ///
    /// ```
    /// async fn h() {}
    /// let r = netcore::Router::new().route("/a/", h);
    /// assert_eq!(r.route_names(), vec!["a".to_string()]);
    /// ```
    pub fn route_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.routes.iter().map(|(r, _)| r.clone()).collect();
        for (prefix, r) in &self.nested {
            names.extend(r.route_names().into_iter().map(|n| join(prefix, &n)));
        }
        names
    }

    /// Serves one request in-process (tests, local calls): routing, middleware and
    /// error mapping as for a request from a peer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let resp = netcore::Router::new().call(netcore::Request::new("nope", "")).await;
    /// assert_eq!(resp.as_error().unwrap().code, netcore::codes::NO_ROUTE);
    /// # }
    /// ```
    pub async fn call(self, req: Request) -> Response {
        match self.into_route().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        }
    }

    /// Finishes the router into one service that routes requests.
    ///
    /// ```
    /// let route: netcore::Route = netcore::Router::new().into_route();
    /// ```
    pub fn into_route(self) -> Route {
        let table = self.into_table(true);
        let mut fallbacks: Vec<(String, Mutex<Route>)> = table
            .fallbacks
            .into_iter()
            .map(|(p, r)| (p, Mutex::new(r)))
            .collect();
        // Longest prefix first; stable, so the order among equal prefixes is kept.
        fallbacks.sort_by_key(|f| std::cmp::Reverse(f.0.len()));
        let routes = table
            .routes
            .into_iter()
            .map(|(n, r)| (n, Mutex::new(r)))
            .collect();
        Route::new(table::Dispatch(Arc::new(table::Table {
            routes,
            fallbacks,
        })))
    }

    /// Applies this router's scoped middleware to one route.
    fn wrap(&self, route: Route) -> Route {
        let mut route = route;
        if !self.state.is_empty() || !self.before.is_empty() || !self.after.is_empty() {
            route = route.layer(HookLayer {
                state: self.state.clone(),
                before: self.before.clone(),
                after: self.after.clone(),
                on_error: None,
                blueprint: self.name.clone(),
            });
        }
        for l in &self.layers {
            route = l(route);
        }
        if let Some(h) = &self.on_error {
            route = route.layer(HookLayer {
                state: Extensions::new(),
                before: Vec::new(),
                after: Vec::new(),
                on_error: Some(h.clone()),
                blueprint: None,
            });
        }
        route
    }

    fn into_table(mut self, root: bool) -> table::RouteTable {
        let mut table = table::RouteTable::default();
        let routes = std::mem::take(&mut self.routes);
        for (name, route) in routes {
            table.routes.insert(name, self.wrap(route));
        }
        let nested = std::mem::take(&mut self.nested);
        for (prefix, child) in nested {
            let child_table = child.into_table(false);
            for (name, route) in child_table.routes {
                let full = join(&prefix, &name);
                assert!(
                    !table.routes.contains_key(&full),
                    "route '{full}' is registered twice (once in a nested or merged router)"
                );
                table.routes.insert(full, self.wrap(route));
            }
            for (p, route) in child_table.fallbacks {
                table.fallbacks.push((join(&prefix, &p), self.wrap(route)));
            }
        }
        // At equal prefixes the first entry wins: an explicit fallback beats those of
        // merged routers, which beat the default "no route" answer.
        match self.fallback.take() {
            Some(f) => table.fallbacks.insert(0, (String::new(), self.wrap(f))),
            None if root => {
                let f = Route::from_handler(no_route);
                table.fallbacks.push((String::new(), self.wrap(f)));
            }
            None => {}
        }
        table
    }
}

pub(super) async fn no_route(req: Request) -> Response {
    Response::error(
        codes::NO_ROUTE,
        format!(
            "no route '{}' on this endpoint and no fallback",
            req.route()
        ),
    )
}
