//! Interop with the real binary_protocol 0.2.2: byte vectors made by the Python package,
//! Python client ↔ Rust server and Rust client ↔ Python server over TCP and UDP, for
//! several header formats, fixed and variable layouts, both byte orders, checksum on/off.

mod common;

use common::*;
use netcore_schema::{Client, Codec, Frame, SchemaFile, Transport, TypedMessage};
use std::time::Duration;

fn py_schema(py: &std::path::PathBuf, profile: &str) -> SchemaFile {
    let text = run_helper(
        py,
        &["schema", "--profile", profile],
        Duration::from_secs(30),
    );
    SchemaFile::from_json(&text).expect("schema json from python")
}

#[test]
fn python_schema_file_matches_rust_types() {
    let Some(py) = python() else { return };
    for (profile, header, checksum) in PROFILES {
        let file = py_schema(&py, profile);
        let dynamic = file.schema().unwrap();
        let typed = schema(header);
        assert_eq!(dynamic.header(), typed.header(), "{profile}");
        assert_eq!(file.config().unwrap().checksum().is_some(), checksum);
        for t in typed.types() {
            let d = dynamic.get(t.id()).expect("type in python schema");
            assert_eq!(d.layout(), t.layout(), "{profile} type {}", t.id());
        }
    }
}

fn check_vectors(py: &std::path::PathBuf) -> usize {
    let text = run_helper(py, &["vectors"], Duration::from_secs(30));
    let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stored: serde_json::Value =
        serde_json::from_str(include_str!("python/vectors.json")).unwrap();
    assert_eq!(
        vectors, stored,
        "tests/python/vectors.json is stale: regenerate with `bp_helper.py vectors`"
    );
    let mut checked = 0;
    for v in vectors.as_array().unwrap() {
        let profile = v["profile"].as_str().unwrap();
        let (_, header, checksum) = PROFILES.iter().find(|p| p.0 == profile).unwrap();
        let wire = unhex(v["hex"].as_str().unwrap());
        let dyn_codec = Codec::new(py_schema(py, profile).schema().unwrap(), config(*checksum));
        let typed_codec = Codec::new(schema(header), config(*checksum));
        let Some(type_id) = v["type"].as_u64() else {
            let mut out = Vec::new();
            typed_codec.encode_not_found(&mut out);
            assert_eq!(out, wire, "{profile} NOT_FOUND");
            assert_eq!(typed_codec.decode_datagram(&wire).unwrap(), Frame::NotFound);
            checked += 1;
            continue;
        };
        // Dynamic encode from the Python data must give the Python bytes.
        let values = dyn_codec
            .schema()
            .values_from_json(type_id, &v["data"])
            .unwrap();
        let mut out = Vec::new();
        dyn_codec.encode_values(type_id, &values, &mut out).unwrap();
        assert_eq!(out, wire, "{profile} type {type_id} dynamic encode");
        // Decode (typed and dynamic), re-encode, same bytes.
        let Frame::Message {
            type_id: got,
            payload,
        } = typed_codec.decode_datagram(&wire).unwrap()
        else {
            panic!("not a message")
        };
        assert_eq!(got, type_id);
        let mut re = Vec::new();
        match type_id {
            1 => typed_codec.encode(&Sensor::decode(payload).unwrap(), &mut re),
            2 => typed_codec.encode(&Status::decode(payload).unwrap(), &mut re),
            3 => typed_codec.encode(&Mixed::decode(payload).unwrap(), &mut re),
            4 => typed_codec.encode(&Blob::decode(payload).unwrap(), &mut re),
            5 => typed_codec.encode(&Native::decode(payload).unwrap(), &mut re),
            6 => typed_codec.encode(&Empty::decode(payload).unwrap(), &mut re),
            other => panic!("unexpected type {other}"),
        }
        .unwrap();
        assert_eq!(re, wire, "{profile} type {type_id} typed round trip");
        let decoded = typed_codec
            .schema()
            .get(type_id)
            .unwrap()
            .layout()
            .decode(payload)
            .unwrap();
        let mut re2 = Vec::new();
        dyn_codec
            .encode_values(type_id, &decoded, &mut re2)
            .unwrap();
        assert_eq!(re2, wire, "{profile} type {type_id} dynamic round trip");
        checked += 1;
    }
    checked
}

#[test]
fn python_byte_vectors_match() {
    let Some(py) = python() else { return };
    let n = check_vectors(&py);
    assert_eq!(n, PROFILES.len() * 10);
}

fn python_client_against_rust_server(transport: &str) {
    let Some(py) = python() else { return };
    let rt = rt();
    for (profile, header, checksum) in PROFILES {
        let server = rust_server(header, checksum);
        let handle = rt.block_on(start(&server, transport));
        let port = handle.local_addr().port().to_string();
        let out = run_helper(
            &py,
            &[
                "client",
                "--profile",
                profile,
                "--transport",
                transport,
                "--port",
                &port,
            ],
            Duration::from_secs(60),
        );
        let file = py_schema(&py, profile);
        let s = file.schema().unwrap();
        let results: serde_json::Value = serde_json::from_str(&out).unwrap();
        let results = results.as_array().unwrap();
        assert!(
            results.len() >= 10,
            "{profile}/{transport}: {} results",
            results.len()
        );
        for r in results {
            let type_id = r["type"].as_u64().unwrap();
            let resp_type = r["resp_type"].as_u64().unwrap();
            if s.get(type_id).is_none() {
                assert_eq!(
                    resp_type,
                    s.not_found(),
                    "{profile}/{transport}: unknown type answered NOT_FOUND"
                );
                continue;
            }
            let req = s.values_from_json(type_id, &r["req"]).unwrap();
            let mut payload = Vec::new();
            s.get(type_id)
                .unwrap()
                .layout()
                .encode(&req, &mut payload)
                .unwrap();
            let (want_type, want_payload) = expected_reply(type_id, &payload);
            assert_eq!(resp_type, want_type, "{profile}/{transport}");
            let resp = s.values_from_json(resp_type, &r["resp"]).unwrap();
            let mut got = Vec::new();
            s.get(resp_type)
                .unwrap()
                .layout()
                .encode(&resp, &mut got)
                .unwrap();
            assert_eq!(got, want_payload, "{profile}/{transport} type {type_id}");
        }
        rt.block_on(handle.shutdown());
    }
}

#[test]
fn python_client_rust_server_tcp() {
    python_client_against_rust_server("tcp");
}

#[test]
fn python_client_rust_server_udp() {
    python_client_against_rust_server("udp");
}

fn cases() -> (Sensor, Status, Mixed, Blob, Native) {
    (
        Sensor {
            sensor1: 1.5,
            sensor2: -2.25,
            sensor3: 0.0,
            sensor4: 1e6,
        },
        Status {
            status_code: 41,
            message: "grüße".into(),
        },
        Mixed {
            a: -3,
            b: 7,
            c: i64::MIN,
            d: 2.5,
            e: true,
            f: -0.125,
            g: 9,
            name: "mixed".into(),
            raw: [1, 2, 3, 4],
        },
        Blob {
            id: 99,
            data: (0..=255).collect(),
            note: "note".into(),
            flag: false,
            tag: "t".into(),
        },
        Native {
            nl: -7,
            nul: 7,
            sl: i32::MIN,
            h: 300,
            b: 5,
            sf: 0.5,
        },
    )
}

fn rust_client_against_python_server(transport: &str) {
    let Some(py) = python() else { return };
    let rt = rt();
    for (profile, header, checksum) in PROFILES {
        let (_guard, port) = python_server(&py, profile, transport);
        let tr = if transport == "tcp" {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        rt.block_on(async {
            let addr = ("127.0.0.1", port);
            let mut c = Client::connect(tr, addr, schema(header), config(checksum))
                .await
                .unwrap();
            let (sensor, status, mixed, blob, native) = cases();
            let r = c.request(&sensor).await.unwrap();
            assert_eq!(
                r.decode::<Sensor>().unwrap(),
                respond_sensor(sensor.clone()),
                "{profile}/{transport}"
            );
            let r = c.request(&status).await.unwrap();
            assert_eq!(
                r.decode::<Status>().unwrap(),
                respond_status(status),
                "{profile}/{transport}"
            );
            let r = c.request(&mixed).await.unwrap();
            assert_eq!(r.decode::<Mixed>().unwrap(), mixed, "{profile}/{transport}");
            let r = c.request(&blob).await.unwrap();
            assert_eq!(
                r.decode::<Blob>().unwrap(),
                respond_blob(blob),
                "{profile}/{transport}"
            );
            let r = c.request(&native).await.unwrap();
            assert_eq!(
                r.decode::<Native>().unwrap(),
                native,
                "{profile}/{transport}"
            );
            let r = c.request(&Empty {}).await.unwrap();
            assert_eq!(r.type_id(), 6);
            if transport == "tcp" {
                // Pipelined: many sends, then all answers in order.
                for i in 0..50u32 {
                    c.feed(&Status {
                        status_code: i,
                        message: format!("m{i}"),
                    })
                    .await
                    .unwrap();
                }
                c.flush().await.unwrap();
                for i in 0..50u32 {
                    let s: Status = c.receive().await.unwrap().decode().unwrap();
                    assert_eq!(s.status_code, i + 1);
                }
                // An unknown type goes out header-only and is answered NOT_FOUND.
                c.send_header_only(77).await.unwrap();
                assert!(c.receive().await.unwrap().is_not_found(), "{profile}");
                let r = c.request(&sensor).await.unwrap();
                assert_eq!(r.type_id(), 1, "connection still usable after NOT_FOUND");
            }
            c.close().await;
            let r = Client::request_once(tr, addr, schema(header), config(checksum), &sensor)
                .await
                .unwrap();
            assert_eq!(r.decode::<Sensor>().unwrap(), respond_sensor(sensor));
        });
    }
}

#[test]
fn rust_client_python_server_tcp() {
    rust_client_against_python_server("tcp");
}

#[test]
fn rust_client_python_server_udp() {
    rust_client_against_python_server("udp");
}

/// xorshift64*: deterministic pseudo-random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn text(&mut self, max_bytes: usize) -> String {
        const CHARS: [char; 8] = ['a', 'Z', '0', ' ', 'é', 'ß', '✓', '😀'];
        let mut s = String::new();
        loop {
            let c = CHARS[(self.next() % 8) as usize];
            if s.len() + c.len_utf8() > max_bytes || self.next() % 5 == 0 {
                return s;
            }
            s.push(c);
        }
    }
    /// Floats that stress half/single rounding: f16 midpoints, near-limits, random.
    fn float(&mut self) -> f64 {
        let r = self.next();
        match r % 4 {
            0 => {
                let h = half::f16::from_bits((self.next() % 0x7c00) as u16).to_f64();
                let next = half::f16::from_bits(half::f16::from_f64(h).to_bits() + 1).to_f64();
                (h + next) / 2.0 // an exact tie
            }
            1 => 65504.0 + (self.next() % 32) as f64, // around the 'e' overflow limit
            2 => {
                let v = f64::from_bits(self.next()) % 1e5;
                if v.is_finite() {
                    v
                } else {
                    0.5
                }
            }
            _ => (self.next() as i64 as f64) / 1e12,
        }
    }
}

/// Random values encoded by Python and by us must give the same bytes, and values Python
/// refuses (e.g. too large for a half float) must be refused by us too.
#[test]
fn random_values_encode_like_python() {
    let Some(py) = python() else { return };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut items = Vec::new();
    let mut ours = Vec::new();
    for i in 0..600 {
        let (profile, header, checksum) = PROFILES[i % PROFILES.len()];
        let c = Codec::new(schema(header), config(checksum));
        let (type_id, values): (u64, Vec<netcore_schema::Value>) = match i % 3 {
            0 => (
                3,
                vec![
                    (rng.next() as i16).into(),
                    (rng.next() as u32).into(),
                    (rng.next() as i64).into(),
                    rng.float().into(),
                    (rng.next() % 2 == 0).into(),
                    rng.float().into(),
                    (rng.next() as u8).into(),
                    rng.text(8).into(),
                    (0..4).map(|_| rng.next() as u8).collect::<Vec<u8>>().into(),
                ],
            ),
            1 => (
                4,
                vec![
                    rng.next().into(),
                    (0..rng.next() % 40)
                        .map(|_| rng.next() as u8)
                        .collect::<Vec<u8>>()
                        .into(),
                    rng.text(30).into(),
                    (rng.next() % 2 == 1).into(),
                    rng.text(4).into(),
                ],
            ),
            _ => (
                5,
                vec![
                    (rng.next() as i64).into(),
                    rng.next().into(),
                    (rng.next() as i32).into(),
                    (rng.next() as i16).into(),
                    (rng.next() as i8).into(),
                    rng.float().into(),
                ],
            ),
        };
        let data = c.schema().values_to_json(type_id, &values).unwrap();
        items.push(serde_json::json!({"profile": profile, "type": type_id, "data": data}));
        let mut out = Vec::new();
        ours.push(
            c.encode_values(type_id, &values, &mut out)
                .ok()
                .map(|_| out),
        );
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&items).unwrap()).unwrap();
    let path = file.path().to_str().unwrap().to_owned();
    let text = run_helper(&py, &["encode", "--file", &path], Duration::from_secs(60));
    let theirs: Vec<Option<String>> = serde_json::from_str(&text).unwrap();
    assert_eq!(theirs.len(), ours.len());
    let mut refused = 0;
    for (i, (t, o)) in theirs.iter().zip(&ours).enumerate() {
        match (t, o) {
            (Some(hex), Some(bytes)) => {
                let wire = unhex(hex);
                assert_eq!(&wire, bytes, "item {i}: {}", items[i]);
                // And our decoder reads Python's bytes back to the same encoding.
                let (_, header, checksum) = PROFILES[i % PROFILES.len()];
                let c = Codec::new(schema(header), config(checksum));
                let Frame::Message { type_id, payload } = c.decode_datagram(&wire).unwrap() else {
                    panic!("item {i} not a message")
                };
                let values = c
                    .schema()
                    .get(type_id)
                    .unwrap()
                    .layout()
                    .decode(payload)
                    .unwrap();
                let mut again = Vec::new();
                c.encode_values(type_id, &values, &mut again).unwrap();
                assert_eq!(again, wire, "item {i} decode/encode");
            }
            (None, None) => refused += 1,
            _ => panic!("item {i}: python {t:?} vs ours {o:?}: {}", items[i]),
        }
    }
    assert!(refused > 0 && refused < ours.len() / 2, "{refused} refused");
}
