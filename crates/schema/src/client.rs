//! Typed client over TCP and UDP (tokio), speaking binary_protocol's wire format.
//!
//! This module owns [`Client`] (connect, send, receive, send-and-receive, buffered
//! pipelined sends with [`Client::feed`] + [`Client::flush`]) and the one-shot helpers
//! [`Client::send_once`] / [`Client::request_once`] (Python's `send_single`,
//! `send_and_receive_single`). Every network wait is bounded by the configured
//! timeouts. An error that concerns one message (bad checksum, invalid payload, failed
//! validation) leaves the connection usable; an error that breaks framing marks it
//! broken and later calls fail with [`SchemaError::Broken`].

use crate::codec::{Codec, Frame, StreamDecoder};
use crate::config::ProtocolConfig;
use crate::error::{Result, SchemaError};
use crate::schema::Schema;
use crate::typed::TypedMessage;
use crate::value::Value;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{lookup_host, TcpStream, ToSocketAddrs, UdpSocket};

/// Largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65507;

/// Which transport a client uses (Python's `TransportType`).
///
/// ```
/// assert_ne!(netcore_schema::Transport::Tcp, netcore_schema::Transport::Udp);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A TCP stream.
    Tcp,
    /// UDP datagrams, one message each.
    Udp,
}

/// A received message.
///
/// ```
/// netcore_schema::message! { pub struct S = 1 { pub a: u8 ["B"] } }
/// use netcore_schema::{Frame, Received, Schema};
/// let schema = std::sync::Arc::new(Schema::builder().message::<S>().build().unwrap());
/// let r = Received::new(Frame::Message { type_id: 1, payload: bytes::Bytes::from_static(&[5]) }, schema);
/// assert_eq!(r.decode::<S>().unwrap().a, 5);
/// assert!(!r.is_not_found());
/// ```
#[derive(Debug, Clone)]
pub struct Received {
    frame: Frame<Bytes>,
    schema: Arc<Schema>,
}

impl Received {
    /// Wraps a decoded frame.
    ///
    /// ```
    /// let s = std::sync::Arc::new(netcore_schema::Schema::builder().build().unwrap());
    /// assert!(netcore_schema::Received::new(netcore_schema::Frame::NotFound, s).is_not_found());
    /// ```
    pub fn new(frame: Frame<Bytes>, schema: Arc<Schema>) -> Self {
        Received { frame, schema }
    }

    /// The frame.
    ///
    /// ```
    /// let s = std::sync::Arc::new(netcore_schema::Schema::builder().build().unwrap());
    /// let r = netcore_schema::Received::new(netcore_schema::Frame::Unknown { type_id: 4 }, s);
    /// assert_eq!(r.frame(), &netcore_schema::Frame::Unknown { type_id: 4 });
    /// ```
    pub fn frame(&self) -> &Frame<Bytes> {
        &self.frame
    }

    /// The type id (NOT_FOUND gives the schema's NOT_FOUND id).
    ///
    /// ```
    /// let s = std::sync::Arc::new(netcore_schema::Schema::builder().build().unwrap());
    /// assert_eq!(netcore_schema::Received::new(netcore_schema::Frame::NotFound, s).type_id(), 65535);
    /// ```
    pub fn type_id(&self) -> u64 {
        match &self.frame {
            Frame::NotFound => self.schema.not_found(),
            Frame::Unknown { type_id } | Frame::Message { type_id, .. } => *type_id,
        }
    }

    /// Whether the peer answered NOT_FOUND.
    ///
    /// ```
    /// let s = std::sync::Arc::new(netcore_schema::Schema::builder().build().unwrap());
    /// assert!(netcore_schema::Received::new(netcore_schema::Frame::NotFound, s).is_not_found());
    /// ```
    pub fn is_not_found(&self) -> bool {
        matches!(self.frame, Frame::NotFound)
    }

    /// The payload (empty for NOT_FOUND and unknown types).
    ///
    /// ```
    /// let s = std::sync::Arc::new(netcore_schema::Schema::builder().build().unwrap());
    /// assert!(netcore_schema::Received::new(netcore_schema::Frame::NotFound, s).payload().is_empty());
    /// ```
    pub fn payload(&self) -> &[u8] {
        match &self.frame {
            Frame::Message { payload, .. } => payload,
            _ => &[],
        }
    }

    /// Decodes as `T`; fails if the message is of another type.
    ///
    /// ```
    /// netcore_schema::message! { pub struct S = 1 { pub a: u8 ["B"] } }
    /// let s = std::sync::Arc::new(netcore_schema::Schema::builder().message::<S>().build().unwrap());
    /// let r = netcore_schema::Received::new(netcore_schema::Frame::NotFound, s);
    /// assert!(r.decode::<S>().is_err());
    /// ```
    pub fn decode<T: TypedMessage>(&self) -> Result<T> {
        match &self.frame {
            Frame::Message { type_id, payload } if *type_id == T::TYPE_ID => T::decode(payload),
            _ => Err(SchemaError::UnknownType {
                type_id: self.type_id(),
            }),
        }
    }

    /// Decodes into a JSON object (field name → value; bytes as arrays of integers);
    /// NOT_FOUND and unknown types give `null`.
    ///
    /// ```
    /// use netcore_schema::{Field, FieldKind, Frame, Received, Schema};
    /// let s = std::sync::Arc::new(Schema::builder().dynamic(1, "T", vec![Field::new("t", FieldKind::Text)]).build().unwrap());
    /// let r = Received::new(Frame::Message { type_id: 1, payload: bytes::Bytes::from_static(b"\0\0\0\x01a") }, s);
    /// assert_eq!(r.to_json().unwrap(), serde_json::json!({"t": "a"}));
    /// ```
    pub fn to_json(&self) -> Result<serde_json::Value> {
        match &self.frame {
            Frame::Message { type_id, .. } => self.schema.values_to_json(*type_id, &self.values()?),
            _ => Ok(serde_json::Value::Null),
        }
    }

    /// Decodes into dynamic values with the schema.
    ///
    /// ```
    /// use netcore_schema::{Field, FieldKind, Frame, Received, Schema, Value};
    /// let s = std::sync::Arc::new(Schema::builder().dynamic(1, "B", vec![Field::new("b", FieldKind::FixedBytes(1))]).build().unwrap());
    /// let r = Received::new(Frame::Message { type_id: 1, payload: bytes::Bytes::from_static(b"x") }, s);
    /// assert_eq!(r.values().unwrap(), vec![Value::Bytes(b"x".to_vec())]);
    /// ```
    pub fn values(&self) -> Result<Vec<Value>> {
        let id = self.type_id();
        let t = self
            .schema
            .get(id)
            .ok_or(SchemaError::UnknownType { type_id: id })?;
        t.layout().decode(self.payload())
    }
}

enum Inner {
    Tcp {
        rd: OwnedReadHalf,
        wr: OwnedWriteHalf,
        buf: BytesMut,
        dec: StreamDecoder,
    },
    Udp {
        sock: UdpSocket,
        buf: Vec<u8>,
    },
}

/// A typed client connection (Python's `BinaryClient`).
///
/// ```no_run
/// # async fn run() -> netcore_schema::Result<()> {
/// netcore_schema::message! { pub struct Ping = 1 { pub n: u32 [">I"] } }
/// use netcore_schema::{Client, Schema, Transport};
/// let schema = Schema::builder().message::<Ping>().build()?;
/// let mut c = Client::connect(Transport::Tcp, "127.0.0.1:9000", schema, Default::default()).await?;
/// let reply = c.request(&Ping { n: 1 }).await?;
/// let pong: Ping = reply.decode()?;
/// c.close().await;
/// # Ok(()) }
/// ```
pub struct Client {
    codec: Codec,
    inner: Inner,
    out: Vec<u8>,
    broken: bool,
}

async fn timed<T>(
    t: Duration,
    op: &'static str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(t, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(SchemaError::Timeout { op, after: t }),
    }
}

impl Client {
    /// Connects over `transport` (UDP: binds an ephemeral local port and only accepts
    /// datagrams from `addr`).
    ///
    /// ```no_run
    /// # async fn run() -> netcore_schema::Result<()> {
    /// let s = netcore_schema::Schema::builder().build()?;
    /// let c = netcore_schema::Client::connect(netcore_schema::Transport::Udp, "127.0.0.1:9000", s, Default::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        transport: Transport,
        addr: impl ToSocketAddrs,
        schema: impl Into<Arc<Schema>>,
        config: ProtocolConfig,
    ) -> Result<Client> {
        let codec = Codec::new(schema, config);
        let ct = codec.config().connect_timeout();
        let inner = match transport {
            Transport::Tcp => {
                let stream = timed(ct, "connect", TcpStream::connect(addr)).await?;
                let _ = stream.set_nodelay(true);
                let (rd, wr) = stream.into_split();
                Inner::Tcp {
                    rd,
                    wr,
                    buf: BytesMut::with_capacity(16 * 1024),
                    dec: codec.stream_decoder(),
                }
            }
            Transport::Udp => {
                let target: SocketAddr = timed(ct, "resolve", lookup_host(addr))
                    .await?
                    .next()
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "address resolved to nothing",
                        )
                    })?;
                // Loopback targets get a loopback source; others any local address.
                let local: SocketAddr = if target.ip().is_loopback() {
                    (target.ip(), 0).into()
                } else if target.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let sock = UdpSocket::bind(local).await?;
                sock.connect(target).await?;
                Inner::Udp {
                    sock,
                    buf: vec![0u8; 65536],
                }
            }
        };
        Ok(Client {
            codec,
            inner,
            out: Vec::with_capacity(16 * 1024),
            broken: false,
        })
    }

    /// The codec (schema and configuration) of this client.
    ///
    /// ```no_run
    /// # fn f(c: &netcore_schema::Client) { let _ = c.codec().schema(); }
    /// ```
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    fn check(&self) -> Result<()> {
        if self.broken {
            Err(SchemaError::Broken)
        } else {
            Ok(())
        }
    }

    fn mark<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.is_fatal_for_stream() {
                self.broken = true;
            }
        }
        r
    }

    /// Buffers a message; TCP sends it on [`flush`](Self::flush) (or when the buffer
    /// passes 64 KiB), UDP sends it at once as one datagram.
    ///
    /// ```no_run
    /// # async fn f(c: &mut netcore_schema::Client) -> netcore_schema::Result<()> {
    /// netcore_schema::message! { pub struct P = 1 { pub n: u8 ["B"] } }
    /// for n in 0..10 { c.feed(&P { n }).await?; }
    /// c.flush().await?;
    /// # Ok(()) }
    /// ```
    pub async fn feed<T: TypedMessage>(&mut self, msg: &T) -> Result<()> {
        self.check()?;
        self.codec.encode(msg, &mut self.out)?;
        self.after_feed().await
    }

    async fn after_feed(&mut self) -> Result<()> {
        match self.inner {
            Inner::Udp { .. } => self.flush().await,
            Inner::Tcp { .. } if self.out.len() >= 64 * 1024 => self.flush().await,
            Inner::Tcp { .. } => Ok(()),
        }
    }

    /// Writes buffered messages.
    ///
    /// ```no_run
    /// # async fn f(c: &mut netcore_schema::Client) -> netcore_schema::Result<()> {
    /// c.flush().await?;
    /// # Ok(()) }
    /// ```
    pub async fn flush(&mut self) -> Result<()> {
        self.check()?;
        if self.out.is_empty() {
            return Ok(());
        }
        let wt = self.codec.config().write_timeout();
        let r = match &mut self.inner {
            Inner::Tcp { wr, .. } => timed(wt, "write", wr.write_all(&self.out)).await,
            Inner::Udp { sock, .. } => {
                if self.out.len() > MAX_DATAGRAM {
                    let size = self.out.len();
                    self.out.clear();
                    return Err(SchemaError::DatagramTooLarge { size });
                }
                timed(wt, "send", sock.send(&self.out)).await.map(|_| ())
            }
        };
        self.out.clear();
        self.mark(r)
    }

    /// Sends a typed message now.
    ///
    /// ```no_run
    /// # async fn f(c: &mut netcore_schema::Client) -> netcore_schema::Result<()> {
    /// netcore_schema::message! { pub struct P = 1 { pub n: u8 ["B"] } }
    /// c.send(&P { n: 1 }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send<T: TypedMessage>(&mut self, msg: &T) -> Result<()> {
        self.feed(msg).await?;
        self.flush().await
    }

    /// Sends dynamic values for type `type_id`.
    ///
    /// ```no_run
    /// # async fn f(c: &mut netcore_schema::Client) -> netcore_schema::Result<()> {
    /// c.send_values(1, &[netcore_schema::Value::UInt(1)]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_values(&mut self, type_id: u64, values: &[Value]) -> Result<()> {
        self.check()?;
        self.codec.encode_values(type_id, values, &mut self.out)?;
        self.flush().await
    }

    /// Sends an already-encoded payload for type `type_id`.
    ///
    /// ```no_run
    /// # async fn f(c: &mut netcore_schema::Client) -> netcore_schema::Result<()> {
    /// c.send_raw(1, &[0, 1]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_raw(&mut self, type_id: u64, payload: &[u8]) -> Result<()> {
        self.check()?;
        self.codec.encode_raw(type_id, payload, &mut self.out)?;
        self.flush().await
    }

    /// Sends the bare header binary_protocol uses for a type outside its enum (no
    /// payload, no checksum); a server answers NOT_FOUND.
    ///
    /// ```no_run
    /// # async fn f(c: &mut netcore_schema::Client) -> netcore_schema::Result<()> {
    /// c.send_header_only(42).await?;
    /// assert!(c.receive().await?.is_not_found());
    /// # Ok(()) }
    /// ```
    pub async fn send_header_only(&mut self, type_id: u64) -> Result<()> {
        self.check()?;
        self.codec.encode_header_only(type_id, &mut self.out)?;
        self.flush().await
    }

    /// Sends raw bytes as they are (tests, probes, forwarding pre-encoded frames).
    ///
    /// ```no_run
    /// # async fn f(c: &mut netcore_schema::Client) -> netcore_schema::Result<()> {
    /// c.send_bytes(&[0, 42]).await?; // header-only unknown type 42
    /// # Ok(()) }
    /// ```
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.check()?;
        self.out.extend_from_slice(bytes);
        self.flush().await
    }

    /// Receives the next message (bounded by `read_timeout`).
    ///
    /// ```no_run
    /// # async fn f(c: &mut netcore_schema::Client) -> netcore_schema::Result<()> {
    /// let m = c.receive().await?;
    /// println!("type {}", m.type_id());
    /// # Ok(()) }
    /// ```
    pub async fn receive(&mut self) -> Result<Received> {
        self.check()?;
        let r = self.receive_inner().await;
        self.mark(r)
    }

    async fn receive_inner(&mut self) -> Result<Received> {
        let rt = self.codec.config().read_timeout();
        let schema = self.codec.schema().clone();
        match &mut self.inner {
            Inner::Tcp { rd, buf, dec, .. } => {
                // The clock is read only when a read is needed (not per buffered message).
                let mut deadline = None;
                loop {
                    if let Some(frame) = dec.decode(buf)? {
                        return Ok(Received::new(frame, schema));
                    }
                    let deadline =
                        *deadline.get_or_insert_with(|| tokio::time::Instant::now() + rt);
                    if buf.capacity() - buf.len() < 4096 {
                        buf.reserve(16 * 1024);
                    }
                    let n = match tokio::time::timeout_at(deadline, rd.read_buf(buf)).await {
                        Ok(r) => r?,
                        Err(_) => {
                            return Err(SchemaError::Timeout {
                                op: "receive",
                                after: rt,
                            })
                        }
                    };
                    if n == 0 {
                        return Err(if dec.is_mid_message(buf) {
                            SchemaError::Truncated {
                                needed: 1,
                                available: buf.len(),
                            }
                        } else {
                            SchemaError::ConnectionClosed
                        });
                    }
                }
            }
            Inner::Udp { sock, buf } => {
                let n = timed(rt, "receive", sock.recv(buf)).await?;
                let data = &buf[..n];
                let frame = match self.codec.decode_datagram(data)? {
                    Frame::Message { type_id, payload } => Frame::Message {
                        type_id,
                        payload: Bytes::copy_from_slice(payload),
                    },
                    Frame::NotFound => Frame::NotFound,
                    Frame::Unknown { type_id } => Frame::Unknown { type_id },
                };
                Ok(Received::new(frame, schema))
            }
        }
    }

    /// Sends a message and waits for the next message (Python's send + receive).
    ///
    /// ```no_run
    /// # async fn f(c: &mut netcore_schema::Client) -> netcore_schema::Result<()> {
    /// netcore_schema::message! { pub struct P = 1 { pub n: u8 ["B"] } }
    /// let answer = c.request(&P { n: 1 }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn request<T: TypedMessage>(&mut self, msg: &T) -> Result<Received> {
        self.send(msg).await?;
        self.receive().await
    }

    /// Closes the connection (TCP: shuts down the write side).
    ///
    /// ```no_run
    /// # async fn f(c: netcore_schema::Client) { c.close().await; }
    /// ```
    pub async fn close(mut self) {
        let _ = self.flush().await;
        if let Inner::Tcp { wr, .. } = &mut self.inner {
            let _ = wr.shutdown().await;
        }
    }

    /// Connects, sends one message and disconnects (Python's `send_single`).
    ///
    /// ```no_run
    /// # async fn f() -> netcore_schema::Result<()> {
    /// netcore_schema::message! { pub struct P = 1 { pub n: u8 ["B"] } }
    /// let s = netcore_schema::Schema::builder().message::<P>().build()?;
    /// netcore_schema::Client::send_once(netcore_schema::Transport::Tcp, "127.0.0.1:9000", s, Default::default(), &P { n: 1 }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_once<T: TypedMessage>(
        transport: Transport,
        addr: impl ToSocketAddrs,
        schema: impl Into<Arc<Schema>>,
        config: ProtocolConfig,
        msg: &T,
    ) -> Result<()> {
        let mut c = Client::connect(transport, addr, schema, config).await?;
        let r = c.send(msg).await;
        c.close().await;
        r
    }

    /// Connects, sends one message, waits for the answer and disconnects (Python's
    /// `send_and_receive_single`).
    ///
    /// ```no_run
    /// # async fn f() -> netcore_schema::Result<()> {
    /// netcore_schema::message! { pub struct P = 1 { pub n: u8 ["B"] } }
    /// let s = netcore_schema::Schema::builder().message::<P>().build()?;
    /// let r = netcore_schema::Client::request_once(netcore_schema::Transport::Udp, "127.0.0.1:9000", s, Default::default(), &P { n: 1 }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn request_once<T: TypedMessage>(
        transport: Transport,
        addr: impl ToSocketAddrs,
        schema: impl Into<Arc<Schema>>,
        config: ProtocolConfig,
        msg: &T,
    ) -> Result<Received> {
        let mut c = Client::connect(transport, addr, schema, config).await?;
        let r = c.request(msg).await;
        c.close().await;
        r
    }
}
