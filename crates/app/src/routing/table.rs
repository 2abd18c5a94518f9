//! The finished routing table and the root service that dispatches on it.

use futures::future::BoxFuture;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tower::{Service, ServiceExt};

use super::Route;
use crate::request::Request;
use crate::response::Response;

/// Routes while the router is being finished.
#[derive(Default)]
pub(super) struct RouteTable {
    pub(super) routes: HashMap<String, Route>,
    /// (prefix, fallback).
    pub(super) fallbacks: Vec<(String, Route)>,
}

/// The finished table. A boxed route is `Send` but not `Sync`, so each sits behind a
/// mutex that is held only to clone it.
pub(super) struct Table {
    pub(super) routes: HashMap<String, Mutex<Route>>,
    /// (prefix, fallback), longest prefix first.
    pub(super) fallbacks: Vec<(String, Mutex<Route>)>,
}

impl Table {
    fn find(&self, route: &str) -> Option<Route> {
        let slot = self.routes.get(route).or_else(|| {
            self.fallbacks
                .iter()
                .find(|(p, _)| {
                    p.is_empty()
                        || route == p
                        || (route.starts_with(p.as_str())
                            && route.as_bytes().get(p.len()) == Some(&b'/'))
                })
                .map(|(_, r)| r)
        })?;
        Some(slot.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The root service: looks the route up and calls its service.
#[derive(Clone)]
pub(super) struct Dispatch(pub(super) Arc<Table>);

impl Service<Request> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = self.0.find(req.route());
        Box::pin(async move {
            match route {
                Some(r) => r.oneshot(req).await,
                None => Ok(super::no_route(req).await),
            }
        })
    }
}
