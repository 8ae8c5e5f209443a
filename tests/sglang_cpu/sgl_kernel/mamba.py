"""The Mamba kernels SGLang imports by name on the CPU; a text Qwen3 never calls them (test stand-in)."""

from __future__ import annotations

from . import _unavailable

causal_conv1d_fn_cpu = _unavailable("causal_conv1d_fn_cpu")
causal_conv1d_update_cpu = _unavailable("causal_conv1d_update_cpu")
chunk_gated_delta_rule_cpu = _unavailable("chunk_gated_delta_rule_cpu")
