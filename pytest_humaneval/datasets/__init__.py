"""Step 1 of the data path: the problems a run evaluates.

:mod:`.dataset` reads and validates problems in HumanEval's schema (and finds the bundled files);
:mod:`.benchmark` is what a named benchmark is, :mod:`.registry` finds them by name (the built-in ones of
:mod:`.builtin`, a ``pytest_humaneval_datasets`` hook's, an entry point's) and loads the dataset a name or a
path stands for (:func:`.registry.load_dataset`); :mod:`.livecodebench` reads LiveCodeBench's files.
"""

from __future__ import annotations

from .benchmark import Benchmark
from .dataset import Dataset, Problem

__all__ = ["Benchmark", "Dataset", "Problem"]
