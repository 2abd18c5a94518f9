//! The paper's comprehensive example: a `users` blueprint with an authentication
//! middleware of its own, the cache inside a handler, an error handler, a public route
//! the middleware does not touch, and `max_workers`.
//!
//! Run: `cargo run -p netcore --example app_blueprint`

use netcore::middleware::{from_fn, Next};
use netcore::{codes, Endpoint, Json, RemoteError, Request, Response, Router};
use serde_json::{json, Value};
use std::time::Duration;

fn fetch_users(page: u64) -> Value {
    json!({"page": page, "users": [format!("user{}", page * 2 - 1), format!("user{}", page * 2)]})
}

async fn user_list(ep: Endpoint, Json(q): Json<Value>) -> Json<Value> {
    let page = q.get("page").and_then(Value::as_u64).unwrap_or(1);
    let key = format!("user_list_page_{page}");
    let data = match ep.cache().get::<Value>(&key) {
        Some(cached) => cached,
        None => {
            let data = fetch_users(page);
            ep.cache()
                .set_with_ttl(key, data.clone(), Duration::from_secs(300));
            data
        }
    };
    Json(data)
}

async fn user_delete(Json(q): Json<Value>) -> Result<&'static str, RemoteError> {
    match q.get("id") {
        Some(_) => Err(RemoteError::new(
            netcore::ErrorCode(0x200),
            "users cannot be deleted in this demo",
        )),
        None => Err(RemoteError::new(codes::BAD_REQUEST, "missing id")),
    }
}

#[tokio::main]
async fn main() -> Result<(), netcore::AppError> {
    let auth = from_fn(|req: Request, next: Next| async move {
        if req.headers().get_str("token") != Some("s3cret") {
            return Response::error(codes::UNAUTHORIZED, "unauthorized");
        }
        next.run(req).await
    });
    let users = Router::blueprint("users", "/user")
        .route("/list", user_list)
        .route("/delete", user_delete)
        .layer(auth)
        // The blueprint's own error handler: errors become a JSON body.
        .on_error(|e: RemoteError| async move {
            Json(json!({"error": e.message, "code": e.code.0})).into_response_with_error_header()
        });
    let app = Router::new()
        .route("health", || async { "ok" })
        .register(users);
    let server = Endpoint::builder().router(app).max_workers(4).build();
    let addr = server.listen("tcp://127.0.0.1:0").await?;

    let client = Endpoint::new(Router::new());
    client.connect(&addr.to_string()).await?;
    let r = client
        .message("user/list")
        .header("token", "s3cret")
        .json(&json!({"page": 2}))
        .await?;
    println!("user/list        -> {}", r.json::<Value>().await?);
    let r = client
        .message("user/list")
        .json(&json!({"page": 2}))
        .await?;
    println!("without token    -> {}", r.text().await?);
    let r = client
        .message("user/delete")
        .header("token", "s3cret")
        .json(&json!({"id": 1}))
        .await?;
    println!("user/delete      -> {}", r.text().await?);
    let r = client.request("health", "").await?;
    println!("health (no auth) -> {}", r.text().await?);

    client.stop(Duration::from_secs(2)).await;
    server.stop(Duration::from_secs(2)).await;
    Ok(())
}

/// Helper trait for the example: a JSON body marked with a header.
trait JsonErrorBody {
    fn into_response_with_error_header(self) -> Response;
}

impl JsonErrorBody for Json<Value> {
    fn into_response_with_error_header(self) -> Response {
        netcore::IntoResponse::into_response(self).with_header("handled-error", "1")
    }
}
