//! The outcome of an outgoing message or batch, set by the driver and awaited by
//! handles.
//!
//! Pending until the driver completes it; then `Ok` or the error that ended it. An
//! atomic holds the state rather than a lock, since every message completes and nearly
//! all succeed: the mutex is touched only for errors.

use std::sync::atomic::{fence, AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

use super::error::PipeError;

const PENDING: u8 = 0;
const OK: u8 = 1;
const FAILED: u8 = 2;

/// Completion state shared by a handle and the driver.
#[derive(Debug)]
pub(crate) struct Completion {
    /// `PENDING`, `OK` or `FAILED` (then `error` holds why).
    state: AtomicU8,
    error: Mutex<Option<PipeError>>,
    done: Notify,
    /// Someone waits (or waited) in [`wait`](Self::wait): only then does completing
    /// take `done`'s lock to wake them, which most sends (nobody awaits a reply's
    /// handle) would otherwise pay for nothing.
    waited: AtomicBool,
}

impl Completion {
    pub(crate) fn new() -> Completion {
        Completion {
            state: AtomicU8::new(PENDING),
            error: Mutex::new(None),
            done: Notify::new(),
            waited: AtomicBool::new(false),
        }
    }

    /// Records the outcome and wakes the waiters; returns whether it changed.
    ///
    /// Success counts only while pending. A first error stays; an error after success
    /// replaces it, because on the serial profile a frame of a fully sent message can
    /// be reported lost afterwards.
    pub(crate) fn complete(&self, result: Result<(), PipeError>) -> bool {
        match result {
            Ok(()) => {
                if self
                    .state
                    .compare_exchange(PENDING, OK, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    return false;
                }
            }
            Err(e) => {
                let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
                if self.state.load(Ordering::Acquire) == FAILED {
                    return false;
                }
                *slot = Some(e);
                self.state.store(FAILED, Ordering::Release);
            }
        }
        // The fence pairs with the one in `wait`: it sets `waited` before reading the
        // state, this reads `waited` after writing the state, so one sees the other.
        fence(Ordering::SeqCst);
        if self.waited.load(Ordering::Relaxed) {
            self.done.notify_waiters();
        }
        true
    }

    /// The outcome, once there is one.
    pub(crate) fn result(&self) -> Option<Result<(), PipeError>> {
        match self.state.load(Ordering::Acquire) {
            PENDING => None,
            OK => Some(Ok(())),
            _ => {
                let e = self.error.lock().unwrap_or_else(|p| p.into_inner());
                Some(Err(e.clone().unwrap_or(PipeError::Closed(None))))
            }
        }
    }

    /// Waits for the outcome.
    pub(crate) async fn wait(&self) -> Result<(), PipeError> {
        loop {
            // Registered before the check, so a completion in between is not missed.
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.waited.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if let Some(r) = self.result() {
                return r;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_only_while_pending_and_a_first_error_stays() {
        let c = Completion::new();
        assert!(c.result().is_none());
        assert!(c.complete(Ok(())));
        assert!(!c.complete(Ok(())));
        assert!(matches!(c.result(), Some(Ok(()))));
        // A loss reported after success replaces it; a second error does not.
        assert!(c.complete(Err(PipeError::Closed(None))));
        assert!(!c.complete(Err(PipeError::TimedOut)));
        assert!(matches!(c.result(), Some(Err(PipeError::Closed(None)))));
    }

    #[tokio::test]
    async fn wait_returns_a_completion_from_another_task() {
        let c = std::sync::Arc::new(Completion::new());
        let d = c.clone();
        let waiter = tokio::spawn(async move { d.wait().await });
        tokio::task::yield_now().await;
        c.complete(Ok(()));
        assert!(matches!(waiter.await.unwrap(), Ok(())));
    }
}
