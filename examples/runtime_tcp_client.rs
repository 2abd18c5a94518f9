//! A netcore TCP client on the runtime layer, talking to `runtime_tcp_server`: a
//! request, many concurrent ones on the same connection, a deadline, a resumable
//! download, and the same with the blocking API.
//!
//! ```text
//! cargo run -p netcore-runtime --example runtime_tcp_server -- tcp://127.0.0.1:7000 ./some-dir
//! cargo run -p netcore-runtime --example runtime_tcp_client -- tcp://127.0.0.1:7000 [FILE]
//! ```

use netcore_runtime::blocking::BlockingPipe;
use netcore_runtime::transport::TransportAddr;
use netcore_runtime::{transfer, MessageBatch, Pipe, PipeError};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: TransportAddr = args
        .next()
        .unwrap_or_else(|| "tcp://127.0.0.1:7000".into())
        .parse()?;
    let file = args.next();

    // Async API.
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async_client(&addr, file.as_deref()))?;

    // Blocking API: the same capabilities without async code.
    let pipe = BlockingPipe::connect(&addr)?;
    let reply = pipe.request_timeout("time", "", Duration::from_secs(5))?;
    println!(
        "blocking: server time {}",
        String::from_utf8_lossy(&reply.collect(64)?)
    );
    pipe.close();
    pipe.wait_closed(Duration::from_secs(5))?;
    Ok(())
}

async fn async_client(
    addr: &TransportAddr,
    file: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let pipe = Pipe::connect(addr).await?;
    println!("connected: {:?}", pipe.info());

    let reply = pipe.request("echo", "hello netcore").await?;
    println!(
        "echo: {}",
        String::from_utf8_lossy(&reply.collect(1024).await?)
    );

    // 100 requests at once on one connection, mixed sizes.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..100usize {
        let pipe = pipe.clone();
        tasks.push(tokio::spawn(async move {
            let body = vec![i as u8; 1 + i * 1000];
            let r = pipe.request("echo", body.clone()).await?;
            let got = r.collect(1 << 20).await?;
            assert!(got == body);
            Ok::<_, PipeError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!("100 concurrent echoes in {:?}", t0.elapsed());

    // A burst of telemetry as one batch: one hand-over to the connection and one
    // completion for all 1 000 one-way messages; the server gets ordinary messages.
    let mut batch = MessageBatch::with_capacity(1000);
    for i in 0..1000u32 {
        let reading = format!("t={:.1}", 20.0 + f64::from(i % 50) / 10.0);
        batch.push("telemetry", reading.into_bytes());
    }
    let t0 = Instant::now();
    pipe.send_batch(batch).finished().await?;
    let counted = pipe
        .request("telemetry/count", "")
        .await?
        .collect(64)
        .await?;
    println!(
        "1000 readings sent as one batch in {:?}; server has counted {} so far",
        t0.elapsed(),
        String::from_utf8_lossy(&counted)
    );

    // A deadline: the server has no `slow` route that answers late, but the pattern is:
    match pipe
        .message("time")
        .timeout(Duration::from_secs(2))
        .request("")
        .await
    {
        Ok(r) => println!("time: {}", String::from_utf8_lossy(&r.collect(64).await?)),
        Err(PipeError::TimedOut) => println!("time: no answer within 2 s"),
        Err(e) => return Err(e.into()),
    }

    // A resumable download: run it twice, or interrupt it and run again.
    if let Some(name) = file {
        let dest = std::env::temp_dir().join(format!("netcore-download-{name}"));
        match transfer::fetch_file(&pipe, "files", name, &dest).await {
            Ok(done) => println!(
                "downloaded {name} to {}: {} bytes, {} new (resumed at {}), crc32c {:08x}",
                dest.display(),
                done.length,
                done.received,
                done.resumed_from,
                done.crc32c
            ),
            Err(e) => println!("download of {name} failed: {e}"),
        }
    }
    pipe.close();
    pipe.closed().await;
    Ok(())
}
