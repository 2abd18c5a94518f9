//! Run-time schemas end to end: a server and client built from a schema file, raw
//! handlers, a custom default handler and handler errors reaching the error handler.

mod common;

use common::rt;
use netcore_schema::{Client, Reply, SchemaError, SchemaFile, Server, Transport, Value};
use std::sync::{Arc, Mutex};

const SCHEMA: &str = r#"
header_format = "<H"

[[messages]]
name = "READING"
id = 10
fields = [
  { name = "channel", type = "int", format = "B" },
  { name = "value", type = "float", format = "<d" },
  { name = "unit", type = "str", fixed_length = 4 },
]

[[messages]]
name = "LOG"
id = 11
fields = [
  { name = "level", type = "int", format = "<h" },
  { name = "line", type = "str" },
  { name = "blob", type = "bytes" },
]

[config]
checksum_enabled = true
checksum_size = 2
read_timeout = 5.0
"#;

fn server(errors: Arc<Mutex<Vec<String>>>) -> Server {
    let file = SchemaFile::from_toml(SCHEMA).unwrap();
    let schema = Arc::new(file.schema().unwrap());
    let config = file.config().unwrap().with_error_handler(move |e, ctx| {
        errors
            .lock()
            .unwrap()
            .push(format!("{:?} {e}", ctx.type_id));
        None
    });
    let s2 = schema.clone();
    Server::builder(schema, config)
        .on_request(10, move |req| {
            let s2 = s2.clone();
            async move {
                let mut v = req.values()?;
                if let Value::Float(x) = v[1] {
                    v[1] = Value::Float(x * 2.0);
                }
                Ok(Some(Reply::values(&s2, 10, &v)?))
            }
        })
        .on_request(11, |req| async move {
            let v = req.values()?;
            if v[0] == Value::Int(-1) {
                return Err("level -1 is not allowed".into());
            }
            Ok(None)
        })
        .default_handler(|req| async move {
            Ok(Some(Reply::raw(10, {
                let mut p = vec![req.type_id() as u8];
                p.extend_from_slice(&0.0f64.to_le_bytes());
                p.extend_from_slice(b"dflt");
                p
            })))
        })
        .build()
        .unwrap()
}

fn exercise(transport: Transport) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    rt().block_on(async {
        let srv = server(errors.clone());
        let handle = match transport {
            Transport::Tcp => srv.bind_tcp("127.0.0.1:0").await.unwrap(),
            Transport::Udp => srv.bind_udp("127.0.0.1:0").await.unwrap(),
        };
        let file = SchemaFile::from_toml(SCHEMA).unwrap();
        let mut c = Client::connect(
            transport,
            handle.local_addr(),
            file.schema().unwrap(),
            file.config().unwrap(),
        )
        .await
        .unwrap();
        let schema = c.codec().schema().clone();
        let v = schema
            .values_from_json(
                10,
                &serde_json::json!({"channel": 3, "value": 1.25, "unit": "mV"}),
            )
            .unwrap();
        c.send_values(10, &v).await.unwrap();
        let r = c.receive().await.unwrap();
        assert_eq!(
            r.to_json().unwrap(),
            serde_json::json!({"channel": 3, "value": 2.5, "unit": "mV"})
        );
        // The handler for LOG rejects level -1: the error handler sees it, nothing is sent.
        let bad = vec![
            Value::Int(-1),
            Value::Text("x".into()),
            Value::Bytes(vec![]),
        ];
        c.send_values(11, &bad).await.unwrap();
        // Unknown type: the custom default handler answers.
        c.send_header_only(99).await.unwrap();
        let r = c.receive().await.unwrap();
        assert_eq!(r.values().unwrap()[2], Value::Text("dflt".into()));
        assert_eq!(r.values().unwrap()[0], Value::UInt(99));
        let errs = errors.lock().unwrap().join("\n");
        assert!(
            errs.contains("Some(11)") && errs.contains("level -1"),
            "{errs}"
        );
        handle.shutdown().await;
    });
}

#[test]
fn dynamic_schema_server_and_client_over_tcp() {
    exercise(Transport::Tcp);
}

#[test]
fn dynamic_schema_server_and_client_over_udp() {
    exercise(Transport::Udp);
}

#[test]
fn checksum_of_another_size_is_rejected_by_the_peer() {
    rt().block_on(async {
        let srv = server(Arc::default());
        let handle = srv.bind_tcp("127.0.0.1:0").await.unwrap();
        let file = SchemaFile::from_toml(SCHEMA).unwrap();
        // Client with CRC-32 instead of the server's CRC-16: the server drops the message.
        let cfg = file
            .config()
            .unwrap()
            .with_checksum(netcore_schema::Checksum::crc32())
            .with_read_timeout(std::time::Duration::from_millis(300));
        let mut c = Client::connect(
            Transport::Tcp,
            handle.local_addr(),
            file.schema().unwrap(),
            cfg,
        )
        .await
        .unwrap();
        let v = vec![Value::UInt(1), Value::Float(1.0), Value::Text("V".into())];
        c.send_values(10, &v).await.unwrap();
        assert!(matches!(
            c.receive().await,
            Err(SchemaError::Timeout { .. })
        ));
        handle.shutdown().await;
    });
}
