/* test_job.c: every method of IBackgroundCopyJob … IBackgroundCopyJob5,
 * IBackgroundCopyJobHttpOptions, IBitsTokenOptions and IBackgroundCopyError.
 *
 * - Properties: defaults, set and read back, bad values, NULL pointers, bad UTF-16.
 * - Files: AddFile and AddFileSet with their refusals (relative local path, bad scheme,
 *   NULL, bad UTF-16), ReplaceRemotePrefix.
 * - A transfer of two files: progress, times, the final name only after Complete, and
 *   BG_E_INVALID_STATE for every change once the job was acknowledged.
 * - Suspend and Resume; Cancel (no file left behind, then BG_E_INVALID_STATE).
 * - Complete onto a directory: HRESULT_FROM_WIN32(ERROR_DIRECTORY_NOT_SUPPORTED), and the
 *   job waits for another Complete.
 * - A 404 after a good file: the job's error through IBackgroundCopyError, and Complete
 *   keeping the good file only (BG_S_PARTIAL_COMPLETE).
 * - Credentials (SetCredentials, RemoveCredentials): their errors, and Basic and Digest
 *   downloads from a server that demands them; without them, or with a wrong password,
 *   HTTP 401.
 * - What the library does not implement answers E_NOTIMPL, as documented (upload
 *   replies, client certificates, helper tokens); file ranges are test_ranges.c's.
 */
#include "support.h"

#include <unistd.h>

static void check_owner(IBackgroundCopyJob *job)
{
    LPWSTR owner = NULL;
    char expected[64];
    snprintf(expected, sizeof expected, "S-1-22-1-%u", (unsigned)getuid());
    CHECK_HR(IBackgroundCopyJob_GetOwner(job, &owner), S_OK);
    CHECK(wide_is(owner, expected));
    CoTaskMemFree(owner);
}

static void names_and_settings(IBackgroundCopyJob *job)
{
    LPWSTR text = NULL;
    WCHAR bad_utf16[] = {'x', 0xDC00, 0};
    WCHAR long_name[258];
    BG_JOB_TYPE type;
    BG_JOB_PRIORITY priority;
    ULONG value = 0;
    size_t i;

    CHECK_HR(IBackgroundCopyJob_GetType(job, &type), S_OK);
    CHECK(type == BG_JOB_TYPE_DOWNLOAD);
    CHECK_HR(IBackgroundCopyJob_GetDisplayName(job, &text), S_OK);
    CHECK(wide_is(text, "qmgr C test"));
    CoTaskMemFree(text);
    CHECK_HR(IBackgroundCopyJob_SetDisplayName(job, u"renamed"), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetDisplayName(job, &text), S_OK);
    CHECK(wide_is(text, "renamed"));
    CoTaskMemFree(text);
    CHECK_HR(IBackgroundCopyJob_GetDescription(job, &text), S_OK);
    CHECK(wide_is(text, ""));
    CoTaskMemFree(text);
    CHECK_HR(IBackgroundCopyJob_SetDescription(job, u"a job of the C tests"), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetDescription(job, &text), S_OK);
    CHECK(wide_is(text, "a job of the C tests"));
    CoTaskMemFree(text);

    CHECK_HR(IBackgroundCopyJob_SetDisplayName(job, NULL), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob_SetDisplayName(job, bad_utf16), E_INVALIDARG);
    for (i = 0; i < 257; i++) {
        long_name[i] = 'n';
    }
    long_name[257] = 0;
    CHECK_HR(IBackgroundCopyJob_SetDisplayName(job, long_name), BG_E_STRING_TOO_LONG);
    CHECK_HR(IBackgroundCopyJob_GetDisplayName(job, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyJob_GetType(job, NULL), E_POINTER);

    CHECK_HR(IBackgroundCopyJob_GetPriority(job, &priority), S_OK);
    CHECK(priority == BG_JOB_PRIORITY_NORMAL);
    CHECK_HR(IBackgroundCopyJob_SetPriority(job, BG_JOB_PRIORITY_LOW), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetPriority(job, &priority), S_OK);
    CHECK(priority == BG_JOB_PRIORITY_LOW);
    CHECK_HR(IBackgroundCopyJob_SetPriority(job, 9), E_NOTIMPL);
    CHECK_HR(IBackgroundCopyJob_SetPriority(job, BG_JOB_PRIORITY_FOREGROUND), S_OK);

    CHECK_HR(IBackgroundCopyJob_GetNotifyFlags(job, &value), S_OK);
    CHECK(value == (BG_NOTIFY_JOB_TRANSFERRED | BG_NOTIFY_JOB_ERROR));
    CHECK_HR(IBackgroundCopyJob_SetNotifyFlags(job, BG_NOTIFY_DISABLE), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetNotifyFlags(job, &value), S_OK);
    CHECK(value == BG_NOTIFY_DISABLE);

    CHECK_HR(IBackgroundCopyJob_GetMinimumRetryDelay(job, &value), S_OK);
    CHECK(value == 600);
    CHECK_HR(IBackgroundCopyJob_SetMinimumRetryDelay(job, 5), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetMinimumRetryDelay(job, &value), S_OK);
    CHECK(value == 5);
    CHECK_HR(IBackgroundCopyJob_GetNoProgressTimeout(job, &value), S_OK);
    CHECK(value == 1209600);
    CHECK_HR(IBackgroundCopyJob_SetNoProgressTimeout(job, 3600), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetNoProgressTimeout(job, &value), S_OK);
    CHECK(value == 3600);
    CHECK_HR(IBackgroundCopyJob_GetErrorCount(job, &value), S_OK);
    CHECK(value == 0);
    CHECK_HR(IBackgroundCopyJob_GetErrorCount(job, NULL), E_POINTER);
}

static void proxy_and_owner(IBackgroundCopyJob *job)
{
    BG_JOB_PROXY_USAGE usage = BG_JOB_PROXY_USAGE_AUTODETECT;
    LPWSTR list = NULL, bypass = NULL;

    CHECK_HR(IBackgroundCopyJob_GetProxySettings(job, &usage, &list, &bypass), S_OK);
    CHECK(usage == BG_JOB_PROXY_USAGE_PRECONFIG && list == NULL && bypass == NULL);
    CHECK_HR(IBackgroundCopyJob_SetProxySettings(job, BG_JOB_PROXY_USAGE_OVERRIDE,
                                                 u"http://proxy.invalid:8080", u"<local>"),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_GetProxySettings(job, &usage, &list, &bypass), S_OK);
    CHECK(usage == BG_JOB_PROXY_USAGE_OVERRIDE);
    CHECK(wide_is(list, "http://proxy.invalid:8080") && wide_is(bypass, "<local>"));
    CoTaskMemFree(list);
    CoTaskMemFree(bypass);
    CHECK_HR(IBackgroundCopyJob_SetProxySettings(job, 9, NULL, NULL), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob_SetProxySettings(job, BG_JOB_PROXY_USAGE_PRECONFIG, NULL, NULL),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_GetProxySettings(job, NULL, &list, &bypass), E_POINTER);

    check_owner(job);
    CHECK_HR(IBackgroundCopyJob_TakeOwnership(job), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetOwner(job, NULL), E_POINTER);
}

static void state_progress_times(IBackgroundCopyJob *job)
{
    BG_JOB_STATE state = BG_JOB_STATE_ERROR;
    BG_JOB_PROGRESS progress;
    BG_JOB_TIMES times;
    IBackgroundCopyError *error = NULL;

    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(state == BG_JOB_STATE_SUSPENDED);
    CHECK_HR(IBackgroundCopyJob_GetProgress(job, &progress), S_OK);
    CHECK(progress.FilesTotal == 0 && progress.FilesTransferred == 0);
    CHECK(progress.BytesTransferred == 0);
    CHECK_HR(IBackgroundCopyJob_GetTimes(job, &times), S_OK);
    CHECK(times.CreationTime.dwHighDateTime != 0);
    CHECK(times.ModificationTime.dwHighDateTime >= times.CreationTime.dwHighDateTime);
    CHECK(times.TransferCompletionTime.dwLowDateTime == 0 &&
          times.TransferCompletionTime.dwHighDateTime == 0);
    CHECK_HR(IBackgroundCopyJob_GetError(job, &error), BG_E_ERROR_INFORMATION_UNAVAILABLE);
    CHECK_HR(IBackgroundCopyJob_GetState(job, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyJob_GetProgress(job, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyJob_GetTimes(job, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyJob_Resume(job), BG_E_EMPTY);
}

static void job2_methods(IBackgroundCopyJob *job)
{
    IBackgroundCopyJob2 *job2 = NULL;
    LPWSTR program = NULL, parameters = NULL;
    BG_JOB_REPLY_PROGRESS reply;
    BG_AUTH_CREDENTIALS credentials;
    byte *data = NULL;
    UINT64 length = 0;
    WCHAR long_name[302];
    size_t i;

    for (i = 0; i < 301; i++) {
        long_name[i] = u'u';
    }
    long_name[301] = 0;

    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob2,
                                                    (void **)&job2),
                  S_OK)) {
        return;
    }
    /* Before any SetNotifyCmdLine: two empty strings, CoTaskMemAlloc'ed (as documented). */
    CHECK_HR(IBackgroundCopyJob2_GetNotifyCmdLine(job2, &program, &parameters), S_OK);
    CHECK(program != NULL && parameters != NULL && wide_is(program, "") && wide_is(parameters, ""));
    CoTaskMemFree(program);
    CoTaskMemFree(parameters);
    CHECK_HR(IBackgroundCopyJob2_SetNotifyCmdLine(job2, u"/bin/true", u"true --done"), S_OK);
    CHECK_HR(IBackgroundCopyJob2_GetNotifyCmdLine(job2, &program, &parameters), S_OK);
    CHECK(wide_is(program, "/bin/true") && wide_is(parameters, "true --done"));
    CoTaskMemFree(program);
    CoTaskMemFree(parameters);
    CHECK_HR(IBackgroundCopyJob2_SetNotifyCmdLine(job2, NULL, NULL), S_OK);
    CHECK_HR(IBackgroundCopyJob2_GetNotifyCmdLine(job2, &program, &parameters), S_OK);
    CHECK(program != NULL && parameters != NULL && wide_is(program, "") && wide_is(parameters, ""));
    CoTaskMemFree(program);
    CoTaskMemFree(parameters);
    CHECK_HR(IBackgroundCopyJob2_GetNotifyCmdLine(job2, NULL, &parameters), E_POINTER);

    /* Upload replies are not implemented (documented E_NOTIMPL). */
    CHECK_HR(IBackgroundCopyJob2_GetReplyProgress(job2, &reply), E_NOTIMPL);
    CHECK_HR(IBackgroundCopyJob2_GetReplyData(job2, &data, &length), E_NOTIMPL);
    CHECK_HR(IBackgroundCopyJob2_SetReplyFileName(job2, u"/tmp/reply"), E_NOTIMPL);
    CHECK_HR(IBackgroundCopyJob2_GetReplyFileName(job2, &program), E_NOTIMPL);

    /* Credentials: one per target and scheme; removing none is S_FALSE. */
    memset(&credentials, 0, sizeof credentials);
    credentials.Target = BG_AUTH_TARGET_SERVER;
    credentials.Scheme = BG_AUTH_SCHEME_BASIC;
    credentials.Credentials.Basic.UserName = (LPWSTR)u"user";
    credentials.Credentials.Basic.Password = (LPWSTR)u"secret";
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, &credentials), S_OK);
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, &credentials), S_OK);
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyJob2_RemoveCredentials(job2, BG_AUTH_TARGET_SERVER,
                                                   BG_AUTH_SCHEME_BASIC),
             S_OK);
    CHECK_HR(IBackgroundCopyJob2_RemoveCredentials(job2, BG_AUTH_TARGET_SERVER,
                                                   BG_AUTH_SCHEME_BASIC),
             S_FALSE);
    CHECK_HR(IBackgroundCopyJob2_RemoveCredentials(job2, BG_AUTH_TARGET_PROXY,
                                                   BG_AUTH_SCHEME_NTLM),
             S_FALSE);
    CHECK_HR(IBackgroundCopyJob2_RemoveCredentials(job2, (BG_AUTH_TARGET)9,
                                                   BG_AUTH_SCHEME_BASIC),
             BG_E_INVALID_AUTH_TARGET);
    credentials.Scheme = BG_AUTH_SCHEME_PASSPORT;
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, &credentials), BG_E_INVALID_AUTH_SCHEME);
    credentials.Scheme = BG_AUTH_SCHEME_DIGEST;
    credentials.Target = (BG_AUTH_TARGET)0;
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, &credentials), BG_E_INVALID_AUTH_TARGET);
    credentials.Target = BG_AUTH_TARGET_PROXY;
    credentials.Credentials.Basic.UserName = long_name;
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, &credentials), BG_E_USERNAME_TOO_LARGE);
    /* Basic and Digest need both strings (E_INVALIDARG); NULL user name and password are
     * the identity the user already has (NTLM, Negotiate). */
    credentials.Credentials.Basic.UserName = NULL;
    credentials.Credentials.Basic.Password = (LPWSTR)u"secret";
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, &credentials), E_INVALIDARG);
    /* NTLM credentials go to libcurl one byte per character: up to U+00FF only. */
    credentials.Scheme = BG_AUTH_SCHEME_NTLM;
    credentials.Credentials.Basic.UserName = (LPWSTR)u"j\u00fcrgen";
    credentials.Credentials.Basic.Password = (LPWSTR)u"p\u00e4ssw\u00f6rt";
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, &credentials), S_OK);
    credentials.Credentials.Basic.Password = (LPWSTR)u"\u043f\u0430\u0440\u043e\u043b\u044c";
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, &credentials), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob2_RemoveCredentials(job2, BG_AUTH_TARGET_PROXY,
                                                   BG_AUTH_SCHEME_NTLM),
             S_OK);
    credentials.Scheme = BG_AUTH_SCHEME_NEGOTIATE;
    credentials.Credentials.Basic.UserName = NULL;
    credentials.Credentials.Basic.Password = NULL;
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, &credentials), S_OK);
    CHECK_HR(IBackgroundCopyJob2_RemoveCredentials(job2, BG_AUTH_TARGET_PROXY,
                                                   BG_AUTH_SCHEME_NEGOTIATE),
             S_OK);
    IBackgroundCopyJob2_Release(job2);
}

static void job3_to_job5_methods(IBackgroundCopyJob *job)
{
    IBackgroundCopyJob5 *job5 = NULL;
    BITS_JOB_PROPERTY_VALUE value;
    DWORD flags = 0;
    ULONG number = 0;
    BOOL elevated = TRUE;

    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob5,
                                                    (void **)&job5),
                  S_OK)) {
        return;
    }
    /* Job3 */
    CHECK_HR(IBackgroundCopyJob5_GetFileACLFlags(job5, &flags), S_OK);
    CHECK(flags == 0);
    CHECK_HR(IBackgroundCopyJob5_SetFileACLFlags(job5, BG_COPY_FILE_OWNER | BG_COPY_FILE_DACL),
             S_OK);
    CHECK_HR(IBackgroundCopyJob5_GetFileACLFlags(job5, &flags), S_OK);
    CHECK(flags == (BG_COPY_FILE_OWNER | BG_COPY_FILE_DACL));
    CHECK_HR(IBackgroundCopyJob5_SetFileACLFlags(job5, 0x100), E_INVALIDARG);
    /* Job4 */
    CHECK_HR(IBackgroundCopyJob5_SetPeerCachingFlags(job5, BG_JOB_ENABLE_PEERCACHING_CLIENT),
             S_OK);
    CHECK_HR(IBackgroundCopyJob5_GetPeerCachingFlags(job5, &flags), S_OK);
    CHECK(flags == BG_JOB_ENABLE_PEERCACHING_CLIENT);
    CHECK_HR(IBackgroundCopyJob5_SetPeerCachingFlags(job5, 0x80), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob5_GetOwnerIntegrityLevel(job5, &number), S_OK);
    CHECK(number == (getuid() == 0 ? 0x3000u : 0x2000u));
    CHECK_HR(IBackgroundCopyJob5_GetOwnerElevationState(job5, &elevated), S_OK);
    CHECK(elevated == (getuid() == 0 ? TRUE : FALSE));
    CHECK_HR(IBackgroundCopyJob5_SetMaximumDownloadTime(job5, 86400), S_OK);
    CHECK_HR(IBackgroundCopyJob5_GetMaximumDownloadTime(job5, &number), S_OK);
    CHECK(number == 86400);
    CHECK_HR(IBackgroundCopyJob5_GetMaximumDownloadTime(job5, NULL), E_POINTER);
    /* Job5 */
    memset(&value, 0, sizeof value);
    value.Uint64 = 1u << 20;
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE, value),
             S_OK);
    memset(&value, 0, sizeof value);
    CHECK_HR(IBackgroundCopyJob5_GetProperty(job5, BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE, &value),
             S_OK);
    CHECK(value.Uint64 == 1u << 20);
    value.Dword = BITS_COST_STATE_UNRESTRICTED;
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_ID_COST_FLAGS, value), S_OK);
    memset(&value, 0, sizeof value);
    CHECK_HR(IBackgroundCopyJob5_GetProperty(job5, BITS_JOB_PROPERTY_ID_COST_FLAGS, &value),
             S_OK);
    CHECK(value.Dword == BITS_COST_STATE_UNRESTRICTED);
    value.Enable = TRUE;
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_DYNAMIC_CONTENT, value),
             S_OK);
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_HIGH_PERFORMANCE, value),
             S_OK);
    memset(&value, 0, sizeof value);
    CHECK_HR(IBackgroundCopyJob5_GetProperty(job5, BITS_JOB_PROPERTY_HIGH_PERFORMANCE, &value),
             S_OK);
    CHECK(value.Enable == TRUE);
    /* Stored credentials: the user's ~/.netrc, for servers only. */
    memset(&value, 0, sizeof value);
    value.Target = BG_AUTH_TARGET_SERVER;
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_USE_STORED_CREDENTIALS,
                                             value),
             S_OK);
    memset(&value, 0, sizeof value);
    CHECK_HR(IBackgroundCopyJob5_GetProperty(job5, BITS_JOB_PROPERTY_USE_STORED_CREDENTIALS,
                                             &value),
             S_OK);
    CHECK(value.Target == BG_AUTH_TARGET_SERVER);
    value.Target = BG_AUTH_TARGET_PROXY;
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_USE_STORED_CREDENTIALS,
                                             value),
             BG_E_USE_STORED_CREDENTIALS_NOT_SUPPORTED);
    value.Target = (BG_AUTH_TARGET)0;
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_USE_STORED_CREDENTIALS,
                                             value),
             S_OK);
    value.Target = BG_AUTH_TARGET_SERVER;
    CHECK_HR(IBackgroundCopyJob5_GetProperty(job5, BITS_JOB_PROPERTY_USE_STORED_CREDENTIALS,
                                             &value),
             S_OK);
    CHECK(value.Target == (BG_AUTH_TARGET)0);
    value.Enable = TRUE;
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_NOTIFICATION_CLSID, value),
             E_NOTIMPL);
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, 99, value), BG_E_UNKNOWN_PROPERTY_ID);
    CHECK_HR(IBackgroundCopyJob5_GetProperty(job5, 99, &value), BG_E_UNKNOWN_PROPERTY_ID);
    CHECK_HR(IBackgroundCopyJob5_GetProperty(job5, BITS_JOB_PROPERTY_ID_COST_FLAGS, NULL),
             E_POINTER);
    /* Reset what would limit the transfer later. */
    memset(&value, 0, sizeof value);
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE, value),
             S_OK);
    IBackgroundCopyJob5_Release(job5);
}

static void http_options(IBackgroundCopyJob *job)
{
    IBackgroundCopyJobHttpOptions *options = NULL;
    IBackgroundCopyJob *back = NULL;
    IUnknown *identity_job = NULL, *identity_options = NULL;
    void *third = NULL;
    BG_CERT_STORE_LOCATION location = BG_CERT_STORE_LOCATION_USERS;
    LPWSTR store = NULL, subject = NULL, headers = NULL;
    BYTE *hash = NULL;
    BYTE sha1[20];
    WCHAR *too_long;
    ULONG flags = 1;
    size_t i;

    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJobHttpOptions,
                                                    (void **)&options),
                  S_OK)) {
        return;
    }
    /* One object: the same IUnknown behind both interfaces, and the way back. */
    CHECK_HR(IBackgroundCopyJobHttpOptions_QueryInterface(options, &IID_IBackgroundCopyJob,
                                                          (void **)&back),
             S_OK);
    CHECK(back == job);
    IBackgroundCopyJob_Release(back);
    CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IUnknown, (void **)&identity_job), S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions_QueryInterface(options, &IID_IUnknown,
                                                          (void **)&identity_options),
             S_OK);
    CHECK(identity_job == identity_options);
    IUnknown_Release(identity_job);
    IUnknown_Release(identity_options);
    /* BITS 10.3's options answer from the same object (tested in test_http_options3.c). */
    if (CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJobHttpOptions3,
                                                   &third),
                 S_OK)) {
        IUnknown_Release((IUnknown *)third);
    }

    /* No certificate yet: Get answers as Windows does, Remove has nothing to do. */
    CHECK_HR(IBackgroundCopyJobHttpOptions_GetClientCertificate(options, &location, &store,
                                                                &hash, &subject),
             (HRESULT)0x800706F7 /* HRESULT_FROM_WIN32(RPC_X_BAD_STUB_DATA) */);
    CHECK(store == NULL && hash == NULL && subject == NULL);
    CHECK_HR(IBackgroundCopyJobHttpOptions_RemoveClientCertificate(options), S_FALSE);

    memset(sha1, 0x11, sizeof sha1);
    CHECK_HR(IBackgroundCopyJobHttpOptions_SetClientCertificateByID(
                 options, BG_CERT_STORE_LOCATION_LOCAL_MACHINE, u"MY", sha1),
             S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions_GetClientCertificate(options, &location, &store,
                                                                &hash, &subject),
             S_OK);
    CHECK(location == BG_CERT_STORE_LOCATION_LOCAL_MACHINE);
    CHECK(wide_is(store, "MY"));
    CHECK(hash != NULL && memcmp(hash, sha1, sizeof sha1) == 0);
    CHECK(subject != NULL);
    CoTaskMemFree(store);
    CoTaskMemFree(hash);
    CoTaskMemFree(subject);

    CHECK_HR(IBackgroundCopyJobHttpOptions_SetClientCertificateByName(
                 options, BG_CERT_STORE_LOCATION_CURRENT_USER, u"MY", u"CN=client"),
             S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions_GetClientCertificate(options, &location, &store,
                                                                &hash, &subject),
             S_OK);
    CHECK(location == BG_CERT_STORE_LOCATION_CURRENT_USER);
    CHECK(wide_is(subject, "CN=client"));
    CoTaskMemFree(store);
    CoTaskMemFree(hash);
    CoTaskMemFree(subject);
    CHECK_HR(IBackgroundCopyJobHttpOptions_SetClientCertificateByName(options, 8, u"MY",
                                                                      u"CN=client"),
             E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJobHttpOptions_SetClientCertificateByName(
                 options, BG_CERT_STORE_LOCATION_CURRENT_USER, u"../MY", u"CN=client"),
             E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJobHttpOptions_RemoveClientCertificate(options), S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions_RemoveClientCertificate(options), S_FALSE);

    CHECK_HR(IBackgroundCopyJobHttpOptions_GetCustomHeaders(options, &headers), S_FALSE);
    CHECK(headers == NULL);
    CHECK_HR(IBackgroundCopyJobHttpOptions_SetCustomHeaders(options, u"X-Test: 1\r\n"), S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions_GetCustomHeaders(options, &headers), S_OK);
    CHECK(wide_is(headers, "X-Test: 1\r\n"));
    CoTaskMemFree(headers);
    too_long = (WCHAR *)malloc(20000 * sizeof(WCHAR));
    if (too_long != NULL) {
        for (i = 0; i < 19999; i++) {
            too_long[i] = 'h';
        }
        too_long[19999] = 0;
        CHECK_HR(IBackgroundCopyJobHttpOptions_SetCustomHeaders(options, too_long),
                 BG_E_STRING_TOO_LONG);
        free(too_long);
    }
    CHECK_HR(IBackgroundCopyJobHttpOptions_SetCustomHeaders(options, NULL), S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions_GetCustomHeaders(options, &headers), S_FALSE);

    CHECK_HR(IBackgroundCopyJobHttpOptions_GetSecurityFlags(options, &flags), S_OK);
    CHECK(flags == 0);
    CHECK_HR(IBackgroundCopyJobHttpOptions_SetSecurityFlags(
                 options, BG_SSL_IGNORE_UNKNOWN_CA | BG_HTTP_REDIRECT_POLICY_ALLOW_REPORT),
             S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions_GetSecurityFlags(options, &flags), S_OK);
    CHECK(flags == (BG_SSL_IGNORE_UNKNOWN_CA | BG_HTTP_REDIRECT_POLICY_ALLOW_REPORT));
    CHECK_HR(IBackgroundCopyJobHttpOptions_SetSecurityFlags(options, 0x10000), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJobHttpOptions_SetSecurityFlags(options, 0), S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions_GetSecurityFlags(options, NULL), E_POINTER);
    IBackgroundCopyJobHttpOptions_Release(options);
}

static void token_options(IBackgroundCopyJob *job)
{
    IBitsTokenOptions *tokens = NULL;
    BG_TOKEN flags = 0;
    LPWSTR sid = NULL;

    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBitsTokenOptions,
                                                    (void **)&tokens),
                  S_OK)) {
        return;
    }
    /* Windows helper tokens have no Linux meaning: documented E_NOTIMPL. */
    CHECK_HR(IBitsTokenOptions_SetHelperTokenFlags(tokens, BG_TOKEN_NETWORK), E_NOTIMPL);
    CHECK_HR(IBitsTokenOptions_GetHelperTokenFlags(tokens, &flags), E_NOTIMPL);
    CHECK_HR(IBitsTokenOptions_SetHelperToken(tokens), E_NOTIMPL);
    CHECK_HR(IBitsTokenOptions_ClearHelperToken(tokens), E_NOTIMPL);
    CHECK_HR(IBitsTokenOptions_GetHelperTokenSid(tokens, &sid), E_NOTIMPL);
    IBitsTokenOptions_Release(tokens);
}

static void adding_files(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job(manager, u"adding files");
    IBackgroundCopyJob3 *job3 = NULL;
    IEnumBackgroundCopyFiles *files = NULL;
    IBackgroundCopyFile *file = NULL;
    WCHAR *url = url_of(place, "/data/1k/add");
    WCHAR *local = work_path_wide(place, "add.bin");
    WCHAR *new_base = widen("http://localhost:1");
    WCHAR *old_base = widen(place->base_url);
    WCHAR bad_utf16[] = {'/', 't', 'm', 'p', '/', 0xD83D, 0};
    BG_FILE_INFO set[2];
    LPWSTR remote = NULL;
    ULONG count = 0;

    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, u"relative/add.bin"), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, u"gopher://example.invalid/x", local), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, NULL, local), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, NULL), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, bad_utf16), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob_AddFileSet(job, 0, set), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJob_AddFileSet(job, 1, NULL), E_POINTER);

    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local), S_OK);
    set[0].RemoteName = url;
    set[0].LocalName = work_path_wide(place, "set1.bin");
    set[1].RemoteName = url;
    set[1].LocalName = work_path_wide(place, "set2.bin");
    CHECK_HR(IBackgroundCopyJob_AddFileSet(job, 2, set), S_OK);
    CHECK_HR(IBackgroundCopyJob_EnumFiles(job, &files), S_OK);
    CHECK_HR(IEnumBackgroundCopyFiles_GetCount(files, &count), S_OK);
    CHECK(count == 3);
    IEnumBackgroundCopyFiles_Release(files);
    CHECK_HR(IBackgroundCopyJob_EnumFiles(job, NULL), E_POINTER);

    if (CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob3,
                                                   (void **)&job3),
                 S_OK)) {
        CHECK_HR(IBackgroundCopyJob3_ReplaceRemotePrefix(job3, old_base, new_base), S_OK);
        CHECK_HR(IBackgroundCopyJob3_ReplaceRemotePrefix(job3, u"ftp://nothing.invalid",
                                                         new_base),
                 S_FALSE);
        CHECK_HR(IBackgroundCopyJob3_ReplaceRemotePrefix(job3, u"", new_base), E_INVALIDARG);
        CHECK_HR(IBackgroundCopyJob3_EnumFiles(job3, &files), S_OK);
        if (CHECK_HR(IEnumBackgroundCopyFiles_Next(files, 1, &file, NULL), S_OK)) {
            CHECK_HR(IBackgroundCopyFile_GetRemoteName(file, &remote), S_OK);
            CHECK(wide_is(remote, "http://localhost:1/data/1k/add"));
            CoTaskMemFree(remote);
            IBackgroundCopyFile_Release(file);
        }
        IEnumBackgroundCopyFiles_Release(files);
        IBackgroundCopyJob3_Release(job3);
    }
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob_Release(job);
    free(set[0].LocalName);
    free(set[1].LocalName);
    free(url);
    free(local);
    free(new_base);
    free(old_base);
}

static void transfer_and_complete(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, "/data/64k/first", "first.bin");
    WCHAR *url = url_of(place, "/data/10k/second");
    WCHAR *local = work_path_wide(place, "second.bin");
    char *first = work_path(place, "first.bin");
    char *second = work_path(place, "second.bin");
    BG_JOB_PROGRESS progress;
    BG_JOB_TIMES times;
    BG_JOB_STATE state;

    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    state = wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60);
    CHECK(state == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob_GetProgress(job, &progress), S_OK);
    CHECK(progress.BytesTotal == 65536 + 10240 && progress.BytesTransferred == 65536 + 10240);
    CHECK(progress.FilesTotal == 2 && progress.FilesTransferred == 2);
    CHECK_HR(IBackgroundCopyJob_GetTimes(job, &times), S_OK);
    CHECK(times.TransferCompletionTime.dwHighDateTime != 0);
    /* A finished file appears under its name only on Complete. */
    CHECK(file_size(first) == -1 && file_size(second) == -1);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK(served_file_matches(first, "/data/64k/first", 65536));
    CHECK(served_file_matches(second, "/data/10k/second", 10240));
    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(state == BG_JOB_STATE_ACKNOWLEDGED);

    /* After Complete the job has left the queue: changes are BG_E_INVALID_STATE. */
    CHECK_HR(IBackgroundCopyJob_Complete(job), BG_E_INVALID_STATE);
    CHECK_HR(IBackgroundCopyJob_Resume(job), BG_E_INVALID_STATE);
    CHECK_HR(IBackgroundCopyJob_Suspend(job), BG_E_INVALID_STATE);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), BG_E_INVALID_STATE);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local), BG_E_INVALID_STATE);
    CHECK_HR(IBackgroundCopyJob_SetDescription(job, u"too late"), BG_E_INVALID_STATE);
    IBackgroundCopyJob_Release(job);
    free(url);
    free(local);
    free(first);
    free(second);
}

/* Complete onto a destination that is a directory: a specific code, not E_FAIL, and the
 * job stays TRANSFERRED for another Complete once the directory is gone. */
/* A job with `scheme` credentials for a server that demands them, resumed and waited for. */
static BG_JOB_STATE download_with_credentials(IBackgroundCopyManager *manager,
                                              const TestPlace *place, const char *url_path,
                                              const char *local, BG_AUTH_SCHEME scheme,
                                              const WCHAR *password, int remove_them,
                                              IBackgroundCopyJob **out)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, url_path, local);
    IBackgroundCopyJob2 *job2 = NULL;
    BG_AUTH_CREDENTIALS credentials;
    BG_JOB_STATE state = BG_JOB_STATE_ERROR;

    *out = job;
    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob2,
                                                    (void **)&job2),
                  S_OK)) {
        return state;
    }
    memset(&credentials, 0, sizeof credentials);
    credentials.Target = BG_AUTH_TARGET_SERVER;
    credentials.Scheme = scheme;
    credentials.Credentials.Basic.UserName = (LPWSTR)u"bits-user";
    credentials.Credentials.Basic.Password = (LPWSTR)password;
    CHECK_HR(IBackgroundCopyJob2_SetCredentials(job2, &credentials), S_OK);
    if (remove_them) {
        CHECK_HR(IBackgroundCopyJob2_RemoveCredentials(job2, BG_AUTH_TARGET_SERVER, scheme), S_OK);
    }
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    state = wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60);
    IBackgroundCopyJob2_Release(job2);
    return state;
}

/* The test server's auth=basic / auth=digest demand user "bits-user", password "s3cret pass". */
static void credentials_reach_the_server(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = NULL;
    IBackgroundCopyError *error = NULL;
    BG_ERROR_CONTEXT context;
    HRESULT code = S_OK;
    char *basic = work_path(place, "basic.bin");
    char *digest = work_path(place, "digest.bin");

    CHECK(download_with_credentials(manager, place, "/data/8k/basic?auth=basic", "basic.bin",
                                    BG_AUTH_SCHEME_BASIC, u"s3cret pass", 0,
                                    &job) == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK(served_file_matches(basic, "/data/8k/basic", 8192));
    IBackgroundCopyJob_Release(job);

    CHECK(download_with_credentials(manager, place, "/data/8k/digest?auth=digest", "digest.bin",
                                    BG_AUTH_SCHEME_DIGEST, u"s3cret pass", 0,
                                    &job) == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK(served_file_matches(digest, "/data/8k/digest", 8192));
    IBackgroundCopyJob_Release(job);

    /* Removed credentials, or a wrong password: HTTP 401, and the job stops in ERROR. */
    CHECK(download_with_credentials(manager, place, "/data/1k/removed?auth=basic", "removed.bin",
                                    BG_AUTH_SCHEME_BASIC, u"s3cret pass", 1,
                                    &job) == BG_JOB_STATE_ERROR);
    if (CHECK_HR(IBackgroundCopyJob_GetError(job, &error), S_OK)) {
        CHECK_HR(IBackgroundCopyError_GetError(error, &context, &code), S_OK);
        CHECK(code == BG_E_HTTP_ERROR_401 && context == BG_ERROR_CONTEXT_REMOTE_FILE);
        IBackgroundCopyError_Release(error);
    }
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob_Release(job);
    CHECK(download_with_credentials(manager, place, "/data/1k/wrong?auth=digest", "wrong.bin",
                                    BG_AUTH_SCHEME_DIGEST, u"not it", 0,
                                    &job) == BG_JOB_STATE_ERROR);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob_Release(job);
    free(basic);
    free(digest);
}

static void complete_onto_a_directory(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, "/data/1000", "in-the-way");
    char *local = work_path(place, "in-the-way");
    BG_JOB_STATE state;

    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK(mkdir(local, 0700) == 0);
    /* HRESULT_FROM_WIN32(ERROR_DIRECTORY_NOT_SUPPORTED) */
    CHECK_HR(IBackgroundCopyJob_Complete(job), (HRESULT)0x80070150);
    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(state == BG_JOB_STATE_TRANSFERRED);
    CHECK(rmdir(local) == 0);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK(served_file_matches(local, "/data/1000", 1000));
    IBackgroundCopyJob_Release(job);
    free(local);
}

static void suspend_resume_cancel(IBackgroundCopyManager *manager, const TestPlace *place)
{
    /* 1 MiB at 64 KiB/s: still transferring while the job is suspended and cancelled. */
    IBackgroundCopyJob *job =
        new_job_with_file(manager, place, "/data/1m/slow?rate=65536", "slow.bin");
    char *slow = work_path(place, "slow.bin");
    BG_JOB_STATE state;

    CHECK_HR(IBackgroundCopyJob_Suspend(job), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    state = wait_for_state(job, BG_JOB_STATE_TRANSFERRING, 30);
    CHECK(state == BG_JOB_STATE_TRANSFERRING);
    CHECK_HR(IBackgroundCopyJob_Suspend(job), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(state == BG_JOB_STATE_SUSPENDED);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetState(job, &state), S_OK);
    CHECK(state == BG_JOB_STATE_CANCELLED);
    CHECK(file_size(slow) == -1);
    CHECK_HR(IBackgroundCopyJob_Resume(job), BG_E_INVALID_STATE);
    CHECK_HR(IBackgroundCopyJob_Complete(job), BG_E_INVALID_STATE);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), BG_E_INVALID_STATE);
    CHECK_HR(IBackgroundCopyJob_SetDisplayName(job, u"too late"), BG_E_INVALID_STATE);
    IBackgroundCopyJob_Release(job);
    free(slow);
}

/* The first file transfers, the second is a 404: the job stops in ERROR, its error names
 * the second file, and Complete keeps only the first (BG_S_PARTIAL_COMPLETE). */
/* IBackgroundCopyJobHttpOptions2: a method of the caller's choice. The job moves to the
 * foreground for good, the server sees the method, and an error that would be retried
 * stops the job in ERROR instead. */
static void http_method(IBackgroundCopyManager *manager, const TestPlace *place)
{
    IBackgroundCopyJob *job =
        new_job_with_file(manager, place, "/data/4k/posted?any_method=1", "posted.bin");
    IBackgroundCopyJob *busy =
        new_job_with_file(manager, place, "/data/1k/busy?status=503", "busy.bin");
    IBackgroundCopyJobHttpOptions2 *options = NULL;
    IBackgroundCopyJobHttpOptions2 *busy_options = NULL;
    BG_JOB_PRIORITY priority = BG_JOB_PRIORITY_LOW;
    LPWSTR method = NULL;
    char *posted = work_path(place, "posted.bin");

    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJobHttpOptions2,
                                                    (void **)&options),
                  S_OK)) {
        return;
    }
    CHECK_HR(IBackgroundCopyJobHttpOptions2_GetHttpMethod(options, &method), S_OK);
    CHECK(method != NULL && wide_is(method, "GET"));
    CoTaskMemFree(method);
    CHECK_HR(IBackgroundCopyJob_SetPriority(job, BG_JOB_PRIORITY_LOW), S_OK);
    /* GET is the default: nothing changes. */
    CHECK_HR(IBackgroundCopyJobHttpOptions2_SetHttpMethod(options, u"GET"), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetPriority(job, &priority), S_OK);
    CHECK(priority == BG_JOB_PRIORITY_LOW);
    CHECK_HR(IBackgroundCopyJobHttpOptions2_SetHttpMethod(options, u"HEAD"), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJobHttpOptions2_SetHttpMethod(options, u"NOT A TOKEN"),
             E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJobHttpOptions2_SetHttpMethod(options, NULL), E_INVALIDARG);
    CHECK_HR(IBackgroundCopyJobHttpOptions2_GetHttpMethod(options, NULL), E_POINTER);
    CHECK_HR(IBackgroundCopyJobHttpOptions2_SetHttpMethod(options, u"POST"), S_OK);
    CHECK_HR(IBackgroundCopyJobHttpOptions2_GetHttpMethod(options, &method), S_OK);
    CHECK(method != NULL && wide_is(method, "POST"));
    CoTaskMemFree(method);
    CHECK_HR(IBackgroundCopyJob_GetPriority(job, &priority), S_OK);
    CHECK(priority == BG_JOB_PRIORITY_FOREGROUND);
    CHECK_HR(IBackgroundCopyJob_SetPriority(job, BG_JOB_PRIORITY_NORMAL),
             BG_E_NOT_SUPPORTED_WITH_CUSTOM_HTTP_METHOD);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_TRANSFERRED, 60) == BG_JOB_STATE_TRANSFERRED);
    CHECK_HR(IBackgroundCopyJob_Complete(job), S_OK);
    CHECK(served_file_matches(posted, "/data/4k/posted", 4096));

    if (CHECK_HR(IBackgroundCopyJob_QueryInterface(busy, &IID_IBackgroundCopyJobHttpOptions2,
                                                   (void **)&busy_options),
                 S_OK)) {
        CHECK_HR(IBackgroundCopyJobHttpOptions2_SetHttpMethod(busy_options, u"PUT"), S_OK);
        CHECK_HR(IBackgroundCopyJob_Resume(busy), S_OK);
        /* A 503 is retried for a GET; with its own method the job stops at once. */
        CHECK(wait_for_state(busy, BG_JOB_STATE_ERROR, 60) == BG_JOB_STATE_ERROR);
        IBackgroundCopyJobHttpOptions2_Release(busy_options);
    }
    CHECK_HR(IBackgroundCopyJob_Cancel(busy), S_OK);
    IBackgroundCopyJobHttpOptions2_Release(options);
    IBackgroundCopyJob_Release(job);
    IBackgroundCopyJob_Release(busy);
    free(posted);
}

static HRESULT set_enable(IBackgroundCopyJob5 *job5, BITS_JOB_PROPERTY_ID id, BOOL enable)
{
    BITS_JOB_PROPERTY_VALUE value;
    memset(&value, 0, sizeof value);
    value.Enable = enable;
    return IBackgroundCopyJob5_SetProperty(job5, id, value);
}

/* What Microsoft allows only before the first file (HIGH_PERFORMANCE) or the first Resume
 * (DYNAMIC_CONTENT, MAX_DOWNLOAD_SIZE, the HTTP method), and what does not go together. */
static void properties_fixed_by_files_and_resume(IBackgroundCopyManager *manager,
                                                 const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job(manager, u"qmgr C test: fixed properties");
    IBackgroundCopyJob *other = new_job(manager, u"qmgr C test: own method");
    IBackgroundCopyJob *again = NULL;
    IBackgroundCopyJob5 *job5 = NULL, *other5 = NULL, *again5 = NULL;
    IBackgroundCopyJobHttpOptions2 *options = NULL;
    BITS_JOB_PROPERTY_VALUE value;
    WCHAR *url = url_of(place, "/data/1m/fixed?rate=8000");
    WCHAR *local = work_path_wide(place, "fixed.bin");
    GUID id;

    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob5,
                                                    (void **)&job5),
                  S_OK) ||
        !CHECK_HR(IBackgroundCopyJob_QueryInterface(other, &IID_IBackgroundCopyJob5,
                                                    (void **)&other5),
                  S_OK)) {
        return;
    }
    CHECK_HR(set_enable(job5, BITS_JOB_PROPERTY_HIGH_PERFORMANCE, TRUE), S_OK);
    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local), S_OK);
    CHECK_HR(set_enable(job5, BITS_JOB_PROPERTY_HIGH_PERFORMANCE, FALSE),
             BG_E_READ_ONLY_PROPERTY_AFTER_ADDFILE);
    CHECK_HR(set_enable(job5, BITS_JOB_PROPERTY_DYNAMIC_CONTENT, TRUE), S_OK);
    /* Held by the service: another object of the job sees both. */
    CHECK_HR(IBackgroundCopyJob_GetId(job, &id), S_OK);
    if (CHECK_HR(IBackgroundCopyManager_GetJob(manager, &id, &again), S_OK) &&
        CHECK_HR(IBackgroundCopyJob_QueryInterface(again, &IID_IBackgroundCopyJob5,
                                                   (void **)&again5),
                 S_OK)) {
        memset(&value, 0, sizeof value);
        CHECK_HR(IBackgroundCopyJob5_GetProperty(again5, BITS_JOB_PROPERTY_HIGH_PERFORMANCE,
                                                 &value),
                 S_OK);
        CHECK(value.Enable == TRUE);
        CHECK_HR(IBackgroundCopyJob5_GetProperty(again5, BITS_JOB_PROPERTY_DYNAMIC_CONTENT,
                                                 &value),
                 S_OK);
        CHECK(value.Enable == TRUE);
        IBackgroundCopyJob5_Release(again5);
    }
    if (again != NULL) {
        IBackgroundCopyJob_Release(again);
    }
    if (CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJobHttpOptions2,
                                                   (void **)&options),
                 S_OK)) {
        CHECK_HR(IBackgroundCopyJobHttpOptions2_SetHttpMethod(options, u"POST"),
                 BG_E_NOT_SUPPORTED_WITH_CUSTOM_HTTP_METHOD);
        IBackgroundCopyJobHttpOptions2_Release(options);
    }
    memset(&value, 0, sizeof value);
    value.Uint64 = 1u << 30;
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE, value),
             S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK_HR(IBackgroundCopyJob_Suspend(job), S_OK);
    CHECK_HR(set_enable(job5, BITS_JOB_PROPERTY_DYNAMIC_CONTENT, FALSE),
             BG_E_READ_ONLY_PROPERTY_AFTER_RESUME);
    CHECK_HR(IBackgroundCopyJob5_SetProperty(job5, BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE, value),
             BG_E_READ_ONLY_PROPERTY_AFTER_RESUME);

    /* A job with its own method cannot be dynamic, and keeps its method once resumed. */
    if (CHECK_HR(IBackgroundCopyJob_QueryInterface(other, &IID_IBackgroundCopyJobHttpOptions2,
                                                   (void **)&options),
                 S_OK)) {
        CHECK_HR(IBackgroundCopyJobHttpOptions2_SetHttpMethod(options, u"POST"), S_OK);
        CHECK_HR(set_enable(other5, BITS_JOB_PROPERTY_DYNAMIC_CONTENT, TRUE),
                 BG_E_NOT_SUPPORTED_WITH_CUSTOM_HTTP_METHOD);
        CHECK_HR(IBackgroundCopyJob_AddFile(other, url, local), S_OK);
        CHECK_HR(IBackgroundCopyJob_Resume(other), S_OK);
        CHECK_HR(IBackgroundCopyJob_Suspend(other), S_OK);
        CHECK_HR(IBackgroundCopyJobHttpOptions2_SetHttpMethod(options, u"PUT"),
                 BG_E_READ_ONLY_PROPERTY_AFTER_RESUME);
        IBackgroundCopyJobHttpOptions2_Release(options);
    }
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    CHECK_HR(IBackgroundCopyJob_Cancel(other), S_OK);
    IBackgroundCopyJob5_Release(job5);
    IBackgroundCopyJob5_Release(other5);
    IBackgroundCopyJob_Release(job);
    IBackgroundCopyJob_Release(other);
    free(url);
    free(local);
}

/* MaximumDownloadTime is the service's: another object of the job sees it, and a job still
 * transferring when it runs out stops in ERROR with BG_E_MAXDOWNLOAD_TIMEOUT. */
static void maximum_download_time_runs_out(IBackgroundCopyManager *manager,
                                           const TestPlace *place)
{
    IBackgroundCopyJob *job =
        new_job_with_file(manager, place, "/data/4m/maxtime?rate=2000", "maxtime.bin");
    IBackgroundCopyJob *again = NULL;
    IBackgroundCopyJob4 *job4 = NULL;
    IBackgroundCopyError *error = NULL;
    BG_ERROR_CONTEXT context = BG_ERROR_CONTEXT_NONE;
    HRESULT code = S_OK;
    ULONG seconds = 0;
    GUID id;

    if (!CHECK_HR(IBackgroundCopyJob_QueryInterface(job, &IID_IBackgroundCopyJob4,
                                                    (void **)&job4),
                  S_OK)) {
        return;
    }
    CHECK_HR(IBackgroundCopyJob4_SetMaximumDownloadTime(job4, 1), S_OK);
    CHECK_HR(IBackgroundCopyJob_GetId(job, &id), S_OK);
    if (CHECK_HR(IBackgroundCopyManager_GetJob(manager, &id, &again), S_OK)) {
        IBackgroundCopyJob4 *other = NULL;
        if (CHECK_HR(IBackgroundCopyJob_QueryInterface(again, &IID_IBackgroundCopyJob4,
                                                       (void **)&other),
                     S_OK)) {
            CHECK_HR(IBackgroundCopyJob4_GetMaximumDownloadTime(other, &seconds), S_OK);
            CHECK(seconds == 1);
            IBackgroundCopyJob4_Release(other);
        }
        IBackgroundCopyJob_Release(again);
    }
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_ERROR, 60) == BG_JOB_STATE_ERROR);
    if (CHECK_HR(IBackgroundCopyJob_GetError(job, &error), S_OK)) {
        CHECK_HR(IBackgroundCopyError_GetError(error, &context, &code), S_OK);
        CHECK(code == BG_E_MAXDOWNLOAD_TIMEOUT);
        IBackgroundCopyError_Release(error);
    }
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob4_Release(job4);
    IBackgroundCopyJob_Release(job);
}

static void job_error_and_partial_complete(IBackgroundCopyManager *manager,
                                           const TestPlace *place)
{
    IBackgroundCopyJob *job = new_job_with_file(manager, place, "/data/1k/present", "ok.bin");
    WCHAR *url = url_of(place, "/data/1k/missing?status=404");
    WCHAR *local = work_path_wide(place, "missing.bin");
    char *kept = work_path(place, "ok.bin");
    char *missing = work_path(place, "missing.bin");
    IBackgroundCopyError *error = NULL;
    IBackgroundCopyFile *file = NULL;
    BG_ERROR_CONTEXT context = BG_ERROR_CONTEXT_NONE;
    HRESULT code = S_OK;
    LPWSTR text = NULL;
    ULONG count = 0;

    CHECK_HR(IBackgroundCopyJob_AddFile(job, url, local), S_OK);
    CHECK_HR(IBackgroundCopyJob_Resume(job), S_OK);
    CHECK(wait_for_state(job, BG_JOB_STATE_ERROR, 60) == BG_JOB_STATE_ERROR);
    CHECK_HR(IBackgroundCopyJob_GetErrorCount(job, &count), S_OK);
    CHECK(count >= 1);
    if (CHECK_HR(IBackgroundCopyJob_GetError(job, &error), S_OK)) {
        CHECK_HR(IBackgroundCopyError_GetError(error, &context, &code), S_OK);
        CHECK(context == BG_ERROR_CONTEXT_REMOTE_FILE);
        CHECK(code == BG_E_HTTP_ERROR_404);
        if (CHECK_HR(IBackgroundCopyError_GetFile(error, &file), S_OK)) {
            CHECK_HR(IBackgroundCopyFile_GetLocalName(file, &text), S_OK);
            CHECK(text != NULL && wide_is(text, missing));
            CoTaskMemFree(text);
            IBackgroundCopyFile_Release(file);
        }
        CHECK_HR(IBackgroundCopyError_GetErrorDescription(error, 0x0409, &text), S_OK);
        CHECK(text != NULL && text[0] != 0);
        CoTaskMemFree(text);
        CHECK_HR(IBackgroundCopyError_GetErrorContextDescription(error, 0x0409, &text), S_OK);
        CHECK(text != NULL && text[0] != 0);
        CoTaskMemFree(text);
        CHECK_HR(IBackgroundCopyError_GetProtocol(error, &text), S_OK);
        CHECK(wide_is(text, "http"));
        CoTaskMemFree(text);
        CHECK_HR(IBackgroundCopyError_GetError(error, NULL, &code), E_POINTER);
        CHECK_HR(IBackgroundCopyError_GetFile(error, NULL), E_POINTER);
        IBackgroundCopyError_Release(error);
    }
    CHECK_HR(IBackgroundCopyJob_Complete(job), BG_S_PARTIAL_COMPLETE);
    CHECK(served_file_matches(kept, "/data/1k/present", 1024) && file_size(missing) == -1);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), BG_E_INVALID_STATE);
    IBackgroundCopyJob_Release(job);
    free(url);
    free(local);
    free(kept);
    free(missing);
}

int main(int argc, char **argv)
{
    TestPlace place = test_place(argc, argv);
    IBackgroundCopyManager *manager;
    IBackgroundCopyJob *job;

    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    job = new_job(manager, u"qmgr C test");
    names_and_settings(job);
    proxy_and_owner(job);
    state_progress_times(job);
    job2_methods(job);
    job3_to_job5_methods(job);
    http_options(job);
    token_options(job);
    CHECK_HR(IBackgroundCopyJob_Cancel(job), S_OK);
    IBackgroundCopyJob_Release(job);

    adding_files(manager, &place);
    transfer_and_complete(manager, &place);
    suspend_resume_cancel(manager, &place);
    complete_onto_a_directory(manager, &place);
    credentials_reach_the_server(manager, &place);
    job_error_and_partial_complete(manager, &place);
    maximum_download_time_runs_out(manager, &place);
    http_method(manager, &place);
    properties_fixed_by_files_and_resume(manager, &place);

    IBackgroundCopyManager_Release(manager);
    CoUninitialize();
    return check_summary("test_job");
}
