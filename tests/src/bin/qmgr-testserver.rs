//! Runs the fault-injecting test server for C tests and benchmarks.
//!
//! Prints its base URL (`http://127.0.0.1:PORT`) as the only line on stdout, then serves
//! until killed, or until stdin closes with `--exit-on-stdin-eof`.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::thread;

use qmgr_tests::TestServer;

const USAGE: &str = "usage: qmgr-testserver [--port N] [--exit-on-stdin-eof]";

#[derive(Debug, Default)]
struct Options {
    port: u16,
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
            "--exit-on-stdin-eof" => options.exit_on_stdin_eof = true,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(options)
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
    let server = match TestServer::start_on_port(options.port) {
        Ok(server) => server,
        Err(error) => {
            eprintln!(
                "qmgr-testserver: cannot listen on 127.0.0.1:{}: {error}",
                options.port
            );
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{}", server.base_url()).and_then(|()| stdout.flush()) {
        eprintln!("qmgr-testserver: cannot write the URL to stdout: {error}");
        return ExitCode::FAILURE;
    }
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
