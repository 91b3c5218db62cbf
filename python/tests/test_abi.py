"""The package's copies of ABI facts agree with the project's headers (include/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qmgr import _com, enums, hresults

INCLUDE = Path(__file__).resolve().parents[2] / "include"

pytestmark = pytest.mark.skipif(
    not (INCLUDE / "bits.h").is_file(), reason="needs a checkout's include/"
)


def _header_text() -> str:
    return (INCLUDE / "bits.h").read_text() + (INCLUDE / "qmgr.h").read_text()


def test_every_hresult_matches_the_headers() -> None:
    defined = {
        name: int(value, 16)
        for name, value in re.findall(
            r"^#define ([A-Z_0-9]+) \(\(HRESULT\)(0x[0-9A-Fa-f]+)\)", _header_text(), re.M
        )
    }
    assert len(defined) > 100
    ours = {
        name: value
        for name, value in vars(hresults).items()
        if name.isupper() and isinstance(value, int)
    }
    assert ours == defined


def _vtable_methods(interface: str) -> list[str]:
    """The method names of a C vtable struct of include/bits.h, in order."""
    text = _header_text()
    match = re.search(rf"typedef struct {interface}Vtbl \{{(.*?)\}} {interface}Vtbl;", text, re.S)
    assert match, f"no {interface}Vtbl in the headers"
    return re.findall(r"\(STDMETHODCALLTYPE \*(\w+)\)", match.group(1))


@pytest.mark.parametrize("interface", sorted(_com.METHODS))
def test_vtable_slots_match_the_headers(interface: str) -> None:
    assert list(_com.METHODS[interface]) == _vtable_methods(interface)


@pytest.mark.parametrize(
    ("enumeration", "prefix"),
    [
        (enums.JobState, "BG_JOB_STATE_"),
        (enums.JobType, "BG_JOB_TYPE_"),
        (enums.JobPriority, "BG_JOB_PRIORITY_"),
        (enums.ErrorContext, "BG_ERROR_CONTEXT_"),
        (enums.ProxyUsage, "BG_JOB_PROXY_USAGE_"),
        (enums.AuthTarget, "BG_AUTH_TARGET_"),
        (enums.AuthScheme, "BG_AUTH_SCHEME_"),
        (enums.JobProperty, "BITS_JOB_PROPERTY_"),
        (enums.CertStoreLocation, "BG_CERT_STORE_LOCATION_"),
    ],
)
def test_enumerations_match_the_headers(enumeration: type, prefix: str) -> None:
    text = _header_text()
    defined = {
        name: int(value) for name, value in re.findall(rf"^\s+{prefix}(\w+) = (\d+),?$", text, re.M)
    }
    assert defined
    assert {member.name: member.value for member in enumeration} == defined  # type: ignore[attr-defined]


def test_notify_flags_match_the_headers() -> None:
    defined = {
        name: int(value)
        for name, value in re.findall(r"^#define BG_NOTIFY_(\w+) (\d+)$", _header_text(), re.M)
    }
    assert {member.name: member.value for member in enums.NotifyFlags} == defined
