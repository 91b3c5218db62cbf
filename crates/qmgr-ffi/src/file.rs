//! The file object: IBackgroundCopyFile … File6 through one vtable.
//!
//! It names its job and index and reads the file from the service on every call; once the
//! job has left the queue it answers from the record it was made with.

#![allow(
    clippy::wildcard_imports,
    reason = "the ABI modules are imported whole: their names are Windows'; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use qmgr_core::file::FileRecord;
use qmgr_core::hresult::{self, HResult};
use qmgr_core::service::{JobChange, QueueServiceExt};
use qmgr_core::{Guid, JobState, QmgrError, Result};

use crate::abi::bits::*;
use crate::abi::types::*;
use crate::boundary::thunks;
use crate::com::{Class, ComObject, unknown_vtbl};
use crate::memory::co_task_copy;
use crate::runtime::Queue;
use crate::strings::to_co_task;

pub(crate) struct FileObject {
    queue: Queue,
    job: Guid,
    index: u32,
    snapshot: FileRecord,
}

// SAFETY: one vtable reference at offset 0; File6's vtable extends File5's … File's.
unsafe impl Class for FileObject {
    type Header = &'static IBackgroundCopyFile6Vtbl;
    const HEADER: Self::Header = &FILE_VTBL;
    const INTERFACES: &'static [(GUID, usize)] = &[
        (IID_IUnknown, 0),
        (IID_IBackgroundCopyFile, 0),
        (IID_IBackgroundCopyFile2, 0),
        (IID_IBackgroundCopyFile3, 0),
        (IID_IBackgroundCopyFile4, 0),
        (IID_IBackgroundCopyFile5, 0),
        (IID_IBackgroundCopyFile6, 0),
    ];
}

impl FileObject {
    /// A new object for file `index` of `job`, last seen as `snapshot`.
    pub(crate) fn create(
        queue: Queue,
        job: Guid,
        index: u32,
        snapshot: FileRecord,
    ) -> *mut IBackgroundCopyFile {
        ComObject::create(FileObject {
            queue,
            job,
            index,
            snapshot,
        })
    }

    /// The file now (fetched alone, never with the rest of its job), or as last seen once
    /// its job has left the queue.
    fn record(&self) -> FileRecord {
        self.queue
            .job_file(self.job, self.index)
            .ok()
            .flatten()
            .unwrap_or_else(|| self.snapshot.clone())
    }

    /// A job that left the queue is ACKNOWLEDGED or CANCELLED to its objects: changing it
    /// is BG_E_INVALID_STATE, as for any final job, rather than "not found".
    fn left_queue(&self, error: QmgrError) -> QmgrError {
        if error.hresult == hresult::BG_E_NOT_FOUND {
            QmgrError::from_code(hresult::BG_E_INVALID_STATE)
                .context(format_args!("job {} has left the queue", self.job))
        } else {
            error
        }
    }

    fn change_job(&self, change: JobChange) -> Result<HResult> {
        self.queue
            .set_job(self.job, change)
            .map_err(|error| self.left_queue(error))
    }

    fn set_remote_name(&self, remote_name: String) -> Result<HResult> {
        let view = self
            .queue
            .job_summary(self.job)
            .map_err(|error| self.left_queue(error))?;
        if view.job.state == JobState::Transferred {
            return Err(QmgrError::from_code(hresult::BG_E_INVALID_STATE)
                .context(format_args!("job {} is TRANSFERRED", self.job)));
        }
        self.change_job(JobChange::RemoteName {
            file: self.index,
            remote_name,
        })
    }
}

thunks! { FileObject, IBackgroundCopyFile, 0;
    fn GetRemoteName(file, pVal: *mut LPWSTR) {
        let out = pVal.out("pVal")?;
        out.set(to_co_task(&file.record().remote_name)?);
        Ok(hresult::S_OK)
    }
    fn GetLocalName(file, pVal: *mut LPWSTR) {
        let out = pVal.out("pVal")?;
        out.set(to_co_task(&file.record().local_name)?);
        Ok(hresult::S_OK)
    }
    fn GetProgress(file, pVal: *mut BG_FILE_PROGRESS) {
        let out = pVal.out("pVal")?;
        let record = file.record();
        out.set(BG_FILE_PROGRESS {
            BytesTotal: record.bytes_total,
            BytesTransferred: record.bytes_transferred,
            Completed: BOOL::from(record.completed),
        });
        Ok(hresult::S_OK)
    }
}

thunks! { FileObject, IBackgroundCopyFile2, 0;
    fn GetFileRanges(file, RangeCount: *mut DWORD, Ranges: *mut *mut BG_FILE_RANGE) {
        let (count, out) = (RangeCount.out("RangeCount")?, Ranges.out("Ranges")?);
        let record = file.record();
        // A whole file has no ranges: S_FALSE, with the count 0 and NULL (already written).
        if record.ranges.is_empty() {
            return Ok(hresult::S_FALSE);
        }
        let ranges: Vec<BG_FILE_RANGE> = record
            .ranges
            .iter()
            .map(|range| BG_FILE_RANGE { InitialOffset: range.offset, Length: range.length })
            .collect();
        let copied = co_task_copy(&ranges)?;
        count.set(DWORD::try_from(ranges.len()).unwrap_or(DWORD::MAX));
        out.set(copied);
        Ok(hresult::S_OK)
    }
    fn SetRemoteName(file, Val: LPCWSTR) {
        file.set_remote_name(Val.required_string("Val")?)
    }
}

thunks! { FileObject, IBackgroundCopyFile3, 0;
    fn GetTemporaryName(file, pFilename: *mut LPWSTR) {
        let out = pFilename.out("pFilename")?;
        // Empty until the file's transfer has started and its temporary file exists.
        out.set(to_co_task(file.record().temp_name.as_deref().unwrap_or(""))?);
        Ok(hresult::S_OK)
    }
    fn SetValidationState(file, state: BOOL) {
        file.change_job(JobChange::ValidationState { file: file.index, valid: state != FALSE })
    }
    fn GetValidationState(file, pState: *mut BOOL) {
        pState.out("pState")?.set(BOOL::from(file.record().validated));
        Ok(hresult::S_OK)
    }
    fn IsDownloadedFromPeer(file, pVal: *mut BOOL) {
        let _ = file;
        pVal.out("pVal")?.set(FALSE);
        Ok(hresult::S_OK)
    }
}

thunks! { FileObject, IBackgroundCopyFile4, 0;
    fn GetPeerDownloadStats(file, pFromOrigin: *mut UINT64, pFromPeers: *mut UINT64) {
        let (origin, peers) = (pFromOrigin.out("pFromOrigin")?, pFromPeers.out("pFromPeers")?);
        // Every byte comes from the origin: there is no peer caching.
        origin.set(file.record().bytes_transferred);
        peers.set(0);
        Ok(hresult::S_OK)
    }
}

thunks! { FileObject, IBackgroundCopyFile5, 0;
    fn SetProperty(file, PropertyId: BITS_FILE_PROPERTY_ID, PropertyValue: BITS_FILE_PROPERTY_VALUE) {
        let _ = (file, PropertyValue);
        known_file_property(PropertyId)?;
        Err(QmgrError::from_code(hresult::BG_E_READ_ONLY_PROPERTY)
            .context("the HTTP response headers property is read-only"))
    }
    fn GetProperty(file, PropertyId: BITS_FILE_PROPERTY_ID, PropertyValue: *mut BITS_FILE_PROPERTY_VALUE) {
        let out = PropertyValue.out("PropertyValue")?;
        known_file_property(PropertyId)?;
        // The head of the last response as the server sent it (status line and headers,
        // CRLF-separated); empty before any response.
        let headers = file.queue.file_response_headers(file.job, file.index)?;
        out.set(BITS_FILE_PROPERTY_VALUE {
            String: to_co_task(headers.as_deref().unwrap_or(""))?,
        });
        Ok(hresult::S_OK)
    }
}

thunks! { FileObject, IBackgroundCopyFile6, 0;
    fn UpdateDownloadPosition(file, offset: UINT64) {
        file.queue
            .update_download_position(file.job, file.index, offset)
            .map_err(|error| file.left_queue(error))
    }
    fn RequestFileRanges(file, rangeCount: DWORD, ranges: *const BG_FILE_RANGE) {
        // The service checks the ranges (a count of 0 included); a count beyond the limit
        // is refused before the caller's array is read.
        let count = rangeCount as usize;
        if count > qmgr_core::ranges::MAX_RANGES_PER_FILE {
            return Err(QmgrError::from_code(hresult::BG_E_TOO_MANY_RANGES_IN_FILE).context(
                format_args!(
                    "{count} ranges in one request; the most is {}",
                    qmgr_core::ranges::MAX_RANGES_PER_FILE
                ),
            ));
        }
        let ranges = if count == 0 {
            Vec::new()
        } else {
            ranges
                .slice(count, "ranges")?
                .iter()
                .map(|range| qmgr_core::ranges::FileRange {
                    offset: range.InitialOffset,
                    length: range.Length,
                })
                .collect()
        };
        file.queue
            .request_file_ranges(file.job, file.index, ranges)
            .map_err(|error| file.left_queue(error))
    }
    fn GetFilledFileRanges(file, rangeCount: *mut DWORD, ranges: *mut *mut BG_FILE_RANGE) {
        let (count, out) = (rangeCount.out("rangeCount")?, ranges.out("ranges")?);
        let view = file
            .queue
            .job_summary(file.job)
            .map_err(|error| file.left_queue(error))?;
        let record = file.record();
        view.job.check_on_demand_file(&record)?;
        let filled: Vec<BG_FILE_RANGE> = filled_ranges(view.job.settings.on_demand, &record)
            .iter()
            .map(|range| BG_FILE_RANGE { InitialOffset: range.offset, Length: range.length })
            .collect();
        let copied = if filled.is_empty() {
            std::ptr::null_mut()
        } else {
            co_task_copy(&filled)?
        };
        count.set(DWORD::try_from(filled.len()).unwrap_or(DWORD::MAX));
        out.set(copied);
        Ok(hresult::S_OK)
    }
}

/// The bytes of the file on disk, merged and ordered by offset: an on-demand file's filled
/// spans; for a file downloaded whole, from the start, the bytes so far.
fn filled_ranges(on_demand: bool, record: &FileRecord) -> Vec<qmgr_core::ranges::FileRange> {
    if on_demand {
        record.on_demand.filled.to_file_ranges()
    } else if record.bytes_transferred == 0 {
        Vec::new()
    } else {
        vec![qmgr_core::ranges::FileRange {
            offset: 0,
            length: record.bytes_transferred,
        }]
    }
}

/// The response headers are the only file property there is: any other id is
/// BG_E_UNKNOWN_PROPERTY_ID.
fn known_file_property(id: BITS_FILE_PROPERTY_ID) -> Result<()> {
    if id == BITS_FILE_PROPERTY_ID_HTTP_RESPONSE_HEADERS {
        Ok(())
    } else {
        Err(QmgrError::from_code(hresult::BG_E_UNKNOWN_PROPERTY_ID)
            .context(format_args!("file property {id}")))
    }
}

const FILE_VTBL: IBackgroundCopyFile6Vtbl = IBackgroundCopyFile6Vtbl {
    base: IBackgroundCopyFile5Vtbl {
        base: IBackgroundCopyFile4Vtbl {
            base: IBackgroundCopyFile3Vtbl {
                base: IBackgroundCopyFile2Vtbl {
                    base: IBackgroundCopyFileVtbl {
                        base: unknown_vtbl::<FileObject, 0>(),
                        GetRemoteName,
                        GetLocalName,
                        GetProgress,
                    },
                    GetFileRanges,
                    SetRemoteName,
                },
                GetTemporaryName,
                SetValidationState,
                GetValidationState,
                IsDownloadedFromPeer,
            },
            GetPeerDownloadStats,
        },
        SetProperty,
        GetProperty,
    },
    UpdateDownloadPosition,
    RequestFileRanges,
    GetFilledFileRanges,
};
