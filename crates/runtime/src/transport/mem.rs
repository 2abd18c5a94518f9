//! In-memory transports: a connected pair, and named in-process listeners used by the
//! `mem://NAME` and `sim://NAME` addresses.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use tokio::sync::mpsc;

use super::{LinkHint, Transport, TransportError, TransportInfo, TransportKind};

/// Two connected in-memory transports; each direction buffers up to `buffer` bytes
/// (at least 1) before the writer waits.
///
/// ```
/// use netcore_runtime::transport::mem_pair;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (mut a, mut b) = mem_pair(1024);
/// a.write_all(b"hello").await?;
/// let mut buf = [0; 5];
/// b.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"hello");
/// # Ok(()) }
/// ```
pub fn mem_pair(buffer: usize) -> (Transport, Transport) {
    let (x, y) = tokio::io::duplex(buffer.max(1));
    let info = |me: &str, peer: &str| {
        TransportInfo::new(TransportKind::Mem)
            .with_local(me)
            .with_peer(peer)
            .with_link_hint(LinkHint::reliable())
    };
    (
        Transport::new(x, info("mem:a", "mem:b")),
        Transport::new(y, info("mem:b", "mem:a")),
    )
}

/// Pending connections a named in-process listener queues before connectors wait.
const BACKLOG: usize = 64;

type Registry = Mutex<HashMap<String, mpsc::Sender<Transport>>>;

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn key(scheme: &str, name: &str) -> String {
    format!("{scheme}://{name}")
}

/// A named in-process listener; unregisters its name when dropped.
pub(crate) struct InProcListener {
    key: String,
    rx: mpsc::Receiver<Transport>,
}

impl InProcListener {
    pub(crate) fn bind(scheme: &'static str, name: &str) -> Result<Self, TransportError> {
        let key = key(scheme, name);
        let mut map = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&key).is_some_and(|tx| !tx.is_closed()) {
            return Err(TransportError::NameInUse {
                name: name.to_owned(),
            });
        }
        let (tx, rx) = mpsc::channel(BACKLOG);
        map.insert(key.clone(), tx);
        Ok(InProcListener { key, rx })
    }

    pub(crate) async fn accept(&mut self) -> Result<Transport, TransportError> {
        self.rx
            .recv()
            .await
            .ok_or_else(|| TransportError::ListenerExhausted {
                addr: self.key.clone(),
            })
    }
}

impl Drop for InProcListener {
    fn drop(&mut self) {
        // `bind` never replaces an open entry, so once our receiver is closed the entry
        // under our key is ours (or already gone): remove it if its channel is closed.
        self.rx.close();
        let mut map = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&self.key).is_some_and(|tx| tx.is_closed()) {
            map.remove(&self.key);
        }
    }
}

/// Hands `server_end` to the listener named `name` and returns once it is queued.
pub(crate) async fn deliver(
    scheme: &'static str,
    name: &str,
    server_end: Transport,
) -> Result<(), TransportError> {
    let missing = || TransportError::NoSuchListener {
        scheme,
        name: name.to_owned(),
    };
    let tx = {
        let map = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key(scheme, name)).cloned().ok_or_else(missing)?
    };
    tx.send(server_end).await.map_err(|_| missing())
}
