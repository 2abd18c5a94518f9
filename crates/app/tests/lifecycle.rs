//! Endpoint lifecycle: events in order, custom events, bounded concurrency per
//! connection and endpoint (with credit withheld from waiting requests), graceful stop
//! with and without its deadline passing, closing after a peer's GOAWAY, removing a
//! connection.

mod common;

use bytes::Bytes;
use common::*;
use netcore::{codes, AppError, Event, Events, Router, State};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_fire_in_order() {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let events = Events::new();
    let l = log.clone();
    events.on("*", move |ev: &Event| {
        let detail = match ev {
            Event::RequestReceived { route, .. } | Event::ResponseSent { route, .. } => {
                format!(":{route}")
            }
            _ => String::new(),
        };
        l.lock().unwrap().push(format!("{}{detail}", ev.name()));
    });
    let server = with(Router::new().route("a", || async { "a" })).events(events);
    let (server, client) = tcp_pair(server, plain()).await;
    client.request("a", "").await.unwrap();
    let _ = client.request("missing", "").await;
    within(client.stop(Duration::from_secs(2))).await;
    eventually("server sees the close", || server.connections().is_empty()).await;
    within(server.stop(Duration::from_secs(2))).await;
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            "start",
            "connection_opened",
            "request:a",
            "response:a",
            "request:missing",
            "response:missing",
            "connection_closed",
            "stop"
        ],
        "{log:?}"
    );
}

#[tokio::test]
async fn custom_events_on_once_off_and_failing_listeners() {
    let events = Events::new();
    let hits = Arc::new(Mutex::new(Vec::<String>::new()));
    let h = hits.clone();
    let always = events.on("tick", move |ev: &Event| {
        h.lock().unwrap().push(format!("on {}", ev.data()))
    });
    let h = hits.clone();
    events.once("tick", move |ev: &Event| {
        h.lock().unwrap().push(format!("once {}", ev.data()))
    });
    events.on("tick", |_: &Event| -> Result<(), String> {
        Err("listener failure".into())
    });
    events.on("tick", |_: &Event| -> () { panic!("listener panic") });
    let h = hits.clone();
    events.on_async("tick", move |ev: Event| {
        let h = h.clone();
        async move { h.lock().unwrap().push(format!("async {}", ev.data())) }
    });
    events.emit("tick", serde_json::json!(1));
    events.emit("tick", serde_json::json!(2));
    events.flush().await;
    assert!(events.off_listener(always));
    assert_eq!(events.off("tick"), 3); // the failing, panicking and async ones
    events.emit("tick", serde_json::json!(3));
    events.flush().await;
    assert_eq!(
        *hits.lock().unwrap(),
        vec!["on 1", "once 1", "async 1", "on 2", "async 2"],
        "failing listeners must not stop the others, once fires once, off removes"
    );
}

#[derive(Clone, Default)]
struct Gauge {
    current: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

async fn measured(State(g): State<Gauge>) -> &'static str {
    let now = g.current.fetch_add(1, Ordering::SeqCst) + 1;
    g.peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(15)).await;
    g.current.fetch_sub(1, Ordering::SeqCst);
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_workers_per_connection_bounds_handlers() {
    let g = Gauge::default();
    let server = with(Router::new().route("m", measured))
        .state(g.clone())
        .max_workers_per_connection(3);
    let (server, client) = tcp_pair(server, plain()).await;
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let c = client.clone();
        tasks.push(tokio::spawn(
            async move { c.request("m", "").await.unwrap() },
        ));
    }
    for t in tasks {
        within(t).await.unwrap();
    }
    assert_eq!(g.peak.load(Ordering::SeqCst), 3);
    stop(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_workers_bounds_handlers_across_connections() {
    let g = Gauge::default();
    let server = with(Router::new().route("m", measured))
        .state(g.clone())
        .max_workers(2)
        .build();
    let addr = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let mut tasks = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let c = plain().build();
        c.connect(&addr.to_string()).await.unwrap();
        for _ in 0..8 {
            let c = c.clone();
            tasks.push(tokio::spawn(
                async move { c.request("m", "").await.unwrap() },
            ));
        }
        clients.push(c);
    }
    for t in tasks {
        within(t).await.unwrap();
    }
    assert_eq!(g.peak.load(Ordering::SeqCst), 2);
    for c in &clients {
        within(c.stop(Duration::from_secs(2))).await;
    }
    within(server.stop(Duration::from_secs(2))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_request_is_not_read_and_its_sender_is_held_back_by_credit() {
    let gate = Arc::new(Semaphore::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let g = gate.clone();
    let r = received.clone();
    let app = Router::new()
        .route("gate", move || {
            let g = g.clone();
            async move {
                let _ = g.acquire().await.map(|p| p.forget());
            }
        })
        .route("sink", move |b: Bytes| {
            let r = r.clone();
            async move {
                r.store(b.len(), Ordering::SeqCst);
            }
        });
    let server = with(app).max_workers_per_connection(1).body_limit(64 << 20);
    let (server, client) = tcp_pair(server, plain()).await;
    let c = client.clone();
    let blocked = tokio::spawn(async move { c.message("gate").no_timeout().request("").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let total = 8_000_000u64;
    // A streamed body: progress counts what the protocol took, which credit bounds.
    let body = netcore::Body::stream(std::io::Cursor::new(vec![7u8; total as usize]), Some(total));
    let handle = client.send("sink", body).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent, _) = handle.progress();
    assert!(
        sent < total / 2,
        "the unadmitted message was read: {sent} of {total} bytes sent"
    );
    assert_eq!(received.load(Ordering::SeqCst), 0);
    gate.add_permits(1);
    within(blocked).await.unwrap().unwrap();
    within(handle.finished()).await.unwrap();
    eventually("the sink handler ran", || {
        received.load(Ordering::SeqCst) == total as usize
    })
    .await;
    stop(&client, &server).await;
}

#[tokio::test]
async fn graceful_stop_lets_running_handlers_finish_and_refuses_new_ones() {
    let app = Router::new().route("slow", || async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        "finished"
    });
    let (server, client) = tcp_pair(with(app), plain()).await;
    let c = client.clone();
    let running = tokio::spawn(async move { c.request("slow", "").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = server.clone();
    let stopping = tokio::spawn(async move { s.stop(Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    match client.request("slow", "").await {
        Err(AppError::Remote(e)) => assert_eq!(e.code, codes::SHUTTING_DOWN),
        Err(AppError::Pipe(_)) => {} // the connection may already be closing
        other => panic!("a request during stop must fail typed, got {other:?}"),
    }
    let r = within(running).await.unwrap().unwrap();
    assert_eq!(r.text().await.unwrap(), "finished");
    within(stopping).await.unwrap();
    assert!(server.is_stopped());
    within(client.stop(Duration::from_secs(1))).await;
}

#[tokio::test]
async fn stop_deadline_drops_handlers_and_callers_get_shutting_down() {
    let app = Router::new().route("forever", || async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    let (server, client) = mem_endpoints(with(app), plain());
    let c = client.clone();
    let running = tokio::spawn(async move { c.message("forever").no_timeout().request("").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    within(server.stop(Duration::from_millis(100))).await;
    let e = within(running).await.unwrap().unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::SHUTTING_DOWN), "{e}");
    within(client.stop(Duration::from_secs(1))).await;
    assert!(matches!(
        client.request("x", "").await,
        Err(AppError::Stopped)
    ));
}

#[tokio::test]
async fn after_the_peer_goes_away_in_flight_replies_are_still_delivered() {
    let app = Router::new().route("slow", || async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        "delivered"
    });
    let (server, client) = tcp_pair(with(app), plain()).await;
    let pending = client.message("slow").start("").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The client begins a graceful close (GOAWAY) while the server is still working.
    let id = client.connections()[0].id;
    client.pipe(id).unwrap().close();
    let r = within(pending.response()).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "delivered");
    eventually("both sides drop the connection", || {
        server.connections().is_empty() && client.connections().is_empty()
    })
    .await;
    stop(&client, &server).await;
}

#[tokio::test]
async fn removing_a_connection_closes_it() {
    let (server, client) = mem_endpoints(with(Router::new().route("a", || async { "a" })), plain());
    client.request("a", "").await.unwrap();
    let closed = Arc::new(AtomicUsize::new(0));
    let c = closed.clone();
    server.events().on("connection_closed", move |_: &Event| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let id = server.connections()[0].id;
    assert!(server.remove(id, Duration::from_secs(1)));
    eventually("connection removed on both sides", || {
        server.connections().is_empty() && client.connections().is_empty()
    })
    .await;
    server.events().flush().await;
    assert_eq!(closed.load(Ordering::SeqCst), 1);
    assert!(matches!(
        client.request("a", "").await,
        Err(AppError::NoConnection)
    ));
    stop(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cancelled_while_waiting_for_a_slot_never_runs() {
    let gate = Arc::new(Semaphore::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let (g, r) = (gate.clone(), runs.clone());
    let app = Router::new()
        .route("gate", move || {
            let g = g.clone();
            async move {
                let _ = g.acquire().await.map(|p| p.forget());
            }
        })
        .route("counted", move || {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::SeqCst);
            }
        });
    let (server, client) = tcp_pair(with(app).max_workers_per_connection(1), plain()).await;
    let cancelled = Arc::new(AtomicUsize::new(0));
    let c = cancelled.clone();
    server.events().on("cancelled", move |_: &Event| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let cl = client.clone();
    let blocked = tokio::spawn(async move { cl.message("gate").no_timeout().request("").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = client
        .message("counted")
        .timeout(Duration::from_millis(100))
        .request("")
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::TimedOut { .. }));
    // Let the CANCEL cross the wire before the slot frees up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.add_permits(1);
    within(blocked).await.unwrap().unwrap();
    eventually("the waiting request is reported cancelled", || {
        cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
    // The connection still serves, and the cancelled request never ran.
    client.request("counted", "").await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    stop(&client, &server).await;
}

#[tokio::test]
async fn a_connection_aborted_by_the_peer_is_reported_as_error_and_close() {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let events = Events::new();
    let l = log.clone();
    events.on("*", move |ev: &Event| match ev {
        Event::Error { message, .. } => l.lock().unwrap().push(format!("error: {message}")),
        Event::ConnectionClosed { error, .. } => l
            .lock()
            .unwrap()
            .push(format!("closed: {}", error.is_some())),
        _ => {}
    });
    let (server, client) = mem_endpoints(plain().events(events), plain());
    let id = client.connections()[0].id;
    client.pipe(id).unwrap().ready().await.unwrap();
    client
        .pipe(id)
        .unwrap()
        .abort(netcore::ErrorCode(0x777), "client gives up");
    eventually("the server drops the connection", || {
        server.connections().is_empty()
    })
    .await;
    server.events().flush().await;
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[0].starts_with("error: ") && log[0].contains("client gives up"),
        "{log:?}"
    );
    assert_eq!(log[1], "closed: true");
    stop(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_waiting_queue_is_refused_as_overloaded() {
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let app = Router::new()
        .route("gate", move || {
            let g = g.clone();
            async move {
                let _ = g.acquire().await.map(|p| p.forget());
            }
        })
        .route("quick", || async { "done" });
    let server = with(app)
        .max_workers_per_connection(1)
        .max_pending_per_connection(3);
    let (server, client) = tcp_pair(server, plain()).await;
    let c = client.clone();
    let blocked = tokio::spawn(async move { c.message("gate").no_timeout().request("").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move { c.request("quick", "").await }));
    }
    // The refused ones are answered while the gate still holds the only slot.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.add_permits(1);
    within(blocked).await.unwrap().unwrap();
    let (mut served, mut overloaded) = (0, 0);
    for t in tasks {
        match within(t).await.unwrap() {
            Ok(r) => {
                assert_eq!(r.text().await.unwrap(), "done");
                served += 1;
            }
            Err(e) => {
                assert_eq!(e.remote_code(), Some(codes::OVERLOADED), "{e}");
                overloaded += 1;
            }
        }
    }
    assert_eq!((served, overloaded), (3, 7));
    stop(&client, &server).await;
}
