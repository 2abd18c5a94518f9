//! [`BlockingListener`]: accepts connections on one shared background runtime.

use super::*;

/// A blocking listener: accepts connections on an address and hands out
/// [`BlockingPipe`]s that share its background runtime.
///
/// ```
/// use netcore_runtime::blocking::{BlockingListener, BlockingPipe};
/// let listener = BlockingListener::bind(&"tcp://127.0.0.1:0".parse().unwrap())?;
/// let addr = listener.local_addr().unwrap();
/// let t = std::thread::spawn(move || BlockingPipe::connect(&addr));
/// let server_side = listener.accept()?;
/// let client = t.join().unwrap()?;
/// client.send("hello", "world")?.wait()?;
/// assert_eq!(server_side.accept().unwrap().route(), "hello");
/// # Ok::<(), netcore_runtime::PipeError>(())
/// ```
pub struct BlockingListener {
    listener: tokio::sync::Mutex<transport::Listener>,
    local: Option<TransportAddr>,
    config: Option<PipeConfig>,
    rt: Arc<Rt>,
}

impl std::fmt::Debug for BlockingListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingListener")
            .field("local", &self.local)
            .finish()
    }
}

impl BlockingListener {
    /// Listens on `addr` (`tcp://127.0.0.1:0` picks a free port).
    pub fn bind(addr: &TransportAddr) -> Result<BlockingListener, PipeError> {
        let rt = Rt::new()?;
        let listener = rt.block_on(transport::listen(addr))??;
        let local = listener.local_addr();
        Ok(BlockingListener {
            listener: tokio::sync::Mutex::new(listener),
            local,
            config: None,
            rt,
        })
    }

    /// Uses `config` for accepted connections instead of the transport's defaults.
    pub fn with_config(mut self, config: PipeConfig) -> BlockingListener {
        self.config = Some(config);
        self
    }

    /// The bound address (with the real port).
    pub fn local_addr(&self) -> Option<TransportAddr> {
        self.local.clone()
    }

    /// Waits for the next connection (the handshake runs in the background).
    pub fn accept(&self) -> Result<BlockingPipe, PipeError> {
        let config = self.config.clone();
        let pipe = self.rt.block_on(async {
            let t = self.listener.lock().await.accept().await?;
            Ok::<Pipe, PipeError>(match config {
                Some(c) => Pipe::new(t, c),
                None => Pipe::with_defaults(t),
            })
        })??;
        Ok(BlockingPipe::with_rt(self.rt.clone(), pipe))
    }

    /// Like [`accept`](Self::accept), waiting at most `timeout`.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<BlockingPipe, PipeError> {
        let config = self.config.clone();
        let pipe = self.rt.block_on_timeout(timeout, async {
            let t = self.listener.lock().await.accept().await?;
            Ok::<Pipe, PipeError>(match config {
                Some(c) => Pipe::new(t, c),
                None => Pipe::with_defaults(t),
            })
        })?;
        Ok(BlockingPipe::with_rt(self.rt.clone(), pipe))
    }
}
