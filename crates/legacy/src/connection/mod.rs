//! The message-level state machine of one legacy connection.
//!
//! This module owns [`LegacyConnection`]: mapping Python's string ids (mission
//! `extension`s and `message_id`s) to [`MessageId`]s, matching responses to
//! requests, enforcing [`Limits`](crate::Limits) on incoming messages, and turning packets
//! into [`Event`]s. It does no I/O and reads no clock: the caller feeds
//! received bytes to [`LegacyConnection::handle_input`], writes what
//! [`LegacyConnection::poll_transmit`] produces, and handles
//! [`LegacyConnection::poll_event`]s.

mod recv;

use crate::decoder::PacketDecoder;
use crate::error::{DecodeError, MessageError, SendError};
use crate::event::{Config, Event, MessageId, Stats};
use crate::packet::{self, Info, MissionHead};
use crate::send::{alnum_id, OutgoingHead, Reply, Sender};
use std::collections::{HashMap, VecDeque};

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
        if head.length == 0 && !self.config.allow_empty_bodies {
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
            // A forced message_id reused while pending: the newer request wins.
            if let Some(old) = self.pending.insert(mid.clone(), id) {
                self.pending_by_id.remove(&old);
            }
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
}
