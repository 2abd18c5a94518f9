//! TCP: the write batch and `TCP_NOTSENT_LOWAT` sized to the rate the socket drains.
//!
//! Everything below the core's scheduler delays an urgent message: the rest of the
//! batch being written and the kernel's unsent bytes. Fixed sizes that suit loopback
//! (a 64 KiB batch, 128 KiB unsent) hold ~190 ms of data on a 1 MB/s path; over such a
//! path a 64-byte request during a bulk upload took 130–270 ms (BENCHMARKS.md, session
//! 11). So the driver measures the rate at which the kernel takes its bytes while the
//! socket pushes back (then the path, not the application, sets the pace), and keeps
//! both the batch and the unsent limit to [`SendSizing`]'s `target` of that rate,
//! between [`MIN_BYTES`] and the configured sizes. Fast paths stay at the configured
//! sizes.

use std::time::Duration;
use tokio::time::Instant;

/// Smallest batch and unsent limit: a frame head and some body must fit.
pub(super) const MIN_BYTES: usize = 4096;

/// A measurement window: long enough to hold several writes on a slow path.
const WINDOW: Duration = Duration::from_millis(25);

/// The measured drain rate and the sizes derived from it.
///
/// A sample is the bytes the socket took between two of its push-backs at least
/// [`WINDOW`] apart, with data waiting all along: then the path, not the application,
/// set the pace. Running out of data to send ([`SendSizing::idle`]) drops the sample
/// in progress.
#[derive(Debug)]
pub(super) struct SendSizing {
    /// Time of data to keep below the scheduler.
    target: Duration,
    max_batch: usize,
    max_lowat: u32,
    /// The push-back that opened the sample in progress.
    since: Option<Instant>,
    /// Bytes the socket took since then.
    taken: u64,
    /// Bytes per second, smoothed; `None` until the first sample.
    rate: Option<f64>,
    batch: usize,
    lowat: u32,
}

impl SendSizing {
    /// Sizing up to the configured batch and unsent limit, which it starts from.
    pub(super) fn new(target: Duration, max_batch: usize, max_lowat: u32) -> SendSizing {
        SendSizing {
            target,
            max_batch,
            max_lowat,
            since: None,
            taken: 0,
            rate: None,
            batch: max_batch,
            lowat: max_lowat,
        }
    }

    /// The batch to fill now.
    pub(super) fn batch(&self) -> usize {
        self.batch
    }

    /// The socket took `n` bytes.
    pub(super) fn wrote(&mut self, n: usize) {
        self.taken += n as u64;
    }

    /// Nothing was left to send: the application, not the path, sets the pace now.
    pub(super) fn idle(&mut self) {
        self.since = None;
    }

    /// The socket refused more bytes (a write returned `Pending`). Closes the sample
    /// in progress if it is long enough and updates the sizes; returns a new unsent
    /// limit to apply when it moved by more than a quarter.
    pub(super) fn pushed_back(&mut self, now: Instant) -> Option<u32> {
        let Some(since) = self.since else {
            self.since = Some(now);
            self.taken = 0;
            return None;
        };
        let dt = now.saturating_duration_since(since);
        if dt < WINDOW {
            return None;
        }
        let sample = self.taken as f64 / dt.as_secs_f64();
        self.since = Some(now);
        self.taken = 0;
        let rate = self.rate.map_or(sample, |r| (r + sample) / 2.0);
        self.rate = Some(rate);
        let want = (rate * self.target.as_secs_f64()) as usize;
        self.batch = want.clamp(MIN_BYTES, self.max_batch.max(MIN_BYTES));
        let lowat = want.clamp(MIN_BYTES, (self.max_lowat as usize).max(MIN_BYTES)) as u32;
        if lowat.abs_diff(self.lowat) > self.lowat / 4 {
            self.lowat = lowat;
            Some(lowat)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// `ms` milliseconds in which the socket takes `rate` bytes/s and pushes back
    /// after every write; returns the unsent limits to apply.
    fn backlogged(s: &mut SendSizing, t: &mut Instant, rate: f64, ms: u32) -> Vec<u32> {
        let mut applied = Vec::new();
        for _ in 0..ms {
            s.wrote((rate / 1000.0) as usize);
            *t += MS;
            applied.extend(s.pushed_back(*t));
        }
        applied
    }

    #[test]
    fn a_slow_path_shrinks_batch_and_unsent_limit_to_the_target() {
        let mut s = SendSizing::new(4 * MS, 64 * 1024, 128 * 1024);
        let mut t = Instant::now();
        assert_eq!(s.batch(), 64 * 1024);
        let applied = backlogged(&mut s, &mut t, 1_000_000.0, 100);
        // 4 ms at 1 MB/s is 4 000 bytes: the floor.
        assert_eq!(s.batch(), MIN_BYTES);
        assert_eq!(applied, vec![MIN_BYTES as u32]);
        // 25 MB/s: 100 kB, capped by the batch but not by the unsent limit.
        backlogged(&mut s, &mut t, 25_000_000.0, 200);
        assert_eq!(s.batch(), 64 * 1024);
        assert!((90_000..=110_000).contains(&s.lowat), "{}", s.lowat);
    }

    #[test]
    fn a_fast_path_keeps_the_configured_sizes_without_system_calls() {
        let mut s = SendSizing::new(4 * MS, 64 * 1024, 128 * 1024);
        let mut t = Instant::now();
        let applied = backlogged(&mut s, &mut t, 4e9, 200);
        assert_eq!(s.batch(), 64 * 1024);
        assert!(applied.is_empty(), "{applied:?}");
    }

    #[test]
    fn pushbacks_apart_on_a_very_slow_path_still_measure_it() {
        // 64 KiB taken every 200 ms (the kernel frees a whole segment at a time).
        let mut s = SendSizing::new(4 * MS, 64 * 1024, 128 * 1024);
        let mut t = Instant::now();
        assert_eq!(s.pushed_back(t), None);
        for _ in 0..3 {
            s.wrote(64 * 1024);
            t += 200 * MS;
            s.pushed_back(t);
        }
        assert_eq!(s.batch(), MIN_BYTES);
    }

    #[test]
    fn running_out_of_data_is_not_a_slow_path() {
        let mut s = SendSizing::new(4 * MS, 64 * 1024, 128 * 1024);
        let mut t = Instant::now();
        backlogged(&mut s, &mut t, 25_000_000.0, 100);
        let batch = s.batch();
        // A push-back, a little data, nothing to send for a second, a push-back.
        s.pushed_back(t);
        s.wrote(100);
        s.idle();
        t += Duration::from_secs(1);
        assert_eq!(s.pushed_back(t), None);
        t += 30 * MS;
        s.wrote(750_000);
        assert_eq!(s.pushed_back(t), None, "25 MB/s again: nothing moves");
        assert_eq!(s.batch(), batch);
    }

    #[test]
    fn small_moves_make_no_system_call() {
        let mut s = SendSizing::new(4 * MS, 64 * 1024, 128 * 1024);
        let mut t = Instant::now();
        backlogged(&mut s, &mut t, 10_000_000.0, 200);
        let applied = backlogged(&mut s, &mut t, 11_000_000.0, 200);
        assert!(applied.is_empty(), "{applied:?}");
    }
}
