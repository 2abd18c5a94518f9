//! `netcore serve` and `netcore call` over a real pseudo-terminal pair (made by socat), so
//! the serial transport, its baud-rate pacing and the serial profile run end to end.

mod common;

use common::{code, pty_pair, run, Proc};
use std::time::Duration;

#[test]
fn serve_and_call_over_a_pty_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (_socat, a, b) = pty_pair(dir.path());
    let server_addr = format!("serial://{}?baud=115200", a.display());
    let client_addr = format!("serial://{}?baud=115200", b.display());
    let mut server = Proc::start(&["serve", &server_addr, "--once"]);
    server.wait_line("listening on", Duration::from_secs(30));

    let out = run(
        &[
            "call",
            &client_addr,
            "echo",
            "over a serial line",
            "--timeout",
            "20s",
        ],
        None,
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over a serial line\n");
    // The server saw one connection, and --once ends it when the connection does.
    server.wait_line("open", Duration::from_secs(10));
    let status = server.wait(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {:?}", server.seen);
}

#[test]
fn a_larger_body_is_paced_by_the_baud_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (_socat, a, b) = pty_pair(dir.path());
    // 38 400 baud = 3 840 B/s: 8 KiB each way takes at least ~2 s on the line.
    let mut server = Proc::start(&[
        "serve",
        &format!("serial://{}?baud=38400", a.display()),
        "--once",
    ]);
    server.wait_line("listening on", Duration::from_secs(30));
    let started = std::time::Instant::now();
    let out = run(
        &[
            "call",
            &format!("serial://{}?baud=38400", b.display()),
            "generate",
            "8K",
            "-o",
            "raw",
        ],
        None,
        Duration::from_secs(60),
    );
    let took = started.elapsed();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), 8192);
    assert!(
        took >= Duration::from_millis(1500),
        "8 KiB at 3 840 B/s came in {took:?}"
    );
}

#[test]
fn file_download_over_a_pty_pair() {
    // Bodies larger than the serial profile's 16 KiB write buffer are streamed in pieces
    // it admits; this download would hang otherwise.
    let dir = tempfile::tempdir().unwrap();
    let (_socat, a, b) = pty_pair(dir.path());
    let srv = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..40_000u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(srv.path().join("log.bin"), &data).unwrap();
    let mut server = Proc::start(&[
        "serve",
        &format!("serial://{}?baud=921600", a.display()),
        "--dir",
        srv.path().to_str().unwrap(),
        "--once",
    ]);
    server.wait_line("listening on", Duration::from_secs(30));
    let dest = dir.path().join("log.bin");
    let out = run(
        &[
            "get",
            &format!("serial://{}?baud=921600", b.display()),
            "log.bin",
            dest.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(90),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        std::fs::read(&dest).unwrap() == data,
        "downloaded file differs"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("verified"));
}
