//! Every request, answer and notification survives encoding and decoding unchanged, and
//! no sequence of bytes makes decoding panic.

use std::time::Duration;

use proptest::prelude::*;
use qmgr_core::certificate::{CertificateSelector, ClientCertificate};
use qmgr_core::file::FileRecord;
use qmgr_core::group::Group;
use qmgr_core::hresult;
use qmgr_core::job::{
    AutoComplete, JobError, JobSettings, NotifyCommand, ProxySettings, ProxyUsage,
};
use qmgr_core::policy::{CostSource, MeteredSetting, PriorityCaps};
use qmgr_core::service::{
    Attempt, CertificateCheck, GroupChange, GroupView, IndexedFile, JobChange, JobSummary, JobView,
    ListCursor, NewFile, Notification, NotificationKind, PolicyChange, PolicyView, Request,
    Response, WaitReason,
};
use qmgr_core::{ErrorContext, Guid, Job, JobPriority, JobState, JobType, QmgrError, Timestamp};
use qmgr_ipc::frame::{MAX_FRAME_LEN, decode, encode_frame, read_frame};
use qmgr_ipc::message::{ClientMessage, Purpose, ServiceMessage, request_name};

fn guid(n: u8) -> Guid {
    Guid::from_be_bytes([n; 16])
}

fn sample_job_changes() -> Vec<JobChange> {
    vec![
        JobChange::DisplayName("name ✓".into()),
        JobChange::Description(String::new()),
        JobChange::Priority(JobPriority::Foreground),
        JobChange::MinimumRetryDelay(Duration::from_secs(60)),
        JobChange::NoProgressTimeout(Duration::from_millis(1500)),
        JobChange::NotifyFlags(0x3F),
        JobChange::NotifyCommand(Some(NotifyCommand {
            program: "/usr/bin/notify-send".into(),
            parameters: Some("done \"quoted\"".into()),
        })),
        JobChange::NotifyCommand(None),
        JobChange::Proxy(ProxySettings {
            usage: ProxyUsage::Override,
            proxy_list: Some("http://proxy:3128".into()),
            bypass_list: None,
        }),
        JobChange::CustomHeaders(Some("X-A: 1\r\nX-B: 2".into())),
        JobChange::CustomHeaders(None),
        JobChange::SecurityFlags(u32::MAX),
        JobChange::MaxDownloadSize(Some(u64::MAX)),
        JobChange::MaxDownloadSize(None),
        JobChange::ParallelFiles(16),
        JobChange::BandwidthLimit(Some(20_000_000)),
        JobChange::BandwidthLimit(None),
        JobChange::ClientCertificate(Some(ClientCertificate {
            store_location: 1,
            store_name: "MY".into(),
            selector: CertificateSelector::Subject("CN=client".into()),
        })),
        JobChange::ClientCertificate(Some(ClientCertificate {
            store_location: 0,
            store_name: "Trusted People".into(),
            selector: CertificateSelector::Sha1([0xAB; 20]),
        })),
        JobChange::ClientCertificate(None),
        JobChange::AutoComplete(Some(AutoComplete::Replace)),
        JobChange::AutoComplete(Some(AutoComplete::NoClobber)),
        JobChange::AutoComplete(None),
        JobChange::FirstRetryDelay(Some(Duration::from_secs(5))),
        JobChange::FirstRetryDelay(None),
        JobChange::RemoteName {
            file: 3,
            remote_name: "https://example.invalid/a?b=c".into(),
        },
        JobChange::MaximumDownloadTime(Duration::from_secs(86_400)),
        JobChange::ReplyFileName(Some("/home/u/reply.bin".into())),
        JobChange::ReplyFileName(None),
        JobChange::MinimumNotificationInterval(Duration::from_millis(500)),
        JobChange::HttpMethod("POST".into()),
        JobChange::DynamicContent(true),
        JobChange::HighPerformance(false),
        JobChange::OnDemand(true),
        JobChange::CostFlags(Some(0x8000_0021)),
        JobChange::CostFlags(None),
        JobChange::IdleMode(false),
        JobChange::MakeCustomHeadersWriteOnly,
    ]
}

fn sample_group_changes() -> Vec<GroupChange> {
    vec![
        GroupChange::DisplayName("group".into()),
        GroupChange::Description("about".into()),
        GroupChange::NotifyFlags(0x47),
        GroupChange::NotifyClsid(Some(guid(9))),
        GroupChange::NotifyClsid(None),
    ]
}

fn sample_requests() -> Vec<Request> {
    let mut requests = vec![
        Request::Ping,
        Request::CreateJob {
            display_name: "a job".into(),
            job_type: JobType::UploadReply,
            umask: Some(0o027),
        },
        Request::GetJob { job: guid(1) },
        Request::GetJobSummary { job: guid(2) },
        Request::ListJobSummaries {
            all_users: true,
            after: Some(ListCursor {
                key: -1,
                id: guid(4),
            }),
        },
        Request::GetJobFiles {
            job: guid(3),
            start: u32::MAX,
            max: Some(1),
        },
        Request::ListJobs {
            all_users: true,
            after: None,
        },
        Request::ListJobs {
            all_users: false,
            after: Some(ListCursor {
                key: 41,
                id: guid(9),
            }),
        },
        Request::AddFiles {
            job: guid(1),
            files: vec![
                NewFile {
                    remote_name: "https://example.invalid/file".into(),
                    local_name: "/tmp/file".into(),
                    ranges: None,
                },
                NewFile {
                    remote_name: "/srv/local copy".into(),
                    local_name: "/tmp/ünïcode".into(),
                    ranges: None,
                },
                NewFile {
                    remote_name: "https://example.invalid/delta".into(),
                    local_name: "/tmp/delta".into(),
                    ranges: Some(vec![
                        qmgr_core::ranges::FileRange {
                            offset: 900,
                            length: 100,
                        },
                        qmgr_core::ranges::FileRange {
                            offset: 100,
                            length: qmgr_core::ranges::LENGTH_TO_EOF,
                        },
                    ]),
                },
            ],
        },
        Request::Resume { job: guid(2) },
        Request::Suspend { job: guid(3) },
        Request::Cancel { job: guid(4) },
        Request::Complete { job: guid(5) },
        Request::CompleteWithoutReplacing { job: guid(5) },
        Request::TakeOwnership { job: guid(6) },
        Request::CreateGroup { group: guid(7) },
        Request::GetGroup { group: guid(7) },
        Request::ListGroups { after: None },
        Request::ListGroups {
            after: Some(ListCursor {
                key: -3,
                id: guid(7),
            }),
        },
        Request::CreateGroupJob {
            group: guid(7),
            job: guid(8),
            umask: None,
        },
        Request::ResumeGroup { group: guid(7) },
        Request::SuspendGroup { group: guid(7) },
        Request::CancelGroup { group: guid(7) },
        Request::SwitchGroupToForeground { group: guid(7) },
        Request::GetFileResponseHeaders {
            job: guid(8),
            file: u32::MAX,
        },
        Request::GetReplyData { job: guid(8) },
        Request::SetCertificateValidator {
            job: guid(3),
            client: Some(4242),
        },
        Request::SetCertificateValidator {
            job: guid(3),
            client: None,
        },
        Request::GetCertificateCheck {
            job: guid(3),
            check: u64::MAX,
        },
        Request::CertificateVerdict {
            job: guid(3),
            check: 9,
            verdict: hresult::E_ACCESSDENIED,
        },
        Request::RequestFileRanges {
            job: guid(3),
            file: 2,
            ranges: vec![qmgr_core::ranges::FileRange {
                offset: 5,
                length: qmgr_core::ranges::LENGTH_TO_EOF,
            }],
        },
        Request::UpdateDownloadPosition {
            job: guid(3),
            file: 2,
            offset: u64::MAX - 1,
        },
        Request::GetPolicy,
    ];
    requests.extend(
        sample_job_changes()
            .into_iter()
            .map(|change| Request::SetJob {
                job: guid(1),
                change,
            }),
    );
    requests.extend(
        sample_group_changes()
            .into_iter()
            .map(|change| Request::SetGroup {
                group: guid(7),
                change,
            }),
    );
    requests
}

fn sample_error() -> QmgrError {
    QmgrError::new(
        hresult::HResult::from_bits(0x8019_0194),
        ErrorContext::RemoteFile,
        "HTTP 404 for https://example.invalid/missing",
    )
}

fn sample_job_view() -> JobView {
    let mut job = Job::new(
        guid(1),
        "full job",
        JobType::Download,
        1000,
        JobSettings::default(),
        Timestamp(1_700_000_000_000_000),
    )
    .unwrap();
    let mut file = FileRecord::new("https://example.invalid/big.iso", "/tmp/big.iso");
    file.temp_name = Some("/tmp/.big.iso.qmgr-part".into());
    file.bytes_total = 1 << 40;
    file.bytes_transferred = 12345;
    file.validator.etag = Some("\"abc\"".into());
    job.files.push(file);
    job.files
        .push(FileRecord::new("ftp://example.invalid/x", "/tmp/x"));
    job.state = JobState::TransientError;
    job.priority = JobPriority::Low;
    job.error = Some(Box::new(JobError {
        error: sample_error(),
        file_index: Some(0),
        protocol: Some("https".into()),
        at: Timestamp(-5),
        retry_after: Some(std::time::Duration::from_secs(30)),
    }));
    job.error_count = 3;
    job.retry_at = Some(Timestamp(i64::MAX));
    job.group = Some(guid(7));
    job.auto_complete = Some(AutoComplete::NoClobber);
    job.retries_without_progress = 6;
    job.settings.first_retry_delay = Some(Duration::from_secs(5));
    job.settings.client_certificate = Some(Box::new(ClientCertificate {
        store_location: 7,
        store_name: "MY".into(),
        selector: CertificateSelector::Sha1([0x5A; 20]),
    }));
    JobView {
        job,
        waiting: Some(WaitReason::RetryAt {
            at: Timestamp(42),
            server_asked: true,
        }),
        attempts: vec![
            Attempt {
                at: Timestamp(1),
                file: 0,
                http_status: Some(503),
                bytes: 0,
                error: Some(sample_error()),
                restart: Some("the server's partial answer carried another ETag".into()),
            },
            Attempt {
                at: Timestamp(2),
                file: 1,
                http_status: None,
                bytes: u64::MAX,
                error: None,
                restart: None,
            },
        ],
        idle: Some(qmgr_core::idle::IdleView {
            source: qmgr_core::idle::DelaySource::Echo,
            phase: qmgr_core::idle::IdlePhase::Yielding,
            queueing_delay_us: Some(48_000),
            base_delay_us: None,
            target_us: 40_000,
            window_bytes: 12_000,
        }),
    }
}

fn sample_summary() -> JobSummary {
    let JobView {
        mut job,
        waiting,
        attempts,
        idle,
    } = sample_job_view();
    let progress = job.progress();
    let active_files = job
        .files
        .drain(..)
        .zip([3, u32::MAX])
        .map(|(file, index)| IndexedFile { index, file })
        .collect();
    JobSummary {
        job,
        progress,
        active_files,
        waiting,
        attempts,
        idle,
    }
}

fn sample_group_view() -> GroupView {
    let mut group = Group::new(guid(7), 0, Timestamp(9));
    group.notify_clsid = Some(guid(8));
    group.foreground = true;
    group.job = Some(guid(1));
    GroupView {
        group,
        job: Some(sample_job_view()),
    }
}

fn sample_responses() -> Vec<Response> {
    let mut waiting_views = Vec::new();
    for waiting in [
        None,
        Some(WaitReason::Suspended),
        Some(WaitReason::WaitingForSlot { ahead: 4 }),
        Some(WaitReason::Failed),
        Some(WaitReason::AwaitingComplete),
        Some(WaitReason::Metered { cost_state: 0x40 }),
        Some(WaitReason::CompleteFailed {
            error: sample_error(),
        }),
    ] {
        let mut view = sample_job_view();
        view.waiting = waiting;
        waiting_views.push(view);
    }
    vec![
        Response::Done(hresult::S_OK),
        Response::Done(hresult::BG_S_PARTIAL_COMPLETE),
        Response::Pong {
            service_version: "0.1.0".into(),
        },
        Response::JobCreated(guid(1)),
        Response::Job(Box::new(sample_job_view())),
        Response::JobPage {
            jobs: waiting_views,
            next: Some(ListCursor {
                key: 7,
                id: guid(1),
            }),
        },
        Response::JobPage {
            jobs: Vec::new(),
            next: None,
        },
        Response::Group(Box::new(sample_group_view())),
        Response::JobSummary(Box::new(sample_summary())),
        Response::SummaryPage {
            jobs: vec![sample_summary(), sample_summary()],
            next: None,
        },
        Response::FilePage {
            start: 7,
            files: sample_job_view().job.files,
            total: 1_000_000,
        },
        Response::GroupPage {
            groups: vec![
                sample_group_view(),
                GroupView {
                    group: Group::new(guid(2), 5, Timestamp(0)),
                    job: None,
                },
            ],
            next: None,
        },
        Response::Text(Some("HTTP/1.1 200 OK\r\nETag: \"x\"\r\n".into())),
        Response::Text(None),
        Response::ReplyData(qmgr_core::reply::ReplyData {
            data: Some(b"reply".to_vec()),
            size: 5,
        }),
        Response::ReplyData(qmgr_core::reply::ReplyData {
            data: None,
            size: 2 << 20,
        }),
        Response::CertificateCheck(Box::new(CertificateCheck {
            file: 3,
            certificate: vec![0x30, 0x82, 0x01],
            chain: vec![0x30; 300],
        })),
        Response::Policy(Box::new(sample_policy())),
    ]
}

fn sample_policy() -> PolicyView {
    PolicyView {
        cost_state: 0x40,
        cost_source: CostSource::NetworkManager { metered: 3 },
        metered: MeteredSetting::Auto,
        local_time: "fri 16:59".into(),
        caps: PriorityCaps {
            high: None,
            normal: Some(1_000_000),
            low: Some(u64::MAX),
        },
        window: Some("mon,tue,wed,thu,fri 08:00-17:00, line 4".into()),
        next: Some(PolicyChange {
            at: Timestamp(i64::MAX),
            local_time: "fri 17:00".into(),
            caps: PriorityCaps::default(),
            window: None,
        }),
        bandwidth_limit: Some(20_000_000),
        idle_mode: true,
        idle_target: Duration::from_millis(40),
    }
}

/// The position of a response's variant; adding a variant breaks this match, which is
/// the point: the samples must then cover it too.
fn response_variant(response: &Response) -> usize {
    match response {
        Response::Done(_) => 0,
        Response::Pong { .. } => 1,
        Response::JobCreated(_) => 2,
        Response::Job(_) => 3,
        Response::JobPage { .. } => 4,
        Response::Group(_) => 5,
        Response::GroupPage { .. } => 6,
        Response::JobSummary(_) => 7,
        Response::FilePage { .. } => 8,
        Response::SummaryPage { .. } => 9,
        Response::Text(_) => 10,
        Response::CertificateCheck(_) => 11,
        Response::ReplyData(_) => 12,
        Response::Policy(_) => 13,
    }
}
const RESPONSE_VARIANTS: usize = 14;

/// `request_name` matches exhaustively on `Request`, so it names every variant there is.
const REQUEST_VARIANTS: usize = 32;

fn round_trip<T>(message: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let frame = encode_frame(message).unwrap();
    read_frame(&mut frame.as_slice(), MAX_FRAME_LEN).unwrap()
}

#[test]
fn every_request_variant_round_trips() {
    let requests = sample_requests();
    let mut names: Vec<&str> = requests.iter().map(request_name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), REQUEST_VARIANTS, "samples cover {names:?}");
    for (id, request) in requests.into_iter().enumerate() {
        let call = ClientMessage::Call {
            id: u64::MAX - id as u64,
            request,
        };
        assert_eq!(round_trip(&call), call);
    }
}

#[test]
fn every_response_variant_round_trips_as_an_answer() {
    let responses = sample_responses();
    let mut covered = vec![false; RESPONSE_VARIANTS];
    for response in &responses {
        covered[response_variant(response)] = true;
    }
    assert!(covered.iter().all(|c| *c), "{covered:?}");
    for (id, response) in responses.into_iter().enumerate() {
        let answer = ServiceMessage::Answer {
            id: id as u64,
            result: Ok(response),
        };
        assert_eq!(round_trip(&answer), answer);
    }
    let failure = ServiceMessage::Answer {
        id: 0,
        result: Err(sample_error()),
    };
    assert_eq!(round_trip(&failure), failure);
}

/// A summary of a job with every name and setting at its longest (three UTF-8 bytes a
/// character where the limit counts characters) and as many moving files as a summary
/// holds, each at its longest, travels in one answer frame with room for a page's worth
/// more; so does a page of files. However many files a job has, what a watcher reads fits.
#[test]
fn a_job_at_every_limit_fits_one_frame() {
    use qmgr_core::file::{MAX_LOCAL_NAME_BYTES, MAX_REMOTE_NAME_CHARS};
    use qmgr_core::job::{
        MAX_CUSTOM_HEADERS_CHARS, MAX_DESCRIPTION_CHARS, MAX_DISPLAY_NAME_CHARS,
        MAX_NOTIFY_PARAMETERS_CHARS, MAX_NOTIFY_PROGRAM_CHARS, MAX_PROXY_LIST_CHARS,
        MAX_VALIDATOR_BYTES,
    };
    use qmgr_core::service::{LIST_PAGE_BYTES, MAX_ACTIVE_FILES};
    let wide = |chars: usize| "€".repeat(chars);
    let mut view = sample_job_view();
    let job = &mut view.job;
    job.display_name = wide(MAX_DISPLAY_NAME_CHARS);
    job.description = wide(MAX_DESCRIPTION_CHARS);
    job.settings.notify_command = Some(Box::new(NotifyCommand {
        program: wide(MAX_NOTIFY_PROGRAM_CHARS),
        parameters: Some(wide(MAX_NOTIFY_PARAMETERS_CHARS)),
    }));
    job.settings.custom_headers = Some(wide(MAX_CUSTOM_HEADERS_CHARS));
    job.settings.proxy = ProxySettings {
        usage: ProxyUsage::Override,
        proxy_list: Some(wide(MAX_PROXY_LIST_CHARS)),
        bypass_list: Some(wide(MAX_PROXY_LIST_CHARS)),
    };
    job.settings.client_certificate = Some(Box::new(ClientCertificate {
        store_location: 0,
        store_name: "s".repeat(255),
        selector: CertificateSelector::Subject(wide(1024)),
    }));
    let local = "l".repeat(MAX_LOCAL_NAME_BYTES);
    let mut file = FileRecord::new(&wide(MAX_REMOTE_NAME_CHARS), &local);
    file.temp_name = Some(format!("{local}/BIT0123456789ABCDEF.tmp"));
    file.validator.etag = Some("e".repeat(MAX_VALIDATOR_BYTES).into());
    file.validator.last_modified = Some("m".repeat(MAX_VALIDATOR_BYTES).into());
    let longest_file = file;
    // Errors name URLs and paths; give each of the six kept a generous 64 KiB.
    let mut error = sample_error();
    error.description = "d".repeat(64 * 1024);
    job.error.as_mut().unwrap().error = error.clone();
    view.attempts = vec![
        Attempt {
            at: Timestamp(1),
            file: 0,
            http_status: Some(500),
            bytes: 1,
            error: Some(error),
            restart: None,
        };
        5
    ];
    let progress = view.job.progress();
    let summary = JobSummary {
        job: view.job,
        progress,
        active_files: (0..MAX_ACTIVE_FILES)
            .map(|index| IndexedFile {
                index: u32::try_from(index).unwrap(),
                file: longest_file.clone(),
            })
            .collect(),
        waiting: view.waiting,
        attempts: view.attempts,
        idle: None,
    };
    let answer = ServiceMessage::Answer {
        id: u64::MAX,
        result: Ok(Response::JobSummary(Box::new(summary))),
    };
    let len = encode_frame(&answer).unwrap().len();
    assert!(
        len + LIST_PAGE_BYTES <= MAX_FRAME_LEN as usize,
        "the largest summary takes {len} bytes"
    );
    // A page stops at LIST_PAGE_BYTES, or holds one file alone.
    let per_page = LIST_PAGE_BYTES / qmgr_ipc::frame::encoded_len(&longest_file) + 1;
    let page = ServiceMessage::Answer {
        id: u64::MAX,
        result: Ok(Response::FilePage {
            start: 0,
            files: vec![longest_file; per_page],
            total: u32::MAX,
        }),
    };
    let len = encode_frame(&page).unwrap().len();
    assert!(
        len + LIST_PAGE_BYTES <= MAX_FRAME_LEN as usize,
        "the largest page takes {len} bytes"
    );
}

#[test]
fn handshake_messages_and_notifications_round_trip() {
    let mut messages = vec![
        ServiceMessage::Welcome {
            protocol_version: 1,
            service_version: "0.1.0".into(),
            peer_uid: u32::MAX,
        },
        ServiceMessage::Refused(QmgrError::from_code(hresult::E_ACCESSDENIED)),
    ];
    for kind in [
        NotificationKind::Transferred,
        NotificationKind::Error,
        NotificationKind::Modification,
        NotificationKind::FileTransferred { file: 7 },
        NotificationKind::CertificateCheck {
            check: 12,
            file: 7,
            client: 4242,
        },
        NotificationKind::FileRangesTransferred {
            file: 7,
            ranges: vec![
                qmgr_core::ranges::FileRange {
                    offset: 10,
                    length: 20,
                },
                qmgr_core::ranges::FileRange {
                    offset: 1 << 40,
                    length: 1,
                },
            ],
        },
    ] {
        for state in JobState::ALL {
            messages.push(ServiceMessage::Notify(Notification {
                job: guid(3),
                kind: kind.clone(),
                state,
            }));
        }
    }
    for message in messages {
        assert_eq!(round_trip(&message), message);
    }
    for purpose in [Purpose::Calls, Purpose::Notifications] {
        let hello = ClientMessage::Hello {
            protocol_version: 1,
            purpose,
            client_name: "qmgr (pid 1)".into(),
        };
        assert_eq!(round_trip(&hello), hello);
    }
}

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn any_guid() -> impl Strategy<Value = Guid> {
    any::<[u8; 16]>().prop_map(Guid::from_be_bytes)
}

fn any_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (text(), 0..3u32, prop::option::of(0..0o1000u32)).prop_map(|(display_name, raw, umask)| {
            Request::CreateJob {
                display_name,
                job_type: JobType::from_raw(raw).unwrap(),
                umask,
            }
        }),
        (any_guid(), prop::collection::vec((text(), text()), 0..20)).prop_map(|(job, files)| {
            Request::AddFiles {
                job,
                files: files
                    .into_iter()
                    .map(|(remote_name, local_name)| NewFile {
                        remote_name,
                        local_name,
                        ranges: None,
                    })
                    .collect(),
            }
        }),
        (any_guid(), text()).prop_map(|(job, headers)| Request::SetJob {
            job,
            change: JobChange::CustomHeaders(Some(headers)),
        }),
        (any_guid(), any::<u64>(), any::<u32>()).prop_map(|(job, secs, nanos)| Request::SetJob {
            job,
            change: JobChange::MinimumRetryDelay(Duration::new(secs, nanos % 1_000_000_000)),
        }),
        (any_guid(), any::<Option<u64>>()).prop_map(|(job, limit)| Request::SetJob {
            job,
            change: JobChange::MaxDownloadSize(limit),
        }),
        (any_guid(), any_guid(), prop::option::of(0..0o1000u32))
            .prop_map(|(group, job, umask)| Request::CreateGroupJob { group, job, umask }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_requests_round_trip(id in any::<u64>(), request in any_request()) {
        let call = ClientMessage::Call { id, request };
        prop_assert_eq!(round_trip(&call), call);
    }

    #[test]
    fn arbitrary_errors_round_trip(
        id in any::<u64>(),
        code in any::<i32>(),
        context in 0..9u32,
        description in text(),
    ) {
        let answer = ServiceMessage::Answer {
            id,
            result: Err(QmgrError::new(
                hresult::HResult(code),
                ErrorContext::from_raw(context).unwrap(),
                description,
            )),
        };
        prop_assert_eq!(round_trip(&answer), answer);
    }

    /// Random bytes decode to an error or to a message that itself round-trips.
    #[test]
    fn arbitrary_bytes_decode_to_an_error_or_a_real_message(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        if let Ok(message) = decode::<ClientMessage>(&bytes) {
            prop_assert_eq!(round_trip(&message), message);
        }
        if let Ok(message) = decode::<ServiceMessage>(&bytes) {
            prop_assert_eq!(round_trip(&message), message);
        }
        if let Ok(message) = read_frame::<ClientMessage>(&mut bytes.as_slice(), MAX_FRAME_LEN) {
            prop_assert_eq!(round_trip(&message), message);
        }
    }

    #[test]
    fn corrupted_frames_decode_to_an_error_or_a_real_message(
        index in 0..REQUEST_VARIANTS,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let request = sample_requests().swap_remove(index);
        let mut payload = encode_frame(&ClientMessage::Call { id: 1, request }).unwrap().split_off(4);
        for (at, value) in flips {
            let at = at.index(payload.len());
            payload[at] ^= value;
        }
        for candidate in [&payload[..], &payload[..cut.index(payload.len())]] {
            if let Ok(message) = decode::<ClientMessage>(candidate) {
                prop_assert_eq!(round_trip(&message), message);
            }
        }
    }
}

/// AddFiles of any length travels in parts; the largest part, every name at its longest,
/// fits the request limit with margin.
#[test]
fn every_part_of_the_largest_add_files_fits_the_request_limit_with_margin() {
    use qmgr_core::file::{
        MAX_LOCAL_NAME_BYTES, MAX_REMOTE_NAME_CHARS, validate_local_name, validate_remote_name,
    };
    use qmgr_core::service::NewFile;
    use qmgr_ipc::frame::{MAX_REQUEST_FRAME_LEN, encoded_len};
    use qmgr_ipc::message::{ADD_FILES_PART_BYTES, split_files};

    // The longest names, in the widest characters a name may hold per UTF-16 unit.
    let prefix = "https://h/";
    let remote = format!(
        "{prefix}{}",
        "€".repeat(MAX_REMOTE_NAME_CHARS - prefix.len())
    );
    validate_remote_name(&remote).unwrap();
    let local = format!("/{}", "l".repeat(MAX_LOCAL_NAME_BYTES - 1));
    validate_local_name(&local).unwrap();
    let file = NewFile {
        remote_name: remote,
        local_name: local,
        ranges: None,
    };
    // Enough for three parts.
    let count = 3 * ADD_FILES_PART_BYTES / encoded_len(&file);
    let parts = split_files(vec![file; count], ADD_FILES_PART_BYTES);
    assert!(parts.len() >= 3, "{}", parts.len());
    assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), count);
    for files in parts {
        let part = ClientMessage::AddFilesPart {
            job: guid(1),
            files: files.clone(),
        };
        let call = ClientMessage::Call {
            id: u64::MAX,
            request: Request::AddFiles {
                job: guid(1),
                files,
            },
        };
        for len in [encoded_len(&part), encoded_len(&call)] {
            assert!(
                len * 2 <= MAX_REQUEST_FRAME_LEN as usize,
                "a part of {len} bytes is too close to {MAX_REQUEST_FRAME_LEN}"
            );
        }
    }
    const { assert!(MAX_REQUEST_FRAME_LEN < MAX_FRAME_LEN) };
}
