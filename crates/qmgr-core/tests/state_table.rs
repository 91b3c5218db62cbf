//! Every (state, event) pair of the job state machine, with the answer Windows gives.
//! Rows cite reference/state-machine.md (§ numbers) and DESIGN.md "Decisions" where the
//! behaviour is not obvious.

use std::collections::HashSet;

use qmgr_core::hresult;
use qmgr_core::state::{Event, Facts, JobState, JobType, Outcome, transition};

use Event as E;
use JobState::{
    Acknowledged as ACK, Cancelled as CAN, Connecting as CON, Error as ERR, Queued as Q,
    Suspended as SUS, Transferred as TD, Transferring as TR, TransientError as TE,
};

const fn go(next: JobState) -> Outcome {
    Outcome::Apply {
        next,
        code: hresult::S_OK,
    }
}
const PARTIAL: Outcome = Outcome::Apply {
    next: ACK,
    code: hresult::BG_S_PARTIAL_COMPLETE,
};
const INVALID: Outcome = Outcome::Refuse(hresult::BG_E_INVALID_STATE);
const STALE: Outcome = Outcome::Stale;

/// A download job with two files, one of them finished, retries left.
const HALF_DONE: Facts = Facts {
    job_type: JobType::Download,
    files: 2,
    files_done: 1,
    retries_exhausted: false,
};
/// The same job with both files finished (the only consistent facts for TRANSFERRED).
const ALL_DONE: Facts = Facts {
    files_done: 2,
    ..HALF_DONE
};

/// The full matrix: the facts used for each row, then one answer per event in `Event::ALL` order:
/// Resume, Suspend, Cancel, Complete, AddFile, ChangeOwner, ValidationFailed, TransferStarted, Progress, FileDone,
/// AllDone, TransientError, PermanentError, SliceEnded, RetryTimerFired, NoProgressTimeout.
fn matrix() -> Vec<(JobState, Facts, [Outcome; 16])> {
    vec![
        // Resume on an active job leaves it as it is (§2 Resume, verified MS Learn "Life cycle").
        // Complete on an unfinished download keeps the finished files: BG_S_PARTIAL_COMPLETE (§2 Complete).
        (
            Q,
            HALF_DONE,
            [
                go(Q),
                go(SUS),
                go(CAN),
                PARTIAL,
                go(Q),
                go(Q),
                go(ERR),
                go(CON),
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
            ],
        ),
        (
            CON,
            HALF_DONE,
            [
                go(CON),
                go(SUS),
                go(CAN),
                PARTIAL,
                go(CON),
                go(CON),
                go(ERR),
                STALE,
                go(TR),
                go(TR),
                go(TD),
                go(TE),
                go(ERR),
                go(Q),
                STALE,
                STALE,
            ],
        ),
        (
            TR,
            HALF_DONE,
            [
                go(TR),
                go(SUS),
                go(CAN),
                PARTIAL,
                go(TR),
                go(TR),
                go(ERR),
                STALE,
                go(TR),
                go(TR),
                go(TD),
                go(TE),
                go(ERR),
                go(Q),
                STALE,
                STALE,
            ],
        ),
        // Suspend on SUSPENDED stays SUSPENDED (§2 Suspend, verified MS Learn).
        (
            SUS,
            HALF_DONE,
            [
                go(Q),
                go(SUS),
                go(CAN),
                PARTIAL,
                go(SUS),
                go(SUS),
                go(ERR),
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
            ],
        ),
        // ERROR is not final: Resume, Cancel and Complete still work (§1).
        (
            ERR,
            HALF_DONE,
            [
                go(Q),
                go(SUS),
                go(CAN),
                PARTIAL,
                go(ERR),
                go(ERR),
                go(ERR),
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
            ],
        ),
        // Resume in TRANSIENT_ERROR answers S_OK and retries at once (§2, verified Wine tests/job.c).
        (
            TE,
            HALF_DONE,
            [
                go(Q),
                go(SUS),
                go(CAN),
                PARTIAL,
                go(TE),
                go(TE),
                go(ERR),
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                go(Q),
                go(ERR),
            ],
        ),
        // Decisions: Resume on TRANSFERRED → S_OK, stays TRANSFERRED; Suspend → SUSPENDED;
        // AddFile → SUSPENDED until Resume, so TRANSFERRED always means every file is done.
        (
            TD,
            ALL_DONE,
            [
                go(TD),
                go(SUS),
                go(CAN),
                go(ACK),
                go(SUS),
                go(TD),
                go(ERR),
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
                STALE,
            ],
        ),
        // After Complete/Cancel every mutator is BG_E_INVALID_STATE (§1; verified Wine test_Cancel,
        // test_HttpOptions); late engine events are dropped.
        (
            ACK,
            ALL_DONE,
            [
                INVALID, INVALID, INVALID, INVALID, INVALID, INVALID, INVALID, STALE, STALE, STALE,
                STALE, STALE, STALE, STALE, STALE, STALE,
            ],
        ),
        (
            CAN,
            HALF_DONE,
            [
                INVALID, INVALID, INVALID, INVALID, INVALID, INVALID, INVALID, STALE, STALE, STALE,
                STALE, STALE, STALE, STALE, STALE, STALE,
            ],
        ),
    ]
}

#[test]
fn every_state_event_pair_has_the_documented_answer() {
    let mut covered = HashSet::new();
    let mut failures = Vec::new();
    for (state, facts, answers) in matrix() {
        for (event, expected) in Event::ALL.into_iter().zip(answers) {
            covered.insert((state, event));
            let actual = transition(state, event, &facts);
            if actual != expected {
                failures.push(format!(
                    "{state} + {event:?}: expected {expected:?}, got {actual:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "wrong transitions:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        covered.len(),
        JobState::ALL.len() * Event::ALL.len(),
        "the matrix must cover every pair"
    );
}

/// Cells whose answer depends on the job's facts rather than its state alone.
#[test]
fn answers_that_depend_on_the_facts() {
    let empty = Facts {
        files: 0,
        files_done: 0,
        ..HALF_DONE
    };
    let exhausted = Facts {
        retries_exhausted: true,
        ..HALF_DONE
    };
    let upload = Facts {
        job_type: JobType::Upload,
        files: 1,
        files_done: 0,
        ..HALF_DONE
    };
    let upload_done = Facts {
        files_done: 1,
        ..upload
    };
    let cases: [(JobState, Event, Facts, Outcome, &str); 10] = [
        (
            SUS,
            E::Resume,
            empty,
            Outcome::Refuse(hresult::BG_E_EMPTY),
            "empty job (verified Wine test_ResumeEmpty)",
        ),
        (
            SUS,
            E::Resume,
            ALL_DONE,
            go(TD),
            "Decisions: nothing left to transfer",
        ),
        (
            ERR,
            E::Resume,
            ALL_DONE,
            go(TD),
            "Decisions: nothing left to transfer",
        ),
        (
            TR,
            E::TransientError,
            exhausted,
            go(ERR),
            "§3: NoProgressTimeout 0 or shorter than the retry delay",
        ),
        (CON, E::TransientError, exhausted, go(ERR), "§3"),
        (SUS, E::Complete, ALL_DONE, go(ACK), "every file done: S_OK"),
        (
            TR,
            E::Complete,
            upload,
            INVALID,
            "§2: upload Complete only from TRANSFERRED",
        ),
        (
            TD,
            E::Complete,
            upload_done,
            go(ACK),
            "§2: upload Complete from TRANSFERRED",
        ),
        (
            SUS,
            E::AddFile,
            upload,
            Outcome::Refuse(hresult::BG_E_TOO_MANY_FILES),
            "§7: uploads take one file",
        ),
        (SUS, E::AddFile, empty, go(SUS), "first file"),
    ];
    for (state, event, facts, expected, why) in cases {
        assert_eq!(
            transition(state, event, &facts),
            expected,
            "{state} + {event:?} ({why})"
        );
    }
}
