//! Building one message frame: its START (or a void START), DATA or END, cut to the
//! credit and the batch room, body bytes taken off the message's queue without copying
//! when they lie in one chunk; then the bookkeeping and events that frame causes.

use super::*;

impl Connection {
    /// Builds and emits one frame of message `id`: its START (head only if
    /// `head_only`), or a DATA/END frame. The message is updated in place; it leaves
    /// the map only when this frame ends it.
    /// Returns whether the message left the map (this frame ended it, or it was void).
    pub(super) fn emit_message_frame(
        &mut self,
        id: u64,
        head_only: bool,
        buf: &mut Vec<u8>,
    ) -> bool {
        // Payload size: ours and the peer's limit, and what is left of the batch being
        // transmitted (less kind and length, at most 1 + 4 bytes).
        let frame_size = self
            .send_frame_size()
            .min(self.frame_room.saturating_sub(5));
        let send = &mut self.send;
        let window = send.peer_message_window;
        let conn_room = send.peer_max_data.saturating_sub(send.conn_sent);
        let Some(o) = send.messages.get_mut(id) else {
            return true;
        };
        if o.void {
            let urgency = o.urgency;
            send.messages.delete(id);
            remove_unstarted(&mut send.unstarted, id);
            let frame = Frame::Start(Start {
                id8: id as u8,
                urgency,
                fin: false,
                reply_to: None,
                route: Some(RouteField::Ref(0)),
                metadata: None,
                total_len: None,
                body: Bytes::new(),
            });
            let what = Sent::Message {
                id,
                body: 0,
                route_defined: 0,
            };
            self.emit(buf, &frame, what);
            self.maybe_finish_close();
            return true;
        }
        let send_buffer = self.config.send_buffer;
        if let Some(head) = o.head.as_mut() {
            // The START, encoded from the message's state by reference (no `Start` is
            // built, nothing of the head is moved): what it needs is read here, the
            // head itself goes with the state.
            remove_unstarted(&mut send.unstarted, id);
            let route = head.route.as_deref().map(|r| send.routes.field(r));
            let route_defined = match &route {
                Some(RouteField::Literal { intern_as, .. }) => *intern_as,
                _ => 0,
            };
            let metadata = (!head.metadata.is_empty()).then(|| core::mem::take(&mut head.metadata));
            let (urgency, reply_to) = (head.urgency, head.reply_to.map(|r| r.0));
            o.credit = window;
            // A body given whole has a known length even if none was announced.
            let total_len = o.total_len.or(o.finished.then_some(o.written));
            static EMPTY: Bytes = Bytes::new();
            let mut parts = StartParts {
                id8: id as u8,
                urgency,
                fin: false,
                reply_to,
                route: route.as_ref(),
                metadata: metadata.as_ref(),
                total_len,
                body: &EMPTY,
            };
            let mut n = 0;
            let mut head_len = None;
            if !head_only && o.queued > 0 {
                let len = parts.head_len();
                head_len = Some(len);
                let room = frame_size.saturating_sub(len);
                n = o
                    .queued
                    .min(room)
                    .min(o.credit as usize)
                    .min(conn_room as usize);
            }
            // The body: the whole front chunk (the usual case) is encoded where it lies
            // and let go afterwards; a part of it or of several is taken out first.
            let whole_chunk = n > 0 && o.queue.front().map(Bytes::len) == Some(n);
            let split = if n > 0 && !whole_chunk {
                o.queued -= n;
                Some(take_body_split(o, n))
            } else {
                None
            };
            let left = if whole_chunk { o.queued - n } else { o.queued };
            // The whole body in this frame (the usual small message): the frame's
            // length says it all, the length field is left out.
            let done = o.finished && left == 0;
            if done {
                if let (Some(len), Some(total)) = (head_len.as_mut(), parts.total_len) {
                    *len -= crate::varint::encoded_len(total);
                }
                parts.total_len = None;
            }
            parts.fin = done;
            if whole_chunk {
                if let Some(front) = o.queue.front() {
                    parts.body = front;
                }
            } else if let Some(b) = &split {
                parts.body = b;
            }
            let body_len = parts.body.len() as u64;
            let what = Sent::Message {
                id,
                body: body_len,
                route_defined,
            };
            let head_len = head_len.unwrap_or_else(|| parts.head_len());
            // `self.emitter()`, spelled out: the message state stays borrowed.
            let out = Emitter {
                splices: &mut self.splices,
                writer: &mut self.writer,
                history: &mut self.history,
                frames_sent: &mut self.frames_sent,
                tail_probe_at: &mut self.tail_probe_at,
                now: self.now,
                rtt: self.rtt,
            };
            out.emit(buf, &StartWithLen(&parts, head_len), what);
            drop(split);
            if whole_chunk {
                o.queued -= n;
                if !done {
                    o.queue.pop_front();
                }
            }
            let writable = SendState::book(o, body_len, done, send_buffer);
            if !done {
                o.head = None;
            }
            send.conn_sent += body_len;
            if done {
                // Drops the state with its body chunk.
                send.ended(id);
            }
            self.after_message_frame(id, done, writable);
            return done;
        }
        let head_len = Data::head_len(id, o.offset);
        let credit_room = (o.credit - o.offset.min(o.credit)) as usize;
        let n = o
            .queued
            .min(frame_size.saturating_sub(head_len))
            .min(credit_room)
            .min(conn_room as usize);
        let n = body_len_at_chunk_end(o, n);
        let offset = o.offset;
        let body = take_body(o, n);
        let data = Data {
            id,
            offset,
            end: o.finished && o.queued == 0,
            body,
        };
        let body_len = data.body.len() as u64;
        let done = data.end;
        let what = Sent::Message {
            id,
            body: body_len,
            route_defined: 0,
        };
        let writable = SendState::book(o, body_len, done, send_buffer);
        send.conn_sent += body_len;
        if done {
            send.ended(id);
        }
        self.emit(buf, &data, what);
        drop(data);
        self.after_message_frame(id, done, writable);
        done
    }

    /// Reports message `id` fully sent.
    #[inline]
    pub(super) fn report_sent(&mut self, id: u64) {
        if !self.send.sent_ranges {
            self.events.push_back(Event::Sent { id: MessageId(id) });
            return;
        }
        // Extends the range reported last if nothing came after it; events keep their
        // order either way.
        if let Some(Event::SentRange { first, count }) = self.events.back_mut() {
            if first.0 + *count == id {
                *count += 1;
                return;
            }
        }
        self.events.push_back(Event::SentRange {
            first: MessageId(id),
            count: 1,
        });
    }

    /// Events and close progress after a message frame went out.
    #[inline]
    pub(super) fn after_message_frame(&mut self, id: u64, done: bool, writable: bool) {
        if done {
            self.report_sent(id);
            self.maybe_finish_close();
        } else if writable {
            self.events.push_back(Event::Writable { id: MessageId(id) });
        }
    }
}

impl SendState {
    /// Books a frame of `body_len` body bytes of message `id` (held in `o`) as sent;
    /// whether the message became writable again. If the frame ended it (`done`),
    /// the caller then calls [`ended`](Self::ended).
    #[inline]
    fn book(o: &mut Outgoing, body_len: u64, done: bool, send_buffer: usize) -> bool {
        o.offset += body_len;
        let writable = !done && o.blocked && o.queued <= send_buffer / 2;
        if writable {
            o.blocked = false;
        }
        writable
    }

    /// Forgets fully sent message `id`, remembering it as recently sent.
    #[inline]
    pub(super) fn ended(&mut self, id: u64) {
        self.messages.delete(id);
        if self.recently_sent.len() >= RECENTLY_SENT {
            self.recently_sent.pop_front();
        }
        self.recently_sent.push_back(id);
    }
}

/// Takes `n` body bytes off the front of a message's queue, without copying when they
/// lie in one chunk.
#[inline]
fn take_body(o: &mut Outgoing, n: usize) -> Bytes {
    if n == 0 {
        return Bytes::new();
    }
    o.queued -= n;
    let Some(front) = o.queue.front_mut() else {
        return Bytes::new();
    };
    if front.len() == n {
        // The common case, a whole chunk: moved, not split (and inlined, so that the
        // chunk moves through registers rather than a returned copy).
        return o.queue.pop_front().unwrap_or_default();
    }
    take_body_split(o, n)
}

/// Chunks at least this long end a DATA frame rather than be copied together with the
/// next one: past a few KiB, a copy costs more than the extra frame header.
const CHUNK_OWN_FRAME: usize = 4096;

/// The body length of a DATA frame allowed `n` bytes: `n`, or less so that the frame
/// ends where the front chunk ends, when it would otherwise copy a large chunk (the
/// front one or the next) into a buffer of its own. Streamed bodies arrive in large
/// pieces that frames rarely divide evenly; small pieces are still coalesced.
#[inline]
fn body_len_at_chunk_end(o: &Outgoing, n: usize) -> usize {
    let Some(front) = o.queue.front() else {
        return n;
    };
    if front.len() >= n {
        return n;
    }
    let next_is_large = o.queue.second().is_some_and(|c| c.len() >= CHUNK_OWN_FRAME);
    if front.len() >= CHUNK_OWN_FRAME || next_is_large {
        front.len()
    } else {
        n
    }
}

/// [`take_body`] when the frame takes part of a chunk or several.
#[cold]
fn take_body_split(o: &mut Outgoing, n: usize) -> Bytes {
    let Some(front) = o.queue.front_mut() else {
        return Bytes::new();
    };
    if front.len() > n {
        return front.split_to(n);
    }
    let mut out = BytesMut::with_capacity(n);
    while out.len() < n {
        let Some(front) = o.queue.front_mut() else {
            break;
        };
        let take = (n - out.len()).min(front.len());
        out.extend_from_slice(&front.split_to(take));
        if front.is_empty() {
            o.queue.pop_front();
        }
    }
    out.freeze()
}
