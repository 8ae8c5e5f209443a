"""The repo's own unit tests: pytest-humaneval leaves them alone unless --humaneval is given."""


def test_prompt_format_is_stable() -> None:
    prompt = "def f(x):\n"
    assert f"Complete this Python function.\n\n{prompt}".endswith("def f(x):\n")
