//! Connections used by the scenarios: netcore pipes, yamux, a plain length-prefixed
//! protocol, tokio-util `LengthDelimitedCodec` and raw TCP, over loopback TCP or a
//! simulated link. Every protocol offers the same two operations (echo request, bulk
//! upload acknowledged by the receiver) so scenarios compare like with like.

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use netcore_runtime::core::{MessageHead, Urgency};
use netcore_runtime::transport::{self, SimConfig, SimLink, Transport, TransportAddr};
use netcore_runtime::{Pipe, PipeConfig};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// 1 MiB of filler shared by every sender (clones are reference counts, not copies).
pub fn filler() -> &'static Bytes {
    static F: OnceLock<Bytes> = OnceLock::new();
    F.get_or_init(|| Bytes::from(vec![0x5au8; 1 << 20]))
}

/// `len` bytes of filler: a zero-copy slice up to 1 MiB, a fresh buffer above.
pub fn payload(len: usize) -> Bytes {
    if len <= filler().len() {
        filler().slice(..len)
    } else {
        Bytes::from(vec![0x5au8; len])
    }
}

/// Aborts its tasks when dropped, so a failed or finished measurement leaks nothing.
#[derive(Default)]
pub struct Tasks(Vec<JoinHandle<()>>);

impl Tasks {
    /// Keeps a task.
    pub fn add(&mut self, h: JoinHandle<()>) {
        self.0.push(h);
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// The PipeConfig used on loopback TCP: the default, or the default adjusted by
/// `NETCORE_BENCH_PIPE` (comma-separated `lowat=N` (0: off), `batch=N`, `read=N`,
/// `body=N`, `write=N`, `connwin=N`, `msgwin=N` (caps of the credit windows)) for
/// experiments; results.json notes when it is set.
pub fn tcp_config() -> PipeConfig {
    let mut c = PipeConfig::default();
    if let Ok(spec) = std::env::var("NETCORE_BENCH_PIPE") {
        for kv in spec.split(',') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(n) = v.trim().parse::<usize>() else {
                continue;
            };
            match k.trim() {
                "lowat" => c.tcp_notsent_lowat = (n > 0).then_some(n as u32),
                "batch" => c.transmit_batch = n,
                "read" => c.read_buffer = n,
                "body" => c.body_buffer = n,
                "write" => c.write_buffer = n,
                "connwin" => {
                    c.core.connection_window = c.core.connection_window.min(n as _);
                    c.core.max_connection_window = n as _;
                }
                "qtarget" => {
                    c.tcp_queue_target = (n > 0).then(|| std::time::Duration::from_micros(n as u64))
                }
                "maxin" => c.core.max_incoming = n as u64,
                "initwin" => c.core.message_window = n as _,
                "msgwin" => {
                    c.core.message_window = c.core.message_window.min(n as _);
                    c.core.max_message_window = n as _;
                }
                _ => {}
            }
        }
    }
    c
}

/// Where the bytes go.
#[derive(Debug, Clone)]
pub enum Link {
    /// 127.0.0.1 TCP through the runtime's transport (listen/connect).
    Tcp,
    /// A simulated link (rate, latency, buffer).
    Sim(SimConfig),
}

/// Two connected transports over `link` (client end, server end).
pub async fn link_pair(link: &Link) -> Result<(Transport, Transport)> {
    match link {
        Link::Tcp => {
            let addr: TransportAddr = "tcp://127.0.0.1:0".parse().map_err(|e| anyhow!("{e}"))?;
            let mut l = transport::listen(&addr).await?;
            let bound = l.local_addr().context("listener has no address")?;
            let (c, s) = tokio::join!(transport::connect(&bound), l.accept());
            Ok((c?, s?))
        }
        Link::Sim(cfg) => {
            let p = SimLink::pair(cfg.clone());
            Ok((p.a, p.b))
        }
    }
}

/// Raw TCP bulk, receiving end: reads `total` bytes and answers with their count (8
/// bytes, big-endian).
pub async fn raw_count(s: &mut TcpStream, total: u64) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    while n < total {
        match s.read(&mut buf).await? {
            0 => return Err(anyhow!("raw TCP sender closed after {n} of {total} bytes")),
            k => n += k as u64,
        }
    }
    s.write_all(&n.to_be_bytes()).await?;
    Ok(())
}

/// Raw TCP bulk, sending end: writes `total` bytes in writes of `chunk` (at most
/// 1 MiB) and waits for the receiver's count, which must match.
pub async fn raw_send(c: &mut TcpStream, total: u64, chunk: usize) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let chunk = chunk.clamp(1, 1 << 20) as u64;
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk) as usize;
        c.write_all(&filler()[..n]).await?;
        left -= n as u64;
    }
    let mut ack = [0u8; 8];
    c.read_exact(&mut ack).await?;
    let got = u64::from_be_bytes(ack);
    if got != total {
        return Err(anyhow!("raw TCP receiver counted {got} of {total} bytes"));
    }
    Ok(())
}

/// Plain tokio TCP pair with TCP_NODELAY (raw TCP and LengthDelimitedCodec baselines).
pub async fn tcp_pair() -> Result<(TcpStream, TcpStream)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    let c = c?;
    let (s, _) = s?;
    c.set_nodelay(true)?;
    s.set_nodelay(true)?;
    Ok((c, s))
}

/// The multiplexing protocols compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// netcore Pipe.
    Netcore,
    /// yamux 0.13, a stream per message.
    Yamux,
    /// One frame at a time: `[kind u8][len u32 BE][payload]`, a whole message per frame.
    Plain,
}

impl Proto {
    /// Display name used as the baseline name.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Netcore => "netcore",
            Proto::Yamux => "yamux",
            Proto::Plain => "length-prefixed",
        }
    }
}

/// A connected client of one protocol; cheap to clone and usable concurrently.
#[derive(Clone)]
pub enum Client {
    /// netcore.
    Netcore(Pipe),
    /// yamux.
    Yamux(YamuxClient),
    /// plain length-prefixed.
    Plain(PlainClient),
}

/// A client and server of `proto` over `link`; the server side runs in `tasks`.
pub async fn connect(
    proto: Proto,
    link: &Link,
    cfg: Option<PipeConfig>,
    tasks: &mut Tasks,
) -> Result<Client> {
    let (c, s) = link_pair(link).await?;
    Ok(match proto {
        Proto::Netcore => {
            let cfg = cfg.unwrap_or_else(|| match link {
                Link::Tcp => tcp_config(),
                Link::Sim(_) => PipeConfig::for_transport(c.info()),
            });
            let client = Pipe::new(c, cfg.clone());
            let server = Pipe::new(s, cfg);
            tasks.add(tokio::spawn(serve_netcore(server)));
            client.ready().await?;
            Client::Netcore(client)
        }
        Proto::Yamux => {
            tasks.add(tokio::spawn(serve_yamux(s)));
            let (client, driver) = YamuxClient::new(c);
            tasks.add(driver);
            Client::Yamux(client)
        }
        Proto::Plain => {
            tasks.add(tokio::spawn(serve_plain(s)));
            let (client, reader) = PlainClient::new(c);
            tasks.add(reader);
            Client::Plain(client)
        }
    })
}

impl Client {
    /// Sends `len` bytes to the echo route and waits for all of them to come back.
    pub async fn echo(&self, len: usize, urgent: bool) -> Result<()> {
        match self {
            Client::Netcore(p) => {
                let mut m = p.message("echo");
                if urgent {
                    m = m.urgency(Urgency::HIGHEST);
                }
                let r = m.request(payload(len)).await?;
                let b = r.collect(1 << 30).await?;
                check_len(b.len(), len)
            }
            Client::Yamux(y) => {
                let mut s = y.open().await?;
                s.write_all(b"e").await?;
                s.write_all(&payload(len)).await?;
                s.close().await?;
                let mut got = Vec::with_capacity(len);
                s.read_to_end(&mut got).await?;
                check_len(got.len(), len)
            }
            Client::Plain(p) => {
                let n = p.call(1, len as u64).await?;
                check_len(n as usize, len)
            }
        }
    }

    /// Uploads `len` bytes as one message and waits for the receiver's acknowledgement
    /// (sent once it has consumed all of them).
    pub async fn bulk(&self, len: u64) -> Result<()> {
        match self {
            Client::Netcore(p) => {
                let mut head = MessageHead::to_route("sink");
                head.total_len = Some(len);
                let (tx, rx) = oneshot::channel();
                let mut w = p.start_writer(head, Some(tx));
                let mut left = len;
                while left > 0 {
                    let n = left.min(1 << 20) as usize;
                    w.write(payload(n)).await?;
                    left -= n as u64;
                }
                w.finish().await?;
                let reply = rx.await.map_err(|_| anyhow!("no reply"))??;
                let b = reply.collect(64).await?;
                let got = u64::from_be_bytes(b.as_ref().try_into().context("ack size")?);
                check_len(got as usize, len as usize)
            }
            Client::Yamux(y) => {
                let mut s = y.open().await?;
                s.write_all(b"s").await?;
                let mut left = len;
                while left > 0 {
                    let n = left.min(1 << 20) as usize;
                    s.write_all(&filler()[..n]).await?;
                    left -= n as u64;
                }
                s.close().await?;
                let mut ack = Vec::new();
                s.read_to_end(&mut ack).await?;
                let got = u64::from_be_bytes(ack.as_slice().try_into().context("ack size")?);
                check_len(got as usize, len as usize)
            }
            Client::Plain(p) => {
                let n = p.call(3, len).await?;
                check_len(n as usize, len as usize)
            }
        }
    }
}

fn check_len(got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(anyhow!("received {got} bytes, expected {want}"))
    }
}

/// netcore server: `echo` answers with the body, `sink` drains and answers the count.
pub async fn serve_netcore(server: Pipe) {
    let mut tasks = Tasks::default();
    while let Some(m) = server.accept().await {
        let id = m.id;
        match m.route() {
            "sink" => {
                let s = server.clone();
                tasks.add(tokio::spawn(async move {
                    let mut body = m.body;
                    let mut n = 0u64;
                    while let Ok(Some(c)) = body.chunk().await {
                        n += c.len() as u64;
                    }
                    let _ = s.reply(id, Bytes::copy_from_slice(&n.to_be_bytes())).await;
                }));
            }
            _ => {
                if let Ok(b) = m.collect(1 << 30).await {
                    let _ = server.reply(id, b).await;
                }
            }
        }
    }
}

// ---------------------------------------------------------------- yamux

fn yamux_config() -> yamux::Config {
    let mut c = yamux::Config::default();
    c.set_max_num_streams(4096);
    c
}

/// Opens yamux streams on a connection driven by a background task.
#[derive(Clone)]
pub struct YamuxClient {
    open: mpsc::UnboundedSender<oneshot::Sender<yamux::Stream>>,
}

impl YamuxClient {
    /// Starts a client connection over `io`; returns it and its driver task.
    pub fn new<T>(io: T) -> (YamuxClient, JoinHandle<()>)
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let mut conn = yamux::Connection::new(io.compat(), yamux_config(), yamux::Mode::Client);
        let (tx, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<yamux::Stream>>();
        let driver = tokio::spawn(async move {
            let mut pending: VecDeque<oneshot::Sender<yamux::Stream>> = VecDeque::new();
            let mut rx_open = true;
            poll_fn(|cx| loop {
                while rx_open {
                    match rx.poll_recv(cx) {
                        Poll::Ready(Some(r)) => pending.push_back(r),
                        Poll::Ready(None) => rx_open = false,
                        Poll::Pending => break,
                    }
                }
                if !pending.is_empty() {
                    match conn.poll_new_outbound(cx) {
                        Poll::Ready(Ok(s)) => {
                            if let Some(r) = pending.pop_front() {
                                let _ = r.send(s);
                            }
                            continue;
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(()),
                        Poll::Pending => {}
                    }
                }
                match conn.poll_next_inbound(cx) {
                    Poll::Ready(Some(Ok(_))) => continue,
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            })
            .await;
        });
        (YamuxClient { open: tx }, driver)
    }

    /// A new outbound stream.
    pub async fn open(&self) -> Result<yamux::Stream> {
        let (tx, rx) = oneshot::channel();
        self.open
            .send(tx)
            .map_err(|_| anyhow!("yamux connection closed"))?;
        rx.await.map_err(|_| anyhow!("yamux connection closed"))
    }
}

/// yamux server: each stream starts with a kind byte and is read to its end; `e`
/// streams are echoed, `s` (sink) streams are answered with their length (8 bytes BE).
pub async fn serve_yamux<T>(io: T)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = yamux::Connection::new(io.compat(), yamux_config(), yamux::Mode::Server);
    let mut tasks = Tasks::default();
    while let Some(Ok(mut s)) = poll_fn(|cx| conn.poll_next_inbound(cx)).await {
        tasks.add(tokio::spawn(async move {
            let mut kind = [0u8; 1];
            if s.read_exact(&mut kind).await.is_err() {
                return;
            }
            let echo = kind[0] == b'e';
            let mut buf = vec![0u8; 1 << 16];
            let mut kept: Vec<u8> = Vec::new();
            let mut n = 0u64;
            loop {
                match s.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(k) => {
                        n += k as u64;
                        if echo && n <= ECHO_MAX {
                            kept.extend_from_slice(&buf[..k]);
                        }
                    }
                    Err(_) => return,
                }
            }
            let _ = if echo {
                s.write_all(&kept).await
            } else {
                s.write_all(&n.to_be_bytes()).await
            };
            let _ = s.close().await;
        }));
    }
}

/// Largest body the yamux server echoes.
pub const ECHO_MAX: u64 = 64 * 1024;

// ---------------------------------------------------------------- plain length-prefixed

type Split = (
    tokio::io::ReadHalf<Transport>,
    tokio::io::WriteHalf<Transport>,
);

/// A plain length-prefixed client: one frame on the wire at a time, whole messages.
#[derive(Clone)]
pub struct PlainClient {
    inner: Arc<Mutex<tokio::io::WriteHalf<Transport>>>,
    waiting: Arc<std::sync::Mutex<VecDeque<oneshot::Sender<u64>>>>,
}

impl PlainClient {
    /// Starts it over `io`; returns it and its reader task.
    pub fn new(io: Transport) -> (PlainClient, JoinHandle<()>) {
        let (mut r, w): Split = tokio::io::split(io);
        let waiting: Arc<std::sync::Mutex<VecDeque<oneshot::Sender<u64>>>> = Arc::default();
        let w2 = waiting.clone();
        let reader = tokio::spawn(async move {
            let mut hdr = [0u8; 5];
            let mut buf = vec![0u8; 1 << 16];
            loop {
                if r.read_exact(&mut hdr).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as u64;
                let mut left = len;
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    if r.read_exact(&mut buf[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
                // Replies come back in request order; kind 4 carries the acknowledged count.
                let value = if hdr[0] == 4 {
                    len_from(&buf, len)
                } else {
                    len
                };
                let next = w2.lock().ok().and_then(|mut q| q.pop_front());
                if let Some(tx) = next {
                    let _ = tx.send(value);
                }
            }
        });
        (
            PlainClient {
                inner: Arc::new(Mutex::new(w)),
                waiting,
            },
            reader,
        )
    }

    /// Sends a frame of `kind` with `len` filler bytes; returns the reply's figure (echo:
    /// its length; bulk: the count the receiver acknowledged).
    async fn call(&self, kind: u8, len: u64) -> Result<u64> {
        let len32 = u32::try_from(len).context("frame longer than 4 GiB")?;
        let (tx, rx) = oneshot::channel();
        {
            let mut g = self.inner.lock().await;
            // Registered under the writer lock, so reply order matches send order.
            if let Ok(mut q) = self.waiting.lock() {
                q.push_back(tx);
            }
            let w = &mut *g;
            let mut hdr = [0u8; 5];
            hdr[0] = kind;
            hdr[1..].copy_from_slice(&len32.to_be_bytes());
            w.write_all(&hdr).await?;
            let mut left = len;
            while left > 0 {
                let n = left.min(1 << 20) as usize;
                w.write_all(&filler()[..n]).await?;
                left -= n as u64;
            }
            w.flush().await?;
        }
        rx.await.map_err(|_| anyhow!("plain connection closed"))
    }
}

fn len_from(buf: &[u8], len: u64) -> u64 {
    if len == 8 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[..8]);
        u64::from_be_bytes(b)
    } else {
        len
    }
}

/// Server of the plain protocol: kind 1 echoed as kind 2; kind 3 drained and answered
/// with kind 4 carrying the count.
pub async fn serve_plain(io: Transport) {
    let (mut r, mut w): Split = tokio::io::split(io);
    let mut hdr = [0u8; 5];
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if r.read_exact(&mut hdr).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as u64;
        if hdr[0] == 1 {
            let mut body = vec![0u8; len as usize];
            if r.read_exact(&mut body).await.is_err() {
                return;
            }
            let mut out = Vec::with_capacity(5 + body.len());
            out.push(2);
            out.extend_from_slice(&(len as u32).to_be_bytes());
            out.extend_from_slice(&body);
            if w.write_all(&out).await.is_err() {
                return;
            }
        } else {
            let mut left = len;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                if r.read_exact(&mut buf[..n]).await.is_err() {
                    return;
                }
                left -= n as u64;
            }
            let mut out = vec![4u8, 0, 0, 0, 8];
            out.extend_from_slice(&len.to_be_bytes());
            if w.write_all(&out).await.is_err() {
                return;
            }
        }
        if w.flush().await.is_err() {
            return;
        }
    }
}
