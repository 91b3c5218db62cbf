//! Root's C API across users (README "Other users"): `EnumJobs(BG_JOB_ENUM_ALL_USERS)` and
//! `GetJob` reach the jobs of every user's running qmgrd, whose job objects work through
//! that daemon (GetOwner, GetState, EnumFiles, Cancel), while anyone else's
//! `BG_JOB_ENUM_ALL_USERS` is `E_ACCESSDENIED`. Two real users (CI runs as root), each with
//! a qmgrd under a runtime root this test makes; this binary plays each user's program.

#![expect(
    clippy::borrow_as_ptr,
    reason = "the test writes calls as C does: `&IID_X` for a REFIID"
)]

use std::ffi::c_void;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use qmgr_core::hresult;
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{NewFile, QueueServiceExt};
use qmgr_core::{Guid, JobType};
use qmgr_ffi::abi::bits::*;
use qmgr_ffi::abi::types::*;
use qmgr_ipc::Client;
use qmgr_ipc::users::USER_RUNTIME_ROOT_VAR;
use qmgr_tests::qmgrd::built_qmgrd;
use qmgr_tests::users::OtherUser;

/// Set in a user's run of this binary: the name of the job that user makes.
const CHILD_JOB_VAR: &str = "QMGR_FFI_TEST_USER_JOB";

macro_rules! vcall {
    ($ptr:expr, $($field:ident).+ ( $($arg:expr),* $(,)? )) => {{
        let p = $ptr;
        // SAFETY: test pointers are live interface pointers from the library.
        unsafe { ((*(*p).lpVtbl).$($field).+)(p $(, $arg)*) }
    }};
}

fn release<I>(p: *mut I) {
    let unknown = p.cast::<IUnknown>();
    vcall!(unknown, Release());
}

/// Takes a CoTaskMemAlloc'ed string the library returned and frees it.
fn take_string(p: LPWSTR) -> String {
    assert!(!p.is_null(), "expected a string");
    let mut len = 0;
    // SAFETY: the library returns NUL-terminated strings.
    while unsafe { p.add(len).read() } != 0 {
        len += 1;
    }
    // SAFETY: `len` units were just read.
    let text = String::from_utf16(unsafe { std::slice::from_raw_parts(p, len) }).unwrap();
    // SAFETY: the string came from CoTaskMemAlloc.
    unsafe { qmgr_ffi::CoTaskMemFree(p.cast()) };
    text
}

fn new_manager() -> *mut IBackgroundCopyManager {
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: valid GUIDs and out-pointer.
    let code = unsafe {
        qmgr_ffi::CoCreateInstance(
            &CLSID_BackgroundCopyManager,
            std::ptr::null_mut(),
            CLSCTX_LOCAL_SERVER,
            &IID_IBackgroundCopyManager,
            &raw mut out,
        )
    };
    assert_eq!(code, 0, "CoCreateInstance");
    out.cast()
}

/// A job as root's C API sees it.
#[derive(Debug)]
struct Seen {
    id: Guid,
    owner: String,
    name: String,
}

fn seen(job: *mut IBackgroundCopyJob) -> Seen {
    let mut id = GUID::default();
    assert_eq!(vcall!(job, GetId(&raw mut id)), 0);
    let (mut owner, mut name) = (std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(vcall!(job, GetOwner(&raw mut owner)), 0);
    assert_eq!(vcall!(job, GetDisplayName(&raw mut name)), 0);
    Seen {
        id: Guid::from(id),
        owner: take_string(owner),
        name: take_string(name),
    }
}

/// Every job `EnumJobs(flags)` lists.
fn enum_jobs(manager: *mut IBackgroundCopyManager, flags: DWORD) -> Vec<Seen> {
    let mut jobs = std::ptr::null_mut();
    assert_eq!(vcall!(manager, EnumJobs(flags, &raw mut jobs)), 0);
    let mut all = Vec::new();
    loop {
        let (mut job, mut fetched) = (std::ptr::null_mut(), 0);
        vcall!(jobs, Next(1, &raw mut job, &raw mut fetched));
        if fetched == 0 {
            break;
        }
        all.push(seen(job));
        release(job);
    }
    release(jobs);
    all
}

fn get_job(
    manager: *mut IBackgroundCopyManager,
    id: Guid,
) -> Result<*mut IBackgroundCopyJob, HRESULT> {
    let mut job = std::ptr::null_mut();
    let guid: GUID = id.into();
    match vcall!(manager, GetJob(&guid, &raw mut job)) {
        0 => Ok(job),
        code => {
            assert!(job.is_null());
            Err(code)
        }
    }
}

/// Stops the qmgrd serving `state_dir` (its pid is in the store lock) when dropped.
struct StopDaemon {
    state_dir: std::path::PathBuf,
}

impl Drop for StopDaemon {
    fn drop(&mut self) {
        let lock = self.state_dir.join("qmgr/store.lock");
        let Ok(pid) = std::fs::read_to_string(lock)
            .unwrap_or_default()
            .trim()
            .parse::<i32>()
        else {
            return;
        };
        // In-process, this test's own process holds the store.
        if u32::try_from(pid).ok() == Some(std::process::id()) {
            return;
        }
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// One user with a qmgrd under the runtime root and a job made through it.
struct User {
    account: OtherUser,
    job: Guid,
    /// What the user's `EnumJobs(BG_JOB_ENUM_ALL_USERS)` returned (`None` when the library
    /// is built in-process: the user's program then hosts no daemon root could reach).
    all_users_code: Option<String>,
}

impl User {
    fn start(test: &str, runtime_root: &Path, job_name: &str) -> User {
        let user = OtherUser::create(test).expect("root made the first user");
        let runtime_dir = user.make_runtime_dir(runtime_root).unwrap();
        let output = user
            .command(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_users_program",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .envs(user.qmgr_env(&runtime_dir))
            .env("QMGRD", built_qmgrd(Path::new(env!("CARGO_MANIFEST_DIR"))))
            .env(CHILD_JOB_VAR, job_name)
            .current_dir(user.home())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let said = |what: &str| {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(what))
                .map(str::to_owned)
        };
        let job = said("job ")
            .unwrap_or_else(|| panic!("the user's program made no job:\n{stdout}"))
            .parse()
            .unwrap();
        User {
            account: user,
            job,
            all_users_code: said("all-users "),
        }
    }

    fn sid(&self) -> String {
        format!("S-1-22-1-{}", self.account.uid())
    }
}

/// A user's program: makes a job with one file in the user's own qmgrd (started on
/// demand) and asks the C API for every user's jobs. Run only by the test below.
#[test]
#[ignore = "run as another user by root_reaches_every_users_jobs_through_the_c_api"]
fn a_users_program() {
    let Some(name) = std::env::var_os(CHILD_JOB_VAR) else {
        return;
    };
    let name = name.to_string_lossy().into_owned();
    let client = Client::connect_or_spawn(&StatePaths::from_env().unwrap()).unwrap();
    let job = client.create_job(&name, JobType::Download).unwrap();
    let home = std::env::var("HOME").unwrap();
    client
        .add_files(
            job,
            vec![NewFile {
                remote_name: "https://example.invalid/file".into(),
                local_name: format!("{home}/{name}"),
                ranges: None,
            }],
        )
        .unwrap();
    // On a line of its own: libtest has begun a line with the test's name.
    println!("\njob {job}");
    if cfg!(feature = "in-process") {
        return;
    }
    // SAFETY: plain call.
    let initialized =
        unsafe { qmgr_ffi::CoInitializeEx(std::ptr::null_mut(), COINIT_MULTITHREADED) };
    assert_eq!(initialized, 0);
    let manager = new_manager();
    let mut jobs = std::ptr::null_mut();
    let code = vcall!(manager, EnumJobs(BG_JOB_ENUM_ALL_USERS, &raw mut jobs));
    assert!(jobs.is_null());
    println!("all-users {code:#010x}");
    release(manager);
}

#[test]
fn root_reaches_every_users_jobs_through_the_c_api() {
    if !qmgr_tests::users::is_root() {
        println!("skipped root_reaches_every_users_jobs_through_the_c_api: it needs root");
        return;
    }
    let runtime_root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(runtime_root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Root's own queue: a qmgrd of root's in directories of this test's, started by the
    // library on demand (in-process builds host it instead).
    let own = tempfile::tempdir().unwrap();
    // SAFETY: the only test of this binary that runs by default sets the environment before
    // any thread of the library exists or reads it.
    unsafe {
        std::env::set_var(USER_RUNTIME_ROOT_VAR, runtime_root.path());
        std::env::set_var("XDG_STATE_HOME", own.path().join("state"));
        std::env::set_var("XDG_CONFIG_HOME", own.path().join("config"));
        std::env::set_var("XDG_RUNTIME_DIR", own.path().join("run"));
        std::env::set_var("QMGRD", built_qmgrd(Path::new(env!("CARGO_MANIFEST_DIR"))));
    }
    let _stop = StopDaemon {
        state_dir: own.path().join("state"),
    };
    // SAFETY: plain call.
    let initialized =
        unsafe { qmgr_ffi::CoInitializeEx(std::ptr::null_mut(), COINIT_MULTITHREADED) };
    assert_eq!(initialized, 0);

    let test = "root_reaches_every_users_jobs_through_the_c_api";
    let ann = User::start(test, runtime_root.path(), "ann-job");
    let bob = User::start(test, runtime_root.path(), "bob-job");
    for user in [&ann, &bob] {
        if let Some(code) = &user.all_users_code {
            assert_eq!(
                code,
                &format!("{:#010x}", hresult::E_ACCESSDENIED.0),
                "{}",
                user.account.name()
            );
        }
    }
    let manager = new_manager();
    let name = qmgr_ffi::wide("root-job");
    let (mut root_id, mut root_job) = (GUID::default(), std::ptr::null_mut());
    assert_eq!(
        vcall!(
            manager,
            CreateJob(
                name.as_ptr(),
                BG_JOB_TYPE_DOWNLOAD,
                &raw mut root_id,
                &raw mut root_job
            )
        ),
        0
    );
    release(root_job);
    let root_id = Guid::from(root_id);

    let all = enum_jobs(manager, BG_JOB_ENUM_ALL_USERS);
    let find = |id: Guid| all.iter().find(|job| job.id == id);
    for (user, name) in [(&ann, "ann-job"), (&bob, "bob-job")] {
        let job = find(user.job).unwrap_or_else(|| panic!("{name} not enumerated: {all:?}"));
        assert_eq!(job.owner, user.sid(), "{job:?}");
        assert_eq!(job.name, name);
    }
    assert_eq!(find(root_id).unwrap().owner, "S-1-22-1-0");
    assert_eq!(all.len(), 3, "{all:?}");
    let own = enum_jobs(manager, 0);
    assert_eq!(own.len(), 1, "without the flag only root's own: {own:?}");

    // GetJob finds Ann's job in her daemon; the object works through it.
    let job = get_job(manager, ann.job).unwrap();
    assert_eq!(seen(job).owner, ann.sid());
    let mut state = 99;
    assert_eq!(vcall!(job, GetState(&raw mut state)), 0);
    assert_eq!(state, BG_JOB_STATE_SUSPENDED);
    let mut files = std::ptr::null_mut();
    assert_eq!(vcall!(job, EnumFiles(&raw mut files)), 0);
    let mut count = 0;
    assert_eq!(vcall!(files, GetCount(&raw mut count)), 0);
    assert_eq!(count, 1);
    release(files);
    let renamed = qmgr_ffi::wide("renamed by root");
    assert_eq!(
        vcall!(job, SetDisplayName(renamed.as_ptr())),
        hresult::E_ACCESSDENIED.0,
        "root may not change another user's job"
    );
    // Callbacks follow root's own queue only: refused rather than never called.
    assert_eq!(
        vcall!(job, SetNotifyInterface(manager.cast::<IUnknown>())),
        hresult::E_NOTIMPL.0
    );
    assert_eq!(vcall!(job, SetNotifyInterface(std::ptr::null_mut())), 0);
    release(job);

    // Cancel reaches Bob's daemon.
    let job = get_job(manager, bob.job).unwrap();
    assert_eq!(vcall!(job, Cancel()), 0);
    release(job);
    assert_eq!(
        get_job(manager, bob.job).unwrap_err(),
        hresult::BG_E_NOT_FOUND.0
    );
    let after = enum_jobs(manager, BG_JOB_ENUM_ALL_USERS);
    assert!(after.iter().all(|job| job.id != bob.job), "{after:?}");
    assert!(after.iter().any(|job| job.id == ann.job), "{after:?}");
    assert_eq!(
        get_job(manager, Guid::new_random()).unwrap_err(),
        hresult::BG_E_NOT_FOUND.0
    );
    release(manager);
}
