#!/usr/bin/env python3
"""download.py: a BITS download from Python through libqmgr's C ABI, with ctypes only.

    python3 download.py URL DESTINATION

The library is loaded from $QMGR_LIBRARY, else found as "qmgr" on the library path.
Every call goes through the objects' vtables, as C code makes it: slot numbers are
those of bits.h. ctypes' c_wchar is 32 bits on Linux, so strings cross the boundary as
UTF-16-LE bytes. Exits 0 on success, 1 on failure.
"""

import ctypes
import ctypes.util
import os
import sys
import time

HRESULT = ctypes.c_int32
ULONG = ctypes.c_uint32
DWORD = ctypes.c_uint32

COINIT_APARTMENTTHREADED = 0x2
CLSCTX_LOCAL_SERVER = 0x4
BG_JOB_TYPE_DOWNLOAD = 0
BG_JOB_STATE_ERROR = 4
BG_JOB_STATE_TRANSFERRED = 6
BG_JOB_STATE_ACKNOWLEDGED = 7
BG_JOB_STATE_CANCELLED = 8

# Vtable slots (bits.h): IUnknown's three come first in every interface.
RELEASE = 2
MANAGER_CREATE_JOB = 3
JOB_ADD_FILE = 4
JOB_RESUME = 7
JOB_CANCEL = 8
JOB_COMPLETE = 9
JOB_GET_PROGRESS = 12
JOB_GET_STATE = 14
JOB_GET_ERROR = 15
ERROR_GET_ERROR_DESCRIPTION = 5


class GUID(ctypes.Structure):
    _fields_ = [
        ("Data1", ctypes.c_uint32),
        ("Data2", ctypes.c_uint16),
        ("Data3", ctypes.c_uint16),
        ("Data4", ctypes.c_uint8 * 8),
    ]


class BG_JOB_PROGRESS(ctypes.Structure):
    _fields_ = [
        ("BytesTotal", ctypes.c_uint64),
        ("BytesTransferred", ctypes.c_uint64),
        ("FilesTotal", ctypes.c_uint32),
        ("FilesTransferred", ctypes.c_uint32),
    ]


class ComError(Exception):
    def __init__(self, what, hr):
        super().__init__(f"{what} failed: 0x{hr & 0xFFFFFFFF:08X}")


def load_library():
    path = os.environ.get("QMGR_LIBRARY") or ctypes.util.find_library("qmgr") or "libqmgr.so"
    lib = ctypes.CDLL(path)
    lib.CoInitializeEx.argtypes = [ctypes.c_void_p, DWORD]
    lib.CoInitializeEx.restype = HRESULT
    lib.CoUninitialize.argtypes = []
    lib.CoUninitialize.restype = None
    lib.CoCreateInstance.argtypes = [
        ctypes.POINTER(GUID),
        ctypes.c_void_p,
        DWORD,
        ctypes.POINTER(GUID),
        ctypes.POINTER(ctypes.c_void_p),
    ]
    lib.CoCreateInstance.restype = HRESULT
    lib.CoTaskMemFree.argtypes = [ctypes.c_void_p]
    lib.CoTaskMemFree.restype = None
    return lib


def wide(text):
    """A NUL-terminated UTF-16 string, as LPCWSTR parameters take it."""
    return ctypes.create_string_buffer((text + "\0").encode("utf-16-le"))


def from_wide(pointer):
    """The text of a NUL-terminated UTF-16 string the library returned."""
    units = ctypes.cast(pointer, ctypes.POINTER(ctypes.c_uint16))
    length = 0
    while units[length] != 0:
        length += 1
    return ctypes.string_at(pointer, 2 * length).decode("utf-16-le", errors="replace")


def method(obj, slot, restype, *argtypes):
    """The function in `slot` of the vtable of interface pointer `obj`, bound to it."""
    vtable = ctypes.cast(obj, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p))).contents
    function = ctypes.CFUNCTYPE(restype, ctypes.c_void_p, *argtypes)(vtable[slot])
    return lambda *args: function(obj, *args)


def call(what, obj, slot, *arguments):
    """Calls an HRESULT method whose parameters are all pointers; raises on failure."""
    hr = method(obj, slot, HRESULT, *([ctypes.c_void_p] * len(arguments)))(*arguments)
    if hr < 0:
        raise ComError(what, hr)
    return hr


def release(obj):
    method(obj, RELEASE, ULONG)()


def error_description(lib, job):
    error = ctypes.c_void_p()
    call("GetError", job, JOB_GET_ERROR, ctypes.byref(error))
    try:
        text = ctypes.c_void_p()
        describe = method(error, ERROR_GET_ERROR_DESCRIPTION, HRESULT, DWORD, ctypes.c_void_p)
        if describe(0x0409, ctypes.byref(text)) < 0:
            return "(no description)"
        try:
            return from_wide(text)
        finally:
            lib.CoTaskMemFree(text)
    finally:
        release(error)


def download(lib, url, destination):
    manager = ctypes.c_void_p()
    hr = lib.CoCreateInstance(
        GUID.in_dll(lib, "CLSID_BackgroundCopyManager"),
        None,
        CLSCTX_LOCAL_SERVER,
        GUID.in_dll(lib, "IID_IBackgroundCopyManager"),
        ctypes.byref(manager),
    )
    if hr < 0:
        raise ComError("CoCreateInstance", hr)
    try:
        job = ctypes.c_void_p()
        job_id = GUID()
        name = wide("download.py")
        create_job = method(
            manager, MANAGER_CREATE_JOB, HRESULT, ctypes.c_void_p, DWORD, ctypes.c_void_p, ctypes.c_void_p
        )
        hr = create_job(name, BG_JOB_TYPE_DOWNLOAD, ctypes.byref(job_id), ctypes.byref(job))
        if hr < 0:
            raise ComError("CreateJob", hr)
        try:
            return run_job(lib, job, url, destination)
        finally:
            release(job)
    finally:
        release(manager)


def run_job(lib, job, url, destination):
    try:
        call("AddFile", job, JOB_ADD_FILE, wide(url), wide(destination))
        call("Resume", job, JOB_RESUME)
    except ComError:
        call("Cancel", job, JOB_CANCEL)
        raise
    state = DWORD()
    while True:
        call("GetState", job, JOB_GET_STATE, ctypes.byref(state))
        if state.value == BG_JOB_STATE_TRANSFERRED:
            call("Complete", job, JOB_COMPLETE)
            progress = BG_JOB_PROGRESS()
            call("GetProgress", job, JOB_GET_PROGRESS, ctypes.byref(progress))
            print(f"downloaded {progress.BytesTransferred} bytes to {destination}")
            return True
        if state.value == BG_JOB_STATE_ERROR:
            print(f"error: {error_description(lib, job)}", file=sys.stderr)
            call("Cancel", job, JOB_CANCEL)
            return False
        if state.value in (BG_JOB_STATE_CANCELLED, BG_JOB_STATE_ACKNOWLEDGED):
            print("the job ended elsewhere", file=sys.stderr)
            return False
        time.sleep(0.1)


def main():
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} URL DESTINATION", file=sys.stderr)
        return 2
    lib = load_library()
    hr = lib.CoInitializeEx(None, COINIT_APARTMENTTHREADED)
    if hr < 0:
        print(f"CoInitializeEx failed: 0x{hr & 0xFFFFFFFF:08X}", file=sys.stderr)
        return 1
    try:
        return 0 if download(lib, sys.argv[1], sys.argv[2]) else 1
    except ComError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        lib.CoUninitialize()


if __name__ == "__main__":
    sys.exit(main())
