//! Small helpers shared by the subcommands: sizes and durations in text, progress bars,
//! checksums, and a deterministic byte generator.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// CRC-32C, the checksum `send`/`get` verify a whole file with.
pub const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Parses a byte size: `1500`, `64K`, `64KiB`, `10MB`, `1G` (K/M/G are powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 1500, 64K, 10MiB, 1G)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}` (use K, M or G)"
            ))
        }
    };
    Ok((value * mult as f64).round() as u64)
}

/// Parses a duration: `250ms`, `5s`, `1.5s`, `2m`, `100us`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (examples: 250ms, 5s, 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        "m" | "min" => value * 60.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{s}` (use ms, s or m)"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a probability in `0..=1` (`0.001`, `1e-4`).
pub fn parse_prob(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a probability (examples: 0.001, 1e-4)"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("probability `{s}` is outside 0..=1"))
    }
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Formats a byte count: `512 B`, `64.0 KiB`, `1.50 MiB`.
pub fn fmt_bytes(n: u64) -> String {
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if n < 1 << 20 {
        format!("{:.1} KiB", f / 1024.0)
    } else if n < 1 << 30 {
        format!("{:.1} MiB", f / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", f / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Formats a duration for people: `850 µs`, `12.3 ms`, `4.20 s`.
pub fn fmt_dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// A byte progress bar on stderr (hidden when `hidden` or stderr is not a terminal).
pub fn byte_bar(total: u64, prefix: &str, hidden: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if hidden {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{prefix:>10} [{bar:32.cyan/blue}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(prefix.to_string());
    bar
}

/// CRC-32C and length of `path`'s first `len` bytes (the whole file when `None`).
pub async fn file_crc32c(path: &Path, len: Option<u64>) -> std::io::Result<(u32, u64)> {
    let file = tokio::fs::File::open(path).await?;
    let mut reader = file.take(len.unwrap_or(u64::MAX));
    let mut digest = CRC32C.digest();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
        total += n as u64;
    }
    Ok((digest.finalize(), total))
}

/// Fills `buf` with bytes of a deterministic pseudo-random sequence seeded by `seed`
/// (xorshift64*), so generated bodies are incompressible yet reproducible.
pub fn fill_pseudo_random(seed: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let mut x = *seed | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *seed = x;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Hands out at most `cap` bytes per read of the reader it wraps.
///
/// `Pipe`'s streamed bodies pass each read on as one write that waits for that many
/// bytes of the message's write buffer; on the serial profile that buffer (16 KiB) is
/// smaller than a file read (64 KiB) and such a write would never be admitted. Small
/// reads keep every body source below the buffer.
pub struct Capped<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R> Capped<R> {
    /// Wraps `inner`, reading at most `cap` bytes at a time.
    pub fn new(inner: R, cap: usize) -> Capped<R> {
        Capped {
            inner,
            buf: vec![0u8; cap.max(1)],
        }
    }
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Capped<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        let n = out.remaining().min(this.buf.len());
        let mut tmp = tokio::io::ReadBuf::new(&mut this.buf[..n]);
        match std::pin::Pin::new(&mut this.inner).poll_read(cx, &mut tmp) {
            std::task::Poll::Ready(Ok(())) => {
                out.put_slice(tmp.filled());
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// Largest read handed to a streamed body (see [`Capped`]).
pub const BODY_READ: usize = 8192;

/// A file's contents from `offset` on as a streamed body, in reads of [`BODY_READ`].
pub async fn file_body(path: &Path, offset: u64) -> std::io::Result<netcore_runtime::Body> {
    use tokio::io::AsyncSeekExt;
    let mut f = tokio::fs::File::open(path).await?;
    let len = f.metadata().await?.len();
    let offset = offset.min(len);
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    Ok(netcore_runtime::Body::stream(
        Capped::new(f, BODY_READ),
        Some(len - offset),
    ))
}

/// A reader of `len` pseudo-random bytes (an incompressible bulk body).
pub struct PatternReader {
    left: u64,
    seed: u64,
    cap: usize,
}

impl PatternReader {
    /// `len` bytes, at most `cap` per read (see `util::Capped` for why it matters).
    pub fn new(len: u64, cap: usize) -> PatternReader {
        PatternReader {
            left: len,
            seed: 0x5EED,
            cap: cap.max(1),
        }
    }
}

impl tokio::io::AsyncRead for PatternReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(self.cap as u64) as usize;
        if n > 0 {
            let mut seed = self.seed;
            fill_pseudo_random(&mut seed, buf.initialize_unfilled_to(n));
            buf.advance(n);
            self.seed = seed;
            self.left -= n as u64;
        }
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10X").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn probabilities_and_formats() {
        assert_eq!(parse_prob("1e-4"), Ok(1e-4));
        assert!(parse_prob("1.5").is_err());
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_dur(Duration::from_micros(1500)), "1.5 ms");
    }

    #[test]
    fn crc32c_check_value_and_generator() {
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
        let (mut a, mut b) = (7u64, 7u64);
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        fill_pseudo_random(&mut a, &mut x);
        fill_pseudo_random(&mut b, &mut y);
        assert_eq!(x, y);
        assert!(x.iter().any(|&v| v != 0));
    }
}
