"""The plugin as another model repo gets it: built as a wheel, installed into a fresh virtual
environment, used from a separate repo with its own tests, config and conftest hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = '''
"""The model repo's hook: its 'model' answers with the reference solution, in a fenced block,
except for the problems named in BROKEN (a regression the baseline must catch)."""
import os

BROKEN = set(filter(None, os.environ.get("BROKEN", "").split(",")))


def pytest_humaneval_generate(config, problems, samples, think):
    answers = {}
    for p in problems:
        body = "    return None\\n" if p.task_id in BROKEN else p.canonical_solution
        answers[p.task_id] = ["Here you go:\\n```python\\n" + p.prompt + body + "```\\n"] * samples
    return answers
'''


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel of this checkout installed (no editable paths)."""
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(base),
        ],
        check=True,
    )
    (wheel,) = base.glob("pytest_humaneval-*.whl")
    env_dir = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    # What a model repo's test dependencies would hold: the plugin and pytest-xdist.
    subprocess.run([str(env_dir / "bin" / "pip"), "install", "-q", str(wheel), "pytest-xdist"], check=True)
    return env_dir


@pytest.fixture
def model_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "model-repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.pytest.ini_options]
            testpaths = ["tests"]
            humaneval_dataset = "humaneval"
            humaneval_report = "humaneval-report.json"
            """
        )
    )
    (repo / "tests" / "test_tokenizer.py").write_text(
        "def test_tokenizer_roundtrip():\n    assert 'ab'[::-1][::-1] == 'ab'\n"
    )
    (repo / "conftest.py").write_text(CONFTEST)
    return repo


def model_repo_env(**extra: str) -> dict[str, str]:
    """The environment of a model repo's shell: none of this checkout's PYTHONPATH or pytest settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    return {**env, **extra}


def pytest_in(venv: Path, repo: Path, *args: str, broken: str = "") -> subprocess.CompletedProcess[str]:
    env = model_repo_env(BROKEN=broken)
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_plugin_is_the_installed_wheel(venv: Path) -> None:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pytest_humaneval; print(pytest_humaneval.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
        env=model_repo_env(),
    ).stdout
    assert out.startswith(str(venv)), out


def test_own_tests_run_untouched(venv: Path, model_repo: Path) -> None:
    result = pytest_in(venv, model_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "humaneval:" not in result.stdout and "pass@" not in result.stdout
    assert not (model_repo / "humaneval-report.json").exists()
    assert not (model_repo / "humaneval-report.html").exists()


def test_hook_scores_canonical_164(venv: Path, model_repo: Path) -> None:
    result = pytest_in(venv, model_repo, "--humaneval", "-n", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "164 passed" in result.stdout
    report = json.loads((model_repo / "humaneval-report.json").read_text())
    assert report["pass_at_k"]["1"] == 1.0 and report["total"] == 164
    page = (model_repo / "humaneval-report.html").read_text()  # the template and its assets are in the wheel
    assert "HumanEval report" in page and page.count('<details class="prog"') == 164
    assert "test_tokenizer_roundtrip" not in result.stdout  # --humaneval alone leaves the repo's tests out


def test_baseline_and_min_pass_gate(venv: Path, model_repo: Path) -> None:
    assert pytest_in(venv, model_repo, "--humaneval", "--humaneval-report=base.json").returncode == 0
    broken = "HumanEval/10,HumanEval/20,HumanEval/30"
    result = pytest_in(venv, model_repo, "--humaneval", "--humaneval-baseline=base.json", broken=broken)
    assert result.returncode == 1
    assert "3 newly failing ['HumanEval/10', 'HumanEval/20', 'HumanEval/30']" in result.stdout
    assert "gate --humaneval-baseline: 3 newly failing, tolerance 0 -> FAILED" in result.stdout
    gate_ok = pytest_in(venv, model_repo, "--humaneval", "--humaneval-min-pass=0.98", broken=broken)
    assert gate_ok.returncode == 0, gate_ok.stdout[-2000:]  # 161/164 = 0.9817 >= 0.98: failures don't fail it
    gate_bad = pytest_in(venv, model_repo, "--humaneval", "--humaneval-min-pass=0.99", broken=broken)
    assert gate_bad.returncode == 1
    assert "gate --humaneval-min-pass=0.99: pass@1 0.9817 -> FAILED" in gate_bad.stdout


TOY_PACKAGE = {
    "pyproject.toml": """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "toy-benchmark"
version = "1.0"

[project.entry-points."pytest_humaneval.datasets"]
toy = "toy_benchmark:benchmarks"

[tool.hatch.build.targets.wheel]
packages = ["toy_benchmark"]
""",
    "toy_benchmark/__init__.py": '''
"""A benchmark package: its problems in HumanEval's schema, registered by entry point."""
from pytest_humaneval.datasets import Benchmark

PROBLEMS = [
    {"task_id": "Toy/0", "prompt": '"""Double x."""\\n', "entry_point": "double",
     "canonical_solution": "def double(x):\\n    return 2 * x\\n",
     "test": "def check(candidate):\\n    assert candidate(3) == 6\\n"},
    {"task_id": "Toy/1", "prompt": '"""Triple x."""\\n', "entry_point": "triple",
     "canonical_solution": "def triple(x):\\n    return 3 * x\\n",
     "test": "def check(candidate):\\n    assert candidate(3) == 9\\n"},
]


def benchmarks():
    return [Benchmark("toy", lambda: PROBLEMS, "two toy problems", prompt_template="Write {entry_point}.")]
''',
}

CONFTEST_DATASET = """
from pytest_humaneval.datasets import Benchmark


def pytest_humaneval_datasets(config):
    problem = {"task_id": "Local/0", "prompt": "def inc(x):\\n", "entry_point": "inc",
               "canonical_solution": "    return x + 1\\n",
               "test": "def check(candidate):\\n    assert candidate(1) == 2\\n"}
    return [Benchmark("local", lambda: [problem])]
"""


def test_a_benchmark_plugged_in_by_another_package_and_by_a_conftest(venv: Path, tmp_path: Path) -> None:
    """A separate package registers 'toy' by entry point; a separate repo's conftest registers 'local'; both
    run by name, through pytest and the Python API, beside the built-in MBPP."""
    package = tmp_path / "toy-benchmark"
    for name, text in TOY_PACKAGE.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", str(package), "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(wheels)], check=True)
    (wheel,) = wheels.glob("toy_benchmark-*.whl")
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel)], check=True)
    repo = tmp_path / "eval-repo"
    repo.mkdir()
    (repo / "conftest.py").write_text(CONFTEST_DATASET)
    toy = pytest_in(venv, repo, "--humaneval", "--humaneval-dataset=toy", "--humaneval-completions=canonical")
    assert toy.returncode == 0 and "2 passed" in toy.stdout, toy.stdout[-3000:] + toy.stderr[-3000:]
    local = pytest_in(
        venv, repo, "--humaneval", "--humaneval-dataset=local", "--humaneval-completions=canonical"
    )
    assert local.returncode == 0 and "1 passed" in local.stdout, local.stdout[-3000:] + local.stderr[-3000:]
    mbpp = pytest_in(  # the built-in MBPP (MBPP+'s tests need numpy, which this venv does not hold)
        venv, repo, "--humaneval-debug", "--humaneval-dataset=mbpp", "--humaneval-completions=canonical"
    )
    assert mbpp.returncode == 0 and "4 passed" in mbpp.stdout, mbpp.stdout[-3000:] + mbpp.stderr[-3000:]
    api = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from pytest_humaneval.api import evaluate; r = evaluate('canonical', dataset='toy'); "
            "print(r['dataset'], r['passed'], r['total'])",
        ],
        capture_output=True,
        text=True,
        cwd=repo,
        env=model_repo_env(),
        timeout=300,
    )
    assert api.stdout.strip() == "toy 2 2", api.stdout + api.stderr
