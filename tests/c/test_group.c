/* test_group.c: the legacy group API of qmgr.h, and the BSTR and VARIANT helpers it uses.
 *
 * - IBackgroundCopyQMgr: CreateGroup (a GUID by value; a second one with the same GUID
 *   is E_INVALIDARG), GetGroup, EnumGroups.
 * - IBackgroundCopyGroup: every property through VARIANTs (accepted types, refused
 *   values, unsupported properties), progress, status, its one job, suspend, resume,
 *   foreground, cancel, size and id; QueryNewJobInterface gives the group's job through
 *   IBackgroundCopyJob.
 * - IBackgroundCopyCallback1 registered with SetNotificationPointer: OnStatus when the
 *   group is done (QM_NOTIFY_GROUP_DONE) and on an error (always), OnProgress meanwhile.
 * - IBackgroundCopyJob1: files as FILESETINFO with BSTRs, progress, status, foreground,
 *   id, cancel.
 * - IEnumBackgroundCopyGroups and IEnumBackgroundCopyJobs1 (GUIDs).
 * - A download through a group: the file is in place once the group is complete, and
 *   stays when the finished group is cancelled.
 * - VariantClear releases an interface a VARIANT holds and refuses SAFEARRAYs.
 */
#include "support.h"

#include <stdatomic.h>

#define DISP_E_BADVARTYPE ((HRESULT)0x80020008)

static GUID guid_numbered(unsigned number)
{
    GUID guid;
    memset(&guid, 0, sizeof guid);
    guid.Data1 = 0x51A0C000u + number;
    guid.Data2 = 0x7E57;
    guid.Data4[7] = (BYTE)number;
    return guid;
}

static void set_integer(IBackgroundCopyGroup *group, GROUPPROP property, VARTYPE type, LONG value,
                        HRESULT expected, int line)
{
    VARIANT variant;
    VariantInit(&variant);
    V_VT(&variant) = type;
    if (type == VT_I2) {
        V_I2(&variant) = (SHORT)value;
    } else {
        V_I4(&variant) = value;
    }
    check_hresult(IBackgroundCopyGroup_SetProp(group, property, &variant), expected, "SetProp",
                  "expected", __FILE__, line);
}

static void set_text(IBackgroundCopyGroup *group, GROUPPROP property, const WCHAR *text,
                     HRESULT expected, int line)
{
    VARIANT variant;
    VariantInit(&variant);
    V_VT(&variant) = VT_BSTR;
    V_BSTR(&variant) = SysAllocString(text);
    check_hresult(IBackgroundCopyGroup_SetProp(group, property, &variant), expected, "SetProp",
                  "expected", __FILE__, line);
    VariantClear(&variant);
}

static void properties(IBackgroundCopyGroup *group)
{
    VARIANT value;
    WCHAR long_name[300];
    size_t i;

    VariantInit(&value);
    CHECK_HR(IBackgroundCopyGroup_GetProp(group, GROUPPROP_PRIORITY, &value), S_OK);
    CHECK(V_VT(&value) == VT_I4 && V_I4(&value) == 1);
    set_integer(group, GROUPPROP_PRIORITY, VT_I4, 1, S_OK, __LINE__);
    set_integer(group, GROUPPROP_PRIORITY, VT_I2, 1, S_OK, __LINE__);
    set_integer(group, GROUPPROP_PRIORITY, VT_I4, 2, E_INVALIDARG, __LINE__);
    set_integer(group, GROUPPROP_PROTOCOLFLAGS, VT_UI4, QM_PROTOCOL_HTTP, S_OK, __LINE__);
    set_integer(group, GROUPPROP_PROTOCOLFLAGS, VT_I4, QM_PROTOCOL_FTP, E_INVALIDARG, __LINE__);
    CHECK_HR(IBackgroundCopyGroup_GetProp(group, GROUPPROP_PROTOCOLFLAGS, &value), S_OK);
    CHECK(V_VT(&value) == VT_I4 && V_I4(&value) == QM_PROTOCOL_HTTP);

    set_integer(group, GROUPPROP_NOTIFYFLAGS, VT_I4, QM_NOTIFY_GROUP_DONE, S_OK, __LINE__);
    CHECK_HR(IBackgroundCopyGroup_GetProp(group, GROUPPROP_NOTIFYFLAGS, &value), S_OK);
    CHECK(V_VT(&value) == VT_I4 && V_I4(&value) == QM_NOTIFY_GROUP_DONE);
    set_text(group, GROUPPROP_NOTIFYFLAGS, u"4", E_INVALIDARG, __LINE__);

    set_text(group, GROUPPROP_DISPLAYNAME, u"test_group", S_OK, __LINE__);
    CHECK_HR(IBackgroundCopyGroup_GetProp(group, GROUPPROP_DISPLAYNAME, &value), S_OK);
    CHECK(V_VT(&value) == VT_BSTR && wide_is(V_BSTR(&value), "test_group"));
    CHECK_HR(VariantClear(&value), S_OK);
    set_text(group, GROUPPROP_DESCRIPTION, u"a legacy group", S_OK, __LINE__);
    CHECK_HR(IBackgroundCopyGroup_GetProp(group, GROUPPROP_DESCRIPTION, &value), S_OK);
    CHECK(V_VT(&value) == VT_BSTR && wide_is(V_BSTR(&value), "a legacy group"));
    CHECK_HR(VariantClear(&value), S_OK);
    for (i = 0; i < 299; i++) {
        long_name[i] = 'g';
    }
    long_name[299] = 0;
    set_text(group, GROUPPROP_DISPLAYNAME, long_name, E_INVALIDARG, __LINE__);
    set_integer(group, GROUPPROP_DISPLAYNAME, VT_I4, 5, E_INVALIDARG, __LINE__);

    CHECK_HR(IBackgroundCopyGroup_GetProp(group, GROUPPROP_NOTIFYCLSID, &value), S_OK);
    CHECK(V_VT(&value) == VT_EMPTY);
    set_text(group, GROUPPROP_NOTIFYCLSID, u"{4991D34B-80A1-4291-83B6-3328366B9097}", S_OK,
             __LINE__);
    CHECK_HR(IBackgroundCopyGroup_GetProp(group, GROUPPROP_NOTIFYCLSID, &value), S_OK);
    CHECK(V_VT(&value) == VT_BSTR && V_BSTR(&value) != NULL && SysStringLen(V_BSTR(&value)) >= 36);
    CHECK_HR(VariantClear(&value), S_OK);
    set_text(group, GROUPPROP_NOTIFYCLSID, u"not a CLSID", E_INVALIDARG, __LINE__);

    CHECK_HR(IBackgroundCopyGroup_GetProp(group, GROUPPROP_REMOTEUSERID, &value), E_NOTIMPL);
    set_text(group, GROUPPROP_LOCALUSERPWD, u"secret", E_NOTIMPL, __LINE__);
    CHECK_HR(IBackgroundCopyGroup_GetProp(group, GROUPPROP_PROGRESSTIME, &value), E_NOTIMPL);
    CHECK_HR(IBackgroundCopyGroup_GetProp(group, GROUPPROP_DISPLAYNAME, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyGroup_SetProp(group, GROUPPROP_DISPLAYNAME, NULL), E_POINTER);
}

static void job_of_a_group(IBackgroundCopyGroup *group, GUID job_id, const TestPlace *place)
{
    IBackgroundCopyJob1 *job = NULL, *same = NULL, *refused = NULL;
    IEnumBackgroundCopyJobs1 *jobs = NULL, *copy = NULL;
    FILESETINFO files[2], *pointers[2] = {&files[0], &files[1]};
    FILESETINFO answer;
    WCHAR *url = url_of(place, "/data/2k/legacy");
    WCHAR *local_one = work_path_wide(place, "legacy1.bin");
    WCHAR *local_two = work_path_wide(place, "legacy2.bin");
    GUID seen;
    DWORD value = 99, status = 0, win32 = 1, transport = 1, retries = 1;
    ULONG count = 0, fetched = 0;

    CHECK_HR(IBackgroundCopyGroup_CreateJob(group, job_id, &job), S_OK);
    CHECK_HR(IBackgroundCopyGroup_CreateJob(group, guid_numbered(99), &refused), E_NOTIMPL);
    CHECK_HR(IBackgroundCopyGroup_GetJob(group, job_id, &same), S_OK);
    CHECK_HR(IBackgroundCopyGroup_GetJob(group, guid_numbered(98), &refused),
             QM_E_ITEM_NOT_FOUND);

    CHECK_HR(IBackgroundCopyJob1_get_JobID(job, &seen), S_OK);
    CHECK(IsEqualGUID(&seen, &job_id));
    CHECK_HR(IBackgroundCopyJob1_GetFileCount(job, &value), S_OK);
    CHECK(value == 0);
    files[0].bstrRemoteFile = SysAllocString(url);
    files[0].bstrLocalFile = SysAllocString(local_one);
    files[0].dwSizeHint = 2048;
    files[1].bstrRemoteFile = SysAllocString(url);
    files[1].bstrLocalFile = SysAllocString(local_two);
    files[1].dwSizeHint = 0;
    CHECK_HR(IBackgroundCopyJob1_AddFiles(job, 0, pointers), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob1_AddFiles(job, 2, pointers), S_OK);
    CHECK_HR(IBackgroundCopyJob1_GetFileCount(job, &value), S_OK);
    CHECK(value == 2);
    CHECK_HR(IBackgroundCopyJob1_GetFile(job, 1, &answer), S_OK);
    CHECK(wide_is(answer.bstrLocalFile, "") == 0 && answer.bstrLocalFile != NULL);
    CHECK(SysStringLen(answer.bstrRemoteFile) == SysStringLen(files[1].bstrRemoteFile));
    SysFreeString(answer.bstrRemoteFile);
    SysFreeString(answer.bstrLocalFile);
    CHECK_HR(IBackgroundCopyJob1_GetFile(job, 2, &answer), QM_E_ITEM_NOT_FOUND);
    CHECK_HR(IBackgroundCopyJob1_GetFile(job, 0, NULL), E_POINTER);
    SysFreeString(files[0].bstrRemoteFile);
    SysFreeString(files[0].bstrLocalFile);
    SysFreeString(files[1].bstrRemoteFile);
    SysFreeString(files[1].bstrLocalFile);

    CHECK_HR(IBackgroundCopyJob1_GetStatus(job, &status, &win32, &transport, &retries), S_OK);
    CHECK((status & QM_STATUS_JOB_INCOMPLETE) != 0 && win32 == 0 && transport == 0);
    CHECK_HR(IBackgroundCopyJob1_GetStatus(job, &status, NULL, NULL, NULL), S_OK);
    CHECK_HR(IBackgroundCopyJob1_GetProgress(job, QM_PROGRESS_PERCENT_DONE, &value), S_OK);
    CHECK(value == 0);
    CHECK_HR(IBackgroundCopyJob1_GetProgress(job, QM_PROGRESS_TIME_DONE, &value), E_NOTIMPL);
    CHECK_HR(IBackgroundCopyJob1_SwitchToForeground(job), S_OK);

    CHECK_HR(IBackgroundCopyGroup_EnumJobs(group, 0, &jobs), S_OK);
    CHECK_HR(IEnumBackgroundCopyJobs1_GetCount(jobs, &count), S_OK);
    CHECK(count == 1);
    CHECK_HR(IEnumBackgroundCopyJobs1_Clone(jobs, &copy), S_OK);
    CHECK_HR(IEnumBackgroundCopyJobs1_Next(jobs, 1, &seen, NULL), S_OK);
    CHECK(IsEqualGUID(&seen, &job_id));
    CHECK_HR(IEnumBackgroundCopyJobs1_Next(jobs, 1, &seen, &fetched), S_FALSE);
    CHECK(fetched == 0);
    CHECK_HR(IEnumBackgroundCopyJobs1_Reset(jobs), S_OK);
    CHECK_HR(IEnumBackgroundCopyJobs1_Skip(jobs, 2), S_FALSE);
    CHECK_HR(IEnumBackgroundCopyJobs1_Skip(copy, 1), S_OK);
    IEnumBackgroundCopyJobs1_Release(copy);
    IEnumBackgroundCopyJobs1_Release(jobs);
    CHECK_HR(IBackgroundCopyGroup_EnumJobs(group, 1, &jobs), E_NOTIMPL);

    if (same != NULL) {
        IBackgroundCopyJob1_Release(same);
    }
    IBackgroundCopyJob1_Release(job);
    free(url);
    free(local_one);
    free(local_two);
}

static void group_download(IBackgroundCopyGroup *group, const TestPlace *place)
{
    char *one = work_path(place, "legacy1.bin");
    char *two = work_path(place, "legacy2.bin");
    DWORD status = 0, index = 7, value = 0;
    unsigned waited_ms = 0;

    CHECK_HR(IBackgroundCopyGroup_GetStatus(group, &status, &index), S_OK);
    CHECK((status & QM_STATUS_GROUP_SUSPENDED) != 0 && index == 0);
    CHECK_HR(IBackgroundCopyGroup_SuspendGroup(group), S_OK);
    CHECK_HR(IBackgroundCopyGroup_ResumeGroup(group), S_OK);
    while (SUCCEEDED(IBackgroundCopyGroup_GetStatus(group, &status, NULL)) &&
           (status & (QM_STATUS_GROUP_COMPLETE | QM_STATUS_GROUP_ERROR)) == 0 &&
           waited_ms < 60000) {
        Sleep(20);
        waited_ms += 20;
    }
    CHECK(status == (QM_STATUS_GROUP_COMPLETE | QM_STATUS_GROUP_SUSPENDED));
    CHECK(served_file_matches(one, "/data/2k/legacy", 2048));
    CHECK(served_file_matches(two, "/data/2k/legacy", 2048));
    CHECK_HR(IBackgroundCopyGroup_GetProgress(group, QM_PROGRESS_PERCENT_DONE, &value), S_OK);
    CHECK(value == 100);
    CHECK_HR(IBackgroundCopyGroup_GetProgress(group, QM_PROGRESS_SIZE_DONE, &value), S_OK);
    CHECK(value == 4096);
    CHECK_HR(IBackgroundCopyGroup_GetProgress(group, QM_PROGRESS_TIME_DONE, &value), E_NOTIMPL);
    CHECK_HR(IBackgroundCopyGroup_GetProgress(group, 9, &value), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyGroup_get_Size(group, &value), S_OK);
    CHECK(value == 4096);
    CHECK_HR(IBackgroundCopyGroup_CancelGroup(group), S_OK);
    /* Files a legacy group finished stay when it is cancelled. */
    CHECK(served_file_matches(one, "/data/2k/legacy", 2048));
    CHECK(served_file_matches(two, "/data/2k/legacy", 2048));
    free(one);
    free(two);
}

static void cancel_a_pending_group(IBackgroundCopyQMgr *qmgr, const TestPlace *place)
{
    IBackgroundCopyGroup *group = NULL, *gone = NULL;
    IBackgroundCopyJob1 *job = NULL;
    FILESETINFO file, *pointer = &file;
    WCHAR *url = url_of(place, "/data/1m/pending?rate=16384");
    WCHAR *local = work_path_wide(place, "pending.bin");
    char *path = work_path(place, "pending.bin");
    GUID id = guid_numbered(3);
    DWORD status = 0;

    CHECK_HR(IBackgroundCopyQMgr_CreateGroup(qmgr, id, &group), S_OK);
    CHECK_HR(IBackgroundCopyGroup_CreateJob(group, guid_numbered(4), &job), S_OK);
    file.bstrRemoteFile = SysAllocString(url);
    file.bstrLocalFile = SysAllocString(local);
    file.dwSizeHint = 0;
    CHECK_HR(IBackgroundCopyJob1_AddFiles(job, 1, &pointer), S_OK);
    SysFreeString(file.bstrRemoteFile);
    SysFreeString(file.bstrLocalFile);
    CHECK_HR(IBackgroundCopyGroup_SwitchToForeground(group), S_OK);
    CHECK_HR(IBackgroundCopyGroup_ResumeGroup(group), S_OK);
    CHECK_HR(IBackgroundCopyGroup_GetStatus(group, &status, NULL), S_OK);
    CHECK((status & QM_STATUS_GROUP_INCOMPLETE) != 0);
    CHECK_HR(IBackgroundCopyJob1_CancelJob(job), S_OK);
    CHECK_HR(IBackgroundCopyGroup_CancelGroup(group), S_OK);
    CHECK(file_size(path) == -1);
    CHECK_HR(IBackgroundCopyQMgr_GetGroup(qmgr, id, &gone), QM_E_ITEM_NOT_FOUND);
    CHECK_HR(IBackgroundCopyGroup_QueryNewJobInterface(group, &IID_IBackgroundCopyJob,
                                                       (IUnknown **)(void *)&gone),
             QM_E_ITEM_NOT_FOUND);
    CHECK_HR(IBackgroundCopyGroup_SetNotificationPointer(group, &IID_IBackgroundCopyCallback1,
                                                         NULL),
             S_OK);
    IBackgroundCopyJob1_Release(job);
    IBackgroundCopyGroup_Release(group);
    free(url);
    free(local);
    free(path);
}

typedef struct {
    IBackgroundCopyCallback1 iface;
    atomic_long references;
    atomic_int statuses;
    atomic_uint last_status;
    atomic_uint last_transport;
    atomic_int progress_calls;
    atomic_uint last_percent;
} GroupRecorder;

static GroupRecorder *group_recorder_of(IBackgroundCopyCallback1 *This)
{
    return (GroupRecorder *)This;
}

static HRESULT STDMETHODCALLTYPE GroupRecorder_QueryInterface(IBackgroundCopyCallback1 *This,
                                                              REFIID riid, void **ppvObject)
{
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IBackgroundCopyCallback1)) {
        *ppvObject = This;
        atomic_fetch_add(&group_recorder_of(This)->references, 1);
        return S_OK;
    }
    *ppvObject = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE GroupRecorder_AddRef(IBackgroundCopyCallback1 *This)
{
    return (ULONG)(atomic_fetch_add(&group_recorder_of(This)->references, 1) + 1);
}

static ULONG STDMETHODCALLTYPE GroupRecorder_Release(IBackgroundCopyCallback1 *This)
{
    return (ULONG)(atomic_fetch_sub(&group_recorder_of(This)->references, 1) - 1);
}

static HRESULT STDMETHODCALLTYPE GroupRecorder_OnStatus(IBackgroundCopyCallback1 *This,
                                                        IBackgroundCopyGroup *pGroup,
                                                        IBackgroundCopyJob1 *pJob,
                                                        DWORD dwFileIndex, DWORD dwStatus,
                                                        DWORD dwNumOfRetries,
                                                        DWORD dwWin32Result,
                                                        DWORD dwTransportResult)
{
    GUID id;
    (void)pJob;
    (void)dwFileIndex;
    (void)dwNumOfRetries;
    (void)dwWin32Result;
    /* The group object works inside the call. */
    if (pGroup != NULL && SUCCEEDED(IBackgroundCopyGroup_get_GroupID(pGroup, &id))) {
        atomic_store(&group_recorder_of(This)->last_status, dwStatus);
        atomic_store(&group_recorder_of(This)->last_transport, dwTransportResult);
        atomic_fetch_add(&group_recorder_of(This)->statuses, 1);
    }
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE GroupRecorder_OnProgress(IBackgroundCopyCallback1 *This,
                                                          DWORD ProgressType,
                                                          IBackgroundCopyGroup *pGroup,
                                                          IBackgroundCopyJob1 *pJob,
                                                          DWORD dwFileIndex,
                                                          DWORD dwProgressValue)
{
    (void)pGroup;
    (void)pJob;
    (void)dwFileIndex;
    if (ProgressType == QM_PROGRESS_PERCENT_DONE && dwProgressValue <= 100) {
        atomic_store(&group_recorder_of(This)->last_percent, dwProgressValue);
        atomic_fetch_add(&group_recorder_of(This)->progress_calls, 1);
    }
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE GroupRecorder_OnProgressEx(
    IBackgroundCopyCallback1 *This, DWORD ProgressType, IBackgroundCopyGroup *pGroup,
    IBackgroundCopyJob1 *pJob, DWORD dwFileIndex, DWORD dwProgressValue,
    DWORD dwByteArraySize, BYTE *pByte)
{
    (void)dwByteArraySize;
    (void)pByte;
    return GroupRecorder_OnProgress(This, ProgressType, pGroup, pJob, dwFileIndex,
                                    dwProgressValue);
}

static IBackgroundCopyCallback1Vtbl group_recorder_vtbl = {
    GroupRecorder_QueryInterface, GroupRecorder_AddRef,     GroupRecorder_Release,
    GroupRecorder_OnStatus,       GroupRecorder_OnProgress, GroupRecorder_OnProgressEx,
};

/* Static: the library may release them after the code that registered them returned. */
static GroupRecorder done_recorder, failed_recorder;

static void group_recorder_init(GroupRecorder *recorder)
{
    recorder->iface.lpVtbl = &group_recorder_vtbl;
    atomic_init(&recorder->references, 1);
    atomic_init(&recorder->statuses, 0);
    atomic_init(&recorder->last_status, 0);
    atomic_init(&recorder->last_transport, 0);
    atomic_init(&recorder->progress_calls, 0);
    atomic_init(&recorder->last_percent, 0);
}

static int wait_for_statuses(GroupRecorder *recorder)
{
    unsigned waited_ms = 0;
    while (atomic_load(&recorder->statuses) < 1 && waited_ms < 60000) {
        Sleep(20);
        waited_ms += 20;
    }
    return atomic_load(&recorder->statuses) >= 1;
}

static int wait_for_group_references(GroupRecorder *recorder)
{
    unsigned waited_ms = 0;
    while (atomic_load(&recorder->references) != 1 && waited_ms < 60000) {
        Sleep(20);
        waited_ms += 20;
    }
    return atomic_load(&recorder->references) == 1;
}

/* A group with one job of the given files, not resumed yet. */
static IBackgroundCopyGroup *group_with(IBackgroundCopyQMgr *qmgr, unsigned number,
                                        const TestPlace *place, const char *url_path,
                                        const char *local_name)
{
    IBackgroundCopyGroup *group = NULL;
    IBackgroundCopyJob1 *job = NULL;
    FILESETINFO file, *pointer = &file;
    WCHAR *url = url_of(place, url_path);
    WCHAR *local = work_path_wide(place, local_name);

    CHECK_HR(IBackgroundCopyQMgr_CreateGroup(qmgr, guid_numbered(number), &group), S_OK);
    CHECK_HR(IBackgroundCopyGroup_CreateJob(group, guid_numbered(number + 1), &job), S_OK);
    file.bstrRemoteFile = SysAllocString(url);
    file.bstrLocalFile = SysAllocString(local);
    file.dwSizeHint = 0;
    CHECK_HR(IBackgroundCopyJob1_AddFiles(job, 1, &pointer), S_OK);
    SysFreeString(file.bstrRemoteFile);
    SysFreeString(file.bstrLocalFile);
    IBackgroundCopyJob1_Release(job);
    free(url);
    free(local);
    return group;
}

static void group_notifications(IBackgroundCopyQMgr *qmgr, const TestPlace *place)
{
    IBackgroundCopyGroup *done = group_with(qmgr, 10, place, "/data/8k/notified", "notified.bin");
    IBackgroundCopyGroup *failed =
        group_with(qmgr, 20, place, "/data/1k/lost?status=404", "lost.bin");
    IBackgroundCopyJob *modern = NULL;
    IUnknown *refused = NULL;
    GUID id;

    group_recorder_init(&done_recorder);
    group_recorder_init(&failed_recorder);
    /* The group's job through the modern interface. */
    if (CHECK_HR(IBackgroundCopyGroup_QueryNewJobInterface(done, &IID_IBackgroundCopyJob,
                                                           (IUnknown **)(void *)&modern),
                 S_OK)) {
        GUID expected = guid_numbered(11);
        CHECK_HR(IBackgroundCopyJob_GetId(modern, &id), S_OK);
        CHECK(IsEqualGUID(&id, &expected));
        IBackgroundCopyJob_Release(modern);
    }
    CHECK_HR(IBackgroundCopyGroup_QueryNewJobInterface(done, &IID_IBackgroundCopyQMgr, &refused),
             E_NOINTERFACE);
    CHECK_HR(IBackgroundCopyGroup_SetNotificationPointer(done, &IID_IUnknown,
                                                         (IUnknown *)&done_recorder.iface),
             E_NOINTERFACE);
    set_integer(done, GROUPPROP_NOTIFYFLAGS, VT_I4, QM_NOTIFY_GROUP_DONE, S_OK, __LINE__);
    CHECK_HR(IBackgroundCopyGroup_SetNotificationPointer(done, &IID_IBackgroundCopyCallback1,
                                                         (IUnknown *)&done_recorder.iface),
             S_OK);
    CHECK_HR(IBackgroundCopyGroup_SetNotificationPointer(failed, &IID_IBackgroundCopyCallback1,
                                                         (IUnknown *)&failed_recorder.iface),
             S_OK);
    CHECK_HR(IBackgroundCopyGroup_ResumeGroup(done), S_OK);
    CHECK_HR(IBackgroundCopyGroup_ResumeGroup(failed), S_OK);

    CHECK(wait_for_statuses(&done_recorder));
    CHECK((atomic_load(&done_recorder.last_status) & QM_STATUS_GROUP_COMPLETE) != 0);
    CHECK(atomic_load(&done_recorder.progress_calls) >= 1);
    /* No flags: errors are reported all the same. */
    CHECK(wait_for_statuses(&failed_recorder));
    CHECK((atomic_load(&failed_recorder.last_status) & QM_STATUS_GROUP_ERROR) != 0);
    CHECK(atomic_load(&failed_recorder.last_transport) == 404);

    CHECK_HR(IBackgroundCopyGroup_SetNotificationPointer(done, &IID_IBackgroundCopyCallback1,
                                                         NULL),
             S_OK);
    CHECK(wait_for_group_references(&done_recorder));
    CHECK_HR(IBackgroundCopyGroup_CancelGroup(done), S_OK);
    CHECK_HR(IBackgroundCopyGroup_SetNotificationPointer(failed, &IID_IBackgroundCopyCallback1,
                                                         NULL),
             S_OK);
    CHECK(wait_for_group_references(&failed_recorder));
    CHECK_HR(IBackgroundCopyGroup_CancelGroup(failed), S_OK);
    IBackgroundCopyGroup_Release(done);
    IBackgroundCopyGroup_Release(failed);
}

static void groups(IBackgroundCopyQMgr *qmgr, const TestPlace *place)
{
    IBackgroundCopyGroup *group = NULL, *again = NULL, *other = NULL;
    IEnumBackgroundCopyGroups *all = NULL, *copy = NULL;
    GUID id = guid_numbered(1), seen[3];
    ULONG count = 0, fetched = 0;

    CHECK_HR(IBackgroundCopyQMgr_CreateGroup(qmgr, id, &group), S_OK);
    CHECK_HR(IBackgroundCopyQMgr_CreateGroup(qmgr, id, &again), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyQMgr_CreateGroup(qmgr, guid_numbered(2), &other), S_OK);
    CHECK_HR(IBackgroundCopyQMgr_GetGroup(qmgr, id, &again), S_OK);
    CHECK_HR(IBackgroundCopyGroup_get_GroupID(again, &seen[0]), S_OK);
    CHECK(IsEqualGUID(&seen[0], &id));
    IBackgroundCopyGroup_Release(again);
    CHECK_HR(IBackgroundCopyQMgr_GetGroup(qmgr, guid_numbered(77), &again), QM_E_ITEM_NOT_FOUND);
    CHECK_HR(IBackgroundCopyQMgr_CreateGroup(qmgr, guid_numbered(78), NULL), E_POINTER);

    CHECK_HR(IBackgroundCopyQMgr_EnumGroups(qmgr, 0, &all), S_OK);
    CHECK_HR(IEnumBackgroundCopyGroups_GetCount(all, &count), S_OK);
    CHECK(count == 2);
    CHECK_HR(IEnumBackgroundCopyGroups_Next(all, 3, seen, &fetched), S_FALSE);
    CHECK(fetched == 2);
    CHECK((IsEqualGUID(&seen[0], &id) || IsEqualGUID(&seen[1], &id)));
    CHECK_HR(IEnumBackgroundCopyGroups_Reset(all), S_OK);
    CHECK_HR(IEnumBackgroundCopyGroups_Skip(all, 1), S_OK);
    CHECK_HR(IEnumBackgroundCopyGroups_Clone(all, &copy), S_OK);
    CHECK_HR(IEnumBackgroundCopyGroups_Next(copy, 2, seen, &fetched), S_FALSE);
    CHECK(fetched == 1);
    CHECK_HR(IEnumBackgroundCopyGroups_Next(all, 2, seen, NULL), E_INVALIDARG);
    IEnumBackgroundCopyGroups_Release(copy);
    IEnumBackgroundCopyGroups_Release(all);
    CHECK_HR(IBackgroundCopyQMgr_EnumGroups(qmgr, 1, &all), E_NOTIMPL);

    properties(group);
    job_of_a_group(group, guid_numbered(10), place);
    group_download(group, place);
    CHECK_HR(IBackgroundCopyGroup_CancelGroup(other), S_OK);
    IBackgroundCopyGroup_Release(other);
    IBackgroundCopyGroup_Release(group);
}

/* An object whose references are counted, to see VariantClear release it. */
static atomic_long counted_references;

static HRESULT STDMETHODCALLTYPE Counted_QueryInterface(IUnknown *This, REFIID riid, void **ppv)
{
    (void)riid;
    *ppv = This;
    atomic_fetch_add(&counted_references, 1);
    return S_OK;
}

static ULONG STDMETHODCALLTYPE Counted_AddRef(IUnknown *This)
{
    (void)This;
    return (ULONG)(atomic_fetch_add(&counted_references, 1) + 1);
}

static ULONG STDMETHODCALLTYPE Counted_Release(IUnknown *This)
{
    (void)This;
    return (ULONG)(atomic_fetch_sub(&counted_references, 1) - 1);
}

static IUnknownVtbl counted_vtbl = {Counted_QueryInterface, Counted_AddRef, Counted_Release};

static void variant_ownership(void)
{
    IUnknown counted;
    VARIANT value;

    counted.lpVtbl = &counted_vtbl;
    atomic_init(&counted_references, 2);
    VariantInit(&value);
    V_VT(&value) = VT_UNKNOWN;
    V_UNKNOWN(&value) = &counted;
    CHECK_HR(VariantClear(&value), S_OK);
    CHECK(atomic_load(&counted_references) == 1);
    CHECK(V_VT(&value) == VT_EMPTY);

    V_VT(&value) = VT_ARRAY | VT_I4;
    CHECK_HR(VariantClear(&value), DISP_E_BADVARTYPE);
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyQMgr *qmgr = NULL;
    IUnknown *unknown = NULL;
    void *none = (void *)&none;

    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    variant_ownership();
    if (!CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyQMgr, NULL, CLSCTX_LOCAL_SERVER,
                                   &IID_IBackgroundCopyQMgr, (void **)&qmgr),
                  S_OK)) {
        return check_summary("test_group");
    }
    CHECK_HR(IBackgroundCopyQMgr_QueryInterface(qmgr, &IID_IUnknown, (void **)&unknown), S_OK);
    CHECK_HR(IBackgroundCopyQMgr_QueryInterface(qmgr, &IID_IBackgroundCopyManager, &none),
             E_NOINTERFACE);
    CHECK(IBackgroundCopyQMgr_AddRef(qmgr) == 3);
    CHECK(IBackgroundCopyQMgr_Release(qmgr) == 2);
    IUnknown_Release(unknown);

    groups(qmgr, &place);
    cancel_a_pending_group(qmgr, &place);
    group_notifications(qmgr, &place);
    IBackgroundCopyQMgr_Release(qmgr);
    CoUninitialize();
    return check_summary("test_group");
}
