/* test_upload.c: upload jobs through qmgrd, as a Windows program drives them: one file to an
 * http server speaking the BITS upload protocol (the test server), TRANSFERRED when the
 * server has it, Complete; a source changed before the upload stops the job with
 * BG_E_LOCAL_FILE_CHANGED; the job rules of uploads.
 */
#include "support.h"

#include <stdio.h>

static void write_file(const char *path, size_t length)
{
    FILE *out = fopen(path, "wb");
    size_t i;
    if (out == NULL) {
        abort();
    }
    for (i = 0; i < length; i++) {
        fputc((int)(i * 7 % 251), out);
    }
    fclose(out);
}

static IBackgroundCopyJob *upload_job(IBackgroundCopyManager *manager)
{
    IBackgroundCopyJob *job = NULL;
    GUID id;
    if (!CHECK_HR(IBackgroundCopyManager_CreateJob(manager, u"qmgr C upload", BG_JOB_TYPE_UPLOAD,
                                                   &id, &job),
                  S_OK)) {
        exit(check_summary("test_upload"));
    }
    return job;
}

static void an_upload_reaches_the_server(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = upload_job(manager);
    char *source = work_path(place, "report.bin");
    WCHAR *local = work_path_wide(place, "report.bin");
    WCHAR *url = url_of(place, "/uploads/report.bin?max_fragment=65536");
    WCHAR *second = work_path_wide(place, "second.bin");
    BG_JOB_PROGRESS progress;
    BG_JOB_TYPE type = BG_JOB_TYPE_DOWNLOAD;
    LPWSTR reply = NULL;
    IBackgroundCopyJob2 *job2 = NULL;

    write_file(source, 300000);
    CHECK_HR(IBackgroundCopyJob_GetType(job, &type), S_OK);
    CHECK(type == BG_JOB_TYPE_UPLOAD);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local), S_OK);
    /* One file per upload job. */
    {
        char *second_path = work_path(place, "second.bin");
        write_file(second_path, 10);
        free(second_path);
    }
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, second), BG_E_TOO_MANY_FILES);
    CHECK_HR(IBackgroundCopyJob_GetProgress(job, &progress), S_OK);
    CHECK(progress.BytesTotal == 300000 && progress.FilesTotal == 1);
    /* The reply methods are for upload-reply jobs. */
    if (CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob2, (void **)&job2),
                 S_OK)) {
        CHECK_HR(IBackgroundCopyJob2_GetReplyFileName(job2, &reply), E_NOTIMPL);
        IBackgroundCopyJob2_Release(job2);
    }
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob_GetProgress(job, &progress), S_OK);
    CHECK(progress.BytesTransferred == 300000 && progress.FilesTransferred == 1);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    /* An upload leaves its source alone. */
    CHECK(file_size(source) == 300000);
    IBackgroundCopyJob_Release(job);
    free(source);
    free(local);
    free(url);
    free(second);
}

static void a_changed_source_stops_the_job(IBackgroundCopyManager *manager,
                                           const TestPlace *place)
{
    IBackgroundCopyJob *job = upload_job(manager);
    char *source = work_path(place, "changing.bin");
    WCHAR *local = work_path_wide(place, "changing.bin");
    WCHAR *url = url_of(place, "/uploads/changing.bin");
    IBackgroundCopyError *error = NULL;
    BG_ERROR_CONTEXT context = BG_ERROR_CONTEXT_NONE;
    HRESULT code = S_OK;

    write_file(source, 1000);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local), S_OK);
    write_file(source, 2000);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_ERROR, 60) == BG_JOB_STATE_ERROR);
    if (CHECK_HR(IBackgroundCopyJob_GetError(job, &error), S_OK)) {
        CHECK_HR(IBackgroundCopyError_GetError(error, &context, &code), S_OK);
        CHECK(code == BG_E_LOCAL_FILE_CHANGED);
        CHECK(context == BG_ERROR_CONTEXT_LOCAL_FILE);
        IBackgroundCopyError_Release(error);
    }
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob_Release(job);
    free(source);
    free(local);
    free(url);
}

static void upload_reply_is_not_there_yet(IBackgroundCopyManager *manager)
{
    IBackgroundCopyJob *job = NULL;
    GUID id;
    CHECK_HR(IBackgroundCopyManager_CreateJob(manager, u"reply", BG_JOB_TYPE_UPLOAD_REPLY, &id,
                                              &job),
             E_NOTIMPL);
    CHECK(job == NULL);
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyManager *manager;
    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    an_upload_reaches_the_server(manager, &place);
    a_changed_source_stops_the_job(manager, &place);
    upload_reply_is_not_there_yet(manager);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_upload");
}
