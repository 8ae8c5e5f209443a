"""Which ``--humaneval-model-path`` is a GGUF file, and the messages a user gets around one (the real file's
loading and conversion: tests/test_real_model.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.generation import gguf


def test_a_gguf_file_or_the_one_gguf_file_of_a_directory_is_the_model(tmp_path: Path) -> None:
    file = tmp_path / "Model.Q4_K_M.GGUF"
    file.write_bytes(b"GGUF")
    assert gguf.gguf_file(file) == file
    assert gguf.gguf_file(tmp_path) == file
    (tmp_path / "README.md").write_text("x")
    assert gguf.gguf_file(tmp_path) == file


def test_a_checkpoint_directory_or_another_file_is_not_gguf(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.gguf").write_bytes(b"GGUF")  # beside a config.json: the checkpoint is the model
    assert gguf.gguf_file(tmp_path) is None
    assert gguf.gguf_file(tmp_path / "config.json") is None
    assert gguf.gguf_file(tmp_path / "missing") is None


def test_a_directory_of_several_gguf_files_asks_which_one(tmp_path: Path) -> None:
    for name in ("m.Q4_1.gguf", "m.Q8_0.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    with pytest.raises(
        HumanEvalError, match=r"holds 2 GGUF files \(m.Q4_1.gguf, m.Q8_0.gguf\): name the one"
    ):
        gguf.gguf_file(tmp_path)


def test_without_the_gguf_package_the_message_names_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf -> ImportError
    file = tmp_path / "m.gguf"
    file.write_bytes(b"GGUF")
    with pytest.raises(
        HumanEvalError, match=r"is a GGUF file, and reading it needs the gguf package: pip install gguf"
    ):
        gguf.require_gguf(file)


def test_the_conversion_is_keyed_by_the_file_and_kept_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    file = tmp_path / "m.Q4_1.gguf"
    file.write_bytes(b"GGUF")
    first = gguf.checkpoint_dir(file)
    assert first.parent == tmp_path / "cache" / "pytest-humaneval" / "gguf"
    assert first.name.startswith("m.Q4_1-")
    file.write_bytes(b"GGUF, another model")  # a changed file is converted again
    assert gguf.checkpoint_dir(file) != first
    done = gguf.checkpoint_dir(file)
    done.mkdir(parents=True)
    (done / "config.json").write_text("{}")
    said: list[str] = []
    assert gguf.converted_checkpoint(file, said.append) == done  # nothing converted, nothing imported
    assert said == [f"m.Q4_1.gguf: using its transformers checkpoint converted earlier, {done}"]
