//! The `stdio:` transport, exercised for real: this test binary re-runs itself as a child
//! process whose stdin/stdout is the transport, and echoes what it reads.

use std::process::Stdio;
use std::time::Duration;

use netcore_runtime::transport::{connect, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const CHILD_ENV: &str = "NETCORE_TRANSPORT_STDIO_CHILD";
const LIMIT: Duration = Duration::from_secs(30);

/// Child side: does nothing unless started by `stdio_transport_in_a_child_process`.
#[tokio::test]
async fn stdio_echo_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let mut t = connect(&"stdio:".parse().unwrap()).await.unwrap();
    assert_eq!(t.info().kind, TransportKind::Stdio);
    t.write_all(b"READY\n").await.unwrap();
    t.flush().await.unwrap();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = t.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        t.write_all(&buf[..n]).await.unwrap();
        t.flush().await.unwrap();
    }
}

#[tokio::test]
async fn stdio_transport_in_a_child_process() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    timeout(LIMIT, async {
        let exe = std::env::current_exe().unwrap();
        let mut child = tokio::process::Command::new(exe)
            .args([
                "--exact",
                "stdio_echo_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut r = child.stdout.take().unwrap();
        let mut w = child.stdin.take().unwrap();

        // Skip the test harness's own banner up to the child's marker (bounded).
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"READY\n") {
            assert!(
                seen.len() < 4096,
                "no READY marker from the child: {seen:?}"
            );
            r.read_exact(&mut byte).await.unwrap();
            seen.push(byte[0]);
        }

        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 199) as u8).collect();
        let d = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&d).await.unwrap();
            w.flush().await.unwrap();
            // Dropping the child's stdin ends its echo loop.
        });
        let mut got = vec![0u8; data.len()];
        r.read_exact(&mut got).await.unwrap();
        assert!(got == data, "echo through the child's stdio differs");
        writer.await.unwrap();
        // Drain the harness's closing lines so the child can exit cleanly.
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        let status = child.wait().await.unwrap();
        assert!(status.success(), "child failed: {status}");
    })
    .await
    .expect("test timed out");
}
