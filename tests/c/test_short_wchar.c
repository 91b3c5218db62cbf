/* test_short_wchar.c: C built with -fshort-wchar, as Wine builds Windows code: WCHAR is
 * wchar_t, and Windows' L"..." literals go to the API unchanged.
 */
#include "support.h"

_Static_assert(sizeof(wchar_t) == 2, "built with -fshort-wchar");
_Static_assert(sizeof(L"ab") == 3 * sizeof(WCHAR), "L literals are WCHAR strings");

/* Compares UTF-16 strings (glibc's wcscmp assumes a 4-byte wchar_t). */
static int same_wide(const WCHAR *a, const WCHAR *b)
{
    if (a == NULL || b == NULL) {
        return 0;
    }
    for (; *a != 0 && *a == *b; a++, b++) {
    }
    return *a == *b;
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyManager *manager;
    IBackgroundCopyJob *job;
    LPWSTR text = NULL;
    BSTR bstr;
    GUID id;
    WCHAR *url = url_of(&place, "/data/3k/short");
    char *local = work_path(&place, "short.bin");
    WCHAR *local_wide = widen(local);

    CHECK_HR(CoInitializeEx(NULL, COINIT_APARTMENTTHREADED), S_OK);
    manager = new_manager();
    CHECK_HR(IBackgroundCopyManager_CreateJob(manager, L"short wchar", BG_JOB_TYPE_DOWNLOAD, &id,
                                              &job),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_GetDisplayName(job, &text), S_OK);
    CHECK(same_wide(text, L"short wchar"));
    CoTaskMemFree(text);
    CHECK_HR(IBackgroundCopyJob_SetDescription(job, L"Gr\u00FC\u00DFe \U0001F600"), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetDescription(job, &text), S_OK);
    CHECK(same_wide(text, L"Gr\u00FC\u00DFe \U0001F600"));
    /* A character outside the BMP is a surrogate pair: two units. */
    CHECK(text != NULL && text[6] == 0xD83D && text[7] == 0xDE00 && text[8] == 0);
    CoTaskMemFree(text);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local_wide), S_OK);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, L"relative.bin"), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK(served_file_matches(local, "/data/3k/short", 3072));

    bstr = SysAllocString(L"BSTR");
    CHECK(bstr != NULL && SysStringLen(bstr) == 4 && same_wide(bstr, L"BSTR"));
    SysFreeString(bstr);
    bstr = SysAllocStringLen(L"BSTR", 2);
    CHECK(bstr != NULL && SysStringLen(bstr) == 2 && same_wide(bstr, L"BS"));
    SysFreeString(bstr);

    IBackgroundCopyJob_Release(job);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    free(url);
    free(local);
    free(local_wide);
    return check_summary("test_short_wchar");
}
