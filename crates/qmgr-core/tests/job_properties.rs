//! Random sequences of calls, engine events and timer ticks against a job, checking the
//! invariants the rest of qmgr relies on.

use std::time::Duration;

use proptest::prelude::*;
use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::{
    ErrorContext, Guid, Job, JobError, JobSettings, JobState, JobType, QmgrError, Timestamp,
    Validator, hresult,
};

#[derive(Clone, Debug)]
enum Step {
    Resume,
    Suspend,
    Cancel,
    Complete,
    AddFile,
    Start,
    Respond {
        file: usize,
        total: Option<u64>,
    },
    Progress {
        file: usize,
        bytes: u64,
    },
    Restart {
        file: usize,
    },
    FileDone {
        file: usize,
    },
    Fail {
        transient: bool,
        retry_after: Option<u64>,
    },
    SliceEnded,
    Wait {
        seconds: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    // Cancel and Complete end a job for good, so they are rare: most sequences should get
    // far enough to transfer, fail, retry and finish.
    prop_oneof![
        6 => Just(Step::Resume),
        3 => Just(Step::Suspend),
        1 => Just(Step::Cancel),
        1 => Just(Step::Complete),
        5 => Just(Step::AddFile),
        6 => Just(Step::Start),
        4 => (0..4usize, proptest::option::of(0..10_000u64)).prop_map(|(file, total)| Step::Respond { file, total }),
        8 => (0..4usize, 0..10_000u64).prop_map(|(file, bytes)| Step::Progress { file, bytes }),
        2 => (0..4usize).prop_map(|file| Step::Restart { file }),
        8 => (0..4usize).prop_map(|file| Step::FileDone { file }),
        3 => (any::<bool>(), proptest::option::of(0..3_000u64))
            .prop_map(|(transient, retry_after)| Step::Fail { transient, retry_after }),
        2 => Just(Step::SliceEnded),
        3 => (0..2_000_000u64).prop_map(|seconds| Step::Wait { seconds }),
    ]
}

fn error(now: Timestamp) -> JobError {
    JobError {
        error: QmgrError::new(
            hresult::BG_E_HTTP_ERROR_503,
            ErrorContext::RemoteFile,
            "503",
        ),
        file_index: Some(0),
        protocol: Some("http".into()),
        at: now,
        retry_after: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_sequence(steps in proptest::collection::vec(step(), 1..80)) {
        let mut now = Timestamp(1_700_000_000_000_000);
        let mut job = Job::new(Guid::new_random(), "prop", JobType::Download, 1000, JobSettings::default(), now).unwrap();
        let mut versions = Vec::<u32>::new();
        for step in steps {
            let before = job.clone();
            now = now.plus(Duration::from_millis(10));
            match step {
                Step::Resume => { let _ = job.resume(now); }
                Step::Suspend => { let _ = job.suspend(now); }
                Step::Cancel => { let _ = job.cancel(now); }
                Step::Complete => { let _ = job.complete(now); }
                Step::AddFile => {
                    let n = job.files.len();
                    if job.add_file(&format!("http://h/{n}"), &format!("/tmp/f{n}"), 4, now).is_ok() {
                        versions.push(0);
                    }
                }
                Step::Start => { job.start_transfer(now); }
                Step::Respond { file, total } => {
                    if file < job.files.len() && job.state.is_active() && !job.files[file].completed {
                        let total = total.map(|t| t.max(job.files[file].bytes_transferred));
                        let validator = job.files[file].validator.clone();
                        job.record_response(file, total, validator);
                    }
                }
                Step::Progress { file, bytes } => {
                    if file < job.files.len() && !job.files[file].completed {
                        let cap = job.files[file].bytes_total;
                        job.record_progress(file, if cap == SIZE_UNKNOWN { bytes } else { bytes.min(cap) }, now);
                    }
                }
                Step::Restart { file } => {
                    if file < job.files.len() && job.state.is_active() && !job.files[file].completed {
                        versions[file] += 1;
                        job.restart_file(file, Validator { etag: Some(format!("\"v{}\"", versions[file]).into()), last_modified: None });
                    }
                }
                Step::FileDone { file } => {
                    if file < job.files.len() { job.file_done(file, now); }
                }
                Step::Fail { transient, retry_after } => {
                    job.fail(error(now), transient, retry_after.map(Duration::from_secs), now);
                }
                Step::SliceEnded => { job.apply(qmgr_core::Event::SliceEnded, now); }
                Step::Wait { seconds } => {
                    now = now.plus(Duration::from_secs(seconds));
                    job.on_timer(now);
                }
            }

            // Final states are final.
            if before.state.is_final() {
                prop_assert_eq!(job.state, before.state);
                prop_assert_eq!(&job.files, &before.files);
            }
            // TRANSFERRED means every file is done.
            if job.state == JobState::Transferred {
                prop_assert!(!job.files.is_empty() && job.files.iter().all(|f| f.completed));
            }
            // Bytes never go down within one version of the remote content.
            for (old, new) in before.files.iter().zip(&job.files) {
                if old.validator == new.validator {
                    prop_assert!(new.bytes_transferred >= old.bytes_transferred);
                }
                prop_assert!(!old.completed || new.completed, "a finished file became unfinished");
            }
            // Files are only ever added.
            prop_assert!(job.files.len() >= before.files.len());
            // A retry is scheduled exactly when the job waits in TRANSIENT_ERROR.
            prop_assert_eq!(job.retry_at.is_some(), job.state == JobState::TransientError);
            // The error states always have an error to report.
            if matches!(job.state, JobState::Error | JobState::TransientError) {
                prop_assert!(job.current_error().is_ok());
            } else {
                prop_assert!(job.current_error().is_err());
            }
            // Time only moves forward.
            prop_assert!(job.times.modified >= before.times.modified);
        }
    }
}
