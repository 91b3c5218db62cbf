/* ---------------------------------------------------------------------------------------
 * Platform: what the Windows SDK's own headers (windows.h, guiddef.h, objbase.h) would
 * provide. Methods use the platform's C calling convention, so the calling-convention
 * macros are empty.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef STDMETHODCALLTYPE
#define STDMETHODCALLTYPE
#endif
#ifndef WINAPI
#define WINAPI
#endif
#ifndef __stdcall
#define __stdcall
#endif
#ifndef STDMETHODIMP
#define STDMETHODIMP HRESULT STDMETHODCALLTYPE
#endif
#ifndef STDMETHODIMP_
#define STDMETHODIMP_(type) type STDMETHODCALLTYPE
#endif
/* STDMETHOD(Method)(args) PURE; declares a method as objbase.h does: a pure virtual
 * function in C++, a function pointer (a vtable slot) in C. */
#ifdef __cplusplus
#ifndef STDMETHOD
#define STDMETHOD(method) virtual HRESULT STDMETHODCALLTYPE method
#endif
#ifndef STDMETHOD_
#define STDMETHOD_(type, method) virtual type STDMETHODCALLTYPE method
#endif
#ifndef PURE
#define PURE = 0
#endif
#else
#ifndef STDMETHOD
#define STDMETHOD(method) HRESULT(STDMETHODCALLTYPE *method)
#endif
#ifndef STDMETHOD_
#define STDMETHOD_(type, method) type(STDMETHODCALLTYPE *method)
#endif
#ifndef PURE
#define PURE
#endif
#endif
#ifndef BEGIN_INTERFACE
#define BEGIN_INTERFACE
#endif
#ifndef END_INTERFACE
#define END_INTERFACE
#endif
#ifndef CONST_VTBL
#ifdef CONST_VTABLE
#define CONST_VTBL const
#else
#define CONST_VTBL
#endif
#endif

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* WCHAR is one UTF-16 code unit. Code built with -fshort-wchar (as Wine builds Windows
 * code) keeps its L"..." literals; otherwise C++ uses char16_t and C uint16_t (C11's
 * char16_t), so u"..." literals work. */
#if defined(__SIZEOF_WCHAR_T__) && __SIZEOF_WCHAR_T__ == 2
typedef wchar_t WCHAR;
#elif defined(__cplusplus)
typedef char16_t WCHAR;
#else
typedef uint16_t WCHAR;
#endif

/* GUIDs are passed by reference: a pointer in C (&IID_X), a reference in C++ (IID_X). */
struct GUID;
#ifdef __cplusplus
typedef const struct GUID &REFGUID;
typedef const struct GUID &REFIID;
typedef const struct GUID &REFCLSID;
#else
typedef const struct GUID *REFGUID;
typedef const struct GUID *REFIID;
typedef const struct GUID *REFCLSID;
#endif
