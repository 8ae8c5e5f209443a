"""Docker helpers for the test suite.

Tests that need a Docker engine are marked ``@pytest.mark.docker`` and call :func:`require_docker`
first (directly, from a fixture, or from a ``pytest_runtest_setup`` hook in ``conftest.py``)::

    @pytest.mark.docker
    def test_something() -> None:
        require_docker()
        image = ensure_test_image()
        ...

Without a reachable daemon such tests are *skipped* locally, but *fail* when the ``CI``
environment variable is set (``CI=true`` on GitHub Actions and most CI services), so CI cannot
silently skip them.  ``.ci/docker-up`` installs/starts Docker and builds the base image
(:data:`TEST_IMAGE`: Debian bookworm minbase + python3 + python3-numpy, no registry needed).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

TEST_IMAGE = os.environ.get("PYTEST_HUMANEVAL_TEST_IMAGE", "pytest-humaneval-test-base:latest")
#: The docker sandbox's image with HumanEval-X's toolchains (``.ci/toolchain-image``).
TOOLCHAIN_IMAGE = os.environ.get("PYTEST_HUMANEVAL_TOOLCHAIN_IMAGE", "pytest-humaneval-toolchains:latest")
REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKER_UP = REPO_ROOT / ".ci" / "docker-up"
TOOLCHAIN_UP = REPO_ROOT / ".ci" / "toolchain-image"

#: Keyword arguments for ``client.containers.run/create`` matching
#: ``--network none --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges
#: --user 65534:65534 --pids-limit 64 --memory 256m``.
HARDENED_CONTAINER_KWARGS: dict[str, Any] = {
    "network_mode": "none",
    "network_disabled": True,
    "read_only": True,
    "tmpfs": {"/tmp": "rw,nosuid,nodev,size=64m"},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "user": "65534:65534",
    "pids_limit": 64,
    "mem_limit": "256m",
}

_FALSE_VALUES = {"", "0", "false", "no", "off"}


def running_in_ci() -> bool:
    """True when the ``CI`` environment variable is set to a true-ish value."""
    return os.environ.get("CI", "").strip().lower() not in _FALSE_VALUES


def docker_client(timeout: int = 60) -> Any:
    """A ``docker.DockerClient`` from the environment (API version negotiated with the daemon)."""
    import docker  # optional dependency: imported lazily so collection works without it

    return docker.from_env(timeout=timeout)


def _unavailable_reason() -> str | None:
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the 'docker' Python package is not installed (pip install 'pytest-humaneval[docker]')"
    try:
        client = docker_client(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"Docker daemon not reachable ({type(exc).__name__}: {exc})"
    return None


def require_docker() -> None:
    """Skip the current test if Docker is unavailable, or fail it when running under CI."""
    reason = _unavailable_reason()
    if reason is None:
        return
    hint = f"; run {DOCKER_UP.relative_to(REPO_ROOT)} (as root) to install/start Docker"
    if running_in_ci():
        pytest.fail(f"Docker is required under CI but unavailable: {reason}{hint}", pytrace=False)
    pytest.skip(f"Docker unavailable: {reason}{hint}")


def _image_present(image: str) -> bool:
    try:
        client = docker_client(timeout=10)
    except Exception:
        return False
    try:
        client.images.get(image)
    except Exception:
        return False
    finally:
        client.close()
    return True


def ensure_toolchain_image() -> str:
    """The toolchain image's name, running ``.ci/toolchain-image`` first if it is missing (minutes: a
    debootstrap with the toolchains; CI builds it before the tests)."""
    return _ensure_image(TOOLCHAIN_IMAGE, TOOLCHAIN_UP, "PYTEST_HUMANEVAL_TOOLCHAIN_IMAGE", timeout=3600)


def ensure_test_image() -> str:
    """Return the base test image name, running ``.ci/docker-up`` first if it is missing.

    ``.ci/docker-up`` is idempotent and serialized with a file lock, so concurrent pytest-xdist
    workers may call this safely.  Raises ``RuntimeError`` if the image still cannot be found.
    """
    return _ensure_image(TEST_IMAGE, DOCKER_UP, "PYTEST_HUMANEVAL_TEST_IMAGE", timeout=1800)


def _ensure_image(image: str, script: Path, variable: str, timeout: int) -> str:
    """``image``, running ``script`` (told the name in ``variable``) first if it is missing."""
    if _image_present(image):
        return image
    env = dict(os.environ, **{variable: image})
    proc = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    if proc.returncode != 0 or not _image_present(image):
        raise RuntimeError(
            f"{script} failed (rc={proc.returncode}) to provide {image}:\n"
            f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
        )
    return image
    env = dict(os.environ, PYTEST_HUMANEVAL_TEST_IMAGE=TEST_IMAGE)
    proc = subprocess.run(
        ["bash", str(DOCKER_UP)], env=env, capture_output=True, text=True, check=False, timeout=1800
    )
    if proc.returncode != 0 or not _image_present(TEST_IMAGE):
        raise RuntimeError(
            f"{DOCKER_UP} failed (rc={proc.returncode}) to provide {TEST_IMAGE}:\n"
            f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
        )
    return TEST_IMAGE
