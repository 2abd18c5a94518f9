//! The simulated link: rate, latency, backpressure, error injection and the proxy.
//! Everything runs on tokio's paused clock, so no assertion depends on wall-clock speed.

use std::time::Duration;

use netcore_runtime::transport::{
    mem_pair, sim_proxy, LinkProfile, SimConfig, SimLink, TransportKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Writes `total` bytes on `a` while reading them on `b`; returns what `b` read.
async fn transfer(cfg: SimConfig, total: usize) -> (Vec<u8>, Vec<u8>, Duration) {
    let pair = SimLink::pair(cfg);
    let (mut a, mut b) = (pair.a, pair.b);
    let data: Vec<u8> = (0..total).map(|i| (i % 253) as u8).collect();
    let sent = data.clone();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        a.write_all(&sent).await.unwrap();
        a.shutdown().await.unwrap();
        a
    });
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    let took = start.elapsed();
    drop(writer.await.unwrap());
    (data, got, took)
}

#[tokio::test(start_paused = true)]
async fn rate_is_respected() {
    for rate in [11_520u64, 100_000, 1_000_000] {
        let total = (rate * 2) as usize; // two seconds of link time
        let cfg = SimConfig::default().with_rate(rate);
        let (data, got, took) = transfer(cfg, total).await;
        assert_eq!(got, data);
        let measured = total as f64 / took.as_secs_f64();
        assert!(
            measured > rate as f64 * 0.95 && measured < rate as f64 * 1.05,
            "rate {rate}: measured {measured:.0} B/s over {took:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn latency_is_added_once_per_direction() {
    let cfg = SimConfig::default().with_latency(Duration::from_millis(40));
    let pair = SimLink::pair(cfg);
    let (mut a, mut b) = (pair.a, pair.b);
    let start = Instant::now();
    a.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    b.read_exact(&mut buf).await.unwrap();
    let one_way = start.elapsed();
    b.write_all(b"pong").await.unwrap();
    a.read_exact(&mut buf).await.unwrap();
    let rtt = start.elapsed();
    assert_eq!(&buf, b"pong");
    assert_eq!(one_way, Duration::from_millis(40));
    assert_eq!(rtt, Duration::from_millis(80));
}

#[tokio::test(start_paused = true)]
async fn rate_and_latency_combine() {
    // 1 MB/s, 1 ms: 10 kB arrive fully after 10 ms + 1 ms.
    let cfg = SimConfig::default()
        .with_rate(1_000_000)
        .with_latency(Duration::from_millis(1));
    let (data, got, took) = transfer(cfg, 10_000).await;
    assert_eq!(got, data);
    assert!(
        took >= Duration::from_millis(11) && took <= Duration::from_millis(12),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn writer_waits_when_buffer_is_full() {
    let cfg = SimConfig::default().with_buffer_limit(1000);
    let pair = SimLink::pair(cfg);
    let (mut a, mut b) = (pair.a, pair.b);
    // Nobody reads b: the writer is held after 1000 bytes.
    let res = tokio::time::timeout(Duration::from_secs(5), a.write_all(&[0u8; 5000])).await;
    assert!(res.is_err(), "write should block on a full link");
    assert_eq!(pair.stats.in_flight().0, 1000);
    assert_eq!(pair.stats.a_to_b().sent, 1000);
    // Reading frees room; the rest flows.
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 5000];
        b.read_exact(&mut buf).await.unwrap();
        b
    });
    a.write_all(&[0u8; 4000]).await.unwrap();
    drop(reader.await.unwrap());
    assert!(pair.stats.in_flight().0 <= 1000);
}

#[tokio::test(start_paused = true)]
async fn error_counts_match_probabilities() {
    let total = 200_000usize;
    let p = 0.01;
    let cfg = SimConfig::default().with_errors(p, p, p).with_seed(1234);
    let pair = SimLink::pair(cfg.clone());
    let stats = pair.stats.clone();
    let (mut a, mut b) = (pair.a, pair.b);
    assert_eq!(a.info().link_hint.unwrap().profile, LinkProfile::Serial);
    let writer = tokio::spawn(async move {
        a.write_all(&vec![0u8; total]).await.unwrap();
        a.shutdown().await.unwrap();
        a
    });
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    drop(writer.await.unwrap());
    let c = stats.a_to_b();
    assert_eq!(c.sent, total as u64);
    // Expected ~2000 each; 5 sigma of a binomial(200000, 0.01) is ~222.
    for (name, n) in [
        ("dropped", c.dropped),
        ("flipped", c.flipped),
        ("inserted", c.inserted),
    ] {
        assert!((1750..=2250).contains(&n), "{name}: {n}");
    }
    assert_eq!(got.len() as u64, c.sent - c.dropped + c.inserted);
    assert_eq!(c.delivered, got.len() as u64);
    // Zeros were sent: every flipped byte has exactly one bit set; inserted ones are random.
    let nonzero = got.iter().filter(|&&x| x != 0).count() as u64;
    assert!(
        nonzero >= c.flipped && nonzero <= c.flipped + c.inserted,
        "{nonzero}"
    );

    // Same seed, same pattern.
    let again = SimLink::pair(cfg);
    let (mut a2, mut b2) = (again.a, again.b);
    let w = tokio::spawn(async move {
        a2.write_all(&vec![0u8; total]).await.unwrap();
        a2.shutdown().await.unwrap();
        a2
    });
    let mut got2 = Vec::new();
    b2.read_to_end(&mut got2).await.unwrap();
    drop(w.await.unwrap());
    assert_eq!(got, got2, "a seed must reproduce the same errors");
}

#[tokio::test(start_paused = true)]
async fn clean_link_is_lossless_in_both_directions() {
    let cfg = SimConfig::default()
        .with_rate(500_000)
        .with_latency(Duration::from_millis(3))
        .with_buffer_limit(4096);
    let pair = SimLink::pair(cfg);
    assert_eq!(pair.a.info().kind, TransportKind::Sim);
    assert_eq!(pair.a.info().link_hint.unwrap().profile, LinkProfile::Tcp);
    let (mut ar, mut aw) = pair.a.into_split();
    let (mut br, mut bw) = pair.b.into_split();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31) as u8).collect();
    let (d1, d2) = (data.clone(), data.clone());
    let w1 = tokio::spawn(async move {
        aw.write_all(&d1).await.unwrap();
        aw.shutdown().await.unwrap();
        aw
    });
    let w2 = tokio::spawn(async move {
        bw.write_all(&d2).await.unwrap();
        bw.shutdown().await.unwrap();
        bw
    });
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let (r1, r2) = tokio::join!(ar.read_to_end(&mut x), br.read_to_end(&mut y));
    r1.unwrap();
    r2.unwrap();
    assert!(x == data && y == data);
    let _ = (w1.await.unwrap(), w2.await.unwrap());
    let c = pair.stats.b_to_a();
    assert_eq!((c.sent, c.delivered, c.dropped), (300_000, 300_000, 0));
}

#[tokio::test(start_paused = true)]
async fn dropping_one_end_ends_the_other() {
    let pair = SimLink::pair(SimConfig::default());
    let (mut a, mut b) = (pair.a, pair.b);
    a.write_all(b"last words").await.unwrap();
    drop(a);
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");
    let err = b.write_all(b"anyone?").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}

#[tokio::test(start_paused = true)]
async fn proxy_forwards_both_ways_through_impairments() {
    let (mut client, pa) = mem_pair(4096);
    let (pb, mut server) = mem_pair(4096);
    let cfg = SimConfig::default()
        .with_rate(100_000)
        .with_latency(Duration::from_millis(10))
        .with_errors(0.0, 0.001, 0.0)
        .with_seed(5);
    let proxy = sim_proxy(pa, pb, cfg);
    let stats = proxy.stats();
    let task = tokio::spawn(proxy.run());

    let start = Instant::now();
    client.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(10));
    server.write_all(&[0u8; 50_000]).await.unwrap();
    server.shutdown().await.unwrap();
    let mut back = Vec::new();
    client.read_to_end(&mut back).await.unwrap();
    assert_eq!(back.len(), 50_000);
    let flipped = back.iter().filter(|&&x| x != 0).count() as u64;
    assert_eq!(flipped, stats.b_to_a().flipped);
    assert!(flipped > 0 && flipped < 200, "{flipped}");
    client.shutdown().await.unwrap();
    let (from_a, from_b) = task.await.unwrap().unwrap();
    assert_eq!((from_a, from_b), (5, 50_000));
    assert_eq!(stats.a_to_b().delivered, 5);
}

#[tokio::test(start_paused = true)]
async fn error_pattern_does_not_depend_on_write_sizes() {
    let cfg = SimConfig::default()
        .with_rate(50_000)
        .with_errors(0.002, 0.002, 0.002)
        .with_seed(77)
        .with_buffer_limit(3000);
    let data: Vec<u8> = (0..40_000u32).map(|i| (i * 17 % 256) as u8).collect();
    let mut outputs = Vec::new();
    for chunk in [1usize, 7, 1000, 40_000] {
        let pair = SimLink::pair(cfg.clone());
        let (mut a, mut b) = (pair.a, pair.b);
        let d = data.clone();
        let w = tokio::spawn(async move {
            for part in d.chunks(chunk) {
                a.write_all(part).await.unwrap();
            }
            a.shutdown().await.unwrap();
            a
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        drop(w.await.unwrap());
        outputs.push(got);
    }
    assert_ne!(outputs[0], data, "errors were configured");
    for o in &outputs[1..] {
        assert!(
            *o == outputs[0],
            "same seed and bytes must give the same output"
        );
    }
}

#[tokio::test]
async fn latency_holds_on_the_real_clock() {
    // Lower bound only: the link never delivers early.
    let cfg = SimConfig::default().with_latency(Duration::from_millis(30));
    let pair = SimLink::pair(cfg);
    let (mut a, mut b) = (pair.a, pair.b);
    let start = std::time::Instant::now();
    a.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(10), b.read_exact(&mut buf))
        .await
        .expect("delivered")
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[tokio::test(start_paused = true)]
async fn extreme_parameters_do_not_panic() {
    let huge: SimConfig = "latency=18446744073709551615s&rate=1&buffer=1"
        .parse()
        .unwrap();
    let pair = SimLink::pair(huge);
    let (mut a, mut b) = (pair.a, pair.b);
    a.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 1];
    let res = tokio::time::timeout(Duration::from_secs(3600), b.read_exact(&mut buf)).await;
    assert!(
        res.is_err(),
        "a year of latency does not deliver within an hour"
    );

    let fast = SimConfig::default()
        .with_rate(u64::MAX)
        .with_errors(f64::NAN, -1.0, 2.0);
    let pair = SimLink::pair(fast);
    let (mut a, mut b) = (pair.a, pair.b);
    a.write_all(&[5u8; 100]).await.unwrap();
    let mut got = [0u8; 200];
    b.read_exact(&mut got).await.unwrap();
    // insert probability 2.0 is clamped to 1: every byte gets an inserted byte before it.
    assert_eq!(pair.stats.a_to_b().inserted, 100);
    assert_eq!(pair.stats.a_to_b().dropped, 0);
}
