"""What the model is asked: the default prompt template, a user's template file, or the messages hook.

The default asks for the whole function in one fenced block, because a whole function is what code
models reliably produce and what extraction handles best (a bare continuation invites prose). A benchmark
may bring its own default (MBPP's asks for a function that is not given, by name, with its example test).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from ..datasets.dataset import Problem
from ..errors import HumanEvalError, clip
from ..safe_text import json_line

#: Placeholders a template may use; ``{prompt}`` is required.
PROMPT = "{prompt}"
ENTRY_POINT = "{entry_point}"

DEFAULT_TEMPLATE = """\
Complete the following Python function.

```python
{prompt}
```

Reply with the complete function `{entry_point}` (signature and body, plus any imports or helper \
functions it needs) in a single ```python code block.
"""

Messages = list[dict[str, str]]


def load_template(path: Path | None, default: str | None = None) -> str:
    """The template text: the file given by ``--humaneval-prompt-template``, else the benchmark's own
    (``default``), else the built-in one."""
    if path is None:
        return default or DEFAULT_TEMPLATE
    flag = f"--humaneval-prompt-template={path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HumanEvalError(f"{flag}: file not found; give the path of a text file") from None
    except UnicodeDecodeError:
        raise HumanEvalError(f"{flag}: not UTF-8 text; save the template as UTF-8") from None
    except OSError as e:
        raise HumanEvalError(f"{flag}: cannot read it ({e.strerror or e})") from None
    if PROMPT not in text:
        raise HumanEvalError(
            f"{flag}: the template has no {PROMPT} placeholder; put {PROMPT} where the problem's "
            f"prompt (signature and docstring) goes ({ENTRY_POINT} is optional)"
        )
    return text


def render(template: str, problem: Problem) -> str:
    """Fill the placeholders by plain replacement, so braces in code or prose stay as they are."""
    # The entry point first: a prompt may itself contain the text "{entry_point}".
    return template.replace(ENTRY_POINT, problem.entry_point).replace(PROMPT, problem.prompt)


def build_messages(config: pytest.Config, problem: Problem, think: bool, template: str) -> Messages:
    """The chat messages for ``problem``: the ``pytest_humaneval_messages`` hook's, else the template's."""
    messages = config.hook.pytest_humaneval_messages(config=config, problem=problem, think=think)
    if messages is None:
        return [{"role": "user", "content": render(template, problem)}]
    return validate_messages(messages, problem)


def validate_messages(messages: Any, problem: Problem) -> Messages:
    """Check a hook's messages now, rather than let the server answer 400 to every request."""
    ok = (
        isinstance(messages, list)
        and messages
        and all(
            isinstance(m, dict)
            and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str)
            for m in messages
        )
    )
    if not ok:
        raise HumanEvalError(
            f"pytest_humaneval_messages returned {clip(repr(messages), 80)} for {problem.task_id}: return a "
            "non-empty list of {'role': 'system'|'user'|'assistant', 'content': str} dicts, or None "
            "for the default prompt"
        )
    return [dict(m) for m in messages]


def messages_digest(messages: Messages) -> str:
    """Hash of the exact messages: part of each cache key, so a new template or hook misses the cache."""
    data = json_line(messages, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:16]
