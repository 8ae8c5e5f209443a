"""What every pytest process of a run shares, controller and workers alike: the stash keys the run's
settings travel under, the parse of the completions, the sandbox as each process builds it, and the format
of a failing item's report section. Neutral ground: the controller (:mod:`.controller`) and the worker side
(:mod:`.items`) both import it, and neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .completions import Sample, canonical, read_completions
from .datasets.dataset import Dataset
from .evaluation import preload_for
from .options import Settings
from .safe_text import printable
from .sandbox import Limits, Sandbox, make_sandbox
from .time_limits import TimeLimits

if TYPE_CHECKING:
    from .items import Evaluator

#: Set on each process: where the completions come from ('canonical' or a file path).
COMPLETIONS_KEY = pytest.StashKey[str]()
#: --think=both: each mode's completions file ({"think": path, "no-think": path}); absent with one mode.
MODES_KEY = pytest.StashKey[dict[str, str]]()
#: The process's evaluator (a worker, or the single process; none on an xdist controller).
EVALUATOR_KEY: pytest.StashKey[Evaluator] = pytest.StashKey()
#: Identifies this pytest run's sandbox containers (labels), the same on the controller and all workers.
RUN_ID_KEY = pytest.StashKey[str]()
SAMPLES_KEY = pytest.StashKey[dict[str, dict[str, list[Sample]]]]()
#: Each problem's time limit: set by the controller before any item runs, handed to xdist workers.
TIME_LIMITS_KEY = pytest.StashKey[TimeLimits]()


def samples_from(config: pytest.Config, source: str, dataset: Dataset) -> dict[str, list[Sample]]:
    """The completions of ``source`` ('canonical' or a file), parsed once per process: the controller's
    validation, the sample count at collection and the evaluator all read the same parse."""
    parsed = config.stash.setdefault(SAMPLES_KEY, {})
    if source not in parsed:
        parsed[source] = (
            canonical(dataset) if source == "canonical" else read_completions(Path(source), dataset)
        )
    return parsed[source]


def run_sandbox(
    settings: Settings, dataset: Dataset, run_id: str, concurrency: int, preload: bool = True
) -> Sandbox:
    """A sandbox (not started) as every process of the run makes it: the benchmark's memory limit (or
    --humaneval-memory), the modules its tests import preloaded, ``concurrency`` programs at once; the
    docker one also takes its image and the run id for its containers' labels."""
    options: dict[str, Any] = {"concurrency": concurrency}
    if settings.sandbox == "docker":
        options.update(image=settings.sandbox_image, run_id=run_id)
    return make_sandbox(
        settings.sandbox,
        Limits(memory_mb=settings.memory_mb(dataset.memory_mb)),
        preload=preload_for(dataset) if preload else (),
        **options,
    )


#: The report section of a failing item: ``--- completion ---``, the completion, then the program's output.
SECTION_NAME = "Captured stdout call"
SECTION_HEAD = "--- completion ---\n"
_OUTPUT_HEAD = "\n--- program output ---\n"


def program_section(completion: str, output: str) -> str:
    """The text of a failing item's report section (JUnit system-out, pytest's failure sections), printable:
    what the model wrote and the program printed reaches terminals and CI pages."""
    return f"{SECTION_HEAD}{printable(completion)}{_OUTPUT_HEAD}{printable(output)}"


def output_from_section(text: str, completion: str) -> str | None:
    """The program output in a section made by :func:`program_section` for ``completion`` (None if it
    is not one): exact, whatever the completion or the output contain."""
    head = program_section(completion, "")
    return text[len(head) :] if text.startswith(head) else None
