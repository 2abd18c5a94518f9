//! Wakers that remember they fired, so a driver poll can skip the sources that did not.
//!
//! A driver poll used to ask every source (commands, transport reads) for work each
//! time the task ran, though only one of them had woken it: on a small round trip the
//! polls that returned "nothing" were a tenth of the instructions. Each source is now
//! polled with a [`SourceWaker`] of its own, which records its wake-up before waking
//! the task; a source whose last poll registered that waker and which has not fired
//! since has nothing new and is skipped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

/// One source of a driver's work (the command channel, transport reads): the waker it
/// is polled with and whether its last poll found it empty.
#[derive(Debug)]
pub(super) struct Source {
    shared: Arc<SourceWaker>,
    waker: Waker,
    /// The last poll left it waiting on `waker` (empty, or `Pending`).
    pub(super) settled: bool,
}

impl Source {
    pub(super) fn new() -> Source {
        let (shared, waker) = SourceWaker::new();
        Source {
            shared,
            waker,
            settled: false,
        }
    }

    /// Points its waker at the task being polled.
    pub(super) fn set_task(&self, task: &Waker) {
        self.shared.set_task(task);
    }

    /// Whether it may have work: not found empty since its last poll, or woken since.
    pub(super) fn needs_poll(&self) -> bool {
        !self.settled || self.shared.take_woken()
    }

    /// Its waker, taken out while the driver polls it (the loop needs the driver
    /// whole); put back with [`put_waker`](Self::put_waker). Not cloned: that would
    /// cost two atomic operations per poll.
    pub(super) fn take_waker(&mut self) -> Waker {
        std::mem::replace(&mut self.waker, Waker::noop().clone())
    }

    pub(super) fn put_waker(&mut self, waker: Waker) {
        self.waker = waker;
    }
}

/// Wakes the driver's task and records that its source fired.
#[derive(Debug)]
struct SourceWaker {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl SourceWaker {
    /// A source waker and the [`Waker`] to poll its source with.
    fn new() -> (Arc<SourceWaker>, Waker) {
        let s = Arc::new(SourceWaker {
            woken: AtomicBool::new(false),
            task: Mutex::new(None),
        });
        let waker = Waker::from(s.clone());
        (s, waker)
    }

    /// Points it at the task being polled (the same task's waker is kept).
    fn set_task(&self, task: &Waker) {
        let mut slot = self.task.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(w) if w.will_wake(task) => {}
            _ => *slot = Some(task.clone()),
        }
    }

    /// Whether it fired since the last call.
    fn take_woken(&self) -> bool {
        self.woken.swap(false, Ordering::AcqRel)
    }
}

impl Wake for SourceWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Recorded before the task is woken, so the poll it causes sees it.
        self.woken.store(true, Ordering::Release);
        let slot = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = &*slot {
            w.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::test_waker::CountingWaker;

    #[test]
    fn records_its_wake_and_forwards_it_to_the_task() {
        let (task, task_waker) = CountingWaker::new();
        let (source, waker) = SourceWaker::new();
        assert!(!source.take_woken());
        // Before a task is set a wake is still recorded.
        waker.wake_by_ref();
        assert!(source.take_woken());
        source.set_task(&task_waker);
        waker.wake_by_ref();
        // By value, as the I/O driver wakes a waker it took out.
        let taken = waker.clone();
        taken.wake();
        assert_eq!(task.count(), 2);
        assert!(source.take_woken());
        assert!(!source.take_woken());
    }
}
