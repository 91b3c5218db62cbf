//! IBackgroundCopyServerCertificateValidationCallback: the client's objects registered with
//! IBackgroundCopyJobHttpOptions3::SetServerCertificateValidationInterface, and the one
//! call that asks them about a server.
//!
//! The service holds a job's https files until the validator's process answers (see
//! qmgr-service's `certificate_check`). It names that process (its pid) in each
//! `CertificateCheck` notification; this process fetches the certificates, calls
//! ValidateServerCertificate and sends the verdict back. The library holds one reference
//! to the callback (QueryInterface'd for the interface) until it is replaced, cleared with
//! NULL, or the job leaves the queue; the service forgets the registration when it
//! restarts, as Windows does, so a program sets it again on the jobs it still validates.
//!
//! The arguments follow Microsoft's page, with Linux forms of Windows' data: `certData` is
//! the server's certificate in DER with `certEncodingType` `X509_ASN_ENCODING |
//! PKCS_7_ASN_ENCODING`; `certStoreData` is every certificate the server sent, leaf first,
//! each DER, one after another (a Windows serialized store has no Linux reader; this form
//! reads with any X.509 library, `d2i_X509` in a loop).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use qmgr_core::hresult::{self, HResult};
use qmgr_core::service::{QueueServiceExt, Request};
use qmgr_core::{Guid, QmgrError, Result};

use crate::abi::bits::{
    IBackgroundCopyServerCertificateValidationCallback,
    IID_IBackgroundCopyServerCertificateValidationCallback,
};
use crate::abi::types::{HRESULT, IUnknown};
use crate::apartment::ClientRef;
use crate::com::foreign;
use crate::file::FileObject;
use crate::job::JobObject;
use crate::runtime::Queue;

/// `X509_ASN_ENCODING | PKCS_7_ASN_ENCODING` (wincrypt.h): the encoding of `certData`.
pub(crate) const CERTIFICATE_ENCODING: u32 = 0x0001_0001;

/// A client's validator, at home in the apartment it was handed in from (see
/// [`crate::apartment`]): an STA's validator is asked only while that thread pumps.
type Validator = Arc<ClientRef>;

static VALIDATORS: Mutex<Option<HashMap<Guid, Validator>>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut HashMap<Guid, Validator>) -> R) -> R {
    f(VALIDATORS.lock().get_or_insert_with(HashMap::new))
}

/// SetServerCertificateValidationInterface: `object` (NULL clears) validates the job's
/// servers from now on. The service refuses while the job is active
/// (`BG_E_READ_ONLY_WHEN_JOB_ACTIVE`); nothing changes then.
pub(crate) fn register(queue: &Queue, job: Guid, object: *mut IUnknown) -> Result<()> {
    if object.is_null() {
        set_in_service(queue, job, None)?;
        forget(job);
        return Ok(());
    }
    // SAFETY: a non-null IUnknown the caller passed (COM's contract).
    let found = unsafe {
        foreign::query(
            object,
            &IID_IBackgroundCopyServerCertificateValidationCallback,
        )
    }
    .ok_or_else(|| {
        QmgrError::from_code(hresult::E_NOINTERFACE).context(
            "the object does not implement IBackgroundCopyServerCertificateValidationCallback",
        )
    })?;
    // SAFETY: `found` is a reference QueryInterface gave us; the ClientRef takes it over.
    let validator = unsafe { ClientRef::adopt(found.cast()) }
        .map(Arc::new)
        .ok_or_else(|| QmgrError::from_code(hresult::E_POINTER).context("no validator"))?;
    // The checks arrive as notifications: the dispatcher runs before the service may ask.
    crate::notify::start_dispatcher(queue)?;
    set_in_service(queue, job, Some(std::process::id()))?;
    let replaced = with(|validators| validators.insert(job, validator));
    drop(replaced);
    Ok(())
}

fn set_in_service(queue: &Queue, job: Guid, client: Option<u32>) -> Result<()> {
    queue
        .execute(Request::SetCertificateValidator { job, client })
        .map(drop)
}

/// Drops the job's validator, if any (the job left the queue).
pub(crate) fn forget(job: Guid) {
    let removed = with(|validators| validators.remove(&job));
    drop(removed);
}

/// The entry point of the notification machinery: the service announced check `check` of
/// file `file` of `job` for the validator in process `client`. This process, if it is that
/// one and still holds a validator for the job, calls it and sends the verdict; a check it
/// cannot answer is left to the service's timeout.
pub(crate) fn validate(queue: &Queue, job: Guid, check: u64, file: u32, client: u32) {
    if client != std::process::id() {
        return;
    }
    let Some(validator) = with(|validators| validators.get(&job).cloned()) else {
        return;
    };
    // The check may have timed out meanwhile: nothing to answer then.
    let Ok(details) = queue.certificate_check(job, check) else {
        return;
    };
    let Ok(Some(record)) = queue.job_file(job, file) else {
        return;
    };
    let (Ok(certificate_length), Ok(chain_length)) = (
        u32::try_from(details.certificate.len()),
        u32::try_from(details.chain.len()),
    ) else {
        return;
    };
    let queue = queue.clone();
    let home = validator.home().clone();
    // In an STA this waits for the thread to pump; one that never does leaves the check to
    // the service's timeout (BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED).
    home.run(None, move || {
        let Some(object) = validator.get::<IBackgroundCopyServerCertificateValidationCallback>()
        else {
            return;
        };
        let job_object = JobObject::create(queue.clone(), job, None);
        let file_object = FileObject::create(queue.clone(), job, file, record);
        // SAFETY: `object` is a live reference `validator` holds for the whole call, made in
        // its home; the job and file objects are references the library owns and releases
        // afterwards; the byte arrays live in `details` across the call, with the lengths
        // given.
        let answer: HRESULT = crate::boundary::guarded(hresult::E_UNEXPECTED.0, || unsafe {
            let answer = ((*(*object).lpVtbl).ValidateServerCertificate)(
                object,
                job_object,
                file_object,
                certificate_length,
                details.certificate.as_ptr(),
                CERTIFICATE_ENCODING,
                chain_length,
                details.chain.as_ptr(),
            );
            foreign::release(file_object.cast());
            foreign::release(job_object.cast());
            answer
        });
        // A verdict after the timeout finds the check gone; the job is in ERROR already.
        let _ = queue.execute(Request::CertificateVerdict {
            job,
            check,
            verdict: HResult(answer),
        });
    });
}
