//! Schemas: the set of message types one protocol speaks.
//!
//! This module owns [`Schema`] (header format plus message types by id and name), its
//! [`SchemaBuilder`] (from Rust [`TypedMessage`] types and/or dynamic layouts), the schema
//! file format ([`SchemaFile`], JSON or TOML, see docs/SCHEMA.md) and the JSON view of
//! dynamic messages used by tools such as the CLI.

use crate::config::{ConfigFile, ProtocolConfig};
use crate::error::{Result, SchemaError};
use crate::format::{HeaderFormat, NumFormat};
use crate::layout::{Field, FieldKind, Layout};
use crate::typed::TypedMessage;
use crate::value::Value;
use std::collections::HashMap;
use std::path::Path;

/// One message type: id, name and layout.
///
/// ```
/// use netcore_schema::{Layout, MessageType};
/// let t = MessageType::new(3, "EMPTY", Layout::new(vec![]).unwrap());
/// assert_eq!(t.id(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageType {
    id: u64,
    name: String,
    layout: Layout,
}

impl MessageType {
    /// Creates a message type.
    ///
    /// ```
    /// let t = netcore_schema::MessageType::new(1, "A", netcore_schema::Layout::new(vec![]).unwrap());
    /// assert_eq!(t.name(), "A");
    /// ```
    pub fn new(id: u64, name: impl Into<String>, layout: Layout) -> Self {
        MessageType {
            id,
            name: name.into(),
            layout,
        }
    }
    /// Type id.
    ///
    /// ```
    /// assert_eq!(netcore_schema::MessageType::new(2, "B", netcore_schema::Layout::new(vec![]).unwrap()).id(), 2);
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Type name.
    ///
    /// ```
    /// assert_eq!(netcore_schema::MessageType::new(2, "B", netcore_schema::Layout::new(vec![]).unwrap()).name(), "B");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Field layout.
    ///
    /// ```
    /// assert!(netcore_schema::MessageType::new(2, "B", netcore_schema::Layout::new(vec![]).unwrap()).layout().is_fixed());
    /// ```
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

/// The message types of a protocol and its header format.
///
/// ```
/// netcore_schema::message! { pub struct Ping = 1 { pub n: u32 [">I"] } }
/// let schema = netcore_schema::Schema::builder().message::<Ping>().build().unwrap();
/// assert_eq!(schema.get(1).unwrap().name(), "Ping");
/// assert_eq!(schema.not_found(), 0xffff);
/// ```
#[derive(Debug, Clone)]
pub struct Schema {
    header: HeaderFormat,
    types: Vec<MessageType>,
    dense: Vec<u32>,
    sparse: HashMap<u64, usize>,
}

const DENSE_LIMIT: u64 = 4096;

impl Schema {
    /// Starts a builder with the default `">H"` header.
    ///
    /// ```
    /// let s = netcore_schema::Schema::builder().build().unwrap();
    /// assert!(s.types().is_empty());
    /// ```
    pub fn builder() -> SchemaBuilder {
        SchemaBuilder {
            header: Ok(HeaderFormat::default()),
            types: Vec::new(),
            error: None,
        }
    }

    /// Header format.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Schema::builder().build().unwrap().header().size(), 2);
    /// ```
    pub fn header(&self) -> HeaderFormat {
        self.header
    }

    /// The reserved NOT_FOUND type id.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Schema::builder().build().unwrap().not_found(), 65535);
    /// ```
    pub fn not_found(&self) -> u64 {
        self.header.not_found()
    }

    /// All message types, in definition order.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Schema::builder().build().unwrap().types().len(), 0);
    /// ```
    pub fn types(&self) -> &[MessageType] {
        &self.types
    }

    /// The message type with this id.
    ///
    /// ```
    /// assert!(netcore_schema::Schema::builder().build().unwrap().get(1).is_none());
    /// ```
    #[inline]
    pub fn get(&self, id: u64) -> Option<&MessageType> {
        let idx = if id < self.dense.len() as u64 {
            match self.dense[id as usize] {
                u32::MAX => return None,
                i => i as usize,
            }
        } else {
            *self.sparse.get(&id)?
        };
        self.types.get(idx)
    }

    /// The message type with this name.
    ///
    /// ```
    /// assert!(netcore_schema::Schema::builder().build().unwrap().by_name("X").is_none());
    /// ```
    pub fn by_name(&self, name: &str) -> Option<&MessageType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Loads a schema file (`.json` or `.toml`, by extension; other extensions try both).
    ///
    /// ```no_run
    /// let file = netcore_schema::Schema::load("schema.toml").unwrap();
    /// let (schema, config) = (file.schema().unwrap(), file.config().unwrap());
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<SchemaFile> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => SchemaFile::from_json(&text),
            Some("toml") => SchemaFile::from_toml(&text),
            _ => SchemaFile::from_json(&text).or_else(|_| SchemaFile::from_toml(&text)),
        }
    }

    /// Encodes a dynamic message given as a JSON object (field name → value) into values.
    ///
    /// Numbers, booleans and strings map directly; bytes fields take an array of
    /// integers or a string (its UTF-8 bytes).
    ///
    /// ```
    /// netcore_schema::message! { pub struct P = 1 { pub n: u16 [">H"], pub t: String [text] } }
    /// let s = netcore_schema::Schema::builder().message::<P>().build().unwrap();
    /// let v = s.values_from_json(1, &serde_json::json!({"n": 5, "t": "x"})).unwrap();
    /// assert_eq!(v, vec![netcore_schema::Value::UInt(5), netcore_schema::Value::Text("x".into())]);
    /// ```
    pub fn values_from_json(&self, id: u64, json: &serde_json::Value) -> Result<Vec<Value>> {
        let t = self
            .get(id)
            .ok_or(SchemaError::UnknownType { type_id: id })?;
        let obj = json.as_object().ok_or_else(|| SchemaError::FieldMismatch {
            type_id: id,
            reason: "expected a JSON object with one entry per field".into(),
        })?;
        if let Some(extra) = obj.keys().find(|k| t.layout.index_of(k).is_none()) {
            return Err(SchemaError::FieldMismatch {
                type_id: id,
                reason: format!("{:?} is not a field of {}", extra, t.name),
            });
        }
        t.layout
            .fields()
            .iter()
            .map(|f| {
                let j = obj
                    .get(f.name())
                    .ok_or_else(|| SchemaError::FieldMismatch {
                        type_id: id,
                        reason: format!("missing field {:?}", f.name()),
                    })?;
                json_to_value(f, j)
            })
            .collect()
    }

    /// Renders decoded values as a JSON object (bytes as arrays of integers).
    ///
    /// ```
    /// netcore_schema::message! { pub struct P = 1 { pub n: u16 [">H"] } }
    /// let s = netcore_schema::Schema::builder().message::<P>().build().unwrap();
    /// let j = s.values_to_json(1, &[netcore_schema::Value::UInt(5)]).unwrap();
    /// assert_eq!(j, serde_json::json!({"n": 5}));
    /// ```
    pub fn values_to_json(&self, id: u64, values: &[Value]) -> Result<serde_json::Value> {
        let t = self
            .get(id)
            .ok_or(SchemaError::UnknownType { type_id: id })?;
        let mut map = serde_json::Map::new();
        for (f, v) in t.layout.fields().iter().zip(values) {
            map.insert(
                f.name().to_owned(),
                serde_json::to_value(v).map_err(|e| SchemaError::Parse(e.to_string()))?,
            );
        }
        Ok(serde_json::Value::Object(map))
    }
}

fn json_to_value(f: &Field, j: &serde_json::Value) -> Result<Value> {
    let bad = || {
        SchemaError::invalid_value(
            f.name(),
            format!("JSON {j} does not fit field kind {:?}", f.kind()),
        )
    };
    Ok(match (f.kind(), j) {
        (FieldKind::Num(_), serde_json::Value::Bool(b)) => Value::Bool(*b),
        (FieldKind::Num(_), serde_json::Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else {
                Value::Float(n.as_f64().ok_or_else(bad)?)
            }
        }
        (
            FieldKind::FixedText(_) | FieldKind::Text | FieldKind::BoundedText(_),
            serde_json::Value::String(s),
        ) => Value::Text(s.clone()),
        (
            FieldKind::FixedBytes(_) | FieldKind::Bytes | FieldKind::BoundedBytes(_),
            serde_json::Value::String(s),
        ) => Value::Bytes(s.as_bytes().to_vec()),
        (
            FieldKind::FixedBytes(_) | FieldKind::Bytes | FieldKind::BoundedBytes(_),
            serde_json::Value::Array(a),
        ) => Value::Bytes(
            a.iter()
                .map(|x| {
                    x.as_u64()
                        .and_then(|u| u8::try_from(u).ok())
                        .ok_or_else(bad)
                })
                .collect::<Result<Vec<u8>>>()?,
        ),
        _ => return Err(bad()),
    })
}

/// Builds a [`Schema`].
///
/// ```
/// use netcore_schema::{Field, FieldKind, Schema};
/// let s = Schema::builder()
///     .header_format("<I")
///     .dynamic(7, "NOTE", vec![Field::new("text", FieldKind::Text)])
///     .build()
///     .unwrap();
/// assert_eq!(s.not_found(), u32::MAX as u64);
/// ```
#[derive(Debug)]
#[must_use]
pub struct SchemaBuilder {
    header: Result<HeaderFormat>,
    types: Vec<MessageType>,
    error: Option<SchemaError>,
}

impl SchemaBuilder {
    /// Sets the header format (default `">H"`).
    ///
    /// ```
    /// assert!(netcore_schema::Schema::builder().header_format(">f").build().is_err());
    /// ```
    pub fn header_format(mut self, format: &str) -> Self {
        self.header = HeaderFormat::parse(format);
        self
    }

    /// Adds a Rust-defined message type.
    ///
    /// ```
    /// netcore_schema::message! { pub struct A = 1 {} }
    /// assert!(netcore_schema::Schema::builder().message::<A>().build().is_ok());
    /// ```
    pub fn message<T: TypedMessage>(mut self) -> Self {
        match T::layout() {
            Ok(l) => self.types.push(MessageType::new(T::TYPE_ID, T::NAME, l)),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Adds a run-time-defined message type.
    ///
    /// ```
    /// use netcore_schema::{Field, FieldKind};
    /// let b = netcore_schema::Schema::builder().dynamic(1, "A", vec![Field::new("x", FieldKind::Bytes)]);
    /// assert!(b.build().is_ok());
    /// ```
    pub fn dynamic(mut self, id: u64, name: &str, fields: Vec<Field>) -> Self {
        match Layout::new(fields) {
            Ok(l) => self.types.push(MessageType::new(id, name, l)),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Validates (unique ids and names, ids below NOT_FOUND) and builds.
    ///
    /// ```
    /// netcore_schema::message! { pub struct A = 1 {} }
    /// assert!(netcore_schema::Schema::builder().message::<A>().message::<A>().build().is_err());
    /// ```
    pub fn build(self) -> Result<Schema> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let header = self.header?;
        let mut sparse = HashMap::new();
        let max_dense = self
            .types
            .iter()
            .map(|t| t.id)
            .filter(|&i| i < DENSE_LIMIT)
            .max();
        let mut dense = vec![u32::MAX; max_dense.map_or(0, |m| m as usize + 1)];
        for (i, t) in self.types.iter().enumerate() {
            if t.id >= header.not_found() {
                return Err(SchemaError::InvalidSchema(format!(
                    "type {} has id {} but ids must be below the reserved NOT_FOUND id {} of header {header}",
                    t.name,
                    t.id,
                    header.not_found()
                )));
            }
            if self.types[..i]
                .iter()
                .any(|u| u.id == t.id || u.name == t.name)
            {
                return Err(SchemaError::InvalidSchema(format!(
                    "type {} (id {}) duplicates the id or name of another type",
                    t.name, t.id
                )));
            }
            if t.id < DENSE_LIMIT {
                dense[t.id as usize] = i as u32;
            } else {
                sparse.insert(t.id, i);
            }
        }
        Ok(Schema {
            header,
            types: self.types,
            dense,
            sparse,
        })
    }
}

/// A parsed schema file (JSON or TOML): header format, message types, optional config.
///
/// ```
/// let f = netcore_schema::SchemaFile::from_toml(r#"
/// header_format = ">H"
/// [[messages]]
/// name = "SENSOR_DATA"
/// id = 1
/// fields = [
///   { name = "sensor1", type = "float", format = ">f" },
///   { name = "label", type = "str", fixed_length = 8 },
///   { name = "blob", type = "bytes" },
/// ]
/// [config]
/// checksum_enabled = true
/// "#).unwrap();
/// let schema = f.schema().unwrap();
/// assert!(!schema.get(1).unwrap().layout().is_fixed());
/// assert!(f.config().unwrap().checksum().is_some());
/// ```
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaFile {
    /// Header format (default `">H"`).
    #[serde(default = "default_header")]
    pub header_format: String,
    /// Message types.
    #[serde(default)]
    pub messages: Vec<MessageDef>,
    /// Optional protocol configuration.
    #[serde(default)]
    pub config: Option<ConfigFile>,
}

fn default_header() -> String {
    ">H".into()
}

/// One message type in a schema file.
///
/// ```
/// let m: netcore_schema::MessageDef = serde_json::from_str(r#"{"name":"A","id":1}"#).unwrap();
/// assert!(m.fields.is_empty());
/// ```
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MessageDef {
    /// Type name.
    pub name: String,
    /// Type id.
    pub id: u64,
    /// Fields in wire order.
    #[serde(default)]
    pub fields: Vec<FieldDef>,
}

/// One field in a schema file, mirroring Python's `FieldDefinition`.
///
/// `type` is `int`, `float`, `bool`, `str` or `bytes`; numbers need `format`; `str` and
/// `bytes` take an optional `fixed_length`.
///
/// ```
/// let f: netcore_schema::FieldDef = serde_json::from_str(r#"{"name":"v","type":"int","format":"<H"}"#).unwrap();
/// assert_eq!(f.to_field().unwrap().kind().fixed_width(), Some(2));
/// ```
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Field name.
    pub name: String,
    /// `int`, `float`, `bool`, `str` or `bytes` (optional when `format` is given).
    #[serde(rename = "type", default)]
    pub ty: Option<String>,
    /// Python struct format for numbers.
    #[serde(default)]
    pub format: Option<String>,
    /// Fixed length for `str`/`bytes`.
    #[serde(default)]
    pub fixed_length: Option<usize>,
}

impl FieldDef {
    /// Converts to a [`Field`].
    ///
    /// ```
    /// let f: netcore_schema::FieldDef = serde_json::from_str(r#"{"name":"s","type":"str"}"#).unwrap();
    /// assert_eq!(f.to_field().unwrap().kind(), netcore_schema::FieldKind::Text);
    /// ```
    pub fn to_field(&self) -> Result<Field> {
        let bad = |why: &str| SchemaError::InvalidSchema(format!("field {:?}: {why}", self.name));
        let kind =
            match (self.ty.as_deref(), &self.format, self.fixed_length) {
                (Some("int" | "float" | "bool") | None, Some(f), None) => {
                    FieldKind::Num(NumFormat::parse(f)?)
                }
                (Some("int" | "float" | "bool"), None, _) => {
                    return Err(bad("numbers need a struct `format` such as \">i\""))
                }
                (Some("str"), None, Some(n)) => FieldKind::FixedText(n),
                (Some("str"), None, None) => FieldKind::Text,
                (Some("bytes"), None, Some(n)) => FieldKind::FixedBytes(n),
                (Some("bytes"), None, None) => FieldKind::Bytes,
                (Some(t), _, _) if !matches!(t, "int" | "float" | "bool" | "str" | "bytes") => {
                    return Err(bad("type must be one of int, float, bool, str, bytes"))
                }
                _ => return Err(bad(
                    "give `format` for numbers, or `type` str/bytes with optional `fixed_length`",
                )),
            };
        Ok(Field::new(self.name.clone(), kind))
    }
}

impl SchemaFile {
    /// Parses JSON text.
    ///
    /// ```
    /// let f = netcore_schema::SchemaFile::from_json(r#"{"messages":[{"name":"A","id":1}]}"#).unwrap();
    /// assert_eq!(f.schema().unwrap().types().len(), 1);
    /// ```
    pub fn from_json(text: &str) -> Result<SchemaFile> {
        serde_json::from_str(text).map_err(|e| SchemaError::Parse(e.to_string()))
    }

    /// Parses TOML text.
    ///
    /// ```
    /// let f = netcore_schema::SchemaFile::from_toml("header_format = \"<B\"").unwrap();
    /// assert_eq!(f.schema().unwrap().not_found(), 255);
    /// ```
    pub fn from_toml(text: &str) -> Result<SchemaFile> {
        toml::from_str(text).map_err(|e| SchemaError::Parse(e.to_string()))
    }

    /// Builds the schema.
    ///
    /// ```
    /// assert!(netcore_schema::SchemaFile::from_json("{}").unwrap().schema().is_ok());
    /// ```
    pub fn schema(&self) -> Result<Schema> {
        let mut b = Schema::builder().header_format(&self.header_format);
        for m in &self.messages {
            let fields = m
                .fields
                .iter()
                .map(FieldDef::to_field)
                .collect::<Result<Vec<_>>>()?;
            b = b.dynamic(m.id, &m.name, fields);
        }
        b.build()
    }

    /// Builds the protocol configuration (defaults when the file has none).
    ///
    /// ```
    /// let c = netcore_schema::SchemaFile::from_json("{}").unwrap().config().unwrap();
    /// assert_eq!(c.max_payload_size(), 1024 * 1024);
    /// ```
    pub fn config(&self) -> Result<ProtocolConfig> {
        match &self.config {
            Some(c) => c.to_config(),
            None => Ok(ProtocolConfig::default()),
        }
    }
}
