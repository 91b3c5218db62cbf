"""The Manager: the caller's queue of jobs."""

from __future__ import annotations

import ctypes
import threading
import uuid
import weakref

from . import _com, _library
from ._library import DWORD, GUID, HRESULT
from .enums import JobPriority, JobType
from .errors import QmgrError
from .job import Enumeration, Job

#: CoInitializeEx's model for threads whose callbacks the library makes on its own thread.
COINIT_MULTITHREADED = 0x0
CLSCTX_LOCAL_SERVER = 0x4
BG_JOB_ENUM_ALL_USERS = 0x1
#: CoInitializeEx's answer on a thread already in another model (it needs no
#: CoUninitialize then, and the library's objects work from it all the same).
RPC_E_CHANGED_MODE = -0x7FFEFEFA  # 0x80010106

_open_managers: weakref.WeakSet[Manager] = weakref.WeakSet()


def _describe_with_any_manager(hr: int) -> str | None:
    for manager in list(_open_managers):
        if not manager.closed:
            return manager._describe(hr)[1]
    return None


_com.general_description = _describe_with_any_manager


class Manager:
    """A connection to the caller's BITS queue (qmgrd, started if it does not run).

    Use it as a context manager, or ``close()`` it::

        with qmgr.Manager() as manager:
            for job in manager.jobs():
                print(job.display_name, job.state.name)

    The thread that makes it becomes a multithreaded COM apartment, so callbacks come on
    the library's own thread. Its objects may be used from any thread. (A thread that C
    code already made single-threaded stays so: callbacks registered from it wait for
    that code to pump them, and ``Job.wait`` falls back on its half-second looks.)
    """

    def __init__(self) -> None:
        lib = _library.library()
        hr = lib.CoInitializeEx(None, COINIT_MULTITHREADED)
        if hr < 0 and hr != RPC_E_CHANGED_MODE:
            raise _com.error_for(hr, "CoInitializeEx")
        # Each successful CoInitializeEx needs a CoUninitialize on the same thread.
        self._initialized_thread = threading.get_ident() if hr >= 0 else None
        pointer = ctypes.c_void_p()
        hr = lib.CoCreateInstance(
            ctypes.byref(_library.guid("CLSID_BackgroundCopyManager")),
            None,
            CLSCTX_LOCAL_SERVER,
            ctypes.byref(_library.guid("IID_IBackgroundCopyManager")),
            ctypes.byref(pointer),
        )
        if hr < 0 or not pointer.value:
            error = _com.error_for(hr, "CoCreateInstance")
            self._uninitialize()
            raise error
        self._interface = _com.Interface(pointer.value, "IBackgroundCopyManager")
        _open_managers.add(self)

    def _uninitialize(self) -> None:
        if (
            self._initialized_thread is not None
            and self._initialized_thread == threading.get_ident()
        ):
            self._initialized_thread = None
            _library.library().CoUninitialize()

    # -- jobs -----------------------------------------------------------------------

    def create_job(
        self,
        name: str,
        type: JobType = JobType.DOWNLOAD,
        *,
        priority: JobPriority | None = None,
        description: str | None = None,
    ) -> Job:
        """Creates a job (suspended: add files, then ``resume()`` it)."""
        job_id = GUID()
        job = Job(
            _com.out_interface(
                self._interface,
                "CreateJob",
                "IBackgroundCopyJob",
                (ctypes.c_void_p, DWORD, ctypes.c_void_p),
                _com.wide(name),
                int(type),
                ctypes.byref(job_id),
            ),
            self,
        )
        try:
            if priority is not None:
                job.priority = priority
            if description is not None:
                job.description = description
        except BaseException:
            job.cancel()
            job.close()
            raise
        return job

    def get_job(self, job_id: uuid.UUID | str) -> Job:
        """The job with this GUID; QmgrError BG_E_NOT_FOUND when there is none."""
        if not isinstance(job_id, uuid.UUID):
            job_id = uuid.UUID(job_id)
        wanted = GUID.from_buffer_copy(job_id.bytes_le)
        return Job(
            _com.out_interface(
                self._interface,
                "GetJob",
                "IBackgroundCopyJob",
                (ctypes.c_void_p,),
                ctypes.byref(wanted),
            ),
            self,
        )

    def jobs(self, all_users: bool = False) -> Enumeration[Job]:
        """The jobs in the queue, the caller's (every user's with ``all_users``, which
        needs root). Each Job is yours to close."""
        enumerator = _com.out_interface(
            self._interface,
            "EnumJobs",
            "IEnumBackgroundCopyJobs",
            (DWORD,),
            BG_JOB_ENUM_ALL_USERS if all_users else 0,
        )
        return Enumeration(enumerator, "IBackgroundCopyJob", lambda item: Job(item, self))

    def error_description(self, hresult: int) -> str:
        """The library's general description of an HRESULT."""
        failure, text = self._describe(hresult)
        if text is None:
            raise QmgrError(
                failure, f"no description for 0x{hresult & 0xFFFFFFFF:08X}", "GetErrorDescription"
            )
        return text

    def _describe(self, hresult: int) -> tuple[int, str | None]:
        """GetErrorDescription's HRESULT and text (None when it failed). It never raises:
        failures are described with it."""
        text = ctypes.c_void_p()
        hr = self._interface.raw(
            "GetErrorDescription",
            (HRESULT, DWORD, ctypes.c_void_p),
            ctypes.c_int32(hresult & 0xFFFFFFFF).value,
            _com.LANGUAGE_EN_US,
            ctypes.byref(text),
        )
        if hr < 0:
            _com.thread_error_description()  # forget this failure's own information
            return hr, None
        return hr, (_com.take_co_task_string(text.value) or "").strip()

    # -- life -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._interface.released

    def close(self) -> None:
        """Releases the library's manager. Jobs already made keep working."""
        interface = getattr(self, "_interface", None)
        if interface is None or interface.released:
            return
        interface.release()
        _open_managers.discard(self)
        self._uninitialize()

    def __enter__(self) -> Manager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - a finalizer has no one to tell
            pass

    def __repr__(self) -> str:
        return "<qmgr.Manager (closed)>" if self.closed else "<qmgr.Manager>"


__all__ = ["Manager", "QmgrError"]
