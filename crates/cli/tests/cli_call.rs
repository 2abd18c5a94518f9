//! `netcore serve` + `netcore call` as processes on 127.0.0.1: replies, output modes and the
//! exit codes that tell remote errors, timeouts and connection failures apart.

mod common;

use common::{code, run, serve_tcp};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[test]
fn echo_time_generate_and_routes() {
    let (_server, addr) = serve_tcp(&[]);
    let out = run(&["call", &addr, "echo", "hello netcore"], None, T);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello netcore\n");

    let out = run(&["call", &addr, "time", "--output", "json"], None, T);
    assert_eq!(code(&out), 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("time is JSON");
    assert!(v["unix_ms"].as_u64().unwrap() > 1_600_000_000_000, "{v}");

    let out = run(
        &["call", &addr, "generate", "100K", "--output", "raw"],
        None,
        T,
    );
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout.len(), 100 * 1024);

    let out = run(&["call", &addr, "routes"], None, T);
    let routes: Vec<String> = serde_json::from_slice(&out.stdout).expect("routes JSON");
    for r in ["echo", "discard", "generate", "time"] {
        assert!(routes.iter().any(|x| x == r), "{routes:?}");
    }
}

#[test]
fn bodies_from_file_and_stdin_with_headers() {
    let (_server, addr) = serve_tcp(&[]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("body.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&f, &data).unwrap();
    let arg = format!("@{}", f.display());
    let out = run(&["call", &addr, "discard", &arg], None, T);
    assert_eq!(code(&out), 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "300000");

    let out = run(
        &["call", &addr, "echo", "-", "--output", "raw"],
        Some(&data),
        T,
    );
    assert_eq!(code(&out), 0);
    assert!(out.stdout == data, "echo of stdin differs");

    let out = run(
        &["call", &addr, "generate", "-H", "size=2K", "-o", "raw"],
        None,
        T,
    );
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout.len(), 2048);
}

#[test]
fn exit_codes_tell_failures_apart() {
    let (_server, addr) = serve_tcp(&[]);
    // Remote error: unknown route.
    let out = run(&["call", &addr, "no/such/route"], None, T);
    assert_eq!(code(&out), 5, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NO_ROUTE"));
    // Remote error: bad request.
    let out = run(&["call", &addr, "generate", "lots"], None, T);
    assert_eq!(code(&out), 5);
    // Timeout: a 4 GiB reply cannot arrive in 300 ms.
    let out = run(
        &[
            "call",
            &addr,
            "generate",
            "4G",
            "--timeout",
            "300ms",
            "-o",
            "raw",
        ],
        None,
        T,
    );
    assert_eq!(code(&out), 4, "{}", String::from_utf8_lossy(&out.stderr));
    // Connection failure: nobody listens on a port we just released.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = run(
        &["call", &format!("tcp://127.0.0.1:{port}"), "echo"],
        None,
        T,
    );
    assert_eq!(code(&out), 3);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && !err.contains("panicked"),
        "{err}"
    );
    // Usage errors.
    assert_eq!(code(&run(&["call", "nonsense://x", "echo"], None, T)), 2);
    assert_eq!(
        code(&run(&["call", &addr, "echo", "--timeout", "soon"], None, T)),
        2
    );
    // Local failure: unreadable body file.
    let out = run(&["call", &addr, "echo", "@/nonexistent/file"], None, T);
    assert_eq!(code(&out), 1);
}

#[test]
fn typed_routes_from_a_schema_file() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("sensors.toml");
    std::fs::write(
        &schema,
        r#"
[[messages]]
name = "Reading"
id = 1
fields = [
  { name = "sensor", type = "int", format = ">H" },
  { name = "value", type = "float", format = ">f" },
  { name = "label", type = "str" },
]
"#,
    )
    .unwrap();
    let s = schema.to_str().unwrap();
    let (_server, addr) = serve_tcp(&["--schema", s]);
    let body = r#"{"sensor": 7, "value": 2.5, "label": "roof"}"#;
    let out = run(
        &["call", &addr, "typed/Reading", body, "--schema", s],
        None,
        T,
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"sensor": 7, "value": 2.5, "label": "roof"})
    );
    // A payload that is not a Reading is a remote bad_request.
    let out = run(&["call", &addr, "typed/Reading", "xy"], None, T);
    assert_eq!(code(&out), 5);
    // A JSON body with a wrong field is refused locally.
    let out = run(
        &[
            "call",
            &addr,
            "typed/Reading",
            r#"{"nope": 1}"#,
            "--schema",
            s,
        ],
        None,
        T,
    );
    assert_eq!(code(&out), 1);
}

#[test]
fn help_and_completions() {
    for cmd in [
        "demo",
        "serve",
        "call",
        "send",
        "get",
        "link",
        "completions",
    ] {
        let out = run(&[cmd, "--help"], None, T);
        assert_eq!(code(&out), 0, "{cmd} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: netcore"), "{cmd}: {text}");
    }
    let out = run(&["call", "--help"], None, T);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit codes:"));
    let out = run(&["completions", "bash"], None, T);
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("netcore"));
}

#[test]
fn serial_profile_over_tcp_through_a_link() {
    // Both ends forced to the serial profile, through a link at 115 200 baud.
    let (_server, addr) = serve_tcp(&["--profile", "serial"]);
    let mut link = common::Proc::start(&[
        "link",
        "tcp://127.0.0.1:0",
        &addr,
        "--baud",
        "115200",
        "--quiet",
    ]);
    let line = link.wait_line("netcore link:", Duration::from_secs(30));
    let via = line.split_whitespace().nth(2).unwrap().to_string();
    let body = "x".repeat(3000);
    let out = run(
        &["call", &via, "echo", &body, "--profile", "serial"],
        None,
        T,
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), body);
    // A tcp-profile client cannot talk to it: the handshake fails (exit 3).
    let out = run(
        &["call", &addr, "echo", "x", "--connect-timeout", "3s"],
        None,
        T,
    );
    assert_eq!(code(&out), 3, "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::{Command, Stdio};
    // The reader goes away before the script is written (as with `| head -1`).
    let mut child = Command::new(common::netcore())
        .args(["completions", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
