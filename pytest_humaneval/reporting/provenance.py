"""Where a number came from: the run's provenance, for the JSON report and the pytest header.

A pass@1 is only worth comparing with another when both ran the same plugin, dataset, model and
sampling. This gathers those facts in one place, from the settings and from what generation reports
it actually used (the ``generation`` section), so nothing is recomputed or guessed. Secrets never get
in: no API key, and URLs lose their user, password and query.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import __version__
from ..datasets.dataset import Dataset
from ..options import Settings
from .schema import Provenance, ProvenanceCompletions, ProvenanceGeneration, ProvenanceSandbox

#: Generation facts that shape the answers (the rest of the section is bookkeeping: cache, counts).
GENERATION_FIELDS = (
    "source",
    "model",
    "model_path",
    "backend",
    "image",
    "endpoint",
    "server",  # startup_s, reused, reasoning_parser, args: a server this run started or took over
    "think",
    "sampling",
    "extra_body",
    "dropped_params",
    "prompt_template",
    "samples_per_problem",
)
SERVER_SOURCES = ("endpoint", "docker", "process")
#: What the header says about the sampling, in this order.
HEADER_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "seed")


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment (``https://user:key@host/v1?k=x`` -> ``https://host/v1``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def build_provenance(
    settings: Settings,
    dataset: Dataset,
    generation: dict[str, Any] | None,
    *,
    timeout_s: float,
    isolation: str,
) -> Provenance:
    """The ``provenance`` object of the JSON report."""
    used: ProvenanceGeneration = {}
    if generation is not None:
        gen = {k: generation[k] for k in GENERATION_FIELDS if generation.get(k) not in (None, [], {})}
        if "endpoint" in gen:
            gen["endpoint"] = public_url(gen["endpoint"])
        if gen.get("source") in SERVER_SOURCES:
            gen["request_timeout_s"] = settings.request_timeout
        model = generation.get("model")
        used["generation"] = gen
    else:
        model = "canonical" if settings.completions == "canonical" else None
    sandbox: ProvenanceSandbox = {"kind": settings.sandbox, "isolation": isolation}
    if settings.sandbox == "docker":
        sandbox["image"] = settings.sandbox_image
    return {
        "plugin_version": __version__,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "dataset": {
            "name": dataset.name,
            "path": str(dataset.path),
            "sha": dataset.digest,
            "problems": len(dataset),
        },
        "completions": _completions(settings, generation),
        "model": model,
        **used,
        "evaluation": {
            "sandbox": sandbox,
            "timeout_s": timeout_s,
            "memory_mb": settings.memory_mb(dataset.memory_mb),
        },
    }


def header_lines(generation: dict[str, Any] | None) -> list[str]:
    """Header lines naming the plugin and, when this run generated, the model, backend and sampling
    (the header is printed after generation, so these are the values used)."""
    python = f"Python {platform.python_version()} on {platform.platform()}"
    lines = [f"humaneval: pytest-humaneval {__version__}, {python}"]
    if generation is None:  # the line above already names the completions file
        return lines
    parts = [f"model {generation.get('model')} via {_where(generation)}"]
    parts.append(f"think {'on' if generation.get('think') else 'off'}")
    sampling = generation.get("sampling") or {}
    params = " ".join(f"{k}={sampling[k]}" for k in HEADER_SAMPLING if sampling.get(k) is not None)
    if params:
        dropped = generation.get("dropped_params")
        parts.append(params + (f" (the server refused {', '.join(dropped)})" if dropped else ""))
    parts.append(f"{generation.get('samples_per_problem')} sample(s)/problem")
    lines.append("humaneval: " + ", ".join(parts))
    return lines


def _completions(settings: Settings, generation: dict[str, Any] | None) -> ProvenanceCompletions:
    """Which answers were evaluated; a file is named with its hash, since files get edited."""
    if settings.completions == "canonical":
        return {"source": "canonical"}
    path = settings.completions or (generation or {}).get("completions")
    info: ProvenanceCompletions = {"source": "file" if settings.completions else "generated"}
    if path:
        info["path"] = str(path)
        try:
            info["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:  # gone since it was read: say so rather than fail the report
            info["sha256"] = None
    return info


def _where(generation: dict[str, Any]) -> str:
    source = generation.get("source")
    if source == "endpoint" and generation.get("endpoint"):
        return f"endpoint {public_url(generation['endpoint'])}"
    if source == "docker" and generation.get("image"):
        return f"SGLang in Docker ({generation['image']})"
    if source == "process":
        return "SGLang process"
    if source == "transformers":
        backend = generation.get("backend") or {}
        device = f"{backend['device']}, " if "device" in backend else ""
        return f"transformers ({device}dtype {backend.get('dtype')})"
    if source == "hook":
        return "the pytest_humaneval_generate hook"
    return str(source)
