"""Keeping plugin chatter off standard output.

``sage-llm strategies list --json`` and ``sage-llm vllm-args --json`` are read by programs, so
their standard output must hold the JSON and nothing else. Third-party code runs while they work
(a plugin's module body on import, its ``apply``); whatever it prints goes to standard error
instead, where a person still sees it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[TextIO]:
    """Send ``print`` output to stderr inside the block; yields the real stdout for results."""
    real = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        yield real
