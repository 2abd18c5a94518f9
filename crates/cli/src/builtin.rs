//! The built-in routes of `netcore serve`, as app-layer handlers on a [`netcore::Router`].

use bytes::Bytes;
use netcore::extract::{BodyStream, RoutePath};
use netcore::{Headers, Json, RemoteError, Response, Router, State};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;

use crate::files::FileStore;
use crate::proto::{self, bad_request};
use crate::schema_routes::TypedRoutes;
use crate::util::{parse_size, Capped, PatternReader, BODY_READ};

/// What the handlers share.
#[derive(Debug)]
pub struct Ctx {
    /// Typed routes from `--schema`.
    pub typed: Option<TypedRoutes>,
    /// Largest `generate` body.
    pub max_generate: u64,
    /// Server start, for `time`'s uptime.
    pub started: Instant,
    /// Every route, for `routes`.
    pub routes: Vec<String>,
}

type Shared = State<Arc<Ctx>>;

/// The router of `netcore serve`: built-in routes, `files/*` with a store, `typed/*`
/// with a schema.
pub fn router(files: Option<FileStore>, typed: Option<TypedRoutes>, max_generate: u64) -> Router {
    let typed_names = typed.as_ref().map(|t| t.route_names()).unwrap_or_default();
    let mut router = Router::new()
        .route(proto::ECHO, echo)
        .route(proto::DISCARD, discard)
        .route(proto::GENERATE, generate)
        .route(proto::TIME, time)
        .route(proto::ROUTES, routes);
    for name in &typed_names {
        router = router.route(name, typed_route);
    }
    if let Some(store) = files {
        router = Arc::new(store).routes(router);
    }
    let names = router.route_names();
    router.state(Arc::new(Ctx {
        typed,
        max_generate,
        started: Instant::now(),
        routes: names,
    }))
}

/// Streams the request body back as it arrives, through a bounded pipe.
async fn echo(mut body: BodyStream) -> Response {
    let len = body.len_hint();
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        while let Ok(Some(chunk)) = body.chunk().await {
            if tx.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = tx.shutdown().await;
    });
    Response::stream(Capped::new(rx, BODY_READ), len)
}

async fn discard(mut body: BodyStream) -> Result<String, RemoteError> {
    let mut n = 0u64;
    while let Some(c) = body.chunk().await? {
        n += c.len() as u64;
    }
    Ok(n.to_string())
}

async fn generate(
    State(ctx): Shared,
    headers: Headers,
    body: Bytes,
) -> Result<Response, RemoteError> {
    let text = match headers.get_str(proto::H_SIZE) {
        Some(h) => h.to_string(),
        None => String::from_utf8_lossy(&body).trim().to_string(),
    };
    if text.is_empty() {
        return Err(bad_request(
            "generate needs a size (body or `size` header), e.g. 64K",
        ));
    }
    let n = parse_size(&text).map_err(bad_request)?;
    if n > ctx.max_generate {
        return Err(bad_request(format!(
            "{n} bytes is over this server's --max-generate of {}",
            ctx.max_generate
        )));
    }
    Ok(Response::stream(PatternReader::new(n, BODY_READ), Some(n)))
}

async fn time(State(ctx): Shared) -> Json<serde_json::Value> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Json(serde_json::json!({
        "unix_ms": now.as_millis() as u64,
        "uptime_ms": ctx.started.elapsed().as_millis() as u64,
    }))
}

async fn routes(State(ctx): Shared) -> Json<Vec<String>> {
    Json(ctx.routes.clone())
}

async fn typed_route(
    State(ctx): Shared,
    RoutePath(route): RoutePath,
    body: Bytes,
) -> Result<Vec<u8>, RemoteError> {
    match &ctx.typed {
        Some(t) => t.handle(&route, &body),
        None => Err(proto::not_found(
            "typed/* routes need `netcore serve --schema FILE`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcore::Endpoint;
    use netcore_runtime::transport::mem_pair;

    #[tokio::test]
    async fn routes_answer_in_process() {
        let (a, b) = mem_pair(1 << 16);
        let server = Endpoint::new(router(None, None, 1 << 20));
        server.add_transport(b);
        let client = Endpoint::new(Router::new());
        client.add_transport(a);
        let r = client.request(proto::ECHO, "abc").await.unwrap();
        assert_eq!(r.bytes().await.unwrap(), "abc");
        let r = client.request(proto::GENERATE, "10K").await.unwrap();
        assert_eq!(r.bytes().await.unwrap().len(), 10 * 1024);
        let err = client.request(proto::GENERATE, "2M").await;
        assert!(err.is_err(), "over --max-generate");
        let r = client.request(proto::ROUTES, ()).await.unwrap();
        let names: Vec<String> = r.json().await.unwrap();
        assert!(names.iter().any(|n| n == "time"), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("files")), "{names:?}");
    }
}
