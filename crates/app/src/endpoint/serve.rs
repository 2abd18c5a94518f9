//! Serving one connection: take its messages one by one as handler slots free up
//! (per connection and endpoint-wide), run each through the router in its own task
//! with a tracing span, answer with the reply (or a remote error), drop the handler
//! when the peer cancels, and close after the peer's GOAWAY once handlers are done.

use netcore_core::{MessageHead, MessageId};
use netcore_runtime::{IncomingMessage, Pipe};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

use super::Endpoint;
use crate::error::{codes, ONE_WAY_HEADER};
use crate::events::Event;
use crate::extract::BodyLimit;
use crate::handler::catch_panic;
use crate::request::{ConnectionInfo, Request};
use crate::response::Response;
use crate::routing::Route;

/// One connection as the endpoint tracks it.
pub(crate) struct ConnShared {
    pub(crate) pipe: Pipe,
    pub(crate) info: Arc<ConnectionInfo>,
    /// Set when this side is closing the connection: new requests are refused.
    pub(crate) draining: CancellationToken,
    /// Requests taken from the connection and not yet answered.
    active: AtomicUsize,
    idle: Notify,
}

impl ConnShared {
    pub(crate) fn new(pipe: Pipe, info: Arc<ConnectionInfo>) -> ConnShared {
        ConnShared {
            pipe,
            info,
            draining: CancellationToken::new(),
            active: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    /// Waits until no request of this connection is being handled, and none is
    /// waiting to be taken.
    pub(crate) async fn wait_idle(&self) {
        loop {
            loop {
                let notified = self.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.active.load(Ordering::SeqCst) == 0 {
                    break;
                }
                notified.await;
            }
            // A message the driver already queued is taken by the serve loop as soon as
            // it runs; give it a few turns before concluding the connection is idle.
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
            if self.active.load(Ordering::SeqCst) == 0 {
                return;
            }
        }
    }
}

/// Marks a request of a connection active until dropped.
struct Active(Arc<ConnShared>);

impl Active {
    fn new(conn: &Arc<ConnShared>) -> Active {
        conn.active.fetch_add(1, Ordering::SeqCst);
        Active(conn.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

pub(crate) async fn serve_connection(ep: Endpoint, conn: Arc<ConnShared>, service: Route) {
    let span = tracing::info_span!(
        "netcore.connection",
        id = conn.info.id.0,
        peer = conn.info.peer().unwrap_or("-")
    );
    async move {
        tracing::debug!(transport = ?conn.info.transport.kind, "connection added");
        let closer = tokio::spawn(close_after_peer_goaway(conn.clone()).in_current_span());
        let slots = Arc::new(Semaphore::new(ep.inner.max_workers_per_connection));
        // Requests taken from the connection that wait for a handler slot, oldest first.
        // Their bodies stay in the runtime's bounded per-message buffer (a larger body
        // holds its sender's credit); past `max_pending` more requests are refused.
        let mut pending: VecDeque<(IncomingMessage, Active)> = VecDeque::new();
        let mut admission: Option<Pin<Box<Admission>>> = None;
        loop {
            if admission.is_none() && !pending.is_empty() {
                admission = Some(Box::pin(admit(slots.clone(), ep.inner.workers.clone())));
            }
            tokio::select! {
                biased;
                permits = async { admission.as_mut().expect("guarded").await }, if admission.is_some() => {
                    admission = None;
                    let Some((slot, worker)) = permits else { break };
                    let Some((msg, active)) = pending.pop_front() else { continue };
                    if conn.draining.is_cancelled() || ep.inner.stopping.is_cancelled() {
                        refuse(&conn, msg, codes::SHUTTING_DOWN).await;
                        continue;
                    }
                    if msg.abandon_signal().is_abandoned() {
                        // Cancelled by the peer while it waited: nothing to run.
                        ep.inner.events.emit_event(Event::MessageCancelled {
                            connection: conn.info.id,
                            id: msg.id,
                            route: msg.route().to_string(),
                        });
                        continue;
                    }
                    let request_span =
                        tracing::info_span!("netcore.request", route = msg.route(), id = msg.id.0);
                    let task = handle(ep.clone(), conn.clone(), service.clone(), msg);
                    ep.inner.handlers.spawn(
                        async move {
                            task.await;
                            drop((slot, worker, active));
                        }
                        .instrument(request_span),
                    );
                }
                msg = conn.pipe.accept() => {
                    let Some(msg) = msg else { break };
                    if msg.head.route.is_none() {
                        tracing::debug!(id = %msg.id, "dropping a reply no request waits for");
                        continue;
                    }
                    let active = Active::new(&conn);
                    if conn.draining.is_cancelled() || ep.inner.stopping.is_cancelled() {
                        refuse(&conn, msg, codes::SHUTTING_DOWN).await;
                        continue;
                    }
                    if pending.len() >= ep.inner.max_pending_per_connection {
                        tracing::debug!(route = msg.route(), "request queue full; refused");
                        refuse(&conn, msg, codes::OVERLOADED).await;
                        continue;
                    }
                    pending.push_back((msg, active));
                }
            }
        }
        for (msg, _active) in pending.drain(..) {
            refuse(&conn, msg, codes::SHUTTING_DOWN).await;
        }
        closer.abort();
        let error = conn.pipe.closed().await;
        ep.forget(conn.info.id);
        match &error {
            None => tracing::debug!("connection closed"),
            Some(e) => {
                tracing::debug!(error = %e, "connection closed with an error");
                ep.inner.events.emit_event(Event::Error {
                    connection: Some(conn.info.id),
                    message: e.to_string(),
                });
            }
        }
        ep.inner.events.emit_event(Event::ConnectionClosed {
            id: conn.info.id,
            error: error.map(|e| e.to_string()),
        });
    }
    .instrument(span)
    .await
}

/// With `manual_close`, a peer's GOAWAY is ours to answer: once every request it sent
/// has been answered, close our side too.
async fn close_after_peer_goaway(conn: Arc<ConnShared>) {
    let mut state = conn.pipe.state_changes();
    if state
        .wait_for(|s| s.going_away || s.closed.is_some())
        .await
        .is_err()
    {
        return;
    }
    if state.borrow().closed.is_some() {
        return;
    }
    tracing::debug!("peer is going away; closing after the last reply");
    conn.wait_idle().await;
    conn.pipe.close();
}

type Admission = dyn Future<Output = Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>> + Send;

/// Waits for a slot of the connection, then one of the endpoint.
async fn admit(
    slots: Arc<Semaphore>,
    workers: Arc<Semaphore>,
) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
    let slot = slots.acquire_owned().await.ok()?;
    let worker = workers.acquire_owned().await.ok()?;
    Some((slot, worker))
}

/// Answers a request without running it (`SHUTTING_DOWN`, `OVERLOADED`).
async fn refuse(conn: &ConnShared, msg: IncomingMessage, code: netcore_core::ErrorCode) {
    let one_way = msg.headers().get(ONE_WAY_HEADER).is_some();
    let id = msg.id;
    crate::request::discard_body(msg.body, crate::extract::DEFAULT_BODY_LIMIT);
    if !one_way {
        let why = if code == codes::OVERLOADED {
            "too many requests are waiting on this connection; request not served"
        } else {
            "the endpoint is shutting down; request not served"
        };
        let resp = Response::error(code, why);
        send_reply(&conn.pipe, id, netcore_core::Urgency::default(), resp).await;
    }
}

async fn send_reply(
    pipe: &Pipe,
    to: MessageId,
    urgency: netcore_core::Urgency,
    resp: Response,
) -> Option<netcore_runtime::PipeError> {
    let (headers, body) = resp.into_wire();
    let mut head = MessageHead::reply(to).with_urgency(urgency);
    if !headers.is_empty() {
        head.metadata = headers.encode();
    }
    pipe.send_head(head, body, None).await.err()
}

async fn handle(ep: Endpoint, conn: Arc<ConnShared>, service: Route, msg: IncomingMessage) {
    let route = msg.route().to_string();
    let id = msg.id;
    let events = &ep.inner.events;
    events.emit_event(Event::RequestReceived {
        connection: conn.info.id,
        id,
        route: route.clone(),
    });
    let mut req = Request::from_incoming(msg, conn.info.clone());
    req.extensions.extend(&ep.inner.extensions);
    req.extensions.insert(BodyLimit(ep.inner.body_limit));
    req.extensions.insert(ep.clone());
    let one_way = req.is_one_way();
    let urgency = req.urgency();
    let abandoned = req.abandon_signal();
    let work = catch_panic(async move {
        match service.oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        }
    });
    let cancelled = async {
        match &abandoned {
            Some(a) => a.wait().await,
            None => std::future::pending().await,
        }
    };
    let resp = tokio::select! {
        r = work => r,
        _ = cancelled => {
            tracing::debug!("the peer cancelled the request; handler dropped");
            events.emit_event(Event::MessageCancelled { connection: conn.info.id, id, route });
            return;
        }
        _ = ep.inner.hard_stop.cancelled() => {
            Response::error(codes::SHUTTING_DOWN, "the endpoint stopped before the handler finished")
        }
    };
    if let Some(e) = resp.as_error() {
        tracing::debug!(code = %e.code, message = %e.message, "request failed");
    }
    if one_way {
        if let Some(e) = resp.as_error() {
            tracing::warn!(code = %e.code, message = %e.message, "one-way message failed (no reply is sent)");
        }
        return;
    }
    let error = resp.as_error().map(|e| e.code);
    match send_reply(&conn.pipe, id, urgency, resp).await {
        None => events.emit_event(Event::ResponseSent {
            connection: conn.info.id,
            id,
            route,
            error,
        }),
        Some(e) => {
            tracing::debug!(error = %e, "could not send the reply");
            events.emit_event(Event::Error {
                connection: Some(conn.info.id),
                message: format!("could not send the reply to '{route}': {e}"),
            });
        }
    }
}
