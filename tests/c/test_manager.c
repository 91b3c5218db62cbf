/* test_manager.c: the COM entry points, IUnknown's rules, and IBackgroundCopyManager.
 *
 * - CoCreateInstance before CoInitialize(Ex) is CO_E_NOTINITIALIZED; CoInitializeEx answers
 *   S_OK then S_FALSE for the same model, RPC_E_CHANGED_MODE for another one;
 *   CoInitialize and CoInitializeSecurity are accepted.
 * - CoCreateInstance: every class context that includes a server, every versioned CLSID
 *   whose interfaces exist, and the errors (unknown class, aggregation, NULL pointers).
 * - QueryInterface/AddRef/Release: identity through IUnknown, E_NOINTERFACE with NULL
 *   out, E_POINTER for a NULL out, reference counts.
 * - CreateJob, GetJob, EnumJobs and GetErrorDescription with their error paths.
 */
#include "support.h"

#define CLASS_E_NOAGGREGATION ((HRESULT)0x80040110)
#define ERROR_MR_MID_NOT_FOUND_HRESULT ((HRESULT)0x8007013D)

static void before_initialization(void)
{
    void *object = (void *)&object;
    CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                              &IID_IBackgroundCopyManager, &object),
             CO_E_NOTINITIALIZED);
    CHECK(object == NULL);
}

static void initialization(void)
{
    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED | COINIT_DISABLE_OLE1DDE), S_FALSE);
    /* The thread's model is set: another one is refused (and needs no CoUninitialize). */
    CHECK_HR(CoInitializeEx(NULL, COINIT_APARTMENTTHREADED), RPC_E_CHANGED_MODE);
    CHECK_HR(CoInitialize(NULL), RPC_E_CHANGED_MODE);
    CHECK_HR(CoInitializeEx(NULL, 0x100), E_INVALIDARG);
    CoUninitialize();
    CoUninitialize();
    /* Once the last CoUninitialize ended it, the thread may take another model. */
    CHECK_HR(CoInitialize(NULL), S_OK);
    CoUninitialize();
    /* The rest of the program runs initialized; main's last CoUninitialize ends it. */
    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    CHECK_HR(CoInitializeSecurity(NULL, -1, NULL, NULL, 0, 0, NULL, 0, NULL), S_OK);
}

static void create_instance(void)
{
    static const CLSID *const managers[] = {
        &CLSID_BackgroundCopyManager,    &CLSID_BackgroundCopyManager1_5,
        &CLSID_BackgroundCopyManager2_0, &CLSID_BackgroundCopyManager2_5,
        &CLSID_BackgroundCopyManager3_0, &CLSID_BackgroundCopyManager4_0,
        &CLSID_BackgroundCopyManager5_0, &CLSID_BackgroundCopyManager10_1,
        &CLSID_BackgroundCopyManager10_2, &CLSID_BackgroundCopyManager10_3,
    };
    static const DWORD contexts[] = {CLSCTX_LOCAL_SERVER, CLSCTX_ALL, CLSCTX_SERVER,
                                     CLSCTX_INPROC_SERVER};
    IUnknown *unknown = NULL;
    IUnknown outer;
    void *object = NULL;
    size_t i;

    for (i = 0; i < sizeof managers / sizeof managers[0]; i++) {
        object = NULL;
        if (CHECK_HR(CoCreateInstance(managers[i], NULL, CLSCTX_LOCAL_SERVER,
                                      &IID_IBackgroundCopyManager, &object),
                     S_OK)) {
            IBackgroundCopyManager_Release((IBackgroundCopyManager *)object);
        }
    }
    for (i = 0; i < sizeof contexts / sizeof contexts[0]; i++) {
        if (CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, contexts[i],
                                      &IID_IUnknown, (void **)&unknown),
                     S_OK)) {
            IUnknown_Release(unknown);
        }
    }
    /* A GUID that is no class is not registered. */
    object = (void *)&object;
    CHECK_HR(CoCreateInstance(&IID_IBackgroundCopyJob, NULL, CLSCTX_LOCAL_SERVER,
                              &IID_IUnknown, &object),
             REGDB_E_CLASSNOTREG);
    CHECK(object == NULL);
    CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_REMOTE_SERVER,
                              &IID_IUnknown, &object),
             REGDB_E_CLASSNOTREG);
    outer.lpVtbl = NULL;
    CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyManager, &outer, CLSCTX_LOCAL_SERVER,
                              &IID_IUnknown, &object),
             CLASS_E_NOAGGREGATION);
    CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                              &IID_IBackgroundCopyJob, &object),
             E_NOINTERFACE);
    CHECK(object == NULL);
    CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                              &IID_IUnknown, NULL),
             E_POINTER);
    CHECK(FAILED(CoCreateInstance(NULL, NULL, CLSCTX_LOCAL_SERVER, &IID_IUnknown, &object)));
    CHECK(FAILED(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                                  NULL, &object)));
}

static void unknown_rules(IBackgroundCopyManager *manager)
{
    IUnknown *unknown = NULL, *again = NULL;
    IBackgroundCopyManager *same = NULL;
    void *none = (void *)&none;

    CHECK_HR(IBackgroundCopyManager_QueryInterface(manager, &IID_IUnknown, (void **)&unknown),
             S_OK);
    CHECK_HR(IBackgroundCopyManager_QueryInterface(manager, &IID_IBackgroundCopyManager,
                                                   (void **)&same),
             S_OK);
    CHECK(same == manager);
    CHECK_HR(IBackgroundCopyManager_QueryInterface(same, &IID_IUnknown, (void **)&again), S_OK);
    CHECK(unknown != NULL && unknown == again);
    CHECK_HR(IBackgroundCopyManager_QueryInterface(manager, &IID_IBackgroundCopyJob, &none),
             E_NOINTERFACE);
    CHECK(none == NULL);
    CHECK_HR(IBackgroundCopyManager_QueryInterface(manager, &IID_IBackgroundCopyQMgr, &none),
             E_NOINTERFACE);
    CHECK_HR(IBackgroundCopyManager_QueryInterface(manager, &IID_IUnknown, NULL), E_POINTER);

    /* manager + unknown + same + again: four references; each Release gives the count. */
    CHECK(IBackgroundCopyManager_AddRef(manager) == 5);
    CHECK(IBackgroundCopyManager_Release(manager) == 4);
    CHECK(IUnknown_Release(again) == 3);
    CHECK(IBackgroundCopyManager_Release(same) == 2);
    CHECK(IUnknown_Release(unknown) == 1);
}

static void jobs(IBackgroundCopyManager *manager)
{
    IBackgroundCopyJob *job = NULL, *found = NULL;
    IEnumBackgroundCopyJobs *all = NULL;
    GUID id, found_id, unknown_id;
    WCHAR bad_utf16[] = {'b', 0xD800, 'd', 0};
    ULONG count = 0;

    CHECK_HR(IBackgroundCopyManager_CreateJob(manager, u"test_manager", BG_JOB_TYPE_DOWNLOAD,
                                              &id, &job),
             S_OK);
    CHECK_HR(IBackgroundCopyManager_GetJob(manager, &id, &found), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetId(found, &found_id), S_OK);
    CHECK(IsEqualGUID(&id, &found_id));
    IBackgroundCopyJob_Release(found);

    CHECK_HR(IBackgroundCopyManager_EnumJobs(manager, 0, &all), S_OK);
    CHECK_HR(IEnumBackgroundCopyJobs_GetCount(all, &count), S_OK);
    CHECK(count == 1);
    IEnumBackgroundCopyJobs_Release(all);

    CHECK_HR(IBackgroundCopyManager_EnumJobs(manager, 0x2, &all), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyManager_EnumJobs(manager, 0, NULL), E_POINTER);

    /* CreateJob: bad arguments. */
    CHECK_HR(IBackgroundCopyManager_CreateJob(manager, NULL, BG_JOB_TYPE_DOWNLOAD, &id, &found),
             E_INVALIDARG);
    CHECK_HR(IBackgroundCopyManager_CreateJob(manager, u"bad type", 7, &id, &found),
             E_INVALIDARG);
    CHECK_HR(IBackgroundCopyManager_CreateJob(manager, bad_utf16, BG_JOB_TYPE_DOWNLOAD, &id,
                                              &found),
             E_INVALIDARG);
    CHECK_HR(IBackgroundCopyManager_CreateJob(manager, u"no out", BG_JOB_TYPE_DOWNLOAD, &id,
                                              NULL),
             E_POINTER);
    CHECK_HR(IBackgroundCopyManager_CreateJob(manager, u"no id", BG_JOB_TYPE_DOWNLOAD, NULL,
                                              &found),
             E_POINTER);

    /* GetJob: a job that left the queue, one that never existed, bad pointers. */
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    CHECK_HR(IBackgroundCopyManager_GetJob(manager, &id, &found), BG_E_NOT_FOUND);
    memset(&unknown_id, 0x42, sizeof unknown_id);
    CHECK_HR(IBackgroundCopyManager_GetJob(manager, &unknown_id, &found), BG_E_NOT_FOUND);
    CHECK_HR(IBackgroundCopyManager_GetJob(manager, NULL, &found), E_POINTER);
    CHECK_HR(IBackgroundCopyManager_GetJob(manager, &id, NULL), E_POINTER);
    IBackgroundCopyJob_Release(job);
}

static void error_descriptions(IBackgroundCopyManager *manager)
{
    LPWSTR text = NULL;
    CHECK_HR(IBackgroundCopyManager_GetErrorDescription(manager, BG_E_NOT_FOUND, 0x0409, &text),
             S_OK);
    CHECK(wide_is(text, "The requested job was not found."));
    CoTaskMemFree(text);
    text = NULL;
    CHECK_HR(IBackgroundCopyManager_GetErrorDescription(manager, BG_E_HTTP_ERROR_404, 0, &text),
             S_OK);
    CHECK(text != NULL && text[0] != 0);
    CoTaskMemFree(text);
    text = NULL;
    CHECK_HR(IBackgroundCopyManager_GetErrorDescription(manager, (HRESULT)0x8BADF00D, 0x0409,
                                                        &text),
             ERROR_MR_MID_NOT_FOUND_HRESULT);
    CHECK(text == NULL);
    CHECK_HR(IBackgroundCopyManager_GetErrorDescription(manager, S_OK, 0x0409, NULL), E_POINTER);
}

/* GetErrorInfo describes the thread's last failed call, once; a later call forgets it. */
static void error_information(IBackgroundCopyManager *manager)
{
    IBackgroundCopyJob *found = (IBackgroundCopyJob *)1;
    IErrorInfo *info = (IErrorInfo *)1;
    BSTR description = NULL, source = NULL;
    GUID unknown_id;

    memset(&unknown_id, 0x42, sizeof unknown_id);
    CHECK_HR(IBackgroundCopyManager_GetJob(manager, &unknown_id, &found), BG_E_NOT_FOUND);
    CHECK_HR(GetErrorInfo(0, &info), S_OK);
    if (CHECK(info != NULL && info != (IErrorInfo *)1)) {
        CHECK_HR(IErrorInfo_GetDescription(info, &description), S_OK);
        CHECK(description != NULL && SysStringLen(description) > 0);
        CHECK_HR(IErrorInfo_GetSource(info, &source), S_OK);
        CHECK(wide_is(source, "qmgr"));
        SysFreeString(description);
        SysFreeString(source);
        CHECK(IErrorInfo_Release(info) == 0);
    }
    CHECK_HR(GetErrorInfo(0, &info), S_FALSE);
    CHECK(info == NULL);

    CHECK_HR(IBackgroundCopyManager_GetJob(manager, &unknown_id, &found), BG_E_NOT_FOUND);
    CHECK_HR(IBackgroundCopyManager_GetErrorDescription(manager, BG_E_NOT_FOUND, 0x0409,
                                                        (LPWSTR *)&description),
             S_OK);
    CoTaskMemFree(description);
    CHECK_HR(GetErrorInfo(0, &info), S_FALSE);
    CHECK_HR(GetErrorInfo(0, NULL), E_POINTER);
}

int main(void)
{
    IBackgroundCopyManager *manager;

    before_initialization();
    initialization();
    create_instance();
    manager = new_manager();
    unknown_rules(manager);
    jobs(manager);
    error_descriptions(manager);
    error_information(manager);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_manager");
}
