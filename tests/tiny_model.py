"""Build a tiny, randomly initialised Qwen3 model directory for offline end-to-end tests.

The model is useless as a code model, but it has the real Qwen3 architecture, a byte-level BPE
tokenizer that can encode any text, the Qwen3 special tokens and a Qwen3-style chat template
(``enable_thinking`` included), so ``transformers serve`` treats it as it would a real Qwen3.
Building it takes about a second (plus importing torch and transformers) and needs no network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from tokenizers import Tokenizer

SEED = 1234

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# Small corpus: Python code in the style of HumanEval plus some English, enough for a few hundred
# merges. Any byte sequence stays encodable thanks to the byte-level initial alphabet.
_CORPUS: tuple[str, ...] = (
    '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than
    given threshold.
    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)
    False
    """
    for idx, elem in enumerate(numbers):
        for idx2, elem2 in enumerate(numbers):
            if idx != idx2:
                distance = abs(elem - elem2)
                if distance < threshold:
                    return True
    return False
''',
    '''def truncate_number(number: float) -> float:
    """ Given a positive floating point number, return its decimal part.
    >>> truncate_number(3.5)
    0.5
    """
    return number % 1.0
''',
    """def below_zero(operations: list[int]) -> bool:
    balance = 0
    for op in operations:
        balance += op
        if balance < 0:
            return True
    return False


def mean_absolute_deviation(numbers: list[float]) -> float:
    mean = sum(numbers) / len(numbers)
    return sum(abs(x - mean) for x in numbers) / len(numbers)
""",
    """import math


class Solution:
    def __init__(self, values):
        self.values = list(values)

    def solve(self, k: int) -> int:
        result = 0
        while k > 0:
            result += self.values[k % len(self.values)]
            k -= 1
        return result


if __name__ == "__main__":
    print(Solution([1, 2, 3]).solve(10))
    assert math.isclose(0.1 + 0.2, 0.3)
""",
    """def check(candidate):
    assert candidate([1, 2, 3]) == 6
    assert candidate([]) == 0
    assert candidate("hello world") == "dlrow olleh"
    try:
        candidate(None)
    except (TypeError, ValueError) as exc:
        raise AssertionError(str(exc)) from exc
""",
    "Write a Python function that returns the sum of all even numbers in a list.",
    "Complete the following function. Return only the code, without any explanation.",
    "You are a helpful assistant. The user asks a question and the assistant answers it.",
    "Here is the implementation of the function you asked for, with a short docstring and tests.",
    "The quick brown fox jumps over the lazy dog. Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000.",
    "Let me think about this problem step by step before writing the final answer.",
)


def _train_tokenizer() -> Tokenizer:
    """Train a byte-level BPE ``tokenizers.Tokenizer`` on the built-in corpus."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=768,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[END_OF_TEXT, IM_START, IM_END],
    )
    tokenizer.train_from_iterator(list(_CORPUS) * 4, trainer=trainer)
    # Like Qwen3: the thinking markers are atomic added tokens that are kept when decoding.
    tokenizer.add_tokens(
        [
            AddedToken(THINK_OPEN, special=False, normalized=False),
            AddedToken(THINK_CLOSE, special=False, normalized=False),
        ]
    )
    return tokenizer


# Qwen3's chat template, trimmed of tool-call rendering details but keeping its structure:
# ChatML turns, the reasoning of past assistant turns dropped, and `enable_thinking=False`
# pre-filling an empty think block in the generation prompt.
CHAT_TEMPLATE = """\
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\\n\\n' }}
    {%- endif %}
    {{- '# Tools\\n\\n<tools>' }}
    {%- for tool in tools %}
        {{- '\\n' }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- '\\n</tools><|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
    {%- elif message.role == 'assistant' %}
        {%- if '</think>' in content %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}
    {%- elif message.role == 'tool' %}
        {{- '<|im_start|>user\\n<tool_response>\\n' + content + '\\n</tool_response><|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}
"""


def build_tiny_qwen3(path: Path, *, max_new_tokens: int = 32, max_position_embeddings: int = 4096) -> Path:
    """Write a tiny random Qwen3 model (config, weights, tokenizer, chat template) to ``path``.

    ``max_position_embeddings`` is the context SGLang serves (``--context-length``): 40960, Qwen3's own,
    lets requests carry the plugin's default ``max_tokens``.

    The result loads with ``AutoModelForCausalLM.from_pretrained(path)`` and
    ``AutoTokenizer.from_pretrained(path)``, and is the same for every call (seeded).
    ``max_new_tokens`` goes into ``generation_config.json``; note that ``transformers serve``
    raises a default below 1024 to 1024 when a request names no ``max_tokens``.
    """
    import torch
    from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    raw_tokenizer = _train_tokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw_tokenizer,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        model_max_length=max_position_embeddings,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)

    vocab_size = len(tokenizer)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    pad_id = cast(int, tokenizer.convert_tokens_to_ids(END_OF_TEXT))  # one token: one id, not a list

    config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=max_position_embeddings,
        # Untied embeddings and a wider init make greedy decoding wander over the vocabulary
        # (tied 0.02-init weights repeat the prompt's last token forever).
        tie_word_embeddings=False,
        initializer_range=0.1,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        dtype="float32",
    )
    config.architectures = ["Qwen3ForCausalLM"]

    torch.manual_seed(SEED)
    model = Qwen3ForCausalLM(config).eval()
    # Same sampling defaults as Qwen3's own generation_config.json, with a small length.
    model.generation_config = GenerationConfig(
        do_sample=True,
        temperature=0.6,
        top_p=0.95,
        top_k=20,
        max_new_tokens=max_new_tokens,
        eos_token_id=[eos_id, pad_id],
        pad_token_id=pad_id,
    )
    model.save_pretrained(path)

    # save_pretrained writes generation_config.json; make sure it holds what we asked for.
    gen_file = path / "generation_config.json"
    gen = json.loads(gen_file.read_text(encoding="utf-8"))
    if gen.get("max_new_tokens") != max_new_tokens:
        gen["max_new_tokens"] = max_new_tokens
        gen_file.write_text(json.dumps(gen, indent=2) + "\n", encoding="utf-8")
    return path
