//! The `citecast` command line (defined and dispatched in `citecast::cli`).

use std::process::ExitCode;

use citecast::cli::{run, Cli};
use clap::Parser;

fn main() -> ExitCode {
    // Everything this process creates (store, index, backups, models, server.json) holds
    // customer records or secrets: readable by the owner only, whatever the caller's umask.
    #[cfg(unix)]
    // SAFETY: umask only sets this process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CITECAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
