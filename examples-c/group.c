/* group.c: a download through the legacy BITS 1.0 group API of qmgr.h.
 *
 *   group URL DESTINATION
 *
 * Creates a group with a display name, gives it a job with one file, resumes the group
 * and polls its status until the group is complete (the file is then at DESTINATION)
 * or failed. The finished group is removed with CancelGroup, which keeps the file.
 * Exits 0 on success, 1 on failure.
 *
 * Build: cc -std=c11 group.c -I../include -L../target/debug -lqmgr
 */
#define COBJMACROS
#include <qmgr.h>

#include <stdio.h>
#include <sys/stat.h>

#include "win32_compat.h"

/* glibc: Windows programs call CoCreateGuid; here the kernel's random bytes serve. */
static int new_guid(GUID *guid)
{
    FILE *random = fopen("/dev/urandom", "rb");
    size_t read = 0;
    if (random != NULL) {
        read = fread(guid, sizeof *guid, 1, random);
        fclose(random);
    }
    return read == 1;
}

int main(int argc, char **argv)
{
    IBackgroundCopyQMgr *qmgr = NULL;
    IBackgroundCopyGroup *group = NULL;
    IBackgroundCopyJob1 *job = NULL;
    GUID group_id, job_id;
    VARIANT name;
    FILESETINFO file;
    FILESETINFO *files[1] = {&file};
    DWORD status = 0, job_index = 0, percent = 0;
    WCHAR *url, *destination;
    struct stat finished;
    HRESULT hr;
    int result = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: %s URL DESTINATION\n", argv[0]);
        return 2;
    }
    /* glibc: main receives UTF-8, not wmain's wide strings. */
    url = widen(argv[1]);
    destination = widen(argv[2]);
    if (!new_guid(&group_id) || !new_guid(&job_id)) {
        fprintf(stderr, "no random bytes for the group's GUIDs\n");
        return 1;
    }

    hr = CoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (FAILED(hr)) {
        fprintf(stderr, "CoInitializeEx failed: 0x%08X\n", (unsigned)hr);
        goto done;
    }
    hr = CoCreateInstance(&CLSID_BackgroundCopyQMgr, NULL, CLSCTX_LOCAL_SERVER,
                          &IID_IBackgroundCopyQMgr, (void **)&qmgr);
    if (FAILED(hr)) {
        fprintf(stderr, "CoCreateInstance failed: 0x%08X\n", (unsigned)hr);
        goto uninitialize;
    }
    hr = IBackgroundCopyQMgr_CreateGroup(qmgr, group_id, &group);
    if (FAILED(hr)) {
        fprintf(stderr, "CreateGroup failed: 0x%08X\n", (unsigned)hr);
        goto release_qmgr;
    }

    VariantInit(&name);
    V_VT(&name) = VT_BSTR;
    V_BSTR(&name) = SysAllocString(u"group.c");
    hr = IBackgroundCopyGroup_SetProp(group, GROUPPROP_DISPLAYNAME, &name);
    VariantClear(&name);
    if (FAILED(hr)) {
        fprintf(stderr, "SetProp(GROUPPROP_DISPLAYNAME) failed: 0x%08X\n", (unsigned)hr);
        goto cancel_group;
    }

    hr = IBackgroundCopyGroup_CreateJob(group, job_id, &job);
    if (FAILED(hr)) {
        fprintf(stderr, "CreateJob failed: 0x%08X\n", (unsigned)hr);
        goto cancel_group;
    }
    file.bstrRemoteFile = SysAllocString(url);
    file.bstrLocalFile = SysAllocString(destination);
    file.dwSizeHint = 0;
    hr = IBackgroundCopyJob1_AddFiles(job, 1, files);
    SysFreeString(file.bstrRemoteFile);
    SysFreeString(file.bstrLocalFile);
    if (FAILED(hr)) {
        fprintf(stderr, "AddFiles failed: 0x%08X\n", (unsigned)hr);
        goto release_job;
    }
    hr = IBackgroundCopyGroup_ResumeGroup(group);
    if (FAILED(hr)) {
        fprintf(stderr, "ResumeGroup failed: 0x%08X\n", (unsigned)hr);
        goto release_job;
    }

    for (;;) {
        hr = IBackgroundCopyGroup_GetStatus(group, &status, &job_index);
        if (FAILED(hr)) {
            fprintf(stderr, "GetStatus failed: 0x%08X\n", (unsigned)hr);
            break;
        }
        if (status & QM_STATUS_GROUP_ERROR) {
            DWORD job_status = 0, win32 = 0, transport = 0, retries = 0;
            IBackgroundCopyJob1_GetStatus(job, &job_status, &win32, &transport, &retries);
            fprintf(stderr, "the group failed: job status 0x%X, Win32 result %u, transport "
                            "result %u, %u retries\n",
                    (unsigned)job_status, (unsigned)win32, (unsigned)transport,
                    (unsigned)retries);
            break;
        }
        if (status & QM_STATUS_GROUP_COMPLETE) {
            IBackgroundCopyGroup_GetProgress(group, QM_PROGRESS_PERCENT_DONE, &percent);
            printf("group complete (%u%%): %s\n", (unsigned)percent, argv[2]);
            result = 0;
            break;
        }
        Sleep(100);
    }

release_job:
    IBackgroundCopyJob1_Release(job);
cancel_group:
    /* A finished group stays in the queue until it is cancelled; its files stay. */
    hr = IBackgroundCopyGroup_CancelGroup(group);
    if (FAILED(hr)) {
        fprintf(stderr, "CancelGroup failed: 0x%08X\n", (unsigned)hr);
        result = 1;
    }
    IBackgroundCopyGroup_Release(group);
    if (result == 0 && stat(argv[2], &finished) != 0) {
        fprintf(stderr, "%s is missing after CancelGroup\n", argv[2]);
        result = 1;
    }
release_qmgr:
    IBackgroundCopyQMgr_Release(qmgr);
uninitialize:
    CoUninitialize();
done:
    free(url);
    free(destination);
    return result;
}
