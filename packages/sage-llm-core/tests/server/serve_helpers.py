"""Helpers shared by the server tests."""

from __future__ import annotations

from typing import Any


def openai_client(url: str, api_key: str = "unused") -> Any:
    """The official client as a user would make it, without retries (errors show at once)."""
    import openai

    return openai.OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0, timeout=60)
