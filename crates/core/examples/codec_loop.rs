//! The `codec` bench's 64-byte loop (batches of 1000 messages, tcp or serial) without
//! criterion, for instruction counts:
//!
//! ```text
//! cargo build --release -p netcore-core --example codec_loop
//! valgrind --tool=callgrind --dump-instr=no target/release/examples/codec_loop 10000 tcp
//! valgrind --tool=callgrind --dump-instr=no target/release/examples/codec_loop 30000 tcp
//! ```
//!
//! The difference of the two totals divided by 20 000 is the cost of one message, both
//! sides, without the setup (the figures in `benches/codec.rs` are counted this way).
#![allow(missing_docs)]

use bytes::Bytes;
use netcore_core::{Config, Connection, Event, Instant, LinkProfile, MessageHead};
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let profile = match args.next().as_deref() {
        Some("serial") => LinkProfile::Serial,
        _ => LinkProfile::Tcp,
    };
    let now = Instant::from_micros(1);
    let mut a = Connection::new(Config::for_profile(profile), now);
    let mut b = Connection::new(Config::for_profile(profile), now);
    let mut buf = Vec::with_capacity(1 << 20);
    pump(&mut a, &mut b, &mut buf, now, 0);
    let body = Bytes::from(vec![0xA5u8; 64]);
    // Batches of 1000 messages, like the bench.
    let mut total = 0;
    for _ in 0..rounds / 1000 {
        for _ in 0..1000 {
            a.send(MessageHead::to_route("r"), body.clone())
                .expect("send");
        }
        total += pump(&mut a, &mut b, &mut buf, now, 1000);
    }
    assert_eq!(total, 64 * (rounds / 1000) * 1000);
}

fn pump(
    a: &mut Connection,
    b: &mut Connection,
    buf: &mut Vec<u8>,
    now: Instant,
    want: usize,
) -> usize {
    let mut done = 0;
    let mut bytes = 0;
    loop {
        buf.clear();
        let sent = a.poll_transmit(now, buf, 256 * 1024);
        if sent > 0 {
            b.handle_input(now, buf);
        }
        while let Some(ev) = b.poll_event() {
            if let Event::Incoming { id, .. } | Event::Readable { id } = ev {
                loop {
                    match b.read(id, 0) {
                        Ok(Some(chunk)) => {
                            bytes += chunk.len();
                            black_box(&chunk);
                        }
                        Ok(None) => {
                            done += 1;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        buf.clear();
        let back = b.poll_transmit(now, buf, 256 * 1024);
        if back > 0 {
            a.handle_input(now, buf);
        }
        while a.poll_event().is_some() {}
        if want == 0 && sent == 0 && back == 0 {
            return bytes;
        }
        if want > 0 && done >= want {
            return bytes;
        }
    }
}
