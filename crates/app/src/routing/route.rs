//! [`Route`]: one route's boxed tower service, and the adapter that turns any service's
//! errors into error responses.

use futures::future::BoxFuture;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::util::BoxCloneService;
use tower::{Layer, Service};

use crate::error::{BoxError, RemoteError};
use crate::handler::{Handler, HandlerService};
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// One route's service, boxed: any tower `Service<Request>` whose errors are turned
/// into error responses. Cheap to clone.
///
/// ```
/// use netcore::{Route, Request};
/// use tower::ServiceExt;
/// async fn ping() -> &'static str { "pong" }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let route = Route::from_handler(ping);
/// let resp = route.oneshot(Request::new("ping", "")).await.unwrap();
/// assert_eq!(resp.body_bytes().unwrap(), "pong");
/// # }
/// ```
pub struct Route(BoxCloneService<Request, Response, Infallible>);

impl Clone for Route {
    fn clone(&self) -> Self {
        Route(self.0.clone())
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Route")
    }
}

impl Route {
    /// A route from any tower service; its errors become error responses
    /// (see [`RemoteError::from_box`]).
    ///
    /// ```
    /// use netcore::{Route, Request, Response};
    /// let svc = tower::service_fn(|req: Request| async move {
    ///     Ok::<_, std::convert::Infallible>(Response::new(req.route().to_string()))
    /// });
    /// let route = Route::new(svc);
    /// ```
    pub fn new<S>(service: S) -> Route
    where
        S: Service<Request> + Clone + Send + 'static,
        S::Response: IntoResponse,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        Route(BoxCloneService::new(ErrorsAsResponses {
            inner: service,
            ready_error: None,
        }))
    }

    /// A route serving `handler`.
    ///
    /// ```
    /// async fn h() {}
    /// let r = netcore::Route::from_handler(h);
    /// ```
    pub fn from_handler<H: Handler<T>, T: 'static>(handler: H) -> Route {
        Route(BoxCloneService::new(HandlerService::new(handler)))
    }

    /// Wraps this route in a tower layer.
    ///
    /// ```
    /// async fn h() {}
    /// let r = netcore::Route::from_handler(h).layer(tower::limit::ConcurrencyLimitLayer::new(2));
    /// ```
    pub fn layer<L>(self, layer: L) -> Route
    where
        L: Layer<Route>,
        L::Service: Service<Request> + Clone + Send + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse,
        <L::Service as Service<Request>>::Error: Into<BoxError>,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        Route::new(layer.layer(self))
    }
}

impl Service<Request> for Route {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        self.0.call(req)
    }
}

/// Adapts a service with any response and error type to `Response`/`Infallible`.
#[derive(Clone)]
struct ErrorsAsResponses<S> {
    inner: S,
    ready_error: Option<Arc<RemoteError>>,
}

impl<S> Service<Request> for ErrorsAsResponses<S>
where
    S: Service<Request>,
    S::Response: IntoResponse,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match self.inner.poll_ready(cx) {
            Poll::Ready(Err(e)) => {
                // Answer the next call with the error instead of failing the service.
                self.ready_error = Some(Arc::new(RemoteError::from_box(e.into())));
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if let Some(e) = self.ready_error.take() {
            let e = (*e).clone();
            return Box::pin(async move { Ok(Response::from_error(e)) });
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            Ok(match fut.await {
                Ok(r) => r.into_response(),
                Err(e) => Response::from_error(RemoteError::from_box(e.into())),
            })
        })
    }
}
