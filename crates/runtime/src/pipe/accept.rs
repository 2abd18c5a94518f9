//! The accept queue: messages the driver hands to the application's `accept` calls.
//!
//! One sender (the driver), any number of receivers (tasks calling
//! [`Pipe::accept`](super::Pipe::accept) on clones of one pipe). The driver hands
//! over the messages of a dispatch round with one lock and one round of wake-ups; an
//! `accept` takes one with one lock. It replaced a tokio `Mutex` around an unbounded
//! `mpsc` of per-round `Vec`s, which cost an allocation per round and about a thirtieth
//! of a small round trip's instructions.
//!
//! Waiting receivers are all woken when messages arrive or the queue ends; those that
//! find nothing wait again. So a receiver dropped while waiting costs one spurious
//! wake-up of its task at most, never a lost one for another receiver.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::message::IncomingMessage;

struct Shared {
    state: Mutex<State>,
    /// Every receiver is gone: the driver stops handing over. Outside the lock, as
    /// the driver asks for every message.
    abandoned: AtomicBool,
}

struct State {
    ready: VecDeque<IncomingMessage>,
    /// The driver is done handing over: receivers get `None` once `ready` is empty.
    ended: bool,
    waiting: Vec<Waker>,
}

/// Queue capacity (in messages, ~170 bytes each) past which a drained queue gives
/// its memory back. Well above what a steady stream of small messages keeps queued:
/// at 1 024 the queue was freed and regrown every few rounds of the pipelined
/// benchmark, +180 instructions per message.
const KEEP_CAPACITY: usize = 16 * 1024;

impl State {
    /// Frees the memory of an unusual burst of queued messages once they are all
    /// taken, so a long-lived connection does not keep it.
    #[inline]
    fn release_burst(&mut self) {
        if self.ready.is_empty() && self.ready.capacity() > KEEP_CAPACITY {
            self.ready = VecDeque::new();
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // Nothing panics while holding the lock; a poisoned one is still consistent.
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The driver's end. Dropping it ends the queue.
pub(crate) struct AcceptSender {
    shared: Arc<Shared>,
    /// Swapped with `State::waiting` to wake receivers outside the lock; kept so that
    /// neither list allocates again.
    to_wake: Vec<Waker>,
}

/// The application's end, shared by the clones of a [`Pipe`](super::Pipe). Dropping
/// it drops the messages still queued (their bodies tell the peer if need be).
pub(crate) struct AcceptReceiver {
    shared: Arc<Shared>,
}

/// A new accept queue.
pub(crate) fn accept_queue() -> (AcceptSender, AcceptReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            ready: VecDeque::new(),
            ended: false,
            waiting: Vec::new(),
        }),
        abandoned: AtomicBool::new(false),
    });
    (
        AcceptSender {
            shared: shared.clone(),
            to_wake: Vec::new(),
        },
        AcceptReceiver { shared },
    )
}

impl AcceptSender {
    /// Whether no receiver is left to take messages.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.shared.abandoned.load(Ordering::Acquire)
    }

    /// Queues all of `batch` (left empty, its capacity kept for the next round) and
    /// wakes the waiting receivers. Without receivers the messages are dropped.
    pub(crate) fn hand_over(&mut self, batch: &mut Vec<IncomingMessage>) {
        {
            let mut s = lock(&self.shared);
            // Checked under the lock: a receiver dropped meanwhile has emptied `ready`.
            if !self.shared.abandoned.load(Ordering::Acquire) {
                s.ready.extend(batch.drain(..));
            }
            std::mem::swap(&mut s.waiting, &mut self.to_wake);
        }
        // Dropped (if abandoned) and woken outside the lock.
        batch.clear();
        for w in self.to_wake.drain(..) {
            w.wake();
        }
    }
}

impl Drop for AcceptSender {
    fn drop(&mut self) {
        let waiting = {
            let mut s = lock(&self.shared);
            s.ended = true;
            std::mem::take(&mut s.waiting)
        };
        for w in waiting {
            w.wake();
        }
    }
}

impl AcceptReceiver {
    /// The next message, waiting for one; `None` once the queue has ended and is empty.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<IncomingMessage>> {
        let mut s = lock(&self.shared);
        if let Some(m) = s.ready.pop_front() {
            s.release_burst();
            return Poll::Ready(Some(m));
        }
        if s.ended {
            return Poll::Ready(None);
        }
        if !s.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            s.waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Moves up to `max` queued messages into `out`, waiting for the first; `Ready(0)`
    /// once the queue has ended and is empty.
    pub(crate) fn poll_many(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<IncomingMessage>,
        max: usize,
    ) -> Poll<usize> {
        let mut s = lock(&self.shared);
        let n = s.ready.len().min(max);
        if n > 0 {
            out.extend(s.ready.drain(..n));
            s.release_burst();
            return Poll::Ready(n);
        }
        if s.ended || max == 0 {
            return Poll::Ready(0);
        }
        if !s.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            s.waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for AcceptReceiver {
    fn drop(&mut self) {
        let rest = {
            let mut s = lock(&self.shared);
            self.shared.abandoned.store(true, Ordering::Release);
            std::mem::take(&mut s.ready)
        };
        drop(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::test_waker::CountingWaker;

    #[test]
    fn an_empty_queue_waits_and_an_ended_one_says_so() {
        let (mut tx, rx) = accept_queue();
        let (count, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_next(&mut cx).is_pending());
        // Polled again by the same task: registered once, woken once.
        assert!(rx.poll_next(&mut cx).is_pending());
        tx.hand_over(&mut Vec::new());
        assert_eq!(count.count(), 1);
        assert!(rx.poll_next(&mut cx).is_pending());
        drop(tx);
        assert_eq!(count.count(), 2);
        assert!(matches!(rx.poll_next(&mut cx), Poll::Ready(None)));
        let mut out = Vec::new();
        assert_eq!(rx.poll_many(&mut cx, &mut out, 8), Poll::Ready(0));
    }

    #[test]
    fn every_waiting_receiver_is_woken() {
        let (mut tx, rx) = accept_queue();
        let (a, wa) = CountingWaker::new();
        let (b, wb) = CountingWaker::new();
        assert!(rx.poll_next(&mut Context::from_waker(&wa)).is_pending());
        let mut out = Vec::new();
        assert!(rx
            .poll_many(&mut Context::from_waker(&wb), &mut out, 4)
            .is_pending());
        tx.hand_over(&mut Vec::new());
        assert_eq!(a.count(), 1);
        assert_eq!(b.count(), 1);
    }

    #[test]
    fn a_dropped_receiver_abandons_the_queue() {
        let (tx, rx) = accept_queue();
        assert!(!tx.is_abandoned());
        drop(rx);
        assert!(tx.is_abandoned());
    }
}
