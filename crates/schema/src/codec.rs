//! Sans-IO framing: messages to wire bytes and back, byte-compatible with
//! binary_protocol 0.2.2.
//!
//! This module owns the message frame:
//! `header | [u32 BE payload length, variable layouts only] | payload | [checksum]`,
//! the header-only NOT_FOUND frame and the header-only frame of unknown types. It never
//! touches a socket: [`Codec`] encodes into caller buffers and decodes datagrams,
//! [`StreamDecoder`] cuts frames out of a TCP byte stream, skipping oversized payloads
//! without buffering them. The client and server modules drive these over tokio.

use crate::config::ProtocolConfig;
use crate::error::{Result, SchemaError};
use crate::schema::Schema;
use crate::typed::TypedMessage;
use crate::value::Value;
use bytes::{Buf, Bytes, BytesMut};
use std::sync::Arc;

/// An outgoing message already encoded: what a handler answers.
///
/// ```
/// netcore_schema::message! { pub struct Ack = 2 { pub n: u8 ["B"] } }
/// let r = netcore_schema::Reply::typed(&Ack { n: 1 }).unwrap();
/// assert_eq!(r.type_id(), Some(2));
/// assert_eq!(netcore_schema::Reply::not_found().type_id(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    type_id: Option<u64>,
    payload: Vec<u8>,
}

impl Reply {
    /// Encodes a typed message.
    ///
    /// ```
    /// netcore_schema::message! { pub struct Ack = 2 { pub n: u8 ["B"] } }
    /// assert_eq!(netcore_schema::Reply::typed(&Ack { n: 7 }).unwrap().payload(), &[7]);
    /// ```
    pub fn typed<T: TypedMessage>(msg: &T) -> Result<Reply> {
        let mut payload = Vec::with_capacity(T::FIXED_SIZE.unwrap_or(64));
        msg.encode(&mut payload)?;
        Ok(Reply {
            type_id: Some(T::TYPE_ID),
            payload,
        })
    }

    /// Encodes dynamic values for type `type_id` of `schema`.
    ///
    /// ```
    /// use netcore_schema::{Field, FieldKind, Reply, Schema, Value};
    /// let s = Schema::builder().dynamic(1, "T", vec![Field::new("t", FieldKind::Text)]).build().unwrap();
    /// let r = Reply::values(&s, 1, &[Value::Text("a".into())]).unwrap();
    /// assert_eq!(r.payload(), &[0, 0, 0, 1, b'a']);
    /// ```
    pub fn values(schema: &Schema, type_id: u64, values: &[Value]) -> Result<Reply> {
        let t = schema
            .get(type_id)
            .ok_or(SchemaError::UnknownType { type_id })?;
        let mut payload = Vec::new();
        t.layout().encode(values, &mut payload)?;
        Ok(Reply {
            type_id: Some(type_id),
            payload,
        })
    }

    /// An already-encoded payload for `type_id`.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Reply::raw(3, vec![1]).payload(), &[1]);
    /// ```
    pub fn raw(type_id: u64, payload: Vec<u8>) -> Reply {
        Reply {
            type_id: Some(type_id),
            payload,
        }
    }

    /// The reserved NOT_FOUND answer (header only).
    ///
    /// ```
    /// assert!(netcore_schema::Reply::not_found().payload().is_empty());
    /// ```
    pub fn not_found() -> Reply {
        Reply {
            type_id: None,
            payload: Vec::new(),
        }
    }

    /// Type id, `None` for NOT_FOUND.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Reply::raw(3, vec![]).type_id(), Some(3));
    /// ```
    pub fn type_id(&self) -> Option<u64> {
        self.type_id
    }

    /// Encoded payload.
    ///
    /// ```
    /// assert!(netcore_schema::Reply::raw(3, vec![]).payload().is_empty());
    /// ```
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// A decoded frame.
///
/// ```
/// use netcore_schema::{Codec, Frame, ProtocolConfig, Schema};
/// let codec = Codec::new(Schema::builder().build().unwrap(), ProtocolConfig::default());
/// assert_eq!(codec.decode_datagram(&[0xff, 0xff]).unwrap(), Frame::NotFound);
/// assert_eq!(codec.decode_datagram(&[0, 9]).unwrap(), Frame::Unknown { type_id: 9 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<P> {
    /// The reserved NOT_FOUND type (header only).
    NotFound,
    /// A type the schema does not define (binary_protocol sends these header only).
    Unknown {
        /// The id read from the header.
        type_id: u64,
    },
    /// A message of a known type, checksum verified and validation hooks passed.
    Message {
        /// Type id.
        type_id: u64,
        /// Payload (without length prefix or checksum).
        payload: P,
    },
}

/// Encoder/decoder for one schema and configuration. Cheap to clone.
///
/// ```
/// netcore_schema::message! { pub struct Sensor = 1 { pub a: f32 [">f"] } }
/// use netcore_schema::{Codec, ProtocolConfig, Schema};
/// let codec = Codec::new(Schema::builder().message::<Sensor>().build().unwrap(), ProtocolConfig::default());
/// let mut out = Vec::new();
/// codec.encode(&Sensor { a: 1.0 }, &mut out).unwrap();
/// assert_eq!(out, [0, 1, 0x3f, 0x80, 0, 0]);
/// ```
#[derive(Debug, Clone)]
pub struct Codec {
    schema: Arc<Schema>,
    config: Arc<ProtocolConfig>,
}

impl Codec {
    /// Creates a codec.
    ///
    /// ```
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().build().unwrap(), Default::default());
    /// assert_eq!(c.schema().not_found(), 65535);
    /// ```
    pub fn new(schema: impl Into<Arc<Schema>>, config: ProtocolConfig) -> Self {
        Codec {
            schema: schema.into(),
            config: Arc::new(config),
        }
    }

    /// The schema.
    ///
    /// ```
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().build().unwrap(), Default::default());
    /// assert!(c.schema().types().is_empty());
    /// ```
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The configuration.
    ///
    /// ```
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().build().unwrap(), Default::default());
    /// assert!(c.config().checksum().is_none());
    /// ```
    pub fn config(&self) -> &Arc<ProtocolConfig> {
        &self.config
    }

    fn frame_with(
        &self,
        type_id: u64,
        out: &mut Vec<u8>,
        body: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let start = out.len();
        let r = self.frame_inner(type_id, out, start, body);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    #[inline]
    fn frame_inner(
        &self,
        type_id: u64,
        out: &mut Vec<u8>,
        start: usize,
        body: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let t = self
            .schema
            .get(type_id)
            .ok_or(SchemaError::UnknownType { type_id })?;
        self.schema.header().write(type_id, out)?;
        let fixed = t.layout().fixed_size();
        let len_pos = out.len();
        if fixed.is_none() {
            out.extend_from_slice(&[0; 4]);
        }
        let p0 = out.len();
        body(out)?;
        let plen = out.len() - p0;
        if plen > self.config.max_payload_size() {
            return Err(SchemaError::PayloadTooLarge {
                size: plen as u64,
                max: self.config.max_payload_size(),
            });
        }
        match fixed {
            Some(n) if n != plen => {
                return Err(SchemaError::WrongLength {
                    type_id,
                    expected: n,
                    actual: plen,
                })
            }
            Some(_) => {}
            None => {
                let n = u32::try_from(plen).map_err(|_| SchemaError::PayloadTooLarge {
                    size: plen as u64,
                    max: u32::MAX as usize,
                })?;
                out[len_pos..p0].copy_from_slice(&n.to_be_bytes());
            }
        }
        self.config.validate(type_id, &out[p0..])?;
        if let Some(c) = self.config.checksum() {
            c.append_over(out, start);
        }
        Ok(())
    }

    /// Appends the frame of a typed message.
    ///
    /// ```
    /// netcore_schema::message! { pub struct Note = 3 { pub t: String [text] } }
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().message::<Note>().build().unwrap(), Default::default());
    /// let mut out = Vec::new();
    /// c.encode(&Note { t: "hi".into() }, &mut out).unwrap();
    /// assert_eq!(out, [0, 3, 0, 0, 0, 6, 0, 0, 0, 2, b'h', b'i']);
    /// ```
    #[inline]
    pub fn encode<T: TypedMessage>(&self, msg: &T, out: &mut Vec<u8>) -> Result<()> {
        self.frame_with(T::TYPE_ID, out, |o| msg.encode(o))
    }

    /// Appends the frame of dynamic values.
    ///
    /// ```
    /// use netcore_schema::{Codec, Field, FieldKind, NumFormat, Schema, Value};
    /// let s = Schema::builder().dynamic(5, "V", vec![Field::new("v", FieldKind::Num(NumFormat::parse_const("<H")))]).build().unwrap();
    /// let mut out = Vec::new();
    /// Codec::new(s, Default::default()).encode_values(5, &[Value::UInt(1)], &mut out).unwrap();
    /// assert_eq!(out, [0, 5, 1, 0]);
    /// ```
    pub fn encode_values(&self, type_id: u64, values: &[Value], out: &mut Vec<u8>) -> Result<()> {
        let t = self
            .schema
            .get(type_id)
            .ok_or(SchemaError::UnknownType { type_id })?;
        let layout = t.layout();
        self.frame_with(type_id, out, |o| layout.encode(values, o))
    }

    /// Appends the frame for an already-encoded payload.
    ///
    /// ```
    /// use netcore_schema::{Codec, Field, FieldKind, Schema};
    /// let s = Schema::builder().dynamic(1, "B", vec![Field::new("b", FieldKind::FixedBytes(2))]).build().unwrap();
    /// let c = Codec::new(s, Default::default());
    /// assert!(c.encode_raw(1, &[1, 2, 3], &mut Vec::new()).is_err());
    /// ```
    pub fn encode_raw(&self, type_id: u64, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.frame_with(type_id, out, |o| {
            o.extend_from_slice(payload);
            Ok(())
        })
    }

    /// Appends the header-only frame binary_protocol sends for a type it does not know
    /// (no payload, no checksum). Useful to probe a server.
    ///
    /// ```
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().build().unwrap(), Default::default());
    /// let mut out = Vec::new();
    /// c.encode_header_only(42, &mut out).unwrap();
    /// assert_eq!(out, [0, 42]);
    /// ```
    pub fn encode_header_only(&self, type_id: u64, out: &mut Vec<u8>) -> Result<()> {
        self.schema.header().write(type_id, out)
    }

    /// Appends the NOT_FOUND frame (header only, never a checksum).
    ///
    /// ```
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().build().unwrap(), Default::default());
    /// let mut out = Vec::new();
    /// c.encode_not_found(&mut out);
    /// assert_eq!(out, [0xff, 0xff]);
    /// ```
    pub fn encode_not_found(&self, out: &mut Vec<u8>) {
        let h = self.schema.header();
        // Cannot fail: NOT_FOUND always fits its own header.
        let _ = h.write(h.not_found(), out);
    }

    /// Appends the frame of a [`Reply`].
    ///
    /// ```
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().build().unwrap(), Default::default());
    /// let mut out = Vec::new();
    /// c.encode_reply(&netcore_schema::Reply::not_found(), &mut out).unwrap();
    /// assert_eq!(out, [0xff, 0xff]);
    /// ```
    pub fn encode_reply(&self, reply: &Reply, out: &mut Vec<u8>) -> Result<()> {
        match reply.type_id {
            None => {
                self.encode_not_found(out);
                Ok(())
            }
            Some(id) => self.encode_raw(id, &reply.payload, out),
        }
    }

    fn check_payload(&self, type_id: u64, payload: &[u8]) -> Result<()> {
        self.config.validate(type_id, payload)
    }

    /// Decodes one whole datagram (UDP): exact lengths are required.
    ///
    /// ```
    /// netcore_schema::message! { pub struct S = 1 { pub a: u16 [">H"] } }
    /// use netcore_schema::{Codec, Frame, Schema};
    /// let c = Codec::new(Schema::builder().message::<S>().build().unwrap(), Default::default());
    /// assert_eq!(c.decode_datagram(&[0, 1, 0, 2]).unwrap(), Frame::Message { type_id: 1, payload: &[0u8, 2][..] });
    /// assert!(c.decode_datagram(&[0, 1, 0]).is_err());
    /// ```
    pub fn decode_datagram<'a>(&self, data: &'a [u8]) -> Result<Frame<&'a [u8]>> {
        let hs = self.schema.header().size();
        let type_id = self
            .schema
            .header()
            .read(data)
            .ok_or(SchemaError::Truncated {
                needed: hs.saturating_sub(data.len()),
                available: data.len(),
            })?;
        if type_id == self.schema.not_found() {
            return Ok(Frame::NotFound);
        }
        let Some(t) = self.schema.get(type_id) else {
            return Ok(Frame::Unknown { type_id });
        };
        let mut body = data;
        if let Some(c) = self.config.checksum() {
            if data.len() < hs + c.size() {
                return Err(SchemaError::Truncated {
                    needed: hs + c.size() - data.len(),
                    available: data.len(),
                });
            }
            let (b, trailer) = data.split_at(data.len() - c.size());
            if !c.verify(b, trailer) {
                return Err(SchemaError::BadChecksum { type_id });
            }
            body = b;
        }
        let max = self.config.max_payload_size();
        let payload = match t.layout().fixed_size() {
            Some(n) => {
                let p = &body[hs..];
                if n > max {
                    return Err(SchemaError::PayloadTooLarge {
                        size: n as u64,
                        max,
                    });
                }
                if p.len() != n {
                    return Err(SchemaError::WrongLength {
                        type_id,
                        expected: n,
                        actual: p.len(),
                    });
                }
                p
            }
            None => {
                let rest = &body[hs..];
                let Some(lp) = rest.get(..4) else {
                    return Err(SchemaError::Truncated {
                        needed: 4 - rest.len(),
                        available: rest.len(),
                    });
                };
                let n = u32::from_be_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
                if n > max {
                    return Err(SchemaError::PayloadTooLarge {
                        size: n as u64,
                        max,
                    });
                }
                let p = &rest[4..];
                if p.len() != n {
                    return Err(SchemaError::WrongLength {
                        type_id,
                        expected: n,
                        actual: p.len(),
                    });
                }
                p
            }
        };
        self.check_payload(type_id, payload)?;
        Ok(Frame::Message { type_id, payload })
    }

    /// A decoder for a byte stream (TCP).
    ///
    /// ```
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().build().unwrap(), Default::default());
    /// let d = c.stream_decoder();
    /// assert!(!d.is_discarding());
    /// ```
    pub fn stream_decoder(&self) -> StreamDecoder {
        StreamDecoder {
            codec: self.clone(),
            discard: 0,
        }
    }
}

/// Cuts frames out of a byte stream held in a [`BytesMut`].
///
/// Payloads are handed out as [`Bytes`] slices of the read buffer (no copy). A payload
/// announced larger than `max_payload_size` is reported once as
/// [`SchemaError::PayloadTooLarge`] and then skipped as it arrives, never buffered.
///
/// ```
/// netcore_schema::message! { pub struct S = 1 { pub a: u16 [">H"] } }
/// use bytes::BytesMut;
/// use netcore_schema::{Codec, Frame, Schema};
/// let c = Codec::new(Schema::builder().message::<S>().build().unwrap(), Default::default());
/// let mut d = c.stream_decoder();
/// let mut buf = BytesMut::from(&[0u8, 1, 0][..]);
/// assert!(d.decode(&mut buf).unwrap().is_none());
/// buf.extend_from_slice(&[7, 0xff, 0xff]);
/// match d.decode(&mut buf).unwrap() {
///     Some(Frame::Message { type_id: 1, payload }) => assert_eq!(&payload[..], [0, 7]),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(d.decode(&mut buf).unwrap(), Some(Frame::NotFound));
/// ```
#[derive(Debug)]
pub struct StreamDecoder {
    codec: Codec,
    discard: u64,
}

impl StreamDecoder {
    /// Whether an oversized payload is being skipped.
    ///
    /// ```
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().build().unwrap(), Default::default());
    /// assert!(!c.stream_decoder().is_discarding());
    /// ```
    pub fn is_discarding(&self) -> bool {
        self.discard > 0
    }

    /// Whether the stream is inside a message (a partial frame is buffered or being
    /// skipped): EOF now would be a truncation.
    ///
    /// ```
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().build().unwrap(), Default::default());
    /// assert!(!c.stream_decoder().is_mid_message(&bytes::BytesMut::new()));
    /// ```
    pub fn is_mid_message(&self, buf: &BytesMut) -> bool {
        self.discard > 0 || !buf.is_empty()
    }

    /// Decodes the next frame. `Ok(None)`: more bytes are needed. `Err`: one message was
    /// consumed and rejected; the stream can continue (these errors are never fatal).
    ///
    /// ```
    /// let c = netcore_schema::Codec::new(netcore_schema::Schema::builder().build().unwrap(), Default::default());
    /// let mut buf = bytes::BytesMut::from(&[0u8, 5][..]);
    /// assert_eq!(c.stream_decoder().decode(&mut buf).unwrap(), Some(netcore_schema::Frame::Unknown { type_id: 5 }));
    /// ```
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame<Bytes>>> {
        Ok(match self.decode_span(buf)? {
            None => None,
            Some((Frame::NotFound, len)) => {
                buf.advance(len);
                Some(Frame::NotFound)
            }
            Some((Frame::Unknown { type_id }, len)) => {
                buf.advance(len);
                Some(Frame::Unknown { type_id })
            }
            Some((Frame::Message { type_id, payload }, len)) => {
                let frame = buf.split_to(len).freeze();
                Some(Frame::Message {
                    type_id,
                    payload: frame.slice(payload),
                })
            }
        })
    }

    /// Like [`decode`](Self::decode) without taking the frame out of the buffer: returns
    /// the frame with its payload as a range of `buf` and the frame's total length. The
    /// caller reads `&buf[range]` in place and then **must** call `buf.advance(len)`.
    /// Rejected frames are consumed before the error is returned.
    ///
    /// ```
    /// use bytes::Buf;
    /// netcore_schema::message! { pub struct S = 1 { pub a: u16 [">H"] } }
    /// use netcore_schema::{Codec, Frame, Schema, TypedMessage};
    /// let c = Codec::new(Schema::builder().message::<S>().build().unwrap(), Default::default());
    /// let mut d = c.stream_decoder();
    /// let mut buf = bytes::BytesMut::from(&[0u8, 1, 0, 9][..]);
    /// let (frame, len) = d.decode_span(&mut buf).unwrap().unwrap();
    /// let Frame::Message { payload, .. } = frame else { panic!() };
    /// assert_eq!(S::decode(&buf[payload]).unwrap().a, 9);
    /// buf.advance(len);
    /// assert!(buf.is_empty());
    /// ```
    pub fn decode_span(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<(Frame<std::ops::Range<usize>>, usize)>> {
        if self.discard > 0 {
            let n = self.discard.min(buf.len() as u64);
            buf.advance(n as usize);
            self.discard -= n;
            if self.discard > 0 {
                return Ok(None);
            }
        }
        let schema = &self.codec.schema;
        let header = schema.header();
        let hs = header.size();
        let Some(type_id) = header.read(buf) else {
            return Ok(None);
        };
        if type_id == schema.not_found() {
            return Ok(Some((Frame::NotFound, hs)));
        }
        let Some(t) = schema.get(type_id) else {
            return Ok(Some((Frame::Unknown { type_id }, hs)));
        };
        let config = &self.codec.config;
        let cs = config.checksum().map_or(0, |c| c.size());
        let max = config.max_payload_size();
        let (pstart, plen) = match t.layout().fixed_size() {
            Some(n) => (hs, n),
            None => {
                let Some(lp) = buf.get(hs..hs + 4) else {
                    return Ok(None);
                };
                (
                    hs + 4,
                    u32::from_be_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize,
                )
            }
        };
        if plen > max {
            buf.advance(pstart);
            self.discard = (plen + cs) as u64;
            return Err(SchemaError::PayloadTooLarge {
                size: plen as u64,
                max,
            });
        }
        let total = pstart + plen + cs;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        if let Some(c) = config.checksum() {
            if !c.verify(&buf[..total - cs], &buf[total - cs..total]) {
                buf.advance(total);
                return Err(SchemaError::BadChecksum { type_id });
            }
        }
        let payload = pstart..pstart + plen;
        if let Err(e) = self.codec.check_payload(type_id, &buf[payload.clone()]) {
            buf.advance(total);
            return Err(e);
        }
        Ok(Some((Frame::Message { type_id, payload }, total)))
    }
}
