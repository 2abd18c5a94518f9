//! Error handling: handler errors and panics reach the caller as typed remote errors
//! (code + message), unknown routes are NO_ROUTE, a deadline cancels the remote
//! handler, and an error handler maps errors to responses — never silence.
//!
//! Run: `cargo run -p netcore --example app_errors`

use netcore::{codes, AppError, Endpoint, ErrorCode, Json, RemoteError, Response, Router};
use serde_json::json;
use std::time::Duration;

const QUOTA_EXCEEDED: ErrorCode = ErrorCode(0x200);

async fn quota() -> Result<String, RemoteError> {
    Err(RemoteError::new(QUOTA_EXCEEDED, "daily quota exceeded"))
}

async fn parse(n: String) -> Result<String, netcore::HandlerError> {
    let n: i64 = n.trim().parse()?; // any std error converts (HANDLER_ERROR)
    Ok((n * 2).to_string())
}

async fn crash() -> String {
    let v: Vec<u8> = Vec::new();
    format!("{}", v[3]) // index out of bounds: a panic
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(60)).await;
    "too late"
}

fn describe(route: &str, result: Result<String, AppError>) {
    match result {
        Ok(v) => println!("{route:<14} ok: {v}"),
        Err(AppError::Remote(e)) => println!(
            "{route:<14} remote error {} ({:#x}): {}",
            codes::name(e.code).unwrap_or("app-defined"),
            e.code.0,
            e.message
        ),
        Err(e) => println!("{route:<14} local error: {e}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), AppError> {
    // The panic of `crash` is reported to its caller; keep the default hook's stderr
    // message out of this demo's output.
    std::panic::set_hook(Box::new(|_| {}));
    let friendly = Router::blueprint("friendly", "friendly")
        .route("crash", crash)
        .on_error(|e: RemoteError| async move {
            netcore::IntoResponse::into_response(Json(json!({"error": e.message})))
        });
    let app = Router::new()
        .route("quota", quota)
        .route("parse", parse)
        .route("crash", crash)
        .route("slow", slow)
        .register(friendly);
    let server = Endpoint::new(app);
    let addr = server.listen("tcp://127.0.0.1:0").await?;
    let client = Endpoint::new(Router::new());
    client.connect(&addr.to_string()).await?;

    async fn text(r: Result<netcore::Reply, AppError>) -> Result<String, AppError> {
        r?.text().await
    }
    describe("quota", text(client.request("quota", "").await).await);
    describe("parse 21", text(client.request("parse", "21").await).await);
    describe("parse x", text(client.request("parse", "x").await).await);
    describe("crash", text(client.request("crash", "").await).await);
    describe(
        "friendly/crash",
        text(client.request("friendly/crash", "").await).await,
    );
    describe("nowhere", text(client.request("nowhere", "").await).await);
    describe(
        "slow",
        text(
            client
                .message("slow")
                .timeout(Duration::from_millis(200))
                .request("")
                .await,
        )
        .await,
    );
    // An error response can also be built directly.
    let r = Response::error(codes::UNAUTHORIZED, "who are you?");
    println!(
        "built by hand: {}",
        r.as_error().map(|e| e.to_string()).unwrap_or_default()
    );

    client.stop(Duration::from_secs(2)).await;
    server.stop(Duration::from_secs(2)).await;
    Ok(())
}
