//! `netcore link` as a process between a plain TCP client and server on 127.0.0.1: the
//! configured rate shows in the transfer time, and the drop/flip/insert counters match
//! both the configured probabilities and the bytes that actually arrived.

mod common;

use common::Proc;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const N: usize = 40_000;

fn run_link(extra: &[&str]) -> (Duration, Vec<u8>, serde_json::Value) {
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", sink.local_addr().unwrap());
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = sink.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let mut args = vec![
        "link",
        "tcp://127.0.0.1:0",
        target.as_str(),
        "--once",
        "--json",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let mut cmd = Command::new(common::netcore());
    cmd.args(&args).stdout(Stdio::piped());
    let mut link = Proc::start_cmd(&mut cmd);
    let mut stdout = link.child.stdout.take().unwrap();
    let line = link.wait_line("netcore link:", Duration::from_secs(30));
    let addr = line
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_start_matches("tcp://")
        .to_string();

    let data: Vec<u8> = (0..N).map(|i| (i % 200 + 1) as u8).collect();
    let started = Instant::now();
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(&data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let got = receiver.join().unwrap();
    let took = started.elapsed();
    drop(c);
    let status = link.wait(Duration::from_secs(60));
    assert!(status.success(), "{:?}", link.seen);
    let mut json = String::new();
    stdout.read_to_string(&mut json).unwrap();
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("--json line");
    (took, got, v)
}

#[test]
fn rate_limits_the_transfer() {
    // 40 000 bytes at 20 000 B/s: two seconds on the wire.
    let (took, got, v) = run_link(&["--rate", "20000"]);
    assert_eq!(got.len(), N);
    assert_eq!(v["client_to_target"]["delivered"], N as u64);
    assert!(
        took >= Duration::from_millis(1800),
        "40 kB at 20 kB/s took {took:?}"
    );
}

#[test]
fn injects_the_configured_errors() {
    let (_, got, v) = run_link(&[
        "--drop", "0.02", "--flip", "0.02", "--insert", "0.01", "--seed", "9",
    ]);
    let c = &v["client_to_target"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(n("sent"), N as u64);
    // Each count is binomial(40 000, p): within ±5 standard deviations of the mean.
    for (k, p) in [("dropped", 0.02), ("flipped", 0.02), ("inserted", 0.01)] {
        let mean = N as f64 * p;
        let sd = (N as f64 * p * (1.0 - p)).sqrt();
        let x = n(k) as f64;
        assert!((x - mean).abs() < 5.0 * sd, "{k}: {x} vs expected {mean}");
    }
    // What arrived is what the counters say.
    assert_eq!(got.len() as u64, n("delivered"));
    assert_eq!(n("delivered"), n("sent") - n("dropped") + n("inserted"));
    let data: Vec<u8> = (0..N).map(|i| (i % 200 + 1) as u8).collect();
    assert!(got != data);
}
