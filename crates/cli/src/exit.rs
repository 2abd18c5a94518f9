//! Exit codes and error reporting.
//!
//! Like grpcurl, the command tells apart what went wrong by its exit code, so scripts can
//! retry a connection failure but not a remote error.

use netcore_core::MessageError;
use netcore_runtime::PipeError;
use std::fmt;
use std::process::ExitCode;

/// The exit code table shown in `--help`.
#[cfg(test)]
const EXIT_CODES_HELP: &str = exit_codes_help!();

/// What kind of failure ended the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Anything local.
    Failure,
    /// Connecting, the handshake or the connection itself failed.
    Connection,
    /// A deadline passed.
    Timeout,
    /// The peer answered with an error.
    Remote,
    /// A checksum did not match.
    Integrity,
}

impl ExitKind {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Failure => 1,
            ExitKind::Connection => 3,
            ExitKind::Timeout => 4,
            ExitKind::Remote => 5,
            ExitKind::Integrity => 6,
        }
    }
}

/// An error with the exit code it should end the process with.
#[derive(Debug)]
pub struct Failure {
    /// The kind (exit code).
    pub kind: ExitKind,
    /// What happened.
    pub error: anyhow::Error,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&chain_text(&self.error))
    }
}

/// The error and its causes joined with `: `, leaving out a cause whose text the
/// previous message already contains (transport errors repeat their source).
pub fn chain_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

impl std::error::Error for Failure {}

/// Wraps `error` so the process exits with `kind`'s code.
pub fn fail(kind: ExitKind, error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        kind,
        error: error.into(),
    })
}

/// The exit kind a pipe error maps to.
pub fn classify(e: &PipeError) -> ExitKind {
    match e {
        PipeError::TimedOut => ExitKind::Timeout,
        PipeError::Closed(_) | PipeError::Transport(_) => ExitKind::Connection,
        PipeError::Message(m) => match m {
            MessageError::CancelledByPeer(_) | MessageError::Refused | MessageError::Limit(_) => {
                ExitKind::Remote
            }
            MessageError::FrameLost | MessageError::ConnectionClosed(_) => ExitKind::Connection,
            _ => ExitKind::Failure,
        },
        _ => ExitKind::Failure,
    }
}

/// Wraps a pipe error with its exit kind and a context line.
pub fn pipe_fail(context: impl fmt::Display, e: PipeError) -> anyhow::Error {
    let kind = classify(&e);
    fail(kind, anyhow::Error::new(e).context(context.to_string()))
}

/// Prints `e` on stderr and returns the exit code for it.
pub fn report(e: &anyhow::Error) -> ExitCode {
    let (kind, shown) = match e.downcast_ref::<Failure>() {
        Some(f) => (f.kind, chain_text(&f.error)),
        None => (ExitKind::Failure, chain_text(e)),
    };
    eprintln!("error: {shown}");
    ExitCode::from(kind.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_codes_matching_the_help() {
        let kinds = [
            ExitKind::Failure,
            ExitKind::Connection,
            ExitKind::Timeout,
            ExitKind::Remote,
            ExitKind::Integrity,
        ];
        for k in kinds {
            assert!(EXIT_CODES_HELP.contains(&format!("  {}  ", k.code())));
        }
        let mut codes: Vec<u8> = kinds.iter().map(|k| k.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
    }

    #[test]
    fn pipe_errors_are_classified() {
        assert_eq!(classify(&PipeError::TimedOut), ExitKind::Timeout);
        assert_eq!(classify(&PipeError::Closed(None)), ExitKind::Connection);
        assert_eq!(
            classify(&PipeError::Message(MessageError::Refused)),
            ExitKind::Remote
        );
        let e = pipe_fail("calling echo", PipeError::TimedOut);
        assert_eq!(
            e.downcast_ref::<Failure>().map(|f| f.kind),
            Some(ExitKind::Timeout)
        );
    }
}
