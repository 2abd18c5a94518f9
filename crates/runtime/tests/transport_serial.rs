//! Serial transports on real pseudo-terminal pairs made by socat.
//!
//! Needs the `socat` program (Debian/Ubuntu package `socat`: `apt-get install -y socat`).

mod transport_support;

use std::time::Duration;

use netcore_runtime::transport::{
    connect, from_blocking, listen, open_serial, BlockingOptions, LinkHint, LinkProfile,
    SerialConfig, Transport, TransportAddr, TransportError, TransportKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use transport_support::PtyPair;

const LIMIT: Duration = Duration::from_secs(30);

async fn exchange(a: Transport, b: Transport, n: usize) {
    let data: Vec<u8> = (0..n).map(|i| (i * 11 % 256) as u8).collect();
    let (mut ar, mut aw) = a.into_split();
    let (mut br, mut bw) = b.into_split();
    let (d1, d2) = (data.clone(), data.clone());
    let w1 = tokio::spawn(async move {
        aw.write_all(&d1).await.unwrap();
        aw.flush().await.unwrap();
        aw
    });
    let w2 = tokio::spawn(async move {
        bw.write_all(&d2).await.unwrap();
        bw.flush().await.unwrap();
        bw
    });
    let (mut x, mut y) = (vec![0u8; n], vec![0u8; n]);
    let (r1, r2) = tokio::join!(ar.read_exact(&mut x), br.read_exact(&mut y));
    r1.unwrap();
    r2.unwrap();
    assert!(x == data, "a received corrupted data");
    assert!(y == data, "b received corrupted data");
    let _ = (w1.await.unwrap(), w2.await.unwrap());
}

#[tokio::test]
async fn serial_pty_pair_via_addresses() {
    let pty = PtyPair::new();
    timeout(LIMIT, async {
        let a = connect(&PtyPair::addr(&pty.a, 115_200)).await.unwrap();
        let mut l = listen(&PtyPair::addr(&pty.b, 115_200)).await.unwrap();
        assert!(l.local_addr().is_none());
        let b = l.accept().await.unwrap();
        let err = l.accept().await.unwrap_err();
        assert!(matches!(err, TransportError::ListenerExhausted { .. }));
        assert_eq!(a.info().kind, TransportKind::Serial);
        let hint = a.info().link_hint.unwrap();
        assert_eq!(hint, LinkHint::serial_baud(115_200));
        assert_eq!(hint.profile, LinkProfile::Serial);
        exchange(a, b, 200_000).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn serial_settings_are_applied() {
    let pty = PtyPair::new();
    timeout(LIMIT, async {
        let text = format!(
            "serial://{}?baud=9600&parity=even&flow=software&data_bits=7&stop_bits=2",
            pty.a.display()
        );
        let TransportAddr::Serial(cfg) = text.parse().unwrap() else {
            panic!()
        };
        let a = open_serial(&cfg).unwrap();
        // 1 start + 7 data + 1 parity + 2 stop bits.
        assert_eq!(a.info().link_hint.unwrap().rate_bytes_per_sec, Some(872));
        let b = open_serial(&SerialConfig::new(pty.b.display().to_string(), 9600)).unwrap();
        // 7-bit text survives 7 data bits on a pty.
        let (mut a, mut b) = (a, b);
        a.write_all(b"hello 7 bits").await.unwrap();
        let mut buf = [0u8; 12];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello 7 bits");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_serial_handle_adapter() {
    let pty = PtyPair::new();
    timeout(LIMIT, async {
        let port = tokio_serial::new(pty.a.to_string_lossy(), 115_200)
            .timeout(Duration::from_millis(50))
            .open()
            .expect("open pty as a blocking serial port");
        let reader = port.try_clone().expect("clone serial handle");
        let opts = BlockingOptions::default().with_link_hint(LinkHint::serial_baud(115_200));
        let a = from_blocking(reader, port, opts).unwrap();
        let b = open_serial(&SerialConfig::new(pty.b.to_string_lossy(), 115_200)).unwrap();
        exchange(a, b, 50_000).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn missing_device_is_a_typed_error() {
    let err = connect(&"serial:///dev/netcore-no-such-tty".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Serial { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("/dev/netcore-no-such-tty") && msg.contains("dialout"),
        "{msg}"
    );
}
