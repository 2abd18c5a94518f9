//! Process resource readings from /proc (no unsafe code: the workspace forbids it), and
//! starting this binary again as a scenario's helper process.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tokio::process::{Child, Command};

/// This binary. /proc/self/exe still runs this very binary when a rebuild replaced the
/// file.
pub fn self_exe() -> std::io::Result<PathBuf> {
    let proc_exe = PathBuf::from("/proc/self/exe");
    if proc_exe.exists() {
        Ok(proc_exe)
    } else {
        std::env::current_exe()
    }
}

/// Starts a helper process of a scenario, `bench --child ROLE --child-arg ARG`, its
/// stdout piped; it is killed if dropped.
pub fn spawn_helper(role: &str, arg: &str) -> Result<Child> {
    Command::new(self_exe()?)
        .args(["bench", "--child", role, "--child-arg", arg])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the {role} process"))
}

/// Waits for a helper to exit and returns the rest of the line it printed after
/// `prefix`.
pub async fn helper_result(child: Child, prefix: &str) -> Result<String> {
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!("helper process failed: {}", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
        .context("the helper process printed no result")
}

/// Peak resident set size of this process in KiB (VmHWM), 0 when unknown.
pub fn peak_rss_kib() -> u64 {
    status_field("VmHWM:")
}

/// Current resident set size in KiB (VmRSS), 0 when unknown.
pub fn rss_kib() -> u64 {
    status_field("VmRSS:")
}

fn status_field(name: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The fields of /proc/self/stat after the ")" that ends the command name (field 2,
/// which may itself hold spaces); empty when unreadable. See [`stat_field`].
fn stat_fields() -> Vec<String> {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rfind(')').map_or("", |i| &s[i + 1..]);
    rest.split_whitespace().map(str::to_owned).collect()
}

/// Field `n` of /proc/self/stat, numbered as in proc(5) (utime is 14, policy 41).
fn stat_field<T: std::str::FromStr>(fields: &[String], n: usize) -> Option<T> {
    fields.get(n.checked_sub(3)?)?.parse().ok()
}

/// User and system CPU seconds of this process (all threads) from /proc/self/stat,
/// assuming the usual 100 clock ticks per second.
pub fn cpu_seconds() -> (f64, f64) {
    let f = stat_fields();
    let secs = |n| stat_field::<f64>(&f, n).unwrap_or(0.0) / 100.0;
    (secs(14), secs(15))
}

/// How the kernel schedules this process, e.g. `SCHED_OTHER nice -19` or
/// `SCHED_FIFO priority 10`, from /proc/self/stat; empty when unknown. Recorded with
/// each scenario because on a small machine the policy decides whether kernel threads
/// may preempt the runtime's workers (BENCHMARKS.md, session 10).
pub fn scheduling() -> String {
    let f = stat_fields();
    let (Some(nice), Some(rt_priority), Some(policy)) = (
        stat_field::<i64>(&f, 19),
        stat_field::<i64>(&f, 40),
        stat_field::<u32>(&f, 41),
    ) else {
        return String::new();
    };
    match policy {
        1 => format!("SCHED_FIFO priority {rt_priority}"),
        2 => format!("SCHED_RR priority {rt_priority}"),
        3 => format!("SCHED_BATCH nice {nice}"),
        5 => format!("SCHED_IDLE nice {nice}"),
        _ => format!("SCHED_OTHER nice {nice}"),
    }
}

/// The machine: nproc, CPU model, memory, kernel.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    serde_json::json!({
        "nproc": nproc,
        "cpu_model": model,
        "mem_total_gib": mem_kib as f64 / 1024.0 / 1024.0,
        "kernel": kernel,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn readings() {
        assert!(super::peak_rss_kib() > 0);
        assert!(super::rss_kib() > 0);
        let (u, s) = super::cpu_seconds();
        assert!(u >= 0.0 && s >= 0.0);
        // Tests run under the normal policy unless started with chrt.
        let sched = super::scheduling();
        assert!(sched.starts_with("SCHED_"), "{sched}");
    }
}
