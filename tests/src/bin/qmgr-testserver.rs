//! Runs the fault-injecting test server for C tests and benchmarks.
//!
//! Prints its base URL (`http://127.0.0.1:PORT`, `http://ADDRESS:PORT` with `--bind`, or
//! `https://` with `--https`) as the only line on stdout, then serves until killed, or until
//! stdin closes with `--exit-on-stdin-eof`. With `--https`, `--ca-file PATH` writes the PEM of the CA to
//! trust before the URL is printed.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;

use qmgr_tests::TestServer;

const USAGE: &str = "usage: qmgr-testserver [--port N | --bind ADDR:PORT [--congestion NAME]] [--https [--ca-file PATH]] [--exit-on-stdin-eof]";

#[derive(Debug, Default)]
struct Options {
    port: u16,
    bind: Option<std::net::SocketAddr>,
    /// The TCP congestion control of the connections (`cubic`, `bbr`, …); with `--bind`.
    congestion: Option<String>,
    https: bool,
    ca_file: Option<PathBuf>,
    exit_on_stdin_eof: bool,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                options.port = value
                    .parse()
                    .map_err(|_| format!("--port: {value:?} is not a port number"))?;
            }
            "--bind" => {
                let value = args.next().ok_or("--bind needs an address")?;
                options.bind = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--bind: {value:?} is not ADDRESS:PORT"))?,
                );
            }
            "--congestion" => {
                options.congestion = Some(args.next().ok_or("--congestion needs a name")?);
            }
            "--https" => options.https = true,
            "--ca-file" => {
                options.ca_file = Some(args.next().ok_or("--ca-file needs a path")?.into());
            }
            "--exit-on-stdin-eof" => options.exit_on_stdin_eof = true,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if options.congestion.is_some() && options.bind.is_none() {
        return Err("--congestion needs --bind".into());
    }
    if options.bind.is_some() && options.https {
        return Err("--bind serves plain HTTP only".into());
    }
    if options.ca_file.is_some() && !options.https {
        return Err("--ca-file needs --https".into());
    }
    Ok(options)
}

fn start(options: &Options) -> Result<TestServer, String> {
    let started = if let Some(address) = options.bind {
        std::net::TcpListener::bind(address).and_then(|listener| {
            if let Some(name) = &options.congestion {
                // Accepted connections inherit the listener's congestion control.
                rustix::net::sockopt::set_tcp_congestion(&listener, name)?;
            }
            TestServer::start_on_listener(listener)
        })
    } else if options.https {
        TestServer::start_https_on_port(options.port)
    } else {
        TestServer::start_on_port(options.port)
    };
    let server = started.map_err(|error| match options.bind {
        Some(address) => format!("cannot serve on {address}: {error}"),
        None => format!("cannot serve on 127.0.0.1:{}: {error}", options.port),
    })?;
    if let Some(ca_file) = &options.ca_file {
        std::fs::write(ca_file, server.ca_pem()).map_err(|error| {
            format!(
                "cannot write the CA certificate to {}: {error}",
                ca_file.display()
            )
        })?;
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{}", server.base_url())
        .and_then(|()| stdout.flush())
        .map_err(|error| format!("cannot write the URL to stdout: {error}"))?;
    Ok(server)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse_options(args.into_iter()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("qmgr-testserver: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match start(&options) {
        Ok(server) => server,
        Err(message) => {
            eprintln!("qmgr-testserver: {message}");
            return ExitCode::FAILURE;
        }
    };
    if options.exit_on_stdin_eof {
        // Any input is ignored; only its end matters. A read error ends the wait too.
        let _ = io::copy(&mut io::stdin().lock().by_ref(), &mut io::sink());
        drop(server);
        return ExitCode::SUCCESS;
    }
    loop {
        // Signals end the process; nothing else is left to do.
        thread::park();
    }
}
