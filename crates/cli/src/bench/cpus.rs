//! How far apart the machine's CPUs are: the one-way time to hand a cache line from one
//! thread to another, measured right before a bulk transfer.
//!
//! On a virtual machine the host decides which physical cores the guest's CPUs run on,
//! and it changes its mind every few seconds. Two cores of one cache complex hand a
//! line over in ~30–50 ns; two that share no cache take ~200 ns. netcore's ends in
//! one process run on both tokio workers, so every byte of a bulk transfer crosses
//! between CPUs (the socket's pages are written on one and read on the other), and a
//! transfer made while the CPUs were far apart runs at a third of its usual speed. Raw
//! TCP in one process mostly runs on a single worker and does not notice. The bench
//! records this figure next to each netcore run so that such runs can be told apart
//! from a change in netcore (BENCHMARKS.md, session 11).

use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Round trips measured, after [`WARM_UP`] unmeasured ones.
const ROUNDS: u64 = 20_000;
/// Round trips that let both threads settle on their CPUs first.
const WARM_UP: u64 = 2_000;
/// The probe gives up after this long (two threads sharing one CPU would take
/// milliseconds per round trip).
const BUDGET: Duration = Duration::from_millis(100);

/// One-way time in nanoseconds for a cache line written by one thread to reach another
/// that spins on it, or `None` with fewer than two CPUs or when the probe could not
/// finish within its time budget (another busy thread held one of the CPUs).
///
/// It spins two threads for a few milliseconds; call it between measurements, from a
/// blocking context.
pub fn line_transfer_ns() -> Option<f64> {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return None;
    }
    let line = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let peer = {
        let (line, stop) = (line.clone(), stop.clone());
        std::thread::Builder::new()
            .name("cpu-probe".into())
            .spawn(move || answer(&line, &stop))
            .ok()?
    };
    let start = Instant::now();
    let mut measured_from = None;
    let mut finished = true;
    'rounds: for k in 0..WARM_UP + ROUNDS {
        if k == WARM_UP {
            measured_from = Some(Instant::now());
        }
        line.store(2 * k + 1, Ordering::Release);
        let mut spins = 0u32;
        while line.load(Ordering::Acquire) != 2 * k + 2 {
            spin_loop();
            spins = spins.wrapping_add(1);
            // A clock read costs about as much as what is measured: rarely.
            if spins % 4096 == 0 && start.elapsed() > BUDGET {
                finished = false;
                break 'rounds;
            }
        }
    }
    let elapsed = measured_from.map(|t| t.elapsed());
    stop.store(true, Ordering::Relaxed);
    let _ = peer.join();
    match (finished, elapsed) {
        (true, Some(e)) => Some(e.as_nanos() as f64 / ROUNDS as f64 / 2.0),
        _ => None,
    }
}

/// The peer: answers every odd value with the next even one until told to stop.
fn answer(line: &AtomicU64, stop: &AtomicBool) {
    let mut next = 1;
    while !stop.load(Ordering::Relaxed) {
        if line.load(Ordering::Acquire) == next {
            line.store(next + 1, Ordering::Release);
            next += 2;
        } else {
            spin_loop();
        }
    }
}

/// [`line_transfer_ns`] from async code, on the runtime's blocking pool.
pub async fn line_transfer_ns_async() -> Option<f64> {
    tokio::task::spawn_blocking(line_transfer_ns)
        .await
        .ok()
        .flatten()
}

/// A probe's result for a progress line: `42 ns` or `not measured`.
pub fn text(ns: Option<f64>) -> String {
    ns.map_or_else(|| "not measured".into(), |ns| format!("{ns:.0} ns"))
}

/// Each run's MiB/s beside the probe taken before it, for netcore and for raw TCP.
#[derive(Debug, Default)]
pub struct Probed {
    /// netcore's runs.
    pub netcore: Vec<(f64, Option<f64>)>,
    /// Raw TCP's runs.
    pub raw: Vec<(f64, Option<f64>)>,
}

impl Probed {
    /// The scenario's two notes, netcore's runs then raw TCP's (see [`note`]).
    pub fn notes(&self) -> [String; 2] {
        [
            note("netcore's runs", "MiB/s", &self.netcore),
            note("raw TCP's runs", "MiB/s", &self.raw),
        ]
    }

    /// The probe before netcore's run `run`, for a progress line (see [`text`]).
    pub fn netcore_text(&self, run: usize) -> String {
        text(self.netcore.get(run).and_then(|r| r.1))
    }
}

/// Above this the two CPUs share no cache (same-complex cores measure 30–50 ns).
pub const FAR_NS: f64 = 100.0;

/// A note pairing each run's figure (in `unit`) with the probe taken before it, e.g.
/// `netcore's runs (MiB/s @ CPU-to-CPU cache-line ns, probed just before): 3714 @ 42,
/// 1413 @ 184`, and what a far pair means when there was one.
pub fn note(what: &str, unit: &str, runs: &[(f64, Option<f64>)]) -> String {
    let list: Vec<String> = runs
        .iter()
        .map(|(v, ns)| {
            let v = if v.abs() < 10.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.0}")
            };
            match ns {
                Some(ns) => format!("{v} @ {ns:.0}"),
                None => format!("{v} @ -"),
            }
        })
        .collect();
    let far = runs
        .iter()
        .filter(|(_, ns)| ns.is_some_and(|ns| ns > FAR_NS))
        .count();
    let mut s = format!(
        "{what} ({unit} @ CPU-to-CPU cache-line ns, probed just before): {}",
        list.join(", ")
    );
    if far > 0 {
        s.push_str(&format!(
            "; {far} run(s) above {FAR_NS:.0} ns, where the host had put the two CPUs on \
             cores without a shared cache and every byte crossing between them costs \
             several times more"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_returns_a_positive_time_or_nothing() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let got = line_transfer_ns();
        if cpus < 2 {
            assert_eq!(got, None);
        }
        // With two CPUs, `None` is also right when other tests kept one busy past the
        // budget; what the probe must never give is a value that is not a time.
        if let Some(ns) = got {
            assert!(ns.is_finite() && ns > 0.0, "{ns}");
        }
    }

    #[test]
    fn note_pairs_runs_with_probes_and_flags_far_ones() {
        let runs = [(3714.2, Some(42.0)), (1413.0, Some(184.4)), (3690.0, None)];
        let n = note("netcore", "MiB/s", &runs);
        assert_eq!(
            n.split("; ").next().unwrap(),
            "netcore (MiB/s @ CPU-to-CPU cache-line ns, probed just before): \
             3714 @ 42, 1413 @ 184, 3690 @ -"
        );
        assert!(n.contains("1 run(s) above 100 ns"), "{n}");
        let p99 = note("netcore's p99", "ms", &[(0.4567, Some(40.0))]);
        assert!(p99.ends_with("(ms @ CPU-to-CPU cache-line ns, probed just before): 0.46 @ 40"));
        assert_eq!(text(Some(41.6)), "42 ns");
        assert_eq!(text(None), "not measured");
        let p = Probed {
            netcore: vec![(3000.0, Some(33.0))],
            raw: vec![(5000.0, None)],
        };
        let [nc, raw] = p.notes();
        assert!(
            nc.starts_with("netcore's runs (MiB/s @") && nc.ends_with("3000 @ 33"),
            "{nc}"
        );
        assert!(
            raw.starts_with("raw TCP's runs (MiB/s @") && raw.ends_with("5000 @ -"),
            "{raw}"
        );
        assert_eq!(p.netcore_text(0), "33 ns");
        assert_eq!(p.netcore_text(1), "not measured");
    }
}
