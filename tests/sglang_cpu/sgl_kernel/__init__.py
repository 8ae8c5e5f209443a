"""A pure-PyTorch stand-in for the CUDA-only ``sgl_kernel`` package, enough for SGLang's CPU decode path.

Test infrastructure (see ../README.md): SGLang imports these names at start-up; a text model served with
the ``torch_native`` attention backend calls only :func:`assign_req_to_token_pool_cpu`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import torch

__version__ = "0.0.0+pytest-humaneval-cpu"


def assign_req_to_token_pool_cpu(
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    start_offset: torch.Tensor,
    end_offset: torch.Tensor,
    out_cache_loc: torch.Tensor,
    pool_len: int,
) -> None:
    """Row ``req_pool_indices[i]`` of ``req_to_token`` gets, from column ``start_offset[i]`` to
    ``end_offset[i]``, the next ``end_offset[i] - start_offset[i]`` entries of ``out_cache_loc``, in order."""
    starts = start_offset.tolist()
    ends = end_offset.tolist()
    rows = req_pool_indices.tolist()
    taken = 0
    for row, start, end in zip(rows, starts, ends, strict=True):
        length = end - start
        if length <= 0:
            continue
        if end > pool_len:
            raise ValueError(f"request row {row}: end offset {end} is past the pool's {pool_len} columns")
        req_to_token[row, start:end] = out_cache_loc[taken : taken + length].to(req_to_token.dtype)
        taken += length


def _unavailable(name: str) -> Callable[..., NoReturn]:
    def kernel(*args: object, **kwargs: object) -> NoReturn:
        raise NotImplementedError(
            f"sgl_kernel.{name}: the CPU test stand-in implements only assign_req_to_token_pool_cpu "
            "(no speculative decoding, no hybrid attention caches)"
        )

    kernel.__name__ = name
    return kernel


copy_all_layer_kv_cache_cpu = _unavailable("copy_all_layer_kv_cache_cpu")
assign_draft_cache_locs_contiguous_cpu = _unavailable("assign_draft_cache_locs_contiguous_cpu")
assign_extend_cache_locs_cpu = _unavailable("assign_extend_cache_locs_cpu")
build_draft_decode_metadata_cpu = _unavailable("build_draft_decode_metadata_cpu")
build_tree_kernel_efficient_cpu = _unavailable("build_tree_kernel_efficient_cpu")
fill_accept_out_cache_loc_cpu = _unavailable("fill_accept_out_cache_loc_cpu")
fill_bonus_tokens_cpu = _unavailable("fill_bonus_tokens_cpu")
rotate_input_ids_cpu = _unavailable("rotate_input_ids_cpu")
verify_tree_greedy_cpu = _unavailable("verify_tree_greedy_cpu")
