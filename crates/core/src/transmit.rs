//! [`Transmit`]: outgoing link bytes for vectored writes.
//!
//! [`Connection::poll_transmit`](crate::Connection::poll_transmit) copies every body
//! byte into the caller's buffer. On the `tcp` profile,
//! [`Connection::poll_transmit_vectored`](crate::Connection::poll_transmit_vectored)
//! instead leaves large bodies where the application put them (reference-counted
//! [`Bytes`]) and records where they go between the frame headers, so a driver can hand
//! the kernel one `writev` with no copy in user space.

use alloc::vec::Vec;
use bytes::Bytes;

/// Link bytes to write: contiguous bytes with bodies spliced in at recorded offsets,
/// and a cursor of how much was written already.
///
/// ```
/// use netcore_core::{Config, Connection, Instant, MessageHead, Transmit};
/// use bytes::Bytes;
///
/// let now = Instant::ZERO;
/// let mut a = Connection::new(Config::tcp(), now);
/// let mut b = Connection::new(Config::tcp(), now);
/// let mut out = Transmit::new();
/// // Handshake.
/// for _ in 0..2 {
///     a.poll_transmit_vectored(now, &mut out, 1 << 20);
///     b.handle_input(now, &out.to_vec());
///     out.clear();
///     let mut back = Vec::new();
///     b.poll_transmit(now, &mut back, 1 << 20);
///     a.handle_input(now, &back);
/// }
/// a.send(MessageHead::to_route("big"), Bytes::from(vec![7u8; 100_000])).unwrap();
/// a.poll_transmit_vectored(now, &mut out, 1 << 20);
/// // Headers are in one piece, bodies are slices of the message's own buffer.
/// assert!(out.chunks().count() > 1);
/// let total: usize = out.chunks().map(<[u8]>::len).sum();
/// assert_eq!(total, out.len());
/// out.advance(total);
/// assert!(out.is_empty());
/// ```
#[derive(Debug)]
pub struct Transmit {
    pub(crate) buf: Vec<u8>,
    /// Whether bodies may be spliced (else everything is copied into `buf`).
    pub(crate) splicing: bool,
    /// Bodies to write right after `buf[..at]`, in order of `at`.
    pub(crate) splices: Vec<(usize, Bytes)>,
    spliced_len: usize,
    written: usize,
}

impl Default for Transmit {
    fn default() -> Transmit {
        Transmit::new()
    }
}

impl Transmit {
    /// An empty transmit buffer that references large bodies instead of copying them.
    pub fn new() -> Transmit {
        Transmit::with_splicing(true)
    }

    /// An empty transmit buffer; with `splicing` false every byte is copied into one
    /// contiguous piece (for transports without vectored writes, where each piece
    /// would otherwise be a write of its own).
    pub fn with_splicing(splicing: bool) -> Transmit {
        Transmit {
            buf: Vec::new(),
            splicing,
            splices: Vec::new(),
            spliced_len: 0,
            written: 0,
        }
    }

    /// Bytes not yet written.
    pub fn len(&self) -> usize {
        self.buf.len() + self.spliced_len - self.written
    }

    /// Whether any of the unwritten bytes are bodies referenced in place (large
    /// bodies on the `tcp` profile) rather than copied: a driver can tell bulk
    /// transfer from small messages by it.
    ///
    /// ```
    /// use netcore_core::Transmit;
    ///
    /// let mut out = Transmit::new();
    /// out.extend_from_slice(b"a small frame");
    /// assert!(!out.references_bodies());
    /// ```
    pub fn references_bodies(&self) -> bool {
        // The last body ends `spliced_len` bytes after its offset in `buf` (all bodies
        // lie before it): unwritten bodies remain if the cursor is short of that.
        self.splices
            .last()
            .is_some_and(|(at, _)| at + self.spliced_len > self.written)
    }

    /// Whether everything was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.splices.clear();
        self.spliced_len = 0;
        self.written = 0;
    }

    /// The unwritten bytes as consecutive slices, in order (none is empty).
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut skip = self.written;
        let mut from = 0;
        let mut pieces = self.splices.iter().flat_map(move |(at, body)| {
            let head = &self.buf[from..*at];
            from = *at;
            [head, &body[..]]
        });
        let mut tail_done = false;
        core::iter::from_fn(move || loop {
            let piece: &[u8] = match pieces.next() {
                Some(p) => p,
                None if !tail_done => {
                    tail_done = true;
                    let last = self.splices.last().map_or(0, |(at, _)| *at);
                    &self.buf[last..]
                }
                None => return None,
            };
            if piece.len() <= skip {
                skip -= piece.len();
                continue;
            }
            let piece = &piece[skip..];
            skip = 0;
            return Some(piece);
        })
    }

    /// Marks `n` more bytes as written.
    ///
    /// # Panics
    /// If `n` exceeds [`len`](Self::len) (a caller bug, never peer input).
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.len(), "advance past the end of a Transmit");
        self.written += n;
        if self.is_empty() {
            self.clear();
        }
    }

    /// Drops the bytes already written, keeping the rest in order, so that more can be
    /// appended after a partial write without the buffer growing by what was written.
    ///
    /// A driver whose write left a few bytes behind tops the buffer up before the next
    /// write instead of writing the remainder alone: one small write is a whole
    /// segment's trip through the kernel.
    ///
    /// ```
    /// use netcore_core::Transmit;
    ///
    /// let mut out = Transmit::new();
    /// out.extend_from_slice(b"hello world");
    /// out.advance(6); // a partial write
    /// out.compact();
    /// out.extend_from_slice(b"!");
    /// assert_eq!(out.to_vec(), b"world!");
    /// ```
    pub fn compact(&mut self) {
        if self.written == 0 {
            return;
        }
        if self.is_empty() {
            self.clear();
            return;
        }
        // Find where the cursor is: in a run of `buf` (before splice `kept`, or after
        // the last one) or inside splice `kept`.
        let mut skip = self.written;
        let mut from = 0;
        let mut kept = self.splices.len();
        let mut cut = None;
        for (i, (at, body)) in self.splices.iter_mut().enumerate() {
            let head = *at - from;
            if skip < head {
                cut = Some(from + skip);
                kept = i;
                break;
            }
            skip -= head;
            from = *at;
            if skip < body.len() {
                // Inside this body: keep its unwritten part, and `buf` from its offset.
                *body = body.slice(skip..);
                cut = Some(*at);
                kept = i;
                break;
            }
            skip -= body.len();
        }
        let cut = cut.unwrap_or(from + skip);
        self.splices.drain(..kept);
        self.buf.drain(..cut);
        for (at, _) in &mut self.splices {
            *at -= cut;
        }
        self.spliced_len = self.splices.iter().map(|(_, b)| b.len()).sum();
        self.written = 0;
    }

    /// Appends bytes (copied) after everything already in it.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The unwritten bytes copied into one vector (tests, non-vectored transports).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for c in self.chunks() {
            v.extend_from_slice(c);
        }
        v
    }

    #[cfg(test)]
    fn record_splice(&mut self, body: Bytes) {
        self.spliced_len += body.len();
        self.splices.push((self.buf.len(), body));
    }

    /// Adds bodies recorded at offsets of `buf` (ascending, after existing ones).
    pub(crate) fn add_splices(&mut self, splices: Vec<(usize, Bytes)>) {
        for (at, body) in splices {
            self.spliced_len += body.len();
            self.splices.push((at, body));
        }
    }

    /// Bytes appended so far, written or not.
    pub(crate) fn appended(&self) -> usize {
        self.buf.len() + self.spliced_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_splices_and_cursor() {
        let mut t = Transmit::new();
        t.buf.extend_from_slice(b"ab");
        t.record_splice(Bytes::from_static(b"XYZ"));
        t.buf.extend_from_slice(b"cd");
        t.record_splice(Bytes::from_static(b"Q"));
        assert_eq!(t.to_vec(), b"abXYZcdQ");
        assert_eq!(t.len(), 8);
        t.advance(3);
        assert_eq!(t.chunks().collect::<Vec<_>>(), [&b"YZ"[..], b"cd", b"Q"]);
        t.advance(4);
        assert_eq!(t.to_vec(), b"Q");
        t.advance(1);
        assert!(t.is_empty() && t.buf.is_empty());
    }

    /// A transmit of `ab XYZ cd Q ef` (splices in capitals).
    fn sample() -> Transmit {
        let mut t = Transmit::new();
        t.buf.extend_from_slice(b"ab");
        t.record_splice(Bytes::from_static(b"XYZ"));
        t.buf.extend_from_slice(b"cd");
        t.record_splice(Bytes::from_static(b"Q"));
        t.buf.extend_from_slice(b"ef");
        t
    }

    #[test]
    fn compact_keeps_the_unwritten_bytes_at_every_cursor() {
        let all = b"abXYZcdQef";
        for written in 0..=all.len() {
            let mut t = sample();
            t.advance(written);
            t.compact();
            assert_eq!(t.to_vec(), &all[written..], "cursor {written}");
            assert_eq!(t.len(), all.len() - written);
            // Appending after a compaction continues the stream.
            t.buf.extend_from_slice(b"g");
            t.record_splice(Bytes::from_static(b"H"));
            let mut want = all[written..].to_vec();
            want.extend_from_slice(b"gH");
            assert_eq!(t.to_vec(), want, "cursor {written}, appended");
            t.advance(1);
            t.compact();
            assert_eq!(t.to_vec(), &want[1..], "cursor {written}, compacted twice");
        }
    }

    #[test]
    fn references_bodies_only_while_a_body_is_unwritten() {
        let mut t = sample(); // ab XYZ cd Q ef
        assert!(t.references_bodies());
        t.advance(7); // through "cd": Q is still to write
        assert!(t.references_bodies());
        t.advance(1); // through Q: only "ef" is left
        assert!(!t.references_bodies());
    }

    #[test]
    fn compact_drops_what_was_written() {
        let mut t = sample();
        t.advance(6); // "abXYZc"
        t.compact();
        assert_eq!(t.buf, b"def");
        assert_eq!(t.splices.len(), 1);
        assert_eq!(t.splices[0].0, 1);
    }
}
