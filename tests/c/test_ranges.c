/* test_ranges.c: IBackgroundCopyJob3::AddFileWithRanges and IBackgroundCopyFile2::GetFileRanges
 * through qmgrd.
 *
 * - The argument errors Microsoft documents: no ranges E_INVALIDARG, BG_LENGTH_TO_EOF as
 *   an offset BG_E_INVALID_RANGE, duplicate or overlapping ranges BG_E_OVERLAPPING_RANGES,
 *   a remote name that is not http(s) E_INVALIDARG; a refused file is not added.
 * - 100-199, 900-999 and 400-499 make a 300-byte file in that order, and a range of
 *   BG_LENGTH_TO_EOF runs to the end; the bytes are compared with the same server file
 *   downloaded whole in the same job. Progress totals are the ranges' lengths.
 * - GetFileRanges: S_FALSE, 0 and NULL for a whole file; the ranges, CoTaskMemAlloc'ed,
 *   for a ranged one.
 * - After Resume: a range beyond the end of the file puts the job in ERROR with
 *   BG_E_INVALID_RANGE, a server that ignores Range with BG_E_INSUFFICIENT_RANGE_SUPPORT.
 * - A transfer cut in the middle of a range resumes and the file's bytes are right.
 */
#include "support.h"

#include <stdio.h>
#include <unistd.h>

static IBackgroundCopyJob3 *as_job3(IBackgroundCopyJob *job)
{
    IBackgroundCopyJob3 *job3 = NULL;
    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob3,
                                                    (void **)&job3),
                  S_OK)) {
        exit(check_summary("test_ranges"));
    }
    return job3;
}

/* AddFileWithRanges of `count` ranges of the server's `url_path` into the work dir. */
static HRESULT add_ranged(IBackgroundCopyJob3 *job3, const TestPlace *place,
                          const char *url_path, const char *local, DWORD count,
                          BG_FILE_RANGE *ranges)
{
    WCHAR *url = url_of(place, url_path);
    WCHAR *path = work_path_wide(place, local);
    HRESULT hr = IBackgroundCopyJob3_AddFileWithRanges(job3, url, path, count, ranges);
    free(url);
    free(path);
    return hr;
}

/* File `index` of the job, through EnumFiles. */
static IBackgroundCopyFile2 *file_at(IBackgroundCopyJob *job, ULONG index)
{
    IEnumBackgroundCopyFiles *files = NULL;
    IBackgroundCopyFile *file = NULL;
    IBackgroundCopyFile2 *file2 = NULL;
    if (!CHECK_HR(IBackgroundCopyJob_EnumFiles(job, &files), S_OK)) {
        return NULL;
    }
    if (index > 0) {
        CHECK_HR(IEnumBackgroundCopyFiles_Skip(files, index), S_OK);
    }
    if (CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 1, &file, NULL), S_OK)) {
        CHECK_HR(IBackgroundCopyFile_QueryInterface(file, &IID_IBackgroundCopyFile2,
                                                    (void **)&file2),
                 S_OK);
        IBackgroundCopyFile_Release(file);
    }
    IEnumBackgroundCopyFiles_Release(files);
    return file2;
}

/* The job's error code, or S_OK when it has none. */
static HRESULT job_error_code(IBackgroundCopyJob *job)
{
    IBackgroundCopyError *error = NULL;
    BG_ERROR_CONTEXT context = BG_ERROR_CONTEXT_NONE;
    HRESULT code = S_OK;
    if (SUCCEEDED(IBackgroundCopyJob_GetError(job, &error))) {
        CHECK_HR(IBackgroundCopyError_GetError(error, &context, &code), S_OK);
        IBackgroundCopyError_Release(error);
    }
    return code;
}

static void argument_errors(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job(manager, u"ranges refused");
    IBackgroundCopyJob3 *job3 = as_job3(job);
    BG_FILE_RANGE from_eof[] = {{BG_LENGTH_TO_EOF, 10}};
    BG_FILE_RANGE overlapping[] = {{100, 100}, {150, 10}};
    BG_FILE_RANGE duplicate[] = {{100, 5}, {100, 5}};
    BG_FILE_RANGE good[] = {{0, 10}};
    BG_JOB_PROGRESS progress;
    WCHAR *local = work_path_wide(place, "refused.bin");

    CHECK_HR(add_ranged(job3, place, "/data/1000/refused", "refused.bin", 0, good),
             E_INVALIDARG);
    CHECK_HR(add_ranged(job3, place, "/data/1000/refused", "refused.bin", 1, from_eof),
             BG_E_INVALID_RANGE);
    CHECK_HR(add_ranged(job3, place, "/data/1000/refused", "refused.bin", 2, overlapping),
             BG_E_OVERLAPPING_RANGES);
    CHECK_HR(add_ranged(job3, place, "/data/1000/refused", "refused.bin", 2, duplicate),
             BG_E_OVERLAPPING_RANGES);
    CHECK_HR(IBackgroundCopyJob3_AddFileWithRanges(job3, u"ftp://127.0.0.1/f", local, 1, good),
             E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob3_AddFileWithRanges(job3, NULL, local, 1, good), E_INVALIDARG);
    CHECK_HR(add_ranged(job3, place, "/data/1000/refused", "refused.bin", 1, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyJob_GetProgress(job, &progress), S_OK);
    CHECK(progress.FilesTotal == 0);

    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob3_Release(job3);
    IBackgroundCopyJob_Release(job);
    free(local);
}

static void check_file_ranges(IBackgroundCopyJob *job)
{
    IBackgroundCopyFile2 *whole = file_at(job, 0), *ranged = file_at(job, 1),
                         *tail = file_at(job, 2);
    BG_FILE_RANGE *ranges = (BG_FILE_RANGE *)(void *)&ranges;
    BG_FILE_PROGRESS progress;
    DWORD count = 7;

    if (whole == NULL || ranged == NULL || tail == NULL) {
        CHECK(!"the job's three files");
    }
    if (whole != NULL) {
        CHECK_HR(IBackgroundCopyFile2_GetFileRanges(whole, &count, &ranges), S_FALSE);
        CHECK(count == 0 && ranges == NULL);
        IBackgroundCopyFile2_Release(whole);
    }
    if (ranged != NULL) {
        if (CHECK_HR(IBackgroundCopyFile2_GetFileRanges(ranged, &count, &ranges), S_OK)) {
            CHECK(count == 3 && ranges != NULL);
            if (count == 3 && ranges != NULL) {
                CHECK(ranges[0].InitialOffset == 100 && ranges[0].Length == 100);
                CHECK(ranges[1].InitialOffset == 900 && ranges[1].Length == 100);
                CHECK(ranges[2].InitialOffset == 400 && ranges[2].Length == 100);
            }
            CoTaskMemFree(ranges);
        }
        CHECK_HR(IBackgroundCopyFile2_GetFileRanges(ranged, NULL, &ranges), E_POINTER);
        CHECK_HR(IBackgroundCopyFile2_GetFileRanges(ranged, &count, NULL), E_POINTER);
        CHECK_HR(IBackgroundCopyFile2_GetProgress(ranged, &progress), S_OK);
        CHECK(progress.BytesTotal == 300);
        IBackgroundCopyFile2_Release(ranged);
    }
    if (tail != NULL) {
        if (CHECK_HR(IBackgroundCopyFile2_GetFileRanges(tail, &count, &ranges), S_OK)) {
            CHECK(count == 1 && ranges != NULL);
            if (count == 1 && ranges != NULL) {
                CHECK(ranges[0].InitialOffset == 1500 && ranges[0].Length == BG_LENGTH_TO_EOF);
            }
            CoTaskMemFree(ranges);
        }
        CHECK_HR(IBackgroundCopyFile2_GetProgress(tail, &progress), S_OK);
        CHECK(progress.BytesTotal == BG_SIZE_UNKNOWN);
        IBackgroundCopyFile2_Release(tail);
    }
}

/* Whether `got` (of `got_size` bytes) is `whole`'s bytes of `ranges`, in order. */
static int is_ranges_of(const unsigned char *got, long long got_size, const unsigned char *whole,
                        long long whole_size, const BG_FILE_RANGE *ranges, size_t count)
{
    long long at = 0;
    size_t i;
    if (got == NULL || whole == NULL) {
        return 0;
    }
    for (i = 0; i < count; i++) {
        long long length = ranges[i].Length == BG_LENGTH_TO_EOF
                               ? whole_size - (long long)ranges[i].InitialOffset
                               : (long long)ranges[i].Length;
        if (at + length > got_size ||
            memcmp(got + at, whole + ranges[i].InitialOffset, (size_t)length) != 0) {
            return 0;
        }
        at += length;
    }
    return at == got_size;
}

static void ranged_download(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, "/data/2000/ranged", "whole.bin");
    IBackgroundCopyJob3 *job3 = as_job3(job);
    BG_FILE_RANGE ranges[] = {{100, 100}, {900, 100}, {400, 100}};
    BG_FILE_RANGE to_end[] = {{1500, BG_LENGTH_TO_EOF}};
    BG_JOB_PROGRESS progress;
    char *whole_path = work_path(place, "whole.bin");
    char *ranged_path = work_path(place, "ranged.bin");
    char *tail_path = work_path(place, "tail.bin");
    unsigned char *whole = NULL, *ranged = NULL, *tail = NULL;
    long long whole_size = 0, ranged_size = 0, tail_size = 0;

    CHECK_HR(add_ranged(job3, place, "/data/2000/ranged", "ranged.bin", 3, ranges), S_OK);
    CHECK_HR(add_ranged(job3, place, "/data/2000/ranged", "tail.bin", 1, to_end), S_OK);
    check_file_ranges(job);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob_GetProgress(job, &progress), S_OK);
    CHECK(progress.FilesTotal == 3 && progress.FilesTransferred == 3);
    CHECK(progress.BytesTotal == 2000 + 300 + 500);
    CHECK(progress.BytesTransferred == progress.BytesTotal);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);

    whole = read_whole(whole_path, &whole_size);
    ranged = read_whole(ranged_path, &ranged_size);
    tail = read_whole(tail_path, &tail_size);
    CHECK(whole_size == 2000 && ranged_size == 300 && tail_size == 500);
    CHECK(is_ranges_of(ranged, ranged_size, whole, whole_size, ranges, 3));
    CHECK(is_ranges_of(tail, tail_size, whole, whole_size, to_end, 1));

    free(whole);
    free(ranged);
    free(tail);
    free(whole_path);
    free(ranged_path);
    free(tail_path);
    IBackgroundCopyJob3_Release(job3);
    IBackgroundCopyJob_Release(job);
}

/* A job of one ranged file that must end in ERROR with `expected`. */
static void fails_after_resume(IBackgroundCopyManager *manager, const TestPlace *place,
                               const char *url_path, BG_FILE_RANGE range, HRESULT expected)
{
    IBackgroundCopyJob *job = new_job(manager, u"ranges that fail");
    IBackgroundCopyJob3 *job3 = as_job3(job);

    CHECK_HR(add_ranged(job3, place, url_path, "failing.bin", 1, &range), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_ERROR, 60) == BG_JOB_STATE_ERROR);
    CHECK_HR(job_error_code(job), expected);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob3_Release(job3);
    IBackgroundCopyJob_Release(job);
}

static void resumed_within_the_ranges(IBackgroundCopyManager *manager, const TestPlace *place)
{
    /* The whole file first, from the same path (the server's bytes depend on the path, not
     * on the query), for comparison. drop_once cuts only the first response on a path, and
     * the valgrind run shares the server with the plain one: each run takes a path of its
     * own. */
    char path[64], cut_url[96];
    IBackgroundCopyJob *job = NULL;
    IBackgroundCopyJob3 *job3 = NULL;
    BG_FILE_RANGE ranges[] = {{60000, 20000}, {1000, 30000}};
    BG_JOB_PROGRESS progress;
    char *whole_path = work_path(place, "uncut.bin");
    char *cut_path = work_path(place, "cut.bin");
    unsigned char *whole = NULL, *cut = NULL;
    long long whole_size = 0, cut_size = 0;

    snprintf(path, sizeof path, "/data/100000/cut-%ld", (long)getpid());
    snprintf(cut_url, sizeof cut_url, "%s?drop_after=5000&drop_once=1", path);
    job = new_job_with_file(manager, place, path, "uncut.bin");
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    IBackgroundCopyJob_Release(job);

    job = new_job(manager, u"ranges cut and resumed");
    job3 = as_job3(job);
    CHECK_HR(add_ranged(job3, place, cut_url, "cut.bin",
                        2, ranges),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSIENT_ERROR, 60) ==
          BG_JOB_STATE_TRANSIENT_ERROR);
    CHECK_HR(IBackgroundCopyJob_GetProgress(job, &progress), S_OK);
    CHECK(progress.BytesTotal == 50000 && progress.BytesTransferred < 50000);
    /* Resume skips the rest of the retry delay. */
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);

    whole = read_whole(whole_path, &whole_size);
    cut = read_whole(cut_path, &cut_size);
    CHECK(whole_size == 100000 && cut_size == 50000);
    CHECK(is_ranges_of(cut, cut_size, whole, whole_size, ranges, 2));

    free(whole);
    free(cut);
    free(whole_path);
    free(cut_path);
    IBackgroundCopyJob3_Release(job3);
    IBackgroundCopyJob_Release(job);
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyManager *manager = NULL;
    BG_FILE_RANGE beyond_end = {2000, 10};
    BG_FILE_RANGE some = {10, 10};

    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    argument_errors(manager, &place);
    ranged_download(manager, &place);
    fails_after_resume(manager, &place, "/data/1000/beyond", beyond_end, BG_E_INVALID_RANGE);
    fails_after_resume(manager, &place, "/data/1000/ignored?ignore_range=1", some,
                       BG_E_INSUFFICIENT_RANGE_SUPPORT);
    resumed_within_the_ranges(manager, &place);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_ranges");
}
