/* test_peer_cache.c: IBitsPeerCacheAdministration, reached by QueryInterface on the manager.
 *
 * Peer caching was retired in BITS 4.0; as on current Windows the cache is empty and no
 * peer is known:
 * - QueryInterface both ways (manager <-> administration) keeps COM's identity rule, and
 *   CoCreateInstance hands the interface out directly;
 * - the getters answer S_FALSE with zero; the setters, ClearRecords, DeleteRecord,
 *   DeleteUrl, ClearPeers and DiscoverPeers S_FALSE;
 * - EnumRecords and EnumPeers give empty enumerators (Next fetches nothing, Skip skips
 *   nothing, Reset, Clone and GetCount work);
 * - GetRecord is BG_E_NOT_FOUND with a NULL record;
 * - bad arguments: NULL out-pointers and ids are E_POINTER, a NULL URL, a cache size over
 *   100 % and unknown configuration flags E_INVALIDARG.
 */
#include "support.h"

static void identity(IBackgroundCopyManager *manager, IBitsPeerCacheAdministration *admin)
{
    IUnknown *from_manager = NULL, *from_admin = NULL;
    IBackgroundCopyManager *back = NULL;
    IBitsPeerCacheAdministration *direct = NULL;

    CHECK_HR(IBackgroundCopyManager_QueryInterface(manager, &IID_IUnknown,
                                                   (void **)&from_manager),
             S_OK);
    CHECK_HR(IBitsPeerCacheAdministration_QueryInterface(admin, &IID_IUnknown,
                                                         (void **)&from_admin),
             S_OK);
    CHECK(from_manager != NULL && from_manager == from_admin);
    CHECK_HR(IBitsPeerCacheAdministration_QueryInterface(admin, &IID_IBackgroundCopyManager,
                                                         (void **)&back),
             S_OK);
    CHECK(back == manager);
    if (from_manager != NULL) {
        IUnknown_Release(from_manager);
    }
    if (from_admin != NULL) {
        IUnknown_Release(from_admin);
    }
    if (back != NULL) {
        IBackgroundCopyManager_Release(back);
    }
    /* Every reference goes through the one object: AddRef/Release answer its count. */
    CHECK(IBitsPeerCacheAdministration_AddRef(admin) == 3);
    CHECK(IBitsPeerCacheAdministration_Release(admin) == 2);

    CHECK_HR(CoCreateInstance(&CLSID_BackgroundCopyManager, NULL, CLSCTX_LOCAL_SERVER,
                              &IID_IBitsPeerCacheAdministration, (void **)&direct),
             S_OK);
    if (CHECK(direct != NULL)) {
        CHECK_HR(IBitsPeerCacheAdministration_DiscoverPeers(direct), S_FALSE);
        CHECK(IBitsPeerCacheAdministration_Release(direct) == 0);
    }
}

static void settings(IBitsPeerCacheAdministration *admin)
{
    DWORD bytes = 77, flags = 77;
    ULONG seconds = 77;

    CHECK_HR(IBitsPeerCacheAdministration_GetMaximumCacheSize(admin, &bytes), S_FALSE);
    CHECK(bytes == 0);
    CHECK_HR(IBitsPeerCacheAdministration_SetMaximumCacheSize(admin, 10), S_FALSE);
    CHECK_HR(IBitsPeerCacheAdministration_SetMaximumCacheSize(admin, 101), E_INVALIDARG);
    CHECK_HR(IBitsPeerCacheAdministration_GetMaximumCacheSize(admin, NULL), E_POINTER);

    CHECK_HR(IBitsPeerCacheAdministration_GetMaximumContentAge(admin, &seconds), S_FALSE);
    CHECK(seconds == 0);
    CHECK_HR(IBitsPeerCacheAdministration_SetMaximumContentAge(admin, 86400), S_FALSE);
    CHECK_HR(IBitsPeerCacheAdministration_GetMaximumContentAge(admin, NULL), E_POINTER);

    CHECK_HR(IBitsPeerCacheAdministration_GetConfigurationFlags(admin, &flags), S_FALSE);
    CHECK(flags == 0);
    CHECK_HR(IBitsPeerCacheAdministration_SetConfigurationFlags(
                 admin, BG_ENABLE_PEERCACHING_CLIENT | BG_ENABLE_PEERCACHING_SERVER),
             S_FALSE);
    CHECK_HR(IBitsPeerCacheAdministration_SetConfigurationFlags(admin, 0x100), E_INVALIDARG);
    /* Accepted, with no effect: peer caching stays off. */
    CHECK_HR(IBitsPeerCacheAdministration_GetConfigurationFlags(admin, &flags), S_FALSE);
    CHECK(flags == 0);
    CHECK_HR(IBitsPeerCacheAdministration_GetConfigurationFlags(admin, NULL), E_POINTER);
}

static void records(IBitsPeerCacheAdministration *admin)
{
    static const GUID some_id = {0x12345678, 0x1234, 0x5678, {1, 2, 3, 4, 5, 6, 7, 8}};
    IEnumBitsPeerCacheRecords *records = NULL, *copy = NULL;
    IBitsPeerCacheRecord *record = (IBitsPeerCacheRecord *)&record;
    IBitsPeerCacheRecord *batch[2] = {NULL, NULL};
    ULONG count = 77, fetched = 77;

    if (CHECK_HR(IBitsPeerCacheAdministration_EnumRecords(admin, &records), S_OK) &&
        CHECK(records != NULL)) {
        CHECK_HR(IEnumBitsPeerCacheRecords_GetCount(records, &count), S_OK);
        CHECK(count == 0);
        CHECK_HR(IEnumBitsPeerCacheRecords_Next(records, 2, batch, &fetched), S_FALSE);
        CHECK(fetched == 0 && batch[0] == NULL);
        CHECK_HR(IEnumBitsPeerCacheRecords_Next(records, 1, batch, NULL), S_FALSE);
        CHECK_HR(IEnumBitsPeerCacheRecords_Next(records, 0, NULL, &fetched), S_OK);
        CHECK_HR(IEnumBitsPeerCacheRecords_Next(records, 2, batch, NULL), E_INVALIDARG);
        CHECK_HR(IEnumBitsPeerCacheRecords_Next(records, 1, NULL, &fetched), E_POINTER);
        CHECK_HR(IEnumBitsPeerCacheRecords_Skip(records, 1), S_FALSE);
        CHECK_HR(IEnumBitsPeerCacheRecords_Skip(records, 0), S_OK);
        CHECK_HR(IEnumBitsPeerCacheRecords_Reset(records), S_OK);
        if (CHECK_HR(IEnumBitsPeerCacheRecords_Clone(records, &copy), S_OK) &&
            CHECK(copy != NULL && copy != records)) {
            CHECK_HR(IEnumBitsPeerCacheRecords_GetCount(copy, &count), S_OK);
            CHECK(count == 0);
            CHECK(IEnumBitsPeerCacheRecords_Release(copy) == 0);
        }
        CHECK_HR(IEnumBitsPeerCacheRecords_GetCount(records, NULL), E_POINTER);
        CHECK(IEnumBitsPeerCacheRecords_Release(records) == 0);
    }
    CHECK_HR(IBitsPeerCacheAdministration_EnumRecords(admin, NULL), E_POINTER);

    CHECK_HR(IBitsPeerCacheAdministration_GetRecord(admin, &some_id, &record), BG_E_NOT_FOUND);
    CHECK(record == NULL);
    CHECK_HR(IBitsPeerCacheAdministration_GetRecord(admin, NULL, &record), E_POINTER);
    CHECK_HR(IBitsPeerCacheAdministration_GetRecord(admin, &some_id, NULL), E_POINTER);

    CHECK_HR(IBitsPeerCacheAdministration_ClearRecords(admin), S_FALSE);
    CHECK_HR(IBitsPeerCacheAdministration_DeleteRecord(admin, &some_id), S_FALSE);
    CHECK_HR(IBitsPeerCacheAdministration_DeleteRecord(admin, NULL), E_POINTER);
    CHECK_HR(IBitsPeerCacheAdministration_DeleteUrl(admin, u"https://example.com/file"),
             S_FALSE);
    CHECK_HR(IBitsPeerCacheAdministration_DeleteUrl(admin, NULL), E_INVALIDARG);
}

static void peers(IBitsPeerCacheAdministration *admin)
{
    IEnumBitsPeers *peers = NULL, *copy = NULL;
    IBitsPeer *batch[3] = {NULL, NULL, NULL};
    ULONG count = 77, fetched = 77;

    if (CHECK_HR(IBitsPeerCacheAdministration_EnumPeers(admin, &peers), S_OK) &&
        CHECK(peers != NULL)) {
        CHECK_HR(IEnumBitsPeers_GetCount(peers, &count), S_OK);
        CHECK(count == 0);
        CHECK_HR(IEnumBitsPeers_Next(peers, 3, batch, &fetched), S_FALSE);
        CHECK(fetched == 0 && batch[0] == NULL);
        CHECK_HR(IEnumBitsPeers_Skip(peers, 5), S_FALSE);
        CHECK_HR(IEnumBitsPeers_Reset(peers), S_OK);
        if (CHECK_HR(IEnumBitsPeers_Clone(peers, &copy), S_OK) && CHECK(copy != NULL)) {
            CHECK_HR(IEnumBitsPeers_Next(copy, 1, batch, NULL), S_FALSE);
            CHECK(IEnumBitsPeers_Release(copy) == 0);
        }
        CHECK_HR(IEnumBitsPeers_Clone(peers, NULL), E_POINTER);
        CHECK(IEnumBitsPeers_Release(peers) == 0);
    }
    CHECK_HR(IBitsPeerCacheAdministration_EnumPeers(admin, NULL), E_POINTER);
    CHECK_HR(IBitsPeerCacheAdministration_ClearPeers(admin), S_FALSE);
    CHECK_HR(IBitsPeerCacheAdministration_DiscoverPeers(admin), S_FALSE);
}

int main(void)
{
    IBackgroundCopyManager *manager;
    IBitsPeerCacheAdministration *admin = NULL;

    CHECK_HR(CoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    manager = new_manager();
    if (CHECK_HR(IBackgroundCopyManager_QueryInterface(
                     manager, &IID_IBitsPeerCacheAdministration, (void **)&admin),
                 S_OK) &&
        CHECK(admin != NULL && (void *)admin != (void *)manager)) {
        identity(manager, admin);
        settings(admin);
        records(admin);
        peers(admin);
        CHECK(IBitsPeerCacheAdministration_Release(admin) == 1);
    }
    CHECK(IBackgroundCopyManager_Release(manager) == 0);
    CoUninitialize();
    return check_summary("test_peer_cache");
}
