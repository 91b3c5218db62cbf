"""Jobs, files and errors against the test server and a private qmgrd."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import qmgr
from qmgr import hresults

from .conftest import Server

#: Upper bound of any wait here; the transfers take well under a second.
WAIT_SECONDS = 60


def test_a_download_reports_progress_and_completes(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    destination = work / "paced.bin"
    seen: list[qmgr.Progress] = []
    with manager.create_job("paced download") as job:
        # Paced at 400 kB/s, the 200 KiB take half a second: progress is seen on the way.
        job.add_file(server.url("/data/200k/paced?rate=400000"), destination)
        job.resume()
        threads = set()

        def on_progress(progress: qmgr.Progress) -> None:
            threads.add(threading.get_ident())
            seen.append(progress)

        state = job.wait(timeout=WAIT_SECONDS, on_progress=on_progress)
        assert state is qmgr.JobState.TRANSFERRED, job.error
        final = job.progress
        job.complete()
        assert job.state is qmgr.JobState.ACKNOWLEDGED
    assert final == qmgr.Progress(200 * 1024, 200 * 1024, 1, 1)
    assert final.fraction == 1.0
    assert threads == {threading.get_ident()}, "on_progress runs on the waiting thread"
    assert seen[-1] == final
    transferred = [progress.bytes_transferred for progress in seen]
    assert transferred == sorted(transferred)
    assert len(seen) == len(set(seen)), "on_progress is called only when the progress changes"
    assert destination.stat().st_size == 200 * 1024


def test_a_404_puts_the_job_in_error_with_the_http_code_and_a_description(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    url = server.url("/data/1k/gone?status=404")
    with manager.create_job("missing file") as job:
        assert job.error is None
        job.add_file(url, work / "gone.bin")
        job.resume()
        assert job.wait(timeout=WAIT_SECONDS) is qmgr.JobState.ERROR
        error = job.error
        assert error is not None
        assert error.code == hresults.BG_E_HTTP_ERROR_404
        assert error.code.name == "BG_E_HTTP_ERROR_404"
        assert error.context is qmgr.ErrorContext.REMOTE_FILE
        assert error.description
        assert error.context_description
        assert error.remote_name == url
        assert error.local_name == str(work / "gone.bin")
        assert job.error_count >= 1
        raised = error.to_exception("download")
        assert raised.hresult == hresults.BG_E_HTTP_ERROR_404
        assert raised.description == error.description
        job.cancel()
        assert job.state is qmgr.JobState.CANCELLED


def test_a_relative_path_is_refused_with_e_invalidarg_and_the_library_s_description(
    manager: qmgr.Manager, server: Server
) -> None:
    with manager.create_job("relative path") as job:
        with pytest.raises(qmgr.QmgrError) as raised:
            job.add_file(server.url("/data/1k/relative"), "relative/file.bin")
        job.cancel()
    error = raised.value
    assert error.hresult == hresults.E_INVALIDARG == 0x80070057
    assert error.hresult.name == "E_INVALIDARG"
    assert error.hresult.signed == -2147024809
    assert error.operation == "AddFile"
    assert "relative" in error.description
    assert str(error).startswith("AddFile: E_INVALIDARG (0x80070057): ")


def test_an_unknown_job_is_bg_e_not_found(manager: qmgr.Manager) -> None:
    with pytest.raises(qmgr.QmgrError) as raised:
        manager.get_job(uuid.uuid4())
    assert raised.value.hresult == hresults.BG_E_NOT_FOUND
    assert raised.value.description


def test_add_files_is_all_or_nothing(manager: qmgr.Manager, server: Server, work: Path) -> None:
    with manager.create_job("file set") as job:
        with pytest.raises(qmgr.QmgrError) as raised:
            job.add_files(
                [
                    (server.url("/data/1k/good"), work / "good.bin"),
                    (server.url("/data/1k/bad"), "not/absolute.bin"),
                ]
            )
        assert raised.value.hresult == hresults.E_INVALIDARG
        assert list(job.files) == []
        with pytest.raises(qmgr.QmgrError):
            job.add_files([])
        job.cancel()


def test_strings_the_library_cannot_take_are_refused_before_the_call(
    manager: qmgr.Manager,
) -> None:
    with manager.create_job("strings") as job:
        with pytest.raises(ValueError, match="NUL"):
            job.display_name = "a\0b"
        with pytest.raises(TypeError):
            job.description = 42  # type: ignore[assignment]
        # A lone surrogate reaches the library, which refuses it.
        with pytest.raises(qmgr.QmgrError) as raised:
            job.display_name = "\udcff"
        assert raised.value.hresult == hresults.E_INVALIDARG
        job.cancel()


def test_properties_read_back_what_was_set(manager: qmgr.Manager) -> None:
    with manager.create_job(
        "properties", priority=qmgr.JobPriority.HIGH, description="first"
    ) as job:
        assert job.display_name == "properties"
        assert job.description == "first"
        assert job.priority is qmgr.JobPriority.HIGH
        assert job.type is qmgr.JobType.DOWNLOAD
        assert job.state is qmgr.JobState.SUSPENDED
        job.display_name = "renamed ✓ 𝄞"
        job.description = "second"
        job.priority = qmgr.JobPriority.LOW
        job.minimum_retry_delay = 120
        job.no_progress_timeout = 3600
        assert job.display_name == "renamed ✓ 𝄞"
        assert job.description == "second"
        assert job.priority is qmgr.JobPriority.LOW
        assert job.minimum_retry_delay == 120
        assert job.no_progress_timeout == 3600
        assert job.owner
        times = job.times
        assert times.created is not None and times.transfer_completed is None
        assert isinstance(job.id, uuid.UUID)
        job.cancel()


def test_an_upload_reaches_the_server(manager: qmgr.Manager, server: Server, work: Path) -> None:
    source = work / "upload.bin"
    source.write_bytes(bytes(range(256)) * 400)
    with manager.create_job("upload", qmgr.JobType.UPLOAD) as job:
        assert job.type is qmgr.JobType.UPLOAD
        job.add_file(server.url("/incoming/python-upload.bin"), source)
        job.resume()
        assert job.wait(timeout=WAIT_SECONDS) is qmgr.JobState.TRANSFERRED, job.error
        with job.files as files:
            (file,) = files
            assert file.progress == qmgr.FileProgress(102400, 102400, True)
        job.complete()


def test_jobs_and_files_are_enumerated(manager: qmgr.Manager, server: Server, work: Path) -> None:
    created = []
    for index in range(2):
        job = manager.create_job(f"enumerated {index}")
        job.add_files(
            (server.url(f"/data/1k/enumerated-{index}-{n}"), work / f"{index}-{n}.bin")
            for n in range(3)
        )
        created.append(job)
    try:
        listed = {job.id: job for job in manager.jobs()}
        for job in created:
            assert job.id in listed
            assert listed[job.id] == job
            assert listed[job.id].display_name == job.display_name
        for job in listed.values():
            job.close()

        files = list(created[1].files)
        assert [file.remote_name for file in files] == [
            server.url(f"/data/1k/enumerated-1-{n}") for n in range(3)
        ]
        assert [file.local_name for file in files] == [str(work / f"1-{n}.bin") for n in range(3)]
        assert files[0].progress == qmgr.FileProgress(None, 0, False)
        for file in files:
            file.close()
            assert file.closed
    finally:
        for job in created:
            job.cancel()
            job.close()


def test_an_enumeration_closed_early_ends_and_releases(manager: qmgr.Manager) -> None:
    with manager.create_job("early") as job:
        jobs = manager.jobs()
        with jobs:
            first = next(jobs)
            first.close()
        assert list(jobs) == []
        job.cancel()


def test_context_managers_release_and_closed_objects_refuse_calls(
    server: Server, work: Path
) -> None:
    with qmgr.Manager() as manager:
        with manager.create_job("closed") as job:
            job.add_file(server.url("/data/1k/closed"), work / "closed.bin")
            job_id = job.id
        assert job.closed
        with pytest.raises(ValueError, match="closed"):
            job.resume()
        assert job.id == job_id, "the id stays known after close"
        job.close()  # a second close does nothing
        # Closing the Job released this process's reference, not the job.
        with manager.get_job(job_id) as again:
            assert again.state is qmgr.JobState.SUSPENDED
            with again.files as files:
                assert [file.local_name for file in files] == [str(work / "closed.bin")]
            again.cancel()
    assert manager.closed
    with pytest.raises(ValueError, match="closed"):
        manager.create_job("after close")
    assert repr(manager) == "<qmgr.Manager (closed)>"


def test_jobs_outlive_their_manager(server: Server, work: Path) -> None:
    manager = qmgr.Manager()
    job = manager.create_job("outlives")
    manager.close()
    job.add_file(server.url("/data/1k/outlives"), work / "outlives.bin")
    job.resume()
    assert job.wait(timeout=WAIT_SECONDS) is qmgr.JobState.TRANSFERRED
    job.complete()
    job.close()


def test_suspend_resume_and_a_wait_that_times_out(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    with manager.create_job("suspended") as job:
        job.add_file(server.url("/data/1k/suspended"), work / "suspended.bin")
        # Never resumed: the wait ends at its timeout, in the state the job is in.
        assert job.wait(timeout=0.05) is qmgr.JobState.SUSPENDED
        job.resume()
        job.suspend()
        assert job.state is qmgr.JobState.SUSPENDED
        job.cancel()
        assert job.wait() is qmgr.JobState.CANCELLED


def test_error_descriptions_come_from_the_library(manager: qmgr.Manager) -> None:
    assert manager.error_description(hresults.BG_E_NOT_FOUND)
    with pytest.raises(qmgr.QmgrError):
        manager.error_description(0x8BADF00D)


def test_hresults_print_with_their_names() -> None:
    assert str(qmgr.HResult(hresults.E_INVALIDARG)) == "E_INVALIDARG (0x80070057)"
    assert str(qmgr.HResult(0x8BADF00D)) == "0x8BADF00D"
    assert qmgr.HResult(-2147024809) == hresults.E_INVALIDARG
    assert qmgr.HResult(hresults.S_FALSE).failed is False
    error = qmgr.QmgrError(hresults.BG_E_NOT_FOUND, "no such job", "GetJob")
    assert str(error) == "GetJob: BG_E_NOT_FOUND (0x80200001): no such job"


def test_jobs_waited_on_from_several_threads(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    def download(index: int) -> qmgr.JobState:
        with manager.create_job(f"thread {index}") as job:
            job.add_file(server.url(f"/data/32k/thread-{index}?rate=200000"), work / f"{index}.bin")
            job.resume()
            state = job.wait(timeout=WAIT_SECONDS)
            if state is qmgr.JobState.TRANSFERRED:
                job.complete()
            else:
                job.cancel()
            return state

    with ThreadPoolExecutor(max_workers=6) as pool:
        states = list(pool.map(download, range(6)))
    assert states == [qmgr.JobState.TRANSFERRED] * 6
    assert all((work / f"{index}.bin").stat().st_size == 32 * 1024 for index in range(6))
