//! `netcore serve ADDR`: a server with built-in routes for testing and benchmarks.
//!
//! The routes are dispatched by a small loop over `Pipe::accept` (one task per message):
//! the app layer's `Endpoint`/`Router` was not on main when this was written. Moving the
//! handlers onto it changes nothing on the wire.

use bytes::Bytes;
use netcore_core::{MessageHead, Urgency};
use netcore_runtime::transport::{listen, TransportAddr, TransportError};
use netcore_runtime::{Body, IncomingMessage, Pipe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::conn::{parse_addr, LinkOpts};
use crate::exit::{fail, ExitKind};
use crate::files::FileStore;
use crate::proto::{self, HandlerError};
use crate::schema_routes::TypedRoutes;
use crate::util::{fill_pseudo_random, parse_size};

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

/// What every handler can reach.
pub struct Server {
    files: Option<FileStore>,
    typed: Option<TypedRoutes>,
    max_generate: u64,
    started: Instant,
}

impl Server {
    fn route_names(&self) -> Vec<String> {
        let mut r: Vec<String> = [
            proto::ECHO,
            proto::DISCARD,
            proto::GENERATE,
            proto::TIME,
            proto::ROUTES,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.files.is_some() {
            for f in [
                proto::FILES_LIST,
                proto::FILES_STAT,
                proto::FILES_GET,
                proto::FILES_PUT,
            ] {
                r.push(f.to_string());
            }
        }
        if let Some(t) = &self.typed {
            r.extend(t.route_names());
        }
        r
    }
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
    let server = Arc::new(Server {
        files,
        typed,
        max_generate: args.max_generate,
        started: Instant::now(),
    });
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
    let link = args.link.clone();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            t = listener.accept() => match t {
                Ok(t) => {
                    let peer = t.info().peer.clone().unwrap_or_else(|| t.info().kind.to_string());
                    let config = link.config_for(&t);
                    let pipe = Pipe::new(t, config);
                    conns.spawn(serve_connection(server.clone(), pipe, peer));
                    if args.once {
                        break;
                    }
                }
                Err(TransportError::ListenerExhausted { .. }) => break,
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("netcore serve: interrupted, closing");
                return Ok(());
            }
        }
    }
    // Serial/stdio (one connection) or --once: serve until it ends.
    tokio::select! {
        _ = async { while conns.join_next().await.is_some() {} } => {}
        _ = tokio::signal::ctrl_c() => eprintln!("netcore serve: interrupted, closing"),
    }
    Ok(())
}

async fn serve_connection(server: Arc<Server>, pipe: Pipe, peer: String) {
    let id = pipe.id();
    match pipe.ready().await {
        Ok(_) => eprintln!("netcore serve: {id} from {peer} open"),
        Err(e) => {
            eprintln!("netcore serve: {id} from {peer} failed: {e}");
            return;
        }
    }
    while let Some(msg) = pipe.accept().await {
        tokio::spawn(handle(server.clone(), pipe.clone(), msg));
    }
    match pipe.closed().await {
        None => eprintln!("netcore serve: {id} closed"),
        Some(e) => eprintln!("netcore serve: {id} ended: {e}"),
    }
}

async fn handle(server: Arc<Server>, pipe: Pipe, msg: IncomingMessage) {
    let id = msg.id;
    let route = msg.route().to_string();
    tracing::debug!(%route, ?id, "request");
    let result = dispatch(&server, &pipe, msg).await;
    if let Err(e) = result {
        tracing::debug!(%route, kind = e.kind.as_str(), message = %e.message, "error reply");
        if let Err(send) = proto::reply_error(&pipe, id, &e).await {
            tracing::debug!(error = %send, "error reply not sent");
        }
    }
}

async fn dispatch(server: &Server, pipe: &Pipe, msg: IncomingMessage) -> Result<(), HandlerError> {
    let id = msg.id;
    match msg.route() {
        proto::ECHO => {
            let len = msg.head.total_len;
            let body = crate::util::Capped::new(msg.body, crate::util::BODY_READ);
            pipe.reply(id, Body::stream(body, len)).await?;
        }
        proto::DISCARD => {
            let mut body = msg.body;
            let mut n = 0u64;
            while let Some(c) = body.chunk().await? {
                n += c.len() as u64;
            }
            pipe.reply(id, n.to_string()).await?;
        }
        proto::GENERATE => generate(server, pipe, msg).await?,
        proto::TIME => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let v = serde_json::json!({
                "unix_ms": now.as_millis() as u64,
                "uptime_ms": server.started.elapsed().as_millis() as u64,
            });
            pipe.reply(id, v.to_string()).await?;
        }
        proto::ROUTES => {
            let v = serde_json::json!(server.route_names());
            pipe.reply(id, v.to_string()).await?;
        }
        r if r.starts_with("files/") => match &server.files {
            Some(store) => store.handle(pipe, msg).await?,
            None => {
                return Err(HandlerError::not_found(
                    "files/* routes need `netcore serve --dir DIR`",
                ))
            }
        },
        r if r.starts_with("typed/") => match &server.typed {
            Some(t) => {
                let route = r.to_string();
                let body = msg.collect(16 << 20).await?;
                let out = t.handle(&route, &body)?;
                pipe.reply(id, out).await?;
            }
            None => {
                return Err(HandlerError::not_found(
                    "typed/* routes need `netcore serve --schema FILE`",
                ))
            }
        },
        other => {
            return Err(HandlerError::not_found(format!(
                "no route `{other}`; try `routes` for the list"
            )))
        }
    }
    Ok(())
}

async fn generate(server: &Server, pipe: &Pipe, msg: IncomingMessage) -> Result<(), HandlerError> {
    let id = msg.id;
    let headers = msg.headers();
    let from_header = headers.get_str(proto::H_SIZE).map(str::to_string);
    let body = msg.collect(1024).await?;
    let text = match from_header {
        Some(h) => h,
        None => String::from_utf8_lossy(&body).trim().to_string(),
    };
    if text.is_empty() {
        return Err(HandlerError::bad_request(
            "generate needs a size (body or `size` header), e.g. 64K",
        ));
    }
    let n = parse_size(&text).map_err(HandlerError::bad_request)?;
    if n > server.max_generate {
        return Err(HandlerError::bad_request(format!(
            "{n} bytes is over this server's --max-generate of {}",
            server.max_generate
        )));
    }
    let mut head = MessageHead::reply(id).with_urgency(Urgency::new(5));
    head.total_len = Some(n);
    let mut writer = pipe.start_writer(head, None);
    let mut seed = n ^ 0x9E37_79B9;
    let mut left = n;
    // Pieces below the serial profile's per-message write buffer (see `util::Capped`).
    let mut buf = vec![0u8; crate::util::BODY_READ];
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        fill_pseudo_random(&mut seed, &mut buf[..k]);
        writer.write(Bytes::copy_from_slice(&buf[..k])).await?;
        left -= k as u64;
    }
    writer.finish().await?;
    Ok(())
}
