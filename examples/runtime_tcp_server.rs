//! A netcore TCP server on the runtime layer: one task per connection, routes `echo`,
//! `time`, `files` (resumable downloads from a directory) and `telemetry` (one-way
//! readings, counted; `telemetry/count` answers the count).
//!
//! ```text
//! cargo run -p netcore-runtime --example runtime_tcp_server -- tcp://127.0.0.1:7000 ./some-dir
//! cargo run -p netcore-runtime --example runtime_tcp_client -- tcp://127.0.0.1:7000
//! ```
//!
//! Options: `--for SECS` stops the server after that many seconds (default: run until
//! Ctrl-C).

use netcore_runtime::transport::{listen, TransportAddr};
use netcore_runtime::{transfer, IncomingMessage, Pipe, PipeConfig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Telemetry readings received so far (all connections).
static READINGS: AtomicU64 = AtomicU64::new(0);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr: TransportAddr = "tcp://127.0.0.1:7000".parse()?;
    let mut dir = PathBuf::from(".");
    let mut run_for = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--for" => {
                run_for = Some(Duration::from_secs(
                    args.next().ok_or("--for SECS")?.parse()?,
                ))
            }
            s if s.contains("://") => addr = s.parse()?,
            s => dir = PathBuf::from(s),
        }
    }
    let mut listener = listen(&addr).await?;
    println!(
        "listening on {} (serving files from {})",
        listener.local_addr().unwrap_or(addr),
        dir.display()
    );
    let serve = async {
        loop {
            let transport = match listener.accept().await {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    continue;
                }
            };
            // Limits protect the server from its peers: at most 64 messages at once,
            // 16 MiB per message.
            let mut config = PipeConfig::for_transport(transport.info());
            config.core.max_incoming = 64;
            config.core.max_message = Some(16 << 20);
            let pipe = Pipe::new(transport, config);
            println!("{} connected from {:?}", pipe.id(), pipe.info().peer);
            tokio::spawn(serve_connection(pipe, dir.clone()));
        }
    };
    match run_for {
        Some(d) => {
            let _ = tokio::time::timeout(d, serve).await;
        }
        None => {
            tokio::select! {
                _ = serve => {}
                _ = tokio::signal::ctrl_c() => println!("stopping"),
            }
        }
    }
    Ok(())
}

/// Serves one connection until it ends; each message gets its own task so a slow one
/// holds back nobody else.
async fn serve_connection(pipe: Pipe, dir: PathBuf) {
    while let Some(msg) = pipe.accept().await {
        let (pipe, dir) = (pipe.clone(), dir.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(&pipe, msg, &dir).await {
                eprintln!("{}: {e}", pipe.id());
            }
        });
    }
    match pipe.closed().await {
        None => println!("{} closed", pipe.id()),
        Some(e) => println!("{} ended: {e}", pipe.id()),
    }
}

async fn handle(
    pipe: &Pipe,
    msg: IncomingMessage,
    dir: &PathBuf,
) -> Result<(), Box<dyn std::error::Error>> {
    let id = msg.id;
    match msg.route() {
        "echo" => {
            let body = msg.collect(16 << 20).await?;
            pipe.reply(id, body).await?.finished().await?;
        }
        // One-way readings (the client sends them as a batch): counted, not answered.
        "telemetry" => {
            msg.collect(1024).await?;
            READINGS.fetch_add(1, Ordering::Relaxed);
        }
        "telemetry/count" => {
            let n = READINGS.load(Ordering::Relaxed);
            pipe.reply(id, n.to_string()).await?;
        }
        "time" => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            pipe.reply(id, now.to_string()).await?;
        }
        "files" => {
            let served = transfer::serve_file(pipe, msg, dir).await?;
            println!(
                "{}: sending {} from offset {}",
                pipe.id(),
                served.path.display(),
                served.offset
            );
            served.handle.finished().await?;
        }
        other => {
            let reply = format!("no route {other:?}");
            pipe.reply(id, reply).await?;
        }
    }
    Ok(())
}
