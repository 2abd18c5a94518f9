//! Handlers: async functions (or sync functions wrapped in [`blocking`]) whose arguments
//! are extractors and whose return value implements [`IntoResponse`].
//!
//! A handler's panic is caught and answered with a [`codes::HANDLER_PANIC`] remote
//! error; the endpoint carries on.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};

use crate::error::codes;
use crate::extract::FromRequest;
use crate::request::Request;
use crate::response::{IntoResponse, Response};
use crate::routing::Route;

/// Something that can serve a route. Implemented for async functions and closures of
/// up to eight extractor arguments, for [`Blocking`] sync functions, and for [`Route`].
///
/// ```
/// use netcore::{Handler, Request};
/// async fn hello(name: String) -> String { format!("hello {name}") }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let resp = hello.call(Request::new("hello", "bob")).await;
/// assert_eq!(resp.body_bytes().unwrap(), "hello bob");
/// # }
/// ```
pub trait Handler<T>: Clone + Send + Sized + 'static {
    /// Serves one request.
    fn call(self, req: Request) -> BoxFuture<'static, Response>;

    /// Wraps the handler in a tower layer, for middleware on a single route.
    ///
    /// ```
    /// use netcore::{Handler, Router};
    /// use std::time::Duration;
    /// async fn slow() {}
    /// let app = Router::new().route("slow", slow.layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(1))));
    /// ```
    fn layer<L>(self, layer: L) -> Route
    where
        T: 'static,
        L: tower::Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<Request> + Clone + Send + 'static,
        <L::Service as tower::Service<Request>>::Response: IntoResponse,
        <L::Service as tower::Service<Request>>::Error: Into<crate::BoxError>,
        <L::Service as tower::Service<Request>>::Future: Send + 'static,
    {
        Route::from_handler(self).layer(layer)
    }
}

/// Marker of [`Route`]'s own `Handler` impl.
#[doc(hidden)]
#[derive(Debug)]
pub struct RouteMarker;

impl Handler<RouteMarker> for Route {
    fn call(self, req: Request) -> BoxFuture<'static, Response> {
        Box::pin(async move {
            match tower::ServiceExt::oneshot(self, req).await {
                Ok(r) => r,
                Err(e) => match e {},
            }
        })
    }
}

/// Turns a panic payload into a remote-error response.
pub(crate) fn panic_response(payload: Box<dyn std::any::Any + Send>) -> Response {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_string());
    tracing::error!(panic = %what, "handler panicked");
    Response::error(codes::HANDLER_PANIC, format!("handler panicked: {what}"))
}

/// Runs a handler future, catching a panic.
pub(crate) async fn catch_panic<F: Future<Output = Response>>(fut: F) -> Response {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(p) => panic_response(p),
    }
}

macro_rules! impl_async_handler {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_mut, unused_variables)]
        impl<F, Fut, R, $($ty,)*> Handler<($($ty,)*)> for F
        where
            F: FnOnce($($ty,)*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoResponse,
            $($ty: FromRequest + 'static,)*
        {
            fn call(self, mut req: Request) -> BoxFuture<'static, Response> {
                Box::pin(catch_panic(async move {
                    $(
                        let $ty = match $ty::from_request(&mut req).await {
                            Ok(v) => v,
                            Err(rejection) => return rejection,
                        };
                    )*
                    drop(req);
                    self($($ty,)*).await.into_response()
                }))
            }
        }
    };
}

impl_async_handler!();
impl_async_handler!(T1);
impl_async_handler!(T1, T2);
impl_async_handler!(T1, T2, T3);
impl_async_handler!(T1, T2, T3, T4);
impl_async_handler!(T1, T2, T3, T4, T5);
impl_async_handler!(T1, T2, T3, T4, T5, T6);
impl_async_handler!(T1, T2, T3, T4, T5, T6, T7);
impl_async_handler!(T1, T2, T3, T4, T5, T6, T7, T8);

/// A synchronous handler, run on tokio's blocking pool (the seed's worker threads).
/// Build it with [`blocking`].
#[derive(Clone, Debug)]
pub struct Blocking<F>(F);

/// Wraps a synchronous function as a handler: its extractors run async, then the
/// function runs on `spawn_blocking`, so it may block (file I/O, heavy CPU, serial
/// device calls) without stalling other requests.
///
/// ```
/// use netcore::{blocking, Router};
/// fn checksum(body: bytes::Bytes) -> String {
///     body.iter().map(|&b| b as u64).sum::<u64>().to_string()
/// }
/// let app = Router::new().route("sum", blocking(checksum));
/// ```
pub fn blocking<F>(f: F) -> Blocking<F> {
    Blocking(f)
}

/// Marker of [`Blocking`] handler impls.
#[doc(hidden)]
#[derive(Debug)]
pub struct BlockingMarker;

macro_rules! impl_blocking_handler {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_mut, unused_variables)]
        impl<F, R, $($ty,)*> Handler<(BlockingMarker, $($ty,)*)> for Blocking<F>
        where
            F: FnOnce($($ty,)*) -> R + Clone + Send + Sync + 'static,
            R: IntoResponse + Send + 'static,
            $($ty: FromRequest + 'static,)*
        {
            fn call(self, mut req: Request) -> BoxFuture<'static, Response> {
                Box::pin(async move {
                    $(
                        let $ty = match $ty::from_request(&mut req).await {
                            Ok(v) => v,
                            Err(rejection) => return rejection,
                        };
                    )*
                    drop(req);
                    let f = self.0;
                    match tokio::task::spawn_blocking(move || f($($ty,)*).into_response()).await {
                        Ok(r) => r,
                        Err(e) if e.is_panic() => panic_response(e.into_panic()),
                        Err(e) => Response::error(codes::INTERNAL, format!("blocking handler did not run: {e}")),
                    }
                })
            }
        }
    };
}

impl_blocking_handler!();
impl_blocking_handler!(T1);
impl_blocking_handler!(T1, T2);
impl_blocking_handler!(T1, T2, T3);
impl_blocking_handler!(T1, T2, T3, T4);
impl_blocking_handler!(T1, T2, T3, T4, T5);
impl_blocking_handler!(T1, T2, T3, T4, T5, T6);

/// A handler as a tower `Service` (what [`Route::from_handler`] boxes).
#[derive(Debug)]
pub struct HandlerService<H, T> {
    handler: H,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<H: Clone, T> Clone for HandlerService<H, T> {
    fn clone(&self) -> Self {
        HandlerService::new(self.handler.clone())
    }
}

impl<H, T> HandlerService<H, T> {
    /// Wraps `handler`.
    ///
    /// ```
    /// async fn h() {}
    /// let svc: netcore::handler::HandlerService<_, ()> = netcore::handler::HandlerService::new(h);
    /// ```
    pub fn new(handler: H) -> Self {
        HandlerService {
            handler,
            _marker: std::marker::PhantomData,
        }
    }
}

impl<H: Handler<T>, T: 'static> tower::Service<Request> for HandlerService<H, T> {
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::Map<
        BoxFuture<'static, Response>,
        fn(Response) -> Result<Response, Infallible>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        self.handler.clone().call(req).map(Ok)
    }
}
