//! Typed binary messages for netcore, byte-compatible with the Python package
//! `binary_protocol` 0.2.2.
//!
//! A *schema* maps integer message type ids (carried in a header of configurable width
//! and byte order, Python's `header_format`, default `">H"`) to *layouts* of fields:
//! numbers in any Python `struct` format, fixed-length NUL-padded text/bytes and
//! variable-length text/bytes with a `u32` big-endian length prefix. Layouts made only of
//! fixed-width fields are sent without a length prefix and take an allocation-free path.
//!
//! Modules and what they own:
//! - [`format`](mod@format): struct format strings, header formats, number ↔ bytes.
//! - [`layout`]: field kinds, layouts, field wire primitives.
//! - [`value`]: dynamic [`Value`]s and borrowed [`ValueRef`]s.
//! - [`typed`]: the [`TypedMessage`] trait and the [`message!`] macro (Rust-defined types).
//! - [`schema`]: [`Schema`], its builder and the JSON/TOML schema file.
//! - [`config`]: [`ProtocolConfig`], [`Checksum`], validation hooks, error handler.
//! - [`codec`]: sans-IO framing ([`Codec`], [`StreamDecoder`], [`Frame`], [`Reply`]).
//! - [`server`]: typed TCP/UDP server with a handler per type (tokio); `server::conn`
//!   holds the per-connection TCP loop.
//! - [`client`]: typed TCP/UDP client and one-shot helpers (tokio).
//!
//! ```
//! netcore_schema::message! {
//!     /// Four big-endian f32 readings (16 bytes).
//!     #[derive(Debug, Clone, PartialEq)]
//!     pub struct SensorData = 1 {
//!         /// Sensor 1.
//!         pub s1: f32 [">f"],
//!         /// Sensor 2.
//!         pub s2: f32 [">f"],
//!         /// Sensor 3.
//!         pub s3: f32 [">f"],
//!         /// Sensor 4.
//!         pub s4: f32 [">f"],
//!     }
//! }
//! use netcore_schema::{Codec, Frame, ProtocolConfig, Schema, TypedMessage};
//! let schema = Schema::builder().message::<SensorData>().build().unwrap();
//! let codec = Codec::new(schema, ProtocolConfig::default());
//! let mut wire = Vec::new();
//! codec.encode(&SensorData { s1: 1.0, s2: 2.0, s3: 3.0, s4: 4.0 }, &mut wire).unwrap();
//! assert_eq!(wire.len(), 2 + 16);
//! let Frame::Message { type_id, payload } = codec.decode_datagram(&wire).unwrap() else { panic!() };
//! assert_eq!(type_id, 1);
//! assert_eq!(SensorData::decode(payload).unwrap().s3, 3.0);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod codec;
pub mod config;
pub mod error;
pub mod format;
pub mod layout;
pub mod schema;
pub mod server;
pub mod typed;
pub mod value;

pub use client::{Client, Received, Transport};
pub use codec::{Codec, Frame, Reply, StreamDecoder};
pub use config::{Checksum, ConfigFile, ErrorContext, ErrorHandler, ProtocolConfig, Validator};
pub use error::{Result, SchemaError};
pub use format::{HeaderFormat, Num, NumFormat, NumKind};
pub use layout::{Field, FieldKind, Layout, Reader};
pub use schema::{FieldDef, MessageDef, MessageType, Schema, SchemaBuilder, SchemaFile};
pub use server::{Request, Server, ServerBuilder, ServerHandle};
pub use typed::{FieldValue, TypedMessage};
pub use value::{Value, ValueRef};
