"""IBackgroundCopyCallback written in Python: a COM object the library calls.

The object is a small ctypes struct whose first member points at one shared vtable of
CFUNCTYPE thunks. The library calls it on a thread of its own (the package makes its
threads multithreaded apartments), so:

- the thunks never let an exception unwind into C: each catches everything, logs it and
  returns an HRESULT;
- the struct and the thunks stay reachable while C holds a reference: the struct lives in
  ``_live`` until its count drops to zero, the vtable and thunks for the life of the
  process (they are shared, so a Release running in a thunk never frees that thunk);
- what the thunks do with the calls is up to a ``Sink``: the Job's only records the event
  and wakes its waiters, and runs the user's handler, whose exceptions are logged.

At interpreter exit every registration still made is withdrawn, and the library given a
moment to drop its references, so that no call reaches a finalized interpreter.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import threading
import time
from typing import Protocol

from . import _library
from ._library import DWORD, GUID, HRESULT, ULONG

_log = logging.getLogger("qmgr")

S_OK = 0
E_NOINTERFACE = -0x7FFFBFFE  # 0x80004002
E_POINTER = -0x7FFFBFFD  # 0x80004003
E_UNEXPECTED = -0x7FFF0001  # 0x8000FFFF


class Sink(Protocol):
    """What a callback object does with the library's calls (on the library's thread)."""

    def transferred(self) -> None: ...

    def error(self, error_pointer: int) -> None: ...

    def modification(self) -> None: ...

    def withdraw(self) -> None:
        """Ends the registration of this sink's callback object (at interpreter exit)."""


_QueryInterface = ctypes.CFUNCTYPE(
    HRESULT, ctypes.c_void_p, ctypes.POINTER(GUID), ctypes.POINTER(ctypes.c_void_p)
)
_AddRef = ctypes.CFUNCTYPE(ULONG, ctypes.c_void_p)
_Release = ctypes.CFUNCTYPE(ULONG, ctypes.c_void_p)
_JobTransferred = ctypes.CFUNCTYPE(HRESULT, ctypes.c_void_p, ctypes.c_void_p)
_JobError = ctypes.CFUNCTYPE(HRESULT, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_JobModification = ctypes.CFUNCTYPE(HRESULT, ctypes.c_void_p, ctypes.c_void_p, DWORD)


class _Vtbl(ctypes.Structure):
    _fields_ = [
        ("QueryInterface", _QueryInterface),
        ("AddRef", _AddRef),
        ("Release", _Release),
        ("JobTransferred", _JobTransferred),
        ("JobError", _JobError),
        ("JobModification", _JobModification),
    ]


class _Object(ctypes.Structure):
    _fields_ = [("lpVtbl", ctypes.POINTER(_Vtbl))]


class CallbackObject:
    """One IBackgroundCopyCallback. Python holds the first reference; ``release()`` drops it."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._struct = _Object(ctypes.pointer(_vtable()))
        self._references = 1
        self.address: int = ctypes.addressof(self._struct)
        with _live_lock:
            _live[self.address] = self

    def add_ref(self) -> int:
        with _live_lock:
            self._references += 1
            return self._references

    def release(self) -> int:
        with _live_lock:
            self._references -= 1
            remaining = self._references
            if remaining == 0:
                # The struct goes with the last reference; C holds none now.
                _live.pop(self.address, None)
            return remaining

    @property
    def references(self) -> int:
        with _live_lock:
            return self._references


_live: dict[int, CallbackObject] = {}
_live_lock = threading.Lock()


def _find(this: int | None) -> CallbackObject | None:
    with _live_lock:
        return _live.get(this or 0)


def _iid_bytes(name: str) -> bytes:
    return bytes(_library.guid(name))


def _query_interface(
    this: int, riid: ctypes._Pointer[GUID], out: ctypes._Pointer[ctypes.c_void_p]
) -> int:
    try:
        if not out:
            return E_POINTER
        wanted = bytes(riid.contents) if riid else b""
        if wanted in (_iid_bytes("IID_IUnknown"), _iid_bytes("IID_IBackgroundCopyCallback")):
            target = _find(this)
            if target is None:
                out[0] = None
                return E_UNEXPECTED
            target.add_ref()
            out[0] = this
            return S_OK
        out[0] = None
        return E_NOINTERFACE
    except BaseException:  # noqa: BLE001 - nothing may unwind into C
        _log.exception("qmgr: QueryInterface of a callback failed")
        return E_UNEXPECTED


def _add_ref(this: int) -> int:
    try:
        target = _find(this)
        return target.add_ref() if target else 0
    except BaseException:  # noqa: BLE001
        _log.exception("qmgr: AddRef of a callback failed")
        return 1


def _release(this: int) -> int:
    try:
        target = _find(this)
        return target.release() if target else 0
    except BaseException:  # noqa: BLE001
        _log.exception("qmgr: Release of a callback failed")
        return 0


def _job_transferred(this: int, _job: int) -> int:
    try:
        target = _find(this)
        if target is not None:
            target.sink.transferred()
    except BaseException:  # noqa: BLE001
        _log.exception("qmgr: a JobTransferred callback raised")
    return S_OK


def _job_error(this: int, _job: int, error: int) -> int:
    try:
        target = _find(this)
        if target is not None:
            target.sink.error(error or 0)
    except BaseException:  # noqa: BLE001
        _log.exception("qmgr: a JobError callback raised")
    return S_OK


def _job_modification(this: int, _job: int, _reserved: int) -> int:
    try:
        target = _find(this)
        if target is not None:
            target.sink.modification()
    except BaseException:  # noqa: BLE001
        _log.exception("qmgr: a JobModification callback raised")
    return S_OK


_shared_vtable: _Vtbl | None = None


def _vtable() -> _Vtbl:
    """The vtable every callback object shares, made once and never freed."""
    global _shared_vtable
    with _live_lock:
        if _shared_vtable is None:
            _shared_vtable = _Vtbl(
                _QueryInterface(_query_interface),
                _AddRef(_add_ref),
                _Release(_release),
                _JobTransferred(_job_transferred),
                _JobError(_job_error),
                _JobModification(_job_modification),
            )
        return _shared_vtable


#: How long interpreter exit waits for the library to release the callbacks.
EXIT_GRACE_SECONDS = 2.0


def live_count() -> int:
    """How many callback objects are still referenced (by Python or by the library)."""
    with _live_lock:
        return len(_live)


@atexit.register
def _withdraw_all() -> None:
    with _live_lock:
        objects = list(_live.values())
    for callback in objects:
        try:
            callback.sink.withdraw()
        except BaseException:  # noqa: BLE001 - exit goes on
            _log.exception("qmgr: withdrawing a callback at exit failed")
    deadline = time.monotonic() + EXIT_GRACE_SECONDS
    while live_count() and time.monotonic() < deadline:
        time.sleep(0.01)
