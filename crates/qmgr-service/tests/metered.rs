//! Metered networks end to end: a private `dbus-daemon` stands in for the system bus
//! (qmgrd finds it through `DBUS_SYSTEM_BUS_ADDRESS`), a small NetworkManager made here
//! owns `org.freedesktop.NetworkManager` on it and flips `Metered`, and a real qmgrd
//! downloads from the test server. A background job stops when the network becomes
//! metered and resumes by itself when it is not; a FOREGROUND job keeps going.
//!
//! Needs `/usr/bin/dbus-daemon` (Debian package `dbus-daemon`; `.ci/run` installs it).

mod common;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Instance, wait_for_state, wait_until};
use qmgr_core::job::JobPriority;
use qmgr_core::policy::{COST_STATE_UNRESTRICTED, COST_STATE_USAGE_BASED, CostSource};
use qmgr_core::service::{JobChange, QueueServiceExt, WaitReason};
use qmgr_core::{Guid, JobState};
use qmgr_tests::TestServer;

const DBUS_DAEMON: &str = "/usr/bin/dbus-daemon";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";

/// A private message bus, stopped when dropped.
struct PrivateBus {
    daemon: Child,
    address: String,
}

impl PrivateBus {
    fn start(dir: &Path) -> PrivateBus {
        assert!(
            Path::new(DBUS_DAEMON).exists(),
            "{DBUS_DAEMON} is missing: install the Debian package dbus-daemon"
        );
        let socket = dir.join("system_bus_socket");
        let config = dir.join("bus.conf");
        // A bus anyone here may own names on and send to, like a system bus whose policy
        // lets NetworkManager own its name.
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut daemon = Command::new(DBUS_DAEMON)
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon said {line:?}");
        PrivateBus { daemon, address }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The part of NetworkManager qmgrd reads.
struct MockNetworkManager {
    metered: u32,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager")]
impl MockNetworkManager {
    #[zbus(property)]
    fn metered(&self) -> u32 {
        self.metered
    }
}

/// A NetworkManager on the private bus whose `Metered` the test sets.
struct NetworkManager {
    connection: zbus::blocking::Connection,
}

impl NetworkManager {
    fn start(bus: &PrivateBus, metered: u32) -> NetworkManager {
        let connection = zbus::blocking::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .name("org.freedesktop.NetworkManager")
            .unwrap()
            .serve_at(NM_PATH, MockNetworkManager { metered })
            .unwrap()
            .build()
            .unwrap();
        NetworkManager { connection }
    }

    /// Sets `Metered` and announces it with PropertiesChanged, as NetworkManager does.
    fn set_metered(&self, metered: u32) {
        let iface = self
            .connection
            .object_server()
            .interface::<_, MockNetworkManager>(NM_PATH)
            .unwrap();
        iface.get_mut().metered = metered;
        zbus::block_on(iface.get().metered_changed(iface.signal_emitter())).unwrap();
    }
}

/// Polls until job `id` is in `state`, often, and says how long that took after `since`
/// (a figure for the record; the test asserts only that it happens).
fn time_until_state(
    client: &qmgr_ipc::Client,
    id: Guid,
    state: JobState,
    since: Instant,
) -> Duration {
    let deadline = since + common::PATIENCE;
    loop {
        if client.job(id).unwrap().job.state == state {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "waiting for {state:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_metered_switch_pauses_background_jobs_and_clearing_it_resumes_them() {
    let server = TestServer::start();
    let bus_dir = tempfile::tempdir().unwrap();
    let bus = PrivateBus::start(bus_dir.path());
    let network_manager = NetworkManager::start(&bus, 2);
    let instance = Instance::with_env(vec![(
        OsString::from("DBUS_SYSTEM_BUS_ADDRESS"),
        OsString::from(&bus.address),
    )]);
    let client = instance.client();
    // qmgrd reads Metered once it is on the bus.
    let deadline = Instant::now() + common::PATIENCE;
    loop {
        let policy = client.policy().unwrap();
        if policy.cost_source == (CostSource::NetworkManager { metered: 2 }) {
            assert_eq!(policy.cost_state, COST_STATE_UNRESTRICTED);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "qmgrd never read NetworkManager: {policy:?}\n{}",
            instance.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Slow enough to be moving through every switch below.
    let job = |name: &str, priority: JobPriority| {
        let id = common::one_file_job(
            &client,
            &server.url(&format!("/data/2m/{name}?rate=200000")),
            &instance.downloads().join(name),
        );
        client.set_job(id, JobChange::Priority(priority)).unwrap();
        client.resume(id).unwrap();
        id
    };
    let background = job("background", JobPriority::Normal);
    let foreground = job("foreground", JobPriority::Foreground);
    wait_until(&client, background, "the background job to move", |view| {
        view.job.progress().bytes_transferred > 0
    });
    wait_for_state(&client, foreground, JobState::Transferring);

    let switched = Instant::now();
    network_manager.set_metered(1);
    let paused_after = time_until_state(&client, background, JobState::Queued, switched);
    let view = client.job(background).unwrap();
    assert_eq!(
        view.waiting,
        Some(WaitReason::Metered {
            cost_state: COST_STATE_USAGE_BASED
        })
    );
    let policy = client.policy().unwrap();
    assert_eq!(policy.cost_state, COST_STATE_USAGE_BASED);
    assert_eq!(
        policy.cost_source,
        CostSource::NetworkManager { metered: 1 }
    );
    // The FOREGROUND job keeps going while the network is metered.
    let before = client
        .job(foreground)
        .unwrap()
        .job
        .progress()
        .bytes_transferred;
    wait_until(
        &client,
        foreground,
        "the foreground job to keep moving",
        |view| {
            view.job.progress().bytes_transferred > before
                || view.job.state == JobState::Transferred
        },
    );
    assert_ne!(client.job(foreground).unwrap().job.state, JobState::Queued);

    let cleared = Instant::now();
    network_manager.set_metered(2);
    let resumed_after = time_until_state(&client, background, JobState::Transferring, cleared);
    eprintln!(
        "metered switch: background job QUEUED {} ms after Metered=1, TRANSFERRING again {} ms \
         after Metered=2",
        paused_after.as_millis(),
        resumed_after.as_millis()
    );
    wait_for_state(&client, background, JobState::Transferred);
    wait_for_state(&client, foreground, JobState::Transferred);

    // NetworkManager leaving the bus means "unknown": unmetered.
    network_manager.set_metered(1);
    wait_until(&client, background, "qmgrd to see Metered=1", |_| {
        client.policy().unwrap().cost_state == COST_STATE_USAGE_BASED
    });
    drop(network_manager);
    wait_until(
        &client,
        background,
        "qmgrd to see NetworkManager go",
        |_| client.policy().unwrap().cost_source == CostSource::NoNetworkManager,
    );
    assert_eq!(client.policy().unwrap().cost_state, COST_STATE_UNRESTRICTED);
}
