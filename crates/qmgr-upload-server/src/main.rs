//! `qmgr-upload-server`: receives BITS uploads.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use qmgr_upload_server::{Config, UploadServer, serve};

/// A BITS upload server: receives uploads from Windows BITS, PowerShell, bitsadmin and qmgr.
#[derive(Debug, Parser)]
#[command(version)]
struct Arguments {
    /// The configuration file (TOML; see the README's "Upload server" section).
    #[arg(long, short)]
    config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QMGR_UPLOAD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(&arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("qmgr-upload-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(arguments: &Arguments) -> Result<()> {
    let config = Config::load(&arguments.config)?;
    if arguments.check {
        println!("{}: configuration is valid", arguments.config.display());
        return Ok(());
    }
    // One thread for the network, which also writes each body frame into its partial file
    // while the bytes are in the CPU's cache (see the writer module); password checks and
    // reply commands have threads of their own, and the network alone keeps a core busy
    // only past a few GiB/s. Worker threads handing the connections' readiness to one
    // another cost more CPU per received byte than they could save.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let server = UploadServer::new(config)?;
        tracing::info!(
            "listening on {} with {} open sessions",
            listener.local_addr()?,
            server.session_count()
        );
        serve(server, listener, shutdown_signal()).await
    })
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}
