//! Live counters the demo's bars read, and the figures its summary reports.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one side of a phase (netcore or the baseline) reports while it runs.
#[derive(Debug, Default)]
pub struct Live {
    /// Bulk bytes the receiver has taken in.
    pub bulk_done: AtomicU64,
    /// Small requests answered.
    pub answered: AtomicU64,
    /// Small requests sent and not answered yet.
    pub waiting: AtomicU64,
    /// Small requests that failed for good.
    pub failed: AtomicU64,
    /// Small requests sent again after line noise cost them a frame.
    pub retried: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
    oldest: Mutex<Option<Instant>>,
}

impl Live {
    /// Records a small request's latency.
    pub fn record(&self, d: Duration) {
        self.latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(d);
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// All latencies so far.
    pub fn latencies(&self) -> Vec<Duration> {
        self.latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The latest latency.
    pub fn last(&self) -> Option<Duration> {
        self.latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .copied()
    }

    /// Sets when the oldest unanswered request was sent (`None`: none waiting).
    pub fn set_oldest(&self, t: Option<Instant>) {
        *self.oldest.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    /// How long the oldest unanswered request has waited.
    pub fn oldest_wait(&self) -> Option<Duration> {
        self.oldest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|t| t.elapsed())
    }
}

/// Latency figures of a set of small requests.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Latency {
    /// Requests answered.
    pub count: usize,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Largest, milliseconds.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles (nearest rank) of `samples`; zeros when empty.
    pub fn of(samples: &[Duration]) -> Latency {
        let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
            v[rank.clamp(1, v.len()) - 1]
        };
        Latency {
            count: v.len(),
            p50_ms: pct(50.0),
            p99_ms: pct(99.0),
            max_ms: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// One side's result in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct SideResult {
    /// Small-request latency while the bulk ran.
    pub latency: Latency,
    /// Small requests that failed for good.
    pub failed: u64,
    /// Small requests sent again after a lost frame.
    pub retried: u64,
    /// Times the bulk transfer resumed after a lost frame.
    pub resumed: u32,
    /// Seconds the bulk transfer took.
    pub bulk_seconds: f64,
    /// Bulk bytes per second (payload).
    pub bulk_bytes_per_sec: f64,
}

/// One phase (a link) of the demo.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    /// Short name (`serial`, `tcp`).
    pub name: String,
    /// Description of the link.
    pub link: String,
    /// Link rate in bytes/s when limited.
    pub link_bytes_per_sec: Option<u64>,
    /// Bulk message size.
    pub bulk_bytes: u64,
    /// Small request body size.
    pub small_bytes: usize,
    /// Interval between small requests, milliseconds.
    pub interval_ms: f64,
    /// netcore: bulk and small requests multiplexed on one connection.
    pub netcore: SideResult,
    /// One message at a time over a length-prefixed exchange on an identical link.
    pub one_at_a_time: SideResult,
    /// Byte error probability (each of drop, flip, insert) on netcore's link.
    pub noise: f64,
    /// Bytes dropped, flipped or inserted on netcore's link.
    pub injected_errors: u64,
    /// For a rate-limited link: bulk size / link rate, the wait a request queued right
    /// behind the bulk must at least see on a one-message-at-a-time protocol.
    pub computed_wait_seconds: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&v);
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 50.0).abs() < 1e-9);
        assert!((l.p99_ms - 99.0).abs() < 1e-9);
        assert!((l.max_ms - 100.0).abs() < 1e-9);
        assert_eq!(Latency::of(&[]).count, 0);
        let one = Latency::of(&[Duration::from_millis(7)]);
        assert!((one.p99_ms - 7.0).abs() < 1e-9);
    }
}
