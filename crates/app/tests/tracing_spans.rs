//! tracing: a span per connection and a span per request, with their fields.

mod common;

use common::*;
use netcore::Router;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<String>>>);

struct Fields(String);
impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl<S: Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut f = Fields(attrs.metadata().name().to_string());
        attrs.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn connection_and_request_spans_are_created() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let (server, client) = mem_endpoints(
        with(Router::new().route("user/list", || async { "[]" })),
        plain(),
    );
    client.request("user/list", "").await.unwrap();
    stop(&client, &server).await;
    let seen = spans.0.lock().unwrap().clone();
    assert!(
        seen.iter()
            .filter(|s| s.starts_with("netcore.connection"))
            .count()
            >= 2,
        "one connection span per side: {seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.starts_with("netcore.request")
            && s.contains("route=user/list")
            && s.contains("id=")),
        "a request span with route and id: {seen:?}"
    );
}
