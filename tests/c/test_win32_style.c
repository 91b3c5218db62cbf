/* test_win32_style.c: C written the way Windows BITS code is, built with
 * -Wsign-compare -Wconversion -Wswitch-enum on top of -Wall -Wextra -pedantic (as errors).
 *
 * - The BITS enumerations are C enums of Windows' size: a switch over a job's state names
 *   every state, comparisons with enumerators, DWORD and ULONG values compile quietly.
 *   (GCC makes an enum without negative enumerators unsigned in C, as with mingw-w64's
 *   headers, so comparing one with a signed int variable still draws -Wsign-compare in C;
 *   C++ has no such warning, see test_win32_style.cpp.)
 * - NOERROR, HRESULT_FROM_WIN32, HRESULT_CODE/FACILITY/SEVERITY and MAKE_HRESULT as
 *   winerror.h defines them.
 * - STDMETHOD/STDMETHOD_ declare vtable slots in C, and InterlockedIncrement/Decrement
 *   count the references of a hand-written COM object.
 */
#include "support.h"

_Static_assert(sizeof(BG_JOB_STATE) == 4, "a C enum is 4 bytes, as on Windows");
_Static_assert(sizeof(BG_ERROR_CONTEXT) == 4, "a C enum is 4 bytes, as on Windows");
_Static_assert(sizeof(GROUPPROP) == 4, "a C enum is 4 bytes, as on Windows");

#define ERROR_FILE_NOT_FOUND 2L
#define ERROR_ACCESS_DENIED 5UL

static const char *state_name(BG_JOB_STATE state)
{
    switch (state) {
    case BG_JOB_STATE_QUEUED:
        return "QUEUED";
    case BG_JOB_STATE_CONNECTING:
        return "CONNECTING";
    case BG_JOB_STATE_TRANSFERRING:
        return "TRANSFERRING";
    case BG_JOB_STATE_SUSPENDED:
        return "SUSPENDED";
    case BG_JOB_STATE_ERROR:
        return "ERROR";
    case BG_JOB_STATE_TRANSIENT_ERROR:
        return "TRANSIENT_ERROR";
    case BG_JOB_STATE_TRANSFERRED:
        return "TRANSFERRED";
    case BG_JOB_STATE_ACKNOWLEDGED:
        return "ACKNOWLEDGED";
    case BG_JOB_STATE_CANCELLED:
        return "CANCELLED";
    }
    return "?";
}

static void win32_error_codes(void)
{
    DWORD last_error = ERROR_ACCESS_DENIED;
    CHECK(NOERROR == S_OK);
    CHECK(HRESULT_FROM_WIN32(0) == S_OK);
    CHECK(HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND) == (HRESULT)0x80070002);
    CHECK(HRESULT_FROM_WIN32(last_error) == E_ACCESSDENIED);
    /* An HRESULT failure passes through unchanged. */
    CHECK(HRESULT_FROM_WIN32(E_INVALIDARG) == E_INVALIDARG);
    CHECK(FAILED(HRESULT_FROM_WIN32(last_error)));
    CHECK(HRESULT_CODE(E_ACCESSDENIED) == 5 && HRESULT_FACILITY(E_ACCESSDENIED) == FACILITY_WIN32);
    CHECK(HRESULT_SEVERITY(E_ACCESSDENIED) == SEVERITY_ERROR);
    CHECK(HRESULT_SEVERITY(S_FALSE) == SEVERITY_SUCCESS && HRESULT_CODE(S_FALSE) == 1);
    CHECK(HRESULT_FACILITY(BG_E_NOT_FOUND) == 32 && HRESULT_CODE(BG_E_NOT_FOUND) == 1);
    CHECK(MAKE_HRESULT(SEVERITY_ERROR, FACILITY_WIN32, 5) == E_ACCESSDENIED);
    CHECK(MAKE_HRESULT(SEVERITY_SUCCESS, 0, 1) == S_FALSE);
}

/* A COM object whose vtable is declared with STDMETHOD, as C code for Windows does. */
typedef struct CountedVtbl {
    STDMETHOD(QueryInterface)(IUnknown *This, REFIID riid, void **ppvObject);
    STDMETHOD_(ULONG, AddRef)(IUnknown *This);
    STDMETHOD_(ULONG, Release)(IUnknown *This);
} CountedVtbl;

typedef struct Counted {
    const CountedVtbl *lpVtbl;
    LONG volatile references;
} Counted;

_Static_assert(sizeof(CountedVtbl) == sizeof(IUnknownVtbl), "STDMETHOD slots are pointers");

static HRESULT STDMETHODCALLTYPE Counted_QueryInterface(IUnknown *This, REFIID riid,
                                                        void **ppvObject)
{
    if (IsEqualIID(riid, &IID_IUnknown)) {
        *ppvObject = This;
        This->lpVtbl->AddRef(This);
        return NOERROR;
    }
    *ppvObject = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE Counted_AddRef(IUnknown *This)
{
    return (ULONG)InterlockedIncrement(&((Counted *)(void *)This)->references);
}

static ULONG STDMETHODCALLTYPE Counted_Release(IUnknown *This)
{
    LONG left = InterlockedDecrement(&((Counted *)(void *)This)->references);
    return (ULONG)left;
}

static void stdmethod_object(void)
{
    static const CountedVtbl vtable = {Counted_QueryInterface, Counted_AddRef, Counted_Release};
    Counted counted = {&vtable, 1};
    IUnknown *unknown = (IUnknown *)(void *)&counted;
    void *again = NULL;

    CHECK(IUnknown_AddRef(unknown) == 2);
    CHECK_HR(IUnknown_QueryInterface(unknown, &IID_IUnknown, &again), NOERROR);
    CHECK(again == (void *)unknown && counted.references == 3);
    CHECK_HR(IUnknown_QueryInterface(unknown, &IID_IBackgroundCopyJob, &again), E_NOINTERFACE);
    CHECK(again == NULL);
    CHECK(IUnknown_Release(unknown) == 2);
    CHECK(IUnknown_Release(unknown) == 1);
    CHECK(IUnknown_Release(unknown) == 0);
}

static void enums_of_a_job(IBackgroundCopyManager *manager)
{
    IBackgroundCopyJob *job = new_job(manager, u"win32 style");
    BG_JOB_STATE state = BG_JOB_STATE_ERROR;
    BG_JOB_PRIORITY priority = BG_JOB_PRIORITY_FOREGROUND;
    BG_JOB_TYPE type = BG_JOB_TYPE_UPLOAD;
    DWORD normal = BG_JOB_PRIORITY_NORMAL;
    ULONG suspended = BG_JOB_STATE_SUSPENDED;
    unsigned seen = 0;

    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(state == BG_JOB_STATE_SUSPENDED && state == suspended);
    CHECK(strcmp(state_name(state), "SUSPENDED") == 0);
    CHECK(state != BG_JOB_STATE_TRANSFERRED && state < BG_JOB_STATE_ERROR && state >= 1);
    CHECK_HR(IBackgroundCopyJob_GetPriority(job, &priority), S_OK);
    CHECK(priority == normal && priority == 2);
    CHECK_HR(IBackgroundCopyJob_SetPriority(job, BG_JOB_PRIORITY_LOW), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetPriority(job, &priority), S_OK);
    CHECK(priority > normal);
    CHECK_HR(IBackgroundCopyJob_GetType(job, &type), S_OK);
    switch (type) {
    case BG_JOB_TYPE_DOWNLOAD:
        seen = 1;
        break;
    case BG_JOB_TYPE_UPLOAD:
    case BG_JOB_TYPE_UPLOAD_REPLY:
        seen = 2;
        break;
    }
    CHECK(seen == 1);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(strcmp(state_name(state), "CANCELLED") == 0);
    IBackgroundCopyJob_Release(job);
}

int main(void)
{
    IBackgroundCopyManager *manager;

    win32_error_codes();
    stdmethod_object();
    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    enums_of_a_job(manager);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_win32_style");
}
