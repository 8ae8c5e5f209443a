"""pytest entry point: hook specs, options, and activation. Only a run with --humaneval or
--humaneval-debug imports the rest: ``activation.py`` (settings, dataset, the hooks of every process),
``controller.py`` (once per session) and ``items.py`` (in each process that runs tests)."""

from __future__ import annotations

import pytest

from . import hookspecs
from .fixtures import humaneval_endpoint  # noqa: F401  (a plugin module's fixtures are its attributes)
from .options import add_options, requested


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if not requested(config):
        return  # before reading any option: an ini typo must not break the repo's own test runs
    from .activation import activate

    activate(config)
