//! A client SIGKILLed in the middle of each kind of call. For every IPC request kind, a
//! client process (this test binary, run again) opens a connection, sends the call, and
//! is killed at one of three moments: with half of the call's frame written, with all of
//! it written and nothing read, and with the first bytes of the answer read. Each time:
//!
//! - the service stays up (the same process all along);
//! - what the call touches (its jobs, groups and files on disk) looks afterwards either
//!   as before the call or as after the same call made by a well-behaved client on a twin
//!   made in the same way: a call is carried out whole or not at all, never half;
//! - a well-behaved client is served.
//!
//! With `QMGR_RELIABILITY_RESULTS=PATH` the outcome is written into the `crashes` section
//! of PATH.

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Instance;
use qmgr_core::ranges::FileRange;
use qmgr_core::service::{GroupChange, JobChange, NewFile, QueueService, QueueServiceExt, Request};
use qmgr_core::{Guid, JobPriority, JobState, JobType, hresult};
use qmgr_ipc::Client;
use qmgr_ipc::frame::{MAX_HANDSHAKE_FRAME_LEN, encode_frame, read_frame};
use qmgr_ipc::message::{ClientMessage, Purpose, ServiceMessage};
use qmgr_tests::TestServer;
use qmgr_tests::results::{results_file, write_part};

/// Tells the child process which socket to use and where the frames to send are.
const CHILD_ENV: &str = "QMGR_CLIENT_KILL_CHILD";
/// SIGKILL's number, the same on every Linux architecture.
const SIGKILL: i32 = 9;

/// When the client is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    /// Half of the call's bytes written (after the frames before it, for a call in
    /// parts: the service holds the parts, and the call never comes).
    HalfSent,
    /// The whole call written, nothing read.
    Sent,
    /// The first bytes of the answer read, the rest not.
    Answering,
}

const MOMENTS: [Moment; 3] = [Moment::HalfSent, Moment::Sent, Moment::Answering];

impl Moment {
    fn name(self) -> &'static str {
        match self {
            Moment::HalfSent => "half-sent",
            Moment::Sent => "sent",
            Moment::Answering => "answering",
        }
    }
}

/// The child: connects for calls or notifications, says hello, writes the frames (all of
/// them, or up to the half of the last), reads one byte of the answer (or of the first
/// notification) when asked to, says `READY` on stdout and waits to be killed.
#[test]
#[ignore = "runs only as a child process of the tests below"]
fn killed_client() {
    let Some(spec) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let spec = PathBuf::from(spec);
    let socket = std::fs::read_to_string(spec.join("socket")).unwrap();
    let frames = std::fs::read(spec.join("frames")).unwrap();
    let moment = std::fs::read_to_string(spec.join("moment")).unwrap();
    let cut: usize = std::fs::read_to_string(spec.join("cut"))
        .unwrap()
        .parse()
        .unwrap();
    let purpose = match std::fs::read_to_string(spec.join("purpose"))
        .unwrap()
        .as_str()
    {
        "notifications" => Purpose::Notifications,
        _ => Purpose::Calls,
    };
    let mut stream = UnixStream::connect(socket.trim()).unwrap();
    stream
        .write_all(&encode_frame(&hello("killed client", purpose)).unwrap())
        .unwrap();
    let welcome: ServiceMessage = read_frame(&mut stream, MAX_HANDSHAKE_FRAME_LEN).unwrap();
    assert!(
        matches!(welcome, ServiceMessage::Welcome { .. }),
        "{welcome:?}"
    );
    match moment.trim() {
        "half-sent" => stream.write_all(&frames[..cut]).unwrap(),
        "sent" => stream.write_all(&frames).unwrap(),
        _ => {
            stream.write_all(&frames).unwrap();
            let mut first = [0u8; 1];
            stream.read_exact(&mut first).unwrap();
        }
    }
    println!("READY");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn hello(name: &str, purpose: Purpose) -> ClientMessage {
    ClientMessage::Hello {
        protocol_version: qmgr_core::service::PROTOCOL_VERSION,
        purpose,
        client_name: name.to_owned(),
    }
}

/// What a call is made on: what the test made for it, under a label of its own.
struct Subject {
    label: String,
    dir: PathBuf,
    job: Option<Guid>,
    group: Option<Guid>,
    /// The id a CreateGroupJob gives its new job.
    new_job: Guid,
}

/// What a call needs in place.
#[derive(Clone, Copy, Debug)]
enum Fixture {
    Nothing,
    /// A suspended job without files.
    EmptyJob,
    /// A suspended job of one file (whose server, once resumed, waits before answering).
    SuspendedJob,
    /// A job of one file, resumed: its server waits before answering.
    ActiveJob,
    /// A job whose one file is transferred, waiting for Complete.
    TransferredJob,
    /// A group without a job.
    Group,
    /// A group whose job has one file, suspended.
    GroupWithJob,
}

/// One kind of call: its name, what it needs, and its frames for a subject.
struct Kind {
    name: &'static str,
    fixture: Fixture,
    frames: fn(&Subject) -> Vec<ClientMessage>,
}

fn call(request: Request) -> Vec<ClientMessage> {
    vec![ClientMessage::Call { id: 1, request }]
}

fn job(subject: &Subject) -> Guid {
    subject.job.expect("the fixture has a job")
}

fn group(subject: &Subject) -> Guid {
    subject.group.expect("the fixture has a group")
}

fn new_files(subject: &Subject, count: usize) -> Vec<NewFile> {
    (0..count)
        .map(|n| NewFile {
            remote_name: format!("http://127.0.0.1:9/data/1k/{}-{n}", subject.label),
            local_name: subject
                .dir
                .join(format!("added-{n}"))
                .to_string_lossy()
                .into_owned(),
            ranges: None,
        })
        .collect()
}

/// Every request kind, in [`Request`]'s order (the match in `covered` keeps the list
/// whole), and AddFiles in parts.
fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            name: "Ping",
            fixture: Fixture::Nothing,
            frames: |_| call(Request::Ping),
        },
        Kind {
            name: "CreateJob",
            fixture: Fixture::Nothing,
            frames: |s| {
                call(Request::CreateJob {
                    display_name: format!("{} new", s.label),
                    job_type: JobType::Download,
                    umask: Some(0o022),
                })
            },
        },
        Kind {
            name: "GetJob",
            fixture: Fixture::SuspendedJob,
            frames: |s| call(Request::GetJob { job: job(s) }),
        },
        Kind {
            name: "ListJobs",
            fixture: Fixture::SuspendedJob,
            frames: |_| {
                call(Request::ListJobs {
                    all_users: false,
                    after: None,
                })
            },
        },
        Kind {
            name: "GetJobSummary",
            fixture: Fixture::SuspendedJob,
            frames: |s| call(Request::GetJobSummary { job: job(s) }),
        },
        Kind {
            name: "ListJobSummaries",
            fixture: Fixture::SuspendedJob,
            frames: |_| {
                call(Request::ListJobSummaries {
                    all_users: false,
                    after: None,
                })
            },
        },
        Kind {
            name: "GetJobFiles",
            fixture: Fixture::SuspendedJob,
            frames: |s| {
                call(Request::GetJobFiles {
                    job: job(s),
                    start: 0,
                    max: None,
                })
            },
        },
        Kind {
            name: "AddFiles",
            fixture: Fixture::EmptyJob,
            frames: |s| {
                call(Request::AddFiles {
                    job: job(s),
                    files: new_files(s, 3),
                })
            },
        },
        Kind {
            name: "AddFiles in two parts",
            fixture: Fixture::EmptyJob,
            frames: |s| {
                let mut files = new_files(s, 3);
                let last = files.split_off(2);
                vec![
                    ClientMessage::AddFilesPart { job: job(s), files },
                    ClientMessage::Call {
                        id: 1,
                        request: Request::AddFiles {
                            job: job(s),
                            files: last,
                        },
                    },
                ]
            },
        },
        Kind {
            name: "Resume",
            fixture: Fixture::SuspendedJob,
            frames: |s| call(Request::Resume { job: job(s) }),
        },
        Kind {
            name: "Suspend",
            fixture: Fixture::ActiveJob,
            frames: |s| call(Request::Suspend { job: job(s) }),
        },
        Kind {
            name: "Cancel",
            fixture: Fixture::SuspendedJob,
            frames: |s| call(Request::Cancel { job: job(s) }),
        },
        Kind {
            name: "Complete",
            fixture: Fixture::TransferredJob,
            frames: |s| call(Request::Complete { job: job(s) }),
        },
        Kind {
            name: "CompleteWithoutReplacing",
            fixture: Fixture::TransferredJob,
            frames: |s| call(Request::CompleteWithoutReplacing { job: job(s) }),
        },
        Kind {
            name: "TakeOwnership",
            fixture: Fixture::SuspendedJob,
            frames: |s| call(Request::TakeOwnership { job: job(s) }),
        },
        Kind {
            name: "SetJob (priority)",
            fixture: Fixture::SuspendedJob,
            frames: |s| {
                call(Request::SetJob {
                    job: job(s),
                    change: JobChange::Priority(JobPriority::High),
                })
            },
        },
        Kind {
            name: "SetJob (display name)",
            fixture: Fixture::SuspendedJob,
            frames: |s| {
                call(Request::SetJob {
                    job: job(s),
                    change: JobChange::DisplayName(format!("{} renamed", s.label)),
                })
            },
        },
        Kind {
            name: "CreateGroup",
            fixture: Fixture::Nothing,
            frames: |s| call(Request::CreateGroup { group: group(s) }),
        },
        Kind {
            name: "GetGroup",
            fixture: Fixture::Group,
            frames: |s| call(Request::GetGroup { group: group(s) }),
        },
        Kind {
            name: "ListGroups",
            fixture: Fixture::Group,
            frames: |_| call(Request::ListGroups { after: None }),
        },
        Kind {
            name: "CreateGroupJob",
            fixture: Fixture::Group,
            frames: |s| {
                call(Request::CreateGroupJob {
                    group: group(s),
                    job: s.new_job,
                    umask: Some(0o022),
                })
            },
        },
        Kind {
            name: "SetGroup",
            fixture: Fixture::Group,
            frames: |s| {
                call(Request::SetGroup {
                    group: group(s),
                    change: GroupChange::DisplayName(format!("{} group", s.label)),
                })
            },
        },
        Kind {
            name: "ResumeGroup",
            fixture: Fixture::GroupWithJob,
            frames: |s| call(Request::ResumeGroup { group: group(s) }),
        },
        Kind {
            name: "SuspendGroup",
            fixture: Fixture::GroupWithJob,
            frames: |s| call(Request::SuspendGroup { group: group(s) }),
        },
        Kind {
            name: "CancelGroup",
            fixture: Fixture::GroupWithJob,
            frames: |s| call(Request::CancelGroup { group: group(s) }),
        },
        Kind {
            name: "SwitchGroupToForeground",
            fixture: Fixture::GroupWithJob,
            frames: |s| call(Request::SwitchGroupToForeground { group: group(s) }),
        },
        Kind {
            name: "GetFileResponseHeaders",
            fixture: Fixture::TransferredJob,
            frames: |s| {
                call(Request::GetFileResponseHeaders {
                    job: job(s),
                    file: 0,
                })
            },
        },
        Kind {
            name: "GetReplyData",
            fixture: Fixture::SuspendedJob,
            frames: |s| call(Request::GetReplyData { job: job(s) }),
        },
        Kind {
            name: "SetCertificateValidator",
            fixture: Fixture::SuspendedJob,
            frames: |s| {
                call(Request::SetCertificateValidator {
                    job: job(s),
                    client: Some(std::process::id()),
                })
            },
        },
        Kind {
            name: "GetCertificateCheck",
            fixture: Fixture::SuspendedJob,
            frames: |s| {
                call(Request::GetCertificateCheck {
                    job: job(s),
                    check: 1,
                })
            },
        },
        Kind {
            name: "CertificateVerdict",
            fixture: Fixture::SuspendedJob,
            frames: |s| {
                call(Request::CertificateVerdict {
                    job: job(s),
                    check: 1,
                    verdict: hresult::S_OK,
                })
            },
        },
        Kind {
            name: "RequestFileRanges",
            fixture: Fixture::SuspendedJob,
            frames: |s| {
                call(Request::RequestFileRanges {
                    job: job(s),
                    file: 0,
                    ranges: vec![FileRange {
                        offset: 0,
                        length: 100,
                    }],
                })
            },
        },
        Kind {
            name: "UpdateDownloadPosition",
            fixture: Fixture::SuspendedJob,
            frames: |s| {
                call(Request::UpdateDownloadPosition {
                    job: job(s),
                    file: 0,
                    offset: 10,
                })
            },
        },
        Kind {
            name: "GetPolicy",
            fixture: Fixture::Nothing,
            frames: |_| call(Request::GetPolicy),
        },
    ]
}

/// Fails to compile when a request kind is added without a case in [`kinds`]: add one
/// there, then here.
#[expect(dead_code, reason = "compiled for its exhaustive match only")]
fn covered(request: &Request) {
    match request {
        Request::Ping
        | Request::CreateJob { .. }
        | Request::GetJob { .. }
        | Request::ListJobs { .. }
        | Request::GetJobSummary { .. }
        | Request::ListJobSummaries { .. }
        | Request::GetJobFiles { .. }
        | Request::AddFiles { .. }
        | Request::Resume { .. }
        | Request::Suspend { .. }
        | Request::Cancel { .. }
        | Request::Complete { .. }
        | Request::CompleteWithoutReplacing { .. }
        | Request::TakeOwnership { .. }
        | Request::SetJob { .. }
        | Request::CreateGroup { .. }
        | Request::GetGroup { .. }
        | Request::ListGroups { .. }
        | Request::CreateGroupJob { .. }
        | Request::SetGroup { .. }
        | Request::ResumeGroup { .. }
        | Request::SuspendGroup { .. }
        | Request::CancelGroup { .. }
        | Request::SwitchGroupToForeground { .. }
        | Request::GetFileResponseHeaders { .. }
        | Request::GetReplyData { .. }
        | Request::SetCertificateValidator { .. }
        | Request::GetCertificateCheck { .. }
        | Request::CertificateVerdict { .. }
        | Request::RequestFileRanges { .. }
        | Request::UpdateDownloadPosition { .. }
        | Request::GetPolicy => {}
    }
}

/// The query of a file that stays under way for the whole test: its server waits ten
/// minutes before answering.
const WAIT: &str = "?delay_ms=600000";

/// Makes what `fixture` asks for, under `label`.
fn prepare(
    client: &Client,
    server: &TestServer,
    instance: &Instance,
    fixture: Fixture,
    label: &str,
) -> Subject {
    let dir = instance.dir(&format!("subjects/{label}"));
    let mut subject = Subject {
        label: label.to_owned(),
        dir: dir.clone(),
        job: None,
        group: Some(Guid::new_random()),
        new_job: Guid::new_random(),
    };
    let one_file = |name: &str, query: &str| {
        let id = client.create_job(label, JobType::Download).unwrap();
        client
            .add_file(
                id,
                &server.url(&format!("/data/2k/{label}{query}")),
                &dir.join(name).to_string_lossy(),
            )
            .unwrap();
        id
    };
    match fixture {
        Fixture::Nothing => {}
        Fixture::EmptyJob => {
            subject.job = Some(client.create_job(label, JobType::Download).unwrap());
        }
        Fixture::SuspendedJob => subject.job = Some(one_file("file", WAIT)),
        Fixture::ActiveJob => {
            let id = one_file("file", WAIT);
            client.resume(id).unwrap();
            subject.job = Some(id);
        }
        Fixture::TransferredJob => {
            let id = one_file("file", "");
            // FOREGROUND, so that the waiting background jobs do not hold it back.
            client
                .set_job(id, JobChange::Priority(JobPriority::Foreground))
                .unwrap();
            client.resume(id).unwrap();
            common::wait_for_state(client, id, JobState::Transferred);
            subject.job = Some(id);
        }
        Fixture::Group | Fixture::GroupWithJob => {
            let group = group(&subject);
            client.create_group(group).unwrap();
            if matches!(fixture, Fixture::GroupWithJob) {
                let id = Guid::new_random();
                client
                    .execute(Request::CreateGroupJob {
                        group,
                        job: id,
                        umask: None,
                    })
                    .unwrap();
                client
                    .add_file(
                        id,
                        &server.url(&format!("/data/2k/{label}{WAIT}")),
                        &dir.join("file").to_string_lossy(),
                    )
                    .unwrap();
                subject.job = Some(id);
            }
        }
    }
    subject
}

/// What a call could change about its subject, with the subject's label, ids and
/// temporary names written the same for every subject, so that two subjects made alike
/// and treated alike look the same.
fn shape(client: &Client, subject: &Subject) -> String {
    let mut text = String::new();
    let mut jobs: Vec<_> = client
        .jobs(false)
        .unwrap()
        .into_iter()
        .filter(|view| {
            view.job.display_name.starts_with(&subject.label)
                || Some(view.job.id) == subject.job
                || view.job.id == subject.new_job
        })
        .collect();
    jobs.sort_by(|a, b| a.job.display_name.cmp(&b.job.display_name));
    for view in jobs {
        let job = &view.job;
        // A job under way may be anywhere between queued and retrying, depending on when
        // it is looked at.
        let state = if job.state.is_active() || job.state == JobState::TransientError {
            "UNDERWAY".to_owned()
        } else {
            job.state.to_string()
        };
        let _ = writeln!(
            text,
            "job {} {:?} {state} {:?} group={} error={:?} settings={:?}",
            job.display_name,
            job.job_type,
            job.priority,
            job.group.is_some(),
            job.error
                .as_ref()
                .filter(|_| job.state == JobState::Error)
                .map(|e| e.error.hresult),
            job.settings,
        );
        for file in &job.files {
            let _ = writeln!(
                text,
                "  file {} -> {} total={} completed={}",
                file.remote_name, file.local_name, file.bytes_total, file.completed,
            );
        }
    }
    if let Some(group) = subject.group {
        match client.group(group) {
            Ok(view) => {
                let _ = writeln!(
                    text,
                    "group {:?} {:?} foreground={} job={:?}",
                    view.group.display_name,
                    view.group.description,
                    view.group.foreground,
                    view.job.map(|j| j.job.state),
                );
            }
            Err(error) => {
                let _ = writeln!(text, "no group: {}", error.hresult);
            }
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(&subject.dir)
        .unwrap()
        .flatten()
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let size = entry.metadata().map(|m| m.len()).unwrap_or_default();
            if qmgr_core::file::is_temp_file_name(entry.file_name().as_ref()) {
                format!("(temporary file) {size}")
            } else {
                format!("{name} {size}")
            }
        })
        .collect();
    names.sort();
    let _ = writeln!(text, "disk: {}", names.join(", "));
    let mut text = text.replace(&subject.label, "LABEL");
    for id in [subject.job, subject.group, Some(subject.new_job)]
        .into_iter()
        .flatten()
    {
        text = text.replace(&id.to_string(), "ID");
    }
    text
}

/// How a killed call ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Its subject looks as after the call.
    CarriedOut,
    /// Its subject looks as before the call.
    NotCarriedOut,
    /// The call changes nothing (it only reads).
    Unchanging,
}

/// A killed call, with the two shapes its subject may have afterwards.
struct Checked {
    what: String,
    moment: Moment,
    subject: Subject,
    before: String,
    after: String,
}

impl Checked {
    /// How the call ended, once its subject is in one of the allowed shapes; what is
    /// wrong when it never gets there (a call still under way in the service may take a
    /// moment to finish).
    fn settled(&self, client: &Client) -> Result<Outcome, String> {
        let deadline = Instant::now() + SETTLE_PATIENCE;
        loop {
            let now = shape(client, &self.subject);
            if now == self.after && now == self.before {
                return Ok(Outcome::Unchanging);
            }
            if now == self.after {
                return Ok(Outcome::CarriedOut);
            }
            if now == self.before {
                return Ok(Outcome::NotCarriedOut);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: neither as before nor as after the call:\n--- before\n{}--- after the call\n{}--- found\n{now}",
                    self.what, self.before, self.after
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A child that sends `frames` and is killed at `moment`; panics unless SIGKILL ended it.
fn kill_a_client(
    spec: &Path,
    socket: &Path,
    purpose: Purpose,
    frames: &[ClientMessage],
    moment: Moment,
    poke: &dyn Fn(),
) {
    let encoded: Vec<Vec<u8>> = frames
        .iter()
        .map(|frame| encode_frame(frame).unwrap())
        .collect();
    let cut = encoded.split_last().map_or(0, |(last, before)| {
        before.iter().map(Vec::len).sum::<usize>() + last.len() / 2
    });
    std::fs::write(spec.join("cut"), cut.to_string()).unwrap();
    std::fs::write(spec.join("socket"), socket.to_string_lossy().as_bytes()).unwrap();
    std::fs::write(spec.join("frames"), encoded.concat()).unwrap();
    std::fs::write(spec.join("moment"), moment.name()).unwrap();
    let purpose_name = match purpose {
        Purpose::Calls => "calls",
        Purpose::Notifications => "notifications",
    };
    std::fs::write(spec.join("purpose"), purpose_name).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_client",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (lines, ready_line) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if line.contains("READY") && lines.send(()).is_err() {
                return;
            }
        }
    });
    // A subscriber reaches its moment once something happens to tell it about.
    let deadline = Instant::now() + SETTLE_PATIENCE;
    let mut ready = false;
    while !ready && Instant::now() < deadline {
        match ready_line.recv_timeout(Duration::from_millis(20)) {
            Ok(()) => ready = true,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => poke(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(
        ready && status.signal() == Some(SIGKILL),
        "the {purpose_name} client of {frames:?} at {moment:?} did not reach its moment ({status:?}):\n{stderr}"
    );
}

/// How long the service may take to settle after a kill before the shapes are compared
/// (a guard against hanging, not a timing assertion).
const SETTLE_PATIENCE: Duration = Duration::from_secs(10);

#[test]
fn a_client_killed_mid_call_harms_nothing() {
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let daemons = instance.daemons();
    assert_eq!(daemons.len(), 1);
    let socket = instance.paths().socket_path();
    let spec = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let kinds = kinds();
    let mut wrong = Vec::new();
    let mut checks = Vec::new();
    let mut kills = 0;
    for (number, kind) in kinds.iter().enumerate() {
        for moment in MOMENTS {
            let killed = prepare(
                &client,
                &server,
                &instance,
                kind.fixture,
                &format!("k{number}-{}-", moment.name()),
            );
            let twin = prepare(
                &client,
                &server,
                &instance,
                kind.fixture,
                &format!("t{number}-{}-", moment.name()),
            );
            let before = shape(&client, &killed);
            assert_eq!(
                before,
                shape(&client, &twin),
                "{}: the twins differ",
                kind.name
            );
            kill_a_client(
                spec.path(),
                &socket,
                Purpose::Calls,
                &(kind.frames)(&killed),
                moment,
                &|| {},
            );
            kills += 1;
            // The well-behaved call on the twin, once the killed one is over (a call is
            // carried out before the next on any connection is read).
            for frame in (kind.frames)(&twin) {
                match frame {
                    ClientMessage::Call { request, .. } => {
                        let _ = client.execute(request);
                    }
                    ClientMessage::AddFilesPart { job, files } => {
                        // A well-behaved client sends parts only for lists too long for
                        // one frame; the same files in one call do the same.
                        let mut all = files;
                        if let Some(ClientMessage::Call {
                            request: Request::AddFiles { files, .. },
                            ..
                        }) = (kind.frames)(&twin).pop()
                        {
                            all.extend(files);
                        }
                        let _ = client.execute(Request::AddFiles { job, files: all });
                        break;
                    }
                    ClientMessage::Hello { .. } => unreachable!(),
                }
            }
            let after = shape(&client, &twin);
            let checked = Checked {
                what: format!("{} killed {}", kind.name, moment.name()),
                moment,
                subject: killed,
                before,
                after,
            };
            if let Err(why) = checked.settled(&client) {
                wrong.push(why);
            }
            checks.push(checked);
            if instance.daemons() != daemons {
                wrong.push(format!(
                    "{} killed {}: the service is not the same process any more\n{}",
                    kind.name,
                    moment.name(),
                    instance.log()
                ));
                break;
            }
            // A well-behaved client is served.
            client
                .ping()
                .unwrap_or_else(|e| panic!("{}: {e}", kind.name));
        }
    }
    // Once more at the end, long after every call: a call carried out late must still
    // have been carried out whole.
    let mut carried_out = 0;
    let mut not_carried_out = 0;
    for checked in &checks {
        match checked.settled(&client) {
            // Half a frame is no call.
            Ok(Outcome::CarriedOut) if checked.moment == Moment::HalfSent => {
                wrong.push(format!("{}: carried out from half its frame", checked.what));
            }
            Ok(Outcome::CarriedOut) => carried_out += 1,
            Ok(Outcome::NotCarriedOut) => not_carried_out += 1,
            Ok(Outcome::Unchanging) => {}
            Err(why) => wrong.push(why),
        }
    }
    let took = started.elapsed();
    let summary = format!(
        "| {} request kinds (every `Request`, and AddFiles in parts) × 3 moments | {kills} | {} | {carried_out} | {} | {:.1} s |",
        kinds.len(),
        if wrong.is_empty() { "yes" } else { "**no**" },
        not_carried_out,
        took.as_secs_f64()
    );
    println!("{summary}");
    if let Some(results) = results_file() {
        let body = format!(
            "### Clients killed mid-call\n\n\
             For every kind of call, a client process sends it to a real qmgrd and is \
             SIGKILLed at one of three moments: half the call's frame written, all of it \
             written and nothing read, the first bytes of the answer read \
             (`crates/qmgr-service/tests/client_kills.rs`). Afterwards the service must be \
             the same process, serve a well-behaved client, and the call's jobs, groups and \
             files on disk must look either as before the call or as after the same call \
             made whole on a twin.\n\n\
             \"Carried out\" and \"not carried out\" count the calls that change something \
             (the others only read).\n\n\
             | case | kills | service up, state whole | carried out | not carried out | took |\n\
             |---|---|---|---|---|---|\n{summary}\n"
        );
        write_part(&results, "crashes", "crashes-clients", &body).unwrap();
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// Subscribers killed just after the handshake and while notifications come: the service
/// stays up, goes on changing jobs without waiting for them, and a well-behaved
/// subscriber hears what happens next.
#[test]
fn a_subscriber_killed_mid_stream_harms_nothing() {
    let instance = Instance::new();
    let client = instance.client();
    let daemons = instance.daemons();
    let socket = instance.paths().socket_path();
    let spec = tempfile::tempdir().unwrap();
    let id = client.create_job("watched", JobType::Download).unwrap();
    let changes = std::cell::Cell::new(0u32);
    let poke = || {
        changes.set(changes.get() + 1);
        client
            .set_job(
                id,
                JobChange::Description(format!("change {}", changes.get())),
            )
            .unwrap();
    };
    for round in 0..5 {
        for moment in [Moment::Sent, Moment::Answering] {
            kill_a_client(
                spec.path(),
                &socket,
                Purpose::Notifications,
                &[],
                moment,
                &poke,
            );
            // Changes right after the kill meet the dead subscriber's connection.
            for _ in 0..20 {
                poke();
            }
            assert_eq!(
                instance.daemons(),
                daemons,
                "round {round}, killed {}: the service is not the same process\n{}",
                moment.name(),
                instance.log()
            );
        }
    }
    let notifications = client.subscribe().unwrap();
    poke();
    let heard = notifications
        .recv_timeout(SETTLE_PATIENCE)
        .expect("a well-behaved subscriber hears the next change");
    assert_eq!(heard.job, id);
    assert_eq!(
        client.job(id).unwrap().job.description,
        format!("change {}", changes.get())
    );
}
