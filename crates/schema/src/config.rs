//! Protocol configuration: limits, timeouts, checksum, validation hooks, error handler.
//!
//! This module owns [`ProtocolConfig`] (the counterpart of Python's `ProtocolConfig`;
//! the header format lives in [`crate::Schema`]), the pluggable [`Checksum`] and the
//! file form [`ConfigFile`] used inside schema files.

use crate::codec::Reply;
use crate::error::{Result, SchemaError};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

type ChecksumFn = dyn Fn(&[u8], &mut [u8]) + Send + Sync;

static CRC16: crc::Crc<u16, crc::Table<16>> =
    crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_XMODEM);
static CRC32: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);
static CRC64: crc::Crc<u64, crc::Table<16>> = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_XZ);

/// A checksum appended after the message bytes (header, length prefix and payload).
///
/// The default is CRC-32/ISO-HDLC (Python's `zlib.crc32`) written big-endian in 4 bytes.
/// Python users must configure the same function on their side:
/// `checksum_func=lambda b: zlib.crc32(b).to_bytes(4, "big")`.
///
/// ```
/// use netcore_schema::Checksum;
/// let c = Checksum::crc32();
/// let mut out = Vec::new();
/// c.append(b"123456789", &mut out);
/// assert_eq!(out, 0xCBF43926u32.to_be_bytes());
/// assert!(c.verify(b"123456789", &out));
/// ```
#[derive(Clone)]
pub struct Checksum {
    size: usize,
    name: &'static str,
    func: Arc<ChecksumFn>,
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checksum")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish()
    }
}

impl Checksum {
    /// CRC-32/ISO-HDLC (zlib), 4 bytes big-endian. The default.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Checksum::crc32().size(), 4);
    /// ```
    pub fn crc32() -> Self {
        Checksum {
            size: 4,
            name: "crc32",
            func: Arc::new(|d, o| o.copy_from_slice(&CRC32.checksum(d).to_be_bytes())),
        }
    }

    /// CRC-16/XMODEM (Python's `binascii.crc_hqx(data, 0)`), 2 bytes big-endian.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Checksum::crc16().size(), 2);
    /// ```
    pub fn crc16() -> Self {
        Checksum {
            size: 2,
            name: "crc16-xmodem",
            func: Arc::new(|d, o| o.copy_from_slice(&CRC16.checksum(d).to_be_bytes())),
        }
    }

    /// CRC-64/XZ, 8 bytes big-endian.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Checksum::crc64().size(), 8);
    /// ```
    pub fn crc64() -> Self {
        Checksum {
            size: 8,
            name: "crc64-xz",
            func: Arc::new(|d, o| o.copy_from_slice(&CRC64.checksum(d).to_be_bytes())),
        }
    }

    /// The built-in CRC of this size (2, 4 or 8 bytes).
    ///
    /// ```
    /// assert!(netcore_schema::Checksum::with_size(3).is_err());
    /// assert_eq!(netcore_schema::Checksum::with_size(8).unwrap().size(), 8);
    /// ```
    pub fn with_size(size: usize) -> Result<Self> {
        match size {
            2 => Ok(Self::crc16()),
            4 => Ok(Self::crc32()),
            8 => Ok(Self::crc64()),
            _ => Err(SchemaError::InvalidSchema(format!(
                "no built-in checksum of {size} bytes; use 2, 4 or 8, or Checksum::custom"
            ))),
        }
    }

    /// A custom checksum: `func(message_bytes, out)` fills `out` (exactly `size` bytes).
    ///
    /// ```
    /// let sum = netcore_schema::Checksum::custom(1, "sum8", |d, o| o[0] = d.iter().fold(0u8, |a, b| a.wrapping_add(*b)));
    /// let mut out = Vec::new();
    /// sum.append(&[1, 2], &mut out);
    /// assert_eq!(out, [3]);
    /// ```
    pub fn custom(
        size: usize,
        name: &'static str,
        func: impl Fn(&[u8], &mut [u8]) + Send + Sync + 'static,
    ) -> Self {
        Checksum {
            size,
            name,
            func: Arc::new(func),
        }
    }

    /// Trailer size in bytes.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Checksum::crc16().size(), 2);
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// Appends the checksum of `data` to `out`.
    ///
    /// ```
    /// let mut v = vec![];
    /// netcore_schema::Checksum::crc16().append(b"", &mut v);
    /// assert_eq!(v.len(), 2);
    /// ```
    #[inline]
    pub fn append(&self, data: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.size, 0);
        (self.func)(data, &mut out[start..]);
    }

    /// Appends the checksum of `out[from..]` to `out`.
    #[inline]
    pub(crate) fn append_over(&self, out: &mut Vec<u8>, from: usize) {
        let start = out.len();
        out.resize(start + self.size, 0);
        let (data, trailer) = out.split_at_mut(start);
        (self.func)(&data[from..], trailer);
    }

    /// Whether `trailer` is the checksum of `data`.
    ///
    /// ```
    /// assert!(!netcore_schema::Checksum::crc32().verify(b"x", &[0, 0, 0, 0]));
    /// ```
    #[inline]
    pub fn verify(&self, data: &[u8], trailer: &[u8]) -> bool {
        let mut buf = [0u8; 16];
        if self.size <= buf.len() {
            let b = &mut buf[..self.size];
            (self.func)(data, b);
            b == trailer
        } else {
            let mut v = vec![0u8; self.size];
            (self.func)(data, &mut v);
            v == trailer
        }
    }
}

/// A validation hook: `(type_id, payload) -> Ok(())` or a rejection reason.
///
/// ```
/// let v: netcore_schema::Validator = std::sync::Arc::new(|_id, p: &[u8]| if p.len() < 2 { Ok(()) } else { Err("long".into()) });
/// assert!(v(1, b"abc").is_err());
/// ```
pub type Validator = Arc<dyn Fn(u64, &[u8]) -> std::result::Result<(), String> + Send + Sync>;

/// Where a per-message error happened, for the error handler.
///
/// ```
/// let c = netcore_schema::ErrorContext { peer: None, type_id: Some(1) };
/// assert_eq!(c.type_id, Some(1));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ErrorContext {
    /// The peer, when known.
    pub peer: Option<SocketAddr>,
    /// The message type involved, when known.
    pub type_id: Option<u64>,
}

/// An error handler: sees each per-message error on the server and may answer it.
///
/// ```
/// let h: netcore_schema::ErrorHandler = std::sync::Arc::new(|_e, _ctx| Some(netcore_schema::Reply::not_found()));
/// let ctx = netcore_schema::ErrorContext { peer: None, type_id: None };
/// assert!(h(&netcore_schema::SchemaError::ConnectionClosed, &ctx).is_some());
/// ```
pub type ErrorHandler = Arc<dyn Fn(&SchemaError, &ErrorContext) -> Option<Reply> + Send + Sync>;

/// Limits, timeouts and hooks shared by client and server.
///
/// ```
/// use netcore_schema::{Checksum, ProtocolConfig};
/// use std::time::Duration;
/// let c = ProtocolConfig::default()
///     .with_max_payload_size(64 * 1024)
///     .with_read_timeout(Duration::from_secs(5))
///     .with_checksum(Checksum::crc32())
///     .with_validator(|_id, payload| if payload.is_empty() { Err("empty".into()) } else { Ok(()) });
/// assert_eq!(c.max_payload_size(), 65536);
/// assert!(c.validate(1, b"").is_err());
/// ```
#[derive(Clone)]
pub struct ProtocolConfig {
    max_payload_size: usize,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    idle_timeout: Option<Duration>,
    checksum: Option<Checksum>,
    validators: Vec<Validator>,
    error_handler: Option<ErrorHandler>,
    max_connections: usize,
    max_concurrent_datagrams: usize,
}

impl fmt::Debug for ProtocolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolConfig")
            .field("max_payload_size", &self.max_payload_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("checksum", &self.checksum)
            .field("validators", &self.validators.len())
            .field("error_handler", &self.error_handler.is_some())
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        ProtocolConfig {
            max_payload_size: 1024 * 1024,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            idle_timeout: None,
            checksum: None,
            validators: Vec::new(),
            error_handler: None,
            max_connections: 1024,
            max_concurrent_datagrams: 256,
        }
    }
}

macro_rules! setters {
    ($($(#[$m:meta])* $with:ident / $get:ident : $t:ty;)*) => {$(
        $(#[$m])*
        pub fn $with(mut self, v: $t) -> Self { self.$get = v; self }
        #[doc = concat!("Current value of `", stringify!($get), "` (see [`Self::", stringify!($with), "`]).")]
        ///
        /// ```
        #[doc = concat!("let _ = netcore_schema::ProtocolConfig::default().", stringify!($get), "();")]
        /// ```
        pub fn $get(&self) -> $t { self.$get }
    )*};
}

impl ProtocolConfig {
    setters! {
        /// Largest payload accepted or sent (default 1 MiB). A peer announcing more is
        /// refused before any allocation.
        ///
        /// ```
        /// let c = netcore_schema::ProtocolConfig::default().with_max_payload_size(10);
        /// ```
        with_max_payload_size / max_payload_size: usize;
        /// Timeout for establishing a TCP connection (default 30 s).
        ///
        /// ```
        /// let c = netcore_schema::ProtocolConfig::default().with_connect_timeout(std::time::Duration::from_secs(1));
        /// ```
        with_connect_timeout / connect_timeout: Duration;
        /// Timeout for a client's receive and for the rest of a message once its header
        /// arrived (default 30 s).
        ///
        /// ```
        /// let c = netcore_schema::ProtocolConfig::default().with_read_timeout(std::time::Duration::from_secs(1));
        /// ```
        with_read_timeout / read_timeout: Duration;
        /// Timeout for writing one batch of bytes (default 30 s).
        ///
        /// ```
        /// let c = netcore_schema::ProtocolConfig::default().with_write_timeout(std::time::Duration::from_secs(1));
        /// ```
        with_write_timeout / write_timeout: Duration;
        /// How long a server keeps an idle TCP connection waiting for the next header
        /// (default `None`: forever, as Python does).
        ///
        /// ```
        /// let c = netcore_schema::ProtocolConfig::default().with_idle_timeout(Some(std::time::Duration::from_secs(60)));
        /// ```
        with_idle_timeout / idle_timeout: Option<Duration>;
        /// Maximum simultaneous TCP connections served (default 1024); more wait in the
        /// listen backlog.
        ///
        /// ```
        /// let c = netcore_schema::ProtocolConfig::default().with_max_connections(8);
        /// ```
        with_max_connections / max_connections: usize;
        /// Maximum UDP datagrams handled concurrently (default 256).
        ///
        /// ```
        /// let c = netcore_schema::ProtocolConfig::default().with_max_concurrent_datagrams(8);
        /// ```
        with_max_concurrent_datagrams / max_concurrent_datagrams: usize;
    }

    /// Enables a checksum trailer (disabled by default, as in Python).
    ///
    /// ```
    /// let c = netcore_schema::ProtocolConfig::default().with_checksum(netcore_schema::Checksum::crc32());
    /// assert_eq!(c.checksum().unwrap().size(), 4);
    /// ```
    pub fn with_checksum(mut self, checksum: Checksum) -> Self {
        self.checksum = Some(checksum);
        self
    }

    /// The checksum, if enabled.
    ///
    /// ```
    /// assert!(netcore_schema::ProtocolConfig::default().checksum().is_none());
    /// ```
    pub fn checksum(&self) -> Option<&Checksum> {
        self.checksum.as_ref()
    }

    /// Adds a validation hook run on every message sent and received.
    ///
    /// ```
    /// let c = netcore_schema::ProtocolConfig::default().with_validator(|id, _| if id == 3 { Err("no".into()) } else { Ok(()) });
    /// assert!(c.validate(3, b"").is_err());
    /// ```
    pub fn with_validator(
        mut self,
        f: impl Fn(u64, &[u8]) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.validators.push(Arc::new(f));
        self
    }

    /// Runs the validation hooks.
    ///
    /// ```
    /// assert!(netcore_schema::ProtocolConfig::default().validate(1, b"x").is_ok());
    /// ```
    #[inline]
    pub fn validate(&self, type_id: u64, payload: &[u8]) -> Result<()> {
        for v in &self.validators {
            v(type_id, payload)
                .map_err(|reason| SchemaError::ValidationFailed { type_id, reason })?;
        }
        Ok(())
    }

    /// Sets the server's error handler; it may return a reply for the peer.
    ///
    /// ```
    /// let c = netcore_schema::ProtocolConfig::default().with_error_handler(|e, ctx| { eprintln!("{e} {ctx:?}"); None });
    /// assert!(c.error_handler().is_some());
    /// ```
    pub fn with_error_handler(
        mut self,
        f: impl Fn(&SchemaError, &ErrorContext) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        self.error_handler = Some(Arc::new(f));
        self
    }

    /// The error handler, if set.
    ///
    /// ```
    /// assert!(netcore_schema::ProtocolConfig::default().error_handler().is_none());
    /// ```
    pub fn error_handler(&self) -> Option<&ErrorHandler> {
        self.error_handler.as_ref()
    }
}

/// The `[config]` section of a schema file. Times are in seconds.
///
/// ```
/// let c: netcore_schema::ConfigFile = serde_json::from_str(r#"{"read_timeout": 2.5}"#).unwrap();
/// assert_eq!(c.to_config().unwrap().read_timeout().as_millis(), 2500);
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Max payload in bytes.
    pub max_payload_size: Option<usize>,
    /// Connect timeout (s).
    pub connect_timeout: Option<f64>,
    /// Read timeout (s).
    pub read_timeout: Option<f64>,
    /// Write timeout (s).
    pub write_timeout: Option<f64>,
    /// Enable the checksum trailer.
    #[serde(default)]
    pub checksum_enabled: bool,
    /// Checksum size: 2 (CRC-16), 4 (CRC-32, default) or 8 (CRC-64).
    pub checksum_size: Option<usize>,
}

impl ConfigFile {
    /// Converts to a [`ProtocolConfig`].
    ///
    /// ```
    /// assert!(netcore_schema::ConfigFile::default().to_config().unwrap().checksum().is_none());
    /// ```
    pub fn to_config(&self) -> Result<ProtocolConfig> {
        let secs = |v: Option<f64>, d: Duration| -> Result<Duration> {
            match v {
                None => Ok(d),
                Some(s) => Duration::try_from_secs_f64(s)
                    .map_err(|_| SchemaError::InvalidSchema(format!("bad timeout {s}"))),
            }
        };
        let d = ProtocolConfig::default();
        let mut c = ProtocolConfig {
            max_payload_size: self.max_payload_size.unwrap_or(d.max_payload_size),
            connect_timeout: secs(self.connect_timeout, d.connect_timeout)?,
            read_timeout: secs(self.read_timeout, d.read_timeout)?,
            write_timeout: secs(self.write_timeout, d.write_timeout)?,
            ..d
        };
        if self.checksum_enabled {
            c.checksum = Some(Checksum::with_size(self.checksum_size.unwrap_or(4))?);
        }
        Ok(c)
    }
}
