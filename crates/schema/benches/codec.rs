//! Criterion benchmarks of the codec: the 16-byte 4×f32 fixed layout and a variable
//! layout, typed (`message!`) and dynamic (`Value`), payload only and whole frames.
#![allow(missing_docs)]

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use netcore_schema::{
    message, Checksum, Codec, Frame, ProtocolConfig, Schema, TypedMessage, Value,
};

message! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct SensorData = 1 {
        pub sensor1: f32 [">f"],
        pub sensor2: f32 [">f"],
        pub sensor3: f32 [">f"],
        pub sensor4: f32 [">f"],
    }
}
message! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct Status = 2 {
        pub status_code: u32 [">I"],
        pub message: String [text],
        pub blob: Vec<u8> [bytes],
    }
}

fn bench(c: &mut Criterion) {
    let schema = Schema::builder()
        .message::<SensorData>()
        .message::<Status>()
        .build()
        .unwrap();
    let codec = Codec::new(schema.clone(), ProtocolConfig::default());
    let crc = Codec::new(
        schema.clone(),
        ProtocolConfig::default().with_checksum(Checksum::crc32()),
    );
    let sensor = SensorData {
        sensor1: 1.5,
        sensor2: -2.0,
        sensor3: 3.25,
        sensor4: 100.0,
    };
    let status = Status {
        status_code: 200,
        message: "all systems nominal".into(),
        blob: vec![7; 64],
    };
    let mut sensor_payload = Vec::new();
    sensor.encode(&mut sensor_payload).unwrap();
    let mut status_payload = Vec::new();
    status.encode(&mut status_payload).unwrap();

    let mut g = c.benchmark_group("fixed_16B");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(64);
    g.bench_function("encode_typed", |b| {
        b.iter(|| {
            out.clear();
            black_box(&sensor).encode(&mut out).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("decode_typed", |b| {
        b.iter(|| SensorData::decode(black_box(&sensor_payload)).unwrap())
    });
    g.bench_function("encode_frame", |b| {
        b.iter(|| {
            out.clear();
            codec.encode(black_box(&sensor), &mut out).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("encode_frame_crc32", |b| {
        b.iter(|| {
            out.clear();
            crc.encode(black_box(&sensor), &mut out).unwrap();
            black_box(out.len())
        })
    });
    let mut frame = Vec::new();
    codec.encode(&sensor, &mut frame).unwrap();
    g.bench_function("decode_frame", |b| {
        b.iter(|| match codec.decode_datagram(black_box(&frame)).unwrap() {
            Frame::Message { payload, .. } => SensorData::decode(payload).unwrap(),
            _ => unreachable!(),
        })
    });
    let layout = schema.get(1).unwrap().layout().clone();
    let values: Vec<Value> = vec![
        1.5f32.into(),
        (-2.0f32).into(),
        3.25f32.into(),
        100.0f32.into(),
    ];
    g.bench_function("encode_dynamic", |b| {
        b.iter(|| {
            out.clear();
            layout.encode(black_box(&values), &mut out).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("decode_dynamic_ref", |b| {
        b.iter(|| layout.decode_ref(black_box(&sensor_payload)).unwrap())
    });
    // A stream of 1000 frames cut by the stream decoder.
    let mut stream = Vec::new();
    for _ in 0..1000 {
        codec.encode(&sensor, &mut stream).unwrap();
    }
    g.throughput(Throughput::Elements(1000));
    g.bench_function("stream_decode_1000", |b| {
        b.iter(|| {
            let mut dec = codec.stream_decoder();
            let mut buf = BytesMut::from(&stream[..]);
            let mut n = 0;
            while let Some(Frame::Message { payload, .. }) = dec.decode(&mut buf).unwrap() {
                black_box(SensorData::decode(&payload).unwrap());
                n += 1;
            }
            n
        })
    });
    g.finish();

    let mut g = c.benchmark_group("variable");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_typed", |b| {
        b.iter(|| {
            out.clear();
            black_box(&status).encode(&mut out).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("decode_typed", |b| {
        b.iter(|| Status::decode(black_box(&status_payload)).unwrap())
    });
    g.bench_function("encode_frame", |b| {
        b.iter(|| {
            out.clear();
            codec.encode(black_box(&status), &mut out).unwrap();
            black_box(out.len())
        })
    });
    let vlayout = schema.get(2).unwrap().layout().clone();
    g.bench_function("decode_dynamic_ref", |b| {
        b.iter(|| vlayout.decode_ref(black_box(&status_payload)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
