//! Requests end to end over TCP and memory: replies, JSON, 1 000 concurrent requests,
//! one-way sends, callbacks, both directions, errors and panics, deadlines and
//! cancellation (the remote handler is dropped), streaming bodies, many connections.

mod common;

use bytes::Bytes;
use common::*;
use netcore::extract::{BodyStream, RoutePath};
use netcore::{
    blocking, codes, AppError, ConnectionInfo, Endpoint, Event, Headers, Json, RemoteError,
    Response, Router, State,
};
use netcore_runtime::ConnectionId;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn double(n: String) -> Result<String, RemoteError> {
    let n: u64 = n
        .parse()
        .map_err(|e| RemoteError::new(codes::BAD_REQUEST, format!("{e}")))?;
    Ok((n * 2).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_requests_on_one_tcp_connection_are_answered_correctly() {
    let (server, client) = tcp_pair(with(Router::new().route("double", double)), plain()).await;
    assert_eq!(client.connections().len(), 1);
    let mut tasks = Vec::new();
    for i in 0..1000u64 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let r = c.request("double", i.to_string()).await.expect("request");
            (i, r.text().await.expect("text"))
        }));
    }
    for t in tasks {
        let (i, got) = within(t).await.unwrap();
        assert_eq!(got, (i * 2).to_string(), "reply to request {i} mixed up");
    }
    stop(&client, &server).await;
}

#[tokio::test]
async fn json_in_json_out_with_headers_and_route() {
    async fn list(
        Json(q): Json<Value>,
        headers: Headers,
        RoutePath(route): RoutePath,
    ) -> Json<Value> {
        Json(json!({"page": q["page"], "lang": headers.get_str("lang"), "route": route}))
    }
    let (server, client) = mem_endpoints(with(Router::new().route("/user/list", list)), plain());
    let reply = client
        .message("user/list")
        .header("lang", "fr")
        .json(&json!({"page": 3}))
        .await
        .unwrap();
    assert_eq!(
        reply.headers().get_str("content-type"),
        Some("application/json")
    );
    let v: Value = reply.json().await.unwrap();
    assert_eq!(v, json!({"page": 3, "lang": "fr", "route": "user/list"}));
    stop(&client, &server).await;
}

#[tokio::test]
async fn bad_input_is_a_typed_bad_request() {
    async fn takes_json(Json(_v): Json<Vec<u32>>) {}
    async fn takes_text(_s: String) {}
    let app = Router::new()
        .route("json", takes_json)
        .route("text", takes_text);
    let (server, client) = mem_endpoints(with(app), plain());
    let e = client.request("json", "{not json").await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::BAD_REQUEST));
    assert!(e.to_string().contains("JSON"), "{e}");
    let e = client.request("text", vec![0xff, 0xfe]).await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::BAD_REQUEST));
    stop(&client, &server).await;
}

#[tokio::test]
async fn unknown_route_is_no_route_and_fallback_takes_it_when_set() {
    let (server, client) = mem_endpoints(with(Router::new().route("a", || async { "a" })), plain());
    match client.request("nope", "").await {
        Err(AppError::Remote(e)) => {
            assert_eq!(e.code, codes::NO_ROUTE);
            assert!(e.message.contains("'nope'"), "{}", e.message);
        }
        other => panic!("expected NO_ROUTE, got {other:?}"),
    }
    stop(&client, &server).await;

    async fn fallback(RoutePath(r): RoutePath) -> String {
        format!("default for {r}")
    }
    let (server, client) = mem_endpoints(with(Router::new().fallback(fallback)), plain());
    let r = client.request("x/y", "").await.unwrap();
    assert_eq!(r.text().await.unwrap(), "default for x/y");
    stop(&client, &server).await;
}

#[tokio::test]
async fn handler_errors_and_panics_reach_the_caller_as_typed_remote_errors() {
    async fn fails() -> Result<String, RemoteError> {
        Err(RemoteError::new(
            netcore::ErrorCode(0x321),
            "quota exceeded",
        ))
    }
    async fn fails_std() -> Result<String, netcore::HandlerError> {
        let n: u32 = "x".parse()?;
        Ok(n.to_string())
    }
    async fn panics() -> String {
        panic!("boom in handler")
    }
    fn sync_panics() -> String {
        panic!("boom in blocking handler")
    }
    let app = Router::new()
        .route("fails", fails)
        .route("fails_std", fails_std)
        .route("panics", panics)
        .route("sync_panics", blocking(sync_panics));
    let (server, client) = tcp_pair(with(app), plain()).await;
    let e = client.request("fails", "").await.unwrap_err();
    assert_eq!(e.remote_code(), Some(netcore::ErrorCode(0x321)));
    assert!(e.to_string().contains("quota exceeded"));
    let e = client.request("fails_std", "").await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::HANDLER_ERROR));
    assert!(e.to_string().contains("invalid digit"), "{e}");
    let e = client.request("panics", "").await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::HANDLER_PANIC));
    assert!(e.to_string().contains("boom in handler"), "{e}");
    let e = client.request("sync_panics", "").await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::HANDLER_PANIC));
    assert!(e.to_string().contains("boom in blocking handler"), "{e}");
    // The endpoint carries on after panics.
    assert_eq!(
        client.request("nope", "").await.unwrap_err().remote_code(),
        Some(codes::NO_ROUTE)
    );
    stop(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_handlers_run_on_the_blocking_pool_without_stalling_others() {
    fn slow_sum(body: Bytes) -> String {
        std::thread::sleep(Duration::from_millis(1500));
        body.iter().map(|&b| u64::from(b)).sum::<u64>().to_string()
    }
    let app = Router::new()
        .route("sum", blocking(slow_sum))
        .route("ping", || async { "pong" });
    let (server, client) = mem_endpoints(with(app), plain());
    let c = client.clone();
    let slow = tokio::spawn(async move {
        c.request("sum", vec![1u8, 2, 3])
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        client
            .request("ping", "")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "pong"
    );
    assert!(
        !slow.is_finished(),
        "the ping should not wait for the blocking handler"
    );
    assert_eq!(slow.await.unwrap(), "6");
    stop(&client, &server).await;
}

#[derive(Clone, Default)]
struct Probe {
    started: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
    completed: Arc<AtomicBool>,
}

struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn slow(State(p): State<Probe>) -> &'static str {
    let _guard = SetOnDrop(p.dropped.clone());
    p.started.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    p.completed.store(true, Ordering::SeqCst);
    "late"
}

#[tokio::test]
async fn an_expiring_deadline_cancels_the_remote_handler() {
    let probe = Probe::default();
    let server = with(Router::new().route("slow", slow)).state(probe.clone());
    let (server, client) = tcp_pair(server, plain()).await;
    let cancelled = Arc::new(AtomicUsize::new(0));
    let c = cancelled.clone();
    server.events().on("cancelled", move |_: &Event| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let t0 = tokio::time::Instant::now();
    let e = client
        .message("slow")
        .timeout(Duration::from_millis(200))
        .request("")
        .await
        .unwrap_err();
    assert!(
        matches!(e, AppError::TimedOut { ref route, .. } if route == "slow"),
        "{e:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    eventually("the remote handler future is dropped", || {
        probe.dropped.load(Ordering::SeqCst)
    })
    .await;
    assert_eq!(probe.started.load(Ordering::SeqCst), 1);
    assert!(!probe.completed.load(Ordering::SeqCst));
    server.events().flush().await;
    assert_eq!(cancelled.load(Ordering::SeqCst), 1);
    stop(&client, &server).await;
}

#[tokio::test]
async fn default_deadline_applies_and_cancel_handle_cancels_the_handler() {
    let probe = Probe::default();
    let server = with(Router::new().route("slow", slow)).state(probe.clone());
    let client = plain().request_timeout(Some(Duration::from_millis(100)));
    let (server, client) = mem_endpoints(server, client);
    let e = client.request("slow", "").await.unwrap_err();
    assert!(matches!(e, AppError::TimedOut { after, .. } if after == Duration::from_millis(100)));
    eventually("first handler dropped", || {
        probe.dropped.load(Ordering::SeqCst)
    })
    .await;

    probe.dropped.store(false, Ordering::SeqCst);
    let pending = client.message("slow").no_timeout().start("").await.unwrap();
    eventually("second handler started", || {
        probe.started.load(Ordering::SeqCst) == 2
    })
    .await;
    pending.canceller().cancel();
    assert!(matches!(
        pending.response().await,
        Err(AppError::Cancelled { .. })
    ));
    eventually("second handler dropped", || {
        probe.dropped.load(Ordering::SeqCst)
    })
    .await;

    // Dropping a pending request cancels it too.
    probe.dropped.store(false, Ordering::SeqCst);
    let pending = client.message("slow").no_timeout().start("").await.unwrap();
    eventually("third handler started", || {
        probe.started.load(Ordering::SeqCst) == 3
    })
    .await;
    drop(pending);
    eventually("third handler dropped", || {
        probe.dropped.load(Ordering::SeqCst)
    })
    .await;
    assert!(!probe.completed.load(Ordering::SeqCst));
    stop(&client, &server).await;
}

#[tokio::test]
async fn one_way_send_runs_the_handler_and_gets_no_reply() {
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let g = got.clone();
    let app = Router::new().route("log", move |line: String| {
        let g = g.clone();
        async move { g.lock().unwrap().push(line) }
    });
    let (server, client) = tcp_pair(with(app), plain()).await;
    let responses = Arc::new(AtomicUsize::new(0));
    let r = responses.clone();
    server.events().on("response", move |_: &Event| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    let h = client.send("log", "started").await.unwrap();
    h.finished().await.unwrap();
    client.send("log", "second").await.unwrap();
    eventually("both lines logged", || got.lock().unwrap().len() == 2).await;
    assert_eq!(*got.lock().unwrap(), vec!["started", "second"]);
    server.events().flush().await;
    assert_eq!(
        responses.load(Ordering::SeqCst),
        0,
        "one-way messages get no reply"
    );
    stop(&client, &server).await;
}

#[tokio::test]
async fn callback_style_request() {
    let (server, client) = mem_endpoints(with(Router::new().route("double", double)), plain());
    let (tx, rx) = tokio::sync::oneshot::channel();
    client
        .message("double")
        .callback("21", move |result| {
            let _ = tx.send(result);
        })
        .await
        .unwrap();
    let reply = within(rx).await.unwrap().unwrap();
    assert_eq!(reply.text().await.unwrap(), "42");
    stop(&client, &server).await;
}

#[tokio::test]
async fn both_sides_serve_and_request_on_one_connection() {
    // The server answers "whoami" by asking the client for its name over the same wire.
    async fn whoami(ep: Endpoint, conn: ConnectionId) -> Result<String, RemoteError> {
        let name = ep
            .message("name")
            .to(conn)
            .request("")
            .await
            .map_err(|e| RemoteError::handler(e.to_string()))?;
        Ok(format!(
            "you are {}",
            name.text()
                .await
                .map_err(|e| RemoteError::handler(e.to_string()))?
        ))
    }
    let server = with(Router::new().route("whoami", whoami));
    let client = with(Router::new().route("name", || async { "client-7" }));
    let (server, client) = tcp_pair(server, client).await;
    let r = client.request("whoami", "").await.unwrap();
    assert_eq!(r.text().await.unwrap(), "you are client-7");
    stop(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_replies_go_back_on_the_originating_connection() {
    async fn who(info: ConnectionInfo) -> String {
        format!("{}|{}", info.id.0, info.peer().unwrap_or(""))
    }
    let server = with(Router::new().route("who", who)).build();
    let addr = server.listen("tcp://127.0.0.1:0").await.unwrap();
    let mut clients = Vec::new();
    for _ in 0..5 {
        let c = plain().build();
        c.connect(&addr.to_string()).await.unwrap();
        clients.push(c);
    }
    eventually("server sees 5 connections", || {
        server.connections().len() == 5
    })
    .await;
    let server_ids: Vec<u64> = server.connections().iter().map(|c| c.id.0).collect();
    let mut seen = std::collections::HashSet::new();
    for c in &clients {
        let local = c.connections()[0].transport.local.clone().unwrap();
        for _ in 0..10 {
            let text = c.request("who", "").await.unwrap().text().await.unwrap();
            let (id, peer) = text.split_once('|').unwrap();
            assert_eq!(peer, local, "reply came from another connection's handler");
            assert!(server_ids.contains(&id.parse().unwrap()));
            seen.insert(id.to_string());
        }
    }
    assert_eq!(seen.len(), 5);
    // The server can address each client connection.
    for info in server.connections() {
        let e = server
            .message("anything")
            .to(info.id)
            .request("")
            .await
            .unwrap_err();
        assert_eq!(e.remote_code(), Some(codes::NO_ROUTE));
    }
    assert!(matches!(
        server
            .message("x")
            .to(ConnectionId(u64::MAX))
            .request("")
            .await,
        Err(AppError::UnknownConnection(_))
    ));
    for c in &clients {
        within(c.stop(Duration::from_secs(2))).await;
    }
    eventually("server drops closed connections", || {
        server.connections().is_empty()
    })
    .await;
    within(server.stop(Duration::from_secs(2))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_upload_and_streamed_download() {
    async fn upload(mut body: BodyStream) -> Result<String, RemoteError> {
        let mut n = 0u64;
        let mut sum = 0u64;
        while let Some(chunk) = body.chunk().await? {
            n += chunk.len() as u64;
            sum = chunk.iter().fold(sum, |s, &b| s.wrapping_add(u64::from(b)));
        }
        Ok(format!("{n}:{sum}"))
    }
    async fn download(n: String) -> Response {
        let n: usize = n.parse().unwrap_or(0);
        let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        Response::stream(std::io::Cursor::new(data), Some(n as u64))
    }
    let (server, client) = tcp_pair(
        with(
            Router::new()
                .route("upload", upload)
                .route("download", download),
        ),
        plain(),
    )
    .await;
    let len = 5_000_000usize;
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    let sum = data.iter().fold(0u64, |s, &b| s.wrapping_add(u64::from(b)));
    let body = netcore::Body::stream(std::io::Cursor::new(data), Some(len as u64));
    let r = client.request("upload", body).await.unwrap();
    assert_eq!(r.text().await.unwrap(), format!("{len}:{sum}"));

    let r = client.request("download", "3000000").await.unwrap();
    let mut body = r.into_body();
    let mut i = 0usize;
    while let Some(chunk) = body.chunk().await.unwrap() {
        for &b in chunk.iter() {
            assert_eq!(b, (i % 251) as u8, "byte {i}");
            i += 1;
        }
    }
    assert_eq!(i, 3_000_000);
    stop(&client, &server).await;
}

#[cfg(feature = "schema")]
mod typed {
    use super::*;
    use netcore::Typed;

    netcore_schema::message! {
        /// A sensor reading.
        #[derive(Debug, PartialEq)]
        pub struct Reading = 4 {
            /// Sensor id.
            pub sensor: u16 [">H"],
            /// Millidegrees.
            pub value: i32 [">i"],
        }
    }
    netcore_schema::message! {
        /// An acknowledgement.
        #[derive(Debug, PartialEq)]
        pub struct Ack = 5 {
            /// Echoed sensor id.
            pub sensor: u16 [">H"],
        }
    }

    #[tokio::test]
    async fn typed_messages_as_request_and_response_bodies() {
        async fn store(Typed(r): Typed<Reading>) -> Typed<Ack> {
            assert_eq!(r.value, -1250);
            Typed(Ack { sensor: r.sensor })
        }
        let (server, client) = mem_endpoints(with(Router::new().route("store", store)), plain());
        let reply = client
            .message("store")
            .typed(&Reading {
                sensor: 7,
                value: -1250,
            })
            .await
            .unwrap();
        assert_eq!(reply.headers().get_str(netcore::TYPE_HEADER), Some("5"));
        assert_eq!(reply.typed::<Ack>().await.unwrap(), Ack { sensor: 7 });
        // A body announced as another type is refused, and so is a truncated one.
        let e = client
            .message("store")
            .typed(&Ack { sensor: 1 })
            .await
            .unwrap_err();
        assert_eq!(e.remote_code(), Some(codes::BAD_REQUEST));
        let e = client.request("store", vec![0u8, 7]).await.unwrap_err();
        assert_eq!(e.remote_code(), Some(codes::BAD_REQUEST));
        stop(&client, &server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_and_middleware_that_ignore_a_large_body_still_answer() {
    use netcore::middleware::{from_fn, Next};
    let guarded = Router::new()
        .route("upload", |_b: Bytes| async { "stored" })
        .layer(from_fn(|req: netcore::Request, next: Next| async move {
            if req.headers().get_str("token") != Some("t") {
                return Response::error(codes::UNAUTHORIZED, "no token");
            }
            next.run(req).await
        }));
    let app = Router::new()
        .route("ignore", || async { "ignored the body" })
        .merge(guarded);
    let (server, client) = tcp_pair(with(app), plain()).await;
    let big = || netcore::Body::stream(std::io::Cursor::new(vec![1u8; 3_000_000]), Some(3_000_000));
    let r = client.request("ignore", big()).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ignored the body");
    let e = client.request("upload", big()).await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::UNAUTHORIZED), "{e}");
    let r = client
        .message("upload")
        .header("token", "t")
        .request(big())
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "stored");
    stop(&client, &server).await;
}
