//! Parsing and printing the text form of [`TransportAddr`] (grammar in the parent
//! module's docs), with errors that show a correct address of the same scheme.

use super::*;

const EX_TCP: &str = "tcp://127.0.0.1:7000";
const EX_TLS: &str = "tls://example.com:7443?ca=/etc/netcore/ca.pem";
const EX_UNIX: &str = "unix:///tmp/x.sock";
const EX_SERIAL: &str =
    "serial:///dev/ttyUSB0?baud=115200&parity=none&flow=none&data_bits=8&stop_bits=1";
const EX_MEM: &str = "mem://test?buffer=65536";
const EX_SIM: &str =
    "sim://link?rate=11520&latency=1ms&drop=0.0001&flip=0.0001&insert=0.0001&seed=7";

struct Ctx<'a> {
    input: &'a str,
    scheme: &'static str,
    example: &'static str,
    allowed: &'static str,
}

impl Ctx<'_> {
    fn bad(&self, key: &str, value: &str, reason: impl Into<String>) -> AddrParseError {
        AddrParseError::BadOption {
            input: self.input.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
            example: self.example,
        }
    }

    fn unknown(&self, key: &str) -> AddrParseError {
        AddrParseError::UnknownOption {
            input: self.input.to_owned(),
            scheme: self.scheme,
            key: key.to_owned(),
            allowed: self.allowed,
            example: self.example,
        }
    }

    fn missing(&self, what: &'static str) -> AddrParseError {
        AddrParseError::MissingPath {
            input: self.input.to_owned(),
            what,
            example: self.example,
        }
    }

    fn num<T: FromStr>(&self, key: &str, value: &str) -> Result<T, AddrParseError> {
        value
            .parse()
            .map_err(|_| self.bad(key, value, "expected a non-negative integer"))
    }

    fn boolean(&self, key: &str, value: &str) -> Result<bool, AddrParseError> {
        match value {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.bad(key, value, "expected true or false")),
        }
    }

    fn prob(&self, key: &str, value: &str) -> Result<f64, AddrParseError> {
        match value.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
            _ => Err(self.bad(key, value, "expected a probability between 0 and 1")),
        }
    }

    fn enumerated<T: FromStr<Err = String>>(
        &self,
        key: &str,
        value: &str,
    ) -> Result<T, AddrParseError> {
        value.parse().map_err(|e| self.bad(key, value, e))
    }

    fn tcp_option(
        &self,
        opts: &mut TcpOptions,
        key: &str,
        value: &str,
    ) -> Result<bool, AddrParseError> {
        match key {
            "nodelay" => opts.nodelay = self.boolean(key, value)?,
            "notsent_lowat" => opts.notsent_lowat = Some(self.num(key, value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Splits `rest` into the part before `?` and decoded `(key, value)` options.
fn split_query(
    rest: &str,
    ctx: &Ctx<'_>,
) -> Result<(String, Vec<(String, String)>), AddrParseError> {
    let (body, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let mut opts = Vec::new();
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k).ok_or_else(|| ctx.bad(k, v, "bad percent-encoding"))?;
        let v = decode(v).ok_or_else(|| ctx.bad(&k, v, "bad percent-encoding"))?;
        if v.is_empty() {
            return Err(ctx.bad(&k, &v, "missing value after `=`"));
        }
        opts.push((k, v));
    }
    let body = decode(body).ok_or_else(|| ctx.bad("(path)", body, "bad percent-encoding"))?;
    Ok((body, opts))
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but unreserved characters and `/`, `:`, `.`, `-`, `_`, `~`.
fn encode(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/:.-_~@+,[]".contains(&b) {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

fn parse_host_port(body: &str, ctx: &Ctx<'_>) -> Result<TcpAddr, AddrParseError> {
    let bad = |reason: &str| AddrParseError::BadHostPort {
        input: ctx.input.to_owned(),
        reason: reason.to_owned(),
        example: ctx.example,
    };
    let body = body.trim_end_matches('/');
    let (host, port) = if let Some(rest) = body.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("unclosed `[` in IPv6 host"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("missing `:PORT` after the host"))?;
        (h, port)
    } else {
        let (h, p) = body
            .rsplit_once(':')
            .ok_or_else(|| bad("missing `:PORT` after the host"))?;
        if h.contains(':') {
            return Err(bad(
                "IPv6 hosts must be written in brackets, e.g. [::1]:7000",
            ));
        }
        (h, p)
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad(&format!("port {port:?} is not a number in 0..=65535")))?;
    Ok(TcpAddr::new(host, port))
}

/// Parses `N` + unit (`ns`, `us`, `ms`, `s`).
fn parse_duration(v: &str) -> Option<Duration> {
    let split = v.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit {
        "ns" => Some(Duration::from_nanos(n)),
        "us" => Some(Duration::from_micros(n)),
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        _ => None,
    }
}

struct DurationText(Duration);

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        if ns % 1_000_000_000 == 0 {
            write!(f, "{}s", ns / 1_000_000_000)
        } else if ns % 1_000_000 == 0 {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns % 1_000 == 0 {
            write!(f, "{}us", ns / 1_000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

impl FromStr for TransportAddr {
    type Err = AddrParseError;

    fn from_str(input: &str) -> Result<Self, AddrParseError> {
        let input = input.trim();
        let (scheme, rest) =
            input
                .split_once(':')
                .ok_or_else(|| AddrParseError::MissingScheme {
                    input: input.to_owned(),
                })?;
        let scheme_lc = scheme.to_ascii_lowercase();
        if scheme_lc == "stdio" {
            return if rest.is_empty() || rest == "//" {
                Ok(TransportAddr::Stdio)
            } else {
                Err(AddrParseError::TrailingText {
                    input: input.to_owned(),
                })
            };
        }
        let (sch, example, allowed): (&'static str, &'static str, &'static str) =
            match scheme_lc.as_str() {
                "tcp" => ("tcp", EX_TCP, "nodelay, notsent_lowat"),
                "tls" => (
                    "tls",
                    EX_TLS,
                    "ca, cert, key, server_name, nodelay, notsent_lowat",
                ),
                "unix" => ("unix", EX_UNIX, "(none)"),
                "serial" => (
                    "serial",
                    EX_SERIAL,
                    "baud, parity, flow, data_bits, stop_bits",
                ),
                "mem" => ("mem", EX_MEM, "buffer"),
                "sim" => (
                    "sim",
                    EX_SIM,
                    "rate, latency, drop, flip, insert, seed, buffer",
                ),
                _ if scheme.is_empty()
                    || !scheme.chars().all(|c| c.is_ascii_alphabetic())
                    || rest.parse::<u16>().is_ok() =>
                {
                    return Err(AddrParseError::MissingScheme {
                        input: input.to_owned(),
                    })
                }
                _ => {
                    return Err(AddrParseError::UnknownScheme {
                        input: input.to_owned(),
                        scheme: scheme.to_owned(),
                    })
                }
            };
        let ctx = Ctx {
            input,
            scheme: sch,
            example,
            allowed,
        };
        // `scheme://rest`; tolerate `scheme:rest` for names and paths.
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (body, opts) = split_query(rest, &ctx)?;
        match sch {
            "tcp" => {
                let mut a = parse_host_port(&body, &ctx)?;
                for (k, v) in &opts {
                    if !ctx.tcp_option(&mut a.options, k, v)? {
                        return Err(ctx.unknown(k));
                    }
                }
                Ok(TransportAddr::Tcp(a))
            }
            "tls" => {
                let mut a = TlsAddr::new(parse_host_port(&body, &ctx)?);
                for (k, v) in &opts {
                    match k.as_str() {
                        "ca" => a.ca = Some(PathBuf::from(v)),
                        "cert" => a.cert = Some(PathBuf::from(v)),
                        "key" => a.key = Some(PathBuf::from(v)),
                        "server_name" => a.server_name = Some(v.clone()),
                        _ if ctx.tcp_option(&mut a.tcp.options, k, v)? => {}
                        _ => return Err(ctx.unknown(k)),
                    }
                }
                Ok(TransportAddr::Tls(a))
            }
            "unix" => {
                if body.is_empty() {
                    return Err(ctx.missing("socket path"));
                }
                if let Some((k, _)) = opts.first() {
                    return Err(ctx.unknown(k));
                }
                Ok(TransportAddr::Unix(UnixAddr::new(body)))
            }
            "serial" => {
                if body.is_empty() {
                    return Err(ctx.missing("device path"));
                }
                let mut c = SerialConfig::new(body, SerialConfig::DEFAULT_BAUD);
                for (k, v) in &opts {
                    match k.as_str() {
                        "baud" => {
                            c.baud = ctx.num(k, v)?;
                            if c.baud == 0 {
                                return Err(ctx.bad(k, v, "baud must be above 0"));
                            }
                        }
                        "parity" => c.parity = ctx.enumerated(k, v)?,
                        "flow" => c.flow = ctx.enumerated(k, v)?,
                        "data_bits" => c.data_bits = ctx.enumerated(k, v)?,
                        "stop_bits" => c.stop_bits = ctx.enumerated(k, v)?,
                        _ => return Err(ctx.unknown(k)),
                    }
                }
                Ok(TransportAddr::Serial(c))
            }
            "mem" => {
                if body.is_empty() {
                    return Err(ctx.missing("name"));
                }
                let mut m = MemAddr::new(body);
                for (k, v) in &opts {
                    match k.as_str() {
                        "buffer" => {
                            m.buffer = ctx.num(k, v)?;
                            if m.buffer == 0 {
                                return Err(ctx.bad(k, v, "buffer must be at least 1 byte"));
                            }
                        }
                        _ => return Err(ctx.unknown(k)),
                    }
                }
                Ok(TransportAddr::Mem(m))
            }
            _ => {
                if body.is_empty() {
                    return Err(ctx.missing("name"));
                }
                let mut c = SimConfig::default();
                for (k, v) in &opts {
                    match k.as_str() {
                        "rate" => c.rate_bytes_per_sec = ctx.num(k, v)?,
                        "latency" => {
                            c.one_way_latency = parse_duration(v).ok_or_else(|| {
                                ctx.bad(k, v, "expected an integer with unit ns, us, ms or s")
                            })?
                        }
                        "drop" => c.drop_prob = ctx.prob(k, v)?,
                        "flip" => c.flip_prob = ctx.prob(k, v)?,
                        "insert" => c.insert_prob = ctx.prob(k, v)?,
                        "seed" => c.seed = ctx.num(k, v)?,
                        "buffer" => {
                            c.buffer_limit = ctx.num(k, v)?;
                            if c.buffer_limit == 0 {
                                return Err(ctx.bad(k, v, "buffer must be at least 1 byte"));
                            }
                        }
                        _ => return Err(ctx.unknown(k)),
                    }
                }
                Ok(TransportAddr::Sim(SimAddr::new(body, c)))
            }
        }
    }
}

struct Query<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl Query<'_, '_> {
    fn opt(&mut self, key: &str, value: &dyn fmt::Display) -> fmt::Result {
        let sep = if self.first { '?' } else { '&' };
        self.first = false;
        write!(self.f, "{sep}{key}=")?;
        encode(&value.to_string(), self.f)
    }

    fn tcp(&mut self, o: &TcpOptions) -> fmt::Result {
        let d = TcpOptions::default();
        if o.nodelay != d.nodelay {
            self.opt("nodelay", &o.nodelay)?;
        }
        if let Some(n) = o.notsent_lowat {
            self.opt("notsent_lowat", &n)?;
        }
        Ok(())
    }
}

impl fmt::Display for TransportAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportAddr::Tcp(a) => {
                write!(f, "tcp://")?;
                encode(&a.host_port(), f)?;
                Query { f, first: true }.tcp(&a.options)
            }
            TransportAddr::Tls(a) => {
                write!(f, "tls://")?;
                encode(&a.tcp.host_port(), f)?;
                let mut q = Query { f, first: true };
                for (k, v) in [("ca", &a.ca), ("cert", &a.cert), ("key", &a.key)] {
                    if let Some(p) = v {
                        q.opt(k, &p.display())?;
                    }
                }
                if let Some(n) = &a.server_name {
                    q.opt("server_name", n)?;
                }
                q.tcp(&a.tcp.options)
            }
            TransportAddr::Unix(a) => {
                write!(f, "unix://")?;
                encode(&a.path.to_string_lossy(), f)
            }
            TransportAddr::Serial(c) => {
                write!(f, "serial://")?;
                encode(&c.path, f)?;
                write!(
                    f,
                    "?baud={}&parity={}&flow={}&data_bits={}&stop_bits={}",
                    c.baud, c.parity, c.flow, c.data_bits, c.stop_bits
                )
            }
            TransportAddr::Stdio => f.write_str("stdio:"),
            TransportAddr::Mem(m) => {
                write!(f, "mem://")?;
                encode(&m.name, f)?;
                if m.buffer != MemAddr::DEFAULT_BUFFER {
                    write!(f, "?buffer={}", m.buffer)?;
                }
                Ok(())
            }
            TransportAddr::Sim(s) => {
                write!(f, "sim://")?;
                encode(&s.name, f)?;
                let c = &s.config;
                let d = SimConfig::default();
                let mut q = Query { f, first: true };
                if c.rate_bytes_per_sec != d.rate_bytes_per_sec {
                    q.opt("rate", &c.rate_bytes_per_sec)?;
                }
                if c.one_way_latency != d.one_way_latency {
                    q.opt("latency", &DurationText(c.one_way_latency))?;
                }
                for (k, v, dv) in [
                    ("drop", c.drop_prob, d.drop_prob),
                    ("flip", c.flip_prob, d.flip_prob),
                    ("insert", c.insert_prob, d.insert_prob),
                ] {
                    if v != dv {
                        q.opt(k, &v)?;
                    }
                }
                if c.seed != d.seed {
                    q.opt("seed", &c.seed)?;
                }
                if c.buffer_limit != d.buffer_limit {
                    q.opt("buffer", &c.buffer_limit)?;
                }
                Ok(())
            }
        }
    }
}

/// Parses link parameters in the query form of `sim://` addresses, e.g.
/// `rate=11520&latency=1ms&drop=0.0001&seed=7` (a leading `?` is allowed; empty = defaults).
/// Handy for a CLI flag describing a link.
///
/// ```
/// use netcore_runtime::transport::SimConfig;
/// let c: SimConfig = "rate=1000&latency=5ms&flip=0.01".parse()?;
/// assert_eq!(c.rate_bytes_per_sec, 1000);
/// assert_eq!(c.to_string(), "rate=1000&latency=5ms&flip=0.01");
/// # Ok::<(), netcore_runtime::transport::AddrParseError>(())
/// ```
impl FromStr for SimConfig {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, AddrParseError> {
        let q = s.trim().trim_start_matches('?');
        match format!("sim://link?{q}").parse::<TransportAddr>()? {
            TransportAddr::Sim(a) => Ok(a.config),
            _ => Err(AddrParseError::MissingScheme {
                input: s.to_owned(),
            }),
        }
    }
}

/// Writes the query form parsed by [`SimConfig`]'s `FromStr` (only non-default values).
impl fmt::Display for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = TransportAddr::Sim(SimAddr::new("link", self.clone())).to_string();
        let query = full.strip_prefix("sim://link").unwrap_or("");
        f.write_str(query.strip_prefix('?').unwrap_or(query))
    }
}
