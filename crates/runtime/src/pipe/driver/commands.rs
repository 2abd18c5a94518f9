//! Commands from handles: starting messages, feeding streamed bodies to the core as
//! its buffers take them, cancelling, closing.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::super::error::PipeError;
use super::super::wire::Wire;
use super::{batches, Command, Driver, OutState};
use netcore_core::{ErrorCode, MessageError, MessageId, Urgency, WriteError};

impl<W: Wire> Driver<W> {
    pub(super) fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Start {
                head,
                body,
                shared,
                reply,
            } => {
                let mut head = head;
                if let Some(to) = head.reply_to {
                    // A reply at the default urgency takes its request's.
                    if let Some(u) = self.urgent_requests.remove(&to.0) {
                        if head.urgency == Urgency::DEFAULT {
                            head.urgency = u;
                        }
                    }
                }
                self.urgent_out |= head.urgency < Urgency::DEFAULT;
                let finished = body.is_some();
                let result = match body {
                    Some(b) => self.conn.send(head, b),
                    None => self.conn.start(head),
                };
                match result {
                    Ok(id) => {
                        shared.id.store(id.0, Ordering::Release);
                        if finished {
                            shared
                                .sent
                                .store(shared.total.unwrap_or(0), Ordering::Relaxed);
                        }
                        if let Some(r) = reply {
                            self.replies.insert(id.0, r);
                        }
                        self.outgoing.insert(
                            id.0,
                            OutState {
                                pending: VecDeque::new(),
                                finish_pending: false,
                                shared,
                            },
                        );
                    }
                    Err(e) => {
                        let err = if self.conn.is_closed() {
                            PipeError::Closed(None)
                        } else {
                            PipeError::Start(e)
                        };
                        if let Some(r) = reply {
                            let _ = r.send(Err(err.clone()));
                        }
                        shared.complete(Err(err));
                    }
                }
            }
            Command::Batch { items, shared } => {
                self.batches.push_back(batches::PendingBatch {
                    items: VecDeque::from(items),
                    shared,
                });
                self.start_batches();
            }
            Command::CancelBatch { shared } => self.cancel_batch(&shared),
            Command::Write { shared, data } => {
                let id = shared.id.load(Ordering::Acquire);
                if let Some(o) = self.outgoing.get_mut(&id) {
                    o.pending.push_back(data);
                    self.flush_pending(id);
                }
            }
            Command::Finish { shared } => {
                let id = shared.id.load(Ordering::Acquire);
                if let Some(o) = self.outgoing.get_mut(&id) {
                    o.finish_pending = true;
                    self.flush_pending(id);
                }
            }
            Command::Cancel { shared, code } => {
                let id = shared.id.load(Ordering::Acquire);
                if id == 0 {
                    // Never started (its start failed): nothing to tell anyone.
                    return;
                }
                // Also when already fully sent: the peer is told (its handler may run).
                self.conn.cancel(MessageId(id), code);
                let err = PipeError::Message(MessageError::CancelledLocally(code));
                if let Some(r) = self.replies.remove(&id) {
                    let _ = r.send(Err(err.clone()));
                }
                if let Some(o) = self.outgoing.remove(&id) {
                    o.shared.complete(Err(err));
                }
            }
            Command::ForgetReply { shared } => {
                self.replies.remove(&shared.id.load(Ordering::Acquire));
            }
            Command::Accepted => self.unpark(),
            Command::Resume { id } => self.pump(id.0),
            Command::Stop { id, code } => {
                if self.incoming.remove(&id.0).is_some() {
                    self.conn.stop(id, code);
                }
            }
            Command::Close { code, reason } => self.conn.close(code, &reason),
            Command::Abort { code, reason } => self.conn.abort(code, &reason),
        }
    }

    /// Hands a message's pending writes to the core as far as it takes them.
    pub(super) fn flush_pending(&mut self, id: u64) {
        let Some(o) = self.outgoing.get_mut(&id) else {
            return;
        };
        let budget = o.shared.budget.as_ref();
        while let Some(chunk) = o.pending.pop_front() {
            let len = chunk.len();
            match self.conn.write(MessageId(id), chunk.clone()) {
                Ok(n) => {
                    if let Some(b) = budget {
                        b.taken(n);
                    }
                    o.shared.sent.fetch_add(n as u64, Ordering::Relaxed);
                    if n < len {
                        o.pending.push_front(chunk.slice(n..));
                        return;
                    }
                }
                Err(WriteError::Blocked) => {
                    o.pending.push_front(chunk);
                    return;
                }
                Err(_) if self.conn.is_closed() => {
                    // The connection ended first; the Closed event (or the driver's exit)
                    // fails this message with the connection's error.
                    o.pending.push_front(chunk);
                    return;
                }
                Err(e) => {
                    let err = match e {
                        WriteError::Failed(m) => PipeError::Message(m),
                        other => PipeError::Io {
                            action: "write message body".into(),
                            source: Arc::new(std::io::Error::other(other.to_string())),
                        },
                    };
                    self.conn.cancel(MessageId(id), ErrorCode::INTERNAL_ERROR);
                    o.shared.complete(Err(err));
                    self.outgoing.remove(&id);
                    return;
                }
            }
        }
        if o.finish_pending {
            o.finish_pending = false;
            if let Err(e) = self.conn.finish(MessageId(id)) {
                if self.conn.is_closed() {
                    // Failed by the Closed event with the connection's error.
                    return;
                }
                let err = PipeError::Io {
                    action: "finish message body".into(),
                    source: Arc::new(std::io::Error::other(e.to_string())),
                };
                self.conn.cancel(MessageId(id), ErrorCode::INTERNAL_ERROR);
                o.shared.complete(Err(err));
                self.outgoing.remove(&id);
            }
        }
    }
}
