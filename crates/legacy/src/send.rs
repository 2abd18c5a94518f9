//! The sending half of a legacy connection: outgoing heads, chunking, fairness.
//!
//! This module owns what [`LegacyConnection`](crate::LegacyConnection) puts on
//! the wire and in which order, reproducing Python's `Pipe._send_thread`:
//!
//! 1. control packets first, in call order: mission heads and cancels;
//! 2. then one data chunk per message with data ready, round robin, each
//!    chunk exactly [`CHUNK_SIZE`](crate::CHUNK_SIZE) bytes of the body except
//!    the last one (the same boundaries as Python's `split_bytes_into_chunks`).
//!
//! It also describes an outgoing message ([`OutgoingHead`]) and generates the
//! alphanumeric ids Python expects (6-character mission ids, 8-character
//! message ids) from a counter instead of a random generator.

use crate::error::SendError;
use crate::event::MessageId;
use crate::packet::{self, ByteOrder, Packet};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};

/// What a new outgoing message answers, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// A request: a fresh `message_id`, a response is expected.
    Request,
    /// A response to an incoming request, found by our id.
    To(MessageId),
    /// A response to a Python `message_id` the caller kept.
    ToPythonId(String),
}

/// The head of a message to send: route, request/response role, body length.
///
/// ```
/// use netcore_legacy::{MessageId, OutgoingHead};
/// let req = OutgoingHead::request("echo", 5).with_header("trace", "abc".into());
/// let resp = OutgoingHead::response(MessageId(3), 2).with_route("echo");
/// let raw = OutgoingHead::response_to_python_id("ujOeHwdF", 2);
/// # let _ = (req, resp, raw);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingHead {
    pub(crate) route: Option<String>,
    pub(crate) reply: Reply,
    pub(crate) length: u64,
    pub(crate) headers: Vec<(String, Value)>,
    pub(crate) extension: Option<String>,
    pub(crate) message_id: Option<String>,
}

impl OutgoingHead {
    fn new(route: Option<String>, reply: Reply, length: u64) -> Self {
        OutgoingHead {
            route,
            reply,
            length,
            headers: Vec::new(),
            extension: None,
            message_id: None,
        }
    }

    /// A request to `route` with a `length`-byte body; its response will be
    /// reported with `in_reply_to` set to this message's id.
    pub fn request(route: impl Into<String>, length: u64) -> Self {
        Self::new(Some(route.into()), Reply::Request, length)
    }

    /// A response to the incoming request `to` (its Python `message_id` is
    /// looked up), without a route, as Python's `Endpoint.send_response` writes.
    pub fn response(to: MessageId, length: u64) -> Self {
        Self::new(None, Reply::To(to), length)
    }

    /// A response to a Python `message_id` kept by the caller.
    pub fn response_to_python_id(message_id: impl Into<String>, length: u64) -> Self {
        Self::new(None, Reply::ToPythonId(message_id.into()), length)
    }

    /// Sets the route (a route handler's `Response(route, data)` carries one).
    pub fn with_route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }

    /// Adds an application header (Python's `Request.headers`), after the
    /// standard fields. A header named like a standard field replaces it.
    pub fn with_header(mut self, key: impl Into<String>, value: Value) -> Self {
        self.headers.push((key.into(), value));
        self
    }

    /// Uses this mission id instead of a generated one (Python's
    /// `Pipe.create_mission(extension=...)`).
    pub fn with_extension(mut self, extension: impl Into<String>) -> Self {
        self.extension = Some(extension.into());
        self
    }

    /// Uses this `message_id` for a request instead of a generated one.
    pub fn with_message_id(mut self, message_id: impl Into<String>) -> Self {
        self.message_id = Some(message_id.into());
        self
    }

    /// The announced body length.
    pub fn length(&self) -> u64 {
        self.length
    }
}

/// Python's `safe_code` alphabet: `ascii_letters + digits`.
const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Multiplier of [`alnum_id`]; coprime with 62, checked at compile time.
const MUL: u128 = 0x9E37_79B9_7F4A_7C15;
const _: () = assert!(MUL % 2 == 1 && MUL % 31 != 0);

/// The `n`-th id of `len` characters: a bijection of `n mod 62^len` (an odd
/// multiplier not divisible by 31 is coprime with 62), so ids repeat only
/// after 62^len of them while looking as scattered as Python's random ones.
pub(crate) fn alnum_id(n: u64, seed: u64, len: u32) -> String {
    let modulus = 62u128.pow(len);
    let mut x = (u128::from(n) * MUL + u128::from(seed)) % modulus;
    let mut out = vec![b'a'; len as usize];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(x % 62) as usize];
        x /= 62;
    }
    String::from_utf8(out).unwrap_or_default()
}

#[derive(Debug)]
struct OutMsg {
    extension: String,
    length: u64,
    written: u64,
    sent: u64,
    finished: bool,
    buf: VecDeque<u8>,
    /// Encoded head packet until it is transmitted.
    head: Option<Vec<u8>>,
    in_rr: bool,
}

impl OutMsg {
    /// A full chunk, or the whole rest of the body, is buffered.
    fn ready(&self, chunk: usize) -> bool {
        let remaining = self.length - self.sent;
        remaining > 0 && self.buf.len() as u64 >= remaining.min(chunk as u64)
    }
}

#[derive(Debug)]
enum Control {
    Head(MessageId),
    Cancel(String),
}

/// Outgoing messages and the order their packets go out in.
#[derive(Debug)]
pub(crate) struct Sender {
    order: ByteOrder,
    chunk: usize,
    max_buffer: usize,
    msgs: HashMap<MessageId, OutMsg>,
    by_ext: HashMap<String, MessageId>,
    control: VecDeque<Control>,
    rr: VecDeque<MessageId>,
}

/// What one `poll_transmit` produced.
pub(crate) struct Transmitted {
    pub bytes: usize,
    pub completed: Option<MessageId>,
}

impl Sender {
    pub fn new(order: ByteOrder, chunk: usize, max_buffer: usize) -> Self {
        Sender {
            order,
            chunk: chunk.clamp(1, packet::PYTHON_MAX_META),
            max_buffer: max_buffer.max(chunk),
            msgs: HashMap::new(),
            by_ext: HashMap::new(),
            control: VecDeque::new(),
            rr: VecDeque::new(),
        }
    }

    pub fn has_extension(&self, extension: &str) -> bool {
        self.by_ext.contains_key(extension)
    }

    /// Queues a message whose head is already encoded.
    pub fn start(&mut self, id: MessageId, extension: String, length: u64, head: Vec<u8>) {
        self.by_ext.insert(extension.clone(), id);
        self.msgs.insert(
            id,
            OutMsg {
                extension,
                length,
                written: 0,
                sent: 0,
                finished: false,
                buf: VecDeque::new(),
                head: Some(head),
                in_rr: false,
            },
        );
        self.control.push_back(Control::Head(id));
    }

    pub fn write(&mut self, id: MessageId, data: &[u8]) -> Result<usize, SendError> {
        let msg = self
            .msgs
            .get_mut(&id)
            .ok_or(SendError::UnknownMessage(id))?;
        if data.len() as u64 > msg.length - msg.written {
            return Err(SendError::TooLong {
                id,
                declared: msg.length,
            });
        }
        let n = data
            .len()
            .min(self.max_buffer.saturating_sub(msg.buf.len()));
        msg.buf.extend(data.iter().take(n));
        msg.written += n as u64;
        if !msg.in_rr && msg.ready(self.chunk) {
            msg.in_rr = true;
            self.rr.push_back(id);
        }
        Ok(n)
    }

    /// Marks the body complete; returns true if it was already all sent.
    pub fn finish(&mut self, id: MessageId) -> Result<bool, SendError> {
        let msg = self
            .msgs
            .get_mut(&id)
            .ok_or(SendError::UnknownMessage(id))?;
        if msg.written < msg.length {
            return Err(SendError::Incomplete {
                id,
                declared: msg.length,
                written: msg.written,
            });
        }
        msg.finished = true;
        // An empty body is complete only once its head is out.
        let done = msg.sent == msg.length && msg.head.is_none();
        if done {
            self.remove(id);
        }
        Ok(done)
    }

    /// Abandons a message, sending a cancel packet if its head went out.
    pub fn cancel(&mut self, id: MessageId) -> Result<(), SendError> {
        let msg = self.msgs.get(&id).ok_or(SendError::UnknownMessage(id))?;
        if msg.sent == msg.length && msg.head.is_none() {
            // Everything is on the wire already; only forget it.
            self.remove(id);
            return Err(SendError::AlreadySent(id));
        }
        if msg.head.is_some() {
            // The peer never heard of it: send nothing at all.
            self.control
                .retain(|c| !matches!(c, Control::Head(h) if *h == id));
        } else {
            self.control
                .push_back(Control::Cancel(msg.extension.clone()));
        }
        self.remove(id);
        Ok(())
    }

    fn remove(&mut self, id: MessageId) {
        if let Some(msg) = self.msgs.remove(&id) {
            self.by_ext.remove(&msg.extension);
        }
    }

    /// Drops every message; returns the ids of those not completely sent.
    pub fn clear(&mut self) -> Vec<MessageId> {
        let mut ids: Vec<MessageId> = self.msgs.keys().copied().collect();
        ids.sort_unstable();
        self.msgs.clear();
        self.by_ext.clear();
        self.control.clear();
        self.rr.clear();
        ids
    }

    pub fn wants_transmit(&self) -> bool {
        !self.control.is_empty() || !self.rr.is_empty()
    }

    /// Appends at most one packet to `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Transmitted {
        let start = out.len();
        while let Some(c) = self.control.pop_front() {
            match c {
                Control::Head(id) => {
                    if let Some(head) = self.msgs.get_mut(&id).and_then(|m| m.head.take()) {
                        out.extend_from_slice(&head);
                        // A zero-length message is complete once its head is out.
                        return Transmitted {
                            bytes: out.len() - start,
                            completed: self.complete_if_done(id),
                        };
                    }
                }
                Control::Cancel(extension) => {
                    Packet::Cancel { extension }.encode(self.order, out);
                    return Transmitted {
                        bytes: out.len() - start,
                        completed: None,
                    };
                }
            }
        }
        while let Some(id) = self.rr.pop_front() {
            let chunk = self.chunk;
            let Some(msg) = self.msgs.get_mut(&id) else {
                continue; // cancelled while queued
            };
            msg.in_rr = false;
            if !msg.ready(chunk) {
                continue;
            }
            let n = usize::try_from((msg.length - msg.sent).min(chunk as u64)).unwrap_or(chunk);
            packet::encode_data_header(self.order, &msg.extension, n, out);
            out.extend(msg.buf.drain(..n));
            msg.sent += n as u64;
            if msg.ready(chunk) {
                msg.in_rr = true;
                self.rr.push_back(id);
            }
            return Transmitted {
                bytes: out.len() - start,
                completed: self.complete_if_done(id),
            };
        }
        Transmitted {
            bytes: 0,
            completed: None,
        }
    }

    fn complete_if_done(&mut self, id: MessageId) -> Option<MessageId> {
        let msg = self.msgs.get(&id)?;
        if msg.finished && msg.sent == msg.length && msg.head.is_none() {
            self.remove(id);
            Some(id)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_alphanumeric_distinct_and_sized() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|n| alnum_id(n, 42, 6)).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids
            .iter()
            .all(|s| s.len() == 6 && s.bytes().all(|b| b.is_ascii_alphanumeric())));
        assert_eq!(alnum_id(u64::MAX, u64::MAX, 8).len(), 8);
    }
}
