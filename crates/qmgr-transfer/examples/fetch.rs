//! Downloads URLs with the transfer engine, as a yardstick against curl and aria2.
//!
//! ```text
//! fetch [--parallel N] [--limit BYTES_PER_SEC] URL... --dir DIR
//! ```
//!
//! Each URL is saved in DIR under its last path segment. Prints each file's size and the
//! total bytes and elapsed time; exits 1 if any download failed.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use qmgr_transfer::{
    Engine, EngineConfig, EngineEvent, Overwrite, TransferId, TransferRequest, discard, finalize,
};

struct Options {
    parallel: usize,
    limit: Option<u64>,
    urls: Vec<String>,
    dir: PathBuf,
}

const USAGE: &str = "usage: fetch [--parallel N] [--limit BYTES_PER_SEC] URL... --dir DIR";

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut parallel = 1;
    let mut limit = None;
    let mut urls = Vec::new();
    let mut dir = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--parallel" => {
                parallel = value("--parallel")?
                    .parse()
                    .map_err(|_| "--parallel takes a positive number")?;
                if parallel == 0 {
                    return Err("--parallel takes a positive number".to_owned());
                }
            }
            "--limit" => {
                let bytes = value("--limit")?
                    .parse()
                    .map_err(|_| "--limit takes bytes per second")?;
                limit = Some(bytes);
            }
            "--dir" => dir = Some(PathBuf::from(value("--dir")?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            url => urls.push(url.to_owned()),
        }
    }
    let dir = dir.ok_or("--dir is required")?;
    if urls.is_empty() {
        return Err("no URL given".to_owned());
    }
    Ok(Options {
        parallel,
        limit,
        urls,
        dir,
    })
}

/// The last segment of the URL's path, or `download` when it has none.
fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() && name.contains(|c| c != '.') => name.to_owned(),
        _ => "download".to_owned(),
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("fetch: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("fetch: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Downloads everything; true if every file arrived.
fn run(options: &Options) -> Result<bool, String> {
    let config = EngineConfig {
        max_connections_per_host: options.parallel,
        global_limit: options.limit,
        ..EngineConfig::default()
    };
    let (engine, events) = Engine::start(config).map_err(|error| error.to_string())?;
    let started = Instant::now();
    let mut waiting: VecDeque<&String> = options.urls.iter().collect();
    // Destination, and the temporary file once the engine names it.
    let mut running: HashMap<TransferId, (PathBuf, Option<PathBuf>)> = HashMap::new();
    let mut total_bytes = 0_u64;
    let mut all_ok = true;
    loop {
        while running.len() < options.parallel {
            let Some(url) = waiting.pop_front() else {
                break;
            };
            let destination = options.dir.join(file_name_of(url));
            match engine.submit(TransferRequest::new(url.as_str(), &destination)) {
                Ok(id) => {
                    running.insert(id, (destination, None));
                }
                Err(error) => {
                    eprintln!("{url}: {error}");
                    all_ok = false;
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let event = events
            .recv()
            .map_err(|_| "the engine stopped unexpectedly".to_owned())?;
        match event {
            EngineEvent::Started { id, temp_path } => {
                if let Some((_, temp)) = running.get_mut(&id) {
                    *temp = Some(temp_path);
                }
            }
            EngineEvent::Completed {
                id,
                temp_path,
                bytes,
                ..
            } => {
                let (destination, _) = running.remove(&id).unwrap_or_default();
                if let Err(error) = finalize(
                    &temp_path,
                    &destination,
                    Overwrite::Replace,
                    qmgr_core::file::process_umask().unwrap_or(0o022),
                ) {
                    eprintln!("{}: {error}", destination.display());
                    all_ok = false;
                    continue;
                }
                total_bytes += bytes;
                println!("{bytes:>12}  {}", destination.display());
            }
            EngineEvent::Failed { id, error } => {
                let (destination, temp) = running.remove(&id).unwrap_or_default();
                eprintln!("{}: {error}", destination.display());
                // This tool never resumes, so a partial file is of no use.
                if let Some(temp) = temp {
                    let _ = discard(&temp);
                }
                all_ok = false;
            }
            EngineEvent::Cancelled { id } => {
                running.remove(&id);
                all_ok = false;
            }
            EngineEvent::Responded { .. }
            | EngineEvent::Progress { .. }
            | EngineEvent::Uploaded { .. } => {}
        }
    }
    engine.shutdown();
    let seconds = started.elapsed().as_secs_f64();
    #[expect(
        clippy::cast_precision_loss,
        reason = "byte counts in a benchmark are far below 2^52"
    )]
    let rate = total_bytes as f64 / seconds.max(1e-9) / 1e6;
    println!(
        "{total_bytes} bytes in {seconds:.3} s ({rate:.1} MB/s), {} files",
        options.urls.len()
    );
    Ok(all_ok)
}
