/* test_on_demand.c: Job5 BITS_JOB_PROPERTY_ON_DEMAND_MODE, IBackgroundCopyFile6 and
 * IBackgroundCopyCallback3 through qmgrd.
 *
 * - ON_DEMAND_MODE reads back as set; a Resume with nothing asked for downloads nothing
 *   and the job is SUSPENDED again.
 * - RequestFileRanges of two ranges (and a third overlapping the first): the bytes arrive
 *   in the temporary file at their own offsets (compared with the same server file
 *   downloaded whole by an ordinary job), GetFilledFileRanges gives them merged and
 *   ordered, FileRangesTransferred (BG_NOTIFY_FILE_RANGES_TRANSFERRED) is called with
 *   them, and the job is SUSPENDED.
 * - A range past the end of the file is BG_E_INVALID_RANGE. UpdateDownloadPosition asks
 *   for the rest from a position; asking for everything makes the job TRANSFERRED, and
 *   Complete gives the whole file byte for byte.
 * - A DYNAMIC_CONTENT job is BG_E_RANDOM_ACCESS_NOT_SUPPORTED; a job that downloads whole
 *   files takes no ranges (E_NOTIMPL) and reports the bytes it has from the start; a server
 *   that ignores Range puts the job in ERROR with BG_E_INSUFFICIENT_RANGE_SUPPORT.
 * - CoCreateInstance of CLSID_BackgroundCopyManager10_1 (and 10_2, 10_3) succeeds.
 */
#include "support.h"

#include <stdatomic.h>
#include <stdio.h>

#define FILE_SIZE 200000
#define SERVER_PATH "/data/200000/on-demand"
#define MAX_RECORDED 8

typedef struct {
    IBackgroundCopyCallback3 iface;
    atomic_long references;
    atomic_int range_calls;
    atomic_int transferred;
    atomic_int recorded;
    BG_FILE_RANGE ranges[MAX_RECORDED];
} RangeRecorder;

static RangeRecorder *recorder_of(IBackgroundCopyCallback3 *This)
{
    return (RangeRecorder *)This;
}

static HRESULT STDMETHODCALLTYPE Recorder_QueryInterface(IBackgroundCopyCallback3 *This,
                                                         REFIID riid, void **ppvObject)
{
    if (ppvObject == NULL) {
        return E_POINTER;
    }
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IBackgroundCopyCallback) ||
        IsEqualIID(riid, &IID_IBackgroundCopyCallback2) ||
        IsEqualIID(riid, &IID_IBackgroundCopyCallback3)) {
        *ppvObject = This;
        IBackgroundCopyCallback3_AddRef(This);
        return S_OK;
    }
    *ppvObject = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE Recorder_AddRef(IBackgroundCopyCallback3 *This)
{
    return (ULONG)(atomic_fetch_add(&recorder_of(This)->references, 1) + 1);
}

static ULONG STDMETHODCALLTYPE Recorder_Release(IBackgroundCopyCallback3 *This)
{
    return (ULONG)(atomic_fetch_sub(&recorder_of(This)->references, 1) - 1);
}

static HRESULT STDMETHODCALLTYPE Recorder_JobTransferred(IBackgroundCopyCallback3 *This,
                                                         IBackgroundCopyJob *pJob)
{
    (void)pJob;
    atomic_fetch_add(&recorder_of(This)->transferred, 1);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Recorder_JobError(IBackgroundCopyCallback3 *This,
                                                   IBackgroundCopyJob *pJob,
                                                   IBackgroundCopyError *pError)
{
    (void)This;
    (void)pJob;
    (void)pError;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Recorder_JobModification(IBackgroundCopyCallback3 *This,
                                                          IBackgroundCopyJob *pJob,
                                                          DWORD dwReserved)
{
    (void)This;
    (void)pJob;
    (void)dwReserved;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Recorder_FileTransferred(IBackgroundCopyCallback3 *This,
                                                          IBackgroundCopyJob *pJob,
                                                          IBackgroundCopyFile *pFile)
{
    (void)This;
    (void)pJob;
    (void)pFile;
    return S_OK;
}

/* Records the first call's ranges (the later calls only count). */
static HRESULT STDMETHODCALLTYPE Recorder_FileRangesTransferred(IBackgroundCopyCallback3 *This,
                                                                IBackgroundCopyJob *pJob,
                                                                IBackgroundCopyFile *pFile,
                                                                DWORD rangeCount,
                                                                const BG_FILE_RANGE *ranges)
{
    RangeRecorder *recorder = recorder_of(This);
    DWORD i;
    (void)pJob;
    (void)pFile;
    if (atomic_load(&recorder->range_calls) == 0) {
        for (i = 0; i < rangeCount && i < MAX_RECORDED; i++) {
            recorder->ranges[i] = ranges[i];
        }
        atomic_store(&recorder->recorded, (int)rangeCount);
    }
    atomic_fetch_add(&recorder->range_calls, 1);
    return S_OK;
}

static IBackgroundCopyCallback3Vtbl recorder_vtbl = {
    Recorder_QueryInterface,  Recorder_AddRef,          Recorder_Release,
    Recorder_JobTransferred,  Recorder_JobError,        Recorder_JobModification,
    Recorder_FileTransferred, Recorder_FileRangesTransferred,
};

/* Static: the library may release it after the code that registered it returned. */
static RangeRecorder recorder;

static int wait_for_count(atomic_int *counter, int wanted)
{
    unsigned waited_ms = 0;
    while (atomic_load(counter) < wanted && waited_ms < 60000) {
        Sleep(20);
        waited_ms += 20;
    }
    return atomic_load(counter) >= wanted;
}

/* The job's only file as IBackgroundCopyFile6. */
static IBackgroundCopyFile6 *file6_of(IBackgroundCopyJob *job)
{
    IEnumBackgroundCopyFiles *files = NULL;
    IBackgroundCopyFile *file = NULL;
    IBackgroundCopyFile6 *file6 = NULL;
    if (!CHECK_HR(IBackgroundCopyJob_EnumFiles(job, &files), S_OK)) {
        return NULL;
    }
    if (CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 1, &file, NULL), S_OK)) {
        CHECK_HR(IBackgroundCopyFile_QueryInterface(file, &IID_IBackgroundCopyFile6,
                                                    (void **)&file6),
                 S_OK);
        IBackgroundCopyFile_Release(file);
    }
    IEnumBackgroundCopyFiles_Release(files);
    return file6;
}

static HRESULT set_bool_property(IBackgroundCopyJob *job, BITS_JOB_PROPERTY_ID id, BOOL enable)
{
    IBackgroundCopyJob5 *job5 = NULL;
    BITS_JOB_PROPERTY_VALUE value;
    HRESULT hr;
    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob5,
                                                    (void **)&job5),
                  S_OK)) {
        return E_NOINTERFACE;
    }
    memset(&value, 0, sizeof value);
    value.Enable = enable;
    hr = IBackgroundCopyJob5_SetProperty(job5, id, value);
    IBackgroundCopyJob5_Release(job5);
    return hr;
}

static BOOL on_demand_mode(IBackgroundCopyJob *job)
{
    IBackgroundCopyJob5 *job5 = NULL;
    BITS_JOB_PROPERTY_VALUE value;
    memset(&value, 0, sizeof value);
    if (CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob5,
                                                   (void **)&job5),
                 S_OK)) {
        CHECK_HR(IBackgroundCopyJob5_GetProperty(job5, BITS_JOB_PROPERTY_ON_DEMAND_MODE, &value),
                 S_OK);
        IBackgroundCopyJob5_Release(job5);
    }
    return value.Enable;
}

/* The job's error code, or S_OK when it has none. */
static HRESULT job_error_code(IBackgroundCopyJob *job)
{
    IBackgroundCopyError *error = NULL;
    BG_ERROR_CONTEXT context = BG_ERROR_CONTEXT_NONE;
    HRESULT code = S_OK;
    if (SUCCEEDED(IBackgroundCopyJob_GetError(job, &error))) {
        CHECK_HR(IBackgroundCopyError_GetError(error, &context, &code), S_OK);
        IBackgroundCopyError_Release(error);
    }
    return code;
}

/* The server's file, downloaded whole by an ordinary job. */
static unsigned char *reference_bytes(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, SERVER_PATH, "reference.bin");
    char *path = work_path(place, "reference.bin");
    unsigned char *bytes = NULL;
    long long size = 0;
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    if (CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED) &&
        CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK)) {
        bytes = read_whole(path, &size);
        CHECK(bytes != NULL && size == FILE_SIZE);
    }
    IBackgroundCopyJob_Release(job);
    free(path);
    return bytes;
}

/* Whether the file at `path` holds `reference`'s bytes [offset, offset + length). */
static int holds(const char *path, const unsigned char *reference, long long offset,
                 long long length)
{
    long long size = 0;
    unsigned char *bytes = read_whole(path, &size);
    int same = bytes != NULL && size == FILE_SIZE &&
               memcmp(bytes + offset, reference + offset, (size_t)length) == 0;
    free(bytes);
    return same;
}

static void ranges_on_demand(IBackgroundCopyManager *manager, const TestPlace *place,
                             const unsigned char *reference)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, SERVER_PATH, "on-demand.bin");
    IBackgroundCopyFile6 *file6 = file6_of(job);
    BG_FILE_RANGE asked[] = {{150000, 10000}, {1000, 5000}, {2000, 100}};
    BG_FILE_RANGE beyond[] = {{199000, 2000}};
    BG_FILE_RANGE *filled = NULL;
    BG_FILE_PROGRESS progress;
    DWORD count = 7;
    WCHAR *temp_name = NULL;
    char *temp_path = NULL, *local = work_path(place, "on-demand.bin");

    if (file6 == NULL) {
        IBackgroundCopyJob_Release(job);
        free(local);
        return;
    }
    CHECK(!on_demand_mode(job));
    CHECK_HR(set_bool_property(job, BITS_JOB_PROPERTY_ON_DEMAND_MODE, TRUE), S_OK);
    CHECK(on_demand_mode(job));
    recorder.iface.lpVtbl = &recorder_vtbl;
    CHECK_HR(IBackgroundCopyJob_SetNotifyFlags(job, BG_NOTIFY_JOB_TRANSFERRED |
                                                        BG_NOTIFY_JOB_ERROR |
                                                        BG_NOTIFY_FILE_RANGES_TRANSFERRED),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_SetNotifyInterface(job, (IUnknown *)&recorder.iface), S_OK);

    /* Nothing asked for: nothing moves. */
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_SUSPENDED, 60) == BG_JOB_STATE_SUSPENDED);
    CHECK_HR(IBackgroundCopyFile6_GetFilledFileRanges(file6, &count, &filled), S_OK);
    CHECK(count == 0 && filled == NULL);
    CHECK_HR(IBackgroundCopyFile6_GetProgress(file6, &progress), S_OK);
    CHECK(progress.BytesTransferred == 0);

    CHECK_HR(IBackgroundCopyFile6_RequestFileRanges(file6, 3, asked), S_OK);
    CHECK_HR(IBackgroundCopyFile6_RequestFileRanges(file6, 0, asked), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyFile6_RequestFileRanges(file6, 1, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_count(&recorder.range_calls, 1));
    CHECK(wait_for_state(job, BG_JOB_STATE_SUSPENDED, 60) == BG_JOB_STATE_SUSPENDED);
    CHECK(atomic_load(&recorder.recorded) == 2);
    CHECK(recorder.ranges[0].InitialOffset == 1000 && recorder.ranges[0].Length == 5000);
    CHECK(recorder.ranges[1].InitialOffset == 150000 && recorder.ranges[1].Length == 10000);

    if (CHECK_HR(IBackgroundCopyFile6_GetFilledFileRanges(file6, &count, &filled), S_OK)) {
        CHECK(count == 2 && filled != NULL);
        if (count == 2 && filled != NULL) {
            CHECK(filled[0].InitialOffset == 1000 && filled[0].Length == 5000);
            CHECK(filled[1].InitialOffset == 150000 && filled[1].Length == 10000);
        }
        CoTaskMemFree(filled);
    }
    CHECK_HR(IBackgroundCopyFile6_GetProgress(file6, &progress), S_OK);
    CHECK(progress.BytesTotal == FILE_SIZE && progress.BytesTransferred == 15000);
    CHECK(!progress.Completed);
    if (CHECK_HR(IBackgroundCopyFile6_GetTemporaryName(file6, &temp_name), S_OK)) {
        temp_path = ascii_of(temp_name);
        CoTaskMemFree(temp_name);
        CHECK(file_size(temp_path) == FILE_SIZE);
        CHECK(holds(temp_path, reference, 1000, 5000));
        CHECK(holds(temp_path, reference, 150000, 10000));
    }

    CHECK_HR(IBackgroundCopyFile6_RequestFileRanges(file6, 1, beyond), BG_E_INVALID_RANGE);
    CHECK_HR(IBackgroundCopyFile6_UpdateDownloadPosition(file6, FILE_SIZE), BG_E_INVALID_RANGE);

    /* The rest from 190000 first, then everything: TRANSFERRED, and Complete gives the
     * whole file. */
    CHECK_HR(IBackgroundCopyFile6_UpdateDownloadPosition(file6, 190000), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_count(&recorder.range_calls, 2));
    CHECK(wait_for_state(job, BG_JOB_STATE_SUSPENDED, 60) == BG_JOB_STATE_SUSPENDED);
    if (temp_path != NULL) {
        CHECK(holds(temp_path, reference, 190000, 10000));
    }
    asked[0].InitialOffset = 0;
    asked[0].Length = BG_LENGTH_TO_EOF;
    CHECK_HR(IBackgroundCopyFile6_RequestFileRanges(file6, 1, asked), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK(wait_for_count(&recorder.transferred, 1));
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK(holds(local, reference, 0, FILE_SIZE));

    IBackgroundCopyFile6_Release(file6);
    IBackgroundCopyJob_Release(job);
    free(temp_path);
    free(local);
}

static void refusals(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *dynamic = new_job_with_file(manager, place, SERVER_PATH, "dynamic.bin");
    IBackgroundCopyJob *plain = new_job_with_file(manager, place, SERVER_PATH, "plain.bin");
    IBackgroundCopyJob *ignoring =
        new_job_with_file(manager, place, "/data/1000/ignoring?ignore_range=1", "ignoring.bin");
    IBackgroundCopyFile6 *file6 = NULL;
    BG_FILE_RANGE some[] = {{10, 10}};
    BG_FILE_RANGE *filled = (BG_FILE_RANGE *)(void *)&filled;
    DWORD count = 7;

    CHECK_HR(set_bool_property(dynamic, BITS_JOB_PROPERTY_DYNAMIC_CONTENT, TRUE), S_OK);
    CHECK_HR(set_bool_property(dynamic, BITS_JOB_PROPERTY_ON_DEMAND_MODE, TRUE),
             BG_E_RANDOM_ACCESS_NOT_SUPPORTED);
    if ((file6 = file6_of(dynamic)) != NULL) {
        CHECK_HR(IBackgroundCopyFile6_RequestFileRanges(file6, 1, some),
                 BG_E_RANDOM_ACCESS_NOT_SUPPORTED);
        CHECK_HR(IBackgroundCopyFile6_GetFilledFileRanges(file6, &count, &filled),
                 BG_E_RANDOM_ACCESS_NOT_SUPPORTED);
        IBackgroundCopyFile6_Release(file6);
    }

    /* A job that downloads whole files: no ranges ahead of the rest, the bytes it has. */
    if ((file6 = file6_of(plain)) != NULL) {
        CHECK_HR(IBackgroundCopyFile6_RequestFileRanges(file6, 1, some), E_NOTIMPL);
        CHECK_HR(IBackgroundCopyFile6_UpdateDownloadPosition(file6, 10), S_OK);
        CHECK_HR(IBackgroundCopyJob_Resume(plain), S_OK);
        CHECK(wait_for_state(plain, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
        if (CHECK_HR(IBackgroundCopyFile6_GetFilledFileRanges(file6, &count, &filled), S_OK)) {
            CHECK(count == 1 && filled != NULL && filled[0].InitialOffset == 0 &&
                  filled[0].Length == FILE_SIZE);
            CoTaskMemFree(filled);
        }
        IBackgroundCopyFile6_Release(file6);
    }
    CHECK_HR(IBackgroundCopyJob_Cancel(plain), S_OK);

    /* A server that ignores Range: the job stops rather than take the wrong bytes. */
    CHECK_HR(set_bool_property(ignoring, BITS_JOB_PROPERTY_ON_DEMAND_MODE, TRUE), S_OK);
    if ((file6 = file6_of(ignoring)) != NULL) {
        CHECK_HR(IBackgroundCopyFile6_RequestFileRanges(file6, 1, some), S_OK);
        CHECK_HR(IBackgroundCopyJob_Resume(ignoring), S_OK);
        CHECK(wait_for_state(ignoring, BG_JOB_STATE_ERROR, 60) == BG_JOB_STATE_ERROR);
        CHECK_HR(job_error_code(ignoring), BG_E_INSUFFICIENT_RANGE_SUPPORT);
        IBackgroundCopyFile6_Release(file6);
    }
    CHECK_HR(IBackgroundCopyJob_Cancel(ignoring), S_OK);
    CHECK_HR(IBackgroundCopyJob_Cancel(dynamic), S_OK);
    IBackgroundCopyJob_Release(dynamic);
    IBackgroundCopyJob_Release(plain);
    IBackgroundCopyJob_Release(ignoring);
}

static void versioned_classes(void)
{
    static const CLSID *const classes[] = {&CLSID_BackgroundCopyManager10_1,
                                           &CLSID_BackgroundCopyManager10_2,
                                           &CLSID_BackgroundCopyManager10_3};
    IBackgroundCopyManager *manager = NULL;
    size_t i;
    for (i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        if (CHECK_HR(CoCreateInstance(classes[i], NULL, CLSCTX_LOCAL_SERVER,
                                      &IID_IBackgroundCopyManager, (void **)&manager),
                     S_OK)) {
            IBackgroundCopyManager_Release(manager);
        }
    }
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyManager *manager;
    unsigned char *reference;

    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    versioned_classes();
    reference = reference_bytes(manager, &place);
    if (reference != NULL) {
        ranges_on_demand(manager, &place, reference);
    }
    refusals(manager, &place);
    free(reference);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_on_demand");
}
