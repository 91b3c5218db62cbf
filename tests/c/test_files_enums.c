/* test_files_enums.c: IBackgroundCopyFile … IBackgroundCopyFile6, and the semantics of
 * IEnumBackgroundCopyJobs and IEnumBackgroundCopyFiles.
 *
 * - Files: names, progress before and after the transfer, ranges, SetRemoteName,
 *   temporary name, validation state, peer statistics, properties (E_NOTIMPL and
 *   BG_E_READ_ONLY_PROPERTY as documented), File6 answered by the same object (its
 *   methods are tested in test_on_demand.c).
 * - Enumerators: a snapshot (a job created later is not in it), Next with S_OK/S_FALSE
 *   and the fetched count, NULL pceltFetched only for one element, Skip past the end,
 *   Reset, Clone with its own cursor, GetCount, NULL pointers.
 */
#include "support.h"

static void file_before_transfer(IBackgroundCopyFile *file, const TestPlace *place)
{
    IBackgroundCopyFile5 *file5 = NULL;
    void *file6 = NULL;
    LPWSTR text = NULL;
    BG_FILE_PROGRESS progress;
    BG_FILE_RANGE *ranges = (BG_FILE_RANGE *)(void *)&ranges;
    BITS_FILE_PROPERTY_VALUE value;
    DWORD range_count = 7;
    BOOL flag = TRUE;
    UINT64 from_origin = 1, from_peers = 1;
    char *expected_local = work_path(place, "file.bin");
    WCHAR *moved = url_of(place, "/data/16k/moved");

    CHECK_HR(IBackgroundCopyFile_GetLocalName(file, &text), S_OK);
    CHECK(wide_is(text, expected_local));
    CoTaskMemFree(text);
    CHECK_HR(IBackgroundCopyFile_GetRemoteName(file, &text), S_OK);
    CHECK(text != NULL && text[0] == 'h');
    CoTaskMemFree(text);
    CHECK_HR(IBackgroundCopyFile_GetProgress(file, &progress), S_OK);
    CHECK(progress.BytesTotal == BG_SIZE_UNKNOWN && progress.BytesTransferred == 0);
    CHECK(progress.Completed == FALSE);
    CHECK_HR(IBackgroundCopyFile_GetProgress(file, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyFile_GetLocalName(file, NULL), E_POINTER);

    if (!CHECK_HR(IBackgroundCopyFile_QueryInterface(file, &IID_IBackgroundCopyFile5,
                                                     (void **)&file5),
                  S_OK)) {
        return;
    }
    /* File2 */
    CHECK_HR(IBackgroundCopyFile5_GetFileRanges(file5, &range_count, &ranges), S_FALSE);
    CHECK(range_count == 0 && ranges == NULL);
    CHECK_HR(IBackgroundCopyFile5_SetRemoteName(file5, moved), S_OK);
    CHECK_HR(IBackgroundCopyFile5_GetRemoteName(file5, &text), S_OK);
    CHECK(text != NULL && wide_is(text + strlen(place->base_url), "/data/16k/moved"));
    CoTaskMemFree(text);
    CHECK_HR(IBackgroundCopyFile5_SetRemoteName(file5, u"gopher://x.invalid/"), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyFile5_SetRemoteName(file5, NULL), E_INVALIDARG);
    /* File3 */
    CHECK_HR(IBackgroundCopyFile5_GetTemporaryName(file5, &text), S_OK);
    CHECK(text != NULL);
    CoTaskMemFree(text);
    CHECK_HR(IBackgroundCopyFile5_GetValidationState(file5, &flag), S_OK);
    CHECK(flag == FALSE);
    /* Nothing to judge before the file is transferred (test_validation.c has the rest). */
    CHECK_HR(IBackgroundCopyFile5_SetValidationState(file5, TRUE), E_PENDING);
    CHECK_HR(IBackgroundCopyFile5_GetValidationState(file5, &flag), S_OK);
    CHECK(flag == FALSE);
    CHECK_HR(IBackgroundCopyFile5_IsDownloadedFromPeer(file5, &flag), S_OK);
    CHECK(flag == FALSE);
    /* File4 */
    CHECK_HR(IBackgroundCopyFile5_GetPeerDownloadStats(file5, &from_origin, &from_peers), S_OK);
    CHECK(from_origin == 0 && from_peers == 0);
    CHECK_HR(IBackgroundCopyFile5_GetPeerDownloadStats(file5, NULL, &from_peers), E_POINTER);
    /* File5: response headers are read-only, and empty before any response. */
    value.String = NULL;
    CHECK_HR(IBackgroundCopyFile5_SetProperty(file5, BITS_FILE_PROPERTY_ID_HTTP_RESPONSE_HEADERS,
                                              value),
             BG_E_READ_ONLY_PROPERTY);
    if (CHECK_HR(IBackgroundCopyFile5_GetProperty(
                     file5, BITS_FILE_PROPERTY_ID_HTTP_RESPONSE_HEADERS, &value),
                 S_OK)) {
        CHECK(value.String != NULL && value.String[0] == 0);
        CoTaskMemFree(value.String);
    }
    CHECK_HR(IBackgroundCopyFile5_GetProperty(file5, BITS_FILE_PROPERTY_ID_HTTP_RESPONSE_HEADERS,
                                              NULL),
             E_POINTER);
    CHECK_HR(IBackgroundCopyFile5_GetProperty(file5, 42, &value), BG_E_UNKNOWN_PROPERTY_ID);
    /* File6 (BITS 10.1) is the same object. */
    if (CHECK_HR(IBackgroundCopyFile5_QueryInterface(file5, &IID_IBackgroundCopyFile6, &file6),
                 S_OK)) {
        CHECK(file6 == (void *)file5);
        IBackgroundCopyFile6_Release((IBackgroundCopyFile6 *)file6);
    }
    IBackgroundCopyFile5_Release(file5);
    free(expected_local);
    free(moved);
}

/* Whether the UTF-16 `text` contains the ASCII `part`. */
static int wide_contains(const WCHAR *text, const char *part)
{
    size_t length = strlen(part), i, j;
    for (i = 0; text != NULL && text[i] != 0; i++) {
        for (j = 0; j < length && text[i + j] == (WCHAR)(unsigned char)part[j]; j++) {
        }
        if (j == length) {
            return 1;
        }
    }
    return 0;
}

static void files_of_a_job(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, "/data/32k/file", "file.bin");
    IEnumBackgroundCopyFiles *files = NULL;
    IBackgroundCopyFile *file = NULL, *after = NULL;
    BG_FILE_PROGRESS progress;
    LPWSTR text = NULL;
    UINT64 from_origin = 0, from_peers = 1;
    IBackgroundCopyFile3 *file3 = NULL;
    IBackgroundCopyFile5 *file5 = NULL;
    BITS_FILE_PROPERTY_VALUE value;

    CHECK_HR(IBackgroundCopyJob_EnumFiles(job, &files), S_OK);
    if (!CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 1, &file, NULL), S_OK)) {
        return;
    }
    file_before_transfer(file, place);

    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    /* A file object shows the file now, not when it was enumerated. */
    CHECK_HR(IBackgroundCopyFile_GetProgress(file, &progress), S_OK);
    CHECK(progress.BytesTotal == 16384 && progress.BytesTransferred == 16384);
    CHECK(progress.Completed == TRUE);
    if (CHECK_HR(IBackgroundCopyFile_QueryInterface(file, &IID_IBackgroundCopyFile3,
                                                    (void **)&file3),
                 S_OK)) {
        CHECK_HR(IBackgroundCopyFile3_GetTemporaryName(file3, &text), S_OK);
        CHECK(text != NULL && text[0] == '/');
        CoTaskMemFree(text);
        CHECK_HR(IBackgroundCopyFile3_QueryInterface(file3, &IID_IBackgroundCopyFile4,
                                                     (void **)&after),
                 S_OK);
        CHECK_HR(IBackgroundCopyFile4_GetPeerDownloadStats((IBackgroundCopyFile4 *)after,
                                                          &from_origin, &from_peers),
                 S_OK);
        CHECK(from_origin == 16384 && from_peers == 0);
        IBackgroundCopyFile_Release(after);
        /* The head of the response that brought the file, as the server sent it. */
        if (CHECK_HR(IBackgroundCopyFile3_QueryInterface(file3, &IID_IBackgroundCopyFile5,
                                                         (void **)&file5),
                     S_OK)) {
            memset(&value, 0, sizeof value);
            if (CHECK_HR(IBackgroundCopyFile5_GetProperty(
                             file5, BITS_FILE_PROPERTY_ID_HTTP_RESPONSE_HEADERS, &value),
                         S_OK)) {
                CHECK(wide_contains(value.String, "HTTP/1.1 200"));
                CHECK(wide_contains(value.String, "Content-Length: 16384"));
                CoTaskMemFree(value.String);
            }
            IBackgroundCopyFile5_Release(file5);
        }
        /* Renaming the remote file of a transferred job is refused. */
        CHECK_HR(IBackgroundCopyFile3_SetRemoteName(file3, u"http://127.0.0.1:1/x"),
                 BG_E_INVALID_STATE);
        IBackgroundCopyFile3_Release(file3);
    }
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK_HR(IBackgroundCopyFile_GetLocalName(file, &text), S_OK);
    CHECK(text != NULL);
    CoTaskMemFree(text);
    IBackgroundCopyFile_Release(file);
    IEnumBackgroundCopyFiles_Release(files);
    IBackgroundCopyJob_Release(job);
}

static void file_enumerator(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job(manager, u"three files");
    IEnumBackgroundCopyFiles *files = NULL, *copy = NULL;
    IBackgroundCopyFile *batch[4] = {NULL, NULL, NULL, NULL};
    WCHAR *url = url_of(place, "/data/1k/enum");
    ULONG fetched = 99, count = 0, i;
    LPWSTR text = NULL;
    const char *names[] = {"one.bin", "two.bin", "three.bin"};

    for (i = 0; i < 3; i++) {
        WCHAR *local = work_path_wide(place, names[i]);
        CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local), S_OK);
        free(local);
    }
    CHECK_HR(IBackgroundCopyJob_EnumFiles(job, &files), S_OK);
    CHECK_HR(IEnumBackgroundCopyFiles_GetCount(files, &count), S_OK);
    CHECK(count == 3);
    CHECK_HR(IEnumBackgroundCopyFiles_GetCount(files, NULL), E_POINTER);

    /* Two, then the one left (S_FALSE), then none. */
    CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 2, batch, &fetched), S_OK);
    CHECK(fetched == 2);
    CHECK_HR(IBackgroundCopyFile_GetLocalName(batch[1], &text), S_OK);
    CHECK(text != NULL && wide_is(text + strlen(place->work_dir) + 1, "two.bin"));
    CoTaskMemFree(text);
    IBackgroundCopyFile_Release(batch[0]);
    IBackgroundCopyFile_Release(batch[1]);
    CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 4, batch, &fetched), S_FALSE);
    CHECK(fetched == 1);
    IBackgroundCopyFile_Release(batch[0]);
    CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 1, batch, &fetched), S_FALSE);
    CHECK(fetched == 0);

    /* pceltFetched may be NULL only for one element; rgelt must be there. */
    CHECK_HR(IEnumBackgroundCopyFiles_Reset(files), S_OK);
    CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 2, batch, NULL), E_INVALIDARG);
    CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 1, NULL, &fetched), E_POINTER);

    /* Skip, and a clone that moves on its own. */
    CHECK_HR(IEnumBackgroundCopyFiles_Skip(files, 2), S_OK);
    CHECK_HR(IEnumBackgroundCopyFiles_Clone(files, &copy), S_OK);
    CHECK_HR(IEnumBackgroundCopyFiles_Skip(files, 5), S_FALSE);
    CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 1, batch, &fetched), S_FALSE);
    if (CHECK_HR(IEnumBackgroundCopyFiles_Next(copy, 1, batch, NULL), S_OK)) {
        CHECK_HR(IBackgroundCopyFile_GetLocalName(batch[0], &text), S_OK);
        CHECK(text != NULL && wide_is(text + strlen(place->work_dir) + 1, "three.bin"));
        CoTaskMemFree(text);
        IBackgroundCopyFile_Release(batch[0]);
    }
    CHECK_HR(IEnumBackgroundCopyFiles_GetCount(copy, &count), S_OK);
    CHECK(count == 3);
    CHECK_HR(IEnumBackgroundCopyFiles_Clone(files, NULL), E_POINTER);
    IEnumBackgroundCopyFiles_Release(copy);
    IEnumBackgroundCopyFiles_Release(files);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob_Release(job);
    free(url);
}

static void job_enumerator(IBackgroundCopyManager *manager)
{
    IBackgroundCopyJob *jobs[3];
    IBackgroundCopyJob *batch[4] = {NULL, NULL, NULL, NULL};
    IBackgroundCopyJob *late;
    IEnumBackgroundCopyJobs *all = NULL, *copy = NULL;
    GUID ids[3], seen;
    ULONG count = 0, fetched = 0, i, j, matches = 0;

    for (i = 0; i < 3; i++) {
        jobs[i] = new_job(manager, u"enumerated");
        IBackgroundCopyJob_GetId(jobs[i], &ids[i]);
    }
    CHECK_HR(IBackgroundCopyManager_EnumJobs(manager, 0, &all), S_OK);
    late = new_job(manager, u"created after the snapshot");
    CHECK_HR(IEnumBackgroundCopyJobs_GetCount(all, &count), S_OK);
    CHECK(count == 3);

    CHECK_HR(IEnumBackgroundCopyJobs_Next(all, 4, batch, &fetched), S_FALSE);
    CHECK(fetched == 3);
    for (i = 0; i < fetched; i++) {
        CHECK_HR(IBackgroundCopyJob_GetId(batch[i], &seen), S_OK);
        for (j = 0; j < 3; j++) {
            matches += IsEqualGUID(&seen, &ids[j]) ? 1 : 0;
        }
        IBackgroundCopyJob_Release(batch[i]);
    }
    CHECK(matches == 3);

    CHECK_HR(IEnumBackgroundCopyJobs_Reset(all), S_OK);
    CHECK_HR(IEnumBackgroundCopyJobs_Skip(all, 1), S_OK);
    CHECK_HR(IEnumBackgroundCopyJobs_Clone(all, &copy), S_OK);
    CHECK_HR(IEnumBackgroundCopyJobs_Skip(all, 2), S_OK);
    CHECK_HR(IEnumBackgroundCopyJobs_Skip(all, 1), S_FALSE);
    CHECK_HR(IEnumBackgroundCopyJobs_Next(copy, 2, batch, &fetched), S_OK);
    CHECK(fetched == 2);
    IBackgroundCopyJob_Release(batch[0]);
    IBackgroundCopyJob_Release(batch[1]);
    CHECK_HR(IEnumBackgroundCopyJobs_Next(copy, 3, batch, NULL), E_INVALIDARG);
    CHECK_HR(IEnumBackgroundCopyJobs_Next(copy, 0, batch, &fetched), S_OK);
    CHECK(fetched == 0);
    IEnumBackgroundCopyJobs_Release(copy);
    IEnumBackgroundCopyJobs_Release(all);

    for (i = 0; i < 3; i++) {
        IBackgroundCopyJob_Cancel(jobs[i]);
        IBackgroundCopyJob_Release(jobs[i]);
    }
    IBackgroundCopyJob_Cancel(late);
    IBackgroundCopyJob_Release(late);
    /* Cancelled jobs leave the queue. */
    CHECK_HR(IBackgroundCopyManager_EnumJobs(manager, 0, &all), S_OK);
    CHECK_HR(IEnumBackgroundCopyJobs_GetCount(all, &count), S_OK);
    CHECK(count == 0);
    IEnumBackgroundCopyJobs_Release(all);
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyManager *manager;

    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    job_enumerator(manager);
    file_enumerator(manager, &place);
    files_of_a_job(manager, &place);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_files_enums");
}
