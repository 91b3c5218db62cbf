/* test_callback.c: IBackgroundCopyCallback and IBackgroundCopyCallback2 implemented in C.
 *
 * - JobTransferred arrives on a thread of the library's and may call back into it:
 *   Complete inside JobTransferred succeeds and the files appear.
 * - FileTransferred (Callback2, BG_NOTIFY_FILE_TRANSFERRED) for each file, and
 *   JobModification with BG_NOTIFY_JOB_MODIFICATION.
 * - JobError with the job's IBackgroundCopyError for a 404; Cancel inside JobError.
 * - A callback that returns a failure from JobTransferred or FileTransferred is called
 *   again until it succeeds; a job's FileTransferred calls stay in order and before its
 *   JobTransferred meanwhile.
 * - Job5 MINIMUM_NOTIFICATION_INTERVAL_MS paces JobModification: at most one call per
 *   interval however often the job changes.
 * - SetNotifyInterface/GetNotifyInterface: the registered object comes back AddRef'd,
 *   NULL clears it, an object without IBackgroundCopyCallback is E_NOINTERFACE, and the
 *   library lets go of every reference once the job has left the queue.
 */
#include "support.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef struct {
    IBackgroundCopyCallback2 iface;
    atomic_long references;
    atomic_int transferred;
    atomic_int files_transferred;
    atomic_int modifications;
    atomic_int errors;
    atomic_int complete_result;
    atomic_int error_code;
    atomic_int error_context;
    atomic_int cancel_result;
    /* Failures still to return from JobTransferred and FileTransferred. */
    atomic_int refuse_transferred;
    atomic_int refuse_files;
    atomic_int transferred_calls;
    atomic_int file_calls;
    /* Files accepted when JobTransferred was first called. */
    atomic_int files_before_transferred;
} Recorder;

static Recorder *recorder_of(IBackgroundCopyCallback2 *This)
{
    return (Recorder *)This;
}

static HRESULT STDMETHODCALLTYPE Recorder_QueryInterface(IBackgroundCopyCallback2 *This,
                                                         REFIID riid, void **ppvObject)
{
    if (ppvObject == NULL) {
        return E_POINTER;
    }
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IBackgroundCopyCallback) ||
        IsEqualIID(riid, &IID_IBackgroundCopyCallback2)) {
        *ppvObject = This;
        IBackgroundCopyCallback2_AddRef(This);
        return S_OK;
    }
    *ppvObject = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE Recorder_AddRef(IBackgroundCopyCallback2 *This)
{
    return (ULONG)(atomic_fetch_add(&recorder_of(This)->references, 1) + 1);
}

static ULONG STDMETHODCALLTYPE Recorder_Release(IBackgroundCopyCallback2 *This)
{
    return (ULONG)(atomic_fetch_sub(&recorder_of(This)->references, 1) - 1);
}

static HRESULT STDMETHODCALLTYPE Recorder_JobTransferred(IBackgroundCopyCallback2 *This,
                                                         IBackgroundCopyJob *pJob)
{
    Recorder *recorder = recorder_of(This);
    if (atomic_fetch_add(&recorder->transferred_calls, 1) == 0) {
        atomic_store(&recorder->files_before_transferred, atomic_load(&recorder->files_transferred));
    }
    if (atomic_load(&recorder->refuse_transferred) > 0) {
        atomic_fetch_sub(&recorder->refuse_transferred, 1);
        return E_FAIL;
    }
    atomic_store(&recorder->complete_result, IBackgroundCopyJob_Complete(pJob));
    atomic_fetch_add(&recorder->transferred, 1);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Recorder_JobError(IBackgroundCopyCallback2 *This,
                                                   IBackgroundCopyJob *pJob,
                                                   IBackgroundCopyError *pError)
{
    BG_ERROR_CONTEXT context = BG_ERROR_CONTEXT_NONE;
    HRESULT code = S_OK;
    IBackgroundCopyError_GetError(pError, &context, &code);
    atomic_store(&recorder_of(This)->error_context, (int)context);
    atomic_store(&recorder_of(This)->error_code, code);
    atomic_store(&recorder_of(This)->cancel_result, IBackgroundCopyJob_Cancel(pJob));
    atomic_fetch_add(&recorder_of(This)->errors, 1);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Recorder_JobModification(IBackgroundCopyCallback2 *This,
                                                          IBackgroundCopyJob *pJob,
                                                          DWORD dwReserved)
{
    (void)pJob;
    if (dwReserved == 0) {
        atomic_fetch_add(&recorder_of(This)->modifications, 1);
    }
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Recorder_FileTransferred(IBackgroundCopyCallback2 *This,
                                                          IBackgroundCopyJob *pJob,
                                                          IBackgroundCopyFile *pFile)
{
    BG_FILE_PROGRESS progress;
    (void)pJob;
    atomic_fetch_add(&recorder_of(This)->file_calls, 1);
    if (atomic_load(&recorder_of(This)->refuse_files) > 0) {
        atomic_fetch_sub(&recorder_of(This)->refuse_files, 1);
        return E_FAIL;
    }
    if (SUCCEEDED(IBackgroundCopyFile_GetProgress(pFile, &progress)) && progress.Completed) {
        atomic_fetch_add(&recorder_of(This)->files_transferred, 1);
    }
    return S_OK;
}

static IBackgroundCopyCallback2Vtbl recorder_vtbl = {
    Recorder_QueryInterface, Recorder_AddRef,          Recorder_Release,
    Recorder_JobTransferred, Recorder_JobError,        Recorder_JobModification,
    Recorder_FileTransferred,
};

/* Static: the library may release them after the code that registered them returned. */
static Recorder transfer_recorder, error_recorder, spare_recorder, stubborn_recorder,
    paced_recorder;

static void recorder_init(Recorder *recorder)
{
    recorder->iface.lpVtbl = &recorder_vtbl;
    atomic_init(&recorder->references, 1);
    atomic_init(&recorder->transferred, 0);
    atomic_init(&recorder->files_transferred, 0);
    atomic_init(&recorder->modifications, 0);
    atomic_init(&recorder->errors, 0);
    atomic_init(&recorder->complete_result, 1);
    atomic_init(&recorder->error_code, 0);
    atomic_init(&recorder->error_context, 0);
    atomic_init(&recorder->cancel_result, 1);
    atomic_init(&recorder->refuse_transferred, 0);
    atomic_init(&recorder->refuse_files, 0);
    atomic_init(&recorder->transferred_calls, 0);
    atomic_init(&recorder->file_calls, 0);
    atomic_init(&recorder->files_before_transferred, -1);
}

/* Waits up to a minute for `*counter` to reach `wanted`. */
static int wait_for_count(atomic_int *counter, int wanted)
{
    unsigned waited_ms = 0;
    while (atomic_load(counter) < wanted && waited_ms < 60000) {
        Sleep(20);
        waited_ms += 20;
    }
    return atomic_load(counter) >= wanted;
}

static int wait_for_references(Recorder *recorder, long wanted)
{
    unsigned waited_ms = 0;
    while (atomic_load(&recorder->references) != wanted && waited_ms < 60000) {
        Sleep(20);
        waited_ms += 20;
    }
    return atomic_load(&recorder->references) == wanted;
}

/* An object that is only an IUnknown. */
static HRESULT STDMETHODCALLTYPE Plain_QueryInterface(IUnknown *This, REFIID riid,
                                                      void **ppvObject)
{
    if (IsEqualIID(riid, &IID_IUnknown)) {
        *ppvObject = This;
        return S_OK;
    }
    *ppvObject = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE Plain_AddRef(IUnknown *This)
{
    (void)This;
    return 2;
}

static ULONG STDMETHODCALLTYPE Plain_Release(IUnknown *This)
{
    (void)This;
    return 1;
}

static IUnknownVtbl plain_vtbl = {Plain_QueryInterface, Plain_AddRef, Plain_Release};

static void registration(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, "/data/1k/r", "r.bin");
    IUnknown plain;
    IUnknown *registered = NULL;

    recorder_init(&spare_recorder);
    plain.lpVtbl = &plain_vtbl;
    CHECK_HR(IBackgroundCopyJob_GetNotifyInterface(job, &registered), S_OK);
    CHECK(registered == NULL);
    CHECK_HR(IBackgroundCopyJob_SetNotifyInterface(job, &plain), E_NOINTERFACE);
    CHECK_HR(IBackgroundCopyJob_SetNotifyInterface(job, (IUnknown *)&spare_recorder.iface), S_OK);
    CHECK(atomic_load(&spare_recorder.references) > 1);
    CHECK_HR(IBackgroundCopyJob_GetNotifyInterface(job, &registered), S_OK);
    CHECK(registered == (IUnknown *)&spare_recorder.iface);
    if (registered != NULL) {
        IUnknown_Release(registered);
    }
    CHECK_HR(IBackgroundCopyJob_SetNotifyInterface(job, NULL), S_OK);
    CHECK(wait_for_references(&spare_recorder, 1));
    CHECK_HR(IBackgroundCopyJob_GetNotifyInterface(job, &registered), S_OK);
    CHECK(registered == NULL);
    CHECK_HR(IBackgroundCopyJob_GetNotifyInterface(job, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob_Release(job);
}

static void complete_inside_job_transferred(IBackgroundCopyManager *manager,
                                            const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, "/data/8k/cb1", "cb1.bin");
    WCHAR *url = url_of(place, "/data/4k/cb2");
    WCHAR *local = work_path_wide(place, "cb2.bin");
    char *first = work_path(place, "cb1.bin");
    char *second = work_path(place, "cb2.bin");
    BG_JOB_STATE state = BG_JOB_STATE_QUEUED;

    recorder_init(&transfer_recorder);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local), S_OK);
    CHECK_HR(IBackgroundCopyJob_SetNotifyFlags(job, BG_NOTIFY_JOB_TRANSFERRED |
                                                        BG_NOTIFY_JOB_ERROR |
                                                        BG_NOTIFY_FILE_TRANSFERRED |
                                                        BG_NOTIFY_JOB_MODIFICATION),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_SetNotifyInterface(job, (IUnknown *)&transfer_recorder.iface),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_count(&transfer_recorder.transferred, 1));
    CHECK(atomic_load(&transfer_recorder.complete_result) == S_OK);
    CHECK(atomic_load(&transfer_recorder.files_transferred) == 2);
    CHECK(atomic_load(&transfer_recorder.modifications) >= 1);
    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(state == BG_JOB_STATE_ACKNOWLEDGED);
    CHECK(served_file_matches(first, "/data/8k/cb1", 8192));
    CHECK(served_file_matches(second, "/data/4k/cb2", 4096));
    CHECK(wait_for_references(&transfer_recorder, 1));
    IBackgroundCopyJob_Release(job);
    free(url);
    free(local);
    free(first);
    free(second);
}

static void refused_callbacks_are_called_again(IBackgroundCopyManager *manager,
                                               const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, "/data/4k/rf1", "rf1.bin");
    WCHAR *url = url_of(place, "/data/4k/rf2");
    WCHAR *local = work_path_wide(place, "rf2.bin");
    BG_JOB_STATE state = BG_JOB_STATE_QUEUED;

    recorder_init(&stubborn_recorder);
    atomic_store(&stubborn_recorder.refuse_transferred, 2);
    atomic_store(&stubborn_recorder.refuse_files, 1);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local), S_OK);
    CHECK_HR(IBackgroundCopyJob_SetNotifyFlags(job, BG_NOTIFY_JOB_TRANSFERRED |
                                                        BG_NOTIFY_JOB_ERROR |
                                                        BG_NOTIFY_FILE_TRANSFERRED),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_SetNotifyInterface(job, (IUnknown *)&stubborn_recorder.iface),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_count(&stubborn_recorder.transferred, 1));
    /* Two refusals, then the call that completes the job. */
    CHECK(atomic_load(&stubborn_recorder.transferred_calls) == 3);
    /* The first file's refusal, its second call, and the second file once. */
    CHECK(atomic_load(&stubborn_recorder.file_calls) == 3);
    CHECK(atomic_load(&stubborn_recorder.files_transferred) == 2);
    CHECK(atomic_load(&stubborn_recorder.files_before_transferred) == 2);
    CHECK(atomic_load(&stubborn_recorder.complete_result) == S_OK);
    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(state == BG_JOB_STATE_ACKNOWLEDGED);
    CHECK(wait_for_references(&stubborn_recorder, 1));
    IBackgroundCopyJob_Release(job);
    free(url);
    free(local);
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void modifications_are_paced(IBackgroundCopyManager *manager, const TestPlace *place)
{
    /* 64 KiB at 16 KB/s: about four seconds of progress reports, ten a second. */
    IBackgroundCopyJob *job =
        new_job_with_file(manager, place, "/data/64k/paced?rate=16000", "paced.bin");
    IBackgroundCopyJob5 *job5 = NULL;
    BITS_JOB_PROPERTY_VALUE value;
    double started, elapsed;
    int calls;

    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob5,
                                                    (void **)&job5),
                  S_OK)) {
        return;
    }
    memset(&value, 0, sizeof value);
    CHECK_HR(IBackgroundCopyJob5_GetProperty(
                 job5, BITS_JOB_PROPERTY_MINIMUM_NOTIFICATION_INTERVAL_MS, &value),
             S_OK);
    CHECK(value.Dword == 500);
    value.Dword = 1000;
    CHECK_HR(IBackgroundCopyJob5_SetProperty(
                 job5, BITS_JOB_PROPERTY_MINIMUM_NOTIFICATION_INTERVAL_MS, value),
             S_OK);
    memset(&value, 0, sizeof value);
    CHECK_HR(IBackgroundCopyJob5_GetProperty(
                 job5, BITS_JOB_PROPERTY_MINIMUM_NOTIFICATION_INTERVAL_MS, &value),
             S_OK);
    CHECK(value.Dword == 1000);
    recorder_init(&paced_recorder);
    CHECK_HR(IBackgroundCopyJob_SetNotifyFlags(job, BG_NOTIFY_JOB_TRANSFERRED |
                                                        BG_NOTIFY_JOB_MODIFICATION),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_SetNotifyInterface(job, (IUnknown *)&paced_recorder.iface),
             S_OK);
    started = seconds_now();
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_count(&paced_recorder.transferred, 1));
    elapsed = seconds_now() - started;
    calls = atomic_load(&paced_recorder.modifications);
    /* One call per second at most, plus the first; a slow machine only makes fewer. */
    CHECK(calls >= 1);
    CHECK(calls <= (int)elapsed + 2);
    if (calls > (int)elapsed + 2) {
        fprintf(stderr, "%d JobModification calls in %.1f s\n", calls, elapsed);
    }
    CHECK(atomic_load(&paced_recorder.complete_result) == S_OK);
    CHECK(wait_for_references(&paced_recorder, 1));
    IBackgroundCopyJob5_Release(job5);
    IBackgroundCopyJob_Release(job);
}

static void cancel_inside_job_error(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job =
        new_job_with_file(manager, place, "/data/1k/gone?status=404", "gone.bin");
    BG_JOB_STATE state = BG_JOB_STATE_QUEUED;

    recorder_init(&error_recorder);
    CHECK_HR(IBackgroundCopyJob_SetNotifyInterface(job, (IUnknown *)&error_recorder.iface),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_count(&error_recorder.errors, 1));
    CHECK(atomic_load(&error_recorder.error_code) == BG_E_HTTP_ERROR_404);
    CHECK(atomic_load(&error_recorder.error_context) == BG_ERROR_CONTEXT_REMOTE_FILE);
    CHECK(atomic_load(&error_recorder.cancel_result) == S_OK);
    CHECK(atomic_load(&error_recorder.transferred) == 0);
    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(state == BG_JOB_STATE_CANCELLED);
    CHECK(wait_for_references(&error_recorder, 1));
    IBackgroundCopyJob_Release(job);
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyManager *manager;

    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    registration(manager, &place);
    complete_inside_job_transferred(manager, &place);
    cancel_inside_job_error(manager, &place);
    refused_callbacks_are_called_again(manager, &place);
    modifications_are_paced(manager, &place);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_callback");
}
