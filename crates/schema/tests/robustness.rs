//! Bad input: the server answers or drops bad messages and keeps serving; the client
//! reports typed errors and stays usable where framing allows.

mod common;

use common::*;
use netcore_schema::{
    Checksum, Client, Codec, ProtocolConfig, Reply, SchemaError, Server, Transport, TypedMessage,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

type Log = Arc<Mutex<Vec<String>>>;

fn strict_config(log: Log) -> ProtocolConfig {
    ProtocolConfig::default()
        .with_max_payload_size(1024)
        .with_read_timeout(Duration::from_secs(1))
        .with_checksum(Checksum::crc32())
        .with_validator(|id, payload| {
            if id == 1 && payload.starts_with(&[0xff, 0xff, 0xff, 0xff]) {
                Err("sensor1 is NaN".into())
            } else {
                Ok(())
            }
        })
        .with_error_handler(move |e, _ctx| {
            log.lock().unwrap().push(format!("{e:?}"));
            match e {
                SchemaError::ValidationFailed { .. } => Reply::typed(&Status {
                    status_code: 400,
                    message: "invalid".into(),
                })
                .ok(),
                _ => None,
            }
        })
}

fn strict_server(log: Log) -> Server {
    Server::builder(schema(">H"), strict_config(log))
        .on(|s: Sensor, _| async move { Ok(Some(Reply::typed(&respond_sensor(s))?)) })
        .on(|s: Status, _| async move { Ok(Some(Reply::typed(&respond_status(s))?)) })
        .build()
        .unwrap()
}

fn codec() -> Codec {
    Codec::new(schema(">H"), strict_config(Log::default()))
}

fn sensor() -> Sensor {
    Sensor {
        sensor1: 1.0,
        sensor2: 2.0,
        sensor3: 3.0,
        sensor4: 4.0,
    }
}

/// A Status frame (header, length, payload, CRC) whose text bytes are `text`.
fn status_frame(text: &[u8]) -> Vec<u8> {
    let mut payload = 7u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&(text.len() as u32).to_be_bytes());
    payload.extend_from_slice(text);
    let mut f = vec![0, 2];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(&payload);
    Checksum::crc32().append(&f.clone(), &mut f);
    f
}

async fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut b))
        .await
        .expect("reply within 5 s")
        .expect("read");
    b
}

#[test]
fn tcp_server_answers_or_drops_bad_messages_and_keeps_the_connection() {
    let log = Log::default();
    rt().block_on(async {
        let handle = strict_server(log.clone())
            .bind_tcp("127.0.0.1:0")
            .await
            .unwrap();
        let mut s = TcpStream::connect(handle.local_addr()).await.unwrap();
        let c = codec();
        let mut wire = Vec::new();
        // Unknown type, header only: answered NOT_FOUND.
        wire.extend_from_slice(&[0, 77]);
        // Bad checksum.
        let mut bad = Vec::new();
        c.encode(&sensor(), &mut bad).unwrap();
        *bad.last_mut().unwrap() ^= 1;
        wire.extend_from_slice(&bad);
        // Invalid UTF-8 with a valid checksum.
        wire.extend_from_slice(&status_frame(&[0xc3, 0x28]));
        // Payload announced over the maximum (skipped without buffering).
        wire.extend_from_slice(&[0, 2, 0, 0, 0x13, 0x88]);
        wire.extend_from_slice(&vec![0xaa; 5000 + 4]);
        // Rejected by the validator: the error handler answers Status 400.
        let mut nan = Vec::new();
        let unchecked = Codec::new(
            schema(">H"),
            ProtocolConfig::default().with_checksum(Checksum::crc32()),
        );
        unchecked
            .encode(
                &Sensor {
                    sensor1: f32::from_bits(u32::MAX),
                    ..sensor()
                },
                &mut nan,
            )
            .unwrap();
        wire.extend_from_slice(&nan);
        // A good message at the end.
        c.encode(&sensor(), &mut wire).unwrap();
        s.write_all(&wire).await.unwrap();

        assert_eq!(read_exact(&mut s, 2).await, [0xff, 0xff]);
        let mut want = Vec::new();
        c.encode(
            &Status {
                status_code: 400,
                message: "invalid".into(),
            },
            &mut want,
        )
        .unwrap();
        assert_eq!(read_exact(&mut s, want.len()).await, want);
        let mut want = Vec::new();
        c.encode(&respond_sensor(sensor()), &mut want).unwrap();
        assert_eq!(read_exact(&mut s, want.len()).await, want);
        let log = log.lock().unwrap().join("\n");
        for e in [
            "BadChecksum",
            "InvalidUtf8",
            "PayloadTooLarge",
            "ValidationFailed",
        ] {
            assert!(log.contains(e), "{e} missing in {log}");
        }
        handle.shutdown().await;
    });
}

#[test]
fn stalled_or_truncated_connection_does_not_block_others() {
    let log = Log::default();
    rt().block_on(async {
        let handle = strict_server(log.clone())
            .bind_tcp("127.0.0.1:0")
            .await
            .unwrap();
        let c = codec();
        let mut frame = Vec::new();
        c.encode(&sensor(), &mut frame).unwrap();
        // A: half a message, then silence.
        let mut a = TcpStream::connect(handle.local_addr()).await.unwrap();
        a.write_all(&frame[..7]).await.unwrap();
        // B is served meanwhile.
        let mut b = Client::connect(
            Transport::Tcp,
            handle.local_addr(),
            schema(">H"),
            strict_config(Log::default()).with_read_timeout(Duration::from_secs(10)),
        )
        .await
        .unwrap();
        let r = b.request(&sensor()).await.unwrap();
        assert_eq!(r.decode::<Sensor>().unwrap(), respond_sensor(sensor()));
        // A is closed by the server after read_timeout (1 s) mid-message.
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), a.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0);
        assert!(log.lock().unwrap().iter().any(|e| e.contains("Timeout")));
        // C: truncated by closing mid-message.
        let mut cc = TcpStream::connect(handle.local_addr()).await.unwrap();
        cc.write_all(&frame[..5]).await.unwrap();
        drop(cc);
        let seen = async {
            while !log.lock().unwrap().iter().any(|e| e.contains("Truncated")) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), seen)
            .await
            .expect("Truncated reported");
        let r = b.request(&sensor()).await.unwrap();
        assert_eq!(r.type_id(), 1);
        handle.shutdown().await;
    });
}

#[test]
fn udp_server_drops_bad_datagrams_and_answers_good_ones() {
    let log = Log::default();
    rt().block_on(async {
        let handle = strict_server(log.clone())
            .bind_udp("127.0.0.1:0")
            .await
            .unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.connect(handle.local_addr()).await.unwrap();
        let c = codec();
        let mut good = Vec::new();
        c.encode(&sensor(), &mut good).unwrap();
        let mut bad_crc = good.clone();
        bad_crc[3] ^= 0x40;
        let mut long = good.clone();
        long.insert(5, 0);
        for d in [&[1u8][..], &bad_crc, &long, &status_frame(&[0xff])] {
            sock.send(d).await.unwrap();
        }
        sock.send(&[0, 99]).await.unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], [0xff, 0xff], "unknown type answered NOT_FOUND");
        sock.send(&good).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let mut want = Vec::new();
        c.encode(&respond_sensor(sensor()), &mut want).unwrap();
        assert_eq!(&buf[..n], want);
        let log = log.lock().unwrap().join("\n");
        for e in ["Truncated", "BadChecksum", "InvalidUtf8"] {
            assert!(log.contains(e), "{e} missing in {log}");
        }
        handle.shutdown().await;
    });
}

#[test]
fn client_reports_typed_errors_and_stays_usable() {
    rt().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let c = codec();
        let mut script = Vec::new();
        let mut bad = Vec::new();
        c.encode(&sensor(), &mut bad).unwrap();
        *bad.last_mut().unwrap() ^= 0xff;
        script.extend_from_slice(&bad);
        script.extend_from_slice(&status_frame(&[0xfe]));
        c.encode(&sensor(), &mut script).unwrap();
        script.extend_from_slice(&[0, 2, 0xff, 0xff, 0xff, 0xff]); // 4 GiB announced
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(&script).await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let mut client = Client::connect(
            Transport::Tcp,
            addr,
            schema(">H"),
            strict_config(Log::default()),
        )
        .await
        .unwrap();
        assert!(matches!(
            client.receive().await,
            Err(SchemaError::BadChecksum { type_id: 1 })
        ));
        let r = client.receive().await.unwrap();
        assert!(matches!(
            r.decode::<Status>(),
            Err(SchemaError::InvalidUtf8 { .. })
        ));
        assert_eq!(
            client.receive().await.unwrap().decode::<Sensor>().unwrap(),
            sensor()
        );
        let started = std::time::Instant::now();
        assert!(matches!(
            client.receive().await,
            Err(SchemaError::PayloadTooLarge {
                size: 0xffff_ffff,
                max: 1024
            })
        ));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "refused before reading the payload"
        );
        // Nothing more arrives: the receive times out and the connection is then broken.
        assert!(matches!(
            client.receive().await,
            Err(SchemaError::Timeout { .. })
        ));
        assert!(matches!(client.receive().await, Err(SchemaError::Broken)));
        server.abort();
    });
}

#[test]
fn encoding_errors_leave_the_buffer_untouched() {
    let c = codec();
    let mut out = vec![9];
    let too_long = Mixed {
        a: 0,
        b: 0,
        c: 0,
        d: 0.0,
        e: false,
        f: 0.0,
        g: 0,
        name: "nine char".into(),
        raw: [0; 4],
    };
    assert!(matches!(
        c.encode(&too_long, &mut out),
        Err(SchemaError::TooLong { len: 9, max: 8, .. })
    ));
    let nul = Mixed {
        name: "a\0b".into(),
        ..too_long.clone()
    };
    assert!(matches!(
        c.encode(&nul, &mut out),
        Err(SchemaError::InvalidValue { .. })
    ));
    let big = Status {
        status_code: 0,
        message: "x".repeat(2000),
    };
    assert!(matches!(
        c.encode(&big, &mut out),
        Err(SchemaError::PayloadTooLarge { .. })
    ));
    let half = Mixed {
        f: 1e6,
        name: String::new(),
        ..too_long
    };
    assert!(matches!(
        c.encode(&half, &mut out),
        Err(SchemaError::InvalidValue { .. })
    ));
    use netcore_schema::Value;
    assert!(c
        .encode_values(2, &[Value::Int(-1), Value::Text("x".into())], &mut out)
        .is_err());
    assert!(c.encode_values(2, &[Value::UInt(1)], &mut out).is_err());
    assert!(c.encode_values(50, &[], &mut out).is_err());
    assert_eq!(out, [9]);
    // Bounded text in a variable layout is also limited to its declared length.
    let b = Blob {
        id: 0,
        data: vec![],
        note: String::new(),
        flag: false,
        tag: "12345".into(),
    };
    assert!(matches!(
        b.encode(&mut Vec::new()),
        Err(SchemaError::TooLong { max: 4, .. })
    ));
}

#[test]
fn connection_limit_queues_extra_connections_and_shutdown_does_not_hang() {
    rt().block_on(async {
        let server = Server::builder(schema(">H"), config(false).with_max_connections(1))
            .on(|s: Sensor, _| async move { Ok(Some(Reply::typed(&respond_sensor(s))?)) })
            .build()
            .unwrap();
        let handle = server.bind_tcp("127.0.0.1:0").await.unwrap();
        let addr = handle.local_addr();
        let mut a = Client::connect(Transport::Tcp, addr, schema(">H"), config(false))
            .await
            .unwrap();
        assert_eq!(a.request(&sensor()).await.unwrap().type_id(), 1);
        let mut b = Client::connect(Transport::Tcp, addr, schema(">H"), config(false))
            .await
            .unwrap();
        b.send(&sensor()).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(300), b.receive()).await;
        assert!(waiting.is_err(), "second connection must wait for a slot");
        a.close().await;
        let r = tokio::time::timeout(Duration::from_secs(5), b.receive())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.decode::<Sensor>().unwrap(), respond_sensor(sensor()));
        // A third connection waits for the slot held by b; shutdown must still finish.
        let _c = TcpStream::connect(addr).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), handle.shutdown())
            .await
            .expect("shutdown finishes");
        // After shutdown the server closed b's connection.
        let closed = tokio::time::timeout(Duration::from_secs(5), b.receive())
            .await
            .unwrap();
        assert!(
            matches!(closed, Err(SchemaError::ConnectionClosed)),
            "{closed:?}"
        );
    });
}
