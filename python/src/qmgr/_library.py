"""Finding and loading libqmgr.so, and the prototypes of the plain functions it exports.

The library is looked for, in order:

1. ``$QMGR_LIB`` (or ``$QMGR_LIBRARY``, the name older scripts used): a file path;
2. the install prefixes ``cargo xtask install`` writes to: ``~/.local/lib``,
   ``/usr/local/lib``, ``/usr/lib`` (and the Python environment's own ``lib``);
3. the build tree of a checkout, ``target/release`` then ``target/debug``, found above this
   package's files or above the current directory;
4. the system's loader (``ldconfig``'s cache, ``LD_LIBRARY_PATH``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

#: The file names a library may have in a directory: the development link, the soname.
FILE_NAMES = ("libqmgr.so", "libqmgr.so.0")

HRESULT = ctypes.c_int32
ULONG = ctypes.c_uint32
DWORD = ctypes.c_uint32


class GUID(ctypes.Structure):
    """A COM GUID, laid out as in C."""

    _fields_ = [
        ("Data1", ctypes.c_uint32),
        ("Data2", ctypes.c_uint16),
        ("Data3", ctypes.c_uint16),
        ("Data4", ctypes.c_uint8 * 8),
    ]


class LibraryNotFound(OSError):
    """libqmgr.so is in none of the places searched; the message lists them."""


def _install_dirs() -> list[Path]:
    dirs = [Path.home() / ".local" / "lib", Path("/usr/local/lib"), Path("/usr/lib")]
    multiarch = getattr(sys.implementation, "_multiarch", None)
    if multiarch:
        dirs.append(Path("/usr/lib") / multiarch)
    dirs.append(Path(sys.prefix) / "lib")
    return dirs


def _checkouts() -> Iterator[Path]:
    """Directories that look like a qmgr checkout, above this file and above the cwd."""
    seen = set()
    for start in (Path(__file__).resolve().parent, Path.cwd()):
        for directory in (start, *start.parents):
            if directory in seen:
                continue
            seen.add(directory)
            if (directory / "crates" / "libqmgr").is_dir() and (directory / "Cargo.toml").is_file():
                yield directory


def _target_dirs(checkout: Path) -> list[Path]:
    target = os.environ.get("CARGO_TARGET_DIR")
    base = (checkout / target) if target else checkout / "target"
    return [base / "release", base / "debug"]


def candidates() -> list[Path]:
    """Every path tried before the system loader, in order."""
    paths: list[Path] = []
    for variable in ("QMGR_LIB", "QMGR_LIBRARY"):
        value = os.environ.get(variable)
        if value:
            paths.append(Path(value))
    for directory in _install_dirs():
        paths.extend(directory / name for name in FILE_NAMES)
    for checkout in _checkouts():
        for directory in _target_dirs(checkout):
            paths.extend(directory / name for name in FILE_NAMES)
    return paths


def find() -> str:
    """The path (or loader name) of the libqmgr to load; raises LibraryNotFound."""
    for variable in ("QMGR_LIB", "QMGR_LIBRARY"):
        value = os.environ.get(variable)
        if value:
            # An explicit choice is not second-guessed: a wrong one is an error, not a
            # reason to load some other copy.
            if not Path(value).is_file():
                raise LibraryNotFound(f"${variable} names {value!r}, which is not a file")
            return value
    for path in candidates():
        if path.is_file():
            return str(path)
    found = ctypes.util.find_library("qmgr")
    if found:
        return found
    tried = "\n  ".join(str(path) for path in candidates())
    raise LibraryNotFound(
        "libqmgr.so was not found; set QMGR_LIB to its path, install it "
        "(`cargo xtask install`) or build it (`cargo build -p libqmgr`). Tried:\n  "
        + tried
        + "\n  and the system loader"
    )


def _declare(lib: ctypes.CDLL) -> None:
    """Gives the exported functions their C prototypes."""
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
    lib.GetErrorInfo.argtypes = [ULONG, ctypes.POINTER(ctypes.c_void_p)]
    lib.GetErrorInfo.restype = HRESULT
    lib.SysFreeString.argtypes = [ctypes.c_void_p]
    lib.SysFreeString.restype = None
    lib.SysStringLen.argtypes = [ctypes.c_void_p]
    lib.SysStringLen.restype = ctypes.c_uint32


_loaded: ctypes.CDLL | None = None
_loading = threading.Lock()


def library() -> ctypes.CDLL:
    """libqmgr, loaded on first use."""
    global _loaded
    with _loading:
        if _loaded is None:
            path = find()
            try:
                lib = ctypes.CDLL(path)
            except OSError as error:
                raise LibraryNotFound(f"cannot load {path}: {error}") from error
            _declare(lib)
            _loaded = lib
        return _loaded


def guid(name: str) -> GUID:
    """The GUID the library exports as ``name`` (``IID_IBackgroundCopyJob``, …)."""
    return GUID.in_dll(library(), name)
