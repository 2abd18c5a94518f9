//! Messages handed to the Python codec: heads, starts, refusals, and refilling the
//! codec from the bodies written so far.

use super::*;

impl LegacyWire {
    /// The codec head for a native head with a known body length.
    pub(super) fn outgoing_head(
        &self,
        head: &MessageHead,
        len: u64,
    ) -> Result<OutgoingHead, SendError> {
        let headers = Headers::decode(&head.metadata).unwrap_or_else(|_| {
            // Not in header layout: pass the block as one opaque header.
            let mut h = Headers::new();
            if !head.metadata.is_empty() {
                h.insert("metadata", head.metadata.clone());
            }
            h
        });
        let mut out = match head.reply_to {
            Some(to) => {
                let legacy = self
                    .answerable
                    .get(&to.0)
                    .copied()
                    .ok_or(SendError::NotAnswerable(LId(to.0)))?;
                let mut h = OutgoingHead::response(legacy, len);
                if let Some(r) = &head.route {
                    h = h.with_route(r.clone());
                }
                h
            }
            None => match headers.get_str(HEADER_RESPOND_TO) {
                Some(mid) => {
                    let mut h = OutgoingHead::response_to_python_id(mid, len);
                    if let Some(r) = &head.route {
                        h = h.with_route(r.clone());
                    }
                    h
                }
                None => {
                    let mut h = OutgoingHead::request(head.route.clone().unwrap_or_default(), len);
                    if let Some(mid) = headers.get_str(HEADER_MESSAGE_ID) {
                        h = h.with_message_id(mid);
                    }
                    h
                }
            },
        };
        for (k, v) in headers.iter() {
            let (key, value) = match k.strip_prefix(HEADER_JSON_PREFIX) {
                // A typed `info` value: the header holds its JSON text.
                Some(key) => match serde_json::from_slice::<Value>(v) {
                    Ok(value) => (key, value),
                    Err(e) => {
                        return Err(SendError::InvalidHeader {
                            key: k.to_owned(),
                            reason: e.to_string(),
                        })
                    }
                },
                None => {
                    let value = match std::str::from_utf8(v) {
                        Ok(s) => Value::from(s),
                        Err(_) => Value::Array(v.iter().map(|b| Value::from(*b)).collect()),
                    };
                    (k, value)
                }
            };
            if key.starts_with("legacy.") || matches!(key, "route" | "message_id" | "is_response") {
                continue;
            }
            out = out.with_header(key, value);
        }
        Ok(out)
    }

    /// Announces a message to the codec; `Err` carries the reason for the monitor.
    pub(super) fn start_codec(
        &mut self,
        core: u64,
        head: &MessageHead,
        len: u64,
    ) -> Result<LId, SendError> {
        if len == 0 && !self.options.codec.allow_empty_bodies {
            // The request stays answerable: a non-empty reply may follow.
            return Err(SendError::EmptyBody);
        }
        let og = self.outgoing_head(head, len)?;
        let is_request = head.reply_to.is_none() && head_is_request(head);
        let legacy = self.conn.start_message(og)?;
        if let Some(to) = head.reply_to {
            self.forget_answerable(to.0);
        }
        if is_request {
            self.remember_request(legacy, core);
        } else {
            // One-way: the codec must not keep waiting for an answer either.
            self.conn.forget_request(legacy);
        }
        self.out_map.insert(legacy, core);
        Ok(legacy)
    }

    pub(super) fn refuse(&mut self, core: u64, e: SendError) {
        let code = match e {
            SendError::EmptyBody => EMPTY_BODY,
            SendError::NotAnswerable(_) => NOT_ANSWERABLE,
            _ => LEGACY_REFUSED,
        };
        self.monitor.update(|s| s.refused_sends += 1);
        self.monitor.record(LegacyError::Send(e));
        self.events.push_back(Event::Stopped {
            id: MessageId(core),
            error: MessageError::CancelledLocally(code),
        });
    }

    /// Moves queued body bytes into the codec as far as it takes them; finishes bodies.
    pub(super) fn refill(&mut self) {
        let mut done = Vec::new();
        for (&core, st) in self.outgoing.iter_mut() {
            let OutState::Started {
                legacy,
                pending,
                pending_bytes,
                finish_pending,
                finished,
                ..
            } = st
            else {
                continue;
            };
            while let Some(chunk) = pending.front_mut() {
                match self.conn.write(*legacy, &chunk[..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        *pending_bytes -= n;
                        if n == chunk.len() {
                            pending.pop_front();
                        } else {
                            let _ = chunk.split_to(n);
                            break;
                        }
                    }
                    Err(e) => {
                        done.push((core, Some(e)));
                        break;
                    }
                }
            }
            if pending.is_empty() && *finish_pending && !*finished {
                *finish_pending = false;
                *finished = true;
                if let Err(e) = self.conn.finish(*legacy) {
                    done.push((core, Some(e)));
                }
            }
        }
        for (core, err) in done {
            if let Some(OutState::Started { legacy, .. }) = self.outgoing.remove(&core) {
                self.out_map.remove(&legacy);
                let _ = self.conn.cancel(legacy);
                self.forget_request_legacy(legacy);
            }
            if let Some(e) = err {
                self.refuse(core, e);
            }
        }
    }

    pub(super) fn writable_events(&mut self) {
        let half = self.options.max_queued_per_message / 2;
        for (&core, st) in self.outgoing.iter_mut() {
            if let OutState::Started {
                blocked,
                pending_bytes,
                ..
            } = st
            {
                if *blocked && *pending_bytes <= half {
                    *blocked = false;
                    self.events.push_back(Event::Writable {
                        id: MessageId(core),
                    });
                }
            }
        }
    }

    // ----- closing -------------------------------------------------------------------
}
