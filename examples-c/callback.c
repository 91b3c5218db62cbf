/* callback.c: a download that is told when it is done, through an
 * IBackgroundCopyCallback written in C with its own vtable.
 *
 *   callback URL DESTINATION
 *
 * The callback completes the job inside JobTransferred (as Microsoft's samples do) and
 * cancels it inside JobError; the main thread only waits. Callbacks arrive on a thread
 * of the library's, so the shared state is atomic. Exits 0 when JobTransferred completed
 * the job, 1 otherwise.
 *
 * Build: cc -std=c11 callback.c -I../include -L../target/debug -lqmgr
 */
#define COBJMACROS
#include <bits.h>

#include <stdatomic.h>
#include <stdio.h>

#include "win32_compat.h"

enum outcome { PENDING, COMPLETED, FAILED_JOB };

/* The callback object: the interface (a vtable pointer) first, so that a pointer to the
 * interface is a pointer to the object. */
typedef struct {
    IBackgroundCopyCallback iface;
    atomic_ulong references;
    atomic_int outcome;
} Notifier;

static Notifier *notifier_of(IBackgroundCopyCallback *This)
{
    return (Notifier *)This;
}

static HRESULT STDMETHODCALLTYPE Notifier_QueryInterface(IBackgroundCopyCallback *This,
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

static ULONG STDMETHODCALLTYPE Notifier_AddRef(IBackgroundCopyCallback *This)
{
    return (ULONG)atomic_fetch_add(&notifier_of(This)->references, 1) + 1;
}

/* The object is static: the last Release frees nothing. */
static ULONG STDMETHODCALLTYPE Notifier_Release(IBackgroundCopyCallback *This)
{
    return (ULONG)atomic_fetch_sub(&notifier_of(This)->references, 1) - 1;
}

static HRESULT STDMETHODCALLTYPE Notifier_JobTransferred(IBackgroundCopyCallback *This,
                                                         IBackgroundCopyJob *pJob)
{
    HRESULT hr = IBackgroundCopyJob_Complete(pJob);
    if (FAILED(hr)) {
        fprintf(stderr, "Complete failed: 0x%08X\n", (unsigned)hr);
        atomic_store(&notifier_of(This)->outcome, FAILED_JOB);
        return S_OK;
    }
    printf("JobTransferred: the job is complete\n");
    atomic_store(&notifier_of(This)->outcome, COMPLETED);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Notifier_JobError(IBackgroundCopyCallback *This,
                                                   IBackgroundCopyJob *pJob,
                                                   IBackgroundCopyError *pError)
{
    LPWSTR description = NULL;
    if (SUCCEEDED(IBackgroundCopyError_GetErrorDescription(pError, 0x0409, &description))) {
        fprintf(stderr, "JobError: ");
        fprint_wide(stderr, description); /* glibc: not wprintf(L"%s") */
        fputc('\n', stderr);
        CoTaskMemFree(description);
    }
    IBackgroundCopyJob_Cancel(pJob);
    atomic_store(&notifier_of(This)->outcome, FAILED_JOB);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Notifier_JobModification(IBackgroundCopyCallback *This,
                                                          IBackgroundCopyJob *pJob,
                                                          DWORD dwReserved)
{
    (void)This;
    (void)pJob;
    (void)dwReserved;
    return S_OK;
}

static IBackgroundCopyCallbackVtbl notifier_vtbl = {
    Notifier_QueryInterface, Notifier_AddRef,  Notifier_Release,
    Notifier_JobTransferred, Notifier_JobError, Notifier_JobModification,
};

/* Static, not in main's frame: the library may still hold (and Release) it while main
 * returns. */
static Notifier notifier;

int main(int argc, char **argv)
{
    IBackgroundCopyManager *manager = NULL;
    IBackgroundCopyJob *job = NULL;
    GUID id;
    WCHAR *url, *destination;
    long waited_ms = 0;
    HRESULT hr;
    int result = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: %s URL DESTINATION\n", argv[0]);
        return 2;
    }
    /* glibc: main receives UTF-8, not wmain's wide strings. */
    url = widen(argv[1]);
    destination = widen(argv[2]);
    notifier.iface.lpVtbl = &notifier_vtbl;
    atomic_init(&notifier.references, 1);
    atomic_init(&notifier.outcome, PENDING);

    hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (FAILED(hr)) {
        fprintf(stderr, "CoInitializeEx failed: 0x%08X\n", (unsigned)hr);
        goto done;
    }
    hr = CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                          &IID_IBackgroundCopyManager, (void **)&manager);
    if (FAILED(hr)) {
        fprintf(stderr, "CoCreateInstance failed: 0x%08X\n", (unsigned)hr);
        goto uninitialize;
    }
    if (FAILED(hr = IBackgroundCopyManager_CreateJob(manager, u"callback.c",
                                                     BG_JOB_TYPE_DOWNLOAD, &id, &job))) {
        fprintf(stderr, "CreateJob failed: 0x%08X\n", (unsigned)hr);
        goto release_manager;
    }
    if (FAILED(hr = IBackgroundCopyJob_AddFile(job, url, destination)) ||
        FAILED(hr = IBackgroundCopyJob_SetNotifyFlags(job, BG_NOTIFY_JOB_TRANSFERRED |
                                                               BG_NOTIFY_JOB_ERROR)) ||
        FAILED(hr = IBackgroundCopyJob_SetNotifyInterface(job, (IUnknown *)&notifier.iface)) ||
        FAILED(hr = IBackgroundCopyJob_Resume(job))) {
        fprintf(stderr, "setting up the job failed: 0x%08X\n", (unsigned)hr);
        IBackgroundCopyJob_Cancel(job);
        goto release_job;
    }

    /* Everything happens in the callback; give up after ten minutes. */
    while (atomic_load(&notifier.outcome) == PENDING && waited_ms < 600000) {
        Sleep(50);
        waited_ms += 50;
    }
    if (atomic_load(&notifier.outcome) == COMPLETED) {
        printf("downloaded to %s\n", argv[2]);
        result = 0;
    } else if (atomic_load(&notifier.outcome) == PENDING) {
        fprintf(stderr, "no callback within ten minutes\n");
        IBackgroundCopyJob_Cancel(job);
    }

    /* The library lets go of the callback once the job has left the queue. */
    while (atomic_load(&notifier.references) > 1 && waited_ms < 600000) {
        Sleep(50);
        waited_ms += 50;
    }

release_job:
    IBackgroundCopyJob_Release(job);
release_manager:
    IBackgroundCopyManager_Release(manager);
uninitialize:
    CoUninitialize();
done:
    free(url);
    free(destination);
    return result;
}
