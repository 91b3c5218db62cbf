//! `qmgr daemon status|stop`.
//!
//! The service API has no Stop request: `stop` sends SIGTERM to the pid qmgrd records in
//! `<state dir>/store.lock` while it holds the store, then waits for it to exit. qmgrd
//! stops its transfers and keeps partial files; its jobs continue when it next starts.

use std::time::{Duration, Instant};

use qmgr_core::hresult;
use qmgr_core::service::QueueServiceExt;
use qmgr_core::trust::{self, Access};
use rustix::process::{Pid, Signal};

use crate::failure::{Exit, Failure};
use crate::json::{self, DaemonStatusJson};
use crate::session::Session;

/// How long `stop` waits for qmgrd to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub fn status(session: &Session, as_json: bool) -> Result<(), Failure> {
    let socket = session.paths.socket_path();
    let running = match session.connect_running() {
        Ok(client) => {
            let root = rustix::process::getuid().is_root();
            // Counted a page at a time: the summaries are not kept.
            let mut jobs = 0;
            client.job_summary_pages(root, |page| {
                jobs += page.len();
                Ok(())
            })?;
            Some((client.service_version().to_owned(), jobs))
        }
        Err(error) if error.hresult == hresult::QM_E_SERVICE_UNAVAILABLE => None,
        Err(error) => return Err(error.into()),
    };
    let pid = running.as_ref().and_then(|_| daemon_pid(session));
    let report = DaemonStatusJson {
        running: running.is_some(),
        version: running.as_ref().map(|(version, _)| version.clone()),
        socket: socket.display().to_string(),
        state_dir: session.paths.state_dir().display().to_string(),
        pid,
        jobs: running.as_ref().map(|(_, jobs)| *jobs),
    };
    if as_json {
        json::print(&report);
    } else if let Some((version, jobs)) = &running {
        println!("qmgrd is running");
        println!("  version:   {version}");
        println!(
            "  pid:       {}",
            pid.map_or_else(|| "unknown".to_owned(), |pid| pid.to_string())
        );
        println!("  socket:    {}", report.socket);
        println!("  state dir: {}", report.state_dir);
        println!("  jobs:      {jobs}");
    } else {
        println!("qmgrd is not running (socket {})", report.socket);
        println!("  the next qmgr command that needs it starts it");
    }
    if running.is_some() {
        Ok(())
    } else {
        Err(Failure::silent(Exit::ServiceUnavailable))
    }
}

pub fn stop(session: &Session) -> Result<(), Failure> {
    match session.connect_running() {
        Ok(client) => drop(client),
        Err(error) if error.hresult == hresult::QM_E_SERVICE_UNAVAILABLE => {
            println!("qmgrd is not running.");
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    }
    let lock = session.store_lock_file();
    let pid = daemon_pid(session).ok_or_else(|| {
        Failure::failed(format!(
            "qmgrd answers on {} but {} names no running qmgrd; stop it by hand",
            session.paths.socket_path().display(),
            lock.display()
        ))
    })?;
    let target = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| Failure::failed(format!("{} holds a bad pid {pid}", lock.display())))?;
    rustix::process::kill_process(target, Signal::TERM)
        .map_err(|error| Failure::failed(format!("cannot signal qmgrd (pid {pid}): {error}")))?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    while is_qmgrd(pid) || session.connect_running().is_ok() {
        if Instant::now() > deadline {
            return Err(Failure::failed(format!(
                "qmgrd (pid {pid}) did not stop within {} s of SIGTERM; see {}",
                STOP_TIMEOUT.as_secs(),
                session.paths.log_file().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("qmgrd (pid {pid}) stopped.");
    Ok(())
}

/// The pid in `store.lock`, if it names a live qmgrd.
fn daemon_pid(session: &Session) -> Option<u32> {
    // Read without following a link and only if it is our file (qmgr_core::trust).
    let file =
        trust::open_private_file(&session.store_lock_file(), Access::Read, "store lock").ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut &file, &mut text).ok()?;
    let pid = text.trim().parse::<u32>().ok()?;
    is_qmgrd(pid).then_some(pid)
}

/// Whether `pid` is a qmgrd process that has not exited (a zombie has).
fn is_qmgrd(pid: u32) -> bool {
    let proc_dir = format!("/proc/{pid}");
    let name = std::fs::read_to_string(format!("{proc_dir}/comm")).unwrap_or_default();
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).unwrap_or_default();
    let zombie = status
        .lines()
        .any(|line| line.starts_with("State:") && line.contains('Z'));
    name.trim() == "qmgrd" && !zombie
}
