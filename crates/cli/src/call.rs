//! `netcore call ADDR ROUTE [BODY | @FILE | -]`: one request, the reply on stdout.

use anyhow::Context as _;
use bytes::Bytes;
use clap::ValueEnum;
use netcore_core::Urgency;
use netcore_runtime::transport::TransportAddr;
use netcore_runtime::Body;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::conn::{connect, parse_addr, LinkOpts};
use crate::exit::{fail, pipe_fail, ExitKind};
use crate::proto::check_reply;
use crate::schema_routes::TypedRoutes;
use crate::util::parse_duration;

/// How the reply is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Pretty JSON if the reply is JSON, else text if UTF-8, else raw bytes.
    #[default]
    Auto,
    /// The bytes as they are (streamed; fit for `> file`).
    Raw,
    /// UTF-8 text (invalid sequences replaced) and a newline.
    Text,
    /// Pretty-printed JSON; fails if the reply is not JSON.
    Json,
}

/// Arguments of `netcore call`.
#[derive(Debug, clap::Args)]
#[command(after_help = concat!("\
Examples:
  netcore call tcp://127.0.0.1:7000 echo 'hello'
  netcore call tcp://127.0.0.1:7000 time --output json
  netcore call tcp://127.0.0.1:7000 generate 1M --output raw > random.bin
  netcore call tcp://127.0.0.1:7000 discard @big.iso --timeout 2m
  netcore call tcp://127.0.0.1:7000 files/get -H name=a.bin -H offset=100 -i -o raw > tail.bin
  echo '{\"sensor\":1,\"value\":2.5}' | netcore call unix:///tmp/s.sock typed/Reading - --schema s.toml
  netcore call 'serial:///dev/ttyUSB0?baud=115200' echo hi -H trace=1

", exit_codes_help!()))]
pub struct CallArgs {
    /// Server address (tcp://HOST:PORT, unix:///PATH, serial:///DEV?baud=N, stdio:, tls://...).
    #[arg(value_parser = parse_addr)]
    pub addr: TransportAddr,
    /// Route to call, e.g. `echo`.
    pub route: String,
    /// Request body: literal text, `@FILE` for a file's contents, `-` for stdin; empty if absent.
    pub body: Option<String>,
    /// How to print the reply.
    #[arg(short, long, value_enum, default_value_t = Output::Auto)]
    pub output: Output,
    /// Give up waiting for the reply after this long (e.g. 500ms, 10s, 2m); the request is cancelled.
    #[arg(short, long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Give up connecting after this long.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// A request header `KEY=VALUE` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Schema file: the body is a JSON object encoded as the route's message type
    /// (`typed/NAME`), and the reply is decoded back to JSON.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Urgency of the request, 0 (most urgent) to 7 (bulk).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=7))]
    pub urgency: u8,
    /// Print the reply's headers on stderr (`key: value`) before its body.
    #[arg(short = 'i', long)]
    pub include: bool,
    /// Largest reply printed as text or JSON.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = crate::util::parse_size)]
    pub max_reply: u64,
    #[command(flatten)]
    pub link: LinkOpts,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

async fn read_body_arg(arg: Option<&str>, collect: bool) -> anyhow::Result<Body> {
    match arg {
        None => Ok(Body::empty()),
        Some("-") if collect => {
            use tokio::io::AsyncReadExt;
            let mut v = Vec::new();
            tokio::io::stdin()
                .read_to_end(&mut v)
                .await
                .context("reading the body from stdin")?;
            Ok(Body::from(v))
        }
        Some("-") => Ok(Body::stream(
            crate::util::Capped::new(tokio::io::stdin(), crate::util::BODY_READ),
            None,
        )),
        Some(s) if s.starts_with('@') => {
            let path = &s[1..];
            if collect {
                let v = tokio::fs::read(path)
                    .await
                    .with_context(|| format!("reading body file {path}"))?;
                Ok(Body::from(v))
            } else {
                crate::util::file_body(std::path::Path::new(path), 0)
                    .await
                    .with_context(|| format!("body file {path}"))
            }
        }
        Some(s) => Ok(Body::from(s.to_string())),
    }
}

async fn body_bytes(body: Body) -> anyhow::Result<Bytes> {
    match body {
        Body::Bytes(b) => Ok(b),
        Body::Stream { mut reader, .. } => {
            use tokio::io::AsyncReadExt;
            let mut v = Vec::new();
            reader.read_to_end(&mut v).await?;
            Ok(Bytes::from(v))
        }
    }
}

/// Runs `netcore call`.
pub async fn run(args: CallArgs) -> anyhow::Result<()> {
    let typed = match &args.schema {
        Some(p) => Some(TypedRoutes::load(p)?),
        None => None,
    };
    let mut body = read_body_arg(args.body.as_deref(), typed.is_some()).await?;
    if let Some(t) = &typed {
        let raw = body_bytes(body).await?;
        let json: serde_json::Value =
            serde_json::from_slice(&raw).context("with --schema the body must be a JSON object")?;
        body = Body::from(t.encode_json(&args.route, &json)?);
    }
    let pipe = connect(&args.addr, &args.link, args.connect_timeout).await?;
    let started = Instant::now();
    let mut msg = pipe
        .message(args.route.clone())
        .urgency(Urgency::new(args.urgency));
    for (k, v) in &args.headers {
        msg = msg.header(k.clone(), v.clone());
    }
    let reply = msg
        .timeout(args.timeout)
        .request(body)
        .await
        .map_err(|e| pipe_fail(format!("calling `{}` on {}", args.route, args.addr), e))?;
    let reply = check_reply(reply).await?;
    if args.include {
        for (k, v) in reply.headers().iter() {
            eprintln!("{k}: {}", String::from_utf8_lossy(v));
        }
    }
    let left = args.timeout.saturating_sub(started.elapsed());
    let print = print_reply(reply, &args, typed.as_ref());
    let result = match tokio::time::timeout(left, print).await {
        // The reader of our stdout went away (`| head`): nothing left to do.
        Ok(Err(e))
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        Ok(r) => r,
        Err(_) => Err(fail(
            ExitKind::Timeout,
            anyhow::anyhow!("the reply did not arrive within {:?}", args.timeout),
        )),
    };
    crate::conn::finish(pipe).await;
    result
}

async fn print_reply(
    reply: netcore_runtime::IncomingMessage,
    args: &CallArgs,
    typed: Option<&TypedRoutes>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    if args.output == Output::Raw && typed.is_none() {
        // A bar on stderr (shown only on a terminal) for replies long enough to wait for.
        let total = reply.head.total_len.unwrap_or(0);
        let bar = crate::util::byte_bar(total, "reply", total < (1 << 20));
        let mut body = reply.body;
        while let Some(c) = body
            .chunk()
            .await
            .map_err(|e| pipe_fail("reading the reply", e))?
        {
            out.write_all(&c)?;
            bar.inc(c.len() as u64);
        }
        bar.finish_and_clear();
        out.flush()?;
        return Ok(());
    }
    let bytes = reply
        .collect(args.max_reply)
        .await
        .map_err(|e| pipe_fail("reading the reply", e))?;
    if let Some(t) = typed {
        let json = t.decode_json(&args.route, &bytes)?;
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(());
    }
    match args.output {
        Output::Json => {
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                fail(
                    ExitKind::Failure,
                    anyhow::anyhow!("the reply is not JSON ({e}); try --output text"),
                )
            })?;
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Output::Text => writeln!(out, "{}", String::from_utf8_lossy(&bytes))?,
        Output::Auto | Output::Raw => {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                if v.is_object() || v.is_array() {
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                    return Ok(());
                }
            }
            match std::str::from_utf8(&bytes) {
                Ok(s) => writeln!(out, "{s}")?,
                Err(_) => out.write_all(&bytes)?,
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse() {
        assert_eq!(parse_header("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=x").is_err());
    }

    #[tokio::test]
    async fn body_sources() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b.txt");
        std::fs::write(&f, "from file").unwrap();
        let arg = format!("@{}", f.display());
        let b = body_bytes(read_body_arg(Some(&arg), false).await.unwrap())
            .await
            .unwrap();
        assert_eq!(&b[..], b"from file");
        let b = body_bytes(read_body_arg(Some("lit"), false).await.unwrap())
            .await
            .unwrap();
        assert_eq!(&b[..], b"lit");
        assert!(read_body_arg(Some("@/nonexistent/x"), false).await.is_err());
        assert!(read_body_arg(None, false).await.unwrap().is_empty());
    }
}
