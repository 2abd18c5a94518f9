//! The `netcore` command: a demo of many conversations over one slow wire, a test server
//! with built-in routes, a one-shot client, file transfer with resume, and a link
//! simulator proxy.
//!
//! Run without arguments it plays the demo (`netcore demo`).

/// The exit code table of `call`, `send` and `get` (a macro so `concat!` can use it).
macro_rules! exit_codes_help {
    () => {
        "Exit codes:
  0  success
  1  local failure (bad argument value, unreadable file, ...)
  2  usage error (unknown option, missing argument)
  3  connection failure (cannot connect, handshake failed, connection lost)
  4  timeout (--timeout passed before the reply arrived)
  5  remote error (the server answered with an error or refused the request)
  6  integrity failure (checksum mismatch after a transfer)"
    };
}

mod bench;
mod builtin;
mod call;
mod conn;
mod demo;
mod exit;
mod files;
mod link;
mod proto;
mod schema_routes;
mod serve;
mod transfer;
mod util;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc instead of the system allocator: a connection allocates small objects on
/// one thread (driver) that another (application) frees, which glibc's malloc handles
/// slowly; with mimalloc, small-message throughput is ~1.6x (BENCHMARKS.md,
/// "pipelined"). Baselines in `netcore bench` run in this process with the same
/// allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Many conversations over one wire.
///
/// Without a subcommand, `netcore` runs the demo: a bulk transfer and a stream of small
/// requests sharing one simulated 115 200-baud serial link, then loopback TCP.
#[derive(Debug, Parser)]
#[command(
    name = "netcore",
    version,
    about = "Many conversations over one wire: demo, test server, client, file transfer, link simulator",
    after_help = concat!(
        "Examples:\n",
        "  netcore                                   # the demo (same as `netcore demo`)\n",
        "  netcore serve tcp://127.0.0.1:7000 --dir ./shared\n",
        "  netcore call tcp://127.0.0.1:7000 echo 'hello'\n",
        "  netcore get tcp://127.0.0.1:7000 big.iso\n",
        "  netcore link tcp://127.0.0.1:7001 tcp://127.0.0.1:7000 --rate 11520 --drop 1e-4\n",
        "\nAddresses: tcp://HOST:PORT, tls://HOST:PORT?ca=..., unix:///PATH,\n",
        "  serial:///dev/ttyUSB0?baud=115200, stdio:\n",
        "\nLogging: -v (info), -vv (debug), -vvv (trace), or RUST_LOG=netcore_runtime=debug\n",
    )
)]
struct Cli {
    /// More log output on stderr (repeat for more); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Option<Command>,

    /// Demo options, for `netcore` without a subcommand.
    #[command(flatten)]
    demo: demo::DemoArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show many conversations sharing one slow link (the default command).
    Demo(demo::DemoArgs),
    /// Serve built-in test routes (echo, discard, generate, time, files) on an address.
    Serve(serve::ServeArgs),
    /// Send one request and print the reply.
    Call(call::CallArgs),
    /// Upload a file to a `netcore serve --dir` server, resuming a partial upload.
    Send(transfer::SendArgs),
    /// Download a file from a `netcore serve --dir` server, resuming a partial download.
    Get(transfer::GetArgs),
    /// Proxy between two addresses through a simulated bad link (rate, latency, errors).
    Link(link::LinkArgs),
    /// Run the benchmark scenarios (results.json and PNG plots).
    Bench(bench::BenchArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// Arguments of `netcore completions`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  netcore completions bash > ~/.local/share/bash-completion/completions/netcore\n  netcore completions zsh > ~/.zfunc/_netcore"
)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::new(s),
        _ => EnvFilter::new(default),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2)
        .try_init();
}

/// Whether no demo option was given at the top level.
fn demo_args_are_default(args: &demo::DemoArgs) -> bool {
    Cli::try_parse_from(["netcore"]).is_ok_and(|d| d.demo == *args)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    if cli.command.is_some() && !demo_args_are_default(&cli.demo) {
        eprintln!("error: demo options go without a subcommand or after `netcore demo`");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ExitKind::Failure.code());
        }
    };
    let result = runtime.block_on(async move {
        let done = match cli.command {
            None => demo::run(cli.demo).await,
            Some(Command::Bench(a)) => return bench::run(a).await,
            Some(Command::Demo(a)) => demo::run(a).await,
            Some(Command::Serve(a)) => serve::run(a).await,
            Some(Command::Call(a)) => call::run(a).await,
            Some(Command::Send(a)) => transfer::run_send(a).await,
            Some(Command::Get(a)) => transfer::run_get(a).await,
            Some(Command::Link(a)) => link::run(a).await,
            Some(Command::Completions(a)) => {
                let mut cmd = Cli::command();
                let mut script = Vec::new();
                clap_complete::generate(a.shell, &mut cmd, "netcore", &mut script);
                util::print_stdout(&String::from_utf8_lossy(&script)).map_err(anyhow::Error::from)
            }
        };
        done.map(|()| ExitCode::SUCCESS)
    });
    // Handler tasks may still hold files or sockets: do not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(e) => exit::report(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_demo() {
        let cli = Cli::try_parse_from(["netcore"]).expect("parses");
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["netcore", "-v", "demo", "--quiet"]).expect("parses");
        assert!(matches!(cli.command, Some(Command::Demo(_))));
        assert!(demo_args_are_default(&cli.demo));
        let cli = Cli::try_parse_from(["netcore", "--quiet"]).expect("parses");
        assert!(cli.command.is_none() && !demo_args_are_default(&cli.demo));
    }
}
