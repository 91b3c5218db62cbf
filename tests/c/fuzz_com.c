/* fuzz_com.c: random call sequences against libqmgr's COM objects.
 *
 *   fuzz_com BASE_URL WORK_DIR
 *
 * The manager, jobs, files, enumerators and error objects get calls in random order:
 * calls in the wrong state, NULL and garbage arguments, odd UTF-16, out-pointers left
 * NULL, extra AddRef/Release pairs, and now and then a burst in which three threads call
 * on the same jobs at once. A crash, or a memory error under ASan or valgrind, is a
 * finding; so is a broken rule the documentation promises:
 *
 * - no call answers E_UNEXPECTED (libqmgr's answer to a panic inside it: a bug);
 * - a call that fails leaves every out-pointer it was given NULL (COM's rule);
 * - a getter given a NULL out-pointer fails;
 * - a job's state is one of BG_JOB_STATE's nine;
 * - once Complete or Cancel succeeded, Complete, Cancel, Resume and Suspend answer
 *   BG_E_INVALID_STATE (checked between bursts, with one caller);
 * - an enumerator's Next(n) answers S_OK exactly when it fetched n, and refuses a NULL
 *   count unless n is 1.
 *
 * The number of calls is QMGR_FUZZ_ITERATIONS_COM, else QMGR_FUZZ_ITERATIONS, else 1500;
 * the seed is QMGR_FUZZ_SEED, else new each run; both are printed so a run replays.
 */
#include "support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define JOB_SLOTS 4
#define THREADS 3
#define WIDE_MAX 600

typedef struct {
    uint64_t state;
} Rng;

static uint64_t rng_next(Rng *rng)
{
    rng->state ^= rng->state >> 12;
    rng->state ^= rng->state << 25;
    rng->state ^= rng->state >> 27;
    return rng->state * UINT64_C(0x2545F4914F6CDD1D);
}

static unsigned rng_below(Rng *rng, unsigned bound)
{
    return (unsigned)(rng_next(rng) % bound);
}

static Rng rng_seeded(uint64_t seed)
{
    Rng rng;
    rng.state = served_scramble(seed) | 1;
    return rng;
}

static const TestPlace *place;
static atomic_long calls;
static atomic_long succeeded;
static atomic_long findings;
/* One call in flight per thread records its name here for findings. */
static _Thread_local const char *current_call = "";

static void finding(int line, const char *what, HRESULT hr)
{
    atomic_fetch_add(&findings, 1);
    fprintf(stderr, "fuzz_com.c:%d: FINDING in %s: %s (HRESULT 0x%08X)\n", line, current_call,
            what, (unsigned)hr);
}

/* Every call goes through here: counted, and never E_UNEXPECTED. */
static HRESULT seen(HRESULT hr, const char *call, int line)
{
    atomic_fetch_add(&calls, 1);
    if (SUCCEEDED(hr)) {
        atomic_fetch_add(&succeeded, 1);
    }
    current_call = call;
    if (hr == E_UNEXPECTED) {
        finding(line, "E_UNEXPECTED (a panic inside libqmgr)", hr);
    }
    return hr;
}

#define CALL(expression) seen((expression), #expression, __LINE__)

/* An out-pointer's value before the call: anything but NULL, so that a failure that does
 * not clear it shows. */
static int sentinel_target;
#define SENTINEL ((void *)&sentinel_target)

/* Checks COM's rule for a pointer out-parameter after a call. */
static void out_cleared(HRESULT hr, const void *out, int line)
{
    if (FAILED(hr) && out != NULL) {
        finding(line, "a failed call left its out-pointer set", hr);
    }
}

#define OUT_CLEARED(hr, out) out_cleared((hr), (const void *)(out), __LINE__)

/* A getter given NULL for its out-pointer must fail. */
static void null_refused(HRESULT hr, int line)
{
    if (SUCCEEDED(hr)) {
        finding(line, "a NULL out-pointer was accepted", hr);
    }
}

#define NULL_REFUSED(expression) null_refused(CALL(expression), __LINE__)

/* Random UTF-16 text in `buffer` (WIDE_MAX units): empty, plain, long, lone or paired
 * surrogates, a BOM; or NULL. */
static const WCHAR *random_wide(Rng *rng, WCHAR *buffer)
{
    unsigned length = 0, kind = rng_below(rng, 8), i;
    switch (kind) {
    case 0:
        return NULL;
    case 1:
        length = 0;
        break;
    case 2:
        length = 250 + rng_below(rng, WIDE_MAX - 251);
        break;
    default:
        length = rng_below(rng, 24);
        break;
    }
    for (i = 0; i < length; i++) {
        unsigned pick = rng_below(rng, 16);
        if (pick == 0) {
            buffer[i] = (WCHAR)(0xD800 + rng_below(rng, 0x800));
        } else if (pick == 1 && i + 1 < length) {
            buffer[i++] = 0xD83D;
            buffer[i] = 0xDE00;
        } else if (pick == 2) {
            buffer[i] = 0xFEFF;
        } else {
            buffer[i] = (WCHAR)('a' + rng_below(rng, 26));
        }
    }
    buffer[length] = 0;
    return buffer;
}

/* A remote name: mostly files of the test server, sometimes ones no call should take. */
static WCHAR *random_remote(Rng *rng, unsigned serial)
{
    char path[96];
    static const char *const bad[] = {
        "gopher://example.com/x", "relative/name", "http://", "http://host/a b", "", "file://relative",
    };
    switch (rng_below(rng, 6)) {
    case 0:
        return widen(bad[rng_below(rng, sizeof bad / sizeof bad[0])]);
    case 1:
        snprintf(path, sizeof path, "/data/64k/fuzz%u?rate=20000", serial);
        return url_of(place, path);
    case 2:
        snprintf(path, sizeof path, "/missing/fuzz%u", serial);
        return url_of(place, path);
    default:
        snprintf(path, sizeof path, "/data/%uk/fuzz%u", 1 + rng_below(rng, 8), serial);
        return url_of(place, path);
    }
}

/* A local name: mostly a fresh file of the work directory, sometimes one no call should
 * take. */
static WCHAR *random_local(Rng *rng, unsigned serial)
{
    char name[64];
    switch (rng_below(rng, 8)) {
    case 0:
        return widen("relative.out");
    case 1:
        return widen("/");
    case 2:
        return widen(place->work_dir);
    default:
        snprintf(name, sizeof name, "fuzz-%u.out", serial);
        return work_path_wide(place, name);
    }
}

static atomic_uint serials;

typedef struct {
    IBackgroundCopyJob *job;
    /* Complete or Cancel succeeded: the job is over (single-caller phases only). */
    int finished;
} Slot;

static const IID *random_iid(Rng *rng)
{
    static const IID *const iids[] = {
        &IID_IUnknown,
        &IID_IBackgroundCopyJob,
        &IID_IBackgroundCopyJob2,
        &IID_IBackgroundCopyJob3,
        &IID_IBackgroundCopyJob4,
        &IID_IBackgroundCopyJob5,
        &IID_IBackgroundCopyJobHttpOptions,
        &IID_IBackgroundCopyManager,
        &IID_IBackgroundCopyFile,
        &IID_IEnumBackgroundCopyJobs,
    };
    return iids[rng_below(rng, sizeof iids / sizeof iids[0])];
}

static void poke_error(Rng *rng, IBackgroundCopyError *error)
{
    BG_ERROR_CONTEXT context;
    HRESULT code = S_OK, hr;
    LPWSTR text = (LPWSTR)SENTINEL;
    IBackgroundCopyFile *file = (IBackgroundCopyFile *)SENTINEL;
    hr = CALL(IBackgroundCopyError_GetError(error, &context, &code));
    if (SUCCEEDED(hr) && SUCCEEDED(code)) {
        finding(__LINE__, "an error object holds a success code", code);
    }
    hr = CALL(IBackgroundCopyError_GetErrorDescription(error, rng_below(rng, 2) ? 0x409 : 0, &text));
    OUT_CLEARED(hr, text);
    if (SUCCEEDED(hr)) {
        CoTaskMemFree(text);
    }
    text = (LPWSTR)SENTINEL;
    hr = CALL(IBackgroundCopyError_GetErrorContextDescription(error, 0x409, &text));
    OUT_CLEARED(hr, text);
    if (SUCCEEDED(hr)) {
        CoTaskMemFree(text);
    }
    text = (LPWSTR)SENTINEL;
    hr = CALL(IBackgroundCopyError_GetProtocol(error, &text));
    OUT_CLEARED(hr, text);
    if (SUCCEEDED(hr)) {
        CoTaskMemFree(text);
    }
    hr = CALL(IBackgroundCopyError_GetFile(error, &file));
    OUT_CLEARED(hr, file);
    if (SUCCEEDED(hr) && file != NULL) {
        IBackgroundCopyFile_Release(file);
    }
    NULL_REFUSED(IBackgroundCopyError_GetProtocol(error, NULL));
}

static void poke_file(Rng *rng, IBackgroundCopyFile *file)
{
    LPWSTR text = (LPWSTR)SENTINEL;
    BG_FILE_PROGRESS progress;
    HRESULT hr;
    switch (rng_below(rng, 4)) {
    case 0:
        hr = CALL(IBackgroundCopyFile_GetRemoteName(file, &text));
        break;
    case 1:
        hr = CALL(IBackgroundCopyFile_GetLocalName(file, &text));
        break;
    case 2:
        hr = CALL(IBackgroundCopyFile_GetProgress(file, &progress));
        text = NULL;
        if (SUCCEEDED(hr) && progress.BytesTotal != BG_SIZE_UNKNOWN &&
            progress.BytesTransferred > progress.BytesTotal) {
            finding(__LINE__, "a file transferred more than its size", hr);
        }
        break;
    default:
        NULL_REFUSED(IBackgroundCopyFile_GetLocalName(file, NULL));
        return;
    }
    OUT_CLEARED(hr, text);
    if (SUCCEEDED(hr)) {
        CoTaskMemFree(text);
    }
}

static void poke_file_enumerator(Rng *rng, IEnumBackgroundCopyFiles *files)
{
    IBackgroundCopyFile *fetched[4] = {NULL, NULL, NULL, NULL};
    ULONG count = 0, wanted = 1 + rng_below(rng, 4), got = 0, i;
    IEnumBackgroundCopyFiles *clone = (IEnumBackgroundCopyFiles *)SENTINEL;
    HRESULT hr;
    CALL(IEnumBackgroundCopyFiles_GetCount(files, &count));
    hr = CALL(IEnumBackgroundCopyFiles_Next(files, wanted, fetched, &got));
    if (SUCCEEDED(hr) && (got > wanted || (hr == S_OK) != (got == wanted))) {
        finding(__LINE__, "Next's answer and its count disagree", hr);
    }
    for (i = 0; SUCCEEDED(hr) && i < got && i < 4; i++) {
        poke_file(rng, fetched[i]);
        IBackgroundCopyFile_Release(fetched[i]);
    }
    if (rng_below(rng, 3) == 0) {
        hr = CALL(IEnumBackgroundCopyFiles_Next(files, 2, fetched, NULL));
        if (SUCCEEDED(hr)) {
            finding(__LINE__, "Next(2) took a NULL count", hr);
            for (i = 0; i < 2; i++) {
                if (fetched[i] != NULL) {
                    IBackgroundCopyFile_Release(fetched[i]);
                }
            }
        }
    }
    CALL(IEnumBackgroundCopyFiles_Skip(files, rng_below(rng, 3)));
    CALL(IEnumBackgroundCopyFiles_Reset(files));
    hr = CALL(IEnumBackgroundCopyFiles_Clone(files, &clone));
    OUT_CLEARED(hr, clone);
    if (SUCCEEDED(hr)) {
        IEnumBackgroundCopyFiles_Release(clone);
    }
    NULL_REFUSED(IEnumBackgroundCopyFiles_GetCount(files, NULL));
}

/* One random call (or a short sequence) on `slot`'s job. `alone`: no other thread calls
 * on it now, so the state rules are checked. */
static void poke_job(Rng *rng, Slot *slot, int alone)
{
    IBackgroundCopyJob *job = slot->job;
    WCHAR text_buffer[WIDE_MAX], other_buffer[WIDE_MAX];
    LPWSTR text = (LPWSTR)SENTINEL, other = (LPWSTR)SENTINEL;
    BG_JOB_STATE state = BG_JOB_STATE_QUEUED;
    BG_JOB_PROGRESS progress;
    BG_JOB_TIMES times;
    BG_JOB_PRIORITY priority;
    BG_JOB_PROXY_USAGE usage;
    BG_JOB_TYPE type;
    GUID id;
    ULONG value = 0;
    HRESULT hr;
    unsigned serial = atomic_fetch_add(&serials, 1);
    unsigned op = rng_below(rng, 30);

    switch (op) {
    case 0:
    case 1:
    case 2: {
        WCHAR *remote = random_remote(rng, serial), *local = random_local(rng, serial);
        CALL(IBackgroundCopyJob_AddFile(job, rng_below(rng, 12) ? remote : NULL,
                                        rng_below(rng, 12) ? local : NULL));
        free(remote);
        free(local);
        break;
    }
    case 3: {
        BG_FILE_INFO set[2];
        unsigned i, count = rng_below(rng, 3);
        for (i = 0; i < 2; i++) {
            set[i].RemoteName = random_remote(rng, serial * 2 + i);
            set[i].LocalName = random_local(rng, serial * 2 + i);
        }
        CALL(IBackgroundCopyJob_AddFileSet(job, count, rng_below(rng, 8) ? set : NULL));
        for (i = 0; i < 2; i++) {
            free(set[i].RemoteName);
            free(set[i].LocalName);
        }
        break;
    }
    case 4: {
        IEnumBackgroundCopyFiles *files = (IEnumBackgroundCopyFiles *)SENTINEL;
        hr = CALL(IBackgroundCopyJob_EnumFiles(job, &files));
        OUT_CLEARED(hr, files);
        if (SUCCEEDED(hr)) {
            poke_file_enumerator(rng, files);
            IEnumBackgroundCopyFiles_Release(files);
        }
        break;
    }
    case 5:
    case 6:
        hr = CALL(IBackgroundCopyJob_Resume(job));
        if (alone && slot->finished && hr != BG_E_INVALID_STATE) {
            finding(__LINE__, "Resume after Complete or Cancel", hr);
        }
        break;
    case 7:
        hr = CALL(IBackgroundCopyJob_Suspend(job));
        if (alone && slot->finished && hr != BG_E_INVALID_STATE) {
            finding(__LINE__, "Suspend after Complete or Cancel", hr);
        }
        break;
    case 8:
        hr = CALL(IBackgroundCopyJob_Cancel(job));
        if (alone && slot->finished && hr != BG_E_INVALID_STATE) {
            finding(__LINE__, "Cancel after Complete or Cancel", hr);
        }
        if (alone && SUCCEEDED(hr)) {
            slot->finished = 1;
        }
        break;
    case 9:
    case 10:
        hr = CALL(IBackgroundCopyJob_Complete(job));
        if (alone && slot->finished && hr != BG_E_INVALID_STATE) {
            finding(__LINE__, "Complete after Complete or Cancel", hr);
        }
        if (alone && SUCCEEDED(hr)) {
            slot->finished = 1;
            hr = CALL(IBackgroundCopyJob_Complete(job));
            if (hr != BG_E_INVALID_STATE) {
                finding(__LINE__, "Complete twice", hr);
            }
        }
        break;
    case 11:
        hr = CALL(IBackgroundCopyJob_GetState(job, &state));
        if (SUCCEEDED(hr) && (unsigned)state > BG_JOB_STATE_CANCELLED) {
            finding(__LINE__, "a state out of range", hr);
        }
        if (alone && SUCCEEDED(hr) && slot->finished && state != BG_JOB_STATE_ACKNOWLEDGED &&
            state != BG_JOB_STATE_CANCELLED) {
            finding(__LINE__, "a finished job is neither ACKNOWLEDGED nor CANCELLED", hr);
        }
        break;
    case 12:
        CALL(IBackgroundCopyJob_GetProgress(job, &progress));
        CALL(IBackgroundCopyJob_GetTimes(job, &times));
        CALL(IBackgroundCopyJob_GetId(job, &id));
        CALL(IBackgroundCopyJob_GetType(job, &type));
        CALL(IBackgroundCopyJob_GetErrorCount(job, &value));
        break;
    case 13: {
        IBackgroundCopyError *error = (IBackgroundCopyError *)SENTINEL;
        hr = CALL(IBackgroundCopyJob_GetError(job, &error));
        OUT_CLEARED(hr, error);
        if (SUCCEEDED(hr)) {
            poke_error(rng, error);
            IBackgroundCopyError_Release(error);
        }
        break;
    }
    case 14:
        hr = CALL(IBackgroundCopyJob_GetOwner(job, &text));
        OUT_CLEARED(hr, text);
        if (SUCCEEDED(hr)) {
            CoTaskMemFree(text);
        }
        break;
    case 15:
        CALL(IBackgroundCopyJob_SetDisplayName(job, random_wide(rng, text_buffer)));
        hr = CALL(IBackgroundCopyJob_GetDisplayName(job, &text));
        OUT_CLEARED(hr, text);
        if (SUCCEEDED(hr)) {
            CoTaskMemFree(text);
        }
        break;
    case 16:
        CALL(IBackgroundCopyJob_SetDescription(job, random_wide(rng, text_buffer)));
        hr = CALL(IBackgroundCopyJob_GetDescription(job, &text));
        OUT_CLEARED(hr, text);
        if (SUCCEEDED(hr)) {
            CoTaskMemFree(text);
        }
        break;
    case 17:
        CALL(IBackgroundCopyJob_SetPriority(job, (BG_JOB_PRIORITY)rng_below(rng, 6)));
        hr = CALL(IBackgroundCopyJob_GetPriority(job, &priority));
        if (SUCCEEDED(hr) && (unsigned)priority > BG_JOB_PRIORITY_LOW) {
            finding(__LINE__, "a priority out of range", hr);
        }
        break;
    case 18:
        CALL(IBackgroundCopyJob_SetNotifyFlags(job, (ULONG)rng_next(rng) & 0x7F));
        CALL(IBackgroundCopyJob_GetNotifyFlags(job, &value));
        break;
    case 19:
        CALL(IBackgroundCopyJob_SetMinimumRetryDelay(job, (ULONG)rng_next(rng)));
        CALL(IBackgroundCopyJob_GetMinimumRetryDelay(job, &value));
        CALL(IBackgroundCopyJob_SetNoProgressTimeout(job, (ULONG)rng_next(rng)));
        CALL(IBackgroundCopyJob_GetNoProgressTimeout(job, &value));
        break;
    case 20:
        CALL(IBackgroundCopyJob_SetProxySettings(job, (BG_JOB_PROXY_USAGE)rng_below(rng, 5),
                                                 random_wide(rng, text_buffer),
                                                 random_wide(rng, other_buffer)));
        hr = CALL(IBackgroundCopyJob_GetProxySettings(job, &usage, &text, &other));
        OUT_CLEARED(hr, text);
        OUT_CLEARED(hr, other);
        if (SUCCEEDED(hr)) {
            CoTaskMemFree(text);
            CoTaskMemFree(other);
        }
        break;
    case 21:
        CALL(IBackgroundCopyJob_TakeOwnership(job));
        break;
    case 22: {
        void *interface = SENTINEL;
        hr = CALL(IBackgroundCopyJob_QueryInterface(job, random_iid(rng), &interface));
        OUT_CLEARED(hr, interface);
        if (SUCCEEDED(hr)) {
            ((IUnknown *)interface)->lpVtbl->Release((IUnknown *)interface);
        }
        break;
    }
    case 23: {
        ULONG after_add = IBackgroundCopyJob_AddRef(job);
        ULONG after_release = IBackgroundCopyJob_Release(job);
        atomic_fetch_add(&calls, 2);
        if (after_add < 2 || after_release == 0) {
            finding(__LINE__, "AddRef/Release counts", (HRESULT)after_add);
        }
        break;
    }
    case 24:
        NULL_REFUSED(IBackgroundCopyJob_GetState(job, NULL));
        NULL_REFUSED(IBackgroundCopyJob_GetDisplayName(job, NULL));
        NULL_REFUSED(IBackgroundCopyJob_EnumFiles(job, NULL));
        break;
    case 25:
        NULL_REFUSED(IBackgroundCopyJob_GetError(job, NULL));
        NULL_REFUSED(IBackgroundCopyJob_GetProgress(job, NULL));
        NULL_REFUSED(IBackgroundCopyJob_QueryInterface(job, &IID_IUnknown, NULL));
        break;
    case 26: {
        IBackgroundCopyJobHttpOptions *http = NULL;
        hr = CALL(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJobHttpOptions,
                                                    (void **)&http));
        if (SUCCEEDED(hr)) {
            CALL(IBackgroundCopyJobHttpOptions_SetCustomHeaders(http, random_wide(rng, text_buffer)));
            hr = CALL(IBackgroundCopyJobHttpOptions_GetCustomHeaders(http, &text));
            OUT_CLEARED(hr, text);
            if (SUCCEEDED(hr)) {
                CoTaskMemFree(text);
            }
            CALL(IBackgroundCopyJobHttpOptions_SetSecurityFlags(http, (ULONG)rng_next(rng)));
            IBackgroundCopyJobHttpOptions_Release(http);
        }
        break;
    }
    default:
        /* Nothing this turn: lets transfers move on between calls. */
        break;
    }
}

static void poke_job_enumerator(Rng *rng, IEnumBackgroundCopyJobs *jobs)
{
    IBackgroundCopyJob *fetched[3] = {NULL, NULL, NULL};
    ULONG count = 0, got = 0, wanted = 1 + rng_below(rng, 3), i;
    IEnumBackgroundCopyJobs *clone = (IEnumBackgroundCopyJobs *)SENTINEL;
    HRESULT hr;
    CALL(IEnumBackgroundCopyJobs_GetCount(jobs, &count));
    hr = CALL(IEnumBackgroundCopyJobs_Next(jobs, wanted, fetched, &got));
    if (SUCCEEDED(hr) && (got > wanted || (hr == S_OK) != (got == wanted))) {
        finding(__LINE__, "Next's answer and its count disagree", hr);
    }
    for (i = 0; SUCCEEDED(hr) && i < got && i < 3; i++) {
        BG_JOB_STATE state;
        CALL(IBackgroundCopyJob_GetState(fetched[i], &state));
        IBackgroundCopyJob_Release(fetched[i]);
    }
    if (rng_below(rng, 3) == 0) {
        fetched[0] = fetched[1] = NULL;
        hr = CALL(IEnumBackgroundCopyJobs_Next(jobs, 2, fetched, NULL));
        if (SUCCEEDED(hr)) {
            finding(__LINE__, "Next(2) took a NULL count", hr);
            for (i = 0; i < 2; i++) {
                if (fetched[i] != NULL) {
                    IBackgroundCopyJob_Release(fetched[i]);
                }
            }
        }
    }
    CALL(IEnumBackgroundCopyJobs_Skip(jobs, rng_below(rng, 4)));
    CALL(IEnumBackgroundCopyJobs_Reset(jobs));
    hr = CALL(IEnumBackgroundCopyJobs_Clone(jobs, &clone));
    OUT_CLEARED(hr, clone);
    if (SUCCEEDED(hr)) {
        CALL(IEnumBackgroundCopyJobs_GetCount(clone, &count));
        IEnumBackgroundCopyJobs_Release(clone);
    }
}

/* One random call on the manager, which may fill or empty a slot. */
static void poke_manager(Rng *rng, IBackgroundCopyManager *manager, Slot *slots)
{
    Slot *slot = &slots[rng_below(rng, JOB_SLOTS)];
    WCHAR name_buffer[WIDE_MAX];
    HRESULT hr;
    GUID id;
    switch (rng_below(rng, 6)) {
    case 0:
    case 1: {
        IBackgroundCopyJob *job = (IBackgroundCopyJob *)SENTINEL;
        BG_JOB_TYPE type = (BG_JOB_TYPE)(rng_below(rng, 8) ? BG_JOB_TYPE_DOWNLOAD
                                                           : rng_below(rng, 5));
        hr = CALL(IBackgroundCopyManager_CreateJob(manager, random_wide(rng, name_buffer), type,
                                                   &id, &job));
        OUT_CLEARED(hr, job);
        if (SUCCEEDED(hr)) {
            if (slot->job != NULL) {
                CALL(IBackgroundCopyJob_Cancel(slot->job));
                IBackgroundCopyJob_Release(slot->job);
            }
            slot->job = job;
            slot->finished = 0;
        }
        break;
    }
    case 2: {
        IBackgroundCopyJob *job = (IBackgroundCopyJob *)SENTINEL;
        memset(&id, 0, sizeof id);
        if (slot->job != NULL && rng_below(rng, 4) != 0) {
            CALL(IBackgroundCopyJob_GetId(slot->job, &id));
        } else {
            id.Data1 = (ULONG)rng_next(rng);
        }
        hr = CALL(IBackgroundCopyManager_GetJob(manager, &id, &job));
        OUT_CLEARED(hr, job);
        if (SUCCEEDED(hr)) {
            IBackgroundCopyJob_Release(job);
        }
        break;
    }
    case 3: {
        IEnumBackgroundCopyJobs *jobs = (IEnumBackgroundCopyJobs *)SENTINEL;
        DWORD flags = rng_below(rng, 4) ? 0 : (DWORD)rng_next(rng);
        hr = CALL(IBackgroundCopyManager_EnumJobs(manager, flags, &jobs));
        OUT_CLEARED(hr, jobs);
        if (SUCCEEDED(hr)) {
            poke_job_enumerator(rng, jobs);
            IEnumBackgroundCopyJobs_Release(jobs);
        }
        break;
    }
    case 4: {
        LPWSTR text = (LPWSTR)SENTINEL;
        HRESULT code = rng_below(rng, 2) ? BG_E_NOT_FOUND : (HRESULT)(ULONG)rng_next(rng);
        hr = CALL(IBackgroundCopyManager_GetErrorDescription(manager, code, 0x409, &text));
        OUT_CLEARED(hr, text);
        if (SUCCEEDED(hr)) {
            CoTaskMemFree(text);
        }
        break;
    }
    default:
        NULL_REFUSED(IBackgroundCopyManager_CreateJob(manager, u"null out", BG_JOB_TYPE_DOWNLOAD,
                                                      &id, NULL));
        NULL_REFUSED(IBackgroundCopyManager_EnumJobs(manager, 0, NULL));
        break;
    }
}

typedef struct {
    Slot *slots;
    uint64_t seed;
    long calls_each;
} Burst;

static void *burst_thread(void *argument)
{
    const Burst *burst = (const Burst *)argument;
    Rng rng = rng_seeded(burst->seed);
    long i;
    for (i = 0; i < burst->calls_each; i++) {
        Slot *slot = &burst->slots[rng_below(&rng, JOB_SLOTS)];
        if (slot->job != NULL) {
            poke_job(&rng, slot, 0);
        }
    }
    return NULL;
}

/* Three threads call on the same jobs at once; the slots' jobs are not replaced meanwhile. */
static void burst(Rng *rng, Slot *slots, long calls_each)
{
    pthread_t threads[THREADS];
    Burst bursts[THREADS];
    int started[THREADS], i;
    for (i = 0; i < THREADS; i++) {
        bursts[i].slots = slots;
        bursts[i].seed = rng_next(rng);
        bursts[i].calls_each = calls_each;
        started[i] = pthread_create(&threads[i], NULL, burst_thread, &bursts[i]) == 0;
        if (!started[i]) {
            fprintf(stderr, "fuzz_com: pthread_create failed\n");
            atomic_fetch_add(&findings, 1);
        }
    }
    for (i = 0; i < THREADS; i++) {
        if (started[i]) {
            pthread_join(threads[i], NULL);
        }
    }
    /* Whatever the threads did, the state rules hold again from here: a job that the
     * threads finished is found by its state. */
    for (i = 0; i < JOB_SLOTS; i++) {
        BG_JOB_STATE state;
        if (slots[i].job != NULL && SUCCEEDED(CALL(IBackgroundCopyJob_GetState(slots[i].job, &state)))) {
            slots[i].finished =
                state == BG_JOB_STATE_ACKNOWLEDGED || state == BG_JOB_STATE_CANCELLED;
        }
    }
}

static uint64_t number_from_env(const char *name, uint64_t fallback)
{
    const char *text = getenv(name);
    return text != NULL && *text != 0 ? (uint64_t)strtoull(text, NULL, 0) : fallback;
}

int main(int argc, char **argv)
{
    TestPlace test = test_place(argc, argv);
    IBackgroundCopyManager *manager = NULL;
    Slot slots[JOB_SLOTS];
    uint64_t seed, budget;
    Rng rng;
    int i;

    place = &test;
    budget = number_from_env("QMGR_FUZZ_ITERATIONS_COM", number_from_env("QMGR_FUZZ_ITERATIONS", 1500));
    seed = number_from_env("QMGR_FUZZ_SEED",
                           served_scramble((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32)));
    printf("fuzz com: seed 0x%llx, %llu calls (replay with QMGR_FUZZ_SEED=0x%llx)\n",
           (unsigned long long)seed, (unsigned long long)budget, (unsigned long long)seed);
    fflush(stdout);
    rng = rng_seeded(seed);
    memset(slots, 0, sizeof slots);

    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                              &IID_IBackgroundCopyManager, (void **)&manager),
             S_OK);
    if (manager == NULL) {
        return check_summary("fuzz_com");
    }
    while ((uint64_t)atomic_load(&calls) < budget) {
        unsigned what = rng_below(&rng, 40);
        Slot *slot = &slots[rng_below(&rng, JOB_SLOTS)];
        if (what < 6 || slot->job == NULL) {
            poke_manager(&rng, manager, slots);
        } else if (what == 6) {
            burst(&rng, slots, 10 + (long)rng_below(&rng, 30));
        } else {
            poke_job(&rng, slot, 1);
        }
    }
    for (i = 0; i < JOB_SLOTS; i++) {
        if (slots[i].job != NULL) {
            CALL(IBackgroundCopyJob_Cancel(slots[i].job));
            IBackgroundCopyJob_Release(slots[i].job);
        }
    }
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    printf("fuzz com: %ld calls (%ld succeeded), %ld findings\n", (long)atomic_load(&calls),
           (long)atomic_load(&succeeded), (long)atomic_load(&findings));
    CHECK(atomic_load(&findings) == 0);
    return check_summary("fuzz_com");
}
