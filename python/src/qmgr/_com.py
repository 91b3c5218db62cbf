"""Calling COM interfaces through their vtables, and moving strings across the boundary.

An interface pointer points at a struct whose first member points at the vtable: an array
of function pointers in the order the header declares the methods, IUnknown's three first.
Each interface's method names are listed here in that order, so a method's slot is its
index (the test suite checks the lists against include/bits.h).

WCHAR is one UTF-16 code unit; ctypes' ``c_wchar`` is 32 bits on Linux, so strings cross as
UTF-16-LE bytes.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from typing import Any, Callable

from . import _library
from ._library import DWORD, HRESULT, ULONG
from .errors import QmgrError

UNKNOWN_METHODS = ("QueryInterface", "AddRef", "Release")

#: The methods of each interface used here, in vtable order (IUnknown's included).
METHODS: dict[str, tuple[str, ...]] = {
    "IUnknown": UNKNOWN_METHODS,
    "IBackgroundCopyManager": UNKNOWN_METHODS
    + ("CreateJob", "GetJob", "EnumJobs", "GetErrorDescription"),
    "IBackgroundCopyJob": UNKNOWN_METHODS
    + (
        "AddFileSet",
        "AddFile",
        "EnumFiles",
        "Suspend",
        "Resume",
        "Cancel",
        "Complete",
        "GetId",
        "GetType",
        "GetProgress",
        "GetTimes",
        "GetState",
        "GetError",
        "GetOwner",
        "SetDisplayName",
        "GetDisplayName",
        "SetDescription",
        "GetDescription",
        "SetPriority",
        "GetPriority",
        "SetNotifyFlags",
        "GetNotifyFlags",
        "SetNotifyInterface",
        "GetNotifyInterface",
        "SetMinimumRetryDelay",
        "GetMinimumRetryDelay",
        "SetNoProgressTimeout",
        "GetNoProgressTimeout",
        "GetErrorCount",
        "SetProxySettings",
        "GetProxySettings",
        "TakeOwnership",
    ),
    "IBackgroundCopyFile": UNKNOWN_METHODS + ("GetRemoteName", "GetLocalName", "GetProgress"),
    "IBackgroundCopyJobHttpOptions": UNKNOWN_METHODS
    + (
        "SetClientCertificateByID",
        "SetClientCertificateByName",
        "RemoveClientCertificate",
        "GetClientCertificate",
        "SetCustomHeaders",
        "GetCustomHeaders",
        "SetSecurityFlags",
        "GetSecurityFlags",
    ),
    "IEnumBackgroundCopyJobs": UNKNOWN_METHODS + ("Next", "Skip", "Reset", "Clone", "GetCount"),
    "IEnumBackgroundCopyFiles": UNKNOWN_METHODS + ("Next", "Skip", "Reset", "Clone", "GetCount"),
    "IBackgroundCopyError": UNKNOWN_METHODS
    + (
        "GetError",
        "GetFile",
        "GetErrorDescription",
        "GetErrorContextDescription",
        "GetProtocol",
    ),
    "IErrorInfo": UNKNOWN_METHODS
    + ("GetGUID", "GetSource", "GetDescription", "GetHelpFile", "GetHelpContext"),
    "IBackgroundCopyCallback": UNKNOWN_METHODS + ("JobTransferred", "JobError", "JobModification"),
}
METHODS["IBackgroundCopyJob2"] = METHODS["IBackgroundCopyJob"] + (
    "SetNotifyCmdLine",
    "GetNotifyCmdLine",
    "GetReplyProgress",
    "GetReplyData",
    "SetReplyFileName",
    "GetReplyFileName",
    "SetCredentials",
    "RemoveCredentials",
)
METHODS["IBackgroundCopyFile2"] = METHODS["IBackgroundCopyFile"] + (
    "GetFileRanges",
    "SetRemoteName",
)
METHODS["IBackgroundCopyFile3"] = METHODS["IBackgroundCopyFile2"] + (
    "GetTemporaryName",
    "SetValidationState",
    "GetValidationState",
    "IsDownloadedFromPeer",
)
METHODS["IBackgroundCopyFile4"] = METHODS["IBackgroundCopyFile3"] + ("GetPeerDownloadStats",)
METHODS["IBackgroundCopyFile5"] = METHODS["IBackgroundCopyFile4"] + ("SetProperty", "GetProperty")
METHODS["IBackgroundCopyFile6"] = METHODS["IBackgroundCopyFile5"] + (
    "UpdateDownloadPosition",
    "RequestFileRanges",
    "GetFilledFileRanges",
)
METHODS["IBackgroundCopyJob3"] = METHODS["IBackgroundCopyJob2"] + (
    "ReplaceRemotePrefix",
    "AddFileWithRanges",
    "SetFileACLFlags",
    "GetFileACLFlags",
)
METHODS["IBackgroundCopyJob4"] = METHODS["IBackgroundCopyJob3"] + (
    "SetPeerCachingFlags",
    "GetPeerCachingFlags",
    "GetOwnerIntegrityLevel",
    "GetOwnerElevationState",
    "SetMaximumDownloadTime",
    "GetMaximumDownloadTime",
)
METHODS["IBackgroundCopyJob5"] = METHODS["IBackgroundCopyJob4"] + ("SetProperty", "GetProperty")

#: Microsoft's language id for English (United States); descriptions exist in English only.
LANGUAGE_EN_US = 0x0409

_prototypes: dict[tuple[Any, ...], Any] = {}
_prototypes_lock = threading.Lock()


def _prototype(restype: Any, argtypes: Sequence[Any]) -> Any:
    key = (restype, *argtypes)
    with _prototypes_lock:
        prototype = _prototypes.get(key)
        if prototype is None:
            prototype = ctypes.CFUNCTYPE(restype, ctypes.c_void_p, *argtypes)
            _prototypes[key] = prototype
        return prototype


class Interface:
    """One counted reference to a COM interface, released once by ``release()``.

    ``call`` makes an HRESULT method call and raises QmgrError when it fails; ``raw``
    returns the HRESULT as it is.
    """

    __slots__ = ("_pointer", "_methods", "_lock", "__weakref__")

    def __init__(self, pointer: int, interface: str) -> None:
        if not pointer:
            raise ValueError(f"a NULL {interface} pointer")
        self._pointer: int | None = pointer
        self._methods = METHODS[interface]
        self._lock = threading.Lock()

    @property
    def pointer(self) -> int:
        """The interface pointer; ValueError after ``release()``."""
        pointer = self._pointer
        if pointer is None:
            raise ValueError("the object was closed")
        return pointer

    @property
    def released(self) -> bool:
        return self._pointer is None

    def _function(self, method: str, restype: Any, argtypes: Sequence[Any]) -> Callable[..., Any]:
        pointer = self.pointer
        slot = self._methods.index(method)
        vtable = ctypes.cast(pointer, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p))).contents
        function = _prototype(restype, argtypes)(vtable[slot])
        return lambda *args: function(pointer, *args)

    def raw(self, method: str, argtypes: Sequence[Any], *args: Any) -> int:
        """Calls ``method`` and returns its HRESULT."""
        result: int = self._function(method, HRESULT, argtypes)(*args)
        return result

    def call(
        self, method: str, argtypes: Sequence[Any], *args: Any, what: str | None = None
    ) -> int:
        """Calls ``method``; raises QmgrError (with the library's description) on failure."""
        hr = self.raw(method, argtypes, *args)
        if hr < 0:
            raise error_for(hr, what or method)
        return hr

    def query(self, interface: str) -> Interface:
        """The object's ``interface`` (QueryInterface), as a reference of its own."""
        result = ctypes.c_void_p()
        self.call(
            "QueryInterface",
            (ctypes.c_void_p, ctypes.c_void_p),
            ctypes.byref(_library.guid(f"IID_{interface}")),
            ctypes.byref(result),
            what=f"QueryInterface({interface})",
        )
        return Interface(result.value or 0, interface)

    def add_ref(self) -> None:
        self._function("AddRef", ULONG, ())()

    def release(self) -> None:
        """Releases the reference (once; later calls do nothing)."""
        with self._lock:
            pointer, self._pointer = self._pointer, None
        if pointer is not None:
            vtable = ctypes.cast(pointer, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p))).contents
            _prototype(ULONG, ())(vtable[UNKNOWN_METHODS.index("Release")])(pointer)


def out_interface(
    owner: Interface, method: str, interface: str, argtypes: Sequence[Any], *args: Any
) -> Interface:
    """Calls a method whose last parameter receives an interface pointer; returns it."""
    result = ctypes.c_void_p()
    owner.call(method, (*argtypes, ctypes.c_void_p), *args, ctypes.byref(result))
    if not result.value:
        raise QmgrError(0x80004005, f"{method} succeeded but returned no {interface}", method)
    return Interface(result.value, interface)


def wide(text: str) -> ctypes.Array[ctypes.c_char]:
    """A NUL-terminated UTF-16 copy of ``text``, as LPCWSTR parameters take it."""
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    if "\0" in text:
        raise ValueError(f"a string passed to the library cannot contain NUL: {text!r}")
    # Lone surrogates pass as they are, for the library to judge (it refuses them).
    return ctypes.create_string_buffer(text.encode("utf-16-le", "surrogatepass") + b"\0\0")


def _units_until_nul(pointer: int) -> int:
    units = ctypes.cast(pointer, ctypes.POINTER(ctypes.c_uint16))
    length = 0
    while units[length] != 0:
        length += 1
    return length


def from_wide(pointer: int, length: int | None = None) -> str:
    """The text of a UTF-16 string: NUL-terminated, or of ``length`` units."""
    if length is None:
        length = _units_until_nul(pointer)
    return ctypes.string_at(pointer, 2 * length).decode("utf-16-le", "surrogatepass")


def take_co_task_string(pointer: int | None) -> str | None:
    """The text of a string the library allocated with CoTaskMemAlloc, which is freed."""
    if not pointer:
        return None
    try:
        return from_wide(pointer)
    finally:
        _library.library().CoTaskMemFree(pointer)


def take_bstr(pointer: int | None) -> str | None:
    """The text of a BSTR the library allocated, which is freed."""
    if not pointer:
        return None
    lib = _library.library()
    try:
        return from_wide(pointer, lib.SysStringLen(pointer))
    finally:
        lib.SysFreeString(pointer)


def get_string(owner: Interface, method: str, *args: Any, argtypes: Sequence[Any] = ()) -> str:
    """Calls a method whose last parameter receives a CoTaskMem string; returns its text."""
    result = ctypes.c_void_p()
    owner.call(method, (*argtypes, ctypes.c_void_p), *args, ctypes.byref(result))
    return take_co_task_string(result.value) or ""


def get_dword(owner: Interface, method: str) -> int:
    """Calls a method whose one parameter receives a DWORD (or an enum); returns it."""
    result = DWORD()
    owner.call(method, (ctypes.c_void_p,), ctypes.byref(result))
    return result.value


def thread_error_description() -> str | None:
    """The description of the calling thread's last failed call (GetErrorInfo), if any."""
    lib = _library.library()
    info = ctypes.c_void_p()
    if lib.GetErrorInfo(0, ctypes.byref(info)) != 0 or not info.value:
        return None
    error_info = Interface(info.value, "IErrorInfo")
    try:
        text = ctypes.c_void_p()
        if error_info.raw("GetDescription", (ctypes.c_void_p,), ctypes.byref(text)) < 0:
            return None
        return take_bstr(text.value)
    finally:
        error_info.release()


#: Describes an HRESULT in general terms when the thread's error information has nothing
#: (set by the first Manager: IBackgroundCopyManager::GetErrorDescription).
general_description: Callable[[int], str | None] | None = None


def error_for(hr: int, what: str) -> QmgrError:
    """The QmgrError for a failed call, described by the library."""
    description = thread_error_description()
    if description is None and general_description is not None:
        try:
            description = general_description(hr)
        except Exception:  # noqa: BLE001 - a description is a nicety, never a new failure
            description = None
    return QmgrError(hr, description or "", what)
