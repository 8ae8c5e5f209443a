"""Shared test set-up: Docker-marked tests need a reachable engine (skip locally, fail under CI)."""

from __future__ import annotations

import pytest
from docker_support import require_docker


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker"):
        require_docker()
