//! The scheduler: tasks after a delay, at an interval, with a priority among tasks due
//! at the same instant, each with a [`TaskHandle`] to cancel it. Built on tokio time
//! (one task sleeping until the next due time, no polling), so it follows a paused test
//! clock; it stops with its endpoint.
//!
//! Due times are kept at the timer's resolution (whole milliseconds), so tasks due in
//! the same millisecond count as simultaneous: they run one after another, highest
//! priority first. A task that takes long delays the ones after it: spawn long work
//! from the task.

use futures::future::BoxFuture;
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// When and how often a task runs.
///
/// ```
/// use netcore::Schedule;
/// use std::time::Duration;
/// // The seed's schedule(task, delay=5, interval=60):
/// let s = Schedule::after(Duration::from_secs(5)).repeat(Duration::from_secs(60));
/// assert_eq!(s.interval(), Some(Duration::from_secs(60)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    delay: Duration,
    interval: Option<Duration>,
    priority: i32,
}

impl Schedule {
    /// Once, after `delay`.
    ///
    /// ```
    /// let s = netcore::Schedule::after(std::time::Duration::from_secs(1));
    /// assert_eq!(s.interval(), None);
    /// ```
    pub fn after(delay: Duration) -> Schedule {
        Schedule {
            delay,
            ..Schedule::default()
        }
    }

    /// Now and then every `interval` (a zero interval is raised to 1 ms).
    ///
    /// ```
    /// let s = netcore::Schedule::every(std::time::Duration::from_secs(60));
    /// assert_eq!(s.delay(), std::time::Duration::ZERO);
    /// ```
    pub fn every(interval: Duration) -> Schedule {
        Schedule::default().repeat(interval)
    }

    /// Repeats every `interval` after the first run (a zero interval is raised to 1 ms).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let s = netcore::Schedule::after(Duration::from_secs(5)).repeat(Duration::from_secs(60));
    /// assert_eq!(s.delay(), Duration::from_secs(5));
    /// ```
    pub fn repeat(mut self, interval: Duration) -> Schedule {
        self.interval = Some(interval.max(Duration::from_millis(1)));
        self
    }

    /// Priority among tasks due at the same instant: higher runs first (default 0).
    ///
    /// ```
    /// let s = netcore::Schedule::default().priority(10);
    /// assert_eq!(s.priority_value(), 10);
    /// ```
    pub fn priority(mut self, priority: i32) -> Schedule {
        self.priority = priority;
        self
    }

    /// The delay before the first run.
    ///
    /// ```
    /// assert_eq!(netcore::Schedule::default().delay(), std::time::Duration::ZERO);
    /// ```
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The interval, for repeating tasks.
    ///
    /// ```
    /// assert_eq!(netcore::Schedule::default().interval(), None);
    /// ```
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// The priority.
    ///
    /// ```
    /// assert_eq!(netcore::Schedule::default().priority_value(), 0);
    /// ```
    pub fn priority_value(&self) -> i32 {
        self.priority
    }
}

type TaskFn = Box<dyn FnMut() -> BoxFuture<'static, ()> + Send>;

struct Task {
    f: TaskFn,
    schedule: Schedule,
    shared: Arc<TaskShared>,
}

#[derive(Debug, Default)]
struct TaskShared {
    cancelled: AtomicBool,
    runs: AtomicU64,
    done: AtomicBool,
}

/// A heap entry: earliest due first, then highest priority, then first scheduled.
#[derive(PartialEq, Eq)]
struct Due {
    at: Instant,
    priority: i32,
    id: u64,
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .at
            .cmp(&self.at)
            .then(self.priority.cmp(&other.priority))
            .then(other.id.cmp(&self.id))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

enum Cmd {
    Add(u64, Task),
    Cancel(u64),
    Shutdown,
}

/// Follows a scheduled task; [`cancel`](Self::cancel) stops it.
#[derive(Clone, Debug)]
pub struct TaskHandle {
    id: u64,
    shared: Arc<TaskShared>,
    tx: mpsc::UnboundedSender<Cmd>,
}

impl TaskHandle {
    /// Cancels the task: it never runs again (a run in progress finishes).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let s = netcore::Scheduler::new();
    /// let h = s.schedule(|| async {}, netcore::Schedule::after(std::time::Duration::from_secs(9)));
    /// h.cancel();
    /// assert!(h.is_cancelled());
    /// # }
    /// ```
    pub fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::SeqCst);
        let _ = self.tx.send(Cmd::Cancel(self.id));
    }

    /// Whether [`cancel`](Self::cancel) was called.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let s = netcore::Scheduler::new();
    /// let h = s.schedule(|| async {}, netcore::Schedule::default());
    /// assert!(!h.is_cancelled());
    /// # }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// How many times the task has run (to completion).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let s = netcore::Scheduler::new();
    /// let h = s.schedule(|| async {}, netcore::Schedule::default());
    /// assert_eq!(h.runs(), 0);
    /// # }
    /// ```
    pub fn runs(&self) -> u64 {
        self.shared.runs.load(Ordering::SeqCst)
    }

    /// Whether the task is over: a one-shot task that ran, or a cancelled task.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let s = netcore::Scheduler::new();
    /// let h = s.schedule(|| async {}, netcore::Schedule::default());
    /// h.cancel();
    /// assert!(h.is_finished());
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.is_cancelled() || self.shared.done.load(Ordering::SeqCst)
    }
}

/// Runs tasks on tokio time ([`Endpoint::scheduler`](crate::Endpoint::scheduler), or
/// standalone). Cheap to clone; create it inside a tokio runtime.
///
/// ```
/// use netcore::{Scheduler, Schedule};
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let scheduler = Scheduler::new();
/// let check = scheduler.schedule(
///     || async { println!("Performing periodic check") },
///     Schedule::after(Duration::from_secs(5)).repeat(Duration::from_secs(60)),
/// );
/// tokio::time::sleep(Duration::from_secs(126)).await;
/// assert_eq!(check.runs(), 3); // at 5 s, 65 s, 125 s
/// check.cancel();
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Scheduler {
    tx: mpsc::UnboundedSender<Cmd>,
    next: Arc<AtomicU64>,
}

impl Scheduler {
    /// A new scheduler with its timer task.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let s = netcore::Scheduler::new();
    /// # }
    /// ```
    pub fn new() -> Scheduler {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx));
        Scheduler {
            tx,
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Schedules `task` (a function returning a future; called once per run).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let s = netcore::Scheduler::new();
    /// let h = s.schedule(|| async { println!("Cache cleared") },
    ///     netcore::Schedule::after(Duration::from_secs(10)).repeat(Duration::from_secs(300)));
    /// # }
    /// ```
    pub fn schedule<F, Fut>(&self, mut task: F, schedule: Schedule) -> TaskHandle
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(TaskShared::default());
        let t = Task {
            f: Box::new(move || Box::pin(task())),
            schedule,
            shared: shared.clone(),
        };
        if self.tx.send(Cmd::Add(id, t)).is_err() {
            // Scheduler stopped: the task will never run.
            shared.cancelled.store(true, Ordering::SeqCst);
        }
        TaskHandle {
            id,
            shared,
            tx: self.tx.clone(),
        }
    }

    /// Stops the scheduler: no task runs afterwards (a run in progress finishes).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let s = netcore::Scheduler::new();
    /// s.shutdown();
    /// let h = s.schedule(|| async {}, netcore::Schedule::default());
    /// tokio::task::yield_now().await;
    /// assert_eq!(h.runs(), 0);
    /// # }
    /// ```
    pub fn shutdown(&self) {
        let _ = self.tx.send(Cmd::Shutdown);
    }
}

impl Default for Scheduler {
    /// Same as [`Scheduler::new`].
    fn default() -> Self {
        Scheduler::new()
    }
}

/// Rounds `at` up to a whole millisecond after `epoch`.
fn quantize(epoch: Instant, at: Instant) -> Instant {
    let micros = at.saturating_duration_since(epoch).as_micros();
    let ms = micros.div_ceil(1000) as u64;
    epoch + Duration::from_millis(ms)
}

async fn run(mut rx: mpsc::UnboundedReceiver<Cmd>) {
    let epoch = Instant::now();
    let mut heap: BinaryHeap<Due> = BinaryHeap::new();
    let mut tasks: HashMap<u64, Task> = HashMap::new();
    loop {
        let next_at = heap.peek().map(|d| d.at);
        let cmd = match next_at {
            Some(at) => tokio::select! {
                biased;
                cmd = rx.recv() => cmd,
                _ = tokio::time::sleep_until(at) => {
                    run_due(epoch, &mut heap, &mut tasks).await;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match cmd {
            Some(Cmd::Add(id, task)) => {
                let at = quantize(epoch, Instant::now() + task.schedule.delay);
                heap.push(Due {
                    at,
                    priority: task.schedule.priority,
                    id,
                });
                tasks.insert(id, task);
            }
            Some(Cmd::Cancel(id)) => {
                tasks.remove(&id);
            }
            Some(Cmd::Shutdown) | None => break,
        }
    }
    for t in tasks.values() {
        t.shared.cancelled.store(true, Ordering::SeqCst);
    }
}

async fn run_due(epoch: Instant, heap: &mut BinaryHeap<Due>, tasks: &mut HashMap<u64, Task>) {
    let now = Instant::now();
    while heap.peek().is_some_and(|d| d.at <= now) {
        let Some(due) = heap.pop() else { break };
        let Some(task) = tasks.get_mut(&due.id) else {
            continue; // cancelled
        };
        if task.shared.cancelled.load(Ordering::SeqCst) {
            tasks.remove(&due.id);
            continue;
        }
        let fut = (task.f)();
        let shared = task.shared.clone();
        let interval = task.schedule.interval;
        let priority = task.schedule.priority;
        if futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(fut))
            .await
            .is_err()
        {
            tracing::error!(task = due.id, "scheduled task panicked");
        }
        shared.runs.fetch_add(1, Ordering::SeqCst);
        match interval {
            Some(every) => {
                // Next tick on the original grid; ticks missed while running are skipped.
                let mut at = quantize(epoch, due.at + every);
                let after = Instant::now();
                while at <= after {
                    at = quantize(epoch, at + every);
                }
                heap.push(Due {
                    at,
                    priority,
                    id: due.id,
                });
            }
            None => {
                shared.done.store(true, Ordering::SeqCst);
                tasks.remove(&due.id);
            }
        }
    }
}
