"""Faults over HTTP with the scripted engine: overload, disconnects, deaths, stops, timeouts.

Each test checks the error a client gets and that every request ends exactly once.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from serve_helpers import openai_client

from sage.llm.control_plane import ControlPlaneManager
from sage.llm.server import ServerThread
from sage.llm.server.security import ServerSettings
from sage.llm.testing.control_plane import ScriptedBackend


@pytest.fixture
def served() -> Iterator[tuple[ControlPlaneManager, Any]]:
    cp = ControlPlaneManager("never", load_entry_points=False, request_timeout_s=None)
    with ServerThread(cp) as server:
        yield cp, server
    cp.shutdown(timeout=5)


def wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def outcomes(cp: ControlPlaneManager, eid: str) -> dict[str, int]:
    result: dict[str, int] = cp.engine_info(eid)["metrics"]["requests"]
    return result


def test_full_queue_is_a_429_overloaded(served: tuple[ControlPlaneManager, Any]) -> None:
    cp, server = served
    gate, started = threading.Event(), threading.Event()
    eid = cp.start_engine(
        "m", engine=ScriptedBackend, served_model_name="s", max_queue=1, gate=gate, started=started
    )
    running = cp.submit(engine_id=eid, prompt="one")
    assert started.wait(5)
    queued = cp.submit(engine_id=eid, prompt="two")
    with pytest.raises(openai.RateLimitError) as info:
        openai_client(server.url).completions.create(model="s", prompt="three", max_tokens=3)
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "overloaded"
    assert int(info.value.response.headers["retry-after"]) >= 1
    gate.set()
    assert (running.result(5).text, queued.result(5).text) == ("eno", "owt")
    assert outcomes(cp, eid)["rejected"] == 1


def test_a_client_that_disconnects_mid_stream_cancels_its_request(
    served: tuple[ControlPlaneManager, Any],
) -> None:
    cp, server = served
    eid = cp.start_engine("m", engine=ScriptedBackend, served_model_name="s", delay_s=0.02)
    body = {"model": "s", "prompt": "x" * 200, "max_tokens": 200, "stream": True}
    with httpx.stream("POST", server.url + "/v1/completions", json=body) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    wait_for(lambda: outcomes(cp, eid)["cancelled"] == 1)
    assert outcomes(cp, eid)["ok"] == 0
    after = openai_client(server.url).completions.create(model="s", prompt="ok", max_tokens=5)
    assert after.choices[0].text == "ko"
    assert outcomes(cp, eid) == {**outcomes(cp, eid), "ok": 1, "cancelled": 1, "error": 0}


def test_an_engine_dying_mid_stream_ends_the_stream_with_an_error(
    served: tuple[ControlPlaneManager, Any],
) -> None:
    cp, server = served
    eid = cp.start_engine("m", engine=ScriptedBackend, served_model_name="s", die_after_tokens=5)
    stream = openai_client(server.url).completions.create(
        model="s", prompt="abcdefghij", max_tokens=10, stream=True
    )
    received: list[str] = []

    def read_all() -> None:
        received.extend(chunk.choices[0].text for chunk in stream)

    with pytest.raises(openai.APIError, match="died after 5 tokens"):
        read_all()
    assert "".join(received) == "jihgf"
    assert cp.engine_info(eid)["state"] == "failed"
    with pytest.raises(openai.APIStatusError) as info:
        openai_client(server.url).completions.create(model="s", prompt="again", max_tokens=3)
    assert info.value.status_code == 503


def test_stop_without_drain_while_requests_run(served: tuple[ControlPlaneManager, Any]) -> None:
    cp, server = served
    started = threading.Event()
    eid = cp.start_engine(
        "m", engine=ScriptedBackend, served_model_name="s", gate=threading.Event(), started=started
    )
    client = openai_client(server.url)
    errors: list[int] = []

    def call() -> None:
        try:
            client.completions.create(model="s", prompt="blocked", max_tokens=3)
        except openai.APIStatusError as exc:
            errors.append(exc.status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    assert started.wait(5)
    wait_for(lambda: cp.engine_info(eid)["queue_depth"] == 2)
    admin = ServerSettings(api_keys=("k",), enable_engine_admin=True)
    with ServerThread(cp, settings=admin) as admin_server:  # the admin route is off by default
        stop = httpx.post(
            admin_server.url + f"/v1/engines/{eid}/stop",
            json={"drain": False},
            headers={"Authorization": "Bearer k"},
            timeout=30,
        )
    assert stop.json()["state"] == "stopped"
    for t in threads:
        t.join(10)
    assert errors == [503, 503, 503]
    assert outcomes(cp, eid)["error"] == 3
    assert httpx.get(server.url + "/health").status_code == 503
    again = httpx.post(server.url + "/v1/completions", json={"model": "s", "prompt": "x"})
    assert again.status_code == 503
    assert int(again.headers["retry-after"]) >= 1


def test_a_request_timeout_is_a_408(served: tuple[ControlPlaneManager, Any]) -> None:
    cp, server = served
    gate = threading.Event()
    eid = cp.start_engine("m", engine=ScriptedBackend, served_model_name="s", gate=gate)
    cp.request_timeout_s = 0.2
    for engine in cp.engines().values():
        engine.default_timeout_s = 0.2
    with pytest.raises(openai.APIStatusError) as info:
        openai_client(server.url).completions.create(model="s", prompt="slow", max_tokens=3)
    assert info.value.status_code == 408
    gate.set()
    assert outcomes(cp, eid)["timeout"] == 1


def post_then_hang_up(url: str, body: dict[str, Any], until: Callable[[], bool]) -> None:
    """Send a request on a raw socket, wait until ``until()``, then close the connection
    without reading the answer: a client that timed out or was killed."""
    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    head = (
        f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
        f"\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + payload)
        wait_for(until)


def test_a_client_that_goes_away_cancels_its_running_non_streaming_request(
    served: tuple[ControlPlaneManager, Any],
) -> None:
    cp, server = served
    started = threading.Event()
    eid = cp.start_engine(
        "m", engine=ScriptedBackend, served_model_name="s", delay_s=0.02, started=started
    )
    body = {"model": "s", "prompt": "x" * 1000, "max_tokens": 1000}  # 20 s of tokens
    post_then_hang_up(server.url, body, started.is_set)
    wait_for(lambda: outcomes(cp, eid)["cancelled"] == 1)  # not its 1000 tokens later
    after = openai_client(server.url).completions.create(model="s", prompt="ok", max_tokens=5)
    assert after.choices[0].text == "ko"
    assert (outcomes(cp, eid)["ok"], outcomes(cp, eid)["cancelled"]) == (1, 1)


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_goes_away_while_queued_never_runs(
    served: tuple[ControlPlaneManager, Any], stream: bool
) -> None:
    cp, server = served
    gate, started = threading.Event(), threading.Event()
    eid = cp.start_engine(
        "m", engine=ScriptedBackend, served_model_name="s", gate=gate, started=started
    )
    running = cp.submit(engine_id=eid, prompt="one")
    assert started.wait(5)
    body = {"model": "s", "prompt": "two", "stream": stream}
    post_then_hang_up(server.url, body, lambda: cp.engine_info(eid)["queue_depth"] == 1)
    wait_for(lambda: outcomes(cp, eid)["cancelled"] == 1)
    assert cp.engine_info(eid)["queue_depth"] == 0
    gate.set()
    assert running.result(5).text == "eno"
    wait_for(lambda: cp.engine_info(eid)["running"] == 0)
    assert (outcomes(cp, eid)["ok"], outcomes(cp, eid)["cancelled"]) == (1, 1)


def test_a_bug_met_by_one_request_is_a_500_and_the_engine_goes_on(
    served: tuple[ControlPlaneManager, Any],
) -> None:
    cp, server = served
    eid = cp.start_engine(
        "m", engine=ScriptedBackend, served_model_name="s", raise_on={"bug": KeyError("x")}
    )
    response = httpx.post(server.url + "/v1/completions", json={"model": "s", "prompt": "bug"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert "KeyError" in error["message"]
    assert "Traceback" not in response.text
    assert httpx.get(server.url + "/health").status_code == 200
    after = openai_client(server.url).completions.create(model="s", prompt="ok", max_tokens=5)
    assert after.choices[0].text == "ko"
    assert cp.engine_info(eid)["state"] == "ready"
