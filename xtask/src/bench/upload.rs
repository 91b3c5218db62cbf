//! `cargo xtask bench upload`: the user's upload path — `qmgr upload FILE URL` through qmgrd
//! to qmgr-upload-server — beside `curl -T` (HTTP PUT) to nginx's WebDAV module, in
//! interleaved rounds over loopback, files on tmpfs. Reported: wall time as a ratio of
//! curl's, and the CPU of client and server together (qmgr, qmgrd and qmgr-upload-server
//! against curl and nginx's worker).
//!
//! Then the same file survives dropped connections and SIGKILLed qmgrds
//! ([`upload_resilience`]). `QMGR_BENCH_UPLOAD_RESILIENCE`
//! chooses: `on` (the default) runs both parts, `off` only the rounds beside curl, `only`
//! only the resilience cases. bench/results/upload.md is rewritten with the parts that ran.
//! `QMGR_BENCH_SCALE=small` uses a 128 MiB file instead of 1 GiB for both.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::build::{build_release, release_dir};
use crate::bench::e2e::{PEERS, Scale, machine_facts, rounds_from_env};
use crate::bench::files::{Scratch, check_file, load_average, write_pseudo_random};
use crate::bench::nginx::{Nginx, TlsProxy};
use crate::bench::qmgr::{QmgrInstance, process_cpu};
use crate::bench::run::{measure, median, range, send_signal};
use crate::bench::save;
use crate::bench::table::Table;
use crate::bench::tools::ensure_installed;
use crate::bench::upload_resilience;

const DEFAULT_ROUNDS: usize = 3;
const MIB: u64 = 1024 * 1024;

/// The targets: throughput at least 0.9× curl's (wall at most 1/0.9 of it), and
/// client plus server CPU at most 1.3× curl plus nginx.
const WALL_TARGET: f64 = 1.0 / 0.9;
const CPU_TARGET: f64 = 1.3;

#[derive(Debug, Default)]
struct Rounds {
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

/// Which parts of the benchmark run (`QMGR_BENCH_UPLOAD_RESILIENCE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parts {
    Both,
    SpeedOnly,
    ResilienceOnly,
}

impl Parts {
    fn from_env() -> Result<Parts> {
        match std::env::var("QMGR_BENCH_UPLOAD_RESILIENCE").as_deref() {
            Err(_) | Ok("" | "on") => Ok(Parts::Both),
            Ok("off") => Ok(Parts::SpeedOnly),
            Ok("only") => Ok(Parts::ResilienceOnly),
            Ok(other) => {
                bail!("QMGR_BENCH_UPLOAD_RESILIENCE={other:?}: say `on`, `off` or `only`")
            }
        }
    }

    fn speed(self) -> bool {
        self != Parts::ResilienceOnly
    }

    fn resilience(self) -> bool {
        self != Parts::SpeedOnly
    }
}

pub fn run() -> Result<()> {
    let parts = Parts::from_env()?;
    println!(
        "==> bench upload (qmgr upload through qmgrd to qmgr-upload-server{}{})",
        if parts.speed() {
            ", beside curl -T to nginx"
        } else {
            ""
        },
        if parts.resilience() {
            "; resilience"
        } else {
            ""
        }
    );
    let size = match Scale::from_env()? {
        Scale::Full => 1024 * MIB,
        Scale::Small => 128 * MIB,
    };
    if parts.speed() {
        ensure_installed(&PEERS[..2])?;
    }
    build_release(&[
        "-p",
        "qmgr-cli",
        "-p",
        "qmgr-service",
        "-p",
        "qmgr-upload-server",
    ])?;
    let release = release_dir();
    let scratch = Scratch::create()?;
    let source = scratch.path("source.bin");
    write_pseudo_random(&source, size, 7)?;
    let received = scratch.path("received");
    fs::create_dir_all(&received)?;
    // nginx's worker runs as an unprivileged user and must write there (behind TLS).
    fs::set_permissions(
        &received,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )?;
    let server = UploadServer::start(&release.join("qmgr-upload-server"), &scratch, &received)?;

    let mut report = String::new();
    let _ = writeln!(report, "{}\n", machine_facts());
    if parts.speed() {
        report.push_str(&speed(&release, &scratch, &server, &source, &received)?);
    }
    if parts.resilience() {
        report.push_str(&upload_resilience::run(&upload_resilience::Setup {
            release: &release,
            scratch: &scratch,
            server_port: server.port,
            received: &received,
            source: &source,
        })?);
    }
    drop(server);
    drop(scratch);
    print!("\n{report}");
    save(
        "upload.md",
        "Uploads beside curl -T, and their resilience",
        &report,
    )
}

/// The rounds beside curl: the report's first part.
fn speed(
    release: &Path,
    scratch: &Scratch,
    server: &UploadServer,
    source: &Path,
    received: &Path,
) -> Result<String> {
    let rounds = rounds_from_env(DEFAULT_ROUNDS)?;
    let size = fs::metadata(source)?.len();
    let load_at_start = load_average();
    let put_dir = scratch.path("put");
    fs::create_dir_all(&put_dir)?;
    // nginx's worker runs as an unprivileged user and must write there.
    fs::set_permissions(
        &put_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )?;
    // The README's reverse proxy: nginx terminates TLS in front of qmgr-upload-server.
    let tls = TlsProxy {
        certificate: scratch.path("proxy-cert.pem"),
        key: scratch.path("proxy-key.pem"),
        upstream_port: server.port,
    };
    make_certificate(&tls)?;
    let nginx =
        Nginx::start_with_put(&scratch.www(), &scratch.path("nginx"), &put_dir, Some(&tls))?;

    let mut curl = Rounds::default();
    let mut qmgr = Rounds::default();
    let mut behind_tls = Rounds::default();
    // One untimed round of each first: the page cache and the servers warm up.
    for round in 0..=rounds {
        let timed = round > 0;
        let name = format!("round-{round}.bin");
        let (wall, cpu) = curl_round(&nginx, source, &name)?;
        check_file(source, &put_dir.join(&name), timed)?;
        fs::remove_file(put_dir.join(&name))?;
        if timed {
            curl.wall.push(wall);
            curl.cpu.push(cpu);
        }
        let direct = server.url(&name);
        let (wall, cpu) = qmgr_round(release, scratch, server, source, &direct, None)?;
        check_file(source, &received.join(&name), timed)?;
        fs::remove_file(received.join(&name))?;
        if timed {
            qmgr.wall.push(wall);
            qmgr.cpu.push(cpu);
        }
        let proxied = nginx
            .tls_url(&format!("up/{name}"))
            .context("nginx has no TLS port")?;
        let (wall, cpu) = qmgr_round(
            release,
            scratch,
            server,
            source,
            &proxied,
            Some(&tls.certificate),
        )?;
        check_file(source, &received.join(&name), timed)?;
        fs::remove_file(received.join(&name))?;
        if timed {
            behind_tls.wall.push(wall);
            behind_tls.cpu.push(cpu);
        }
        println!("    round {round}: done");
    }
    let load_at_end = load_average();
    drop(nginx);

    let wall_ratio = median(&qmgr.wall) / median(&curl.wall);
    let cpu_ratio = median(&qmgr.cpu) / median(&curl.cpu);
    let mut table = Table::new(&[
        "tool",
        "wall (median, min–max)",
        "throughput",
        "client+server CPU (median)",
    ]);
    for (tool, figures) in [
        ("curl -T → nginx PUT", &curl),
        ("qmgr upload → qmgrd → qmgr-upload-server", &qmgr),
        (
            "qmgr upload → qmgrd → nginx (TLS) → qmgr-upload-server",
            &behind_tls,
        ),
    ] {
        let (low, high) = range(&figures.wall);
        table.row(vec![
            tool.to_owned(),
            format!("{:.2} s ({low:.2}–{high:.2})", median(&figures.wall)),
            format!(
                "{:.0} MiB/s",
                f64::from(u32::try_from(size / MIB).unwrap_or(u32::MAX)) / median(&figures.wall)
            ),
            format!("{:.2} s", median(&figures.cpu)),
        ]);
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "One {} MiB file, {rounds} timed round(s) per tool after one untimed, interleaved. \
         Load average (1, 5, 15 min) at the start: {load_at_start}; at the end: {load_at_end}.\n",
        size / MIB
    );
    report.push_str(&table.render());
    let _ = writeln!(
        report,
        "\nqmgr's wall time is {wall_ratio:.2}× curl's (target ≤ {WALL_TARGET:.2}×, i.e. ≥ 0.9× \
         its throughput): {}. Client + server CPU is {cpu_ratio:.2}× curl + nginx (target ≤ \
         {CPU_TARGET}×): {}.\n\n\
         - curl: `curl -T FILE http://127.0.0.1:PORT/put/NAME` to nginx's WebDAV PUT, which \
         writes the body to a temporary file and renames it into place.\n\
         - qmgr: `qmgr upload FILE URL --quiet` with a fresh instance and qmgrd per round; \
         qmgrd sends the file in BITS fragments (4 MiB) to qmgr-upload-server, which writes \
         them beside the destination and publishes on Close-Session (fsync, rename).\n\
         - Behind TLS: the README's nginx reverse-proxy configuration (`proxy_request_buffering \
         off`) with a self-signed certificate qmgrd trusts through SSL_CERT_FILE; its CPU \
         leaves out nginx's (the comparison with curl is the direct row).\n\
         - CPU: user + system time of curl and nginx's worker, or of qmgr, qmgrd and \
         qmgr-upload-server, over the round. Every received file is compared with the source.",
        if wall_ratio <= WALL_TARGET {
            "met"
        } else {
            "missed"
        },
        if cpu_ratio <= CPU_TARGET {
            "met"
        } else {
            "missed"
        },
    );
    Ok(report)
}

/// `curl -T` to nginx: wall seconds and CPU seconds of curl plus nginx's worker.
fn curl_round(nginx: &Nginx, source: &Path, name: &str) -> Result<(f64, f64)> {
    let workers = children_of(nginx.master_pid());
    let before = cpu_of(&workers)?;
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-f", "-o", "/dev/null", "-T"])
        .arg(source)
        .arg(nginx.url(&format!("put/{name}")))
        .stdin(Stdio::null());
    let run = measure(&mut command)?;
    let server = cpu_of(&workers)?.saturating_sub(before);
    Ok((run.wall.as_secs_f64(), (run.cpu + server).as_secs_f64()))
}

/// `qmgr upload` through a fresh qmgrd: wall seconds and CPU seconds of qmgr, qmgrd and
/// qmgr-upload-server.
fn qmgr_round(
    release: &Path,
    scratch: &Scratch,
    server: &UploadServer,
    source: &Path,
    url: &str,
    trusted_ca: Option<&Path>,
) -> Result<(f64, f64)> {
    let root = scratch.path("instance");
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    let mut instance =
        QmgrInstance::new(release.join("qmgr"), release.join("qmgrd"), root.clone())?;
    if let Some(ca) = trusted_ca {
        instance.set_env("SSL_CERT_FILE", ca);
    }
    instance.start_daemon()?;
    let daemon = instance
        .daemon_pid()
        .context("qmgrd runs but its store lock names no live process")?;
    let daemon_before = process_cpu(daemon)?;
    let server_before = process_cpu(server.pid())?;
    let mut command = instance.command();
    command
        .arg("upload")
        .arg(source)
        .arg(url)
        .arg("--quiet")
        .stdin(Stdio::null());
    let run = measure(&mut command)?;
    let daemon_cpu = process_cpu(daemon)?.saturating_sub(daemon_before);
    let server_cpu = process_cpu(server.pid())?.saturating_sub(server_before);
    instance.stop_daemon()?;
    drop(instance);
    fs::remove_dir_all(&root)?;
    Ok((
        run.wall.as_secs_f64(),
        (run.cpu + daemon_cpu + server_cpu).as_secs_f64(),
    ))
}

/// A self-signed certificate for 127.0.0.1 (openssl's command line).
fn make_certificate(tls: &TlsProxy) -> Result<()> {
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-keyout")
        .arg(&tls.key)
        .arg("-out")
        .arg(&tls.certificate)
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run openssl to make the proxy's certificate")?;
    if !status.success() {
        bail!("openssl could not make the proxy's certificate: {status}");
    }
    Ok(())
}

/// The processes whose parent is `pid` (nginx's worker).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    // The fields after the command's closing parenthesis: state, ppid, …
                    let rest = &stat[stat.rfind(')')? + 2..];
                    rest.split(' ').nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

fn cpu_of(pids: &[u32]) -> Result<Duration> {
    pids.iter().map(|pid| process_cpu(*pid)).sum()
}

/// qmgr-upload-server on a free loopback port, into `received`; stopped when dropped.
struct UploadServer {
    child: Child,
    port: u16,
}

impl UploadServer {
    fn start(binary: &Path, scratch: &Scratch, received: &Path) -> Result<UploadServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = scratch.path("upload-server.toml");
        let state = scratch.path("upload-server-state");
        fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nstate_dir = \"{}\"\n\
                 [[location]]\nprefix = \"/up/\"\ndirectory = \"{}\"\n",
                state.display(),
                received.display()
            ),
        )?;
        let log = fs::File::create(scratch.path("upload-server.log"))?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let server = UploadServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("qmgr-upload-server did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/up/{name}", self.port)
    }
}

impl Drop for UploadServer {
    fn drop(&mut self) {
        let _ = send_signal(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
    }
}
