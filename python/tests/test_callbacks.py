"""IBackgroundCopyCallback written in Python: calls on the library's thread, exceptions that
stay in Python, references the library gives back."""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import qmgr
from qmgr import _callback, hresults

from .conftest import Server

WAIT_SECONDS = 60


class Recorder(qmgr.JobCallback):
    """Puts every call, with the thread it came on, into a queue."""

    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[str, int, object]] = queue.Queue()

    def job_transferred(self, job: qmgr.Job) -> None:
        self.calls.put(("transferred", threading.get_ident(), job))

    def job_error(self, job: qmgr.Job, error: qmgr.JobError) -> None:
        self.calls.put(("error", threading.get_ident(), error))

    def job_modification(self, job: qmgr.Job) -> None:
        self.calls.put(("modification", threading.get_ident(), job))

    def next_of(self, kind: str) -> tuple[str, int, object]:
        """The next call of this kind (others before it are skipped)."""
        while True:
            call = self.calls.get(timeout=WAIT_SECONDS)
            if call[0] == kind:
                return call


def _wait_until_released(what: str) -> None:
    """Waits for the library to drop its references to every callback object."""
    deadline = time.monotonic() + WAIT_SECONDS
    while _callback.live_count():
        assert time.monotonic() < deadline, f"{what}: the library kept a callback"
        time.sleep(0.01)


def test_job_transferred_comes_on_the_library_s_thread(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    recorder = Recorder()
    with manager.create_job("callback") as job:
        job.add_file(server.url("/data/64k/callback"), work / "callback.bin")
        job.set_callback(recorder)
        assert job.notify_flags & qmgr.NotifyFlags.JOB_TRANSFERRED
        job.resume()
        _, thread, called_with = recorder.next_of("transferred")
        assert thread != threading.get_ident()
        assert called_with is job
        assert job.state is qmgr.JobState.TRANSFERRED
        job.complete()
    _wait_until_released("after close")


def test_job_error_brings_the_error(manager: qmgr.Manager, server: Server, work: Path) -> None:
    recorder = Recorder()
    url = server.url("/data/1k/callback-gone?status=404")
    with manager.create_job("callback error") as job:
        job.add_file(url, work / "gone.bin")
        job.set_callback(recorder)
        job.resume()
        _, _, error = recorder.next_of("error")
        assert isinstance(error, qmgr.JobError)
        assert error.code == hresults.BG_E_HTTP_ERROR_404
        assert error.remote_name == url
        job.cancel()


def test_an_exception_in_a_callback_is_logged_and_goes_no_further(
    manager: qmgr.Manager, server: Server, work: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Raising(qmgr.JobCallback):
        def job_transferred(self, job: qmgr.Job) -> None:
            raise RuntimeError("raised in a callback")

    with manager.create_job("raising callback") as job:
        job.add_file(server.url("/data/1k/raising"), work / "raising.bin")
        with caplog.at_level(logging.ERROR, logger="qmgr"):
            job.set_callback(Raising())
            job.resume()
            assert job.wait(timeout=WAIT_SECONDS) is qmgr.JobState.TRANSFERRED
            deadline = time.monotonic() + WAIT_SECONDS
            while "raised in a callback" not in caplog.text:
                assert time.monotonic() < deadline, "the exception was not logged"
                time.sleep(0.01)
        job.complete()


def test_set_callback_none_withdraws_the_callback(manager: qmgr.Manager) -> None:
    with manager.create_job("withdrawn") as job:
        job.set_callback(Recorder())
        assert _callback.live_count() == 1
        job.set_callback(None)
        _wait_until_released("after set_callback(None)")
        job.cancel()


def test_wait_withdraws_its_callback_when_it_returns(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    with manager.create_job("waited") as job:
        job.add_file(server.url("/data/1k/waited"), work / "waited.bin")
        job.resume()
        assert job.wait(timeout=WAIT_SECONDS) is qmgr.JobState.TRANSFERRED
        _wait_until_released("after wait")
        job.complete()


def test_an_unclosed_job_is_closed_by_its_finalizer(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    job = manager.create_job("forgotten")
    job_id = job.id
    job.set_callback(Recorder())
    del job  # the callback holds the Job weakly: nothing else keeps it
    _wait_until_released("after the finalizer")
    with manager.get_job(job_id) as again:
        again.cancel()


def test_a_callback_that_calls_back_into_the_library(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    completed: queue.Queue[qmgr.JobState] = queue.Queue()

    class Completing(qmgr.JobCallback):
        def job_transferred(self, job: qmgr.Job) -> None:
            job.complete()
            completed.put(job.state)

    with manager.create_job("completing") as job:
        job.add_file(server.url("/data/1k/completing"), work / "completing.bin")
        job.set_callback(Completing())
        job.resume()
        assert completed.get(timeout=WAIT_SECONDS) is qmgr.JobState.ACKNOWLEDGED
    assert (work / "completing.bin").stat().st_size == 1024


EXIT_SCRIPT = """
import atexit
import sys

# Registered first, so it runs last: after the package's own exit handler.
atexit.register(lambda: print("live at exit:", qmgr._callback.live_count()))

import qmgr
import qmgr._callback


class Counting(qmgr.JobCallback):
    calls = 0

    def job_modification(self, job):
        Counting.calls += 1


manager = qmgr.Manager()
job = manager.create_job("left registered at exit")
job.add_file(sys.argv[1], sys.argv[2])
job.set_callback(Counting())
job.resume()
print(job.id)
# Exits while the transfer (and its callbacks) goes on, with everything still open.
while Counting.calls == 0:
    pass
"""


def test_exit_with_a_callback_registered_is_clean(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            EXIT_SCRIPT,
            server.url("/data/256k/at-exit?rate=100000"),
            str(work / "at-exit.bin"),
        ],
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    job_id, live = result.stdout.splitlines()
    assert live == "live at exit: 0", "the callback was still registered when Python ended"
    with manager.get_job(job_id) as job:
        job.cancel()
