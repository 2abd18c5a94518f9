//! Routing and middleware: blueprints keep their middleware, hooks, error handler,
//! fallback and state to their own routes; tower's timeout, concurrency limit and rate
//! limit work unchanged; from_fn authentication; per-route layers.

mod common;

use common::*;
use netcore::extract::RoutePath;
use netcore::middleware::{from_fn, Next};
use netcore::{codes, Extension, Handler, RemoteError, Request, Response, Router, State};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceBuilder;

/// A middleware that tags responses and counts the requests it saw.
fn tagging(
    tag: &'static str,
    seen: Arc<Mutex<Vec<String>>>,
) -> netcore::middleware::FromFnLayer<
    impl Fn(Request, Next) -> futures::future::BoxFuture<'static, Response>
        + Clone
        + Send
        + Sync
        + 'static,
> {
    from_fn(move |req: Request, next: Next| {
        let seen = seen.clone();
        let f: futures::future::BoxFuture<'static, Response> = Box::pin(async move {
            seen.lock().unwrap().push(format!("{tag}:{}", req.route()));
            next.run(req).await.with_header("tag", tag)
        });
        f
    })
}

async fn route_name(RoutePath(r): RoutePath) -> String {
    r
}

#[tokio::test]
async fn blueprint_middleware_does_not_touch_other_routes() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let users = Router::blueprint("users", "/user")
        .route("/list", route_name)
        .layer(tagging("users", seen.clone()));
    let admin = Router::blueprint("admin", "admin").route("stats", route_name);
    let app = Router::new()
        .route("ping", route_name)
        .register(users)
        .register(admin);
    let (server, client) = mem_endpoints(with(app), plain());

    let r = client.request("/user/list", "").await.unwrap();
    assert_eq!(r.headers().get_str("tag"), Some("users"));
    assert_eq!(r.text().await.unwrap(), "user/list");
    for route in ["ping", "admin/stats"] {
        let r = client.request(route, "").await.unwrap();
        assert_eq!(
            r.headers().get_str("tag"),
            None,
            "blueprint middleware leaked onto {route}"
        );
        assert_eq!(r.text().await.unwrap(), route);
    }
    // Unknown routes under the prefix are not the blueprint's either (it has no fallback).
    let e = client.request("user/nope", "").await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::NO_ROUTE));
    assert_eq!(*seen.lock().unwrap(), vec!["users:user/list".to_string()]);
    stop(&client, &server).await;
}

#[tokio::test]
async fn endpoint_layer_wraps_everything_and_nesting_order_is_outer_first() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let inner = Router::blueprint("inner", "in")
        .route("x", route_name)
        .layer(tagging("inner", seen.clone()));
    let app = Router::new()
        .route("y", route_name)
        .register(inner)
        .layer(tagging("outer", seen.clone()));
    let r = app.call(Request::new("in/x", "")).await;
    // The outer layer runs first and sees the inner one's response.
    assert_eq!(r.headers().get_str("tag"), Some("outer"));
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["outer:in/x".to_string(), "inner:in/x".to_string()]
    );
    seen.lock().unwrap().clear();
    let app = Router::new()
        .route("y", route_name)
        .layer(tagging("outer", seen.clone()));
    let r = app.call(Request::new("missing", "")).await;
    assert_eq!(r.as_error().unwrap().code, codes::NO_ROUTE);
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["outer:missing".to_string()],
        "root layers wrap the default answer too"
    );
}

#[tokio::test]
async fn hooks_short_circuit_and_replace_and_error_handler_is_scoped() {
    let bp = Router::blueprint("guarded", "g")
        .route("ok", || async { "fine" })
        .route("fail", || async {
            Err::<String, _>(RemoteError::handler("inner failure"))
        })
        .before(|req: Request| async move {
            if req.headers().get_str("token") == Some("t") {
                Ok(req)
            } else {
                Err(Response::error(codes::UNAUTHORIZED, "no token"))
            }
        })
        .after(|resp: Response| async move { resp.with_header("after", "1") })
        .on_error(|e: RemoteError| async move { Response::new(format!("handled: {}", e.message)) });
    let app = Router::new()
        .route("plain_fail", || async {
            Err::<String, _>(RemoteError::handler("plain failure"))
        })
        .register(bp);
    let (server, client) = mem_endpoints(with(app), plain());
    // Before hook short-circuits; the blueprint's error handler maps the rejection.
    let r = client.request("g/ok", "").await.unwrap();
    assert_eq!(r.text().await.unwrap(), "handled: no token");
    // Passes the hook; the after hook adds its header.
    let r = client
        .message("g/ok")
        .header("token", "t")
        .request("")
        .await
        .unwrap();
    assert_eq!(r.headers().get_str("after"), Some("1"));
    assert_eq!(r.text().await.unwrap(), "fine");
    let r = client
        .message("g/fail")
        .header("token", "t")
        .request("")
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "handled: inner failure");
    // Outside the blueprint errors stay errors.
    let e = client.request("plain_fail", "").await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::HANDLER_ERROR));
    stop(&client, &server).await;
}

#[tokio::test]
async fn fallback_and_state_are_scoped_to_their_blueprint() {
    async fn name(State(s): State<&'static str>) -> &'static str {
        s
    }
    let bp = Router::blueprint("users", "user")
        .route("name", name)
        .fallback(|RoutePath(r): RoutePath| async move { format!("users fallback: {r}") })
        .state("users-state");
    let app = Router::new().route("name", name).register(bp);
    let ep = with(app).state("root-state");
    let (server, client) = mem_endpoints(ep, plain());
    assert_eq!(
        client
            .request("user/name", "")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "users-state"
    );
    assert_eq!(
        client
            .request("name", "")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "root-state"
    );
    assert_eq!(
        client
            .request("user/zzz", "")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "users fallback: user/zzz"
    );
    assert_eq!(
        client.request("zzz", "").await.unwrap_err().remote_code(),
        Some(codes::NO_ROUTE)
    );
    assert_eq!(
        client
            .request("username", "")
            .await
            .unwrap_err()
            .remote_code(),
        Some(codes::NO_ROUTE)
    );
    stop(&client, &server).await;
}

#[test]
#[should_panic(expected = "registered twice")]
fn duplicate_routes_are_refused() {
    let _ = Router::new()
        .route("a", || async {})
        .merge(Router::new().route("a", || async {}))
        .into_route();
}

#[tokio::test]
async fn authentication_middleware_example() {
    #[derive(Clone)]
    struct User(String);
    let auth = from_fn(|mut req: Request, next: Next| async move {
        let user = match req.headers().get_str("authorization") {
            Some("Bearer alice-token") => User("alice".into()),
            Some("Bearer bob-token") => User("bob".into()),
            _ => return Response::error(codes::UNAUTHORIZED, "missing or invalid bearer token"),
        };
        req.extensions_mut().insert(user);
        next.run(req).await
    });
    async fn me(Extension(user): Extension<User>) -> String {
        format!("hello {}", user.0)
    }
    let private = Router::blueprint("private", "me").route("", me).layer(auth);
    let app = Router::new()
        .route("public", || async { "anyone" })
        .register(private);
    let (server, client) = tcp_pair(with(app), plain()).await;
    let e = client.request("me", "").await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::UNAUTHORIZED));
    let r = client
        .message("me")
        .header("authorization", "Bearer bob-token")
        .request("")
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "hello bob");
    assert_eq!(
        client
            .request("public", "")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "anyone"
    );
    stop(&client, &server).await;
}

#[tokio::test]
async fn tower_timeout_layer_answers_with_a_timeout_error() {
    let app = Router::new()
        .route("slow", || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        })
        .route("fast", || async { "quick" })
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(50)));
    let (server, client) = mem_endpoints(with(app), plain());
    let e = client.request("slow", "").await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::TIMEOUT), "{e}");
    assert_eq!(
        client
            .request("fast", "")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "quick"
    );
    stop(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_concurrency_limit_on_one_route() {
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (c, p) = (current.clone(), peak.clone());
    let work = move || {
        let (c, p) = (c.clone(), p.clone());
        async move {
            let now = c.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            c.fetch_sub(1, Ordering::SeqCst);
            "done"
        }
    };
    let app = Router::new().route(
        "work",
        work.layer(tower::limit::ConcurrencyLimitLayer::new(2)),
    );
    let (server, client) = tcp_pair(with(app), plain()).await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            c.request("work", "").await.unwrap().text().await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(within(t).await.unwrap(), "done");
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "ConcurrencyLimit(2) must cap the handlers at 2"
    );
    stop(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_rate_limit_behind_a_buffer_spaces_requests() {
    let stamps = Arc::new(Mutex::new(Vec::<std::time::Instant>::new()));
    let s = stamps.clone();
    let handler = move || {
        let s = s.clone();
        async move { s.lock().unwrap().push(std::time::Instant::now()) }
    };
    // RateLimit is not Clone: put it behind a Buffer, as with any tower stack.
    let limit = ServiceBuilder::new()
        .buffer(64)
        .rate_limit(2, Duration::from_millis(200));
    let app = Router::new().route("tick", handler.layer(limit));
    let (server, client) = mem_endpoints(with(app), plain());
    let t0 = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let c = client.clone();
        tasks.push(tokio::spawn(
            async move { c.request("tick", "").await.unwrap() },
        ));
    }
    for t in tasks {
        within(t).await.unwrap();
    }
    // 6 requests at 2 per 200 ms need at least two full periods.
    assert!(
        t0.elapsed() >= Duration::from_millis(390),
        "rate limit not applied: {:?}",
        t0.elapsed()
    );
    assert_eq!(stamps.lock().unwrap().len(), 6);
    stop(&client, &server).await;
}

#[tokio::test]
async fn load_shed_overload_is_a_typed_error() {
    let app = Router::new().route(
        "busy",
        (|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
        })
        .layer(ServiceBuilder::new().load_shed().concurrency_limit(1)),
    );
    let (server, client) = mem_endpoints(with(app), plain());
    let c = client.clone();
    let first = tokio::spawn(async move { c.request("busy", "").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = client.request("busy", "").await.unwrap_err();
    assert_eq!(e.remote_code(), Some(codes::OVERLOADED), "{e}");
    first.await.unwrap().unwrap();
    stop(&client, &server).await;
}

#[tokio::test]
async fn fallback_precedence_with_merged_routers() {
    let merged = || {
        Router::new()
            .route("b", || async { "b" })
            .fallback(|| async { "merged fallback" })
    };
    // A merged router's fallback beats the default NO_ROUTE answer…
    let app = Router::new().route("a", || async { "a" }).merge(merged());
    let r = app.call(Request::new("zzz", "")).await;
    assert_eq!(r.body_bytes().unwrap(), "merged fallback");
    // …and the router's own fallback beats the merged one.
    let app = Router::new()
        .fallback(|| async { "own fallback" })
        .merge(merged());
    let r = app.call(Request::new("zzz", "")).await;
    assert_eq!(r.body_bytes().unwrap(), "own fallback");
    let r = Router::new()
        .merge(merged())
        .call(Request::new("b", ""))
        .await;
    assert_eq!(r.body_bytes().unwrap(), "b");
}
