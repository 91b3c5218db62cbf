/*
 * The C ABI's costs through a real qmgrd, run by `cargo xtask bench ffi`:
 *   - the round trip of IBackgroundCopyJob_GetState (one job);
 *   - enumerating every job: EnumJobs, then Next one by one to the end, releasing each.
 * Usage: ffi_bench JOBS CALLS [NOTE]. Prints Markdown table rows; NOTE is added to the
 * name of the round-trip row, and with a NOTE the enumeration is skipped.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 */
#define COBJMACROS
#include <bits.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *samples, size_t count, double fraction)
{
    qsort(samples, count, sizeof *samples, by_value);
    return samples[(size_t)(fraction * (double)(count - 1))];
}

#define CHECK(call)                                                              \
    do {                                                                         \
        HRESULT hr_ = (call);                                                    \
        if (FAILED(hr_)) {                                                       \
            fprintf(stderr, "%s failed: 0x%08X\n", #call, (unsigned)hr_);        \
            return 1;                                                            \
        }                                                                        \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: ffi_bench JOBS CALLS [NOTE]\n");
        return 2;
    }
    const char *note = argc == 4 ? argv[3] : NULL;
    const long jobs = strtol(argv[1], NULL, 10);
    const long calls = strtol(argv[2], NULL, 10);
    if (jobs < 1 || calls < 1) {
        fprintf(stderr, "JOBS and CALLS must be positive\n");
        return 2;
    }

    IBackgroundCopyManager *manager = NULL;
    CHECK(CoInitializeEx(NULL, COINIT_MULTITHREADED));
    CHECK(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                           &IID_IBackgroundCopyManager, (void **)&manager));

    IBackgroundCopyJob *job = NULL;
    GUID id;
    CHECK(IBackgroundCopyManager_CreateJob(manager, u"bench", BG_JOB_TYPE_DOWNLOAD, &id, &job));
    BG_JOB_STATE state;
    for (long i = 0; i < calls / 10; i++)
        CHECK(IBackgroundCopyJob_GetState(job, &state));
    double *samples = malloc((size_t)calls * sizeof *samples);
    if (samples == NULL)
        return 1;
    for (long i = 0; i < calls; i++) {
        double start = now_us();
        HRESULT hr = IBackgroundCopyJob_GetState(job, &state);
        samples[i] = now_us() - start;
        if (FAILED(hr) || state != BG_JOB_STATE_SUSPENDED) {
            fprintf(stderr, "GetState failed: 0x%08X, state %u\n", (unsigned)hr, (unsigned)state);
            return 1;
        }
    }
    double median = percentile(samples, (size_t)calls, 0.5);
    double p99 = percentile(samples, (size_t)calls, 0.99);
    if (note != NULL) {
        printf("| … the same %s | median %.1f µs, p99 %.1f µs (%ld calls) | — | — |\n", note, median, p99, calls);
        free(samples);
        IBackgroundCopyJob_Release(job);
        IBackgroundCopyManager_Release(manager);
        CoUninitialize();
        return 0;
    }
    printf("| `IBackgroundCopyJob_GetState` round trip through qmgrd | median %.1f µs, p99 %.1f µs "
           "(%ld calls) | median ≤ 30 µs | %s |\n",
           median, p99, calls, median <= 30.0 ? "PASS" : "MISS");
    free(samples);
    IBackgroundCopyJob_Release(job);

    for (long i = 1; i < jobs; i++) {
        CHECK(IBackgroundCopyManager_CreateJob(manager, u"bench", BG_JOB_TYPE_DOWNLOAD, &id, &job));
        IBackgroundCopyJob_Release(job);
    }
    enum { ROUNDS = 5 };
    double rounds[ROUNDS];
    ULONG counted = 0, seen = 0;
    for (int round = 0; round < ROUNDS; round++) {
        double start = now_us();
        IEnumBackgroundCopyJobs *all = NULL;
        CHECK(IBackgroundCopyManager_EnumJobs(manager, 0, &all));
        CHECK(IEnumBackgroundCopyJobs_GetCount(all, &counted));
        seen = 0;
        for (;;) {
            IBackgroundCopyJob *next = NULL;
            ULONG fetched = 0;
            HRESULT hr = IEnumBackgroundCopyJobs_Next(all, 1, &next, &fetched);
            if (FAILED(hr))
                return 1;
            if (fetched == 0)
                break;
            seen++;
            IBackgroundCopyJob_Release(next);
        }
        IEnumBackgroundCopyJobs_Release(all);
        rounds[round] = now_us() - start;
    }
    if (counted != (ULONG)jobs || seen != (ULONG)jobs) {
        fprintf(stderr, "expected %ld jobs, GetCount said %u and Next gave %u\n", jobs, (unsigned)counted,
                (unsigned)seen);
        return 1;
    }
    double enumerate = percentile(rounds, ROUNDS, 0.5) / 1e3;
    printf("| enumerate %ld jobs (EnumJobs, then Next and Release each) | median %.1f ms (%d rounds) | ≤ 50 ms | %s |\n",
           jobs, enumerate, ROUNDS, enumerate <= 50.0 ? "PASS" : "MISS");

    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return 0;
}
