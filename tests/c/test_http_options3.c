/* test_http_options3.c: IBackgroundCopyJobHttpOptions3 (BITS 10.3) through qmgrd.
 *
 *   test_http_options3 BASE_URL WORK_DIR HTTPS_BASE_URL
 *
 * The runner starts qmgrd with SSL_CERT_FILE naming the https server's CA and
 * QMGR_CERTIFICATE_CHECK_TIMEOUT_MS set to a few seconds.
 *
 * - MakeCustomHeadersWriteOnly: GetCustomHeaders is then E_ACCESSDENIED (from any job
 *   object), the call succeeds again, and the headers still reach the server (it refuses
 *   requests without them).
 * - SetServerCertificateValidationInterface: an object without the interface is
 *   E_NOINTERFACE; a validator that accepts sees the job, the file, a DER leaf and the chain
 *   beginning with it, and the download completes; one that refuses puts the job in
 *   TRANSIENT_ERROR with its code in BG_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK; one that
 *   answers too late, or a validator whose process has exited, puts it in ERROR with
 *   BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED; NULL clears it; setting one while the
 *   job transfers is BG_E_READ_ONLY_WHEN_JOB_ACTIVE.
 *
 * Run with `--set-validator-and-exit JOB_ID_HEX` it is the helper process of the exited
 * validator: it sets a validator on that job and exits.
 */
#include "support.h"

#include <stdatomic.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* X509_ASN_ENCODING | PKCS_7_ASN_ENCODING. */
#define CERTIFICATE_ENCODING 0x00010001u
/* Longer than the runner's QMGR_CERTIFICATE_CHECK_TIMEOUT_MS. */
#define TOO_LATE_MS 6000
#define REFUSAL ((HRESULT)0x80041234)

typedef struct {
    IBackgroundCopyServerCertificateValidationCallback iface;
    atomic_long references;
    HRESULT answer;
    unsigned delay_ms;
    atomic_int calls;
    /* What the last call saw. */
    atomic_int leaf_is_der;
    atomic_int chain_begins_with_leaf;
    atomic_int encoding_ok;
    atomic_int job_matches;
    atomic_int file_matches;
    GUID expected_job;
} Validator;

static Validator *validator_of(IBackgroundCopyServerCertificateValidationCallback *This)
{
    return (Validator *)This;
}

static HRESULT STDMETHODCALLTYPE Validator_QueryInterface(
    IBackgroundCopyServerCertificateValidationCallback *This, REFIID riid, void **ppvObject)
{
    if (ppvObject == NULL) {
        return E_POINTER;
    }
    if (IsEqualIID(riid, &IID_IUnknown) ||
        IsEqualIID(riid, &IID_IBackgroundCopyServerCertificateValidationCallback)) {
        *ppvObject = This;
        atomic_fetch_add(&validator_of(This)->references, 1);
        return S_OK;
    }
    *ppvObject = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE
Validator_AddRef(IBackgroundCopyServerCertificateValidationCallback *This)
{
    return (ULONG)(atomic_fetch_add(&validator_of(This)->references, 1) + 1);
}

static ULONG STDMETHODCALLTYPE
Validator_Release(IBackgroundCopyServerCertificateValidationCallback *This)
{
    return (ULONG)(atomic_fetch_sub(&validator_of(This)->references, 1) - 1);
}

static HRESULT STDMETHODCALLTYPE Validator_ValidateServerCertificate(
    IBackgroundCopyServerCertificateValidationCallback *This, IBackgroundCopyJob *job,
    IBackgroundCopyFile *file, DWORD certLength, const BYTE *certData, DWORD certEncodingType,
    DWORD certStoreLength, const BYTE *certStoreData)
{
    Validator *validator = validator_of(This);
    GUID id;
    LPWSTR remote = NULL;
    atomic_store(&validator->leaf_is_der, certLength > 16 && certData != NULL &&
                                              certData[0] == 0x30);
    atomic_store(&validator->chain_begins_with_leaf,
                 certStoreLength >= certLength && certStoreData != NULL &&
                     memcmp(certStoreData, certData, certLength) == 0);
    atomic_store(&validator->encoding_ok, certEncodingType == CERTIFICATE_ENCODING);
    atomic_store(&validator->job_matches,
                 job != NULL && SUCCEEDED(IBackgroundCopyJob_GetId(job, &id)) &&
                     IsEqualGUID(&id, &validator->expected_job));
    atomic_store(&validator->file_matches,
                 file != NULL && SUCCEEDED(IBackgroundCopyFile_GetRemoteName(file, &remote)) &&
                     remote != NULL && remote[0] == 'h');
    CoTaskMemFree(remote);
    if (validator->delay_ms > 0) {
        Sleep(validator->delay_ms);
    }
    atomic_fetch_add(&validator->calls, 1);
    return validator->answer;
}

static IBackgroundCopyServerCertificateValidationCallbackVtbl validator_vtbl = {
    Validator_QueryInterface,
    Validator_AddRef,
    Validator_Release,
    Validator_ValidateServerCertificate,
};

/* Static: the library may release them after the code that registered them returned. */
static Validator accepting, refusing, late, cleared, helper;

static void init_validator(Validator *validator, HRESULT answer, unsigned delay_ms)
{
    validator->iface.lpVtbl = &validator_vtbl;
    atomic_store(&validator->references, 1);
    validator->answer = answer;
    validator->delay_ms = delay_ms;
}

/* An object that is no validator: IUnknown only. */
typedef struct {
    IUnknown iface;
} Plain;

static HRESULT STDMETHODCALLTYPE Plain_QueryInterface(IUnknown *This, REFIID riid,
                                                      void **ppvObject)
{
    if (IsEqualIID(riid, &IID_IUnknown)) {
        *ppvObject = This;
        return S_OK;
    }
    *ppvObject = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE Plain_AddRef(IUnknown *This)
{
    (void)This;
    return 2;
}

static ULONG STDMETHODCALLTYPE Plain_Release(IUnknown *This)
{
    (void)This;
    return 1;
}

static IUnknownVtbl plain_vtbl = {Plain_QueryInterface, Plain_AddRef, Plain_Release};
static Plain plain = {{&plain_vtbl}};

static IBackgroundCopyJobHttpOptions3 *options_of(IBackgroundCopyJob *job)
{
    IBackgroundCopyJobHttpOptions3 *options = NULL;
    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJobHttpOptions3,
                                                    (void **)&options),
                  S_OK)) {
        exit(check_summary("test_http_options3"));
    }
    return options;
}

static HRESULT set_validator_object(IBackgroundCopyJob *job, IUnknown *object)
{
    IBackgroundCopyJobHttpOptions3 *options = options_of(job);
    HRESULT hr =
        IBackgroundCopyJobHttpOptions3_SetServerCertificateValidationInterface(options, object);
    IBackgroundCopyJobHttpOptions3_Release(options);
    return hr;
}

static HRESULT set_validator(IBackgroundCopyJob *job, Validator *validator)
{
    return set_validator_object(job, validator == NULL ? NULL : (IUnknown *)&validator->iface);
}

static void expect_error(IBackgroundCopyJob *job, BG_ERROR_CONTEXT context, HRESULT code)
{
    IBackgroundCopyError *error = NULL;
    BG_ERROR_CONTEXT seen_context = BG_ERROR_CONTEXT_NONE;
    HRESULT seen_code = S_OK;
    if (CHECK_HR(IBackgroundCopyJob_GetError(job, &error), S_OK)) {
        CHECK_HR(IBackgroundCopyError_GetError(error, &seen_context, &seen_code), S_OK);
        CHECK(seen_context == context);
        CHECK(seen_code == code);
        IBackgroundCopyError_Release(error);
    }
}

static void write_only_headers(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job =
        new_job_with_file(manager, place, "/data/1k/write-only?require_header=X-Api-Key%3As3cr3t",
                          "write-only.bin");
    IBackgroundCopyJobHttpOptions3 *options = options_of(job);
    IBackgroundCopyJob *again = NULL;
    LPWSTR headers = NULL;
    GUID id;
    char *local = work_path(place, "write-only.bin");

    CHECK_HR(IBackgroundCopyJobHttpOptions3_SetCustomHeaders(options, u"X-Api-Key: s3cr3t\r\n"),
             S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions3_GetCustomHeaders(options, &headers), S_OK);
    CHECK(wide_is(headers, "X-Api-Key: s3cr3t\r\n"));
    CoTaskMemFree(headers);
    headers = NULL;
    CHECK_HR(IBackgroundCopyJobHttpOptions3_MakeCustomHeadersWriteOnly(options), S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions3_GetCustomHeaders(options, &headers), E_ACCESSDENIED);
    CHECK(headers == NULL);
    CHECK_HR(IBackgroundCopyJobHttpOptions3_MakeCustomHeadersWriteOnly(options), S_OK);
    /* Another object for the job asks the service, which keeps the rule. */
    CHECK_HR(IBackgroundCopyJob_GetId(job, &id), S_OK);
    if (CHECK_HR(IBackgroundCopyManager_GetJob(manager, &id, &again), S_OK)) {
        IBackgroundCopyJobHttpOptions *first = NULL;
        if (CHECK_HR(IBackgroundCopyJob_QueryInterface(again, &IID_IBackgroundCopyJobHttpOptions,
                                                        (void **)&first),
                     S_OK)) {
            CHECK_HR(IBackgroundCopyJobHttpOptions_GetCustomHeaders(first, &headers),
                     E_ACCESSDENIED);
            IBackgroundCopyJobHttpOptions_Release(first);
        }
        IBackgroundCopyJob_Release(again);
    }
    /* The server answers 403 to a request without the header. */
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK(served_file_matches(local, "/data/1k/write-only", 1024));
    free(local);
    IBackgroundCopyJobHttpOptions3_Release(options);
    IBackgroundCopyJob_Release(job);
}

static void accepting_validator(IBackgroundCopyManager *manager, const TestPlace *secure)
{
    IBackgroundCopyJob *job =
        new_job_with_file(manager, secure, "/data/16k/accepted", "accepted.bin");
    char *local = work_path(secure, "accepted.bin");
    init_validator(&accepting, S_OK, 0);
    CHECK_HR(IBackgroundCopyJob_GetId(job, &accepting.expected_job), S_OK);

    CHECK_HR(set_validator_object(job, &plain.iface), E_NOINTERFACE);
    CHECK_HR(set_validator(job, &accepting), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK(atomic_load(&accepting.calls) == 1);
    CHECK(atomic_load(&accepting.leaf_is_der));
    CHECK(atomic_load(&accepting.chain_begins_with_leaf));
    CHECK(atomic_load(&accepting.encoding_ok));
    CHECK(atomic_load(&accepting.job_matches));
    CHECK(atomic_load(&accepting.file_matches));
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK(served_file_matches(local, "/data/16k/accepted", 16 * 1024));
    free(local);
    IBackgroundCopyJob_Release(job);
}

static void refusing_validator(IBackgroundCopyManager *manager, const TestPlace *secure)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, secure, "/data/4k/refused", "refused.bin");
    init_validator(&refusing, REFUSAL, 0);
    CHECK_HR(IBackgroundCopyJob_GetId(job, &refusing.expected_job), S_OK);
    CHECK_HR(set_validator(job, &refusing), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSIENT_ERROR, 60) == BG_JOB_STATE_TRANSIENT_ERROR);
    CHECK(atomic_load(&refusing.calls) == 1);
    expect_error(job, BG_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK, REFUSAL);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob_Release(job);
}

static void late_validator(IBackgroundCopyManager *manager, const TestPlace *secure)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, secure, "/data/4k/late", "late.bin");
    init_validator(&late, S_OK, TOO_LATE_MS);
    CHECK_HR(IBackgroundCopyJob_GetId(job, &late.expected_job), S_OK);
    CHECK_HR(set_validator(job, &late), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_ERROR, 60) == BG_JOB_STATE_ERROR);
    expect_error(job, BG_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK,
                 BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED);
    /* The late answer changes nothing. */
    for (unsigned waited_ms = 0; atomic_load(&late.calls) == 0 && waited_ms < 60000;
         waited_ms += 50) {
        Sleep(50);
    }
    CHECK(atomic_load(&late.calls) == 1);
    {
        BG_JOB_STATE state = BG_JOB_STATE_QUEUED;
        CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
        CHECK(state == BG_JOB_STATE_ERROR);
    }
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob_Release(job);
}

static void hex_of_guid(const GUID *id, char text[33])
{
    const unsigned char *bytes = (const unsigned char *)id;
    for (int index = 0; index < 16; index++) {
        snprintf(text + 2 * index, 3, "%02x", bytes[index]);
    }
}

static int guid_of_hex(const char *text, GUID *id)
{
    unsigned char *bytes = (unsigned char *)id;
    if (strlen(text) != 32) {
        return 0;
    }
    for (int index = 0; index < 16; index++) {
        unsigned value = 0;
        if (sscanf(text + 2 * index, "%2x", &value) != 1) {
            return 0;
        }
        bytes[index] = (unsigned char)value;
    }
    return 1;
}

/* The helper process: sets a validator on the job, then exits without answering anything. */
static int set_validator_and_exit(const char *job_hex)
{
    IBackgroundCopyManager *manager;
    IBackgroundCopyJob *job = NULL;
    GUID id;
    if (!guid_of_hex(job_hex, &id)) {
        return 2;
    }
    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    init_validator(&helper, S_OK, 0);
    if (CHECK_HR(IBackgroundCopyManager_GetJob(manager, &id, &job), S_OK)) {
        CHECK_HR(set_validator(job, &helper), S_OK);
        IBackgroundCopyJob_Release(job);
    }
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_http_options3 helper");
}

static void exited_validator(IBackgroundCopyManager *manager, const TestPlace *secure,
                             const char *self)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, secure, "/data/4k/exited", "exited.bin");
    GUID id;
    char hex[33];
    pid_t child;
    int status = 0;
    CHECK_HR(IBackgroundCopyJob_GetId(job, &id), S_OK);
    hex_of_guid(&id, hex);
    child = fork();
    if (child == 0) {
        execl(self, self, "--set-validator-and-exit", hex, (char *)NULL);
        _exit(127);
    }
    CHECK(child > 0);
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_ERROR, 60) == BG_JOB_STATE_ERROR);
    expect_error(job, BG_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK,
                 BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob_Release(job);
}

static void cleared_and_active(IBackgroundCopyManager *manager, const TestPlace *secure)
{
    IBackgroundCopyJob *job =
        new_job_with_file(manager, secure, "/data/32k/cleared?rate=16000", "cleared.bin");
    BG_JOB_STATE state = BG_JOB_STATE_SUSPENDED;
    init_validator(&cleared, S_OK, 0);
    CHECK_HR(set_validator(job, &cleared), S_OK);
    CHECK_HR(set_validator(job, NULL), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    while (SUCCEEDED(IBackgroundCopyJob_GetState(job, &state)) &&
           (state == BG_JOB_STATE_QUEUED || state == BG_JOB_STATE_SUSPENDED)) {
        Sleep(20);
    }
    if (state == BG_JOB_STATE_CONNECTING || state == BG_JOB_STATE_TRANSFERRING) {
        CHECK_HR(set_validator(job, &cleared), BG_E_READ_ONLY_WHEN_JOB_ACTIVE);
    }
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK(atomic_load(&cleared.calls) == 0);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    IBackgroundCopyJob_Release(job);
}

int main(int argc, char **argv)
{
    TestPlace place, secure;
    IBackgroundCopyManager *manager;

    if (argc == 3 && strcmp(argv[1], "--set-validator-and-exit") == 0) {
        return set_validator_and_exit(argv[2]);
    }
    if (argc != 4) {
        fprintf(stderr, "usage: %s BASE_URL WORK_DIR HTTPS_BASE_URL\n", argv[0]);
        return 2;
    }
    place.base_url = argv[1];
    place.work_dir = argv[2];
    secure.base_url = argv[3];
    secure.work_dir = argv[2];

    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    write_only_headers(manager, &place);
    accepting_validator(manager, &secure);
    refusing_validator(manager, &secure);
    late_validator(manager, &secure);
    exited_validator(manager, &secure, argv[0]);
    cleared_and_active(manager, &secure);
    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_http_options3");
}
