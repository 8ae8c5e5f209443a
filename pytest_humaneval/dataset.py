"""Step 1 of the data path: load and validate HumanEval-schema problems.

Bundled datasets ship inside the package, so an installed wheel needs no other files.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import HumanEvalError

REQUIRED_FIELDS = ("task_id", "prompt", "test", "entry_point")

#: Names accepted by ``--humaneval-dataset`` and the files they stand for.
BUNDLED = {
    "humaneval": "HumanEval.jsonl.gz",
    "humaneval-plus": "HumanEvalPlus-OriginFmt.jsonl.gz",
    "humaneval-4": "HumanEval_4.jsonl",
}

#: Known defects of bundled datasets: the reference solution fails the dataset's own test.
KNOWN_DEFECTS = {
    ("humaneval-plus", "HumanEval/32"): (
        "dataset defect: HumanEval+'s test for find_zero fails its own canonical solution "
        "(EvalPlus issue #125)"
    ),
}


def task_key(task_id: str) -> tuple[str, int, str]:
    """Sort key of a task id: ``HumanEval/2`` before ``HumanEval/10``."""
    prefix, _, num = task_id.rpartition("/")
    return (prefix, int(num), "") if num.isdigit() else (task_id, 0, task_id)


def data_dir(kind: str) -> Path:
    """Where bundled files of ``kind`` ('datasets' or 'sandbox') live.

    In a wheel they are inside the package (``_data/``); in a source checkout they are the
    top-level folders next to the package.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / kind, here.parent / kind):
        if candidate.is_dir():
            return candidate
    raise HumanEvalError(
        f"bundled {kind} folder is missing from the installation ({here}); reinstall pytest-humaneval"
    )


@dataclass(frozen=True)
class Problem:
    """One HumanEval problem."""

    task_id: str
    prompt: str
    test: str
    entry_point: str
    canonical_solution: str = ""

    @cached_property
    def digest(self) -> str:
        """Short hash of everything that defines the problem (part of cache keys)."""
        h = hashlib.sha256()
        for part in (self.task_id, self.prompt, self.test, self.entry_point):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class Dataset:
    """An ordered set of problems plus where they came from."""

    name: str
    path: Path
    problems: dict[str, Problem]

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems.values())

    def __len__(self) -> int:
        return len(self.problems)

    @cached_property
    def digest(self) -> str:
        h = hashlib.sha256()
        for p in self:
            h.update(p.digest.encode())
        return h.hexdigest()[:16]

    def known_defect(self, task_id: str) -> str | None:
        return KNOWN_DEFECTS.get((self.name, task_id))


def open_text(path: Path):
    """Open a .jsonl or .jsonl.gz file for reading text."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)``; a bad line raises an error naming file and line."""
    if not path.is_file():
        raise HumanEvalError(f"{path}: file not found")
    try:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise HumanEvalError(
                        f"{path}:{lineno}: not valid JSON ({e.msg}); fix or remove the line"
                    ) from None
                if not isinstance(obj, dict):
                    raise HumanEvalError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                yield lineno, obj
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise HumanEvalError(f"{path}: cannot read ({e}); is it a JSONL or gzipped JSONL file?") from None


def resolve(spec: str) -> tuple[str, Path]:
    """Map a ``--humaneval-dataset`` value to ``(name, path)``."""
    if spec in BUNDLED:
        return spec, data_dir("datasets") / BUNDLED[spec]
    path = Path(spec).expanduser()
    if not path.exists():
        names = ", ".join(n for n in BUNDLED if n != "humaneval-4")
        raise HumanEvalError(
            f"dataset {spec!r} not found: give one of {names} or the path of a JSONL(.gz) file"
        )
    name = path.name.removesuffix(".gz").removesuffix(".jsonl")
    return name, path.resolve()


def load_dataset(spec: str = "humaneval") -> Dataset:
    """Load and validate a dataset by bundled name or path."""
    name, path = resolve(spec)
    problems: dict[str, Problem] = {}
    for lineno, obj in iter_jsonl(path):
        missing = [f for f in REQUIRED_FIELDS if not isinstance(obj.get(f), str) or not obj.get(f)]
        if missing:
            raise HumanEvalError(
                f"{path}:{lineno}: problem lacks {', '.join(missing)} "
                f"(HumanEval schema: task_id, prompt, test, entry_point[, canonical_solution])"
            )
        if obj["task_id"] in problems:
            raise HumanEvalError(f"{path}:{lineno}: duplicate task_id {obj['task_id']!r}")
        problems[obj["task_id"]] = Problem(
            task_id=obj["task_id"],
            prompt=obj["prompt"],
            test=obj["test"],
            entry_point=obj["entry_point"],
            canonical_solution=obj.get("canonical_solution") or "",
        )
    if not problems:
        raise HumanEvalError(f"{path}: the dataset has no problems")
    return Dataset(name=name, path=path, problems=problems)
