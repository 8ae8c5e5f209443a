"""Plug this repo's own model into pytest-humaneval: the plugin sends it each problem, extracts the
code from the answers, runs them in its sandbox and reports pass@k."""

from __future__ import annotations

import os


def pytest_humaneval_generate(config, problems, samples, think):
    """Answer every problem with my_model; return None to fall back to the plugin's own generation
    (SGLang, or --humaneval-endpoint) when no local checkpoint is configured."""
    if not os.environ.get("MY_MODEL_DIR"):
        return None
    import my_model

    max_tokens = int(config.getini("humaneval_max_tokens") or 512)
    ask = "Complete this Python function. Answer with one ```python block.\n\n"
    prompts = [ask + p.prompt for p in problems]
    answers: dict[str, list[str]] = {p.task_id: [] for p in problems}
    for _ in range(samples):
        texts = my_model.chat(prompts, think=think, max_new_tokens=max_tokens)
        for p, text in zip(problems, texts, strict=True):
            answers[p.task_id].append(text)
    return answers
