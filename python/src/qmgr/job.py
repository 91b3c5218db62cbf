"""Jobs and their files."""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generic, NamedTuple, TypeVar, Union

from . import _callback, _com, _library
from ._library import DWORD, GUID, ULONG
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
from .hresults import BG_E_ERROR_INFORMATION_UNAVAILABLE

if TYPE_CHECKING:
    from .manager import Manager

#: A local path as the API takes it.
PathLike = Union[str, "os.PathLike[str]"]

#: BG_SIZE_UNKNOWN: the size of a file is not known yet.
SIZE_UNKNOWN = 0xFFFFFFFFFFFFFFFF

#: How often ``Job.wait`` looks at the job when no callback comes, in seconds.
WAIT_POLL_SECONDS = 0.5


class _JobProgress(ctypes.Structure):
    _fields_ = [
        ("BytesTotal", ctypes.c_uint64),
        ("BytesTransferred", ctypes.c_uint64),
        ("FilesTotal", ctypes.c_uint32),
        ("FilesTransferred", ctypes.c_uint32),
    ]


class _FileProgress(ctypes.Structure):
    _fields_ = [
        ("BytesTotal", ctypes.c_uint64),
        ("BytesTransferred", ctypes.c_uint64),
        ("Completed", ctypes.c_int32),
    ]


class _FileTime(ctypes.Structure):
    _fields_ = [("dwLowDateTime", ctypes.c_uint32), ("dwHighDateTime", ctypes.c_uint32)]


class _JobTimes(ctypes.Structure):
    _fields_ = [
        ("CreationTime", _FileTime),
        ("ModificationTime", _FileTime),
        ("TransferCompletionTime", _FileTime),
    ]


class _FileInfo(ctypes.Structure):
    _fields_ = [("RemoteName", ctypes.c_void_p), ("LocalName", ctypes.c_void_p)]


class _BasicCredentials(ctypes.Structure):
    _fields_ = [("UserName", ctypes.c_void_p), ("Password", ctypes.c_void_p)]


class _AuthCredentials(ctypes.Structure):
    _fields_ = [("Target", DWORD), ("Scheme", DWORD), ("Basic", _BasicCredentials)]


def _optional_wide(text: str | None) -> ctypes.Array[ctypes.c_char] | None:
    return None if text is None else _com.wide(text)


def _size(value: int) -> int | None:
    return None if value == SIZE_UNKNOWN else value


class Progress(NamedTuple):
    """A job's progress. ``bytes_total`` is None while a file's size is not known."""

    bytes_total: int | None
    bytes_transferred: int
    files_total: int
    files_transferred: int

    @property
    def fraction(self) -> float | None:
        """bytes_transferred / bytes_total (1.0 for an empty job), None if unknown."""
        if self.bytes_total is None:
            return None
        return self.bytes_transferred / self.bytes_total if self.bytes_total else 1.0


class FileProgress(NamedTuple):
    """A file's progress. ``bytes_total`` is None while its size is not known."""

    bytes_total: int | None
    bytes_transferred: int
    completed: bool


_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)


def _datetime(value: _FileTime) -> datetime.datetime | None:
    ticks = (value.dwHighDateTime << 32) | value.dwLowDateTime
    if ticks == 0:
        return None
    return _FILETIME_EPOCH + datetime.timedelta(microseconds=ticks // 10)


class _FileRange(ctypes.Structure):
    _fields_ = [("InitialOffset", ctypes.c_uint64), ("Length", ctypes.c_uint64)]


#: BG_LENGTH_TO_EOF: a range that runs to the end of the remote file.
LENGTH_TO_EOF = 0xFFFFFFFFFFFFFFFF


class _PropertyValue(ctypes.Union):
    _fields_ = [
        ("Dword", DWORD),
        ("ClsID", GUID),
        ("Enable", ctypes.c_int),
        ("Uint64", ctypes.c_uint64),
    ]


class _PropertyArgument(ctypes.Structure):
    """BITS_JOB_PROPERTY_VALUE as SetProperty takes it, by value. ctypes passes no union
    by value; a structure of two 64-bit integers has the union's size and travels the same
    way (in two integer registers)."""

    _fields_ = [("low", ctypes.c_uint64), ("high", ctypes.c_uint64)]


#: The member of BITS_JOB_PROPERTY_VALUE each property uses.
_PROPERTY_MEMBERS: dict[int, str] = {
    JobProperty.ID_COST_FLAGS: "Dword",
    JobProperty.NOTIFICATION_CLSID: "ClsID",
    JobProperty.DYNAMIC_CONTENT: "Enable",
    JobProperty.HIGH_PERFORMANCE: "Enable",
    JobProperty.MAX_DOWNLOAD_SIZE: "Uint64",
    JobProperty.USE_STORED_CREDENTIALS: "Dword",
    JobProperty.MINIMUM_NOTIFICATION_INTERVAL_MS: "Dword",
    JobProperty.ON_DEMAND_MODE: "Enable",
}

#: What a job property's value is in Python.
PropertyValue = Union[int, bool, uuid.UUID]


#: BITS_FILE_PROPERTY_ID_HTTP_RESPONSE_HEADERS.
_HTTP_RESPONSE_HEADERS = 1


def _range_array(ranges: Iterable[tuple[int, int | None]]) -> ctypes.Array[_FileRange]:
    """BG_FILE_RANGEs for ``(offset, length)`` pairs (length None: to the end)."""
    wanted = [
        _FileRange(offset, LENGTH_TO_EOF if length is None else length) for offset, length in ranges
    ]
    return (_FileRange * len(wanted))(*wanted)


def _get_ranges(owner: _com.Interface, method: str) -> list[tuple[int, int | None]]:
    """Calls a method that hands over a count and an array of BG_FILE_RANGE (allocated
    with CoTaskMemAlloc, freed here); returns ``(offset, length)`` pairs."""
    count = DWORD()
    array = ctypes.c_void_p()
    owner.call(
        method,
        (ctypes.c_void_p, ctypes.c_void_p),
        ctypes.byref(count),
        ctypes.byref(array),
    )
    pointer = array.value
    if not pointer:
        return []
    try:
        ranges = ctypes.cast(pointer, ctypes.POINTER(_FileRange))
        return [
            (
                ranges[index].InitialOffset,
                None if ranges[index].Length == LENGTH_TO_EOF else ranges[index].Length,
            )
            for index in range(count.value)
        ]
    finally:
        _library.library().CoTaskMemFree(pointer)


class _ReplyProgress(ctypes.Structure):
    _fields_ = [("BytesTotal", ctypes.c_uint64), ("BytesTransferred", ctypes.c_uint64)]


class ReplyProgress(NamedTuple):
    """How much of an upload-reply job's reply has arrived (GetReplyProgress)."""

    #: None until the server has said how large the reply is.
    bytes_total: int | None
    bytes_transferred: int


class ProxySettings(NamedTuple):
    """A job's proxy settings (GetProxySettings)."""

    usage: ProxyUsage
    #: Proxies, space-separated, for OVERRIDE; None otherwise.
    proxies: str | None
    #: Hosts reached without the proxy, space-separated (``<local>``: names without a dot).
    bypass: str | None


#: HRESULT_FROM_WIN32(RPC_X_BAD_STUB_DATA): GetClientCertificate of a job without one, as
#: on Windows (not among the headers' HRESULTs).
_RPC_X_BAD_STUB_DATA = 0x800706F7

#: The length of a certificate's SHA-1 hash, as SetClientCertificateByID reads it.
CERTIFICATE_HASH_BYTES = 20


class ClientCertificate(NamedTuple):
    """The certificate a job presents to servers that ask for one (GetClientCertificate)."""

    store_location: CertStoreLocation
    store_name: str
    #: SHA-1 of the certificate's DER encoding; zeros when it is chosen by name and the
    #: store does not hold it (yet).
    sha1: bytes
    #: Its subject (or the name it was chosen by); empty when chosen by a hash the store
    #: does not hold.
    subject: str


class NotifyCommandLine(NamedTuple):
    """The program a job runs instead of calling back (SetNotifyCmdLine)."""

    program: str
    parameters: str | None


class JobTimes(NamedTuple):
    """When a job was created, last changed, and finished transferring (None: not yet)."""

    created: datetime.datetime | None
    modified: datetime.datetime | None
    transfer_completed: datetime.datetime | None


@dataclass(frozen=True)
class JobError:
    """Why a job is in the ERROR (or TRANSIENT_ERROR) state."""

    context: ErrorContext
    code: HResult
    description: str
    context_description: str
    protocol: str | None
    #: The URL and local path of the file that failed, when a file did.
    remote_name: str | None
    local_name: str | None

    def __str__(self) -> str:
        where = f" ({self.remote_name})" if self.remote_name else ""
        return f"{self.description.strip() or self.code}{where}"

    def to_exception(self, operation: str = "job") -> QmgrError:
        """This error as a QmgrError, to raise."""
        return QmgrError(self.code, self.description, operation)

    @classmethod
    def _read(cls, error: _com.Interface) -> JobError:
        context = DWORD()
        code = ctypes.c_int32()
        error.call(
            "GetError",
            (ctypes.c_void_p, ctypes.c_void_p),
            ctypes.byref(context),
            ctypes.byref(code),
        )
        language = (DWORD,)
        description = _com.get_string(
            error, "GetErrorDescription", _com.LANGUAGE_EN_US, argtypes=language
        )
        context_description = _optional_string(
            error, "GetErrorContextDescription", _com.LANGUAGE_EN_US
        )
        protocol = _optional_string(error, "GetProtocol")
        remote_name = local_name = None
        file_pointer = ctypes.c_void_p()
        if (
            error.raw("GetFile", (ctypes.c_void_p,), ctypes.byref(file_pointer)) >= 0
            and file_pointer.value
        ):
            failed_file = _com.Interface(file_pointer.value, "IBackgroundCopyFile")
            try:
                remote_name = _com.get_string(failed_file, "GetRemoteName")
                local_name = _com.get_string(failed_file, "GetLocalName")
            finally:
                failed_file.release()
        try:
            known_context = ErrorContext(context.value)
        except ValueError:
            known_context = ErrorContext.UNKNOWN
        return cls(
            context=known_context,
            code=HResult(code.value),
            description=description.strip(),
            context_description=(context_description or "").strip(),
            protocol=protocol,
            remote_name=remote_name,
            local_name=local_name,
        )


def _optional_string(owner: _com.Interface, method: str, *args: int) -> str | None:
    """A string method's result, or None when it has none (BG_E_PROTOCOL_NOT_AVAILABLE…)."""
    result = ctypes.c_void_p()
    argtypes = (DWORD,) * len(args) + (ctypes.c_void_p,)
    if owner.raw(method, argtypes, *args, ctypes.byref(result)) < 0:
        return None
    return _com.take_co_task_string(result.value)


class _Closable:
    """An object owning one interface reference: a context manager that releases it."""

    _interface: _com.Interface

    def close(self) -> None:
        """Releases the library's object. Later calls on this one raise ValueError."""
        self._interface.release()

    @property
    def closed(self) -> bool:
        return self._interface.released

    @contextlib.contextmanager
    def _as(self, interface: str) -> Iterator[_com.Interface]:
        """The object's ``interface`` (IBackgroundCopyJob2, IBackgroundCopyFile6, …) for
        the calls of a ``with`` block."""
        other = self._interface.query(interface)
        try:
            yield other
        finally:
            other.release()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A backstop for objects nobody closed; `with` or close() is the way.
        interface = getattr(self, "_interface", None)
        if interface is not None:
            try:
                self.close()
            except Exception:  # noqa: BLE001 - nothing to report to in a finalizer
                pass


class File(_Closable):
    """A file of a job: where it comes from, where it goes, how far it got."""

    def __init__(self, interface: _com.Interface) -> None:
        self._interface = interface

    @property
    def remote_name(self) -> str:
        """The URL (of a download's source, an upload's destination)."""
        return _com.get_string(self._interface, "GetRemoteName")

    @remote_name.setter
    def remote_name(self, url: str) -> None:
        """Points the file at another URL (same scheme; a download, before it completes)."""
        with self._as("IBackgroundCopyFile2") as file2:
            file2.call("SetRemoteName", (ctypes.c_void_p,), _com.wide(url))

    @property
    def local_name(self) -> str:
        """The local path."""
        return _com.get_string(self._interface, "GetLocalName")

    @property
    def progress(self) -> FileProgress:
        value = _FileProgress()
        self._interface.call("GetProgress", (ctypes.c_void_p,), ctypes.byref(value))
        return FileProgress(_size(value.BytesTotal), value.BytesTransferred, bool(value.Completed))

    @property
    def ranges(self) -> list[tuple[int, int | None]]:
        """The ``(offset, length)`` ranges of a file added with ranges (length None: to the
        end of the remote file); empty for a whole file."""
        with self._as("IBackgroundCopyFile2") as file2:
            return _get_ranges(file2, "GetFileRanges")

    @property
    def temporary_name(self) -> str | None:
        """The file qmgrd writes until the job completes; None before it exists."""
        with self._as("IBackgroundCopyFile3") as file3:
            name = _com.get_string(file3, "GetTemporaryName")
        return name or None

    @property
    def validation_state(self) -> bool:
        """Whether the program said the file's content is valid (on Windows, for peers)."""
        state = ctypes.c_int()
        with self._as("IBackgroundCopyFile3") as file3:
            file3.call("GetValidationState", (ctypes.c_void_p,), ctypes.byref(state))
        return bool(state.value)

    @validation_state.setter
    def validation_state(self, valid: bool) -> None:
        with self._as("IBackgroundCopyFile3") as file3:
            file3.call("SetValidationState", (ctypes.c_int,), int(bool(valid)))

    @property
    def response_headers(self) -> str | None:
        """The head of the server's last response for this file (status line and headers,
        CRLF-separated); None before any response."""
        value = ctypes.c_void_p()
        with self._as("IBackgroundCopyFile5") as file5:
            file5.call(
                "GetProperty",
                (DWORD, ctypes.c_void_p),
                _HTTP_RESPONSE_HEADERS,
                ctypes.byref(value),
            )
        return _com.take_co_task_string(value.value) or None

    def request_ranges(self, ranges: Iterable[tuple[int, int | None]]) -> None:
        """Asks for these bytes of a file of an on-demand job (ON_DEMAND_MODE); the job
        fetches them when resumed."""
        array = _range_array(ranges)
        with self._as("IBackgroundCopyFile6") as file6:
            file6.call("RequestFileRanges", (DWORD, ctypes.c_void_p), len(array), array)

    def update_download_position(self, offset: int) -> None:
        """Where the program reads next in an on-demand file: the job fetches from there."""
        with self._as("IBackgroundCopyFile6") as file6:
            file6.call("UpdateDownloadPosition", (ctypes.c_uint64,), int(offset))

    @property
    def filled_ranges(self) -> list[tuple[int, int | None]]:
        """The ranges of an on-demand file that are on disk, merged and in order."""
        with self._as("IBackgroundCopyFile6") as file6:
            return _get_ranges(file6, "GetFilledFileRanges")

    def __enter__(self) -> File:
        return self

    def __repr__(self) -> str:
        if self.closed:
            return "<qmgr.File (closed)>"
        return f"<qmgr.File {self.remote_name!r} -> {self.local_name!r}>"


T = TypeVar("T")


class Enumeration(Iterator[T], Generic[T]):
    """The elements of an IEnumBackgroundCopy* enumerator, fetched one Next at a time.

    The enumerator is released when the iteration ends, on ``close()`` (or the end of a
    ``with`` block) or, as a backstop, when the Enumeration is collected.
    """

    def __init__(
        self, enumerator: _com.Interface, element: str, wrap: Callable[[_com.Interface], T]
    ) -> None:
        self._enumerator = enumerator
        self._element = element
        self._wrap = wrap

    def __iter__(self) -> Enumeration[T]:
        return self

    def __next__(self) -> T:
        if self._enumerator.released:
            raise StopIteration
        item = ctypes.c_void_p()
        fetched = ULONG()
        try:
            self._enumerator.call(
                "Next",
                (ULONG, ctypes.c_void_p, ctypes.c_void_p),
                1,
                ctypes.byref(item),
                ctypes.byref(fetched),
            )
        except BaseException:
            self.close()
            raise
        if fetched.value == 0 or not item.value:
            self.close()
            raise StopIteration
        return self._wrap(_com.Interface(item.value, self._element))

    def close(self) -> None:
        """Releases the enumerator; the iteration ends."""
        self._enumerator.release()

    def __enter__(self) -> Enumeration[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        enumerator = getattr(self, "_enumerator", None)
        if enumerator is not None:
            enumerator.release()


class JobCallback:
    """Override the methods to be told about a job (``Job.set_callback``).

    They run on a thread of the library's, not the one that registered them: keep them
    short and thread-safe (put what they learn into a queue.Queue, say). An exception they
    raise is logged (logger ``qmgr``) and goes no further.
    """

    def job_transferred(self, job: Job) -> None:
        """Every file of the job is transferred; it waits for ``job.complete()``."""

    def job_error(self, job: Job, error: JobError) -> None:
        """The job stopped in the ERROR state."""

    def job_modification(self, job: Job) -> None:
        """The job changed: its state, its progress or a property."""


class _JobSink:
    """What the job's callback object does: counts the events, wakes waiters, and runs
    the user's handler. It holds the Job weakly, so that an unclosed Job can still be
    collected (and its __del__ withdraw the registration)."""

    def __init__(self, job: Job) -> None:
        self._job = weakref.ref(job)
        self.changed = threading.Condition()
        self.events = 0
        self.handler: JobCallback | None = None

    def wait_for_event_after(self, seen: int, timeout: float) -> None:
        """Sleeps until an event after the ``seen``-th comes, or ``timeout`` seconds pass."""
        with self.changed:
            self.changed.wait_for(lambda: self.events != seen, timeout)

    def _wake(self) -> None:
        with self.changed:
            self.events += 1
            self.changed.notify_all()

    def transferred(self) -> None:
        self._wake()
        job, handler = self._job(), self.handler
        if job is not None and handler is not None:
            handler.job_transferred(job)

    def error(self, error_pointer: int) -> None:
        self._wake()
        job, handler = self._job(), self.handler
        if job is not None and handler is not None and error_pointer:
            error = _com.Interface(error_pointer, "IBackgroundCopyError")
            # The library lends the pointer for the call; JobError._read copies what it says.
            handler.job_error(job, JobError._read(error))

    def modification(self) -> None:
        self._wake()
        job, handler = self._job(), self.handler
        if job is not None and handler is not None:
            handler.job_modification(job)

    def withdraw(self) -> None:
        job = self._job()
        if job is not None:
            job._unregister(force=True)


#: The notifications a registered callback object asks for.
_NOTIFY_ALL = NotifyFlags.JOB_TRANSFERRED | NotifyFlags.JOB_ERROR | NotifyFlags.JOB_MODIFICATION


class Job(_Closable):
    """A transfer job. Made by ``Manager.create_job``, ``get_job`` or ``jobs()``.

    The Job holds a reference to the library's job object until ``close()`` (or the end
    of a ``with`` block); closing it does not cancel the job, which lives on in the queue.
    """

    def __init__(self, interface: _com.Interface, manager: Manager | None = None) -> None:
        self._interface = interface
        self._manager = manager
        self._id: uuid.UUID | None = None
        self._sink = _JobSink(self)
        self._callback: _callback.CallbackObject | None = None
        self._registration_lock = threading.Lock()
        self._waiters = 0

    def __enter__(self) -> Job:
        return self

    # -- identity -------------------------------------------------------------------

    @property
    def id(self) -> uuid.UUID:
        """The job's GUID (read once: it never changes, and stays known after close)."""
        if self._id is None:
            value = GUID()
            self._interface.call("GetId", (ctypes.c_void_p,), ctypes.byref(value))
            self._id = uuid.UUID(bytes_le=bytes(value))
        return self._id

    @property
    def type(self) -> JobType:
        return JobType(_com.get_dword(self._interface, "GetType"))

    @property
    def owner(self) -> str:
        """The owner's account, as the service names it."""
        return _com.get_string(self._interface, "GetOwner")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Job):
            return NotImplemented
        return self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        if self.closed:
            return "<qmgr.Job (closed)>"
        try:
            return f"<qmgr.Job {self.id} {self.display_name!r} {self.state.name}>"
        except QmgrError as error:
            return f"<qmgr.Job ({error})>"

    # -- properties -----------------------------------------------------------------

    @property
    def display_name(self) -> str:
        return _com.get_string(self._interface, "GetDisplayName")

    @display_name.setter
    def display_name(self, value: str) -> None:
        self._interface.call("SetDisplayName", (ctypes.c_void_p,), _com.wide(value))

    @property
    def description(self) -> str:
        return _com.get_string(self._interface, "GetDescription")

    @description.setter
    def description(self, value: str) -> None:
        self._interface.call("SetDescription", (ctypes.c_void_p,), _com.wide(value))

    @property
    def priority(self) -> JobPriority:
        return JobPriority(_com.get_dword(self._interface, "GetPriority"))

    @priority.setter
    def priority(self, value: JobPriority | int) -> None:
        self._interface.call("SetPriority", (DWORD,), int(value))

    @property
    def minimum_retry_delay(self) -> int:
        """Seconds the job waits after a transient error before it tries again."""
        return _com.get_dword(self._interface, "GetMinimumRetryDelay")

    @minimum_retry_delay.setter
    def minimum_retry_delay(self, seconds: int) -> None:
        self._interface.call("SetMinimumRetryDelay", (ULONG,), int(seconds))

    @property
    def no_progress_timeout(self) -> int:
        """Seconds without progress after which a transient error becomes an error."""
        return _com.get_dword(self._interface, "GetNoProgressTimeout")

    @no_progress_timeout.setter
    def no_progress_timeout(self, seconds: int) -> None:
        self._interface.call("SetNoProgressTimeout", (ULONG,), int(seconds))

    @property
    def notify_flags(self) -> NotifyFlags:
        return NotifyFlags(_com.get_dword(self._interface, "GetNotifyFlags"))

    @notify_flags.setter
    def notify_flags(self, value: NotifyFlags | int) -> None:
        self._interface.call("SetNotifyFlags", (ULONG,), int(value))

    # -- connection settings --------------------------------------------------------

    def set_credentials(
        self,
        target: AuthTarget | int,
        scheme: AuthScheme | int,
        user_name: str | None,
        password: str | None,
    ) -> None:
        """Credentials for the server or the proxy (``target``), given when it asks for
        ``scheme``. qmgrd keeps them with the job; they cannot be read back."""
        user = _optional_wide(user_name)
        secret = _optional_wide(password)
        credentials = _AuthCredentials(
            int(target),
            int(scheme),
            _BasicCredentials(
                None if user is None else ctypes.addressof(user),
                None if secret is None else ctypes.addressof(secret),
            ),
        )
        try:
            with self._as("IBackgroundCopyJob2") as job2:
                job2.call("SetCredentials", (ctypes.c_void_p,), ctypes.byref(credentials))
        finally:
            if secret is not None:
                ctypes.memset(secret, 0, ctypes.sizeof(secret))

    def remove_credentials(self, target: AuthTarget | int, scheme: AuthScheme | int) -> None:
        """Forgets the credentials for ``target`` and ``scheme`` (S_FALSE when there were
        none is not an error)."""
        with self._as("IBackgroundCopyJob2") as job2:
            job2.call("RemoveCredentials", (DWORD, DWORD), int(target), int(scheme))

    @property
    def proxy(self) -> ProxySettings:
        usage = DWORD()
        proxies = ctypes.c_void_p()
        bypass = ctypes.c_void_p()
        self._interface.call(
            "GetProxySettings",
            (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p),
            ctypes.byref(usage),
            ctypes.byref(proxies),
            ctypes.byref(bypass),
        )
        return ProxySettings(
            ProxyUsage(usage.value),
            _com.take_co_task_string(proxies.value),
            _com.take_co_task_string(bypass.value),
        )

    def set_proxy(
        self, usage: ProxyUsage | int, proxies: str | None = None, bypass: str | None = None
    ) -> None:
        """Sets where the job's proxy comes from; OVERRIDE takes ``proxies`` (and
        ``bypass``), the other usages take neither."""
        self._interface.call(
            "SetProxySettings",
            (DWORD, ctypes.c_void_p, ctypes.c_void_p),
            int(usage),
            _optional_wide(proxies),
            _optional_wide(bypass),
        )

    @property
    def custom_headers(self) -> str | None:
        """Extra request headers, ``Name: value`` lines separated by CRLF, sent to the
        server of each file's URL (not to hosts it redirects to); None when there are none."""
        text = ctypes.c_void_p()
        with self._as("IBackgroundCopyJobHttpOptions") as options:
            options.call("GetCustomHeaders", (ctypes.c_void_p,), ctypes.byref(text))
        return _com.take_co_task_string(text.value)

    @custom_headers.setter
    def custom_headers(self, value: str | None) -> None:
        with self._as("IBackgroundCopyJobHttpOptions") as options:
            options.call("SetCustomHeaders", (ctypes.c_void_p,), _optional_wide(value))

    @property
    def client_certificate(self) -> ClientCertificate | None:
        """The certificate the job presents when a server asks for one; None when unset."""
        location = DWORD()
        store = ctypes.c_void_p()
        sha1 = ctypes.c_void_p()
        subject = ctypes.c_void_p()
        with self._as("IBackgroundCopyJobHttpOptions") as options:
            hr = options.raw(
                "GetClientCertificate",
                (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p),
                ctypes.byref(location),
                ctypes.byref(store),
                ctypes.byref(sha1),
                ctypes.byref(subject),
            )
        if HResult(hr) == _RPC_X_BAD_STUB_DATA:
            # What Windows answers for a job without a certificate.
            _com.thread_error_description()  # forget the thread's error information
            return None
        if hr < 0:
            raise _com.error_for(hr, "GetClientCertificate")
        hash_bytes = b""
        if sha1.value:
            try:
                hash_bytes = ctypes.string_at(sha1.value, CERTIFICATE_HASH_BYTES)
            finally:
                _library.library().CoTaskMemFree(sha1.value)
        return ClientCertificate(
            CertStoreLocation(location.value),
            _com.take_co_task_string(store.value) or "",
            hash_bytes,
            _com.take_co_task_string(subject.value) or "",
        )

    def set_client_certificate_by_name(
        self,
        store_name: str,
        subject: str,
        location: CertStoreLocation | int = CertStoreLocation.CURRENT_USER,
    ) -> None:
        """Presents the certificate of ``store_name`` whose subject (or common name) is
        ``subject``. It is looked up when a transfer starts: one that is not there then
        puts the job in ERROR with CRYPT_E_NOT_FOUND."""
        with self._as("IBackgroundCopyJobHttpOptions") as options:
            options.call(
                "SetClientCertificateByName",
                (DWORD, ctypes.c_void_p, ctypes.c_void_p),
                int(location),
                _com.wide(store_name),
                _com.wide(subject),
            )

    def set_client_certificate_by_id(
        self,
        store_name: str,
        sha1: bytes,
        location: CertStoreLocation | int = CertStoreLocation.CURRENT_USER,
    ) -> None:
        """Presents the certificate of ``store_name`` whose DER encoding has this SHA-1
        (20 bytes)."""
        if len(sha1) != CERTIFICATE_HASH_BYTES:
            raise ValueError(
                f"a certificate's SHA-1 is {CERTIFICATE_HASH_BYTES} bytes, not {len(sha1)}"
            )
        blob = ctypes.create_string_buffer(bytes(sha1), CERTIFICATE_HASH_BYTES)
        with self._as("IBackgroundCopyJobHttpOptions") as options:
            options.call(
                "SetClientCertificateByID",
                (DWORD, ctypes.c_void_p, ctypes.c_void_p),
                int(location),
                _com.wide(store_name),
                blob,
            )

    def remove_client_certificate(self) -> None:
        with self._as("IBackgroundCopyJobHttpOptions") as options:
            options.call("RemoveClientCertificate", ())

    @property
    def security_flags(self) -> int:
        """BG_SSL_* and BG_HTTP_REDIRECT_POLICY_* flags (IBackgroundCopyJobHttpOptions)."""
        with self._as("IBackgroundCopyJobHttpOptions") as options:
            return _com.get_dword(options, "GetSecurityFlags")

    @security_flags.setter
    def security_flags(self, flags: int) -> None:
        with self._as("IBackgroundCopyJobHttpOptions") as options:
            options.call("SetSecurityFlags", (ULONG,), int(flags))

    @property
    def notify_command_line(self) -> NotifyCommandLine | None:
        """The program the job runs when it transfers or fails, instead of calling back;
        None when it has none."""
        program = ctypes.c_void_p()
        parameters = ctypes.c_void_p()
        with self._as("IBackgroundCopyJob2") as job2:
            job2.call(
                "GetNotifyCmdLine",
                (ctypes.c_void_p, ctypes.c_void_p),
                ctypes.byref(program),
                ctypes.byref(parameters),
            )
        # The library answers empty strings for what is not set, as Windows does.
        program_text = _com.take_co_task_string(program.value)
        parameters_text = _com.take_co_task_string(parameters.value)
        if not program_text:
            return None
        return NotifyCommandLine(program_text, parameters_text or None)

    def set_notify_command_line(self, program: str | None, parameters: str | None = None) -> None:
        """Runs ``program`` (an absolute path) with the command line ``parameters`` when the
        job transfers or fails (with NotifyFlags asking for it); None removes it."""
        with self._as("IBackgroundCopyJob2") as job2:
            job2.call(
                "SetNotifyCmdLine",
                (ctypes.c_void_p, ctypes.c_void_p),
                _optional_wide(program),
                _optional_wide(parameters),
            )

    # -- Job3, Job4 and Job5 -----------------------------------------------------------

    def add_file_with_ranges(
        self, url: str, path: PathLike, ranges: Iterable[tuple[int, int | None]]
    ) -> None:
        """Adds a download of only some bytes of ``url``: ``(offset, length)`` ranges
        (length None: to the end of the file), saved one after the other in ``path``."""
        array = _range_array(ranges)
        with self._as("IBackgroundCopyJob3") as job3:
            job3.call(
                "AddFileWithRanges",
                (ctypes.c_void_p, ctypes.c_void_p, DWORD, ctypes.c_void_p),
                _com.wide(url),
                _com.wide(os.fspath(path)),
                len(array),
                array,
            )

    def replace_remote_prefix(self, old: str, new: str) -> None:
        """Points every file whose URL starts with ``old`` at ``new`` instead (the same
        server's files moved elsewhere); a job in progress starts those files over."""
        with self._as("IBackgroundCopyJob3") as job3:
            job3.call(
                "ReplaceRemotePrefix",
                (ctypes.c_void_p, ctypes.c_void_p),
                _com.wide(old),
                _com.wide(new),
            )

    @property
    def file_acl_flags(self) -> int:
        """BG_COPY_FILE_* flags: what of the source's ownership and permissions an upload's
        or download's file keeps."""
        with self._as("IBackgroundCopyJob3") as job3:
            return _com.get_dword(job3, "GetFileACLFlags")

    @file_acl_flags.setter
    def file_acl_flags(self, flags: int) -> None:
        with self._as("IBackgroundCopyJob3") as job3:
            job3.call("SetFileACLFlags", (DWORD,), int(flags))

    @property
    def maximum_download_time(self) -> int:
        """Seconds the job may spend transferring before it fails with
        BG_E_MAXIMUM_DOWNLOAD_TIME_REACHED (0: no limit)."""
        with self._as("IBackgroundCopyJob4") as job4:
            return _com.get_dword(job4, "GetMaximumDownloadTime")

    @maximum_download_time.setter
    def maximum_download_time(self, seconds: int) -> None:
        with self._as("IBackgroundCopyJob4") as job4:
            job4.call("SetMaximumDownloadTime", (ULONG,), int(seconds))

    def get_property(self, property: JobProperty | int) -> PropertyValue:
        """A Job5 property: an int, a bool (DYNAMIC_CONTENT, HIGH_PERFORMANCE,
        ON_DEMAND_MODE) or a UUID (NOTIFICATION_CLSID)."""
        member = _PROPERTY_MEMBERS.get(int(property))
        value = _PropertyValue()
        with self._as("IBackgroundCopyJob5") as job5:
            job5.call("GetProperty", (DWORD, ctypes.c_void_p), int(property), ctypes.byref(value))
        if member == "Enable":
            return bool(value.Enable)
        if member == "ClsID":
            return uuid.UUID(bytes_le=bytes(value.ClsID))
        if member == "Uint64":
            return int(value.Uint64)
        return int(value.Dword)

    def set_property(self, property: JobProperty | int, value: PropertyValue) -> None:
        """Sets a Job5 property (see ``get_property`` for the kinds of value)."""
        if isinstance(value, uuid.UUID):
            raw = value.bytes_le
        else:
            raw = int(value).to_bytes(8, "little", signed=False) + bytes(8)
        argument = _PropertyArgument.from_buffer_copy(raw)
        with self._as("IBackgroundCopyJob5") as job5:
            job5.call("SetProperty", (DWORD, _PropertyArgument), int(property), argument)

    # -- upload-reply ---------------------------------------------------------------

    @property
    def reply_progress(self) -> ReplyProgress:
        """How much of the server's reply has arrived (UPLOAD_REPLY jobs)."""
        value = _ReplyProgress()
        with self._as("IBackgroundCopyJob2") as job2:
            job2.call("GetReplyProgress", (ctypes.c_void_p,), ctypes.byref(value))
        return ReplyProgress(_size(value.BytesTotal), value.BytesTransferred)

    @property
    def reply_data(self) -> bytes:
        """The server's reply (UPLOAD_REPLY jobs), once the job is TRANSFERRED (before:
        BG_E_INVALID_STATE); empty when the server replied nothing. A reply larger than the
        library hands over raises BG_E_TOO_LARGE: read the reply file instead."""
        buffer = ctypes.c_void_p()
        length = ctypes.c_uint64()
        with self._as("IBackgroundCopyJob2") as job2:
            job2.call(
                "GetReplyData",
                (ctypes.c_void_p, ctypes.c_void_p),
                ctypes.byref(buffer),
                ctypes.byref(length),
            )
        if not buffer.value:
            return b""
        try:
            return ctypes.string_at(buffer.value, length.value)
        finally:
            _library.library().CoTaskMemFree(buffer.value)

    @property
    def reply_file_name(self) -> str | None:
        """Where the reply is saved (UPLOAD_REPLY jobs); None: a name qmgrd chooses."""
        name = ctypes.c_void_p()
        with self._as("IBackgroundCopyJob2") as job2:
            job2.call("GetReplyFileName", (ctypes.c_void_p,), ctypes.byref(name))
        return _com.take_co_task_string(name.value)

    @reply_file_name.setter
    def reply_file_name(self, path: PathLike | None) -> None:
        with self._as("IBackgroundCopyJob2") as job2:
            job2.call(
                "SetReplyFileName",
                (ctypes.c_void_p,),
                None if path is None else _com.wide(os.fspath(path)),
            )

    # -- state ----------------------------------------------------------------------

    @property
    def state(self) -> JobState:
        return JobState(_com.get_dword(self._interface, "GetState"))

    @property
    def progress(self) -> Progress:
        value = _JobProgress()
        self._interface.call("GetProgress", (ctypes.c_void_p,), ctypes.byref(value))
        return Progress(
            _size(value.BytesTotal),
            value.BytesTransferred,
            value.FilesTotal,
            value.FilesTransferred,
        )

    @property
    def times(self) -> JobTimes:
        value = _JobTimes()
        self._interface.call("GetTimes", (ctypes.c_void_p,), ctypes.byref(value))
        return JobTimes(
            _datetime(value.CreationTime),
            _datetime(value.ModificationTime),
            _datetime(value.TransferCompletionTime),
        )

    @property
    def error(self) -> JobError | None:
        """Why the job is in ERROR or TRANSIENT_ERROR; None when it is not."""
        pointer = ctypes.c_void_p()
        hr = self._interface.raw("GetError", (ctypes.c_void_p,), ctypes.byref(pointer))
        if HResult(hr) == BG_E_ERROR_INFORMATION_UNAVAILABLE:
            _com.thread_error_description()  # forget the thread's error information
            return None
        if hr < 0:
            raise _com.error_for(hr, "GetError")
        error = _com.Interface(pointer.value or 0, "IBackgroundCopyError")
        try:
            return JobError._read(error)
        finally:
            error.release()

    @property
    def error_count(self) -> int:
        """How many errors (transient ones included) the job has had."""
        return _com.get_dword(self._interface, "GetErrorCount")

    # -- files ----------------------------------------------------------------------

    def add_file(self, url: str, path: PathLike) -> None:
        """Adds a file: for a download, from ``url`` to the absolute local ``path``."""
        self._interface.call(
            "AddFile",
            (ctypes.c_void_p, ctypes.c_void_p),
            _com.wide(url),
            _com.wide(os.fspath(path)),
        )

    def add_files(self, files: Iterable[tuple[str, PathLike]]) -> None:
        """Adds several ``(url, path)`` files at once: all of them or, on error, none."""
        pairs = [(_com.wide(url), _com.wide(os.fspath(path))) for url, path in files]
        infos = (_FileInfo * max(len(pairs), 1))()
        for info, (url, path) in zip(infos, pairs):
            info.RemoteName = ctypes.addressof(url)
            info.LocalName = ctypes.addressof(path)
        self._interface.call(
            "AddFileSet", (ULONG, ctypes.c_void_p), len(pairs), infos, what="AddFileSet"
        )

    @property
    def files(self) -> Enumeration[File]:
        """The job's files, in the order they were added (each File is yours to close)."""
        enumerator = _com.out_interface(
            self._interface, "EnumFiles", "IEnumBackgroundCopyFiles", ()
        )
        return Enumeration(enumerator, "IBackgroundCopyFile", File)

    # -- life -----------------------------------------------------------------------

    def resume(self) -> None:
        """Starts (or restarts) the transfer."""
        self._interface.call("Resume", ())

    def suspend(self) -> None:
        self._interface.call("Suspend", ())

    def cancel(self) -> None:
        """Ends the job and deletes its temporary files."""
        self._interface.call("Cancel", ())

    def complete(self) -> None:
        """Ends a transferred job: its files get their final names."""
        self._interface.call("Complete", ())

    def take_ownership(self) -> None:
        self._interface.call("TakeOwnership", ())

    # -- notifications --------------------------------------------------------------

    def set_callback(self, handler: JobCallback | None) -> None:
        """Calls ``handler``'s methods when the job transfers, fails or changes (None:
        stop). The handler runs on a thread of the library's (see JobCallback) and is
        called as long as this Job is open."""
        with self._registration_lock:
            self._sink.handler = handler
        if handler is None:
            self._unregister()
        else:
            self._register()

    def _register(self) -> bool:
        """Registers the job's callback object; False when the job cannot take one (it
        left the queue, or belongs to another user's service)."""
        with self._registration_lock:
            if self._callback is not None:
                return True
            callback = _callback.CallbackObject(self._sink)
            try:
                self.notify_flags = self.notify_flags | _NOTIFY_ALL
                self._interface.call("SetNotifyInterface", (ctypes.c_void_p,), callback.address)
            except QmgrError:
                callback.release()
                return False
            self._callback = callback
            return True

    def _unregister(self, force: bool = False) -> None:
        """Withdraws the callback object unless a waiter or handler still needs it."""
        with self._registration_lock:
            callback = self._callback
            if callback is None or (not force and (self._waiters or self._sink.handler)):
                return
            self._callback = None
        if not self._interface.released:
            # The library may already have dropped it (the job left the queue).
            self._interface.raw("SetNotifyInterface", (ctypes.c_void_p,), None)
            _com.thread_error_description()
        callback.release()

    def wait(
        self,
        timeout: float | None = None,
        on_progress: Callable[[Progress], object] | None = None,
    ) -> JobState:
        """Waits until the job is TRANSFERRED, in ERROR, ACKNOWLEDGED or CANCELLED, and
        returns that state; after ``timeout`` seconds, returns the state it is in.

        ``on_progress`` is called on this thread with the job's Progress each time it
        changes. The job's callbacks wake the wait; it also looks every half second.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._registration_lock:
            self._waiters += 1
        try:
            self._register()
            last: Progress | None = None
            while True:
                with self._sink.changed:
                    seen = self._sink.events
                state = self.state
                if on_progress is not None:
                    progress = self.progress
                    if progress != last:
                        last = progress
                        on_progress(progress)
                if state.is_final:
                    return state
                pause = WAIT_POLL_SECONDS
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return state
                    pause = min(pause, remaining)
                self._sink.wait_for_event_after(seen, pause)
        finally:
            with self._registration_lock:
                self._waiters -= 1
            self._unregister()

    def close(self) -> None:
        """Withdraws this object's callback and releases the library's job object. The job
        itself stays in the queue."""
        if self._interface.released:
            return
        self._unregister(force=True)
        super().close()
