"""Files the plugin writes for the user (report.json, the HTML page, the resolved completions, the time-limits
cache) get the mode the user's umask gives any new file, as the completions cache does: not mkstemp's 0600."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_humaneval.files import write_atomically, write_json


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_written_files_follow_the_umask(tmp_path: Path, umask_022: None) -> None:
    write_json(tmp_path / "report.json", {"a": 1})
    write_atomically(tmp_path / "out" / "report.html", "<html></html>")
    for path in (tmp_path / "report.json", tmp_path / "out" / "report.html"):
        assert path.stat().st_mode & 0o777 == 0o644, path
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temp file left"


def test_a_stricter_umask_is_kept(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_json(tmp_path / "report.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o600
