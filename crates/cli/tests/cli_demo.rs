//! `netcore demo`: the quiet run exits 0 with its summary; the JSON run carries the
//! figures, and small requests beat the one-message-at-a-time baseline on the serial link.

mod common;

use common::{code, run};
use std::time::Duration;

#[test]
fn demo_quiet_exits_zero_with_a_summary() {
    let out = run(&["demo", "--quiet"], None, Duration::from_secs(120));
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Summary",
        "netcore",
        "one at a time",
        "serial",
        "loopback TCP",
        "p50",
    ] {
        assert!(text.contains(needle), "summary lacks {needle:?}:\n{text}");
    }
    assert!(
        out.stderr.is_empty(),
        "quiet mode wrote to stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn demo_json_reports_both_sides() {
    let out = run(
        &["demo", "--json", "--skip-tcp", "--serial-bulk", "16K"],
        None,
        Duration::from_secs(120),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let p = &v["phases"][0];
    assert_eq!(p["name"], "serial");
    assert_eq!(p["bulk_bytes"], 16384);
    let nc = p["netcore"]["latency"]["p50_ms"].as_f64().unwrap();
    let one = p["one_at_a_time"]["latency"]["p50_ms"].as_f64().unwrap();
    assert!(
        p["netcore"]["latency"]["count"].as_u64().unwrap() >= 5,
        "{p}"
    );
    assert!(
        p["one_at_a_time"]["latency"]["count"].as_u64().unwrap() >= 5,
        "{p}"
    );
    // Head-of-line blocking: behind a 16 KiB message at 11 520 B/s the baseline's median
    // request waits around a second; netcore's does not wait for the bulk at all.
    assert!(
        nc * 3.0 < one,
        "netcore p50 {nc} ms vs one-at-a-time {one} ms"
    );
    assert!(p["computed_wait_seconds"].as_f64().unwrap() > 1.0);
}

#[test]
fn bare_netcore_runs_the_demo() {
    let out = run(
        &["--json", "--skip-tcp", "--serial-bulk", "4K"],
        None,
        Duration::from_secs(120),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["phases"][0]["bulk_bytes"], 4096);
}

#[test]
fn demo_survives_line_noise() {
    let out = run(
        &[
            "demo",
            "--json",
            "--skip-tcp",
            "--serial-bulk",
            "16K",
            "--noise",
            "2e-4",
            "--seed",
            "3",
        ],
        None,
        Duration::from_secs(120),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let p = &v["phases"][0];
    // About 2e-4 × 3 × ~20 000 bytes each way were hit, and the bulk still arrived whole
    // (the run checks the receiver's byte count).
    assert!(p["injected_errors"].as_u64().unwrap() > 0, "{p}");
    assert_eq!(p["noise"], 2e-4);
    assert!(
        p["netcore"]["latency"]["count"].as_u64().unwrap() >= 5,
        "{p}"
    );
}
