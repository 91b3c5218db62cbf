/* ---------------------------------------------------------------------------------------
 * Helpers Windows code uses with these interfaces.
 */
#ifndef SUCCEEDED
#define SUCCEEDED(hr) (((HRESULT)(hr)) >= 0)
#endif
#ifndef FAILED
#define FAILED(hr) (((HRESULT)(hr)) < 0)
#endif
#ifndef NOERROR
#define NOERROR 0
#endif
#ifndef FACILITY_WIN32
#define FACILITY_WIN32 7
#endif
/* A Win32 error code as an HRESULT, as winerror.h defines it: 0 (and any value that is
 * already an HRESULT failure) passes through, others get FACILITY_WIN32 and the failure bit. */
#ifndef HRESULT_FROM_WIN32
#define HRESULT_FROM_WIN32(x) \
    ((HRESULT)(x) <= 0 ? ((HRESULT)(x)) \
                       : ((HRESULT)(((x) & 0x0000FFFF) | (FACILITY_WIN32 << 16) | 0x80000000)))
#endif
/* The parts of an HRESULT, and one made from them (winerror.h). */
#ifndef HRESULT_CODE
#define HRESULT_CODE(hr) ((hr) & 0xFFFF)
#endif
#ifndef HRESULT_FACILITY
#define HRESULT_FACILITY(hr) (((hr) >> 16) & 0x1FFF)
#endif
#ifndef HRESULT_SEVERITY
#define HRESULT_SEVERITY(hr) (((hr) >> 31) & 0x1)
#endif
#ifndef SEVERITY_SUCCESS
#define SEVERITY_SUCCESS 0
#endif
#ifndef SEVERITY_ERROR
#define SEVERITY_ERROR 1
#endif
#ifndef MAKE_HRESULT
#define MAKE_HRESULT(sev, fac, code) \
    ((HRESULT)(((uint32_t)(sev) << 31) | ((uint32_t)(fac) << 16) | ((uint32_t)(code))))
#endif
#ifndef UNREFERENCED_PARAMETER
#define UNREFERENCED_PARAMETER(P) ((void)(P))
#endif

/* The reference counting of callback objects: atomic, returning the new value, as
 * winnt.h's InterlockedIncrement/InterlockedDecrement. */
#ifndef InterlockedIncrement
static inline LONG qmgr_interlocked_increment(LONG volatile *Addend)
{
    return __atomic_add_fetch(Addend, 1, __ATOMIC_SEQ_CST);
}
#define InterlockedIncrement qmgr_interlocked_increment
#endif
#ifndef InterlockedDecrement
static inline LONG qmgr_interlocked_decrement(LONG volatile *Addend)
{
    return __atomic_sub_fetch(Addend, 1, __ATOMIC_SEQ_CST);
}
#define InterlockedDecrement qmgr_interlocked_decrement
#endif

#ifdef __cplusplus
extern "C++" {
inline bool IsEqualGUID(REFGUID rguid1, REFGUID rguid2)
{
    return memcmp(&rguid1, &rguid2, sizeof(GUID)) == 0;
}
inline bool operator==(REFGUID rguid1, REFGUID rguid2)
{
    return IsEqualGUID(rguid1, rguid2);
}
inline bool operator!=(REFGUID rguid1, REFGUID rguid2)
{
    return !IsEqualGUID(rguid1, rguid2);
}

/* __uuidof(X) names the IID of interface X or the CLSID of class X (or of the type an
 * expression X has, through pointers), as mingw-w64 provides it for g++. */
template <typename T> struct qmgr_uuidof_traits;
template <typename T> struct qmgr_uuidof_traits<T *> : qmgr_uuidof_traits<T> {};
template <typename T> struct qmgr_uuidof_traits<const T> : qmgr_uuidof_traits<T> {};
}
#ifndef __uuidof
#define __uuidof(x) (qmgr_uuidof_traits<__typeof__(x)>::value())
#endif
#ifndef IID_PPV_ARGS
#define IID_PPV_ARGS(pp) __uuidof(**(pp)), reinterpret_cast<void **>(pp)
#endif
#else
static inline int IsEqualGUID(REFGUID rguid1, REFGUID rguid2)
{
    return memcmp(rguid1, rguid2, sizeof(GUID)) == 0;
}
#endif
#ifndef IsEqualIID
#define IsEqualIID(riid1, riid2) IsEqualGUID(riid1, riid2)
#endif
#ifndef IsEqualCLSID
#define IsEqualCLSID(rclsid1, rclsid2) IsEqualGUID(rclsid1, rclsid2)
#endif
