//! The paper's serial example, over a simulated 115 200 baud line (so it runs
//! anywhere): serial link profile, frames sized for the line, concurrent messages.
//! With a real device use `Endpoint::connect("serial:///dev/ttyUSB0?baud=115200")`,
//! or the seed's recv/send functions with `netcore::blocking::Client::builder().from_fns`.
//!
//! Run: `cargo run -p netcore --example app_serial`

use netcore::{Endpoint, Json, PipeConfig, Router};
use netcore_runtime::transport::{SimConfig, SimLink};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn handle_message() -> Json<Value> {
    Json(json!({"status": "received"}))
}

async fn telemetry(body: bytes::Bytes) -> String {
    format!("stored {} bytes", body.len())
}

#[tokio::main]
async fn main() -> Result<(), netcore::AppError> {
    let baud_bytes = 11_520; // 115 200 baud, 8N1
    let link = SimLink::pair(
        SimConfig::default()
            .with_rate(baud_bytes)
            .with_latency(Duration::from_millis(2)),
    );
    let device = Endpoint::builder()
        .router(
            Router::new()
                .route("message", handle_message)
                .route("telemetry", telemetry),
        )
        .pipe_config(PipeConfig::serial(baud_bytes))
        .build();
    let host = Endpoint::builder()
        .pipe_config(PipeConfig::serial(baud_bytes))
        .build();
    device.add_transport(link.b);
    host.add_transport(link.a);

    // A 20 KB telemetry upload and small status requests share the line: the small
    // ones do not wait for the bulk transfer to finish.
    let t0 = Instant::now();
    let h = host.clone();
    let bulk = tokio::spawn(async move { h.request("telemetry", vec![0x55u8; 20_000]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..3 {
        let r = host.request("message", "").await?;
        println!(
            "status {i}: {} after {:?}",
            r.json::<Value>().await?,
            t0.elapsed()
        );
    }
    let r = bulk.await.expect("task")?;
    println!("telemetry: {} after {:?}", r.text().await?, t0.elapsed());

    host.stop(Duration::from_secs(2)).await;
    device.stop(Duration::from_secs(2)).await;
    Ok(())
}
