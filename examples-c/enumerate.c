/* enumerate.c: listing jobs and their files with the BITS enumerators.
 *
 *   enumerate URL DESTINATION
 *
 * Creates two suspended jobs (one with two files: URL to DESTINATION.1 and
 * DESTINATION.2, one with URL to DESTINATION.3), then walks the caller's jobs with
 * IEnumBackgroundCopyJobs (GetCount, Next in batches, Skip, Reset, Clone) and each job's
 * files with IEnumBackgroundCopyFiles, printing them. The jobs are cancelled at the end:
 * nothing is downloaded. Exits 0 when the enumerators saw every job (at least these two)
 * and every file.
 *
 * Build: cc -std=c11 enumerate.c -I../include -L../target/debug -lqmgr
 */
#define COBJMACROS
#include <bits.h>

#include <stdio.h>

#include "win32_compat.h"

#define BATCH 4

/* glibc: building each local name from the UTF-8 argument, then widening it. */
static WCHAR *numbered(const char *destination, int number)
{
    char name[4096];
    snprintf(name, sizeof name, "%s.%d", destination, number);
    return widen(name);
}

static HRESULT add_file(IBackgroundCopyJob *job, const WCHAR *url, const char *destination,
                        int number)
{
    WCHAR *local = numbered(destination, number);
    HRESULT hr = IBackgroundCopyJob_AddFile(job, url, local);
    free(local);
    return hr;
}

/* Prints one job and its files; returns the number of files, or -1 on failure. */
static int print_job(IBackgroundCopyJob *job)
{
    IEnumBackgroundCopyFiles *files = NULL;
    IBackgroundCopyFile *file = NULL;
    LPWSTR name = NULL;
    ULONG count = 0;
    int seen = 0;

    if (SUCCEEDED(IBackgroundCopyJob_GetDisplayName(job, &name))) {
        printf("job \"");
        print_wide(name); /* glibc: not wprintf(L"%s") */
        CoTaskMemFree(name);
    }
    if (FAILED(IBackgroundCopyJob_EnumFiles(job, &files))) {
        return -1;
    }
    IEnumBackgroundCopyFiles_GetCount(files, &count);
    printf("\": %u file(s)\n", (unsigned)count);
    /* Next with one element may leave pceltFetched NULL. */
    while (IEnumBackgroundCopyFiles_Next(files, 1, &file, NULL) == S_OK) {
        LPWSTR remote = NULL, local = NULL;
        if (SUCCEEDED(IBackgroundCopyFile_GetRemoteName(file, &remote)) &&
            SUCCEEDED(IBackgroundCopyFile_GetLocalName(file, &local))) {
            printf("  ");
            print_wide(remote); /* glibc: not wprintf(L"%s") */
            printf(" -> ");
            print_wide(local);
            printf("\n");
            seen++;
        }
        CoTaskMemFree(remote);
        CoTaskMemFree(local);
        IBackgroundCopyFile_Release(file);
    }
    IEnumBackgroundCopyFiles_Release(files);
    return seen;
}

int main(int argc, char **argv)
{
    IBackgroundCopyManager *manager = NULL;
    IBackgroundCopyJob *created[2] = {NULL, NULL};
    IEnumBackgroundCopyJobs *jobs = NULL, *copy = NULL;
    IBackgroundCopyJob *batch[BATCH];
    GUID id;
    ULONG count = 0, fetched = 0, i, copy_count = 0;
    WCHAR *url;
    HRESULT hr;
    int files_seen = 0, jobs_seen = 0, result = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: %s URL DESTINATION\n", argv[0]);
        return 2;
    }
    url = widen(argv[1]); /* glibc: main receives UTF-8, not wmain's wide strings. */

    hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (FAILED(hr)) {
        fprintf(stderr, "CoInitializeEx failed: 0x%08X\n", (unsigned)hr);
        free(url);
        return 1;
    }
    hr = CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                          &IID_IBackgroundCopyManager, (void **)&manager);
    if (FAILED(hr)) {
        fprintf(stderr, "CoCreateInstance failed: 0x%08X\n", (unsigned)hr);
        goto uninitialize;
    }
    if (FAILED(hr = IBackgroundCopyManager_CreateJob(manager, u"enumerate.c: two files",
                                                     BG_JOB_TYPE_DOWNLOAD, &id, &created[0])) ||
        FAILED(hr = add_file(created[0], url, argv[2], 1)) ||
        FAILED(hr = add_file(created[0], url, argv[2], 2)) ||
        FAILED(hr = IBackgroundCopyManager_CreateJob(manager, u"enumerate.c: one file",
                                                     BG_JOB_TYPE_DOWNLOAD, &id, &created[1])) ||
        FAILED(hr = add_file(created[1], url, argv[2], 3))) {
        fprintf(stderr, "cannot set up the jobs: 0x%08X\n", (unsigned)hr);
        goto cancel;
    }

    if (FAILED(hr = IBackgroundCopyManager_EnumJobs(manager, 0, &jobs))) {
        fprintf(stderr, "EnumJobs failed: 0x%08X\n", (unsigned)hr);
        goto cancel;
    }
    IEnumBackgroundCopyJobs_GetCount(jobs, &count);
    printf("%u job(s) in the queue\n", (unsigned)count);

    /* A clone has the same snapshot and position, and moves on its own. */
    IEnumBackgroundCopyJobs_Skip(jobs, 1);
    IEnumBackgroundCopyJobs_Clone(jobs, &copy);
    IEnumBackgroundCopyJobs_Reset(jobs);
    if (copy != NULL) {
        while (IEnumBackgroundCopyJobs_Next(copy, 1, batch, NULL) == S_OK) {
            copy_count++;
            IBackgroundCopyJob_Release(batch[0]);
        }
        IEnumBackgroundCopyJobs_Release(copy);
    }

    do {
        hr = IEnumBackgroundCopyJobs_Next(jobs, BATCH, batch, &fetched);
        for (i = 0; i < fetched; i++) {
            int files = print_job(batch[i]);
            if (files >= 0) {
                files_seen += files;
                jobs_seen++;
            }
            IBackgroundCopyJob_Release(batch[i]);
        }
    } while (hr == S_OK);
    printf("%d job(s) and %d file(s) listed; the clone after Skip(1) saw %u job(s)\n",
           jobs_seen, files_seen, (unsigned)copy_count);
    /* Other jobs of the caller may be in the queue too. */
    if (hr == S_FALSE && (ULONG)jobs_seen == count && count >= 2 && files_seen >= 3 &&
        copy_count == count - 1) {
        result = 0;
    }
    IEnumBackgroundCopyJobs_Release(jobs);

cancel:
    for (i = 0; i < 2; i++) {
        if (created[i] != NULL) {
            IBackgroundCopyJob_Cancel(created[i]);
            IBackgroundCopyJob_Release(created[i]);
        }
    }
    IBackgroundCopyManager_Release(manager);
uninitialize:
    CoUninitialize();
    free(url);
    return result;
}
