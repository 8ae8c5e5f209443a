"""Real Python environments for the tests: virtual environments built from a real interpreter (the
Debian system Python, the Python running the tests, uv), a copy of the plugin's source that any user
can read, and a throw-away ordinary user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The Debian system interpreter (``python3-venv`` makes venvs of it; ``.ci/run`` installs it).
SYSTEM_PYTHON = Path("/usr/bin/python3")


def plugin_requirements() -> tuple[str, ...]:
    """What a venv needs to run the plugin from its source: the dependencies pyproject.toml declares, with
    pytest and pytest-xdist at the versions this test session uses."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the installed metadata says the same
        from importlib.metadata import requires

        declared = [r for r in requires("pytest-humaneval") or [] if "extra ==" not in r]
    else:
        declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    rest = [r for r in declared if not r.replace("_", "-").lower().startswith("pytest")]
    return (f"pytest=={version('pytest')}", f"pytest-xdist=={version('pytest-xdist')}", *rest)


PLUGIN_REQUIREMENTS = plugin_requirements()


def readable_by_others(python: str) -> bool:
    """Can an unprivileged uid run ``python`` (its directories all open to others)? Not a pyenv under /root."""
    path = Path(python).resolve().parent
    while path != path.parent:
        if not path.stat().st_mode & 0o001:
            return False
        path = path.parent
    return True


def unavailable(reason: str) -> NoReturn:
    """Skip where this machine cannot build the environment; under CI that is a failure."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def open_dir(prefix: str) -> Path:
    """A new directory every user can enter and read (not under pytest's mode-0700 temp root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def readable_plugin(dest: Path) -> Path:
    """A copy of the plugin's source tree (package, bundled datasets and sandbox files) that any user can
    read, wherever this checkout lives; put it on PYTHONPATH."""
    for name in ("pytest_humaneval", "datasets", "sandbox"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for root, dirs, files in os.walk(dest):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    return dest


def run_checked(cmd: list[str], what: str, **kwargs: object) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        unavailable(f"{what} failed ({' '.join(map(str, cmd))}): {(proc.stdout + proc.stderr)[-1500:]}")


def make_venv(python: Path | str, dest: Path, *options: str, packages: tuple[str, ...] = ()) -> Path:
    """``python -m venv`` at ``dest`` with ``packages`` pip-installed into it; returns its interpreter."""
    if not Path(python).exists():
        unavailable(f"{python} does not exist")
    run_checked([str(python), "-m", "venv", *options, str(dest)], f"making a venv of {python}")
    interpreter = dest / "bin" / "python"
    if packages:
        pip = [str(interpreter), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages]
        run_checked(pip, f"installing {', '.join(packages)}")
    return interpreter


def uv_venv(dest: Path, *options: str) -> Path:
    """A venv made by uv (``uv venv``), from the Python running the tests."""
    try:
        from uv import find_uv_bin
    except ImportError:
        unavailable("uv is not installed (pip install uv)")
    run_checked([find_uv_bin(), "venv", "-q", "--python", sys.executable, *options, str(dest)], "uv venv")
    return dest / "bin" / "python"


def site_packages(interpreter: Path) -> Path:
    """The venv's own site-packages directory."""
    out = subprocess.run(
        [str(interpreter), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


@contextmanager
def ordinary_user() -> Iterator[pwd.struct_passwd]:
    """A new user with a home directory of its own (mode 0700), removed afterwards with its files."""
    if os.geteuid() != 0:
        pytest.skip("making a user needs root")
    if shutil.which("useradd") is None:
        unavailable("useradd is not installed")
    name = f"hevaltest{uuid.uuid4().hex[:8]}"
    run_checked(["useradd", "--create-home", "--shell", "/bin/sh", name], "useradd")
    try:
        user = pwd.getpwnam(name)
        os.chmod(user.pw_dir, 0o700)
        yield user
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True)
