/* upload.c: a BITS upload, written in C as on Windows.
 *
 *   upload FILE URL
 *
 * Creates an upload job, adds the one file it takes (the URL of a BITS upload server such
 * as IIS or qmgr-upload-server, then the local file), resumes the job, polls its state
 * until it is TRANSFERRED (the server has the file; Complete then ends the job without
 * any network) or ERROR (then the error is printed and the job cancelled, which tells the
 * server to drop what it holds). Exits 0 on success, 1 on failure.
 *
 * Build: cc -std=c11 upload.c -I../include -L../target/debug -lqmgr
 */
#define COBJMACROS
#include <bits.h>

#include <stdio.h>

#include "win32_compat.h"

static const char *state_name(BG_JOB_STATE state)
{
    static const char *const names[] = {
        "QUEUED", "CONNECTING", "TRANSFERRING", "SUSPENDED", "ERROR",
        "TRANSIENT_ERROR", "TRANSFERRED", "ACKNOWLEDGED", "CANCELLED",
    };
    return state < sizeof names / sizeof names[0] ? names[state] : "?";
}

/* Prints what went wrong, as the job's IBackgroundCopyError describes it. */
static void print_job_error(IBackgroundCopyJob *job)
{
    IBackgroundCopyError *error = NULL;
    BG_ERROR_CONTEXT context;
    HRESULT code;
    LPWSTR description = NULL;

    if (FAILED(IBackgroundCopyJob_GetError(job, &error))) {
        fprintf(stderr, "the job failed, but has no error to show\n");
        return;
    }
    IBackgroundCopyError_GetError(error, &context, &code);
    fprintf(stderr, "error 0x%08X in context %u: ", (unsigned)code, (unsigned)context);
    if (SUCCEEDED(IBackgroundCopyError_GetErrorDescription(error, 0x0409, &description))) {
        fprint_wide(stderr, description); /* glibc: not wprintf(L"%s") */
        CoTaskMemFree(description);
    }
    fputc('\n', stderr);
    IBackgroundCopyError_Release(error);
}

/* Prints a failed call's HRESULT and, when the library left one, its description. */
static void print_failure(const char *call, HRESULT hr)
{
    IErrorInfo *info = NULL;
    BSTR description = NULL;

    fprintf(stderr, "%s failed: 0x%08X", call, (unsigned)hr);
    if (GetErrorInfo(0, &info) == S_OK) {
        if (SUCCEEDED(IErrorInfo_GetDescription(info, &description)) && description) {
            fputs(": ", stderr);
            fprint_wide(stderr, description);
            SysFreeString(description);
        }
        IErrorInfo_Release(info);
    }
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    IBackgroundCopyManager *manager = NULL;
    IBackgroundCopyJob *job = NULL;
    GUID job_id;
    BG_JOB_STATE state = BG_JOB_STATE_QUEUED;
    BG_JOB_PROGRESS progress;
    WCHAR *source, *url;
    HRESULT hr;
    int result = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE URL\n", argv[0]);
        return 2;
    }
    /* glibc: main receives UTF-8, not wmain's wide strings. */
    source = widen(argv[1]);
    url = widen(argv[2]);

    hr = CoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (FAILED(hr)) {
        print_failure("CoInitializeEx", hr);
        goto done;
    }
    hr = CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                          &IID_IBackgroundCopyManager, (void **)&manager);
    if (FAILED(hr)) {
        print_failure("CoCreateInstance", hr);
        goto uninitialize;
    }
    hr = IBackgroundCopyManager_CreateJob(manager, u"upload.c", BG_JOB_TYPE_UPLOAD, &job_id,
                                          &job);
    if (FAILED(hr)) {
        print_failure("CreateJob", hr);
        goto release_manager;
    }
    /* As for a download, the remote name comes first: here it is where the file goes. */
    hr = IBackgroundCopyJob_AddFile(job, url, source);
    if (FAILED(hr)) {
        print_failure("AddFile", hr);
        IBackgroundCopyJob_Cancel(job);
        goto release_job;
    }
    hr = IBackgroundCopyJob_Resume(job);
    if (FAILED(hr)) {
        print_failure("Resume", hr);
        IBackgroundCopyJob_Cancel(job);
        goto release_job;
    }

    for (;;) {
        hr = IBackgroundCopyJob_GetState(job, &state);
        if (FAILED(hr)) {
            print_failure("GetState", hr);
            break;
        }
        if (state == BG_JOB_STATE_TRANSFERRED) {
            hr = IBackgroundCopyJob_Complete(job);
            if (SUCCEEDED(hr)) {
                IBackgroundCopyJob_GetProgress(job, &progress);
                printf("uploaded %llu bytes to %s\n",
                       (unsigned long long)progress.BytesTransferred, argv[2]);
                result = 0;
            } else {
                print_failure("Complete", hr);
            }
            break;
        }
        if (state == BG_JOB_STATE_ERROR) {
            print_job_error(job);
            IBackgroundCopyJob_Cancel(job);
            break;
        }
        if (state == BG_JOB_STATE_CANCELLED || state == BG_JOB_STATE_ACKNOWLEDGED) {
            fprintf(stderr, "the job ended elsewhere (%s)\n", state_name(state));
            break;
        }
        Sleep(100);
    }

release_job:
    IBackgroundCopyJob_Release(job);
release_manager:
    IBackgroundCopyManager_Release(manager);
uninitialize:
    CoUninitialize();
done:
    free(source);
    free(url);
    return result;
}
