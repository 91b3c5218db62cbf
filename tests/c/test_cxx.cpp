// test_cxx.cpp: the headers in C++17 (WCHAR is char16_t, u"..." literals): interfaces as
// abstract classes called with method syntax, __uuidof for interfaces, classes and
// expressions, IID_PPV_ARGS, GUID operator== and IsEqualGUID on references, a callback
// written as a C++ class (its vtable must line up with the C layout the library calls),
// and the group API of qmgr.h.
#include <bits.h>
#include <bits5_0.h>
#include <qmgr.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "check.h"
#include "win32_compat.h"

static_assert(std::is_same<WCHAR, char16_t>::value, "WCHAR is char16_t in C++");
static_assert(std::is_abstract<IBackgroundCopyJob5>::value, "interfaces are abstract");
static_assert(std::is_base_of<IBackgroundCopyJob, IBackgroundCopyJob5>::value,
              "Job5 derives from Job");
static_assert(std::is_base_of<IUnknown, IBackgroundCopyGroup>::value, "groups are IUnknowns");
static_assert(sizeof(IBackgroundCopyJob) == sizeof(void *), "one vtable pointer, no more");
static_assert(!std::has_virtual_destructor<IUnknown>::value, "no virtual destructors");
static_assert(std::is_same<REFIID, const GUID &>::value, "REFIID is a reference in C++");

namespace {

std::string work_path(const char *work_dir, const char *name)
{
    return std::string(work_dir) + "/" + name;
}

long long size_of(const std::string &path)
{
    FILE *file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return -1;
    }
    std::fseek(file, 0, SEEK_END);
    long long size = std::ftell(file);
    std::fclose(file);
    return size;
}

bool same_text(const WCHAR *text, const char16_t *expected)
{
    return text != nullptr && std::char_traits<char16_t>::compare(
                                  text, expected, std::char_traits<char16_t>::length(expected) + 1) == 0;
}

// A callback as Microsoft's C++ samples write one: a class deriving from the interface.
class Notifier final : public IBackgroundCopyCallback
{
public:
    std::atomic<long> references{1};
    std::atomic<int> transferred{0};
    std::atomic<HRESULT> completed{E_FAIL};

    HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **ppvObject) override
    {
        if (riid == __uuidof(IUnknown) || riid == __uuidof(IBackgroundCopyCallback)) {
            *ppvObject = static_cast<IBackgroundCopyCallback *>(this);
            AddRef();
            return S_OK;
        }
        *ppvObject = nullptr;
        return E_NOINTERFACE;
    }
    ULONG STDMETHODCALLTYPE AddRef() override { return static_cast<ULONG>(++references); }
    ULONG STDMETHODCALLTYPE Release() override { return static_cast<ULONG>(--references); }
    HRESULT STDMETHODCALLTYPE JobTransferred(IBackgroundCopyJob *pJob) override
    {
        completed = pJob->Complete();
        ++transferred;
        return S_OK;
    }
    HRESULT STDMETHODCALLTYPE JobError(IBackgroundCopyJob *pJob, IBackgroundCopyError *) override
    {
        pJob->Cancel();
        return S_OK;
    }
    HRESULT STDMETHODCALLTYPE JobModification(IBackgroundCopyJob *, DWORD) override { return S_OK; }
};

Notifier notifier;

void uuids()
{
    IBackgroundCopyJob *job = nullptr;
    CHECK(__uuidof(IBackgroundCopyManager) == IID_IBackgroundCopyManager);
    CHECK(__uuidof(BackgroundCopyManager) == CLSID_BackgroundCopyManager);
    CHECK(__uuidof(BackgroundCopyManager5_0) == CLSID_BackgroundCopyManager5_0);
    CHECK(__uuidof(BackgroundCopyQMgr) == CLSID_BackgroundCopyQMgr);
    CHECK(__uuidof(IBackgroundCopyGroup) == IID_IBackgroundCopyGroup);
    CHECK(__uuidof(job) == IID_IBackgroundCopyJob);
    CHECK(__uuidof(*job) == IID_IBackgroundCopyJob);
    CHECK(__uuidof(IBackgroundCopyJob) != __uuidof(IBackgroundCopyJob2));
    CHECK(IsEqualGUID(IID_IUnknown, __uuidof(IUnknown)));
    CHECK(IsEqualIID(IID_IBackgroundCopyJob5, __uuidof(IBackgroundCopyJob5)));
}

void download(IBackgroundCopyManager *manager, const char *base_url, const char *work_dir)
{
    IBackgroundCopyJob *job = nullptr;
    IBackgroundCopyJob5 *job5 = nullptr;
    GUID id;
    std::string local = work_path(work_dir, "cxx.bin");
    WCHAR *url = widen((std::string(base_url) + "/data/12k/cxx").c_str());
    WCHAR *path = widen(local.c_str());

    if (!CHECK_HR(manager->CreateJob(u"C++ job", BG_JOB_TYPE_DOWNLOAD, &id, &job), S_OK)) {
        return;
    }
    LPWSTR name = nullptr;
    CHECK_HR(job->GetDisplayName(&name), S_OK);
    CHECK(same_text(name, u"C++ job"));
    CoTaskMemFree(name);
    CHECK_HR(job->QueryInterface(IID_PPV_ARGS(&job5)), S_OK);
    if (job5 != nullptr) {
        BITS_JOB_PROPERTY_VALUE value;
        std::memset(&value, 0, sizeof value);
        CHECK_HR(job5->GetProperty(BITS_JOB_PROPERTY_HIGH_PERFORMANCE, &value), S_OK);
        CHECK(value.Enable == FALSE);
        // A Job5 pointer is a Job pointer: the derived vtable starts with the base's.
        CHECK_HR(job5->SetDescription(u"set through Job5"), S_OK);
        job5->Release();
    }
    CHECK_HR(job->AddFile(url, path), S_OK);
    CHECK_HR(job->SetNotifyInterface(&notifier), S_OK);
    CHECK_HR(job->Resume(), S_OK);
    for (int waited_ms = 0; notifier.transferred == 0 && waited_ms < 60000; waited_ms += 20) {
        Sleep(20);
    }
    CHECK(notifier.transferred == 1);
    CHECK_HR(notifier.completed.load(), S_OK);
    CHECK(size_of(local) == 12288);
    BG_JOB_STATE state = BG_JOB_STATE_QUEUED;
    CHECK_HR(job->GetState(&state), S_OK);
    CHECK(state == BG_JOB_STATE_ACKNOWLEDGED);
    for (int waited_ms = 0; notifier.references != 1 && waited_ms < 60000; waited_ms += 20) {
        Sleep(20);
    }
    CHECK(notifier.references == 1);
    job->Release();
    std::free(url);
    std::free(path);
}

void group_api()
{
    IBackgroundCopyQMgr *qmgr = nullptr;
    if (!CHECK_HR(CoCreateInstance(__uuidof(BackgroundCopyQMgr), nullptr, CLSCTX_LOCAL_SERVER,
                                   __uuidof(IBackgroundCopyQMgr), reinterpret_cast<void **>(&qmgr)),
                  S_OK)) {
        return;
    }
    GUID id = IID_IUnknown;
    id.Data1 = 0xC0FFEE;
    IBackgroundCopyGroup *group = nullptr;
    CHECK_HR(qmgr->CreateGroup(id, &group), S_OK);
    if (group != nullptr) {
        DWORD status = 0;
        GUID seen;
        CHECK_HR(group->GetStatus(&status, nullptr), S_OK);
        CHECK((status & QM_STATUS_GROUP_SUSPENDED) != 0);
        CHECK_HR(group->get_GroupID(&seen), S_OK);
        CHECK(seen == id);
        CHECK_HR(group->CancelGroup(), S_OK);
        group->Release();
    }
    qmgr->Release();
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s BASE_URL WORK_DIR\n", argv[0]);
        return 2;
    }
    uuids();
    CHECK_HR(CoInitializeEx(nullptr, COINIT_MULTITHREADED), S_OK);
    IBackgroundCopyManager *manager = nullptr;
    if (CHECK_HR(CoCreateInstance(__uuidof(BackgroundCopyManager), nullptr, CLSCTX_LOCAL_SERVER,
                                  IID_PPV_ARGS(&manager)),
                 S_OK)) {
        IUnknown *unknown = nullptr;
        CHECK_HR(manager->QueryInterface(__uuidof(IUnknown), reinterpret_cast<void **>(&unknown)),
                 S_OK);
        CHECK(unknown != nullptr && unknown->Release() == 1);
        download(manager, argv[1], argv[2]);
        CHECK(manager->Release() == 0);
    }
    group_api();
    CoUninitialize();
    return check_summary("test_cxx");
}
