//! The command queue from handles to their connection's driver.
//!
//! Many senders (every handle of the connection, from any thread), one receiver (the
//! driver). It replaced tokio's unbounded `mpsc`, whose per-command bookkeeping (a
//! semaphore, a block list, a cooperative-budget check and three moves of the
//! command) was about a twentieth of a small round trip's instructions. Here a send
//! is one uncontended lock and a push; the driver takes everything queued in one lock
//! by swapping the queue with an empty one of its own, then works through that
//! without locking.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::Command;

/// Queue capacity (in commands, ~150 bytes each) past which a drained queue gives its
/// memory back: well above a steady stream's (see `accept.rs` for what a low value
/// cost), so only an unusual burst is released.
const KEEP_CAPACITY: usize = 16 * 1024;

/// A handle's end of the queue. Cheap to clone.
#[derive(Clone)]
pub(crate) struct CommandSender {
    shared: Arc<Mutex<Shared>>,
}

/// The driver's end of the queue.
pub(crate) struct CommandQueue {
    shared: Arc<Mutex<Shared>>,
    /// Commands taken from `shared` and not handled yet.
    taken: VecDeque<Command>,
}

/// The driver has finished: the connection is gone.
#[derive(Debug)]
pub(crate) struct DriverGone;

struct Shared {
    queued: VecDeque<Command>,
    closed: bool,
    /// The driver's waker while it waits for a command (taken by the send that wakes it).
    waiting: Option<Waker>,
}

/// A new queue: the senders' end and the driver's.
pub(crate) fn command_queue() -> (CommandSender, CommandQueue) {
    let shared = Arc::new(Mutex::new(Shared {
        queued: VecDeque::new(),
        closed: false,
        waiting: None,
    }));
    (
        CommandSender {
            shared: shared.clone(),
        },
        CommandQueue {
            shared,
            taken: VecDeque::new(),
        },
    )
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Nothing panics while holding the lock; a poisoned one is still consistent.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for CommandSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSender").finish_non_exhaustive()
    }
}

impl CommandSender {
    /// Queues `cmd` for the driver; fails (dropping it) if the driver has finished.
    pub(crate) fn send(&self, cmd: Command) -> Result<(), DriverGone> {
        let waker = {
            let mut s = lock(&self.shared);
            if s.closed {
                return Err(DriverGone);
            }
            s.queued.push_back(cmd);
            s.waiting.take()
        };
        // Woken outside the lock: waking may unpark a worker thread (a system call).
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl CommandQueue {
    /// The next command; `Pending` (with `cx`'s waker registered) when there is none.
    /// Never ends: the driver holds a sender itself and stops on its own terms.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Command> {
        if let Some(cmd) = self.taken.pop_front() {
            return Poll::Ready(cmd);
        }
        if self.taken.capacity() > KEEP_CAPACITY {
            // A burst is over: do not keep its memory for the connection's lifetime
            // (the two halves trade buffers, so this bounds both).
            self.taken = VecDeque::new();
        }
        let mut s = lock(&self.shared);
        if s.queued.is_empty() {
            match &s.waiting {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => s.waiting = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        std::mem::swap(&mut s.queued, &mut self.taken);
        drop(s);
        self.taken.pop_front().map_or(Poll::Pending, Poll::Ready)
    }

    /// Refuses further commands (their sends fail) and returns those
    /// queued, for the driver to fail once it has finished.
    pub(crate) fn close(&mut self) -> VecDeque<Command> {
        let mut s = lock(&self.shared);
        s.closed = true;
        s.waiting = None;
        let mut rest = std::mem::take(&mut self.taken);
        rest.append(&mut s.queued);
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::test_waker::CountingWaker;
    use netcore_core::{ErrorCode, MessageId};

    fn stop(id: u64) -> Command {
        Command::Stop {
            id: MessageId(id),
            code: ErrorCode::CANCELLED,
        }
    }

    fn id_of(cmd: Command) -> u64 {
        match cmd {
            Command::Stop { id, .. } => id.0,
            _ => panic!("not a Stop command"),
        }
    }

    #[test]
    fn delivers_in_order_and_wakes_a_waiting_driver_once() {
        let (tx, mut rx) = command_queue();
        let (count, waker) = CountingWaker::new();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_recv(&mut cx).is_pending());
        for id in 1..=3 {
            assert!(tx.send(stop(id)).is_ok());
        }
        // One wake for the first command; the rest find the driver already woken.
        assert_eq!(count.count(), 1);
        let got: Vec<u64> = (0..3)
            .map(|_| match rx.poll_recv(&mut cx) {
                Poll::Ready(c) => id_of(c),
                Poll::Pending => 0,
            })
            .collect();
        assert_eq!(got, [1, 2, 3]);
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.send(stop(4)).ok();
        assert_eq!(count.count(), 2);
    }

    #[test]
    fn close_returns_what_was_queued_and_refuses_more() {
        let (tx, mut rx) = command_queue();
        tx.send(stop(1)).ok();
        tx.send(stop(2)).ok();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        // One taken into the driver's half, one left queued: both come back.
        assert!(matches!(
            rx.poll_recv(&mut cx),
            Poll::Ready(Command::Stop { .. })
        ));
        tx.send(stop(3)).ok();
        let rest: Vec<u64> = rx.close().into_iter().map(id_of).collect();
        assert_eq!(rest, [2, 3]);
        assert!(tx.send(stop(5)).is_err());
    }

    #[test]
    fn a_burst_does_not_keep_its_memory() {
        let (tx, mut rx) = command_queue();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let burst = 3 * KEEP_CAPACITY as u64;
        for round in 0..2 {
            for id in 0..burst {
                tx.send(stop(id)).ok();
            }
            let mut n = 0;
            while rx.poll_recv(&mut cx).is_ready() {
                n += 1;
            }
            assert_eq!(n, burst, "round {round}");
            assert!(rx.taken.capacity() <= KEEP_CAPACITY);
        }
        let queued = lock(&rx.shared).queued.capacity();
        assert!(queued <= KEEP_CAPACITY, "{queued}");
    }

    #[test]
    fn senders_on_other_threads_lose_nothing() {
        let (tx, mut rx) = command_queue();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        tx.send(stop(t * 1000 + i)).ok();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut seen = vec![false; 4000];
        while let Poll::Ready(c) = rx.poll_recv(&mut cx) {
            seen[id_of(c) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
