//! The blocking client against an async server over TCP: requests, JSON, errors and
//! panics as typed errors (never a silent wait), deadlines, one-way sends, and the
//! seed's recv/send functions style.

use netcore::blocking::Client;
use netcore::{codes, AppError, Endpoint, Json, RemoteError, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn server(log: Arc<Mutex<Vec<String>>>) -> (tokio::runtime::Runtime, Endpoint, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let app = Router::new()
        .route("echo", |b: bytes::Bytes| async move { b })
        .route("users", |Json(q): Json<Value>| async move {
            Json(json!({"page": q["page"], "users": ["a", "b"]}))
        })
        .route("fails", || async {
            Err::<(), _>(RemoteError::handler("broken"))
        })
        .route("panics", || async {
            panic!("kaboom");
            #[allow(unreachable_code)]
            ()
        })
        .route("slow", || async {
            tokio::time::sleep(Duration::from_secs(30)).await
        })
        .route("log", move |s: String| {
            let log = log.clone();
            async move { log.lock().unwrap().push(s) }
        });
    let (ep, addr) = rt.block_on(async {
        let ep = Endpoint::new(app);
        let addr = ep.listen("tcp://127.0.0.1:0").await.unwrap();
        (ep, addr.to_string())
    });
    (rt, ep, addr)
}

#[test]
fn blocking_client_requests_errors_deadlines_and_sends() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (rt, ep, addr) = server(log.clone());
    let client = Client::connect(&addr).unwrap();
    assert_eq!(client.request("echo", "hi").unwrap().text().unwrap(), "hi");
    let v: Value = client.request_json("users", &json!({"page": 2})).unwrap();
    assert_eq!(v["page"], 2);
    let e = client.request("fails", "").unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::HANDLER_ERROR));
    let e = client.request("panics", "").unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::HANDLER_PANIC));
    assert!(e.to_string().contains("kaboom"));
    let e = client
        .request_timeout("slow", "", Duration::from_millis(100))
        .unwrap_err();
    assert!(matches!(e, AppError::TimedOut { .. }), "{e:?}");
    client.send("log", "one-way").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*log.lock().unwrap(), vec!["one-way".to_string()]);
    client.close(Duration::from_secs(1));
    rt.block_on(ep.stop(Duration::from_secs(1)));
}

#[test]
fn blocking_client_from_recv_and_send_functions() {
    use std::io::{Read, Write};
    let (rt, ep, addr) = server(Arc::default());
    let stream = std::net::TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    let (mut r, mut w) = (stream.try_clone().unwrap(), stream);
    let client = Client::builder()
        .from_fns(move |buf| r.read(buf), move |data| w.write_all(data))
        .unwrap();
    assert_eq!(
        client.request("echo", "over fns").unwrap().text().unwrap(),
        "over fns"
    );
    drop(client);
    rt.block_on(ep.stop(Duration::from_secs(1)));
}
