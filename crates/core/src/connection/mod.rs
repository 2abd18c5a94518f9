//! The sans-IO connection: one side of a netcore connection as a state machine
//! ([`Connection`], whose docs give the inputs, outputs and call order). Submodules:
//! `io` (bytes in and out), `send`, `recv`, `recovery` (serial loss), `idmap`, `routes`.

mod idmap;
mod io;
mod recovery;
mod recv;
mod routes;
mod send;

use crate::codes::{ErrorCode, FrameKind};
use crate::config::Config;
use crate::error::{ConnectionError, HandshakeError, MessageError, ProtocolViolation};
use crate::event::{Event, PeerParams};
use crate::frame::{Capabilities, ErrorFrame, Frame, GoAway, Hello, VERSION};
use crate::link::{LinkProfile, LinkReader, LinkStats, LinkWriter};
use crate::time::Instant;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bytes::Bytes;
use core::time::Duration;

use recovery::History;
use recv::RecvState;
use send::SendState;

/// Lowest `max_frame` a peer may announce: a START head must fit.
const MIN_PEER_FRAME: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Open,
    Closed,
}

/// Counters for diagnostics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Link-layer counters.
    pub link: LinkStats,
    /// Body bytes buffered for incoming messages right now (bounded by the connection
    /// window).
    pub buffered_incoming: u64,
    /// Body bytes queued in outgoing messages right now.
    pub queued_outgoing: u64,
    /// Received bytes held waiting for the rest of their frame.
    pub buffered_input: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Link frames the peer reported lost (serial).
    pub frames_nacked: u64,
    /// Smoothed round-trip time from keepalive pings, in microseconds.
    pub rtt_micros: u64,
}

/// The sans-IO connection: one side of a netcore connection as a state machine.
///
/// # Inputs, outputs and call order
///
/// The driver owns the transport and the clock. Its loop, modelled on quinn-proto:
///
/// 1. bytes from the transport → [`Connection::handle_input`] (or, zero-copy on
///    `tcp`: read into [`input_buffer`](Connection::input_buffer), then
///    [`handle_received`](Connection::handle_received));
///    transport EOF → [`Connection::handle_transport_closed`];
/// 2. the deadline from [`Connection::poll_timeout`] passed → [`Connection::handle_timeout`];
/// 3. application calls: [`start`](Connection::start), [`write`](Connection::write),
///    [`finish`](Connection::finish), [`send`](Connection::send),
///    [`cancel`](Connection::cancel), [`read`](Connection::read),
///    [`stop`](Connection::stop), [`close`](Connection::close),
///    [`abort`](Connection::abort); and from the driver,
///    [`set_whole_delivery`](Connection::set_whole_delivery) (small messages handed
///    over in one event, within a budget of its queue) and
///    [`set_sent_ranges`](Connection::set_sent_ranges) (sent messages reported by the
///    range);
/// 4. then drain the outputs: [`poll_event`](Connection::poll_event) until `None`,
///    [`poll_transmit`](Connection::poll_transmit) into a caller-owned buffer until it
///    returns 0 (write those bytes to the transport; or
///    [`poll_transmit_vectored`](Connection::poll_transmit_vectored) for a `writev`
///    with bodies by reference), and re-arm the timer from
///    [`poll_timeout`](Connection::poll_timeout).
///
/// Time is passed in as [`Instant`]; nothing here reads a clock, allocates past the
/// configured limits on peer input, or panics on peer input.
///
/// ```
/// use netcore_core::{Config, Connection, Event, Instant, MessageHead};
/// use bytes::Bytes;
///
/// let now = Instant::ZERO;
/// let mut client = Connection::new(Config::tcp(), now);
/// let mut server = Connection::new(Config::tcp(), now);
/// let id = client.send(MessageHead::to_route("echo"), Bytes::from_static(b"hi")).unwrap();
///
/// // Shuttle bytes until both sides are quiet.
/// let mut buf = Vec::new();
/// for _ in 0..4 {
///     buf.clear();
///     client.poll_transmit(now, &mut buf, 64 * 1024);
///     server.handle_input(now, &buf);
///     buf.clear();
///     server.poll_transmit(now, &mut buf, 64 * 1024);
///     client.handle_input(now, &buf);
/// }
/// let mut got = None;
/// while let Some(ev) = server.poll_event() {
///     if let Event::Incoming { id, head } = ev {
///         assert_eq!(head.route.as_deref(), Some("echo"));
///         got = server.read(id, usize::MAX).unwrap();
///     }
/// }
/// assert_eq!(got.as_deref(), Some(&b"hi"[..]));
/// # let _ = id;
/// ```
#[derive(Debug)]
pub struct Connection {
    config: Config,
    state: State,
    peer: Option<PeerParams>,
    peer_caps: Capabilities,
    writer: LinkWriter,
    reader: LinkReader,
    events: VecDeque<Event>,
    /// Control frames, sent before anything else.
    control: VecDeque<Frame>,
    send: SendState,
    recv: RecvState,
    history: Option<History>,
    now: Instant,
    created: Instant,
    last_received: Instant,
    last_ping_sent: Option<Instant>,
    ping_outstanding: Option<(u64, Instant)>,
    ping_nonce: u64,
    rtt: Duration,
    /// Lowest RTT sample: the path's delay without queueing, which window growth
    /// aims at (growing on the smoothed RTT would feed on the queue it creates).
    min_rtt: Option<Duration>,
    /// Serial: the peer has confirmed our HELLO.
    hello_confirmed: bool,
    last_hello_sent: Option<Instant>,
    /// Serial: when the last message frame went out, for the tail-loss probe.
    tail_probe_at: Option<Instant>,
    goaway_sent: Option<u64>,
    goaway_received: Option<u64>,
    close_started: Option<Instant>,
    /// Serial: a graceful close is complete here but lingers until this instant, still
    /// answering the peer (its tail probe, late CANCELs, NACKs), since nothing
    /// acknowledges our last frames.
    close_linger: Option<Instant>,
    frames_sent: u64,
    frames_nacked: u64,
    /// During [`poll_transmit_vectored`](Self::poll_transmit_vectored): large bodies
    /// recorded instead of copied, as `(offset in the output, body)`, and their length.
    splices: Option<(Vec<(usize, Bytes)>, usize)>,
    /// While `poll_transmit` fills the rest of its batch: the largest message frame
    /// (header included) that still fits.
    frame_room: usize,
}

impl Connection {
    /// A new connection; its HELLO is queued for the first `poll_transmit`.
    pub fn new(config: Config, now: Instant) -> Connection {
        let serial = config.profile == LinkProfile::Serial;
        let mut conn = Connection {
            writer: LinkWriter::new(config.profile),
            reader: LinkReader::new(config.profile, config.max_frame),
            events: VecDeque::new(),
            control: VecDeque::new(),
            send: SendState::new(),
            recv: RecvState::new(&config),
            history: serial.then(|| History::new(config.link_history)),
            state: State::Handshaking,
            peer: None,
            peer_caps: Capabilities::default(),
            now,
            created: now,
            last_received: now,
            last_ping_sent: None,
            ping_outstanding: None,
            ping_nonce: 0,
            rtt: Duration::from_millis(100),
            min_rtt: None,
            hello_confirmed: !serial,
            last_hello_sent: None,
            tail_probe_at: None,
            goaway_sent: None,
            goaway_received: None,
            close_started: None,
            close_linger: None,
            frames_sent: 0,
            frames_nacked: 0,
            splices: None,
            frame_room: usize::MAX,
            config,
        };
        conn.queue_hello(false);
        conn
    }

    /// The configuration this side runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the peer announced, once the handshake is done.
    pub fn peer(&self) -> Option<&PeerParams> {
        self.peer.as_ref()
    }

    /// Whether the handshake has completed and the connection is not closed.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether the connection has ended (there may still be a final frame to transmit;
    /// see [`is_drained`](Self::is_drained)).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Closed and nothing left to transmit: the driver may drop the transport.
    pub fn is_drained(&self) -> bool {
        self.is_closed() && self.control.is_empty()
    }

    /// Whether a graceful close has begun on either side.
    pub fn is_closing(&self) -> bool {
        self.goaway_sent.is_some() || self.goaway_received.is_some()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            link: self.reader.stats,
            buffered_incoming: self.recv.buffered,
            queued_outgoing: self.send.queued_total(),
            buffered_input: self.reader.buffered() as u64,
            frames_sent: self.frames_sent,
            frames_nacked: self.frames_nacked,
            rtt_micros: self.rtt.as_micros() as u64,
        }
    }

    /// Smoothed round-trip time estimate.
    pub fn rtt(&self) -> Duration {
        self.rtt
    }

    /// Next event for the driver, if any.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- input ---------------------------------------------------------------------

    fn handle_frame(&mut self, frame: Frame) -> Result<(), ProtocolViolation> {
        match frame {
            Frame::Hello(h) => self.handle_hello(h),
            Frame::Start(s) => self.handle_start(s),
            Frame::Data(d) => self.handle_data(d),
            Frame::Cancel(c) => {
                self.handle_cancel(c);
                Ok(())
            }
            Frame::MaxData(max) => {
                self.handle_max_data(max);
                Ok(())
            }
            Frame::MaxMessageData { id, max } => {
                self.handle_max_message_data(id, max);
                Ok(())
            }
            Frame::MaxMessages(max) => {
                self.handle_max_messages(max);
                Ok(())
            }
            Frame::Ping(v) => {
                self.control.push_back(Frame::Pong(v));
                Ok(())
            }
            Frame::Pong(v) => {
                if let Some((nonce, sent)) = self.ping_outstanding {
                    if nonce == v {
                        let sample = self.now.saturating_since(sent);
                        self.rtt = (self.rtt * 7 + sample) / 8;
                        self.min_rtt = Some(self.min_rtt.map_or(sample, |m| m.min(sample)));
                        self.ping_outstanding = None;
                    }
                }
                Ok(())
            }
            Frame::GoAway(g) => {
                self.handle_goaway(g);
                Ok(())
            }
            Frame::Error(e) => {
                let reason = String::from_utf8_lossy(&e.reason).into_owned();
                self.enter_closed(Some(ConnectionError::PeerError {
                    code: e.code,
                    reason,
                }));
                Ok(())
            }
            Frame::Nack(n) => {
                self.handle_nack(n);
                Ok(())
            }
            // Unknown kinds are skipped: that is how the protocol grows.
            Frame::Unknown { .. } => Ok(()),
        }
    }

    fn handle_hello(&mut self, h: Hello) -> Result<(), ProtocolViolation> {
        if self.state == State::Open {
            let peer = self.peer.as_ref().map(|p| p.session);
            if self.history.is_none() {
                return Err(ProtocolViolation::UnexpectedFrame {
                    kind: FrameKind::HELLO,
                    why: "second HELLO on a reliable link",
                });
            }
            if peer != Some(h.session) {
                self.enter_closed(Some(ConnectionError::PeerRestarted));
                return Ok(());
            }
            if h.seen_peer {
                self.hello_confirmed = true;
            } else {
                // The peer lost our HELLO; answer with one saying we have its own.
                self.queue_hello(true);
            }
            return Ok(());
        }
        let ours = self.config.profile.code();
        let err = if h.version != VERSION {
            Some(HandshakeError::VersionMismatch {
                ours: VERSION,
                theirs: h.version,
            })
        } else if h.profile != ours {
            Some(HandshakeError::ProfileMismatch {
                ours,
                theirs: h.profile,
            })
        } else if h.max_frame < MIN_PEER_FRAME {
            Some(HandshakeError::BadLimits(
                "announced max_frame below 64 bytes",
            ))
        } else if h.max_incoming == 0 {
            Some(HandshakeError::BadLimits("accepts no incoming messages"))
        } else {
            None
        };
        if let Some(e) = err {
            self.fail(ConnectionError::Handshake(e));
            return Ok(());
        }
        self.peer_caps = h.capabilities;
        if h.seen_peer {
            self.hello_confirmed = true;
        }
        let params = PeerParams {
            version: h.version,
            session: h.session,
            max_frame: h.max_frame,
            max_message: (h.max_message != 0).then_some(h.max_message),
            max_metadata: h.max_metadata,
            max_incoming: h.max_incoming,
        };
        self.send.on_handshake(&h);
        self.peer = Some(params.clone());
        self.state = State::Open;
        if self.history.is_some() && !self.hello_confirmed {
            // Tell the peer right away that its HELLO arrived.
            self.queue_hello(true);
        }
        self.events.push_back(Event::Connected(params));
        // An early RTT sample helps the window tuning.
        self.queue_ping();
        self.reschedule_all();
        Ok(())
    }

    fn handle_goaway(&mut self, g: GoAway) {
        if self.goaway_received.is_some() {
            return;
        }
        self.goaway_received = Some(g.last_id);
        self.close_started.get_or_insert(self.now);
        self.refuse_beyond(g.last_id);
        self.events.push_back(Event::GoingAway {
            code: g.code,
            reason: String::from_utf8_lossy(&g.reason).into_owned(),
        });
        self.maybe_finish_close();
    }

    /// Reports that the transport ended (EOF or error).
    pub fn handle_transport_closed(&mut self, now: Instant) {
        self.now = now;
        if self.state == State::Closed {
            return;
        }
        if self.goaway_sent.is_some() && self.goaway_received.is_some() && self.is_idle() {
            self.enter_closed(None);
        } else {
            self.enter_closed(Some(ConnectionError::TransportClosed));
        }
    }

    // ----- timers --------------------------------------------------------------------

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if self.state == State::Handshaking {
            consider(self.created + self.config.handshake_timeout);
        } else {
            consider(self.last_received + self.config.idle_timeout);
            if let Some(k) = self.config.keepalive {
                consider(self.keepalive_base() + k);
            }
        }
        if !self.hello_confirmed {
            if let Some(t) = self.last_hello_sent {
                consider(t + self.config.hello_retry);
            }
        }
        if let Some(t) = self.tail_probe_at {
            consider(t);
        }
        if let Some(t) = self.close_started {
            consider(t + self.config.drain_timeout);
        }
        if let Some(t) = self.close_linger {
            consider(t);
        }
        next
    }

    fn keepalive_base(&self) -> Instant {
        match self.last_ping_sent {
            Some(p) => p.max(self.last_received),
            None => self.last_received,
        }
    }

    /// Runs whatever timers have expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        match self.state {
            State::Closed => return,
            State::Handshaking => {
                if now >= self.created + self.config.handshake_timeout {
                    return self.fail(ConnectionError::Handshake(HandshakeError::Timeout));
                }
            }
            State::Open => {
                if now >= self.last_received + self.config.idle_timeout {
                    self.enter_closed(Some(ConnectionError::TimedOut));
                    return;
                }
                if let Some(k) = self.config.keepalive {
                    if now >= self.keepalive_base() + k {
                        self.queue_ping();
                    }
                }
            }
        }
        if let Some(t) = self.close_started {
            if now >= t + self.config.drain_timeout {
                return self.fail(ConnectionError::DrainTimedOut);
            }
        }
        if let Some(t) = self.close_linger {
            if now >= t {
                self.close_linger = None;
                if self.close_ready() {
                    return self.enter_closed(None);
                }
            }
        }
        if !self.hello_confirmed {
            if let Some(t) = self.last_hello_sent {
                if now >= t + self.config.hello_retry {
                    let seen = self.peer.is_some();
                    self.queue_hello(seen);
                }
            }
        }
        if let Some(t) = self.tail_probe_at {
            if now >= t {
                self.tail_probe_at = None;
                self.queue_ping();
            }
        }
    }

    fn queue_ping(&mut self) {
        self.ping_nonce = self.ping_nonce.wrapping_add(1);
        self.last_ping_sent = Some(self.now);
        if self.ping_outstanding.is_none() {
            self.ping_outstanding = Some((self.ping_nonce, self.now));
            self.control.push_back(Frame::Ping(self.ping_nonce));
        } else if let Some((nonce, _)) = self.ping_outstanding {
            // Probe again with the outstanding nonce so the RTT sample stays honest.
            self.control.push_back(Frame::Ping(nonce));
        }
    }

    fn queue_hello(&mut self, seen_peer: bool) {
        let c = &self.config;
        let mut caps = Capabilities::ROUTE_INTERNING;
        if c.profile == LinkProfile::Serial {
            caps = caps | Capabilities::LINK_RECOVERY;
        }
        self.last_hello_sent = Some(self.now);
        self.control.push_back(Frame::Hello(Hello {
            version: VERSION,
            profile: c.profile.code(),
            seen_peer,
            session: c.session,
            capabilities: caps,
            max_frame: c.max_frame as u64,
            max_message: c.max_message.unwrap_or(0),
            max_metadata: c.max_metadata as u64,
            max_incoming: c.max_incoming,
            max_routes: c.max_routes,
            message_window: c.message_window,
            connection_window: c.connection_window,
        }));
    }

    // ----- closing -------------------------------------------------------------------

    /// Begins a graceful close: sends GOAWAY, refuses new requests from the peer,
    /// lets messages in flight (and replies to them) finish. The connection closes
    /// when both sides have sent GOAWAY and nothing is in flight, or fails with
    /// `DrainTimedOut` after the configured drain timeout.
    pub fn close(&mut self, code: ErrorCode, reason: &str) {
        if self.state == State::Closed || self.goaway_sent.is_some() {
            return;
        }
        let last_id = self.recv.last_started();
        self.goaway_sent = Some(last_id);
        self.close_started.get_or_insert(self.now);
        self.control.push_back(Frame::GoAway(GoAway {
            last_id,
            code,
            reason: Bytes::copy_from_slice(reason.as_bytes()),
        }));
        self.maybe_finish_close();
    }

    /// Ends the connection at once with an ERROR frame; everything in flight fails.
    pub fn abort(&mut self, code: ErrorCode, reason: &str) {
        if self.state == State::Closed {
            return;
        }
        self.control.push_back(Frame::Error(ErrorFrame {
            code,
            reason: Bytes::copy_from_slice(reason.as_bytes()),
        }));
        self.enter_closed(Some(ConnectionError::LocallyAborted { code }));
    }

    /// Closes because of `err`, telling the peer with an ERROR frame.
    fn fail(&mut self, err: ConnectionError) {
        if self.state == State::Closed {
            return;
        }
        self.control.push_back(Frame::Error(ErrorFrame {
            code: err.code(),
            reason: Bytes::from(err.to_string().into_bytes()),
        }));
        self.enter_closed(Some(err));
    }

    fn is_idle(&self) -> bool {
        self.send.is_idle() && self.recv.is_idle()
    }

    /// Both sides sent GOAWAY and nothing is in flight.
    fn close_ready(&self) -> bool {
        self.state != State::Closed
            && self.goaway_sent.is_some()
            && self.goaway_received.is_some()
            && self.is_idle()
    }

    #[inline]
    pub(crate) fn maybe_finish_close(&mut self) {
        // Runs after every message ends: the usual "no close under way" inline.
        if self.goaway_sent.is_some() {
            self.finish_close_if_ready();
        }
    }

    fn finish_close_if_ready(&mut self) {
        if !self.close_ready() {
            return;
        }
        if self.history.is_some() {
            // Serial: no end-to-end acknowledgement, so our last message frames may
            // still turn out lost (the tail probe finds out) or the peer may still be
            // sending a CANCEL for one of them. Stay open a few round trips to hear
            // of it; then close (in handle_timeout) if still idle.
            if self.close_linger.is_none() {
                let linger = self.tail_probe_delay() * 2 + self.rtt;
                self.close_linger = Some(self.now + linger);
            }
            return;
        }
        self.enter_closed(None);
    }

    fn enter_closed(&mut self, error: Option<ConnectionError>) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        // Only what explains the end still goes out.
        // A HELLO still queued goes too: a peer rejected during the handshake then
        // completes its own and can read the ERROR's reason. After a graceful close a
        // queued CANCEL goes too: it tells the peer that a message it finished sending
        // failed here (serial: a frame of it was lost), which it must not miss.
        let graceful = error.is_none();
        self.control.retain(|f| {
            matches!(f, Frame::Error(_) | Frame::GoAway(_) | Frame::Hello(_))
                || (graceful && matches!(f, Frame::Cancel(_)))
        });
        let msg_err = MessageError::ConnectionClosed(
            error.clone().unwrap_or(ConnectionError::TransportClosed),
        );
        self.send.fail_all(&msg_err, &mut self.events);
        self.recv.fail_all(&msg_err, &mut self.events);
        self.events.push_back(Event::Closed { error });
    }

    // ----- output --------------------------------------------------------------------

    /// The round-trip time the connection window is sized against.
    pub(crate) fn window_rtt(&self) -> Duration {
        // At least the clock's granularity: a sample can round down to zero.
        self.min_rtt
            .unwrap_or(self.rtt)
            .max(Duration::from_micros(1))
    }

    fn tail_probe_delay(&self) -> Duration {
        tail_probe_delay(self.rtt)
    }

    /// Payload size of message frames: ours, capped by the peer's limit.
    pub(crate) fn send_frame_size(&self) -> usize {
        let peer = self.peer.as_ref().map_or(usize::MAX, |p| {
            usize::try_from(p.max_frame).unwrap_or(usize::MAX)
        });
        self.config.send_frame.min(peer).max(16)
    }
}

/// Serial: how long after the last message frame the tail-loss probe goes out.
fn tail_probe_delay(rtt: Duration) -> Duration {
    (rtt * 2).max(Duration::from_millis(20))
}
