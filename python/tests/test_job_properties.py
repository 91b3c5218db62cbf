"""Job3, Job4 and Job5: byte ranges, a moved server, ACL flags, the maximum download time and
the Job5 properties, against the test server and a private qmgrd."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import qmgr
from qmgr import hresults

from .conftest import Server

WAIT_SECONDS = 60


def _body(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=WAIT_SECONDS) as answer:
        body: bytes = answer.read()
    return body


def test_a_file_of_byte_ranges_holds_those_bytes_one_after_the_other(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    url = server.url("/data/4k/ranged")
    whole = _body(url)
    destination = work / "ranged.bin"
    with manager.create_job("ranges") as job:
        job.add_file_with_ranges(url, destination, [(0, 100), (1000, 50), (4000, None)])
        job.resume()
        assert job.wait(timeout=WAIT_SECONDS) is qmgr.JobState.TRANSFERRED, job.error
        job.complete()
    assert destination.read_bytes() == whole[:100] + whole[1000:1050] + whole[4000:]


def test_ranges_past_each_other_are_refused(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    with manager.create_job("overlapping ranges") as job:
        with pytest.raises(qmgr.QmgrError) as raised:
            job.add_file_with_ranges(
                server.url("/data/4k/overlap"), work / "overlap.bin", [(100, 50), (120, 10)]
            )
        assert list(job.files) == []
        job.cancel()
    assert raised.value.hresult == hresults.BG_E_OVERLAPPING_RANGES
    assert raised.value.description


def test_a_replaced_prefix_moves_the_files_to_the_new_place(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    destination = work / "moved.bin"
    with manager.create_job("moved server") as job:
        job.add_file(server.url("/data/2k/old-place"), destination)
        job.replace_remote_prefix(server.url("/data/2k/old"), server.url("/data/2k/new"))
        with job.files as files:
            (file,) = files
            assert file.remote_name == server.url("/data/2k/new-place")
        job.resume()
        assert job.wait(timeout=WAIT_SECONDS) is qmgr.JobState.TRANSFERRED, job.error
        job.complete()
    assert destination.read_bytes() == _body(server.url("/data/2k/new-place"))


def test_a_maximum_download_size_fails_a_larger_file(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    with manager.create_job("size limit") as job:
        assert job.get_property(qmgr.JobProperty.MAX_DOWNLOAD_SIZE) == 0
        job.set_property(qmgr.JobProperty.MAX_DOWNLOAD_SIZE, 1000)
        assert job.get_property(qmgr.JobProperty.MAX_DOWNLOAD_SIZE) == 1000
        job.add_file(server.url("/data/2k/too-large"), work / "too-large.bin")
        job.resume()
        assert job.wait(timeout=WAIT_SECONDS) is qmgr.JobState.ERROR
        error = job.error
        assert error is not None
        assert error.code == hresults.BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED
        job.cancel()


def test_job5_properties_and_job3_and_job4_settings_round_trip(manager: qmgr.Manager) -> None:
    with manager.create_job("properties") as job:
        for flag in (
            qmgr.JobProperty.DYNAMIC_CONTENT,
            qmgr.JobProperty.HIGH_PERFORMANCE,
            qmgr.JobProperty.ON_DEMAND_MODE,
        ):
            assert job.get_property(flag) is False
            job.set_property(flag, True)
            assert job.get_property(flag) is True
            # Dynamic content and on-demand mode exclude each other: each goes back off.
            job.set_property(flag, False)
            assert job.get_property(flag) is False
        job.set_property(qmgr.JobProperty.ID_COST_FLAGS, 0x1)
        assert job.get_property(qmgr.JobProperty.ID_COST_FLAGS) == 0x1
        job.set_property(qmgr.JobProperty.MINIMUM_NOTIFICATION_INTERVAL_MS, 250)
        assert job.get_property(qmgr.JobProperty.MINIMUM_NOTIFICATION_INTERVAL_MS) == 250
        clsid = uuid.UUID("4991d34b-80a1-4291-83b6-3328366b9097")
        # No COM activation on Linux: a notification CLSID is refused, not ignored.
        with pytest.raises(qmgr.QmgrError) as raised:
            job.set_property(qmgr.JobProperty.NOTIFICATION_CLSID, clsid)
        assert raised.value.hresult == hresults.E_NOTIMPL
        with pytest.raises(qmgr.QmgrError) as raised:
            job.set_property(6, 1)
        assert raised.value.hresult == hresults.BG_E_UNKNOWN_PROPERTY_ID

        job.maximum_download_time = 1234
        assert job.maximum_download_time == 1234
        job.file_acl_flags = 0x1  # BG_COPY_FILE_OWNER
        assert job.file_acl_flags == 0x1
        with pytest.raises(qmgr.QmgrError) as raised:
            job.file_acl_flags = 0x100
        assert raised.value.hresult == hresults.E_INVALIDARG
        job.cancel()


def test_a_file_tells_its_ranges_temporary_name_headers_and_takes_a_new_url(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    with manager.create_job("file details") as job:
        job.add_file_with_ranges(server.url("/data/4k/parts"), work / "parts.bin", [(10, 20)])
        job.add_file(server.url("/data/1k/first-place"), work / "moved.bin")
        with job.files as files:
            ranged, moved = files
        with ranged, moved:
            assert ranged.ranges == [(10, 20)]
            assert moved.ranges == []
            assert moved.temporary_name is None
            assert moved.response_headers is None
            moved.remote_name = server.url("/data/1k/second-place")
            assert moved.remote_name == server.url("/data/1k/second-place")
            job.resume()
            assert job.wait(timeout=WAIT_SECONDS) is qmgr.JobState.TRANSFERRED, job.error
            temporary = moved.temporary_name
            assert temporary is not None
            assert Path(temporary).read_bytes() == _body(server.url("/data/1k/second-place"))
            headers = moved.response_headers
            assert headers is not None
            assert headers.startswith("HTTP/1.1 200")
            assert "\r\ncontent-length: 1024" in headers.lower()
            assert moved.validation_state is False
            moved.validation_state = True
            assert moved.validation_state is True
        job.complete()
    assert (work / "moved.bin").read_bytes() == _body(server.url("/data/1k/second-place"))


def _wait_until(job: qmgr.Job, state: qmgr.JobState, condition: Callable[[], bool]) -> None:
    """Waits until ``job`` is in ``state`` and ``condition`` holds (``job.wait`` waits for
    final states only, and an on-demand job goes back to SUSPENDED)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if job.state is state and condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"the job is {job.state.name}, not {state.name} as awaited")


def test_an_on_demand_file_fetches_the_ranges_asked_for(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    url = server.url("/data/64k/on-demand")
    whole = _body(url)
    destination = work / "on-demand.bin"
    with manager.create_job("on demand") as job:
        job.set_property(qmgr.JobProperty.ON_DEMAND_MODE, True)
        job.add_file(url, destination)
        with job.files as files:
            (file,) = files
        with file:
            with pytest.raises(qmgr.QmgrError) as raised:
                file.request_ranges([])
            assert raised.value.hresult == hresults.E_INVALIDARG
            file.request_ranges([(1000, 100), (5000, 10), (1050, 100)])
            job.resume()
            _wait_until(job, qmgr.JobState.SUSPENDED, lambda: len(file.filled_ranges) == 2)
            assert file.filled_ranges == [(1000, 150), (5000, 10)]
            temporary = file.temporary_name
            assert temporary is not None
            on_disk = Path(temporary).read_bytes()
            assert on_disk[1000:1150] == whole[1000:1150]
            assert on_disk[5000:5010] == whole[5000:5010]
            with pytest.raises(qmgr.QmgrError) as raised:
                file.update_download_position(len(whole))
            assert raised.value.hresult == hresults.BG_E_INVALID_RANGE
        job.cancel()
