//! Codec properties without Python: stream splitting, hostile bytes, schema files,
//! typed and dynamic encodings agreeing.

mod common;

use bytes::BytesMut;
use common::*;
use netcore_schema::{Codec, Frame, SchemaError, SchemaFile, TypedMessage, Value};

fn frames(header: &str, checksum: bool) -> (Codec, Vec<u8>, usize) {
    let c = Codec::new(schema(header), config(checksum));
    let mut wire = Vec::new();
    c.encode(
        &Sensor {
            sensor1: 1.0,
            sensor2: 2.0,
            sensor3: 3.0,
            sensor4: 4.0,
        },
        &mut wire,
    )
    .unwrap();
    c.encode(
        &Status {
            status_code: 5,
            message: "héllo".into(),
        },
        &mut wire,
    )
    .unwrap();
    c.encode_not_found(&mut wire);
    c.encode(
        &Blob {
            id: 1,
            data: vec![0; 300],
            note: "n".into(),
            flag: true,
            tag: "ab".into(),
        },
        &mut wire,
    )
    .unwrap();
    c.encode_header_only(200, &mut wire).unwrap();
    c.encode(&Empty {}, &mut wire).unwrap();
    (c, wire, 6)
}

#[test]
fn stream_decoder_handles_any_split() {
    for (_, header, checksum) in PROFILES {
        let (c, wire, count) = frames(header, checksum);
        for chunk in [1, 2, 3, 7, 64, wire.len()] {
            let mut dec = c.stream_decoder();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(f) = dec.decode(&mut buf).unwrap() {
                    got.push(f);
                }
            }
            assert!(buf.is_empty());
            assert_eq!(got.len(), count, "{header} chunk {chunk}");
            assert_eq!(got[2], Frame::NotFound);
            assert_eq!(got[4], Frame::Unknown { type_id: 200 });
            let Frame::Message {
                type_id: 2,
                payload,
            } = &got[1]
            else {
                panic!("{:?}", got[1])
            };
            assert_eq!(Status::decode(payload).unwrap().message, "héllo");
        }
    }
}

/// xorshift64*: deterministic pseudo-random bytes without extra dependencies.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn hostile_bytes_never_panic_or_over_allocate() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    for (_, header, checksum) in PROFILES {
        let (c, wire, _) = frames(header, checksum);
        for _ in 0..3000 {
            // Mutate a valid stream: flip, insert, delete bytes.
            let mut w = wire.clone();
            for _ in 0..(rng(&mut seed) % 4 + 1) {
                let pos = (rng(&mut seed) as usize) % w.len().max(1);
                match rng(&mut seed) % 3 {
                    0 => w[pos] ^= (rng(&mut seed) as u8) | 1,
                    1 => w.insert(pos, rng(&mut seed) as u8),
                    _ => {
                        w.remove(pos);
                    }
                }
            }
            let _ = c.decode_datagram(&w);
            let mut dec = c.stream_decoder();
            let mut buf = BytesMut::from(&w[..]);
            for _ in 0..64 {
                match dec.decode(&mut buf) {
                    Ok(None) => break,
                    Ok(Some(Frame::Message { type_id, payload })) => {
                        let t = c.schema().get(type_id).unwrap();
                        let _ = t.layout().decode(&payload);
                    }
                    Ok(Some(_)) => {}
                    Err(e) => assert!(!e.is_fatal_for_stream()),
                }
                assert!(
                    buf.capacity() <= 1024 * 1024 + 64 * 1024,
                    "buffer grew past the limit"
                );
            }
        }
    }
}

#[test]
fn schema_files_json_and_toml_agree_with_rust_types() {
    let toml = r#"
header_format = "<I"
[[messages]]
name = "STATUS"
id = 2
fields = [
  { name = "status_code", type = "int", format = ">I" },
  { name = "message", type = "str" },
]
[[messages]]
name = "MIXED"
id = 3
fields = [
  { name = "a", format = "<h" }, { name = "b", format = "<I" }, { name = "c", format = ">q" },
  { name = "d", type = "float", format = "<d" }, { name = "e", type = "bool", format = "?" },
  { name = "f", format = ">e" }, { name = "g", format = "B" },
  { name = "name", type = "str", fixed_length = 8 }, { name = "raw", type = "bytes", fixed_length = 4 },
]
[config]
max_payload_size = 4096
read_timeout = 1.5
checksum_enabled = true
"#;
    let file = SchemaFile::from_toml(toml).unwrap();
    let json = serde_json::to_string(&file).unwrap();
    let again = SchemaFile::from_json(&json).unwrap();
    let typed = schema("<I");
    for f in [&file, &again] {
        let s = f.schema().unwrap();
        assert_eq!(s.header(), typed.header());
        for id in [2, 3] {
            assert_eq!(s.get(id).unwrap().layout(), typed.get(id).unwrap().layout());
        }
        let cfg = f.config().unwrap();
        assert_eq!(cfg.max_payload_size(), 4096);
        assert_eq!(cfg.checksum().unwrap().size(), 4);
    }
    let dyn_codec = Codec::new(file.schema().unwrap(), file.config().unwrap());
    let typed_codec = Codec::new(typed, file.config().unwrap());
    let mixed = Mixed {
        a: -1,
        b: 2,
        c: -3,
        d: 4.5,
        e: true,
        f: 0.5,
        g: 7,
        name: "name".into(),
        raw: *b"\0\x01\x02\x03",
    };
    let mut a = Vec::new();
    typed_codec.encode(&mixed, &mut a).unwrap();
    let values = dyn_codec
        .schema()
        .values_from_json(3, &serde_json::json!({
            "a": -1, "b": 2, "c": -3, "d": 4.5, "e": true, "f": 0.5, "g": 7, "name": "name", "raw": [0, 1, 2, 3]
        }))
        .unwrap();
    let mut b = Vec::new();
    dyn_codec.encode_values(3, &values, &mut b).unwrap();
    assert_eq!(a, b);
    let Frame::Message { payload, .. } = dyn_codec.decode_datagram(&a).unwrap() else {
        panic!()
    };
    let back = dyn_codec
        .schema()
        .get(3)
        .unwrap()
        .layout()
        .decode(payload)
        .unwrap();
    assert_eq!(
        back,
        values
            .iter()
            .map(|v| match v {
                Value::Bool(b) => Value::Bool(*b),
                v => v.clone(),
            })
            .collect::<Vec<_>>()
    );
    let j = dyn_codec.schema().values_to_json(3, &back).unwrap();
    assert_eq!(j["name"], "name");
}

#[test]
fn bad_schema_files_are_rejected_with_reasons() {
    for (text, needle) in [
        (r#"{"messages":[{"name":"A","id":65535}]}"#, "NOT_FOUND"),
        (
            r#"{"messages":[{"name":"A","id":1},{"name":"B","id":1}]}"#,
            "duplicates",
        ),
        (
            r#"{"messages":[{"name":"A","id":1,"fields":[{"name":"x","type":"int"}]}]}"#,
            "format",
        ),
        (
            r#"{"messages":[{"name":"A","id":1,"fields":[{"name":"x","format":">2H"}]}]}"#,
            "one format code",
        ),
        (r#"{"header_format":">d"}"#, "integer"),
        (
            r#"{"messages":[{"name":"A","id":1,"fields":[{"name":"x","type":"str","fixed_length":0}]}]}"#,
            "fixed length 0",
        ),
        (
            r#"{"messages":[{"name":"A","id":1,"fields":[{"name":"x","type":"list"}]}]}"#,
            "type must be",
        ),
    ] {
        let err = SchemaFile::from_json(text)
            .and_then(|f| f.schema())
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
    assert!(matches!(
        SchemaFile::from_json("{"),
        Err(SchemaError::Parse(_))
    ));
}

#[test]
fn fixed_layout_decode_is_exact_and_text_stops_at_nul() {
    let mut p = Vec::new();
    Mixed {
        a: 1,
        b: 2,
        c: 3,
        d: 4.0,
        e: true,
        f: 1.0,
        g: 1,
        name: "ab".into(),
        raw: [9; 4],
    }
    .encode(&mut p)
    .unwrap();
    assert_eq!(p.len(), Mixed::FIXED_SIZE.unwrap());
    assert_eq!(&p[26..34], b"ab\0\0\0\0\0\0");
    assert!(matches!(
        Mixed::decode(&p[..p.len() - 1]),
        Err(SchemaError::WrongLength { .. })
    ));
    let mut longer = p.clone();
    longer.push(0);
    assert!(matches!(
        Mixed::decode(&longer),
        Err(SchemaError::WrongLength { .. })
    ));
    p[29] = b'z'; // bytes after the first NUL are ignored, as in Python
    assert_eq!(Mixed::decode(&p).unwrap().name, "ab");
    let mut v = Vec::new();
    Status {
        status_code: 1,
        message: "x".into(),
    }
    .encode(&mut v)
    .unwrap();
    v.push(0);
    assert!(matches!(
        Status::decode(&v),
        Err(SchemaError::WrongLength { .. })
    ));
    v.truncate(v.len() - 2);
    assert!(matches!(
        Status::decode(&v),
        Err(SchemaError::Truncated { .. })
    ));
}

/// Byte vectors generated by binary_protocol 0.2.2 (`bp_helper.py vectors`), checked in so
/// they are verified even without Python; tests/interop.rs checks the file is current.
#[test]
fn checked_in_python_vectors_match() {
    let text = include_str!("python/vectors.json");
    let vectors: serde_json::Value = serde_json::from_str(text).unwrap();
    let vectors = vectors.as_array().unwrap();
    assert_eq!(vectors.len(), PROFILES.len() * 10);
    for v in vectors {
        let profile = v["profile"].as_str().unwrap();
        let (_, header, checksum) = PROFILES.iter().find(|p| p.0 == profile).unwrap();
        let c = Codec::new(schema(header), config(*checksum));
        let wire = unhex(v["hex"].as_str().unwrap());
        let native_differs =
            std::mem::size_of::<std::ffi::c_long>() != 8 || cfg!(target_endian = "big");
        if native_differs && (v["type"] == 5 || *header == "B") {
            continue; // generated on a little-endian LP64 host: native formats differ here
        }
        let mut out = Vec::new();
        match v["type"].as_u64() {
            None => c.encode_not_found(&mut out),
            Some(id) => {
                let values = c.schema().values_from_json(id, &v["data"]).unwrap();
                c.encode_values(id, &values, &mut out).unwrap();
                let Frame::Message { payload, .. } = c.decode_datagram(&wire).unwrap() else {
                    panic!()
                };
                let back = c
                    .schema()
                    .get(id)
                    .unwrap()
                    .layout()
                    .decode(payload)
                    .unwrap();
                let mut again = Vec::new();
                c.encode_values(id, &back, &mut again).unwrap();
                assert_eq!(again, wire, "{profile} type {id} decode/encode");
            }
        }
        assert_eq!(out, wire, "{profile} {}", v["type"]);
    }
}

netcore_schema::message! {
    #[derive(Debug, Clone, PartialEq)]
    struct Big = 9 {
        head: u16 ["<H"],
        block: [u8; 4096] [bytes 4096],
    }
}

#[test]
fn large_fixed_byte_arrays_are_fixed_fields() {
    assert_eq!(Big::FIXED_SIZE, Some(4098));
    let b = Big {
        head: 1,
        block: [7; 4096],
    };
    let mut out = Vec::new();
    b.encode(&mut out).unwrap();
    assert_eq!(out.len(), 4098);
    assert_eq!(Big::decode(&out).unwrap(), b);
}
