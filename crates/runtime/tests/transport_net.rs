//! TCP, Unix and in-process (`mem://`, `sim://`) transports through `connect`/`listen`.

use std::time::Duration;

use netcore_runtime::transport::{
    connect, listen, LinkProfile, Transport, TransportAddr, TransportError, TransportKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

fn addr(s: &str) -> TransportAddr {
    s.parse().expect("valid address")
}

/// Sends `n` bytes each way concurrently and checks both sides receive them intact.
async fn exchange(a: Transport, b: Transport, n: usize) {
    let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    let (mut ar, mut aw) = a.into_split();
    let (mut br, mut bw) = b.into_split();
    let d1 = data.clone();
    let w1 = tokio::spawn(async move {
        aw.write_all(&d1).await.unwrap();
        aw.shutdown().await.unwrap();
        aw
    });
    let d2 = data.clone();
    let w2 = tokio::spawn(async move {
        bw.write_all(&d2).await.unwrap();
        bw.shutdown().await.unwrap();
        bw
    });
    let mut got_b = Vec::new();
    let mut got_a = Vec::new();
    let (ra, rb) = tokio::join!(ar.read_to_end(&mut got_a), br.read_to_end(&mut got_b));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(got_a.len(), n);
    assert_eq!(got_b.len(), n);
    assert!(got_a == data && got_b == data, "payload corrupted");
    let _ = (w1.await.unwrap(), w2.await.unwrap());
}

#[tokio::test]
async fn tcp_connect_listen_exchange_and_info() {
    timeout(LIMIT, async {
        let mut l = listen(&addr("tcp://127.0.0.1:0")).await.unwrap();
        let bound = l.local_addr().unwrap();
        let TransportAddr::Tcp(t) = &bound else {
            panic!()
        };
        assert_ne!(t.port, 0);
        let (client, server) = tokio::join!(connect(&bound), l.accept());
        let (client, server) = (client.unwrap(), server.unwrap());
        for t in [&client, &server] {
            assert_eq!(t.info().kind, TransportKind::Tcp);
            assert!(t.is_tcp());
            assert_eq!(t.info().link_hint.unwrap().profile, LinkProfile::Tcp);
        }
        assert_eq!(client.info().peer, server.info().local);
        assert_eq!(client.info().local, server.info().peer);
        exchange(client, server, 1 << 20).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn tcp_notsent_lowat_from_address_and_at_runtime() {
    timeout(LIMIT, async {
        let mut l = listen(&addr("tcp://127.0.0.1:0?notsent_lowat=20000"))
            .await
            .unwrap();
        let bound = l.local_addr().unwrap();
        assert!(
            bound.to_string().ends_with("?notsent_lowat=20000"),
            "{bound}"
        );
        let (client, server) = tokio::join!(connect(&bound), l.accept());
        let (client, server) = (client.unwrap(), server.unwrap());
        assert_eq!(client.tcp_notsent_lowat().unwrap(), 20000);
        assert_eq!(server.tcp_notsent_lowat().unwrap(), 20000);
        client.set_tcp_notsent_lowat(65536).unwrap();
        assert_eq!(client.tcp_notsent_lowat().unwrap(), 65536);
        // The tuning handle keeps working after a split and does not keep the socket open:
        // dropping the transport closes the connection for the peer.
        drop(client);
        let mut server = server;
        let mut buf = [0u8; 1];
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn tcp_connect_refused_is_typed_and_helpful() {
    // Bind then drop to get a port with (almost certainly) no listener.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = timeout(LIMIT, connect(&addr(&format!("tcp://127.0.0.1:{port}"))))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, TransportError::Io { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("connect to tcp://127.0.0.1"), "{msg}");
    assert!(msg.contains("is a server listening"), "{msg}");
}

#[tokio::test]
async fn unix_socket_exchange_and_cleanup() {
    timeout(LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netcore.sock");
        let a = addr(&format!("unix://{}", path.display()));
        let mut l = listen(&a).await.unwrap();
        assert!(path.exists());
        let (client, server) = tokio::join!(connect(&a), l.accept());
        let (client, server) = (client.unwrap(), server.unwrap());
        assert_eq!(client.info().kind, TransportKind::Unix);
        assert!(!client.is_tcp());
        assert!(client.tcp_notsent_lowat().is_err());
        exchange(client, server, 256 * 1024).await;
        // A second listener on the same path fails while the first is alive.
        let err = listen(&a).await.unwrap_err();
        assert!(
            err.to_string().contains("pick another port or path"),
            "{err}"
        );
        drop(l);
        assert!(!path.exists(), "listener removes its socket file");
        let err = connect(&a).await.unwrap_err();
        assert!(matches!(err, TransportError::Io { .. }));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn tcp_listener_serves_many_clients() {
    timeout(LIMIT, async {
        let mut l = listen(&addr("tcp://127.0.0.1:0")).await.unwrap();
        let bound = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..16 {
                let mut t = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 8];
                    t.read_exact(&mut buf).await.unwrap();
                    t.write_all(&buf).await.unwrap();
                });
            }
        });
        let mut clients = Vec::new();
        for i in 0..16u64 {
            let bound = bound.clone();
            clients.push(tokio::spawn(async move {
                let mut t = connect(&bound).await.unwrap();
                t.write_all(&i.to_le_bytes()).await.unwrap();
                let mut buf = [0u8; 8];
                t.read_exact(&mut buf).await.unwrap();
                assert_eq!(u64::from_le_bytes(buf), i);
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        server.await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn mem_listener_by_name() {
    timeout(LIMIT, async {
        let a = addr("mem://net-test-mem?buffer=1024");
        let err = connect(&a).await.unwrap_err();
        assert!(
            matches!(err, TransportError::NoSuchListener { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("listen("), "{err}");
        let mut l = listen(&a).await.unwrap();
        let err = listen(&a).await.unwrap_err();
        assert!(matches!(err, TransportError::NameInUse { .. }));
        let (client, server) = tokio::join!(connect(&a), l.accept());
        let (client, server) = (client.unwrap(), server.unwrap());
        assert_eq!(server.info().kind, TransportKind::Mem);
        exchange(client, server, 100_000).await;
        drop(l);
        // The name is free again.
        let _again = listen(&a).await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test(start_paused = true)]
async fn sim_listener_by_name_paces_connections() {
    let a = addr("sim://net-test-sim?rate=10000&latency=20ms");
    let mut l = listen(&a).await.unwrap();
    let (client, server) = tokio::join!(connect(&a), l.accept());
    let (mut client, mut server) = (client.unwrap(), server.unwrap());
    assert_eq!(client.info().kind, TransportKind::Sim);
    assert_eq!(
        server.info().link_hint.unwrap().rate_bytes_per_sec,
        Some(10_000)
    );
    let start = tokio::time::Instant::now();
    client.write_all(&[1u8; 1000]).await.unwrap();
    let mut buf = vec![0u8; 1000];
    server.read_exact(&mut buf).await.unwrap();
    let took = start.elapsed();
    // 1000 bytes at 10 kB/s = 100 ms, plus 20 ms latency.
    assert!(
        took >= Duration::from_millis(119) && took <= Duration::from_millis(130),
        "{took:?}"
    );
}

#[tokio::test]
async fn single_connection_listeners_are_exhausted_after_one() {
    // stdio cannot be exercised inside the test harness's stdout, but the listener contract
    // is shared with serial: one transport, then a typed error.
    let mut l = listen(&TransportAddr::Stdio).await.unwrap();
    assert!(l.local_addr().is_none());
    let t = l.accept().await.unwrap();
    assert_eq!(t.info().kind, TransportKind::Stdio);
    let err = l.accept().await.unwrap_err();
    assert!(matches!(err, TransportError::ListenerExhausted { .. }));
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn tls_without_feature_says_how_to_enable_it() {
    let err = connect(&addr("tls://127.0.0.1:1?ca=/x")).await.unwrap_err();
    assert!(err.to_string().contains("--features tls"), "{err}");
}

#[tokio::test]
async fn unix_stale_socket_file_is_replaced_but_regular_files_are_not() {
    timeout(LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stale.sock");
        // A socket file whose server is gone (bound, then the listener forgotten).
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let a = addr(&format!("unix://{}", path.display()));
        let mut l = listen(&a).await.unwrap();
        let (c, s) = tokio::join!(connect(&a), l.accept());
        exchange(c.unwrap(), s.unwrap(), 1000).await;

        // A regular file in the way is never removed.
        let file = dir.path().join("data.txt");
        std::fs::write(&file, b"keep me").unwrap();
        let err = listen(&addr(&format!("unix://{}", file.display())))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Io { .. }), "{err:?}");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    })
    .await
    .expect("test timed out");
}
