//! Server certificate validators (IBackgroundCopyJobHttpOptions3::
//! SetServerCertificateValidationInterface): a client process asks to judge the
//! certificates of a job's https servers, and no https file of that job moves until it has.
//!
//! For each such file a run reaches, a thread of its own connects to the server with the
//! transfer's TLS settings and reads the chain (the engine's loop never waits on a client),
//! the check is announced to the owner's subscribers (`NotificationKind::CertificateCheck`,
//! naming the validator's process), and the file waits — its job CONNECTING — for
//! `CertificateVerdict`:
//! - success: the file's transfer starts pinned to the approved public key;
//! - a failure code: the job goes to TRANSIENT_ERROR with that code in the context
//!   BG_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK, as Microsoft documents;
//! - no verdict within the check timeout (30 s), or a validator process that is gone:
//!   ERROR with `BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED`; setting a validator again
//!   and Resume start over.
//!
//! Validators live in memory only: Windows keeps no record of the interface, and a
//! process that registered one is gone after a restart anyway.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Weak;
use std::sync::mpsc;
use std::time::Duration;

use qmgr_core::error::{ErrorContext, QmgrError, Result};
use qmgr_core::hresult::{self, HResult};
use qmgr_core::service::{CertificateCheck, Notification, NotificationKind, Response};
use qmgr_core::{Guid, JobState, Timestamp};
use qmgr_transfer::{Engine, ServerCertificate, TransferError};

use super::transfer_request::transfer_request;
use super::{Shared, State};

/// How long a check waits for the validator's verdict, unless
/// `QMGR_CERTIFICATE_CHECK_TIMEOUT_MS` says otherwise (tests shorten it).
pub(super) const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest the connection that reads a server's chain may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// The check timeout for this service: `QMGR_CERTIFICATE_CHECK_TIMEOUT_MS` when set to a
/// number of milliseconds, else [`DEFAULT_CHECK_TIMEOUT`].
pub(super) fn check_timeout_from_environment() -> Duration {
    std::env::var("QMGR_CERTIFICATE_CHECK_TIMEOUT_MS")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map_or(DEFAULT_CHECK_TIMEOUT, Duration::from_millis)
}

/// A job's file held back for its validator: while `pin` is `None` the server's chain is
/// being read or judged; then the approved key, taken by the file's transfer.
pub(super) struct CertificateGate {
    attempt: u64,
    file: usize,
    pin: Option<String>,
}

/// A check waiting for its verdict.
pub(super) struct PendingCheck {
    job: Guid,
    attempt: u64,
    check: CertificateCheck,
    pin: String,
    /// Dropped (or sent to) when the verdict comes: the thread waiting out the timeout
    /// then ends at once.
    answered: mpsc::Sender<()>,
}

/// The validators and checks of the queue.
pub(super) struct Validators {
    /// Which client process validates each job's certificates.
    clients: HashMap<Guid, u32>,
    pending: HashMap<u64, PendingCheck>,
    next_id: u64,
    pub(super) timeout: Duration,
    /// The manager itself, for the threads that read chains and wait out timeouts.
    pub(super) manager: Weak<Shared>,
}

impl Validators {
    pub(super) fn new(timeout: Duration) -> Validators {
        Validators {
            clients: HashMap::new(),
            pending: HashMap::new(),
            next_id: 0,
            timeout,
            manager: Weak::new(),
        }
    }
}

impl CertificateGate {
    /// Whether file `index` was approved and may start.
    pub(super) fn approves(&self, index: usize) -> bool {
        self.file == index && self.pin.is_some()
    }
}

/// Whether a URL is one whose server certificate a validator judges.
pub(super) fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// Whether process `pid` still exists (a zombie counts: its parent has not seen it end).
fn process_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

impl State {
    /// SetCertificateValidator: `client` validates the job's server certificates from now
    /// on, or nobody (`None`).
    pub(super) fn set_certificate_validator(
        &mut self,
        uid: u32,
        job: Guid,
        client: Option<u32>,
    ) -> Result<Response> {
        let state = self.entry(uid, job)?.job.state;
        if state.is_final() {
            return Err(QmgrError::from_code(hresult::BG_E_INVALID_STATE)
                .context(format_args!("job {job} is {}", state.name())));
        }
        match client {
            Some(pid) => {
                if matches!(
                    state,
                    JobState::Queued
                        | JobState::Connecting
                        | JobState::Transferring
                        | JobState::TransientError
                ) {
                    return Err(
                        QmgrError::from_code(hresult::BG_E_READ_ONLY_WHEN_JOB_ACTIVE).context(
                            format_args!(
                                "job {job} is {}: suspend it to set a certificate validator",
                                state.name()
                            ),
                        ),
                    );
                }
                self.validators.clients.insert(job, pid);
            }
            None => {
                self.validators.clients.remove(&job);
            }
        }
        Ok(Response::Done(hresult::S_OK))
    }

    /// GetCertificateCheck: the certificates of a check still waiting for its verdict.
    pub(super) fn certificate_check(&self, uid: u32, job: Guid, check: u64) -> Result<Response> {
        self.entry(uid, job)?;
        let pending = self
            .validators
            .pending
            .get(&check)
            .filter(|pending| pending.job == job)
            .ok_or_else(|| no_such_check(job, check))?;
        Ok(Response::CertificateCheck(Box::new(pending.check.clone())))
    }

    /// CertificateVerdict: the validator's answer to a waiting check.
    pub(super) fn certificate_verdict(
        &mut self,
        engine: &Engine,
        uid: u32,
        job: Guid,
        check: u64,
        verdict: HResult,
        now: Timestamp,
    ) -> Result<Response> {
        self.entry(uid, job)?;
        if self
            .validators
            .pending
            .get(&check)
            .is_none_or(|pending| pending.job != job)
        {
            return Err(no_such_check(job, check));
        }
        let Some(pending) = self.validators.pending.remove(&check) else {
            return Err(no_such_check(job, check));
        };
        let _ = pending.answered.send(());
        let Some(file) = self.gate_file(job, pending.attempt) else {
            // The job stopped meanwhile; a later run asks again.
            return Ok(Response::Done(hresult::S_OK));
        };
        if verdict.is_success() {
            if let Some(gate) = self
                .jobs
                .get_mut(&job)
                .and_then(|entry| entry.certificate_gate.as_mut())
            {
                gate.pin = Some(pending.pin);
            }
            self.fill_transfers(engine, job, now);
        } else {
            let error = QmgrError::new(
                verdict,
                ErrorContext::ServerCertificateCallback,
                "the certificate validation callback refused the server's certificate",
            );
            self.fail_job(engine, job, file, error, true, None, now);
        }
        Ok(Response::Done(hresult::S_OK))
    }

    /// Whether a client process validates the job's server certificates.
    pub(super) fn has_certificate_validator(&self, id: Guid) -> bool {
        self.validators.clients.contains_key(&id)
    }

    /// The approved key for file `index` of job `id`, taken (each transfer is judged on
    /// its own), or `None` when its check is not done.
    pub(super) fn take_approved_pin(&mut self, id: Guid, index: usize) -> Option<String> {
        let entry = self.jobs.get_mut(&id)?;
        let gate = entry.certificate_gate.as_mut()?;
        if gate.file != index {
            return None;
        }
        let pin = gate.pin.take()?;
        entry.certificate_gate = None;
        Some(pin)
    }

    /// Starts the check of file `index` of job `id` unless one is under way: a thread
    /// reads the server's chain and hands it back to [`State::certificate_read`].
    pub(super) fn start_certificate_check(
        &mut self,
        engine: &Engine,
        id: Guid,
        index: usize,
        now: Timestamp,
    ) {
        let Some(entry) = self.jobs.get(&id) else {
            return;
        };
        if entry.certificate_gate.is_some() {
            return;
        }
        let request = match transfer_request(&entry.job, index, &self.paths) {
            Ok(request) => request,
            Err(error) => {
                self.fail_job(engine, id, index, error, false, None, now);
                return;
            }
        };
        self.validators.next_id += 1;
        let attempt = self.validators.next_id;
        if let Some(entry) = self.jobs.get_mut(&id) {
            entry.certificate_gate = Some(Box::new(CertificateGate {
                attempt,
                file: index,
                pin: None,
            }));
        }
        let manager = self.validators.manager.clone();
        let timeout = self.validators.timeout;
        let started = std::thread::Builder::new()
            .name("qmgr-cert-check".into())
            .spawn(move || {
                let read = qmgr_transfer::fetch_server_certificate(&request, PROBE_TIMEOUT);
                let Some(shared) = manager.upgrade() else {
                    return;
                };
                let (answered, answer) = mpsc::channel();
                let check = {
                    let now = shared.clock.now();
                    let mut state = shared.state.lock();
                    let check =
                        state.certificate_read(&shared.engine, id, attempt, read, answered, now);
                    state.schedule_needed = true;
                    check
                };
                let _ = shared.wake.send(());
                drop(shared);
                let Some((check, client)) = check else { return };
                let Some(why) = wait_for_verdict(&answer, client, timeout) else {
                    return;
                };
                let Some(shared) = manager.upgrade() else {
                    return;
                };
                let now = shared.clock.now();
                shared
                    .state
                    .lock()
                    .certificate_check_expired(&shared.engine, check, &why, now);
                let _ = shared.wake.send(());
            });
        if let Err(error) = started {
            let error = QmgrError::internal(format!("cannot start a certificate check: {error}"));
            self.fail_job(engine, id, index, error, true, None, now);
        }
    }

    /// The server's chain for a check, or why it could not be read: announces the check
    /// to the validator, and returns its id and the validator's process while it waits
    /// for a verdict.
    fn certificate_read(
        &mut self,
        engine: &Engine,
        id: Guid,
        attempt: u64,
        read: std::result::Result<ServerCertificate, TransferError>,
        answered: mpsc::Sender<()>,
        now: Timestamp,
    ) -> Option<(u64, u32)> {
        let file = self.gate_file(id, attempt)?;
        let certificate = match read {
            Ok(certificate) => certificate,
            Err(error) => {
                self.clear_gate(id);
                self.fail_job(
                    engine,
                    id,
                    file,
                    error.error,
                    error.transient,
                    error.retry_after,
                    now,
                );
                return None;
            }
        };
        let Some(&client) = self.validators.clients.get(&id) else {
            // The validator was cleared meanwhile: nobody asks any more.
            self.clear_gate(id);
            self.fill_transfers(engine, id, now);
            return None;
        };
        if !process_exists(client) {
            self.clear_gate(id);
            self.validators.clients.remove(&id);
            let error = interface_required(format!(
                "the process {client} that set the certificate validation callback is gone"
            ));
            self.fail_job(engine, id, file, error, false, None, now);
            return None;
        }
        self.validators.next_id += 1;
        let check = self.validators.next_id;
        let file_index = u32::try_from(file).unwrap_or(u32::MAX);
        self.validators.pending.insert(
            check,
            PendingCheck {
                job: id,
                attempt,
                check: CertificateCheck {
                    file: file_index,
                    certificate: certificate.certificate,
                    chain: certificate.chain,
                },
                pin: certificate.pin,
                answered,
            },
        );
        let (owner, state) = match self.jobs.get(&id) {
            Some(entry) => (entry.job.owner_uid, entry.job.state),
            None => return None,
        };
        self.deliver(
            owner,
            &Notification {
                job: id,
                kind: NotificationKind::CertificateCheck {
                    check,
                    file: file_index,
                    client,
                },
                state,
            },
        );
        Some((check, client))
    }

    /// A check will have no verdict (`why`): the job stops in ERROR.
    fn certificate_check_expired(
        &mut self,
        engine: &Engine,
        check: u64,
        why: &str,
        now: Timestamp,
    ) {
        let Some(pending) = self.validators.pending.remove(&check) else {
            return;
        };
        let Some(file) = self.gate_file(pending.job, pending.attempt) else {
            return;
        };
        self.clear_gate(pending.job);
        let error = interface_required(why.to_owned());
        self.fail_job(engine, pending.job, file, error, false, None, now);
    }

    /// The file of the job's check `attempt`, if that check is still the job's.
    fn gate_file(&self, id: Guid, attempt: u64) -> Option<usize> {
        let entry = self.jobs.get(&id)?;
        entry.run.as_ref()?;
        entry
            .certificate_gate
            .as_ref()
            .filter(|gate| gate.attempt == attempt)
            .map(|gate| gate.file)
    }

    fn clear_gate(&mut self, id: Guid) {
        if let Some(entry) = self.jobs.get_mut(&id) {
            entry.certificate_gate = None;
        }
    }

    /// Forgets what the job had to do with validators (it left the queue).
    pub(super) fn forget_certificate_validator(&mut self, id: Guid) {
        self.validators.clients.remove(&id);
        self.validators
            .pending
            .retain(|_, pending| pending.job != id);
    }
}

/// How often a check waiting for its verdict looks whether the validator's process still
/// exists: one that ended without answering stops the job without waiting out the timeout.
const PROCESS_LOOK_INTERVAL: Duration = Duration::from_millis(250);

/// Waits for the verdict on a check (`answer` receives, or its sender goes, when it comes
/// or the check is dropped); `None` then. Otherwise why there will be none: the validator
/// `client` ended, or `timeout` passed.
fn wait_for_verdict(answer: &mpsc::Receiver<()>, client: u32, timeout: Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Some(format!(
                "the certificate validation callback did not answer within {} ms",
                timeout.as_millis()
            ));
        }
        match answer.recv_timeout(left.min(PROCESS_LOOK_INTERVAL)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
        if !process_exists(client) {
            return Some(format!(
                "the process {client} that set the certificate validation callback ended \
                 without answering (it is gone)"
            ));
        }
    }
}

fn interface_required(description: String) -> QmgrError {
    QmgrError::new(
        hresult::BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED,
        ErrorContext::ServerCertificateCallback,
        description,
    )
}

fn no_such_check(job: Guid, check: u64) -> QmgrError {
    QmgrError::from_code(hresult::BG_E_NOT_FOUND).context(format_args!(
        "job {job} has no certificate check {check} waiting (it was answered or timed out)"
    ))
}
