//! `netcore send` and `netcore get`: file transfer against `netcore serve --dir`, with a
//! progress bar, resume from a partial file, and CRC-32C verification at the end.

use anyhow::Context as _;
use netcore_core::metadata::Headers;
use netcore_core::MessageHead;
use netcore_runtime::transport::TransportAddr;
use netcore_runtime::{IncomingMessage, Pipe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::conn::{connect, parse_addr, LinkOpts};
use crate::exit::{fail, pipe_fail, ExitKind};
use crate::files::{part_path, BULK};
use crate::proto::{self, check_reply};
use crate::util::{byte_bar, file_body, file_crc32c, fmt_bytes, fmt_dur, parse_duration};

/// Options shared by `send` and `get`.
#[derive(Debug, clap::Args)]
pub struct TransferOpts {
    /// Ignore a partial file and start from the beginning.
    #[arg(long)]
    pub restart: bool,
    /// No progress bar or summary line.
    #[arg(short, long)]
    pub quiet: bool,
    /// Give up connecting after this long.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    #[command(flatten)]
    pub link: LinkOpts,
}

/// Arguments of `netcore send`.
#[derive(Debug, clap::Args)]
#[command(after_help = concat!("\
An interrupted upload is kept on the server as NAME.netcore-part; sending again resumes
from its end. The server's CRC-32C of the finished file is checked against the local one.

Examples:
  netcore send tcp://127.0.0.1:7000 ./firmware.bin
  netcore send tcp://127.0.0.1:7000 ./firmware.bin --name releases/fw-1.2.bin
  netcore send 'serial:///dev/ttyUSB0?baud=115200' log.txt --restart

", exit_codes_help!()))]
pub struct SendArgs {
    /// Server address (`netcore serve ADDR --dir DIR`).
    #[arg(value_parser = parse_addr)]
    pub addr: TransportAddr,
    /// The local file to upload.
    pub file: PathBuf,
    /// Name on the server (default: the file's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Route that takes the upload.
    #[arg(long, default_value = proto::FILES_PUT)]
    pub route: String,
    #[command(flatten)]
    pub opts: TransferOpts,
}

/// Arguments of `netcore get`.
#[derive(Debug, clap::Args)]
#[command(after_help = concat!("\
The download goes to DEST.netcore-part and is renamed to DEST once its CRC-32C matches the
server's. Running the same command again after an interruption resumes from the part file.

Examples:
  netcore get tcp://127.0.0.1:7000 firmware.bin
  netcore get tcp://127.0.0.1:7000 releases/fw-1.2.bin ./fw.bin
  netcore get unix:///tmp/netcore.sock big.iso /tmp/

", exit_codes_help!()))]
pub struct GetArgs {
    /// Server address (`netcore serve ADDR --dir DIR`).
    #[arg(value_parser = parse_addr)]
    pub addr: TransportAddr,
    /// File name on the server (see `netcore call ADDR files/list`).
    pub remote_name: String,
    /// Local destination file or directory (default: the remote file's name here).
    pub dest: Option<PathBuf>,
    #[command(flatten)]
    pub opts: TransferOpts,
}

#[derive(Debug, serde::Deserialize)]
struct Stat {
    size: Option<u64>,
    crc32c: Option<u32>,
    #[serde(default)]
    partial: u64,
}

async fn call_json(pipe: &Pipe, route: &str, name: &str) -> anyhow::Result<Stat> {
    let reply = pipe
        .message(route)
        .header(proto::H_NAME, name.to_string())
        .timeout(Duration::from_secs(600))
        .request(())
        .await
        .map_err(|e| pipe_fail(format!("calling {route}"), e))?;
    let reply = check_reply(reply).await?;
    let bytes = reply
        .collect(1 << 20)
        .await
        .map_err(|e| pipe_fail(format!("reading the {route} reply"), e))?;
    serde_json::from_slice(&bytes).with_context(|| format!("unexpected {route} reply"))
}

fn integrity(what: &str, local: u32, remote: u32) -> anyhow::Result<()> {
    if local == remote {
        return Ok(());
    }
    Err(fail(
        ExitKind::Integrity,
        anyhow::anyhow!(
            "checksum mismatch for {what}: local CRC-32C {local:#010x}, server {remote:#010x}"
        ),
    ))
}

/// Runs `netcore send`.
pub async fn run_send(args: SendArgs) -> anyhow::Result<()> {
    let meta = tokio::fs::metadata(&args.file)
        .await
        .with_context(|| format!("{}", args.file.display()))?;
    if !meta.is_file() {
        anyhow::bail!("{} is not a file", args.file.display());
    }
    let size = meta.len();
    let name = match &args.name {
        Some(n) => n.clone(),
        None => file_name(&args.file)?,
    };
    let pipe = connect(&args.addr, &args.opts.link, args.opts.connect_timeout).await?;
    let stat = call_json(&pipe, proto::FILES_STAT, &name).await?;
    let offset = if args.opts.restart || stat.partial > size {
        0
    } else {
        stat.partial
    };
    if offset > 0 && !args.opts.quiet {
        eprintln!(
            "resuming upload of {name} at {} of {}",
            fmt_bytes(offset),
            fmt_bytes(size)
        );
    }
    let started = Instant::now();
    let mut h = Headers::new();
    h.insert(proto::H_NAME, name.clone());
    h.insert(proto::H_OFFSET, offset.to_string());
    h.insert(proto::H_SIZE, size.to_string());
    let head = MessageHead::to_route(args.route.clone())
        .with_urgency(BULK)
        .with_metadata(h.encode());
    let body = file_body(&args.file, offset)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = pipe
        .send_head(head, body, Some(tx))
        .await
        .map_err(|e| pipe_fail("starting the upload", e))?;
    let bar = byte_bar(size, "send", args.opts.quiet);
    bar.set_position(offset);
    let reply = {
        let mut rx = rx;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                r = &mut rx => break r.unwrap_or(Err(netcore_runtime::PipeError::Closed(None))),
                _ = tick.tick() => bar.set_position(offset + handle.progress().0),
            }
        }
    };
    bar.set_position(offset + handle.progress().0);
    bar.finish_and_clear();
    let reply =
        reply.map_err(|e| pipe_fail(format!("uploading {name} (send again to resume)"), e))?;
    let reply = check_reply(reply).await?;
    let v: serde_json::Value = serde_json::from_slice(
        &reply
            .collect(1 << 20)
            .await
            .map_err(|e| pipe_fail("reading the upload reply", e))?,
    )
    .context("unexpected upload reply")?;
    if v["complete"] != serde_json::json!(true) {
        return Err(fail(
            ExitKind::Connection,
            anyhow::anyhow!(
                "upload of {name} ended early at {} bytes; send again to resume",
                v["received"]
            ),
        ));
    }
    let remote = v["crc32c"].as_u64().unwrap_or(0) as u32;
    let (local, _) = file_crc32c(&args.file, None).await?;
    integrity(&name, local, remote)?;
    crate::conn::finish(pipe).await;
    if !args.opts.quiet {
        summary(
            "sent",
            &name,
            size - offset,
            offset,
            started.elapsed(),
            local,
        );
    }
    Ok(())
}

fn file_name(p: &Path) -> anyhow::Result<String> {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow::anyhow!("{} has no file name; give --name", p.display()))
}

fn summary(verb: &str, name: &str, moved: u64, resumed: u64, took: Duration, crc: u32) {
    let rate = moved as f64 / took.as_secs_f64().max(1e-6);
    let resumed = if resumed > 0 {
        format!(", resumed at {}", fmt_bytes(resumed))
    } else {
        String::new()
    };
    eprintln!(
        "{verb} {name}: {} in {} ({}/s){resumed}, CRC-32C {crc:#010x} verified",
        fmt_bytes(moved),
        fmt_dur(took),
        fmt_bytes(rate as u64),
    );
}

/// Runs `netcore get`.
pub async fn run_get(args: GetArgs) -> anyhow::Result<()> {
    let base = Path::new(&args.remote_name)
        .file_name()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("`{}` has no file name", args.remote_name))?;
    let dest = match &args.dest {
        None => base,
        Some(d) if d.is_dir() => d.join(base),
        Some(d) => d.clone(),
    };
    let part = part_path(&dest);
    let pipe = connect(&args.addr, &args.opts.link, args.opts.connect_timeout).await?;
    let stat = call_json(&pipe, proto::FILES_STAT, &args.remote_name).await?;
    let (Some(size), Some(remote_crc)) = (stat.size, stat.crc32c) else {
        return Err(fail(
            ExitKind::Remote,
            anyhow::anyhow!(
                "remote error NOT_FOUND: no file `{}` on the server",
                args.remote_name
            ),
        ));
    };
    let have = match tokio::fs::metadata(&part).await {
        Ok(m) if !args.opts.restart && m.len() <= size => m.len(),
        _ => 0,
    };
    if have > 0 && !args.opts.quiet {
        eprintln!(
            "resuming download of {} at {} of {}",
            args.remote_name,
            fmt_bytes(have),
            fmt_bytes(size)
        );
    }
    let started = Instant::now();
    let reply = pipe
        .message(proto::FILES_GET)
        .urgency(BULK)
        .header(proto::H_NAME, args.remote_name.clone())
        .header(proto::H_OFFSET, have.to_string())
        .request(())
        .await
        .map_err(|e| pipe_fail(format!("requesting {}", args.remote_name), e))?;
    let reply = check_reply(reply).await?;
    let bar = byte_bar(size, "get", args.opts.quiet);
    bar.set_position(have);
    let received = receive_into(reply, &part, have, &bar).await;
    bar.finish_and_clear();
    received?;
    let (local, len) = file_crc32c(&part, None).await?;
    if len != size || local != remote_crc {
        let _ = tokio::fs::remove_file(&part).await;
        integrity(&args.remote_name, local, remote_crc)?;
        return Err(fail(
            ExitKind::Integrity,
            anyhow::anyhow!("{} has {len} bytes, the server said {size}", part.display()),
        ));
    }
    tokio::fs::rename(&part, &dest)
        .await
        .with_context(|| format!("renaming {} to {}", part.display(), dest.display()))?;
    crate::conn::finish(pipe).await;
    if !args.opts.quiet {
        summary(
            "received",
            &dest.display().to_string(),
            size - have,
            have,
            started.elapsed(),
            local,
        );
    }
    Ok(())
}

async fn receive_into(
    reply: IncomingMessage,
    part: &Path,
    have: u64,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(part)
        .await
        .with_context(|| format!("opening {}", part.display()))?;
    file.set_len(have).await?;
    file.seek(std::io::SeekFrom::Start(have)).await?;
    let mut body = reply.body;
    let mut pos = have;
    let result = loop {
        match body.chunk().await {
            Ok(Some(c)) => {
                if let Err(e) = file.write_all(&c).await {
                    break Err(anyhow::Error::new(e).context(format!("writing {}", part.display())));
                }
                pos += c.len() as u64;
                bar.set_position(pos);
            }
            Ok(None) => break Ok(()),
            Err(e) => {
                break Err(pipe_fail(
                    "download interrupted (run the same command to resume)",
                    e,
                ))
            }
        }
    };
    file.flush().await?;
    result
}
