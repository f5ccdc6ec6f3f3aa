"""Helpers shared by the server tests."""

from __future__ import annotations

import socket
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
