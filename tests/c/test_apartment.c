/* test_apartment.c: callbacks of apartment-threaded and multithreaded clients.
 *
 * - A callback registered on a single-threaded apartment (CoInitializeEx with
 *   COINIT_APARTMENTTHREADED) is called on that thread, and only while it waits in
 *   CoWaitForMultipleHandles or pumps with QmgrDispatchCallbacks; meanwhile the
 *   apartment's eventfd (QmgrGetCallbackEventFd) is readable. Complete inside
 *   JobTransferred works from the pump, and the library AddRefs and Releases the object on
 *   its thread only. The same for a legacy group's IBackgroundCopyCallback1 (OnStatus
 *   for an error).
 * - A thread that never pumps: the job transfers, nothing hangs, Release of the job and
 *   the manager works, and CoUninitialize (or the end of the thread) lets go of the
 *   callback, on that thread, without calling it.
 * - A multithreaded client's callback comes on a library thread, without any pump; the
 *   pump and the eventfd are refused there (and on a thread without CoInitializeEx).
 * - CoWaitForMultipleHandles' arguments, COWAIT_WAITALL and COWAIT_ALERTABLE.
 */
#include "support.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct {
    IBackgroundCopyCallback iface;
    atomic_long references;
    /* The thread the object belongs to (its apartment's) and calls made elsewhere. */
    pthread_t home;
    atomic_int calls_elsewhere;
    atomic_int transferred;
    /* JobTransferred calls, and failures still to return from it. */
    atomic_int transferred_calls;
    atomic_int refusals;
    atomic_int complete_result;
    pthread_t transferred_on;
    /* Written when JobTransferred is over, for a waiter to see (-1: none). */
    int signal_fd;
} Recorder;

static Recorder *recorder_of(IBackgroundCopyCallback *This)
{
    return (Recorder *)This;
}

static void note_thread(Recorder *recorder)
{
    if (!pthread_equal(recorder->home, pthread_self())) {
        atomic_fetch_add(&recorder->calls_elsewhere, 1);
    }
}

static HRESULT STDMETHODCALLTYPE Recorder_QueryInterface(IBackgroundCopyCallback *This,
                                                         REFIID riid, void **ppvObject)
{
    if (ppvObject == NULL) {
        return E_POINTER;
    }
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IBackgroundCopyCallback)) {
        *ppvObject = This;
        IBackgroundCopyCallback_AddRef(This);
        return S_OK;
    }
    *ppvObject = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE Recorder_AddRef(IBackgroundCopyCallback *This)
{
    note_thread(recorder_of(This));
    return (ULONG)(atomic_fetch_add(&recorder_of(This)->references, 1) + 1);
}

static ULONG STDMETHODCALLTYPE Recorder_Release(IBackgroundCopyCallback *This)
{
    note_thread(recorder_of(This));
    return (ULONG)(atomic_fetch_sub(&recorder_of(This)->references, 1) - 1);
}

static HRESULT STDMETHODCALLTYPE Recorder_JobTransferred(IBackgroundCopyCallback *This,
                                                         IBackgroundCopyJob *pJob)
{
    Recorder *recorder = recorder_of(This);
    uint64_t one = 1;
    note_thread(recorder);
    recorder->transferred_on = pthread_self();
    atomic_fetch_add(&recorder->transferred_calls, 1);
    if (atomic_load(&recorder->refusals) > 0) {
        atomic_fetch_sub(&recorder->refusals, 1);
        return E_FAIL;
    }
    atomic_store(&recorder->complete_result, IBackgroundCopyJob_Complete(pJob));
    atomic_fetch_add(&recorder->transferred, 1);
    if (recorder->signal_fd >= 0 && write(recorder->signal_fd, &one, sizeof one) < 0) {
        perror("write");
    }
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Recorder_JobError(IBackgroundCopyCallback *This,
                                                   IBackgroundCopyJob *pJob,
                                                   IBackgroundCopyError *pError)
{
    (void)pJob;
    (void)pError;
    note_thread(recorder_of(This));
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Recorder_JobModification(IBackgroundCopyCallback *This,
                                                          IBackgroundCopyJob *pJob,
                                                          DWORD dwReserved)
{
    (void)pJob;
    (void)dwReserved;
    note_thread(recorder_of(This));
    return S_OK;
}

static IBackgroundCopyCallbackVtbl recorder_vtbl = {
    Recorder_QueryInterface, Recorder_AddRef,          Recorder_Release,
    Recorder_JobTransferred, Recorder_JobError,        Recorder_JobModification,
};

/* Static: the library may release them after the code that registered them returned. */
static Recorder waiting_recorder, woken_recorder, pumped_recorder, unpumped_recorder,
    exiting_recorder, free_recorder;

static void recorder_init(Recorder *recorder, int signal_fd)
{
    recorder->iface.lpVtbl = &recorder_vtbl;
    atomic_init(&recorder->references, 1);
    recorder->home = pthread_self();
    atomic_init(&recorder->calls_elsewhere, 0);
    atomic_init(&recorder->transferred, 0);
    atomic_init(&recorder->transferred_calls, 0);
    atomic_init(&recorder->refusals, 0);
    atomic_init(&recorder->complete_result, 1);
    recorder->transferred_on = pthread_self();
    recorder->signal_fd = signal_fd;
}

static HANDLE handle_of(int fd)
{
    return (HANDLE)(intptr_t)fd;
}

/* Whether `fd` turns readable within a minute. */
static int becomes_readable(int fd)
{
    struct pollfd watched;
    watched.fd = fd;
    watched.events = POLLIN;
    watched.revents = 0;
    return poll(&watched, 1, 60000) == 1 && (watched.revents & POLLIN) != 0;
}

static int is_readable_now(int fd)
{
    struct pollfd watched;
    watched.fd = fd;
    watched.events = POLLIN;
    watched.revents = 0;
    return poll(&watched, 1, 0) == 1 && (watched.revents & POLLIN) != 0;
}

/* Pumps the calling STA until the recorder holds only its own reference (the library let
 * go of it on this thread), for up to a minute. */
static int pump_until_released(Recorder *recorder)
{
    unsigned rounds = 0;
    while (atomic_load(&recorder->references) != 1 && rounds < 300) {
        QmgrDispatchCallbacks(200);
        rounds++;
    }
    return atomic_load(&recorder->references) == 1;
}

/* A job of one file with `recorder` as its callback, resumed. */
static IBackgroundCopyJob *resumed_job(IBackgroundCopyManager *manager, const TestPlace *place,
                                       const char *url_path, const char *local,
                                       Recorder *recorder)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, url_path, local);
    CHECK_HR(IBackgroundCopyJob_SetNotifyInterface(job, (IUnknown *)&recorder->iface), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    return job;
}

/* The main thread is an STA: JobTransferred waits until CoWaitForMultipleHandles. */
static void sta_callback_comes_in_the_wait(IBackgroundCopyManager *manager,
                                           const TestPlace *place)
{
    int done = eventfd(0, EFD_CLOEXEC);
    int pending = -1;
    HANDLE handles[1];
    DWORD index = 99;
    IBackgroundCopyJob *job;
    char *local = work_path(place, "waited.out");

    recorder_init(&waiting_recorder, done);
    handles[0] = handle_of(done);
    CHECK_HR(QmgrGetCallbackEventFd(&pending), S_OK);
    CHECK(pending >= 0);
    job = resumed_job(manager, place, "/data/64k/waited", "waited.out", &waiting_recorder);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    /* The call waits for this thread, and the eventfd says so. */
    CHECK(becomes_readable(pending));
    CHECK(atomic_load(&waiting_recorder.transferred) == 0);
    /* A wait that ends at once (the handle is not signaled, the time-out is 0) still lets
     * the waiting call in. */
    CHECK_HR(CoWaitForMultipleHandles(COWAIT_DEFAULT, 0, 1, handles, &index),
             S_OK);
    CHECK(index == 0);
    CHECK(atomic_load(&waiting_recorder.transferred) == 1);
    CHECK(pthread_equal(waiting_recorder.transferred_on, pthread_self()));
    CHECK_HR(atomic_load(&waiting_recorder.complete_result), S_OK);
    CHECK(served_file_matches(local, "/data/64k/waited", 64 * 1024));
    IBackgroundCopyJob_Release(job);
    CHECK(pump_until_released(&waiting_recorder));
    CHECK(atomic_load(&waiting_recorder.calls_elsewhere) == 0);
    free(local);
    close(done);
}

/* A wait that starts before the callback is queued (usually: the download may be done
 * first) wakes for it, runs it, and ends when the callback signals the handle. */
static void sta_wait_wakes_for_a_callback(IBackgroundCopyManager *manager,
                                          const TestPlace *place)
{
    int done = eventfd(0, EFD_CLOEXEC);
    HANDLE handles[1];
    DWORD index = 99;
    IBackgroundCopyJob *job;

    recorder_init(&woken_recorder, done);
    handles[0] = handle_of(done);
    job = resumed_job(manager, place, "/data/48k/woken", "woken.out", &woken_recorder);
    CHECK_HR(CoWaitForMultipleHandles(COWAIT_DEFAULT, 60000, 1, handles, &index), S_OK);
    CHECK(index == 0);
    CHECK(atomic_load(&woken_recorder.transferred) == 1);
    CHECK(pthread_equal(woken_recorder.transferred_on, pthread_self()));
    CHECK_HR(atomic_load(&woken_recorder.complete_result), S_OK);
    IBackgroundCopyJob_Release(job);
    CHECK(pump_until_released(&woken_recorder));
    CHECK(atomic_load(&woken_recorder.calls_elsewhere) == 0);
    close(done);
}

/* The same through the eventfd and QmgrDispatchCallbacks, as a poll loop would; a
 * JobTransferred refused once is called again, in the apartment again. */
static void sta_callback_comes_in_the_pump(IBackgroundCopyManager *manager,
                                           const TestPlace *place)
{
    int pending = -1;
    unsigned rounds = 0;
    IBackgroundCopyJob *job;
    char *local = work_path(place, "pumped.out");

    recorder_init(&pumped_recorder, -1);
    atomic_store(&pumped_recorder.refusals, 1);
    CHECK_HR(QmgrGetCallbackEventFd(&pending), S_OK);
    job = resumed_job(manager, place, "/data/32k/pumped", "pumped.out", &pumped_recorder);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK(atomic_load(&pumped_recorder.transferred) == 0);
    while (atomic_load(&pumped_recorder.transferred) == 0 && rounds < 60) {
        if (becomes_readable(pending)) {
            CHECK_HR(QmgrDispatchCallbacks(0), S_OK);
        }
        rounds++;
    }
    CHECK(atomic_load(&pumped_recorder.transferred) == 1);
    CHECK(atomic_load(&pumped_recorder.transferred_calls) == 2);
    CHECK(pthread_equal(pumped_recorder.transferred_on, pthread_self()));
    CHECK_HR(atomic_load(&pumped_recorder.complete_result), S_OK);
    CHECK(served_file_matches(local, "/data/32k/pumped", 32 * 1024));
    IBackgroundCopyJob_Release(job);
    CHECK(pump_until_released(&pumped_recorder));
    /* Nothing waits any more: the pump finds nothing and the eventfd is quiet. */
    CHECK_HR(QmgrDispatchCallbacks(0), S_FALSE);
    CHECK(!is_readable_now(pending));
    CHECK(atomic_load(&pumped_recorder.calls_elsewhere) == 0);
    free(local);
}

/* The legacy group API's IBackgroundCopyCallback1, registered on the STA. */
typedef struct {
    IBackgroundCopyCallback1 iface;
    atomic_long references;
    pthread_t home;
    atomic_int calls_elsewhere;
    atomic_int statuses;
    atomic_uint last_status;
} GroupRecorder;

static GroupRecorder *group_recorder_of(IBackgroundCopyCallback1 *This)
{
    return (GroupRecorder *)This;
}

static void group_note_thread(GroupRecorder *recorder)
{
    if (!pthread_equal(recorder->home, pthread_self())) {
        atomic_fetch_add(&recorder->calls_elsewhere, 1);
    }
}

static HRESULT STDMETHODCALLTYPE GroupRecorder_QueryInterface(IBackgroundCopyCallback1 *This,
                                                              REFIID riid, void **ppvObject)
{
    group_note_thread(group_recorder_of(This));
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
    group_note_thread(group_recorder_of(This));
    return (ULONG)(atomic_fetch_add(&group_recorder_of(This)->references, 1) + 1);
}

static ULONG STDMETHODCALLTYPE GroupRecorder_Release(IBackgroundCopyCallback1 *This)
{
    group_note_thread(group_recorder_of(This));
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
    (void)pGroup;
    (void)pJob;
    (void)dwFileIndex;
    (void)dwNumOfRetries;
    (void)dwWin32Result;
    (void)dwTransportResult;
    group_note_thread(group_recorder_of(This));
    atomic_store(&group_recorder_of(This)->last_status, dwStatus);
    atomic_fetch_add(&group_recorder_of(This)->statuses, 1);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE GroupRecorder_OnProgress(IBackgroundCopyCallback1 *This,
                                                          DWORD ProgressType,
                                                          IBackgroundCopyGroup *pGroup,
                                                          IBackgroundCopyJob1 *pJob,
                                                          DWORD dwFileIndex,
                                                          DWORD dwProgressValue)
{
    (void)ProgressType;
    (void)pGroup;
    (void)pJob;
    (void)dwFileIndex;
    (void)dwProgressValue;
    group_note_thread(group_recorder_of(This));
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

static GroupRecorder group_recorder;

/* A group whose download fails (404): OnStatus with QM_STATUS_GROUP_ERROR comes on this
 * thread, in the pump. */
static void sta_group_error_comes_in_the_pump(const TestPlace *place)
{
    static const GUID group_id = {0x5A7A0001, 0x7E57, 0x4A11,
                                  {0x80, 0, 0, 0, 0, 0, 0, 0x01}};
    static const GUID job_id = {0x5A7A0002, 0x7E57, 0x4A11, {0x80, 0, 0, 0, 0, 0, 0, 0x02}};
    IBackgroundCopyQMgr *qmgr = NULL;
    IBackgroundCopyGroup *group = NULL;
    IBackgroundCopyJob1 *job = NULL;
    FILESETINFO file, *pointer = &file;
    WCHAR *url = url_of(place, "/data/1k/gone?status=404");
    WCHAR *local = work_path_wide(place, "gone.bin");
    int pending = -1;
    unsigned rounds = 0;

    group_recorder.iface.lpVtbl = &group_recorder_vtbl;
    atomic_init(&group_recorder.references, 1);
    group_recorder.home = pthread_self();
    atomic_init(&group_recorder.calls_elsewhere, 0);
    atomic_init(&group_recorder.statuses, 0);
    atomic_init(&group_recorder.last_status, 0);
    CHECK_HR(QmgrGetCallbackEventFd(&pending), S_OK);
    if (!CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyQMgr, NULL, CLSCTX_LOCAL_SERVER,
                                   &IID_IBackgroundCopyQMgr, (void **)&qmgr),
                  S_OK)) {
        return;
    }
    CHECK_HR(IBackgroundCopyQMgr_CreateGroup(qmgr, group_id, &group), S_OK);
    CHECK_HR(IBackgroundCopyGroup_CreateJob(group, job_id, &job), S_OK);
    file.bstrRemoteFile = SysAllocString(url);
    file.bstrLocalFile = SysAllocString(local);
    file.dwSizeHint = 0;
    CHECK_HR(IBackgroundCopyJob1_AddFiles(job, 1, &pointer), S_OK);
    SysFreeString(file.bstrRemoteFile);
    SysFreeString(file.bstrLocalFile);
    CHECK_HR(IBackgroundCopyGroup_SetNotificationPointer(group, &IID_IBackgroundCopyCallback1,
                                                         (IUnknown *)&group_recorder.iface),
             S_OK);
    CHECK_HR(IBackgroundCopyGroup_ResumeGroup(group), S_OK);
    CHECK(becomes_readable(pending));
    CHECK(atomic_load(&group_recorder.statuses) == 0);
    while (atomic_load(&group_recorder.statuses) == 0 && rounds < 60) {
        QmgrDispatchCallbacks(1000);
        rounds++;
    }
    CHECK(atomic_load(&group_recorder.statuses) >= 1);
    CHECK((atomic_load(&group_recorder.last_status) & QM_STATUS_GROUP_ERROR) != 0);
    CHECK_HR(IBackgroundCopyGroup_SetNotificationPointer(group, &IID_IBackgroundCopyCallback1,
                                                         NULL),
             S_OK);
    rounds = 0;
    while (atomic_load(&group_recorder.references) != 1 && rounds < 300) {
        QmgrDispatchCallbacks(200);
        rounds++;
    }
    CHECK(atomic_load(&group_recorder.references) == 1);
    CHECK(atomic_load(&group_recorder.calls_elsewhere) == 0);
    CHECK_HR(IBackgroundCopyGroup_CancelGroup(group), S_OK);
    IBackgroundCopyJob1_Release(job);
    IBackgroundCopyGroup_Release(group);
    IBackgroundCopyQMgr_Release(qmgr);
    free(url);
    free(local);
}

/* An STA thread that never pumps; it ends its apartment with CoUninitialize or, when
 * `uninitializes` is 0, by ending without it. */
typedef struct {
    const TestPlace *place;
    Recorder *recorder;
    const char *url_path;
    const char *local;
    int uninitializes;
} Unpumped;

static void *never_pumps(void *argument)
{
    const Unpumped *unpumped = (const Unpumped *)argument;
    Recorder *recorder = unpumped->recorder;
    IBackgroundCopyManager *manager;
    IBackgroundCopyJob *job;
    int pending = -1;

    CHECK_HR(CoInitializeEx(NULL, COINIT_APARTMENTTHREADED), S_OK);
    recorder_init(recorder, -1);
    manager = new_manager();
    CHECK_HR(QmgrGetCallbackEventFd(&pending), S_OK);
    job = new_job_with_file(manager, unpumped->place, unpumped->url_path, unpumped->local);
    CHECK_HR(IBackgroundCopyJob_SetNotifyFlags(job, BG_NOTIFY_JOB_TRANSFERRED |
                                                        BG_NOTIFY_JOB_MODIFICATION),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_SetNotifyInterface(job, (IUnknown *)&recorder->iface), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK(becomes_readable(pending));
    /* Releasing the job and the manager does not wait for the apartment. */
    IBackgroundCopyJob_Release(job);
    IBackgroundCopyManager_Release(manager);
    CHECK(atomic_load(&recorder->transferred) == 0);
    CHECK(atomic_load(&recorder->references) > 1);
    if (unpumped->uninitializes) {
        /* The apartment closes: its calls are dropped, its objects released here. */
        CoUninitialize();
        CHECK(atomic_load(&recorder->references) == 1);
        CHECK_HR(QmgrDispatchCallbacks(0), CO_E_NOTINITIALIZED);
    }
    return NULL;
}

static void never_pumping_threads(const TestPlace *place)
{
    Unpumped unpumped[2];
    pthread_t thread;
    int at;

    for (at = 0; at < 2; at++) {
        unpumped[at].place = place;
        unpumped[at].recorder = at == 0 ? &unpumped_recorder : &exiting_recorder;
        unpumped[at].url_path = at == 0 ? "/data/16k/unpumped" : "/data/16k/exiting";
        unpumped[at].local = at == 0 ? "unpumped.out" : "exiting.out";
        unpumped[at].uninitializes = at == 0;
        if (!CHECK(pthread_create(&thread, NULL, never_pumps, &unpumped[at]) == 0)) {
            continue;
        }
        pthread_join(thread, NULL);
        /* Either way the apartment's end let go of the callback, which was never called,
         * and always on its own thread. */
        CHECK(atomic_load(&unpumped[at].recorder->references) == 1);
        CHECK(atomic_load(&unpumped[at].recorder->transferred) == 0);
        CHECK(atomic_load(&unpumped[at].recorder->calls_elsewhere) == 0);
    }
}

/* A multithreaded client: called on a library thread, no pump needed or allowed. */
static void *multithreaded(void *argument)
{
    const TestPlace *place = (const TestPlace *)argument;
    IBackgroundCopyManager *manager;
    IBackgroundCopyJob *job;
    int pending = 5;
    unsigned waited_ms = 0;

    CHECK_HR(QmgrDispatchCallbacks(0), CO_E_NOTINITIALIZED);
    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    CHECK_HR(QmgrDispatchCallbacks(0), E_ILLEGAL_METHOD_CALL);
    CHECK_HR(QmgrGetCallbackEventFd(&pending), E_ILLEGAL_METHOD_CALL);
    CHECK(pending == -1);
    recorder_init(&free_recorder, -1);
    manager = new_manager();
    job = resumed_job(manager, place, "/data/8k/free", "free.out", &free_recorder);
    while (atomic_load(&free_recorder.transferred) == 0 && waited_ms < 60000) {
        Sleep(20);
        waited_ms += 20;
    }
    CHECK(atomic_load(&free_recorder.transferred) == 1);
    CHECK(!pthread_equal(free_recorder.transferred_on, pthread_self()));
    CHECK_HR(atomic_load(&free_recorder.complete_result), S_OK);
    IBackgroundCopyJob_Release(job);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return NULL;
}

static void run_on_a_thread(void *(*body)(void *), const TestPlace *place)
{
    pthread_t thread;
    if (!CHECK(pthread_create(&thread, NULL, body, (void *)place) == 0)) {
        return;
    }
    pthread_join(thread, NULL);
}

static atomic_int signals_seen;
static atomic_int stop_signalling;

static void on_signal(int number)
{
    (void)number;
    atomic_fetch_add(&signals_seen, 1);
}

/* Signals `argument` (a pthread_t) until told to stop: one of them lands in the wait. */
static void *signaller(void *argument)
{
    pthread_t target = *(pthread_t *)argument;
    while (!atomic_load(&stop_signalling)) {
        pthread_kill(target, SIGUSR1);
        Sleep(20);
    }
    return NULL;
}

static void wait_arguments(void)
{
    int first = eventfd(0, EFD_CLOEXEC);
    int second = eventfd(0, EFD_CLOEXEC);
    int closed = eventfd(0, EFD_CLOEXEC);
    int quiet = eventfd(0, EFD_CLOEXEC);
    HANDLE handles[2];
    HANDLE stale[1];
    DWORD index = 7;
    uint64_t one = 1;
    struct sigaction action;
    pthread_t self = pthread_self(), thread;

    handles[0] = handle_of(first);
    handles[1] = handle_of(second);
    close(closed);
    stale[0] = handle_of(closed);
    CHECK_HR(CoWaitForMultipleHandles(0, 0, 2, handles, NULL), E_INVALIDARG);
    CHECK_HR(CoWaitForMultipleHandles(0, 0, 2, NULL, &index), E_INVALIDARG);
    CHECK_HR(CoWaitForMultipleHandles(0x40, 0, 2, handles, &index), E_INVALIDARG);
    CHECK_HR(CoWaitForMultipleHandles(0, 0, 0, handles, &index), RPC_E_NO_SYNC);
    CHECK_HR(CoWaitForMultipleHandles(0, 0, 1, stale, &index), E_HANDLE);
    CHECK_HR(CoWaitForMultipleHandles(0, 0, 2, handles, &index), RPC_S_CALLPENDING);

    /* The second handle signaled: its index. */
    CHECK(write(second, &one, sizeof one) == (ssize_t)sizeof one);
    index = 7;
    CHECK_HR(CoWaitForMultipleHandles(COWAIT_DISPATCH_CALLS, INFINITE, 2, handles, &index),
             S_OK);
    CHECK(index == 1);
    /* WAITALL: one of two is not enough; both are. */
    CHECK_HR(CoWaitForMultipleHandles(COWAIT_WAITALL, 0, 2, handles, &index),
             RPC_S_CALLPENDING);
    CHECK(write(first, &one, sizeof one) == (ssize_t)sizeof one);
    index = 7;
    CHECK_HR(CoWaitForMultipleHandles(COWAIT_WAITALL, INFINITE, 2, handles, &index), S_OK);
    CHECK(index == 0);

    /* ALERTABLE: a signal handler that runs during the wait ends it. */
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    CHECK(sigaction(SIGUSR1, &action, NULL) == 0);
    stale[0] = handle_of(quiet);
    atomic_store(&stop_signalling, 0);
    if (CHECK(pthread_create(&thread, NULL, signaller, &self) == 0)) {
        index = 7;
        CHECK_HR(CoWaitForMultipleHandles(COWAIT_ALERTABLE, 60000, 1, stale, &index), S_OK);
        CHECK(index == WAIT_IO_COMPLETION);
        CHECK(atomic_load(&signals_seen) > 0);
        atomic_store(&stop_signalling, 1);
        pthread_join(thread, NULL);
    }
    close(first);
    close(second);
    close(quiet);
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyManager *manager;
    int pending = -1;

    CHECK_HR(QmgrGetCallbackEventFd(&pending), CO_E_NOTINITIALIZED);
    CHECK_HR(QmgrGetCallbackEventFd(NULL), E_POINTER);
    CHECK_HR(CoInitializeEx(NULL, COINIT_APARTMENTTHREADED), S_OK);
    manager = new_manager();
    sta_callback_comes_in_the_wait(manager, &place);
    sta_wait_wakes_for_a_callback(manager, &place);
    sta_callback_comes_in_the_pump(manager, &place);
    sta_group_error_comes_in_the_pump(&place);
    never_pumping_threads(&place);
    run_on_a_thread(multithreaded, &place);
    wait_arguments();
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_apartment");
}
