//! Python peers doing the same work as the Rust code, in the same run:
//! - netcore 0.1.3 (Python) client and server vs netcore (Rust) pipes: 64-byte echo round
//!   trips and 1 MiB echoes;
//! - binary-protocol 0.2.2 (Python) client and server vs netcore-schema's typed client and
//!   server: 16-byte SENSOR round trips and pipelined windows of 64.
//!
//! The Python helpers are the ones the interop tests use (embedded at build time) plus a
//! small benchmark client for netcore 0.1.3. Skipped with a note when no interpreter with
//! the packages is found (`NETCORE_PYTHON`, `./.venv/bin/python`, or the workspace's
//! `.venv`).

use super::net::{self, Link, Proto, Tasks};
use super::report::{Better, Goal, Samples};
use super::scen::Ctx;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BP_HELPER: &str = include_str!("../../../schema/tests/python/bp_helper.py");
const NETCORE_PEER: &str = include_str!("../../../legacy/tests/python/netcore_peer.py");
const NETCORE_BENCH: &str = r#"
import json, os, socket, sys, threading, time
from netcore import Endpoint, Pipe

def exact_recv(sock):
    def recv(n):
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("peer closed")
            buf += chunk
        return bytes(buf)
    return recv

def main():
    port, seconds, count, big_count = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    def watchdog():
        time.sleep(seconds * 4 + 60)
        os._exit(3)
    threading.Thread(target=watchdog, daemon=True).start()
    sock = socket.create_connection(("127.0.0.1", port))
    ep = Endpoint(Pipe(exact_recv(sock), sock.sendall), max_workers=2)
    ep.start(block=False)
    small = b"x" * 64
    ep.send("echo", small, blocking_recv=True)
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while n < count and time.perf_counter() < deadline:
        r = ep.send("echo", small, blocking_recv=True)
        assert len(r.meta) == 64
        n += 1
    rt = n / (time.perf_counter() - start)
    big = b"y" * (1 << 20)
    m = 0
    start = time.perf_counter()
    deadline = start + seconds
    while m < big_count and time.perf_counter() < deadline:
        r = ep.send("echo", big, blocking_recv=True)
        assert len(r.meta) == len(big)
        m += 1
    mib = m / (time.perf_counter() - start)
    sys.stdout.write("RESULT " + json.dumps({"round_trips_per_s": rt, "round_trips": n, "mib_echo_per_s": mib, "mib_echoes": m}) + "\n")
    sys.stdout.flush()
    os._exit(0)

main()
"#;

/// A Python interpreter that can import `module`.
async fn python_with(module: &str) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("NETCORE_PYTHON") {
        candidates.push(p.into());
    }
    candidates.push(PathBuf::from(".venv/bin/python"));
    candidates.push(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.venv/bin/python"
    )));
    for c in candidates {
        if !c.exists() && c.components().count() > 1 {
            continue;
        }
        let ok = tokio::time::timeout(
            Duration::from_secs(30),
            Command::new(&c)
                .args(["-c", &format!("import {module}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status(),
        )
        .await;
        if matches!(ok, Ok(Ok(s)) if s.success()) {
            return Some(c);
        }
    }
    None
}

fn write_script(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let d = dir.join("python");
    std::fs::create_dir_all(&d)?;
    let p = d.join(name);
    std::fs::write(&p, text)?;
    Ok(p)
}

/// Starts a helper that prints `PORT n`; returns the child and the port.
async fn start_server(py: &Path, script: &Path, args: &[&str]) -> Result<(Child, u16)> {
    let mut child = Command::new(py)
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await? {
            if let Some(p) = l.trim().strip_prefix("PORT ") {
                return Ok::<u16, anyhow::Error>(p.parse()?);
            }
        }
        bail!("server ended without a port")
    })
    .await
    .map_err(|_| anyhow!("python server did not start"))??;
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, port))
}

async fn run_json(
    py: &Path,
    script: &Path,
    args: &[String],
    prefix: &str,
    limit: Duration,
) -> Result<serde_json::Value> {
    let out = tokio::time::timeout(
        limit,
        Command::new(py)
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| anyhow!("python client exceeded {limit:?}"))??;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find_map(|l| {
            let l = l.trim();
            if prefix.is_empty() {
                l.starts_with('{').then_some(l)
            } else {
                l.strip_prefix(prefix)
            }
        })
        .with_context(|| {
            format!(
                "python client printed no result; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )
        })?;
    Ok(serde_json::from_str(line)?)
}

/// The python scenario.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let seconds = if ctx.quick { 1.0 } else { 3.0 };
    match python_with("netcore").await {
        None => ctx.notes.push(
            "netcore 0.1.3 part skipped: no Python with `netcore` (set NETCORE_PYTHON or: python3 -m venv .venv && .venv/bin/pip install binary-protocol==0.2.2 netcore==0.1.3)".into(),
        ),
        Some(py) => {
            if let Err(e) = netcore_py(ctx, &py, seconds).await {
                ctx.notes.push(format!("netcore 0.1.3 part failed: {e:#}"));
            }
        }
    }
    match python_with("binary_protocol").await {
        None => ctx.notes.push(
            "binary-protocol 0.2.2 part skipped: no Python with `binary_protocol` (set NETCORE_PYTHON or create .venv)".into(),
        ),
        Some(py) => {
            if let Err(e) = binary_protocol(ctx, &py, seconds).await {
                ctx.notes.push(format!("binary-protocol 0.2.2 part failed: {e:#}"));
            }
        }
    }
    Ok(())
}

async fn netcore_py(ctx: &mut Ctx, py: &Path, seconds: f64) -> Result<()> {
    let peer = write_script(&ctx.out, "netcore_peer.py", NETCORE_PEER)?;
    let bench = write_script(&ctx.out, "netcore_bench.py", NETCORE_BENCH)?;
    let timeout = format!("{}", seconds * 4.0 + 60.0);
    let (server, port) = start_server(py, &peer, &["server", "--timeout", &timeout]).await?;
    let v = run_json(
        py,
        &bench,
        &[
            port.to_string(),
            seconds.to_string(),
            "1000000".into(),
            "100000".into(),
        ],
        "RESULT ",
        Duration::from_secs_f64(seconds * 4.0 + 90.0),
    )
    .await?;
    drop(server);
    let py_rt = v["round_trips_per_s"].as_f64().unwrap_or(f64::NAN);
    let py_mib = v["mib_echo_per_s"].as_f64().unwrap_or(f64::NAN);

    // Rust doing the same: netcore pipes over loopback TCP, 64-byte echo round trips for
    // the same time, then 1 MiB echoes.
    let mut tasks = Tasks::default();
    let c = net::connect(Proto::Netcore, &Link::Tcp, None, &mut tasks).await?;
    c.echo(64, false).await?;
    let dur = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur && n < 10_000_000 {
        c.echo(64, false).await?;
        n += 1;
    }
    let rs_rt = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut m = 0u64;
    while start.elapsed() < dur && m < 100_000 {
        c.echo(1 << 20, false).await?;
        m += 1;
    }
    let rs_mib = m as f64 / start.elapsed().as_secs_f64();
    eprintln!("    python netcore 0.1.3: {py_rt:.0} rt/s, {py_mib:.1} MiB echoes/s; rust netcore: {rs_rt:.0} rt/s, {rs_mib:.1} MiB echoes/s");
    ctx.add_record(
        "python",
        "netcore_64B_round_trips",
        "rt/s",
        Better::Higher,
        &Samples(vec![rs_rt]),
        "netcore 0.1.3 (Python)",
        &Samples(vec![py_rt]),
        Some(Goal::RatioAtLeast(50.0)),
    );
    ctx.add_record(
        "python",
        "netcore_1MiB_echoes",
        "echo/s",
        Better::Higher,
        &Samples(vec![rs_mib]),
        "netcore 0.1.3 (Python)",
        &Samples(vec![py_mib]),
        None,
    );
    Ok(())
}

netcore_schema::message! {
    #[derive(Debug, Clone, PartialEq)]
    struct Sensor = 1 {
        sensor1: f32 [">f"],
        sensor2: f32 [">f"],
        sensor3: f32 [">f"],
        sensor4: f32 [">f"],
    }
}

async fn binary_protocol(ctx: &mut Ctx, py: &Path, seconds: f64) -> Result<()> {
    use netcore_schema::{Client, ProtocolConfig, Reply, Schema, Server, Transport};
    let helper = write_script(&ctx.out, "bp_helper.py", BP_HELPER)?;
    let window = 64u64;
    let (server, port) = start_server(
        py,
        &helper,
        &["server", "--profile", "basic", "--transport", "tcp"],
    )
    .await?;
    let v = run_json(
        py,
        &helper,
        &[
            "bench".into(),
            "--port".into(),
            port.to_string(),
            "--seconds".into(),
            seconds.to_string(),
            "--count".into(),
            "1000000".into(),
            "--window".into(),
            window.to_string(),
        ],
        "",
        Duration::from_secs_f64(seconds * 2.0 + 60.0),
    )
    .await?;
    drop(server);
    let py_rt = v["round_trip_msgs_per_s"].as_f64().unwrap_or(f64::NAN);
    let py_pipe = v["pipelined_msgs_per_s"].as_f64().unwrap_or(f64::NAN);

    let schema = || -> Result<Schema> {
        Ok(Schema::builder()
            .header_format(">H")
            .message::<Sensor>()
            .build()?)
    };
    let config = || ProtocolConfig::default().with_read_timeout(Duration::from_secs(10));
    let srv = Server::builder(schema()?, config())
        .on(|s: Sensor, _| async move {
            let r = Sensor {
                sensor1: s.sensor1 + 1.0,
                sensor2: s.sensor2 + 1.0,
                sensor3: s.sensor3 + 1.0,
                sensor4: s.sensor4 + 1.0,
            };
            Ok(Some(Reply::typed(&r)?))
        })
        .build()?;
    let handle = srv.bind_tcp("127.0.0.1:0").await?;
    let port = handle.local_addr().port();
    let mut c = Client::connect(Transport::Tcp, ("127.0.0.1", port), schema()?, config()).await?;
    let msg = Sensor {
        sensor1: 1.5,
        sensor2: -2.25,
        sensor3: 0.0,
        sensor4: 1024.0,
    };
    let dur = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while n < 10_000_000 && start.elapsed() < dur {
        c.request(&msg).await?;
        n += 1;
    }
    let rs_rt = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut m = 0u64;
    while m < 100_000_000 && start.elapsed() < dur {
        for _ in 0..window {
            c.feed(&msg).await?;
        }
        c.flush().await?;
        for _ in 0..window {
            c.receive().await?;
        }
        m += window;
    }
    let rs_pipe = m as f64 / start.elapsed().as_secs_f64();
    c.close().await;
    handle.shutdown().await;
    eprintln!("    binary-protocol 0.2.2: {py_rt:.0} rt/s, {py_pipe:.0} pipelined msg/s; netcore-schema: {rs_rt:.0} rt/s, {rs_pipe:.0} pipelined msg/s");
    ctx.add_record(
        "python",
        "typed_16B_round_trips",
        "msg/s",
        Better::Higher,
        &Samples(vec![rs_rt]),
        "binary-protocol 0.2.2 (Python)",
        &Samples(vec![py_rt]),
        Some(Goal::RatioAtLeast(50.0)),
    );
    ctx.add_record(
        "python",
        "typed_16B_pipelined_w64",
        "msg/s",
        Better::Higher,
        &Samples(vec![rs_pipe]),
        "binary-protocol 0.2.2 (Python)",
        &Samples(vec![py_pipe]),
        Some(Goal::RatioAtLeast(50.0)),
    );
    Ok(())
}
