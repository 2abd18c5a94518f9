//! The message-level state machine of one legacy connection.
//!
//! This module owns [`LegacyConnection`]: mapping Python's string ids (mission
//! `extension`s and `message_id`s) to [`MessageId`]s, matching responses to
//! requests, enforcing [`Limits`] on incoming messages, and turning packets
//! into [`Event`]s. It does no I/O and reads no clock: the caller feeds
//! received bytes to [`LegacyConnection::handle_input`], writes what
//! [`LegacyConnection::poll_transmit`] produces, and handles
//! [`LegacyConnection::poll_event`]s.

use crate::decoder::{Limits, PacketDecoder};
use crate::error::{DecodeError, MessageError, SendError};
use crate::packet::{self, ByteOrder, Info, MissionHead, Packet, CHUNK_SIZE};
use crate::send::{alnum_id, OutgoingHead, Reply, Sender};
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// Our id for one message, incoming or outgoing, unique on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Settings of a [`LegacyConnection`].
///
/// ```
/// use netcore_legacy::{Config, Limits};
/// let config = Config { id_seed: 0x5eed, limits: Limits::default(), ..Config::default() };
/// assert_eq!(config.chunk_size, 4096);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Limits on what the peer may make us buffer or track.
    pub limits: Limits,
    /// Byte order of the peer's `i32` length fields.
    pub byte_order: ByteOrder,
    /// Data chunk size, clamped to `1..=4096` (Python readers break above 4096).
    pub chunk_size: usize,
    /// Body bytes buffered per outgoing message before `write` accepts fewer.
    pub max_send_buffer: usize,
    /// Incoming requests remembered for [`OutgoingHead::response`]; the oldest
    /// unanswered one is forgotten past this.
    pub max_answerable: usize,
    /// Mixed into generated ids, so that two connections use different ones
    /// (pass something random; the codec has no random source).
    pub id_seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            byte_order: ByteOrder::Little,
            chunk_size: CHUNK_SIZE,
            max_send_buffer: 64 * 1024,
            max_answerable: 4096,
            id_seed: 0,
        }
    }
}

/// The head of an incoming message.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingHead {
    /// `info["route"]` (Python treats a missing route as `""`).
    pub route: Option<String>,
    /// `info["message_id"]`: keep it to answer with
    /// [`OutgoingHead::response_to_python_id`].
    pub message_id: Option<String>,
    /// `info["is_response"]`.
    pub is_response: bool,
    /// The request of ours this answers: set when `is_response` is true and
    /// `message_id` is one of our pending requests.
    pub in_reply_to: Option<MessageId>,
    /// Announced body length.
    pub length: u64,
    /// The sender's mission id.
    pub extension: String,
    /// All of `info`, including application headers, in wire order.
    pub info: Info,
}

/// Something that happened on the connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The peer announced a message; `Data` and then `MessageFinished` follow.
    MessageStarted {
        /// Our id for it.
        id: MessageId,
        /// Its head.
        head: IncomingHead,
    },
    /// A piece of an incoming body, in order.
    Data {
        /// The message.
        id: MessageId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// All announced bytes of an incoming message arrived.
    MessageFinished {
        /// The message.
        id: MessageId,
    },
    /// The peer cancelled an incoming message before it was complete.
    CancelledByPeer {
        /// The message.
        id: MessageId,
    },
    /// An announced message was refused (limits, duplicate id); its data is ignored.
    /// If it is a request, answer `head.message_id` so the Python side stops waiting.
    MessageRejected {
        /// Its head.
        head: IncomingHead,
        /// Why.
        error: MessageError,
    },
    /// A started message (either direction) was aborted.
    MessageFailed {
        /// The message.
        id: MessageId,
        /// Why.
        error: MessageError,
    },
    /// Every byte of an outgoing message was handed to `poll_transmit` and
    /// `finish` was called (Python's `mission_complete_handler`).
    SendComplete {
        /// The message.
        id: MessageId,
    },
    /// A malformed packet was skipped; the connection goes on.
    ProtocolError(DecodeError),
    /// The byte stream is unusable; the connection is dead.
    ConnectionFailed(DecodeError),
}

/// Counters for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets decoded.
    pub packets_received: u64,
    /// Packets produced by `poll_transmit`.
    pub packets_sent: u64,
    /// Data packets for unknown, rejected or cancelled missions (Python ignores them too).
    pub ignored_data_packets: u64,
    /// Cancels for missions not in progress.
    pub ignored_cancels: u64,
    /// Packets skipped as malformed.
    pub protocol_errors: u64,
    /// Data packets that arrived before their mission head and were replayed.
    pub early_data_packets: u64,
}

/// How many ended mission ids are remembered, so that their late data is
/// dropped at once instead of being kept as early data.
const ENDED_MEMORY: usize = 64;

#[derive(Debug)]
struct InMsg {
    extension: String,
    length: u64,
    received: u64,
}

/// A sans-IO Python Netcore 0.1.3 connection, in the style of `quinn-proto`.
///
/// ```
/// use netcore_legacy::{Config, Event, LegacyConnection, OutgoingHead};
///
/// let mut client = LegacyConnection::new(Config::default());
/// let mut server = LegacyConnection::new(Config { id_seed: 1, ..Config::default() });
///
/// let req = client.start_message(OutgoingHead::request("echo", 5)).unwrap();
/// client.write(req, b"hello").unwrap();
/// client.finish(req).unwrap();
/// let mut wire = Vec::new();
/// while client.poll_transmit(&mut wire) > 0 {}
///
/// server.handle_input(&wire).unwrap();
/// let Some(Event::MessageStarted { id, head }) = server.poll_event() else { panic!() };
/// assert_eq!(head.route.as_deref(), Some("echo"));
/// assert_eq!(server.poll_event(), Some(Event::Data { id, data: b"hello".to_vec() }));
/// assert_eq!(server.poll_event(), Some(Event::MessageFinished { id }));
///
/// let resp = server.start_message(OutgoingHead::response(id, 2)).unwrap();
/// server.write(resp, b"ok").unwrap();
/// server.finish(resp).unwrap();
/// let mut wire = Vec::new();
/// while server.poll_transmit(&mut wire) > 0 {}
/// client.handle_input(&wire).unwrap();
/// assert_eq!(client.poll_event(), Some(Event::SendComplete { id: req }));
/// let Some(Event::MessageStarted { head, .. }) = client.poll_event() else { panic!() };
/// assert_eq!(head.in_reply_to, Some(req));
/// ```
#[derive(Debug)]
pub struct LegacyConnection {
    config: Config,
    decoder: PacketDecoder,
    sender: Sender,
    next_id: u64,
    next_ext: u64,
    next_python_id: u64,
    /// Python message_id of our pending requests -> our id, and back.
    pending: HashMap<String, MessageId>,
    pending_by_id: HashMap<MessageId, String>,
    /// Peer mission id -> our id, for incomplete incoming messages.
    incoming_ext: HashMap<String, MessageId>,
    incoming: HashMap<MessageId, InMsg>,
    /// Incoming requests we may still answer, oldest first.
    answerable: HashMap<MessageId, String>,
    answerable_order: VecDeque<MessageId>,
    /// Data for missions not announced yet, oldest first, and its size.
    early: VecDeque<(String, Vec<u8>)>,
    early_bytes: usize,
    /// Recently ended incoming mission ids, oldest first.
    ended: VecDeque<String>,
    events: VecDeque<Event>,
    failed: Option<DecodeError>,
    closed: bool,
    stats: Stats,
}

impl LegacyConnection {
    /// A connection with nothing in flight.
    pub fn new(config: Config) -> Self {
        LegacyConnection {
            decoder: PacketDecoder::with_byte_order(config.limits, config.byte_order),
            sender: Sender::new(config.byte_order, config.chunk_size, config.max_send_buffer),
            config,
            next_id: 0,
            next_ext: 0,
            next_python_id: 0,
            pending: HashMap::new(),
            pending_by_id: HashMap::new(),
            incoming_ext: HashMap::new(),
            incoming: HashMap::new(),
            answerable: HashMap::new(),
            answerable_order: VecDeque::new(),
            early: VecDeque::new(),
            early_bytes: 0,
            ended: VecDeque::new(),
            events: VecDeque::new(),
            failed: None,
            closed: false,
            stats: Stats::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Diagnostic counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Received bytes held by the connection: the partial packet being
    /// decoded (at most the larger of `max_header_len` and `max_packet_len`)
    /// plus data waiting for its mission head (at most `max_early_data`).
    /// Events not yet polled are not counted.
    pub fn buffered_input(&self) -> usize {
        self.decoder.buffered() + self.early_bytes
    }

    /// Incomplete incoming messages.
    pub fn incoming_in_flight(&self) -> usize {
        self.incoming.len()
    }

    /// Whether the connection failed or was closed.
    pub fn is_dead(&self) -> bool {
        self.failed.is_some() || self.closed
    }

    fn alloc_id(&mut self) -> MessageId {
        let id = MessageId(self.next_id);
        self.next_id += 1;
        id
    }

    fn check_alive(&self) -> Result<(), SendError> {
        if let Some(e) = &self.failed {
            return Err(SendError::ConnectionFailed(e.clone()));
        }
        if self.closed {
            return Err(SendError::Closed);
        }
        Ok(())
    }

    /// Announces a new outgoing message and returns its id. Its head goes out
    /// with the next `poll_transmit`; write exactly `head.length()` bytes with
    /// [`write`](Self::write), then call [`finish`](Self::finish).
    pub fn start_message(&mut self, head: OutgoingHead) -> Result<MessageId, SendError> {
        self.check_alive()?;
        if head.length == 0 {
            return Err(SendError::EmptyBody);
        }
        let extension = match head.extension {
            Some(ext) if self.sender.has_extension(&ext) => {
                return Err(SendError::DuplicateExtension(ext))
            }
            Some(ext) => ext,
            None => loop {
                let ext = alnum_id(self.next_ext, self.config.id_seed, 6);
                self.next_ext += 1;
                if !self.sender.has_extension(&ext) {
                    break ext;
                }
            },
        };
        let id = MessageId(self.next_id);
        let answering = match &head.reply {
            Reply::To(to) => Some(*to),
            _ => None,
        };
        let (mut info, request_id) = match head.reply {
            Reply::Request => {
                let mid = match head.message_id {
                    Some(mid) => mid,
                    None => {
                        self.next_python_id += 1;
                        alnum_id(
                            self.next_python_id - 1,
                            self.config.id_seed.rotate_left(17),
                            8,
                        )
                    }
                };
                (
                    Info::request(head.route.as_deref().unwrap_or(""), &mid),
                    Some(mid),
                )
            }
            Reply::To(to) => {
                let mid = self
                    .answerable
                    .get(&to)
                    .cloned()
                    .ok_or(SendError::NotAnswerable(to))?;
                (Info::response(head.route.as_deref(), &mid), None)
            }
            Reply::ToPythonId(mid) => (Info::response(head.route.as_deref(), &mid), None),
        };
        for (k, v) in head.headers {
            info.insert(k, v);
        }
        let mission = MissionHead {
            extension: extension.clone(),
            length: head.length,
            info,
        };
        let mut meta = Vec::new();
        packet::encode_mission_meta(&mission, &mut meta);
        if meta.len() > packet::PYTHON_MAX_META {
            return Err(SendError::HeadTooLarge {
                len: meta.len(),
                limit: packet::PYTHON_MAX_META,
            });
        }
        let order = self.config.byte_order;
        let mut bytes = Vec::with_capacity(meta.len() + 32);
        packet::encode_mission_ext(order, &mut bytes);
        bytes.extend_from_slice(&order.write_i32(i32::try_from(meta.len()).unwrap_or(i32::MAX)));
        bytes.extend_from_slice(&meta);
        if let Some(to) = answering {
            self.answerable.remove(&to);
        }
        if let Some(mid) = request_id {
            self.pending.insert(mid.clone(), id);
            self.pending_by_id.insert(id, mid);
        }
        self.next_id += 1;
        self.sender.start(id, extension, head.length, bytes);
        Ok(id)
    }

    /// Queues body bytes of an outgoing message and returns how many were
    /// taken: fewer than `data.len()` when `Config::max_send_buffer` is full
    /// (call [`poll_transmit`](Self::poll_transmit), then write the rest).
    /// Writing past the announced length is an error and takes nothing.
    pub fn write(&mut self, id: MessageId, data: &[u8]) -> Result<usize, SendError> {
        self.check_alive()?;
        self.sender.write(id, data)
    }

    /// Declares the body of an outgoing message complete. Python has no end
    /// packet (a message ends when its announced length arrived), so this
    /// only checks that exactly the announced length was written.
    pub fn finish(&mut self, id: MessageId) -> Result<(), SendError> {
        self.check_alive()?;
        if self.sender.finish(id)? {
            self.events.push_back(Event::SendComplete { id });
        }
        Ok(())
    }

    /// Cancels a message in progress.
    ///
    /// Outgoing: its remaining chunks are dropped and a cancel packet is
    /// queued (nothing at all is sent if its head had not gone out yet).
    /// Incoming: its further data is discarded locally; Python 0.1.3 has no
    /// way to ask the sender to stop, so nothing is sent.
    pub fn cancel(&mut self, id: MessageId) -> Result<(), SendError> {
        self.check_alive()?;
        if let Some(msg) = self.incoming.remove(&id) {
            self.incoming_ext.remove(&msg.extension);
            self.mark_ended(msg.extension);
            self.forget_answerable(id);
            return Ok(());
        }
        self.sender.cancel(id)?;
        self.forget_request(id);
        Ok(())
    }

    /// Stops waiting for the response to request `id` (e.g. after a timeout):
    /// a late response is then reported with `in_reply_to: None`.
    /// Returns whether a response was still expected.
    pub fn forget_request(&mut self, id: MessageId) -> bool {
        match self.pending_by_id.remove(&id) {
            Some(mid) => {
                self.pending.remove(&mid);
                true
            }
            None => false,
        }
    }

    /// The Python `message_id` of our pending request `id`.
    pub fn request_python_id(&self, id: MessageId) -> Option<&str> {
        self.pending_by_id.get(&id).map(String::as_str)
    }

    /// Appends the next packet to send, if any, to `out` and returns its
    /// length (0: nothing to send). Call until it returns 0, then write `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        if self.is_dead() {
            return 0;
        }
        let t = self.sender.poll_transmit(out);
        if t.bytes > 0 {
            self.stats.packets_sent += 1;
        }
        if let Some(id) = t.completed {
            self.events.push_back(Event::SendComplete { id });
        }
        t.bytes
    }

    /// Whether `poll_transmit` has something to send.
    pub fn wants_transmit(&self) -> bool {
        !self.is_dead() && self.sender.wants_transmit()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Feeds bytes received from the peer, split anywhere. Malformed packets
    /// are skipped and reported as [`Event::ProtocolError`]; a fatal error
    /// (lost framing) fails every message in flight, is reported as
    /// [`Event::ConnectionFailed`] and returned, now and on every later call.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut input = data;
        while !input.is_empty() {
            match self.decoder.decode(&mut input) {
                Ok(Some(p)) => {
                    self.stats.packets_received += 1;
                    self.on_packet(p);
                }
                Ok(None) => break,
                Err(e) if e.is_fatal() => {
                    self.fail(e.clone());
                    return Err(e);
                }
                Err(e) => {
                    self.stats.protocol_errors += 1;
                    self.events.push_back(Event::ProtocolError(e));
                }
            }
        }
        Ok(())
    }

    /// The transport closed: every message in flight fails with
    /// [`MessageError::Closed`] and nothing more is sent.
    pub fn handle_close(&mut self) {
        if self.is_dead() {
            return;
        }
        self.closed = true;
        self.abort_all(&MessageError::Closed);
    }

    fn fail(&mut self, e: DecodeError) {
        self.failed = Some(e.clone());
        self.abort_all(&MessageError::Connection(e.clone()));
        self.events.push_back(Event::ConnectionFailed(e));
    }

    fn abort_all(&mut self, error: &MessageError) {
        let mut ids: Vec<MessageId> = self.incoming.drain().map(|(id, _)| id).collect();
        self.incoming_ext.clear();
        self.early.clear();
        self.early_bytes = 0;
        ids.extend(self.sender.clear());
        ids.sort_unstable();
        for id in ids {
            self.events.push_back(Event::MessageFailed {
                id,
                error: error.clone(),
            });
        }
    }

    fn on_packet(&mut self, packet: Packet) {
        match packet {
            Packet::Mission(head) => self.on_mission(head),
            Packet::Data { extension, payload } => self.on_data(&extension, payload),
            Packet::Cancel { extension } => match self.incoming_ext.remove(&extension) {
                Some(id) => {
                    self.incoming.remove(&id);
                    self.mark_ended(extension);
                    self.forget_answerable(id);
                    self.events.push_back(Event::CancelledByPeer { id });
                }
                None => self.stats.ignored_cancels += 1,
            },
        }
    }

    fn on_mission(&mut self, mission: MissionHead) {
        let MissionHead {
            extension,
            length,
            info,
        } = mission;
        let is_response = info.is_response();
        let message_id = info.message_id().map(str::to_owned);
        let in_reply_to = match (&message_id, is_response) {
            (Some(mid), true) => self.pending.remove(mid),
            _ => None,
        };
        if let Some(req) = in_reply_to {
            self.pending_by_id.remove(&req);
        }
        let head = IncomingHead {
            route: info.route().map(str::to_owned),
            message_id,
            is_response,
            in_reply_to,
            length,
            extension,
            info,
        };
        let limits = self.config.limits;
        let reject = if let Some(old) = self.incoming_ext.remove(&head.extension) {
            self.incoming.remove(&old);
            let error = MessageError::DuplicateMission {
                extension: head.extension.clone(),
            };
            self.events.push_back(Event::MessageFailed {
                id: old,
                error: error.clone(),
            });
            Some(error)
        } else if length > limits.max_message_len {
            Some(MessageError::TooLarge {
                declared: length,
                limit: limits.max_message_len,
            })
        } else if length > 0 && self.incoming.len() >= limits.max_incoming_messages {
            Some(MessageError::TooManyIncoming {
                limit: limits.max_incoming_messages,
            })
        } else {
            None
        };
        if let Some(error) = reject {
            self.drop_early(&head.extension);
            self.mark_ended(head.extension.clone());
            self.events
                .push_back(Event::MessageRejected { head, error });
            return;
        }
        self.ended.retain(|e| *e != head.extension);
        let id = self.alloc_id();
        if !head.is_response {
            if let Some(mid) = &head.message_id {
                self.remember_answerable(id, mid.clone());
            }
        }
        if length == 0 {
            // Python never completes an empty message; we deliver it.
            self.drop_early(&head.extension);
            self.events.push_back(Event::MessageStarted { id, head });
            self.events.push_back(Event::MessageFinished { id });
            return;
        }
        self.incoming_ext.insert(head.extension.clone(), id);
        self.incoming.insert(
            id,
            InMsg {
                extension: head.extension.clone(),
                length,
                received: 0,
            },
        );
        let extension = head.extension.clone();
        self.events.push_back(Event::MessageStarted { id, head });
        self.replay_early(&extension);
    }

    fn on_data(&mut self, extension: &str, payload: Vec<u8>) {
        let Some(&id) = self.incoming_ext.get(extension) else {
            if self.ended.iter().any(|e| e == extension) {
                // Rejected, cancelled or finished: Python ignores it too.
                self.stats.ignored_data_packets += 1;
            } else {
                self.keep_early(extension, payload);
            }
            return;
        };
        let Some(msg) = self.incoming.get_mut(&id) else {
            self.incoming_ext.remove(extension);
            self.stats.ignored_data_packets += 1;
            return;
        };
        if payload.is_empty() {
            return;
        }
        let received = msg.received + payload.len() as u64;
        if received > msg.length {
            let error = MessageError::Overflow {
                declared: msg.length,
                received,
            };
            self.incoming.remove(&id);
            self.incoming_ext.remove(extension);
            self.mark_ended(extension.to_owned());
            self.events.push_back(Event::MessageFailed { id, error });
            return;
        }
        msg.received = received;
        let done = received == msg.length;
        self.events.push_back(Event::Data { id, data: payload });
        if done {
            self.incoming.remove(&id);
            self.incoming_ext.remove(extension);
            self.mark_ended(extension.to_owned());
            self.events.push_back(Event::MessageFinished { id });
        }
    }

    fn mark_ended(&mut self, extension: String) {
        if self.ended.len() >= ENDED_MEMORY {
            self.ended.pop_front();
        }
        self.ended.push_back(extension);
    }

    /// Keeps data of a mission not announced yet, within `max_early_data`.
    fn keep_early(&mut self, extension: &str, payload: Vec<u8>) {
        let max = self.config.limits.max_early_data;
        if payload.len() > max {
            self.stats.ignored_data_packets += 1;
            return;
        }
        self.early_bytes += payload.len();
        self.early.push_back((extension.to_owned(), payload));
        while self.early_bytes > max {
            match self.early.pop_front() {
                Some((_, old)) => {
                    self.early_bytes -= old.len();
                    self.stats.ignored_data_packets += 1;
                }
                None => break,
            }
        }
    }

    fn take_early(&mut self, extension: &str) -> Vec<Vec<u8>> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.early.len());
        for (ext, data) in self.early.drain(..) {
            if ext == extension {
                self.early_bytes -= data.len();
                taken.push(data);
            } else {
                kept.push_back((ext, data));
            }
        }
        self.early = kept;
        taken
    }

    fn drop_early(&mut self, extension: &str) {
        let dropped = self.take_early(extension).len();
        self.stats.ignored_data_packets += dropped as u64;
    }

    /// Delivers data that arrived before the head of `extension`.
    fn replay_early(&mut self, extension: &str) {
        if self.early.is_empty() {
            return;
        }
        for data in self.take_early(extension) {
            self.stats.early_data_packets += 1;
            self.on_data(extension, data);
        }
    }

    fn remember_answerable(&mut self, id: MessageId, message_id: String) {
        let max = self.config.max_answerable;
        while self.answerable.len() >= max.max(1) {
            match self.answerable_order.pop_front() {
                Some(old) => {
                    self.answerable.remove(&old);
                }
                None => break,
            }
        }
        // Drop ids already answered so the order queue stays bounded.
        if self.answerable_order.len() >= 2 * max.max(1) {
            let live = &self.answerable;
            self.answerable_order.retain(|i| live.contains_key(i));
        }
        self.answerable.insert(id, message_id);
        self.answerable_order.push_back(id);
    }

    fn forget_answerable(&mut self, id: MessageId) {
        self.answerable.remove(&id);
    }
}
