//! The core's events turned into the handles' world: incoming messages and replies,
//! sends finished or failed, credit for writers, the connection's state.

use std::sync::Arc;

use super::super::error::PipeError;
use super::super::wire::Wire;
use super::Driver;
use netcore_core::{ErrorCode, Event};

impl<W: Wire> Driver<W> {
    pub(super) fn dispatch_events(&mut self) -> bool {
        let mut progress = false;
        while let Some(ev) = self.conn.poll_event() {
            progress = true;
            if !matches!(ev, Event::Sent { .. } | Event::SentRange { .. })
                || !self.batches.is_empty()
            {
                self.event_work = true;
            }
            self.handle_event(ev);
        }
        self.flush_accepted();
        self.sync_whole_delivery();
        progress
    }

    /// Messages `first..end` were fully sent: batch messages by their run, the
    /// others one by one.
    pub(super) fn messages_sent(&mut self, first: u64, end: u64) {
        let mut id = first;
        while id < end {
            if let Some(next) = self.batch_messages_sent(id, end) {
                id = next;
                continue;
            }
            if let Some(o) = self.outgoing.remove(&id) {
                o.shared.complete(Ok(()));
                if self.finished_out.len() >= FINISHED_OUT_KEPT {
                    self.finished_out.pop_front();
                }
                self.finished_out.push_back((id, Arc::downgrade(&o.shared)));
            }
            id += 1;
        }
    }

    pub(super) fn handle_event(&mut self, ev: Event) {
        match ev {
            Event::Connected(params) => {
                tracing::debug!(?params, "connected");
                self.state.send_modify(|s| s.connected = Some(params));
            }
            Event::Message { id, head, body } => self.incoming_whole(id, head, body),
            Event::Incoming { id, head } => self.incoming_message(id, head),
            Event::Readable { id } => self.pump(id.0),
            Event::Reset { id, error } => {
                if let Some(shared) = self.incoming.remove(&id.0) {
                    shared.finish(Err(PipeError::Message(error)));
                }
                // Arriving or finished, its abandon signal looks here.
                self.abandons.mark(id.0);
            }
            Event::Rejected { id, error } => {
                tracing::debug!(%id, %error, "refused an incoming message");
            }
            Event::Writable { id } => self.flush_pending(id.0),
            Event::Sent { id } => self.messages_sent(id.0, id.0 + 1),
            Event::SentRange { first, count } => {
                self.messages_sent(first.0, first.0.saturating_add(count))
            }
            Event::Stopped { id, error } => {
                if let Some(o) = self.outgoing.remove(&id.0) {
                    o.shared.complete(Err(PipeError::Message(error.clone())));
                } else if let Some(i) = self.finished_out.iter().rposition(|(f, _)| *f == id.0) {
                    // Lost after it was fully sent: its handle reported success too early.
                    if let Some((_, shared)) = self.finished_out.remove(i) {
                        if let Some(shared) = shared.upgrade() {
                            shared.complete(Err(PipeError::Message(error.clone())));
                        }
                    }
                } else if !self.runs.is_empty() || !self.done_runs.is_empty() {
                    self.batch_message_stopped(id.0, &error);
                }
                if let Some(r) = self.replies.remove(&id.0) {
                    let _ = r.send(Err(PipeError::Message(error)));
                }
            }
            Event::GoingAway { code, reason } => {
                tracing::debug!(%code, reason, "peer is going away");
                self.state.send_modify(|s| s.going_away = true);
                if !self.config.manual_close {
                    self.conn.close(ErrorCode::NO_ERROR, "peer closed");
                }
            }
            Event::Closed { error } => {
                match &error {
                    None => tracing::debug!("closed"),
                    Some(e) => tracing::debug!(error = %e, "closed"),
                }
                let err = PipeError::Closed(error.clone());
                for (_, o) in self.outgoing.drain() {
                    o.shared.complete(Err(err.clone()));
                }
                for (_, r) in self.replies.drain() {
                    let _ = r.send(Err(err.clone()));
                }
                for (_, b) in self.incoming.drain() {
                    b.finish(Err(err.clone()));
                }
                self.fail_batches(&err);
                self.flush_accepted();
                self.accept_tx = None;
                self.state.send_modify(|s| s.closed = Some(error));
            }
            _ => {}
        }
    }
}

/// Fully sent messages remembered for a late `Stopped`.
const FINISHED_OUT_KEPT: usize = 4096;
