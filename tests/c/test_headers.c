/* test_headers.c: the headers themselves, and the helpers that need no queue.
 *
 * - Every header is included twice (include guards; the thin version headers).
 * - Vtable slots sit at Windows' offsets, counted from mingw-w64's and the SDK's
 *   ordering (bits-h.md, qmgr-h.md); struct sizes and field offsets are Windows' on
 *   64-bit platforms; the Windows types have Windows' widths.
 * - HRESULT constants are typed: comparisons compile under -Wall -Wextra -Werror.
 * - SUCCEEDED/FAILED, IsEqualGUID, the V_ accessors, CoTaskMemAlloc/Free and the BSTR
 *   and VARIANT helpers.
 */
#define COBJMACROS
#include <bits.h>
#include <bits1_5.h>
#include <bits2_0.h>
#include <bits2_5.h>
#include <bits3_0.h>
#include <bits4_0.h>
#include <bits5_0.h>
#include <bits10_1.h>
#include <bits10_2.h>
#include <bits10_3.h>
#include <bitsmsg.h>
#include <qmgr.h>

#include <bits.h>
#include <bits1_5.h>
#include <bits2_0.h>
#include <bits2_5.h>
#include <bits3_0.h>
#include <bits4_0.h>
#include <bits5_0.h>
#include <bits10_1.h>
#include <bits10_2.h>
#include <bits10_3.h>
#include <bitsmsg.h>
#include <qmgr.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#define SLOT(vtable, method, index) \
    _Static_assert(offsetof(vtable, method) == (index) * sizeof(void *), \
                   #vtable "::" #method " is slot " #index)

SLOT(IUnknownVtbl, QueryInterface, 0);
SLOT(IUnknownVtbl, Release, 2);
SLOT(IBackgroundCopyManagerVtbl, QueryInterface, 0);
SLOT(IBackgroundCopyManagerVtbl, CreateJob, 3);
SLOT(IBackgroundCopyManagerVtbl, GetErrorDescription, 6);
SLOT(IBackgroundCopyJobVtbl, AddFileSet, 3);
SLOT(IBackgroundCopyJobVtbl, GetState, 14);
SLOT(IBackgroundCopyJobVtbl, SetNotifyInterface, 25);
SLOT(IBackgroundCopyJobVtbl, TakeOwnership, 34);
SLOT(IBackgroundCopyJob2Vtbl, AddFile, 4);
SLOT(IBackgroundCopyJob2Vtbl, SetNotifyCmdLine, 35);
SLOT(IBackgroundCopyJob2Vtbl, RemoveCredentials, 42);
SLOT(IBackgroundCopyJob3Vtbl, ReplaceRemotePrefix, 43);
SLOT(IBackgroundCopyJob3Vtbl, GetFileACLFlags, 46);
SLOT(IBackgroundCopyJob4Vtbl, SetPeerCachingFlags, 47);
SLOT(IBackgroundCopyJob4Vtbl, GetMaximumDownloadTime, 52);
SLOT(IBackgroundCopyJob5Vtbl, Resume, 7);
SLOT(IBackgroundCopyJob5Vtbl, SetProperty, 53);
SLOT(IBackgroundCopyJob5Vtbl, GetProperty, 54);
SLOT(IBackgroundCopyFileVtbl, GetRemoteName, 3);
SLOT(IBackgroundCopyFileVtbl, GetProgress, 5);
SLOT(IBackgroundCopyFile2Vtbl, GetFileRanges, 6);
SLOT(IBackgroundCopyFile2Vtbl, SetRemoteName, 7);
SLOT(IBackgroundCopyFile3Vtbl, GetTemporaryName, 8);
SLOT(IBackgroundCopyFile3Vtbl, IsDownloadedFromPeer, 11);
SLOT(IBackgroundCopyFile4Vtbl, GetPeerDownloadStats, 12);
SLOT(IBackgroundCopyFile5Vtbl, SetProperty, 13);
SLOT(IBackgroundCopyFile5Vtbl, GetProperty, 14);
SLOT(IBackgroundCopyFile6Vtbl, UpdateDownloadPosition, 15);
SLOT(IBackgroundCopyFile6Vtbl, GetFilledFileRanges, 17);
SLOT(IEnumBackgroundCopyJobsVtbl, Next, 3);
SLOT(IEnumBackgroundCopyJobsVtbl, GetCount, 7);
SLOT(IEnumBackgroundCopyFilesVtbl, Clone, 6);
SLOT(IBackgroundCopyErrorVtbl, GetError, 3);
SLOT(IBackgroundCopyErrorVtbl, GetProtocol, 7);
SLOT(IBackgroundCopyCallbackVtbl, JobTransferred, 3);
SLOT(IBackgroundCopyCallbackVtbl, JobModification, 5);
SLOT(IBackgroundCopyCallback2Vtbl, FileTransferred, 6);
SLOT(IBackgroundCopyCallback3Vtbl, FileRangesTransferred, 7);
SLOT(IBackgroundCopyJobHttpOptionsVtbl, SetClientCertificateByID, 3);
SLOT(IBackgroundCopyJobHttpOptionsVtbl, GetSecurityFlags, 10);
SLOT(IBackgroundCopyJobHttpOptions2Vtbl, SetHttpMethod, 11);
SLOT(IBackgroundCopyJobHttpOptions3Vtbl, MakeCustomHeadersWriteOnly, 14);
SLOT(IBackgroundCopyServerCertificateValidationCallbackVtbl, ValidateServerCertificate, 3);
SLOT(IBitsTokenOptionsVtbl, SetHelperTokenFlags, 3);
SLOT(IBitsTokenOptionsVtbl, GetHelperTokenSid, 7);
SLOT(IBackgroundCopyQMgrVtbl, CreateGroup, 3);
SLOT(IBackgroundCopyQMgrVtbl, EnumGroups, 5);
SLOT(IBackgroundCopyGroupVtbl, GetProp, 3);
SLOT(IBackgroundCopyGroupVtbl, CancelGroup, 10);
SLOT(IBackgroundCopyGroupVtbl, get_GroupID, 12);
SLOT(IBackgroundCopyGroupVtbl, SetNotificationPointer, 17);
SLOT(IBackgroundCopyJob1Vtbl, CancelJob, 3);
SLOT(IBackgroundCopyJob1Vtbl, get_JobID, 10);
SLOT(IEnumBackgroundCopyGroupsVtbl, GetCount, 7);
SLOT(IEnumBackgroundCopyJobs1Vtbl, Next, 3);
SLOT(IBackgroundCopyCallback1Vtbl, OnStatus, 3);
SLOT(IBackgroundCopyCallback1Vtbl, OnProgressEx, 5);

_Static_assert(sizeof(IBackgroundCopyJobVtbl) == 35 * sizeof(void *), "Job has 35 slots");
_Static_assert(sizeof(IBackgroundCopyJob5Vtbl) == 55 * sizeof(void *), "Job5 has 55 slots");
_Static_assert(sizeof(IBackgroundCopyGroupVtbl) == 18 * sizeof(void *), "Group has 18 slots");
_Static_assert(offsetof(IBackgroundCopyJob, lpVtbl) == 0, "lpVtbl comes first");

/* Windows' widths on every platform. */
_Static_assert(sizeof(HRESULT) == 4 && (HRESULT)-1 < 0, "HRESULT is a signed 32-bit value");
_Static_assert(sizeof(LONG) == 4 && sizeof(ULONG) == 4 && sizeof(DWORD) == 4, "32-bit longs");
_Static_assert(sizeof(BOOL) == 4 && sizeof(UINT64) == 8, "BOOL and UINT64");
_Static_assert(sizeof(WCHAR) == 2, "WCHAR is one UTF-16 code unit");
_Static_assert(sizeof(GUID) == 16 && _Alignof(GUID) == 4, "GUID");
_Static_assert(sizeof(FILETIME) == 8, "FILETIME");
_Static_assert(sizeof(BG_JOB_STATE) == 4 && sizeof(GROUPPROP) == 4, "enums are 4 bytes");

#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(BG_FILE_INFO) == 16, "BG_FILE_INFO");
_Static_assert(sizeof(BG_FILE_PROGRESS) == 24, "BG_FILE_PROGRESS");
_Static_assert(sizeof(BG_JOB_PROGRESS) == 24, "BG_JOB_PROGRESS");
_Static_assert(sizeof(BG_JOB_TIMES) == 24, "BG_JOB_TIMES");
_Static_assert(sizeof(BG_JOB_REPLY_PROGRESS) == 16, "BG_JOB_REPLY_PROGRESS");
_Static_assert(sizeof(BG_AUTH_CREDENTIALS) == 24, "BG_AUTH_CREDENTIALS");
_Static_assert(offsetof(BG_AUTH_CREDENTIALS, Credentials) == 8, "BG_AUTH_CREDENTIALS");
_Static_assert(sizeof(BG_FILE_RANGE) == 16, "BG_FILE_RANGE");
_Static_assert(sizeof(BITS_JOB_PROPERTY_VALUE) == 16, "BITS_JOB_PROPERTY_VALUE");
_Static_assert(sizeof(FILESETINFO) == 24, "FILESETINFO");
_Static_assert(sizeof(VARIANT) == 24 && offsetof(VARIANT, vt) == 0, "VARIANT");
#endif

static void hresults_are_typed(void)
{
    HRESULT hr = BG_E_NOT_FOUND;
    CHECK(hr == BG_E_NOT_FOUND);
    CHECK(hr == (HRESULT)0x80200001);
    CHECK(FAILED(hr) && !SUCCEEDED(hr));
    CHECK(SUCCEEDED(S_FALSE) && SUCCEEDED(S_OK) && SUCCEEDED(BG_S_PARTIAL_COMPLETE));
    CHECK(QM_E_ITEM_NOT_FOUND < 0 && QM_E_ITEM_NOT_FOUND == (HRESULT)0x81001004);
    CHECK(E_INVALIDARG == (HRESULT)0x80070057 && E_POINTER == (HRESULT)0x80004003);
    CHECK(BG_E_HTTP_ERROR_404 == (HRESULT)0x80190194);
    CHECK(BG_E_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK == (HRESULT)0x80200076);
}

static void constants_have_windows_values(void)
{
    CHECK(BG_JOB_STATE_TRANSFERRED == 6 && BG_JOB_STATE_CANCELLED == 8);
    CHECK(BG_JOB_PRIORITY_FOREGROUND == 0 && BG_JOB_PRIORITY_LOW == 3);
    CHECK(BG_NOTIFY_JOB_TRANSFERRED == 1 && BG_NOTIFY_FILE_RANGES_TRANSFERRED == 0x20);
    CHECK(BG_SIZE_UNKNOWN == (UINT64)-1);
    CHECK(CLSCTX_ALL == (CLSCTX_INPROC_SERVER | CLSCTX_INPROC_HANDLER | CLSCTX_LOCAL_SERVER |
                         CLSCTX_REMOTE_SERVER));
    CHECK(COINIT_APARTMENTTHREADED == 2 && COINIT_MULTITHREADED == 0);
    CHECK(VT_BSTR == 8 && VT_I4 == 3 && VT_UNKNOWN == 13);
    CHECK(GROUPPROP_DISPLAYNAME == 11 && QM_STATUS_GROUP_COMPLETE == 0x40);
    CHECK(BITS_JOB_PROPERTY_ID_COST_FLAGS == 1 && BITS_JOB_PROPERTY_ON_DEMAND_MODE == 10);
}

static void guids_compare(void)
{
    GUID copy = IID_IBackgroundCopyJob;
    const WCHAR text[] = u"IID";
    CHECK(IsEqualGUID(&copy, &IID_IBackgroundCopyJob));
    CHECK(IsEqualIID(&IID_IUnknown, &IID_IUnknown));
    CHECK(!IsEqualIID(&IID_IBackgroundCopyJob, &IID_IBackgroundCopyJob2));
    CHECK(!IsEqualCLSID(&CLSID_BackgroundCopyManager, &CLSID_BackgroundCopyQMgr));
    CHECK(IID_IBackgroundCopyManager.Data1 == 0x5CE34C0D);
    CHECK(CLSID_BackgroundCopyManager.Data4[7] == 0x97);
    CHECK(IID_IUnknown.Data4[0] == 0xC0 && IID_IUnknown.Data4[7] == 0x46);
    CHECK(text[0] == 'I' && text[3] == 0);
}

static void task_memory(void)
{
    BYTE *block = (BYTE *)CoTaskMemAlloc(64);
    CHECK(block != NULL);
    if (block != NULL) {
        memset(block, 0xAB, 64);
        CoTaskMemFree(block);
    }
    block = (BYTE *)CoTaskMemAlloc(0);
    CHECK(block != NULL);
    CoTaskMemFree(block);
    CoTaskMemFree(NULL);
}

static void bstrs(void)
{
    BSTR text = SysAllocString(u"qmgr");
    BSTR counted = SysAllocStringLen(NULL, 3);
    BSTR empty = SysAllocString(u"");
    CHECK(text != NULL && SysStringLen(text) == 4);
    CHECK(text != NULL && text[0] == 'q' && text[4] == 0);
    /* The 4 bytes before a BSTR hold its length in bytes. */
    CHECK(text != NULL && ((const uint32_t *)(const void *)text)[-1] == 8);
    CHECK(counted != NULL && SysStringLen(counted) == 3 && counted[0] == 0 && counted[3] == 0);
    CHECK(empty != NULL && SysStringLen(empty) == 0);
    CHECK(SysAllocString(NULL) == NULL);
    CHECK(SysStringLen(NULL) == 0);
    SysFreeString(text);
    SysFreeString(counted);
    SysFreeString(empty);
    SysFreeString(NULL);
}

static void variants(void)
{
    VARIANT value;
    memset(&value, 0x5A, sizeof value);
    VariantInit(&value);
    CHECK(V_VT(&value) == VT_EMPTY);

    V_VT(&value) = VT_I4;
    V_I4(&value) = -7;
    CHECK(value.vt == VT_I4 && V_I4(&value) == -7);
    CHECK_HR(VariantClear(&value), S_OK);
    CHECK(V_VT(&value) == VT_EMPTY);

    /* VariantClear frees the BSTR a VARIANT owns (valgrind would see a leak). */
    V_VT(&value) = VT_BSTR;
    V_BSTR(&value) = SysAllocString(u"owned by the VARIANT");
    CHECK_HR(VariantClear(&value), S_OK);
    CHECK(V_VT(&value) == VT_EMPTY);

    V_VT(&value) = VT_UI4;
    V_UI4(&value) = 0xFFFFFFFFu;
    CHECK(V_UI4(&value) == 0xFFFFFFFFu);
    CHECK_HR(VariantClear(&value), S_OK);

    CHECK_HR(VariantClear(NULL), E_INVALIDARG);
    VariantInit(NULL);
}

int main(void)
{
    hresults_are_typed();
    constants_have_windows_values();
    guids_compare();
    task_memory();
    bstrs();
    variants();
    return check_summary("test_headers");
}
