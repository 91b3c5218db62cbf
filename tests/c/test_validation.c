/* test_validation.c: IBackgroundCopyFile3::SetValidationState / GetValidationState through
 * qmgrd. E_PENDING until the file is transferred; TRUE is kept by the service; FALSE puts
 * the job in ERROR with BG_E_VALIDATION_FAILED, drops the file's bytes and its temporary
 * file, and Resume downloads it again.
 */
#include "support.h"

/* File `index` of the job as File3, from a fresh enumeration (so what it reports comes
 * from the service, not from an object this program already holds). */
static IBackgroundCopyFile3 *file3_of(IBackgroundCopyJob *job, ULONG index)
{
    IEnumBackgroundCopyFiles *files = NULL;
    IBackgroundCopyFile *file = NULL;
    IBackgroundCopyFile3 *file3 = NULL;
    ULONG fetched = 0;
    if (!CHECK_HR(IBackgroundCopyJob_EnumFiles(job, &files), S_OK)) {
        exit(check_summary("test_validation"));
    }
    if (index > 0) {
        CHECK_HR(IEnumBackgroundCopyFiles_Skip(files, index), S_OK);
    }
    if (CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 1, &file, &fetched), S_OK) &&
        CHECK(fetched == 1)) {
        CHECK_HR(IBackgroundCopyFile_QueryInterface(file, &IID_IBackgroundCopyFile3,
                                                    (void **)&file3),
                 S_OK);
        IBackgroundCopyFile_Release(file);
    }
    IEnumBackgroundCopyFiles_Release(files);
    if (file3 == NULL) {
        exit(check_summary("test_validation"));
    }
    return file3;
}

static BOOL validation_state(IBackgroundCopyJob *job, ULONG index)
{
    IBackgroundCopyFile3 *file = file3_of(job, index);
    BOOL state = 2;
    CHECK_HR(IBackgroundCopyFile3_GetValidationState(file, &state), S_OK);
    CHECK(state == TRUE || state == FALSE);
    IBackgroundCopyFile3_Release(file);
    return state;
}

static void add_file(IBackgroundCopyJob *job, const TestPlace *place, const char *url_path,
                     const char *local)
{
    WCHAR *url = url_of(place, url_path);
    WCHAR *path = work_path_wide(place, local);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, path), S_OK);
    free(url);
    free(path);
}

/* Before a file is transferred there is nothing to judge. */
static void pending_until_transferred(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, "/data/4k", "pending");
    IBackgroundCopyFile3 *file = file3_of(job, 0);
    BOOL state = TRUE;
    CHECK_HR(IBackgroundCopyFile3_SetValidationState(file, TRUE), E_PENDING);
    CHECK_HR(IBackgroundCopyFile3_SetValidationState(file, FALSE), E_PENDING);
    CHECK_HR(IBackgroundCopyFile3_GetValidationState(file, &state), S_OK);
    CHECK(state == FALSE);
    CHECK_HR(IBackgroundCopyFile3_GetValidationState(file, NULL), E_POINTER);
    /* A job that left the queue takes no verdicts. */
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    CHECK_HR(IBackgroundCopyFile3_SetValidationState(file, TRUE), BG_E_INVALID_STATE);
    IBackgroundCopyFile3_Release(file);
    IBackgroundCopyJob_Release(job);
}

static void rejected_file_downloads_again(IBackgroundCopyManager *manager,
                                          const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job(manager, u"validation");
    IBackgroundCopyFile3 *second = NULL;
    IBackgroundCopyError *error = NULL;
    IBackgroundCopyFile *failed_file = NULL;
    BG_FILE_PROGRESS progress;
    BG_ERROR_CONTEXT context = BG_ERROR_CONTEXT_NONE;
    HRESULT code = S_OK;
    LPWSTR temp_name = NULL;
    char *temp_path = NULL;
    char *first_path = work_path(place, "first");
    char *second_path = work_path(place, "second");
    BG_JOB_STATE state;

    add_file(job, place, "/data/16k", "first");
    add_file(job, place, "/data/40000", "second");
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    state = wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 30);
    if (!CHECK(state == BG_JOB_STATE_TRANSFERRED)) {
        IBackgroundCopyJob_Cancel(job);
        IBackgroundCopyJob_Release(job);
        free(first_path);
        free(second_path);
        return;
    }

    /* TRUE is the service's: a fresh file object reads it back. */
    CHECK(validation_state(job, 0) == FALSE);
    {
        IBackgroundCopyFile3 *first = file3_of(job, 0);
        CHECK_HR(IBackgroundCopyFile3_SetValidationState(first, TRUE), S_OK);
        IBackgroundCopyFile3_Release(first);
    }
    CHECK(validation_state(job, 0) == TRUE);

    /* FALSE: ERROR with BG_E_VALIDATION_FAILED for that file, its bytes gone. */
    second = file3_of(job, 1);
    CHECK_HR(IBackgroundCopyFile3_GetTemporaryName(second, &temp_name), S_OK);
    if (CHECK(temp_name != NULL && temp_name[0] == '/')) {
        temp_path = ascii_of(temp_name);
        CHECK(file_size(temp_path) == 40000);
    }
    CoTaskMemFree(temp_name);
    CHECK_HR(IBackgroundCopyFile3_SetValidationState(second, FALSE), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(state == BG_JOB_STATE_ERROR);
    if (CHECK_HR(IBackgroundCopyJob_GetError(job, &error), S_OK)) {
        CHECK_HR(IBackgroundCopyError_GetError(error, &context, &code), S_OK);
        CHECK(code == BG_E_VALIDATION_FAILED);
        CHECK(context == BG_ERROR_CONTEXT_LOCAL_FILE);
        if (CHECK_HR(IBackgroundCopyError_GetFile(error, &failed_file), S_OK)) {
            LPWSTR local = NULL;
            CHECK_HR(IBackgroundCopyFile_GetLocalName(failed_file, &local), S_OK);
            CHECK(wide_is(local, second_path));
            CoTaskMemFree(local);
            IBackgroundCopyFile_Release(failed_file);
        }
        IBackgroundCopyError_Release(error);
    }
    CHECK_HR(IBackgroundCopyFile3_GetProgress(second, &progress), S_OK);
    CHECK(progress.BytesTransferred == 0 && progress.Completed == FALSE);
    if (temp_path != NULL) {
        CHECK(file_size(temp_path) == -1);
    }
    CHECK(validation_state(job, 1) == FALSE);
    /* The other file keeps its bytes and its verdict. */
    CHECK(validation_state(job, 0) == TRUE);
    /* Nothing to judge until it is downloaded again. */
    CHECK_HR(IBackgroundCopyFile3_SetValidationState(second, TRUE), E_PENDING);

    /* Resume downloads it again. */
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    state = wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 30);
    CHECK(state == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyFile3_GetProgress(second, &progress), S_OK);
    CHECK(progress.BytesTransferred == 40000 && progress.Completed == TRUE);
    CHECK(validation_state(job, 1) == FALSE);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK(served_file_matches(first_path, "/data/16k", 16384));
    CHECK(served_file_matches(second_path, "/data/40000", 40000));

    IBackgroundCopyFile3_Release(second);
    IBackgroundCopyJob_Release(job);
    free(temp_path);
    free(first_path);
    free(second_path);
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyManager *manager;
    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    pending_until_transferred(manager, &place);
    rejected_file_downloads_again(manager, &place);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_validation");
}
