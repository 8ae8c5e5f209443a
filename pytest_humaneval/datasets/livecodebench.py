"""LiveCodeBench's published problems (``livecodebench/code_generation_lite``) as pytest-humaneval problems.

A row of LiveCodeBench's ``test*.jsonl`` has ``question_id``, ``question_content``, ``starter_code``,
``public_test_cases`` (JSON), ``private_test_cases`` (JSON, or base64 of zlib of a pickled JSON string) and
``metadata`` (JSON: ``func_name`` for LeetCode's call-based problems). Each becomes a problem of the
``stdio`` kind (:mod:`..languages`): the answer is a whole Python program, run once per test case, and judged
as LiveCodeBench judges it: on standard input and output (AtCoder, Codeforces), or by calling
``Solution().func_name(*args)`` and comparing the returned value (LeetCode).

The test cases travel as the problem's ``test``: JSON ``{"inputs": [...], "outputs": [...], "fn_name": ...}``,
LiveCodeBench's own ``input_output``. A file of such rows is read wherever a dataset path is accepted;
:func:`fetch_release` downloads a release into the cache where the network allows.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import urllib.request
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import HumanEvalError
from ..user_cache import cache_dir

#: The fields that mark a row as LiveCodeBench's.
MARK_FIELDS = ("question_content", "public_test_cases")
#: Where the releases are published (Hugging Face dataset livecodebench/code_generation_lite).
RELEASES_URL = "https://huggingface.co/datasets/livecodebench/code_generation_lite/resolve/main/"
#: release name -> the files that make it up (each release adds one file to the one before).
RELEASES = {
    f"release_v{n}": [f"test{'' if i == 1 else i}.jsonl" for i in range(1, n + 1)] for n in range(1, 7)
}
#: The prompt of a LiveCodeBench problem: its instruction, in our words.
PROMPT_TEMPLATE = (
    "Solve the following programming problem with a complete Python program. It reads its input from "
    "standard input and writes its answer to standard output (with starter code: complete the class it "
    "gives; the judge calls its method). Reply with the program in a single ```python code block.\n\n"
    "{prompt}\n"
)


def is_livecodebench(row: Mapping[str, Any]) -> bool:
    return all(field in row for field in MARK_FIELDS)


class _StringsOnly(pickle.Unpickler):
    """LiveCodeBench pickles a JSON string; anything that needs a global (code, objects) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused: the test cases may hold plain data only, not {module}.{name}")


def decode_cases(text: str, where: str) -> list[dict[str, Any]]:
    """Test cases as LiveCodeBench stores them: JSON, or base64(zlib(pickle(JSON string)))."""
    try:
        return _cases(json.loads(text), where)
    except json.JSONDecodeError:
        pass
    try:
        packed = zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))
        inner = _StringsOnly(io.BytesIO(packed)).load()
        return _cases(json.loads(inner), where)
    except (ValueError, zlib.error, pickle.UnpicklingError, EOFError, TypeError) as e:
        why = f"test cases are neither JSON nor LiveCodeBench's encoding ({e})"
        raise HumanEvalError(f"{where}: {why}") from None


def _cases(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(
        isinstance(c, dict) and isinstance(c.get("input"), str) and isinstance(c.get("output"), str)
        for c in value
    ):
        raise HumanEvalError(f"{where}: test cases must be a list of {{input, output}} strings")
    return value


def problem_row(row: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A LiveCodeBench row in our schema (language ``stdio``)."""
    for field in ("question_id", "question_content"):
        if not isinstance(row.get(field), str) or not row.get(field):
            raise HumanEvalError(f"{where}: LiveCodeBench row lacks {field}")
    cases = decode_cases(row["public_test_cases"], f"{where} public_test_cases")
    if row.get("private_test_cases"):
        cases += decode_cases(row["private_test_cases"], f"{where} private_test_cases")
    if not cases:
        raise HumanEvalError(f"{where}: LiveCodeBench row has no test cases")
    try:
        metadata = json.loads(row.get("metadata") or "{}")
    except json.JSONDecodeError:
        raise HumanEvalError(f"{where}: metadata is not JSON") from None
    fn_name = metadata.get("func_name") if isinstance(metadata, dict) else None
    if any(c.get("testtype", "stdin") == "functional" for c in cases) and not fn_name:
        raise HumanEvalError(f"{where}: call-based test cases but no func_name in metadata")
    starter = row.get("starter_code") or ""
    prompt = row["question_content"].rstrip() + "\n"
    if starter.strip():
        prompt += f"\nStarter code:\n```python\n{starter.rstrip()}\n```\n"
    tests: dict[str, object] = {
        "inputs": [c["input"] for c in cases],
        "outputs": [c["output"] for c in cases],
    }
    tests["fn_name"] = fn_name
    return {
        "task_id": f"LiveCodeBench/{row['question_id']}",
        "prompt": prompt,
        "test": json.dumps(tests),
        "entry_point": fn_name or "main",
        "canonical_solution": "",
        "language": "stdio",
    }


def fetch_release(release: str, cache: Path | None = None) -> list[Path]:
    """The files of a LiveCodeBench release, downloaded once into ``cache`` (where the network allows)."""
    if release not in RELEASES:
        raise HumanEvalError(f"unknown LiveCodeBench release {release!r}: one of {', '.join(RELEASES)}")
    if cache is None:
        cache = cache_dir("livecodebench")
    cache.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in RELEASES[release]:
        path = cache / name
        if not path.is_file():
            partial = path.with_suffix(".part")
            try:
                with urllib.request.urlopen(RELEASES_URL + name, timeout=60) as response:
                    with partial.open("wb") as fh:
                        while chunk := response.read(1 << 20):
                            fh.write(chunk)
            except OSError as e:
                partial.unlink(missing_ok=True)
                files = " ".join(RELEASES[release])
                raise HumanEvalError(
                    f"could not download LiveCodeBench's {name} ({e}): without network, download {release}'s "
                    f"files ({files}) from {RELEASES_URL} elsewhere, and pass one, or all of them joined "
                    "into one file, as --humaneval-dataset=PATH"
                ) from None
            partial.rename(path)
        paths.append(path)
    return paths
