//! The per-connection TCP loop of the server.
//!
//! This module owns reading a connection into a buffer, cutting frames with the
//! [`StreamDecoder`](crate::StreamDecoder), dispatching them in order, batching the answers
//! into one write, and the timeouts: `read_timeout` once a message has started,
//! `idle_timeout` (optional) between messages, `write_timeout` per batch. Per-message
//! errors go to the error handler and the loop goes on; truncation, timeouts and I/O
//! errors end this connection only.

use super::Shared;
use crate::codec::Frame;
use crate::error::SchemaError;
use bytes::{Buf, BytesMut};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

fn error_type_id(e: &SchemaError) -> Option<u64> {
    match *e {
        SchemaError::BadChecksum { type_id }
        | SchemaError::ValidationFailed { type_id, .. }
        | SchemaError::WrongLength { type_id, .. }
        | SchemaError::Handler { type_id, .. } => Some(type_id),
        _ => None,
    }
}

pub(super) async fn serve_conn(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let config = shared.codec.config().clone();
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut dec = shared.codec.stream_decoder();
    loop {
        loop {
            match dec.decode_span(&mut buf) {
                Ok(None) => break,
                Ok(Some((frame, len))) => {
                    // The handler future is created while the payload is borrowed from
                    // the buffer (typed handlers decode in place), then the frame is
                    // dropped from the buffer before awaiting.
                    let frame = match frame {
                        Frame::NotFound => Frame::NotFound,
                        Frame::Unknown { type_id } => Frame::Unknown { type_id },
                        Frame::Message { type_id, payload } => Frame::Message {
                            type_id,
                            payload: &buf[payload],
                        },
                    };
                    let started = shared.start(frame, peer);
                    buf.advance(len);
                    if let Some((type_id, fut)) = started {
                        let result = fut.await;
                        shared.finish(type_id, result, peer, &mut out);
                    }
                }
                Err(e) => shared.on_error(&e, Some(peer), error_type_id(&e), &mut out),
            }
            if out.len() >= 64 * 1024 {
                break;
            }
        }
        if !out.is_empty() {
            match tokio::time::timeout(config.write_timeout(), wr.write_all(&out)).await {
                Ok(Ok(())) => out.clear(),
                Ok(Err(e)) => {
                    tracing::debug!("write to {peer} failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("write to {peer} timed out");
                    return;
                }
            }
            // More complete frames may still be buffered (we stopped at 64 KiB).
            if !buf.is_empty() && !dec.is_discarding() {
                continue;
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        let mid = dec.is_mid_message(&buf);
        let limit = if mid {
            Some(config.read_timeout())
        } else {
            config.idle_timeout()
        };
        let read = async {
            match limit {
                Some(t) => tokio::time::timeout(t, rd.read_buf(&mut buf)).await.ok(),
                None => Some(rd.read_buf(&mut buf).await),
            }
        };
        let res = tokio::select! {
            r = read => r,
            _ = stop.changed() => return,
        };
        match res {
            Some(Ok(0)) => {
                if mid {
                    let e = SchemaError::Truncated {
                        needed: 1,
                        available: buf.len(),
                    };
                    shared.on_error(&e, Some(peer), None, &mut Vec::new());
                }
                return;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!("read from {peer} failed: {e}");
                return;
            }
            None => {
                let e = SchemaError::Timeout {
                    op: if mid {
                        "reading the rest of a message"
                    } else {
                        "waiting for the next message"
                    },
                    after: limit.unwrap_or_default(),
                };
                shared.on_error(&e, Some(peer), None, &mut Vec::new());
                return;
            }
        }
    }
}
