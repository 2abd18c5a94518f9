//! Rust vs binary_protocol 0.2.2 in the same run, TCP loopback: server round trips (send,
//! wait for the answer), pipelined requests (windows of 64 messages, then their 64
//! answers) and one-way pipelined sends (no answers; one final request confirms the
//! server handled them all), for the 16-byte fixed SENSOR layout and the variable STATUS layout
//! (`u32` + text). Each server runs on its own thread (Rust) or process (Python). Every
//! loop is bounded in count and time; rounds are interleaved and the best of each kept.
//!
//! Run: `cargo bench -p netcore-schema --bench vs_python` (Python from NETCORE_PYTHON or
//! <workspace>/.venv; without it only the Rust figures are printed).
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use netcore_schema::{Client, Transport, TypedMessage};
use std::time::{Duration, Instant};

const SECONDS: f64 = 1.5;
const MAX_ROUND_TRIPS: u64 = 1_000_000;
const MAX_PIPELINED: u64 = 20_000_000;
const WINDOW: u64 = 64;
const ROUNDS: usize = 3;

#[derive(Clone, Copy, Debug)]
struct Figures {
    round_trip: f64,
    pipelined: f64,
    one_way: f64,
}

fn single_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs a Rust server on its own thread and single-threaded runtime (like the Python
/// server runs in its own process); returns its port and a stop function.
fn rust_server_thread() -> (u16, impl FnOnce()) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let t = std::thread::spawn(move || {
        single_thread().block_on(async move {
            let server = rust_server(">H", false);
            let handle = server.bind_tcp("127.0.0.1:0").await.expect("bind");
            tx.send(handle.local_addr().port()).expect("port");
            let _ = stop_rx.await;
            handle.shutdown().await;
        })
    });
    let port = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server port");
    (port, move || {
        let _ = stop_tx.send(());
        let _ = t.join();
    })
}

async fn measure<T: TypedMessage, O: TypedMessage>(
    c: &mut Client,
    msg: &T,
    one_way_msg: &O,
) -> Figures {
    let limit = Duration::from_secs_f64(SECONDS);
    let start = Instant::now();
    let mut n = 0u64;
    while n < MAX_ROUND_TRIPS && start.elapsed() < limit {
        let r = c.request(msg).await.expect("round trip");
        assert_eq!(r.type_id(), T::TYPE_ID);
        n += 1;
    }
    let round_trip = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut m = 0u64;
    while m < MAX_PIPELINED && start.elapsed() < limit {
        for _ in 0..WINDOW {
            c.feed(msg).await.expect("feed");
        }
        c.flush().await.expect("flush");
        for _ in 0..WINDOW {
            c.receive().await.expect("receive");
        }
        m += WINDOW;
    }
    let pipelined = m as f64 / start.elapsed().as_secs_f64();
    // One-way sends (no answers), then one request confirming all were handled.
    let start = Instant::now();
    let mut k = 0u64;
    while k < MAX_PIPELINED && (k % 1024 != 0 || start.elapsed() < limit) {
        c.feed(one_way_msg).await.expect("feed");
        k += 1;
    }
    let r = c.request(msg).await.expect("sync");
    assert_eq!(r.type_id(), T::TYPE_ID);
    let one_way = k as f64 / start.elapsed().as_secs_f64();
    Figures {
        round_trip,
        pipelined,
        one_way,
    }
}

fn rust_figures(kind: &str) -> Figures {
    let (port, stop) = rust_server_thread();
    let f = single_thread().block_on(async {
        let mut c = Client::connect(
            Transport::Tcp,
            ("127.0.0.1", port),
            schema(">H"),
            config(false),
        )
        .await
        .expect("connect");
        let f = if kind == "fixed" {
            let msg = Sensor {
                sensor1: 1.5,
                sensor2: -2.25,
                sensor3: 0.0,
                sensor4: 1024.0,
            };
            let event = Event {
                sensor1: 1.5,
                sensor2: -2.25,
                sensor3: 0.0,
                sensor4: 1024.0,
            };
            measure(&mut c, &msg, &event).await
        } else {
            let msg = Status {
                status_code: 200,
                message: "hello wörld".into(),
            };
            let note = Note {
                status_code: 200,
                message: "hello wörld".into(),
            };
            measure(&mut c, &msg, &note).await
        };
        c.close().await;
        f
    });
    stop();
    f
}

fn python_figures(py: &std::path::PathBuf, port: u16, kind: &str) -> Figures {
    let out = run_helper(
        py,
        &[
            "bench",
            "--port",
            &port.to_string(),
            "--seconds",
            &SECONDS.to_string(),
            "--count",
            "1000000",
            "--window",
            &WINDOW.to_string(),
            "--kind",
            kind,
        ],
        Duration::from_secs_f64(SECONDS * 2.0 + 60.0),
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("bench json");
    Figures {
        round_trip: v["round_trip_msgs_per_s"].as_f64().unwrap_or(0.0),
        pipelined: v["pipelined_msgs_per_s"].as_f64().unwrap_or(0.0),
        one_way: v["one_way_msgs_per_s"].as_f64().unwrap_or(0.0),
    }
}

fn best(v: &[Figures]) -> Figures {
    let zero = Figures {
        round_trip: 0.0,
        pipelined: 0.0,
        one_way: 0.0,
    };
    v.iter().fold(zero, |a, b| Figures {
        round_trip: a.round_trip.max(b.round_trip),
        pipelined: a.pipelined.max(b.pipelined),
        one_way: a.one_way.max(b.one_way),
    })
}

fn line(who: &str, kind: &str, f: Figures) {
    println!(
        "[{kind}] {who}: round trips {:>10.0}  pipelined {:>10.0}  one-way {:>10.0} msg/s",
        f.round_trip, f.pipelined, f.one_way
    );
}

fn json(f: Figures) -> String {
    format!(
        "{{\"round_trip\":{:.0},\"pipelined\":{:.0},\"one_way\":{:.0}}}",
        f.round_trip, f.pipelined, f.one_way
    )
}

fn main() {
    let py = python();
    let mut out = Vec::new();
    for kind in ["fixed", "variable"] {
        let (mut rust, mut pyth, mut cross) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            rust.push(rust_figures(kind));
            let Some(py) = &py else { continue };
            let (guard, port) = python_server(py, "basic", "tcp");
            pyth.push(python_figures(py, port, kind));
            drop(guard);
            let (port, stop) = rust_server_thread();
            cross.push(python_figures(py, port, kind));
            stop();
        }
        let r = best(&rust);
        line("rust   client -> rust   server", kind, r);
        if py.is_none() {
            println!("python figures skipped (no interpreter with binary_protocol)");
            continue;
        }
        let (p, x) = (best(&pyth), best(&cross));
        line("python client -> python server", kind, p);
        line("python client -> rust   server", kind, x);
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        println!(
            "[{kind}] ratio rust/python (best of {ROUNDS}): round trips {:.1}x, pipelined {:.1}x, one-way {:.1}x (goal >= 50x)",
            ratio(r.round_trip, p.round_trip),
            ratio(r.pipelined, p.pipelined),
            ratio(r.one_way, p.one_way)
        );
        out.push(format!(
            "\"{kind}\":{{\"rust\":{},\"python\":{},\"python_client_rust_server\":{}}}",
            json(r),
            json(p),
            json(x)
        ));
    }
    println!("{{{}}}", out.join(","));
}
