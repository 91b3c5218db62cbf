//! Transfer policy in the queue manager, in-process against the real engine and the test
//! server: bandwidth schedules (with a manual clock, whose local time is UTC) and the
//! network's cost state (set here as the NetworkManager watch sets it in qmgrd). Waiting
//! polls with a generous bound; nothing here measures speed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use qmgr_core::config::Config;
use qmgr_core::job::JobPriority;
use qmgr_core::paths::StatePaths;
use qmgr_core::policy::{
    COST_FLAGS_TRANSFER_ALWAYS, COST_FLAGS_TRANSFER_UNRESTRICTED, COST_STATE_UNRESTRICTED,
    COST_STATE_USAGE_BASED, CostSource,
};
use qmgr_core::service::{JobChange, JobView, NewFile, QueueServiceExt, WaitReason};
use qmgr_core::{Guid, JobState, JobType, Timestamp};
use qmgr_service::{LocalService, ManualClock, QueueManager, SystemClock};
use qmgr_tests::TestServer;

const UID: u32 = 1000;
/// Monday 2026-11-30 00:00 UTC, in seconds since the epoch.
const MONDAY: i64 = 1_795_996_800;

struct Fixture {
    _state: tempfile::TempDir,
    downloads: tempfile::TempDir,
    service: LocalService,
}

impl Fixture {
    fn new(config: Config, clock: Arc<dyn qmgr_service::Clock>) -> Self {
        let state = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let manager =
            QueueManager::start(config, &StatePaths::isolated(state.path()), clock).unwrap();
        Self {
            _state: state,
            downloads,
            service: LocalService::new(manager, UID),
        }
    }

    fn job(&self, url: &str, name: &str, priority: JobPriority) -> Guid {
        let id = self.service.create_job(name, JobType::Download).unwrap();
        let local = self.downloads.path().join(name);
        self.service
            .add_files(
                id,
                vec![NewFile::whole(url, local.to_string_lossy().into_owned())],
            )
            .unwrap();
        self.service
            .set_job(id, JobChange::Priority(priority))
            .unwrap();
        id
    }

    fn wait_for(&self, id: Guid, what: &str, done: impl Fn(&JobView) -> bool) -> JobView {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let view = self.service.job(id).unwrap();
            if done(&view) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; job is {:?}, waiting {:?}",
                view.job.state,
                view.waiting
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_for_state(&self, id: Guid, state: JobState) -> JobView {
        self.wait_for(id, state.name(), |v| v.job.state == state)
    }
}

fn schedule_config() -> Config {
    Config::from_toml_str(
        "max_background_jobs = 4\n\
         [[schedule]]\n\
         days = [\"mon\"]\n\
         hours = \"08:00-09:00\"\n\
         normal = 1000\n",
        "test config",
    )
    .unwrap()
}

#[test]
fn crossing_a_schedule_boundary_changes_the_cap_within_one_tick() {
    let server = TestServer::start();
    // Monday 08:59:50: ten seconds before the window's cap ends.
    let start = Timestamp((MONDAY + 8 * 3600 + 59 * 60 + 50) * 1_000_000);
    let clock = Arc::new(ManualClock::new(start));
    let fx = Fixture::new(schedule_config(), clock.clone());

    let policy = fx.service.policy().unwrap();
    assert_eq!(policy.local_time, "mon 08:59");
    assert_eq!(policy.caps.normal, Some(1000));
    assert_eq!(policy.caps.high, None);
    let next = policy.next.expect("the window ends");
    assert_eq!(next.local_time, "mon 09:00");
    assert_eq!(next.at, start.plus(Duration::from_secs(10)));
    assert_eq!(next.caps.normal, None);

    // At 1000 B/s a 256 KiB file would take over four minutes.
    let id = fx.job(
        &server.url("/data/256k/capped"),
        "capped",
        JobPriority::Normal,
    );
    fx.service.resume(id).unwrap();
    fx.wait_for(id, "the schedule's cap to hold the job", |view| {
        view.waiting
            == Some(WaitReason::Throttled {
                bytes_per_second: 1000,
            })
    });
    assert_eq!(
        fx.service.job(id).unwrap().job.state,
        JobState::Transferring
    );

    clock.advance(Duration::from_secs(11));
    fx.service.manager().poke();
    fx.wait_for_state(id, JobState::Transferred);
    let policy = fx.service.policy().unwrap();
    assert_eq!(policy.caps.normal, None);
    assert_eq!(policy.window, None);
    assert_eq!(policy.next.unwrap().local_time, "mon 08:00");
}

#[test]
fn a_foreground_job_is_never_capped_by_a_schedule() {
    let server = TestServer::start();
    let start = Timestamp((MONDAY + 8 * 3600 + 30 * 60) * 1_000_000);
    let fx = Fixture::new(schedule_config(), Arc::new(ManualClock::new(start)));
    let id = fx.job(
        &server.url("/data/256k/foreground"),
        "foreground",
        JobPriority::Foreground,
    );
    fx.service.resume(id).unwrap();
    fx.wait_for_state(id, JobState::Transferred);
}

#[test]
fn a_metered_network_holds_background_jobs_until_it_clears() {
    let server = TestServer::start();
    let fx = Fixture::new(
        Config {
            max_background_jobs: 4,
            ..Config::default()
        },
        Arc::new(SystemClock::new()),
    );
    let manager = fx.service.manager();
    assert_eq!(
        fx.service.policy().unwrap().cost_source,
        CostSource::NoNetworkManager
    );

    // A background job already moving when the network becomes metered stops.
    let running = fx.job(
        &server.url("/data/1m/running?rate=200000"),
        "running",
        JobPriority::Normal,
    );
    fx.service.resume(running).unwrap();
    fx.wait_for_state(running, JobState::Transferring);
    manager.set_network_metered(Some(1));
    let policy = fx.service.policy().unwrap();
    assert_eq!(policy.cost_state, COST_STATE_USAGE_BASED);
    assert_eq!(
        policy.cost_source,
        CostSource::NetworkManager { metered: 1 }
    );
    let held = fx.wait_for_state(running, JobState::Queued);
    assert_eq!(
        held.waiting,
        Some(WaitReason::Metered {
            cost_state: COST_STATE_USAGE_BASED
        })
    );
    assert_eq!(
        held.job.settings.cost_flags,
        Some(COST_FLAGS_TRANSFER_UNRESTRICTED),
        "a view carries the effective cost flags"
    );

    // New background work waits too; FOREGROUND work and a job that allows any cost go on.
    let low = fx.job(&server.url("/data/64k/low"), "low", JobPriority::Low);
    let foreground = fx.job(
        &server.url("/data/64k/foreground"),
        "foreground",
        JobPriority::Foreground,
    );
    let allowed = fx.job(
        &server.url("/data/64k/allowed"),
        "allowed",
        JobPriority::High,
    );
    fx.service
        .set_job(
            allowed,
            JobChange::CostFlags(Some(COST_FLAGS_TRANSFER_ALWAYS)),
        )
        .unwrap();
    for id in [low, foreground, allowed] {
        fx.service.resume(id).unwrap();
    }
    let done = fx.wait_for_state(foreground, JobState::Transferred);
    assert_eq!(
        done.job.settings.cost_flags,
        Some(COST_FLAGS_TRANSFER_ALWAYS)
    );
    fx.wait_for_state(allowed, JobState::Transferred);
    let waiting = fx.service.job(low).unwrap();
    assert_eq!(waiting.job.state, JobState::Queued);
    assert!(matches!(waiting.waiting, Some(WaitReason::Metered { .. })));

    // Metered 2 ("no") clears it: both background jobs resume by themselves.
    manager.set_network_metered(Some(2));
    assert_eq!(
        fx.service.policy().unwrap().cost_state,
        COST_STATE_UNRESTRICTED
    );
    fx.wait_for_state(low, JobState::Transferred);
    fx.wait_for_state(running, JobState::Transferred);
}

#[test]
fn the_config_overrides_network_manager() {
    let server = TestServer::start();
    let fx = Fixture::new(
        Config::from_toml_str("metered = \"no\"\n", "test config").unwrap(),
        Arc::new(SystemClock::new()),
    );
    fx.service.manager().set_network_metered(Some(1));
    let policy = fx.service.policy().unwrap();
    assert_eq!(policy.cost_state, COST_STATE_UNRESTRICTED);
    assert_eq!(policy.cost_source, CostSource::Config);
    let id = fx.job(&server.url("/data/64k/free"), "free", JobPriority::Low);
    fx.service.resume(id).unwrap();
    fx.wait_for_state(id, JobState::Transferred);

    let fx = Fixture::new(
        Config::from_toml_str(
            "metered = \"yes\"\n[job_defaults]\ncost_flags = 0x80000067\n",
            "test config",
        )
        .unwrap(),
        Arc::new(SystemClock::new()),
    );
    assert_eq!(
        fx.service.policy().unwrap().cost_state,
        COST_STATE_USAGE_BASED
    );
    // BITS_JOB_TRANSFER_POLICY_STANDARD allows a usage-based network.
    let id = fx.job(
        &server.url("/data/64k/standard"),
        "standard",
        JobPriority::Low,
    );
    fx.service.resume(id).unwrap();
    let done = fx.wait_for_state(id, JobState::Transferred);
    assert_eq!(done.job.settings.cost_flags, Some(0x8000_0067));
}

#[test]
fn a_job_moved_to_an_uncapped_priority_leaves_its_old_cap() {
    let server = TestServer::start();
    let start = Timestamp((MONDAY + 8 * 3600 + 30 * 60) * 1_000_000);
    let fx = Fixture::new(schedule_config(), Arc::new(ManualClock::new(start)));
    let id = fx.job(
        &server.url("/data/256k/moved"),
        "moved",
        JobPriority::Normal,
    );
    fx.service.resume(id).unwrap();
    fx.wait_for(id, "the NORMAL cap to hold the job", |view| {
        view.waiting
            == Some(WaitReason::Throttled {
                bytes_per_second: 1000,
            })
    });
    fx.service
        .set_job(id, JobChange::Priority(JobPriority::High))
        .unwrap();
    fx.wait_for_state(id, JobState::Transferred);
}
