//! The connection driver: one tokio task per connection that owns the transport and the
//! protocol core (quinn's `ConnectionDriver` is the model).
//!
//! Each turn: take commands from handles → read what the transport has → feed the core
//! → dispatch its events → run expired timers → write what the core transmits, paced so
//! that bytes queued below the scheduler stay near the link's bandwidth-delay product.
//! Nothing here ever waits on the application: a full incoming body buffer only stops
//! this driver from reading *that message* out of the core, which withholds credit from
//! the peer; everything else keeps flowing.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Sleep;

use super::body::{BodyShared, IncomingBody};
use super::error::PipeError;
use super::message::{IncomingMessage, OutShared};
use super::wire::Wire;
use super::{ConnectionId, PipeConfig, PipeState};
use crate::transport::Transport;
use bytes::BufMut;
use netcore_core::{
    ErrorCode, Event, Instant, MessageError, MessageHead, MessageId, ReadError, Transmit,
    WriteError,
};
use std::io::IoSlice;

/// Reply channel of a request.
pub(crate) type ReplyTx = oneshot::Sender<Result<IncomingMessage, PipeError>>;

/// What handles ask the driver to do.
pub(crate) enum Command {
    Start {
        local: u64,
        head: MessageHead,
        /// The whole body, when the caller has it (then the message is finished too).
        body: Option<Bytes>,
        shared: Arc<OutShared>,
        reply: Option<ReplyTx>,
    },
    Write {
        local: u64,
        data: Bytes,
    },
    Finish {
        local: u64,
    },
    Cancel {
        local: u64,
        code: ErrorCode,
    },
    ForgetReply {
        local: u64,
    },
    /// The application took one message from the accept queue.
    Accepted,
    Resume {
        id: MessageId,
    },
    Stop {
        id: MessageId,
        code: ErrorCode,
    },
    Close {
        code: ErrorCode,
        reason: String,
    },
    Abort {
        code: ErrorCode,
        reason: String,
    },
}

struct OutState {
    core_id: Option<u64>,
    pending: VecDeque<Bytes>,
    finish_pending: bool,
    shared: Arc<OutShared>,
}

/// Token bucket for links of known rate.
struct Pacer {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl Pacer {
    fn budget(&mut self, now: tokio::time::Instant) -> f64 {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.tokens
    }

    fn wait(&self) -> Duration {
        let missing = (1.0 - self.tokens).max(0.0) + self.burst / 4.0;
        Duration::from_secs_f64(missing / self.rate)
    }
}

pub(crate) struct Driver<W: Wire> {
    conn: W,
    id: ConnectionId,
    epoch: tokio::time::Instant,
    reader: ReadHalf<Transport>,
    writer: WriteHalf<Transport>,
    commands: mpsc::UnboundedReceiver<Command>,
    cmd_tx: mpsc::UnboundedSender<Command>,
    accept_tx: Option<mpsc::UnboundedSender<IncomingMessage>>,
    state: watch::Sender<PipeState>,
    config: PipeConfig,
    /// Read buffer when the wire cannot take reads in place (serial profile, legacy).
    read_buf: Vec<u8>,
    /// Link bytes being written; large bodies are referenced, not copied.
    out: Transmit,
    need_flush: bool,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<tokio::time::Instant>,
    pacer: Option<Pacer>,
    outgoing: HashMap<u64, OutState>,
    core_to_local: HashMap<u64, u64>,
    replies: HashMap<u64, ReplyTx>,
    incoming: HashMap<u64, Arc<BodyShared>>,
    finished_incoming: HashMap<u64, Weak<BodyShared>>,
    /// Local key → core id of messages fully sent, for late cancels and reply cleanup.
    finished_local: HashMap<u64, u64>,
    /// Core id → state of messages fully sent, oldest first, so a loss the peer reports
    /// afterwards (serial profile: NACK → `Stopped`) still fails their handles.
    finished_out: HashMap<u64, Weak<OutShared>>,
    finished_out_order: VecDeque<u64>,
    read_closed: bool,
    write_closed: bool,
    linger_until: Option<tokio::time::Instant>,
    /// The write side was shut down (FIN sent) after the close.
    shutdown_done: bool,
    /// Messages handed to the accept queue and not yet taken by the application.
    unaccepted: usize,
    /// Queued messages whose bodies are left in the core until the application takes
    /// more from the queue: they keep counting against `max_incoming`, so a peer cannot
    /// make the accept queue grow past it while the application is slow.
    parked: VecDeque<u64>,
    /// Bytes this poll may still read or write before it yields.
    poll_budget: usize,
}

/// Least room a read into the core's buffer asks for (more is used when there).
const MIN_READ_ROOM: usize = 16 * 1024;

/// Bytes read plus written per driver poll before it yields to other tasks.
const POLL_BYTE_BUDGET: usize = 512 * 1024;

impl<W: Wire> Driver<W> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        conn: W,
        transport: Transport,
        config: PipeConfig,
        id: ConnectionId,
        commands: mpsc::UnboundedReceiver<Command>,
        cmd_tx: mpsc::UnboundedSender<Command>,
        accept_tx: mpsc::UnboundedSender<IncomingMessage>,
        state: watch::Sender<PipeState>,
    ) -> Driver<W> {
        let epoch = tokio::time::Instant::now();
        let pacer = config.pace_bytes_per_sec.map(|rate| {
            let rate = rate.max(1) as f64;
            // About one frame may sit below the scheduler: an urgent message then
            // waits for at most the frame on the wire plus this burst.
            let burst = (rate * 0.004).max(config.core.send_frame as f64 + 64.0);
            Pacer {
                rate,
                burst,
                tokens: burst,
                last: epoch,
            }
        });
        let vectored = transport.is_write_vectored();
        let (reader, writer) = tokio::io::split(transport);
        Driver {
            conn,
            id,
            epoch,
            reader,
            writer,
            commands,
            cmd_tx,
            accept_tx: Some(accept_tx),
            state,
            read_buf: Vec::new(),
            // Without vectored writes every piece would be a write (and a TCP segment)
            // of its own: copy into one buffer instead.
            out: Transmit::with_splicing(vectored),
            need_flush: false,
            timer: Box::pin(tokio::time::sleep_until(epoch)),
            timer_at: None,
            pacer,
            outgoing: HashMap::new(),
            core_to_local: HashMap::new(),
            replies: HashMap::new(),
            incoming: HashMap::new(),
            finished_incoming: HashMap::new(),
            finished_local: HashMap::new(),
            finished_out: HashMap::new(),
            finished_out_order: VecDeque::new(),
            read_closed: false,
            write_closed: false,
            linger_until: None,
            shutdown_done: false,
            unaccepted: 0,
            parked: VecDeque::new(),
            poll_budget: POLL_BYTE_BUDGET,
            config,
        }
    }

    fn now(&self) -> Instant {
        let d = tokio::time::Instant::now().saturating_duration_since(self.epoch);
        Instant::from_micros(d.as_micros() as u64)
    }

    fn to_tokio(&self, t: Instant) -> tokio::time::Instant {
        self.epoch + Duration::from_micros(t.as_micros())
    }

    pub(crate) async fn run(mut self) {
        let span = tracing::debug_span!("connection", id = self.id.0);
        let _enter = span.enter();
        poll_fn(|cx| self.poll_drive(cx)).await;
        // Commands sent while the driver was finishing would otherwise be dropped with
        // the channel and their handles would wait forever: refuse new ones, fail the rest.
        self.commands.close();
        while let Ok(cmd) = self.commands.try_recv() {
            if let Command::Start { shared, reply, .. } = cmd {
                if let Some(r) = reply {
                    let _ = r.send(Err(PipeError::Closed(None)));
                }
                shared.complete(Err(PipeError::Closed(None)));
            }
        }
        for (_, o) in self.outgoing.drain() {
            o.shared.complete(Err(PipeError::Closed(None)));
        }
        for (_, r) in self.replies.drain() {
            let _ = r.send(Err(PipeError::Closed(None)));
        }
        tracing::debug!("driver finished");
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Bounded work per poll so one busy connection cannot hog a worker thread: the
        // tasks it wakes (handlers of urgent messages, other connections) run between
        // polls, and a poll that moved a few hundred KiB has earned a yield.
        self.poll_budget = POLL_BYTE_BUDGET;
        for _ in 0..64 {
            if self.poll_budget == 0 {
                break;
            }
            let mut progress = false;
            progress |= self.poll_commands(cx);
            progress |= self.poll_read(cx);
            progress |= self.dispatch_events();
            progress |= self.poll_timer(cx);
            progress |= self.poll_write(cx);
            progress |= self.dispatch_events();
            if self.finished(cx) {
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Whether the driver is done: connection closed and its last frames written (or
    /// the transport is gone, or the linger deadline passed).
    fn finished(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.conn.is_closed() {
            return false;
        }
        let flushed = self.out.is_empty() && self.conn.is_drained();
        let now = tokio::time::Instant::now();
        let linger = *self
            .linger_until
            .get_or_insert_with(|| now + Duration::from_secs(2));
        if now >= linger {
            if !self.write_closed && !self.shutdown_done {
                let _ = Pin::new(&mut self.writer).poll_shutdown(cx);
            }
            return true;
        }
        if flushed || self.write_closed {
            // Our last frames are out: send FIN, then read (and discard) what the peer
            // still sends until it closes too. Closing a TCP socket with unread input
            // resets the connection, which can destroy our final frames (an ERROR with
            // its code) before the peer has read them.
            if !self.write_closed && !self.shutdown_done {
                match Pin::new(&mut self.writer).poll_shutdown(cx) {
                    Poll::Ready(_) => self.shutdown_done = true,
                    Poll::Pending => return self.linger_wait(cx, linger),
                }
            }
            if self.read_closed {
                return true;
            }
            if self.read_buf.is_empty() {
                self.read_buf = vec![0; 16 * 1024];
            }
            for _ in 0..64 {
                let mut rb = ReadBuf::new(&mut self.read_buf);
                match Pin::new(&mut self.reader).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                        self.read_closed = true;
                        return true;
                    }
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => {
                        self.read_closed = true;
                        return true;
                    }
                    Poll::Pending => return self.linger_wait(cx, linger),
                }
            }
            cx.waker().wake_by_ref();
        }
        self.linger_wait(cx, linger)
    }

    /// Wakes up at the linger deadline at the latest.
    fn linger_wait(&mut self, cx: &mut Context<'_>, linger: tokio::time::Instant) -> bool {
        self.timer.as_mut().reset(linger);
        self.timer_at = Some(linger);
        let _ = self.timer.as_mut().poll(cx);
        false
    }

    fn poll_commands(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..1024 {
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(cmd)) => {
                    self.handle_command(cmd);
                    progress = true;
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        progress
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..16 {
            if self.read_closed || self.conn.is_closed() || self.poll_budget == 0 {
                break;
            }
            let want = self.config.read_buffer.max(1024);
            // tcp profile: read straight into the core's frame buffer (no copy), as
            // much as its current block has room for.
            let polled = match self.conn.input_buffer(MIN_READ_ROOM) {
                Some(buf) => {
                    let room = (buf.capacity() - buf.len()).min(want);
                    match tokio_util::io::poll_read_buf(
                        Pin::new(&mut self.reader),
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
                    match Pin::new(&mut self.reader).poll_read(cx, &mut rb) {
                        Poll::Ready(Ok(())) => Poll::Ready(Ok((rb.filled().len(), false))),
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        Poll::Pending => Poll::Pending,
                    }
                }
            };
            match polled {
                Poll::Ready(Ok((n, in_place))) => {
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
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "transport read failed");
                    self.read_closed = true;
                    let now = self.now();
                    self.conn.handle_transport_closed(now);
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        progress
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let now = self.now();
        let mut next = self.conn.poll_timeout();
        if let Some(t) = next {
            if t <= now {
                self.conn.handle_timeout(now);
                return true;
            }
        }
        if let Some(p) = &self.pacer {
            if p.tokens < 1.0 && self.conn.is_open() {
                let wake = now + p.wait();
                next = Some(next.map_or(wake, |n| n.min(wake)));
            }
        }
        let Some(t) = next else {
            self.timer_at = None;
            return false;
        };
        let at = self.to_tokio(t);
        if self.timer_at != Some(at) {
            self.timer.as_mut().reset(at);
            self.timer_at = Some(at);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            self.timer_at = None;
            return true;
        }
        false
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        loop {
            if self.write_closed {
                return progress;
            }
            if self.out.is_empty() {
                if self.poll_budget == 0 {
                    break;
                }
                self.out.clear();
                let mut limit = self.config.transmit_batch;
                if let Some(p) = self.pacer.as_mut() {
                    let budget = p.budget(tokio::time::Instant::now());
                    if budget < 1.0 {
                        break;
                    }
                    limit = limit.min(budget as usize).max(1);
                }
                let now = self.now();
                let n = self.conn.poll_transmit_vectored(now, &mut self.out, limit);
                if n == 0 {
                    break;
                }
                if let Some(p) = self.pacer.as_mut() {
                    p.tokens -= n as f64;
                }
                progress = true;
            }
            let mut slices = [IoSlice::new(&[]); 64];
            let mut count = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.out.chunks()) {
                *slot = IoSlice::new(chunk);
                count += 1;
            }
            let polled = if count == 1 {
                Pin::new(&mut self.writer).poll_write(cx, &slices[0])
            } else {
                Pin::new(&mut self.writer).poll_write_vectored(cx, &slices[..count])
            };
            match polled {
                Poll::Ready(Ok(0)) => self.write_failed("transport accepted no bytes"),
                Poll::Ready(Ok(n)) => {
                    self.out.advance(n);
                    self.poll_budget = self.poll_budget.saturating_sub(n);
                    self.need_flush = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) => self.write_failed(&e.to_string()),
                Poll::Pending => return progress,
            }
        }
        if self.need_flush && !self.write_closed {
            match Pin::new(&mut self.writer).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.need_flush = false,
                Poll::Ready(Err(e)) => self.write_failed(&e.to_string()),
                Poll::Pending => {}
            }
        }
        progress
    }

    fn write_failed(&mut self, why: &str) {
        tracing::debug!(error = why, "transport write failed");
        self.write_closed = true;
        self.out.clear();
        let now = self.now();
        self.conn.handle_transport_closed(now);
    }

    // ----- commands ------------------------------------------------------------------

    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Start {
                local,
                head,
                body,
                shared,
                reply,
            } => {
                let finished = body.is_some();
                let result = match body {
                    Some(b) => self.conn.send(head, b),
                    None => self.conn.start(head),
                };
                match result {
                    Ok(id) => {
                        shared.id.store(id.0, Ordering::Release);
                        if finished {
                            shared
                                .sent
                                .store(shared.total.unwrap_or(0), Ordering::Relaxed);
                        }
                        if let Some(r) = reply {
                            self.replies.insert(id.0, r);
                        }
                        self.core_to_local.insert(id.0, local);
                        self.outgoing.insert(
                            local,
                            OutState {
                                core_id: Some(id.0),
                                pending: VecDeque::new(),
                                finish_pending: false,
                                shared,
                            },
                        );
                    }
                    Err(e) => {
                        let err = if self.conn.is_closed() {
                            PipeError::Closed(None)
                        } else {
                            PipeError::Start(e)
                        };
                        if let Some(r) = reply {
                            let _ = r.send(Err(err.clone()));
                        }
                        shared.complete(Err(err));
                    }
                }
            }
            Command::Write { local, data } => {
                if let Some(o) = self.outgoing.get_mut(&local) {
                    o.pending.push_back(data);
                    self.flush_pending(local);
                }
            }
            Command::Finish { local } => {
                if let Some(o) = self.outgoing.get_mut(&local) {
                    o.finish_pending = true;
                    self.flush_pending(local);
                }
            }
            Command::Cancel { local, code } => {
                if let Some(o) = self.outgoing.remove(&local) {
                    if let Some(id) = o.core_id {
                        self.conn.cancel(MessageId(id), code);
                        self.core_to_local.remove(&id);
                        if let Some(r) = self.replies.remove(&id) {
                            let _ = r.send(Err(PipeError::Message(
                                MessageError::CancelledLocally(code),
                            )));
                        }
                    }
                    o.shared
                        .complete(Err(PipeError::Message(MessageError::CancelledLocally(
                            code,
                        ))));
                } else {
                    // Already fully sent: still tell the peer (its handler may run).
                    let id = self.core_id_of_finished(local);
                    if let Some(id) = id {
                        self.conn.cancel(MessageId(id), code);
                        if let Some(r) = self.replies.remove(&id) {
                            let _ = r.send(Err(PipeError::Message(
                                MessageError::CancelledLocally(code),
                            )));
                        }
                    }
                }
            }
            Command::ForgetReply { local } => {
                if let Some(id) = self.core_id_of_finished(local) {
                    self.replies.remove(&id);
                }
            }
            Command::Accepted => {
                self.unaccepted = self.unaccepted.saturating_sub(1);
                self.unpark();
            }
            Command::Resume { id } => self.pump(id.0),
            Command::Stop { id, code } => {
                if self.incoming.remove(&id.0).is_some() {
                    self.conn.stop(id, code);
                }
            }
            Command::Close { code, reason } => self.conn.close(code, &reason),
            Command::Abort { code, reason } => self.conn.abort(code, &reason),
        }
    }

    /// The core id of a message whose local state is gone (fully sent): the local key
    /// doubles as a lookup through the reply table.
    fn core_id_of_finished(&self, local: u64) -> Option<u64> {
        self.finished_local.get(&local).copied()
    }

    /// Hands a message's pending writes to the core as far as it takes them.
    fn flush_pending(&mut self, local: u64) {
        let Some(o) = self.outgoing.get_mut(&local) else {
            return;
        };
        let Some(id) = o.core_id else { return };
        while let Some(chunk) = o.pending.pop_front() {
            let len = chunk.len();
            match self.conn.write(MessageId(id), chunk.clone()) {
                Ok(n) => {
                    o.shared.permits.add_permits(n);
                    o.shared.sent.fetch_add(n as u64, Ordering::Relaxed);
                    if n < len {
                        o.pending.push_front(chunk.slice(n..));
                        return;
                    }
                }
                Err(WriteError::Blocked) => {
                    o.pending.push_front(chunk);
                    return;
                }
                Err(_) if self.conn.is_closed() => {
                    // The connection ended first; the Closed event (or the driver's exit)
                    // fails this message with the connection's error.
                    o.pending.push_front(chunk);
                    return;
                }
                Err(e) => {
                    let err = match e {
                        WriteError::Failed(m) => PipeError::Message(m),
                        other => PipeError::Io {
                            action: "write message body".into(),
                            source: Arc::new(std::io::Error::other(other.to_string())),
                        },
                    };
                    self.conn.cancel(MessageId(id), ErrorCode::INTERNAL_ERROR);
                    o.shared.complete(Err(err));
                    self.outgoing.remove(&local);
                    self.core_to_local.remove(&id);
                    return;
                }
            }
        }
        if o.finish_pending {
            o.finish_pending = false;
            if let Err(e) = self.conn.finish(MessageId(id)) {
                if self.conn.is_closed() {
                    // Failed by the Closed event with the connection's error.
                    return;
                }
                let err = PipeError::Io {
                    action: "finish message body".into(),
                    source: Arc::new(std::io::Error::other(e.to_string())),
                };
                self.conn.cancel(MessageId(id), ErrorCode::INTERNAL_ERROR);
                o.shared.complete(Err(err));
                self.outgoing.remove(&local);
                self.core_to_local.remove(&id);
            }
        }
    }

    // ----- events --------------------------------------------------------------------

    fn dispatch_events(&mut self) -> bool {
        let mut progress = false;
        while let Some(ev) = self.conn.poll_event() {
            progress = true;
            self.handle_event(ev);
        }
        progress
    }

    fn handle_event(&mut self, ev: Event) {
        match ev {
            Event::Connected(params) => {
                tracing::debug!(?params, "connected");
                self.state.send_modify(|s| s.connected = Some(params));
            }
            Event::Incoming { id, head } => {
                let shared = BodyShared::new(head.total_len, self.config.body_buffer);
                let reply_to = head.reply_to;
                let msg = IncomingMessage {
                    id,
                    head,
                    connection: self.id,
                    body: IncomingBody::new(id, shared.clone(), self.cmd_tx.clone()),
                };
                self.incoming.insert(id.0, shared);
                let msg = match reply_to.and_then(|r| self.replies.remove(&r.0)) {
                    Some(tx) => match tx.send(Ok(msg)) {
                        Ok(()) => None,
                        // The caller gave up; the body drops and is stopped.
                        Err(_) => None,
                    },
                    // A reply nobody waits for (its caller gave up, or it answers a
                    // one-way message) is not a request: drop it, which stops it.
                    None if reply_to.is_some() => {
                        tracing::debug!(%id, "dropped a reply no request is waiting for");
                        None
                    }
                    None => Some(msg),
                };
                if let Some(msg) = msg {
                    match &self.accept_tx {
                        Some(tx) => {
                            if tx.send(msg).is_ok() {
                                self.unaccepted += 1;
                                if self.unaccepted - self.parked.len() > self.accept_ahead() {
                                    self.parked.push_back(id.0);
                                    return;
                                }
                            }
                        }
                        None => drop(msg),
                    }
                }
                self.pump(id.0);
            }
            Event::Readable { id } => self.pump(id.0),
            Event::Reset { id, error } => {
                if let Some(shared) = self.incoming.remove(&id.0) {
                    shared.finish(Err(PipeError::Message(error)));
                    shared.mark_abandoned();
                } else if let Some(w) = self.finished_incoming.remove(&id.0) {
                    if let Some(shared) = w.upgrade() {
                        shared.mark_abandoned();
                    }
                }
            }
            Event::Rejected { id, error } => {
                tracing::debug!(%id, %error, "refused an incoming message");
            }
            Event::Writable { id } => {
                if let Some(&local) = self.core_to_local.get(&id.0) {
                    self.flush_pending(local);
                }
            }
            Event::Sent { id } => {
                if let Some(local) = self.core_to_local.remove(&id.0) {
                    if let Some(o) = self.outgoing.remove(&local) {
                        o.shared.complete(Ok(()));
                        if self.finished_out_order.len() >= 4096 {
                            if let Some(old) = self.finished_out_order.pop_front() {
                                self.finished_out.remove(&old);
                            }
                        }
                        self.finished_out.insert(id.0, Arc::downgrade(&o.shared));
                        self.finished_out_order.push_back(id.0);
                    }
                    self.remember_finished(local, id.0);
                }
            }
            Event::Stopped { id, error } => {
                if let Some(local) = self.core_to_local.remove(&id.0) {
                    if let Some(o) = self.outgoing.remove(&local) {
                        o.shared.complete(Err(PipeError::Message(error.clone())));
                    }
                } else if let Some(shared) = self.finished_out.remove(&id.0) {
                    // Lost after it was fully sent: its handle reported success too early.
                    if let Some(shared) = shared.upgrade() {
                        shared.complete(Err(PipeError::Message(error.clone())));
                    }
                }
                if let Some(r) = self.replies.remove(&id.0) {
                    let _ = r.send(Err(PipeError::Message(error)));
                }
            }
            Event::GoingAway { code, reason } => {
                tracing::debug!(%code, reason, "peer is going away");
                self.state.send_modify(|s| s.going_away = true);
                if !self.config.manual_close {
                    self.conn.close(ErrorCode::NO_ERROR, "peer closed");
                }
            }
            Event::Closed { error } => {
                match &error {
                    None => tracing::debug!("closed"),
                    Some(e) => tracing::debug!(error = %e, "closed"),
                }
                let err = PipeError::Closed(error.clone());
                for (_, o) in self.outgoing.drain() {
                    o.shared.complete(Err(err.clone()));
                }
                for (_, r) in self.replies.drain() {
                    let _ = r.send(Err(err.clone()));
                }
                for (_, b) in self.incoming.drain() {
                    b.finish(Err(err.clone()));
                }
                self.accept_tx = None;
                self.state.send_modify(|s| s.closed = Some(error));
            }
            _ => {}
        }
    }

    fn remember_finished(&mut self, local: u64, id: u64) {
        if self.finished_local.len() > 4096 {
            // Keep only entries whose replies are still awaited.
            let replies = &self.replies;
            self.finished_local.retain(|_, id| replies.contains_key(id));
        }
        self.finished_local.insert(local, id);
    }

    /// Queued, unaccepted messages whose bodies are read ahead of the application.
    fn accept_ahead(&self) -> usize {
        (self.config.core.max_incoming as usize / 2).max(1)
    }

    /// Resumes parked messages once the application has caught up (the queue is FIFO,
    /// so parked messages are its tail).
    fn unpark(&mut self) {
        while !self.parked.is_empty()
            && self.unaccepted.saturating_sub(self.parked.len()) < self.accept_ahead()
        {
            if let Some(id) = self.parked.pop_front() {
                self.pump(id);
            }
        }
    }

    /// Moves buffered body bytes of an incoming message from the core into its reader's
    /// buffer, as far as that buffer has room.
    fn pump(&mut self, id: u64) {
        if self.parked.contains(&id) {
            return;
        }
        let Some(shared) = self.incoming.get(&id).cloned() else {
            return;
        };
        self.pump_into(id, &shared);
        shared.wake();
    }

    fn pump_into(&mut self, id: u64, shared: &Arc<BodyShared>) {
        loop {
            if !shared.has_room() {
                shared.lock().driver_parked = true;
                // Re-check: the reader may have drained it meanwhile.
                if !shared.has_room() {
                    return;
                }
                shared.lock().driver_parked = false;
            }
            match self.conn.read(MessageId(id), 0) {
                Ok(Some(chunk)) => {
                    shared.push(chunk);
                }
                Ok(None) => {
                    shared.finish(Ok(()));
                    self.incoming.remove(&id);
                    if self.finished_incoming.len() > 1024 {
                        self.finished_incoming.retain(|_, w| w.strong_count() > 0);
                    }
                    self.finished_incoming.insert(id, Arc::downgrade(shared));
                    return;
                }
                Err(ReadError::Blocked) | Err(_) => return,
            }
        }
    }
}
