//! Events of the Python codec turned into the native ones: incoming messages, their
//! data, rejections, and the bookkeeping of who may answer whom.

use super::*;

impl LegacyWire {
    pub(super) fn on_codec_event(&mut self, ev: LEvent) {
        match ev {
            LEvent::MessageStarted { id, head } => self.on_started(id, head),
            LEvent::Data { id, data } => self.on_data(id, data),
            LEvent::MessageFinished { id } => {
                if let Some(core) = self.in_map.remove(&id) {
                    if let Some(s) = self.incoming.get_mut(&core) {
                        s.ended = true;
                        if s.buffered == 0 {
                            self.events.push_back(Event::Readable {
                                id: MessageId(core),
                            });
                        }
                    }
                }
            }
            LEvent::CancelledByPeer { id } => {
                if let Some(core) = self.in_map.remove(&id) {
                    self.drop_incoming(core);
                    self.forget_answerable(core);
                    self.events.push_back(Event::Reset {
                        id: MessageId(core),
                        error: MessageError::CancelledByPeer(ErrorCode::CANCELLED),
                    });
                }
            }
            LEvent::MessageRejected { head, error } => self.on_rejected(head, error),
            LEvent::MessageFailed { id, error } => {
                let mapped = map_message_error(&error);
                if let Some(core) = self.in_map.remove(&id) {
                    self.drop_incoming(core);
                    self.forget_answerable(core);
                    self.events.push_back(Event::Reset {
                        id: MessageId(core),
                        error: mapped,
                    });
                } else if let Some(core) = self.out_map.remove(&id) {
                    self.outgoing.remove(&core);
                    self.forget_request_legacy(id);
                    self.events.push_back(Event::Stopped {
                        id: MessageId(core),
                        error: mapped,
                    });
                } else {
                    self.internal.remove(&id);
                }
                if !matches!(error, LMessageError::Connection(_) | LMessageError::Closed) {
                    self.monitor.record(LegacyError::Message(error));
                }
            }
            LEvent::SendComplete { id } => {
                if self.internal.remove(&id) {
                    return;
                }
                if let Some(core) = self.out_map.remove(&id) {
                    self.outgoing.remove(&core);
                    self.events.push_back(Event::Sent {
                        id: MessageId(core),
                    });
                }
            }
            LEvent::ProtocolError(e) => {
                self.monitor.update(|s| s.protocol_errors += 1);
                self.monitor.record(LegacyError::Decode(e));
            }
            LEvent::ConnectionFailed(e) => {
                let err = map_decode_error(&e);
                self.monitor.record(LegacyError::Decode(e));
                self.enter_closed(Some(err));
            }
            other => tracing::debug!(event = ?other, "unhandled legacy event"),
        }
    }

    pub(super) fn on_started(&mut self, id: LId, head: IncomingHead) {
        // (`requests_order` keeps the stale entry; it is skipped or compacted later.)
        let reply_to = head.in_reply_to.and_then(|req| self.requests.remove(&req));
        if head.is_response && reply_to.is_none() {
            // A response to nothing we wait for: Python would route it as a request.
            let _ = self.conn.cancel(id);
            self.monitor.update(|s| s.unmatched_responses += 1);
            self.monitor.record(LegacyError::UnmatchedResponse {
                message_id: head.message_id,
            });
            return;
        }
        let core = self.alloc();
        let mut headers = Headers::new();
        for (k, v) in head.info.headers() {
            headers.insert(k, header_value(v));
        }
        if let Some(mid) = &head.message_id {
            headers.insert(HEADER_MESSAGE_ID, mid.clone());
        }
        headers.insert(HEADER_MISSION, head.extension.clone());
        if !head.is_response && head.message_id.is_some() {
            self.remember_answerable(core, id);
        }
        self.in_map.insert(id, core);
        self.incoming.insert(
            core,
            InState {
                legacy: id,
                chunks: VecDeque::new(),
                tail: Vec::new(),
                buffered: 0,
                ended: false,
            },
        );
        self.events.push_back(Event::Incoming {
            id: MessageId(core),
            head: MessageHead {
                route: Some(match head.route {
                    Some(r) if self.options.trim_route_slashes => r.trim_matches('/').into(),
                    r => r.unwrap_or_default().into(),
                }),
                metadata: headers.encode(),
                total_len: Some(head.length),
                reply_to: reply_to.map(MessageId),
                urgency: Default::default(),
            },
        });
    }

    pub(super) fn on_data(&mut self, id: LId, data: Vec<u8>) {
        let Some(&core) = self.in_map.get(&id) else {
            return;
        };
        let limit = self.options.max_buffered_incoming;
        while self.buffered + data.len() > limit {
            // Python cannot be slowed down: drop the message holding the most unread
            // bytes (counting this chunk), so one hog does not starve the others.
            let total = (self.buffered + data.len()) as u64;
            let victim = self
                .incoming
                .iter()
                .map(|(&c, s)| (s.buffered + if c == core { data.len() } else { 0 }, c))
                .max()
                .map_or(core, |(_, c)| c);
            self.overflow(victim, total, limit as u64);
            if victim == core || !self.incoming.contains_key(&core) {
                return;
            }
        }
        let Some(s) = self.incoming.get_mut(&core) else {
            return;
        };
        let was_empty = s.buffered == 0;
        s.buffered += data.len();
        self.buffered += data.len();
        if data.len() < SMALL_CHUNK {
            s.tail.extend_from_slice(&data);
            if s.tail.len() >= COALESCED_CHUNK {
                s.chunks.push_back(Bytes::from(std::mem::take(&mut s.tail)));
            }
        } else {
            if !s.tail.is_empty() {
                s.chunks.push_back(Bytes::from(std::mem::take(&mut s.tail)));
            }
            s.chunks.push_back(Bytes::from(data));
        }
        if was_empty {
            self.events.push_back(Event::Readable {
                id: MessageId(core),
            });
        }
    }

    /// Resets incoming message `core` because unread bodies reached the limit.
    pub(super) fn overflow(&mut self, core: u64, buffered: u64, limit: u64) {
        if let Some(s) = self.incoming.get(&core) {
            let legacy = s.legacy;
            if self.in_map.remove(&legacy).is_some() {
                let _ = self.conn.cancel(legacy);
            }
        }
        self.drop_incoming(core);
        self.forget_answerable(core);
        self.monitor.update(|s| s.buffer_overflows += 1);
        self.monitor
            .record(LegacyError::BufferFull { buffered, limit });
        self.events.push_back(Event::Reset {
            id: MessageId(core),
            error: MessageError::Limit(LimitExceeded {
                kind: LimitKind::MessageSize,
                limit,
                actual: buffered,
            }),
        });
    }

    pub(super) fn on_rejected(&mut self, head: IncomingHead, error: LMessageError) {
        self.monitor.update(|s| s.rejected += 1);
        let mapped = map_message_error(&error);
        if let Some(req) = head.in_reply_to {
            // The response to a request of ours was refused: fail that request.
            if let Some(core) = self.requests.remove(&req) {
                self.events.push_back(Event::Stopped {
                    id: MessageId(core),
                    error: mapped.clone(),
                });
            }
        } else if !head.is_response && self.options.answer_rejected {
            if let Some(mid) = &head.message_id {
                self.answer_error(mid, &mapped);
            }
        }
        self.monitor.record(LegacyError::Message(error));
    }

    /// Answers a refused Python request with `{"error": ..., "code": ...}`.
    pub(super) fn answer_error(&mut self, message_id: &str, error: &MessageError) {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), Value::from(error.to_string()));
        body.insert("code".into(), Value::from(error.code().to_string()));
        let text = netcore_legacy::json::dumps(&Value::Object(body));
        let head = OutgoingHead::response_to_python_id(message_id, text.len() as u64);
        let Ok(id) = self.conn.start_message(head) else {
            return;
        };
        // The JSON is far below `max_send_buffer`, so one write takes it all.
        if self.conn.write(id, text.as_bytes()) == Ok(text.len()) && self.conn.finish(id).is_ok() {
            self.internal.insert(id);
            self.monitor.update(|s| s.answered_rejected += 1);
        } else {
            let _ = self.conn.cancel(id);
        }
    }

    pub(super) fn drop_incoming(&mut self, core: u64) {
        if let Some(s) = self.incoming.remove(&core) {
            self.buffered -= s.buffered;
        }
    }

    pub(super) fn remember_answerable(&mut self, core: u64, legacy: LId) {
        let max = self.options.codec.max_answerable.max(1);
        while self.answerable.len() >= max {
            match self.answerable_order.pop_front() {
                Some(old) => {
                    self.answerable.remove(&old);
                }
                None => break,
            }
        }
        if self.answerable_order.len() >= 2 * max {
            let live = &self.answerable;
            self.answerable_order.retain(|i| live.contains_key(i));
        }
        self.answerable.insert(core, legacy);
        self.answerable_order.push_back(core);
    }

    pub(super) fn forget_answerable(&mut self, core: u64) {
        self.answerable.remove(&core);
    }

    pub(super) fn remember_request(&mut self, legacy: LId, core: u64) {
        let max = self.options.max_pending_requests.max(1);
        while self.requests.len() >= max {
            let Some(old) = self.requests_order.pop_front() else {
                break;
            };
            let Some(core) = self.requests.remove(&old) else {
                continue; // answered already
            };
            // The oldest request stops waiting; its caller learns it now.
            self.conn.forget_request(old);
            if self.out_map.remove(&old).is_some() {
                self.outgoing.remove(&core);
                let _ = self.conn.cancel(old);
            }
            self.events.push_back(Event::Stopped {
                id: MessageId(core),
                error: MessageError::CancelledLocally(ErrorCode::LIMIT_EXCEEDED),
            });
        }
        if self.requests_order.len() >= 2 * max {
            let live = &self.requests;
            self.requests_order.retain(|i| live.contains_key(i));
        }
        self.requests.insert(legacy, core);
        self.requests_order.push_back(legacy);
    }

    pub(super) fn forget_request_legacy(&mut self, legacy: LId) {
        if self.requests.remove(&legacy).is_some() {
            self.conn.forget_request(legacy);
        }
    }

    // ----- outgoing ------------------------------------------------------------------
}
