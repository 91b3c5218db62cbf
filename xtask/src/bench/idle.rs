//! `cargo xtask bench idle`: does a background job use only idle bandwidth?
//!
//! Three network namespaces (server — router — client) with a 20 Mbit/s bottleneck on the
//! router's port toward the client (`tbf rate 20mbit burst 16kb limit 600kb`: a bloated
//! buffer of about 240 ms, as DSL and cable lines have). The project's test server sends
//! with cubic from the server namespace, a UDP echo there answers a probe every 20 ms
//! from the client namespace, and qmgrd runs in the client namespace. Measured with idle
//! mode on and with `idle_mode = false`, in the same run:
//! - a background (NORMAL) job alone: its share of the link, and the delay it adds to
//!   every packet (probe p95 under load minus p95 on the idle link);
//! - a foreground download (curl) joining it: its rate in its first second and over ten
//!   seconds, as a share of its rate alone on the link.
//!
//! `--short` (CI, under a minute) asserts only comparisons with wide margins between the
//! two modes; the absolute targets are figures for the results file. Needs root (it makes
//! namespaces); without it, or without `tbf` in the kernel, it says why and is skipped.

use std::fmt::Write as _;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::qmgr::QmgrInstance;
use crate::bench::run::send_signal;
use crate::bench::tools::{Needed, ensure_installed};

/// The bottleneck's rate in bytes per second (20 Mbit/s).
const LINK_RATE: f64 = 20e6 / 8.0;
const SERVER_ADDRESS: &str = "10.201.1.1";
const SERVER_PORT: u16 = 8080;
const ECHO_PORT: u16 = 9999;
/// Time between two latency probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// A probe unanswered for this long counts as lost.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long each phase lasts.
#[derive(Clone, Copy, Debug)]
struct Timing {
    idle_probe: Duration,
    warm_up: Duration,
    alone: Duration,
    joined_long: Duration,
}

const FULL: Timing = Timing {
    idle_probe: Duration::from_secs(3),
    warm_up: Duration::from_secs(3),
    alone: Duration::from_secs(5),
    joined_long: Duration::from_secs(10),
};

const SHORT: Timing = Timing {
    idle_probe: Duration::from_secs(2),
    warm_up: Duration::from_secs(2),
    alone: Duration::from_secs(3),
    joined_long: Duration::from_secs(4),
};

/// The comparisons `--short` asserts, each passed or failed; empty when skipped.
#[derive(Debug, Default)]
pub struct Verdicts {
    pub checks: Vec<(String, bool)>,
    pub skipped: Option<String>,
}

/// `cargo xtask bench idle [--short]`.
pub fn run(args: &[String]) -> Result<()> {
    let short = match args.first().map(String::as_str) {
        None => false,
        Some("--short") => true,
        Some(other) => bail!("`cargo xtask bench idle` takes only --short (got {other:?})"),
    };
    let binaries = if short {
        debug_binaries()?
    } else {
        crate::bench::build::build_release(&[
            "-p",
            "qmgr-cli",
            "-p",
            "qmgr-service",
            "-p",
            "qmgr-tests",
        ])?;
        Binaries::in_dir(&crate::bench::build::release_dir())
    };
    let verdicts = measure(&binaries, short)?;
    if let Some(why) = &verdicts.skipped {
        println!("idle bench skipped: {why}");
        return Ok(());
    }
    let failed: Vec<&str> = verdicts
        .checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("failed: {}", failed.join("; "))
    }
}

/// The short profile for `cargo xtask test`, with the debug binaries it built.
pub fn short_profile() -> Result<Verdicts> {
    measure(&debug_binaries()?, true)
}

#[derive(Debug)]
struct Binaries {
    qmgr: PathBuf,
    qmgrd: PathBuf,
    test_server: PathBuf,
}

impl Binaries {
    fn in_dir(dir: &Path) -> Self {
        Self {
            qmgr: dir.join("qmgr"),
            qmgrd: dir.join("qmgrd"),
            test_server: dir.join("qmgr-testserver"),
        }
    }
}

fn debug_binaries() -> Result<Binaries> {
    let binaries = Binaries::in_dir(&crate::target_dir().join("debug"));
    for path in [&binaries.qmgr, &binaries.qmgrd, &binaries.test_server] {
        if !path.exists() {
            bail!(
                "{} is missing: run `cargo build --workspace --bins` first",
                path.display()
            );
        }
    }
    Ok(binaries)
}

fn measure(binaries: &Binaries, short: bool) -> Result<Verdicts> {
    if let Some(why) = cannot_make_namespaces() {
        return Ok(Verdicts {
            checks: Vec::new(),
            skipped: Some(why),
        });
    }
    ensure_installed(&[
        Needed {
            command: "ip",
            packages: &["iproute2"],
        },
        Needed {
            command: "tc",
            packages: &["iproute2"],
        },
        Needed {
            command: "curl",
            packages: &["curl"],
        },
    ])?;
    let timing = if short { SHORT } else { FULL };
    let network = Network::up()?;
    let _server = network.spawn(
        Role::Server,
        Command::new(&binaries.test_server).args([
            "--bind",
            &format!("{SERVER_ADDRESS}:{SERVER_PORT}"),
            "--congestion",
            "cubic",
        ]),
    )?;
    let scratch = Scratch::new()?;
    let scratch = &scratch.0;
    // The parts that run inside the namespaces come from a copy of this program, made
    // through /proc/self/exe: a build during the run (the test suite's) may have replaced
    // or removed the file it was started from.
    let xtask = scratch.join("xtask-idle");
    std::fs::copy("/proc/self/exe", &xtask).context("cannot copy the xtask binary")?;
    let _echo = network.spawn(
        Role::Server,
        Command::new(&xtask).args(["idle-echo", &format!("{SERVER_ADDRESS}:{ECHO_PORT}")]),
    )?;
    std::thread::sleep(Duration::from_millis(300));

    println!("==> idle link");
    let quiet = network.probe(&xtask, timing.idle_probe)?;
    println!("    probe p50 {:.1} ms, p95 {:.1} ms", quiet.p50, quiet.p95);
    println!("==> foreground download alone");
    let solo_first = network.foreground_rate(Duration::from_secs(1))?;
    let solo_long = network.foreground_rate(timing.joined_long)?;
    println!(
        "    first second {:.2} Mbit/s, over {} s {:.2} Mbit/s",
        mbit(solo_first),
        timing.joined_long.as_secs(),
        mbit(solo_long)
    );
    let idle = run_mode(&network, binaries, &xtask, scratch, true, timing)?;
    let uncontrolled = run_mode(&network, binaries, &xtask, scratch, false, timing)?;

    let report = Report {
        quiet,
        solo_first,
        solo_long,
        idle,
        uncontrolled,
        timing,
    };
    let table = report.table();
    print!("{table}");
    if !short {
        crate::bench::save(
            "idle.md",
            "Idle mode: background jobs on a shared bottleneck",
            &table,
        )?;
    }
    Ok(Verdicts {
        checks: report.comparisons(),
        skipped: None,
    })
}

/// Why this machine cannot run the bench, if it cannot.
fn cannot_make_namespaces() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("making network namespaces needs root".to_owned());
    }
    if !Path::new("/proc/sys/net/ipv4").exists() {
        return Some("this kernel has no IPv4 networking".to_owned());
    }
    None
}

/// What one mode measured.
#[derive(Clone, Copy, Debug)]
struct ModeFigures {
    background_rate: f64,
    loaded: ProbeFigures,
    joined_first: f64,
    joined_long: f64,
}

fn run_mode(
    network: &Network,
    binaries: &Binaries,
    xtask: &Path,
    scratch: &Path,
    idle: bool,
    timing: Timing,
) -> Result<ModeFigures> {
    let name = if idle {
        "idle mode"
    } else {
        "idle_mode = false"
    };
    println!("==> background job, {name}");
    let root = scratch.join(if idle { "idle" } else { "uncontrolled" });
    let instance = QmgrInstance::new(binaries.qmgr.clone(), binaries.qmgrd.clone(), root)?;
    instance.write_config(if idle { "" } else { "idle_mode = false\n" })?;
    let output = instance.root().join("background.bin");
    let mut transfer = network.command(Role::Client, &binaries.qmgr);
    instance.configure(&mut transfer);
    transfer.args(["transfer", "--background", "--priority", "normal"]);
    transfer.arg(format!("http://{SERVER_ADDRESS}:{SERVER_PORT}/data/4000m"));
    transfer.arg("-o").arg(&output);
    let started = transfer
        .output()
        .context("cannot run qmgr transfer --background")?;
    if !started.status.success() {
        bail!(
            "qmgr transfer --background failed: {}",
            String::from_utf8_lossy(&started.stderr)
        );
    }
    let figures = (|| -> Result<ModeFigures> {
        std::thread::sleep(timing.warm_up);
        let before = network.bytes_to_client()?;
        let at = Instant::now();
        let loaded = network.probe(xtask, timing.alone)?;
        let sent = network.bytes_to_client()?.saturating_sub(before);
        #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
        let background_rate = sent as f64 / at.elapsed().as_secs_f64();
        let joined_first = network.foreground_rate(Duration::from_secs(1))?;
        std::thread::sleep(Duration::from_millis(500));
        let joined_long = network.foreground_rate(timing.joined_long)?;
        Ok(ModeFigures {
            background_rate,
            loaded,
            joined_first,
            joined_long,
        })
    })();
    stop_daemon(&instance);
    let figures = figures?;
    println!(
        "    background {:.2} Mbit/s, probe p95 {:.1} ms; foreground joining: {:.2} then {:.2} Mbit/s",
        mbit(figures.background_rate),
        figures.loaded.p95,
        mbit(figures.joined_first),
        mbit(figures.joined_long)
    );
    Ok(figures)
}

/// Ends the instance's qmgrd (started on demand inside the client namespace).
fn stop_daemon(instance: &QmgrInstance) {
    if let Some(pid) = instance.daemon_pid() {
        let _ = send_signal(pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while instance.daemon_pid().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct Report {
    quiet: ProbeFigures,
    solo_first: f64,
    solo_long: f64,
    idle: ModeFigures,
    uncontrolled: ModeFigures,
    timing: Timing,
}

impl Report {
    fn added_delay(&self, mode: &ModeFigures) -> f64 {
        (mode.loaded.p95 - self.quiet.p95).max(0.0)
    }

    fn table(&self) -> String {
        let long = self.timing.joined_long.as_secs();
        let mut table = format!(
            "Namespaces server — router — client; `tbf rate 20mbit burst 16kb limit 600kb` on the \
             router's port toward the client; the test server sends with cubic; a UDP probe every \
             20 ms. Idle link: probe p50 {:.2} ms, p95 {:.2} ms. A foreground download (curl) \
             alone: {:.2} Mbit/s in its first second, {:.2} Mbit/s over {long} s.\n\n\
             | background NORMAL job | its rate (share of 20 Mbit/s) | probe p50 / p95 | delay it adds (p95) | foreground joining: first second | over {long} s |\n\
             | --- | --- | --- | --- | --- | --- |\n",
            self.quiet.p50,
            self.quiet.p95,
            mbit(self.solo_first),
            mbit(self.solo_long),
        );
        for (name, mode) in [
            ("idle mode (default)", &self.idle),
            ("`idle_mode = false`", &self.uncontrolled),
        ] {
            let _ = writeln!(
                table,
                "| {name} | {:.2} Mbit/s ({:.0} %) | {:.1} / {:.1} ms | {:.1} ms | {:.0} % of alone | {:.0} % of alone |",
                mbit(mode.background_rate),
                100.0 * mode.background_rate / LINK_RATE,
                mode.loaded.p50,
                mode.loaded.p95,
                self.added_delay(mode),
                100.0 * mode.joined_first / self.solo_first,
                100.0 * mode.joined_long / self.solo_long,
            );
        }
        let target_line = |ok: bool| if ok { "met" } else { "missed" };
        let idle = &self.idle;
        let _ = writeln!(
            table,
            "\nTargets (issue 17), idle mode: background alone ≥ 90 % of the link — {}; delay it \
             adds ≤ 45 ms — {}; a foreground download joining keeps ≥ 80 % of its rate alone in \
             its first second — {} and ≥ 90 % over {long} s — {}.",
            target_line(idle.background_rate >= 0.9 * LINK_RATE),
            target_line(self.added_delay(idle) <= 45.0),
            target_line(idle.joined_first >= 0.8 * self.solo_first),
            target_line(idle.joined_long >= 0.9 * self.solo_long),
        );
        table
    }

    /// The wide-margin comparisons CI asserts: idle mode against the same run without it.
    fn comparisons(&self) -> Vec<(String, bool)> {
        let idle = &self.idle;
        let off = &self.uncontrolled;
        vec![
            (
                format!(
                    "a foreground download joining keeps at least twice the share with idle mode \
                     ({:.0} % vs {:.0} % of its rate alone)",
                    100.0 * idle.joined_long / self.solo_long,
                    100.0 * off.joined_long / self.solo_long
                ),
                idle.joined_long >= 2.0 * off.joined_long,
            ),
            (
                format!(
                    "idle mode adds at most half the delay ({:.1} ms vs {:.1} ms at p95)",
                    self.added_delay(idle),
                    self.added_delay(off)
                ),
                self.added_delay(idle) <= 0.5 * self.added_delay(off),
            ),
            (
                format!(
                    "alone, idle mode still uses the link ({:.2} vs {:.2} Mbit/s without it)",
                    mbit(idle.background_rate),
                    mbit(off.background_rate)
                ),
                idle.background_rate >= 0.5 * off.background_rate,
            ),
        ]
    }
}

fn mbit(bytes_per_second: f64) -> f64 {
    bytes_per_second * 8.0 / 1e6
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Server,
    Router,
    Client,
}

/// The three namespaces; deleted when dropped, also when the bench fails.
struct Network {
    prefix: String,
}

impl Network {
    fn up() -> Result<Self> {
        let network = Self {
            prefix: format!("qmgr-idle-{}", std::process::id()),
        };
        let (srv, rtr, cli) = (
            network.name(Role::Server),
            network.name(Role::Router),
            network.name(Role::Client),
        );
        for name in [&srv, &rtr, &cli] {
            ip(&["netns", "add", name])?;
        }
        let steps: Vec<Vec<&str>> = vec![
            vec![
                "link", "add", "s0", "netns", &srv, "type", "veth", "peer", "name", "r0", "netns",
                &rtr,
            ],
            vec![
                "link", "add", "c0", "netns", &cli, "type", "veth", "peer", "name", "r1", "netns",
                &rtr,
            ],
            vec!["-n", &srv, "addr", "add", "10.201.1.1/24", "dev", "s0"],
            vec!["-n", &rtr, "addr", "add", "10.201.1.2/24", "dev", "r0"],
            vec!["-n", &rtr, "addr", "add", "10.201.2.1/24", "dev", "r1"],
            vec!["-n", &cli, "addr", "add", "10.201.2.2/24", "dev", "c0"],
            vec!["-n", &srv, "link", "set", "s0", "up"],
            vec!["-n", &rtr, "link", "set", "r0", "up"],
            vec!["-n", &rtr, "link", "set", "r1", "up"],
            vec!["-n", &cli, "link", "set", "c0", "up"],
            vec!["-n", &srv, "link", "set", "lo", "up"],
            vec!["-n", &rtr, "link", "set", "lo", "up"],
            vec!["-n", &cli, "link", "set", "lo", "up"],
            vec!["-n", &srv, "route", "add", "default", "via", "10.201.1.2"],
            vec!["-n", &cli, "route", "add", "default", "via", "10.201.2.1"],
        ];
        for step in &steps {
            ip(step)?;
        }
        network.sysctl(Role::Router, "net.ipv4.ip_forward=1")?;
        // Probes from qmgrd (root) need unprivileged ICMP sockets for gid 0.
        network.sysctl(Role::Client, "net.ipv4.ping_group_range=0 2147483647")?;
        let shaped = Command::new("ip")
            .args([
                "netns", "exec", &rtr, "tc", "qdisc", "add", "dev", "r1", "root",
            ])
            .args(["tbf", "rate", "20mbit", "burst", "16kb", "limit", "600kb"])
            .output()
            .context("cannot run tc")?;
        if !shaped.status.success() {
            bail!(
                "this kernel cannot shape with tbf (the bench needs it; netem, fq, fq_codel and \
                 cake are not required): {}",
                String::from_utf8_lossy(&shaped.stderr).trim()
            );
        }
        Ok(network)
    }

    fn name(&self, role: Role) -> String {
        let suffix = match role {
            Role::Server => "srv",
            Role::Router => "rtr",
            Role::Client => "cli",
        };
        format!("{}-{suffix}", self.prefix)
    }

    fn sysctl(&self, role: Role, setting: &str) -> Result<()> {
        let status = Command::new("ip")
            .args(["netns", "exec", &self.name(role), "sysctl", "-qw", setting])
            .status()
            .context("cannot run sysctl")?;
        if !status.success() {
            bail!("sysctl -w {setting} failed in {}", self.name(role));
        }
        Ok(())
    }

    /// `program` to run inside the namespace of `role`.
    fn command(&self, role: Role, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name(role)])
            .arg(program);
        command
    }

    fn spawn(&self, role: Role, command: &mut Command) -> Result<ChildGuard> {
        let mut inside = Command::new("ip");
        inside
            .args(["netns", "exec", &self.name(role)])
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = inside
            .spawn()
            .with_context(|| format!("cannot start {}", command.get_program().display()))?;
        Ok(ChildGuard(child))
    }

    /// Bytes the router has sent toward the client.
    fn bytes_to_client(&self) -> Result<u64> {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.name(Role::Router)])
            .args(["cat", "/sys/class/net/r1/statistics/tx_bytes"])
            .output()
            .context("cannot read the router's counters")?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .context("the router's tx_bytes is not a number")
    }

    /// Probes the echo server from the client namespace for `duration`.
    fn probe(&self, xtask: &Path, duration: Duration) -> Result<ProbeFigures> {
        let output = self
            .command(Role::Client, xtask)
            .args([
                "idle-probe",
                &format!("{SERVER_ADDRESS}:{ECHO_PORT}"),
                &duration.as_millis().to_string(),
            ])
            .output()
            .context("cannot run the probe")?;
        if !output.status.success() {
            bail!(
                "the probe failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        ProbeFigures::parse(&String::from_utf8_lossy(&output.stdout))
    }

    /// A foreground download by curl from the client namespace for `duration`: its rate.
    fn foreground_rate(&self, duration: Duration) -> Result<f64> {
        let seconds = duration.as_secs_f64();
        let output = self
            .command(Role::Client, Path::new("curl"))
            .args(["-s", "-o", "/dev/null", "-w", "%{size_download}"])
            .args(["--max-time", &format!("{seconds:.1}")])
            .arg(format!(
                "http://{SERVER_ADDRESS}:{SERVER_PORT}/data/4000m/foreground"
            ))
            .output()
            .context("cannot run curl")?;
        // curl exits 28 when --max-time ends the download, as intended here.
        let bytes: f64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .context("curl printed no byte count")?;
        Ok(bytes / seconds)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for role in [Role::Client, Role::Router, Role::Server] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.name(role)])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run ip")?;
    if !output.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A process that is killed when the bench lets go of it.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory for the run's instances, removed with what is in it when the run ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("qmgr-idle-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Round-trip percentiles of one probe run, in milliseconds.
#[derive(Clone, Copy, Debug)]
struct ProbeFigures {
    p50: f64,
    p95: f64,
}

impl ProbeFigures {
    fn parse(text: &str) -> Result<Self> {
        let mut values = text.split_whitespace().map(str::parse::<f64>);
        match (values.next(), values.next()) {
            (Some(Ok(p50)), Some(Ok(p95))) => Ok(Self { p50, p95 }),
            _ => bail!("the probe printed {text:?}"),
        }
    }
}

/// `xtask idle-echo ADDRESS:PORT`: answers every UDP datagram with itself, forever.
pub fn echo(args: &[String]) -> Result<()> {
    let address = args.first().context("idle-echo needs ADDRESS:PORT")?;
    let socket = UdpSocket::bind(address).with_context(|| format!("cannot bind {address}"))?;
    let mut buffer = [0_u8; 64];
    loop {
        let (length, from) = socket.recv_from(&mut buffer)?;
        socket.send_to(&buffer[..length], from)?;
    }
}

/// `xtask idle-probe ADDRESS:PORT MILLISECONDS`: a probe every 20 ms; prints the p50 and
/// p95 round trips in milliseconds (a lost probe counts as the timeout).
pub fn probe(args: &[String]) -> Result<()> {
    let (Some(address), Some(millis)) = (args.first(), args.get(1)) else {
        bail!("idle-probe needs ADDRESS:PORT MILLISECONDS");
    };
    let duration = Duration::from_millis(millis.parse().context("MILLISECONDS")?);
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.connect(address)?;
    let mut samples = Vec::new();
    let end = Instant::now() + duration;
    let mut sequence: u32 = 0;
    let mut buffer = [0_u8; 64];
    while Instant::now() < end {
        sequence += 1;
        let sent = Instant::now();
        socket.send(&sequence.to_be_bytes())?;
        let mut round_trip = PROBE_TIMEOUT;
        loop {
            let left = PROBE_TIMEOUT.saturating_sub(sent.elapsed());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
            match socket.recv(&mut buffer) {
                Ok(4) if buffer[..4] == sequence.to_be_bytes() => {
                    round_trip = sent.elapsed();
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        samples.push(round_trip.as_secs_f64() * 1000.0);
        std::thread::sleep(PROBE_INTERVAL.saturating_sub(sent.elapsed()));
    }
    samples.sort_by(f64::total_cmp);
    // The sample at `percent` % of the sorted list (nearest rank).
    let at = |percent: usize| {
        let index = (samples.len().saturating_sub(1) * percent).div_ceil(100);
        samples.get(index).copied().unwrap_or(f64::NAN)
    };
    println!("{:.3} {:.3}", at(50), at(95));
    Ok(())
}
