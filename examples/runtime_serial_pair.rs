//! A host and a device talking over a serial line with the serial link profile (small
//! CRC-checked frames, paced writes). By default the line is *simulated* — 115 200
//! baud, 2 ms latency and a byte error rate of 1e-4 — so it runs anywhere; damaged
//! messages fail typed and are retried, nothing corrupted is ever delivered.
//!
//! ```text
//! cargo run -p netcore-runtime --example runtime_serial_pair
//! ```
//!
//! On real hardware, run the device side on one machine and the host on the other,
//! pointing each at its port (any `serial://` address works, with `baud`, `parity`,
//! `flow`, `data_bits`, `stop_bits`):
//!
//! ```text
//! cargo run -p netcore-runtime --example runtime_serial_pair -- device serial:///dev/ttyUSB0?baud=115200
//! cargo run -p netcore-runtime --example runtime_serial_pair -- host   serial:///dev/ttyACM0?baud=115200
//! ```
//!
//! Two local pseudo-terminals work too: `socat pty,raw,echo=0,link=/tmp/ttyA
//! pty,raw,echo=0,link=/tmp/ttyB`, then `device serial:///tmp/ttyA` and `host
//! serial:///tmp/ttyB`.

use netcore_runtime::core::Urgency;
use netcore_runtime::transport::{connect, SimConfig, SimLink, TransportAddr};
use netcore_runtime::{Pipe, PipeConfig, PipeError};
use std::time::{Duration, Instant};

/// 115 200 baud at 10 bits per character.
const RATE: u64 = 11_520;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            let link = SimLink::pair(
                SimConfig::default()
                    .with_rate(RATE)
                    .with_latency(Duration::from_millis(2))
                    .with_errors(3e-5, 4e-5, 3e-5)
                    .with_seed(2024),
            );
            let stats = link.stats.clone();
            let device = Pipe::new(link.b, PipeConfig::serial(RATE));
            tokio::spawn(run_device(device));
            let host = Pipe::new(link.a, PipeConfig::serial(RATE));
            run_host(host).await?;
            let (up, down) = (stats.a_to_b(), stats.b_to_a());
            println!(
                "line: {} bytes host→device, {} device→host; {} dropped, {} flipped, {} inserted",
                up.sent,
                down.sent,
                up.dropped + down.dropped,
                up.flipped + down.flipped,
                up.inserted + down.inserted
            );
        }
        [role, addr] => {
            let addr: TransportAddr = addr.parse()?;
            // `Pipe::connect` picks the serial profile from the address's baud rate.
            let t = connect(&addr).await?;
            let pipe = Pipe::with_defaults(t);
            match role.as_str() {
                "device" => run_device(pipe).await,
                "host" => run_host(pipe).await?,
                other => return Err(format!("role must be host or device, not {other}").into()),
            }
        }
        _ => {
            return Err("usage: runtime_serial_pair [host|device serial:///dev/ttyX?baud=N]".into())
        }
    }
    Ok(())
}

/// The device: answers `sensor` with a reading and `log` uploads with their length.
/// Each message is handled in its own task, so a long upload never delays a reading.
async fn run_device(pipe: Pipe) {
    let reading = std::sync::Arc::new(std::sync::Mutex::new(20.0f32));
    while let Some(msg) = pipe.accept().await {
        let (pipe, reading) = (pipe.clone(), reading.clone());
        tokio::spawn(async move {
            let id = msg.id;
            match msg.route() {
                "sensor" => {
                    let v = {
                        let mut r = reading.lock().unwrap_or_else(|p| p.into_inner());
                        *r += 0.25;
                        *r
                    };
                    let _ = pipe.reply(id, v.to_le_bytes().to_vec()).await;
                }
                "log" => {
                    if let Ok(body) = msg.collect(1 << 20).await {
                        let _ = pipe.reply(id, format!("{} bytes stored", body.len())).await;
                    }
                }
                _ => {}
            }
        });
    }
}

/// The host: a bulk log upload while urgent sensor reads keep being answered.
async fn run_host(pipe: Pipe) -> Result<(), Box<dyn std::error::Error>> {
    let params = pipe.ready().await?;
    println!("link up: peer frames up to {} bytes", params.max_frame);
    let upload = tokio::spawn({
        let pipe = pipe.clone();
        async move {
            let t0 = Instant::now();
            let log = vec![b'#'; 20_000];
            // A damaged frame fails the message (typed, nothing corrupted delivered):
            // send it again.
            for attempt in 1..=5 {
                match pipe
                    .message("log")
                    .urgency(Urgency::new(6))
                    .request(log.clone())
                    .await
                {
                    Ok(r) => {
                        let text = r.collect(100).await?;
                        println!(
                            "upload: {} after {:?} (attempt {attempt})",
                            String::from_utf8_lossy(&text),
                            t0.elapsed()
                        );
                        return Ok(());
                    }
                    Err(PipeError::Message(e)) => println!("upload attempt {attempt} lost: {e}"),
                    Err(e) => return Err(e),
                }
            }
            Ok::<(), PipeError>(())
        }
    });
    for _ in 0..10 {
        let t0 = Instant::now();
        match pipe
            .message("sensor")
            .urgency(Urgency::HIGHEST)
            .timeout(Duration::from_secs(2))
            .request("")
            .await
        {
            Ok(r) => {
                let b = r.collect(8).await?;
                match b.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()) {
                    Some(raw) => println!(
                        "sensor: {:.2} °C in {:?}",
                        f32::from_le_bytes(raw),
                        t0.elapsed()
                    ),
                    None => println!("sensor: malformed reading {b:?}"),
                }
            }
            Err(e) => println!("sensor read failed: {e} (retrying)"),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    upload.await??;
    pipe.close();
    pipe.closed().await;
    Ok(())
}
