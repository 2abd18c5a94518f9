//! The byte edges of a connection: bytes in (`handle_input`, or read in place through
//! `input_buffer` + `handle_received`), frames parsed and dispatched; frames out
//! (`poll_transmit`, or `poll_transmit_vectored` with large bodies by reference)
//! through the link profile.

use super::recovery::{History, Sent};
use super::tail_probe_delay;
use super::{Connection, State};
use crate::codes::FrameKind;
use crate::error::{ConnectionError, FrameError, HandshakeError, ProtocolViolation};
use crate::frame::{Encode, Frame, RouteField, Start};
use crate::link::{LinkProfile, LinkWriter};
use crate::time::Instant;
use alloc::vec::Vec;
use bytes::Bytes;
use core::time::Duration;

/// Bodies at least this long are spliced, not copied, by `poll_transmit_vectored`:
/// below it a copy is cheaper than one more I/O vector.
const MIN_SPLICE: usize = 2048;

/// A message frame is started in what is left of a transmit `limit` only if at least
/// this much frame payload fits.
const MIN_FRAME_ROOM: usize = 128;

impl Connection {
    /// Feeds bytes received from the transport, in any split.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.now = now;
        if self.state == State::Closed || data.is_empty() {
            return;
        }
        self.reader.push(data);
        self.process_input(now);
    }

    /// On the `tcp` profile, the buffer received bytes are appended to, with room for
    /// at least `spare` more (the room may be larger: a driver can read up to
    /// `capacity() - len()`): a driver can read from the transport straight into it
    /// instead of copying through [`handle_input`](Self::handle_input), then calls
    /// [`handle_received`](Self::handle_received). `None` on the `serial` profile (its
    /// bytes are decoded on the way in) and once the connection is closed.
    ///
    /// ```
    /// use netcore_core::{Config, Connection, Instant};
    ///
    /// let now = Instant::ZERO;
    /// let mut a = Connection::new(Config::tcp(), now);
    /// let mut b = Connection::new(Config::tcp(), now);
    /// let mut hello = Vec::new();
    /// a.poll_transmit(now, &mut hello, 1 << 16);
    /// let buf = b.input_buffer(4096).unwrap();
    /// assert!(buf.capacity() - buf.len() >= 4096);
    /// buf.extend_from_slice(&hello); // a transport read would land here
    /// b.handle_received(now);
    /// assert!(b.is_open());
    /// ```
    pub fn input_buffer(&mut self, spare: usize) -> Option<&mut bytes::BytesMut> {
        if self.state == State::Closed {
            return None;
        }
        self.reader.tcp_buffer(spare)
    }

    /// Processes bytes a driver appended to [`input_buffer`](Self::input_buffer).
    pub fn handle_received(&mut self, now: Instant) {
        self.now = now;
        if self.state == State::Closed {
            return;
        }
        self.process_input(now);
    }

    fn process_input(&mut self, now: Instant) {
        loop {
            if self.state == State::Closed {
                return;
            }
            if self.state == State::Open {
                // The usual frame, read in place: exactly what the general path below
                // does with it, without building a frame (anything unusual, errors
                // included, is left to the general path).
                if let Some((start, body)) = self.reader.next_plain_start() {
                    self.last_received = now;
                    self.hello_confirmed = true;
                    let route = start.route.map(RouteField::Ref);
                    if let Err(v) = self.handle_start_fields(start.head, route, None, body) {
                        return self.fail(ConnectionError::Protocol(v));
                    }
                    continue;
                }
            }
            let frame = match self.reader.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => return self.frame_error(e),
            };
            self.last_received = now;
            if let Some((first, count)) = frame.gap {
                self.queue_nack(first, count);
            }
            let kind = frame.header.kind;
            if kind == FrameKind::START && self.state == State::Open {
                // The most common frame, straight to its handler (no `Frame` built).
                let start = match Start::load_owned(frame.payload) {
                    Ok(s) => s,
                    Err(e) => return self.frame_error(e),
                };
                // Anything but HELLO proves the peer finished its handshake with ours.
                self.hello_confirmed = true;
                if let Err(v) = self.handle_start(start) {
                    return self.fail(ConnectionError::Protocol(v));
                }
                continue;
            }
            let parsed = match Frame::load(kind, frame.payload) {
                Ok(f) => f,
                Err(e) => return self.frame_error(e),
            };
            if self.state == State::Handshaking && !matches!(parsed, Frame::Hello(_)) {
                if self.history.is_some() {
                    // Serial: our HELLO or theirs was lost; wait for the HELLO retry.
                    // A message frame is reported lost so the peer fails what it
                    // carried. Control frames are dropped silently: a NACK would make
                    // the peer repeat them (a CANCEL, a NACK), and each repeat would be
                    // NACKed again, round trip after round trip, until the retry lands.
                    if matches!(parsed, Frame::Start(_) | Frame::Data(_)) {
                        self.queue_nack(frame.seq, 1);
                    }
                    continue;
                }
                return self.fail(ConnectionError::Handshake(HandshakeError::UnexpectedFrame(
                    kind,
                )));
            }
            if self.state == State::Open && !matches!(parsed, Frame::Hello(_)) {
                // Anything but HELLO proves the peer finished its handshake with ours.
                self.hello_confirmed = true;
            }
            if let Err(v) = self.handle_frame(parsed) {
                return self.fail(ConnectionError::Protocol(v));
            }
        }
    }

    fn frame_error(&mut self, e: FrameError) {
        let err = if self.state == State::Handshaking {
            ConnectionError::Handshake(HandshakeError::Frame(e))
        } else {
            ConnectionError::Protocol(ProtocolViolation::Frame(e))
        };
        self.fail(err);
    }

    /// Appends frames to `buf` until about `limit` bytes were added or nothing is left
    /// to send, and returns the number of bytes added. A frame is never split, so the
    /// first frame may exceed a small `limit`. Control frames go first, then credit
    /// updates, then message frames by urgency, round robin within an urgency.
    ///
    /// Pacing is the driver's job: ask for about what the link can take right now, so
    /// that an urgent message started a moment later is not stuck behind bytes already
    /// handed to the operating system.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>, limit: usize) -> usize {
        self.now = now;
        let start = buf.len();
        let spliced = |c: &Connection| c.splices.as_ref().map_or(0, |s| s.1);
        let start_spliced = spliced(self);
        loop {
            let written = buf.len() - start + spliced(self) - start_spliced;
            let frame = if let Some(f) = self.control.pop_front() {
                Some(f)
            } else if self.state == State::Open {
                self.recv.poll_credit_frame()
            } else {
                None
            };
            if let Some(frame) = frame {
                if written > 0 && written + self.writer.framed_len(frame.encoded_len()) > limit {
                    self.control.push_front(frame);
                    break;
                }
                let what = Sent::of_control(&frame);
                self.emit(buf, &frame, what);
                continue;
            }
            if self.state != State::Open || !self.send.has_scheduled() {
                break;
            }
            // After the first frame, the next one is cut to the room left (so many small
            // messages share one batch), unless too little is left to be worth a frame.
            if written > 0 {
                let room = self.writer.payload_room(limit.saturating_sub(written));
                if room < MIN_FRAME_ROOM {
                    break;
                }
                self.frame_room = room;
            }
            let sent = self.poll_message_frame(buf);
            self.frame_room = usize::MAX;
            if !sent {
                break;
            }
        }
        buf.len() - start + spliced(self) - start_spliced
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) may have something to send now;
    /// `false` means it would add nothing, so a driver can skip the call (after a
    /// write, say). Cheaper than the call it saves.
    ///
    /// ```
    /// use netcore_core::{Config, Connection, Instant};
    ///
    /// let now = Instant::ZERO;
    /// let mut conn = Connection::new(Config::tcp(), now);
    /// assert!(conn.has_transmit()); // its HELLO
    /// let mut out = Vec::new();
    /// conn.poll_transmit(now, &mut out, 1 << 16);
    /// assert!(!conn.has_transmit());
    /// ```
    #[inline]
    pub fn has_transmit(&self) -> bool {
        !self.control.is_empty()
            || (self.state == State::Open && (self.recv.credit_due() || self.send.has_scheduled()))
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but appends to a [`Transmit`](crate::Transmit): on
    /// the `tcp` profile large bodies are referenced, not copied, ready for a vectored
    /// write. Returns the link bytes appended.
    pub fn poll_transmit_vectored(
        &mut self,
        now: Instant,
        out: &mut crate::Transmit,
        limit: usize,
    ) -> usize {
        if self.config.profile != LinkProfile::Tcp || !out.splicing {
            let before = out.buf.len();
            self.poll_transmit(now, &mut out.buf, limit);
            return out.buf.len() - before;
        }
        let before = out.appended();
        self.splices = Some((Vec::new(), 0));
        self.poll_transmit(now, &mut out.buf, limit);
        if let Some((splices, _)) = self.splices.take() {
            if !splices.is_empty() {
                // Offsets were recorded against `out.buf` as it grew, so they stay valid.
                out.add_splices(splices);
            }
        }
        out.appended() - before
    }

    /// Encodes one frame through the link profile and remembers what it carried.
    #[inline]
    pub(crate) fn emit(&mut self, buf: &mut Vec<u8>, frame: &impl Encode, what: Sent) {
        self.emitter().emit(buf, frame, what)
    }

    /// The fields [`emit`](Self::emit) writes to, borrowed apart from the rest (so a
    /// frame can be encoded from message state borrowed meanwhile).
    #[inline]
    pub(crate) fn emitter(&mut self) -> Emitter<'_> {
        Emitter {
            splices: &mut self.splices,
            writer: &mut self.writer,
            history: &mut self.history,
            frames_sent: &mut self.frames_sent,
            tail_probe_at: &mut self.tail_probe_at,
            now: self.now,
            rtt: self.rtt,
        }
    }
}

/// What emitting a frame writes to: the output side of a [`Connection`].
pub(crate) struct Emitter<'a> {
    pub(crate) splices: &'a mut Option<(Vec<(usize, Bytes)>, usize)>,
    pub(crate) writer: &'a mut LinkWriter,
    pub(crate) history: &'a mut Option<History>,
    pub(crate) frames_sent: &'a mut u64,
    pub(crate) tail_probe_at: &'a mut Option<Instant>,
    pub(crate) now: Instant,
    pub(crate) rtt: Duration,
}

impl Emitter<'_> {
    /// Encodes one frame through the link profile and remembers what it carried.
    #[inline]
    pub(crate) fn emit(self, buf: &mut Vec<u8>, frame: &impl Encode, what: Sent) {
        if let Some((splices, len)) = self.splices.as_mut() {
            // tcp profile only (see poll_transmit_vectored): the link adds no framing.
            if let Some(body) = frame.encode_frame_split(buf, MIN_SPLICE) {
                *len += body.len();
                splices.push((buf.len(), body));
            }
            *self.frames_sent += 1;
            return;
        }
        if self.history.is_none() {
            // tcp: the link adds nothing and nothing is recorded.
            self.writer.write_plain(buf, |out| frame.encode_frame(out));
            *self.frames_sent += 1;
            return;
        }
        let seq = self.writer.write(buf, |out| frame.encode_frame(out));
        *self.frames_sent += 1;
        if let Some(h) = self.history.as_mut() {
            h.record(seq, what);
            if matches!(what, Sent::Message { .. }) {
                *self.tail_probe_at = Some(self.now + tail_probe_delay(self.rtt));
            }
        }
    }
}
