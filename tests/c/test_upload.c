/* test_upload.c: upload jobs through qmgrd, as a Windows program drives them: one file to an
 * http server speaking the BITS upload protocol (the test server), TRANSFERRED when the
 * server has it, Complete; a source changed before the upload stops the job with
 * BG_E_LOCAL_FILE_CHANGED; the job rules of uploads; upload-reply jobs and their reply
 * (GetReplyData up to a megabyte, the reply file after Complete).
 */
#include "support.h"

#include <stdatomic.h>
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
        BG_JOB_REPLY_PROGRESS reply_progress;
        byte *reply_data = NULL;
        UINT64 reply_length = 0;
        CHECK_HR(IBackgroundCopyJob2_GetReplyFileName(job2, &reply), E_NOTIMPL);
        CHECK_HR(IBackgroundCopyJob2_GetReplyProgress(job2, &reply_progress), E_NOTIMPL);
        CHECK_HR(IBackgroundCopyJob2_GetReplyData(job2, &reply_data, &reply_length), E_NOTIMPL);
        CHECK_HR(IBackgroundCopyJob2_SetReplyFileName(job2, u"/tmp/reply"), E_NOTIMPL);
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

/* The test server's reply: the upload's bytes repeated, each XOR 0x5A. */
static int reply_is_expected(const unsigned char *reply, size_t length, size_t upload_length)
{
    size_t i;
    for (i = 0; i < length; i++) {
        if (reply[i] != (unsigned char)((i % upload_length) * 7 % 251 ^ 0x5A)) {
            return 0;
        }
    }
    return 1;
}

static IBackgroundCopyJob2 *reply_job(IBackgroundCopyManager *manager)
{
    IBackgroundCopyJob *job = NULL;
    IBackgroundCopyJob2 *job2 = NULL;
    GUID id;
    if (!CHECK_HR(IBackgroundCopyManager_CreateJob(manager, u"qmgr C upload-reply",
                                                   BG_JOB_TYPE_UPLOAD_REPLY, &id, &job),
                  S_OK) ||
        !CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob2,
                                                    (void **)&job2),
                  S_OK)) {
        exit(check_summary("test_upload"));
    }
    IBackgroundCopyJob_Release(job);
    return job2;
}

static void an_upload_reply_hands_over_its_reply(IBackgroundCopyManager *manager,
                                                 const TestPlace *place)
{
    IBackgroundCopyJob2 *job = reply_job(manager);
    char *source = work_path(place, "question.bin");
    WCHAR *local = work_path_wide(place, "question.bin");
    WCHAR *url = url_of(place, "/uploads/question.bin?reply=2000");
    char *answer = work_path(place, "answer.bin");
    WCHAR *answer_wide = work_path_wide(place, "answer.bin");
    LPWSTR name = NULL;
    BG_JOB_REPLY_PROGRESS progress;
    byte *data = NULL;
    UINT64 length = 0;

    /* No name before a file is added, and no reply yet. */
    CHECK_HR(IBackgroundCopyJob2_GetReplyFileName(job, &name), S_OK);
    CHECK(name == NULL);
    CHECK_HR(IBackgroundCopyJob2_GetReplyProgress(job, &progress), S_OK);
    CHECK(progress.BytesTotal == BG_SIZE_UNKNOWN && progress.BytesTransferred == 0);
    CHECK_HR(IBackgroundCopyJob2_GetReplyProgress(job, NULL), E_INVALIDARG);

    write_file(source, 1000);
    CHECK_HR(IBackgroundCopyJob2_AddFile(job, url, local), S_OK);
    CHECK_HR(IBackgroundCopyJob2_GetReplyFileName(job, &name), S_OK);
    CHECK(name != NULL);
    CoTaskMemFree(name);
    name = NULL;
    CHECK_HR(IBackgroundCopyJob2_SetReplyFileName(job, u"relative.bin"), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob2_SetReplyFileName(job, answer_wide), S_OK);
    if (CHECK_HR(IBackgroundCopyJob2_GetReplyFileName(job, &name), S_OK)) {
        CHECK(name != NULL && wide_is(name, answer));
        CoTaskMemFree(name);
    }
    CHECK_HR(IBackgroundCopyJob2_GetReplyData(job, &data, &length), BG_E_INVALID_STATE);
    CHECK(data == NULL);

    CHECK_HR(IBackgroundCopyJob2_Resume(job), S_OK);
    CHECK(wait_for_state((IBackgroundCopyJob *)job, BG_JOB_STATE_TRANSFERRED, 60) ==
          BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob2_GetReplyProgress(job, &progress), S_OK);
    CHECK(progress.BytesTotal == 2000 && progress.BytesTransferred == 2000);
    if (CHECK_HR(IBackgroundCopyJob2_GetReplyData(job, &data, &length), S_OK)) {
        CHECK(length == 2000 && data != NULL && reply_is_expected(data, 2000, 1000));
        CoTaskMemFree(data);
        data = NULL;
    }
    /* The reply file exists once the job is complete, and the data stays readable. */
    CHECK(file_size(answer) < 0);
    CHECK_HR(IBackgroundCopyJob2_Complete(job), S_OK);
    CHECK(file_size(answer) == 2000);
    if (CHECK_HR(IBackgroundCopyJob2_GetReplyData(job, &data, &length), S_OK)) {
        CHECK(length == 2000 && data != NULL && reply_is_expected(data, 2000, 1000));
        CoTaskMemFree(data);
    }
    IBackgroundCopyJob2_Release(job);
    free(source);
    free(local);
    free(url);
    free(answer);
    free(answer_wide);
}

/* A callback that does what Microsoft suggests for small replies: read the reply inside
 * JobTransferred, then Complete the job there. */
typedef struct {
    IBackgroundCopyCallback iface;
    atomic_long references;
    atomic_int transferred;
    atomic_ullong reply_length;
    atomic_int completed;
} ReplyReader;

static HRESULT STDMETHODCALLTYPE ReplyReader_QueryInterface(IBackgroundCopyCallback *This,
                                                            REFIID riid, void **ppvObject)
{
    if (ppvObject == NULL) {
        return E_POINTER;
    }
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IBackgroundCopyCallback)) {
        *ppvObject = This;
        IBackgroundCopyCallback_AddRef(This);
        return S_OK;
    }
    *ppvObject = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE ReplyReader_AddRef(IBackgroundCopyCallback *This)
{
    return (ULONG)(atomic_fetch_add(&((ReplyReader *)This)->references, 1) + 1);
}

static ULONG STDMETHODCALLTYPE ReplyReader_Release(IBackgroundCopyCallback *This)
{
    return (ULONG)(atomic_fetch_sub(&((ReplyReader *)This)->references, 1) - 1);
}

static HRESULT STDMETHODCALLTYPE ReplyReader_JobTransferred(IBackgroundCopyCallback *This,
                                                            IBackgroundCopyJob *pJob)
{
    ReplyReader *reader = (ReplyReader *)This;
    IBackgroundCopyJob2 *job2 = NULL;
    byte *data = NULL;
    UINT64 length = 0;
    if (SUCCEEDED(IBackgroundCopyJob_QueryInterface(pJob, &IID_IBackgroundCopyJob2,
                                                    (void **)&job2))) {
        if (SUCCEEDED(IBackgroundCopyJob2_GetReplyData(job2, &data, &length)) && data != NULL) {
            atomic_store(&reader->reply_length, length);
            CoTaskMemFree(data);
        }
        IBackgroundCopyJob2_Release(job2);
    }
    if (SUCCEEDED(IBackgroundCopyJob_Complete(pJob))) {
        atomic_store(&reader->completed, 1);
    }
    atomic_store(&reader->transferred, 1);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE ReplyReader_JobError(IBackgroundCopyCallback *This,
                                                      IBackgroundCopyJob *pJob,
                                                      IBackgroundCopyError *pError)
{
    (void)This;
    (void)pError;
    return IBackgroundCopyJob_Cancel(pJob);
}

static HRESULT STDMETHODCALLTYPE ReplyReader_JobModification(IBackgroundCopyCallback *This,
                                                             IBackgroundCopyJob *pJob,
                                                             DWORD dwReserved)
{
    (void)This;
    (void)pJob;
    (void)dwReserved;
    return S_OK;
}

static IBackgroundCopyCallbackVtbl reply_reader_vtbl = {
    ReplyReader_QueryInterface, ReplyReader_AddRef,   ReplyReader_Release,
    ReplyReader_JobTransferred, ReplyReader_JobError, ReplyReader_JobModification,
};

static void the_reply_is_read_in_the_transferred_callback(IBackgroundCopyManager *manager,
                                                          const TestPlace *place)
{
    IBackgroundCopyJob2 *job = reply_job(manager);
    char *source = work_path(place, "called.bin");
    WCHAR *local = work_path_wide(place, "called.bin");
    WCHAR *url = url_of(place, "/uploads/called.bin?reply=300");
    ReplyReader reader = {{&reply_reader_vtbl}, 1, 0, 0, 0};
    int waited = 0;

    write_file(source, 4000);
    CHECK_HR(IBackgroundCopyJob2_AddFile(job, url, local), S_OK);
    CHECK_HR(IBackgroundCopyJob2_SetNotifyInterface(job, (IUnknown *)&reader.iface), S_OK);
    CHECK_HR(IBackgroundCopyJob2_SetNotifyFlags(job, BG_NOTIFY_JOB_TRANSFERRED |
                                                         BG_NOTIFY_JOB_ERROR),
             S_OK);
    CHECK_HR(IBackgroundCopyJob2_Resume(job), S_OK);
    while (!atomic_load(&reader.transferred) && waited < 6000) {
        Sleep(10);
        waited++;
    }
    CHECK(atomic_load(&reader.transferred) == 1);
    CHECK(atomic_load(&reader.reply_length) == 300);
    CHECK(atomic_load(&reader.completed) == 1);
    IBackgroundCopyJob2_Release(job);
    /* The library lets go of the callback once the job has left the queue. */
    waited = 0;
    while (atomic_load(&reader.references) != 1 && waited < 500) {
        Sleep(10);
        waited++;
    }
    CHECK(atomic_load(&reader.references) == 1);
    free(source);
    free(local);
    free(url);
}

static void a_reply_over_a_megabyte_stays_in_the_file(IBackgroundCopyManager *manager,
                                                      const TestPlace *place)
{
    IBackgroundCopyJob2 *job = reply_job(manager);
    char *source = work_path(place, "large-question.bin");
    WCHAR *local = work_path_wide(place, "large-question.bin");
    WCHAR *url = url_of(place, "/uploads/large-question.bin?reply=1100000");
    byte *data = NULL;
    UINT64 length = 0;

    write_file(source, 5000);
    CHECK_HR(IBackgroundCopyJob2_AddFile(job, url, local), S_OK);
    CHECK_HR(IBackgroundCopyJob2_Resume(job), S_OK);
    CHECK(wait_for_state((IBackgroundCopyJob *)job, BG_JOB_STATE_TRANSFERRED, 60) ==
          BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob2_GetReplyData(job, &data, &length), BG_E_TOO_LARGE);
    CHECK(data == NULL && length == 1100000);
    CHECK_HR(IBackgroundCopyJob2_Cancel(job), S_OK);
    IBackgroundCopyJob2_Release(job);
    free(source);
    free(local);
    free(url);
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyManager *manager;
    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    an_upload_reaches_the_server(manager, &place);
    a_changed_source_stops_the_job(manager, &place);
    an_upload_reply_hands_over_its_reply(manager, &place);
    a_reply_over_a_megabyte_stays_in_the_file(manager, &place);
    the_reply_is_read_in_the_transferred_callback(manager, &place);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_upload");
}
