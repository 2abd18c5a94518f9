//! Cache: default TTL, per-entry TTL, get/set/delete/clear, types, capacity.

use netcore::{Cache, Endpoint, Router};
use std::time::Duration;

#[test]
fn per_entry_ttl_and_default_ttl_expire() {
    let cache = Cache::new(1000, Some(Duration::from_millis(150)));
    cache.set("default", 1u32);
    cache.set_with_ttl("short", 2u32, Duration::from_millis(40));
    cache.set_with_ttl("long", 3u32, Duration::from_secs(60));
    assert_eq!(cache.get::<u32>("short"), Some(2));
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(cache.get::<u32>("short"), None, "per-entry TTL");
    assert_eq!(cache.get::<u32>("default"), Some(1));
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(cache.get::<u32>("default"), None, "default TTL");
    assert_eq!(cache.get::<u32>("long"), Some(3));
    assert_eq!(cache.len(), 1);
}

#[test]
fn no_default_ttl_keeps_entries_and_set_replaces() {
    let cache = Cache::new(1000, None);
    cache.set("k", "one".to_string());
    cache.set("k", "two".to_string());
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(cache.get::<String>("k").as_deref(), Some("two"));
    // Replacing an entry with its own TTL and back to the default.
    cache.set_with_ttl("k", "three".to_string(), Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!cache.contains("k"));
}

#[test]
fn delete_clear_types_and_get_or_set() {
    let cache = Cache::new(1000, None);
    cache.set("a", vec![1u8, 2]);
    cache.set("b", 5i64);
    assert_eq!(cache.get::<i64>("a"), None, "wrong type reads as absent");
    assert!(cache.delete("a"));
    assert!(!cache.delete("a"));
    assert_eq!(cache.len(), 1);
    cache.clear();
    assert!(cache.is_empty());
    let mut computed = 0;
    let v = cache.get_or_set_with("x", || {
        computed += 1;
        7u8
    });
    let w = cache.get_or_set_with("x", || {
        computed += 1;
        8u8
    });
    assert_eq!((v, w, computed), (7, 7, 1));
}

#[test]
fn capacity_bounds_entries() {
    let cache = Cache::new(100, None);
    for i in 0..2000u32 {
        cache.set(i.to_string(), i);
    }
    assert!(cache.len() <= 100, "{} entries", cache.len());
}

#[tokio::test]
async fn endpoint_cache_is_shared_with_handlers() {
    async fn data(ep: Endpoint) -> String {
        let v: u64 = ep.cache().get_or_set_with("expensive_data", || 42);
        v.to_string()
    }
    let ep = Endpoint::builder()
        .router(Router::new().route("data", data))
        .cache(10, Some(Duration::from_secs(300)))
        .build();
    let resp = Router::new()
        .route("data", data)
        .call(netcore::Request::new("data", ""))
        .await;
    assert!(
        resp.is_error(),
        "outside an endpoint the Endpoint extractor is refused"
    );
    ep.cache().set("expensive_data", 7u64);
    assert_eq!(ep.cache().default_ttl(), Some(Duration::from_secs(300)));
    ep.stop(Duration::from_secs(1)).await;
}
