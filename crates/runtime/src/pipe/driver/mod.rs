//! The connection driver: one tokio task per connection that owns the transport and the
//! protocol core (quinn's `ConnectionDriver` is the model).
//!
//! Each turn: take commands from handles → read what the transport has → feed the core
//! → dispatch its events → run expired timers → write what the core transmits, paced so
//! that bytes queued below the scheduler stay near the link's bandwidth-delay product.
//! Nothing here ever waits on the application: a full incoming body buffer only stops
//! this driver from reading *that message* out of the core, which withholds credit from
//! the peer; everything else keeps flowing.
//!
//! This file has the driver's state and its turn; the steps live in the submodules:
//! `commands` (handles' requests), `read` (transport → core), `events` (core →
//! handles), `incoming` (bodies to readers), `batches` (small messages in bulk),
//! `write` (core → transport), with `queue` and `wakers` as their plumbing.

mod batches;
mod commands;
mod events;
mod incoming;
mod queue;
mod read;
mod sizing;
mod wakers;
mod write;

pub(crate) use queue::{command_queue, CommandQueue, CommandSender};

use bytes::Bytes;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{oneshot, watch};
use tokio::time::Sleep;

use super::accept::{AcceptSender, Round};
use super::batch::BatchShared;
use super::body::{Abandons, BodyShared};
use super::error::PipeError;
use super::idhash::IdHashMap;
use super::message::{IncomingMessage, OutShared};
use super::wire::Wire;
use super::{AcceptCount, ConnectionId, PipeConfig, PipeState};
use crate::transport::Transport;
use netcore_core::{ErrorCode, Instant, MessageHead, MessageId, Transmit, Urgency};

/// Reply channel of a request.
pub(crate) type ReplyTx = oneshot::Sender<Result<IncomingMessage, PipeError>>;

/// What handles ask the driver to do.
///
/// Commands about an outgoing message carry its shared state; the driver finds the
/// message by the core id stored there. `Start` comes first on the same channel, so
/// the id is set (or the message has failed, id 0) by the time a later command runs.
pub(crate) enum Command {
    Start {
        head: MessageHead,
        /// The whole body, when the caller has it (then the message is finished too).
        body: Option<Bytes>,
        shared: Arc<OutShared>,
        reply: Option<ReplyTx>,
    },
    /// Whole-body messages of a [`MessageBatch`](super::MessageBatch).
    Batch {
        items: Vec<(MessageHead, Bytes)>,
        shared: Arc<BatchShared>,
    },
    CancelBatch {
        shared: Arc<BatchShared>,
    },
    Write {
        shared: Arc<OutShared>,
        data: Bytes,
    },
    Finish {
        shared: Arc<OutShared>,
    },
    Cancel {
        shared: Arc<OutShared>,
        code: ErrorCode,
    },
    ForgetReply {
        shared: Arc<OutShared>,
    },
    /// The application took messages from the accept queue while the driver had
    /// parked ones (see [`AcceptCount`]).
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
    /// Read and written by this task alone, so not split (`tokio::io::split` halves
    /// take a lock on every poll).
    io: Transport,
    commands: CommandQueue,
    cmd_tx: CommandSender,
    accept_tx: Option<AcceptSender>,
    /// Messages for the accept queue from the current dispatch round.
    accept_batch: Round,
    state: watch::Sender<PipeState>,
    config: PipeConfig,
    /// Read buffer when the wire cannot take reads in place (serial profile, legacy).
    read_buf: Vec<u8>,
    /// Link bytes being written; large bodies are referenced, not copied.
    out: Transmit,
    need_flush: bool,
    timer: Pin<Box<Sleep>>,
    /// The deadline the timer is armed for (core time).
    timer_at: Option<Instant>,
    /// `timer` was polled since it was last reset: its waker is registered, and
    /// polling it again before it fires would only cost time.
    timer_polled: bool,
    /// The clock, read once per round of `poll_drive` and after each read (see `now`).
    clock: (tokio::time::Instant, Instant),
    /// Work was done since `clock` was read (reads then read it again).
    clock_stale: bool,
    pacer: Option<Pacer>,
    /// Outgoing messages not yet fully sent, by core id.
    outgoing: IdHashMap<OutState>,
    replies: IdHashMap<ReplyTx>,
    incoming: IdHashMap<Arc<BodyShared>>,
    /// Incoming messages the peer abandoned (see [`Abandons`]).
    abandons: Arc<Abandons>,
    /// Core id and state of the latest messages fully sent, oldest first, so a loss the
    /// peer reports afterwards (serial profile: NACK → `Stopped`) still fails their
    /// handles. Searched only on `Stopped`, which is rare.
    finished_out: VecDeque<(u64, Weak<OutShared>)>,
    read_closed: bool,
    write_closed: bool,
    linger_until: Option<tokio::time::Instant>,
    /// The write side was shut down (FIN sent) after the close.
    shutdown_done: bool,
    /// Queue index of the oldest message in the accept queue not known to be taken.
    queue_base: u64,
    /// Read-ahead charge of each message from `queue_base` on (0 while parked).
    queue_charges: VecDeque<u64>,
    /// Sum of `queue_charges`.
    ahead_bytes: u64,
    accepted: Arc<AcceptCount>,
    /// Queued messages whose bodies are left in the core until the application takes
    /// more from the queue: they keep counting against `max_incoming`, so a peer cannot
    /// make the accept queue grow past it while the application is slow.
    parked: VecDeque<incoming::Parked>,
    /// Bytes this poll may still read or write before it yields.
    poll_budget: usize,
    /// The command channel and transport reads, each polled with a waker of its own: a
    /// source whose last poll left it waiting and which has not fired since is not
    /// asked again (`settled` also tells `poll_drive` whether a round left it waiting).
    commands_source: wakers::Source,
    read_source: wakers::Source,
    /// The task waker the sources forward to (compared cheaply each poll).
    task_waker: Waker,
    /// Set by the steps of a round of `poll_drive`: whether the last `poll_write` left
    /// its side waiting on the transport (waker registered) or with nothing to do,
    /// whether it stopped for the pacer, and whether `poll_commands` stopped at its
    /// cap with commands left.
    write_settled: bool,
    write_paced: bool,
    /// `TCP_CORK` as last set (see `write.rs`).
    cork: write::Cork,
    /// TCP with an unsent limit: batch and limit sized to the drain rate (`sizing.rs`).
    sizing: Option<sizing::SendSizing>,
    commands_capped: bool,
    /// An event handled since this was cleared may have left the driver work (data or
    /// credit to send, batches to start): all but a message fully sent, which only
    /// completes its handle.
    event_work: bool,
    /// An urgent message was handed to the application in this round.
    urgent_in: bool,
    /// Many messages were handed to the application at once in this round (see
    /// `YIELD_AFTER_HANDING_OVER`).
    handed_over_many: bool,
    /// The application started an urgent message.
    urgent_out: bool,
    /// Urgency of incoming messages sent at a non-default one, by id, for their replies.
    urgent_requests: IdHashMap<Urgency>,
    /// Batch messages waiting for room in the core's queue, oldest first.
    batches: VecDeque<batches::PendingBatch>,
    /// Batch messages in the core, not all fully sent.
    runs: VecDeque<batches::BatchRun>,
    /// Recently finished runs, for a loss reported after `Sent`.
    done_runs: VecDeque<batches::DoneRun>,
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
        commands: CommandQueue,
        cmd_tx: CommandSender,
        accept_tx: AcceptSender,
        accepted: Arc<AcceptCount>,
        state: watch::Sender<PipeState>,
    ) -> Driver<W> {
        let epoch = tokio::time::Instant::now();
        let abandons = accept_tx.abandons().clone();
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
        let is_tcp = transport.is_tcp();
        let mut conn = conn;
        // Batches of small messages complete by the range, not by one event each.
        conn.set_sent_ranges(true);
        Driver {
            conn,
            id,
            epoch,
            io: transport,
            commands,
            cmd_tx,
            accept_tx: Some(accept_tx),
            accept_batch: Round::new(),
            state,
            read_buf: Vec::new(),
            // Without vectored writes every piece would be a write (and a TCP segment)
            // of its own: copy into one buffer instead.
            out: Transmit::with_splicing(vectored),
            need_flush: false,
            timer: Box::pin(tokio::time::sleep_until(epoch)),
            timer_at: None,
            timer_polled: false,
            clock: (epoch, Instant::ZERO),
            clock_stale: true,
            pacer,
            outgoing: IdHashMap::default(),
            replies: IdHashMap::default(),
            incoming: IdHashMap::default(),
            abandons,
            finished_out: VecDeque::new(),
            read_closed: false,
            write_closed: false,
            linger_until: None,
            shutdown_done: false,
            queue_base: 0,
            queue_charges: VecDeque::new(),
            ahead_bytes: 0,
            accepted,
            parked: VecDeque::new(),
            poll_budget: POLL_BYTE_BUDGET,
            commands_source: wakers::Source::new(),
            read_source: wakers::Source::new(),
            task_waker: Waker::noop().clone(),
            write_settled: false,
            write_paced: false,
            cork: write::Cork::for_transport(is_tcp),
            sizing: match (is_tcp, config.tcp_notsent_lowat, config.tcp_queue_target) {
                (true, Some(lowat), Some(target)) => Some(sizing::SendSizing::new(
                    target,
                    config.transmit_batch,
                    lowat,
                )),
                _ => None,
            },
            commands_capped: false,
            event_work: false,
            urgent_in: false,
            handed_over_many: false,
            urgent_out: false,
            urgent_requests: IdHashMap::default(),
            batches: VecDeque::new(),
            runs: VecDeque::new(),
            done_runs: VecDeque::new(),
            config,
        }
    }

    /// The time as of the current round of `poll_drive` (or its latest read): the core's
    /// timers work in milliseconds, and reading the clock at every step cost more than
    /// anything else in an idle round.
    fn now(&self) -> Instant {
        self.clock.1
    }

    /// Reads the clock.
    fn tick(&mut self) {
        let t = tokio::time::Instant::now();
        let d = t.saturating_duration_since(self.epoch);
        self.clock = (t, Instant::from_micros(d.as_micros() as u64));
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
        for cmd in self.commands.close() {
            match cmd {
                Command::Start { shared, reply, .. } => {
                    if let Some(r) = reply {
                        let _ = r.send(Err(PipeError::Closed(None)));
                    }
                    shared.complete(Err(PipeError::Closed(None)));
                }
                Command::Batch { shared, .. } => shared.complete(Err(PipeError::Closed(None))),
                _ => {}
            }
        }
        self.fail_batches(&PipeError::Closed(None));
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
        if !self.task_waker.will_wake(cx.waker()) {
            self.task_waker = cx.waker().clone();
            self.commands_source.set_task(cx.waker());
            self.read_source.set_task(cx.waker());
        }
        for _ in 0..64 {
            if self.poll_budget == 0 {
                break;
            }
            self.tick();
            let mut progress = false;
            progress |= self.poll_commands();
            if std::mem::take(&mut self.urgent_out) {
                // An urgent message from the application goes out before this poll
                // reads (and processes) another few hundred KiB of input.
                progress |= self.poll_write(cx);
            }
            // The round's clock reading serves its first read unless work came between.
            self.clock_stale = progress;
            progress |= self.poll_read();
            progress |= self.dispatch_events();
            // `|`, not `||`: both flags are cleared.
            if std::mem::take(&mut self.urgent_in) | std::mem::take(&mut self.handed_over_many) {
                // An urgent message was handed to the application: let its task run
                // now rather than after this poll's remaining input budget. So too
                // after a large hand-over of messages: yielding puts this task in the
                // worker's queue, where an idle worker can take it, and the two go on
                // in parallel; woken by each other instead, the driver and the
                // application stay on one worker thread (tokio runs a task woken by
                // another next, on the waker's thread) and a stream of small
                // messages gets half the machine.
                self.poll_write(cx);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !self.batches.is_empty() {
                // Sent messages may have made room in the core's queue.
                progress |= self.start_batches();
            }
            let timer_fired = self.poll_timer(cx);
            progress |= timer_fired;
            progress |= self.poll_write(cx);
            if self.write_paced {
                // Arms the wake-up for the pacer's next tokens.
                self.poll_timer(cx);
            }
            self.event_work = false;
            self.dispatch_events();
            if self.finished(cx) {
                return Poll::Ready(());
            }
            // Another round only if this one left work a step before could take up
            // (events from the writes: more data or batches to send) or a source not
            // waiting on its waker; a round that did something but left everything
            // waiting ends here instead of confirming it with an idle round (about a
            // sixth of a small round trip's instructions).
            let again = self.event_work
                || timer_fired
                || self.commands_capped
                || !self.read_source.settled
                || !self.write_settled;
            if !progress || !again {
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
                let _ = Pin::new(&mut self.io).poll_shutdown(cx);
            }
            return true;
        }
        if flushed || self.write_closed {
            // Our last frames are out: send FIN, then read (and discard) what the peer
            // still sends until it closes too. Closing a TCP socket with unread input
            // resets the connection, which can destroy our final frames (an ERROR with
            // its code) before the peer has read them.
            if !self.write_closed && !self.shutdown_done {
                // Nothing may stay corked behind the FIN.
                self.set_cork(false);
                match Pin::new(&mut self.io).poll_shutdown(cx) {
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
                match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
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
        let at = linger.saturating_duration_since(self.epoch);
        self.timer_at = Some(Instant::from_micros(at.as_micros() as u64));
        self.timer_polled = true;
        let _ = self.timer.as_mut().poll(cx);
        false
    }

    fn poll_commands(&mut self) -> bool {
        let mut progress = false;
        self.commands_capped = false;
        if self.commands_source.needs_poll() {
            self.commands_source.settled = false;
            self.commands_capped = true;
            let waker = self.commands_source.take_waker();
            let mut cx = Context::from_waker(&waker);
            for _ in 0..1024 {
                match self.commands.poll_recv(&mut cx) {
                    Poll::Ready(cmd) => {
                        self.handle_command(cmd);
                        progress = true;
                    }
                    Poll::Pending => {
                        self.commands_capped = false;
                        self.commands_source.settled = true;
                        break;
                    }
                }
            }
            self.commands_source.put_waker(waker);
        }
        if !self.parked.is_empty() {
            // Takes reported only when `AcceptCount::waiting` was seen; look anyway.
            self.unpark();
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
        // A timer armed for earlier and not yet due stays: the core's deadlines mostly
        // move later (idle and keepalive timers restart with every frame), and when it
        // fires early the check above finds nothing due and arms the new deadline.
        // Compared in core time: converting costs more than the rest of this check.
        let armed_earlier = self.timer_at.is_some_and(|armed| armed <= t && armed > now);
        if self.timer_at != Some(t) && !armed_earlier {
            let at = self.to_tokio(t);
            self.timer.as_mut().reset(at);
            self.timer_at = Some(t);
            self.timer_polled = false;
        }
        if !self.timer_polled {
            // Once polled, the timer wakes this task when it fires, and the check of
            // `poll_timeout` above then sees it due.
            self.timer_polled = true;
            if self.timer.as_mut().poll(cx).is_ready() {
                self.timer_at = None;
                return true;
            }
        }
        false
    }
}
