"""HumanEval-X: the plugin's verdicts and wall time beside the official construction run bare.

For each language, every problem's canonical solution and one mutant of it (the first of a few textual
mutations that changes it: a comparison, a constant, a boolean) are judged twice, at the same concurrency:

- **official**: CodeGeeX's construction (``evaluate_humaneval_x.py``'s ``process_humaneval_test``), written
  to a fresh directory and compiled and run with plain ``subprocess`` as its ``execution.py`` does (g++
  ``-std=c++11``; ``node test.js`` passing on empty output; ``javac`` then ``java Main``; ``go test
  main_test.go`` in the module with its vendored testify and one shared build cache; for Rust the file
  ``cargo test`` builds, compiled the way it does, ``rustc --test`` against the same crates), no sandbox;
- **plugin**: ``pytest_humaneval.api.evaluate`` with the subprocess sandbox (the same programs as completions,
  a fixed 3 s limit so no reference times are measured first).

It prints the verdicts that differ (the known dataset defects are expected to) and both walls.

    python benchmarks/bench_humaneval_x.py [--languages cpp,js,java,go,rust] [--workers N] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_humaneval import shared_builds
from pytest_humaneval.api import evaluate
from pytest_humaneval.datasets import Problem
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.languages import CPP_HEADERS  # CodeGeeX IMPORT_HELPER["cpp"]

#: CodeGeeX's IMPORT_HELPER["go"].
GO_HELPERS = (
    "math",
    "strings",
    "fmt",
    "strconv",
    "time",
    "bytes",
    "regexp",
    "sort",
    "math/rand",
    "crypto/md5",
)
#: One build cache for every official Go build, as a user's own would be.
GO_CACHE = tempfile.mkdtemp(prefix="hx-official-gocache-")

MUTATIONS = [
    ("<=", "<"),
    (">=", ">"),
    ("<", "<="),
    (">", ">="),
    ("==", "!="),
    ("+ 1", "+ 2"),
    ("+1", "+2"),
    ("- 1", "- 2"),
    ("-1", "-2"),
    ("true", "false"),
    ("false", "true"),
    ("0;", "1;"),
]


def mutant(code: str) -> str:
    """The first mutation that changes ``code`` (its last occurrence); the code itself when none does."""
    for old, new in MUTATIONS:
        at = code.rfind(old)
        if at >= 0:
            return code[:at] + new + code[at + len(old) :]
    return code


def official_source(language: str, problem: Problem, code: str) -> str:
    """process_humaneval_test (our Go problems' test is its test_setup + test; our Rust prompt is its
    declaration with the docstring moved above the signature, the same program)."""
    if language == "cpp":
        setup = "".join(h + "\n" for h in CPP_HEADERS if h not in problem.prompt)
        return setup + "\n" + problem.prompt + code + "\n" + problem.test
    if language == "go":
        imports = re.match(r"import \(.*?\)\n?", problem.prompt, re.S)  # the problem's "import" field
        prompt = problem.prompt.replace(imports.group(), "") if imports else problem.prompt
        at = problem.test.index(")\n") + 2  # test_setup: the package clause and its import block
        setup, test = problem.test[:at], problem.test[at:].lstrip("\n")
        other = [f'"{pkg}"' for pkg in GO_HELPERS if pkg not in setup and pkg.split("/")[-1] + "." in code]
        block = "import (\n" + "    ".join(p + "\n" for p in other) + ")" if other else ""
        return setup + "\n" + (block + "\n" if block else "") + prompt + code + "\n" + test
    if language == "rust":
        return "fn main(){ \n } \n" + problem.prompt + code + problem.test
    return problem.prompt + code + "\n" + problem.test


def official_verdict(language: str, problem: Problem, code: str, timeout: float = 5.0) -> bool:
    """execution.py's check_correctness for cpp, js and java: compile, run, pass on its condition."""
    work = Path(tempfile.mkdtemp(prefix="hx-official-"))
    try:
        source = official_source(language, problem, code)
        run = lambda argv, t=timeout: subprocess.run(argv, cwd=work, capture_output=True, timeout=t)  # noqa: E731
        try:
            if language == "cpp":
                (work / "test.cpp").write_text(source)
                libs = ["-lcrypto", "-lssl"] if "162" in problem.task_id else []
                if run(["g++", "-std=c++11", "test.cpp", *libs], 60).returncode != 0:
                    return False
                return run(["./a.out"]).returncode == 0
            if language == "js":
                (work / "test.js").write_text(source)
                done = subprocess.run(
                    ["node", "test.js"],
                    cwd=work,
                    capture_output=True,
                    timeout=timeout,
                    env=dict(os.environ, NODE_PATH="/usr/lib/node_modules:/usr/local/lib/node_modules"),
                )
                return not done.stderr and not done.stdout
            if language == "go":
                module = shared_builds.go_module()
                for name in ("go.mod", "go.sum"):
                    shutil.copy(f"{module}/{name}", work / name)
                (work / "vendor").symlink_to(f"{module}/vendor")
                (work / "main_test.go").write_text(source)
                env = dict(os.environ, **shared_builds.GO_ENV, GOCACHE=GO_CACHE)
                done = subprocess.run(
                    [shared_builds.go(), "test", f"-timeout={timeout}s", "main_test.go"],
                    cwd=work,
                    capture_output=True,
                    timeout=timeout + 60,
                    env=env,
                )
                return done.returncode == 0
            if language == "rust":
                (work / "main.rs").write_text(source)
                crates = shared_builds.rust_crates()
                externs = [a for n, path in crates.items() if n for a in ("--extern", f"{n}={path}")]
                build = [shared_builds.rustc(), "--edition", "2021", "--test", "-o", "main", "main.rs"]
                if run([*build, "-L", f"dependency={crates['']}", *externs], 60).returncode != 0:
                    return False
                return run(["./main"]).returncode == 0
            (work / "Main.java").write_text(source)
            if run(["javac", "Main.java"], 60).returncode != 0:
                return False
            return run(["java", "-cp", ".", "Main"]).returncode == 0
        except subprocess.TimeoutExpired:
            return False
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--languages", default="cpp,js,java,go,rust")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--limit", type=int, default=164, help="problems per language")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, {args.workers} programs at once, {args.limit} problems per language")
    rows = []
    for language in args.languages.split(","):
        dataset = load_dataset(f"humaneval-x-{language}")
        problems = list(dataset)[: args.limit]
        programs = [(p, p.canonical_solution) for p in problems] + [
            (p, mutant(p.canonical_solution)) for p in problems
        ]
        mutated = sum(code != p.canonical_solution for p, code in programs[len(problems) :])

        start = time.monotonic()
        with ThreadPoolExecutor(args.workers) as pool:
            official = list(pool.map(partial(official_verdict, language), *zip(*programs, strict=True)))
        official_s = time.monotonic() - start

        completions = [{"task_id": p.task_id, "completion": code} for p, code in programs]
        order: dict[str, list[int]] = {}
        for i, (p, _) in enumerate(programs):
            order.setdefault(p.task_id, []).append(i)
        start = time.monotonic()
        with tempfile.TemporaryDirectory() as out:
            report = evaluate(completions, dataset, timeout=3.0, workers=args.workers, output=out)
        plugin_s = time.monotonic() - start
        ours = [False] * len(programs)
        for r in report["results"]:
            ours[order[r["task_id"]][r["sample"]]] = r["passed"]

        differ = [
            (programs[i][0].task_id, "canonical" if i < len(problems) else "mutant", official[i], ours[i])
            for i in range(len(programs))
            if official[i] != ours[i]
        ]
        for task, kind, theirs, mine in differ:
            known = dataset.known_defect(task)
            verdicts = f"official {'pass' if theirs else 'fail'}, plugin {'pass' if mine else 'fail'}"
            print(f"  {task} {kind}: {verdicts}{' (known defect)' if known else ''}")
        rows.append(
            (language, len(programs), mutated, sum(official), sum(ours), len(differ), official_s, plugin_s)
        )
    print()
    print(
        "| language | programs (mutants) | official passed | plugin passed | differ | official wall "
        "| plugin wall | ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for language, n, mutated, op, pp, diff, os_, ps in rows:
        walls = f"{os_:.1f} s | {ps:.1f} s | {ps / os_:.2f}x"
        print(f"| {language} | {n} ({mutated}) | {op} | {pp} | {diff} | {walls} |")


if __name__ == "__main__":
    main()
