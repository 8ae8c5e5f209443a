"""What the SGLang server is launched with (no server runs here): the launch options, the reasoning parser
picked from the model, and a CPU server's engine and memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from server_support import default_settings

from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.generation import launch
from pytest_humaneval.generation.launch import (
    cpu_kv_tokens,
    detect_reasoning_parser,
    generation_threads,
    plan_launch,
    usable_cores,
)
from pytest_humaneval.generation.server_lifecycle import _parse_gpus
from pytest_humaneval.options import read_settings

GIB = 1024**3


def model_dir(root: Path, name: str, config: dict, weights: int = 0) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    if weights:
        (path / "model.safetensors").write_bytes(b"\0" * weights)
    return path


QWEN3_TINY = {
    "model_type": "qwen3",
    "architectures": ["Qwen3ForCausalLM"],
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "hidden_size": 64,
    "max_position_embeddings": 40960,
    "dtype": "float32",
}


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


# -- the command line ---------------------------------------------------------------------------------


def test_a_gpu_server_gets_the_plugins_arguments_then_the_users(tmp_path: Path) -> None:
    settings = default_settings(
        tmp_path,
        model="Qwen/Qwen3-8B",
        tp=2,
        dp=4,
        server_args="--mem-fraction-static 0.8 --enable-deterministic-inference --chat-template 'a b.jinja'",
        server_env=("NCCL_DEBUG=INFO", "A=1", "A=2"),
    )
    planned = plan_launch(settings, "Qwen/Qwen3-8B", "0.0.0.0", 30000)
    assert planned.args == [
        *("-m", "sglang.launch_server"),
        *("--model-path", "Qwen/Qwen3-8B"),
        *("--host", "0.0.0.0"),
        *("--port", "30000"),
        *("--tp-size", "2"),
        *("--dp-size", "4"),
        *("--reasoning-parser", "qwen3"),
        *("--served-model-name", "Qwen/Qwen3-8B"),
        *("--mem-fraction-static", "0.8", "--enable-deterministic-inference", "--chat-template", "a b.jinja"),
    ]
    assert planned.env == {"NCCL_DEBUG": "INFO", "A": "2"}, "a GPU server gets no CPU engine"
    assert planned.sized == [] and planned.stable_args == planned.args


def test_a_cpu_server_runs_the_cpu_engine_sleeps_when_idle_and_sizes_its_kv_cache(tmp_path: Path) -> None:
    model = model_dir(tmp_path, "tiny", QWEN3_TINY, weights=1000)
    settings = default_settings(tmp_path, model="tiny", model_path=model, gpus="none")
    planned = plan_launch(settings, "/model", "0.0.0.0", 30000, memory=lambda: 8 * GIB)
    assert planned.env == {"SGLANG_USE_CPU_ENGINE": "1", "OMP_NUM_THREADS": str(generation_threads())}
    assert "--sleep-on-idle" in planned.args and "--dp-size" not in planned.args
    assert planned.sized == ["--max-total-tokens", str(4 * 40960)], "capped at four contexts"
    assert planned.args[-2:] == planned.sized and planned.stable_args == planned.args[:-2]
    assert flag(planned.args, "--reasoning-parser") == "qwen3"


def test_a_kept_cpu_server_matches_whatever_the_free_memory_is_now(tmp_path: Path) -> None:
    """The KV size follows the free memory, which changes between runs: it is not what a kept server is
    matched on, or every run would replace the server it could reuse."""
    config = {**QWEN3_TINY, "num_hidden_layers": 28, "num_key_value_heads": 8, "head_dim": 128}
    model = model_dir(tmp_path, "Qwen3-0.6B", {**config, "dtype": "bfloat16"})
    settings = default_settings(tmp_path, model="m", model_path=model, gpus="none")
    roomy = plan_launch(settings, "/model", "0.0.0.0", 30000, memory=lambda: 20 * GIB)
    tight = plan_launch(settings, "/model", "0.0.0.0", 30000, memory=lambda: 6 * GIB)
    assert roomy.sized != tight.sized and roomy.stable_args == tight.stable_args


def test_a_cpu_server_keeps_the_users_memory_and_idle_choices(tmp_path: Path) -> None:
    for given in ("--max-total-tokens 8192", "--max-total-tokens=8192", "--mem-fraction-static 0.3"):
        settings = default_settings(tmp_path, gpus="none", server_args=f"{given} --sleep-on-idle")
        planned = plan_launch(settings, "m", "h", 1, memory=lambda: pytest.fail("memory was asked for"))
        assert planned.sized == [] and planned.args.count("--sleep-on-idle") == 1
        assert "--max-total-tokens" not in planned.args[: planned.args.index("--served-model-name")]
    off = default_settings(tmp_path, gpus="none", server_env=("SGLANG_USE_CPU_ENGINE=0", "OMP_NUM_THREADS=3"))
    env = plan_launch(off, "m", "h", 1, memory=lambda: 8 * GIB).env
    assert env == {"SGLANG_USE_CPU_ENGINE": "0", "OMP_NUM_THREADS": "3"}, "the user's word wins"


@pytest.mark.parametrize(
    ("affinity", "cpu_max", "cores", "threads"),
    [
        (2, "max 100000", 2, 1),  # this machine: torch's default 2 threads was 7-10x slower than 1
        (64, "max 100000", 64, 63),
        (64, "400000 100000", 4, 3),  # a container given --cpus=4 on a 64-core host
        (64, "150000 100000", 2, 1),  # --cpus=1.5: rounded up
        (1, None, 1, 1),
        (8, "garbage", 8, 7),
    ],
)
def test_cpu_generation_threads_follow_the_cores_this_process_may_use(
    affinity: int, cpu_max: str | None, cores: int, threads: int
) -> None:
    assert usable_cores(affinity, cpu_max) == cores
    assert generation_threads(cores) == threads
    assert generation_threads() == max(1, usable_cores() - 1)


def test_cpu_kv_cache_size_follows_the_memory_and_the_model(tmp_path: Path) -> None:
    per_token = 2 * 28 * 8 * 128 * 2  # Qwen3-0.6B in bfloat16: 112 KiB
    config = {**QWEN3_TINY, "num_hidden_layers": 28, "num_key_value_heads": 8, "head_dim": 128}
    config["dtype"] = "bfloat16"
    model = model_dir(tmp_path, "Qwen3-0.6B", config, weights=1000)
    spare = 16 * GIB - launch.CPU_RUNTIME_BYTES - 1000
    expected = int(spare * launch.CPU_KV_SHARE) // per_token // 1024 * 1024
    assert cpu_kv_tokens(model, 16 * GIB) == expected
    assert cpu_kv_tokens(model, 3 * GIB) == launch.MIN_CPU_TOKENS, "never below a few answers' worth"
    assert cpu_kv_tokens(model, 1 << 50) == 4 * 40960
    assert cpu_kv_tokens(None, 16 * GIB) > launch.MIN_CPU_TOKENS, "no config.json: a ~1B model is assumed"


def test_available_memory_is_what_this_machine_has_free() -> None:
    free = launch.available_memory()
    total = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0]) * 1024
    assert free is not None and 0 < free <= total


@pytest.mark.parametrize(
    ("model", "name", "config", "parser"),
    [
        ("Qwen/Qwen3-0.6B", None, None, "qwen3"),
        ("Qwen/QwQ-32B", None, None, "qwen3"),
        ("Qwen/Qwen3-30B-A3B-Instruct-2507", None, None, None),
        ("Qwen/Qwen3-Coder-30B-A3B-Instruct", None, None, None),
        ("deepseek-ai/DeepSeek-R1", None, None, "deepseek-r1"),
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", None, None, "deepseek-r1"),
        ("meta-llama/Llama-3.1-8B-Instruct", None, None, None),
        ("served-name", "tiny", QWEN3_TINY, "qwen3"),  # the name says nothing: config.json does
        ("served-name", "weights", {"model_type": "qwen3_moe"}, "qwen3"),
        ("served-name", "DeepSeek-R1-Distill-Llama-8B", {"model_type": "llama"}, "deepseek-r1"),
        ("served-name", "weights", {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, None),
    ],
)
def test_auto_reasoning_parser_comes_from_the_model(
    tmp_path: Path, model: str, name: str | None, config: dict | None, parser: str | None
) -> None:
    path = model_dir(tmp_path, name, config) if name and config is not None else None  # both or neither
    assert detect_reasoning_parser(model, path) == parser


def test_reasoning_parser_option_names_one_or_none(tmp_path: Path) -> None:
    named = plan_launch(default_settings(tmp_path, model="x", reasoning_parser="deepseek-r1"), "x", "h", 1)
    assert flag(named.args, "--reasoning-parser") == "deepseek-r1"
    none = plan_launch(default_settings(tmp_path, reasoning_parser="none"), "m", "h", 1)
    assert "--reasoning-parser" not in none.args and none.reasoning_parser is None


def test_gpus_must_cover_tp_times_dp() -> None:
    assert _parse_gpus("0,1,2,3", 2, 2) == ["0", "1", "2", "3"]
    with pytest.raises(HumanEvalError, match=r"--humaneval-tp=2 x --humaneval-dp=2 needs 4 GPUs"):
        _parse_gpus("0,1,2", 2, 2)


# -- the options, on the command line and in the ini file ---------------------------------------------


def test_launch_options_from_the_command_line_and_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nhumaneval_server_args = --max-total-tokens 4096\n"
        "humaneval_server_env =\n    A=1\n    B=x=y\nhumaneval_dp = 2\nhumaneval_reasoning_parser = none\n"
    )
    config = pytester.parseconfig("--humaneval-debug", "--humaneval-sglang-python=venv/bin/python")
    settings = read_settings(config)
    assert settings.server_argv == ["--max-total-tokens", "4096"] and settings.dp == 2
    assert settings.server_environment == {"A": "1", "B": "x=y"} and settings.reasoning_parser == "none"
    assert settings.sglang_python == pytester.path / "venv/bin/python", "a venv's python link is kept"
    config = pytester.parseconfig(
        "--humaneval-debug", "--humaneval-server-env=C=3", "--humaneval-server-env=D=", "--humaneval-dp=1"
    )
    settings = read_settings(config)
    assert settings.server_environment == {"C": "3", "D": ""} and settings.dp == 1, "the command line wins"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--humaneval-server-args=--port 1", "--port is set by --humaneval-port"),
        ("--humaneval-server-args=--model=x", "--model is set by --humaneval-model-path"),
        ("--humaneval-server-args=--tp 2", "--tp is set by --humaneval-tp"),
        ("--humaneval-server-args=--served-model-name a", "--served-model-name is set by --humaneval-model"),
        ("--humaneval-server-args=--host 0.0.0.0", "--host is set by --humaneval-port"),
        ("--humaneval-server-args=--reasoning-parser qwen3", "set by --humaneval-reasoning-parser"),
        ("--humaneval-server-args=--dp-size 2", "--dp-size is set by --humaneval-dp"),
        ("--humaneval-server-args=--chat-template 'x", "No closing quotation"),
        ("--humaneval-server-env=NOVALUE", "give KEY=VALUE"),
        ("--humaneval-dp=0", "--humaneval-dp must be at least 1"),
        ("--humaneval-reasoning-parser=a b", "give a parser name"),
    ],
)
def test_a_bad_launch_option_is_a_usage_error(pytester: pytest.Pytester, option: str, message: str) -> None:
    config = pytester.parseconfig("--humaneval-debug", option)
    with pytest.raises(HumanEvalError, match=message.replace("(", r"\(")):
        read_settings(config)


def test_a_bad_launch_option_stops_the_run_before_anything_starts(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--humaneval-debug", "--humaneval-server-args=--port=31000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --humaneval-server-args: --port is set by --humaneval-port; remove it from *"]
    )
    assert not (pytester.path / ".humaneval").exists()


def test_a_local_checkpoint_names_the_model_when_no_name_is_given(pytester: pytest.Pytester) -> None:
    """With --humaneval-model-path and no --humaneval-model, the run is named for the checkpoint (terminal,
    report.json, the HTML title, the cache name), not for the default Hub model it is not."""
    (pytester.path / "SmolLM2-135M-Instruct").mkdir()
    (pytester.path / "model.Q4_1.gguf").write_bytes(b"GGUF")
    config = pytester.parseconfig("--humaneval-debug", "--humaneval-model-path=SmolLM2-135M-Instruct")
    assert read_settings(config).model == "SmolLM2-135M-Instruct"
    config = pytester.parseconfig("--humaneval-debug", "--humaneval-model-path=model.Q4_1.gguf")
    assert read_settings(config).model == "model.Q4_1"
    config = pytester.parseconfig(
        "--humaneval-debug", "--humaneval-model-path=SmolLM2-135M-Instruct", "--humaneval-model=mine"
    )
    assert read_settings(config).model == "mine", "a name given wins"
    pytester.makeini("[pytest]\nhumaneval_model = from-ini\n")
    config = pytester.parseconfig("--humaneval-debug", "--humaneval-model-path=SmolLM2-135M-Instruct")
    assert read_settings(config).model == "from-ini"
    assert read_settings(pytester.parseconfig("--humaneval-debug")).model == "from-ini"
