"""Declares torchvision's ``nms`` and ``qnms`` op schemas before torchvision is imported (test infrastructure).

torchvision's PyPI wheel is built against CUDA torch; against the CPU build its import fails with
``operator torchvision::nms does not exist`` because it registers fake kernels for ops whose schemas its
compiled library could not define. A text model never calls either op, so their schemas are enough.
Imported by a ``.pth`` file in the SGLang test venv (see ``.ci/sglang-up``); the import is lazy, so a
Python that never imports torchvision does not load torch for it.
"""

from __future__ import annotations

import importlib.abc
import sys
from types import ModuleType

SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library = None  # kept alive: the definitions last as long as the Library object


def declare() -> None:
    global _library
    if _library is not None:
        return
    import torch

    try:
        library = torch.library.Library("torchvision", "DEF")
        for schema in SCHEMAS:
            library.define(schema)
    except RuntimeError:  # already defined (a torchvision built for this torch): nothing to add
        return
    _library = library


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    """Runs :func:`declare` the first time ``torchvision`` is imported; finds nothing itself."""

    done = False

    def find_spec(self, name: str, path: object = None, target: ModuleType | None = None) -> None:
        if name == "torchvision" and not self.done:
            self.done = True  # before declare(): importing torch must not come back here
            declare()
        return None


def install() -> None:
    if not any(isinstance(finder, _BeforeTorchvision) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BeforeTorchvision())


install()
