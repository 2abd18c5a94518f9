//! Resumable file transfer over a [`Pipe`]: a receiver that kept a partial file continues
//! from its end instead of starting over (the seed's LSO `check_complete` idea, done
//! right: the sender checks that the partial file is really a prefix of its file, and
//! the receiver verifies length and CRC-32C of the whole result).
//!
//! The exchange is one request and its reply:
//!
//! | request header | meaning |
//! |---|---|
//! | `file` | the file's name, relative to the server's directory (no `/`, no `..`) |
//! | `offset` | bytes the receiver already holds |
//! | `prefix-crc32c` | CRC-32C of those bytes (8 hex digits) |
//!
//! | reply header | meaning |
//! |---|---|
//! | `status` | `ok`, or `error` with the reason as the body |
//! | `offset` | where the body starts: the requested offset, or 0 when the partial file is not a prefix of the server's file |
//! | `length` | the whole file's length |
//! | `crc32c` | CRC-32C of the whole file (8 hex digits) |
//!
//! The body is the file from `offset` on, streamed with [`Body::file`]. If the
//! connection drops midway, what arrived stays on disk and the next
//! [`fetch_file`] sends only the remainder.
//!
//! ```
//! use netcore_runtime::{transfer, Pipe, PipeConfig};
//! use netcore_runtime::transport::mem_pair;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let src = tempfile::tempdir()?;
//! let dst = tempfile::tempdir()?;
//! std::fs::write(src.path().join("fw.bin"), vec![7u8; 100_000])?;
//! // The receiver already has the first 60 000 bytes.
//! std::fs::write(dst.path().join("fw.bin"), vec![7u8; 60_000])?;
//!
//! let (a, b) = mem_pair(1 << 16);
//! let (client, server) = (Pipe::new(a, PipeConfig::default()), Pipe::new(b, PipeConfig::default()));
//! let dir = src.path().to_path_buf();
//! tokio::spawn(async move {
//!     while let Some(req) = server.accept().await {
//!         let _ = transfer::serve_file(&server, req, &dir).await;
//!     }
//! });
//! let done = transfer::fetch_file(&client, "files", "fw.bin", dst.path().join("fw.bin")).await?;
//! assert_eq!((done.resumed_from, done.received, done.length), (60_000, 40_000, 100_000));
//! # Ok(()) }
//! ```

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{Body, IncomingMessage, Pipe, PipeError, SendHandle};
use netcore_core::metadata::Headers;
use netcore_core::MessageHead;

/// Request header: the file's name.
pub const FILE_HEADER: &str = "file";
/// Request and reply header: byte offset (decimal).
pub const OFFSET_HEADER: &str = "offset";
/// Request header: CRC-32C of the receiver's partial file (8 hex digits).
pub const PREFIX_CRC_HEADER: &str = "prefix-crc32c";
/// Reply header: the whole file's length (decimal).
pub const LENGTH_HEADER: &str = "length";
/// Reply header: CRC-32C of the whole file (8 hex digits).
pub const CRC_HEADER: &str = "crc32c";
/// Reply header: `ok` or `error`.
pub const STATUS_HEADER: &str = "status";

/// Why a transfer failed.
///
/// ```
/// use netcore_runtime::transfer::TransferError;
/// let e = TransferError::Checksum { expected: 1, actual: 2 };
/// assert!(e.to_string().contains("checksum"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The request could not be sent or its reply not received.
    #[error("file request failed: {0}")]
    Pipe(#[from] PipeError),
    /// The body stopped midway (connection lost, message cancelled). The bytes that
    /// arrived are kept; fetching again resumes after them.
    #[error("transfer interrupted with {have} bytes on disk: {source}; fetch again to resume")]
    Interrupted {
        /// Bytes of the file now on disk.
        have: u64,
        /// What stopped it.
        #[source]
        source: PipeError,
    },
    /// The server refused the request (unknown file, bad name, I/O error there).
    #[error("server refused the file request: {0}")]
    Refused(String),
    /// The reply lacked a header or held an invalid value.
    #[error("malformed file reply: {0}")]
    BadReply(String),
    /// The body ended before the announced length.
    #[error("file incomplete: {have} of {expected} bytes")]
    Incomplete {
        /// Bytes on disk.
        have: u64,
        /// Announced length.
        expected: u64,
    },
    /// The finished file's CRC-32C differs from the server's; the local file was
    /// truncated so the next fetch starts over.
    #[error(
        "checksum mismatch: expected crc32c {expected:08x}, got {actual:08x}; local file discarded"
    )]
    Checksum {
        /// The server's.
        expected: u32,
        /// Ours.
        actual: u32,
    },
    /// A bad file name in a request (server side).
    #[error("refused file name {0:?}: names are plain file names, without '/' or '..'")]
    BadName(String),
    /// Local file I/O failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn io_err(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> TransferError {
    let action = action.into();
    move |source| TransferError::Io { action, source }
}

/// Incremental CRC-32C (Castagnoli), the checksum the serial link profile uses too.
///
/// ```
/// use netcore_runtime::transfer::Crc32c;
/// let mut c = Crc32c::new();
/// c.update(b"1234");
/// c.update(b"56789");
/// assert_eq!(c.value(), 0xe306_9283);
/// assert_eq!(c.value(), netcore_core::link::crc32c(b"123456789"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Crc32c(u32);

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

impl Default for Crc32c {
    fn default() -> Self {
        Crc32c::new()
    }
}

impl Crc32c {
    /// A fresh checksum (of zero bytes).
    pub fn new() -> Crc32c {
        Crc32c(!0)
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        for &b in data {
            c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    /// The checksum of everything added so far.
    pub fn value(&self) -> u32 {
        !self.0
    }
}

/// CRC-32C of the first `len` bytes of `file` (from its start), and how many bytes
/// there actually were.
async fn crc_of_prefix(file: &mut tokio::fs::File, len: u64) -> std::io::Result<(Crc32c, u64)> {
    file.seek(SeekFrom::Start(0)).await?;
    let mut crc = Crc32c::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = file.read(&mut buf[..want]).await?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
        done += n as u64;
    }
    Ok((crc, done))
}

/// What a finished [`fetch_file`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchOutcome {
    /// Offset the transfer started from (bytes kept from an earlier attempt).
    pub resumed_from: u64,
    /// Body bytes received this time.
    pub received: u64,
    /// The file's length.
    pub length: u64,
    /// Its CRC-32C, verified.
    pub crc32c: u32,
}

fn header_u64(h: &Headers, key: &str) -> Result<u64, TransferError> {
    h.get_str(key)
        .ok_or_else(|| TransferError::BadReply(format!("no `{key}` header")))?
        .parse()
        .map_err(|_| TransferError::BadReply(format!("`{key}` is not a number")))
}

fn header_crc(h: &Headers, key: &str) -> Result<u32, TransferError> {
    let s = h
        .get_str(key)
        .ok_or_else(|| TransferError::BadReply(format!("no `{key}` header")))?;
    u32::from_str_radix(s, 16)
        .map_err(|_| TransferError::BadReply(format!("`{key}` is not 8 hex digits")))
}

/// Fetches file `name` from the peer's `route` (served by [`serve_file`]) into `dest`,
/// resuming after whatever `dest` already holds. On success `dest` is the complete
/// file, its length and CRC-32C checked; on [`TransferError::Interrupted`] the bytes
/// that arrived stay in `dest` for the next attempt.
pub async fn fetch_file(
    pipe: &Pipe,
    route: &str,
    name: &str,
    dest: impl AsRef<Path>,
) -> Result<FetchOutcome, TransferError> {
    fetch(pipe, route, name, dest.as_ref(), None).await
}

/// [`fetch_file`] with a deadline for the reply's head (not for the whole body): on a
/// lossy serial link a reply whose START frame is lost never arrives, and the requester
/// is not told; past the deadline this returns `TransferError::Pipe(PipeError::TimedOut)`
/// and fetching again resumes.
///
/// ```no_run
/// # async fn f(pipe: &netcore_runtime::Pipe) -> Result<(), netcore_runtime::transfer::TransferError> {
/// use std::time::Duration;
/// let done = netcore_runtime::transfer::fetch_file_with_timeout(
///     pipe, "files", "fw.bin", "/tmp/fw.bin", Duration::from_secs(5)).await?;
/// # Ok(()) }
/// ```
pub async fn fetch_file_with_timeout(
    pipe: &Pipe,
    route: &str,
    name: &str,
    dest: impl AsRef<Path>,
    reply_timeout: std::time::Duration,
) -> Result<FetchOutcome, TransferError> {
    fetch(pipe, route, name, dest.as_ref(), Some(reply_timeout)).await
}

async fn fetch(
    pipe: &Pipe,
    route: &str,
    name: &str,
    dest: &Path,
    reply_timeout: Option<std::time::Duration>,
) -> Result<FetchOutcome, TransferError> {
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dest)
        .await
        .map_err(io_err(format!("open {}", dest.display())))?;
    let have = file
        .metadata()
        .await
        .map_err(io_err(format!("stat {}", dest.display())))?
        .len();
    let (prefix_crc, have) = crc_of_prefix(&mut file, have)
        .await
        .map_err(io_err(format!("read {}", dest.display())))?;

    let builder = pipe
        .message(route)
        .header(FILE_HEADER, name.to_string())
        .header(OFFSET_HEADER, have.to_string())
        .header(PREFIX_CRC_HEADER, format!("{:08x}", prefix_crc.value()));
    let reply = match reply_timeout {
        Some(t) => builder.timeout(t).request(Body::empty()).await?,
        None => builder.request(Body::empty()).await?,
    };
    let h = reply.headers();
    if h.get_str(STATUS_HEADER) != Some("ok") {
        let why = reply.collect(64 * 1024).await.unwrap_or_default();
        return Err(TransferError::Refused(
            String::from_utf8_lossy(&why).into_owned(),
        ));
    }
    let start = header_u64(&h, OFFSET_HEADER)?;
    let length = header_u64(&h, LENGTH_HEADER)?;
    let expected = header_crc(&h, CRC_HEADER)?;
    if start > have || start > length {
        return Err(TransferError::BadReply(format!(
            "reply starts at {start}, but we hold {have} bytes of a {length}-byte file"
        )));
    }
    if let Some(body_len) = reply.head.total_len {
        if start + body_len != length {
            return Err(TransferError::BadReply(format!(
                "body of {body_len} bytes from offset {start} does not end at length {length}"
            )));
        }
    }
    // The server may restart from an earlier offset (our partial file was not a prefix
    // of its file): drop what we had past it.
    let mut crc = if start == have {
        prefix_crc
    } else {
        file.set_len(start)
            .await
            .map_err(io_err(format!("truncate {}", dest.display())))?;
        crc_of_prefix(&mut file, start)
            .await
            .map_err(io_err(format!("read {}", dest.display())))?
            .0
    };
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(io_err(format!("seek {}", dest.display())))?;

    let mut body = reply.body;
    let mut received = 0u64;
    loop {
        match body.chunk().await {
            Ok(Some(chunk)) => {
                if start + received + chunk.len() as u64 > length {
                    return Err(TransferError::BadReply(format!(
                        "body runs past the announced length {length}"
                    )));
                }
                file.write_all(&chunk)
                    .await
                    .map_err(io_err(format!("write {}", dest.display())))?;
                crc.update(&chunk);
                received += chunk.len() as u64;
            }
            Ok(None) => break,
            Err(source) => {
                // Keep what arrived for the next attempt.
                let _ = file.flush().await;
                let _ = file.sync_data().await;
                return Err(TransferError::Interrupted {
                    have: start + received,
                    source,
                });
            }
        }
    }
    file.flush()
        .await
        .map_err(io_err(format!("flush {}", dest.display())))?;
    file.sync_data()
        .await
        .map_err(io_err(format!("sync {}", dest.display())))?;
    let total = start + received;
    if total != length {
        return Err(TransferError::Incomplete {
            have: total,
            expected: length,
        });
    }
    let actual = crc.value();
    if actual != expected {
        let _ = file.set_len(0).await;
        return Err(TransferError::Checksum { expected, actual });
    }
    Ok(FetchOutcome {
        resumed_from: start,
        received,
        length,
        crc32c: actual,
    })
}

/// What [`serve_file`] started.
#[derive(Debug)]
pub struct ServeOutcome {
    /// Path of the file served.
    pub path: PathBuf,
    /// Offset the body starts at.
    pub offset: u64,
    /// The file's length.
    pub length: u64,
    /// Follows the reply: [`SendHandle::finished`] for completion, `progress` for the
    /// bytes sent (the remainder only, when the receiver resumed).
    pub handle: SendHandle,
}

/// Checks a requested file name: a plain name, no directories.
fn check_name(name: &str) -> Result<(), TransferError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.len() > 255;
    if bad {
        Err(TransferError::BadName(name.to_string()))
    } else {
        Ok(())
    }
}

/// Answers a [`fetch_file`] request with the requested file of `dir`, from the offset
/// the receiver holds when its partial file matches (by CRC-32C) the start of ours,
/// else from 0. A refused request (bad name, missing file) gets an `error` reply and
/// is returned as the error.
pub async fn serve_file(
    pipe: &Pipe,
    request: IncomingMessage,
    dir: impl AsRef<Path>,
) -> Result<ServeOutcome, TransferError> {
    let id = request.id;
    let h = request.headers();
    // The request has no body to speak of; drop it.
    drop(request);
    match prepare(&h, dir.as_ref()).await {
        Ok((path, offset, length, crc)) => {
            let mut reply = Headers::new();
            reply.insert(STATUS_HEADER, "ok");
            reply.insert(OFFSET_HEADER, offset.to_string());
            reply.insert(LENGTH_HEADER, length.to_string());
            reply.insert(CRC_HEADER, format!("{crc:08x}"));
            let body = Body::file(&path, offset).await?;
            let head = MessageHead::reply(id).with_metadata(reply.encode());
            let handle = pipe.send_head(head, body, None).await?;
            Ok(ServeOutcome {
                path,
                offset,
                length,
                handle,
            })
        }
        Err(e) => {
            let mut reply = Headers::new();
            reply.insert(STATUS_HEADER, "error");
            let head = MessageHead::reply(id).with_metadata(reply.encode());
            let _ = pipe.send_head(head, Body::from(e.to_string()), None).await;
            Err(e)
        }
    }
}

/// Resolves the file and the offset to serve from: (path, offset, length, crc32c).
async fn prepare(h: &Headers, dir: &Path) -> Result<(PathBuf, u64, u64, u32), TransferError> {
    let name = h
        .get_str(FILE_HEADER)
        .ok_or_else(|| TransferError::BadName(String::new()))?;
    check_name(name)?;
    let path = dir.join(name);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(io_err(format!("open {name}")))?;
    let length = file
        .metadata()
        .await
        .map_err(io_err(format!("stat {name}")))?
        .len();
    let wanted: u64 = h
        .get_str(OFFSET_HEADER)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let their_prefix = h
        .get_str(PREFIX_CRC_HEADER)
        .and_then(|s| u32::from_str_radix(s, 16).ok());
    // One pass: the CRC at the requested offset, then on to the end.
    let (mut crc, n) = crc_of_prefix(&mut file, wanted.min(length))
        .await
        .map_err(io_err(format!("read {name}")))?;
    let prefix_ok = wanted <= length && n == wanted && their_prefix == Some(crc.value());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let k = file
            .read(&mut buf)
            .await
            .map_err(io_err(format!("read {name}")))?;
        if k == 0 {
            break;
        }
        crc.update(&buf[..k]);
    }
    let offset = if prefix_ok { wanted } else { 0 };
    Ok((path, offset, length, crc.value()))
}
