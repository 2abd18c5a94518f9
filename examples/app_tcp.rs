//! The seed README's server and client: a TCP server with two routes and a client
//! sending both messages concurrently over one connection (plus 100 more in flight).
//!
//! Run: `cargo run -p netcore --example app_tcp`

use netcore::{Endpoint, Json, Router};
use serde_json::{json, Value};
use std::time::Duration;

async fn handle_message1(Json(data): Json<Value>) -> Json<Value> {
    // This handler can run while other messages are being processed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Json(json!({"status": "processed", "route": "message1", "got": data}))
}

async fn handle_message2(Json(data): Json<Value>) -> Json<Value> {
    Json(json!({"status": "processed", "route": "message2", "got": data}))
}

#[tokio::main]
async fn main() -> Result<(), netcore::AppError> {
    // Server: listen on a free port of 127.0.0.1.
    let app = Router::new()
        .route("message1", handle_message1)
        .route("message2", handle_message2);
    let server = Endpoint::new(app);
    let addr = server.listen("tcp://127.0.0.1:0").await?;
    println!("server listening on {addr}");

    // Client: one connection, many concurrent conversations.
    let client = Endpoint::new(Router::new());
    client.connect(&addr.to_string()).await?;
    let (r1, r2) = tokio::join!(
        client
            .message("message1")
            .json(&json!({"data": "First message"})),
        client
            .message("message2")
            .json(&json!({"data": "Second message"})),
    );
    println!("message1 -> {}", r1?.json::<Value>().await?);
    println!("message2 -> {}", r2?.json::<Value>().await?);

    // Fire-and-forget, as the seed's `endpoint.send`.
    client
        .send("message2", r#"{"data": "no reply wanted"}"#)
        .await?
        .finished()
        .await?;

    let mut tasks = Vec::new();
    for i in 0..100 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            c.message("message2")
                .json(&json!({"n": i}))
                .await?
                .json::<Value>()
                .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let v = t.await.expect("task")?;
        assert_eq!(v["got"]["n"], i);
    }
    println!("100 concurrent requests answered on one connection");

    client.stop(Duration::from_secs(2)).await;
    server.stop(Duration::from_secs(2)).await;
    Ok(())
}
