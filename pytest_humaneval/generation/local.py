"""In-process generation with ``transformers`` (``--humaneval-backend=transformers``): for a local model
and no server.

It answers the same :class:`~.client.Request` objects as a server does and hands each answer to the
same callback, so the cache, resume and extraction are those of the server path. What differs:

- Batches: the missing samples are sorted by prompt length (longest first, so an out-of-memory
  error shows up in the first batch) and generated ``batch`` at a time (32 on a GPU, 8 on a CPU,
  fewer when ``--humaneval-concurrency`` says so) with left padding; a batch
  stops as soon as every answer in it has ended. Its answers are cached as soon as it finishes. On
  CUDA out-of-memory the batch is halved and retried.
- Sampling: the server path's per-mode defaults (Qwen3's advice), temperature 0 meaning greedy.
  ``max_tokens`` keeps the same default on every device: a lower limit truncates answers, and a
  benchmark number must not depend on where it was computed. On a CPU, where a long answer takes
  minutes, a note says so and ``--humaneval-max-tokens`` lowers the limit.
- Seed: samples of a batch share one random stream, so "sample i gets seed + i" is impossible;
  each batch is seeded from ``--humaneval-seed`` and the cache keys of its samples instead. A run
  with the same options, model and device reproduces its answers. Without a seed, draws differ
  from run to run, as they do on a server.
- ``--humaneval-extra-body``: its ``chat_template_kwargs`` go to the chat template, every other key
  is a ``transformers`` generation parameter (e.g. ``repetition_penalty``).
- Each answer records: text after ``</think>`` as the answer and the thinking before it as
  ``reasoning_content`` (as SGLang's reasoning parser does), ``finish_reason`` ``stop`` when an end
  token was generated else ``length``, prompt and completion token counts (the end token included),
  and as latency the wall time of its batch.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from ..errors import HumanEvalError, describe
from ..options import Settings
from . import gguf
from .backend import ModelBackend, OnAnswer, say, terminal
from .client import Answer, Fatal, Request, Sampling
from .extract import THINK_CLOSE, THINK_OPEN
from .launch import generation_threads
from .progress import Progress
from .prompts import messages_digest

#: Sequences per ``generate`` call, at most (--humaneval-concurrency lowers it).
GPU_BATCH = 32
CPU_BATCH = 8
INSTALL = "pip install 'pytest-humaneval[transformers]'"

Notify = Callable[[str], None]


def check_options(settings: Settings) -> None:
    """Option errors, before the cache is read and before torch is imported."""
    if settings.endpoint:
        raise HumanEvalError(
            "--humaneval-endpoint and --humaneval-backend=transformers exclude each other: the "
            "transformers backend runs the model in this process; drop one of them"
        )
    path = settings.model_path
    if path is not None and gguf.gguf_file(path) is not None:
        gguf.require_gguf(path)
    elif path is not None and not path.is_dir():
        what = "not a directory" if path.exists() else "no such directory"
        raise HumanEvalError(
            f"--humaneval-model-path={path}: {what}. Give the directory that holds the model's config.json, "
            "weights and tokenizer (or a GGUF file), or leave the option out to load --humaneval-model by "
            "its id"
        )


def backend_key(settings: Settings) -> dict[str, Any]:
    """What shapes a local answer besides the server path's key: part of the cache key."""
    return {"name": "transformers", "dtype": settings.dtype}


def split_reasoning(text: str) -> tuple[str, str | None]:
    """``(answer, thinking)``: the thinking is what precedes ``</think>`` (an unclosed ``<think>``
    leaves no answer); text without the tags is all answer."""
    close = text.find(THINK_CLOSE)
    if close != -1:
        thinking = text[:close].strip()
        if thinking.startswith(THINK_OPEN):
            thinking = thinking[len(THINK_OPEN) :].strip()
        return text[close + len(THINK_CLOSE) :].lstrip(), thinking
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        return "", stripped[len(THINK_OPEN) :].strip()
    return text, None


class LocalModel:
    """A tokenizer and a causal LM loaded in this process, and how to batch requests through them."""

    def __init__(self, settings: Settings, sampling: Sampling, notify: Notify) -> None:
        self.torch, self.transformers = _import()
        self.settings = settings
        self.sampling = sampling
        self.source = str(settings.model_path or settings.model)
        file = gguf.gguf_file(settings.model_path) if settings.model_path else None
        where, extra = (str(file.parent), {"gguf_file": file.name}) if file else (self.source, {})
        torch = self.torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype: Any = "auto" if settings.dtype == "auto" else getattr(torch, settings.dtype)
        self.threads = torch.get_num_threads()
        if self.device == "cpu" and not os.environ.get("OMP_NUM_THREADS"):  # the user's setting stands
            self.threads = generation_threads()
            torch.set_num_threads(self.threads)
        notify(
            f"loading {self.source} with transformers on {self.device} (dtype {settings.dtype}"
            + (f", {self.threads} threads)" if self.device == "cpu" else ")")
        )
        started = time.monotonic()
        try:
            self.tokenizer = self.transformers.AutoTokenizer.from_pretrained(
                where, padding_side="left", **extra
            )
            self.model = self.transformers.AutoModelForCausalLM.from_pretrained(
                where, dtype=dtype, device_map=self.device, **extra
            )
        except Exception as e:  # OSError, ValueError, ImportError...: transformers' reasons vary
            fix = (
                "check that --humaneval-model-path holds a transformers model (config.json, weights, "
                "tokenizer) or is a GGUF file of an architecture transformers reads"
                if settings.model_path
                else "give a local directory with --humaneval-model-path, or a model id transformers can "
                "download (HF_TOKEN for gated models)"
            )
            raise HumanEvalError(
                f"cannot load {self.source} with transformers ({describe(e)}); {fix}"
            ) from None
        self.model.eval()
        self.load_s = time.monotonic() - started
        if self.tokenizer.chat_template is None:
            raise HumanEvalError(
                f"the tokenizer of {self.source} has no chat template: the transformers backend needs a chat "
                "model (or implement pytest_humaneval_generate for a base model)"
            )
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.eos_ids = self._eos_ids()
        self.template_kwargs = {
            **(sampling.extra_body.get("chat_template_kwargs") or {}),
            "enable_thinking": sampling.think,
        }
        self.generation_config = self._generation_config()
        self.batch = min(settings.concurrency, GPU_BATCH if self.device == "cuda" else CPU_BATCH)
        self._prompts: dict[str, list[int]] = {}

    # -- set-up -----------------------------------------------------------------------------------

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        if not ids:
            raise HumanEvalError(f"{self.source} names no end-of-sequence token: answers would never end")
        return sorted(set(ids))

    def _generation_config(self) -> Any:
        """The model's own generation config with this run's sampling and extra body on top."""
        s = self.sampling
        config = copy.deepcopy(self.model.generation_config)
        values: dict[str, Any] = {
            "max_new_tokens": s.max_tokens,
            "pad_token_id": self.pad_id,
            "eos_token_id": self.eos_ids,
        }
        if s.temperature > 0:
            values.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k)
            values["min_p"] = s.min_p or None
        else:  # greedy: no sampling parameter may stay behind from the model's defaults
            values.update(do_sample=False, temperature=None, top_p=None, top_k=None, min_p=None)
        extra = {k: v for k, v in s.extra_body.items() if k != "chat_template_kwargs"}
        unknown = [k for k in extra if not hasattr(config, k)]
        if unknown:
            raise HumanEvalError(
                f"--humaneval-extra-body: {', '.join(unknown)} is not a transformers generation parameter "
                "(with --humaneval-backend=transformers every key but chat_template_kwargs is one)"
            )
        config.update(**values, **extra)
        try:
            config.validate(strict=True)
        except ValueError as e:
            raise HumanEvalError(f"invalid generation parameters for transformers: {describe(e)}") from None
        return config

    def describe(self) -> dict[str, Any]:
        """What the report records about this backend."""
        return {
            "name": "transformers",
            "model_source": self.source,
            "device": str(self.model.device),
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "batch_size": self.batch,
            "threads": self.threads,
            "load_s": round(self.load_s, 3),
            "transformers": self.transformers.__version__,
            "torch": self.torch.__version__,
        }

    # -- generation -------------------------------------------------------------------------------

    def prompt(self, request: Request) -> list[int]:
        """The token ids of ``request``'s chat prompt (one per distinct prompt, shared by its samples)."""
        key = messages_digest(request.messages)
        found = self._prompts.get(key)
        if found is None:
            try:
                text = self.tokenizer.apply_chat_template(
                    request.messages, tokenize=False, add_generation_prompt=True, **self.template_kwargs
                )
            except Exception as e:  # jinja2 errors raised by the template itself
                raise HumanEvalError(
                    f"the chat template of {self.source} failed on {request.task_id}: {describe(e)}"
                ) from None
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            found = self._prompts[key] = list(ids)
        return found

    def run(self, requests: list[Request], on_answer: OnAnswer, progress: Progress) -> None:
        """Answer every request, batch by batch; each answer goes to ``on_answer`` when its batch ends."""
        ordered = sorted(requests, key=lambda r: -len(self.prompt(r)))
        if self.sampling.seed is None:  # torch starts from a fixed seed: every run would draw the same
            self.torch.seed()
        i = 0
        while i < len(ordered):
            batch = ordered[i : i + self.batch]
            for _ in batch:
                progress.sent()
            try:
                answers = self._generate(batch, progress)
            except BaseException as e:
                for _ in batch:
                    progress.abandoned()
                out_of_memory = self._out_of_memory(e)
                if out_of_memory and self.batch > 1:
                    self.batch //= 2
                    continue
                if out_of_memory:
                    raise Fatal(
                        f"out of GPU memory generating one answer of up to {self.sampling.max_tokens} "
                        "tokens; lower --humaneval-max-tokens, choose a smaller --humaneval-dtype or "
                        "free the GPU"
                    ) from None
                raise
            for request, answer in zip(batch, answers, strict=True):
                on_answer(request, answer)
            progress.finished_batch([(int(a.usage["completion_tokens"]), False) for a in answers])
            i += len(batch)

    def _generate(self, batch: list[Request], progress: Progress) -> list[Answer]:
        torch = self.torch
        prompts = [self.prompt(r) for r in batch]
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        if self.sampling.seed is not None:
            torch.manual_seed(_batch_seed(self.sampling.seed, batch))
        started = time.monotonic()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.model.device),
                attention_mask=mask.to(self.model.device),
                generation_config=self.generation_config,
                stopping_criteria=self.transformers.StoppingCriteriaList([self._steps(progress)]),
            )
        latency = time.monotonic() - started
        new = out[:, width:].tolist()
        answers = []
        for prompt, tokens in zip(prompts, new, strict=True):
            end = next((j for j, t in enumerate(tokens) if t in self.eos_ids), None)
            text = self.tokenizer.decode(tokens[:end], skip_special_tokens=True)
            content, reasoning = split_reasoning(text)
            used = len(tokens) if end is None else end + 1
            answers.append(
                Answer(
                    content=content,
                    reasoning_content=reasoning,
                    finish_reason="length" if end is None else "stop",
                    usage={
                        "prompt_tokens": len(prompt),
                        "completion_tokens": used,
                        "total_tokens": len(prompt) + used,
                    },
                    latency_s=latency,
                    attempts=1,
                )
            )
        return answers

    def _steps(self, progress: Progress) -> Any:
        """A stopping criterion that never stops: it tells ``progress`` how many tokens each decoding step
        made (one per answer of the batch that has not ended), so a batch shows its rate while it runs."""
        torch = self.torch
        eos = torch.tensor(self.eos_ids)

        class Steps(self.transformers.StoppingCriteria):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                self.ended: Any = None

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                now = torch.isin(input_ids[:, -1], eos.to(input_ids.device))
                before = self.ended if self.ended is not None else torch.zeros_like(now)
                progress.step(int((~before).sum()))
                self.ended = before | now
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

        return Steps()

    def _out_of_memory(self, error: BaseException) -> bool:
        oom = getattr(self.torch.cuda, "OutOfMemoryError", None)
        if oom is not None and isinstance(error, oom):
            self.torch.cuda.empty_cache()
            return True
        return False

    def close(self) -> None:
        """Free the model before the programs run in this process's children."""
        self.model = None
        gc.collect()
        if self.device == "cuda":
            self.torch.cuda.empty_cache()


class TransformersBackend(ModelBackend):
    """The transformers backend: :meth:`start` loads the model (its load time is start-up, as a server's
    is), :meth:`generate` answers batch by batch, :meth:`close` frees it before the programs run."""

    source = "transformers"

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        check_options(settings)  # before the sampling options' errors, the cache and torch
        super().__init__(config, settings)
        self._model: LocalModel | None = None
        self._load_s: float | None = None

    def cache_key(self) -> dict[str, Any]:
        return backend_key(self.settings)

    def describe(self) -> dict[str, Any]:
        return {"backend": backend_key(self.settings), **self.model_facts()}

    def start(self) -> None:
        if self._model is not None:
            return
        sampling = self.sampling

        def notify(line: str) -> None:
            say(self.config, f"humaneval: {line}")

        self._model = model = LocalModel(self.settings, sampling, notify)
        self._load_s = model.load_s
        if model.device == "cpu" and self.settings.max_tokens is None:
            notify(
                f"generating on the CPU with up to {sampling.max_tokens} new tokens per answer; "
                "--humaneval-max-tokens lowers that worst case"
            )

    @property
    def startup_s(self) -> float | None:
        return None if self._load_s is None else round(self._load_s, 3)

    def generate(self, requests: list[Request], on_answer: OnAnswer) -> dict[str, Any]:
        model = self._model
        if model is None:
            raise RuntimeError("TransformersBackend.generate() before start()")
        info = model.describe()
        with terminal(self.config) as out, Progress(len(requests), file=out) as progress:
            model.run(requests, on_answer, progress)
        info["final_batch_size"] = model.batch
        return {"backend": {**backend_key(self.settings), **info}}

    def close(self) -> None:
        model, self._model = self._model, None
        if model is not None:
            model.close()

    def endpoint(self) -> str:
        return "the transformers backend generated in this process: no server ran"


def _batch_seed(seed: int, batch: list[Request]) -> int:
    """A seed for one batch: the same batch of the same run gets the same random stream."""
    data = f"{seed}:" + ",".join(r.key for r in batch)
    return int(hashlib.sha256(data.encode()).hexdigest()[:15], 16)


def _import() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:
        raise HumanEvalError(
            f"--humaneval-backend=transformers needs torch and transformers ({e.name or e} is missing): "
            f"{INSTALL}"
        ) from None
    return torch, transformers
