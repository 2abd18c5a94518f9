//! What the demo shows in the terminal: a headline per phase, two live bars (netcore and
//! the one-message-at-a-time baseline) and the closing summary.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::stats::{Latency, Live, PhaseResult};
use super::DemoArgs;
use crate::util::{fmt_bytes, fmt_dur};

/// The terminal output of the demo (everything but the summary is skipped when hidden).
pub struct Screen {
    hidden: bool,
    multi: MultiProgress,
}

/// Live bars of one phase; [`Bars::finish`] stops them.
pub struct Bars {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Bars {
    /// Draws the final state and stops updating.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn ms(d: Duration) -> String {
    fmt_dur(d)
}

impl Screen {
    /// A screen; `hidden` for `--quiet` and `--json`.
    pub fn new(hidden: bool) -> Screen {
        let multi = MultiProgress::with_draw_target(if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        Screen { hidden, multi }
    }

    fn say(&self, text: &str) {
        // Only called while no bar is drawing.
        if !self.hidden {
            eprintln!("{text}");
        }
    }

    /// The opening lines.
    pub fn intro(&self) {
        self.say("netcore demo: many conversations over one wire\n");
        self.say("A bulk message and a stream of small requests share one link. netcore");
        self.say("interleaves them (the bulk at a lower urgency); the baseline sends one message");
        self.say("at a time on an identical link, so its small requests wait behind the bulk.");
        self.say("Both run at once.\n");
    }

    /// The headline of phase `n`.
    pub fn phase(&self, n: u32, link: &str, bulk: u64, interval: Duration, small: usize) {
        self.say(&format!(
            "[{n}/2] {link}\n      bulk message of {}, plus a {small}-byte echo request every {}",
            fmt_bytes(bulk),
            ms(interval)
        ));
    }

    /// Starts the two live bars. `nc`/`base` are the senders' counters (latencies),
    /// `nc_rx`/`base_rx` the receivers' (bulk progress).
    pub fn bars(
        &self,
        bulk: u64,
        nc: &Arc<Live>,
        nc_rx: &Arc<Live>,
        base: &Arc<Live>,
        base_rx: &Arc<Live>,
    ) -> Bars {
        let style = ProgressStyle::with_template(
            "{prefix:>14} [{bar:36.cyan/blue}] {bytes:>9} of {total_bytes}\n{msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let nc_bar = self.multi.add(ProgressBar::new(bulk));
        nc_bar.set_style(style.clone());
        nc_bar.set_prefix("netcore");
        let base_bar = self.multi.add(ProgressBar::new(bulk));
        base_bar.set_style(style);
        base_bar.set_prefix("one-at-a-time");
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (nc, nc_rx, base, base_rx) = (nc.clone(), nc_rx.clone(), base.clone(), base_rx.clone());
        let hidden = self.hidden;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                let done = tokio::select! {
                    _ = &mut stopped => true,
                    _ = tick.tick() => false,
                };
                nc_bar.set_position(nc_rx.bulk_done.load(Ordering::Relaxed));
                base_bar.set_position(base_rx.bulk_done.load(Ordering::Relaxed));
                let l = Latency::of(&nc.latencies());
                nc_bar.set_message(format!(
                    "{:>14}  small requests: {} answered, last {}, p50 {}",
                    "",
                    nc.answered.load(Ordering::Relaxed),
                    nc.last().map(ms).unwrap_or_default(),
                    ms(Duration::from_secs_f64(l.p50_ms / 1e3)),
                ));
                let waiting = base.waiting.load(Ordering::Relaxed);
                base_bar.set_message(if waiting > 0 {
                    format!(
                        "{:>14}  small requests: {} answered, {waiting} waiting, oldest {}",
                        "",
                        base.answered.load(Ordering::Relaxed),
                        base.oldest_wait().map(ms).unwrap_or_default()
                    )
                } else {
                    format!(
                        "{:>14}  small requests: {} answered, last {}",
                        "",
                        base.answered.load(Ordering::Relaxed),
                        base.last().map(ms).unwrap_or_default()
                    )
                });
                if done {
                    break;
                }
            }
            if hidden {
                nc_bar.finish_and_clear();
                base_bar.finish_and_clear();
            } else {
                nc_bar.finish();
                base_bar.finish();
            }
        });
        Bars { task, stop }
    }
}

/// `writeln!` into a `String` (which cannot fail).
macro_rules! outln {
    ($o:expr) => {
        $o.push('\n')
    };
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

fn row(out: &mut String, name: &str, l: &Latency, failed: u64, note: &str) {
    let failed = if failed > 0 {
        format!(" ({failed} failed)")
    } else {
        String::new()
    };
    outln!(
        out,
        "    {name:<16} {:>10} {:>10} {:>9}{failed}  {note}",
        ms(Duration::from_secs_f64(l.p50_ms / 1e3)),
        ms(Duration::from_secs_f64(l.p99_ms / 1e3)),
        l.count,
    );
}

/// The summary text.
pub fn summary(phases: &[PhaseResult], args: &DemoArgs) -> String {
    let mut out = String::new();
    let out = &mut out;
    outln!(out);
    outln!(
        out,
        "Summary: small requests sent while a bulk message was on the link"
    );
    for p in phases {
        outln!(out);
        outln!(out, "  {}", p.link);
        let share = p
            .link_bytes_per_sec
            .map(|r| {
                format!(
                    ", {:.0}% of the link",
                    100.0 * p.netcore.bulk_bytes_per_sec / r as f64
                )
            })
            .unwrap_or_default();
        outln!(
            out,
            "    bulk message     {} in {:.2} s ({}/s{share})\n    small requests   {} B every {:.0} ms",
            fmt_bytes(p.bulk_bytes),
            p.netcore.bulk_seconds,
            fmt_bytes(p.netcore.bulk_bytes_per_sec as u64),
            p.small_bytes,
            p.interval_ms,
        );
        outln!(
            out,
            "    {:<16} {:>10} {:>10} {:>9}",
            "latency",
            "p50",
            "p99",
            "answered"
        );
        row(out, "netcore", &p.netcore.latency, p.netcore.failed, "");
        let ratio = if p.netcore.latency.p50_ms > 0.0 {
            format!(
                "{:.0}x the netcore p50",
                p.one_at_a_time.latency.p50_ms / p.netcore.latency.p50_ms
            )
        } else {
            String::new()
        };
        row(
            out,
            "one at a time",
            &p.one_at_a_time.latency,
            p.one_at_a_time.failed,
            &ratio,
        );
        if p.injected_errors > 0 || p.noise > 0.0 {
            outln!(
                out,
                "    line noise       {} bytes hit on netcore's link: bulk resumed {}x,\n                     {} requests sent again",
                p.injected_errors, p.netcore.resumed, p.netcore.retried
            );
        }
        if let (Some(secs), Some(rate)) = (p.computed_wait_seconds, p.link_bytes_per_sec) {
            outln!(
                out,
                "    check            {} / {rate} B/s = {secs:.2} s: the least a request queued\n                     right behind the bulk waits without multiplexing",
                fmt_bytes(p.bulk_bytes)
            );
        }
    }
    outln!(out);
    outln!(
        out,
        "  \"one at a time\": the same bulk and requests on the same schedule over a"
    );
    outln!(
        out,
        "  plain length-prefixed exchange on an identical link, measured in this run."
    );
    outln!(
        out,
        "  Each message is written whole before the next, so a request waits for the"
    );
    outln!(out, "  rest of the bulk.");
    if !args.quiet {
        outln!(out);
        outln!(
            out,
            "  Next: `netcore serve --help`, `netcore call --help`, `netcore link --help`."
        );
    }
    std::mem::take(out)
}
