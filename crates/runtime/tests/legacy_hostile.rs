//! Hostile or broken legacy input through the runtime: garbage, lengths claiming
//! gigabytes, invalid JSON, overflowing and unread bodies. Each gets a typed error and
//! bounded memory, and other connections (and other messages) carry on.

use netcore_core::{ConnectionError, LimitKind, MessageError, ProtocolViolation};
use netcore_legacy::serde_json::{self, Value};
use netcore_legacy::{
    ByteOrder, Config, DecodeError, Event as LEvent, Info, LegacyConnection, MissionHead, Packet,
};
use netcore_runtime::legacy::{self, pipe_with_monitor, LegacyError, LegacyMonitor, LegacyOptions};
use netcore_runtime::transport::{self, Listener, TransportAddr};
use netcore_runtime::{Pipe, PipeError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .expect("deadline passed")
}

/// A TCP listener whose connections are served in legacy mode by an echo loop.
struct Server {
    listener: Listener,
    addr: String,
}

impl Server {
    async fn new() -> Server {
        let addr: TransportAddr = "tcp://127.0.0.1:0".parse().unwrap();
        let listener = transport::listen(&addr).await.unwrap();
        let addr = match listener.local_addr().unwrap() {
            TransportAddr::Tcp(t) => t.host_port(),
            other => panic!("{other}"),
        };
        Server { listener, addr }
    }

    /// Accepts one connection; its messages are echoed unless `read` is false (then
    /// they are kept unread in the returned channel).
    async fn accept(&mut self, options: LegacyOptions, read: bool) -> Accepted {
        let t = within(self.listener.accept()).await.unwrap();
        let (pipe, monitor) = pipe_with_monitor(t, options);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let p = pipe.clone();
        tokio::spawn(async move {
            while let Some(msg) = p.accept().await {
                if !read {
                    let _ = tx.send(msg);
                    continue;
                }
                let p = p.clone();
                tokio::spawn(async move {
                    let id = msg.id;
                    if let Ok(body) = msg.collect(64 << 20).await {
                        let _ = p.reply(id, body).await;
                    }
                });
            }
        });
        Accepted {
            pipe,
            monitor,
            unread: rx,
        }
    }
}

struct Accepted {
    pipe: Pipe,
    monitor: LegacyMonitor,
    unread: tokio::sync::mpsc::UnboundedReceiver<netcore_runtime::IncomingMessage>,
}

/// A raw peer crafting LSO packets by hand and decoding answers with the codec.
struct Raw {
    sock: TcpStream,
    codec: LegacyConnection,
    events: Vec<LEvent>,
}

impl Raw {
    async fn connect(addr: &str) -> Raw {
        Raw {
            sock: TcpStream::connect(addr).await.unwrap(),
            codec: LegacyConnection::new(Config::default()),
            events: Vec::new(),
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).await.unwrap();
    }

    async fn send_packet(&mut self, p: Packet) {
        let mut out = Vec::new();
        p.encode(ByteOrder::Little, &mut out);
        self.send_raw(&out).await;
    }

    fn head(ext: &str, route: &str, mid: &str, length: u64) -> Packet {
        Packet::Mission(MissionHead {
            extension: ext.into(),
            length,
            info: Info::request(route, mid),
        })
    }

    /// Sends a complete request as Python would.
    async fn request(&mut self, ext: &str, route: &str, mid: &str, body: &[u8]) {
        self.send_packet(Raw::head(ext, route, mid, body.len() as u64))
            .await;
        for chunk in body.chunks(4096) {
            self.send_packet(Packet::Data {
                extension: ext.into(),
                payload: chunk.to_vec(),
            })
            .await;
        }
    }

    /// Reads until a complete response to `mid` arrived; returns its body.
    async fn response(&mut self, mid: &str) -> Vec<u8> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut started = None;
        let mut body = Vec::new();
        loop {
            for ev in self.events.drain(..) {
                match ev {
                    LEvent::MessageStarted { id, head } => {
                        assert!(head.is_response);
                        if head.message_id.as_deref() == Some(mid) {
                            started = Some(id);
                        }
                    }
                    LEvent::Data { id, data } if Some(id) == started => body.extend(data),
                    LEvent::MessageFinished { id } if Some(id) == started => return body,
                    _ => {}
                }
            }
            let n = within(self.sock.read(&mut buf)).await.unwrap();
            assert!(n > 0, "server closed while waiting for the answer to {mid}");
            self.codec.handle_input(&buf[..n]).unwrap();
            self.events
                .extend(std::iter::from_fn(|| self.codec.poll_event()));
        }
    }

    /// Reads until EOF (the server closed this connection); returns bytes read.
    async fn until_eof(&mut self) -> usize {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        loop {
            match within(self.sock.read(&mut buf)).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    }
}

/// A netcore legacy client on its own connection, used as the bystander.
async fn bystander(server: &mut Server) -> (Pipe, Accepted) {
    let t = transport::connect(&format!("tcp://{}", server.addr).parse().unwrap())
        .await
        .unwrap();
    let client = Pipe::legacy(t, LegacyOptions::default());
    let served = server.accept(LegacyOptions::default(), true).await;
    (client, served)
}

async fn assert_echo(client: &Pipe, text: &'static str) {
    let resp = within(client.request("echo", text)).await.unwrap();
    assert_eq!(resp.collect(1 << 20).await.unwrap(), text);
}

#[tokio::test]
async fn garbage_closes_only_its_own_connection() {
    let mut server = Server::new().await;
    let (client, _served) = bystander(&mut server).await;
    assert_echo(&client, "before").await;

    let mut raw = Raw::connect(&server.addr).await;
    let bad = server.accept(LegacyOptions::default(), true).await;
    // 1 MiB of pseudo-random bytes.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let _ = raw.sock.write_all(&garbage).await;
    let err = within(bad.pipe.closed()).await;
    assert!(
        matches!(err, Some(ConnectionError::Protocol(_))),
        "garbage must end the connection with a protocol error, got {err:?}"
    );
    assert!(bad
        .monitor
        .errors()
        .iter()
        .any(|e| matches!(e, LegacyError::Decode(d) if d.is_fatal())));
    let stats = bad.monitor.stats();
    assert!(stats.codec_buffered_input <= 64 * 1024 + 16 * 1024);
    assert!(stats.buffered_incoming <= LegacyOptions::default().max_buffered_incoming as u64);
    // The server hung up on the bad peer; the bystander is unaffected.
    raw.until_eof().await;
    assert_echo(&client, "after").await;
}

#[tokio::test]
async fn gigabyte_and_negative_lengths_are_typed_fatal_errors() {
    let mut server = Server::new().await;
    let (client, _served) = bystander(&mut server).await;

    // An extension length of 0x7fffffff: refused before buffering a byte of it.
    let mut raw = Raw::connect(&server.addr).await;
    let bad = server.accept(LegacyOptions::default(), true).await;
    raw.send_raw(&[0xff, 0xff, 0xff, 0x7f, b'{', b'"']).await;
    let err = within(bad.pipe.closed()).await;
    match err {
        Some(ConnectionError::Protocol(ProtocolViolation::Limit(l))) => {
            assert_eq!(l.kind, LimitKind::FrameSize);
            assert_eq!(l.actual, 0x7fff_ffff);
        }
        other => panic!("expected a frame-size limit error, got {other:?}"),
    }
    assert!(bad.monitor.stats().codec_buffered_input < 1024);
    assert!(matches!(
        bad.monitor.errors().last(),
        Some(LegacyError::Decode(DecodeError::LengthTooLarge { .. }))
    ));

    // A data packet whose meta claims 1 GiB.
    let mut raw = Raw::connect(&server.addr).await;
    let bad = server.accept(LegacyOptions::default(), true).await;
    let ext = br#"{"type": "data", "extension": "aaaaaa"}"#;
    let mut bytes = (ext.len() as i32).to_le_bytes().to_vec();
    bytes.extend_from_slice(ext);
    bytes.extend_from_slice(&(1i32 << 30).to_le_bytes());
    bytes.extend_from_slice(&[0u8; 4096]);
    raw.send_raw(&bytes).await;
    let err = within(bad.pipe.closed()).await;
    assert!(
        matches!(
            err,
            Some(ConnectionError::Protocol(ProtocolViolation::Limit(_)))
        ),
        "{err:?}"
    );

    // A negative length.
    let mut raw = Raw::connect(&server.addr).await;
    let bad = server.accept(LegacyOptions::default(), true).await;
    raw.send_raw(&(-5i32).to_le_bytes()).await;
    let err = within(bad.pipe.closed()).await;
    assert!(
        matches!(
            err,
            Some(ConnectionError::Protocol(ProtocolViolation::Frame(_)))
        ),
        "{err:?}"
    );
    assert!(matches!(
        bad.monitor.errors().last(),
        Some(LegacyError::Decode(DecodeError::NegativeLength { .. }))
    ));
    raw.until_eof().await;

    assert_echo(&client, "still here").await;
}

#[tokio::test]
async fn invalid_json_is_skipped_and_the_connection_goes_on() {
    let mut server = Server::new().await;
    let mut raw = Raw::connect(&server.addr).await;
    let srv = server.accept(LegacyOptions::default(), true).await;

    // Broken JSON in an extension, an unknown packet type, a head without `length`.
    let mut bytes = Vec::new();
    for (ext, meta) in [
        (&br#"{"type": "miss"#[..], &b"{}"[..]),
        (&br#"{"type": "bogus", "extension": "x"}"#[..], &b"zz"[..]),
        (
            &br#"{"type": "mission"}"#[..],
            &br#"{"extension": "q", "info": {}}"#[..],
        ),
    ] {
        bytes.extend_from_slice(&(ext.len() as i32).to_le_bytes());
        bytes.extend_from_slice(ext);
        bytes.extend_from_slice(&(meta.len() as i32).to_le_bytes());
        bytes.extend_from_slice(meta);
    }
    raw.send_raw(&bytes).await;
    raw.request("okokok", "echo", "goodmsg1", b"still served")
        .await;
    assert_eq!(raw.response("goodmsg1").await, b"still served");

    let stats = srv.monitor.stats();
    assert_eq!(stats.protocol_errors, 3);
    let errors = srv.monitor.errors();
    assert!(errors
        .iter()
        .any(|e| matches!(e, LegacyError::Decode(DecodeError::InvalidJson { .. }))));
    assert!(errors.iter().any(|e| matches!(
        e,
        LegacyError::Decode(DecodeError::UnknownPacketType { .. })
    )));
    assert!(errors
        .iter()
        .any(|e| matches!(e, LegacyError::Decode(DecodeError::InvalidField { .. }))));
    assert!(!srv.pipe.is_closed());
}

#[tokio::test]
async fn a_head_claiming_a_terabyte_is_refused_and_answered() {
    let mut server = Server::new().await;
    let mut raw = Raw::connect(&server.addr).await;
    let srv = server.accept(LegacyOptions::default(), true).await;

    raw.send_packet(Raw::head("huge01", "echo", "hugemsg1", 1 << 40))
        .await;
    for _ in 0..64 {
        raw.send_packet(Packet::Data {
            extension: "huge01".into(),
            payload: vec![7u8; 4096],
        })
        .await;
    }
    // The Python caller is not left waiting: it gets a JSON error as the response.
    let answer: Value = serde_json::from_slice(&raw.response("hugemsg1").await).unwrap();
    assert_eq!(answer["code"], "LIMIT_EXCEEDED");
    assert!(answer["error"].as_str().unwrap().contains("message size"));

    // The refused message never reached the application; the next one does.
    raw.request("next01", "echo", "nextmsg1", b"next").await;
    assert_eq!(raw.response("nextmsg1").await, b"next");
    let stats = srv.monitor.stats();
    assert_eq!((stats.rejected, stats.answered_rejected), (1, 1));
    assert!(stats.peak_buffered_incoming < 64 * 1024);
    assert_eq!(stats.codec.ignored_data_packets, 64);
}

#[tokio::test]
async fn more_data_than_announced_fails_that_message_only() {
    let mut server = Server::new().await;
    let mut raw = Raw::connect(&server.addr).await;
    let mut srv = server.accept(LegacyOptions::default(), false).await;

    raw.send_packet(Raw::head("over01", "echo", "overmsg1", 10))
        .await;
    raw.send_packet(Packet::Data {
        extension: "over01".into(),
        payload: vec![1u8; 4],
    })
    .await;
    raw.send_packet(Packet::Data {
        extension: "over01".into(),
        payload: vec![2u8; 100],
    })
    .await;
    let msg = within(srv.unread.recv()).await.unwrap();
    let err = within(msg.collect(1 << 20)).await.unwrap_err();
    match err {
        PipeError::Message(MessageError::Limit(l)) => {
            assert_eq!(
                (l.kind, l.limit, l.actual),
                (LimitKind::MessageSize, 10, 104)
            );
        }
        other => panic!("expected a message-size error, got {other:?}"),
    }
    raw.request("fine01", "echo", "finemsg1", b"fine").await;
    let msg = within(srv.unread.recv()).await.unwrap();
    assert_eq!(msg.collect(100).await.unwrap(), "fine");
    assert!(!srv.pipe.is_closed());
}

#[tokio::test]
async fn unread_bodies_are_bounded_without_flow_control() {
    let mut server = Server::new().await;
    let mut raw = Raw::connect(&server.addr).await;
    let mut options = LegacyOptions {
        max_buffered_incoming: 64 * 1024,
        ..LegacyOptions::default()
    };
    options.pipe.body_buffer = 16 * 1024;
    let mut srv = server.accept(options, false).await;

    // A 1 MiB message the application does not read.
    let big = vec![5u8; 1 << 20];
    raw.request("bulk01", "bulk", "bulkmsg1", &big).await;
    let msg = within(srv.unread.recv()).await.unwrap();
    assert_eq!(msg.route(), "bulk");
    // Let the sender get well past the limit before reading anything.
    let deadline = tokio::time::Instant::now() + WAIT;
    while srv.monitor.stats().buffer_overflows == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no overflow reported"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = within(msg.collect(2 << 20)).await.unwrap_err();
    assert!(
        matches!(err, PipeError::Message(MessageError::Limit(ref l)) if l.kind == LimitKind::MessageSize),
        "{err:?}"
    );
    let stats = srv.monitor.stats();
    assert!(
        stats.peak_buffered_incoming <= 64 * 1024,
        "buffered {} bytes",
        stats.peak_buffered_incoming
    );
    assert!(matches!(
        srv.monitor.errors().last(),
        Some(LegacyError::BufferFull { .. })
    ));

    // The connection goes on.
    raw.request("small1", "echo", "smallms1", b"small").await;
    let msg = within(srv.unread.recv()).await.unwrap();
    assert_eq!(msg.collect(100).await.unwrap(), "small");
    let _ = legacy::LEGACY_PREFIX;
}

#[tokio::test]
async fn too_many_incomplete_messages_are_refused() {
    let mut server = Server::new().await;
    let mut raw = Raw::connect(&server.addr).await;
    let mut options = LegacyOptions::default();
    options.codec.limits.max_incoming_messages = 8;
    let srv = server.accept(options, true).await;

    // Ten heads, no data: the ninth and tenth are refused and answered.
    for i in 0..10 {
        raw.send_packet(Raw::head(
            &format!("inc{i:03}"),
            "echo",
            &format!("incmsg{i:02}"),
            10,
        ))
        .await;
    }
    let answer: Value = serde_json::from_slice(&raw.response("incmsg09").await).unwrap();
    assert_eq!(answer["code"], "LIMIT_EXCEEDED");
    assert_eq!(srv.monitor.stats().rejected, 2);
    // Completing one of the accepted ones still works.
    raw.send_packet(Packet::Data {
        extension: "inc000".into(),
        payload: b"0123456789".to_vec(),
    })
    .await;
    assert_eq!(raw.response("incmsg00").await, b"0123456789");
}

#[tokio::test]
async fn tiny_and_mixed_data_packets_arrive_intact() {
    let mut server = Server::new().await;
    let mut raw = Raw::connect(&server.addr).await;
    let mut srv = server.accept(LegacyOptions::default(), false).await;

    // 20 000 one-byte packets, then packets of mixed sizes around the coalescing
    // thresholds; the body must come out byte for byte.
    let mut sizes = vec![1usize; 20_000];
    sizes.extend([1023, 1024, 1, 8191, 8192, 3, 4096, 700, 1, 2, 5000, 1]);
    let total: usize = sizes.iter().sum();
    let body: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
    raw.send_packet(Raw::head("tiny01", "tiny", "tinymsg1", total as u64))
        .await;
    let mut bytes = Vec::new();
    let mut at = 0;
    for n in sizes {
        Packet::Data {
            extension: "tiny01".into(),
            payload: body[at..at + n].to_vec(),
        }
        .encode(ByteOrder::Little, &mut bytes);
        at += n;
    }
    raw.send_raw(&bytes).await;
    let msg = within(srv.unread.recv()).await.unwrap();
    let mut got = Vec::new();
    let mut chunks = 0;
    let mut b = msg.body;
    while let Some(c) = within(b.chunk()).await.unwrap() {
        got.extend_from_slice(&c);
        chunks += 1;
    }
    assert!(got == body, "body corrupted");
    // Coalesced: far fewer chunks than packets.
    assert!(chunks < 2_000, "{chunks} chunks for 20 012 packets");
    assert_eq!(srv.monitor.stats().buffered_incoming, 0);
}

#[tokio::test]
async fn the_message_hogging_the_buffer_is_dropped_not_its_neighbours() {
    let mut server = Server::new().await;
    let mut raw = Raw::connect(&server.addr).await;
    let mut options = LegacyOptions {
        max_buffered_incoming: 64 * 1024,
        ..LegacyOptions::default()
    };
    options.pipe.body_buffer = 4 * 1024;
    let mut srv = server.accept(options, false).await;

    // A: 63 000 bytes nobody reads yet. B: 8 000 bytes, read at once.
    raw.request("hog001", "hog", "hogmsg01", &[1u8; 63_000])
        .await;
    let hog = within(srv.unread.recv()).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while srv.monitor.stats().buffered_incoming < 50_000 {
        assert!(tokio::time::Instant::now() < deadline, "hog never buffered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    raw.request("small1", "small", "smallms1", &[2u8; 8_000])
        .await;
    let small = within(srv.unread.recv()).await.unwrap();
    assert_eq!(small.route(), "small");
    assert_eq!(within(small.collect(1 << 20)).await.unwrap().len(), 8_000);
    let err = within(hog.collect(1 << 20)).await.unwrap_err();
    assert!(
        matches!(err, PipeError::Message(MessageError::Limit(_))),
        "{err:?}"
    );
    assert_eq!(srv.monitor.stats().buffer_overflows, 1);
}
