/* apartment.c: a single-threaded apartment's download, told when it is done on its own
 * thread, from a poll(2) loop.
 *
 *   apartment URL DESTINATION
 *
 * The thread calls CoInitializeEx(NULL, COINIT_APARTMENTTHREADED), so its callback runs
 * on it and nowhere else: the shared state needs no atomics and no locks. The library
 * queues the callback's calls until the thread lets them in; QmgrGetCallbackEventFd gives
 * a descriptor that is readable while one waits, which a poll, epoll or GLib loop watches
 * beside its own, and QmgrDispatchCallbacks(0) runs them. (A Windows-style program waits
 * in CoWaitForMultipleHandles instead.) Exits 0 when JobTransferred completed the job.
 *
 * Build: cc -std=c11 apartment.c -I../include -L../target/debug -lqmgr
 */
#define COBJMACROS
#include <bits.h>

#include <poll.h>
#include <stdio.h>

#include "win32_compat.h"

enum outcome { PENDING, COMPLETED, FAILED_JOB };

/* Plain fields: the object is only ever called on the thread that registered it. */
typedef struct {
    IBackgroundCopyCallback iface;
    ULONG references;
    enum outcome outcome;
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
    return ++notifier_of(This)->references;
}

/* The object is static: the last Release frees nothing. */
static ULONG STDMETHODCALLTYPE Notifier_Release(IBackgroundCopyCallback *This)
{
    return --notifier_of(This)->references;
}

static HRESULT STDMETHODCALLTYPE Notifier_JobTransferred(IBackgroundCopyCallback *This,
                                                         IBackgroundCopyJob *pJob)
{
    HRESULT hr = IBackgroundCopyJob_Complete(pJob);
    if (FAILED(hr)) {
        fprintf(stderr, "Complete failed: 0x%08X\n", (unsigned)hr);
        notifier_of(This)->outcome = FAILED_JOB;
        return S_OK;
    }
    printf("JobTransferred (on the apartment's thread): the job is complete\n");
    notifier_of(This)->outcome = COMPLETED;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE Notifier_JobError(IBackgroundCopyCallback *This,
                                                   IBackgroundCopyJob *pJob,
                                                   IBackgroundCopyError *pError)
{
    (void)pError;
    IBackgroundCopyJob_Cancel(pJob);
    notifier_of(This)->outcome = FAILED_JOB;
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

static Notifier notifier;

int main(int argc, char **argv)
{
    IBackgroundCopyManager *manager = NULL;
    IBackgroundCopyJob *job = NULL;
    GUID id;
    WCHAR *url, *destination;
    struct pollfd watched;
    int rounds = 0;
    HRESULT hr;
    int result = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: %s URL DESTINATION\n", argv[0]);
        return 2;
    }
    url = widen(argv[1]);
    destination = widen(argv[2]);
    notifier.iface.lpVtbl = &notifier_vtbl;
    notifier.references = 1;
    notifier.outcome = PENDING;

    hr = CoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (FAILED(hr)) {
        fprintf(stderr, "CoInitializeEx failed: 0x%08X\n", (unsigned)hr);
        goto done;
    }
    watched.events = POLLIN;
    if (FAILED(hr = QmgrGetCallbackEventFd(&watched.fd)) ||
        FAILED(hr = CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                                     &IID_IBackgroundCopyManager, (void **)&manager))) {
        fprintf(stderr, "setting up failed: 0x%08X\n", (unsigned)hr);
        goto uninitialize;
    }
    if (FAILED(hr = IBackgroundCopyManager_CreateJob(manager, u"apartment.c",
                                                     BG_JOB_TYPE_DOWNLOAD, &id, &job))) {
        fprintf(stderr, "CreateJob failed: 0x%08X\n", (unsigned)hr);
        goto release_manager;
    }
    if (FAILED(hr = IBackgroundCopyJob_AddFile(job, url, destination)) ||
        FAILED(hr = IBackgroundCopyJob_SetNotifyInterface(job, (IUnknown *)&notifier.iface)) ||
        FAILED(hr = IBackgroundCopyJob_Resume(job))) {
        fprintf(stderr, "setting up the job failed: 0x%08X\n", (unsigned)hr);
        IBackgroundCopyJob_Cancel(job);
        goto release_job;
    }

    /* The program's event loop: here only the library's descriptor, one second at a
     * time, for at most ten minutes. */
    while (notifier.outcome == PENDING && rounds < 600) {
        if (poll(&watched, 1, 1000) > 0) {
            QmgrDispatchCallbacks(0);
        }
        rounds++;
    }
    if (notifier.outcome == COMPLETED) {
        printf("downloaded to %s\n", argv[2]);
        result = 0;
    } else if (notifier.outcome == PENDING) {
        fprintf(stderr, "no callback within ten minutes\n");
        IBackgroundCopyJob_Cancel(job);
    }

release_job:
    IBackgroundCopyJob_Release(job);
release_manager:
    IBackgroundCopyManager_Release(manager);
uninitialize:
    /* The apartment closes: the library lets go of the callback, on this thread. */
    CoUninitialize();
done:
    free(url);
    free(destination);
    return result;
}
