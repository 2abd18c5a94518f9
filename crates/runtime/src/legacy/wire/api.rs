//! What the driver calls: the [`Wire`] implementation of [`LegacyWire`].

use super::*;

impl Wire for LegacyWire {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.now = now;
        if self.closed {
            return;
        }
        // A fatal error is reported as ConnectionFailed too; handled there.
        let _ = self.conn.handle_input(data);
        self.drain_codec();
        self.maybe_finish_close();
        self.sync_stats();
    }

    fn handle_transport_closed(&mut self, now: Instant) {
        self.now = now;
        if self.closed {
            return;
        }
        // Python ends a connection by closing its socket: graceful unless cut mid-message.
        let error = self.in_flight().then_some(ConnectionError::TransportClosed);
        self.enter_closed(error);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some(t) = self.closing_since {
            if !self.closed && now >= t + self.options.drain_timeout {
                // Replies still owed to the peer are abandoned; messages cut short
                // make the close an error.
                let error = self.in_flight().then_some(ConnectionError::DrainTimedOut);
                self.enter_closed(error);
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.closing_since {
            Some(t) if !self.closed => Some(t + self.options.drain_timeout),
            _ => None,
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>, limit: usize) -> usize {
        self.now = now;
        let start = buf.len();
        if self.closed {
            return 0;
        }
        loop {
            let written = buf.len() - start;
            if written > 0 && written >= limit {
                break;
            }
            self.refill();
            if self.conn.poll_transmit(buf) == 0 {
                break;
            }
        }
        self.drain_codec();
        self.writable_events();
        self.maybe_finish_close();
        self.sync_stats();
        buf.len() - start
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn send(&mut self, head: MessageHead, body: Bytes) -> Result<MessageId, StartError> {
        let mut head = head;
        head.total_len = Some(body.len() as u64);
        let id = self.start(head)?;
        if let Some(OutState::Started {
            pending,
            pending_bytes,
            written,
            finish_pending,
            ..
        }) = self.outgoing.get_mut(&id.0)
        {
            *written = body.len() as u64;
            *pending_bytes = body.len();
            if !body.is_empty() {
                pending.push_back(body);
            }
            *finish_pending = true;
        }
        self.refill();
        self.drain_codec();
        Ok(id)
    }

    fn start(&mut self, head: MessageHead) -> Result<MessageId, StartError> {
        if self.closed || (self.closing_since.is_some() && head.reply_to.is_none()) {
            return Err(StartError::Closing);
        }
        let core = self.alloc();
        let Some(total) = head.total_len else {
            self.outgoing.insert(
                core,
                OutState::Unsized {
                    head,
                    chunks: Vec::new(),
                    len: 0,
                },
            );
            return Ok(MessageId(core));
        };
        match self.start_codec(core, &head, total) {
            Ok(legacy) => {
                self.outgoing.insert(
                    core,
                    OutState::Started {
                        legacy,
                        total,
                        written: 0,
                        pending: VecDeque::new(),
                        pending_bytes: 0,
                        finish_pending: false,
                        finished: false,
                        blocked: false,
                    },
                );
                Ok(MessageId(core))
            }
            Err(e @ SendError::HeadTooLarge { .. }) => {
                self.monitor.update(|s| s.refused_sends += 1);
                self.monitor.record(LegacyError::Send(e.clone()));
                Err(map_send_start(e))
            }
            Err(e @ (SendError::Closed | SendError::ConnectionFailed(_))) => Err(map_send_start(e)),
            Err(e) => {
                // Reported as Stopped, with the precise reason in the monitor.
                self.refuse(core, e);
                Ok(MessageId(core))
            }
        }
    }

    fn write(&mut self, id: MessageId, data: Bytes) -> Result<usize, WriteError> {
        let cap = self.options.max_unsized_body;
        let queue_cap = self.options.max_queued_per_message.max(1);
        let st = self
            .outgoing
            .get_mut(&id.0)
            .ok_or(WriteError::UnknownMessage)?;
        match st {
            OutState::Unsized { chunks, len, .. } => {
                if *len + data.len() > cap {
                    let actual = (*len + data.len()) as u64;
                    self.outgoing.remove(&id.0);
                    let error = MessageError::Limit(LimitExceeded {
                        kind: LimitKind::MessageSize,
                        limit: cap as u64,
                        actual,
                    });
                    // The message is over: a request's caller learns it from Stopped.
                    self.events.push_back(Event::Stopped {
                        id,
                        error: error.clone(),
                    });
                    return Err(WriteError::Failed(error));
                }
                *len += data.len();
                if !data.is_empty() {
                    chunks.push(data.clone());
                }
                Ok(data.len())
            }
            OutState::Started {
                total,
                written,
                pending,
                pending_bytes,
                finish_pending,
                finished,
                blocked,
                ..
            } => {
                if *finish_pending || *finished {
                    return Err(WriteError::AlreadyFinished);
                }
                if *written + data.len() as u64 > *total {
                    return Err(WriteError::LengthExceeded { announced: *total });
                }
                if data.is_empty() {
                    return Ok(0);
                }
                if *pending_bytes >= queue_cap {
                    *blocked = true;
                    return Err(WriteError::Blocked);
                }
                let n = data.len();
                *written += n as u64;
                *pending_bytes += n;
                pending.push_back(data);
                self.refill();
                self.drain_codec();
                Ok(n)
            }
        }
    }

    fn finish(&mut self, id: MessageId) -> Result<(), WriteError> {
        let st = self
            .outgoing
            .get_mut(&id.0)
            .ok_or(WriteError::UnknownMessage)?;
        match st {
            OutState::Unsized { .. } => {
                let Some(OutState::Unsized {
                    mut head,
                    chunks,
                    len,
                }) = self.outgoing.remove(&id.0)
                else {
                    return Err(WriteError::UnknownMessage);
                };
                head.total_len = Some(len as u64);
                match self.start_codec(id.0, &head, len as u64) {
                    Ok(legacy) => {
                        self.outgoing.insert(
                            id.0,
                            OutState::Started {
                                legacy,
                                total: len as u64,
                                written: len as u64,
                                pending: chunks.into(),
                                pending_bytes: len,
                                finish_pending: true,
                                finished: false,
                                blocked: false,
                            },
                        );
                        self.refill();
                        self.drain_codec();
                        Ok(())
                    }
                    Err(e) => {
                        self.refuse(id.0, e);
                        Ok(())
                    }
                }
            }
            OutState::Started {
                total,
                written,
                finish_pending,
                finished,
                ..
            } => {
                if *finish_pending || *finished {
                    return Err(WriteError::AlreadyFinished);
                }
                if *written != *total {
                    return Err(WriteError::LengthShort {
                        announced: *total,
                        written: *written,
                    });
                }
                *finish_pending = true;
                self.refill();
                self.drain_codec();
                Ok(())
            }
        }
    }

    fn cancel(&mut self, id: MessageId, _code: ErrorCode) {
        match self.outgoing.remove(&id.0) {
            Some(OutState::Started { legacy, .. }) => {
                self.out_map.remove(&legacy);
                let _ = self.conn.cancel(legacy);
                self.forget_request_legacy(legacy);
            }
            Some(OutState::Unsized { .. }) => {}
            None => {
                // Fully sent: Python cannot be told; stop matching its response.
                let legacy = self
                    .requests
                    .iter()
                    .find(|(_, c)| **c == id.0)
                    .map(|(l, _)| *l);
                if let Some(l) = legacy {
                    self.forget_request_legacy(l);
                }
            }
        }
        self.drain_codec();
        self.maybe_finish_close();
    }

    fn read(&mut self, id: MessageId, max: usize) -> Result<Option<Bytes>, ReadError> {
        let max = if max == 0 { usize::MAX } else { max };
        let s = self
            .incoming
            .get_mut(&id.0)
            .ok_or(ReadError::UnknownMessage)?;
        if s.chunks.is_empty() && !s.tail.is_empty() {
            s.chunks.push_back(Bytes::from(std::mem::take(&mut s.tail)));
        }
        if let Some(front) = s.chunks.front_mut() {
            let chunk = if front.len() <= max {
                s.chunks.pop_front().unwrap_or_default()
            } else {
                front.split_to(max)
            };
            s.buffered -= chunk.len();
            self.buffered -= chunk.len();
            return Ok(Some(chunk));
        }
        if s.ended {
            self.incoming.remove(&id.0);
            self.maybe_finish_close();
            return Ok(None);
        }
        Err(ReadError::Blocked)
    }

    fn stop(&mut self, id: MessageId, _code: ErrorCode) {
        // Python cannot be asked to stop sending: its further data is discarded here.
        if let Some(s) = self.incoming.get(&id.0) {
            let legacy = s.legacy;
            if self.in_map.remove(&legacy).is_some() {
                let _ = self.conn.cancel(legacy);
            }
            self.drop_incoming(id.0);
        }
        self.forget_answerable(id.0);
        self.drain_codec();
        self.maybe_finish_close();
    }

    fn close(&mut self, _code: ErrorCode, _reason: &str) {
        // Python has no close message: stop starting requests, let the messages in
        // flight finish (replies may still start), then end the transport.
        if self.closed || self.closing_since.is_some() {
            return;
        }
        self.closing_since = Some(self.now);
        self.maybe_finish_close();
    }

    fn abort(&mut self, code: ErrorCode, _reason: &str) {
        self.enter_closed(Some(ConnectionError::LocallyAborted { code }));
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn is_open(&self) -> bool {
        !self.closed
    }

    fn is_drained(&self) -> bool {
        self.closed
    }
}
