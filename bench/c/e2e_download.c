/*
 * The C program's path for `cargo xtask bench e2e`: download a list of files through
 * libqmgr and qmgrd as a BITS program would, and exit when every file is in place.
 *
 *   e2e_download LIST FILES_PER_JOB
 *
 * LIST holds lines of `URL PATH` (ASCII, no spaces inside either). The files are split into
 * as few jobs as FILES_PER_JOB (the service's max_files_per_job) allows. Each job is
 * created, set to FOREGROUND priority (the program waits for it, as `qmgr transfer` does),
 * given its files with one AddFileSet, and resumed; then the jobs' states are polled every
 * POLL_MS until each is TRANSFERRED, which Complete acknowledges (moving the files into
 * place). A job in ERROR, or one that ends elsewhere, makes the program print the error,
 * cancel the jobs and exit 1.
 */
#define _POSIX_C_SOURCE 199309L /* nanosleep under -std=c11 */
#define COBJMACROS
#include <bits.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Often enough that the wait adds little to a transfer of a few hundred milliseconds,
 * rarely enough that polling costs the service next to nothing. */
enum { POLL_MS = 10 };

static void sleep_ms(long ms)
{
    struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&pause, NULL);
}

/* An ASCII string as UTF-16; NULL (with a message) for anything else. */
static WCHAR *widen_ascii(const char *text, size_t length)
{
    WCHAR *wide = malloc((length + 1) * sizeof *wide);
    if (wide == NULL) {
        fprintf(stderr, "out of memory\n");
        return NULL;
    }
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x80) {
            fprintf(stderr, "not ASCII: %.*s\n", (int)length, text);
            free(wide);
            return NULL;
        }
        wide[i] = c;
    }
    wide[length] = 0;
    return wide;
}

/* Reads LIST into `files` (grown as needed); the number of files, or -1 on error. */
static long read_list(const char *path, BG_FILE_INFO **files)
{
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        perror(path);
        return -1;
    }
    long count = 0, capacity = 0;
    char line[4096];
    while (fgets(line, sizeof line, in) != NULL) {
        size_t length = strcspn(line, "\r\n");
        if (length == 0)
            continue;
        line[length] = 0;
        char *space = strchr(line, ' ');
        if (space == NULL || strchr(space + 1, ' ') != NULL) {
            fprintf(stderr, "%s: not a `URL PATH` line: %s\n", path, line);
            fclose(in);
            return -1;
        }
        if (count == capacity) {
            capacity = capacity == 0 ? 1024 : capacity * 2;
            BG_FILE_INFO *grown = realloc(*files, (size_t)capacity * sizeof **files);
            if (grown == NULL) {
                fprintf(stderr, "out of memory\n");
                fclose(in);
                return -1;
            }
            *files = grown;
        }
        BG_FILE_INFO *file = &(*files)[count];
        file->RemoteName = widen_ascii(line, (size_t)(space - line));
        file->LocalName = widen_ascii(space + 1, strlen(space + 1));
        if (file->RemoteName == NULL || file->LocalName == NULL) {
            fclose(in);
            return -1;
        }
        count++;
    }
    fclose(in);
    return count;
}

static void print_job_error(IBackgroundCopyJob *job)
{
    IBackgroundCopyError *error = NULL;
    BG_ERROR_CONTEXT context;
    HRESULT code;
    if (FAILED(IBackgroundCopyJob_GetError(job, &error))) {
        fprintf(stderr, "a job failed without an error to show\n");
        return;
    }
    IBackgroundCopyError_GetError(error, &context, &code);
    fprintf(stderr, "a job failed: error 0x%08X in context %u\n", (unsigned)code, (unsigned)context);
    IBackgroundCopyError_Release(error);
}

#define CHECK(call)                                                              \
    do {                                                                         \
        HRESULT hr_ = (call);                                                    \
        if (FAILED(hr_)) {                                                       \
            fprintf(stderr, "%s failed: 0x%08X\n", #call, (unsigned)hr_);        \
            goto fail;                                                           \
        }                                                                        \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: e2e_download LIST FILES_PER_JOB\n");
        return 2;
    }
    const long per_job = strtol(argv[2], NULL, 10);
    if (per_job < 1) {
        fprintf(stderr, "FILES_PER_JOB must be positive\n");
        return 2;
    }
    BG_FILE_INFO *files = NULL;
    const long count = read_list(argv[1], &files);
    if (count < 1) {
        fprintf(stderr, "%s: no files to download\n", argv[1]);
        return 1;
    }
    const long job_count = (count + per_job - 1) / per_job;
    IBackgroundCopyJob **jobs = calloc((size_t)job_count, sizeof *jobs);
    int *done = calloc((size_t)job_count, sizeof *done);
    if (jobs == NULL || done == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }

    int result = 1;
    IBackgroundCopyManager *manager = NULL;
    CHECK(CoInitializeEx(NULL, COINIT_MULTITHREADED));
    CHECK(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                           &IID_IBackgroundCopyManager, (void **)&manager));
    for (long j = 0; j < job_count; j++) {
        GUID id;
        long first = j * per_job;
        long in_job = count - first < per_job ? count - first : per_job;
        CHECK(IBackgroundCopyManager_CreateJob(manager, u"e2e_download", BG_JOB_TYPE_DOWNLOAD, &id,
                                               &jobs[j]));
        CHECK(IBackgroundCopyJob_SetPriority(jobs[j], BG_JOB_PRIORITY_FOREGROUND));
        CHECK(IBackgroundCopyJob_AddFileSet(jobs[j], (ULONG)in_job, &files[first]));
        CHECK(IBackgroundCopyJob_Resume(jobs[j]));
    }

    long remaining = job_count;
    while (remaining > 0) {
        sleep_ms(POLL_MS);
        for (long j = 0; j < job_count; j++) {
            if (done[j])
                continue;
            BG_JOB_STATE state;
            CHECK(IBackgroundCopyJob_GetState(jobs[j], &state));
            if (state == BG_JOB_STATE_TRANSFERRED) {
                CHECK(IBackgroundCopyJob_Complete(jobs[j]));
                done[j] = 1;
                remaining--;
            } else if (state == BG_JOB_STATE_ERROR) {
                print_job_error(jobs[j]);
                goto fail;
            } else if (state == BG_JOB_STATE_CANCELLED || state == BG_JOB_STATE_ACKNOWLEDGED) {
                fprintf(stderr, "a job ended elsewhere (state %u)\n", (unsigned)state);
                goto fail;
            }
        }
    }
    result = 0;

fail:
    for (long j = 0; j < job_count; j++) {
        if (jobs[j] == NULL)
            continue;
        if (result != 0 && !done[j])
            IBackgroundCopyJob_Cancel(jobs[j]);
        IBackgroundCopyJob_Release(jobs[j]);
    }
    if (manager != NULL)
        IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    for (long i = 0; i < count; i++) {
        free(files[i].RemoteName);
        free(files[i].LocalName);
    }
    free(files);
    free(jobs);
    free(done);
    return result;
}
