//! Shared test helpers: the Python interpreter, bounded subprocesses, the message types
//! mirrored from tests/python/bp_helper.py and the Rust server with the same logic.
#![allow(dead_code, missing_docs)]

use netcore_schema::{
    message, Checksum, ProtocolConfig, Reply, Schema, Server, ServerHandle, TypedMessage,
};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const PROFILES: [(&str, &str, bool); 5] = [
    ("basic", ">H", false),
    ("crc", "<I", true),
    ("byte", "B", false),
    ("wide", ">Q", true),
    ("net", "!H", true),
];

message! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct Sensor = 1 {
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
    }
}
message! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct Mixed = 3 {
        pub a: i16 ["<h"],
        pub b: u32 ["<I"],
        pub c: i64 [">q"],
        pub d: f64 ["<d"],
        pub e: bool ["?"],
        pub f: f32 [">e"],
        pub g: u8 ["B"],
        pub name: String [text 8],
        pub raw: [u8; 4] [bytes 4],
    }
}
message! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct Blob = 4 {
        pub id: u64 ["<Q"],
        pub data: Vec<u8> [bytes],
        pub note: String [text],
        pub flag: bool ["?"],
        pub tag: String [text 4],
    }
}
message! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct Native = 5 {
        pub nl: i64 ["l"],
        pub nul: u64 ["L"],
        pub sl: i32 ["=l"],
        pub h: i16 ["!h"],
        pub b: i8 ["b"],
        pub sf: f32 ["=f"],
    }
}
message! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct Empty = 6 {}
}
message! {
    /// Fire-and-forget: the servers answer nothing.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Event = 7 {
        pub sensor1: f32 [">f"],
        pub sensor2: f32 [">f"],
        pub sensor3: f32 [">f"],
        pub sensor4: f32 [">f"],
    }
}
message! {
    /// Fire-and-forget with a variable layout.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Note = 8 {
        pub status_code: u32 [">I"],
        pub message: String [text],
    }
}

pub fn config(checksum: bool) -> ProtocolConfig {
    let c = ProtocolConfig::default().with_read_timeout(Duration::from_secs(10));
    if checksum {
        c.with_checksum(Checksum::crc32())
    } else {
        c
    }
}

pub fn schema(header: &str) -> Schema {
    Schema::builder()
        .header_format(header)
        .message::<Sensor>()
        .message::<Status>()
        .message::<Mixed>()
        .message::<Blob>()
        .message::<Native>()
        .message::<Empty>()
        .message::<Event>()
        .message::<Note>()
        .build()
        .expect("test schema")
}

/// The server logic of bp_helper.py's `respond`.
pub fn respond_sensor(s: Sensor) -> Sensor {
    Sensor {
        sensor1: s.sensor1 + 1.0,
        sensor2: s.sensor2 + 1.0,
        sensor3: s.sensor3 + 1.0,
        sensor4: s.sensor4 + 1.0,
    }
}
pub fn respond_status(s: Status) -> Status {
    Status {
        status_code: s.status_code.wrapping_add(1),
        message: s.message.to_uppercase(),
    }
}
pub fn respond_blob(b: Blob) -> Blob {
    Blob {
        data: b.data.iter().rev().copied().collect(),
        flag: !b.flag,
        ..b
    }
}

/// Expected reply bytes payload for a request (type id, payload).
pub fn expected_reply(type_id: u64, payload: &[u8]) -> (u64, Vec<u8>) {
    let mut out = Vec::new();
    match type_id {
        1 => respond_sensor(Sensor::decode(payload).unwrap())
            .encode(&mut out)
            .unwrap(),
        2 => respond_status(Status::decode(payload).unwrap())
            .encode(&mut out)
            .unwrap(),
        4 => respond_blob(Blob::decode(payload).unwrap())
            .encode(&mut out)
            .unwrap(),
        _ => out.extend_from_slice(payload),
    }
    (type_id, out)
}

pub fn rust_server(header: &str, checksum: bool) -> Server {
    fn ok<T: TypedMessage>(m: &T) -> netcore_schema::server::HandlerResult {
        Ok(Some(Reply::typed(m)?))
    }
    Server::builder(schema(header), config(checksum))
        .on(|s: Sensor, _| async move { ok(&respond_sensor(s)) })
        .on(|s: Status, _| async move { ok(&respond_status(s)) })
        .on(|m: Mixed, _| async move { ok(&m) })
        .on(|b: Blob, _| async move { ok(&respond_blob(b)) })
        .on(|n: Native, _| async move { ok(&n) })
        .on(|e: Empty, _| async move { ok(&e) })
        .on(|_: Event, _| async move { Ok(None) })
        .on(|_: Note, _| async move { Ok(None) })
        .build()
        .expect("server")
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn helper() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/bp_helper.py")
}

/// The Python interpreter with binary_protocol installed, or `None` (skip) when there is
/// none outside CI. Under CI a missing interpreter fails the test.
pub fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("NETCORE_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(workspace().join(".venv/bin/python")).filter(|p| p.exists()));
    let usable = candidate.filter(|p| {
        Command::new(p)
            .args(["-c", "import binary_protocol"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    if usable.is_none() {
        let msg = "no Python with binary_protocol 0.2.2: set NETCORE_PYTHON or create <workspace>/.venv \
                   (python3 -m venv .venv && .venv/bin/pip install binary-protocol==0.2.2 netcore==0.1.3)";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
    }
    usable
}

/// A child process killed when dropped.
pub struct Guard(pub Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the helper to completion within `limit` and returns its stdout.
pub fn run_helper(py: &PathBuf, args: &[&str], limit: Duration) -> String {
    let child = Command::new(py)
        .arg(helper())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let mut g = Guard(child);
    let start = Instant::now();
    loop {
        if let Some(status) = g.0.try_wait().expect("wait python") {
            let mut out = String::new();
            let mut err = String::new();
            use std::io::Read;
            let _ = g.0.stdout.take().map(|mut s| s.read_to_string(&mut out));
            let _ = g.0.stderr.take().map(|mut s| s.read_to_string(&mut err));
            assert!(status.success(), "python {args:?} failed: {status}\n{err}");
            return out;
        }
        if start.elapsed() > limit {
            panic!("python {args:?} did not finish within {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts the helper in server mode and returns it with its port.
pub fn python_server(py: &PathBuf, profile: &str, transport: &str) -> (Guard, u16) {
    let mut child = Command::new(py)
        .arg(helper())
        .args(["server", "--profile", profile, "--transport", transport])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn python server");
    let stdout = child.stdout.take().expect("stdout");
    let guard = Guard(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("python server did not report its port within 20 s");
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("bad python server output {line:?}"));
    (guard, port)
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

pub async fn start(server: &Server, transport: &str) -> ServerHandle {
    match transport {
        "tcp" => server.bind_tcp("127.0.0.1:0").await.expect("bind tcp"),
        _ => server.bind_udp("127.0.0.1:0").await.expect("bind udp"),
    }
}
