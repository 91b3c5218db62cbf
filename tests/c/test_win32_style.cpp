/* test_win32_style.cpp: C++ written the way Microsoft's BITS samples are, built with
 * -fshort-wchar (L"..." literals unchanged) and -Wsign-compare -Wconversion -Wswitch-enum
 * on top of -Wall -Wextra -pedantic (as errors) — the flags of qmgr-win32.pc.
 *
 * - A callback class declared with STDMETHOD/STDMETHOD_, defined with STDMETHODIMP,
 *   counting references with InterlockedIncrement/InterlockedDecrement and answering
 *   NOERROR, QueryInterface through __uuidof.
 * - The BITS enumerations are enums (std::is_enum), switched over and compared with int
 *   and DWORD values without a sign warning.
 * - HRESULT_FROM_WIN32 as winerror.h defines it.
 */
#include <bits.h>

#include <cstring>
#include <type_traits>

#include "check.h"

static_assert(std::is_enum<BG_JOB_STATE>::value, "BG_JOB_STATE is an enum");
static_assert(std::is_enum<BG_JOB_PRIORITY>::value, "BG_JOB_PRIORITY is an enum");
static_assert(std::is_enum<BG_JOB_TYPE>::value, "BG_JOB_TYPE is an enum");
static_assert(std::is_enum<BG_JOB_PROXY_USAGE>::value, "BG_JOB_PROXY_USAGE is an enum");
static_assert(std::is_enum<BG_ERROR_CONTEXT>::value, "BG_ERROR_CONTEXT is an enum");
static_assert(std::is_enum<BG_AUTH_TARGET>::value, "BG_AUTH_TARGET is an enum");
static_assert(std::is_enum<BG_AUTH_SCHEME>::value, "BG_AUTH_SCHEME is an enum");
static_assert(std::is_enum<BG_CERT_STORE_LOCATION>::value, "BG_CERT_STORE_LOCATION is an enum");
static_assert(std::is_enum<BITS_JOB_PROPERTY_ID>::value, "BITS_JOB_PROPERTY_ID is an enum");
static_assert(std::is_enum<BITS_FILE_PROPERTY_ID>::value, "BITS_FILE_PROPERTY_ID is an enum");
static_assert(sizeof(BG_JOB_STATE) == 4, "a C enum is 4 bytes, as on Windows");
static_assert(sizeof(wchar_t) == sizeof(WCHAR), "built with -fshort-wchar");

namespace {

class CNotifyInterface : public IBackgroundCopyCallback
{
public:
    CNotifyInterface() : m_lRefCount(1), m_transferred(0), m_errors(0), m_modifications(0) {}
    virtual ~CNotifyInterface() {}

    // IUnknown
    STDMETHOD(QueryInterface)(REFIID riid, LPVOID *ppvObj);
    STDMETHOD_(ULONG, AddRef)();
    STDMETHOD_(ULONG, Release)();

    // IBackgroundCopyCallback
    STDMETHOD(JobTransferred)(IBackgroundCopyJob *pJob);
    STDMETHOD(JobError)(IBackgroundCopyJob *pJob, IBackgroundCopyError *pError);
    STDMETHOD(JobModification)(IBackgroundCopyJob *pJob, DWORD dwReserved);

    int TransferredCount() const { return m_transferred; }
    int ErrorCount() const { return m_errors; }
    int ModificationCount() const { return m_modifications; }

private:
    LONG m_lRefCount;
    int m_transferred;
    int m_errors;
    int m_modifications;
};

STDMETHODIMP CNotifyInterface::QueryInterface(REFIID riid, LPVOID *ppvObj)
{
    if (riid == __uuidof(IUnknown) || riid == __uuidof(IBackgroundCopyCallback)) {
        *ppvObj = this;
    } else {
        *ppvObj = NULL;
        return E_NOINTERFACE;
    }
    AddRef();
    return NOERROR;
}

STDMETHODIMP_(ULONG) CNotifyInterface::AddRef()
{
    return static_cast<ULONG>(InterlockedIncrement(&m_lRefCount));
}

STDMETHODIMP_(ULONG) CNotifyInterface::Release()
{
    LONG ulCount = InterlockedDecrement(&m_lRefCount);
    if (0 == ulCount) {
        delete this;
    }
    return static_cast<ULONG>(ulCount);
}

STDMETHODIMP CNotifyInterface::JobTransferred(IBackgroundCopyJob *pJob)
{
    UNREFERENCED_PARAMETER(pJob);
    m_transferred++;
    return S_OK;
}

STDMETHODIMP CNotifyInterface::JobError(IBackgroundCopyJob *pJob, IBackgroundCopyError *pError)
{
    UNREFERENCED_PARAMETER(pJob);
    UNREFERENCED_PARAMETER(pError);
    m_errors++;
    return HRESULT_FROM_WIN32(2);
}

STDMETHODIMP CNotifyInterface::JobModification(IBackgroundCopyJob *pJob, DWORD dwReserved)
{
    UNREFERENCED_PARAMETER(pJob);
    UNREFERENCED_PARAMETER(dwReserved);
    m_modifications++;
    return S_OK;
}

const char *StateName(BG_JOB_STATE State)
{
    switch (State) {
    case BG_JOB_STATE_QUEUED: return "QUEUED";
    case BG_JOB_STATE_CONNECTING: return "CONNECTING";
    case BG_JOB_STATE_TRANSFERRING: return "TRANSFERRING";
    case BG_JOB_STATE_SUSPENDED: return "SUSPENDED";
    case BG_JOB_STATE_ERROR: return "ERROR";
    case BG_JOB_STATE_TRANSIENT_ERROR: return "TRANSIENT_ERROR";
    case BG_JOB_STATE_TRANSFERRED: return "TRANSFERRED";
    case BG_JOB_STATE_ACKNOWLEDGED: return "ACKNOWLEDGED";
    case BG_JOB_STATE_CANCELLED: return "CANCELLED";
    }
    return "?";
}

void CallbackClass()
{
    CNotifyInterface *pNotify = new CNotifyInterface();
    IBackgroundCopyCallback *pCallback = NULL;
    IUnknown *pUnknown = NULL;

    CHECK_HR(pNotify->QueryInterface(__uuidof(IBackgroundCopyCallback),
                                     reinterpret_cast<void **>(&pCallback)),
             NOERROR);
    CHECK(pCallback == pNotify);
    CHECK_HR(pNotify->QueryInterface(IID_PPV_ARGS(&pUnknown)), S_OK);
    void *pJob = &pJob;
    CHECK_HR(pNotify->QueryInterface(__uuidof(IBackgroundCopyJob), &pJob), E_NOINTERFACE);
    CHECK(pJob == NULL);

    CHECK_HR(pCallback->JobTransferred(NULL), S_OK);
    CHECK_HR(pCallback->JobError(NULL, NULL), HRESULT_FROM_WIN32(2));
    CHECK_HR(pCallback->JobModification(NULL, 0), S_OK);
    CHECK(pNotify->TransferredCount() == 1 && pNotify->ErrorCount() == 1 &&
          pNotify->ModificationCount() == 1);

    CHECK(pUnknown->Release() == 2);
    CHECK(pCallback->Release() == 1);
    CHECK(pNotify->Release() == 0);
}

void Win32ErrorCodes()
{
    DWORD dwError = 5; // ERROR_ACCESS_DENIED
    CHECK(HRESULT_FROM_WIN32(dwError) == E_ACCESSDENIED);
    CHECK(HRESULT_FROM_WIN32(0) == NOERROR);
    CHECK(HRESULT_FROM_WIN32(E_FAIL) == E_FAIL);
}

void EnumsOfAJob(IBackgroundCopyManager *pManager)
{
    IBackgroundCopyJob *pJob = NULL;
    GUID JobId;
    if (!CHECK_HR(pManager->CreateJob(L"win32 style C++", BG_JOB_TYPE_DOWNLOAD, &JobId, &pJob),
                  S_OK)) {
        return;
    }
    BG_JOB_STATE State;
    CHECK_HR(pJob->GetState(&State), S_OK);
    int iSuspended = BG_JOB_STATE_SUSPENDED;
    CHECK(State == iSuspended);
    CHECK(std::strcmp(StateName(State), "SUSPENDED") == 0);

    BG_JOB_PRIORITY Priority;
    CHECK_HR(pJob->GetPriority(&Priority), S_OK);
    int iExpected = 2;
    DWORD dwNormal = BG_JOB_PRIORITY_NORMAL;
    CHECK(Priority == iExpected && Priority == dwNormal);
    for (int i = BG_JOB_PRIORITY_FOREGROUND; i <= BG_JOB_PRIORITY_LOW; i++) {
        if (Priority == i) {
            CHECK(i == 2);
        }
    }
    CHECK_HR(pJob->SetPriority(BG_JOB_PRIORITY_HIGH), S_OK);
    CHECK_HR(pJob->GetPriority(&Priority), S_OK);
    CHECK(Priority < iExpected);

    CHECK_HR(pJob->Cancel(), S_OK);
    CHECK_HR(pJob->GetState(&State), S_OK);
    CHECK(State == BG_JOB_STATE_CANCELLED);
    pJob->Release();
}

} // namespace

int main()
{
    Win32ErrorCodes();
    CallbackClass();
    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    IBackgroundCopyManager *pManager = NULL;
    if (CHECK_HR(CoCreateInstance(__uuidof(BackgroundCopyManager), NULL, CLSCTX_LOCAL_SERVER,
                                  __uuidof(IBackgroundCopyManager),
                                  reinterpret_cast<void **>(&pManager)),
                 S_OK)) {
        EnumsOfAJob(pManager);
        pManager->Release();
    }
    CoUninitialize();
    return check_summary("test_win32_style_cpp");
}
