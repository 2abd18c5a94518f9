//! # netcore-core
//!
//! The sans-IO protocol core of netcore: many concurrent messages over one byte
//! channel. It frames messages, interleaves their frames by urgency, reassembles them,
//! bounds memory with credit-based flow control, keeps the connection alive, and on the
//! `serial` link profile survives corrupted, dropped and inserted bytes.
//!
//! It performs no I/O, reads no clock and spawns nothing: a driver feeds it bytes and
//! time and writes out what it produces (see [`Connection`] for the call order). It is
//! `#![no_std]` with `alloc`; the `std` feature only adds `std::error::Error` impls.
//!
//! The wire format is specified in `docs/PROTOCOL.md`; the test suite checks its byte
//! vectors.
//!
//! ## Layout
//!
//! - [`varint`], [`codes`]: the primitive encodings and open code newtypes;
//! - [`frame`]: one module per frame kind, bytes only;
//! - [`link`]: the `tcp` and `serial` profiles (COBS, CRC32C, sequence numbers);
//! - [`Connection`] (`connection/`): handshake, sending and scheduling, receiving and
//!   credit, loss recovery, keepalive and close;
//! - [`error`]: peer violations apart from local misuse.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod codes;
mod config;
mod connection;
pub mod error;
mod event;
pub mod frame;
pub mod link;
pub mod metadata;
mod route;
mod time;
mod transmit;
pub mod varint;

pub use codes::{ErrorCode, FrameKind, Urgency};
pub use config::Config;
pub use connection::{Connection, Stats};
pub use error::{
    ConnectionError, FrameError, HandshakeError, LimitExceeded, LimitKind, MessageError,
    ProtocolViolation, ReadError, StartError, WriteError,
};
pub use event::{Event, MessageHead, MessageId, PeerParams};
pub use link::LinkProfile;
pub use route::Route;
pub use time::Instant;
pub use transmit::Transmit;
