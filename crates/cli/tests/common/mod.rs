//! Helpers for running the `netcore` binary as a process in tests: every child is killed
//! when its handle drops, and every wait is bounded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub fn netcore() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_netcore"))
}

/// A running child process, killed on drop, with its stderr lines collected.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Proc {
    /// Starts `netcore ARGS`, stdout to null, stderr captured.
    pub fn start(args: &[&str]) -> Proc {
        Self::start_cmd(Command::new(netcore()).args(args).stdout(Stdio::null()))
    }

    /// Starts a prepared command (its stderr is captured, stdin is null).
    pub fn start_cmd(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn process");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        Proc {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits up to `timeout` for a stderr line containing `needle`; returns it.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {needle:?} within {timeout:?}; seen: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Waits for the exit within `timeout` (killing the process on expiry → panic).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("process did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `netcore serve ADDR EXTRA…` on an OS-chosen 127.0.0.1 port and returns it with
/// the address clients use.
pub fn serve_tcp(extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["serve", "tcp://127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut p = Proc::start(&args);
    let line = p.wait_line("listening on", Duration::from_secs(30));
    let addr = line
        .split_whitespace()
        .last()
        .expect("address in the banner")
        .to_string();
    assert!(addr.starts_with("tcp://127.0.0.1:"), "{line}");
    (p, addr)
}

/// Runs `netcore ARGS` to completion within `timeout` (killed and panicking otherwise),
/// with `stdin` as input.
pub fn run(args: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Output {
    use std::io::Write;
    let mut child = Command::new(netcore())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netcore");
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("stdin");
        w.write_all(input).expect("write stdin");
    }
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait for netcore"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!(
                "`netcore {}` did not finish within {timeout:?}",
                args.join(" ")
            );
        }
    }
}

/// Exit code of an output (panics on death by signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or_else(|| {
        panic!(
            "killed by a signal; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `socat` must be installed for the pty tests.
pub fn require_socat() {
    let ok = Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "socat is missing: the pty tests need it to make a pseudo-terminal pair \
         (install it with `apt-get install -y socat`)"
    );
}

/// A pair of linked pseudo-terminals made by socat at `dir/a` and `dir/b`.
pub fn pty_pair(dir: &std::path::Path) -> (Proc, PathBuf, PathBuf) {
    require_socat();
    let (a, b) = (dir.join("a"), dir.join("b"));
    let p = Proc::start_cmd(Command::new("socat").stdout(Stdio::null()).args([
        "-d",
        "-d",
        &format!("pty,raw,echo=0,link={}", a.display()),
        &format!("pty,raw,echo=0,link={}", b.display()),
    ]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(a.exists() && b.exists()) {
        assert!(Instant::now() < deadline, "socat made no pty pair");
        std::thread::sleep(Duration::from_millis(20));
    }
    (p, a, b)
}
