"""What the SGLang server is started with: ``-m sglang.launch_server`` arguments and environment.

One job, the same for a container and a local process: the plugin's own arguments (model, port,
parallelism, reasoning parser), the user's ``--humaneval-server-args`` and ``--humaneval-server-env``,
and, for a CPU server (``--humaneval-gpus=none``), SGLang's CPU engine with a KV cache sized to the
memory the server may use. SGLang sizes that cache from free memory otherwise: on a 24 GB machine it
reserved 15 GB for a tiny model.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..options import Settings

GIB = 1024**3
#: SGLang's own processes (tokenizer, scheduler, detokenizer) before any weights or KV cache: measured
#: ~1.9 GB with a tiny model on the CPU engine.
CPU_RUNTIME_BYTES = int(2.5 * GIB)
#: The share of what is left after the runtime and the weights that the KV cache may take.
CPU_KV_SHARE = 0.5
#: KV-cache bytes per token when the model's config.json is not at hand (a ~1B model in bfloat16).
FALLBACK_KV_BYTES_PER_TOKEN = 128 * 1024
#: --max-total-tokens bounds for a CPU server: at least a few answers' worth, at most a few contexts.
MIN_CPU_TOKENS = 4096
MAX_CPU_CONTEXTS = 4
FALLBACK_CONTEXT = 40960
DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2}
CPU_ENGINE_ENV = {"SGLANG_USE_CPU_ENGINE": "1"}
#: Flags by which the user already sized the CPU server's memory (then the plugin adds no --max-total-tokens).
MEMORY_FLAGS = ("--max-total-tokens", "--mem-fraction-static")


@dataclass(frozen=True)
class Launch:
    """``args`` follow ``python``; ``env`` is what the plugin adds to the server's environment."""

    args: list[str]
    env: dict[str, str]
    reasoning_parser: str | None
    #: Arguments the plugin chose from this machine's state (the CPU server's memory): not part of the
    #: configuration a kept server is matched on, which must not change with the free memory.
    sized: list[str] = field(default_factory=list)

    @property
    def stable_args(self) -> list[str]:
        """``args`` without ``sized``: what a kept server is matched on."""
        return self.args[: len(self.args) - len(self.sized)] if self.sized else list(self.args)


def plan_launch(
    settings: Settings,
    model_arg: str,
    host: str,
    port: int,
    memory: Callable[[], int | None] | None = None,
) -> Launch:
    """The launch of ``settings``' server, serving ``model_arg`` (a path as the server sees it, or a name).

    ``memory``: bytes the server may use, asked only to size a CPU server's KV cache (default: what
    this machine has free, see :func:`available_memory`).
    """
    parser = reasoning_parser(settings)
    args = [
        *("-m", "sglang.launch_server"),
        *("--model-path", model_arg),
        *("--host", host),
        *("--port", str(port)),
        *("--tp-size", str(settings.tp)),
    ]
    if settings.dp > 1:
        args += ["--dp-size", str(settings.dp)]
    if parser is not None:
        args += ["--reasoning-parser", parser]
    args += ["--served-model-name", settings.model]
    user = settings.server_argv
    args += user
    env: dict[str, str] = {}
    sized: list[str] = []
    if cpu_server(settings):
        env.update(CPU_ENGINE_ENV)
        env["OMP_NUM_THREADS"] = str(generation_threads())
        if not _has_flag(user, "--sleep-on-idle"):
            args.append("--sleep-on-idle")  # idle, the scheduler would busy-poll a core
        if not any(_has_flag(user, flag) for flag in MEMORY_FLAGS):
            budget = (memory or available_memory)()
            sized = ["--max-total-tokens", str(cpu_kv_tokens(settings.model_path, budget))]
            args += sized
    env.update(settings.server_environment)  # the user's word last: it may even turn the CPU engine off
    return Launch(args=args, env=env, reasoning_parser=parser, sized=sized)


def cpu_server(settings: Settings) -> bool:
    return settings.gpus.strip().lower() == "none"


def _has_flag(argv: list[str], flag: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv)


# -- the reasoning parser ------------------------------------------------------------------------------


def reasoning_parser(settings: Settings) -> str | None:
    """SGLang's ``--reasoning-parser`` for this run: the option's name, or for ``auto`` the model's."""
    choice = settings.reasoning_parser.strip()
    if choice.lower() == "none":
        return None
    if choice.lower() != "auto":
        return choice
    return detect_reasoning_parser(settings.model, settings.model_path)


def detect_reasoning_parser(model: str, model_path: Path | None = None) -> str | None:
    """qwen3 for Qwen3 (and QwQ), deepseek-r1 for DeepSeek-R1 and its distills, None for a model that
    does not think (Qwen3's Instruct releases, all others): from the names and the model's config.json."""
    names = [model.lower()]
    if model_path is not None:
        names.append(model_path.name.lower())
    config = read_model_config(model_path)
    model_type = str(config.get("model_type") or "").lower()
    architectures = " ".join(str(a) for a in config.get("architectures") or []).lower()
    name = " ".join(names)
    if "deepseek-r1" in name or "r1-distill" in name:
        return "deepseek-r1"
    qwen3 = model_type.startswith("qwen3") or "qwen3" in architectures or "qwen3" in name
    if qwen3 and "instruct" in name:
        return None  # Qwen3-*-Instruct-2507, Qwen3-Coder-*-Instruct: no thinking
    if qwen3 or "qwq" in name:
        return "qwen3"
    return None


def read_model_config(model_path: Path | None) -> dict[str, Any]:
    """The model's config.json (``{}`` when there is no local model directory or it is unreadable)."""
    if model_path is None:
        return {}
    try:
        config = json.loads((model_path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(config, dict):
        return {}
    text = config.get("text_config")  # multimodal checkpoints nest the language model's config
    return {**config, **text} if isinstance(text, dict) else config


# -- a CPU server's memory -------------------------------------------------------------------------------


def cpu_kv_tokens(model_path: Path | None, memory: int | None) -> int:
    """--max-total-tokens for a CPU server: half of what ``memory`` leaves after SGLang's processes and
    the weights, in the model's KV bytes per token; between MIN_CPU_TOKENS and MAX_CPU_CONTEXTS contexts."""
    config = read_model_config(model_path)
    context = int(config.get("max_position_embeddings") or FALLBACK_CONTEXT)
    most = max(MIN_CPU_TOKENS, MAX_CPU_CONTEXTS * context)
    if memory is None:
        return MIN_CPU_TOKENS * 4
    per_token = kv_bytes_per_token(config) or FALLBACK_KV_BYTES_PER_TOKEN
    spare = memory - CPU_RUNTIME_BYTES - weights_bytes(model_path)
    tokens = int(spare * CPU_KV_SHARE) // per_token
    return max(MIN_CPU_TOKENS, min(most, tokens // 1024 * 1024))


def kv_bytes_per_token(config: dict[str, Any]) -> int | None:
    """Keys and values of every layer for one token, in the model's dtype (None if config.json lacks it)."""
    try:
        layers = int(config["num_hidden_layers"])
        heads = int(config["num_attention_heads"])
        kv_heads = int(config.get("num_key_value_heads") or heads)
        head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "bfloat16").lower()
    return 2 * layers * kv_heads * head_dim * DTYPE_BYTES.get(dtype, 2)


def weights_bytes(model_path: Path | None) -> int:
    """Size of the weight files in a local model directory (0 when the weights come from the hub)."""
    if model_path is None:
        return 0
    total = 0
    for pattern in ("*.safetensors", "*.bin", "*.pt"):
        for path in model_path.glob(pattern):
            try:
                total += path.stat().st_size
            except OSError:
                pass
    return total


_READ = "read"


def usable_cores(affinity: int | None = None, cpu_max: str | None = _READ) -> int:
    """Cores this process may use: its CPU affinity, capped by its cgroup's CPU quota (a container's
    ``--cpus``; ``cpu_max`` as cgroup v2 writes it, "QUOTA PERIOD" or "max PERIOD"; None: no quota)."""
    if affinity is None:
        try:
            affinity = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            affinity = os.cpu_count() or 1
    if cpu_max == _READ:
        cpu_max = _cgroup_cpu_max()
    cores = affinity
    quota, _, period = (cpu_max or "").partition(" ")
    if quota.isdigit() and period.strip().isdigit() and int(period) > 0:
        cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    return max(1, cores)


def generation_threads(cores: int | None = None) -> int:
    """torch's threads for generating on the CPU: a core left to the rest (SGLang's scheduler, tokenizer and
    detokenizer, or this process's event loop). On 2 cores torch's default of 2 made each decode step 7-10x
    slower than 1 thread (3.5 s against 0.34 s)."""
    return max(1, (usable_cores() if cores is None else cores) - 1)


def _cgroup_cpu_max() -> str | None:
    """This process's cgroup CPU quota as "QUOTA PERIOD" (v2's cpu.max; v1's cfs files), None if unknown."""
    for version, base in _own_cgroups("cpu"):
        try:
            if version == 2:
                return (base / "cpu.max").read_text().strip()
            quota = (base / "cpu.cfs_quota_us").read_text().strip()
            period = (base / "cpu.cfs_period_us").read_text().strip()
            return f"{'max' if quota.startswith('-') else quota} {period}"
        except OSError:
            continue
    return None


def _own_cgroups(controller: str) -> Iterator[tuple[int, Path]]:
    """This process's cgroup directories that hold ``controller``'s files: (2, the unified one) and
    (1, the v1 hierarchy's), as /proc/self/cgroup lists them."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            yield 2, Path("/sys/fs/cgroup") / path.lstrip("/")
        elif controller in controllers.split(","):
            yield 1, Path("/sys/fs/cgroup") / controllers / path.lstrip("/")


def available_memory() -> int | None:
    """Bytes a new process on this machine may still use: free memory (MemAvailable), or less where this
    process's cgroup (a container's limit) allows less. None where neither can be read."""
    free = _meminfo_available()
    limit = _cgroup_headroom()
    known = [value for value in (free, limit) if value is not None]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, else v1); None when unlimited or unknown."""
    for version, base in _own_cgroups("memory"):
        files = (
            ("memory.max", "memory.current")
            if version == 2
            else ("memory.limit_in_bytes", "memory.usage_in_bytes")
        )
        try:
            limit_text = (base / files[0]).read_text().strip()
            usage = int((base / files[1]).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= 1 << 60:
            return None
        return max(0, int(limit_text) - usage)
    return None


def docker_host_memory(info: dict[str, Any], local: bool) -> int | None:
    """Memory a CPU container may use: this machine's (a local daemon), else half the daemon host's."""
    if local:
        return available_memory()
    total = info.get("MemTotal")
    return int(total) // 2 if isinstance(total, int) and total > 0 else None
