//! LSO packets: their typed form, their exact encoding, and parsing their JSON.
//!
//! This module owns the byte layout of one packet as Python Netcore 0.1.3
//! writes it (see `docs/LEGACY.md`):
//!
//! ```text
//! i32 ext_len | ext: JSON, ext_len bytes | i32 meta_len | meta: meta_len bytes
//! ```
//!
//! (`i32` in the sender's native byte order, little endian on every common
//! host), with three packet types told apart by the extension's `"type"`:
//!
//! | type      | extension                                   | meta                                           |
//! |-----------|---------------------------------------------|------------------------------------------------|
//! | `mission` | `{"type": "mission"}`                       | `{"extension": E, "length": N, "info": {...}}` |
//! | `data`    | `{"type": "data", "extension": E}`          | up to 4096 raw body bytes                      |
//! | `cancel`  | `{"type": "cancel", "extension": E}`        | `{"extension": E}`                             |
//!
//! Incremental decoding lives in [`crate::decoder`].

use crate::error::{DecodeError, JsonPart};
use crate::json::{self, OrderedObject};
use serde::Deserialize;
use serde_json::Value;

/// Size of the data chunks Python Netcore 0.1.3 splits every body into.
pub const CHUNK_SIZE: usize = 4096;

/// Largest meta a Python 0.1.3 reader reads correctly (its `function_recv`
/// reads 2048-byte pieces and over-reads past two of them).
pub const PYTHON_MAX_META: usize = 4096;

/// Byte order of the two `i32` length fields (`struct.pack('i')` is native).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ByteOrder {
    /// x86, x86-64, ARM and RISC-V hosts: every usual Python peer.
    #[default]
    Little,
    /// Big-endian hosts (s390x, some MIPS/PowerPC).
    Big,
}

impl ByteOrder {
    /// Decodes an `i32` length field.
    pub fn read_i32(self, bytes: [u8; 4]) -> i32 {
        match self {
            ByteOrder::Little => i32::from_le_bytes(bytes),
            ByteOrder::Big => i32::from_be_bytes(bytes),
        }
    }

    /// Encodes an `i32` length field.
    pub fn write_i32(self, value: i32) -> [u8; 4] {
        match self {
            ByteOrder::Little => value.to_le_bytes(),
            ByteOrder::Big => value.to_be_bytes(),
        }
    }
}

/// The `info` dict of a mission head: the message's headers, in wire order.
///
/// Netcore puts `route`, `message_id` and `is_response` here; any other key is
/// an application header (Python's `Request.headers`).
///
/// ```
/// use netcore_legacy::Info;
/// let info = Info::request("echo", "ujOeHwdF");
/// assert_eq!(info.route(), Some("echo"));
/// assert_eq!(info.message_id(), Some("ujOeHwdF"));
/// assert!(!info.is_response());
/// assert_eq!(info.to_json(), r#"{"route": "echo", "message_id": "ujOeHwdF"}"#);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info(pub OrderedObject);

impl Info {
    /// `{"route": route, "message_id": id}`, as `Endpoint.send` writes it.
    pub fn request(route: &str, message_id: &str) -> Self {
        let mut info = Info::default();
        info.insert("route", Value::from(route));
        info.insert("message_id", Value::from(message_id));
        info
    }

    /// A response head: `{"route": r, "is_response": true, "message_id": id}` as a
    /// route handler's `Response` writes it, or without `route` as
    /// `Endpoint.send_response` writes it.
    pub fn response(route: Option<&str>, message_id: &str) -> Self {
        let mut info = Info::default();
        if let Some(route) = route {
            info.insert("route", Value::from(route));
        }
        info.insert("is_response", Value::Bool(true));
        info.insert("message_id", Value::from(message_id));
        info
    }

    /// The `route` field, when it is a string.
    pub fn route(&self) -> Option<&str> {
        self.get("route").and_then(Value::as_str)
    }

    /// The `message_id` field, when it is a string.
    pub fn message_id(&self) -> Option<&str> {
        self.get("message_id").and_then(Value::as_str)
    }

    /// The `is_response` field; absent or not `true` counts as false.
    pub fn is_response(&self) -> bool {
        matches!(self.get("is_response"), Some(Value::Bool(true)))
    }

    /// Any field by name.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Sets a field, keeping its position if it exists.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        self.0.insert(key, value);
    }

    /// All fields in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0 .0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Fields other than `route`, `message_id`, `is_response`: Python's `Request.headers`.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.iter()
            .filter(|(k, _)| !matches!(*k, "route" | "message_id" | "is_response"))
    }

    /// The Python `json.dumps` text of this dict.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        json::write_object(out, self.0 .0.iter().map(|(k, v)| (k, v)));
    }
}

/// The meta of a `mission` packet: announces one message.
#[derive(Debug, Clone, PartialEq)]
pub struct MissionHead {
    /// The sender's mission id (Python: `Utils.safe_code(6)`), used by its data and cancel packets.
    pub extension: String,
    /// Total body length; the message is complete once this many data bytes arrived.
    pub length: u64,
    /// The message's headers.
    pub info: Info,
}

/// One LSO packet.
///
/// ```
/// use netcore_legacy::{ByteOrder, Packet};
/// let mut wire = Vec::new();
/// Packet::Cancel { extension: "oEKqaz".into() }.encode(ByteOrder::Little, &mut wire);
/// assert_eq!(&wire[..4], &41i32.to_le_bytes());
/// assert!(wire.ends_with(br#"{"extension": "oEKqaz"}"#));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// Announces a message (Python's "mission head").
    Mission(MissionHead),
    /// A piece of a message body.
    Data {
        /// The mission id from the message's head.
        extension: String,
        /// The bytes (Python sends exactly 4096 except for the last chunk).
        payload: Vec<u8>,
    },
    /// The sender abandons a message it had announced.
    Cancel {
        /// The mission id from the message's head.
        extension: String,
    },
}

impl Packet {
    /// Appends the exact bytes Python Netcore 0.1.3 writes for this packet and
    /// returns how many were appended. Lengths past `i32::MAX` are clamped by
    /// the caller's limits long before; this never panics.
    pub fn encode(&self, order: ByteOrder, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        match self {
            Packet::Mission(head) => {
                encode_mission_ext(order, out);
                with_len_prefix(order, out, |out| encode_mission_meta(head, out));
            }
            Packet::Data { extension, payload } => {
                encode_data_header(order, extension, payload.len(), out);
                out.extend_from_slice(payload);
            }
            Packet::Cancel { extension } => {
                with_len_prefix(order, out, |out| write_ext(out, "cancel", Some(extension)));
                with_len_prefix(order, out, |out| {
                    out.extend_from_slice(b"{\"extension\": ");
                    json::write_str(out, extension);
                    out.push(b'}');
                });
            }
        }
        out.len() - start
    }
}

/// Writes `i32 len | body` where `body` is produced by `f`.
fn with_len_prefix(order: ByteOrder, out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    f(out);
    let len = i32::try_from(out.len() - at - 4).unwrap_or(i32::MAX);
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&order.write_i32(len));
    }
}

fn write_ext(out: &mut Vec<u8>, kind: &str, extension: Option<&str>) {
    out.extend_from_slice(b"{\"type\": ");
    json::write_str(out, kind);
    if let Some(extension) = extension {
        out.extend_from_slice(b", \"extension\": ");
        json::write_str(out, extension);
    }
    out.push(b'}');
}

pub(crate) fn encode_mission_ext(order: ByteOrder, out: &mut Vec<u8>) {
    with_len_prefix(order, out, |out| write_ext(out, "mission", None));
}

pub(crate) fn encode_mission_meta(head: &MissionHead, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"extension\": ");
    json::write_str(out, &head.extension);
    out.extend_from_slice(b", \"length\": ");
    out.extend_from_slice(head.length.to_string().as_bytes());
    out.extend_from_slice(b", \"info\": ");
    head.info.write_json(out);
    out.push(b'}');
}

/// Writes everything of a data packet but its payload.
pub(crate) fn encode_data_header(
    order: ByteOrder,
    extension: &str,
    payload_len: usize,
    out: &mut Vec<u8>,
) {
    with_len_prefix(order, out, |out| write_ext(out, "data", Some(extension)));
    let len = i32::try_from(payload_len).unwrap_or(i32::MAX);
    out.extend_from_slice(&order.write_i32(len));
}

/// The packet type announced by an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Mission,
    Data(String),
    Cancel(String),
}

#[derive(Deserialize)]
struct RawExt {
    #[serde(rename = "type")]
    kind: Option<Value>,
    extension: Option<Value>,
}

#[derive(Deserialize)]
struct RawMission {
    extension: Option<Value>,
    length: Option<Value>,
    info: Option<RawInfo>,
}

/// The `info` member: an object parsed in order, `null`, or anything else.
enum RawInfo {
    Object(OrderedObject),
    Null,
    Other,
}

impl<'de> Deserialize<'de> for RawInfo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawInfo;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawInfo, A::Error> {
                let obj =
                    OrderedObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawInfo::Object(obj))
            }
            fn visit_unit<E>(self) -> Result<RawInfo, E> {
                Ok(RawInfo::Null)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawInfo, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(RawInfo::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawInfo, E> {
                Ok(RawInfo::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawInfo, E> {
                Ok(RawInfo::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawInfo, E> {
                Ok(RawInfo::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<RawInfo, E> {
                Ok(RawInfo::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<RawInfo, E> {
                Ok(RawInfo::Other)
            }
        }
        d.deserialize_any(V)
    }
}

fn invalid_json(part: JsonPart, e: &serde_json::Error) -> DecodeError {
    DecodeError::InvalidJson {
        part,
        reason: e.to_string(),
    }
}

fn string_field(
    part: JsonPart,
    field: &'static str,
    v: Option<Value>,
) -> Result<String, DecodeError> {
    match v {
        Some(Value::String(s)) => Ok(s),
        _ => Err(DecodeError::InvalidField {
            part,
            field,
            expected: "a string",
        }),
    }
}

/// Parses a packet extension into its type.
pub(crate) fn parse_ext(bytes: &[u8]) -> Result<Kind, DecodeError> {
    let part = JsonPart::Extension;
    let raw: RawExt = serde_json::from_slice(bytes).map_err(|e| invalid_json(part, &e))?;
    let kind = string_field(part, "type", raw.kind)?;
    match kind.as_str() {
        "mission" => Ok(Kind::Mission),
        "data" => Ok(Kind::Data(string_field(part, "extension", raw.extension)?)),
        "cancel" => Ok(Kind::Cancel(string_field(
            part,
            "extension",
            raw.extension,
        )?)),
        _ => Err(DecodeError::UnknownPacketType {
            type_name: kind.chars().take(64).collect(),
        }),
    }
}

/// Parses the meta of a `mission` packet.
pub(crate) fn parse_mission(bytes: &[u8]) -> Result<MissionHead, DecodeError> {
    let part = JsonPart::MissionHead;
    let raw: RawMission = serde_json::from_slice(bytes).map_err(|e| invalid_json(part, &e))?;
    let extension = string_field(part, "extension", raw.extension)?;
    let length = raw
        .length
        .as_ref()
        .and_then(Value::as_u64)
        .ok_or(DecodeError::InvalidField {
            part,
            field: "length",
            expected: "a non-negative integer",
        })?;
    let info = match raw.info {
        // Python reads `data['info']` and would die without it; an empty dict is harmless.
        None | Some(RawInfo::Null) => Info::default(),
        Some(RawInfo::Object(obj)) => Info(obj),
        Some(RawInfo::Other) => {
            return Err(DecodeError::InvalidField {
                part,
                field: "info",
                expected: "an object",
            })
        }
    };
    for (field, ok) in [
        ("route", info.get("route").is_none_or(Value::is_string)),
        (
            "message_id",
            info.get("message_id").is_none_or(Value::is_string),
        ),
        (
            "is_response",
            info.get("is_response").is_none_or(Value::is_boolean),
        ),
    ] {
        if !ok {
            return Err(DecodeError::InvalidField {
                part,
                field,
                expected: match field {
                    "is_response" => "a boolean",
                    _ => "a string",
                },
            });
        }
    }
    Ok(MissionHead {
        extension,
        length,
        info,
    })
}
