//! The enumerators — IEnumBackgroundCopyJobs, IEnumBackgroundCopyFiles and the legacy
//! IEnumBackgroundCopyGroups and IEnumBackgroundCopyJobs1 — over a snapshot taken when the
//! enumerator was made (qmgr-enum): Next/Skip/Reset/Clone/GetCount are written once,
//! generically, and each kind says what its items become in the caller's array.

#![allow(
    clippy::wildcard_imports,
    reason = "the ABI modules are imported whole: their names are Windows'; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use parking_lot::Mutex;
use qmgr_core::file::FileRecord;
use qmgr_core::hresult::{self, HResult};
use qmgr_core::service::JobSummary;
use qmgr_core::{Guid, QmgrError, Result};
use qmgr_enum::{Fetched, Snapshot, SnapshotEnumerator};

use crate::abi::bits::*;
use crate::abi::qmgr::*;
use crate::abi::types::*;
use crate::boundary::{self, FromCaller};
use crate::com::{Class, ComObject, unknown_vtbl};
use crate::file::FileObject;
use crate::job::JobObject;
use crate::runtime::Queue;

/// What one kind of enumerator hands out.
pub(crate) trait EnumKind: Send + Sync + Sized + 'static {
    /// The interface the enumerator is reached through.
    type Interface;
    type Item: Send + Sync + 'static;
    /// What the caller's `rgelt` array holds.
    type Element: Copy;
    fn element(queue: &Queue, item: &Self::Item) -> Self::Element;
}

/// An enumerator object: the service (to make job and file objects) and a cursor over a
/// snapshot shared with its clones.
pub(crate) struct EnumObject<K: EnumKind> {
    queue: Queue,
    cursor: Mutex<SnapshotEnumerator<K::Item>>,
}

impl<K: EnumKind> EnumObject<K>
where
    EnumObject<K>: Class,
{
    fn create_at(queue: Queue, cursor: SnapshotEnumerator<K::Item>) -> *mut K::Interface {
        ComObject::create(EnumObject::<K> {
            queue,
            cursor: Mutex::new(cursor),
        })
    }

    pub(crate) fn create(queue: Queue, items: Vec<K::Item>) -> *mut K::Interface {
        Self::create_at(queue, Snapshot::new(items).enumerator())
    }

    fn next(
        &self,
        celt: ULONG,
        rgelt: boundary::Ptr<'_, K::Element>,
        fetched: boundary::Ptr<'_, ULONG>,
    ) -> Result<HResult> {
        if celt > 1 && fetched.is_null() {
            return Err(QmgrError::invalid_arg(
                "pceltFetched may be NULL only when celt is 1",
            ));
        }
        if celt > 0 && rgelt.is_null() {
            return Err(boundary::null_pointer("rgelt"));
        }
        let mut cursor = self.cursor.lock();
        let batch = cursor.next(celt as usize);
        let slots = rgelt.slice_out(batch.items.len(), "rgelt")?;
        for (slot, item) in slots.iter_mut().zip(batch.items) {
            *slot = K::element(&self.queue, item);
        }
        if let Some(out) = fetched.optional_out() {
            out.set(u32::try_from(batch.items.len()).unwrap_or(u32::MAX));
        }
        Ok(code(batch.fetched))
    }
}

fn code(fetched: Fetched) -> HResult {
    if fetched.is_all() {
        hresult::S_OK
    } else {
        hresult::S_FALSE
    }
}

unsafe extern "C" fn next<K: EnumKind>(
    this: *mut K::Interface,
    celt: ULONG,
    rgelt: *mut K::Element,
    pcelt_fetched: *mut ULONG,
) -> HRESULT
where
    EnumObject<K>: Class,
{
    // SAFETY: COM's calling contract: `this` is the enumerator the method was reached
    // through; `rgelt` has room for `celt` elements and `pcelt_fetched` is NULL or writable.
    let (this, rgelt, fetched) = unsafe {
        (
            ComObject::<EnumObject<K>>::state(this, 0),
            rgelt.checked(),
            pcelt_fetched.checked(),
        )
    };
    boundary::hresult(move || this?.next(celt, rgelt, fetched))
}

unsafe extern "C" fn skip<K: EnumKind>(this: *mut K::Interface, celt: ULONG) -> HRESULT
where
    EnumObject<K>: Class,
{
    // SAFETY: COM's calling contract: `this` is the enumerator the method was reached through.
    let this = unsafe { ComObject::<EnumObject<K>>::state(this, 0) };
    boundary::hresult(move || Ok(code(this?.cursor.lock().skip(celt as usize))))
}

unsafe extern "C" fn reset<K: EnumKind>(this: *mut K::Interface) -> HRESULT
where
    EnumObject<K>: Class,
{
    // SAFETY: COM's calling contract: `this` is the enumerator the method was reached through.
    let this = unsafe { ComObject::<EnumObject<K>>::state(this, 0) };
    boundary::hresult(move || {
        this?.cursor.lock().reset();
        Ok(hresult::S_OK)
    })
}

unsafe extern "C" fn clone<K: EnumKind>(
    this: *mut K::Interface,
    ppenum: *mut *mut K::Interface,
) -> HRESULT
where
    EnumObject<K>: Class,
{
    // SAFETY: COM's calling contract: `this` is the enumerator the method was reached
    // through and `ppenum` is NULL or writable.
    let (this, ppenum) = unsafe { (ComObject::<EnumObject<K>>::state(this, 0), ppenum.checked()) };
    boundary::hresult(move || {
        let this = this?;
        let out = ppenum.out("ppenum")?;
        let cursor = this.cursor.lock().clone();
        out.set(EnumObject::<K>::create_at(this.queue.clone(), cursor));
        Ok(hresult::S_OK)
    })
}

unsafe extern "C" fn get_count<K: EnumKind>(
    this: *mut K::Interface,
    pu_count: *mut ULONG,
) -> HRESULT
where
    EnumObject<K>: Class,
{
    // SAFETY: COM's calling contract: `this` is the enumerator the method was reached
    // through and `pu_count` is NULL or writable.
    let (this, count) = unsafe {
        (
            ComObject::<EnumObject<K>>::state(this, 0),
            pu_count.checked(),
        )
    };
    boundary::hresult(move || {
        let this = this?;
        let out = count.out("puCount")?;
        out.set(u32::try_from(this.cursor.lock().count()).unwrap_or(u32::MAX));
        Ok(hresult::S_OK)
    })
}

/// Jobs, as fresh job objects (each one a new reference for the caller).
pub(crate) struct Jobs;

/// A job in a listing, and the queue it lives in when that is not the enumerator's (root's
/// listing of every user's jobs holds jobs of other users' daemons).
pub(crate) struct JobItem {
    pub queue: Option<Queue>,
    pub summary: JobSummary,
}

impl EnumKind for Jobs {
    type Interface = IEnumBackgroundCopyJobs;
    type Item = JobItem;
    type Element = *mut IBackgroundCopyJob;
    fn element(queue: &Queue, item: &JobItem) -> *mut IBackgroundCopyJob {
        let queue = item.queue.as_ref().unwrap_or(queue);
        JobObject::create(
            queue.clone(),
            item.summary.job.id,
            Some(item.summary.clone()),
        )
    }
}

/// One file of a job, as it was when the snapshot was taken.
pub(crate) struct FileItem {
    pub job: Guid,
    pub index: u32,
    pub record: FileRecord,
}

/// Files, as fresh file objects.
pub(crate) struct Files;

impl EnumKind for Files {
    type Interface = IEnumBackgroundCopyFiles;
    type Item = FileItem;
    type Element = *mut IBackgroundCopyFile;
    fn element(queue: &Queue, item: &FileItem) -> *mut IBackgroundCopyFile {
        FileObject::create(queue.clone(), item.job, item.index, item.record.clone())
    }
}

/// Group GUIDs (IEnumBackgroundCopyGroups).
pub(crate) struct Groups;

impl EnumKind for Groups {
    type Interface = IEnumBackgroundCopyGroups;
    type Item = Guid;
    type Element = GUID;
    fn element(_: &Queue, item: &Guid) -> GUID {
        (*item).into()
    }
}

/// The GUID of a group's job (IEnumBackgroundCopyJobs1).
pub(crate) struct Jobs1;

impl EnumKind for Jobs1 {
    type Interface = IEnumBackgroundCopyJobs1;
    type Item = Guid;
    type Element = GUID;
    fn element(_: &Queue, item: &Guid) -> GUID {
        (*item).into()
    }
}

pub(crate) type EnumJobsObject = EnumObject<Jobs>;
pub(crate) type EnumFilesObject = EnumObject<Files>;
pub(crate) type EnumGroupsObject = EnumObject<Groups>;
pub(crate) type EnumJobs1Object = EnumObject<Jobs1>;

// SAFETY: one vtable reference at offset 0 serving the interface (so for the three below).
unsafe impl Class for EnumJobsObject {
    type Header = &'static IEnumBackgroundCopyJobsVtbl;
    const HEADER: Self::Header = &IEnumBackgroundCopyJobsVtbl {
        base: unknown_vtbl::<Self, 0>(),
        Next: next::<Jobs>,
        Skip: skip::<Jobs>,
        Reset: reset::<Jobs>,
        Clone: clone::<Jobs>,
        GetCount: get_count::<Jobs>,
    };
    const INTERFACES: &'static [(GUID, usize)] =
        &[(IID_IUnknown, 0), (IID_IEnumBackgroundCopyJobs, 0)];
}

// SAFETY: see above.
unsafe impl Class for EnumFilesObject {
    type Header = &'static IEnumBackgroundCopyFilesVtbl;
    const HEADER: Self::Header = &IEnumBackgroundCopyFilesVtbl {
        base: unknown_vtbl::<Self, 0>(),
        Next: next::<Files>,
        Skip: skip::<Files>,
        Reset: reset::<Files>,
        Clone: clone::<Files>,
        GetCount: get_count::<Files>,
    };
    const INTERFACES: &'static [(GUID, usize)] =
        &[(IID_IUnknown, 0), (IID_IEnumBackgroundCopyFiles, 0)];
}

// SAFETY: see above.
unsafe impl Class for EnumGroupsObject {
    type Header = &'static IEnumBackgroundCopyGroupsVtbl;
    const HEADER: Self::Header = &IEnumBackgroundCopyGroupsVtbl {
        base: unknown_vtbl::<Self, 0>(),
        Next: next::<Groups>,
        Skip: skip::<Groups>,
        Reset: reset::<Groups>,
        Clone: clone::<Groups>,
        GetCount: get_count::<Groups>,
    };
    const INTERFACES: &'static [(GUID, usize)] =
        &[(IID_IUnknown, 0), (IID_IEnumBackgroundCopyGroups, 0)];
}

// SAFETY: see above.
unsafe impl Class for EnumJobs1Object {
    type Header = &'static IEnumBackgroundCopyJobs1Vtbl;
    const HEADER: Self::Header = &IEnumBackgroundCopyJobs1Vtbl {
        base: unknown_vtbl::<Self, 0>(),
        Next: next::<Jobs1>,
        Skip: skip::<Jobs1>,
        Reset: reset::<Jobs1>,
        Clone: clone::<Jobs1>,
        GetCount: get_count::<Jobs1>,
    };
    const INTERFACES: &'static [(GUID, usize)] =
        &[(IID_IUnknown, 0), (IID_IEnumBackgroundCopyJobs1, 0)];
}
