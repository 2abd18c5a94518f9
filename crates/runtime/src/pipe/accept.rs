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

use super::body::Abandons;
use super::message::IncomingMessage;

/// The messages of one hand-over, in order.
pub(crate) type Round = VecDeque<IncomingMessage>;

struct Shared {
    state: Mutex<State>,
    /// Every receiver is gone: the driver stops handing over. Outside the lock, as
    /// the driver asks for every message.
    abandoned: AtomicBool,
    /// The connection's record of abandoned messages, attached to each message as an
    /// application takes it (`IncomingBody::attach_abandons`).
    abandons: Arc<Abandons>,
}

struct State {
    /// The hand-overs not taken yet, oldest first, each kept as the driver built it:
    /// an `accept_many` into an empty `Vec` takes a whole round by swapping buffers
    /// instead of moving each message (~190 bytes) twice between the two tasks'
    /// memory, which showed when the driver and the application run on two CPUs.
    ready: VecDeque<Round>,
    /// Messages in `ready`.
    len: usize,
    /// Emptied buffers for the driver's next rounds (their allocations reused).
    spare: Vec<Round>,
    /// The driver is done handing over: receivers get `None` once `ready` is empty.
    ended: bool,
    waiting: Vec<Waker>,
}

/// Emptied round buffers kept for reuse. A buffer holds at most `ACCEPT_BATCH_MAX`
/// messages from the driver or what an application's `accept_many` asked for.
const SPARE_ROUNDS: usize = 4;

/// A buffer's capacity (in messages) past which it is freed rather than kept.
const KEEP_CAPACITY: usize = 4096;

impl State {
    /// Keeps `round` (emptied) for reuse unless enough are kept or it is large.
    #[inline]
    fn recycle(&mut self, mut round: Round) {
        if self.spare.len() < SPARE_ROUNDS && round.capacity() <= KEEP_CAPACITY {
            round.clear();
            self.spare.push(round);
        }
    }

    /// The oldest message.
    fn pop(&mut self) -> Option<IncomingMessage> {
        let front = self.ready.front_mut()?;
        let m = front.pop_front();
        if front.is_empty() {
            if let Some(r) = self.ready.pop_front() {
                self.recycle(r);
            }
        }
        if m.is_some() {
            self.len -= 1;
        }
        m
    }

    /// Moves up to `max` of the oldest messages into `out`; how many.
    fn take_into(&mut self, out: &mut Vec<IncomingMessage>, max: usize) -> usize {
        let want = self.len.min(max);
        let mut taken = 0;
        if out.is_empty() && self.ready.front().is_some_and(|r| r.len() <= want) {
            // The oldest round into an empty `out`: swap the buffers (`Vec::from`
            // moves nothing when the round starts at its buffer's beginning, as a
            // round the driver filled from empty does) and stop there even if more
            // rounds wait: appending them would copy every message (~190 bytes) once
            // more, a fifth of a small message's receiving cost when the queue is deep.
            if let Some(round) = self.ready.pop_front() {
                taken = round.len();
                let old = std::mem::replace(out, Vec::from(round));
                self.recycle(Round::from(old));
                self.len -= taken;
                return taken;
            }
        } else if out.is_empty() && out.capacity() < want {
            // A new buffer rather than `reserve`: growing would copy the old one's
            // (stale) bytes too.
            *out = Vec::with_capacity(want);
        } else {
            out.reserve(want);
        }
        while taken < max {
            let Some(front) = self.ready.front_mut() else {
                break;
            };
            let k = front.len().min(max - taken);
            out.extend(front.drain(..k));
            if front.is_empty() {
                if let Some(r) = self.ready.pop_front() {
                    self.recycle(r);
                }
            }
            taken += k;
        }
        self.len -= taken;
        taken
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
            len: 0,
            spare: Vec::new(),
            ended: false,
            waiting: Vec::new(),
        }),
        abandoned: AtomicBool::new(false),
        abandons: Arc::default(),
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
    /// The connection's record of abandoned messages.
    pub(crate) fn abandons(&self) -> &Arc<Abandons> {
        &self.shared.abandons
    }

    /// Whether no receiver is left to take messages.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.shared.abandoned.load(Ordering::Acquire)
    }

    /// Queues all of `round` as one hand-over (`round` is left empty, with a reused
    /// buffer when one is spare) and wakes the waiting receivers. Without receivers
    /// the messages are dropped.
    pub(crate) fn hand_over(&mut self, round: &mut Round) {
        let dropped = {
            let mut s = lock(&self.shared);
            // Checked under the lock: a receiver dropped meanwhile has emptied `ready`.
            let dropped = if round.is_empty() {
                None
            } else if self.shared.abandoned.load(Ordering::Acquire) {
                Some(std::mem::take(round))
            } else {
                // Room for a round like this one, so that the next rarely grows (a
                // grown buffer copies its old bytes); a spare too small is let go.
                let n = round.len();
                let next = match s.spare.pop() {
                    Some(spare) if spare.capacity() >= n => spare,
                    _ => Round::with_capacity(n),
                };
                s.len += n;
                s.ready.push_back(std::mem::replace(round, next));
                None
            };
            std::mem::swap(&mut s.waiting, &mut self.to_wake);
            dropped
        };
        // Dropped (if abandoned) and woken outside the lock.
        drop(dropped);
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
        if let Some(mut m) = s.pop() {
            drop(s);
            m.body.attach_abandons(&self.shared.abandons);
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
        if s.len > 0 && max > 0 {
            let before = out.len();
            let n = s.take_into(out, max);
            drop(s);
            for m in &mut out[before..] {
                m.body.attach_abandons(&self.shared.abandons);
            }
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
            s.len = 0;
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
        tx.hand_over(&mut Round::new());
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
        tx.hand_over(&mut Round::new());
        assert_eq!(a.count(), 1);
        assert_eq!(b.count(), 1);
    }

    fn message(id: u64) -> IncomingMessage {
        use crate::pipe::body::IncomingBody;
        use netcore_core::{MessageHead, MessageId};
        IncomingMessage {
            id: MessageId(id),
            head: MessageHead::default(),
            connection: crate::pipe::ConnectionId(0),
            body: IncomingBody::whole(MessageId(id), None, None),
        }
    }

    fn round(ids: std::ops::Range<u64>) -> Round {
        ids.map(message).collect()
    }

    fn ids(ms: &[IncomingMessage]) -> Vec<u64> {
        ms.iter().map(|m| m.id.0).collect()
    }

    #[test]
    fn messages_keep_their_order_however_they_are_taken() {
        let (mut tx, rx) = accept_queue();
        let (_, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        let mut r = round(0..5);
        tx.hand_over(&mut r);
        assert!(r.is_empty());
        tx.hand_over(&mut round(5..8));
        tx.hand_over(&mut Round::new());
        tx.hand_over(&mut round(8..20));
        // One at a time, then part of a round, then a whole round swapped into an
        // empty `out`, then one taken into an `out` already holding messages.
        let Poll::Ready(Some(m)) = rx.poll_next(&mut cx) else {
            panic!("a message is queued")
        };
        assert_eq!(m.id.0, 0);
        let mut out = Vec::new();
        assert_eq!(rx.poll_many(&mut cx, &mut out, 2), Poll::Ready(2));
        assert_eq!(ids(&out), [1, 2]);
        out.clear();
        // Into an empty `out`, a call stops at the end of a round (its buffer swapped
        // in, no message copied): the rest of the first round, then the second.
        assert_eq!(rx.poll_many(&mut cx, &mut out, 5), Poll::Ready(2));
        assert_eq!(ids(&out), [3, 4]);
        // Into an `out` holding messages, they are appended across rounds.
        assert_eq!(rx.poll_many(&mut cx, &mut out, 2), Poll::Ready(2));
        assert_eq!(ids(&out), [3, 4, 5, 6]);
        out.clear();
        assert_eq!(rx.poll_many(&mut cx, &mut out, 5), Poll::Ready(1));
        assert_eq!(ids(&out), [7]);
        out.clear();
        assert_eq!(rx.poll_many(&mut cx, &mut out, 100), Poll::Ready(12));
        assert_eq!(ids(&out), (8..20).collect::<Vec<_>>());
        tx.hand_over(&mut round(20..23));
        assert_eq!(rx.poll_many(&mut cx, &mut out, 100), Poll::Ready(3));
        assert_eq!(ids(&out[12..]), [20, 21, 22]);
        assert!(rx.poll_next(&mut cx).is_pending());
        // Spare buffers are reused, and no more than a few are kept.
        for i in 0..20 {
            tx.hand_over(&mut round(100 * i..100 * i + 3));
        }
        let mut out = Vec::new();
        let mut taken = Vec::new();
        while let Poll::Ready(n @ 1..) = rx.poll_many(&mut cx, &mut out, 1000) {
            assert_eq!(n, 3, "one round per call into an empty `out`");
            taken.extend(ids(&out));
            out.clear();
        }
        assert_eq!(taken.len(), 60);
        assert_eq!(taken[..4], [0, 1, 2, 100]);
        assert!(lock(&rx.shared).spare.len() <= SPARE_ROUNDS);
        assert_eq!(lock(&rx.shared).len, 0);
    }

    #[test]
    fn taken_messages_see_the_connections_abandons() {
        let (mut tx, rx) = accept_queue();
        let (_, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        tx.hand_over(&mut round(0..2));
        tx.hand_over(&mut round(2..4));
        let Poll::Ready(Some(one)) = rx.poll_next(&mut cx) else {
            panic!("a message is queued")
        };
        let mut out = Vec::new();
        assert_eq!(rx.poll_many(&mut cx, &mut out, 8), Poll::Ready(1));
        assert_eq!(rx.poll_many(&mut cx, &mut out, 8), Poll::Ready(2));
        let signals: Vec<_> = std::iter::once(&one)
            .chain(&out)
            .map(|m| m.abandon_signal())
            .collect();
        assert!(signals.iter().all(|s| !s.is_abandoned()));
        // What the driver marks (a CANCEL from the peer) reaches exactly that message.
        tx.abandons().mark(0);
        tx.abandons().mark(3);
        let abandoned: Vec<bool> = signals.iter().map(|s| s.is_abandoned()).collect();
        assert_eq!(abandoned, [true, false, false, true]);
    }

    #[test]
    fn a_round_handed_over_without_receivers_is_dropped() {
        let (mut tx, rx) = accept_queue();
        tx.hand_over(&mut round(0..3));
        drop(rx);
        let mut r = round(3..6);
        tx.hand_over(&mut r);
        assert!(r.is_empty());
        assert_eq!(lock(&tx.shared).len, 0);
        assert!(lock(&tx.shared).ready.is_empty());
    }

    #[test]
    fn a_dropped_receiver_abandons_the_queue() {
        let (tx, rx) = accept_queue();
        assert!(!tx.is_abandoned());
        drop(rx);
        assert!(tx.is_abandoned());
    }
}
