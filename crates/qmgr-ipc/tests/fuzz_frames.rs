//! The frame and message decoders, in process (no socket): random frames, frames made from
//! valid messages and then corrupted, frames claiming huge lengths, and streams of several
//! frames go through the functions the service and the client read with. Nothing panics;
//! every bad frame is the `Err` its defect calls for (found by reading the length prefix
//! apart from the decoder); anything that decodes is a message that round-trips; and no
//! case holds more memory than its input can justify, whatever length it claims.
//!
//! `QMGR_FUZZ_ITERATIONS_FRAMES` sets the number of cases (the full profile of
//! `cargo xtask reliability fuzz` runs 10⁶); see `qmgr_tests::fuzz` for the seed and
//! replays.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use qmgr_core::hresult;
use qmgr_core::job::{ProxySettings, ProxyUsage};
use qmgr_core::service::{
    JobChange, ListCursor, NewFile, Notification, NotificationKind, PROTOCOL_VERSION, Request,
    Response,
};
use qmgr_core::{ErrorContext, Guid, JobState, JobType, QmgrError};
use qmgr_ipc::frame::{
    FrameError, MAX_ANSWER_FRAME_LEN, MAX_HANDSHAKE_FRAME_LEN, MAX_NOTIFICATION_FRAME_LEN,
    MAX_REQUEST_FRAME_LEN, decode, encode_frame, read_frame, read_payload,
};
use qmgr_ipc::message::{ClientMessage, Purpose, ServiceMessage, handshake_version};
use qmgr_tests::fuzz::{Campaign, Rng, mutate};

/// Counts the bytes each thread holds, and the most it held since the last reset.
struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note_allocation(bytes: usize) {
    let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(bytes);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn note_release(bytes: usize) {
    let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

// SAFETY: every call is passed on to the system allocator unchanged; the counting around it
// touches only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_release(layout.size());
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        note_release(layout.size());
        // SAFETY: `ptr` came from `alloc` with this layout; the caller checked `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `work` and returns its result and the most memory it held at once beyond what the
/// thread held before.
fn peak_during<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let result = work();
    let peak = PEAK.with(Cell::get);
    (result, usize::try_from(peak - before).unwrap_or(0))
}

/// What a case may hold at once: a fixed allowance (the payload buffer's first reservation
/// and serde's cautious preallocation of a claimed sequence, 1 MiB, at a few levels of
/// nesting) plus a multiple of the bytes actually given. A claimed length buys nothing.
const FIXED_ALLOWANCE: usize = 4 * 1024 * 1024;
const PER_INPUT_BYTE: usize = 64;

fn guid(n: u8) -> Guid {
    Guid::from_be_bytes([n; 16])
}

fn sample_client_messages() -> Vec<ClientMessage> {
    let requests = vec![
        Request::Ping,
        Request::CreateJob {
            display_name: "nightly ✓".into(),
            job_type: JobType::Upload,
            umask: Some(0o022),
        },
        Request::GetJob { job: guid(1) },
        Request::ListJobs {
            all_users: true,
            after: Some(ListCursor {
                key: -7,
                id: guid(2),
            }),
        },
        Request::AddFiles {
            job: guid(3),
            files: vec![
                NewFile {
                    remote_name: "https://example.invalid/a?b=c".into(),
                    local_name: "/tmp/a".into(),
                    ranges: Some(vec![qmgr_core::ranges::FileRange {
                        offset: 10,
                        length: qmgr_core::ranges::LENGTH_TO_EOF,
                    }]),
                },
                NewFile {
                    remote_name: "http://h/ü".into(),
                    local_name: "/tmp/ü".into(),
                    ranges: None,
                },
            ],
        },
        Request::SetJob {
            job: guid(4),
            change: JobChange::CustomHeaders(Some("X-A: 1\r\nX-B: 2".into())),
        },
        Request::SetJob {
            job: guid(4),
            change: JobChange::Proxy(ProxySettings {
                usage: ProxyUsage::Override,
                proxy_list: Some("http://proxy:3128".into()),
                bypass_list: Some("<local>".into()),
            }),
        },
        Request::SetJob {
            job: guid(4),
            change: JobChange::MinimumRetryDelay(Duration::from_secs(60)),
        },
        Request::CertificateVerdict {
            job: guid(5),
            check: u64::MAX,
            verdict: hresult::E_ACCESSDENIED,
        },
        Request::UpdateDownloadPosition {
            job: guid(5),
            file: 2,
            offset: u64::MAX - 1,
        },
        Request::GetPolicy,
    ];
    let mut messages: Vec<ClientMessage> = requests
        .into_iter()
        .enumerate()
        .map(|(id, request)| ClientMessage::Call {
            id: id as u64 * 1000,
            request,
        })
        .collect();
    messages.push(ClientMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        purpose: Purpose::Notifications,
        client_name: "fuzz (pid 1)".into(),
    });
    messages.push(ClientMessage::AddFilesPart {
        job: guid(6),
        files: vec![NewFile {
            remote_name: "https://example.invalid/part".into(),
            local_name: "/tmp/part".into(),
            ranges: None,
        }],
    });
    messages
}

fn sample_service_messages() -> Vec<ServiceMessage> {
    vec![
        ServiceMessage::Welcome {
            protocol_version: PROTOCOL_VERSION,
            service_version: "0.1.0".into(),
            peer_uid: 1000,
        },
        ServiceMessage::Refused(QmgrError::from_code(hresult::E_ACCESSDENIED)),
        ServiceMessage::Answer {
            id: 3,
            result: Ok(Response::JobCreated(guid(9))),
        },
        ServiceMessage::Answer {
            id: 4,
            result: Err(QmgrError::new(
                hresult::BG_E_NOT_FOUND,
                ErrorContext::RemoteFile,
                "no job {09090909-…}",
            )),
        },
        ServiceMessage::Answer {
            id: 5,
            result: Ok(Response::Text(Some("a header: value".into()))),
        },
        ServiceMessage::Notify(Notification {
            job: guid(3),
            kind: NotificationKind::FileRangesTransferred {
                file: 7,
                ranges: vec![qmgr_core::ranges::FileRange {
                    offset: 1 << 40,
                    length: 1,
                }],
            },
            state: JobState::Transferring,
        }),
    ]
}

/// The valid frames that mutations start from.
struct Samples {
    client: Vec<Vec<u8>>,
    service: Vec<Vec<u8>>,
}

impl Samples {
    fn new() -> Samples {
        Samples {
            client: sample_client_messages()
                .iter()
                .map(|message| encode_frame(message).unwrap())
                .collect(),
            service: sample_service_messages()
                .iter()
                .map(|message| encode_frame(message).unwrap())
                .collect(),
        }
    }

    fn any(&self, rng: &mut Rng) -> &[u8] {
        if rng.one_in(3) {
            rng.pick(&self.service).as_slice()
        } else {
            rng.pick(&self.client).as_slice()
        }
    }
}

fn prefix(len: u32) -> Vec<u8> {
    len.to_le_bytes().to_vec()
}

/// The prefix of a payload of `len` bytes (always small here).
fn prefix_for(len: usize) -> Vec<u8> {
    prefix(u32::try_from(len).expect("payloads here are small"))
}

/// One frame of a random kind.
fn frame(rng: &mut Rng, samples: &Samples) -> Vec<u8> {
    match rng.below(9) {
        // Random bytes, length prefix and all.
        0 => {
            let len = rng.length(300);
            rng.bytes(len)
        }
        // A plausible prefix and a random payload.
        1 => {
            let len = rng.length(300);
            let mut frame = prefix_for(len);
            frame.extend(rng.bytes(len));
            frame
        }
        // A valid frame, unchanged.
        2 => samples.any(rng).to_vec(),
        // A valid frame with its payload corrupted and the prefix fixed up to match, so the
        // decoder (not the framing) meets the damage.
        3..=5 => {
            let mut payload = samples.any(rng)[4..].to_vec();
            let donor = samples.any(rng)[4..].to_vec();
            mutate(rng, &mut payload, &donor);
            let mut frame = prefix_for(payload.len());
            frame.extend(payload);
            frame
        }
        // A valid frame corrupted anywhere, prefix included.
        6 => {
            let mut frame = samples.any(rng).to_vec();
            let donor = samples.any(rng).to_vec();
            mutate(rng, &mut frame, &donor);
            frame
        }
        // A length at or beyond a limit, or far beyond any, with a few bytes.
        7 => {
            let limits = [
                MAX_HANDSHAKE_FRAME_LEN,
                MAX_NOTIFICATION_FRAME_LEN,
                MAX_REQUEST_FRAME_LEN,
                MAX_ANSWER_FRAME_LEN,
                u32::MAX,
            ];
            let limit = *rng.pick(&limits);
            let len = limit.saturating_sub(1).saturating_add(rng.next_u32() % 3);
            let mut frame = prefix(len);
            let tail = rng.length(64);
            frame.extend(rng.bytes(tail));
            frame
        }
        // A valid payload claiming a huge sequence inside: a count varint of up to 2³²-1
        // spliced in.
        _ => {
            let mut payload = samples.any(rng)[4..].to_vec();
            let at = rng.below(payload.len() + 1);
            payload.splice(at..at, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]);
            let mut frame = prefix_for(payload.len());
            frame.extend(payload);
            frame
        }
    }
}

/// One case's input: a frame, or a stream of a few frames back to back.
fn input(rng: &mut Rng, samples: &Samples) -> Vec<u8> {
    let frames = if rng.one_in(4) { 2 + rng.below(4) } else { 1 };
    (0..frames).flat_map(|_| frame(rng, samples)).collect()
}

/// What reading one frame from `stream` with `limit` must give, found from the prefix
/// alone: `Err(expected error)` for a framing defect, `Ok(payload)` otherwise.
fn expected_framing(stream: &[u8], limit: u32) -> Result<&[u8], String> {
    if stream.is_empty() {
        return Err("Closed".into());
    }
    if stream.len() < 4 {
        return Err(format!("Truncated 4/{}", stream.len()));
    }
    let len = u32::from_le_bytes(stream[..4].try_into().unwrap());
    if len > limit {
        return Err(format!("TooLarge {len}/{limit}"));
    }
    let body = &stream[4..];
    let len = len as usize;
    if body.len() < len {
        return Err(format!("Truncated {len}/{}", body.len()));
    }
    Ok(&body[..len])
}

fn describe(error: &FrameError) -> String {
    match error {
        FrameError::Closed => "Closed".into(),
        FrameError::Truncated { expected, received } => format!("Truncated {expected}/{received}"),
        FrameError::TooLarge { len, limit } => format!("TooLarge {len}/{limit}"),
        FrameError::Malformed(why) => format!("Malformed ({why})"),
        FrameError::Io(error) => format!("Io ({error})"),
    }
}

/// How the frames of a campaign ended: proof that the cases reach every outcome.
#[derive(Debug, Default)]
struct Tally {
    decoded: u64,
    malformed: u64,
    truncated: u64,
    too_large: u64,
    closed: u64,
}

impl Tally {
    fn count(&mut self, error: &FrameError) {
        match error {
            FrameError::Closed => self.closed += 1,
            FrameError::Truncated { .. } => self.truncated += 1,
            FrameError::TooLarge { .. } => self.too_large += 1,
            FrameError::Malformed(_) => self.malformed += 1,
            FrameError::Io(_) => {}
        }
    }
}

/// Reads frames of `T` from `stream` as a connection does, until the first error (where a
/// connection is closed); checks each frame's outcome against the prefix's account.
fn read_like_a_connection<T>(stream: &[u8], limit: u32, tally: &mut Tally) -> Result<(), String>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut reader = stream;
    loop {
        let expected = expected_framing(reader, limit);
        let outcome = read_frame::<T>(&mut reader, limit);
        if let Err(error) = &outcome {
            tally.count(error);
        }
        match (expected, outcome) {
            (Err(expected), Err(error)) => {
                let got = describe(&error);
                return if got == expected {
                    Ok(())
                } else {
                    Err(format!("expected {expected}, got {got}"))
                };
            }
            (Err(expected), Ok(message)) => {
                return Err(format!("expected {expected}, decoded {message:?}"));
            }
            (Ok(_), Err(FrameError::Malformed(_))) => return Ok(()),
            (Ok(_), Err(error)) => {
                return Err(format!(
                    "a whole frame gave {} instead of Malformed",
                    describe(&error)
                ));
            }
            (Ok(payload), Ok(message)) => {
                tally.decoded += 1;
                // A message decoded: it is a real one, encoding back to a frame that decodes
                // to the same message.
                let again = encode_frame(&message)
                    .map_err(|error| format!("{message:?} does not encode: {error}"))?;
                let round = decode::<T>(&again[4..])
                    .map_err(|error| format!("{message:?} does not decode again: {error}"))?;
                if round != message {
                    return Err(format!("{message:?} came back as {round:?}"));
                }
                // The decoder read exactly the payload: one byte more or less spoils it.
                // (Other encodings of the same message exist, such as overlong varints and
                // lower-case GUIDs, so the bytes are not compared with `again`.)
                let longer = [payload, &[0]].concat();
                if decode::<T>(&longer).is_ok() {
                    return Err(format!("{message:?} decoded with a byte after it"));
                }
                if payload.is_empty() || decode::<T>(&payload[..payload.len() - 1]).is_ok() {
                    return Err(format!("{message:?} decoded from a part of its payload"));
                }
            }
        }
    }
}

/// Every way the two sides read a frame, as they do it.
fn check(stream: &[u8], tally: &mut Tally) -> Result<(), String> {
    // The service, before the handshake: the payload of the first frame, its version, then
    // the Hello.
    let mut reader = stream;
    match (
        expected_framing(stream, MAX_HANDSHAKE_FRAME_LEN),
        read_payload(&mut reader, MAX_HANDSHAKE_FRAME_LEN),
    ) {
        (Ok(expected), Ok(payload)) if expected == payload.as_slice() => {
            let version = handshake_version(&payload);
            if let Ok(message) = decode::<ClientMessage>(&payload) {
                let hello_version = match message {
                    ClientMessage::Hello {
                        protocol_version, ..
                    } => Some(protocol_version),
                    _ => None,
                };
                if hello_version.is_some() && version != hello_version {
                    return Err(format!(
                        "a Hello of version {hello_version:?} read as version {version:?}"
                    ));
                }
            }
        }
        (Ok(_), Ok(payload)) => return Err(format!("the payload read was {payload:?}")),
        (Err(expected), Err(error)) if describe(&error) == expected => {}
        (expected, outcome) => {
            return Err(format!(
                "handshake read: expected {expected:?}, got {:?}",
                outcome.map_err(|error| describe(&error))
            ));
        }
    }
    // The service after the handshake, the client's answers and its notifications.
    read_like_a_connection::<ClientMessage>(stream, MAX_REQUEST_FRAME_LEN, tally)?;
    read_like_a_connection::<ServiceMessage>(stream, MAX_ANSWER_FRAME_LEN, tally)?;
    read_like_a_connection::<ServiceMessage>(stream, MAX_NOTIFICATION_FRAME_LEN, tally)
}

/// One case: the checks, and the memory they held.
fn check_bounded(stream: &[u8], tally: &mut Tally) -> Result<usize, String> {
    let (outcome, peak) = peak_during(|| check(stream, tally));
    outcome?;
    let allowed = FIXED_ALLOWANCE + PER_INPUT_BYTE * stream.len();
    if peak > allowed {
        return Err(format!(
            "{} input bytes held {peak} bytes at once (allowed {allowed})",
            stream.len()
        ));
    }
    Ok(peak)
}

#[test]
fn random_and_corrupted_frames_are_errors_or_real_messages_in_bounded_memory() {
    let samples = Samples::new();
    let mut most_held = 0;
    let mut tally = Tally::default();
    Campaign::from_env("frames", 20_000).run(|rng| {
        let stream = input(rng, &samples);
        let peak = check_bounded(&stream, &mut tally)
            .map_err(|why| format!("{why}\n    input: {stream:02x?}"))?;
        most_held = most_held.max(peak);
        Ok(())
    });
    println!(
        "fuzz frames: the most one case held at once was {most_held} bytes; frames read: {tally:?}"
    );
    // Every outcome was met (a small campaign meets each many times).
    if std::env::var_os("QMGR_FUZZ_CASE").is_none() {
        for (what, count) in [
            ("decoded", tally.decoded),
            ("malformed", tally.malformed),
            ("truncated", tally.truncated),
            ("too large", tally.too_large),
            ("closed", tally.closed),
        ] {
            assert!(count > 0, "no frame was {what}: {tally:?}");
        }
    }
}

/// Fixed inputs: each defect the campaign looks for, once, so that a change to the frame
/// code that breaks one fails here whatever the seed.
#[test]
fn each_kind_of_bad_frame_is_its_error() {
    let hello = encode_frame(&sample_client_messages().pop().unwrap()).unwrap();
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![1, 0],
        prefix(u32::MAX),
        [prefix(MAX_REQUEST_FRAME_LEN), vec![0; 10]].concat(),
        hello[..hello.len() - 1].to_vec(),
        [hello.clone(), vec![0]].concat(),
        [prefix(5), vec![0x00, 0xFF, 0xFF, 0xFF, 0x0F]].concat(),
    ];
    let mut tally = Tally::default();
    for case in &cases {
        check_bounded(case, &mut tally).unwrap_or_else(|why| panic!("{case:02x?}: {why}"));
    }
    // The prefix's account is what the reader reports.
    assert_eq!(
        expected_framing(&prefix(u32::MAX), MAX_REQUEST_FRAME_LEN),
        Err(format!("TooLarge {}/{MAX_REQUEST_FRAME_LEN}", u32::MAX))
    );
    // A claimed length holds nothing beyond the allowance.
    let claimed = [prefix(MAX_ANSWER_FRAME_LEN), vec![7; 100]].concat();
    let peak = check_bounded(&claimed, &mut tally).unwrap();
    assert!(peak < 1024 * 1024, "{peak}");
}
