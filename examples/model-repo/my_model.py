"""This repo's model: a chat model loaded with transformers from a local checkpoint."""

from __future__ import annotations

import os
from functools import cache


@cache
def load(path: str) -> tuple:
    """(tokenizer, model), loaded once per process."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path)
    return tokenizer, model


def chat(prompts: list[str], think: bool = False, max_new_tokens: int = 512) -> list[str]:
    """Answer each user prompt; greedy decoding keeps the benchmark reproducible."""
    tokenizer, model = load(os.environ["MY_MODEL_DIR"])
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}],
            tokenize=False,
            add_generation_prompt=True,
            enable_thinking=think,
        )
        for p in prompts
    ]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
