"""Shutdown: SIGTERM and SIGINT drain the server, then the engines stop and the process exits 0.

While draining, new requests get 503 with ``Retry-After``; requests in flight finish within
the shutdown timeout, or end with an error a client can read (a final SSE error event and
``[DONE]``, a 503 JSON body). The scripted engine holds its requests at a gate, so which
request is running or queued when the shutdown begins is fixed, not timed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from serve_helpers import free_port

from sage.llm.control_plane import ControlPlaneManager
from sage.llm.server import ServerThread
from sage.llm.testing.control_plane import ScriptedBackend


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


class Clients:
    """A running stream and a queued non-streaming request, each read on its own thread."""

    def __init__(self, url: str, running: Callable[[], bool], queued: Callable[[], bool]):
        self.url = url
        self.lines: list[str] = []
        self.answer: httpx.Response | None = None
        self.threads = [
            threading.Thread(target=self._stream, daemon=True),
            threading.Thread(target=self._post, daemon=True),
        ]
        self.threads[0].start()
        wait_for(running)
        self.threads[1].start()
        wait_for(queued)

    def _stream(self) -> None:
        body = {"model": "s", "prompt": "abcdef", "stream": True}
        with httpx.stream("POST", self.url + "/v1/completions", json=body, timeout=60) as r:
            self.lines.extend(line for line in r.iter_lines() if line)

    def _post(self) -> None:
        body = {"model": "s", "prompt": "queued"}
        self.answer = httpx.post(self.url + "/v1/completions", json=body, timeout=60)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)
            assert not thread.is_alive()

    def response(self) -> httpx.Response:
        assert self.answer is not None
        return self.answer

    def streamed_text(self) -> str:
        events = [json.loads(line[6:]) for line in self.lines[:-1]]
        return "".join(e["choices"][0]["text"] for e in events if "choices" in e)

    def stream_error(self) -> dict[str, Any]:
        last = json.loads(self.lines[-2][6:])
        assert "error" in last, self.lines
        error: dict[str, Any] = last["error"]
        return error


def assert_refused_while_draining(url: str) -> None:
    wait_for(lambda: httpx.get(url + "/health").status_code == 503)  # the drain has begun
    refused = httpx.post(url + "/v1/completions", json={"model": "s", "prompt": "late"})
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "shutting_down"
    assert httpx.get(url + "/metrics").status_code == 200  # the drain can be watched


def assert_cut_off(clients: Clients) -> None:
    """The stream got a final error event then [DONE]; the queued request a 503 JSON."""
    assert clients.lines[-1] == "data: [DONE]"
    assert clients.stream_error()["status"] == 503
    assert "did not finish: the server is shutting down" in clients.stream_error()["message"]
    assert clients.response().status_code == 503
    assert int(clients.response().headers["retry-after"]) >= 1
    error = clients.response().json()["error"]
    assert error["type"] == "service_unavailable_error"
    assert "did not run: the server is shutting down" in error["message"]


@pytest.fixture
def gated() -> Iterator[tuple[ControlPlaneManager, str, threading.Event]]:
    cp = ControlPlaneManager("never", load_entry_points=False)
    gate = threading.Event()
    eid = cp.start_engine("m", engine=ScriptedBackend, served_model_name="s", gate=gate)
    yield cp, eid, gate
    gate.set()
    cp.shutdown(timeout=5)


def serve(cp: ControlPlaneManager, grace: float) -> ServerThread:
    return ServerThread(cp, shutdown_timeout=grace)


def test_requests_in_flight_finish_within_the_shutdown_timeout(
    gated: tuple[ControlPlaneManager, str, threading.Event],
) -> None:
    cp, eid, gate = gated
    with serve(cp, grace=60) as server:
        clients = Clients(
            server.url,
            running=lambda: cp.engine_info(eid)["running"] == 1,
            queued=lambda: cp.engine_info(eid)["queue_depth"] == 1,
        )
        server.server.begin_shutdown("test")
        assert_refused_while_draining(server.url)
        gate.set()
        clients.join()
        server.thread.join(10)
        assert not server.thread.is_alive()  # the server went down once they were done
    assert clients.lines[-1] == "data: [DONE]"
    assert clients.streamed_text() == "fedcba"
    assert clients.response().status_code == 200
    assert clients.response().json()["choices"][0]["text"] == "deueuq"


@pytest.mark.parametrize("how", ["timeout", "second signal"])
def test_requests_still_in_flight_at_the_end_get_an_error_they_can_read(
    gated: tuple[ControlPlaneManager, str, threading.Event], how: str
) -> None:
    cp, eid, _ = gated
    with serve(cp, grace=0.3 if how == "timeout" else 60) as server:
        clients = Clients(
            server.url,
            running=lambda: cp.engine_info(eid)["running"] == 1,
            queued=lambda: cp.engine_info(eid)["queue_depth"] == 1,
        )
        server.server.begin_shutdown("test")
        if how == "second signal":
            assert_refused_while_draining(server.url)
            server.server.begin_shutdown("test")
        clients.join()
        server.thread.join(10)
        assert not server.thread.is_alive()
    assert_cut_off(clients)
    assert cp.engine_info(eid)["state"] == "stopped"
    assert cp.engine_info(eid)["metrics"]["requests"]["error"] == 2


SERVE_SCRIPT = textwrap.dedent(
    """
    import logging, sys, threading
    from sage.llm.control_plane import ControlPlaneManager
    from sage.llm.server.run import run_server
    from sage.llm.testing.control_plane import ScriptedBackend

    logging.basicConfig(level="INFO", format="%(name)s %(levelname)s %(message)s")
    gate = threading.Event()  # opened by a line on stdin
    threading.Thread(target=lambda: (sys.stdin.readline(), gate.set()), daemon=True).start()
    cp = ControlPlaneManager("never", load_entry_points=False)
    cp.start_engine("m", engine=ScriptedBackend, served_model_name="s", engine_id="e", gate=gate)
    run_server(cp, "127.0.0.1", int(sys.argv[1]), "info", shutdown_timeout=float(sys.argv[2]))
    """
)


@pytest.mark.parametrize(
    ("sig", "finish"),
    [(signal.SIGTERM, True), (signal.SIGINT, False)],
    ids=["SIGTERM-finish", "SIGINT-cut"],
)
def test_a_signal_drains_the_server_process_then_it_exits_0(
    sig: signal.Signals, finish: bool
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    grace = "60" if finish else "0.3"
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, str(port), grace],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdin is not None
    try:

        def up() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                return httpx.get(url + "/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 60)

        def engine(key: str) -> int:
            # /status, not the engine-admin routes (off unless serve enables them)
            (info,) = httpx.get(url + "/status").json()["engines"]
            value: int = info[key]
            return value

        clients = Clients(
            url,
            running=lambda: engine("running") == 1,
            queued=lambda: engine("queue_depth") == 1,
        )
        proc.send_signal(sig)
        if finish:
            assert_refused_while_draining(url)
            proc.stdin.write("open\n")
            proc.stdin.flush()
        clients.join()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert f"{sig.name}: shutting down" in out
    assert "engines shut down" in out
    if finish:
        assert clients.streamed_text() == "fedcba"
        assert clients.lines[-1] == "data: [DONE]"
        assert clients.response().status_code == 200
    else:
        assert "shutdown timeout (0.3 s) over: ending 2 request(s) with 503" in out
        assert_cut_off(clients)
