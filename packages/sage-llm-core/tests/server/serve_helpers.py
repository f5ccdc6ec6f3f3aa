"""Helpers shared by the server tests."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any


def openai_client(url: str, api_key: str = "unused") -> Any:
    """The official client as a user would make it, without retries (errors show at once)."""
    import openai

    return openai.OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0, timeout=60)


def free_port() -> int:
    """A loopback port free now (for a server process that binds it itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(proc: subprocess.Popen[str], url: str, timeout_s: float = 90) -> None:
    """Poll ``url``/health until it answers 200; fail with the process's output if it exits."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            out = proc.stdout or proc.stderr
            raise AssertionError(
                f"the server exited ({proc.returncode}):\n{out.read() if out else ''}"
            )
        try:
            if httpx.get(url + "/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "sage-llm serve did not come up"
        time.sleep(0.2)
