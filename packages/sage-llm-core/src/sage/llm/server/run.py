"""Running the app on uvicorn: in the foreground (``sage-llm serve``) or in a thread.

:class:`ServerThread` binds its own loopback socket (port 0 picks a free port) before uvicorn
starts, so tests and the load benchmark know the address without racing for a port.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from sage.llm.control_plane.manager import ControlPlaneManager

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _config(
    manager: ControlPlaneManager, host: str, port: int, log_level: str, **app_kw: Any
) -> Any:
    import uvicorn

    from sage.llm.server.app import create_app

    return uvicorn.Config(
        create_app(manager, **app_kw),
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        timeout_graceful_shutdown=5,
    )


def run_server(
    manager: ControlPlaneManager,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    **app_kw: Any,
) -> None:
    """Serve until interrupted (Ctrl-C), then stop the engines."""
    import uvicorn

    try:
        uvicorn.Server(_config(manager, host, port, log_level, **app_kw)).run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises Ctrl-C after its graceful shutdown: the normal way to stop
    finally:
        manager.shutdown()


class ServerThread:
    """``with ServerThread(manager) as server: server.url`` -- the app on a background thread."""

    def __init__(
        self, manager: ControlPlaneManager, host: str = "127.0.0.1", port: int = 0, **app_kw: Any
    ) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = uvicorn.Server(_config(manager, host, self.port, "warning", **app_kw))
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
