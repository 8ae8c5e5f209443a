"""Controller side: runs once per session, on the xdist controller or the single pytest process.

It decides where completions come from (before any worker starts), hands that to the workers,
gathers verdicts from test reports, and writes the terminal summary, the JSON report, the JUnit
suite property and the exit status.
"""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .completions import coverage, coverage_line, samples_per_problem, samples_to_rows, tasks_left_out
from .datasets.dataset import Dataset
from .errors import HumanEvalError
from .files import write_json
from .fixtures import WORKERINPUT, endpoint_for_workers
from .options import Settings
from .reporting.html.programs import Key, Program, ProgramOutputs, add_generation_fields, load_programs
from .reporting.provenance import build_provenance, header_lines
from .reporting.report import (
    build_report,
    compare_to_baseline,
    format_summary,
    junit_properties,
    markdown_summary,
    read_baseline,
)
from .reporting.schema import Coverage, Judge, Report
from .run_state import (
    COMPLETIONS_KEY,
    EVALUATOR_KEY,
    MODES_KEY,
    RUN_ID_KEY,
    TIME_LIMITS_KEY,
    run_sandbox,
    samples_from,
)
from .sandbox import Isolation, Sandbox, describe_isolation
from .time_limits import TimeLimits, cache_path, time_limits
from .verdict import Result

#: In the error of an xdist worker whose dataset is not the controller's (``activation.check_same_dataset``).
DATASET_MISMATCH = "has another dataset than the controller"


def count_samples(config: pytest.Config, settings: Settings, dataset: Dataset) -> int:
    """n per problem, known before collection (collection never waits for generation). An xdist worker
    has the controller's count: it reads no completions file."""
    given = getattr(config, "workerinput", {}).get("humaneval_samples")
    if given:
        return int(given)
    if settings.samples:
        return settings.samples
    if settings.completions and settings.completions != "canonical":
        return samples_per_problem(samples_from(config, settings.completions, dataset))
    return 1


class Controller:
    def __init__(self, config: pytest.Config, settings: Settings, dataset: Dataset) -> None:
        self.config = config
        self.settings = settings
        self.dataset = dataset
        self.results: list[Result] = []
        self.other_failures = 0
        self.started = time.monotonic()
        self.model = "canonical" if settings.completions == "canonical" else "?"
        self.isolation: Isolation = {}
        self.report: Report | None = None
        self.baseline: Report | None = None
        self.coverage: Coverage | None = None  # a completions file that leaves tasks out
        self.generation: dict[str, Any] | None = None
        self.outputs = ProgramOutputs()  # for the HTML report
        self.html_written: tuple[bool, str] | None = None
        #: Per mode ("" with one mode): what generation recorded (--think=both has two).
        self.generations: dict[str, dict[str, Any]] = {}
        self._worker_input: dict[str, Any] | None = None

    # -- before any worker exists ------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        try:
            if self.settings.baseline is not None:
                self.baseline = read_baseline(self.settings.baseline, self.dataset.digest)
            self.config.stash[COMPLETIONS_KEY] = self.obtain_completions()
            # Known before any item runs (for the header) and fails early: no Docker daemon, an image
            # without python3, a runner that cannot start.
            self.isolation = probe_isolation(self.config, self.settings, self.dataset)
            if self.settings.judge_endpoint:  # an unreachable judge fails now, not after every item ran
                from .analysis.judge import check_judge

                check_judge(judge_config(self.settings))
            self.config.stash[TIME_LIMITS_KEY] = self.time_limits()
        except HumanEvalError as e:
            raise pytest.UsageError(str(e)) from None

    def obtain_completions(self) -> str:
        """Return 'canonical' or the path of a completions file the workers will read."""
        source = self.settings.completions
        if source and self.settings.think_both:
            raise HumanEvalError(
                "--think=both generates both modes: it cannot be used with --humaneval-completions "
                "(evaluate each mode's completions file in its own run)"
            )
        if source == "canonical":
            samples_from(self.config, source, self.dataset)  # a problem without one: one message, now
            return source
        if source:
            samples = samples_from(self.config, source, self.dataset)  # every error surfaces now
            self.model = Path(source).name
            skipped = tasks_left_out(Path(source), self.dataset)
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if skipped and reporter is not None:
                reporter.write_line(
                    f"humaneval: {skipped} tasks of {self.model} outside the debug subset left out"
                )
            self.coverage = coverage(samples, self.dataset)
            if self.coverage and reporter is not None:
                reporter.write_line(
                    "humaneval: " + coverage_line(self.coverage, self.model), yellow=True, bold=True
                )
            return source
        from .generation import GENERATION_KEY, generate_completions

        per_problem = count_samples(self.config, self.settings, self.dataset)
        paths: dict[str, str] = {}
        for mode in self.settings.modes:  # --think=both: each mode generated (and cached) as one run is
            settings = self.settings
            if mode is not None:
                settings = dataclasses.replace(settings, think=mode == "think", think_both=False)
            paths[mode or ""] = str(generate_completions(self.config, settings, self.dataset, per_problem))
            self.generations[mode or ""] = self.config.stash[GENERATION_KEY]
        self.generation = next(iter(self.generations.values()))
        self.model = self.generation["model"]
        if self.settings.think_both:
            self.config.stash[MODES_KEY] = paths
        return next(iter(paths.values()))

    def time_limits(self) -> TimeLimits:
        """Each problem's limit, known before any worker starts (measuring reference solutions if needed)."""
        s = self.settings
        workers = _workers(self.config)
        evaluator = self.config.stash.get(EVALUATOR_KEY, None)
        temporary: list[Sandbox] = []

        def sandbox() -> Sandbox:
            if evaluator is not None:
                return evaluator.sandbox
            run_id, concurrency = self.config.stash[RUN_ID_KEY], s.parallel_per_process(workers)
            temporary.append(run_sandbox(s, self.dataset, run_id, concurrency))
            temporary[-1].start()
            return temporary[-1]

        try:
            return time_limits(
                self.dataset,
                s.fixed_timeout(),
                # Where the sandbox gives a program back its wait for a CPU, limits are the same however
                # many programs run at once; elsewhere they grow with the programs in flight.
                1.0 if self.isolation.get("fair_deadline") else s.time_scale(workers),
                cache_file=cache_path(s.output, self.dataset, s.sandbox),
                sandbox=sandbox,
            )
        finally:
            for box in temporary:
                box.close()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput.update(self.worker_input())

    def worker_input(self) -> dict[str, Any]:
        """What every xdist worker needs, as plain data (execnet carries it; a worker may be another
        machine): the completions themselves, not their file's path, the sample count, the time limits,
        the run id, and the dataset's digest, which the worker checks against the dataset it loads
        itself. Made once: a worker xdist restarts gets the same."""
        if self._worker_input is None:
            source = self.config.stash[COMPLETIONS_KEY]
            modes = self.config.stash.get(MODES_KEY, {})
            sources = sorted({source, *modes.values()} - {"canonical"})  # canonical: the worker's dataset
            self._worker_input = {
                "humaneval_completions": source,  # a name the rows below are filed under
                "humaneval_completion_rows": {
                    s: samples_to_rows(samples_from(self.config, s, self.dataset)) for s in sources
                },
                "humaneval_samples": count_samples(self.config, self.settings, self.dataset),
                "humaneval_modes": modes,
                "humaneval_time_limits": self.config.stash[TIME_LIMITS_KEY].as_dict(),
                "humaneval_run_id": self.config.stash[RUN_ID_KEY],
                "humaneval_dataset": {
                    "name": self.dataset.name,
                    "digest": self.dataset.digest,
                    "plugin_version": __version__,
                },
                WORKERINPUT: endpoint_for_workers(self.config),
            }
        return self._worker_input

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker that refused the run (its dataset is not the controller's) ends it with that one message:
        xdist would otherwise start another worker in its place, and another."""
        for line in str(error or "").splitlines():
            if DATASET_MISMATCH in line:
                pytest.exit(line.partition("UsageError: ")[2] or line, returncode=pytest.ExitCode.USAGE_ERROR)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Stop the model server on every way out: normal end, errors and Ctrl-C."""
        if self.settings.completions is None:
            from .generation import stop_server

            stop_server(config, self.settings)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.settings
        limits = config.stash[TIME_LIMITS_KEY]
        lines = [
            f"humaneval: dataset {self.dataset.name} ({len(self.dataset)} problems, "
            f"sha {self.dataset.digest}), completions {s.completions or 'generated'}, "
            f"timeout {limits.describe()}"
        ]
        summary, _ = describe_isolation(s.sandbox, self.isolation)
        lines.append("humaneval: " + summary)
        if len(self.generations) > 1:  # --think=both: the model and sampling of each mode
            generated = [header_lines(g) for g in self.generations.values()]
            return lines + generated[0] + [line for g in generated[1:] for line in g[1:]]
        return lines + header_lines(self.generation)

    # -- while items run ------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "humaneval", None)
        if data is not None:
            result = Result.from_dict(data)
            self.results.append(result)
            self.outputs.collect(report, result)
        elif report.failed:
            self.other_failures += 1

    # -- at the end -------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.settings.sandbox == "docker":  # also what a crashed xdist worker left behind
            from .sandbox.docker_sandbox import remove_containers

            remove_containers(self.config.stash[RUN_ID_KEY])
        if not self.results:
            return
        # The completions file(s) are read here once: the judge's questions, generation fields, token
        # counts and the HTML page.
        source = self.config.stash[COMPLETIONS_KEY]
        programs, missing = load_programs(source, self.dataset, self.config.stash.get(MODES_KEY, None))
        judge = self.run_judge(programs)
        summary, _ = describe_isolation(self.settings.sandbox, self.isolation)
        limits = self.config.stash[TIME_LIMITS_KEY]
        self.report = build_report(
            self.results,
            self.dataset,
            limits,
            model=self.model,
            sandbox=summary,
            wall_s=time.monotonic() - self.started,
            efficiency=self.settings.efficiency,
            mode_generation=self.mode_generation(programs),
            completions=self.settings.completions or "generated",
            generation=self.generation,
            judge=judge,
            coverage=self.coverage,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            provenance=build_provenance(
                self.settings, self.dataset, self.generation, timeout_s=limits.range[1], isolation=summary
            ),
        )
        if self.baseline is not None:
            self.report["baseline"] = compare_to_baseline(self.report, self.baseline)
        add_generation_fields(self.report, programs)
        write_json(self.settings.report_path, self.report)
        xml = junit_xml(self.config)
        if xml is not None:
            for name, value in junit_properties(self.report):
                xml.add_global_property(name, value)
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            with open(step_summary, "a", encoding="utf-8") as fh:
                fh.write(markdown_summary(self.report))
        self.config.hook.pytest_humaneval_report(config=self.config, report=self.report)
        gates = self.gates()
        from .reporting.html.page import write_html_report

        self.html_written = write_html_report(
            self.settings.html_path, self.report, self.dataset, programs, self.outputs, gates, missing, source
        )
        if gates and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            ok = all(passed for _, passed in gates) and self.other_failures == 0
            session.exitstatus = pytest.ExitCode.OK if ok else pytest.ExitCode.TESTS_FAILED

    def mode_generation(self, programs: dict[Key, Program]) -> dict[str, dict[str, Any]] | None:
        """``--think=both``: per mode, the completion tokens of each answer (those the server counted, from
        the ``programs`` of the completions files) and the generation time."""
        if not self.settings.think_both:
            return None
        return {
            mode: {
                "tokens": [
                    p.completion_tokens
                    for (_, _, of), p in programs.items()
                    if of == mode and p.completion_tokens is not None
                ],
                "generation_wall_s": meta.get("generation_wall_s"),
                "sampling": meta.get("sampling"),
            }
            for mode, meta in self.generations.items()
        }

    def run_judge(self, programs: dict[Key, Program]) -> Judge | None:
        """``--humaneval-judge-endpoint``: the judge's answers for the diagnosed failures (cached; an
        unusable answer is recorded on its failure), and what the report says about the judge. Reports
        carry no completion: each failure's comes from the completions file (``programs``); one no
        longer there is not judged."""
        if not self.settings.judge_endpoint:
            return None
        from .analysis.judge import judge_failures

        known = []
        for r in self.results:
            program = programs.get((r.task_id, r.sample, r.mode)) if r.diagnosis is not None else None
            if program is not None:
                r.completion = program.completion
                known.append(r)
        return judge_failures(judge_config(self.settings), self.dataset.problems, known)

    def gates(self) -> list[tuple[str, bool]]:
        """The CI gates set for this run and whether each holds. With any gate set, they decide the exit
        status instead of the individual failing problems."""
        assert self.report is not None
        gates = []
        if self.settings.min_pass is not None:
            pass1 = self.report["pass_at_k"].get("1", 0.0)
            gates.append(
                (
                    f"--humaneval-min-pass={self.settings.min_pass:g}: pass@1 {pass1:.4f}",
                    pass1 >= self.settings.min_pass,
                )
            )
        cov = self.report.get("coverage")
        if gates and cov:  # a gate on a file that skipped tasks would pass on the tasks it chose
            gates.append((f"every task attempted: {cov['attempted']}/{cov['tasks']}", False))
        if "baseline" in self.report:
            failing = len(self.report["baseline"]["newly_failing"])
            tolerance = self.settings.baseline_tolerance
            gates.append(
                (
                    f"--humaneval-baseline: {failing} newly failing, tolerance {tolerance}",
                    failing <= tolerance,
                )
            )
        return gates

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is None:
            return
        tr = terminalreporter
        tr.section("humaneval")
        for line in format_summary(self.report):
            tr.write_line(line)
        tr.write_line(f"wall {self.report['wall_s']:.1f} s; report: {self.settings.report_path}")
        if self.html_written is not None:
            written, line = self.html_written
            tr.write_line(line, red=not written, bold=not written)
        summary, missing = describe_isolation(self.settings.sandbox, self.isolation)
        if missing:  # also here, not only in the header, which -q does not print
            tr.write_line("humaneval: " + summary, yellow=True, bold=True)
        for text, passed in self.gates():
            verdict = "PASSED" if passed else "FAILED"
            tr.write_line(f"gate {text} -> {verdict}", green=passed, red=not passed, bold=True)


def judge_config(settings: Settings) -> Any:
    from .analysis.judge import judge_config

    assert settings.judge_endpoint and settings.judge_model
    return judge_config(
        settings.judge_endpoint,
        settings.judge_model,
        settings.judge_api_key,
        settings.output,
        settings.judge_max_tokens,
    )


def probe_isolation(config: pytest.Config, settings: Settings, dataset: Dataset) -> Isolation:
    """What isolation the sandbox gets on this machine, known before any item runs."""
    evaluator = config.stash.get(EVALUATOR_KEY, None)
    if evaluator is not None:  # single process: start the sandbox it will use anyway
        return evaluator.sandbox.start()
    concurrency = settings.parallel_per_process(_workers(config))
    # the probe runs no program: nothing to preload
    sandbox = run_sandbox(settings, dataset, config.stash[RUN_ID_KEY], concurrency, preload=False)
    try:
        return sandbox.start()
    finally:
        sandbox.close()


def _workers(config: pytest.Config) -> int:
    n = getattr(config.option, "numprocesses", None)
    if isinstance(n, int) and n > 0:
        return n
    if getattr(config.option, "dist", "no") == "no":
        return 1
    # --tx gateways (``-d --tx 2*popen --tx socket=HOST:PORT``): one worker each, N for ``N*``
    counts = [spec.partition("*") for spec in getattr(config.option, "tx", None) or ()]
    return max(1, sum(int(k) if sep and k.isdigit() else 1 for k, sep, _ in counts))


def junit_xml(config: pytest.Config) -> Any:
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - pytest internals moved
        return None
    return config.stash.get(xml_key, None)
