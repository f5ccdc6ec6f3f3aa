"""Running the app on uvicorn: in the foreground (``sage-llm serve``) or in a thread.

:class:`ServerThread` binds its own loopback socket (port 0 picks a free port) before uvicorn
starts, so tests and the load benchmark know the address without racing for a port.

SIGTERM and SIGINT drain the server (:class:`DrainingServer`) instead of cutting clients off,
then the engines are shut down and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

import uvicorn

from sage.llm.control_plane.manager import ControlPlaneManager
from sage.llm.server.lifecycle import ANSWER_S, Lifecycle

LOOPBACK = ("127.0.0.1", "::1", "localhost")
DEFAULT_SHUTDOWN_TIMEOUT_S = 30.0

log = logging.getLogger("sage.llm.server")


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain before its own shutdown, and no re-raised signal.

    uvicorn's own graceful shutdown closes the listening socket first (new clients get
    "connection refused", not a 503 that says why) and then cuts requests off without a
    word; since 0.29 it also re-raises the signal it caught once it is done, which kills the
    process (exit 143 on SIGTERM) before the engines are shut down. Here the first signal
    starts :meth:`Lifecycle.drain` while the socket stays open, and uvicorn shuts down only
    once it is over; a second signal ends the grace period at once, a third skips uvicorn's
    wait for connections. Overriding ``handle_exit`` (the signal handler uvicorn installs, by
    ``capture_signals`` from 0.29 and by ``install_signal_handlers`` before) without calling
    uvicorn's own keeps the signal from being recorded, on every version from 0.30 on.
    """

    def __init__(
        self, config: uvicorn.Config, manager: ControlPlaneManager, lifecycle: Lifecycle
    ) -> None:
        super().__init__(config)
        self.manager = manager
        self.lifecycle = lifecycle
        self.shutdown_reason: str | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.begin_shutdown(signal.Signals(sig).name)

    def begin_shutdown(self, reason: str) -> None:
        """Drain, then shut down (what a signal does); callable from any thread."""
        if self.shutdown_reason is None:
            self.lifecycle.draining = True  # refuse new requests from now, not from the next poll
            self.shutdown_reason = reason
        elif not self.lifecycle.cut_short:
            self.lifecycle.cut_short = True
        else:
            self.force_exit = True
            self.should_exit = True

    async def main_loop(self) -> None:
        drainer = asyncio.ensure_future(self._drain_when_asked())
        try:
            await super().main_loop()
        finally:
            drainer.cancel()

    async def _drain_when_asked(self) -> None:
        while self.shutdown_reason is None:
            await asyncio.sleep(0.05)
        await self.lifecycle.drain(self.manager, self.shutdown_reason)
        self.should_exit = True


def _server(
    manager: ControlPlaneManager,
    host: str,
    port: int,
    log_level: str,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
    **app_kw: Any,
) -> DrainingServer:
    from sage.llm.server.app import create_app

    lifecycle = Lifecycle(grace_s=shutdown_timeout)
    config = uvicorn.Config(
        create_app(manager, lifecycle=lifecycle, **app_kw),
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        # What is left after the drain (a slow engine start, say) gets this long.
        timeout_graceful_shutdown=int(ANSWER_S),
    )
    return DrainingServer(config, manager, lifecycle)


def run_server(
    manager: ControlPlaneManager,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
    **app_kw: Any,
) -> None:
    """Serve until SIGTERM or Ctrl-C, drain for up to ``shutdown_timeout`` seconds, then stop
    the engines."""
    try:
        _server(manager, host, port, log_level, shutdown_timeout, **app_kw).run()
    except KeyboardInterrupt:
        pass  # Ctrl-C before uvicorn installed its handlers (or after it removed them)
    finally:
        manager.shutdown()
        log.info("engines shut down")


class ServerThread:
    """``with ServerThread(manager) as server: server.url`` -- the app on a background thread.

    ``server.server.begin_shutdown(reason)`` drains it as a signal would."""

    def __init__(
        self, manager: ControlPlaneManager, host: str = "127.0.0.1", port: int = 0, **app_kw: Any
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = _server(manager, host, self.port, "warning", **app_kw)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
