"""The plugin's work in a run with --humaneval or --humaneval-debug: settings, dataset, the controller
and the evaluator, and the hooks that put the problems in the session. ``plugin.py`` imports this module
only for such a run, so a repo's own test runs load none of the evaluation code."""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .completions import samples_from_rows
from .controller import DATASET_MISMATCH, Controller, count_samples, junit_xml
from .datasets.dataset import DEBUG_SUFFIX, Dataset, debug_subset
from .datasets.registry import load_dataset
from .errors import HumanEvalError
from .items import Evaluator, HumanEvalCollector, HumanEvalItem
from .languages import check_toolchains
from .options import Settings, read_settings
from .reporting.html.pytest_html import add_pytest_html_extras
from .run_state import COMPLETIONS_KEY, EVALUATOR_KEY, MODES_KEY, RUN_ID_KEY, SAMPLES_KEY, TIME_LIMITS_KEY
from .time_limits import TimeLimits
from .verdict import Result


def activate(config: pytest.Config) -> None:
    """Read the settings and the dataset (a bad one is a usage error), then register the hooks: the
    controller's on the controller (or the single process), the evaluator wherever tests run."""
    try:
        settings = read_settings(config)
        dataset = load_dataset(settings.dataset, config)
        if settings.debug and not dataset.name.endswith(DEBUG_SUFFIX):
            dataset = debug_subset(dataset)
        image = check_toolchains(dataset, settings.sandbox, settings.sandbox_image)
        if image and image != settings.sandbox_image:  # a compiled language's programs: the toolchain image
            settings = dataclasses.replace(settings, sandbox_image=image)
    except HumanEvalError as e:
        raise pytest.UsageError(str(e)) from None
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        config.stash[RUN_ID_KEY] = uuid.uuid4().hex[:12]
        config.pluginmanager.register(Controller(config, settings, dataset), "humaneval-controller")
    else:
        check_same_dataset(dataset, workerinput)
        config.stash[COMPLETIONS_KEY] = workerinput["humaneval_completions"]
        # The completions themselves came along: a worker (perhaps on another machine) reads no file.
        config.stash[SAMPLES_KEY] = {
            source: samples_from_rows(rows)
            for source, rows in (workerinput.get("humaneval_completion_rows") or {}).items()
        }
        config.stash[MODES_KEY] = workerinput.get("humaneval_modes") or {}
        config.stash[RUN_ID_KEY] = workerinput["humaneval_run_id"]
        config.stash[TIME_LIMITS_KEY] = TimeLimits.from_dict(workerinput["humaneval_time_limits"])
    if workerinput is not None or not _is_xdist_controller(config):
        workers = int(workerinput["workercount"]) if workerinput else 1
        config.stash[EVALUATOR_KEY] = Evaluator(config, settings, dataset, workers)
    config.pluginmanager.register(ActiveRun(settings, dataset), "humaneval-run")
    _show_completions_in_junit(config)


def check_same_dataset(dataset: Dataset, workerinput: dict[str, Any]) -> None:
    """An xdist worker loads the dataset from its own installation (on another machine, perhaps another
    version): it must be the controller's, problem for problem, or its verdicts would be of other tasks.
    The controller ends the run on this error (:meth:`Controller.pytest_testnodedown`)."""
    theirs = workerinput.get("humaneval_dataset")
    if theirs is None or theirs["digest"] == dataset.digest:
        return
    raise pytest.UsageError(
        f"xdist worker {workerinput.get('workerid', '?')} {DATASET_MISMATCH}: the controller's is "
        f"{theirs['name']} sha {theirs['digest']} (pytest-humaneval {theirs['plugin_version']}), the "
        f"worker's {dataset.name} sha {dataset.digest} (pytest-humaneval {__version__}, {dataset.path}); "
        "install the same pytest-humaneval (and dataset) on every worker host"
    )


class ActiveRun:
    """Hooks of every pytest process of the run (the xdist controller and each worker)."""

    def __init__(self, settings: Settings, dataset: Dataset) -> None:
        self.settings = settings
        self.dataset = dataset

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """With no paths on the command line, the repo's own tests stay out."""
        return True if config.args_source != pytest.Config.ArgsSource.ARGS else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        try:
            samples = count_samples(config, self.settings, self.dataset)
        except HumanEvalError as e:
            raise pytest.UsageError(str(e)) from None
        collector = HumanEvalCollector.from_parent(
            session,
            name=self.dataset.name,
            nodeid=self.dataset.name,
            dataset=self.dataset,
            samples=samples,
            modes=self.settings.modes,
        )
        report = session.ihook.pytest_make_collect_report(collector=collector)
        session.ihook.pytest_collectreport(report=report)
        items.extend(x for x in report.result if isinstance(x, pytest.Item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        harness_failed = call.when == "setup" and report.failed
        if harness_failed and isinstance(item, HumanEvalItem) and item.result is None:
            # Interrupted before its verdict (pytest-timeout, a plugin's error): the row stays, left out of
            # pass@k as the harness's failure, saying what stopped it.
            item.result = interrupted(item, report)
        if (
            isinstance(item, HumanEvalItem)
            and (call.when == "call" or harness_failed)
            and item.result is not None
        ):
            data = item.result.to_dict()
            # Reports stay small across xdist: the controller reads completions from the completions file
            # (for the judge too), and failures carry their output in a report section; a passing
            # program's output travels here, and only when it printed something.
            del data["completion"]
            if not item.result.passed or not item.result.output:
                del data["stdout"], data["stderr"]
            report.humaneval = data  # type: ignore[attr-defined]  # travels to the xdist controller
            add_pytest_html_extras(item, report, item.result)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        index_teardown_reports(session.config.pluginmanager.get_plugin("terminalreporter"))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        evaluator = config.stash.get(EVALUATOR_KEY, None)
        if evaluator is not None:
            evaluator.close()


def interrupted(item: HumanEvalItem, report: pytest.TestReport) -> Result:
    crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
    lines = [line for line in report.longreprtext.splitlines() if line.strip()]
    why = crash if isinstance(crash, str) and crash else (lines[-1] if lines else "interrupted")
    result = Result(item.problem.task_id, item.sample, "sandbox_error", f"no verdict: {why.strip()[:300]}")
    result.mode = item.mode
    return result


def _is_xdist_controller(config: pytest.Config) -> bool:
    """True in an xdist controller, which runs no tests itself: ``-n N``, or ``--tx`` gateways (remote
    hosts) with ``-d``/``--dist`` (xdist's own test; ``-n N`` sets both)."""
    return getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "tx", None))


def index_teardown_reports(reporter: Any) -> None:
    """Give pytest's terminal summary an index for its teardown-report lookup.

    For each failure (and each pass under ``-rA``) ``TerminalReporter._get_teardown_reports`` scans every
    report of the run: quadratic. With 7,410 failures of 16,400 programs (164 problems x 100 samples, for
    pass@100; ``-n 2``) the summary took 131 s of a 184 s run; with this index, 1.5 s. xdist workers
    write the same summary (to /dev/null) before they exit, and the run waits for them.

    The method is private and has changed: up to pytest 9.1 it takes a ``nodeid`` string and matches
    ``report.nodeid``; from 9.2 a structured ``NodeId`` matched against ``report.id``. The index keys
    reports by whichever of the two the argument is, and its first non-empty answer is checked against
    pytest's own scan: on any difference (or a method of another shape) it steps aside for good and
    pytest's method answers as before.
    """
    original = getattr(reporter, "_get_teardown_reports", None) if reporter is not None else None
    if not callable(original) or not _takes_one_argument(original):
        return
    own = vars(reporter).get("_get_teardown_reports")  # set on the instance, not pytest's class method
    built: dict[str, Any] = {"key": None, "index": {}, "verified": False}

    def teardown_reports(node_id: Any) -> list[Any]:
        if not built["verified"]:
            expected: list[Any] = original(node_id)  # pytest's own scan (the reporter is untyped)
            found = _indexed(node_id)
            if found != expected:  # not the lookup we index: leave pytest's method alone from now on
                if own is None:
                    del reporter._get_teardown_reports
                else:
                    reporter._get_teardown_reports = own
                return expected
            built["verified"] = bool(expected)
            return found
        return _indexed(node_id)

    def _indexed(node_id: Any) -> list[Any]:
        by_string = isinstance(node_id, str)
        reports = reporter.stats.get("", [])
        key = (id(reports), len(reports), by_string)
        if built["key"] != key:
            index: dict[Any, list[Any]] = defaultdict(list)
            for report in reporter.getreports(""):
                if report.when == "teardown":
                    index[report.nodeid if by_string else getattr(report, "id", None)].append(report)
            built.update(key=key, index=index)
        try:
            return list(built["index"].get(node_id, ()))
        except TypeError:  # an unhashable id: no index for it
            scanned: list[Any] = original(node_id)
            return scanned

    reporter._get_teardown_reports = teardown_reports


def _takes_one_argument(method: Any) -> bool:
    """Does the bound method take exactly one positional argument, as the one we index does?"""
    import inspect

    try:
        params = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return False
    return len(params) == 1 and params[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


def _show_completions_in_junit(config: pytest.Config) -> None:
    """Put each program's completion and output in JUnit ``system-out`` unless the user chose otherwise."""
    xml = junit_xml(config)
    if xml is not None and getattr(xml, "logging", None) == "no":
        xml.logging = "system-out"
