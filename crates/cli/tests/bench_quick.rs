//! `netcore bench --quick` as a process: it finishes, writes results.json, and every
//! record carries every field. Unoptimized builds run it with NETCORE_BENCH_TINY (sizes
//! divided by 8) so the smoke test stays short.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FIELDS: [&str; 11] = [
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
];

fn netcore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netcore"))
}

fn bench_wired() -> bool {
    netcore()
        .args(["bench", "--list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("hol-tcp"))
        .unwrap_or(false)
}

/// Runs with a hard deadline so a hung benchmark fails the test instead of CI.
fn run_bounded(mut cmd: Command, limit: Duration) -> std::process::ExitStatus {
    let mut child = cmd.spawn().expect("start netcore bench");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netcore bench --quick did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn bench_quick_writes_every_field() {
    if !bench_wired() {
        eprintln!(
            "SKIPPED: `netcore bench` is not wired into the CLI yet (crates/cli/src/main.rs)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bench-out");
    let mut cmd = netcore();
    cmd.args(["bench", "--quick", "--out"]).arg(&out);
    if cfg!(debug_assertions) {
        cmd.env("NETCORE_BENCH_TINY", "1");
    }
    cmd.stdout(Stdio::null());
    let status = run_bounded(cmd, Duration::from_secs(600));

    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("results.json is JSON");
    let records = v["records"].as_array().expect("records array");
    assert!(!records.is_empty(), "no records");
    for r in records {
        for f in FIELDS {
            let x = r
                .get(f)
                .unwrap_or_else(|| panic!("record without {f}: {r}"));
            match f {
                "scenario" | "metric" | "unit" | "baseline" => {
                    assert!(
                        x.as_str().is_some_and(|s| !s.is_empty()),
                        "{f} not a string: {r}"
                    )
                }
                "runs" => assert!(x.as_u64().is_some_and(|n| n >= 1), "runs: {r}"),
                // NaN is written as null: a figure that could not be computed.
                _ => assert!(x.is_number() || x.is_null(), "{f} not a number: {r}"),
            }
        }
    }
    let scenarios = v["scenarios"].as_array().expect("scenarios array");
    let names: Vec<&str> = scenarios
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    let listed = String::from_utf8_lossy(
        &netcore()
            .args(["bench", "--list"])
            .output()
            .expect("list")
            .stdout,
    )
    .to_string();
    for line in listed.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        assert!(
            names.contains(&name),
            "scenario {name} missing from results.json"
        );
    }
    // A scenario that failed only because netcore stalled (the connection-credit bug
    // BENCHMARKS.md describes; the bench retries and then gives up) is reported, not
    // failed on: it is a runtime bug with its own issue, not a broken benchmark.
    let stalled_only = |s: &serde_json::Value| {
        s["notes"].as_array().is_some_and(|n| {
            n.iter()
                .filter_map(|x| x.as_str())
                .any(|x| x.contains("stalled"))
        })
    };
    let mut failed = Vec::new();
    for s in scenarios {
        if matches!(s["status"].as_str(), Some("ok") | Some("skipped")) {
            continue;
        }
        let line = format!("{}: {} {}", s["name"], s["status"], s["notes"]);
        if s["status"] == "failed" && stalled_only(s) {
            eprintln!("WARNING (netcore stall, tolerated): {line}");
        } else {
            failed.push(line);
        }
    }
    assert!(failed.is_empty(), "scenarios failed: {failed:?}");
    // Every bulk run is paired with how far apart the CPUs were just before it.
    for name in ["bulk", "bulk8", "bulk-procs"] {
        let s = scenarios
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        if s["status"] != "ok" {
            continue;
        }
        let notes: Vec<&str> = s["notes"]
            .as_array()
            .map(|n| n.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        for who in ["netcore's runs", "raw TCP's runs"] {
            let want = format!("{who} (MiB/s @ CPU-to-CPU cache-line ns");
            assert!(
                notes.iter().any(|n| n.starts_with(&want)),
                "{name}: no note {want:?} in {notes:?}"
            );
        }
    }
    // 0: all ok; 1: some scenario failed (here: only tolerated stalls).
    assert!(
        matches!(status.code(), Some(0) | Some(1)),
        "netcore bench exited with {status}"
    );
    assert!(v["machine"]["nproc"].as_u64().is_some_and(|n| n >= 1));
    for s in scenarios {
        assert!(
            s["usage"]["peak_rss_mib"].as_f64().is_some_and(|m| m > 0.0),
            "usage: {s}"
        );
        // Run without --realtime: the scenario processes kept the normal policy.
        assert!(
            s["usage"]["scheduling"]
                .as_str()
                .is_some_and(|p| p.starts_with("SCHED_OTHER nice ")),
            "scheduling: {s}"
        );
    }
    assert!(v["realtime_priority"].is_null());
}
