"""Where the package looks for libqmgr.so."""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

import pytest

import qmgr
from qmgr import _library


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No variable set, an empty home, a cwd and a package outside any checkout, and a
    system loader that knows nothing."""
    for variable in ("QMGR_LIB", "QMGR_LIBRARY", "CARGO_TARGET_DIR"):
        monkeypatch.delenv(variable, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_library, "__file__", str(tmp_path / "site-packages/qmgr/_library.py"))
    monkeypatch.setattr(_library, "_install_dirs", lambda: [home / ".local/lib"])
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    return tmp_path


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_qmgr_lib_wins_and_the_old_variable_still_works(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = _touch(nowhere / "chosen/libqmgr.so")
    _touch(nowhere / "home/.local/lib/libqmgr.so")
    monkeypatch.setenv("QMGR_LIBRARY", str(chosen))
    assert _library.find() == str(chosen)
    newer = _touch(nowhere / "newer/libqmgr.so")
    monkeypatch.setenv("QMGR_LIB", str(newer))
    assert _library.find() == str(newer)


def test_a_qmgr_lib_that_names_no_file_is_an_error(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _touch(nowhere / "home/.local/lib/libqmgr.so")
    monkeypatch.setenv("QMGR_LIB", str(nowhere / "missing.so"))
    with pytest.raises(qmgr.LibraryNotFound, match="QMGR_LIB"):
        _library.find()


def test_the_install_prefix_comes_before_the_build_tree(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = nowhere / "checkout"
    (checkout / "crates/libqmgr").mkdir(parents=True)
    _touch(checkout / "Cargo.toml")
    debug = _touch(checkout / "target/debug/libqmgr.so")
    monkeypatch.chdir(checkout / "crates")
    assert _library.find() == str(debug)
    release = _touch(checkout / "target/release/libqmgr.so")
    assert _library.find() == str(release)
    installed = _touch(nowhere / "home/.local/lib/libqmgr.so.0")
    assert _library.find() == str(installed)


def test_a_checkout_is_found_above_the_package_too(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = nowhere / "checkout"
    (checkout / "crates/libqmgr").mkdir(parents=True)
    _touch(checkout / "Cargo.toml")
    monkeypatch.setattr(_library, "__file__", str(checkout / "python/src/qmgr/_library.py"))
    monkeypatch.setenv("CARGO_TARGET_DIR", "elsewhere")
    built = _touch(checkout / "elsewhere/debug/libqmgr.so")
    assert _library.find() == str(built)


def test_the_system_loader_is_asked_last(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.0")
    assert _library.find() == "libqmgr.so.0"


def test_not_found_says_where_it_looked(nowhere: Path) -> None:
    with pytest.raises(qmgr.LibraryNotFound) as raised:
        _library.find()
    message = str(raised.value)
    assert "QMGR_LIB" in message
    assert os.path.join(str(nowhere), "home", ".local", "lib", "libqmgr.so") in message


def test_the_library_in_use_is_the_one_found() -> None:
    assert qmgr.library_path() == os.environ["QMGR_LIB"]
