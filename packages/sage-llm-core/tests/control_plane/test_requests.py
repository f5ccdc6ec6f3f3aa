"""Requests: validation, concurrency, overload, cancellation, timeouts and streaming."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sage.llm.control_plane import (
    ControlPlaneManager,
    GenerationRequest,
    InvalidRequestError,
    OverloadedError,
    RequestCancelledError,
    RequestTimeoutError,
)
from sage.llm.testing.control_plane import ScriptedBackend, scripted_text


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        ({}, "prompt", "exactly one of prompt and messages"),
        ({"prompt": "x", "messages": [{"role": "user", "content": "x"}]}, "prompt", "exactly one"),
        ({"prompt": ""}, "prompt", "prompt is empty"),
        ({"prompt": []}, "prompt", "empty list"),
        ({"prompt": [1, "a"]}, "prompt", r"prompt\[1\] must be a token id"),
        ({"prompt": [-5]}, "prompt", r"prompt\[0\] must be a token id \(an integer >= 0\)"),
        ({"prompt": 5}, "prompt", "string or a list of token ids"),
        ({"prompt": True}, "prompt", "string or a list of token ids"),
        ({"prompt": b"x"}, "prompt", "string or a list of token ids"),
        ({"prompt": "\ud800 hi"}, "prompt", "lone surrogate"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens", "max_tokens must be an integer from 1"),
        ({"prompt": "x", "max_tokens": True}, "max_tokens", "max_tokens must be an integer"),
        ({"prompt": "x", "max_tokens": 2**64}, "max_tokens", "integer from 1 to"),
        ({"prompt": "x", "seed": 2**63}, "seed", "seed must be an integer from 0 to"),
        ({"prompt": "x", "seed": -1}, "seed", "seed must be an integer from 0"),
        ({"prompt": "x", "top_k": 2**70}, "top_k", "top_k must be an integer from 1"),
        ({"prompt": "x", "temperature": -1}, "temperature", "finite number between"),
        ({"prompt": "x", "temperature": float("nan")}, "temperature", "finite number"),
        ({"prompt": "x", "temperature": 10**400}, "temperature", "finite number"),
        ({"prompt": "x", "top_p": 0}, "top_p", "top_p must be > 0"),
        ({"prompt": "x", "top_p": float("inf")}, "top_p", "finite number"),
        ({"prompt": "x", "stop": "END"}, "stop", "stop must be a list"),
        ({"prompt": "x", "stop": [""]}, "stop", r"stop\[0\] is empty"),
        ({"prompt": "x", "stop": ["\udfff"]}, "stop", "lone surrogate"),
        ({"prompt": "x", "stop": [5]}, "stop", r"stop\[0\] must be a string"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages", "role must be"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages", "content must be a string"),
        ({"messages": [{"role": "user", "content": "\ud800"}]}, "messages", "lone surrogate"),
        ({"messages": []}, "messages", "messages is empty"),
        ({"messages": "hi"}, "messages", "must be a list"),
    ],
)
def test_bad_requests_name_the_field(fields: dict, param: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as info:
        GenerationRequest(**fields)
    assert info.value.param == param


def test_many_concurrent_submitters_each_get_their_own_completion(
    cp: ControlPlaneManager,
) -> None:
    eid = cp.start_engine("m", engine=ScriptedBackend)
    prompts = [f"prompt number {i}" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda p: cp.generate(engine_id=eid, prompt=p).text, prompts))
    assert texts == [scripted_text(p, 128) for p in prompts]
    assert cp.engine_info(eid)["metrics"]["requests"]["ok"] == 40


def test_a_full_queue_is_refused_with_overloaded(cp: ControlPlaneManager) -> None:
    gate, started = threading.Event(), threading.Event()
    eid = cp.start_engine("m", engine=ScriptedBackend, max_queue=2, gate=gate, started=started)
    running = cp.submit(engine_id=eid, prompt="run")
    assert started.wait(5)
    queued = [cp.submit(engine_id=eid, prompt=f"q{i}") for i in range(2)]
    with pytest.raises(OverloadedError, match="max_queue=2"):
        cp.submit(engine_id=eid, prompt="one too many")
    gate.set()
    assert [h.result(5).text for h in [running, *queued]] == ["nur", "0q", "1q"]
    assert cp.engine_info(eid)["metrics"]["requests"]["rejected"] == 1


def test_cancel_queued_and_running_requests(cp: ControlPlaneManager) -> None:
    gate, started = threading.Event(), threading.Event()
    eid = cp.start_engine("m", engine=ScriptedBackend, gate=gate, started=started)
    running = cp.submit(engine_id=eid, prompt="running")
    queued = cp.submit(engine_id=eid, prompt="queued")
    assert started.wait(5)
    assert queued.cancel()
    with pytest.raises(RequestCancelledError):
        queued.result(0)  # a queued request ends at once
    assert running.cancel()
    with pytest.raises(RequestCancelledError):
        running.result(5)
    assert not running.cancel()  # already finished
    gate.set()
    assert cp.generate(engine_id=eid, prompt="after").text == "retfa"
    assert cp.engine_info(eid)["metrics"]["requests"]["cancelled"] == 2


def test_timeouts_while_queued_and_while_running(cp: ControlPlaneManager) -> None:
    gate = threading.Event()
    eid = cp.start_engine("m", engine=ScriptedBackend, gate=gate)
    running = cp.submit(engine_id=eid, prompt="slow", timeout_s=0.3)
    queued = cp.submit(engine_id=eid, prompt="waits", timeout_s=0.2)
    with pytest.raises(RequestTimeoutError, match="in the queue"):
        queued.result(5)  # the reaper ends it although the engine is busy
    with pytest.raises(RequestTimeoutError, match="exceeded its timeout"):
        running.result(5)
    gate.set()
    assert cp.engine_info(eid)["metrics"]["requests"]["timeout"] == 2


def test_streaming_from_threads_and_from_asyncio(cp: ControlPlaneManager) -> None:
    eid = cp.start_engine("m", engine=ScriptedBackend, delay_s=0.002)
    handle = cp.submit(engine_id=eid, prompt="stream me")
    events = list(handle.events(timeout=5))
    assert "".join(e.delta for e in events) == "em maerts"
    assert events[-1].completion is not None
    assert events[-1].completion.text == "em maerts"

    async def collect() -> str:
        h = cp.submit(engine_id=eid, prompt="async")
        return "".join([e.delta async for e in h.aevents()])

    assert asyncio.run(collect()) == "cnysa"


def test_chat_messages_reach_the_engine(cp: ControlPlaneManager) -> None:
    eid = cp.start_engine("m", engine=ScriptedBackend)
    done = cp.generate(engine_id=eid, messages=[{"role": "user", "content": "hi there"}])
    assert done.text == "ereht ih"
