"""pytest-humaneval against EvalPlus 0.3.1 on EvalPlus's own benchmarks: HumanEval+ and MBPP+.

    python benchmarks/evalplus_bench.py [--runs=3] [--datasets=humaneval-plus,mbpp-plus]
        [--inputs=canonical,mixed] [--every=N] [--evalplus-python=VENV/bin/python] [--work=DIR] [--json=OUT]

For each dataset, builds two solution files (``solution`` = a whole program, the field both tools read):
``canonical`` (the reference solutions) and ``mixed`` (per problem: the reference, an off-by-one mutant, a
constant answer, an exception, a syntax error, an answer shadowed by a later definition, and on a few
problems an infinite loop). Runs

- ``ours``: ``python -m pytest --humaneval --humaneval-dataset=D --humaneval-completions=F -p
  no:cacheprovider -q`` (one process; per-problem time limits);
- ``evalplus``: ``python -m evalplus.evaluate --dataset humaneval|mbpp --samples F --parallel 2
  --i-just-wanna-run`` with ``HUMANEVAL_OVERRIDE_PATH`` / ``MBPP_OVERRIDE_PATH`` at EvalPlus's own files
  (``benchmarks/data/HumanEvalPlus-v0.1.10.jsonl.gz``, ``datasets/MbppPlus-v0.2.0.jsonl.gz``); its
  ground-truth cache is primed by one untimed run when missing (as a user's second run finds it);

``--runs`` times each, and prints wall time (median), peak memory of the process tree (memory cgroup, see
``run.py``), pass@1, and every program whose verdict differs (ours: passed; EvalPlus: base and plus
passed). EvalPlus needs its own environment (it pulls transformers, datasets, anthropic, ...):
``python -m venv VENV && VENV/bin/pip install evalplus==0.3.1``, then ``--evalplus-python=VENV/bin/python``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_samples
from run import EVALPLUS_DATA, MB, Measurement, measure

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pytest_humaneval.datasets.registry import load_dataset  # noqa: E402

EVALPLUS_FILES = {
    "humaneval-plus": ("humaneval", "HUMANEVAL_OVERRIDE_PATH", EVALPLUS_DATA),
    "mbpp-plus": ("mbpp", "MBPP_OVERRIDE_PATH", ROOT / "datasets/MbppPlus-v0.2.0.jsonl.gz"),
}
#: Problems (every n-th) whose mixed file holds an infinite loop: each costs a whole time limit in both tools.
LOOP_EVERY = 40
Verdicts = dict[tuple[str, int], bool]


def solution_variants(problem: Any, rng: random.Random, loop: bool) -> list[tuple[str, str]]:
    """(kind, whole program) for one problem: what a model's answers look like, right and wrong."""
    ref = problem.prompt + problem.canonical_solution
    entry = problem.entry_point
    stub = f"def {entry}(*args, **kwargs):\n"
    out = [("canonical", ref)]
    mutant = make_samples.mutate(problem.canonical_solution, rng)
    if mutant is not None:
        out.append(("mutant", problem.prompt + mutant))
    out.append(("constant", stub + f"    return {rng.choice(make_samples.CONSTANTS)}\n"))
    out.append(("exception", stub + "    raise ValueError('no idea')\n"))
    out.append(("syntax_error", stub + "    return (\n"))
    out.append(("shadowed", ref + f"\n\n{stub}    return None\n"))
    if loop:
        out.append(("infinite_loop", stub + "    while True:\n        pass\n"))
    return out


def build_inputs(dataset_name: str, out: Path, every: int = 1) -> dict[str, Path]:
    dataset = load_dataset(dataset_name)
    out.mkdir(parents=True, exist_ok=True)
    canonical = [{"task_id": p.task_id, "solution": p.prompt + p.canonical_solution} for p in dataset]
    mixed = []
    for n, p in enumerate(dataset):
        rng = random.Random(f"pytest-humaneval:{p.task_id}")
        variants = solution_variants(p, rng, loop=n % LOOP_EVERY == LOOP_EVERY // 2)
        if n % every:  # --every: the others get their reference only (EvalPlus needs every problem)
            variants = variants[:1]
        for kind, program in variants:
            mixed.append({"task_id": p.task_id, "solution": program, "kind": kind})
    files = {"canonical": out / "canonical.jsonl", "mixed": out / "mixed.jsonl"}
    make_samples.write_jsonl(files["canonical"], canonical)
    make_samples.write_jsonl(files["mixed"], mixed)
    return files


def ours(dataset: str, samples: Path, run_dir: Path, python: str) -> tuple[list[str], dict[str, str]]:
    cmd = [python, "-m", "pytest", "--humaneval", f"--humaneval-dataset={dataset}"]
    cmd += [f"--humaneval-completions={samples}", "-p", "no:cacheprovider", "-q", "--tb=no"]
    cmd += [f"--humaneval-report={run_dir / 'report.json'}", f"--humaneval-output={run_dir / '.humaneval'}"]
    return cmd, {"PYTHONPATH": str(ROOT)}


def ours_verdicts(samples: Path, run_dir: Path) -> Verdicts:
    report = json.loads((run_dir / "report.json").read_text())
    return {(r["task_id"], r["sample"]): bool(r["passed"]) for r in report["results"]}


def evalplus(
    dataset: str, samples: Path, run_dir: Path, python: str, parallel: int
) -> tuple[list[str], dict[str, str]]:
    name, env_var, data = EVALPLUS_FILES[dataset]
    cmd = [python, "-m", "evalplus.evaluate", "--dataset", name, "--samples", str(samples)]
    cmd += ["--parallel", str(parallel), "--i-just-wanna-run"]
    return cmd, {env_var: str(data)}


def evalplus_verdicts(samples: Path, run_dir: Path) -> Verdicts:
    data = json.loads(samples.with_name(samples.stem + "_eval_results.json").read_text())
    out: Verdicts = {}
    for task_id, rows in data["eval"].items():
        for i, row in enumerate(rows):
            out[(task_id, i)] = row["base_status"] == "pass" and row["plus_status"] == "pass"
    return out


def evalplus_cache_warm(dataset: str, python: str) -> bool:
    data = EVALPLUS_FILES[dataset][2]
    cache = subprocess.run(
        [python, "-c", "from evalplus.data.utils import CACHE_DIR; print(CACHE_DIR)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return (Path(cache) / f"{hashlib.md5(data.read_bytes()).hexdigest()}.pkl").is_file()


def run_once(
    command: Any, samples: Path, work: Path, tag: str, poll_s: float
) -> tuple[Measurement, Path, Path]:
    run_dir = Path(tempfile.mkdtemp(prefix=tag + "-", dir=work))
    copy = run_dir / samples.name
    shutil.copy(samples, copy)
    cmd, extra = command(copy, run_dir)
    env = {**os.environ, **extra}
    m = measure(cmd, run_dir, env, poll_s, tag)
    return m, copy, run_dir


def pass_at_1(verdicts: Verdicts) -> float:
    per_task: dict[str, list[bool]] = {}
    for (task, _), ok in verdicts.items():
        per_task.setdefault(task, []).append(ok)
    return statistics.mean(sum(v) / len(v) for v in per_task.values()) if per_task else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--datasets", default="humaneval-plus,mbpp-plus")
    parser.add_argument("--inputs", default="canonical,mixed")
    parser.add_argument("--tools", default="ours,evalplus")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the plugin")
    parser.add_argument("--evalplus-python", default=sys.executable, help="interpreter with evalplus 0.3.1")
    parser.add_argument("--evalplus-parallel", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--poll-ms", type=int, default=50)
    parser.add_argument("--every", type=int, default=1, help="mixed file: every n-th problem only")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="evalplus-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tools = {
        "ours": (lambda d: lambda s, r: ours(d, s, r, args.python), ours_verdicts),
        "evalplus": (
            lambda d: lambda s, r: evalplus(d, s, r, args.evalplus_python, args.evalplus_parallel),
            evalplus_verdicts,
        ),
    }
    wanted = args.tools.split(",")
    rows: list[dict[str, Any]] = []
    for dataset in args.datasets.split(","):
        files = build_inputs(dataset, work / dataset, args.every)
        if "evalplus" in wanted and not evalplus_cache_warm(dataset, args.evalplus_python):
            print(f"priming EvalPlus's ground-truth cache for {dataset} (untimed run) ...", file=sys.stderr)
            run_once(tools["evalplus"][0](dataset), files["canonical"], work, "prime", args.poll_ms / 1000)
        for name in args.inputs.split(","):
            kinds: dict[str, list[str]] = {}  # task_id -> the kind of each of its programs in the file
            for line in make_samples.iter_jsonl(files[name]):
                kinds.setdefault(line["task_id"], []).append(line.get("kind", "canonical"))
            verdicts: dict[str, Verdicts] = {}
            for tool in wanted:
                command, read = tools[tool]
                measurements = []
                for r in range(args.runs):
                    m, copy, run_dir = run_once(
                        command(dataset), files[name], work, f"{tool}-{name}-{r}", args.poll_ms / 1000
                    )
                    measurements.append(m)
                    try:
                        verdicts[tool] = read(copy, run_dir)
                    except (OSError, ValueError, KeyError) as e:
                        print(
                            f"{tool} on {dataset}/{name} failed (rc {m.rc}, log {m.log}): {e}",
                            file=sys.stderr,
                        )
                walls = sorted(m.wall_s for m in measurements)
                peaks = [m.cgroup_peak or m.rss_peak for m in measurements]
                row = {
                    "dataset": dataset,
                    "input": name,
                    "tool": tool,
                    "programs": len(verdicts.get(tool, {})),
                    "wall_s": round(statistics.median(walls), 2),
                    "wall_range": [round(walls[0], 2), round(walls[-1], 2)],
                    "peak_mb": round(max(peaks) / MB),
                    "pass_at_1": round(pass_at_1(verdicts.get(tool, {})), 4),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
            if len(verdicts) == 2:
                a, b = verdicts["ours"], verdicts["evalplus"]
                # Programs of the file (the plugin also counts a problem's missing samples as no_code).
                given = {(t, s) for t, ks in kinds.items() for s in range(len(ks))}
                differ = sorted(k for k in given if a.get(k) != b.get(k))
                rows[-1]["differ_from_ours"] = [
                    {
                        "task_id": t,
                        "sample": s,
                        "kind": kinds[t][s],
                        "ours": a.get((t, s)),
                        "evalplus": b.get((t, s)),
                    }
                    for t, s in differ
                ]
                print(
                    f"{dataset}/{name}: {len(given)} programs, verdicts differ on {len(differ)}", flush=True
                )
                for d in rows[-1]["differ_from_ours"]:
                    who = f"ours {d['ours']}, EvalPlus {d['evalplus']}"
                    print(f"  {d['task_id']} [s{d['sample']}] {d['kind']}: {who}")
    print()
    print("| dataset | input | tool | programs | wall (median) | peak memory | pass@1 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        lo, hi = row["wall_range"]
        wall = f"{row['wall_s']:.1f} s ({lo:.1f}-{hi:.1f})"
        print(
            f"| {row['dataset']} | {row['input']} | {row['tool']} | {row['programs']} | {wall} "
            f"| {row['peak_mb']} MB | {row['pass_at_1']:.4f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(f"\nwork dir: {work}")


if __name__ == "__main__":
    main()
