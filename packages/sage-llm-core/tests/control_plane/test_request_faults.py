"""One request's fault ends that request alone; only engine-fatal faults end the engine.

Through the Python API (``ControlPlaneManager.generate``) on the tiny model, on the scripted
engine, and on the vLLM backend's checks with a stand-in tokenizer.
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sage.llm.control_plane import (
    ControlPlaneManager,
    EngineFailedError,
    InvalidRequestError,
    RequestFailedError,
)
from sage.llm.control_plane.faults import is_engine_fatal
from sage.llm.testing.control_plane import ScriptedBackend

KNOWN = {"prompt": "abc abc abc", "max_tokens": 8}


@pytest.fixture(scope="module")
def tiny_cp(tiny_dir: Path) -> Any:
    cp = ControlPlaneManager("never", load_entry_points=False)
    eid = cp.start_engine(str(tiny_dir), "ngram:n=2")
    cp.known = cp.generate(**KNOWN).text
    yield cp
    cp.shutdown()
    assert eid


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"prompt": [10**9]}, "prompt", "outside this model's vocabulary"),
        ({"prompt": [80]}, "prompt", r"ids 0 to 79"),
        ({"prompt": [2**70]}, "prompt", "outside this model's vocabulary"),
        ({"prompt": [-5]}, "prompt", "integer >= 0"),
        ({"prompt": "\ud800 hi"}, "prompt", "lone surrogate"),
        ({"messages": [{"role": "user", "content": "\ud800"}]}, "messages", "lone surrogate"),
        ({"prompt": "x", "seed": 2**64}, "seed", "seed must be an integer from 0"),
        ({"prompt": "abc " * 300}, "prompt", "context is 1024 tokens"),
        ({"prompt": "abc", "max_tokens": 1022}, "max_tokens", "at most 1021"),
        ({"prompt": "x", "stop": [""]}, "stop", "empty"),
    ],
)
def test_a_request_the_model_cannot_serve_is_refused_and_the_engine_stays_ready(
    tiny_cp: Any, params: dict[str, Any], param: str, message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message) as info:
        tiny_cp.generate(**params)
    assert info.value.param == param
    assert [e["state"] for e in tiny_cp.list_engines()] == ["ready"]
    assert tiny_cp.generate(**KNOWN).text == tiny_cp.known


def test_an_unexpected_error_in_one_request_fails_it_alone(tiny_dir: Path) -> None:
    from sage.llm.control_plane.transformers_backend import TransformersBackend

    armed = {"now": False}

    class FlakyBackend(TransformersBackend):
        """The model raises KeyError once when armed (a bug met by one request)."""

        def build_engine(self, engine_class: Any) -> Any:
            engine = super().build_engine(engine_class)
            forward = engine.model.forward

            @functools.wraps(forward)  # keeps the signature the engine inspects
            def flaky(*args: Any, **kwargs: Any) -> Any:
                if armed.pop("now", False):
                    raise KeyError("a bug")
                return forward(*args, **kwargs)

            engine.model.forward = flaky
            return engine

    cp = ControlPlaneManager("never", load_entry_points=False)
    try:
        eid = cp.start_engine(str(tiny_dir), engine=FlakyBackend)
        first = cp.generate(engine_id=eid, **KNOWN).text
        armed["now"] = True
        with pytest.raises(RequestFailedError, match="KeyError") as info:
            cp.generate(engine_id=eid, **KNOWN)
        assert info.value.status == 500
        assert isinstance(info.value.__cause__, KeyError)
        assert cp.engine_info(eid)["state"] == "ready"
        assert cp.generate(engine_id=eid, **KNOWN).text == first
        assert cp.engine_info(eid)["metrics"]["requests"]["error"] == 1
    finally:
        cp.shutdown()


def test_the_scripted_engine_fails_one_request_but_dies_of_memory_errors(
    cp: ControlPlaneManager,
) -> None:
    boom = {"bug": RuntimeError("index out of range"), "oom": MemoryError()}
    eid = cp.start_engine("m", engine=ScriptedBackend, raise_on=boom)
    with pytest.raises(RequestFailedError):
        cp.generate(engine_id=eid, prompt="bug")
    assert cp.generate(engine_id=eid, prompt="abc").text == "cba"
    with pytest.raises(EngineFailedError, match="MemoryError"):
        cp.generate(engine_id=eid, prompt="oom")
    assert cp.engine_info(eid)["state"] == "failed"


def fatal_errors() -> list[BaseException]:
    torch = pytest.importorskip("torch")
    return [
        MemoryError(),
        KeyboardInterrupt(),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        torch.AcceleratorError("CUDA error: an illegal memory access was encountered"),
        RuntimeError("CUDA error: device-side assert triggered"),
        RuntimeError("NCCL error in: ProcessGroupNCCL.cpp"),
        type("EngineDeadError", (Exception,), {})("EngineCore encountered an issue."),
    ]


def test_engine_fatal_errors_are_told_from_one_requests_errors() -> None:
    assert all(is_engine_fatal(exc) for exc in fatal_errors())
    own = [
        IndexError("index out of range in self"),
        TypeError("TextEncodeInput must be Union[...]"),
        RuntimeError("Overflow when unpacking long long"),
        RuntimeError("probability tensor contains either `inf`, `nan` or element < 0"),
        KeyError("x"),
        ValueError("bad"),
    ]
    assert not any(is_engine_fatal(exc) for exc in own)


class StubTokenizer:
    """Enough of a vLLM tokenizer: characters to ids 1..26, a chat template."""

    max_token_id = 99
    chat_template = "{{ messages }}"

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [1 + (ord(c) % 26) for c in text]}

    def apply_chat_template(self, messages: list[Any], **_: Any) -> str:
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages)


def test_the_vllm_backend_checks_vocabulary_and_context_before_queueing(tmp_path: Path) -> None:
    from sage.llm.control_plane import GenerationRequest
    from sage.llm.control_plane.vllm_backend import VLLMBackend

    backend = VLLMBackend(str(tmp_path), None, {})
    backend.tokenizer = StubTokenizer()
    backend.vocab_size = 128
    backend.engine = SimpleNamespace(model_config=SimpleNamespace(max_model_len=64))
    assert backend.check_request(GenerationRequest(prompt="abc", max_tokens=4)) == [20, 21, 22]
    refused = [
        (GenerationRequest(prompt=[128]), "prompt", "ids 0 to 127"),
        (GenerationRequest(prompt="a" * 64), "prompt", "context is 64 tokens"),
        (GenerationRequest(prompt="a" * 10, max_tokens=60), "max_tokens", "at most 54"),
        (GenerationRequest(messages=[{"role": "user", "content": "a" * 80}]), "messages", "64"),
    ]
    for request, param, message in refused:
        with pytest.raises(InvalidRequestError, match=message) as info:
            backend.check_request(request)
        assert info.value.param == param
