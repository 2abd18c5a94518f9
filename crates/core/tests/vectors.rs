//! Checks every hex test vector in docs/PROTOCOL.md against the library.
//!
//! The document marks a vector with a line `vector: <name>` followed by a fenced
//! ```` ```hex ```` block. Inside the block, `#` starts a comment; everything else must be
//! pairs of hex digits separated by whitespace.
//!
//! Every vector is checked three ways:
//!
//! 1. the bytes in the document equal what the library encodes (`Frame::encode` of the
//!    expected frames, the serial link framing built from `link::cobs` and
//!    `link::crc32c`, and, for the scenario vectors, the exact output of a driven
//!    `Connection`);
//! 2. the bytes in the document decode (`frame::Header::parse` + `Frame::load`, after
//!    COBS/CRC for serial) to the expected field values;
//! 3. the set of vector names in the document equals the set this file knows, so a
//!    vector cannot be added to or dropped from the spec unchecked.
//!
//! `cargo test -p netcore-core --test vectors -- --ignored --nocapture print_vectors`
//! prints every vector as annotated Markdown, for regenerating the document.

use bytes::Bytes;
use netcore_core::frame::{
    Cancel, CancelSide, Capabilities, Data, ErrorFrame, Frame, GoAway, Header, Hello, Nack,
    RouteField, Start,
};
use netcore_core::link::{cobs, crc32c};
use netcore_core::metadata::Headers;
use netcore_core::{
    varint, Config, Connection, ErrorCode, Event, FrameKind, Instant, MessageHead, MessageId,
    Urgency,
};
use std::collections::BTreeMap;

// ----- the document ----------------------------------------------------------------------

fn doc_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md")
}

fn read_doc() -> String {
    std::fs::read_to_string(doc_path()).expect("docs/PROTOCOL.md must exist")
}

/// Parses the `vector:` blocks of the document, in order.
fn parse_doc(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(name) = line.trim().strip_prefix("vector:") else {
            continue;
        };
        let name = name.trim().trim_matches('`').to_string();
        if name.is_empty() {
            return Err(format!("line {}: empty vector name", n + 1));
        }
        // The next non-blank line opens the hex block.
        let open = loop {
            match lines.next() {
                Some((_, l)) if l.trim().is_empty() => continue,
                Some((m, l)) => break (m, l),
                None => return Err(format!("vector {name}: no hex block follows")),
            }
        };
        if open.1.trim() != "```hex" {
            return Err(format!(
                "line {}: vector {name} must be followed by a ```hex block",
                open.0 + 1
            ));
        }
        let mut bytes = Vec::new();
        let mut closed = false;
        for (m, l) in lines.by_ref() {
            if l.trim() == "```" {
                closed = true;
                break;
            }
            let data = l.split('#').next().unwrap_or("");
            for tok in data.split_whitespace() {
                if tok.len() != 2 {
                    return Err(format!("line {}: `{tok}` is not one hex byte", m + 1));
                }
                let b = u8::from_str_radix(tok, 16)
                    .map_err(|_| format!("line {}: `{tok}` is not hex", m + 1))?;
                bytes.push(b);
            }
        }
        if !closed {
            return Err(format!("vector {name}: hex block not closed"));
        }
        if out.iter().any(|(k, _)| *k == name) {
            return Err(format!("vector {name} appears twice"));
        }
        out.push((name, bytes));
    }
    Ok(out)
}

// ----- what each vector must contain -------------------------------------------------------

/// What a vector's bytes decode to.
#[derive(Clone, Debug)]
enum Expect {
    /// Frames back to back, as on the tcp profile.
    Frames(Vec<Frame>),
    /// Serial link frames: an optional leading delimiter, then `(seq, frame)` blocks.
    Serial {
        lead: bool,
        frames: Vec<(u16, Frame)>,
    },
    /// Varints back to back.
    Varints(Vec<u64>),
    /// A metadata block.
    Headers(Vec<(&'static str, &'static [u8])>),
}

struct Vector {
    name: &'static str,
    expect: Expect,
    /// Bytes a driven `Connection` produced for this vector, when it comes from one.
    driven: Option<Vec<u8>>,
}

impl Vector {
    /// The bytes the library encodes for the expected content.
    fn encoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.expect {
            Expect::Frames(frames) => {
                for f in frames {
                    f.encode(&mut out);
                }
            }
            Expect::Serial { lead, frames } => {
                if *lead {
                    out.push(0);
                }
                for (seq, f) in frames {
                    out.extend(serial_block(*seq, f));
                }
            }
            Expect::Varints(vs) => {
                for v in vs {
                    varint::encode(*v, &mut out);
                }
            }
            Expect::Headers(hs) => {
                let mut h = Headers::new();
                for (k, v) in hs {
                    h.insert(*k, Bytes::from_static(v));
                }
                out.extend_from_slice(&h.encode());
            }
        }
        out
    }
}

/// `COBS(seq:u16le | frame | crc32c:u32le) 0x00`.
fn serial_block(seq: u16, frame: &Frame) -> Vec<u8> {
    let mut raw = seq.to_le_bytes().to_vec();
    frame.encode(&mut raw);
    let crc = crc32c(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());
    let mut out = Vec::new();
    cobs::encode(&raw, &mut out);
    out.push(0);
    out
}

// ----- expected frames -----------------------------------------------------------------------

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

fn hello_for(config: &Config, seen_peer: bool) -> Frame {
    let serial = config.profile == netcore_core::LinkProfile::Serial;
    let mut caps = Capabilities::ROUTE_INTERNING;
    if serial {
        caps = caps | Capabilities::LINK_RECOVERY;
    }
    Frame::Hello(Hello {
        version: 1,
        profile: u8::from(serial),
        seen_peer,
        session: config.session,
        capabilities: caps,
        max_frame: config.max_frame as u64,
        max_message: config.max_message.unwrap_or(0),
        max_metadata: config.max_metadata as u64,
        max_incoming: config.max_incoming,
        max_routes: config.max_routes,
        message_window: config.message_window,
        connection_window: config.connection_window,
    })
}

/// The HELLO of `Config::tcp()`, written out field by field.
fn hello_tcp() -> Frame {
    Frame::Hello(Hello {
        version: 1,
        profile: 0,
        seen_peer: false,
        session: 0,
        capabilities: Capabilities(0b01),
        max_frame: 65_536,
        max_message: 0,
        max_metadata: 16_384,
        max_incoming: 128,
        max_routes: 256,
        message_window: 262_144,
        connection_window: 524_288,
    })
}

/// The HELLO of `Config::serial()`, written out field by field.
fn hello_serial(seen_peer: bool) -> Frame {
    Frame::Hello(Hello {
        version: 1,
        profile: 1,
        seen_peer,
        session: 0,
        capabilities: Capabilities(0b11),
        max_frame: 1024,
        max_message: 0,
        max_metadata: 512,
        max_incoming: 32,
        max_routes: 64,
        message_window: 4096,
        connection_window: 8192,
    })
}

struct StartSpec {
    id8: u8,
    urgency: u8,
    fin: bool,
    reply_to: Option<u64>,
    route: Option<RouteField>,
    metadata: Option<Bytes>,
    total_len: Option<u64>,
    body: &'static [u8],
}

impl Default for StartSpec {
    fn default() -> Self {
        StartSpec {
            id8: 1,
            urgency: 3,
            fin: true,
            reply_to: None,
            route: None,
            metadata: None,
            total_len: None,
            body: b"",
        }
    }
}

fn start(s: StartSpec) -> Frame {
    Frame::Start(Start {
        id8: s.id8,
        urgency: Urgency::new(s.urgency),
        fin: s.fin,
        reply_to: s.reply_to,
        route: s.route,
        metadata: s.metadata,
        total_len: s.total_len,
        body: Bytes::from_static(s.body),
    })
}

fn literal(intern_as: u64, name: &'static [u8]) -> Option<RouteField> {
    Some(RouteField::Literal {
        intern_as,
        name: b(name),
    })
}

fn data(id: u64, offset: u64, end: bool, body: &'static [u8]) -> Frame {
    Frame::Data(Data {
        id,
        offset,
        end,
        body: b(body),
    })
}

fn cancel(id: u64, side: CancelSide, code: ErrorCode) -> Frame {
    Frame::Cancel(Cancel { id, side, code })
}

fn metadata_headers() -> Vec<(&'static str, &'static [u8])> {
    vec![("content-type", b"text/plain"), ("x-trace", b"7")]
}

fn metadata_block() -> Bytes {
    let mut h = Headers::new();
    for (k, v) in metadata_headers() {
        h.insert(k, Bytes::from_static(v));
    }
    h.encode()
}

const MULTI_BODY: &[u8] = b"0123456789abcdefghijklmnopqrst";

// ----- driving connections ------------------------------------------------------------------

fn transmit(c: &mut Connection, now: Instant) -> Vec<u8> {
    let mut buf = Vec::new();
    c.poll_transmit(now, &mut buf, 1 << 20);
    buf
}

/// Transmits exactly one frame (a limit of one byte lets only the first through).
fn transmit_one(c: &mut Connection, now: Instant) -> Vec<u8> {
    let mut buf = Vec::new();
    c.poll_transmit(now, &mut buf, 1);
    buf
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Moves bytes both ways until both sides are quiet.
fn settle(a: &mut Connection, b: &mut Connection, now: Instant) {
    for _ in 0..100 {
        let x = transmit(a, now);
        b.handle_input(now, &x);
        let y = transmit(b, now);
        a.handle_input(now, &y);
        if x.is_empty() && y.is_empty() {
            return;
        }
    }
    panic!("connections did not settle");
}

/// Reads an incoming message to its end and returns the body.
fn read_all(c: &mut Connection, id: MessageId) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        match c.read(id, 0) {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return body,
            Err(e) => panic!("read {id:?}: {e:?}"),
        }
    }
}

fn incoming(evs: &[Event]) -> Vec<(MessageId, MessageHead)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Incoming { id, head } => Some((*id, head.clone())),
            _ => None,
        })
        .collect()
}

/// What a `Config::tcp()` server transmits after reading 64 messages to their end:
/// half of its message-count credit is used, so it grants more.
fn max_messages_after_64(now: Instant) -> Vec<u8> {
    let mut c = Connection::new(Config::tcp(), now);
    let mut s = Connection::new(Config::tcp(), now);
    settle(&mut c, &mut s, now);
    for _ in 0..64 {
        c.send(MessageHead::to_route("m"), b(b"x")).unwrap();
    }
    let bytes = transmit(&mut c, now);
    s.handle_input(now, &bytes);
    for (id, _) in incoming(&events(&mut s)) {
        assert_eq!(read_all(&mut s, id), b"x");
    }
    transmit(&mut s, now)
}

/// The tcp vectors produced by a real client/server pair with `Config::tcp()`.
fn tcp_scenario() -> BTreeMap<&'static str, Vec<u8>> {
    let now = Instant::ZERO;
    let mut v = BTreeMap::new();
    let mut c = Connection::new(Config::tcp(), now);
    let mut s = Connection::new(Config::tcp(), now);

    // Handshake: both send HELLO at once, then an RTT-sampling PING each.
    let hello_c = transmit(&mut c, now);
    let hello_s = transmit(&mut s, now);
    v.insert("tcp/hello", hello_c.clone());
    s.handle_input(now, &hello_c);
    c.handle_input(now, &hello_s);
    let ping_c = transmit(&mut c, now);
    let ping_s = transmit(&mut s, now);
    v.insert("tcp/ping", ping_c.clone());
    s.handle_input(now, &ping_c);
    c.handle_input(now, &ping_s);
    let pong_s = transmit(&mut s, now);
    let pong_c = transmit(&mut c, now);
    v.insert("tcp/pong", pong_s.clone());
    c.handle_input(now, &pong_s);
    s.handle_input(now, &pong_c);
    settle(&mut c, &mut s, now);
    assert!(c.is_open() && s.is_open());
    events(&mut c);
    events(&mut s);

    // A request on a new route: literal, interned as route 1.
    let req1 = c
        .send(MessageHead::to_route("sensor/temp"), b(b"21.5"))
        .unwrap();
    assert_eq!(req1, MessageId(1));
    let bytes = transmit(&mut c, now);
    v.insert("tcp/request-literal", bytes.clone());
    s.handle_input(now, &bytes);
    let evs = events(&mut s);
    let inc = incoming(&evs);
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].1.route.as_deref(), Some("sensor/temp"));
    assert_eq!(read_all(&mut s, inc[0].0), b"21.5");
    // One message done is not yet worth a credit frame (§8).
    assert!(transmit(&mut s, now).is_empty());
    v.insert("tcp/max-messages", max_messages_after_64(now));

    // The reply.
    s.send(MessageHead::reply(inc[0].0), b(b"ok")).unwrap();
    let bytes = transmit(&mut s, now);
    v.insert("tcp/reply", bytes.clone());
    c.handle_input(now, &bytes);
    let evs = events(&mut c);
    let inc = incoming(&evs);
    assert_eq!(inc[0].1.reply_to, Some(req1));
    assert_eq!(read_all(&mut c, inc[0].0), b"ok");
    settle(&mut c, &mut s, now);

    // The same route again: a one-byte reference.
    c.send(MessageHead::to_route("sensor/temp"), b(b"21.7"))
        .unwrap();
    let bytes = transmit(&mut c, now);
    v.insert("tcp/request-ref", bytes.clone());
    s.handle_input(now, &bytes);
    let evs = events(&mut s);
    let inc = incoming(&evs);
    assert_eq!(inc[0].0, MessageId(2));
    assert_eq!(inc[0].1.route.as_deref(), Some("sensor/temp"));
    assert_eq!(read_all(&mut s, inc[0].0), b"21.7");
    settle(&mut c, &mut s, now);

    // Urgent message with headers.
    let head = MessageHead::to_route("log")
        .with_urgency(Urgency::HIGHEST)
        .with_metadata(metadata_block());
    c.send(head, b(b"hi")).unwrap();
    let bytes = transmit(&mut c, now);
    v.insert("tcp/start-metadata", bytes.clone());
    s.handle_input(now, &bytes);
    let evs = events(&mut s);
    let inc = incoming(&evs);
    assert_eq!(inc[0].1.urgency, Urgency::HIGHEST);
    let h = Headers::decode(&inc[0].1.metadata).unwrap();
    assert_eq!(h.get_str("content-type"), Some("text/plain"));
    read_all(&mut s, inc[0].0);
    settle(&mut c, &mut s, now);

    // Cancelled by its sender after its START went out.
    let id = c
        .start(MessageHead::to_route("upload").with_len(1000))
        .unwrap();
    assert_eq!(id, MessageId(4));
    c.write(id, b(b"abcd")).unwrap();
    let bytes = transmit(&mut c, now);
    v.insert("tcp/start-partial", bytes.clone());
    s.handle_input(now, &bytes);
    c.cancel(id, ErrorCode::CANCELLED);
    let bytes = transmit(&mut c, now);
    v.insert("tcp/cancel-sender", bytes.clone());
    s.handle_input(now, &bytes);
    let evs = events(&mut s);
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::Reset { id, .. } if *id == MessageId(4))));
    settle(&mut c, &mut s, now);

    // Cancelled before its START went out: a void START keeps ids dense.
    let id = c.start(MessageHead::to_route("upload")).unwrap();
    c.cancel(id, ErrorCode::CANCELLED);
    let bytes = transmit(&mut c, now);
    v.insert("tcp/void-start", bytes.clone());
    s.handle_input(now, &bytes);
    settle(&mut c, &mut s, now);
    events(&mut c);
    events(&mut s);

    // Stopped by its receiver.
    let id = c
        .start(MessageHead::to_route("upload").with_len(1000))
        .unwrap();
    assert_eq!(id, MessageId(6));
    c.write(id, b(b"abcd")).unwrap();
    let bytes = transmit(&mut c, now);
    s.handle_input(now, &bytes);
    let inc = incoming(&events(&mut s));
    s.stop(inc[0].0, ErrorCode::CANCELLED);
    let bytes = transmit_one(&mut s, now);
    v.insert("tcp/cancel-receiver", bytes.clone());
    c.handle_input(now, &bytes);
    let evs = events(&mut c);
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::Stopped { id, .. } if *id == MessageId(6))));
    settle(&mut c, &mut s, now);

    // Graceful close from the server, answered by the client.
    s.close(ErrorCode::NO_ERROR, "bye");
    let bytes = transmit(&mut s, now);
    v.insert("tcp/goaway", bytes.clone());
    c.handle_input(now, &bytes);
    c.close(ErrorCode::NO_ERROR, "");
    let bytes = transmit(&mut c, now);
    s.handle_input(now, &bytes);
    assert!(c.is_closed() && s.is_closed());

    // Abort.
    let mut c = Connection::new(Config::tcp(), now);
    let mut s = Connection::new(Config::tcp(), now);
    settle(&mut c, &mut s, now);
    s.abort(ErrorCode::INTERNAL_ERROR, "oops");
    let bytes = transmit(&mut s, now);
    v.insert("tcp/error", bytes.clone());
    c.handle_input(now, &bytes);
    let evs = events(&mut c);
    assert!(evs.iter().any(|e| matches!(
        e,
        Event::Closed { error: Some(netcore_core::ConnectionError::PeerError { code, .. }) }
            if *code == ErrorCode::INTERNAL_ERROR
    )));

    // Multi-frame: a sender whose frames carry at most 16 payload bytes.
    let small = Config {
        send_frame: 16,
        ..Config::tcp()
    };
    let mut c = Connection::new(small, now);
    let mut s = Connection::new(Config::tcp(), now);
    settle(&mut c, &mut s, now);
    events(&mut s);
    let id = c
        .start(MessageHead::to_route("up").with_len(MULTI_BODY.len() as u64))
        .unwrap();
    c.write(id, b(MULTI_BODY)).unwrap();
    let mut bytes = transmit_one(&mut c, now);
    c.finish(id).unwrap();
    bytes.extend(transmit(&mut c, now));
    v.insert("tcp/multi-frame", bytes.clone());
    s.handle_input(now, &bytes);
    let inc = incoming(&events(&mut s));
    assert_eq!(inc[0].1.total_len, Some(MULTI_BODY.len() as u64));
    assert_eq!(read_all(&mut s, inc[0].0), MULTI_BODY);
    v
}

/// The serial vectors produced by a real pair with `Config::serial()`.
fn serial_scenario() -> BTreeMap<&'static str, Vec<u8>> {
    let now = Instant::ZERO;
    let mut v = BTreeMap::new();
    let mut c = Connection::new(Config::serial(), now);
    let mut s = Connection::new(Config::serial(), now);

    let hello_c = transmit(&mut c, now);
    let hello_s = transmit(&mut s, now);
    v.insert("serial/hello", hello_c.clone());
    s.handle_input(now, &hello_c);
    c.handle_input(now, &hello_s);
    // Each side confirms the other's HELLO and samples the RTT.
    let confirm_s = transmit(&mut s, now);
    v.insert("serial/hello-confirm", confirm_s.clone());
    let confirm_c = transmit(&mut c, now);
    c.handle_input(now, &confirm_s);
    s.handle_input(now, &confirm_c);
    settle(&mut c, &mut s, now);
    assert!(c.is_open() && s.is_open());
    events(&mut c);
    events(&mut s);

    let id = c
        .send(MessageHead::to_route("sensor/temp"), b(b"21.5"))
        .unwrap();
    assert_eq!(id, MessageId(1));
    let bytes = transmit(&mut c, now);
    v.insert("serial/request-literal", bytes.clone());
    s.handle_input(now, &bytes);
    let inc = incoming(&events(&mut s));
    assert_eq!(read_all(&mut s, inc[0].0), b"21.5");
    settle(&mut c, &mut s, now);

    c.send(MessageHead::to_route("sensor/temp"), b(b"21.7"))
        .unwrap();
    let bytes = transmit(&mut c, now);
    v.insert("serial/request-ref", bytes.clone());
    s.handle_input(now, &bytes);
    let inc = incoming(&events(&mut s));
    assert_eq!(inc[0].1.route.as_deref(), Some("sensor/temp"));
    read_all(&mut s, inc[0].0);
    settle(&mut c, &mut s, now);
    events(&mut c);

    // A link frame lost on the line: message 3's only frame never arrives.
    c.send(MessageHead::to_route("log"), b(b"x")).unwrap();
    let _lost = transmit(&mut c, now);
    c.send(MessageHead::to_route("cfg"), b(b"y")).unwrap();
    let bytes = transmit(&mut c, now);
    s.handle_input(now, &bytes);
    let inc = incoming(&events(&mut s));
    assert_eq!(inc[0].0, MessageId(4));
    read_all(&mut s, inc[0].0);
    let bytes = transmit_one(&mut s, now);
    v.insert("serial/nack", bytes.clone());
    c.handle_input(now, &bytes);
    let evs = events(&mut c);
    assert!(evs.iter().any(|e| matches!(
        e,
        Event::Stopped { id, error: netcore_core::MessageError::FrameLost } if *id == MessageId(3)
    )));
    let bytes = transmit(&mut c, now);
    v.insert("serial/cancel-lost", bytes.clone());
    s.handle_input(now, &bytes);
    settle(&mut c, &mut s, now);
    assert!(c.is_open() && s.is_open());

    s.close(ErrorCode::NO_ERROR, "");
    let bytes = transmit(&mut s, now);
    v.insert("serial/goaway", bytes.clone());
    c.handle_input(now, &bytes);
    v
}

// ----- the vectors ------------------------------------------------------------------------

fn all_vectors() -> Vec<Vector> {
    let tcp = tcp_scenario();
    let serial = serial_scenario();
    let driven = |name: &str| -> Option<Vec<u8>> {
        Some(
            tcp.get(name)
                .or_else(|| serial.get(name))
                .unwrap_or_else(|| panic!("no driven bytes for {name}"))
                .clone(),
        )
    };
    let frames = |name: &'static str, fs: Vec<Frame>| Vector {
        name,
        expect: Expect::Frames(fs),
        driven: driven(name),
    };
    let plain = |name: &'static str, fs: Vec<Frame>| Vector {
        name,
        expect: Expect::Frames(fs),
        driven: None,
    };
    let serial_v = |name: &'static str, lead: bool, fs: Vec<(u16, Frame)>| Vector {
        name,
        expect: Expect::Serial { lead, frames: fs },
        driven: driven(name),
    };
    let sensor_literal = StartSpec {
        route: literal(1, b"sensor/temp"),
        body: b"21.5",
        ..StartSpec::default()
    };
    let sensor_ref = |id8| StartSpec {
        id8,
        route: Some(RouteField::Ref(1)),
        body: b"21.7",
        ..StartSpec::default()
    };
    vec![
        Vector {
            name: "varint",
            expect: Expect::Varints(vec![0, 1, 127, 128, 300, 16_383, 16_384, 1 << 32, u64::MAX]),
            driven: None,
        },
        Vector {
            name: "metadata",
            expect: Expect::Headers(metadata_headers()),
            driven: None,
        },
        frames("tcp/hello", vec![hello_tcp()]),
        frames("tcp/ping", vec![Frame::Ping(1)]),
        frames("tcp/pong", vec![Frame::Pong(1)]),
        frames("tcp/request-literal", vec![start(sensor_literal)]),
        frames("tcp/max-messages", vec![Frame::MaxMessages(192)]),
        frames(
            "tcp/reply",
            vec![start(StartSpec {
                reply_to: Some(1),
                body: b"ok",
                ..StartSpec::default()
            })],
        ),
        frames("tcp/request-ref", vec![start(sensor_ref(2))]),
        frames(
            "tcp/start-metadata",
            vec![start(StartSpec {
                id8: 3,
                urgency: 0,
                route: literal(2, b"log"),
                metadata: Some(metadata_block()),
                body: b"hi",
                ..StartSpec::default()
            })],
        ),
        frames(
            "tcp/start-partial",
            vec![start(StartSpec {
                id8: 4,
                fin: false,
                route: literal(3, b"upload"),
                total_len: Some(1000),
                body: b"abcd",
                ..StartSpec::default()
            })],
        ),
        frames(
            "tcp/cancel-sender",
            vec![cancel(4, CancelSide::Sender, ErrorCode::CANCELLED)],
        ),
        frames(
            "tcp/void-start",
            vec![start(StartSpec {
                id8: 5,
                fin: false,
                route: Some(RouteField::Ref(0)),
                ..StartSpec::default()
            })],
        ),
        frames(
            "tcp/cancel-receiver",
            vec![cancel(6, CancelSide::Receiver, ErrorCode::CANCELLED)],
        ),
        frames(
            "tcp/goaway",
            vec![Frame::GoAway(GoAway {
                last_id: 6,
                code: ErrorCode::NO_ERROR,
                reason: b(b"bye"),
            })],
        ),
        frames(
            "tcp/error",
            vec![Frame::Error(ErrorFrame {
                code: ErrorCode::INTERNAL_ERROR,
                reason: b(b"oops"),
            })],
        ),
        frames(
            "tcp/multi-frame",
            vec![
                start(StartSpec {
                    fin: false,
                    route: literal(1, b"up"),
                    total_len: Some(30),
                    body: b"012345678",
                    ..StartSpec::default()
                }),
                data(1, 9, false, b"9abcdefghijklm"),
                data(1, 23, true, b"nopqrst"),
            ],
        ),
        plain("tcp/max-data", vec![Frame::MaxData(1_572_864)]),
        plain(
            "tcp/max-message-data",
            vec![Frame::MaxMessageData {
                id: 7,
                max: 1_048_576,
            }],
        ),
        plain("tcp/hello-version-2", {
            let Frame::Hello(mut h) = hello_tcp() else {
                unreachable!()
            };
            h.version = 2;
            vec![Frame::Hello(h)]
        }),
        plain(
            "tcp/error-application",
            vec![Frame::Error(ErrorFrame {
                code: ErrorCode(0x1234),
                reason: Bytes::new(),
            })],
        ),
        plain(
            "tcp/nack",
            vec![Frame::Nack(Nack {
                first_seq: 300,
                count: 2,
            })],
        ),
        plain(
            "tcp/unknown-kind",
            vec![Frame::Unknown {
                kind: FrameKind(0x3f),
                len: 3,
            }],
        ),
        serial_v("serial/hello", true, vec![(0, hello_serial(false))]),
        serial_v(
            "serial/hello-confirm",
            false,
            vec![(1, hello_serial(true)), (2, Frame::Ping(1))],
        ),
        serial_v(
            "serial/request-literal",
            false,
            vec![(
                4,
                start(StartSpec {
                    route: literal(1, b"sensor/temp"),
                    body: b"21.5",
                    ..StartSpec::default()
                }),
            )],
        ),
        serial_v("serial/request-ref", false, vec![(5, start(sensor_ref(2)))]),
        serial_v(
            "serial/nack",
            false,
            vec![(
                4,
                Frame::Nack(Nack {
                    first_seq: 6,
                    count: 1,
                }),
            )],
        ),
        serial_v(
            "serial/cancel-lost",
            false,
            vec![(8, cancel(3, CancelSide::Sender, ErrorCode::FRAME_LOST))],
        ),
        serial_v(
            "serial/goaway",
            false,
            vec![(
                5,
                Frame::GoAway(GoAway {
                    last_id: 4,
                    code: ErrorCode::NO_ERROR,
                    reason: Bytes::new(),
                }),
            )],
        ),
    ]
}

// ----- decoding ---------------------------------------------------------------------------

/// Decodes frames back to back, requiring every byte to be used.
fn decode_frames(mut bytes: &[u8]) -> Result<Vec<Frame>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let h = Header::parse(bytes, usize::MAX)
            .map_err(|e| format!("header: {e}"))?
            .ok_or("truncated header")?;
        let end = h.header_len + h.payload_len;
        if bytes.len() < end {
            return Err(format!("frame needs {end} bytes, {} left", bytes.len()));
        }
        let payload = Bytes::copy_from_slice(&bytes[h.header_len..end]);
        out.push(Frame::load(h.kind, payload).map_err(|e| format!("load: {e}"))?);
        bytes = &bytes[end..];
    }
    Ok(out)
}

/// Splits serial link bytes into `(seq, frame bytes)` blocks, checking COBS and CRC32C.
/// Returns whether a leading delimiter was present.
/// Serial link frames as `(seq, frame bytes)`.
type LinkFrames = Vec<(u16, Vec<u8>)>;

fn decode_serial(bytes: &[u8]) -> Result<(bool, LinkFrames), String> {
    let lead = bytes.first() == Some(&0);
    if bytes.last() != Some(&0) {
        return Err("serial bytes must end with the 0x00 delimiter".into());
    }
    let body = if lead { &bytes[1..] } else { bytes };
    let mut out = Vec::new();
    for block in body[..body.len() - 1].split(|&x| x == 0) {
        let mut raw = Vec::new();
        if !cobs::decode(block, &mut raw) {
            return Err(format!("bad COBS block {block:02x?}"));
        }
        if raw.len() < 2 + 2 + 4 {
            return Err("block too short".into());
        }
        let (inner, crc) = raw.split_at(raw.len() - 4);
        if crc32c(inner).to_le_bytes() != crc {
            return Err(format!("CRC32C mismatch in block {block:02x?}"));
        }
        let seq = u16::from_le_bytes([inner[0], inner[1]]);
        out.push((seq, inner[2..].to_vec()));
    }
    Ok((lead, out))
}

fn check_decode(name: &str, bytes: &[u8], expect: &Expect) -> Result<(), String> {
    match expect {
        Expect::Frames(want) => {
            let got = decode_frames(bytes)?;
            if &got != want {
                return Err(format!("{name}: decodes to {got:#?}\nexpected {want:#?}"));
            }
        }
        Expect::Serial { lead, frames } => {
            let (got_lead, blocks) = decode_serial(bytes)?;
            if got_lead != *lead {
                return Err(format!("{name}: leading delimiter {got_lead}, want {lead}"));
            }
            if blocks.len() != frames.len() {
                return Err(format!(
                    "{name}: {} link frames, want {}",
                    blocks.len(),
                    frames.len()
                ));
            }
            for ((seq, inner), (want_seq, want)) in blocks.iter().zip(frames) {
                if seq != want_seq {
                    return Err(format!("{name}: seq {seq}, want {want_seq}"));
                }
                let got = decode_frames(inner)?;
                if got.len() != 1 || &got[0] != want {
                    return Err(format!("{name}: decodes to {got:#?}\nexpected {want:#?}"));
                }
            }
        }
        Expect::Varints(want) => {
            let mut rest = bytes;
            let mut got = Vec::new();
            while !rest.is_empty() {
                let (v, n) = varint::decode(rest).map_err(|e| format!("{name}: {e:?}"))?;
                got.push(v);
                rest = &rest[n..];
            }
            if &got != want {
                return Err(format!("{name}: decodes to {got:?}, want {want:?}"));
            }
        }
        Expect::Headers(want) => {
            let h = Headers::decode(bytes).map_err(|e| format!("{name}: {e}"))?;
            let got: Vec<(&str, &[u8])> = h.iter().map(|(k, v)| (k, &v[..])).collect();
            if got != *want {
                return Err(format!("{name}: decodes to {got:?}, want {want:?}"));
            }
        }
    }
    Ok(())
}

/// Checks a whole document against the library; `Err` lists every problem.
fn check_doc(text: &str, vectors: &[Vector]) -> Result<usize, String> {
    let doc = parse_doc(text)?;
    let mut problems = Vec::new();
    for (name, _) in &doc {
        if !vectors.iter().any(|v| v.name == name) {
            problems.push(format!(
                "{name}: in PROTOCOL.md but unknown to tests/vectors.rs"
            ));
        }
    }
    for v in vectors {
        let Some((_, bytes)) = doc.iter().find(|(n, _)| n == v.name) else {
            problems.push(format!("{}: missing from PROTOCOL.md", v.name));
            continue;
        };
        let encoded = v.encoded();
        if *bytes != encoded {
            problems.push(format!(
                "{}: PROTOCOL.md has\n{}\nthe library encodes\n{}",
                v.name,
                hex(bytes),
                hex(&encoded)
            ));
        }
        if let Err(e) = check_decode(v.name, bytes, &v.expect) {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        Ok(doc.len())
    } else {
        Err(problems.join("\n\n"))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

// ----- tests ------------------------------------------------------------------------------

#[test]
fn driven_connections_produce_the_expected_frames() {
    for v in all_vectors() {
        if let Some(driven) = &v.driven {
            assert_eq!(
                hex(driven),
                hex(&v.encoded()),
                "{}: a Connection sends other bytes than the expected frames",
                v.name
            );
        }
    }
}

#[test]
fn hello_vectors_are_the_default_configs() {
    assert_eq!(hello_for(&Config::tcp(), false), hello_tcp());
    assert_eq!(hello_for(&Config::serial(), false), hello_serial(false));
}

#[test]
fn every_protocol_md_vector_matches_the_library() {
    let vectors = all_vectors();
    match check_doc(&read_doc(), &vectors) {
        Ok(n) => assert_eq!(n, vectors.len()),
        Err(e) => panic!("docs/PROTOCOL.md disagrees with the code:\n\n{e}"),
    }
}

/// The check above must be able to fail: change one byte of each vector in turn and
/// require a complaint.
#[test]
fn a_changed_byte_in_the_document_is_caught() {
    let text = read_doc();
    let vectors = all_vectors();
    let doc = parse_doc(&text).unwrap();
    for (name, bytes) in &doc {
        for pos in [0, bytes.len() / 2, bytes.len() - 1] {
            let mut altered = bytes.clone();
            altered[pos] ^= 0x01;
            let mut rebuilt = String::new();
            for (n, bs) in &doc {
                let bs = if n == name { &altered } else { bs };
                rebuilt.push_str(&format!("vector: {n}\n```hex\n{}\n```\n\n", hex(bs)));
            }
            assert!(
                check_doc(&rebuilt, &vectors).is_err(),
                "{name}: flipping byte {pos} went unnoticed"
            );
        }
    }
    // And a vector missing from the document is reported.
    let mut without = String::new();
    for (n, bs) in doc.iter().skip(1) {
        without.push_str(&format!("vector: {n}\n```hex\n{}\n```\n\n", hex(bs)));
    }
    assert!(check_doc(&without, &vectors).is_err());
}

fn doc_vector(doc: &[(String, Vec<u8>)], name: &str) -> Vec<u8> {
    doc.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("vector {name} missing"))
        .1
        .clone()
}

/// The document's bytes, fed to a real connection, mean what the document says.
#[test]
fn document_streams_drive_a_connection() {
    let doc = parse_doc(&read_doc()).unwrap();
    let now = Instant::ZERO;

    // tcp: HELLO, PING, a request, an unknown frame (skipped), a second request.
    let mut s = Connection::new(Config::tcp(), now);
    let mut stream = doc_vector(&doc, "tcp/hello");
    stream.extend(doc_vector(&doc, "tcp/ping"));
    stream.extend(doc_vector(&doc, "tcp/request-literal"));
    stream.extend(doc_vector(&doc, "tcp/unknown-kind"));
    stream.extend(doc_vector(&doc, "tcp/request-ref"));
    // One byte at a time: frames may be split anywhere.
    for byte in &stream {
        s.handle_input(now, std::slice::from_ref(byte));
    }
    assert!(s.is_open());
    let evs = events(&mut s);
    let inc = incoming(&evs);
    assert_eq!(inc.len(), 2, "{evs:?}");
    assert_eq!(inc[0].0, MessageId(1));
    assert_eq!(inc[1].0, MessageId(2));
    for (id, head) in &inc {
        assert_eq!(head.route.as_deref(), Some("sensor/temp"));
        assert_eq!(head.urgency, Urgency::DEFAULT);
        read_all(&mut s, *id);
    }
    // Its answers to the PING: our own HELLO, then PING and PONG.
    let out = decode_frames(&transmit(&mut s, now)).unwrap();
    assert!(out.contains(&Frame::Pong(1)), "{out:?}");

    // tcp: the multi-frame message reassembles.
    let mut s = Connection::new(Config::tcp(), now);
    s.handle_input(now, &doc_vector(&doc, "tcp/hello"));
    s.handle_input(now, &doc_vector(&doc, "tcp/multi-frame"));
    let inc = incoming(&events(&mut s));
    assert_eq!(inc[0].1.route.as_deref(), Some("up"));
    assert_eq!(read_all(&mut s, inc[0].0), MULTI_BODY);

    // tcp: an ERROR frame closes the connection with its code.
    let mut s = Connection::new(Config::tcp(), now);
    s.handle_input(now, &doc_vector(&doc, "tcp/hello"));
    s.handle_input(now, &doc_vector(&doc, "tcp/error-application"));
    assert!(s.is_closed());
    assert!(events(&mut s).iter().any(|e| matches!(
        e,
        Event::Closed { error: Some(netcore_core::ConnectionError::PeerError { code, .. }) }
            if *code == ErrorCode(0x1234)
    )));

    // tcp: a HELLO of another version fails the handshake with INCOMPATIBLE.
    let mut s = Connection::new(Config::tcp(), now);
    s.handle_input(now, &doc_vector(&doc, "tcp/hello-version-2"));
    assert!(s.is_closed());
    assert!(events(&mut s).iter().any(|e| matches!(
        e,
        Event::Closed {
            error: Some(netcore_core::ConnectionError::Handshake(
                netcore_core::HandshakeError::VersionMismatch { ours: 1, theirs: 2 }
            ))
        }
    )));
    let out = decode_frames(&transmit(&mut s, now)).unwrap();
    assert!(
        out.iter()
            .any(|f| matches!(f, Frame::Error(e) if e.code == ErrorCode::INCOMPATIBLE)),
        "{out:?}"
    );

    // serial: the HELLO opens a connection; the request that follows arrives.
    let mut s = Connection::new(Config::serial(), now);
    let mut stream = doc_vector(&doc, "serial/hello");
    stream.extend(doc_vector(&doc, "serial/hello-confirm"));
    s.handle_input(now, &stream);
    assert!(s.is_open());
    // Link frames 2..3 of the scenario are not part of the document: the receiver
    // reports the gap with a NACK and still takes the request.
    // Line noise ending in a delimiter first: dropped as one corrupt block.
    let mut noisy = vec![0x55, 0xaa, 0x13, 0x00];
    noisy.extend(doc_vector(&doc, "serial/request-literal"));
    s.handle_input(now, &noisy);
    assert_eq!(s.stats().link.frames_corrupt, 1);
    let evs = events(&mut s);
    let inc = incoming(&evs);
    assert_eq!(inc.len(), 1, "{evs:?}");
    assert_eq!(read_all(&mut s, inc[0].0), b"21.5");
    let (_, blocks) = decode_serial(&transmit(&mut s, now)).unwrap();
    let frames: Vec<Frame> = blocks
        .iter()
        .flat_map(|(_, f)| decode_frames(f).unwrap())
        .collect();
    assert!(
        frames.contains(&Frame::Nack(Nack {
            first_seq: 3,
            count: 1
        })),
        "{frames:?}"
    );
}

// ----- regeneration -------------------------------------------------------------------------

/// One annotated line: bytes and what they are.
fn line(out: &mut String, bytes: &[u8], what: &str) {
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let h = hex(chunk);
        if i == 0 && !what.is_empty() {
            out.push_str(&format!("{h:<48}  # {what}\n"));
        } else {
            out.push_str(&format!("{h}\n"));
        }
    }
    if bytes.is_empty() && !what.is_empty() {
        out.push_str(&format!("# {what}: (none)\n"));
    }
}

fn take_varint(p: &mut &[u8]) -> (Vec<u8>, u64) {
    let (v, n) = varint::decode(p).unwrap();
    let bytes = p[..n].to_vec();
    *p = &p[n..];
    (bytes, v)
}

fn take(p: &mut &[u8], n: usize) -> Vec<u8> {
    let bytes = p[..n].to_vec();
    *p = &p[n..];
    bytes
}

fn quoted(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.is_empty() => format!("\"{s}\""),
        _ => format!("{} bytes", bytes.len()),
    }
}

fn code_name(code: u64) -> String {
    let c = ErrorCode(code);
    match c.name() {
        Some(n) => format!("{n} ({code:#x})"),
        None => format!("{code:#x} (no name in this version)"),
    }
}

/// Annotates one encoded frame, field by field.
fn annotate_frame(out: &mut String, frame: &[u8], prefix: &str) {
    let h = Header::parse(frame, usize::MAX).unwrap().unwrap();
    let kind = h.kind;
    let name = kind.name().unwrap_or("unknown kind");
    let mut p = &frame[h.header_len..h.header_len + h.payload_len];
    let mut l = |bytes: &[u8], what: &str| {
        let mut s = String::new();
        line(&mut s, bytes, what);
        for x in s.lines() {
            out.push_str(prefix);
            out.push_str(x);
            out.push('\n');
        }
    };
    l(&frame[..1], &format!("kind {name} ({:#04x})", kind.0));
    l(
        &frame[1..h.header_len],
        &format!("payload length {}", h.payload_len),
    );
    match kind {
        FrameKind::HELLO => {
            l(&take(&mut p, 4), "magic \"NCOR\"");
            let x = take(&mut p, 1);
            l(&x, &format!("version {}", x[0]));
            let x = take(&mut p, 1);
            l(
                &x,
                &format!(
                    "profile {} ({})",
                    x[0],
                    if x[0] == 0 { "tcp" } else { "serial" }
                ),
            );
            let x = take(&mut p, 1);
            l(&x, &format!("flags: seen_peer={}", x[0] & 1));
            for field in [
                "session",
                "capabilities",
                "max_frame",
                "max_message (0 = no limit)",
                "max_metadata",
                "max_incoming",
                "max_routes",
                "message_window",
                "connection_window",
            ] {
                let (bytes, v) = take_varint(&mut p);
                l(&bytes, &format!("{field} {v}"));
            }
        }
        FrameKind::START => {
            l(&take(&mut p, 1), "id8");
            let f = take(&mut p, 1)[0];
            let mut names = vec![format!("urgency {}", f & 7)];
            for (bit, n) in [
                (0x08, "FIN"),
                (0x10, "ROUTE"),
                (0x20, "METADATA"),
                (0x40, "LENGTH"),
                (0x80, "REPLY"),
            ] {
                if f & bit != 0 {
                    names.push(n.to_string());
                }
            }
            l(&[f], &format!("flags: {}", names.join(" | ")));
            if f & 0x80 != 0 {
                let (bytes, v) = take_varint(&mut p);
                l(&bytes, &format!("reply_to {v}"));
            }
            if f & 0x10 != 0 {
                let (bytes, code) = take_varint(&mut p);
                if code & 1 == 1 {
                    l(
                        &bytes,
                        &format!("route code {code}: literal, intern as {}", code >> 1),
                    );
                    let (bytes, len) = take_varint(&mut p);
                    l(&bytes, &format!("route length {len}"));
                    let name = take(&mut p, len as usize);
                    l(&name, &quoted(&name));
                } else if code == 0 {
                    l(&bytes, "route code 0: void message");
                } else {
                    l(
                        &bytes,
                        &format!("route code {code}: interned route {}", code >> 1),
                    );
                }
            }
            if f & 0x20 != 0 {
                let (bytes, len) = take_varint(&mut p);
                l(&bytes, &format!("metadata length {len}"));
                let m = take(&mut p, len as usize);
                l(&m, "metadata block (§9)");
            }
            if f & 0x40 != 0 {
                let (bytes, v) = take_varint(&mut p);
                l(&bytes, &format!("total_len {v}"));
            }
            if !p.is_empty() {
                l(p, &format!("body {}", quoted(p)));
            }
        }
        FrameKind::DATA | FrameKind::END => {
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("id {v}"));
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("offset {v}"));
            if !p.is_empty() {
                l(p, &format!("body {}", quoted(p)));
            }
        }
        FrameKind::CANCEL => {
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("id {v}"));
            let s = take(&mut p, 1);
            l(
                &s,
                if s[0] == 0 {
                    "side 0: the CANCEL's sender sends this message"
                } else {
                    "side 1: the CANCEL's sender receives this message"
                },
            );
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("code {}", code_name(v)));
        }
        FrameKind::MAX_DATA | FrameKind::MAX_MESSAGES | FrameKind::PING | FrameKind::PONG => {
            let what = match kind {
                FrameKind::MAX_DATA => "maximum total body bytes",
                FrameKind::MAX_MESSAGES => "maximum message id",
                _ => "nonce",
            };
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("{what} {v}"));
        }
        FrameKind::MAX_MESSAGE_DATA => {
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("id {v}"));
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("maximum body offset {v}"));
        }
        FrameKind::GOAWAY => {
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("last_id {v}"));
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("code {}", code_name(v)));
            if !p.is_empty() {
                l(p, &format!("reason {}", quoted(p)));
            }
        }
        FrameKind::ERROR => {
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("code {}", code_name(v)));
            if !p.is_empty() {
                l(p, &format!("reason {}", quoted(p)));
            }
        }
        FrameKind::NACK => {
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("first_seq {v}"));
            let (bytes, v) = take_varint(&mut p);
            l(&bytes, &format!("count {v}"));
        }
        _ => {
            if !p.is_empty() {
                l(p, "payload (skipped by the receiver)");
            }
        }
    }
}

fn annotate(v: &Vector) -> String {
    let bytes = v.encoded();
    let mut out = String::new();
    match &v.expect {
        Expect::Frames(frames) => {
            let mut rest = &bytes[..];
            for f in frames {
                let n = f.encoded_len();
                annotate_frame(&mut out, &rest[..n], "");
                rest = &rest[n..];
            }
        }
        Expect::Serial { lead, frames } => {
            if *lead {
                line(&mut out, &[0], "delimiter sent before the first link frame");
            }
            for (seq, f) in frames {
                let block = serial_block(*seq, f);
                let mut enc = Vec::new();
                f.encode(&mut enc);
                let mut raw = seq.to_le_bytes().to_vec();
                raw.extend_from_slice(&enc);
                let crc = crc32c(&raw);
                let kind = f.kind().name().unwrap_or("?");
                line(
                    &mut out,
                    &block[..block.len() - 1],
                    &format!("COBS(seq {seq} | {kind} frame | crc32c {crc:#010x})"),
                );
                line(&mut out, &[0], "delimiter");
                out.push_str("#   before COBS:\n");
                let mut s = String::new();
                line(&mut s, &seq.to_le_bytes(), &format!("seq {seq} (u16 le)"));
                annotate_frame(&mut s, &enc, "");
                line(&mut s, &crc.to_le_bytes(), "crc32c (u32 le) of seq + frame");
                for x in s.lines() {
                    out.push_str("#   ");
                    out.push_str(x);
                    out.push('\n');
                }
            }
        }
        Expect::Varints(vs) => {
            for x in vs {
                let mut e = Vec::new();
                varint::encode(*x, &mut e);
                line(&mut out, &e, &format!("{x}"));
            }
        }
        Expect::Headers(hs) => {
            for (k, val) in hs {
                let mut e = Vec::new();
                varint::encode(k.len() as u64, &mut e);
                line(&mut out, &e, &format!("key length {}", k.len()));
                line(&mut out, k.as_bytes(), &format!("\"{k}\""));
                let mut e = Vec::new();
                varint::encode(val.len() as u64, &mut e);
                line(&mut out, &e, &format!("value length {}", val.len()));
                line(&mut out, val, &quoted(val));
            }
        }
    }
    out
}

#[test]
#[ignore = "prints the vectors as Markdown for docs/PROTOCOL.md"]
fn print_vectors() {
    for v in all_vectors() {
        println!(
            "vector: {}\n```hex\n{}```\n({} bytes)\n",
            v.name,
            annotate(&v),
            v.encoded().len()
        );
    }
}
