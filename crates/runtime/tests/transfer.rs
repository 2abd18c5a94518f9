//! Resumable file transfer: interrupted midway by a dropped connection, resumed on a new
//! one, only the remainder sent, identical checksum; partial files that are not a prefix
//! restart from zero; bad names are refused.

use netcore_runtime::transfer::{self, Crc32c, FetchOutcome, ServeOutcome, TransferError};
use netcore_runtime::transport::{connect, listen, SimConfig, SimLink, TransportAddr};
use netcore_runtime::{Pipe, PipeConfig, PipeError};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(60);

fn content(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn crc(data: &[u8]) -> u32 {
    let mut c = Crc32c::new();
    c.update(data);
    c.value()
}

/// Serves files of `dir` on `pipe`, reporting each served reply's outcome after it
/// finished (or failed).
fn file_server(
    pipe: Pipe,
    dir: PathBuf,
) -> mpsc::UnboundedReceiver<(ServeOutcome, Result<(), PipeError>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(req) = pipe.accept().await {
            if let Ok(out) = transfer::serve_file(&pipe, req, &dir).await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let r = out.handle.finished().await;
                    let _ = tx.send((out, r));
                });
            }
        }
    });
    rx
}

async fn tcp_pair() -> (Pipe, Pipe) {
    let addr: TransportAddr = "tcp://127.0.0.1:0".parse().unwrap();
    let mut l = listen(&addr).await.unwrap();
    let bound = l.local_addr().unwrap();
    let (c, s) = tokio::join!(connect(&bound), l.accept());
    (
        Pipe::new(c.unwrap(), PipeConfig::default()),
        Pipe::new(s.unwrap(), PipeConfig::default()),
    )
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_transfer_resumes_and_sends_only_the_remainder() {
    const LEN: usize = 3 << 20;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(LEN, 1);
    std::fs::write(src.path().join("image.bin"), &data).unwrap();
    let dest = dst.path().join("image.bin");

    // First attempt over a 2 MB/s simulated link, cut when a third has arrived.
    let link = SimLink::pair(SimConfig::default().with_rate(2_000_000));
    let client = Pipe::new(link.a, PipeConfig::default());
    let server = Pipe::new(link.b, PipeConfig::default());
    let mut served = file_server(server.clone(), src.path().to_path_buf());
    let fetch = tokio::spawn({
        let (client, dest) = (client.clone(), dest.clone());
        async move { transfer::fetch_file(&client, "files", "image.bin", &dest).await }
    });
    let cut = timeout(LIMIT, async {
        loop {
            let n = file_len(&dest);
            if n >= (LEN / 3) as u64 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first third never arrived");
    assert!(cut < LEN as u64, "transfer finished before it could be cut");
    // The link dies: the server side goes away abruptly.
    server.abort(netcore_runtime::core::ErrorCode(0x300), "link lost");
    let first = timeout(LIMIT, fetch).await.unwrap().unwrap();
    let have = match first {
        Err(TransferError::Interrupted { have, .. }) => have,
        other => panic!("expected an interrupted transfer, got {other:?}"),
    };
    assert!(
        have >= cut && have < LEN as u64,
        "have {have}, cut at {cut}"
    );
    assert_eq!(file_len(&dest), have);
    assert!(std::fs::read(&dest).unwrap()[..] == data[..have as usize]);
    let (out, r) = timeout(LIMIT, served.recv()).await.unwrap().unwrap();
    assert_eq!(out.offset, 0);
    assert!(r.is_err(), "the cut reply cannot have finished: {r:?}");
    drop((client, server));

    // Second attempt on a new connection: resumes at `have`.
    let (client, server) = tcp_pair().await;
    let mut served = file_server(server, src.path().to_path_buf());
    let done: FetchOutcome = timeout(
        LIMIT,
        transfer::fetch_file(&client, "files", "image.bin", &dest),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(done.resumed_from, have);
    assert_eq!(done.received, LEN as u64 - have);
    assert_eq!(done.length, LEN as u64);
    assert_eq!(done.crc32c, crc(&data));
    let (out, r) = timeout(LIMIT, served.recv()).await.unwrap().unwrap();
    r.unwrap();
    assert_eq!(out.offset, have);
    // Only the remainder went over the wire.
    assert_eq!(
        out.handle.progress(),
        (LEN as u64 - have, Some(LEN as u64 - have))
    );
    assert!(std::fs::read(&dest).unwrap() == data);
}

#[tokio::test]
async fn complete_file_transfers_nothing_and_fresh_fetch_gets_everything() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(200_000, 2);
    std::fs::write(src.path().join("a"), &data).unwrap();
    let (client, server) = tcp_pair().await;
    let _served = file_server(server, src.path().to_path_buf());
    let dest = dst.path().join("a");
    let first = transfer::fetch_file(&client, "files", "a", &dest)
        .await
        .unwrap();
    assert_eq!((first.resumed_from, first.received), (0, 200_000));
    let again = transfer::fetch_file(&client, "files", "a", &dest)
        .await
        .unwrap();
    assert_eq!((again.resumed_from, again.received), (200_000, 0));
    assert_eq!(again.crc32c, crc(&data));
    assert!(std::fs::read(&dest).unwrap() == data);
}

#[tokio::test]
async fn partial_file_that_is_not_a_prefix_restarts_from_zero() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(500_000, 3);
    std::fs::write(src.path().join("f"), &data).unwrap();
    let dest = dst.path().join("f");
    // A partial file from an older version of the file.
    let mut stale = data[..100_000].to_vec();
    stale[500] ^= 0xFF;
    std::fs::write(&dest, &stale).unwrap();
    let (client, server) = tcp_pair().await;
    let _served = file_server(server, src.path().to_path_buf());
    let done = transfer::fetch_file(&client, "files", "f", &dest)
        .await
        .unwrap();
    assert_eq!((done.resumed_from, done.received), (0, 500_000));
    assert!(std::fs::read(&dest).unwrap() == data);

    // A partial file longer than the server's file restarts too.
    let mut long = data.clone();
    long.extend_from_slice(b"trailing");
    std::fs::write(&dest, &long).unwrap();
    let done = transfer::fetch_file(&client, "files", "f", &dest)
        .await
        .unwrap();
    assert_eq!(done.resumed_from, 0);
    assert!(std::fs::read(&dest).unwrap() == data);
}

#[tokio::test]
async fn bad_names_and_missing_files_are_refused() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("ok"), b"x").unwrap();
    let (client, server) = tcp_pair().await;
    let _served = file_server(server, src.path().join("sub-that-does-not-matter"));
    for name in ["../ok", "/etc/passwd", "", "..", "a/b", "missing"] {
        let r = transfer::fetch_file(&client, "files", name, dst.path().join("out")).await;
        assert!(
            matches!(r, Err(TransferError::Refused(_))),
            "{name:?}: {r:?}"
        );
    }
    // The connection is still fine.
    assert!(!client.is_closed());
}

#[test]
fn crc32c_matches_the_core_on_random_splits() {
    let data = content(100_000, 9);
    let whole = netcore_runtime::core::link::crc32c(&data);
    for split in [0usize, 1, 4095, 50_000, 99_999, 100_000] {
        let mut c = Crc32c::new();
        c.update(&data[..split]);
        c.update(&data[split..]);
        assert_eq!(c.value(), whole, "split at {split}");
    }
}

/// Over a lossy serial link a damaged frame fails the reply (typed, nothing corrupted
/// kept); fetching again resumes where the good bytes ended, until the file is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_serial_link_transfer_completes_by_resuming() {
    const RATE: u64 = 200_000;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(150_000, 5);
    std::fs::write(src.path().join("log.bin"), &data).unwrap();
    let dest = dst.path().join("log.bin");
    let link = SimLink::pair(
        SimConfig::default()
            .with_rate(RATE)
            .with_errors(3e-5, 4e-5, 3e-5)
            .with_seed(11),
    );
    let client = Pipe::new(link.a, PipeConfig::serial(RATE));
    let server = Pipe::new(link.b, PipeConfig::serial(RATE));
    let _served = file_server(server, src.path().to_path_buf());
    let mut interrupted = 0;
    let mut last_have = 0u64;
    let done = timeout(LIMIT, async {
        for _ in 0..300 {
            let r = transfer::fetch_file_with_timeout(
                &client,
                "files",
                "log.bin",
                &dest,
                Duration::from_secs(2),
            )
            .await;
            match r {
                Ok(done) => return done,
                Err(TransferError::Interrupted { have, .. }) => {
                    // What arrived is kept across attempts.
                    assert!(have >= last_have, "{have} < {last_have}");
                    last_have = have;
                    interrupted += 1;
                }
                // The request or the reply's head was lost: ask again.
                Err(TransferError::Pipe(PipeError::Message(_) | PipeError::TimedOut)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no complete transfer in 300 attempts");
    })
    .await
    .unwrap();
    assert_eq!(done.crc32c, crc(&data));
    assert!(std::fs::read(&dest).unwrap() == data);
    assert_eq!(done.resumed_from + done.received, data.len() as u64);
    assert!(
        interrupted > 0,
        "no transfer was interrupted: test too weak"
    );
    assert!(!client.is_closed());
}
