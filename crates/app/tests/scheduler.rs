//! Scheduler under tokio's paused clock: delays, intervals, priority among tasks due
//! together, cancellation, and stopping with the endpoint.

mod common;

use netcore::{Endpoint, Router, Schedule, Scheduler};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

type Log = Arc<Mutex<Vec<(String, u64)>>>;

fn recorder() -> (Log, Instant) {
    (Arc::new(Mutex::new(Vec::new())), Instant::now())
}

fn task(
    log: &Log,
    start: Instant,
    name: &str,
) -> impl FnMut() -> futures::future::Ready<()> + Send + 'static {
    let log = log.clone();
    let name = name.to_string();
    move || {
        let ms = start.elapsed().as_millis() as u64;
        log.lock().unwrap().push((name.clone(), ms));
        futures::future::ready(())
    }
}

#[tokio::test(start_paused = true)]
async fn delay_then_interval_on_the_paused_clock() {
    let s = Scheduler::new();
    let (log, t0) = recorder();
    let h = s.schedule(
        task(&log, t0, "check"),
        Schedule::after(Duration::from_secs(5)).repeat(Duration::from_secs(60)),
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(h.runs(), 0);
    tokio::time::sleep(Duration::from_secs(182)).await; // now at 186 s
    let times: Vec<u64> = log.lock().unwrap().iter().map(|(_, t)| *t).collect();
    assert_eq!(times, vec![5_000, 65_000, 125_000, 185_000]);
    assert_eq!(h.runs(), 4);
    assert!(!h.is_finished());
}

#[tokio::test(start_paused = true)]
async fn one_shot_runs_once_and_finishes() {
    let s = Scheduler::new();
    let (log, t0) = recorder();
    let h = s.schedule(
        task(&log, t0, "once"),
        Schedule::after(Duration::from_millis(1500)),
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(*log.lock().unwrap(), vec![("once".to_string(), 1500)]);
    assert!(h.is_finished());
    assert!(!h.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn tasks_due_together_run_by_priority() {
    let s = Scheduler::new();
    let (log, t0) = recorder();
    let at = Schedule::after(Duration::from_secs(1));
    s.schedule(task(&log, t0, "low"), at.priority(-5));
    s.schedule(task(&log, t0, "high"), at.priority(10));
    s.schedule(task(&log, t0, "mid-a"), at);
    s.schedule(task(&log, t0, "mid-b"), at);
    s.schedule(
        task(&log, t0, "early"),
        Schedule::after(Duration::from_millis(999)).priority(-100),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let names: Vec<String> = log.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, vec!["early", "high", "mid-a", "mid-b", "low"]);
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_an_interval_task() {
    let s = Scheduler::new();
    let (log, t0) = recorder();
    let h = s.schedule(
        task(&log, t0, "tick"),
        Schedule::every(Duration::from_secs(10)),
    );
    let other = s.schedule(
        task(&log, t0, "other"),
        Schedule::every(Duration::from_secs(10)),
    );
    tokio::time::sleep(Duration::from_secs(25)).await; // runs at 0, 10, 20
    h.cancel();
    assert!(h.is_cancelled() && h.is_finished());
    tokio::time::sleep(Duration::from_secs(100)).await;
    let ticks = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == "tick")
        .count();
    assert_eq!(ticks, 3);
    assert_eq!(h.runs(), 3);
    assert_eq!(
        other.runs(),
        13,
        "cancelling one task leaves the others running"
    );
}

#[tokio::test(start_paused = true)]
async fn async_tasks_and_panicking_tasks_do_not_stop_the_scheduler() {
    let s = Scheduler::new();
    let count = Arc::new(Mutex::new(0u32));
    let c = count.clone();
    s.schedule(
        move || {
            let c = c.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                *c.lock().unwrap() += 1;
            }
        },
        Schedule::every(Duration::from_secs(1)),
    );
    s.schedule(
        || async {
            panic!("task failure");
            #[allow(unreachable_code)]
            ()
        },
        Schedule::every(Duration::from_secs(1)),
    );
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(*count.lock().unwrap(), 4); // 0, 1, 2, 3 s
}

#[tokio::test(start_paused = true)]
async fn scheduler_tasks_stop_with_the_endpoint() {
    let ep = Endpoint::new(Router::new());
    let (log, t0) = recorder();
    let h = ep
        .scheduler()
        .schedule(task(&log, t0, "t"), Schedule::every(Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(h.runs(), 3);
    ep.stop(Duration::from_secs(1)).await;
    let after_stop = h.runs();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(h.runs(), after_stop, "tasks must stop with the endpoint");
    assert!(h.is_finished());
}
