/* support.h: what the C tests share. Each test program is run as
 *
 *   test_NAME BASE_URL WORK_DIR
 *
 * with BASE_URL the test server's (http://127.0.0.1:PORT) and WORK_DIR an empty
 * directory of its own, in a qmgr instance of its own (XDG directories set by the
 * runner).
 */
#ifndef QMGR_TESTS_SUPPORT_H
#define QMGR_TESTS_SUPPORT_H

#define COBJMACROS
#include <bits.h>
#include <qmgr.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "win32_compat.h"

typedef struct {
    const char *base_url;
    const char *work_dir;
} TestPlace;

static inline TestPlace test_place(int argc, char **argv)
{
    TestPlace place;
    if (argc != 3) {
        fprintf(stderr, "usage: %s BASE_URL WORK_DIR\n", argv[0]);
        exit(2);
    }
    place.base_url = argv[1];
    place.work_dir = argv[2];
    return place;
}

/* A malloc'ed "<first><second>". */
static inline char *concat(const char *first, const char *second)
{
    size_t first_length = strlen(first), second_length = strlen(second);
    char *joined = (char *)malloc(first_length + second_length + 1);
    if (joined == NULL) {
        abort();
    }
    memcpy(joined, first, first_length);
    memcpy(joined + first_length, second, second_length + 1);
    return joined;
}

/* A malloc'ed UTF-16 "<base URL><path>". */
static inline WCHAR *url_of(const TestPlace *place, const char *path)
{
    char *url = concat(place->base_url, path);
    WCHAR *wide = widen(url);
    free(url);
    return wide;
}

/* A malloc'ed UTF-8 "<work dir>/<name>". */
static inline char *work_path(const TestPlace *place, const char *name)
{
    char *directory = concat(place->work_dir, "/");
    char *path = concat(directory, name);
    free(directory);
    return path;
}

/* A malloc'ed UTF-16 "<work dir>/<name>". */
static inline WCHAR *work_path_wide(const TestPlace *place, const char *name)
{
    char *path = work_path(place, name);
    WCHAR *wide = widen(path);
    free(path);
    return wide;
}

/* Whether a UTF-16 string equals an ASCII one. */
static inline int wide_is(const WCHAR *text, const char *ascii)
{
    if (text == NULL) {
        return 0;
    }
    for (; *ascii != 0; text++, ascii++) {
        if (*text != (WCHAR)(unsigned char)*ascii) {
            return 0;
        }
    }
    return *text == 0;
}

/* A malloc'ed copy of a UTF-16 string of ASCII characters (others become '?'): enough for
 * the test's own paths. */
static inline char *ascii_of(const WCHAR *text)
{
    size_t length = 0, i;
    char *ascii;
    while (text[length] != 0) {
        length++;
    }
    ascii = (char *)malloc(length + 1);
    if (ascii == NULL) {
        abort();
    }
    for (i = 0; i < length; i++) {
        ascii[i] = text[i] < 0x80 ? (char)text[i] : '?';
    }
    ascii[length] = 0;
    return ascii;
}

/* The size of a file, or -1 when it does not exist. */
static inline long long file_size(const char *path)
{
    struct stat status;
    return stat(path, &status) == 0 ? (long long)status.st_size : -1;
}

/* A malloc'ed copy of the file at `path` (size in *size), or NULL. */
static inline unsigned char *read_whole(const char *path, long long *size)
{
    FILE *stream = fopen(path, "rb");
    unsigned char *bytes = NULL;
    *size = file_size(path);
    if (stream == NULL || *size < 0) {
        if (stream != NULL) {
            fclose(stream);
        }
        return NULL;
    }
    bytes = (unsigned char *)malloc((size_t)*size + 1);
    if (bytes == NULL || fread(bytes, 1, (size_t)*size, stream) != (size_t)*size) {
        free(bytes);
        bytes = NULL;
    }
    fclose(stream);
    return bytes;
}

/* The test server's content (tests/src/content.rs): a file at `path` is one block of
 * SERVED_BLOCK_LEN pseudo-random bytes, seeded by a hash of (path, version), repeated. */
#define SERVED_BLOCK_LEN 65521u

static inline uint64_t served_scramble(uint64_t word)
{
    word = (word ^ (word >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    word = (word ^ (word >> 27)) * UINT64_C(0x94d049bb133111eb);
    return word ^ (word >> 31);
}

/* Fills `block` (SERVED_BLOCK_LEN bytes) with the block of `path` at content version 0. */
static inline void served_block(const char *path, unsigned char *block)
{
    uint64_t hash = UINT64_C(0xcbf29ce484222325), state;
    const unsigned char version_and_separator[5] = {0xff, 0, 0, 0, 0};
    size_t i, filled = 0;
    for (i = 0; path[i] != 0; i++) {
        hash = (hash ^ (unsigned char)path[i]) * UINT64_C(0x00000100000001b3);
    }
    for (i = 0; i < sizeof version_and_separator; i++) {
        hash = (hash ^ version_and_separator[i]) * UINT64_C(0x00000100000001b3);
    }
    state = served_scramble(hash);
    while (filled < SERVED_BLOCK_LEN) {
        uint64_t word;
        state += UINT64_C(0x9e3779b97f4a7c15);
        word = served_scramble(state);
        for (i = 0; i < 8 && filled < SERVED_BLOCK_LEN; i++) {
            block[filled++] = (unsigned char)(word >> (8 * i));
        }
    }
}

/* Whether the file at `local` holds exactly the `size` bytes the test server serves for
 * `server_path` (its path on the server, without the query), at content version 0. A
 * mismatch is printed with the first offset that differs. */
static inline int served_file_matches(const char *local, const char *server_path,
                                      long long size)
{
    long long held = 0, at;
    unsigned char *bytes = read_whole(local, &held);
    unsigned char *block = (unsigned char *)malloc(SERVED_BLOCK_LEN);
    int same = bytes != NULL && block != NULL && held == size;
    if (same) {
        served_block(server_path, block);
        for (at = 0; at < held; at++) {
            if (bytes[at] != block[at % SERVED_BLOCK_LEN]) {
                fprintf(stderr, "%s differs from %s at byte %lld\n", local, server_path, at);
                same = 0;
                break;
            }
        }
    } else {
        fprintf(stderr, "%s holds %lld bytes, not the %lld of %s\n", local, held, size,
                server_path);
    }
    free(block);
    free(bytes);
    return same;
}

/* Polls the job until it reaches `wanted`, a final or error state, or `seconds` pass;
 * returns the last state seen. */
static inline BG_JOB_STATE wait_for_state(IBackgroundCopyJob *job, BG_JOB_STATE wanted,
                                          unsigned seconds)
{
    BG_JOB_STATE state = BG_JOB_STATE_QUEUED;
    unsigned waited_ms = 0;
    while (SUCCEEDED(IBackgroundCopyJob_GetState(job, &state)) && state != wanted &&
           state != BG_JOB_STATE_ERROR && state != BG_JOB_STATE_ACKNOWLEDGED &&
           state != BG_JOB_STATE_CANCELLED && waited_ms < seconds * 1000) {
        Sleep(20);
        waited_ms += 20;
    }
    return state;
}

static inline IBackgroundCopyManager *new_manager(void)
{
    IBackgroundCopyManager *manager = NULL;
    if (!CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                                   &IID_IBackgroundCopyManager, (void **)&manager),
                  S_OK)) {
        fprintf(stderr, "no manager: the remaining checks cannot run\n");
        exit(check_summary("setup"));
    }
    return manager;
}

static inline IBackgroundCopyJob *new_job(IBackgroundCopyManager *manager, const WCHAR *name)
{
    IBackgroundCopyJob *job = NULL;
    GUID id;
    if (!CHECK_HR(IBackgroundCopyManager_CreateJob(manager, name, BG_JOB_TYPE_DOWNLOAD, &id,
                                                   &job),
                  S_OK)) {
        exit(check_summary("setup"));
    }
    return job;
}

/* A job with one file of the test server, not resumed yet. */
static inline IBackgroundCopyJob *new_job_with_file(IBackgroundCopyManager *manager,
                                                    const TestPlace *place,
                                                    const char *url_path, const char *local)
{
    IBackgroundCopyJob *job = new_job(manager, u"qmgr C test");
    WCHAR *url = url_of(place, url_path);
    WCHAR *path = work_path_wide(place, local);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, path), S_OK);
    free(url);
    free(path);
    return job;
}

#endif
