//! Shared helpers for runtime integration tests. Include from a test file with
//! `mod transport_support;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use netcore_runtime::transport::TransportAddr;

/// A socat process joining two pseudo-terminals, killed on drop.
pub struct PtyPair {
    child: Child,
    /// Path of the first pseudo-terminal.
    pub a: PathBuf,
    /// Path of the second pseudo-terminal.
    pub b: PathBuf,
    _dir: tempfile::TempDir,
}

impl PtyPair {
    /// Starts socat and waits (at most 5 s) for both terminals; panics naming the `socat`
    /// package when it is not installed.
    pub fn new() -> PtyPair {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("ttyA"), dir.path().join("ttyB"));
        let child = Command::new("socat")
            .arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `socat` ({e}): serial tests need it to make pseudo-terminal \
                     pairs; install the `socat` package (apt-get install -y socat)"
                )
            });
        let mut pair = PtyPair {
            child,
            a,
            b,
            _dir: dir,
        };
        for _ in 0..500 {
            if pair.a.exists() && pair.b.exists() {
                // socat creates the links just before it starts relaying.
                std::thread::sleep(Duration::from_millis(50));
                return pair;
            }
            if let Ok(Some(status)) = pair.child.try_wait() {
                panic!("socat exited early with {status}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("socat did not create the pseudo-terminals within 5 s");
    }

    /// Kills socat: both terminals go dead, as if the cable were pulled.
    pub fn unplug(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `serial://PATH?baud=BAUD` for one of the terminals.
    pub fn addr(path: &Path, baud: u32) -> TransportAddr {
        format!("serial://{}?baud={baud}", path.display())
            .parse()
            .expect("valid serial address")
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
