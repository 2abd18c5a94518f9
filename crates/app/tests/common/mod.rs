//! Helpers shared by the integration tests: endpoint pairs over TCP and memory.
#![allow(dead_code)]

use netcore::{Endpoint, EndpointBuilder, Router};
use netcore_runtime::transport::mem_pair;
use std::future::Future;
use std::time::Duration;

/// A server listening on 127.0.0.1 and a client connected to it.
pub async fn tcp_pair(server: EndpointBuilder, client: EndpointBuilder) -> (Endpoint, Endpoint) {
    let server = server.build();
    let addr = server.listen("tcp://127.0.0.1:0").await.expect("listen");
    let client = client.build();
    client.connect(&addr.to_string()).await.expect("connect");
    (server, client)
}

/// A server and a client over an in-memory pipe.
pub fn mem_endpoints(server: EndpointBuilder, client: EndpointBuilder) -> (Endpoint, Endpoint) {
    let (server, client) = (server.build(), client.build());
    let (a, b) = mem_pair(1 << 16);
    server.add_transport(b);
    client.add_transport(a);
    (server, client)
}

/// Builder with `router`.
pub fn with(router: Router) -> EndpointBuilder {
    Endpoint::builder().router(router)
}

/// Builder with no routes.
pub fn plain() -> EndpointBuilder {
    Endpoint::builder()
}

/// Waits (real time, bounded) until `cond` holds.
pub async fn eventually<F: Fn() -> bool>(what: &str, cond: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Fails the test if `fut` takes more than 30 s (a hang is a failure, not a stall).
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .expect("operation hung for 30 s")
}

/// Stops both endpoints.
pub async fn stop(a: &Endpoint, b: &Endpoint) {
    within(a.stop(Duration::from_secs(2))).await;
    within(b.stop(Duration::from_secs(2))).await;
}
