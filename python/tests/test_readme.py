"""The examples of the READMEs run as written (with the test server's URL and a path of
the test's own in place of the example's)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CHECKOUT, Server

EXAMPLE_URL = "https://example.org/file.iso"
EXAMPLE_PATH = "/tmp/file.iso"

READMES = {
    "README.md": "## Use it from Python",
    "python/README.md": "# qmgr for Python",
}


def _example(readme: str, heading: str) -> str:
    text = (CHECKOUT / readme).read_text()
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"{readme}: no python block under {heading!r}"
    return match.group(1)


@pytest.mark.parametrize("readme", sorted(READMES))
def test_the_readme_example_downloads(readme: str, server: Server, work: Path) -> None:
    code = _example(readme, READMES[readme])
    assert EXAMPLE_URL in code and EXAMPLE_PATH in code
    destination = work / "file.iso"
    code = code.replace(EXAMPLE_URL, server.url("/data/100k/readme")).replace(
        EXAMPLE_PATH, str(destination)
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "102400 bytes" in result.stdout
    assert "failed" not in result.stdout
    assert destination.stat().st_size == 100 * 1024
