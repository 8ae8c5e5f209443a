"""Shared test set-up: Docker-marked tests need a reachable engine (skip locally, fail under CI); the
tiny Qwen3 model and its ``transformers serve`` are built and started once per session, as are a
virtual environment of the Debian system Python and a copy of the plugin any user can read."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from docker_support import docker_client, ensure_test_image, require_docker

from pytest_humaneval import shared_builds

if TYPE_CHECKING:
    from tiny_server import ServerInfo

    from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox


def pytest_configure(config: pytest.Config) -> None:
    # Each pytester run gets a HOME of its own: the compiled languages' shared builds (seconds each) are made
    # once for the session, where the plugin would put them, not again in every run.
    os.environ.setdefault("PYTEST_HUMANEVAL_BUILD_CACHE", str(shared_builds.root()))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker"):
        require_docker()


@pytest.fixture(scope="session")
def client() -> Iterator[Any]:
    """A client of the Docker engine the docker-marked tests use (skip locally, fail under CI without one)."""
    require_docker()
    client = docker_client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def image(client: Any) -> str:
    """The debootstrap-built base image (python3, numpy) the sandbox tests run programs in."""
    return ensure_test_image()


@pytest.fixture(scope="module")
def secret_in_environment() -> Iterator[None]:
    """The secret the ``reads_secrets`` hostile case looks for, in the environment sandboxes start from
    (and so in pytester's subprocesses); gone after the module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUMANEVAL_TEST_SECRET", "hunter2")
        yield


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3 model directory, built once per test session."""
    from tiny_model import build_tiny_qwen3

    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3") / "model")


@pytest.fixture(scope="session")
def tiny_qwen3_40k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen3 with Qwen3's own 40,960 positions, as the real SGLang serves it (a request's
    max_tokens must fit the context)."""
    from tiny_model import build_tiny_qwen3

    return build_tiny_qwen3(
        tmp_path_factory.mktemp("tiny-qwen3-40k") / "model", max_position_embeddings=40960
    )


@pytest.fixture(scope="session")
def tiny_endpoint(tiny_qwen3: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """``transformers serve`` running the tiny model for the whole session (its log: ``.log_path``)."""
    from tiny_server import serve_tiny_model

    log = tmp_path_factory.mktemp("tiny-serve") / "serve.log"
    with serve_tiny_model(tiny_qwen3, log_path=log) as server:
        yield server


@pytest.fixture(scope="module")
def subprocess_sandbox() -> Iterator[SubprocessSandbox]:
    """A started subprocess sandbox (1 GiB per program) for the module's programs."""
    from pytest_humaneval.sandbox import Limits
    from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox

    sb = SubprocessSandbox(Limits(memory_mb=1024))
    sb.start()
    yield sb
    sb.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[socket.socket]:
    """A host socket a sandboxed program must not be able to reach."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture(scope="session")
def readable_plugin_tree() -> Iterator[Path]:
    """A copy of the plugin's source any user can read (for PYTHONPATH), wherever this checkout lives."""
    import shutil

    from venv_support import open_dir, readable_plugin

    tree = open_dir("humaneval-plugin-")
    yield readable_plugin(tree)
    shutil.rmtree(tree, ignore_errors=True)


@pytest.fixture
def open_tmp() -> Iterator[Callable[[str], Path]]:
    """``venv_support.open_dir`` for one test (a directory every user can enter, outside pytest's mode-0700
    temp root): what it made is removed afterwards, venvs and run directories alike."""
    import shutil

    from venv_support import open_dir

    made: list[Path] = []

    def make(prefix: str) -> Path:
        made.append(open_dir(prefix))
        return made[-1]

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def debian_venv() -> Iterator[Path]:
    """A plain venv of the Debian system Python (``/usr/bin/python3``) that any user can read, with the
    plugin's dependencies and pytest-xdist (to run the plugin from its source) and numpy (which HumanEval+
    tests import) installed in it alone; its interpreter."""
    import shutil

    from venv_support import PLUGIN_REQUIREMENTS, SYSTEM_PYTHON, make_venv, open_dir

    root = open_dir("humaneval-debian-venv-")
    yield make_venv(SYSTEM_PYTHON, root / "venv", packages=(*PLUGIN_REQUIREMENTS, "numpy"))
    shutil.rmtree(root, ignore_errors=True)
