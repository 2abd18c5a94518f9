//! Opening connections from the command line: address parsing, link profile override and
//! clear errors.

use anyhow::Context as _;
use clap::ValueEnum;
use netcore_runtime::transport::{self, LinkProfile, Transport, TransportAddr};
use netcore_runtime::{Pipe, PipeConfig};
use std::time::Duration;

use crate::exit::{fail, ExitKind};

/// Which link profile to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Profile {
    /// From the address: serial ports use `serial`, everything else `tcp`.
    #[default]
    Auto,
    /// Reliable stream: large frames, no checksum.
    Tcp,
    /// Lossy line: COBS + CRC-32C frames, small frames, paced writes.
    Serial,
}

/// Link options shared by the commands that open connections.
#[derive(Debug, Clone, clap::Args, Default)]
pub struct LinkOpts {
    /// Link profile; `serial` is needed over a lossy path such as `netcore link --drop`.
    /// Both ends must use the same profile.
    #[arg(long, value_enum, default_value_t = Profile::Auto)]
    pub profile: Profile,
    /// Link rate in bytes/s for the serial profile's frame size and pacing
    /// (default: from the address' baud rate, else 11520).
    #[arg(long, value_name = "BYTES_PER_S")]
    pub link_rate: Option<u64>,
    /// Speak Python Netcore 0.1.3's wire format (LSO packets) instead of netcore's, to
    /// serve or call unchanged Python peers (docs/LEGACY.md). The profile options do not
    /// apply: that format has no framing choices.
    #[arg(long)]
    pub legacy: bool,
}

impl LinkOpts {
    /// The pipe settings for `transport` under these options.
    pub fn config_for(&self, transport: &Transport) -> PipeConfig {
        let hint = transport.info().link_hint;
        let hinted_rate = hint.and_then(|h| h.rate_bytes_per_sec);
        let serial = |rate: Option<u64>| PipeConfig::serial(rate.unwrap_or(11_520).max(100));
        match self.profile {
            Profile::Auto => match (self.link_rate, hint) {
                (Some(r), Some(h)) if h.profile == LinkProfile::Serial => serial(Some(r)),
                _ => PipeConfig::for_transport(transport.info()),
            },
            Profile::Tcp => PipeConfig {
                pace_bytes_per_sec: self.link_rate,
                ..PipeConfig::default()
            },
            Profile::Serial => serial(self.link_rate.or(hinted_rate)),
        }
    }
}

impl LinkOpts {
    /// Starts a connection over `transport` in the wire mode and profile chosen.
    /// `manual_close` (servers) lets the application finish its replies when the peer
    /// says goodbye.
    pub fn make_pipe(&self, transport: Transport, manual_close: bool) -> Pipe {
        if self.legacy {
            return Pipe::legacy(transport, netcore_runtime::legacy::LegacyOptions::default());
        }
        let mut config = self.config_for(&transport);
        config.manual_close = manual_close;
        Pipe::new(transport, config)
    }
}

/// Closes `pipe` gracefully and waits (briefly) until the peer has seen it.
pub async fn finish(pipe: Pipe) {
    pipe.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), pipe.closed()).await;
}

/// Parses a transport address with a helpful error.
pub fn parse_addr(s: &str) -> Result<TransportAddr, String> {
    s.parse::<TransportAddr>().map_err(|e| {
        format!(
            "{e}\n  address forms: tcp://HOST:PORT, tls://HOST:PORT, unix:///PATH, \
             serial:///dev/ttyUSB0?baud=115200, stdio:"
        )
    })
}

/// Connects to `addr` and waits for the handshake, within `timeout`.
pub async fn connect(
    addr: &TransportAddr,
    opts: &LinkOpts,
    timeout: Duration,
) -> anyhow::Result<Pipe> {
    let work = async {
        let t = transport::connect(addr).await?;
        let pipe = opts.make_pipe(t, false);
        pipe.ready()
            .await
            .with_context(|| format!("handshake with {addr} failed"))?;
        Ok::<_, anyhow::Error>(pipe)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(fail(ExitKind::Connection, e)),
        Err(_) => Err(fail(
            ExitKind::Connection,
            anyhow::anyhow!(
                "no handshake with {addr} within {:?} (is a netcore peer with the same --profile there?)",
                timeout
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_help() {
        assert!(parse_addr("tcp://127.0.0.1:7000").is_ok());
        let e = parse_addr("http://x").unwrap_err();
        assert!(e.contains("address forms"), "{e}");
    }

    #[tokio::test]
    async fn profile_override_picks_serial_settings() {
        let (a, _b) = transport::mem_pair(64);
        let opts = LinkOpts {
            profile: Profile::Serial,
            link_rate: Some(2000),
            legacy: false,
        };
        let cfg = opts.config_for(&a);
        assert_eq!(cfg.pace_bytes_per_sec, Some(2000));
        assert_eq!(cfg.core.profile, netcore_core::LinkProfile::Serial);
        let auto = LinkOpts::default().config_for(&a);
        assert_eq!(auto.core.profile, netcore_core::LinkProfile::Tcp);
    }

    #[tokio::test]
    async fn legacy_flag_speaks_the_python_wire_format() {
        let (a, b) = transport::mem_pair(1 << 16);
        let opts = LinkOpts {
            legacy: true,
            ..LinkOpts::default()
        };
        let client = opts.make_pipe(a, false);
        let server = opts.make_pipe(b, true);
        // No handshake in that format: both are ready at once, and a request goes
        // through as a Python Netcore mission.
        client.ready().await.unwrap();
        let (reply, _) = tokio::join!(client.request("echo", "hi"), async {
            let m = server.accept().await.unwrap();
            let id = m.id;
            let body = m.collect(100).await.unwrap();
            server.reply(id, body).await.unwrap();
        });
        assert_eq!(reply.unwrap().collect(100).await.unwrap(), "hi");
    }
}
