//! Shared by the legacy-mode tests: the Python interpreter and Python peer processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Every Python process ends itself after this many seconds (and is killed on drop).
pub const PY_TIMEOUT_SECS: u64 = 90;

/// `$NETCORE_PYTHON`, else `<workspace>/.venv/bin/python`; `None` (with a notice) when
/// neither exists, a panic when `$CI` is set.
pub fn python() -> Option<PathBuf> {
    let found = std::env::var_os("NETCORE_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
            venv.exists().then_some(venv)
        });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set but no Python with netcore==0.1.3: set NETCORE_PYTHON or create .venv"
            );
        }
        eprintln!("SKIP: no NETCORE_PYTHON and no .venv/bin/python; Python interop not tested");
    }
    found
}

/// A Python Netcore 0.1.3 peer (crates/legacy/tests/python/netcore_peer.py), killed on drop.
pub struct Peer {
    pub child: Child,
    lines: Receiver<String>,
}

impl Peer {
    pub fn spawn(python: &PathBuf, args: &[&str]) -> Peer {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../legacy/tests/python/netcore_peer.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .args(["--timeout", &PY_TIMEOUT_SECS.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer { child, lines }
    }

    /// The rest of the first stdout line starting with `prefix` (blocking).
    pub fn line(&self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(rest) = l.strip_prefix(prefix) {
                        return Some(rest.trim().to_owned());
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
