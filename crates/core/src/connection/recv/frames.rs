//! Frames of incoming messages: START (checks, limits, routes), DATA and END (offsets,
//! credit, reassembly), and the resets that end a message early.

use super::*;

impl Connection {
    pub(super) fn is_serial(&self) -> bool {
        self.config.profile == LinkProfile::Serial
    }

    /// Refuses an incoming message before the application sees it.
    pub(super) fn reject(&mut self, id: u64, error: MessageError) {
        self.recv.done_count += 1;
        self.control.push_back(Frame::Cancel(Cancel {
            id,
            side: CancelSide::Receiver,
            code: error.code(),
        }));
        self.events.push_back(Event::Rejected {
            id: MessageId(id),
            error,
        });
    }

    pub(in crate::connection) fn handle_start(
        &mut self,
        s: Start,
    ) -> Result<(), ProtocolViolation> {
        let Start {
            id8,
            urgency,
            fin,
            reply_to,
            route,
            metadata,
            total_len,
            body,
        } = s;
        let head = StartHead {
            id8,
            urgency,
            fin,
            reply_to,
            total_len,
        };
        self.handle_start_fields(head, route, metadata, body)
    }

    /// [`handle_start`](Self::handle_start) on a START's fields: from a parsed
    /// [`Start`], or from a START read in place (`LinkReader::next_plain_start`).
    #[inline(always)]
    pub(in crate::connection) fn handle_start_fields(
        &mut self,
        s: StartHead,
        route_field: Option<RouteField>,
        metadata: Option<Bytes>,
        body: Bytes,
    ) -> Result<(), ProtocolViolation> {
        let expected = self.recv.next_id;
        let id = expected + u64::from(s.id8.wrapping_sub(expected as u8));
        if id != expected && !self.is_serial() {
            return Err(ProtocolViolation::BadMessageId {
                id,
                why: "START out of order (expected the next id)",
            });
        }
        if id > self.recv.max_messages() {
            return Err(ProtocolViolation::Limit(LimitExceeded {
                kind: LimitKind::IncomingMessages,
                limit: self.recv.max_incoming,
                actual: id - self.recv.done_count,
            }));
        }
        // Serial: the STARTs of the ids in between were lost on the line (at most 255,
        // as ids are reconstructed from their low byte). Those messages are gone: count
        // them as done so their message credit comes back, and say so.
        for lost in expected..id {
            self.recv.done_count += 1;
            self.events.push_back(Event::Rejected {
                id: MessageId(lost),
                error: MessageError::FrameLost,
            });
        }
        self.recv.next_id = id + 1;
        let body_len = body.len() as u64;
        self.charge_connection(body_len)?;
        if body_len > self.config.message_window {
            return Err(ProtocolViolation::FlowControl {
                allowed: self.config.message_window,
                sent: body_len,
            });
        }
        if route_field == Some(RouteField::Ref(0)) {
            // Void message: its id is used up, nothing else.
            self.recv.done_count += 1;
            return Ok(());
        }
        if let Some(last) = self.goaway_sent {
            if id > last && s.reply_to.is_none() {
                self.reject(id, MessageError::Refused);
                return Ok(());
            }
        }
        let route = match route_field {
            None => None,
            Some(RouteField::Literal { intern_as, name }) => {
                let route = Route::from(
                    core::str::from_utf8(&name).map_err(|_| ProtocolViolation::InvalidRoute)?,
                );
                if intern_as > self.config.max_routes {
                    return Err(ProtocolViolation::Limit(LimitExceeded {
                        kind: LimitKind::Routes,
                        limit: self.config.max_routes,
                        actual: intern_as,
                    }));
                }
                if intern_as > 0 {
                    if self.recv.last_route.0 == intern_as {
                        self.recv.last_route.0 = 0;
                    }
                    self.recv.routes.insert(intern_as, route.clone());
                }
                Some(route)
            }
            Some(RouteField::Ref(n)) if n == self.recv.last_route.0 => {
                Some(self.recv.last_route.1.clone())
            }
            Some(RouteField::Ref(n)) => match self.recv.routes.get(&n) {
                Some(r) => {
                    self.recv.last_route = (n, r.clone());
                    Some(r.clone())
                }
                // Serial: the START that defined it was lost; only this message suffers.
                None if self.is_serial() => {
                    self.reject(id, MessageError::FrameLost);
                    return Ok(());
                }
                None => return Err(ProtocolViolation::UnknownRoute(n)),
            },
        };
        let metadata = metadata.unwrap_or_default();
        let head_len = (route.as_ref().map_or(0, |r| r.len()) + metadata.len()) as u64;
        let limit = if head_len > self.config.max_metadata as u64 {
            Some(LimitExceeded {
                kind: LimitKind::MetadataSize,
                limit: self.config.max_metadata as u64,
                actual: head_len,
            })
        } else {
            self.config.max_message.and_then(|max| {
                let len = s.total_len.unwrap_or(0).max(body_len);
                (len > max).then_some(LimitExceeded {
                    kind: LimitKind::MessageSize,
                    limit: max,
                    actual: len,
                })
            })
        };
        if let Some(l) = limit {
            self.reject(id, MessageError::Limit(l));
            return Ok(());
        }
        if let (true, Some(t)) = (s.fin, s.total_len) {
            if t != body_len {
                return Err(ProtocolViolation::LengthMismatch {
                    announced: t,
                    received: body_len,
                });
            }
        }
        // A START that ends its message carries the whole body: its length is known
        // even when the sender did not announce it.
        let head = MessageHead {
            route,
            metadata,
            total_len: s.total_len.or(s.fin.then_some(body_len)),
            reply_to: s.reply_to.map(MessageId),
            urgency: s.urgency,
        };
        let whole_cost = body_len.saturating_add(self.recv.whole_overhead);
        if s.fin && self.recv.whole_budget != 0 && whole_cost <= self.recv.whole_budget {
            // Done on arrival: no state kept, its message credit comes back at once.
            self.recv.whole_budget -= whole_cost;
            self.recv.done_count += 1;
            self.recv.note_completed(id);
            self.events.push_back(Event::Message {
                id: MessageId(id),
                head,
                body,
            });
            self.maybe_finish_close();
            return Ok(());
        }
        let window = self.config.message_window;
        let readable = !body.is_empty() || s.fin;
        if !body.is_empty() {
            self.recv.buffered += body_len;
        }
        let m = Incoming {
            // A message's first chunk sits inline: no queue to push onto.
            queue: Chunks::one(body),
            received: body_len,
            consumed: 0,
            granted: window,
            window,
            last_grant: None,
            total_len: s.total_len,
            ended: s.fin,
        };
        self.recv.messages.insert(id, m);
        self.events.push_back(Event::Incoming {
            id: MessageId(id),
            head,
        });
        if readable {
            self.events.push_back(Event::Readable { id: MessageId(id) });
        }
        Ok(())
    }

    pub(super) fn charge_connection(&mut self, len: u64) -> Result<(), ProtocolViolation> {
        let total = self.recv.conn_received + len;
        if total > self.recv.max_data_granted {
            return Err(ProtocolViolation::FlowControl {
                allowed: self.recv.max_data_granted,
                sent: total,
            });
        }
        self.recv.conn_received = total;
        // Connection credit bounds bytes in flight and comes back on arrival: bytes a
        // message holds are bounded by its own window, and holding them must never
        // starve the other messages (a reader taking messages one at a time would
        // otherwise deadlock once unread messages fill the connection window).
        let (now, rtt) = (self.now, self.window_rtt());
        self.recv.release_connection(len, &self.config, now, rtt);
        Ok(())
    }

    pub(in crate::connection) fn handle_data(&mut self, d: Data) -> Result<(), ProtocolViolation> {
        let len = d.body.len() as u64;
        self.charge_connection(len)?;
        if d.id >= self.recv.next_id {
            if !self.is_serial() {
                return Err(ProtocolViolation::BadMessageId {
                    id: d.id,
                    why: "DATA before its START",
                });
            }
            // Serial: its START was lost; have the sender give up on it.
            if self.recv.last_unknown_cancelled != d.id {
                self.recv.last_unknown_cancelled = d.id;
                self.control.push_back(Frame::Cancel(Cancel {
                    id: d.id,
                    side: CancelSide::Receiver,
                    code: ErrorCode::FRAME_LOST,
                }));
            }
            return Ok(());
        }
        let max_message = self.config.max_message;
        let Some(m) = self.recv.messages.get_mut(d.id) else {
            // A message already finished, cancelled or refused: drop, return credit.
            return Ok(());
        };
        if d.offset != m.received {
            if !self.is_serial() {
                return Err(ProtocolViolation::BadMessageId {
                    id: d.id,
                    why: "DATA at an offset other than the next byte",
                });
            }
            // Serial: a frame of this message was lost. Never deliver past the hole.
            self.fail_incoming(d.id, MessageError::FrameLost);
            return Ok(());
        }
        if m.ended {
            return Err(ProtocolViolation::UnexpectedFrame {
                kind: if d.end {
                    FrameKind::END
                } else {
                    FrameKind::DATA
                },
                why: "body bytes after the end of the message",
            });
        }
        let end_offset = m.received + len;
        if end_offset > m.granted {
            return Err(ProtocolViolation::FlowControl {
                allowed: m.granted,
                sent: end_offset,
            });
        }
        if let Some(t) = m.total_len {
            if end_offset > t || (d.end && end_offset != t) {
                return Err(ProtocolViolation::LengthMismatch {
                    announced: t,
                    received: end_offset,
                });
            }
        }
        if let Some(max) = max_message.filter(|&max| end_offset > max) {
            let err = MessageError::Limit(LimitExceeded {
                kind: LimitKind::MessageSize,
                limit: max,
                actual: end_offset,
            });
            self.fail_incoming(d.id, err);
            return Ok(());
        }
        let was_empty = m.queue.is_empty();
        m.received = end_offset;
        if !d.body.is_empty() {
            m.queue.push_back(d.body);
            self.recv.buffered += len;
        }
        m.ended |= d.end;
        if was_empty && (len > 0 || d.end) {
            self.events.push_back(Event::Readable {
                id: MessageId(d.id),
            });
        }
        Ok(())
    }

    /// Fails an incoming message on this side and tells the sender to stop.
    pub(super) fn fail_incoming(&mut self, id: u64, error: MessageError) {
        self.control.push_back(Frame::Cancel(Cancel {
            id,
            side: CancelSide::Receiver,
            code: error.code(),
        }));
        self.reset_incoming(id, error);
    }

    /// Drops an incoming message, returns its credit, and reports `Reset`.
    pub(in crate::connection) fn reset_incoming(&mut self, id: u64, error: MessageError) {
        if self.remove_incoming(id) {
            self.events.push_back(Event::Reset {
                id: MessageId(id),
                error,
            });
            // After the event: a close it completes must not report Closed first.
            self.maybe_finish_close();
        }
    }

    /// The peer cancelled one of its messages (CANCEL from the sender side). If the body
    /// was already complete the message is gone here, but the application may still be
    /// working on it (a request's handler), so it hears of it too.
    ///
    /// Reported once: not for a message that already failed, was refused or stopped
    /// here (it was reported then, or the application gave up on it itself), nor for a
    /// serial FRAME_LOST of a message no longer held (a message that lost a frame was
    /// never delivered, so its end was already reported).
    pub(in crate::connection) fn peer_abandoned(&mut self, id: u64, error: MessageError) {
        let known = self.remove_incoming(id)
            || (error != MessageError::FrameLost && self.recv.take_completed(id));
        if known {
            self.events.push_back(Event::Reset {
                id: MessageId(id),
                error,
            });
        }
        self.maybe_finish_close();
    }

    pub(super) fn remove_incoming(&mut self, id: u64) -> bool {
        let Some(m) = self.recv.messages.remove(id) else {
            return false;
        };
        let buffered = m.buffered();
        self.recv.buffered -= buffered;
        self.recv.done_count += 1;
        true
    }
}
