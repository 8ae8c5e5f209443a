"""Every option of the plugin, once: command-line flag, ``humaneval_*`` ini key, type and help.

The command line wins over the ini file, which wins over the default. ``Settings`` is what the
rest of the package reads, so no other module touches ``config.getoption``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .errors import HumanEvalError


@dataclass(frozen=True)
class Option:
    name: str  # settings attribute; flag is --humaneval-<name with dashes>, ini key humaneval_<name>
    help: str
    default: Any = None
    kind: str = "str"  # str | int | float | bool | path
    choices: tuple[str, ...] | None = None
    flag: str | None = None  # override the flag name

    @property
    def cli(self) -> str:
        return self.flag or "--humaneval-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "humaneval_" + self.name


OPTIONS: list[Option] = [
    # --- what to evaluate
    Option(
        "dataset",
        "humaneval, humaneval-plus, or the path of a JSONL(.gz) file in HumanEval's schema",
        "humaneval",
    ),
    Option(
        "completions",
        "evaluate this completions file (task_id + completion per line) instead of "
        "generating; 'canonical' evaluates the dataset's reference solutions (self-check)",
    ),
    Option(
        "samples",
        "samples per problem (pass@k needs n >= k); a completions file sets it by default",
        None,
        "int",
    ),
    # --- sandbox
    Option(
        "sandbox",
        "where programs run: subprocess (pre-forked runner in namespaces) or docker "
        "(warm hardened containers)",
        "subprocess",
        choices=("subprocess", "docker"),
    ),
    Option(
        "sandbox_image",
        "image for --humaneval-sandbox=docker (any image with python3); built from "
        "the bundled Dockerfile when missing",
        "pytest-humaneval-sandbox:latest",
    ),
    Option(
        "timeout",
        "seconds per program, or 'auto' (3 s for HumanEval, 20 s for HumanEval+, scaled up "
        "when xdist workers outnumber CPU cores)",
        "auto",
    ),
    Option("memory", "address-space limit per program in MB", 2048, "int"),
    # --- report
    Option("output", "directory for the report and the completion cache", ".humaneval", "path"),
    Option("report", "path of the JSON report (default: OUTPUT/report.json)", None, "path"),
    Option("min_pass", "exit 0 if and only if pass@1 >= this fraction (the CI gate)", None, "float"),
]


@dataclass
class Settings:
    """Resolved options (see ``OPTIONS`` for their meaning)."""

    enabled: bool
    debug: bool
    rootdir: Path
    dataset: str
    completions: str | None
    samples: int | None
    sandbox: str
    sandbox_image: str
    timeout: str
    memory: int
    output: Path
    report: Path | None
    min_pass: float | None

    @property
    def report_path(self) -> Path:
        return self.report or self.output / "report.json"

    def program_timeout(self, dataset_name: str, workers: int) -> float:
        """Seconds per program: explicit, or scaled to the dataset and the machine."""
        if self.timeout != "auto":
            return float(self.timeout)
        base = 20.0 if "plus" in dataset_name.lower() else 3.0
        cores = os.cpu_count() or 1
        return base * max(1.0, workers / cores)


CONVERT: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float, "path": Path}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("humaneval", "HumanEval benchmark (pytest-humaneval)")
    group.addoption(
        "--humaneval",
        action="store_true",
        default=False,
        help="collect every problem of the dataset as a test and report pass@k",
    )
    group.addoption(
        "--humaneval-debug",
        action="store_true",
        default=False,
        help="the same on the bundled 4-problem subset (HumanEval/0..3): seconds, for a smoke test",
    )
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": "humaneval_" + opt.name, "default": None, "help": opt.help}
        if opt.kind == "bool":
            kwargs["action"] = "store_true"
        if opt.choices:
            kwargs["choices"] = opt.choices
        group.addoption(opt.cli, **kwargs)
        parser.addini(opt.ini, opt.help, type="bool" if opt.kind == "bool" else "string", default=None)


def _value(config: pytest.Config, opt: Option) -> Any:
    raw = config.getoption("humaneval_" + opt.name)
    if raw is None:
        raw = config.getini(opt.ini)
        if raw in (None, "", []):
            raw = None
    if raw is None:
        raw = opt.default
        if raw is None:
            return None
    if opt.kind == "bool":
        return bool(raw)
    if opt.choices and raw not in opt.choices:
        raise HumanEvalError(f"{opt.ini} = {raw!r}: choose one of {', '.join(opt.choices)}")
    try:
        return CONVERT[opt.kind](raw)
    except ValueError:
        raise HumanEvalError(f"{opt.cli}={raw!r}: expected {opt.kind}") from None


def read_settings(config: pytest.Config) -> Settings:
    values = {opt.name: _value(config, opt) for opt in OPTIONS}
    debug = bool(config.getoption("humaneval_debug"))
    if debug and values["dataset"] == "humaneval":
        values["dataset"] = "humaneval-4"
    rootdir = Path(config.rootpath)
    for key in ("output", "report"):
        if values[key] is not None and not values[key].is_absolute():
            values[key] = rootdir / values[key]
    if values["timeout"] != "auto":
        try:
            if float(values["timeout"]) <= 0:
                raise ValueError
        except ValueError:
            raise HumanEvalError(
                f"--humaneval-timeout={values['timeout']!r}: give seconds > 0 or 'auto'"
            ) from None
    if values["min_pass"] is not None and not 0.0 <= values["min_pass"] <= 1.0:
        raise HumanEvalError(f"--humaneval-min-pass={values['min_pass']}: give a fraction between 0 and 1")
    if values["samples"] is not None and values["samples"] < 1:
        raise HumanEvalError("--humaneval-samples must be at least 1")
    return Settings(
        enabled=bool(config.getoption("humaneval")) or debug, debug=debug, rootdir=rootdir, **values
    )
