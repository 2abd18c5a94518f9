//! Tokio runtime of netcore: drives the protocol core over TCP, Unix, serial, stdio, TLS and simulated links.

pub mod transport;
