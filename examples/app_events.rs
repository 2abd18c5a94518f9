//! The seed's event system: lifecycle events (start, connection, request, response,
//! stop), one-time listeners, custom events, and a failing listener that is logged
//! without harming anything.
//!
//! Run: `cargo run -p netcore --example app_events`

use netcore::{Endpoint, Event, Events, Router};
use serde_json::json;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), netcore::AppError> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let events = Events::new();
    events.on("start", |_: &Event| println!("Service started"));
    events.on("stop", |_: &Event| println!("Service stopped"));
    events.on("connection_opened", |ev: &Event| {
        if let Event::ConnectionOpened(info) = ev {
            println!("connection {} from {:?}", info.id, info.peer());
        }
    });
    events.on("request", |ev: &Event| {
        if let Event::RequestReceived { route, .. } = ev {
            println!("request for {route}");
        }
    });
    events.on("response", |ev: &Event| {
        if let Event::ResponseSent { route, error, .. } = ev {
            println!("response for {route} (error: {error:?})");
        }
    });
    events.once("initialize", |_: &Event| {
        println!("First-time initialization")
    });
    events.on("custom_event", |ev: &Event| {
        println!("custom_event: {}", ev.data())
    });
    events.on("custom_event", |_: &Event| -> Result<(), String> {
        Err("this listener fails; it is logged and the others still run".into())
    });

    let server = Endpoint::builder()
        .router(Router::new().route("hello", || async { "hi" }))
        .events(events.clone())
        .build();
    let addr = server.listen("tcp://127.0.0.1:0").await?;
    let client = Endpoint::new(Router::new());
    client.connect(&addr.to_string()).await?;
    client.request("hello", "").await?;

    events.emit("initialize", json!(null));
    events.emit("initialize", json!(null)); // the once-listener does not fire again
    events.emit("custom_event", json!({"type": "notification"}));
    events.flush().await;

    client.stop(Duration::from_secs(2)).await;
    server.stop(Duration::from_secs(2)).await;
    Ok(())
}
