//! Per-connection configuration: link profile, limits, windows and timers.

use crate::link::LinkProfile;
use core::time::Duration;

/// Configuration of one side of a connection. The limits are what *this* side accepts
/// and announces in its HELLO; the peer's limits bound what this side sends.
///
/// ```
/// use netcore_core::Config;
/// use core::time::Duration;
/// let tcp = Config::tcp();
/// assert_eq!(tcp.max_frame, 64 * 1024);
/// // A 115 200-baud line moves ~11 520 bytes/s; 20 ms of it is ~230 bytes per frame.
/// let serial = Config::serial_for_link(11_520, Duration::from_millis(20));
/// assert_eq!(serial.send_frame, 230);
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// Link profile; both sides must use the same.
    pub profile: LinkProfile,
    /// Largest frame payload accepted from the peer.
    pub max_frame: usize,
    /// Payload size of the frames this side sends (capped by the peer's `max_frame`).
    /// Smaller frames mean less head-of-line delay, larger ones less overhead.
    pub send_frame: usize,
    /// Largest message body accepted, `None` for no limit (memory stays bounded by the
    /// windows either way).
    pub max_message: Option<u64>,
    /// Largest route + metadata accepted in one START.
    pub max_metadata: usize,
    /// Concurrent incoming messages accepted.
    pub max_incoming: u64,
    /// Interned routes kept for the peer.
    pub max_routes: u64,
    /// Initial per-message receive window: body bytes one message may have buffered
    /// here unread. The receiver's body memory is bounded by `max_incoming` times the
    /// per-message window (initial, or grown up to `max_message_window` while the
    /// application keeps reading fast).
    pub message_window: u64,
    /// Initial connection window: body bytes the peer may have in flight towards us.
    /// Its credit comes back as bytes arrive, so unread messages never starve others.
    pub connection_window: u64,
    /// Hard cap the per-message window may grow to.
    pub max_message_window: u64,
    /// Hard cap the connection window may grow to; small keeps queues (and the wait of
    /// an urgent message behind bulk data) short.
    pub max_connection_window: u64,
    /// Body bytes buffered per outgoing message before `write` reports `Blocked`.
    pub send_buffer: usize,
    /// Outgoing messages that may be queued at once.
    pub max_queued_outgoing: usize,
    /// Send a PING after this long without receiving anything; `None` disables.
    pub keepalive: Option<Duration>,
    /// Close with `TimedOut` after this long without receiving anything.
    pub idle_timeout: Duration,
    /// Fail if the peer's HELLO has not arrived after this long.
    pub handshake_timeout: Duration,
    /// After a graceful close began, abort if messages are still in flight after this.
    pub drain_timeout: Duration,
    /// Serial: resend HELLO at this interval until the peer confirms it.
    pub hello_retry: Duration,
    /// Session number sent in HELLO; give each connection attempt a new one (serial
    /// peers detect a restart by it).
    pub session: u64,
    /// Serial: how many sent link frames are remembered to attribute NACKs.
    pub link_history: usize,
}

impl Config {
    /// Defaults for reliable streams: 64 KiB frames both ways; 512 KiB in flight,
    /// growing up to 16 MiB where the path's bandwidth-delay product needs it (a window
    /// used up within two of the lowest measured round trips doubles); 256 KiB unread
    /// per message growing to 4 MiB; 128 concurrent messages. The small start keeps
    /// what sits in socket buffers ahead of an urgent message short on fast local
    /// links. A 64 KiB frame lasts ~50 µs on loopback but ~50 ms on a 10 Mbit/s line:
    /// lower `send_frame` for slow links (the runtime does when it knows the link
    /// rate).
    pub fn tcp() -> Config {
        Config {
            profile: LinkProfile::Tcp,
            max_frame: 64 * 1024,
            send_frame: 64 * 1024,
            max_message: None,
            max_metadata: 16 * 1024,
            max_incoming: 128,
            max_routes: 256,
            message_window: 256 * 1024,
            connection_window: 512 * 1024,
            max_message_window: 4 * 1024 * 1024,
            max_connection_window: 16 * 1024 * 1024,
            send_buffer: 256 * 1024,
            max_queued_outgoing: 65_536,
            keepalive: Some(Duration::from_secs(15)),
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            hello_retry: Duration::from_millis(500),
            session: 0,
            link_history: 4096,
        }
    }

    /// Defaults for a lossy serial line: 256-byte frames, small windows.
    pub fn serial() -> Config {
        Config {
            profile: LinkProfile::Serial,
            max_frame: 1024,
            send_frame: 256,
            max_metadata: 512,
            max_incoming: 32,
            max_routes: 64,
            message_window: 4 * 1024,
            connection_window: 8 * 1024,
            max_message_window: 32 * 1024,
            max_connection_window: 64 * 1024,
            send_buffer: 4 * 1024,
            keepalive: Some(Duration::from_secs(2)),
            idle_timeout: Duration::from_secs(10),
            hello_retry: Duration::from_millis(250),
            ..Config::tcp()
        }
    }

    /// Serial defaults with the frame size derived from a latency budget: a frame takes
    /// at most `budget` on a link moving `bytes_per_sec`, so an urgent message waits at
    /// most about that long behind a bulk transfer. Clamped to 32..=1024 bytes.
    pub fn serial_for_link(bytes_per_sec: u64, budget: Duration) -> Config {
        let frame = (bytes_per_sec as u128 * budget.as_micros() / 1_000_000) as usize;
        let frame = frame.clamp(32, 1024);
        Config {
            send_frame: frame,
            max_frame: frame.max(1024),
            ..Config::serial()
        }
    }

    /// Defaults for `profile`.
    pub fn for_profile(profile: LinkProfile) -> Config {
        match profile {
            LinkProfile::Tcp => Config::tcp(),
            LinkProfile::Serial => Config::serial(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::tcp()
    }
}
