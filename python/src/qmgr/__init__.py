"""qmgr: Linux's Background Intelligent Transfer Service, from Python.

A thin, typed layer over libqmgr's C ABI (ctypes; no compiled extension)::

    import qmgr

    with qmgr.Manager() as manager, manager.create_job("example") as job:
        job.add_file("https://example.org/file.iso", "/tmp/file.iso")
        job.resume()
        if job.wait() is qmgr.JobState.TRANSFERRED:
            job.complete()

libqmgr.so is found through ``$QMGR_LIB``, the install prefixes, a checkout's build tree,
then the system loader (see ``qmgr.library_path``).
"""

from __future__ import annotations

from . import hresults
from ._library import LibraryNotFound
from ._library import find as library_path
from .enums import (
    AuthScheme,
    AuthTarget,
    CertStoreLocation,
    ErrorContext,
    JobPriority,
    JobProperty,
    JobState,
    JobType,
    NotifyFlags,
    ProxyUsage,
)
from .errors import HResult, QmgrError
from .job import (
    LENGTH_TO_EOF,
    ClientCertificate,
    Enumeration,
    File,
    FileProgress,
    Job,
    JobCallback,
    JobError,
    JobTimes,
    NotifyCommandLine,
    Progress,
    ProxySettings,
    ReplyProgress,
)
from .manager import Manager

__version__ = "0.1.0"

__all__ = [
    "AuthScheme",
    "AuthTarget",
    "CertStoreLocation",
    "ClientCertificate",
    "Enumeration",
    "ErrorContext",
    "File",
    "FileProgress",
    "HResult",
    "Job",
    "JobCallback",
    "JobError",
    "JobPriority",
    "JobProperty",
    "JobState",
    "JobTimes",
    "JobType",
    "LENGTH_TO_EOF",
    "LibraryNotFound",
    "Manager",
    "NotifyCommandLine",
    "NotifyFlags",
    "Progress",
    "ProxySettings",
    "ProxyUsage",
    "QmgrError",
    "ReplyProgress",
    "hresults",
    "library_path",
]
