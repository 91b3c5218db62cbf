"""The world the tests run in: the project's test server, and a qmgr instance of their own
(fresh XDG state, config and runtime directories, so the qmgrd the library starts is a
private one, stopped when the session ends).

The binaries come from ``$QMGRD``, ``$QMGR_TESTSERVER`` and ``$QMGR_LIB`` when set (as
``cargo xtask test`` sets them), else from the checkout's target/debug.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import qmgr

CHECKOUT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or CHECKOUT / "target")
if not TARGET.is_absolute():
    TARGET = CHECKOUT / TARGET

#: How long a stopped qmgrd may take to exit.
STOP_SECONDS = 10


def _binary(variable: str, default: Path) -> Path:
    path = Path(os.environ.get(variable) or default)
    if not path.is_file():
        pytest.exit(
            f"{path} is missing (set ${variable}, or build it: "
            "cargo build -p libqmgr -p qmgr-service -p qmgr-tests --bins)",
            returncode=4,
        )
    return path


class Instance:
    """A private qmgr instance: its directories, and the work directory for downloads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root / "work"

    def stop_daemon(self) -> None:
        """Stops the qmgrd the library started here (its pid is in the store lock)."""
        try:
            pid = int((self.root / "state/qmgr/store.lock").read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.02)


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(") ", 1)[-1][:1]
    return state not in ("Z", "X", "")


@pytest.fixture(scope="session", autouse=True)
def instance() -> Iterator[Instance]:
    """Points the library (loaded in this process, and any child) at a fresh instance."""
    library = _binary("QMGR_LIB", TARGET / "debug" / "libqmgr.so")
    qmgrd = _binary("QMGRD", TARGET / "debug" / "qmgrd")
    # A short path: the daemon's socket path must fit in sun_path.
    root = Path(tempfile.mkdtemp(prefix="qmgr-py-"))
    for name in ("state", "config", "run", "work", "users"):
        (root / name).mkdir()
    (root / "run").chmod(0o700)
    os.environ.update(
        {
            "QMGR_LIB": str(library),
            "QMGRD": str(qmgrd),
            "XDG_STATE_HOME": str(root / "state"),
            "XDG_CONFIG_HOME": str(root / "config"),
            "XDG_RUNTIME_DIR": str(root / "run"),
            "QMGR_USER_RUNTIME_ROOT": str(root / "users"),
        }
    )
    os.environ.pop("QMGR_LIBRARY", None)
    world = Instance(root)
    try:
        yield world
    finally:
        world.stop_daemon()
        shutil.rmtree(root, ignore_errors=True)


class Server:
    """The project's test server: ``/data/<size>/<name>`` serves generated content, with
    faults asked for in the query (``?status=404``, ``?rate=BYTES_PER_SECOND``)."""

    def __init__(self, binary: Path) -> None:
        self.process = subprocess.Popen(
            [str(binary), "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.process.kill()
            raise RuntimeError(f"{binary} printed {self.base_url!r} instead of its URL")

    def url(self, path: str) -> str:
        return self.base_url + path

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    test_server = Server(_binary("QMGR_TESTSERVER", TARGET / "debug" / "qmgr-testserver"))
    try:
        yield test_server
    finally:
        test_server.stop()


@pytest.fixture
def manager(instance: Instance) -> Iterator[qmgr.Manager]:
    with qmgr.Manager() as opened:
        yield opened


@pytest.fixture
def work(instance: Instance, request: pytest.FixtureRequest) -> Path:
    """An empty directory of the instance's for this test's files."""
    directory = instance.work / re.sub(r"[^\w.-]+", "_", request.node.name)
    directory.mkdir()
    return directory


def pytest_report_header() -> str:
    try:
        library = qmgr.library_path()
    except qmgr.LibraryNotFound:
        library = "(not found yet)"
    return f"qmgr package: {Path(qmgr.__file__).parent}; libqmgr: {library}"
