//! `netcore serve ADDR`: a server with built-in routes for testing and benchmarks, an
//! app-layer [`netcore::Endpoint`] serving the router of [`crate::builtin`].

use netcore::Endpoint;
use netcore_runtime::transport::{listen, TransportAddr, TransportError};
use netcore_runtime::Pipe;
use std::path::PathBuf;
use std::time::Duration;

use crate::conn::{parse_addr, LinkOpts};
use crate::exit::{fail, ExitKind};
use crate::files::FileStore;
use crate::schema_routes::TypedRoutes;
use crate::util::parse_size;

/// Arguments of `netcore serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Routes:
  echo          replies with the request body (streamed, any size)
  discard       reads the body, replies with its length
  generate      replies with N pseudo-random bytes; N in the body or the `size` header (64K, 10M)
  time          replies with the server clock as JSON
  routes        lists the routes as JSON
  files/list    with --dir: the served files as JSON
  files/stat    with --dir: size and CRC-32C of a file, and the size of a partial upload
  files/get     with --dir: a file from the `offset` header on (resumable download)
  files/put     with --dir: appends to a partial upload at `offset` (resumable upload)
  typed/NAME    with --schema: decodes a NAME message, replies with it re-encoded

Errors are replies with the app layer's `netcore-error: CODE` header and the message as
body: 0x100 NO_ROUTE, 0x104 BAD_REQUEST, 0x108 INTERNAL, 0x110 NOT_FOUND (no such file).

Examples:
  netcore serve tcp://127.0.0.1:7000
  netcore serve tcp://0.0.0.0:7000 --dir ./shared
  netcore serve 'serial:///dev/ttyUSB0?baud=115200' --once
  netcore serve unix:///tmp/netcore.sock --schema sensors.toml")]
pub struct ServeArgs {
    /// Address to listen on (tcp://HOST:PORT, unix:///PATH, serial:///DEV?baud=N, stdio:, tls://...).
    #[arg(value_parser = parse_addr)]
    pub addr: TransportAddr,
    /// Serve this directory for `netcore get` / `netcore send` (files/* routes).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Schema file (JSON or TOML) whose message types become `typed/NAME` routes.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Largest body the `generate` route produces.
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = parse_size)]
    pub max_generate: u64,
    /// Exit when the first connection ends.
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub link: LinkOpts,
}

/// Runs `netcore serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let files = match &args.dir {
        Some(d) => Some(FileStore::open(d).await?),
        None => None,
    };
    let typed = match &args.schema {
        Some(p) => Some(TypedRoutes::load(p)?),
        None => None,
    };
    let endpoint = Endpoint::new(crate::builtin::router(files, typed, args.max_generate));
    let mut listener = listen(&args.addr).await.map_err(|e| {
        fail(
            ExitKind::Connection,
            anyhow::Error::new(e).context("cannot listen"),
        )
    })?;
    let shown = listener
        .local_addr()
        .map_or_else(|| args.addr.to_string(), |a| a.to_string());
    eprintln!("netcore serve: listening on {shown}");
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            t = listener.accept() => match t {
                Ok(t) => {
                    let peer = t.info().peer.clone().unwrap_or_else(|| t.info().kind.to_string());
                    // Finish the replies in hand when the client says goodbye.
                    let pipe = args.link.make_pipe(t, true);
                    endpoint.add_pipe(pipe.clone());
                    // Forget the connections that ended (a long-running server).
                    while conns.try_join_next().is_some() {}
                    conns.spawn(watch(pipe, peer));
                    if args.once {
                        break;
                    }
                }
                Err(TransportError::ListenerExhausted { .. }) => break,
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("netcore serve: interrupted, closing");
                endpoint.stop(Duration::from_secs(2)).await;
                return Ok(());
            }
        }
    }
    // Serial/stdio (one connection) or --once: serve until it ends.
    tokio::select! {
        _ = async { while conns.join_next().await.is_some() {} } => {}
        _ = tokio::signal::ctrl_c() => eprintln!("netcore serve: interrupted, closing"),
    }
    endpoint.stop(Duration::from_secs(2)).await;
    Ok(())
}

/// Reports a connection's start and end on stderr.
async fn watch(pipe: Pipe, peer: String) {
    let id = pipe.id();
    match pipe.ready().await {
        Ok(_) => eprintln!("netcore serve: {id} from {peer} open"),
        Err(e) => {
            eprintln!("netcore serve: {id} from {peer} failed: {e}");
            return;
        }
    }
    match pipe.closed().await {
        None => eprintln!("netcore serve: {id} closed"),
        Some(e) => eprintln!("netcore serve: {id} ended: {e}"),
    }
}
