//! [`LegacyWire`]: its state, construction and close; the codec's events
//! ([`incoming`]), messages handed to the codec ([`outgoing`]) and what the driver
//! calls ([`api`]) live in the submodules.

mod api;
mod incoming;
mod outgoing;

use super::*;

#[derive(Debug)]
struct InState {
    legacy: LId,
    chunks: VecDeque<Bytes>,
    /// Small data packets coalesced here, so that a peer sending one-byte packets
    /// cannot make bookkeeping outgrow the bytes counted against the limit.
    tail: Vec<u8>,
    buffered: usize,
    ended: bool,
}

#[derive(Debug)]
enum OutState {
    /// Started without a length: the body is collected until `finish`.
    Unsized {
        head: MessageHead,
        chunks: Vec<Bytes>,
        len: usize,
    },
    /// Announced to the codec.
    Started {
        legacy: LId,
        total: u64,
        written: u64,
        pending: VecDeque<Bytes>,
        pending_bytes: usize,
        finish_pending: bool,
        finished: bool,
        blocked: bool,
    },
}

/// A [`Wire`] speaking the Python Netcore 0.1.3 wire format. See the
/// [module docs](crate::legacy) for the mapping.
///
/// ```
/// use netcore_runtime::legacy::{LegacyOptions, LegacyWire};
/// use netcore_runtime::legacy::Wire;
/// use netcore_core::{Event, Instant, MessageHead};
/// use bytes::Bytes;
///
/// let mut wire = LegacyWire::new(&LegacyOptions::default());
/// assert!(matches!(wire.poll_event(), Some(Event::Connected(_))));
/// let id = wire.send(MessageHead::to_route("echo"), Bytes::from_static(b"hi")).unwrap();
/// let mut out = Vec::new();
/// wire.poll_transmit(Instant::ZERO, &mut out, 64 * 1024);
/// assert!(out.starts_with(b"\x13\0\0\0{\"type\": \"mission\"}"));
/// assert!(out.ends_with(b"hi"));
/// assert_eq!(wire.poll_event(), Some(Event::Sent { id }));
/// ```
#[derive(Debug)]
pub struct LegacyWire {
    conn: LegacyConnection,
    options: LegacyOptions,
    monitor: LegacyMonitor,
    events: VecDeque<Event>,
    now: Instant,
    next_core: u64,
    /// Incoming: legacy id → core id while the codec may still report on it.
    in_map: HashMap<LId, u64>,
    incoming: HashMap<u64, InState>,
    buffered: usize,
    /// Incoming requests we may answer: core id → legacy id, oldest first.
    answerable: HashMap<u64, LId>,
    answerable_order: VecDeque<u64>,
    /// Outgoing: core id → state; legacy id → core id while in the codec.
    outgoing: HashMap<u64, OutState>,
    out_map: HashMap<LId, u64>,
    /// Our requests awaiting a response: legacy id → core id, oldest first.
    requests: HashMap<LId, u64>,
    requests_order: VecDeque<LId>,
    /// Codec messages sent on our own (answers to refused requests).
    internal: HashSet<LId>,
    closing_since: Option<Instant>,
    closed: bool,
}

static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let c = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    (t ^ c ^ u64::from(std::process::id()).rotate_left(32)).wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

impl LegacyWire {
    /// A connection with nothing in flight; `Connected` is its first event.
    pub fn new(options: &LegacyOptions) -> LegacyWire {
        let mut codec = options.codec.clone();
        if codec.id_seed == 0 {
            codec.id_seed = random_seed();
        }
        let params = PeerParams {
            version: 0,
            session: 0,
            max_frame: codec.chunk_size.clamp(1, netcore_legacy::CHUNK_SIZE) as u64,
            max_message: None,
            max_metadata: netcore_legacy::PYTHON_MAX_META as u64,
            max_incoming: u64::from(u32::MAX),
        };
        let mut events = VecDeque::new();
        events.push_back(Event::Connected(params));
        LegacyWire {
            conn: LegacyConnection::new(codec),
            options: options.clone(),
            monitor: LegacyMonitor::default(),
            events,
            now: Instant::ZERO,
            next_core: 1,
            in_map: HashMap::new(),
            incoming: HashMap::new(),
            buffered: 0,
            answerable: HashMap::new(),
            answerable_order: VecDeque::new(),
            outgoing: HashMap::new(),
            out_map: HashMap::new(),
            requests: HashMap::new(),
            requests_order: VecDeque::new(),
            internal: HashSet::new(),
            closing_since: None,
            closed: false,
        }
    }

    /// A handle on this connection's counters and errors, usable after the wire moved
    /// into a [`Pipe`].
    pub fn monitor(&self) -> LegacyMonitor {
        self.monitor.clone()
    }

    fn alloc(&mut self) -> u64 {
        let id = self.next_core;
        self.next_core += 1;
        id
    }

    fn sync_stats(&self) {
        let codec = self.conn.stats();
        let buffered = self.buffered as u64;
        let input = self.conn.buffered_input() as u64;
        self.monitor.update(|s| {
            s.codec = codec;
            s.buffered_incoming = buffered;
            s.peak_buffered_incoming = s.peak_buffered_incoming.max(buffered);
            s.codec_buffered_input = input;
        });
    }

    // ----- incoming ------------------------------------------------------------------

    /// Translates everything the codec reported.
    fn drain_codec(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            self.on_codec_event(ev);
        }
    }
    fn in_flight(&self) -> bool {
        !self.outgoing.is_empty() || self.incoming.values().any(|s| !s.ended)
    }

    fn maybe_finish_close(&mut self) {
        if self.closed || self.closing_since.is_none() {
            return;
        }
        // As on the native protocol, replies the application still owes do not hold the
        // close open: an Endpoint finishes its handlers before closing.
        if !self.in_flight() && !self.conn.wants_transmit() {
            self.enter_closed(None);
        }
    }

    fn enter_closed(&mut self, error: Option<ConnectionError>) {
        if self.closed {
            return;
        }
        self.closed = true;
        // Everything in flight fails with this connection's error, below; the codec's
        // own failure events then find no mapping and are dropped.
        self.in_map.clear();
        self.out_map.clear();
        self.conn.handle_close();
        self.drain_codec();
        let msg_err = MessageError::ConnectionClosed(
            error.clone().unwrap_or(ConnectionError::TransportClosed),
        );
        let mut outs: Vec<u64> = self.outgoing.drain().map(|(k, _)| k).collect();
        outs.sort_unstable();
        for id in outs {
            self.events.push_back(Event::Stopped {
                id: MessageId(id),
                error: msg_err.clone(),
            });
        }
        let mut ins: Vec<u64> = self
            .incoming
            .iter()
            .filter(|(_, s)| !s.ended)
            .map(|(k, _)| *k)
            .collect();
        ins.sort_unstable();
        for id in ins {
            self.drop_incoming(id);
            self.events.push_back(Event::Reset {
                id: MessageId(id),
                error: msg_err.clone(),
            });
        }
        self.requests.clear();
        self.answerable.clear();
        self.events.push_back(Event::Closed { error });
        self.sync_stats();
    }
}

/// Whether a message of ours waits for a response: not a response itself, and not
/// one-way (the app layer's `netcore-oneway` header). Python answers every message its
/// handler returns something for; answers to one-way messages are then dropped here
/// instead of reaching the application as stray replies.
fn head_is_request(head: &MessageHead) -> bool {
    match Headers::decode(&head.metadata) {
        Ok(h) => h.get(HEADER_RESPOND_TO).is_none() && h.get(APP_ONE_WAY_HEADER).is_none(),
        Err(_) => true,
    }
}

/// An `info` value as a header value: strings as themselves, anything else as JSON.
fn header_value(v: &Value) -> Bytes {
    match v {
        Value::String(s) => Bytes::from(s.clone().into_bytes()),
        other => Bytes::from(netcore_legacy::json::dumps(other).into_bytes()),
    }
}

fn map_decode_error(e: &DecodeError) -> ConnectionError {
    let v = match e {
        DecodeError::LengthTooLarge { len, limit, .. } => ProtocolViolation::Limit(LimitExceeded {
            kind: LimitKind::FrameSize,
            limit: *limit as u64,
            actual: u64::from(*len),
        }),
        DecodeError::NegativeLength { .. } => ProtocolViolation::Frame(FrameError::Malformed {
            kind: LSO,
            what: "negative LSO length: not a Netcore 0.1.3 peer, or the other byte order",
        }),
        _ => ProtocolViolation::Frame(FrameError::Malformed {
            kind: LSO,
            what: "undecodable LSO packet",
        }),
    };
    ConnectionError::Protocol(v)
}

fn map_message_error(e: &LMessageError) -> MessageError {
    match e {
        LMessageError::TooLarge { declared, limit } => MessageError::Limit(LimitExceeded {
            kind: LimitKind::MessageSize,
            limit: *limit,
            actual: *declared,
        }),
        LMessageError::TooManyIncoming { limit } => MessageError::Limit(LimitExceeded {
            kind: LimitKind::IncomingMessages,
            limit: *limit as u64,
            actual: *limit as u64 + 1,
        }),
        LMessageError::Overflow { declared, received } => MessageError::Limit(LimitExceeded {
            kind: LimitKind::MessageSize,
            limit: *declared,
            actual: *received,
        }),
        LMessageError::Connection(d) => MessageError::ConnectionClosed(map_decode_error(d)),
        LMessageError::Closed => MessageError::ConnectionClosed(ConnectionError::TransportClosed),
        _ => MessageError::CancelledByPeer(ErrorCode::PROTOCOL_ERROR),
    }
}

fn map_send_start(e: SendError) -> StartError {
    match e {
        SendError::HeadTooLarge { len, limit } => StartError::MetadataTooLarge {
            len: len as u64,
            max: limit as u64,
        },
        _ => StartError::Closing,
    }
}
