//! The `spool` binary: `spool serve`, and `spool exec` (the Codex command
//! line, as a client of a running server).

use anyhow::Context;
use clap::{Parser, Subcommand};
use spool_server::cli::exec::{self, ExecArgs};
use spool_server::config::MigrateConfig;
use spool_server::{App, ServeConfig};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// spool: durable, replayable agent runs behind the OpenAI Responses API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API.
    Serve(ServeConfig),
    /// Bring the database's schema up to date, and exit (`spool serve`
    /// does this too as it starts).
    Migrate(MigrateConfig),
    /// Run one turn on a spool server, as `codex exec` does (the Codex
    /// SDKs drive it unmodified).
    Exec(ExecArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => {
            // Only the server logs: `exec`'s stdout is its output.
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_env("SPOOL_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .init();
            let app = App::build(&config).await?;
            let addr = app.local_addr().context("no local address")?;
            tracing::info!("spool listening on http://{addr} (API at http://{addr}/v1)");
            app.run_until_stopped(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(config) => {
            spool_server::app::migrate(&config.database_url).await?;
            println!("{}: the schema is up to date", redact(&config.database_url));
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec(args) => Ok(exec::run(args).await),
    }
}

/// A database URL without its password, to print.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
