"""The generation backends behind their one interface (:mod:`pytest_humaneval.generation.backend`): which
one :func:`~pytest_humaneval.generation.kinds.backend_for` picks, each driven through
describe/start/generate/close on its own (the server against the stub, the hook with a fake plugin,
transformers with the tiny Qwen3), and the pipeline's one path with a backend registered for the test,
which shows every answer cached as it arrives."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

import pluggy
import pytest
from openai_stub import StubConfig, stub_server
from server_support import default_settings

from pytest_humaneval import hookspecs
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.fixtures import ENDPOINT_KEY, NO_ENDPOINT_KEY, Endpoint
from pytest_humaneval.generation.backend import HookBackend, ModelBackend
from pytest_humaneval.generation.cache import CompletionCache
from pytest_humaneval.generation.client import Answer, Fatal, Request
from pytest_humaneval.generation.kinds import BACKENDS, backend_for, register_backend
from pytest_humaneval.generation.local import TransformersBackend
from pytest_humaneval.generation.pipeline import GENERATION_KEY, generate_completions
from pytest_humaneval.generation.server_backend import CACHED, SERVER_KEY, ServerBackend, stop_server
from pytest_humaneval.generation.server_lifecycle import ServerHandle

DEBUG = load_dataset("humaneval-4")
CODE = "```python\ndef f():\n    return 1\n```"


class _Plugins(pluggy.PluginManager):
    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        """As pytest does: every ``pytest_*`` attribute is a hook implementation, marked or not."""
        return super().parse_hookimpl_opts(plugin, name) or ({} if name.startswith("pytest_") else None)

    def getplugin(self, name: str) -> Any:  # pytest's spelling; no capture manager here
        return self.get_plugin(name)


class FakeConfig:
    """What generation uses of a pytest.Config: the plugin's hooks (real pluggy calls) and a stash."""

    def __init__(self, *plugins: object) -> None:
        self.pluginmanager = _Plugins("pytest")
        self.pluginmanager.add_hookspecs(hookspecs)
        for plugin in plugins:
            self.pluginmanager.register(plugin)
        self.hook = self.pluginmanager.hook
        self.stash = pytest.Stash()


def fake_config(*plugins: object) -> pytest.Config:
    """A :class:`FakeConfig`, typed as the pytest.Config it stands in for."""
    return cast(pytest.Config, FakeConfig(*plugins))


class Generates:
    """A conftest implementing pytest_humaneval_generate: ``answers`` per call (None falls through)."""

    def __init__(self, answers: Any) -> None:
        self.answers = answers
        self.calls: list[dict[str, Any]] = []

    def pytest_humaneval_generate(self, config: Any, problems: list[Any], samples: int, think: bool) -> Any:
        self.calls.append({"problems": [p.task_id for p in problems], "samples": samples, "think": think})
        return self.answers


def requests_for(dataset: Any, samples: int = 1) -> list[Request]:
    messages = [{"role": "user", "content": "write f"}]
    return [Request(p.task_id, i, f"{p.task_id}:{i}", messages) for p in dataset for i in range(samples)]


# -- which backend -----------------------------------------------------------------------------------


def test_backend_for_picks_the_hook_when_it_answers(tmp_path: Path) -> None:
    hook = Generates({"HumanEval/0": [CODE]})
    # The hook wins over any --humaneval-backend, even options that would contradict each other.
    settings = default_settings(
        tmp_path, backend="transformers", endpoint="http://127.0.0.1:9/v1", think=True
    )
    backend = backend_for(fake_config(hook), settings, DEBUG, 3)
    assert isinstance(backend, HookBackend)
    assert (backend.source, backend.model, backend.sampling) == ("hook", "pytest_humaneval_generate", None)
    assert hook.calls == [{"problems": [p.task_id for p in DEBUG], "samples": 3, "think": True}]


@pytest.mark.parametrize(
    ("options", "kind", "source"),
    [
        ({}, ServerBackend, "docker"),
        ({"server": "process"}, ServerBackend, "process"),
        ({"endpoint": "http://127.0.0.1:9/v1"}, ServerBackend, "endpoint"),
        ({"backend": "transformers"}, TransformersBackend, "transformers"),
    ],
)
def test_backend_for_falls_through_to_the_backend_option(
    tmp_path: Path, options: dict[str, Any], kind: type, source: str
) -> None:
    hook = Generates(None)  # "return None to fall through to the built-in generators"
    backend = backend_for(fake_config(hook), default_settings(tmp_path, **options), DEBUG, 1)
    assert type(backend) is kind and backend.source == source
    assert isinstance(backend, ModelBackend) and backend.sampling is not None
    assert len(hook.calls) == 1
    # Only an in-process backend adds to the cache key (a server's keys, and caches, stay as they were).
    expected = {"name": "transformers", "dtype": "auto"} if source == "transformers" else None
    assert backend.cache_key() == expected


def test_backend_for_without_a_hook_plugin_and_an_unknown_name(tmp_path: Path) -> None:
    assert type(backend_for(fake_config(), default_settings(tmp_path), DEBUG, 1)) is ServerBackend
    with pytest.raises(HumanEvalError, match=r"--humaneval-backend=vllm: choose one of server, transformers"):
        backend_for(fake_config(), default_settings(tmp_path, backend="vllm"), DEBUG, 1)


def test_option_errors_come_from_backend_for(tmp_path: Path) -> None:
    """Before the cache is read or anything starts; the transformers check before the sampling's."""
    settings = default_settings(tmp_path, backend="transformers", endpoint="http://x/v1", max_tokens=0)
    with pytest.raises(HumanEvalError, match="--humaneval-endpoint and --humaneval-backend=transformers"):
        backend_for(fake_config(), settings, DEBUG, 1)
    with pytest.raises(HumanEvalError, match="--humaneval-max-tokens must be at least 1"):
        backend_for(fake_config(), default_settings(tmp_path, max_tokens=0), DEBUG, 1)


# -- the hook ----------------------------------------------------------------------------------------


def test_hook_backend_hands_over_each_answer_with_its_code(tmp_path: Path) -> None:
    answers = {"HumanEval/0": [CODE, "no code here"], "HumanEval/1": [CODE]}
    config = fake_config()
    backend = HookBackend(config, default_settings(tmp_path), DEBUG, answers)
    got: list[tuple[Request, Answer]] = []
    with backend:
        facts = backend.generate(requests_for(DEBUG, 2), lambda r, a: got.append((r, a)))
    assert facts == {} and backend.describe() == {} and backend.startup_s is None
    assert [(r.task_id, r.sample, a.content) for r, a in got][:3] == [
        ("HumanEval/0", 0, CODE),
        ("HumanEval/0", 1, "no code here"),
        ("HumanEval/1", 0, CODE),
    ]
    records = [backend.record(DEBUG.problems[r.task_id], r, a) for r, a in got]
    assert list(records[0]) == ["task_id", "sample", "completion", "status", "reason", "raw"]
    assert records[0]["status"] == "ok" and "return 1" in records[0]["completion"]
    assert records[1]["status"] == "no_code" and records[1]["raw"] == "no code here"
    assert records[3] == {  # HumanEval/1 has one answer for two samples
        "task_id": "HumanEval/1",
        "sample": 1,
        "completion": "",
        "status": "no_code",
        "reason": "pytest_humaneval_generate returned no answer for it",
        "raw": None,
    }
    assert backend.endpoint() == "pytest_humaneval_generate produced the answers: no server ran"


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (["x"], r"returned list: return \{task_id: \[answer_text, ...\]\} \(or None to use a server\)"),
        ({"Nope/1": ["x"]}, r"answers for 'Nope/1', which are not in dataset humaneval-4"),
        ({"HumanEval/2": "x"}, r"the answers for HumanEval/2 must be a list of str"),
        ({"HumanEval/2": ["x", 3]}, r"the answers for HumanEval/2 must be a list of str"),
    ],
)
def test_hook_backend_refuses_malformed_answers(tmp_path: Path, answers: Any, message: str) -> None:
    with pytest.raises(HumanEvalError, match=r"pytest_humaneval_generate.*" + message):
        backend_for(fake_config(Generates(answers)), default_settings(tmp_path), DEBUG, 1)


# -- the server --------------------------------------------------------------------------------------


def test_server_backend_against_an_endpoint_hands_over_answers_as_they_arrive(tmp_path: Path) -> None:
    received: list[Answer] = []
    seen_by_server: list[int] = []
    lock = threading.Lock()

    def reply(body: dict[str, Any]) -> str:
        with lock:  # how many answers the plugin had been handed when this request reached the server
            seen_by_server.append(len(received))
        return CODE

    with stub_server(StubConfig(reply=reply, api_key="k")) as stub:
        settings = default_settings(
            tmp_path, endpoint=stub.base_url + "/", model="stub-model", api_key="k", concurrency=1
        )
        config = fake_config()
        backend = backend_for(config, settings, DEBUG, 1)
        assert isinstance(backend, ServerBackend)
        given = Endpoint(base_url=stub.base_url, model="stub-model", api_key="k")
        assert (
            backend.endpoint() == given
        )  # the user's server: known (and usable by tests) before any request
        assert backend.describe() == {"endpoint": stub.base_url}
        with backend:
            facts = backend.generate(requests_for(DEBUG), lambda r, a: received.append(a))
        assert backend.startup_s is None  # nothing was started
    assert seen_by_server == [
        0,
        1,
        2,
        3,
    ]  # one at a time: each answer was handed over before the next request
    assert [a.content for a in received] == [CODE] * 4 and all(a.error is None for a in received)
    assert list(facts) == ["endpoint", "connection", "dropped_params"]
    assert facts["endpoint"] == stub.base_url and facts["dropped_params"] == []
    assert config.stash.get(SERVER_KEY, None) is None


def test_server_backend_reuses_the_sessions_server_and_leaves_it_running(tmp_path: Path) -> None:
    """A started server is the session's: a second generation (--think=both) takes it over, close() leaves it
    up for the user's tests, and stop_server ends it."""
    with stub_server() as stub:
        config = fake_config()
        handle = ServerHandle(
            base_url=stub.base_url, model="stub-model", api_key=None, startup_s=12.5, args=["--port", "1"]
        )
        config.stash[SERVER_KEY] = handle
        settings = default_settings(tmp_path, server="process", model="stub-model")
        backend = backend_for(config, settings, DEBUG, 1)
        assert backend.source == "process" and backend.endpoint() == CACHED  # not started yet
        assert "endpoint" not in backend.describe()
        with backend:
            facts = backend.generate(requests_for(DEBUG)[:2], lambda r, a: None)
        assert backend.endpoint() == Endpoint(stub.base_url, "stub-model", "EMPTY")
        assert backend.startup_s == 12.5
        assert facts["server"] == {
            "startup_s": 12.5,
            "reused": False,
            "reasoning_parser": None,
            "args": ["--port", "1"],
        }
        assert config.stash[SERVER_KEY] is handle  # close() did not stop it
        stop_server(config, settings)
        assert config.stash.get(SERVER_KEY, None) is None


def test_server_backend_docker_reports_its_image(tmp_path: Path) -> None:
    settings = default_settings(tmp_path, model_path=tmp_path, image="lmsysorg/sglang:test")
    backend = backend_for(fake_config(), settings, DEBUG, 1)
    assert backend.describe() == {"model_path": str(tmp_path), "image": "lmsysorg/sglang:test"}


# -- transformers ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_transformers_backend_loads_answers_and_frees_the_model(tmp_path: Path, tiny_qwen3: Path) -> None:
    settings = default_settings(
        tmp_path, backend="transformers", model="tiny", model_path=tiny_qwen3, max_tokens=4, seed=1
    )
    backend = backend_for(fake_config(), settings, DEBUG, 1)
    assert isinstance(backend, TransformersBackend)
    assert backend.describe() == {
        "backend": {"name": "transformers", "dtype": "auto"},
        "model_path": str(tiny_qwen3),
    }
    assert backend.startup_s is None
    got: list[tuple[Request, Answer]] = []
    with backend:
        assert backend.startup_s is not None and backend.startup_s > 0  # the load: start-up, not generation
        facts = backend.generate(requests_for(DEBUG), lambda r, a: got.append((r, a)))
    assert sorted(r.task_id for r, _ in got) == sorted(DEBUG.problems)
    assert all(a.finish_reason in ("stop", "length") and a.usage["completion_tokens"] <= 4 for _, a in got)
    assert facts["backend"]["name"] == "transformers" and "device" in facts["backend"]
    assert facts["backend"]["final_batch_size"] >= 1
    with pytest.raises(RuntimeError, match="before start"):  # close() freed the model
        backend.generate(requests_for(DEBUG), lambda r, a: None)
    assert backend.endpoint() == "the transformers backend generated in this process: no server ran"


# -- the pipeline's one path, with a backend of the test's own -----------------------------------------


class Scripted(ModelBackend):
    """Answers every request with CODE; with ``fail_after`` set, stops the run (Fatal) after that many."""

    source = "scripted"
    fail_after: int | None = None
    events: list[str] = []  # noqa: RUF012 (the test reads it across instances)

    def describe(self) -> dict[str, Any]:
        return {"scripted": True}

    def start(self) -> None:
        self.events.append("start")

    def generate(self, requests: list[Request], on_answer: Any) -> dict[str, Any]:
        for n, request in enumerate(requests):
            if n == self.fail_after:
                raise Fatal("the scripted server went away")
            on_answer(request, Answer(content=CODE, finish_reason="stop", usage={"completion_tokens": 5}))
        return {"answered": len(requests)}

    def close(self) -> None:
        self.events.append("close")

    def endpoint(self) -> str:
        return "scripted: no server"


@pytest.fixture
def scripted() -> Any:
    register_backend("scripted")(Scripted)
    Scripted.events = []
    yield Scripted
    del BACKENDS["scripted"]
    Scripted.fail_after = None


def test_pipeline_caches_every_answer_as_it_arrives_then_resumes(tmp_path: Path, scripted: Any) -> None:
    settings = default_settings(tmp_path, backend="scripted", model="m")
    config = fake_config()
    scripted.fail_after = 3
    with pytest.raises(
        HumanEvalError, match=r"went away\. The 3 answers that arrived are cached in .*\.cache\.jsonl"
    ):
        generate_completions(config, settings, DEBUG, 2)
    assert scripted.events == ["start", "close"]  # closed on the way out
    (cache_file,) = (tmp_path / "out" / "completions").glob("*.cache.jsonl")
    assert len(CompletionCache(cache_file).load()) == 3

    scripted.fail_after = None
    path = generate_completions(config, settings, DEBUG, 2)
    meta = config.stash[GENERATION_KEY]
    assert (meta["source"], meta["cached"], meta["requested"]) == ("scripted", 3, 5)
    assert meta["scripted"] is True and meta["answered"] == 5  # describe()'s and generate()'s facts
    assert meta["statuses"] == {"ok": 8} and meta["usage"]["completion_tokens"] == 40
    assert len(path.read_text().splitlines()) == 8
    assert config.stash[NO_ENDPOINT_KEY] == "scripted: no server"

    generate_completions(config, settings, DEBUG, 2)
    assert scripted.events == ["start", "close"] * 2  # all cached: nothing started the third time
    assert "generation_wall_s" not in config.stash[GENERATION_KEY]


def test_pipeline_records_the_endpoint_for_the_fixture(tmp_path: Path) -> None:
    with stub_server() as stub:
        config = fake_config()
        settings = default_settings(tmp_path, endpoint=stub.base_url, model="stub-model")
        generate_completions(config, settings, DEBUG, 1)
    assert config.stash[ENDPOINT_KEY] == Endpoint(stub.base_url, "stub-model", "EMPTY")
    assert NO_ENDPOINT_KEY not in config.stash
    assert config.stash[GENERATION_KEY]["source"] == "endpoint"


def test_pipeline_hook_writes_its_own_file_and_no_cache(tmp_path: Path) -> None:
    config = fake_config(Generates({p.task_id: [CODE] for p in DEBUG}))
    path = generate_completions(config, default_settings(tmp_path, think=True), DEBUG, 1)
    assert path == tmp_path / "out" / "completions" / "hook-think.humaneval-4.jsonl"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no cache file
    meta = config.stash[GENERATION_KEY]
    assert sorted(meta) == sorted(
        ["model", "source", "think", "samples_per_problem", "statuses", "usage", "completions", "wall_s"]
    )
    assert config.stash[NO_ENDPOINT_KEY] == "pytest_humaneval_generate produced the answers: no server ran"
