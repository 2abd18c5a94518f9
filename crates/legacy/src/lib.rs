//! Wire codec for Python Netcore 0.1.3 peers ("legacy mode").
//!
//! Python Netcore 0.1.3 frames everything as LSO packets
//! (`i32 ext_len | JSON extension | i32 meta_len | meta`, native-endian
//! lengths); a message is a `mission` head packet announcing its route,
//! `message_id`, `is_response` flag and total length, then 4096-byte `data`
//! packets, possibly cut short by a `cancel` packet. `docs/LEGACY.md` in the
//! repository describes the format byte by byte with real captures.
//!
//! This crate is sans-IO: it never reads a socket, a clock or a random
//! generator. Modules:
//!
//! - [`packet`]: packet types and their exact encoding;
//! - [`decoder`]: the incremental, bounded packet decoder and [`Limits`];
//! - [`connection`]: [`LegacyConnection`], the message-level state machine
//!   (ids, response matching, limits), its receiving half in `connection::recv`;
//! - [`event`]: what the connection takes and reports ([`Config`], [`Event`], ...);
//! - [`send`]: outgoing heads, chunking and round-robin interleaving;
//! - [`json`]: JSON text exactly as Python's `json.dumps` writes it;
//! - [`error`]: the typed errors.
//!
//! ```
//! use netcore_legacy::{Config, Event, LegacyConnection, OutgoingHead};
//!
//! let mut conn = LegacyConnection::new(Config::default());
//! let id = conn.start_message(OutgoingHead::request("echo", 3)).unwrap();
//! conn.write(id, b"abc").unwrap();
//! conn.finish(id).unwrap();
//! let mut wire = Vec::new();
//! while conn.poll_transmit(&mut wire) > 0 {}
//! // `wire` now holds a mission head and one data packet, ready for a Python peer.
//! assert!(wire.starts_with(b"\x13\0\0\0{\"type\": \"mission\"}"));
//! assert!(wire.ends_with(b"abc"));
//! assert_eq!(conn.poll_event(), Some(Event::SendComplete { id }));
//! ```

#![forbid(unsafe_code)]

pub mod connection;
pub mod decoder;
pub mod error;
pub mod event;
pub mod json;
pub mod packet;
pub mod send;

pub use connection::LegacyConnection;
pub use decoder::{Limits, PacketDecoder};
pub use error::{DecodeError, JsonPart, LengthField, MessageError, SendError};
pub use event::{Config, Event, IncomingHead, MessageId, Stats};
pub use packet::{ByteOrder, Info, MissionHead, Packet, CHUNK_SIZE, PYTHON_MAX_META};
pub use send::OutgoingHead;
/// The JSON library of [`OutgoingHead::with_header`] values and [`Info`] fields.
pub use serde_json;
