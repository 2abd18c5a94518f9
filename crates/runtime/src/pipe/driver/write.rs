//! The write path: frames from the core in batches of `transmit_batch`, written with
//! one vectored write each; a remainder left by a partial write topped up with the
//! next frames rather than written alone; and, on TCP, the socket corked while a
//! write of large bodies has more frames behind it (not on a slow path), and the batch
//! and `TCP_NOTSENT_LOWAT` sized to the rate the socket drains (`sizing.rs`).
//!
//! Why both: Linux sends the tail of every write at once as a segment of its own
//! (`TCP_NODELAY`), and each segment costs a trip through both ends' TCP stacks and
//! a wake-up of the receiver. On loopback a segment holds ~64 KiB, so a 64 KiB frame
//! plus its header was two segments, the second of 57 bytes: raw TCP written in the
//! same pattern (8-byte headers, 65 532-byte bodies, four per `writev`) used 0.42 s
//! of the sending CPU per GiB, against 0.23 s for frames that fit a segment
//! (BENCHMARKS.md, session 8).

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

use super::super::wire::Wire;
use super::Driver;

/// `TCP_CORK` as the driver last set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cork {
    /// Not a TCP socket, or the option failed once: never tried again.
    Unavailable,
    Off,
    On,
}

impl Cork {
    /// The starting state for a transport.
    pub(super) fn for_transport(is_tcp: bool) -> Cork {
        if is_tcp {
            Cork::Off
        } else {
            Cork::Unavailable
        }
    }
}

impl<W: Wire> Driver<W> {
    pub(super) fn poll_write(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        self.write_settled = false;
        self.write_paced = false;
        loop {
            if self.write_closed {
                self.write_settled = true;
                return progress;
            }
            // Fill an empty buffer, and top up one that a partial write left nearly
            // empty: written alone, a remainder of a few hundred bytes would be a
            // segment of its own through the kernel (and the peer's wake-up).
            let leftover = self.out.len();
            let batch = self
                .sizing
                .as_ref()
                .map_or(self.config.transmit_batch, |s| s.batch());
            if leftover < (batch / 4).max(1) {
                let mut limit = batch - leftover;
                let mut paced = false;
                if let Some(p) = self.pacer.as_mut() {
                    let budget = p.budget(self.clock.0);
                    if budget < 1.0 {
                        paced = true;
                    } else {
                        limit = limit.min(budget as usize).max(1);
                    }
                }
                if !paced && self.poll_budget > 0 && self.conn.has_transmit() {
                    self.out.compact();
                    let now = self.now();
                    let n = self.conn.poll_transmit_vectored(now, &mut self.out, limit);
                    if let Some(p) = self.pacer.as_mut() {
                        p.tokens -= n as f64;
                    }
                    progress |= n > 0;
                }
                if self.out.is_empty() {
                    if paced {
                        self.write_paced = true;
                        self.write_settled = true;
                    } else if self.poll_budget > 0 {
                        // Nothing to send (the usual answer after a write).
                        self.write_settled = true;
                    }
                    break;
                }
            }
            // Not on a path slow enough to have shrunk the batch: there the kernel
            // would hold up to a whole GSO segment (~64 KiB) of corked bytes below the
            // scheduler, which the sizing is there to prevent.
            if self.cork == Cork::Off
                && batch >= self.config.transmit_batch
                && self.out.references_bodies()
                && self.conn.has_transmit()
            {
                // Large bodies with more frames right behind this write: hold its
                // last, partly filled segment for them. (Batches of small messages
                // gain nothing from it: their bursts are a write or two, so the tail
                // went out at the uncork anyway, and pipelined 64-byte messages ran
                // 6-9 % slower for the two system calls.)
                self.set_cork(true);
            }
            let polled = {
                let mut chunks = self.out.chunks();
                let first = chunks.next().unwrap_or_default();
                match chunks.next() {
                    // The usual small write: one piece, no slice table to fill.
                    None => Pin::new(&mut self.io).poll_write(cx, first),
                    Some(second) => {
                        let mut slices = [IoSlice::new(&[]); 64];
                        slices[0] = IoSlice::new(first);
                        slices[1] = IoSlice::new(second);
                        let mut count = 2;
                        for (slot, chunk) in slices[2..].iter_mut().zip(chunks) {
                            *slot = IoSlice::new(chunk);
                            count += 1;
                        }
                        Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count])
                    }
                }
            };
            match polled {
                Poll::Ready(Ok(0)) => self.write_failed("transport accepted no bytes"),
                Poll::Ready(Ok(n)) => {
                    if let Some(s) = self.sizing.as_mut() {
                        s.wrote(n);
                    }
                    self.out.advance(n);
                    self.poll_budget = self.poll_budget.saturating_sub(n);
                    self.need_flush = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) => self.write_failed(&e.to_string()),
                Poll::Pending => {
                    self.write_settled = true;
                    // The socket is full. Send what the cork holds: with
                    // TCP_NOTSENT_LOWAT below a segment, held bytes alone could keep
                    // the socket from ever reporting itself writable again.
                    self.set_cork(false);
                    self.resize_queue();
                    return progress;
                }
            }
        }
        if self.poll_budget > 0 {
            // Stopped with nothing left to send (not merely out of this poll's budget,
            // after which the driver runs again at once): the tail goes out now.
            self.set_cork(false);
            if let Some(s) = self.sizing.as_mut() {
                s.idle();
            }
        }
        if self.need_flush && !self.write_closed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.need_flush = false,
                Poll::Ready(Err(e)) => self.write_failed(&e.to_string()),
                Poll::Pending => {}
            }
        }
        progress
    }

    pub(super) fn write_failed(&mut self, why: &str) {
        tracing::debug!(error = why, "transport write failed");
        self.write_closed = true;
        self.out.clear();
        let now = self.now();
        self.conn.handle_transport_closed(now);
    }

    /// The socket pushed back: a drain-rate sample may be complete, and a new unsent
    /// limit is applied when it moved (`sizing.rs`).
    fn resize_queue(&mut self) {
        // The round's clock reading: the writes it times were made in this round.
        let now = self.clock.0;
        let Some(lowat) = self.sizing.as_mut().and_then(|s| s.pushed_back(now)) else {
            return;
        };
        let batch = self.sizing.as_ref().map_or(0, |s| s.batch());
        tracing::debug!(lowat, batch, "send queue sized to the drain rate");
        if let Err(e) = self.io.set_tcp_notsent_lowat(lowat) {
            // The socket is gone (the next write says so) or the option is not
            // supported: stop sizing; batches go back to the configured size.
            tracing::debug!(error = %e, "TCP_NOTSENT_LOWAT not resized; sizing stopped");
            self.sizing = None;
        }
    }

    /// Sets `TCP_CORK` if it is available and not already so.
    pub(super) fn set_cork(&mut self, on: bool) {
        let want = if on { Cork::On } else { Cork::Off };
        if self.cork == want || self.cork == Cork::Unavailable {
            return;
        }
        match self.io.set_tcp_cork(on) {
            Ok(()) => self.cork = want,
            Err(e) => {
                // Unsupported here, or (uncorking) the socket is gone and the next
                // write reports it: either way, never cork again.
                tracing::debug!(error = %e, "TCP_CORK not applied; writes stay uncorked");
                self.cork = Cork::Unavailable;
            }
        }
    }
}
