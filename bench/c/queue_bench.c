/*
 * A large queue through libqmgr, for `cargo xtask bench queue`:
 *
 *   queue_bench fill JOBS URL DIR   create JOBS suspended jobs, each with one file (URL to
 *                                   DIR/fN); prints `fill_seconds=S`
 *   queue_bench enum JOBS ROUNDS    time EnumJobs + GetCount, and a walk over every job with
 *                                   Next (batches of 1,000, each job released), ROUNDS
 *                                   times; checks both see JOBS jobs; prints
 *                                   `enum_count_ms=A,B,…` and `enum_walk_ms=A,B,…`
 *
 * The output is `key=value` lines for the xtask to read; errors go to stderr with the
 * failing call and its HRESULT, and the exit status is 1.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 */
#define COBJMACROS
#include <bits.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BATCH = 1000 };

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* An ASCII string as UTF-16 into `out` (room for `room` units); 0 if it does not fit or
 * is not ASCII. */
static int widen_into(WCHAR *out, size_t room, const char *text)
{
    size_t length = strlen(text);
    if (length >= room)
        return 0;
    for (size_t i = 0; i <= length; i++) {
        if ((unsigned char)text[i] >= 0x80)
            return 0;
        out[i] = (unsigned char)text[i];
    }
    return 1;
}

#define CHECK(call)                                                              \
    do {                                                                         \
        HRESULT hr_ = (call);                                                    \
        if (FAILED(hr_)) {                                                       \
            fprintf(stderr, "%s failed: 0x%08X\n", #call, (unsigned)hr_);        \
            return 1;                                                            \
        }                                                                        \
    } while (0)

static int fill(IBackgroundCopyManager *manager, long jobs, const char *url, const char *dir)
{
    WCHAR remote[1024], local[1024];
    char path[1024];
    if (!widen_into(remote, sizeof remote / sizeof *remote, url)) {
        fprintf(stderr, "the URL must be ASCII and shorter than 1024 characters\n");
        return 1;
    }
    double start = now_ms();
    for (long i = 0; i < jobs; i++) {
        IBackgroundCopyJob *job = NULL;
        GUID id;
        int written = snprintf(path, sizeof path, "%s/f%ld", dir, i);
        if (written < 0 || (size_t)written >= sizeof path ||
            !widen_into(local, sizeof local / sizeof *local, path)) {
            fprintf(stderr, "the directory must be ASCII and short\n");
            return 1;
        }
        CHECK(IBackgroundCopyManager_CreateJob(manager, u"queue_bench", BG_JOB_TYPE_DOWNLOAD, &id, &job));
        HRESULT hr = IBackgroundCopyJob_AddFile(job, remote, local);
        IBackgroundCopyJob_Release(job);
        if (FAILED(hr)) {
            fprintf(stderr, "AddFile of job %ld failed: 0x%08X\n", i, (unsigned)hr);
            return 1;
        }
    }
    printf("fill_seconds=%.3f\n", (now_ms() - start) / 1e3);
    return 0;
}

static int enumerate(IBackgroundCopyManager *manager, long jobs, long rounds)
{
    static IBackgroundCopyJob *batch[BATCH];
    double *counted = malloc((size_t)rounds * sizeof *counted);
    double *walked = malloc((size_t)rounds * sizeof *walked);
    if (counted == NULL || walked == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (long round = 0; round < rounds; round++) {
        IEnumBackgroundCopyJobs *all = NULL;
        ULONG count = 0, seen = 0;
        double start = now_ms();
        CHECK(IBackgroundCopyManager_EnumJobs(manager, 0, &all));
        CHECK(IEnumBackgroundCopyJobs_GetCount(all, &count));
        counted[round] = now_ms() - start;
        for (;;) {
            ULONG fetched = 0;
            CHECK(IEnumBackgroundCopyJobs_Next(all, BATCH, batch, &fetched));
            for (ULONG i = 0; i < fetched; i++)
                IBackgroundCopyJob_Release(batch[i]);
            seen += fetched;
            if (fetched < BATCH)
                break;
        }
        IEnumBackgroundCopyJobs_Release(all);
        walked[round] = now_ms() - start;
        if (count != (ULONG)jobs || seen != (ULONG)jobs) {
            fprintf(stderr, "expected %ld jobs; GetCount said %u, Next gave %u\n", jobs, (unsigned)count,
                    (unsigned)seen);
            return 1;
        }
    }
    const char *keys[] = { "enum_count_ms", "enum_walk_ms" };
    double *values[] = { counted, walked };
    for (int k = 0; k < 2; k++) {
        printf("%s=", keys[k]);
        for (long round = 0; round < rounds; round++)
            printf("%s%.3f", round == 0 ? "" : ",", values[k][round]);
        printf("\n");
    }
    free(counted);
    free(walked);
    return 0;
}

int main(int argc, char **argv)
{
    const int filling = argc == 5 && strcmp(argv[1], "fill") == 0;
    const int enumerating = argc == 4 && strcmp(argv[1], "enum") == 0;
    if (!filling && !enumerating) {
        fprintf(stderr, "usage: queue_bench fill JOBS URL DIR | queue_bench enum JOBS ROUNDS\n");
        return 2;
    }
    const long jobs = strtol(argv[2], NULL, 10);
    const long rounds = enumerating ? strtol(argv[3], NULL, 10) : 1;
    if (jobs < 1 || rounds < 1) {
        fprintf(stderr, "JOBS and ROUNDS must be positive\n");
        return 2;
    }
    IBackgroundCopyManager *manager = NULL;
    CHECK(CoInitializeEx(NULL, COINIT_MULTITHREADED));
    CHECK(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                           &IID_IBackgroundCopyManager, (void **)&manager));
    int result = filling ? fill(manager, jobs, argv[3], argv[4]) : enumerate(manager, jobs, rounds);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return result;
}
