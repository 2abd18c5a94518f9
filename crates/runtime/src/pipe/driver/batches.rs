//! Batches in the driver: starting their messages as the core's queue has room, and
//! following them to completion with one shared state per batch.
//!
//! The messages a batch starts in one go get consecutive core ids, so the driver keeps
//! a *run* (first id, count, which are sent) instead of an entry per message.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use super::super::batch::BatchShared;
use super::super::error::PipeError;
use super::super::wire::Wire;
use super::Driver;
use netcore_core::{ErrorCode, MessageError, MessageHead, MessageId};

/// Messages of a batch not yet handed to the core (its queue was full).
pub(crate) struct PendingBatch {
    pub(super) items: VecDeque<(MessageHead, Bytes)>,
    pub(super) shared: Arc<BatchShared>,
}

/// Consecutive core ids of one batch, started together, not all fully sent yet.
pub(crate) struct BatchRun {
    first: u64,
    count: u64,
    /// Bit `i`: message `first + i` is resolved (sent or failed).
    done: Vec<u64>,
    left: u64,
    shared: Arc<BatchShared>,
}

impl BatchRun {
    pub(super) fn contains(&self, id: u64) -> bool {
        id >= self.first && id - self.first < self.count
    }

    /// Marks message `id` resolved; false if it already was.
    fn resolve(&mut self, id: u64) -> bool {
        let i = (id - self.first) as usize;
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if self.done[word] & bit != 0 {
            return false;
        }
        self.done[word] |= bit;
        self.left -= 1;
        true
    }

    fn unresolved(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.count)
            .filter(|i| self.done[(*i / 64) as usize] & (1u64 << (i % 64)) == 0)
            .map(|i| self.first + i)
    }
}

/// Fully sent runs remembered for a loss reported afterwards (serial profile).
const DONE_RUNS_KEPT: usize = 64;

impl<W: Wire> Driver<W> {
    /// Hands queued batch messages to the core while it takes them; true if any went.
    pub(super) fn start_batches(&mut self) -> bool {
        let mut progress = false;
        while let Some(batch) = self.batches.front_mut() {
            let shared = batch.shared.clone();
            let mut run: Option<BatchRun> = None;
            let mut blocked = false;
            while !batch.items.is_empty() {
                if self.conn.outgoing_room() == 0 {
                    // Retried once sent messages leave the core's queue.
                    blocked = true;
                    break;
                }
                let Some((head, body)) = batch.items.pop_front() else {
                    break;
                };
                match self.conn.send(head, body) {
                    Ok(MessageId(id)) => {
                        progress = true;
                        match &mut run {
                            Some(r) if r.first + r.count == id => r.count += 1,
                            _ => {
                                if let Some(r) = run.take() {
                                    self.runs.push_back(finish_run(r));
                                }
                                run = Some(BatchRun {
                                    first: id,
                                    count: 1,
                                    done: Vec::new(),
                                    left: 0,
                                    shared: shared.clone(),
                                });
                            }
                        }
                    }
                    Err(e) => {
                        let err = if self.conn.is_closed() {
                            PipeError::Closed(None)
                        } else {
                            PipeError::Start(e)
                        };
                        // The first failure decides the batch; the rest still go.
                        shared.complete(Err(err));
                        progress = true;
                        if self.conn.is_closed() {
                            batch.items.clear();
                        }
                    }
                }
            }
            if let Some(r) = run.take() {
                self.runs.push_back(finish_run(r));
            }
            if blocked {
                break;
            }
            self.batches.pop_front();
        }
        progress
    }

    /// Messages `id..end` were sent: those of the batch run holding `id` are resolved
    /// together, and the id after them returned; `None` if no run holds `id`.
    pub(super) fn batch_messages_sent(&mut self, id: u64, end: u64) -> Option<u64> {
        // The oldest run first: one range check, the usual case.
        let i = if self.runs.front().is_some_and(|r| r.contains(id)) {
            0
        } else {
            self.runs.iter().position(|r| r.contains(id))?
        };
        let run = &mut self.runs[i];
        let stop = end.min(run.first + run.count);
        let newly = (id..stop).filter(|&m| run.resolve(m)).count() as u64;
        if newly > 0 {
            run.shared.messages_sent(newly);
        }
        self.retire_run_if_done(i);
        Some(stop)
    }

    /// A `Stopped` for an id no single send owns: fails its batch, even one whose
    /// messages were all reported sent (serial profile: a frame lost afterwards).
    pub(super) fn batch_message_stopped(&mut self, id: u64, error: &MessageError) {
        let err = PipeError::Message(error.clone());
        if let Some(i) = self.runs.iter().position(|r| r.contains(id)) {
            let run = &mut self.runs[i];
            if run.resolve(id) {
                run.shared.complete(Err(err));
            }
            self.retire_run_if_done(i);
        } else if let Some(shared) = self
            .done_runs
            .iter()
            .rev()
            .find(|(first, count, _)| id >= *first && id - first < *count)
            .and_then(|(_, _, w)| w.upgrade())
        {
            shared.complete(Err(err));
        }
    }

    fn retire_run_if_done(&mut self, i: usize) {
        if self.runs[i].left > 0 {
            return;
        }
        if let Some(run) = self.runs.remove(i) {
            if self.done_runs.len() >= DONE_RUNS_KEPT {
                self.done_runs.pop_front();
            }
            self.done_runs
                .push_back((run.first, run.count, Arc::downgrade(&run.shared)));
        }
    }

    /// Cancels what of a batch is not fully sent; the peer hears of those it saw start.
    pub(super) fn cancel_batch(&mut self, shared: &Arc<BatchShared>) {
        self.batches.retain(|b| !Arc::ptr_eq(&b.shared, shared));
        let mut i = 0;
        while i < self.runs.len() {
            if !Arc::ptr_eq(&self.runs[i].shared, shared) {
                i += 1;
                continue;
            }
            if let Some(run) = self.runs.remove(i) {
                for id in run.unresolved() {
                    self.conn.cancel(MessageId(id), ErrorCode::CANCELLED);
                }
            }
        }
        if shared.result().is_none() {
            // A batch already complete stays as it ended: nothing was left to cancel.
            shared.complete(Err(PipeError::Message(MessageError::CancelledLocally(
                ErrorCode::CANCELLED,
            ))));
        }
    }

    /// The connection ended: every batch not complete fails with `err`.
    pub(super) fn fail_batches(&mut self, err: &PipeError) {
        for b in self.batches.drain(..) {
            b.shared.complete(Err(err.clone()));
        }
        for r in self.runs.drain(..) {
            r.shared.complete(Err(err.clone()));
        }
    }
}

fn finish_run(mut r: BatchRun) -> BatchRun {
    r.done = vec![0; (r.count as usize).div_ceil(64)];
    r.left = r.count;
    r
}

/// Late-loss memory of a finished run: first id, count, its batch.
pub(crate) type DoneRun = (u64, u64, Weak<BatchShared>);
