//! `netcore send` / `netcore get` against `netcore serve --dir`: a transfer interrupted
//! (the process killed mid-way, behind a rate-limited `netcore link`) resumes from the
//! partial file and ends with an identical file and a verified CRC-32C; a corrupted
//! partial file is caught by the checksum.

mod common;

use common::{code, run, serve_tcp, Proc};
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);
const SIZE: usize = 1 << 20;

fn data() -> Vec<u8> {
    let mut x = 0x1234_5678u32;
    (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A rate-limited link (100 KB/s) in front of `target`; returns it and its address.
fn slow_link(target: &str) -> (Proc, String) {
    let mut p = Proc::start(&[
        "link",
        "tcp://127.0.0.1:0",
        target,
        "--rate",
        "100000",
        "--quiet",
    ]);
    let line = p.wait_line("netcore link:", Duration::from_secs(30));
    let addr = line
        .split_whitespace()
        .nth(2)
        .expect("link banner: netcore link: ADDR -> TARGET")
        .to_string();
    assert!(addr.starts_with("tcp://127.0.0.1:"), "{line}");
    (p, addr)
}

fn wait_for_size(path: &Path, at_least: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let n = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if n >= at_least {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{} stayed at {n} bytes",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn download_interrupted_then_resumed() {
    let srv = tempfile::tempdir().unwrap();
    let here = tempfile::tempdir().unwrap();
    let original = data();
    std::fs::write(srv.path().join("big.bin"), &original).unwrap();
    let (_server, addr) = serve_tcp(&["--dir", srv.path().to_str().unwrap()]);
    let (_link, slow) = slow_link(&addr);

    let dest = here.path().join("big.bin");
    let part = here.path().join("big.bin.netcore-part");
    let mut get = Proc::start(&["get", &slow, "big.bin", dest.to_str().unwrap()]);
    wait_for_size(&part, 150_000, Duration::from_secs(60));
    get.kill();
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(
        kept < SIZE as u64,
        "the download finished before it was interrupted"
    );
    assert!(!dest.exists());

    let out = run(&["get", &addr, "big.bin", dest.to_str().unwrap()], None, T);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("resuming download"), "{err}");
    assert!(err.contains("verified"), "{err}");
    assert!(
        std::fs::read(&dest).unwrap() == original,
        "resumed file differs"
    );
    assert!(!part.exists());
}

#[test]
fn upload_interrupted_then_resumed() {
    let srv = tempfile::tempdir().unwrap();
    let here = tempfile::tempdir().unwrap();
    let original = data();
    let local = here.path().join("up.bin");
    std::fs::write(&local, &original).unwrap();
    let (_server, addr) = serve_tcp(&["--dir", srv.path().to_str().unwrap()]);
    let (_link, slow) = slow_link(&addr);

    let part = srv.path().join("up.bin.netcore-part");
    let mut send = Proc::start(&["send", &slow, local.to_str().unwrap()]);
    wait_for_size(&part, 150_000, Duration::from_secs(60));
    send.kill();
    // The server keeps what arrived (it flushes when the connection breaks).
    std::thread::sleep(Duration::from_millis(500));
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < SIZE as u64, "kept {kept}");
    assert!(!srv.path().join("up.bin").exists());

    let out = run(&["send", &addr, local.to_str().unwrap()], None, T);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("resuming upload"), "{err}");
    assert!(std::fs::read(srv.path().join("up.bin")).unwrap() == original);
    assert!(!part.exists());
}

#[test]
fn corrupted_partial_download_fails_the_checksum() {
    let srv = tempfile::tempdir().unwrap();
    let here = tempfile::tempdir().unwrap();
    let original = data();
    std::fs::write(srv.path().join("big.bin"), &original).unwrap();
    let (_server, addr) = serve_tcp(&["--dir", srv.path().to_str().unwrap()]);
    let dest = here.path().join("big.bin");
    let part = here.path().join("big.bin.netcore-part");
    let mut bad = original[..100_000].to_vec();
    bad[5000] ^= 0xff;
    std::fs::write(&part, &bad).unwrap();
    let out = run(&["get", &addr, "big.bin", dest.to_str().unwrap()], None, T);
    assert_eq!(code(&out), 6, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"));
    assert!(!dest.exists() && !part.exists());
    // The files/* routes answer plain calls too; -i shows the reply headers.
    let out = run(
        &[
            "call",
            &addr,
            "files/get",
            "-H",
            "name=big.bin",
            "-H",
            "offset=1000000",
            "-i",
            "-o",
            "raw",
        ],
        None,
        T,
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.stdout == original[1_000_000..],
        "tail from offset differs"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("size: 1048576") && err.contains("offset: 1000000"),
        "{err}"
    );
    // Missing files are remote errors.
    let out = run(&["get", &addr, "nope.bin", dest.to_str().unwrap()], None, T);
    assert_eq!(code(&out), 5);
    // Starting over gives the right file.
    let out = run(&["get", &addr, "big.bin", dest.to_str().unwrap()], None, T);
    assert_eq!(code(&out), 0);
    assert!(std::fs::read(&dest).unwrap() == original);
}
