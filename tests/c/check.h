/* check.h: the assertions of qmgr's C tests.
 *
 * CHECK(condition) and CHECK_HR(call, expected HRESULT) record one check each and print
 * the failing ones with their location; check_summary() prints the totals and gives the
 * program's exit status. Usable from C and C++.
 */
#ifndef QMGR_TESTS_CHECK_H
#define QMGR_TESTS_CHECK_H

#include <stdio.h>

#include <bits.h>

static int check_count;
static int check_failures;

static inline int check_that(int ok, const char *what, const char *file, int line)
{
    check_count++;
    if (!ok) {
        check_failures++;
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what);
    }
    return ok;
}

static inline int check_hresult(HRESULT got, HRESULT want, const char *call, const char *name,
                                const char *file, int line)
{
    check_count++;
    if (got != want) {
        check_failures++;
        fprintf(stderr, "%s:%d: %s returned 0x%08X, expected %s (0x%08X)\n", file, line, call,
                (unsigned)got, name, (unsigned)want);
        return 0;
    }
    return 1;
}

/* Returns the exit status: 0 when every check passed. */
static inline int check_summary(const char *program)
{
    printf("%s: %d checks, %d failed\n", program, check_count, check_failures);
    return check_failures == 0 ? 0 : 1;
}

#define CHECK(condition) check_that((condition) ? 1 : 0, #condition, __FILE__, __LINE__)
#define CHECK_HR(call, expected) \
    check_hresult((call), (expected), #call, #expected, __FILE__, __LINE__)

#endif
