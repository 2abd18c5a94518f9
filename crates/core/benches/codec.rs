//! Encode + decode throughput of the core alone: two tcp-profile `Connection`s in
//! memory, `send` → `poll_transmit` → `handle_input` → `read` (with credit flowing
//! back), for 64-byte and 1 MiB messages, next to a plain memcpy of the same bytes in
//! the same run. Run:
//!
//! ```text
//! cargo bench -p netcore-core --bench codec -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Figures from 2026-11-22 on a shared, loaded 2-core machine (ratios are within one
//! run; absolute numbers moved by up to 2x between runs):
//!
//! | case | core | memcpy | ratio |
//! |---|---|---|---|
//! | 1 MiB, tcp | 11.5–21.1 GiB/s | 21–44 GiB/s | 0.31–0.78 (median ≈ 0.5) |
//! | 64 B, tcp | ≈ 7.7 M messages/s (129 µs per 1000) | 32 GiB/s | ≈ 0.014 |
//! | 1 MiB, serial | 65–151 MiB/s (COBS + CRC32C) | | ≈ 0.003 |
//! | 64 B, serial | ≈ 1.7 M messages/s (0.59 ms per 1000) | | ≈ 0.003 |
//!
//! The 64 B rows are after the lean small-message paths (STARTs encoded from the
//! message state and parsed in place, no `Frame` built either way; same session, on a
//! quiet machine, the previous core: tcp 224 µs and serial 662 µs per 1000, i.e. 1.73x
//! and 1.11x; 1 MiB unchanged). Instructions per message for both sides, counted with
//! the `codec_loop` example under callgrind: tcp 3 403 → 2 434, serial 6 919 → 6 215.
//! Before those, the id-indexed message state took tcp from 602 µs and serial from
//! 1.10 ms per 1000 (callgrind: 7 997 → 3 335 instructions per tcp message).
//!
//! This bench uses the copying calls (`poll_transmit`, `handle_input`), so a 1 MiB
//! body is copied twice; the runtime's driver uses `poll_transmit_vectored` and
//! `input_buffer`, which copy no body bytes.
#![allow(missing_docs)]

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use netcore_core::{Config, Connection, Event, Instant, LinkProfile, MessageHead};

struct Link {
    a: Connection,
    b: Connection,
    buf: Vec<u8>,
    now: Instant,
}

impl Link {
    fn new(profile: LinkProfile) -> Link {
        let now = Instant::from_micros(1);
        let mut l = Link {
            a: Connection::new(Config::for_profile(profile), now),
            b: Connection::new(Config::for_profile(profile), now),
            buf: Vec::with_capacity(1 << 20),
            now,
        };
        l.pump(0);
        assert!(l.a.is_open() && l.b.is_open());
        l
    }

    /// Moves bytes both ways until `want` messages were fully read at b (and, for
    /// `want == 0`, until the link is quiet). Returns body bytes read.
    fn pump(&mut self, want: usize) -> usize {
        let mut done = 0;
        let mut bytes = 0;
        loop {
            self.buf.clear();
            let sent = self.a.poll_transmit(self.now, &mut self.buf, 256 * 1024);
            if sent > 0 {
                self.b.handle_input(self.now, &self.buf);
            }
            while let Some(ev) = self.b.poll_event() {
                if let Event::Incoming { id, .. } | Event::Readable { id } = ev {
                    loop {
                        match self.b.read(id, 0) {
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
            self.buf.clear();
            let back = self.b.poll_transmit(self.now, &mut self.buf, 256 * 1024);
            if back > 0 {
                self.a.handle_input(self.now, &self.buf);
            }
            while self.a.poll_event().is_some() {}
            if want == 0 && sent == 0 && back == 0 {
                return bytes;
            }
            if want > 0 && done >= want {
                return bytes;
            }
        }
    }
}

fn codec(c: &mut Criterion) {
    for (name, size, count) in [("64B", 64usize, 1000usize), ("1MiB", 1 << 20, 1)] {
        let mut group = c.benchmark_group(format!("codec_{name}"));
        group.throughput(Throughput::Bytes((size * count) as u64));
        let body = Bytes::from(vec![0xA5u8; size]);

        for profile in [LinkProfile::Tcp, LinkProfile::Serial] {
            let label = match profile {
                LinkProfile::Tcp => "core_tcp",
                LinkProfile::Serial => "core_serial",
            };
            let mut link = Link::new(profile);
            group.bench_function(BenchmarkId::new(label, name), |bench| {
                bench.iter(|| {
                    for _ in 0..count {
                        link.a
                            .send(MessageHead::to_route("r"), body.clone())
                            .expect("send");
                    }
                    let n = link.pump(count);
                    assert_eq!(n, size * count);
                })
            });
        }

        // Baseline: copy the same bytes once, message by message.
        let src = vec![0xA5u8; size];
        let mut dst = vec![0u8; size];
        group.bench_function(BenchmarkId::new("memcpy", name), |bench| {
            bench.iter(|| {
                for _ in 0..count {
                    dst.copy_from_slice(black_box(&src));
                    black_box(&mut dst);
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
