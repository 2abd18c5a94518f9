//! Result records, statistics, the console table and results.json.

use serde::{Deserialize, Deserializer, Serialize};

/// Reads a figure written as `null` (serde_json writes NaN so) back as NaN.
fn nan_or<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Whether larger or smaller values of a metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Throughput-like.
    Higher,
    /// Latency- or memory-like.
    Lower,
}

/// One figure next to one baseline. `value`, `min`, `median`, `max` describe netcore's
/// runs (`value` is the median); `ratio` is `value / baseline_value`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Scenario name.
    pub scenario: String,
    /// Metric name within the scenario.
    pub metric: String,
    /// Unit of value, min, median, max and baseline_value.
    pub unit: String,
    /// Median of netcore's runs.
    #[serde(deserialize_with = "nan_or")]
    pub value: f64,
    /// What netcore is compared with.
    pub baseline: String,
    /// Median of the baseline's runs.
    #[serde(deserialize_with = "nan_or")]
    pub baseline_value: f64,
    /// value / baseline_value.
    #[serde(deserialize_with = "nan_or")]
    pub ratio: f64,
    /// Runs measured (per side).
    pub runs: usize,
    /// Smallest of netcore's runs.
    #[serde(deserialize_with = "nan_or")]
    pub min: f64,
    /// Median of netcore's runs.
    #[serde(deserialize_with = "nan_or")]
    pub median: f64,
    /// Largest of netcore's runs.
    #[serde(deserialize_with = "nan_or")]
    pub max: f64,
    /// Which direction is better.
    pub better: Better,
    /// The goal from issue 3/5 when there is one, e.g. "ratio >= 0.9".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Whether the goal is met (None: no goal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal_met: Option<bool>,
}

/// Samples of one side (one value per run).
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    /// Adds a run's value.
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }
    fn sorted(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.0.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    }
    /// Median (NaN when empty).
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }
    /// Minimum.
    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }
    /// Maximum.
    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }
}

/// Percentile (0..=100) of unsorted samples; NaN when empty.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = (p / 100.0 * (v.len() - 1) as f64).round() as usize;
    v[rank.min(v.len() - 1)]
}

/// Goal check applied to a record's ratio.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// ratio >= x
    RatioAtLeast(f64),
    /// ratio <= x
    RatioAtMost(f64),
    /// value <= x (in the record's unit)
    ValueAtMost(f64),
}

impl Goal {
    fn describe(self, unit: &str) -> String {
        match self {
            Goal::RatioAtLeast(x) => format!("ratio >= {x}"),
            Goal::RatioAtMost(x) => format!("ratio <= {x}"),
            Goal::ValueAtMost(x) => format!("value <= {x} {unit}"),
        }
    }
    fn met(self, value: f64, ratio: f64) -> bool {
        match self {
            Goal::RatioAtLeast(x) => ratio >= x,
            Goal::RatioAtMost(x) => ratio <= x,
            Goal::ValueAtMost(x) => value <= x,
        }
    }
}

/// Builds a record from netcore's and the baseline's samples.
#[allow(clippy::too_many_arguments)]
pub fn record(
    scenario: &str,
    metric: &str,
    unit: &str,
    better: Better,
    ours: &Samples,
    baseline: &str,
    theirs: &Samples,
    goal: Option<Goal>,
) -> Record {
    let value = ours.median();
    let baseline_value = theirs.median();
    let ratio = if baseline_value != 0.0 {
        value / baseline_value
    } else {
        f64::NAN
    };
    Record {
        scenario: scenario.to_string(),
        metric: metric.to_string(),
        unit: unit.to_string(),
        value,
        baseline: baseline.to_string(),
        baseline_value,
        ratio,
        runs: ours.0.len(),
        min: ours.min(),
        median: value,
        max: ours.max(),
        better,
        goal: goal.map(|g| g.describe(unit)),
        goal_met: goal.map(|g| g.met(value, ratio)),
    }
}

/// A named series of points for a plot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    /// Which plot it belongs to.
    pub plot: String,
    /// Legend name.
    pub name: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
}

/// Resource use of one scenario's process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Wall time in seconds.
    pub wall_s: f64,
    /// User CPU seconds.
    pub cpu_user_s: f64,
    /// System CPU seconds.
    pub cpu_sys_s: f64,
    /// Peak resident set size (VmHWM) in MiB.
    pub peak_rss_mib: f64,
    /// The process's scheduling policy, e.g. `SCHED_OTHER nice 0` (`--realtime`:
    /// `SCHED_FIFO priority 10`).
    #[serde(default)]
    pub scheduling: String,
}

/// What one scenario produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// "ok", "skipped", "failed" or "timeout".
    pub status: String,
    /// Explanations (skips, errors, caveats).
    pub notes: Vec<String>,
    /// Resource use of the process that ran it (the scenario and its baselines).
    pub usage: Usage,
    /// Records.
    pub records: Vec<Record>,
    /// Plot data.
    pub series: Vec<Series>,
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.3e}", v)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Prints the summary table of a scenario.
pub fn print_table(r: &ScenarioResult) {
    println!(
        "\n== {} [{}]  wall {:.1} s, cpu {:.1}+{:.1} s, peak RSS {:.1} MiB, {}",
        r.name,
        r.status,
        r.usage.wall_s,
        r.usage.cpu_user_s,
        r.usage.cpu_sys_s,
        r.usage.peak_rss_mib,
        r.usage.scheduling
    );
    for n in &r.notes {
        println!("   note: {n}");
    }
    if r.records.is_empty() {
        return;
    }
    println!(
        "   {:<28} {:>11} {:>11} {:>11} {:<10} {:<22} {:>11} {:>7}  goal",
        "metric", "netcore", "min", "max", "unit", "baseline", "base", "ratio"
    );
    for x in &r.records {
        let goal = match (&x.goal, x.goal_met) {
            (Some(g), Some(true)) => format!("{g} ok"),
            (Some(g), Some(false)) => format!("{g} MISSED"),
            _ => String::new(),
        };
        println!(
            "   {:<28} {:>11} {:>11} {:>11} {:<10} {:<22} {:>11} {:>7}  {}",
            x.metric,
            fmt_num(x.value),
            fmt_num(x.min),
            fmt_num(x.max),
            x.unit,
            x.baseline,
            fmt_num(x.baseline_value),
            fmt_num(x.ratio),
            goal
        );
    }
}

/// Markdown table of all records (BENCHMARKS.md uses it).
pub fn markdown(results: &[ScenarioResult]) -> String {
    let mut s = String::from(
        "| scenario | metric | netcore (median) | min–max | unit | baseline | baseline | ratio | goal |\n|---|---|---:|---:|---|---|---:|---:|---|\n",
    );
    for r in results {
        for x in &r.records {
            let goal = match (&x.goal, x.goal_met) {
                (Some(g), Some(true)) => format!("{g} ✔"),
                (Some(g), Some(false)) => format!("{g} **missed**"),
                _ => String::new(),
            };
            s.push_str(&format!(
                "| {} | {} | {} | {}–{} | {} | {} | {} | {} | {} |\n",
                x.scenario,
                x.metric,
                fmt_num(x.value),
                fmt_num(x.min),
                fmt_num(x.max),
                x.unit,
                x.baseline,
                fmt_num(x.baseline_value),
                fmt_num(x.ratio),
                goal
            ));
        }
    }
    s.push_str("\n| scenario | status | wall s | cpu user s | cpu sys s | peak RSS MiB | scheduling |\n|---|---|---:|---:|---:|---:|---|\n");
    for r in results {
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |\n",
            r.name,
            r.status,
            r.usage.wall_s,
            r.usage.cpu_user_s,
            r.usage.cpu_sys_s,
            r.usage.peak_rss_mib,
            r.usage.scheduling
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_ratio() {
        let ours = Samples(vec![3.0, 1.0, 2.0]);
        let theirs = Samples(vec![4.0, 4.0]);
        let r = record(
            "s",
            "m",
            "u",
            Better::Higher,
            &ours,
            "b",
            &theirs,
            Some(Goal::RatioAtLeast(0.5)),
        );
        assert_eq!((r.min, r.median, r.max, r.value), (1.0, 2.0, 3.0, 2.0));
        assert_eq!(r.ratio, 0.5);
        assert_eq!(r.goal_met, Some(true));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 50.0), 3.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 100.0), 5.0);
        let j = serde_json::to_value(&r).unwrap();
        let nan = record(
            "s",
            "m",
            "u",
            Better::Lower,
            &Samples(vec![]),
            "b",
            &theirs,
            None,
        );
        let text = serde_json::to_string(&nan).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert!(back.value.is_nan() && back.ratio.is_nan());
        for k in [
            "scenario",
            "metric",
            "unit",
            "value",
            "baseline",
            "baseline_value",
            "ratio",
            "runs",
            "min",
            "median",
            "max",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
    }
}
