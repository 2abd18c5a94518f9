//! Transport addresses: the types and their text form (the one the CLI uses); parsing
//! and printing are in `text.rs`.
//!
//! Grammar (`[..]` optional, options in any order, values percent-encoded when needed):
//!
//! ```text
//! tcp://HOST:PORT[?nodelay=BOOL&notsent_lowat=BYTES]
//! tls://HOST:PORT[?ca=PATH&cert=PATH&key=PATH&server_name=NAME&nodelay=BOOL&notsent_lowat=BYTES]
//! unix://PATH                      e.g. unix:///tmp/x.sock
//! serial://PATH[?baud=N&parity=none|odd|even&flow=none|software|hardware&data_bits=5..8&stop_bits=1|2]
//! stdio:
//! mem://NAME[?buffer=BYTES]
//! sim://NAME[?rate=BYTES_PER_S&latency=DURATION&drop=P&flip=P&insert=P&seed=N&buffer=BYTES]
//! ```
//!
//! `HOST` is a name, an IPv4 address or a bracketed IPv6 address (`[::1]`). `DURATION` is an
//! integer with a unit `ns`, `us`, `ms` or `s`. `P` is a probability in `0..=1`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::sim::SimConfig;
use super::tcp::TcpOptions;

mod text;

/// Parsed transport address. [`FromStr`] and [`Display`](fmt::Display) round-trip.
///
/// ```
/// use netcore_runtime::transport::TransportAddr;
/// for text in [
///     "tcp://127.0.0.1:7000",
///     "unix:///tmp/x.sock",
///     "serial:///dev/ttyUSB0?baud=115200&parity=none&flow=none&data_bits=8&stop_bits=1",
///     "stdio:",
///     "mem://test",
///     "sim://link?rate=1000000&latency=1ms&drop=0.001",
/// ] {
///     let addr: TransportAddr = text.parse()?;
///     assert_eq!(addr.to_string().parse::<TransportAddr>()?, addr);
/// }
/// # Ok::<(), netcore_runtime::transport::AddrParseError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum TransportAddr {
    /// `tcp://HOST:PORT`
    Tcp(TcpAddr),
    /// `tls://HOST:PORT?...` (needs the `tls` feature to connect or listen)
    Tls(TlsAddr),
    /// `unix://PATH`
    Unix(UnixAddr),
    /// `serial://PATH?baud=...`
    Serial(SerialConfig),
    /// `stdio:`
    Stdio,
    /// `mem://NAME`: in-process listener and connections.
    Mem(MemAddr),
    /// `sim://NAME?rate=...`: in-process listener whose connections run over a simulated link.
    Sim(SimAddr),
}

/// A TCP endpoint: host, port and socket options.
///
/// ```
/// use netcore_runtime::transport::{TcpAddr, TransportAddr};
/// let a = TcpAddr::new("127.0.0.1", 7000);
/// assert_eq!(TransportAddr::Tcp(a).to_string(), "tcp://127.0.0.1:7000");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (0 to let the OS pick one when listening).
    pub port: u16,
    /// Socket options.
    pub options: TcpOptions,
}

impl TcpAddr {
    /// Endpoint with default options (`TCP_NODELAY` on).
    ///
    /// ```
    /// use netcore_runtime::transport::TcpAddr;
    /// assert!(TcpAddr::new("localhost", 1).options.nodelay);
    /// ```
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        TcpAddr {
            host: host.into(),
            port,
            options: TcpOptions::default(),
        }
    }

    /// `host:port` text suitable for name resolution (brackets around IPv6).
    ///
    /// ```
    /// use netcore_runtime::transport::TcpAddr;
    /// assert_eq!(TcpAddr::new("::1", 80).host_port(), "[::1]:80");
    /// ```
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A TLS-over-TCP endpoint with the files and name TLS needs.
///
/// Connecting needs `ca` (PEM file of trusted roots); `cert` + `key` add a client certificate.
/// Listening needs `cert` + `key` (PEM); `ca` makes the server require client certificates.
///
/// ```
/// use netcore_runtime::transport::TransportAddr;
/// let a: TransportAddr = "tls://example.com:7443?ca=/etc/ca.pem".parse()?;
/// let TransportAddr::Tls(t) = a else { unreachable!() };
/// assert_eq!(t.tcp.host, "example.com");
/// assert_eq!(t.ca.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
/// # Ok::<(), netcore_runtime::transport::AddrParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsAddr {
    /// The TCP endpoint under TLS.
    pub tcp: TcpAddr,
    /// PEM file of CA certificates to trust (client) or to verify client certificates (server).
    pub ca: Option<PathBuf>,
    /// PEM certificate chain of this side.
    pub cert: Option<PathBuf>,
    /// PEM private key of this side.
    pub key: Option<PathBuf>,
    /// Name to verify the server certificate against (default: the host).
    pub server_name: Option<String>,
}

impl TlsAddr {
    /// TLS endpoint with no files set.
    ///
    /// ```
    /// use netcore_runtime::transport::{TcpAddr, TlsAddr};
    /// let t = TlsAddr::new(TcpAddr::new("localhost", 7443));
    /// assert!(t.ca.is_none());
    /// ```
    pub fn new(tcp: TcpAddr) -> Self {
        TlsAddr {
            tcp,
            ca: None,
            cert: None,
            key: None,
            server_name: None,
        }
    }
}

/// A Unix domain socket path.
///
/// ```
/// use netcore_runtime::transport::{TransportAddr, UnixAddr};
/// let a = TransportAddr::Unix(UnixAddr::new("/tmp/x.sock"));
/// assert_eq!(a.to_string(), "unix:///tmp/x.sock");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnixAddr {
    /// Socket file path.
    pub path: PathBuf,
}

impl UnixAddr {
    /// Address of the socket at `path`.
    ///
    /// ```
    /// use netcore_runtime::transport::UnixAddr;
    /// assert_eq!(UnixAddr::new("/a").path, std::path::PathBuf::from("/a"));
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UnixAddr { path: path.into() }
    }
}

/// Name of an in-process endpoint (`mem://NAME`) and the pipe buffer size.
///
/// ```
/// use netcore_runtime::transport::{MemAddr, TransportAddr};
/// assert_eq!(TransportAddr::Mem(MemAddr::new("x")).to_string(), "mem://x");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemAddr {
    /// Listener name.
    pub name: String,
    /// Bytes buffered in each direction before writers wait.
    pub buffer: usize,
}

impl MemAddr {
    /// Default pipe buffer (64 KiB).
    pub const DEFAULT_BUFFER: usize = 64 * 1024;

    /// `mem://name` with the default buffer.
    ///
    /// ```
    /// use netcore_runtime::transport::MemAddr;
    /// assert_eq!(MemAddr::new("a").buffer, MemAddr::DEFAULT_BUFFER);
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        MemAddr {
            name: name.into(),
            buffer: Self::DEFAULT_BUFFER,
        }
    }
}

/// Name of an in-process simulated-link endpoint and the link's impairments.
///
/// ```
/// use netcore_runtime::transport::{SimAddr, SimConfig, TransportAddr};
/// let a = SimAddr::new("l", SimConfig::default());
/// assert_eq!(TransportAddr::Sim(a).to_string(), "sim://l");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SimAddr {
    /// Listener name.
    pub name: String,
    /// Link parameters (taken from the connecting side's address).
    pub config: SimConfig,
}

impl SimAddr {
    /// `sim://name` with the given link parameters.
    ///
    /// ```
    /// use netcore_runtime::transport::{SimAddr, SimConfig};
    /// assert_eq!(SimAddr::new("x", SimConfig::default()).name, "x");
    /// ```
    pub fn new(name: impl Into<String>, config: SimConfig) -> Self {
        SimAddr {
            name: name.into(),
            config,
        }
    }
}

/// Serial parity.
///
/// ```
/// use netcore_runtime::transport::Parity;
/// assert_eq!("even".parse::<Parity>().unwrap(), Parity::Even);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
}

/// Serial flow control.
///
/// ```
/// use netcore_runtime::transport::FlowControl;
/// assert_eq!("hardware".parse::<FlowControl>().unwrap(), FlowControl::Hardware);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FlowControl {
    /// None.
    #[default]
    None,
    /// XON/XOFF.
    Software,
    /// RTS/CTS.
    Hardware,
}

/// Serial data bits per character.
///
/// ```
/// use netcore_runtime::transport::DataBits;
/// assert_eq!("7".parse::<DataBits>().unwrap(), DataBits::Seven);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DataBits {
    /// 5 bits.
    Five,
    /// 6 bits.
    Six,
    /// 7 bits.
    Seven,
    /// 8 bits.
    #[default]
    Eight,
}

/// Serial stop bits.
///
/// ```
/// use netcore_runtime::transport::StopBits;
/// assert_eq!("2".parse::<StopBits>().unwrap(), StopBits::Two);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StopBits {
    /// One stop bit.
    #[default]
    One,
    /// Two stop bits.
    Two,
}

macro_rules! text_enum {
    ($ty:ident, $what:literal, $($var:ident => $text:literal),+) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($ty::$var => $text),+ })
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($ty::$var),)+
                    _ => Err(format!(concat!("expected ", $what, " one of: {}"),
                        [$($text),+].join(", "))),
                }
            }
        }
    };
}
text_enum!(Parity, "parity", None => "none", Odd => "odd", Even => "even");
text_enum!(FlowControl, "flow control", None => "none", Software => "software", Hardware => "hardware");
text_enum!(DataBits, "data bits", Five => "5", Six => "6", Seven => "7", Eight => "8");
text_enum!(StopBits, "stop bits", One => "1", Two => "2");

impl DataBits {
    fn count(self) -> u32 {
        match self {
            DataBits::Five => 5,
            DataBits::Six => 6,
            DataBits::Seven => 7,
            DataBits::Eight => 8,
        }
    }
}

/// Serial port settings: device path, baud rate, parity, flow control, data and stop bits.
///
/// ```
/// use netcore_runtime::transport::SerialConfig;
/// let c = SerialConfig::new("/dev/ttyUSB0", 9600);
/// assert_eq!(c.bytes_per_sec(), 960);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SerialConfig {
    /// Device path (`/dev/ttyUSB0`, `COM3`).
    pub path: String,
    /// Baud rate.
    pub baud: u32,
    /// Parity.
    pub parity: Parity,
    /// Flow control.
    pub flow: FlowControl,
    /// Data bits.
    pub data_bits: DataBits,
    /// Stop bits.
    pub stop_bits: StopBits,
}

impl SerialConfig {
    /// Default baud rate when the address gives none.
    pub const DEFAULT_BAUD: u32 = 115_200;

    /// 8N1 without flow control at `baud`.
    ///
    /// ```
    /// use netcore_runtime::transport::{Parity, SerialConfig};
    /// assert_eq!(SerialConfig::new("/dev/ttyS0", 115_200).parity, Parity::None);
    /// ```
    pub fn new(path: impl Into<String>, baud: u32) -> Self {
        SerialConfig {
            path: path.into(),
            baud,
            parity: Parity::None,
            flow: FlowControl::None,
            data_bits: DataBits::Eight,
            stop_bits: StopBits::One,
        }
    }

    /// Payload bytes per second the line carries: baud / bits per character (start, data,
    /// parity, stop).
    ///
    /// ```
    /// use netcore_runtime::transport::SerialConfig;
    /// assert_eq!(SerialConfig::new("x", 115_200).bytes_per_sec(), 11_520);
    /// ```
    pub fn bytes_per_sec(&self) -> u64 {
        let bits = 1
            + self.data_bits.count()
            + u32::from(self.parity != Parity::None)
            + match self.stop_bits {
                StopBits::One => 1,
                StopBits::Two => 2,
            };
        u64::from(self.baud) / u64::from(bits)
    }
}

/// Why an address text could not be parsed; every message shows a correct example.
///
/// ```
/// use netcore_runtime::transport::{AddrParseError, TransportAddr};
/// let err = "tcp://127.0.0.1".parse::<TransportAddr>().unwrap_err();
/// assert!(matches!(err, AddrParseError::BadHostPort { .. }));
/// assert!(err.to_string().contains("tcp://127.0.0.1:7000"));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrParseError {
    /// No `scheme:` prefix.
    #[error("transport address {input:?} has no scheme; start it with one of tcp://, tls://, unix://, serial://, stdio:, mem://, sim:// (e.g. tcp://127.0.0.1:7000)")]
    MissingScheme {
        /// The text given.
        input: String,
    },
    /// Unknown scheme.
    #[error("transport address {input:?}: unknown scheme {scheme:?}; use one of tcp, tls, unix, serial, stdio, mem, sim (e.g. tcp://127.0.0.1:7000)")]
    UnknownScheme {
        /// The text given.
        input: String,
        /// The scheme found.
        scheme: String,
    },
    /// `HOST:PORT` part is missing or malformed.
    #[error("transport address {input:?}: {reason}; expected HOST:PORT, e.g. {example}")]
    BadHostPort {
        /// The text given.
        input: String,
        /// What is wrong.
        reason: String,
        /// A correct address of the same scheme.
        example: &'static str,
    },
    /// The path or name part is missing.
    #[error("transport address {input:?}: missing {what}; e.g. {example}")]
    MissingPath {
        /// The text given.
        input: String,
        /// What is missing ("socket path", "device path", "name").
        what: &'static str,
        /// A correct address of the same scheme.
        example: &'static str,
    },
    /// An option has an invalid value.
    #[error(
        "transport address {input:?}: option {key}={value:?} is invalid: {reason}; e.g. {example}"
    )]
    BadOption {
        /// The text given.
        input: String,
        /// Option name.
        key: String,
        /// Option value.
        value: String,
        /// What is wrong.
        reason: String,
        /// A correct address of the same scheme.
        example: &'static str,
    },
    /// An option this scheme does not know.
    #[error("transport address {input:?}: unknown option {key:?} for {scheme}:; allowed: {allowed}; e.g. {example}")]
    UnknownOption {
        /// The text given.
        input: String,
        /// Scheme.
        scheme: &'static str,
        /// Option name.
        key: String,
        /// The options this scheme knows.
        allowed: &'static str,
        /// A correct address of the same scheme.
        example: &'static str,
    },
    /// Text after `stdio:`.
    #[error(
        "transport address {input:?}: stdio takes nothing after the colon; write exactly `stdio:`"
    )]
    TrailingText {
        /// The text given.
        input: String,
    },
}
