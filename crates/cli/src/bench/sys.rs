//! Process resource readings from /proc (no unsafe code: the workspace forbids it).

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

/// User and system CPU seconds of this process (all threads) from /proc/self/stat,
/// assuming the usual 100 clock ticks per second.
pub fn cpu_seconds() -> (f64, f64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the ")" that ends the command name: state is field 3; utime 14, stime 15.
    let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
        return (0.0, 0.0);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (get(11), get(12))
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
    }
}
