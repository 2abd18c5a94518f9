//! The zero-copy paths: `poll_transmit_vectored` produces exactly the bytes
//! `poll_transmit` does, and `input_buffer` + `handle_received` parse them exactly as
//! `handle_input` does, however the bytes are cut.

use bytes::Bytes;
use netcore_core::{Config, Connection, Event, Instant, MessageHead, Transmit};

const SIZES: [usize; 8] = [0, 1, 100, 2047, 2048, 70_000, 1 << 20, 3 * (1 << 20) + 5];

fn body(i: usize, len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|j| (i * 31 + j * 7) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// Sends every size from `a` to `b`. `a` transmits with the vectored call when
/// `vectored`; `b` reads through `input_buffer` in pieces of `cut` bytes when
/// `direct`. Returns a's wire bytes and the bodies b received, in id order.
fn run(vectored: bool, direct: bool, cut: usize, limit: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let now = Instant::from_micros(1);
    let mut a = Connection::new(Config::tcp(), now);
    let mut b = Connection::new(Config::tcp(), now);
    for (i, &len) in SIZES.iter().enumerate() {
        let head = MessageHead::to_route(if i % 2 == 0 { "even" } else { "odd" });
        a.send(head, body(i, len)).expect("send");
    }
    let mut wire = Vec::new();
    let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut open: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut out = Transmit::new();
    for _round in 0..10_000 {
        let mut chunk = Vec::new();
        if vectored {
            out.clear();
            let n = a.poll_transmit_vectored(now, &mut out, limit);
            assert_eq!(n, out.len());
            chunk = out.to_vec();
            out.advance(n);
            assert!(out.is_empty());
        } else {
            a.poll_transmit(now, &mut chunk, limit);
        }
        wire.extend_from_slice(&chunk);
        for piece in chunk.chunks(cut.max(1)) {
            if direct {
                let buf = b.input_buffer(piece.len()).expect("tcp buffer");
                let spare = buf.capacity() - buf.len();
                assert!(spare >= piece.len());
                buf.extend_from_slice(piece);
                b.handle_received(now);
            } else {
                b.handle_input(now, piece);
            }
        }
        while let Some(ev) = b.poll_event() {
            if let Event::Incoming { id, .. } = ev {
                open.push((id.0, Vec::new()));
            }
        }
        let mut k = 0;
        while k < open.len() {
            let id = netcore_core::MessageId(open[k].0);
            let mut done = false;
            while let Ok(r) = b.read(id, usize::MAX) {
                match r {
                    Some(c) => open[k].1.extend_from_slice(&c),
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            if done {
                got.push(open.remove(k));
            } else {
                k += 1;
            }
        }
        let mut back = Vec::new();
        b.poll_transmit(now, &mut back, usize::MAX);
        a.handle_input(now, &back);
        while a.poll_event().is_some() {}
        if got.len() == SIZES.len() && chunk.is_empty() && back.is_empty() {
            break;
        }
    }
    got.sort_by_key(|(id, _)| *id);
    (wire, got.into_iter().map(|(_, b)| b).collect())
}

#[test]
fn vectored_transmit_is_byte_identical_to_copying() {
    for limit in [1024, 64 * 1024, 1 << 20] {
        let (copied, _) = run(false, false, usize::MAX, limit);
        let (spliced, bodies) = run(true, false, usize::MAX, limit);
        assert_eq!(copied, spliced, "limit {limit}");
        assert_eq!(bodies.len(), SIZES.len(), "limit {limit}");
        for (i, b) in bodies.iter().enumerate() {
            assert_eq!(b[..], body(i, SIZES[i])[..], "message {i}");
        }
    }
}

#[test]
fn reading_into_the_input_buffer_parses_like_handle_input() {
    for cut in [1, 7, 4096, 300_000, usize::MAX] {
        let (_, bodies) = run(true, true, cut, 64 * 1024);
        assert_eq!(bodies.len(), SIZES.len(), "cut {cut}");
        for (i, b) in bodies.iter().enumerate() {
            assert_eq!(b[..], body(i, SIZES[i])[..], "cut {cut}, message {i}");
        }
    }
}

#[test]
fn serial_profile_has_no_input_buffer_and_copies_on_transmit() {
    let now = Instant::ZERO;
    let mut a = Connection::new(Config::serial(), now);
    assert!(a.input_buffer(1024).is_none());
    let mut out = Transmit::new();
    let n = a.poll_transmit_vectored(now, &mut out, 4096);
    assert!(n > 0);
    assert_eq!(
        out.chunks().count(),
        1,
        "serial frames are encoded in one piece"
    );
}

/// Two connections past their handshake.
fn connected(config: Config, now: Instant) -> (Connection, Connection) {
    let mut a = Connection::new(config.clone(), now);
    let mut b = Connection::new(config, now);
    for _ in 0..10 {
        let mut x = Vec::new();
        a.poll_transmit(now, &mut x, 1 << 20);
        b.handle_input(now, &x);
        let mut y = Vec::new();
        b.poll_transmit(now, &mut y, 1 << 20);
        a.handle_input(now, &y);
    }
    assert!(a.is_open() && b.is_open());
    (a, b)
}

#[test]
fn small_messages_share_a_transmit_batch_smaller_than_a_frame() {
    let now = Instant::from_micros(1);
    for config in [Config::tcp(), Config::serial()] {
        let (mut a, mut b) = connected(config.clone(), now);
        for _ in 0..50 {
            a.send(MessageHead::to_route("t"), Bytes::from_static(&[7; 20]))
                .unwrap();
        }
        // Big enough for several small frames, smaller than one full frame.
        let limit = 1000;
        let mut buf = Vec::new();
        let n = a.poll_transmit(now, &mut buf, limit);
        assert!(
            n <= limit,
            "{:?}: {n} bytes for a limit of {limit}",
            config.profile
        );
        b.handle_input(now, &buf);
        let started = std::iter::from_fn(|| b.poll_event())
            .filter(|e| matches!(e, Event::Incoming { .. }))
            .count();
        assert!(
            started >= 10,
            "{:?}: only {started} messages in one batch",
            config.profile
        );
    }
}

#[test]
fn a_body_written_in_large_pieces_is_spliced_never_copied() {
    let now = Instant::from_micros(1);
    let (mut a, mut b) = connected(Config::tcp(), now);
    // Frames (~64 KiB) do not divide these pieces evenly: a frame that spanned two
    // pieces used to be copied into a buffer of its own.
    let pieces = [body(1, 100_000), body(2, 150_000), body(3, 5_000)];
    let id = a.start(MessageHead::to_route("bulk")).unwrap();
    for p in &pieces {
        a.write(id, p.clone()).unwrap();
    }
    a.finish(id).unwrap();
    let inside = |s: &[u8]| {
        let (lo, hi) = (s.as_ptr() as usize, s.as_ptr() as usize + s.len());
        pieces.iter().any(|p| {
            let start = p.as_ptr() as usize;
            lo >= start && hi <= start + p.len()
        })
    };
    let mut spliced = 0;
    let mut out = Transmit::new();
    for _ in 0..100 {
        out.clear();
        if a.poll_transmit_vectored(now, &mut out, 1 << 20) == 0 {
            break;
        }
        spliced += out
            .chunks()
            .filter(|c| inside(c))
            .map(<[u8]>::len)
            .sum::<usize>();
        b.handle_input(now, &out.to_vec());
        let mut back = Vec::new();
        b.poll_transmit(now, &mut back, usize::MAX);
        a.handle_input(now, &back);
    }
    let total: usize = pieces.iter().map(Bytes::len).sum();
    assert_eq!(
        spliced, total,
        "body bytes sent by reference, out of {total}"
    );
}
