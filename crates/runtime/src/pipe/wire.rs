//! The protocol state machine a driver runs: the native netcore core, or an adapter
//! speaking another wire format (Python Netcore 0.1.3) with the same shape, so the
//! driver and everything above it stay the same.

use bytes::{Bytes, BytesMut};
use netcore_core::{
    Connection, ErrorCode, Event, Instant, MessageHead, MessageId, ReadError, StartError, Transmit,
    WriteError,
};

/// A sans-IO connection the driver can run. The method contract is that of
/// [`netcore_core::Connection`]; see its docs for the call order.
pub trait Wire: Send + 'static {
    /// Bytes received.
    fn handle_input(&mut self, now: Instant, data: &[u8]);
    /// The transport ended.
    fn handle_transport_closed(&mut self, now: Instant);
    /// A timer expired.
    fn handle_timeout(&mut self, now: Instant);
    /// Next timer deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Bytes to send, appended to `buf`, about `limit` at most.
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>, limit: usize) -> usize;
    /// Like `poll_transmit`, into a [`Transmit`] (large bodies by reference where the
    /// wire can). The default copies.
    fn poll_transmit_vectored(&mut self, now: Instant, out: &mut Transmit, limit: usize) -> usize {
        let mut buf = Vec::new();
        let n = self.poll_transmit(now, &mut buf, limit);
        out.extend_from_slice(&buf);
        n
    }
    /// Whether `poll_transmit` may have something to send; `false` lets the driver
    /// skip the call. The default is always `true`.
    fn has_transmit(&self) -> bool {
        true
    }
    /// A buffer to read transport bytes into in place, then call `handle_received`;
    /// `None` (the default) means use `handle_input`.
    fn input_buffer(&mut self, _spare: usize) -> Option<&mut BytesMut> {
        None
    }
    /// Bytes were appended to `input_buffer`.
    fn handle_received(&mut self, _now: Instant) {}
    /// Next event.
    fn poll_event(&mut self) -> Option<Event>;
    /// Starts a message with its whole body.
    fn send(&mut self, head: MessageHead, body: Bytes) -> Result<MessageId, StartError>;
    /// Starts a message whose body follows.
    fn start(&mut self, head: MessageHead) -> Result<MessageId, StartError>;
    /// How many more messages `send`/`start` accept now (unlimited by default).
    fn outgoing_room(&self) -> usize {
        usize::MAX
    }
    /// Queues body bytes.
    fn write(&mut self, id: MessageId, data: Bytes) -> Result<usize, WriteError>;
    /// Ends a body.
    fn finish(&mut self, id: MessageId) -> Result<(), WriteError>;
    /// Abandons an outgoing message.
    fn cancel(&mut self, id: MessageId, code: ErrorCode);
    /// Takes buffered body bytes of an incoming message.
    fn read(&mut self, id: MessageId, max: usize) -> Result<Option<Bytes>, ReadError>;
    /// Takes an ended message's body when it is buffered in one piece, forgetting
    /// the message; `None` (the default) means read it with `read`.
    fn read_whole(&mut self, _id: MessageId) -> Option<Bytes> {
        None
    }
    /// How many bytes of messages arriving whole may come as [`Event::Message`] (see
    /// [`Connection::set_whole_delivery`]); the default ignores it (the wire never
    /// sends that event).
    fn set_whole_delivery(&mut self, _budget: u64, _per_message: u64) {}
    /// Whether sent messages may be reported as [`Event::SentRange`] (see
    /// [`Connection::set_sent_ranges`]); the default ignores it (the wire reports
    /// [`Event::Sent`]s).
    fn set_sent_ranges(&mut self, _on: bool) {}
    /// Abandons an incoming message.
    fn stop(&mut self, id: MessageId, code: ErrorCode);
    /// Graceful close.
    fn close(&mut self, code: ErrorCode, reason: &str);
    /// Immediate close.
    fn abort(&mut self, code: ErrorCode, reason: &str);
    /// Ended?
    fn is_closed(&self) -> bool;
    /// Handshake done and not ended?
    fn is_open(&self) -> bool;
    /// Ended with nothing left to transmit?
    fn is_drained(&self) -> bool;
}

impl Wire for Connection {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        Connection::handle_input(self, now, data)
    }
    fn handle_transport_closed(&mut self, now: Instant) {
        Connection::handle_transport_closed(self, now)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Connection::handle_timeout(self, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Connection::poll_timeout(self)
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>, limit: usize) -> usize {
        Connection::poll_transmit(self, now, buf, limit)
    }
    fn poll_transmit_vectored(&mut self, now: Instant, out: &mut Transmit, limit: usize) -> usize {
        Connection::poll_transmit_vectored(self, now, out, limit)
    }
    fn has_transmit(&self) -> bool {
        Connection::has_transmit(self)
    }
    fn input_buffer(&mut self, spare: usize) -> Option<&mut BytesMut> {
        Connection::input_buffer(self, spare)
    }
    fn handle_received(&mut self, now: Instant) {
        Connection::handle_received(self, now)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Connection::poll_event(self)
    }
    fn send(&mut self, head: MessageHead, body: Bytes) -> Result<MessageId, StartError> {
        Connection::send(self, head, body)
    }
    fn start(&mut self, head: MessageHead) -> Result<MessageId, StartError> {
        Connection::start(self, head)
    }
    fn outgoing_room(&self) -> usize {
        Connection::outgoing_room(self)
    }
    fn write(&mut self, id: MessageId, data: Bytes) -> Result<usize, WriteError> {
        Connection::write(self, id, data)
    }
    fn finish(&mut self, id: MessageId) -> Result<(), WriteError> {
        Connection::finish(self, id)
    }
    fn cancel(&mut self, id: MessageId, code: ErrorCode) {
        Connection::cancel(self, id, code)
    }
    fn read(&mut self, id: MessageId, max: usize) -> Result<Option<Bytes>, ReadError> {
        Connection::read(self, id, max)
    }
    fn read_whole(&mut self, id: MessageId) -> Option<Bytes> {
        Connection::read_whole(self, id)
    }
    fn set_whole_delivery(&mut self, budget: u64, per_message: u64) {
        Connection::set_whole_delivery(self, budget, per_message)
    }
    fn set_sent_ranges(&mut self, on: bool) {
        Connection::set_sent_ranges(self, on)
    }
    fn stop(&mut self, id: MessageId, code: ErrorCode) {
        Connection::stop(self, id, code)
    }
    fn close(&mut self, code: ErrorCode, reason: &str) {
        Connection::close(self, code, reason)
    }
    fn abort(&mut self, code: ErrorCode, reason: &str) {
        Connection::abort(self, code, reason)
    }
    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }
    fn is_open(&self) -> bool {
        Connection::is_open(self)
    }
    fn is_drained(&self) -> bool {
        Connection::is_drained(self)
    }
}
