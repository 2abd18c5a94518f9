//! The seed's task scheduler: a delayed periodic task, a one-shot task, priorities
//! among tasks due together, cancellation, and tasks stopping with the endpoint.
//! (Seconds of the seed example are scaled down to milliseconds so it ends quickly.)
//!
//! Run: `cargo run -p netcore --example app_scheduler`

use netcore::{Endpoint, Router, Schedule};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let endpoint = Endpoint::new(Router::new());
    let t0 = Instant::now();
    let scheduler = endpoint.scheduler();

    // endpoint.scheduler.schedule(periodic_check, delay=5, interval=60)
    let periodic = scheduler.schedule(
        move || async move { println!("{:>5?} periodic check", t0.elapsed()) },
        Schedule::after(Duration::from_millis(50)).repeat(Duration::from_millis(100)),
    );
    // Cache cleanup, as in the paper.
    let ep = endpoint.clone();
    scheduler.schedule(
        move || {
            let ep = ep.clone();
            async move {
                ep.cache().clear();
                println!("{:>5?} cache cleared", t0.elapsed());
            }
        },
        Schedule::after(Duration::from_millis(120)).repeat(Duration::from_millis(300)),
    );
    // Tasks due at the same instant run by priority.
    for (name, prio) in [("low", -1), ("high", 10), ("normal", 0)] {
        scheduler.schedule(
            move || async move { println!("{:>5?} one-shot {name} priority", t0.elapsed()) },
            Schedule::after(Duration::from_millis(200)).priority(prio),
        );
    }

    tokio::time::sleep(Duration::from_millis(380)).await;
    periodic.cancel();
    println!("periodic check cancelled after {} runs", periodic.runs());
    tokio::time::sleep(Duration::from_millis(200)).await;
    endpoint.stop(Duration::from_secs(1)).await;
    println!("endpoint stopped: its tasks are stopped too");
}
