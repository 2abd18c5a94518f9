//! The application's side of incoming messages: reading bodies (piece by piece or
//! whole), which returns credit to the peer, and stopping a message.

use super::*;

impl Connection {
    /// Takes up to `max` buffered body bytes of an incoming message (`max` 0 means no
    /// limit). `Ok(None)` means the body is complete and the message is now forgotten;
    /// `Blocked` means nothing is buffered yet. Reading returns credit to the peer.
    #[inline]
    pub fn read(&mut self, id: MessageId, max: usize) -> Result<Option<Bytes>, ReadError> {
        // Inlined for the usual calls on a message whose body is complete (a small
        // message always is): the chunk then reaches the caller without a returned
        // copy. An ended message's credit is settled, so reading only hands out.
        let Some(m) = self.recv.messages.get_mut(id.0) else {
            return Err(ReadError::UnknownMessage);
        };
        if m.ended {
            let Some(front) = m.queue.front_mut() else {
                self.read_to_end(id.0);
                return Ok(None);
            };
            if max == 0 || front.len() <= max {
                let chunk = m.queue.pop_front().unwrap_or_default();
                let n = chunk.len() as u64;
                m.consumed += n;
                self.recv.buffered -= n;
                return Ok(Some(chunk));
            }
        }
        self.read_general(id, max)
    }

    /// Takes the whole body of incoming message `id` in one call when it has ended and
    /// its body is buffered in one piece (as a small message's always is), and forgets
    /// the message, as reading it to its end with [`read`](Self::read) would. `None`,
    /// changing nothing, otherwise: then read it piece by piece.
    ///
    /// ```
    /// # use netcore_core::{Config, Connection, Event, Instant, MessageHead};
    /// # let now = Instant::ZERO;
    /// # let (mut a, mut b) = (Connection::new(Config::tcp(), now), Connection::new(Config::tcp(), now));
    /// # let mut step = |a: &mut Connection, b: &mut Connection| {
    /// #     for _ in 0..4 {
    /// #         let mut buf = Vec::new();
    /// #         a.poll_transmit(now, &mut buf, 1 << 16);
    /// #         b.handle_input(now, &buf);
    /// #         buf.clear();
    /// #         b.poll_transmit(now, &mut buf, 1 << 16);
    /// #         a.handle_input(now, &buf);
    /// #     }
    /// # };
    /// # step(&mut a, &mut b);
    /// a.send(MessageHead::to_route("temp"), "21.5".into()).unwrap();
    /// # step(&mut a, &mut b);
    /// let id = loop {
    ///     match b.poll_event() {
    ///         Some(Event::Incoming { id, .. }) => break id,
    ///         Some(_) => continue,
    ///         None => panic!("no message"),
    ///     }
    /// };
    /// assert_eq!(b.read_whole(id).as_deref(), Some(&b"21.5"[..]));
    /// assert!(b.read(id, 0).is_err()); // read to its end, forgotten
    /// ```
    pub fn read_whole(&mut self, id: MessageId) -> Option<Bytes> {
        let m = self.recv.messages.get_mut(id.0)?;
        if !m.ended || m.queue.second().is_some() {
            return None;
        }
        let chunk = m.queue.pop_front().unwrap_or_default();
        let n = chunk.len() as u64;
        m.consumed += n;
        self.recv.buffered -= n;
        self.read_to_end(id.0);
        Some(chunk)
    }

    /// Lets messages whose START carries the whole body (every small message) be
    /// handed over in one [`Event::Message`] with their body, instead of
    /// [`Event::Incoming`] and [`Event::Readable`] followed by reads, until `budget`
    /// bytes are used up, each message counting its body length plus `per_message`.
    /// Such a message is done on arrival: the connection keeps nothing of it and its
    /// message credit goes back to the peer at once, so the budget is how the driver
    /// bounds what it queues itself; past it, messages wait in the connection again,
    /// where they hold back the peer's credit. Each call replaces the budget; 0 (the
    /// default) turns this off.
    ///
    /// ```
    /// # use netcore_core::{Config, Connection, Event, Instant, MessageHead};
    /// # let now = Instant::ZERO;
    /// # let (mut a, mut b) = (Connection::new(Config::tcp(), now), Connection::new(Config::tcp(), now));
    /// # let mut step = |a: &mut Connection, b: &mut Connection| {
    /// #     for _ in 0..4 {
    /// #         let mut buf = Vec::new();
    /// #         a.poll_transmit(now, &mut buf, 1 << 16);
    /// #         b.handle_input(now, &buf);
    /// #         buf.clear();
    /// #         b.poll_transmit(now, &mut buf, 1 << 16);
    /// #         a.handle_input(now, &buf);
    /// #     }
    /// # };
    /// # step(&mut a, &mut b);
    /// // Room for one small message: the second waits in the connection.
    /// b.set_whole_delivery(600, 512);
    /// a.send(MessageHead::to_route("temp"), "21.5".into()).unwrap();
    /// a.send(MessageHead::to_route("temp"), "21.6".into()).unwrap();
    /// # step(&mut a, &mut b);
    /// let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    /// let body = events.iter().find_map(|e| match e {
    ///     Event::Message { body, .. } => Some(body.clone()),
    ///     _ => None,
    /// });
    /// assert_eq!(body.as_deref(), Some(&b"21.5"[..]));
    /// let second = events.iter().find_map(|e| match e {
    ///     Event::Incoming { id, .. } => Some(*id),
    ///     _ => None,
    /// });
    /// let second = second.expect("the second message waits in the connection");
    /// assert_eq!(b.read_whole(second).as_deref(), Some(&b"21.6"[..]));
    /// ```
    pub fn set_whole_delivery(&mut self, budget: u64, per_message: u64) {
        self.recv.whole_budget = budget;
        self.recv.whole_overhead = per_message;
    }

    /// Forgets incoming message `id`, read to its end.
    pub(super) fn read_to_end(&mut self, id: u64) {
        self.recv.messages.delete(id);
        self.recv.done_count += 1;
        self.recv.note_completed(id);
        self.maybe_finish_close();
    }

    /// [`read`](Self::read) in general.
    pub(super) fn read_general(
        &mut self,
        id: MessageId,
        max: usize,
    ) -> Result<Option<Bytes>, ReadError> {
        let max = if max == 0 { usize::MAX } else { max };
        // A message window bounds what waits for the application, not what queues on
        // the path (connection credit does that), so it grows on the smoothed RTT.
        let rtt = self.rtt;
        let m = self
            .recv
            .messages
            .get_mut(id.0)
            .ok_or(ReadError::UnknownMessage)?;
        if let Some(front) = m.queue.front_mut() {
            let chunk = if front.len() <= max {
                m.queue.pop_front().unwrap_or_default()
            } else {
                front.split_to(max)
            };
            let n = chunk.len() as u64;
            if m.consumed(n, &self.config, self.now, rtt) {
                self.recv.pending_message_credit.insert(id.0);
            }
            self.recv.buffered -= n;
            return Ok(Some(chunk));
        }
        if m.ended {
            self.read_to_end(id.0);
            return Ok(None);
        }
        Err(ReadError::Blocked)
    }

    /// Body bytes buffered for an incoming message.
    pub fn readable_bytes(&self, id: MessageId) -> u64 {
        self.recv.messages.get(id.0).map_or(0, Incoming::buffered)
    }

    /// Abandons an incoming message: its buffer is dropped, its credit returned, and
    /// the peer asked with CANCEL to stop sending it. No event follows.
    pub fn stop(&mut self, id: MessageId, code: ErrorCode) {
        if self.remove_incoming(id.0) {
            self.control.push_back(Frame::Cancel(Cancel {
                id: id.0,
                side: CancelSide::Receiver,
                code,
            }));
            self.maybe_finish_close();
        }
    }
}
