//! The seed's cache: an expensive computation cached with a TTL inside a handler,
//! default and per-entry TTLs, delete and clear.
//!
//! Run: `cargo run -p netcore --example app_cache`

use netcore::{Endpoint, Router};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static COMPUTATIONS: AtomicU32 = AtomicU32::new(0);

fn compute_expensive_data() -> String {
    COMPUTATIONS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    "the expensive answer: 42".to_string()
}

async fn get_data(ep: Endpoint) -> String {
    // Try the cache first; compute and cache for 300 ms otherwise.
    if let Some(data) = ep.cache().get::<String>("expensive_data") {
        return data;
    }
    let data = tokio::task::spawn_blocking(compute_expensive_data)
        .await
        .unwrap_or_default();
    ep.cache()
        .set_with_ttl("expensive_data", data.clone(), Duration::from_millis(300));
    data
}

#[tokio::main]
async fn main() -> Result<(), netcore::AppError> {
    let server = Endpoint::builder()
        .router(Router::new().route("/data", get_data))
        .cache(10_000, Some(Duration::from_secs(60)))
        .build();
    let client = Endpoint::new(Router::new());
    let (a, b) = netcore_runtime::transport::mem_pair(1 << 16);
    server.add_transport(b);
    client.add_transport(a);

    for _ in 0..3 {
        println!("{}", client.request("/data", "").await?.text().await?);
    }
    println!(
        "computed {} time(s) for 3 requests",
        COMPUTATIONS.load(Ordering::SeqCst)
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    println!("{}", client.request("/data", "").await?.text().await?);
    println!(
        "after the TTL: computed {} time(s)",
        COMPUTATIONS.load(Ordering::SeqCst)
    );

    let cache = server.cache();
    cache.set("session", 7u64); // default TTL (60 s)
    cache.set_with_ttl("otp", "123456".to_string(), Duration::from_millis(50));
    println!(
        "session = {:?}, otp = {:?}",
        cache.get::<u64>("session"),
        cache.get::<String>("otp")
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    println!("after 80 ms: otp = {:?}", cache.get::<String>("otp"));
    cache.delete("session");
    cache.clear();
    println!("entries after delete + clear: {}", cache.len());

    client.stop(Duration::from_secs(1)).await;
    server.stop(Duration::from_secs(1)).await;
    Ok(())
}
