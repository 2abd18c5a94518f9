//! Typed routes from a schema file (`--schema FILE`, JSON or TOML as in docs/SCHEMA.md).
//!
//! Each message type `NAME` becomes the route `typed/NAME`. Its body is the message's
//! binary payload in the schema's layout (binary_protocol-compatible fields, without the
//! type header, which the route replaces). `netcore call --schema` encodes a JSON object
//! into that payload and decodes the reply back into JSON; `netcore serve --schema`
//! decodes and validates each request and replies with the message re-encoded.

use anyhow::Context as _;
use netcore_schema::{MessageType, Schema};
use std::path::Path;

use crate::proto::{bad_request, internal, not_found};
use netcore::RemoteError;

/// Route prefix of typed routes.
pub const PREFIX: &str = "typed/";

/// The typed routes of a schema.
#[derive(Debug)]
pub struct TypedRoutes {
    schema: Schema,
}

impl TypedRoutes {
    /// Loads a schema file.
    pub fn load(path: &Path) -> anyhow::Result<TypedRoutes> {
        let file = Schema::load(path).with_context(|| format!("schema file {}", path.display()))?;
        let schema = file
            .schema()
            .with_context(|| format!("schema file {}", path.display()))?;
        Ok(TypedRoutes { schema })
    }

    /// `typed/NAME` for every message type.
    pub fn route_names(&self) -> Vec<String> {
        self.schema
            .types()
            .iter()
            .map(|t| format!("{PREFIX}{}", t.name()))
            .collect()
    }

    /// The message type a route names (`typed/NAME` or plain `NAME`).
    pub fn type_for(&self, route: &str) -> Option<&MessageType> {
        let name = route.strip_prefix(PREFIX).unwrap_or(route);
        self.schema.by_name(name)
    }

    /// Encodes a JSON object as the payload of the route's type.
    pub fn encode_json(&self, route: &str, json: &serde_json::Value) -> anyhow::Result<Vec<u8>> {
        let t = self.type_for(route).ok_or_else(|| {
            anyhow::anyhow!(
                "the schema has no message type for route `{route}`; types: {}",
                self.route_names().join(", ")
            )
        })?;
        let values = self.schema.values_from_json(t.id(), json)?;
        let mut out = Vec::new();
        t.layout().encode(&values, &mut out)?;
        Ok(out)
    }

    /// Decodes a payload of the route's type into JSON.
    pub fn decode_json(&self, route: &str, payload: &[u8]) -> anyhow::Result<serde_json::Value> {
        let t = self
            .type_for(route)
            .ok_or_else(|| anyhow::anyhow!("the schema has no message type for route `{route}`"))?;
        let values = t.layout().decode(payload)?;
        Ok(self.schema.values_to_json(t.id(), &values)?)
    }

    /// Server side: validates a payload and returns it re-encoded.
    pub fn handle(&self, route: &str, payload: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let t = self
            .type_for(route)
            .ok_or_else(|| not_found(format!("no typed route `{route}`")))?;
        let values = t
            .layout()
            .decode(payload)
            .map_err(|e| bad_request(format!("not a valid {}: {e}", t.name())))?;
        tracing::info!(route, ?values, "typed message");
        let mut out = Vec::with_capacity(payload.len());
        t.layout()
            .encode(&values, &mut out)
            .map_err(|e| internal(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_through_a_schema_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(
            &path,
            r#"{"messages":[{"name":"Reading","id":1,"fields":[
                {"name":"sensor","type":"int","format":">H"},
                {"name":"value","type":"float","format":">f"},
                {"name":"label","type":"str"}]}]}"#,
        )
        .unwrap();
        let t = TypedRoutes::load(&path).unwrap();
        assert_eq!(t.route_names(), vec!["typed/Reading".to_string()]);
        let j = serde_json::json!({"sensor": 7, "value": 1.5, "label": "x"});
        let bytes = t.encode_json("typed/Reading", &j).unwrap();
        assert_eq!(&bytes[..2], &[0, 7]);
        let back = t.handle("typed/Reading", &bytes).unwrap();
        assert_eq!(t.decode_json("Reading", &back).unwrap(), j);
        assert!(t.handle("typed/Reading", &bytes[..3]).is_err());
        assert!(t.encode_json("typed/Nope", &j).is_err());
    }
}
