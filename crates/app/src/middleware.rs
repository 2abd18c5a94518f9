//! Middleware: [`from_fn`] for closures with a [`Next`], and the hook layer behind
//! [`Router::before`](crate::Router::before), [`Router::after`](crate::Router::after),
//! [`Router::on_error`](crate::Router::on_error) and [`Router::state`](crate::Router::state).
//!
//! Any tower `Layer` works as middleware too ([`Router::layer`](crate::Router::layer)).
//! Per route, the order from the outside in is: the router's error handler → its tower
//! layers (later ones outside) → its state, before hooks, the handler, after hooks.

use futures::future::BoxFuture;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service, ServiceExt};

use crate::error::RemoteError;
use crate::request::{Extensions, Request};
use crate::response::{IntoResponse, Response};
use crate::routing::Route;

pub(crate) type BeforeFn =
    Arc<dyn Fn(Request) -> BoxFuture<'static, Result<Request, Response>> + Send + Sync>;
pub(crate) type AfterFn = Arc<dyn Fn(Response) -> BoxFuture<'static, Response> + Send + Sync>;
pub(crate) type ErrorFn = Arc<dyn Fn(RemoteError) -> BoxFuture<'static, Response> + Send + Sync>;

/// The rest of the middleware stack and the handler, as seen by a [`from_fn`]
/// middleware (see [`Next::run`]).
///
/// ```
/// use netcore::middleware::{from_fn, Next};
/// let passthrough = from_fn(|req: netcore::Request, next: Next| next.run(req));
/// ```
#[derive(Debug, Clone)]
pub struct Next {
    inner: Route,
}

impl Next {
    /// Runs the rest of the stack on `req`.
    ///
    /// ```
    /// use netcore::middleware::{from_fn, Next};
    /// use netcore::Request;
    /// let log = from_fn(|req: Request, next: Next| async move {
    ///     let route = req.route().to_string();
    ///     let resp = next.run(req).await;
    ///     tracing::info!(%route, error = resp.is_error(), "served");
    ///     resp
    /// });
    /// ```
    pub async fn run(self, req: Request) -> Response {
        match self.inner.oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        }
    }
}

/// A middleware from an async closure taking the request and [`Next`]; it may change
/// the request, answer by itself, or change the response.
///
/// ```
/// use netcore::middleware::{from_fn, Next};
/// use netcore::{codes, Extension, Request, Response, Router};
///
/// #[derive(Clone)]
/// struct User(String);
///
/// // Authentication: check the token, attach the user for handlers.
/// let auth = from_fn(|mut req: Request, next: Next| async move {
///     match req.headers().get_str("token") {
///         Some("s3cret") => {
///             req.extensions_mut().insert(User("alice".into()));
///             next.run(req).await
///         }
///         _ => Response::error(codes::UNAUTHORIZED, "bad or missing token"),
///     }
/// });
/// async fn whoami(Extension(user): Extension<User>) -> String { user.0 }
/// let app = Router::new().route("whoami", whoami).layer(auth);
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let resp = rt.block_on(app.call(Request::new("whoami", "").with_header("token", "s3cret")));
/// assert_eq!(resp.body_bytes().unwrap(), "alice");
/// ```
pub fn from_fn<F, Fut, R>(f: F) -> FromFnLayer<F>
where
    F: Fn(Request, Next) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    FromFnLayer { f }
}

/// The layer [`from_fn`] builds.
///
/// ```
/// use netcore::middleware::{from_fn, FromFnLayer, Next};
/// let layer = from_fn(|req: netcore::Request, next: Next| next.run(req));
/// let app = netcore::Router::new().route("x", || async {}).layer(layer);
/// ```
#[derive(Clone, Debug)]
pub struct FromFnLayer<F> {
    f: F,
}

impl<F: Clone> Layer<Route> for FromFnLayer<F> {
    type Service = FromFn<F>;
    fn layer(&self, inner: Route) -> FromFn<F> {
        FromFn {
            f: self.f.clone(),
            inner,
        }
    }
}

/// The service [`FromFnLayer`] wraps a route in.
///
/// ```
/// use netcore::middleware::{from_fn, FromFn, Next};
/// use tower::Layer;
/// let layer = from_fn(|req: netcore::Request, next: Next| next.run(req));
/// let svc = layer.layer(netcore::Route::from_handler(|| async { "hi" }));
/// ```
#[derive(Clone, Debug)]
pub struct FromFn<F> {
    f: F,
    inner: Route,
}

impl<F, Fut, R> Service<Request> for FromFn<F>
where
    F: Fn(Request, Next) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let next = Next {
            inner: self.inner.clone(),
        };
        let fut = (self.f)(req, next);
        Box::pin(async move { Ok(fut.await.into_response()) })
    }
}

/// Scoped state, hooks and error handler of one router, around one of its routes.
#[derive(Clone)]
pub(crate) struct HookLayer {
    pub(crate) state: Extensions,
    pub(crate) before: Vec<BeforeFn>,
    pub(crate) after: Vec<AfterFn>,
    pub(crate) on_error: Option<ErrorFn>,
    pub(crate) blueprint: Option<String>,
}

impl Layer<Route> for HookLayer {
    type Service = Hooks;
    fn layer(&self, inner: Route) -> Hooks {
        Hooks {
            hooks: Arc::new(self.clone()),
            inner,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Hooks {
    hooks: Arc<HookLayer>,
    inner: Route,
}

impl Service<Request> for Hooks {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let hooks = self.hooks.clone();
        // The inner route was made ready by poll_ready; keep that instance for the call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(async move {
            // Outer routers run first, so an inner router's state replaces theirs.
            req.extensions.extend(&hooks.state);
            if let Some(name) = &hooks.blueprint {
                tracing::trace!(blueprint = %name, route = %req.route(), "blueprint route");
            }
            let mut resp = 'run: {
                for hook in &hooks.before {
                    match hook(req).await {
                        Ok(r) => req = r,
                        Err(resp) => break 'run resp,
                    }
                }
                match inner.call(req).await {
                    Ok(r) => r,
                    Err(e) => match e {},
                }
            };
            for hook in &hooks.after {
                resp = hook(resp).await;
            }
            if let Some(h) = &hooks.on_error {
                if let Some(e) = resp.take_error() {
                    resp = h(e).await;
                }
            }
            Ok(resp)
        })
    }
}
