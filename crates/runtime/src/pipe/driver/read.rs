//! The read path: bytes from the transport into the core's input buffer, within the
//! poll's byte budget, and what a closed or failing transport means for the connection.

use bytes::BufMut;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

use super::super::wire::Wire;
use super::{Driver, MIN_READ_ROOM};

impl<W: Wire> Driver<W> {
    pub(super) fn poll_read(&mut self) -> bool {
        let mut progress = false;
        if !self.read_source.needs_poll() {
            // The transport has not signalled input since a read found none.
            return false;
        }
        let read_waker = self.read_source.take_waker();
        let cx = &mut Context::from_waker(&read_waker);
        self.read_source.settled = false;
        for _ in 0..16 {
            if self.read_closed || self.conn.is_closed() {
                self.read_source.settled = true;
                break;
            }
            if self.poll_budget == 0 {
                break;
            }
            let want = self.config.read_buffer.max(1024);
            // tcp profile: read straight into the core's frame buffer (no copy), as
            // much as its current block has room for.
            let polled = match self.conn.input_buffer(MIN_READ_ROOM) {
                Some(buf) => {
                    let room = (buf.capacity() - buf.len()).min(want);
                    match tokio_util::io::poll_read_buf(
                        Pin::new(&mut self.io),
                        cx,
                        &mut buf.limit(room),
                    ) {
                        Poll::Ready(Ok(n)) => Poll::Ready(Ok((n, true))),
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        Poll::Pending => Poll::Pending,
                    }
                }
                None => {
                    if self.read_buf.len() < want {
                        self.read_buf = vec![0; want];
                    }
                    let mut rb = ReadBuf::new(&mut self.read_buf);
                    match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                        Poll::Ready(Ok(())) => Poll::Ready(Ok((rb.filled().len(), false))),
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        Poll::Pending => Poll::Pending,
                    }
                }
            };
            match polled {
                Poll::Ready(Ok((n, in_place))) => {
                    // Arrival time, for round-trip measurements.
                    if self.clock_stale {
                        self.tick();
                    }
                    self.clock_stale = true;
                    let now = self.now();
                    if n == 0 {
                        self.read_closed = true;
                        self.conn.handle_transport_closed(now);
                    } else if in_place {
                        self.conn.handle_received(now);
                        self.poll_budget = self.poll_budget.saturating_sub(n);
                    } else {
                        self.conn.handle_input(now, &self.read_buf[..n]);
                        self.poll_budget = self.poll_budget.saturating_sub(n);
                    }
                    // Events of each read are handled before the next: a read of small
                    // messages yields thousands, and letting several reads pile up
                    // grows the core's event queue to megabytes.
                    self.dispatch_events();
                    progress = true;
                    if self.urgent_in || self.handed_over_many {
                        break;
                    }
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "transport read failed");
                    self.read_closed = true;
                    let now = self.now();
                    self.conn.handle_transport_closed(now);
                    progress = true;
                }
                Poll::Pending => {
                    self.read_source.settled = true;
                    break;
                }
            }
        }
        self.read_source.put_waker(read_waker);
        progress
    }
}
